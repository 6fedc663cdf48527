"""Every dashboard page driven with streamlit.testing.v1.AppTest (no browser).

The map component is replaced (``pages.components.mapview._st_folium``) by a fake that records
the folium map and returns what the browser would (e.g. a drawn polygon).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("USE_FOLIUM", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.region import Region  # noqa: E402
from pages.components import mapview, scene  # noqa: E402

TIMEOUT = 120


class FakeMap:
    """Stands in for streamlit-folium: records maps, returns a preset value."""

    def __init__(self) -> None:
        self.maps: list = []
        self.value: dict | None = None

    def __call__(self, m, **kwargs):
        self.maps.append((m, kwargs))
        return self.value


def click_map(at: AppTest, key: str, lat: float, lng: float) -> None:
    """A click on the map drawn with ``key``, as streamlit-folium hands it to the next run: under the
    map's key in the session state, before the page runs."""
    at.session_state[key] = {"last_clicked": {"lat": lat, "lng": lng}}


def readout(fake: "FakeMap") -> list | None:
    """What the last map drawn shows inside it of the clicked pixel ([text, lat, lng]; None: the hint)."""
    group = fake.maps[-1][1]["feature_group_to_add"]
    [value] = [c.value for c in group._children.values() if type(c).__name__ == "Readout"]
    return value


def map_legends(fake: "FakeMap") -> str:
    """The legends' HTML inside the last map drawn (the map's script holds it as a JSON string)."""
    html = fake.maps[-1][0].get_root().render()
    texts = [json.loads(t) for t in re.findall(r'innerHTML = ("(?:[^"\\]|\\.)*");', html)]
    return "".join(t for t in texts if "<b" in t)


@pytest.fixture()
def fake_map(monkeypatch, tmp_path):
    fake = FakeMap()
    monkeypatch.setattr(mapview, "_st_folium", fake)
    monkeypatch.setenv("CROPMAP_WORKDIR", str(tmp_path / "work"))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield fake
    st.cache_data.clear()
    st.cache_resource.clear()


def new_app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)


#: A user's georeferenced GeoTIFF (Sentinel-2, UTM) without band names, used with band numbers.
OWN_IMAGE = ROOT / "tests" / "data" / "georef" / "ftw_austria_s2_2021-06-17_window.tif"


def own_image_app() -> AppTest:
    """The app (not yet run) with :data:`OWN_IMAGE` as the source, bands given by number."""
    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(OWN_IMAGE), "labels": None, "label_map": None,
                                  "title": OWN_IMAGE.name, "band_map": {"R": 1, "G": 2, "B": 3, "NIR": 4}}
    return at


def predict_page(model_path) -> AppTest:
    """The app run once on the Predict page, with ``model_path`` in use and a 256 px box of the sample as the region."""
    at = new_app()
    at.session_state["model_path"] = str(model_path)
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"},
                                  "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [256, 0], [256, 256], [0, 256], [0, 0]]]}}
    at.switch_page("pages/predict.py").run()
    return at


