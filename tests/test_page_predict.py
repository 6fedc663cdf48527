"""The Predict page: the background prediction, its layers, threshold and downloads, and the runs it follows.

Driven with AppTest; the helpers are in apptest.py.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from core.errors import PredictionStoppedError
from pages.components import mapview

from apptest import (
    click_map, new_app, readout, map_calls, map_legends, own_image_app, predict_page, by_label, texts, scene_layers, SQUARE_300,
    predicted_fields,
)

def test_predict_page_warns_about_another_pixel_size(fake_map):
    """Shipped model (30 m) on a 10 m image: the Predict page says so before anything is predicted."""
    from core.card import DEFAULT_MODEL_PATH

    at = own_image_app()
    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/predict.py").run()
    assert not at.exception and not at.error
    assert len(at.warning) == 1 and "trained on 30 m pixels" in at.warning[0].value
    assert "python -m" not in at.warning[0].value and "'Average to 30 m pixels'" in at.warning[0].value
    # the sample scene (no CRS) gets no warning: its pixel size is unknown
    at.session_state["source"] = {"kind": "sample"}
    at.session_state["scene"] = None
    at.run()
    assert not at.exception and not at.warning


def test_predict_threshold_and_no_recompute(fake_map, tiny_model_path, monkeypatch):
    from core.metrics import format_hectares as hectares

    import core.predict

    calls = {"n": 0}
    real = core.predict.predict_array

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(core.predict, "predict_array", counting)
    import core.downloads

    tifs = []
    real_tif = core.downloads.geotiff_bytes
    monkeypatch.setattr(core.downloads, "geotiff_bytes", lambda *a, **k: tifs.append(a[3]) or real_tif(*a, **k))
    deferred = {}  # file name -> what the download button calls when clicked
    from streamlit.runtime.media_file_manager import MediaFileManager

    real_defer = MediaFileManager.add_deferred
    monkeypatch.setattr(MediaFileManager, "add_deferred", lambda self, fn, mime, coords, file_name=None:
                        deferred.__setitem__(file_name, fn) or real_defer(self, fn, mime, coords, file_name))
    at = predict_page(tiny_model_path)
    assert not at.exception
    at.button[0].click().run()  # Predict
    assert not at.exception and not at.error
    assert calls["n"] == 1
    # at first the crop layer alone over the imagery (with the probability under it, the two blended
    # into a pink that matched neither legend); the probability is one tick away
    assert len(scene_layers(fake_map.maps[-1][0])) == 1 and at.checkbox(key="predict_show_crop").value
    at.checkbox(key="predict_show_probability").check().run()
    assert calls["n"] == 1
    m, kwargs = fake_map.maps[-1]
    html = m.get_root().render()
    assert len(scene_layers(m)) == 2  # imagery, probability
    # legends inside the map (in view with it, and in full screen), without the threshold (the map's
    # script must not change with it)
    assert "cropmap.fitOnFullscreen(" in html and "Crop probability" in html and "predicted crop" in html
    assert "Crop probability" in map_legends(fake_map) and "(p " not in map_legends(fake_map)
    group = kwargs["feature_group_to_add"]  # the crop layer is swapped in place, without reloading the map
    assert group is not None and len(group._children) == 3  # the layer, its title, the click reading
    # with a script that gives the full-screen legend its threshold in place (an audience sees which one)
    [(_, title, opacity)] = map_calls(group, "dynamicTitle")
    # and its figures, as the page gives them (in full screen the page's figures are out of view)
    figures = {m.label: m.value for m in at.metric}
    share = float(figures["Crop share of valid pixels"][:-1])  # to 0.1 %: the title's whole percent is within 0.55 of it
    head, percent = title.rsplit(", ", 1)
    assert head == f"Crop (probability ≥ 0.50): {figures['Crop area']}" and abs(int(percent.rstrip("%")) - share) <= 0.55, title
    assert "data-cropmap-legend=\\u0027Crop\\u0027" in html
    # and its colours at the layer's opacity, as on the page (set in place too: no map reload)
    assert opacity == 0.75 and "data-cropmap-swatch=\\u0027Crop\\u0027" in html
    from streamlit_folium import generate_leaflet_string

    script = generate_leaflet_string(group)
    assert '"Crop (probability \\u2265 0.50): ' in script or '"Crop (probability ≥ 0.50): ' in script
    area_before = {m.label: m.value for m in at.metric}["Crop area"]
    # a run does not send the slider's value back to the browser unless it changed it: that value
    # overwrote arrow presses made while the run was on its way (presses were lost)
    at.run()
    assert not at.slider(key="w_threshold").proto.set_value
    at.slider(key="w_threshold").set_value(0.05).run()
    area_low = {m.label: m.value for m in at.metric}["Crop area"]
    at.slider(key="w_threshold").set_value(0.95).run()
    area_high = {m.label: m.value for m in at.metric}["Crop area"]
    px = [int(a.removesuffix(" px").replace(",", "")) for a in (area_low, area_before, area_high)]
    assert px[0] >= px[1] >= px[2] and px[0] > px[2]  # a lower threshold keeps more crop
    # and about its ground area, from the sample's stated 30 m pixels (0.09 ha a pixel)
    assert f"Not georeferenced: area in pixels; about {hectares(px[2] * 0.09)} at 30 m pixels" in texts(at)
    assert at.session_state["threshold"] == pytest.approx(0.95)
    # Reruns and navigation never recompute the prediction or reload the model
    at.run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    at.switch_page("pages/predict.py").run()
    assert calls["n"] == 1
    assert [d.label for d in at.get("download_button")] == ["Probability GeoTIFF", "Crop mask GeoTIFF", "Region map PNG",
                                                             "Summary JSON"]
    # the probability GeoTIFF does not depend on the threshold: made once; the mask once per threshold
    # the files are made when a download is clicked, not for each threshold the slider passes
    # (the files made with a threshold name it: a download clicked as the threshold moves says which it has)
    assert tifs == [] and set(deferred) >= {"probability.tif", "crop_mask_t0.95.tif", "crop_map_t0.95.png",
                                             "summary_t0.95.json", "crop_mask_t0.05.tif", "summary_t0.50.json"}
    summary = json.loads(deferred["summary_t0.95.json"]())
    assert summary["threshold"] == 0.95 and f"{summary['crop_pixels']:,} px" == area_high
    # the pixels inside the outline, as the pages count them, beside the box's ("pixels")
    assert summary["valid_pixels"] <= summary["region_pixels"] <= summary["pixels"]
    # and where in the source image, as the CLI's summary says it
    window = summary["window"]
    assert window["height"] * window["width"] == summary["pixels"] and min(window["row"], window["col"]) >= 0
    import rasterio.io

    from core.predict import threshold_mask

    with rasterio.io.MemoryFile(deferred["crop_mask_t0.95.tif"]()) as mem, mem.open() as src:
        mask, tags = src.read(1), src.tags()
    # what it was made from, as the CLI's outputs say it (the downloads carried nothing of it)
    assert tags["MODEL"] == "tiny.keras (U-Net, light preset)" and tags["THRESHOLD"] == "0.95"
    assert tags["SOFTWARE"] == "crop mapping dashboard (the dashboard's Predict page)"
    # the image the region was cut from and where (it named the dashboard's own copy, "image.tif")
    import re

    assert re.fullmatch(r"sample_rgbn\.tif \(rows \d+-\d+, columns \d+-\d+\)", tags["SOURCE"]), tags["SOURCE"]
    with rasterio.io.MemoryFile(deferred["probability.tif"]()) as mem, mem.open() as src:
        assert src.tags()["MODEL_WEIGHTS_SHA256"] == tags["MODEL_WEIGHTS_SHA256"] and "THRESHOLD" not in src.tags()
    from pages.components import cached

    prob = cached.cached_probability(deferred["probability.tif"].args[0])  # the prediction's key
    assert (mask == threshold_mask(prob, 0.95)).all()  # the slider's threshold, on the server's probability
    assert deferred["crop_map_t0.95.png"]()[:8] == b"\x89PNG\r\n\x1a\n" and deferred["probability.tif"]()[:2] in (b"II", b"MM")
    assert tifs.count("crop probability (%)") == 1 and tifs.count("crop mask (1 crop, 0 not crop)") == 1  # PNG: same call
    # Cloud Optimized, as the CLI's files of the same names (they were plain striped GeoTIFFs)
    with rasterio.io.MemoryFile(deferred["probability.tif"]()) as mem, mem.open() as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.descriptions == ("crop probability (%)",)
    fields = [b for b in at.button if b.label == "Crop areas GeoJSON"][0]
    assert fields.disabled  # the sample has no place on Earth, so no polygons in lon/lat
    # a click on the map reads the pixel's probability, at the threshold the crop layer shows
    from core.predict import percent_cut, whole_percent

    row, col = 100, 120
    assert np.isfinite(prob[row, col])
    click_map(at, "predict_map", -(row + 0.5), col + 0.5)
    at.run()
    threshold = at.slider[0].value
    info = readout(fake_map)[0]
    pct = int(whole_percent(prob[row, col]))
    crop = "crop" if pct >= percent_cut(threshold) else "not crop"
    assert info.startswith(f"Pixel row {row}, column {col}: NDVI ")
    assert f"; crop probability {pct / 100:.2f}: {crop} at threshold {threshold:.2f}; labelled " in info


@pytest.mark.parametrize("damage", [None, b"", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (256, 256), }"])
def test_a_stored_prediction_gone_or_cut_short_is_offered_again_not_run_unseen(fake_map, tiny_model_path, monkeypatch,
                                                                                damage):
    """The session's prediction whose file was removed (a work folder cleaned), emptied or cut short (a
    machine that crashed after the file was renamed into place): it failed the Predict and Quality pages
    with Streamlit's bare error, then was run again inside the page's run, with no progress bar and outside
    the server's turns for predictions (a large region's page seemed to hang). The pages now say to press
    Predict, which makes it again, as it was."""
    import streamlit as st

    import core.predict
    from pages.components import cached

    at = predict_page(tiny_model_path)
    at.button[0].click().run()  # Predict
    key = tuple(at.session_state["prediction"]["key"])
    stored = cached.prediction_file(key)
    whole = np.load(stored)
    if damage is None:
        stored.unlink()
    else:
        stored.write_bytes(damage)
    st.cache_data.clear()
    st.cache_resource.clear()  # (a restarted server: the probability read from the file)
    runs = []
    real = core.predict.predict_in_context
    monkeypatch.setattr(core.predict, "predict_in_context", lambda *a, **k: (runs.append(1), real(*a, **k))[1])
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(i.value.startswith("Run a prediction first") for i in at.info), [i.value for i in at.info]
    at.switch_page("pages/predict.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Crop area" not in [m.label for m in at.metric] and not runs and not stored.exists()
    assert any("Press Predict" in i.value for i in at.info), [i.value for i in at.info]
    by_label(at.button, "Predict").click().run()
    assert not at.exception and runs == [1] and "Crop area" in [m.label for m in at.metric]
    assert np.array_equal(np.load(stored), whole, equal_nan=True)


def test_the_maps_layers_are_fetched_from_the_server_not_sent_with_every_rerun(fake_map, tiny_model_path, monkeypatch):
    """The layers' PNGs stood in the map's script as data URLs: every rerun sent them all to the browser
    again (6.4 MB at each step of the threshold on the sample scene). They are served from the media
    store at URLs that stay while the PNG does: a threshold step changes the crop layer's URL alone."""
    import re

    from streamlit.runtime.media_file_manager import MediaFileManager

    stored = {}  # URL -> the bytes the media store serves there
    real_add = MediaFileManager.add

    def add(self, data, mimetype, coordinates, *a, **k):
        url = real_add(self, data, mimetype, coordinates, *a, **k)
        stored[url] = data
        return url

    monkeypatch.setattr(MediaFileManager, "add", add)
    at = predict_page(tiny_model_path)
    at.button[0].click().run()  # Predict

    def shown():  # (the map's script and the dynamic group's, each element's generated name made one)
        from streamlit_folium import generate_leaflet_string

        m, kwargs = fake_map.maps[-1]
        return tuple(re.sub(r"_[0-9a-f]{32}(?![0-9a-f])", "_ID", text) for text in
                     (m.get_root().render(), generate_leaflet_string(kwargs["feature_group_to_add"])))

    html, group = shown()
    urls = re.findall(r'"(/[^"]*/media/[0-9a-f]+\.png)"', html + group)
    assert len(urls) >= 2 and "data:image/png" not in html + group  # the imagery (and around it), the crop layer
    assert all(stored[u].startswith(b"\x89PNG") for u in urls)
    at.slider[0].set_value(0.7).run()
    html_after, group_after = shown()
    assert html_after == html  # the map's script, with its imagery's URL: unchanged (the map is not reloaded)
    assert group_after != group and "data:image/png" not in group_after


