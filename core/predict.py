"""Seamless tiled prediction over images of any size, streamed strip by strip.

Tiles of ``tile`` pixels are laid every ``tile - overlap`` pixels, starting before the image edge,
and each tile's probabilities are blended into the result with a weight that falls off towards the
tile's edges (a trapezoid in each direction), so the result barely depends on where the tile grid
falls: no seams. Only one strip of ``tile`` rows is held at a time, so memory does not grow with
the image. Outputs are written to temporary names, converted to Cloud Optimized GeoTIFFs, and
renamed; an existing output is never replaced unless ``overwrite`` is set.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from core.config import MIN_REGION_SIDE, PredictConfig
from core.errors import ConfigError, InputNotFoundError, InvalidDataError, NoDataError, OutputExistsError, RegionError
from core.files import check_free_space, check_output_dir, move_into_place, staging_dir
from core.labels import NODATA
from core.bands import FEATURE_BANDS
from core.grid import Grid, window_grid
from core.raster import GDAL_CACHE_BYTES, ImageReader, check_written
from core.sources.base import SceneContext
from core.threads import background_priority

#: progress(done, total)
ProgressFn = Callable[[int, int], None]
#: read(row, col, height, width) -> (features (h, w, 5), valid (h, w)); windows may extend past the edges
ReadFn = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]

NOT_GEOREFERENCED_NOTE = "not georeferenced: image coordinates only, no location; areas are given in pixels"


def blend_weights(tile: int, overlap: int) -> np.ndarray:
    """1-D weights of a tile: 1 in the middle, falling linearly to ~0 over ``overlap`` pixels at each end."""
    x = np.arange(tile, dtype=np.float32) + 0.5
    if overlap == 0:
        return np.ones(tile, np.float32)
    w = np.minimum(1.0, np.minimum(x, tile - x) / overlap)
    return np.maximum(w, 1e-3).astype(np.float32)


def tile_origins(length: int, tile: int, step: int, offset: int = 0, lattice: int = 1) -> list[int]:
    """Tile starts covering [0, length): the first at or before 0, shifted by ``offset`` (mod step).

    Starts are snapped to multiples of ``lattice``: a U-Net with n poolings computes a pixel
    differently depending on its position modulo 2**n in the tile, so keeping every tile on the same
    lattice makes a pixel's probability independent of where the grid falls (only the blending of
    tile edges remains, and that is smooth).
    """
    start = ((offset % step) // lattice) * lattice - step
    while start + tile <= 0:
        start += step
    out = []
    p = start
    while p < length:
        out.append(p)
        p += step
    return out


_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _compiled(model):
    """One traced inference function per model, reused by every prediction (tracing takes seconds)."""
    fn = _COMPILED.get(model)
    if fn is None:
        import tensorflow as tf

        # The function holds the model weakly: a strong reference from the cache's value would keep
        # its key (the model) and the traced graph alive for as long as the process runs.
        ref = weakref.ref(model)
        fn = tf.function(lambda x: ref()(x, training=False), reduce_retracing=True)
        _COMPILED[model] = fn
    return fn


def tile_view(k: int, x: np.ndarray) -> np.ndarray:
    """View ``k`` (0-7) of a batch of tiles (n, H, W, ...): bit 0 mirrors left-right, bit 1 up-down,
    bit 2 transposes (square tiles only). View 0 is the batch itself."""
    if k & 1:
        x = x[:, :, ::-1]
    if k & 2:
        x = x[:, ::-1]
    if k & 4:
        x = x.swapaxes(1, 2)
    return x


def tile_unview(k: int, y: np.ndarray) -> np.ndarray:
    """Undo :func:`tile_view` ``k`` on the model's output (n, H, W)."""
    if k & 4:
        y = y.swapaxes(1, 2)
    if k & 2:
        y = y[:, ::-1]
    if k & 1:
        y = y[:, :, ::-1]
    return y


def north_up_view(grid: Grid | None) -> int:
    """The :func:`tile_view` that turns tiles of ``grid`` north-up and east-right, as the model
    learned fields (Landsat and Sentinel-2 scenes are stored so): mirrored up-down for a grid whose
    rows run north (a "south-up" GeoTIFF, as written from data with rising latitudes), left-right for
    one whose columns run west; 0 for a north-up, a rotated or a non-georeferenced grid (image
    coordinates: row 0 at the top)."""
    if grid is None or not grid.georeferenced:
        return 0
    a, b, _, d, e, _ = grid.transform
    if b or d:
        return 0
    return (1 if a < 0 else 0) | (2 if e > 0 else 0)


