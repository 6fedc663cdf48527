"""Two sessions of the dashboard (two tabs, or two people on one server) that meet in what the server shares
beyond the work folder's scenes and uploads: training jobs, predictions run in threads, downloads. Each test
drives both sessions (AppTest) or interleaves them deterministically."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from apptest import new_app


def _stopped_training(root: Path, name: str, model: Path) -> Path:
    """A done training job under ``root`` (the work folder's jobs) with ``model`` as its best checkpoint."""
    from test_jobs import _finished_status

    job = root / name
    (job / "train").mkdir(parents=True)
    (job / "job.json").write_text(json.dumps({"kind": "train", "params": {}, "note": "A training."}))
    (job / "status.json").write_text(json.dumps(_finished_status(started=100.0)))
    shutil.copy(model, job / "train" / "best.keras")
    shutil.copy(model.with_suffix(".json"), job / "train" / "best.json")
    return job


def test_a_training_whose_checkpoint_another_session_uses_is_not_deleted_under_it(fake_map, tiny_model_path):
    """Session B made a finished training's best checkpoint its model ("Use the best checkpoint": the job's own
    best.keras, no copy) and predicted with it. Session A, another person on the server, sees the same training in
    its list of earlier trainings and deletes it: delete_training refused only when the *deleting* session's model
    came from the job, so B's model file went, and B's Predict page stopped with "The model in use is no longer on
    disk ... load a model again" (its prediction gone with it). A is now told why not."""
    root = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs"
    job = _stopped_training(root, "job-20261201-080000-aaaaaa", tiny_model_path)
    best = job / "train" / "best.keras"

    b = new_app()
    b.session_state["job_dir"] = str(job)
    b.switch_page("pages/model.py").run()
    b.button(key="use_best").click().run()
    assert not b.exception and b.session_state["model_path"] == str(best)

    a = new_app()  # another person's session: the training is in its list, its Delete at hand
    a.switch_page("pages/model.py").run()
    a.button(key=f"delete_training_{job.name}").click().run()
    assert not a.exception
    assert any("made the model another session uses" in e.value for e in a.error), [e.value for e in a.error]

    b.switch_page("pages/predict.py").run()
    said = [e.value for e in b.error] + [i.value for i in b.info] + [w.value for w in b.warning]
    assert best.exists(), f"session B's model in use was deleted by session A; B's Predict page says {said}"


def test_a_cancel_pressed_on_a_job_that_has_ended_does_not_cancel_the_next_one(fake_map):
    """Session B's Model page shows A's running training (its Cancel button). A stops it and at once starts another
    (a new learning rate, say); B, who also wanted the first one stopped, presses the Cancel it sees, drawn for the
    first job. The button's key was the same for every job ("cancel_job"), and the run of the click draws the panel of
    the job running *now*: the click cancelled A's new training, which B never saw."""
    from core import jobs
    from test_jobs import wait_for

    root = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs"
    first, second = root / "job-20261201-080000-aaaaaa", root / "job-20261201-080100-bbbbbb"
    slow = {"epochs": 50, "steps": 10, "delay": 0.1}
    jobs.start_job("selftest", slow, first, note="first")
    try:
        wait_for(first, ("running",))
        b = new_app()
        b.switch_page("pages/model.py").run()
        assert not b.exception and "Cancel training" in [x.label for x in b.button]  # drawn for the first job
        jobs.cancel(first, terminate_after_s=5)  # session A: Cancel, then Start again
        wait_for(first, ("cancelled",))
        jobs.start_job("selftest", slow, second, note="second")
        wait_for(second, ("running",))
        [seen] = [x for x in b.button if x.label == "Cancel training"]
        seen.click().run()  # B's click on the button it saw, for the first job
        assert jobs.status(second).state == "running", "B's Cancel of the ended job cancelled A's new training"
    finally:
        for job in (first, second):
            if job.exists():
                jobs.cancel(job, terminate_after_s=5)
