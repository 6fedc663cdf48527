"""Arrays -> PNG image overlays for maps: colour rendering, legends, placement.

Everything returns bytes, data URLs, bounds or plain data; nothing is shown here. Overlays are
downsampled to at most ``max_side`` pixels so pages stay responsive. Placement:

* non-georeferenced grids: Leaflet Simple CRS in pixel units, ``lat = -row``, ``lng = col``
  (``offset`` places a window of a larger image where it belongs);
* georeferenced grids: the RGBA image is reprojected to web mercator (EPSG:3857), which is how
  Leaflet stretches an image overlay (a small image on a grid finer than its pixels, so that each is
  drawn in its place), and its bounds are given in lat/lon.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from core.errors import InvalidDataError
from core.labels import CROP, NODATA, NOT_CROP, few_labels
from core.grid import Grid, window_grid

#: Default largest side of an overlay image, in pixels.
MAX_SIDE = 1024

Bounds = tuple[tuple[float, float], tuple[float, float]]  # ((south, west), (north, east))

# Colour anchors (position 0-1, RGB) of the colormaps; interpolated to 256-entry tables.
_ANCHORS: dict[str, list[tuple[float, tuple[int, int, int]]]] = {
    # viridis, sampled
    "probability": [
        (0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (94, 201, 98)), (1.0, (253, 231, 37)),
    ],
    # brown (bare) -> yellow -> green (vegetation), for NDVI -1..1 shown over 0..1
    "ndvi": [(0.0, (140, 81, 10)), (0.4, (216, 179, 101)), (0.5, (246, 232, 195)), (0.7, (90, 174, 97)), (1.0, (0, 68, 27))],
}

#: Colours of the class layers (RGB).
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "crop": (255, 193, 7),  # labelled crop
    # thresholded prediction: orange, a hue the probability colormap (viridis) never takes, for colour-blind
    # viewers too (the magenta it was turned the grey of the imagery to deuteranopes: 12 apart in CIEDE2000
    # over the sample's fields, against 29 for this orange, and the blue of low probabilities to protanopes)
    "predicted crop": (255, 127, 0),
    "not crop": (96, 125, 139),
    "no label": (0, 0, 0),  # a pixel of the image that the labels leave without a class
    # the errors: Okabe-Ito's vermillion and sky blue, apart from each other and from the grey image under
    # them for colour-blind viewers too (the red they were turned olive on grey to protanopes: 17 apart, now 25)
    "false crop": (213, 94, 0),  # predicted crop, labelled not crop
    "missed crop": (86, 180, 233),  # labelled crop, predicted not crop
    # pixels without image data: the web map's own background (Leaflet's #ddd), in the map PNG too
    "no image data": (221, 221, 221),
}


def colormap(name: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table.

    Raises:
        KeyError: if no colormap of that name exists (a programming error).
    """
    anchors = _ANCHORS[name]
    pos = np.array([a[0] for a in anchors])
    cols = np.array([a[1] for a in anchors], dtype=np.float64)
    x = np.linspace(0, 1, 256)
    return np.stack([np.interp(x, pos, cols[:, i]) for i in range(3)], axis=1).round().astype(np.uint8)


def hex_colour(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb[:3]))


#: The legends' colours in words, for a screen reader (a swatch was an empty box to it): by hex colour.
COLOUR_WORDS = {
    "#ffc107": "amber", "#ff7f00": "orange", "#607d8b": "blue-grey", "#000000": "black", "#d55e00": "red-orange",
    "#56b4e9": "sky blue", "#dddddd": "light grey", "transparent": "clear",
    "#440154": "dark purple", "#fde725": "yellow", "#8c510a": "brown", "#00441b": "dark green",
}


