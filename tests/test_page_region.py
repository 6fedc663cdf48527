"""The Region page: the sample scene and own images on the map, drawn and uploaded regions, their checks.

Driven with AppTest; the helpers are in apptest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.region import Region
from pages.components import mapview, scene

from apptest import (
    click_map, readout, new_app, OWN_IMAGE, own_image_app, SQUARE_300, by_label, Upload, texts,
    layer_names, drawn_feature, TIMEOUT,
)


def test_region_page_opens_on_sample_scene(fake_map):
    at = new_app()
    at.run()
    assert not at.exception
    assert not at.error
    m, kwargs = fake_map.maps[-1]
    assert kwargs["returned_objects"] == ["all_drawings"]
    html = m.get_root().render()
    assert "not georeferenced: image coordinates" in html
    assert "L.CRS.Simple" in html
    assert "cdn.jsdelivr" not in html and "cdnjs" not in html and "unpkg" not in html
    assert "L.control.fullscreen" in html and "leaflet-fullscreen/Control.FullScreen.js" in html  # served locally
    assert "cropmap.clickMarker(" not in html  # a click on the drawing map draws, it does not read a pixel
    assert "not georeferenced" in texts(at)
    assert at.metric[0].value.startswith("1,048,576")
    # its ground area, from Landsat's 30 m pixels (stated by the source; the file has no CRS): 1,048,576 x 0.09 ha
    assert "Not georeferenced: about 94,372 ha at 30 m pixels (the image's stated pixel size)." in texts(at)
    # the area counts the image's gaps, which the note on them says are never counted: it says where they are not
    [gaps] = [c.value for c in at.caption if c.value.startswith("Grey hatching")]
    assert gaps.endswith("(the area above includes any in the region; the Data page counts the region's pixels with data).")
    # The Earth Engine preset is disabled with the reason shown
    camana = [b for b in at.button if "Camana" in b.label][0]
    assert camana.disabled
    assert "Earth Engine" in texts(at)


def test_drawn_polygon_becomes_the_region(fake_map):
    at = new_app()
    at.run()
    fake_map.value = {"all_drawings": [drawn_feature([(100, 100), (500, 100), (500, 420), (100, 420)])]}
    at.run()
    assert not at.exception
    region = at.session_state["region"]
    assert region["properties"]["crs"] == "image"
    assert at.metric[0].value.startswith("128,000")
    assert any("Region OK: it fits a box of 400 x 320 px" in s.value for s in at.success)


def test_use_this_box_on_the_box_in_use_changes_nothing_and_on_a_drawing_takes_its_box(fake_map):
    """The box field shows the box around a drawn triangle: Use this box makes that box the region (it
    said "This box is the region in use" of the triangle); pressed again, however the numbers are written,
    it keeps the region (and its scene and prediction) and says so."""
    at = new_app()
    at.run()
    fake_map.value = {"all_drawings": [drawn_feature([(100, 100), (500, 100), (100, 420)])]}
    at.run()
    [box] = [t for t in at.text_input if t.label == "Box"]
    assert box.value == "100, 100, 500, 420" and at.metric[0].value != "128,000 px"
    by_label(at.button, "Use this box").click().run()
    assert not at.exception and at.metric[0].value == "128,000 px" and not [i for i in at.info if "in use" in i.value]
    region = at.session_state["region"]
    [box] = [t for t in at.text_input if t.label == "Box"]
    box.set_value("100,100,500,420").run()
    by_label(at.button, "Use this box").click().run()
    assert [i.value for i in at.info if "in use" in i.value] == ["This box is the region in use."]
    assert at.session_state["region"] == region


def test_too_small_region_is_explained(fake_map):
    at = new_app()
    at.run()
    assert not [link for link in at.get("page_link") if link.proto.label == "Next: Data"][0].proto.disabled
    fake_map.value = {"all_drawings": [drawn_feature([(10, 10), (16, 10), (16, 16), (10, 16)])]}
    at.run()
    assert not at.exception
    assert any("at least 8 x 8 px" in e.value for e in at.error)
    assert [link for link in at.get("page_link") if link.proto.label == "Next: Data"][0].proto.disabled  # (a dead end)


def test_the_basemap_can_be_switched_off_for_a_georeferenced_image(fake_map, monkeypatch):
    """A georeferenced image's maps show OpenStreetMap tiles, credited as its tile policy asks; the
    sidebar's switch (only there for a georeferenced source) turns them off on every page, and
    CROPMAP_BASEMAP=none starts a session with them off (no request leaves for a tile server)."""
    osm = "tile.openstreetmap.org"
    at = own_image_app()
    at.run()
    assert not at.exception
    html = fake_map.maps[-1][0].get_root().render()
    assert osm in html and "openstreetmap.org/copyright" in html and "contributors" in html
    # with no internet the tiles fail, and the map says so (else it looks the same as with the switch off)
    assert "cropmap.tilesFailed(" in html and mapview.BASEMAP_FAILED in html
    switch = at.sidebar.toggle(key="w_basemap")
    assert switch.value is True and switch.label == "Basemap (OpenStreetMap)"
    switch.set_value(False).run()
    assert osm not in fake_map.maps[-1][0].get_root().render()
    assert mapview.BASEMAP_FAILED not in fake_map.maps[-1][0].get_root().render()
    at.switch_page("pages/data.py").run()
    assert not at.exception and at.sidebar.toggle(key="w_basemap").value is False
    assert osm not in fake_map.maps[-1][0].get_root().render()
    at.sidebar.toggle(key="w_basemap").set_value(True).run()
    assert osm in fake_map.maps[-1][0].get_root().render()
    # the sample scene has no place on Earth: no basemap, and no switch
    sample = new_app()
    sample.run()
    assert not [t for t in sample.sidebar.toggle if t.key == "w_basemap"]
    assert osm not in fake_map.maps[-1][0].get_root().render()
    monkeypatch.setenv("CROPMAP_BASEMAP", "none")
    off = own_image_app()
    off.run()
    assert off.sidebar.toggle(key="w_basemap").value is False
    assert osm not in fake_map.maps[-1][0].get_root().render()


def test_a_small_region_taken_straight_to_the_model_page_is_not_offered_training(fake_map):
    """From the Region page straight to the Model page (the region's scene not cut yet): a 40 px region was
    offered every patch size and Start, which then said to choose a smaller patch size than the smallest."""
    at = new_app()
    at.run()
    fake_map.value = {"all_drawings": [drawn_feature([(500, 500), (540, 500), (540, 540), (500, 540)])]}
    at.run()
    at.switch_page("pages/model.py").run()
    assert not at.exception and at.session_state["scene"] is None  # (nothing cut)
    assert [i.value for i in at.info if i.value.startswith("This region is 40 x 40 px")]
    assert by_label(at.button, "Start training").disabled


def test_one_field_can_be_viewed_but_training_on_it_says_what_it_needs(fake_map, tiny_model_path, monkeypatch):
    """A 40 x 40 px region (one field; 8 px a side is enough, the model sees the image around it)
    is accepted and shown on the Data page, which says it is under the smallest patch to cut; the
    Model page says so too and cannot start training on it; a 100 px region is offered the patch
    sizes it holds only, on both pages; nothing is started and no job folder is left."""
    from core import training_jobs

    calls = []
    monkeypatch.setattr(training_jobs, "start_training", lambda *a, **k: calls.append(k) or "job")
    at = new_app()
    at.run()
    fake_map.value = {"all_drawings": [drawn_feature([(500, 500), (540, 500), (540, 540), (500, 540)])]}
    at.run()
    assert not at.exception and not at.error
    assert at.metric[0].value.startswith("1,600")
    # the map, drawn again with the field, looks at the field and 100 px around it (not at the whole image)
    assert "[[-640.0, 400.0], [-400.0, 640.0]]" in fake_map.maps[-1][0].get_root().render()
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    assert {m.label for m in at.metric} >= {"Valid pixels", "Crop share (labels)"}
    # part of it lies on one of the sample's gaps: the light grey there is named under the map
    valid_px = int({m.label: m.value for m in at.metric}["Valid pixels"].replace(",", ""))
    assert 0 < valid_px < 1600 and [c.value for c in at.caption if c.value.startswith("Grey hatching")] == [
        f"Grey hatching on the map: no image data ({1600 - valid_px:,} px of the region: gaps, clouds or masked pixels); "
        "they are never predicted or counted."]
    # the field is seen where it lies: over the image around it (dimmed), with 40 px of it in view on each side
    m = fake_map.maps[-1][0]
    assert layer_names(m) == [scene.SURROUNDINGS, "True colour (R,G,B)", "Labels"]
    assert "[[-580.0, 460.0], [-460.0, 580.0]]" in m.get_root().render()
    assert [i.value for i in at.info if "smallest patch" in i.value] == [
        "The region is 40 x 40 px, smaller than the smallest patch (64 x 64 px): draw a larger region on the "
        "Region page to cut training patches of it."]
    assert not [b for b in at.button if b.label == "Cut patches"]
    at.switch_page("pages/model.py").run()
    assert [i.value for i in at.info if i.value.startswith("This region is")] == [
        "This region is 40 x 40 px: training needs at least one 64 x 64 px patch of it. Draw a larger region to "
        "train on, or train on TFRecord patches; the model in use still predicts this region."]
    assert by_label(at.button, "Start training").disabled
    at.radio(key="train_source").set_value("patches").run()
    assert not [i for i in at.info if i.value.startswith("This region is")]
    assert not by_label(at.button, "Start training").disabled
    at.radio(key="train_source").set_value("region").run()
    at.switch_page("pages/region.py").run()  # a 100 px field: the 64 px patch fits, the default 256 px one does not
    fake_map.value = {"all_drawings": [drawn_feature([(500, 500), (600, 500), (600, 600), (500, 600)])]}
    at.run()
    at.switch_page("pages/data.py").run()
    assert at.selectbox(key="patch_size").options == ["64"] and at.selectbox(key="patch_size").value == 64
    at.switch_page("pages/model.py").run()
    assert not [i for i in at.info if i.value.startswith("This region is")]
    patch = at.selectbox(key="train_patch")
    assert patch.options == ["64"] and patch.value == 64  # (256 by default, which a 100 px region does not hold)
    assert "Sizes up to the region's 100 px" in patch.help
    assert not calls
    fake_map.value = {"all_drawings": [drawn_feature([(500, 500), (540, 500), (540, 540), (500, 540)])]}
    at.switch_page("pages/region.py").run()
    at.run()
    jobs_root = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs"
    assert not jobs_root.exists() or not any(jobs_root.iterdir())
    # its scores come with a caution: a few pixels move them
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    cm = at.table[0].value.map(lambda v: int(str(v).replace(",", "")))
    crop, other = int(cm["label: crop"].sum()), int(cm["label: not crop"].sum())
    assert 0 < crop + other <= 1600 and min(crop, other) < 1000
    which = "either class" if max(crop, other) < 1000 else "crop" if crop < 1000 else "not crop"
    assert [c.value for c in at.caption if c.value.startswith("Few labelled pixels")] == [
        f"Few labelled pixels of {which} ({crop:,} crop, {other:,} not crop): a handful of pixels moves these "
        "scores, and the best threshold found here is a guess; judge the model on a larger region."]


def test_a_click_on_the_sample_is_not_read_on_another_images_map(fake_map):
    """The browser sends a map's last click again: a point in the sample's pixels (row 150: "latitude"
    -150) was read on the map of a georeferenced image chosen next, and PROJ's "utm: Invalid latitude"
    stood above the Data map. Now the click belongs to the image it was made on; a new one is read."""
    from testdata import FLANDERS_LABELS, FLANDERS_S2

    at = new_app()
    at.switch_page("pages/data.py").run()
    click_map(at, "data_map", -150.5, 120.5)
    at.run()
    assert not at.exception and readout(fake_map)[0].startswith("Pixel row 150, column 120: ")
    at.session_state["source"] = {"kind": "local", "image": str(FLANDERS_S2), "labels": str(FLANDERS_LABELS),
                                  "label_map": "worldcereal", "title": FLANDERS_S2.name, "band_map": None}
    at.session_state["region"] = at.session_state["scene"] = None  # as state.set_source leaves them
    at.run()
    assert not at.exception and not at.error
    assert readout(fake_map) is None
    lat, lng = 50.816, 3.024  # a pixel of the Flanders image, clicked on its map
    from core.inspect import pixel_at
    from core.raster import grid_of_file

    assert pixel_at(lng, lat, grid_of_file(FLANDERS_S2)) is not None
    click_map(at, "data_map", lat, lng)
    at.run()
    assert not at.exception and readout(fake_map)[0].startswith("50.81600° N, 3.02400° E: ")
    # a corner of the UTM image's lon/lat box (where the map takes clicks) holds no pixel: the map is told
    # so (it waited for a reading, "Reading the pixel...", for good)
    from core.overlays import map_bounds

    (s, w), _ = map_bounds(grid_of_file(FLANDERS_S2))
    assert pixel_at(w + 1e-6, s + 1e-6, grid_of_file(FLANDERS_S2)) is None
    click_map(at, "data_map", s + 1e-6, w + 1e-6)
    at.run()
    assert not at.exception and readout(fake_map) == ["No pixel of the region here: click inside it", s + 1e-6, w + 1e-6]


def test_own_image_with_band_numbers_on_region_and_data_pages(fake_map):
    """A user's GeoTIFF without band names, used with band numbers: real place, hectares."""
    at = own_image_app()
    at.run()
    assert not at.exception and not at.error
    # the sidebar names its CRS in words beside the code (an agronomist knows "UTM zone 33N", not "EPSG:32633")
    assert any(", EPSG:32633, WGS 84 / UTM zone 33N" in e.value for e in at.sidebar.success)
    html = fake_map.maps[-1][0].get_root().render()
    assert "L.CRS.Simple" not in html and "not georeferenced" not in html
    # one area, the pixels' (the whole image's footprint in lon/lat gave 0.2 ha more beside it)
    assert {m.label: m.value for m in at.metric}["Area"] == f"{288 * 272 * 100 / 10_000:,.1f} ha"
    assert not [c.value for c in at.caption if "ha" in c.value and "shape" in c.value]
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception and not at.error
    area = {m.label: m.value for m in at.metric}["Area"]
    assert area == f"{288 * 272 * 100 / 10_000:,.1f} ha"
    assert f"of the region's {288 * 272:,} pixels have data in every band" in " ".join(c.value for c in at.caption)
    # without band numbers, the same file is refused with a message saying how to fix it
    at.session_state["source"] = {**at.session_state["source"], "band_map": None}
    at.session_state["scene"] = None
    at.run()
    assert any("cannot be told apart" in e.value for e in at.error)


def test_region_page_refuses_a_region_over_no_data_and_warns_of_one_mostly_over_it(fake_map, tmp_path):
    """The Region page looks at the data: over no data only, no way on to the Data page (which
    would only then say so); mostly over no data, on with a warning of the share with data."""
    from testdata import write_raster

    data = np.full((4, 300, 300), 1000, np.int16)
    data[:, :280, :280] = 0  # no data
    image = write_raster(tmp_path / "img.tif", data, descriptions=["R", "G", "B", "NIR"])
    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(image), "labels": None, "label_map": None,
                                  "title": "img.tif", "band_map": None}
    at.session_state["region"] = Region.from_bbox(0, 0, 270, 270, crs="image").to_geojson()
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["The region lies over no image data (no data: grey hatching on the map); "
                                           "draw it over the image"]
    at.session_state["region"] = Region.from_bbox(0, 0, 290, 290, crs="image").to_geojson()
    at.run()
    assert not at.exception and not at.error
    assert "Only 7% of the region has image data; the rest is no data (grey hatching on the map) and is left out" in [
        w.value for w in at.warning]


