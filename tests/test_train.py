import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from core.__main__ import main
from core.card import PRESETS, Preset
from core.config import TrainConfig
from core.errors import ConfigError, CorruptFileError, OutputExistsError, RegionError
from core.model import load_model
from core.train import train

#: these tests check a run's bookkeeping (checkpoints, history, cards, resume, interrupts), which any network
#: exercises: a U-Net of two levels of a few filters (building and tracing the light one took most of their time);
#: the first test trains the light preset itself
MICRO = Preset("micro", (4, 8), 8, None, "tests: two levels of 4 and 8 filters")
CFG = TrainConfig(epochs=3, steps_per_epoch=2, batch_size=2, patch_size=64, val_patches=4, patience=5, preset="micro")


@pytest.fixture(autouse=True, scope="module")
def _micro_preset():
    with pytest.MonkeyPatch.context() as m:  # (module-wide: module fixtures train with it too)
        m.setitem(PRESETS, "micro", MICRO)
        yield


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_writes_checkpoints_history_and_card(small_scene, tmp_path):
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    events = []
    res = train(replace(CFG, preset="light"), pair, pair, tmp_path / "run", progress=events.append,
                command="python -m core train ...")
    assert res.stopped == "completed" and res.epochs_done == 3
    rows = _rows(tmp_path / "run" / "history.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and {"loss", "val_loss", "val_iou", "val_dice"} <= set(rows[0])
    best = load_model(res.best_model)
    assert best.card.metrics["val"]["val_loss"] == pytest.approx(min(float(r["val_loss"]) for r in rows), rel=1e-4)
    assert best.card.command == "python -m core train ..."
    assert res.best_metrics["epoch"] == best.card.metrics["val"]["epoch"]  # the result names the card's epoch
    assert best.card.pixel_size_m is None  # the sample scene has no CRS: its pixel size is not known
    # the patches the best model saw by its epoch (it said the whole planned run's, even after an early stop)
    assert best.card.training["patches_seen"] == best.card.metrics["val"]["epoch"] * 2 * 2
    assert any(e["event"] == "epoch" for e in events) and any(e["event"] == "batch" for e in events)
    with pytest.raises(OutputExistsError, match="--resume"):
        train(CFG, pair, pair, tmp_path / "run")
    # a folder of other files (say the training data) is not called a run to resume
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"holds other files \(notes.txt\), not a training run; choose a new"):
        train(CFG, pair, pair, tmp_path / "data")


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
    with pytest.raises(ConfigError, match="is a 'micro' model; fine-tune it with --preset micro"):
        train(replace(CFG, preset="seed", patch_size=256, init_model=str(base)), pair, pair, tmp_path / "ft")
    with pytest.raises(InputNotFoundError):
        train(replace(CFG, init_model=str(tmp_path / "missing.keras")), pair, pair, tmp_path / "ft")
    assert not (tmp_path / "ft").exists()


