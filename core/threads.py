"""Helper threads that give way to the model's threads."""

from __future__ import annotations

import os
import threading


def background_priority() -> None:
    """Lower the calling thread's scheduling priority (Linux: per-thread nice 10).

    The model's threads keep the cores busy; a reading or writing thread that preempts one of them
    stalls the other at the next synchronisation, so helpers should run in the model's gaps instead.
    Elsewhere (or if not permitted) this does nothing.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass
