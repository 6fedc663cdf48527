"""core.jobs: background process, status file protocol, cancel flag, failures."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from core import jobs
from core.config import TrainConfig
from core.errors import JobError


def wait_for(job_dir: Path, states: tuple[str, ...], timeout: float = 60) -> jobs.JobStatus:
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = jobs.status(job_dir)
        if st.state in states:
            return st
        time.sleep(0.1)
    raise AssertionError(f"job stuck in {jobs.status(job_dir)}")


def _selftest_job_dir(job_dir: Path) -> Path:
    """A job folder as start_job leaves it, for :func:`jobs.run` to be called in this process."""
    job_dir.mkdir()
    (job_dir / "job.json").write_text(json.dumps({"kind": "selftest", "job_id": "x", "params": {}, "note": ""}))
    jobs._write_status(job_dir, jobs.JobStatus(state="starting", job_id="x", kind="selftest", started=time.time()))
    return job_dir


def _run_in_process(job_dir: Path, trainer, monkeypatch) -> jobs.JobStatus:
    """Run the job in ``job_dir`` here with ``trainer`` as its entry point; its final status."""
    monkeypatch.setattr(jobs, "_import_entry", lambda spec: trainer)
    old = signal.getsignal(signal.SIGTERM)
    try:
        jobs.run(job_dir)
    finally:
        signal.signal(signal.SIGTERM, old)
    return jobs.status(job_dir)


def test_selftest_job_runs_to_completion(tmp_path):
    job_id = jobs.start_job("selftest", {"epochs": 3, "steps": 2, "delay": 0.01}, tmp_path / "j")
    assert job_id.startswith("selftest-")
    st = wait_for(tmp_path / "j", ("done", "failed"))
    assert st.state == "done", st.message
    assert st.epoch == 3 and st.fraction == 1.0
    assert [h["epoch"] for h in st.history] == [1, 2, 3]
    assert "val_iou" in st.history[-1]
    data = json.loads((tmp_path / "j" / "status.json").read_text())
    assert data["job_id"] == job_id


def test_a_job_works_in_its_callers_folder(tmp_path, monkeypatch):
    """The worker ran in the repository's folder: a job given relative paths (patches the user named from
    their own folder, a dashboard started elsewhere) failed with 'no TFRecord files at p1/...' though they
    were there. It works where it was started from, kept with the job for a resume."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0, "result_file": "out.json"}, tmp_path / "j")
    assert wait_for(tmp_path / "j", ("done", "failed")).state == "done"
    assert json.loads((here / "out.json").read_text()) == {"stopped": "completed"}
    assert jobs.job_spec(tmp_path / "j")["cwd"] == str(here.resolve())


def test_cancel_by_flag(tmp_path):
    job_dir = tmp_path / "j"
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.05}, job_dir)
    wait_for(job_dir, ("running",))
    jobs.cancel(job_dir)
    st = wait_for(job_dir, ("cancelled", "done", "failed"))
    assert st.state == "cancelled"
    assert st.epoch < 50
    done = len(st.history)  # the message names the last finished epoch, not the one cancelled
    assert (f"cancelled after epoch {done};" if done else "before the first epoch ended") in st.message


def test_a_worker_that_ended_is_reaped_not_left_a_zombie(tmp_path):
    """A cancelled (or finished) worker stayed <defunct> under the server until the server exited."""
    job_dir = tmp_path / "j"
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.05}, job_dir)
    wait_for(job_dir, ("running",))
    pid = int((job_dir / jobs.PID_FILE).read_text())
    jobs.cancel(job_dir)
    wait_for(job_dir, ("cancelled", "done", "failed"))
    deadline = time.time() + 10
    while Path(f"/proc/{pid}").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), Path(f"/proc/{pid}/status").read_text()[:200]


def test_cancel_by_terminate(tmp_path):
    job_dir = tmp_path / "j"
    jobs.start_job("selftest", {"epochs": 1, "steps": 1000, "delay": 1.0}, job_dir)
    wait_for(job_dir, ("running",))
    jobs.cancel(job_dir, terminate_after_s=0.2)
    st = jobs.status(job_dir)
    assert st.state == "cancelled" and not st.active
    # SIGTERM first: the worker itself wrote its end (a SIGKILL leaves that to status() to infer from the flag)
    assert json.loads((job_dir / "status.json").read_text())["state"] == "cancelled"
    # stopped before its worker said how many epochs: the job's own parameters say it ("0 of ?" was shown)
    assert st.progress_text().startswith("cancelled: 0 of 1 epoch finished")


def test_a_job_knows_its_epochs_before_its_worker_reports():
    assert jobs._planned_epochs("train", {"config": {"epochs": 7}}) == 7
    assert jobs._planned_epochs("train", {"config": {}}) == TrainConfig().epochs
    assert jobs._planned_epochs("selftest", {"epochs": 3}) == 3 and jobs._planned_epochs("selftest", {}) == 0


