"""Direct pixel download with ``ee.data.computePixels``: plan, fetch concurrently, assemble.

:func:`plan_requests` is a pure function of (bounds in the target CRS, scale, bands, dtype):
it snaps the grid to the sensor's own pixel corners (an origin + multiples of the scale) and cuts it into requests that each stay under
Earth Engine's limits (48 MiB uncompressed, 32768 px a side). :func:`download` runs the
requests with bounded parallelism, retries 429/5xx with backoff, splits a tile in four if the
server still finds it too large, runs out of memory or out of time, reports progress, and streams the tiles
into a GeoTIFF written under a temporary name and renamed into place at the end.

The compute function is injected (default ``ee.data.computePixels``), so tests and benchmarks
use a fake that returns arrays.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from core.ee.errors import EEMemoryError, EERequestTooLargeError, EETimeoutError, RetryPolicy, call_with_retries
from core.errors import ConfigError, OutputExistsError
from core.files import synced

#: computePixels limits (bytes of the uncompressed response, pixels per side).
MAX_REQUEST_BYTES = 48 * 1024 * 1024
MAX_SIDE = 32768
#: A tile is not split below this side when the server says it is too large.
MIN_SPLIT_SIDE = 64

Transform = tuple[float, float, float, float, float, float]
#: where a grid's pixel corners fall, modulo its scale: one number for x and y, or (x, y)
Origin = float | tuple[float, float]
ComputeFn = Callable[[dict], Any]
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class PixelTile:
    """One request: its window in the full grid and its own affine transform (rasterio order)."""

    row_off: int
    col_off: int
    height: int
    width: int
    transform: Transform
    nbytes: int


@dataclass(frozen=True)
class PixelPlan:
    """A grid (CRS, transform, size) and the requests that cover it exactly once."""

    crs: str
    transform: Transform
    width: int
    height: int
    bands: tuple[str, ...]
    dtype: str
    tiles: tuple[PixelTile, ...]
    max_request_bytes: int = MAX_REQUEST_BYTES

    @property
    def requests(self) -> int:
        return len(self.tiles)

    @property
    def total_bytes(self) -> int:
        return self.width * self.height * len(self.bands) * np.dtype(self.dtype).itemsize


def _tile_transform(transform: Transform, row_off: int, col_off: int) -> Transform:
    a, b, c, d, e, f = transform
    return (a, b, c + col_off * a + row_off * b, d, e, f + col_off * d + row_off * e)


def _cut(n: int, step: int) -> list[tuple[int, int]]:
    """Split n into ceil(n/step) nearly equal (offset, size) parts, each <= step."""
    parts = max(1, math.ceil(n / step))
    size = math.ceil(n / parts)
    return [(o, min(size, n - o)) for o in range(0, n, size)]


def _cut_into(n: int, parts: int) -> list[tuple[int, int]]:
    """Split n into exactly ``parts`` (offset, size) parts whose sizes differ by at most 1."""
    base, extra = divmod(n, parts)
    out, off = [], 0
    for i in range(parts):
        size = base + (1 if i < extra else 0)
        out.append((off, size))
        off += size
    return out


def _parallel_grid(height: int, width: int, min_rows: int, min_cols: int, workers: int, min_side: int,
                   cap: int, max_px: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Rows and columns of a tile grid for ``workers`` parallel requests.

    Fewest rounds of requests first (ceil(tiles / workers)), then the most tiles those rounds can
    hold (smaller tiles finish each round sooner), then the squarest tiles. Tiles stay within the
    limits (``cap`` a side, ``max_px``) and not below ``min_side`` unless the limits need it: a
    square region and 8 workers gives 2 x 4 tiles (one round), not 3 x 3 (two rounds).
    """
    max_rows = max(min_rows, math.ceil(height / min_side))
    max_cols = max(min_cols, math.ceil(width / min_side))

    def score(grid: tuple[int, int]) -> tuple[int, int, float]:
        th, tw = math.ceil(height / grid[0]), math.ceil(width / grid[1])
        return math.ceil(grid[0] * grid[1] / workers), -grid[0] * grid[1], max(th, tw) / max(1, min(th, tw))

    def fits(grid: tuple[int, int]) -> bool:
        th, tw = math.ceil(height / grid[0]), math.ceil(width / grid[1])
        return th <= cap and tw <= cap and th * tw <= max_px

    # min_rows x min_cols (the grid the limits alone give) always fits, so there is a candidate
    grids = (g for g in itertools.product(range(min_rows, max_rows + 1), range(min_cols, max_cols + 1)) if fits(g))
    nr, nc = min(grids, key=score)
    return _cut_into(height, nr), _cut_into(width, nc)


