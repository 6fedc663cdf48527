"""Every map of the dashboard: a geemap (folium) map rendered with streamlit-folium.

The map loads Leaflet and Leaflet.draw from the app's own files (``static/``, served by the
Streamlit server as a declared component folder), never from a CDN, and drops folium's and geemap's other CDN assets (jQuery,
Bootstrap, Font Awesome, fullscreen, geocoder), so the page makes no external request.

Non-georeferenced images are shown in Leaflet's Simple CRS in pixel units (``lat = -row``,
``lng = col``) with a visible "not georeferenced" note; georeferenced ones over a basemap.

What the map does beyond folium (notes and legends inside it, the click's mark and reading, the
wheel, fitting the region in full screen and on resize) is JavaScript of ours in
``static/cropmap/map.js``; the map's script calls it with JSON arguments (:class:`Call` elements).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import sys
from html import escape as html_escape
from types import SimpleNamespace
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import streamlit as st
import streamlit.components.v1 as components

from core.overlays import Bounds, Legend, Overlay
from pages.components import state

# (the served files' versions and licences: static/README.md)
STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"
# Streamlit's /app/static serves .js/.css as text/plain (browsers refuse to run them), but a
# declared component's folder is served with real content types: register static/ as one.
# Declaring registers a path with the server; it renders nothing.
_ASSETS = components.declare_component("offline_assets", path=str(STATIC_DIR))
STATIC = f"/component/{_ASSETS.name}"
#: A URL that JSON writes as it is (data URLs of PNGs: base64), so that it can stand in the script as text.
_PLAIN_URL = re.compile(r"[A-Za-z0-9+/=:;,._-]*")
LEAFLET_JS = [("leaflet", f"{STATIC}/leaflet/leaflet.js")]
LEAFLET_CSS = [("leaflet_css", f"{STATIC}/leaflet/leaflet.css")]
#: the project's own map behaviours and styles (static/cropmap/: boxes inside the map, the click's mark,
#: the wheel, full screen), versioned by their content (a browser's cached copy is not used after a change)
CROPMAP_JS = [("cropmap_js", f"{STATIC}/cropmap/map.js")]
CROPMAP_CSS = [("cropmap_css", f"{STATIC}/cropmap/map.css")]
DRAW_JS = [("leaflet_draw_js", f"{STATIC}/leaflet-draw/leaflet.draw.js")]
DRAW_CSS = [("leaflet_draw_css", f"{STATIC}/leaflet-draw/leaflet.draw.css")]
FULLSCREEN_JS = [("Control.Fullscreen.js", f"{STATIC}/leaflet-fullscreen/Control.FullScreen.js")]
FULLSCREEN_CSS = [("Control.FullScreen.css", f"{STATIC}/leaflet-fullscreen/Control.FullScreen.css")]
IMAGE_NOTE = "not georeferenced: image coordinates"
#: the region's outline on the drawing map, and (two lines, bottom first) over a region's layers
OUTLINE_DRAWN = {"color": "#ff3d00", "weight": 2, "fill": False}
OUTLINE_CASED = [{"color": "#202020", "weight": 4, "opacity": 0.8, "fill": False},
                 {"color": "#ffffff", "weight": 2, "dashArray": "6 4", "fill": False}]
#: a georeferenced map's deepest zoom (OpenStreetMap's; a 10 m pixel is then some 30 screen pixels)
MAX_GEO_ZOOM = 19
#: The deepest zoom of a map in image coordinates: 2**5 screen pixels to an image pixel.
MAX_IMAGE_ZOOM = 5
#: shown inside a map whose basemap tiles do not load
BASEMAP_FAILED = "Basemap tiles did not load (no internet?)"
#: Inside a map whose Earth Engine layers' tiles failed to load (said once for them all).
TILE_LAYERS_FAILED = "Earth Engine tiles did not load (no internet? quota?)"
#: Inside a map that reads a clicked pixel, until one is clicked (see MapSpec.click_marker).
CLICK_HINT = "Click the map to read a pixel; Enter reads its centre"
#: Inside that map between a click and the page's reading of it.
CLICK_READING = "Reading the pixel..."
CLICK_OUTSIDE = "Outside the region: no pixel of it to read here"  # (Enter with the ring just off it said nothing)
#: The title of the button that hides the layers a legend explains while it is held (map.js's peek).
PEEK_TITLE = "Hold to see the image under the layers"
#: The class of the map's image layers that a legend explains (hidden while that button is held).
EXPLAINED_LAYER = "cropmap-layer"
#: Shown over a map when the wheel is turned over it before it is clicked (the wheel then scrolls the page).
WHEEL_HINT = "Click the map to zoom with the mouse wheel"
#: the credit that OpenStreetMap's tile usage policy asks for, linked to its copyright page
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
#: streamlit-folium's component (tests replace it to inject what the browser would return).
_st_folium = None


@dataclass
class MapSpec:
    """What to draw: bounds to fit, overlays (bottom first), a region outline, drawing tools."""

    bounds: Bounds
    image: bool  # True: Simple CRS in pixels (not georeferenced)
    overlays: Sequence[Overlay] = ()
    opacities: dict[str, float] = field(default_factory=dict)
    region_geojson: dict | None = None  # in map coordinates
    draw: bool = False
    basemap: bool = True  # georeferenced maps only (OpenStreetMap tiles; needs internet), if the sidebar's switch is on
    height: int = 480
    #: Overlays that change often (the thresholded crop layer): sent as a feature group that the
    #: map swaps in place, so that changing them does not reload the map and its other layers.
    dynamic: Sequence[Overlay] = ()
    #: XYZ tile layers over the basemap (dicts with name, url, attribution, opacity, show, and optionally
    #: legend, a core.overlays.Legend's fields, shown inside the map with the others; e.g. the
    #: Earth Engine layers of core.ee.tiles.TileLayer); georeferenced maps only.
    tile_layers: Sequence[dict] = ()
    #: Where a click reads a pixel (the region's scene, in map coordinates): a click there is marked on
    #: the map (the pixel's outline on an image map), in the browser, so that the mark comes at once.
    click_marker: Bounds | None = None
    #: What the page read at the click: (text, lat, lng of the click), shown inside the map (top right)
    #: while that click is the map's last; sent with the dynamic layers, so the map is not reloaded.
    readout: tuple[str, float, float] | None = None
    #: Keep the user's view when the map is built anew with the same bounds (a layer turned on or off):
    #: see map.js's fitOnFullscreen. Not on the Region page, whose map looks at each new region (and Reset at the image).
    keep_view: bool = False
    #: What the map shows, for a screen reader: the map's name (its frame had only streamlit-folium's
    #: "streamlit_folium.st_folium"), with the keys that work on it.
    label: str = "Map"


def outline_tolerance(region) -> float:
    """How far (in a region's units: pixels, or degrees) the outline a map draws of ``region`` may lie
    from its own (:meth:`core.region.Region.outline_geojson`): a screen pixel at the map's deepest zoom,
    so that no zoom shows the difference."""
    import math

    if region.is_image:
        return 1.0 / 2**MAX_IMAGE_ZOOM
    _, south, _, north = region.bounds
    # (a screen pixel spans the fewest degrees at the poleward edge)
    return 360.0 / 256 / 2**MAX_GEO_ZOOM * math.cos(math.radians(min(max(abs(south), abs(north)), 85.0)))


#: The keys of a focused map, said to a screen reader with its name (:attr:`MapSpec.label`).
KEYS_HINT = "Arrow keys move the map; plus and minus zoom."
KEYS_READ_HINT = KEYS_HINT + " Enter reads the pixel at its centre."


def _classes():
    os.environ.setdefault("USE_FOLIUM", "1")  # before geemap's first import
    import folium.plugins
    import geemap.foliumap as gm
    from branca.element import Element, MacroElement
    from jinja2 import Template
    from jinja2.utils import htmlsafe_json_dumps

    class OfflineMap(gm.Map):
        default_js = LEAFLET_JS + _versioned(CROPMAP_JS)
        default_css = LEAFLET_CSS + _versioned(CROPMAP_CSS)

    class OfflineDraw(folium.plugins.Draw):
        default_js = DRAW_JS
        default_css = DRAW_CSS

    class OfflineFullscreen(folium.plugins.Fullscreen):
        default_js = FULLSCREEN_JS
        default_css = FULLSCREEN_CSS

    class Call(MacroElement):
        """A call of one of ``static/cropmap/map.js``'s functions in the map's script:
        ``cropmap.<function>(map, *args)``, the element's parent (the map) first unless ``on_map`` is
        False (a feature group's script). ``args`` are JSON values (written as Jinja's ``tojson``
        writes them, safe inside a script element) or folium elements (passed as their variable)."""

        _template = Template("{% macro script(this, kwargs) %}{{ this.js() }}{% endmacro %}")

        def __init__(self, function: str, *args, on_map: bool = True):
            super().__init__()
            self._name = "Cropmap_" + function
            self.function, self.args, self.on_map = function, args, on_map

        def js(self) -> str:
            values = [a.get_name() if isinstance(a, Element) else htmlsafe_json_dumps(a) for a in self.args]
            if self.on_map:
                values.insert(0, self._parent.get_name())
            return f"cropmap.{self.function}({', '.join(values)});"

        def render(self, **kwargs):
            # put in the page's script as text: branca's MacroElement compiles a macro's output as a
            # template, and braces in an argument ("{{ 1 }}" or "{%" in a name) changed it or failed
            self.get_root().script.add_child(_Text(self.js()), name=self.get_name())

    class ImageLayer(folium.raster_layers.ImageOverlay):
        """folium's image overlay, whose URL joins the page's script as text: the media store's (see
        :func:`image_url`), or a data URL (the PNG, up to a few MB of base64) outside a server. branca
        compiles every macro's output as a Jinja template, and tokenizing the data URLs took about a
        second of each rerun (a threshold change) on the sample scene: the script is rendered with a
        short stand-in for the URL, which is then put in its place."""

        STAND_IN = "cropmap-image-url"

        def render(self, **kwargs):
            url = self.url
            if not isinstance(url, str) or not _PLAIN_URL.fullmatch(url):  # (anything JSON would escape)
                return super().render(**kwargs)
            self.url = self.STAND_IN
            try:
                super().render(**kwargs)
            finally:
                self.url = url
            script = self.get_root().script
            rendered = script._children[self.get_name()].render()
            script._children[self.get_name()] = _Text(rendered.replace(f'"{self.STAND_IN}"', f'"{url}"', 1))

    class _Text(Element):
        """Text that renders as itself (not compiled as a template)."""

        _template = Template("{{ this.text }}")

        def __init__(self, text: str):
            super().__init__()
            self.text = text

    return SimpleNamespace(OfflineMap=OfflineMap, OfflineDraw=OfflineDraw, OfflineFullscreen=OfflineFullscreen,
                           Call=Call, ImageLayer=ImageLayer)


def _html_text(value) -> str:
    """``value`` as HTML text that no template reads as its own (braces as character references)."""
    return html_escape(str(value)).replace("{", "&#123;").replace("}", "&#125;")


def _versioned(assets: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``assets`` (name, URL of a file in ``static/``) with the file's content hash as a query."""
    out = []
    for name, url in assets:
        digest = hashlib.sha256((STATIC_DIR / url.removeprefix(STATIC + "/")).read_bytes()).hexdigest()[:12]
        out.append((name, f"{url}?v={digest}"))
    return out


