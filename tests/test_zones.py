"""Crop area by zone (core.zones) and the parts of a region (core.geojson.part_names)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from rasterio.warp import transform as warp

from core.__main__ import main
from core.errors import ConfigError, CorruptFileError, GridMismatchError, InputNotFoundError, OutputExistsError, RegionError
from core.grid import Grid
from core.labels import CLASS_MAPS
from core.raster import grid_of_file, read_labels, write_mask
from core.region import Region
from core.zones import crop_by_zone, write_zones, zones_csv
from testdata import FLANDERS_LABELS, box_ring, feature_collection


def err_line(capsys, argv) -> str:
    """The one line a user mistake prints (exit status 2, no traceback)."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_each_feature_is_a_part_named_by_its_file():
    fc = feature_collection(({"name": "Farm A"}, box_ring(0, 0, 1, 1)), ({}, box_ring(2, 0, 3, 1)), ({"NAME": "Farm A"}, box_ring(4, 0, 5, 1)),
                     ({"id": 7}, box_ring(6, 0, 7, 1)))
    fc["features"][1]["geometry"] = {"type": "MultiPolygon", "coordinates": [box_ring(2, 0, 3, 1), box_ring(2, 2, 3, 3)]}
    region = Region.from_geojson(fc)
    assert region.parts == ("Farm A", "part 2", "part 2", "Farm A (2)", "7")
    assert [name for name, _ in region.part_regions()] == ["Farm A", "part 2", "Farm A (2)", "7"]
    assert len(region.part_regions()[1][1].polygons) == 2  # a MultiPolygon feature is one zone
    # kept through the session's GeoJSON (to_geojson -> from_geojson), and not part of the region's cache key
    again = Region.from_geojson(json.dumps(region.to_geojson()))
    assert again == region and again.key() == Region(region.crs, region.polygons).key()
    # one feature, or a drawn shape: one zone, the region
    one = Region.from_geojson(feature_collection(({"name": "valley"}, box_ring(0, 0, 1, 1))))
    assert one.parts == () and [n for n, _ in one.part_regions()] == ["valley"]
    with pytest.raises(RegionError, match="names the parts of 1 polygons but holds 2"):
        Region("EPSG:4326", region.polygons[:2], parts=("x",))


def test_a_file_of_one_multipolygon_feature_is_one_zone_named_by_it():
    """A farm of two plots in one MultiPolygon feature came out as two zones, "part 1" and "part 2", though
    the same feature in a file of several is one zone; its region has no parts to tell apart."""
    farm = {"type": "Feature", "properties": {"name": "Bmulti"},
            "geometry": {"type": "MultiPolygon", "coordinates": [box_ring(0, 0, 1, 1), box_ring(2, 0, 3, 1)]}}
    for obj in ({"type": "FeatureCollection", "features": [farm]}, farm):
        region = Region.from_geojson(obj)
        [(name, zone)] = region.part_regions()
        assert name == "Bmulti" and zone.polygons == region.polygons and len(zone.polygons) == 2


def test_parts_keep_distinct_names_and_the_numbers_of_the_file():
    """Names X, X, "X (2)": the second X was renamed "X (2)", the third feature's own name, and the two
    fields were added up in one row. An unnamed feature is "part N" by its place in the file (as the
    features left out are numbered), not among the features with a polygon."""
    fc = feature_collection(({"name": "X"}, box_ring(0, 0, 1, 1)), ({"name": "X"}, box_ring(2, 0, 3, 1)),
                            ({"name": "X (2)"}, box_ring(4, 0, 5, 1)), ({}, box_ring(6, 0, 7, 1)))
    fc["features"].insert(0, {"type": "Feature", "properties": {}, "geometry": None})  # left out: "feature 1"
    region = Region.from_geojson(fc)
    assert [n for n, _ in region.part_regions()] == ["X", "X (3)", "X (2)", "part 5"]
    assert region.left_out == ("feature 1",)


def test_empty_geometries_are_left_out_and_do_not_name_the_region():
    """An empty Polygon ("coordinates": [], an empty geometry in RFC 7946) stopped the file with "a region
    polygon needs at least 3 distinct corners", naming no feature, where an empty MultiPolygon was left
    out; and a feature left out gave its name to the region of the one feature kept ("e, A9")."""
    fc = feature_collection(({"name": "e"}, []), ({"name": "A9"}, box_ring(0, 0, 1, 1)), ({"name": "m"}, []))
    fc["features"][2]["geometry"]["type"] = "MultiPolygon"
    region = Region.from_geojson(fc)
    assert region.left_out == ("e", "m") and region.name == "A9"
    assert [n for n, _ in region.part_regions()] == ["A9"]


