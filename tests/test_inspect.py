"""core.inspect: the pixel under a point of the map, and what its layers hold."""

from __future__ import annotations

import numpy as np
import pytest

from core.inspect import describe_pixel, pixel_at
from core.grid import Grid
from core.raster import grid_of_file

from testdata import FLANDERS_S2


def test_pixel_at_a_point_of_the_image_map_counts_from_the_scene_offset():
    grid = Grid(None, (1.0, 0, 0, 0, 1.0, 0), 40, 30)  # 30 rows, 40 columns
    # the scene drawn at row 100, column 200 of its source image: lng = column, lat = -row
    assert pixel_at(200.5, -100.5, grid, (100, 200)) == (0, 0)
    assert pixel_at(239.99, -129.99, grid, (100, 200)) == (29, 39)
    assert pixel_at(240.0, -110.0, grid, (100, 200)) is None  # just right of the last column
    assert pixel_at(199.9, -110.0, grid, (100, 200)) is None and pixel_at(float("nan"), 0.0, grid) is None


def test_pixel_at_a_longitude_latitude_finds_the_pixel_of_a_projected_grid():
    from rasterio.transform import Affine
    from rasterio.warp import transform

    grid = grid_of_file(FLANDERS_S2)  # UTM
    aff = Affine(*grid.transform)
    for row, col in ((0, 0), (17, 42), (grid.height - 1, grid.width - 1)):
        x, y = aff @ (col + 0.5, row + 0.5)  # the pixel's centre, in lon/lat as the map gives it
        lng, lat = transform(grid.crs, "EPSG:4326", [x], [y])
        assert pixel_at(lng[0], lat[0], grid) == (row, col)
    x, y = aff @ (grid.width + 3, 0)
    lng, lat = transform(grid.crs, "EPSG:4326", [x], [y])
    assert pixel_at(lng[0], lat[0], grid) is None
    # a point in another image's pixel coordinates (e.g. row 150 of the sample) is no place: PROJ raised
    assert pixel_at(120.5, -150.5, grid) is None and pixel_at(0.0, 95.0, grid) is None


def test_describe_pixel_says_what_each_layer_holds_there():
    feats = np.zeros((2, 2, 5), np.float32)
    feats[0, 1] = (0.05, 0.08, 0.04, 0.4, 0.778)
    valid = np.array([[False, True], [True, True]])
    prob = np.array([[np.nan, 0.495], [0.2, 0.9]], np.float32)
    labels = np.array([[255, 1], [0, 255]], np.uint8)
    codes = np.array([[-1, 1], [176, -1]], np.int16)
    line = describe_pixel(0, 1, feats, valid, prob, 0.5, labels, codes, "cdl")
    # 0.495 is stored as 50%: crop at 0.50, as the crop layer and crop_mask.tif have it
    assert line == ("NDVI 0.78 (reflectance R 0.050, G 0.080, B 0.040, NIR 0.400); "
                    "crop probability 0.50: crop at threshold 0.50; labelled crop (1 Corn): agrees.")
    # the verdict, in the disagreement map's words: 20% is not crop at 0.50, 0.15; grassland is not crop
    assert describe_pixel(1, 0, feats, valid, prob, 0.5, labels, codes, "cdl").endswith(
        "crop probability 0.20: not crop at threshold 0.50; labelled not crop (176 Grassland/Pasture): agrees.")
    assert describe_pixel(1, 0, feats, valid, prob, 0.15, labels, codes, "cdl").endswith(
        "crop at threshold 0.15; labelled not crop (176 Grassland/Pasture): false crop.")
    assert describe_pixel(0, 1, feats, valid, prob, 0.6, labels, codes, "cdl").endswith(
        "not crop at threshold 0.60; labelled crop (1 Corn): missed crop.")
    assert describe_pixel(0, 0, feats, valid, probability=prob, labels=labels) == (
        "no image data; no prediction; no label.")
    assert describe_pixel(1, 0, feats, valid, labels=labels, codes=codes, label_map="cdl").endswith(
        "; labelled not crop (176 Grassland/Pasture).")
    assert describe_pixel(1, 1, feats, valid, probability=prob).endswith("; crop probability 0.90.")
    for outside in ((2, 0), (-1, 0), (0, -1)):  # (-1 read the last row's pixel)
        with pytest.raises(IndexError):
            describe_pixel(*outside, feats, valid)


def test_place_is_latitude_longitude_or_the_row_and_column_in_the_source_image():
    from core.inspect import place

    image = Grid(None, (1.0, 0, 0, 0, 1.0, 0), 40, 30)
    assert place(225.5, -105.5, 5, 25, image, (100, 200)) == "Pixel row 105, column 225"
    utm = grid_of_file(FLANDERS_S2)
    assert place(-72.7, -16.6, 0, 0, utm) == "16.60000° S, 72.70000° W"
    assert place(4.25, 51.0, 0, 0, utm) == "51.00000° N, 4.25000° E"
    # a map over the 180th meridian goes on east past 180: a point there is in the western hemisphere
    assert place(180.002, -16.8, 0, 0, utm) == place(-179.998, -16.8, 0, 0, utm) == "16.80000° S, 179.99800° W"


def test_a_point_past_the_last_row_is_no_pixel_and_a_pixel_without_a_label_gets_no_verdict():
    """Just below the scene's last row was read as a pixel one row past the arrays; a pixel with no label
    is not 'false crop' or 'missed crop' (the disagreement map leaves it out); binary labels have no product
    class to name."""
    grid = Grid(None, (1.0, 0, 0, 0, 1.0, 0), 40, 30)  # 30 rows, 40 columns
    assert pixel_at(10.5, -29.5, grid) == (29, 10)
    assert pixel_at(10.5, -30.0, grid) is None and pixel_at(10.5, -30.5, grid) is None
    feats = np.zeros((1, 2, 5), np.float32)
    valid = np.ones((1, 2), bool)
    prob = np.array([[0.9, 0.1]], np.float32)
    labels = np.array([[255, 1]], np.uint8)
    codes = np.array([[-1, 1]], np.int16)
    assert describe_pixel(0, 0, feats, valid, prob, 0.5, labels, codes, "cdl").endswith(
        "crop probability 0.90: crop at threshold 0.50; no label.")
    assert describe_pixel(0, 1, feats, valid, prob, 0.5, labels, codes, "binary").endswith(
        "not crop at threshold 0.50; labelled crop: missed crop.")


def test_a_point_outside_the_projections_domain_is_no_pixel():
    """A click far around the globe from a UTM image (its zone's far side) cannot be projected: no pixel,
    as for any point outside the grid, not GDAL's error."""
    utm = grid_of_file(FLANDERS_S2)  # EPSG:32631
    assert pixel_at(-90.0, 0.0, utm) is None
    assert pixel_at(-177.0, 10.0, utm) is None