def test_own_files_form_comes_back_with_the_choices_in_use(fake_map):
    """Back on the Region page after the other pages, the own-files form showed cdl and no band
    numbers again, so using the files once more failed with the error fixed before."""
    at = own_image_app()
    at.session_state["source"] = {**at.session_state["source"], "labels": str(OWN_IMAGE), "label_map": "worldcereal"}
    at.run()
    assert next(s for s in at.selectbox if s.label == "Label map").value == "worldcereal"
    assert at.text_input(key="upload_bands").value == "R=1,G=2,B=3,NIR=4"
    at = new_app()  # the sample scene: the defaults
    at.run()
    assert next(s for s in at.selectbox if s.label == "Label map").value == "cdl"
    assert at.text_input(key="upload_bands").value == ""


def test_another_image_chosen_does_not_take_the_band_numbers_of_the_one_in_use(fake_map, monkeypatch):
    """An image in use with band numbers 5-8 (its 8 bands named none), then a 4-band image chosen: the form
    kept R=5,...,NIR=8 for it, and its upload was refused ("Band R=5 does not exist"). The image in use,
    chosen again, still gets its own."""
    from testdata import FLANDERS_S2

    files = {"upload_image": None, "upload_labels": None}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = own_image_app()
    at.session_state["source"] = {**at.session_state["source"], "band_map": {"R": 5, "G": 6, "B": 7, "NIR": 8},
                                  "labels": str(OWN_IMAGE), "label_map": "worldcereal"}
    at.run()
    assert at.text_input(key="upload_bands").value == "R=5,G=6,B=7,NIR=8"  # (back on the page: the choices in use)
    files["upload_image"] = Upload(FLANDERS_S2)
    at.run()
    assert at.text_input(key="upload_bands").value == ""
    assert next(s for s in at.selectbox if s.label == "Label map").value == "cdl"
    by_label(at.button, "Use these files").click().run()
    assert not at.exception and not at.error and at.session_state["source"]["title"] == FLANDERS_S2.name
    files["upload_image"] = Upload(OWN_IMAGE)  # the first one again, chosen by hand: typed as it needs
    at.run()
    assert at.text_input(key="upload_bands").value == ""


