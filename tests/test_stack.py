"""core.stack and `python -m core stack`: a download's band files stacked into one R, G, B, NIR GeoTIFF.

The band files are written by the tests from the real georeferenced fixtures (tests/data/georef), in the
layout of each download: one single-band file per band, stored as its product stores reflectance.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import rasterio

from core.errors import BandError, ConfigError, GridMismatchError, OutputExistsError
from core.raster import ImageReader
from core.stack import LANDSAT_C2_SCALING, BandFiles, find_band_files, stack_bands
from testdata import GEOREF

LANDSAT = GEOREF / "000028085BF08E7E_L8SR_2019-08-05_B02_B03_B04_B05.tif"  # B02-B05: OLI blue, green, red, NIR
SENTINEL2 = GEOREF / "00002806639B424A_S2L2A_2017-08-27_B02_B03_B04_B08.tif"
#: a product id's shape (sensor, level, then what names the scene: "fixture" here, no place or date claimed)
LANDSAT_ID = "LC08_L2SP_fixture"


def _write_band(path, values, src, dtype="uint16", nodata=None):
    profile = {"driver": "GTiff", "count": 1, "dtype": dtype, "width": src.width, "height": src.height,
               "crs": src.crs, "transform": src.transform, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(dtype), 1)


def landsat_download(folder, cloudy=None, saturated=None):
    """The Landsat fixture as Collection 2 Level-2 band files (stored = (reflectance + 0.2) / 0.0000275)
    with a QA_PIXEL file (bit 3, cloud, where ``cloudy``), and a QA_RADSAT file (band 4 saturated where
    ``saturated``) when given; returns the reflectance (R, G, B, NIR)."""
    scale, offset = LANDSAT_C2_SCALING
    with rasterio.open(LANDSAT) as src:
        refl = src.read()  # B02, B03, B04, B05
        for band, values in zip((2, 3, 4, 5), refl):
            _write_band(folder / f"{LANDSAT_ID}_SR_B{band}.TIF", np.round((values - offset) / scale), src)
        qa = np.zeros((src.height, src.width), np.uint16)
        if cloudy is not None:
            qa[cloudy] = 1 << 3
        _write_band(folder / f"{LANDSAT_ID}_QA_PIXEL.TIF", qa, src)
        if saturated is not None:
            _write_band(folder / f"{LANDSAT_ID}_QA_RADSAT.TIF", np.where(saturated, 1 << 3, 0), src)
    return refl[[2, 1, 0, 3]]


def test_a_landsat_download_is_stacked_as_reflectance_with_its_clouds_masked(tmp_path):
    cloudy = np.zeros((64, 64), bool)
    cloudy[10:20, 30:50] = True
    refl = landsat_download(tmp_path, cloudy)
    bands = find_band_files([tmp_path])  # the folder, as downloaded
    assert bands.kind == "landsat" and bands.qa.name == f"{LANDSAT_ID}_QA_PIXEL.TIF"
    assert {b: p.name for b, p in bands.files.items()} == {
        "R": f"{LANDSAT_ID}_SR_B4.TIF", "G": f"{LANDSAT_ID}_SR_B3.TIF", "B": f"{LANDSAT_ID}_SR_B2.TIF",
        "NIR": f"{LANDSAT_ID}_SR_B5.TIF"}
    (tmp_path / "out").mkdir()
    done = stack_bands(bands, tmp_path / "out" / "image.tif")
    assert done["cloud_masked_pixels"] == 200 and done["no_data_pixels"] == 200 and done["warnings"] == []
    with ImageReader(tmp_path / "out" / "image.tif") as reader:  # core reads it: named bands, C2 scaling
        feats, valid = reader.read()
        assert reader.grid.crs == "EPSG:32631" and (reader.scale, reader.offset) == pytest.approx(LANDSAT_C2_SCALING)
    assert not valid[cloudy].any() and valid[~cloudy].all()
    # the reflectance as the fixture holds it, to the stored integers' step (0.0000275)
    got = np.moveaxis(feats[..., :4], -1, 0)
    assert np.abs(got[:, valid] - refl[:, valid]).max() < 2e-5


def test_landsat_saturated_pixels_are_no_data_as_in_the_earth_engine_composites(tmp_path):
    """QA_RADSAT flags a pixel where a band saturated (bright roofs, snow, cloud tops): its values are not
    the ground's, and the Earth Engine composites drop it too."""
    cloudy, saturated = np.zeros((64, 64), bool), np.zeros((64, 64), bool)
    cloudy[10:20, 30:50] = True
    saturated[15:25, 0:8] = True  # (besides 0 clouds)
    landsat_download(tmp_path, cloudy, saturated)
    bands = find_band_files([tmp_path])
    assert bands.radsat.name == f"{LANDSAT_ID}_QA_RADSAT.TIF"
    (tmp_path / "out").mkdir()
    done = stack_bands(bands, tmp_path / "out" / "image.tif")
    assert done["cloud_masked_pixels"] == 200 + 80 and done["radsat"].endswith("_QA_RADSAT.TIF")
    with ImageReader(tmp_path / "out" / "image.tif") as reader:
        _, valid = reader.read()
    assert not valid[cloudy | saturated].any() and valid[~(cloudy | saturated)].all()


