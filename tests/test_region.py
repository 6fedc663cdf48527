"""core.region: construction, parsing, areas, windows, validation."""

from __future__ import annotations

import json

import pytest

from core.errors import RegionError
from core.grid import Grid
from core.region import IMAGE_CRS, PixelWindow, Region, check_region, image_to_map, map_to_image

IMAGE_GRID = Grid(None, (30.0, 0.0, 61440.0, 0.0, -30.0, 107520.0), 1024, 1024)
UTM_GRID = Grid("EPSG:32631", (10.0, 0.0, 501360.0, 0.0, -10.0, 5629680.0), 640, 640)


def test_bbox_and_geojson_roundtrip():
    r = Region.from_bbox(-72.778645, -16.651663, -72.66865, -16.57553, name="Camana")
    again = Region.from_geojson(json.dumps(r.to_geojson()))
    assert again == r
    assert r.bounds == pytest.approx((-72.778645, -16.651663, -72.66865, -16.57553))


def test_lonlat_area_in_hectares():
    # 0.01 deg x 0.01 deg at the equator is about 1.11 km x 1.11 km = 123.6 ha
    r = Region.from_bbox(0, 0, 0.01, 0.01)
    assert r.area_ha() == pytest.approx(123.6, rel=0.01)
    assert "ha" in r.describe_area()


def test_image_region_area_in_pixels_only():
    r = Region.from_bbox(0, 0, 100, 50, crs=IMAGE_CRS)
    assert r.area_pixels() == 5000
    assert r.area_ha() is None
    assert "pixels" in r.describe_area()
    with pytest.raises(RegionError):
        Region.from_bbox(0, 0, 1, 1).area_pixels()


@pytest.mark.parametrize("text, msg", [
    ("{not json", r"not valid JSON \(line 1, column 2: expecting property name .*\), so not GeoJSON; save the region as GeoJSON"),
    ("", r"not valid JSON \(line 1, column 1: expecting value\)"),
    ('{"type": "Point", "coordinates": [1, 2]}', "no Polygon"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}', "3 distinct"),
    ('{"type": "Polygon", "coordinates": [[[500, 0], [501, 1], [500, 1], [500, 0]]]}', "not longitude/latitude"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}', "zero area"),
    ('[1, 2]', "must be an object"),
    ('{"type": "Polygon", "coordinates": [["a", "b"]]}', "lists of"),
    ('{"type": "Polygon", "coordinates": 5}', "must be a list"),
    ('{"type": "MultiPolygon", "coordinates": [5]}', "must be a list"),
    ('{"type": "FeatureCollection", "features": 5}', "must be a list"),
    ('{"type": "GeometryCollection", "geometries": "x"}', "must be a list"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]], []]}', "hole .* 3 distinct"),
    ('{"type": "Polygon", "coordinates": [[{"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 1, "y": 1}]]}', "lists of"),
    ('{"type": "Polygon", "coordinates": [[[1' + "0" * 400 + ', 0], [1, 0], [1, 1], [0, 0]]]}', "finite"),
])
def test_bad_geojson_is_rejected_with_reason(text, msg):
    with pytest.raises(RegionError, match=msg):
        Region.from_geojson(text)


def test_upload_feature_collection_multipolygon_and_image_marker():
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"crs": "image", "name": "a"},
         "geometry": {"type": "MultiPolygon", "coordinates": [
             [[[0, 0], [300, 0], [300, 300], [0, 300], [0, 0]]],
             [[[400, 400], [700, 400], [700, 700], [400, 400]]]]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [1, 2]}},
    ]}
    r = Region.from_upload(json.dumps(fc).encode())
    assert r.crs == IMAGE_CRS and len(r.polygons) == 2
    assert r.geometry()["type"] == "MultiPolygon"