@dataclass(frozen=True)
class Legend:
    """What an overlay's colours mean: class swatches or a gradient with end labels."""

    title: str
    items: tuple[tuple[str, str], ...] = ()  # (label, hex colour)
    gradient: tuple[str, ...] = ()  # hex colours, low to high
    low: str = ""
    high: str = ""

    def to_html(self, opacity: float = 1.0, title_key: str | None = None) -> str:
        """A small self-contained HTML block (inline styles, no external resources); the colours at
        the layer's ``opacity``, as the map shows them (black at 0.5 is grey there). ``title_key``
        marks the title (``data-cropmap-legend``) and the colours (``data-cropmap-swatch``) for a
        script to change them in place."""
        key = html.escape(title_key, quote=True) if title_key else ""
        mark = f" data-cropmap-legend='{key}'" if title_key else ""
        swatch = f" data-cropmap-swatch='{key}'" if title_key else ""
        parts = [f"<div style='font-size:0.85rem'><b{mark}>{html.escape(self.title)}</b><br/>"]
        fade = f"opacity:{opacity:.2f};" if opacity < 1 else ""
        for label, colour in self.items:
            parts.append(
                f"<span{swatch}{_said(colour)} style='display:inline-block;width:12px;height:12px;background:{colour};"
                f"{fade}border:1px solid #888;margin-right:4px'></span>{html.escape(label)}&nbsp;&nbsp;"
            )
        if self.gradient:
            stops = ",".join(self.gradient)
            ends = [COLOUR_WORDS.get(c.lower()) for c in (self.gradient[0], self.gradient[-1])]
            said = f" role='img' aria-label='{ends[0]} to {ends[1]}'" if all(ends) else ""
            parts.append(
                f"<span>{self.low}</span><span{swatch}{said} style='display:inline-block;width:140px;height:12px;"
                f"margin:0 6px;background:linear-gradient(to right,{stops});{fade}border:1px solid #888'></span>"
                f"<span>{self.high}</span>"
            )
        parts.append("</div>")
        return "".join(parts)


def _said(colour: str) -> str:
    """The attributes that name a swatch's ``colour`` to a screen reader (none for a colour without a name)."""
    word = COLOUR_WORDS.get(colour.lower())
    return f" role='img' aria-label='{word}'" if word else ""


def gradient_legend(title: str, cmap: str, low: str, high: str) -> Legend:
    lut = colormap(cmap)
    return Legend(title, gradient=tuple(hex_colour(lut[i]) for i in (0, 64, 128, 192, 255)), low=low, high=high)


def class_legend(title: str, names: Sequence[str]) -> Legend:
    return Legend(title, items=tuple((n, hex_colour(CLASS_COLOURS[n])) for n in names))


# ---------------------------------------------------------------------- rendering to RGBA
#: (low, high) reflectance of each band that a colour layer stretches to 0-255
Limits = tuple[tuple[float, float], ...]
#: the percentiles of the valid pixels that a colour layer's stretch runs between
STRETCH_PERCENTILES = (2, 98)


def _percentile_limits(bands: np.ndarray, valid: np.ndarray) -> Limits:
    """:data:`STRETCH_PERCENTILES` of each band of (h, w, k) over the valid pixels (some must be valid)."""
    return tuple((float(lo), float(hi)) for lo, hi in
                 (np.percentile(bands[..., i][valid], STRETCH_PERCENTILES) for i in range(bands.shape[-1])))


def band_limits(features: np.ndarray, valid: np.ndarray) -> Limits | None:
    """The stretch of bands R, G, B, NIR over the valid pixels (None when there is none): one
    stretch for a whole image, so that a region's colours match the image's around it."""
    return _percentile_limits(features[..., :4], valid) if valid.any() else None


def _stretch(bands: np.ndarray, valid: np.ndarray, limits: Limits | None = None) -> np.ndarray:
    """Per-band stretch of (h, w, k) reflectance to uint8: to ``limits`` (one (low, high) per band),
    or those of the valid pixels themselves."""
    out = np.zeros(bands.shape, dtype=np.uint8)
    if not valid.any():
        return out
    for i, (lo, hi) in enumerate(limits if limits is not None else _percentile_limits(bands, valid)):
        scale = 255.0 / max(hi - lo, 1e-6)
        out[..., i] = np.clip((bands[..., i] - lo) * scale, 0, 255).astype(np.uint8)
    return out


def _composite(features: np.ndarray, valid: np.ndarray, bands: tuple[int, ...], limits: Limits | None) -> np.ndarray:
    """(h, w, 4) RGBA of three of the feature ``bands``, stretched (to their ``limits`` of
    :func:`band_limits` when given); invalid pixels transparent."""
    picked = None if limits is None else tuple(limits[i] for i in bands)
    return _rgba(_stretch(features[..., list(bands)], valid, picked), valid * 255)


