"""core.training_jobs: training started as a background job on a region or on patches, resumed, and the
job that made a model (what it was trained on, the copy of a running job's checkpoint)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from core import jobs, training_jobs
from core.config import TrainConfig
from core.errors import ConfigError, CorruptFileError, JobError
from test_jobs import wait_for


def test_a_training_forms_values_become_its_config_and_a_fine_tune_takes_the_models_preset(tmp_path):
    """The Model page's values, checked before anything starts; fine-tuning keeps the model's preset
    (the form's seed preset on 128 px patches would be refused, but the light model takes them)."""
    from core.card import DEFAULT_MODEL_PATH

    with pytest.raises(ConfigError):
        training_jobs.training_config({"epochs": 0})
    assert training_jobs.training_config({"epochs": 3}).epochs == 3
    tuned = training_jobs.training_config({"preset": "seed", "patch_size": 128}, DEFAULT_MODEL_PATH)
    assert (tuned.preset, tuned.patch_size, tuned.init_model) == ("light", 128, str(DEFAULT_MODEL_PATH))
    with pytest.raises(ConfigError):
        training_jobs.training_config({"preset": "seed", "patch_size": 128})


def test_real_training_job_leaves_checkpoint(tmp_path, small_scene):
    img, lab = small_scene
    job_dir = tmp_path / "train"
    cfg = TrainConfig(preset="light", epochs=1, steps_per_epoch=2, batch_size=2, patch_size=128, val_patches=4)
    training_jobs.start_training([f"{img}:{lab}"], [f"{img}:{lab}"], job_dir, label_map="cdl", config=cfg)
    st = wait_for(job_dir, ("done", "failed", "cancelled"), timeout=300)
    assert st.state == "done", st.message
    assert (job_dir / "train" / "best.keras").exists()
    assert st.best_model == str(job_dir / "train" / "best.keras")
    assert [h["epoch"] for h in st.history] == [1] and "val_loss" in st.history[0]  # the one epoch asked for


def test_a_model_knows_the_image_its_training_job_was_cut_from(tmp_path):
    """trained_on: kept in the job (and in a resumed one, which copies the params), found from the model's path."""
    job = tmp_path / "job"
    (job / "train").mkdir(parents=True)
    (job / "job.json").write_text(json.dumps({"kind": "train", "note": "held out: columns 768-1023",
                                              "params": {"trained_on": "/scenes/a/image.tif"}}))
    assert training_jobs.trained_on(job / "train" / "best.keras") == ("/scenes/a/image.tif", "held out: columns 768-1023")
    assert training_jobs.trained_on(tmp_path / "elsewhere.keras") is None  # not a job's model
    (job / "job.json").write_text(json.dumps({"kind": "train", "params": {}}))  # trained on patches
    assert training_jobs.trained_on(job / "train" / "best.keras") is None


def test_a_snapshot_of_a_running_jobs_checkpoint_still_knows_its_job(tmp_path):
    """The Model page's "use the best checkpoint so far" copies it out of the job (a running job
    replaces it with every better epoch): the copy keeps the job's image (Quality's warning about
    training-set figures) and start time (its label)."""
    from core.card import DEFAULT_MODEL_PATH, card_path

    job = tmp_path / "jobs" / "job-20261201-214005-ab12"
    (job / "train").mkdir(parents=True)
    (job / "job.json").write_text(json.dumps({"kind": "train", "note": "held out: rows 0-255",
                                              "params": {"trained_on": "/scenes/a/image.tif"}}))
    best = job / "train" / "best.keras"
    best.write_bytes(DEFAULT_MODEL_PATH.read_bytes())
    card_path(best).write_text(card_path(DEFAULT_MODEL_PATH).read_text())
    copy = training_jobs.snapshot_checkpoint(best, tmp_path / "models")
    assert copy.parent.parent == tmp_path / "models" and copy.read_bytes() == DEFAULT_MODEL_PATH.read_bytes()
    assert training_jobs.source_job(copy) == job.resolve() and training_jobs.source_job(best) == job
    assert training_jobs.trained_on(copy) == ("/scenes/a/image.tif", "held out: rows 0-255")
    assert jobs.started_at(training_jobs.source_job(copy)) == "2026-12-01 21:40"
    # a job in words, where a refusal names it (its folder's id meant nothing to a user)
    assert jobs.job_words(job) == "started 2026-12-01 21:40" and jobs.job_words(tmp_path / "job-other") == "job-other"
    assert training_jobs.snapshot_checkpoint(best, tmp_path / "models") == copy  # the same checkpoint again: the same copy
    best.write_bytes(b"model bytes")  # not a model (a damaged checkpoint): refused, and no copy of it is kept
    with pytest.raises(CorruptFileError, match="not a Keras model"):
        training_jobs.snapshot_checkpoint(best, tmp_path / "models")
    assert [p.name for p in (tmp_path / "models").iterdir()] == [copy.parent.name]
    assert training_jobs.source_job(tmp_path / "elsewhere" / "model.keras") is None
    (copy.parent / training_jobs.SNAPSHOT_SOURCE).write_text("\n")  # an empty note names no job
    assert training_jobs.source_job(copy) is None and training_jobs.trained_on(copy) is None


def test_a_training_start_that_fails_leaves_no_job_folder(tmp_path, monkeypatch):
    """The Model page's Start: every refusal comes before a job exists, and leaves nothing under the jobs folder."""
    import numpy as np

    from core.errors import InputNotFoundError, InvalidDataError, NoDataError, RegionError
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS, write_raster

    root = tmp_path / "jobs"
    values = {"epochs": 1, "steps_per_epoch": 1, "batch_size": 1, "patch_size": 64}
    config = training_jobs.training_config(values)
    with pytest.raises(InvalidDataError, match="no labels"):
        training_jobs.train_on_image(SAMPLE_IMAGE, None, None, root, config)
    with pytest.raises(ConfigError):
        training_jobs.training_config({**values, "epochs": 0})
    with pytest.raises(InputNotFoundError, match="model card"):  # fine-tuning a model without its card
        training_jobs.training_config(values, tmp_path / "m.keras")
    small = write_raster(tmp_path / "small.tif", np.full((4, 40, 40), 1000, np.int16),
                         descriptions=["red", "green", "blue", "nir"])
    labels = write_raster(tmp_path / "small_labels.tif", np.ones((40, 40), np.uint8))
    with pytest.raises(RegionError, match="smaller than one 64 x 64 px"):  # found by the held-out block's split
        training_jobs.train_on_image(small, labels, "binary", root, config)
    # labels all crop: refused before a job starts (the job loaded its data, then failed naming its cache's files)
    import rasterio

    with rasterio.open(SAMPLE_LABELS) as src:
        profile = src.profile
    one_class = tmp_path / "all_crop.tif"
    with rasterio.open(one_class, "w", **{**profile, "nodata": 255}) as dst:
        dst.write(np.ones((1, profile["height"], profile["width"]), profile["dtype"]))
    with pytest.raises(NoDataError, match="the region's labels hold no not-crop pixel"):
        training_jobs.train_on_image(SAMPLE_IMAGE, one_class, "binary", root, config)
    with pytest.raises(ConfigError):
        training_jobs.train_on_patches(str(SAMPLE_IMAGE), str(SAMPLE_IMAGE), root, config)  # images, not patches
    assert not root.exists() or not list(root.iterdir())

    def raced(*args, **kwargs):  # another tab started a job between the check and the start
        raise JobError("a job is already running in job-other; cancel it or wait for it to finish")

    with monkeypatch.context() as m:
        m.setattr(jobs, "start_job", raced)
        with pytest.raises(JobError, match="job-other"):  # after the held-out block was written: removed with its folder
            training_jobs.train_on_image(SAMPLE_IMAGE, SAMPLE_LABELS, "cdl", root, config)
    assert not list(root.iterdir())
    running = root / "job-running"
    jobs.start_job("selftest", {"epochs": 20, "steps": 10, "delay": 0.05}, running)
    try:
        with pytest.raises(JobError, match=r"already running \(job-running\)"):
            training_jobs.train_on_image(SAMPLE_IMAGE, SAMPLE_LABELS, "cdl", root, config)
        assert [p.name for p in root.iterdir()] == ["job-running"]
    finally:
        jobs.cancel(running, terminate_after_s=5)


def test_a_finished_runs_better_best_checkpoint_is_offered_over_an_earlier_copy_of_it(tiny_model_path, tmp_path):
    """"Use the best checkpoint so far" after epoch 1 takes a copy; the run ends with a better epoch 3: the
    copy came from the same job, so its best was taken for the model in use and never offered."""
    import json
    import shutil

    job = tmp_path / "job-20261205-210000-ab12cd"
    (job / "train").mkdir(parents=True)
    best = Path(shutil.copy(tiny_model_path, job / "train" / "best.keras"))
    shutil.copy(tiny_model_path.with_suffix(".json"), best.with_suffix(".json"))
    done = jobs.JobStatus(state="done", epoch=3, epochs=3, history=[{"epoch": 1, "val_loss": 0.5}])
    copy = training_jobs.snapshot_checkpoint(best, tmp_path / "models")  # taken while it ran (here: of the same weights)
    assert not training_jobs.best_not_in_use(job, done, copy) and not training_jobs.best_not_in_use(job, done, best)
    card = json.loads(best.with_suffix(".json").read_text())
    card["weights"] = "0" * len(card["weights"])  # a later, better epoch's weights in best.keras
    best.with_suffix(".json").write_text(json.dumps(card))
    assert training_jobs.best_not_in_use(job, done, copy) and not training_jobs.best_not_in_use(job, done, best)


def test_a_resume_of_a_resumed_job_says_it_once(tmp_path, monkeypatch):
    """The notes chained ("Resumed from the training of 18:20. Resumed from the training of 18:22."): the
    last resume is said, and that the job it continues was itself resumed."""
    stopped = tmp_path / "job-20261206-182200-abc123"
    (stopped / "train").mkdir(parents=True)
    (stopped / "train" / "last.keras").write_bytes(b"weights")
    (stopped / "job.json").write_text(json.dumps({"kind": "train", "job_id": "t", "params": {"config": {}},
                                                  "note": "Validation holds out columns 192-255. Resumed from the "
                                                          "training of 2026-12-06 18:20."}))
    (stopped / "status.json").write_text(json.dumps(jobs.JobStatus(state="cancelled", started=time.time()).to_dict()))
    notes = []
    monkeypatch.setattr(jobs, "start_job", lambda kind, params, job_dir, note="", **kw: notes.append(note) or "id")
    training_jobs.resume_training(stopped, tmp_path / "job-b")
    assert notes == ["Validation holds out columns 192-255. Resumed from the training of 2026-12-06 18:22 "
                     "(itself resumed)."]


def test_a_training_start_passes_on_what_its_model_card_and_lineage_need(tmp_path, monkeypatch):
    """The image trained on, the pixel size, the data in words and the one-at-a-time start reach the job
    (each trained_on test wrote its job.json by hand)."""
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS

    started = []
    monkeypatch.setattr(jobs, "start_job", lambda kind, params, job_dir, note="", **kw:
                        started.append((kind, params, note, kw)) or "id")
    config = training_jobs.training_config({"epochs": 1, "steps_per_epoch": 1, "batch_size": 1, "patch_size": 64})
    job_dir = training_jobs.train_on_image(SAMPLE_IMAGE, SAMPLE_LABELS, "cdl", tmp_path / "jobs", config,
                                           title="the sample scene", pixel_size_m=30.0)
    ((kind, params, note, kw),) = started
    assert kind == "train" and kw == {"one_at_a_time": True} and note
    assert params["trained_on"] == str(SAMPLE_IMAGE) and params["pixel_size_m"] == 30.0
    assert "the sample scene" in params["data_text"] and params["config"] == config.to_dict()
    # IMAGE:LABELS pairs of the image and the held-out split's labels in the job's folder
    assert [p.split(":")[0] for p in params["train_data"] + params["val_data"]] == [str(SAMPLE_IMAGE)] * 2
    assert all(p.split(":")[1].startswith(str(job_dir / "holdout")) for p in params["train_data"] + params["val_data"])


def test_only_a_stopped_job_with_a_checkpoint_and_no_hopeless_end_can_resume(tmp_path):
    job = tmp_path / "job"
    (job / "train").mkdir(parents=True)
    stopped = jobs.JobStatus(state="cancelled")
    assert not training_jobs.can_resume(job, stopped)  # no checkpoint yet
    (job / "train" / "last.keras").write_bytes(b"weights")
    assert training_jobs.can_resume(job, stopped) and training_jobs.can_resume(job, jobs.JobStatus(state="failed"))
    assert not training_jobs.can_resume(job, jobs.JobStatus(state="done"))
    assert not training_jobs.can_resume(job, jobs.JobStatus(state="running"))
    for message in (training_jobs.DIVERGED + " at epoch 3", training_jobs.CANNOT_RESUME + ": history damaged"):
        assert not training_jobs.can_resume(job, jobs.JobStatus(state="failed", message=message))
    (job / "train" / "best.keras").write_bytes(b"weights")
    assert not training_jobs.best_not_in_use(job, jobs.JobStatus(state="cancelled"), None)  # only a finished job's
    assert training_jobs.best_not_in_use(job, jobs.JobStatus(state="done"), None)


def test_a_resume_is_refused_for_a_job_that_is_not_a_stopped_training(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "start_job", lambda *a, **kw: pytest.fail("a job started"))
    monkeypatch.setattr(jobs, "_is_worker", lambda pid, job_dir: True)  # (its worker alive)
    job = tmp_path / "job-a"
    (job / "train").mkdir(parents=True)
    (job / "train" / "last.keras").write_bytes(b"weights")
    (job / "job.json").write_text(json.dumps({"kind": "selftest", "job_id": "s", "params": {}, "note": ""}))
    (job / "status.json").write_text(json.dumps(jobs.JobStatus(state="cancelled", started=time.time()).to_dict()))
    with pytest.raises(JobError, match="holds no training job"):
        training_jobs.resume_training(job, tmp_path / "job-b")
    (job / "job.json").write_text(json.dumps({"kind": "train", "job_id": "t", "params": {"config": {}}, "note": ""}))
    (job / "status.json").write_text(json.dumps(jobs.JobStatus(state="running", pid=os.getpid(),
                                                               started=time.time()).to_dict()))
    with pytest.raises(JobError, match="still"):
        training_jobs.resume_training(job, tmp_path / "job-b")
    assert not (tmp_path / "job-b").exists()


def _stopped_job(root: Path, name: str, state: str, started: float, history: list | None = None,
                 kind: str = "train", checkpoint: bool = True) -> Path:
    """A job folder as a finished worker leaves it: job.json, status.json and (``checkpoint``) train/best.keras."""
    job = root / name
    (job / "train").mkdir(parents=True)
    (job / "job.json").write_text(json.dumps({"kind": kind, "job_id": name, "params": {}, "note": f"note {name}"}))
    (job / "status.json").write_text(json.dumps(jobs.JobStatus(
        state=state, kind=kind, started=started, epoch=len(history or []), epochs=5,
        history=history or []).to_dict()))
    if checkpoint:
        (job / "train" / "best.keras").write_bytes(b"x" * 1000)
    return job


def test_earlier_trainings_are_the_stopped_ones_newest_first_in_words(tmp_path, monkeypatch):
    """A new session's Train tab lists the trainings of earlier sessions (their models were otherwise out of
    reach): stopped training jobs only, newest first, the page's own job left out, each with its best epoch."""
    monkeypatch.setattr(jobs, "_is_worker", lambda pid, job_dir: True)  # (the running job's worker alive)
    rows = [{"epoch": 1, "val_loss": 0.5, "val_iou": 0.61}, {"epoch": 2, "val_loss": 0.4, "val_iou": 0.7123},
            {"epoch": 3, "val_loss": 0.45, "val_iou": 0.73}]
    old = _stopped_job(tmp_path, "job-20261201-080000-aaaaaa", "done", 100.0, rows)
    new = _stopped_job(tmp_path, "job-20261203-093000-bbbbbb", "cancelled", 300.0, rows[:1], checkpoint=False)
    own = _stopped_job(tmp_path, "job-20261204-100000-cccccc", "failed", 400.0)
    _stopped_job(tmp_path, "job-20261202-000000-dddddd", "done", 200.0, kind="selftest")
    running = _stopped_job(tmp_path, "job-20261205-000000-eeeeee", "running", 500.0)
    status = json.loads((running / "status.json").read_text())
    (running / "status.json").write_text(json.dumps({**status, "pid": os.getpid()}))
    (tmp_path / "not-a-job").mkdir()
    found = training_jobs.earlier_trainings(tmp_path, skip=[str(own)])
    assert [t.job_dir for t in found] == [new, old]
    assert found[1].words() == "Training of 2026-12-01 08:00: done, 3 of 5 epochs, best epoch 2 (val IoU 0.712), 0.0 MB"
    assert found[0].words().startswith("Training of 2026-12-03 09:30: cancelled, 1 of 5 epochs, best epoch 1 (val IoU 0.610)")
    assert found[1].best == old / "train" / "best.keras" and found[0].best is None
    assert found[1].size_bytes >= 1000 and found[1].note == "note job-20261201-080000-aaaaaa"
    assert [t.job_dir for t in training_jobs.earlier_trainings(tmp_path)] == [own, new, old]


def test_deleting_a_training_removes_its_folder_and_refuses_what_is_in_use_or_running(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "_is_worker", lambda pid, job_dir: True)
    root = tmp_path / "jobs"
    job = _stopped_job(root, "job-20261201-080000-aaaaaa", "done", 100.0, [{"epoch": 1, "val_loss": 0.5}])
    in_use = job / "train" / "best.keras"
    with pytest.raises(JobError, match="made the model in use; load another model"):
        training_jobs.delete_training(job, root, model_in_use=in_use)
    (tmp_path / "models" / "m").mkdir(parents=True)  # a copy taken of its checkpoint, in use: it names the job
    (tmp_path / "models" / "m" / training_jobs.SNAPSHOT_SOURCE).write_text(str(job))
    with pytest.raises(JobError, match="made the model in use"):
        training_jobs.delete_training(job, root, model_in_use=tmp_path / "models" / "m" / "best.keras")
    with pytest.raises(JobError, match="is not a training job of"):  # only a job folder directly under the root
        training_jobs.delete_training(job / "train", root)
    with pytest.raises(JobError, match="is not a training job of"):
        training_jobs.delete_training(job, tmp_path)
    assert in_use.exists()
    status = json.loads((job / "status.json").read_text())
    (job / "status.json").write_text(json.dumps({**status, "state": "running", "pid": os.getpid()}))
    with pytest.raises(JobError, match="still running; cancel it"):
        training_jobs.delete_training(job, root)
    (job / "status.json").write_text(json.dumps(status))
    with pytest.raises(JobError, match="made the model another session uses"):  # its checkpoint, another session's
        training_jobs.delete_training(job, root, used_elsewhere=[str(tmp_path / "elsewhere.keras"), str(in_use)])
    other = _stopped_job(root, "job-20261202-080000-bbbbbb", "cancelled", 200.0)
    # a copy of its checkpoint in another session's use stays where it is: the job may go
    training_jobs.delete_training(job, root, model_in_use=tmp_path / "elsewhere.keras",
                                  used_elsewhere=[str(tmp_path / "models" / "m" / "best.keras")])
    assert sorted(p.name for p in root.iterdir()) == [other.name]  # gone, the hidden name too
    assert [t.job_dir for t in training_jobs.earlier_trainings(root)] == [other]


def test_a_deletion_broken_off_half_way_leaves_no_job_in_the_list(tmp_path, monkeypatch):
    """The folder is renamed to a hidden name before its files go: what a failed removal leaves is never listed."""
    import shutil

    job = _stopped_job(tmp_path, "job-20261201-080000-aaaaaa", "done", 100.0)
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **kw: None)  # (nothing removed at all)
    training_jobs.delete_training(job, tmp_path)
    assert not job.exists() and (tmp_path / f".deleting-{job.name}" / "status.json").exists()
    assert training_jobs.earlier_trainings(tmp_path) == [] and jobs.find_jobs(tmp_path) == []