def test_region_page_warns_about_sentinel2_values_with_their_offset(fake_map, tmp_path, tiny_model_path, monkeypatch):
    """Sentinel-2 L2A with its +1000 offset: the page says what to fix when the image is shown, and
    the prediction's summary download carries the warning (as the CLI's summary.json does)."""
    import core.predict
    import rasterio

    with rasterio.open(OWN_IMAGE) as src:
        data, profile = src.read(), src.profile
    data[:, (data != 0).any(axis=0)] += 1000
    with rasterio.open(tmp_path / "s2_offset.tif", "w", **profile) as dst:
        dst.write(data)
    at = own_image_app()
    at.run()
    assert not at.exception and not at.warning  # the file as it is: nothing to say
    at.session_state["source"] = {**at.session_state["source"], "image": str(tmp_path / "s2_offset.tif")}
    at.session_state["scene"] = None
    at.run()
    assert not at.exception and not at.error
    assert any("Sentinel-2 L2A" in w.value and "-offset -0.1" in w.value for w in at.warning)
    summaries, real_summary = [], core.predict.prediction_summary
    monkeypatch.setattr(core.predict, "prediction_summary",
                        lambda *a, **k: summaries.append(real_summary(*a, **k)) or summaries[-1])
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()  # Predict
    assert not at.exception and not at.error
    assert summaries and any("Sentinel-2 L2A" in w for w in summaries[-1]["warnings"])


def test_large_areas_are_shown_in_whole_hectares():
    from core.metrics import format_hectares as hectares

    assert hectares(783.36) == "783.4 ha" and hectares(999.94) == "999.9 ha" and hectares(999.96) == "1,000 ha"
    assert hectares(8_509.96) == "8,510 ha"  # (one precision from 1,000 ha: "8,510.0 ha" beside "16,671 ha")
    assert hectares(1_537_572.5) == "1,537,572 ha"  # fits a metric's column (round half to even)


def _own_image_chosen(monkeypatch, bands: str):
    """The app with OWN_IMAGE chosen in the upload form (no labels) and ``bands`` typed as its band
    numbers; returns it and the uploader's files (change them to choose others)."""
    files = {"upload_image": Upload(OWN_IMAGE), "upload_labels": None}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = new_app()
    at.run()
    at.text_input(key="upload_bands").set_value(bands)
    return at, files


def test_an_upload_error_said_again_on_later_runs_is_written_as_at_first(fake_map, monkeypatch):
    """A bad band list for an uploaded image: its error, said again while the file is chosen (e.g.
    after a region is drawn), lost its capital letter ("bad band list ...")."""
    at, files = _own_image_chosen(monkeypatch, "a,b,c,d")
    by_label(at.button, "Use these files").click().run()
    assert not at.exception
    [first] = [e.value for e in at.error]
    assert first.startswith("Bad band list")
    at.run()  # another run, the file still chosen: the same words
    assert [e.value for e in at.error] == [first]
    # not said of another image chosen in its place
    from testdata import FLANDERS_S2

    files["upload_image"] = Upload(FLANDERS_S2)
    at.run()
    assert not at.exception and not [e.value for e in at.error if e.value.startswith("Bad band list")]