def sentinel2_safe(folder, classes=None, origin_shift=0.0, name="S2A_MSIL2A_fixture_N0213_R008_fixture.SAFE",
                   offset=0):
    """The Sentinel-2 fixture as the SAFE folder ``name``'s 10 m band files (x 10000 + ``offset``) and,
    with ``classes`` (32 x 32), its 20 m scene classification (SCL); returns the R10m folder."""
    r10m = folder / name / "GRANULE" / "fixture" / "IMG_DATA" / "R10m"
    r10m.mkdir(parents=True)
    (r10m.parent / "R20m").mkdir()
    with rasterio.open(SENTINEL2) as src:
        for band, values in zip(("B02", "B03", "B04", "B08"), src.read()):
            _write_band(r10m / f"fixture_{band}_10m.tif", np.round(values * 10000 + offset), src)
        if classes is not None:
            t = src.transform
            profile = {"driver": "GTiff", "count": 1, "dtype": "uint8", "width": 32, "height": 32, "crs": src.crs,
                       "transform": rasterio.Affine(20.0, 0, t.c + origin_shift, 0, -20.0, t.f)}
            with rasterio.open(r10m.parent / "R20m" / "fixture_SCL_20m.tif", "w", **profile) as dst:
                dst.write(classes.astype("uint8"), 1)
    return r10m


def test_sentinel2_clouds_are_masked_by_its_scene_classification(tmp_path):
    """SCL's no data, saturated, cloud shadow, cloud and cirrus classes (0, 1, 3, 8, 9, 10) become no data;
    its 20 m pixels each cover 2 x 2 band pixels, also in a box whose edges fall inside one."""
    classes = np.full((32, 32), 4, np.uint8)  # vegetation
    for k, code in enumerate((0, 1, 3, 8, 9, 10, 11, 5, 6)):  # (11 snow, 5 bare soil, 6 water: kept)
        classes[k * 3, 2:5] = code
    r10m = sentinel2_safe(tmp_path, classes)
    bands = find_band_files([tmp_path])  # the SAFE folder: the SCL found in R20m
    assert bands.qa.name == "fixture_SCL_20m.tif"
    assert find_band_files(sorted(r10m.iterdir())).qa == bands.qa  # the 10 m files alone: found beside them
    cloudy = np.repeat(np.repeat(np.isin(classes, (0, 1, 3, 8, 9, 10)), 2, axis=0), 2, axis=1)  # (64 x 64)
    done = stack_bands(bands, tmp_path / "image.tif")
    assert done["cloud_masked_pixels"] == 6 * 3 * 4 == cloudy.sum()
    with ImageReader(tmp_path / "image.tif") as reader:
        _, valid = reader.read()
    assert (valid == ~cloudy).all()
    # a box starting at an odd row and column (inside a 20 m pixel), written in strips
    import core.stack

    core.stack.STRIP_ROWS, strip = 7, core.stack.STRIP_ROWS
    try:
        stack_bands(bands, tmp_path / "box.tif", window=(3, 5, 40, 31))
    finally:
        core.stack.STRIP_ROWS = strip
    with ImageReader(tmp_path / "box.tif") as reader:
        _, valid = reader.read()
    assert (valid == ~cloudy[3:43, 5:36]).all()
    # placed where it lies: its corner 3 rows down and 5 columns right of the image's, no data declared as 0
    from affine import Affine

    with rasterio.open(tmp_path / "image.tif") as whole, rasterio.open(tmp_path / "box.tif") as box:
        assert box.transform == whole.transform @ Affine.translation(5, 3) and (box.width, box.height) == (31, 40)
        assert box.nodata == whole.nodata == 0 and box.crs == whole.crs


