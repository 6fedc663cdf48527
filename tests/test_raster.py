import re
import warnings

import numpy as np
from rasterio.windows import Window
import pytest
from affine import Affine

from testdata import FLANDERS_L8, FLANDERS_LABELS, FLANDERS_S2, FTW, SAMPLE_IMAGE, SAMPLE_LABELS, cut, write_raster
from core.errors import BandError, CorruptFileError, GridMismatchError, InputNotFoundError, InvalidDataError
from core.labels import get_class_map
from core.raster import ImageReader, Grid, ndvi, parse_band_spec, read_image, read_labels, resolve_bands

UTM = "EPSG:32631"
T10 = Affine(10, 0, 500000, 0, -10, 5600000)


def test_sample_scene_is_int16_x10000_without_crs():
    with ImageReader(SAMPLE_IMAGE) as r:
        assert r.scale == pytest.approx(1e-4)
        assert not r.grid.georeferenced
        assert r.grid.pixel_area_ha() is None
        feats, valid = r.read()
    assert feats.shape == (1024, 1024, 5) and feats.dtype == np.float32
    assert 0.5 < valid.mean() < 1.0
    assert feats[valid, :4].max() <= 1.0 and feats[~valid].max() == 0
    np.testing.assert_allclose(feats[..., 4][valid], ndvi(feats[..., 0], feats[..., 3])[valid])


def test_float_reflectance_and_sentinel2_names():
    with ImageReader(FLANDERS_S2) as r:
        assert r.scale == 1.0
        assert r.band_index == {"R": 3, "G": 2, "B": 1, "NIR": 4}  # B04, B03, B02, B08
        assert r.grid.crs == "EPSG:32631"
        assert r.grid.pixel_area_ha() == pytest.approx(0.01)  # 10 m x 10 m


def test_landsat8_b05_is_nir_when_there_is_no_b08():
    with ImageReader(FLANDERS_L8) as r:
        assert r.band_index["NIR"] == 4


def test_b08_wins_over_b05():
    assert resolve_bands(["B02", "B03", "B04", "B05", "B08"], 5)["NIR"] == 5


def test_sentinel2_20m_stack_takes_b8a_not_the_red_edge_b05_as_nir():
    """A Sentinel-2 20 m stack has B8A (narrow NIR) and no B08: its B05 is red edge (705 nm), not NIR."""
    names = ["B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"]
    assert resolve_bands(names, len(names)) == {"R": 3, "G": 2, "B": 1, "NIR": 7}
    assert resolve_bands(["B2", "B3", "B4", "B5", "B8A"], 5)["NIR"] == 5  # Earth Engine's names
    every = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12"]
    assert every[resolve_bands(every, len(every))["NIR"] - 1] == "B8"  # the 10 m NIR first
    assert resolve_bands(["B2", "B3", "B4", "B5"], 4)["NIR"] == 4  # Landsat 8-9: B5 is NIR