def test_a_best_checkpoint_in_use_is_in_use_though_its_card_has_no_fingerprint(tiny_model_path, tmp_path):
    """A card written before cards had a weights fingerprint: the job's own best.keras, in use, was said not to
    be, and the Predict page kept offering it ("Your training has finished"), its button doing nothing."""
    import shutil

    job = tmp_path / "job-20261205-210000-ab12cd"
    (job / "train").mkdir(parents=True)
    best = Path(shutil.copy(tiny_model_path, job / "train" / "best.keras"))
    card = json.loads(tiny_model_path.with_suffix(".json").read_text())
    best.with_suffix(".json").write_text(json.dumps({**card, "weights": ""}))
    done = jobs.JobStatus(state="done", epoch=1, epochs=1, history=[{"epoch": 1, "val_loss": 0.5}])
    assert not training_jobs.best_not_in_use(job, done, best)
    assert training_jobs.best_not_in_use(job, done, tiny_model_path)  # another model in use: offered


def test_a_training_on_patches_starts_one_at_a_time(tmp_path, monkeypatch):
    """Patch-trained jobs start as image-trained ones do: one at a time under the jobs folder."""
    import core.patchset

    started = []
    monkeypatch.setattr(core.patchset, "check_sources", lambda train, val, size: "")
    monkeypatch.setattr(jobs, "start_job", lambda kind, params, job_dir, note="", **kw:
                        started.append((kind, params, kw)) or "id")
    config = training_jobs.training_config({"epochs": 1, "steps_per_epoch": 1, "batch_size": 1, "patch_size": 64})
    training_jobs.train_on_patches("train.tfrecord", "val.tfrecord", tmp_path / "jobs", config, cut_note="cut.")
    ((kind, params, kw),) = started
    assert kind == "train" and kw == {"one_at_a_time": True}
    assert params["train_data"] == ["train.tfrecord"] and params["val_data"] == ["val.tfrecord"]


