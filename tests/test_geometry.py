"""core.geometry: polygon areas (overlaps counted once), outlines that cross themselves, the cut to a box."""

from __future__ import annotations

import json

import numpy as np

import pytest

from core.errors import RegionError
from core.geometry import IMAGE_CRS
from core.region import Region
from core.region_check import check_region


def test_a_hole_outside_its_polygon_is_named_so():
    """A hole beside its polygon took its area off the polygon's ("covers 7,500 pixels" for 10,000), and
    one as large was refused as "zero area"; holes inside, or on its edge, are kept."""
    outer = [[-50, 100], [50, 100], [50, 200], [-50, 200], [-50, 100]]
    for hole in ([[300, 300], [350, 300], [350, 350], [300, 350], [300, 300]],
                 [[300, 300], [500, 300], [500, 500], [300, 500], [300, 300]]):  # (as large as the polygon)
        with pytest.raises(RegionError, match="a hole of the region lies outside the polygon it belongs to"):
            Region.from_geojson({"type": "Polygon", "coordinates": [outer, hole]}, crs=IMAGE_CRS)
    inside = [[-40, 120], [0, 120], [0, 150], [-40, 150], [-40, 120]]
    on_edge = [[-50, 100], [0, 100], [0, 150], [-50, 150], [-50, 100]]  # (two of its sides on the outline)
    assert Region.from_geojson({"type": "Polygon", "coordinates": [outer, inside]}, crs=IMAGE_CRS).area_pixels() == 8800
    assert Region.from_geojson({"type": "Polygon", "coordinates": [outer, on_edge]}, crs=IMAGE_CRS).area_pixels() == 7500
    # a traced field's holes are checked all at once: one outside among several inside is found wherever it is,
    # and one of three corners (the fewest) counts as much as one of many
    beside = [[300, 300], [350, 300], [350, 350], [300, 300]]
    small = [[10, 160], [20, 160], [20, 170], [10, 160]]
    for holes in ([inside, beside, small], [beside, inside], [inside, small, beside]):
        with pytest.raises(RegionError, match="a hole of the region lies outside the polygon it belongs to"):
            Region.from_geojson({"type": "Polygon", "coordinates": [outer, *holes]}, crs=IMAGE_CRS)
    kept = Region.from_geojson({"type": "Polygon", "coordinates": [outer, inside, small]}, crs=IMAGE_CRS)
    assert kept.area_pixels() == 10000 - 1200 - 50


def test_an_outline_that_crosses_itself_is_named_so():
    # a bowtie (corners out of order): its two halves cancel out to zero area
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]], "crs": "image"}
    with pytest.raises(RegionError, match="outline crosses itself"):
        Region.from_geojson(bowtie, crs=IMAGE_CRS)
    flat = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}
    with pytest.raises(RegionError, match="zero area"):
        Region.from_geojson(flat, crs=IMAGE_CRS)
    square = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}
    assert Region.from_geojson(square, crs=IMAGE_CRS).bounds == (0, 0, 2, 2)
    # an uneven figure of eight (its halves do not cancel out): its area was not its pixels' (50 for 385)
    eight = {"type": "Polygon", "coordinates": [[[0, 0], [30, 20], [40, 10], [40, 20], [30, 0], [0, 20], [0, 0]]]}
    with pytest.raises(RegionError, match="outline crosses itself"):
        Region.from_geojson(eight, crs=IMAGE_CRS)
    across = {"type": "Polygon", "coordinates": [[[0, 0], [20, 0], [20, 20], [0, 20], [0, 0]],  # a hole across the outline
                                                 [[15, 5], [25, 5], [25, 10], [15, 10], [15, 5]]]}
    with pytest.raises(RegionError, match="outline crosses itself"):
        Region.from_geojson(across, crs=IMAGE_CRS)
    # the second polygon of several crossing itself (each outline is checked, not the first alone)
    pair = {"type": "MultiPolygon", "coordinates": [square["coordinates"], eight["coordinates"]]}
    with pytest.raises(RegionError, match="outline crosses itself"):
        Region.from_geojson(pair, crs=IMAGE_CRS)
    # a hole that touches its outline at a corner (as traced fields' may), and overlapping polygons of a
    # file (the region is the pixels inside any of them): kept
    touching = {"type": "Polygon", "coordinates": [[[0, 0], [40, 0], [40, 40], [0, 40], [0, 0]],
                                                   [[0, 0], [10, 5], [5, 10], [0, 0]]]}
    assert Region.from_geojson(touching, crs=IMAGE_CRS).area_pixels() == 1600 - 37.5
    overlapping = {"type": "MultiPolygon", "coordinates": [[[[0, 0], [20, 0], [20, 20], [0, 20], [0, 0]]],
                                                           [[[10, 10], [30, 10], [30, 30], [10, 30], [10, 10]]]]}
    assert len(Region.from_geojson(overlapping, crs=IMAGE_CRS).polygons) == 2