def test_landsat_sr_band_names_follow_the_satellite_or_are_refused(tmp_path):
    """SR_B<n> are other bands on Landsat 4-7 (SR_B3 red, SR_B4 NIR) than on 8-9 (SR_B4 red, SR_B5 NIR):
    a band that only one of them has decides; without one, the file is refused, never guessed."""
    l89 = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"]
    assert resolve_bands(l89, 7) == {"R": 4, "G": 3, "B": 2, "NIR": 5}
    l47 = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7", "ST_B6"]
    assert resolve_bands(l47, 7) == {"R": 3, "G": 2, "B": 1, "NIR": 4}
    assert resolve_bands(["SR_B2", "SR_B3", "SR_B4", "SR_B5", "ST_B10"], 5)["NIR"] == 4
    for names in (["SR_B2", "SR_B3", "SR_B4", "SR_B5"], ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"]):
        with pytest.raises(BandError, match=r"Landsat 4-7 .* Landsat 8-9 .*name the bands R, G, B, NIR .*--bands"):
            resolve_bands(names, len(names))
    # the message gives the band numbers for either satellite where the file holds their bands
    with pytest.raises(BandError, match=r"here 3,2,1,4 for Landsat 4-7 or 4,3,2,5 for Landsat 8-9"):
        resolve_bands(["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5"], 5)
    # a file of such bands: refused on open, read with the band numbers given
    data = np.full((4, 16, 16), 1000, np.int16)
    p = write_raster(tmp_path / "sr.tif", data, descriptions=["SR_B2", "SR_B3", "SR_B4", "SR_B5"])
    with pytest.raises(BandError, match="Landsat"):
        ImageReader(p)
    with ImageReader(p, parse_band_spec("3,2,1,4")) as r:
        assert r.band_index == {"R": 3, "G": 2, "B": 1, "NIR": 4}


def test_undescribed_bands_need_a_band_list():
    with pytest.raises(BandError, match="--bands"):
        ImageReader(FTW)
    with ImageReader(FTW, parse_band_spec("1,2,3,4")) as r:
        assert r.scale == pytest.approx(1e-4)
        feats, valid = r.read()
        assert valid.all() and 0 < feats[..., 0].mean() < 0.3


def test_missing_band_is_named(tmp_path):
    p = write_raster(tmp_path / "rgb.tif", np.ones((3, 8, 8), np.int16), descriptions=["R", "G", "B"])
    with pytest.raises(BandError, match="NIR"):
        ImageReader(p)


@pytest.mark.parametrize("bands", [None, {"R": 1, "G": 2, "B": 3, "NIR": 3}])
def test_too_few_bands_say_that_nir_is_needed_not_which_numbers_to_give(tmp_path, bands):
    """A 3-band picture (an RGB export, a PNG renamed .tif) was told to give 'the band numbers of R,
    G, B and NIR', which it does not have."""
    p = write_raster(tmp_path / "rgb.tif", np.ones((3, 8, 8), np.int16))
    with pytest.raises(BandError, match=r"has 3 bands, but a crop map needs four: R, G, B and NIR") as err:
        ImageReader(p, bands)
    assert "band numbers" not in str(err.value)


@pytest.mark.parametrize("spec", ["1,2,3", "R=1,G=2,B=3", "a,b,c,d", "1,2,3,4,5", "1,1,1,1"])
def test_bad_band_spec(spec):
    with pytest.raises(BandError):
        parse_band_spec(spec)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputNotFoundError):
        ImageReader(tmp_path / "nope.tif")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(CorruptFileError) as err:
        ImageReader(bad)
    assert str(tmp_path) not in str(err.value)  # named, not by a server folder (an upload's)
    text = tmp_path / "notes.tif"
    text.write_text("field notes, not an image")
    with pytest.raises(CorruptFileError, match=r"^notes.tif is not a GeoTIFF") as err:
        ImageReader(text)


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


def test_a_value_no_offset_gives_is_refused_in_any_window():
    """A pixel the image's sample missed is refused when its window is read (no product gives < -0.2)."""
    from core.raster import to_features

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
    assert np.isfinite(feats).all() and feats[~valid].max() == 0 and feats[valid, :4].max() < 0.5
    assert "2.5% of the sampled pixels of fill.tif have reflectance above 2" in text
    assert f"most hold {named} in every band" in text and f"gdal_edit.py -a_nodata {named}" in text


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


