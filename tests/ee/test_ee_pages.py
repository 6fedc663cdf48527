"""The dashboard on the Earth Engine source, offline: Earth Engine "configured" with fakes for
credentials, getMapId, getInfo and computePixels; the pages and core run for real (AppTest).

A user picks the Camana preset or sets sensor/dates/labels, draws a region on the real map, and
carries it through Data, Predict and Quality.
"""

from __future__ import annotations

import pytest

from core.ee.auth import EEStatus
from tests.ee.test_ee_source import fake_compute
from apptest import by_label, forms, map_calls, new_app
from fake_ee_ops import FakeAssets, image_asset

TILE_URL = "https://earthengine.googleapis.com/v1/projects/p/maps/fake-{n}/tiles/{{z}}/{{x}}/{{y}}"


@pytest.fixture()
def ee_configured(ee_offline, monkeypatch, tmp_path):
    """Earth Engine ready (fake credentials), fake map ids, scene summaries and pixels."""
    import ee
    import streamlit as st

    from core.ee import auth, tiles
    from core.ee.composites import _scene_summary_cached
    from pages.components import mapview
    from apptest import FakeMap

    ready = EEStatus(True, "p", "test", "Earth Engine ready: project p (test)")
    monkeypatch.setattr(auth, "status", lambda *a, **k: ready)
    calls = {"map_ids": 0, "getinfo": 0, "pixels": [], "sample": {"0": 1000, "1": 1000}}

    def get_map_id(image, vis):
        calls["map_ids"] += 1
        return {"url": TILE_URL.format(n=calls["map_ids"])}

    def compute_value(obj):
        calls["getinfo"] += 1
        if "AggregateFeatureCollection.histogram" in obj.serialize():  # a patch export's points per class
            return calls["sample"]
        return {"count": 7, "dates": [1104537600000, 1167523200000]}

    monkeypatch.setattr(tiles, "_default_get_map_id", get_map_id)
    monkeypatch.setattr(ee.data, "computeValue", compute_value)
    monkeypatch.setattr(ee.data, "computePixels", fake_compute(calls["pixels"]))
    calls["assets"] = FakeAssets()  # none unless a test adds some
    monkeypatch.setattr(ee.data, "getAsset", calls["assets"])
    fake = FakeMap()
    monkeypatch.setattr(mapview, "_st_folium", fake)
    monkeypatch.setenv("CROPMAP_WORKDIR", str(tmp_path / "work"))
    tiles.clear_cache()
    _scene_summary_cached.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    yield fake, calls
    st.cache_data.clear()
    st.cache_resource.clear()
    tiles.clear_cache()


def fk(at, name: str) -> str:
    """The key of an Earth Engine form widget (keys carry the version of the settings shown)."""
    return f"ee_form_{name}_{at.session_state['ee_form__v']}"


def other_errors(at) -> list[str]:
    """Error messages other than the failed task's, which the task monitor always shows."""
    return [e.value for e in other_errors_of(at)]


def other_errors_of(at) -> list:
    """The error elements of :func:`other_errors`."""
    return [e for e in at.error if "camana_test_000 failed" not in e.value]


def assert_layer_control_after_its_layers(html: str) -> None:
    """Every layer the layer control lists is defined before the control's script (else Leaflet
    fails with "Cannot read properties of undefined (reading 'setZIndex')" and the map stays blank)."""
    import re

    control = html.index("L.control.layers(")
    block = html[html.rindex("_layers = {", 0, control):control]
    names = re.findall(r":\s*([a-z_]+_[0-9a-f]{32})\s*,", block)
    assert len(names) >= 5  # basemap, 4 Earth Engine layers (and the region)
    for name in names:
        assert html.index(f"var {name} = ") < control, name


def lonlat_feature(w: float, s: float, e: float, n: float) -> dict:
    """A rectangle as Leaflet.draw returns it on a georeferenced map (lng, lat)."""
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def test_camana_preset_drawn_region_through_every_page(ee_configured, tiny_model_path):
    fake, calls = ee_configured
    at = new_app()
    at.run()
    camana = [b for b in at.button if "Camana" in b.label][0]
    assert not camana.disabled
    camana.click().run()
    assert not at.exception and not at.error
    assert at.session_state["source"] == {"kind": "earthengine", "preset": "camana"}
    assert at.selectbox(key=fk(at, "sensor")).value == "L5"  # the form shows the preset's settings
    assert at.text_input(key=fk(at, "year")).value == ""  # 2005: the composite's year, which it then follows
    html = fake.maps[-1][0].get_root().render()
    assert "L.CRS.Simple" not in html
    assert html.count("fake-") == 4  # true colour, false colour, NDVI, labels: Earth Engine tiles
    # their tiles failing is said (once, by the map), not blamed on the basemap alone
    assert html.count("cropmap.tilesFailed(") == 5 and html.count("Earth Engine tiles did not load") == 4
    assert "leaflet.draw" in html.lower()
    assert_layer_control_after_its_layers(html)
    assert not [b for b in at.button if b.label == "Reset to the Camana valley"]  # (the valley itself: nothing to reset)
    n_ids = calls["map_ids"]
    at.run()
    assert calls["map_ids"] == n_ids  # reruns reuse the tile URLs

    # draw a smaller rectangle inside the valley: it becomes the region, in lon/lat
    fake.value = {"all_drawings": [lonlat_feature(-72.75, -16.64, -72.70, -16.60)]}
    at.run()
    assert not at.exception
    region = at.session_state["region"]
    assert region["properties"]["crs"] == "EPSG:4326" and region["properties"]["name"] == "drawn"
    assert any("px at 30 m in EPSG:32718" in s.value for s in at.success)  # the region's check: OK
    html = fake.maps[-1][0].get_root().render()
    assert "-72.75" in html  # the drawn outline on the map
    # a shape that is refused (across the 180th meridian) is said beside the map until a region is set, and
    # taken off the map, drawn anew under another key (it stayed drawn beside the region in use, taken for it)
    key = fake.maps[-1][1]["key"]
    fake.value = {"all_drawings": [lonlat_feature(179.8, -16.9, 180.1, -16.8)]}
    at.run()
    assert not at.exception and at.session_state["region"] == region
    refused = [e.value for e in at.error if e.value.startswith("The shape drawn was not taken")]
    assert len(refused) == 1 and "180th meridian" in refused[0] and refused[0].endswith("The region in use is kept.")
    assert fake.maps[-1][1]["key"] != key
    fake.value = None
    at.run()  # (any other run: still said)
    assert [e.value for e in at.error if e.value.startswith("The shape drawn was not taken")]
    fake.value = {"all_drawings": [lonlat_feature(-72.75, -16.64, -72.71, -16.60)]}  # a region taken: no longer said
    at.run()
    assert not [e.value for e in at.error if e.value.startswith("The shape drawn was not taken")]
    region = at.session_state["region"]

    # Data: the region is downloaded with (fake) computePixels into a georeferenced scene
    fake.value = None
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Area"].endswith(" ha") and "Crop share (labels)" in metrics
    region_px = at.session_state["scene"]["extra"]["region_pixels"]
    assert any(f"of the region's {region_px:,} pixels have data" in c.value for c in at.caption)  # not its box's
    title = at.caption[0].value
    # how many scenes the median is of (7 here), fetched with the rest of its summary and said
    assert title.startswith("Landsat 5 TM median of 7 scenes 2005-01-01..2006-12-31 (recipe of the camana preset)")
    assert "Camana valley" not in title  # a drawn region is not named after the preset's place
    assert calls["pixels"] and calls["getinfo"] == 1
    # the label product's classes, named from GLC-FCS30D's legend, in hectares
    classes = at.dataframe[0].value
    assert set(classes["class"]) == {"20 Irrigated cropland", "200 Bare areas"}
    assert classes["area"].str.endswith(" ha").all()
    assert any("Classes in the region" in md.value and "GLC-FCS30D" in md.value for md in at.markdown)
    n_pixels = len(calls["pixels"])
    at.run()
    assert len(calls["pixels"]) == n_pixels and calls["getinfo"] == 1  # no refetch, no getInfo on reruns

    # Predict and Quality run on the downloaded scene, areas in hectares
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Crop area"].endswith(" ha")
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    assert "IoU" in {m.label for m in at.metric}
    errors = at.dataframe[0].value  # where the errors are, by GLC-FCS30D class
    assert set(errors["class"]) <= {"20 Irrigated cropland", "200 Bare areas"} and len(errors) >= 1