def test_an_uploaded_region_takes_the_name_its_geojson_gives_it():
    """The name the file gives its area (a Feature's, or its features'), not the file's name, which
    is only the fallback."""
    square = {"type": "Polygon", "coordinates": [[[-72.7, -16.6], [-72.6, -16.6], [-72.6, -16.5], [-72.7, -16.6]]]}
    feature = {"type": "Feature", "properties": {"name": "North fields"}, "geometry": square}
    assert Region.from_upload(json.dumps(feature).encode(), name="inside.geojson").name == "North fields"
    fc = {"type": "FeatureCollection", "features": [
        {**feature, "properties": {"name": f"field {i}"}} for i in range(5)] + [
        {"type": "Feature", "properties": {"name": "a well"}, "geometry": {"type": "Point", "coordinates": [-72.65, -16.55]}}]}
    assert Region.from_upload(json.dumps(fc).encode(), name="x.geojson").name == "field 0, field 1, field 2 and 2 more"
    unnamed = {"type": "Feature", "properties": {}, "geometry": square}
    assert Region.from_upload(json.dumps(unnamed).encode(), name="inside.geojson").name == "inside.geojson"
    # a field without a name is counted (a file of three fields was named after the two named ones)
    three = {"type": "FeatureCollection", "features": [{**feature, "properties": {"name": "North wheat"}},
                                                        {**feature, "properties": {"name": "West pasture"}}, unnamed]}
    assert Region.from_upload(json.dumps(three).encode(), name="x.geojson").name == "North wheat, West pasture and 1 more"
    assert Region.from_upload(json.dumps(square).encode()).name == ""


def test_upload_limits():
    with pytest.raises(RegionError, match="limit"):
        Region.from_upload(b" " * (6 * 1024 * 1024))
    with pytest.raises(RegionError, match="not valid JSON"):  # (text in UTF-16, but no JSON)
        Region.from_upload(b"\xff\xfe\x00bad")


def test_a_file_nested_too_deeply_is_refused_in_words():
    with pytest.raises(RegionError, match="nests its JSON too deeply"):
        Region.from_upload(b"[" * 100_000)


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
    # a hole that touches its outline at a corner (as traced fields' may), and overlapping polygons of a
    # file (the region is the pixels inside any of them): kept
    touching = {"type": "Polygon", "coordinates": [[[0, 0], [40, 0], [40, 40], [0, 40], [0, 0]],
                                                   [[0, 0], [10, 5], [5, 10], [0, 0]]]}
    assert Region.from_geojson(touching, crs=IMAGE_CRS).area_pixels() == 1600 - 37.5
    overlapping = {"type": "MultiPolygon", "coordinates": [[[[0, 0], [20, 0], [20, 20], [0, 20], [0, 0]]],
                                                           [[[10, 10], [30, 10], [30, 30], [10, 30], [10, 10]]]]}
    assert len(Region.from_geojson(overlapping, crs=IMAGE_CRS).polygons) == 2


