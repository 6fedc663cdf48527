"""Shared fixtures: real data cut from the sample scene, georeferenced fixtures, small models."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
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


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory) -> tuple[Path, Path]:
    """A real 320 x 288 window of the sample scene (image, CDL labels)."""
    d = tmp_path_factory.mktemp("scene")
    win = Window(200, 300, 320, 288)
    return cut(SAMPLE_IMAGE, d / "small_rgbn.tif", win), cut(SAMPLE_LABELS, d / "small_cdl.tif", win)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """An untrained light U-Net saved with a real card (normalization from the sample scene)."""
    from core.dataset import compute_normalization, load_scenes
    from core.model import ModelCard, build_unet, save_model
    from core.raster import FEATURE_BANDS

    norm = compute_normalization(load_scenes([f"{SAMPLE_IMAGE}:{SAMPLE_LABELS}"]))
    model = build_unet("light")
    card = ModelCard(preset="light", bands=FEATURE_BANDS, normalization=norm, notes="untrained, for tests")
    return save_model(model, card, tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture(scope="session")
def shipped():
    """The shipped weights (the real trained model)."""
    from core.model import load_model

    return load_model()


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
