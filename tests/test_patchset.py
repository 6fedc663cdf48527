"""Training data from TFRecord patches: source detection, layout checks, normalization, validation,
and a whole training run on patches (the Earth Engine export -> train path)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.config import PatchConfig, TrainConfig
from core.errors import ConfigError, CorruptFileError, InvalidDataError, NoDataError, OutputExistsError, RegionError
from core.labels import NODATA
from core.card import Normalization
from core.model import load_model
from core.patches import LABEL, read_records, sample_patches, write_records
from core.patchset import is_patch_source, open_patch_set, patch_normalization, patch_validation, split_sources, valid_pixels
from core.bands import FEATURE_BANDS

NAMES = [*FEATURE_BANDS, LABEL]


@pytest.fixture(scope="module")
def records(small_scene, tmp_path_factory):
    """Real patches of the sample scene: 48 px with a 8 px buffer (64 px stored), train and val files."""
    img, lab = small_scene
    d = tmp_path_factory.mktemp("records")
    for name, seed, count in (("train_000", 1, 12), ("test_000", 2, 6)):
        sample_patches(img, lab, "cdl", PatchConfig(patch_size=48, kernel_buffer=8, count=count, seed=seed),
                       d / f"{name}.tfrecord.gz")
    return d


def _examples(n: int, side: int, value: float = 0.1) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        ex = {b: rng.uniform(0.02, 0.4, (side, side)).astype(np.float32) for b in FEATURE_BANDS}
        ex[LABEL] = rng.integers(0, 2, (side, side)).astype(np.float32)
        out.append(ex)
    return out


def test_sources_are_told_apart(records, small_scene, tmp_path):
    img, lab = small_scene
    assert is_patch_source(records) and is_patch_source(records / "train_000.tfrecord.gz")
    assert is_patch_source(f"{records}/train_*.tfrecord.gz") and is_patch_source("gs://bucket/camana/train_000.tfrecord.gz")
    assert not is_patch_source(img.parent) and not is_patch_source(f"{img}:{lab}")
    assert split_sources([records], "--train") and not split_sources([f"{img}:{lab}"], "--train")
    with pytest.raises(ConfigError, match="--train mixes TFRecord patches and images"):
        split_sources([records, f"{img}:{lab}"], "--train")


def test_open_patch_set_checks_the_layout(records, tmp_path):
    ps = open_patch_set([f"{records}/train_*.tfrecord.gz"], 48)
    assert ps.record_size == 64 and [p.rsplit("/", 1)[1] for p in ps.files] == ["train_000.tfrecord.gz"]
    with pytest.raises(RegionError, match="64 x 64 px, smaller than one 96 px .*--patch-size 64"):
        open_patch_set([records / "train_000.tfrecord.gz"], 96)
    # an export without the label (e.g. the notebook's selectors under another name)
    no_label = [{k: v for k, v in ex.items() if k != LABEL} | {"cropland": ex[LABEL]} for ex in _examples(2, 32)]
    write_records(tmp_path / "other.tfrecord.gz", no_label)
    with pytest.raises(CorruptFileError, match=r"lack the feature\(s\) crop .*cropland"):
        open_patch_set([tmp_path / "other.tfrecord.gz"], 32)
    # empty files (Earth Engine writes one for a task without points) are passed over, not read as damaged
    write_records(tmp_path / "a_empty.tfrecord.gz", [])
    assert open_patch_set([tmp_path / "a_empty.tfrecord.gz", records / "train_000.tfrecord.gz"], 48).record_size == 64
    with pytest.raises(NoDataError, match="hold no records"):
        open_patch_set([tmp_path / "a_empty.tfrecord.gz"], 48)
    # a folder holding both splits (Earth Engine's export folder, core patches --test) is refused:
    # it would train on the test patches
    with pytest.raises(ConfigError, match=r"holds training and test patches; give one split, e.g. .*train\*"):
        open_patch_set([records], 48)
    # raw class codes under the label's name
    codes = _examples(1, 32)
    codes[0][LABEL][:] = 176.0
    write_records(tmp_path / "codes.tfrecord.gz", codes)
    with pytest.raises(InvalidDataError, match="values other than 0, 1 and 255 .*176"):
        open_patch_set([tmp_path / "codes.tfrecord.gz"], 32)
    # files of two patch sizes
    with pytest.raises(CorruptFileError, match="the other files"):
        open_patch_set([records / "train_000.tfrecord.gz", tmp_path / "codes.tfrecord.gz"], 32)
    # a file whose name holds brackets is a file, not a glob
    (tmp_path / "run[1]").mkdir()
    shutil.copy(records / "train_000.tfrecord.gz", tmp_path / "run[1]" / "train_000.tfrecord.gz")
    assert open_patch_set([tmp_path / "run[1]" / "train_000.tfrecord.gz"], 48).record_size == 64
    # the size to use instead is one that training accepts (32 px at least)
    write_records(tmp_path / "small.tfrecord.gz", _examples(1, 24))
    with pytest.raises(RegionError, match="export larger patches"):
        open_patch_set([tmp_path / "small.tfrecord.gz"], 32)
    # values that do not make a square patch
    flat = [{b: np.zeros(40, np.float32) for b in NAMES}]
    write_records(tmp_path / "flat.tfrecord.gz", flat)
    with pytest.raises(CorruptFileError, match="square"):
        open_patch_set([tmp_path / "flat.tfrecord.gz"], 16)


def test_an_integer_band_is_named_with_what_to_do(tmp_path):
    """A label exported as integers (Earth Engine keeps a band's type) read as 'values per feature: crop: -1'."""
    import tensorflow as tf

    path = tmp_path / "int_label.tfrecord.gz"
    with tf.io.TFRecordWriter(str(path), options=tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        feats = {b: tf.train.Feature(float_list=tf.train.FloatList(value=np.full(32 * 32, 0.1, np.float32)))
                 for b in FEATURE_BANDS}
        feats[LABEL] = tf.train.Feature(int64_list=tf.train.Int64List(value=np.ones(32 * 32, np.int64)))
        w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    with pytest.raises(CorruptFileError, match=r"the 'crop' feature of int_label.tfrecord.gz holds int64 values, not "
                                               r"floats; export .*toFloat\(\)"):
        open_patch_set([path], 32)


def test_normalization_is_over_the_valid_pixels(records):
    ps = open_patch_set([records / "train_000.tfrecord.gz"], 48)
    norm = patch_normalization(ps)
    raw = np.concatenate(list(read_records(ps.files, NAMES, (64, 64))))
    ok = valid_pixels(raw)
    assert 0 < ok.mean() < 1  # the sample scene has unlabelled pixels: they must be left out
    np.testing.assert_allclose(norm.mean, raw[..., :-1][ok].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm.std, raw[..., :-1][ok].std(axis=0), rtol=1e-4)


def test_normalization_and_validation_draw_on_every_file(tmp_path):
    # Earth Engine's export writes one class's points before the other's: train_000 may be all
    # "not crop", train_001 all "crop". Neither statistic may come from the first file alone.
    for i, (value, label) in enumerate(((0.1, 0.0), (0.3, 1.0))):
        exs = [{**{b: np.full((16, 16), value, np.float32) for b in FEATURE_BANDS},
                LABEL: np.full((16, 16), label, np.float32)} for _ in range(40)]
        write_records(tmp_path / f"train_{i:03d}.tfrecord.gz", exs)
    ps = open_patch_set([tmp_path], 16)
    norm = patch_normalization(ps, max_patches=64)  # 32 of each file
    assert norm.mean == pytest.approx((0.2,) * 5, abs=1e-4)  # (float32 sums)
    x, y = patch_validation(ps, 16, norm, limit=10, seed=4)
    crop = y[:, 0, 0, 0]
    assert len(x) == 10 and 0 < crop.sum() < 10  # both files are represented
    x2, y2 = patch_validation(ps, 16, norm, limit=10, seed=4)
    np.testing.assert_array_equal(y, y2)  # the same subset for the same seed
    assert len(patch_validation(ps, 16, norm)[0]) == 80
    # one file, one class after the other (a task of many points): not just its first patches
    one = [{**{b: np.full((16, 16), v, np.float32) for b in FEATURE_BANDS}, LABEL: np.full((16, 16), c, np.float32)}
           for v, c in [(0.1, 0.0)] * 60 + [(0.3, 1.0)] * 60]
    (tmp_path / "single").mkdir()
    write_records(tmp_path / "single" / "all.tfrecord.gz", one)
    mean = patch_normalization(open_patch_set([tmp_path / "single"], 16), max_patches=64).mean[0]
    assert abs(mean - 0.2) < 0.04  # the first 64 patches alone would give 0.11


def test_training_patches_of_one_class_are_refused_where_all_were_read(records, tmp_path, capsys, monkeypatch):
    """Training images of one class were refused, training patches of one class taken (the model learnt to call
    everything the other)."""
    from core import patchset
    from core.__main__ import main

    for name, label in (("train_000", 0.0), ("train_001", 0.0)):  # not crop alone (a region with no cropland)
        exs = _examples(6, 64)
        for ex in exs:
            ex[LABEL][:] = label
        ex[LABEL][:4] = NODATA  # (no data is no class)
        write_records(tmp_path / f"{name}.tfrecord.gz", exs)
    classes: dict = {}
    patch_normalization(open_patch_set([tmp_path], 48), classes=classes)
    assert classes == {"seen": {0}, "all_read": True}
    out = tmp_path / "run"
    rc = main(["train", "--train", str(tmp_path), "--val", str(records / "test_000.tfrecord.gz"), "--out", str(out),
               "--epochs", "1", "--steps", "1", "--batch-size", "4", "--patch-size", "48", "--val-patches", "0"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and not out.exists(), err
    assert "the training patches" in err and "hold no crop pixel, so the model would learn to call everything not crop" in err
    # where not every patch was read (files of more patches than are read for the statistics), one class seen
    # in those read says nothing of the rest: not refused
    monkeypatch.setattr(patchset, "NORMALIZATION_READ", 4)
    classes = {}
    patch_normalization(open_patch_set([tmp_path], 48), max_patches=2, classes=classes)  # 2 of each file's 6 read
    assert classes == {"seen": {0}, "all_read": False}
    patchset.check_patch_classes(classes, open_patch_set([tmp_path], 48))
    # both classes: taken
    patchset.check_patch_classes({"seen": {0, 1}, "all_read": True}, open_patch_set([tmp_path], 48))


def test_masked_pixels_are_not_valid_and_values_must_be_reflectance(tmp_path):
    exs = _examples(4, 32)
    exs[0]["R"][:4] = np.nan  # a NaN in one band
    for b in FEATURE_BANDS:  # Earth Engine's masked pixels: 0 in every band, label still set
        exs[1][b][:, :8] = 0.0
    exs[2][LABEL][:2] = NODATA
    exs[3][LABEL][-1] = np.nan  # a NaN label is no data, not "not crop"
    write_records(tmp_path / "p.tfrecord.gz", exs)
    ps = open_patch_set([tmp_path / "p.tfrecord.gz"], 32)
    raw = next(read_records(ps.files, NAMES, (32, 32)))
    ok = valid_pixels(raw)
    assert not ok[0, :4].any() and ok[0, 4:].all()
    assert not ok[1, :, :8].any() and ok[1, :, 8:].all()
    assert not ok[2, :2].any() and ok[2, 2:].all() and not ok[3, -1].any() and ok[3, :-1].all()
    norm = patch_normalization(ps)
    assert all(np.isfinite(norm.mean)) and all(np.isfinite(norm.std))
    x, y = patch_validation(ps, 32, norm)
    assert np.isfinite(x).all() and x.shape == (4, 32, 32, 5)
    np.testing.assert_array_equal(y[..., 1] == 1, ok)
    # the same pixels are invalid in the training pipeline, and no NaN reaches the model
    from core.dataset import tfrecord_dataset

    xt, yt = next(iter(tfrecord_dataset(ps.files, norm, 32, batch_size=4, augment=False, shuffle=0, repeat=False)))
    assert np.isfinite(xt.numpy()).all()
    np.testing.assert_array_equal(yt.numpy()[..., 1] == 1, ok)
    # digital numbers, not reflectance
    dn = [{k: (v * 10000 if k != LABEL else v) for k, v in ex.items()} for ex in _examples(2, 32)]
    write_records(tmp_path / "dn.tfrecord.gz", dn)
    with pytest.raises(InvalidDataError, match="reflectance") as refused:
        patch_normalization(open_patch_set([tmp_path / "dn.tfrecord.gz"], 32))
    # with advice a patch file can follow (it said to give integers x 10000 or set the file's scale/offset metadata)
    said = str(refused.value)
    assert said.startswith("the patch file dn.tfrecord.gz does not look like surface reflectance")
    assert said.endswith("write the patches as surface reflectance 0-1 (in Earth Engine, apply the collection's "
                         "scale factors before the export; values x 10000: divide them by 10000)")
    assert "metadata" not in said and "integers" not in said
    # validation patches too (training on reflectance, they chose the best epoch on values x 10000)
    with pytest.raises(InvalidDataError, match="^the patch file dn.tfrecord.gz does not look like surface reflectance"):
        patch_validation(open_patch_set([tmp_path / "dn.tfrecord.gz"], 32), 32, norm)


def test_validation_is_the_centre_of_each_patch(records):
    ps = open_patch_set([records / "test_000.tfrecord.gz"], 48)
    norm = Normalization((0.1,) * 5, (0.05,) * 5)
    x, y = patch_validation(ps, 48, norm)
    raw = np.concatenate(list(read_records(ps.files, NAMES, (64, 64))))[:, 8:56, 8:56]
    ok = valid_pixels(raw)
    keep = ok.any(axis=(1, 2))
    np.testing.assert_array_equal(y[..., 1] == 1, ok[keep])
    np.testing.assert_array_equal(y[..., 0] == 1, (raw[..., -1] == 1)[keep])
    np.testing.assert_allclose(x, norm.apply(raw[keep][..., :-1], ok[keep]), atol=1e-6)
    assert len(patch_validation(ps, 48, norm, limit=2)[0]) == 2


def test_train_on_patches_from_the_command_line(records, tmp_path, capsys):
    from core.__main__ import main

    out = tmp_path / "run"
    rc = main(["train", "--train", f"{records}/train_*.tfrecord.gz", "--val", str(records / "test_000.tfrecord.gz"),
               "--out", str(out), "--epochs", "2", "--steps", "2", "--batch-size", "4", "--patch-size", "48",
               "--val-patches", "0"])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{"):])["best_model"] == str(out / "best.keras")
    model = load_model(out / "best.keras")
    ps = open_patch_set([records / "train_000.tfrecord.gz"], 48)
    assert model.card.normalization == patch_normalization(ps)
    assert "the patches' 'crop' feature" in model.card.data and model.card.patch_size == 48
    run = json.loads((out / "run.json").read_text())
    assert run["train"] == [f"{records}/train_*.tfrecord.gz"]
    assert len((out / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs
    # a patch size larger than the stored patches: one line, nothing written
    rc = main(["train", "--train", str(records / "train_000.tfrecord.gz"), "--val", str(records / "test_000.tfrecord.gz"),
               "--out", str(tmp_path / "big"),
               "--patch-size", "96", "--epochs", "1", "--steps", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "--patch-size 64" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "big").exists()


def test_train_config_rejects_mixed_lists_before_writing(records, small_scene, tmp_path):
    from core.train import train

    img, lab = small_scene
    with pytest.raises(ConfigError, match="--train mixes"):
        train(TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, patch_size=48), [str(records), f"{img}:{lab}"],
              [str(records)], tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_cut_train_test_holds_out_the_test_block(small_scene, tmp_path):
    from core.patchset import cut_train_test

    img, lab = small_scene  # 320 x 288 px: the last 64 px column block is held out
    seen = []
    made = cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=64, count=6, seed=3), 4,
                          progress=lambda done, total: seen.append((done, total)))
    assert made.train.count == 6 and made.test.count == 4 and seen[-1] == (10, 10)
    assert "columns 256-319" in made.note and "no training patch holds its labels" in made.note
    for summary in (made.train, made.test):
        ps = open_patch_set([summary.path], 64)
        raw = np.concatenate(list(read_records(ps.files, NAMES, (64, 64))))
        assert len(raw) == summary.count and valid_pixels(raw).any()
    # the held-out labels appear in no training patch: the training labels are no data there
    from core.raster import read_labels
    from core.labels import get_class_map

    train_labels = read_labels(tmp_path / "cut" / "holdout" / "train_labels.tif", get_class_map("binary"))
    assert (train_labels[:, 256:] == NODATA).all() and (train_labels[:, :256] != NODATA).any()
    # existing files are refused before any work, and kept as they were
    before = made.train.path.read_bytes()
    with pytest.raises(OutputExistsError):
        cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=64, count=2), 1)
    assert made.train.path.read_bytes() == before


def test_a_train_and_test_set_that_would_not_fit_together_is_refused_before_either_is_cut(small_scene, tmp_path, monkeypatch):
    """The disk check ran per file: a train file that fitted was cut, then the test file filled the disk."""
    from collections import namedtuple

    from core.patchset import cut_train_test

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 30_000_000, 30_000_000))
    img, lab = small_scene
    # each at least 600 * 64 * 64 * 6 * 4 * 0.2 bytes = 11.8 MB, which fits in 30 MB; together 23.6 + 11.8 do not
    with pytest.raises(ConfigError, match=r"^1,800 patches of 64 px would take at least 35.4 MB and .* has 30.0 MB free"):
        cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=64, count=1200), 600)
    assert not (tmp_path / "cut").exists() or not any((tmp_path / "cut").iterdir())


