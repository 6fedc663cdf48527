import json

import numpy as np
import pytest

from core.errors import ConfigError, CorruptFileError, InputNotFoundError, ModelMismatchError
from core.card import ModelCard, Normalization, check_bands
from core.model import (
    MaskedDice,
    MaskedIoU,
    build_unet,
    load_model,
    masked_bce_dice,
    save_model,
)
from core.bands import FEATURE_BANDS


def test_seed_preset_is_the_notebook_unet():
    m = build_unet("seed")
    assert m.input_shape == (None, 256, 256, 5) and m.output_shape == (None, 256, 256, 1)
    assert 30e6 < m.count_params() < 32e6  # 31M parameters
    assert any(type(l).__name__ == "Conv2DTranspose" for l in m.layers)
    assert any(type(l).__name__ == "BatchNormalization" for l in m.layers)


def test_light_preset_takes_any_multiple_of_16():
    m = build_unet("light")
    assert m.count_params() < 3e6
    assert m(np.zeros((1, 96, 160, 5), np.float32)).shape == (1, 96, 160, 1)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="light"):
        build_unet("huge")


def test_loss_ignores_nodata_pixels():
    rng = np.random.default_rng(0)
    y = np.stack([rng.random((2, 8, 8)) < 0.5, np.ones((2, 8, 8))], -1).astype(np.float32)
    y[:, :4, :, 1] = 0  # top half is no data
    p = rng.random((2, 8, 8, 1)).astype(np.float32)
    base = float(masked_bce_dice(y, p))
    y2, p2 = y.copy(), p.copy()
    y2[:, :4, :, 0] = 1 - y2[:, :4, :, 0]
    p2[:, :4] = 0.999
    assert float(masked_bce_dice(y2, p2)) == pytest.approx(base, rel=1e-6)
    p3 = p.copy()
    p3[:, 4:] = 1 - p3[:, 4:]
    assert float(masked_bce_dice(y, p3)) != pytest.approx(base)


def test_iou_metric_is_masked():
    y = np.zeros((1, 2, 2, 2), np.float32)
    y[0, :, :, 0] = [[1, 0], [1, 0]]
    y[0, :, :, 1] = [[1, 1], [1, 0]]
    p = np.array([[[[0.9], [0.9]], [[0.1], [0.9]]]], np.float32)
    m = MaskedIoU()
    m.update_state(y, p)
    assert float(m.result()) == pytest.approx(1 / 3)  # tp 1, fp 1, fn 1; the no-data pixel is ignored


def test_loss_is_the_mean_cross_entropy_of_valid_pixels_plus_one_minus_dice():
    """Worked by hand: two valid pixels (crop at 0.8, not crop at 0.3) and a no-data one."""
    y = np.array([[[[1, 1], [0, 1], [1, 0]]]], np.float32)  # [label, valid] per pixel; the third no data
    p = np.array([[[[0.8], [0.3], [0.01]]]], np.float32)
    bce = (-np.log(0.8) - np.log(0.7)) / 2  # over the 2 valid pixels, not all 3
    dice = (2 * 0.8 + 1) / ((0.8 + 0.3) + 1 + 1)  # soft Dice, smoothed by 1
    assert float(masked_bce_dice(y, p)) == pytest.approx(bce + 1 - dice, rel=1e-5)
    # a sigmoid saturated to exactly 0 or 1 on the wrong side is a large loss, not inf or NaN
    wrong = np.array([[[[0.0], [1.0], [0.5]]]], np.float32)
    assert 10 < float(masked_bce_dice(y, wrong)) < 20


def test_dice_and_iou_metrics_leave_no_data_out():
    """tp 1, fp 1, fn 1 among the valid pixels; a no-data crop pixel predicted 0.1 (a miss, were it
    counted) and a no-data non-crop one predicted 0.9 change nothing."""
    y = np.zeros((1, 1, 5, 2), np.float32)
    y[0, 0, :, 0] = [1, 0, 1, 1, 0]
    y[0, 0, :, 1] = [1, 1, 1, 0, 0]
    p = np.array([0.9, 0.9, 0.1, 0.1, 0.9], np.float32).reshape(1, 1, 5, 1)
    iou, dice = MaskedIoU(), MaskedDice()
    for m in (iou, dice):
        m.update_state(y, p)
    assert float(iou.result()) == pytest.approx(1 / 3) and float(dice.result()) == pytest.approx(0.5)


def test_the_model_outputs_probabilities_whatever_its_input():
    m = build_unet("light")
    out = m(np.random.default_rng(0).normal(0, 100, (1, 32, 32, 5)).astype(np.float32)).numpy()
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0


def _card():
    return ModelCard("light", FEATURE_BANDS, Normalization((0.1,) * 5, (0.2,) * 5))