def test_map_coordinates_of_image_regions():
    assert image_to_map(10, 20) == (10.0, -20.0)
    assert map_to_image(10, -20) == (10.0, 20.0)
    drawn = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[10, -20], [300, -20], [300, -290], [10, -290], [10, -20]]]}}
    r = Region.from_map_geojson(drawn, image=True)
    assert r.crs == IMAGE_CRS
    assert r.bounds == (10, 20, 300, 290)
    assert r.to_map_geojson()["geometry"]["coordinates"][0][0] == [10.0, -20.0]
    lonlat = Region.from_map_geojson({"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 1]]]}, image=False)
    assert lonlat.crs == "EPSG:4326"
    # Leaflet repeats the world east and west: a drawing on a copy is the same place (Viti Levu, Fiji)
    copy = Region.from_map_geojson({"type": "Polygon", "coordinates": [
        [[-182.6, -17.7], [-182.4, -17.7], [-182.4, -17.5], [-182.6, -17.7]]]}, image=False)
    assert copy.bounds == pytest.approx((177.4, -17.7, 177.6, -17.5))
    with pytest.raises(RegionError, match="across the 180th meridian"):  # (it said: not longitude/latitude)
        Region.from_map_geojson({"type": "Polygon", "coordinates": [
            [[179.9, -16.7], [180.1, -16.7], [180.1, -16.6], [179.9, -16.7]]]}, image=False)


def test_window_and_mask_on_image_grid():
    r = Region.from_bbox(100.2, 50.5, 400.7, 420, crs=IMAGE_CRS)
    w = r.window(IMAGE_GRID)
    assert (w.row_off, w.col_off, w.height, w.width) == (50, 100, 370, 301)
    tri = Region(IMAGE_CRS, ((((0.0, 0.0), (300.0, 0.0), (0.0, 300.0), (0.0, 0.0)),),))
    m = tri.mask(IMAGE_GRID)
    assert m.shape == (300, 300)
    assert m[10, 10] and not m[290, 290]
    assert 0.45 < m.mean() < 0.55


def test_window_clipped_and_outside():
    w = Region.from_bbox(-50, -50, 300, 300, crs=IMAGE_CRS).window(IMAGE_GRID)
    assert (w.row_off, w.col_off) == (0, 0)
    with pytest.raises(RegionError, match="outside the image"):
        Region.from_bbox(2000, 2000, 2500, 2500, crs=IMAGE_CRS).window(IMAGE_GRID)


def test_a_region_a_few_millimetres_past_the_image_edge_is_not_clipped():
    """A GeoJSON of this image's own crop areas, its lon/lat rounded to 7 decimals, overshoots the
    image edge by millimetres: that is not "part of the region lies outside the image"; a region
    a third of a pixel past the edge is."""
    from rasterio.warp import transform

    def region_to(col_past_edge: float) -> Region:
        cols = [340.0, UTM_GRID.width + col_past_edge]
        xs = [501360.0 + 10.0 * c for c in cols]
        ys = [5629680.0 - 10.0 * 100, 5629680.0 - 10.0 * 400]
        lon, lat = transform("EPSG:32631", "EPSG:4326", [xs[0], xs[1], xs[1], xs[0]], [ys[0], ys[0], ys[1], ys[1]])
        ring = tuple((round(x, 7), round(y, 7)) for x, y in zip(lon, lat))
        return Region("EPSG:4326", ((ring + ring[:1],),))

    near = check_region(region_to(0.0005), UTM_GRID)  # 5 mm on 10 m pixels
    assert near.ok and not near.clipped and "outside" not in near.message
    assert near.window.col_off + near.window.width == UTM_GRID.width
    past = check_region(region_to(0.33), UTM_GRID)
    assert past.ok and past.clipped and "outside the image" in past.message


def test_a_multipolygon_part_far_from_the_image_is_said_to_be_left_out():
    """A part 5 degrees away was dropped before the pixel bounds were taken: "region OK", no word."""
    from rasterio.warp import transform

    xs = [501360.0 + 10.0 * c for c in (100, 500)]
    ys = [5629680.0 - 10.0 * r for r in (100, 400)]
    lon, lat = transform("EPSG:32631", "EPSG:4326", [xs[0], xs[1], xs[1], xs[0]], [ys[0], ys[0], ys[1], ys[1]])
    over = tuple(zip(lon, lat))
    far = tuple((x + 5.0, y) for x, y in over)
    alone = check_region(Region("EPSG:4326", ((over + over[:1],),)), UTM_GRID)
    both = check_region(Region("EPSG:4326", ((over + over[:1],), (far + far[:1],))), UTM_GRID)
    assert alone.ok and not alone.clipped
    assert both.ok and both.clipped and "part of the region lies outside the image and is left out" in both.message
    assert both.window == alone.window and both.pixels == alone.pixels and both.area_ha == alone.area_ha


def test_a_region_thinner_than_a_pixel_is_said_to_be_so():
    """A sliver inside the image was told it covers "only the space around" the image's pixels."""
    sliver = Region.from_bbox(10.2, 10.2, 10.4, 300, crs=IMAGE_CRS)
    res = check_region(sliver, IMAGE_GRID)
    assert not res.ok and "thinner than a pixel" in res.message and "space around" not in res.message


def test_kind_mismatch_is_explained():
    with pytest.raises(RegionError, match="not georeferenced") as err:
        Region.from_bbox(0, 0, 1, 1).window(IMAGE_GRID)
    # the fix it names for a GeoJSON of the image's pixels does what it says
    assert '"crs": "image" at its top level' in str(err.value)
    fixed = {**Region.from_bbox(0, 0, 20, 20).to_geojson()["geometry"], "crs": "image"}
    assert Region.from_geojson(json.dumps(fixed)).window(IMAGE_GRID) is not None
    with pytest.raises(RegionError, match="georeferenced"):
        Region.from_bbox(0, 0, 10, 10, crs=IMAGE_CRS).window(UTM_GRID)


def test_lonlat_window_on_utm_grid():
    from rasterio.warp import transform_bounds

    # the grid covers x 501360..507760, y 5623280..5629680 (EPSG:32631)
    w_, s_, e_, n_ = transform_bounds("EPSG:32631", "EPSG:4326", 502000, 5624000, 505000, 5628000)
    win = Region.from_bbox(w_, s_, e_, n_).window(UTM_GRID)
    assert abs(win.col_off - 64) <= 2 and abs(win.row_off - 168) <= 2
    assert abs(win.width - 300) <= 4 and abs(win.height - 400) <= 4


def test_check_region_rules():
    ok = check_region(Region.from_bbox(0, 0, 300, 300, crs=IMAGE_CRS), IMAGE_GRID)
    assert ok.ok and ok.area_ha is None and ok.pixels == 90000
    # the pixels used are those inside the shape, not its bounding box's
    tri = check_region(Region.from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [300, 0], [0, 300], [0, 0]]]},
                                           crs=IMAGE_CRS), IMAGE_GRID)
    assert tri.ok and tri.window.pixels == 90000 and abs(tri.pixels - 45000) <= 300
    small = check_region(Region.from_bbox(0, 0, 7, 300, crs=IMAGE_CRS), IMAGE_GRID)
    assert not small.ok and "covers 7 x 300 px of the image; it must be at least 8 x 8 px" in small.message
    assert check_region(Region.from_bbox(0, 0, 8, 8, crs=IMAGE_CRS), IMAGE_GRID).ok  # one field, seen in context
    # the size is that of the pixels used (centres inside), not of those the outline only touches: a box from
    # 0.6 to 7.4 px touches 8 x 8 pixels but uses 6 x 6 of them
    touched = check_region(Region.from_bbox(0.6, 0.6, 7.4, 7.4, crs=IMAGE_CRS), IMAGE_GRID)
    assert not touched.ok and "covers 6 x 6 px of the image" in touched.message
    assert check_region(Region.from_bbox(0.6, 0.6, 8.6, 8.6, crs=IMAGE_CRS), IMAGE_GRID).ok  # 8 x 8 used of 9 x 9
    assert not check_region(Region.from_bbox(0, 0, 100, 300, crs=IMAGE_CRS), IMAGE_GRID, min_side=128).ok
    big = check_region(Region.from_bbox(0, 0, 1024, 1024, crs=IMAGE_CRS), IMAGE_GRID, max_pixels=500_000)
    assert not big.ok and "at most 500,000" in big.message
    wrong = check_region(Region.from_bbox(0, 0, 1, 1), IMAGE_GRID)
    assert not wrong.ok and "not georeferenced" in wrong.message