def test_an_overwritten_set_keeps_no_old_held_out_block(small_scene, tmp_path):
    from core.patchset import cut_train_test

    img, lab = small_scene
    cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=64, count=2), 1)
    assert (tmp_path / "cut" / "holdout").is_dir()
    made = cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=256, count=2), 1, overwrite=True)
    assert "too small to hold out" in made.note
    assert not (tmp_path / "cut" / "holdout").exists()  # not the first set's block beside the new files


def test_test_patches_come_from_the_held_out_block_with_an_odd_kernel_buffer(tmp_path):
    """With a 1 px buffer the stored side is 258 px and the held-out block spans columns 516-773 of
    the sample scene; fully valid test windows must be found there (the 8 px grid of candidates has
    none inside the block: each one reached 4 columns outside it)."""
    from core.patchset import cut_train_test
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS

    cfg = PatchConfig(patch_size=256, kernel_buffer=1, count=2, min_valid_fraction=0.99)
    made = cut_train_test(SAMPLE_IMAGE, SAMPLE_LABELS, "cdl", tmp_path / "p", cfg, test_count=2)
    assert made.train.count == 2 and made.test.count == 2


def test_cut_train_test_leaves_nothing_when_it_fails(small_scene, tmp_path, monkeypatch):
    import core.patchset as P

    img, lab = small_scene
    real = P.sample_patches
    calls = []

    def fail_on_test(*args, **kwargs):
        calls.append(args[4])
        if len(calls) == 2:
            raise NoDataError("no window of the test block has 50% valid pixels")
        return real(*args, **kwargs)

    monkeypatch.setattr(P, "sample_patches", fail_on_test)
    with pytest.raises(NoDataError):
        P.cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=64, count=2), 1)
    assert calls[0].name == "train.tfrecord.gz"
    assert not (tmp_path / "cut").exists()  # no train file without its test file, no hold-out labels
    # a failed overwrite keeps the previous pair as it was, not a new train file beside an old test file
    monkeypatch.setattr(P, "sample_patches", real)
    first = P.cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=64, count=2), 1)
    before = {f.name: f.read_bytes() for f in (first.train.path, first.test.path)}
    calls.clear()
    monkeypatch.setattr(P, "sample_patches", fail_on_test)
    with pytest.raises(NoDataError):
        P.cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=64, count=3, seed=9), 1,
                         overwrite=True)
    assert {f.name: f.read_bytes() for f in (first.train.path, first.test.path)} == before
    assert sorted(f.name for f in (tmp_path / "cut").iterdir()) == ["holdout", "test.tfrecord.gz", "train.tfrecord.gz"]
    with pytest.raises(RegionError):  # a patch larger than the image: refused before anything is written
        P.cut_train_test(img, lab, "cdl", tmp_path / "big", PatchConfig(patch_size=512, count=2), 1)
    # a folder of the user's named holdout is not replaced without overwrite
    own = tmp_path / "mine" / "holdout"
    own.mkdir(parents=True)
    (own / "notes.txt").write_text("mine")
    monkeypatch.setattr(P, "sample_patches", real)
    with pytest.raises(OutputExistsError, match="holdout"):
        P.cut_train_test(img, lab, "cdl", tmp_path / "mine", PatchConfig(patch_size=64, count=2), 1)
    assert (own / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "big").exists() or not list((tmp_path / "big").iterdir())