def test_settings_form_switches_the_source_and_checks_values(ee_configured):
    fake, calls = ee_configured
    at = new_app()
    at.run()
    at.selectbox(key=fk(at, "sensor")).set_value("S2")
    at.selectbox(key=fk(at, "labels")).set_value("dynamicworld")
    assert not forms(at)[f"ee_form_{at.session_state['ee_form__v']}"].enter_to_submit  # (Enter fetched half-typed)
    at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
    assert not at.exception and not at.error
    src = at.session_state["source"]
    assert src["kind"] == "earthengine" and src["settings"]["composite"]["sensor"] == "S2"
    assert src["settings"]["labels"] == {"product": "dynamicworld"}
    assert at.selectbox(key=fk(at, "sensor")).value == "S2"  # the form shows the settings in use
    cloud = at.number_input(key=fk(at, "cloud"))
    assert cloud.value == 20 and cloud.proto.format == "%g"  # "20", not "20.00"
    html = fake.maps[-1][0].get_root().render()
    assert "Sentinel-2" in html and "Dynamic World" in html  # layer names in the layer control

    # a bad value is explained and the source stays as it was
    at.selectbox(key=fk(at, "labels")).set_value("glcfcs30d")
    at.text_input(key=fk(at, "year")).set_value("1992")
    at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
    assert any("1985, 1990 and 1995" in e.value for e in at.error)
    assert at.session_state["source"]["settings"]["labels"] == {"product": "dynamicworld"}
    at.text_input(key=fk(at, "year")).set_value("twenty")
    at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
    assert any("whole number" in e.value for e in at.error)
    # CDL over the Camana valley (Peru): refused as the form is sent, as a year out of range is (it was taken:
    # every preview layer gone, the reason said twice, and the settings in use lost)
    at.selectbox(key=fk(at, "labels")).set_value("cdl")
    at.text_input(key=fk(at, "year")).set_value("2020")
    at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
    assert not at.exception
    assert [e.value for e in at.error if "contiguous United States only" in e.value] and not at.warning
    assert at.session_state["source"]["settings"]["labels"] == {"product": "dynamicworld"}
    # Dynamic World for Landsat 5 dates of 2005 (it starts in mid-2015): refused as the form is sent too
    import datetime as dt

    at.selectbox(key=fk(at, "sensor")).set_value("L5")
    at.date_input(key=fk(at, "start")).set_value(dt.date(2005, 1, 1))
    at.date_input(key=fk(at, "end")).set_value(dt.date(2005, 12, 31))
    at.selectbox(key=fk(at, "labels")).set_value("dynamicworld")
    at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
    assert not at.exception
    assert [e.value for e in at.error if "Dynamic World has maps from 2015-06-27 on" in e.value]
    assert at.session_state["source"]["settings"]["composite"]["sensor"] == "S2"


def test_the_settings_in_use_sent_again_change_nothing(ee_configured):
    """The form sent again without a change went through a change of source: the region's scene and its
    patches were dropped (the next page fetched the scene again) and the region was offered back as the one
    'replaced'."""
    from core.region import Region

    submit = "FormSubmitter:ee_form_{}-Use Earth Engine with these settings"
    at = new_app()
    at.run()
    at.button(key=submit.format(at.session_state["ee_form__v"])).click().run()  # Earth Engine, as it comes
    at.session_state["region"] = Region.from_bbox(-72.72, -16.62, -72.66, -16.58).to_geojson()  # (in the valley)
    at.switch_page("pages/data.py").run()  # the region's scene fetched
    assert not at.exception and not at.error and at.session_state["scene"] is not None
    region, scene = at.session_state["region"], at.session_state["scene"]
    at.switch_page("pages/region.py").run()
    at.button(key=submit.format(at.session_state["ee_form__v"])).click().run()  # the same settings again
    assert not at.exception and not at.error
    assert at.session_state["region"] == region and at.session_state["scene"] == scene
    assert at.session_state["previous_region"] is None