def test_check_region_small_image_and_hectares():
    grid = Grid("EPSG:32631", (10.0, 0.0, 501360.0, 0.0, -10.0, 5629680.0), 64, 64)
    from core.overlays import lonlat_bounds

    (s, w), (n, e) = lonlat_bounds(grid)
    res = check_region(Region.from_bbox(w, s, e, n), grid)
    assert res.ok, res.message  # smaller than a patch, but it is the whole image
    assert res.area_ha == pytest.approx(40.96)
    # a triangle over the same window: only the pixels inside its outline count (the rest is no data)
    tri = Region.from_geojson({"type": "Polygon", "coordinates": [[[w, n], [e, n], [w, s], [w, n]]]})
    half = check_region(tri, grid)
    assert half.ok and half.window == res.window
    inside = int(tri.mask(grid, half.window).sum())
    assert half.area_ha == pytest.approx(inside * 0.01) and 0.4 < half.area_ha / 40.96 < 0.6
    # the box it fits (its area, the pixels used, is another figure: the page shows it beside the message)
    assert half.message.startswith("region OK: it fits a box of 64 x 64 px") and " ha" not in half.message


def test_region_is_hashable_and_keyed():
    a = Region.from_bbox(0, 0, 300, 300, crs=IMAGE_CRS)
    b = Region.from_bbox(0, 0, 300, 300, crs=IMAGE_CRS)
    assert hash(a) == hash(b) and a.key() == b.key()
    assert a.area_pixels() == 300 * 300
    other = Region.from_bbox(0, 0, 300, 301, crs=IMAGE_CRS)  # one pixel row more: another key
    assert other != a and other.key() != a.key() and other.area_pixels() == 300 * 301


