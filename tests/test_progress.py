import gc
import signal
import sys

import pytest

from core.progress import new_bar


class _Stderr:
    """A stderr whose ``isatty`` (which tqdm's constructor asks first) delivers SIGTERM: a kill that
    lands while the bar is being made."""

    def isatty(self):
        signal.raise_signal(signal.SIGTERM)
        return False

    def write(self, text):
        return len(text)

    def flush(self):
        pass


def test_a_signal_while_the_bar_is_made_interrupts_just_after_it_without_a_traceback(monkeypatch):
    """A SIGTERM inside tqdm's constructor left a half-made bar whose clean-up printed "Exception
    ignored ... 'tqdm' object has no attribute 'disable'" under the CLI's one-line interruption."""
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(sys, "stderr", _Stderr())

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            new_bar(total=10, unit="step")
    finally:
        signal.signal(signal.SIGTERM, previous)
    gc.collect()
    assert unraisable == []
    assert signal.getsignal(signal.SIGTERM) is previous  # (the handler put back)


def test_the_commands_signal_handlers_are_back_once_the_bar_is_made():
    """Held while the bar is made, the CLI's handlers must be put back after it: a SIGTERM or Ctrl-C later
    in the run was otherwise noted and never acted on."""
    def handler(signum, _frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        new_bar(total=3, unit="step").close()
        assert all(signal.getsignal(sig) is handler for sig in previous)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def test_the_bar_follows_the_work_done_and_its_total_and_is_closed(monkeypatch):
    """On a terminal: the bar shows the count and total of each call (a total that grows too) and is
    closed at the end."""
    import io

    from core.progress import TqdmProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    bar = TqdmProgress("predict", "tile")
    bar(0, 12)
    bar(7, 12)
    assert (bar.bar.n, bar.bar.total) == (7, 12) and "7/12" in screen.getvalue()
    bar(9, 20)  # (more work found on the way)
    assert (bar.bar.n, bar.bar.total) == (9, 20) and "9/20" in screen.getvalue()
    bar.close()
    assert bar.bar.disable  # (tqdm's mark of a closed bar)
