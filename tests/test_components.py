"""The dashboard components' own rules (pages/components), checked without drawing a page: what the pages
write from them (model names, score pairs), what a session keeps across a change of region or source, which
runs and stored predictions the pages take up. Where a rule reads the session, it runs in a one-line script
under AppTest (:func:`_session`)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import apptest  # noqa: F401  (the checkout on sys.path, for the scripts below)
from pages.components import models, predictions, scene, state

A = {"type": "Feature", "properties": {"crs": "image", "name": "A"},
     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [200, 200], [0, 200], [0, 0]]]}}
B = {"type": "Feature", "properties": {"crs": "image", "name": "B"},
     "geometry": {"type": "Polygon", "coordinates": [[[100, 100], [300, 100], [300, 300], [100, 300], [100, 100]]]}}


def _calls_script():
    """Calls the functions of pages.components.state named in the session's ``_calls`` ([name, args]), in order."""
    import streamlit as st

    from pages.components import state as s

    for name, args in st.session_state["_calls"]:
        getattr(s, name)(*args)


def _session(calls: list, **values) -> AppTest:
    """A session holding ``values`` (state keys) after ``calls`` of pages.components.state (name, args)."""
    at = AppTest.from_function(_calls_script, default_timeout=60)
    for key, value in values.items():
        at.session_state[key] = value
    at.session_state["_calls"] = calls
    at.run()
    assert not at.exception, at.exception
    return at


# ------------------------------------------------------------------ words the pages write


def test_two_scores_are_written_with_the_decimals_that_tell_them_apart():
    """'The model in use has validation IoU 0.791 (...): this checkpoint's 0.791 is lower': as many decimals
    as tell the two apart (from 3), never more than 6."""
    assert models.apart(0.791, 0.697) == ("0.791", "0.697")
    assert models.apart(0.7914, 0.7911) == ("0.7914", "0.7911")
    assert models.apart(0.79143, 0.79141) == ("0.79143", "0.79141")
    assert models.apart(0.791432, 0.791431) == ("0.791432", "0.791431")
    assert models.apart(0.7914321, 0.7914324) == ("0.791432", "0.791432")  # (as far as it goes)


def test_a_trainings_checkpoint_is_named_with_its_training_and_epoch(tmp_path, tiny_model_path):
    """Every training leaves a best.keras: the sidebar and the Predict page told them apart only by when their
    training started and the epoch their card was written at ("best.keras (training of ..., epoch 8)")."""
    import shutil

    from core.card import card_path

    train = tmp_path / "job-20261201-214000-abcdef" / "train"
    train.mkdir(parents=True)
    best = Path(shutil.copy(tiny_model_path, train / "best.keras"))
    card = json.loads(card_path(tiny_model_path).read_text())
    card_path(best).write_text(json.dumps({**card, "metrics": {"val": {"epoch": 8, "val_iou": 0.7}}}))
    assert models.label(best) == "best.keras (training of 2026-12-01 21:40, epoch 8)"
    card_path(best).write_text(json.dumps({**card, "metrics": {}}))  # a card without its epoch
    assert models.label(best) == "best.keras (training of 2026-12-01 21:40)"
    assert models.label(tiny_model_path) == "tiny.keras"  # not a training's: its file name


def test_the_line_under_a_prediction_names_its_views_only_when_it_averaged_several(tmp_path):
    """'averaged over 1 views of each tile' under a plain prediction; and 2 views (the setting's second value)
    must be said, for it is not what 1 view gives."""
    model = tmp_path / "m.keras"
    assert models.made_by(model, 1) == "Prediction by m.keras."
    assert models.made_by(model, 2) == "Prediction by m.keras, averaged over 2 views of each tile."
    assert models.made_by(model, 8) == "Prediction by m.keras, averaged over 8 views of each tile."


# ------------------------------------------------------------------ predictions the pages take up


def test_a_prediction_is_behind_only_in_its_views():
    """The Predict and Quality pages go on showing a prediction whose views setting changed (and say "predicted
    with 1 view"): never one of another image, region or model, nor the very prediction asked for."""
    key = ("scenes/a/image.tif", 1.0, "box-a", "m.keras", 5.0, 4)
    made = {"key": [*key[:-1], 1]}
    assert predictions.views_behind(made, key) == 1
    assert predictions.views_behind({"key": list(key)}, key) is None  # (up to date: nothing to say)
    for i, other in enumerate(("scenes/b/image.tif", 2.0, "box-b", "n.keras", 6.0)):
        assert predictions.views_behind({"key": [*key[:i], other, *key[i + 1:-1], 1]}, key) is None, other
    assert predictions.views_behind(None, key) is None


def test_a_run_is_collected_only_once_it_has_finished():
    """A page that collected a run still going took it for finished: no map, and the run's result, written
    later, was never shown (it was no longer in the registry)."""
    key, gate = ("collect-test", 1), threading.Event()
    run = predictions.start(key, lambda progress: gate.wait(30))
    try:
        assert predictions.collect(key) is None and predictions.get(key) is run  # running: left where it is
    finally:
        gate.set()
    assert run.finished.wait(30)
    assert predictions.collect(key) is run and predictions.get(key) is None
    assert predictions.collect(key) is None


# ------------------------------------------------------------------ the scene's class codes and colours