def test_a_fine_tune_from_a_model_in_the_folder_it_replaces_is_refused(small_scene, finished_run, tmp_path):
    """--init RUN/best.keras --out RUN --overwrite: the model it started from went with the run it replaced,
    and the new card named a file of its own folder as its start."""
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    run = shutil.copytree(finished_run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(ConfigError, match=r"^--init .*best.keras is a model of the run in --out .*run, which "
                                          r"--overwrite replaces: copy"):
        train(replace(CFG, epochs=1, init_model=str(run / ".." / "run" / "best.keras")), pair, pair, run, overwrite=True)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # a model elsewhere in the folder (not one of the run's files, which are all --overwrite replaces) is no such case
    (run / "start").mkdir()
    for name in ("best.keras", "best.json"):
        shutil.copy(run / name, run / "start" / name)
    res = train(replace(CFG, epochs=1, init_model=str(run / "start" / "best.keras")), pair, pair, run, overwrite=True)
    assert res.epochs_done == 1 and (run / "start" / "best.keras").read_bytes() == before["best.keras"]


def test_a_fine_tune_on_patches_of_another_scale_is_refused(small_scene, tiny_model_path, tmp_path):
    """A model fine-tuned on TFRecord patches takes its statistics from the model, so the patches' own were
    never taken, nor their scale checked: patches of values x 10000 were trained on without a word."""
    from core.bands import FEATURE_BANDS
    from core.errors import InvalidDataError
    from core.patches import LABEL, write_records

    rng = np.random.default_rng(0)
    dn = [{**{b: rng.uniform(200, 4000, (64, 64)).astype(np.float32) for b in FEATURE_BANDS},
           LABEL: rng.integers(0, 2, (64, 64)).astype(np.float32)} for _ in range(4)]
    write_records(tmp_path / "dn.tfrecord.gz", dn)
    img, lab = small_scene
    cfg = replace(CFG, epochs=1, init_model=str(tiny_model_path), preset="light")
    with pytest.raises(InvalidDataError, match="^the patch file dn.tfrecord.gz does not look like surface reflectance"):
        train(cfg, [str(tmp_path / "dn.tfrecord.gz")], [f"{img}:{lab}"], tmp_path / "ft")
    assert not (tmp_path / "ft").exists()


def test_resuming_a_fine_tuning_run_does_not_need_its_init_model(small_scene, tiny_model_path, tmp_path):
    """A resumed run continues from last.keras with run.json's normalization: the model it was
    fine-tuned from may have moved since."""
    from core.card import card_path

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    (tmp_path / "init").mkdir()
    init = Path(shutil.copy(tiny_model_path, tmp_path / "init" / "tiny.keras"))
    shutil.copy(card_path(tiny_model_path), card_path(init))
    cfg = replace(CFG, epochs=2, init_model=str(init), preset="light")  # (the preset of the model it starts from)
    seen = []
    res = train(cfg, pair, pair, tmp_path / "run", progress=seen.append,
                should_stop=lambda: any(e["event"] == "epoch" for e in seen))  # stop in epoch 2
    assert res.stopped == "cancelled" and res.epochs_done == 1
    shutil.move(tmp_path / "init", tmp_path / "moved")
    res = train(cfg, pair, pair, tmp_path / "run", resume=True)
    assert res.stopped == "completed" and res.epochs_done == 2
    tuned = load_model(res.best_model)
    assert tuned.card.normalization == load_model(tiny_model_path).card.normalization
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["init_model"] == str(init)


def test_training_pixel_size_comes_from_the_images_crs():
    from core.train import _training_pixel_size
    from testdata import FLANDERS_LABELS, FLANDERS_S2, FTW, SAMPLE_IMAGE, SAMPLE_LABELS

    assert _training_pixel_size([f"{FLANDERS_S2}:{FLANDERS_LABELS}"]) == 10.0
    assert _training_pixel_size([f"{FLANDERS_S2}:{FLANDERS_LABELS}", f"{FTW}:{FLANDERS_LABELS}"]) == 10.0
    assert _training_pixel_size([f"{SAMPLE_IMAGE}:{SAMPLE_LABELS}"]) is None
    assert _training_pixel_size([f"{FLANDERS_S2}:{FLANDERS_LABELS}", f"{SAMPLE_IMAGE}:{SAMPLE_LABELS}"]) is None


def test_a_pixel_size_that_contradicts_the_images_crs_is_refused(capsys, tmp_path):
    """--pixel-size-m 30 for 10 m Sentinel-2 images went into the card as it was: their predictions got a
    false warning of other pixels, and 30 m images none."""
    from testdata import FLANDERS_LABELS, FLANDERS_S2

    pair = f"{FLANDERS_S2}:{FLANDERS_LABELS}"
    err = _cli_error(capsys, ["train", *TINY, "--patch-size", "32", "--label-map", "worldcereal", "--train", pair,
                              "--val", pair, "--pixel-size-m", "30", "--out", str(tmp_path / "r")])
    assert "--pixel-size-m 30 contradicts the training images' own 10 m pixels" in err
    assert not (tmp_path / "r").exists()


# --- failures leave a run folder as it was ---------------------------------------------------------

#: the tiniest CLI training: one epoch of one step
TINY = ["--epochs", "1", "--steps", "1", "--batch-size", "2", "--patch-size", "64", "--val-patches", "2", "--preset", "micro"]


@pytest.fixture(scope="module")
def finished_run(small_scene, tmp_path_factory) -> Path:
    """A finished one-epoch run (last/best checkpoints, card, history, run.json) to copy and not touch."""
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    run = tmp_path_factory.mktemp("finished") / "run"
    train(replace(CFG, epochs=1), pair, pair, run, command="first run")
    assert {"last.keras", "best.keras", "best.json", "history.csv", "run.json"} <= {p.name for p in run.iterdir()}
    return run


@pytest.fixture(scope="module")
def block(small_scene, tmp_path_factory) -> tuple[Path, Path]:
    """A 64 x 64 px image and its labels: smaller than a 128 px patch."""
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS, cut

    d = tmp_path_factory.mktemp("block")
    win = Window(200, 300, 64, 64)
    return cut(SAMPLE_IMAGE, d / "block.tif", win), cut(SAMPLE_LABELS, d / "block_labels.tif", win)


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def _cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI expecting a user error: exit status 2 and one line on stderr, no traceback."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_a_failed_overwrite_keeps_the_previous_run(capsys, small_scene, block, finished_run, tmp_path):
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = shutil.copytree(finished_run, tmp_path / "run")
    before = _files(run)
    mistakes = {
        "not found": ["--train", f"{tmp_path / 'missing.tif'}:{lab}", "--val", pair],
        "unknown label map": ["--train", pair, "--val", pair, "--label-map", "nope"],
        "unknown model preset": ["--train", pair, "--val", pair, "--preset", "huge"],
        "smaller than one 128 px patch; use --patch-size 64": ["--train", pair, "--val", f"{block[0]}:{block[1]}",
                                                              "--patch-size", "128"],
        "positive number of metres": ["--train", pair, "--val", pair, "--pixel-size-m", "-30"],
        "no label raster for block.tif; give IMAGE:LABELS": ["--train", str(block[0]), "--val", pair],
        "both image and labels": ["--train", f"{img}:{img}", "--val", pair],
    }
    for words, args in mistakes.items():
        err = _cli_error(capsys, ["train", *TINY, *args, "--out", str(run), "--overwrite"])
        assert words in err
        assert _files(run) == before, words  # nothing removed, nothing written


def test_an_overwrite_interrupted_before_its_first_epoch_ends_puts_the_previous_run_back(
        small_scene, finished_run, tmp_path, monkeypatch):
    import keras

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    run = shutil.copytree(finished_run, tmp_path / "run")
    before = _files(run)

    def interrupted(self, *args, **kwargs):
        assert not (run / "best.keras").exists()  # set aside while the new run goes
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(CFG, pair, pair, run, overwrite=True, command="second run")
    assert _files(run) == before  # the previous run, whole; no new file, no hidden folder left
    monkeypatch.undo()
    # cancelled before its first epoch ends: the same
    res = train(CFG, pair, pair, run, overwrite=True, command="cancelled run", should_stop=lambda: True)
    assert res.stopped == "cancelled" and _files(run) == before
    # an overwrite that finishes an epoch and then fails keeps the new run (it can be resumed)
    calls = {"n": 0}
    from core import train as train_module

    real = train_module._append_history

    def fail_after_first(*args):
        real(*args)
        calls["n"] += 1
        if calls["n"] == 1:
            raise MemoryError("out of memory")

    monkeypatch.setattr(train_module, "_append_history", fail_after_first)
    with pytest.raises(MemoryError):
        train(CFG, pair, pair, run, overwrite=True, command="third run")
    assert json.loads((run / "run.json").read_text())["command"] == "third run"
    assert len(_rows(run / "history.csv")) == 1 and not [p for p in run.iterdir() if p.name.startswith(".")]


def test_a_failed_start_writes_nothing_so_the_corrected_retry_runs(capsys, small_scene, block, tmp_path):
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = tmp_path / "run"
    small = f"{block[0]}:{block[1]}"
    err = _cli_error(capsys, ["train", *TINY, "--train", small, "--val", small, "--patch-size", "128", "--out", str(run)])
    assert "block.tif is 64 x 64 px, smaller than one 128 px patch; use --patch-size 64 or larger images" in err
    assert "unknown model preset" in _cli_error(capsys, ["train", *TINY, "--train", pair, "--val", pair,
                                                        "--preset", "huge", "--out", str(run)])
    with pytest.raises(ConfigError, match="positive"):
        train(CFG, [pair], [pair], run, pixel_size_m=float("nan"))
    with pytest.raises(RegionError, match="smaller than one 128 px patch"):
        train(replace(CFG, patch_size=128), [pair], [small], run)  # a validation image too small counts as well
    assert not run.exists()
    (tmp_path / "afile").write_text("not a folder")
    assert "is a file" in _cli_error(capsys, ["train", *TINY, "--train", pair, "--val", pair, "--out", str(tmp_path / "afile")])
    assert "is a file" in _cli_error(capsys, ["train", *TINY, "--train", pair, "--val", pair, "--out",
                                              str(tmp_path / "afile" / "run")])  # under a file, too
    capsys.readouterr()
    assert main(["train", *TINY, "--train", pair, "--val", pair, "--out", str(run), "--pixel-size-m", "30"]) == 0
    assert json.loads((run / "best.json").read_text())["pixel_size_m"] == 30.0
    out, err = capsys.readouterr()
    # stdout is the result alone (epoch lines on stderr: train ... | head stopped the run at the next epoch)
    assert json.loads(out)["best_model"] == str(run / "best.keras") and "epoch 1/" in err
    # validated on its training data: said after the run (the README's Earth Engine example did so)
    assert "note: --val reads small_rgbn.tif, which --train reads too, so the best epoch was chosen partly" in err


def test_validation_files_shared_with_training_are_found_however_their_paths_are_written(
        small_scene, block, tmp_path, monkeypatch):
    from core.train import shared_inputs

    img, lab = small_scene
    other = f"{block[0]}:{block[1]}"
    monkeypatch.chdir(img.parent)
    link = tmp_path / "link_rgbn.tif"
    link.symlink_to(img)
    assert shared_inputs([f"{img}:{lab}"], ["small_rgbn.tif"]) == ["small_rgbn.tif"]  # absolute pair, relative file
    assert shared_inputs([str(img.parent), other], [f"{link}:{lab}"]) == ["link_rgbn.tif"]  # a folder, a link
    assert shared_inputs([f"{img}:{lab}"], [other]) == []
    records = tmp_path / "patches"
    records.mkdir()
    for name in ("a.tfrecord.gz", "b.tfrecord.gz"):
        (records / name).write_bytes(b"")
    assert shared_inputs([str(records)], [str(records / "b.tfrecord.gz")]) == ["b.tfrecord.gz"]
    assert shared_inputs([str(records / "a.tfrecord.gz")], [str(records / "b*.tfrecord.gz")]) == []


def test_an_image_validated_on_labels_held_out_from_its_training_labels_is_not_said_shared(small_scene, tmp_path):
    """--train IMG:train_labels --val IMG:val_labels with labels of disjoint pixels (what patches --test
    holds out) was said to validate on training pixels, because the image is the same file."""
    import rasterio

    from core.train import shared_inputs

    img, lab = small_scene
    with rasterio.open(lab) as src:
        codes, profile = src.read(1), src.profile
    half = codes.shape[0] // 2

    def labels(name, rows):
        out = np.zeros_like(codes)  # (CDL's no data)
        out[rows] = codes[rows]
        with rasterio.open(tmp_path / name, "w", **profile) as dst:
            dst.write(out, 1)
        return f"{img}:{tmp_path / name}"

    top, bottom = labels("top.tif", slice(0, half)), labels("bottom.tif", slice(half, None))
    overlapping = labels("middle.tif", slice(half - 1, None))
    assert shared_inputs([top], [bottom], "cdl") == []
    assert shared_inputs([top], [overlapping], "cdl") == ["small_rgbn.tif"]  # one row in common
    assert shared_inputs([top], [top], "cdl") == ["small_rgbn.tif"]
    assert shared_inputs([top, f"{img}:{lab}"], [bottom], "cdl") == ["small_rgbn.tif"]  # (the whole labels too)


def test_a_new_run_that_fails_in_its_first_epoch_leaves_nothing_so_a_retry_needs_no_overwrite(
        small_scene, tmp_path, monkeypatch):
    import keras

    img, lab = small_scene
    pair = f"{img}:{lab}"
    run, kept = tmp_path / "run", tmp_path / "kept"
    kept.mkdir()

    def fails(self, *args, **kwargs):
        assert (run / "run.json").exists()  # the run had started
        raise MemoryError("out of memory")

    monkeypatch.setattr(keras.Model, "fit", fails)
    with pytest.raises(MemoryError):
        train(CFG, [pair], [pair], run)
    assert not run.exists()  # the folder it made goes too
    run = kept  # an empty folder that was there stays
    with pytest.raises(MemoryError):
        train(CFG, [pair], [pair], run)
    assert kept.is_dir() and _files(kept) == {}
    monkeypatch.undo()
    res = train(CFG, [pair], [pair], kept)  # the retry: no --overwrite needed
    assert res.epochs_done == CFG.epochs and (kept / "best.keras").exists()


def test_resume_from_a_damaged_run_json_is_one_line_and_touches_nothing(capsys, small_scene, finished_run, tmp_path):
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = shutil.copytree(finished_run, tmp_path / "run")
    text = (run / "run.json").read_text()
    (run / "run.json").write_text(text[: len(text) // 2])
    before = _files(run)
    with pytest.raises(CorruptFileError, match="--overwrite"):
        train(replace(CFG, epochs=1), [pair], [pair], run, resume=True)
    err = _cli_error(capsys, ["train", *TINY, "--train", pair, "--val", pair, "--out", str(run), "--resume"])
    assert "run.json is truncated or damaged" in err and "--overwrite" in err
    assert _files(run) == before


@pytest.mark.parametrize("damage, pixel_size_m", [
    (lambda info: info["normalization"].update(std=info["normalization"]["std"][:2]), None),  # (numpy: could not broadcast)
    (lambda info: info["normalization"].update(mean=[1]), None),
    (lambda info: info["normalization"].update(std="11"), None),
    (lambda info: info["normalization"]["std"].__setitem__(0, 0), None),  # (a division by zero: NaN patches)
    (lambda info: info["normalization"]["mean"].__setitem__(1, float("nan")), None),
    (lambda info: info.update(pixel_size_m="thirty"), 30),  # (a TypeError comparing it with --pixel-size-m)
    (lambda info: info.update(pixel_size_m=-30), None),  # (the model card's pixel size)
])
def test_resume_from_a_run_json_with_damaged_values_is_refused(small_scene, finished_run, tmp_path, damage, pixel_size_m):
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = shutil.copytree(finished_run, tmp_path / "run")
    info = json.loads((run / "run.json").read_text())
    damage(info)
    (run / "run.json").write_text(json.dumps(info))
    before = _files(run)
    with pytest.raises(CorruptFileError, match="run.json is truncated or damaged"):
        train(replace(CFG, epochs=1), [pair], [pair], run, resume=True, pixel_size_m=pixel_size_m)
    assert _files(run) == before


@pytest.mark.parametrize("column, value", [("loss", "x"), ("val_iou", "0.5.1"), ("epoch", "1.5")])
def test_resume_from_a_history_with_a_damaged_best_row_is_refused(small_scene, finished_run, tmp_path, column, value):
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = shutil.copytree(finished_run, tmp_path / "run")
    rows = _rows(run / "history.csv")
    rows[0][column] = value  # (the one epoch: the best)
    with open(run / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    before = _files(run)
    with pytest.raises(CorruptFileError, match="history.csv is damaged .its best epoch's row"):
        train(replace(CFG, epochs=1), [pair], [pair], run, resume=True)
    assert _files(run) == before


def test_run_json_is_replaced_whole_or_not_at_all(small_scene, finished_run, tmp_path, monkeypatch):
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = shutil.copytree(finished_run, tmp_path / "run")
    before = (run / "run.json").read_bytes()
    real_write = Path.write_text

    def disk_full(self, data, *args, **kwargs):
        real_write(self, data[:10], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space"):
        train(replace(CFG, epochs=1), [pair], [pair], run, resume=True)
    monkeypatch.undo()
    assert (run / "run.json").read_bytes() == before
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in finished_run.iterdir())  # no temporary left


def test_a_second_trainer_in_the_same_folder_is_refused_and_touches_nothing(capsys, small_scene, finished_run, tmp_path,
                                                                         monkeypatch):
    """Two `train --out` of one folder at once (a command run twice, or from two terminals) wrote over
    each other's checkpoints and history; the second is now refused, by any spelling of the folder."""
    import os

    from core.train import _one_trainer

    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    monkeypatch.chdir(tmp_path)
    import tempfile

    (tmp_path / "locks").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "locks"))  # (the lock files: here, not in /tmp)
    with _one_trainer(run):  # (what a run under way holds)
        err = _cli_error(capsys, ["train", *TINY, "--train", pair, "--val", pair, "--out", "./run/", "--resume"])
        assert f"another training run (process {os.getpid()}) is writing to run; wait for it to end" in err
        with pytest.raises(ConfigError, match="another training run"):
            train(replace(CFG, epochs=1), [pair], [pair], run, overwrite=True)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert main(["train", *TINY, "--train", pair, "--val", pair, "--out", "run", "--overwrite"]) == 0  # once it has ended
    # another user's lock file (left by an earlier run of theirs, 644 under their umask): opened read-only, it
    # locks all the same (it was a PermissionError)
    import core.train

    real_open = os.open

    def not_writable(path, flags, *mode):
        if str(path).endswith(".lock") and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *mode)

    with _one_trainer(run):
        monkeypatch.setattr(core.train.os, "open", not_writable)
        with pytest.raises(ConfigError, match=r"another training run \(process \d+\) is writing to"):
            with _one_trainer(run):
                pass
        monkeypatch.setattr(core.train.os, "open", real_open)
    # a run removes its lock file as it ends (one a run folder piled up in /tmp); another user's is left alone
    assert list((tmp_path / "locks").iterdir()) == []
    # a run holding the file read-only cannot write its number: the one left there, of a run that died (or of
    # another user's run, which this user cannot remove), is not named as the holder
    with _one_trainer(run):
        [lock] = (tmp_path / "locks").iterdir()
    lock.write_text("4194304")  # (above any process number Linux gives)
    monkeypatch.setattr(core.train.os, "open", not_writable)
    with _one_trainer(run):
        with pytest.raises(ConfigError, match=r"^another training run is writing to"):
            with _one_trainer(run):
                pass
    monkeypatch.setattr(core.train.os, "open", real_open)


def test_a_lock_file_removed_by_a_run_that_ended_is_not_taken(tmp_path, monkeypatch):
    """A run that opened the lock file just before the run holding it ended (and removed it) must not
    take the removed file: a third run starting then locks a new file at that name, and the two would
    write the same folder at once. It takes the file the name now gives, and is refused while it is held."""
    import fcntl
    import os
    import tempfile

    import core.train
    from core.train import _one_trainer

    (tmp_path / "locks").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "locks"))
    run = tmp_path / "run"
    with _one_trainer(run):
        [lock] = (tmp_path / "locks").iterdir()
    lock.write_text("")
    stale = os.open(lock, os.O_RDWR)  # opened by the late run ...
    lock.unlink()  # ... then removed by the run that ended
    lock.write_text(str(os.getpid()))
    third = os.open(lock, os.O_RDWR)  # the third run, under way
    fcntl.flock(third, fcntl.LOCK_EX | fcntl.LOCK_NB)
    real = core.train._lock_file
    given = iter([(stale, True)])
    monkeypatch.setattr(core.train, "_lock_file", lambda path: next(given, None) or real(path))
    try:
        with pytest.raises(ConfigError, match=r"another training run \(process \d+\) is writing to"):
            with _one_trainer(run):
                pass
    finally:
        os.close(third)
    with _one_trainer(run):  # once the third has ended
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()
    # the file removed by a run ending between the look for it and its opening: looked for again (the open's
    # FileNotFoundError read as "no lock file to be had", and the run went on unguarded)
    lock.write_text("")
    real_open, gone = os.open, []

    def removed_first(path, flags, *mode):
        if str(path).endswith(".lock") and not gone:
            gone.append(path)
            os.unlink(path)
        return real_open(path, flags, *mode)

    monkeypatch.setattr(core.train, "_lock_file", real)
    monkeypatch.setattr(core.train.os, "open", removed_first)
    with _one_trainer(run):
        monkeypatch.setattr(core.train.os, "open", real_open)
        assert gone and lock.exists()
        with pytest.raises(ConfigError, match="another training run"):  # (held: not unguarded)
            with _one_trainer(run):
                pass