@functools.lru_cache(maxsize=1)
def _map_classes():
    return _classes()


def build(spec: MapSpec, view_key: str | None = None):
    """A folium map (geemap.foliumap.Map, offline assets) for ``spec``; not rendered. ``view_key``
    (the map's key) keeps the user's view across rebuilds with the same bounds (map.js's ``fitOnFullscreen``)."""
    import folium

    c = _map_classes()
    OfflineMap, OfflineDraw, OfflineFullscreen, Call = c.OfflineMap, c.OfflineDraw, c.OfflineFullscreen, c.Call
    (s, w), (n, e) = spec.bounds
    centre = [(s + n) / 2, (w + e) / 2]
    common: dict[str, Any] = dict(
        ee_initialize=False, plugin_Fullscreen=False, plugin_Draw=False, search_control=False,
        locate_control=False, plugin_LayerControl=False, height=spec.height, width="100%",
        location=centre, attribution_control=True,
    )
    if spec.image:
        m = OfflineMap(crs="Simple", tiles=None, zoom_start=-1, zoom_snap=0.25, **common)
        m.options.update(minZoom=-5, maxZoom=MAX_IMAGE_ZOOM)  # folium gives these to tile layers only; there are none
    else:
        # quarter zoom steps, as for an image: whole steps left the region at half the map's size
        m = OfflineMap(tiles=None, zoom_start=12, zoom_snap=0.25, **common)
        # the zoom's range, also with no basemap: Leaflet takes a map's range from its tile layers, and a
        # map without any fitted an image at an infinite zoom (NaN: the layers left in a corner)
        m.options.update(minZoom=0, maxZoom=MAX_GEO_ZOOM)
        if spec.basemap:
            # added here, not by geemap's basemap option: that one rendered the layer's addTo on some
            # reruns only, so the map's script (streamlit-folium's component key) changed between reruns,
            # the browser remounted the map and dropped shapes drawn on it
            osm = folium.TileLayer("OpenStreetMap", name="OpenStreetMap", attr=OSM_ATTRIBUTION, overlay=False,
                                   control=True, show=True, max_zoom=MAX_GEO_ZOOM).add_to(m)
            Call("tilesFailed", osm, BASEMAP_FAILED).add_to(m)
    for layer in spec.tile_layers:
        tiles = folium.TileLayer(tiles=layer["url"], attr=layer.get("attribution", ""), name=layer["name"], overlay=True,
                                 control=True, opacity=layer.get("opacity", 1.0), max_zoom=MAX_GEO_ZOOM,
                                 show=layer.get("show", True)).add_to(m)
        # (a plain map with the basemap's note alone blamed the basemap for Earth Engine's tiles too)
        Call("tilesFailed", tiles, TILE_LAYERS_FAILED).add_to(m)
    for ov in spec.overlays:
        _image_overlay(ov, spec).add_to(m)
    if spec.region_geojson is not None:
        if not spec.image and e > 180:  # a map across the 180th meridian: the outline on the image's side
            from core.lonlat import east_past_180

            spec = replace(spec, region_geojson=east_past_180(spec.region_geojson))
        # on the drawing map, the drawing tools' colour; over the layers of a region's results (whose
        # reds are false crop), a white dashed line on a dark casing, seen on any background
        styles = [OUTLINE_DRAWN] if spec.draw else OUTLINE_CASED
        # the parts of a region of several (fields, farms) named when pointed at, as in their table; the
        # names come from a user's file and the tooltip is HTML: escaped, they show as text (braces too:
        # branca compiles the layer's script as a template, and "{{ 1 }}" showed as "1", "{%" failed the map)
        named = spec.region_geojson.get("type") == "FeatureCollection"
        if named:
            spec = replace(spec, region_geojson={**spec.region_geojson, "features": [
                {**f, "properties": {"name": _html_text(f["properties"].get("name", ""))}}
                for f in spec.region_geojson["features"]]})
        for i, style in enumerate(styles):
            top = i == len(styles) - 1
            if named and top and not spec.draw:
                # a transparent fill: a part is named wherever it is pointed at, not on its outline only (a
                # click still reaches the map, which reads the pixel there)
                style = {**style, "fill": True, "fillOpacity": 0}
            folium.GeoJson(spec.region_geojson, name="Region" if top else "Region (casing)", control=top,
                           style_function=lambda _f, st_=style: st_,
                           tooltip=folium.GeoJsonTooltip(["name"], labels=False) if named and top else None).add_to(m)
    # a full-screen button for showing the map to an audience (the map fills the screen, layers kept)
    OfflineFullscreen(position="topleft", title="Full screen", title_cancel="Leave full screen").add_to(m)
    if spec.draw:
        shape = {"shapeOptions": {"color": "#ff3d00"}, "showArea": False}
        OfflineDraw(
            export=False, position="topleft",
            draw_options={"polyline": False, "circle": False, "marker": False, "circlemarker": False,
                          "polygon": {**shape, "allowIntersection": False}, "rectangle": shape},
            edit_options={"edit": False, "remove": False},
        ).add_to(m)
    # on a map of layers, whichever are shown (a layer turned off must not change the map's script: the
    # browser would reload the map); under the map's other buttons
    if not spec.draw and (spec.overlays or spec.dynamic):
        Call("peek", PEEK_TITLE).add_to(m)
    if spec.image:
        # (gives way to the legends on a narrow map: the caption above the map says it too)
        Call("note", IMAGE_NOTE, "bottomleft", False, True).add_to(m)
    # the legends at their layers' opacities, inside the map (in view with it on a laptop's screen, where
    # a legend under the map was below the screen, and in full screen); the dynamic layers' with their
    # name for a title (their own changes with the threshold, and the map's script must not change when
    # it does, or the browser would reload the map): their titles and opacities are set in place by the
    # feature group that brings the layers (map.js's dynamicTitle)
    html = legends_html(spec.overlays, spec.opacities)
    html += "".join(Legend(**{k: tuple(v) if isinstance(v, list) else v for k, v in layer["legend"].items()})
                    .to_html(layer.get("opacity", 1.0)) for layer in spec.tile_layers if layer.get("legend"))
    html += "".join(replace(o.legend, title=o.name).to_html(title_key=o.name)
                    for o in spec.dynamic if o.legend is not None)
    if html:
        Call("note", html, "bottomright", True).add_to(m)
    if spec.tile_layers:  # last: its script names every layer added before it
        folium.LayerControl(collapsed=True).add_to(m)
    # the height in the map's script: streamlit-folium keeps a map whose script is unchanged and sets only its
    # frame's height (the sidebar's Map height gave a 720 px frame around a 480 px map until a reload)
    Call("height", f"{int(spec.height)}px").add_to(m)  # before the fit: a map of a new height is fitted at that height
    # the first fit too (not folium's fit_bounds: its zoom, animated, ended after the fit clear of the
    # legends and undid it, as it did a view restored)
    store = f"{view_key}|{s:.6g},{w:.6g},{n:.6g},{e:.6g}" if view_key else None  # the view kept for this map and bounds
    Call("fitOnFullscreen", [[s, w], [n, e]], store).add_to(m)
    Call("wheelAfterClick", WHEEL_HINT).add_to(m)
    Call("label", spec.label, KEYS_READ_HINT if spec.click_marker is not None else KEYS_HINT).add_to(m)
    if spec.click_marker is not None:
        bounds = [list(spec.click_marker[0]), list(spec.click_marker[1])]
        Call("clickMarker", bounds, bool(spec.image), CLICK_HINT, CLICK_READING, CLICK_OUTSIDE).add_to(m)
    return m


