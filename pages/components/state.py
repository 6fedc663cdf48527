"""Every session-state key of the dashboard, in one place.

Session state holds only small serialisable UI state: the source spec, the region GeoJSON, the
scene's paths, the model path, the job folder, the threshold, layer settings. Never arrays or models
(those live in :mod:`pages.components.cached`).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from core.workdir import WorkDir

ROOT = Path(__file__).resolve().parent.parent.parent

#: dict: {"kind": "sample"} | {"kind": "local", "image", "labels", "label_map", "title", "band_map", and "mixer" for
#: an Earth Engine image export assembled into "image"}
#: | {"kind": "earthengine", "preset"} | {"kind": "earthengine", "settings": {"composite", "labels"}}
SOURCE = "source"
REGION = "region"  # GeoJSON Feature (core.region.Region.to_geojson) or None (= whole image)
PREVIOUS_REGION = "previous_region"  # [REGION value] the last change replaced (a one-item list, as None is a region), or None
SCENE = "scene"  # dict of the fetched scene (paths as str) or None
MODEL_PATH = "model_path"  # str path of the model in use, or None
EE_PATCHES = "ee_patches"  # dict of the last Earth Engine patch export: train/test gs:// globs, patch size, "for"; or None
#: dict of the last Earth Engine image export: the start of its files' names ("prefix"), its grid, and "for" (the
#: settings and region); or None
EE_IMAGE_EXPORT = "ee_image_export"
#: ["DEST|NAME|KIND", ...]: where this session's exports wrote (a second export of one name and kind is asked to say so)
EE_EXPORTS = "ee_exports"
EE_EXPORT_WARNED = "ee_export_warned"  # the export (its form and region, as JSON) whose warnings were shown, not started
EE_ASSET = "ee_asset"  # str id of the asset the Earth Engine page shows (the last uploaded, or typed in), or ""
#: {"asset": id, "task": ingestion task id} of the last upload: the asset is shown once that task has completed; or None
EE_INGESTION = "ee_ingestion"
JOB_DIR = "job_dir"  # str path of the training job this session started (or resumed), or None
MODEL_TAB = "model_tab"  # str: the Model page tab to open on the next visit (a hand-over to training), or None
SCROLL_TO = "scroll_to"  # str: the page anchor (ui.anchor) to bring into view on the next run, once; or None
TRAIN_FORM = "train_settings"  # dict of the training form's last submitted values (preset, epochs, ...)
PATCH_FORM = "patch_settings"  # dict of the Data page patch form's last submitted values (size, buffer, train, test)
UPLOAD_NOTICE = "upload_notice"  # ("error" | "success", text, file id): outcome of the last "Use these files" for that file
UPLOAD_CHOSEN = "upload_chosen"  # file id of the image last chosen in the own-files form, or None (none chosen)
#: str: the folder of a finished training whose best checkpoint the user passed over (chose another model after it
#: ended): the Predict page no longer offers it
PASSED_OVER_JOB = "passed_over_job"
#: [path, text]: a checkpoint made the model in use on the Model page, said there while it is; or None
MODEL_NOTICE = "model_notice"
#: ["success" | "error", text]: outcome of the last deletion in the Model page's list of earlier trainings, said once
TRAININGS_NOTICE = "trainings_notice"
#: [box text, note or None]: a typed box cut to the image's edges is said under the box field while it shows that box
BOX_NOTICE = "box_notice"
#: str: the text last put in the Region page's box field (:data:`BOX_FIELD`), which is filled in anew when the
#: region in use is another box, or None (filled in anew at the next run: after a box was used)
BOX_FILLED = "box_filled"
BOX_FIELD = "region_box"  # the key of the Region page's box field (one key: the keyboard's focus stays on the page)
#: {"note": text, "region": the region it was said of}: what an uploaded GeoJSON region left out (said while it is in use)
GEOJSON_NOTICE = "geojson_notice"
#: str: why the shape last drawn on the Region page's map was not taken (said until a region is set), or None
DRAW_REFUSED = "draw_refused"
#: int: the Region page's map's generation, part of its key: a new one is a map drawn anew (a refused shape
#: stayed drawn on the map beside the region in use, and was taken for it)
REGION_MAP_GENERATION = "region_map_generation"
#: [["success" | "error", text], ...]: outcome of the last task cancel, task by task, shown once under the cancel
#: buttons, or None
EE_TASK_NOTICE = "ee_task_notice"
#: {"tasks": rows of the tasks started, "note": text or None, "untick": bool}: the export just started, said once on
#: the run after its start (which clears the 'Replace' tick first when it was used); or None
EE_EXPORT_STARTED = "ee_export_started"
EE_EXPORT_FORM = "ee_export_settings"  # dict of the Earth Engine export form's last submitted values
EE_UPLOAD_FORM = "ee_upload_settings"  # dict of the Earth Engine upload form's last submitted values (gcs, asset)
EE_TASKS_ACTIVE = "ee_tasks_active"  # bool: the task list shows waiting and running tasks only
THRESHOLD = "threshold"  # float 0-1, shared by Predict and Quality
#: the Predict page's choices of VIEWS (of core.config.VIEWS), with their labels
VIEW_CHOICES = {1: "1 (fastest)", 4: "4: mirrored (about 4x the time)", 8: "8: mirrored and turned (about 8x the time)"}
#: The threshold slider's range and step (Predict and Quality; the Quality page's best threshold is one of its values).
THRESHOLD_SLIDER = {"min_value": 0.05, "max_value": 0.95, "step": 0.01,
                    "help": "A pixel is mapped as crop where the model's crop probability is at least this "
                            "(0.50 = 50%). Lower it to map more crop (and more false crop), raise it for less; "
                            "the model is not run again."}
VIEWS = "views"  # int 1/4/8 (VIEW_CHOICES): tile views the prediction averages over (core.config.PredictConfig.views)
PREDICTION = "prediction"  # dict(image, model) of the last requested prediction, or None
EE_LAST = "ee_last"  # dict(spec, region): the Earth Engine source and region left for another source, to come back to
PREDICTING = "predicting"  # list: the key of a prediction this session started that is running (a thread), or None
FIELDS = "fields"  # [prediction key, threshold] whose crop fields the user asked for, or None
LAST_DRAWING = "last_drawing"  # JSON text of the last drawing taken from the map
LAYERS = "layers"  # dict layer name -> {"show": bool, "opacity": float}
#: dict map key -> [scene the map last showed, the click it held then]: a click on another scene's map
#: (the browser sends a map's last click again) is not read on this one (see regionmap.show)
MAP_CLICKS = "map_clicks"
QUALITY_CLASS = "quality_class"  # int code of the label class whose errors the Quality map shows alone, or "all"
PATCHES = "patches"  # dict of the last training/test patch files cut from the scene (paths as str), or None
BASEMAP = "basemap"  # bool: georeferenced maps show OpenStreetMap tiles (default: see basemap_default)
MAP_HEIGHT = "map_height"  # int: the maps' height in px (the sidebar's choice: MAP_HEIGHTS)
#: the maps' heights to choose from: a laptop's screen, and a screen 1080 px high or more (a 720 px map
#: does not fit in a 720 px screen under the page's title: there, the map's full-screen button)
MAP_HEIGHTS = {480: "Standard (laptop)", 720: "Tall (1080p screen)"}  # (short: a longer name was cut in the sidebar)
#: the environment variable that sets :data:`BASEMAP`'s default: "none" (or "off") for no basemap
BASEMAP_ENV = "CROPMAP_BASEMAP"
AREA_UNIT = "area_unit"  # str: the unit the pages show areas in, a name of core.metrics.AREA_UNITS (the sidebar's choice)
#: the environment variable that sets :data:`AREA_UNIT`'s default for new sessions (e.g. "acres" for a US team)
AREA_UNIT_ENV = "CROPMAP_AREA_UNIT"

#: this browser tab's own id (never saved), where Streamlit's session of it cannot be told (a test's
#: app): what follows a prediction (:func:`pages.components.predictions.follower`; two tabs of one
#: session's link follow it each, and one of them changing its region stopped the other's)
TAB_ID = "_tab_id"

DEFAULTS: dict[str, Any] = {
    SOURCE: {"kind": "sample"},
    REGION: None,
    PREVIOUS_REGION: None,
    SCENE: None,
    MODEL_PATH: None,
    JOB_DIR: None,
    TRAIN_FORM: {},
    PATCH_FORM: {},
    EE_EXPORT_FORM: {},
    EE_UPLOAD_FORM: {},
    EE_TASKS_ACTIVE: False,
    EE_TASK_NOTICE: None,
    EE_EXPORT_STARTED: None,
    MODEL_NOTICE: None,
    TRAININGS_NOTICE: None,
    BOX_NOTICE: None,
    BOX_FILLED: None,
    GEOJSON_NOTICE: None,
    DRAW_REFUSED: None,
    REGION_MAP_GENERATION: 0,
    UPLOAD_NOTICE: None,
    UPLOAD_CHOSEN: None,
    PASSED_OVER_JOB: None,
    MODEL_TAB: None,
    SCROLL_TO: None,
    EE_ASSET: "",
    EE_INGESTION: None,
    EE_PATCHES: None,
    EE_IMAGE_EXPORT: None,
    EE_EXPORTS: [],
    EE_EXPORT_WARNED: None,
    THRESHOLD: 0.5,
    VIEWS: 1,
    PREDICTION: None,
    PREDICTING: None,
    EE_LAST: None,
    FIELDS: None,
    LAST_DRAWING: None,
    LAYERS: {},
    MAP_CLICKS: {},
    PATCHES: None,
    QUALITY_CLASS: "all",
    BASEMAP: lambda: basemap_default(),  # a function: read when a session starts (the environment may change)
    MAP_HEIGHT: 480,
    AREA_UNIT: lambda: area_unit_default(),  # a function: read when a session starts
    TAB_ID: lambda: uuid.uuid4().hex,
}


#: the keys a browser reload brings back (:func:`save` and :func:`init`); the first group goes
#: back in its groups (:data:`_TOGETHER_GROUPS`), each whole, only when every file it names is still
#: there, and only with the groups before it (a region belongs to its source, a prediction to its scene)
KEPT_TOGETHER = (SOURCE, REGION, PREVIOUS_REGION, SCENE, PATCHES, PREDICTION, PREDICTING, FIELDS)
#: :data:`KEPT_TOGETHER` in the groups a reload brings back whole, each only with those before it
_TOGETHER_GROUPS = ((SOURCE, REGION, PREVIOUS_REGION), (SCENE, PATCHES, FIELDS), (PREDICTION, PREDICTING))
KEPT = KEPT_TOGETHER + (MODEL_PATH, THRESHOLD, VIEWS, LAYERS, QUALITY_CLASS, EE_ASSET, EE_INGESTION, EE_PATCHES,
                        EE_IMAGE_EXPORT, EE_EXPORTS, TRAIN_FORM,
                        PATCH_FORM, EE_EXPORT_FORM, EE_UPLOAD_FORM, EE_TASKS_ACTIVE, JOB_DIR, EE_LAST, BASEMAP,
                        MAP_HEIGHT, AREA_UNIT)
#: the saved sessions' layout: a session saved in another (an older version of the app, whose values
#: were shaped otherwise) is not restored; raise it when a kept value changes shape
SESSION_FORMAT = 1
FORMAT_KEY = "_format"  # its key in a saved session (absent in those saved before it: format 1)
SESSION_PARAM = "session"  # the URL's query parameter that names the session's saved state
SESSION_ID = "_session_id"  # the saved session's id (32 hex digits), which the URL carries (the link opened in another tab or browser meanwhile: a copy, see claim)
SAVED = "_saved_state"  # the JSON text last saved for this session (so that an unchanged run writes nothing)
SESSION_DAYS = 30  # saved sessions older than this are removed when a new session starts
URL_SESSION = "_url_session"  # the URL's session id, kept while a page opened by itself is sent into the app
PAGE = "_page"  # url path of the page this run shows (set by app.py before the page runs)
WIDGET_PAGES = "_widget_pages"  # dict widget key -> the page on which it was last drawn (see sync_widget)


def init() -> bool:
    """Set every key that is missing to its default (call once per run, from app.py). On a
    session's first run, bring back what the session in the URL had (a browser reload). Returns
    whether this is the session's first run."""
    first = SESSION_ID not in st.session_state
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value() if callable(value) else value.copy() if isinstance(value, dict) else value
    if first:
        _start_session()
    return first


