"""Two sessions of the dashboard (two tabs, or two people on one server: threads of one process) share the
work folder (core.workdir): what one session writes or removes there must not take away what the other one
uses. Each test interleaves the two deterministically, the second session's step run from inside the first's."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.errors import GridMismatchError, JobError
from testdata import FLANDERS_LABELS, FLANDERS_S2, FTW


def test_an_upload_refused_in_one_session_leaves_the_same_file_another_session_took(tmp_path, monkeypatch):
    """Two people upload the same image at the same time; one of them adds labels of another grid, which are
    refused. The refusal removed the image it had stored (discarded_if_refused), though the other session had
    found it stored meanwhile (save_upload: same content, same path, not written again) and made it its source:
    every page of that session then failed with "file not found" for the upload it had just been told it uses."""
    from core.sources import local

    up = tmp_path / "uploads"
    bands = "R=3,G=2,B=1,NIR=4"
    taken = {}
    real = local.validate_labels

    def other_session_meanwhile(*args, **kwargs):
        if not taken:  # while the first upload's labels are checked, the second session stores the same image
            taken["other"] = local.use_uploaded_files(FTW.read_bytes(), "austria.tif", up, band_spec=bands)
        return real(*args, **kwargs)

    monkeypatch.setattr(local, "validate_labels", other_session_meanwhile)
    with pytest.raises(GridMismatchError):
        local.use_uploaded_files(FTW.read_bytes(), "austria.tif", up, FLANDERS_LABELS.read_bytes(), "labels.tif",
                                 "worldcereal", band_spec=bands)
    other = taken["other"].spec["image"]
    assert Path(other).is_file(), f"the other session's source {other} was removed"
    local.LocalSource(other, band_map=taken["other"].spec["band_map"]).grid()  # (and it can be used)


def test_a_scene_cut_by_two_sessions_at_once_is_not_written_over_once_complete(tmp_path, monkeypatch):
    """Two sessions cut the same region of the same image at once (scene.current_scene: one folder per source
    and region). The one that found no complete scene when it looked, and wrote after the other had finished,
    renamed its own files over the first session's: their modification time changed, which is part of every
    prediction key (cached.prediction_key), so the first session's prediction of it was no longer shown (Press
    Predict) and its running one no longer followed."""
    from core.sources import local

    src = local.LocalSource.sample()
    region = src.full_region()
    out = tmp_path / "scenes" / src.scene_key(region)
    first = {}
    real = local._complete_scene

    def looked_before_the_other_finished(folder):
        found = real(folder)
        if not first:  # this session found nothing; the other one cuts the whole scene now
            first["looked"] = True
            first["scene"] = src.fetch(region, out)
            first["stamp"] = os.stat(first["scene"].image_path).st_mtime_ns
        return found

    monkeypatch.setattr(local, "_complete_scene", looked_before_the_other_finished)
    second = src.fetch(region, out)
    assert second.image_path == first["scene"].image_path
    assert os.stat(second.image_path).st_mtime_ns == first["stamp"], "the first session's scene was written over"


def test_an_upload_averaged_with_other_band_numbers_is_averaged_anew(tmp_path):
    """The same image uploaded twice with "Average to 30 m pixels" and other band numbers (another person's
    upload of the same file, or the same person mending the numbers after the colours looked wrong): the
    averaged copy is named by the image and the pixel size alone (resample.resampled_copies,
    ``<name>_30m.tif``), so the second upload got the copy made with the first one's bands: its R was the
    first one's, whatever numbers it gave, and nothing said so."""
    import numpy as np

    from core.raster import read_image
    from core.sources.local import use_uploaded_files

    up = tmp_path / "uploads"
    first = use_uploaded_files(FTW.read_bytes(), "austria.tif", up, band_spec="R=1,G=2,B=3,NIR=4", pixel_size_m=30)
    second = use_uploaded_files(FTW.read_bytes(), "austria.tif", up, band_spec="R=3,G=2,B=1,NIR=4", pixel_size_m=30)
    a, valid, _ = read_image(first.spec["image"])
    b, _, _ = read_image(second.spec["image"])
    assert not np.allclose(a[valid][:, 0], a[valid][:, 2])  # (the image's bands 1 and 3 differ)
    np.testing.assert_allclose(b[valid][:, 0], a[valid][:, 2], rtol=1e-6)  # the second's R is band 3
    np.testing.assert_allclose(b[valid][:, 2], a[valid][:, 0], rtol=1e-6)