def image_url(ov) -> str:
    """Where the map's page fetches the PNG of overlay ``ov``: the server's media store, registered for
    this run (Streamlit drops it after a run that no longer shows it), at a URL that stays the same
    while the PNG does. As a data URL in the map's script, every layer went to the browser again on
    every rerun: 6.4 MB at each step of the threshold on the sample scene, where the crop layer's new
    PNG is all that changes. Outside a server (a map built by a test or a script): the data URL."""
    from streamlit import runtime

    if not runtime.exists():
        return ov.data_url
    # one place per PNG (a place holds one file: two layers at one place, and the first was dropped). Kept as a
    # download is, one cleanup longer than media: each run first lets go of the session's files, and another
    # session's run ending before this one shows them again would delete a file its map was still fetching
    place = "cropmap-layer-" + hashlib.blake2b(ov.png, digest_size=16).hexdigest()
    mgr = runtime.get_instance().media_file_mgr
    url = mgr.add(ov.png, "image/png", place, is_for_static_download=True)
    refs, lock = getattr(mgr, "_files_by_session_and_coord", None), getattr(mgr, "_lock", None)
    if isinstance(refs, dict) and lock is not None:  # (Streamlit's own record of which session uses which file)
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        session = get_script_run_ctx().session_id
        with lock:
            keep_served(refs, session, place)
    return url


