"""One prediction, one set of figures: the Predict and Quality pages, the dashboard's downloads (GeoTIFFs,
summary JSON, map PNG, crop areas GeoJSON), ``python -m core predict`` / ``evaluate`` / ``zones`` and the
threshold curve give the same crop area, scores and no data for the same image, region, model and threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import rasterio.io

from apptest import new_app, predicted_fields, texts
from testdata import FTW, SAMPLE_LABELS, feature_collection, write_raster


def _downloads(monkeypatch) -> dict:
    """file name -> what its download button calls (the files are made when clicked)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    deferred = {}
    real = MediaFileManager.add_deferred
    monkeypatch.setattr(MediaFileManager, "add_deferred", lambda self, fn, mime, coords, file_name=None:
                        deferred.__setitem__(file_name, fn) or real(self, fn, mime, coords, file_name))
    return deferred


def _subtitles(monkeypatch) -> list:
    """The map PNG's figures line (compose_png's subtitle), as each PNG is made."""
    import core.downloads

    said, real = [], core.downloads.compose_png
    monkeypatch.setattr(core.downloads, "compose_png", lambda *a, **k: said.append(k["subtitle"]) or real(*a, **k))
    return said


def _tif(data: bytes) -> tuple[np.ndarray, dict]:
    with rasterio.io.MemoryFile(data) as mem, mem.open() as src:
        return src.read(1), src.tags()


