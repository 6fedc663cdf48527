"""core.workdir: the dashboard's work folder, made where missing, refused in one line where it cannot be."""

import pytest

from core.errors import ConfigError
from core.workdir import WORKDIR_ENV, WorkDir


def test_the_work_folder_comes_from_the_environment_and_says_where_each_kind_of_file_goes(tmp_path, monkeypatch):
    monkeypatch.delenv(WORKDIR_ENV, raising=False)
    work = WorkDir.from_env(tmp_path / "default")
    assert work.root == tmp_path / "default" and work.root.is_dir()
    for empty in ("", "  "):  # as unset (an empty value was the current folder: the checkout filled with sessions/)
        monkeypatch.setenv(WORKDIR_ENV, empty)
        assert WorkDir.from_env(tmp_path / "default").root == tmp_path / "default"
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "w"))
    work = WorkDir.from_env(tmp_path / "default")
    assert work.jobs == tmp_path / "w" / "jobs" and work.predictions == tmp_path / "w" / "predictions"
    folders = [work.jobs, work.models, work.predictions, work.sessions, work.scenes, work.uploads, work.exports,
               work.patches, work.ee_upload]
    assert len(set(folders)) == len(folders) and all(f.parent == work.root for f in folders)
    assert not any(f.exists() for f in folders)  # (made when first written to)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "file"))
    with pytest.raises(ConfigError, match=f"work folder .*file is a file, not a folder; set {WORKDIR_ENV} to a folder"):
        WorkDir.from_env(tmp_path / "default")
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "file" / "work"))
    with pytest.raises(ConfigError, match=f"cannot be made .*; set {WORKDIR_ENV} to a folder this server can write"):
        WorkDir.from_env(tmp_path / "default")


def test_scenes_unused_for_a_month_are_removed_but_not_one_a_training_job_was_started_on(tmp_path):
    import json
    import os
    import time

    from core.workdir import JOB_SPEC, WorkDir, prune_scenes

    work = WorkDir(tmp_path)
    old, recent, trained = (work.scenes / name for name in ("9f2c41d0aa7b3e15", "03b8e6f1c2d4a957", "5e0d7c3b91a2f468"))
    for folder in (old, recent, trained):
        folder.mkdir(parents=True)
        (folder / "image.tif").write_bytes(b"x")
    month = 30 * 86400
    for folder in (old, trained):
        os.utime(folder, (time.time() - month - 60,) * 2)
    (work.jobs / "job-1").mkdir(parents=True)
    (work.jobs / "job-1" / JOB_SPEC).write_text(json.dumps({"params": {"train_data": [f"{trained}/image.tif:x"]}}))
    assert prune_scenes(work, month) == [old]
    assert not old.exists() and recent.is_dir() and (trained / "image.tif").exists()
    assert prune_scenes(WorkDir(tmp_path / "none"), month) == []  # (no scenes folder yet)


def test_leftovers_of_broken_off_writes_go_a_day_later_and_nothing_else_does(tmp_path):
    """prune_leftovers: the temporary files and staging folders a killed server left go once a day old; the
    marks, locks, jobs and outputs beside them stay, as does a leftover that may still be being written."""
    import os
    import time

    from core.workdir import prune_leftovers, prune_scenes

    work = WorkDir(tmp_path)
    old = ["predictions/.ab.npy.1-x.tmp", "uploads/0123456789abcdef/.a.tif.2-y.tmp", "models/.m.keras.save-q/",
           "jobs/job-20261201-080000-aaaaaa/train/.best.save-k/", "jobs/job-20261201-090000-bbbbbb/holdout/"]
    kept = ["uploads/0123456789abcdef/a.tif", "uploads/0123456789abcdef/.a.tif.taken", "jobs/.start.lock",
            "jobs/job-20261201-080000-aaaaaa/job.json", "jobs/job-20261201-080000-aaaaaa/train/best.keras",
            "scenes/0123456789abcdef/image.tif", "predictions/ab.npy"]
    for rel in old + kept:
        path = tmp_path / rel.rstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if rel.endswith("/") else path.write_bytes(b"x")
    past = time.time() - 2 * 86400
    for path in tmp_path.rglob("*"):
        os.utime(path, (past, past))
    (tmp_path / "scenes" / ".fresh.tmp").write_bytes(b"x")  # (being written now)
    removed = prune_leftovers(work, 86400)
    assert not any((tmp_path / rel.rstrip("/")).exists() for rel in old), removed
    assert all((tmp_path / rel).exists() for rel in kept) and (tmp_path / "scenes" / ".fresh.tmp").exists()
    # a job whose deletion broke off names no scene to keep
    gone = tmp_path / "jobs" / ".deleting-job-20261201-100000-cccccc"
    gone.mkdir()
    (gone / "job.json").write_text('{"params": {"trained_on": "%s"}}' % (tmp_path / "scenes" / "0123456789abcdef"))
    os.utime(tmp_path / "scenes" / "0123456789abcdef", (past, past))
    assert prune_scenes(work, 86400) == [tmp_path / "scenes" / "0123456789abcdef"]