def test_resume_needs_a_run_to_resume(capsys, small_scene, tmp_path):
    img, lab = small_scene
    pair = f"{img}:{lab}"
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(replace(CFG, epochs=1), [pair], [pair], tmp_path / "typo", resume=True)
    err = _cli_error(capsys, ["train", *TINY, "--train", pair, "--val", pair, "--out", str(tmp_path / "typo"), "--resume"])
    assert "nothing to resume" in err and "leave out --resume" in err
    assert not (tmp_path / "typo").exists()  # a mistyped folder is not made into a new run


def test_resume_without_the_checkpoint_of_finished_epochs_touches_nothing(capsys, small_scene, tmp_path):
    """last.keras gone from a run with finished epochs: --resume started the run again from nothing
    and replaced its history and best model. Now it is refused, and the run stays as it was."""
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = tmp_path / "run"
    train(replace(CFG, epochs=2), [pair], [pair], run)
    (run / "last.keras").unlink()
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    err = _cli_error(capsys, ["train", *TINY, "--train", pair, "--val", pair, "--out", str(run), "--resume"])
    assert "last.keras is missing, though the run has finished 2 epochs" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("removed", [("best.keras", "best.json"), ("best.json",)])
def test_resume_without_the_best_model_of_finished_epochs_touches_nothing(small_scene, finished_run, tmp_path, removed):
    """best.keras (or its card) gone from a run with a finished epoch: --resume ended with exit 0, "wrote
    .../best.keras" and a next step naming a model that was not there (or could not be loaded)."""
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = shutil.copytree(finished_run, tmp_path / "run")
    for name in removed:
        (run / name).unlink()
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(CorruptFileError) as refused:
        train(replace(CFG, epochs=1), [pair], [pair], run, resume=True)
    assert f"{' and '.join(removed)} {'are' if len(removed) == 2 else 'is'} missing from {run}, though the run has " \
           "finished 1 epoch(s)" in str(refused.value) and "--overwrite" in str(refused.value)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_resuming_a_finished_run_reports_its_best_epoch(small_scene, finished_run, tmp_path):
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = shutil.copytree(finished_run, tmp_path / "run")
    row = _rows(run / "history.csv")[0]
    res = train(replace(CFG, epochs=1), [pair], [pair], run, resume=True)
    assert res.stopped == "completed" and res.epochs_done == 1
    assert res.best_metrics["epoch"] == 1
    assert res.best_metrics["val_loss"] == pytest.approx(float(row["val_loss"]))
    assert res.best_val_loss == pytest.approx(float(row["val_loss"]))