#: How many of the latest map layers' PNGs the server keeps served whatever the sessions' runs let go
KEPT_LAYERS = 48
#: The name under which they are kept in Streamlit's media records (no session has it)
KEEPER = "cropmap-kept-layers"


def keep_served(refs: dict, session: str, place: str, most: int = KEPT_LAYERS) -> None:
    """Keep the file that ``session`` has at ``place`` in Streamlit's media records ``refs`` ({session:
    {place: file id}}) also under :data:`KEEPER`, for as long as it is among the ``most`` layers shown
    last (the keeper's places, oldest first). Every session's run ending deletes the files no session
    uses, and a session lets go of its own when its next run starts: with a few users, a map still
    fetching its layer (one session's quick steps, another's page change) got a 404, and the server's
    log a traceback for each. Call with the media manager's lock held."""
    file_id = refs.get(session, {}).get(place)
    if file_id is None:
        return
    kept = refs.setdefault(KEEPER, {})
    kept.pop(place, None)  # (to the end: the latest)
    kept[place] = file_id
    while len(kept) > most:
        del kept[next(iter(kept))]


def _image_overlay(ov, spec: MapSpec):
    # a layer that a legend explains is marked: the map's peek button hides it while held
    marked = {"class_name": EXPLAINED_LAYER} if ov.legend is not None else {}
    layer = _map_classes().ImageLayer(
        image="data:image/png;base64,", bounds=[list(ov.bounds[0]), list(ov.bounds[1])], name=ov.name,
        opacity=spec.opacities.get(ov.name, ov.opacity), interactive=False, cross_origin=False, zindex=1, **marked,
    )
    layer.url = image_url(ov)  # (set after: folium takes a path such as /media/x.png for a file of this machine)
    return layer