#: A 300 x 300 px square of the sample scene, as the Region page stores a drawn region.
SQUARE_300 = {"type": "Feature", "properties": {"crs": "image"},
              "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [300, 0], [300, 300], [0, 300], [0, 0]]]}}


def by_label(elements, label: str):
    """The first of ``elements`` (e.g. ``at.button``) whose label is ``label``."""
    return next(e for e in elements if e.label == label)


def forms(at: AppTest) -> dict:
    """The forms the page drew: form id -> its settings (the Block.Form proto)."""
    found = {}

    def walk(node) -> None:
        for child in (getattr(node, "children", None) or {}).values():
            proto = getattr(child, "proto", None)
            if type(child).__name__ == "Block" and proto is not None and proto.HasField("form"):
                found[proto.form.form_id] = proto.form
            walk(child)

    walk(at._tree)
    return found


class Upload:
    """What st.file_uploader gives for a file (AppTest cannot drive the upload box: tests put it in
    with ``monkeypatch.setattr(st, "file_uploader", ...)``)."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.name, self.data = name or path.name, path.read_bytes()
        self.file_id = f"{self.name}-{len(self.data)}"

    def getvalue(self) -> bytes:
        return self.data


def texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    parts += [e.value for e in at.success] + [e.value for e in at.error] + [e.value for e in at.warning]
    return "\n".join(str(p) for p in parts)


def layer_names(m) -> list[str]:
    """The names of a folium map's image layers, bottom first."""
    import folium

    return [c.layer_name for c in m._children.values() if isinstance(c, folium.raster_layers.ImageOverlay)]


def scene_layers(m) -> list[str]:
    """:func:`layer_names` of the region's own layers (not the image around the region under them)."""
    return [n for n in layer_names(m) if n != scene.SURROUNDINGS]


def swapped_layers(fake: "FakeMap") -> dict[str, float]:
    """The image layers the last map drawn swaps in place (its feature group), by name: their opacity."""
    import folium

    group = fake.maps[-1][1]["feature_group_to_add"]
    children = group._children.values() if group is not None else []
    return {c.layer_name: c.options["opacity"] for c in children if isinstance(c, folium.raster_layers.ImageOverlay)}


def drawn_feature(cols_rows: list[tuple[float, float]]) -> dict:
    """A polygon as Leaflet.draw returns it on the image map (lng = col, lat = -row)."""
    ring = [[c, -r] for c, r in cols_rows] + [[cols_rows[0][0], -cols_rows[0][1]]]
    return {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


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
    assert "cropmap-click-mark" not in html  # a click on the drawing map draws, it does not read a pixel
    assert "not georeferenced" in texts(at)
    assert at.metric[0].value.startswith("1,048,576")
    # its ground area, from Landsat's 30 m pixels (stated by the source; the file has no CRS): 1,048,576 x 0.09 ha
    assert "Not georeferenced: about 94,372 ha at 30 m pixels (the image's stated pixel size)." in texts(at)
    # The Earth Engine preset is disabled with the reason shown
    camana = [b for b in at.button if "Camana" in b.label][0]
    assert camana.disabled
    assert "Earth Engine" in texts(at)


def test_the_first_runs_waiting_status_is_replaced_by_the_status(fake_map):
    """A session's first run shows a waiting line in the sidebar while its page runs (the sidebar was
    empty for seconds); when the page is done, the status block stands in its place, once, on that
    run and on the next."""
    at = new_app()
    for _ in range(2):
        at.run()
        assert not at.exception
        side = [m.value for m in at.sidebar.markdown]
        assert side.count("### Status") == 1, side
        captions = " ".join(c.value for c in at.sidebar.caption)
        assert "Checking the image" not in captions and "Source: sample scene" in captions
        assert any(s.value.startswith("Sample scene: Landsat 8") for s in at.sidebar.success)


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
    assert "'tileerror'" in html and mapview.BASEMAP_FAILED in html
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


def test_one_field_can_be_viewed_but_training_on_it_says_what_it_needs(fake_map, tiny_model_path, monkeypatch):
    """A 40 x 40 px region (one field; 8 px a side is enough, the model sees the image around it)
    is accepted and shown on the Data page, which says it is under the smallest patch to cut; the
    Model page says so too and cannot start training on it; a 100 px region is offered the patch
    sizes it holds only, on both pages; nothing is started and no job folder is left."""
    from core import jobs

    calls = []
    monkeypatch.setattr(jobs, "start_training", lambda *a, **k: calls.append(k) or "job")
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
    assert {m.label for m in at.metric} >= {"Valid pixels", "Crop fraction (labels)"}
    # part of it lies on one of the sample's gaps: the light grey there is named under the map
    valid_px = int({m.label: m.value for m in at.metric}["Valid pixels"].replace(",", ""))
    assert 0 < valid_px < 1600 and [c.value for c in at.caption if c.value.startswith("Light grey")] == [
        f"Light grey on the map: no image data ({1600 - valid_px:,} px of the region: gaps, clouds or masked pixels); "
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


def test_data_page_layers_and_statistics(fake_map):
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception and not at.error
    labels = {m.label: m.value for m in at.metric}
    assert "Valid pixels" in labels and "Crop fraction (labels)" in labels
    # no hectares from a CRS (it has none), but the ground the valid pixels cover at Landsat's 30 m, as
    # the Region and Predict pages say
    valid = int(labels["Valid pixels"].replace(",", ""))
    from core.metrics import format_hectares

    assert (f"Not georeferenced: sizes are in pixels; the valid pixels cover about {format_hectares(valid * 0.09)} at 30 m "
            "pixels (the image's stated pixel size).") in [c.value for c in at.caption]
    # the CDL classes of the region, named, largest first, in pixels (the sample has no CRS)
    classes = at.dataframe[0].value
    assert list(classes.columns) == ["class", "counts as", "share of labelled pixels", "area"] and 1 <= len(classes) <= 8
    assert classes["area"].str.endswith(" px").all()
    px = classes["area"].str.split(" ").str[0].str.replace(",", "").astype(int)
    assert (px.diff().dropna() <= 0).all() and px.sum() <= 300 * 300
    # the region has more classes than are listed: the caption says what the others hold, so that
    # the crop rows are not taken for all of the crop
    shares = classes["share of labelled pixels"].str.rstrip("%").astype(float)
    rest = [c.value for c in at.caption if c.value.startswith(f"The {len(classes)} largest of ")]
    assert len(classes) == 8 and len(rest) == 1
    held = float(re.search(r"hold ([\d.]+)% of the labelled pixels", rest[0]).group(1))
    assert held == pytest.approx(100 - shares.sum(), abs=0.2)
    assert any("Classes in the region" in md.value and "Cropland Data Layer" in md.value for md in at.markdown)
    m, kwargs = fake_map.maps[-1]
    assert kwargs["returned_objects"] == ["last_clicked"]  # clicks only: moving the map runs nothing
    assert readout(fake_map) is None  # (the map says to click it)
    html = m.get_root().render()
    assert scene_layers(m) == ["True colour (R,G,B)", "Labels"]  # by default, over the image around the region
    assert "cropmap-click-mark" in html  # a click is marked on the map by the map itself
    assert layer_names(m)[0] == scene.SURROUNDINGS and '"opacity": 0.5' in html and "6 4" in html and "#202020" in html  # its outline, cased
    # the legend inside the map fades the label colours as the layer is faded (0.7 by default)
    assert "opacity:0.70" in html
    at.slider(key="data_op_labels").set_value(0.3).run()
    assert "opacity:0.30" in fake_map.maps[-1][0].get_root().render()
    assert not [c for c in at.caption if "hidden under" in c.value]
    at.checkbox(key="data_show_ndvi").check().run()
    assert len(scene_layers(fake_map.maps[-1][0])) == 3
    assert "NDVI" in map_legends(fake_map)  # its legend inside the map, in view with it
    # true colour at full opacity under NDVI at full opacity cannot be seen: the page says so
    assert [c.value for c in at.caption if "hidden under" in c.value] == [
        "True colour (R,G,B) is hidden under a layer at full opacity: lower its opacity or untick it."]
    # a click on the map reads the pixel there: its image values, its label and the product's class
    from core.labels import class_name, get_class_map
    from core.raster import read_image, read_label_classes
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS

    feats, valid, _ = read_image(SAMPLE_IMAGE)
    mask, codes = read_label_classes(SAMPLE_LABELS, get_class_map("cdl"))
    row, col = next((r, c) for r in range(120, 300) for c in range(40, 300) if valid[r, c] and mask[r, c] == 1)
    click_map(at, "data_map", -(row + 0.5), col + 0.5)
    at.run()
    assert not at.exception
    info, lat, lng = readout(fake_map)  # shown inside the map, with the click it reads
    assert (lat, lng) == (-(row + 0.5), col + 0.5)
    assert info == (f"Pixel row {row}, column {col}: NDVI {feats[row, col, 4]:.2f} (reflectance R {feats[row, col, 0]:.3f}, "
                    f"G {feats[row, col, 1]:.3f}, B {feats[row, col, 2]:.3f}, NIR {feats[row, col, 3]:.3f}); labelled "
                    f"crop ({codes[row, col]} {class_name('cdl', codes[row, col])}).")
    click_map(at, "data_map", -310.5, 5.5)  # on the image around the region: not its pixel
    at.run()
    assert readout(fake_map) is None
    at.slider(key="data_op_ndvi").set_value(0.5).run()
    assert not [c for c in at.caption if "hidden under" in c.value]


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
    assert [e.value for e in at.error] == ["The region lies over no image data (no data: light grey on the map); "
                                           "draw it over the image"]
    at.session_state["region"] = Region.from_bbox(0, 0, 290, 290, crs="image").to_geojson()
    at.run()
    assert not at.exception and not at.error
    assert "Only 7% of the region has image data; the rest is no data (light grey on the map) and is left out" in [
        w.value for w in at.warning]


def test_map_image_layers_carry_their_data_urls_whole_without_compiling_them():
    """The image layers' data URLs (the PNGs) join the map's script as text: the same page as
    folium's own ImageOverlay makes, without a Jinja compile of each URL on every rerun."""
    import folium
    from branca import element

    from core.overlays import Overlay, png_bytes

    rng = np.random.default_rng(1)
    png = png_bytes(rng.integers(0, 255, (300, 400, 4), dtype=np.uint8))
    layer = Overlay("True colour", png, ((-300.0, 0.0), (0.0, 400.0)), 400, 300, opacity=0.7)
    spec = mapview.MapSpec(bounds=layer.bounds, image=True, overlays=[layer], opacities={"True colour": 0.7})
    m = mapview.build(spec)
    compiled = []
    real = element.Template
    element.Template = lambda text, *a, **k: compiled.append(len(text)) or real(text, *a, **k)
    try:
        html = m.get_root().render()
    finally:
        element.Template = real
    assert html.count(layer.data_url) == 1 and mapview._map_classes().ImageLayer.STAND_IN not in html
    assert max(compiled) < len(layer.data_url) // 2  # no template as long as the data URL
    # the same script as folium's own layer gives, but for the element's generated name
    plain = folium.raster_layers.ImageOverlay(image=layer.data_url, bounds=[[-300.0, 0.0], [0.0, 400.0]],
                                              name="True colour", opacity=0.7, interactive=False, cross_origin=False,
                                              zindex=1)
    ours = mapview._image_overlay(layer, spec)
    for one in (plain, ours):
        folium.Map(tiles=None).add_child(one)
        one.get_root().render()
    text = {k: one.get_root().script._children[one.get_name()].render().replace(one.get_name(), "LAYER")
            for k, one in (("plain", plain), ("ours", ours))}
    assert text["plain"] == text["ours"] and layer.data_url in text["ours"]


def test_the_server_freezes_the_long_lived_objects_once_tensorflow_is_loaded(fake_map):
    """Streamlit's full collection after every run skipped TensorFlow's objects once frozen: done
    once per server process, after a run with TensorFlow loaded."""
    import gc

    import core.model  # noqa: F401 - TensorFlow loaded, as the Model and Predict pages load it

    gc.unfreeze()
    at = new_app()
    at.run()
    assert not at.exception and gc.get_freeze_count() > 100_000
    gc.unfreeze()
    at.run()
    assert gc.get_freeze_count() == 0  # once only: later objects are collected as before


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


def test_quality_page_keeps_the_pixel_size_warning(fake_map):
    """The shipped model (30 m) scored against labels of a 10 m Sentinel-2 image: the Quality page
    says what the Predict page said (its figures are those of a model on pixels of another size)."""
    from core.metrics import format_hectares as hectares
    from core.model import DEFAULT_MODEL_PATH
    from testdata import FLANDERS_LABELS, FLANDERS_S2

    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(FLANDERS_S2), "labels": str(FLANDERS_LABELS),
                                  "label_map": "worldcereal", "title": FLANDERS_S2.name, "band_map": None}
    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    assert len(at.warning) == 1 and "trained on 30 m pixels" in at.warning[0].value
    # the crop areas in hectares (10 m pixels: 0.01 ha each), as the confusion matrix counts them
    cm = at.table[0].value.map(lambda v: int(str(v).replace(",", "")))
    tp, fp = cm.loc["predicted crop", "label: crop"], cm.loc["predicted crop", "label: not crop"]
    fn = cm.loc["predicted not crop", "label: crop"]
    [line] = [md.value for md in at.markdown if md.value.startswith("**Crop area**")]
    assert line.startswith(f"**Crop area** predicted {hectares((tp + fp) * 0.01)}, in the labels "
                           f"{hectares((tp + fn) * 0.01)}")
    # where the errors are, in hectares too (as the Data page's classes), adding up to the matrix's errors
    errors = at.dataframe[0].value
    assert list(errors.columns) == ["class", "counts as", "area", "predicted crop", "wrong", "share"]
    wrong = errors["wrong"].str.extract(r"^([\d,.]+) ha (missed|false) crop$")
    assert wrong.notna().all().all()
    every = wrong[0].str.replace(",", "").astype(float)
    assert every.sum() == pytest.approx((fp + fn) * 0.01, abs=0.05 * len(errors))  # (each rounded to 0.1 ha)
    # the Data page's classes in hectares as written everywhere (a small class's "0.0 ha" said nothing)
    at.switch_page("pages/data.py").run()
    from pages.components import cached, scene

    classes = next(d.value for d in at.dataframe if "share of labelled pixels" in d.value.columns)
    image = at.session_state["scene"]["image_path"]
    codes, label_map = scene.class_codes(scene._scene_from_dict(at.session_state["scene"]))
    rows = cached.class_areas(codes, cached.mtime(codes), label_map, image, cached.mtime(image))
    assert list(classes["area"]) == [hectares(r["area_ha"]) for r in rows]


def test_predict_page_warns_about_another_pixel_size(fake_map):
    """Shipped model (30 m) on a 10 m image: the Predict page says so before anything is predicted."""
    from core.model import DEFAULT_MODEL_PATH

    at = own_image_app()
    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/predict.py").run()
    assert not at.exception and not at.error
    assert len(at.warning) == 1 and "trained on 30 m pixels" in at.warning[0].value
    # the sample scene (no CRS) gets no warning: its pixel size is unknown
    at.session_state["source"] = {"kind": "sample"}
    at.session_state["scene"] = None
    at.run()
    assert not at.exception and not at.warning


def test_model_page_loads_uploaded_card_model(fake_map, tiny_model_path):
    at = new_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/model.py")
    at.run()
    assert not at.exception and not at.error
    from core.bands import FEATURE_BANDS

    # the card of the model in use (conftest's tiny model: the light preset on the five feature bands)
    assert f"**tiny.keras** -- preset `light`, bands {', '.join(FEATURE_BANDS)}" in texts(at)


def test_model_page_fine_tunes_the_model_in_use(fake_map, tiny_model_path, monkeypatch):
    from core import jobs

    calls = []
    monkeypatch.setattr(jobs, "start_training", lambda *a, **k: calls.append((a, k)) or "job")
    at = new_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/model.py")
    at.run()
    assert by_label(at.selectbox, "Preset").value == "light"  # the default preset
    at.checkbox[0].check()
    by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception  # (the job panel then reports that the faked job does not exist)
    (train, val, _job), kw = calls[0]
    assert kw["config"]["init_model"] == str(tiny_model_path) and kw["config"]["preset"] == "light"
    # validation is a held-out block of the region, not the training pixels
    assert train != val and train[0].endswith("train_labels.tif") and val[0].endswith("val_labels.tif")
    assert kw["label_map"] == "binary" and "holds out" in kw["note"]
    # the model card will say what it was trained on in words, not by the job folder's paths
    assert kw["data_text"].startswith("a 1024 x 1024 px region of Sample scene: Landsat 8")
    assert "validation on columns 768-1023" in kw["data_text"] and "Cropland Data Layer" in kw["data_text"]


def test_model_page_keeps_the_training_form_and_refuses_a_second_job(fake_map, monkeypatch):
    from core import jobs

    calls = []
    monkeypatch.setattr(jobs, "start_training", lambda *a, **k: calls.append(k) or "job")
    at = new_app()
    at.switch_page("pages/model.py")
    at.run()
    by_label(at.number_input, "Epochs").set_value(3)
    by_label(at.number_input, "Steps per epoch").set_value(4)
    by_label(at.selectbox, "Patch size").set_value(128)
    by_label(at.number_input, "Stop after epochs without improvement").set_value(2)
    by_label(at.number_input, "Patches scored after each epoch").set_value(12)
    # Enter in a box does not start the job: it started with the settings typed so far (Streamlit's default)
    assert not forms(at)["train_form"].enter_to_submit
    by_label(at.button, "Start training").click()
    at.run()
    assert calls[-1]["config"]["epochs"] == 3 and calls[-1]["config"]["patch_size"] == 128
    assert calls[-1]["config"]["patience"] == 2 and calls[-1]["config"]["val_patches"] == 12
    at.switch_page("pages/data.py")
    at.run()
    at.switch_page("pages/model.py")
    at.run()
    assert by_label(at.number_input, "Epochs").value == 3  # not back at the default 5
    assert by_label(at.number_input, "Stop after epochs without improvement").value == 2
    assert by_label(at.number_input, "Steps per epoch").value == 4
    assert by_label(at.selectbox, "Patch size").value == 128
    # a job running in the work folder (e.g. started before a browser reload) is found again, and a
    # second one cannot be started beside it
    job_dir = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs" / "job-running"
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.05}, job_dir, note="held-out note")
    try:
        fresh = new_app()  # a new browser session: nothing in its session state
        fresh.switch_page("pages/model.py")
        fresh.run()
        assert not fresh.exception
        assert by_label(fresh.button, "Start training").disabled
        assert "held-out note" in texts(fresh)
        side = new_app()  # another new session, on the first page: the sidebar follows the job too
        side.run()
        assert "Training: running" in texts(side) or "Training: starting" in texts(side)
        assert any(b.label == "Cancel training" for b in fresh.button)
    finally:
        jobs.cancel(job_dir, terminate_after_s=5)


