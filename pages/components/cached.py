"""Every ``st.cache_*`` wrapper of the dashboard, in one place.

Arrays, overlays, metrics: ``st.cache_data`` keyed by file path + modification time (so a changed
file is never served stale). Models: ``st.cache_resource`` keyed by path + mtime. Arguments whose
name starts with ``_`` (progress callbacks) are not part of the key. Nothing here draws on the page.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import streamlit as st

from core import downloads, overlays as ov
from core.errors import CropMapError
from core.fields import MIN_FIELD_PIXELS
from core.files import replacing
from core.labels import NODATA
from core.grid import Grid


def mtime(path: str | os.PathLike | None) -> float:
    """Modification time of ``path`` (0 when missing: the core call then raises its own error)."""
    if not path:
        return 0.0
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


# ---------------------------------------------------------------------- Earth Engine status
@st.cache_data(ttl=60, show_spinner=False)  # (a failure, e.g. credentials set up later, asked again soon)
def ee_status() -> dict:
    """{"available": bool, "ok": bool, "message": str}: whether Earth Engine can be used now.

    Never raises: a missing module or missing credentials become the message.
    """
    try:
        from core.ee import auth
    except ImportError as err:
        return {"available": False, "ok": False, "message": f"Earth Engine support is not installed ({err.name})"}
    secrets_ = secrets()
    try:
        res = auth.status(secrets=secrets_)
    except CropMapError as err:
        return {"available": True, "ok": False, "message": str(err)}
    return {"available": True, "ok": bool(res.ok), "message": res.message, "project": res.project}


# No spinner: it would sit above the map on the first run only, moving the map so that the browser
# remounts it and drops a shape drawn meanwhile.
@st.cache_data(ttl=20 * 60, max_entries=16, show_spinner=False)
def ee_map_layers(spec_json: str, region_json: str) -> list[dict]:
    """Earth Engine tile layers (composite, labels) of a source spec and region, as dicts for
    mapview.MapSpec.tile_layers; kept 20 minutes, less than the life of an Earth Engine map id.

    Raises:
        CropMapError subclasses: Earth Engine not configured, bad settings, getMapId failures.
    """
    from dataclasses import asdict

    from core.region import Region
    from pages.components.scene import source_from_spec

    source = source_from_spec(json.loads(spec_json))
    # (a preview: two tries, 1 s apart; five took 11 s of a greyed page with the quota spent)
    return [asdict(layer) for layer in source.map_layers(Region.from_geojson(json.loads(region_json)), attempts=2)]


#: How long the Region page goes without its Earth Engine preview layers after they failed, in seconds
EE_LAYERS_RETRY_S = 60.0


@st.cache_resource(show_spinner=False)
def _ee_layer_failures() -> dict:
    """The server's failed Earth Engine layers: {"lock": a lock, "by_key": {key: (monotonic time until which it
    is not tried again, the error's text)}}; preview layers keyed by the source spec (a failure that may
    pass: quota, a server, the network) or by the spec and the region (the others), assets by their id."""
    import threading

    return {"lock": threading.Lock(), "by_key": {}}


def ee_preview_layers(spec_json: str, region_json: str, now: Callable[[], float] | None = None) -> tuple[list[dict], str]:
    """:func:`ee_map_layers`, or none and why ("" when they came): a failure is remembered for
    :data:`EE_LAYERS_RETRY_S`, in which the page goes on without them (it waited for them again on
    every rerun: each drawing, setting or click on the page); quota spent or no network, for every
    region of the source."""
    layers, why = _remembered(
        _ee_layer_failures(), (spec_json, (spec_json, region_json)),
        lambda err: spec_json if getattr(err, "retryable", False) else (spec_json, region_json),
        lambda: ee_map_layers(spec_json, region_json), EE_LAYERS_RETRY_S, now)
    return layers or [], why


def _remembered(failures: dict, keys: tuple, key_of: Callable[[CropMapError], Any], fn: Callable[[], Any],
                seconds: float, now: Callable[[], float] | None = None) -> tuple[Any, str]:
    """(``fn()``, "") or (None, why): a failure of ``fn`` is kept in ``failures`` (:func:`_ee_layer_failures`)
    under ``key_of(error)`` for ``seconds``, in which a call whose ``keys`` hold it returns it without
    calling ``fn``."""
    import time

    t = (now or time.monotonic)()
    with failures["lock"]:
        for key in keys:
            until, why = failures["by_key"].get(key, (0.0, ""))
            if until > t:
                return None, why
    try:
        return fn(), ""
    except CropMapError as err:
        with failures["lock"]:
            kept = failures["by_key"]
            for old in [k for k, (u, _) in kept.items() if u <= t]:
                del kept[old]
            kept[key_of(err)] = (t + seconds, str(err))
        return None, str(err)


@st.cache_data(ttl=30, max_entries=4, show_spinner="Listing Earth Engine tasks...")
def ee_tasks() -> list[dict]:
    """Rows of the account's batch tasks (core.ee.tasks.task_rows), newest first, kept 30 s (Refresh clears).

    Raises:
        EarthEngineError subclasses: when the listing fails (after retries).
    """
    from core.ee.tasks import list_tasks, task_rows

    return task_rows(list_tasks())


@st.cache_data(ttl=30, max_entries=8, show_spinner=False)
def ee_task(task_id: str) -> dict:
    """The row (core.ee.tasks.task_rows) of one task, asked by its id, kept 30 s (Refresh clears): an
    ingestion is followed however many tasks were started after it.

    Raises:
        EarthEngineError subclasses: unknown task, or Earth Engine failures after retries.
    """
    from core.ee.tasks import get_task, task_rows

    return task_rows([get_task(task_id)])[0]


@st.cache_data(ttl=20 * 60, max_entries=8, show_spinner="Asking Earth Engine for the asset's map tiles...")
def ee_asset_layer(asset_id: str, version: str = "") -> dict:
    """A tile layer of an image asset (an uploaded prediction), for mapview.MapSpec.tile_layers, with
    its legend and the box of its footprint (``bounds``: west, south, east, north), where the map opens;
    ``version`` (the ingestion task that made it) tells an asset replaced under the same id apart.

    Raises:
        EarthEngineError subclasses: unknown asset, no access, getMapId failures; ConfigError: not an image.
    """
    from dataclasses import asdict

    from core.ee.assets import image_asset
    from core.ee.tiles import asset_layer

    info = image_asset(asset_id)
    # its colours' legend (a layer of colours without one said nothing of them): the Predict page's
    legend = asdict(ov.gradient_legend("Crop probability (asset)", "probability", "0%", "100%"))
    # ttl=0: this cache, keyed by the version, is the only one (tile_url's own, by the id, gave a replaced
    # asset its old map id)
    layer = asset_layer(asset_id, name=f"{asset_id} (crop probability %)", ttl=0)
    return {**asdict(layer), "legend": legend, "bounds": info.bounds}


def ee_task_view(task_id: str, now: Callable[[], float] | None = None) -> tuple[dict | None, str]:
    """:func:`ee_task`, or None and why: a failure is remembered as an asset's is (:data:`EE_ASSET_RETRY_S`)."""
    return _remembered_for(("task", task_id), lambda: ee_task(task_id), now)


