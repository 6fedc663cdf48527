"""The sidebar: sample scene, Earth Engine status, and what is selected now."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.ee import settings as ee_settings
from core.errors import CropMapError
from core.metrics import AREA_UNITS
from pages.components import cached, models, predictions, scene, state, ui


def show() -> None:
    """Draw the status block where the caller puts it (app.py: the sidebar, after the page);
    never raises for user-caused problems."""
    st.markdown("**Status**")  # (not a heading: an h3 before each page's h1 broke its outline)
    spec = state.get(state.SOURCE)
    if spec.get("kind") in ("sample", "local"):  # the image in use (Earth Engine's is named below)
        ok, msg = local_status(spec)
        (st.success if ok else st.error)(ui.cut_long_words(msg), icon=":material/image:")
    ee = cached.ee_status()
    if ee["ok"]:
        st.success(ee["message"], icon=":material/public:")
    else:
        st.info("Earth Engine: not available (the sample scene and your own files work offline)",
                icon=":material/public_off:")
        with st.expander("Why"):
            st.caption(ee["message"])
    source = {"sample": "sample scene", "local": spec.get("title", "your image"),
              "earthengine": "Earth Engine"}.get(spec.get("kind"), "?")
    if spec.get("kind") == "earthengine":  # which imagery and labels (it said "Earth Engine" alone)
        try:
            source += ", " + ee_settings.describe(scene.current_source().settings())
        except CropMapError:
            pass  # (the pages say what is wrong with the settings)
    st.caption(f"Source: {ui.cut_long_words(source)}")
    st.caption("Region: " + ui.plain(scene.region_label()))  # (a GeoJSON's own name: Markdown shown as text)
    if spec.get("kind") == "earthengine" or (spec.get("kind") in ("sample", "local") and georeferenced(spec)):
        st.toggle("Basemap (OpenStreetMap)", key=state.sync_widget(state.BASEMAP), on_change=state.store_widget,
                  args=(state.BASEMAP,),
                  help="Street map tiles from openstreetmap.org under the layers. They need internet, and the tile "
                       "server learns which places you look at. Off: the layers on a plain background. "
                       f"`{state.BASEMAP_ENV}=none` starts every session with it off.")
    state.map_height()  # (a value it does not offer set back first)
    st.selectbox("Map height", list(state.MAP_HEIGHTS), format_func=state.MAP_HEIGHTS.get,
                 key=state.sync_widget(state.MAP_HEIGHT), on_change=state.store_widget, args=(state.MAP_HEIGHT,),
                 help="Taller maps for a large screen or a full HD projector (1080 px high or more). On a smaller "
                      "screen, show a map to an audience with its full-screen button (top left of the map).")
    state.area_unit()  # (a value it does not offer set back first)
    st.selectbox("Area unit", list(AREA_UNITS), key=state.sync_widget(state.AREA_UNIT), on_change=state.store_widget,
                 args=(state.AREA_UNIT,), format_func=lambda u: f"{u} ({AREA_UNITS[u][0]})",
                 help="The unit of the areas on the pages and in the map PNG. Files for other programs (summary "
                      "JSON, CSV, GeoJSON) always give hectares. "
                      f"`{state.AREA_UNIT_ENV}=acres` starts every session in acres.")
    model = state.get(state.MODEL_PATH)
    gone = " (no longer on disk: load one on the Model page)" if model and not Path(model).is_file() else ""
    st.caption("Model: " + (models.label(model) + gone if model else "none loaded (Model page)"))
    running = prediction_line(show=False)
    if running:  # refreshed on its own while it runs (in a thread of the server); static after
        st.fragment(prediction_line, run_every=2.0)(live=True)
    elif running is not None:
        prediction_line()
    job = state.job_dir()
    if job:
        # refreshed on its own every 3 s while the job runs (in another process); static after
        st.fragment(training_line, run_every=3.0 if training_line(job, show=False) else None)(job)


def waiting() -> None:
    """What the status block shows while a session's first page runs (seconds on a first visit,
    with the map and, on some pages, TensorFlow loading): it was empty until the page had run."""
    st.markdown("**Status**")  # (not a heading: an h3 before each page's h1 broke its outline)
    st.caption("Checking the image, Earth Engine and the model...")


def local_status(spec: dict) -> tuple[bool, str]:
    """(True, what the image in use is) or (False, why it cannot be used), for local sources."""
    try:
        src = scene.source_from_spec(spec)
    except CropMapError as err:
        return False, str(err)
    return src.available()


def georeferenced(spec: dict) -> bool:
    """Whether the local image of ``spec`` has a place on Earth (False when it cannot be opened)."""
    try:
        return scene.source_from_spec(spec).grid().georeferenced
    except CropMapError:
        return False


def training_line(job: str, show: bool = True) -> bool:
    """Show the training job's state (unless ``show`` is False); returns whether it is running."""
    from core.jobs import status

    try:
        js = status(job)
    except CropMapError as err:
        if show:
            st.caption(f"Training: {err}")
        return False
    if show:
        st.caption(f"Training: {js.progress_text()}")
    return js.active


def prediction_line(show: bool = True, live: bool = False) -> bool | None:
    """Show how far the prediction this session started has got, on any page (unless ``show`` is
    False), or that it has ended, for the Predict page to show; returns whether it runs (None: no
    prediction pending). Its end, seen by the ``live`` line (refreshed on its own), reruns the page
    once, which draws the line without the refresh (it went on every 2 s until a page collected it)."""
    pending = state.get(state.PREDICTING)
    run = predictions.get(tuple(pending)) if pending else None
    if run is None:  # none, or collected (the pages then show it)
        return None
    running = not run.finished.is_set()
    if show:
        if running:
            st.caption("Prediction: waiting for another to finish" if run.waiting else
                       f"Prediction: {run.done:,} of {run.total:,} tiles" if run.total else "Prediction: starting")
        elif live:
            st.rerun(scope="app")
        else:
            st.caption("Prediction: " + ("failed; the Predict page says why" if run.error is not None else
                                         "done; see it on the Predict page"))
    return running