def test_a_snapshot_of_the_best_checkpoint_taken_as_the_worker_saves_a_better_one_is_whole(tmp_path, tiny_model_path,
                                                                                             monkeypatch):
    """"Use the best checkpoint so far" while the training runs copies best.keras and its card out of the job
    (training_jobs.snapshot_checkpoint), two reads: the worker saving a better epoch between them (card first,
    then the model: core.model.save_model) gave the copy the old epoch's weights under the new epoch's card,
    and the press failed with "the model card ... is not this model's: it was written for a model with other
    weights" (and left that mismatched copy in the models folder)."""
    import shutil

    import numpy as np

    from core import card as card_module
    from core import training_jobs
    from core.card import card_path
    from core.model import load_model, save_model

    best = tmp_path / "jobs" / "job-20261201-214005-ab12" / "train" / "best.keras"
    best.parent.mkdir(parents=True)
    shutil.copy(tiny_model_path, best)
    shutil.copy(card_path(tiny_model_path), card_path(best))
    better = load_model(tiny_model_path)
    better.model.set_weights([w + np.float32(0.01) for w in better.model.get_weights()])
    real, saved = card_module.card_path, []

    def worker_saves_meanwhile(path):
        if not saved:  # the model's bytes are read; the worker saves the next epoch's best before the card is read
            saved.append(save_model(better.model, better.card, best))
        return real(path)

    monkeypatch.setattr(card_module, "card_path", worker_saves_meanwhile)
    copy = training_jobs.snapshot_checkpoint(best, tmp_path / "models")
    monkeypatch.setattr(card_module, "card_path", real)
    assert saved
    load_model(copy)  # the copy is one checkpoint: its card is its model's


def test_the_start_lock_of_a_server_killed_while_starting_a_job_blocks_no_later_start(tmp_path, monkeypatch):
    """A server killed (kill -9, the machine's out-of-memory killer) while it held the jobs folder's start lock
    leaves ``.start.lock`` behind: the lock is the system's (flock), let go with its holder, so the next start
    goes ahead at once; a lock that was the file's existence would refuse every start for good ("another job is
    being started ... try again in a moment")."""
    import subprocess
    import sys

    from core import jobs

    monkeypatch.setattr(jobs, "LOCK_TIMEOUT_S", 1.0)
    root = tmp_path / "jobs"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from core import jobs\n"
        f"with jobs._StartLock(Path({str(root)!r})):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n")], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JobError, match="try again in a moment"):  # (held: the next start waits, then says so)
            jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0}, root / "a", one_at_a_time=True)
    finally:
        holder.kill()
        holder.wait()
    assert (root / jobs.LOCK_FILE).exists()  # left behind by the killed holder
    jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0}, root / "b", one_at_a_time=True)
    deadline = time.monotonic() + 60
    while jobs.status(root / "b").active and time.monotonic() < deadline:
        time.sleep(0.1)
    assert jobs.status(root / "b").state == "done"


def test_an_averaged_copy_refused_in_one_session_stays_for_another_session_that_took_it(tmp_path, monkeypatch):
    """As the upload itself: with "Average to 30 m pixels", the second session found the averaged copy made by
    the first and used it; the first one's labels, refused once averaged (here: by a stand-in for the check),
    then removed the copy from under it."""
    from core.errors import NoDataError
    from core.sources import local

    up = tmp_path / "uploads"
    bands = "R=1,G=2,B=3,NIR=4"
    taken, real = {}, local.validate_labels

    def averaged_labels_refused_after_the_other_session_took_the_copy(path, *args, **kwargs):
        if "_30m" not in Path(path).name:  # the labels as given: checked for real
            return real(path, *args, **kwargs)
        taken["other"] = local.use_uploaded_files(FLANDERS_S2.read_bytes(), "flanders.tif", up, band_spec=bands,
                                                  pixel_size_m=30)
        raise NoDataError("no labelled pixel left once averaged")

    monkeypatch.setattr(local, "validate_labels", averaged_labels_refused_after_the_other_session_took_the_copy)
    with pytest.raises(NoDataError):
        local.use_uploaded_files(FLANDERS_S2.read_bytes(), "flanders.tif", up, FLANDERS_LABELS.read_bytes(),
                                 "labels.tif", "worldcereal", band_spec=bands, pixel_size_m=30)
    other = Path(taken["other"].spec["image"])
    assert "_30m" in other.name and other.is_file(), other  # the averaged copy, still there
    local.LocalSource(other, band_map=taken["other"].spec["band_map"]).grid()