def _read(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def _shown(at) -> dict:
    return {m.label: m.value for m in at.metric}


def _matrix(at) -> tuple[int, int, int, int]:
    cm = at.table[0].value.map(lambda v: int(str(v).replace(",", "")))
    return (int(cm.loc["predicted crop", "label: crop"]), int(cm.loc["predicted crop", "label: not crop"]),
            int(cm.loc["predicted not crop", "label: crop"]), int(cm.loc["predicted not crop", "label: not crop"]))


def _scores_shown(conf) -> dict:
    """Precision, recall, F1, IoU and accuracy as the Quality page shows them."""
    from pages.components.parts import score_text

    return {"IoU": score_text(conf["iou"]), "F1": score_text(conf["f1"]), "Precision": score_text(conf["precision"]),
            "Recall": score_text(conf["recall"]), "Accuracy": f"{conf['accuracy']:.3f}"}


def _ftw_source(tmp_path) -> tuple[dict, object]:
    """The FTW window (UTM, 10 m) with a block of image no data, and CDL labels on its grid: corn in the west,
    grassland in the east, a band of label no data (0) across rows 200-209 and Developed (121) under the
    image's no data. Returns the source and the image's transform."""
    with rasterio.open(FTW) as src:
        img, crs, transform = src.read(), src.crs, src.transform
    img[:, 100:130, 50:90] = 0
    image = write_raster(tmp_path / "img.tif", img, crs, transform, descriptions=("R", "G", "B", "NIR"))
    codes = np.full(img.shape[1:], 176, np.uint8)
    codes[:, :144] = 1
    codes[200:210] = 0
    codes[100:130, 50:90] = 121
    labels = write_raster(tmp_path / "cdl.tif", codes, crs, transform, nodata=0)
    return ({"kind": "local", "image": str(image), "labels": str(labels), "label_map": "cdl", "title": "own",
             "band_map": None}, transform)


def _lonlat_box(transform, r0: float, c0: float, r1: float, c1: float) -> list:
    """A GeoJSON ring in lon/lat of the FTW window's pixel box (rows r0-r1, columns c0-c1)."""
    from rasterio.warp import transform as warp

    xs = [transform.c + c * transform.a for c in (c0, c1, c1, c0)]
    ys = [transform.f + r * transform.e for r in (r0, r0, r1, r1)]
    lon, lat = warp("EPSG:32633", "EPSG:4326", xs, ys)
    ring = [[x, y] for x, y in zip(lon, lat)]
    return [ring + [ring[0]]]


def _ftw_parts(tmp_path):
    """The app after Predict on the FTW source, with a region of two fields that do not overlap: "a" over part
    of the image's no data, "b" over the labels' band of no data."""
    from core.region import Region

    source, transform = _ftw_source(tmp_path)
    parts = feature_collection(({"name": "a"}, _lonlat_box(transform, 40.2, 30.3, 120.4, 130.6)),
                               ({"name": "b"}, _lonlat_box(transform, 150.3, 100.2, 240.5, 220.7)))
    at = new_app()
    at.session_state["source"] = source
    at.session_state["region"] = Region.from_geojson(parts).to_geojson()
    return at, source


def _predict(at, model_path) -> None:
    at.session_state["model_path"] = str(model_path)
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()  # Predict
    assert not at.exception and not at.error, [e.value for e in at.error]


# ---------------------------------------------------------------------- disagreements
def test_quality_parts_count_predicted_crop_over_the_pixels_the_region_line_counts(fake_map, tiny_model_path, tmp_path):
    """The Quality page's region line gives the predicted crop over the pixels valid in both the prediction and
    the labels, beside the labels' crop over the same pixels; its table of parts gave each part's predicted crop
    over all its pixels with image data (labels' no data included) beside the labels' crop over the pixels valid
    in both: part "b" (a band of label no data) showed more predicted crop than the labels over other pixels, and
    the parts, which tile the region, did not add up to the region's line."""
    from core.metrics import format_area
    from core.predict import threshold_mask
    from core.raster import read_image
    from core.region import Region
    from core.zones import zone_pixels
    from pages.components import cached

    at, _ = _ftw_parts(tmp_path)
    _predict(at, tiny_model_path)
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    sc = at.session_state["scene"]
    grid = read_image(sc["image_path"])[2]
    key = cached.prediction_key(sc["image_path"], Region.from_geojson(at.session_state["region"]).key(),
                                str(tiny_model_path), 1)
    mask = threshold_mask(cached.cached_probability(key), at.slider[0].value)
    labels = cached.label_mask(sc["labels_path"], cached.mtime(sc["labels_path"]), sc["label_map"])
    both = (mask != 255) & (labels != 255)
    table = at.dataframe[-1].value
    assert list(table["part"]) == ["a", "b"]
    predicted = []
    for (name, w, inside), shown in zip(zone_pixels(grid, Region.from_geojson(at.session_state["region"]).part_regions()),
                                        table["predicted crop"]):
        sub = (slice(w.row_off, w.row_off + w.height), slice(w.col_off, w.col_off + w.width))
        n = int((inside & both[sub] & (mask[sub] == 1)).sum())
        predicted.append(n)
        assert shown == format_area(n * grid.pixel_area_ha()), (name, shown, n)
    [line] = [m.value for m in at.markdown if m.value.startswith("**Crop area**")]
    assert line.startswith(f"**Crop area** predicted {format_area(sum(predicted) * grid.pixel_area_ha())},")


def test_zones_on_the_dashboards_downloaded_crop_mask_count_the_pages_parts(fake_map, tiny_model_path, monkeypatch,
                                                                            tmp_path):
    """A region of two fields of the sample (no CRS), away from the image's corner: ``python -m core zones`` on
    the crop mask and summary downloaded from the Predict page (saved under the names the page gives them,
    crop_mask_t0.50.tif and summary_t0.50.json) with the region's GeoJSON downloaded from the Region page placed
    the fields at the mask's corner, not where the mask lies in the image: other pixels, other figures (zones
    looks only for a file named summary.json, although the mask's own SOURCE tag names its rows and columns)."""
    from core.zones import write_zones

    deferred = _downloads(monkeypatch)
    at = predicted_fields(tiny_model_path, [("west", 20, 110), ("east", 110, 220)], (30, 150))
    assert not at.exception and not at.error
    summary = json.loads(deferred["summary_t0.50.json"]())
    assert summary["window"]["row"] == 30 and summary["window"]["col"] == 20
    shown = [(p["name"], p["crop_pixels"], p["valid_pixels"]) for p in summary["parts"]]
    table = at.dataframe[0].value
    assert [(n, f"{c:,} px", f"{v:,} px") for n, c, v in shown] == list(zip(table["part"], table["predicted crop"],
                                                                            table["with data"]))
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "crop_mask_t0.50.tif").write_bytes(deferred["crop_mask_t0.50.tif"]())
    (folder / "summary_t0.50.json").write_text(deferred["summary_t0.50.json"]())
    (tmp_path / "region.geojson").write_text(json.dumps(at.session_state["region"]))
    found = write_zones(folder / "crop_mask_t0.50.tif", tmp_path / "region.geojson")
    assert [(z["name"], z["crop_pixels"], z["valid_pixels"]) for z in found["zones"]] == shown, found