class ModelRunner:
    """Applies a Keras model to batches of normalized tiles with one compiled function, averaging
    its output over ``views`` mirrored/transposed views of each tile (see PredictConfig.views);
    each tile is first turned by the view ``orient`` (:func:`north_up_view`), and its output back."""

    def __init__(self, model, batch_size: int = 8, views: int = 1, orient: int = 0):
        self.model = model
        self.batch_size = batch_size
        self.views = views
        self.orient = orient
        self._fn = _compiled(model)

    @property
    def fixed_size(self) -> int | None:
        shape = self.model.input_shape
        return shape[1] if shape[1] is not None else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, T, T, b) -> (n, T, T) probabilities, averaged over the views.

        Raises:
            ConfigError: 8 views (transposes) of tiles that are not square.
        """
        if self.views > 4 and x.shape[1] != x.shape[2]:
            raise ConfigError(f"8 views need square tiles, these are {x.shape[1]} x {x.shape[2]} px; use 4 views")
        x = tile_view(self.orient, x)
        if self.views == 1:
            return tile_unview(self.orient, self._run(np.ascontiguousarray(x)))
        out = np.zeros(x.shape[:3], np.float32)
        for k in range(self.views):
            out += tile_unview(k, self._run(np.ascontiguousarray(tile_view(k, x))))
        return tile_unview(self.orient, out / np.float32(self.views))

    def _run(self, x: np.ndarray) -> np.ndarray:
        """One model pass; pads the last batch so that nothing retraces."""
        out = np.empty(x.shape[:3], np.float32)
        b = self.batch_size
        for i in range(0, len(x), b):
            chunk = x[i : i + b]
            n = len(chunk)
            if n < b:
                chunk = np.concatenate([chunk, np.zeros((b - n,) + chunk.shape[1:], chunk.dtype)])
            out[i : i + n] = np.asarray(self._fn(chunk))[:n, ..., 0]
        return out


@dataclass
class TiledPredictor:
    """Blends tile predictions into strips of rows; see the module docstring."""

    runner: Callable[[np.ndarray], np.ndarray]
    normalize: Callable[[np.ndarray, np.ndarray], np.ndarray]
    config: PredictConfig  # resolved: no None
    offset: tuple[int, int] = (0, 0)
    lattice: int = 16

    frame: tuple[int, int] = (0, 0)  # where (row, col) 0 of what is predicted lies in the image

    def origins(self, length: int, axis: int) -> list[int]:
        """Tile starts along ``axis`` (0 rows, 1 columns) in the predicted frame: the image's own tile
        grid, so that a window of an image is predicted exactly as that part of the whole image."""
        f = self.frame[axis]
        starts = tile_origins(f + length, self.config.tile, self.config.step, self.offset[axis], self.lattice)
        return [p - f for p in starts if p + self.config.tile > f]

    def strips(self, read: ReadFn, height: int, width: int, progress: ProgressFn | None = None
               ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first row, probabilities (rows, width) float32, NaN where invalid) top to bottom.

        Tiles are read one by one (a batch ahead, in a thread, while the model works), so only
        the accumulators of one strip of ``tile`` rows are as wide as the image.
        """
        t, ov = self.config.tile, self.config.overlap
        rows, cols = self.origins(height, 0), self.origins(width, 1)
        c0, span = cols[0], cols[-1] + t - cols[0]
        w1 = blend_weights(t, ov)
        w2 = w1[:, None] * w1[None, :]
        acc = np.zeros((t, span), np.float32)
        wsum = np.zeros((t, span), np.float32)
        valid = np.zeros((t, span), bool)
        b = self.runner.batch_size if isinstance(self.runner, ModelRunner) else len(cols)
        batches = [(p, cols[i : i + b]) for p in rows for i in range(0, len(cols), b)]
        total, done = len(rows) * len(cols), 0
        if progress:  # the total from the start (a bar shows it before the first batch is done)
            progress(0, total)

        def load(batch):
            """Read and normalize a batch of tiles, stacked for the model (off the model's thread)."""
            p, cs = batch
            items, xs = [], []
            for c in cs:
                f, v = read(p, c, t, t)
                has = bool(v.any())
                items.append((c - c0, has, v))
                if has:
                    xs.append(self.normalize(f, v))
            return p, items, (np.stack(xs) if xs else None)

        with ThreadPoolExecutor(max_workers=1, initializer=background_priority) as pool:
            pending = pool.submit(load, batches[0])
            current = rows[0]
            for i in range(len(batches)):
                p, items, x = pending.result()
                if i + 1 < len(batches):
                    pending = pool.submit(load, batches[i + 1])
                if p != current:
                    yield from self._emit(current, acc, wsum, valid, c0, height, width)
                    current = p
                for j, _, v in items:
                    valid[:, j : j + t] = v
                if x is not None:
                    probs = self.runner(x)
                    for j, pr in zip((j for j, has, _ in items if has), probs):
                        acc[:, j : j + t] += pr * w2
                        wsum[:, j : j + t] += w2
                done += len(items)
                if progress:
                    progress(done, total)
            yield from self._emit(current, acc, wsum, valid, c0, height, width)

    def _emit(self, p, acc, wsum, valid, c0, height, width):
        """Yield the rows of the strip at ``p`` that no later tile touches, then shift the buffers."""
        t, s = self.config.tile, self.config.step
        lo, hi = max(p, 0), min(p + s, height)
        if hi > lo:
            out = np.full((hi - lo, width), np.nan, np.float32)
            a = acc[lo - p : hi - p, -c0 : -c0 + width]
            ws = wsum[lo - p : hi - p, -c0 : -c0 + width]
            v = valid[lo - p : hi - p, -c0 : -c0 + width] & (ws > 0)
            out[v] = a[v] / ws[v]
            yield lo, out
        for buf, fill in ((acc, 0), (wsum, 0), (valid, False)):
            buf[: t - s] = buf[s:]
            buf[t - s :] = fill


