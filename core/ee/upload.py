"""Prediction back to Earth Engine: write it (COG, or EE TFRecord + mixer), copy it to Cloud
Storage, start an ingestion into an image asset (what ``earthengine upload image`` does). The
``ee-upload`` command and the Earth Engine page upload the COG that ``predict`` writes; the
TFRecord + mixer route (:func:`write_prediction_tfrecord`, :func:`upload_prediction_tfrecord`) is
for scripts that predict an image export patch by patch.

The storage client (``google.cloud.storage.Client``-like: ``.bucket(name).blob(path)
.upload_from_filename(path)``) and the ingestion call (default ``ee.data.startIngestion``)
are injected. After the ingestion task COMPLETES (see core.ee.tasks), show the asset with
:func:`core.ee.tiles.asset_layer`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from core.ee.errors import (EENetworkError, EENotConfiguredError, EEPermissionError, EEQuotaError, EEServerError,
                            RetryPolicy, call_with_retries, error_line, http_status, is_network_failure, started_anyway)
from core.errors import ConfigError, CorruptFileError, CropMapError, EarthEngineError, InputNotFoundError, OutputExistsError

PREDICTION_BAND = "crop_probability"
PREDICTION_NODATA = 255
#: A full asset id: a Cloud project (a domain-scoped one too, "example.com:project") or a legacy user
#: folder, then parts of letters, digits, _ and - between single slashes (Earth Engine refused "a//b",
#: "a/" or "../x" only after the prediction had been uploaded).
_ASSET_RE = re.compile(r"^(projects/[a-z0-9][a-z0-9.:-]*/assets/|users/[A-Za-z0-9_.-]+/)[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


_BUCKET = r"[a-z0-9][a-z0-9._-]+[a-z0-9]"


def parse_gs_uri(uri: str) -> tuple[str, str]:
    """(bucket, object) of ``gs://bucket/object``.

    Raises:
        ConfigError: if ``uri`` is not of that form.
    """
    m = re.match(rf"^gs://({_BUCKET})/(.+)$", uri)
    if not m:
        raise ConfigError(f"{uri!r} is not a Cloud Storage URI like gs://bucket/path/file.tif")
    return m.group(1), m.group(2)


def asset_name(asset_id: str, project: str | None = None) -> str:
    """``projects/<p>/assets/<id>`` (or a legacy ``users/...`` id) from a short or full id.

    Raises:
        ConfigError: malformed id, or a short id without a project.
    """
    if not asset_id.startswith(("projects/", "users/")):
        if not project:
            raise ConfigError(f"asset id {asset_id!r} needs a project: give projects/<project>/assets/{asset_id}")
        asset_id = f"projects/{project}/assets/{asset_id}"
    if not _ASSET_RE.match(asset_id):
        raise ConfigError(f"{asset_id!r} is not a valid Earth Engine asset id: projects/PROJECT/assets/NAME, where NAME "
                          "is letters, digits, _ and -, in folders separated by single slashes")
    return asset_id


def viewed_asset(typed: str, project: str | None = None) -> str:
    """The asset to show for an id typed to view it: a short name (no slash) is the project's, as the upload
    form takes it; any other id is left for Earth Engine to judge (a catalog id such as
    ``ESA/WorldCover/v200``, a community catalog's ``projects/sat-io/open-datasets/...``), where an upload's
    must be one it can make (:func:`asset_name`).

    Raises:
        ConfigError: a short name without a project, or one no asset can have.
    """
    typed = typed.strip()
    return asset_name(typed, project) if "/" not in typed else typed


def check_asset_free(asset: str, overwrite: bool, get_asset: Callable[[str], Mapping[str, Any]] | None = None) -> None:
    """Refuse to make ``asset`` (a full id) where one is already there, unless ``overwrite``: asked
    before anything is uploaded (the ingestion refused it only after the upload, leaving its file).

    Raises:
        OutputExistsError: the asset exists and ``overwrite`` is False;
        EarthEngineError subclasses: Earth Engine could not be asked (see :func:`core.ee.assets.find_asset`).
    """
    from core.ee.assets import find_asset

    if not overwrite and find_asset(asset, get_asset=get_asset) is not None:
        raise OutputExistsError(f"the asset {asset} already exists; give another asset id, or replace it (the Earth "
                                "Engine page's \"Replace existing files and asset\", or --overwrite)")


#: Earth Engine's pyramiding policies: how an asset's coarser levels are made from its pixels
PYRAMIDING = ("MEAN", "MODE", "MIN", "MAX", "SAMPLE", "MEDIAN")


@dataclass(frozen=True)
class UploadConfig:
    """Where the prediction goes: Cloud Storage URI (or prefix: a folder, or a bucket's root given
    as ``gs://bucket/``) and the asset to create."""

    gcs_uri: str
    asset_id: str
    band: str = PREDICTION_BAND
    nodata: int = PREDICTION_NODATA
    pyramiding: str = "MEAN"
    overwrite: bool = False

    def __post_init__(self) -> None:
        from core.ee.export import check_bucket

        bucket, _, path = self.gcs_uri.removeprefix("gs://").partition("/")
        if self.gcs_uri.startswith("gs://"):  # (a 2-letter bucket was "not a Cloud Storage URI": its rules said)
            check_bucket(bucket)  # (Cloud Storage's rules, as exports check them)
        if not re.match(rf"^gs://{_BUCKET}(/.*)?$", self.gcs_uri):  # a file, a folder, or a bucket's root
            raise ConfigError(f"{self.gcs_uri!r} is not a Cloud Storage URI like gs://bucket/path/file.tif (or a folder "
                              "such as gs://bucket/path/)")
        if len(path.encode()) > 900:  # (Cloud Storage names are at most 1,024 bytes, the asset's file name included)
            raise ConfigError(f"the Cloud Storage path is {len(path.encode()):,} bytes long; Cloud Storage names are at "
                              "most 1,024 bytes, the file's name included: give a shorter folder")
        last = path.rsplit("/", 1)[-1]  # (a folder, ending in /, has none)
        if "." in last and not _is_tif(last):  # (x.jpg was taken for a folder)
            raise ConfigError(f"{self.gcs_uri!r} names a .{last.rsplit('.', 1)[-1]} file; the prediction goes up as a "
                              "GeoTIFF: end the file's name in .tif, or give a folder ending in /")
        # the asset's name checked now, not after Earth Engine has been reached (a short id: its project comes then)
        if self.asset_id.startswith(("projects/", "users/")):
            asset_name(self.asset_id)
        elif not _ASSET_RE.match(f"projects/p/assets/{self.asset_id}"):
            raise ConfigError(f"{self.asset_id!r} is not a valid Earth Engine asset id: NAME or "
                              "projects/PROJECT/assets/NAME, where NAME is letters, digits, _ and -, in folders "
                              "separated by single slashes")
        if self.pyramiding not in PYRAMIDING:
            raise ConfigError(f"pyramiding must be MEAN, MODE, MIN, MAX, SAMPLE or MEDIAN, got {self.pyramiding}")
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", self.band):
            raise ConfigError(f"band name {self.band!r} must be letters, digits and _")


def image_manifest(
    asset: str,
    uris: Sequence[str],
    band: str = PREDICTION_BAND,
    nodata: int | float | None = PREDICTION_NODATA,
    pyramiding: str = "MEAN",
    properties: Mapping[str, Any] | None = None,
    dates: tuple[str, str] | None = None,
) -> dict:
    """An ImageManifest for ``ee.data.startIngestion``: one tileset from ``uris`` (a GeoTIFF, or
    TFRecord files + their mixer JSON), one band; ``dates`` (first and last day, ISO, of the imagery
    predicted: an Earth Engine composite's) become its start and end time, so that the asset can be
    found by date (``filterDate``) as Earth Engine's own images are.

    Raises:
        ConfigError: ``dates`` that are not two ISO days, the first not after the last.

    The manifest's ``name`` must be a Cloud asset name (``projects/*/assets/**``; the ee client
    converts only an ``id``): a legacy ``users/...`` id becomes
    ``projects/earthengine-legacy/assets/users/...``."""
    if asset.startswith("users/"):
        asset = f"projects/earthengine-legacy/assets/{asset}"
    band_entry: dict[str, Any] = {"id": band, "tilesetId": "0", "tilesetBandIndex": 0, "pyramidingPolicy": pyramiding}
    if nodata is not None:
        band_entry["missingData"] = {"values": [nodata]}
    manifest: dict[str, Any] = {
        "name": asset,
        "tilesets": [{"id": "0", "sources": [{"uris": list(uris)}]}],
        "bands": [band_entry],
    }
    if properties:
        manifest["properties"] = dict(properties)
    if dates is not None:
        import datetime as dt

        try:
            first, last = (dt.date.fromisoformat(d) for d in dates)
        except (TypeError, ValueError):
            first = last = None
        if first is None or first > last:
            raise ConfigError(f"the imagery's dates {dates!r} are not a first and a last day (YYYY-MM-DD), in order")
        manifest["startTime"] = f"{first.isoformat()}T00:00:00Z"
        manifest["endTime"] = f"{(last + dt.timedelta(days=1)).isoformat()}T00:00:00Z"  # (the last day's end)
    return manifest


def storage_error(exc: BaseException, gcs_uri: str) -> CropMapError | None:
    """The project error for a failed Cloud Storage upload to ``gcs_uri`` (None: not a Cloud Storage
    or network failure, i.e. a bug, which keeps its traceback).

    A ``google.api_core`` ``GoogleAPICallError`` is mapped by its ``.code``: 429 and 5xx become
    retryable :class:`EEQuotaError` / :class:`EEServerError`, 403 and 404 a
    :class:`EEPermissionError` naming the bucket, 401 :class:`EENotConfiguredError`, 412 (an
    object is there: see :func:`upload_file`) :class:`OutputExistsError`; a network
    failure becomes a retryable :class:`EENetworkError`.
    """
    if isinstance(exc, CropMapError):
        return exc
    bucket, _ = parse_gs_uri(gcs_uri)
    short = error_line(exc, 300)
    if is_network_failure(exc):
        return EENetworkError(f"could not reach Cloud Storage to upload {gcs_uri}: check the network connection "
                              f"(and any proxy or firewall) and try again ({type(exc).__name__}: {short})")
    names = {cls.__name__ for cls in type(exc).__mro__}
    code = http_status(exc)
    if code is None or not names & {"GoogleAPICallError", "HttpError"}:
        return None
    if code == 429:
        return EEQuotaError(f"Cloud Storage rate limit (HTTP 429) uploading to {gcs_uri}; wait a minute and retry ({short})")
    if 500 <= code < 600:
        return EEServerError(f"Cloud Storage server error (HTTP {code}) uploading to {gcs_uri}; retrying usually "
                             f"helps, or try again later ({short})")
    if code == 401:
        return EENotConfiguredError(f"Cloud Storage refused the credentials (HTTP 401) uploading to {gcs_uri}; run "
                                    f"`earthengine authenticate` again or check GOOGLE_APPLICATION_CREDENTIALS ({short})")
    if code == 403:
        return EEPermissionError(f"Cloud Storage refused the upload to {gcs_uri} (HTTP 403): this account may not "
                                 f"write to bucket {bucket!r}; grant it a role that can create objects there "
                                 f"(e.g. Storage Object Creator) or choose a bucket it can write to ({short})")
    if code == 412:  # the upload's condition, that no object is there (see upload_file)
        return OutputExistsError(f"{gcs_uri} already exists in Cloud Storage; choose another path, or replace it (the "
                                 "Earth Engine page's \"Replace existing files and asset\", or --overwrite)")
    if code == 404:
        return EEPermissionError(f"Cloud Storage bucket {bucket!r} was not found (HTTP 404) uploading to {gcs_uri}: "
                                 f"check the bucket name, or create the bucket first ({short})")
    return EarthEngineError(f"Cloud Storage rejected the upload to {gcs_uri} (HTTP {code}): {short}")


def upload_file(
    local: str | os.PathLike,
    gcs_uri: str,
    storage_client: Any,
    *,
    overwrite: bool = False,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] | None = None,
) -> str:
    """Copy a local file to Cloud Storage (retrying rate limits, 5xx and network failures); returns
    the URI. An object already at ``gcs_uri`` is replaced only with ``overwrite`` (the upload is
    conditional on there being none: no look first that another upload could race).

    Raises:
        InputNotFoundError: the local file does not exist.
        ConfigError: malformed URI.
        OutputExistsError: the object exists and ``overwrite`` is False.
        EarthEngineError subclasses (see :func:`storage_error`): Cloud Storage refused the upload
        (403/404 name the bucket), or it still failed after retries.
    """
    import time

    path = Path(local)
    if not path.is_file():
        raise InputNotFoundError(f"file not found: {path}")
    bucket, name = parse_gs_uri(gcs_uri)
    blob = storage_client.bucket(bucket).blob(name)

    def send() -> None:
        try:
            blob.upload_from_filename(str(path), if_generation_match=None if overwrite else 0)
        except Exception as exc:  # noqa: BLE001 - Cloud Storage/network failures mapped, others re-raised
            err = storage_error(exc, gcs_uri)
            if err is None or err is exc:
                raise
            raise err from exc

    call_with_retries(send, retry, sleep=sleep or time.sleep)
    return gcs_uri


def start_ingestion(
    manifest: Mapping[str, Any],
    *,
    ingest: Callable[..., dict] | None = None,
    allow_overwrite: bool = False,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] | None = None,
) -> str:
    """Start an image ingestion; returns the task id (poll it with core.ee.tasks).

    Only a refusal (quota, HTTP 429: nothing was started) is retried. An image ingestion cannot be made
    safe to repeat: ``ee.data.startIngestion`` does not send its request id to Earth Engine (it only
    lets the client retry on its own), so a request whose answer was lost may have started a task,
    and a second start would be a second ingestion of the asset. No request id is given, so the
    client does not retry either.

    Raises:
        EarthEngineError subclasses: when Earth Engine refuses or fails; a server or network failure
        says to check the task list before starting again.
    """
    import time

    if ingest is None:
        import ee

        ingest = ee.data.startIngestion
    try:
        result = call_with_retries(lambda: ingest("", dict(manifest), allow_overwrite), retry,
                                   sleep=sleep or time.sleep, retry_if=lambda err: isinstance(err, EEQuotaError))
    except EEServerError as err:  # network failures included (EENetworkError is a subclass)
        raise started_anyway(err, f"the ingestion of {manifest.get('name', 'the asset')}") from err
    return str(result.get("id") or result.get("name", ""))