def test_check_region_hectares_on_a_geographic_grid():
    # 300 x 300 pixels of 0.0001 deg at 45 N: rows differ in area, and the region's area is the sum
    # over its rows of (pixels in the row) x (that row's pixel area), as Region.area_ha() has it
    grid = Grid("EPSG:4326", (0.0001, 0.0, 10.0, 0.0, -0.0001, 45.0), 300, 300)
    region = Region.from_bbox(10.0, 44.97, 10.03, 45.0)
    res = check_region(region, grid)
    assert res.ok, res.message
    rows = grid.pixel_area_ha()[:, 0]
    assert res.area_ha == pytest.approx(float(rows.sum()) * 300, rel=1e-6)
    assert res.area_ha == pytest.approx(region.area_ha(), rel=0.01)


def test_check_region_on_an_image_smaller_than_a_patch_says_so():
    grid = Grid(None, (1.0, 0.0, 0.0, 0.0, -1.0, 0.0), 24, 64)
    res = check_region(Region.from_bbox(0, 0, 24, 20, crs=IMAGE_CRS), grid, min_side=32)
    assert not res.ok and "at least 24 x 32 px (the image is smaller than 32 px a side, so all of it)" in res.message


def test_a_region_around_the_image_but_over_none_of_its_pixels_is_refused():
    """Parts either side of the image, or the image inside a hole: the bounding box overlaps the
    image, no pixel is inside the region (the check said OK, and the fetch failed later)."""
    sides = {"type": "MultiPolygon", "coordinates": [
        [[[-400, 0], [-10, 0], [-10, 1024], [-400, 1024], [-400, 0]]],
        [[[1100, 0], [1500, 0], [1500, 1024], [1100, 1024], [1100, 0]]]]}
    ring = {"type": "Polygon", "coordinates": [
        [[-100, -100], [1124, -100], [1124, 1124], [-100, 1124], [-100, -100]],
        [[-50, -50], [1074, -50], [1074, 1074], [-50, 1074], [-50, -50]]]}
    for geometry in (sides, ring):
        res = check_region(Region.from_geojson(geometry, crs=IMAGE_CRS), IMAGE_GRID)
        assert not res.ok and "none of the image's pixels" in res.message, res.message
    # the same ring with a hole that leaves a corner of the image inside the region is fine
    ring["coordinates"][1] = [[100, 100], [1074, 100], [1074, 1074], [100, 1074], [100, 100]]
    res = check_region(Region.from_geojson(ring, crs=IMAGE_CRS), IMAGE_GRID)
    assert res.ok and res.window == PixelWindow(0, 0, 1024, 1024), res.message


