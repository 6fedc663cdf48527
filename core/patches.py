"""Patches and image exports in Earth Engine's TFRecord layout.

Earth Engine writes ``tf.train.Example`` records with one float feature per band name, each
holding a patch flattened row by row (``[H, W]``, row-major), GZIP-compressed. Patches sampled
for training may carry a *kernel buffer* (extra context on each side: a 256 patch with buffer 128
is stored 512 x 512; the 2019 notebook used 257 x 257). Image exports for prediction are sequences
of such patches, ``patchDimensions`` plus ``kernelSize`` overlap, in row-major patch order, with a
*mixer* JSON (projection, patchDimensions, patchesPerRow, totalPatches) that says where each goes.

Patches written here read back bit for bit, in the same orientation: rows stay rows. The label
feature (default ``crop``) holds 1 crop, 0 not crop, 255 no data.
"""

from __future__ import annotations

import glob as _glob
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from core import remotefs
from core.config import PatchConfig, finite_number
from core.errors import ConfigError, CorruptFileError, InputNotFoundError, NoDataError, OutputExistsError, cut_text
from core.files import check_free_space, move_into_place, replacing, staging_dir
from core.labels import NODATA, get_class_map
from core.bands import FEATURE_BANDS, INPUT_BANDS
from core.grid import Grid, parse_crs
from core.raster import ImageReader, geotiff_writer, read_labels
from core.reflectance import MIN_CHECKED_PIXELS, reflectance_scaling, sample_valid, sample_warnings
from core.tfrecord import feature_layout, iter_records, open_records, read_batches

LABEL = "crop"
RECORD_SUFFIX = ".tfrecord.gz"
#: GZIP keeps at least this share of the patches' float32 values (measured: 0.39 for the sample scene's
#: 256 px patches; no data compresses further, and a patch is at least half valid)
MIN_COMPRESSED_SHARE = 0.2


def check_patch_space(out_path: str | os.PathLike, count: int, full_size: int) -> None:
    """Refuse ``count`` patches of ``full_size`` px where the disk of ``out_path`` cannot hold them
    (a lower estimate: :data:`MIN_COMPRESSED_SHARE` of their float32 bands and label).

    Raises:
        ConfigError: saying how much is needed and free, and what to do.
    """
    values = count * full_size**2 * (len(FEATURE_BANDS) + 1)
    check_free_space(out_path, int(values * 4 * MIN_COMPRESSED_SHARE), f"{count:,} patches of {full_size} px",
                     "cut fewer (--count; 'Patches' in the dashboard) or write them to another disk")


def _tf():
    from core.tfimport import import_tensorflow

    return import_tensorflow()


# ---------------------------------------------------------------- records