def test_check_sources_says_what_training_will_use(records, small_scene):
    from core.patchset import check_sources

    train, test = str(records / "train_000.tfrecord.gz"), str(records / "test_000.tfrecord.gz")
    assert check_sources(train, test, 64) == ("Training on 1 TFRecord file(s) of 64 px patches; validation on "
                                              "1 TFRecord file(s) of 64 px patches.")
    assert "a random 48 px crop of each" in check_sources(train, test, 48)
    with pytest.raises(ConfigError, match="give the validation patches"):
        check_sources(train, " ", 48)
    img, lab = small_scene
    with pytest.raises(ConfigError, match="holds no TFRecord patches"):
        check_sources(str(img), test, 48)
    with pytest.raises(RegionError, match="use Patch size 64"):  # the page's name for the setting
        check_sources(train, test, 96)


def test_cut_train_test_takes_the_largest_seed(small_scene, tmp_path):
    """The test patches' seed (the training seed + 1) wraps around instead of refusing a valid --seed."""
    from core.patchset import cut_train_test

    img, lab = small_scene
    made = cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=64, count=2, seed=2**32 - 1), 1)
    assert made.train.count == 2 and made.test.count == 1


def test_a_test_block_unlike_the_training_patches_is_noted_in_percentage_points():
    from core.patchset import crop_share_gap

    assert crop_share_gap(0.40, 0.55) is None
    assert "(70%) differs from the training patches' (46%) by 24 percentage points" in crop_share_gap(0.464, 0.696)  # (said 23)
    note = crop_share_gap(0.28, 0.74)
    assert "(74%)" in note and "(28%)" in note and "by 46 percentage points" in note
    assert crop_share_gap(0.74, 0.28).startswith("The test patches' crop share (28%) differs from the training patches' (74%)")


