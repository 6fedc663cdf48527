"""Training a U-Net with callbacks: progress, best checkpoint on validation loss, early stopping,
CSV history, cancellation, and resume from the last finished epoch.

A run directory holds:
``last.keras`` (model + optimizer after the last finished epoch), ``best.keras`` + ``best.json``
(the best model on validation loss, with its card), ``history.csv``, ``run.json`` (the config and
data the run was started with). Calling :func:`train` again on the same directory with
``resume=True`` continues after the last finished epoch.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import zipfile
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from core.tfimport import import_tensorflow

import_tensorflow()  # quietly, as core.model

import keras  # noqa: E402
import numpy as np  # noqa: E402

from core.config import TrainConfig, check_pixel_size_m  # noqa: E402
from core.dataset import (  # noqa: E402
    Scene,
    SceneSet,
    compute_normalization,
    load_scenes,
    pair_paths,
    reader_errors_raised,
    tfrecord_dataset,
    tiled_patches,
)
from core.errors import (  # noqa: E402
    ConfigError,
    CropMapError,
    CANNOT_RESUME,
    DIVERGED,
    CorruptFileError,
    InvalidDataError,
    NoDataError,
    OutputExistsError,
    RegionError,
)
from core.files import check_output_dir, missing_folders, remove_empty, replacing, synced  # noqa: E402
from core.labels import get_class_map  # noqa: E402
from core.card import ModelCard, Normalization, card_path, check_bands, check_normalization, get_preset  # noqa: E402
from core.model import (  # noqa: E402
    LoadedModel,
    MaskedDice,
    MaskedIoU,
    build_unet,
    compile_model,
    load_model,
    masked_bce_dice,
    save_model,
    set_batchnorm_momentum,
)
from core.patchset import PatchSet, check_patch_classes, open_patch_set, patch_normalization, patch_validation, split_sources  # noqa: E402
from core.bands import FEATURE_BANDS, INPUT_BANDS  # noqa: E402

#: ``progress(event)``: event is a dict with "epoch", "epochs", "step", "steps" and the latest logs.
ProgressFn = Callable[[dict], None]
CUSTOM_OBJECTS = {"masked_bce_dice": masked_bce_dice, "MaskedIoU": MaskedIoU, "MaskedDice": MaskedDice}


@dataclass
class TrainResult:
    run_dir: Path
    best_model: Path
    epochs_done: int
    best_val_loss: float
    best_metrics: dict
    stopped: str  # "completed", "early_stopping", "cancelled"


class _Reporter(keras.callbacks.Callback):
    """Reports progress, checks for cancellation, saves last/best checkpoints atomically."""

    def __init__(self, run_dir: Path, card: ModelCard, epochs: int, steps: int, progress: ProgressFn | None,
                 should_stop: Callable[[], bool] | None, best_loss: float, best_logs: dict):
        super().__init__()
        self.run_dir, self.card, self.epochs, self.steps = run_dir, card, epochs, steps
        self.batch_size = int(card.training.get("batch_size", 1))
        self.progress, self.should_stop = progress, should_stop
        self.best_loss = best_loss
        self.best_logs = dict(best_logs)  # a resumed run starts from its best epoch so far
        self.cancelled = False
        self.epoch = 0
        self._steps_done = 0  # (of the epoch running)
        self._t = time.time()
        self._reported = time.monotonic()  # (of the last batch reported)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._steps_done = 0
        self._t = time.time()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise self._diverged(f"the training loss became {float(loss)} at epoch {self.epoch + 1}, step {batch + 1}")
        # every 5th step, an epoch's first and last, and any step a second after the last report
        # (short epochs of few steps were reported an epoch late)
        now = time.monotonic()
        if self.progress and (batch % 5 == 0 or batch + 1 == self.steps or now - self._reported >= 1.0):
            self._reported = now
            self.progress({"event": "batch", "epoch": self.epoch + 1, "epochs": self.epochs, "step": batch + 1,
                           "steps": self.steps, "logs": {k: float(v) for k, v in (logs or {}).items()}})
        self._steps_done = batch + 1
        if self.should_stop and self.should_stop():
            self.cancelled = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if self.cancelled and self._steps_done < self.steps:
            return  # an interrupted epoch is not a finished one: keep the previous checkpoints
        # (cancelled at its last step: a finished epoch, validated; it is kept as any other)
        bad = {k: v for k, v in logs.items() if k.endswith("loss") and not np.isfinite(v)}
        if bad:  # a NaN model is no checkpoint: the epoch is not recorded, the previous ones stay
            k, v = next(iter(bad.items()))
            raise self._diverged(f"the {'validation' if k.startswith('val_') else 'training'} loss was {v} at the end of "
                                 f"epoch {epoch + 1}")
        # last.keras is put in place last: until then it holds the previous epoch's end, so that a
        # run interrupted on the way redoes this epoch from its start (a history row written just
        # before the interrupt is dropped on resume: the checkpoint's step count tells its epoch).
        tmp = self.run_dir / ".last.tmp.keras"
        try:
            self.model.save(tmp)
            val_loss = logs.get("val_loss", logs.get("loss", float("inf")))
            if val_loss < self.best_loss:  # saved before the epoch counts as finished (the history row)
                # patches seen: by this checkpoint, not in the whole planned run (which may stop early)
                training = {**self.card.training, "patches_seen": (epoch + 1) * self.steps * self.batch_size}
                card = ModelCard(**{**self.card.__dict__, "training": training,
                                    "metrics": {"val": dict(logs, epoch=epoch + 1)}})
                save_model(self.model, card, self.run_dir / "best.keras")
                self.best_loss = val_loss
                self.best_logs = dict(logs, epoch=epoch + 1)
            _append_history(self.run_dir / "history.csv", epoch + 1, logs)
            synced(tmp)
            os.replace(tmp, self.run_dir / "last.keras")
        except BaseException:  # e.g. a full disk or an interrupt: no partial checkpoint is left behind
            tmp.unlink(missing_ok=True)
            raise
        if self.progress:
            self.progress({"event": "epoch", "epoch": epoch + 1, "epochs": self.epochs, "step": self.steps,
                           "steps": self.steps, "seconds": time.time() - self._t, "logs": logs,
                           "best_val_loss": self.best_loss})


    def _diverged(self, what: str) -> InvalidDataError:
        """The error that ends a run whose loss is no longer a number (NaN or infinite)."""
        lr = float(self.card.training.get("learning_rate", 1e-3))
        kept = (f"the checkpoints of the {self.epoch} finished epoch(s) in {self.run_dir} are kept" if self.epoch
                else "no epoch had finished, so no model was saved")
        return InvalidDataError(f"{DIVERGED}: {what}; start again with a lower learning rate (e.g. {lr / 10:g}: "
                                f"--lr, or 'Learning rate' on the Model page), or check the training data; {kept}")


class _EarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's early stopping on val loss, started from a resumed run's best loss and the epochs
    since it (Keras resets both at the start of every fit)."""

    def __init__(self, patience: int, best: float, wait: int):
        super().__init__(monitor="val_loss", patience=patience, restore_best_weights=False)
        self._resume = (best, wait)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        best, wait = self._resume
        if best != float("inf"):
            self.best, self.wait = best, wait