def example_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """One ``tf.train.Example``: a float feature per name, each array flattened row-major."""
    tf = _tf()
    feats = {
        name: tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(a, np.float32).ravel()))
        for name, a in arrays.items()
    }
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def write_records(path: str | os.PathLike, examples: Iterable[Mapping[str, np.ndarray]], overwrite: bool = False) -> int:
    """Write examples to a GZIP TFRecord file atomically; returns how many were written.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    tf = _tf()
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it")
    n = 0
    with replacing(path) as tmp, tf.io.TFRecordWriter(str(tmp), options=tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for ex in examples:
            w.write(example_bytes(ex))
            n += 1
    return n


def list_records(source: str | os.PathLike | Sequence[str]) -> list[str]:
    """TFRecord files of a file, a folder, a glob or a ``gs://`` path (sorted, as Earth Engine numbers them).

    Raises:
        InputNotFoundError: if nothing matches (or a remote path cannot be reached).
    """
    if isinstance(source, (list, tuple)):
        return [f for s in source for f in list_records(s)]
    s = str(source)
    if remotefs.is_remote(s):  # Cloud Storage and other remote file systems, through TensorFlow's
        exists, isdir, glob = remotefs.exists, remotefs.isdir, remotefs.glob
    else:
        exists, isdir, glob = os.path.exists, os.path.isdir, _glob.glob
    if exists(s) and isdir(s):
        files = glob(_literal(s.rstrip("/")) + "/*.tfrecord*")
    elif exists(s):  # before globbing: a real name may hold [ or ]
        files = [s]
    elif any(ch in s for ch in "*?["):
        files = glob(s)
    else:
        files = []
    if not files:
        head = s.rsplit(":", 1)[0]
        pair = ":" in s and not remotefs.is_remote(s) and os.path.isfile(head)  # (IMAGE:patches, as IMAGE:LABELS)
        raise InputNotFoundError(f"no TFRecord files at {s}" + (
            f"; {os.path.basename(head)} is an image: an IMAGE:LABELS pair takes a label raster (.tif), and TFRecord "
            "patches are given alone" if pair else ""))
    return sorted(files)


def _literal(path: str) -> str:
    """``path`` as a glob pattern that matches itself (a local folder may be named e.g. ``exp [2024]``);
    remote paths as they are."""
    return path if remotefs.is_remote(path) else _glob.escape(path)


def read_records(
    source, names: Sequence[str], shape: tuple[int, int], batch_size: int = 32
) -> Iterator[np.ndarray]:
    """Batches (n, H, W, len(names)) float32 from TFRecord files, in file order (a batch never
    spans two files); see :func:`core.tfrecord.read_batches`.

    Raises:
        InputNotFoundError: no files.
        CorruptFileError: a file is truncated, damaged or not a TFRecord file, or its records lack
            a feature or hold patches of another size (the message names the file).
    """
    return read_batches(list_records(source), names, shape, batch_size, split_files=True)


# ---------------------------------------------------------------- training patches


@dataclass(frozen=True)
class PatchSummary:
    path: Path
    count: int
    config: PatchConfig
    crop_fraction: float
    #: sentences about the patches (e.g. that some repeat), for a warning line each
    warnings: tuple[str, ...] = ()


def sample_patches(
    image_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    label_map: str,
    config: PatchConfig,
    out_path: str | os.PathLike,
    overwrite: bool = False,
    band_map: dict[str, int] | None = None,
    progress=None,
) -> PatchSummary:
    """Cut ``config.count`` random patches (with kernel buffer) of image + labels into one TFRecord file.

    Each example has one feature per band of ``config.bands`` and ``crop`` (1/0/255). Where the
    image holds fewer places for a patch than ``config.count``, patches repeat and the summary's
    ``warnings`` say so.

    Raises:
        InputNotFoundError, BandError, GridMismatchError, InvalidDataError: bad inputs.
        RegionError: the image is smaller than one patch.
        NoDataError: no pixel is labelled with image data (where no window has enough, patches go around
            labelled pixels, and the warnings say so).
        OutputExistsError: ``out_path`` exists and ``overwrite`` is False.
        ConfigError: ``out_path`` does not end in ``.tfrecord.gz`` (the file is GZIP-compressed, as
            Earth Engine writes it; a reader that goes by the name would take it for plain records).
    """
    from core.dataset import DENSE_COVERAGE, around_valid, patch_windows
    from core.errors import RegionError

    out_path = Path(out_path)
    if not out_path.name.endswith(RECORD_SUFFIX) or out_path.name == RECORD_SUFFIX:
        stem = out_path.name.split(".")[0] or "patches"
        raise ConfigError(f"the patches file {out_path.name!r} must end in {RECORD_SUFFIX} (it is GZIP-compressed, as "
                          f"Earth Engine writes patches), e.g. {out_path.with_name(stem + RECORD_SUFFIX)}")
    if out_path.exists() and not overwrite:
        raise OutputExistsError(f"{out_path} already exists; pass --overwrite to replace it")
    if tuple(config.bands) != FEATURE_BANDS:
        raise ConfigError(f"patches hold the bands {', '.join(FEATURE_BANDS)}")
    check_patch_space(out_path, config.count, config.full_size)
    cmap = get_class_map(label_map)
    with ImageReader(image_path, band_map) as reader:
        feats, valid = reader.read()
        labels = read_labels(labels_path, cmap, grid=reader.grid)
    labels[~valid] = NODATA
    size = config.full_size
    h, w = labels.shape
    if h < size or w < size:
        raise RegionError(f"the image ({w}x{h} px) is smaller than one patch ({size}x{size} px); use a larger region or a smaller --size")
    # an 8 px grid, and also the patch-size grid (where a held-out block starts, core.dataset.spatial_holdout)
    # and the last row and column (flush with the image's far edges, which an 8 px grid may miss)
    extra = sorted({*range(0, max(h, w) - size + 1, size), h - size, w - size})
    labelled = labels != NODATA
    [windows], sparse = patch_windows([labelled], size, config.min_valid_fraction, stride=8, extra=extra)
    rng = np.random.default_rng(config.seed)
    warnings: tuple[str, ...] = ()
    if sparse:  # (also where no window has min_valid_fraction labelled: patch_windows)
        picks = around_valid(labelled, size, config.count, rng)
        # (the image unnamed: the dashboard's is its region's copy, "image.tif"; a command takes one image)
        warnings += (f"the labels are sparse for {size} px patches with {config.min_valid_fraction:.0%} of their "
                     f"pixels labelled (--min-valid on the command line): under {DENSE_COVERAGE:.0%} of the labelled "
                     "pixels lie in such a window (labels of surveyed fields?), so each patch is placed around a "
                     "labelled pixel instead, whatever its share of labelled pixels (a smaller patch size finds more "
                     "such windows); its other pixels have no label: training scores the labelled ones only",)
    else:
        picks = windows[rng.choice(len(windows), config.count, replace=len(windows) < config.count)]
        if len(windows) < config.count:
            places = f"{len(windows)} place{'s' if len(windows) != 1 else ''}"
            warnings += (f"only {len(np.unique(picks, axis=0))} of the {config.count} patches differ: the image "
                         f"holds {places} for a {size} px patch with {config.min_valid_fraction:.0%} valid pixels, so "
                         "the others repeat them; use a larger image or region, a smaller patch size (--size; 'Patch "
                         "size' in the dashboard) or fewer patches (--count; 'Training patches' and 'Test patches')",)
    crop_px = valid_px = 0

    def examples():
        nonlocal crop_px, valid_px
        for i, (r, c) in enumerate(picks):
            lab = labels[r : r + size, c : c + size]
            crop_px += int((lab == 1).sum())
            valid_px += int((lab != NODATA).sum())
            ex = {b: feats[r : r + size, c : c + size, k] for k, b in enumerate(FEATURE_BANDS)}
            ex[LABEL] = lab.astype(np.float32)
            if progress:
                progress(i + 1, len(picks))
            yield ex

    n = write_records(out_path, examples(), overwrite=overwrite)
    return PatchSummary(out_path, n, config, crop_px / max(valid_px, 1), warnings)


# ---------------------------------------------------------------- image exports (prediction input/output)


@dataclass(frozen=True)
class Mixer:
    """Earth Engine's mixer: where each patch of an image export goes."""

    crs: str | None
    affine: tuple[float, float, float, float, float, float]
    patch: tuple[int, int]  # (width, height) as Earth Engine orders patchDimensions
    patches_per_row: int
    total_patches: int

    @property
    def rows(self) -> int:
        return math.ceil(self.total_patches / self.patches_per_row)

    @property
    def grid(self) -> Grid:
        """The grid covered by all patches (a multiple of the patch size)."""
        return Grid(self.crs, self.affine, self.patches_per_row * self.patch[0], self.rows * self.patch[1])

    def to_json(self) -> dict:
        proj: dict = {"affine": {"doubleMatrix": list(self.affine)}}
        if self.crs:
            proj["crs"] = self.crs
        return {"projection": proj, "patchDimensions": list(self.patch), "patchesPerRow": self.patches_per_row,
                "totalPatches": self.total_patches}

    @classmethod
    def from_json(cls, d: dict) -> "Mixer":
        """Raises CorruptFileError if a field is missing or not what Earth Engine writes (sizes:
        positive integers, a plausible image size; affine: six finite
        numbers of an invertible transform; crs: one GDAL knows, or none)."""
        try:
            proj = d["projection"]
            aff = proj["affine"]["doubleMatrix"]
            dims, per_row, total = d["patchDimensions"], d["patchesPerRow"], d["totalPatches"]
            crs = proj.get("crs")
        except KeyError as err:
            raise CorruptFileError(f"the mixer JSON lacks {err}; it must have projection (with affine.doubleMatrix), "
                                   "patchDimensions, patchesPerRow, totalPatches") from None
        except (TypeError, IndexError, AttributeError):
            raise CorruptFileError("the mixer JSON is not laid out as Earth Engine writes it: projection must be an "
                                   "object with affine.doubleMatrix, beside patchDimensions, patchesPerRow, totalPatches") from None
        if not isinstance(dims, list) or len(dims) != 2:
            raise CorruptFileError(f"the mixer's patchDimensions is {dims!r}; it must be [width, height] in pixels")
        width, height = (_positive_int(v, "patchDimensions") for v in dims)
        per_row, total = _positive_int(per_row, "patchesPerRow"), _positive_int(total, "totalPatches")
        rows = math.ceil(total / per_row)
        if per_row * width > MAX_EXPORT_SIDE or rows * height > MAX_EXPORT_SIDE:
            raise CorruptFileError(f"the mixer describes an image of {per_row * width:,} x {rows * height:,} px, "
                                   f"larger than any export ({MAX_EXPORT_SIDE:,} px a side); the mixer is damaged")
        if not isinstance(aff, list) or len(aff) != 6 or not all(finite_number(v) for v in aff):
            raise CorruptFileError(f"the mixer's projection.affine.doubleMatrix is {aff!r}; it must be six finite numbers")
        affine = tuple(float(v) for v in aff)
        if affine[0] * affine[4] - affine[1] * affine[3] == 0:
            raise CorruptFileError(f"the mixer's affine {list(affine)} has zero pixel size; the mixer is damaged")
        if crs is not None and not isinstance(crs, str):
            raise CorruptFileError(f"the mixer's projection.crs is {crs!r}; it must be a CRS name such as EPSG:32618")
        if crs is not None and parse_crs(crs) is None:
            raise CorruptFileError(f"the mixer's projection.crs {crs[:60]!r} is not a CRS GDAL knows (Earth Engine "
                                   "writes a code such as EPSG:32618); the mixer is damaged")
        mixer = cls(crs, affine, (width, height), per_row, total)
        from core.grid import off_earth_corner

        if (far := off_earth_corner(mixer.grid)) is not None:
            raise CorruptFileError(f"the mixer's affine {list(affine)} puts a corner at ({far[0]:g}, {far[1]:g}) in "
                                   f"{crs}, beyond the globe; the mixer is damaged")
        return mixer


