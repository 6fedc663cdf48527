"""Training and validation data from patches in Earth Engine's TFRecord layout.

Earth Engine's training export (:func:`core.ee.export.training_export_jobs`) and
``python -m core patches`` both write one float feature per band of :data:`FEATURE_BANDS` and a
``crop`` label (1 crop, 0 not crop, 255 no data), each a square patch that may carry a kernel
buffer around the part a model sees. A :class:`PatchSet` is such a collection of files, checked
once (the first record of each file): every band and the label present, labels 0/1/255, one square
size in all files, at least as large as the training patch. A pixel is valid where its label is
neither no data nor NaN and its features are finite and not all zero (Earth Engine writes masked
pixels as 0 in every band). :func:`cut_train_test` makes such training and test files from a local
image, the test patches from a held-out block.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from core.card import Normalization
from core.config import PatchConfig
from core.errors import ConfigError, CorruptFileError, InvalidDataError, NoDataError, OutputExistsError, RegionError
from core.labels import CROP, NODATA, NOT_CROP
from core.patches import LABEL, RECORD_SUFFIX, PatchSummary, check_patch_space, first_record, list_records, record_layout, sample_patches
from core.bands import FEATURE_BANDS
from core.reflectance import check_reflectance
from core.tfrecord import parse_patch, read_batches

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


def _record_side(layout: dict, name: str, label: str) -> int:
    """Side of the square patches in a record's layout.

    Raises:
        CorruptFileError: a band or the label is missing or not floats, or the values do not make one square size.
    """
    missing = [b for b in [*FEATURE_BANDS, label] if b not in layout]
    if missing:
        raise CorruptFileError(f"records of {name} lack the feature(s) {', '.join(missing)} (they hold "
                               f"{', '.join(sorted(layout)) or 'none'}); training patches need the bands "
                               f"{', '.join(FEATURE_BANDS)} and a {label!r} label (1 crop, 0 not crop, 255 no data)")
    kinds = {b: layout[b][0] for b in [*FEATURE_BANDS, label] if layout[b][0] not in ("float", "empty")}
    if kinds:  # e.g. a label band exported as integers: Earth Engine keeps the band's type
        band, kind = next(iter(kinds.items()))
        raise CorruptFileError(f"the {band!r} feature of {name} holds {kind} values, not floats; export every band and "
                               "the label as floats (in Earth Engine: image.toFloat() before the export)")
    counts = {b: (layout[b][1][1] if layout[b][0] == "float" and layout[b][1] else -1) for b in [*FEATURE_BANDS, label]}
    n = counts[label]
    side = math.isqrt(max(n, 0))
    if n <= 0 or side * side != n or any(c != n for c in counts.values()):
        raise CorruptFileError(f"records of {name} do not hold square float patches of one size in every band "
                               f"(values per feature: {counts})")
    return side


def check_labels(labels: np.ndarray, name: str, label: str = LABEL) -> None:
    """Refuse label values other than 0, 1 and 255 (NaN counts as no data).

    Raises:
        InvalidDataError: e.g. raw land-cover class codes exported under the label's name.
    """
    ok = (labels == 0) | (labels == 1) | (labels == NODATA) | np.isnan(labels)
    if not ok.all():
        bad = np.unique(labels[~ok])
        raise InvalidDataError(
            f"the {label!r} feature of {name} holds values other than 0, 1 and 255 (e.g. "
            f"{', '.join(f'{v:g}' for v in bad[:5])}): raw class codes? Export the crop / not-crop label "
            "(1 crop, 0 not crop, 255 no data), as core's Earth Engine export and python -m core patches write it")


def _folder_mixes_splits(source: str, files: Sequence[str]) -> bool:
    """Whether a folder source holds both training and test (or validation) files."""
    if any(ch in source for ch in "*?[") or source.lower().endswith(RECORD_ENDINGS):
        return False
    names = [os.path.basename(f).lower() for f in files]
    return any(n.startswith("train") for n in names) and any(n.startswith(("test", "val")) for n in names)


def open_patch_set(sources: Sequence[str | os.PathLike], patch_size: int, label: str = LABEL,
                   option: str = "--patch-size") -> PatchSet:
    """List the files of ``sources`` and check the first record of each: every band and the label,
    one square size in all files, label values 0/1/255. Empty files (Earth Engine writes one for a
    task without points) are passed over. ``option`` is how a message names the patch size setting.

    Raises:
        InputNotFoundError: no TFRecord files at a source.
        ConfigError: a folder holds both training and test files (give a glob of one split).
        NoDataError: the files hold no records.
        CorruptFileError: a file is damaged, or its records lack a band or the label, or hold
            patches that are not square or not of the other files' size (the message names the file).
        InvalidDataError: labels other than 0, 1 and 255.
        RegionError: the patches are smaller than ``patch_size`` (the message gives the size that fits).
    """
    files: list[str] = []
    for src in sources:
        found = list_records(src)
        if _folder_mixes_splits(str(src), found):
            s = str(src).rstrip("/")
            raise ConfigError(f"{s} holds training and test patches; give one split, e.g. '{s}/train*.tfrecord.gz' "
                              f"for training and '{s}/test*.tfrecord.gz' for validation")
        files.extend(found)
    side = None
    for f in files:
        record = first_record(f)
        if record is None:
            continue
        name = os.path.basename(f)
        this = _record_side(record_layout(record, f), name, label)
        if side is not None and this != side:
            raise CorruptFileError(f"{name} holds {this} px patches, the other files {side} px; train on one size")
        side = this
        check_labels(parse_patch(record, [label], (side, side)), name, label)
    if side is None:
        raise NoDataError(f"the {len(files)} TFRecord file(s) at {', '.join(map(str, sources))} hold no records (an "
                          "export with no points, or a copy that failed); cut patches again (python -m core patches, "
                          "or the Data page), or export again with points in the region")
    if side < patch_size:
        fit = side // 16 * 16
        fix = f"use {option} {fit}" if fit >= 32 else "export larger patches (at least 32 px)"
        raise RegionError(f"the patches in {os.path.basename(files[0])} are {side} x {side} px, smaller than one "
                          f"{patch_size} px training patch; {fix}")
    return PatchSet(tuple(files), side, label)


def imaged_pixels(batch: np.ndarray) -> np.ndarray:
    """(n, H, W, bands + label) -> (n, H, W) bool: finite, not all-zero features (Earth Engine's masked
    pixels are 0), as :func:`core.dataset.tfrecord_dataset` has it."""
    feats = batch[..., :-1]
    return np.isfinite(feats).all(axis=-1) & (feats != 0).any(axis=-1)


def valid_pixels(batch: np.ndarray) -> np.ndarray:
    """(n, H, W, bands + label) -> (n, H, W) bool: labelled crop (1) or not crop (0), with image data
    (:func:`imaged_pixels`), as :func:`core.dataset.tfrecord_dataset` has it."""
    lab = batch[..., -1]
    return ((lab == CROP) | (lab == NOT_CROP)) & imaged_pixels(batch)


def _batches(patches: PatchSet, files: Sequence[str] | None = None, batch_size: int = 16):
    return read_batches(list(files or patches.files), patches.names, (patches.record_size,) * 2, batch_size,
                        split_files=True)


def _named_batches(patches: PatchSet, batch_size: int = 16):
    """(batch, file name) for every file in turn (a batch never spans two files)."""
    for f in patches.files:
        for batch in _batches(patches, [f], batch_size):
            yield batch, os.path.basename(f)


#: Patches read per file at most to compute the normalization (spread over all files).
NORMALIZATION_READ = 4096


def patch_normalization(patches: PatchSet, max_patches: int = 64, max_pixels: int = 2_000_000,
                        seed: int = 0, classes: dict | None = None) -> Normalization:
    """Per-band mean/std over the valid pixels of ``max_patches`` patches, a seeded random share of
    each file (Earth Engine's export writes one class's points before the other's, in one file or
    across files, so neither the first patches nor the first file will do; each file is read up to
    ``NORMALIZATION_READ / files`` patches), subsampled to ``max_pixels`` pixels, as
    :func:`core.dataset.compute_normalization`. Labels are checked on the way; ``classes``, where given,
    gets the label classes of the patches read (``"seen"``: a set of CROP and NOT_CROP) and whether every
    patch was read (``"all_read"``), for :func:`check_patch_classes`.

    Raises:
        NoDataError: those patches hold no valid pixel.
        InvalidDataError: the values are not surface reflectance 0-1, or labels are not 0/1/255.
        CorruptFileError: a file is damaged.
    """
    rng = np.random.default_rng(seed)
    share = max(1, math.ceil(max_patches / len(patches.files)))
    read_cap = max(share, NORMALIZATION_READ // len(patches.files))
    pix = []
    seen: set[int] = set()
    all_read = True
    for f in patches.files:
        pool: list[np.ndarray] = []  # a reservoir of ``share`` patches of this file
        n = 0
        for batch in _batches(patches, [f]):
            check_labels(batch[..., -1], os.path.basename(f), patches.label)
            if len(seen) < 2:
                seen.update(c for c in (CROP, NOT_CROP) if c not in seen and (batch[..., -1] == c).any())
            for patch in batch:
                if n < share:
                    pool.append(patch.copy())
                elif (j := int(rng.integers(0, n + 1))) < share:
                    pool[j] = patch.copy()
                n += 1
                if n >= read_cap:
                    break
            if n >= read_cap:
                all_read = False  # (a further patch may be there: unread)
                break
        if pool:
            part = np.stack(pool)
            pix.append(part[..., :-1][valid_pixels(part)])
    values = np.concatenate(pix) if pix else np.zeros((0, len(FEATURE_BANDS)), np.float32)
    if not len(values):
        raise NoDataError(f"the patches read of {patches.describe()} hold no labelled pixel with image data")
    if len(values) > max_pixels:
        values = values[rng.choice(len(values), max_pixels, replace=False)]
    check_patch_reflectance(values, patches)
    if classes is not None:
        classes.update(seen=seen, all_read=all_read)
    std = np.maximum(values.std(axis=0), 1e-6)
    return Normalization(tuple(float(v) for v in values.mean(axis=0)), tuple(float(v) for v in std))


def check_patch_classes(classes: Mapping[str, Any], patches: PatchSet) -> None:
    """The training patches hold crop and not-crop labels, by what :func:`patch_normalization` read of them
    (``classes``): where it read them all, one class alone is refused, as for training images; a share read
    (files of more patches than it reads) is not enough to tell.

    Raises:
        NoDataError: every patch was read and one class is missing: the model would learn to call everything
            the other.
    """
    seen = set(classes.get("seen", ()))
    if not classes.get("all_read") or len(seen) == 2:
        return
    missing = "crop" if CROP not in seen else "not-crop"
    raise NoDataError(f"the training patches ({patches.describe()}) hold no {missing} pixel, so the model would learn to "
                      f"call everything {'not crop' if missing == 'crop' else 'crop'}; train on patches with both crop "
                      "and not-crop pixels (an Earth Engine export's training files hold both classes' points; python -m "
                      "core patches of a region with some cropland and some other land)")


def check_patch_reflectance(values: np.ndarray, patches: PatchSet) -> None:
    """Refuse patches whose values (valid pixels, one row each, bands as FEATURE_BANDS) cannot be
    surface reflectance 0-1 (:func:`core.reflectance.check_reflectance`).

    Raises:
        InvalidDataError: as check_reflectance, naming the first file and what to do.
    """
    check_reflectance(values[:, :4].T, f"the patch file {os.path.basename(patches.files[0])}",
                      advice="write the patches as surface reflectance 0-1 (in Earth Engine, apply the collection's "
                             "scale factors before the export; values x 10000: divide them by 10000)")


def patch_validation(patches: PatchSet, patch_size: int, norm: Normalization,
                     limit: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Validation arrays from the centre ``patch_size`` of each patch that holds a valid pixel: ``x``
    (n, s, s, 5) normalized and ``y`` (n, s, s, 2) = crop, valid, in file order. ``limit`` > 0 keeps
    a random ``limit`` of them (the same for the same ``seed``), drawn from all files, never just
    the first ones (Earth Engine's export writes one class before the other).

    Raises:
        NoDataError: no patch holds a valid pixel.
        InvalidDataError: labels other than 0, 1 and 255.
        CorruptFileError: a file is damaged.
    """
    from core.dataset import encode_targets, input_mask

    rng = np.random.default_rng(seed)
    lo = (patches.record_size - patch_size) // 2
    kept: list[tuple[int, np.ndarray, np.ndarray]] = []  # (order, patch, valid): a reservoir when limited
    n = 0
    for batch, name in _named_batches(patches):
        check_labels(batch[..., -1], name, patches.label)
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
    # (the training patches' scale is checked as their statistics are taken; validation patches of
    # another scale chose the best epoch on nonsense): on a sample of them, as the statistics are
    sample = rng.choice(len(kept), min(len(kept), 64), replace=False)
    check_patch_reflectance(np.concatenate([kept[i][1][..., :-1][kept[i][2]] for i in sample]), patches)
    # the pixels shown as training shows them (core.dataset.input_mask)
    shown = [input_mask(ok, imaged_pixels(p[None])[0]) for _, p, ok in kept]
    x = np.stack([norm.apply(np.where(m[..., None], p[..., :-1], 0), m) for (_, p, _), m in zip(kept, shown)])
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
        sets.append(open_patch_set([item], patch_size, option="Patch size"))
    tr, va = sets
    crop = f" (a random {patch_size} px crop of each)" if tr.record_size > patch_size else ""
    centre = f"the centre {patch_size} px of " if va.record_size > patch_size else ""
    return f"Training on {tr.describe()}{crop}; validation on {centre}{va.describe()}."


