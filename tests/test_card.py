"""The model card (core.card): read without TensorFlow."""

import subprocess
import sys

import pytest

from core.bands import FEATURE_BANDS
from core.card import DEFAULT_MODEL_PATH, ModelCard, Normalization, load_card
from testdata import ROOT


def test_importing_the_card_loads_no_tensorflow():
    """Pages that only read a card (its figures, its bands) stay light."""
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