def _rgba(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.dstack([rgb, alpha.astype(np.uint8)])


def true_colour(features: np.ndarray, valid: np.ndarray, limits: Limits | None = None) -> np.ndarray:
    """(h, w, 4) uint8 RGBA of R, G, B with a 2-98 % stretch (or ``limits``, :func:`band_limits`);
    invalid pixels transparent."""
    return _composite(features, valid, (0, 1, 2), limits)


#: Grey hatching of the pixels without image data on a web map (light grey with darker diagonal lines):
#: transparent, they showed the map's light grey background, and gaps at an image's edge looked like
#: a ragged outline of it.
HATCH_COLOURS = ((221, 221, 221), (160, 160, 160))


def hatch_gaps(rgba: np.ndarray, valid: np.ndarray, step: int = 1, period: int = 6) -> np.ndarray:
    """``rgba`` (h, w, 4) with its pixels without data (not ``valid``) drawn opaque in grey hatching:
    a diagonal line every ``period`` pixels of the overlay it becomes, which is downsampled by ``step``
    (:func:`downsample_step`), so that the lines survive its downsampling."""
    h, w = valid.shape
    out = rgba.copy()
    gaps = ~valid
    if gaps.any():  # each pixel's row and column in the downsampled overlay (the part of the side it is in)
        rows = (np.arange(h, dtype=np.int64) * -(-h // step) // h % period).astype(np.uint8)
        cols = (np.arange(w, dtype=np.int64) * -(-w // step) // w % period).astype(np.uint8)
        line = (rows[:, None] + cols[None, :]) % period == 0
        out[gaps & ~line] = (*HATCH_COLOURS[0], 255)
        out[gaps & line] = (*HATCH_COLOURS[1], 255)
    return out


def grey_colour(features: np.ndarray, valid: np.ndarray, limits: Limits | None = None) -> np.ndarray:
    """:func:`true_colour` in grey (its luminance): imagery under coloured layers whose colours must
    stand out from it for every viewer (red on green fields is olive on olive to the commonest
    colour blindness)."""
    rgba = true_colour(features, valid, limits)
    grey = (rgba[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
    rgba[..., :3] = grey[..., None]
    return rgba


def false_colour(features: np.ndarray, valid: np.ndarray, limits: Limits | None = None) -> np.ndarray:
    """(h, w, 4) RGBA of NIR, R, G (vegetation red); stretched as :func:`true_colour`."""
    return _composite(features, valid, (3, 0, 1), limits)


def ndvi_colour(features: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(h, w, 4) RGBA of NDVI (-1..1) through the ``ndvi`` colormap."""
    idx = np.clip((features[..., 4] + 1.0) * 127.5, 0, 255).astype(np.uint8)
    return _rgba(colormap("ndvi")[idx], valid * 255)


def labels_colour(mask: np.ndarray, show_nodata: bool = False, imaged: np.ndarray | None = None) -> np.ndarray:
    """(h, w, 4) RGBA of a crop mask (1 crop, 0 not crop, 255 no data); with ``show_nodata``, no data
    is painted where ``imaged`` (where the image has data; default everywhere): a pixel outside the
    region or the image stays clear, one of the image without a label is shown as no data."""
    rgba = np.zeros(mask.shape + (4,), dtype=np.uint8)
    # every class opaque, so that the layer's opacity alone sets how it looks, as for the legend's
    # swatches (no data once had its own lower alpha: mid-grey on the map under a black swatch)
    classes = [(CROP, "crop"), (NOT_CROP, "not crop")] + ([(NODATA, "no label")] if show_nodata else [])
    for code, name in classes:
        sel = mask == code
        if code == NODATA and imaged is not None:
            sel &= imaged
        rgba[sel, :3] = CLASS_COLOURS[name]
        rgba[sel, 3] = 255
    return rgba


def labels_legend(mask: np.ndarray, imaged: np.ndarray | None = None) -> tuple[Legend, bool]:
    """The label layer's legend and whether it paints "no label" (``show_nodata`` of :func:`labels_colour`),
    from all the pixels: crop / not crop, and pixels of the image (``imaged``; default all) without a
    label painted "no label" (named in the legend only where there are some) unless the labels are a
    few fields (:func:`core.labels.few_labels`): then the rest is left clear ("not labelled", an empty
    swatch)."""
    where = np.ones(mask.shape, bool) if imaged is None else imaged
    unlabelled = (mask == NODATA) & where
    n_where = int(where.sum())
    few = few_labels(n_where - int(unlabelled.sum()), n_where)
    legend = class_legend("Labels", ["crop", "not crop"] + (["no label"] if unlabelled.any() and not few else []))
    if few:
        legend = replace(legend, items=legend.items + (("not labelled", "transparent"),))
    return legend, not few


def probability_colour(prob: np.ndarray) -> np.ndarray:
    """(h, w, 4) RGBA of a crop probability (0-1, NaN = no data) through ``probability``."""
    finite = np.isfinite(prob)
    idx = np.clip(np.nan_to_num(prob, nan=0.0) * 255, 0, 255).astype(np.uint8)
    return _rgba(colormap("probability")[idx], finite * 255)


def crop_colour(prob: np.ndarray, threshold: float) -> np.ndarray:
    """(h, w, 4) RGBA: crop opaque, everything else transparent; crop exactly as in the crop mask
    (:func:`core.predict.threshold_mask`: the probability in whole percent at the threshold)."""
    from core.predict import threshold_mask

    sel = threshold_mask(prob, threshold) == CROP
    rgba = np.zeros(prob.shape + (4,), dtype=np.uint8)
    rgba[sel, :3] = CLASS_COLOURS["predicted crop"]
    rgba[sel, 3] = 255
    return rgba


def disagreement_colour(pred_mask: np.ndarray, label_mask: np.ndarray, only: np.ndarray | None = None) -> np.ndarray:
    """(h, w, 4) RGBA: false crop and missed crop in two colours, agreement transparent; with
    ``only`` (a boolean mask, e.g. the pixels of one label class), the errors there alone.

    Raises:
        InvalidDataError: if the masks differ in shape.
    """
    if pred_mask.shape != label_mask.shape or (only is not None and only.shape != pred_mask.shape):
        shapes = f" and selection {only.shape}" if only is not None else ""
        raise InvalidDataError(f"prediction {pred_mask.shape} and labels {label_mask.shape}{shapes} differ in shape")
    both = (pred_mask != NODATA) & (label_mask != NODATA)
    if only is not None:
        both &= only
    rgba = np.zeros(pred_mask.shape + (4,), dtype=np.uint8)
    for sel, name in (
        (both & (pred_mask == CROP) & (label_mask == NOT_CROP), "false crop"),
        (both & (pred_mask == NOT_CROP) & (label_mask == CROP), "missed crop"),
    ):
        rgba[sel, :3] = CLASS_COLOURS[name]
        rgba[sel, 3] = 255
    return rgba


def with_opacity(rgba: np.ndarray, opacity: float) -> np.ndarray:
    """Copy of ``rgba`` with its alpha scaled by ``opacity`` (0-1)."""
    out = rgba.copy()
    out[..., 3] = (out[..., 3].astype(np.float32) * float(np.clip(opacity, 0, 1))).astype(np.uint8)
    return out


# ---------------------------------------------------------------------- sizing, PNG, placement
def downsample_step(shape: tuple[int, ...], max_side: int = MAX_SIDE) -> int:
    """Every how many pixels :func:`downsample` keeps one of an array of ``shape`` (h, w, ...)."""
    longest = max(shape[:2])
    return int(np.ceil(longest / max_side)) if longest > max_side else 1


def kept_pixels(length: int, step: int) -> np.ndarray:
    """Indices of the pixels :func:`downsample` keeps along a side of ``length`` pixels: ``ceil(length /
    step)`` of them, the centre pixel of each equal part (the PNG is stretched over the whole side; the
    first pixel of each part put everything up to (step - 1) / 2 pixels up and left of its place)."""
    from core.raster import spread

    return spread(-(-length // step), length)


def reduced_shape(shape: tuple[int, ...], max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The (rows, columns) that :func:`downsample` leaves of an array of ``shape``."""
    step = downsample_step(shape, max_side)
    return -(-shape[0] // step), -(-shape[1] // step)


def downsample(arr: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Nearest neighbour, so that neither side of ``arr`` (h, w, ...) exceeds ``max_side``: the centre
    pixel of each block (:func:`kept_pixels`; no copy if small)."""
    step = downsample_step(arr.shape, max_side)
    if step == 1:
        return arr
    rows, cols = (kept_pixels(n, step) for n in arr.shape[:2])
    return arr[rows[:, None], cols[None, :]]


def png_bytes(rgba: np.ndarray) -> bytes:
    """PNG bytes of an (h, w, 3|4) uint8 array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba)).save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class Overlay:
    """A PNG ready for a Leaflet ImageOverlay: bytes, map bounds, and its legend."""

    name: str
    png: bytes
    bounds: Bounds
    width: int
    height: int
    legend: Legend | None = None
    opacity: float = 1.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def data_url(self) -> str:
        return data_url(self.png)


def image_bounds(height: int, width: int, offset: tuple[int, int] = (0, 0)) -> Bounds:
    """Simple-CRS bounds of an image window at ``offset`` (row, col): lat = -row, lng = col."""
    r0, c0 = offset
    return ((-float(r0 + height), float(c0)), (-float(r0), float(c0 + width)))


def lonlat_bounds(grid: Grid) -> Bounds:
    """((south, west), (north, east)) of a georeferenced grid in lon/lat.

    Raises:
        InvalidDataError: if the grid has no CRS, or a local one (no place on Earth).
    """
    if not grid.georeferenced:
        raise InvalidDataError("the image is not georeferenced: it has no place on Earth (image coordinates only)")
    grid.require_place_on_earth()
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    west, south, east, north = array_bounds(grid.height, grid.width, _affine(grid))
    w, s, e, n = transform_bounds(grid.crs, "EPSG:4326", west, south, east, north, densify_pts=21)
    if w > e:  # across the 180th meridian: its east in longitudes past 180, as web maps take them
        e += 360.0
    return ((s, w), (n, e))


#: How many times finer than the image's pixels (within ``max_side``) :func:`to_web_mercator` draws them.
WEB_FINER = 4

#: Spherical Mercator (EPSG:3857's) centred on the 180th meridian, for images that lie across it.
MERCATOR_180 = "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=180 +x_0=0 +y_0=0 +k=1 +units=m +no_defs"


def _affine(grid: Grid):
    from rasterio.transform import Affine

    return Affine(*grid.transform)


def _finest_side(crs, web: str, transform, width: int, height: int) -> float | None:
    """The shorter side, in ``web`` metres, of the image's pixel at its centre (None where the
    projection cannot place it)."""
    from rasterio._err import CPLE_BaseError  # (GDAL's errors; rasterio.errors does not name them)
    from rasterio.errors import CRSError
    from rasterio.warp import transform as warp

    cx, cy = width / 2, height / 2
    pts = [transform @ (cx, cy), transform @ (cx + 1, cy), transform @ (cx, cy + 1)]
    try:
        xs, ys = warp(crs, web, [p[0] for p in pts], [p[1] for p in pts])
    except (CPLE_BaseError, CRSError, ValueError):  # GDAL's default resolution then
        return None
    sides = [math.hypot(xs[i] - xs[0], ys[i] - ys[0]) for i in (1, 2)]
    return min(sides) if all(math.isfinite(v) and v > 0 for v in sides) else None


def to_web_mercator(rgba: np.ndarray, grid: Grid, max_side: int = MAX_SIDE) -> tuple[np.ndarray, Bounds]:
    """Reproject an RGBA image on ``grid`` to EPSG:3857 (nearest neighbour, transparent outside), on a grid
    up to :data:`WEB_FINER` times finer than its pixels (within ``max_side``), so that each pixel is drawn
    in its place; returns the new image and its lat/lon bounds. ``rgba`` may also be the pixels of the
    grid that :func:`downsample` keeps at twice ``max_side`` (all that is reprojected of a larger one).

    Raises:
        InvalidDataError: if the grid has no CRS or ``rgba`` does not match its shape.
    """
    if not grid.georeferenced:
        raise InvalidDataError("the image is not georeferenced: it cannot be placed on a web map")
    if rgba.shape[:2] not in (grid.shape, reduced_shape(grid.shape, 2 * max_side)):
        raise InvalidDataError(f"overlay {rgba.shape[:2]} does not match the grid {grid.shape}")
    from rasterio.transform import array_bounds
    from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

    # an image across the 180th meridian, on EPSG:3857, is split between the map's two edges (it came
    # out a 1 px transparent strip): it is drawn on the same Mercator turned half a turn instead
    across = lonlat_bounds(grid)[1][1] > 180
    web = MERCATOR_180 if across else "EPSG:3857"
    src_t = _affine(grid)
    h, w = grid.shape
    # (reprojection picks the output's pixels itself, at most max_side a side: cut by whole steps first to
    # max_side, a 1,225 px lon/lat image came out 614 px)
    small = downsample(rgba, 2 * max_side)
    if small.shape[:2] != (h, w):
        from rasterio.transform import Affine

        src_t = src_t @ Affine.scale(w / small.shape[1], h / small.shape[0])
        h, w = small.shape[:2]
    west, south, east, north = array_bounds(h, w, src_t)
    # pixels as fine as the image's finer side on the web map: GDAL's default squares them on their mean,
    # and a lon/lat image's pixels, taller than wide there away from the equator, lost columns (37% at 60°)
    res = _finest_side(grid.crs, web, src_t, w, h)
    dst_t, dw, dh = calculate_default_transform(grid.crs, web, w, h, west, south, east, north,
                                                **({"resolution": res} if res else {}))
    scale = max(dw, dh) / max_side
    if min(dw, dh) < 1:  # a strip thinner than one output pixel (GDAL makes it 0 px): 1 px across its bounds
        from rasterio.transform import from_bounds

        dw, dh = (max(1, int(n / max(scale, 1))) for n in (dw, dh))
        dst_t = from_bounds(*transform_bounds(grid.crs, web, west, south, east, north), dw, dh)
    elif scale > 1:
        dst_t, dw, dh = calculate_default_transform(
            grid.crs, web, w, h, west, south, east, north, dst_width=max(1, int(dw / scale)),
            dst_height=max(1, int(dh / scale)),
        )
    elif (fine := min(WEB_FINER, max_side // max(dw, dh))) > 1:
        # web pixels as large as the image's, on a grid of their own, straddle its pixels' edges: each
        # image pixel was drawn up to half a pixel from its place (off the region's outline and the pixel
        # a click names); k times finer, at most 1/(2k) of a pixel
        dst_t, dw, dh = calculate_default_transform(
            grid.crs, web, w, h, west, south, east, north, resolution=(dst_t.a / fine, -dst_t.e / fine),
        )
    out = np.zeros((4, dh, dw), dtype=np.uint8)
    reproject(
        np.moveaxis(np.ascontiguousarray(small), -1, 0),
        out,
        src_transform=src_t,
        src_crs=grid.crs,
        dst_transform=dst_t,
        dst_crs=web,
        resampling=Resampling.nearest,
        src_nodata=None,
        dst_nodata=0,
    )
    mw, ms, me, mn = array_bounds(dh, dw, dst_t)
    w_, s_, e_, n_ = transform_bounds(web, "EPSG:4326", mw, ms, me, mn)
    if across:  # its x counts from the 180th meridian: longitudes past 180 east of it (web maps take them)
        w_, e_ = 180.0 + math.degrees(mw / 6378137.0), 180.0 + math.degrees(me / 6378137.0)
    return np.moveaxis(out, 0, -1), ((s_, w_), (n_, e_))


def _kept_side(grid: Grid, max_side: int) -> int:
    """The longest side of an overlay's pixels kept from ``grid`` before it is placed: ``max_side``, or
    twice that for a georeferenced grid, which :func:`to_web_mercator` reprojects from as many."""
    return 2 * max_side if grid.georeferenced else max_side


def pixelwise_overlay(name: str, colour: Callable[..., np.ndarray], arrays: Sequence[np.ndarray], grid: Grid,
                      offset: tuple[int, int] = (0, 0), legend: Legend | None = None, opacity: float = 1.0,
                      max_side: int = MAX_SIDE) -> Overlay:
    """:func:`make_overlay` of ``colour(*arrays)`` (arrays on ``grid``), for a colouring pixel by pixel
    (e.g. :func:`crop_colour`): the arrays are first cut to the pixels the overlay keeps, the same
    overlay at a fraction of the work (a threshold step on a 15 Mpx region coloured 60 MB of RGBA, 0.5-2.4 s,
    to keep 1 pixel in 4).

    Raises:
        InvalidDataError: if an array does not match the grid.
    """
    if any(a.shape[:2] != grid.shape for a in arrays):
        shapes = ", ".join(str(a.shape[:2]) for a in arrays)
        raise InvalidDataError(f"the layer's arrays {shapes} do not all match the grid {grid.shape}")
    kept = [downsample(a, _kept_side(grid, max_side)) for a in arrays]
    return make_overlay(name, colour(*kept), grid, offset, legend, opacity, max_side)


def make_overlay(
    name: str,
    rgba: np.ndarray,
    grid: Grid,
    offset: tuple[int, int] = (0, 0),
    legend: Legend | None = None,
    opacity: float = 1.0,
    max_side: int = MAX_SIDE,
) -> Overlay:
    """An :class:`Overlay` of an RGBA array on ``grid``: downsampled, and reprojected to web
    mercator when the grid is georeferenced (image-coordinate bounds otherwise).

    Raises:
        InvalidDataError: if ``rgba`` does not match the grid.
    """
    reduced = reduced_shape(grid.shape, _kept_side(grid, max_side))
    if rgba.shape[:2] not in (grid.shape, reduced):
        raise InvalidDataError(f"overlay {rgba.shape[:2]} does not match the grid {grid.shape}")
    if grid.georeferenced:
        img, bounds = to_web_mercator(rgba, grid, max_side)
    else:
        img, bounds = downsample(rgba, max_side), image_bounds(grid.height, grid.width, offset)
    return Overlay(name, png_bytes(img), bounds, img.shape[1], img.shape[0], legend, opacity)


def focus_bounds(inner: Bounds, outer: Bounds, inner_shape: tuple[int, int], margin_px: int = 40,
                 least: float = 0.05) -> Bounds:
    """A map view of a region with its surroundings: ``inner`` (the region's map bounds, ``inner_shape``
    (rows, columns) pixels) grown on each side by ``margin_px`` pixels' worth, and by at least
    ``least`` of its size, within ``outer`` (the image's bounds; the view always holds ``inner``). A
    region wholly off the image is shown with the image, both in one view: it is refused, and the
    image is where to draw it again."""
    (s, w), (n, e) = inner
    (o_s, o_w), (o_n, o_e) = outer
    if s >= o_n or n <= o_s or w >= o_e or e <= o_w:  # (no overlap)
        return (min(s, o_s), min(w, o_w)), (max(n, o_n), max(e, o_e))
    dy = (n - s) * max(least, margin_px / max(inner_shape[0], 1))
    dx = (e - w) * max(least, margin_px / max(inner_shape[1], 1))
    return ((max(s - dy, min(o_s, s)), max(w - dx, min(o_w, w))), (min(n + dy, max(o_n, n)), min(e + dx, max(o_e, e))))


def image_preview(path, band_map: dict[str, int] | None = None,
                  max_side: int = MAX_SIDE) -> tuple[Overlay, Grid, tuple[str, ...], Limits | None, int]:
    """True-colour preview of a whole image (the Region page's backdrop): its overlay (the gaps in grey
    hatching), its grid, the reader's warnings about its values (:func:`core.reflectance.reflectance_warnings`),
    its colour stretch (:func:`band_limits`, for its regions' layers) and its number of pixels without data.
    A large image is read as an overview of twice ``max_side`` (a whole Sentinel-2 tile read at full size
    took 8 GB).

    Raises:
        InputNotFoundError, CorruptFileError, BandError, InvalidDataError: as :class:`core.raster.ImageReader`.
    """
    from core.raster import ImageReader

    with ImageReader(path, band_map) as reader:
        grid, warnings = reader.grid, reader.warnings
        feats, valid, seen = reader.read_overview(2 * max_side)
    limits = band_limits(feats, valid)
    # the gaps in grey hatching (transparent, they were the map's background), lines kept by the downsampling
    rgba = hatch_gaps(true_colour(feats, valid, limits), valid, downsample_step(valid.shape, max_side))
    preview = make_overlay("Image", rgba, seen, (0, 0), None, 1.0, max_side)
    if not grid.georeferenced:  # in the image's own pixels, not the overview's
        preview = replace(preview, bounds=map_bounds(grid))
    missing = valid.size - valid.sum() if seen is grid else round(grid.width * grid.height * (1 - valid.mean()))
    return preview, grid, tuple(warnings), limits, int(missing)


def map_bounds(grid: Grid, offset: tuple[int, int] = (0, 0)) -> Bounds:
    """Map bounds of a grid: Simple-CRS pixel bounds or lat/lon."""
    if grid.georeferenced:
        return lonlat_bounds(grid)
    return image_bounds(grid.height, grid.width, offset)


def window_map_bounds(grid: Grid, window) -> Bounds:
    """Map bounds of a pixel ``window`` (``row_off``, ``col_off``, ``height``, ``width``) of ``grid``:
    Simple-CRS pixel bounds, or lat/lon.

    Raises:
        InvalidDataError: as :func:`lonlat_bounds`.
    """
    if not grid.georeferenced:
        return image_bounds(window.height, window.width, (window.row_off, window.col_off))
    return lonlat_bounds(window_grid(grid, window))