# ---------------------------------------------------------------------- agreements
def test_a_sample_region_s_figures_are_the_same_on_the_pages_in_the_downloads_and_from_the_cli(
        fake_map, tiny_model_path, monkeypatch, tmp_path):
    """A triangle of the sample (no CRS, pixels with no data around it): the Predict page's crop pixels, share and
    area at the stated 30 m pixels are those of the summary JSON, the map PNG's line, the crop mask and
    probability GeoTIFFs, and of ``python -m core predict`` on the region's scene (the same files, to the
    pixel); the Quality page's matrix, scores and area line are ``python -m core evaluate``'s on the downloaded
    mask and the sample's own labels, and the threshold curve's point at 0.50."""
    from core.__main__ import main
    from core.evaluate import evaluate_files
    from core.metrics import Confusion, nominal_area
    from pages.components import cached

    deferred, said = _downloads(monkeypatch), _subtitles(monkeypatch)
    at = new_app()
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"}, "geometry": {
        "type": "Polygon", "coordinates": [[[200, 300], [470, 300], [200, 560], [200, 300]]]}}
    _predict(at, tiny_model_path)
    summary = json.loads(deferred["summary_t0.50.json"]())
    crop, valid = summary["crop_pixels"], summary["valid_pixels"]
    assert 0 < crop < valid < summary["pixels"] and summary["crop_area_ha"] is None and summary["threshold"] == 0.5
    assert _shown(at) == {"Crop area": f"{crop:,} px", "Crop share of valid pixels": f"{crop / valid:.1%}"}
    ground = nominal_area(crop, 30.0)
    assert f"{crop:,} of {valid:,} valid pixels at threshold 0.50" in texts(at) and f"; {ground} (the image" in texts(at)
    mask, tags = _tif(deferred["crop_mask_t0.50.tif"]())
    stored, _ = _tif(deferred["probability.tif"]())
    assert int((mask == 1).sum()) == crop and int((mask != 255).sum()) == valid and tags["THRESHOLD"] == "0.5"
    assert np.array_equal(mask, np.where(stored == 255, 255, stored >= 50))
    deferred["crop_map_t0.50.png"]()
    assert said[-1].startswith(f"Crop {crop:,} px ({ground}), {crop / valid:.1%} of {valid:,} valid pixels.")
    # the command line on the region's scene (its context around it, as the dashboard): the same files and figures
    scene = at.session_state["scene"]
    assert main(["predict", "--image", scene["image_path"], "--model", str(tiny_model_path), "--out",
                 str(tmp_path / "cli")]) == 0
    cli = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert {k: cli[k] for k in ("pixels", "valid_pixels", "crop_pixels", "crop_fraction", "crop_area_ha", "threshold")} \
        == {k: summary[k] for k in ("pixels", "valid_pixels", "crop_pixels", "crop_fraction", "crop_area_ha", "threshold")}
    assert np.array_equal(_read(tmp_path / "cli" / "crop_mask.tif"), mask)
    assert np.array_equal(_read(tmp_path / "cli" / "probability.tif"), stored)
    # scored: the Quality page, evaluate on the downloaded mask and the sample's labels, the curve
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "crop_mask.tif").write_bytes(deferred["crop_mask_t0.50.tif"]())
    res = evaluate_files(tmp_path / "dl" / "crop_mask.tif", SAMPLE_LABELS, "cdl")
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    (tn, fp), (fn, tp) = res["confusion_matrix"]["matrix"]
    assert _matrix(at) == (tp, fp, fn, tn) and tp + fp <= crop and tp + fp + fn + tn <= valid
    assert _shown(at) == _scores_shown(res)
    area = res["crop_area"]
    [line] = [m.value for m in at.markdown if m.value.startswith("**Crop area**")]
    assert line.startswith(f"**Crop area** predicted {area['predicted_pixels']:,} px "
                           f"({nominal_area(area['predicted_pixels'], 30.0)}), in the labels "
                           f"{area['labelled_pixels']:,} px")
    key = deferred["probability.tif"].args[0]
    lkey = (scene["labels_path"], cached.mtime(scene["labels_path"]), scene["label_map"])
    [row] = [r for r in cached.threshold_curve(key, *lkey) if r["threshold"] == 0.5]
    c = Confusion(tp, fp, fn, tn)
    assert {k: row[k] for k in ("precision", "recall", "f1", "iou", "accuracy")} == {**c.scores(), "accuracy": c.accuracy}


def _percent(t: float) -> int:
    """The whole percent a threshold cuts at, from its decimal digits (a pixel is crop at or above it)."""
    from decimal import ROUND_CEILING, Decimal

    return int((Decimal(repr(t)) * 100).to_integral_value(ROUND_CEILING))


