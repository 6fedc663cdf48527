"""core.evaluate: a crop mask scored against a label raster, as `python -m core evaluate` does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.evaluate import evaluate_files
from core.labels import NODATA, get_class_map
from core.raster import grid_of_file, read_labels, write_mask

from testdata import FLANDERS_LABELS, FLANDERS_S2


def test_evaluate_gives_the_crop_area_against_the_labels_in_hectares(tmp_path):
    """On a georeferenced 10 m grid the crop areas are in hectares (0.01 ha a pixel), over pixels
    valid in both, and written with the rest."""
    grid = grid_of_file(FLANDERS_S2)
    labels = read_labels(FLANDERS_LABELS, get_class_map("worldcereal"), grid)
    pred = labels.copy()
    crop = np.argwhere(pred == 1)
    pred[tuple(crop[: len(crop) // 4].T)] = 0  # a quarter of the crop missed
    pred[0, :] = NODATA
    write_mask(tmp_path / "crop_mask.tif", pred, grid)
    result = evaluate_files(tmp_path / "crop_mask.tif", FLANDERS_LABELS, "worldcereal")
    both = (pred != NODATA) & (labels != NODATA)
    n_pred, n_lab = int(((pred == 1) & both).sum()), int(((labels == 1) & both).sum())
    assert n_lab > 0 and n_pred < n_lab
    area = result["crop_area"]
    assert area["predicted_pixels"] == n_pred and area["labelled_pixels"] == n_lab
    assert area["predicted_ha"] == pytest.approx(n_pred * 0.01) and area["labelled_ha"] == pytest.approx(n_lab * 0.01)
    assert area["difference"] == pytest.approx(n_pred / n_lab - 1)
    assert json.loads((tmp_path / "metrics.json").read_text())["crop_area"] == area
    # the label classes the errors fall in, in hectares too: the quarter of the crop missed is all annual cropland (11)
    (row,) = result["errors_by_class"]
    assert row["code"] == 11 and row["errors"] == n_lab - n_pred
    assert row["errors_ha"] == pytest.approx(row["errors"] * 0.01) and row["area_ha"] == pytest.approx(row["pixels"] * 0.01)
    assert all(round(row[k], 4) == row[k] for k in ("errors_ha", "area_ha"))  # to 1 m2, as summary.json (not 8.349999...)


def test_a_mask_with_its_own_no_data_value_is_read_with_it(tmp_path):
    """A float mask with nodata=NaN is scored (it was refused: "holds the value nan"); a mask that
    declares 0 as no data leaves its 0 pixels out, as `fields` does, and says so."""
    import rasterio

    grid = grid_of_file(FLANDERS_S2)
    labels = read_labels(FLANDERS_LABELS, get_class_map("worldcereal"), grid)
    pred = labels.astype(np.float32)
    pred[labels == NODATA] = np.nan
    pred[:3] = np.nan
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "crs": grid.crs,
               "transform": rasterio.Affine(*grid.transform)}
    with rasterio.open(tmp_path / "float.tif", "w", dtype="float32", nodata=np.nan, **profile) as dst:
        dst.write(pred, 1)
    result = evaluate_files(tmp_path / "float.tif", FLANDERS_LABELS, "worldcereal", out=tmp_path / "f.json")
    valid = (labels != NODATA).copy()
    valid[:3] = False
    assert result["valid_pixels"] == int(valid.sum()) and result["iou"] == 1.0 and result["warnings"] == []
    with rasterio.open(tmp_path / "zero.tif", "w", dtype="uint8", nodata=0, **profile) as dst:
        dst.write(labels, 1)
    result = evaluate_files(tmp_path / "zero.tif", FLANDERS_LABELS, "worldcereal", out=tmp_path / "z.json")
    assert result["valid_pixels"] == int((labels == 1).sum()) and result["fp"] == result["tn"] == 0
    assert "zero.tif declares 0 as no data, so its pixels of value 0 (not crop in a crop mask) are left out" \
        in result["warnings"][0]
    # a signed 8-bit mask with its own no-data value: the 255 put in its place came back as -1 ("holds the
    # value -1, but a crop mask holds only 0, 1 and 255"), a value the file does not have
    signed = np.where(labels == NODATA, -128, labels).astype(np.int8)
    signed[:3] = -128
    with rasterio.open(tmp_path / "int8.tif", "w", dtype="int8", nodata=-128, **profile) as dst:
        dst.write(signed, 1)
    result = evaluate_files(tmp_path / "int8.tif", FLANDERS_LABELS, "worldcereal", out=tmp_path / "i.json")
    assert result["valid_pixels"] == int(valid.sum()) and result["iou"] == 1.0


def in_worldcover_codes(path):
    """The WorldCereal labels written in ESA WorldCover's codes (annual cropland 11 -> cropland 40, the
    other classes -> 30, 50, 10), with no band name to tell the product: labels of another product
    than the default label map's."""
    import rasterio

    with rasterio.open(FLANDERS_LABELS) as src:
        codes, profile = src.read(1), src.profile
    out = np.full(codes.shape, 0, np.uint8)
    for was, now in ((11, 40), (13, 30), (60, 50), (99, 10)):
        out[codes == was] = now
    profile.update(dtype="uint8", nodata=0, count=1)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(out, 1)
    return path