def test_a_model_is_saved_with_its_card_in_place_first(tmp_path, monkeypatch):
    """Whoever finds the .keras (a page polling a training run) finds its card too."""
    from core import model as M

    order = []
    real = M.move_into_place
    monkeypatch.setattr(M, "move_into_place", lambda moves, *a, **kw: order.extend(str(f) for _, f in moves) or
                        real(moves, *a, **kw))
    save_model(build_unet("light"), _card(), tmp_path / "m.keras")
    assert order == [str(tmp_path / "m.json"), str(tmp_path / "m.keras")]


def test_save_load_roundtrip(tmp_path):
    m = build_unet("light")
    path = save_model(m, _card(), tmp_path / "m.keras")
    loaded = load_model(path)
    x = np.random.default_rng(1).random((1, 64, 64, 5)).astype(np.float32)
    np.testing.assert_allclose(loaded.model(x), m(x), atol=1e-6)
    from dataclasses import replace

    from core.model import weights_fingerprint

    assert loaded.card == replace(_card(), weights=weights_fingerprint(m))  # the card, and whose weights it is for


def test_saved_model_leaves_the_optimizer_state_out(tmp_path):
    from core.model import compile_model

    m = compile_model(build_unet("light"))
    rng = np.random.default_rng(2)
    m.fit(rng.random((2, 64, 64, 5), dtype=np.float32), rng.integers(0, 2, (2, 64, 64, 2)).astype(np.float32),
          epochs=1, verbose=0)  # Adam now holds two moments per weight
    m.save(tmp_path / "with_optimizer.keras")
    path = save_model(m, _card(), tmp_path / "m.keras")
    loaded = load_model(path)
    x = rng.random((1, 64, 64, 5), dtype=np.float32)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # called as the model it was saved from (one input, no structure warning)
        np.testing.assert_array_equal(loaded.model(x), m(x))
    assert path.stat().st_size < 0.5 * (tmp_path / "with_optimizer.keras").stat().st_size
    assert m.optimizer is not None  # the model given is left as it was (still trainable)


def test_model_errors(tmp_path):
    with pytest.raises(InputNotFoundError):
        load_model(tmp_path / "none.keras")
    path = save_model(build_unet("light"), _card(), tmp_path / "m.keras")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="truncated"):
        load_model(path)
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(CorruptFileError):
        load_model(path)
    (tmp_path / "m.json").unlink()
    with pytest.raises(InputNotFoundError, match="card") as err:
        load_model(path)
    assert "resumes" not in str(err.value)
    # a training run's last.keras (no card, the point --resume goes on from): its best.keras is named
    run = tmp_path / "run"
    run.mkdir()
    save_model(build_unet("light"), _card(), run / "best.keras")
    (run / "last.keras").write_bytes((run / "best.keras").read_bytes())
    with pytest.raises(InputNotFoundError, match="last.keras is where a training run resumes from: use best.keras"):
        load_model(run / "last.keras")


def test_card_keeps_the_training_pixel_size(tmp_path):
    card = ModelCard("light", FEATURE_BANDS, Normalization((0.1,) * 5, (0.2,) * 5), pixel_size_m=30.0)
    path = save_model(build_unet("light"), card, tmp_path / "m.keras")
    assert load_model(path).card.pixel_size_m == 30.0
    assert load_model(save_model(build_unet("light"), _card(), tmp_path / "n.keras")).card.pixel_size_m is None


def test_resolution_warning():
    from core.card import resolution_warning
    from core.commands import core_command
    from core.grid import Grid

    card = ModelCard("light", FEATURE_BANDS, Normalization((0.1,) * 5, (0.2,) * 5), pixel_size_m=30.0)
    s2 = Grid("EPSG:32633", (10.0, 0, 500000.0, 0, -10.0, 5e6), 8, 8)
    warning = resolution_warning(card, s2)
    assert warning and "30 m" in warning and "10 m" in warning and "3.0 times larger" in warning
    # (the command named by the Python that runs it, as the next steps the commands print are)
    assert warning.endswith(f"averaged to 30 m ({core_command('resample')}) and compare")
    # each place its own advice: the dashboard's upload option (a command there was no use to a dashboard user),
    # and none on a slide (the map PNG's caveat printed a command line)
    assert resolution_warning(card, s2, "dashboard").endswith(
        "averaged to 30 m (on the Region page, upload it with 'Average to 30 m pixels') and compare")
    assert resolution_warning(card, s2, "none").endswith("3.0 times larger to it: expect poorer results")
    # an Earth Engine composite: no file to upload, its pixel size is a setting
    assert resolution_warning(card, s2, "earthengine").endswith(
        "expect poorer results; set the Earth Engine settings' Pixel size (m) to 30 on the Region page, or fine-tune "
        "the model on images like these")
    other = ModelCard("light", FEATURE_BANDS, Normalization((0.1,) * 5, (0.2,) * 5), pixel_size_m=60.0)
    assert f"({core_command('resample')}) and compare" in resolution_warning(other, s2)
    assert resolution_warning(other, s2, "dashboard").endswith("averaged to 60 m and compare")  # the upload's is 30 m only
    assert resolution_warning(card, Grid("EPSG:32633", (35.0, 0, 0, 0, -35.0, 0), 8, 8)) is None  # close enough
    # an image in degrees: resample refuses it ("reproject it first"), so the advice says to reproject first
    degrees = Grid("EPSG:4326", (0.0001, 0, 10.0, 0, -0.0001, 50.0), 100, 100)
    assert resolution_warning(card, degrees).endswith(
        f"averaged to 30 m (after reprojecting it to a CRS in metres, e.g. its UTM zone with gdalwarp -t_srs, then "
        f"{core_command('resample')}) and compare")
    assert "(after reprojecting it to a CRS in metres, e.g. its UTM zone with gdalwarp -t_srs, then on the Region page" \
        in resolution_warning(card, degrees, "dashboard")
    assert resolution_warning(card, Grid("EPSG:32633", (45.0, 0, 0, 0, -45.0, 0), 8, 8)) is None  # 1.5 times: the limit
    assert "look 1.7 times smaller" in resolution_warning(card, Grid("EPSG:32633", (50.0, 0, 0, 0, -50.0, 0), 8, 8))
    assert "look 1.5 times larger" in resolution_warning(card, Grid("EPSG:32633", (19.5, 0, 0, 0, -19.5, 0), 8, 8))
    assert resolution_warning(card, Grid(None, (1.0, 0, 0, 0, -1.0, 0), 8, 8)) is None  # image size unknown
    assert resolution_warning(_card(), s2) is None  # training size unknown
    # the shipped model says what it was trained on: Landsat's 30 m
    from core.card import DEFAULT_MODEL_PATH, load_card

    assert load_card(DEFAULT_MODEL_PATH).pixel_size_m == 30.0