def test_crop_by_zone_counts_each_zone_s_pixels_on_an_image_without_a_crs():
    mask = np.zeros((40, 60), np.uint8)
    mask[:, 30:] = 1
    mask[:5, :] = 255
    grid = Grid(None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 60, 40)
    zones = Region.from_geojson(feature_collection(({"name": "west"}, box_ring(0, 0, 30, 40)), ({"name": "middle"}, box_ring(20, 0, 40, 40)),
                                                     ({"name": "far"}, box_ring(100, 100, 120, 120)), crs="image")).part_regions()
    west, middle, far = crop_by_zone(mask, grid, zones)
    assert (west.pixels, west.valid_pixels, west.crop_pixels, west.crop_fraction) == (1200, 1050, 0, 0.0)
    # zones that overlap each count their common pixels; no data is never counted
    assert (middle.pixels, middle.valid_pixels, middle.crop_pixels, middle.crop_fraction) == (800, 700, 350, 0.5)
    assert west.crop_area_ha is None and (far.pixels, far.note) == (0, "outside the prediction")
    # the labels' crop before any prediction (the Data page): off the image, not off a prediction there is not
    assert crop_by_zone(mask, grid, zones, covering="the image")[2].note == "outside the image"
    # a scene cut from the image at (row 5, col 20): the zones drawn on the image are moved with it
    cut = crop_by_zone(mask[5:, 20:], Grid(None, (1.0, 0.0, 20.0, 0.0, 1.0, 5.0), 40, 35), zones, offset=(5, 20))
    assert [(z.pixels, z.crop_pixels) for z in cut[:2]] == [(350, 0), (700, 350)]
    # the part of a zone off the prediction is said (the figures of the part inside were given as the zone's)
    assert cut[0].note == "71% of the zone lies outside the prediction; the figures are for the part inside"
    assert cut[1].note == "12% of the zone lies outside the prediction; the figures are for the part inside"
    assert not west.note and not middle.note
    # a zone of two plots, one wholly off the image: its window is the other's, away from the image's edge
    farm = Region("image", ((((10, 10), (20, 10), (20, 20), (10, 20), (10, 10)),),
                            (((100, 10), (110, 10), (110, 20), (100, 20), (100, 10)),)), "farm")
    (both,) = crop_by_zone(mask, grid, [("farm", farm)])
    assert both.pixels == 100 and both.note == "50% of the zone lies outside the prediction; the figures are for the part inside"
    with pytest.raises(GridMismatchError):
        crop_by_zone(mask[1:], grid, zones)


def test_a_zone_far_larger_than_the_image_counts_its_part_inside_and_a_farther_one_is_refused():
    mask = np.zeros((40, 60), np.uint8)
    mask[:, 30:] = 1
    grid = Grid(None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 60, 40)
    m = 2**31 - 1  # the largest column or row an image has
    (huge,) = crop_by_zone(mask, grid, Region.from_geojson(feature_collection(({"name": "all"}, box_ring(-m, -m, m, m)),
                                                                              crs="image")).part_regions())
    assert (huge.pixels, huge.crop_pixels) == (2400, 1200)  # the whole image, as the part inside
    assert huge.note == "almost all of the zone lies outside the prediction; the figures are for the part inside"  # (was "100%")
    # farther: the geometry's arithmetic overflowed, and such a zone counted 0 (or 900) pixels
    for far in (1e308, -1e12, 2.0**31):
        with pytest.raises(RegionError, match="is not an image's column and row"):
            Region.from_geojson(feature_collection(({}, box_ring(10, 10, 100, far)), crs="image"))


@pytest.fixture(scope="module")
def flanders_mask():
    grid = grid_of_file(FLANDERS_LABELS)  # the real WorldCereal labels: UTM 31N, 10 m pixels
    return read_labels(FLANDERS_LABELS, CLASS_MAPS["worldcereal"], grid, band="LC"), grid


