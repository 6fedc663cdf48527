"""core.region: construction, map coordinates, areas, windows and masks on grids."""

from __future__ import annotations

import json

import pytest

from core.errors import RegionError
from core.geometry import IMAGE_CRS
from core.grid import Grid
from core.region import Region, image_to_map, map_to_image

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


def test_region_is_hashable_and_keyed():
    a = Region.from_bbox(0, 0, 300, 300, crs=IMAGE_CRS)
    b = Region.from_bbox(0, 0, 300, 300, crs=IMAGE_CRS)
    assert hash(a) == hash(b) and a.key() == b.key()
    assert a.area_pixels() == 300 * 300
    other = Region.from_bbox(0, 0, 300, 301, crs=IMAGE_CRS)  # one pixel row more: another key
    assert other != a and other.key() != a.key() and other.area_pixels() == 300 * 301


def test_the_outline_of_a_region_of_several_parts_names_each_part():
    from core.lonlat import east_past_180

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


def test_a_box_with_latitudes_past_a_pole_is_refused():
    """Longitude and latitude swapped (or a typo): latitudes range over -90..90 only, not -180..180."""
    with pytest.raises(RegionError, match="lat -90..90"):
        Region.from_bbox(10, 91, 11, 92)
    assert Region.from_bbox(10, 89, 11, 90).area_ha() > 0


def test_coordinates_that_are_no_place_are_refused():
    """Longitudes past 180 (though within 360), NaN in a GeoJSON (json.loads reads it) and rows past the
    largest image side are refused with what is wrong with them."""
    with pytest.raises(RegionError, match="not longitude/latitude"):
        Region.from_bbox(190, 10, 191, 11)
    nan = '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [NaN, 1], [0, 0]]]}'
    with pytest.raises(RegionError, match="finite numbers"):
        Region.from_geojson(nan)
    with pytest.raises(RegionError, match="not an image's column and row"):
        Region.from_bbox(0, 0, 10, 2**31, crs=IMAGE_CRS)
    assert Region.from_bbox(0, 0, 10, 2**31 - 1, crs=IMAGE_CRS).area_pixels() == 10 * (2**31 - 1)