def test_resume_on_other_data_is_refused(small_scene, finished_run, tmp_path, monkeypatch):
    img, lab = small_scene
    run = shutil.copytree(finished_run, tmp_path / "run")
    before = _files(run)
    pair = [f"{img}:{lab}"]
    with pytest.raises(ConfigError, match="other --label-map"):
        train(replace(CFG, epochs=1), pair, pair, run, label_map="glc30", resume=True)
    with pytest.raises(ConfigError, match=f"other --val \\({img}:{lab}\\); resume with the same data"):
        train(replace(CFG, epochs=1), pair, [f"{lab}:{lab}"], run, resume=True)
    with pytest.raises(ConfigError, match=r"started with --init not given \(now x.keras\)"):
        train(replace(CFG, epochs=1, init_model="x.keras"), pair, pair, run, resume=True)
    # a run started without --bands (whose run.json has none, as those recorded before --bands) resumes so only
    assert "bands" not in json.loads((run / "run.json").read_text())
    with pytest.raises(ConfigError, match=r"started with no --bands \(bands read by their names\)"):
        train(replace(CFG, epochs=1), pair, pair, run, band_map={"R": 1, "G": 2, "B": 3, "NIR": 4}, resume=True)
    # another option: named, with what the run was started with
    with pytest.raises(ConfigError, match=r"started with --epochs 1 \(now 4\), --lr 0.001 \(now 0.0003\); resume "
                                          r"with the same options.*fine-tune its best.keras with --init"):
        train(replace(CFG, epochs=4, learning_rate=3e-4), pair, pair, run, resume=True)
    assert _files(run) == before
    # the same files written otherwise (relative, with ./ or ..) are the same data: resumed (it was refused as
    # other data); a folder with or without its trailing slash too
    again = shutil.copytree(finished_run, tmp_path / "again")
    monkeypatch.chdir(img.parent)
    res = train(replace(CFG, epochs=1), [f"./{img.name}:../{lab.parent.name}/{lab.name}"], pair, again, resume=True)
    assert res.stopped == "completed" and res.epochs_done == 1
    from core.train import _data_key

    assert _data_key(["data/", "gs://b/p/"]) == _data_key([str(img.parent / "data"), "gs://b/p"])
    assert _data_key(["data"]) != _data_key(["other"])


