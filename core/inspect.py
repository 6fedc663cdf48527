"""One pixel of a scene, read at a point of the map: what its layers hold there (reflectance, NDVI,
crop probability, labels), for checking a prediction by eye.

The maps draw a georeferenced scene in longitude/latitude and a non-georeferenced one in image
coordinates (Leaflet's simple CRS: lng = column, lat = -row, the scene at its offset in the source
image); :func:`pixel_at` undoes either.
"""

from __future__ import annotations

import math

import numpy as np

from core.labels import CROP, NODATA, class_name
from core.predict import percent_cut, whole_percent
from core.grid import Grid


def pixel_at(lng: float, lat: float, grid: Grid, offset: tuple[int, int] = (0, 0)) -> tuple[int, int] | None:
    """(row, col) of the pixel of ``grid`` under the map point (``lng``, ``lat``): a point in
    longitude/latitude for a georeferenced grid, else in image coordinates of a scene drawn at
    ``offset`` (row, col); None outside the grid or for a point that is not a number."""
    if not (math.isfinite(lng) and math.isfinite(lat)):
        return None
    if grid.georeferenced:
        if abs(lat) > 90:  # no place (PROJ refuses it), e.g. a click in another image's pixel coordinates
            return None
        from rasterio._err import CPLE_BaseError  # (GDAL's errors; rasterio.errors does not name them)
        from rasterio.transform import Affine
        from rasterio.warp import transform

        try:
            xs, ys = transform("EPSG:4326", grid.crs, [lng], [lat])
        except (CPLE_BaseError, ValueError):  # outside the projection's domain (a UTM zone's far side): no pixel
            return None
        col, row = ~Affine(*grid.transform) @ (xs[0], ys[0])
    else:
        col, row = lng - offset[1], -lat - offset[0]
    if not (math.isfinite(col) and math.isfinite(row)):
        return None
    r, c = math.floor(row), math.floor(col)
    return (r, c) if 0 <= r < grid.height and 0 <= c < grid.width else None


def place(lng: float, lat: float, row: int, col: int, grid: Grid, offset: tuple[int, int] = (0, 0)) -> str:
    """Where a clicked pixel is, for people: latitude and longitude on a georeferenced grid, else
    its row and column in the source image (the scene drawn at ``offset``)."""
    if grid.georeferenced:
        lng = (lng + 180.0) % 360.0 - 180.0  # a map over the 180th meridian goes on past 180 (181 E is 179 W)
        return f"{abs(lat):.5f}° {'N' if lat >= 0 else 'S'}, {abs(lng):.5f}° {'E' if lng >= 0 else 'W'}"
    return f"Pixel row {row + offset[0]:,}, column {col + offset[1]:,}"


def describe_pixel(row: int, col: int, features: np.ndarray, valid: np.ndarray,
                   probability: np.ndarray | None = None, threshold: float | None = None,
                   labels: np.ndarray | None = None, codes: np.ndarray | None = None,
                   label_map: str | None = None) -> str:
    """One line on the pixel (``row``, ``col``) of a scene: its R, G, B, NIR reflectance and NDVI
    (``features``, (h, w, 5)) or that it has no data, the crop ``probability`` (0-1, NaN = no data) and what it is at ``threshold``, and the
    ``labels`` (1/0/255) with the product's class (``codes``, -1 = none, named by ``label_map``) and,
    with both, the verdict: "agrees", "false crop" or "missed crop".

    Raises:
        IndexError: the pixel is outside the arrays (see :func:`pixel_at`), negative indices too.
    """
    if not (0 <= row < valid.shape[0] and 0 <= col < valid.shape[1]):  # (numpy reads -1 as the last one)
        raise IndexError(f"pixel ({row}, {col}) is outside the scene's {valid.shape[0]} x {valid.shape[1]} px")
    parts = []
    if not valid[row, col]:
        parts.append("no image data")
    else:
        r, g, b, nir, ndvi = (float(v) for v in features[row, col, :5])
        parts.append(f"NDVI {ndvi:.2f} (reflectance R {r:.3f}, G {g:.3f}, B {b:.3f}, NIR {nir:.3f})")
    predicted = None  # crop or not at the threshold
    if probability is not None:
        p = float(probability[row, col])
        if not math.isfinite(p):
            parts.append("no prediction")
        else:  # in whole percent, as probability.tif stores it and the crop layer thresholds it
            pct = int(whole_percent(np.array(p)))
            if threshold is not None:
                predicted = pct >= percent_cut(threshold)
            at = "" if predicted is None else f": {'crop' if predicted else 'not crop'} at threshold {threshold:.2f}"
            parts.append(f"crop probability {pct / 100:.2f}{at}")  # (on the 0-1 scale of the legend and threshold)
    if labels is not None:
        lab = int(labels[row, col])
        text = "no label" if lab == NODATA else "labelled crop" if lab == CROP else "labelled not crop"
        code = int(codes[row, col]) if codes is not None else -1
        if code >= 0 and label_map and label_map != "binary":
            text += f" ({code} {class_name(label_map, code)})"
        if predicted is not None and lab != NODATA:  # the verdict, in the disagreement map's words
            text += (": agrees" if predicted == (lab == CROP) else ": false crop" if predicted else ": missed crop")
        parts.append(text)
    return "; ".join(parts) + "." if parts else ""