def test_labels_read_with_another_products_map_as_all_crop_are_warned_of(tmp_path):
    """WorldCover's codes 10-60 are all crop codes of CDL: read with the default map they were a
    region of crop alone, scored without a word (IoU 0.59 for a model whose true IoU is 0.53)."""
    from core.labels import label_map_warning
    from core.raster import read_label_classes
    from core.sources.local import validate_labels

    labels = in_worldcover_codes(tmp_path / "worldcover.tif")
    grid = grid_of_file(FLANDERS_S2)
    write_mask(tmp_path / "crop_mask.tif", read_labels(FLANDERS_LABELS, get_class_map("worldcereal"), grid), grid)
    said = evaluate_files(tmp_path / "crop_mask.tif", labels, "cdl", out=tmp_path / "a.json")["warnings"]
    assert said == ["worldcover.tif: 100.0% of the labelled pixels read as crop with USDA NASS Cropland Data Layer, "
                    "and their codes (10, 30, 40, 50) are also classes of glc30 (43% crop), worldcover (34% crop); if "
                    "the labels come from another product, choose its label map "
                    "(--label-map on the command line, 'Label map' in the dashboard), or every figure is wrong"]
    assert validate_labels(labels, "cdl", grid)["warning"] == said[0]
    # read with their own map, or with another that does not make them all crop: nothing to say
    assert evaluate_files(tmp_path / "crop_mask.tif", labels, "worldcover", out=tmp_path / "b.json")["warnings"] == []
    assert validate_labels(labels, "glc30", grid)["warning"] is None
    # real CDL read as CDL (the sample scene): nothing either
    from testdata import SAMPLE_LABELS

    cdl = get_class_map("cdl")
    _, codes = read_label_classes(SAMPLE_LABELS, cdl)
    assert label_map_warning(codes, cdl) is None
    # nor on a field-sized part of it that is all corn and soy (1, 5: Dynamic World's trees and shrub, no crop)
    window = codes[:200, :200].copy()
    window[(window >= 0) & ~np.isin(window, [1, 5])] = 1
    assert np.isin(window[window >= 0], [1, 5]).all() and label_map_warning(window, cdl) is None
    # ... nor on labels whose band names the product chosen (CDL's "cropland"), whatever they hold
    _, codes = read_label_classes(labels, cdl, grid)
    assert label_map_warning(codes, cdl, "worldcover.tif") == said[0]
    assert label_map_warning(codes, cdl, "worldcover.tif", descriptions=["cropland"]) is None



