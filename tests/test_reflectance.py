import re
import warnings

import numpy as np
from rasterio.windows import Window
import pytest
from affine import Affine

from testdata import FLANDERS_S2, FTW, SAMPLE_IMAGE, write_raster
from core.errors import InvalidDataError
from core.labels import get_class_map
from core.bands import parse_band_spec
from core.raster import ImageReader, read_image, read_labels

UTM = "EPSG:32631"
T10 = Affine(10, 0, 500000, 0, -10, 5600000)


def test_nan_reflectance_is_an_error_unless_declared_nodata(tmp_path):
    data = np.full((4, 16, 16), 0.2, np.float32)
    data[:, 3, 4] = np.nan
    p = write_raster(tmp_path / "nan.tif", data, descriptions=["R", "G", "B", "NIR"])
    with pytest.raises(InvalidDataError, match="NaN.*declares no NaN nodata"):
        ImageReader(p)  # refused on opening: the sample of pixels shows it
    big = np.full((4, 600, 600), 0.2, np.float32)
    big[:, 140, 140] = np.nan  # between the sampled windows: found when read
    with ImageReader(write_raster(tmp_path / "nan600.tif", big, descriptions=["R", "G", "B", "NIR"])) as r:
        r.read(Window(0, 0, 100, 100))
        with pytest.raises(InvalidDataError, match="NaN"):
            r.read()
    q = write_raster(tmp_path / "nan_nodata.tif", data, nodata=np.nan, descriptions=["R", "G", "B", "NIR"])
    feats, valid, _ = read_image(q)
    assert not valid[3, 4] and valid.sum() == 255


def test_negative_reflectance_is_an_error(tmp_path):
    data = np.full((4, 16, 16), 500, np.int16)
    data[0, 2, 2] = -3000
    p = write_raster(tmp_path / "neg.tif", data, descriptions=["R", "G", "B", "NIR"])
    with pytest.raises(InvalidDataError, match="negative"):
        ImageReader(p)


def test_features_made_in_strips_are_the_whole_windows(monkeypatch):
    """to_features works a strip of rows at a time (its temporaries of a 15 Mpx window took 760 MB): the
    same features, and a refusal said of the whole window, as before."""
    from core import reflectance as R

    rng = np.random.default_rng(3)
    raw = rng.integers(100, 9000, (4, 37, 23)).astype(np.int16)  # (some just below 0 with the offset: clipped)
    valid = rng.random((37, 23)) > 0.2
    scale, offset = np.full(4, 2.75e-5), np.full(4, -0.2)
    whole = R.to_features(raw, valid, scale, offset, "img.tif")
    monkeypatch.setattr(R, "FEATURE_STRIP_PIXELS", 5 * 23)  # strips of 5 rows, the last of 2
    np.testing.assert_array_equal(R.to_features(raw, valid, scale, offset, "img.tif"), whole)
    raw[:, 30, 4], valid[30, 4] = -9000, True
    with pytest.raises(InvalidDataError) as strips:
        R.to_features(raw, valid, scale, offset, "img.tif")
    monkeypatch.setattr(R, "FEATURE_STRIP_PIXELS", 1 << 20)
    with pytest.raises(InvalidDataError) as at_once:
        R.to_features(raw, valid, scale, offset, "img.tif")
    assert str(strips.value) == str(at_once.value)


def test_a_value_no_offset_gives_is_refused_in_any_window():
    """A pixel the image's sample missed is refused when its window is read (no product gives < -0.2)."""
    from core.reflectance import to_features

    raw = np.full((4, 8, 8), 0.1, np.float32)
    raw[2, 3, 3] = -0.3
    valid = np.ones((8, 8), bool)
    with pytest.raises(InvalidDataError, match="down to -0.300"):
        to_features(raw, valid, np.ones(4), np.zeros(4), "img.tif")
    valid[3, 3] = False  # unless it is no data
    assert to_features(raw, valid, np.ones(4), np.zeros(4), "img.tif")[3, 3].max() == 0.0