def test_an_upload_error_said_again_on_later_runs_is_written_as_at_first(fake_map, monkeypatch):
    """A bad band list for an uploaded image: its error, said again while the file is chosen (e.g.
    after a region is drawn), lost its capital letter ("bad band list ...")."""
    files = {"upload_image": Upload(OWN_IMAGE), "upload_labels": None}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = new_app()
    at.run()
    at.text_input(key="upload_bands").set_value("a,b,c,d")
    by_label(at.button, "Use these files").click().run()
    assert not at.exception
    [first] = [e.value for e in at.error]
    assert first.startswith("Bad band list")
    at.run()  # another run, the file still chosen: the same words
    assert [e.value for e in at.error] == [first]


def test_model_page_names_the_uploaded_files_when_the_card_is_another_models(fake_map, tiny_model_path, monkeypatch,
                                                                              tmp_path):
    """A model and the card of another model, uploaded: the error named the copy of the card stored
    beside the model (``tiny.json``), not the file the user chose; a matching card is used."""
    from core.model import DEFAULT_MODEL_PATH, card_path

    files = {"upload_model": Upload(tiny_model_path, "tiny.keras"),
             "upload_card": Upload(card_path(DEFAULT_MODEL_PATH), "card_of_run_B.json")}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = new_app()
    at.switch_page("pages/model.py").run()
    by_label(at.button, "Use uploaded model").click().run()
    assert not at.exception
    assert [e.value for e in at.error if "card_of_run_B.json is not tiny.keras's" in e.value], texts(at)
    assert at.session_state["model_path"] is None  # (nothing in use changed)
    files["upload_card"] = Upload(card_path(tiny_model_path), "tiny.json")
    by_label(at.button, "Use uploaded model").click().run()
    assert not at.exception and not at.error and "Using tiny.keras." in texts(at)