def test_the_upload_notice_goes_once_another_source_is_in_use(fake_map, monkeypatch):
    """"Using <file>" stayed under the upload box while its file was still chosen there, after a preset
    had replaced it as the source (with "The map above now shows the whole image": the sample's)."""
    at, files = _own_image_chosen(monkeypatch, "1,2,3,4")
    by_label(at.button, "Use these files").click().run()
    assert not at.exception and [s.value for s in at.success if s.value.startswith(f"Using {OWN_IMAGE.name}")]
    at.run()  # said again while it is the source and its file is chosen
    assert [s.value for s in at.success if s.value.startswith(f"Using {OWN_IMAGE.name}")]
    by_label(at.button, "Sample scene (whole image)").click().run()
    assert not at.exception and at.session_state["source"] == {"kind": "sample"}
    assert not [s.value for s in at.success if OWN_IMAGE.name in s.value], [s.value for s in at.success]
    assert not [c.value for c in at.caption if c.value.startswith("The map above now shows the whole image")]


def test_uploaded_geojson_outside_image(fake_map):
    at = new_app()
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"},
                                  "geometry": {"type": "Polygon", "coordinates": [[[2000, 2000], [2400, 2000], [2400, 2400], [2000, 2000]]]}}
    at.run()
    assert not at.exception
    assert any("outside the image" in e.value for e in at.error)


def test_the_geojson_upload_names_its_own_limit():
    """The GeoJSON upload box showed only the server's "Limit 200MB per file" (for images); its 5 MB was in a tooltip."""
    from core.geojson import MAX_GEOJSON_BYTES
    from core.sources.local import MAX_FIELDS_UPLOAD_BYTES

    at = new_app()
    at.run()
    [label] = [u.proto.label for u in at.get("file_uploader") if "Polygon" in u.proto.label]
    assert label.endswith(f"(up to {MAX_GEOJSON_BYTES // 2**20} MB)")
    # and the labels box's GeoJSON of fields its own
    [label] = [u.proto.label for u in at.get("file_uploader") if "surveyed fields" in u.proto.label]
    assert label.endswith(f"a GeoJSON of surveyed fields up to {MAX_FIELDS_UPLOAD_BYTES // 2**20} MB")


def _upload_regions_script():
    import json

    import streamlit as st

    from core.errors import CropMapError
    from pages.components import scene, state

    for name, geo in st.session_state["uploads"]:
        try:  # (bytes as a file holds them, or a GeoJSON object)
            skipped = scene.use_uploaded_region(geo if isinstance(geo, bytes) else json.dumps(geo).encode(), name)
            st.session_state["left_out"] = skipped
        except CropMapError as err:
            st.error(str(err))
    st.session_state["region_after"] = state.get(state.REGION)


def test_an_uploaded_region_the_source_cannot_use_is_refused_and_the_region_kept(fake_map):
    def poly(coords, crs=None):
        return {"type": "Feature", "properties": {"crs": crs} if crs else {},
                "geometry": {"type": "Polygon", "coordinates": [coords]}}

    at = AppTest.from_function(_upload_regions_script, default_timeout=TIMEOUT)
    at.session_state["uploads"] = [
        ("inside.geojson", poly([[0, 0], [300, 0], [300, 300], [0, 300], [0, 0]], "image")),
        ("outside.geojson", poly([[2000, 2000], [2400, 2000], [2400, 2400], [2000, 2000]], "image")),
        ("lonlat.geojson", poly([[-72.7, -16.6], [-72.69, -16.6], [-72.69, -16.59], [-72.7, -16.6]])),
        ("tiny.geojson", poly([[0, 0], [5, 0], [5, 5], [0, 5], [0, 0]], "image")),
        ("line.geojson", poly([[0, 0], [300, 0], [0, 0]], "image")),  # not a polygon at all
    ]
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 4 and all(e.endswith("The region in use is kept.") for e in errors)
    assert errors[3].startswith("the file line.geojson cannot be used: ")
    # a file's region is not told to draw itself over the image
    assert errors[0].startswith("the file outside.geojson cannot be used: the region lies outside the image")
    assert "; give a region over the data (draw one, or upload another file). The region in use is kept." in errors[0]
    assert "the file lonlat.geojson cannot be used: this image is not georeferenced" in errors[1]
    assert "at least 8 x 8 px" in errors[2]
    assert at.session_state["region_after"]["properties"]["name"] == "inside.geojson"  # the usable one, kept


def test_an_uploaded_region_not_in_utf8_names_the_features_it_leaves_out(fake_map):
    """A Windows-1252 file with a point among its fields: the region was read, then the features
    without a polygon were looked for in the bytes as UTF-8, which raised a traceback."""
    import json

    fields = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Feld Müller", "crs": "image"},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [300, 0], [300, 300], [0, 300], [0, 0]]]}},
        {"type": "Feature", "properties": {"name": "Brunnen Jäger"}, "geometry": {"type": "Point", "coordinates": [5, 5]}}]}
    at = AppTest.from_function(_upload_regions_script, default_timeout=TIMEOUT)
    at.session_state["uploads"] = [("felder.geojson", json.dumps(fields, ensure_ascii=False).encode("cp1252"))]
    at.run()
    assert not at.exception and not at.error
    assert at.session_state["left_out"] == ["Brunnen Jäger"]
    assert at.session_state["region_after"]["properties"]["name"] == "Feld Müller"


def test_region_drawn_outside_the_image_can_be_taken_back(fake_map):
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.run()
    assert not at.error
    fake_map.value = {"all_drawings": [drawn_feature([(2000, 2000), (2400, 2000), (2400, 2400), (2000, 2400)])]}
    at.run()
    assert not at.exception
    assert any("outside the image" in e.value for e in at.error)
    # a second mistake (too small) does not make the first one the region to go back to
    fake_map.value = {"all_drawings": [drawn_feature([(10, 10), (15, 10), (15, 15), (10, 15)])]}
    at.run()
    assert any("at least 8 x 8 px" in e.value for e in at.error)
    back = by_label(at.button, "Back to the previous region (90,000 px)")  # SQUARE_300 has no name
    back.click().run()
    assert not at.exception
    assert at.session_state["region"] == SQUARE_300
    assert not at.error
    assert at.metric[0].value.startswith("90,000")
    # The same drawing, still in the map's drawings, is not taken again
    at.run()
    assert at.session_state["region"] == SQUARE_300


def test_a_refused_region_shows_its_shape_and_the_way_back_the_area_the_page_showed(fake_map):
    """The Back button said the previous shape's whole area (117,663 pixels) where the page had shown the
    pixels used (117,420 px); a shape off the image was the "Area" (1,357,645 pixels) in another unit."""
    at = new_app()
    at.run()
    fake_map.value = {"all_drawings": [drawn_feature([(900, 100), (1100, 100), (1100, 300), (900, 300)])]}
    at.run()  # partly off the 1024 px image: 124 of its 200 columns are used
    assert not at.error and at.metric[0].label == "Area" and at.metric[0].value == "24,800 px"
    fake_map.value = {"all_drawings": [drawn_feature([(2000, 2000), (2400, 2000), (2400, 2400), (2000, 2400)])]}
    at.run()
    assert any("outside the image" in e.value for e in at.error)
    assert (at.metric[0].label, at.metric[0].value) == ("Area drawn", "160,000 px")
    assert by_label(at.button, "Back to the previous region (drawn, 24,800 px)")