#: Largest image side a mixer may describe (Earth Engine exports stay far below: 10^5 patches of 256 px).
MAX_EXPORT_SIDE = 10_000_000


def _positive_int(v, field: str) -> int:
    """``v`` as an int when it is a positive whole number; raises CorruptFileError otherwise."""
    if not finite_number(v) or v != int(v) or v < 1:
        raise CorruptFileError(f"the mixer's {field} is {v!r}; it must be a positive whole number (the mixer is damaged)")
    return int(v)


#: The largest mixer file read (Earth Engine's are a few hundred bytes).
MAX_MIXER_BYTES = 1024 * 1024


def mixer_file(path: str | os.PathLike) -> str:
    """``path``, or the one file that it matches when it is a pattern (``PREFIX*mixer.json``: what the
    dashboard and ``ee-export-image`` say of an export, whose mixer Earth Engine names ``PREFIX-mixer.json``
    or ``PREFIXmixer.json``).

    Raises:
        InputNotFoundError: a pattern that matches no mixer file, or several, or with '*' outside the file's
            name or a name that does not end in mixer.json.
    """
    s = str(path)
    if "*" not in s or (not remotefs.is_remote(s) and os.path.isfile(s)):
        return s
    if "*" in s.replace("\\", "/").rpartition("/")[0] or not s.endswith("mixer.json"):
        # (a pattern over folders, or of any file, found other files of the server: a session's, named
        # in the message, was one click away from being opened by another user)
        raise InputNotFoundError(f"{s}: only a file name may hold '*', and it ends in mixer.json (as "
                                 "PREFIX*mixer.json); give the folder as it is")
    pattern = "*".join(map(_literal, s.split("*")))  # ('*' alone is a pattern: a folder "exp [2024]" is itself)
    found = sorted(f for f in (remotefs.glob(pattern) if remotefs.is_remote(s) else _glob.glob(pattern))
                   if f.endswith("mixer.json"))
    if not found:
        raise InputNotFoundError(f"no mixer file matches {s}: has its export task succeeded? (look in the folder "
                                 "for the .json file beside the .tfrecord.gz files)")
    if len(found) > 1:
        raise InputNotFoundError(f"{s} matches {len(found)} files ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''}): "
                                 "give the path of one mixer")
    return found[0]