def test_geojson_with_a_projected_crs_member_is_reprojected_to_lon_lat():
    """GeoJSON with a (2008) "crs" member in UTM metres, as GDAL writes a layer saved in UTM: placed
    where it is, not refused as 'not longitude/latitude'; CRS84 / EPSG:4326 members change nothing."""
    x0, y1 = 501360.0, 5629680.0  # UTM_GRID's top-left corner (10 m pixels)
    square = [[x0 + 100, y1 - 420], [x0 + 420, y1 - 420], [x0 + 420, y1 - 100], [x0 + 100, y1 - 100], [x0 + 100, y1 - 420]]
    utm = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}},
           "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [square]}}]}
    region = Region.from_geojson(json.dumps(utm))
    assert not region.is_image and 3.0 < region.bounds[0] < 3.1 and 50.7 < region.bounds[1] < 50.9
    assert region.area_ha() == pytest.approx(10.24, rel=1e-3)  # 320 m x 320 m
    assert region.window(UTM_GRID) == PixelWindow(10, 10, 32, 32)
    assert Region.from_geojson({**utm, "crs": {"type": "EPSG", "properties": {"code": 32631}}}) == region
    lonlat = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    for name in ("urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326"):
        assert Region.from_geojson({**lonlat, "crs": {"type": "name", "properties": {"name": name}}}).bounds == (0, 0, 1, 1)
    with pytest.raises(RegionError, match="EPSG:999999.*not known"):
        Region.from_geojson({**utm, "crs": {"type": "name", "properties": {"name": "EPSG:999999"}}})
    with pytest.raises(RegionError, match="names no CRS"):
        Region.from_geojson({**utm, "crs": {"type": "link", "properties": {"href": "http://x/crs"}}})


def test_long_lon_lat_edges_are_reprojected_with_corners_in_between():
    """A straight lon/lat edge bends in UTM: edges longer than DENSIFY_DEG get corners in between
    before they are reprojected; a drawn region's few-km edges are reprojected as they are."""
    from core.region import DENSIFY_DEG, _densified

    small = Region.from_bbox(14.0, 48.0, 14.03, 48.02).geometry()
    assert _densified(small) == {"type": "Polygon", "coordinates": [[list(map(float, p)) for p in small["coordinates"][0]]]}
    big = _densified(Region.from_bbox(10.0, 45.0, 12.0, 46.0).geometry())["coordinates"][0]
    steps = [max(abs(b[0] - a[0]), abs(b[1] - a[1])) for a, b in zip(big, big[1:])]
    assert max(steps) <= DENSIFY_DEG + 1e-9 and len(big) == 1 + 2 * (40 + 20) and big[0] == big[-1]
    # an edge across the 180th meridian (Fiji) is not cut: it would run round the world the other way
    fiji = {"type": "Polygon", "coordinates": [[[179.9, -17.0], [-179.9, -17.0], [-179.9, -16.9], [179.9, -16.9], [179.9, -17.0]]]}
    cut = _densified(fiji)["coordinates"][0]
    assert all(abs(lon) >= 179.9 for lon, _ in cut) and len(cut) < 12  # only the two short edges get corners


def test_a_region_reaching_far_beyond_a_utm_image_is_cut_to_its_surroundings():
    """A region reaching 100 degrees from a UTM image (an upload of a country or a continent):
    GDAL refused to reproject it whole (a traceback), or its corners alone missed the image."""
    from testdata import FTW

    from core.raster import grid_of_file
    from core.region import _clipped_to_box

    grid = grid_of_file(FTW)  # Upper Austria, UTM zone 33N
    for box in [(-100, 0, 100, 80), (-179, -80, 179, 80)]:
        check = check_region(Region.from_bbox(*box), grid)
        assert check.ok and check.clipped and check.pixels == grid.height * grid.width, (box, check.message)
    # the cut: a ring within the box is as it was; one across it is cut to it, holes too; one outside is gone
    ring = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    inside = {"type": "Polygon", "coordinates": [ring]}
    assert _clipped_to_box(inside, (-1, -1, 11, 11)) is inside
    cut = _clipped_to_box({"type": "Polygon", "coordinates": [ring, [[4, 4], [8, 4], [8, 8], [4, 8], [4, 4]]]}, (5, -1, 20, 20))
    assert Region.from_geojson(cut).bounds == (5, 0, 10, 10)
    assert [sorted(map(tuple, r[:-1])) for r in cut["coordinates"]] == [
        [(5.0, 0.0), (5.0, 10.0), (10.0, 0.0), (10.0, 10.0)], [(5.0, 4.0), (5.0, 8.0), (8.0, 4.0), (8.0, 8.0)]]
    assert _clipped_to_box(inside, (20, 20, 30, 30)) is None