def test_failure_is_recorded(tmp_path):
    job_dir = tmp_path / "j"
    jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0, "fail": True}, job_dir)
    st = wait_for(job_dir, ("failed", "done"))
    assert st.state == "failed" and "selftest failure requested" in st.message


def test_dead_worker_is_reported_failed(tmp_path):
    job_dir = tmp_path / "j"
    job_dir.mkdir()
    (job_dir / "log.txt").write_text("first line\nsecond line\nTraceback...\n  File x\nMemoryError\n")
    status = jobs.JobStatus(state="running", job_id="x", pid=2**22 + 12345, started=time.time())
    (job_dir / "status.json").write_text(json.dumps(status.to_dict()))
    st = jobs.status(job_dir)
    assert st.state == "failed" and st.message.endswith("Traceback... |   File x | MemoryError")  # the log's end
    assert "first line" not in st.message
    with pytest.raises(JobError):
        jobs.cancel(tmp_path / "no job here")


def test_a_worker_that_finished_while_it_was_checked_is_done_not_dead(tmp_path, monkeypatch):
    """The worker writes its final status and exits between status()'s read and its process check:
    that is a finished job, not one that died (CI once saw a finished selftest job as failed)."""
    job_dir = tmp_path / "j"
    job_dir.mkdir()
    running = jobs.JobStatus(state="running", job_id="x", pid=2**22 + 12345, started=time.time())
    (job_dir / "status.json").write_text(json.dumps(running.to_dict()))

    def finishes_then_gone(pid, job_dir_=None):
        done = jobs.JobStatus(state="done", job_id="x", pid=pid, started=running.started, message="finished")
        (job_dir / "status.json").write_text(json.dumps(done.to_dict()))
        return False

    monkeypatch.setattr(jobs, "_pid_alive", finishes_then_gone)
    st = jobs.status(job_dir)
    assert st.state == "done" and st.message == "finished"


def test_refuses_second_job_and_unknown_kind(tmp_path):
    job_dir = tmp_path / "j"
    jobs.start_job("selftest", {"epochs": 20, "steps": 10, "delay": 0.05}, job_dir)
    with pytest.raises(JobError, match="already running"):
        jobs.start_job("selftest", {}, job_dir)
    jobs.cancel(job_dir, terminate_after_s=5)
    with pytest.raises(JobError, match="unknown job kind"):
        jobs.start_job("rm -rf", {}, tmp_path / "k")
    with pytest.raises(JobError, match="no job"):
        jobs.status(tmp_path / "nothing")


def test_jobs_are_found_again_with_their_note(tmp_path):
    """What a page needs after a browser reload: the newest job, whether one is active, its note."""
    assert jobs.find_jobs(tmp_path) == [] and jobs.active_job(tmp_path) is None
    jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0}, tmp_path / "a", note="first")
    wait_for(tmp_path / "a", ("done",))
    (tmp_path / "junk").mkdir()  # a folder without a job is ignored
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "status.json").write_text("{not json")
    assert jobs.active_job(tmp_path) is None
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.05}, tmp_path / "b", note="second")
    try:
        found = jobs.find_jobs(tmp_path)
        assert [d.name for d, _ in found] == ["b", "a"]  # newest first
        assert jobs.active_job(tmp_path) == tmp_path / "b"
        assert jobs.job_note(tmp_path / "b") == "second" and jobs.job_note(tmp_path / "junk") == ""
    finally:
        jobs.cancel(tmp_path / "b", terminate_after_s=5)
    assert jobs.active_job(tmp_path) is None


def _finished_status(**changes) -> dict:
    """A done training job's status as the worker writes it, with ``changes``."""
    st = jobs.JobStatus(state="done", job_id="x", started=1.0, updated=2.0, epoch=2, epochs=2, step=4, steps=4,
                        logs={"loss": 0.4}, history=[{"epoch": 1, "loss": 0.5, "val_loss": 0.45},
                                                     {"epoch": 2, "loss": 0.4, "val_loss": float("nan")}])
    return {**asdict(st), **changes}


@pytest.mark.parametrize("changes, said", [
    ({"history": [{"epoch": 1, "loss": "0.5"}]}, "an epoch's figures"),  # (float() was fine, a chart was not)
    ({"history": [{"epoch": float("nan"), "loss": 0.5}]}, "an epoch's number is nan"),  # (int(nan) in the chart)
    ({"history": "x"}, "history is 'x'"),
    ({"epochs": "3"}, "epochs is '3'"),  # (a TypeError in the progress bar's fraction)
    ({"epoch": True}, "epoch is True"),
    ({"pid": 2**70}, "pid is"),  # (OverflowError in os.kill)
    ({"started": float("inf")}, "started is inf"),
    ({"state": "exploded"}, "state is 'exploded'"),
    ({"logs": [1]}, "logs is [1]"),
    ({"epoch": -1}, "epoch is -1"),  # (counts are 0 or more)
    ({"history": [{"epoch": 0, "loss": 0.5}]}, "an epoch's number is 0"),  # (epochs count from 1)
])
def test_a_damaged_status_is_a_job_error_and_its_job_is_left_out(tmp_path, changes, said):
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "status.json").write_text(json.dumps(_finished_status(**changes)))
    with pytest.raises(JobError, match="status of the job in .* is damaged") as info:
        jobs.status(tmp_path / "j")
    assert said in str(info.value)
    assert jobs.find_jobs(tmp_path) == []  # left out, as an unreadable one


