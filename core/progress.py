"""A terminal progress bar for the CLI, fed by the ``progress(done, total, ...)`` callbacks of core."""

from __future__ import annotations


class TqdmProgress:
    """A tqdm bar fed by ``progress(done, total, *extra)`` (quiet when stderr is not a terminal)."""

    def __init__(self, desc: str, unit: str):
        from tqdm import tqdm

        # no monitor thread: a Ctrl-C during its exit handler printed a traceback
        tqdm.monitor_interval = 0
        self.bar = tqdm(desc=desc, unit=unit, dynamic_ncols=True, disable=None)

    def __call__(self, done: int, total: int, *_: object) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
