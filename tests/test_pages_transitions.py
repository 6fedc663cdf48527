"""Dashboard state transitions driven with AppTest: what the pages show after the user (or the
machine) changes something under an earlier step (a model deleted, a source without labels, ...).

Helpers come from apptest.py, the fake map from conftest.py.
"""

from __future__ import annotations

import shutil

import pytest

from apptest import SQUARE_300, by_label, new_app, own_image_app, predict_page


def _copy_model(src, dst_dir):
    dst = dst_dir / "model.keras"
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def test_a_deleted_model_is_said_to_be_gone_not_out_of_date(fake_map, tiny_model_path, tmp_path):
    """The model in use deleted from disk after predicting (a cleaned work folder): Predict and
    Quality say it is gone and send to the Model page; Quality said 'out of date (the model
    changed): predict again', and Predict offered a Predict button that could only fail."""
    model = _copy_model(tiny_model_path, tmp_path)
    at = predict_page(model)
    at.button[0].click().run()
    assert not at.exception and not at.error
    model.unlink()
    for page in ("pages/predict.py", "pages/quality.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        told = " ".join(i.value for i in at.info)
        assert "model in use is no longer on disk (model.keras missing" in told and "out of date" not in told, (page, told)
        assert not [b for b in at.button if b.label == "Predict"], page
        assert [link for link in at.get("page_link") if link.proto.page == "model"], page
        assert not at.error, (page, [e.value for e in at.error])
        # the sidebar says so too (it named the file as if it were still there)
        assert "Model: model.keras (no longer on disk" in " ".join(c.value for c in at.sidebar.caption), page


def test_quality_says_an_image_without_labels_has_nothing_to_check_before_any_prediction(fake_map, tiny_model_path):
    """An own image without labels: Quality says so at once (it said 'Run a prediction first', and
    only after predicting that there were no labels to check it against)."""
    at = own_image_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    told = " ".join(i.value for i in at.info)
    assert "no labels" in told and "Run a prediction first" not in told, told
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.metric
    assert "no labels" in " ".join(i.value for i in at.info)


def test_quality_says_a_region_without_labels_has_nothing_to_check_before_any_prediction(fake_map, tiny_model_path,
                                                                                           small_scene, tmp_path):
    """Labels of a few surveyed fields, a region drawn between them: Quality said 'Run a prediction first', and
    once the prediction was made, an error ('No pixel is valid in both the prediction and the labels') with no
    way on. It now says at once that the labels hold no class there, and where to fix it, as the Data page does."""
    from core.region import Region
    from testdata import surveyed_labels

    image, labels = small_scene
    fields = surveyed_labels(labels, tmp_path / "fields_cdl.tif")
    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(image), "labels": str(fields), "label_map": "cdl",
                                  "title": "fields", "band_map": None}
    at.session_state["model_path"] = str(tiny_model_path)
    at.session_state["region"] = Region.from_bbox(80, 200, 140, 260, crs="image").to_geojson()  # (no field there)
    said = ("The labels hold no class where this region's image has data, so there is nothing to check a "
            "prediction against here: the labels file has no label over this region: draw the region over the "
            "labelled area (Region page), or upload labels that cover it.")
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    assert [i.value for i in at.info if "labels" in i.value or "prediction" in i.value] == [said]
    assert [link for link in at.get("page_link") if link.proto.label == "Go to the Region page"]
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()  # (predicted all the same: the model's map, without labels to score it)
    assert not at.exception and not at.error and "Crop area" in [m.label for m in at.metric]
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error and not at.metric
    assert said in [i.value for i in at.info]
    # a region over a surveyed field: scored
    at.session_state["region"] = Region.from_bbox(0, 0, 40, 40, crs="image").to_geojson()
    at.session_state["scene"] = at.session_state["prediction"] = None
    at.run()
    assert not at.exception and not at.error and said not in [i.value for i in at.info]
    assert any(i.value.startswith("Run a prediction first") for i in at.info)


