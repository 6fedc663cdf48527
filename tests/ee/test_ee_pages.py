"""The dashboard on the Earth Engine source, offline: Earth Engine "configured" with fakes for
credentials, getMapId, getInfo and computePixels; the pages and core run for real (AppTest).

A user picks the Camana preset or sets sensor/dates/labels, draws a region on the real map, and
carries it through Data, Predict and Quality.
"""

from __future__ import annotations

import pytest

from core.ee.auth import EEStatus
from tests.ee.test_ee_source import fake_compute
from tests.test_pages import drawn_feature, new_app  # noqa: F401  (drawn_feature: image maps only)

TILE_URL = "https://earthengine.googleapis.com/v1/projects/p/maps/fake-{n}/tiles/{{z}}/{{x}}/{{y}}"


@pytest.fixture()
def ee_configured(ee_offline, monkeypatch, tmp_path):
    """Earth Engine ready (fake credentials), fake map ids, scene summaries and pixels."""
    import ee
    import streamlit as st

    from core.ee import auth, tiles
    from core.ee.composites import _scene_summary_cached
    from pages.components import mapview
    from tests.test_pages import FakeMap

    ready = EEStatus(True, "p", "test", "Earth Engine ready: project p (test)")
    monkeypatch.setattr(auth, "status", lambda *a, **k: ready)
    calls = {"map_ids": 0, "getinfo": 0, "pixels": []}

    def get_map_id(image, vis):
        calls["map_ids"] += 1
        return {"url": TILE_URL.format(n=calls["map_ids"])}

    def compute_value(obj):
        calls["getinfo"] += 1
        return {"count": 7, "dates": [1104537600000, 1167523200000]}

    monkeypatch.setattr(tiles, "_default_get_map_id", get_map_id)
    monkeypatch.setattr(ee.data, "computeValue", compute_value)
    monkeypatch.setattr(ee.data, "computePixels", fake_compute(calls["pixels"]))
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
    html = fake.maps[-1][0].get_root().render()
    assert "L.CRS.Simple" not in html
    assert html.count("fake-") == 4  # true colour, false colour, NDVI, labels: Earth Engine tiles
    assert "leaflet.draw" in html.lower()
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

    # Data: the region is downloaded with (fake) computePixels into a georeferenced scene
    fake.value = None
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Area"].endswith(" ha") and "Crop fraction (labels)" in metrics
    assert calls["pixels"] and calls["getinfo"] == 1
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


def test_settings_form_switches_the_source_and_checks_values(ee_configured):
    fake, calls = ee_configured
    at = new_app()
    at.run()
    at.selectbox(key="ee_form_sensor").set_value("S2")
    at.selectbox(key="ee_form_labels").set_value("dynamicworld")
    at.button(key="FormSubmitter:ee_form-Use Earth Engine with these settings").click().run()
    assert not at.exception and not at.error
    src = at.session_state["source"]
    assert src["kind"] == "earthengine" and src["settings"]["composite"]["sensor"] == "S2"
    assert src["settings"]["labels"] == {"product": "dynamicworld"}
    html = fake.maps[-1][0].get_root().render()
    assert "Sentinel-2" in html and "Dynamic World" in html  # layer names in the layer control

    # a bad value is explained and the source stays as it was
    at.selectbox(key="ee_form_labels").set_value("glcfcs30d")
    at.text_input(key="ee_form_year").set_value("1992")
    at.button(key="FormSubmitter:ee_form-Use Earth Engine with these settings").click().run()
    assert any("1985, 1990 and 1995" in e.value for e in at.error)
    assert at.session_state["source"]["settings"]["labels"] == {"product": "dynamicworld"}
    at.text_input(key="ee_form_year").set_value("twenty")
    at.button(key="FormSubmitter:ee_form-Use Earth Engine with these settings").click().run()
    assert any("whole number" in e.value for e in at.error)
