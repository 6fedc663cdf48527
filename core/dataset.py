"""Training data: scenes held in memory with random patch sampling, and tf.data pipelines.

Two ways to feed a model, one format of batch: ``x`` (n, s, s, bands) normalized float32 and
``y`` (n, s, s, 2) = crop, valid. :class:`SceneSet` samples random windows from local
image/label pairs (fresh patches every step); :func:`tfrecord_dataset` reads patches in Earth
Engine's TFRecord layout (exported by Earth Engine or by ``python -m core patches``) through
:mod:`core.tfrecord`, which copies each band straight from the records into whole batches.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from core.errors import ConfigError, CropMapError, InputNotFoundError, NoDataError, RegionError
from core.labels import CLASS_MAPS, CROP, NODATA, NOT_CROP, get_class_map
from core.card import Normalization
from core.bands import FEATURE_BANDS
from core.raster import ImageReader, read_labels


@dataclass
class Scene:
    """One image in memory: features (H, W, 5), label mask (H, W) uint8, name."""

    features: np.ndarray
    labels: np.ndarray
    name: str

    @property
    def valid(self) -> np.ndarray:
        return self.labels != NODATA


def _split_pair(text: str) -> tuple[Path, Path]:
    """``IMAGE:LABELS`` split at the colon where both files exist (paths may hold colons too, e.g. a
    time in a file name or a Windows drive); else at the first colon after an existing image, else at
    the first colon, so that the caller reports the missing file."""
    cuts = [i for i, c in enumerate(text) if c == ":"]
    pairs = [(Path(text[:i]), Path(text[i + 1 :])) for i in cuts]
    for img, lab in pairs:
        if img.is_file() and lab.exists():
            return img, lab
    return next(((img, lab) for img, lab in pairs if img.is_file()), pairs[0])


def pair_paths(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """Expand folders and files into (image, labels) pairs.

    In a folder, ``X_rgbn.tif`` pairs with ``X_cdl.tif`` (or ``X_labels.tif``); so does a single
    ``X_rgbn.tif`` file. Any other image is given with its labels as ``IMAGE:LABELS``.

    Raises:
        InputNotFoundError: if a path is missing or an image has no label file.
        ConfigError: if an image is paired with itself as labels.
    """
    pairs: list[tuple[Path, Path]] = []
    for item in paths:
        s = str(item)
        if ":" in s and not Path(s).exists():
            if s.startswith(":") or s.endswith(":"):  # (the empty path read as the current folder: ". is a folder")
                raise ConfigError(f"the {'image' if s.startswith(':') else 'labels'} path is empty in IMAGE:LABELS "
                                  f"{s}; give both, e.g. scene.tif:labels.tif")
            pairs.append(_split_pair(s))
            continue
        p = Path(s)
        if not p.exists():
            raise InputNotFoundError(f"training data not found: {p}; check the path (an image file, a folder of "
                                     "*_rgbn.tif images, or IMAGE:LABELS)")
        images = sorted(p.glob("*_rgbn.tif")) if p.is_dir() else [p]
        if not images:
            raise InputNotFoundError(f"no *_rgbn.tif images in {p}; name images X_rgbn.tif beside X_cdl.tif, or give IMAGE:LABELS")
        for img in images:
            pairs.append((img, _label_beside(img)))
    for img, lab in pairs:
        for f in (img, lab):
            if not f.exists():
                raise InputNotFoundError(f"file not found: {f}")
        if img.samefile(lab):
            raise ConfigError(f"{img.name} is given as both image and labels; give IMAGE:LABELS with the label raster")
    return pairs


def _label_beside(img: Path) -> Path:
    """The label raster beside ``X_rgbn.tif``: ``X_cdl.tif`` or ``X_labels.tif``.

    Raises:
        InputNotFoundError: ``img`` is not named ``*_rgbn.tif`` or has no such file beside it.
    """
    if img.suffix.lower() in (".keras", ".h5", ".json"):  # (said "no label raster for crop_unet_light.keras")
        raise ConfigError(f"{img.name} is a model (or its card), not training data: give IMAGE:LABELS GeoTIFFs or "
                          "TFRecord patches; a model to start from goes to --init")
    if not img.name.endswith("_rgbn.tif"):
        raise InputNotFoundError(f"no label raster for {img.name}; give IMAGE:LABELS")
    base = img.name[: -len("_rgbn.tif")]
    for suffix in ("_cdl.tif", "_labels.tif"):
        lab = img.with_name(base + suffix)
        if lab.exists():
            return lab
    raise InputNotFoundError(f"no label raster beside {img.name} (expected {base}_cdl.tif); give IMAGE:LABELS")


def load_scenes(paths: Sequence[str | os.PathLike], label_map: str = "cdl", role: str = "training",
                band_map: dict[str, int] | None = None) -> list[Scene]:
    """Read image/label pairs into memory; pixels invalid in either become no data. ``role``
    ("training", "validation") names the data in a message; ``band_map`` (1-based numbers of R, G,
    B, NIR, as :func:`core.bands.parse_band_spec` gives them) applies to every image, None reads
    the bands by their names.

    Raises:
        InputNotFoundError, BandError, GridMismatchError, InvalidDataError, NoDataError.
    """
    cmap = get_class_map(label_map)
    scenes = []
    pairs = pair_paths(paths)
    for img, lab in pairs:
        with ImageReader(img, band_map) as reader:
            feats, valid = reader.read()
            labels = read_labels(lab, cmap, grid=reader.grid)
        labels[~valid] = NODATA
        scenes.append(Scene(feats, labels, img.stem))
    if not any(s.valid.any() for s in scenes):
        names = ", ".join(f"{img.name}:{lab.name}" for img, lab in pairs[:3]) + (", ..." if len(pairs) > 3 else "")
        raise NoDataError(f"the {role} data ({names}) hold no pixel that is valid in both image and labels; give "
                          f"labels of these images with some labelled pixels, read with their product's --label-map "
                          f"(here {label_map})")
    return scenes


def compute_normalization(scenes: Sequence[Scene], max_pixels: int = 2_000_000, seed: int = 0) -> Normalization:
    """Per-band mean/std over valid pixels (a random subsample of at most ``max_pixels``)."""
    rng = np.random.default_rng(seed)
    pix = np.concatenate([s.features[s.valid] for s in scenes])
    if len(pix) > max_pixels:
        pix = pix[rng.choice(len(pix), max_pixels, replace=False)]
    mean = pix.mean(axis=0)
    std = np.maximum(pix.std(axis=0), 1e-6)
    return Normalization(tuple(float(v) for v in mean), tuple(float(v) for v in std))


def encode_targets(labels: np.ndarray) -> np.ndarray:
    """Label mask (..., H, W) -> (..., H, W, 2) float32 = crop, valid."""
    return np.stack([(labels == CROP), (labels != NODATA)], axis=-1).astype(np.float32)


def augment_batch(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random flips and 90-degree rotations, the same for features and targets of each sample."""
    for i in range(len(x)):
        k = int(rng.integers(4))
        if k:
            x[i] = np.rot90(x[i], k)
            y[i] = np.rot90(y[i], k)
        if rng.integers(2):
            x[i] = x[i][:, ::-1]
            y[i] = y[i][:, ::-1]
    return x, y


