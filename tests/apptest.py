"""Helpers for driving the dashboard's pages with streamlit.testing.v1.AppTest (no browser).

The map component is replaced (``pages.components.mapview._st_folium``, by the ``fake_map`` fixture of
conftest.py) with a :class:`FakeMap` that records the folium map and returns what the browser would
(e.g. a drawn polygon). The tests of each page are in ``test_page_<page>.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("USE_FOLIUM", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from streamlit.testing.v1 import AppTest  # noqa: E402

from pages.components import scene  # noqa: E402

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


def map_calls(element, function: str) -> list[tuple]:
    """The arguments of each call of map.js's ``function`` that ``element`` (a map or the feature group
    of its dynamic layers) makes in its script (mapview's ``Call`` elements)."""
    return [c.args for c in element._children.values() if getattr(c, "function", None) == function]


def readout(fake: "FakeMap") -> list | None:
    """What the last map drawn shows inside it of the clicked pixel ([text, lat, lng]; None: the hint)."""
    [(value,)] = map_calls(fake.maps[-1][1]["feature_group_to_add"], "readout")
    return value


def map_legends(fake: "FakeMap") -> str:
    """The legends' HTML inside the last map drawn (the HTML boxes that its script puts in the map)."""
    return "".join(content for content, _, html, *_ in map_calls(fake.maps[-1][0], "note") if html)




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


def predict_page(model_path, box: tuple[int, int, int, int] = (0, 0, 256, 256)) -> AppTest:
    """The app run once on the Predict page, with ``model_path`` in use and a box of the sample as the region
    (left, top, right, bottom in pixels: by default the 256 px square at its top left corner)."""
    c0, r0, c1, r1 = box
    at = new_app()
    at.session_state["model_path"] = str(model_path)
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"}, "geometry": {
        "type": "Polygon", "coordinates": [[[c0, r0], [c1, r0], [c1, r1], [c0, r1], [c0, r0]]]}}
    at.switch_page("pages/predict.py").run()
    return at


def predicted_fields(model_path, fields: list[tuple[str, int, int]], rows: tuple[int, int]) -> AppTest:
    """The app on the Predict page after Predict, with ``model_path`` in use and a region of named fields of
    the sample (name, first column, end column; all over ``rows``, first and end), stored as an upload is."""
    from core.region import Region

    r0, r1 = rows
    collection = {"type": "FeatureCollection", "crs": "image", "features": [
        {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": [
            [[c0, r0], [c1, r0], [c1, r1], [c0, r1], [c0, r0]]]}} for name, c0, c1 in fields]}
    at = new_app()
    at.session_state["model_path"] = str(model_path)
    at.session_state["region"] = Region.from_geojson(collection).to_geojson()
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()  # Predict
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
    return [n for n in layer_names(m) if n not in (scene.SURROUNDINGS, scene.UNDER_WHOLE_IMAGE)]


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