#: How long the Earth Engine page goes without asking again for an asset that could not be shown, in seconds
#: (an asset being ingested is there a few minutes later)
EE_ASSET_RETRY_S = 30.0


def ee_asset_view(asset_id: str, version: str = "", now: Callable[[], float] | None = None) -> tuple[dict | None, str]:
    """:func:`ee_asset_layer`, or None and why: a failure is remembered for :data:`EE_ASSET_RETRY_S`
    (it was asked of Earth Engine again on every rerun of the page)."""
    return _remembered_for(("asset", asset_id, version), lambda: ee_asset_layer(asset_id, version), now)


def _remembered_for(key: tuple, fn: Callable[[], Any], now: Callable[[], float] | None = None) -> tuple[Any, str]:
    """:func:`_remembered` of ``fn`` under one ``key``, for :data:`EE_ASSET_RETRY_S`."""
    return _remembered(_ee_layer_failures(), (key,), lambda err: key, fn, EE_ASSET_RETRY_S, now)


def secrets() -> dict | None:
    """The app's secrets as a dict (Earth Engine credentials may live there), or None."""
    from streamlit.errors import StreamlitSecretNotFoundError

    try:
        return dict(st.secrets) if len(st.secrets) else None
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return None


# ---------------------------------------------------------------------- images and labels
def _read_only(*arrays: np.ndarray) -> None:
    """Mark arrays kept once for every caller (st.cache_resource) read-only: a page that changed one in
    place would change it for every later run and session, so it gets an error instead."""
    for a in arrays:
        a.setflags(write=False)