def _read_head_local(path: str) -> bytes:
    """The first :data:`MAX_MIXER_BYTES` + 1 bytes of a local file."""
    with open(path, "rb") as f:
        return f.read(MAX_MIXER_BYTES + 1)


def _read_head_remote(path: str) -> bytes:
    """The first :data:`MAX_MIXER_BYTES` + 1 bytes of a gs:// file."""
    with remotefs.open_binary(path) as f:
        return f.read(MAX_MIXER_BYTES + 1)


def read_mixer(path: str | os.PathLike) -> Mixer:
    """Read an Earth Engine mixer file (local, or gs:// through TensorFlow's file system), or the one
    that a pattern matches (:func:`mixer_file`).

    Raises:
        InputNotFoundError: no such file.
        CorruptFileError: not a mixer, or unreadable.
    """
    s = mixer_file(path)
    if remotefs.is_remote(s):
        exists, read = remotefs.exists, _read_head_remote
    else:  # no TensorFlow import (seconds) just to read a local JSON file; (a mixer is a few hundred
        # bytes: any file of the server was read whole)
        exists, read = os.path.isfile, _read_head_local
    if not exists(s):
        raise InputNotFoundError(f"mixer file not found: {s}")
    try:
        data = read(s)
        if len(data) > MAX_MIXER_BYTES:
            raise CorruptFileError(f"{s} is no Earth Engine mixer: it is over {MAX_MIXER_BYTES:,} bytes, a mixer a "
                                   "few hundred")
        d = json.loads(data)
    except (ValueError, RecursionError) as err:  # (JSON's errors; a number thousands of digits long; nesting)
        raise CorruptFileError(f"mixer {s} is not valid JSON ({str(err)[:200]})") from None
    except OSError as err:
        raise CorruptFileError(f"cannot read mixer {s} ({err.strerror or err})") from None
    if not isinstance(d, dict):
        raise CorruptFileError(f"mixer {s} is not an Earth Engine mixer (a JSON object with projection, patchDimensions, ...)")
    try:
        return Mixer.from_json(d)
    except CorruptFileError as err:  # (a field's fault was said without the file)
        raise CorruptFileError(f"mixer {os.path.basename(s)}: {cut_text(str(err))}") from None