def test_predict_page_traces_crop_fields_of_a_georeferenced_image(fake_map, tiny_model_path):
    """Own GeoTIFF (UTM): the crop layer traced into GeoJSON polygons on request, per threshold."""
    at = own_image_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()  # Predict
    assert not at.exception and not at.error
    at.slider(key="w_threshold").set_value(0.05).run()  # the tiny model's crop is sparse: keep most of it
    assert not [d for d in at.get("download_button") if "crop areas" in d.label]  # nothing traced before asked
    fields = [b for b in at.button if b.label == "Crop areas GeoJSON"][0]
    assert not fields.disabled
    fields.click().run()
    assert not at.exception and not at.error
    offered = [d.label for d in at.get("download_button") if "crop areas" in d.label]
    assert len(offered) == 1 and re.fullmatch(r"Download [\d,]+ crop areas", offered[0])
    assert any(re.fullmatch(r"[\d,.]+ ha in all; groups under 4 crop pixels are left out\.", c.value) for c in at.caption)
    at.slider(key="w_threshold").set_value(0.9).run()  # another threshold: asked for again, not stale
    assert not [d for d in at.get("download_button") if "crop areas" in d.label]
    # a threshold with no crop area: an answer, not an error in red
    at.slider(key="w_threshold").set_value(0.99).run()
    [b for b in at.button if b.label == "Crop areas GeoJSON"][0].click().run()
    assert not at.exception and not at.error
    assert any(i.value.startswith("No group of 4 or more crop pixels in this crop mask: lower the threshold") for i in at.info), \
        [i.value for i in at.info]