def test_training_images_without_band_names_take_their_numbers(capsys, tmp_path):
    """train had no --bands (its error sent the user to cut patches with them first)."""
    import numpy as np
    from testdata import write_raster

    from core.errors import BandError
    from core.bands import parse_band_spec

    rng = np.random.default_rng(0)
    img = write_raster(tmp_path / "img.tif", rng.integers(300, 3000, (4, 64, 64)).astype(np.int16))  # bands unnamed
    lab = write_raster(tmp_path / "lab.tif", (np.indices((64, 64))[1] % 2).astype(np.uint8))  # crop every other column
    pair = f"{img}:{lab}"
    run = tmp_path / "run"
    with pytest.raises(BandError, match=r"give the band numbers of R, G, B and NIR, e.g. 1,2,3,4 \(--bands on the command"):
        train(replace(CFG, patch_size=32), [pair], [pair], run, label_map="binary")
    assert not run.exists()
    assert main(["train", *TINY, "--patch-size", "32", "--train", pair, "--val", pair, "--label-map", "binary",
                 "--bands", "4,3,2,1", "--out", str(run)]) == 0
    capsys.readouterr()
    assert json.loads((run / "run.json").read_text())["bands"] == "4,3,2,1"
    # resumed with the bands it was started with only
    cfg = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, patch_size=32, val_patches=2, preset="micro")
    for other, said in ((None, "--bands 4,3,2,1"), ("R=4,G=3,B=1,NIR=2", "--bands 4,3,2,1")):
        with pytest.raises(ConfigError, match=f"was started with {said}; resume with the same"):
            train(cfg, [pair], [pair], run, label_map="binary", band_map=parse_band_spec(other), resume=True)
    res = train(cfg, [pair], [pair], run, label_map="binary", band_map=parse_band_spec("R=4,G=3,B=2,NIR=1"), resume=True)
    assert res.epochs_done == 1


def test_early_stopping_resumes_from_the_runs_best_loss_and_patience():
    import keras

    from core.train import _EarlyStopping

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    cb = _EarlyStopping(patience=2, best=1.0, wait=1)  # one epoch since the best (1.0) before the resume
    cb.set_model(model)
    cb.on_train_begin()
    cb.on_epoch_end(3, {"val_loss": 1.5})  # worse again: two epochs without improvement
    assert model.stop_training
    model.stop_training = False
    fresh = _EarlyStopping(patience=2, best=float("inf"), wait=0)
    fresh.set_model(model)
    fresh.on_train_begin()
    fresh.on_epoch_end(0, {"val_loss": 1.5})
    assert not model.stop_training and fresh.best == 1.5


def test_resuming_a_run_that_stopped_early_trains_no_more(small_scene, tmp_path):
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    cfg = replace(CFG, epochs=5, patience=1)
    seen = []
    train(cfg, pair, pair, tmp_path / "run", progress=seen.append,  # stopped in epoch 3 (or early after epoch 2)
          should_stop=lambda: len([e for e in seen if e["event"] == "epoch"]) >= 2)
    rows = _rows(tmp_path / "run" / "history.csv")
    assert len(rows) == 2
    rows[1]["val_loss"] = str(float(rows[0]["val_loss"]) + 1)
    with open(tmp_path / "run" / "history.csv", "w", newline="") as f:  # as if epoch 2 was worse and stopped it
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = train(cfg, pair, pair, tmp_path / "run", resume=True)
    assert res.stopped == "early_stopping" and res.epochs_done == 2
    assert res.best_metrics["epoch"] == 1