def test_a_deleted_job_folder_is_not_followed_forever(fake_map):
    """The training job this session followed is deleted (its folder removed to free space, a
    cleaned work folder): the Model page and the sidebar no longer show it; they showed 'no job in
    .../job-a' as an error on every visit, until another training was started. Another session's
    finished job is not taken for this session's."""
    import os
    from pathlib import Path

    from core import jobs
    from test_jobs import wait_for

    root = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs"
    for name in ("job-a", "job-b"):
        jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0}, root / name, note=name)
        wait_for(root / name, ("done",))
    at = new_app()
    at.session_state["job_dir"] = str(root / "job-a")  # this session started job-a (job-b is another's)
    at.switch_page("pages/model.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "job-a" in " ".join(c.value for c in at.caption) and "job-b" not in " ".join(c.value for c in at.caption)
    shutil.rmtree(root / "job-a")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["job_dir"] is None and "No training job in this session yet." in [c.value for c in at.caption]
    at.switch_page("pages/region.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not [c for c in at.caption if c.value.startswith("Training:")]


def test_data_page_does_not_call_labels_it_cannot_read_missing(fake_map):
    """The region's labels file gone from the work folder (a cleaner that removes old files one by
    one): the Data page shows the error, and no longer adds 'No labels for this source: the Quality page
    needs labels' under it, as if the source had none."""
    from pathlib import Path

    at = new_app()
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    Path(at.session_state["scene"]["labels_path"]).unlink()
    at.run()
    assert not at.exception
    assert any("labels.tif" in e.value for e in at.error)
    assert not [c for c in at.caption if c.value.startswith("No labels for this source")]


def test_a_new_source_starts_at_the_default_threshold(fake_map):
    """A threshold tuned on one image's labels (Quality's "Use threshold ...") did not follow the user,
    unsaid, to another image."""
    at = own_image_app()
    at.session_state["threshold"] = 0.45
    at.run()
    assert at.session_state["threshold"] == 0.45  # kept while the source stays
    next(b for b in at.button if b.label == "Sample scene (whole image)").click().run()
    assert not at.exception
    assert at.session_state["source"] == {"kind": "sample"} and at.session_state["threshold"] == 0.5



def test_the_sample_preset_pressed_on_the_sample_keeps_the_threshold_and_the_way_back(fake_map):
    """On the sample already, its preset button goes back to the whole image as Reset does: it set
    the threshold back to 0.50 and dropped the way back to the drawn region, unsaid."""
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.session_state["threshold"] = 0.65
    at.run()
    next(b for b in at.button if b.label == "Sample scene (whole image)").click().run()
    assert not at.exception
    assert at.session_state["region"] is None and at.session_state["threshold"] == 0.65
    assert at.session_state["previous_region"] == [SQUARE_300]


#: a region beyond the sample image's 1024 x 1024 px
OUTSIDE_THE_SAMPLE = {"type": "Feature", "properties": {"crs": "image"},
                      "geometry": {"type": "Polygon",
                                   "coordinates": [[[2000, 2000], [2400, 2000], [2400, 2400], [2000, 2000]]]}}


def test_quality_without_a_prediction_says_first_that_the_region_cannot_be_used(fake_map, tiny_model_path):
    """It said 'Run a prediction first ... (a new region, image or model, or a browser reload, starts
    over)' and sent the user to Predict, which only showed the region's error."""
    at = new_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.session_state["region"] = OUTSIDE_THE_SAMPLE
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    assert any("outside the image" in e.value for e in at.error)
    assert not any("Run a prediction first" in i.value for i in at.info)
    at.session_state["region"] = None  # a usable region: then the missing prediction is what to fix
    at.run()
    told = " ".join(i.value for i in at.info)
    assert "Run a prediction first" in told and "reload" not in told


def test_predict_without_a_model_says_first_that_the_region_cannot_be_used(fake_map):
    """No model yet and a region outside the image: the region's error came second, after 'Load a
    model first', though it is what has to be fixed before anything can be predicted."""
    at = new_app()
    at.session_state["region"] = OUTSIDE_THE_SAMPLE
    at.switch_page("pages/predict.py").run()
    assert not at.exception
    assert any("outside the image" in e.value for e in at.error)
    assert not any("Load a model first" in i.value for i in at.info)


def test_quality_warns_that_a_model_trained_on_this_region_is_scored_on_its_training_pixels(fake_map, tiny_model_path,
                                                                                             tmp_path):
    """A model trained on the region (all but a held-out block) scored IoU 0.71 on Quality with no
    word that three quarters of those pixels were its training pixels."""
    import json

    at = predict_page(tiny_model_path)
    image = at.session_state["scene"]["image_path"]
    job = tmp_path / "job-20261201-214012-ab12cd"  # as core.jobs.new_job_dir names it
    (job / "train").mkdir(parents=True)
    shutil.copy(tiny_model_path, job / "train" / "best.keras")
    card = json.loads(tiny_model_path.with_suffix(".json").read_text())
    card["metrics"] = {"val": {"val_loss": 0.4, "epoch": 8}}  # as a job's best checkpoint has it
    (job / "train" / "best.json").write_text(json.dumps(card))
    (job / "job.json").write_text(json.dumps({"kind": "train", "params": {"trained_on": image},
                                              "note": "Validated on the held-out columns 192-255. Resumed from the "
                                                      "training of 2026-12-01 21:30."}))
    at.session_state["model_path"] = str(job / "train" / "best.keras")
    at.run()
    at.button[0].click().run()  # Predict with it
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    warned = [w.value for w in at.warning if "trained on this region's pixels" in w.value]
    assert len(warned) == 1 and "held-out columns 192-255" in warned[0]
    assert "Resumed" not in warned[0]  # (a resumed run's note: nothing to do with the figures)
    assert warned[0].endswith("The training's validation figures (Model page) are the honest ones.")
    # a region too small to hold a block out: its validation was on its training pixels, and the warning said
    # that, then called those figures "the honest ones"
    from core.dataset import SAME_PIXELS_NOTE

    job_spec = json.loads((job / "job.json").read_text())
    (job / "job.json").write_text(json.dumps({**job_spec, "note": f"{SAME_PIXELS_NOTE} (the region is too small to "
                                                                   "hold out a 256 px block): a quick check."}))
    at.run()
    [same] = [w.value for w in at.warning if "trained on this region's pixels" in w.value]
    assert "honest" not in same and same.endswith("Its validation figures flatter it too: compare models on pixels "
                                                  "none of them was trained on.")
    (job / "job.json").write_text(json.dumps(job_spec))
    at.run()
    # which training made it (every training leaves a best.keras), here and in the sidebar
    assert any(c.value == "Prediction by best.keras (training of 2026-12-01 21:40, epoch 8)." for c in at.caption)
    assert "Model: best.keras (training of 2026-12-01 21:40, epoch 8)" in " ".join(c.value for c in at.sidebar.caption)
    # fine-tuned from a model trained on this image (here the shipped one, on the sample, one of its training
    # blocks), the held-out block was no held-out block for it: its validation figures flatter it too (a
    # fine-tune of the shipped weights on the sample showed IoU 0.856 against the card's 0.791, as honest)
    from core.card import DEFAULT_MODEL_PATH

    tuned = tmp_path / "job-20261201-220500-ef34ab"
    shutil.copytree(job / "train", tuned / "train")
    (tuned / "job.json").write_text(json.dumps({"kind": "train", "params": {
        "trained_on": image, "config": {"init_model": str(DEFAULT_MODEL_PATH)}}, "note": "Validated on columns 192-255."}))
    at.session_state["model_path"] = str(tuned / "train" / "best.keras")
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    warned = [w.value for w in at.warning if "trained on this region's pixels" in w.value]
    assert len(warned) == 1 and "fine-tuned from crop_unet_light.keras, which was trained on this image too" in warned[0]
    assert "are the honest ones" not in warned[0]
    # and so from a training on this region
    (tuned / "job.json").write_text(json.dumps({"kind": "train", "params": {
        "trained_on": image, "config": {"init_model": str(job / "train" / "best.keras")}}}))
    at.run()
    warned = [w.value for w in at.warning if "trained on this region's pixels" in w.value]
    assert "fine-tuned from best.keras (training of 2026-12-01 21:40, epoch 8), which was trained" in warned[0]
    # trained on another image, from a model that saw this one: its figures here flatter it too
    (tuned / "job.json").write_text(json.dumps({"kind": "train", "params": {
        "trained_on": str(tmp_path / "elsewhere.tif"), "config": {"init_model": str(DEFAULT_MODEL_PATH)}}}))
    at.run()
    assert [w.value for w in at.warning if w.value.startswith(
        "This model was fine-tuned from crop_unet_light.keras, which was trained on this image: its figures here "
        "flatter it.")]
    at.session_state["model_path"] = str(tiny_model_path)  # a model trained elsewhere: nothing to say
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert "Precision" in [m.label for m in at.metric]
    assert not [w for w in at.warning if "trained on this region's pixels" in w.value]


def test_quality_warns_of_a_model_trained_on_another_region_overlapping_this_one(fake_map, tiny_model_path, tmp_path):
    """A model trained on one region, scored on another that overlaps it (the whole image, a redrawn
    outline): the warning looked for the same scene file only, and said nothing of a third of the scored
    pixels being training pixels."""
    import json

    from core.region import Region
    from core.sources.local import LocalSource

    trained = LocalSource.sample().fetch(Region.from_bbox(128, 0, 384, 256, crs="image"), tmp_path / "scene")
    job = tmp_path / "job-20261201-214012-ab12cd"
    (job / "train").mkdir(parents=True)
    shutil.copy(tiny_model_path, job / "train" / "best.keras")
    shutil.copy(tiny_model_path.with_suffix(".json"), job / "train" / "best.json")
    (job / "job.json").write_text(json.dumps({"kind": "train", "params": {"trained_on": str(trained.image_path)}}))
    at = predict_page(job / "train" / "best.keras")  # the region: columns 0-255, rows 0-255
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    assert [w.value for w in at.warning if w.value.startswith(
        "This model was trained on pixels of this image that cover 50% of this region's box")], \
        [w.value for w in at.warning]
    # a region it does not overlap: nothing said
    far = LocalSource.sample().fetch(Region.from_bbox(600, 600, 700, 700, crs="image"), tmp_path / "far")
    (job / "job.json").write_text(json.dumps({"kind": "train", "params": {"trained_on": str(far.image_path)}}))
    at.run()
    assert not [w for w in at.warning if "trained on" in w.value]


def _map_path(at) -> tuple:
    """Where the map stands in the page's element tree (its delta path under the main area)."""
    def find(node, path):
        for i, child in getattr(node, "children", {}).items():
            if getattr(child, "type", "") == "markdown" and child.value == "MAP HERE":
                return (*path, i)
            if (found := find(child, (*path, i))) is not None:
                return found
        return None

    return find(at.main, ())


def test_the_maps_stay_in_place_when_the_caches_are_warm(fake_map, tiny_model_path, monkeypatch):
    """A map moved in the page's element tree is a new map to the browser, drawn anew: the first
    click on the Data map (which reruns the page) read nothing, as the cached reads' spinners of the
    first run ("Reading the image...") had stood before the map and were gone in the second."""
    import streamlit as st

    from pages.components import mapview, state

    def marking(m, **kwargs):  # the fake map, and an element where streamlit-folium's would be
        st.markdown("MAP HERE")
        return fake_map(m, **kwargs)

    monkeypatch.setattr(mapview, "_st_folium", marking)
    at = predict_page(tiny_model_path)  # (the caches are emptied by the fake map's fixture)
    at.button[0].click().run()
    for page, key in (("pages/region.py", "region_map_0"), ("pages/data.py", "data_map"),
                      ("pages/predict.py", "predict_map"), ("pages/quality.py", "quality_map")):
        st.cache_data.clear()
        st.cache_resource.clear()
        at.switch_page(page).run()
        first = _map_path(at)
        at.session_state[key] = {"last_clicked": {"lat": -10.5, "lng": 10.5}}
        at.run()
        assert not at.exception and first is not None, page
        assert _map_path(at) == first, page
    # nor when a prediction ends (the run of the Predict button) and the threshold then moves
    at.switch_page("pages/predict.py").run()
    at.selectbox(key="w_views").set_value(4).run()  # other views: predicts anew when pressed
    by_label(at.button, "Predict").click().run()
    first = _map_path(at)
    at.slider(key=state.widget_key(state.THRESHOLD)).set_value(0.3).run()
    assert not at.exception and first is not None and _map_path(at) == first


def test_an_image_across_the_180th_meridian_is_shown_and_used_whole(fake_map, tmp_path):
    """An image of eastern Fiji (UTM 60S) across 180 degrees (a block of the sample's reflectance on
    that grid): the map showed nothing (a 1 px transparent strip round the globe), and pixel areas
    measured across the meridian were 10^6 too large. Now: the image and the region's outline on
    the map past 180, hectares of 30 m pixels, and a region drawn on the image on that side used."""
    import rasterio
    from affine import Affine
    from rasterio.warp import transform
    from rasterio.windows import Window

    from testdata import SAMPLE_IMAGE, write_raster

    with rasterio.open(SAMPLE_IMAGE) as src:
        data, names = src.read(window=Window(0, 0, 300, 300)), src.descriptions
    x180, y = transform("EPSG:4326", "EPSG:32760", [180.0], [-16.8])
    image = write_raster(tmp_path / "fiji.tif", data, crs="EPSG:32760",
                         transform=Affine(30.0, 0.0, round(x180[0]) - 4500, 0.0, -30.0, round(y[0])), descriptions=names)
    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(image), "labels": None, "label_map": None,
                                  "title": image.name, "band_map": None}
    at.run()
    assert not at.exception and not at.error
    import folium

    m, _ = fake_map.maps[-1]
    [[(s, w), (n, e)]] = [c.bounds for c in m._children.values() if isinstance(c, folium.raster_layers.ImageOverlay)]
    assert -16.9 < s < n < -16.7 and 179.9 < w < 180 < e < 180.1  # the image's east past 180, as Leaflet shows it
    assert at.metric[0].value == "8,100 ha"  # 300 x 300 px of 0.09 ha
    # a rectangle drawn on its eastern side, where Leaflet reports longitudes past 180
    fake_map.value = {"all_drawings": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
        [[180.01, -16.85], [180.04, -16.85], [180.04, -16.82], [180.01, -16.82], [180.01, -16.85]]]}}]}
    at.run()
    assert not at.exception and not at.error
    assert at.session_state["region"]["geometry"]["coordinates"][0][0][0] == pytest.approx(-179.99)
    assert "Region OK" in " ".join(s.value for s in at.success)
    assert at.metric[0].value.endswith(" ha") and 800 < float(at.metric[0].value[:-3].replace(",", "")) < 1200