def test_the_camana_reset_is_refused_while_cdl_labels_are_in_use(ee_configured):
    """A region in Iowa with CDL labels, then "Reset to the Camana valley": the valley became the region
    with labels that do not cover it (every layer gone, the reason twice, Next disabled)."""
    from core.region import Region

    submit = "FormSubmitter:ee_form_{}-Use Earth Engine with these settings"
    at = new_app()
    at.run()
    at.button(key=submit.format(at.session_state["ee_form__v"])).click().run()  # Earth Engine, as it comes
    iowa = Region.from_bbox(-93.70, 42.00, -93.60, 42.08).to_geojson()
    at.session_state["region"] = iowa  # (as a box typed or drawn there)
    at.run()
    at.selectbox(key=fk(at, "labels")).set_value("cdl")
    at.text_input(key=fk(at, "year")).set_value("2020")
    at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
    assert not at.exception and not at.error and at.session_state["source"]["settings"]["labels"]["product"] == "cdl"
    reset = by_label(at.button, "Reset to the Camana valley")
    assert reset.disabled and "contiguous United States only" in reset.help
    assert at.session_state["region"] == iowa


def test_a_typed_box_too_large_to_download_is_kept_for_a_batch_export_as_a_drawing_is(ee_configured):
    """A 2 x 2 degree box was refused ("... or run it as a batch export. The region in use is kept"), while the
    Earth Engine page exports the region in use: the advice led nowhere, and the same region drawn was kept."""
    at = new_app()
    at.run()
    submit = "FormSubmitter:ee_form_{}-Use Earth Engine with these settings"
    at.button(key=submit.format(at.session_state["ee_form__v"])).click().run()
    [box] = [t for t in at.text_input if t.label == "Box"]
    box.set_value("-73.5, -17.5, -71.5, -15.5").run()
    by_label(at.button, "Use this box").click().run()
    assert not at.exception and at.session_state["region"]["properties"]["name"] == "box"
    said = " ".join(e.value for e in at.error)
    assert "direct-download limit" in said and "batch export (the dashboard's Earth Engine page" in said
    assert "The region in use is kept" not in said


def test_settings_form_takes_a_user_assets_crop_and_no_data_values(ee_configured):
    """A user asset's labels (the 2019 notebook's GLC30): its no-data values (0, 255) could not be
    given, so they were not crop, and trained on as such."""
    at = new_app()
    at.run()
    at.selectbox(key=fk(at, "labels")).set_value("asset")
    at.text_input(key=fk(at, "asset")).set_value("users/me/glc30")
    at.text_input(key=fk(at, "crop")).set_value("10")
    at.text_input(key=fk(at, "nodata")).set_value("0, 255")
    at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
    assert not at.exception and not at.error
    assert at.session_state["source"]["settings"]["labels"] == {
        "product": "asset", "asset_id": "users/me/glc30", "crop_values": [10], "nodata_values": [0, 255]}
    assert at.text_input(key=fk(at, "nodata")).value == "0,255"  # the form shows the settings in use


def test_back_to_earth_engine_after_the_sample_scene_finds_the_settings_and_region(ee_configured):
    """A look at the sample scene and back threw away the Earth Engine recipe and the drawn region
    (the form came back at its defaults, the region at the Camana valley)."""
    from core.region import Region

    submit = "FormSubmitter:ee_form_{}-Use Earth Engine with these settings"
    at = new_app()
    at.run()
    at.selectbox(key=fk(at, "sensor")).set_value("S2")
    at.number_input(key=fk(at, "cloud")).set_value(35)
    at.button(key=submit.format(at.session_state["ee_form__v"])).click().run()
    drawn = Region.from_bbox(-72.76, -16.64, -72.70, -16.59).to_geojson()
    at.session_state["region"] = drawn
    at.run()
    used = at.session_state["source"]
    by_label(at.button, "Sample scene (whole image)").click().run()
    assert not at.exception and at.session_state["source"]["kind"] == "sample"
    # the form shows the recipe left, and using it again brings the region back too
    assert at.selectbox(key=fk(at, "sensor")).value == "S2" and at.number_input(key=fk(at, "cloud")).value == 35
    at.button(key=submit.format(at.session_state["ee_form__v"])).click().run()
    assert not at.exception and not other_errors(at)
    assert at.session_state["source"] == used and at.session_state["region"] == drawn


def test_settings_form_from_the_preset_reaches_recent_years_and_says_what_it_fetches(ee_configured):
    """From the Camana preset (Landsat 5, 2005-2006, GLC-FCS30D 2005): dates could not go past ten
    years after the preset's (Streamlit's cap without a max_value), the label year stayed 2005 for
    new dates, no pixel size could be set, and nothing on the page said which imagery was in use."""
    import datetime as dt

    at = new_app()
    at.run()
    by_label(at.button, "Camana valley, Arequipa, Peru (Earth Engine)").click().run()
    assert not at.exception
    told = [c.value for c in at.caption if c.value.startswith("Earth Engine: ")]
    assert told == ["Earth Engine: Landsat 5 TM, median of 2005-01-01 to 2006-12-31, scenes under 20% cloud, 30 m pixels; "
                    "labels: GLC-FCS30D annual (1985-2022), 2005"], told
    start = at.date_input(key=fk(at, "start"))
    assert start.proto.max == dt.date.today().strftime("%Y/%m/%d")  # not 2015/01/01
    assert at.text_input(key=fk(at, "year")).value == ""  # the composite's year, so it follows the dates
    assert at.number_input(key=fk(at, "scale")).value == 30
    at.selectbox(key=fk(at, "sensor")).set_value("L8")
    start.set_value(dt.date(2021, 1, 1))
    at.date_input(key=fk(at, "end")).set_value(dt.date(2021, 12, 31))
    at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
    assert not at.exception and not at.error
    settings = at.session_state["source"]["settings"]
    assert settings["composite"]["start"] == "2021-01-01" and settings["composite"]["scale"] == 30
    assert settings["labels"]["product"] == "glcfcs30d" and settings["labels"]["year"] == 2021
    # dates past the product's last map with the year left empty: said so, and which year to enter
    at.date_input(key=fk(at, "start")).set_value(dt.date(2024, 1, 1))
    at.date_input(key=fk(at, "end")).set_value(dt.date(2024, 12, 31))
    at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
    assert [e.value for e in at.error] == [
        "The label year is empty, so the composite's year 2024 was taken, but GLC-FCS30D annual has maps for "
        "1985, 1990, 1995 and 2000-2022: enter a label year (e.g. 2022) or change the dates"]
    assert at.session_state["source"]["settings"]["labels"]["year"] == 2021  # the source stays as it was