def test_a_status_as_the_worker_writes_it_reads_back(tmp_path):
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "status.json").write_text(json.dumps(_finished_status()))  # NaN loss of a diverging epoch
    st = jobs.status(tmp_path / "j")
    assert st.state == "done" and len(st.history) == 2 and st.best()["epoch"] == 1
    (tmp_path / "j" / "status.json").write_text("[]")
    with pytest.raises(JobError, match="a JSON list, not an object"):
        jobs.status(tmp_path / "j")


# ------------------------------------------------------------------ races (several sessions, one process)
def run_together(*fns, timeout: float = 60) -> list:
    """Run ``fns`` in threads released at once by a barrier; returns each one's result or exception."""
    barrier = threading.Barrier(len(fns))
    out: list = [None] * len(fns)

    def go(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fns[i]()
        except Exception as err:  # noqa: BLE001 - the test inspects it
            out[i] = err

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return out


def test_cancel_racing_a_finished_job_leaves_it_done(tmp_path, monkeypatch):
    """cancel() reads an active status, the worker then finishes: the job must stay "done" (it was
    overwritten with "cancelling" and then, the process gone, reported as failed)."""
    job_dir = tmp_path / "j"
    jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0}, job_dir)
    done = wait_for(job_dir, ("done", "failed", "cancelled"))
    assert done.state == "done", done.message
    real_status = jobs.status
    # what cancel() saw a moment before the worker wrote "done"
    stale = jobs.JobStatus(**{**done.to_dict(), "state": "running", "message": "epoch 1/1"})
    monkeypatch.setattr(jobs, "status", lambda d: stale)
    jobs.cancel(job_dir)
    monkeypatch.setattr(jobs, "status", real_status)
    assert json.loads((job_dir / "status.json").read_text())["state"] == "done"
    st = jobs.status(job_dir)
    assert st.state == "done" and not st.active and st.message == done.message


def test_cancel_only_requests_and_status_reports_it(tmp_path, request):
    """cancel() never writes the status file: status() shows "cancelling" while the worker lives,
    and "cancelled" (not failed) if it is gone without having written its final state."""
    job_dir = tmp_path / "j"
    job_dir.mkdir()
    # a stand-in worker: a process whose command names the job folder, as the real one's does
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(job_dir.resolve())])
    request.addfinalizer(worker.kill)
    running = jobs.JobStatus(state="running", job_id="x", pid=worker.pid, started=time.time(), message="epoch 1/5")
    (job_dir / "status.json").write_text(json.dumps(running.to_dict()))
    before = (job_dir / "status.json").read_text()
    jobs.cancel(job_dir)  # no terminate_after_s: it only raises the flag
    assert (job_dir / "cancel").exists()
    assert (job_dir / "status.json").read_text() == before
    st = jobs.status(job_dir)
    assert st.state == "cancelling" and st.active and "cancel requested" in st.message
    gone = jobs.JobStatus(**{**running.to_dict(), "pid": 2**22 + 12345})
    (job_dir / "status.json").write_text(json.dumps(gone.to_dict()))
    st = jobs.status(job_dir)
    assert st.state == "cancelled" and not st.active
    # ended by the cancel's signal: said as the user's own request (it guessed at memory or "a user")
    assert st.message == "stopped at your request"  # (no epoch finished: no checkpoint is kept)
    (job_dir / "status.json").write_text(json.dumps({**gone.to_dict(), "history": [{"epoch": 1, "loss": 0.5}]}))
    assert jobs.status(job_dir).message == "stopped at your request; the checkpoints of finished epochs are kept"
    (job_dir / "log.txt").write_text("Traceback ...\nValueError: boom\n")  # a log that says something: given
    assert jobs.status(job_dir).message.endswith("(the end of its log: Traceback ... | ValueError: boom)")


def test_a_machine_failure_in_the_worker_is_said_as_one():
    """A full disk or no memory while training is said with what to do (it read "training crashed: OSError:
    ... (see /path/log.txt)"); any other exception stays a crash, with its log."""
    import errno

    full = OSError(errno.ENOSPC, "No space left on device", "/w/jobs/j/train/last.keras")
    log = Path("/w/jobs/j/log.txt")
    assert jobs._machine_failure(full, log) == ("No space left on device (/w/jobs/j/train/last.keras); check that the "
                                                "folder exists and can be written, and that the disk has space (its log: "
                                                "/w/jobs/j/log.txt)")
    assert jobs._machine_failure(MemoryError(), log).startswith("out of memory; use a smaller batch size")
    # a file missing, a network's failure, a corrupt checkpoint: no disk to check; said as a crash
    assert jobs._machine_failure(OSError(errno.ENOMEM, "Cannot allocate memory"), log).startswith("out of memory while")
    for other in (FileNotFoundError(errno.ENOENT, "No such file"), ConnectionResetError(), TimeoutError(),
                  PermissionError(errno.EACCES, "Permission denied", "/data/image.tif"),  # (a file not readable)
                  OSError("Unable to open file (file signature not found)")):
        assert jobs._machine_failure(other, log) is None

    class ResourceExhaustedError(Exception):  # (TensorFlow's out of memory, by its name)
        pass

    assert jobs._machine_failure(ResourceExhaustedError("OOM when allocating"), log).startswith("out of memory while training")
    assert jobs._machine_failure(ValueError("a bug"), log) is None


