"""Predictions that run in a thread of the server, so that leaving the Predict page does not throw
one away (a page change stops the script that draws the page, and with it anything it runs).

One run per prediction key at a time, shared by every session that asks for the same key (the
result is the same file, :func:`pages.components.cached.prediction_file`). The registry holds run
states only (counts, an error); the arrays live in the thread while it works and on disk after it;
sessions keep the key alone (:data:`pages.components.state.PREDICTING`).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Callable

from core.errors import CropMapError, PredictionStoppedError

#: Runs by prediction key (finished runs stay until asked for once more, then go).
_RUNS: dict[tuple, "Run"] = {}
#: What the last failed run of a key said, for the other tabs that followed it after one collected it (the
#: :data:`_FAILED_KEPT` latest keys; a new run of the key clears it)
_FAILED: dict[tuple, str] = {}
_FAILED_KEPT = 32
_LOCK = threading.Lock()


def _max_running(text: str | None) -> int:
    """``CROPMAP_MAX_PREDICTIONS`` as a count of at least 1 (2 when unset or not a whole number)."""
    try:
        return max(1, int(text or 2))
    except ValueError:
        logging.getLogger(__name__).warning("CROPMAP_MAX_PREDICTIONS=%r is not a whole number; 2 are run at once", text)
        return 2


#: Predictions that run at once on the server (``CROPMAP_MAX_PREDICTIONS``); others wait their turn:
#: each uses every core already, and more at once only share them and add to the memory in use
MAX_RUNNING = _max_running(os.environ.get("CROPMAP_MAX_PREDICTIONS"))
_SLOTS = threading.BoundedSemaphore(MAX_RUNNING)


@dataclass(frozen=True)
class Follower:
    """A browser tab that follows a run: its id, and whether the server can tell when the tab is gone
    (a tab of a real server, by Streamlit's session of it; a reloaded tab's old session is gone)."""

    id: str
    checkable: bool = False


def follower() -> Follower:
    """This browser tab as a :class:`Follower`: Streamlit's session id where the server knows it as
    connected, else the tab's own id (:data:`pages.components.state.TAB_ID`; a test's app)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from pages.components import state

    ctx = get_script_run_ctx()
    if ctx is not None and connected(ctx.session_id):
        return Follower(ctx.session_id, True)
    return Follower(state.get(state.TAB_ID))


def connected(session_id: str) -> bool:
    """Whether the browser tab of Streamlit's ``session_id`` is still connected to the server."""
    from streamlit.runtime import Runtime

    return Runtime.exists() and Runtime.instance().is_active_session(session_id) is True


@dataclass
class Run:
    """A prediction running (or finished) in a thread: tiles done of total, or the error that ended it;
    the browser tabs that follow it, and whether it is to stop (none follows it any more)."""

    key: tuple
    done: int = 0
    total: int = 0
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    #: waiting for one of the :data:`MAX_RUNNING` predictions running on the server to finish
    waiting: bool = False
    followers: set[Follower] = field(default_factory=set)
    stopping: threading.Event = field(default_factory=threading.Event)

    def update(self, done: int, total: int, *_: object) -> None:
        """The progress callback of the run's work: raises PredictionStoppedError once it is to stop."""
        if self.stopping.is_set():
            raise PredictionStoppedError("the prediction was stopped: its region, source or model changed")
        self.done, self.total = done, total

    @property
    def fraction(self) -> float:
        return 0.0 if not self.total else min(max(self.done / self.total, 0.0), 1.0)

    @property
    def text(self) -> str:
        """The progress bar's text."""
        if self.waiting:
            return (f"Waiting for another prediction on this server to finish (at most {MAX_RUNNING} run at once; "
                    "this one starts then)")
        return f"Predicting tiles: {self.done:,} of {self.total:,}" if self.total else "Predicting tiles..."


def start(key: tuple, work: Callable[[Callable[[int, int], None]], object], follower: Follower | None = None) -> Run:
    """The run of ``key``: the one already going, or a new thread that calls ``work(progress)``
    (which writes the prediction's file) once fewer than :data:`MAX_RUNNING` others run; ``follower``
    (a browser tab's id) follows it from now on (see :func:`leave`). Never raises for what ``work``
    raises: the run keeps it."""
    with _LOCK:
        run = _RUNS.get(key)
        if run is None or run.stopping.is_set() or (run.finished.is_set() and run.error is not None):
            run = _RUNS[key] = Run(key)
            _FAILED.pop(key, None)
            new = True
        else:
            new = False
        if follower is not None:
            run.followers.add(follower)
        if not new:
            return run

    def target() -> None:
        try:
            if not _SLOTS.acquire(blocking=False):  # its turn once another run ends
                run.waiting = True
                _SLOTS.acquire()
                run.waiting = False
            try:
                run.update(0, 0)  # (stopped while it waited: it does not start)
                work(run.update)
            finally:
                _SLOTS.release()
        except BaseException as err:  # noqa: BLE001 - kept for the page to show (a bug is re-raised there)
            if not isinstance(err, CropMapError):  # a bug or the machine: its traceback in the server's log
                logging.getLogger(__name__).exception("prediction %s failed", key)
            # without its traceback, whose frames hold the image and the model until the run is collected
            run.error = err.with_traceback(None)
        finally:
            run.finished.set()

    threading.Thread(target=target, name=f"predict-{abs(hash(key)) % 10**8}", daemon=True).start()
    return run