def test_areas_in_the_sidebars_unit_on_every_page_and_the_map_while_files_keep_hectares(fake_map, tiny_model_path,
                                                                                        monkeypatch):
    """A US team reads areas in acres: the sidebar's Area unit turns every area on the pages, the crop
    layer's legend and the map PNG to it; the summary JSON (for programs) keeps hectares. The unit is
    kept with the session, and CROPMAP_AREA_UNIT sets the one a new session starts with."""
    import json

    import core.metrics
    from core.metrics import format_area
    from pages.components import state
    from streamlit.runtime.media_file_manager import MediaFileManager

    deferred = {}  # file name -> what the download button calls when clicked
    real_defer = MediaFileManager.add_deferred
    monkeypatch.setattr(MediaFileManager, "add_deferred", lambda self, fn, mime, coords, file_name=None:
                        deferred.__setitem__(file_name, fn) or real_defer(self, fn, mime, coords, file_name))
    at = own_image_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()  # Predict
    at.slider(key="w_threshold").set_value(0.05).run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="w_area_unit").value == "hectares"
    ha = {m.label: m.value for m in at.metric}["Crop area"]
    assert ha.endswith(" ha")
    at.sidebar.selectbox(key="w_area_unit").set_value("acres").run()
    assert not at.exception and at.session_state["area_unit"] == "acres"
    acres = {m.label: m.value for m in at.metric}["Crop area"]
    assert acres == format_area(float(ha[:-3].replace(",", "")), "acres") and acres.endswith(" ac")
    [(_, title, _)] = map_calls(fake_map.maps[-1][1]["feature_group_to_add"], "dynamicTitle")
    assert f": {acres}, " in title, title  # the crop layer's legend (in view in full screen)
    units = []
    real_describe = core.metrics.describe_crop
    monkeypatch.setattr(core.metrics, "describe_crop", lambda *a: units.append(a[2]) or real_describe(*a))
    assert deferred["crop_map_t0.05.png"]()[:4] == b"\x89PNG" and units == ["acres"]  # the handout's line
    summary = json.loads(deferred["summary_t0.05.json"]())  # for programs: hectares
    assert format_area(summary["crop_area_ha"], "acres") == acres
    for page in ("pages/data.py", "pages/region.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert {m.label: m.value for m in at.metric}["Area"].endswith(" ac"), page
    # a new session starts in the unit of CROPMAP_AREA_UNIT (one it does not offer: hectares)
    assert state.area_unit_default({"CROPMAP_AREA_UNIT": " Acres "}) == "acres"
    assert state.area_unit_default({"CROPMAP_AREA_UNIT": "furlongs"}) == "hectares"
    assert state.area_unit_default({}) == "hectares"


def test_predict_views_make_a_new_prediction_that_quality_follows(fake_map, tiny_model_path, monkeypatch):
    import core.predict

    configs = []
    real = core.predict.predict_array

    def recording(loaded, feats, valid, config, *args, **kwargs):
        configs.append(config)
        return real(loaded, feats, valid, config, *args, **kwargs)

    monkeypatch.setattr(core.predict, "predict_array", recording)
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    assert [c.views for c in configs] == [1]
    at.selectbox(key="w_views").set_value(4).run()
    assert at.session_state["views"] == 4
    # the 1-view result stays on the page until Predict makes the 4-view one, and says it is the 1-view one
    assert any(i.value.startswith("Press Predict to map crops with 4 views of each tile; meanwhile the page shows "
                                  "the prediction made with 1 view.") for i in at.info)
    assert "Crop area" in [m.label for m in at.metric] and len(configs) == 1
    assert "Prediction by tiny.keras." in [c.value for c in at.caption]  # the model that made the map shown
    at.button[0].click().run()
    assert not at.exception and [c.views for c in configs] == [1, 4]
    at.switch_page("pages/quality.py").run()
    assert not at.exception and [m.label for m in at.metric][:1] == ["IoU"]
    assert any(c.value == "Prediction by tiny.keras, averaged over 4 views of each tile." for c in at.caption)
    at.switch_page("pages/predict.py").run()
    assert at.selectbox(key="w_views").value == 4 and len(configs) == 2  # kept, and not predicted again
    # back to 1 view (or back from another source): the result made before is shown at once, not made again
    at.selectbox(key="w_views").set_value(1).run()
    assert not at.exception and not any("Press Predict" in i.value for i in at.info)
    assert "Crop area" in [m.label for m in at.metric] and len(configs) == 2


def test_a_prediction_goes_on_while_another_page_is_open(fake_map, tiny_model_path, monkeypatch):
    """The model runs in a thread of the server: Quality (or any page) opened meanwhile says it is
    running and shows it when done; back on Predict, the same run is followed (leaving the page
    during a prediction threw it away)."""
    import threading

    from core.region import Region
    from pages.components import cached, predictions

    at = predict_page(tiny_model_path)  # the page drawn once: the scene is cut, nothing predicted yet
    assert not at.exception and not at.error
    image = at.session_state["scene"]["image_path"]
    key = cached.prediction_key(image, Region.from_geojson(at.session_state["region"]).key(), str(tiny_model_path))
    gate, started = threading.Event(), threading.Event()
    work = cached.prediction_work(key)
    run = predictions.start(key, lambda progress: (started.set(), gate.wait(60), work(progress))[-1])
    at.session_state["predicting"] = list(key)  # as the Predict button leaves it, the page then left
    started.wait(10)
    try:
        at.switch_page("pages/quality.py").run()
        assert not at.exception and not at.error
        assert "A prediction started on the Predict page is running" in texts(at) and at.get("progress")
    finally:
        gate.set()
    assert run.finished.wait(60) and run.error is None
    at.run()  # done: Quality shows it without a visit to Predict
    assert not at.exception and not at.error and "IoU" in [m.label for m in at.metric]
    assert at.session_state["prediction"]["key"] == list(key) and at.session_state["predicting"] is None
    assert predictions.get(key) is None  # collected
    # a second run, followed on the Predict page it was started from
    gate.clear()
    monkeypatch.setattr(cached, "prediction_work", lambda k: (lambda progress=None: gate.wait(60) and cached.prediction_file(k)))
    at.switch_page("pages/predict.py").run()
    threading.Timer(1.0, gate.set).start()
    by_label(at.button, "Predict").click().run()
    assert not at.exception and not at.error and at.session_state["predicting"] is None
    assert "Crop area" in [m.label for m in at.metric]


def _held_prediction(model_path):
    """The Predict page drawn for a 256 px box, then a prediction of it started and held at a gate,
    as the Predict button leaves it: (app, key, run, gate)."""
    import threading

    from core.region import Region
    from pages.components import cached, predictions

    at = predict_page(model_path)
    image = at.session_state["scene"]["image_path"]
    key = cached.prediction_key(image, Region.from_geojson(at.session_state["region"]).key(), str(model_path))
    gate = threading.Event()
    work = cached.prediction_work(key)
    run = predictions.start(key, lambda progress: (gate.wait(60), work(progress))[-1])
    at.session_state["predicting"] = list(key)
    return at, key, run, gate


def test_another_tab_of_the_sessions_link_changing_its_region_does_not_stop_this_tabs_prediction(
        fake_map, tiny_model_path):
    """The link with ?session= opened in a second tab (a duplicated tab, or sent to a colleague): a new
    region there stopped the prediction the first tab was waiting for ("its region, source or model
    changed", though its own had not), for runs were followed by the link's session id, which both share."""
    from apptest import new_app
    from pages.components import predictions, state

    at, key, run, gate = _held_prediction(tiny_model_path)
    try:
        at.switch_page("pages/quality.py").run()  # the first tab follows its run (and saves its session)
        sid = at.query_params[state.SESSION_PARAM][0]
        other = new_app()
        other.query_params[state.SESSION_PARAM] = sid
        other.switch_page("pages/quality.py").run()
        assert not other.exception and other.session_state[state.PREDICTING] == list(key)  # (follows it too)
        other.switch_page("pages/region.py").run()
        [b for b in other.button if "Sample scene" in b.label][0].click().run()  # a new region in the other tab
        assert not other.exception and other.session_state[state.PREDICTING] is None
        assert not run.stopping.is_set()  # the first tab still follows it
    finally:
        gate.set()
    assert run.finished.wait(60) and run.error is None
    at.run()
    assert not at.exception and not at.error and at.session_state[state.PREDICTION]["key"] == list(key)
    assert predictions.get(key) is None  # (collected by the first tab)


def test_a_reloaded_tab_changing_its_region_stops_the_run_its_old_self_followed(fake_map, tiny_model_path,
                                                                                monkeypatch):
    """A reload makes a new browser session, which follows the run as it comes back; the old one, gone,
    never left it, so the run went on after the reloaded tab changed its region. Tabs the server knows
    to be gone no longer count (here the server's knowledge is the test's: which tabs are connected)."""
    from apptest import new_app
    from pages.components import predictions, state

    connected: set[str] = set()
    monkeypatch.setattr(predictions, "follower", lambda: predictions.Follower(state.get(state.TAB_ID), True))
    monkeypatch.setattr(predictions, "connected", lambda tab: tab in connected)
    at, key, run, gate = _held_prediction(tiny_model_path)
    try:
        at.switch_page("pages/quality.py").run()  # the tab follows its run, then is reloaded:
        sid = at.query_params[state.SESSION_PARAM][0]
        again = new_app()
        again.query_params[state.SESSION_PARAM] = sid
        again.switch_page("pages/quality.py").run()
        connected.add(again.session_state[state.TAB_ID])  # (the old tab's session is gone)
        assert {f.id for f in run.followers} == {at.session_state[state.TAB_ID], again.session_state[state.TAB_ID]}
        again.switch_page("pages/region.py").run()
        [b for b in again.button if "Sample scene" in b.label][0].click().run()
        assert not again.exception and run.stopping.is_set()
    finally:
        gate.set()
    assert run.finished.wait(60) and isinstance(run.error, PredictionStoppedError)
    assert predictions.collect(key) is run


def test_a_prediction_still_running_when_the_region_changes_is_not_followed(fake_map, tiny_model_path):
    """Predict pressed for one region, another drawn while it runs: the pages no longer wait for the
    first run, and it does not come back as the prediction of the new region when it ends. No other
    session follows it: it stops (it ran on, out of reach of any Cancel, and held a place the next
    prediction waited for)."""
    from pages.components import cached, predictions

    at, key, run, gate = _held_prediction(tiny_model_path)
    try:
        at.switch_page("pages/region.py").run()
        [b for b in at.button if "Sample scene" in b.label][0].click().run()  # the whole image: another region
        assert not at.exception and at.session_state["predicting"] is None
        at.switch_page("pages/quality.py").run()
        assert not at.exception and "A prediction started on the Predict page is running" not in texts(at)
    finally:
        gate.set()
    assert run.finished.wait(60) and isinstance(run.error, PredictionStoppedError)
    at.run()
    assert not at.exception and not at.error and at.session_state["prediction"] is None  # not the old region's
    assert not cached.prediction_file(key).exists()
    assert predictions.collect(key) is run  # (left in the registry until asked for: taken here for the next tests)


def test_a_run_is_followed_after_the_views_setting_changed_under_it(fake_map, tiny_model_path):
    """Predict pressed with 1 view, the views setting changed while it runs: the page follows the run
    (it said "Press Predict" with no sign of it, and a second press ran the model twice at once) and
    then shows it, saying that the setting asks for more views."""
    import threading

    at, key, run, gate = _held_prediction(tiny_model_path)
    at.session_state["views"] = 4
    threading.Timer(1.0, gate.set).start()
    at.run()
    assert not at.exception and not at.error and run.finished.is_set()
    assert at.session_state["prediction"]["key"] == list(key) and at.session_state["predicting"] is None
    assert any(i.value.startswith("Press Predict to map crops with 4 views of each tile; meanwhile the page shows the "
                                  "prediction made with 1 view") for i in at.info), [i.value for i in at.info]


def test_predict_pressed_again_with_other_views_stops_the_run_it_replaces(fake_map, tiny_model_path):
    """Predict pressed with 1 view, the views changed to 4 while it runs and Predict pressed again: the
    1-view run, which no tab follows any more, stops (it ran on unseen, held one of the server's places
    for predictions and shared the CPU with the run the user waits for)."""
    from pages.components import predictions

    at, key, run, gate = _held_prediction(tiny_model_path)
    try:
        at.session_state["views"] = 4
        by_label(at.button, "Predict").click().run(timeout=120)
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert run.stopping.is_set()
        assert at.session_state["prediction"]["key"] == [*key[:-1], 4]
    finally:
        gate.set()
    assert run.finished.wait(60) and isinstance(run.error, PredictionStoppedError)
    assert predictions.collect(key) is run


def test_a_prediction_that_fails_in_its_thread_is_an_error_message(fake_map, tiny_model_path, monkeypatch):
    from core.errors import NoDataError
    from pages.components import cached, predictions

    def failing(key):
        def work(progress=None):
            raise NoDataError("the region holds no valid pixels (all no data); choose another region")
        return work

    monkeypatch.setattr(cached, "prediction_work", failing)
    at = predict_page(tiny_model_path)
    by_label(at.button, "Predict").click().run()
    assert not at.exception and [e.value for e in at.error] == [
        "The region holds no valid pixels (all no data); choose another region"]
    assert at.session_state["predicting"] is None and at.session_state["prediction"] is None
    assert not predictions._RUNS  # collected, not kept
    at.run()
    assert not at.error  # said once


def test_a_run_that_another_tab_collected_without_a_result_is_said(fake_map, tiny_model_path):
    """Two tabs predicting the same key share one run; when the other tab collected it and it had
    failed, this tab's pending prediction did not vanish without a word, and says what failed (it said
    only that the run 'left no map'); a new press forgets the failure."""
    from core.errors import NoDataError
    from core.region import Region
    from pages.components import cached, predictions

    at = predict_page(tiny_model_path)
    image = at.session_state["scene"]["image_path"]
    key = cached.prediction_key(image, Region.from_geojson(at.session_state["region"]).key(), str(tiny_model_path))

    def failing(progress):
        raise NoDataError("no valid pixels")

    run = predictions.start(key, failing)
    at.session_state["predicting"] = list(key)  # as this tab's Predict button left it, the page then left
    assert run.finished.wait(60)
    assert predictions.collect(key).error is not None  # the other tab took the run (and showed its error)
    at.switch_page("pages/quality.py").run()
    assert not at.exception and [e.value for e in at.error] == [
        "The prediction started here failed (another tab of the same region and model showed it first): no valid "
        "pixels; press Predict to run it again"]
    assert at.session_state["predicting"] is None and at.session_state["prediction"] is None
    at.run()
    assert not [e.value for e in at.error if "another tab" in e.value]  # said once
    again = predictions.start(key, lambda progress: None)  # pressed again: the failure is forgotten
    assert again.finished.wait(30) and key not in predictions._FAILED
    predictions.collect(key)


def test_predict_layer_settings_survive_other_pages(fake_map, tiny_model_path):
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    assert at.checkbox(key="predict_show_probability").value is False  # at first
    at.checkbox(key="predict_show_probability").check().run()
    at.checkbox(key="predict_show_probability").uncheck().run()
    at.slider(key="predict_op_crop").set_value(0.3).run()
    at.switch_page("pages/quality.py").run()
    at.switch_page("pages/predict.py").run()
    assert not at.exception
    assert at.checkbox(key="predict_show_probability").value is False
    assert at.slider(key="predict_op_probability").disabled
    assert at.slider(key="predict_op_crop").value == pytest.approx(0.3)
    assert len(scene_layers(fake_map.maps[-1][0])) == 1  # imagery only; crop is dynamic


def test_predict_page_and_summary_keep_the_warnings_about_the_source_image(fake_map, tiny_model_path, monkeypatch):
    """Band numbers that differ from the file's band names: the Region page warned, but the Predict
    page and its summary JSON (read from the region's copy, whose bands are named R, G, B, NIR) did
    not, while the CLI's summary.json does."""
    import core.predict
    from testdata import FLANDERS_S2

    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(FLANDERS_S2), "labels": None, "label_map": None,
                                  "title": FLANDERS_S2.name, "band_map": {"R": 1, "G": 2, "B": 3, "NIR": 4}}
    at.session_state["model_path"] = str(tiny_model_path)
    summaries, real_summary = [], core.predict.prediction_summary
    monkeypatch.setattr(core.predict, "prediction_summary",
                        lambda *a, **k: summaries.append(real_summary(*a, **k)) or summaries[-1])
    at.switch_page("pages/predict.py").run()
    told = "the band numbers given (R=1, G=2, B=3, NIR=4) differ from what the file's band names say"
    assert not at.exception and any(told in w.value for w in at.warning), [w.value for w in at.warning]
    at.button[0].click().run()  # Predict
    assert not at.exception and not at.error
    assert summaries and any(told in w for w in summaries[-1]["warnings"]), summaries[-1]["warnings"]


