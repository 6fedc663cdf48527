"""Training workflow review: a diverging run, the worker's messages, the card's command, resume from the page."""

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

    from core import jobs
    from core.__main__ import build_parser
    from core.model import load_model
    from test_jobs import wait_for

    img, lab = small_scene
    job_dir = tmp_path / "job"
    cfg = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "patch_size": 64, "val_patches": 4, "learning_rate": 3e-4}
    jobs.start_training([f"{img}:{lab}"], [f"{img}:{lab}"], job_dir, label_map="cdl", config=cfg)
    st = wait_for(job_dir, ("done", "failed", "cancelled"), timeout=300)
    assert st.state == "done", st.message
    command = load_model(job_dir / "train" / "best.keras").card.command
    assert command.startswith("python -m core train --train ") and "# dashboard training job train-" in command
    args = build_parser().parse_args(shlex.split(command, comments=True)[3:])
    assert (args.train, args.val, args.out) == ([f"{img}:{lab}"], [f"{img}:{lab}"], str(job_dir / "train"))
    assert (args.label_map, args.epochs, args.steps, args.batch_size, args.patch_size, args.val_patches, args.lr,
            args.preset) == ("cdl", 1, 2, 2, 64, 4, 3e-4, "light")
    log = (job_dir / "log.txt").read_text()
    assert "oneDNN" not in log and "absl" not in log  # the worker's log holds no start-up notices