def model_lattice(model) -> int:
    """2 ** (number of 2x poolings): the period, in pixels, of the model's position dependence."""
    n = sum(1 for layer in model.layers if type(layer).__name__ == "MaxPooling2D")
    return 2**n


def make_predictor(loaded, config: PredictConfig = PredictConfig(), offset: tuple[int, int] = (0, 0),
                   frame: tuple[int, int] = (0, 0), grid: Grid | None = None) -> TiledPredictor:
    """A :class:`TiledPredictor` for a :class:`~core.model.LoadedModel`, with ``config`` resolved for it;
    ``frame`` is where the predicted window starts in its image (see :meth:`TiledPredictor.origins`),
    ``grid`` the image's (tiles of a south-up image are turned north-up for the model: :func:`north_up_view`).

    Raises:
        ModelMismatchError: the model's bands are not R, G, B, NIR, NDVI.
        ConfigError: the tile does not fit the model (see :meth:`PredictConfig.resolve`).
    """
    from core.card import check_bands

    check_bands(loaded.card, FEATURE_BANDS)
    shape = loaded.model.input_shape
    lattice = model_lattice(loaded.model)
    config = config.resolve(shape[1] if shape[1] is not None else None, lattice)
    runner = ModelRunner(loaded.model, config.batch_size, config.views, north_up_view(grid))
    return TiledPredictor(runner, loaded.card.normalization.apply, config, offset, lattice, frame)


def array_reader(features: np.ndarray, valid: np.ndarray) -> ReadFn:
    """A :data:`ReadFn` over in-memory arrays (padding outside with invalid zeros)."""
    h, w = valid.shape

    def read(r: int, c: int, hh: int, ww: int):
        f = np.zeros((hh, ww, features.shape[-1]), np.float32)
        v = np.zeros((hh, ww), bool)
        r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + hh, h), min(c + ww, w)
        if r1 > r0 and c1 > c0:
            f[r0 - r : r1 - r, c0 - c : c1 - c] = features[r0:r1, c0:c1]
            v[r0 - r : r1 - r, c0 - c : c1 - c] = valid[r0:r1, c0:c1]
        return f, v

    return read


def predict_array(loaded, features: np.ndarray, valid: np.ndarray, config: PredictConfig = PredictConfig(),
                  progress: ProgressFn | None = None, offset: tuple[int, int] = (0, 0),
                  frame: tuple[int, int] = (0, 0), grid: Grid | None = None) -> np.ndarray:
    """Probability of crop (H, W) float32 for in-memory features; NaN where invalid. ``frame``:
    where the arrays start in their image, whose tile grid the tiles then follow; ``grid``: the
    arrays' (or their image's) grid, which tells how the model sees them (:func:`make_predictor`).

    Raises:
        NoDataError: no valid pixel.
        ModelMismatchError, ConfigError: see :func:`make_predictor`.
    """
    if not valid.any():
        raise NoDataError("the region holds no valid pixels (all no data); choose another region")
    pred = make_predictor(loaded, config, offset, frame, grid)
    h, w = valid.shape
    out = np.empty((h, w), np.float32)
    for r, strip in pred.strips(array_reader(features, valid), h, w, progress):
        out[r : r + len(strip)] = strip
    return out


def predict_in_context(loaded, features: np.ndarray, valid: np.ndarray, context=None,
                       config: PredictConfig = PredictConfig(), progress: ProgressFn | None = None,
                       grid: Grid | None = None) -> np.ndarray:
    """:func:`predict_array` for a scene (on ``grid``), run over its context image where it has one
    (:class:`core.sources.base.SceneContext`: the region's surroundings, unmasked), then cut to the
    scene and NaN wherever the scene has no data (outside the region's outline): a field's
    probability does not depend on how tightly the region was drawn around it.

    Raises:
        InvalidDataError: the context image does not hold the scene where it says.
        as :func:`predict_array`.
    """
    if context is None:
        return predict_array(loaded, features, valid, config, progress, grid=grid)
    from core.raster import read_image

    ctx_features, ctx_valid, ctx_grid = read_image(context.path)
    h, w = valid.shape
    r, c = context.row_off, context.col_off
    if r < 0 or c < 0 or r + h > ctx_valid.shape[0] or c + w > ctx_valid.shape[1]:
        raise InvalidDataError(f"{context.path} does not hold the scene at row {r}, column {c}; "
                               "choose the region again to make the scene anew")
    # on the source image's tile grid: a region is predicted as that part of the whole image
    prob = predict_array(loaded, ctx_features, ctx_valid, config, progress, frame=context.frame,
                         grid=ctx_grid)[r : r + h, c : c + w].copy()
    prob[~valid] = np.nan
    return prob