def test_class_codes_are_those_of_a_label_products_own_classes(tmp_path):
    """A scene whose labels are crop/not crop ("binary") has no product classes to name: the Data page's
    click read a class for them, and its table listed "classes" 0 and 1."""
    from core.sources.base import Scene

    def sc(**extra):
        return Scene(tmp_path / "image.tif", tmp_path / "labels.tif", "binary", True, "t", extra=extra)

    assert scene.class_codes(sc(codes="codes.tif", class_map="worldcover")) == (str(tmp_path / "codes.tif"), "worldcover")
    assert scene.class_codes(sc(codes="codes.tif", class_map="binary")) is None
    assert scene.class_codes(sc(codes="codes.tif")) is None
    assert scene.class_codes(sc()) is None


def _colours_script():
    import streamlit as st

    from pages.components import scene as sc

    st.session_state["_limits"] = sc.colour_limits()


def test_a_region_of_the_sample_is_coloured_as_the_whole_image():
    """The sample's region is stretched with the whole image's colour limits (so it looks as the image around
    it); stretched on its own, a dark field came out as bright as a town."""
    from testdata import SAMPLE_IMAGE

    from pages.components import cached

    at = AppTest.from_function(_colours_script, default_timeout=60)
    at.session_state[state.REGION] = A
    at.run()
    assert not at.exception
    limits = at.session_state["_limits"]
    assert limits is not None
    assert json.dumps(limits, default=str) == json.dumps(
        cached.colour_limits(str(SAMPLE_IMAGE), cached.mtime(str(SAMPLE_IMAGE)), None), default=str)


# ------------------------------------------------------------------ what a change of region or source keeps


def test_a_new_region_forgets_the_patches_cut_from_the_old_one(tmp_path):
    """The Data page offered the old region's patches ("Train on these patches") under the new region."""
    at = _session([["set_region", [B]]], **{state.REGION: A, state.PATCHES: {"train": "t", "test": "v"}})
    assert at.session_state[state.REGION] == B and at.session_state[state.PATCHES] is None


def test_a_region_taken_clears_why_the_last_drawing_was_refused():
    """'The shape drawn was not taken' stayed beside the map after a good region was drawn or typed."""
    at = _session([["set_region", [B]]], **{state.REGION: A, state.DRAW_REFUSED: "It crosses the 180th meridian."})
    assert at.session_state[state.DRAW_REFUSED] is None


def test_a_new_source_has_no_way_back_to_a_region_of_the_old_one():
    """'Back to the previous region' after a change of image offered a region of the image left."""
    at = _session([["set_region", [B]], ["set_source", [{"kind": "earthengine", "preset": "camana"}]]],
                  **{state.REGION: A})
    assert at.session_state[state.PREVIOUS_REGION] is None and at.session_state[state.REGION] is None


def test_back_to_the_previous_region_twice_comes_back_to_where_it_started():
    """The way back is a swap: back, then back again, returns to the region left (it stayed on the first)."""
    at = _session([["set_region", [B]], ["restore_previous_region", []]], **{state.REGION: A})
    assert at.session_state[state.REGION] == A and at.session_state[state.PREVIOUS_REGION] == [B]
    at = _session([["set_region", [B]], ["restore_previous_region", []], ["restore_previous_region", []]],
                  **{state.REGION: A})
    assert at.session_state[state.REGION] == B and at.session_state[state.PREVIOUS_REGION] == [A]


def test_only_earth_engine_settings_are_kept_for_the_way_back():
    """Settings and region left on Earth Engine come back with it; a local image left for another is no
    Earth Engine recipe: kept as one, the Earth Engine form opened on it and failed."""
    ee = {"kind": "earthengine", "preset": "camana"}
    lonlat = {"type": "Feature", "properties": {"crs": "EPSG:4326"},
              "geometry": {"type": "Polygon", "coordinates": [[[-72.75, -16.64], [-72.7, -16.64], [-72.7, -16.6],
                                                               [-72.75, -16.6], [-72.75, -16.64]]]}}
    at = _session([["set_source", [{"kind": "sample"}]]], **{state.SOURCE: ee, state.REGION: lonlat})
    assert at.session_state[state.EE_LAST] == {"spec": ee, "region": lonlat}
    own = {"kind": "local", "image": "/x/own.tif", "labels": None, "label_map": None, "title": "own.tif"}
    at = _session([["set_source", [own]]], **{state.SOURCE: {"kind": "sample"}, state.REGION: A})
    assert at.session_state[state.EE_LAST] is None
    at = _session([["set_source", [{"kind": "earthengine", "preset": "other"}]]], **{state.SOURCE: ee})
    assert at.session_state[state.EE_LAST] is None  # (from Earth Engine to Earth Engine: nothing left behind)


# ------------------------------------------------------------------ defaults of a new session


@pytest.mark.parametrize("value, shown", [("", True), ("osm", True), ("none", False), ("off", False),
                                          (" OFF ", False), ("None", False)])
def test_the_basemap_is_off_where_the_environment_says_none_or_off(value, shown):
    """CROPMAP_BASEMAP=off (as its documentation says) still sent every place looked at to the tile server."""
    assert state.basemap_default({state.BASEMAP_ENV: value}) is shown