def test_a_region_of_several_parts_gets_the_crop_of_each(fake_map, tiny_model_path, monkeypatch):
    """A GeoJSON of fields or farms: the Predict page gives each part's crop (the region's in all), a CSV,
    and the parts in the summary JSON."""
    import rasterio
    from rasterio.windows import Window

    import core.predict
    from testdata import SAMPLE_IMAGE

    summaries, real_summary = [], core.predict.prediction_summary
    monkeypatch.setattr(core.predict, "prediction_summary",
                        lambda *a, **k: summaries.append(real_summary(*a, **k)) or summaries[-1])
    at = predicted_fields(tiny_model_path, [("west", 200, 290), ("east", 290, 400)], (300, 420))
    assert not at.exception and not at.error
    at.slider(key="w_threshold").set_value(0.3).run()
    table = at.dataframe[0].value
    assert list(table["part"]) == ["west", "east"] and "note" not in table  # (no part outside the image)

    def pixels(column):
        return [int(v.replace(",", "").removesuffix(" px")) for v in table[column]]

    # the parts add up to the region, whose pixels with data are the sample's under them
    with rasterio.open(SAMPLE_IMAGE) as src:
        with_data = src.read_masks(1, window=Window(200, 300, 200, 120)) > 0
    assert pixels("with data") == [int(with_data[:, :90].sum()), int(with_data[:, 90:].sum())]
    stated = next(c.value for c in at.caption if "valid pixels at threshold 0.30" in c.value)
    assert f"{sum(pixels('predicted crop')):,} of {int(with_data.sum()):,} valid pixels" in stated
    assert [(p["name"], p["crop_pixels"]) for p in summaries[-1]["parts"]] == list(zip(table["part"], pixels("predicted crop")))
    assert summaries[-1]["threshold"] == 0.3
    assert any(d.label == "Crop by part CSV" for d in at.get("download_button"))
    # one drawn shape: no table
    at.session_state["region"] = SQUARE_300
    at.run()
    assert not at.exception and not at.dataframe