#: the part of an image export's file name after its prefix: 00000.tfrecord.gz
_EXPORT_PART = re.compile(r"\d+\.tfrecord(\.gz)?")


def export_files(mixer_path: str | os.PathLike) -> list[str]:
    """The TFRecord files of the image export whose mixer is ``PREFIX-mixer.json`` (or
    ``PREFIXmixer.json``): ``PREFIX-00000.tfrecord.gz``, ..., or a single unnumbered ``PREFIX.tfrecord.gz``.

    Raises:
        InputNotFoundError: no such file.
    """
    s = mixer_file(mixer_path)
    prefix = s[: -len("mixer.json")] if s.endswith("mixer.json") else s
    base = prefix.rsplit("/", 1)[-1]
    single = prefix.rstrip("-_")  # an export small enough for one file may not be numbered
    try:
        found = list_records(_literal(single) + "*.tfrecord*")
    except InputNotFoundError:
        found = []
    # PREFIX-00000.tfrecord.gz, not PREFIX-b-00000.tfrecord.gz of another export in the same folder
    names = [(f, f.rsplit("/", 1)[-1]) for f in found]
    files = [f for f, name in names if name.startswith(base) and _EXPORT_PART.fullmatch(name[len(base):])]
    if not files:
        files = [f for f in found if f in (single + ".tfrecord.gz", single + ".tfrecord")]
    if not files and not s.endswith("mixer.json"):  # e.g. a browser's copy, "ftw-mixer (1).json"
        raise InputNotFoundError(f"{s} is not named as an Earth Engine export's mixer, PREFIX-mixer.json beside its "
                                 "PREFIX-00000.tfrecord.gz ...: its patches are found by that name; rename it back "
                                 "to PREFIX-mixer.json")
    if not files:
        raise InputNotFoundError(f"no TFRecord files of the image export {prefix}NNNNN.tfrecord.gz beside {s}")
    return files