def test_a_large_regions_area_is_that_of_its_lon_lat_box():
    """A region's edges are straight in lon/lat (as geometry_in cuts pixels); projected corner to corner
    onto the equal-area plane they were chords there, and a 10-degree box lost 0.3% of its area (20
    degrees: 1.2%)."""
    import math

    from core.grid import WGS84_A, ellipsoid_sine
    from core.region import lonlat_area_ha

    for w, s, size in ((0.0, 40.0, 10.0), (100.0, -70.0, 20.0), (5.0, 60.0, 1.0)):
        box = {"type": "Polygon", "coordinates": [[[w, s], [w + size, s], [w + size, s + size], [w, s + size], [w, s]]]}
        band = abs(ellipsoid_sine(s + size) - ellipsoid_sine(s)) * WGS84_A**2 * math.radians(size) / 1e4
        assert lonlat_area_ha(box) == pytest.approx(band, rel=2e-4)


def test_geojson_saved_as_utf16_or_latin1_is_read_and_projected_coordinates_are_named():
    """Windows tools save "Unicode" (UTF-16) and older GIS Latin-1: both were refused as "not UTF-8 text;
    upload a .geojson/.json file", which it was; UTM metres were said to be lon/lat in the wrong order."""
    feature = {"type": "Feature", "properties": {"name": "Feld Müller"},
               "geometry": {"type": "Polygon", "coordinates": [[[4.0, 50.8], [4.01, 50.8], [4.01, 50.81], [4.0, 50.8]]]}}
    text = json.dumps(feature, ensure_ascii=False)
    for data in (text.encode("utf-16"), text.encode("latin-1"), text.encode("utf-8"), b"\xef\xbb\xbf" + text.encode("cp1252")):
        region = Region.from_upload(data)
        assert region.name == "Feld Müller" and region.bounds == pytest.approx((4.0, 50.8, 4.01, 50.81))
    quoted = text.replace("Feld Müller", "“Feld” 5 €")
    assert Region.from_upload(quoted.encode("cp1252")).name == "“Feld” 5 €"  # Windows' quotes and euro sign
    with pytest.raises(RegionError, match=r"not GeoJSON text \(UTF-8, UTF-16 or Latin-1\).*ogr2ogr"):
        Region.from_upload(b"\x00\x00\x27\x0a" + bytes(range(256)))  # a shapefile's header
    metres = {**feature, "geometry": {"type": "Polygon", "coordinates": [
        [[361206.0, 5349264.0], [362206.0, 5349264.0], [362206.0, 5350264.0], [361206.0, 5349264.0]]]}}
    with pytest.raises(RegionError, match=r"looks like metres or feet of a projected CRS .*save the file in EPSG:4326"):
        Region.from_upload(json.dumps(metres).encode())


def _square(x: float, y: float, side: float):
    return (((x, y), (x + side, y), (x + side, y + side), (x, y + side), (x, y)),)


def test_polygons_that_overlap_count_their_common_area_once():
    """A GeoJSON of fields that overlap (or the same field twice) gave an area larger than the fields."""
    from core.region import union_area

    assert union_area((_square(0, 0, 10), _square(10, 0, 10), _square(30, 30, 5))) == 225.0  # apart or touching: exact
    assert union_area((_square(0, 0, 10), _square(0, 0, 10))) == 100.0
    assert union_area((_square(0, 0, 10), _square(3.3, 3.3, 10))) == pytest.approx(200 - 6.7**2, rel=1e-3)
    holed = (_square(0, 0, 10)[0], _square(2, 2, 2)[0][::-1])  # a 2 x 2 hole inside, then a square over the hole
    assert union_area((holed, _square(1, 1, 4))) == pytest.approx(100.0, rel=1e-3)
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


