"""Background jobs: a separate process, a status JSON, a cancel flag file.

A job lives in a directory ``JOB_DIR``:

* ``job.json``    what to run, created exclusively by :func:`start_job`: it claims the folder, so a
  folder holds at most one job ever;
* ``status.json`` :class:`JobStatus` fields, written atomically. :func:`start_job` writes the first
  one ("starting") before the worker exists; after that only the worker writes it;
* ``pid``         the worker's process id, written by :func:`start_job` once the process exists;
* ``cancel``      created by :func:`cancel`; the worker stops at the next batch;
* ``log.txt``     the worker's stdout/stderr;
* ``train/``      a training job's run (``best.keras`` + card, ``last.keras``, ``history.csv``;
  :mod:`core.training_jobs` starts, resumes and reads them).

A folder of jobs may also hold ``.start.lock``, taken while a job is started with
``one_at_a_time=True`` (see :func:`start_job`).

:func:`status` combines the file with what it can see: a live worker with a cancel flag is
"cancelling"; an active job whose process has gone is "failed" (or "cancelled" if it was asked to
stop). Nothing but the worker rewrites the status, so a final state it wrote is never overwritten.

The job survives page reruns, navigation and even a restart of the dashboard: everything a page
needs is on disk. The worker is ``python -m core.jobs run JOB_DIR``.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from core.config import TrainConfig, finite_number
from core.errors import CropMapError, JobError
from core.workdir import JOB_SPEC as JOB_FILE

STATUS_FILE = "status.json"
CANCEL_FILE = "cancel"
LOG_FILE = "log.txt"
PID_FILE = "pid"
LOCK_FILE = ".start.lock"
#: How long :func:`start_job` waits for another start in the same jobs folder to finish.
LOCK_TIMEOUT_S = 30.0
#: How long :func:`cancel` waits for a worker to exit after SIGTERM before it sends SIGKILL (a worker busy
#: in TensorFlow's own code runs no Python signal handler until it comes back: the page waited 10 s)
TERM_GRACE_S = 3.0
#: A job still "starting" this long with no worker id recorded is taken as failed (the launcher died).
START_TIMEOUT_S = 60.0
#: How long an empty /proc command line (a process in the middle of its exec) is read again.
EXEC_SETTLE_S = 0.5
TRAIN_SUBDIR = "train"
#: What a job may run: kind -> ``module:function``. Nothing else can be started.
ENTRIES: dict[str, str] = {"train": "core.train:train", "selftest": "core.jobs:selftest_train"}
ACTIVE_STATES = ("starting", "running", "cancelling")
#: the fullest a running job's progress bar gets: full once it has ended
ACTIVE_MOST = 0.99
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
        if self.state == "done":
            return 1.0
        if not self.active:  # cancelled or failed: the epochs it finished, not the one it broke off
            return min(len(self.history) / self.epochs, 1.0)
        steps = max(self.steps, 1)
        done = (max(self.epoch - 1, 0) * steps + min(self.step, steps)) / (self.epochs * steps)
        # a resumed run starts at the epochs it finished before (its bar went back to the last of them), and
        # stays short of the end until it has ended (it was full while the last epoch's validation ran)
        done = max(done, len(self.history) / self.epochs)
        return max(0.0, min(done, ACTIVE_MOST))

    def progress_text(self) -> str:
        """One line for a progress bar: the epoch and its metrics while it runs; the finished
        epochs and the last finished epoch's metrics once it has stopped."""
        of = self.epochs or "?"
        if self.active:
            if self.epoch and not self.step and self.epoch <= len(self.history):  # (resumed, before its next epoch)
                text = f"{self.state}: loading data before epoch {self.epoch + 1}/{of}"
            else:
                text = f"{self.state}: " + (f"epoch {self.epoch}/{of}" if self.epoch else "loading data")
            logs = self.logs if self.epoch else {}
            parts = [text, *_metric_parts(logs)]
            # within an epoch (training figures only), the validation figures of the last one finished
            last = self.history[-1] if self.history and not any(k.startswith("val_") for k in logs) else {}
            val = [f"{name} {float(last[key]):.3f}" for key, name in (("val_loss", "loss"), ("val_iou", "IoU"))
                   if last.get(key) is not None]
            if val:
                parts.append("validation after the last epoch: " + ", ".join(val))
            return ", ".join(parts)
        finished = len(self.history) if self.state != "done" else self.epoch
        text = f"{self.state}: {finished} of {of} epoch{'s' if of != 1 else ''} finished"
        logs = self.history[-1] if self.history else {}
        best = self.best()
        told = ([f"best (the checkpoint kept): epoch {best['epoch']}",
                 *_metric_parts({k: v for k, v in best.items() if k.startswith("val_")})]
                if best and best is not self.history[-1] else [])
        return ", ".join([text, *_metric_parts(logs), *told])

    def best(self) -> dict | None:
        """The finished epoch whose checkpoint is the best one (``best.keras``: the lowest validation
        loss, the first of equal ones), or None before one has finished with a validation loss."""
        # (an epoch whose validation loss is NaN is never kept: Keras compares it as no better)
        rows = [h for h in self.history if finite_number(h.get("val_loss")) and "epoch" in h]
        return min(rows, key=lambda h: float(h["val_loss"])) if rows else None

    def best_words(self, iou: str = "val IoU") -> str:
        """Which checkpoint :meth:`best` is, for a button or a note: " (epoch 3, val IoU 0.697)" (its IoU
        named ``iou``), " (epoch 3)" without one, "" before one has finished."""
        kept = self.best()
        if kept is None:
            return ""
        score = f", {iou} {float(kept['val_iou']):.3f}" if kept.get("val_iou") is not None else ""
        return f" (epoch {kept['epoch']}{score})"

    def to_dict(self) -> dict:
        return asdict(self)


