"""Batch exports, as in the original notebook but correct and bounded.

* Training patches: stratified sample points by label inside the region (balanced crop /
  not-crop: 275 + 275 train, 50 + 50 test by default, disjoint), ``neighborhoodToArray`` with a
  fixed square kernel of ``patch_size + 2 * kernel_buffer``, ``sampleRegions`` at the composite's
  scale and CRS, split into several table export tasks of ``points_per_task`` points each
  (TFRecord, selectors = bands + label) to Cloud Storage or Drive.
* Prediction input: the composite as an image TFRecord export with ``patchDimensions`` and
  ``kernelSize`` = 2 x kernel buffer (patches overlap, so predictions have no seams) plus
  Earth Engine's mixer JSON, on a grid grown to whole patches (:func:`image_export_grid`: Earth
  Engine drops the border patches that do not fit whole, which would leave the region's east and
  south edges unpredicted).

Functions here build ``ee.batch.Task`` objects without starting them; :func:`start_tasks`
starts them (with retries). Nothing is sent to Earth Engine until then.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from core.ee.composites import CompositeConfig, composite_image, ee_geometry
from core.ee.errors import (EEPermissionError, EEServerError, RetryPolicy, call_with_retries, error_line, http_status,
                            is_network_failure, started_anyway)
from core.ee.labels import LabelConfig, label_image
from core.errors import ConfigError, EarthEngineError, OutputExistsError
from core.labels import CROP, NODATA, NOT_CROP
from core.bands import FEATURE_BANDS

#: Name of the label feature in exported patches: the one core.patches reads.
LABEL_BAND = "crop"
MAX_PIXELS = 1e10
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
#: what training's file patterns and the task's file names cannot hold in a Cloud Storage prefix: a
#: space, or a glob character (``gs://b/a*/n/train_*.tfrecord.gz`` matches other exports' files)
_PREFIX_BAD = re.compile(r"[\s*?\[\]{}\\]")
#: Earth Engine holds at most 3,000 pending tasks per project ("Processing environments" guide:
#: batch environment): a training export of more tasks could never be queued whole.
MAX_PENDING_TASKS = 3000
#: The most points one patch export task takes (:class:`PatchExportConfig`).
MAX_POINTS_PER_TASK = 2000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _some(values: Sequence[int]) -> str:
    """``0, 8, 16, ..., 128`` (every value when there are few)."""
    if len(values) <= 6:
        return ", ".join(map(str, values))
    return f"{', '.join(map(str, values[:4]))}, ..., {values[-1]} (a multiple of {values[1] - values[0]})"


def check_export_name(name: Any) -> str:
    """``name`` if it can name an export: the folder of its files under the destination's prefix,
    the start of its task descriptions and of the file globs training reads.

    Raises:
        ConfigError: empty, over 80 characters, or other than letters, digits, '.', '_' and '-'
        (a space, '/' or '*' would make another folder or a glob that matches other files).
    """
    text = str(name) if name is not None else ""
    if not _NAME_RE.match(text):
        fixed = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-_")[:80] or "crops"
        raise ConfigError(f"export name {text!r} must be 1-80 letters, digits, '.', '_' or '-', starting with a letter "
                          f"or digit (it names the folder of the exported files), e.g. {fixed!r}")
    return text


#: the longest prefix (folders) of an export's files, in bytes: Cloud Storage names are at most 1,024 bytes,
#: and an export's name (80) and its files' own names (PREFIX-00000.tfrecord.gz, ...) come after it
MAX_PREFIX_BYTES = 800


@dataclass(frozen=True)
class Destination:
    """Where exports go: ``gcs`` (bucket + object prefix) or ``drive`` (folder = prefix)."""

    kind: str = "gcs"
    bucket: str | None = None
    prefix: str = "crop-mapping"

    def __post_init__(self) -> None:
        _require(self.kind in ("gcs", "drive"), f"destination must be 'gcs' or 'drive', got {self.kind!r}")
        if self.kind == "gcs":
            _require(bool(self.bucket), "a Cloud Storage export needs a bucket name")
            check_bucket(self.bucket or "")
            _require(not _PREFIX_BAD.search(self.prefix) and "//" not in self.prefix,
                     f"the Cloud Storage prefix {self.prefix!r} holds a space, a '*', '?', '[', ']', '{{', '}}', a "
                     "backslash or an empty folder ('//'): they would break the file patterns that training reads; "
                     "use letters, digits, '-', '_', '.' and '/' between folders")
        else:
            # Export.*.toDrive: "folder names with separators (e.g., 'path/to/file') are interpreted as
            # literal strings, not system paths" (ee.batch): 'a/b' is one folder so named at the Drive root
            _require(bool(self.prefix) and "/" not in self.prefix,
                     f"a Drive destination is one folder name, got {self.prefix!r}: Earth Engine makes 'a/b' a single "
                     "folder literally named 'a/b' at the Drive root, not a subfolder; give one name such as drive:crop_exports")
        _require(not self.prefix.startswith("/") and ".." not in self.prefix, f"bad prefix {self.prefix!r}")
        # Cloud Storage's names are at most 1024 bytes: room is left for an export's name and its files' own
        _require(len(self.prefix.encode()) <= MAX_PREFIX_BYTES,
                 f"the prefix is {len(self.prefix.encode()):,} bytes long; Cloud Storage names are at most 1,024 bytes, "
                 f"the export's name and files included: keep it under {MAX_PREFIX_BYTES} bytes")

    def uri(self, name: str) -> str:
        """gs:// URI (or Drive path) of an exported object name."""
        path = f"{self.prefix.rstrip('/')}/{name}" if self.prefix else name
        return f"gs://{self.bucket}/{path}" if self.kind == "gcs" else f"drive:{path}"