def test_the_map_names_each_part_of_the_region_when_pointed_at_as_text(fake_map, tiny_model_path):
    """The parts' outlines carry their names in a tooltip (HTML: a name from a file is escaped)."""
    at = predicted_fields(tiny_model_path, [("<b>west</b>", 200, 290), ("east & co", 290, 400)], (300, 420))
    assert not at.exception and not at.error
    m = fake_map.maps[-1][0]
    html = m.get_root().render()
    [outline] = [c for c in m._children.values() if type(c).__name__ == "GeoJson" and c.layer_name == "Region"]
    assert [f["properties"]["name"] for f in outline.data["features"]] == ["&lt;b&gt;west&lt;/b&gt;", "east &amp; co"]
    assert f"{outline.get_name()}.bindTooltip(" in html and "<b>west</b>" not in html
    assert list(at.dataframe[0].value["part"]) == ["<b>west</b>", "east & co"]  # (a table cell is text already)
    # named wherever pointed at: a transparent fill (the outline alone caught the pointer on its line only)
    assert outline.style_function(outline.data["features"][0]) == {**mapview.OUTLINE_CASED[-1], "fill": True,
                                                                   "fillOpacity": 0}


def test_the_map_png_of_a_region_of_parts_outlines_and_names_them(fake_map, tiny_model_path, monkeypatch):
    """The Region map PNG of a file of fields: each field outlined and named in the handout, where the
    Predict page counts its pixels; a region of one shape gets no names."""
    import core.downloads
    from streamlit.runtime.media_file_manager import MediaFileManager

    deferred = {}
    real_defer = MediaFileManager.add_deferred
    monkeypatch.setattr(MediaFileManager, "add_deferred", lambda self, fn, mime, coords, file_name=None:
                        deferred.__setitem__(file_name, fn) or real_defer(self, fn, mime, coords, file_name))
    drawn = []
    real = core.downloads.part_outlines
    monkeypatch.setattr(core.downloads, "part_outlines", lambda *a: drawn.append(a) or real(*a))
    at = predicted_fields(tiny_model_path, [("west", 200, 290), ("east", 290, 400)], (300, 420))
    assert not at.exception and not at.error
    png = deferred["crop_map_t0.50.png"]()
    parts, _, step = drawn[0]
    assert png[:4] == b"\x89PNG" and [name for name, _, _ in parts] == ["west", "east"]
    counted = {r["name"]: r["pixels"] for r in json.loads(deferred["summary_t0.50.json"]())["parts"]}
    assert step == 1 and {n: int(m.sum()) for n, _, m in parts} == counted  # the pixels the page counts


