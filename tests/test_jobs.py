"""core.jobs: background process, status file protocol, cancel flag, failures."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core import jobs
from core.errors import ConfigError, JobError


def wait_for(job_dir: Path, states: tuple[str, ...], timeout: float = 60) -> jobs.JobStatus:
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = jobs.status(job_dir)
        if st.state in states:
            return st
        time.sleep(0.1)
    raise AssertionError(f"job stuck in {jobs.status(job_dir)}")


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


def test_cancel_by_flag(tmp_path):
    job_dir = tmp_path / "j"
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.05}, job_dir)
    wait_for(job_dir, ("running",))
    jobs.cancel(job_dir)
    st = wait_for(job_dir, ("cancelled", "done", "failed"))
    assert st.state == "cancelled"
    assert st.epoch < 50


def test_cancel_by_terminate(tmp_path):
    job_dir = tmp_path / "j"
    jobs.start_job("selftest", {"epochs": 1, "steps": 1000, "delay": 1.0}, job_dir)
    wait_for(job_dir, ("running",))
    jobs.cancel(job_dir, terminate_after_s=0.2)
    st = jobs.status(job_dir)
    assert st.state == "cancelled" and not st.active


def test_failure_is_recorded(tmp_path):
    job_dir = tmp_path / "j"
    jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0, "fail": True}, job_dir)
    st = wait_for(job_dir, ("failed", "done"))
    assert st.state == "failed" and "selftest failure requested" in st.message


def test_dead_worker_is_reported_failed(tmp_path):
    job_dir = tmp_path / "j"
    job_dir.mkdir()
    (job_dir / "log.txt").write_text("Traceback...\nMemoryError\n")
    status = jobs.JobStatus(state="running", job_id="x", pid=2**22 + 12345, started=time.time())
    (job_dir / "status.json").write_text(json.dumps(status.to_dict()))
    st = jobs.status(job_dir)
    assert st.state == "failed" and "MemoryError" in st.message


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


def test_training_config_checked_before_start(tmp_path):
    with pytest.raises(ConfigError):
        jobs.start_training(["a:b"], ["a:b"], tmp_path / "j", config={"epochs": 0})
    assert not (tmp_path / "j").exists()


def test_real_training_job_leaves_checkpoint(tmp_path, small_scene):
    img, lab = small_scene
    job_dir = tmp_path / "train"
    cfg = {"preset": "light", "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "patch_size": 128, "val_patches": 4}
    jobs.start_training([f"{img}:{lab}"], [f"{img}:{lab}"], job_dir, label_map="cdl", config=cfg)
    st = wait_for(job_dir, ("done", "failed", "cancelled"), timeout=300)
    assert st.state == "done", st.message
    assert (job_dir / "train" / "best.keras").exists()
    assert st.best_model and st.history and "val_loss" in st.history[0]