def check_bucket(name: str) -> str:
    """``name`` if Cloud Storage accepts it as a bucket name (its naming rules), so that a task does
    not fail in the queue over it.

    Raises:
        ConfigError: saying which rule ``name`` breaks.
    """
    rules = ("3-63 lower-case letters, digits, '-', '_' and '.' (up to 222 with dots, 63 between them), starting and "
             "ending with a letter or digit")
    why = None
    if name.startswith(("gs:", "gcs:")) or "/" in name or ":" in name:
        why = "give the bucket's name alone, as in gcs:BUCKET/PREFIX"
    elif name != name.lower():
        why = "bucket names have no capital letters"
    elif not _BUCKET_RE.match(name):
        why = rules
    elif "." not in name and len(name) > 63:
        why = "a name without dots is at most 63 characters"
    elif ".." in name or any(len(part) > 63 for part in name.split(".")):
        why = "each part between dots is 1-63 characters"
    elif re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", name):
        why = "a bucket name is not an IP address"
    elif name.startswith("goog") or "google" in name:
        why = "Cloud Storage refuses names that start with 'goog' or contain 'google'"
    if why:
        raise ConfigError(f"{name!r} is not a Cloud Storage bucket name: {why}")
    return name


def parse_destination(text: str, flag: str = "destination") -> Destination:
    """``gcs:BUCKET[/PREFIX]`` (or ``gs://BUCKET[/PREFIX]``) or ``drive:FOLDER`` -> a Destination.

    Raises:
        ConfigError: any other form, or a bad bucket/prefix.
    """
    given = text = str(text).strip()
    if text.startswith("gs://"):
        text = "gcs:" + text[len("gs://"):]
    if not text:
        raise ConfigError(f"no {flag} given: enter drive:FOLDER for a Google Drive folder, or gcs:BUCKET/PREFIX "
                          "for Cloud Storage")
    kind, sep, rest = text.partition(":")
    kind, rest = kind.strip().lower(), rest.strip().strip("/").strip()  # ("gcs: my-bucket/x/ ", "GCS:b")
    if not sep or kind not in ("gcs", "drive") or not rest:
        raise ConfigError(f"{flag} must be gcs:BUCKET/PREFIX or drive:FOLDER, got {given!r}")  # (as typed: not 'gcs:')
    if kind == "drive":
        return Destination("drive", prefix=rest)
    bucket, _, prefix = rest.partition("/")
    return (Destination("gcs", bucket=bucket.strip(), prefix=prefix) if prefix
            else Destination("gcs", bucket=bucket.strip()))


