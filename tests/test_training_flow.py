"""The training workflow end to end: a diverging run, the worker's messages, the card's command,
resume from the Model page, empty patches, validation data with one class."""

from __future__ import annotations

import csv

import keras
import pytest

import core.train as train_module
from core.config import TrainConfig
from core.errors import InvalidDataError
from core.model import MaskedDice, MaskedIoU, masked_bce_dice
from core.train import train

CFG = TrainConfig(epochs=3, steps_per_epoch=2, batch_size=2, patch_size=64, val_patches=4, patience=5)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_loss_that_becomes_nan_stops_the_run_with_what_to_do(small_scene, tmp_path, monkeypatch):
    """A NaN loss (say a learning rate far too high) ran every epoch to 'completed', wrote NaN
    weights to last.keras and reported a best.keras that was never written."""
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    calls = []

    def nan_after_first_epoch(y, p):
        scale = keras.ops.where(keras.ops.convert_to_tensor(len(calls) > 0), float("nan"), 1.0)
        return masked_bce_dice(y, p) * scale

    def compile_model(model, lr):
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=nan_after_first_epoch,
                      metrics=[MaskedDice(), MaskedIoU()], run_eagerly=True)

    monkeypatch.setattr(train_module, "compile_model", compile_model)
    seen = []

    def progress(event):
        seen.append(event)
        if event["event"] == "epoch":
            calls.append(1)  # from the second epoch on the loss is NaN

    with pytest.raises(InvalidDataError, match=r"training diverged: the training loss became nan at epoch 2, step 1; "
                                               r"start again with a lower learning rate \(e.g. 0.0001.*1 finished epoch"):
        train(CFG, pair, pair, tmp_path / "run", progress=progress)
    run = tmp_path / "run"
    assert [r["epoch"] for r in _rows(run / "history.csv")] == ["1"]  # the NaN epoch is not recorded
    assert (run / "best.keras").exists() and (run / "last.keras").exists()  # epoch 1's, finite


def test_a_nan_loss_in_the_first_epoch_saves_no_model(small_scene, tmp_path, monkeypatch):
    img, lab = small_scene
    pair = [f"{img}:{lab}"]

    def compile_model(model, lr):
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=lambda y, p: masked_bce_dice(y, p) * float("nan"),
                      metrics=[MaskedDice(), MaskedIoU()])

    monkeypatch.setattr(train_module, "compile_model", compile_model)
    with pytest.raises(InvalidDataError, match="no epoch had finished, so no model was saved"):
        train(CFG, pair, pair, tmp_path / "run")
    assert not (tmp_path / "run" / "last.keras").exists() and not (tmp_path / "run" / "history.csv").exists()


def test_a_killed_worker_is_said_to_be_killed_not_shown_tensorflows_start_up_notices(tmp_path):
    """kill -9 of a training worker: the page showed 'the worker process exited unexpectedly: I0000
    ... oneDNN custom operations are on ...', TensorFlow's start-up notices, the only lines in its log."""
    import json
    import time

    from core import jobs

    job_dir = tmp_path / "j"
    job_dir.mkdir()
    (job_dir / "log.txt").write_text(
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796126947.982201   15666 port.cc:153] oneDNN custom operations are on. You may see ...\n")
    status = jobs.JobStatus(state="running", job_id="x", pid=2**22 + 12345, started=time.time())
    (job_dir / "status.json").write_text(json.dumps(status.to_dict()))
    st = jobs.status(job_dir)
    assert st.state == "failed" and "oneDNN" not in st.message and "absl" not in st.message
    assert "it was killed" in st.message


