"""core.geojson: reading GeoJSON text and uploads (through Region.from_geojson / from_upload), its CRS,
names and the features left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import RegionError
from core.geometry import IMAGE_CRS
from core.grid import Grid
from core.region import PixelWindow, Region

UTM_GRID = Grid("EPSG:32631", (10.0, 0.0, 501360.0, 0.0, -10.0, 5629680.0), 640, 640)


@pytest.mark.parametrize("text, msg", [
    ("{not json", r"not valid JSON \(line 1, column 2: expecting property name .*\), so not GeoJSON; save the region as GeoJSON"),
    ("", r"^the file is empty; save the region as GeoJSON"),  # (it was "not valid JSON (line 1, column 1...")
    ("\ufeff \n", r"^the file is empty"),
    # a KML renamed .geojson (it was "not valid JSON (line 1, column 1 ...")
    ('<?xml version="1.0"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">', r"^the file is XML \(KML, GML or GPX\?\), "
                                                                           "not GeoJSON; convert it"),
    # JSON's true and text are not numbers (true was read as 1)
    ('{"type": "Polygon", "coordinates": [[[true, false], [1, 0], [1, 1], [0, 0]]]}', "lists of \\[x, y\\] numbers"),
    ('{"type": "Polygon", "coordinates": [[["0", "0"], [1, 0], [1, 1], [0, 0]]]}', "lists of \\[x, y\\] numbers"),
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


def test_a_ring_left_open_is_closed():
    """A ring left open (as some tools write them) was written out open by the region's GeoJSON download,
    which RFC 7946 tools refuse."""
    region = Region.from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [300, 0], [300, 300], [0, 300]]]},
                                 crs=IMAGE_CRS)
    [ring] = region.to_geojson()["geometry"]["coordinates"]
    assert ring[0] == ring[-1] == [0.0, 0.0] and len(ring) == 5 and region.area_pixels() == 90_000


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
    # a code that is not a number (or none): rasterio raises a plain ValueError, which came through as a traceback
    with pytest.raises(RegionError, match="names no CRS"):  # (it said "EPSG:None")
        Region.from_geojson({**utm, "crs": {"type": "EPSG", "properties": {}}})
    for member in ({"type": "EPSG", "properties": {"code": "abc"}},
                   {"type": "EPSG", "properties": {"code": 4326.5}}, {"type": "name", "properties": {"name": "EPSG:abc"}}):
        with pytest.raises(RegionError, match="not known; save the GeoJSON in longitude/latitude"):
            Region.from_geojson({**utm, "crs": member})
    with pytest.raises(RegionError, match="names no CRS"):
        Region.from_geojson({**utm, "crs": {"type": "link", "properties": {"href": "http://x/crs"}}})


def test_projected_coordinates_beyond_the_globe_are_refused_at_once():
    """A Web Mercator polygon from 1 m to 1e20 m east kept GDAL's reprojection busy for over a minute
    (it brings longitudes past the 180th meridian back a turn at a time), holding the page; it is refused
    before any reprojection, in a child process here so that a return of the hang fails the test."""
    import subprocess
    import sys

    mercator = {"type": "Polygon", "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
                "coordinates": [[[1, 0], [1e20, 0], [1e20, 1e5], [1, 0]]]}
    code = ("import json, sys; from core.region import Region; from core.errors import RegionError\n"
            "try:\n    Region.from_geojson(json.loads(sys.argv[1]))\nexcept RegionError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(mercator)], capture_output=True, text=True, timeout=60,
                          cwd=str(Path(__file__).resolve().parent.parent))
    assert "(1e+20, 0) is too far from EPSG:3857's origin to lie on Earth" in done.stdout
    # inside Web Mercator's world it is reprojected as before; an easting past it (20,037 km) was wrapped
    # round the globe corner by corner, a polygon of 0-450 degrees east becoming one of 0-89 degrees
    assert Region.from_geojson({**mercator, "coordinates": [[[1, 0], [1e6, 0], [1e6, 1e5], [1, 0]]]}).bounds[2] < 9
    with pytest.raises(RegionError, match=r"\(5e\+07, 0\) lies outside the part of the Earth EPSG:3857 maps"):
        Region.from_geojson({**mercator, "coordinates": [[[0, 0], [5e7, 0], [5e7, 1e5], [0, 0]]]})


def test_geojson_saved_as_utf16_or_latin1_is_read_and_projected_coordinates_are_named():
    """Windows tools save "Unicode" (UTF-16) and older GIS Latin-1: both were refused as "not UTF-8 text;
    upload a .geojson/.json file", which it was; UTM metres were said to be lon/lat in the wrong order."""
    feature = {"type": "Feature", "properties": {"name": "Feld Müller"},
               "geometry": {"type": "Polygon", "coordinates": [[[4.0, 50.8], [4.01, 50.8], [4.01, 50.81], [4.0, 50.8]]]}}
    text = json.dumps(feature, ensure_ascii=False)
    for data in (text.encode("utf-16"), text.encode("latin-1"), text.encode("utf-8"), b"\xef\xbb\xbf" + text.encode("cp1252"),
                 b"\xef\xbb\xbf" + text.encode("utf-8"), b"\xfe\xff" + text.encode("utf-16-be")):  # (with byte order marks)
        region = Region.from_upload(data)
        assert region.name == "Feld Müller" and region.bounds == pytest.approx((4.0, 50.8, 4.01, 50.81))
    quoted = text.replace("Feld Müller", "“Feld” 5 €")
    assert Region.from_upload(quoted.encode("cp1252")).name == "“Feld” 5 €"  # Windows' quotes and euro sign
    with pytest.raises(RegionError, match=r"^the file is not GeoJSON text \(UTF-8, UTF-16 or Latin-1\); give .*ogr2ogr"):
        Region.from_upload(b"\x00\x00\x27\x0a" + bytes(range(256)))  # a shapefile's header
    # a number of 5,000 digits: Python refuses to read it (a ValueError that reached the page)
    with pytest.raises(RegionError, match="holds a number thousands of digits long"):
        Region.from_upload(b'{"type": "Polygon", "coordinates": [[[' + b"1" * 5000 + b', 2]]]}')
    metres = {**feature, "geometry": {"type": "Polygon", "coordinates": [
        [[361206.0, 5349264.0], [362206.0, 5349264.0], [362206.0, 5350264.0], [361206.0, 5349264.0]]]}}
    with pytest.raises(RegionError, match=r"looks like metres or feet of a projected CRS .*save the file in EPSG:4326"):
        Region.from_upload(json.dumps(metres).encode())