def test_a_file_found_damaged_mid_run_is_named_in_one_line(records, tmp_path, capsys, monkeypatch):
    """A file damaged beyond the records checked before the run (the first, and those read for the
    normalization) is found by the training pipeline, inside TensorFlow: the error is still the
    project's one line naming the file, not TensorFlow's "Graph execution error"."""
    import core.patchset

    from core.__main__ import main

    # the normalization reads 32 patches of each of the two files (4096 in all by default: small
    # test files are read whole before the run)
    monkeypatch.setattr(core.patchset, "NORMALIZATION_READ", 64)
    patches = np.concatenate(list(read_records(records / "train_000.tfrecord.gz", NAMES, (64, 64))))
    data = tmp_path / "data"
    data.mkdir()
    examples = [{name: patches[i % len(patches)][..., k] for k, name in enumerate(NAMES)} for i in range(80)]
    write_records(data / "train_001.tfrecord.gz", examples)
    whole = (data / "train_001.tfrecord.gz").read_bytes()
    (data / "train_001.tfrecord.gz").write_bytes(whole[: int(len(whole) * 0.8)])  # 64 records stay whole
    shutil.copy(records / "train_000.tfrecord.gz", data / "train_000.tfrecord.gz")
    out = tmp_path / "run"
    rc = main(["train", "--train", f"{data}/train_*.tfrecord.gz", "--val", str(records / "test_000.tfrecord.gz"),
               "--out", str(out), "--epochs", "2", "--steps", "2", "--batch-size", "4", "--patch-size", "48",
               "--val-patches", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "train_001.tfrecord.gz" in err and "truncated" in err and "Graph execution" not in err
    assert not out.exists()  # no epoch had finished: nothing is left


def test_an_input_error_after_finished_epochs_says_they_are_kept(tmp_path):
    import tensorflow as tf

    from core import dataset
    from core.train import _kept_epochs_note, _write_history

    def reader_fails_in_the_run():  # as TensorFlow raises a reader's error: its own, the reader's kept aside
        with dataset.reader_errors_raised(lambda: _kept_epochs_note(history)):
            dataset._reader_errors.append(CorruptFileError("x.tfrecord.gz is truncated"))
            raise tf.errors.UnknownError(None, None, "Graph execution error:")

    history = tmp_path / "history.csv"
    _write_history(history, [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}])
    with pytest.raises(CorruptFileError, match=r"^x.tfrecord.gz is truncated \(2 finished epoch\(s\) are kept in "):
        reader_fails_in_the_run()
    history.unlink()
    with pytest.raises(CorruptFileError, match=r"^x.tfrecord.gz is truncated$"):
        reader_fails_in_the_run()


def test_patches_cut_from_the_training_pixels_say_so_to_the_training_job(small_scene, tmp_path):
    """A region too small to hold out a block: its test patches come from the training pixels, which the
    cut's note said, but the job's note did not (it said which files), so the page called the training's
    validation figures 'the honest ones'. The cut's note begins the job's, in the words the page reads."""
    from core import jobs, training_jobs
    from core.dataset import validated_on_training_pixels
    from core.patchset import cut_train_test
    from test_jobs import wait_for

    img, lab = small_scene
    made = cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=256, count=2), 1)
    assert validated_on_training_pixels(made.note) and "too small to hold out" in made.note
    job = training_jobs.train_on_patches(str(made.train.path), str(made.test.path), tmp_path / "jobs",
                                TrainConfig(patch_size=256, epochs=1, steps_per_epoch=1, batch_size=1),
                                cut_note=made.note)
    jobs.cancel(job, terminate_after_s=0)
    wait_for(job, ("done", "failed", "cancelled"), timeout=120)
    assert validated_on_training_pixels(jobs.job_note(job)) and "Training on " in jobs.job_note(job)


