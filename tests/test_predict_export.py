import json

import numpy as np
import pytest
import rasterio

from testdata import FLANDERS_S2
from core.errors import CorruptFileError, ModelMismatchError
from core.patches import export_files, write_image_export
from core.predict import predict_image
from core.predict_export import predict_export
from core.raster import ImageReader


def test_image_export_predicts_like_the_geotiff(tiny_model_path, small_scene, tmp_path):
    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=64)
    s = predict_export(mixer, tmp_path / "a", tiny_model_path)
    predict_image(img, tmp_path / "b", tiny_model_path)
    with rasterio.open(tmp_path / "a" / "probability.tif") as a, rasterio.open(tmp_path / "b" / "probability.tif") as b:
        pa, pb = a.read(1), b.read(1)
        assert a.transform == b.transform  # placed by the mixer
        assert a.width == 384 and a.height == 384  # whole patches, as Earth Engine pads them
    pa = pa[: pb.shape[0], : pb.shape[1]]
    assert np.array_equal(pa == 255, pb == 255)
    v = pb != 255
    # different tilings of the same image with enough context agree closely
    assert np.abs(pa[v].astype(int) - pb[v]).mean() < 3
    assert s["kernel"] == 64 and s["valid_pixels"] == int(v.sum())


def test_georeferenced_export_keeps_its_crs(tiny_model_path, tmp_path):
    with ImageReader(FLANDERS_S2) as r:
        mixer = write_image_export(tmp_path / "s2", r, patch=32, kernel=32)
    assert json.loads(mixer.read_text())["projection"]["crs"] == "EPSG:32631"
    s = predict_export(mixer, tmp_path / "o", tiny_model_path)
    with rasterio.open(tmp_path / "o" / "crop_mask.tif") as m:
        assert m.crs.to_epsg() == 32631 and m.transform.c == 501360.0
    assert s["crop_area_ha"] == pytest.approx(s["crop_pixels"] * 0.01)


def test_export_errors(tiny_model_path, small_scene, tmp_path):
    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "odd", r, patch=128, kernel=2)
    with pytest.raises(ModelMismatchError, match="multiple of 16"):
        predict_export(mixer, tmp_path / "o", tiny_model_path)
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "cut", r, patch=128, kernel=64, records_per_file=3)
    import os

    os.remove(export_files(mixer)[-1])
    with pytest.raises(CorruptFileError, match="missing"):
        predict_export(mixer, tmp_path / "p", tiny_model_path)
    assert not (tmp_path / "p" / "probability.tif").exists()
