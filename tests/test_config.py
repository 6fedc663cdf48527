"""Configuration checks: every bad value is a ConfigError naming what to give instead."""

import math

import pytest

from core.config import check_pixel_size_m
from core.errors import ConfigError


def test_pixel_size_must_be_a_positive_finite_number():
    assert check_pixel_size_m(None) is None
    assert check_pixel_size_m(10) == 10.0 and check_pixel_size_m(0.5) == 0.5
    for bad in (-30, 0, math.nan, math.inf, -math.inf, "ten"):
        with pytest.raises(ConfigError, match="positive number of metres"):
            check_pixel_size_m(bad)