def test_a_reused_pid_or_a_lost_start_is_not_a_live_worker(tmp_path, request):
    """After a restart the worker's id can belong to another process (or be a thread's id), and a
    dashboard stopped mid-start leaves "starting" with no id: neither may block training for good."""
    job_dir = tmp_path / "j"
    job_dir.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # alive, not the worker
    request.addfinalizer(other.kill)
    running = jobs.JobStatus(state="running", job_id="x", pid=other.pid, started=time.time(), message="epoch 1/5")
    (job_dir / "status.json").write_text(json.dumps(running.to_dict()))
    st = jobs.status(job_dir)
    assert st.state == "failed" and "exited unexpectedly" in st.message
    thread_ids = [int(t) for t in os.listdir(f"/proc/{os.getpid()}/task") if int(t) != os.getpid()]
    if thread_ids:  # a thread of this process: signal 0 takes it for a live process
        (job_dir / "status.json").write_text(json.dumps({**running.to_dict(), "pid": thread_ids[0]}))
        assert jobs.status(job_dir).state == "failed"
    lost = jobs.JobStatus(state="starting", job_id="x", pid=None, started=time.time() - jobs.START_TIMEOUT_S - 1)
    (job_dir / "status.json").write_text(json.dumps(lost.to_dict()))
    st = jobs.status(job_dir)
    assert st.state == "failed" and "never started" in st.message and not st.active
    fresh = jobs.JobStatus(state="starting", job_id="x", pid=None, started=time.time())
    (job_dir / "status.json").write_text(json.dumps(fresh.to_dict()))
    assert jobs.status(job_dir).state == "starting"  # still within the time a start takes


def test_a_worker_caught_in_the_middle_of_its_exec_is_alive(tmp_path, request, monkeypatch):
    """For a moment after the launcher has the worker's id, /proc shows no command line (the exec is
    under way): that is the worker starting, not some other process (CI saw a just-started job as
    'exited unexpectedly')."""
    job_dir = tmp_path / "j"
    job_dir.mkdir()
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(job_dir.resolve())])
    request.addfinalizer(worker.kill)
    real_read = Path.read_bytes
    reads = []

    def mid_exec(self):
        if self.name == "cmdline" and self.parent.name == str(worker.pid):
            reads.append(self)
            if len(reads) <= 3:
                return b""  # what the kernel shows before the new arguments are in place
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", mid_exec)
    assert jobs._pid_alive(worker.pid, job_dir)
    assert len(reads) == 4  # read again until the arguments appeared
    reads.clear()
    monkeypatch.setattr(Path, "read_bytes", lambda self: b"" if self.name == "cmdline" else real_read(self))
    monkeypatch.setattr(jobs, "EXEC_SETTLE_S", 0.1)
    assert not jobs._pid_alive(worker.pid, job_dir)  # empty for good (a kernel thread): not the worker


def test_concurrent_status_writes_never_clash(tmp_path):
    """Dashboard sessions are threads of one process: their atomic writes must not share a temp file."""
    path = tmp_path / "status.json"
    written = {(i, n) for i in range(4) for n in range(150)}
    read_errors: list[Exception] = []
    stop = threading.Event()

    def writer(i: int):
        for n in range(150):
            jobs._write_json(path, {"i": i, "n": n, "pad": "x" * 4000})

    def reader():
        while not stop.is_set():
            try:
                data = json.loads(path.read_text())
                assert (data["i"], data["n"]) in written
            except FileNotFoundError:
                pass  # before the first write
            except Exception as err:  # noqa: BLE001 - partial or foreign content
                read_errors.append(err)

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        results = run_together(*(lambda i=i: writer(i) for i in range(4)))
    finally:
        stop.set()
        watcher.join()
    assert results == [None] * 4  # no writer raised
    assert read_errors == []
    data = json.loads(path.read_text())
    assert (data["i"], data["n"]) in written and data["n"] == 149
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left behind


def test_second_start_in_a_folder_is_refused_and_leaves_the_first_alone(tmp_path):
    job_dir = tmp_path / "j"
    first = jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0}, job_dir, note="first")
    wait_for(job_dir, ("done",))
    files = {p.name: p.read_bytes() for p in job_dir.iterdir()}
    with pytest.raises(JobError, match="already holds a job .done.; start the new job in a new folder"):
        jobs.start_job("selftest", {"epochs": 2}, job_dir, note="second")
    assert {p.name: p.read_bytes() for p in job_dir.iterdir()} == files
    assert jobs.status(job_dir).job_id == first and jobs.job_note(job_dir) == "first"