def render(spec: MapSpec, key: str, returned_objects: Sequence[str] = ()) -> dict | None:
    """Build and show the map; returns what streamlit-folium sends back (only ``returned_objects``)."""
    if spec.height == MapSpec.height:  # the sidebar's choice, unless the map sets its own
        spec = replace(spec, height=state.map_height())
    if spec.image:
        st.caption("Not georeferenced: shown in image coordinates (pixels, row 0 at the top); no location is implied.")
    import folium

    # the first map of a server loads geemap and folium (about 3 s): said in a place there on every run
    # (an element there on one run only would move the map, see ui.errors_shown)
    slot, cold = st.empty(), "geemap.foliumap" not in sys.modules
    with slot.container() if cold else contextlib.nullcontext(), \
            st.spinner("Loading the map...") if cold else contextlib.nullcontext():
        m = build(replace(spec, basemap=spec.basemap and bool(state.get(state.BASEMAP))), key if spec.keep_view else None)
    group = None
    if spec.dynamic or spec.click_marker is not None:
        group = folium.FeatureGroup(name="dynamic layers")
        for ov in spec.dynamic:
            _image_overlay(ov, spec).add_to(group)
            if ov.legend is not None:
                opacity = round(float(spec.opacities.get(ov.name, ov.opacity)), 2)
                _map_classes().Call("dynamicTitle", ov.name, ov.legend.title, opacity, on_map=False).add_to(group)
        if spec.click_marker is not None:
            _map_classes().Call("readout", list(spec.readout) if spec.readout is not None else None,
                                on_map=False).add_to(group)
    fn = _st_folium
    if fn is None:
        from streamlit_folium import st_folium as fn
    return fn(m, key=key, height=spec.height, use_container_width=True, returned_objects=list(returned_objects),
              pixelated=spec.image, feature_group_to_add=group)


