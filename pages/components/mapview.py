"""Every map of the dashboard: a geemap (folium) map rendered with streamlit-folium.

The map loads Leaflet and Leaflet.draw from the app's own files (``static/``, served by the
Streamlit server as a declared component folder), never from a CDN, and drops folium's and geemap's other CDN assets (jQuery,
Bootstrap, Font Awesome, fullscreen, geocoder), so the page makes no external request.

Non-georeferenced images are shown in Leaflet's Simple CRS in pixel units (``lat = -row``,
``lng = col``) with a visible "not georeferenced" note; georeferenced ones over a basemap.
"""

from __future__ import annotations

import contextlib
import functools
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

from core.overlays import Bounds, Overlay
from pages.components import state

LEAFLET_VERSION = "1.9.4"
LEAFLET_DRAW_VERSION = "1.0.4"
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
#: the project's own map styles (static/cropmap/map.css: larger legends in full screen on a large screen)
CROPMAP_CSS = [("cropmap_css", f"{STATIC}/cropmap/map.css")]
DRAW_JS = [("leaflet_draw_js", f"{STATIC}/leaflet-draw/leaflet.draw.js")]
DRAW_CSS = [("leaflet_draw_css", f"{STATIC}/leaflet-draw/leaflet.draw.css")]
FULLSCREEN_VERSION = "3.0.0"
FULLSCREEN_JS = [("Control.Fullscreen.js", f"{STATIC}/leaflet-fullscreen/Control.FullScreen.js")]
FULLSCREEN_CSS = [("Control.FullScreen.css", f"{STATIC}/leaflet-fullscreen/Control.FullScreen.css")]
IMAGE_NOTE = "not georeferenced: image coordinates"
#: the region's outline on the drawing map, and (two lines, bottom first) over a region's layers
OUTLINE_DRAWN = {"color": "#ff3d00", "weight": 2, "fill": False}
OUTLINE_CASED = [{"color": "#202020", "weight": 4, "opacity": 0.8, "fill": False},
                 {"color": "#ffffff", "weight": 2, "dashArray": "6 4", "fill": False}]
#: shown inside a map whose basemap tiles do not load
BASEMAP_FAILED = "Basemap tiles did not load (no internet?)"
#: Inside a map that reads a clicked pixel, until one is clicked (see MapSpec.click_marker).
CLICK_HINT = "Click the map to read a pixel"
#: Inside that map between a click and the page's reading of it.
CLICK_READING = "Reading the pixel..."
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
    #: XYZ tile layers over the basemap (dicts with name, url, attribution, opacity, show; e.g. the
    #: Earth Engine layers of core.ee.tiles.TileLayer); georeferenced maps only.
    tile_layers: Sequence[dict] = ()
    #: Where a click reads a pixel (the region's scene, in map coordinates): a click there is marked on
    #: the map (the pixel's outline on an image map), in the browser, so that the mark comes at once.
    click_marker: Bounds | None = None
    #: What the page read at the click: (text, lat, lng of the click), shown inside the map (top right)
    #: while that click is the map's last; sent with the dynamic layers, so the map is not reloaded.
    readout: tuple[str, float, float] | None = None
    #: Keep the user's view when the map is built anew with the same bounds (a layer turned on or off):
    #: see FitOnFullscreen. Not on the Region page, whose map looks at each new region (and Reset at the image).
    keep_view: bool = False