def _append_history(path: Path, epoch: int, logs: dict) -> None:
    """Append one finished epoch to the CSV history (header on first write)."""
    keys = sorted(logs)
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["epoch", *keys])
        w.writerow([epoch, *(f"{logs[k]:.6g}" for k in keys)])


def _write_history(path: Path, rows: list[dict]) -> None:
    """Replace the CSV history with ``rows`` (as :func:`_read_history` gives them); none removes it."""
    if not rows:
        path.unlink(missing_ok=True)
        return
    with replacing(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _load_checkpoint(path: Path) -> keras.Model:
    """The model and optimizer of a run's ``last.keras``.

    Raises:
        CorruptFileError: the checkpoint is unreadable.
    """
    try:
        return keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError, TypeError) as err:  # as load_model's
        raise CorruptFileError(f"{CANNOT_RESUME}: checkpoint {path} is unreadable ({type(err).__name__}); start a new run") from None


def _init_model(config: TrainConfig) -> LoadedModel:
    """The model to fine-tune from, checked against the run's bands and preset.

    Raises:
        InputNotFoundError, CorruptFileError: the model or its card is missing or unreadable.
        ModelMismatchError: it was trained on other bands.
        ConfigError: its preset is not ``config.preset``.
    """
    loaded = load_model(config.init_model)
    check_bands(loaded.card, FEATURE_BANDS)
    if loaded.card.preset != config.preset:
        raise ConfigError(f"{config.init_model} is a '{loaded.card.preset}' model; fine-tune it with --preset {loaded.card.preset}")
    return loaded


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        with path.open() as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        raise CorruptFileError(f"{CANNOT_RESUME}: {path} is damaged; start again with --overwrite or use a new --out") from None


def _best_val_loss(history: list[dict], path: Path) -> float:
    """The lowest validation loss in a run's history (inf when empty).

    Raises:
        CorruptFileError: the history lacks a readable ``val_loss`` column.
    """
    try:
        return min((float(h["val_loss"]) for h in history), default=float("inf"))
    except (KeyError, TypeError, ValueError):
        raise CorruptFileError(f"{CANNOT_RESUME}: {path} is damaged (no readable val_loss); start again with --overwrite "
                               "or use a new --out") from None


def _unrecorded_best(best: Path, recorded: int, best_loss: float) -> dict | None:
    """The validation figures of ``best`` (from its card) where they are of an epoch after the
    ``recorded`` ones and better than their ``best_loss``: a run interrupted between saving an
    epoch's best model and its history row (the epoch is redone on resume). None otherwise, or when
    the card cannot be read (the history's best stands)."""
    from core.card import load_card

    if not best.exists():
        return None
    try:
        val = dict((load_card(best).metrics or {}).get("val") or {})
        if int(val.get("epoch", 0)) > recorded and float(val["val_loss"]) < best_loss:
            return {k: int(v) if k == "epoch" else float(v) for k, v in val.items()}
    except (CropMapError, KeyError, TypeError, ValueError):
        pass
    return None


def _best_logs(history: list[dict], best_loss: float, path: Path) -> dict:
    """The history row of the epoch with ``best_loss`` as numbers (``epoch`` an int); {} when none.

    Raises:
        CorruptFileError: that row holds a value that is not a number (or an epoch not a whole one).
    """
    for row in history:
        if float(row["val_loss"]) == best_loss:
            try:
                return {k: int(v) if k == "epoch" else float(v) for k, v in row.items() if v not in (None, "")}
            except (TypeError, ValueError):
                raise CorruptFileError(f"{CANNOT_RESUME}: {path} is damaged (its best epoch's row holds a value that is "
                                       "not a number); start again with --overwrite or use a new --out") from None
    return {}