def test_simultaneous_starts_in_one_folder_start_one_job(tmp_path, monkeypatch):
    job_dir = tmp_path / "job-20250101-000000"  # two tabs, same second, same name
    params = {"epochs": 50, "steps": 10, "delay": 0.05}
    # Hold each start at its first uuid4() (its job id, made before it touches the folder) until
    # both are there, so that both are past any check before either claims the folder.
    gate, first_call, real_uuid4 = threading.Barrier(2, timeout=5), threading.local(), jobs.uuid.uuid4

    def uuid4():
        if not getattr(first_call, "done", False):
            first_call.done = True
            try:
                gate.wait()
            except threading.BrokenBarrierError:
                pass  # the other start never got this far: nothing to line up
        return real_uuid4()

    monkeypatch.setattr(jobs.uuid, "uuid4", uuid4)
    a, b = run_together(lambda: jobs.start_job("selftest", params, job_dir, note="a"),
                        lambda: jobs.start_job("selftest", params, job_dir, note="b"))
    monkeypatch.setattr(jobs.uuid, "uuid4", real_uuid4)
    try:
        won = [r for r in (a, b) if isinstance(r, str)]
        lost = [r for r in (a, b) if isinstance(r, Exception)]
        assert len(won) == 1 and len(lost) == 1, (a, b)
        assert isinstance(lost[0], JobError)
        assert re.search(f"a job is already (being started|running) in {re.escape(str(job_dir))}", str(lost[0]))
        spec = json.loads((job_dir / "job.json").read_text())
        assert spec["job_id"] == won[0] == jobs.status(job_dir).job_id
        assert spec["note"] == ("a" if a == won[0] else "b")
    finally:
        jobs.cancel(job_dir, terminate_after_s=5)


def test_a_prepared_folder_can_take_a_job(tmp_path):
    """The Model page writes the held-out split into the job folder before it starts the job."""
    job_dir = tmp_path / "j"
    (job_dir / "holdout").mkdir(parents=True)
    (job_dir / "holdout" / "train_labels.tif").write_bytes(b"data")
    (job_dir / jobs.CANCEL_FILE).write_text("0")  # an earlier job's cancel request: not this one's
    jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0}, job_dir)
    assert wait_for(job_dir, ("done", "failed", "cancelled")).state == "done"
    assert (job_dir / "holdout" / "train_labels.tif").read_bytes() == b"data"


def test_one_at_a_time_check_and_start_are_atomic(tmp_path):
    """Two sessions, two fresh folders, one jobs folder: with one_at_a_time only one job starts."""
    params = {"epochs": 50, "steps": 10, "delay": 0.05}
    dirs = [tmp_path / "a", tmp_path / "b"]
    results = run_together(*(lambda d=d: jobs.start_job("selftest", params, d, one_at_a_time=True) for d in dirs))
    try:
        started = [d for d, r in zip(dirs, results) if isinstance(r, str)]
        refused = [r for r in results if isinstance(r, Exception)]
        assert len(started) == 1 and len(refused) == 1, results
        assert isinstance(refused[0], JobError)
        # said as a user knows the job (a folder's path means nothing to them)
        assert f"a training job is already running ({Path(started[0]).name}); cancel it or wait" in str(refused[0])
        assert [d for d, _ in jobs.find_jobs(tmp_path)] == started  # the refused folder holds no job
    finally:
        for d in started:
            jobs.cancel(d, terminate_after_s=5)
    # once it has stopped, the next one may start
    jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0}, tmp_path / "c", one_at_a_time=True)
    assert wait_for(tmp_path / "c", ("done", "failed")).state == "done"


def test_start_lock_excludes_other_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "LOCK_TIMEOUT_S", 0.3)
    with jobs._StartLock(tmp_path):  # another session is in the middle of a start
        [result] = run_together(lambda: jobs.start_job("selftest", {}, tmp_path / "j", one_at_a_time=True))
    assert isinstance(result, JobError) and "try again in a moment" in str(result)
    assert not (tmp_path / "j").exists()


def test_new_job_dir_names_are_fresh(tmp_path, monkeypatch):
    names = {jobs.new_job_dir(tmp_path) for _ in range(50)}
    assert len(names) == 50  # same second, still distinct
    assert all(p.parent == tmp_path and p.name.startswith("job-") and not p.exists() for p in names)
    monkeypatch.setattr(jobs.time, "strftime", lambda fmt: "20250101-000000")
    suffixes = iter(["aaaaaa", "bbbbbb"])
    monkeypatch.setattr(jobs.secrets, "token_hex", lambda n: next(suffixes))
    (tmp_path / "job-20250101-000000-aaaaaa").mkdir()
    assert jobs.new_job_dir(tmp_path) == tmp_path / "job-20250101-000000-bbbbbb"