def _classes():
    os.environ.setdefault("USE_FOLIUM", "1")  # before geemap's first import
    import folium.plugins
    import geemap.foliumap as gm
    from branca.element import Element, MacroElement
    from jinja2 import Template

    class OfflineMap(gm.Map):
        default_js = LEAFLET_JS
        default_css = LEAFLET_CSS + CROPMAP_CSS

    class OfflineDraw(folium.plugins.Draw):
        default_js = DRAW_JS
        default_css = DRAW_CSS

    class OfflineFullscreen(folium.plugins.Fullscreen):
        default_js = FULLSCREEN_JS
        default_css = FULLSCREEN_CSS

    class Control(MacroElement):
        """A Leaflet control showing ``content`` (text, or our own HTML when ``html``) inside the map,
        so that it stays visible in full screen."""

        _template = Template(
            "{% macro script(this, kwargs) %}"
            "var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});"
            "{{ this.get_name() }}.onAdd = function () {"
            " var d = L.DomUtil.create('div', 'cropmap-note');"
            " d.style.cssText = 'background:rgba(255,255,255,.85);padding:2px 6px;font:12px sans-serif;border-radius:3px';"
            "{% if this.html %} d.innerHTML = {{ this.content|tojson }};"
            " if (window.cropmapLegends) { window.cropmapLegends(d); }"
            # a legend lies over the image's corner: pointed at, it fades, and what is under it shows
            " d.style.transition = 'opacity .15s';"
            " d.addEventListener('mouseenter', function () { d.style.opacity = '0.15'; });"
            " d.addEventListener('mouseleave', function () { d.style.opacity = ''; });"
            "{% else %} d.textContent = {{ this.content|tojson }};{% endif %}"
            " return d; };"
            "{{ this.get_name() }}.addTo({{ this._parent.get_name() }});"
            "{% endmacro %}"
        )

        def __init__(self, content: str, position: str, html: bool = False):
            super().__init__()
            self._name = "CropmapControl"
            self.content, self.position, self.html = content, position, html

    class Height(MacroElement):
        """Sets the map's height in its script. streamlit-folium keeps a map whose script is unchanged
        and sets only its frame's height: the sidebar's *Map height* gave a 720 px frame around a 480
        px map (or a 720 px map cut to 480) until a reload. With the height in the script, a new height
        is a new map."""

        _template = Template(
            "{% macro script(this, kwargs) %}"
            "{{ this._parent.get_name() }}.getContainer().style.height = {{ this.css|tojson }};"
            " {{ this._parent.get_name() }}.invalidateSize();"
            "{% endmacro %}"
        )

        def __init__(self, height: int):
            super().__init__()
            self._name = "CropmapHeight"
            self.css = f"{int(height)}px"

    class FitOnFullscreen(MacroElement):
        """Fit ``bounds`` to the screen when the map enters or leaves full screen, and when the
        window is resized (a laptop put on a projector) unless the user has zoomed or moved the map.

        With ``store`` (the map's key and bounds), the user's view (centre and zoom) is kept in the
        browser tab and restored when the map is built anew with the same bounds: a map whose layers
        change (a layer turned on or off, the class the errors are shown on) came back to the whole
        region, and the fields being looked at were lost. A map of other bounds starts fitted."""

        _template = Template(
            "{% macro script(this, kwargs) %}"
            "(function () { var map = {{ this._parent.get_name() }}; var b = L.latLngBounds({{ this.bounds|tojson }});"
            " var t = null, ours = false, moved = false, k = {{ this.store|tojson }};"
            # Leaflet's own resize handling keeps the centre and zoom; this one refits the region unless the
            # user has moved the map (``moved``: set by moves that are not this script's own)
            " L.DomEvent.off(window, 'resize', map._onResize, map);"
            " function fitted() { var c = map.latLngToContainerPoint(b.getCenter()), s = map.getSize();"
            " return Math.abs(map.getZoom() - map.getBoundsZoom(b)) < 1e-6 && Math.abs(c.x - s.x / 2) < 3"
            " && Math.abs(c.y - s.y / 2) < 3; }"
            " function quietly(f) { ours = true; try { f(); } finally { ours = false; } }"
            " function fit() { quietly(function () { map.invalidateSize(); map.fitBounds(b, {animate: false}); });"
            " moved = false; }"
            " var v = null; if (k) { try {"
            " v = JSON.parse(window.sessionStorage.getItem('cropmap-view:' + k) || 'null'); } catch (e) {} }"
            " function restore() { moved = true;"
            " quietly(function () { map.setView([v.lat, v.lng], v.zoom, {animate: false}); }); }"
            # after the map's first fit, which zooms in an animation that starts on the next frame: a view
            # set now was undone at its end (at once after its zoom, or in 0.6 s where it does not zoom)
            " if (v) { var done = false; function once() { if (!done) { done = true; restore(); } }"
            " map.once('zoomend', function () { setTimeout(once, 0); }); setTimeout(once, 600); }"
            " map.on('moveend', function () { if (!ours) { moved = !fitted(); }"
            " if (k) { try { var c = map.getCenter(); window.sessionStorage.setItem('cropmap-view:' + k,"
            " JSON.stringify(moved ? {lat: c.lat, lng: c.lng, zoom: map.getZoom()} : null)); } catch (e) {} } });"
            " map.on('enterFullscreen exitFullscreen', function () { setTimeout(fit, 250); });"
            " window.addEventListener('resize', function () { clearTimeout(t); t = setTimeout(function () {"
            " if (!moved) { fit(); } else { quietly(function () { map.invalidateSize(); }); } }, 200); }); })();"
            "{% endmacro %}"
        )

        def __init__(self, bounds, store: str | None = None):
            super().__init__()
            self._name = "CropmapFit"
            self.bounds = bounds
            self.store = store

    class DynamicTitle(MacroElement):
        """Sets the full-screen legend of the dynamic layer ``key`` to ``title`` (e.g. the crop
        layer's threshold) and its colours to the layer's ``opacity``, in place: sent with the
        layer, so the map is not reloaded. Both are also kept for a legend drawn later (entering
        full screen draws none anew, but a legend control added after this script runs reads them)."""

        _template = Template(
            "{% macro script(this, kwargs) %}"
            "(function () { var t = window.cropmapTitles = window.cropmapTitles || {};"
            " var o = window.cropmapOpacity = window.cropmapOpacity || {};"
            " t[{{ this.key|tojson }}] = {{ this.title|tojson }}; o[{{ this.key|tojson }}] = {{ this.opacity|tojson }};"
            " window.cropmapLegends = function (root) {"
            " root.querySelectorAll('[data-cropmap-legend]').forEach(function (e) {"
            " var v = t[e.getAttribute('data-cropmap-legend')]; if (v) { e.textContent = v; } });"
            " root.querySelectorAll('[data-cropmap-swatch]').forEach(function (e) {"
            " var v = o[e.getAttribute('data-cropmap-swatch')]; if (v !== undefined) { e.style.opacity = v; } }); };"
            " window.cropmapLegends(document); })();"
            "{% endmacro %}"
        )

        def __init__(self, key: str, title: str, opacity: float = 1.0):
            super().__init__()
            self._name = "CropmapTitle"
            self.key, self.title, self.opacity = key, title, round(float(opacity), 2)

    class ImageLayer(folium.raster_layers.ImageOverlay):
        """folium's image overlay, whose data URL (the PNG, up to a few MB of base64) joins the page's
        script as text. branca compiles every macro's output as a Jinja template, and tokenizing
        the data URLs took about a second of each rerun (a threshold change) on the sample scene:
        the script is rendered with a short stand-in for the URL, which is then put in its place."""

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

    class TilesFailedNote(MacroElement):
        """A note inside the map when the first tile of ``layer`` fails to load (no internet): a
        basemap that shows nothing otherwise looks the same as one switched off."""

        _template = Template(
            "{% macro script(this, kwargs) %}"
            "(function () { var map = {{ this._parent.get_name() }};"
            " {{ this.layer.get_name() }}.once('tileerror', function () {"
            " var c = L.control({position: 'bottomleft'});"
            " c.onAdd = function () { var d = L.DomUtil.create('div', 'cropmap-note cropmap-tiles-failed');"
            " d.style.cssText = 'background:rgba(255,255,255,.85);padding:2px 6px;font:12px sans-serif;border-radius:3px';"
            " d.textContent = {{ this.text|tojson }}; return d; };"
            " c.addTo(map); }); })();"
            "{% endmacro %}"
        )

        def __init__(self, layer, text: str):
            super().__init__()
            self._name = "TilesFailedNote"
            self.layer, self.text = layer, text

    class WheelAfterClick(MacroElement):
        """The mouse wheel scrolls the page, not the map, until the map is clicked (and again once the
        pointer leaves it): a map that fills a laptop's screen otherwise swallows the wheel of a user
        scrolling to the figures below it and zooms out instead. A wheel turned over the map meanwhile
        shows ``text`` for a moment; in full screen the wheel zooms at once. Taking the focus on a press
        does not scroll the page (the click lands where it was aimed)."""

        _template = Template(
            "{% macro script(this, kwargs) %}"
            "(function () { var map = {{ this._parent.get_name() }}, box = map.getContainer(), hint = null, t = null;"
            " map.scrollWheelZoom.disable();"
            # Leaflet focuses the map on a press (for its keys), and focusing scrolls the page to show the
            # whole map: on a laptop, where the map's foot is below the screen, the page moved between the
            # press and the release, and a click read the pixel some rows below the one aimed at
            " box.focus = function () { HTMLElement.prototype.focus.call(box, {preventScroll: true}); };"
            " function on() { map.scrollWheelZoom.enable(); if (hint) { hint.style.display = 'none'; } }"
            " map.on('mousedown click enterFullscreen', on);"
            " map.on('mouseout exitFullscreen', function () { if (!map._isFullscreen) { map.scrollWheelZoom.disable(); } });"
            " box.addEventListener('wheel', function () { if (map.scrollWheelZoom.enabled()) { return; }"
            " if (!hint) { hint = L.DomUtil.create('div', 'cropmap-wheel-hint', box);"
            " hint.style.cssText = 'position:absolute;left:50%;top:50%;transform:translate(-50%,-50%);z-index:1000;"
            "background:rgba(0,0,0,.65);color:#fff;padding:6px 12px;font:14px sans-serif;border-radius:4px;"
            "pointer-events:none;white-space:nowrap';"
            " hint.textContent = {{ this.text|tojson }}; }"
            " hint.style.display = 'block'; clearTimeout(t); t = setTimeout(function () { hint.style.display = 'none'; }, 1500);"
            " }, {passive: true}); })();"
            "{% endmacro %}"
        )

        def __init__(self, text: str):
            super().__init__()
            self._name = "CropmapWheel"
            self.text = text

    class ClickMarker(MacroElement):
        """Marks the place clicked inside ``bounds`` (a ring: a dark casing and a white line, seen on any
        layer; on an image map, ``image``, also the clicked pixel's outline), and shows in a box inside
        the map (top right, or top or bottom left where it would cover the place clicked) what the page read there
        (:class:`Readout`), or ``hint`` before a click.
        Drawn by the map itself: the mark comes at once, and the map's script, and the map, stay as
        they are. A reading is shown only while its click is the map's last (not after a reload)."""

        _template = Template(
            "{% macro script(this, kwargs) %}"
            "(function () { var map = {{ this._parent.get_name() }}, b = L.latLngBounds({{ this.bounds|tojson }}),"
            " mark = null, at = null, box = L.control({position: 'topright'}), div = null;"
            " box.onAdd = function () { if (div) { return div; }"
            " var d = div = L.DomUtil.create('div', 'cropmap-note cropmap-readout');"
            " d.style.cssText = 'background:rgba(255,255,255,.9);padding:4px 8px;font:13px/1.35 sans-serif;"
            "border-radius:3px;max-width:26em';"
            " L.DomEvent.disableClickPropagation(d); L.DomEvent.disableScrollPropagation(d); return d; };"
            " box.addTo(map);"
            # the box is at the top right, unless it would cover the place clicked: then at the top left, under
            # the map's buttons (in view on a small screen, where the map's foot is below it), or the bottom left
            " function covers() { var p = map.latLngToContainerPoint(at), r = div.getBoundingClientRect(),"
            " m = map.getContainer().getBoundingClientRect();"
            " return p.x > r.left - m.left - 14 && p.x < r.right - m.left + 14 && p.y > r.top - m.top - 14"
            " && p.y < r.bottom - m.top + 14; }"
            " function place() { var corners = at ? ['topright', 'topleft', 'bottomleft'] : ['topright'];"
            " for (var i = 0; i < corners.length; i++) { if (box.getPosition() !== corners[i]) {"
            " box.setPosition(corners[i]); } if (!at || !covers()) { return; } } box.setPosition('topright'); }"
            " function show() { var r = window.cropmapReadoutValue, d = box.getContainer();"
            " var same = at && r && Math.abs(r[1] - at.lat) < 1e-9 && Math.abs(r[2] - at.lng) < 1e-9;"
            " d.textContent = same ? r[0] : at ? {{ this.reading|tojson }} : {{ this.hint|tojson }};"
            " d.style.color = same ? '#1f2937' : '#6b7280'; place(); }"
            " window.cropmapReadout = function (r) { window.cropmapReadoutValue = r; show(); };"
            # (placed again when the map moves under it: a zoom, a resize, full screen)
            " map.on('moveend zoomend resize', function () { if (at) { place(); } });"
            " map.on('click', function (e) { if (mark) { map.removeLayer(mark); mark = null; }"
            " var p = e.latlng; at = b.contains(p) ? p : null; show(); if (!at) { return; }"
            " var o = {interactive: false, fill: false, className: 'cropmap-click-mark'}, layers = [];"
            "{% if this.image %} var c = Math.floor(p.lng), r = Math.floor(-p.lat); p = L.latLng(-r - 0.5, c + 0.5);"
            " layers.push(L.rectangle([[-r - 1, c], [-r, c + 1]], L.extend({color: '#ffffff', weight: 1.5}, o)));{% endif %}"
            " layers.push(L.circleMarker(p, L.extend({radius: 8, color: '#202020', weight: 4, opacity: 0.8}, o)));"
            " layers.push(L.circleMarker(p, L.extend({radius: 8, color: '#ffffff', weight: 2}, o)));"
            " mark = L.layerGroup(layers).addTo(map); }); show(); })();"
            "{% endmacro %}"
        )

        def __init__(self, bounds, image: bool, hint: str, reading: str):
            super().__init__()
            self._name = "CropmapClickMarker"
            self.bounds, self.image = [list(bounds[0]), list(bounds[1])], bool(image)
            self.hint, self.reading = hint, reading

    class Readout(MacroElement):
        """Hands the page's reading of a click, ``value`` = [text, lat, lng] or None, to the map's
        :class:`ClickMarker` box; sent with the dynamic layers (see :func:`render`)."""

        _template = Template(
            "{% macro script(this, kwargs) %}"
            "if (window.cropmapReadout) { window.cropmapReadout({{ this.value|tojson }}); }"
            " else { window.cropmapReadoutValue = {{ this.value|tojson }}; }"
            "{% endmacro %}"
        )

        def __init__(self, value):
            super().__init__()
            self._name = "CropmapReadout"
            self.value = list(value) if value is not None else None

    return SimpleNamespace(OfflineMap=OfflineMap, OfflineDraw=OfflineDraw, OfflineFullscreen=OfflineFullscreen,
                           ClickMarker=ClickMarker, Readout=Readout, Control=Control, FitOnFullscreen=FitOnFullscreen,
                           Height=Height,
                           DynamicTitle=DynamicTitle,
                           ImageLayer=ImageLayer, TilesFailedNote=TilesFailedNote, WheelAfterClick=WheelAfterClick)