# Arrays are kept with st.cache_resource, handed out as they are: st.cache_data gave each call a copy
# (a 4096 x 4096 region's features: 350 MB and 0.18 s a call, several calls a rerun, a threshold's move).
@st.cache_resource(max_entries=4, show_spinner="Reading the image...")
def image_arrays(path: str, path_mtime: float) -> tuple[np.ndarray, np.ndarray, Grid]:
    """(features, valid, grid) of a (scene) image, read-only. Raises CropMapError subclasses."""
    from core.raster import read_image

    feats, valid, grid = read_image(path)
    _read_only(feats, valid)
    return feats, valid, grid


@st.cache_data(max_entries=8, show_spinner=False)
def image_warnings(path: str, path_mtime: float, band_map: dict[str, int] | None = None) -> tuple[str, ...]:
    """The reader's warnings about an image's values (:func:`core.reflectance.reflectance_warnings`),
    from a sample it reads on opening, and its band numbers. Raises CropMapError subclasses."""
    from core.raster import ImageReader

    with ImageReader(path, band_map) as reader:
        return reader.warnings


@st.cache_resource(max_entries=4, show_spinner=False)
def label_mask(path: str, path_mtime: float, label_map: str) -> np.ndarray:
    """uint8 crop mask (1/0/255) of a label raster, read-only. Raises CropMapError subclasses."""
    from core.labels import get_class_map
    from core.raster import read_labels

    mask = read_labels(path, get_class_map(label_map))
    _read_only(mask)
    return mask


@st.cache_data(max_entries=24, show_spinner=False)
def image_overlay(path: str, path_mtime: float, layer: str, offset: tuple[int, int] = (0, 0),
                  limits: ov.Limits | None = None) -> ov.Overlay:
    """A composite layer of an image: ``layer`` in {"true", "grey", "false", "ndvi"}; the colours
    stretched to ``limits`` (the whole source image's, :func:`source_preview`) or the image's own."""
    feats, valid, grid = image_arrays(path, path_mtime)
    legend = ov.gradient_legend("NDVI", "ndvi", "-1", "1") if layer == "ndvi" else None
    names = {"true": "True colour (R,G,B)", "grey": "True colour in grey", "false": "False colour (NIR,R,G)",
             "ndvi": "NDVI"}
    # only the pixels the overlay keeps are coloured (each layer coloured all 15 Mpx of a large region), with
    # the stretch of all of them where none is given
    if layer == "ndvi":
        colour = ov.ndvi_colour
    else:
        stretch = {"true": ov.true_colour, "grey": ov.grey_colour, "false": ov.false_colour}[layer]
        lim = limits if limits is not None else ov.band_limits(feats, valid)

        def colour(f: np.ndarray, v: np.ndarray) -> np.ndarray:
            return stretch(f, v, lim)
    return ov.pixelwise_overlay(names[layer], colour, [feats, valid], grid, offset, legend)


@st.cache_data(max_entries=8, show_spinner=False)
def labels_overlay(path: str, path_mtime: float, label_map: str, offset: tuple[int, int] = (0, 0),
                   image_path: str | None = None, image_mtime: float = 0.0) -> ov.Overlay:
    """The label layer (:func:`core.overlays.labels_legend`, :func:`core.overlays.labels_colour`) over
    the pixels where the image on the same grid, ``image_path``, has data: not over the rest of the
    region's bounding box. Only the pixels the overlay keeps are coloured; its legend is of them all."""
    mask = label_mask(path, path_mtime, label_map)
    grid = image_grid_of_labels(path, path_mtime)
    imaged = image_arrays(image_path, image_mtime)[1] if image_path is not None else None
    legend, show_nodata = ov.labels_legend(mask, imaged)
    arrays = [mask] if imaged is None else [mask, imaged]
    return ov.pixelwise_overlay("Labels", lambda m, i=None: ov.labels_colour(m, show_nodata, i), arrays, grid, offset, legend)