def test_features_without_an_area_are_named_so_that_leaving_them_out_can_be_said():
    from core.geojson import features_without_area

    box = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "field"}, "geometry": box},
        {"type": "Feature", "properties": {"name": "well"}, "geometry": {"type": "Point", "coordinates": [0.5, 0.5]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
        {"type": "Feature", "properties": {}, "geometry": None}]}
    assert features_without_area(fc) == ["well", "feature 3", "feature 4"]
    assert features_without_area(box) == [] and features_without_area({"type": "FeatureCollection", "features": []}) == []
    # an entry that is no object at all (null, a number, text: a hand-edited file) is left out and said, by number
    fc["features"][1:1] = [None, 7, "x"]
    assert features_without_area(fc) == ["feature 2", "feature 3", "feature 4", "well", "feature 6", "feature 7"]


def test_a_feature_is_named_by_its_name_before_its_id_and_a_malformed_polygon_is_not_left_out_unsaid():
    from core.geojson import feature_name, features_without_area

    assert feature_name({"properties": {"id": 7, "label": "L", "name": "North field"}, "id": "f1"}) == "North field"
    assert feature_name({"properties": {"id": 7, "label": "L"}}) == "L"
    assert feature_name({"properties": {"ID": 3}, "id": "f1"}) == "3" and feature_name({"id": "f1"}) == "f1"
    broken = {"type": "Feature", "properties": {"name": "typo"}, "geometry": {"type": "Polygon", "coordinates": [["a"]]}}
    assert features_without_area({"type": "FeatureCollection", "features": [broken]}) == []  # (refused, saying why)
    with pytest.raises(RegionError, match="lists of"):
        Region.from_geojson({"type": "FeatureCollection", "features": [broken]})


def test_the_note_of_features_left_out_names_five_and_counts_the_rest():
    from core.geojson import left_out_note

    names = [f"well {i}" for i in range(1, 8)]
    assert left_out_note(names, "farm.geojson") == (
        "7 feature(s) of farm.geojson hold no polygon (points, lines, or an empty or no geometry) and are left out: "
        "well 1, well 2, well 3, well 4, well 5 and 2 more")
    assert left_out_note(names[:5], "farm.geojson").endswith("left out: well 1, well 2, well 3, well 4, well 5")


def test_the_garbage_collector_paused_for_many_features_is_switched_back_only_where_it_was_on():
    import gc

    from core.geojson import gc_paused

    assert gc.isenabled()
    try:
        with pytest.raises(RegionError):
            with gc_paused():
                assert not gc.isenabled()
                raise RegionError("a malformed field")
        assert gc.isenabled()  # back on after an error too
        gc.disable()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # off before: left off

        @gc_paused()
        def burn():
            return gc.isenabled()

        gc.enable()
        assert burn() is False and burn() is False and gc.isenabled()  # (as a decorator, call after call)
    finally:
        gc.enable()
