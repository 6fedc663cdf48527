"""Configuration checks: every bad value is a ConfigError naming what to give instead."""

import math

import pytest

from core.config import PatchConfig, PredictConfig, TrainConfig, check_pixel_size_m
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


@pytest.mark.parametrize("make, said", [
    (lambda: PatchConfig(patch_size=40), "patch_size must be a multiple of 16"),
    (lambda: PatchConfig(min_valid_fraction=1.5), "min_valid_fraction must be 0-1"),
    (lambda: PatchConfig(seed=2**32), "seed must be 0-4294967295"),
    (lambda: TrainConfig(batch_size=513), "batch_size must be 1-512"),
    (lambda: TrainConfig(patience=0), "patience must be at least 1"),
    (lambda: PredictConfig(tile=16), "tile must be a multiple of 16 from 32 to 2048"),
])
def test_each_value_just_past_its_range_is_refused(make, said):
    with pytest.raises(ConfigError, match=said):
        make()


def test_each_value_at_the_edge_of_its_range_is_taken():
    PatchConfig(patch_size=32, min_valid_fraction=1.0, seed=2**32 - 1, kernel_buffer=32)
    TrainConfig(batch_size=512, patience=1, patch_size=32)
    PredictConfig(tile=32, overlap=16)
    assert PredictConfig().threshold == 0.5  # a pixel is crop at 50% unless told otherwise


def test_a_model_of_a_fixed_size_takes_tiles_of_its_size_only():
    with pytest.raises(ConfigError, match="this model takes 256 px tiles, not 512; use --tile 256"):
        PredictConfig(tile=512).resolve(256, 16)
    assert PredictConfig().resolve(256, 16).tile == 256