@st.cache_data(max_entries=8, show_spinner=False)
def image_grid_of_labels(path: str, path_mtime: float) -> Grid:
    """Grid of a label raster (any band layout). Raises InputNotFoundError, CorruptFileError."""
    from core.raster import grid_of_file

    return grid_of_file(path)


@st.cache_data(max_entries=16, show_spinner=False)
def region_check(spec_json: str, region_json: str, image_mtime: float | None):
    """The source's :meth:`check_region` of a region (a RegionCheck; it rasterises the region, so
    not on every rerun). ``image_mtime`` renews it when a local image changes."""
    from core.region import Region
    from pages.components.scene import source_from_spec

    return source_from_spec(json.loads(spec_json)).check_region(Region.from_geojson(region_json))


@st.cache_data(max_entries=8, show_spinner=False)
def upload_label_map(file_id: str, name: str, _data: bytes) -> str | None:
    """The label map an uploaded labels file names by its band (core.sources.local.label_map_of_upload,
    read in memory: stored only when used): once per upload (``file_id``), not on every rerun of the page.

    Raises:
        InvalidDataError: the upload is empty, too large or not a TIFF file.
    """
    from core.sources.local import label_map_of_upload

    return label_map_of_upload(_data, name)


@st.cache_data(max_entries=8, show_spinner=False)
def upload_field_classes(file_id: str, name: str, _data: bytes) -> dict[str, str | None]:
    """The properties of an uploaded GeoJSON of surveyed fields that can be their class, each with the
    label map it suggests (core.field_labels), the one to use without being told first: once per upload.

    Raises:
        RegionError: the upload is too large or not GeoJSON text; ConfigError: no property holds class codes.
    """
    from core.field_labels import class_choices, load_fields
    from core.sources.local import MAX_FIELDS_UPLOAD_BYTES

    return class_choices(load_fields(_data, name, MAX_FIELDS_UPLOAD_BYTES), name)


@st.cache_data(max_entries=4, show_spinner="Rendering the image preview...")
def source_preview(path: str, path_mtime: float, band_map: dict[str, int] | None = None,
                   max_side: int = 1024) -> tuple[ov.Overlay, Grid, tuple[str, ...], ov.Limits | None, int]:
    """:func:`core.overlays.image_preview` of a whole source image (the Region page's backdrop), cached by
    its path and version."""
    return ov.image_preview(path, band_map, max_side)


@st.cache_data(max_entries=8, show_spinner=False)
def colour_limits(path: str, path_mtime: float, band_map: dict[str, int] | None = None) -> ov.Limits | None:
    """The colour stretch of a whole source image (:func:`source_preview`'s): kept on its own, as
    every rerun of a region's page asks for it, and the preview's PNG is large to copy out of the cache."""
    return source_preview(path, path_mtime, band_map)[3]


# ---------------------------------------------------------------------- models and predictions
@st.cache_resource(max_entries=3, show_spinner="Loading the model...")
def model(path: str, path_mtime: float):
    """A :class:`core.model.LoadedModel` (loaded once per path + mtime). Raises CropMapError."""
    from core.model import load_model

    return load_model(path)


def prediction_file(key: tuple) -> Path:
    """Where the probability of a prediction key is kept on disk (float32 .npy, NaN = no data)."""
    from pages.components import state

    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:20]
    return state.work().predictions / f"{digest}.npy"


def used(path: Path) -> None:
    """Mark a kept prediction or scene folder as used now: what has not been used for 30 days is removed
    when a session starts (:func:`pages.components.state._prune`, :func:`core.workdir.prune_scenes`)."""
    try:
        os.utime(path)
    except OSError:  # removed meanwhile, or a read-only work folder: nothing to keep
        pass