def test_region_page_area_is_the_pixels_used_of_a_shape_partly_outside_the_image(fake_map):
    """The headline area is that of the pixels every other page counts (inside the shape and the
    image), not the whole shape's, with the shape's own area in a line under it; and the sample's
    gaps (light grey) are named under the map."""
    at = new_app()
    at.run()
    assert any(c.value.startswith("Grey hatching on the map: no image data (") for c in at.caption)
    assert not [c for c in at.caption if c.value.startswith("About ")]  # (the whole image: the line above says it)
    fake_map.value = {"all_drawings": [drawn_feature([(900, 100), (1124, 100), (1124, 300), (900, 300)])]}
    at.run()
    assert not at.exception and not at.error
    assert at.metric[0].label == "Area" and at.metric[0].value == f"{124 * 200:,} px"  # columns 900-1023
    assert any(c.value.startswith(f"The region's shape covers {224 * 200:,} pixels") for c in at.caption)
    assert not [c for c in at.caption if c.value.startswith("About ")]  # all of it has data
    # a region partly over a gap: the share with data (the area counts every pixel), from the check's sample
    fake_map.value = {"all_drawings": [drawn_feature([(650, 800), (900, 800), (900, 1000), (650, 1000)])]}
    at.run()
    assert at.metric[0].value == f"{250 * 200:,} px"
    [share] = [c.value for c in at.caption if c.value.startswith("About ")]
    assert share == "About 73% of the region has image data; only that part is predicted and counted."  # 128 x 104 px gap


def test_region_outside_the_image_offers_the_whole_image_back_once(fake_map):
    at = new_app()
    at.run()
    fake_map.value = {"all_drawings": [drawn_feature([(2000, 2000), (2400, 2000), (2400, 2400), (2000, 2400)])]}
    at.run()
    assert at.error
    assert [b.label for b in at.button if b.label.startswith(("Back", "Reset"))] == ["Reset to the whole image"]
    fake_map.value = None  # the map, drawn again around the new region, has no drawings
    by_label(at.button, "Reset to the whole image").click().run()
    assert at.session_state["region"] is None
    assert not at.error and at.metric[0].value.startswith("1,048,576")


def test_the_backdrop_of_a_large_image_is_read_as_an_overview_in_the_images_own_bounds(monkeypatch):
    """The whole image was read at full size for the backdrop: 8 GB for a Sentinel-2 tile."""
    from core.overlays import map_bounds
    from core.raster import ImageReader
    from pages.components import cached
    from testdata import SAMPLE_IMAGE

    path = str(SAMPLE_IMAGE)
    cached.source_preview.clear()
    with monkeypatch.context() as m:  # as a full-size read of a large image
        m.setattr(ImageReader, "read", lambda *a, **k: (_ for _ in ()).throw(MemoryError("read whole")))
        small = cached.source_preview(path, cached.mtime(path), None, max_side=128)  # read at 256 px of 1,024
    whole = cached.source_preview(path, cached.mtime(path), None, max_side=1024)
    with ImageReader(path) as r:
        _, valid = r.read()
    assert small[1] == whole[1] == r.grid  # the image's grid, and its bounds on the map
    assert small[0].bounds == whole[0].bounds == map_bounds(r.grid) and small[0].width == 128
    assert whole[4] == int((~valid).sum())  # pixels without data: counted, or estimated from the overview
    assert abs(small[4] - whole[4]) < 0.01 * valid.size
    assert np.allclose(small[3], whole[3], atol=0.01)  # the colour stretch


def test_uploaded_labels_that_read_as_all_crop_with_the_chosen_map_are_warned_of(fake_map, monkeypatch, tmp_path):
    """Labels without a band name start on CDL: WorldCover's codes read so were all crop, with a green box."""
    from test_evaluate import in_worldcover_codes
    from testdata import FLANDERS_S2

    files = {"upload_image": Upload(FLANDERS_S2), "upload_labels": Upload(in_worldcover_codes(tmp_path / "wc.tif"))}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = new_app()
    at.run()
    by_label(at.button, "Use these files").click().run()
    assert not at.exception and not [e for e in at.success if e.value.startswith("Using")]
    [said] = [e.value for e in at.warning if "read as crop" in e.value]
    assert said.startswith(f"Using {FLANDERS_S2.name}: 64 x 64 px")
    assert "Labels: 4,096 labelled pixels, 4,096 crop. wc.tif: 100.0% of the labelled pixels read as crop" in said
    at.run()  # said again on a later run while the files are chosen
    assert [e.value for e in at.warning if "read as crop" in e.value] == [said]
    by_label(at.selectbox, "Label map").set_value("worldcover")
    by_label(at.button, "Use these files").click().run()
    assert not [e for e in at.warning if "read as crop" in e.value]
    assert any("Labels: 4,096 labelled pixels, 1,401 crop." in e.value for e in at.success)


def test_uploaded_labels_of_part_of_the_image_say_how_much_of_it_they_label(fake_map, monkeypatch, tmp_path):
    """Labels of the fields surveyed (a smaller raster on the image's pixels) were counted with no word
    that most of the image has no label, which the Quality page's figures then leave out."""
    import rasterio
    from rasterio.windows import Window
    from testdata import FLANDERS_LABELS, FLANDERS_S2

    part = tmp_path / "surveyed.tif"
    with rasterio.open(FLANDERS_LABELS) as src:
        window = Window(8, 16, 32, 24)  # 768 of the 4,096 pixels
        profile = src.profile | {"width": 32, "height": 24, "transform": src.window_transform(window)}
        with rasterio.open(part, "w", **profile) as dst:
            dst.write(src.read(window=window))
            dst.descriptions = src.descriptions
    files = {"upload_image": Upload(FLANDERS_S2), "upload_labels": Upload(part)}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = new_app()
    at.run()
    by_label(at.selectbox, "Label map").set_value("worldcereal")
    by_label(at.button, "Use these files").click().run()
    assert not at.exception
    [said] = [e.value for e in at.success if e.value.startswith("Using")]
    assert "Labels: 768 labelled pixels (19% of the image's pixels; the others have no label)," in said


def test_a_region_name_from_a_file_shows_as_text_not_markdown(fake_map):
    """A GeoJSON's name went into the sidebar as Markdown: a remote image (a request the offline app
    never makes otherwise) and a link, shown to whoever opened the session's link."""
    at = new_app()
    name = "![t](https://tracker.example/p.png) [Log in again](https://phish.example) *fields*"
    at.session_state["region"] = {**SQUARE_300, "properties": {"crs": "image", "name": name}}
    at.run()
    assert not at.exception
    shown = [e.value for e in at.caption if e.value.startswith("Region: ")] + \
            [e.value for e in at.markdown if "tracker" in e.value]
    assert len(shown) == 2
    for text in shown:  # every Markdown character escaped: no image, link or emphasis
        assert "\\!\\[t\\]\\(https://tracker\\.example/p\\.png\\)" in text and "\\*fields\\*" in text
        assert "](" not in text


