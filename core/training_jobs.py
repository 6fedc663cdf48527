"""Training as a background job (:mod:`core.jobs`): start one on a region or on TFRecord patches, resume
a stopped one, and say which job made a model (what it was trained on, what it was fine-tuned from).

A job's run is in ``JOB_DIR/train`` (:data:`core.jobs.TRAIN_SUBDIR`): ``best.keras`` + card, ``last.keras``,
``history.csv``, ``run.json``. A model in use that the running job would replace with every better epoch is
copied out first (:func:`snapshot_checkpoint`); the copy's folder names the job it came from.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from core.config import TrainConfig, finite_number
from core.errors import CANNOT_RESUME, DIVERGED, JobError
from core import jobs

#: Beside a :func:`snapshot_checkpoint` copy: the folder of the job it was taken from.
SNAPSHOT_SOURCE = "from-job.txt"


def start_training(
    train_data: Sequence[str],
    val_data: Sequence[str],
    job_dir: str | os.PathLike,
    label_map: str = "cdl",
    config: TrainConfig | None = None,
    note: str = "",
    one_at_a_time: bool = False,
    trained_on: str | None = None,
    pixel_size_m: float | None = None,
    data_text: str | None = None,
) -> str:
    """Start ``core.train.train`` in the background; the run lands in ``job_dir/train``.

    ``train_data``/``val_data`` are what :func:`core.train.train` accepts (folders or
    ``IMAGE:LABELS`` pairs); ``config`` (the defaults where None) is kept in the job as its fields;
    ``one_at_a_time`` as in :func:`core.jobs.start_job`; ``trained_on`` names the image the training pixels
    were cut from (a region's scene), kept with the job for :func:`trained_on`; ``pixel_size_m``
    is the training pixels' size for images without a CRS, and ``data_text`` the training data in
    words for the model card (both :func:`core.train.train`'s).

    Raises:
        JobError: as :func:`core.jobs.start_job`.
    """
    config = config if config is not None else TrainConfig()  # (checked when it was made, in the caller's process)
    params = {"train_data": list(train_data), "val_data": list(val_data), "label_map": label_map,
              "config": config.to_dict()}
    if trained_on:
        params["trained_on"] = str(trained_on)
    if pixel_size_m is not None:
        params["pixel_size_m"] = float(pixel_size_m)
    if data_text:
        params["data_text"] = str(data_text)
    return jobs.start_job("train", params, job_dir, note=note, one_at_a_time=one_at_a_time)


def training_config(values: dict, init_model: str | os.PathLike | None = None) -> TrainConfig:
    """The :class:`core.config.TrainConfig` of a training form's ``values`` (its fields), for a run from
    ``init_model``'s weights and preset (its card's, whatever ``values`` say) where one is given.

    Raises:
        ConfigError: a value out of range, or a preset that does not take the patch size.
        InputNotFoundError, CorruptFileError: ``init_model`` has no readable card.
    """
    if not init_model:
        return TrainConfig(**values)
    from core.card import load_card

    return TrainConfig(**{**values, "init_model": str(init_model), "preset": load_card(init_model).preset})


def train_on_patches(train: str, val: str, jobs_root: str | os.PathLike, config: TrainConfig, *,
                     pixel_size_m: float | None = None, trained_on: str | None = None, cut_note: str = "") -> Path:
    """Start a training job (one at a time under ``jobs_root``) on TFRecord patches: ``train`` and
    ``val`` as :func:`core.patchset.check_sources` takes them, with ``config`` (from its ``init_model``'s
    weights where it names one: :func:`training_config`).
    ``cut_note``: how the patches were cut apart (:class:`core.patchset.TrainTestPatches`' note),
    which begins the job's note (:func:`core.dataset.validated_on_training_pixels` reads it).
    Returns the job's folder.

    Raises:
        ConfigError: bad patches; InputNotFoundError, CorruptFileError, InvalidDataError, NoDataError,
            RegionError: as :func:`core.patchset.check_sources`; JobError: a job is running (all before
            anything is written).
    """
    from core.patchset import check_sources

    note = " ".join(t for t in (cut_note.strip(), check_sources(train, val, config.patch_size)) if t)
    jobs.refuse_while_running(jobs_root)
    job_dir = jobs.new_job_dir(jobs_root)
    start_training([train], [val], job_dir, config=config, note=note, one_at_a_time=True,
                   pixel_size_m=pixel_size_m, trained_on=trained_on)
    return job_dir


def train_on_image(image: str | os.PathLike, labels: str | os.PathLike | None, label_map: str | None,
                   jobs_root: str | os.PathLike, config: TrainConfig, *, title: str = "", class_map: str | None = None,
                   pixel_size_m: float | None = None) -> Path:
    """Start a training job (one at a time under ``jobs_root``) on an image and its labels, one block
    held out for validation (:func:`core.dataset.spatial_holdout`); ``title`` and ``class_map`` (the
    labels' product, default ``label_map``) describe the data on the model card. Returns the job's
    folder; a start that fails leaves none.

    Raises:
        InvalidDataError: no labels; JobError: a job is running;
            RegionError, NoDataError, GridMismatchError: as :func:`core.dataset.spatial_holdout`.
    """
    import shutil

    from core.dataset import spatial_holdout
    from core.errors import InvalidDataError
    from core.raster import grid_of_file

    if labels is None or label_map is None:
        raise InvalidDataError("this region has no labels, so there is nothing to train on; use the sample scene or "
                               "upload labels on the Region page")
    patch_size = config.patch_size
    jobs.refuse_while_running(jobs_root)
    job_dir = jobs.new_job_dir(jobs_root)
    try:
        split = spatial_holdout(image, labels, label_map, job_dir / "holdout", patch_size, both_classes=True)
        start_training([split.train], [split.val], job_dir, label_map=split.label_map, config=config,
                       note=split.note, one_at_a_time=True, trained_on=str(image), pixel_size_m=pixel_size_m,
                       data_text=split.describe(title, grid_of_file(image).shape, class_map or label_map))
    except BaseException:
        shutil.rmtree(job_dir, ignore_errors=True)  # (its held-out labels, with no job to use them)
        raise
    return job_dir


def source_job(model_path: str | os.PathLike) -> Path | None:
    """The folder of the training job that made a model: ``JOB`` for ``JOB/train/best.keras`` (or
    ``last.keras``), or the job a :func:`snapshot_checkpoint` copy was taken from; else None."""
    path = Path(model_path)
    if path.parent.name == jobs.TRAIN_SUBDIR:
        return path.parent.parent
    try:
        named = (path.parent / SNAPSHOT_SOURCE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return Path(named) if named else None


def trained_on(model_path: str | os.PathLike) -> tuple[str, str] | None:
    """(the image, the job's note) of a model that a training job made from an image's pixels
    (:func:`start_training`'s ``trained_on``; the job's own checkpoint or a snapshot of it), or
    None: scores on that image are, but for its held-out block, training-set figures."""
    job_dir, params = _model_job(model_path)
    image = params.get("trained_on")
    return (str(image), jobs.job_note(job_dir)) if image else None


def fine_tuned_from(model_path: str | os.PathLike) -> str | None:
    """The model that a training job's model was fine-tuned from (its config's ``init_model``), or
    None (trained from random weights, or not a job's model)."""
    config = _model_job(model_path)[1].get("config")
    init = config.get("init_model") if isinstance(config, dict) else None
    return str(init) if init else None


def _model_job(model_path: str | os.PathLike) -> tuple[Path | None, dict]:
    """(folder, params) of the training job that made a model (:func:`source_job`); params are {} where
    there is none or its job file cannot be read."""
    job_dir = source_job(model_path)
    if job_dir is None:
        return None, {}
    params = jobs.job_spec(job_dir).get("params")
    return job_dir, params if isinstance(params, dict) else {}


def can_resume(job_dir: str | os.PathLike, st: jobs.JobStatus) -> bool:
    """Whether a stopped training job (``st``: its status) can go on from its last finished epoch:
    cancelled or failed, a checkpoint on disk, and not stopped by a diverged loss (which a resume
    with the same settings would only repeat) or by a checkpoint it could not resume from (each resume
    of it copied the damaged run into another failed job)."""
    return (st.state in ("cancelled", "failed") and (Path(job_dir) / jobs.TRAIN_SUBDIR / "last.keras").exists()
            and not st.message.lower().startswith((DIVERGED, CANNOT_RESUME)))


def best_checkpoint(job_dir: str | os.PathLike) -> Path:
    """Where a training job keeps its best checkpoint (there once an epoch has improved on the last)."""
    return Path(job_dir) / jobs.TRAIN_SUBDIR / "best.keras"


def best_not_in_use(job_dir: str | os.PathLike, st: jobs.JobStatus, model_in_use: str | os.PathLike | None) -> bool:
    """Whether a finished training job (``st``: its status) left a best checkpoint that is not the
    model in use (neither its ``best.keras`` nor a copy taken of it, :func:`source_job`, with its weights:
    a copy taken of an earlier epoch's best while it ran is not the best it ended with)."""
    from core.card import same_weights

    best = best_checkpoint(job_dir)
    if st.state != "done" or not best.exists():
        return False
    made_by = source_job(model_in_use) if model_in_use is not None else None
    if made_by is None or made_by.resolve() != Path(job_dir).resolve():
        return True
    if Path(model_in_use).resolve() == best.resolve():  # (the file itself: its card may have no fingerprint)
        return False
    return not same_weights(model_in_use, best)


def resume_training(stopped_dir: str | os.PathLike, job_dir: str | os.PathLike, one_at_a_time: bool = False) -> str:
    """Continue a cancelled or failed training job in a new job folder ``job_dir``: its run
    (``train/``: checkpoints, history, ``run.json``) is copied there and trained on from the last
    finished epoch, with the same data and settings (:func:`core.train.train` with ``resume``). The
    stopped job stays as it was. ``one_at_a_time`` as in :func:`core.jobs.start_job`.

    Returns the job id.

    Raises:
        JobError: ``stopped_dir`` holds no training job, it is still active, it finished no epoch
            (nothing to resume: start a new training), or as :func:`core.jobs.start_job`.
    """
    import shutil

    stopped_dir, job_dir = Path(stopped_dir), Path(job_dir)
    st = jobs.status(stopped_dir)
    spec = jobs.job_spec(stopped_dir)
    if spec.get("kind") != "train" or not isinstance(spec.get("params"), dict):
        raise JobError(f"{stopped_dir} holds no training job to resume")
    if st.active:
        raise JobError(f"the job in {stopped_dir} is still {st.state}; wait for it to stop before resuming it")
    run = stopped_dir / jobs.TRAIN_SUBDIR
    if not (run / "last.keras").exists():
        raise JobError(f"the job in {stopped_dir} finished no epoch, so there is nothing to resume; start a new training")
    if job_dir.exists():
        raise JobError(f"{job_dir} exists; resume in a new folder (core.jobs.new_job_dir gives a free name)")
    try:
        shutil.copytree(run, job_dir / jobs.TRAIN_SUBDIR, ignore=shutil.ignore_patterns(".*"))
    except OSError as err:
        shutil.rmtree(job_dir, ignore_errors=True)
        raise JobError(f"cannot copy the run of {stopped_dir} to {job_dir} ({err}); check the disk space") from None
    was = f"the training of {jobs.started_at(stopped_dir)}" if jobs.started_at(stopped_dir) else stopped_dir.name
    earlier = jobs.job_note(stopped_dir)
    again = " (itself resumed)" if RESUMED_NOTE.search(earlier) else ""  # (the sentences chained, one a resume)
    note = " ".join(n for n in (without_resumes(earlier), f"Resumed from {was}{again}.") if n)
    try:
        return jobs.start_job("train", {**spec["params"], "resume": True}, job_dir, note=note, one_at_a_time=one_at_a_time,
                         cwd=spec.get("cwd"))  # (where its data's relative paths are)
    except JobError:
        if not (job_dir / jobs.JOB_FILE).exists():  # refused before it was claimed: the copy goes
            shutil.rmtree(job_dir, ignore_errors=True)
        raise


#: the sentence :func:`resume_training` adds to a job's note
RESUMED_NOTE = re.compile(r"\s*Resumed from [^.]*\.")


def without_resumes(note: str) -> str:
    """A job's note without the sentence(s) that say it was resumed (:data:`RESUMED_NOTE`)."""
    return RESUMED_NOTE.sub("", note).strip()


def snapshot_checkpoint(model_path: str | os.PathLike, root: str | os.PathLike, attempts: int = 3) -> Path:
    """A copy of a checkpoint and its card under ``root`` (hash-named, see
    :func:`core.model.store_uploaded_model`), for a model in use that a running job would
    otherwise replace with every better epoch.

    The copy is loaded once to check that it is one checkpoint (the worker saving a better epoch
    between the two reads gave an old model under the new card): a mixed copy is removed and taken again.

    Raises:
        InputNotFoundError: the checkpoint or its card is missing; CorruptFileError: a bad card or model;
        CardMismatchError: the card is not its model's, also when taken again.
    """
    import shutil

    from core.errors import CardMismatchError, CropMapError, InputNotFoundError
    from core.card import card_path
    from core.model import load_model, store_uploaded_model

    model_path = Path(model_path)
    job_dir = model_path.parent.parent
    name = f"{job_dir.name}-{model_path.name}"  # job-...-best.keras
    for attempt in range(attempts):
        try:
            model_bytes, card_bytes = model_path.read_bytes(), card_path(model_path).read_bytes()
        except FileNotFoundError as err:
            raise InputNotFoundError(f"{err.filename} is gone (the job may have been removed); train again") from None
        stored = store_uploaded_model(model_bytes, card_bytes, root, max_bytes=max(len(model_bytes), 1), name=name)
        try:
            load_model(stored)
            break
        except CropMapError as err:  # (no unusable copy is left in the models folder)
            shutil.rmtree(stored.parent, ignore_errors=True)
            if not isinstance(err, CardMismatchError) or attempt == attempts - 1:
                raise
    if not (stored.parent / SNAPSHOT_SOURCE).exists():  # the job it came from (see source_job)
        from core.files import write_bytes_whole

        write_bytes_whole(stored.parent / SNAPSHOT_SOURCE, str(job_dir.resolve()).encode("utf-8"))
    return stored


@dataclass(frozen=True)
class Training:
    """A stopped training job as a list of earlier trainings shows it (:func:`earlier_trainings`)."""

    job_dir: Path
    status: jobs.JobStatus
    note: str
    size_bytes: int

    @property
    def best(self) -> Path | None:
        """Its best checkpoint, or None where it left none."""
        path = best_checkpoint(self.job_dir)
        return path if path.exists() else None

    @property
    def title(self) -> str:
        """"training of 2026-12-07 03:20" (when it started), or its folder's name where that does not say."""
        return f"training of {jobs.job_words(self.job_dir).removeprefix('started ')}"

    def words(self) -> str:
        """One line: "Training of 2026-12-07 03:20: done, 5 of 5 epochs, best epoch 4 (val IoU 0.712), 12.3 MB"."""
        st = self.status
        finished = st.epoch if st.state == "done" else len(st.history)
        best = st.best()
        kept = ""
        if best is not None:
            iou = f" (val IoU {float(best['val_iou']):.3f})" if finite_number(best.get("val_iou")) else ""
            kept = f", best epoch {best['epoch']}{iou}"
        return (f"{self.title[0].upper()}{self.title[1:]}: {st.state}, "
                f"{finished} of {st.epochs or '?'} epochs{kept}, {self.size_bytes / 1e6:.1f} MB")


def _folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (files that go while it is read are left out)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total


def earlier_trainings(jobs_root: str | os.PathLike, skip: Sequence[str | os.PathLike] = ()) -> list[Training]:
    """The training jobs under ``jobs_root`` that have stopped (done, cancelled or failed), newest first,
    but for those in ``skip`` (a page's own job, shown already). Unreadable folders are left out; never raises."""
    skipped = {Path(s).resolve() for s in skip}
    found = []
    for job_dir, st in jobs.find_jobs(jobs_root):
        if st.active or st.kind != "train" or job_dir.resolve() in skipped:
            continue
        found.append(Training(job_dir, st, jobs.job_note(job_dir), _folder_bytes(job_dir)))
    return found


def delete_training(job_dir: str | os.PathLike, jobs_root: str | os.PathLike,
                    model_in_use: str | os.PathLike | None = None, used_elsewhere: Sequence[str] = ()) -> None:
    """Delete a stopped training job's folder (checkpoints, history, log) for good, to free disk space.
    The folder is first renamed to a hidden name, so that a deletion broken off half-way leaves no job
    that looks whole; a copy of a checkpoint taken out of it (:func:`snapshot_checkpoint`) is kept.
    ``used_elsewhere``: the models other sessions use (a checkpoint of the job among them refuses).

    Raises:
        JobError: ``job_dir`` is not a job folder directly under ``jobs_root``, the job is still active,
            or it made the model in use (load another model first), or one of its checkpoints is another
            session's model; or the folder cannot be removed.
    """
    import shutil

    job_dir, root = Path(job_dir), Path(jobs_root)
    if job_dir.name.startswith(".") or job_dir.resolve().parent != root.resolve():
        raise JobError(f"{job_dir} is not a training job of {root}; nothing was deleted")
    st = jobs.status(job_dir)  # (JobError where it holds no job)
    if st.active:
        raise JobError(f"the training {jobs.job_words(job_dir)} is still {st.state}; cancel it and wait for it "
                       "to stop before deleting it")
    made_by = source_job(model_in_use) if model_in_use else None
    if made_by is not None and made_by.resolve() == job_dir.resolve():
        raise JobError(f"the training {jobs.job_words(job_dir)} made the model in use; load another model "
                       "(Shipped weights) before deleting it")
    inside = job_dir.resolve()
    if any(Path(other).resolve().is_relative_to(inside) for other in used_elsewhere):
        raise JobError(f"the training {jobs.job_words(job_dir)} made the model another session uses (another tab, "
                       "or another person on this server); load another model there, or wait, before deleting it")
    doomed = job_dir.with_name(f".deleting-{job_dir.name}")
    try:
        job_dir.rename(doomed)
    except OSError as err:
        raise JobError(f"cannot delete {job_dir} ({err.strerror or err}); check the folder's permissions") from None
    shutil.rmtree(doomed, ignore_errors=True)  # (what is left, if anything, is hidden and never listed)