def test_worker_that_dies_before_reporting_is_failed(tmp_path):
    """The launcher records the pid in its own file, so a worker that never runs is not "starting" forever."""
    job_dir = tmp_path / "j"
    jobs.start_job("selftest", {}, job_dir, python=shutil.which("false"))
    st = wait_for(job_dir, ("failed", "done"))
    assert st.state == "failed" and "exited unexpectedly" in st.message
    with pytest.raises(JobError, match="cannot start the worker .* check the Python interpreter"):
        jobs.start_job("selftest", {}, tmp_path / "k", python=str(tmp_path / "no-such-python"))
    assert jobs.status(tmp_path / "k").state == "failed"


def test_a_cancel_after_the_last_epoch_finished_leaves_the_job_done(tmp_path, monkeypatch):
    """The user clicks Cancel while the last epoch is being validated and saved: the trainer
    finishes all epochs ("completed"), and the job is done (it was reported "cancelled after epoch N")."""
    job_dir = _selftest_job_dir(tmp_path / "j")

    def trainer(progress, should_stop, run_dir):
        out = jobs.selftest_train(epochs=2, steps=1, delay=0.0, progress=progress, should_stop=should_stop)
        (job_dir / jobs.CANCEL_FILE).write_text("late")  # clicked during the final save
        return out

    st = _run_in_process(job_dir, trainer, monkeypatch)
    assert st.state == "done", f"all epochs finished, yet: {st.state}: {st.message}"


def test_a_redone_epoch_keeps_one_history_row_and_a_cancel_request_is_shown_at_once(tmp_path, monkeypatch):
    job_dir = _selftest_job_dir(tmp_path / "j")
    seen = []

    def trainer(progress, should_stop, run_dir):
        for loss in (0.9, 0.8):  # epoch 1 finished twice (a resumed run redoes an epoch it had not recorded)
            progress({"event": "epoch", "epoch": 1, "epochs": 2, "logs": {"loss": loss, "val_loss": loss}})
        progress({"event": "epoch", "epoch": 2, "epochs": 2, "logs": {"loss": 0.5, "val_loss": 0.6}})
        (job_dir / jobs.CANCEL_FILE).write_text("now")
        progress({"event": "step", "epoch": 2, "epochs": 2, "step": 1, "steps": 4})
        seen.append(json.loads((job_dir / "status.json").read_text())["state"])  # as the worker wrote it
        return {"stopped": "completed"}

    st = _run_in_process(job_dir, trainer, monkeypatch)
    assert [(h["epoch"], h["loss"]) for h in st.history] == [(1, 0.8), (2, 0.5)]
    assert seen == ["cancelling"]  # said while the current batch ends, not "running"


def test_a_stop_now_while_the_data_loads_is_cancelled_even_through_a_broad_except(tmp_path, monkeypatch):
    """"Stop now" sends SIGTERM while the worker loads the data, where library code may wrap any
    Exception in an error of its own: the job must end cancelled, not failed with that error."""
    job_dir = _selftest_job_dir(tmp_path / "j")

    def trainer(progress, should_stop, run_dir):
        try:  # e.g. a reader that turns anything into "cannot read the patches"
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # (the handler runs at once, in this thread)
        except Exception as err:
            raise JobError(f"cannot read the patches: {err!r}") from err
        return {"stopped": "completed"}

    st = _run_in_process(job_dir, trainer, monkeypatch)
    # not asked for from the dashboard (no cancel flag): said so, not "at your request"
    assert st.state == "cancelled" and st.message.startswith("stopped from outside the dashboard (SIGTERM")
    (job_dir / "cancel").touch()  # as "Stop now" asks, before its SIGTERM
    st = _run_in_process(job_dir, trainer, monkeypatch)
    assert (st.state, st.message) == ("cancelled", "stopped at your request")