def test_lon_lat_zones_on_a_utm_mask_count_the_pixels_whose_centres_lie_inside(flanders_mask):
    mask, grid = flanders_mask
    boxes = {"north": (3.0200, 50.8160, 3.0260, 50.8185), "east": (3.0240, 50.8140, 3.0280, 50.8180)}
    fc = feature_collection(*(({"name": k}, box_ring(*b)) for k, b in boxes.items()))
    rows = crop_by_zone(mask, grid, Region.from_geojson(fc).part_regions())
    # independently: each pixel centre taken to lon/lat and tested against the box
    a, _, c, _, e, f = grid.transform
    cols, rows_ = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    lon, lat = (np.array(v).reshape(cols.shape) for v in warp(grid.crs, "EPSG:4326", (c + a * cols).ravel(), (f + e * rows_).ravel()))
    for row, (x0, y0, x1, y1) in zip(rows, boxes.values()):
        inside = (lon > x0) & (lon < x1) & (lat > y0) & (lat < y1)
        crop = inside & (mask == 1)
        assert row.pixels == int(inside.sum()) > 100 and row.crop_pixels == int(crop.sum()) > 0
        assert row.valid_pixels == int((inside & (mask != 255)).sum())
        assert row.crop_area_ha == pytest.approx(row.crop_pixels * 0.01)  # 10 m pixels: 0.01 ha each
        assert row.valid_area_ha == pytest.approx(row.valid_pixels * 0.01)
    text = zones_csv(rows)
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["name"] for r in table] == ["north", "east"] and table[0]["crop_pixels"] == str(rows[0].crop_pixels)
    image_zone = Region.from_geojson(feature_collection(({}, box_ring(0, 0, 9, 9)), ({}, box_ring(0, 0, 8, 8)), crs="image")).part_regions()
    with pytest.raises(RegionError, match="image coordinates but the image is georeferenced"):
        crop_by_zone(mask, grid, image_zone)