def _metric_parts(logs: dict) -> list[str]:
    """The loss and IoU of an epoch's logs as people read them, training first and validation in
    brackets: ``["loss 0.412 (val 0.455)", "IoU 0.710 (val 0.680)"]``; metrics not in the logs left out."""
    parts = []
    for key, name in (("loss", "loss"), ("iou", "IoU")):
        train, val = logs.get(key), logs.get(f"val_{key}")
        if train is not None:
            parts.append(f"{name} {float(train):.3f}" + ("" if val is None else f" (val {float(val):.3f})"))
        elif val is not None:
            parts.append(f"val {name} {float(val):.3f}")
    return parts


def _write_text(path: Path, text: str) -> None:
    """Write a file atomically (:func:`core.files.write_bytes_whole`: a temporary name unique per
    call, as dashboard sessions are threads of one process, then a rename)."""
    from core.files import write_bytes_whole

    write_bytes_whole(path, text.encode("utf-8"))


def _write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (see :func:`_write_text`)."""
    _write_text(path, json.dumps(data, indent=1, default=str))


def _write_status(job_dir: Path, status: JobStatus) -> None:
    status.updated = time.time()
    _write_json(job_dir / STATUS_FILE, status.to_dict())


def _pid_alive(pid: int | None, job_dir: Path | None = None) -> bool:
    """Whether process ``pid`` lives (and, given ``job_dir`` and where /proc tells, is that job's
    worker: after a restart the id may belong to another process, or be a thread's id, which
    signal 0 takes for a live process)."""
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
        pass  # alive, another user's: after a restart, the id may have gone to some other user's process
    return _is_worker(pid, job_dir) if job_dir is not None else True


def _cmdline(pid: int) -> list[bytes]:
    """The arguments /proc shows for ``pid``. A process caught in the middle of its exec (the
    launcher has its id, the kernel has not yet set up the new arguments) shows none for a moment:
    that is read again for up to :data:`EXEC_SETTLE_S` seconds rather than taken for some other
    process (a kernel thread's stays empty).

    Raises:
        OSError: if /proc cannot be read for ``pid`` (FileNotFoundError: it is gone).
    """
    deadline = time.monotonic() + EXEC_SETTLE_S
    while True:
        args = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        if args != [b""] or time.monotonic() >= deadline:
            return args
        time.sleep(0.01)


def _is_worker(pid: int, job_dir: Path) -> bool:
    """Whether /proc shows ``pid`` as a running (not zombie) process whose command runs ``job_dir``;
    True where /proc cannot tell (another OS, no permission)."""
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        cmdline = _cmdline(pid)
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # a /proc without it: the process is gone
    except OSError:
        return True
    if stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]:
        return False  # a zombie: exited, not yet reaped by its parent
    try:
        if Path(f"/proc/{pid}/status").read_text().split("Tgid:")[1].split()[0] != str(pid):
            return False  # a thread of some process, not a process
    except (OSError, IndexError):
        pass
    wanted = str(Path(job_dir).resolve()).encode()
    return any(arg == wanted for arg in cmdline)


def new_job_dir(jobs_root: str | os.PathLike) -> Path:
    """A folder name for a new job under ``jobs_root`` that does not exist yet:
    ``job-YYYYmmdd-HHMMSS-xxxxxx`` (a timestamp, so names sort by start, and a random suffix, so
    two starts in the same second differ). The folder is not created. Should two callers still
    get the same name, :func:`start_job` lets only the first one start a job in it."""
    root = Path(jobs_root)
    while True:
        path = root / f"job-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        if not path.exists():
            return path


def job_words(job_dir: str | os.PathLike) -> str:
    """A job as a user knows it: "started 2026-12-06 05:47" (:func:`started_at`), or its folder's name
    where that does not say (a folder's id, "job-20261206-054758-25b360", means nothing to a user)."""
    started = started_at(job_dir)
    return f"started {started}" if started else Path(job_dir).name


def started_at(job_dir: str | os.PathLike) -> str | None:
    """When the job in a folder named by :func:`new_job_dir` started ("YYYY-mm-dd HH:MM", from the
    name: nothing is read), or None for a folder named otherwise."""
    found = re.fullmatch(r"job-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})\d{2}-\w+", Path(job_dir).name)
    if found is None:
        return None
    y, m, d, hh, mm = found.groups()
    return f"{y}-{m}-{d} {hh}:{mm}"


class _StartLock:
    """An exclusive lock on ``root/.start.lock`` (``flock``: it excludes other threads as well as
    other processes, and the system releases it if its holder dies, so it never goes stale)."""

    def __init__(self, root: Path, timeout: float | None = None) -> None:
        self.path, self.fd = root / LOCK_FILE, -1
        self.timeout = LOCK_TIMEOUT_S if timeout is None else timeout

    def __enter__(self) -> "_StartLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as err:
            raise JobError(f"cannot create {self.path} ({err}); check that the jobs folder is writable") from None
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    raise JobError(f"another job is being started in {self.path.parent} and has not finished "
                                   f"starting after {self.timeout:g} s; try again in a moment") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _claim(job_dir: Path, spec: dict) -> None:
    """Create ``job_dir/job.json`` exclusively (O_CREAT|O_EXCL): of two starts in one folder, only
    one gets past this point; the other's files never touch the first job's."""
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise JobError(f"cannot create the job folder {job_dir} ({err}); choose a folder that is not a file, "
                       f"in a writable place") from None
    try:
        fd = os.open(job_dir / JOB_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            st = status(job_dir)
        except JobError:
            st = None
        if st is None:  # claimed, no status yet: another start in this folder is under way
            raise JobError(f"a job is already being started in {job_dir}; wait for it, or start the new job in "
                           f"a new folder (core.jobs.new_job_dir gives a free name)") from None
        if st.active:
            raise JobError(f"a job is already running in {job_dir}; cancel it or wait for it to finish") from None
        raise JobError(f"the folder {job_dir} already holds a job ({st.state}); start the new job in a new "
                       f"folder (core.jobs.new_job_dir gives a free name)") from None
    except OSError as err:
        raise JobError(f"cannot write {job_dir / JOB_FILE} ({err}); check that the folder is writable") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(spec, indent=1, default=str))


def start_job(kind: str, params: dict, job_dir: str | os.PathLike, python: str | None = None, note: str = "",
              one_at_a_time: bool = False, cwd: str | os.PathLike | None = None) -> str:
    """Start ``kind`` (a key of :data:`ENTRIES`) with keyword ``params`` in a new process;
    ``note`` is a sentence for the user, kept with the job (:func:`job_note`). The process works in
    ``cwd`` (by default this process's working folder: relative paths in ``params`` are the
    caller's), kept with the job for a resume.

    ``job_dir`` may exist (e.g. holding data prepared for the job) but must not hold a job yet;
    :func:`new_job_dir` gives a fresh name. With ``one_at_a_time``, the job is refused while any job
    in ``job_dir``'s parent folder (the jobs folder) is active; that check and the start are atomic
    (a lock in the jobs folder), so two sessions cannot both get past it.

    Returns the job id.

    Raises:
        JobError: if the kind is unknown, ``job_dir`` already holds a job, a job is active in the
            jobs folder (with ``one_at_a_time``), or the process cannot be started.
    """
    if kind not in ENTRIES:
        raise JobError(f"unknown job kind {kind!r}; known: {', '.join(ENTRIES)}")
    job_dir = Path(job_dir)
    cwd = str(Path(cwd if cwd is not None else os.getcwd()).resolve())
    if not one_at_a_time:
        return _start(kind, params, job_dir, python, note, cwd)
    with _StartLock(job_dir.parent):
        refuse_while_running(job_dir.parent)  # (said as a user knows the job: a folder's path meant nothing)
        return _start(kind, params, job_dir, python, note, cwd)


def _planned_epochs(kind: str, params: dict) -> int:
    """The epochs a job is to run, from its parameters (0 when they do not say): a job cancelled
    before its first epoch reads "0 of 3 epochs", not "0 of ?"."""
    given = params.get("config", {}).get("epochs", TrainConfig.epochs) if kind == "train" else params.get("epochs", 0)
    return given if isinstance(given, int) and given > 0 else 0


def _start(kind: str, params: dict, job_dir: Path, python: str | None, note: str, cwd: str) -> str:
    job_id = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    _claim(job_dir, {"kind": kind, "job_id": job_id, "params": params, "note": note, "cwd": cwd})
    (job_dir / CANCEL_FILE).unlink(missing_ok=True)
    st = JobStatus(state="starting", job_id=job_id, kind=kind, started=time.time(), epochs=_planned_epochs(kind, params),
                   message="starting the worker process")
    if kind == "train" and params.get("resume"):  # the finished epochs of the run it continues, shown from the start
        st.history = _run_history(job_dir / TRAIN_SUBDIR)
        st.epoch = len(st.history)
    _write_status(job_dir, st)  # before the worker exists: from now on only the worker writes it
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
                cwd=cwd if Path(cwd).is_dir() else str(root),  # (the folder of the data's relative paths)
                env=env,
                start_new_session=True,
            )
    except OSError as err:
        st.state, st.message = "failed", f"cannot start the worker ({err}); check the Python interpreter and the disk"
        _write_status(job_dir, st)  # still no worker: this is the only status writer
        raise JobError(st.message) from None
    # The pid goes in its own file: rewriting status.json here could overwrite what the worker
    # has written meanwhile. status() reads it until the worker records its pid itself.
    _write_text(job_dir / PID_FILE, str(proc.pid))
    # reaped when it ends (a finished or cancelled worker stayed a zombie of the server until it exited)
    threading.Thread(target=proc.wait, name=f"reap {job_id}", daemon=True).start()
    return job_id


def refuse_while_running(jobs_root: str | os.PathLike) -> None:
    """Raises JobError when a job is running under ``jobs_root`` (checked before costly preparation;
    :func:`start_job` checks again as it starts)."""
    running = active_job(jobs_root)
    if running is not None:
        raise JobError(f"a training job is already running ({job_words(running)}); cancel it or wait for it to finish")


def job_spec(job_dir: str | os.PathLike) -> dict:
    """What a job was started with (its ``job.json``: kind, params, note); {} where it has none or it
    cannot be read (damaged, not UTF-8, not a JSON object). Never raises."""
    try:
        spec = json.loads((Path(job_dir) / JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # (UnicodeDecodeError and JSONDecodeError are ValueErrors)
        return {}
    return spec if isinstance(spec, dict) else {}


def _run_history(run_dir: Path) -> list[dict]:
    """A run's ``history.csv`` as a job's history (numbers; ``epoch`` an int); [] when unreadable."""
    import csv

    try:
        with (run_dir / "history.csv").open(newline="") as f:
            return [{k: int(v) if k == "epoch" else float(v) for k, v in row.items() if v not in (None, "")}
                    for row in csv.DictReader(f)]
    except (OSError, ValueError, csv.Error):
        return []


def _read_status(job_dir: Path) -> JobStatus:
    """The status file as written, with nothing inferred."""
    path = job_dir / STATUS_FILE
    if not path.exists():
        raise JobError(f"no job in {job_dir}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as err:
        # in words (the codec's "can't decode byte 0xff in position 0" reached the sidebar)
        why = (err.strerror or "cannot be read") if isinstance(err, OSError) else (
            "not text: damaged" if isinstance(err, UnicodeDecodeError) else "not JSON: damaged or cut short")
        raise JobError(f"the status of the job in {job_dir} is unreadable ({why}); its files in that folder are "
                       "as the job left them") from None
    problem = _status_problem(data)
    if problem:
        raise JobError(f"the status of the job in {job_dir} is damaged ({problem}); its files in that folder are "
                       "as the job left them")
    known = {k: v for k, v in data.items() if k in JobStatus.__dataclass_fields__}
    return JobStatus(**known)


#: The type of each field of a status file (None: null is allowed too).
_STATUS_TYPES: dict[str, tuple[type, ...]] = {
    "state": (str,), "job_id": (str,), "kind": (str,), "message": (str,), "best_model": (str, type(None)),
    "pid": (int, type(None)), "started": (int, float), "updated": (int, float),
    "epoch": (int,), "epochs": (int,), "step": (int,), "steps": (int,), "logs": (dict,), "history": (list,),
}


def _is_number(value: object) -> bool:
    """A number, not a bool (NaN and inf included: a diverging epoch's loss is logged as it was)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _status_problem(data: object) -> str | None:
    """What makes ``data`` (a parsed status file) not a status the worker writes, or None: a field of
    another type, an unknown state, a count or time not a finite number of 0 or more, or an epoch's
    figures that are not numbers."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    defaults = asdict(JobStatus())
    for name, types in _STATUS_TYPES.items():
        value = data.get(name, defaults[name])
        if isinstance(value, bool) or not isinstance(value, types):
            return f"{name} is {value!r}"[:200]
        if isinstance(value, (int, float)) and not (finite_number(value) and value >= 0):
            return f"{name} is {value!r}"
    if data.get("state", defaults["state"]) not in ACTIVE_STATES + FINAL_STATES:
        return f"state is {data['state']!r}"[:200]
    if data.get("pid") is not None and data["pid"] >= 2**31:  # (not a process id: os.kill cannot take it)
        return f"pid is {data['pid']!r}"
    for epoch_logs in [data.get("logs", {}), *data.get("history", [])]:
        if not isinstance(epoch_logs, dict) or not all(_is_number(v) for v in epoch_logs.values()):
            return f"an epoch's figures are {epoch_logs!r}"[:200]
    for row in data.get("history", []):
        if "epoch" in row and (not isinstance(row["epoch"], int) or row["epoch"] < 1):  # (a chart's whole epochs)
            return f"an epoch's number is {row['epoch']!r}"
    return None


def _launched_pid(job_dir: Path) -> int | None:
    try:
        return int((job_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def status(job_dir: str | os.PathLike) -> JobStatus:
    """The job's current status. An active job with a cancel request is reported as
    "cancelling"; one whose process died without a final status as failed (with the end of its
    log), or as cancelled if it had been asked to stop.

    Raises:
        JobError: if ``job_dir`` holds no job.
    """
    job_dir = Path(job_dir)
    st = _read_status(job_dir)
    if not st.active:
        return st  # final: the worker's word stands, whatever flag came later
    if st.pid is None:
        st.pid = _launched_pid(job_dir)
    cancel_requested = (job_dir / CANCEL_FILE).exists()
    if st.pid is None and st.state == "starting" and time.time() - (st.started or st.updated or 0) > START_TIMEOUT_S:
        st.state = "failed"  # the launcher died before the worker's id was recorded
        st.message = "the worker never started (the dashboard stopped while starting it): " + _log_tail(job_dir)
    elif st.pid is not None and not _pid_alive(st.pid, job_dir):
        final = _read_status(job_dir)
        if not final.active:  # it wrote its final status and exited after the first read
            return final
        if cancel_requested:  # (ended by the cancel's signal, as a rule: its log says nothing of it)
            st.state = "cancelled"
            tail = _log_tail(job_dir, empty="")
            st.message = ("stopped at your request" +
                          ("; the checkpoints of finished epochs are kept" if st.history else "") +
                          (f" (the end of its log: {tail})" if tail else ""))
        else:
            st.state = "failed"
            st.message = "the worker process exited unexpectedly: " + _log_tail(job_dir)
    elif cancel_requested and st.state != "cancelling":
        st.state, st.message = "cancelling", ("cancel requested; stopping after the current batch" if st.step else
                                              "cancel requested; stopping when the data has loaded")
    return st


def job_note(job_dir: str | os.PathLike) -> str:
    """The note given when the job was started ("" if none or unreadable)."""
    return str(job_spec(job_dir).get("note") or "")


def find_jobs(root: str | os.PathLike) -> list[tuple[Path, JobStatus]]:
    """Every job in the folders directly under ``root``, newest first (by start time); folders
    without a readable status are left out. Lets a page find its jobs again after a reload."""
    found = []
    for path in Path(root).glob("*/" + STATUS_FILE):
        if path.parent.name.startswith("."):  # (a folder being deleted: core.training_jobs.delete_training)
            continue
        try:
            found.append((path.parent, status(path.parent)))
        except JobError:
            continue
    return sorted(found, key=lambda js: js[1].started, reverse=True)


def active_job(root: str | os.PathLike) -> Path | None:
    """The folder of a job under ``root`` that is still starting, running or cancelling, or None."""
    return next((d for d, st in find_jobs(root) if st.active), None)


def _log_tail(job_dir: Path, lines: int = 3,
              empty: str = "no error in its log (it was killed: by the system when memory ran out, or by a user)") -> str:
    """The last ``lines`` lines of the worker's log, without TensorFlow's start-up notices (they
    are no reason for anything); ``empty`` (what the user can make of it) when there is nothing else."""
    from core.tfimport import NOTICES

    try:
        text = (job_dir / LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)" if empty else ""
    text = [line for line in text if line.strip() and not any(n in line for n in NOTICES)]
    return " | ".join(text[-lines:]) or empty


def cancel(job_dir: str | os.PathLike, terminate_after_s: float | None = None) -> None:
    """Ask the job to stop (flag file); with ``terminate_after_s``, send SIGTERM to its process
    group if it is still alive after that many seconds (and SIGKILL if it then ignores SIGTERM for
    :data:`TERM_GRACE_S`). Only the worker writes the status: this never overwrites a state the
    worker reported, such as "done" written just before the request.

    Raises:
        JobError: if ``job_dir`` holds no job, or its worker runs as another user (it cannot be
            signalled; the flag file asks it to stop all the same).
    """
    job_dir = Path(job_dir)
    if not status(job_dir).active:
        return
    (job_dir / CANCEL_FILE).write_text(str(time.time()))
    if terminate_after_s is None:
        return
    deadline = time.monotonic() + terminate_after_s
    st = status(job_dir)
    while st.active and time.monotonic() < deadline:
        time.sleep(0.1)
        st = status(job_dir)
    if not st.active or st.pid is None:
        return
    for sig, wait_s in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(st.pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            raise JobError(f"the training's process {st.pid} runs as another user and cannot be stopped from here; it "
                           "stops by itself shortly (asked to), or stop it as that user") from None
        until = time.monotonic() + wait_s
        while time.monotonic() < until:
            if not _pid_alive(st.pid):
                return  # the worker wrote "cancelled", or status() infers it from the flag
            time.sleep(0.05)


def history(job_dir: str | os.PathLike) -> list[dict]:
    """Per-epoch metrics (floats) of a job, from its status file.

    Raises:
        JobError: if ``job_dir`` holds no job.
    """
    return [dict(h) for h in status(job_dir).history]


# ---------------------------------------------------------------------- the worker
class _Cancelled(BaseException):
    """SIGTERM in the worker ("Stop now", or from outside: a shutdown). A BaseException, as KeyboardInterrupt is: library code
    on the way that wraps any Exception in an error of its own must not turn it into a failure."""


def selftest_train(epochs: int = 3, steps: int = 4, delay: float = 0.05, fail: bool = False,
                   progress: Callable[[dict], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, run_dir: str | None = None,
                   result_file: str | None = None) -> dict:
    """A stand-in trainer with no TensorFlow (for tests and demos): reports fake epochs, and writes its
    result to ``result_file`` where given (a path as a training's data are given: relative to the
    job's working folder).

    Raises:
        JobError: if ``fail`` is set.
    """
    def done(stopped: str) -> dict:
        if result_file is not None:
            Path(result_file).write_text(json.dumps({"stopped": stopped}))
        return {"stopped": stopped}

    for epoch in range(1, epochs + 1):
        for step in range(1, steps + 1):
            time.sleep(delay)
            if should_stop and should_stop():
                return done("cancelled")
            if progress:
                progress({"event": "batch", "epoch": epoch, "epochs": epochs, "step": step, "steps": steps,
                          "logs": {"loss": 1.0 / (epoch + step)}})
        if fail:
            raise JobError("selftest failure requested")
        if progress:
            progress({"event": "epoch", "epoch": epoch, "epochs": epochs, "step": steps, "steps": steps,
                      "logs": {"loss": 1.0 / epoch, "val_loss": 1.2 / epoch, "iou": 0.5, "val_iou": 0.4 + 0.1 * epoch / epochs}})
    return done("completed")


def _import_entry(spec: str) -> Callable[..., Any]:
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def run(job_dir: str | os.PathLike) -> int:
    """Run the job described in ``job_dir/job.json`` in this process; returns an exit code."""
    job_dir = Path(job_dir)
    spec = json.loads((job_dir / JOB_FILE).read_text())
    st = _read_status(job_dir)
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
            # one row per epoch, as history.csv: a resumed run may have dropped a row it had to redo
            st.history = [h for h in st.history if h.get("epoch", 0) < st.epoch] + [{"epoch": st.epoch, **logs}]
        if st.state == "running":
            st.message = f"epoch {st.epoch}/{st.epochs}, step {st.step}/{st.steps}"
        if should_stop():  # (its message said the step it had reached, under a bar that says it too)
            st.state, st.message = "cancelling", "cancel requested; stopping after the current batch"
        _write_status(job_dir, st)

    def on_term(signum: int, frame: Any) -> None:
        raise _Cancelled()

    signal.signal(signal.SIGTERM, on_term)
    kind, params = spec["kind"], dict(spec["params"])
    try:
        if kind == "train":  # without TensorFlow's start-up notices, which would fill the log's tail
            from core.tfimport import import_tensorflow

            import_tensorflow()
        fn = _import_entry(ENTRIES[kind])
        if kind == "train":
            from core.train import train_command

            out = job_dir / TRAIN_SUBDIR
            config = TrainConfig(**params.get("config", {}))
            resume = bool(params.get("resume"))  # (its finished epochs are in the status _start wrote)
            label_map = params.get("label_map", "cdl")
            # the card says how to train the same model again (from the command line), and which job made it
            pixel_size_m = params.get("pixel_size_m")
            command = (train_command(config, params["train_data"], params["val_data"], out, label_map, pixel_size_m)
                       + f"  # dashboard training job {spec['job_id']}")
            result = fn(
                config,
                params["train_data"],
                params["val_data"],
                out,
                label_map=label_map,
                resume=resume,
                overwrite=not resume,
                progress=progress,
                should_stop=should_stop,
                command=command,
                pixel_size_m=pixel_size_m,
                data_text=params.get("data_text"),
            )
            stopped = getattr(result, "stopped", "completed")
            best = out / "best.keras"
            st.best_model = str(best) if best.exists() else None
        else:
            result = fn(progress=progress, should_stop=should_stop, run_dir=str(job_dir), **params)
            stopped = result.get("stopped", "completed") if isinstance(result, dict) else "completed"
    except _Cancelled:  # SIGTERM: "Stop now" (its flag file first), or from outside (a shutdown, a kill)
        st.state, st.message = "cancelled", ("stopped at your request" if should_stop() else
                                             "stopped from outside the dashboard (SIGTERM: a shutdown of the machine, "
                                             "or a kill of the worker process)")
        _write_status(job_dir, st)
        return 1
    except CropMapError as err:
        st.state, st.message = "failed", str(err)
        _write_status(job_dir, st)
        return 1
    except Exception as err:  # noqa: BLE001 - the worker must record any failure before it exits
        machine = _machine_failure(err, job_dir / LOG_FILE)  # a full disk, no memory: said as such (read as a crash)
        st.state, st.message = "failed", machine or f"training crashed: {type(err).__name__}: {err} (see {job_dir / LOG_FILE})"
        _write_status(job_dir, st)
        raise
    if stopped == "cancelled":  # the trainer's word: a cancel that came after the last epoch finished changes nothing
        done = len(st.history)  # st.epoch is the epoch in progress when it was cancelled
        st.state, st.message = "cancelled", (f"cancelled after epoch {done}; the best checkpoint so far is kept" if done
                                             else "cancelled before the first epoch ended; no model was saved")
    else:
        st.state = "done"
        n = f"{st.epoch} epoch{'s' if st.epoch != 1 else ''}"
        st.message = (f"stopped early after {n} of {st.epochs}: the validation loss had stopped improving; the best "
                      "checkpoint is kept" if stopped == "early_stopping" else
                      f"finished: all {n} done" if st.epoch != 1 else "finished: its one epoch done")
    _write_status(job_dir, st)
    return 0


#: the errors of a disk that is full or cannot be written: the machine's, not a bug's (a file that cannot be
#: read, EACCES, is said as a crash with its log: the disk's advice would be wrong for it)
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _machine_failure(err: BaseException, log: Path) -> str | None:
    """A training's failure of the machine in words (:func:`core.errors.environment_error`: a disk
    that is full or cannot be written, no memory, TensorFlow's own out-of-memory; ``log``: the
    worker's log, named), or None (anything else, a missing or corrupt file too: said as a crash)."""
    from core.errors import environment_error

    advice = "use a smaller batch size or patch size, or a smaller region"
    if type(err).__name__ == "ResourceExhaustedError" or (isinstance(err, OSError) and err.errno == errno.ENOMEM):
        said = f"out of memory while training; {advice}"  # (TensorFlow's own; any other of its errors may be a bug)
    elif isinstance(err, MemoryError) or (isinstance(err, OSError) and err.errno in _DISK_ERRNOS):
        said = environment_error(err, advice)
    else:
        return None
    return f"{said} (its log: {log})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.jobs", description="Run a background job (used by the dashboard).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="run the job in JOB_DIR")
    p_run.add_argument("job_dir")
    args = parser.parse_args(argv)
    return run(args.job_dir)


if __name__ == "__main__":
    sys.exit(main())