def test_labels_of_another_product_with_codes_the_map_lacks_are_warned_of(tmp_path):
    """A WorldCover tile with water (80) and wetland (90) read as CDL: 10-50 are CDL crops, but 80 and 90
    are not, so fewer than 99% read as crop and it was scored in silence (IoU 0.32 for a perfect map).
    Codes the label map's product does not define, all of them another product's classes, are warned of."""
    import rasterio

    from core.labels import label_map_warning
    from core.raster import read_label_classes

    labels = in_worldcover_codes(tmp_path / "worldcover.tif")
    with rasterio.open(labels, "r+") as dst:
        codes = dst.read(1)
        codes[:, : codes.shape[1] // 8] = 80  # a river's width of permanent water
        dst.write(codes, 1)
    cdl = get_class_map("cdl")
    _, raw = read_label_classes(labels, cdl)
    said = label_map_warning(raw, cdl, "worldcover.tif")
    assert said.startswith("worldcover.tif: ") and "of the labelled pixels hold codes that USDA NASS Cropland Data " \
        "Layer does not define (e.g. " in said and "80" in said and "worldcover (" in said
    assert label_map_warning(raw, get_class_map("worldcover"), "worldcover.tif") is None


def test_metrics_already_written_are_kept_unless_overwrite_is_given(tmp_path):
    """Scoring a second prediction to the same JSON replaced the first run's figures without a word
    (the CLI checks first, but the library path did not): it must refuse, leaving the file's bytes
    as they were, and replace them only with overwrite=True."""
    from core.errors import OutputExistsError

    grid = grid_of_file(FLANDERS_S2)
    labels = read_labels(FLANDERS_LABELS, get_class_map("worldcereal"), grid)
    write_mask(tmp_path / "right.tif", labels, grid)
    wrong = labels.copy()
    wrong[labels == 1] = 0  # all the crop missed
    write_mask(tmp_path / "wrong.tif", wrong, grid)
    out = tmp_path / "metrics.json"
    evaluate_files(tmp_path / "right.tif", FLANDERS_LABELS, "worldcereal", out=out)
    before = out.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists"):
        evaluate_files(tmp_path / "wrong.tif", FLANDERS_LABELS, "worldcereal", out=out)
    assert out.read_bytes() == before
    result = evaluate_files(tmp_path / "wrong.tif", FLANDERS_LABELS, "worldcereal", out=out, overwrite=True)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result)) and out.read_bytes() != before
    assert json.loads(before)["iou"] == 1.0 and result["tp"] == 0