def prediction_work(key: tuple) -> Callable[[Callable[[int, int], None] | None], Path]:
    """What predicting ``key`` takes, as a function of a progress callback that runs the model over
    the key's scene (unless already done) and stores the probability; the image and the model are
    fetched here, through the caches, so that the function can run in another thread
    (:mod:`pages.components.predictions`). The array is then served by :func:`probability`.

    Raises (here or when called):
        CropMapError subclasses (ModelMismatchError, NoDataError, ...).
    """
    from core.config import PredictConfig
    from core.predict import predict_in_context
    from core.sources.base import scene_context

    out = prediction_file(key)
    image_path, image_mtime, _region, model_path, model_mtime, views = key
    if stored_whole(out):
        used(out)
        return lambda progress=None: out
    feats, valid, grid = image_arrays(image_path, image_mtime)
    loaded = model(model_path, model_mtime)

    def work(progress: Callable[[int, int], None] | None = None) -> Path:
        if out.exists():  # made meanwhile (another session's run of the same key)
            return out
        # over the region's surroundings where the scene has them: the model sees what it would in the whole image
        prob = predict_in_context(loaded, feats, valid, scene_context(image_path), PredictConfig(views=views), progress,
                                  grid)
        # a temporary name of its own: two sessions predicting the same key never share a half-written file
        with replacing(out) as tmp, open(tmp, "wb") as f:
            np.save(f, prob.astype(np.float32, copy=False))  # (float32 already: no 67 MB copy of a 16.8 Mpx region)
        return out

    return work


def stored_whole(path: Path) -> bool:
    """Whether a stored prediction at ``path`` can be read whole; one that cannot (cut short or emptied by
    a crash of the machine, which a file renamed into place does not survive) is removed, so that it is
    predicted again (it failed every page of its region and model, in every session, until deleted by hand)."""
    if not path.exists():
        return False
    try:
        np.load(path, mmap_mode="r")  # its header, and its length against the array the header describes
    except (ValueError, EOFError):  # (not an OSError: a file that could not be opened now is not damaged)
        try:
            path.unlink(missing_ok=True)
        except OSError:  # (a read-only work folder: it is predicted again without being stored)
            pass
        return False
    return True


@st.cache_resource(max_entries=4, show_spinner=False)
def probability(key: tuple) -> np.ndarray:
    """Crop probability (h, w) float32, NaN = no data, read-only, for a prediction key
    (image path, mtime, region key, model path, mtime, views); predicted now if never done.

    Raises:
        CropMapError subclasses.
    """
    prob = np.load(prediction_work(key)())
    _read_only(prob)
    return prob


def prediction_key(image_path: str, region_key: str, model_path: str, views: int = 1) -> tuple:
    """The cache key of a prediction: what :func:`probability` is called with (minus progress)."""
    return (image_path, mtime(image_path), region_key, model_path, mtime(model_path), int(views))


def prediction_change(made: tuple, wanted: tuple) -> str:
    """What differs between the prediction ``made`` and the one the pages now ask for (two
    :func:`prediction_key` tuples), in words: "the region", "the model", "the views of each tile"..."""
    names = ("the image", "the image", "the region", "the model", "the model", None)
    what = [n for n, a, b in zip(names, made, wanted) if n and a != b]
    if "the region" in what:  # the image predicted is the region's scene, cut anew for every region
        what = [n for n in what if n != "the image"]
    if made[-1] != wanted[-1]:
        what.append(f"the views of each tile (predicted with {made[-1]}, now set to {wanted[-1]})")
    return ", ".join(dict.fromkeys(what)) or "the settings"


def cached_probability(key: tuple) -> np.ndarray:
    """The probability for ``key`` (from the cache unless evicted)."""
    return probability(key)


@st.cache_data(max_entries=8, show_spinner=False)
def probability_overlay(key: tuple, offset: tuple[int, int]) -> ov.Overlay:
    prob = cached_probability(key)
    grid = image_arrays(key[0], key[1])[2]
    legend = ov.gradient_legend("Crop probability", "probability", "0", "1")
    return ov.pixelwise_overlay("Crop probability", ov.probability_colour, [prob], grid, offset, legend)


@st.cache_data(max_entries=16, show_spinner=False)
def crop_overlay(key: tuple, offset: tuple[int, int], threshold: float, unit: str = "hectares") -> ov.Overlay:
    prob = cached_probability(key)
    grid = image_arrays(key[0], key[1])[2]
    # the figures in the legend's title, in view in full screen, where the page's figures are not
    from core.metrics import crop_area_text, crop_rule

    stats = crop_stats(key, threshold)
    share = f", {stats['crop_fraction']:.0%}" if stats["crop_fraction"] is not None else ""
    legend = ov.class_legend(f"Crop ({crop_rule(threshold)}): {crop_area_text(stats, unit)}{share}", ["predicted crop"])
    return ov.pixelwise_overlay("Crop", partial(ov.crop_colour, threshold=threshold), [prob], grid, offset, legend)