def test_zones_from_the_command_line(flanders_mask, tmp_path, capsys):
    mask, grid = flanders_mask
    mask_path = write_mask(tmp_path / "crop_mask.tif", mask, grid)
    zones = tmp_path / "fields.geojson"
    zones.write_text(json.dumps(feature_collection(({"name": "Hof ter Linden"}, box_ring(3.0200, 50.8160, 3.0260, 50.8185)),
                                            ({"name": "Kouter"}, box_ring(3.0240, 50.8140, 3.0280, 50.8180)))))
    assert main(["zones", "--pred", str(mask_path), "--zones", str(zones), "--out", str(tmp_path / "z.csv")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [z["name"] for z in printed] == ["Hof ter Linden", "Kouter"]
    table = list(csv.DictReader((tmp_path / "z.csv").open(encoding="utf-8")))
    assert [int(r["crop_pixels"]) for r in table] == [z["crop_pixels"] for z in printed]
    # JSON by its extension, in any case; CSV likewise (not JSON written into a .CSV)
    result = write_zones(mask_path, zones, tmp_path / "z.json")
    assert Path(result["out"]) == tmp_path / "z.json"
    assert json.loads((tmp_path / "z.json").read_text()) == printed
    write_zones(mask_path, zones, tmp_path / "Z.CSV")
    assert list(csv.DictReader((tmp_path / "Z.CSV").open(encoding="utf-8"))) == table
    # features without a polygon (a well as a point, a feature with no geometry): left out, and said
    mixed = json.loads(zones.read_text())
    mixed["features"] += [{"type": "Feature", "properties": {"name": "Well"},
                           "geometry": {"type": "Point", "coordinates": [3.022, 50.817]}},
                          {"type": "Feature", "properties": {}, "geometry": None}]
    mixed["features"][2]["properties"]["name"] = "Brunnen Müller"  # saved by an older GIS in Windows-1252:
    (tmp_path / "mixed.geojson").write_bytes(json.dumps(mixed, ensure_ascii=False).encode("cp1252"))  # not UTF-8
    assert main(["zones", "--pred", str(mask_path), "--zones", str(tmp_path / "mixed.geojson")]) == 0
    said = capsys.readouterr()
    assert [z["name"] for z in json.loads(said.out)] == ["Hof ter Linden", "Kouter"]
    assert ("warning: 2 feature(s) of mixed.geojson hold no polygon (points, lines, or an empty or no geometry) and are left "
            "out: Brunnen Müller, feature 4") in said.err
    before = (tmp_path / "z.csv").read_bytes()
    assert "already exists" in err_line(capsys, ["zones", "--pred", str(mask_path), "--zones", str(zones),
                                                 "--out", str(tmp_path / "z.csv")])
    assert (tmp_path / "z.csv").read_bytes() == before
    assert "CSV or JSON" in err_line(capsys, ["zones", "--pred", str(mask_path), "--zones", str(zones),
                                              "--out", str(tmp_path / "z.tif")])
    assert "does not exist" in err_line(capsys, ["zones", "--pred", str(mask_path), "--zones", str(tmp_path / "no.geojson")])
    assert "--label-map is for --labels" in err_line(capsys, ["zones", "--pred", str(mask_path), "--zones", str(zones),
                                                             "--label-map", "worldcover"])
    assert "--label-band is for --labels" in err_line(capsys, ["zones", "--pred", str(mask_path), "--zones", str(zones),
                                                              "--label-band", "7"])  # (was ignored)
    zones.write_text("not json")
    assert "not valid JSON" in err_line(capsys, ["zones", "--pred", str(mask_path), "--zones", str(zones)])
    assert not (tmp_path / "z.tif").exists()
    with pytest.raises(OutputExistsError):
        write_zones(mask_path, _fields(tmp_path), tmp_path / "z.csv")
    with pytest.raises(ConfigError):
        write_zones(mask_path, _fields(tmp_path), tmp_path)  # a folder
    with pytest.raises(InputNotFoundError):
        write_zones(tmp_path / "none.tif", _fields(tmp_path))


def _fields(tmp_path):
    path = tmp_path / "ok.geojson"
    path.write_text(json.dumps(feature_collection(({}, box_ring(3.0200, 50.8160, 3.0260, 50.8185)))))
    return path


def test_zones_against_labels_give_each_zone_s_iou_and_f1(flanders_mask, tmp_path, capsys):
    """Each zone compared with the labels on its own pixels; labels of part of the mask are placed as
    evaluate places them (no data around them), and a zone covering the whole mask gives evaluate's figures."""
    from rasterio.transform import Affine

    labels, grid = flanders_mask
    pred = labels.copy()
    pred[::3, ::2] = np.where(pred[::3, ::2] == 255, 255, 1 - pred[::3, ::2])  # a wrong pixel in six
    mask_path = write_mask(tmp_path / "crop_mask.tif", pred, grid)
    a, _, c, _, e, f = grid.transform
    box = ((3.0200, 50.8160, 3.0260, 50.8185), (3.0240, 50.8140, 3.0280, 50.8180))
    west, south = warp(grid.crs, "EPSG:4326", [c], [f + e * grid.height])
    east, north = warp(grid.crs, "EPSG:4326", [c + a * grid.width], [f])
    zones = tmp_path / "z.geojson"
    zones.write_text(json.dumps(feature_collection(({"name": "n"}, box_ring(*box[0])), ({"name": "e"}, box_ring(*box[1])),
                                            ({"name": "all"}, box_ring(west[0] - 0.01, south[0] - 0.01, east[0] + 0.01, north[0] + 0.01)))))
    assert main(["zones", "--pred", str(mask_path), "--zones", str(zones), "--labels", str(FLANDERS_LABELS),
                 "--label-map", "worldcereal", "--label-band", "LC"]) == 0
    rows = json.loads(capsys.readouterr().out)
    for row, bounds in zip(rows, box):  # against a confusion of the zone's own pixels
        zone = Region.from_geojson(feature_collection(({}, box_ring(*bounds))))
        window = zone.window(grid)
        inside = zone.mask(grid, window)
        sl = (slice(window.row_off, window.row_off + window.height), slice(window.col_off, window.col_off + window.width))
        p, y = pred[sl][inside], labels[sl][inside]
        ok = (p != 255) & (y != 255)
        tp, fp, fn = (int((ok & (p == u) & (y == v)).sum()) for u, v in ((1, 1), (1, 0), (0, 1)))
        assert fp + fn > 0 and row["compared_pixels"] == int(ok.sum()) and row["label_crop_pixels"] == tp + fn
        assert row["iou"] == round(tp / (tp + fp + fn), 4) and row["f1"] == round(2 * tp / (2 * tp + fp + fn), 4)
    # the whole mask: evaluate's figures
    assert main(["evaluate", "--pred", str(mask_path), "--labels", str(FLANDERS_LABELS), "--label-map", "worldcereal",
                 "--label-band", "LC", "--out", str(tmp_path / "m.json")]) == 0
    whole = json.loads((tmp_path / "m.json").read_text())
    capsys.readouterr()
    assert rows[2]["iou"] == round(whole["iou"], 4) and rows[2]["compared_pixels"] == whole["valid_pixels"]
    # labels of the mask's top-left 32 x 40 px only: compared there, no data elsewhere
    part = write_mask(tmp_path / "part.tif", labels[:32, :40],
                      Grid(grid.crs, tuple(Affine(*grid.transform))[:6], 40, 32))
    assert main(["zones", "--pred", str(mask_path), "--zones", str(zones), "--labels", str(part), "--label-map", "binary"]) == 0
    out = capsys.readouterr()
    partial = json.loads(out.out)
    assert partial[2]["compared_pixels"] == int(((pred[:32, :40] != 255) & (labels[:32, :40] != 255)).sum())
    assert "covers only 1,280 of the 4,096 predicted pixels" in out.err


def test_a_zones_file_larger_than_the_dashboard_s_upload_limit_is_read(flanders_mask, tmp_path):
    """The command line reads a district's field boundaries (the dashboard's uploads stop at 5 MB)."""
    mask, grid = flanders_mask
    mask_path = write_mask(tmp_path / "crop_mask.tif", mask, grid)
    big = feature_collection(({"name": "n", "notes": "x" * 6_000_000}, box_ring(3.0200, 50.8160, 3.0260, 50.8185)))
    (tmp_path / "big.geojson").write_text(json.dumps(big))
    assert [z["name"] for z in write_zones(mask_path, tmp_path / "big.geojson")["zones"]] == ["n"]
    with pytest.raises(RegionError, match="the limit is 5 MB"):
        Region.from_upload((tmp_path / "big.geojson").read_bytes())


def test_image_zones_of_a_window_prediction_are_in_the_pixels_of_its_image(tmp_path):
    """predict --window on an image without a CRS: the zones, drawn on the whole image, are placed by the
    window its summary.json gives (they were taken for the mask's own pixels)."""
    from rasterio.transform import Affine

    mask = np.zeros((40, 60), np.uint8)
    mask[:, 30:] = 1
    placed = Affine(30, 0, 61440, 0, -30, 107520) @ Affine.translation(200, 100)  # the sample's, at col 200, row 100
    mask_path = write_mask(tmp_path / "crop_mask.tif", mask, Grid(None, tuple(placed)[:6], 60, 40))
    (tmp_path / "summary.json").write_text(json.dumps({"window": {"row": 100, "col": 200, "height": 40, "width": 60}}))
    zones = tmp_path / "z.geojson"
    zones.write_text(json.dumps(feature_collection(({"name": "east half"}, box_ring(230, 100, 260, 140)),
                                            ({"name": "elsewhere"}, box_ring(0, 0, 50, 50)), crs="image")))
    done = write_zones(mask_path, zones)
    east, elsewhere = done["zones"]
    assert (east["pixels"], east["crop_pixels"]) == (1200, 1200) and elsewhere["note"] == "outside the prediction"
    assert not [w for w in done["warnings"] if "lies on the crop mask" in w]
    # every zone off the mask (e.g. zones of another image): said once, not only row by row
    zones.write_text(json.dumps(feature_collection(({"name": "a"}, box_ring(0, 0, 50, 50)),
                                                   ({"name": "b"}, box_ring(900, 900, 950, 950)), crs="image")))
    assert "none of the 2 zone(s) of z.geojson lies on the crop mask: check that they are where the mask is (in image " \
           "coordinates of the image it was predicted from" in write_zones(mask_path, zones)["warnings"][-1]
    # zones on the mask, each between pixels' centres (a point-like field): not said to lie elsewhere
    zones.write_text(json.dumps(feature_collection(({"name": "speck"}, box_ring(230.6, 110.6, 230.9, 110.9)), crs="image")))
    done = write_zones(mask_path, zones)
    assert done["zones"][0]["note"] == "no pixel's centre inside" and "lies on the crop mask" not in done["warnings"][-1]
    assert "holds a pixel's centre of the crop mask: they lie on it, but each is smaller than a pixel" in done["warnings"][-1]
    zones.write_text(json.dumps(feature_collection(({"name": "edge speck"}, box_ring(259.6, 110.6, 260.4, 110.9)),
                                                   crs="image")))  # across the mask's east edge, half off it
    assert "holds a pixel's centre" in write_zones(mask_path, zones)["warnings"][-1]
    zones.write_text(json.dumps(feature_collection(({"name": "speck"}, box_ring(230.6, 110.6, 230.9, 110.9)),
                                                   ({"name": "b"}, box_ring(900, 900, 950, 950)), crs="image")))
    assert "none of the 2 zone(s) of z.geojson lies on the crop mask (1 of them lie on it, but are smaller than a " \
           "pixel): check" in write_zones(mask_path, zones)["warnings"][-1]
    zones.write_text(json.dumps(feature_collection(({"name": "east half"}, box_ring(230, 100, 260, 140)),
                                                   ({"name": "elsewhere"}, box_ring(0, 0, 50, 50)), crs="image")))
    (tmp_path / "summary.json").unlink()  # without it: the mask's own pixels
    assert write_zones(mask_path, zones)["zones"][1]["crop_pixels"] == 20 * 40
    # a damaged window (1e400 is read as infinity: a traceback; 1e30 was "a polygon needs 3 corners") is refused
    for row in ("1e400", "1e30", "-5", "2.5", '"100"'):
        (tmp_path / "summary.json").write_text('{"window": {"row": %s, "col": 200}}' % row)
        with pytest.raises(CorruptFileError, match="summary.json: its window's row and col .* the summary is damaged"):
            write_zones(mask_path, zones)
    # a summary written over by another file (evaluate's metrics: no window): said, not counted from the mask's corner
    (tmp_path / "summary.json").write_text(json.dumps({"iou": 0.7, "confusion_matrix": [[1, 0], [0, 1]]}))
    with pytest.raises(CorruptFileError, match="summary.json is not the summary predict wrote beside the crop mask"):
        write_zones(mask_path, zones)
    # a prediction's summary without a window (the Predict page's download, of a fetched scene): the mask's corner
    (tmp_path / "summary.json").write_text(json.dumps({"threshold": 0.5, "crop_pixels": 1200, "pixels": 2400}))
    assert write_zones(mask_path, zones)["zones"][1]["crop_pixels"] == 20 * 40


def test_the_labels_table_has_its_own_columns(flanders_mask):
    """The Data page's "Labels by part CSV" put the labels' crop in crop_pixels, the column the Predict
    page's CSV gives the predicted crop: joined on the part's name, the two were mixed up."""
    from core.zones import label_zones_csv, zones_csv

    mask, grid = flanders_mask
    zones = [("a", Region.from_bbox(3.0200, 50.8160, 3.0260, 50.8185)), ("b", Region.from_bbox(3.0240, 50.8140, 3.0280, 50.8180))]
    rows = crop_by_zone(mask, grid, zones)
    table = list(csv.DictReader(io.StringIO(label_zones_csv(rows))))
    assert list(table[0]) == ["name", "pixels", "labelled_pixels", "label_crop_pixels", "label_crop_fraction",
                              "labelled_area_ha", "label_crop_area_ha", "note"]
    assert [int(r["label_crop_pixels"]) for r in table] == [r.crop_pixels for r in rows]
    assert [int(r["labelled_pixels"]) for r in table] == [r.valid_pixels for r in rows]
    assert "crop_pixels" in next(csv.reader(io.StringIO(zones_csv(rows))))  # (the prediction's, as before)


def test_a_zone_s_figures_against_labels_are_those_counted_by_hand_on_a_lon_lat_grid():
    """A zone near the bottom of a longitude/latitude grid (pixel areas differ by row): its areas from its
    own rows, its scores over the pixels valid in both, the labels' crop from the labels alone."""
    grid = Grid("EPSG:4326", (0.01, 0.0, 10.0, 0.0, -0.01, 60.0), 100, 100)
    rng = np.random.default_rng(7)
    mask = rng.choice(np.array([0, 1, 255], np.uint8), (100, 100), p=[0.45, 0.45, 0.1])
    labels = rng.choice(np.array([0, 1, 255], np.uint8), (100, 100), p=[0.4, 0.4, 0.2])
    labels[:, :35] = 255  # the labels cover only part of the zone
    (zone,) = crop_by_zone(mask, grid, [("z", Region.from_bbox(10.2, 59.05, 10.5, 59.2))], labels=labels)
    rows, cols = slice(80, 95), slice(20, 50)  # the pixels whose centres lie inside
    pa = np.broadcast_to(grid.pixel_area_ha()[rows], (15, 30))  # (a column of each row's hectares)
    m, lab = mask[rows, cols], labels[rows, cols]
    valid, crop = m != 255, m == 1
    both = valid & (lab != 255)
    p, y = crop & both, both & (lab == 1)
    tp, fp, fn = int((p & y).sum()), int((p & ~y).sum()), int((~p & y).sum())
    assert (zone.pixels, zone.valid_pixels, zone.crop_pixels) == (450, int(valid.sum()), int(crop.sum()))
    assert zone.valid_area_ha == pytest.approx(pa[valid].sum(), abs=1e-3)
    assert zone.crop_area_ha == pytest.approx(pa[crop].sum(), abs=1e-3)
    assert pa[0, 0] > grid.pixel_area_ha()[0, 0]  # (rows further south hold more hectares: the zone's own are used)
    assert (zone.compared_pixels, zone.label_crop_pixels) == (int(both.sum()), tp + fn)
    assert zone.label_crop_area_ha == pytest.approx(pa[y].sum(), abs=1e-3)
    assert zone.iou == pytest.approx(tp / (tp + fp + fn), abs=1e-4)
    assert zone.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-4)
    # no crop on either side: no IoU or F1 (not a perfect 0/0)
    (none,) = crop_by_zone(np.zeros_like(mask), grid, [("z", Region.from_bbox(10.2, 59.05, 10.5, 59.2))],
                           labels=np.zeros_like(labels))
    assert none.iou is None and none.f1 is None and none.compared_pixels == 450
    with pytest.raises(GridMismatchError):
        crop_by_zone(mask, grid, [("z", Region.from_bbox(10.2, 59.05, 10.5, 59.2))], labels=labels[:, 1:])
    with pytest.raises(GridMismatchError):
        crop_by_zone(mask[:, 1:], grid, [("z", Region.from_bbox(10.2, 59.05, 10.5, 59.2))])


@pytest.mark.parametrize("ring, outside", [
    (box_ring(50, 10, 70, 20), "50%"), (box_ring(-10, 10, 10, 20), "50%"),  # east, west
    (box_ring(10, -10, 20, 10), "50%"), (box_ring(10, 30, 20, 50), "50%"),  # north, south
    (box_ring(10, 20, 20, 41), "5%"),  # a little off the south edge
])
def test_a_zone_off_any_one_edge_is_said_partly_outside(ring, outside):
    mask = np.zeros((40, 60), np.uint8)
    grid = Grid(None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 60, 40)
    (zone,) = Region.from_geojson(feature_collection(({"name": "z"}, ring), crs="image")).part_regions()
    (row,) = crop_by_zone(mask, grid, [zone])
    assert row.note == f"{outside} of the zone lies outside the prediction; the figures are for the part inside"


def test_labels_of_part_of_the_mask_land_on_their_own_rows_and_columns(tmp_path):
    from affine import Affine

    from core.zones import read_labels_on
    from testdata import write_raster

    grid = Grid("EPSG:32631", (10.0, 0.0, 500_000.0, 0.0, -10.0, 5_600_000.0), 60, 40)
    labels = np.zeros((32, 20), np.uint8)
    labels[:, :5] = 1
    part = write_raster(tmp_path / "part.tif", labels, crs="EPSG:32631",
                        transform=Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 5_600_000.0 - 80.0))  # rows 8-39, cols 0-19
    placed, _ = read_labels_on(np.ones(grid.shape, np.uint8), grid, part, "binary")
    want = np.full(grid.shape, 255, np.uint8)
    want[8:40, 0:20] = labels
    assert np.array_equal(placed, want)


