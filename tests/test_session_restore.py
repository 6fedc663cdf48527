"""A browser reload comes back to the session it left (pages.components.state: save, init, snapshot,
restored): the URL names the session, its small state is kept on disk, files it names are checked."""

from __future__ import annotations

import json
import os
import time

import pytest

from pages.components import state
from apptest import by_label, new_app, predict_page

REGION = {"type": "Feature", "properties": {"crs": "image"},
          "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [256, 0], [256, 256], [0, 256], [0, 0]]]}}


def test_snapshot_round_trip_keeps_only_kept_keys_and_json_values(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"x")
    values = {state.MODEL_PATH: str(model), state.THRESHOLD: 0.37, state.REGION: REGION,
              state.SOURCE: {"kind": "sample"}, state.LAST_DRAWING: "{}", state.VIEWS: object()}
    back = state.restored(state.snapshot(values))
    assert back == {state.MODEL_PATH: str(model), state.THRESHOLD: 0.37, state.REGION: REGION,
                    state.SOURCE: {"kind": "sample"}}  # not the drawing (not kept), not what JSON cannot hold


def test_a_kept_session_open_in_another_browser_session_is_not_taken():
    """A link passed round a demo: the second browser session that opens it is told no (it becomes a
    copy under an id of its own) while the first is open; a reload of the first takes it back."""
    claims, open_now = {}, {"presenter", "attendee"}
    is_open = open_now.__contains__
    assert state.claim(claims, "a" * 32, "presenter", is_open)
    assert not state.claim(claims, "a" * 32, "attendee", is_open) and claims["a" * 32] == "presenter"
    assert state.claim(claims, "a" * 32, "presenter", is_open)  # (its own: again yes)
    open_now.discard("presenter")  # F5: the old tab's session is closed, the reload's is a new one
    open_now.add("reloaded")
    assert state.claim(claims, "a" * 32, "reloaded", is_open) and claims["a" * 32] == "reloaded"
    # many sessions later, the claims of closed browser sessions are let go (not the open ones')
    for i in range(10):
        state.claim(claims, f"{i:032x}", f"gone{i}", is_open, most=8)
    assert claims["a" * 32] == "reloaded" and len(claims) <= 9


def test_restored_drops_what_names_a_file_that_is_gone(tmp_path):
    image = tmp_path / "own.tif"
    image.write_bytes(b"x")
    source = {"kind": "local", "image": str(image), "labels": None, "title": "own.tif"}
    text = state.snapshot({state.SOURCE: source, state.REGION: REGION, state.PREDICTION: {"key": [str(image), 1.0]},
                           state.MODEL_PATH: str(tmp_path / "gone.keras"), state.THRESHOLD: 0.6})
    assert state.restored(text) == {state.SOURCE: source, state.REGION: REGION,
                                    state.PREDICTION: {"key": [str(image), 1.0]}, state.THRESHOLD: 0.6}
    image.unlink()  # the source's image is gone: its region and prediction do not come back without it
    assert state.restored(text) == {state.THRESHOLD: 0.6}


@pytest.mark.parametrize("text", ["", "{not json", "[1, 2]", "null"])
def test_restored_from_damaged_text_is_nothing(text):
    assert state.restored(text) == {}


#: values of the wrong shape for their key (a session saved by hand, damaged, or by a version that shaped
#: them otherwise): each made a page fail with a traceback when it came back (found by fuzzing saved sessions)
MISSHAPEN = [(state.THRESHOLD, 1), (state.THRESHOLD, "0.5"), (state.VIEWS, 3), (state.MAP_HEIGHT, []),
             (state.AREA_UNIT, "hectare"), (state.MODEL_PATH, 7), (state.MODEL_PATH, {"a": 1}), (state.BASEMAP, "yes"),
             (state.LAYERS, {"predict_crop": {"opacity": 1, "show": True}}), (state.LAYERS, {"predict_crop": {"a": 1}}),
             (state.QUALITY_CLASS, [5]), (state.SOURCE, 0), (state.SOURCE, {"kind": "ftp"}), (state.PREVIOUS_REGION, -1),
             (state.SCENE, {"image_path": "/x/image.tif", "extra": {"width": {}}}), (state.PREDICTION, {"key": "x"}),
             (state.VIEWS, True), (state.THRESHOLD, 1.5), (state.THRESHOLD, 0.01),
             (state.LAYERS, {"predict_crop": {"opacity": 2.0, "show": True}}), (state.PREDICTING, "x"),
             (state.FIELDS, [["key"], 0.5, "extra"]),
             # views core allows but the Predict page does not offer, a local source without its image, settings
             # that are no dict: each passed the check and then failed the Predict or Region page with a traceback
             (state.VIEWS, 2), (state.SOURCE, {"kind": "local"}), (state.SOURCE, {"kind": "local", "image": 5}),
             (state.SOURCE, {"kind": "earthengine", "settings": "x"}), (state.SOURCE, {"kind": "sample", "title": 1})]


@pytest.mark.parametrize("key, value", MISSHAPEN)
def test_restored_drops_a_value_of_another_shape(key, value):
    good = {state.THRESHOLD: 0.37, state.MAP_HEIGHT: 720, state.SOURCE: {"kind": "sample"}, state.REGION: REGION}
    back = state.restored(state.snapshot({**good, key: value}), exists=lambda p: True)
    if key in state.KEPT_TOGETHER:  # a scene belongs to its source and region, a prediction to its scene: its
        # group and those after it do not come back, those before it do
        groups = state._TOGETHER_GROUPS
        before = {k for g in groups[:next(i for i, g in enumerate(groups) if key in g)] for k in g}
        assert back == {k: v for k, v in good.items() if k not in state.KEPT_TOGETHER or k in before}
    else:  # the others come back
        assert back == {k: v for k, v in good.items() if k != key}


def test_every_value_a_setting_takes_comes_back():
    """The other side of the shapes checked: 8 views of each tile, the threshold slider's ends, a layer at full
    or no opacity were the user's own choices, which a reload must not drop."""
    uploaded = {"kind": "local", "image": "/w/uploads/a.tif", "labels": "/w/uploads/b.tif", "label_map": "cdl",
                "title": "a.tif", "band_map": {"R": 3, "G": 2, "B": 1, "NIR": 4}}
    export = {"kind": "local", "image": "/w/exports/x/image.tif", "labels": None, "label_map": None,
              "title": "camana (Earth Engine image export)", "mixer": "gs://b/camana-mixer.json"}
    for key, value in ((state.VIEWS, 8), (state.VIEWS, 1), (state.THRESHOLD, 0.95), (state.THRESHOLD, 0.05),
                       (state.SOURCE, uploaded), (state.SOURCE, export), (state.SOURCE, {"kind": "earthengine",
                                                                                          "preset": "camana"}),
                       (state.SOURCE, {"kind": "earthengine", "settings": {"composite": {}, "labels": None}}),
                       (state.LAYERS, {"predict_crop": {"opacity": 1.0, "show": False}, "labels": {"opacity": 0.0,
                                                                                                 "show": True}})):
        assert state.restored(state.snapshot({key: value}), exists=lambda p: True) == {key: value}, (key, value)


def test_an_ingestion_under_way_comes_back_after_a_reload():
    """It was kept as [asset, task] under a check for a dict: a reload dropped it, and the page asked
    Earth Engine for the tiles of an asset still being made."""
    made = {"asset": "projects/p/assets/camana", "task": "ING1"}
    assert state.restored(state.snapshot({state.EE_INGESTION: made, state.EE_ASSET: made["asset"]})) == {
        state.EE_INGESTION: made, state.EE_ASSET: made["asset"]}
    assert state.restored(state.snapshot({state.EE_INGESTION: ["projects/p/assets/camana", "ING1"]})) == {}


def test_every_kept_key_has_its_shape_and_the_defaults_have_it():
    assert set(state.KEPT_SHAPES) == set(state.KEPT)
    for key in state.KEPT:
        default = state.DEFAULTS[key]
        assert state.kept_shape_ok(key, default() if callable(default) else default), key


def test_a_session_saved_in_another_format_is_not_restored():
    text = state.snapshot({state.THRESHOLD: 0.37})
    assert json.loads(text)[state.FORMAT_KEY] == state.SESSION_FORMAT
    assert state.restored(text) == {state.THRESHOLD: 0.37}
    assert state.restored(json.dumps({state.THRESHOLD: 0.37})) == {state.THRESHOLD: 0.37}  # saved before formats
    assert state.restored(json.dumps({state.FORMAT_KEY: state.SESSION_FORMAT + 1, state.THRESHOLD: 0.37})) == {}


def test_a_reload_of_a_misshapen_session_opens_the_pages(fake_map):
    """A saved session holding a value of every misshapen kind: each page opens, on what could be kept."""
    sid = "ab" * 16
    saved = {key: value for key, value in reversed(MISSHAPEN)}  # (the first value of each key)
    (state.sessions_dir() / f"{sid}.json").write_text(json.dumps({**saved, state.THRESHOLD: 0.3}))
    for page in ("pages/region.py", "pages/data.py", "pages/predict.py", "pages/quality.py", "pages/model.py"):
        at = new_app()
        at.query_params[state.SESSION_PARAM] = sid
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.session_state[state.THRESHOLD] == 0.3 and at.session_state[state.SOURCE] == {"kind": "sample"}


def test_a_session_file_that_is_no_text_opens_the_pages_at_their_defaults(fake_map):
    """Bytes that are not UTF-8 (a damaged file) failed every page of the session's link with Streamlit's
    bare error (UnicodeDecodeError); damaged JSON already opened at the defaults."""
    sid = "cd" * 16
    state.sessions_dir().mkdir(parents=True, exist_ok=True)
    (state.sessions_dir() / f"{sid}.json").write_bytes(b"\xff\xfe{x")
    at = new_app()
    at.query_params[state.SESSION_PARAM] = sid
    at.switch_page("pages/predict.py").run()
    assert not at.exception and at.session_state[state.SOURCE] == {"kind": "sample"}


def test_a_form_kept_with_values_its_widgets_no_longer_take_opens_at_their_defaults(fake_map):
    """A form's kept values that its widget refuses (out of its range, of another type, not among its
    options: a session kept by a version whose form offered other values) made the page fail; each such
    value starts at its default, the others as kept."""
    sid = "cd" * 16
    train = {"source": "cloud", "preset": "unet9", "epochs": 500, "steps_per_epoch": 30, "learning_rate": "fast",
             "train_patches": 5, "patch_size": 100, "val_patches": 32.5, "patience": 4}
    cut = {"size": 100, "buffer": -3, "train": 1000, "test": "x"}
    (state.sessions_dir() / f"{sid}.json").write_text(json.dumps({state.TRAIN_FORM: train, state.PATCH_FORM: cut}))
    at = new_app()
    at.query_params[state.SESSION_PARAM] = sid
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert at.number_input(key="train_epochs").value == 5 and at.number_input(key="train_steps").value == 30
    assert at.number_input(key="train_lr").value == pytest.approx(1e-3) and at.number_input(key="train_patience").value == 4
    assert at.selectbox(key="train_preset").value == "light" and at.radio(key="train_source").value == "region"
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert at.number_input(key="patch_buffer").value == 0 and at.number_input(key="patch_train").value == 100
    assert at.number_input(key="patch_test").value == 25


def test_remembered_keeps_a_value_its_widget_takes_else_the_default():
    from pages.components.ui import remembered

    prev = {"n": 7, "x": 0.5, "flag": True, "name": "a", "big": 900, "choice": "b"}
    assert remembered(prev, "n", 5, lo=1, hi=10) == 7 and remembered(prev, "big", 5, lo=1, hi=200) == 5
    assert remembered(prev, "x", 1e-3, lo=1e-5, hi=1.0) == 0.5 and remembered(prev, "n", 1e-3) == 1e-3  # int for float
    assert remembered(prev, "flag", 5) == 5 and remembered(prev, "name", "") == "a" and remembered(prev, "n", "") == ""
    assert remembered(prev, "choice", "a", options=["a", "b"]) == "b" and remembered(prev, "name", "c", options=["c"]) == "c"
    assert remembered(prev, "missing", 3) == 3 and remembered(None, "n", 3) == 3


def _saved(sid: str) -> dict:
    return json.loads((state.sessions_dir() / f"{sid}.json").read_text())


def test_a_reload_comes_back_to_the_prediction_and_threshold(fake_map, tiny_model_path):
    at = predict_page(tiny_model_path)
    by_label(at.button, "Predict").click().run()
    at.slider(key="w_threshold").set_value(0.3).run()
    assert not at.exception
    area = {m.label: m.value for m in at.metric}["Crop area"]
    sid = at.query_params[state.SESSION_PARAM][0]  # the URL now names the session
    assert len(sid) == 32 and _saved(sid)[state.THRESHOLD] == pytest.approx(0.3)

    again = new_app()  # the reload: a new browser session with the same URL
    again.query_params[state.SESSION_PARAM] = sid
    again.switch_page("pages/predict.py").run()
    assert not again.exception
    assert again.session_state[state.MODEL_PATH] == str(tiny_model_path)
    assert again.session_state[state.REGION] == REGION
    assert {m.label: m.value for m in again.metric}["Crop area"] == area  # the prediction, not "Press Predict"
    assert again.slider(key="w_threshold").value == pytest.approx(0.3)

    other = new_app()  # a URL without a session (or a made-up one) starts afresh, under a new id
    other.query_params[state.SESSION_PARAM] = "../../etc/passwd"
    other.switch_page("pages/predict.py").run()
    assert not other.exception and other.session_state[state.MODEL_PATH] is None
    assert other.query_params[state.SESSION_PARAM][0] not in (sid, "../../etc/passwd")


def test_a_link_open_elsewhere_starts_a_copy_without_the_sessions_training(fake_map, monkeypatch):
    """The presenter's link opened by an attendee while the presenter's session is open: the same region
    and settings under a new id (its own file), but not the presenter's training (the attendee's Model
    page opened on it as its own, with Cancel) nor its notice."""
    at = new_app()
    (state.work().jobs / "job-x").mkdir(parents=True)  # (a job whose folder is gone is followed no more)
    at.session_state[state.JOB_DIR] = str(state.work().jobs / "job-x")
    at.session_state[state.THRESHOLD] = 0.3
    at.switch_page("pages/region.py").run()
    sid = at.query_params[state.SESSION_PARAM][0]
    assert _saved(sid)[state.JOB_DIR].endswith("job-x")
    monkeypatch.setattr(state, "_claimed", lambda s: s != sid)  # (held by the presenter's open session)
    copy = new_app()
    copy.query_params[state.SESSION_PARAM] = sid
    copy.switch_page("pages/region.py").run()
    theirs = copy.query_params[state.SESSION_PARAM][0]
    assert not copy.exception and theirs != sid and copy.session_state[state.THRESHOLD] == pytest.approx(0.3)
    assert copy.session_state[state.JOB_DIR] is None and _saved(theirs).get(state.JOB_DIR) is None
    assert _saved(sid)[state.JOB_DIR].endswith("job-x")  # (the presenter's file as it was)


def test_a_session_whose_link_was_taken_while_it_was_away_goes_on_under_its_own_id(fake_map, monkeypatch):
    """The presenter's laptop asleep, an attendee opens the link (and takes it: no open session held it);
    the presenter's session comes back with its state: it saves under a new id, not over the attendee's."""
    at = new_app()
    at.session_state[state.THRESHOLD] = 0.3
    at.switch_page("pages/region.py").run()
    sid = at.query_params[state.SESSION_PARAM][0]
    (state.sessions_dir() / f"{sid}.json").write_text("the attendee's")  # (what the attendee saved there)
    monkeypatch.setattr(state, "_claimed", lambda s: s != sid)
    at.session_state[state.THRESHOLD] = 0.4
    at.run()
    own = at.query_params[state.SESSION_PARAM][0]
    assert not at.exception and own != sid and at.session_state[state.SESSION_ID] == own
    assert _saved(own)[state.THRESHOLD] == pytest.approx(0.4)
    assert (state.sessions_dir() / f"{sid}.json").read_text() == "the attendee's"


def test_old_sessions_are_removed_when_a_new_one_starts(fake_map):
    old, recent = state.sessions_dir() / ("a" * 32 + ".json"), state.sessions_dir() / ("b" * 32 + ".json")
    for path in (old, recent):
        path.write_text("{}")
    past = time.time() - (state.SESSION_DAYS + 1) * 86400
    os.utime(old, (past, past))
    new_app().run()
    assert not old.exists() and recent.exists()


def test_predictions_no_session_used_for_as_long_are_removed_when_a_new_one_starts(fake_map, tiny_model_path):
    """Each prediction is kept on disk (a float16 copy of its region): those of a month ago filled the
    disk of a long-running server. A session brought back marks its prediction as used."""
    from pages.components import cached

    at = predict_page(tiny_model_path)
    by_label(at.button, "Predict").click().run()
    sid = at.query_params[state.SESSION_PARAM][0]
    kept = cached.prediction_file(tuple(at.session_state[state.PREDICTION]["key"]))
    old, recent = kept.parent / "old.npy", kept.parent / "recent.npy"
    # a server killed while writing one left its temporary file: gone a day later
    left, writing = kept.parent / f".{kept.name}.123-abcdef01.tmp", kept.parent / ".other.npy.124-abcdef02.tmp"
    for path in (old, recent, left, writing):
        path.write_bytes(b"x")
    past = time.time() - (state.SESSION_DAYS + 1) * 86400
    for path in (old, kept):
        os.utime(path, (past, past))
    os.utime(left, (time.time() - 2 * 86400,) * 2)

    again = new_app()  # the session's link opened again: its prediction is in use again
    again.query_params[state.SESSION_PARAM] = sid
    again.run()
    assert kept.stat().st_mtime > past + 86400
    new_app().run()  # a new session: what no session used for a month goes
    assert not old.exists() and recent.exists() and kept.exists()
    assert not left.exists() and writing.exists()


def test_the_predict_button_keeps_the_running_prediction_for_a_reload_at_once(fake_map, tiny_model_path, monkeypatch):
    """The page waits for the prediction to end before the run's end saves the session: a reload meanwhile
    found no running prediction in it. Pressing Predict saves it at once."""
    from pages.components import cached

    at = predict_page(tiny_model_path)
    sid = at.query_params[state.SESSION_PARAM][0]
    seen = []
    real = cached.prediction_work

    def work_of(key):
        made = real(key)

        def work(progress=None):  # what a reload while it runs would find
            deadline = time.time() + 30  # (a deadline, not a time to beat: a loaded CI machine is slow)
            while time.time() < deadline and not _saved(sid).get(state.PREDICTING):
                time.sleep(0.05)
            seen.append(_saved(sid).get(state.PREDICTING))
            return made(progress)
        return work

    monkeypatch.setattr(cached, "prediction_work", work_of)
    by_label(at.button, "Predict").click().run()
    assert not at.exception and seen and seen[0] == list(at.session_state[state.PREDICTION]["key"])
    assert _saved(sid)[state.PREDICTING] is None  # (and forgotten once it has ended)


def _restart() -> None:
    """What a restart of the server clears: Streamlit's caches and the predictions' threads (their registry)."""
    import streamlit as st

    from pages.components import predictions

    st.cache_data.clear()
    st.cache_resource.clear()
    predictions._RUNS.clear()


def test_a_reload_after_the_predictions_model_went_keeps_the_source_and_region(fake_map, tiny_model_path, tmp_path):
    """The model of the session's prediction deleted meanwhile (the training that made it deleted from another
    session's list of earlier trainings, which only refuses the model in use there; an update that shipped its
    weights under another name): a reload dropped the session's own image and region with it (the prediction's
    key names the model's path, and the source, region, scene and prediction come back all or none), and
    opened on the sample scene's whole image without a word. The prediction goes; the source and region stay."""
    import shutil

    from core.card import card_path
    from testdata import SAMPLE_IMAGE

    model = tmp_path / "own-model.keras"
    shutil.copy(tiny_model_path, model)
    shutil.copy(card_path(tiny_model_path), card_path(model))
    at = new_app()  # the sample's image as one's own (no labels)
    at.session_state[state.SOURCE] = {"kind": "local", "image": str(SAMPLE_IMAGE), "labels": None, "label_map": None,
                                      "title": "own.tif"}
    at.session_state[state.MODEL_PATH] = str(model)
    at.session_state[state.REGION] = REGION
    at.switch_page("pages/predict.py").run()
    by_label(at.button, "Predict").click().run()
    assert not at.exception and at.session_state[state.PREDICTION] is not None
    source, sid = at.session_state[state.SOURCE], at.query_params[state.SESSION_PARAM][0]
    assert _saved(sid)[state.SOURCE] == source

    model.unlink()
    card_path(model).unlink()
    _restart()
    again = new_app()
    again.query_params[state.SESSION_PARAM] = sid
    again.switch_page("pages/region.py").run()
    assert not again.exception
    assert again.session_state[state.SOURCE] == source  # the user's own image, not the sample
    assert again.session_state[state.REGION] == REGION
    assert again.session_state[state.MODEL_PATH] is None and again.session_state[state.PREDICTION] is None


#: what a server killed mid-write leaves in the work folder (relative to it; a name ending in "/" is a folder):
#: an Earth Engine image export being assembled (minutes of reading Cloud Storage, a GeoTIFF of the whole export),
#: a region's Earth Engine download in the folder of a scene that is in use again since, an upload to Earth Engine
#: (its GeoTIFF staged), a training's deletion broken off, a session being saved, a training's start on a region
#: (the region's image and labels split into a held-out block, before the job's files: never listed as a job)
LEFT_BY_A_CRASH = ["exports/0123456789abcdef/.image.tif.4242-abcdef01.tmp",
                   "scenes/89abcdef01234567/.ee-fetch-k3j2h1g0/",
                   "ee_upload/.upload-k3j2h1g0/",
                   "jobs/.deleting-job-20261201-080000-aaaaaa/",
                   "sessions/." + "a" * 32 + ".json.4242-abcdef01.tmp",
                   "jobs/job-20261201-080000-cccccc/holdout/"]


@pytest.mark.parametrize("left", LEFT_BY_A_CRASH)
def test_what_a_killed_server_left_staged_is_removed_a_day_later(fake_map, left):
    """The temporary files and staging folders of writes that a restart, a crash or an out-of-memory kill broke
    off were never removed but in the predictions' folder: hidden, never listed nor used, but each as large as what
    it was writing (a whole image export, a region's download, a training's checkpoints) and kept for good, the
    scene's own with the scene in use. A new session removes those left for a day (not one being written now, by
    another session: a download or upload takes minutes)."""
    work = state.work().root
    path = work / left.rstrip("/")
    fresh = work / next(left.rstrip("/").replace(a, b) for a, b in (("abcdef01", "abcdef02"), ("k3j2h1g0", "n0w0n0w0"),
                                                                     ("aaaaaa", "bbbbbb"), ("cccccc", "dddddd")) if a in left)
    for p in (path, fresh):
        p.parent.mkdir(parents=True, exist_ok=True)
        if left.endswith("/"):
            p.mkdir()
            (p / "image.tif").write_bytes(b"x" * 1000)
        else:
            p.write_bytes(b"x" * 1000)
    past = time.time() - 2 * 86400
    top = work / left.split("/")[0]
    for p in [*path.rglob("*"), path, *(q for q in path.parents if top in q.parents)]:  # (its folders as old)
        os.utime(p, (past, past))
    new_app().run()
    assert fresh.exists()  # (another session's write under way)
    assert not path.exists(), left


def test_a_reload_after_a_restart_shows_the_training_whose_worker_was_killed_as_failed_with_resume(fake_map, request):
    """The session's training, its worker killed (kill -9, the out-of-memory killer) while the server was down, and
    its id taken since by another process: after the restart the reloaded session's Model page says it failed, its
    finished epoch kept, with Resume, not "running" with Cancel for good (which refused every new training)."""
    import subprocess
    import sys

    from core import jobs

    job = state.work().jobs / "job-20261201-080000-aaaaaa"
    (job / "train").mkdir(parents=True)
    (job / "train" / "last.keras").write_bytes(b"checkpoint")
    (job / "job.json").write_text(json.dumps({"kind": "train", "job_id": "train-x", "params": {}, "note": ""}))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # the worker's id, reused
    request.addfinalizer(other.kill)
    running = jobs.JobStatus(state="running", job_id="train-x", pid=other.pid, started=time.time() - 600, epoch=2,
                             epochs=3, step=1, steps=4, history=[{"epoch": 1, "loss": 0.5, "val_loss": 0.45}])
    (job / "status.json").write_text(json.dumps(running.to_dict()))
    (job / "log.txt").write_text("epoch 2/3\n")
    at = new_app()
    at.session_state[state.JOB_DIR] = str(job)  # (as Start training keeps it)
    at.switch_page("pages/region.py").run()
    sid = at.query_params[state.SESSION_PARAM][0]

    _restart()
    again = new_app()
    again.query_params[state.SESSION_PARAM] = sid
    again.switch_page("pages/model.py").run()
    assert not again.exception and again.session_state[state.JOB_DIR] == str(job)
    assert not any(b.label in ("Cancel training", "Stop now") for b in again.button)
    assert any(b.label == "Resume training" for b in again.button), [b.label for b in again.button]
    assert any(e.value.startswith("The worker process exited unexpectedly") for e in again.error), [e.value for e in again.error]
    assert "failed: 1 of 3 epochs finished" in " ".join(p.proto.text for p in again.get("progress"))
    assert not by_label(again.button, "Start training").disabled  # (no training runs)


def test_a_reload_after_a_restart_mid_prediction_says_so_once_and_offers_predict(fake_map, tiny_model_path):
    """The server restarted while the session's prediction ran in its thread (its half-written temporary file
    left beside where the prediction goes): the reloaded Predict page shows no progress bar waiting for a run
    that is gone nor the half-written file as a map; it says once that the prediction is no longer running, and
    Predict makes it anew."""
    import numpy as np

    from core.region import Region
    from pages.components import cached

    at = predict_page(tiny_model_path)
    key = cached.prediction_key(at.session_state[state.SCENE]["image_path"],
                                Region.from_geojson(at.session_state[state.REGION]).key(), str(tiny_model_path))
    at.session_state[state.PREDICTING] = list(key)  # as the Predict button saves it, the server then killed
    at.switch_page("pages/region.py").run()
    sid = at.query_params[state.SESSION_PARAM][0]
    assert _saved(sid)[state.PREDICTING] == list(key)
    stored = cached.prediction_file(key)
    stored.parent.mkdir(parents=True, exist_ok=True)
    half = stored.parent / f".{stored.name}.4242-abcdef01.tmp"
    with open(half, "wb") as f:
        np.save(f, np.zeros((256, 256), np.float32))
    half.write_bytes(half.read_bytes()[:5000])

    _restart()
    again = new_app()
    again.query_params[state.SESSION_PARAM] = sid
    again.switch_page("pages/predict.py").run()
    assert not again.exception and not again.get("progress")
    assert [e.value for e in again.error] == [
        "The prediction started here is no longer running and left no map (the server restarted, or another tab "
        "ran the same region and model and it did not finish there); press Predict to run it again"]
    assert again.session_state[state.PREDICTING] is None and again.session_state[state.PREDICTION] is None
    assert "Crop area" not in [m.label for m in again.metric] and not stored.exists()
    assert _saved(sid)[state.PREDICTING] is None  # (a second reload does not say it again)
    again.run()
    assert not again.exception and not again.error
    assert any("Press Predict" in i.value for i in again.info), [i.value for i in again.info]
    by_label(again.button, "Predict").click().run()
    assert not again.exception and not again.error and "Crop area" in [m.label for m in again.metric]
    assert np.load(stored).shape == (256, 256)


@pytest.mark.parametrize("value", [[["image.tif", 1.0]], [{"image": "image.tif"}, 1]])
def test_a_kept_running_prediction_whose_key_holds_lists_opens_the_pages(fake_map, value):
    """A running prediction's key kept as a list of lists or objects (a damaged or hand-edited session, or one
    kept by a version that shaped keys otherwise) passed the kept shape's check (a list), and every page of the
    session's link then failed with Streamlit's bare error (TypeError: unhashable type, in the sidebar's line on
    the prediction): it is not restored, as other misshapen values are not."""
    sid = "ef" * 16
    state.sessions_dir().mkdir(parents=True, exist_ok=True)
    (state.sessions_dir() / f"{sid}.json").write_text(json.dumps({state.PREDICTING: value, state.THRESHOLD: 0.3}))
    for page in ("pages/region.py", "pages/predict.py", "pages/quality.py"):
        at = new_app()
        at.query_params[state.SESSION_PARAM] = sid
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.session_state[state.THRESHOLD] == 0.3 and at.session_state[state.PREDICTING] is None


def test_a_reload_after_its_scene_was_pruned_keeps_the_source_and_region(fake_map):
    """The session's scene not used for a month (the session changed since only on pages that do not show it:
    the training form, the sidebar's settings) is pruned when another session starts, as it should be; the
    session's reload then dropped its own image and region with it and opened on the sample's whole image,
    without a word, though the scene is only a copy cut again from the source on the next page that needs it."""
    from testdata import SAMPLE_IMAGE

    at = new_app()  # the sample's image as one's own (no labels)
    own = {"kind": "local", "image": str(SAMPLE_IMAGE), "labels": None, "label_map": None, "title": "own.tif"}
    at.session_state[state.SOURCE] = own
    at.session_state[state.REGION] = REGION
    at.switch_page("pages/data.py").run()
    assert not at.exception and at.session_state[state.SCENE] is not None
    scene = os.path.dirname(at.session_state[state.SCENE]["image_path"])
    sid = at.query_params[state.SESSION_PARAM][0]
    past = time.time() - (state.SESSION_DAYS + 1) * 86400
    os.utime(scene, (past, past))  # (a month on; the session's own file changed since)
    new_app().run()  # another session starts: the scene is pruned
    assert not os.path.exists(scene) and (state.sessions_dir() / f"{sid}.json").exists()

    _restart()
    again = new_app()
    again.query_params[state.SESSION_PARAM] = sid
    again.switch_page("pages/data.py").run()
    assert not again.exception
    assert again.session_state[state.SOURCE] == own and again.session_state[state.REGION] == REGION
    assert again.session_state[state.SCENE] is not None and os.path.exists(again.session_state[state.SCENE]["image_path"])


def test_restored_brings_back_a_scene_only_with_its_source_and_a_prediction_only_with_its_scene(tmp_path):
    """The kept groups in order: a source gone takes its region, scene and prediction with it though their files
    are there; a scene gone takes its prediction, not its source and region."""
    image, scene = tmp_path / "own.tif", tmp_path / "scene.tif"
    for p in (image, scene):
        p.write_bytes(b"x")
    source = {"kind": "local", "image": str(image), "labels": None, "title": "own.tif"}
    kept_scene = {"image_path": str(scene), "labels_path": None, "label_map": None, "georeferenced": False,
                  "title": "t", "attribution": "", "extra": {}}
    prediction = {"key": [str(scene), 1.0]}
    text = state.snapshot({state.SOURCE: source, state.REGION: REGION, state.SCENE: kept_scene,
                           state.PREDICTION: prediction, state.THRESHOLD: 0.6})
    assert state.restored(text) == {state.SOURCE: source, state.REGION: REGION, state.SCENE: kept_scene,
                                    state.PREDICTION: prediction, state.THRESHOLD: 0.6}
    scene.unlink()
    assert state.restored(text) == {state.SOURCE: source, state.REGION: REGION, state.THRESHOLD: 0.6}
    scene.write_bytes(b"x")
    image.unlink()
    assert state.restored(text) == {state.THRESHOLD: 0.6}