def test_earth_engine_page_tasks_exports_upload_and_asset_layer(ee_configured, tiny_model_path, monkeypatch):
    """Task monitor (list, failed task's error, cancel), export start, upload + ingestion, asset layer."""
    import ee

    from core.region import Region

    from core.ee import tasks as T
    from core.ee import upload as U
    from fake_ee_ops import FakeOps, FakeStorage, op
    from pages.components import cached

    fake, calls = ee_configured
    ops = FakeOps({"A": [op("A", "RUNNING", description="camana_train_000")],
                   "B": [op("B", "FAILED", description="camana_test_000", error="User memory limit exceeded.")]})
    monkeypatch.setattr(T, "EEOperationsClient", lambda: ops)
    exported = []

    def export_table(request_id, params):  # a task started is listed from then on
        exported.append(params["description"])
        ops.script[f"X{len(exported)}"] = [op(f"X{len(exported)}", "PENDING", description=params["description"])]
        return {"name": f"projects/p/operations/X{len(exported)}"}

    monkeypatch.setattr(ee.data, "exportTable", export_table)
    storage, ingested = FakeStorage(), []
    uploaded = storage.uploaded
    monkeypatch.setattr(U, "default_storage_client", lambda project, secrets=None: storage)
    monkeypatch.setattr(ee.data, "startIngestion", lambda request_id, manifest, allow_overwrite: ingested.append(manifest)
                        or {"id": "ING1", "name": "projects/p/operations/ING1"})

    at = new_app()
    at.run()
    [b for b in at.button if "Camana" in b.label][0].click().run()
    at.switch_page("pages/earthengine.py").run()
    assert not at.exception
    # tasks: the table, the failed task's own message and what to change (as the CLI says it), cancelling the running one
    assert any("camana_test_000 failed: User memory limit exceeded; export again with fewer points per task ('Points per task'" in e.value
               for e in at.error)
    assert at.multiselect(key="ee_cancel_ids").options == ["camana_train_000 (running, A)"]
    assert at.button(key="ee_cancel").disabled  # (nothing chosen)
    assert "running" in list(at.dataframe[0].value["state"])  # (in words, as the filter says them)
    assert set(at.dataframe[0].value["created"]) == {"2026-01-01 00:00 UTC"}  # read as a time, not ISO text
    at.multiselect(key="ee_cancel_ids").select("A").run()
    at.button(key="ee_cancel").click().run()
    assert ops.cancelled == ["A"]
    # the list is drawn again after the cancel: no longer RUNNING; the outcome is said once
    assert not at.exception and "running" not in list(at.dataframe[0].value["state"])
    assert any(s.value == "camana_train_000: cancel requested; Earth Engine stops it shortly" for s in at.success), \
        [s.value for s in at.success]
    # on its way out (CANCEL_REQUESTED): no longer offered to cancel (seen on the next run: AppTest keeps
    # the elements of a run that st.rerun() cut short where the new run draws fewer; a browser clears them)
    at.run()
    assert "stopping" in list(at.dataframe[0].value["state"]) and not [
        b for b in at.button if b.key == "ee_cancel"]
    # exports: a bad destination is explained, a good one starts the tasks
    # Enter in a box starts no task (of half-typed settings: Streamlit's default)
    assert not forms(at)["ee_export"].enter_to_submit
    at.text_input(key="ee_exp_dest").set_value("s3://nope")
    at.number_input(key="ee_exp_train").set_value(3)
    at.number_input(key="ee_exp_test").set_value(1)
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert any("gcs:BUCKET/PREFIX or drive:FOLDER" in e.value for e in at.error) and not exported
    at.text_input(key="ee_exp_dest").set_value("gcs:crop-bucket/camana")
    # more tasks than Earth Engine queues (3,000 a project): said before the region's points are counted
    at.number_input(key="ee_exp_per_task").set_value(1)
    at.number_input(key="ee_exp_train").set_value(5000)
    asked = ee_configured[1]["getinfo"]
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert any("make 10,002 export tasks, but Earth Engine holds at most 3,000 pending tasks per project: ask for "
               "fewer points, or 4 or more points per task" in e.value for e in at.error), [e.value for e in at.error]
    assert ee_configured[1]["getinfo"] == asked and not exported
    at.number_input(key="ee_exp_train").set_value(3)
    at.number_input(key="ee_exp_per_task").set_value(2)  # 6 training points in 3 tasks, 2 test points in 1
    ee_configured[1]["sample"] = {"0": 4, "1": 3}  # a region with 3 crop pixels: said, and no task started
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert any("only 3 crop point(s) of the 4 asked for" in e.value for e in at.error) and not exported
    ee_configured[1]["sample"] = {"0": 4, "1": 4}
    # patches start with no margin (as the CLI's): one past half the patch is said in the form's words
    assert at.number_input(key="ee_exp_kernel_patches").value == 0
    at.number_input(key="ee_exp_kernel_patches").set_value(136)
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert any(e.value.startswith("A margin of 136 px does not fit 256 px patches: give up to 128 px, half the patch "
                                  "size") for e in at.error), [e.value for e in at.error]
    at.number_input(key="ee_exp_kernel_patches").set_value(32)
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    # the region (396 x 287 px) is less tall than a patch with its margin: said before any task starts (it
    # was said under 4 started tasks), and started on a second press
    assert not at.exception and not exported
    assert any("its height is smaller than one 320 px patch" in w.value for w in at.warning), [w.value for w in at.warning]
    assert any(i.value.startswith("Nothing was started: press Start export again") for i in at.info)
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert not at.exception
    assert exported and all(d.startswith("crops_") for d in exported)
    assert sorted(exported) == ["crops_test_000", "crops_train_000", "crops_train_001", "crops_train_002"], exported
    assert any(s.value == "Started 4 tasks; follow them on the Tasks tab." for s in at.success)
    # the Tasks tab lists its tasks (drawn after the forms: it showed the list from before the start)
    assert {"crops_train_000", "crops_test_000"} <= set(at.dataframe[0].value["description"])
    patches = dict(at.session_state["ee_patches"])
    assert patches.pop("for") and patches == {"train": "gs://crop-bucket/camana/crops/train_*.tfrecord.gz",
                                              "test": "gs://crop-bucket/camana/crops/test_*.tfrecord.gz", "size": 256}
    at.button(key="ee_train_patches").click().run()  # the Model page opens with the export's files filled in
    assert not at.exception
    assert next(t for t in at.text_input if t.label == "Training patches").value == "gs://crop-bucket/camana/crops/train_*.tfrecord.gz"
    assert next(r for r in at.radio if r.label == "Train on").value == "patches"
    at.switch_page("pages/earthengine.py").run()
    # back on the page, the export form shows what was last submitted
    assert at.text_input(key="ee_exp_dest").value == "gcs:crop-bucket/camana"
    assert at.number_input(key="ee_exp_train").value == 3 and at.number_input(key="ee_exp_test").value == 1
    # an image export for prediction: the region's box grown to whole patches, said under the started task
    monkeypatch.setattr(ee.data, "exportImage",
                        lambda request_id, params: exported.append(params["description"]) or {"name": "projects/p/operations/IMG"})
    at.radio(key="ee_exp_kind").set_value("image")
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    # an image export of the patch export's name writes files of its own names (image*): started
    assert not at.exception and exported[-1] == "crops_image", [e.value for e in at.error]
    n = len(exported)
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    # the same export again is refused unless replacing it is ticked (two exports of one name wrote to
    # one place, unsaid)
    assert not at.exception and len(exported) == n
    assert any("image export named 'crops' to gcs:crop-bucket/camana was started in this session" in e.value
               for e in at.error)
    # ticked, it starts; the tick is then cleared (it stayed, and let every later export write over its files)
    at.checkbox(key="ee_exp_again").check()
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert not at.exception and len(exported) == n + 1 and not at.checkbox(key="ee_exp_again").value
    # the same place typed otherwise is the same place
    at.text_input(key="ee_exp_dest").set_value("gs://crop-bucket/camana/")
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert len(exported) == n + 1 and any("was started in this session" in e.value for e in at.error)
    # an image export has no training points to ask for; its margin starts at 32 px
    assert not [w for w in at.number_input if w.key in ("ee_exp_train", "ee_exp_test", "ee_exp_per_task")]
    assert at.number_input(key="ee_exp_kernel_image").value == 32
    at.number_input(key="ee_exp_kernel_image").set_value(36)  # (no multiple of 8: the model's input would not fit)
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert len(exported) == n + 1 and any(e.value.startswith("A margin of 36 px does not fit 256 px patches: give a "
                                                             "multiple of 8 px up to 128 px") for e in at.error)
    at.number_input(key="ee_exp_kernel_image").set_value(32)
    # files of an earlier export of the name in the bucket (another session's): refused, then replaced when ticked,
    # deleted before the task starts (the image export's own files only)
    earlier = ["gs://crop-bucket/camana/old/image-00000.tfrecord.gz", "gs://crop-bucket/camana/old/image-00001.tfrecord.gz"]
    uploaded.update({uri: b"x" for uri in [*earlier, "gs://crop-bucket/camana/old/train_000.tfrecord.gz"]})
    at.text_input(key="ee_exp_name").set_value("old")
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert not at.exception and len(exported) == n + 1 and storage.deleted == []
    assert any("gs://crop-bucket/camana/old/ already holds 2 image export files of an earlier export named 'old'" in e.value
               for e in at.error), [e.value for e in at.error]
    at.checkbox(key="ee_exp_again").check()
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert not at.exception and exported[-1] == "old_image" and storage.deleted == earlier
    assert list(uploaded) == ["gs://crop-bucket/camana/old/train_000.tfrecord.gz"]
    uploaded.clear()
    n = len(exported)
    at.text_input(key="ee_exp_name").set_value("camana_image")
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert not at.exception and exported[-1] == "camana_image_image"
    [said] = [c.value for c in at.caption if c.value.startswith("The last image export covers 512 x 512 px in EPSG:32718")]
    # where its mixer is, and how to predict it (it said the Predict page gives the region's crop: not for a
    # region too large to download)
    assert "give its mixer JSON, `gs://crop-bucket/camana/camana_image/image*mixer.json` (a pattern that finds it" in said
    assert "'Use an Earth Engine image export'" in said and "Predict page" not in said
    # to Drive: the files are downloaded first (it gave a drive: path, which no field takes)
    at.text_input(key="ee_exp_dest").set_value("drive:crop_exports")
    at.text_input(key="ee_exp_name").set_value("camana_drive")
    at.button(key="FormSubmitter:ee_export-Start export").click().run()
    assert not at.exception and exported[-1] == "camana_drive_image"
    [said] = [c.value for c in at.caption if c.value.startswith("The last image export")]
    assert ("download the files of Google Drive's folder `crop_exports` whose names start `camana_drive_image` to one "
            "local folder, and give the path of the mixer JSON among them") in said and "drive:" not in said
    # another region: the exports of the one before are not shown as its own
    at.session_state["region"] = Region.from_bbox(-72.75, -16.64, -72.70, -16.60, name="drawn").to_geojson()
    at.run()
    assert not [c for c in at.caption if c.value.startswith(("The last image export", "Training patches go to"))]
    assert not [b for b in at.button if b.key == "ee_train_patches"]

    # upload: needs a prediction of the region first
    assert any("Predict this region first" in i.value for i in at.info)
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    at.switch_page("pages/earthengine.py").run()
    at.text_input(key="ee_up_gcs").set_value("gs://crop-bucket/pred/camana.tif")
    at.text_input(key="ee_up_asset").set_value("camana_pred")
    assert not forms(at)["ee_upload"].enter_to_submit
    ops.script["ING1"] = [op("ING1", "RUNNING", description="Ingest camana_pred")]  # listed once started
    maps = len(fake.maps)
    at.button(key="FormSubmitter:ee_upload-Upload and start the ingestion").click().run()
    assert not at.exception and other_errors(at) == []
    assert list(uploaded) == ["gs://crop-bucket/pred/camana.tif"] and uploaded["gs://crop-bucket/pred/camana.tif"][:2] == b"II"
    assert ingested[0]["name"] == "projects/p/assets/camana_pred"
    # the asset carries the threshold and the crop fraction, as an upload from the CLI does
    props = ingested[0]["properties"]
    assert props["threshold"] == 0.5 and 0.0 <= props["crop_fraction"] <= 1.0
    # dated as the composite (the Camana preset: 2005-2006), so that the asset is found by date
    assert (ingested[0]["startTime"], ingested[0]["endTime"]) == ("2005-01-01T00:00:00Z", "2007-01-01T00:00:00Z")
    assert at.session_state["ee_asset"] == "projects/p/assets/camana_pred"
    # the asset just uploaded is in the box; while its ingestion runs, the page says so instead of a
    # map of tiles that do not exist yet (asking for them failed, under the upload's success)
    assert at.text_input(key="w_ee_asset").value == "projects/p/assets/camana_pred"
    assert any(i.value.startswith("projects/p/assets/camana_pred is being made by ingestion task ING1 (running)")
               for i in at.info), [i.value for i in at.info]
    assert len(fake.maps) == maps or "camana_pred" not in fake.maps[-1][0].get_root().render()
    # asked whether the asset was there before anything was uploaded
    assert calls["assets"].asked == ["projects/p/assets/camana_pred"]
    # done: shown as a map layer (Earth Engine tiles) where the asset is (the map fitted the region, and an
    # asset of another place showed an empty map), with the region's outline
    ops.script["ING1"] = [op("ING1", "SUCCEEDED", description="Ingest camana_pred")]
    calls["assets"].existing["projects/p/assets/camana_pred"] = image_asset(-72.80, -16.70, -72.60, -16.50)
    cached.ee_task.clear()
    at.run()
    assert not at.exception and other_errors(at) == []
    html = fake.maps[-1][0].get_root().render()
    assert "projects/p/assets/camana_pred (crop probability %)" in html and "fake-" in html
    [(fit, _)] = map_calls(fake.maps[-1][0], "fitOnFullscreen")
    assert fit == [[-16.70, -72.80], [-16.50, -72.60]]
    # its colours' legend inside the map (a layer of colours without one said nothing of them), the
    # Predict page's colours: the asset reads as the prediction it is
    assert "Crop probability (asset)" in html and "linear-gradient(to right,#440154,#3b528b" in html
    # a short id is the project's, as the upload form takes it (it went to Earth Engine as it was typed and
    # was not found); an asset of another place opens the map where it is
    calls["assets"].existing["projects/p/assets/elsewhere"] = image_asset(10.0, 45.0, 10.5, 45.3)
    at.text_input(key="w_ee_asset").set_value("elsewhere").run()
    assert not at.exception and other_errors(at) == []
    [(fit, _)] = map_calls(fake.maps[-1][0], "fitOnFullscreen")
    assert fit == [[45.0, 10.0], [45.3, 10.5]]
    # an asset that is not there: said what to check, and not asked again on every rerun
    at.text_input(key="w_ee_asset").set_value("projects/p/assets/typo").run()
    said = [e.value for e in other_errors_of(at)]
    assert said == ["Earth Engine has no asset projects/p/assets/typo that this account can read: check the id (and that "
                    "the asset is shared with this account); an asset just uploaded is there once its ingestion task "
                    "has completed (Tasks tab, or python -m core ee-tasks)"], said
    asked = len(calls["assets"].asked)
    at.run()
    assert len(calls["assets"].asked) == asked and len(other_errors_of(at)) == 1
    at.text_input(key="w_ee_asset").set_value("projects/p/assets/camana_pred").run()
    # a failed ingestion says why, with no map
    ops.script["ING1"] = [op("ING1", "FAILED", description="Ingest camana_pred", error="Asset already exists.")]
    cached.ee_task.clear()
    at.run()
    assert any(e.value.startswith("projects/p/assets/camana_pred was not made. Earth Engine task Ingest camana_pred "
                                  "failed: Asset already exists")
               for e in at.error), [e.value for e in at.error]
    # the task's state cannot be read: said once (the asset, asked for after it, failed too under it), and
    # not asked again on the next run
    asked_ops = []

    def unreachable(name):
        asked_ops.append(name)
        raise ee.EEException("Permission denied on projects/p/operations/ING1")

    monkeypatch.setattr(ops, "get_operation", unreachable)
    cached.ee_task.clear()
    at.run()
    said = [e.value for e in other_errors_of(at)]
    assert len(said) == 1 and said[0].startswith("The state of ingestion task ING1, which makes "
                                                 "projects/p/assets/camana_pred, could not be read: "), said
    n = len(asked_ops)
    at.run()
    assert len(asked_ops) == n and len(other_errors_of(at)) == 1
    # the views setting changed, Predict not pressed again: the prediction the Predict page shows is
    # still the one to upload (the tab said "Predict this region first")
    at.session_state["views"] = 4
    at.run()
    assert not at.exception and at.text_input(key="ee_up_gcs") is not None
    assert "The prediction shown on the Predict page, made with 1 view of each tile." in [c.value for c in at.caption]
    assert not any("Predict this region first" in i.value for i in at.info)
    # a visit to another page keeps what was typed into the upload form and the task list's filter
    at.toggle(key="w_ee_tasks_active").set_value(True).run()
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/earthengine.py").run()
    assert not at.exception and at.text_input(key="ee_up_gcs").value == "gs://crop-bucket/pred/camana.tif"
    assert at.text_input(key="ee_up_asset").value == "camana_pred" and at.toggle(key="w_ee_tasks_active").value is True