def test_a_region_reaching_far_beyond_a_utm_image_is_cut_to_its_surroundings():
    """A region reaching 100 degrees from a UTM image (an upload of a country or a continent):
    GDAL refused to reproject it whole (a traceback), or its corners alone missed the image."""
    from testdata import FTW

    from core.raster import grid_of_file
    from core.geometry import clipped_to_box

    grid = grid_of_file(FTW)  # Upper Austria, UTM zone 33N
    for box in [(-100, 0, 100, 80), (-179, -80, 179, 80)]:
        check = check_region(Region.from_bbox(*box), grid)
        assert check.ok and check.clipped and check.pixels == grid.height * grid.width, (box, check.message)
    # the cut: a ring within the box is as it was; one across it is cut to it, holes too; one outside is gone
    ring = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    inside = {"type": "Polygon", "coordinates": [ring]}
    assert clipped_to_box(inside, (-1, -1, 11, 11)) is inside
    cut = clipped_to_box({"type": "Polygon", "coordinates": [ring, [[4, 4], [8, 4], [8, 8], [4, 8], [4, 4]]]}, (5, -1, 20, 20))
    assert Region.from_geojson(cut).bounds == (5, 0, 10, 10)
    assert [sorted(map(tuple, r[:-1])) for r in cut["coordinates"]] == [
        [(5.0, 0.0), (5.0, 10.0), (10.0, 0.0), (10.0, 10.0)], [(5.0, 4.0), (5.0, 8.0), (8.0, 4.0), (8.0, 8.0)]]
    assert clipped_to_box(inside, (20, 20, 30, 30)) is None


def _square(x: float, y: float, side: float):
    return (((x, y), (x + side, y), (x + side, y + side), (x, y + side), (x, y)),)


def test_polygons_that_overlap_count_their_common_area_once():
    """A GeoJSON of fields that overlap (or the same field twice) gave an area larger than the fields."""
    from core.geometry import union_area

    assert union_area((_square(0, 0, 10), _square(10, 0, 10), _square(30, 30, 5))) == 225.0  # apart or touching: exact
    assert union_area((_square(0, 0, 10), _square(0, 0, 10))) == 100.0
    assert union_area((_square(0, 0, 10), _square(3.3, 3.3, 10))) == pytest.approx(200 - 6.7**2, rel=1e-3)
    holed = (_square(0, 0, 10)[0], _square(2, 2, 2)[0][::-1])  # a 2 x 2 hole inside, then a square over the hole
    assert union_area((holed, _square(1, 1, 4))) == pytest.approx(100.0, rel=1e-3)
    # two fields of 100 x 300 m, one over the other but 0.7 or 1.3 m aside: within 0.2 % (on a grid over the
    # pair, of cells 1/200 of a field's side, 0.74 and 1.07 % over)
    for dx in (0.7, 1.3):
        field = (((0, 0), (100, 0), (100, 300), (0, 300), (0, 0)),)
        moved = (tuple((x + dx, y + dx) for x, y in field[0]),)
        assert union_area((field, moved)) == pytest.approx(60000 - (100 - dx) * (300 - dx), rel=2e-3)
    # two strips of 1000 x 10 m overlapping by 4.7 m: on square cells, 1.2% off
    strip = (((0, 0), (1000, 0), (1000, 10), (0, 10), (0, 0)),)
    assert union_area((strip, (tuple((x, y + 5.3) for x, y in strip[0]),))) == pytest.approx(20000 - 4700, rel=2e-3)
    # a valley of 6,400 fields that each overlap their neighbours by 1 m: within 0.1 %
    fields = tuple(_square(i * 9.0, j * 9.0, 10) for i in range(80) for j in range(80))
    assert union_area(fields) == pytest.approx((79 * 9 + 10) ** 2, rel=1e-3)


def test_a_file_holding_the_same_field_twice_has_the_field_s_area():
    field = [[-72.70, -16.60], [-72.69, -16.60], [-72.69, -16.59], [-72.70, -16.59], [-72.70, -16.60]]
    one = Region.from_geojson(json.dumps({"type": "Polygon", "coordinates": [field]}))
    both = Region.from_geojson(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [field]}}] * 2}))
    assert len(both.polygons) == 2
    assert both.area_ha() == pytest.approx(one.area_ha(), rel=1e-9) and 100 < one.area_ha() < 130
    pixels = Region.from_geojson(json.dumps({**{"type": "MultiPolygon", "coordinates": [[[list(p) for p in _square(0, 0, 40)[0]]]] * 2},
                                             "crs": "image"}))
    assert pixels.area_pixels() == 1600.0
    # a shape a grid only approximates (a triangle's slanted side) repeated: still exactly its own area
    triangle = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [0.0, 0.0]]
    twice = Region.from_geojson(json.dumps({"type": "MultiPolygon", "coordinates": [[triangle]] * 2, "crs": "image"}))
    assert twice.area_pixels() == 50.0