def test_an_uploaded_file_of_several_fields_keeps_them_apart(fake_map):
    """A GeoJSON of named fields (one twice as large, overlapping another): one region whose parts the
    Region page counts, whose area counts the overlap once, and which the session keeps by name."""
    import json

    fields = {"type": "FeatureCollection", "crs": "image", "features": [
        {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": [
            [[c0, 100], [c1, 100], [c1, 200], [c0, 200], [c0, 100]]]}} for name, c0, c1 in (("A", 100, 200), ("B", 150, 300))]}
    at = AppTest.from_function(_upload_regions_script, default_timeout=TIMEOUT)
    at.session_state["uploads"] = [("fields.geojson", fields)]
    at.run()
    stored = at.session_state["region_after"]
    assert stored["properties"]["parts"] == ["A", "B"] and stored["properties"]["name"] == "A, B"
    at = new_app()
    at.session_state["region"] = json.loads(json.dumps(stored))
    at.run()
    assert not at.exception and not at.error
    assert any(c.value.startswith("2 parts (one per feature of the file)") for c in at.caption)
    assert at.metric[0].value.startswith("20,000")  # 100 x 100 and 150 x 100 px, 50 x 100 of them in both


def test_an_uploaded_image_that_is_refused_is_not_kept_in_the_work_folder(fake_map, monkeypatch, tmp_path):
    """A refused upload (here: bands that cannot be told apart) stayed in the work folder, up to 200 MB a
    time; the same file accepted stays, and a refusal later (other labels) leaves it where it is in use."""
    import os

    files = {"upload_image": Upload(OWN_IMAGE), "upload_labels": None}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    uploads = Path(os.environ["CROPMAP_WORKDIR"]) / "uploads"

    def kept():
        # (not the empty mark of an upload found stored already: core.sources.local.save_upload)
        return sorted(p.name for p in uploads.rglob("*") if p.is_file() and not p.name.endswith(".taken")) \
            if uploads.exists() else []

    at = new_app()
    at.run()
    by_label(at.button, "Use these files").click().run()
    assert not at.exception and any("cannot be told apart" in e.value for e in at.error)
    assert kept() == [] and (not uploads.exists() or not any(uploads.iterdir()))  # no empty hash folder either
    at.text_input(key="upload_bands").set_value("1,2,3,4")
    by_label(at.button, "Use these files").click().run()
    assert not at.exception and not at.error and kept() == [OWN_IMAGE.name]
    files["upload_labels"] = Upload(OWN_IMAGE, "labels.tif")  # an image given as labels: refused
    by_label(at.button, "Use these files").click().run()
    assert not at.exception and at.error
    assert kept() == [OWN_IMAGE.name]  # the image in use stays; the refused labels file went


def test_averaged_copies_of_refused_files_are_not_kept_and_the_error_names_the_users_file(fake_map, monkeypatch,
                                                                                          tmp_path):
    """Labels with no labelled pixel under the label map chosen, with "Average to 30 m pixels": the error
    named the averaged copy ("labels_30m_cdl.tif"), a file the user never saw, and the copies of both
    files stayed in the work folder (the uploads themselves went)."""
    import rasterio

    from testdata import FLANDERS_S2

    with rasterio.open(FLANDERS_S2) as src:
        profile, shape = src.profile, (src.height, src.width)
    profile.update(count=1, dtype="uint8", nodata=None)
    labels = tmp_path / "my_fields.tif"
    with rasterio.open(labels, "w", **profile) as dst:  # CDL code 0 everywhere: no labelled pixel
        dst.write(np.zeros((1, *shape), np.uint8))
    files = {"upload_image": Upload(FLANDERS_S2, "flanders.tif"), "upload_labels": Upload(labels)}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    uploads = Path(os.environ["CROPMAP_WORKDIR"]) / "uploads"
    at = new_app()
    at.run()
    at.checkbox(key="upload_resample").check()
    by_label(at.button, "Use these files").click().run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert "my_fields.tif holds no labelled pixel" in error and "30m" not in error, error
    assert not uploads.exists() or not any(uploads.rglob("*")), sorted(p.name for p in uploads.rglob("*"))


def test_a_box_entered_by_its_coordinates_becomes_the_region(fake_map):
    """The box field holds the region in use (to copy or edit); a box typed there becomes the region:
    pixels on the sample scene, degrees on a georeferenced image; a box the source cannot use, or text
    that is not a box, is refused with the reason and the region in use is kept."""
    at = new_app()
    at.run()
    [box] = [t for t in at.text_input if t.label == "Box"]
    assert box.value == "0, 0, 1024, 1024"  # the whole sample
    box.set_value("100, 200, 500, 600").run()
    by_label(at.button, "Use this box").click().run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "160,000 px" and at.session_state["region"]["properties"]["name"] == "box"
    [box] = [t for t in at.text_input if t.label == "Box"]
    assert box.value == "100, 200, 500, 600"
    for text, said in (("100, 200, 110", "a box is four numbers"), ("2000, 0, 2100, 100", "cannot be used")):
        box.set_value(text).run()
        by_label(at.button, "Use this box").click().run()
        assert not at.exception and any(said in e.value and "The region in use is kept" in e.value for e in at.error), \
            [e.value for e in at.error]
        assert at.metric[0].value == "160,000 px"
        [box] = [t for t in at.text_input if t.label == "Box"]
    # a georeferenced image: degrees (a box inside the Austrian test image)
    at = own_image_app()
    at.run()
    # its whole image's box, used as it is: the whole image stays the region (a box cut to its extent, used
    # again and again, was "cut" each time, and the prediction forgotten)
    by_label(at.button, "Use this box").click().run()
    assert [i.value for i in at.info if "in use" in i.value] == ["This box covers the whole image, the region in use."]
    assert at.session_state["region"] is None
    [box] = [t for t in at.text_input if t.label == "Box"]
    w, s, e, n = (float(v) for v in box.value.split(", "))
    assert 9 < w < e < 17 and 46 < s < n < 49
    inner = f"{w + (e - w) / 4:.6f}, {s + (n - s) / 4:.6f}, {e - (e - w) / 4:.6f}, {n - (n - s) / 4:.6f}"
    box.set_value(inner).run()
    by_label(at.button, "Use this box").click().run()
    assert not at.exception and not at.error
    assert at.metric[0].value.endswith(" ha") and [t for t in at.text_input if t.label == "Box"][0].value == inner
    # latitude first (as a map's search box gives a place): outside the image, and said so with the fix
    swapped = ", ".join(inner.split(", ")[i] for i in (1, 0, 3, 2))
    [box] = [t for t in at.text_input if t.label == "Box"]
    box.set_value(swapped).run()
    by_label(at.button, "Use this box").click().run()
    [said] = [e.value for e in at.error]
    assert "the numbers look like latitude, longitude" in said and "The region in use is kept" in said, said
    # a box past the image's corner, on a UTM image (turned against the meridians): cut to its extent in degrees,
    # said so (it said "cut to the image's edges", beside "part of the region lies outside the image")
    past = f"{w + (e - w) / 2:.6f}, {s + (n - s) / 2:.6f}, {e + 0.01:.6f}, {n + 0.01:.6f}"
    [box] = [t for t in at.text_input if t.label == "Box"]
    box.set_value(past).run()
    by_label(at.button, "Use this box").click().run()
    assert not at.exception and not at.error
    assert any(i.value.startswith("The box was cut to the image's extent in longitude and latitude: ") for i in at.info)
    assert not [i.value for i in at.info if "cut to the image's edges" in i.value]


