"""Paths of the real test data and small helpers that write rasters (shared by the tests)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import rasterio
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_IMAGE = ROOT / "assets" / "sample" / "sample_rgbn.tif"
SAMPLE_LABELS = ROOT / "assets" / "sample" / "sample_cdl.tif"
GEOREF = Path(__file__).resolve().parent / "data" / "georef"
FLANDERS_S2 = GEOREF / "00002806639B424A_S2L2A_2017-08-27_B02_B03_B04_B08.tif"
FLANDERS_LABELS = GEOREF / "00002806639B424A_label_LC_CT.tif"
FLANDERS_L8 = GEOREF / "000028085BF08E7E_L8SR_2019-08-05_B02_B03_B04_B05.tif"
FTW = GEOREF / "ftw_austria_s2_2021-06-17_window.tif"


def cut(src_path: Path, dst_path: Path, window: Window, **changes) -> Path:
    """Write a window of a real raster to ``dst_path`` (keeping band descriptions)."""
    with rasterio.open(src_path) as src:
        prof = src.profile.copy()
        prof.update(width=int(window.width), height=int(window.height), transform=src.window_transform(window))
        prof.update(changes)
        data = src.read(window=window)
        with rasterio.open(dst_path, "w", **prof) as dst:
            dst.write(data)
            dst.descriptions = src.descriptions
    return dst_path


def write_raster(path: Path, data: np.ndarray, crs=None, transform=None, nodata=None, descriptions=None) -> Path:
    """Write a small (bands, h, w) array as a GeoTIFF."""
    from affine import Affine

    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform or Affine(30, 0, 0, 0, -30, 0), nodata=nodata) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)
    return path


#: six surveyed fields of 20 x 20 px in the 320 x 288 px small scene (row, col of their top-left corner)
SURVEYED = ((10, 10), (40, 150), (120, 60), (150, 250), (230, 20), (250, 290))


def surveyed_labels(labels: Path, out: Path) -> Path:
    """A copy of a label raster that keeps its codes in the :data:`SURVEYED` fields only (0, CDL's no
    data, elsewhere), as labels of surveyed fields leave an image."""
    with rasterio.open(labels) as src:
        profile, codes = src.profile, src.read(1)
    kept = np.zeros_like(codes)
    for r, c in SURVEYED:
        kept[r : r + 20, c : c + 20] = codes[r : r + 20, c : c + 20]
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(kept, 1)
    return out


def box_ring(x0: float, y0: float, x1: float, y1: float) -> list:
    """The coordinates of a GeoJSON Polygon of the box (x0, y0) - (x1, y1)."""
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def feature_collection(*features: tuple[dict, list], **top) -> dict:
    """A GeoJSON FeatureCollection of Polygon features given as (properties, coordinates), with ``top``
    members (e.g. crs="image")."""
    return {"type": "FeatureCollection", **top, "features": [
        {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": coords}}
        for props, coords in features]}
