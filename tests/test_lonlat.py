"""core.lonlat: areas in hectares, long edges given corners, grids stored past 180."""

from __future__ import annotations

import pytest

from core.grid import Grid
from core.region import PixelWindow, Region
from core.region_check import check_region


def test_long_lon_lat_edges_are_reprojected_with_corners_in_between():
    """A straight lon/lat edge bends in UTM: edges longer than DENSIFY_DEG get corners in between
    before they are reprojected; a drawn region's few-km edges are reprojected as they are."""
    from core.lonlat import DENSIFY_DEG, densified

    small = Region.from_bbox(14.0, 48.0, 14.03, 48.02).geometry()
    assert densified(small) == {"type": "Polygon", "coordinates": [[list(map(float, p)) for p in small["coordinates"][0]]]}
    big = densified(Region.from_bbox(10.0, 45.0, 12.0, 46.0).geometry())["coordinates"][0]
    steps = [max(abs(b[0] - a[0]), abs(b[1] - a[1])) for a, b in zip(big, big[1:])]
    assert max(steps) <= DENSIFY_DEG + 1e-9 and len(big) == 1 + 2 * (40 + 20) and big[0] == big[-1]
    # an edge across the 180th meridian (Fiji) is not cut: it would run round the world the other way
    fiji = {"type": "Polygon", "coordinates": [[[179.9, -17.0], [-179.9, -17.0], [-179.9, -16.9], [179.9, -16.9], [179.9, -17.0]]]}
    cut = densified(fiji)["coordinates"][0]
    assert all(abs(lon) >= 179.9 for lon, _ in cut) and len(cut) < 12  # only the two short edges get corners


def test_a_large_regions_area_is_that_of_its_lon_lat_box():
    """A region's edges are straight in lon/lat (as geometry_in cuts pixels); projected corner to corner
    onto the equal-area plane they were chords there, and a 10-degree box lost 0.3% of its area (20
    degrees: 1.2%)."""
    import math

    from core.grid import WGS84_A, ellipsoid_sine
    from core.lonlat import lonlat_area_ha

    for w, s, size in ((0.0, 40.0, 10.0), (100.0, -70.0, 20.0), (5.0, 60.0, 1.0)):
        box = {"type": "Polygon", "coordinates": [[[w, s], [w + size, s], [w + size, s + size], [w, s + size], [w, s]]]}
        band = abs(ellipsoid_sine(s + size) - ellipsoid_sine(s)) * WGS84_A**2 * math.radians(size) / 1e4
        assert lonlat_area_ha(box) == pytest.approx(band, rel=2e-4)


@pytest.mark.parametrize("west", [190.0, 179.95])  # a global grid in 0..360; an image across 180 in one run
def test_regions_west_of_180_fall_on_lon_lat_grids_stored_past_180(west):
    """Longitudes past 180 (-169.9 stored as 190.1): a region there was "outside the image", and zones
    gave its fields 0 pixels ("outside the prediction") without an error."""
    import numpy as np

    from core.zones import crop_by_zone

    grid = Grid("EPSG:4326", (0.001, 0.0, west, 0.0, -0.001, -17.0), 200, 200)
    # pixels 120..180 east of the grid's west edge, 50..150 south of its top, named in -180..180
    lon0 = west + 0.12 - 360.0
    region = Region.from_bbox(lon0, -17.15, lon0 + 0.06, -17.05)
    assert region.window(grid) == PixelWindow(row_off=50, col_off=120, height=100, width=60)
    assert region.mask(grid).all() and not region.reaches_far_beyond(grid)
    assert check_region(region, grid).ok
    (zone,) = crop_by_zone(np.ones((200, 200), np.uint8), grid, [("east", region)])
    assert zone.pixels == 6000 and zone.crop_pixels == 6000 and not zone.note
    if west < 180:  # the part west of 180 is found where it was
        assert Region.from_bbox(179.96, -17.15, 179.99, -17.05).window(grid).col_off == 10


def test_the_box_around_a_grid_is_grown_by_its_size_or_a_degree_and_kept_within_the_world():
    from core.lonlat import around

    small = Grid("EPSG:4326", (0.001, 0.0, 10.0, 0.0, -0.001, 50.0), 100, 100)  # 0.1 x 0.1 degrees
    assert around(small) == pytest.approx((9.0, 48.9, 11.1, 51.0))  # grown by 1 degree, the least
    arctic = Grid("EPSG:4326", (1.0, 0.0, -170.0, 0.0, -1.0, 80.0), 20, 20)  # 20 x 20 degrees up to 80 N
    assert around(arctic) == pytest.approx((-180.0, 40.0, -130.0, 90.0))  # by its own size, cut at -180 and 90


def test_a_grids_longitudes_are_its_own_only_where_they_reach_past_180_either_way():
    from core.lonlat import lon_frame_centre

    assert lon_frame_centre(Grid("EPSG:4326", (0.01, 0.0, -180.5, 0.0, -0.01, -17.0), 100, 10)) == pytest.approx(-180.0)
    assert lon_frame_centre(Grid("EPSG:4326", (1.0, 0.0, 0.0, 0.0, -1.0, 90.0), 360, 180)) == pytest.approx(180.0)
    assert lon_frame_centre(Grid("EPSG:4326", (0.01, 0.0, 10.0, 0.0, -0.01, 50.0), 100, 100)) is None
    assert lon_frame_centre(Grid("EPSG:32633", (30.0, 0.0, 500000.0, 0.0, -30.0, 5e6), 100, 100)) is None