def test_a_dashboard_jobs_model_card_carries_the_command_that_trains_it_again(small_scene, tmp_path):
    """The card of a model trained from the Model page said 'dashboard training job train-...' as its
    command: nothing that reproduces it. It is now the equivalent `python -m core train` command."""
    import shlex

    from core import training_jobs
    from core.__main__ import build_parser
    from core.model import load_model
    from test_jobs import wait_for

    img, lab = small_scene
    job_dir = tmp_path / "job"
    cfg = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, patch_size=64, val_patches=4, learning_rate=3e-4)
    # the sample's pixels are 30 m, which its file (no CRS) cannot say: the card records it, so that the
    # model warns when it is used on images of other pixels (it said "pixel size not recorded")
    words = "a 320 x 288 px region of a test scene; validation on the training pixels; labels: CDL"
    training_jobs.start_training([f"{img}:{lab}"], [f"{img}:{lab}"], job_dir, label_map="cdl", config=cfg, pixel_size_m=30.0,
                        data_text=words)
    st = wait_for(job_dir, ("done", "failed", "cancelled"), timeout=300)
    assert st.state == "done", st.message
    card = load_model(job_dir / "train" / "best.keras").card
    assert card.pixel_size_m == 30.0
    assert card.data == words  # the card says in words what it was trained on (it listed the job's internal paths)
    command = card.command
    assert command.startswith("python -m core train --train ") and "# dashboard training job train-" in command
    args = build_parser().parse_args(shlex.split(command, comments=True)[3:])
    assert (args.train, args.val, args.out) == ([f"{img}:{lab}"], [f"{img}:{lab}"], str(job_dir / "train"))
    assert (args.label_map, args.epochs, args.steps, args.batch_size, args.patch_size, args.val_patches, args.lr,
            args.preset, args.pixel_size_m) == ("cdl", 1, 2, 2, 64, 4, 3e-4, "light", 30.0)
    log = (job_dir / "log.txt").read_text()
    assert "oneDNN" not in log and "absl" not in log  # the worker's log holds no start-up notices


#: the stopped training of :func:`_stopped_job`
STOPPED_CONFIG = {"epochs": 3, "steps_per_epoch": 2, "batch_size": 2, "patch_size": 64, "val_patches": 4}


@pytest.fixture(scope="module")
def stopped_run(small_scene, tmp_path_factory):
    """A training run folder as the worker leaves it when stopped during epoch 2 of 3 (trained once for
    the module; each test copies it: its files name the data, not their folder)."""
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    run = tmp_path_factory.mktemp("stopped") / "train"
    seen = []
    res = train(TrainConfig(**STOPPED_CONFIG), pair, pair, run, progress=seen.append,
                should_stop=lambda: any(e["event"] == "epoch" for e in seen))
    assert res.stopped == "cancelled"
    return run


def _stopped_job(job_dir, small_scene, stopped_run, state="cancelled",
                 message="cancelled after epoch 1; the best checkpoint so far is kept"):
    """A training job folder as the worker leaves it when it is stopped during epoch 2 of 3."""
    import json
    import shutil
    import time

    from core import jobs

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    cfg = STOPPED_CONFIG
    shutil.copytree(stopped_run, job_dir / "train")
    (job_dir / "job.json").write_text(json.dumps({"kind": "train", "job_id": "train-x", "note": "held-out note",
                                                  "params": {"train_data": pair, "val_data": pair, "label_map": "cdl",
                                                             "config": cfg}}))
    history = [{"epoch": 1, **{k: float(v) for k, v in _rows(job_dir / "train" / "history.csv")[0].items() if k != "epoch"}}]
    st = jobs.JobStatus(state=state, job_id="train-x", started=time.time(), epoch=2, epochs=3, history=history,
                        message=message)
    (job_dir / "status.json").write_text(json.dumps(st.to_dict()))