def test_data_page_cuts_patches_and_hands_them_to_training(fake_map):
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.switch_page("pages/data.py")
    at.run()
    by_label(at.selectbox, "Patch size").set_value(64)
    by_label(at.number_input, "Training patches").set_value(5)
    by_label(at.number_input, "Test patches").set_value(2)
    assert not forms(at)["patch_form"].enter_to_submit  # (Enter in a box cut patches of half-typed settings)
    by_label(at.button, "Cut patches").click()
    at.run()
    assert not at.exception and not at.error
    made = at.session_state["patches"]
    assert made["count"] == [5, 2] and "held out" in made["note"]
    assert "5 training patches" in texts(at) and "2 test patches" in texts(at)
    assert not [w for w in at.warning if "repeat" in w.value]  # 300 px holds many different 64 px patches
    from core.patchset import open_patch_set

    assert open_patch_set([made["train"]], 64).record_size == 64 and open_patch_set([made["test"]], 64).record_size == 64
    at.switch_page("pages/region.py")
    at.run()
    at.switch_page("pages/data.py")
    at.run()  # back on the page, the form shows what was last cut
    assert by_label(at.selectbox, "Patch size").value == 64
    assert by_label(at.number_input, "Training patches").value == 5 and by_label(at.number_input, "Test patches").value == 2
    downloads = [d for d in at.get("download_button")]
    assert len(downloads) == 2
    # a held-out block unlike the rest of the region is pointed out (the review's 26% and 63% crop)
    for crop, warned in (([0.26, 0.63], True), ([0.44, 0.5], False)):
        at.session_state["patches"] = {**made, "crop": crop}
        at.run()
        assert any("percentage points" in w.value for w in at.warning) == warned
    by_label(at.button, "Train on these patches").click()
    at.run()
    assert not at.exception
    # the Model page opens with the patches chosen and their paths filled in
    assert by_label(at.radio, "Train on").value == "patches"
    assert by_label(at.text_input, "Training patches").value == made["train"]
    assert by_label(at.text_input, "Validation patches").value == made["test"]
    assert at.selectbox(key="train_patch").value == 64


def test_data_page_says_when_patches_repeat_on_a_small_region(fake_map):
    """A region one patch large holds one place for it: the copies the count asks for are said."""
    at = new_app()
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"},
                                  "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [64, 0], [64, 64], [0, 64], [0, 0]]]}}
    at.switch_page("pages/data.py").run()
    assert at.selectbox(key="patch_size").options == ["64"]
    by_label(at.number_input, "Training patches").set_value(5)
    by_label(at.number_input, "Test patches").set_value(2)
    by_label(at.button, "Cut patches").click().run()
    assert not at.exception and not at.error
    repeats = [w.value for w in at.warning if "repeat" in w.value]
    assert len(repeats) == 2 and repeats[0].startswith("Training patches: only 1 of the 5 patches differ")
    assert repeats[1].startswith("Test patches: only 1 of the 2 patches differ")


def test_data_page_keeps_the_label_layer_and_patch_form_across_sources_and_regions(fake_map):
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.switch_page("pages/data.py").run()
    assert at.checkbox(key="data_show_labels").value
    by_label(at.selectbox, "Patch size").set_value(64)
    by_label(at.number_input, "Training patches").set_value(3)
    by_label(at.number_input, "Test patches").set_value(2)
    by_label(at.button, "Cut patches").click().run()
    assert not at.exception and not at.error
    # an image without labels: the box is unticked and disabled ...
    at.switch_page("pages/region.py").run()
    at.session_state["source"] = own_image_app().session_state["source"]
    at.session_state["region"] = at.session_state["scene"] = None  # as state.set_source leaves them
    at.switch_page("pages/data.py").run()
    assert not at.exception
    box = at.checkbox(key="data_show_labels")
    assert not box.value and box.disabled
    # ... and back on the sample, with another region, the labels show again and the form is as submitted
    at.switch_page("pages/region.py").run()
    at.session_state["source"] = {"kind": "sample"}
    at.session_state["region"] = {**SQUARE_300, "properties": {"crs": "image", "name": "another"}}
    at.session_state["scene"] = at.session_state["patches"] = None  # as a new region leaves them
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert at.checkbox(key="data_show_labels").value
    assert len(scene_layers(fake_map.maps[-1][0])) == 2  # true colour + labels
    assert by_label(at.selectbox, "Patch size").value == 64
    assert by_label(at.number_input, "Training patches").value == 3 and by_label(at.number_input, "Test patches").value == 2


def test_data_page_leaves_no_progress_bar_when_the_region_is_unusable(fake_map):
    at = new_app()
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"},
                                  "geometry": {"type": "Polygon", "coordinates": [[[2000, 2000], [2400, 2000], [2400, 2400], [2000, 2000]]]}}
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert any("outside the image" in e.value for e in at.error)
    assert not at.get("progress")


def test_model_page_trains_on_exported_patches(fake_map, small_scene, tmp_path, monkeypatch):
    from core import jobs
    from core.config import PatchConfig
    from core.patches import sample_patches

    img, lab = small_scene
    for name, seed in (("train_000", 1), ("test_000", 2)):
        sample_patches(img, lab, "cdl", PatchConfig(patch_size=128, kernel_buffer=16, count=3, seed=seed),
                       tmp_path / f"{name}.tfrecord.gz")
    calls = []
    monkeypatch.setattr(jobs, "start_training", lambda *a, **k: calls.append((a, k)) or "job")
    at = new_app()
    at.switch_page("pages/model.py")
    at.run()
    by_label(at.radio, "Train on").set_value("patches")
    at.run()
    by_label(at.selectbox, "Patch size").set_value(128)
    train_box = by_label(at.text_input, "Training patches")
    val_box = by_label(at.text_input, "Validation patches")
    train_box.set_value(str(tmp_path / "missing_*.tfrecord.gz"))
    val_box.set_value(str(tmp_path / "test_000.tfrecord.gz"))
    by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception and not calls
    assert any("No TFRecord files" in e.value for e in at.error)  # the project's message, in the page
    by_label(at.text_input, "Training patches").set_value(str(tmp_path / "train_*.tfrecord.gz"))
    by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception
    (train, val, _job), kw = calls[-1]
    assert train == [str(tmp_path / "train_*.tfrecord.gz")] and val == [str(tmp_path / "test_000.tfrecord.gz")]
    assert kw["note"] == ("Training on 1 TFRecord file(s) of 160 px patches (a random 128 px crop of each); "
                          "validation on the centre 128 px of 1 TFRecord file(s) of 160 px patches.")
    at.switch_page("pages/data.py")
    at.run()
    at.switch_page("pages/model.py")
    at.run()  # the choice and the paths are kept
    assert by_label(at.radio, "Train on").value == "patches"
    assert by_label(at.text_input, "Training patches").value == str(tmp_path / "train_*.tfrecord.gz")


def test_model_page_shows_the_shipped_cards_validation_figures(fake_map):
    from core.model import DEFAULT_MODEL_PATH, load_card

    card = load_card(DEFAULT_MODEL_PATH)
    at = new_app()
    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/model.py")
    at.run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["IoU"] == f"{card.metrics['val_blocks']['iou']:.3f}"
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 6  # one row per val block
    # the card's time, read as a time: "created 2026-11-25 15:22 UTC" (the card says ...T15:22:20+00:00)
    created = card.created.replace("T", " ")[:16]
    assert f"created {created} UTC" in texts(at) and card.created not in texts(at)
    assert not at.warning  # the sample scene: 30 m Landsat, as the model's training images
    # the card in words (its JSON beside it, for programs), the card's own characters kept as they are
    [card_box] = [e for e in at.expander if e.label == "Model card"]
    told = [md.value for md in card_box.tabs[0].markdown]
    assert told[0].startswith("**Model:** U\\-Net, light preset") and "**Trained on:** Ag\\-Net" in told[2]
    assert any(t.startswith("**Made by:** `python -m core train") for t in told)
    assert card_box.tabs[1].json[0].value is not None