def test_a_scene_classification_off_the_bands_grid_is_refused(tmp_path):
    sentinel2_safe(tmp_path, np.full((32, 32), 4), origin_shift=10.0)  # half a 20 m pixel east
    with pytest.raises(GridMismatchError, match="fixture_SCL_20m.tif is not on fixture_B04_10m.tif's grid"):
        stack_bands(find_band_files([tmp_path]), tmp_path / "image.tif")
    assert not (tmp_path / "image.tif").exists()


def test_sentinel2_band_files_are_stacked_in_r_g_b_nir_order(tmp_path):
    with rasterio.open(SENTINEL2) as src:
        refl = src.read()  # B02, B03, B04, B08
        for name, values in zip(("B02", "B03", "B04", "B08"), refl):
            _write_band(tmp_path / f"fixture_{name}_10m.tif", np.round(values * 10000), src)
    files = sorted(tmp_path.iterdir())
    bands = find_band_files(files)
    assert bands.kind == "sentinel-2" and bands.scaling is None  # no SAFE folder name: scaling detected
    done = stack_bands(bands, tmp_path / "image.tif")
    assert done["cloud_masked_pixels"] is None
    # (no scene classification beside them: the clouds stay, and the warning says what to give)
    assert len(done["warnings"]) == 1 and "not masked" in done["warnings"][0] and "SCL_20m.jp2" in done["warnings"][0]
    with ImageReader(tmp_path / "image.tif") as reader:
        feats, valid = reader.read()
    assert valid.all()
    assert np.abs(np.moveaxis(feats[..., :4], -1, 0) - refl[[2, 1, 0, 3]]).max() < 6e-5


def test_sentinel2_from_baseline_04_00_on_takes_off_its_1000_offset(tmp_path):
    """From processing baseline 04.00 (2022), L2A stores reflectance x 10000 + 1000; the SAFE folder's
    name (..._N0400_...) tells it."""
    r10m = sentinel2_safe(tmp_path, name="S2B_MSIL2A_fixture_N0400_R022_fixture.SAFE", offset=1000)
    safe = r10m.parents[3]
    with rasterio.open(SENTINEL2) as src:
        refl = src.read()
        for name, values in zip(("B02", "B03", "B04", "B08"), refl):
            # (20 m bands beside them: not taken)
            _write_band(r10m.parent / "R20m" / f"fixture_{name}_20m.tif", np.round(values * 10000 + 1000), src)
    bands = find_band_files([safe])  # the SAFE folder, as downloaded: its 10 m bands found inside
    assert {p.parent.name for p in bands.files.values()} == {"R10m"}
    assert bands.scaling == (0.0001, -0.1)
    stack_bands(bands, tmp_path / "image.tif")
    with ImageReader(tmp_path / "image.tif") as reader:
        feats, _ = reader.read()
    assert np.abs(np.moveaxis(feats[..., :4], -1, 0) - refl[[2, 1, 0, 3]]).max() < 6e-5
    # a Level-1C product's bands (top of the atmosphere) are refused, with the product to take instead
    l1c = tmp_path / "S2B_MSIL1C_fixture_N0400_R022_fixture.SAFE"
    l1c.mkdir()
    for p in r10m.iterdir():
        (l1c / p.name).write_bytes(p.read_bytes())
    with pytest.raises(BandError, match="Level-1C .* Level-2A"):
        find_band_files([l1c])