def test_labels_on_another_grid_are_refused(tmp_path):
    p = write_raster(tmp_path / "lab.tif", np.ones((1024, 1024), np.uint8), transform=Affine(30, 0, 60, 0, -30, 0))
    with ImageReader(SAMPLE_IMAGE) as r, pytest.raises(GridMismatchError, match="not on the image's grid: it lies "
                                                        r"elsewhere: its first pixel is at column -2,046.0, row 3,584.0"):
        read_labels(p, get_class_map("cdl"), grid=r.grid)
    with ImageReader(FLANDERS_S2) as r:  # what differs, in words with its figures
        with pytest.raises(GridMismatchError, match=r"it has no georeferencing \(no CRS; not a GeoTIFF"):
            read_labels(SAMPLE_LABELS, get_class_map("cdl"), grid=r.grid)
        with pytest.raises(GridMismatchError, match=r"it is 64 x 32 px, the image \d+ x \d+ px; resample"):
            read_labels(write_raster(tmp_path / "small.tif", np.ones((32, 64), np.uint8), crs=r.grid.crs,
                                     transform=Affine(*r.grid.transform)), get_class_map("binary"), grid=r.grid)
        mask = read_labels(FLANDERS_LABELS, get_class_map("worldcereal"), grid=r.grid)
        t = r.grid.transform
        with pytest.raises(GridMismatchError, match=r"it is in EPSG:4326, the image in EPSG:32631; resample"):
            read_labels(write_raster(tmp_path / "deg.tif", mask, crs="EPSG:4326", transform=Affine(*t)),
                        get_class_map("binary"), grid=r.grid)
        coarse = Affine(t[0] * 3, 0, t[2], 0, t[4] * 3, t[5])
        with pytest.raises(GridMismatchError, match=r"its pixels are 30 x 30, the image's 10 x 10 \(CRS units\); "
                                                    r"resample the labels onto the image's grid first \(e.g. gdalwarp"):
            read_labels(write_raster(tmp_path / "30m.tif", mask, crs=r.grid.crs, transform=coarse),
                        get_class_map("binary"), grid=r.grid)
        # labels of another place on the same CRS: how far, in words (the columns and rows alone said little)
        moved = Affine(t[0], 0, t[2] + 73_200.0, 0, t[4], t[5] - 6_950.0)
        with pytest.raises(GridMismatchError, match=r"its first pixel is at column 7,320.0, row 695.0 of the image \(about "
                                                    r"73 km east and 7.0 km south of the image's\); resample"):
            read_labels(write_raster(tmp_path / "moved.tif", mask, crs=r.grid.crs, transform=moved),
                        get_class_map("binary"), grid=r.grid)
    assert set(np.unique(mask)) == {0, 1}  # LC: 11 annual cropland, others not crop; no NaN in LC


def test_a_crs_in_words():
    from core.raster import crs_words

    assert crs_words("EPSG:32631") == "EPSG:32631, WGS 84 / UTM zone 31N"
    assert crs_words("EPSG:4326") == "EPSG:4326, WGS 84"
    assert crs_words(None) == "no CRS"
    assert crs_words("+proj=merc +lon_0=180 +a=6378137 +b=6378137 +units=m") == "+proj=merc +lon_0=180 +a=6378137 +b=6378..."


def test_grids_differing_by_a_fraction_of_a_degree_pixel_are_not_the_same():
    # 10 m pixels in degrees: a 1% larger pixel puts the far edge of 5,000 px 48 px off
    deg = Grid("EPSG:4326", (8.983e-5, 0, 10.0, 0, -8.983e-5, 45.0), 5000, 5000)
    assert not deg.same_as(Grid("EPSG:4326", (9.07e-5, 0, 10.0, 0, -9.07e-5, 45.0), 5000, 5000))
    assert not deg.same_as(Grid("EPSG:4326", (8.983e-5, 0, 10.0 + 4.5e-5, 0, -8.983e-5, 45.0), 5000, 5000))  # half a pixel
    assert deg.same_as(Grid("EPSG:4326", (8.983e-5, 0, 10.0 + 1e-14, 0, -8.983e-5, 45.0), 5000, 5000))  # float noise
    utm = Grid("EPSG:32633", (30.0, 0, 500000.0, 0, -30.0, 5e6), 100, 100)
    assert utm.same_as(Grid("EPSG:32633", (30.0, 0, 500000.0 + 1e-9, 0, -30.0, 5e6), 100, 100))
    assert not utm.same_as(Grid("EPSG:32633", (30.0, 0, 500015.0, 0, -30.0, 5e6), 100, 100))