@st.cache_data(max_entries=32, show_spinner=False)
def crop_stats(key: tuple, threshold: float) -> dict:
    """core.metrics.crop_area of the thresholded mask (hectares only where the image has a CRS)."""
    from core.metrics import crop_area
    from core.predict import threshold_mask

    grid = image_arrays(key[0], key[1])[2]
    return crop_area(threshold_mask(cached_probability(key), threshold), grid.pixel_area_ha())


@st.cache_data(max_entries=8, show_spinner=False)
def zone_areas(key: tuple, threshold: float, region_json: str, offset: tuple[int, int],
               labels: tuple[str, float, str] | None = None) -> list[dict]:
    """core.zones.crop_by_zone of the thresholded mask in each part of the region (its GeoJSON, as
    Region.to_geojson writes it; ``offset``: the scene's (row, col) in its image), and with ``labels``
    (the scene's labels: path, mtime, label map) each part's IoU and F1. Raises CropMapError subclasses."""
    from core.predict import threshold_mask
    from core.region import Region
    from core.zones import crop_by_zone

    grid = image_arrays(key[0], key[1])[2]
    zones = Region.from_geojson(region_json).part_regions()
    truth = label_mask(*labels) if labels is not None else None
    return [z.to_dict() for z in crop_by_zone(threshold_mask(cached_probability(key), threshold), grid, zones, offset,
                                              labels=truth, called="part")]


@st.cache_data(max_entries=8, show_spinner=False)
def zone_label_areas(labels: tuple[str, float, str], image: tuple[str, float], region_json: str,
                     offset: tuple[int, int]) -> list[dict]:
    """core.zones.crop_by_zone of the labels' crop mask (over the image's pixels with data) in each part of
    the region: the labels' crop of each part, before any prediction. Raises CropMapError subclasses."""
    from core.region import Region
    from core.zones import crop_by_zone

    _, valid, grid = image_arrays(*image)
    mask = np.where(valid, label_mask(*labels), NODATA).astype(np.uint8)
    return [z.to_dict() for z in crop_by_zone(mask, grid, Region.from_geojson(region_json).part_regions(), offset,
                                              covering="the image", called="part")]


@st.cache_data(max_entries=4, show_spinner=False)
def probability_tif(key: tuple) -> bytes:
    """The probability GeoTIFF download: once per prediction (it does not depend on the threshold)."""
    return downloads.probability_download(cached_probability(key), image_arrays(key[0], key[1])[2], download_tags(key))


def download_tags(key: tuple) -> dict[str, str]:
    """The dataset tags of a prediction's GeoTIFF downloads (core.predict.provenance_tags): its scene's
    image, its model and views, as the CLI's outputs carry them."""
    from core.card import load_card
    from core.predict import provenance_tags
    from core.sources.base import scene_origin

    return provenance_tags(key[0], key[3], load_card(key[3]), key[5], made_by="the dashboard's Predict page",
                           source_text=scene_origin(key[0]))


@st.cache_data(max_entries=8, show_spinner=False)
def exports(key: tuple, threshold: float, title: str, credit: str = "", probability_opacity: float | None = None,
            crop_opacity: float | None = 0.6, caveat: str = "", unit: str = "hectares", parts_json: str = "",
            offset: tuple[int, int] = (0, 0), pixel_size_m: float | None = None) -> dict[str, bytes]:
    """The downloads that depend on the threshold (core.downloads.threshold_downloads), the map view
    PNG with the page's layers at their opacities (None: a layer not shown), the page's ``caveat`` and its crop area in ``unit``,
    over the image around the region's outline (faded); with ``parts_json`` (a region of several parts, as
    Region.to_geojson writes it; ``offset``: the scene's (row, col) in its image) each part outlined and named;
    ``pixel_size_m``: an image without a CRS's stated pixel size (the PNG gives its crop area at it too)."""
    from core.sources.base import scene_surroundings

    feats, valid, grid = image_arrays(key[0], key[1])
    inside = []
    if parts_json:
        from core.region import Region
        from core.zones import zone_pixels

        inside = [(name, (window.row_off, window.col_off), pixels) for name, window, pixels
                  in zone_pixels(grid, Region.from_geojson(parts_json).part_regions(), offset) if window is not None]
    return downloads.threshold_downloads(feats, valid, cached_probability(key), grid, threshold, title, credit,
                                  probability_opacity, crop_opacity, caveat,
                                  scene_surroundings(key[0], ov.downsample_step(valid.shape)), unit, inside,
                                  download_tags(key), pixel_size_m)