def returned(key: str) -> dict | None:
    """What the map rendered with ``key`` sent back last, known before the page draws it again:
    streamlit-folium keeps the browser's latest value under ``key`` in the session state, set when it
    changes, before the page runs (the value :func:`render` returns comes only after drawing)."""
    value = st.session_state.get(key)
    return value if isinstance(value, dict) else None


def last_drawing(result: dict | None) -> dict | None:
    """The most recent polygon drawn on the map (a GeoJSON Feature in map coordinates), or None."""
    if not result:
        return None
    drawings = result.get("all_drawings") or []
    for feat in reversed(drawings):
        if isinstance(feat, dict) and (feat.get("geometry") or {}).get("type") in ("Polygon", "MultiPolygon"):
            return feat
    last = result.get("last_active_drawing")
    if isinstance(last, dict) and (last.get("geometry") or {}).get("type") in ("Polygon", "MultiPolygon"):
        return last
    return None


def legends_html(overlays: Sequence[Overlay], opacities: dict[str, float] | None = None) -> str:
    """Legends of the overlays that have one, as one HTML block, each at its layer's opacity
    (``opacities`` by overlay name, as :class:`MapSpec` has them; else the overlay's own)."""
    opacities = opacities or {}
    return "".join(o.legend.to_html(opacities.get(o.name, o.opacity)) for o in overlays if o.legend is not None)
