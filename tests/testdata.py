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