def export_file(name: str, *args) -> bytes:
    """One of :func:`exports`'s files (``args`` as for it): what a deferred download button calls."""
    return exports(*args)[name]


@st.cache_data(max_entries=4, show_spinner="Tracing the crop areas...")
def crop_fields(key: tuple, threshold: float, min_pixels: int = MIN_FIELD_PIXELS) -> tuple[bytes, int, float]:
    """(GeoJSON bytes, number of fields, their area in hectares) of the crop layer at ``threshold``
    (core.fields). Raises CropMapError subclasses (e.g. no CRS, no field)."""
    from core.fields import crop_fields as trace
    from core.fields import fields_area_ha, fields_bytes
    from core.predict import threshold_mask

    grid = image_arrays(key[0], key[1])[2]
    fc = trace(threshold_mask(cached_probability(key), threshold), grid, min_pixels)
    return fields_bytes(fc, threshold=threshold, min_pixels=min_pixels), len(fc["features"]), fields_area_ha(fc)


# ---------------------------------------------------------------------- quality
@st.cache_data(max_entries=16, show_spinner=False)
def confusion(key: tuple, labels_path: str, labels_mtime: float, label_map: str, threshold: float) -> dict:
    """core.metrics.confusion at ``threshold`` as a dict with precision, recall, f1, iou, and
    ``crop_area``: core.metrics.crop_area_agreement of the same masks (hectares only where the
    image has a CRS), as ``python -m core evaluate`` writes them."""
    from core.metrics import confusion as conf, crop_area_agreement
    from core.predict import threshold_mask

    pred, labels = threshold_mask(cached_probability(key), threshold), label_mask(labels_path, labels_mtime, label_map)
    grid = image_arrays(key[0], key[1])[2]
    return {**conf(pred, labels).to_dict(), "crop_area": crop_area_agreement(pred, labels, grid.pixel_area_ha())}


@st.cache_data(max_entries=8, show_spinner=False)
def labelled_pixels(path: str, path_mtime: float, label_map: str, image_path: str, image_mtime: float) -> int:
    """How many pixels of a label raster hold a class (crop or not) where the image on its grid has data
    (:func:`core.labels.label_counts`). Raises CropMapError subclasses."""
    from core.labels import label_counts

    return label_counts(label_mask(path, path_mtime, label_map), image_arrays(image_path, image_mtime)[1]).labelled