def _is_tif(name: str) -> bool:
    """Whether a file name ends in .tif or .tiff, in any case."""
    return name.lower().endswith((".tif", ".tiff"))


def cog_uri(gcs_uri: str, asset: str) -> str:
    """Where a prediction GeoTIFF uploaded to ``gcs_uri`` for ``asset`` goes: ``gcs_uri`` itself when it
    names a .tif file (.TIF too), else the file named as the asset in that folder."""
    if _is_tif(gcs_uri):
        return gcs_uri
    return gcs_uri.rstrip("/") + "/" + asset.rsplit("/", 1)[-1] + ".tif"


def upload_prediction_cog(
    cog_path: str | os.PathLike,
    cfg: UploadConfig,
    storage_client: Any,
    *,
    project: str | None = None,
    ingest: Callable[..., dict] | None = None,
    get_asset: Callable[[str], Mapping[str, Any]] | None = None,
    properties: Mapping[str, Any] | None = None,
    dates: tuple[str, str] | None = None,
) -> str:
    """Upload a prediction GeoTIFF/COG (uint8 percent, 255 no data) and ingest it as an asset. A
    ``cfg.gcs_uri`` that is a folder gets a file named as the asset (``.../NAME.tif``), so that
    predictions uploaded as two assets do not meet in one file. An existing asset is refused before
    anything is uploaded unless ``cfg.overwrite`` (``get_asset``: ``ee.data.getAsset`` by default).

    Returns the ingestion task id.

    Raises:
        InputNotFoundError, ConfigError; OutputExistsError: the asset or the file exists;
        EarthEngineError subclasses.
    """
    asset = asset_name(cfg.asset_id, project)
    uri = cog_uri(cfg.gcs_uri, asset)
    check_asset_free(asset, cfg.overwrite, get_asset)
    upload_file(cog_path, uri, storage_client, overwrite=cfg.overwrite)
    manifest = image_manifest(asset, [uri], cfg.band, cfg.nodata, cfg.pyramiding, properties, dates)
    return start_ingestion(manifest, ingest=ingest, allow_overwrite=cfg.overwrite)