def test_a_stopped_training_job_resumes_in_a_new_job_without_losing_its_finished_epoch(small_scene, stopped_run, tmp_path):
    """A training cancelled (or killed) from the Model page could only be started again from
    scratch there: its finished epochs were on disk but nothing continued from them."""
    from core import jobs, training_jobs
    from test_jobs import wait_for

    old, new = tmp_path / "jobs" / "job-a", tmp_path / "jobs" / "job-b"
    _stopped_job(old, small_scene, stopped_run)
    first = _rows(old / "train" / "history.csv")
    training_jobs.resume_training(old, new, one_at_a_time=True)
    # its finished epoch shows at once (its curves and bar were empty while the worker loaded TensorFlow)
    assert [h["epoch"] for h in jobs.status(new).history][:1] == [1]
    st = wait_for(new, ("done", "failed", "cancelled"), timeout=300)
    assert st.state == "done", st.message
    rows = _rows(new / "train" / "history.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and rows[0] == first[0]  # epoch 1 kept, not redone
    assert [h["epoch"] for h in st.history] == [1, 2, 3] and st.progress_text().startswith("done: 3 of 3 epochs")
    assert "held-out note" in jobs.job_note(new) and "Resumed from job-a." in jobs.job_note(new)
    assert [r["epoch"] for r in _rows(old / "train" / "history.csv")] == ["1"]  # the stopped job is left as it was
    with pytest.raises(Exception, match="exists; resume in a new folder"):
        training_jobs.resume_training(old, new)


def test_a_job_that_finished_no_epoch_is_not_offered_to_resume(tmp_path):
    import json
    import time

    from core import jobs, training_jobs
    from core.errors import JobError

    job = tmp_path / "job-a"
    (job / "train").mkdir(parents=True)
    (job / "job.json").write_text(json.dumps({"kind": "train", "job_id": "t", "params": {}}))
    (job / "status.json").write_text(json.dumps(jobs.JobStatus(state="cancelled", started=time.time()).to_dict()))
    with pytest.raises(JobError, match="finished no epoch, so there is nothing to resume; start a new training"):
        training_jobs.resume_training(job, tmp_path / "job-b")
    assert not (tmp_path / "job-b").exists()
    # a damaged job file (a list, bytes that are not UTF-8, no params) is no training job to resume: it raised
    # AttributeError and UnicodeDecodeError, and job_note (the Model page's job panel) the latter
    for damaged in (b"[1]", b"\xff\xfe{", json.dumps({"kind": "train"}).encode()):
        (job / "job.json").write_bytes(damaged)
        with pytest.raises(JobError, match="holds no training job to resume"):
            training_jobs.resume_training(job, tmp_path / "job-b")
        assert jobs.job_note(job) == "" and not (tmp_path / "job-b").exists()


def test_the_model_page_offers_to_resume_a_stopped_training(small_scene, stopped_run, tmp_path, monkeypatch):
    from pathlib import Path

    from apptest import by_label, new_app, texts

    from core import training_jobs
    from pages.components import mapview

    monkeypatch.setattr(mapview, "_st_folium", lambda m, **k: None)
    work = tmp_path / "work"
    monkeypatch.setenv("CROPMAP_WORKDIR", str(work))
    old = work / "jobs" / "job-20250101-000000-aaaaaa"
    _stopped_job(old, small_scene, stopped_run, state="failed")
    calls = []
    def resume_training(stopped, resumed, **kw):
        calls.append(((stopped, resumed), kw))
        Path(resumed).mkdir()  # (the job folder this session then follows)
        return "job"

    monkeypatch.setattr(training_jobs, "resume_training", resume_training)
    import streamlit

    opened, real_tabs = [], streamlit.tabs
    monkeypatch.setattr(streamlit, "tabs", lambda labels, **kw: opened.append(kw.get("default")) or real_tabs(labels, **kw))
    at = new_app()
    at.session_state["job_dir"] = str(old)  # this session's job (kept with the session across a reload)
    at.switch_page("pages/model.py").run()
    assert "Its 1 finished epoch(s) are kept: resume it to train the other 2 from the last one" in texts(at)
    assert opened[-1] == "Train"  # the page opens where its Resume button is (after a reload, it opened elsewhere)
    by_label(at.button, "Resume training").click().run()
    assert not at.exception
    (stopped, resumed), kw = calls[0]
    assert Path(stopped) == old and Path(resumed).parent == work / "jobs" and kw == {"one_at_a_time": True}
    assert at.session_state["job_dir"] == str(resumed)


def test_training_on_an_empty_patch_file_says_what_to_do(tmp_path):
    """An empty TFRecord file ended in 'the 1 TFRecord file(s) at X hold no records', and no more."""
    from core.errors import NoDataError
    from core.patchset import open_patch_set

    import gzip

    from core.errors import CorruptFileError

    (tmp_path / "train.tfrecord.gz").write_bytes(gzip.compress(b""))  # (a GZIP file of no records)
    with pytest.raises(NoDataError, match=r"hold no records \(.*\); cut patches again \(python -m core patches"):
        open_patch_set([str(tmp_path / "train.tfrecord.gz")], 64)
    (tmp_path / "train.tfrecord.gz").write_bytes(b"")  # 0 bytes: a copy that failed, said so
    with pytest.raises(CorruptFileError, match=r"train\.tfrecord\.gz is empty \(0 bytes\)"):
        open_patch_set([str(tmp_path / "train.tfrecord.gz")], 64)


def _binary_labels(small_scene, path, crop_cols=None):
    """Binary labels on the small scene's grid: crop in columns ``crop_cols`` (a slice), not crop elsewhere."""
    import numpy as np
    import rasterio

    img, _ = small_scene
    with rasterio.open(img) as src:
        profile = dict(src.profile, count=1, dtype="uint8", nodata=255)
        mask = np.zeros((src.height, src.width), np.uint8)
    if crop_cols is not None:
        mask[:, crop_cols] = 1
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mask, 1)
    return path