def test_band_check():
    card = ModelCard("light", ("R", "G", "B", "NIR", "NDVI", "SWIR"), Normalization((0.0,) * 6, (1.0,) * 6))
    with pytest.raises(ModelMismatchError, match="SWIR"):
        check_bands(card, FEATURE_BANDS)
    check_bands(_card(), FEATURE_BANDS)


def test_normalization_matches_the_formula_for_tiles_and_batches():
    norm = Normalization((0.1, 0.2, 0.3, 0.4, 0.5), (1.0, 2.0, 3.0, 4.0, 0.25))
    rng = np.random.default_rng(0)
    mean, std = np.float32(norm.mean), np.float32(norm.std)
    for shape in ((7, 11, 5), (3, 7, 11, 5)):
        x = rng.random(shape, dtype=np.float32)
        valid = rng.random(shape[:-1]) > 0.3
        want = (x - mean) / std
        want[~valid] = 0
        got = norm.apply(x, valid)
        assert got.dtype == np.float32 and np.array_equal(got, want)
        assert np.array_equal(norm.apply(x), (x - mean) / std)
    band_last_view = rng.random((5, 6, 4), dtype=np.float32).transpose(1, 2, 0)  # not contiguous
    assert np.array_equal(norm.apply(band_last_view), (band_last_view - mean) / std)