def test_geographic_pixel_area_follows_latitude():
    g = Grid("EPSG:4326", (0.001, 0, 10.0, 0, -0.001, 60.0), 10, 4)
    area = g.pixel_area_ha()
    assert area.shape == (4, 1)
    # 0.001 deg at 60 N: about 111.32 m * 55.8 m = 0.62 ha
    assert area[0, 0] == pytest.approx(0.62, rel=0.01)


def test_projected_pixel_area_is_the_area_on_the_ground_where_the_projection_distorts_it():
    """Plate carree (EPSG:4087) pixels of 30 m at 49 N cover 0.0586 ha, not the nominal 0.09 (+53%):
    each row is measured; UTM's pixels keep their nominal area (within 0.1% of the ground's)."""
    from rasterio.warp import transform as warp

    from core.raster import WGS84_A, ellipsoid_sine

    g = Grid("EPSG:4087", (30.0, 0, 1e6, 0, -30.0, 5.5e6), 50, 40)
    area = g.pixel_area_ha()
    assert area.shape == (40, 1)
    # reference: the rows' edges as latitudes, each row's band of the ellipsoid between them
    ys = [5.5e6 - 30.0 * k for k in range(41)]
    lon, lat = warp("EPSG:4087", "EPSG:4326", [1e6] * 41 + [1e6 + 30.0], ys + [ys[0]])
    band = np.abs(np.diff(ellipsoid_sine(np.asarray(lat[:-1])))) * WGS84_A**2 * np.radians(lon[-1] - lon[0]) / 1e4
    np.testing.assert_allclose(area[:, 0], band, rtol=1e-4)
    assert area[0, 0] == pytest.approx(0.0586, rel=1e-3)
    assert Grid("EPSG:32633", (30.0, 0, 5e5, 0, -30.0, 5.5e6), 50, 40).pixel_area_ha() == pytest.approx(0.09, rel=1e-12)
    # a large grid is measured on some rows and interpolated between: still the ground's area
    big = Grid("EPSG:4087", (30.0, 0, 1e6, 0, -30.0, 5.5e6), 100, 5000).pixel_area_ha()
    ys = [5.5e6 - 30.0 * k for k in (4999, 5000)]
    _, lat = warp("EPSG:4087", "EPSG:4326", [1e6, 1e6], ys)
    last = abs(np.diff(ellipsoid_sine(np.asarray(lat)))[0]) * WGS84_A**2 * np.radians(lon[-1] - lon[0]) / 1e4
    assert big[-1, 0] == pytest.approx(last, rel=1e-4)


def test_pixel_areas_across_the_180th_meridian_are_those_of_their_neighbours():
    """Taveuni (Fiji) lies across 180 degrees: a pixel's side measured there ran from one edge of the
    equal-area map to the other, and a UTM grid's 30 m pixels came out at up to 1.3e5 ha."""
    from rasterio.warp import transform as warp

    x180, y = warp("EPSG:4326", "EPSG:32760", [180.0], [-16.8])
    for x0 in (round(x180[0]) - 3000, round(x180[0]) - 300):  # west of it, and across it
        g = Grid("EPSG:32760", (30.0, 0.0, x0, 0.0, -30.0, round(y[0]) + 300), 20, 20)
        assert g.pixel_area_ha() == pytest.approx(0.09, rel=1e-12)  # UTM: nominal
    # plate carree distorts areas and is measured row by row: the same rows across 180 degrees as beside it
    x180, _ = warp("EPSG:4326", "EPSG:4087", [180.0], [0.0])
    beside = Grid("EPSG:4087", (30.0, 0, x180[0] - 3000.0, 0, -30.0, -1.8e6), 20, 20).pixel_area_ha()
    across = Grid("EPSG:4087", (30.0, 0, x180[0] - 300.0, 0, -30.0, -1.8e6), 20, 20).pixel_area_ha()
    np.testing.assert_allclose(across, beside, rtol=1e-6)