def _dense(ring: list, per_edge: int) -> list:
    """``ring`` with each edge cut into ``per_edge`` pieces (an outline traced in detail)."""
    import numpy as np

    out = []
    for (x0, y0), (x1, y1) in zip(ring[:-1], ring[1:]):
        t = np.arange(per_edge) / per_edge
        out += [[x0 + (x1 - x0) * k, y0 + (y1 - y0) * k] for k in t]
    return out + [ring[-1]]


def test_outlines_traced_in_detail_are_checked_too():
    """Past 5,000 edges an outline was not checked: a figure of eight of 6,000 edges was taken, its area
    82 ha for pixels covering 137 ha. A detailed outline that is fine passes, and so does a hole in it."""
    import math

    eight = [[0, 0], [30, 20], [40, 10], [40, 20], [30, 0], [0, 20], [0, 0]]
    with pytest.raises(RegionError, match="outline crosses itself"):
        Region.from_geojson({"type": "Polygon", "coordinates": [_dense(eight, 1000)]}, crs=IMAGE_CRS)
    n = 100_000  # a round field of 100,000 corners, with a hole of 20,000 inside and one outside
    circle = [[500 + 400 * math.cos(2 * math.pi * k / n), 500 + 400 * math.sin(2 * math.pi * k / n)] for k in range(n)]
    hole = [[500 + 100 * math.cos(2 * math.pi * k / 20_000), 500 + 100 * math.sin(2 * math.pi * k / 20_000)]
            for k in range(20_000)]
    region = Region.from_geojson({"type": "Polygon", "coordinates": [circle + circle[:1], hole + hole[:1]]}, crs=IMAGE_CRS)
    assert region.area_pixels() == pytest.approx(math.pi * (400**2 - 100**2), rel=1e-3)
    away = [[x + 2000, y] for x, y in hole]
    with pytest.raises(RegionError, match="a hole of the region lies outside the polygon it belongs to"):
        Region.from_geojson({"type": "Polygon", "coordinates": [circle + circle[:1], away + away[:1]]}, crs=IMAGE_CRS)


def test_the_crossing_check_finds_what_comparing_every_pair_finds():
    """The sweep (edges sorted by their west end, a chunk against a block of those it can meet) against
    every pair of edges compared, on random outlines, some crossing, with chunks and blocks of a few edges."""
    import numpy as np

    from core.geometry import _edges, _outline_crosses

    def every_pair(poly) -> bool:
        e = _edges(poly)
        for i in range(len(e)):
            for j in range(i + 1, len(e)):
                (ax, ay, bx, by), (cx, cy, dx, dy) = e[i], e[j]
                d1 = (dx - cx) * (ay - cy) - (dy - cy) * (ax - cx)
                d2 = (dx - cx) * (by - cy) - (dy - cy) * (bx - cx)
                d3 = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
                d4 = (bx - ax) * (dy - ay) - (by - ay) * (dx - ax)
                if d1 * d2 < 0 and d3 * d4 < 0:
                    return True
        return False

    rng = np.random.default_rng(7)
    found = set()
    for n in range(300):
        k = int(rng.integers(4, 14))
        ring = rng.integers(0, 20, (k, 2)).astype(float)
        if n % 2:  # round ones (rarely crossing), some with a long edge across
            angles = np.sort(rng.random(k)) * 2 * np.pi
            ring = np.c_[10 + 8 * np.cos(angles), 10 + 8 * np.sin(angles)].round(1)
        poly = ([*ring.tolist(), ring[0].tolist()],)
        expected = every_pair(poly)
        found.add(expected)
        for chunk, block in ((1, 1), (3, 5), (256, 16_384)):
            assert _outline_crosses(poly, chunk=chunk, block=block) == expected, (poly, chunk, block)
    assert found == {True, False}


