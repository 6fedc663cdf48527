"""Background jobs: a separate process, a status JSON, a cancel flag file.

A job lives in a directory ``JOB_DIR``:

* ``job.json``    what to run (written by :func:`start_training`);
* ``status.json`` written atomically by the worker after every reported step
  (:class:`JobStatus` fields);
* ``cancel``      created by :func:`cancel`; the worker stops at the next batch;
* ``log.txt``     the worker's stdout/stderr;
* ``train/``      the training run itself (``best.keras`` + card, ``last.keras``, ``history.csv``).

The job survives page reruns, navigation and even a restart of the dashboard: everything a page
needs is on disk. The worker is ``python -m core.jobs run JOB_DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from core.errors import CropMapError, JobError

JOB_FILE = "job.json"
STATUS_FILE = "status.json"
CANCEL_FILE = "cancel"
LOG_FILE = "log.txt"
TRAIN_SUBDIR = "train"
#: What a job may run: kind -> ``module:function``. Nothing else can be started.
ENTRIES: dict[str, str] = {"train": "core.train:train", "selftest": "core.jobs:selftest_train"}
ACTIVE_STATES = ("starting", "running", "cancelling")
FINAL_STATES = ("done", "failed", "cancelled")


@dataclass
class JobStatus:
    """What a job is doing: ``state`` is one of starting, running, cancelling, done, failed, cancelled."""

    state: str = "starting"
    job_id: str = ""
    kind: str = "train"
    pid: int | None = None
    started: float = 0.0
    updated: float = 0.0
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    logs: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    message: str = ""
    best_model: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def fraction(self) -> float:
        """Progress 0-1 over all epochs and steps."""
        if not self.epochs:
            return 0.0
        steps = max(self.steps, 1)
        done = (max(self.epoch - 1, 0) * steps + min(self.step, steps)) / (self.epochs * steps)
        return 1.0 if self.state == "done" else max(0.0, min(done, 1.0))

    def to_dict(self) -> dict:
        return asdict(self)


def _write_json(path: Path, data: dict) -> None:
    """Write JSON atomically: a temporary file in the same folder, then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def _write_status(job_dir: Path, status: JobStatus) -> None:
    status.updated = time.time()
    _write_json(job_dir / STATUS_FILE, status.to_dict())


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child if it exited
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fall back to signal 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_job(kind: str, params: dict, job_dir: str | os.PathLike, python: str | None = None, note: str = "") -> str:
    """Start ``kind`` (a key of :data:`ENTRIES`) with keyword ``params`` in a new process;
    ``note`` is a sentence for the user, kept with the job (:func:`job_note`).

    Returns the job id.

    Raises:
        JobError: if the kind is unknown, a job is already active in ``job_dir``, or the process
            cannot be started.
    """
    if kind not in ENTRIES:
        raise JobError(f"unknown job kind {kind!r}; known: {', '.join(ENTRIES)}")
    job_dir = Path(job_dir)
    if (job_dir / STATUS_FILE).exists() and status(job_dir).active:
        raise JobError(f"a job is already running in {job_dir}; cancel it or wait for it to finish")
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / CANCEL_FILE).unlink(missing_ok=True)
    job_id = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    _write_json(job_dir / JOB_FILE, {"kind": kind, "job_id": job_id, "params": params, "note": note})
    st = JobStatus(state="starting", job_id=job_id, kind=kind, started=time.time(), message="starting the worker process")
    _write_status(job_dir, st)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    try:
        with open(job_dir / LOG_FILE, "ab") as log:
            proc = subprocess.Popen(
                [python or sys.executable, "-m", "core.jobs", "run", str(job_dir.resolve())],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(root),
                env=env,
                start_new_session=True,
            )
    except OSError as err:
        st.state, st.message = "failed", f"cannot start the worker: {err}"
        _write_status(job_dir, st)
        raise JobError(st.message) from None
    # The worker rewrites status.json as soon as it runs; record the pid unless it already did.
    current = status(job_dir)
    if current.pid is None and current.state == "starting":
        current.pid = proc.pid
        _write_status(job_dir, current)
    return job_id