# ---------------------------------------------------------------- files


def whole_percent(prob: np.ndarray) -> np.ndarray:
    """Probabilities 0-1 rounded to whole percents (int64), halves up, in float64: float32
    arithmetic with ties to even stored 0.95499998 as 96 and 0.98500001 as 98."""
    return np.floor(np.asarray(prob, dtype=np.float64) * 100 + 0.5).astype(np.int64)


def probability_to_uint8(prob: np.ndarray) -> np.ndarray:
    """Probability 0-1 (NaN = no data) -> uint8 percent 0-100, 255 = no data."""
    out = np.full(prob.shape, NODATA, np.uint8)
    flat, into = np.ravel(prob), out.reshape(-1)  # (a megapixel at a time: whole_percent's float64 and int64
    for i in range(0, flat.size, PERCENT_CHUNK):  # copies of every valid pixel were 19 bytes a pixel at once)
        part = flat[i : i + PERCENT_CHUNK]
        ok = np.isfinite(part)
        into[i : i + PERCENT_CHUNK][ok] = np.clip(whole_percent(part[ok]), 0, 100).astype(np.uint8)
    return out


#: Pixels of a probability rounded to whole percents at once (:func:`probability_to_uint8`, core.metrics.threshold_curve)
PERCENT_CHUNK = 1 << 20