def test_test_patches_are_cut_from_the_held_out_block_only(small_scene, tmp_path):
    """Every test patch lies over the held-out columns and carries their labels: test patches cut from
    the training pixels would have scored the model on what it learned from, under a note saying otherwise."""
    from core.patchset import cut_train_test
    from core.raster import ImageReader

    img, lab = small_scene  # 320 x 288 px: columns 256-319 are held out for 64 px patches
    made = cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=64, count=2, seed=5), 4)
    assert "columns 256-319" in made.note
    with ImageReader(img) as r:
        feats, _ = r.read()
    test = np.concatenate(list(read_records(made.test.path, NAMES, (64, 64))))
    assert len(test) == 4
    for patch in test:
        # where the patch was cut: its top-left pixel's values, then the whole window
        rows, cols = np.nonzero((feats[..., :4] == patch[0, 0, :4]).all(axis=-1))
        [(r, c)] = [(r, c) for r, c in zip(rows, cols) if r + 64 <= feats.shape[0] and c + 64 <= feats.shape[1]
                    and np.array_equal(feats[r : r + 64, c : c + 64, :4], patch[..., :4])]
        labelled = np.nonzero(patch[..., -1] != NODATA)[1] + c
        assert len(labelled) and labelled.min() >= 256, (r, c)  # labels of the held-out block only