def test_a_model_trained_from_scratch_was_fine_tuned_from_nothing(tmp_path):
    job = tmp_path / "job"
    (job / "train").mkdir(parents=True)
    best = job / "train" / "best.keras"
    for config in ({"init_model": None}, {"init_model": ""}, {}):
        (job / "job.json").write_text(json.dumps({"kind": "train", "note": "", "params": {"config": config}}))
        assert training_jobs.fine_tuned_from(best) is None
    (job / "job.json").write_text(json.dumps({"kind": "train", "note": "",
                                              "params": {"config": {"init_model": "/models/light.keras"}}}))
    assert training_jobs.fine_tuned_from(best) == "/models/light.keras"


def test_a_cancelled_job_counts_the_epochs_it_finished_not_the_one_it_broke_off(tmp_path):
    """Cancelled in epoch 2 (its status's epoch), one epoch in its history: '1 of 3 epochs'."""
    job = _stopped_job(tmp_path, "job-20261201-080000-aaaaaa", "cancelled", 100.0,
                       [{"epoch": 1, "val_loss": 0.5, "val_iou": 0.6}])
    status = json.loads((job / "status.json").read_text())
    (job / "status.json").write_text(json.dumps({**status, "epoch": 2, "epochs": 3}))
    (found,) = training_jobs.earlier_trainings(tmp_path)
    assert ": cancelled, 1 of 3 epochs, best epoch 1 " in found.words()


def test_a_resume_works_in_the_folder_its_job_was_started_from(tmp_path, monkeypatch):
    """The resumed job's data paths may be relative to where the first job was started: it gets that folder."""
    stopped = tmp_path / "job-20261206-182200-abc123"
    (stopped / "train").mkdir(parents=True)
    (stopped / "train" / "last.keras").write_bytes(b"weights")
    (stopped / "job.json").write_text(json.dumps({"kind": "train", "job_id": "t", "params": {"config": {}},
                                                  "note": "", "cwd": "/data/where/it/started"}))
    (stopped / "status.json").write_text(json.dumps(jobs.JobStatus(state="cancelled", started=time.time()).to_dict()))
    started = []
    monkeypatch.setattr(jobs, "start_job", lambda kind, params, job_dir, note="", **kw: started.append((params, kw)) or "id")
    training_jobs.resume_training(stopped, tmp_path / "job-b")
    ((params, kw),) = started
    assert kw["cwd"] == "/data/where/it/started" and params["resume"] is True