def test_a_typed_box_past_the_image_is_cut_to_it_and_a_reversed_one_put_in_order(fake_map):
    """The sample scene (pixels): a box reaching past the image was taken as typed ("Region OK" beside a
    shape of 25 Mpx, the map zoomed out to it); reversed edges were refused in a programmer's terms,
    and errors gave a lon/lat example and said to draw."""
    at = new_app()
    at.run()

    def use(text):
        [box] = [t for t in at.text_input if t.label == "Box"]
        box.set_value(text).run()
        by_label(at.button, "Use this box").click().run()
        assert not at.exception
        return [t for t in at.text_input if t.label == "Box"][0].value

    assert use("-50, -50, 5000, 5000") == "0, 0, 1024, 1024" and not at.error
    assert [i.value for i in at.info if "cut to the image's edges" in i.value] == [
        "The box was cut to the image's edges: 0, 0, 1024, 1024."]
    # back to the whole image, whose box that is: the note was told again (beside a later upload's error)
    by_label(at.button, "Reset to the whole image").click().run()
    assert not at.exception and not [i.value for i in at.info if "cut to the image's edges" in i.value]
    assert use("400, 300, 100, 100") == "100, 100, 400, 300" and not at.error
    assert at.metric[0].value == "60,000 px" and not [i for i in at.info if "cut to" in i.value]
    # fractions of pixels kept (shown rounded, the box typed as shown was taken for the one in use); the box it
    # fits is of the pixels it touches (the scene's, the GeoTIFFs' size), its area of the 8 x 8 px used
    assert use("100.4, 100.4, 108.4, 108.4") == "100.4, 100.4, 108.4, 108.4" and not at.error
    assert any("Region OK: it fits a box of 9 x 9 px" in s.value for s in at.success) and at.metric[0].value == "64 px"
    assert use("100, 100, 108, 108") == "100, 100, 108, 108" and at.metric[0].value == "64 px"
    # a box to more decimals than the field's: shown to 2, and that, used again, is the box in use (it was used
    # anew, the scene and prediction forgotten)
    assert use("100.456, 100, 200.004, 200") == "100.46, 100, 200, 200"
    region = at.session_state["region"]
    use("100.46, 100, 200, 200")
    assert [i.value for i in at.info if "in use" in i.value] == ["This box is the region in use."]
    assert at.session_state["region"] == region
    for text, said in (("hello world", "e.g. 100, 100, 400, 300"),
                       ("2000, 0, 2100, 100", "whose edges are 0, 0, 1024, 1024"),
                       ("100, 100, 103, 400", "enter a larger box")):
        use(text)
        [error] = [e.value for e in at.error]
        assert said in error and "draw" not in error and "-72" not in error, error


def test_surveyed_fields_uploaded_as_geojson_are_the_labels(fake_map, monkeypatch, tmp_path):
    """A GeoJSON of surveyed fields as the labels of an own image: its class property and label map are
    found from its values, it is burnt onto the image's pixels, and what it leaves out is said."""
    import json

    from test_field_labels import surveyed_parcels
    from testdata import FLANDERS_S2

    parcels = surveyed_parcels()
    parcels["features"][0]["properties"]["crop"] = None  # a field not surveyed
    path = tmp_path / "survey.geojson"
    path.write_text(json.dumps(parcels))
    files = {"upload_image": Upload(FLANDERS_S2), "upload_labels": Upload(path)}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = new_app()
    at.run()
    assert not at.exception
    prop = at.selectbox(key="upload_field_property")
    assert prop.value == "crop" and prop.options == ["crop", "LC"]
    assert by_label(at.selectbox, "Label map").value == "binary"
    by_label(at.button, "Use these files").click().run()
    assert not at.exception
    [said] = [e.value for e in at.warning if e.value.startswith("Using")]
    first = parcels["features"][0]["properties"]["name"]
    assert f"1 field(s) of survey.geojson have no crop and are left out: {first}" in said
    source = at.session_state["source"]
    assert source["label_map"] == "binary" and source["labels"].endswith("survey_labels.tif")
    # the labels in use are the surveyed pixels: crop where the register has cropland (LC 11)
    import rasterio

    from core.labels import CLASS_MAPS
    from core.raster import grid_of_file, read_labels
    from testdata import FLANDERS_LABELS

    mask = read_labels(source["labels"], CLASS_MAPS["binary"], grid=grid_of_file(FLANDERS_S2))
    with rasterio.open(FLANDERS_LABELS) as src:
        lc = src.read(1)
    assert (mask == 1).sum() + (mask == 0).sum() < (lc == 11).sum() + (lc == 13).sum()  # the unsurveyed field
    assert ((mask == 1) <= (lc == 11)).all() and ((mask == 0) <= (lc == 13)).all()
    assert f"Labels: {int((mask != 255).sum()):,} labelled pixels" in said
    # the other property, LC, is read through WorldCereal's map
    at.selectbox(key="upload_field_property").set_value("LC").run()
    assert not at.exception and by_label(at.selectbox, "Label map").value == "worldcereal"


def test_a_geojson_of_fields_without_a_class_says_so_where_it_was_chosen(fake_map, monkeypatch, tmp_path):
    import json

    from testdata import FLANDERS_S2

    path = tmp_path / "names.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "A", "kind": "maize"},
         "geometry": {"type": "Polygon", "coordinates": [[[3.0, 51.0], [3.1, 51.0], [3.1, 51.1], [3.0, 51.0]]]}}]}))
    files = {"upload_image": Upload(FLANDERS_S2), "upload_labels": Upload(path)}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = new_app()
    at.run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert "No property of names.geojson's fields holds class codes (its properties: kind, name)" in error
    by_label(at.button, "Use these files").click().run()
    assert not at.exception and any("names.geojson" in e.value for e in at.error)
    assert not [e for e in [*at.success, *at.warning] if e.value.startswith("Using")]  # the sample stays in use
    assert (at.session_state["source"] if "source" in at.session_state else {}).get("kind") != "local"


def test_what_an_uploaded_geojson_region_left_out_stays_said(fake_map, monkeypatch, tmp_path):
    """A point beside the polygon of an uploaded region: said in a toast that the reruns of the new map took
    away in under a second. Said in the page while that region is in use."""
    import json

    geo = tmp_path / "fields.geojson"
    geo.write_text(json.dumps({"type": "FeatureCollection", "crs": "image", "features": [
        {"type": "Feature", "properties": {"name": "well"}, "geometry": {"type": "Point", "coordinates": [300, 300]}},
        {"type": "Feature", "properties": {"name": "field"}, "geometry": {"type": "Polygon", "coordinates": [
            [[200, 200], [400, 200], [400, 400], [200, 400], [200, 200]]]}}]}))
    files = {"upload_geojson": Upload(geo)}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = new_app()
    at.run()
    by_label(at.button, "Use this GeoJSON region").click().run()
    said = "1 feature(s) of fields.geojson hold no polygon (points, lines, or an empty or no geometry) and are left out: well."
    for _ in range(2):  # (and on the runs after it: a map event, a widget)
        assert not at.exception and not at.error and said in [i.value for i in at.info], [i.value for i in at.info]
        at.run()
    at.session_state["region"] = None  # another region: no longer said
    at.run()
    assert said not in [i.value for i in at.info]