def map_height() -> int:
    """The maps' height in px (:data:`MAP_HEIGHT`): one of :data:`MAP_HEIGHTS`; any other value (a session
    saved when the choices were others) is set back to the first."""
    value = get(MAP_HEIGHT)
    if value not in MAP_HEIGHTS:
        value = next(iter(MAP_HEIGHTS))
        put(MAP_HEIGHT, value)
    return int(value)


def area_unit() -> str:
    """The unit the pages show areas in (:data:`AREA_UNIT`): a name of ``core.metrics.AREA_UNITS``; any
    other value (a session saved when the choices were others) is set back to the default."""
    from core.metrics import AREA_UNITS

    value = get(AREA_UNIT)
    if value not in AREA_UNITS:
        value = area_unit_default()
        put(AREA_UNIT, value)
    return value


def area_unit_default(environ=os.environ) -> str:
    """The area unit a new session starts with: :data:`AREA_UNIT_ENV`'s (a name of ``core.metrics.AREA_UNITS``,
    e.g. "acres"), or hectares where it is not set or names no unit."""
    from core.metrics import AREA_UNITS

    value = environ.get(AREA_UNIT_ENV, "").strip().lower()
    return value if value in AREA_UNITS else "hectares"


def basemap_default(environ=os.environ) -> bool:
    """Whether maps start with the OpenStreetMap basemap: yes, unless :data:`BASEMAP_ENV` is "none"
    or "off" (a machine with no internet, or where the places looked at should not reach a tile
    server)."""
    return environ.get(BASEMAP_ENV, "").strip().lower() not in ("none", "off")