def test_uploaded_model_never_replaces_another_models_card(tiny_model_path, tmp_path):
    """An upload with another card (rejected or not) must not change the model already in use."""
    import json

    from core.errors import InvalidDataError
    from core.card import card_path
    from core.model import load_model, store_uploaded_model

    data, card = tiny_model_path.read_bytes(), card_path(tiny_model_path).read_bytes()
    in_use = store_uploaded_model(data, card, tmp_path)
    assert in_use.name == "model.keras" and card_path(in_use).read_bytes() == card
    assert store_uploaded_model(data, card, tmp_path) == in_use  # the same upload again: same files
    other = json.loads(card)
    other["bands"] = ["R", "G", "B", "NIR", "SWIR"]
    second = store_uploaded_model(data, json.dumps(other).encode(), tmp_path)
    assert second != in_use and card_path(in_use).read_bytes() == card
    with pytest.raises(ModelMismatchError):
        check_bands(load_model(second).card, FEATURE_BANDS)
    check_bands(load_model(in_use).card, FEATURE_BANDS)  # still usable
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        store_uploaded_model(data, b"\xff not json", tmp_path)
    with pytest.raises(CorruptFileError, match="a JSON list, not an object"):
        store_uploaded_model(data, b"[]", tmp_path)
    with pytest.raises(CorruptFileError, match="not a model card: .*, it is empty"):
        store_uploaded_model(data, b"{}", tmp_path)
    named = store_uploaded_model(data, card, tmp_path.parent / f"{tmp_path.name}-named", name="C:\\models\\my wheat model.keras")
    assert named.name == "my_wheat_model.keras" and card_path(named).read_bytes() == card
    other["bands"] = ["R", "G", "B", "SWIR"]  # 4 bands, 5 normalization values: refused before anything is written
    with pytest.raises(CorruptFileError, match="5 values for 4 bands"):
        store_uploaded_model(data, json.dumps(other).encode(), tmp_path)
    with pytest.raises(InvalidDataError, match="empty"):
        store_uploaded_model(b"", card, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({in_use.parent.name, second.parent.name})


def test_an_upload_whose_stored_folder_lost_its_card_is_stored_again(tiny_model_path, tmp_path):
    """Its folder (named by the upload's hash) left without its card: the same upload again raised
    "OSError: Directory not empty" instead of storing it."""
    from core.card import card_path
    from core.model import load_model, store_uploaded_model

    data, card = tiny_model_path.read_bytes(), card_path(tiny_model_path).read_bytes()
    stored = store_uploaded_model(data, card, tmp_path)
    card_path(stored).unlink()
    (stored.parent / "half-written.tmp").write_bytes(b"x")
    again = store_uploaded_model(data, card, tmp_path)
    assert again == stored and card_path(again).read_bytes() == card and again.read_bytes() == data
    assert sorted(p.name for p in again.parent.iterdir()) == sorted([again.name, card_path(again).name])
    assert [p.name for p in tmp_path.iterdir()] == [stored.parent.name]  # nothing set aside left behind
    load_model(again)


def test_only_a_stored_upload_is_discarded_and_uploads_are_size_capped(tiny_model_path, tmp_path):
    """A refused model is discarded with its stored folder; a model of the user's own folder (a
    folder not named by an upload's hash, or holding other files) is never removed."""
    import shutil

    from core.card import card_path
    from core.errors import InvalidDataError
    from core.model import discard_stored_model, store_uploaded_model

    data, card = tiny_model_path.read_bytes(), card_path(tiny_model_path).read_bytes()
    stored = store_uploaded_model(data, card, tmp_path / "uploads")
    discard_stored_model(stored)
    assert not stored.parent.exists() and (tmp_path / "uploads").is_dir()
    discard_stored_model(stored)  # gone already: nothing to do
    for folder, extra in (("mine", "notes.txt"), ("models", None), ("0123456789abcdef", "notes.txt")):
        own = tmp_path / folder
        own.mkdir()
        shutil.copy(tiny_model_path, own / "m.keras")
        shutil.copy(card_path(tiny_model_path), own / "m.json")
        if extra:
            (own / extra).write_text("field notes")
        discard_stored_model(own / "m.keras")
        assert sorted(p.name for p in own.iterdir()) == sorted(["m.keras", "m.json"] + ([extra] if extra else []))
    with pytest.raises(InvalidDataError, match="uploads are limited to"):
        store_uploaded_model(data, card, tmp_path / "capped", max_bytes=len(data) - 1)
    assert not (tmp_path / "capped").exists()


@pytest.mark.parametrize("change, match", [
    ({"mean": [0.1] * 4}, "mean has 4 values for 5 bands"),
    ({"std": [0.2] * 6}, "std has 6 values for 5 bands"),
    ({"std": ["x", 0.2, 0.2, 0.2, 0.2]}, "not a finite number"),
    ({"mean": [0.1, None, 0.1, 0.1, 0.1]}, "not a finite number"),
    ({"std": [0.2, 0.2, float("nan"), 0.2, 0.2]}, "not a finite number"),
    ({"std": [0.0, 0.2, 0.2, 0.2, 0.2]}, "above 0"),
    ({"std": [0.2, -0.2, 0.2, 0.2, 0.2]}, "above 0"),
    # finite in float64 but not in the float32 they are applied in (inf: every pixel was no data), or near it
    ({"mean": [1e308, 0.1, 0.1, 0.1, 0.1]}, r"holds 1e\+308, beyond what any band's values take"),
    ({"std": [0.2, 1e-308, 0.2, 0.2, 0.2]}, r"holds 1e-308, beyond .* standard deviations 1e-12 to 1e\+12"),
])
def test_card_with_bad_normalization_is_refused(tmp_path, change, match):
    """One finite mean and one finite std > 0 per band, else CorruptFileError (not a numpy traceback later)."""
    import json
    import warnings

    d = _card().to_dict()
    d["normalization"].update(change)
    with pytest.raises(CorruptFileError, match=match):
        ModelCard.from_dict(d)
    path = save_model(build_unet("light"), _card(), tmp_path / "m.keras")
    (tmp_path / "m.json").write_text(json.dumps(d))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way
        with pytest.raises(CorruptFileError, match=match):
            load_model(path)


def test_card_with_bad_bands_or_pixel_size_is_refused():
    for change in ({"bands": "RGBNN"}, {"bands": ["R", "G", "B", "NIR", 5]}, {"pixel_size_m": -30}, {"pixel_size_m": 0},
                   {"pixel_size_m": "thirty"}, {"patch_size": -3}, {"patch_size": 100}, {"patch_size": "256"},
                   # (found by fuzzing cards: the dashboard's model card failed on these with a traceback)
                   {"preset": ["light"]}, {"preset": 1}, {"created": 20261125}, {"notes": ["a"]}, {"data": None},
                   {"command": {"train": 1}}, {"patch_size": 0}, {"patch_size": -16}, {"weights": "xyz"},
                   {"weights": "A" * 64}):
        d = {**_card().to_dict(), **change}
        with pytest.raises(CorruptFileError):
            ModelCard.from_dict(d)
    assert ModelCard.from_dict({**_card().to_dict(), "pixel_size_m": 30}).pixel_size_m == 30.0
    no_size = {k: v for k, v in _card().to_dict().items() if k != "patch_size"}
    assert ModelCard.from_dict(no_size).patch_size == 256  # an older card: the notebook's patches


def test_another_json_given_as_the_card_is_named_as_such():
    """A prediction's summary.json picked as the card: not 'damaged', but not a card at all."""
    summary = {"pixels": 1048576, "crop_pixels": 400000, "threshold": 0.5, "model": {}}
    with pytest.raises(CorruptFileError, match="is not a model card: it has none of a card's fields .*, its fields are "
                                               "crop_pixels, model, pixels, threshold; use the .json that core wrote beside"):
        ModelCard.from_dict(summary)
    with pytest.raises(CorruptFileError, match="no 'normalization' field; the card is damaged"):  # a card missing a field
        ModelCard.from_dict({k: v for k, v in _card().to_dict().items() if k != "normalization"})


def _saved_with_config(tmp_path, change):
    """A light U-Net saved by core as ``bad.keras`` (with its card), its config.json changed by
    ``change(cfg)`` in place."""
    import zipfile

    path = save_model(build_unet("light"), _card(), tmp_path / "m.keras")
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                change(cfg)
                data = json.dumps(cfg).encode()
            dst.writestr(item, data)
    (tmp_path / "bad.json").write_bytes((tmp_path / "m.json").read_bytes())
    return bad


@pytest.mark.parametrize("where", ["model", "layer"])
def test_keras_file_naming_an_unknown_class_is_corrupt(tmp_path, where):
    """A .keras whose config names a class Keras does not know (as the model: a TypeError in Keras; as
    a layer: a ValueError): CorruptFileError in one line, not a traceback."""
    def unknown(cfg):
        target = cfg if where == "model" else cfg["config"]["layers"][1]
        target["class_name"] = "Foo"
        target.pop("module", None), target.pop("registered_name", None)  # a class from no known module

    with pytest.raises(CorruptFileError, match="bad.keras") as err:
        load_model(_saved_with_config(tmp_path, unknown))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind, damage, match", [
    # a number where a layer's dtype policy names its class: an AttributeError inside Keras as it loads
    ("Conv2D", lambda layer: layer["config"]["dtype"].update(class_name=1),
     "cannot load model bad.keras: its configuration is damaged"),
    # a text as the mask a layer is called with: it loads, and fails when run (an AttributeError in the layer)
    ("BatchNormalization", lambda layer: layer["inbound_nodes"][0]["kwargs"].update(mask="float16"),
     "cannot use model bad.keras: it loads but fails on an image"),
])
def test_keras_file_whose_configuration_cannot_be_rebuilt_or_run_is_corrupt(tmp_path, kind, damage, match):
    """A damaged configuration that Keras fails on in its own ways (found by fuzzing models): CorruptFileError
    when the model is loaded, in one line, not a traceback then or in the middle of a prediction."""
    def first_damaged(cfg):
        damage(next(layer for layer in cfg["config"]["layers"] if layer["class_name"] == kind))

    with pytest.raises(CorruptFileError, match=match) as err:
        load_model(_saved_with_config(tmp_path, first_damaged))
    assert "\n" not in str(err.value)


