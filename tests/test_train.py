import csv

import pytest

from core.config import TrainConfig
from core.errors import OutputExistsError
from core.model import load_model
from core.train import train

CFG = TrainConfig(epochs=3, steps_per_epoch=2, batch_size=2, patch_size=64, val_patches=4, patience=5)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_writes_checkpoints_history_and_card(small_scene, tmp_path):
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    events = []
    res = train(CFG, pair, pair, tmp_path / "run", progress=events.append, command="python -m core train ...")
    assert res.stopped == "completed" and res.epochs_done == 3
    rows = _rows(tmp_path / "run" / "history.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and {"loss", "val_loss", "val_iou", "val_dice"} <= set(rows[0])
    best = load_model(res.best_model)
    assert best.card.metrics["val"]["val_loss"] == pytest.approx(min(float(r["val_loss"]) for r in rows), rel=1e-4)
    assert best.card.command == "python -m core train ..."
    assert best.card.pixel_size_m is None  # the sample scene has no CRS: its pixel size is not known
    assert any(e["event"] == "epoch" for e in events) and any(e["event"] == "batch" for e in events)
    with pytest.raises(OutputExistsError, match="--resume"):
        train(CFG, pair, pair, tmp_path / "run")


def test_cancel_then_resume_loses_no_finished_epoch(small_scene, tmp_path):
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    seen = []

    def stop_in_epoch_2():
        return len([e for e in seen if e["event"] == "epoch"]) >= 1 and seen[-1]["event"] == "batch"

    res = train(CFG, pair, pair, tmp_path / "run", progress=seen.append, should_stop=stop_in_epoch_2)
    assert res.stopped == "cancelled"
    assert [r["epoch"] for r in _rows(tmp_path / "run" / "history.csv")] == ["1"]  # the interrupted epoch is not recorded
    first = _rows(tmp_path / "run" / "history.csv")[0]
    res2 = train(CFG, pair, pair, tmp_path / "run", resume=True)
    rows = _rows(tmp_path / "run" / "history.csv")
    assert res2.stopped == "completed" and [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert rows[0] == first


def test_fine_tune_starts_from_the_model_and_keeps_its_normalization(small_scene, tmp_path):
    import numpy as np
    from dataclasses import replace

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    one = replace(CFG, epochs=1)
    base = load_model(train(one, pair, pair, tmp_path / "base").best_model)
    res = train(replace(one, init_model=str(base.path), learning_rate=1e-9), pair, pair, tmp_path / "ft")
    tuned = load_model(res.best_model)
    assert tuned.card.normalization == base.card.normalization
    assert tuned.card.training["init_model"] == str(base.path)
    # at a learning rate of 1e-9 the trainable weights barely move (BatchNorm statistics do): the run
    # started from the given model, not from a new random one
    pairs = list(zip(base.model.trainable_weights, tuned.model.trainable_weights))
    assert len(pairs) == len(base.model.trainable_weights) > 10
    for a, b in pairs:
        assert np.allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_fine_tune_from_another_preset_fails_before_writing(small_scene, tmp_path):
    from dataclasses import replace

    from core.errors import ConfigError, InputNotFoundError

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    base = train(replace(CFG, epochs=1), pair, pair, tmp_path / "base").best_model
    with pytest.raises(ConfigError, match="--preset light"):
        train(replace(CFG, preset="seed", init_model=str(base)), pair, pair, tmp_path / "ft")
    with pytest.raises(InputNotFoundError):
        train(replace(CFG, init_model=str(tmp_path / "missing.keras")), pair, pair, tmp_path / "ft")
    assert not (tmp_path / "ft").exists()


def test_training_pixel_size_comes_from_the_images_crs():
    from core.train import _training_pixel_size
    from testdata import FLANDERS_LABELS, FLANDERS_S2, FTW, SAMPLE_IMAGE, SAMPLE_LABELS

    assert _training_pixel_size([f"{FLANDERS_S2}:{FLANDERS_LABELS}"]) == 10.0
    assert _training_pixel_size([f"{FLANDERS_S2}:{FLANDERS_LABELS}", f"{FTW}:{FLANDERS_LABELS}"]) == 10.0
    assert _training_pixel_size([f"{SAMPLE_IMAGE}:{SAMPLE_LABELS}"]) is None
    assert _training_pixel_size([f"{FLANDERS_S2}:{FLANDERS_LABELS}", f"{SAMPLE_IMAGE}:{SAMPLE_LABELS}"]) is None
