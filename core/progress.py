"""A terminal progress bar for the CLI, fed by the ``progress(done, total, ...)`` callbacks of core."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

#: the signals the CLI turns into an interruption (:func:`core.__main__.main` installs their handlers)
_HELD = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def _signals_held() -> Iterator[None]:
    """Run the body with the Python handlers of :data:`_HELD` signals held back, and call them once
    it has finished: a signal inside tqdm's constructor left a half-made bar, whose clean-up at exit
    printed a traceback ("'tqdm' object has no attribute 'disable'") under a clean interruption.
    Outside the main thread (where no handler runs) the body runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    # (Python handlers only: SIG_DFL and SIG_IGN stay as they are)
    previous = {sig: handler for sig in _HELD if callable(handler := signal.getsignal(sig))}
    for sig in previous:
        signal.signal(sig, lambda signum, _frame: arrived.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if arrived:  # (after a body that raised, its exception goes on instead)
        previous[arrived[0]](arrived[0], None)


def new_bar(**kwargs):
    """A tqdm bar (quiet when stderr is not a terminal, no monitor thread), made whole or not at
    all: a signal while it is being made is handled just after (:func:`_signals_held`)."""
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: a Ctrl-C during its exit handler printed a traceback
    with _signals_held():
        return tqdm(dynamic_ncols=True, disable=None, **kwargs)


class TqdmProgress:
    """A tqdm bar fed by ``progress(done, total, *extra)`` (quiet when stderr is not a terminal).

    The bar is made at the first call, when its total is known: made before, it showed a count
    without a total ("0tile [00:00, ?tile/s]") while the work was being set up.
    """

    def __init__(self, desc: str, unit: str):
        self.desc, self.unit = desc, unit
        self.bar = None

    def __call__(self, done: int, total: int, *_: object) -> None:
        if self.bar is None:
            self.bar = new_bar(desc=self.desc, unit=self.unit, total=total)
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