def test_validation_data_without_crop_pixels_are_refused_before_the_run_starts(small_scene, tmp_path):
    """Validation on data with no crop pixel trained to the end with val IoU and Dice 0 in every
    epoch and the card, and a 'best' checkpoint chosen for finding least crop."""
    from core.errors import NoDataError

    img, _ = small_scene
    lab = _binary_labels(small_scene, tmp_path / "labels.tif", crop_cols=slice(0, 100))
    no_crop = _binary_labels(small_scene, tmp_path / "no_crop.tif")
    with pytest.raises(NoDataError, match=r"validation data \(.*no_crop.tif\) hold no crop pixel: .*both crop and not-crop"):
        train(CFG, [f"{img}:{lab}"], [f"{img}:{no_crop}"], tmp_path / "run", label_map="binary")
    assert not (tmp_path / "run").exists()  # refused before anything is written
    # training data of one class (labels of crop fields only): the dashboard refused them, the command line
    # trained a model that calls everything crop
    all_crop = _binary_labels(small_scene, tmp_path / "all_crop.tif", crop_cols=slice(0, None))
    with pytest.raises(NoDataError, match=r"^the training data \(.*all_crop.tif\) hold no not-crop pixel, so the model "
                                          r"would learn to call everything crop"):
        train(CFG, [f"{img}:{all_crop}"], [f"{img}:{lab}"], tmp_path / "run", label_map="binary")
    with pytest.raises(NoDataError, match=r"hold no crop pixel, so the model would learn to call everything not crop"):
        train(CFG, [f"{img}:{no_crop}"], [f"{img}:{lab}"], tmp_path / "run", label_map="binary")
    assert not (tmp_path / "run").exists()


def test_a_held_out_block_with_one_class_is_not_the_validation_set(small_scene, tmp_path):
    """The Model page's held-out block had no crop (crop only elsewhere in the region): validation
    IoU 0 whatever the model. Validation then uses the training pixels, and the note says why."""
    from core.dataset import spatial_holdout

    img, _ = small_scene  # 320 x 288: held out with 128 px tiles are columns 128-255
    lab = _binary_labels(small_scene, tmp_path / "labels.tif", crop_cols=slice(0, 100))
    split = spatial_holdout(img, lab, "binary", tmp_path / "h", 128)
    assert split.train == split.val and "only one class" in split.note
    lab = _binary_labels(small_scene, tmp_path / "labels2.tif", crop_cols=slice(0, 200))  # both classes in the block
    assert "columns 128-255" in spatial_holdout(img, lab, "binary", tmp_path / "h2", 128).note


@pytest.mark.parametrize("message, said", [
    ("training diverged: the training loss became nan at epoch 2, step 1; start again with a lower learning rate "
     "(e.g. 0.0001: --lr, or 'Learning rate' on the Model page)", "Training diverged: the training loss"),
    # a resume of a damaged checkpoint: offered again, each click copied the run into another failed job
    ("cannot resume: checkpoint /w/jobs/job-a/train/last.keras is unreadable (ValueError); start a new run",
     "Cannot resume: checkpoint"),
])
def test_a_training_that_cannot_go_on_is_not_offered_to_resume(small_scene, stopped_run, tmp_path, monkeypatch,
                                                                message, said):
    """Resuming a run whose loss became NaN repeats it with the same learning rate: the page offered it."""
    from apptest import new_app, texts

    from pages.components import mapview

    monkeypatch.setattr(mapview, "_st_folium", lambda m, **k: None)
    work = tmp_path / "work"
    monkeypatch.setenv("CROPMAP_WORKDIR", str(work))
    job = work / "jobs" / "job-20250101-000000-aaaaaa"
    _stopped_job(job, small_scene, stopped_run, state="failed", message=message)
    at = new_app()
    at.session_state["job_dir"] = str(job)  # this session's job
    at.switch_page("pages/model.py").run()
    assert said in texts(at) and not [b for b in at.button if b.label == "Resume training"]