def test_predictions_beyond_the_server_s_limit_wait_their_turn(monkeypatch):
    """Each prediction uses every core: a third one started while two run waits (and says so), then runs."""
    import threading

    from pages.components import predictions

    monkeypatch.setattr(predictions, "MAX_RUNNING", 2)
    monkeypatch.setattr(predictions, "_SLOTS", threading.BoundedSemaphore(2))
    gates = [threading.Event() for _ in range(3)]
    begun = [threading.Event() for _ in range(3)]

    def work(i):
        def run(progress):
            begun[i].set()
            progress(1, 4)
            assert gates[i].wait(30)
        return run

    runs = [predictions.start(("limit-test", i), work(i)) for i in range(3)]
    try:
        assert begun[0].wait(10) and begun[1].wait(10)
        assert not begun[2].wait(0.5) and runs[2].waiting
        assert runs[2].text.startswith("Waiting for another prediction on this server to finish (at most 2 run at once")
        assert runs[0].text == "Predicting tiles: 1 of 4"
        gates[0].set()  # one ends: the waiting one starts
        assert runs[0].finished.wait(10) and begun[2].wait(10) and not runs[2].waiting
    finally:
        for gate in gates:
            gate.set()
    assert all(r.finished.wait(10) and r.error is None for r in runs)
    for i in range(3):
        predictions.collect(("limit-test", i))
    assert predictions._SLOTS.acquire(blocking=False) and predictions._SLOTS.acquire(blocking=False)  # all given back
    assert [predictions._max_running(t) for t in (None, "", "4", "0", "two")] == [2, 2, 4, 1, 2]