def test_what_to_train_on_is_kept_across_pages_before_a_training_starts(fake_map):
    """'Train on' changed to patches, then the Data page visited to cut some: back on the Model page the
    choice stands (it went back to the region's image, the last submitted choice)."""
    at = new_app()
    at.switch_page("pages/model.py").run()
    assert not at.exception
    by_label(at.radio, "Train on").set_value("patches").run()
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/model.py").run()
    assert not at.exception and by_label(at.radio, "Train on").value == "patches"


def test_labels_with_no_class_over_the_image_are_said_on_the_data_page(fake_map, tmp_path):
    """Labels all no data where the image has data (a product that does not cover the region or the
    year, as the CDL of 2007 outside the states it covered): said beside the figures, not a quiet
    "n/a" crop fraction that the Model and Quality pages only explain later."""
    import numpy as np

    from core.raster import grid_of_file, write_codes
    from testdata import FLANDERS_S2

    grid = grid_of_file(FLANDERS_S2)
    empty = write_codes(tmp_path / "labels.tif", np.zeros((grid.height, grid.width), np.int16), grid)
    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(FLANDERS_S2), "labels": str(empty),
                                  "label_map": "worldcereal", "title": FLANDERS_S2.name, "band_map": None}
    at.switch_page("pages/data.py").run()
    assert not at.exception
    said = [w.value for w in at.warning if w.value.startswith("The labels hold no class where the image has data")]
    # a file's labels: no label product or year to choose (the advice for Earth Engine's products)
    assert len(said) == 1 and "upload labels that cover it" in said[0] and "label product" not in said[0], \
        [w.value for w in at.warning] + [e.value for e in at.error]
    # and no "Classes in the region" heading over an empty table
    assert not [m for m in at.markdown if "Classes in the region" in m.value] and not at.dataframe