def test_task_monitor_of_many_tasks_cancels_each_chosen_and_says_each_refusal(ee_configured, monkeypatch):
    """60 tasks: the newest 50 shown and said so, 7 failures spelt out 5 and counted 2, every running task
    (older ones too) offered to cancel; a cancel refused for one task is said, and the others are cancelled."""
    import ee

    from core.ee import tasks as T
    from fake_ee_ops import FakeOps, op

    script = {f"R{i:02d}": [op(f"R{i:02d}", "RUNNING", description=f"big_train_{i:03d}",
                               created=f"2026-01-01T00:{i:02d}:00Z")] for i in range(53)}
    script |= {f"F{i}": [op(f"F{i}", "FAILED", description=f"old_{i}", error="Permission denied on bucket b.",
                            created=f"2026-01-02T00:0{i}:00Z")] for i in range(7)}

    class Refusing(FakeOps):
        def cancel_operation(self, name):
            if name.endswith("/R52"):
                raise ee.EEException("Permission denied: the caller does not have permission")
            super().cancel_operation(name)

    ops = Refusing(script)
    monkeypatch.setattr(T, "EEOperationsClient", lambda: ops)
    at = new_app()
    at.run()
    [b for b in at.button if "Camana" in b.label][0].click().run()
    at.switch_page("pages/earthengine.py").run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 50
    assert any(c.value.startswith("The newest 50 of 60 tasks") for c in at.caption)
    assert len([e for e in at.error if "old_" in e.value]) == 5
    assert any(c.value.startswith("2 more failed tasks in the table") for c in at.caption)
    # all 53 running tasks can be cancelled, the 10 oldest not in the table among them
    assert len(at.multiselect(key="ee_cancel_ids").options) == 53
    at.button(key="ee_cancel_all").click().run()
    assert len(at.multiselect(key="ee_cancel_ids").value) == 53
    at.multiselect(key="ee_cancel_ids").set_value(["R52", "R00"]).run()
    assert any(c.value == "To cancel: big_train_052 (running, R52); big_train_000 (running, R00)" for c in at.caption)
    assert next(b for b in at.button if b.key == "ee_cancel").label == "Cancel 2 tasks"
    at.button(key="ee_cancel").click().run()
    assert not at.exception and ops.cancelled == ["R00"]  # R52 refused first: R00 was still asked
    [refused] = [e.value for e in at.error if "big_train_052" in e.value]
    assert refused.startswith("big_train_052 (running, R52) was not cancelled: Earth Engine refused to cancel task R52")
    assert any(s.value == "big_train_000: cancel requested; Earth Engine stops it shortly" for s in at.success)
    # the filter on waiting and running tasks, when none are: said so (it said "No tasks.")
    for r in ops.script:
        ops.script[r] = [op(r, "SUCCEEDED")]
    at.button(key="ee_tasks_refresh").click().run()
    at.toggle[0].set_value(True).run()
    assert any(i.value == "No waiting or running tasks." for i in at.info)