def test_negative_nodata_value_is_not_negative_reflectance(tmp_path):
    data = np.full((4, 16, 16), 500, np.int16)
    data[:, 2:5, 2:5] = -9999  # Landsat-style fill value, declared as nodata
    data[1, 8, 8] = -100  # slightly negative but valid: clipped to 0, not an error (> -0.05)
    p = write_raster(tmp_path / "fill.tif", data, nodata=-9999, descriptions=["R", "G", "B", "NIR"])
    with ImageReader(p) as r:
        feats, valid = r.read()
    assert valid.sum() == 256 - 9 and feats[~valid].max() == 0
    assert feats[8, 8, 1] == 0.0 and feats[valid, :4].min() == 0.0


def test_no_data_in_one_band_makes_the_pixel_no_data(tmp_path):
    """A pixel whose fill value is in one band only (a band's own gap, e.g. a Landsat 7 stripe in
    one band) was kept while the others were real: its fill value then read as reflectance (-0.9999),
    refused as "negative" or predicted from. No data in any band is no data."""
    raw = _sample_window()
    want = _write_like(tmp_path / "whole.tif", SAMPLE_IMAGE, raw, nodata=-9999)
    with ImageReader(want) as r:
        _, want_valid = r.read()
    gaps = np.zeros(raw.shape[1:], bool)
    gaps[100:103, 50:52] = gaps[7, 7] = True
    assert want_valid[gaps].all()
    raw[2, 100:103, 50:52] = -9999  # blue only
    raw[0, 7, 7] = -9999  # red only
    with ImageReader(_write_like(tmp_path / "gaps.tif", SAMPLE_IMAGE, raw, nodata=-9999)) as r:
        feats, valid = r.read()
    assert np.array_equal(valid, want_valid & ~gaps)
    assert feats[gaps].max() == 0


@pytest.mark.parametrize("dtype, fill, named", [("uint16", 65535, "65535"), ("int16", 32767, "32767"),
                                                 ("float32", np.finfo(np.float32).max, "3.40282e+38")])