def _read_run_info(path: Path, config: TrainConfig, data: dict | None = None,
                   pixel_size_m: float | None = None) -> tuple[Normalization, float | None]:
    """The normalization and pixel size (m, or None) a run was started with, from its ``run.json``.

    Raises:
        CorruptFileError: ``run.json`` is truncated or not a run's record.
        ConfigError: the run was started with another configuration than ``config``, on other
            ``data`` ({"train": [...], "val": [...], "label_map": ..., and "bands" where given}), or
            with another ``pixel_size_m`` (None accepts the run's own).
    """
    try:
        info = json.loads(path.read_text())
        norm = Normalization(tuple(float(v) for v in info["normalization"]["mean"]),
                             tuple(float(v) for v in info["normalization"]["std"]))
        check_normalization(norm, len(FEATURE_BANDS))  # one finite mean and positive std per band
        started = TrainConfig(**info["config"])
        recorded_px = "pixel_size_m" in info  # (not in a run recorded before the pixel size was)
        started_px = check_pixel_size_m(info["pixel_size_m"]) if recorded_px else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, ConfigError, CorruptFileError):
        raise CorruptFileError(f"{CANNOT_RESUME}: {path} is truncated or damaged; start again with --overwrite "
                               "or use a new --out") from None
    if started != config:
        changed = ", ".join(f"{option} {_shown(getattr(started, name))} (now {_shown(getattr(config, name))})"
                            for name, option in TRAIN_OPTIONS if getattr(started, name) != getattr(config, name))
        raise ConfigError(f"{path.parent} was started with {changed or 'another configuration'}; resume with the "
                          "same options, or train in a new --out (to train longer, fine-tune its best.keras with --init)")
    for key, value in (data or {}).items():
        if key != "bands" and key in info and _data_key(info[key]) != _data_key(value):
            option = {"label_map": "--label-map"}.get(key, f"--{key}")
            was = " ".join(map(str, info[key])) if isinstance(info[key], list) else info[key]
            raise ConfigError(f"{path.parent} was started with other {option} ({was}); resume with the same "
                              "data or use a new --out")
    if data is not None and info.get("bands") != data.get("bands"):  # recorded only where given
        was = f"--bands {info['bands']}" if info.get("bands") else "no --bands (bands read by their names)"
        raise ConfigError(f"{path.parent} was started with {was}; resume with the same or use a new --out")
    if not recorded_px:
        return norm, pixel_size_m
    if pixel_size_m is not None and (started_px is None or abs(pixel_size_m - started_px) > 1e-6):
        was = f"--pixel-size-m {started_px:g}" if started_px is not None else "no --pixel-size-m (and images without a CRS)"
        raise ConfigError(f"{path.parent} was started with {was}; resume with the same (or leave it out) or use a new --out")
    return norm, started_px


def _check_patch_fits(data: Sequence[str | os.PathLike], scenes: Sequence[Scene], size: int) -> None:
    """Every image holds at least one ``size`` px patch.

    Raises:
        RegionError: an image is smaller than one patch (the message gives the largest patch size that fits).
    """
    for (img, _), scene in zip(pair_paths(data), scenes):
        h, w = scene.labels.shape
        if h < size or w < size:
            fit = min(h, w) // 16 * 16
            fix = f"use --patch-size {fit} or larger images" if fit >= 32 else "use larger images (at least 32 x 32 px)"
            raise RegionError(f"{img.name} is {w} x {h} px, smaller than one {size} px patch; {fix}")


def _check_validation_classes(yv: np.ndarray, name: str) -> None:
    """Validation targets ``yv`` (n, s, s, 2 = crop, valid) hold both crop and not-crop pixels.

    Raises:
        NoDataError: one class is missing: validation IoU and Dice would say nothing, and the best
            checkpoint (the lowest validation loss) would be the model that finds least (or most) crop.
    """
    crop, valid = yv[..., 0] > 0.5, yv[..., 1] > 0.5
    missing = "crop" if not (crop & valid).any() else "not-crop" if not (~crop & valid).any() else None
    if missing:
        raise NoDataError(f"the validation data ({name}) hold no {missing} pixel: validation IoU and F1 would not "
                          f"measure the model, and the best checkpoint would be the one that finds "
                          f"{'least' if missing == 'crop' else 'most'} crop; validate on data with both crop and "
                          "not-crop pixels (in the dashboard: a region with some cropland and some other land, on the Region page)")


def _check_training_classes(scenes: Sequence[Scene], name: str) -> None:
    """The training scenes' labels hold both crop and not-crop pixels (as the dashboard's hold-out
    asks of a region).

    Raises:
        NoDataError: one class is missing: the model would learn to call everything the other.
    """
    from core.labels import CROP, NOT_CROP

    has = {c for c in (CROP, NOT_CROP) if any((sc.labels == c).any() for sc in scenes)}
    if len(has) < 2:
        missing = "crop" if CROP not in has else "not-crop"
        raise NoDataError(f"the training data ({name}) hold no {missing} pixel, so the model would learn to call "
                          f"everything {'not crop' if missing == 'crop' else 'crop'}; train on labels with both crop "
                          "and not-crop pixels (labels of only crop fields: add fields of other land, or label the "
                          "land around them as not crop)")


def _open_data(items: Sequence[str], size: int, label_map: str, flag: str,
               band_map: dict[str, int] | None = None) -> list[Scene] | PatchSet:
    """The scenes (images read into memory, their bands by ``band_map`` where given) or the checked
    TFRecord patches of a --train/--val list.

    Raises:
        as :func:`train` for its data.
    """
    if split_sources(items, flag):
        return open_patch_set(items, size)
    scenes = load_scenes(items, label_map, role="validation" if flag == "--val" else "training", band_map=band_map)
    _check_patch_fits(items, scenes, size)
    return scenes


