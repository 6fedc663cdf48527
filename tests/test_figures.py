"""Figures the CLI and the pages show agree: undefined scores are null (n/a), not 0; the Data page
counts labels only where the image has data, as the Quality page does."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine

from core.evaluate import evaluate_files
from core.metrics import threshold_curve
from apptest import new_app
from testdata import write_raster

UTM = "EPSG:32633"
TRANSFORM = Affine(10, 0, 360630, 0, -10, 5351440)


def _cdl(shape, crop: bool) -> np.ndarray:
    """CDL codes: Corn (1) and Grassland/Pasture (176) in halves, or grassland only; a row of no data (0)."""
    codes = np.full(shape, 176, np.uint8)
    if crop:
        codes[:, : shape[1] // 2] = 1
    codes[0] = 0
    return codes


def test_undefined_precision_is_null_in_metrics_json_not_zero(tmp_path):
    """A crop mask without crop: precision is undefined (the Quality page says n/a); metrics.json said 0.0."""
    mask = np.zeros((16, 16), np.uint8)
    mask[-1] = 255
    pred = write_raster(tmp_path / "crop_mask.tif", mask, UTM, TRANSFORM, nodata=255)
    labels = write_raster(tmp_path / "cdl.tif", _cdl(mask.shape, crop=True), UTM, TRANSFORM, nodata=0)
    res = evaluate_files(pred, labels, "cdl")
    assert res["precision"] is None
    assert res["recall"] == 0.0 and res["f1"] == 0.0 and res["iou"] == 0.0  # defined: crop to find, none found
    assert json.loads((tmp_path / "metrics.json").read_text())["precision"] is None


def test_labels_without_crop_give_null_recall_and_zero_f1_iou(tmp_path):
    """Labels without crop: recall is undefined (n/a on the Quality page; metrics.json said 0.0); F1 and IoU
    are 0 where crop is predicted (all of it false crop; they said n/a, hiding such a map, and the parts'
    table said 0), undefined only where neither has crop."""
    mask = np.ones((16, 16), np.uint8)
    pred = write_raster(tmp_path / "crop_mask.tif", mask, UTM, TRANSFORM, nodata=255)
    labels = write_raster(tmp_path / "cdl.tif", _cdl(mask.shape, crop=False), UTM, TRANSFORM, nodata=0)
    res = evaluate_files(pred, labels, "cdl")
    assert res["tp"] == 0 and res["fp"] == 15 * 16 and res["fn"] == 0
    assert res["precision"] == 0.0 and res["accuracy"] == 0.0
    assert res["recall"] is None and res["f1"] == 0.0 and res["iou"] == 0.0
    (tmp_path / "none").mkdir()
    pred = write_raster(tmp_path / "none" / "crop_mask.tif", np.zeros_like(mask), UTM, TRANSFORM, nodata=255)
    res = evaluate_files(pred, labels, "cdl")
    assert res["tp"] == res["fp"] == res["fn"] == 0
    assert res["precision"] is res["recall"] is res["f1"] is res["iou"] is None


def test_threshold_curve_gives_undefined_precision_as_none():
    """The curve's point at a threshold with no predicted crop: precision None, as the scores shown there."""
    prob = np.full((8, 8), 0.3, np.float32)
    labels = np.zeros((8, 8), np.uint8)
    labels[:, :4] = 1
    rows = {r["threshold"]: r for r in threshold_curve(prob, labels, [0.2, 0.5])}
    assert rows[0.2]["precision"] == pytest.approx(0.5)
    assert rows[0.5]["precision"] is None and rows[0.5]["recall"] == 0.0 and rows[0.5]["f1"] == 0.0


# ---------------------------------------------------------------------- pages
def _own_scene(tmp_path, crop: bool):
    """The FTW window (UTM, 10 m) with a block of no data (all bands 0) and CDL labels on its grid."""
    import rasterio

    from testdata import FTW

    with rasterio.open(FTW) as src:
        img, crs, transform = src.read(), src.crs, src.transform
    img[:, 100:130, 50:90] = 0
    image = write_raster(tmp_path / "img.tif", img, crs, transform, descriptions=("R", "G", "B", "NIR"))
    codes = _cdl(img.shape[1:], crop)
    codes[100:130, 50:90] = 121  # labelled where the image has no data: never counted
    labels = write_raster(tmp_path / "cdl.tif", codes, crs, transform, nodata=0)
    return {"kind": "local", "image": str(image), "labels": str(labels), "label_map": "cdl", "title": "own",
            "band_map": None}, codes, img


def test_quality_page_with_labels_without_crop(fake_map, tiny_model_path, tmp_path):
    """Labels without crop: the curve's undefined recall (None) neither breaks the page nor shows as 0; the
    false crop scores IoU and F1 0."""
    at = new_app()
    at.session_state["source"], _, _ = _own_scene(tmp_path, crop=False)
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    shown = {m.label: m.value for m in at.metric}
    assert shown["Recall"] == "n/a" and shown["F1"] == shown["IoU"] == "0.000"
    assert not [c for c in at.caption if c.value.startswith("Best F1")]


def test_data_page_counts_labels_only_where_the_image_has_data(fake_map, tmp_path):
    """Labels under the image's no data (1,200 px of Developed/Open Space here) were counted in the crop
    fraction (48.5% instead of 49.2%) and the class table (121 Developed/Open Space at 12.0 ha instead of
    none), unlike the Quality page."""
    at = new_app()
    at.session_state["source"], codes, img = _own_scene(tmp_path, crop=True)
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    valid = (img != 0).all(axis=0)
    ok = valid & (codes != 0)
    crop = int((ok & (codes == 1)).sum())
    shown = {m.label: m.value for m in at.metric}
    assert shown["Valid pixels"] == f"{int(valid.sum()):,}"
    assert shown["Crop share (labels)"] == f"{crop / ok.sum():.1%}"
    assert any(c.value.startswith(f"{crop:,} crop / {int(ok.sum()) - crop:,} not crop / {codes.size - int(ok.sum()):,} pixels without a label")
               for c in at.caption)
    table = at.dataframe[0].value
    assert not table["class"].str.startswith("121 ").any()  # only where the image has no data
    areas = dict(zip(table["class"].str.split(" ").str[0], table["area"]))
    assert areas["1"] == f"{(ok & (codes == 1)).sum() * 0.01:,.1f} ha" and areas["176"] == f"{(ok & (codes == 176)).sum() * 0.01:,.1f} ha"