def test_a_model_holding_python_code_is_refused_as_such_and_its_code_never_runs(tmp_path):
    """A .keras with a Lambda layer (a Python function, which Keras's safe mode never runs from a file)
    was called "truncated or not a Keras model", which hid why."""
    import keras

    ran = tmp_path / "ran"
    inp = keras.Input((16, 16, 5))
    out = keras.layers.Lambda(lambda x, f=str(ran): (open(f, "w").close(), x[..., :1])[1])(inp)
    keras.Model(inp, out).save(tmp_path / "lam.keras")
    (tmp_path / "lam.json").write_text(json.dumps(_card().to_dict()))
    ran.unlink(missing_ok=True)  # (building the model ran it once here)
    with pytest.raises(CorruptFileError, match=r"^cannot load model lam\.keras: it holds Python code \(a Lambda layer\), "
                                               "which is never run from a file, for safety"):
        load_model(tmp_path / "lam.keras")
    assert not ran.exists()


def test_a_model_archive_that_expands_far_beyond_its_size_is_refused_before_keras_reads_it(tmp_path):
    """A zip bomb as .keras: a 1 MB upload held a config.json of 1 GB, which Keras read into memory (2 GB) before
    refusing it. The archive's entries are checked first (Keras stores its files uncompressed)."""
    import shutil
    import zipfile

    path = save_model(build_unet("light"), _card(), tmp_path / "m.keras")
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for entry in src.infolist():
            dst.writestr(entry.filename, src.read(entry.filename))
        dst.writestr("assets/padding.bin", b" " * (80 * 1024 * 1024))  # 80 MB of spaces: 80 KB compressed
    shutil.copy(path.with_suffix(".json"), bomb.with_suffix(".json"))
    assert bomb.stat().st_size < 10 * 1024 * 1024
    with pytest.raises(CorruptFileError, match=r"^cannot load model bomb\.keras: its archive expands to over 67,108,864 "
                                               r"bytes from \d"):
        load_model(bomb)
    assert load_model(path).card.preset == "light"  # (a model's own archive passes)
    # the same padding compressed, its index lying about its size (zipfile unpacks an entry whole before it cuts
    # it to the declared size): counted as it expands
    liar = tmp_path / "liar.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(liar, "w", zipfile.ZIP_DEFLATED) as dst:
        for entry in src.infolist():
            dst.writestr(entry.filename, src.read(entry.filename))
        dst.writestr("assets/padding.json", b" " * (80 * 1024 * 1024))
    data = bytearray(liar.read_bytes())
    name = b"assets/padding.json"
    with zipfile.ZipFile(liar) as z:
        info = z.getinfo("assets/padding.json")
    local, central = info.header_offset, data.rfind(b"PK\x01\x02", 0, data.rfind(name))
    for header, field in ((local, 22), (central, 24)):  # the uncompressed size, in the local and central headers
        data[header + field:header + field + 4] = (70_000).to_bytes(4, "little")
    liar.write_bytes(bytes(data))
    with zipfile.ZipFile(liar) as z:
        assert z.getinfo("assets/padding.json").file_size == 70_000  # (the index lies)
    shutil.copy(path.with_suffix(".json"), liar.with_suffix(".json"))
    with pytest.raises(CorruptFileError, match=r"^cannot load model liar\.keras: its configuration is over 16 MB"):
        load_model(liar)