def test_a_detailed_outline_is_drawn_simplified_within_a_screen_pixel():
    """A district traced with 100,000 corners sent 4 MB of outline to the browser twice a run; the map
    draws it without the corners that move it by less than a screen pixel at its deepest zoom. Masks and
    areas keep every corner, and an outline of a few corners is drawn as it is."""
    import math

    import numpy as np

    from core.region import DRAWN_CORNERS

    n = 100_000
    wiggle = [400 + 3 * math.sin(40 * 2 * math.pi * k / n) for k in range(n)]  # (a traced line's detail)
    ring = [[500 + r * math.cos(2 * math.pi * k / n), 500 + r * math.sin(2 * math.pi * k / n)] for k, r in enumerate(wiggle)]
    region = Region.from_geojson({"type": "Polygon", "coordinates": [ring + ring[:1]], "crs": "image"}, crs=IMAGE_CRS)
    tolerance = 1 / 32
    [drawn] = region.outline_geojson(tolerance)["geometry"]["coordinates"]
    assert 100 < len(drawn) < n / 4 and drawn[0] == drawn[-1]
    # every corner of the region lies within the tolerance of the outline drawn (map coordinates: y = -row)
    pts = np.array(ring[::97])[:, None, :] * [1, -1]
    a, b = np.array(drawn[:-1])[None], np.array(drawn[1:])[None]
    t = np.clip(((pts - a) * (b - a)).sum(-1) / ((b - a) ** 2).sum(-1), 0, 1)
    gap = np.sqrt((((a + t[..., None] * (b - a)) - pts) ** 2).sum(-1)).min(axis=1)
    assert gap.max() <= tolerance
    assert region.area_pixels() == pytest.approx(Region.from_geojson(region.to_geojson()).area_pixels())
    square = Region.from_bbox(0, 0, 10, 10, crs=IMAGE_CRS)
    assert square.outline_geojson(tolerance) == square.outline_geojson() == square.to_map_geojson()
    assert sum(len(r) for p in region.polygons for r in p) > DRAWN_CORNERS


def test_a_simplified_outline_keeps_its_spikes():
    """The distance Douglas-Peucker measured was to the line through a segment, not to the segment: a spike
    past a segment's end was dropped, and the outline drawn moved by up to 33 times the tolerance."""
    import numpy as np

    from core.geometry import simplified

    rng = np.random.default_rng(5)
    for _ in range(50):
        k = 40
        angles = np.sort(rng.random(k)) * 2 * np.pi
        radii = np.where(rng.random(k) < 0.2, 50.0, 10.0) * (1 + 0.1 * rng.random(k))  # (spikes among the corners)
        ring = [tuple(p) for p in np.c_[radii * np.cos(angles), radii * np.sin(angles)].tolist()]
        ring.append(ring[0])
        tolerance = 0.5
        [[drawn]] = simplified((((*ring,),),), tolerance)
        pts, d = np.array(ring)[:, None, :], np.array(drawn)
        a, b = d[None, :-1], d[None, 1:]
        t = np.clip(((pts - a) * (b - a)).sum(-1) / np.maximum(((b - a) ** 2).sum(-1), 1e-12), 0, 1)
        assert np.sqrt((((a + t[..., None] * (b - a)) - pts) ** 2).sum(-1)).min(axis=1).max() <= tolerance


def test_a_polygon_past_the_box_in_one_direction_only_is_cut_to_it():
    """Within the box's west-east span but past its south edge (or north, or past west or east only):
    cut to the box, its area that of the part inside."""
    from core.geometry import clipped_to_box, polygon_area

    box = (0.0, 0.0, 10.0, 10.0)
    for ring in ([[2, -5], [8, -5], [8, 5], [2, 5], [2, -5]], [[2, 5], [8, 5], [8, 15], [2, 15], [2, 5]],
                 [[-5, 2], [5, 2], [5, 8], [-5, 8], [-5, 2]], [[5, 2], [15, 2], [15, 8], [5, 8], [5, 2]]):
        cut = clipped_to_box({"type": "Polygon", "coordinates": [ring]}, box)
        assert cut["type"] == "Polygon" and polygon_area(cut["coordinates"]) == pytest.approx(30.0)
        xs, ys = zip(*cut["coordinates"][0])
        assert min(xs) >= 0 and max(xs) <= 10 and min(ys) >= 0 and max(ys) <= 10
    inside = {"type": "Polygon", "coordinates": [[[1, 1], [9, 1], [9, 9], [1, 1]]]}
    assert clipped_to_box(inside, box) is inside  # as it is


def test_pixels_inside_are_those_rasterio_s_geometry_mask_finds_as_bytes():
    from rasterio.features import geometry_mask
    from rasterio.transform import Affine

    from core.geometry import pixels_inside

    shell = [[3.0, 2.0], [40.5, 2.0], [52.0, 30.25], [10.0, 33.0], [3.0, 2.0]]
    hole = [[15.0, 10.0], [25.0, 10.0], [25.0, 20.0], [15.0, 10.0]]
    multi = {"type": "MultiPolygon", "coordinates": [[shell, hole], [[[55, 0], [60, 0], [60, 5], [55, 0]]]]}
    shift = Affine.translation(4, 7)  # a window of the image, as regions burn theirs
    got = pixels_inside([multi], (30, 64), shift)
    assert got.dtype == bool and got.shape == (30, 64) and 0 < got.sum() < got.size
    assert np.array_equal(got, geometry_mask([multi], out_shape=(30, 64), transform=shift, invert=True))
    assert not got[(10 - 7) + 2, (15 - 4) + 5]  # in the hole
    assert not pixels_inside([], (3, 4), shift).any()