def _utm_zone(grid, col0, row0, col1, row1, name):
    """A lon/lat zone whose outline is the pixel edges col0-col1, row0-row1 of a UTM ``grid``."""
    a, _, c, _, e, f = grid.transform
    xs, ys = [c + a * col0, c + a * col1, c + a * col1, c + a * col0], [f + e * row0, f + e * row0, f + e * row1, f + e * row1]
    lon, lat = warp(grid.crs, "EPSG:4326", xs, ys)
    ring = [[x, y] for x, y in zip(lon, lat)]
    return Region.from_geojson(feature_collection(({"name": name}, [ring + ring[:1]]))).part_regions()[0]


def test_a_zone_s_compared_figures_hold_the_predicted_crop_the_labels_crop_and_their_hectares():
    """On 30 m pixels (0.09 ha each): the predicted and the labels' crop over the pixels valid in both, apart;
    a zone with data but no labels is said to have none; a zone off the mask has 0 ha (its image has a CRS)."""
    n = 255
    grid = Grid("EPSG:32631", (30.0, 0.0, 500_000.0, 0.0, -30.0, 5_600_000.0), 10, 10)
    mask, labels = np.zeros((10, 10), np.uint8), np.full((10, 10), n, np.uint8)
    mask[2:6, 2:6] = [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0], [n, n, 0, 0]]
    labels[2:6, 2:6] = [[1, 1, 0, n], [1, 0, 1, n], [0, 0, 1, n], [1, 1, 1, n]]
    mask[7:9, 7:9] = 1  # predicted crop where the labels say nothing
    zones = [_utm_zone(grid, 2, 2, 6, 6, "field"), _utm_zone(grid, 7, 7, 9, 9, "unlabelled"),
             _utm_zone(grid, 40, 40, 42, 42, "far")]
    field, unlabelled, far = crop_by_zone(mask, grid, zones, labels=labels)
    # valid in both: 3 + 3 + 3 + 1 pixels; predicted crop there 3 + 2, the labels' 2 + 2 + 1 + 1, both 2 + 1
    assert (field.pixels, field.valid_pixels, field.crop_pixels) == (16, 14, 6)
    assert (field.compared_pixels, field.compared_crop_pixels, field.label_crop_pixels) == (10, 5, 6)
    assert field.compared_crop_area_ha == pytest.approx(5 * 0.09) and field.label_crop_area_ha == pytest.approx(6 * 0.09)
    assert field.valid_area_ha == pytest.approx(14 * 0.09) and field.crop_area_ha == pytest.approx(6 * 0.09)
    assert field.iou == pytest.approx(3 / (3 + 2 + 3), abs=1e-4) and field.note == ""
    assert (unlabelled.crop_pixels, unlabelled.compared_pixels, unlabelled.note) == (4, 0, "no labels")
    assert far.note == "outside the prediction" and (far.valid_area_ha, far.crop_area_ha) == (0.0, 0.0)
    assert (far.compared_crop_area_ha, far.label_crop_area_ha) == (0.0, 0.0)