def test_the_outline_of_a_region_of_several_parts_names_each_part():
    from core.region import east_past_180

    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": n}, "geometry": {"type": "Polygon", "coordinates": [
            [[x, -17.0], [x + 0.5, -17.0], [x + 0.5, -16.5], [x, -16.5], [x, -17.0]]]}} for n, x in (("a", 179.0), ("b", -179.9))]}
    region = Region.from_geojson(fc)
    outline = region.outline_geojson()
    assert [f["properties"]["name"] for f in outline["features"]] == ["a", "b"]
    assert outline["features"][1]["geometry"]["coordinates"][0][0] == [-179.9, -17.0]
    moved = east_past_180(outline)  # (over an image across the 180th meridian)
    assert moved["features"][1]["geometry"]["coordinates"][0][0][0] == pytest.approx(180.1)
    one = Region.from_geojson(fc["features"][0])
    assert one.outline_geojson() == one.to_map_geojson()  # one shape: as before


def test_a_box_typed_or_pasted_is_read_as_four_numbers_never_evaluated():
    from core.region import parse_bbox

    camana = (-72.778645, -16.651663, -72.66865, -16.57553)
    for text in ("-72.778645, -16.651663, -72.66865, -16.57553", "[-72.778645,-16.651663,-72.66865,-16.57553]",
                 " (-72.778645; -16.651663; -72.66865; -16.57553) ", "-72.778645 -16.651663\t-72.66865 -16.57553"):
        assert parse_bbox(text) == camana, text
    assert parse_bbox("1e2, .5, +3, 4.") == (100.0, 0.5, 3.0, 4.0)
    with pytest.raises(RegionError, match="'1e400' is too large a number"):  # (infinity, silently cut to the image)
        parse_bbox("0, 0, 1e400, 10")
    for text, said in (("1, 2, 3", "not 3"), ("", "not 0"), ("1, 2, 3, 4, 5", "not 5"),
                       ("__import__('os'), 1, 2, 3", "'__import__('os')' is not a number"),
                       ("1, 2, 3, 4 * 2", "'*' is not a number"), ("nan, 1, 2, 3", "'nan' is not a number")):
        with pytest.raises(RegionError, match="a box is four numbers") as err:
            parse_bbox(text)
        assert said in str(err.value), (text, str(err.value))
    # the example in the box's own terms: an image's pixels (it was a lon/lat one on the sample scene)
    with pytest.raises(RegionError, match=r"left, top, right and bottom edges in pixels \(e.g. 100, 100, 400, 300\)"):
        parse_bbox("hello world", image=True)


def test_a_typed_box_is_put_in_order_and_cut_to_the_image():
    """Pixel edges in either order, south and north too; a box reaching past the image cut to it (the
    map zoomed out to the box, the image a corner of it); one wholly outside names the image's edges."""
    from core.errors import OutsideImageError
    from core.region import box_within

    image = (0.0, 0.0, 1024.0, 1024.0)
    assert box_within((400, 300, 100, 100), image, True) == ((100, 100, 400, 300), False)
    assert box_within((-50, -50, 5000, 5000), image, True) == (image, True)
    assert box_within((10.0, 48.2, 11.0, 48.1), None, False) == ((10.0, 48.1, 11.0, 48.2), False)
    with pytest.raises(OutsideImageError, match=r"outside the image, whose edges are 0, 0, 1024, 1024 \(left, top"):
        box_within((2000, 0, 2100, 100), image, True)
    with pytest.raises(RegionError, match="west edge, 11, lies east of its east edge, 10"):
        box_within((11.0, 48.1, 10.0, 48.2), None, False)
    with pytest.raises(RegionError, match="no width"):
        box_within((5, 1, 5, 9), image, True)


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


def test_features_without_an_area_are_named_so_that_leaving_them_out_can_be_said():
    from core.region import features_without_area

    box = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "field"}, "geometry": box},
        {"type": "Feature", "properties": {"name": "well"}, "geometry": {"type": "Point", "coordinates": [0.5, 0.5]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
        {"type": "Feature", "properties": {}, "geometry": None}]}
    assert features_without_area(fc) == ["well", "feature 3", "feature 4"]
    assert features_without_area(box) == [] and features_without_area({"type": "FeatureCollection", "features": []}) == []