def test_labels_of_part_of_the_prediction_reaching_beyond_it_are_scored_on_their_part(tmp_path):
    """Labels of the fields surveyed, on the prediction's pixels, overlapping one of its edges: the
    pixels they label are scored and the warning says which part that is."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    grid = grid_of_file(FLANDERS_S2)
    labels = read_labels(FLANDERS_LABELS, get_class_map("worldcereal"), grid)
    write_mask(tmp_path / "crop_mask.tif", labels, grid)
    t = grid.transform
    with rasterio.open(FLANDERS_LABELS) as src:  # its rows 20-63 and 12 rows beyond the prediction's last
        part, profile = src.read(1, window=Window(0, 20, 64, 44)), src.profile
    part = np.concatenate([part, np.full((12, 64), np.nan, part.dtype)])
    profile.update(height=56, transform=Affine(t[0], 0, t[2], 0, t[4], t[5] + 20 * t[4]))
    with rasterio.open(tmp_path / "part.tif", "w", **profile) as dst:
        dst.write(part, 1)
    result = evaluate_files(tmp_path / "crop_mask.tif", tmp_path / "part.tif", "worldcereal")
    scored = labels[20:]
    assert result["valid_pixels"] == int((scored != NODATA).sum()) and result["iou"] == 1.0
    assert result["warnings"] == [f"the labels' raster covers only {44 * 64:,} of the {64 * 64:,} predicted pixels (68.75%: rows "
                                  "20-63, columns 0-63 of the prediction); the figures are for that part only"]


@pytest.fixture(autouse=True)
def strips_of_a_few_rows(monkeypatch):
    """Every test here reads its rasters in strips of a few rows (of the 64 px fixtures; 3 of the
    sample scene's 1024 px), as evaluate reads a large raster: the figures must not depend on them."""
    import core.raster

    monkeypatch.setattr(core.raster, "STRIP_PIXELS", 200)


def _sample_on_lonlat(tmp_path):
    """The sample scene's CDL labels on a test grid in longitude/latitude (pixels' area changes by
    row), and a crop mask of them moved by (3, 5) px with 40 rows of no data: errors in many classes."""
    from core.grid import Grid
    from core.raster import read_label_classes

    from testdata import SAMPLE_LABELS, write_raster

    grid = Grid("EPSG:4326", (0.0003, 0.0, -100.0, 0.0, -0.0003, 47.0), 1024, 1024)
    import rasterio

    with rasterio.open(SAMPLE_LABELS) as src:
        raw, nodata = src.read(1), src.nodata
    write_raster(tmp_path / "cdl.tif", raw, crs=grid.crs, transform=rasterio.Affine(*grid.transform), nodata=nodata)
    labels, codes = read_label_classes(tmp_path / "cdl.tif", get_class_map("cdl"), grid)
    pred = np.roll(labels, (3, 5), axis=(0, 1))
    pred[500:540] = NODATA
    write_mask(tmp_path / "crop_mask.tif", pred, grid)
    return grid, pred, labels, codes


def test_evaluate_reads_in_strips_as_the_whole_arrays_score(tmp_path, monkeypatch):
    """Read in strips of 3 rows or of 4 Mpx (all at once here), evaluate gives the figures of the
    metrics of the whole arrays: confusion, crop areas row by row on a lon/lat grid (to the last digit),
    errors by class (their hectares to a square metre)."""
    import core.raster
    from core.metrics import class_errors, confusion, crop_area_agreement

    grid, pred, labels, codes = _sample_on_lonlat(tmp_path)
    pixel_ha = grid.pixel_area_ha()
    assert isinstance(pixel_ha, np.ndarray)  # (areas by row)
    whole = {**confusion(pred, labels).to_dict(), "crop_area": crop_area_agreement(pred, labels, pixel_ha)}
    by_class = [r for r in class_errors(codes, labels, pred, pixel_ha) if r["errors"]][:10]
    assert len(by_class) == 10 and whole["fp"] > 1000 and whole["fn"] > 1000
    for pixels in (3 * 1024, 4 * 2**20):
        monkeypatch.setattr(core.raster, "STRIP_PIXELS", pixels)
        out = tmp_path / f"m{pixels}.json"
        result = evaluate_files(tmp_path / "crop_mask.tif", tmp_path / "cdl.tif", "cdl", out=out)
        assert {k: result[k] for k in whole} == whole  # (the crop areas to the last digit: summed by row)
        assert [(r["code"], r["pixels"], r["errors"]) for r in result["errors_by_class"]] == [
            (r["code"], r["pixels"], r["errors"]) for r in by_class]
        for got, want in zip(result["errors_by_class"], by_class):
            assert got["errors_ha"] == pytest.approx(want["errors_ha"], abs=2e-4)
            assert got["area_ha"] == pytest.approx(want["area_ha"], abs=2e-4)


def test_labels_are_judged_on_all_their_strips_not_one(tmp_path):
    """The checks of label codes see the whole raster, not a strip: an undeclared fill value over the
    top tenth of the rows is told as 10% of the pixels (a strip of them alone is all fill), and labels
    whose top rows alone hold codes CDL lacks are scored; a 0/1 mask's values it may not hold are
    told from all its strips."""
    from core.errors import InvalidDataError
    from core.grid import Grid

    from testdata import write_raster

    grid = Grid("EPSG:32614", (30.0, 0.0, 500000.0, 0.0, -30.0, 5000000.0), 64, 100)
    rng = np.random.default_rng(0)
    codes = rng.choice(np.array([1, 5, 176], np.uint16), size=(100, 64))
    filled = codes.copy()
    filled[:10] = 65535
    import rasterio

    write_raster(tmp_path / "filled.tif", filled, crs=grid.crs, transform=rasterio.Affine(*grid.transform))
    write_mask(tmp_path / "crop_mask.tif", np.where(np.isin(codes, (1, 5)), 1, 0).astype(np.uint8), grid)
    with pytest.raises(InvalidDataError, match=r"10\.0% of this raster's pixels hold 65535"):
        evaluate_files(tmp_path / "crop_mask.tif", tmp_path / "filled.tif", "cdl", out=tmp_path / "a.json")
    odd = codes.copy()
    odd[:12] = 40  # (not a CDL class: 12% of the pixels, well under the share that refuses them)
    write_raster(tmp_path / "odd.tif", odd, crs=grid.crs, transform=rasterio.Affine(*grid.transform))
    result = evaluate_files(tmp_path / "crop_mask.tif", tmp_path / "odd.tif", "cdl", out=tmp_path / "b.json")
    assert result["valid_pixels"] == 64 * 100
    # a 0/1 mask with negative values in three strips: all of them told, as from the whole raster
    mask = np.where(np.isin(codes, (1, 5)), 1, 0).astype(np.int16)
    mask[10, 3], mask[80, 7], mask[85, 1] = -5, -9, -2
    write_raster(tmp_path / "neg.tif", mask, crs=grid.crs, transform=rasterio.Affine(*grid.transform))
    with pytest.raises(InvalidDataError, match=r"may only hold 0, 1 and 255 \(no data\), found \[-9, -5, -2\]"):
        evaluate_files(tmp_path / "crop_mask.tif", tmp_path / "neg.tif", "binary", out=tmp_path / "c.json")


def _utm(height, width, row=0, col=0):
    """A 10 m UTM grid of height x width pixels, its first pixel at (row, col) of the prediction's."""
    from core.grid import Grid

    return Grid("EPSG:32631", (10.0, 0.0, 500000.0 + 10 * col, 0.0, -10.0, 5630000.0 - 10 * row), width, height)


def _part_labels(tmp_path, name, height, width, row, col):
    """Binary labels (a checkerboard of crop) of a height x width part placed at (row, col) of the prediction."""
    labels = (np.indices((height, width)).sum(axis=0) % 2).astype(np.uint8)
    return write_mask(tmp_path / name, labels, _utm(height, width, row, col))


def test_labels_of_part_of_the_prediction_are_told_by_their_rows_and_columns(tmp_path):
    """The warning counts the predicted pixels under the labels in their columns too, from the prediction's
    first row where the labels begin above it, and says nothing where the rest holds no prediction."""
    pred = np.ones((64, 64), np.uint8)
    write_mask(tmp_path / "crop_mask.tif", pred, _utm(64, 64))
    left = _part_labels(tmp_path, "left.tif", 64, 40, 0, 0)
    result = evaluate_files(tmp_path / "crop_mask.tif", left, "binary", out=tmp_path / "a.json")
    assert result["valid_pixels"] == 64 * 40 and result["warnings"] == [
        "the labels' raster covers only 2,560 of the 4,096 predicted pixels (62.50%: rows 0-63, columns 0-39 of the "
        "prediction); the figures are for that part only"]
    above = _part_labels(tmp_path, "above.tif", 40, 64, -10, 0)  # its first 10 rows above the prediction
    result = evaluate_files(tmp_path / "crop_mask.tif", above, "binary", out=tmp_path / "b.json")
    assert result["valid_pixels"] == 30 * 64 and result["warnings"] == [
        "the labels' raster covers only 1,920 of the 4,096 predicted pixels (46.88%: rows 0-29, columns 0-63 of the "
        "prediction); the figures are for that part only"]
    # the prediction's pixels outside the labels all no data (an export's padding): nothing to say
    pred[:20] = NODATA
    write_mask(tmp_path / "padded.tif", pred, _utm(64, 64))
    below = _part_labels(tmp_path, "below.tif", 44, 64, 20, 0)
    result = evaluate_files(tmp_path / "padded.tif", below, "binary", out=tmp_path / "c.json")
    assert result["valid_pixels"] == 44 * 64 and result["warnings"] == []


def test_labels_leaving_out_a_single_predicted_pixel_say_so_not_100_percent(tmp_path):
    pred = np.ones((20, 1100), np.uint8)
    pred[19, 1:] = NODATA  # the row past the labels: one predicted pixel
    write_mask(tmp_path / "crop_mask.tif", pred, _utm(20, 1100))
    labels = _part_labels(tmp_path, "labels.tif", 19, 1100, 0, 0)
    (said,) = evaluate_files(tmp_path / "crop_mask.tif", labels, "binary")["warnings"]
    assert "covers only 20,900 of the 20,901 predicted pixels (over 99.99%: rows 0-18, columns 0-1099" in said


def test_place_labels_cuts_the_prediction_to_labels_inside_it(tmp_path):
    """The dashboard's placing (core.zones): the prediction cut to the labels' window, and the pixels left out told."""
    from core.evaluate import place_labels

    pred = np.ones((64, 64), np.uint8)
    pred[0, 0] = NODATA
    labels = _part_labels(tmp_path, "labels.tif", 24, 40, 20, 10)
    placed = place_labels(pred, _utm(64, 64), labels)
    assert placed.origin == (20, 10) and placed.grid.shape == (24, 40) and placed.pred.shape == (24, 40)
    assert placed.warnings == ["the labels' raster covers only 960 of the 4,095 predicted pixels (23.44%: rows 20-43, "
                               "columns 10-49 of the prediction); the figures are for that part only"]
    write_mask(tmp_path / "crop_mask.tif", pred, _utm(64, 64))
    result = evaluate_files(tmp_path / "crop_mask.tif", labels, "binary")
    assert (result["valid_pixels"], result["tp"], result["fp"]) == (960, 480, 480)


def test_a_crop_mask_declaring_1_as_no_data_is_warned_of(tmp_path):
    import rasterio

    grid = _utm(8, 8)
    pred = (np.arange(64).reshape(8, 8) % 2).astype(np.uint8)
    with rasterio.open(tmp_path / "one.tif", "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", nodata=1,
                       crs=grid.crs, transform=rasterio.Affine(*grid.transform)) as dst:
        dst.write(pred, 1)
    labels = write_mask(tmp_path / "labels.tif", np.ones((8, 8), np.uint8), grid)
    result = evaluate_files(tmp_path / "one.tif", labels, "binary")
    assert result["valid_pixels"] == 32 and result["tp"] == 0
    assert result["warnings"][0].startswith("one.tif declares 1 as no data, so its pixels of value 1 (crop in a crop "
                                            "mask) are left out; if they are crop, remove the declaration")


def test_a_mask_of_two_bands_is_refused(tmp_path):
    import rasterio

    from core.errors import InvalidDataError

    from testdata import write_raster

    grid = _utm(8, 8)
    two = write_raster(tmp_path / "two.tif", np.ones((2, 8, 8), np.uint8), crs=grid.crs,
                       transform=rasterio.Affine(*grid.transform))
    labels = write_mask(tmp_path / "labels.tif", np.ones((8, 8), np.uint8), grid)
    with pytest.raises(InvalidDataError, match="two.tif has 2 bands, but a crop mask has one"):
        evaluate_files(two, labels, "binary")


def test_labels_of_two_values_no_class_of_the_map_holds_are_told_by_both(tmp_path):
    import rasterio

    from core.errors import NoDataError

    from testdata import write_raster

    grid = _utm(16, 16)
    codes = np.where(np.arange(16) < 8, -1, -2).astype(np.int16) * np.ones((16, 1), np.int16)
    labels = write_raster(tmp_path / "neg.tif", codes, crs=grid.crs, transform=rasterio.Affine(*grid.transform))
    write_mask(tmp_path / "crop_mask.tif", np.ones((16, 16), np.uint8), grid)
    with pytest.raises(NoDataError, match="their values run -2 to -1"):
        evaluate_files(tmp_path / "crop_mask.tif", labels, "cdl")