def test_a_card_with_a_number_too_long_to_read_is_said_damaged(tmp_path):
    """A card holding a number of 5,000 digits (Python's limit on reading integers) or nested too deeply: a
    CorruptFileError, as for any card that is not JSON (it was a ValueError or RecursionError)."""
    from core.card import load_card
    from core.model import store_uploaded_model

    path = save_model(build_unet("light"), _card(), tmp_path / "m.keras")
    for text in ('{"preset": ' + "1" * 5000 + "}", "[" * 100_000 + "]" * 100_000):
        path.with_suffix(".json").write_text(text)
        with pytest.raises(CorruptFileError, match="is not valid JSON"):
            load_card(path)
    with pytest.raises(CorruptFileError, match="the model card is not valid JSON"):
        store_uploaded_model(path.read_bytes(), ('{"preset": ' + "1" * 5000 + "}").encode(), tmp_path / "up", name="m.keras")


def test_model_that_does_not_fit_its_card_is_refused_on_loading(tmp_path):
    """A card beside another model (4 input bands, the card names 5), or a model that is no U-Net
    (a classifier): one ModelMismatchError when loading, not a Keras traceback when predicting."""
    import keras

    path = save_model(build_unet("light", n_bands=4), _card(), tmp_path / "four.keras")
    with pytest.raises(ModelMismatchError, match="takes 4 input bands but its card names 5"):
        load_model(path)
    classifier = keras.Sequential([keras.Input((64, 64, 5)), keras.layers.Flatten(), keras.layers.Dense(1)])
    path = save_model(classifier, _card(), tmp_path / "classifier.keras")
    with pytest.raises(ModelMismatchError, match="not a crop segmentation model"):
        load_model(path)
    # a card that names the seed preset beside light weights (the Model page then said "preset seed" of them)
    from dataclasses import replace

    path = save_model(build_unet("light"), replace(_card(), preset="seed"), tmp_path / "named_seed.keras")
    with pytest.raises(ModelMismatchError, match=r"card says it is a seed U-Net \(5 levels of 32-64-128-256-512 filters, "
                                                 r"1024 at the centre\), but the model has 4 levels from 16 filters, 256"):
        load_model(path)


def test_the_card_in_words_gives_what_people_ask_of_a_model():
    """The Model page showed the card as raw JSON (17-digit statistics, Keras names): these rows say it."""
    from core.card import DEFAULT_MODEL_PATH, card_facts, load_card

    card = load_card(DEFAULT_MODEL_PATH)
    facts = dict(card_facts(card))
    assert list(facts) == ["Model", "Input", "Trained on", "Training", "Chosen at", "Created", "Made by", "Notes"]
    assert facts["Model"].startswith("U-Net, light preset: Base-16, depth-4")
    assert facts["Input"] == "R, G, B, NIR, NDVI; 256 x 256 px patches of 30 m pixels"
    # the patches its weights saw: to their epoch (25 of the 30 run; the card said the 30's 24,000)
    t, best = card.training, card.metrics["val_patches_at_best_epoch"]["epoch"]
    assert t["patches_seen"] == best * t["steps_per_epoch"] * t["batch_size"] and t["epochs_run"] > best
    assert facts["Training"].startswith(f"{t['patches_seen']:,} patches seen, 30 epochs, batches of 16, learning rate 0.0005")
    assert facts["Training"].endswith("fine-tuned from best.keras of light")  # (runs/light/best.keras: the first run)
    assert facts["Chosen at"] == ("epoch 25, on validation patches (during training; the validation blocks' figures above "
                                  "differ a little): IoU 0.791, F1 (Dice) 0.883, loss 0.473")
    assert facts["Created"] == "2026-11-25 15:22 UTC" and facts["Made by"].startswith("python -m core train")


