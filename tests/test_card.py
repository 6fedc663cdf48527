"""The model card (core.card): read and compared without TensorFlow."""

import json
import shutil
import subprocess
import sys

import pytest

from core.bands import FEATURE_BANDS
from core.card import DEFAULT_MODEL_PATH, ModelCard, Normalization, card_path, load_card, same_weights
from testdata import ROOT

FINGERPRINT = "ab" * 32


def _write(path, **fields):
    """A valid card at ``path``'s .json (its .keras is not needed to read it), with ``fields`` over it."""
    card = ModelCard("light", tuple(FEATURE_BANDS), Normalization((0.1,) * 5, (0.2,) * 5)).to_dict()
    card.update(fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    card_path(path).write_text(json.dumps(card))
    return path


def test_importing_the_card_loads_no_tensorflow():
    """Pages that only read a card (its figures, whether a model is the shipped one) stay light."""
    code = ("import sys, core.card; print(sorted(m for m in ('tensorflow', 'keras', 'ee', 'streamlit') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_best_epoch_and_validation_iou():
    def card(metrics):
        return ModelCard("light", tuple(FEATURE_BANDS), Normalization((0.1,) * 5, (0.2,) * 5), metrics=metrics)

    assert card({}).best_epoch is None and card({}).validation_iou() is None
    assert card({"val": {"epoch": 8, "val_iou": 0.7}}).best_epoch == 8
    assert card({"val": {"epoch": 8, "val_iou": 0.7}}).validation_iou() == 0.7
    # the whole validation blocks' IoU comes first
    assert card({"val": {"val_iou": 0.7}, "val_blocks": {"iou": 0.75}}).validation_iou() == 0.75
    assert card({"val": {"val_iou": 1}}).validation_iou() == 1.0 and isinstance(
        card({"val": {"val_iou": 1}}).validation_iou(), float)
    # what core never writes gives None, never an error
    for odd in ({"val": {"epoch": True}}, {"val": {"epoch": "8"}}, {"val": [8]}, {"val": None}):
        assert card(odd).best_epoch is None
    for odd in ({"val": {"val_iou": "0.7"}}, {"val": {"val_iou": False}}, {"val_blocks": {"iou": None}, "val": 3},
                {"val_blocks": "0.7"}):
        assert card(odd).validation_iou() is None
    assert card([1, 2]).best_epoch is None and card([1, 2]).validation_iou() is None  # metrics not an object
    # the shipped card: its validation blocks' IoU; no epoch (its figures were measured after training)
    shipped = load_card(DEFAULT_MODEL_PATH)
    assert shipped.validation_iou() == pytest.approx(0.7914) and shipped.best_epoch is None


def test_same_weights_by_the_cards_fingerprints(tmp_path):
    a = _write(tmp_path / "a" / "model.keras", weights=FINGERPRINT)
    b = _write(tmp_path / "b" / "other_name.keras", weights=FINGERPRINT)
    c = _write(tmp_path / "c" / "model.keras", weights="cd" * 32)
    assert same_weights(a, b) and same_weights(b, a) and same_weights(a, a)
    assert not same_weights(a, c)
    # no fingerprint (a card written before cards held one): never the same, not even as itself
    old = _write(tmp_path / "old" / "model.keras", weights="")
    old_too = _write(tmp_path / "old2" / "model.keras", weights="")
    assert not same_weights(old, old_too) and not same_weights(old, old) and not same_weights(a, old)
    # a missing or damaged card: False, never an error
    assert not same_weights(a, tmp_path / "none" / "model.keras")
    assert not same_weights(tmp_path / "none" / "model.keras", a)
    damaged = tmp_path / "damaged" / "model.keras"
    damaged.parent.mkdir()
    card_path(damaged).write_text('{"preset": "light", "bands": ')
    assert not same_weights(a, damaged)
    bad_fingerprint = _write(tmp_path / "bad" / "model.keras", weights=12)
    assert not same_weights(bad_fingerprint, bad_fingerprint)


def test_a_copy_of_the_shipped_model_has_its_weights(tmp_path):
    """An upload of the shipped model under another name is the shipped model (its card's fingerprint)."""
    copy = tmp_path / "my_copy.keras"
    shutil.copy(DEFAULT_MODEL_PATH, copy)
    shutil.copy(card_path(DEFAULT_MODEL_PATH), card_path(copy))
    assert same_weights(copy, DEFAULT_MODEL_PATH)
    assert load_card(DEFAULT_MODEL_PATH).weights  # (the shipped card holds a fingerprint)


def test_validation_figures_of_a_hand_written_card_are_checked():
    """block_figures and best_epoch_figures give only the finite numbers a card holds, never raise."""
    import dataclasses

    from core.card import DEFAULT_MODEL_PATH, best_epoch_figures, block_figures, load_card

    shipped = load_card(DEFAULT_MODEL_PATH)
    figures = block_figures(shipped)
    assert figures.scores["iou"] == shipped.metrics["val_blocks"]["iou"] and len(figures.scores) == 5
    assert set(figures.per_block) == set(shipped.metrics["val_blocks"]["per_block"])
    epoch, scores = best_epoch_figures(shipped)
    assert epoch == shipped.metrics["val_patches_at_best_epoch"]["epoch"] and [n for n, _ in scores] == [
        "IoU", "F1 (Dice)", "loss"]
    for metrics in ([], {"val_blocks": []}, {"val_blocks": {"how": "x"}}, {"val": {"val_iou": "high"}}):
        card = dataclasses.replace(shipped, metrics=metrics)
        assert block_figures(card) is None and best_epoch_figures(card) == (None, [])
    odd = dataclasses.replace(shipped, metrics={"val_blocks": {"iou": float("nan"), "f1": True, "recall": 0.5,
                                                               "per_block": {"b1": {"iou": "0.5"}, "b2": {"f1": 1}}}})
    assert block_figures(odd).scores == {"recall": 0.5} and block_figures(odd).per_block == {"b2": {"f1": 1.0}}


def test_a_damaged_cards_field_is_said_with_the_cards_name_and_a_huge_card_is_refused_whole(tmp_path):
    """A card's faulty field was said without the file ("the model card's bands are ..."), its value in full: a
    card with a million bands made a one-line error of megabytes, read from a card of megabytes."""
    from core.errors import CorruptFileError

    model = tmp_path / "crop.keras"
    card = json.loads(card_path(DEFAULT_MODEL_PATH).read_text())
    card_path(model).write_text(json.dumps({**card, "bands": [0] * 1000}))
    with pytest.raises(CorruptFileError) as caught:
        load_card(model)
    said = str(caught.value)
    assert said.startswith("model card crop.json: the model card's bands are [0, 0") and len(said) <= 430
    assert " ... " in said and said.endswith("not a list of band names; the card is damaged: use the .json that "
                                             "core wrote beside the .keras")  # (what to do, at its end, kept)
    card_path(model).write_text(json.dumps({**card, "bands": [0] * 400_000}))
    with pytest.raises(CorruptFileError, match=r"crop\.json is over 1,000,000 bytes, a card a few thousand"):
        load_card(model)


def test_a_damaged_mixers_field_is_said_with_the_mixers_name(tmp_path):
    from core.errors import CorruptFileError
    from core.patches import read_mixer

    mixer = tmp_path / "camana-mixer.json"
    mixer.write_text(json.dumps({"projection": {"crs": "EPSG:32718", "affine": {"doubleMatrix": [30, 0, 0, 0, -30, 0]}},
                                 "patchDimensions": [256, 256], "patchesPerRow": 0, "totalPatches": 4}))
    with pytest.raises(CorruptFileError, match=r"^mixer camana-mixer\.json: the mixer's patchesPerRow is 0; it must be"):
        read_mixer(mixer)


def test_an_image_with_the_models_bands_in_another_order_is_refused():
    """The same bands in another order feed each band to the input trained on another: refused, not predicted on."""
    from core.card import check_bands
    from core.errors import ModelMismatchError

    card = ModelCard("light", tuple(FEATURE_BANDS), Normalization((0.1,) * 5, (0.2,) * 5))
    check_bands(card, list(FEATURE_BANDS))  # the same bands, in the same order
    swapped = [FEATURE_BANDS[1], FEATURE_BANDS[0], *FEATURE_BANDS[2:]]
    with pytest.raises(ModelMismatchError, match="the model expects bands"):
        check_bands(card, swapped)
    with pytest.raises(ModelMismatchError):
        check_bands(card, list(FEATURE_BANDS)[:4])  # one band missing


@pytest.mark.parametrize("change", [
    {"mean": [-1e300, 0.1, 0.1, 0.1, 0.1]},  # (a float32 -inf: every pixel becomes no data)
    {"std": [0.2, 1e300, 0.2, 0.2, 0.2]},    # (a float32 inf: the band divided to 0 everywhere)
])
def test_a_normalization_beyond_float32s_range_either_way_is_refused(change):
    from core.errors import CorruptFileError

    card = ModelCard("light", tuple(FEATURE_BANDS), Normalization((0.1,) * 5, (0.2,) * 5)).to_dict()
    card["normalization"].update(change)
    with pytest.raises(CorruptFileError, match="beyond what any band's values take"):
        ModelCard.from_dict(card)


@pytest.mark.parametrize("change", [{"pixel_size_m": True}, {"weights": "ab"}, {"weights": "ab" * 31}])
def test_a_card_with_a_true_pixel_size_or_a_short_fingerprint_is_refused(change):
    """true is no number of metres (JSON's true is Python's 1); a fingerprint is a whole SHA-256 digest."""
    from core.errors import CorruptFileError

    card = ModelCard("light", tuple(FEATURE_BANDS), Normalization((0.1,) * 5, (0.2,) * 5)).to_dict()
    with pytest.raises(CorruptFileError):
        ModelCard.from_dict({**card, **change})


def test_a_card_that_is_a_folder_is_said_unreadable(tmp_path):
    from core.errors import CorruptFileError

    model = tmp_path / "m.keras"
    card_path(model).mkdir()
    with pytest.raises(CorruptFileError, match=r"cannot read the model card .*m\.json"):
        load_card(model)


def test_a_card_that_may_not_be_read_is_not_said_damaged(tmp_path, monkeypatch):
    """A card without read permission was "the card is damaged: use the .json that core wrote beside the
    .keras", which is the card the user gave."""
    from pathlib import Path

    from core.errors import CorruptFileError

    model = tmp_path / "m.keras"
    card_path(model).write_text("{}")
    read_text = Path.read_text

    def refused(self, *args, **kwargs):
        if self == card_path(model):
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refused)
    with pytest.raises(CorruptFileError) as caught:
        load_card(model)
    said = str(caught.value)
    assert "m.json cannot be read: permission denied; check the permissions" in said and "damaged" not in said, said


def test_a_missing_card_names_best_keras_only_when_it_is_there(tmp_path):
    """last.keras without its card: best.keras beside it is named, but never when there is none."""
    from core.errors import InputNotFoundError

    (tmp_path / "last.keras").write_bytes(b"x")
    with pytest.raises(InputNotFoundError) as caught:
        load_card(tmp_path / "last.keras")
    assert "best.keras" not in str(caught.value) and "resumes" not in str(caught.value)
    _write(tmp_path / "best.keras").write_bytes(b"x")
    with pytest.raises(InputNotFoundError, match="use best.keras beside it"):
        load_card(tmp_path / "last.keras")