def test_a_stopped_job_shows_the_epochs_it_finished_not_the_one_it_broke_off():
    """Cancelled during epoch 1 of 1: no full bar, no 'epoch 1/1' over 'no model was saved', no
    metrics of the unfinished epoch; later epochs show the last finished epoch's metrics."""
    cut = jobs.JobStatus(state="cancelled", epoch=1, epochs=1, step=1, steps=1, logs={"loss": 1.407, "iou": 0.315},
                         message="cancelled before the first epoch ended; no model was saved")
    assert cut.fraction == 0.0 and cut.progress_text() == "cancelled: 0 of 1 epoch finished"
    later = jobs.JobStatus(state="failed", epoch=3, epochs=4, step=2, steps=5, logs={"loss": 9.0},
                           history=[{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "val_iou": 0.75}])
    assert later.fraction == 0.5 and later.progress_text() == "failed: 2 of 4 epochs finished, loss 0.250, val IoU 0.750"
    loading = jobs.JobStatus(state="running", epochs=3)
    assert loading.progress_text() == "running: loading data" and loading.fraction == 0.0
    running = jobs.JobStatus(state="running", epoch=2, epochs=3, step=1, steps=2, logs={"loss": 0.5, "lr": 1e-3})
    assert running.progress_text() == "running: epoch 2/3, loss 0.500" and running.fraction == 0.5
    # within an epoch, the last finished epoch's validation figures stay in view (they showed only
    # for a moment between epochs)
    after = jobs.JobStatus(state="running", epoch=3, epochs=4, step=1, steps=5, logs={"loss": 0.3, "iou": 0.6},
                           history=[{"epoch": 2, "loss": 0.35, "val_loss": 0.41, "val_iou": 0.552}])
    assert after.progress_text() == ("running: epoch 3/4, loss 0.300, IoU 0.600, "
                                     "validation after the last epoch: loss 0.410, IoU 0.552")
    done = jobs.JobStatus(state="done", epoch=3, epochs=3, history=[{"epoch": 3, "iou": 0.8}])
    assert done.fraction == 1.0 and done.progress_text() == "done: 3 of 3 epochs finished, IoU 0.800"
    # a resumed run (2 of 3 epochs finished before): its bar started back at epoch 2's start (1/3, below the
    # stopped job's 2/3) naming the finished epoch 2 as the one running; and a last epoch's validation filled it
    rows2 = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4, "val_loss": 0.45, "val_iou": 0.6}]
    resumed = jobs.JobStatus(state="running", epoch=2, epochs=3, history=rows2)
    assert resumed.fraction == pytest.approx(2 / 3)
    assert resumed.progress_text().startswith("running: loading data before epoch 3/3")
    last = jobs.JobStatus(state="running", epoch=3, epochs=3, step=4, steps=4, logs={"loss": 0.3}, history=rows2)
    assert 0.95 < last.fraction < 1.0 and last.progress_text().startswith("running: epoch 3/3")
    # a best epoch before the last (its checkpoint is the one kept, best.keras) is named: the last epoch's
    # figures alone were quoted as the model's
    rows = [{"epoch": 1, "val_loss": 0.62, "val_iou": 0.697}, {"epoch": 2, "val_loss": 1.39, "val_iou": 0.471}]
    worse = jobs.JobStatus(state="done", epoch=2, epochs=2, history=rows)
    assert worse.best() is rows[0] and worse.progress_text() == (
        "done: 2 of 2 epochs finished, val loss 1.390, val IoU 0.471, best (the checkpoint kept): epoch 1, "
        "val loss 0.620, val IoU 0.697")


def test_progress_text_pairs_each_metric_with_its_validation_figure_in_a_fixed_order():
    """Logs come in Keras's order (iou, loss, val_iou, val_loss); the line reads loss then IoU,
    each with its validation figure in brackets, not four raw keys."""
    js = jobs.JobStatus(state="running", epoch=2, epochs=5, step=3, steps=10,
                        logs={"dice": 0.6, "iou": 0.222, "loss": 1.327, "val_iou": 0.31, "val_loss": 1.1})
    assert js.progress_text() == "running: epoch 2/5, loss 1.327 (val 1.100), IoU 0.222 (val 0.310)"


@pytest.mark.parametrize("stopped, message", [
    ("completed", "finished: all 2 epochs done"),
    ("early_stopping", "stopped early after 2 epochs of 5: the validation loss had stopped improving; the best "
                       "checkpoint is kept"),
])
def test_a_finished_job_says_whether_it_ran_all_epochs_or_stopped_early(tmp_path, monkeypatch, stopped, message):
    """It said 'finished after 2 epoch(s) (early stopping)', the trainer's word, with no total."""
    job_dir = _selftest_job_dir(tmp_path / "j")

    def trainer(progress, should_stop, run_dir):
        # 2 epochs of the 5 asked for (for "completed", as a run whose epochs were set to 2 reports)
        total = 5 if stopped == "early_stopping" else 2
        jobs.selftest_train(epochs=2, steps=1, delay=0.0, progress=lambda e: progress({**e, "epochs": total}),
                            should_stop=should_stop)
        return {"stopped": stopped}

    st = _run_in_process(job_dir, trainer, monkeypatch)
    assert st.state == "done" and st.message == message


def test_a_reused_pid_of_another_users_process_is_not_a_live_worker(tmp_path, request, monkeypatch):
    """After a reboot the worker's id can go to a process of another user, which signal 0 answers
    with EPERM: that is no reason to take it for the worker (the job looked running for good, and
    blocked every new training). A worker really run by another user cannot be stopped: said."""
    job_dir = tmp_path / "j"
    job_dir.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # alive, not the worker
    request.addfinalizer(other.kill)
    real_kill = os.kill

    def another_users(pid, sig):
        if pid == other.pid:
            raise PermissionError(1, "Operation not permitted")
        return real_kill(pid, sig)

    running = jobs.JobStatus(state="running", job_id="x", pid=other.pid, started=time.time(), message="epoch 1/5")
    with monkeypatch.context() as m:  # (undone before the finalizer kills the process)
        m.setattr(os, "kill", another_users)
        (job_dir / "status.json").write_text(json.dumps(running.to_dict()))
        assert jobs.status(job_dir).state == "failed" and jobs.active_job(tmp_path) is None
        # the worker itself, as another user: the cancel is asked for (flag file) and the signal's refusal said
        m.setattr(jobs, "_is_worker", lambda pid, job_dir: True)
        m.setattr(os, "killpg", lambda pid, sig: (_ for _ in ()).throw(PermissionError(1, "Operation not permitted")))
        (job_dir / "status.json").write_text(json.dumps(running.to_dict()))
        with pytest.raises(jobs.JobError, match=f"process {other.pid} runs as another user"):
            jobs.cancel(job_dir, terminate_after_s=0)
        assert (job_dir / jobs.CANCEL_FILE).exists()