def write_image_export(
    prefix: str | os.PathLike,
    reader: ImageReader,
    patch: int | tuple[int, int] = 256,
    kernel: int = 64,
    records_per_file: int = 64,
    overwrite: bool = False,
) -> Path:
    """Write an image as Earth Engine writes an image export: ``PREFIX-00000.tfrecord.gz`` ... + ``PREFIX-mixer.json``.

    Each record is a patch (``patch`` px square, or (width, height) as Earth Engine's
    patchDimensions) plus ``kernel`` px, centred on it (kernel // 2 margin on each side), bands R, G,
    B, NIR, NDVI; pixels outside the image or without data are 0.

    Raises:
        OutputExistsError: the mixer exists and ``overwrite`` is False; ConfigError: an odd ``kernel``.
    """
    from rasterio.windows import Window

    if kernel % 2:
        raise ConfigError(f"kernel must be even (half on each side), got {kernel}")
    prefix = Path(prefix)
    mixer_path = Path(f"{prefix}-mixer.json")
    if mixer_path.exists() and not overwrite:
        raise OutputExistsError(f"{mixer_path} already exists; pass --overwrite to replace it")
    g = reader.grid
    pw, ph = (patch, patch) if isinstance(patch, int) else patch
    per_row = math.ceil(g.width / pw)
    rows = math.ceil(g.height / ph)
    total = per_row * rows
    half = kernel // 2

    def patches(start: int, stop: int):
        for i in range(start, stop):
            r, c = divmod(i, per_row)
            win = Window(c * pw - half, r * ph - half, pw + kernel, ph + kernel)
            feats, _ = reader.read(win)
            yield {b: feats[..., k] for k, b in enumerate(FEATURE_BANDS)}

    mixer = Mixer(g.crs, g.transform, (pw, ph), per_row, total)
    # Everything is written in a staging folder first and moved into place only when complete, so a
    # failure (a bad read, a full disk) leaves any earlier export as it was, never a mix of the two.
    starts = range(0, total, records_per_file)
    names = [f"{prefix.name}-{n:05d}{RECORD_SUFFIX}" for n in range(len(starts))]
    if not overwrite:
        for name in names:
            if (prefix.parent / name).exists():
                raise OutputExistsError(f"{prefix.parent / name} already exists; pass --overwrite to replace it")
    with staging_dir(prefix.parent, prefix=".export-") as tmp:
        for name, start in zip(names, starts):
            write_records(tmp / name, patches(start, min(start + records_per_file, total)))
        (tmp / mixer_path.name).write_text(json.dumps(mixer.to_json(), indent=2))
        try:  # the files of an export written here before (only where its mixer says there was one)
            earlier = set(export_files(mixer_path)) if mixer_path.exists() else set()
        except InputNotFoundError:
            earlier = set()
        stale = earlier - {str(prefix.parent / n) for n in names}  # those of a larger export
        # all or none; the mixer last: it marks the export as complete
        move_into_place([*((None, s) for s in sorted(stale)), *((tmp / n, prefix.parent / n) for n in names),
                         (tmp / mixer_path.name, mixer_path)], tmp)
    return mixer_path


def export_patch_count(mixer_path: str | os.PathLike) -> int:
    """How many patches the files of an image export hold (their records counted, not parsed: a pass over
    the files' bytes), to compare with its mixer's totalPatches before a prediction reads them all.

    Raises:
        InputNotFoundError: no files; CorruptFileError: a file is truncated or damaged.
    """
    count = 0
    for path in export_files(mixer_path):
        with open_records(path) as stream:
            count += sum(1 for _ in iter_records(stream, os.path.basename(path)))
    return count


def _files_missing(count: int, total: int) -> str:
    """What an image export of ``count`` patches whose mixer says ``total`` (more) lacks."""
    return f"the image export has {count} patches but its mixer says {total}; some files are missing"


def export_count_warning(mixer: "Mixer", count: int) -> str | None:
    """What is wrong with an image export whose files hold ``count`` patches, or None when it is its mixer's
    totalPatches (:func:`iter_export_patches` refuses either way, after reading the files)."""
    if count < mixer.total_patches:
        return (f"{_files_missing(count, mixer.total_patches)} (still being written, or not all copied): prediction "
                "will refuse it")
    if count > mixer.total_patches:
        return (f"the image export has {count} patches, more than the {mixer.total_patches} its mixer says; files "
                "of another export with the same prefix are mixed in: prediction will refuse it")
    return None


def iter_export_patches(mixer_path: str | os.PathLike, bands: Sequence[str] = FEATURE_BANDS, kernel: int | None = None,
                        batch_size: int = 16) -> Iterator[tuple[int, np.ndarray]]:
    """(index of first patch, batch (n, H+k, W+k, bands)) over an image export, in patch order.

    ``kernel`` is the export's kernelSize (inferred from the record size when None).

    Raises:
        InputNotFoundError, CorruptFileError.
    """
    mixer = read_mixer(mixer_path)
    files = export_files(mixer_path)
    if kernel is None:
        kernel = _infer_kernel(files[0], bands[0], mixer.patch)
    shape = (mixer.patch[1] + kernel, mixer.patch[0] + kernel)
    i = 0
    for batch in read_records(files, bands, shape, batch_size):
        if i + len(batch) > mixer.total_patches:  # before any of them is placed beyond the image's last row
            raise CorruptFileError(f"the image export has more patches than the {mixer.total_patches} its mixer "
                                   "says; files of another export with the same prefix are mixed in")
        yield i, batch
        i += len(batch)
    if i < mixer.total_patches:
        raise CorruptFileError(_files_missing(i, mixer.total_patches))


def first_record(path: str) -> bytes | None:
    """The first record of a TFRecord file, or None when it holds none.

    Raises:
        InputNotFoundError: the file is missing.
        CorruptFileError: it is damaged.
    """
    with open_records(path) as stream:
        return next(iter_records(stream, os.path.basename(path)), None)


