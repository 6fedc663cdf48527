"""Training and validation data from patches in Earth Engine's TFRecord layout.

Earth Engine's training export (:func:`core.ee.export.training_export_jobs`) and
``python -m core patches`` both write one float feature per band of :data:`FEATURE_BANDS` and a
``crop`` label (1 crop, 0 not crop, 255 no data), each a square patch that may carry a kernel
buffer around the part a model sees. A :class:`PatchSet` is such a collection of files, checked
once: every band and the label present, square patches at least as large as the training patch.
A pixel is valid where its label is not no data and its features are finite and not all zero
(Earth Engine writes masked pixels as 0 in every band).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from core.config import PatchConfig
from core.errors import ConfigError, CorruptFileError, NoDataError, OutputExistsError, RegionError
from core.labels import NODATA
from core.model import Normalization
from core.patches import LABEL, RECORD_SUFFIX, PatchSummary, first_record, list_records, record_layout, sample_patches
from core.raster import FEATURE_BANDS, check_reflectance

#: Name endings of TFRecord files, as Earth Engine and ``python -m core patches`` write them.
RECORD_ENDINGS = (".tfrecord", ".tfrecord.gz", ".tfrecords", ".tfrecords.gz")


def is_patch_source(item: str | os.PathLike) -> bool:
    """Whether a ``--train`` / ``--val`` item names TFRecord patches (a ``gs://`` path, a record
    file or glob, or a folder of records without ``*_rgbn.tif`` images) rather than images."""
    s = str(item)
    if "://" in s:
        return True
    if s.lower().endswith(RECORD_ENDINGS):
        return True
    p = Path(s)
    if p.is_dir():
        return not any(p.glob("*_rgbn.tif")) and any(p.glob("*.tfrecord*"))
    return any(ch in s for ch in "*?[") and ".tfrecord" in s.lower()


def split_sources(items: Sequence[str | os.PathLike], flag: str) -> bool:
    """True when ``items`` are all TFRecord patches, False when they are all images.

    Raises:
        ConfigError: some are patches and some images.
    """
    kinds = {is_patch_source(i) for i in items}
    if len(kinds) > 1:
        raise ConfigError(f"{flag} mixes TFRecord patches and images; give one kind (train on both by "
                          "cutting patches from the images with python -m core patches)")
    return kinds == {True}


@dataclass(frozen=True)
class PatchSet:
    """TFRecord files of square patches with every feature band and a label."""

    files: tuple[str, ...]
    record_size: int
    label: str = LABEL

    @property
    def names(self) -> list[str]:
        """Features read from each record: the bands, then the label."""
        return [*FEATURE_BANDS, self.label]

    def describe(self) -> str:
        return f"{len(self.files)} TFRecord file(s) of {self.record_size} px patches"


def open_patch_set(sources: Sequence[str | os.PathLike], patch_size: int, label: str = LABEL) -> PatchSet:
    """List the files of ``sources`` and check their first record's layout.

    Raises:
        InputNotFoundError: no TFRecord files at a source.
        NoDataError: the files hold no records.
        CorruptFileError: a file is damaged, or its records lack a band or the label, or hold
            patches that are not square (the message names the file and the features it has).
        RegionError: the patches are smaller than ``patch_size`` (the message gives the size that fits).
    """
    files = tuple(f for s in sources for f in list_records(s))
    # Earth Engine writes an empty file for a task whose points all fell outside the data: skip those
    first = next(((f, r) for f in files if (r := first_record(f)) is not None), None)
    if first is None:
        raise NoDataError(f"the {len(files)} TFRecord file(s) at {', '.join(map(str, sources))} hold no records")
    name = os.path.basename(first[0])
    layout = record_layout(first[1], first[0])
    missing = [b for b in [*FEATURE_BANDS, label] if b not in layout]
    if missing:
        raise CorruptFileError(f"records of {name} lack the feature(s) {', '.join(missing)} (they hold "
                               f"{', '.join(sorted(layout)) or 'none'}); training patches need the bands "
                               f"{', '.join(FEATURE_BANDS)} and a {label!r} label (1 crop, 0 not crop, 255 no data)")
    counts = {b: (layout[b][1][1] if layout[b][0] == "float" and layout[b][1] else -1) for b in [*FEATURE_BANDS, label]}
    n = counts[label]
    side = math.isqrt(max(n, 0))
    if n <= 0 or side * side != n or any(c != n for c in counts.values()):
        raise CorruptFileError(f"records of {name} do not hold square float patches of one size in every band "
                               f"(values per feature: {counts})")
    if side < patch_size:
        fit = side // 16 * 16
        fix = f"use --patch-size {fit}" if fit >= 16 else "export larger patches"
        raise RegionError(f"the patches in {name} are {side} x {side} px, smaller than one {patch_size} px "
                          f"training patch; {fix}")
    return PatchSet(files, side, label)


def valid_pixels(batch: np.ndarray) -> np.ndarray:
    """(n, H, W, bands + label) -> (n, H, W) bool: labelled, finite, not all-zero features."""
    feats, lab = batch[..., :-1], batch[..., -1]
    return (lab != NODATA) & np.isfinite(feats).all(axis=-1) & (feats != 0).any(axis=-1)


def _batches(patches: PatchSet, files: Sequence[str] | None = None, batch_size: int = 16):
    from core.tfrecord import read_batches

    return read_batches(list(files or patches.files), patches.names, (patches.record_size,) * 2, batch_size,
                        split_files=True)


def patch_normalization(patches: PatchSet, max_patches: int = 64, max_pixels: int = 2_000_000,
                        seed: int = 0) -> Normalization:
    """Per-band mean/std over the valid pixels of up to ``max_patches`` patches, the first ones of
    every file in equal shares (Earth Engine's training export writes one class's points before the
    other's, so the first file alone may hold a single class), subsampled to ``max_pixels`` pixels,
    as :func:`core.dataset.compute_normalization`.

    Raises:
        NoDataError: those patches hold no valid pixel.
        InvalidDataError: the values are not surface reflectance 0-1.
        CorruptFileError: a file is damaged.
    """
    share = max(1, math.ceil(max_patches / len(patches.files)))
    pix, seen = [], 0
    for f in patches.files:
        batch = next(_batches(patches, [f], batch_size=share), None)
        if batch is not None:
            pix.append(batch[..., :-1][valid_pixels(batch)])
            seen += len(batch)
    values = np.concatenate(pix) if pix else np.zeros((0, len(FEATURE_BANDS)), np.float32)
    if not len(values):
        raise NoDataError(f"the {seen} patches read of {patches.describe()} hold no labelled pixel with image data")
    if len(values) > max_pixels:
        values = values[np.random.default_rng(seed).choice(len(values), max_pixels, replace=False)]
    check_reflectance(values[:, :4].T, f"the patches in {os.path.basename(patches.files[0])}")
    std = np.maximum(values.std(axis=0), 1e-6)
    return Normalization(tuple(float(v) for v in values.mean(axis=0)), tuple(float(v) for v in std))


def patch_validation(patches: PatchSet, patch_size: int, norm: Normalization,
                     limit: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Validation arrays from the centre ``patch_size`` of each patch that holds a valid pixel: ``x``
    (n, s, s, 5) normalized and ``y`` (n, s, s, 2) = crop, valid, in file order. ``limit`` > 0 keeps
    a random ``limit`` of them (the same for the same ``seed``), drawn from all files, never just
    the first ones (Earth Engine's export writes one class before the other).

    Raises:
        NoDataError: no patch holds a valid pixel.
        CorruptFileError: a file is damaged.
    """
    from core.dataset import encode_targets

    rng = np.random.default_rng(seed)
    lo = (patches.record_size - patch_size) // 2
    kept: list[tuple[int, np.ndarray, np.ndarray]] = []  # (order, patch, valid): a reservoir when limited
    n = 0
    for batch in _batches(patches):
        core = batch[:, lo : lo + patch_size, lo : lo + patch_size]
        for patch, ok in zip(core, valid_pixels(core)):
            if not ok.any():
                continue
            if not limit or len(kept) < limit:
                kept.append((n, patch.copy(), ok))
            elif (j := int(rng.integers(0, n + 1))) < limit:
                kept[j] = (n, patch.copy(), ok)
            n += 1
    if not kept:
        raise NoDataError(f"no patch of {patches.describe()} holds a labelled pixel with image data to validate on")
    kept.sort(key=lambda t: t[0])
    x = np.stack([norm.apply(np.where(ok[..., None], p[..., :-1], 0), ok) for _, p, ok in kept])
    y = np.stack([encode_targets(np.where(ok, p[..., -1], NODATA)) for _, p, ok in kept])
    return x, y


def check_sources(train: str, val: str, patch_size: int) -> str:
    """Check TFRecord patches for training and validation before a run starts; returns a sentence
    saying what the run will use.

    Raises:
        ConfigError: a path is empty or names images rather than patches.
        as :func:`open_patch_set`.
    """
    sets = []
    for flag, item in (("training", train), ("validation", val)):
        item = str(item or "").strip()
        if not item:
            raise ConfigError(f"give the {flag} patches: a TFRecord file, folder, glob or gs:// path")
        if not is_patch_source(item):
            raise ConfigError(f"{item} holds no TFRecord patches (*.tfrecord.gz); give a file, folder, glob or "
                              "gs:// path of an Earth Engine training export or of python -m core patches")
        sets.append(open_patch_set([item], patch_size))
    tr, va = sets
    return (f"Training on {tr.describe()} (a random {patch_size} px crop of each); validation on the centre "
            f"{patch_size} px of {va.describe()}.")


@dataclass(frozen=True)
class TrainTestPatches:
    """Training and test patch files cut from one image, and how the test part was kept apart."""

    train: PatchSummary
    test: PatchSummary
    note: str


def cut_train_test(image: str | os.PathLike, labels: str | os.PathLike, label_map: str, out_dir: str | os.PathLike,
                   config: PatchConfig, test_count: int, overwrite: bool = False,
                   band_map: dict[str, int] | None = None, progress=None) -> TrainTestPatches:
    """Cut ``config.count`` training and ``test_count`` test patches of an image into
    ``out_dir/train.tfrecord.gz`` and ``out_dir/test.tfrecord.gz``, as Earth Engine's training export
    lays them out (its ``train_*`` / ``test_*`` files).

    Test patches come from a block of the image held out as :func:`core.dataset.spatial_holdout`
    does (its labels never reach a training patch; its pixels may appear unlabelled at a training
    patch's edge); an image too small to hold one out gives test patches from the training pixels,
    and the note says so. ``progress(done, total)`` follows the patches.

    Raises:
        OutputExistsError: a file exists and ``overwrite`` is False (checked before any work).
        ConfigError: ``test_count`` < 1.
        as :func:`core.patches.sample_patches` for bad inputs.
    """
    from core.dataset import pair_paths, spatial_holdout

    if test_count < 1:
        raise ConfigError(f"the number of test patches must be at least 1, got {test_count}")
    out_dir = Path(out_dir)
    paths = {split: out_dir / f"{split}{RECORD_SUFFIX}" for split in ("train", "test")}
    for path in paths.values():
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it")
    holdout_dir = out_dir / "holdout"
    existed = {p for p in [*paths.values(), holdout_dir] if p.exists()}
    total = config.count + test_count

    def step(offset: int):
        return (lambda done, _n: progress(offset + done, total)) if progress else None

    out = {}
    try:
        split = spatial_holdout(image, labels, label_map, holdout_dir, config.full_size)
        test_cfg = PatchConfig(**{**config.__dict__, "count": test_count, "seed": config.seed + 1})
        for name, spec, cfg, offset in (("train", split.train, config, 0), ("test", split.val, test_cfg, config.count)):
            (img, lab), = pair_paths([spec])
            out[name] = sample_patches(img, lab, split.label_map, cfg, paths[name], overwrite=overwrite,
                                       band_map=band_map, progress=step(offset))
    except BaseException:
        # nothing half-done stays behind: a train file without its test file would look complete
        for path in [*paths.values(), holdout_dir]:
            if path not in existed and path.is_file():
                path.unlink()
            elif path not in existed and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
        raise
    if split.held_out:
        note = f"The test patches come from {split.held_out}, held out: no training patch holds its labels."
    else:
        note = (f"The test patches come from the training pixels (the region is too small to hold out a "
                f"{config.full_size} px block): a quick check, not an independent test.")
    return TrainTestPatches(out["train"], out["test"], note)