def test_model_page_warns_that_its_figures_are_for_another_pixel_size(fake_map):
    """The shipped model's validation figures are for 30 m pixels: beside them, a 10 m image in use is warned of."""
    from core.model import DEFAULT_MODEL_PATH

    at = own_image_app()  # Sentinel-2, 10 m
    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/model.py")
    at.run()
    assert not at.exception and not at.error
    [warning] = [w.value for w in at.warning]
    assert warning.startswith("On the image in use, the model was trained on 30 m pixels and this image has 10 m pixels")
    assert warning.endswith("The validation figures above are for images of 30 m pixels, like its training images.")


def test_predict_threshold_and_no_recompute(fake_map, tiny_model_path, monkeypatch):
    from core.metrics import format_hectares as hectares

    import core.predict

    calls = {"n": 0}
    real = core.predict.predict_array

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(core.predict, "predict_array", counting)
    import core.overlays

    tifs = []
    real_tif = core.overlays.geotiff_bytes
    monkeypatch.setattr(core.overlays, "geotiff_bytes", lambda *a, **k: tifs.append(a[3]) or real_tif(*a, **k))
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
    m, kwargs = fake_map.maps[-1]
    html = m.get_root().render()
    assert len(scene_layers(m)) == 2  # imagery, probability
    # legends inside the map (in view with it, and in full screen), without the threshold (the map's
    # script must not change with it)
    assert "enterFullscreen" in html and "Crop probability" in html and "predicted crop" in html
    assert "Crop probability" in map_legends(fake_map) and "(p " not in map_legends(fake_map)
    group = kwargs["feature_group_to_add"]  # the crop layer is swapped in place, without reloading the map
    assert group is not None and len(group._children) == 3  # the layer, its title, the click reading
    # with a script that gives the full-screen legend its threshold in place (an audience sees which one)
    title = [c for c in group._children.values() if type(c).__name__ == "DynamicTitle"][0]
    # and its figures, as the page gives them (in full screen the page's figures are out of view)
    figures = {m.label: m.value for m in at.metric}
    share = float(figures["Crop share of valid pixels"][:-1])
    assert title.title == f"Crop (p ≥ 0.50): {figures['Crop area']}, {share:.0f}%"
    assert "data-cropmap-legend=\\u0027Crop\\u0027" in html
    # and its colours at the layer's opacity, as on the page (set in place too: no map reload)
    assert title.opacity == 0.6 and "data-cropmap-swatch=\\u0027Crop\\u0027" in html
    from streamlit_folium import generate_leaflet_string

    script = generate_leaflet_string(title)
    assert '"Crop (p \\u2265 0.50): ' in script or '"Crop (p ≥ 0.50): ' in script
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
    import rasterio.io

    from core.predict import threshold_mask

    with rasterio.io.MemoryFile(deferred["crop_mask_t0.95.tif"]()) as mem, mem.open() as src:
        mask = src.read(1)
    from pages.components import cached

    prob = cached.cached_probability(deferred["probability.tif"].args[0])  # the prediction's key
    assert (mask == threshold_mask(prob, 0.95)).all()  # the slider's threshold, on the server's probability
    assert deferred["crop_map_t0.95.png"]()[:8] == b"\x89PNG\r\n\x1a\n" and deferred["probability.tif"]()[:2] in (b"II", b"MM")
    assert tifs.count("crop probability (%)") == 1 and tifs.count("crop (1), not crop (0)") == 1  # PNG: same call
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
    assert f"; crop probability {pct}%: {crop} at threshold {threshold:.2f}; labelled " in info


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


def test_quality_page_metrics(fake_map, tiny_model_path, monkeypatch):
    from pages.components import cached

    curves = []
    real_curve = cached.threshold_curve
    monkeypatch.setattr(cached, "threshold_curve", lambda *a: curves.append(real_curve(*a)) or curves[-1])
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    labels = [m.label for m in at.metric]
    assert labels == ["IoU", "F1", "Precision", "Recall", "Accuracy"]  # as the Model page has them
    from core.metrics import SCORE_HELP  # each explained in plain words where it is shown

    assert [m.proto.help for m in at.metric] == [SCORE_HELP[k] for k in ("iou", "f1", "precision", "recall", "accuracy")]
    assert len(at.table) == 1
    assert not [c for c in at.caption if c.value.startswith("Few labelled pixels")]  # 65,536 px: enough of each
    # the confusion matrix (counts with thousands separators) gives the IoU shown
    cm = at.table[0].value.map(lambda v: int(str(v).replace(",", "")))
    tp, fp = cm.loc["predicted crop", "label: crop"], cm.loc["predicted crop", "label: not crop"]
    fn = cm.loc["predicted not crop", "label: crop"]
    assert float({m.label: m.value for m in at.metric}["IoU"]) == pytest.approx(tp / (tp + fp + fn), abs=5e-4)
    # the crop areas, predicted and labelled, from the same matrix (image coordinates: pixels)
    [line] = [md.value for md in at.markdown if md.value.startswith("**Crop area**")]
    diff = (tp + fp) / (tp + fn) - 1
    assert line.startswith(f"**Crop area** predicted {tp + fp:,} px, in the labels {tp + fn:,} px: "
                           f"**{abs(diff):.1%} {'more' if diff > 0 else 'less'}** than the labels")
    # errors by CDL class, named from the legend, most errors first
    errors = at.dataframe[0].value
    assert list(errors.columns) == ["class", "counts as", "pixels", "predicted crop", "wrong pixels", "share"]
    assert 1 <= len(errors) <= 6 and errors["class"].str.match(r"^\d+ \S").all()
    wrong = errors["wrong pixels"].str.split(" ").str[0].str.replace(",", "").astype(int)
    assert (wrong.diff().dropna() <= 0).all()
    # the errors swapped in place over the imagery: a threshold change keeps the map's zoom and the click
    assert len(scene_layers(fake_map.maps[-1][0])) == 1 and list(swapped_layers(fake_map)) == ["Disagreement"]
    # the threshold left untouched on Predict arrives as it was (not reset to the slider's minimum)
    assert at.slider[0].value == pytest.approx(0.5)
    # the best-F1 threshold from the curve, one click away; it becomes the shared threshold
    best = [c for c in at.caption if c.value.startswith("Best F1")][0].value
    best_t = float(best.rstrip(".").rsplit(" ", 1)[1])
    # picked on the labels it is scored on: said, with what it does to the crop area (here, at the
    # threshold the curve says: predicted / labelled crop = recall / precision)
    row = [r for r in curves[-1] if r["threshold"] == pytest.approx(best_t)][0]
    d = row["recall"] / row["precision"] - 1
    told = [c.value for c in at.caption if "picked on these labels" in c.value]
    assert told == [f"There the predicted crop area is {abs(d):.1%} {'more' if d > 0 else 'less'} than the labels'. "
                    "The threshold is picked on these labels, so its figures are optimistic for other regions."]
    other = 0.9 if best_t < 0.5 else 0.1
    at.slider[0].set_value(other).run()
    use = [b for b in at.button if b.key == "quality_use_best"]
    assert use and use[0].label == f"Use threshold {best_t:.2f}"
    use[0].click().run()
    assert not at.exception and at.slider[0].value == pytest.approx(best_t)
    assert at.session_state["threshold"] == pytest.approx(best_t)
    assert not [b for b in at.button if b.key == "quality_use_best"]  # at the best already: no button
    # and says so (the button goes, and the slider may be out of view, at the top of the page)
    assert [t.value for t in at.toast] == [f"Threshold set to {best_t:.2f}, the best F1 here; the Predict page uses "
                                           "it too."]