def leave(key: tuple, follower: Follower) -> None:
    """``follower`` no longer follows the run of ``key`` (its region, source or model changed), nor do
    tabs the server knows to be gone (a tab reloaded since it pressed Predict: its new session followed
    the run, its old one never left it); a run that no tab follows any more stops at its next tile, and
    frees its place among the :data:`MAX_RUNNING` (a session's earlier runs had the next one wait for
    them, unseen)."""
    with _LOCK:
        run = _RUNS.get(key)
        if run is None or run.finished.is_set():
            return
        run.followers = {f for f in run.followers if f.id != follower.id and not (f.checkable and not connected(f.id))}
        if not run.followers:
            run.stopping.set()


def get(key: tuple) -> Run | None:
    """The run of ``key`` if one was started and has not been collected."""
    with _LOCK:
        return _RUNS.get(key)


def collect(key: tuple) -> Run | None:
    """The run of ``key`` if it has finished, removed from the registry (its error, if any, is
    the caller's to show); None while it runs or when there is none."""
    with _LOCK:
        run = _RUNS.get(key)
        if run is None or not run.finished.is_set():
            return None
        del _RUNS[key]
        if run.error is not None and not isinstance(run.error, PredictionStoppedError):
            _FAILED[key] = str(run.error) if isinstance(run.error, CropMapError) else ""
            for old in list(_FAILED)[:-_FAILED_KEPT]:
                del _FAILED[old]
        return run


def settle() -> Run | None:
    """For the pages that show a prediction: the session's prediction still running (None when
    none runs); one that has finished becomes the session's prediction here.

    Raises:
        what the run raised (CropMapError subclasses, a machine failure), once; CropMapError when
        another session collected the run and it left no prediction (with what it failed with, if it failed).
    """
    from pages.components import state

    pending = state.get(state.PREDICTING)
    if pending is None:
        return None
    key = tuple(pending)
    run = get(key)
    if run is not None and not run.finished.is_set():
        with _LOCK:  # (a reloaded tab, or another tab of the session's link, follows it from now on too)
            run.followers.add(follower())
        return run
    state.put(state.PREDICTING, None)
    if run is not None:
        collect(key)
        if run.error is not None:
            raise run.error
    if not adopt(key) and run is None:  # (collected by another session, which it failed; or the server restarted)
        with _LOCK:
            said = _FAILED.get(key)
        if said is not None:
            raise CropMapError("the prediction started here failed (another tab of the same region and model "
                               "showed it first)" + (f": {said}" if said else " on the server") + "; press Predict "
                               "to run it again")
        raise CropMapError("the prediction started here is no longer running and left no map (the server restarted, "
                           "or another tab ran the same region and model and it did not finish there); press Predict "
                           "to run it again")
    return None


def adopt(key: tuple) -> bool:
    """Make ``key`` the session's prediction if its probability is on disk (made by a run of this
    session or another, e.g. before a visit to another source: shown, not recomputed); whether it is."""
    from pages.components import cached, state

    if not cached.stored_whole(cached.prediction_file(key)):  # (a damaged one: removed, the page says Press Predict)
        return False
    cached.used(cached.prediction_file(key))
    state.put(state.PREDICTION, {"key": list(key)})
    return True


def shown(pred: dict | None, key: tuple) -> dict | None:
    """The prediction a page shows for ``key``: the session's ``pred``, or ``key``'s if it was made before
    and is on disk (:func:`adopt`: e.g. back from another source), which becomes the session's."""
    from pages.components import cached, state

    if (not pred or tuple(pred["key"]) != key) and adopt(key):
        return state.get(state.PREDICTION)
    if pred and not cached.stored_whole(cached.prediction_file(tuple(pred["key"]))):
        # its file gone (the work folder cleaned, a restored session): the page says Press Predict, where
        # the map's first draw ran the model unseen, in the page's run, outside the predictions' turns
        state.put(state.PREDICTION, None)
        return None
    return pred


def views_behind(pred: dict | None, key: tuple) -> int | None:
    """The views of each tile of the session's prediction ``pred`` when it differs from ``key`` in
    them alone (the setting changed, Predict not pressed yet: the Predict and Quality pages go on
    showing it, and say so); None otherwise."""
    if pred and tuple(pred["key"])[:-1] == tuple(key)[:-1] and tuple(pred["key"]) != tuple(key):
        return int(pred["key"][-1])
    return None


def views_text(n: int) -> str:
    """ "1 view", "4 views"."""
    return f"{n} view{'s' if n > 1 else ''}"