@dataclass(frozen=True)
class SampleConfig:
    """Points per class as (not crop, crop): train and test sets are disjoint."""

    train_points: tuple[int, int] = (275, 275)
    test_points: tuple[int, int] = (50, 50)
    seed: int = 0
    tile_scale: int = 4

    def __post_init__(self) -> None:
        for name, pts in (("train_points", self.train_points), ("test_points", self.test_points)):
            _require(len(pts) == 2 and all(int(p) >= 0 for p in pts), f"{name} must be two counts (not crop, crop)")
        _require(sum(self.train_points) > 0, "train_points must ask for at least one point")
        _require(1 <= self.tile_scale <= 16, "tile_scale must be 1-16")

    @property
    def per_class(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(label value, train points, test points) of not crop, then crop."""
        return ((NOT_CROP, self.train_points[0], self.test_points[0]), (CROP, self.train_points[1], self.test_points[1]))


@dataclass(frozen=True)
class PatchExportConfig:
    """Training patches: side, kernel buffer (extra pixels each side), points per export task."""

    patch_size: int = 256
    kernel_buffer: int = 0
    points_per_task: int = 100
    bands: tuple[str, ...] = FEATURE_BANDS
    tile_scale: int = 8

    def __post_init__(self) -> None:
        _require(32 <= self.patch_size <= 1024 and self.patch_size % 16 == 0,
                 "patch_size must be a multiple of 16, 32-1024 (as training takes them)")
        _require(0 <= self.kernel_buffer <= self.patch_size // 2,
                 f"kernel_buffer (the context margin) must be 0-{self.patch_size // 2} px, half the patch size at most")
        _require(1 <= self.points_per_task <= MAX_POINTS_PER_TASK, f"points_per_task must be 1-{MAX_POINTS_PER_TASK}")
        _require(set(self.bands) <= set(FEATURE_BANDS) and len(self.bands) > 0, f"bands must be among {FEATURE_BANDS}")
        _require(1 <= self.tile_scale <= 16, "tile_scale must be 1-16")

    @property
    def full_size(self) -> int:
        return self.patch_size + 2 * self.kernel_buffer

    @property
    def selectors(self) -> list[str]:
        return list(self.bands) + [LABEL_BAND]


@dataclass(frozen=True)
class ImageExportConfig:
    """Prediction input export: patch side, kernel buffer each side, max file size."""

    patch_size: int = 256
    kernel_buffer: int = 32
    max_file_mb: int = 100
    bands: tuple[str, ...] = FEATURE_BANDS

    def __post_init__(self) -> None:
        _require(16 <= self.patch_size <= 2048 and self.patch_size % 16 == 0, "patch_size must be a multiple of 16, 16-2048")
        # core.predict_export.ExportPredictor runs the model on patch + kernelSize (= 2 x kernel_buffer)
        # px and needs that to be a multiple of 16 (a U-Net's four poolings)
        valid = [k for k in range(self.patch_size // 2 + 1) if (self.patch_size + 2 * k) % 16 == 0]
        _require(
            self.kernel_buffer in valid,
            f"kernel_buffer {self.kernel_buffer} (the context margin) does not fit prediction: patch_size + 2 x kernel_buffer must be a "
            f"multiple of 16 and kernel_buffer at most patch_size / 2; for patch_size {self.patch_size} use "
            f"{_some(valid)}",
        )
        _require(1 <= self.max_file_mb <= 10000, "max_file_mb must be 1-10000")
        _require(set(self.bands) <= set(FEATURE_BANDS) and len(self.bands) > 0, f"bands must be among {FEATURE_BANDS}")

    @property
    def format_options(self) -> dict:
        opts: dict[str, Any] = {
            "patchDimensions": [self.patch_size, self.patch_size],
            "compressed": True,
            "maxFileSize": int(self.max_file_mb) * 1024 * 1024,
        }
        if self.kernel_buffer:
            opts["kernelSize"] = [2 * self.kernel_buffer, 2 * self.kernel_buffer]
        return opts


@dataclass(frozen=True)
class ExportJob:
    """One unstarted export task and what it will write."""

    split: str
    index: int
    description: str
    points: int | None
    task: Any  # ee.batch.Task
    uri_prefix: str
    #: the pixel grid an image export writes (:class:`ExportGrid`); None for table exports
    grid: "ExportGrid | None" = None


@dataclass(frozen=True)
class ExportGrid:
    """The pixel grid of an image export: the region's bounding box in ``crs``, snapped to the
    scale, grown by a margin on every side, then east and south to whole patches."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    #: the region's own box: its size in pixels, and its top-left pixel's column and row in the grid
    #: (the rest is padding: the composite around the region)
    region_width: int
    region_height: int
    region_col: int = 0
    region_row: int = 0

    @property
    def dimensions(self) -> str:
        """``"WIDTHxHEIGHT"``, as Earth Engine's export takes it."""
        return f"{self.width}x{self.height}"


def image_export_grid(geometry: Mapping[str, Any], scale: float, crs: str, patch_size: int,
                      origin: float | tuple[float, float] = 0.0, margin: int = 0) -> ExportGrid:
    """The grid of an image export of ``geometry`` (lon/lat GeoJSON) at ``scale`` metres in ``crs``.

    Earth Engine's TFRecord image export tiles the grid into ``patchDimensions`` patches and drops
    the border patches that do not fit whole, so the region's box (its corner snapped to ``origin``
    + multiples of ``scale``, as :func:`core.ee.pixels.snap_grid`) is grown by ``margin`` pixels on
    every side (the kernel buffer: the export's pixels outside its rectangle are no data, and the
    region's edges would be predicted with zeros as their context), then east and south to a whole
    number of patches; the padding holds the composite's pixels around the region.

    Raises:
        ConfigError: a geographic ``crs`` (:func:`core.ee.pixels.geometry_bounds`).
    """
    from core.ee.pixels import geometry_bounds

    return patch_grid(geometry_bounds(geometry, scale, crs), scale, crs, patch_size, origin, margin)


def patch_grid(bounds: Sequence[float], scale: float, crs: str, patch_size: int,
               origin: float | tuple[float, float] = 0.0, margin: int = 0) -> ExportGrid:
    """The grid of ``scale`` covering ``bounds`` = (xmin, ymin, xmax, ymax) in ``crs`` units (corner
    snapped to ``origin`` + multiples of ``scale``), grown by ``margin`` pixels on every side, then
    east and south to whole ``patch_size`` patches."""
    from core.ee.pixels import snap_grid

    (a, b, x0, d, e, y0), width, height = snap_grid(bounds, scale, origin)
    whole = lambda n: -(-n // patch_size) * patch_size  # noqa: E731
    transform = (a, b, x0 - margin * a, d, e, y0 - margin * e)
    return ExportGrid(str(crs), transform, whole(width + 2 * margin), whole(height + 2 * margin), width, height,
                      margin, margin)


def task_description(*parts: Any) -> str:
    """An Earth Engine task description (letters, digits and . , : ; _ - only, <= 100 chars)."""
    text = "_".join(str(p) for p in parts if p != "")
    return re.sub(r"[^A-Za-z0-9.,:;_-]+", "-", text)[:100]


def features_image(cfg: CompositeConfig, geometry: Mapping[str, Any], bands: Sequence[str] = FEATURE_BANDS):
    """The composite's bands on its grid (averaged where that is coarser than the sensor's pixels:
    :func:`~core.ee.composites.composite_image`), masked pixels set to 0 (the project's convention), float32."""
    return composite_image(cfg, geometry, on_grid=True).select(list(bands)).unmask(0).toFloat()


def imaged_label(composite: CompositeConfig, labels: LabelConfig, geometry: Mapping[str, Any],
                 bands: Sequence[str] = FEATURE_BANDS):
    """The ``crop`` label band, no data (255) wherever the composite is masked in any of ``bands``.

    Patches store masked composite pixels as 0 (:func:`features_image`); without this a cloud or a
    scene gap would reach training as a labelled pixel of zero reflectance.
    """
    import ee

    imaged = composite_image(composite, geometry, on_grid=True).select(list(bands)).mask()
    imaged = imaged.reduce(ee.Reducer.min()).gt(0)
    # on the composite's pixels, each the product's most frequent class under it (labels.aggregated)
    on_grid = label_image(labels, geometry, composite.resolution, composite.crs_for(geometry))
    return on_grid.where(imaged.Not(), NODATA).rename(LABEL_BAND)


def sampling_projection(composite: CompositeConfig, geometry: Mapping[str, Any]):
    """The projection that points and patches are sampled in: the composite's CRS for the region at
    its scale, its pixel corners at the sensor's own (:meth:`CompositeConfig.grid_origin`), as the
    downloads' and image exports' grids. (A bare CRS with a scale puts corners on multiples of the
    scale: half a Landsat pixel off its pixels.)"""
    import ee

    crs = composite.crs_for(geometry)
    s, (ox, oy) = composite.resolution, composite.grid_origin(crs)
    return ee.Projection(crs, [s, 0, ox, 0, -s, oy])


def _stratified(composite: CompositeConfig, labels: LabelConfig, geometry: Mapping[str, Any], sample: SampleConfig):
    """The points of one ``stratifiedSample``: train + test of each class at most (fewer where the
    region has fewer labelled pixels with data), with a seeded random ``split_order`` column."""
    lab = imaged_label(composite, labels, geometry)
    lab = lab.updateMask(lab.neq(NODATA))
    per_class = [n_train + n_test for _, n_train, n_test in sample.per_class]
    return lab.stratifiedSample(
        numPoints=max(per_class),
        classBand=LABEL_BAND,
        region=ee_geometry(geometry),
        projection=sampling_projection(composite, geometry),
        seed=sample.seed,
        classValues=[NOT_CROP, CROP],
        classPoints=per_class,
        dropNulls=True,
        tileScale=sample.tile_scale,
        geometries=True,
    ).randomColumn("split_order", sample.seed)


def sample_points(
    composite: CompositeConfig,
    labels: LabelConfig,
    geometry: Mapping[str, Any],
    sample: SampleConfig = SampleConfig(),
) -> dict[str, Any]:
    """Disjoint ``train`` and ``test`` point FeatureCollections stratified by label (0/1).

    One ``stratifiedSample`` draws train + test points per class; a seeded random column orders
    each class, the first ``test`` points are the test set and the next ``train`` the train set;
    each set is then put in that random order, classes mixed.
    Points fall only where the composite has data (:func:`imaged_label`). A class with fewer
    pixels than asked for gives fewer points (:func:`check_sample_points` says so before an export).
    """
    import ee

    points = _stratified(composite, labels, geometry, sample)
    train, test = ee.List([]), ee.List([])
    for value, n_train, n_test in sample.per_class:
        ordered = points.filter(ee.Filter.eq(LABEL_BAND, value)).sort("split_order")
        if n_test:
            test = test.cat(ordered.toList(n_test, 0))
        if n_train:
            train = train.cat(ordered.toList(n_train, n_test))
    # Both classes in one random order (the seeded column): cut into export tasks, each file then
    # holds crop and not-crop patches alike, not the first files one class and the last the other.
    return {"train": ee.FeatureCollection(train).sort("split_order"), "test": ee.FeatureCollection(test).sort("split_order")}


def patches_past_region(composite: CompositeConfig, geometry: Mapping[str, Any], patches: "PatchExportConfig") -> str | None:
    """What to know of training patches (with their kernel buffer) larger than the region they are
    sampled in, or None: they overlap almost wholly, and test patches hold the training patches' pixels.
    No request."""
    width, height = composite.grid_size(geometry)
    if min(width, height) >= patches.full_size:
        return None
    short = "its sides are each" if max(width, height) < patches.full_size else f"its {'height' if height < width else 'width'} is"
    return (f"the region is {width} x {height} px at {composite.resolution:g} m: {short} smaller than one {patches.full_size} px "
            "patch (its margin included), so its patches overlap almost wholly (near copies of one another), and the test patches hold the "
            "training patches' pixels, so validation on them flatters the model; draw a larger region, or use "
            "smaller patches or a smaller margin")


#: said where :func:`check_sample_points` could not count the points
UNCOUNTED_POINTS = ("the points each class gives could not be counted before the export (too much for an interactive "
                    "request over this region): the tasks start unchecked; where a class has fewer labelled pixels "
                    "than the points asked for, its files hold fewer patches")


def check_sample_points(composite: CompositeConfig, labels: LabelConfig, geometry: Mapping[str, Any],
                        sample: SampleConfig = SampleConfig(), getinfo: Callable[[Any], Any] | None = None
                        ) -> dict[str, int] | None:
    """The points the region gives each class, ``{"not crop": n, "crop": n}``, in ONE ``getInfo``
    (Earth Engine's ``stratifiedSample`` takes all of a class's pixels when it has fewer than asked
    for; the export would then hold fewer, and unbalanced, patches, and its last tasks none). None
    where the count itself is too much for an interactive request (it timed out or ran out of
    memory, as a region large enough for a batch export may): the export then goes on unchecked
    (:data:`UNCOUNTED_POINTS` says so).

    Raises:
        NoDataError: a class with fewer points than its train + test points (the message gives the
            counts and what to do); EarthEngineError subclasses (mapped request errors).
    """
    from core.ee.errors import EEMemoryError, EETimeoutError
    from core.errors import NoDataError

    points = _stratified(composite, labels, geometry, sample)
    fetch = getinfo or (lambda obj: obj.getInfo())
    try:
        histogram = call_with_retries(lambda: fetch(points.aggregate_histogram(LABEL_BAND)))
    except (EETimeoutError, EEMemoryError):  # (the export runs as a batch task, with its own limits)
        return None
    found = {NOT_CROP: 0, CROP: 0}
    for key, n in (histogram.items() if isinstance(histogram, dict) else ()):
        try:
            value = float(key)  # (a histogram's keys are the values as text: "0", "1", or "1.0")
        except ValueError:
            continue
        if value in found:
            found[int(value)] = int(n)
    names = {NOT_CROP: "not crop", CROP: "crop"}
    short = []
    for value, n_train, n_test in sample.per_class:
        if found[value] < n_train + n_test:
            short.append(f"{found[value]:,} {names[value]} point(s) of the {n_train + n_test:,} asked for "
                         f"({n_train:,} train + {n_test:,} test)")
    if short:
        raise NoDataError("the region's labelled pixels with imagery give only " + " and ".join(short)
                          + ": ask for fewer points per class, or choose a larger region")
    return {names[k]: v for k, v in found.items()}


def patch_image(composite: CompositeConfig, labels: LabelConfig, geometry: Mapping[str, Any], patches: PatchExportConfig):
    """Bands + label (no data where the composite is masked) as arrays of ``full_size`` x ``full_size``
    around each pixel."""
    import ee

    label = imaged_label(composite, labels, geometry, patches.bands).toFloat()
    image = features_image(composite, geometry, patches.bands).addBands(label)
    k = patches.full_size
    weights = ee.List.repeat(ee.List.repeat(1, k), k)
    kernel = ee.Kernel.fixed(k, k, weights)
    return image.neighborhoodToArray(kernel)


def _table_task(collection, description: str, dest: Destination, prefix: str, selectors: list[str]):
    import ee

    if dest.kind == "gcs":
        return ee.batch.Export.table.toCloudStorage(
            collection=collection,
            description=description,
            bucket=dest.bucket,
            fileNamePrefix=prefix,
            fileFormat="TFRecord",
            selectors=selectors,
        )
    return ee.batch.Export.table.toDrive(
        collection=collection,
        description=description,
        folder=dest.prefix,
        fileNamePrefix="_".join(prefix.split("/")[-2:]),  # NAME_SPLIT_NNN: one Drive folder holds many exports
        fileFormat="TFRecord",
        selectors=selectors,
    )


def check_task_count(sample: SampleConfig, patches: PatchExportConfig) -> int:
    """The number of export tasks of a training export (``points_per_task`` points each, train and
    test apart), checked before Earth Engine is asked anything.

    Raises:
        ConfigError: more than :data:`MAX_PENDING_TASKS`; the message gives the points per task that fit.
    """
    totals = (int(sum(sample.train_points)), int(sum(sample.test_points)))

    def tasks_at(per_task: int) -> int:
        return sum(math.ceil(n / per_task) for n in totals)

    needed = tasks_at(patches.points_per_task)
    if needed > MAX_PENDING_TASKS:
        per_task = math.ceil(sum(totals) / MAX_PENDING_TASKS)
        while tasks_at(per_task) > MAX_PENDING_TASKS:  # (each split rounds up on its own)
            per_task += 1
        fix = "ask for fewer points" + (f", or {per_task:,} or more points per task" if per_task <= MAX_POINTS_PER_TASK else "")
        raise ConfigError(f"{totals[0]:,} training and {totals[1]:,} test points at {patches.points_per_task:,} per task "
                          f"make {needed:,} export tasks, but Earth Engine holds at most {MAX_PENDING_TASKS:,} pending "
                          f"tasks per project: {fix}")
    return needed


def training_export_jobs(
    composite: CompositeConfig,
    labels: LabelConfig,
    geometry: Mapping[str, Any],
    dest: Destination,
    name: str = "patches",
    sample: SampleConfig = SampleConfig(),
    patches: PatchExportConfig = PatchExportConfig(),
) -> list[ExportJob]:
    """Unstarted TFRecord table exports of training and test patches, ``points_per_task`` each.

    Files are ``<prefix>/<name>/<split>_<NNN>.tfrecord.gz`` (Earth Engine appends the suffix).

    Raises:
        ConfigError: a ``name`` :func:`check_export_name` refuses, or more tasks than Earth Engine
            queues (:func:`check_task_count`).
    """
    import ee

    check_export_name(name)
    check_task_count(sample, patches)
    arrays = patch_image(composite, labels, geometry, patches)
    projection = sampling_projection(composite, geometry)
    points = sample_points(composite, labels, geometry, sample)
    jobs: list[ExportJob] = []
    for split, counts in (("train", sample.train_points), ("test", sample.test_points)):
        n = int(sum(counts))
        tasks = math.ceil(n / patches.points_per_task)
        listed = points[split].toList(n)
        for i in range(tasks):
            count = min(patches.points_per_task, n - i * patches.points_per_task)
            batch = ee.FeatureCollection(listed.slice(i * patches.points_per_task, i * patches.points_per_task + count))
            samples = arrays.sampleRegions(
                collection=batch,
                properties=[],
                projection=projection,
                tileScale=patches.tile_scale,
                geometries=False,
            )
            prefix = f"{dest.prefix.rstrip('/')}/{name}/{split}_{i:03d}"
            desc = task_description(name, split, f"{i:03d}")
            task = _table_task(samples, desc, dest, prefix, patches.selectors)
            jobs.append(ExportJob(split, i, desc, count, task, dest.uri(f"{name}/{split}_{i:03d}") if dest.kind == "gcs" else f"drive:{dest.prefix}/{name}_{split}_{i:03d}"))
    return jobs


def patch_globs(jobs: Sequence[ExportJob]) -> dict[str, str] | None:
    """``{"train": glob, "test": glob}`` of the TFRecord files that training export jobs write to
    Cloud Storage (what ``python -m core train --train/--val`` and the Model page take); None for
    Drive exports (download the files first) or when a split has no job."""
    out = {}
    for split in ("train", "test"):
        uris = [j.uri_prefix for j in jobs if j.split == split]
        if not uris or not all(u.startswith("gs://") for u in uris):
            return None
        out[split] = f"{uris[0].rsplit('/', 1)[0]}/{split}_*.tfrecord.gz"
    return out


def image_export_job(
    composite: CompositeConfig,
    geometry: Mapping[str, Any],
    dest: Destination,
    name: str = "image",
    image_cfg: ImageExportConfig = ImageExportConfig(),
) -> ExportJob:
    """An unstarted TFRecord image export of the composite for prediction (patches + mixer JSON),
    on the grid of :func:`image_export_grid` (the region's box grown by the kernel buffer on every side, then to
    whole patches).

    Earth Engine writes ``<prefix>/<name>/image-NNNNN.tfrecord.gz`` and ``...mixer.json``.

    Raises:
        ConfigError: a ``name`` :func:`check_export_name` refuses; a geographic CRS; a grid of more pixels
            than the task's ``maxPixels`` (:data:`MAX_PIXELS`: Earth Engine would fail it later, "Export too
            large").
    """
    import ee

    check_export_name(name)
    image = features_image(composite, geometry, image_cfg.bands)
    crs = composite.crs_for(geometry)
    grid = image_export_grid(geometry, composite.resolution, crs, image_cfg.patch_size, composite.grid_origin(crs),
                             image_cfg.kernel_buffer)
    if grid.width * grid.height > MAX_PIXELS:
        raise ConfigError(f"the export would be {grid.width:,} x {grid.height:,} px ({grid.width * grid.height:.3g}), "
                          f"more than the {MAX_PIXELS:.0e} px an export task may write (maxPixels): export the region in "
                          "parts, or at a larger pixel size (--scale)")
    prefix = f"{dest.prefix.rstrip('/')}/{name}/image"
    desc = task_description(name, "image")
    common = dict(  # crs + crsTransform + dimensions, no region or scale: exactly this rectangle of pixels
        image=image,
        description=desc,
        crs=grid.crs,
        crsTransform=list(grid.transform),
        dimensions=grid.dimensions,
        fileFormat="TFRecord",
        formatOptions=image_cfg.format_options,
        maxPixels=MAX_PIXELS,
    )
    if dest.kind == "gcs":
        task = ee.batch.Export.image.toCloudStorage(bucket=dest.bucket, fileNamePrefix=prefix, **common)
    else:
        task = ee.batch.Export.image.toDrive(folder=dest.prefix, fileNamePrefix=f"{name}_image", **common)
    return ExportJob("image", 0, desc, None, task,
                     dest.uri(f"{name}/image") if dest.kind == "gcs" else f"drive:{dest.prefix}/{name}_image", grid)


#: the files an export of each kind writes in its folder ``<prefix>/<name>/``: a training export's
#: ``train_NNN.tfrecord.gz`` / ``test_NNN...`` (what training's file patterns read), an image export's
#: ``image-NNNNN.tfrecord.gz`` (or one unnumbered file) and its mixer
_EXPORT_FILES = {"patches": re.compile(r"(train|test)_.*\.tfrecord(\.gz)?"),
                 "image": re.compile(r"image(-?\d+\.tfrecord(\.gz)?|\.tfrecord(\.gz)?|-?mixer\.json)")}
#: where those names start (what a listing of the folder asks for)
_EXPORT_STARTS = {"patches": ("train_", "test_"), "image": ("image",)}


def existing_export_files(dest: Destination, name: str, kind: str, storage_client: Any) -> list[str]:
    """The gs:// URIs of files an export of ``kind`` ("patches" or "image") named ``name`` to ``dest`` would
    write that are already in Cloud Storage (an earlier export of that name), in name order; [] for a Drive
    destination, which cannot be looked into.

    Raises:
        ConfigError: ``kind`` is neither; any exception of the storage client's listing (see
        :func:`check_export_place`, which turns it into a warning).
    """
    if kind not in _EXPORT_FILES:
        raise ConfigError(f"export kind must be 'patches' or 'image', got {kind!r}")
    if dest.kind != "gcs":
        return []
    folder = dest.uri(name)[len(f"gs://{dest.bucket}/"):] + "/"  # (the export's folder, as its jobs name it)
    found = []
    for start in _EXPORT_STARTS[kind]:
        for blob in storage_client.list_blobs(dest.bucket, prefix=folder + start):
            if _EXPORT_FILES[kind].fullmatch(blob.name[len(folder):]):
                found.append(f"gs://{dest.bucket}/{blob.name}")
    return sorted(found)


def check_export_place(dest: Destination, name: str, kind: str, storage_client: Callable[[], Any] | None,
                       replace: bool, warnings: list[str]) -> list[str]:
    """Files of an earlier export of this name and kind in Cloud Storage, checked before a new one starts:
    Earth Engine writes over those of the same names, and training's file patterns (or an image export's
    file list) would read the earlier export's further files with the new one's. Returns the files to
    delete before the tasks start (:func:`delete_export_files`; only with ``replace``).
    ``storage_client`` makes the client (not called for a Drive destination, which cannot be looked into;
    None: no check). Where the listing fails (no permission to list the bucket, no network) the export is
    not held back: ``warnings`` says that it was not checked.

    Raises:
        OutputExistsError: files are there and ``replace`` is False (the message names them and says to give
            another name, delete them, or replace them).
    """
    if dest.kind != "gcs" or storage_client is None:
        return []
    place = dest.uri(name)
    try:
        found = existing_export_files(dest, name, kind, storage_client())
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the look is said, not a reason to refuse the export
        short = error_line(exc)
        warnings.append(f"whether {place}/ already holds files of an earlier export named {name!r} could not be "
                        f"checked ({type(exc).__name__}: {short}): if it does, the new export writes over those of "
                        "the same names and the others are read with its files")
        return []
    if found and not replace:
        what = "training patch" if kind == "patches" else "image export"
        raise OutputExistsError(
            f"{place}/ already holds {len(found)} {what} file{'s' if len(found) != 1 else ''} of an earlier export named "
            f"{name!r} (e.g. {found[0]}): the new export would write over some and leave the others to be read with it; "
            "give another export name, delete them, or replace them (the Earth Engine page's 'Replace an earlier export "
            "of this name', or --overwrite: they are deleted before the new tasks start)")
    return found


def delete_export_files(uris: Sequence[str], storage_client: Any) -> None:
    """Delete the files :func:`check_export_place` found, before the export that replaces them starts
    (one already gone counts as deleted).

    Raises:
        EarthEngineError subclasses: Cloud Storage refused a deletion (the message says which file and why);
        the files deleted until then stay deleted and no task was started.
    """
    from core.ee.upload import parse_gs_uri

    for uri in uris:
        bucket, path = parse_gs_uri(uri)
        try:
            storage_client.bucket(bucket).blob(path).delete()
        except Exception as exc:  # noqa: BLE001 - Cloud Storage's failures mapped below, others re-raised
            if http_status(exc) == 404:
                continue
            short = error_line(exc)
            if http_status(exc) == 403:
                raise EEPermissionError(f"Cloud Storage refused to delete {uri} (HTTP 403), a file of the earlier export "
                                        "being replaced: this account may not delete objects in that bucket; delete it "
                                        f"yourself, or give another export name; no task was started ({short})") from exc
            if http_status(exc) is None and not is_network_failure(exc):
                raise
            raise EarthEngineError(f"could not delete {uri}, a file of the earlier export being replaced: {short}; no "
                                   "task was started: try again, or give another export name") from exc


def start_tasks(
    jobs: Sequence[ExportJob],
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] | None = None,
) -> list[str]:
    """Start every job's task (retrying 429/5xx) and return the task ids, in order.

    Raises:
        EarthEngineError subclasses: when a task cannot be started (tasks already started keep
        running; cancel them with core.ee.tasks.cancel_task if needed); a server or network failure
        says to check the task list before starting it again (the task may exist).
    """
    import time

    ids = []
    for job in jobs:
        try:
            call_with_retries(job.task.start, retry, sleep=sleep or time.sleep)
        except EEServerError as err:  # (it said "retrying usually helps": a repeat may start it twice)
            raise started_anyway(err, f"the export {job.description}") from err
        ids.append(job.task.id)
    return ids


def start_jobs(jobs: Sequence[ExportJob], **kw: Any) -> list[dict]:
    """Start jobs one by one (see :func:`start_tasks`); rows of id, description and destination.

    Raises:
        EarthEngineError subclasses: when one cannot be started; the message lists the tasks that
        were already started and keep running (cancel them in the task monitor or with ee-tasks --cancel).
    """
    from core.errors import CropMapError, EarthEngineError

    started: list[dict] = []
    for job in jobs:
        try:
            (task_id,) = start_tasks([job], **kw)
        except CropMapError as err:
            if not started:
                raise
            ids = ", ".join(s["id"] for s in started)
            msg = (f"{err}; {len(started)} task(s) already started and still running: {ids} "
                   "(cancel them in the task monitor or with ee-tasks --cancel ID)")
            try:
                raise type(err)(msg) from err
            except TypeError:
                raise EarthEngineError(msg) from err
        started.append({"id": task_id, "description": job.description, "destination": job.uri_prefix})
    return started