def test_quality_page_shows_the_errors_on_one_class(fake_map, tiny_model_path):
    """The disagreement map narrowed to one CDL class (e.g. grassland taken for crop), kept when the
    threshold moves."""
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    pick = at.selectbox(key="w_quality_class")
    assert pick.value == "all" and len(pick.options) > 2 and pick.options[0] == "every class of the labels"
    every = fake_map.maps[-1][0].get_root().render()
    wrong = at.dataframe[0].value["class"].iloc[0]  # the class with the most wrong pixels
    code = int(wrong.split(" ")[0])
    pick.set_value(code).run()
    assert not at.exception and not at.error
    html = fake_map.maps[-1][0].get_root().render()
    assert len(scene_layers(fake_map.maps[-1][0])) == 1 and html != every
    assert list(swapped_layers(fake_map)) == [f"Disagreement on {wrong}"]
    # the figures beside it stay the whole region's, and the page says so
    assert f"The figures are for every class; the map shows the errors on {wrong} alone." in texts(at)
    from html import escape

    legend = map_legends(fake_map)
    # the legend says which class, and the one error it can have; at which threshold, set in place
    assert f"Disagreement on {escape(wrong)}" in legend
    group = fake_map.maps[-1][1]["feature_group_to_add"]
    [title] = [c.title for c in group._children.values() if type(c).__name__ == "DynamicTitle"]
    assert title == f"Disagreement on {wrong} (p ≥ {at.session_state['threshold']:.2f})"
    from core.labels import get_class_map

    is_crop = code in get_class_map("cdl").crop_codes
    assert ("missed crop" in legend) == is_crop and ("false crop" in legend) == (not is_crop)
    # the layer can be faded or hidden, to see the image under the errors
    at.slider(key="quality_op_dis").set_value(0.4).run()
    assert swapped_layers(fake_map) == {f"Disagreement on {wrong}": 0.4}
    group = fake_map.maps[-1][1]["feature_group_to_add"]  # its legend's swatches too, set in place
    assert [c.opacity for c in group._children.values() if type(c).__name__ == "DynamicTitle"] == [0.4]
    at.checkbox(key="quality_show_dis").uncheck().run()
    assert not at.exception and len(scene_layers(fake_map.maps[-1][0])) == 1 and swapped_layers(fake_map) == {}
    assert "Disagreement" not in map_legends(fake_map)  # a hidden layer's legend goes with it
    at.checkbox(key="quality_show_dis").check().run()
    at.slider[0].set_value(0.3).run()
    assert at.selectbox(key="w_quality_class").value == code  # the choice survives a threshold change
    at.switch_page("pages/predict.py").run()
    at.switch_page("pages/quality.py").run()
    assert at.selectbox(key="w_quality_class").value == code  # and a visit to another page


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


def test_a_prediction_still_running_when_the_region_changes_is_not_followed(fake_map, tiny_model_path):
    """Predict pressed for one region, another drawn while it runs: the pages no longer wait for the
    first run, and it does not come back as the prediction of the new region when it ends."""
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
    assert run.finished.wait(60) and run.error is None
    at.run()
    assert not at.exception and at.session_state["prediction"] is None  # not the old region's
    assert cached.prediction_file(key).exists()  # kept on disk: shown again if the region comes back
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
    failed, this tab's pending prediction did not vanish without a word."""
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
        "The prediction started here was also run by another tab (the same region and model), and it did not "
        "finish there; press Predict to run it again"]
    assert at.session_state["predicting"] is None and at.session_state["prediction"] is None
    at.run()
    assert not [e.value for e in at.error if "another tab" in e.value]  # said once


def test_predict_layer_settings_survive_other_pages(fake_map, tiny_model_path):
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.checkbox(key="predict_show_probability").uncheck().run()
    at.slider(key="predict_op_crop").set_value(0.3).run()
    at.switch_page("pages/quality.py").run()
    at.switch_page("pages/predict.py").run()
    assert not at.exception
    assert at.checkbox(key="predict_show_probability").value is False
    assert at.slider(key="predict_op_probability").disabled
    assert at.slider(key="predict_op_crop").value == pytest.approx(0.3)
    assert len(scene_layers(fake_map.maps[-1][0])) == 1  # imagery only; crop is dynamic


def test_quality_follows_the_prediction_the_predict_page_shows_after_a_views_change(fake_map, tiny_model_path):
    """The views changed, Predict not pressed: the Predict page still shows the 1-view prediction, and
    the Quality page checks that one too, saying so (it called it out of date, while Predict showed it)."""
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.selectbox(key="w_views").set_value(4).run()  # changed, not predicted again
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    assert [i.value for i in at.info][:1] == ["These figures are of the prediction made with 1 view of each tile: "
                                              "press Predict on the Predict page to map crops with 4 views."]
    assert [m.label for m in at.metric][:1] == ["IoU"]
    assert any(c.value == "Prediction by tiny.keras." for c in at.caption)  # the 1-view one's figures


def test_quality_without_crop_in_the_labels_recommends_no_threshold(fake_map, tiny_model_path, monkeypatch):
    import numpy as np

    from pages.components import cached

    real = cached.confusion

    def no_crop_labels(*args):
        c = dict(real(*args))
        c.update(fp=c["fp"] + c["tp"], tn=c["tn"] + c["fn"], tp=0, fn=0)
        return c

    monkeypatch.setattr(cached, "confusion", no_crop_labels)
    monkeypatch.setattr(cached, "threshold_curve", lambda *a: [
        {"threshold": t, "f1": 0.0, "iou": 0.0, "precision": 0.0, "recall": 0.0} for t in np.arange(0.05, 1, 0.05)])
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Recall"] == shown["F1"] == shown["IoU"] == "n/a"
    assert any("no crop pixel" in i.value for i in at.info)
    assert not [c for c in at.caption if c.value.startswith("Best F1")]
    assert not [b for b in at.button if b.key == "quality_use_best"]


def test_quality_when_no_threshold_finds_crop_recommends_none(fake_map, tiny_model_path, monkeypatch):
    """Labels with crop, a model that finds none of it (a desert region, an unsuited model): the page
    offered 'Best F1 0.000 at threshold 0.05' and a button to use it."""
    import numpy as np

    from pages.components import cached

    monkeypatch.setattr(cached, "threshold_curve", lambda *a: [
        {"threshold": t, "f1": 0.0, "iou": 0.0, "precision": None, "recall": 0.0} for t in np.arange(0.05, 1, 0.05)])
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    assert any(c.value.startswith("No threshold finds any of the labels' crop") for c in at.caption)
    assert not [c for c in at.caption if c.value.startswith("Best F1")]
    assert not [b for b in at.button if b.key == "quality_use_best"]


def test_quality_without_prediction_says_what_to_do(fake_map):
    at = new_app()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    assert any("Run a prediction first" in i.value for i in at.info)


def test_bad_model_path_shows_project_error(fake_map, tmp_path):
    at = new_app()
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip")
    bad.with_suffix(".json").write_text("{}")
    at.session_state["model_path"] = str(bad)
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert at.error and "This JSON is not a model card" in at.error[0].value


def test_model_page_says_what_an_upload_needs_and_steps_the_learning_rate_finely(fake_map):
    at = new_app()
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert any(c.value.startswith("Both files are needed: upload the model (.keras) and its model card (.json).")
               for c in at.caption)
    assert next(b for b in at.button if b.label == "Use uploaded model").disabled
    lr = at.number_input(key="train_lr")
    assert lr.value == 0.001 and lr.step == 0.0001  # "+" gave 0.011 (11 times), "-" was greyed out