def shared_inputs(train_data: Sequence[str], val_data: Sequence[str], label_map: str = "cdl") -> list[str]:
    """Names of the files that both the training and the validation data read (the images of
    image/label pairs, the files of TFRecord patches), however their paths are written; [] when
    none. An image read by both with other label files (``label_map``'s) counts only where a pixel
    is labelled in both: held-out labels, as ``patches --test`` writes them, share no pixel. Called
    on data that :func:`train` has read."""
    from core.patches import list_records

    def real(path: str) -> str:
        return path if "://" in path else os.path.realpath(path)

    def files(items: Sequence[str]) -> dict[str, tuple[str, set[str | None]]]:
        """{file: (its name, the label files read with it; None: patches, which hold their labels)}"""
        found: dict[str, tuple[str, set[str | None]]] = {}
        if split_sources(items, "--val"):
            pairs = [(f, None) for item in items for f in list_records(item)]
        else:
            pairs = [(str(img), real(str(lab))) for img, lab in pair_paths(items)]
        for f, lab in pairs:
            found.setdefault(real(f), (os.path.basename(f), set()))[1].add(lab)
        return found

    train_files, val_files = files(train_data), files(val_data)
    return sorted(val_files[k][0] for k in train_files.keys() & val_files.keys()
                  if any(_labelled_in_both(k, a, b, label_map) for a in train_files[k][1] for b in val_files[k][1]))


def _labelled_in_both(image: str, a: str | None, b: str | None, label_map: str) -> bool:
    """Whether label files ``a`` and ``b`` of ``image`` label a pixel in common (both None or the same
    file: yes), read in strips. Where they cannot be read, yes (the note errs on the side of saying it)."""
    from core.errors import CropMapError
    from core.labels import NODATA
    from core.raster import grid_of_file, read_labels, row_strips
    from rasterio.windows import Window

    if a == b or a is None or b is None:
        return True
    try:
        grid, class_map = grid_of_file(image), get_class_map(label_map)
        for r0, r1 in row_strips(grid.height, grid.width):
            window = Window(0, r0, grid.width, r1 - r0)
            if ((read_labels(a, class_map, grid, window) != NODATA)
                    & (read_labels(b, class_map, grid, window) != NODATA)).any():
                return True
    except CropMapError:
        return True
    return False


def band_spec(band_map: dict[str, int]) -> str:
    """``band_map`` as ``--bands`` takes it: the numbers of R, G, B, NIR (``"3,2,1,4"``)."""
    return ",".join(str(band_map[b]) for b in INPUT_BANDS)


def _training_pixel_size(train_data: Sequence[str]) -> float | None:
    """The training images' common pixel size in metres, or None (no CRS, or sizes differ by over 10%)."""
    from core.raster import grid_of_file

    sizes = [grid_of_file(img).pixel_size_m() for img, _ in pair_paths(train_data)]
    if not sizes or any(s is None for s in sizes) or max(sizes) > 1.1 * min(sizes):
        return None
    return round(float(np.median(sizes)), 2)


#: TrainConfig fields and the train command's options that set them
TRAIN_OPTIONS = (("preset", "--preset"), ("epochs", "--epochs"), ("steps_per_epoch", "--steps"),
                 ("batch_size", "--batch-size"), ("learning_rate", "--lr"), ("patch_size", "--patch-size"),
                 ("val_patches", "--val-patches"), ("patience", "--patience"), ("seed", "--seed"),
                 ("init_model", "--init"), ("bn_momentum", "--bn-momentum"))


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else "not given" if value is None else str(value)


def _data_key(value):
    """A run's recorded --train or --val list (or another value) as compared on resume: each path
    made absolute and normal, so that ``data/``, ``data`` and ``./data`` are one folder (a resume
    that wrote it otherwise was refused as other data). Addresses (``gs://...``) stay as written."""
    if not isinstance(value, list):
        return value

    def normal(path: str) -> str:
        return path.rstrip("/") if "://" in path else os.path.normpath(os.path.abspath(path))

    # (an IMAGE:LABELS pair: each of its paths; a path with a colon of its own is cut alike on both sides)
    return [":".join(normal(part) for part in str(item).split(":")) if "://" not in str(item) else normal(str(item))
            for item in value]


def train_command(config: TrainConfig, train_data: Sequence[str], val_data: Sequence[str], run_dir: str | os.PathLike,
                  label_map: str = "cdl", pixel_size_m: float | None = None) -> str:
    """The ``python -m core train`` command line that starts a run with these settings (for the
    model card of a run started otherwise, e.g. from the dashboard, so that it can be reproduced)."""
    defaults = TrainConfig()
    args = ["python", "-m", "core", "train", "--train", *map(str, train_data), "--val", *map(str, val_data),
            "--out", str(run_dir)]
    if label_map != "cdl":
        args += ["--label-map", label_map]
    for name, option in TRAIN_OPTIONS:
        value = getattr(config, name)
        if value is not None and value != getattr(defaults, name):
            args += [option, _shown(value)]
    if pixel_size_m is not None:
        args += ["--pixel-size-m", f"{pixel_size_m:g}"]
    return " ".join(shlex.quote(a) for a in args)


