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


def test_an_overlap_is_checked_against_the_tile_it_goes_with():
    """With the tile left to the model, an overlap was checked against 1,024 px, then against half the 512 px
    tile chosen: two limits for one option. It is checked against the tile once the tile is known."""
    import pytest

    from core.config import PredictConfig
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="half the 512 px tile, got 1000"):
        PredictConfig(overlap=1000).resolve(None, 16)
    with pytest.raises(ConfigError, match="overlap must be 0-128, half the 256 px tile, got 200"):
        PredictConfig(tile=256, overlap=200)
    with pytest.raises(ConfigError, match="overlap must be 0 or more"):
        PredictConfig(overlap=-1)
    assert PredictConfig(overlap=256).resolve(None, 16).overlap == 256