def test_bad_downloads_are_refused_before_anything_is_written(tmp_path):
    landsat_download(tmp_path)
    out = tmp_path / "image.tif"
    (tmp_path / f"{LANDSAT_ID}_SR_B5.TIF").unlink()
    with pytest.raises(BandError, match="NIR band's file .*SR_B5.* is missing"):
        find_band_files([tmp_path])
    with pytest.raises(BandError, match="no Landsat Collection 2 Level-2"):
        find_band_files([LANDSAT])
    # Sentinel-2's 20 m bands only (its R20m folder): said so, not "no band files" at all
    r20m = tmp_path / "R20m"
    r20m.mkdir()
    for band in ("B02", "B03", "B04", "B8A"):
        (r20m / f"T33UWP_20210617T100031_{band}_20m.jp2").write_bytes(b"")
    with pytest.raises(BandError, match=r"^these are Sentinel-2's 20 m band files .* B02, B03, B04 and B08"):
        find_band_files([r20m])
    shutil.rmtree(r20m)
    # a band of another resolution (Sentinel-2's 20 m files beside the 10 m ones)
    landsat_download(tmp_path)
    with rasterio.open(tmp_path / f"{LANDSAT_ID}_SR_B5.TIF") as src:
        half = src.read(1)[::2, ::2]
        profile = {**src.profile, "width": 32, "height": 32, "transform": src.transform @ src.transform.scale(2, 2)}
    with rasterio.open(tmp_path / f"{LANDSAT_ID}_SR_B5.TIF", "w", **profile) as dst:
        dst.write(half, 1)
    with pytest.raises(GridMismatchError, match=r"not on .*SR_B4.TIF's grid \(32 x 32 px against 64 x 64\)"):
        stack_bands(find_band_files([tmp_path]), out)
    # the same size, but shifted by a pixel, or without a CRS: the difference named
    with rasterio.open(tmp_path / f"{LANDSAT_ID}_SR_B4.TIF") as src:
        _write_band(tmp_path / f"{LANDSAT_ID}_SR_B5.TIF", src.read(1), type("Shifted", (), {
            "width": src.width, "height": src.height, "crs": src.crs,
            "transform": src.transform @ src.transform.translation(1, 0)})())
        px, x0, y0 = src.transform.a, src.transform.c, src.transform.f
    with pytest.raises(GridMismatchError, match=rf"another origin or pixel size: {px:g} x {px:g} from \({x0 + px:,.10g}, "
                                                rf"{y0:,.10g}\) against {px:g} x {px:g} from \({x0:,.10g}, {y0:,.10g}\)"):
        stack_bands(find_band_files([tmp_path]), out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(LANDSAT_ID)) == []
    # an output that exists is kept, unless overwritten
    landsat_download(tmp_path)
    out.write_bytes(b"earlier")
    with pytest.raises(OutputExistsError):
        stack_bands(find_band_files([tmp_path]), out)
    assert out.read_bytes() == b"earlier"
    with pytest.raises(ConfigError, match="is an input"):
        stack_bands(find_band_files([tmp_path]), tmp_path / f"{LANDSAT_ID}_SR_B4.TIF", overwrite=True)
    with pytest.raises(ConfigError, match="not inside"):
        stack_bands(find_band_files([tmp_path]), tmp_path / "w.tif", window=(60, 0, 10, 10))
    assert not (tmp_path / "w.tif").exists()
    # one file given for two bands (--red F --green F ...: a stack of four equal bands, written without a word)
    files = find_band_files([tmp_path]).files
    for role in ("G", "NIR"):
        doubled = BandFiles({**files, role: files["R"]}, "files", None)
        with pytest.raises(BandError, match=rf"^{LANDSAT_ID}_SR_B4.TIF is given as both R and {role}; give each band's own"):
            stack_bands(doubled, tmp_path / "w.tif")
    assert not (tmp_path / "w.tif").exists()


