"""The app around the pages: the sidebar's status lines, the map's image layers, what the server keeps.

Driven with AppTest; the helpers are in apptest.py.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pages.components import mapview

from apptest import map_calls, new_app, predict_page


def test_the_first_runs_waiting_status_is_replaced_by_the_status(fake_map):
    """A session's first run shows a waiting line in the sidebar while its page runs (the sidebar was
    empty for seconds); when the page is done, the status block stands in its place, once, on that
    run and on the next."""
    at = new_app()
    for _ in range(2):
        at.run()
        assert not at.exception
        side = [m.value for m in at.sidebar.markdown]
        assert side.count("**Status**") == 1, side
        captions = " ".join(c.value for c in at.sidebar.caption)
        assert "Checking the image" not in captions and "Source: sample scene" in captions
        assert any(s.value.startswith("Sample scene: Landsat 8") for s in at.sidebar.success)


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


def test_the_maps_behaviours_are_calls_of_the_served_map_script():
    """The map's own behaviours (notes, legends, the click's mark, the wheel, full screen) live in
    static/cropmap/map.js; the map's script calls them. Every function called is one that map.js
    defines; the arguments stand in the script as data (a name with braces or a closing script tag
    from a user's file changes nothing); map.js and map.css are asked for by their content's hash,
    so that a browser's cached copy is not used once they change."""
    import hashlib
    import re

    from core.overlays import Overlay, png_bytes

    js = (mapview.STATIC_DIR / "cropmap" / "map.js").read_text()
    defined = set(re.findall(r"^  cropmap\.(\w+) = function", js, flags=re.M))
    layer = Overlay("Crop", png_bytes(np.zeros((4, 4, 4), np.uint8)), ((-4.0, 0.0), (0.0, 4.0)), 4, 4)
    name = "Field {{ 1 }} {% x </script><b>"
    outline = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": name},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, -2], [0, 0]]]}}]}
    spec = mapview.MapSpec(bounds=layer.bounds, image=True, overlays=[layer], region_geojson=outline,
                           click_marker=layer.bounds)
    html = mapview.build(spec, view_key="k").get_root().render()
    called = set(re.findall(r"\bcropmap\.(\w+)\(", html))
    assert {"note", "height", "fitOnFullscreen", "wheelAfterClick", "clickMarker", "label"} <= called <= defined, (called, defined)
    assert {"dynamicTitle", "readout", "tilesFailed", "legends"} <= defined
    # named for a screen reader, with the keys that work on it (the frame was "streamlit_folium.st_folium")
    [(label, keys)] = map_calls(mapview.build(replace(spec, label="Map of the crop prediction"), view_key="k"), "label")
    assert label == "Map of the crop prediction" and keys.endswith("Enter reads the pixel at its centre.")
    # (the outline's tooltip: HTML text, braces as character references, read by no template)
    assert "</script><b>" not in html and "{{" not in html.split("<script>", 1)[1]
    assert "Field &#123;&#123; 1 &#125;&#125; &#123;% x &lt;/script&gt;&lt;b&gt;" in html.replace("\\u0026", "&")
    note = mapview._map_classes().Call("note", name, "topleft", False)
    m = mapview.build(spec)
    note.add_to(m)
    assert 'cropmap.note(map_div, "Field {{ 1 }} {% x \\u003c/script\\u003e\\u003cb\\u003e", "topleft", false)' in \
        m.get_root().render().replace(m.get_name(), "map_div")
    for path in ("cropmap/map.js", "cropmap/map.css"):
        digest = hashlib.sha256((mapview.STATIC_DIR / path).read_bytes()).hexdigest()[:12]
        assert f"{mapview.STATIC}/{path}?v={digest}" in html


def test_maps_of_layers_have_the_peek_button_and_mark_the_layers_a_legend_explains():
    """Checking a prediction by eye: a button held down hides the layers a legend explains (and the
    legends), to see the image under them. The imagery is not marked; the button is on every map of
    layers whichever are shown (turning a layer off must not change the map's script), not on the
    drawing map."""
    from core.overlays import Overlay, class_legend, png_bytes

    png = png_bytes(np.zeros((4, 4, 4), np.uint8))
    imagery = Overlay("True colour (R,G,B)", png, ((-4.0, 0.0), (0.0, 4.0)), 4, 4)
    crop = Overlay("Crop", png, imagery.bounds, 4, 4, legend=class_legend("Crop", ["predicted crop"]))
    spec = mapview.MapSpec(bounds=imagery.bounds, image=True, overlays=[imagery], dynamic=[crop])
    html = mapview.build(spec).get_root().render()
    assert html.count('cropmap.peek(') == 1 and mapview.PEEK_TITLE in html
    assert mapview.EXPLAINED_LAYER not in html  # (the imagery: unmarked)
    from dataclasses import replace

    both = mapview.build(replace(spec, overlays=[imagery, crop], dynamic=[])).get_root().render()
    assert both.count(f'"className": "{mapview.EXPLAINED_LAYER}"') == 1  # the crop layer only

    assert mapview.build(replace(spec, dynamic=[])).get_root().render().count("cropmap.peek(") == 1
    assert "cropmap.peek(" not in mapview.build(replace(spec, draw=True, dynamic=[])).get_root().render()


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


def test_probability_array_not_in_session_state(fake_map, tiny_model_path):
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    assert not at.exception and at.session_state["prediction"]  # (a crash left nothing to look at)

    def arrays_in(value) -> bool:  # nested in dicts and lists too
        if isinstance(value, dict):
            return any(arrays_in(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return any(arrays_in(v) for v in value)
        return isinstance(value, np.ndarray)

    for key in at.session_state.filtered_state:
        assert not arrays_in(at.session_state[key]), key


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


def test_the_maps_height_is_the_sidebars_choice_and_kept(fake_map):
    """A projector showed a 480 px map in a 1080 px screen, with nothing to make it taller."""
    at = new_app()
    at.run()
    assert not at.exception and fake_map.maps[-1][1]["height"] == 480
    from streamlit_folium import generate_leaflet_string

    before = generate_leaflet_string(fake_map.maps[-1][0])
    at.selectbox(key="w_map_height").set_value(720).run()
    assert not at.exception and fake_map.maps[-1][1]["height"] == 720
    # and in the map's script: streamlit-folium keeps a map whose script is the same and sets only its
    # frame's height (a 720 px frame round a 480 px map until a reload)
    after = generate_leaflet_string(fake_map.maps[-1][0])
    assert 'cropmap.height(map_div, "720px")' in after and 'cropmap.height(map_div, "480px")' in before and before != after
    at.switch_page("pages/data.py").run()  # every map, and on other pages
    assert not at.exception and fake_map.maps[-1][1]["height"] == 720
    assert at.session_state["map_height"] == 720
    # a session saved with another choice than those offered (a later version's): set back, not a crash
    again = new_app()
    again.session_state["map_height"] = 600
    again.run()
    assert not again.exception and fake_map.maps[-1][1]["height"] == 480


def _errors_shown_script():
    import errno

    import streamlit as st

    from core.errors import InvalidDataError
    from pages.components.ui import errors_shown

    failures = {"project": InvalidDataError("the labels hold no crop"),
                "machine": OSError(errno.ENOSPC, "No space left on device", "/w/image.tif"),
                "bug": RuntimeError("a bug: index out of range")}
    with errors_shown():
        raise failures[st.session_state["failure"]]


def test_a_bug_inside_errors_shown_is_raised_not_shown_as_an_error_message():
    """The project's errors and the machine's failures are shown as one line; anything else is a bug:
    shown as a red box like a user's mistake, it reads as something to put right on the page and
    hides the traceback that would get it fixed."""
    from streamlit.testing.v1 import AppTest

    from apptest import TIMEOUT

    said = {}
    for failure in ("project", "machine", "bug"):
        at = AppTest.from_function(_errors_shown_script, default_timeout=TIMEOUT)
        at.session_state["failure"] = failure
        at.run()
        said[failure] = ([e.value for e in at.error], len(at.exception))
    assert said["project"] == (["The labels hold no crop"], 0)
    assert said["machine"][1] == 0 and said["machine"][0][0].startswith("No space left on device")
    assert said["bug"] == ([], 1)  # Streamlit's exception box (its details hidden by the app's config)


def _refused_credentials_script():
    import streamlit as st

    from core.ee.errors import EENotConfiguredError
    from pages.components import cached
    from pages.components.ui import errors_shown

    cached.ee_status()  # the sidebar's status, cached for a minute
    if st.session_state.get("refused"):
        with errors_shown():
            raise EENotConfiguredError("the Earth Engine credentials could not be refreshed")


def test_refused_credentials_shown_on_a_page_are_asked_again_in_the_sidebar(monkeypatch):
    """A page's request whose credentials are refused clears the cached status: the sidebar said "Earth
    Engine ready" for up to a minute beside a page saying they were refused."""
    from streamlit.testing.v1 import AppTest

    from apptest import TIMEOUT
    from core.ee import auth
    from core.ee.auth import EEStatus

    asked = []
    monkeypatch.setattr(auth, "status", lambda **kw: asked.append(1) or EEStatus(True, "p", "user", "ready"))
    from pages.components import cached

    cached.ee_status.clear()
    at = AppTest.from_function(_refused_credentials_script, default_timeout=TIMEOUT)
    at.run()
    at.run()
    assert len(asked) == 1  # cached
    at.session_state["refused"] = True
    at.run()
    assert [e.value for e in at.error] == ["The Earth Engine credentials could not be refreshed"]
    at.run()
    assert len(asked) == 2 and not at.exception
    cached.ee_status.clear()


def test_a_georeferenced_map_has_a_zoom_range_with_and_without_the_basemap():
    """Leaflet takes a map's zoom range from its tile layers: a georeferenced map with the basemap
    switched off had none, and fitting the image at an infinite zoom left its layers in a corner."""
    from dataclasses import replace

    from core.overlays import Overlay, png_bytes

    layer = Overlay("True colour", png_bytes(np.zeros((4, 4, 4), np.uint8)), ((47.0, 15.0), (47.1, 15.1)), 4, 4)
    spec = mapview.MapSpec(bounds=layer.bounds, image=False, overlays=[layer])
    for basemap in (True, False):
        m = mapview.build(replace(spec, basemap=basemap))
        assert (m.options["minZoom"], m.options["maxZoom"]) == (0, mapview.MAX_GEO_ZOOM)
        html = m.get_root().render()
        assert ('"maxZoom": %d' % mapview.MAX_GEO_ZOOM) in html.replace('"max_zoom"', '"maxZoom"')
        assert ("openstreetmap" in html.lower()) == basemap


def test_a_work_folder_that_cannot_be_made_is_said_in_the_page(fake_map, tmp_path, monkeypatch):
    """CROPMAP_WORKDIR under a file: the app showed a traceback (NotADirectoryError) on every first
    visit; it says which folder and what to set, and runs nothing that needs it."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("CROPMAP_WORKDIR", str(blocker / "work"))
    at = new_app()
    at.run()
    assert not at.exception
    [error] = at.error
    assert f"work folder {blocker / 'work'} cannot be made" in error.value and "CROPMAP_WORKDIR" in error.value
    assert not at.sidebar.markdown  # nothing else ran
    # a work folder whose sessions cannot be kept (their folder's name taken by a file): the app runs
    work = tmp_path / "work"
    (work / "sessions").parent.mkdir()
    (work / "sessions").write_text("")
    monkeypatch.setenv("CROPMAP_WORKDIR", str(work))
    at = new_app()
    at.run()
    assert not at.exception and not at.error and "**Status**" in [m.value for m in at.sidebar.markdown]


def test_a_map_layer_stays_served_while_other_sessions_runs_end():
    """Every session's run ending deletes the media files no session uses, and a session lets go of its
    own when its next run starts: with a few users, a map still fetching its layer got a 404. The
    latest layers stay in Streamlit's records under the keeper, until more recent ones push them out."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    def served(mgr, url):
        return any(url.endswith(f"{file_id}.png") for file_id in mgr._file_metadata)

    for keep in (False, True):
        mgr = MediaFileManager(MemoryMediaFileStorage("/media"))
        urls = []
        for i in range(3):  # one session's three threshold steps: a layer each
            png = f"layer {i}".encode()
            urls.append(mgr.add(png, "image/png", f"place{i}", is_for_static_download=True))
            if keep:
                mapview.keep_served(mgr._files_by_session_and_coord, "dontcare", f"place{i}", most=2)
        mgr.clear_session_refs("dontcare")  # its next run starts...
        for _ in range(2):  # ...and two other sessions' runs end before it shows its layers again
            mgr.remove_orphaned_files()
        assert [served(mgr, u) for u in urls] == ([False, True, True] if keep else [False, False, False])