def test_assembled_exports_unused_for_a_month_go_unless_a_job_names_them(tmp_path):
    import os
    import time

    from core.workdir import prune_exports

    work = WorkDir(tmp_path)
    past = time.time() - 31 * 86400
    folders = {name: tmp_path / "exports" / name for name in ("0123456789abcdef", "fedcba9876543210", "00000000aaaaaaaa")}
    for folder in folders.values():
        folder.mkdir(parents=True)
        (folder / "image.tif").write_bytes(b"x")
    job = tmp_path / "jobs" / "job-20261201-080000-aaaaaa"
    job.mkdir(parents=True)
    (job / "job.json").write_text('{"params": {"image": "%s"}}' % (folders["fedcba9876543210"] / "image.tif"))
    for name in ("0123456789abcdef", "fedcba9876543210"):
        os.utime(folders[name], (past, past))
    assert prune_exports(work, 30 * 86400) == [folders["0123456789abcdef"]]
    assert folders["fedcba9876543210"].is_dir() and folders["00000000aaaaaaaa"].is_dir()


def test_every_writers_staging_leftover_goes_a_day_later(tmp_path):
    """Each hidden staging name a write under way uses (a scene's cut, an Earth Engine fetch, an upload, a job's
    deletion, a prediction, patches, an export, files replaced together): left by a killed server, gone a day later."""
    import time

    from core.workdir import prune_leftovers

    work = WorkDir(tmp_path)
    staged = [f"scenes/.{what}-k2j4" for what in ("scene", "ee-fetch", "upload", "predict", "patches", "export",
                                                    "replaced")] + ["jobs/.deleting-job-20261201-080000-aaaaaa"]
    for rel in staged:
        (tmp_path / rel).mkdir(parents=True)
    (tmp_path / "scenes" / "0123456789abcdef").mkdir()  # a scene, not a leftover
    assert prune_leftovers(work, 86400) == []  # (made just now: maybe still being written)
    removed = prune_leftovers(work, 86400, now=time.time() + 2 * 86400)
    assert sorted(removed) == sorted(tmp_path / rel for rel in staged)
    assert [p.name for p in (tmp_path / "scenes").iterdir()] == ["0123456789abcdef"]


def test_scenes_are_pruned_by_the_clock_given(tmp_path):
    """``now``: a scene used just now is a month old to a clock a month and a day ahead, not to today's."""
    import time

    from core.workdir import prune_exports, prune_scenes

    work = WorkDir(tmp_path)
    for folder in (work.scenes / "0123456789abcdef", work.exports / "fedcba9876543210"):
        folder.mkdir(parents=True)
    month = 30 * 86400
    assert prune_scenes(work, month) == [] and prune_exports(work, month) == []
    later = time.time() + month + 86400
    assert prune_scenes(work, month, now=later) == [work.scenes / "0123456789abcdef"]
    assert prune_exports(work, month, now=later) == [work.exports / "fedcba9876543210"]