def test_uploaded_geojson_outside_image(fake_map):
    at = new_app()
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"},
                                  "geometry": {"type": "Polygon", "coordinates": [[[2000, 2000], [2400, 2000], [2400, 2400], [2000, 2000]]]}}
    at.run()
    assert not at.exception
    assert any("outside the image" in e.value for e in at.error)


def _upload_regions_script():
    import json

    import streamlit as st

    from core.errors import CropMapError
    from pages.components import scene, state

    for name, geo in st.session_state["uploads"]:
        try:
            scene.use_uploaded_region(json.dumps(geo).encode(), name)
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
    assert errors[3].startswith("line.geojson cannot be used: ")
    assert errors[0].startswith("outside.geojson cannot be used: the region lies outside the image")
    assert "lonlat.geojson cannot be used: this image is not georeferenced" in errors[1]
    assert "at least 8 x 8 px" in errors[2]
    assert at.session_state["region_after"]["properties"]["name"] == "inside.geojson"  # the usable one, kept


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
    back = by_label(at.button, "Back to the previous region (90,000 pixels)")  # SQUARE_300 has no name
    back.click().run()
    assert not at.exception
    assert at.session_state["region"] == SQUARE_300
    assert not at.error
    assert at.metric[0].value.startswith("90,000")
    # The same drawing, still in the map's drawings, is not taken again
    at.run()
    assert at.session_state["region"] == SQUARE_300


def test_region_page_area_is_the_pixels_used_of_a_shape_partly_outside_the_image(fake_map):
    """The headline area is that of the pixels every other page counts (inside the shape and the
    image), not the whole shape's, with the shape's own area in a line under it; and the sample's
    gaps (light grey) are named under the map."""
    at = new_app()
    at.run()
    assert any(c.value.startswith("Light grey on the map: no image data (") for c in at.caption)
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


def test_probability_array_not_in_session_state(fake_map, tiny_model_path):
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    for key in at.session_state.filtered_state:
        value = at.session_state[key]
        assert not isinstance(value, np.ndarray), key


def test_earth_engine_page_without_earth_engine_says_why(fake_map, monkeypatch):
    from core.ee import auth

    monkeypatch.setattr(auth, "status", lambda *a, **k: auth.EEStatus(False, None, "none", "no credentials found; set X"))
    at = new_app()
    at.switch_page("pages/earthengine.py")
    at.run()
    assert not at.exception
    assert any("Earth Engine is not available: no credentials found" in i.value for i in at.info)
    assert not at.tabs  # nothing else is drawn


def test_earth_engine_image_export_as_the_source(fake_map, tmp_path):
    """An image export (TFRecord patches + mixer) given by path becomes a georeferenced source."""
    from core.patches import write_image_export
    from core.raster import ImageReader

    with ImageReader(OWN_IMAGE, {"R": 1, "G": 2, "B": 3, "NIR": 4}) as reader:
        mixer = write_image_export(tmp_path / "exp" / "austria", reader, patch=128, kernel=32)
    at = new_app()
    at.run()
    at.text_input(key="upload_mixer").set_value(str(tmp_path / "missing-mixer.json"))
    [b for b in at.button if b.label == "Use this export"][0].click()
    at.run()
    assert any("Mixer file not found" in e.value for e in at.error)
    assert at.session_state["source"] == {"kind": "sample"}  # unchanged
    at.text_input(key="upload_mixer").set_value(str(mixer))
    [b for b in at.button if b.label == "Use this export"][0].click()
    at.run()
    assert not at.exception and not at.error
    src = at.session_state["source"]
    assert src["kind"] == "local" and src["title"] == "austria-mixer.json (Earth Engine image export)"
    assert "L.CRS.Simple" not in fake_map.maps[-1][0].get_root().render()
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Area"].endswith(" ha")


def _cloud_storage_unreachable(monkeypatch):
    """Cloud Storage out of reach (offline, no credentials for TensorFlow's GCS filesystem, no access):
    tf.io.gfile raises tf.errors.* (not a CropMapError). This sandbox has no network and the real calls
    fail exactly like this (FailedPreconditionError, 'Could not resolve host'); the patch only makes
    the test independent of the network."""
    import tensorflow as tf

    def unreachable(path, *a, **k):
        raise tf.errors.FailedPreconditionError(
            None, None, "Error executing an HTTP request: libcurl code 6 meaning 'Could not resolve hostname'"
                        f"\n\t when reading metadata of {path}")

    monkeypatch.setattr(tf.io.gfile, "exists", unreachable)
    monkeypatch.setattr(tf.io.gfile, "glob", unreachable)
    monkeypatch.setattr(tf.io.gfile, "isdir", unreachable)


def test_gs_mixer_out_of_reach_is_an_error_message_not_a_crash(fake_map, monkeypatch):
    """Region page > 'Use an Earth Engine image export' with a gs:// mixer while Cloud Storage is out
    of reach: one st.error naming the path and what to check (it was a raw TensorFlow exception)."""
    _cloud_storage_unreachable(monkeypatch)
    at = new_app()
    at.run()
    at.text_input(key="upload_mixer").set_value("gs://my-bucket/exports/camana-mixer.json")
    by_label(at.button, "Use this export").click().run()
    assert not at.exception, at.exception[0].stack_trace[-1] if at.exception[0].stack_trace else at.exception[0].value
    assert any("gs://my-bucket" in e.value and "check the network" in e.value for e in at.error)
    assert not at.get("progress")


def test_gs_patches_out_of_reach_is_an_error_message_not_a_crash(fake_map, monkeypatch):
    """Model page > Train > 'TFRecord patches' with gs:// paths (what the Earth Engine page's
    'Train on the exported patches' fills in) while Cloud Storage is out of reach: an error message."""
    from core import jobs

    started = []
    monkeypatch.setattr(jobs, "start_training", lambda *a, **k: started.append(a) or "job")
    _cloud_storage_unreachable(monkeypatch)
    at = new_app()
    at.switch_page("pages/model.py").run()
    by_label(at.radio, "Train on").set_value("patches")
    at.run()
    by_label(at.text_input, "Training patches").set_value("gs://my-bucket/crops/train_*.tfrecord.gz")
    by_label(at.text_input, "Validation patches").set_value("gs://my-bucket/crops/test_*.tfrecord.gz")
    by_label(at.button, "Start training").click().run()
    assert not at.exception, at.exception[0].value
    assert any("gs://my-bucket/crops/" in e.value and "check the network" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert started == []  # no job started on patches that cannot be read


def test_failed_export_leaves_no_progress_bar(fake_map, tmp_path):
    """Region page > 'Use this export' with a mixer that is not there: the error, and no
    'Assembling the export...' bar left above it as if the assembly were still going on."""
    at = new_app()
    at.run()
    at.text_input(key="upload_mixer").set_value(str(tmp_path / "missing-mixer.json"))
    by_label(at.button, "Use this export").click().run()
    assert any("Mixer file not found" in e.value for e in at.error)
    assert not at.get("progress"), [p.proto.text for p in at.get("progress")]


def test_model_page_follows_the_running_job_of_another_tab(fake_map):
    """This session followed a finished job; another tab starts one: the panel shows the running
    job with its Cancel (it showed the finished one, while the form said 'cancel it below')."""
    from core import jobs
    from test_jobs import wait_for

    root = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs"
    jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0}, root / "job-a", note="job A")
    wait_for(root / "job-a", ("done",))
    at = new_app()
    at.session_state["job_dir"] = str(root / "job-a")  # this session started it
    at.switch_page("pages/model.py").run()
    assert "job A" in texts(at)
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.1}, root / "job-b", note="job B")
    try:
        wait_for(root / "job-b", ("running",))
        at.run()
        start = by_label(at.button, "Start training")
        assert start.disabled and "cancel it above" in (start.help or "")
        assert any(b.label == "Cancel training" for b in at.button) and "job B" in texts(at)
    finally:
        jobs.cancel(root / "job-b", terminate_after_s=5)