def record_layout(record: bytes, path: str) -> dict:
    """:func:`core.tfrecord.feature_layout` of a record read from ``path``.

    Raises:
        CorruptFileError: the record is not a well-formed Example (the message names the file).
    """
    try:
        return feature_layout(record)
    except ValueError as err:
        raise CorruptFileError(f"cannot read {os.path.basename(path)}: {err}") from None


def _infer_kernel(first_file: str, band: str, patch: tuple[int, int]) -> int:
    """The kernelSize of an image export, from the number of values per band of its first record.

    Raises:
        InputNotFoundError, CorruptFileError.
    """
    name = os.path.basename(first_file)
    record = first_record(first_file)
    if record is None:
        raise CorruptFileError(f"{name} holds no records; the image export is incomplete")
    layout = record_layout(record, first_file)
    if band not in layout:
        raise CorruptFileError(f"{name} has no feature {band!r} (features: {sorted(layout)})")
    kind, where = layout[band]
    n = where[1] if kind == "float" and where else 0
    # n = (w + k) * (h + k): k is the non-negative root of k^2 + (w + h) k + w h - n = 0
    w, h = patch
    disc = (w - h) ** 2 + 4 * n
    root = math.isqrt(disc)
    kernel = (root - w - h) // 2
    if root * root != disc or (root - w - h) % 2 or kernel < 0:
        raise CorruptFileError(f"records of {name} hold {n} float values per band, not a {w} x {h} px patch "
                               "with a kernel buffer around it")
    return kernel


#: Patches of an image export read to detect its reflectance scale (spread over its files).
EXPORT_SAMPLE_PATCHES = 16