def test_task_monitor_says_nothing_more_when_the_listing_fails(ee_configured, monkeypatch):
    """A listing that fails is said, and not followed by "No tasks." (which it contradicted)."""
    import ee

    from core.ee import tasks as T
    from fake_ee_ops import FakeOps

    class Failing(FakeOps):
        def list_operations(self):
            raise ee.EEException("Permission denied: the caller does not have permission")

    monkeypatch.setattr(T, "EEOperationsClient", lambda: Failing({}))
    at = new_app()
    at.run()
    [b for b in at.button if "Camana" in b.label][0].click().run()
    at.switch_page("pages/earthengine.py").run()
    assert not at.exception and at.error
    assert not [i for i in at.info if "No tasks" in i.value]


def test_sidebar_names_the_camana_region_the_pages_fall_back_to(ee_configured):
    """Earth Engine settings chosen while on the sample scene (no region drawn yet): every page works
    on the Camana valley (scene.current_region's fallback), and the sidebar names it (it said 'whole
    image', which Earth Engine does not have)."""
    at = new_app()
    at.run()
    at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
    assert not at.exception and not at.error
    assert at.session_state["source"]["kind"] == "earthengine" and at.session_state["region"] is None
    assert "Camana valley, Arequipa, Peru" in [m.value for m in at.markdown]  # Region page: Selected region
    captions = [c.value for c in at.caption]
    assert "Region: Camana valley, Arequipa, Peru" in captions, captions
    # which imagery and labels (the sidebar said "Earth Engine" alone)
    [source] = [c for c in captions if c.startswith("Source: Earth Engine, ")]
    assert "median of" in source and "labels:" in source, source