def test_progress_within_an_epoch_counts_its_steps_and_never_runs_past_it():
    st = jobs.JobStatus(state="running", epoch=1, step=10, steps=5, epochs=2)
    assert st.fraction == 0.5  # (a step count past the epoch's: the epoch, not more)
    rows = [{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.4}]
    last_step = jobs.JobStatus(state="running", epoch=2, step=4, steps=4, epochs=3, history=rows)
    assert last_step.progress_text().startswith("running: epoch 2/3")  # not "loading data before epoch 3"
    done = jobs.JobStatus(state="done", epoch=2, epochs=2, history=rows)
    assert "best (the checkpoint kept)" not in done.progress_text()  # the last epoch is the kept one: not said twice


def test_the_best_checkpoint_in_words():
    st = jobs.JobStatus(state="done", history=[{"epoch": 1, "val_loss": 0.5, "val_iou": 0.6},
                                              {"epoch": 2, "val_loss": 0.4, "val_iou": 0.69712}])
    assert st.best_words() == " (epoch 2, val IoU 0.697)"
    assert st.best_words("validation IoU") == " (epoch 2, validation IoU 0.697)"
    assert jobs.JobStatus(state="done", history=[{"epoch": 3, "val_loss": 0.4}]).best_words() == " (epoch 3)"
    assert jobs.JobStatus(state="running").best_words() == ""  # no epoch finished yet
    # an epoch whose validation loss is NaN is never the checkpoint kept (Keras keeps a finite one)
    nan_first = jobs.JobStatus(state="done", history=[{"epoch": 1, "val_loss": float("nan"), "val_iou": 0.0},
                                                      {"epoch": 2, "val_loss": 0.4, "val_iou": 0.5}])
    assert nan_first.best()["epoch"] == 2 and nan_first.best_words() == " (epoch 2, val IoU 0.500)"
    assert jobs.JobStatus(state="done", history=[{"epoch": 1, "val_loss": float("nan")}]).best() is None


@pytest.mark.parametrize("damage, said", [(b"\xff\xfe{", "not text: damaged"), (b'{"state": "runn', "not JSON: damaged or cut short")])
def test_an_unreadable_status_is_said_in_words(tmp_path, damage, said):
    """The codec's "can't decode byte 0xff in position 0" reached the sidebar."""
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "status.json").write_bytes(damage)
    with pytest.raises(JobError, match=f"status of the job in .* is unreadable \\({said}\\); its files") as info:
        jobs.status(tmp_path / "j")
    assert "decode" not in str(info.value) and "Expecting" not in str(info.value)


def test_a_resumed_training_job_shows_its_finished_epochs_from_the_start(tmp_path):
    """The status start_job writes for a resume holds the run's finished epochs (its bar started at 0)."""
    job_dir = tmp_path / "j"
    (job_dir / jobs.TRAIN_SUBDIR).mkdir(parents=True)
    (job_dir / jobs.TRAIN_SUBDIR / "history.csv").write_text("epoch,loss,val_loss\n1,0.9,0.8\n2,0.7,0.6\n")
    params = {"config": TrainConfig(epochs=5).to_dict(), "train_data": ["a:b"], "val_data": ["a:b"], "resume": True}
    with pytest.raises(JobError):  # (no worker: the status as start_job wrote it stays, failed)
        jobs.start_job("train", params, job_dir, python=str(tmp_path / "no-such-python"))
    st = jobs.status(job_dir)
    assert st.epoch == 2 and [h["epoch"] for h in st.history] == [1, 2] and st.epochs == 5


def test_a_resumed_training_job_resumes_its_run_not_overwrites_it(tmp_path, monkeypatch):
    """A resumed job's worker trains with resume=True (overwrite would replace its finished epochs)."""
    job_dir = tmp_path / "j"
    (job_dir / jobs.TRAIN_SUBDIR).mkdir(parents=True)
    params = {"config": TrainConfig(epochs=3).to_dict(), "train_data": ["a:b"], "val_data": ["a:b"], "resume": True}
    (job_dir / "job.json").write_text(json.dumps({"kind": "train", "job_id": "x", "params": params, "note": ""}))
    jobs._write_status(job_dir, jobs.JobStatus(state="starting", job_id="x", kind="train", started=time.time()))
    calls = []

    class Result:
        stopped = "completed"

    def trainer(config, train_data, val_data, out, **kw):
        calls.append(kw)
        return Result()

    st = _run_in_process(job_dir, trainer, monkeypatch)
    assert st.state == "done", st.message
    ((kw,),) = [calls]
    assert kw["resume"] is True and kw["overwrite"] is False
