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