def test_cli_stacks_a_box_of_a_download(tmp_path, capsys):
    """`python -m core stack FOLDER --out F --bbox W,S,E,N`: the pixels covering the box, georeferenced."""
    from core.__main__ import main

    refl = landsat_download(tmp_path)
    with rasterio.open(tmp_path / f"{LANDSAT_ID}_SR_B4.TIF") as src:
        from rasterio.warp import transform_bounds

        # the lon/lat box of rows 16-47, columns 8-39 (pulled in by a metre, so as not to reach a pixel further)
        left, top = src.transform @ (8, 16)
        right, bottom = src.transform @ (40, 48)
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", left + 1, bottom + 1, right - 1, top - 1)
    assert main(["stack", str(tmp_path), "--out", str(tmp_path / "box.tif"), "--bbox", f"{w},{s},{e},{n}"]) == 0
    printed = json.loads(capsys.readouterr().out)
    row, col, height, width = printed["window"]
    assert printed["from"] == "landsat" and printed["bbox"] == [w, s, e, n]
    with ImageReader(tmp_path / "box.tif") as reader:
        feats, valid = reader.read()
        assert (reader.grid.width, reader.grid.height) == (width, height)
    # (the box's lon/lat edges are not the grid's: the window covers rows 16-47 and columns 8-39, and may take
    # a pixel more at an edge)
    assert row <= 16 and col <= 8 and row + height >= 48 and col + width >= 40 and height <= 34 and width <= 34
    assert np.abs(np.moveaxis(feats[..., :4], -1, 0) - refl[:, row:row + height, col:col + width]).max() < 2e-5
    # some but not all of --red, --green, --blue, --nir: one clear line, exit status 2
    assert main(["stack", "--red", str(tmp_path / f"{LANDSAT_ID}_SR_B4.TIF"), "--out", str(tmp_path / "x.tif")]) == 2
    assert "all four of --red, --green, --blue and --nir (missing: --green, --blue, --nir)" in capsys.readouterr().err
    # the folder after --bbox (which takes "W S E N" too) was taken for a fifth number: said as such (it said
    # "give the download's band files or their folder", which had been given)
    assert main(["stack", "--bbox", f"{w},{s},{e},{n}", str(tmp_path), "--out", str(tmp_path / "y.tif")]) == 2
    err = capsys.readouterr().err
    assert f"--bbox takes four numbers, west, south, east and north, and {str(tmp_path)!r} is not one" in err
    assert not (tmp_path / "y.tif").exists()


@pytest.mark.parametrize("declared", [float("nan"), None])
def test_nan_in_float_band_files_is_no_data_in_the_stack(tmp_path, declared):
    """Float band files (reflectance 0-1, as a GIS exports them) with NaN where there is no data: the
    NaN were written under the stack's nodata 0, and every reader of it (info, predict, the dashboard)
    refused the file for holding NaN it did not declare."""
    from core.__main__ import main

    with rasterio.open(LANDSAT) as src:
        refl = src.read()[[2, 1, 0, 3]].astype("float32")  # R, G, B, NIR
        refl[:, :3] = np.nan
        refl[3, 10, 20] = np.inf  # (one band only: the pixel is no data in all four)
        paths = []
        for band, values in zip(("red", "green", "blue", "nir"), refl):
            paths += [f"--{band}", str(tmp_path / f"{band}.tif")]
            _write_band(tmp_path / f"{band}.tif", values, src, dtype="float32", nodata=declared)
    assert main(["stack", *paths, "--out", str(tmp_path / "stack.tif")]) == 0
    with rasterio.open(tmp_path / "stack.tif") as out:
        stacked = out.read()
    assert np.isfinite(stacked).all() and (stacked[:, :3] == 0).all() and (stacked[:, 10, 20] == 0).all()
    with ImageReader(tmp_path / "stack.tif") as reader:
        feats, valid = reader.read()
    assert not valid[:3].any() and not valid[10, 20] and valid.sum() == valid.size - 3 * valid.shape[1] - 1
    np.testing.assert_array_equal(np.moveaxis(feats[..., :4], -1, 0)[:, valid], refl[:, valid])