def start_training(
    train_data: Sequence[str],
    val_data: Sequence[str],
    job_dir: str | os.PathLike,
    label_map: str = "cdl",
    config: dict | None = None,
    note: str = "",
) -> str:
    """Start ``core.train.train`` in the background; the run lands in ``job_dir/train``.

    ``train_data``/``val_data`` are what :func:`core.train.train` accepts (folders or
    ``IMAGE:LABELS`` pairs); ``config`` holds :class:`core.config.TrainConfig` fields.

    Raises:
        ConfigError: if ``config`` is invalid (checked before anything starts).
        JobError: as :func:`start_job`.
    """
    from core.config import TrainConfig

    TrainConfig(**(config or {}))  # validate now, in the caller's process
    params = {"train_data": list(train_data), "val_data": list(val_data), "label_map": label_map, "config": config or {}}
    return start_job("train", params, job_dir, note=note)


def status(job_dir: str | os.PathLike) -> JobStatus:
    """The job's current status. A job whose process died without a final status is reported
    as failed (with the end of its log).

    Raises:
        JobError: if ``job_dir`` holds no job.
    """
    job_dir = Path(job_dir)
    path = job_dir / STATUS_FILE
    if not path.exists():
        raise JobError(f"no job in {job_dir}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError) as err:
        raise JobError(f"the status of the job in {job_dir} is unreadable ({err})") from None
    known = {k: v for k, v in data.items() if k in JobStatus.__dataclass_fields__}
    st = JobStatus(**known)
    if st.active and st.pid is not None and not _pid_alive(st.pid):
        st.state = "failed"
        st.message = "the worker process exited unexpectedly: " + _log_tail(job_dir)
    return st


def job_note(job_dir: str | os.PathLike) -> str:
    """The note given when the job was started ("" if none or unreadable)."""
    try:
        return str(json.loads((Path(job_dir) / JOB_FILE).read_text()).get("note", ""))
    except (OSError, json.JSONDecodeError, AttributeError):
        return ""


def find_jobs(root: str | os.PathLike) -> list[tuple[Path, JobStatus]]:
    """Every job in the folders directly under ``root``, newest first (by start time); folders
    without a readable status are left out. Lets a page find its jobs again after a reload."""
    found = []
    for path in Path(root).glob("*/" + STATUS_FILE):
        try:
            found.append((path.parent, status(path.parent)))
        except JobError:
            continue
    return sorted(found, key=lambda js: js[1].started, reverse=True)


def active_job(root: str | os.PathLike) -> Path | None:
    """The folder of a job under ``root`` that is still starting, running or cancelling, or None."""
    return next((d for d, st in find_jobs(root) if st.active), None)


def _log_tail(job_dir: Path, lines: int = 3) -> str:
    try:
        text = (job_dir / LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def cancel(job_dir: str | os.PathLike, terminate_after_s: float | None = None) -> None:
    """Ask the job to stop (flag file); with ``terminate_after_s``, send SIGTERM to its process
    group if it is still alive after that many seconds.

    Raises:
        JobError: if ``job_dir`` holds no job.
    """
    job_dir = Path(job_dir)
    st = status(job_dir)
    (job_dir / CANCEL_FILE).write_text(str(time.time()))
    if st.active and st.state != "cancelling":
        st.state, st.message = "cancelling", "cancel requested; stopping after the current batch"
        _write_status(job_dir, st)
    if terminate_after_s is not None and st.pid:
        deadline = time.time() + terminate_after_s
        while time.time() < deadline and _pid_alive(st.pid):
            time.sleep(0.1)
        if _pid_alive(st.pid):
            try:
                os.killpg(st.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            st = status(job_dir)
            st.state, st.message = "cancelled", "terminated on request"
            _write_status(job_dir, st)


def history(job_dir: str | os.PathLike) -> list[dict]:
    """Per-epoch metrics (floats) of a job, from its status file.

    Raises:
        JobError: if ``job_dir`` holds no job.
    """
    return [dict(h) for h in status(job_dir).history]


# ---------------------------------------------------------------------- the worker
class _Cancelled(Exception):
    pass


def selftest_train(epochs: int = 3, steps: int = 4, delay: float = 0.05, fail: bool = False,
                   progress: Callable[[dict], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, run_dir: str | None = None) -> dict:
    """A stand-in trainer with no TensorFlow (for tests and demos): reports fake epochs.

    Raises:
        JobError: if ``fail`` is set.
    """
    for epoch in range(1, epochs + 1):
        for step in range(1, steps + 1):
            time.sleep(delay)
            if should_stop and should_stop():
                return {"stopped": "cancelled"}
            if progress:
                progress({"event": "batch", "epoch": epoch, "epochs": epochs, "step": step, "steps": steps,
                          "logs": {"loss": 1.0 / (epoch + step)}})
        if fail:
            raise JobError("selftest failure requested")
        if progress:
            progress({"event": "epoch", "epoch": epoch, "epochs": epochs, "step": steps, "steps": steps,
                      "logs": {"loss": 1.0 / epoch, "val_loss": 1.2 / epoch, "iou": 0.5, "val_iou": 0.4 + 0.1 * epoch / epochs}})
    return {"stopped": "completed"}


def _import_entry(spec: str) -> Callable[..., Any]:
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def run(job_dir: str | os.PathLike) -> int:
    """Run the job described in ``job_dir/job.json`` in this process; returns an exit code."""
    job_dir = Path(job_dir)
    spec = json.loads((job_dir / JOB_FILE).read_text())
    st = status(job_dir)
    st.state, st.pid, st.message = "running", os.getpid(), "loading data and building the model"
    _write_status(job_dir, st)
    flag = job_dir / CANCEL_FILE

    def should_stop() -> bool:
        return flag.exists()

    def progress(event: dict) -> None:
        st.epoch = int(event.get("epoch", st.epoch))
        st.epochs = int(event.get("epochs", st.epochs))
        st.step = int(event.get("step", st.step))
        st.steps = int(event.get("steps", st.steps))
        logs = {k: float(v) for k, v in (event.get("logs") or {}).items() if isinstance(v, (int, float))}
        st.logs = logs
        if event.get("event") == "epoch":
            st.history.append({"epoch": st.epoch, **logs})
        if st.state == "running":
            st.message = f"epoch {st.epoch}/{st.epochs}, step {st.step}/{st.steps}"
        if should_stop():
            st.state = "cancelling"
        _write_status(job_dir, st)

    def on_term(signum: int, frame: Any) -> None:
        raise _Cancelled()

    signal.signal(signal.SIGTERM, on_term)
    kind, params = spec["kind"], dict(spec["params"])
    try:
        fn = _import_entry(ENTRIES[kind])
        if kind == "train":
            from core.config import TrainConfig

            out = job_dir / TRAIN_SUBDIR
            result = fn(
                TrainConfig(**params.get("config", {})),
                params["train_data"],
                params["val_data"],
                out,
                label_map=params.get("label_map", "cdl"),
                overwrite=True,
                progress=progress,
                should_stop=should_stop,
                command=f"dashboard training job {spec['job_id']}",
            )
            stopped = getattr(result, "stopped", "completed")
            best = out / "best.keras"
            st.best_model = str(best) if best.exists() else None
        else:
            result = fn(progress=progress, should_stop=should_stop, run_dir=str(job_dir), **params)
            stopped = result.get("stopped", "completed") if isinstance(result, dict) else "completed"
    except _Cancelled:
        st.state, st.message = "cancelled", "terminated on request"
        _write_status(job_dir, st)
        return 1
    except CropMapError as err:
        st.state, st.message = "failed", str(err)
        _write_status(job_dir, st)
        return 1
    except Exception as err:  # noqa: BLE001 - the worker must record any failure before it exits
        st.state, st.message = "failed", f"training crashed: {type(err).__name__}: {err} (see {job_dir / LOG_FILE})"
        _write_status(job_dir, st)
        raise
    if stopped == "cancelled" or should_stop():
        st.state, st.message = "cancelled", f"cancelled after epoch {st.epoch}; the best checkpoint so far is kept"
    else:
        st.state = "done"
        st.message = f"finished after {st.epoch} epoch(s) ({stopped.replace('_', ' ')})"
    _write_status(job_dir, st)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.jobs", description="Run a background job (used by the dashboard).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="run the job in JOB_DIR")
    p_run.add_argument("job_dir")
    args = parser.parse_args(argv)
    return run(args.job_dir)


if __name__ == "__main__":
    sys.exit(main())
