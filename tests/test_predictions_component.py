"""The registry of background predictions (pages.components.predictions): which press gets which run, when a
run's work starts at all, and what its progress bar says."""

from __future__ import annotations

import threading

import pytest

from core.errors import NoDataError, PredictionStoppedError
from pages.components import predictions


@pytest.fixture(autouse=True)
def _own_slots(monkeypatch):
    monkeypatch.setattr(predictions, "_SLOTS", threading.BoundedSemaphore(2))


def test_a_run_told_to_stop_but_still_in_its_tile_is_not_handed_to_the_next_press():
    """The region changed (the run is to stop at its next tile) and then changed back before it got there:
    Predict pressed again must start a new run; the stopping one only ends in 'the prediction was stopped'."""
    key, gate, s1 = ("mut-stopping", 1), threading.Event(), predictions.Follower("s1")

    def work(progress):
        progress(0, 2)
        assert gate.wait(30)  # (a long tile)
        progress(1, 2)

    old = predictions.start(key, work, follower=s1)
    try:
        predictions.leave(key, s1)
        assert old.stopping.is_set() and not old.finished.is_set()
        new = predictions.start(key, lambda progress: progress(1, 1), follower=s1)
        assert new is not old
    finally:
        gate.set()
    assert old.finished.wait(10) and isinstance(old.error, PredictionStoppedError)
    assert new.finished.wait(10) and new.error is None
    predictions.collect(key)


def test_a_finished_run_is_shared_and_one_that_failed_is_run_again():
    """A run done but not yet collected (another tab's) is the one a press gets, not a second run of the model;
    a run that failed is run again on the next press (its error was for the tab that followed it)."""
    key, calls = ("mut-finished", 1), []
    done = predictions.start(key, lambda progress: calls.append("ok"))
    assert done.finished.wait(10) and done.error is None
    assert predictions.start(key, lambda progress: calls.append("again")) is done and calls == ["ok"]
    predictions.collect(key)

    def failing(progress):
        raise NoDataError("no valid pixels")

    key = ("mut-failed", 1)
    failed = predictions.start(key, failing)
    assert failed.finished.wait(10) and isinstance(failed.error, NoDataError)
    retry = predictions.start(key, lambda progress: calls.append("retry"))
    assert retry is not failed and retry.finished.wait(10) and retry.error is None and calls[-1] == "retry"
    predictions.collect(key)


def test_a_run_stopped_while_it_waited_for_its_turn_never_starts_its_work(monkeypatch):
    """A run waiting for a place among MAX_RUNNING that no tab follows any more does not load the model and
    read the scene once its turn comes: it ends stopped."""
    monkeypatch.setattr(predictions, "_SLOTS", threading.BoundedSemaphore(1))
    gate, s1, called = threading.Event(), predictions.Follower("s1"), []
    busy = predictions.start(("mut-busy", 1), lambda progress: gate.wait(30))
    waiting = predictions.start(("mut-wait", 1), lambda progress: called.append(True), follower=s1)
    try:
        for _ in range(100):
            if waiting.waiting:
                break
            threading.Event().wait(0.02)
        assert waiting.waiting
        predictions.leave(("mut-wait", 1), s1)
    finally:
        gate.set()
    assert busy.finished.wait(10) and waiting.finished.wait(10)
    assert isinstance(waiting.error, PredictionStoppedError) and called == []
    predictions.collect(("mut-busy", 1))
    predictions.collect(("mut-wait", 1))


def test_leaving_a_run_that_has_finished_does_not_make_the_next_press_run_it_again():
    """A tab that changes its region after its run finished (not yet collected) does not stop it: the result,
    on disk, is handed to the next press of the same key rather than the model run once more."""
    key, s1, calls = ("mut-left-finished", 1), predictions.Follower("s1"), []
    run = predictions.start(key, lambda progress: calls.append(1), follower=s1)
    assert run.finished.wait(10)
    predictions.leave(key, s1)
    assert not run.stopping.is_set()
    assert predictions.start(key, lambda progress: calls.append(2), follower=s1) is run and calls == [1]
    predictions.collect(key)


def test_the_progress_bar_of_a_run():
    """Its text before the tile count is known, its fraction kept within 0-1 (st.progress refuses any
    other: a count past its total broke the page), and "1 view" in the singular."""
    run = predictions.Run(("mut-text",))
    assert run.text == "Predicting tiles..." and run.fraction == 0.0
    run.update(3, 4)
    assert run.text == "Predicting tiles: 3 of 4" and run.fraction == 0.75
    run.update(5, 4)
    assert run.fraction == 1.0
    run.update(-1, 4)
    assert run.fraction == 0.0
    assert [predictions.views_text(n) for n in (1, 4)] == ["1 view", "4 views"]


def test_a_run_another_tab_collected_with_its_result_is_shown_without_an_error(fake_map, tiny_model_path):
    """Two tabs of the same region and model share a run; the other tab collected it and it succeeded: this tab
    shows the map (the file is on disk), with no word of a run 'that left no map'."""
    from core.region import Region

    from apptest import predict_page, texts
    from pages.components import cached

    at = predict_page(tiny_model_path)
    key = cached.prediction_key(at.session_state["scene"]["image_path"],
                                Region.from_geojson(at.session_state["region"]).key(), str(tiny_model_path))
    run = predictions.start(key, cached.prediction_work(key))
    at.session_state["predicting"] = list(key)
    assert run.finished.wait(60) and run.error is None
    assert predictions.collect(key) is run  # the other tab took it
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error, texts(at)
    assert at.session_state["predicting"] is None and at.session_state["prediction"]["key"] == list(key)