def test_an_interrupt_while_saving_the_best_model_loses_it_not(small_scene, tmp_path, monkeypatch):
    from core import train as train_module

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    real_save, seeds = train_module.save_model, []
    real_set = train_module.SceneSet

    def set_recorded(scenes, size, norm, seed=0, **kw):
        seeds.append(seed)
        return real_set(scenes, size, norm, seed=seed, **kw)

    def interrupted_save(model, card, path):  # the first best model: interrupted as it is moved into place
        import os

        monkeypatch.setattr(train_module, "save_model", real_save)
        real_replace = os.replace

        def interrupt(*args):
            raise KeyboardInterrupt

        os.replace = interrupt
        try:
            real_save(model, card, path)
        finally:
            os.replace = real_replace

    monkeypatch.setattr(train_module, "SceneSet", set_recorded)
    monkeypatch.setattr(train_module, "save_model", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        train(replace(CFG, epochs=2), pair, pair, tmp_path / "run")
    # epoch 1 did not count as finished, so the run left nothing (no half-written model either): the
    # same command runs again, with no --resume or --overwrite
    assert not (tmp_path / "run").exists()
    res = train(replace(CFG, epochs=2), pair, pair, tmp_path / "run")
    rows = _rows(tmp_path / "run" / "history.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    best_epoch = min(rows, key=lambda r: float(r["val_loss"]))["epoch"]  # the epoch of the lowest validation loss
    assert res.best_model.exists() and load_model(res.best_model).card.metrics["val"]["epoch"] == int(best_epoch)
    # epoch 1 is redone from its start: the same random patches
    assert seeds == [CFG.seed, CFG.seed]


@pytest.mark.parametrize("where", ["history", "last"])
def test_an_interrupt_at_an_epochs_end_neither_loses_nor_repeats_it(small_scene, tmp_path, monkeypatch, where):
    """Interrupted before epoch 1's history row, or after it but before last.keras is in place: the
    resumed run redoes epoch 1 from the weights it started from (it once went on from the epoch's end:
    trained twice, 6 steps for 2 epochs of 2), and history.csv has each epoch once."""
    import os

    import keras

    from core import train as train_module

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    cfg = replace(CFG, epochs=2)
    real_replace = os.replace

    def interrupted(*args):
        raise KeyboardInterrupt

    def interrupted_replace(src, dst, *args, **kw):
        if str(dst).endswith("last.keras"):
            raise KeyboardInterrupt
        return real_replace(src, dst, *args, **kw)

    with monkeypatch.context() as m:
        if where == "history":
            m.setattr(train_module, "_append_history", interrupted)
        else:
            m.setattr(os, "replace", interrupted_replace)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, pair, pair, tmp_path / "run")
    if where == "history":  # no epoch finished: nothing is left, and the same command runs again
        assert not (tmp_path / "run").exists()
        # nor the folders made for a run: runs/ of runs/light was left, empty
        with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
            m.setattr(train_module, "_append_history", interrupted)
            train(replace(cfg, epochs=1), pair, pair, tmp_path / "runs" / "light")
        assert not (tmp_path / "runs").exists()
        res = train(cfg, pair, pair, tmp_path / "run")
    else:  # epoch 1's row is written: the run is kept, to resume
        assert not [p.name for p in (tmp_path / "run").iterdir() if ".tmp." in p.name]
        res = train(cfg, pair, pair, tmp_path / "run", resume=True)
    assert [r["epoch"] for r in _rows(tmp_path / "run" / "history.csv")] == ["1", "2"] and res.epochs_done == 2
    last = keras.models.load_model(tmp_path / "run" / "last.keras", custom_objects=train_module.CUSTOM_OBJECTS)
    assert int(last.optimizer.iterations) == cfg.epochs * cfg.steps_per_epoch


def test_labels_without_a_valid_pixel_are_named_as_the_data_they_are(small_scene, tmp_path):
    """Empty validation labels were reported as 'the training scenes hold no pixel ...'."""
    import numpy as np
    import rasterio

    from core.errors import NoDataError

    img, lab = small_scene
    with rasterio.open(lab) as src:
        profile, codes = src.profile, src.read(1)
    empty = tmp_path / "empty_cdl.tif"
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.zeros_like(codes), 1)  # CDL 0: no data everywhere
    cfg = replace(CFG, epochs=1, steps_per_epoch=1)
    with pytest.raises(NoDataError, match=r"the validation data \(.*:empty_cdl.tif\) hold no pixel .*--label-map \(here cdl\)"):
        train(cfg, [f"{img}:{lab}"], [f"{img}:{empty}"], tmp_path / "run")
    with pytest.raises(NoDataError, match=r"the training data \(.*:empty_cdl.tif\) hold no pixel"):
        train(cfg, [f"{img}:{empty}"], [f"{img}:{lab}"], tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_seed_preset_with_another_patch_size_is_refused_before_writing(capsys, small_scene, tmp_path):
    img, lab = small_scene
    pair = f"{img}:{lab}"
    with pytest.raises(ConfigError, match="'seed' preset takes 256 px patches only; use --patch-size 256"):
        train(TrainConfig(**{**CFG.to_dict(), "preset": "seed"}), [pair], [pair], tmp_path / "run")
    assert not (tmp_path / "run").exists()
    err = _cli_error(capsys, ["train", *TINY, "--preset", "seed", "--train", pair, "--val", pair, "--out", str(tmp_path / "r")])
    assert "--patch-size 256" in err and "the 'seed' preset" in err  # (not "the '--seed' preset": the random seed's option)


def test_resume_with_another_pixel_size_is_refused(small_scene, tmp_path, monkeypatch):
    from core import train as train_module

    seeds, real_set = [], train_module.SceneSet

    def set_recorded(scenes, size, norm, seed=0, **kw):
        seeds.append(seed)
        return real_set(scenes, size, norm, seed=seed, **kw)

    monkeypatch.setattr(train_module, "SceneSet", set_recorded)
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    cfg = replace(CFG, epochs=2)
    seen = []
    train(cfg, pair, pair, tmp_path / "run", pixel_size_m=30, progress=seen.append,
          should_stop=lambda: any(e["event"] == "epoch" for e in seen))
    with pytest.raises(ConfigError, match="--pixel-size-m 30"):
        train(cfg, pair, pair, tmp_path / "run", pixel_size_m=10, resume=True)
    res = train(cfg, pair, pair, tmp_path / "run", resume=True)  # left out: the run's own
    assert load_model(res.best_model).card.pixel_size_m == 30
    # resumed after epoch 1, the run draws its patches from a new random stream, not epoch 1's again
    assert seeds[0] == CFG.seed and seeds[-1] != CFG.seed


def test_resume_with_the_largest_seed_and_from_a_damaged_checkpoint(small_scene, tmp_path):
    """The largest seed the config takes still resumes (the resumed data seed stays a valid numpy
    seed), and a checkpoint whose weights fail their zip CRC is a CorruptFileError, not a traceback."""
    import zipfile

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    cfg = replace(CFG, epochs=2, seed=2**32 - 1)
    seen = []
    train(cfg, pair, pair, tmp_path / "run", progress=seen.append,
          should_stop=lambda: any(e["event"] == "epoch" for e in seen))  # stopped in epoch 2
    shutil.copytree(tmp_path / "run", tmp_path / "damaged")
    last = tmp_path / "damaged" / "last.keras"
    data = bytearray(last.read_bytes())
    with zipfile.ZipFile(last) as z:
        info = z.getinfo("model.weights.h5")
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="cannot resume: checkpoint .*last.keras is unreadable"):
        train(cfg, pair, pair, tmp_path / "damaged", resume=True)
    res = train(cfg, pair, pair, tmp_path / "run", resume=True)
    assert res.stopped == "completed" and [r["epoch"] for r in _rows(tmp_path / "run" / "history.csv")] == ["1", "2"]


def test_a_best_model_of_an_epoch_left_out_of_the_history_stays_the_best_on_resume(tiny_model_path, tmp_path):
    """Interrupted between saving an epoch's best.keras and writing its history row, a run redoes the
    epoch on resume; the best so far is then the file's (better than any recorded epoch), so that
    the figures reported and the model kept are of the same epoch."""
    from core.card import card_path
    from core.train import _unrecorded_best

    best = tmp_path / "best.keras"
    shutil.copy(tiny_model_path, best)
    card = json.loads(card_path(tiny_model_path).read_text())

    def with_val(**val):
        card_path(best).write_text(json.dumps({**card, "metrics": {"val": val}}))

    with_val(epoch=3, val_loss=0.30, val_iou=0.7)
    assert _unrecorded_best(best, 2, 0.35) == {"epoch": 3, "val_loss": 0.30, "val_iou": 0.7}
    assert _unrecorded_best(best, 3, 0.35) is None  # epoch 3 is recorded: the history has it
    assert _unrecorded_best(best, 2, 0.25) is None  # not better than the recorded best (cannot happen; ignored)
    with_val(epoch=1, val_loss=0.30)
    assert _unrecorded_best(best, 2, 0.35) is None
    card_path(best).write_text("{")  # a damaged card: the history's best stands
    assert _unrecorded_best(best, 2, 0.35) is None
    assert _unrecorded_best(tmp_path / "none.keras", 2, 0.35) is None


def test_fine_tune_from_a_model_of_other_bands_fails_before_writing(small_scene, swir_model_path, tmp_path):
    """Without the band check a model trained on SWIR was fine-tuned on R, G, B, NIR, NDVI (the same
    number of inputs): a run of epochs on the wrong features, and a card that says SWIR. It must
    stop at once, before the run folder is made."""
    from core.errors import ModelMismatchError

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    with pytest.raises(ModelMismatchError, match="SWIR1"):
        train(replace(CFG, epochs=1, init_model=str(swir_model_path)), pair, pair, tmp_path / "ft")
    assert not (tmp_path / "ft").exists()