def test_a_tagged_crop_mask_s_summary_is_its_own(tmp_path):
    """crop_mask_t0.50.tif (a dashboard download) goes with summary_t0.50.json where that is there, else summary.json."""
    from core.zones import summary_beside

    (tmp_path / "summary.json").write_text("{}")
    assert summary_beside(tmp_path / "crop_mask_t0.50.tif") == tmp_path / "summary.json"
    (tmp_path / "summary_t0.50.json").write_text("{}")
    assert summary_beside(tmp_path / "crop_mask_t0.50.tif") == tmp_path / "summary_t0.50.json"
    assert summary_beside(tmp_path / "crop_mask.tif") == tmp_path / "summary.json"


def test_a_zones_table_that_fails_half_written_leaves_the_old_one_whole(tmp_path, monkeypatch):
    """--overwrite over an existing table, the disk full half-way: the old table stays as it was, no temporary file."""
    import errno
    import pathlib

    mask = np.zeros((10, 10), np.uint8)
    mask_path = write_mask(tmp_path / "crop_mask.tif", mask, Grid(None, (30.0, 0.0, 61440.0, 0.0, -30.0, 107520.0), 10, 10))
    zones = tmp_path / "z.geojson"
    zones.write_text(json.dumps(feature_collection(({"name": "a"}, box_ring(0, 0, 5, 5)), crs="image")))
    out = tmp_path / "out" / "z.csv"
    write_zones(mask_path, zones, out)
    before = out.read_bytes()
    real = pathlib.Path.write_text

    def half_then_full(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        write_zones(mask_path, zones, out, overwrite=True)
    monkeypatch.undo()
    assert out.read_bytes() == before and [p.name for p in out.parent.iterdir()] == ["z.csv"]


def test_zone_names_that_a_spreadsheet_would_run_as_formulas_are_written_as_text():
    """A part named ``=HYPERLINK(...)`` (or starting with +, -, @) in the user's GeoJSON became a live formula
    when the "by part" CSV was opened in a spreadsheet; it is written behind a quote, which makes it text.
    Numbers, negative ones included, stay numbers."""
    from core.zones import ZoneArea, label_zones_csv, zones_csv

    names = ["=HYPERLINK(\"http://example.com\",\"x\")", "+1", "-north", "@sum", "\tfield", "North field"]
    rows = [ZoneArea(name, 10, 8, 2, 0.25, -0.5 if i == 0 else 0.72, 0.18, None) for i, name in enumerate(names)]
    for text in (zones_csv(rows), label_zones_csv(rows)):
        read = list(csv.reader(io.StringIO(text)))[1:]
        assert [r[0] for r in read] == ["'" + n for n in names[:-1]] + ["North field"]
        assert read[0][5] == "-0.5" and read[1][5] == "0.72"