def train(
    config: TrainConfig,
    train_data: Sequence[str],
    val_data: Sequence[str],
    run_dir: str | os.PathLike,
    label_map: str = "cdl",
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    command: str | None = None,
    pixel_size_m: float | None = None,
    band_map: dict[str, int] | None = None,
    data_text: str | None = None,
) -> TrainResult:
    """Train a U-Net on image/label pairs (folders of ``*_rgbn.tif`` + ``*_cdl.tif``, or ``IMAGE:LABELS``)
    or on TFRecord patches (Earth Engine's training export or ``python -m core patches``: files,
    folders, globs or ``gs://`` paths; see :mod:`core.patchset`). ``train_data`` and ``val_data``
    each hold one kind; patches carry their own 1/0/255 labels, so ``label_map`` applies to images.
    From patches, training draws a random ``patch_size`` crop of each stored patch and validation
    uses their centres. ``band_map`` (1-based numbers of R, G, B, NIR, as
    :func:`core.bands.parse_band_spec` gives them) applies to every image; None reads the bands by
    their names. ``data_text`` says in words what the model is trained on, for its card (the
    dashboard's region and its held-out block); by default the card lists the data's paths.

    ``pixel_size_m`` (recorded in the card) defaults to the training images' pixel size when they
    all have a CRS and share it. Everything is checked before ``run_dir`` is touched: a mistake
    leaves a previous run there as it was (even with ``overwrite``), and writes nothing. A run that
    fails or is stopped before its first epoch ends leaves ``run_dir`` as it was too (a folder it
    made is removed), so the same command can simply run again; one killed then (no cleanup ran) is
    put as it was by the next start. The card's command is ``command`` (by default this process's,
    without ``--resume``: the command that makes the model from nothing).

    Raises:
        OutputExistsError: ``run_dir`` holds a run and neither ``resume`` nor ``overwrite`` is set.
        CorruptFileError: the checkpoint, ``run.json`` or history to resume from is unreadable, or
            the checkpoint is missing from a run that has finished more than one epoch.
        InputNotFoundError, BandError, GridMismatchError, InvalidDataError, NoDataError: bad training data.
        CorruptFileError: TFRecord patches are damaged or lack a band or the label.
        RegionError: an image or a stored patch is smaller than one patch.
        ConfigError: another run is training in ``run_dir``; ``run_dir`` is a file; unknown preset or label map; bad ``pixel_size_m``, or one
            that differs from the pixels of training images with a CRS by over 10%; an image
            paired with itself; images and patches mixed in one list; ``band_map`` with patches only;
            another configuration (or data, or ``band_map``) than the run to resume.
        ModelMismatchError, ConfigError: ``config.init_model`` has other bands or another preset
            (it is loaded when a run starts; resuming after a finished epoch does not need it).
        NoDataError: the validation data hold no crop pixel, or no not-crop pixel.
        InvalidDataError: the loss became NaN or infinite (the training diverged): the run stops at
            once, and the epochs finished before are kept as checkpoints and history.
    """
    run_dir = Path(run_dir)
    with _one_trainer(run_dir):  # (two at once in one folder would write over each other's checkpoints)
        history_path = run_dir / "history.csv"
        run_info_path = run_dir / "run.json"
        _put_back_previous_run(run_dir)  # (a run killed as it started over another: that one is the folder's again)
        _check_run_dir(run_dir, label_map, resume, overwrite)
        if overwrite and config.init_model and "://" not in config.init_model and os.path.realpath(
                config.init_model) in {os.path.realpath(run_dir / n) for n in RUN_FILES}:
            # (it went with the run it replaced, and the new card named a model of its own folder as its start)
            raise ConfigError(f"--init {config.init_model} is a model of the run in --out {run_dir}, which --overwrite "
                              "replaces: copy the model out of the folder first, or train in a new --out")

        # Check everything before writing: nothing below touches run_dir until the run starts.
        pixel_size_m = check_pixel_size_m(pixel_size_m)
        get_preset(config.preset)  # (an unknown preset: refused before anything is written)
        fresh = not (resume and (run_dir / "last.keras").exists())
        # A resumed run continues from last.keras with run.json's normalization: the model it was
        # fine-tuned from is needed only to start (its weights) or where run.json is gone (its normalization).
        need_init = config.init_model and (fresh or not run_info_path.exists())
        init = _init_model(config) if need_init else None
        if band_map and split_sources(train_data, "--train") and split_sources(val_data, "--val"):
            raise ConfigError("--bands gives the band numbers of images; TFRecord patches name their bands, so leave "
                              "it out")
        described = {"train": [str(p) for p in train_data], "val": [str(p) for p in val_data], "label_map": label_map}
        if band_map:  # only where given, so that a run recorded before --bands existed resumes
            described["bands"] = band_spec(band_map)
        resumed = _read_run_info(run_info_path, config, described, pixel_size_m) if resume and run_info_path.exists() else None
        if resumed:
            pixel_size_m = resumed[1]
        start = _Start() if fresh else _resume_point(run_dir, config)
        # Training patches are drawn from a random stream that a resumed run must not replay from its
        # start (it would see the first epochs' patches again); validation always uses config.seed.
        data_seed = (config.seed + 1_000_003 * start.epoch) % 2**32  # a seed numpy takes, as config.seed
        keras.utils.set_random_seed(data_seed)
        train_src = _open_data(train_data, config.patch_size, label_map, "--train", band_map)
        val_src = _open_data(val_data, config.patch_size, label_map, "--val", band_map)
        # patches' statistics are taken whichever the run uses: taking them checks the patches' scale (a
        # fine-tune or a resumed run on values x 10000 went ahead without a word)
        classes: dict = {}  # (the training patches' label classes, seen as their statistics are taken)
        own = patch_normalization(train_src, seed=config.seed, classes=classes) if isinstance(train_src, PatchSet) else None
        if resumed:
            norm = resumed[0]
        elif init is not None:
            norm = init.card.normalization
        elif own is not None:
            norm = own
        else:
            norm = compute_normalization(train_src, seed=config.seed)
        xv, yv = _validation_arrays(val_src, config, norm)
        _check_validation_classes(yv, ", ".join(map(str, val_data)))
        if isinstance(train_src, PatchSet):
            check_patch_classes(classes, train_src)
        else:
            _check_training_classes(train_src, ", ".join(map(str, train_data)))
        sparse = False  # whether the labels are sparse: patches around labelled pixels (core.dataset.patch_windows)
        if isinstance(train_src, PatchSet):
            data = tfrecord_dataset(train_src.files, norm, config.patch_size, batch_size=config.batch_size,
                                    augment=config.augment, seed=data_seed, record_size=train_src.record_size)
        else:
            scene_set = SceneSet(train_src, config.patch_size, norm, seed=data_seed)
            data = scene_set.tf_dataset(config.batch_size, config.augment)
            sparse = scene_set.sparse  # (labels of a few surveyed fields: said in the card)
        if not isinstance(train_src, PatchSet):
            own = _training_pixel_size(train_data)
            if pixel_size_m is None:
                pixel_size_m = own
            elif own is not None and not resumed and abs(pixel_size_m / own - 1) > 0.1:  # (the card's would be false)
                raise ConfigError(f"--pixel-size-m {pixel_size_m:g} contradicts the training images' own {own:g} m pixels "
                                  "(by their CRS); leave it out, it is read from them")

        model = start.model
        if fresh:
            model = init.model if init is not None else build_unet(config.preset, len(FEATURE_BANDS))
            total = config.epochs * config.steps_per_epoch
            lr = keras.optimizers.schedules.CosineDecay(config.learning_rate, total, alpha=0.02)
            compile_model(model, lr)
        # (a resumed run's checkpoint has it already; a model fine-tuned from would keep its own)
        set_batchnorm_momentum(model, config.bn_momentum)

        # The run starts: only now are a previous run's files set aside (they come back if the new run
        # fails or is interrupted before its first epoch ends) and the new ones written.
        # (fresh over a run's files: --overwrite, or --resume of a run whose first epoch ended before its
        # last.keras was put in place; a resumed run keeps its files whatever happens)
        with _previous_run_kept(run_dir, fresh):
            if start.history_ahead:
                _write_history(history_path, start.history)
            cmd = command or command_line(sys.argv[1:])
            run_info = {"config": config.to_dict(), **described,
                        "normalization": {"mean": list(norm.mean), "std": list(norm.std)},
                        "pixel_size_m": pixel_size_m, "command": cmd}
            with replacing(run_info_path) as tmp:  # creates run_dir
                tmp.write_text(json.dumps(run_info, indent=2))

            card = ModelCard(
                preset=config.preset, bands=FEATURE_BANDS, normalization=norm, patch_size=config.patch_size,
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), command=cmd,
                # + patches_seen, by each best checkpoint (_Reporter)
                training={**config.to_dict(), **({"patches_around_labels": True} if sparse else {})},
                data=data_text or _data_text(train_data, val_data, label_map, train_src, val_src),
                pixel_size_m=pixel_size_m,
            )
            reporter = _Reporter(run_dir, card, config.epochs, config.steps_per_epoch, progress, should_stop,
                                 start.best_loss, start.best_logs)
            callbacks = [reporter, _EarlyStopping(config.patience, start.best_loss, start.since_best)]
            if start.epoch < config.epochs and start.since_best < config.patience:  # else it had stopped early
                with reader_errors_raised(lambda: _kept_epochs_note(history_path)):
                    model.fit(
                        data,
                        steps_per_epoch=config.steps_per_epoch,
                        epochs=config.epochs,
                        initial_epoch=start.epoch,
                        validation_data=(xv, yv),
                        validation_batch_size=config.batch_size,
                        callbacks=callbacks,
                        shuffle=False,  # both inputs draw patches at random already (Keras warns that it ignores True)
                        verbose=0,
                    )
            epochs_done = len(_read_history(history_path))
            # (a cancel on the last step of the last epoch came after all the run had to do)
            stopped = ("completed" if epochs_done >= config.epochs else "cancelled" if reporter.cancelled
                       else "early_stopping")
            return TrainResult(run_dir, run_dir / "best.keras", epochs_done, reporter.best_loss, reporter.best_logs, stopped)