def _opening_tab(at) -> int:
    """The index of the tab a page's (only) st.tabs opens on."""
    def find(node):
        for child in getattr(node, "children", {}).values():
            if getattr(child, "type", "") == "tab_container":
                return child.proto.tab_container.default_tab_index
            found = find(child)
            if found is not None:
                return found
        return None

    return find(at.main)


def test_model_page_opens_on_the_running_job(fake_map):
    """Back on the Model page while a job runs: the Train tab, with the job's progress and Cancel above
    the (disabled) form; it opened on 'Shipped weights', the job hidden a tab away and below the form."""
    from core import jobs
    from test_jobs import wait_for

    at = new_app()
    at.switch_page("pages/model.py").run()
    assert _opening_tab(at) == 0
    job_dir = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs" / "job-run"
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.1}, job_dir)
    try:
        wait_for(job_dir, ("running",))
        at.switch_page("pages/region.py").run()
        at.switch_page("pages/model.py").run()
        assert not at.exception and _opening_tab(at) == 2
        kinds = [getattr(c, "type", "") for c in at.tabs[2].children.values()]
        assert kinds.index("flex_container") < kinds.index("form")  # the job panel (a fragment), then the form
        assert any(b.label == "Cancel training" for b in at.tabs[2].button)
    finally:
        jobs.cancel(job_dir, terminate_after_s=5)
    at.run()
    assert _opening_tab(at) == 0  # finished: the page opens as usual again


def test_best_checkpoint_of_a_running_job_is_used_as_a_copy(fake_map, tiny_model_path):
    """While the job runs, every better epoch replaces best.keras: the model in use is a copy,
    so it does not change behind the user's back."""
    import shutil

    from core import jobs
    from core.model import build_unet, load_card, save_model
    from test_jobs import wait_for

    job_dir = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs" / "job-run"
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.2}, job_dir)
    try:
        wait_for(job_dir, ("running",))
        (job_dir / "train").mkdir()
        best = job_dir / "train" / "best.keras"
        shutil.copy(tiny_model_path, best)
        shutil.copy(tiny_model_path.with_suffix(".json"), best.with_suffix(".json"))
        at = new_app()
        at.switch_page("pages/model.py").run()
        by_label(at.button, "Use the best checkpoint so far").click().run()
        in_use = Path(at.session_state["model_path"])
        assert not at.exception and in_use != best and in_use.read_bytes() == best.read_bytes()
        # said where the button is (the sidebar's model line may be below a laptop's screen)
        from pages.components import models

        said = f"Using {models.label(in_use)}: predict with it on the Predict page."
        assert [s.value for s in at.main.success] == [said]
        save_model(build_unet("light"), load_card(best), best)  # a better epoch is saved over it
        assert in_use.read_bytes() != best.read_bytes()  # the model in use stayed as it was
    finally:
        jobs.cancel(job_dir, terminate_after_s=5)


def test_a_cancel_the_worker_cannot_see_can_be_forced(fake_map):
    """A worker busy outside a batch (here a 60 s step; loading data or a stuck read) never sees
    the cancel flag: the page offers 'Stop now', which ends the process."""
    from core import jobs

    with _slow_job_on_the_model_page("job-slow") as (at, job_dir):
        jobs.cancel(job_dir)  # asked (e.g. from another tab): the worker will not see it for a minute
        assert jobs.status(job_dir).state == "cancelling"
        at.run()  # the panel drawn again: the job is cancelling
        assert "stopping when the data has loaded" in texts(at)  # no batch has run: not "after the current batch"
        by_label(at.button, "Stop now").click().run()
        st = jobs.status(job_dir)
        assert not at.exception and not st.active and st.state == "cancelled"


def test_cancel_before_the_first_batch_ends_the_worker_at_once(fake_map):
    """While the worker loads the data (here a 60 s first step) nothing would be kept: Cancel ends it
    at once; it said 'stopping after the current batch' and took as long as the loading."""
    from core import jobs

    with _slow_job_on_the_model_page("job-loading") as (at, job_dir):
        t0 = time.monotonic()
        by_label(at.button, "Cancel training").click().run()
        st = jobs.status(job_dir)
        assert not at.exception and st.state == "cancelled" and time.monotonic() - t0 < 30


@contextlib.contextmanager
def _slow_job_on_the_model_page(name: str):
    """(app on the Model page, job folder) while a self-test job whose first step takes a minute
    runs (as a worker loading its data); the job is ended afterwards."""
    from core import jobs
    from test_jobs import wait_for

    job_dir = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs" / name
    jobs.start_job("selftest", {"epochs": 1, "steps": 2, "delay": 60.0}, job_dir)
    try:
        wait_for(job_dir, ("running",))
        at = new_app()
        at.switch_page("pages/model.py").run()
        yield at, job_dir
    finally:
        jobs.cancel(job_dir, terminate_after_s=0)


def test_a_full_disk_while_cutting_the_scene_is_an_error_message(fake_map, monkeypatch, tiny_model_path):
    """The region's scene cannot be written (disk full, a folder that cannot be written): Data,
    Predict and Quality show the machine's failure as an error, as the CLI does (it was a traceback)."""
    import errno

    from core.sources.local import LocalSource

    def full(self, region, out_dir, progress=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / "image.tif"))

    monkeypatch.setattr(LocalSource, "fetch", full)
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.session_state["model_path"] = str(tiny_model_path)
    at.session_state["prediction"] = {"key": ["a prediction made earlier"]}
    for page in ("pages/data.py", "pages/predict.py", "pages/quality.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception[0].value)
        assert any("No space left on device" in e.value and "disk has space" in e.value for e in at.error), page
        assert not at.get("progress"), page
        assert "Model: tiny.keras" in texts(at)  # the page ended there, the sidebar is still drawn


def test_out_of_memory_for_the_region_preview_is_an_error_message(fake_map, monkeypatch):
    """A large own image whose preview does not fit in memory: the Region page says so (it was a traceback)."""
    from pages.components import cached

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cached, "source_preview", no_memory)
    at = new_app()
    at.run()
    assert not at.exception
    assert any(e.value.startswith("Out of memory") for e in at.error)


def test_the_labels_legend_names_no_data_only_where_the_layer_shows_some(tmp_path):
    from pages.components import cached
    from testdata import write_raster

    whole = np.zeros((1, 16, 16), np.uint8)
    whole[0, :8] = 1
    gappy = whole.copy()
    gappy[0, 0, 0] = 255
    items = {}
    for name, data in (("whole", whole), ("gappy", gappy)):
        path = write_raster(tmp_path / f"{name}.tif", data)
        legend = cached.labels_overlay(str(path), cached.mtime(str(path)), "binary").legend
        items[name] = [label for label, _ in legend.items]
    assert items == {"whole": ["crop", "not crop"], "gappy": ["crop", "not crop", "no data"]}


def test_the_sidebar_follows_a_prediction_left_running_on_another_page(fake_map, monkeypatch):
    """A prediction goes on while other pages are open: their sidebar says how far it has got (only
    the Predict and Quality pages said so), then that it is done, until the Predict page shows it."""
    from pages.components import predictions

    key = ("image.tif", "region", "model.keras", 1)
    run = predictions.Run(key, done=2, total=9)
    monkeypatch.setitem(predictions._RUNS, key, run)
    at = new_app()
    at.session_state["predicting"] = list(key)
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert "Prediction: 2 of 9 tiles" in [c.value for c in at.sidebar.caption]
    run.done = 9
    run.finished.set()
    at.run()
    assert "Prediction: done; see it on the Predict page" in [c.value for c in at.sidebar.caption]
    run.error = RuntimeError("boom")
    at.run()
    assert "Prediction: failed; the Predict page says why" in [c.value for c in at.sidebar.caption]
    at.session_state["predicting"] = None  # (shown by the Predict page)
    at.run()
    assert not [c for c in at.sidebar.caption if c.value.startswith("Prediction:")]