def test_values_above_any_reflectance_are_no_data_with_a_warning(tmp_path, dtype, fill, named):
    """An undeclared fill above any reflectance (65535, 32767, float32's largest) is read as no data:
    fed to the model, it moved the probabilities around it (float32's largest made NaN that wiped a
    188 px square of the map); the warning names the value to declare."""
    rng = np.random.default_rng(0)
    refl = rng.uniform(0.02, 0.4, (4, 64, 64))
    data = (refl * 10000).astype(dtype) if dtype != "float32" else refl.astype(dtype)
    data[:, 10:20, 10:20] = fill  # in the sampled window
    data[2, 40, 40] = fill  # one band alone is enough
    p = write_raster(tmp_path / "fill.tif", data, descriptions=["R", "G", "B", "NIR"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning from the fill's values
        with ImageReader(p) as r:
            feats, valid = r.read()
            assert np.array_equal(r.read_valid(), valid)
            text = " ".join(r.warnings)
    assert valid.sum() == 64 * 64 - 101 and not valid[10:20, 10:20].any() and not valid[40, 40]
    # the rest read at its own scale (the float image's fill made it x 10000: every pixel near 0)
    assert np.isfinite(feats).all() and feats[~valid].max() == 0 and 0.39 < feats[valid, :4].max() < 0.4
    assert "2.5% of the sampled pixels of fill.tif have reflectance above 2" in text
    assert f"most hold {named} in every band" in text and f"gdal_edit.py -a_nodata {named}" in text


@pytest.mark.parametrize("share", [0.05, 0.6])
def test_an_undeclared_fill_does_not_decide_the_scale(tmp_path, share):
    """A float image of reflectance 0-1 framed by an undeclared fill (65535 in every band) over 5%, or
    most, of it is read as 0-1, and the same image x 10000 as x 10000."""
    rng = np.random.default_rng(1)
    refl = rng.uniform(0.02, 0.4, (4, 64, 64))
    rows = round(64 * share)
    for name, data, dtype in (("unit", refl, "float32"), ("x10000", refl * 10000, "float32"), ("int", refl * 10000, "int16")):
        data = data.astype(dtype)
        data[:, :rows] = 65535 if dtype == "float32" else 32767
        with ImageReader(write_raster(tmp_path / f"{name}.tif", data, descriptions=["R", "G", "B", "NIR"])) as r:
            feats, valid = r.read()
        assert not valid[:rows].any() and valid[rows:].all(), name
        assert np.allclose(feats[rows:, :, :4], np.moveaxis(refl[:, rows:], 0, -1), atol=1e-4), name


def test_a_band_mostly_of_an_undeclared_fill_is_refused_naming_the_band_and_the_value(tmp_path):
    """Over half the NIR band at 65535 (the other bands fine): the message named the band's median
    reflectance beside the stored values of every band, and no fill; it now names the value to declare."""
    rng = np.random.default_rng(2)
    data = (rng.uniform(0.02, 0.4, (4, 64, 64)) * 10000).astype(np.uint16)
    data[3, :40] = 65535
    with pytest.raises(InvalidDataError) as info:
        ImageReader(write_raster(tmp_path / "nir.tif", data, descriptions=["R", "G", "B", "NIR"]))
    said = str(info.value)
    assert "half or more of its NIR pixels hold 65535, reflectance 6.55, far above 1" in said
    assert "gdal_edit.py -a_nodata 65535 FILE.tif" in said
    # declared, those pixels are no data and the rest is read
    with ImageReader(write_raster(tmp_path / "ok.tif", data, nodata=65535, descriptions=["R", "G", "B", "NIR"])) as r:
        assert r.read()[1].sum() == 24 * 64


def test_bright_but_possible_reflectance_is_kept(tmp_path):
    """Reflectance up to 2 (bright cloud, snow; Landsat Collection 2 stores up to 1.6) is data."""
    data = np.random.default_rng(0).integers(50, 4000, (4, 32, 32)).astype(np.int16)
    data[:, :4, :4] = 16000
    with ImageReader(write_raster(tmp_path / "b.tif", data, descriptions=["R", "G", "B", "NIR"])) as r:
        feats, valid = r.read()
        assert valid.all() and r.warnings == () and feats[0, 0, 0] == pytest.approx(1.6)


def test_complex_values_are_refused(tmp_path):
    """A complex raster (radar data) is neither reflectance nor class codes: one clear error."""
    data = (np.random.default_rng(0).random((4, 64, 64)) * 0.3 + 0.01).astype(np.complex64)
    img = write_raster(tmp_path / "c.tif", data, descriptions=["R", "G", "B", "NIR"])
    with pytest.raises(InvalidDataError, match="complex64 values, not reflectance"):
        ImageReader(img)
    labels = write_raster(tmp_path / "l.tif", np.ones((64, 64), np.complex64))
    with pytest.raises(InvalidDataError, match="not class codes"):
        read_labels(labels, get_class_map("binary"))


def test_minus_infinity_as_the_declared_nodata_is_no_data(tmp_path):
    """An infinite nodata value (-inf) is no data like any other, not 'infinite reflectance'."""
    from rasterio.windows import Window

    data = (np.random.default_rng(0).random((4, 300, 300)) * 0.3 + 0.01).astype(np.float32)
    data[:, :10] = -np.inf
    img = write_raster(tmp_path / "inf.tif", data, nodata=-np.inf, descriptions=["R", "G", "B", "NIR"])
    with ImageReader(img) as r:
        feats, valid = r.read()
        assert valid.sum() == 290 * 300 and not valid[:10].any() and np.isfinite(feats).all()
        _, valid = r.read(Window(-5, -5, 50, 50))  # beyond the edges: filled with the nodata value
        assert valid.sum() == 45 * 35
    data[0, 50, 50] = np.inf  # infinity that is not the nodata value is still refused
    with pytest.raises(InvalidDataError, match="infinite reflectance in 1 sampled pixels"):
        ImageReader(write_raster(tmp_path / "inf2.tif", data, nodata=-np.inf, descriptions=["R", "G", "B", "NIR"]))


@pytest.mark.parametrize("fill, nodata", [(0, None), (np.nan, np.nan), (-9999, -9999)])
def test_an_image_with_no_data_anywhere_is_said_so(tmp_path, fill, nodata):
    """info said nothing of an image of zeros (or its nodata value, or NaN) only, and resample wrote a
    copy of no data with exit status 0."""
    from core.errors import NoDataError
    from core.resample import resample_files

    data = np.full((4, 300, 300), fill, np.float32)
    img = write_raster(tmp_path / "empty.tif", data, nodata=nodata, descriptions=["R", "G", "B", "NIR"],
                       crs="EPSG:32631", transform=Affine(10, 0, 500000, 0, -10, 5600000))
    with ImageReader(img) as r:
        assert [w for w in r.warnings if "none of the pixels of empty.tif sampled across it has data" in w]
    with pytest.raises(NoDataError, match="empty.tif has no pixel with data in every band"):
        resample_files(img, tmp_path / "out.tif", 30)
    assert not (tmp_path / "out.tif").exists()
    with ImageReader(FLANDERS_S2) as r:  # (an image with data: no such warning)
        assert not [w for w in r.warnings if "none of the pixels" in w]


def test_the_scale_of_an_image_with_wide_no_data_margins_comes_from_its_data(tmp_path):
    """The sampled windows can all fall in the no-data margins around a small block of data: the
    scale is then detected (and the values checked) on pixels spread over the whole image, not
    taken as 1 unchecked (float reflectance x 10000 was read as reflectance in the thousands)."""
    import rasterio

    with rasterio.open(SAMPLE_IMAGE) as src:
        real = src.read(window=((0, 200), (0, 200)))
    data = np.zeros((4, 2000, 2000), np.float32)
    data[:, 400:600, 400:600] = real  # float reflectance x 10000
    with ImageReader(write_raster(tmp_path / "f.tif", data, descriptions=["R", "G", "B", "NIR"])) as r:
        feats, valid = r.read()
        assert r.scale == pytest.approx(1e-4) and valid.sum() == 200 * 200
    same, same_valid, _ = read_image(SAMPLE_IMAGE)
    ok = same_valid[:200, :200] & valid[400:600, 400:600]
    assert ok.mean() > 0.99
    np.testing.assert_allclose(feats[400:600, 400:600][ok], same[:200, :200][ok], rtol=1e-6)
    display = np.zeros((4, 2000, 2000), np.uint8)
    display[:, 400:600, 400:600] = np.clip(real // 20, 1, 255)  # 8-bit display values are refused
    with pytest.raises(InvalidDataError, match="8-bit"):
        ImageReader(write_raster(tmp_path / "b.tif", display, descriptions=["R", "G", "B", "NIR"]))


def _write_like(path, src_path, data, scales=None, offsets=None, **changes):
    """``data`` (bands, h, w) as a GeoTIFF with the grid and band names of ``src_path``'s top-left corner."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(src_path) as src:
        prof = src.profile.copy()
        descriptions = src.descriptions
        transform = src.window_transform(Window(0, 0, data.shape[2], data.shape[1]))
    prof.update(width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype=data.dtype, transform=transform,
                tiled=False, **changes)
    prof.pop("blockxsize", None), prof.pop("blockysize", None)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data)
        dst.descriptions = descriptions
        if scales is not None:
            dst.scales, dst.offsets = scales, offsets
    return path


def _sample_window(size=300):
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(SAMPLE_IMAGE) as src:
        return src.read(window=Window(0, 0, size, size))


def test_scale_offset_metadata_is_applied(tmp_path):
    """Landsat Collection 2 SR as distributed: uint16, scale 2.75e-5, offset -0.2 (reflectance 0.2 too high without the offset)."""
    raw = _sample_window()
    with ImageReader(write_raster(tmp_path / "ref.tif", raw.astype(np.float32) / 10000, nodata=0,
                                  descriptions=["R", "G", "B", "NIR"])) as r:
        want, want_valid = r.read()
    c2 = np.where(raw == 0, 0, np.round((raw / 10000 + 0.2) / 2.75e-5)).astype(np.uint16)  # 0 stays fill
    p = _write_like(tmp_path / "lc2.tif", SAMPLE_IMAGE, c2, scales=[2.75e-5] * 4, offsets=[-0.2] * 4, nodata=0)
    with ImageReader(p) as r:
        feats, valid = r.read()
    assert np.array_equal(valid, want_valid)
    np.testing.assert_allclose(feats[valid, :4], want[valid, :4], atol=2e-5)
    assert r.scale == pytest.approx(2.75e-5) and r.offset == pytest.approx(-0.2)
    # a scale alone (no offset) still works as before
    p2 = _write_like(tmp_path / "scaled.tif", SAMPLE_IMAGE, raw, scales=[1e-4] * 4, offsets=[0.0] * 4)
    with ImageReader(p2) as r:
        np.testing.assert_allclose(r.read()[0][valid], want[valid], atol=1e-6)
    # damaged metadata: said as such (reflectance "nan" was said to look like 8-bit display values)
    p3 = _write_like(tmp_path / "nan.tif", SAMPLE_IMAGE, raw, scales=[float("nan")] * 4, offsets=[0.0] * 4)
    with pytest.raises(InvalidDataError, match=r"nan.tif's scale and offset metadata are nan, nan, nan, nan and 0, 0, "
                                               r"0, 0, not all finite numbers: the metadata is damaged"):
        ImageReader(p3)


def test_values_that_are_not_reflectance_are_refused(tmp_path):
    raw = _sample_window()
    big = _write_like(tmp_path / "x10.tif", SAMPLE_IMAGE, raw.astype(np.int32) * 10)  # reflectance up to 5.4
    with pytest.raises(InvalidDataError, match="too large"):
        ImageReader(big)
    display = np.clip(raw / raw.max() * 255, 0, 255).astype(np.uint8)  # 8-bit display values, read as x 10000
    with pytest.raises(InvalidDataError, match="8-bit"):
        ImageReader(_write_like(tmp_path / "u8.tif", SAMPLE_IMAGE, display, nodata=None))
    with pytest.raises(InvalidDataError, match="8-bit"):  # the same values in a 16-bit file
        ImageReader(_write_like(tmp_path / "u16.tif", SAMPLE_IMAGE, display.astype(np.uint16), nodata=None))
    with pytest.raises(InvalidDataError, match="percent"):  # floats in percent (0-100): taken as x 10000, too dark
        ImageReader(_write_like(tmp_path / "pct.tif", SAMPLE_IMAGE, raw.astype(np.float32) / 100, nodata=None))


def _real_images():
    """Every real image in the repository (the sample scene and the georeferenced fixtures)."""
    from testdata import GEOREF

    return [SAMPLE_IMAGE, FTW, *sorted(GEOREF.glob("*_B0*.tif"))]


def test_every_real_image_passes_the_reflectance_checks():
    images = _real_images()
    assert len(images) >= 5
    for path in images:
        bands = parse_band_spec("1,2,3,4") if "ftw" in str(path) else None
        with ImageReader(path, bands) as r:
            feats, valid = r.read()
            assert valid.any() and feats[valid, :4].max() <= 1.0, path
            assert r.warnings == (), path


def test_reflectance_stored_x_1000_read_as_x_10000_is_warned_of(tmp_path):
    """A tenth of the true reflectance passed every check, and the crop map came out with a third of the crop."""
    import rasterio

    with rasterio.open(SAMPLE_IMAGE) as src:
        stored, descriptions = src.read(), src.descriptions
    dim = write_raster(tmp_path / "x1000.tif", (stored // 10).astype(np.int16), nodata=-32768, descriptions=descriptions)
    with ImageReader(dim) as r:
        assert len(r.warnings) == 1
        assert re.search(r"brightest pixels of x1000.tif have reflectance 0.0\d\d or less .* reflectance x 1000, not "
                         r"x 10000, set the file's scale \(gdal_edit.py -scale 0.001 FILE.tif\)", r.warnings[0])
    # the same dim values stored as reflectance 0-1 (a scene over a lake, say): nothing to set, nothing said
    dim_floats = write_raster(tmp_path / "dim.tif", np.where(stored == -32768, np.nan, (stored // 10) / 10000).astype(np.float32),
                              nodata=float("nan"), descriptions=descriptions)
    with ImageReader(dim_floats) as r:
        assert r.scale == 1.0 and r.warnings == ()



def test_bright_clouds_and_snow_are_still_reflectance(tmp_path):
    """Clouds and snow may exceed 1 a little: a scene 40% covered by them is accepted; only a median far above 1 is refused."""
    import rasterio

    with rasterio.open(FLANDERS_S2) as src:
        data = src.read()
    data[:, : int(data.shape[1] * 0.4)] = 1.08
    p = _write_like(tmp_path / "cloudy.tif", FLANDERS_S2, data)
    with ImageReader(p) as r:
        assert r.scale == 1.0
        assert r.read()[0][..., :4].max() == pytest.approx(1.08)


def test_a_few_slightly_negative_pixels_are_clipped_many_are_refused(tmp_path):
    """Landsat Collection 2 and Sentinel-2 (with their offsets) hold a few slightly negative pixels over
    water and shadow: they are clipped to 0. A large share, or a value no offset can give, is an error."""
    raw = _sample_window()
    c2 = np.where(raw == 0, 0, np.round((raw / 10000 + 0.2) / 2.75e-5)).astype(np.uint16)
    few = c2.copy()
    few[3, :5, :5] = 5000  # 25 NIR pixels at -0.0625
    with ImageReader(_write_like(tmp_path / "few.tif", SAMPLE_IMAGE, few, scales=[2.75e-5] * 4,
                                 offsets=[-0.2] * 4, nodata=0)) as r:
        feats, valid = r.read()
    assert valid[:5, :5].all() and (feats[:5, :5, 3] == 0).all()
    many = c2.copy()
    many[3, :, : many.shape[2] // 4] = 5000  # a quarter of the pixels: a wrong offset, not water
    with pytest.raises(InvalidDataError, match="negative"):  # on opening: the image's sample shows it
        ImageReader(_write_like(tmp_path / "many.tif", SAMPLE_IMAGE, many, scales=[2.75e-5] * 4,
                                offsets=[-0.2] * 4, nodata=0))


@pytest.mark.parametrize("nodata", [-9999.0, float("nan")])
def test_badly_scaled_negative_reflectance_is_refused_whatever_the_nodata(tmp_path, nodata):
    """62% of the valid pixels at -0.5..-0.2 (a wrong offset) are refused, also beside a NaN no-data
    pixel (whose NaN once made the window's minimum NaN and skipped the test)."""
    rng = np.random.default_rng(1)
    data = (rng.random((4, 64, 64)) * 0.3 - 0.5).astype(np.float32)
    data[:, 40:, :] = rng.random((4, 24, 64)) * 0.3 + 0.05
    data[:, 0, 0] = nodata  # one no-data pixel
    p = write_raster(tmp_path / "img.tif", data, crs=UTM, transform=T10, nodata=nodata,
                     descriptions=["R", "G", "B", "NIR"])
    with pytest.raises(InvalidDataError, match="negative reflectance"):
        with ImageReader(p) as r:
            r.read()
    # the share is refused too, not only the values under -0.2: 30% of the pixels at -0.1
    data = rng.random((4, 64, 64)).astype(np.float32) * 0.3 + 0.05
    data[3, :20, :] = -0.1
    data[:, 0, 0] = nodata
    p = write_raster(tmp_path / "share.tif", data, crs=UTM, transform=T10, nodata=nodata,
                     descriptions=["R", "G", "B", "NIR"])
    with pytest.raises(InvalidDataError, match="31.2% of the pixels"):
        ImageReader(p)


def _scene_with_dark_corner(path, nodata, darkest=-0.06, side=96):
    """A float32 reflectance image (512 x 512) whose top-left ``side`` x ``side`` corner is dark water
    at ``darkest`` (over-correction): 3.5% of its pixels by default; one no-data pixel."""
    rng = np.random.default_rng(0)
    data = (rng.random((4, 512, 512)) * 0.3 + 0.05).astype(np.float32)
    data[:, :side, :side] = darkest
    data[:, 200, 200] = nodata
    return write_raster(path, data, crs=UTM, transform=T10, nodata=nodata, descriptions=["R", "G", "B", "NIR"])


@pytest.mark.parametrize("nodata", [-9999.0, float("nan")])
def test_the_negative_share_is_judged_on_the_image_not_on_each_window(tmp_path, nodata):
    """A window mostly over a dark lake (or a mountain's shadow) is read like the rest of an image
    that is accepted as a whole, so a prediction cannot fail half-way; a value no offset gives is
    refused wherever it is."""
    from rasterio.windows import Window

    with ImageReader(_scene_with_dark_corner(tmp_path / "img.tif", nodata)) as r:
        feats, valid = r.read()
        assert valid.sum() == 512 * 512 - 1 and feats[:96, :96, :4].max() < 1e-30  # clipped (to the least float > 0)
        feats, valid = r.read(Window(0, 0, 128, 128))  # 56% dark
        assert valid.all() and feats[:96, :96, :4].max() < 1e-30 and feats[100, 100, 0] > 0
    with pytest.raises(InvalidDataError, match="down to -0.300"):
        ImageReader(_scene_with_dark_corner(tmp_path / "bad.tif", nodata, darkest=-0.3, side=2))
    with pytest.raises(InvalidDataError, match=r"of the pixels below -0\.05"):  # 8.8% of the pixels
        ImageReader(_scene_with_dark_corner(tmp_path / "lake.tif", nodata, side=152))


def test_predict_goes_through_a_tile_mostly_over_dark_water(tmp_path, tiny_model_path):
    """Predict's first tile is mostly dark water: it once failed the whole prediction of an image
    that the dashboard, reading it whole, accepts."""
    from core.config import PredictConfig
    from core.model import load_model
    from core.predict import predict_image

    p = _scene_with_dark_corner(tmp_path / "img.tif", -9999.0)
    summary = predict_image(p, tmp_path / "out", config=PredictConfig(tile=128), loaded=load_model(tiny_model_path))
    assert summary["valid_pixels"] == 512 * 512 - 1


def test_landsat_c2_values_without_their_metadata_are_refused(tmp_path):
    """Stored Collection 2 values read as x 10000 start at 0.73 (no dark pixel anywhere): refused."""
    raw = _sample_window()
    c2 = np.where(raw == 0, 0, np.round((raw / 10000 + 0.2) / 2.75e-5)).astype(np.uint16)
    dry = np.where(c2 == 0, 0, np.minimum(c2, 14000)).astype(np.uint16)  # bands' medians under 1.5, as a dry scene
    with pytest.raises(InvalidDataError, match="Collection 2"):
        ImageReader(_write_like(tmp_path / "nometa.tif", SAMPLE_IMAGE, dry, nodata=0))


def test_a_small_image_counts_each_sampled_pixel_once(tmp_path):
    """On a 300 px image the 4 x 4 sample windows of 128 px overlapped: a block of 2,500 NaN pixels
    was reported as "NaN ... in 12996 sampled pixels"."""
    data = np.full((4, 300, 300), 0.2, np.float32)
    data[:, 100:150, 100:150] = np.nan
    with pytest.raises(InvalidDataError) as info:
        ImageReader(write_raster(tmp_path / "nan.tif", data, descriptions=["R", "G", "B", "NIR"]))
    counted = int(re.search(r"in (\d+) sampled pixels", str(info.value)).group(1))
    assert 0 < counted <= 2500


def test_a_valid_pixel_clipped_to_zero_in_every_band_stays_valid_in_patches():
    """A valid pixel slightly negative in all four bands (deep shadow) was clipped to 0 in each, which
    patches and image exports read as no data (Earth Engine's masked pixels): dropped from training
    and left a hole in the prediction of an export."""
    from core.patchset import valid_pixels
    from core.reflectance import to_features

    raw = np.full((4, 8, 8), 0.1, np.float32)
    raw[:, 2, 5] = -0.01
    valid = np.ones((8, 8), bool)
    valid[0, 0] = False
    feats = to_features(raw, valid, np.ones(4), np.zeros(4), "img.tif")
    assert 0 < feats[2, 5, :4].max() < 1e-30 and feats[2, 5, 4] == 0.0  # reflectance ~0, NDVI 0
    assert (feats[0, 0] == 0).all()  # no data is still 0 in every band
    labelled = np.concatenate([feats, np.zeros((8, 8, 1), np.float32)], axis=-1)  # not crop everywhere
    assert np.array_equal(valid_pixels(labelled[None])[0], valid)


def test_ndvi_is_nir_minus_red_over_their_sum_and_zero_where_both_are_zero():
    """Earth Engine's normalizedDifference(['NIR', 'R']): vegetation positive, water negative; no NaN fed to the model."""
    from core.reflectance import ndvi

    got = ndvi(np.array([0.1, 0.3, 0.0, 0.0], np.float32), np.array([0.3, 0.1, 0.0, 0.2], np.float32))
    np.testing.assert_allclose(got, [0.5, -0.5, 0.0, 1.0], rtol=1e-6)
    assert got.dtype == np.float32 and np.isfinite(got).all()


def test_a_dark_float_scene_stored_x_10000_is_read_as_x_10000(tmp_path):
    """Floats whose typical value is above 2 are reflectance x 10000, however dark the scene: water and
    shadow (visible bands 30-150, i.e. 0.003-0.015) beside vegetation's NIR (1500-4000); read as 0-1,
    its median NIR pixel (thousands) would be refused."""
    rng = np.random.default_rng(2)
    data = np.empty((4, 64, 64), np.float32)
    data[:3] = rng.uniform(30, 150, (3, 64, 64))
    data[3] = rng.uniform(1500, 4000, (64, 64))
    assert np.median(data) < 200  # (most values are the dark visible bands')
    with ImageReader(write_raster(tmp_path / "dark.tif", data, descriptions=["R", "G", "B", "NIR"])) as r:
        feats, valid = r.read()
    assert r.scale == pytest.approx(1e-4) and valid.all()
    np.testing.assert_allclose(feats[..., 3], data[3] / 10000, rtol=1e-5)


def test_a_scene_of_dense_vegetation_whose_nir_is_never_dark_is_accepted(tmp_path):
    """The offset check asks for dark pixels in some band, not in every band: over dense crops the NIR
    stays above 0.4 everywhere while the visible bands are dark; that is reflectance, not an offset."""
    rng = np.random.default_rng(4)
    data = np.empty((4, 64, 64), np.int16)
    data[:3] = rng.integers(200, 1000, (3, 64, 64))  # 0.02-0.1
    data[3] = rng.integers(4500, 6000, (64, 64))  # 0.45-0.6
    with ImageReader(write_raster(tmp_path / "crops.tif", data, descriptions=["R", "G", "B", "NIR"])) as r:
        feats, valid = r.read()
    assert valid.all() and feats[..., 3].min() >= 0.45


def test_features_are_r_g_b_nir_and_the_ndvi_of_r_and_nir():
    """to_features keeps the bands in the model's order and computes NDVI from R and NIR, as
    (NIR - R) / (NIR + R): vegetation (NIR 0.3 over R 0.1) has NDVI 0.5."""
    from core.reflectance import to_features

    raw = np.empty((4, 2, 3), np.int16)
    raw[0], raw[1], raw[2], raw[3] = 1000, 800, 600, 3000  # R, G, B, NIR x 10000
    feats = to_features(raw, np.ones((2, 3), bool), np.full(4, 1e-4), np.zeros(4), "img.tif")
    np.testing.assert_allclose(feats[0, 0], [0.1, 0.08, 0.06, 0.3, 0.5], rtol=1e-5)


def test_each_band_is_read_at_its_own_scale():
    """Scale/offset metadata may differ from band to band: each band is read at its own."""
    from core.reflectance import to_features

    raw = np.full((4, 2, 2), 2000, np.uint16)
    feats = to_features(raw, np.ones((2, 2), bool), np.array([1e-4, 2e-4, 1e-4, 5e-5]),
                        np.array([0.0, 0.0, -0.1, 0.0]), "img.tif")
    np.testing.assert_allclose(feats[1, 1, :4], [0.2, 0.4, 0.1, 0.1], rtol=1e-5)


def test_the_no_data_ceiling_is_reflectance_2_through_scale_and_offset():
    """Stored values above the one whose reflectance (stored x scale + offset) is 2 are no data; 2 itself is kept."""
    from core.reflectance import stored_ceiling, valid_pixels

    np.testing.assert_allclose(stored_ceiling(np.full(4, 1e-4), np.full(4, -0.1)), np.full(4, 21000))  # (2 + 0.1) / 1e-4
    raw = np.full((4, 1, 3), 1000, np.int16)
    raw[2, 0, 1], raw[2, 0, 2] = 20000, 20001  # reflectance 2.0 and 2.0001 at x 10000
    valid = valid_pixels(raw, None, "img.tif", ceiling=stored_ceiling(np.full(4, 1e-4), np.zeros(4)))
    assert valid.tolist() == [[True, True, False]]