@functools.lru_cache(maxsize=1)
def _map_classes():
    return _classes()


def build(spec: MapSpec, view_key: str | None = None):
    """A folium map (geemap.foliumap.Map, offline assets) for ``spec``; not rendered. ``view_key``
    (the map's key) keeps the user's view across rebuilds with the same bounds (:class:`FitOnFullscreen`)."""
    import folium

    c = _map_classes()
    OfflineMap, OfflineDraw, OfflineFullscreen = c.OfflineMap, c.OfflineDraw, c.OfflineFullscreen
    Control, FitOnFullscreen = c.Control, c.FitOnFullscreen
    (s, w), (n, e) = spec.bounds
    centre = [(s + n) / 2, (w + e) / 2]
    common: dict[str, Any] = dict(
        ee_initialize=False, plugin_Fullscreen=False, plugin_Draw=False, search_control=False,
        locate_control=False, plugin_LayerControl=False, height=spec.height, width="100%",
        location=centre, attribution_control=True,
    )
    if spec.image:
        m = OfflineMap(crs="Simple", tiles=None, zoom_start=-1, zoom_snap=0.25, **common)
        m.options.update(minZoom=-5, maxZoom=5)  # folium gives these to tile layers only; there are none
    else:
        # quarter zoom steps, as for an image: whole steps left the region at half the map's size
        m = OfflineMap(tiles=None, zoom_start=12, zoom_snap=0.25, **common)
        if spec.basemap:
            # added here, not by geemap's basemap option: that one rendered the layer's addTo on some
            # reruns only, so the map's script (streamlit-folium's component key) changed between reruns,
            # the browser remounted the map and dropped shapes drawn on it
            osm = folium.TileLayer("OpenStreetMap", name="OpenStreetMap", attr=OSM_ATTRIBUTION, overlay=False,
                                   control=True, show=True, max_zoom=19).add_to(m)
            c.TilesFailedNote(osm, BASEMAP_FAILED).add_to(m)
    for layer in spec.tile_layers:
        folium.TileLayer(tiles=layer["url"], attr=layer.get("attribution", ""), name=layer["name"], overlay=True,
                         control=True, opacity=layer.get("opacity", 1.0), max_zoom=20,
                         show=layer.get("show", True)).add_to(m)
    for ov in spec.overlays:
        _image_overlay(ov, spec).add_to(m)
    if spec.region_geojson is not None:
        if not spec.image and e > 180:  # a map across the 180th meridian: the outline on the image's side
            from core.region import east_past_180

            spec = replace(spec, region_geojson=east_past_180(spec.region_geojson))
        # on the drawing map, the drawing tools' colour; over the layers of a region's results (whose
        # reds are false crop), a white dashed line on a dark casing, seen on any background
        styles = [OUTLINE_DRAWN] if spec.draw else OUTLINE_CASED
        # the parts of a region of several (fields, farms) named when pointed at, as in their table; the
        # names come from a user's file and the tooltip is HTML: escaped, they show as text
        named = spec.region_geojson.get("type") == "FeatureCollection"
        if named:
            spec = replace(spec, region_geojson={**spec.region_geojson, "features": [
                {**f, "properties": {"name": html_escape(str(f["properties"].get("name", "")))}}
                for f in spec.region_geojson["features"]]})
        for i, style in enumerate(styles):
            top = i == len(styles) - 1
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
    if spec.image:
        Control(IMAGE_NOTE, "bottomleft").add_to(m)
    # the legends at their layers' opacities, inside the map (in view with it on a laptop's screen, where
    # a legend under the map was below the screen, and in full screen); the dynamic layers' with their
    # name for a title (their own changes with the threshold, and the map's script must not change when
    # it does, or the browser would reload the map): their titles and opacities are set in place by the
    # feature group that brings the layers (DynamicTitle)
    html = legends_html(spec.overlays, spec.opacities)
    html += "".join(replace(o.legend, title=o.name).to_html(title_key=o.name)
                    for o in spec.dynamic if o.legend is not None)
    if html:
        Control(html, "bottomright", html=True).add_to(m)
    if spec.tile_layers:  # last: its script names every layer added before it
        folium.LayerControl(collapsed=True).add_to(m)
    c.Height(spec.height).add_to(m)  # before the fit: a map of a new height is fitted at that height
    m.fit_bounds([[s, w], [n, e]])
    store = f"{view_key}|{s:.6g},{w:.6g},{n:.6g},{e:.6g}" if view_key else None  # the view kept for this map and bounds
    FitOnFullscreen([[s, w], [n, e]], store=store).add_to(m)
    c.WheelAfterClick(WHEEL_HINT).add_to(m)
    if spec.click_marker is not None:
        c.ClickMarker(spec.click_marker, spec.image, CLICK_HINT, CLICK_READING).add_to(m)
    return m


def _image_overlay(ov, spec: MapSpec):
    return _map_classes().ImageLayer(
        image=ov.data_url, bounds=[list(ov.bounds[0]), list(ov.bounds[1])], name=ov.name,
        opacity=spec.opacities.get(ov.name, ov.opacity), interactive=False, cross_origin=False, zindex=1,
    )


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
                _map_classes().DynamicTitle(ov.name, ov.legend.title, spec.opacities.get(ov.name, ov.opacity)).add_to(group)
        if spec.click_marker is not None:
            _map_classes().Readout(spec.readout).add_to(group)
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