def test_the_parts_of_a_region_on_a_georeferenced_image_are_in_hectares(fake_map, tiny_model_path):
    """Lon/lat fields on a UTM image (10 m pixels): each part's crop and area with data in hectares,
    placed by the image's CRS."""
    from core.region import Region

    def box(w, s, e, n):
        return [[[w, s], [e, s], [e, n], [w, n], [w, s]]]

    fields = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": box(*b)}}
        for name, b in (("north", (13.125, 48.290, 13.140, 48.298)), ("south", (13.125, 48.280, 13.140, 48.288)))]}
    at = own_image_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.session_state["region"] = Region.from_geojson(fields).to_geojson()
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()  # Predict
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["part"]) == ["north", "south"]
    # each box's area on the authalic sphere (within 0.3 % of the ellipsoid's), within the pixels along its
    # edges (10 m: about 2 %)
    import math

    for value, (w, s, e, n) in zip(table["with data"], ((13.125, 48.290, 13.140, 48.298), (13.125, 48.280, 13.140, 48.288))):
        sphere = 6371007.2**2 * math.radians(e - w) * (math.sin(math.radians(n)) - math.sin(math.radians(s))) / 1e4
        assert value.endswith(" ha") and float(value.split()[0].replace(",", "")) == pytest.approx(sphere, rel=0.03)
    assert all(v.endswith(" ha") for v in table["predicted crop"])


def test_a_prediction_no_session_follows_any_more_stops(monkeypatch):
    """Predictions left behind (the region, source or model changed) ran on, out of sight and out of reach
    of any Cancel, and the next one waited for them ('another prediction on this server'). A run that no
    session follows stops at its next tile and frees its place; one another session follows goes on."""
    import threading
    import time

    from pages.components import predictions

    monkeypatch.setattr(predictions, "_SLOTS", threading.BoundedSemaphore(2))

    def work(progress):
        for i in range(3000):
            progress(i, 3000)
            time.sleep(0.005)

    left, shared = ("stop-test", 1), ("stop-test", 2)
    s1, s2 = predictions.Follower("s1"), predictions.Follower("s2")
    a = predictions.start(left, work, follower=s1)
    b = predictions.start(shared, work, follower=s1)
    assert predictions.start(shared, work, follower=s2) is b  # another session's press follows the same run
    predictions.leave(left, s1)
    predictions.leave(shared, s1)
    assert a.finished.wait(5) and isinstance(a.error, PredictionStoppedError)
    assert not b.finished.wait(0.3) and b.error is None  # still followed by s2
    again = predictions.start(left, work, follower=s1)  # asked for again: a new run, not the stopped one
    assert again is not a and not again.finished.wait(0.2)
    for key, who in ((shared, s2), (left, s1)):
        predictions.leave(key, who)
    assert b.finished.wait(5) and again.finished.wait(5) and b.done < 2999
    for key in (left, shared):
        predictions.collect(key)
    assert predictions._SLOTS.acquire(blocking=False) and predictions._SLOTS.acquire(blocking=False)  # given back


def test_a_stored_prediction_cut_short_is_not_shown_before_predict_is_pressed(fake_map, tiny_model_path):
    """A prediction of the region and model made before (another session's, or before a visit to another source)
    is shown at once; one cut short on disk (a machine that crashed after the file was renamed into place) was
    taken up as well, and the page failed reading it instead of offering Predict."""
    import streamlit as st

    from core.region import Region
    from pages.components import cached

    at = predict_page(tiny_model_path)  # the scene cut, nothing predicted yet
    image = at.session_state["scene"]["image_path"]
    key = cached.prediction_key(image, Region.from_geojson(at.session_state["region"]).key(), str(tiny_model_path))
    stored = cached.prediction_file(key)
    stored.parent.mkdir(parents=True, exist_ok=True)
    np.save(stored, np.zeros((256, 256), np.float32))
    stored.write_bytes(stored.read_bytes()[:4096])  # cut short
    st.cache_data.clear()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["prediction"] is None and "Crop area" not in [m.label for m in at.metric]
    assert not stored.exists()  # removed: predicted again when Predict is pressed


def test_another_model_forgets_the_prediction_and_the_same_one_again_keeps_it(fake_map, tiny_model_path):
    """The prediction of the model used before, still running, was followed after another model was loaded and
    came back as the new model's; and loading the model in use again (the button pressed twice) threw its
    prediction away."""
    from pages.components import models, predictions

    at, key, run, gate = _held_prediction(tiny_model_path)
    try:
        at.switch_page("pages/model.py").run()
        by_label(at.button, "Load shipped weights").click().run()
        assert not at.exception and at.session_state["model_path"] == str(models.shipped())
        assert at.session_state["predicting"] is None and at.session_state["prediction"] is None
        assert run.stopping.is_set()  # no other tab follows it: it stops
    finally:
        gate.set()
    assert run.finished.wait(60) and isinstance(run.error, PredictionStoppedError)
    assert predictions.collect(key) is run
    at.switch_page("pages/predict.py").run()
    by_label(at.button, "Predict").click().run()
    assert not at.exception and not at.error and at.session_state["prediction"] is not None
    made = at.session_state["prediction"]
    at.switch_page("pages/model.py").run()
    by_label(at.button, "Load shipped weights").click().run()  # the model in use, again
    assert not at.exception and at.session_state["prediction"] == made
    at.switch_page("pages/predict.py").run()
    assert not at.exception and "Crop area" in [m.label for m in at.metric]