def export_scaling(mixer_path: str | os.PathLike, kernel: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (scale, offset) that turn the R, G, B, NIR values of an image export into
    reflectance: the first two of :func:`export_reflectance`.

    Raises:
        InputNotFoundError, CorruptFileError: missing or damaged export;
        InvalidDataError: the values are not reflectance; NoDataError: it holds no valid pixel.
    """
    scales, offsets, _ = export_reflectance(mixer_path, kernel)
    return scales, offsets


def export_reflectance(mixer_path: str | os.PathLike,
                       kernel: int | None = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Per-band (scale, offset) that turn the R, G, B, NIR values of an image export into
    reflectance, detected and checked on a sample of its patches exactly as for a GeoTIFF
    (:func:`core.reflectance.reflectance_scaling`: reflectance x 10000 or 0-1; values that are not
    reflectance are refused), and the warnings about suspect values a GeoTIFF gets
    (:func:`core.reflectance.sample_warnings`).

    The sample is the first patches holding valid pixels of up to :data:`EXPORT_SAMPLE_PATCHES`
    files spread over the export (of its first patches when it is one file), and of the other files
    in turn while it holds fewer than :data:`core.reflectance.MIN_CHECKED_PIXELS` pixels.

    Raises:
        InputNotFoundError, CorruptFileError: missing or damaged export;
        InvalidDataError: the values are not reflectance;
        NoDataError: no patch holds a valid pixel.
    """
    mixer = read_mixer(mixer_path)
    files = export_files(mixer_path)
    if kernel is None:
        kernel = _infer_kernel(files[0], "R", mixer.patch)
    shape = (mixer.patch[1] + kernel, mixer.patch[0] + kernel)
    n = EXPORT_SAMPLE_PATCHES
    chosen = [files[i] for i in sorted(set(np.linspace(0, len(files) - 1, min(n, len(files))).astype(int)))]
    per_file = math.ceil(n / len(chosen))
    step = max(1, max(shape) // 64)  # about 64 x 64 pixels of each patch
    parts: list[np.ndarray] = []

    def sample_files(paths: list[str]) -> None:
        for path in paths:
            found = 0
            for batch in read_records(path, INPUT_BANDS, shape, batch_size=per_file):
                for patch in batch:
                    raw = patch[::step, ::step].reshape(-1, len(INPUT_BANDS)).T.astype(np.float64)
                    raw = raw[:, sample_valid(raw, None)]
                    if raw.size:
                        parts.append(raw)
                        found += 1
                if found >= per_file:
                    break

    sample_files(chosen)
    # the data may all lie in files not sampled (a small region of a large export): the others then, in turn
    # (an empty sample read x 10000 values as 0-1, and every pixel was then out of range: no data)
    sampled = set(chosen)
    rest = [f for f in files if f not in sampled]  # (the set once, not for every file)
    while rest and sum(part.shape[1] for part in parts) < MIN_CHECKED_PIXELS:
        sample_files(rest[:EXPORT_SAMPLE_PATCHES])
        rest = rest[EXPORT_SAMPLE_PATCHES:]
    sample = np.concatenate(parts, axis=1) if parts else np.empty((len(INPUT_BANDS), 0))
    what = f"the image export {Path(str(mixer_path)).name}"
    if not sample.size:
        raise NoDataError(f"{what} holds no valid pixels (every band 0 or no data in every patch): it has nothing to "
                          "predict; export the image again over the region's data")
    scales, offsets = reflectance_scaling("float32", sample, what)
    return scales, offsets, sample_warnings(sample, scales, offsets, what)


#: No-data value of the GeoTIFFs assembled from image exports (reflectance is never negative).
EXPORT_NODATA = -9999.0


def assembled_export(mixer_path: str | os.PathLike, root: str | os.PathLike,
                     progress: Callable[[int, int], None] | None = None) -> tuple[Path, Grid]:
    """(the GeoTIFF, its grid) of an image export assembled under ``root`` (:func:`export_to_geotiff`), in a
    folder named by the export's mixer path and the sizes and times of its files: an export assembled
    before is used as it is (another session's: its file, in use there, is not written anew), one whose
    files were written again is assembled anew.

    Raises:
        as :func:`export_to_geotiff`.
    """
    import hashlib

    from core.raster import grid_of_file

    found = mixer_file(mixer_path)
    read_mixer(found)  # (a missing or damaged mixer is said as such, before its patches are looked for)
    files = [found, *export_files(found)]
    version = json.dumps([[f, *remotefs.version(f)] for f in files])
    out = Path(root) / hashlib.sha1(version.encode()).hexdigest()[:16] / "image.tif"
    if out.is_file():  # (written whole or not at all)
        return out, grid_of_file(out)
    return out, export_to_geotiff(found, out, overwrite=True, progress=progress)


def export_to_geotiff(mixer_path: str | os.PathLike, out_path: str | os.PathLike, overwrite: bool = False,
                      progress: Callable[[int, int], None] | None = None) -> Grid:
    """Assemble an Earth Engine image export (TFRecord patches + mixer, local or gs://) into one
    GeoTIFF of bands R, G, B, NIR (float32 reflectance 0-1 whatever the export's scale, see
    :func:`export_scaling`; no data -9999), placed by the mixer's projection; each patch's kernel
    buffer is cut off. The file appears only when complete.

    Returns the grid of the written file.

    Raises:
        InputNotFoundError, CorruptFileError: missing or damaged export, or one without R, G, B or NIR;
        InvalidDataError: its values are not reflectance; NoDataError: it holds no valid pixel;
        OutputExistsError, ConfigError: ``out_path`` exists (without ``overwrite``) or is a folder.
    """
    import rasterio
    from rasterio.windows import Window

    out = Path(out_path)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; choose another path or pass overwrite")
    mixer = read_mixer(mixer_path)
    files = export_files(mixer_path)
    if not files:
        raise InputNotFoundError(f"no TFRecord files beside {mixer_path} (expected PREFIX-00000.tfrecord.gz ...)")
    kernel = _infer_kernel(files[0], "R", mixer.patch)
    scale, offset = export_scaling(mixer_path, kernel)
    scale, offset = scale.astype(np.float32), offset.astype(np.float32)
    half = kernel // 2
    (pw, ph), grid = mixer.patch, mixer.grid
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": len(INPUT_BANDS),
               "dtype": "float32", "crs": grid.crs, "transform": rasterio.Affine(*grid.transform),
               "nodata": EXPORT_NODATA, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    if pw % 16 == 0 and ph % 16 == 0:
        profile.update(tiled=True, blockxsize=pw, blockysize=ph)
    with replacing(out) as tmp, geotiff_writer(tmp, profile) as dst:
        for i, name in enumerate(INPUT_BANDS, start=1):
            dst.set_band_description(i, name)
        for first, batch in iter_export_patches(mixer_path, INPUT_BANDS, kernel):
            for k, patch in enumerate(batch):
                r, c = divmod(first + k, mixer.patches_per_row)
                core = patch[half : half + ph, half : half + pw]
                valid = (core != 0).any(axis=-1)  # Earth Engine writes masked pixels as 0 in every band
                data = np.where(valid[..., None], core * scale + offset, np.float32(EXPORT_NODATA)).transpose(2, 0, 1)
                dst.write(data.astype(np.float32), window=Window(c * pw, r * ph, pw, ph))
                if progress is not None:
                    progress(first + k + 1, mixer.total_patches)
    return grid