def test_training_on_a_few_surveyed_fields_runs_and_scores_their_pixels(small_scene, tmp_path):
    """Labels of six surveyed fields (2.6% of the image, no 64 px window half labelled) train, and
    validate on the fields' pixels: the run was refused ("no window with 50% valid pixels")."""
    import numpy as np

    from testdata import surveyed_labels

    img, lab = small_scene
    pair = [f"{img}:{surveyed_labels(lab, tmp_path / 'surveyed_cdl.tif')}"]
    res = train(CFG, pair, pair, tmp_path / "run")
    assert res.stopped == "completed" and res.epochs_done == 3
    rows = _rows(tmp_path / "run" / "history.csv")
    assert all(0 <= float(r["val_iou"]) <= 1 and np.isfinite(float(r["val_loss"])) for r in rows)
    from core.card import card_facts

    card = load_model(res.best_model).card
    assert card.training["patches_around_labels"] is True  # the card says so, in words too
    assert "patches placed around labelled pixels (the labels were too sparse for patches half labelled)" in \
        dict(card_facts(card))["Training"]
    dense = train(replace(CFG, epochs=1), [f"{img}:{lab}"], [f"{img}:{lab}"], tmp_path / "dense")
    assert "patches_around_labels" not in load_model(dense.best_model).card.training


def _batchnorm(model):
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def test_the_batchnorm_momentum_is_the_one_the_training_step_uses(small_scene, tmp_path):
    """Keras' own 0.99 left a short run's moving statistics a third random start: the run's
    bn_momentum (0.9 by default) is what the traced training step applies, and it changes only
    the moving statistics (the weights train the same)."""
    import keras
    import numpy as np

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    one_step = replace(CFG, epochs=1, steps_per_epoch=1)
    models = {}
    for m in (0.9, 0.99):
        train(replace(one_step, bn_momentum=m), pair, pair, tmp_path / str(m))
        models[m] = keras.models.load_model(tmp_path / str(m) / "last.keras", compile=False)
    assert {layer.momentum for layer in _batchnorm(models[0.9])} == {0.9}  # (saved with the checkpoint)
    assert {layer.momentum for layer in _batchnorm(models[0.99])} == {0.99}
    first = [_batchnorm(models[m])[0] for m in (0.9, 0.99)]
    # one step from a zero mean: (1 - momentum) x the batch's mean, the same batch in both runs
    assert np.abs(np.asarray(first[1].moving_mean)).max() > 1e-6
    np.testing.assert_allclose(np.asarray(first[0].moving_mean), 10 * np.asarray(first[1].moving_mean),
                               rtol=1e-3, atol=1e-8)
    kernels = [np.asarray(models[m].layers[1].kernel) for m in (0.9, 0.99)]
    np.testing.assert_allclose(kernels[0], kernels[1], rtol=1e-5, atol=1e-7)


def test_a_run_recorded_before_bn_momentum_resumes_with_the_default(small_scene, tmp_path):
    """A run started before bn_momentum was recorded (its checkpoint trained with Keras' 0.99)
    resumes with the same command, with the default from then on."""
    import keras

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    seen = []

    def stop_in_epoch_2():
        return len([e for e in seen if e["event"] == "epoch"]) >= 1 and seen[-1]["event"] == "batch"

    run = tmp_path / "run"
    assert train(replace(CFG, bn_momentum=0.99), pair, pair, run, progress=seen.append,
                 should_stop=stop_in_epoch_2).stopped == "cancelled"
    info = json.loads((run / "run.json").read_text())
    del info["config"]["bn_momentum"]
    (run / "run.json").write_text(json.dumps(info))
    assert train(CFG, pair, pair, run, resume=True).epochs_done == 3
    last = keras.models.load_model(run / "last.keras", compile=False)
    assert {layer.momentum for layer in _batchnorm(last)} == {TrainConfig().bn_momentum}