def test_normalization_leaves_out_unlabelled_pixels_with_image_data(tmp_path):
    """Features 0.1 where labelled (crop or not) and 0.5 where the label is no data: the statistics are
    those of the labelled pixels only (the image around fields would have shifted every input the model saw)."""
    rng = np.random.default_rng(3)
    exs = []
    for _ in range(4):
        lab = rng.integers(0, 2, (32, 32)).astype(np.float32)
        lab[:, 16:] = NODATA
        exs.append({**{b: np.where(lab == NODATA, 0.5, 0.1).astype(np.float32) for b in FEATURE_BANDS}, LABEL: lab})
    write_records(tmp_path / "p.tfrecord.gz", exs)
    norm = patch_normalization(open_patch_set([tmp_path / "p.tfrecord.gz"], 32))
    assert norm.mean == pytest.approx((0.1,) * 5, abs=1e-4)  # (float32 sums); 0.3 with the image around them


def test_a_pixel_dark_in_one_band_only_is_valid():
    """Only 0 in every band is Earth Engine's mask: a pixel with 0 blue (deep water, a shadow) but the other
    bands set is trained and validated on."""
    batch = np.full((1, 2, 2, len(FEATURE_BANDS) + 1), 0.2, np.float32)
    batch[..., -1] = 1.0
    batch[0, 0, 0, 2] = 0.0  # one band 0
    batch[0, 1, 1, :-1] = 0.0  # every band 0: masked
    np.testing.assert_array_equal(valid_pixels(batch)[0], [[True, True], [True, False]])