def test_a_scene_all_cloud_or_a_resampled_mask_is_refused_and_nothing_is_written(tmp_path):
    """A scene whose every pixel is masked was stacked (exit 0, the next step printed: predict), and predict
    then refused it; a QA_PIXEL stored as Float32 crashed (bitwise_and of floats): its whole numbers are its
    flags, its fractions (resampled) are refused."""
    from core.errors import NoDataError

    landsat_download(tmp_path, cloudy=np.ones((64, 64), bool))
    out = tmp_path / "out" / "image.tif"
    with pytest.raises(NoDataError, match=r"no valid pixel \(all its 4,096 pixels are masked as cloud.*not written; "
                                          r"choose a scene of another date"):
        stack_bands(find_band_files([tmp_path]), out)
    assert not out.parent.exists()
    cloudy = np.zeros((64, 64), bool)
    cloudy[:, :32] = True
    landsat_download(tmp_path, cloudy)  # the cloudy half asked for alone
    with pytest.raises(NoDataError, match=r"image of the box asked for would hold no valid pixel"):
        stack_bands(find_band_files([tmp_path]), out, window=(0, 0, 64, 32))
    assert stack_bands(find_band_files([tmp_path]), out, window=(0, 16, 64, 32))["cloud_masked_pixels"] == 64 * 16
    qa = tmp_path / f"{LANDSAT_ID}_QA_PIXEL.TIF"
    with rasterio.open(qa) as src:  # converted to floats on its way: the same flags, the same mask
        flags = src.read(1)
        _write_band(qa, flags, src, dtype="float32")
    assert stack_bands(find_band_files([tmp_path]), tmp_path / "f.tif")["cloud_masked_pixels"] == 64 * 32
    with rasterio.open(qa) as src:  # resampled: flags averaged into fractions
        _write_band(qa, flags / 3.0, src, dtype="float32")
    with pytest.raises(BandError, match=r"QA_PIXEL.TIF holds float32 values that are not whole numbers, not the flags "
                                        r".* give the file as downloaded"):
        stack_bands(find_band_files([tmp_path]), tmp_path / "other.tif")
    assert not (tmp_path / "other.tif").exists()


def test_a_landsat_9_download_takes_the_landsat_8_9_band_numbers(tmp_path):
    """Landsat 8 and 9 (OLI) number red 4 and NIR 5; Landsat 4-7 red 3 and NIR 4."""
    landsat_download(tmp_path)
    for p in tmp_path.glob(f"{LANDSAT_ID}_*"):
        p.rename(tmp_path / p.name.replace("LC08", "LC09"))
    bands = find_band_files([tmp_path])
    assert {b: p.name.split("_SR_")[-1] for b, p in bands.files.items()} == {
        "R": "B4.TIF", "G": "B3.TIF", "B": "B2.TIF", "NIR": "B5.TIF"}


def test_a_gap_in_one_band_file_is_no_data_in_every_band_of_the_stack(tmp_path):
    """A pixel of 0 (fill) in one band file, or of a band file's own declared nodata, is no data in all
    four bands of the stack, not read as reflectance; clouds over it are not counted again as clouds."""
    cloudy = np.zeros((64, 64), bool)
    cloudy[0:4, 0:10] = True  # 40 px, 2 of them already gaps
    landsat_download(tmp_path, cloudy)
    b2 = tmp_path / f"{LANDSAT_ID}_SR_B2.TIF"
    with rasterio.open(b2) as src:
        blue = src.read(1)
        blue[0, 0] = blue[30, 30] = 0  # the blue band's own gaps
        blue[0, 1] = blue[40, 40] = 65535  # its declared fill
        _write_band(b2, blue, src, nodata=65535)
    (tmp_path / "out").mkdir()
    done = stack_bands(find_band_files([tmp_path]), tmp_path / "out" / "image.tif")
    gaps = [(0, 0), (30, 30), (0, 1), (40, 40)]
    with rasterio.open(tmp_path / "out" / "image.tif") as out:
        stacked = out.read()
    assert all((stacked[:, r, c] == 0).all() for r, c in gaps)
    assert done["no_data_pixels"] == 40 + 2 and done["cloud_masked_pixels"] == 40 - 2
    with ImageReader(tmp_path / "out" / "image.tif") as reader:
        _, valid = reader.read()
    assert not any(valid[r, c] for r, c in gaps) and valid.sum() == 64 * 64 - 42


def test_a_window_past_the_scenes_right_or_bottom_edge_is_refused(tmp_path):
    landsat_download(tmp_path)
    bands = find_band_files([tmp_path])
    for window in ((0, 60, 10, 10), (60, 0, 10, 10)):
        with pytest.raises(ConfigError, match="is not inside the 64 x 64 px scene"):
            stack_bands(bands, tmp_path / "image.tif", window=window)
    assert not (tmp_path / "image.tif").exists()