def test_a_resume_started_over_and_interrupted_keeps_the_finished_epoch(small_scene, finished_run, tmp_path,
                                                                          monkeypatch):
    """A run whose first epoch ended before its last.keras was put in place is resumed from nothing; that
    resume interrupted before its own first epoch emptied the folder (best.keras, history, run.json), though
    the message said the run was kept as it was. It is kept."""
    import keras

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    run = shutil.copytree(finished_run, tmp_path / "run")
    (run / "last.keras").unlink()
    before = _files(run)
    monkeypatch.setattr(keras.Model, "fit", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        train(replace(CFG, epochs=1), pair, pair, run, resume=True)
    assert _files(run) == before


def test_an_overwrite_killed_before_its_first_epoch_is_put_back_on_the_next_start(small_scene, finished_run, tmp_path):
    """Killed (no cleanup: the out-of-memory killer) while the previous run's files were set aside, the
    folder held only the new run.json and the old run hid in .previous-run-*, never found again. The
    next start puts it back: refused without --resume or --overwrite, as the run it is."""
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = shutil.copytree(finished_run, tmp_path / "run")
    before = _files(run)
    aside = run / ".previous-run-abc123"
    aside.mkdir()
    for p in list(run.iterdir()):
        if p != aside:
            p.rename(aside / p.name)
    (run / "run.json").write_text('{"command": "the killed run"}')
    with pytest.raises(OutputExistsError, match="already holds a training run"):
        train(CFG, [pair], [pair], run)
    assert _files(run) == before
    # killed after the new run finished an epoch: the new run is the folder's, the old files go
    aside.mkdir()
    (aside / "best.keras").write_bytes(b"old")
    with pytest.raises(OutputExistsError):
        train(CFG, [pair], [pair], run)
    assert _files(run) == before


def test_a_resume_from_a_checkpoint_whose_history_is_gone_is_refused(small_scene, finished_run, tmp_path):
    """last.keras there, history.csv gone: the run went on counting its epochs from 1 again, and replaced
    its best model at once (a best loss of infinity). Refused, and the run left as it was."""
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    run = shutil.copytree(finished_run, tmp_path / "run")
    (run / "history.csv").unlink()
    before = _files(run)
    with pytest.raises(CorruptFileError, match="has finished 1 epoch.* but history.csv records 0"):
        train(replace(CFG, epochs=1), pair, pair, run, resume=True)
    assert _files(run) == before


def test_a_cancel_on_an_epochs_last_step_keeps_the_epoch(small_scene, tmp_path):
    """All of an epoch's steps done (and its validation, which Keras runs still) when the cancel was seen:
    the epoch was thrown away, and a cancel on the last epoch's last step made a finished run 'cancelled'."""
    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    seen = []

    def at_epoch_2s_last_step():
        last = seen[-1] if seen else {}
        return last.get("event") == "batch" and last["epoch"] == 2 and last["step"] == last["steps"]

    res = train(CFG, pair, pair, tmp_path / "run", progress=seen.append, should_stop=at_epoch_2s_last_step)
    assert res.stopped == "cancelled" and res.epochs_done == 2
    assert [r["epoch"] for r in _rows(tmp_path / "run" / "history.csv")] == ["1", "2"]
    seen.clear()
    res = train(replace(CFG, epochs=1), pair, pair, tmp_path / "one", progress=seen.append,
                should_stop=lambda: bool(seen) and seen[-1].get("step") == seen[-1].get("steps"))
    assert res.stopped == "completed" and res.epochs_done == 1


def test_a_resumed_runs_command_is_the_one_that_makes_it_from_nothing(capsys, small_scene, finished_run, tmp_path,
                                                                      monkeypatch):
    """A run resumed on the command line recorded '--resume' in its command: run elsewhere, that says
    'nothing to resume'."""
    import sys

    from core.train import command_line

    assert command_line(["train", "--out", "r x", "--resume"]) == "python -m core train --out 'r x'"
    img, lab = small_scene
    pair = f"{img}:{lab}"
    run = shutil.copytree(finished_run, tmp_path / "run")
    same = ["--epochs", "1", "--steps", "2", "--batch-size", "2", "--patch-size", "64", "--val-patches", "4",
            "--patience", "5", "--preset", "micro"]  # (finished_run's)
    argv = ["train", *same, "--train", pair, "--val", pair, "--out", str(run), "--resume"]
    monkeypatch.setattr(sys, "argv", ["core", *argv])
    assert main(argv) == 0, capsys.readouterr().err
    command = json.loads((run / "run.json").read_text())["command"]
    assert command.startswith("python -m core train") and "--resume" not in command


# --- the reporter's bookkeeping, unit by unit (no training) ---------------------------------------------------

def _reporter(tmp_path, monkeypatch):
    """A _Reporter of a stub model (its saves write a few bytes) and the best models it saved (epoch, val)."""
    from core import train as train_module
    from core.card import ModelCard, Normalization

    class Model:
        stop_training = False

        def save(self, path):
            Path(path).write_bytes(b"weights")

    saved = []
    monkeypatch.setattr(train_module, "save_model",
                        lambda model, card, path: saved.append((path.name, card.metrics["val"]["epoch"],
                                                                card.metrics["val"]["val_loss"])))
    card = ModelCard(preset="micro", bands=("red",), normalization=Normalization((0.0,), (1.0,)),
                     training={"batch_size": 2})
    rep = train_module._Reporter(tmp_path, card, 3, 2, None, None, float("inf"), {})
    rep.set_model(Model())
    return rep, saved


def test_a_worse_epoch_does_not_replace_the_best_model(tmp_path, monkeypatch):
    rep, saved = _reporter(tmp_path, monkeypatch)
    for epoch, val in enumerate((0.5, 0.9, 0.7)):
        rep.on_epoch_begin(epoch)
        rep.on_epoch_end(epoch, {"loss": 0.4, "val_loss": val})
    assert saved == [("best.keras", 1, 0.5)]  # once: epochs 2 and 3 were worse than epoch 1
    assert rep.best_loss == 0.5 and rep.best_logs["epoch"] == 1 and rep.best_logs["val_loss"] == 0.5
    assert [r["epoch"] for r in _rows(tmp_path / "history.csv")] == ["1", "2", "3"]
    rep.on_epoch_end(3, {"loss": 0.3, "val_loss": 0.2})  # a better one is saved, with its own epoch
    assert saved[-1] == ("best.keras", 4, 0.2) and rep.best_logs["epoch"] == 4


@pytest.mark.parametrize("logs, said", [({"loss": 0.4, "val_loss": float("nan")}, "the validation loss was nan"),
                                        ({"loss": float("inf"), "val_loss": 0.5}, "the training loss was inf")])
def test_an_epoch_that_ends_with_a_loss_not_a_number_ends_the_run_as_diverged(tmp_path, monkeypatch, logs, said):
    from core.errors import InvalidDataError

    rep, saved = _reporter(tmp_path, monkeypatch)
    rep.on_epoch_begin(0)
    with pytest.raises(InvalidDataError, match=said + " at the end of epoch 1"):
        rep.on_epoch_end(0, logs)
    assert saved == [] and not (tmp_path / "history.csv").exists() and not (tmp_path / "last.keras").exists()


def test_an_image_narrower_or_lower_than_a_patch_is_refused(small_scene):
    from types import SimpleNamespace

    from core.train import _check_patch_fits

    img, lab = small_scene
    for shape in ((64, 300), (300, 64)):
        with pytest.raises(RegionError, match="smaller than one 128 px patch; use --patch-size 64"):
            _check_patch_fits([f"{img}:{lab}"], [SimpleNamespace(labels=np.zeros(shape))], 128)
    _check_patch_fits([f"{img}:{lab}"], [SimpleNamespace(labels=np.zeros((128, 300)))], 128)


def test_images_of_pixel_sizes_over_a_tenth_apart_have_no_common_pixel_size(small_scene, monkeypatch):
    from types import SimpleNamespace

    import core.raster
    from core.train import _training_pixel_size

    img, lab = small_scene
    sizes = []
    monkeypatch.setattr(core.raster, "grid_of_file", lambda path: SimpleNamespace(pixel_size_m=lambda: sizes.pop(0)))
    sizes[:] = [10.0, 20.0]
    assert _training_pixel_size([f"{img}:{lab}", f"{img}:{lab}"]) is None
    sizes[:] = [10.0, 11.5]
    assert _training_pixel_size([f"{img}:{lab}", f"{img}:{lab}"]) is None
    sizes[:] = [10.0, 10.5]
    assert _training_pixel_size([f"{img}:{lab}", f"{img}:{lab}"]) == 10.25


def test_a_resume_after_an_epoch_recorded_but_not_checkpointed_redoes_it_once(small_scene, tmp_path, monkeypatch):
    """Interrupted after epoch 2's history row, before its last.keras was put in place: the resume drops
    that row and redoes epoch 2 from epoch 1's checkpoint; each epoch trained once, each row written once."""
    import os

    import keras

    from core import train as train_module

    img, lab = small_scene
    pair = [f"{img}:{lab}"]
    real_replace, lasts = os.replace, []

    def interrupted_replace(src, dst, *args, **kw):
        if str(dst).endswith("last.keras"):
            lasts.append(dst)
            if len(lasts) == 2:  # epoch 2's
                raise KeyboardInterrupt
        return real_replace(src, dst, *args, **kw)

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(os, "replace", interrupted_replace)
        train(CFG, pair, pair, tmp_path / "run")
    run = tmp_path / "run"
    assert [r["epoch"] for r in _rows(run / "history.csv")] == ["1", "2"]  # epoch 2's row, ahead of last.keras
    rows = _rows(run / "history.csv")
    rows[1]["loss"] = "12345"  # (a sentinel: the redone epoch writes its own row)
    with open(run / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = train(CFG, pair, pair, run, resume=True)
    rows = _rows(run / "history.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and res.epochs_done == 3 and res.stopped == "completed"
    assert rows[1]["loss"] != "12345"
    last = keras.models.load_model(run / "last.keras", custom_objects=train_module.CUSTOM_OBJECTS)
    assert int(last.optimizer.iterations) == CFG.epochs * CFG.steps_per_epoch  # no epoch skipped or trained twice
    # the learning rate decays over the whole run's steps
    assert last.optimizer._learning_rate.decay_steps == CFG.epochs * CFG.steps_per_epoch