def test_a_prediction_of_a_model_file_since_replaced_is_not_shown(fake_map, tiny_model_path, tmp_path):
    """The model file in use written anew after Predict (a training that saves over it): the map and figures
    of the old model's prediction are not shown as the model's; the page asks for Predict again."""
    import os
    import shutil
    from pathlib import Path

    from core.card import card_path

    model = Path(shutil.copy(tiny_model_path, tmp_path / "mine.keras"))
    shutil.copy(card_path(tiny_model_path), card_path(model))
    at = predict_page(model)
    by_label(at.button, "Predict").click().run()
    assert not at.exception and "Crop area" in [m.label for m in at.metric]
    later = model.stat().st_mtime + 60
    os.utime(model, (later, later))
    at.run()
    assert not at.exception
    assert "Crop area" not in [m.label for m in at.metric]
    assert "Press Predict to map crops in this region with the model in use." in [i.value for i in at.info]


def test_the_probability_layer_has_its_own_opacity(fake_map, tiny_model_path):
    """The probability layer, ticked, is drawn at its own slider's opacity (not the crop layer's)."""
    import folium

    at = predict_page(tiny_model_path)
    by_label(at.button, "Predict").click().run()
    at.checkbox(key="predict_show_probability").check().run()
    at.slider(key="predict_op_probability").set_value(0.35).run()
    at.slider(key="predict_op_crop").set_value(0.8).run()
    assert not at.exception
    m = fake_map.maps[-1][0]
    opacity = {c.layer_name: c.options["opacity"] for c in m._children.values()
               if isinstance(c, folium.raster_layers.ImageOverlay)}
    [name] = [n for n in scene_layers(m) if "robability" in n]
    assert opacity[name] == pytest.approx(0.35)


def test_the_map_png_gets_each_layer_at_its_own_opacity(fake_map, tiny_model_path, monkeypatch):
    """The Region map PNG is made with the page's layers as shown: the probability layer hidden (None), the
    crop layer at its slider's opacity; then the probability at its own."""
    import inspect

    from pages.components import cached
    from streamlit.runtime.media_file_manager import MediaFileManager

    deferred = {}
    real_defer = MediaFileManager.add_deferred
    monkeypatch.setattr(MediaFileManager, "add_deferred", lambda self, fn, mime, coords, file_name=None:
                        deferred.__setitem__(file_name, fn) or real_defer(self, fn, mime, coords, file_name))
    asked = []
    signature = inspect.signature(cached.exports)
    monkeypatch.setattr(cached, "exports", lambda *a: asked.append(signature.bind(*a).arguments) or {"map.png": b"png"})
    at = predict_page(tiny_model_path)
    by_label(at.button, "Predict").click().run()
    at.slider(key="predict_op_crop").set_value(0.6).run()
    assert not at.exception
    assert deferred["crop_map_t0.50.png"]() == b"png"
    assert (asked[-1]["probability_opacity"], asked[-1]["crop_opacity"]) == (None, pytest.approx(0.6))
    at.checkbox(key="predict_show_probability").check().run()
    at.slider(key="predict_op_probability").set_value(0.3).run()
    deferred["crop_map_t0.50.png"]()
    assert (asked[-1]["probability_opacity"], asked[-1]["crop_opacity"]) == (pytest.approx(0.3), pytest.approx(0.6))


def test_crop_areas_geojson_on_an_image_without_a_place_says_why_it_is_greyed(fake_map, tiny_model_path):
    """On the sample (no CRS) the 'Crop areas GeoJSON' button is greyed, and the page says why in a line
    (a greyed button's help is only seen by pointing at it)."""
    at = predict_page(tiny_model_path)
    by_label(at.button, "Predict").click().run()
    assert not at.exception
    assert by_label(at.button, "Crop areas GeoJSON").disabled
    assert ("Crop areas as GeoJSON polygons need a georeferenced image; this one has no place on Earth."
            in [c.value for c in at.caption])


def test_no_rerun_reloads_the_model_or_remakes_a_layer_that_did_not_change(fake_map, tiny_model_path, monkeypatch):
    """The product's promise: no rerun recomputes a prediction or reloads a model that has not changed, and a
    layer is coloured again only when what it shows changed (an opacity is the map's, not the PNG's; a
    threshold gone back to is the layer made before; the pages share the imagery's layer)."""
    import collections

    import core.model
    import core.overlays
    import core.predict

    made = collections.Counter()
    for module, name in ((core.model, "load_model"), (core.predict, "predict_in_context"),
                         (core.overlays, "pixelwise_overlay")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: made.update([_name]) or _real(*a, **k))
    at = predict_page(tiny_model_path)
    by_label(at.button, "Predict").click().run()
    assert not at.exception and made == {"load_model": 1, "predict_in_context": 1, "pixelwise_overlay": 2}
    made.clear()
    at.slider(key="predict_op_crop").set_value(0.4).run()  # the map's opacity: no layer made again
    at.slider(key="w_threshold").set_value(0.3).run()  # the crop layer at a new threshold
    assert made == {"pixelwise_overlay": 1}
    made.clear()
    at.slider(key="w_threshold").set_value(0.5).run()  # back: the layer made before
    at.run()
    at.switch_page("pages/model.py").run()  # the model in use shown: the model loaded for the prediction
    at.run()
    at.switch_page("pages/quality.py").run()
    at.checkbox(key="quality_show_dis").uncheck().run()  # the imagery in colour: the Predict page's layer
    at.switch_page("pages/predict.py").run()
    assert not at.exception
    assert made == {"pixelwise_overlay": 2}  # the Quality page's two layers (disagreement, imagery in grey) alone


def test_the_arrays_kept_for_every_session_are_read_only(fake_map, tiny_model_path):
    """The image, labels, class codes and probability are kept once for every session and run (st.cache_resource,
    handed out as they are): a page that changed one in place would change it for every later run and session.
    They come read-only, so that such a change is an error, not a wrong map somewhere else."""
    from pages.components import cached

    at = predict_page(tiny_model_path)
    by_label(at.button, "Predict").click().run()
    assert not at.exception
    key = tuple(at.session_state["prediction"]["key"])
    sc = at.session_state["scene"]
    labels = (sc["labels_path"], cached.mtime(sc["labels_path"]), sc["label_map"])
    kept = {"features": cached.image_arrays(key[0], key[1])[0], "valid": cached.image_arrays(key[0], key[1])[1],
            "labels": cached.label_mask(*labels), "probability": cached.cached_probability(key),
            "classes' mask": cached.label_classes(*labels)[0], "class codes": cached.label_codes(*labels)}
    for name, array in kept.items():
        assert not array.flags.writeable, name
        with pytest.raises(ValueError):
            array[0, 0] = 0