def snap_grid(bounds: Sequence[float], scale: float, origin: Origin = 0.0) -> tuple[Transform, int, int]:
    """(transform, width, height) of the north-up grid of ``scale`` covering ``bounds`` =
    (xmin, ymin, xmax, ymax), its corner snapped to ``origin`` + multiples of ``scale`` (the source's
    own pixel corners: :meth:`core.ee.composites.CompositeConfig.grid_origin`; one number for x and
    y, or (x, y)). Cheap: no tiles are planned, so a region's size can be checked before planning it."""
    ox, oy = origin_xy(origin)
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    x0 = math.floor(round((xmin - ox) / scale, 9)) * scale + ox
    y0 = math.ceil(round((ymax - oy) / scale, 9)) * scale + oy
    width = max(1, math.ceil(round((xmax - x0) / scale, 9)))
    height = max(1, math.ceil(round((y0 - ymin) / scale, 9)))
    return (float(scale), 0.0, float(x0), 0.0, -float(scale), float(y0)), width, height


def origin_xy(origin: Origin) -> tuple[float, float]:
    """A grid origin as (x, y): one number is the same in both."""
    if isinstance(origin, (int, float)):
        return float(origin), float(origin)
    ox, oy = origin
    return float(ox), float(oy)


def plan_requests(
    bounds: Sequence[float],
    scale: float,
    bands: Sequence[str],
    dtype: str | np.dtype,
    crs: str,
    *,
    max_bytes: int = MAX_REQUEST_BYTES,
    max_side: int = MAX_SIDE,
    tile_side: int | None = None,
    target_requests: int = 1,
    min_tile_side: int = 256,
    origin: Origin = 0.0,
) -> PixelPlan:
    """Plan computePixels requests covering ``bounds`` = (xmin, ymin, xmax, ymax) in ``crs`` units.

    The grid's corner is snapped to ``origin`` + multiples of ``scale`` (the source's own pixel
    corners, :func:`snap_grid`; neighbouring downloads align), north up. Tiles are as large as the limits allow (or ``tile_side``), balanced in size. With
    ``target_requests`` > 1 (the number of parallel workers) the grid is chosen for whole rounds
    of requests (see :func:`_parallel_grid`; tiles not below ``min_tile_side``), so that latency
    overlaps.

    Raises:
        ConfigError: non-positive scale, empty bounds, no bands, or limits too small for 1 px.
    """
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    if not (isinstance(scale, numbers.Real) and not isinstance(scale, bool) and math.isfinite(scale) and scale > 0):
        raise ConfigError(f"scale must be a positive number of metres (or degrees), got {scale}")
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        raise ConfigError(f"bounds must be finite numbers, got {tuple(bounds)}")
    if not (xmax > xmin and ymax > ymin):
        raise ConfigError(f"empty bounds {tuple(bounds)}")
    if not bands:
        raise ConfigError("at least one band is needed")
    dt = np.dtype(dtype)
    bpp = len(bands) * dt.itemsize
    max_px = max_bytes // bpp
    if max_px < 1:
        raise ConfigError(f"max_bytes={max_bytes} is smaller than one pixel ({bpp} bytes)")
    transform, width, height = snap_grid(bounds, scale, origin)

    cap = min(max_side, tile_side or max_side)
    side = max(1, min(cap, math.isqrt(max_px)))
    # Square-ish tiles, but as wide as allowed when the region is a thin strip.
    tw = max(1, min(width, cap, max(side, max_px // min(height, cap))))
    th = max(1, min(height, cap, max_px // tw))
    rows, cols = _cut(height, th), _cut(width, tw)
    if target_requests > 1:
        rows, cols = _parallel_grid(height, width, len(rows), len(cols), target_requests, min_tile_side, cap, max_px)
    tiles = []
    for r, h in rows:
        for c, w in cols:
            tiles.append(PixelTile(r, c, h, w, _tile_transform(transform, r, c), h * w * bpp))
    return PixelPlan(str(crs), transform, width, height, tuple(bands), dt.name, tuple(tiles), int(max_bytes))


def geometry_bounds(geometry: Mapping[str, Any], scale: float, crs: str) -> tuple[float, float, float, float]:
    """Bounds of a lon/lat GeoJSON geometry reprojected to ``crs``.

    Raises:
        ConfigError: ``crs`` is geographic (``scale`` is metres; in degrees the plan would be a few
        pixels wide).
    """
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    from core.ee.composites import geojson_bounds

    if CRS.from_user_input(crs).is_geographic:
        raise ConfigError(f"crs {crs} is geographic (degrees) but the scale {scale:g} is in metres; use a projected "
                          "CRS such as the region's UTM zone (e.g. EPSG:32718), or leave crs empty for the UTM zone")
    return transform_bounds("EPSG:4326", crs, *geojson_bounds(geometry), densify_pts=21)


def plan_for_geometry(
    geometry: Mapping[str, Any], scale: float, bands: Sequence[str], dtype: str | np.dtype, crs: str, **kw: Any
) -> PixelPlan:
    """:func:`plan_requests` for a lon/lat GeoJSON geometry, its bounds reprojected to ``crs``.

    Raises:
        ConfigError: see :func:`geometry_bounds` and :func:`plan_requests`.
    """
    return plan_requests(geometry_bounds(geometry, scale, crs), scale, bands, dtype, crs, **kw)


def split_tile(tile: PixelTile, bytes_per_pixel: int) -> list[PixelTile]:
    """Four quadrants of a tile (used when the server still finds it too large)."""
    h1, w1 = tile.height // 2, tile.width // 2
    out = []
    for r, h in ((0, h1), (h1, tile.height - h1)):
        for c, w in ((0, w1), (w1, tile.width - w1)):
            if h and w:
                t = _tile_transform(tile.transform, r, c)
                out.append(PixelTile(tile.row_off + r, tile.col_off + c, h, w, t, h * w * bytes_per_pixel))
    return out


def request_for(image: Any, plan: PixelPlan, tile: PixelTile, file_format: str = "NUMPY_NDARRAY") -> dict:
    """The computePixels request body of one tile."""
    a, b, c, d, e, f = tile.transform
    return {
        "expression": image,
        "fileFormat": file_format,
        "bandIds": list(plan.bands),
        "grid": {
            "dimensions": {"width": tile.width, "height": tile.height},
            "affineTransform": {
                "scaleX": a,
                "shearX": b,
                "translateX": c,
                "shearY": d,
                "scaleY": e,
                "translateY": f,
            },
            "crsCode": plan.crs,
        },
    }


def to_band_array(data: Any, bands: Sequence[str], shape: tuple[int, int], dtype: str) -> np.ndarray:
    """A computePixels response (structured NumPy array, (h, w, bands) array, or GeoTIFF bytes)
    as a (bands, h, w) array of ``dtype``.

    Raises:
        EarthEngineError: if the response's shape or bands do not match the request.
    """
    from core.errors import EarthEngineError

    if isinstance(data, (bytes, bytearray, memoryview)):
        from rasterio.errors import RasterioError
        from rasterio.io import MemoryFile

        if not len(data):  # (rasterio: "'driver' is required...", a traceback)
            raise EarthEngineError("computePixels returned no data (an empty answer); try again")
        try:
            with MemoryFile(bytes(data)) as mem, mem.open() as src:
                arr = src.read()
        except RasterioError as err:  # (GDAL's words named a temporary in-memory file)
            raise EarthEngineError(f"computePixels returned {len(data):,} bytes that are no GeoTIFF "
                                   f"({type(err).__name__}); try again") from None
    else:
        data = np.asarray(data)
        if data.dtype.names:
            missing = [b for b in bands if b not in data.dtype.names]
            if missing:
                raise EarthEngineError(f"computePixels returned no band(s) {missing}")
            arr = np.stack([data[b] for b in bands])
        elif data.ndim == 3 and data.shape[2] == len(bands):
            arr = np.moveaxis(data, 2, 0)
        elif data.ndim == 2 and len(bands) == 1:
            arr = data[None]
        else:
            raise EarthEngineError(f"unexpected computePixels response of shape {data.shape}")

    if arr.shape[1:] != tuple(shape) or arr.shape[0] != len(bands):
        raise EarthEngineError(f"computePixels returned {arr.shape}, expected {(len(bands),) + tuple(shape)}")
    try:
        return arr.astype(dtype, copy=False)
    except (TypeError, ValueError):  # (text where numbers belong: "could not convert string to float", a traceback)
        raise EarthEngineError(f"computePixels returned values of type {arr.dtype} where numbers belong") from None


@dataclass
class DownloadStats:
    """What a download did: requests, retries and seconds go into the scene's record (scene.json);
    tiles split for being too large and bytes received are counted for tests and benchmarks."""

    requests: int = 0
    retries: int = 0
    splits: int = 0
    bytes: int = 0
    seconds: float = 0.0


def _default_compute() -> ComputeFn:
    import ee

    return ee.data.computePixels


def download(
    image: Any,
    plan: PixelPlan,
    out_path: str | os.PathLike,
    *,
    compute: ComputeFn | None = None,
    max_workers: int = 4,
    progress: Progress | None = None,
    overwrite: bool = False,
    nodata: float | int | None = None,
    sentinel: float | int | None = None,
    file_format: str = "NUMPY_NDARRAY",
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    stats: DownloadStats | None = None,
    geometry: Mapping[str, Any] | None = None,
) -> Path:
    """Fetch every tile of ``plan`` from ``image`` and write one GeoTIFF at ``out_path``.

    Bands get the plan's band names as descriptions; ``nodata`` is set on the file and pixels
    equal to ``sentinel`` (the value the image was unmasked with) become ``nodata``, as do pixels
    whose centre lies outside ``geometry`` (lon/lat GeoJSON; the plan's grid covers its bounding
    box), so that a drawn region means the same thing here as on a local image. The file appears
    only when complete (temporary name + rename).

    Raises:
        OutputExistsError: ``out_path`` exists and ``overwrite`` is False (checked first).
        ConfigError: max_workers < 1.
        EarthEngineError subclasses: a tile failed after retries (nothing is left on disk); NoDataError: Earth
            Engine found no image to compute ("collection is empty", :func:`core.ee.errors.map_ee_error`).
        OSError: the file did not reach the disk whole (a full disk; :func:`core.raster.check_written`).
    """
    import rasterio

    from core.geometry import pixels_inside
    from core.raster import check_written

    out = Path(out_path)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; choose another name or pass overwrite=True")
    if max_workers < 1:
        raise ConfigError(f"max_workers must be at least 1, got {max_workers}")
    compute = compute or _default_compute()
    stats = stats if stats is not None else DownloadStats()
    bpp = len(plan.bands) * np.dtype(plan.dtype).itemsize
    shape = None
    if geometry is not None and nodata is not None:
        from rasterio.warp import transform_geom

        shape = transform_geom("EPSG:4326", plan.crs, dict(geometry))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part")
    t0 = time.perf_counter()

    def fetch(tile: PixelTile) -> np.ndarray:
        def one() -> Any:
            return compute(request_for(image, plan, tile, file_format))

        def counted(attempt: int, err: Exception, wait_s: float) -> None:
            stats.retries += 1

        data = call_with_retries(one, retry, sleep=sleep, on_retry=counted)
        arr = to_band_array(data, plan.bands, (tile.height, tile.width), plan.dtype)
        if sentinel is not None and nodata is not None:
            arr = np.where(arr == sentinel, np.asarray(nodata, dtype=arr.dtype), arr)
        return arr

    def outside_region(arr: np.ndarray, tile: PixelTile) -> np.ndarray:
        # here, in the writing thread: rasterio's rasterize is not for concurrent use
        inside = pixels_inside([shape], (tile.height, tile.width), rasterio.Affine(*tile.transform))
        return np.where(inside, arr, np.asarray(nodata, dtype=arr.dtype))

    profile = _profile(plan, nodata)
    total = len(plan.tiles)
    done = 0
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            for i, name in enumerate(plan.bands, start=1):
                dst.set_band_description(i, name)
            pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ee-pixels")
            ended = False
            try:
                pending: dict[Future, PixelTile] = {pool.submit(fetch, t): t for t in plan.tiles}
                try:
                    while pending:
                        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                        for fut in finished:
                            tile = pending.pop(fut)
                            try:
                                arr = fut.result()
                            # (a time limit too: a heavy recipe, a multi-year median or mode, over fewer pixels
                            # finishes in time)
                            except (EERequestTooLargeError, EEMemoryError, EETimeoutError):
                                if min(tile.height, tile.width) < 2 * MIN_SPLIT_SIDE:
                                    raise
                                parts = split_tile(tile, bpp)
                                stats.splits += 1
                                total += len(parts) - 1
                                for part in parts:
                                    pending[pool.submit(fetch, part)] = part
                                continue
                            if shape is not None:
                                arr = outside_region(arr, tile)
                            window = ((tile.row_off, tile.row_off + tile.height), (tile.col_off, tile.col_off + tile.width))
                            dst.write(arr, window=rasterio.windows.Window.from_slices(*window))
                            done += 1
                            stats.requests += 1
                            stats.bytes += tile.nbytes
                            if progress is not None:
                                progress(done, total, f"downloaded {done}/{total} tiles")
                finally:
                    for fut in pending:
                        fut.cancel()
                ended = True
            finally:
                # an error or Ctrl-C does not wait for the requests under way (one that stalled held Ctrl-C up
                # for as long as it did); a download that ended has none left
                pool.shutdown(wait=ended, cancel_futures=True)
        synced(tmp)
        check_written(tmp, out)  # (a full disk as GDAL closed it: a file cut short, renamed into place, exit 0)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        stats.seconds += time.perf_counter() - t0
    return out


def _profile(plan: PixelPlan, nodata: float | int | None) -> dict:
    """The GeoTIFF profile of a download on ``plan``'s grid (tiled where at least 256 px a side)."""
    import rasterio

    profile = {"driver": "GTiff", "width": plan.width, "height": plan.height, "count": len(plan.bands),
               "dtype": plan.dtype, "crs": plan.crs, "transform": rasterio.Affine(*plan.transform), "nodata": nodata,
               "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    if plan.width >= 256 and plan.height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


def grown_plan(plan: PixelPlan, margin: int, **kw: Any) -> PixelPlan:
    """The requests for ``plan``'s grid grown by ``margin`` pixels on each side, on the same pixel
    lattice: ``plan``'s grid is the window at row ``margin``, column ``margin`` of it. ``kw`` as
    for :func:`plan_requests` (the byte limit is ``plan``'s).

    Raises:
        ConfigError: margin < 0, or a grid that is not north-up with square pixels.
    """
    a, b, x0, d, e, y0 = plan.transform
    if margin < 0 or b or d or a <= 0 or abs(e + a) > 1e-9 * a:
        raise ConfigError(f"cannot grow a grid of transform {plan.transform} by {margin} px")
    bounds = (x0 - margin * a, y0 - (plan.height + margin) * a, x0 + (plan.width + margin) * a, y0 + margin * a)
    grown = plan_requests(bounds, a, plan.bands, plan.dtype, plan.crs, max_bytes=plan.max_request_bytes,
                          origin=(math.fmod(x0, a), math.fmod(y0, a)), **kw)
    gx, gy = grown.transform[2], grown.transform[5]
    if ((grown.width, grown.height) != (plan.width + 2 * margin, plan.height + 2 * margin)
            or abs(gx - (x0 - margin * a)) > 1e-6 * a or abs(gy - (y0 + margin * a)) > 1e-6 * a):
        raise ConfigError(f"the grid of transform {plan.transform} cannot be grown in whole pixels")
    return grown


def cut_out(
    src_path: str | os.PathLike,
    out_path: str | os.PathLike,
    plan: PixelPlan,
    row_off: int,
    col_off: int,
    geometry: Mapping[str, Any] | None = None,
    rows_at_once: int = 1024,
) -> CutOut:
    """Write ``plan``'s grid, read from the download at ``src_path`` (whose window at ``row_off``,
    ``col_off`` it is, as after :func:`grown_plan`), with the pixels whose centre lies outside
    ``geometry`` (lon/lat GeoJSON) set to the source's no-data value, as :func:`download` does.
    Band descriptions and no data as in the source. Reads and writes strips of ``rows_at_once``
    rows; the file appears only when complete. Returns how many pixels lie inside ``geometry``
    (every pixel without a geometry), and how many of them have data in every band.

    Raises:
        OutputExistsError: ``out_path`` exists.
        ConfigError: the window does not lie inside the source.
        OSError: the file did not reach the disk whole (a full disk; :func:`core.raster.check_written`).
    """
    import rasterio
    from rasterio.windows import Window

    from core.geometry import pixels_inside
    from core.raster import check_written

    out = Path(out_path)
    if out.exists():
        raise OutputExistsError(f"{out} already exists; choose another name")
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part")
    inside, with_data = plan.width * plan.height, 0
    try:
        with rasterio.open(src_path) as src:
            if row_off < 0 or col_off < 0 or row_off + plan.height > src.height or col_off + plan.width > src.width:
                raise ConfigError(f"{src_path} ({src.width} x {src.height} px) does not hold a {plan.width} x "
                                  f"{plan.height} px window at row {row_off}, column {col_off}")
            shape = None
            if geometry is not None and src.nodata is not None:
                from rasterio.warp import transform_geom

                shape = transform_geom("EPSG:4326", plan.crs, dict(geometry))
            with rasterio.open(tmp, "w", **_profile(plan, src.nodata)) as dst:
                dst.descriptions = src.descriptions
                for r in range(0, plan.height, rows_at_once):
                    h = min(rows_at_once, plan.height - r)
                    arr = src.read(window=Window(col_off, row_off + r, plan.width, h))
                    if shape is not None:
                        outside = ~pixels_inside([shape], (h, plan.width),
                                                 rasterio.Affine(*_tile_transform(plan.transform, r, 0)))
                        arr[:, outside] = np.asarray(src.nodata, dtype=arr.dtype)
                        inside -= int(outside.sum())
                    dst.write(arr, window=Window(0, r, plan.width, h))
                    with_data += int(_with_data(arr, src.nodata).sum())
        synced(tmp)
        check_written(tmp, out)  # (as download's)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return CutOut(inside, with_data)


@dataclass(frozen=True)
class CutOut:
    """What :func:`cut_out` wrote: the pixels inside the geometry, and those of them with data in every band."""

    inside: int
    with_data: int


def _with_data(bands: np.ndarray, nodata: float | int | None) -> np.ndarray:
    """Pixels of ``bands`` (bands, rows, columns) with data in every band."""
    if nodata is None:
        return np.ones(bands.shape[1:], bool)
    if isinstance(nodata, float) and math.isnan(nodata):
        return ~np.isnan(bands).any(axis=0)
    return (bands != np.asarray(nodata, dtype=bands.dtype)).all(axis=0)


def prepare_image(image: Any, bands: Sequence[str], dtype: str, sentinel: float | int):
    """``image.select(bands).unmask(sentinel)`` cast to ``dtype`` (float32 or uint8), for download.

    The unmask extends the footprint (``sameFootprint=False``): pixels outside a bounded image are
    masked as well, and computePixels would return them as 0, not as ``sentinel``."""
    import ee

    img = ee.Image(image).select(list(bands)).unmask(sentinel, False)
    casts = {"float32": img.toFloat, "uint8": img.toUint8, "int16": img.toInt16, "uint16": img.toUint16, "float64": img.toDouble}
    if np.dtype(dtype).name not in casts:
        raise ConfigError(f"unsupported download dtype {dtype}")
    return casts[np.dtype(dtype).name]()


__all__ = [
    "MAX_REQUEST_BYTES",
    "MAX_SIDE",
    "PixelPlan",
    "PixelTile",
    "DownloadStats",
    "plan_requests",
    "plan_for_geometry",
    "split_tile",
    "request_for",
    "to_band_array",
    "download",
    "grown_plan",
    "cut_out",
    "prepare_image",
]