def test_the_card_in_words_of_a_hand_written_card_has_the_rows_it_can_give():
    from core.card import ModelCard, Normalization, card_facts

    norm = Normalization(tuple([0.0] * 5), tuple([1.0] * 5))
    card = ModelCard("mine", tuple(FEATURE_BANDS), norm, 128, training={"epochs": "many", "augment": "yes"},
                     metrics={"val": {"val_iou": 0.5}})
    assert card_facts(card) == [("Model", "U-Net, mine preset"),
                                ("Input", "R, G, B, NIR, NDVI; 128 x 128 px patches (pixel size not recorded)"),
                                ("Chosen at", "the best epoch, on validation patches: IoU 0.500")]
    one = ModelCard("mine", tuple(FEATURE_BANDS), norm, 128, training={"epochs_run": 1, "batch_size": 8})
    assert ("Training", "1 epoch, batches of 8") in card_facts(one)  # (not "1 epochs")
    odd = ModelCard("mine", tuple(FEATURE_BANDS), norm, 128, training={"epochs_run": float("nan"), "batch_size": 8})
    assert ("Training", "batches of 8") in card_facts(odd)  # (JSON's NaN is no number of epochs)
    # none run (stopped before its first epoch) is said, not a TypeError, nor the epochs asked for in its place
    for training in ({"epochs_run": 0}, {"epochs_run": 0, "epochs": 3}):
        none = ModelCard("mine", tuple(FEATURE_BANDS), norm, 128, training=training)
        assert ("Training", "0 epochs") in card_facts(none)
    both = ModelCard("mine", tuple(FEATURE_BANDS), norm, 128, training={"epochs_run": 12, "epochs": 40})
    assert ("Training", "12 epochs") in card_facts(both)  # the epochs run, not those asked for
    # a job's checkpoint: the epochs asked for (it may be epoch 1's), and the model it was fine-tuned from by name
    job = ModelCard("light", tuple(FEATURE_BANDS), norm, 64, training={
        "epochs": 40, "patches_seen": 160, "init_model": "/w/jobs/job-20261203-1644/train/best.keras"})
    assert ("Training", "160 patches seen, 40 epochs planned, fine-tuned from best.keras of job-20261203-1644") in \
        card_facts(job)


def test_a_card_written_for_other_weights_is_refused(tmp_path):
    """A .keras uploaded with another model's card (the shipped one's, another training's) was used
    with that card's normalization and shown with its validation figures."""
    import json
    import shutil

    from core.card import card_path, load_card
    from core.model import weights_fingerprint

    norm = Normalization(tuple([0.1] * 5), tuple([0.2] * 5))
    card = ModelCard("light", tuple(FEATURE_BANDS), norm)
    a, b = build_unet("light"), build_unet("light")
    save_model(a, card, tmp_path / "a" / "m.keras")
    save_model(b, card, tmp_path / "b" / "m.keras")
    written = load_card(tmp_path / "a" / "m.keras").weights
    assert written == weights_fingerprint(a) != weights_fingerprint(b) and len(written) == 64
    assert load_model(tmp_path / "a" / "m.keras").card.weights == written  # its own card: loads
    shutil.copy(card_path(tmp_path / "b" / "m.keras"), card_path(tmp_path / "a" / "m.keras"))
    with pytest.raises(ModelMismatchError, match="model card m.json is not this model's"):
        load_model(tmp_path / "a" / "m.keras")
    # a card written before cards held the fingerprint still loads; a damaged fingerprint does not
    old = json.loads(card_path(tmp_path / "b" / "m.keras").read_text())
    del old["weights"]
    card_path(tmp_path / "a" / "m.keras").write_text(json.dumps(old))
    assert load_model(tmp_path / "a" / "m.keras").card.weights == ""
    card_path(tmp_path / "a" / "m.keras").write_text(json.dumps(dict(old, weights=12)))
    with pytest.raises(CorruptFileError, match="not a fingerprint"):
        load_model(tmp_path / "a" / "m.keras")


def test_the_shipped_cards_commands_give_the_settings_it_records():
    """The card's commands reproduce the shipped model: parsed as the CLI parses them, they give the
    settings the card records (Keras' BatchNormalization momentum, 0.99, included: it trained
    before 0.9 became the default)."""
    import shlex
    from dataclasses import fields

    from core.__main__ import build_parser, train_config
    from core.card import DEFAULT_MODEL_PATH
    from core.config import TrainConfig

    card = load_model(DEFAULT_MODEL_PATH).card
    names = [f.name for f in fields(TrainConfig)]
    recorded = TrainConfig(**{k: v for k, v in card.training.items() if k in names})
    assert set(names) <= set(card.training)
    parse = build_parser().parse_args
    assert train_config(parse(shlex.split(card.command)[3:])) == recorded
    first = train_config(parse(shlex.split(card.training["init_model_made_by"])[3:]))
    assert first.bn_momentum == 0.99 and first.init_model is None