def keep_url_session() -> None:
    """Keep the URL's session id in this session's state: ``st.switch_page`` drops the URL's
    parameters, and the first run in the app must still find it (see :func:`init`)."""
    sid = st.query_params.get(SESSION_PARAM)
    if sid:
        st.session_state[URL_SESSION] = sid


def claim(claims: dict[str, str], sid: str, me: str, is_open: Callable[[str], bool], most: int = 256) -> bool:
    """Let browser session ``me`` (Streamlit's id) take kept session ``sid`` in ``claims`` ({kept id:
    browser session}, the server's); False where another browser session that is still open
    (``is_open``) holds it: a link passed round a demo, or opened in a second tab, where both
    saved to one file and the presenter's reload came back to an attendee's region. A reload takes
    it back (the tab before it is closed). Past ``most`` claims, those of closed sessions are let go."""
    holder = claims.get(sid)
    if holder is not None and holder != me and is_open(holder):
        return False
    claims[sid] = me
    if len(claims) > most:
        for kept, browser in list(claims.items()):
            if browser != me and not is_open(browser):
                del claims[kept]
    return True


def _claimed(sid: str) -> bool:
    """:func:`claim` of ``sid`` for this browser session in the server's claims (True outside a server)."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return True
    from pages.components import cached

    claims = cached.session_claims()
    with claims["lock"]:
        return claim(claims["by_id"], sid, ctx.session_id, runtime.get_instance().is_active_session)


def _new_own_id() -> str:
    """A new kept session id, claimed for this browser session (its state is saved anew under it)."""
    sid = uuid.uuid4().hex
    st.session_state[SAVED] = None
    _claimed(sid)
    return sid


def _start_session() -> None:
    sid = st.query_params.get(SESSION_PARAM) or st.session_state.pop(URL_SESSION, "")
    if re.fullmatch(r"[0-9a-f]{32}", sid or ""):
        try:
            text = (sessions_dir() / f"{sid}.json").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):  # (bytes that are no text: damaged, read as no session kept)
            text = ""
        st.session_state.update(restored(text))
        st.session_state[SAVED] = text
        if not _claimed(sid):  # open elsewhere: this one starts as a copy, under an id of its own
            sid = _new_own_id()
            # not the training the session started (the copy's Model page opened on it, as its own) nor its notice
            st.session_state[JOB_DIR] = st.session_state[MODEL_NOTICE] = None
        pred = st.session_state.get(PREDICTION)
        if isinstance(pred, dict) and isinstance(pred.get("key"), list):  # back in use: kept as long again
            from pages.components import cached

            cached.used(cached.prediction_file(tuple(pred["key"])))
    else:
        sid = _new_own_id()  # (its link is this browser session's, shared or not)
        try:  # (a read-only work folder: nothing to prune, and the session is just not kept, see save)
            _prune(sessions_dir(), SESSION_DAYS * 86400)
        except OSError:
            pass
        # the predictions no session has shown for as long (each is a float32 copy of its region: they
        # would fill the disk of a long-running server; one needed again is predicted again)
        _prune(work().predictions, SESSION_DAYS * 86400, "*.npy")
        # and what writes broken off by a killed server left (a prediction's temporary file, a download's
        # staging folder...: hidden, kept for good); a day is far longer than any write takes
        from core.workdir import prune_exports, prune_leftovers, prune_scenes

        prune_leftovers(work(), 86400)
        # and the regions' scenes none has used for as long (a copy of each region: 171 MB for a 3,900 px one),
        # and the image exports assembled (each as large as its export; assembled again when used again)
        prune_scenes(work(), SESSION_DAYS * 86400)
        prune_exports(work(), SESSION_DAYS * 86400)
    st.session_state[SESSION_ID] = sid


def save() -> None:
    """Keep this session's :data:`KEPT` keys on disk under the id the URL carries, so that a
    browser reload (or the link opened again) comes back to the same region, model, prediction
    and settings (call at the end of every run, from app.py). Never raises for a full disk or a
    read-only work folder: the session then just is not kept."""
    sid = st.session_state.get(SESSION_ID)
    if sid is None:
        return
    if not _claimed(sid):  # its link opened elsewhere while this browser session was away (asleep, offline):
        # both saved to one file; this one goes on under an id of its own, its state as it is
        sid = st.session_state[SESSION_ID] = _new_own_id()
    if st.query_params.get(SESSION_PARAM) != sid:  # page changes clear the URL's parameters
        st.query_params[SESSION_PARAM] = sid
    text = snapshot({k: st.session_state[k] for k in KEPT if k in st.session_state})
    if text == st.session_state.get(SAVED):
        return
    from core.files import write_bytes_whole

    try:
        write_bytes_whole(sessions_dir() / f"{sid}.json", text.encode("utf-8"))
    except OSError:
        return
    st.session_state[SAVED] = text


def snapshot(values: dict[str, Any]) -> str:
    """The JSON text that :func:`restored` reads back: the values that JSON can hold (a value it
    cannot hold is left out, and comes back as its default)."""
    kept: dict[str, Any] = {FORMAT_KEY: SESSION_FORMAT}
    for key, value in values.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return json.dumps(kept, sort_keys=True, allow_nan=False)


def restored(text: str, exists=os.path.exists) -> dict[str, Any]:
    """The session values to bring back from :func:`snapshot`'s ``text``: only :data:`KEPT` keys of the
    shape this version gives them (:func:`kept_shape_ok`); :data:`KEPT_TOGETHER` in its groups, each all
    or none, and none when a file they name is gone (``exists``: the check, injected for tests), nor
    those after it; {} for damaged text or a session saved in another :data:`SESSION_FORMAT`."""
    try:
        values = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(values, dict) or values.get(FORMAT_KEY, 1) != SESSION_FORMAT:
        return {}
    out = {k: v for k, v in values.items()
           if k in KEPT and k not in KEPT_TOGETHER and kept_shape_ok(k, v) and _files_there(v, exists)}
    # each group only with the groups before it: a scene belongs to its source and region, a prediction
    # to its scene (a scene pruned, or a prediction's model deleted, leaves the user's source and region)
    for group in _TOGETHER_GROUPS:
        values_ = {k: values[k] for k in group if k in values}
        if not (all(kept_shape_ok(k, v) for k, v in values_.items()) and _files_there(list(values_.values()), exists)):
            break
        out.update(values_)
    return out


def _is(*types):
    return lambda v: isinstance(v, types) and not (isinstance(v, bool) and bool not in types)


def _dict_with(**fields):
    """A dict whose ``fields`` each pass their check (a missing field passes: as its default)."""
    return lambda v: isinstance(v, dict) and all(check(v[k]) for k, check in fields.items() if k in v)


def _or_none(check):
    return lambda v: v is None or check(v)


_text, _flag, _dict, _list, _int = _is(str), _is(bool), _is(dict), _is(list), _is(int)
_flat_list = lambda v: _list(v) and not any(isinstance(x, (list, dict)) for x in v)  # noqa: E731 (as those above)
#: a scene's ``extra`` (core.sources: where it was cut from, its context image, its class codes)
_SCENE_EXTRA = _dict_with(row_off=_int, col_off=_int, height=_int, width=_int, region_pixels=_int,
                          pixel_size_m=_or_none(_is(int, float)), codes=_or_none(_text), class_map=_or_none(_text),
                          source=_or_none(_text), title=_or_none(_text), band_map=_or_none(_dict),
                          context=_dict_with(file=_text, row_off=_int, col_off=_int))
#: what each kept value must be to be restored (see :func:`kept_shape_ok`)
KEPT_SHAPES = {
    SOURCE: lambda v: _dict_with(kind=lambda k: k in ("sample", "local", "earthengine"), labels=_or_none(_text),
                                 label_map=_or_none(_text), title=_or_none(_text), band_map=_or_none(_dict),
                                 settings=_or_none(_dict), preset=_or_none(_text))(v)
    and (v.get("kind") != "local" or _text(v.get("image"))),  # (a local source without its image: every page failed)
    REGION: _or_none(_dict),
    PREVIOUS_REGION: _or_none(lambda v: isinstance(v, list) and len(v) == 1 and (v[0] is None or _dict(v[0]))),
    SCENE: _or_none(lambda v: _dict_with(image_path=_text, labels_path=_or_none(_text), label_map=_or_none(_text),
                                         georeferenced=_flag, title=_text, attribution=_text, extra=_SCENE_EXTRA)(v)
                    and _text(v.get("image_path"))),
    PATCHES: _or_none(_dict),
    PREDICTION: _or_none(lambda v: _dict(v) and _flat_list(v.get("key"))),
    PREDICTING: _or_none(_flat_list),  # (a key: made a tuple, hashed)
    FIELDS: _or_none(lambda v: _list(v) and len(v) == 2),
    MODEL_PATH: _or_none(_text),
    THRESHOLD: lambda v: _is(float)(v) and THRESHOLD_SLIDER["min_value"] <= v <= THRESHOLD_SLIDER["max_value"],
    VIEWS: lambda v: _int(v) and v in VIEW_CHOICES,  # (2, which core allows, crashed the Predict page's choice)
    LAYERS: lambda v: _dict(v) and all(_dict(x) and {"show", "opacity"} <= x.keys() and _dict_with(
        show=_flag, opacity=lambda o: _is(float)(o) and 0 <= o <= 1)(x) for x in v.values()),  # (a slider's float)
    QUALITY_CLASS: lambda v: v == "all" or _int(v),
    EE_ASSET: _text,
    EE_INGESTION: _or_none(lambda v: _dict(v) and _text(v.get("asset")) and _text(v.get("task"))),
    EE_PATCHES: _or_none(_dict),
    EE_IMAGE_EXPORT: _or_none(_dict),
    EE_EXPORTS: _list,
    TRAIN_FORM: _dict,
    PATCH_FORM: _dict,
    EE_EXPORT_FORM: _dict,
    EE_UPLOAD_FORM: _dict,
    EE_TASKS_ACTIVE: _flag,
    JOB_DIR: _or_none(_text),
    EE_LAST: _or_none(_dict),
    BASEMAP: _flag,
    MAP_HEIGHT: lambda v: _int(v) and v in MAP_HEIGHTS,
    AREA_UNIT: lambda v: _text(v) and v in _area_units(),
}


def _area_units() -> dict:
    from core.metrics import AREA_UNITS

    return AREA_UNITS


def kept_shape_ok(key: str, value: Any) -> bool:
    """Whether ``value`` has the shape this version of the app gives the kept ``key`` (a session saved
    by hand, damaged, or by a version that shaped it otherwise is not brought back)."""
    check = KEPT_SHAPES.get(key)
    return check is not None and bool(check(value))


def _files_there(value: Any, exists) -> bool:
    """Whether every absolute path among ``value``'s strings (nested) names something on disk."""
    if isinstance(value, str):
        return not os.path.isabs(value) or exists(value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return all(_files_there(v, exists) for v in value)
    return True


def _prune(folder: Path, age_s: float, pattern: str = "*.json") -> None:
    """Remove the files of ``folder`` matching ``pattern`` (saved sessions) not changed for ``age_s``
    seconds (best effort)."""
    cutoff = time.time() - age_s
    for path in folder.glob(pattern):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


def models_used_elsewhere(max_age_s: float = 86400) -> list[str]:
    """The models (their paths) of the other sessions saved in the last ``max_age_s`` seconds: what a
    deletion must leave to them (a session idle for longer then says its model is gone)."""
    own, cutoff = st.session_state.get(SESSION_ID), time.time() - max_age_s
    found = []
    for path in sessions_dir().glob("*.json"):
        try:
            if path.stem == own or path.stat().st_mtime < cutoff:
                continue
            value = json.loads(path.read_text(encoding="utf-8")).get(MODEL_PATH)
        except (OSError, ValueError, AttributeError):  # (gone meanwhile, damaged, not an object)
            continue
        if isinstance(value, str):
            found.append(value)
    return found


def sessions_dir() -> Path:
    path = work().sessions
    path.mkdir(parents=True, exist_ok=True)
    return path


def get(key: str) -> Any:
    if key not in st.session_state:
        init()
    return st.session_state[key]


def put(key: str, value: Any) -> None:
    st.session_state[key] = value


def widget_key(key: str) -> str:
    """Key of the widget that edits the canonical ``key`` (widgets lose state when a page hides them)."""
    return f"w_{key}"


def on_page(page: str) -> None:
    """Note the page this run shows (app.py, before the page runs; see :func:`sync_widget`)."""
    st.session_state[PAGE] = page


def sync_widget(key: str) -> str:
    """Set the widget of ``key`` from the canonical value before the widget draws; returns the
    widget's key.

    On a page other than the one that drew the widget last: when the user changes page, Streamlit
    keeps the widget's key but the widget would come back at its minimum (0.05 for the threshold).
    On the same page only a value that differs (set by a button, say): setting the widget's state
    sends its value to the browser, which then overwrote changes made while the run was on its way
    (arrow presses on the threshold slider in quick succession were lost). ``store_widget`` (the
    widget's on_change) keeps the canonical value current, so this never undoes a user's change.
    """
    wkey = widget_key(key)
    value, page = get(key), st.session_state.get(PAGE)
    drawn = st.session_state.setdefault(WIDGET_PAGES, {})
    if drawn.get(wkey) != page or wkey not in st.session_state or st.session_state[wkey] != value:
        st.session_state[wkey] = value
    drawn[wkey] = page
    return wkey


def store_widget(key: str) -> Any:
    """Copy the widget's value back to the canonical key and return it."""
    value = st.session_state[widget_key(key)]
    put(key, value)
    return value


def set_widget(key: str, value: Any) -> None:
    """Set the canonical ``key`` and its widget (call from a button's on_click, before widgets draw)."""
    put(key, value)
    st.session_state[widget_key(key)] = value


def set_region(geojson: dict | None, *, remember: bool = True) -> None:
    """A new region invalidates the scene, the prediction and the patches cut from the scene.

    With ``remember``, the region it replaces is kept for :func:`restore_previous_region` (so that
    a region drawn or uploaded by mistake, e.g. outside the image, loses nothing).
    """
    current = get(REGION)
    if remember and geojson != current:
        put(PREVIOUS_REGION, [current])
    put(REGION, geojson)
    put(DRAW_REFUSED, None)
    put(SCENE, None)
    if get(BOX_NOTICE):  # (a box cut to the image is told while it is the one in use: once a reset to the
        # whole image put back the box it was cut to, the note came back; "Use this box" puts it anew)
        put(BOX_NOTICE, None)
    forget_prediction()
    put(PATCHES, None)


def forget_prediction() -> None:
    """The session's prediction no longer stands (another region, source or model): neither the
    one shown nor one of its still running (followed here, it would come back as the prediction). A
    run that another session follows goes on in its thread, and is found on disk if this session
    comes back to what it predicts; one no other session follows is stopped
    (:func:`pages.components.predictions.leave`)."""
    pending = get(PREDICTING)
    if pending:
        from pages.components import predictions

        predictions.leave(tuple(pending), predictions.follower())
    put(PREDICTION, None)
    put(PREDICTING, None)


def set_source(spec: dict) -> None:
    """A new source invalidates the region, the scene and the prediction; the threshold goes back
    to its default (one tuned on the Quality page was tuned on the old source's labels). Earth
    Engine settings and region left for another source are kept (:data:`EE_LAST`) for the way back.
    The source in use again (its preset pressed once more) only goes back to its whole image, as the
    Region page's Reset does: threshold and the way back to the region it replaces are kept."""
    old = get(SOURCE)
    if spec == old:
        set_region(None)
        put(LAST_DRAWING, None)
        return
    if old.get("kind") == "earthengine" and spec.get("kind") != "earthengine":
        put(EE_LAST, {"spec": old, "region": get(REGION)})
    put(SOURCE, spec)
    set_region(None, remember=False)
    put(PREVIOUS_REGION, None)  # a region of another source
    put(LAST_DRAWING, None)
    put(THRESHOLD, DEFAULTS[THRESHOLD])
    put(UPLOAD_NOTICE, None)  # ("Using your file" said under its upload box while another source is in use)


def previous_region() -> list | None:
    """``[region]`` that the last change replaced (the region may be None = whole image), or None."""
    return get(PREVIOUS_REGION)


def restore_previous_region() -> None:
    """Swap back to the region the last change replaced (a second call undoes the first).

    Raises:
        KeyError: when there is no previous region.
    """
    prev = previous_region()
    if prev is None:
        raise KeyError("no previous region")
    set_region(prev[0])


def train_on_patches(train: str, val: str, patch_size: int) -> None:
    """Fill the Model page's training form with TFRecord patches and have the page open on its Train
    tab (for the buttons that hand patches over to training)."""
    put(TRAIN_FORM, {**get(TRAIN_FORM), "source": "patches", "train_patches": train, "val_patches_path": val,
                     "patch_size": patch_size})
    put(MODEL_TAB, "Train")


def job_dir() -> str | None:
    """The training job this session follows: a job that is running (one at a time; it may have
    been started in another tab or session, and only its panel can cancel it), else the one this
    session started (kept across a browser reload with the session); None when there is none.
    Another session's finished job is not this session's. A job whose folder has gone (deleted to
    free space, a cleaned work folder) is no longer followed."""
    from core.jobs import active_job

    own = get(JOB_DIR)
    if own and not Path(own).is_dir():
        put(JOB_DIR, None)
        own = None
    running = active_job(work().jobs)
    return str(running) if running is not None else own


def work() -> WorkDir:
    """The work folder and its layout (:class:`core.workdir.WorkDir`; ``CROPMAP_WORKDIR``, default
    outputs/dashboard). Raises ConfigError if it cannot be made (a path under a file, a folder
    without permission)."""
    return WorkDir.from_env(ROOT / "outputs" / "dashboard")
