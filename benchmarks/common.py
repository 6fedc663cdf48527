"""Helpers shared by the benchmark scripts: timing, machine description, results files."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
RESULTS = Path(__file__).resolve().parent / "results"
AGNET = Path(os.environ.get("AGNET_DATA", ROOT.parent / "shared" / "data" / "agnet"))


#: Source of ``hwm()``, the peak resident memory in MB of the process it runs in, for the child
#: processes benchmarks measure: VmHWM from /proc/self/status (ru_maxrss carries over the parent's
#: RSS at fork).
HWM_CODE = '''def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
'''


def machine() -> dict:
    import tensorflow as tf

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def timeit(fn, repeat: int = 3, warmup: int = 1) -> float:
    """Best-of-``repeat`` seconds for ``fn()`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2))
    print(json.dumps(data, indent=2))
    return path


def before_now_args(doc: str, runs: int, runs_help: str):
    """The options of a page benchmark over the sample repeated N x N times, now against an earlier
    commit (``--repeat``, ``--before``, ``--runs`` defaulting to ``runs``), parsed from the command line."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=4, help="the sample repeated N x N times (4: 16.8 Mpx)")
    ap.add_argument("--before", default=None, help="an earlier commit to compare with (a git worktree of it)")
    ap.add_argument("--runs", type=int, default=runs, help=runs_help)
    return ap.parse_args()


def alternating_runs(before: str | None, folder: Path, runs: int, visit, describe=json.dumps) -> dict[str, list]:
    """``runs`` results of ``visit(root)`` for this checkout ("now") and, with ``before`` (a commit), for a git
    worktree of it made in ``folder`` ("before", first in each round, removed after), alternating so that a
    busy moment of the machine falls on both; each result printed as ``describe`` gives it."""
    import subprocess

    roots = {"now": ROOT}
    if before:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder / "before"), before],
                       check=True, capture_output=True)
        roots = {"before": folder / "before", "now": ROOT}
    try:
        out: dict[str, list] = {name: [] for name in roots}
        for _ in range(runs):
            for name, root in roots.items():
                out[name].append(visit(root))
                print(name, describe(out[name][-1]), flush=True)
        return out
    finally:
        if before:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder / "before")],
                           capture_output=True)