def test_every_threshold_step_cuts_the_stored_percent_alike_on_pages_files_curve_and_cli(
        fake_map, tiny_model_path, monkeypatch, tmp_path):
    """On a georeferenced image with no data in the image and in the labels: at every step of the slider, the
    Predict page's crop figures and the Quality page's counts are those of the stored probability at or above
    the threshold's percent, as is the threshold curve's point; at some steps on the pages themselves the
    hectares of the page, the summary JSON and the map PNG, the downloaded crop mask and ``evaluate`` on it
    agree; ``python -m core predict`` at 0.0, 1.0 and thresholds between two percents (0.005, 0.555) writes the
    mask of its probability.tif at or above the next whole percent, scored as the curve scores it there."""
    from core.__main__ import main
    from core.evaluate import evaluate_files
    from core.metrics import Confusion, format_area, threshold_curve
    from core.region import Region
    from pages.components import cached

    deferred, said = _downloads(monkeypatch), _subtitles(monkeypatch)
    source, transform = _ftw_source(tmp_path)
    at = new_app()
    at.session_state["source"] = source
    at.session_state["region"] = Region.from_geojson(feature_collection(
        ({"name": "field"}, _lonlat_box(transform, 60.5, 20.5, 250.5, 270.5)))).to_geojson()
    _predict(at, tiny_model_path)
    scene = at.session_state["scene"]
    key = deferred["probability.tif"].args[0]
    stored, _ = _tif(deferred["probability.tif"]())
    lkey = (scene["labels_path"], cached.mtime(scene["labels_path"]), scene["label_map"])
    labels = cached.label_mask(*lkey)
    both = (stored != 255) & (labels != 255)
    assert (stored == 255).any() and ((labels == 255) & (stored != 255)).any()  # no data in each
    curve = {r["threshold"]: r for r in cached.threshold_curve(key, *lkey)}
    steps = [round(0.05 + 0.01 * i, 2) for i in range(91)]
    assert list(curve) == steps
    for t in steps:
        crop = (stored != 255) & (stored >= _percent(t))
        stats = cached.crop_stats(key, t)
        assert (stats["crop_pixels"], stats["valid_pixels"]) == (int(crop.sum()), int((stored != 255).sum())), t
        y = labels == 1
        c = Confusion(int((crop & both & y).sum()), int((crop & both & ~y).sum()), int((~crop & both & y).sum()),
                      int((~crop & both & ~y).sum()))
        conf = cached.confusion(key, *lkey, t)
        assert (conf["tp"], conf["fp"], conf["fn"], conf["tn"]) == (c.tp, c.fp, c.fn, c.tn), t
        assert {k: curve[t][k] for k in ("precision", "recall", "f1", "iou")} == c.scores(), t
    at.switch_page("pages/quality.py").run()
    for t in (0.05, 0.37, 0.95):
        at.switch_page("pages/predict.py").run()
        at.slider(key="w_threshold").set_value(t).run()
        assert not at.exception and not at.error
        tag = f"t{t:.2f}"
        summary = json.loads(deferred[f"summary_{tag}.json"]())
        area = format_area(summary["crop_area_ha"])
        assert summary["crop_area_ha"] == pytest.approx(summary["crop_pixels"] * 0.01, abs=1e-9)
        assert _shown(at) == {"Crop area": area, "Crop share of valid pixels": f"{summary['crop_fraction']:.1%}"}
        mask, _ = _tif(deferred[f"crop_mask_{tag}.tif"]())
        assert np.array_equal(mask, np.where(stored == 255, 255, stored >= _percent(t))), t
        deferred[f"crop_map_{tag}.png"]()
        assert said[-1].startswith(f"Crop {area}, {summary['crop_fraction']:.1%} of the {summary['valid_pixels']:,} "
                                   "valid pixels. EPSG:32633, 10 m pixels.")
        (tmp_path / tag).mkdir()
        (tmp_path / tag / "crop_mask.tif").write_bytes(deferred[f"crop_mask_{tag}.tif"]())
        res = evaluate_files(tmp_path / tag / "crop_mask.tif", source["labels"], "cdl")
        at.switch_page("pages/quality.py").run()
        assert not at.exception and not at.error and at.slider[0].value == pytest.approx(t)
        (tn, fp), (fn, tp) = res["confusion_matrix"]["matrix"]
        assert _matrix(at) == (tp, fp, fn, tn) and _shown(at) == _scores_shown(res), t
        assert {k: curve[t][k] for k in ("precision", "recall", "f1", "iou")} == Confusion(tp, fp, fn, tn).scores()
        [line] = [m.value for m in at.markdown if m.value.startswith("**Crop area**")]
        assert line.startswith(f"**Crop area** predicted {format_area(res['crop_area']['predicted_ha'])}, in the "
                               f"labels {format_area(res['crop_area']['labelled_ha'])}")
    # the command line, at thresholds the slider does not take
    prob = cached.cached_probability(key)
    for t in (0.0, 0.005, 0.555, 1.0):
        out = tmp_path / f"cli{t}"
        assert main(["predict", "--image", scene["image_path"], "--model", str(tiny_model_path), "--out", str(out),
                     "--threshold", str(t)]) == 0
        written, probability = _read(out / "crop_mask.tif"), _read(out / "probability.tif")
        assert np.array_equal(probability, stored)
        assert np.array_equal(written, np.where(stored == 255, 255, stored >= _percent(t))), t
        assert json.loads((out / "summary.json").read_text())["crop_pixels"] == int((written == 1).sum())
        res = evaluate_files(out / "crop_mask.tif", source["labels"], "cdl")
        [row] = threshold_curve(prob, labels, [t])
        assert {k: row[k] for k in ("precision", "recall", "f1", "iou", "accuracy")} == \
            {k: res[k] for k in ("precision", "recall", "f1", "iou", "accuracy")}, t