@contextmanager
def _one_trainer(run_dir: Path) -> Iterator[None]:
    """Hold, while the block runs, a lock that only one training run of ``run_dir`` can take (a
    ``flock`` on a file of the system's temporary folder named after the folder's path: the run's own
    folder holds nothing of it, and the system releases it if the run dies, so it never goes stale).
    The run removes the file when it ends (one file a run folder used to pile up in /tmp).

    Raises:
        ConfigError: another run of ``run_dir`` holds it (its process number said where known).
    """
    key = hashlib.sha1(str(run_dir.absolute().resolve()).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"cropmap-train-{key}.lock"
    while True:
        opened = _lock_file(path)
        if opened is None:  # (no lock file to be had: the run goes on unguarded, as before there was one)
            yield
            return
        fd, writable = opened
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            named = holder.isdigit() and _alive(int(holder))  # (a reader of the file cannot write its own number)
            raise ConfigError(f"another training run{f' (process {holder})' if named else ''} is writing to "
                              f"{run_dir}; wait for it to end, or give another --out") from None
        if _same_file(fd, path):
            break
        os.close(fd)  # (locked a file its holder removed as it ended: a run now would lock a new one, so take that)
    try:
        if writable:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        if writable and _same_file(fd, path):  # (removed while still locked: a run that opened it meanwhile finds
            with suppress(OSError):            # it gone, and starts over; another's file of that name is left alone)
                path.unlink()
        os.close(fd)  # (which releases the lock)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = path.stat()
    except OSError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's too)."""
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except (OSError, OverflowError):
        return False
    return True


def _lock_file(path: Path) -> tuple[int, bool] | None:
    """(a descriptor of ``path``, made where missing, whether it can be written), or None where it
    cannot be opened at all. Another user's lock file is opened read-only: ``flock`` locks it all the same."""
    for _ in range(100):  # (a run that ends removes its file: one gone between the look and the open is looked for again)
        try:  # (an existing file without O_CREAT: where /tmp protects another user's files, creating it is refused)
            fd = os.open(path, os.O_RDWR) if path.exists() else os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
        except FileNotFoundError:
            continue
        except PermissionError:
            try:
                return os.open(path, os.O_RDONLY), False
            except FileNotFoundError:
                continue
            except OSError:
                return None
        except OSError:
            return None
        break
    else:
        return None
    try:
        os.fchmod(fd, 0o666)  # (the next user's run may write its process number too; not under the umask's 644)
    except OSError:
        pass
    return fd, True


def command_line(argv: Sequence[str]) -> str:
    """The ``python -m core`` command of ``argv`` that makes a run's model, for its card: without
    ``--resume`` (which only says where it went on from, and fails in a new folder)."""
    return " ".join(shlex.quote(a) for a in ["python", "-m", "core", *(a for a in argv if a != "--resume")])


def _check_run_dir(run_dir: Path, label_map: str, resume: bool, overwrite: bool) -> None:
    """What :func:`train` checks of its run folder and options before anything else.

    Raises:
        ConfigError: ``run_dir`` is a file; an unknown label map; ``resume`` with ``overwrite``, or with
            no run to resume.
        OutputExistsError: ``run_dir`` holds a run (or other files) and neither option is set.
        CorruptFileError: ``last.keras`` is missing from a run that has finished more than one epoch.
    """
    last = run_dir / "last.keras"
    check_output_dir(run_dir)  # a file, or under a file: refused before any work
    get_class_map(label_map)  # an unknown map is refused whatever the data (patches do not read it)
    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it: choose one")
    if run_dir.exists() and any(run_dir.iterdir()) and not (resume or overwrite):
        if any((run_dir / n).exists() for n in ("run.json", "last.keras", "best.keras", "history.csv")):
            raise OutputExistsError(f"{run_dir} already holds a training run; pass --resume to continue it or "
                                    "--overwrite to start again")
        names = sorted(p.name for p in run_dir.iterdir())
        raise OutputExistsError(f"{run_dir} holds other files ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}), "
                                "not a training run; choose a new or empty folder for --out")
    if resume and not ((run_dir / "run.json").exists() or last.exists()):
        raise ConfigError(f"nothing to resume: {run_dir} holds no training run (check the --out folder); "
                          "leave out --resume to start a new run there")
    if resume and not last.exists() and len(finished := _read_history(run_dir / "history.csv")) > 1:
        # (started again from nothing, the run replaced its finished epochs' history and best model; with one
        # row, the run was stopped as its first epoch ended, before last.keras was put in place: redone)
        raise CorruptFileError(f"{CANNOT_RESUME}: {last} is missing, though the run has finished {len(finished)} epochs "
                               "(history.csv); put last.keras back, or start again with --overwrite (which replaces "
                               "its history and best model) or in a new --out")


@dataclass
class _Start:
    """Where a run starts: its first epoch, the best validation loss so far and that epoch's logs, the
    finished epochs since the best one; resuming, the checkpoint's model and the history it has finished
    (``history_ahead``: history.csv holds an epoch more, dropped when the run starts)."""

    epoch: int = 0
    best_loss: float = float("inf")
    best_logs: dict = field(default_factory=dict)
    since_best: int = 0
    model: keras.Model | None = None
    history: list[dict] = field(default_factory=list)
    history_ahead: bool = False


def _resume_point(run_dir: Path, config: TrainConfig) -> _Start:
    """Where a run resumes: after the epochs its ``last.keras`` has finished.

    Raises:
        CorruptFileError: the checkpoint or the history is unreadable; the best model or its card is
            missing from a run with a finished epoch.
    """
    history_path = run_dir / "history.csv"
    model = _load_checkpoint(run_dir / "last.keras")
    history = _read_history(history_path)
    done = int(model.optimizer.iterations) // config.steps_per_epoch  # epochs the checkpoint has finished
    if done > len(history):  # (its row is written before it: a history lost or replaced since)
        raise CorruptFileError(f"{CANNOT_RESUME}: {run_dir / 'last.keras'} has finished {done} epoch(s) but "
                               f"{history_path.name} records {len(history)}: its history is missing or not this run's "
                               "(its epochs would be counted again from 1, and its best model replaced); put the "
                               "history back, or start again with --overwrite or in a new --out")
    ahead = done < len(history)  # interrupted after the epoch's history row, before last.keras was replaced
    if ahead:
        history = history[:done]
    epoch, best_loss = len(history), _best_val_loss(history, history_path)
    best = run_dir / "best.keras"
    gone = [p.name for p in (best, card_path(best)) if not p.is_file()]
    if epoch and gone:  # (the best model is saved before an epoch counts as finished: only a removal loses it)
        raise CorruptFileError(f"{CANNOT_RESUME}: {' and '.join(gone)} {'is' if len(gone) == 1 else 'are'} missing from "
                               f"{run_dir}, though the run has finished {epoch} epoch(s); the run would end saying it "
                               "wrote a best model it does not have: put the files back, or start again with "
                               "--overwrite or in a new --out")
    best_logs = _best_logs(history, best_loss, history_path)
    unrecorded = _unrecorded_best(run_dir / "best.keras", epoch, best_loss)
    if unrecorded:  # best.keras is of the epoch being redone: the best so far, as the file is
        best_loss, best_logs = float(unrecorded["val_loss"]), unrecorded
    # finished epochs after the best one (none where the best is of the epoch being redone)
    since_best = max(0, epoch - int(best_logs.get("epoch", epoch)))
    return _Start(epoch, best_loss, best_logs, since_best, model, history, ahead)


def _validation_arrays(val_src, config: TrainConfig, norm: Normalization) -> tuple[np.ndarray, np.ndarray]:
    """The validation patches (normalized) and their labels: the centres of stored patches, or an
    image's tiles, at most ``config.val_patches`` of them (a fixed random choice by ``config.seed``).

    Raises:
        CorruptFileError: a TFRecord patch is damaged.
    """
    if isinstance(val_src, PatchSet):
        return patch_validation(val_src, config.patch_size, norm, config.val_patches, seed=config.seed)
    xv, yv = tiled_patches(val_src, config.patch_size, norm)
    if config.val_patches and len(xv) > config.val_patches:
        keep = np.sort(np.random.default_rng(config.seed).choice(len(xv), config.val_patches, replace=False))
        xv, yv = xv[keep], yv[keep]
    return xv, yv


def _data_text(train_data: Sequence[str], val_data: Sequence[str], label_map: str, train_src, val_src) -> str:
    """What a model is trained on, for its card: the data's paths and the labels."""
    patches = isinstance(train_src, PatchSet) and isinstance(val_src, PatchSet)
    labels = f"the patches' {train_src.label!r} feature" if patches else label_map
    return f"train: {', '.join(map(str, train_data))}; val: {', '.join(map(str, val_data))}; labels: {labels}"


def _kept_epochs_note(history_path: Path) -> str:
    """For an error of the inputs mid-run (a training file found damaged): the epochs that had finished
    and stay in the run's folder, so that the user knows a resume goes on from them; "" for none."""
    done = len(_read_history(history_path))
    return (f"({done} finished epoch(s) are kept in {history_path.parent}: replace the file, then resume the run "
            "to go on from them)") if done else ""


#: the files of a training run in its folder
RUN_FILES = ("last.keras", "best.keras", "best.json", "history.csv", "run.json")


#: the hidden folder of a run folder that holds the previous run's files while a new one starts over them
PREVIOUS_RUN_PREFIX = ".previous-run-"


@contextmanager
def _previous_run_kept(run_dir: Path, fresh: bool) -> Iterator[None]:
    """For a ``fresh`` run (one that starts from nothing): leave ``run_dir`` as it was if the block
    fails or ends (e.g. cancelled) before the new run has finished an epoch (no ``history.csv``): the
    new files are removed, the folders the block created go too (``run_dir`` and missing parents, when
    empty), and the previous run's files (moved
    into a hidden folder of ``run_dir`` for the block) are put back. Once an epoch has finished, they
    are deleted. A process killed meanwhile leaves them there: :func:`_put_back_previous_run` puts
    them back on the next start. A resumed run's files are its own: the block touches none."""
    if not fresh:
        yield
        return
    created = missing_folders(run_dir)  # (runs/light: both)
    old = [run_dir / n for n in RUN_FILES if (run_dir / n).exists()]
    keep = Path(tempfile.mkdtemp(prefix=PREVIOUS_RUN_PREFIX, dir=run_dir)) if old else None
    for path in old:
        os.replace(path, keep / path.name)
    try:
        yield
    finally:  # failed, interrupted or cancelled before a finished epoch: as it was before
        if not (run_dir / "history.csv").exists():
            for name in RUN_FILES:
                (run_dir / name).unlink(missing_ok=True)
            for path in old:
                os.replace(keep / path.name, path)
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
        if not (run_dir / "history.csv").exists():
            remove_empty(created)


def _put_back_previous_run(run_dir: Path) -> bool:
    """Finish what :func:`_previous_run_kept` could not, for a run killed while it held a previous run's
    files aside (e.g. by the out-of-memory killer): before the new run finished an epoch, they are
    put back in place of its files; after, they are deleted. Returns whether a previous run was put back."""
    put_back = False
    for keep in sorted(run_dir.glob(PREVIOUS_RUN_PREFIX + "*")) if run_dir.is_dir() else ():
        if not keep.is_dir():
            continue
        if not (run_dir / "history.csv").exists() and any((keep / n).exists() for n in RUN_FILES):
            for name in RUN_FILES:
                (run_dir / name).unlink(missing_ok=True)
                if (keep / name).exists():
                    os.replace(keep / name, run_dir / name)
            put_back = True
        shutil.rmtree(keep, ignore_errors=True)
    return put_back