_STRIDE = 16

#: The share of the labelled pixels that patches half labelled must hold for patches to be such windows;
#: below it (labels of surveyed fields: a few fields in a large image), patches are placed around labelled
#: pixels instead (see :func:`patch_windows`)
DENSE_COVERAGE = 0.9


def _covered(valid: np.ndarray, corners: np.ndarray, size: int) -> int:
    """How many ``valid`` pixels lie in at least one ``size`` px window whose top-left corner is in ``corners``."""
    if not len(corners) or not valid.any():
        return 0
    h, w = valid.shape
    ii = np.zeros((h + 1, w + 1), np.int32)  # windows starting at each pixel, summed over the box behind it
    ii[corners[:, 0] + 1, corners[:, 1] + 1] = 1
    _integral(ii)
    covered = 0
    step = max(1, STRIP_PIXELS // max(w, 1))  # (int64 rows and columns of every valid pixel: 57 bytes a pixel at once)
    for top in range(0, h, step):
        r, c = np.nonzero(valid[top : top + step])
        r += top
        r0, c0 = np.maximum(r - size + 1, 0), np.maximum(c - size + 1, 0)
        n = ii[r + 1, c + 1] - ii[r0, c + 1] - ii[r + 1, c0] + ii[r0, c0]
        covered += int(np.count_nonzero(n > 0))
    return covered


#: Pixels of a mask in each strip of rows :func:`_covered` looks at at once
STRIP_PIXELS = 1 << 20


def _integral(ii: np.ndarray) -> np.ndarray:
    """``ii`` (its first row and column 0) summed in place down and then across: the integral image of
    its other cells, in its own type (numpy's cumsum of int32 is int64, and a copy per axis)."""
    np.cumsum(ii, axis=0, out=ii)
    np.cumsum(ii, axis=1, out=ii)
    return ii


def patch_windows(valids: Sequence[np.ndarray], size: int, min_valid: float, stride: int = _STRIDE,
                  extra: Sequence[int] = (), fallback: list[bool] | None = None) -> tuple[list[np.ndarray], bool]:
    """The top-left corners of the ``size`` px windows of each validity mask with ``min_valid`` of their
    pixels valid (on a ``stride`` grid, and at the offsets ``extra``: :func:`_valid_windows`), and whether
    the labels are sparse: where such windows hold under :data:`DENSE_COVERAGE` of the valid pixels of all
    masks (labels of surveyed fields: a few fields in a large image), patches go around valid pixels
    instead (:func:`around_valid`), and the corners are those of the windows with any valid pixel (as
    they are, where the labels are dense, of a mask that has no window of ``min_valid``: ``fallback``,
    where given, is filled with whether each mask is such a one). The
    loss and the scores count labelled pixels only, so a patch mostly unlabelled still teaches with its fields.

    Raises:
        NoDataError: no mask has a valid pixel.
    """
    found = [_valid_windows(v, size, min_valid, stride, extra) for v in valids]
    total = sum(int(v.sum()) for v in valids)
    if not total:
        raise NoDataError("no pixel is labelled (with image data), so there is nothing to train on; give labels "
                          "of these images, read with their product's label map")
    if sum(_covered(v, f, size) for v, f in zip(valids, found)) >= DENSE_COVERAGE * total:
        # a mask without such a window (a field or two, beside an image labelled throughout) gives the
        # windows that hold any of its valid pixels: it was never drawn from, nor validated on, without a word
        if fallback is not None:
            fallback[:] = [not len(f) for f in found]
        return [f if len(f) else _valid_windows(v, size, 1 / (size * size), stride, extra)
                for v, f in zip(valids, found)], False
    return [_valid_windows(v, size, 1 / (size * size), stride, extra) for v in valids], True


#: A patch with under this share of its pixels labelled (sparse labels: a field or two) shows the model
#: the image wherever it has data, as prediction does; others show their labelled pixels only. The loss
#: counts labelled pixels either way. Measured both ways (docs/ARCHITECTURE.md): with labels filling
#: patches, blanks around them trained better; with patches around a few fields, the image did.
CONTEXT_BELOW = 0.25


def input_mask(labelled: np.ndarray, imaged: np.ndarray) -> np.ndarray:
    """The pixels of one patch (h, w) that the model is shown: the ``labelled`` ones, or, where under
    :data:`CONTEXT_BELOW` of the patch is labelled, every ``imaged`` one."""
    return imaged if labelled.mean() < CONTEXT_BELOW else labelled


def _shown(norm: Normalization, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A patch's features (h, w, 5), normalized, as the model is shown them (:func:`input_mask`; the
    features of a pixel without image data are 0 in every band)."""
    return norm.apply(features, input_mask(labels != NODATA, features[..., :4].any(axis=-1)))


def around_valid(valid: np.ndarray, size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Top-left corners (n, 2) of ``size`` px windows, each around a valid pixel drawn at random (its
    place in the window at random too, the window kept inside the mask): every valid pixel is as likely to
    be in a patch as another, wherever its neighbours are. ``valid`` must hold one (:func:`patch_windows`)."""
    return _around(np.flatnonzero(valid), valid.shape, size, n, rng)


def _around(flat: np.ndarray, shape: tuple[int, int], size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`around_valid` of the valid pixels ``flat`` (their ``np.flatnonzero``) of a mask of ``shape``."""
    h, w = shape
    r, c = np.divmod(flat[rng.integers(len(flat), size=n)], w)
    r = np.clip(r - rng.integers(size, size=n), 0, h - size)
    c = np.clip(c - rng.integers(size, size=n), 0, w - size)
    return np.stack([r, c], axis=1)


class SceneSet:
    """Random square patches from in-memory scenes, with at least ``min_valid`` valid pixels, or, for
    sparse labels, around valid pixels (:func:`patch_windows`; ``sparse`` says which)."""

    def __init__(self, scenes: Sequence[Scene], size: int, norm: Normalization, min_valid: float = 0.5, seed: int = 0):
        self.scenes = list(scenes)
        self.size = size
        self.norm = norm
        self.rng = np.random.default_rng(seed)
        fell: list[bool] = []
        self.candidates, self.sparse = patch_windows([s.valid for s in self.scenes], size, min_valid, fallback=fell)
        # patches around labelled pixels: for sparse labels, and for a scene of a field or two beside scenes
        # labelled throughout (a window of any of its pixels, moved as others are, often lost them)
        self.around = [True] * len(self.scenes) if self.sparse else fell
        # the labelled pixels that patches go around, found once (not on every patch)
        self.labelled = [np.flatnonzero(s.valid) if a else None for s, a in zip(self.scenes, self.around)]
        # scenes as likely as their windows (or, sparse, their labelled pixels) are many; a scene of a field or
        # two beside others labelled throughout (:func:`patch_windows`) has many windows that hold a pixel of
        # them, so no more than its labelled pixels would fill
        self.weights = np.array([len(f) for f in self.labelled] if self.sparse else
                                [min(len(c), s.valid.sum() / _STRIDE**2) for c, s in zip(self.candidates, self.scenes)],
                                dtype=np.float64)
        self.weights /= self.weights.sum()

    def sample(self, n: int, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random patches: x (n, s, s, 5) normalized, y (n, s, s, 2)."""
        s = self.size
        x = np.empty((n, s, s, len(FEATURE_BANDS)), np.float32)
        y = np.empty((n, s, s, 2), np.float32)
        which = self.rng.choice(len(self.scenes), n, p=self.weights)
        for i, k in enumerate(which):
            sc = self.scenes[k]
            if self.around[k]:
                [(r, c)] = _around(self.labelled[k], sc.labels.shape, s, 1, self.rng)
            else:
                cand = self.candidates[k]
                r, c = cand[self.rng.integers(len(cand))]
                # Jitter off the candidate grid so that windows start at every pixel offset: a U-Net
                # that only ever sees one phase of its 16-pixel pooling grid depends on where tiles fall.
                h, w = sc.labels.shape
                r = min(r + int(self.rng.integers(_STRIDE)), h - s)
                c = min(c + int(self.rng.integers(_STRIDE)), w - s)
            lab = sc.labels[r : r + s, c : c + s]
            x[i] = _shown(self.norm, sc.features[r : r + s, c : c + s], lab)
            y[i] = encode_targets(lab)
        if augment:
            augment_batch(x, y, self.rng)
        return x, y

    def batches(self, batch_size: int, augment: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            yield self.sample(batch_size, augment)

    def tf_dataset(self, batch_size: int, augment: bool = True):
        """An endless, prefetched tf.data.Dataset of batches."""
        import tensorflow as tf

        s, b = self.size, len(FEATURE_BANDS)
        sig = (tf.TensorSpec((None, s, s, b), tf.float32), tf.TensorSpec((None, s, s, 2), tf.float32))
        return tf.data.Dataset.from_generator(lambda: self.batches(batch_size, augment), output_signature=sig).prefetch(2)


def _valid_windows(valid: np.ndarray, size: int, min_valid: float, stride: int = _STRIDE,
                   extra: Sequence[int] = ()) -> np.ndarray:
    """Top-left corners (on a ``stride`` grid, plus the offsets ``extra`` along both axes where they
    fit) of windows with at least ``min_valid`` valid pixels, and one at least (a ``min_valid`` of 0
    took windows with none: patches of nothing to learn from, the test patches all empty)."""
    h, w = valid.shape
    if h < size or w < size:
        return np.zeros((0, 2), int)
    # int32 summed in place (int64 cumsums of an int64 copy, padded: 32 bytes a pixel); int64 past 2**31 pixels
    ii = np.zeros((h + 1, w + 1), np.int32 if h * w < 2**31 else np.int64)
    ii[1:, 1:] = valid
    _integral(ii)
    rows = np.arange(0, h - size + 1, stride)
    cols = np.arange(0, w - size + 1, stride)
    if len(extra):
        rows = np.union1d(rows, [e for e in extra if 0 <= e <= h - size]).astype(int)
        cols = np.union1d(cols, [e for e in extra if 0 <= e <= w - size]).astype(int)
    r, c = np.meshgrid(rows, cols, indexing="ij")
    counts = ii[r + size, c + size] - ii[r, c + size] - ii[r + size, c] + ii[r, c]
    ok = (counts >= min_valid * size * size) & (counts > 0)
    return np.stack([r[ok], c[ok]], axis=1)


def tiled_patches(scenes: Sequence[Scene], size: int, norm: Normalization, min_valid: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping ``size`` tiles of every scene with enough valid pixels (a fixed validation set):
    ``min_valid`` of them, or, for sparse labels (:func:`patch_windows`) and for a scene that has no
    such tile beside others that do, any.

    Raises:
        NoDataError: no tile has a valid pixel.
    """
    corners, _ = patch_windows([sc.valid for sc in scenes], size, min_valid, stride=size)
    if not any(len(c) for c in corners):  # (pixels only beyond the last whole tile)
        raise NoDataError(f"no {size} x {size} validation tile has a labelled pixel (with image data); use a smaller "
                          "patch size or validation scenes with more labelled pixels")
    xs, ys = [], []
    for sc, found in zip(scenes, corners):
        for r, c in found:
            lab = sc.labels[r : r + size, c : c + size]
            xs.append(_shown(norm, sc.features[r : r + size, c : c + size], lab))
            ys.append(encode_targets(lab))
    return np.stack(xs), np.stack(ys)


#: errors of this project raised by :func:`tfrecord_dataset` readers, which run inside TensorFlow
_reader_errors: list[CropMapError] = []


@contextmanager
def reader_errors_raised(note: Callable[[], str] | None = None) -> Iterator[None]:
    """Raise, for a TensorFlow error out of the block that a :func:`tfrecord_dataset` reader caused
    (a file truncated or damaged beyond the records checked before the run, records of another
    size), the reader's own error: TensorFlow's names only the graph ("Graph execution error").
    ``note()``, when it gives text, is added to its message (e.g. what of the run is kept).

    Raises:
        CorruptFileError, InputNotFoundError: what the reader raised (the message names the file).
    """
    import tensorflow as tf

    del _reader_errors[:]
    try:
        yield
    except tf.errors.OpError as op:
        if not _reader_errors:
            raise
        err, extra = _reader_errors[-1], note() if note else ""
        raise (type(err)(f"{err} {extra}") if extra else err) from op
    finally:
        del _reader_errors[:]


#: the most memory :func:`tfrecord_dataset`'s shuffle pool takes (256 records of 256 px fit in it)
SHUFFLE_POOL_BYTES = 512 * 2**20


def tfrecord_dataset(
    source,
    norm: Normalization,
    patch_size: int,
    kernel_buffer: int = 0,
    batch_size: int = 16,
    label: str = "crop",
    augment: bool = True,
    shuffle: int = 256,
    repeat: bool = True,
    seed: int = 0,
    record_size: int | None = None,
):
    """A tf.data pipeline over patches in Earth Engine's TFRecord layout.

    Reads TFRecords (a file, folder, glob or gs:// path; GZIP or not) with
    :func:`core.tfrecord.read_batches`: two files at a time in parallel threads, records shuffled
    in a pool of ``shuffle`` (fewer where they would take over :data:`SHUFFLE_POOL_BYTES`), each band
    copied straight into band-last batches. Stored patches are
    ``record_size`` px a side (default ``patch_size + 2 * kernel_buffer``). Then crops a
    ``patch_size`` window (at random when augmenting, the centre otherwise), normalizes with ``norm``,
    applies flips and 90-degree rotations, and prefetches. A pixel is valid where its label is crop (1)
    or not crop (0) and its features are finite and not all zero (Earth Engine's masked pixels).
    Yields ``x`` (n, s, s, 5) and ``y`` (n, s, s, 2) = crop, valid, like :class:`SceneSet`. A file
    found damaged while the pipeline runs raises TensorFlow's error; :func:`reader_errors_raised`
    turns it back into this project's.

    Raises:
        InputNotFoundError: no TFRecord files at ``source``.
        ConfigError: the stored patches are smaller than ``patch_size``.
    """
    import tensorflow as tf

    from core.patches import list_records
    from core.tfrecord import read_batches

    files = list_records(source)
    full = record_size or patch_size + 2 * kernel_buffer
    extra = full - patch_size
    if extra < 0:
        raise ConfigError(f"patches of {full} px are smaller than the {patch_size} px training patch")
    names = list(FEATURE_BANDS) + [label]
    # the pool holds whole records: 256 of 512 px (a 256 px patch and a 128 px kernel) took 1.6 GB
    shuffle = min(shuffle, max(2 * batch_size, SHUFFLE_POOL_BYTES // (full * full * len(names) * 4)))
    mean = tf.constant(norm.mean, tf.float32)
    std = tf.constant(norm.std, tf.float32)

    def to_xy(data):
        # (n, H, W, bands + 1) -> (n, H, W, bands + 2) = normalized features, crop, valid
        feats, lab = data[..., :-1], data[..., -1:]
        finite = tf.reduce_all(tf.math.is_finite(feats), axis=-1, keepdims=True)
        some = tf.reduce_any(tf.not_equal(feats, 0.0), axis=-1, keepdims=True)
        # crop or not crop; anything else (no data, NaN, a code that slipped past patchset's check of
        # the first records) is never trained on
        labelled = tf.logical_or(tf.equal(lab, float(CROP)), tf.equal(lab, float(NOT_CROP)))
        imaged = tf.logical_and(finite, some)
        ok = tf.logical_and(labelled, imaged)
        crop = tf.cast(tf.logical_and(ok, tf.equal(lab, float(CROP))), tf.float32)
        # the pixels shown: as input_mask chooses, for each patch, by its centre patch_size px (as
        # patch_validation, which takes the centre; a kernel buffer's labels count for nothing)
        centre = ok[:, extra // 2 : extra // 2 + patch_size, extra // 2 : extra // 2 + patch_size]
        few = tf.reduce_mean(tf.cast(centre, tf.float32), axis=[1, 2, 3], keepdims=True) < CONTEXT_BELOW
        shown = tf.where(few, imaged, ok)
        x = tf.where(shown, (feats - mean) / std, 0.0)  # where, not a product: NaN x 0 is NaN
        return tf.concat([x, crop, tf.cast(ok, tf.float32)], axis=-1)

    def crop_aug(index, data):
        if augment:
            # stateless draws seeded by (seed, the batch's number): the same for a batch whichever of the
            # parallel map's threads takes it (a shared random state made a seeded run differ from run to run)
            draws = tf.random.experimental.stateless_split(tf.stack([tf.constant(seed, tf.int64), index]), 3)
            n = tf.shape(data)[0]
            off = (tf.random.stateless_uniform((2,), draws[0], 0, extra + 1, dtype=tf.int32) if extra
                   else tf.zeros(2, tf.int32))
            data = data[:, off[0] : off[0] + patch_size, off[1] : off[1] + patch_size]
            k = tf.random.stateless_uniform((), draws[1], 0, 4, dtype=tf.int32)
            data = tf.image.rot90(data, k)
            flip = tf.random.stateless_uniform((n, 1, 1, 1), draws[2]) < 0.5
            data = tf.where(flip, tf.reverse(data, axis=[2]), data)
        elif extra:
            lo = extra // 2
            data = data[:, lo : lo + patch_size, lo : lo + patch_size]
        return data[..., :-2], data[..., -2:]

    def batches():
        # background: the reader threads work in the training step's gaps instead of preempting it
        try:
            yield from read_batches(files, names, (full, full), batch_size, interleave=True, shuffle=shuffle,
                                    repeat=repeat, seed=seed, drop_remainder=repeat, background=True)
        except CropMapError as err:  # TensorFlow raises its own error instead, whose first line says nothing
            _reader_errors.append(err)
            raise

    spec = tf.TensorSpec((None, full, full, len(names)), tf.float32)
    ds = tf.data.Dataset.from_generator(batches, output_signature=spec)
    ds = ds.enumerate().map(lambda i, d: crop_aug(i, to_xy(d)), num_parallel_calls=tf.data.AUTOTUNE)
    # Each input op on one thread: the training step's ops already use every core, and an input op
    # that splits itself across them stalls the step more than it gains.
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


#: why validation figures on the training pixels differ from the training ones (a val IoU half the
#: training IoU after one epoch looked like a contradiction)
_SAME_PIXELS = ("; its figures still differ from training's, which are an average over the epoch while the model "
                "learns, on flipped and turned patches")
#: how a training's note (:class:`Holdout`) begins where validation is on the training pixels
SAME_PIXELS_NOTE = "Validation uses the training pixels"


def validated_on_training_pixels(note: str) -> bool:
    """Whether a training's hold-out note says its validation was on its training pixels (its validation
    figures then flatter it too)."""
    return note.strip().startswith(SAME_PIXELS_NOTE)


@dataclass(frozen=True)
class Holdout:
    """Training and validation data for one image: ``IMAGE:LABELS`` pairs, their label map, and a
    sentence saying how validation was split off."""

    train: str
    val: str
    label_map: str
    note: str
    #: what was held out (e.g. "columns 768-1023 of the region"), "" when validation uses the training pixels
    held_out: str = ""

    def describe(self, image_title: str, shape: tuple[int, int], label_map: str) -> str:
        """The training data in words, for a model card: the region of ``image_title`` (``shape``:
        its rows and columns), how validation was split off, and the label product (``label_map``,
        the product the region's labels came from, before they were made crop / not crop)."""
        rows, cols = shape
        product = CLASS_MAPS[label_map].title if label_map in CLASS_MAPS else label_map
        validation = (f"validation on {self.held_out}, held out from training" if self.held_out
                      else "validation on the training pixels")
        return f"a {cols} x {rows} px region of {image_title}; {validation}; labels: {product}"


def _trainable(valid: np.ndarray, size: int, min_valid: float = 0.5, stride: int = _STRIDE) -> int:
    """How many windows :func:`patch_windows` finds in ``valid`` (0 where it has no valid pixel)."""
    return len(patch_windows([valid], size, min_valid, stride)[0][0]) if valid.any() else 0


def spatial_holdout(image: str | os.PathLike, labels: str | os.PathLike, label_map: str,
                    out_dir: str | os.PathLike, size: int, min_valid: float = 0.25,
                    both_classes: bool = False) -> Holdout:
    """Hold out one block of an image for validation, so that the validation figures come from
    pixels the model never trained on.

    The held-out block is the last ``size``-wide column (or row, along the image's longer side) of
    the non-overlapping tile grid that validation uses that will do (labelled tiles in it, and outside
    it, of both classes), so it yields whole validation tiles. Two
    binary label rasters go to ``out_dir``: ``train_labels.tif`` (the block set to no data) and
    ``val_labels.tif`` (only the block). When the image is under two tiles along both sides, or no
    block will do, validation uses the training pixels and the note says why. ``both_classes``: labels
    of one class are refused (a training's; patches of one class may be pooled with others).

    Raises:
        InputNotFoundError, CorruptFileError, GridMismatchError: as :func:`core.raster.read_labels`.
        RegionError: the image is smaller than one ``size`` px patch.
        NoDataError: no pixel is labelled, so training would find no patch; or, with ``both_classes``,
            the labels are of one class only (crop, or not crop).
    """
    from core.raster import grid_of_file, write_mask

    grid = grid_of_file(image)
    mask = read_labels(labels, get_class_map(label_map), grid=grid)
    h, w = mask.shape
    if h < size or w < size:
        raise RegionError(f"the region is {w} x {h} px, smaller than one {size} x {size} px training patch; "
                          "draw a larger region or choose a smaller patch size")
    labelled = mask != NODATA
    if not _trainable(labelled, size):
        raise NoDataError("no pixel of the region is labelled, so there is nothing to train on; draw a region over "
                          "labelled pixels (fields)")
    for cls, name in ((CROP, "crop"), (NOT_CROP, "not-crop")) if both_classes else ():
        if not (mask == cls).any():  # (a job started, loaded its data, and failed on its validation pixels)
            raise NoDataError(f"the region's labels hold no {name} pixel, so a model would learn one class and its "
                              "validation figures would measure nothing; train on a region with some cropland and "
                              "some other land (draw or upload one on the Region page)")
    same = Holdout(f"{image}:{labels}", f"{image}:{labels}", label_map,
                   f"{SAME_PIXELS_NOTE} (the region is too small to hold out a "
                   f"{size} px block): a quick check, not an independent test{_SAME_PIXELS}.")
    along_cols = w >= h
    length = w if along_cols else h
    if length < 2 * size:
        return same
    # the last column (or row) of tiles that will do, from the image's end: the last one alone gave up on an
    # image whose edge has no data or no labels (a scene's edge, a download's padding), saying it was too small
    # (a block whose tiles hold min_valid labelled pixels first, else one of sparse labels: a few surveyed fields)
    def block_at(start: int) -> np.ndarray:
        block = np.zeros_like(mask, dtype=bool)
        if along_cols:
            block[:, start : start + size] = True
        else:
            block[start : start + size, :] = True
        return block

    one_class, chosen, sparse_one = False, None, None
    for start in range((length - size) // size * size, -1, -size):
        block = block_at(start)
        if not (labelled & block).any():
            continue
        [corners], sparse = patch_windows([labelled & block], size, min_valid, stride=size)
        if not len(corners) or (sparse and sparse_one is not None) or not _trainable(labelled & ~block, size):
            continue
        held, rest = mask[block], mask[~block]
        if not all((part == CROP).any() and (part == NOT_CROP).any() for part in (held, rest)):
            one_class = True  # one class: validation IoU would say nothing, or training would learn one class
            continue
        if not sparse:
            chosen = (start, len(corners))
            break
        sparse_one = (start, len(corners))
    chosen = chosen or sparse_one
    if chosen is None:
        if one_class:
            return replace(same, note=f"{SAME_PIXELS_NOTE} (each block that could be held out, or the pixels it "
                                      "would leave to train on, has only one class, crop or not crop): a quick "
                                      f"check, not an independent test{_SAME_PIXELS}.")
        return replace(same, note=f"{SAME_PIXELS_NOTE} (no {size} px block of the region holds labelled tiles "
                                  "enough to hold out, with enough left to train on): a quick check, not an "
                                  f"independent test{_SAME_PIXELS}.")
    start, val_tiles = chosen
    block = block_at(start)
    out = Path(out_dir)
    train_path = write_mask(out / "train_labels.tif", np.where(block, NODATA, mask), grid)
    val_path = write_mask(out / "val_labels.tif", np.where(block, mask, NODATA), grid)
    where = (f"columns {start}-{start + size - 1}" if along_cols else f"rows {start}-{start + size - 1}")
    held_out = f"{where} of the region ({size / length:.0%}, {val_tiles} tile{'s' if val_tiles != 1 else ''} of {size} px)"
    return Holdout(f"{image}:{train_path}", f"{image}:{val_path}", "binary",
                   f"Validation holds out {held_out}; training never sees them.", held_out)