def test_bands_of_another_size_than_the_label_are_refused_at_open(tmp_path):
    """A 32 x 32 px label beside 16 x 16 px bands (an export of bands at another scale) is refused when the
    patches are opened, naming the sizes, not when training reads them."""
    ex = {**{b: np.full((16, 16), 0.1, np.float32) for b in FEATURE_BANDS}, LABEL: np.ones((32, 32), np.float32)}
    write_records(tmp_path / "mixed.tfrecord.gz", [ex])
    with pytest.raises(CorruptFileError, match="do not hold square float patches of one size in every band"):
        open_patch_set([tmp_path / "mixed.tfrecord.gz"], 16)


def test_no_test_patches_is_refused_before_any_work(small_scene, tmp_path, monkeypatch):
    """0 test patches is refused at once, saying which number is wrong (it was refused only after the
    held-out block was made, as 'count must be at least 1'), and nothing is written."""
    import core.dataset
    from core.patchset import cut_train_test

    img, lab = small_scene
    monkeypatch.setattr(core.dataset, "spatial_holdout", lambda *a, **k: pytest.fail("work began"))
    for count in (0, -1):
        with pytest.raises(ConfigError, match=f"^the number of test patches must be at least 1, got {count}$"):
            cut_train_test(img, lab, "cdl", tmp_path / "cut", PatchConfig(patch_size=64, count=2), count)
    assert not (tmp_path / "cut").exists()


def test_validation_leaves_out_patches_without_a_valid_pixel(tmp_path):
    """A patch whose labels are all no data (or whose image is all masked) has nothing to validate on: it is
    left out, not counted as a patch of no pixels."""
    exs = _examples(4, 32)
    exs[1][LABEL][:] = NODATA
    for b in FEATURE_BANDS:
        exs[2][b][:] = 0.0  # masked in every band, labels still set
    write_records(tmp_path / "p.tfrecord.gz", exs)
    ps = open_patch_set([tmp_path / "p.tfrecord.gz"], 32)
    x, y = patch_validation(ps, 32, Normalization((0.1,) * 5, (0.05,) * 5))
    assert len(x) == len(y) == 2 and y[..., 1].all()