def test_earth_engine_preview_layers_that_failed_are_not_asked_for_again_for_a_minute(monkeypatch):
    """With Earth Engine's quota spent, every rerun of the Region page (a drawing, a setting) waited for the
    preview layers to fail again: the failure is kept a minute, in which the page goes on without them."""
    from core.ee.errors import EEQuotaError
    from pages.components import cached

    calls, now = [], [100.0]

    def failing(spec, region):
        calls.append(spec)
        raise EEQuotaError("quota exceeded; wait a minute and retry")

    monkeypatch.setattr(cached, "ee_map_layers", failing)
    cached._ee_layer_failures()["by_key"].clear()
    for region in ("{}", '{"drawn": 1}', '{"drawn": 2}'):  # (quota spent: for every region drawn meanwhile)
        assert cached.ee_preview_layers("{}", region, now=lambda: now[0]) == ([], "quota exceeded; wait a minute and retry")
        now[0] += 20
    assert len(calls) == 1
    assert cached.ee_preview_layers('{"other": 1}', "{}", now=lambda: now[0])[1] and len(calls) == 2  # (another source)
    now[0] += 1  # a minute after the failure: asked again
    monkeypatch.setattr(cached, "ee_map_layers", lambda spec, region: [{"name": "true colour"}])
    assert cached.ee_preview_layers("{}", "{}", now=lambda: now[0]) == ([{"name": "true colour"}], "")
    # a failure of the region itself (not one that passes) is kept for that region alone
    from core.errors import RegionError

    def bad_region(spec, region):
        raise RegionError("the region is not in longitude/latitude")

    monkeypatch.setattr(cached, "ee_map_layers", bad_region)
    assert cached.ee_preview_layers("{}", '{"bad": 1}', now=lambda: now[0])[1]
    monkeypatch.setattr(cached, "ee_map_layers", lambda spec, region: [{"name": "true colour"}])
    assert cached.ee_preview_layers("{}", "{}", now=lambda: now[0])[1] == ""


def test_a_region_with_a_part_beyond_the_image_is_looked_at_where_it_is_on_it(fake_map):
    """A file's MultiPolygon with one part on the sample scene and one beyond it: the check, the
    scene and the map were of the box from the one to the other (924 x 924 px, the map looking at
    the empty space past the image); they are of the part on the image."""
    inside = [[100, 100], [200, 100], [200, 200], [100, 200], [100, 100]]
    beyond = [[2000, 2000], [2100, 2000], [2100, 2100], [2000, 2100], [2000, 2000]]
    at = new_app()
    at.session_state["region"] = Region("image", ((tuple(map(tuple, inside)),), (tuple(map(tuple, beyond)),))).to_geojson()
    at.run()
    assert not at.exception and not at.error
    assert at.metric[0].value == f"{100 * 100:,} px"
    said = " ".join(m.value for m in [*at.success, *at.warning, *at.info, *at.caption])
    assert "fits a box of 100 x 100 px" in said and "924" not in said
    lat, lng = fake_map.maps[-1][0].location  # the map's centre: the part on the image (lat = -row)
    assert abs(lat + 150) < 1 and abs(lng - 150) < 1
    # the box field shows the box of that part (used, the box of all of it was cut to the image: 68 times larger)
    assert [t for t in at.text_input if t.label == "Box"][0].value == "100, 100, 200, 200"


def test_a_shape_the_image_map_cannot_take_is_said_as_an_error_beside_it(fake_map):
    """A degenerate drawing (all its corners on one line) on the sample's map: refused, said as an error
    beside the map, the region in use kept."""
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.run()
    fake_map.value = {"all_drawings": [drawn_feature([(100, 100), (200, 100), (300, 100)])]}
    at.run()
    assert not at.exception and at.session_state["region"] == SQUARE_300
    refused = [e.value for e in at.error if e.value.startswith("The shape drawn was not taken")]
    assert len(refused) == 1 and refused[0].endswith("The region in use is kept.")


def test_the_shape_drawn_before_a_reset_is_taken_again_when_drawn_again(fake_map):
    """Reset to the whole image, then the same shape drawn again: it becomes the region again (the
    page remembered it as the last drawing taken and ignored it)."""
    shape = drawn_feature([(100, 100), (500, 100), (500, 420), (100, 420)])
    at = new_app()
    at.run()
    fake_map.value = {"all_drawings": [shape]}
    at.run()
    drawn = at.session_state["region"]
    assert drawn is not None
    fake_map.value = None  # the map, drawn again around the new region, has no drawings
    by_label(at.button, "Reset to the whole image").click().run()
    assert at.session_state["region"] is None
    fake_map.value = {"all_drawings": [shape]}
    at.run()
    assert not at.exception and at.session_state["region"] == drawn
    assert at.metric[0].value.startswith("128,000")


def test_a_region_half_off_a_georeferenced_image_says_its_part_outside_is_left_out(fake_map):
    """A lon/lat box whose eastern half lies past the image's edge: the pixels used are the area, and the
    line under it says the part outside is left out (not that mere slivers of it are)."""
    at = own_image_app()  # the image spans about 13.121-13.160 E, 48.276-48.301 N
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "EPSG:4326"}, "geometry": {
        "type": "Polygon", "coordinates": [[[13.15, 48.28], [13.17, 48.28], [13.17, 48.29], [13.15, 48.29], [13.15, 48.28]]]}}
    at.run()
    assert not at.exception and not at.error
    [line] = [c.value for c in at.caption if c.value.startswith("The region's shape covers")]
    assert line.endswith("the part outside the image is left out.")
    assert at.metric[0].label == "Area"


def test_own_files_in_use_on_the_whole_image_lead_on_to_the_data_page(fake_map, monkeypatch):
    """Use these files with no region drawn: the page says that the whole image is the region and links
    on to the Data page (the form lies below the map, out of view)."""
    at, files = _own_image_chosen(monkeypatch, "1,2,3,4")
    by_label(at.button, "Use these files").click().run()
    assert not at.exception and not at.error and at.session_state["region"] is None
    assert [c.value for c in at.caption if c.value.startswith("The map above now shows the whole image, which is the region")]
    assert [link for link in at.get("page_link") if link.proto.label == "Next: Data (whole image)"]


def test_average_to_30_m_pixels_makes_the_source_the_averaged_copy(fake_map, monkeypatch):
    """'Average to 30 m pixels' ticked for a 10 m image: the source in use is its copy at 30 m, so named."""
    import rasterio

    at, files = _own_image_chosen(monkeypatch, "1,2,3,4")
    at.checkbox(key="upload_resample").check()
    by_label(at.button, "Use these files").click().run()
    assert not at.exception and not at.error
    source = at.session_state["source"]
    assert source["title"] == f"{OWN_IMAGE.stem} (30 m)"
    with rasterio.open(source["image"]) as src:
        assert src.res == (30.0, 30.0)