def test_a_crs_without_a_geotransform_is_not_georeferenced(tmp_path):
    """Its pixels were taken as 1 m squares at the CRS's origin: crop areas of 0.03 ha, and a warning
    that the image's pixels were 30 times smaller than the model's."""
    data = np.random.default_rng(0).integers(50, 4000, (4, 32, 32)).astype(np.int16)
    p = write_raster(tmp_path / "t.tif", data, crs="EPSG:32633", transform=Affine.identity(),
                     descriptions=["R", "G", "B", "NIR"])
    with ImageReader(p) as r:
        assert r.grid.crs is None and r.grid.pixel_area_ha() is None
        assert any("names a CRS (EPSG:32633) but has no geotransform" in w for w in r.warnings)
    with ImageReader(write_raster(tmp_path / "g.tif", data, crs="EPSG:32633", descriptions=["R", "G", "B", "NIR"])) as r:
        assert r.grid.crs == "EPSG:32633" and r.warnings == ()


def test_web_mercator_pixel_area_is_the_area_on_the_ground():
    # 30 m Web Mercator pixels at 45 N cover 30 cos(45) m on each side on the ground: half the area
    from rasterio.warp import transform

    x, y = transform("EPSG:4326", "EPSG:3857", [10.0], [45.0])
    g = Grid("EPSG:3857", (30.0, 0, x[0], 0, -30.0, y[0]), 8, 8)
    area = g.pixel_area_ha()
    assert area.shape == (8, 1)
    assert area[0, 0] == pytest.approx(0.09 * 0.5, rel=0.01)
    assert g.pixel_size_m() == pytest.approx(30.0 * 0.5**0.5, rel=0.01)
    # at the equator: 30 m east-west, and 30 (1 - e^2) m north-south on the ellipsoid (Web Mercator's
    # northings are on a sphere of the equatorial radius, the ground's meridians are flatter there)
    e2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)
    equator = Grid("EPSG:3857", (30.0, 0, 0.0, 0, -30.0, 0.0), 4, 4).pixel_area_ha()[0, 0]
    assert equator == pytest.approx(0.09 * (1 - e2), rel=1e-4)


def test_pixel_size_in_metres():
    assert Grid("EPSG:32633", (10.0, 0, 500000.0, 0, -10.0, 5e6), 4, 4).pixel_size_m() == pytest.approx(10.0)
    # geographic: the square root of the area at the grid's centre row (0.001 deg at 60 N: ~78.8 m)
    g = Grid("EPSG:4326", (0.001, 0, 10.0, 0, -0.001, 60.0), 10, 4)
    assert g.pixel_size_m() == pytest.approx((111.32 * 55.8) ** 0.5, rel=0.01)
    assert Grid(None, (30.0, 0, 0, 0, -30.0, 0), 4, 4).pixel_size_m() is None  # no CRS: unknown


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


def test_band_list_must_give_four_different_bands():
    for spec in ("1,2,3,4,5", "1,1,1,1", "1,2,3,3", "R=1,G=2,B=3,NIR=4,R=2", "R=1,G=1,B=3,NIR=4"):
        with pytest.raises(BandError):
            parse_band_spec(spec)
    with pytest.raises(BandError, match="different bands"):
        resolve_bands([None] * 4, 4, {"R": 1, "G": 1, "B": 1, "NIR": 1})
    with pytest.raises(BandError, match="NIR"):
        resolve_bands([None] * 4, 4, {"R": 1, "G": 2, "B": 3})
    assert parse_band_spec("4, 3, 2, 1") == {"R": 4, "G": 3, "B": 2, "NIR": 1}
    assert parse_band_spec("nir=1,r=2,g=3,b=4") == {"NIR": 1, "R": 2, "G": 3, "B": 4}


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
        assert valid.sum() == 512 * 512 - 1 and feats[:96, :96, :4].max() == 0.0
        feats, valid = r.read(Window(0, 0, 128, 128))  # 56% dark
        assert valid.all() and feats[:96, :96, :4].max() == 0.0 and feats[100, 100, 0] > 0
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