def test_a_scene_fetched_from_the_predict_or_quality_page_shows_its_progress(ee_configured, tiny_model_path, monkeypatch):
    """Region -> Predict with an Earth Engine region: the download runs on the Predict page, with a
    progress bar as on the Data page (it ran with none: a page standing still for the whole download)."""
    from pages.components import scene

    updates = []
    real = scene.current_scene

    def recorded(progress=None):
        def seen(done, total, msg=""):
            updates.append((done, total, msg))
            progress(done, total, msg)
        return real(progress=seen if progress else None)

    monkeypatch.setattr(scene, "current_scene", recorded)
    at = new_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.run()
    [b for b in at.button if "Camana" in b.label][0].click().run()
    at.switch_page("pages/predict.py").run()
    assert not at.exception and not at.error
    assert updates and updates[-1][0] == updates[-1][1] > 0  # the download's requests, counted to the end


def test_the_region_page_says_worldcover_is_of_another_year_than_the_composite(ee_configured):
    """WorldCover (2021 alone) chosen for a 2005 Landsat 5 composite (the Camana notebook's years): said
    beside the settings, with the product that has a map of 2005."""
    import datetime

    at = new_app()
    at.run()

    def use(sensor: str, year: int, labels: str) -> list[str]:
        """The settings sent, as the form takes them: the notes said beside them."""
        at.selectbox(key=fk(at, "sensor")).set_value(sensor)
        at.date_input(key=fk(at, "start")).set_value(datetime.date(year, 1, 1))
        at.date_input(key=fk(at, "end")).set_value(datetime.date(year, 12, 31))
        at.selectbox(key=fk(at, "labels")).set_value(labels)
        at.button(key=f"FormSubmitter:ee_form_{at.session_state['ee_form__v']}-Use Earth Engine with these settings").click().run()
        assert not at.exception and not at.error
        return [i.value for i in at.info]

    said = use("L5", 2005, "worldcover")
    assert at.session_state["source"]["settings"]["composite"]["start"].startswith("2005")
    assert any(i.startswith("ESA WorldCover maps 2021 only, 16 years from this 2005 composite") and
               "GLC-FCS30D" in i for i in said), said
    # Landsat 7 after May 2003: its striped gaps said beside the settings too
    said = use("L7", 2010, "glcfcs30d")
    assert any(i.startswith("Landsat 7's scan-line corrector failed on 2003-05-31") for i in said), said