def write_prediction_tfrecord(
    patches: Iterable[np.ndarray], path: str | os.PathLike, band: str = PREDICTION_BAND, compress: bool = True
) -> int:
    """Write prediction patches in Earth Engine's TFRecord upload layout: one ``tf.train.Example``
    per patch, in the export's patch order, with one float feature ``band`` = the patch's
    [H, W] values row-major (kernel buffer already trimmed). Returns the number of records.
    Write crop probability in percent (0-100) with 255 where there is no data, as in the COG: the
    upload declares 255 missing and the asset's map layer shows percent.

    The records pair with the mixer JSON of the image export they were predicted from.
    """
    from core.tfimport import import_tensorflow

    tf = import_tensorflow()

    options = tf.io.TFRecordOptions(compression_type="GZIP" if compress else "")
    n = 0
    with tf.io.TFRecordWriter(str(path), options=options) as writer:
        for patch in patches:
            arr = np.asarray(patch, dtype=np.float32)
            if arr.ndim != 2:
                raise ConfigError(f"each prediction patch must be 2-D [H, W], got shape {arr.shape}")
            feature = {band: tf.train.Feature(float_list=tf.train.FloatList(value=arr.ravel().tolist()))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
            n += 1
    return n


def upload_prediction_tfrecord(
    tfrecord_paths: Sequence[str | os.PathLike],
    mixer_path: str | os.PathLike,
    cfg: UploadConfig,
    storage_client: Any,
    *,
    project: str | None = None,
    ingest: Callable[..., dict] | None = None,
    get_asset: Callable[[str], Mapping[str, Any]] | None = None,
) -> str:
    """Upload prediction TFRecords (percent, ``cfg.nodata`` where there is no data: see
    :func:`write_prediction_tfrecord`) + the export's mixer JSON under ``cfg.gcs_uri`` (a prefix) and
    ingest them as an asset; returns the ingestion task id.

    Raises:
        InputNotFoundError: a missing TFRecord or mixer file (checked before anything is uploaded);
        CorruptFileError: a mixer that is not JSON; ConfigError (mixer without patchDimensions);
        OutputExistsError: the asset (asked first) or a file exists; EarthEngineError subclasses.
    """
    if not Path(mixer_path).is_file():
        raise InputNotFoundError(f"mixer file not found: {mixer_path}")
    missing = [str(p) for p in tfrecord_paths if not Path(p).is_file()]
    if missing:
        raise InputNotFoundError(f"prediction TFRecord file(s) not found: {', '.join(missing)}")
    try:
        mixer = json.loads(Path(mixer_path).read_text(encoding="utf-8"))
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise CorruptFileError(f"{mixer_path} is not a readable JSON mixer ({err}); give the *mixer.json that the "
                               "Earth Engine image export wrote (download it again if it is truncated)") from None
    if not isinstance(mixer, dict) or "patchDimensions" not in mixer or "projection" not in mixer:
        raise ConfigError(f"{mixer_path} is not an Earth Engine mixer (no patchDimensions/projection)")
    asset = asset_name(cfg.asset_id, project)
    check_asset_free(asset, cfg.overwrite, get_asset)
    prefix = cfg.gcs_uri.rstrip("/")
    uris = [upload_file(p, f"{prefix}/{Path(p).name}", storage_client, overwrite=cfg.overwrite) for p in tfrecord_paths]
    uris.append(upload_file(mixer_path, f"{prefix}/{Path(mixer_path).name}", storage_client, overwrite=cfg.overwrite))
    manifest = image_manifest(asset, uris, cfg.band, cfg.nodata, cfg.pyramiding)
    return start_ingestion(manifest, ingest=ingest, allow_overwrite=cfg.overwrite)


def default_storage_client(project: str | None, secrets: Any = None) -> Any:
    """A Cloud Storage client with Earth Engine's credentials (their scopes cover storage), found as
    for Earth Engine itself (``secrets``: the dashboard's Streamlit secrets, where a key may be kept).

    Raises:
        EENotConfiguredError: no credentials; EarthEngineError: google-cloud-storage missing.
    """
    from core.ee import auth

    found = auth.find_credentials(secrets)
    try:
        from google.cloud import storage
    except ImportError:  # pragma: no cover - installed with earthengine-api
        raise EarthEngineError("google-cloud-storage is not installed; pip install google-cloud-storage") from None
    return storage.Client(project=project, credentials=found.credentials)


def prediction_file(prediction: str | os.PathLike) -> Path:
    """The probability GeoTIFF of a prediction (its folder or the file).

    Raises:
        InputNotFoundError: there is none.
    """
    path = Path(prediction)
    if path.is_dir():
        path = path / "probability.tif"
    if not path.is_file():
        raise InputNotFoundError(f"prediction not found: {path}; give the probability.tif written by `python -m core predict`")
    return path


def check_probability_file(path: Path) -> None:
    """Refuse a file that is not a crop probability GeoTIFF as ``python -m core predict`` writes it
    (one uint8 band of percent 0-100, 255 = no data, with a CRS) before any upload: a crop mask, a
    reflectance image or an image without a place would cost an upload and make a wrong asset.

    Raises:
        CorruptFileError: not a readable GeoTIFF; ConfigError: another kind of file, said which.
    """
    import rasterio

    from core.raster import band_names

    fix = "give the probability.tif that `python -m core predict` (or the Predict page) wrote"
    try:
        with rasterio.open(path) as src:
            count, dtype, crs = src.count, src.dtypes[0], src.crs
            words = " ".join([band_names(src)[0] or "", *src.tags(1).values()]).lower()
            step = max(1, max(src.width, src.height) // 512)  # a few hundred thousand pixels tell
            sample = src.read(1, out_shape=(max(1, src.height // step), max(1, src.width // step))) if count else None
    except rasterio.errors.RasterioIOError as err:
        raise CorruptFileError(f"cannot read {path} as a GeoTIFF ({err}); {fix}") from None
    if count != 1 or dtype != "uint8":
        raise ConfigError(f"{path} has {count} band(s) of {dtype}, not the one uint8 band of a crop probability "
                          f"(percent); {fix}")
    if "crop (1)" in words:
        raise ConfigError(f"{path} is a crop mask (0/1), not the crop probability; {fix}")
    if sample is not None and int(sample[sample != 255].max(initial=0)) > 100:
        raise ConfigError(f"{path} holds values above 100, so it is not a crop probability in percent; {fix}")
    if crs is None:
        raise ConfigError(f"{path} has no CRS (an image in pixel coordinates, as the sample scene), so Earth Engine "
                          "could not place it; upload the prediction of a georeferenced image")


def upload_prediction(
    prediction: str | os.PathLike,
    cfg: UploadConfig,
    storage_client: Any,
    *,
    project: str | None = None,
    ingest: Callable[..., dict] | None = None,
    get_asset: Callable[[str], Mapping[str, Any]] | None = None,
) -> tuple[str, str]:
    """Upload ``probability.tif`` (or the prediction folder holding it) and start its ingestion;
    the threshold and crop fraction of its ``summary.json`` become asset properties, its ``dates`` (the first and
    last day of the imagery, where it gives them: the dashboard's uploads of an Earth Engine composite's
    prediction; ``python -m core predict`` writes none) the asset's start and end time.

    Returns (ingestion task id, asset name).

    Raises:
        InputNotFoundError: no probability.tif there; CorruptFileError, ConfigError: not a crop
            probability GeoTIFF with a CRS (see :func:`check_probability_file`); OutputExistsError: the asset
            or the file exists (see :func:`upload_prediction_cog`); EarthEngineError subclasses.
    """
    path = prediction_file(prediction)
    check_probability_file(path)
    properties: dict[str, Any] = {"source": "crop-mapping", "file": path.name}
    dates = None
    summary = path.parent / "summary.json"
    if summary.is_file():
        try:
            s = json.loads(summary.read_text(encoding="utf-8"))
            properties.update({k: s[k] for k in ("threshold", "crop_fraction") if isinstance(s.get(k), (int, float))})
            dates = _dates(s.get("dates"))
        except (OSError, ValueError):
            pass
    asset = asset_name(cfg.asset_id, project)
    return upload_prediction_cog(path, cfg, storage_client, project=project, ingest=ingest, get_asset=get_asset,
                                 properties=properties, dates=dates), asset


def _dates(value: Any) -> tuple[str, str] | None:
    """A summary's ``dates`` ([first, last] ISO days of the imagery), or None where it has none or they are not so.

    Raises:
        ValueError: a date that is not an ISO day.
    """
    import datetime as dt

    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(d, str) for d in value)):
        return None
    first, last = (dt.date.fromisoformat(d) for d in value)
    return (first.isoformat(), last.isoformat()) if first <= last else None


def upload_prediction_bytes(
    probability_tif: bytes,
    summary: Mapping[str, Any],
    cfg: UploadConfig,
    storage_client: Any,
    work_dir: str | os.PathLike,
    *,
    project: str | None = None,
    ingest: Callable[..., dict] | None = None,
    get_asset: Callable[[str], Mapping[str, Any]] | None = None,
) -> tuple[str, str]:
    """:func:`upload_prediction` of a prediction held in memory (the dashboard's): ``probability_tif``
    (the GeoTIFF's bytes) and its ``summary`` (threshold, crop_fraction, and the imagery's ``dates``) are staged as
    ``probability.tif`` and ``summary.json`` in a folder of this upload's own under ``work_dir``
    (two uploads at once, of one prediction at two thresholds, never mix their files), removed after.

    Returns (ingestion task id, asset name).

    Raises:
        as :func:`upload_prediction`; OSError: the staging folder cannot be written.
    """
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".upload-") as tmp:
        folder = Path(tmp)
        (folder / "probability.tif").write_bytes(probability_tif)
        (folder / "summary.json").write_text(json.dumps(dict(summary)), encoding="utf-8")
        return upload_prediction(folder, cfg, storage_client, project=project, ingest=ingest, get_asset=get_asset)