@st.cache_resource(max_entries=4, show_spinner=False)
def label_classes(path: str, path_mtime: float, label_map: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 crop mask as :func:`label_mask`, int16 class codes, -1 = no data) of a label raster, from one
    read, read-only (the Quality page read the codes' raster twice, once for each). Raises CropMapError subclasses."""
    from core.labels import get_class_map
    from core.raster import read_label_classes

    mask, codes = read_label_classes(path, get_class_map(label_map))
    _read_only(mask, codes)
    return mask, codes


def label_codes(path: str, path_mtime: float, label_map: str) -> np.ndarray:
    """int16 class codes (-1 = no data) of a label raster, read-only. Raises CropMapError subclasses."""
    return label_classes(path, path_mtime, label_map)[1]


@st.cache_data(max_entries=4, show_spinner=False)
def class_areas(path: str, path_mtime: float, label_map: str, image_path: str, image_mtime: float) -> list[dict]:
    """core.metrics.class_areas of a class-code raster (its own pixel areas) over the valid pixels of the
    image on its grid (the scene's), each row with the class's ``name``."""
    from core.labels import get_class_map, with_class_names
    from core.metrics import class_areas as areas

    grid = image_grid_of_labels(path, path_mtime)
    codes = np.where(image_arrays(image_path, image_mtime)[1], label_codes(path, path_mtime, label_map), -1)
    rows = areas(codes, get_class_map(label_map).crop_codes, grid.pixel_area_ha())
    return with_class_names(rows, label_map)


@st.cache_data(max_entries=16, show_spinner=False)
def class_errors(key: tuple, labels_path: str, labels_mtime: float, label_map: str, threshold: float) -> list[dict]:
    """core.metrics.class_errors at ``threshold`` (with areas where the image has a CRS), each row with the class's ``name``."""
    from core.labels import with_class_names
    from core.metrics import class_errors as by_class
    from core.predict import threshold_mask

    mask, codes = label_classes(labels_path, labels_mtime, label_map)
    rows = by_class(codes, mask, threshold_mask(cached_probability(key), threshold), image_arrays(key[0], key[1])[2].pixel_area_ha())
    return with_class_names(rows, label_map)


@st.cache_data(max_entries=8, show_spinner=False)
def threshold_curve(key: tuple, labels_path: str, labels_mtime: float, label_map: str) -> list[dict]:
    """The scores at every value of the threshold slider (so that the best one is a value it can take)."""
    from core.metrics import threshold_curve as curve
    from pages.components import state

    low, high, step = (state.THRESHOLD_SLIDER[k] for k in ("min_value", "max_value", "step"))
    thresholds = np.round(np.arange(low, high + step / 2, step), 2)
    return curve(cached_probability(key), label_mask(labels_path, labels_mtime, label_map), thresholds)


@st.cache_data(max_entries=16, show_spinner=False)
def disagreement_overlay(key: tuple, offset: tuple[int, int], labels_path: str, labels_mtime: float,
                         label_map: str, threshold: float, only: tuple[str, float, str, int, str] | None = None) -> ov.Overlay:
    """False and missed crop at ``threshold``; ``only`` = (codes path, its mtime, label map, class code,
    class title) keeps the errors on that class of the label product alone."""
    from core.predict import threshold_mask

    grid = image_arrays(key[0], key[1])[2]
    # (coloured from the pixels the layer keeps: each is coloured by itself)
    arrays = [cached_probability(key), label_mask(labels_path, labels_mtime, label_map)]
    if only is not None:
        arrays.append(label_codes(*only[:3]))

    def colour(prob, labels, codes=None):
        return ov.disagreement_colour(threshold_mask(prob, threshold), labels, None if codes is None else codes == only[3])

    title = "Disagreement" if only is None else f"Disagreement on {only[4]}"
    names = ["false crop", "missed crop"]
    if only is not None:  # on one class, one kind of error only: a crop class is missed, another taken for crop
        from core.labels import get_class_map

        names = ["missed crop"] if only[3] in get_class_map(only[2]).crop_codes else ["false crop"]
    # the legend names the threshold, as the crop layer's does (the layer's name stays: opacities are kept by it)
    return ov.pixelwise_overlay(title, colour, arrays, grid, offset,
                                ov.class_legend(f"{title} (threshold {threshold:.2f})", names))


# ---------------------------------------------------------------------- sessions
@st.cache_resource(show_spinner=False)
def session_claims() -> dict:
    """Which browser session holds each kept session of this server (see ``state.claim``):
    {"lock": a lock, "by_id": {kept session id: Streamlit's session id}}."""
    import threading

    return {"lock": threading.Lock(), "by_id": {}}


# ---------------------------------------------------------------------- memory
@st.cache_resource(show_spinner=False)
def _frozen() -> dict:
    """Whether the long-lived objects were frozen in this server process (see :func:`freeze_long_lived`)."""
    return {"done": False}


def freeze_long_lived() -> None:
    """Once TensorFlow is loaded in the server, move the objects alive now (TensorFlow's and Keras's
    modules, most of them) to the garbage collector's permanent generation (``gc.freeze``). Streamlit
    clears Keras's session after every run, which runs a full collection: over those 400,000 objects
    it took 0.2 s of every rerun (a threshold change, an opacity slider), frozen they are skipped.
    Objects made later are collected as before; memory is freed by reference counts as always."""
    import gc
    import sys

    flag = _frozen()
    if flag["done"] or "tensorflow" not in sys.modules:
        return
    flag["done"] = True
    gc.collect()
    gc.freeze()