def test_a_georeferenced_region_s_parts_are_counted_alike_on_the_pages_in_the_files_and_by_zones(
        fake_map, tiny_model_path, monkeypatch, tmp_path):
    """Two lon/lat fields on the UTM image: the Predict page's table of parts is the summary JSON's parts and
    ``python -m core zones`` on the downloaded crop mask with the region's GeoJSON; the Quality page's IoU and F1
    of each part are ``zones --labels``'; the crop areas GeoJSON holds the crop pixels in groups of 4 or more,
    each at 0.01 ha, as ``python -m core fields`` traces the downloaded mask."""
    from core.fields import MIN_FIELD_PIXELS, write_fields
    from core.metrics import format_area
    from core.zones import write_zones
    from pages.components import cached
    from pages.components.parts import score_text

    deferred = _downloads(monkeypatch)
    at, source = _ftw_parts(tmp_path)
    _predict(at, tiny_model_path)
    summary = json.loads(deferred["summary_t0.50.json"]())
    table = at.dataframe[0].value
    parts = summary["parts"]
    assert list(table["part"]) == [p["name"] for p in parts] == ["a", "b"]
    assert list(table["predicted crop"]) == [format_area(p["crop_area_ha"]) for p in parts]
    assert list(table["with data"]) == [format_area(p["valid_area_ha"]) for p in parts]
    assert list(table["crop share"]) == [f"{p['crop_fraction']:.1%}" for p in parts]
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "crop_mask.tif").write_bytes(deferred["crop_mask_t0.50.tif"]())
    (tmp_path / "region.geojson").write_text(json.dumps(at.session_state["region"]))
    zones = write_zones(tmp_path / "dl" / "crop_mask.tif", tmp_path / "region.geojson")["zones"]
    assert [{k: z[k] for k in ("name", "pixels", "valid_pixels", "crop_pixels", "crop_area_ha", "valid_area_ha")}
            for z in zones] == [{k: p[k] for k in ("name", "pixels", "valid_pixels", "crop_pixels", "crop_area_ha",
                                                   "valid_area_ha")} for p in parts]
    # the crop areas GeoJSON, and the command line's of the same mask
    [b] = [b for b in at.button if b.label == "Crop areas GeoJSON"]
    b.click().run()
    assert not at.exception and not at.error
    mask, _ = _tif(deferred["crop_mask_t0.50.tif"]())
    cli = write_fields(tmp_path / "dl" / "crop_mask.tif", tmp_path / "fields.geojson")
    kept = cli["pixels"]
    assert kept + cli["left_out_pixels"] == int((mask == 1).sum()) == summary["crop_pixels"] and 0 < kept
    assert f"{format_area(kept * 0.01)} in all; groups under {MIN_FIELD_PIXELS} crop pixels are left out." in texts(at)
    data, n, area = cached.crop_fields(deferred["probability.tif"].args[0], 0.5)
    traced = json.loads((tmp_path / "fields.geojson").read_text())["features"]
    assert json.loads(data)["features"] == traced and n == cli["fields"] and area == pytest.approx(kept * 0.01)
    # the Quality page's agreement by part, as zones against the labels
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    scored = write_zones(tmp_path / "dl" / "crop_mask.tif", tmp_path / "region.geojson", labels_path=source["labels"],
                         label_map="cdl")["zones"]
    table = at.dataframe[-1].value
    assert list(table["IoU"]) == [score_text(z["iou"]) for z in scored]
    assert list(table["F1"]) == [score_text(z["f1"]) for z in scored]
    assert list(table["crop in the labels"]) == [format_area(z["label_crop_area_ha"]) for z in scored]
