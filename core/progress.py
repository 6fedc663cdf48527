"""A terminal progress bar for the CLI, fed by the ``progress(done, total, ...)`` callbacks of core."""

from __future__ import annotations


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
            from tqdm import tqdm

            # no monitor thread: a Ctrl-C during its exit handler printed a traceback
            tqdm.monitor_interval = 0
            self.bar = tqdm(desc=self.desc, unit=self.unit, total=total, dynamic_ncols=True, disable=None)
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