def threshold_mask(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Probability (NaN = no data) -> uint8 crop mask 1/0, 255 = no data.

    A pixel is crop where its probability in whole percent, as ``probability.tif`` stores it
    (:func:`probability_to_uint8`), is at least ``threshold`` x 100, so that the mask is exactly what
    thresholding the stored probability gives (a pixel stored as 50 is crop at 0.50).
    """
    prob = np.asarray(prob)
    if prob.dtype not in (np.float32, np.float64) or prob.ndim == 0 or not 0.0 <= threshold <= 1.0:
        out = np.full(prob.shape, NODATA, np.uint8)
        ok = np.isfinite(prob)
        out[ok] = (whole_percent(prob[ok]) >= percent_cut(threshold)).astype(np.uint8)
        return out
    # one comparison with the least value of prob's type that rounds to the cut (the rounding is monotonic):
    # the same mask without float64 and int64 copies of every valid pixel (0.3-3.5 s on 16.8 Mpx)
    out = np.greater_equal(prob, probability_cut(threshold, prob.dtype)).view(np.uint8)
    gaps = np.isfinite(prob)
    np.logical_not(gaps, out=gaps)
    np.copyto(out, np.uint8(NODATA), where=gaps)
    return out


def probability_cut(threshold: float, dtype=np.float32):
    """The least value of ``dtype`` (float32 or float64) whose whole percent (:func:`whole_percent`) is at
    least :func:`percent_cut` of ``threshold``: ``p >= probability_cut(t)`` is ``whole_percent(p) >= percent_cut(t)``."""
    k, kind = percent_cut(threshold), np.dtype(dtype).type

    def crop(v) -> bool:
        return bool(whole_percent(np.array([v], kind))[0] >= k)

    cut, down, up = kind((k - 0.5) / 100), kind(-np.inf), kind(np.inf)
    while crop(np.nextafter(cut, down)):
        cut = np.nextafter(cut, down)
    while not crop(cut):
        cut = np.nextafter(cut, up)
    return cut


def percent_cut(threshold: float) -> int:
    """The smallest whole percent that counts as crop at ``threshold`` (0.5 -> 50, 0.555 -> 56)."""
    return int(np.ceil(round(float(threshold) * 100, 6)))


def region_window(grid: Grid, window: tuple[int, int, int, int] | None, min_size: int):
    """Validate a pixel window (row, col, height, width) inside ``grid``; None = the whole image.

    Raises:
        RegionError: the window is outside the image or smaller than ``min_size`` on a side (or
            than the image, where the image is smaller).
    """
    from rasterio.windows import Window

    if window is None:
        r, c, h, w = 0, 0, grid.height, grid.width
    else:
        r, c, h, w = (int(v) for v in window)
        size = f"the image is {grid.height} rows x {grid.width} columns"
        if h <= 0 or w <= 0:
            raise RegionError(f"the window's height and width must be positive, got {h} x {w} (rows x columns); give "
                              f"ROW,COL,HEIGHT,WIDTH inside the image ({size})")
        if r < 0 or c < 0 or r + h > grid.height or c + w > grid.width:
            raise RegionError(f"the window (rows {r} to {r + h - 1}, columns {c} to {c + w - 1}) is not inside the image: "
                              f"{size}; give ROW,COL,HEIGHT,WIDTH inside it")
    if h < min(min_size, grid.height) or w < min(min_size, grid.width):
        raise RegionError(f"the window is {h} x {w} px (rows x columns); it must be at least {min_size} px on each "
                          "side (or all of a smaller image): give a larger --window, or leave it out to predict the "
                          "whole image")
    return Window(c, r, w, h)


def _raw_profile(grid: Grid) -> dict:
    """The intermediate uint8 GeoTIFF that strips stream into (fast ZSTD; the COG copy recompresses)."""
    from affine import Affine

    return {"driver": "GTiff", "dtype": "uint8", "count": 1, "width": grid.width, "height": grid.height,
            "crs": grid.crs, "transform": Affine(*grid.transform), "nodata": NODATA, "tiled": True,
            "blockxsize": 256, "blockysize": 256, "compress": "zstd", "zstd_level": 1}


def prediction_outputs(out_dir: str | os.PathLike, overwrite: bool,
                       inputs: Sequence[str | os.PathLike | None] = (),
                       stale: Sequence[str] = ()) -> tuple[dict[str, Path], Path]:
    """The paths ``{"probability": ..., "crop_mask": ...}`` and ``summary.json`` of a prediction
    into ``out_dir``, checked before any work so that a run replaces all of them or none.

    Raises:
        OutputExistsError: one exists, or a file made from an earlier crop mask (named in ``stale``:
            :func:`stale_outputs` removes them with ``overwrite``), and ``overwrite`` is False.
        ConfigError: ``out_dir`` is a file or lies under one, an output's name is taken by a folder,
            or an output is one of the ``inputs`` (the image, the model or its card), which
            ``overwrite`` would destroy.
    """
    from core.errors import ConfigError

    out_dir = check_output_dir(out_dir)
    outputs = {k: out_dir / f"{k}.tif" for k in ("probability", "crop_mask")}
    summary_path = out_dir / "summary.json"
    for p in [*outputs.values(), summary_path]:  # (out_dir's own path was checked above)
        for given in inputs:
            if given is not None and p.exists() and os.path.exists(given) and os.path.samefile(p, given):
                raise ConfigError(f"{p} is an input of this prediction ({given}) and would be replaced by its "
                                  "output; choose another output folder")
        if p.is_dir():  # said before "pass --overwrite", which would not help
            raise ConfigError(f"{p} is a folder, so the output of that name cannot be written; move it away or choose "
                              "another --out")
    existing = [p.name for p in [*outputs.values(), summary_path] if p.exists()]
    # (files made from an earlier crop mask: left beside a new one, they described another prediction)
    derived = [n for n in stale if (out_dir / n).is_file()]
    if (existing or derived) and not overwrite:
        made = f" (made from an earlier crop mask: --overwrite removes {'it' if len(derived) == 1 else 'them'})" if derived else ""
        raise OutputExistsError(f"{out_dir} already holds {', '.join(existing + derived)}{made}; pass --overwrite to "
                                "replace them or choose another --out")
    return outputs, summary_path


#: The band descriptions of ``probability.tif`` and ``crop_mask.tif``.
PROBABILITY_DESCRIPTION = "crop probability (%)"
MASK_DESCRIPTION = "crop mask (1 crop, 0 not crop)"

#: Files that ``python -m core evaluate`` and ``fields`` write beside a prediction, from its crop
#: mask: a prediction that replaces the mask removes them (they would describe the old one).
DERIVED_OUTPUTS = ("metrics.json", "crop_fields.geojson")


def stale_outputs(out_dir, stale: Sequence[str], overwrite: bool) -> list[tuple[None, Path]]:
    """The removals, for :func:`core.files.move_into_place`, of the files named in ``stale`` that
    exist in ``out_dir`` (none without ``overwrite``: nothing is replaced then). A folder of such a
    name is no file of ours, and stays (it was removed with all it held)."""
    paths = (Path(out_dir) / n for n in stale)
    return [(None, p) for p in paths if overwrite and (p.is_symlink() or p.is_file())]


#: the fewest bytes a pixel takes in the outputs as written (the two GeoTIFFs while they are made and as COGs,
#: compressed): a lower estimate, for refusing a disk that cannot hold them (:func:`core.files.check_free_space`)
MIN_OUTPUT_BYTES_PER_PIXEL = 0.25


def predict_image(
    image_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    model_path: str | os.PathLike | None = None,
    config: PredictConfig = PredictConfig(),
    window: tuple[int, int, int, int] | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    band_map: dict[str, int] | None = None,
    loaded=None,
    context: SceneContext | None = None,
    stale: Sequence[str] = DERIVED_OUTPUTS,
    about: Mapping[str, Any] | None = None,
    warn: Callable[[str], None] | None = None,
    placed: Callable[[], None] | None = None,
) -> dict:
    """Predict a GeoTIFF (or a pixel window of it) and write ``probability.tif``, ``crop_mask.tif``
    and ``summary.json`` (Cloud Optimized GeoTIFFs) into ``out_dir``; returns the summary, with
    ``about`` (what the caller asked for, e.g. the CLI's ``--bbox`` and ``--bands``) in it. ``warn`` is
    given the summary's warnings (the image's values, its pixel size against the model's) as soon as they
    are known, before the model runs: a user can stop a run whose map would be thrown away. ``placed()``
    is called as the outputs are in place (:func:`core.files.move_into_place`'s ``done``).

    With a ``context`` (a scene's, :func:`core.sources.base.scene_context`; not with ``window``), the
    model sees the context image around the scene, as the dashboard's prediction does
    (:func:`predict_in_context`), and the outputs cover the scene's grid, no data wherever the scene
    has none (outside the region's outline).

    With ``overwrite``, the files named in ``stale`` in ``out_dir`` (made from an earlier crop mask
    there) are removed together with the outputs' replacement, all in one step.

    Raises:
        OutputExistsError: an output exists and ``overwrite`` is False (nothing is written).
        ConfigError: ``out_dir`` is a file or lies under one, or an output's name is taken by a folder.
        InputNotFoundError, BandError, InvalidDataError, CorruptFileError: bad image or model.
        RegionError: the window is outside the image or smaller than one tile.
        NoDataError: the region holds no valid pixel (nothing is written, and no folder is left behind).
        ModelMismatchError: the model was trained on other bands.
    """
    from core.card import model_files
    from core.model import check_model_files, load_model

    # the inputs' own mistakes first (as evaluate), then an output in the way; opened fully below
    if not Path(image_path).exists():
        raise InputNotFoundError(f"file not found: {image_path} (check the path)")
    if loaded is None:
        check_model_files(model_path)
    with ImageReader(image_path, band_map):  # (not a GeoTIFF, or without the bands: said before "--overwrite")
        pass
    if context is not None and window is not None:
        raise ConfigError("a window of a scene cannot be predicted in its context; predict the scene whole")
    outputs, summary_path = prediction_outputs(out_dir, overwrite, [image_path, *model_files(model_path)], stale)
    t0 = time.time()
    loaded = loaded or load_model(model_path)
    import rasterio

    # GDAL's block cache (5% of RAM by default) would keep every block read or written, so memory
    # would grow with the image; tiles are read at most twice, so a small cache loses nothing.
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), ExitStack() as opened:
        from rasterio.windows import Window

        scene = opened.enter_context(ImageReader(image_path, band_map))
        reader = opened.enter_context(ImageReader(context.path, band_map)) if context is not None else scene
        if context is None:  # the image, or a window of it (``win``, also in the summary)
            win = region_window(reader.grid, window, MIN_REGION_SIDE if window is not None else 1)
            grid, shown, frame = window_grid(reader.grid, win), win, (0, 0)
            keep = None
        else:  # the scene is the window ``win`` of the context image; the summary's window is all of the scene
            win = _scene_in_context(scene.grid, reader.grid, context)
            grid, shown, frame = scene.grid, Window(0, 0, scene.grid.width, scene.grid.height), context.frame

            def keep(r, n):  # the scene's own pixels with data (the context's beyond its outline are not output)
                return scene.read_valid(Window(0, r, grid.width, n))
        grid.pixel_area_ha()  # a CRS without a known unit is refused here, before the model runs
        # a disk too small for the outputs, here rather than once it is full (GDAL then said the half-written
        # file was "not recognized as being in a supported file format")
        check_free_space(out_dir, int(grid.width * grid.height * MIN_OUTPUT_BYTES_PER_PIXEL),
                         f"the outputs of {grid.width:,} x {grid.height:,} px",
                         "free some space, or write them to another disk (--out)")
        predictor = make_predictor(loaded, config, frame=(frame[0] + int(win.row_off), frame[1] + int(win.col_off)),
                                   grid=reader.grid)
        if warn is not None:  # (the summary's, as prediction_summary gives them)
            from core.card import resolution_warning

            for text in [*reader.warnings, *filter(None, [resolution_warning(loaded.card, grid)])]:
                warn(text)

        def read(r, c, h, w):
            return reader.read(Window(win.col_off + c, win.row_off + r, w, h))

        with staging_dir(out_dir) as tmpdir:  # a failure leaves no folder made here
            stats = _write_outputs(predictor, read, grid, tmpdir, config.threshold, progress, keep,
                                   provenance_tags(image_path, loaded.path, loaded.card, predictor.config.views))
            if stats["valid_pixels"] == 0:
                raise NoDataError("the image (or its --window) holds no valid pixels (all no data); nothing was "
                                  "written; choose another image or window")
            summary = _summary(image_path, grid, shown, predictor.config, loaded, stats, time.time() - t0,
                               reader.warnings)
            if context is not None:
                summary["context"] = {"file": str(context.path), "row_off": context.row_off, "col_off": context.col_off}
            summary.update(about or {})
            (tmpdir / "summary.json").write_text(json.dumps(summary, indent=2))
            move_into_place([*stale_outputs(out_dir, stale, overwrite),
                             *((tmpdir / f"{key}.cog.tif", final) for key, final in outputs.items()),
                             (tmpdir / "summary.json", summary_path)], tmpdir, replace=overwrite, done=placed)
    return summary


def _scene_in_context(scene: Grid, context: Grid, where: SceneContext):
    """The window of ``context``'s grid that ``scene``'s grid is (at ``where``'s offset).

    Raises:
        InvalidDataError: the context image does not hold the scene there.
    """
    from rasterio.windows import Window

    r, c = where.row_off, where.col_off
    win = Window(c, r, scene.width, scene.height)
    inside = r >= 0 and c >= 0 and r + scene.height <= context.height and c + scene.width <= context.width
    same = window_grid(context, win) if inside else None
    if same is not None and scene.georeferenced:  # (an image without a CRS has no place to compare)
        inside = same.crs == scene.crs and all(abs(a - b) <= 1e-6 * max(1.0, abs(b))
                                                for a, b in zip(same.transform, scene.transform))
    if not inside:
        raise InvalidDataError(f"{where.path} does not hold the scene at row {r}, column {c}; fetch the region "
                               "again to make the scene anew")
    return win


def mask_tags(tags: Mapping[str, str], threshold: float) -> dict[str, str]:
    """A crop mask's dataset tags: ``tags`` (:func:`provenance_tags`) and the threshold it was cut at, in
    full (one cut at 0.5000001 is cut at 51 percent, and its tag said 0.5)."""
    return {**tags, "THRESHOLD": repr(float(threshold))}


def provenance_tags(source: str | os.PathLike, model_path: str | os.PathLike, card, views: int = 1,
                    made_by: str = "python -m core predict", source_text: str | None = None) -> dict[str, str]:
    """The outputs' dataset tags: what they were made from (the image or export, the model at
    ``model_path`` with its ``card``: its weights' fingerprint, its bands) and by what, so that a GeoTIFF
    passed on still says so (gdalinfo shows them). No time: the same inputs give the same bytes
    (summary.json says when). ``source_text``: words for the source in place of ``source``'s file name
    (e.g. :func:`core.sources.base.scene_origin`'s)."""
    return {"SOURCE": source_text or Path(source).name, "MODEL": f"{Path(model_path).name} (U-Net, {card.preset} preset)",
            "MODEL_WEIGHTS_SHA256": card.weights, "MODEL_BANDS": ",".join(card.bands),
            "VIEWS_PER_TILE": str(views), "SOFTWARE": f"crop mapping dashboard ({made_by})"}


def _write_outputs(predictor: TiledPredictor, read: ReadFn, grid: Grid, tmpdir: Path, threshold: float,
                   progress: ProgressFn | None, keep: Callable[[int, int], np.ndarray] | None = None,
                   tags: Mapping[str, str] | None = None) -> dict:
    """Stream strips into tiled GeoTIFFs, then copy them to COGs. Returns pixel counts. ``keep(row,
    rows)``: the pixels of those rows to output (the others become no data). ``tags``: the files' dataset
    tags (:func:`provenance_tags`); the mask's also give its threshold.

    Strips are thresholded, compressed and written in a thread while the model works on the next tiles; the
    intermediate files use fast ZSTD (level 1), and the two COG copies (DEFLATE level 1) run side by side.

    Raises:
        OSError: a file did not reach the disk whole (a full disk; :func:`core.raster.check_written`).
    """
    import rasterio
    from rasterio.shutil import copy as rio_copy
    from rasterio.windows import Window

    prof = _raw_profile(grid)
    tmp_prob, tmp_mask = tmpdir / "probability.raw.tif", tmpdir / "crop_mask.raw.tif"
    counts = {"pixels": grid.width * grid.height, "valid_pixels": 0, "crop_pixels": 0, "crop_area_ha": None}
    area = grid.pixel_area_ha()
    crop_ha = 0.0

    def write(dp, dm, r, strip) -> tuple[int, int, float]:
        """Threshold, convert and write one strip; returns (valid, crop pixels, crop hectares)."""
        mask = threshold_mask(strip, threshold)
        win = Window(0, r, grid.width, len(mask))
        dp.write(probability_to_uint8(strip), 1, window=win)
        dm.write(mask, 1, window=win)
        crop = mask == 1
        ha = float((crop * area[r : r + len(strip)]).sum()) if isinstance(area, np.ndarray) else 0.0
        return int((mask != NODATA).sum()), int(crop.sum()), ha

    def add(result: tuple[int, int, float]) -> None:
        nonlocal crop_ha
        counts["valid_pixels"] += result[0]
        counts["crop_pixels"] += result[1]
        crop_ha += result[2]

    with rasterio.open(tmp_prob, "w", **prof) as dp, rasterio.open(tmp_mask, "w", **prof) as dm, \
            ThreadPoolExecutor(max_workers=1, initializer=background_priority) as writer:
        pending = None
        for r, strip in predictor.strips(read, grid.height, grid.width, progress):
            if pending is not None:
                add(pending.result())  # one strip in flight at most; a write error surfaces here
            if keep is not None:
                strip[~keep(r, len(strip))] = np.nan
            pending = writer.submit(write, dp, dm, r, strip)
        if pending is not None:
            add(pending.result())
        dp.update_tags(1, units="percent crop probability (0-100), 255 = no data")
        dm.update_tags(1, units=f"crop (1) / not crop (0) at threshold {threshold}, 255 = no data")
        dp.set_band_description(1, PROBABILITY_DESCRIPTION)  # what a GIS shows as the band's name
        dm.set_band_description(1, MASK_DESCRIPTION)
        if tags:
            dp.update_tags(**tags)
            dm.update_tags(**mask_tags(tags, threshold))
    if area is not None:
        counts["crop_area_ha"] = crop_ha if isinstance(area, np.ndarray) else counts["crop_pixels"] * float(area)
    if counts["valid_pixels"]:
        # GDAL writes a file's last blocks as it is closed, and rasterio does not raise when that fails (a full
        # disk): a file cut short was copied, or moved into place over the outputs it replaced, with exit status 0
        for raw in (tmp_prob, tmp_mask):
            check_written(raw, raw.name.replace(".raw", ""))
        jobs = ((tmp_prob, "probability", "average"), (tmp_mask, "crop_mask", "mode"))
        with ThreadPoolExecutor(max_workers=2) as pool:
            # DEFLATE level 1: twice as fast as the default level 6 for ~15% larger files
            done = [pool.submit(rio_copy, raw, tmpdir / f"{key}.cog.tif", driver="COG", compress="DEFLATE", level=1,
                                num_threads="ALL_CPUS", overview_resampling=resampling) for raw, key, resampling in jobs]
            for f in done:
                f.result()
        for key in ("probability", "crop_mask"):
            check_written(tmpdir / f"{key}.cog.tif", f"{key}.tif")
    return counts


def prediction_summary(grid: Grid, stats: dict, card, threshold: float, views: int = 1,
                       image_warnings: tuple[str, ...] = (), **about) -> dict:
    """What a prediction found, as ``summary.json`` (CLI) and the dashboard's summary download say it:
    ``about`` first (image, window, region, attribution...), then the grid, warnings, the figures of
    :func:`core.metrics.crop_area` (``stats``) at ``threshold``, and the model card (a ModelCard).
    """
    from core.card import resolution_warning

    v = stats["valid_pixels"]
    warning = resolution_warning(card, grid)
    return {
        **about,
        "georeferenced": grid.georeferenced,
        "crs": grid.crs,
        "note": "" if grid.georeferenced else NOT_GEOREFERENCED_NOTE,
        "warnings": [*image_warnings, *([warning] if warning else [])],
        "pixels": stats["pixels"],
        "valid_pixels": v,
        "crop_pixels": stats["crop_pixels"],
        "crop_fraction": round(stats["crop_pixels"] / v, 6) if v else None,
        # a sum of floats: rounded to 1 m2, so that the same prediction always writes the same figure
        "crop_area_ha": None if stats["crop_area_ha"] is None else round(float(stats["crop_area_ha"]), 4),
        "threshold": threshold,
        "views": views,
        "model_card": card.to_dict(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _summary(image_path, grid: Grid, win, config: PredictConfig, loaded, stats: dict, seconds: float,
             image_warnings: tuple[str, ...] = ()) -> dict:
    window = {"row": int(win.row_off), "col": int(win.col_off), "height": int(win.height), "width": int(win.width)}
    return {
        **prediction_summary(grid, stats, loaded.card, config.threshold, config.views, image_warnings,
                             image=str(image_path), window=window, model=str(loaded.path)),
        "tile": config.tile,
        "overlap": config.overlap,
        "seconds": round(seconds, 2),
        "outputs": {"probability": "probability.tif (uint8 percent 0-100, 255 = no data)",
                    "crop_mask": "crop_mask.tif (uint8 1 crop / 0 not crop, 255 = no data)"},
    }
