"""Configuration checks: every bad value is a ConfigError naming what to give instead."""

import math

import pytest

from core.config import PredictConfig, check_pixel_size_m
from core.errors import ConfigError


def test_pixel_size_must_be_a_positive_finite_number():
    assert check_pixel_size_m(None) is None
    assert check_pixel_size_m(10) == 10.0 and check_pixel_size_m(0.5) == 0.5
    for bad in (-30, 0, math.nan, math.inf, -math.inf, "ten"):
        with pytest.raises(ConfigError, match="positive number of metres"):
            check_pixel_size_m(bad)


def test_small_tiles_get_a_batch_size_the_config_accepts():
    """--tile 32 (allowed) made a default batch of 512 tiles, which the config itself refused
    ('batch_size must be 1-256', an option the user never gave)."""
    for tile in (32, 48, 2048):
        batch = PredictConfig(tile=tile, overlap=0).resolve(None, 16).batch_size
        assert 1 <= batch <= 256
    assert PredictConfig(tile=32, overlap=0).resolve(None, 16).batch_size == 256