def test_a_download_refused_for_the_quota_can_be_tried_again_from_the_data_page(ee_configured, monkeypatch):
    """Earth Engine's quota spent as the Data page downloads the region: its message says to retry, and
    the page offers it (its only way on was back to the Region page)."""
    from core.ee.errors import EEQuotaError
    from pages.components import scene

    real, tries = scene.current_scene, []

    def spent_once(progress=None):
        tries.append(1)
        if len(tries) == 1:
            raise EEQuotaError("Earth Engine quota or rate limit reached; wait a minute and retry")
        return real(progress=progress)

    monkeypatch.setattr(scene, "current_scene", spent_once)
    at = new_app()
    at.run()
    [b for b in at.button if "Camana" in b.label][0].click().run()
    at.switch_page("pages/data.py").run()
    assert any("quota or rate limit reached" in e.value for e in at.error)
    at.button(key="try_again").click().run()
    assert not at.exception and not at.error and len(tries) == 2
    assert not [b for b in at.button if b.key == "try_again"]
    # a failure that trying again does not mend (a region too small) has no such button
    from core.errors import RegionError

    def too_small(progress=None):
        raise RegionError("region too small")

    monkeypatch.setattr(scene, "current_scene", too_small)
    at.run()
    assert any("Region too small" in e.value for e in at.error) and not [b for b in at.button if b.key == "try_again"]


def test_each_earth_engine_region_has_a_scene_of_its_own(ee_configured):
    """Two regions of one recipe (two tabs, or one region after another) were downloaded into one scene folder:
    the second overwrote the first, whose tab then showed the other region's imagery in its own region's place."""
    import rasterio

    from core.region import Region

    tabs, bounds = [], []
    for box in ((-72.75, -16.64, -72.72, -16.61), (-72.72, -16.62, -72.70, -16.59)):
        at = new_app()
        at.session_state["source"] = {"kind": "earthengine", "preset": "camana"}
        at.session_state["region"] = Region.from_bbox(*box).to_geojson()
        at.switch_page("pages/data.py").run()
        assert not at.exception and not other_errors(at)
        with rasterio.open(at.session_state["scene"]["image_path"]) as f:
            bounds.append(f.bounds)
        tabs.append(at)
    first, second = tabs
    assert first.session_state["scene"]["image_path"] != second.session_state["scene"]["image_path"]
    first.run()  # the first tab again: its region's scene, as it was
    assert not first.exception and not other_errors(first)
    with rasterio.open(first.session_state["scene"]["image_path"]) as f:
        assert f.bounds == bounds[0] != bounds[1]


def test_an_asset_replaced_under_its_id_is_shown_with_a_new_map_id(ee_configured):
    """An uploaded prediction replaced under the same asset id (Replace existing files and asset, a new
    ingestion task): cached.ee_asset_layer is keyed by the task (``version``) so that the replaced asset is
    shown anew, but its tile URL came from core.ee.tiles' own cache of map ids (30 minutes, keyed by the
    asset's id alone): the map got the old map id's URL (the same tile URLs, which Earth Engine and the
    browser may answer with the old asset's tiles), though its footprint was read anew."""
    from pages.components import cached

    _, calls = ee_configured
    asset = "projects/p/assets/camana_pred"
    calls["assets"].existing[asset] = image_asset(-72.80, -16.70, -72.60, -16.50)
    first = cached.ee_asset_layer(asset, "TASK1")
    assert cached.ee_asset_layer(asset, "TASK1") == first and calls["map_ids"] == 1  # (a rerun: nothing asked)
    calls["assets"].existing[asset] = image_asset(-72.90, -16.80, -72.70, -16.60)  # ingested again, elsewhere
    second = cached.ee_asset_layer(asset, "TASK2")
    assert second["bounds"] != first["bounds"]  # the new asset's footprint
    assert second["url"] != first["url"]  # and a map id of the new asset, not the old one's tiles


def test_a_failed_earth_engine_status_is_asked_again_a_minute_later(monkeypatch):
    """cached.ee_status kept a failure as long as a success, ten minutes, in every session: Earth Engine's
    servers not reached once (the network down as the server started), or credentials set up as the
    sidebar's *Why* says (secrets.toml, ``earthengine authenticate``) while the server ran, and the Camana
    preset stayed greyed and every Earth Engine page refused for up to ten minutes, with nothing to ask again
    (the page's other Earth Engine failures are asked again after a minute: cached.EE_LAYERS_RETRY_S)."""
    import streamlit as st
    from streamlit.runtime.caching import cache_utils

    from core.ee import auth
    from core.ee.auth import EEStatus
    from pages.components import cached

    clock = {"now": 1000.0}
    monkeypatch.setattr(cache_utils, "TTLCACHE_TIMER", lambda: clock["now"])  # (read as a cache is made)
    answers = [EEStatus(False, None, "none", "Earth Engine is not configured: no credentials found"),
               EEStatus(True, "p", "test", "Earth Engine ready: project p (test)")]
    asked = []
    monkeypatch.setattr(auth, "status", lambda *a, **k: asked.append(1) or answers[min(len(asked), 2) - 1])
    st.cache_data.clear()
    try:
        assert cached.ee_status()["ok"] is False
        assert cached.ee_status()["ok"] is False and len(asked) == 1  # (a rerun at once: not asked again)
        clock["now"] += cached.EE_LAYERS_RETRY_S + 1  # the credentials set up meanwhile
        assert cached.ee_status()["ok"] is True
        clock["now"] += 3600  # (and still ready an hour later)
        assert cached.ee_status()["ok"] is True
    finally:
        st.cache_data.clear()
