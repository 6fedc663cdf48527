"""Labels from surveyed fields (core.field_labels): GeoJSON polygons with a class property burnt onto an
image's grid, read back through a label map as any label raster, and the CLI command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as warp

from core.__main__ import main
from core.errors import ConfigError, InvalidDataError, NoDataError, OutputExistsError, RegionError
from core.field_labels import (NO_LABEL, burn_fields, class_code, class_properties, load_fields, pick_class_property,
                               write_field_labels)
from core.grid import Grid
from core.labels import CLASS_MAPS, CROP, NODATA, NOT_CROP
from core.raster import grid_of_file, read_labels
from testdata import FLANDERS_LABELS, FLANDERS_S2, FTW, SAMPLE_IMAGE, box_ring, feature_collection


IMAGE_GRID = Grid(width=60, height=40, transform=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), crs=None)


def test_class_codes_are_whole_numbers_or_booleans():
    assert [class_code(v) for v in (1, 0, 11.0, "1", " 40 ", True, False, None, "")] == [1, 0, 11, 1, 40, 1, 0, None, None]
    for bad, said in (("maize", "text"), (0.5, "whole number"), (-3, "0 to 32767"), (40000, "0 to 32767"),
                      (float("nan"), "whole number"), ([1], "whole number"),
                      (10**400, r"^10000000000000000 \.\.\. 000000000000000000 is not a class code \(codes are 0 to 32767\)$")):
        with pytest.raises(InvalidDataError, match=said):
            class_code(bad)


def test_the_class_property_is_found_among_the_fields_properties():
    fc = feature_collection(({"name": "A", "id": 3, "area_ha": 2.5, "Crop": 1, "code": "5", "note": "wet"}, box_ring(0, 0, 2, 2)),
                 ({"name": "B", "id": 4, "area_ha": 3, "Crop": None, "code": 176, "note": None}, box_ring(3, 0, 5, 2)))
    # names and ids are no class; a fraction or text anywhere rules a property out; usual names first
    assert class_properties(fc) == ["Crop", "code"]
    assert pick_class_property(fc) == "Crop"
    only_odd = feature_collection(({"surveyed": 1, "year": 2021}, box_ring(0, 0, 2, 2)))
    with pytest.raises(ConfigError, match="several properties .* surveyed, year; say which"):
        pick_class_property(only_odd, "survey.geojson")
    assert pick_class_property(feature_collection(({"surveyed": 1, "note": "x"}, box_ring(0, 0, 2, 2)))) == "surveyed"
    with pytest.raises(ConfigError, match=r"no property of survey.geojson's fields holds class codes \(its properties: "
                                          r"kind, name\)"):
        pick_class_property(feature_collection(({"name": "A", "kind": "maize"}, box_ring(0, 0, 2, 2))), "survey.geojson")
    # a file without a field ("its fields have no properties" was said of it)
    for empty in ({"type": "FeatureCollection", "features": []},
                  {"type": "Feature", "properties": {"crop": 1}, "geometry": None}):
        with pytest.raises(ConfigError, match="survey.geojson holds no field: no Feature with a Polygon"):
            pick_class_property(empty, "survey.geojson")


def test_class_candidates_need_a_value_and_no_refused_one_and_the_suggested_map_follows_the_values():
    from core.field_labels import class_choices, is_fields_file, suggested_label_map

    fc = lambda *props: feature_collection(*((p, box_ring(3 * i, 0, 3 * i + 2, 2)) for i, p in enumerate(props)))  # noqa: E731
    assert class_properties(fc({"surveyed": 1, "note": None})) == ["surveyed"]  # a property never given is none
    assert class_properties(fc({"a": 1}, {"a": "maize"})) == []  # text in any field rules it out
    assert class_choices(fc({"crop": "maize"})) == {"crop": None}  # the usual name, though it holds no codes
    assert suggested_label_map(fc({"crop": 1}, {"crop": False}), "crop") == "binary"
    assert suggested_label_map(fc({"crop": 1}, {"crop": 0}, {"crop": "x"}), "crop") is None
    assert suggested_label_map(fc({"crop": None}), "crop") is None
    assert suggested_label_map(fc({"code": 11}, {"code": 0}), "code") is None  # not 0/1 only: a product's codes
    assert is_fields_file("F.GEOJSON") and is_fields_file("f.json") and not is_fields_file("f.tif")


def test_a_fields_file_that_is_too_large_or_not_a_collection_is_refused(tmp_path):
    from core.errors import InputNotFoundError
    from core.field_labels import load_fields

    data = json.dumps(feature_collection(({"crop": 1}, box_ring(0, 0, 5, 5)), crs="image")).encode()
    assert load_fields(data)["type"] == "FeatureCollection"
    with pytest.raises(RegionError, match="the limit is"):
        load_fields(data, "f.geojson", max_bytes=len(data) - 1)
    with pytest.raises(RegionError, match="JSON but not GeoJSON"):
        load_fields(b"[1]", "f.geojson")
    with pytest.raises(InputNotFoundError):
        write_field_labels(tmp_path / "missing.geojson", SAMPLE_IMAGE, tmp_path / "labels.tif")
    assert not (tmp_path / "labels.tif").exists()


def test_a_malformed_field_is_refused_by_name():
    bad = {"type": "Feature", "properties": {"name": "north plot", "crop": 1},
           "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [0, 0]]]}}
    good = feature_collection(({"name": "wheat", "crop": 1}, box_ring(10, 5, 30, 25)), crs="image")
    good["features"].append(bad)
    with pytest.raises(RegionError, match="^north plot of the GeoJSON: a region polygon needs at least 3 distinct corners"):
        burn_fields(good, IMAGE_GRID, "crop")
    del bad["properties"]["name"]
    with pytest.raises(RegionError, match="^feature 2 of the GeoJSON: "):  # (no name: its number in the file)
        burn_fields(good, IMAGE_GRID, "crop")


def test_fields_are_burnt_on_the_pixels_whose_centre_they_hold():
    fc = feature_collection(({"name": "wheat", "crop": 1}, box_ring(10, 5, 30, 25)),       # 20 x 20 px
                 ({"name": "meadow", "crop": 0}, box_ring(25, 20, 45, 35)),     # overlaps wheat on 5 x 5 px
                 ({"name": "same class", "crop": 1}, box_ring(12, 7, 14, 9)),   # inside wheat, same class: no conflict
                 ({"name": "unsurveyed", "crop": None}, box_ring(50, 0, 60, 10)),
                 ({"name": "beyond", "crop": 0}, box_ring(100, 100, 110, 110)),  # outside the image
                 crs="image")
    fc["features"].append({"type": "Feature", "properties": {"name": "well", "crop": 0},
                           "geometry": {"type": "Point", "coordinates": [1, 1]}})
    burnt = burn_fields(fc, IMAGE_GRID, "crop", "survey.geojson")
    codes = burnt.codes
    assert codes.dtype == np.int16 and codes.shape == (40, 60)
    assert (codes[5:20, 10:30] == 1).all() and (codes[20:25, 10:25] == 1).all()
    assert (codes[20:25, 25:30] == NO_LABEL).all()  # both wheat and meadow: no label
    assert (codes[25:35, 25:45] == 0).all() and (codes[20:25, 30:45] == 0).all()
    assert burnt.pixels_by_code == {1: 400 - 25, 0: 300 - 25} and burnt.conflict_pixels == 25
    assert burnt.labelled_pixels == int((codes != NO_LABEL).sum())
    assert (codes[:, 45:] == NO_LABEL).all()  # the unsurveyed field and the rest have no label
    assert burnt.fields == 4 and burnt.without_class == ("unsurveyed",) and burnt.left_out == ("well",)
    notes = " ".join(burnt.notes("survey.geojson"))
    assert "1 field(s) of survey.geojson have no crop and are left out: unsurveyed" in notes
    assert "25 pixel(s) lie in overlapping fields of different classes" in notes and "well" in notes


def test_fields_burnt_a_row_at_a_time_give_the_same_labels(monkeypatch):
    # fields are burnt in strips of rows (memory); strips of one row must not change a pixel or a count, and a
    # third class over a pixel two classes already share leaves it shared (no label), not the third's
    fc = feature_collection(({"name": "wheat", "crop": 1}, box_ring(10, 5, 30, 25)),      # 20 x 20 px
                 ({"name": "meadow", "crop": 0}, box_ring(25, 20, 45, 35)),    # 20 x 15, 5 x 5 of them on wheat
                 ({"name": "barley", "crop": 2}, box_ring(20, 15, 40, 30)),    # 20 x 15, over both and their clash
                 ({"name": "orchard", "crop": 7}, box_ring(2.2, 30.2, 9.2, 38.2)),  # 7 x 8 pixel centres
                 crs="image")
    whole = burn_fields(fc, IMAGE_GRID, "crop")
    monkeypatch.setattr("core.raster.STRIP_PIXELS", 1)
    strips = burn_fields(fc, IMAGE_GRID, "crop")
    assert np.array_equal(strips.codes, whole.codes) and strips.pixels_by_code == whole.pixels_by_code
    # barley's 10 x 10 on wheat and 15 x 10 on meadow, the 5 x 5 of wheat and meadow among them
    assert strips.conflict_pixels == whole.conflict_pixels == 100 + 150 - 25
    assert whole.pixels_by_code == {0: 300 - 150, 1: 400 - 100, 2: 300 - 225, 7: 7 * 8}
    assert (whole.codes[20:25, 25:30] == NO_LABEL).all() and (whole.codes[15:30, 25:30] == NO_LABEL).all()
    assert set(np.unique(whole.codes).tolist()) == {NO_LABEL, 0, 1, 2, 7}  # no working value left behind


def test_lon_lat_fields_land_on_their_pixels_of_a_utm_image():
    grid = grid_of_file(FTW)  # Upper Austria, EPSG:32633, 10 m
    t = grid.transform

    def lonlat(col, row):
        lon, lat = warp(grid.crs, "EPSG:4326", [t[2] + col * t[0]], [t[5] + row * t[4]])
        return [lon[0], lat[0]]

    def ring(c0, r0, c1, r1):
        return [[lonlat(c0, r0), lonlat(c1, r0), lonlat(c1, r1), lonlat(c0, r1), lonlat(c0, r0)]]

    fc = feature_collection(({"LC": 11}, ring(10, 10, 50, 40)), ({"LC": 13}, ring(100, 60, 130, 90)))
    burnt = burn_fields(fc, grid, pick_class_property(fc))
    assert burnt.pixels_by_code == {11: 40 * 30, 13: 30 * 30}
    assert (burnt.codes[10:40, 10:50] == 11).all() and (burnt.codes[60:90, 100:130] == 13).all()
    # image coordinates on a georeferenced image, lon/lat on one without a CRS: refused, saying which
    with pytest.raises(RegionError, match="the fields of f.geojson: this region is in image coordinates"):
        burn_fields(feature_collection(({"crop": 1}, box_ring(0, 0, 5, 5)), crs="image"), grid, "crop", "f.geojson")
    with pytest.raises(RegionError, match="not georeferenced"):
        burn_fields(fc, IMAGE_GRID, "LC")


def surveyed_parcels() -> dict:
    """The Flanders parcel register's annual cropland (LC 11) and grassland (13) parcels of the test tile
    as a GeoJSON of fields in lon/lat, each with its LC code and crop = 1 / 0 (traced by core.fields)."""
    from core.fields import crop_fields

    grid = grid_of_file(FLANDERS_S2)
    with rasterio.open(FLANDERS_LABELS) as src:
        lc = src.read(1)
    features = []
    for code in (11, 13):
        for feature in crop_fields((lc == code).astype(np.uint8), grid, min_pixels=1)["features"]:
            feature["properties"] = {"name": f"parcel {len(features) + 1}", "LC": code, "crop": int(code == 11)}
            features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def test_real_parcels_traced_to_lon_lat_burn_back_onto_their_own_pixels():
    """Round trip on the Flanders parcel register: its parcels traced to lon/lat polygons, then burnt
    onto the Sentinel-2 tile's UTM grid, label exactly the pixels the register's raster labels."""
    grid = grid_of_file(FLANDERS_S2)
    parcels = surveyed_parcels()
    with rasterio.open(FLANDERS_LABELS) as src:
        lc = src.read(1)
    burnt = burn_fields(parcels, grid, "LC")
    assert np.array_equal(burnt.codes, np.where(np.isin(lc, [11, 13]), lc, NO_LABEL).astype(np.int16))
    assert burnt.pixels_by_code == {11: int((lc == 11).sum()), 13: int((lc == 13).sum())} and burnt.conflict_pixels == 0
    # the crop property (1 / 0) suggests the binary map, and reads as the register's cropland / grassland
    from core.field_labels import suggested_label_map

    assert class_properties(parcels) == ["crop", "LC"] and suggested_label_map(parcels, "crop") == "binary"
    assert suggested_label_map(parcels, "LC") == "worldcereal"
    from core.field_labels import class_choices

    assert class_choices(parcels) == {"crop": "binary", "LC": "worldcereal"}
    crop = burn_fields(parcels, grid, "crop").codes
    assert np.array_equal(crop, np.select([lc == 11, lc == 13], [1, 0], NO_LABEL))


def test_fields_that_label_nothing_are_refused_with_the_reason():
    with pytest.raises(InvalidDataError, match="wheat in survey.geojson: crop = 'maize' is text"):
        burn_fields(feature_collection(({"name": "wheat", "crop": "maize"}, box_ring(0, 0, 5, 5)), crs="image"), IMAGE_GRID, "crop",
                    "survey.geojson")
    # (the properties its fields do have: a mistyped name is seen at once)
    with pytest.raises(NoDataError, match=r"^no field of survey.geojson has a value of 'crop'; choose the property that "
                                          r"holds the class \(its fields have LC, name\)$"):
        burn_fields(feature_collection(({"name": "wheat"}, box_ring(0, 0, 5, 5)), ({"LC": 11}, box_ring(6, 6, 9, 9)),
                                       crs="image"), IMAGE_GRID, "crop", "survey.geojson")
    with pytest.raises(NoDataError, match=r"\(its fields have no properties\)$"):
        burn_fields(feature_collection(({}, box_ring(0, 0, 5, 5)), crs="image"), IMAGE_GRID, "crop", "survey.geojson")
    with pytest.raises(NoDataError, match="covers a pixel of the image"):
        burn_fields(feature_collection(({"crop": 1}, box_ring(200, 200, 205, 205)), crs="image"), IMAGE_GRID, "crop")
    with pytest.raises(RegionError, match="holds no field"):
        burn_fields({"type": "FeatureCollection", "features": []}, IMAGE_GRID, "crop")


def test_written_labels_read_through_a_label_map_as_any_label_raster(tmp_path):
    fields = tmp_path / "survey.geojson"
    fields.write_text(json.dumps(feature_collection(({"name": "A", "crop": True}, box_ring(100, 100, 164, 164)),
                                         ({"name": "B", "crop": False}, box_ring(300, 40, 332, 104)), crs="image")))
    out = tmp_path / "labels" / "survey_labels.tif"
    done = write_field_labels(fields, SAMPLE_IMAGE, out)
    assert done["property"] == "crop" and done["labelled_pixels"] == 64 * 64 + 32 * 64
    assert done["pixels_by_code"] == {"0": 32 * 64, "1": 64 * 64} and done["warnings"] == []
    with rasterio.open(out) as src:
        assert src.descriptions == ("crop",) and src.nodata == NO_LABEL and src.dtypes[0] == "int16"
    mask = read_labels(out, CLASS_MAPS["binary"], grid=grid_of_file(SAMPLE_IMAGE))
    assert (mask[100:164, 100:164] == CROP).all() and (mask[40:104, 300:332] == NOT_CROP).all()
    assert int((mask != NODATA).sum()) == done["labelled_pixels"]
    # never over an existing file without overwrite; a refusal leaves the file as it was
    before = out.read_bytes()
    with pytest.raises(OutputExistsError):
        write_field_labels(fields, SAMPLE_IMAGE, out)
    fields.write_text(json.dumps(feature_collection(({"crop": "maize"}, box_ring(0, 0, 64, 64)), crs="image")))
    with pytest.raises(InvalidDataError):
        write_field_labels(fields, SAMPLE_IMAGE, out, overwrite=True)
    assert out.read_bytes() == before and sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_the_command_writes_the_labels_and_says_what_it_left_out(capsys, tmp_path):
    fields = tmp_path / "survey.geojson"
    fields.write_text(json.dumps(feature_collection(({"name": "A", "class": 1}, box_ring(0, 0, 32, 32)),
                                         ({"name": "B", "class": None}, box_ring(40, 0, 72, 32)), crs="image")))
    out = tmp_path / "labels.tif"
    assert main(["labels-from-fields", "--fields", str(fields), "--image", str(SAMPLE_IMAGE), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["labelled_pixels"] == 32 * 32
    assert "warning: 1 field(s) of survey.geojson have no class and are left out: B" in captured.err
    # mistakes: one line, status 2, and nothing replaced
    for argv, said in ((["--out", str(out)], "already exists"),
                       (["--out", str(tmp_path / "x.tif"), "--property", "yield"], "no field of survey.geojson has a value"),
                       (["--out", str(tmp_path / "x.tif"), "--property", "name"], "A in survey.geojson: name = 'A' is text"),
                       (["--out", str(fields), "--overwrite"], "same file as --fields")):
        assert main(["labels-from-fields", "--fields", str(fields), "--image", str(SAMPLE_IMAGE), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert said in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "x.tif").exists() and json.loads(fields.read_text())["type"] == "FeatureCollection"
    # the image given as the fields (both options take a file): "the file is not GeoJSON text" named neither
    assert main(["labels-from-fields", "--fields", str(SAMPLE_IMAGE), "--image", str(SAMPLE_IMAGE), "--out",
                 str(tmp_path / "x.tif")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {SAMPLE_IMAGE.name}: the file is not GeoJSON text"), err
    assert not (tmp_path / "x.tif").exists()


def test_a_code_beyond_int16_written_as_a_decimal_or_text_is_refused():
    """40000 fits no int16 label raster (it would wrap to a negative code): refused however it is written."""
    for bad in (40000.0, "40000", "32768.0", 1e6):
        with pytest.raises(InvalidDataError, match="0 to 32767"):
            class_code(bad)
    assert class_code("32767") == 32767 and class_code(32767.0) == 32767


def test_fields_are_read_and_burnt_with_the_garbage_collector_paused(monkeypatch):
    # (its full collections scanned every coordinate list again and again: 29 s instead of 5.5 for 5,800 fields)
    import gc

    import core.field_labels as fl

    seen = []
    read, code = fl.geojson_text, fl.class_code
    monkeypatch.setattr(fl, "geojson_text", lambda data: seen.append(("read", gc.isenabled())) or read(data))
    monkeypatch.setattr(fl, "class_code", lambda value: seen.append(("burn", gc.isenabled())) or code(value))
    fc = load_fields(json.dumps(feature_collection(({"crop": 1}, box_ring(10, 5, 30, 25)), crs="image")).encode())
    burn_fields(fc, IMAGE_GRID, "crop")
    assert seen == [("read", False), ("burn", False)] and gc.isenabled()