@dataclass(frozen=True)
class TrainTestPatches:
    """Training and test patch files cut from one image, and how the test part was kept apart."""

    train: PatchSummary
    test: PatchSummary
    note: str


#: Crop shares of training and test patches further apart than this get :func:`crop_share_gap`'s note.
CROP_SHARE_GAP = 0.2


def crop_share_gap(train_crop: float, test_crop: float, limit: float = CROP_SHARE_GAP) -> str | None:
    """A note when the test patches' crop share (0-1) is far from the training patches': the held-out
    block is then unlike the rest of the region; None when they are within ``limit`` of each other."""
    gap = abs(train_crop - test_crop)
    if gap < limit:
        return None
    # the gap of the shares as shown (70% and 46% differed "by 23 percentage points")
    test_pc, train_pc = f"{test_crop:.0%}", f"{train_crop:.0%}"
    shown = abs(int(test_pc[:-1]) - int(train_pc[:-1]))
    return (f"The test patches' crop share ({test_pc}) differs from the training patches' ({train_pc}) by "
            f"{shown} percentage points: the held-out block is not like the rest of the region, so test "
            "figures will say more about that block than about the region; a larger region (or more test patches) "
            "evens it out.")


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
    from dataclasses import replace

    from core.dataset import SAME_PIXELS_NOTE, pair_paths, spatial_holdout
    from core.files import check_output_dir, move_into_place, staging_dir

    if test_count < 1:
        raise ConfigError(f"the number of test patches must be at least 1, got {test_count}")
    out_dir = check_output_dir(out_dir)
    paths = {split: out_dir / f"{split}{RECORD_SUFFIX}" for split in ("train", "test")}
    for path in [*paths.values(), out_dir / "holdout"]:
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it (or choose another --out)")
    total = config.count + test_count
    check_patch_space(paths["train"], total, config.full_size)  # both files, before either is cut

    def step(offset: int):
        return (lambda done, _n: progress(offset + done, total)) if progress else None

    out = {}
    # Everything is made in a staging folder and moved into place at the end: a failure leaves no
    # train file without its test file, and never a new file beside an old one.
    with staging_dir(out_dir, prefix=".patches-") as stage:
        # the same valid fraction for the held-out block as for its patches, or the block could be
        # accepted and then yield no patch
        split = spatial_holdout(image, labels, label_map, stage / "holdout", config.full_size,
                                min_valid=config.min_valid_fraction)
        test_cfg = replace(config, count=test_count, seed=(config.seed + 1) % 2**32)
        for name, spec, cfg, offset in (("train", split.train, config, 0), ("test", split.val, test_cfg, config.count)):
            (img, lab), = pair_paths([spec])
            out[name] = sample_patches(img, lab, split.label_map, cfg, stage / paths[name].name,
                                       band_map=band_map, progress=step(offset))
        # an overwritten set never keeps the held-out block of the set it replaces
        holdout = stage / "holdout" if (stage / "holdout").exists() else None
        move_into_place([(holdout, out_dir / "holdout"),
                         *((stage / path.name, path) for path in paths.values())], stage)
        for name, path in paths.items():
            out[name] = replace(out[name], path=path)
    if split.held_out:
        note = f"The test patches come from {split.held_out}, held out: no training patch holds its labels."
    else:
        note = (f"{SAME_PIXELS_NOTE}: the test patches come from them (the region is too small to hold out a "
                f"{config.full_size} px block), a quick check, not an independent test.")
    return TrainTestPatches(out["train"], out["test"], note)