def test_the_shipped_card_holds_the_shipped_weights_fingerprint():
    from core.card import DEFAULT_MODEL_PATH
    from core.model import weights_fingerprint

    loaded = load_model(DEFAULT_MODEL_PATH)
    assert loaded.card.weights == weights_fingerprint(loaded.model)


def test_a_byte_damaged_inside_a_saved_model_is_said_to_fail_its_checksum(tiny_model_path, tmp_path):
    """A flipped byte inside the weights (a zip whose check fails) was called "truncated or not a Keras model
    (not a zip archive)"."""
    import shutil
    import zipfile

    path = tmp_path / "m.keras"
    shutil.copy(tiny_model_path, path)
    shutil.copy(tiny_model_path.with_suffix(".json"), tmp_path / "m.json")
    with zipfile.ZipFile(path) as archive:
        entry = max(archive.infolist(), key=lambda e: e.compress_size)  # the weights
    data = bytearray(path.read_bytes())
    start = entry.header_offset + 30 + len(entry.filename.encode()) + len(entry.extra)
    data[start + entry.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=r"cannot load model m\.keras: .*\(a part of it is damaged: its "
                                               r"checksum fails\); save or download it again"):
        load_model(path)


def test_a_model_is_saved_only_under_a_keras_name(tmp_path):
    with pytest.raises(ConfigError, match=r"end in \.keras, got m\.h5"):
        save_model(build_unet("light"), _card(), tmp_path / "m.h5")
    assert list(tmp_path.iterdir()) == []


def test_an_upload_that_cannot_be_written_whole_leaves_nothing(tmp_path, monkeypatch):
    """A full disk while the card is written: no half-stored upload stays in the uploads folder."""
    import errno
    import pathlib

    from core.model import store_uploaded_model

    real = pathlib.Path.write_bytes

    def full_disk(self, data):
        if self.suffix == ".json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store_uploaded_model(b"model bytes", json.dumps(_card().to_dict()).encode(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_or_huge_uploaded_card_is_refused_as_such(tmp_path):
    from core.card import MAX_CARD_BYTES
    from core.errors import InvalidDataError
    from core.model import store_uploaded_model

    with pytest.raises(InvalidDataError, match="the uploaded model card is empty"):
        store_uploaded_model(b"model bytes", b"", tmp_path)
    huge = json.dumps({**_card().to_dict(), "notes": "x" * MAX_CARD_BYTES}).encode()
    with pytest.raises(InvalidDataError, match="larger than 1 MB"):
        store_uploaded_model(b"model bytes", huge, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_same_upload_under_two_names_keeps_both(tmp_path):
    """The same files uploaded again under another name never take the place of the first (a model in use)."""
    from core.card import card_path
    from core.model import store_uploaded_model

    data, card = b"model bytes", json.dumps(_card().to_dict()).encode()
    first = store_uploaded_model(data, card, tmp_path, name="wheat.keras")
    second = store_uploaded_model(data, card, tmp_path, name="maize.keras")
    assert first.name == "wheat.keras" and second.name == "maize.keras"
    for stored in (first, second):
        assert stored.read_bytes() == data and card_path(stored).read_bytes() == card


def test_model_files_are_checked_before_loading(tmp_path):
    """A command checks the model before it writes anything: a truncated .keras, or a folder, is refused then."""
    from core.card import card_path
    from core.model import check_model_files

    path = tmp_path / "m.keras"
    path.write_bytes(b"PK\x03\x04 cut short")
    card_path(path).write_text(json.dumps(_card().to_dict()))
    with pytest.raises(CorruptFileError, match=r"cannot load model m\.keras: the file is truncated"):
        check_model_files(path)
    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"run is a folder; give the model's \.keras file"):
        check_model_files(folder)
    with pytest.raises(InputNotFoundError, match="model file not found"):
        check_model_files(tmp_path / "none.keras")


def test_a_model_that_may_not_be_read_is_not_said_truncated(tmp_path, monkeypatch):
    """A .keras file without read permission was "the file is truncated or not a Keras model (not a .keras
    archive); save or download it again" (zipfile.is_zipfile says False of a file it may not open)."""
    import builtins
    import io

    from core.card import card_path
    from core.model import check_model_files

    path = tmp_path / "m.keras"
    path.write_bytes(b"PK\x03\x04 (not read)")
    card_path(path).write_text(json.dumps(_card().to_dict()))

    def refused(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return opened(file, *args, **kwargs)

    opened = io.open
    monkeypatch.setattr(builtins, "open", refused)
    monkeypatch.setattr(io, "open", refused)
    with pytest.raises(CorruptFileError) as caught:
        check_model_files(path)
    said = str(caught.value)
    assert "m.keras cannot be read: permission denied; check the permissions" in said and "truncated" not in said, said