def test_truncated_rasters_are_one_clear_error(tmp_path):
    from core.labels import get_class_map
    from testdata import SAMPLE_LABELS

    import rasterio

    for src, name in ((SAMPLE_IMAGE, "img.tif"), (SAMPLE_LABELS, "lab.tif")):
        with rasterio.open(src) as s:  # a COG: its header comes first, so a cut keeps it and loses pixels
            profile = dict(s.profile, driver="COG", compress="deflate")
            for key in ("blockxsize", "blockysize", "tiled", "interleave"):
                profile.pop(key, None)
            with rasterio.open(tmp_path / f"full_{name}", "w", **profile) as d:
                d.write(s.read())
                d.descriptions = s.descriptions
        data = (tmp_path / f"full_{name}").read_bytes()
        (tmp_path / name).write_bytes(data[: int(len(data) * 0.7)])
    with pytest.raises(CorruptFileError, match="truncated or damaged"):
        with ImageReader(tmp_path / "img.tif") as r:
            r.read()
    with pytest.raises(CorruptFileError):
        read_labels(tmp_path / "lab.tif", get_class_map("cdl"))
    from core.evaluate import evaluate_files

    with pytest.raises(CorruptFileError, match="truncated or damaged"):  # a damaged crop mask (one band)
        evaluate_files(tmp_path / "lab.tif", SAMPLE_LABELS, "binary", out=tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_an_image_given_as_labels_is_refused(tmp_path):
    from core.labels import get_class_map

    with pytest.raises(InvalidDataError, match="looks like an image"):
        read_labels(SAMPLE_IMAGE, get_class_map("cdl"))  # reflectance x 10000 read as CDL codes
    refl = write_raster(tmp_path / "f.tif", np.full((1, 8, 8), 0.25, np.float32))
    with pytest.raises(InvalidDataError, match="whole numbers"):
        read_labels(refl, get_class_map("worldcover"))


def test_label_codes_keep_the_classes_and_mark_no_data(tmp_path):
    from core.labels import get_class_map
    from core.raster import read_label_classes, read_labels

    codes = np.array([[0, 5, 176], [37, 111, 0]], np.uint8)
    path = write_raster(tmp_path / "cdl.tif", codes[None], nodata=0)
    got = read_label_classes(path, get_class_map("cdl"))[1]
    assert got.dtype == np.int16 and got.tolist() == [[-1, 5, 176], [37, 111, -1]]
    assert np.array_equal(got == -1, read_labels(path, get_class_map("cdl")) == 255)
    floats = write_raster(tmp_path / "f.tif", np.array([[[np.nan, 40.0], [10.0, 30.0]]], np.float32), nodata=np.nan)
    assert read_label_classes(floats, get_class_map("worldcover"))[1].tolist() == [[-1, 40], [10, 30]]
    image = write_raster(tmp_path / "img.tif", np.full((1, 2, 2), 3000, np.int16))
    with pytest.raises(InvalidDataError):
        read_label_classes(image, get_class_map("cdl"))


def test_local_engineering_crs_gives_areas_in_its_unit(tmp_path):
    """A local CRS in metres (a drone survey's site grid) was refused as having no linear unit."""
    import rasterio
    from rasterio.crs import CRS

    from core.raster import ImageReader
    from testdata import write_raster

    wkt = 'LOCAL_CS["site",UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
    data = np.full((4, 40, 40), 1500, np.int16)
    path = write_raster(tmp_path / "site.tif", data, crs=CRS.from_wkt(wkt), transform=rasterio.Affine(2, 0, 0, 0, -2, 80),
                        descriptions=["R", "G", "B", "NIR"])
    with ImageReader(path) as r:
        assert r.grid.pixel_area_ha() == pytest.approx(4 / 1e4)  # 2 m x 2 m
    feet = 'LOCAL_CS["site",UNIT["foot",0.3048],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
    assert Grid(feet, (10, 0, 0, 0, -10, 0), 5, 5).pixel_area_ha() == pytest.approx(100 * 0.3048**2 / 1e4)


def test_geographic_areas_are_on_the_wgs84_ellipsoid():
    """A 0.01 degree cell at 48 N against the ellipsoid's area element integrated numerically
    (M(lat) N(lat) cos(lat) d(lat) d(lon)); a sphere of the mean radius was 0.3% under."""
    from core.raster import WGS84_A, WGS84_F

    e2 = WGS84_F * (2 - WGS84_F)
    lat = np.radians(np.linspace(47.99, 48.0, 20001))
    s = np.sin(lat)
    element = WGS84_A**2 * (1 - e2) / (1 - e2 * s * s) ** 2 * np.cos(lat)  # M * N * cos(lat)
    expected_ha = float(np.sum((element[1:] + element[:-1]) / 2 * np.diff(lat))) * np.radians(0.01) / 1e4
    g = Grid("EPSG:4326", (0.01, 0, 10.0, 0, -0.01, 48.0), 1, 1)
    assert g.pixel_area_ha()[0, 0] == pytest.approx(expected_ha, rel=1e-6)


def test_windows_past_the_edge_of_a_rotated_image_hold_its_own_pixels(tmp_path):
    """A rotated grid (as some aerial and rectified products have) is read pixel for pixel at the
    edges too: rasterio's boundless reads warp such a grid north-up, which moved and resampled the
    pixels of every edge tile of a prediction."""
    from rasterio.windows import Window

    win = Window(100, 100, 120, 90)
    rotated = Affine.translation(500000, 5000000) * Affine.rotation(20) * Affine.scale(30, -30)
    plain = cut(SAMPLE_IMAGE, tmp_path / "plain.tif", win)
    turned = cut(SAMPLE_IMAGE, tmp_path / "rotated.tif", win, crs="EPSG:32633", transform=rotated)
    with ImageReader(plain) as a, ImageReader(turned) as b:
        for w in (Window(-40, -30, 100, 100), Window(60, 50, 100, 100), Window(-10, -10, 140, 110)):
            fa, va = a.read(w)
            fb, vb = b.read(w)
            assert (va == vb).all() and np.array_equal(fa, fb)
            assert not va[:10].any() if w.row_off < 0 else not va[-10:].any()


def test_a_label_band_is_found_by_its_number_when_the_bands_have_no_names(tmp_path):
    """evaluate --label-band 2 on a label file whose bands are unnamed was 'not found': only band 1
    could be read. A number beyond the file's bands is one clear error (it was an IndexError)."""
    codes = np.stack([np.full((8, 8), 176, np.uint8), np.full((8, 8), 1, np.uint8)])
    path = write_raster(tmp_path / "two.tif", codes)
    cdl = get_class_map("cdl")
    assert (read_labels(path, cdl, band="2") == 1).all() and (read_labels(path, cdl, band=2) == 1).all()
    assert (read_labels(path, cdl, band="1") == 0).all()
    for bad in ("3", 3, 0, "0"):
        with pytest.raises(BandError, match="has 2 bands"):
            read_labels(path, cdl, band=bad)


@pytest.mark.parametrize("crs, origin, size", [("EPSG:4326", (10.0, 45.0), 0.001), ("EPSG:3857", (1113194.9, 5621521.5), 30.0)])
def test_a_rotated_geographic_or_mercator_grid_has_the_ground_area_of_its_pixels(crs, origin, size):
    """A rotated grid's pixels cover as much ground as north-up pixels of the same size at the same
    place. Rows of a rotated lon/lat grid do not follow parallels: its area took a row's slant for
    its height (cos^2 of the angle too small), and a rotated Mercator grid got the nominal area
    (twice the ground's at 45 degrees)."""
    north_up = Affine.translation(*origin) * Affine.scale(size, -size)
    turned = Affine.translation(*origin) * Affine.rotation(30) * Affine.scale(size, -size)
    # the rotated grid's middle row, centre column, lies where the north-up grid's pixel (row, col) does
    mid = ~north_up * (turned * (50.5, 50.5))
    assert 0 <= mid[1] < 101
    expected = Grid(crs, tuple(north_up)[:6], 101, 101).pixel_area_ha()[int(mid[1]), 0]
    area = Grid(crs, tuple(turned)[:6], 101, 101).pixel_area_ha()
    assert area.shape == (101, 1)
    assert area[50, 0] == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("turn", [0.0, 20.0, 180.0])
def test_a_window_of_a_turned_grid_is_found_as_on_a_north_up_one(turn):
    """window_within: a part on the whole's pixels at a whole-pixel offset, for a grid turned by any
    angle (``predict --window`` output evaluated on its image's labels); not at a half pixel, not at
    another angle or pixel size, not past the edge."""
    from affine import Affine
    from rasterio.windows import Window

    from core.raster import Grid, window_within

    whole_t = Affine.translation(500000, 8150000) * Affine.rotation(turn) * Affine.scale(30, -30)
    whole = Grid("EPSG:32718", tuple(whole_t)[:6], 300, 200)

    def part(dc, dr, w=100, h=50, t=whole_t):
        return Grid("EPSG:32718", tuple(t * Affine.translation(dc, dr))[:6], w, h)

    assert window_within(part(40, 30), whole) == Window(40, 30, 100, 50)
    assert window_within(part(200, 150), whole) == Window(200, 150, 100, 50)
    assert window_within(part(40.5, 30), whole) is None
    assert window_within(part(201, 150), whole) is None  # past the right edge
    assert window_within(part(-1, 0), whole) is None
    other_angle = Affine.translation(500000, 8150000) * Affine.rotation(turn + 5) * Affine.scale(30, -30)
    assert window_within(part(40, 30, t=other_angle), whole) is None
    assert window_within(part(40, 30, t=whole_t * Affine.scale(2)), whole) is None


def test_band_numbers_that_contradict_the_files_band_names_are_warned_of(tmp_path):
    """--bands 4,3,2,1 on a file whose bands are named R, G, B, NIR gave a plausible crop map of 1.4%
    crop (52% without it) and no word."""
    from core.raster import ImageReader, parse_band_spec
    from testdata import SAMPLE_IMAGE

    with ImageReader(SAMPLE_IMAGE, parse_band_spec("4,3,2,1")) as reader:
        assert any("differ from what the file's band names say (R=1, G=2, B=3, NIR=4)" in w for w in reader.warnings)
    with ImageReader(SAMPLE_IMAGE, parse_band_spec("1,2,3,4")) as reader:  # the same as the names: no word
        assert not any("band names" in w for w in reader.warnings)
    with ImageReader(SAMPLE_IMAGE) as reader:
        assert not any("band names" in w for w in reader.warnings)


def test_a_small_image_counts_each_sampled_pixel_once(tmp_path):
    """On a 300 px image the 4 x 4 sample windows of 128 px overlapped: a block of 2,500 NaN pixels
    was reported as "NaN ... in 12996 sampled pixels"."""
    data = np.full((4, 300, 300), 0.2, np.float32)
    data[:, 100:150, 100:150] = np.nan
    with pytest.raises(InvalidDataError) as info:
        ImageReader(write_raster(tmp_path / "nan.tif", data, descriptions=["R", "G", "B", "NIR"]))
    counted = int(re.search(r"in (\d+) sampled pixels", str(info.value)).group(1))
    assert 0 < counted <= 2500


def test_a_folder_given_as_an_image_is_named(tmp_path, monkeypatch):
    """``info --image .`` said "error:  is not a GeoTIFF" (the folder "." has no name)."""
    from core.errors import CorruptFileError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(CorruptFileError, match=r"^\. is a folder; give the image"):
        ImageReader(".")
