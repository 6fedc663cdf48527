import numpy as np
import pytest
import rasterio
from affine import Affine

from testdata import FLANDERS_LABELS, FLANDERS_S2, SAMPLE_IMAGE, SAMPLE_LABELS, cut, write_raster
from core.errors import BandError, CorruptFileError, GridMismatchError, InputNotFoundError, InvalidDataError
from core.labels import get_class_map
from core.raster import ImageReader, read_labels
from core.reflectance import ndvi

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


def test_labels_of_a_larger_tile_on_the_images_pixels_give_the_images_part(tmp_path):
    """A label tile larger than the image on the same pixels (a product's tile the image was cut
    from) was refused as "not on the image's grid: it is 84 x 84 px" though the image lies on it."""
    from rasterio.windows import Window

    from core.raster import grid_of_file

    grid = grid_of_file(FLANDERS_S2)
    exact = read_labels(FLANDERS_LABELS, get_class_map("worldcereal"), grid=grid)
    with rasterio.open(FLANDERS_LABELS) as src:
        codes = src.read(1)
    tile = np.zeros((84, 84), codes.dtype)
    tile[10:74, 10:74] = codes
    a, _, c, _, e, f = grid.transform
    path = write_raster(tmp_path / "tile.tif", tile, crs=grid.crs, transform=Affine(a, 0, c - 10 * a, 0, e, f - 10 * e),
                        descriptions=["LC"])
    assert np.array_equal(read_labels(path, get_class_map("worldcereal"), grid=grid), exact)
    part = read_labels(path, get_class_map("worldcereal"), grid=grid, window=Window(5, 6, 20, 30))
    assert np.array_equal(part, exact[6:36, 5:25])
    # half a pixel off: said so (it said "lies elsewhere: its first pixel is at column 0.5, row 0.0")
    shifted = write_raster(tmp_path / "half.tif", codes, crs=grid.crs, transform=Affine(a, 0, c + a / 2, 0, e, f))
    with pytest.raises(GridMismatchError, match=r"its pixels lie between the image's: its first pixel is at column "
                                                r"0.5, row 0 of the image; resample"):
        read_labels(shifted, get_class_map("worldcereal"), grid=grid)
    # an origin written rounded, 1 cm off on 10 m pixels (a thousandth of a pixel): the same grid (it was refused as
    # lying between the image's pixels, "at column 0.00, row 0.00"); a 5 cm one is refused with its own figure
    cm = write_raster(tmp_path / "cm.tif", codes, crs=grid.crs, transform=Affine(a, 0, c + 0.01, 0, e, f))
    assert np.array_equal(read_labels(cm, get_class_map("worldcereal"), grid=grid), exact)
    off = write_raster(tmp_path / "off.tif", codes, crs=grid.crs, transform=Affine(a, 0, c + 0.05, 0, e, f))
    with pytest.raises(GridMismatchError, match=r"at column 0.005, row 0 of the image"):
        read_labels(off, get_class_map("worldcereal"), grid=grid)


def test_labels_on_another_grid_are_refused(tmp_path):
    p = write_raster(tmp_path / "lab.tif", np.ones((1024, 1024), np.uint8), transform=Affine(30, 0, 60, 0, -30, 0))
    with ImageReader(SAMPLE_IMAGE) as r, pytest.raises(GridMismatchError, match="not on the image's grid: it lies "
                                                        r"elsewhere: its first pixel is at column -2,046, row 3,584 of"):
        read_labels(p, get_class_map("cdl"), grid=r.grid)
    with ImageReader(FLANDERS_S2) as r:  # what differs, in words with its figures
        with pytest.raises(GridMismatchError, match=r"it has no georeferencing \(no CRS; not a GeoTIFF"):
            read_labels(SAMPLE_LABELS, get_class_map("cdl"), grid=r.grid)
        # labels of part of the image on its pixels (the fields surveyed): no data elsewhere (they were refused,
        # with advice to resample what needed no resampling)
        t = r.grid.transform
        part = write_raster(tmp_path / "small.tif", np.ones((32, 40), np.uint8), crs=r.grid.crs,
                            transform=Affine(t[0], 0, t[2] + 30 * t[0], 0, t[4], t[5] + 16 * t[4]))  # from column 30, row 16
        expected = np.full((72, 72), 255, np.uint8)  # (its last columns reach beyond the image's 64)
        expected[16:48, 30:70] = 1
        assert np.array_equal(read_labels(part, get_class_map("binary"), grid=r.grid), expected[:64, :64])
        from rasterio.windows import Window

        assert np.array_equal(read_labels(part, get_class_map("binary"), grid=r.grid, window=Window(40, 40, 32, 32)),
                              expected[40:, 40:])
        south_up = Affine(t[0], 0, t[2], 0, -t[4], t[5] + 64 * t[4])  # the same place, rows running north
        with pytest.raises(GridMismatchError, match=r"its rows run the other way than the image's \(one of them is "
                                                    r"stored south-up: gdalwarp IN.tif OUT.tif writes it north-up\)"):
            read_labels(write_raster(tmp_path / "south.tif", np.ones((64, 64), np.uint8), crs=r.grid.crs, transform=south_up),
                        get_class_map("binary"), grid=r.grid)
        # turned against the image's pixels (a rotated copy): said so, not "its pixels are 10 x 10, the image's 10 x 10"
        from core.grid import Grid, grid_difference

        turned = tuple(Affine(*t[:6]) @ Affine.rotation(30))[:6]
        said = grid_difference(r.grid, Grid(r.grid.crs, turned, 64, 64))
        assert said.startswith("its pixels are turned 30 degrees against the image's: "), said
        assert "rio warp IN.tif OUT.tif --like IMAGE.tif" in said
        # ... nor a copy of the image's size moved by a pixel (an export off by one), said so
        with pytest.raises(GridMismatchError, match=r"it is of the image's size but moved by 1 column\(s\) and -2 "
                                                    r"row\(s\) of its pixels \(an export off by some pixels\?\)"):
            read_labels(write_raster(tmp_path / "off.tif", np.ones((64, 64), np.uint8), crs=r.grid.crs,
                                     transform=Affine(t[0], 0, t[2] + t[0], 0, t[4], t[5] - 2 * t[4])),
                        get_class_map("binary"), grid=r.grid)
        # ... nor without a CRS where both files have a geotransform of their own (the sample scene's): patches
        # and train refused such labels, saying "its pixels are the image's; resample the labels"
        with ImageReader(SAMPLE_IMAGE) as s:
            a, _, c, _, e, f = s.grid.transform
            quarter = read_labels(write_raster(tmp_path / "half.tif", np.ones((512, 512), np.uint8),
                                               transform=Affine(a, 0, c + 512 * a, 0, e, f)), get_class_map("binary"), grid=s.grid)
            assert (quarter[:512, 512:] == 1).all() and (quarter[512:] == 255).all() and (quarter[:, :512] == 255).all()
            # but not without a geotransform (GDAL's identity, which every such TIFF has: any smaller labels would
            # be "on the same pixels"), said so with what to do instead of "resample"
            with rasterio.open(tmp_path / "bare.tif", "w", driver="GTiff", width=512, height=512, count=1,
                               dtype="uint8") as dst:
                dst.write(np.ones((1, 512, 512), np.uint8))
            with pytest.raises(GridMismatchError) as err:
                read_labels(tmp_path / "bare.tif", get_class_map("binary"), grid=s.grid)
            assert str(err.value) == (  # (it said "its pixels are 1 x 1, the image's 30 x 30 (CRS units); resample")
                "bare.tif is not on the image's grid: it has no geotransform (where its pixels lie) and the image has one, "
                "so they cannot be matched; give labels with the image's geotransform (e.g. gdal_edit.py -a_ullr with "
                "the image's corners)")
        # (resampling, which it advised, would not help: they do not overlap)
        with pytest.raises(GridMismatchError, match=r"it lies elsewhere: its first pixel is at column 64, row 0.*; the "
                                                    r"two do not overlap: give the labels of the image's own area$"):
            read_labels(write_raster(tmp_path / "beside.tif", np.ones((32, 40), np.uint8), crs=r.grid.crs,
                                     transform=Affine(t[0], 0, t[2] + 64 * t[0], 0, t[4], t[5])), get_class_map("binary"), grid=r.grid)
        mask = read_labels(FLANDERS_LABELS, get_class_map("worldcereal"), grid=r.grid)
        with pytest.raises(GridMismatchError, match=r"it is in EPSG:4326, the image in EPSG:32631; resample"):
            read_labels(write_raster(tmp_path / "deg.tif", mask, crs="EPSG:4326", transform=Affine(*t)),
                        get_class_map("binary"), grid=r.grid)
        coarse = Affine(t[0] * 3, 0, t[2], 0, t[4] * 3, t[5])
        with pytest.raises(GridMismatchError, match=r"its pixels are 30 x 30, the image's 10 x 10 \(CRS units\); "
                                                    r"resample the labels onto the image's grid first \(e.g. gdalwarp"
                                                    r".*python -m core resample, the labels it resampled with it"):
            read_labels(write_raster(tmp_path / "30m.tif", mask, crs=r.grid.crs, transform=coarse),
                        get_class_map("binary"), grid=r.grid)
        # labels of another place on the same CRS: how far, in words (the columns and rows alone said little)
        moved = Affine(t[0], 0, t[2] + 73_200.0, 0, t[4], t[5] - 6_950.0)
        with pytest.raises(GridMismatchError, match=r"its first pixel is at column 7,320, row 695 of the image \(about "
                                                    r"73 km east and 7.0 km south of the image's\); the two do not overlap"):
            read_labels(write_raster(tmp_path / "moved.tif", mask, crs=r.grid.crs, transform=moved),
                        get_class_map("binary"), grid=r.grid)
    assert set(np.unique(mask)) == {0, 1}  # LC: 11 annual cropland, others not crop; no NaN in LC


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
    # a file whose header is cut (not a COG): said as plainly, the file named once ("cannot read x.tif:
    # x.tif: TIFFReadDirectory...; is it a GeoTIFF?")
    (tmp_path / "cut.tif").write_bytes(SAMPLE_IMAGE.read_bytes()[:3000])
    with pytest.raises(CorruptFileError, match=r"^cannot read cut.tif \(TIFFReadDirectory:[^;]*\): the file is "
                                               r"truncated or damaged; copy or download it again$"):
        ImageReader(tmp_path / "cut.tif")
    # compressed with a codec this GDAL lacks (the tag of a deflated file set to LERC's 34892): not "damaged"
    with rasterio.open(tmp_path / "deflated.tif", "w", driver="GTiff", width=16, height=16, count=4, dtype="uint16",
                       compress="deflate", crs="EPSG:32631", transform=Affine(10, 0, 0, 0, -10, 0)) as dst:
        dst.write(np.ones((4, 16, 16), np.uint16))
    data = (tmp_path / "deflated.tif").read_bytes()
    deflate = b"\x03\x01\x03\x00\x01\x00\x00\x00\x08\x00"  # tag 259 (compression), SHORT, 1, deflate
    assert data.count(deflate) == 1
    (tmp_path / "codec.tif").write_bytes(data.replace(deflate, deflate[:8] + (34892).to_bytes(2, "little")))
    with pytest.raises(CorruptFileError, match=r"^cannot read codec.tif: it is compressed with a codec this "
                                               r"installation lacks .*gdal_translate -co COMPRESS=DEFLATE"):
        ImageReader(tmp_path / "codec.tif")
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


def test_windows_past_the_edge_of_a_rotated_image_hold_its_own_pixels(tmp_path):
    """A rotated grid (as some aerial and rectified products have) is read pixel for pixel at the
    edges too: rasterio's boundless reads warp such a grid north-up, which moved and resampled the
    pixels of every edge tile of a prediction."""
    from rasterio.windows import Window

    win = Window(100, 100, 120, 90)
    rotated = Affine.translation(500000, 5000000) @ Affine.rotation(20) @ Affine.scale(30, -30)
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


def test_a_folder_given_as_an_image_is_named(tmp_path, monkeypatch):
    """``info --image .`` said "error:  is not a GeoTIFF" (the folder "." has no name)."""
    from core.errors import CorruptFileError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(CorruptFileError, match=r"^\. is a folder; give the image or labels GeoTIFF \(\.tif\) in it$"):
        ImageReader(".")
    # an Earth Engine image export's folder: its mixer named, which is given in place of an image
    (tmp_path / "camana-mixer.json").write_text("{}")
    with pytest.raises(CorruptFileError, match=r"in it, or the export's camana-mixer\.json$"):
        ImageReader(".")
    (tmp_path / "other-mixer.json").write_text("{}")
    with pytest.raises(CorruptFileError, match=r"in it, or an export's PREFIX-mixer\.json$"):
        ImageReader(".")


def test_an_overview_of_a_large_image_holds_every_kth_pixel_on_a_grid_of_the_same_bounds(tmp_path):
    """What a look at a whole image reads (the Region page's backdrop read a Sentinel-2 tile whole: 8 GB)."""

    for path, side, step in ((SAMPLE_IMAGE, 256, 4), (FLANDERS_S2, 20, 4)):
        with ImageReader(path) as r:
            feats, valid = r.read()
            small, small_valid, grid = r.read_overview(side)
            whole = r.grid
        assert small.shape == (whole.height // step, whole.width // step, 5) and grid.crs == whole.crs
        # the centre pixel of each step x step block (GDAL's nearest), features and no data alike
        mid = step // 2
        assert np.array_equal(small, feats[mid::step, mid::step]) and np.array_equal(small_valid, valid[mid::step, mid::step])
        assert (grid.width * grid.transform[0], grid.height * grid.transform[4]) == \
            (whole.width * whole.transform[0], whole.height * whole.transform[4])
        assert grid.transform[2::3] == whole.transform[2::3]  # the same corner
        with ImageReader(path) as r:  # an image that fits is read whole, on its own grid
            again, _, same = r.read_overview(max(whole.shape))
        assert same == whole and np.array_equal(again, feats)
    # sides that the step does not divide, and unlike (301 x 1001 px: 76 x 251): each axis scaled by its own ratio
    odd = write_raster(tmp_path / "odd.tif", np.full((4, 301, 1001), 1500, np.int16), crs="EPSG:32614",
                       transform=rasterio.Affine(30.0, 0, 500000.0, 0, -30.0, 4000000.0), descriptions=["R", "G", "B", "NIR"])
    with ImageReader(odd) as r:
        _, _, grid = r.read_overview(256)
    assert grid.shape == (76, 251)
    assert grid.transform[0] * 251 == pytest.approx(30.0 * 1001) and grid.transform[4] * 76 == pytest.approx(-30.0 * 301)
    # a file with overviews: read from them (GDAL picks the level), on a grid of the same bounds
    import shutil

    from rasterio.enums import Resampling

    shutil.copy(FLANDERS_S2, tmp_path / "ovr.tif")
    with rasterio.open(tmp_path / "ovr.tif", "r+") as dst:
        dst.build_overviews([2, 4], Resampling.average)
    with ImageReader(tmp_path / "ovr.tif") as r:
        small, small_valid, grid = r.read_overview(16)
        assert small.shape == (16, 16, 5) and small_valid.all() and grid.transform[0] == 4 * r.grid.transform[0]
        with rasterio.open(tmp_path / "ovr.tif", overview_level=1) as level:  # (the 4x level: its averages)
            assert np.allclose(small[..., 0], level.read(r.band_index["R"]), atol=1e-6)


def test_pixels_hidden_by_the_files_mask_band_are_no_data(tmp_path):
    """A GDAL mask band (an internal mask, as a cloud mask or a warped scene's edge is written) was
    ignored: its hidden pixels, whose values remain, were predicted and counted."""
    import shutil

    from rasterio.windows import Window

    path = tmp_path / "masked.tif"
    shutil.copy(FLANDERS_S2, path)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as dst:
        hidden = np.zeros((dst.height, dst.width), bool)
        hidden[:, :24] = True
        dst.write_mask(np.where(hidden, 0, 255).astype(np.uint8))
    with ImageReader(FLANDERS_S2) as r:
        feats, valid = r.read()
    assert valid.all()  # the values under the mask are data
    with ImageReader(path) as r:
        got, got_valid = r.read()
        assert np.array_equal(got_valid, ~hidden) and np.array_equal(got[~hidden], feats[~hidden])
        assert not got[hidden].any()  # no data has features 0
        assert np.array_equal(r.read_valid(Window(-8, 0, 40, 40)), np.pad(~hidden[:40, :32], ((0, 0), (8, 0))))
        spread, rows, cols = r.read_valid_spread(Window(0, 0, 64, 64), 16)
        assert np.array_equal(spread, ~hidden[np.ix_(rows, cols)])
        _, small_valid, _ = r.read_overview(16)
        assert np.array_equal(small_valid, ~hidden[2::4, 2::4])
    # a 4-band file written as RGBA: GDAL takes its NIR for alpha, but it is data, not a mask
    with rasterio.open(FLANDERS_S2) as src:
        profile, data, names = src.profile, src.read(), src.descriptions
    profile.update(photometric="RGB", alpha="YES", dtype="uint16", nodata=None)  # (GDAL's alpha: integers)
    data = np.round(data * 10000).astype(np.uint16)
    data[3, :, :8] = 0  # NIR 0 (as "transparent" alpha) in some pixels
    with rasterio.open(tmp_path / "rgba.tif", "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = names
    with ImageReader(tmp_path / "rgba.tif") as r, rasterio.open(tmp_path / "rgba.tif") as src:
        assert src.colorinterp[3] == rasterio.enums.ColorInterp.alpha and r.band_index["NIR"] == 4
        assert r.read()[1].all()
    # R, G, B, NIR and an alpha band after them (GDAL takes alpha as the mask of 2- and 4-band files only):
    # its 0 hid pixels that were predicted and counted (here the same 24 columns)
    profile.update(count=5, photometric="MINISBLACK", alpha="UNSPECIFIED")
    with rasterio.open(tmp_path / "alpha.tif", "w", **profile) as dst:
        dst.write(np.round(feats_stored(FLANDERS_S2)).astype(np.uint16), [1, 2, 3, 4])
        dst.write(np.where(hidden, 0, 255).astype(np.uint16), 5)
        dst.colorinterp = [rasterio.enums.ColorInterp.gray] * 4 + [rasterio.enums.ColorInterp.alpha]
        dst.descriptions = (*names, "alpha")
    with ImageReader(tmp_path / "alpha.tif") as r:
        assert np.array_equal(r.read()[1], ~hidden)
        assert np.array_equal(r.read_valid(Window(-8, 0, 40, 40)), np.pad(~hidden[:40, :32], ((0, 0), (8, 0))))
        assert np.array_equal(r.read_overview(16)[1], ~hidden[2::4, 2::4])
        spread, rows, cols = r.read_valid_spread(Window(0, 0, 64, 64), 16)  # (the alpha band read as one band)
        assert np.array_equal(spread, ~hidden[np.ix_(rows, cols)])


def feats_stored(path) -> np.ndarray:
    """The image's R, G, B, NIR as stored x 10000 (its reflectance as integers), (4, h, w)."""
    with rasterio.open(path) as src:
        return src.read([1, 2, 3, 4]) * 10000.0


def _latin1_names(path, data, names):
    """``data`` at ``path`` with band names written in Latin-1, as some software writes them: GDAL keeps
    the bytes, which are not UTF-8 (each "é" of ``names`` is one byte then, padded with a space to keep
    the file's offsets)."""
    write_raster(path, data, descriptions=names)
    raw = path.read_bytes()
    assert raw.count("é".encode()) == sum(n.count("é") for n in names)
    path.write_bytes(raw.replace("é".encode(), "é ".encode("latin-1")))
    return path


def test_band_names_in_another_encoding_are_refused_unless_the_bands_are_given_by_number(tmp_path):
    """rasterio cannot decode band names that are not UTF-8: a UnicodeDecodeError came through as a
    traceback (found by fuzzing uploads). Unnamed then, the bands are not guessed: their numbers are asked for."""
    with rasterio.open(SAMPLE_IMAGE) as src:
        data = src.read(window=rasterio.windows.Window(0, 0, 64, 64))
    path = _latin1_names(tmp_path / "latin1.tif", data, ["Rouge (réflectance)", "Vert (réflectance)",
                                                          "Bleu (réflectance)", "Proche infrarouge (réflectance)"])
    with pytest.raises(BandError, match="band names of latin1.tif are not UTF-8 .*--bands 1,2,3,4"):
        ImageReader(path)
    with ImageReader(path, {"R": 1, "G": 2, "B": 3, "NIR": 4}) as reader:
        feats, valid = reader.read()
    assert valid.all() and feats.shape == (64, 64, 5)
    # as labels: the first band (or the one numbered), as in a file without names
    codes = np.stack([np.full((8, 8), 176, np.uint8), np.full((8, 8), 1, np.uint8)])  # grassland, corn
    labels = _latin1_names(tmp_path / "labels.tif", codes, ["Classe (légende)", "Culture (année)"])
    cdl = get_class_map("cdl")
    assert (read_labels(labels, cdl) == 0).all() and (read_labels(labels, cdl, band=2) == 1).all()


def _damaged_keys(src_path, dst_path):
    """A copy of the little-endian GeoTIFF ``src_path`` whose GeoAsciiParams tag has a type TIFF does not
    have (145) and whose ModelPixelScale points beyond the file's end: a real upload's damage (found by
    fuzzing) that GDAL opens, losing the georeferencing, and reports at the next call that checks."""
    import struct

    raw = bytearray(src_path.read_bytes())
    assert raw[:4] == b"II*\0"
    ifd = struct.unpack_from("<I", raw, 4)[0]
    (n,) = struct.unpack_from("<H", raw, ifd)
    entries = {struct.unpack_from("<H", raw, ifd + 2 + 12 * k)[0]: ifd + 2 + 12 * k for k in range(n)}
    struct.pack_into("<H", raw, entries[34737] + 2, 145)  # GeoAsciiParams: its type
    struct.pack_into("<I", raw, entries[33550] + 8, len(raw) + 2**29)  # ModelPixelScale: where its values are
    dst_path.write_bytes(bytes(raw))
    return dst_path


def test_a_geotiff_whose_keys_are_damaged_is_refused_when_opened(tmp_path):
    """rasterio's CPLE_AppDefinedError about the damage came through as a traceback."""
    damaged = _damaged_keys(FLANDERS_S2, tmp_path / "damaged.tif")
    with pytest.raises(CorruptFileError, match=r"cannot read damaged.tif \(.*GeoAsciiParams.*\): the file is damaged"):
        ImageReader(damaged)
    with pytest.raises(CorruptFileError, match="damaged.tif"):
        read_labels(damaged, get_class_map("binary"))


def test_reflectance_of_another_size_than_its_grid_is_refused(tmp_path):
    """Written in strips, features of 200 rows on a grid of 300 were stretched to it by GDAL, unsaid."""
    from core.grid import Grid
    from core.raster import write_reflectance

    grid = Grid(None, (1, 0, 0, 0, 1, 0), 300, 300)
    feats, valid = np.ones((200, 300, 5), np.float32), np.ones((200, 300), bool)
    with pytest.raises(ValueError, match="features are 300x200 px, grid is 300x300"):
        write_reflectance(tmp_path / "x.tif", feats, valid, grid)
    assert not (tmp_path / "x.tif").exists()


def test_row_strips_cover_every_row_once_with_a_short_last_strip():
    from core.raster import row_strips

    assert row_strips(5, 10, 20) == [(0, 2), (2, 4), (4, 5)]
    assert row_strips(4, 10, 20) == [(0, 2), (2, 4)]
    assert row_strips(3, 1000, 20) == [(0, 1), (1, 2), (2, 3)]  # at least a row each


@pytest.mark.parametrize("tiled", [False, True])
@pytest.mark.parametrize("keep", [0.3, 0.7, 0.95, 0.999])
def test_a_geotiff_that_did_not_reach_the_disk_whole_is_refused(tmp_path, keep, tiled):
    """check_written: a file cut short anywhere (a full disk at close) is an OSError. Cut, a striped file
    (its header first) lacks blocks; a tiled, deflated one (the project's writer: header last) does not open."""
    import errno

    from core.grid import Grid
    from core.raster import _write_bands, check_written

    whole = tmp_path / "whole.tif"
    bands = np.random.default_rng(0).integers(0, 10_000, (4, 300, 300)).astype("int16")
    if tiled:
        _write_bands(whole, bands, Grid(None, (30, 0, 0, 0, -30, 0), 300, 300), None, ["R", "G", "B", "NIR"])
    else:
        write_raster(whole, bands)
    check_written(whole)  # (whole: no error)
    cut_short = tmp_path / "cut.tif"
    data = whole.read_bytes()
    cut_short.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(OSError) as caught:
        check_written(cut_short)
    assert caught.value.errno == errno.EIO and caught.value.filename == str(cut_short)
    assert caught.value.strerror.startswith("the GeoTIFF did not reach the disk whole (" +
                                            ("cut.tif: TIFFReadDirectory" if tiled else "block 0,"))


def test_a_window_past_the_edge_holds_the_images_pixels_in_their_places(tmp_path):
    from rasterio.windows import Window

    data = (np.arange(4 * 12 * 10).reshape(4, 12, 10) * 3 + 500).astype(np.int16)
    path = write_raster(tmp_path / "ramp.tif", data, crs="EPSG:32631", transform=Affine(10, 0, 500000, 0, -10, 5600000),
                        descriptions=["R", "G", "B", "NIR"])
    with ImageReader(path) as r:
        feats, valid = r.read()
        edge, edge_valid = r.read(Window(-2, -3, 8, 8))
        noisy, _ = r.read(Window(-2 + 1e-9, -3 + 1e-9, 8, 8))  # offsets with float noise: the same whole pixels
    assert np.array_equal(edge[3:, 2:], feats[:5, :6]) and edge_valid[3:, 2:].all()
    assert not edge_valid[:3].any() and not edge_valid[:, :2].any()
    assert np.array_equal(noisy, edge)


def test_the_margin_of_a_window_is_zero_where_the_fill_does_not_fit_the_type(tmp_path):
    from rasterio.windows import Window

    from core.raster import read_padded

    path = write_raster(tmp_path / "u16.tif", np.full((4, 4, 4), 1500, np.uint16))
    with rasterio.open(path) as src:
        out = read_padded(src, path, [1, 2, 3, 4], Window(-2, 0, 6, 4), -9999)  # (a nodata value uint16 cannot hold)
    assert out.dtype == np.uint16 and (out[:, :, :2] == 0).all() and (out[:, :, 2:] == 1500).all()


def test_an_overview_read_in_strips_of_rows_holds_each_strips_pixels(monkeypatch):
    import core.raster

    with ImageReader(FLANDERS_S2) as r:
        feats, valid = r.read()
        monkeypatch.setattr(core.raster, "OVERVIEW_STRIP_PIXELS", 5 * r.grid.width)  # strips of 5 rows, as a large image's
        small, small_valid, _ = r.read_overview(16)
    assert np.array_equal(small, feats[2::4, 2::4]) and np.array_equal(small_valid, valid[2::4, 2::4])


def test_the_spread_of_a_window_smaller_than_its_side_is_all_of_its_pixels():
    from rasterio.windows import Window

    with ImageReader(FLANDERS_S2) as r:
        valid, rows, cols = r.read_valid_spread(Window(4, 2, 20, 10), 512)
        assert valid.shape == (10, 20) and rows.tolist() == list(range(10)) and cols.tolist() == list(range(20))
        assert np.array_equal(valid, r.read_valid(Window(4, 2, 20, 10)))


def test_each_sampled_pixel_is_counted_once(tmp_path):
    import re

    data = np.full((4, 300, 300), 0.2, np.float32)
    data[0] = np.nan  # NaN without a NaN nodata value
    path = write_raster(tmp_path / "nan.tif", data, descriptions=["R", "G", "B", "NIR"])
    with pytest.raises(InvalidDataError, match="sampled pixels") as err:
        ImageReader(path)
    assert 0 < int(re.search(r"in (\d+) sampled pixels", str(err.value)).group(1)) <= 300 * 300


def test_the_scale_of_an_image_is_its_red_bands(tmp_path):
    path = write_raster(tmp_path / "s.tif", np.full((4, 16, 16), 1500, np.int16), descriptions=["R", "G", "B", "NIR"])
    with rasterio.open(path, "r+") as dst:
        dst.scales = (1e-4, 1e-4, 1e-4, 2e-4)
    with ImageReader(path) as r:
        assert r.scale == pytest.approx(1e-4) and r.scales[3] == pytest.approx(2e-4)


def test_a_truncated_tiff_is_said_to_be_damaged(tmp_path):
    (tmp_path / "cut.tiff").write_bytes(SAMPLE_IMAGE.read_bytes()[:3000])
    with pytest.raises(CorruptFileError, match=r"^cannot read cut.tiff \(.*\): the file is truncated or damaged"):
        ImageReader(tmp_path / "cut.tiff")


def test_a_label_band_is_found_by_its_name(tmp_path):
    codes = np.stack([np.full((8, 8), 176, np.uint8), np.full((8, 8), 1, np.uint8)])  # grassland, corn
    cdl = get_class_map("cdl")
    years = write_raster(tmp_path / "years.tif", codes, descriptions=["2020", "2021"])
    assert (read_labels(years, cdl, band="2021") == 1).all()  # a name of digits: that band, not band number 2021
    named = write_raster(tmp_path / "named.tif", codes, descriptions=["other", "cropland"])
    assert (read_labels(named, cdl) == 1).all()  # the class map's band (CDL's "cropland"), not the first
    with pytest.raises(BandError, match=r"label band 'crops' not found .*other, cropland"):
        read_labels(named, cdl, band="crops")


def test_labels_beside_the_image_are_refused_on_every_side(tmp_path):
    with ImageReader(FLANDERS_S2) as r:
        t = r.grid.transform
        for col, row in ((-40, 0), (0, -32), (0, 64)):  # ending at its left edge, at its top edge; from its bottom edge
            beside = write_raster(tmp_path / "beside.tif", np.ones((32, 40), np.uint8), crs=r.grid.crs,
                                  transform=Affine(t[0], 0, t[2] + col * t[0], 0, t[4], t[5] + row * t[4]))
            with pytest.raises(GridMismatchError, match="the two do not overlap"):
                read_labels(beside, get_class_map("binary"), grid=r.grid)


def test_smaller_labels_without_a_geotransform_are_refused_for_an_image_without_one(tmp_path):
    from core.grid import Grid

    with rasterio.open(tmp_path / "bare.tif", "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
        dst.write(np.ones((1, 4, 4), np.uint8))
    image = Grid(None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 8, 8)  # (GDAL's identity: no geotransform either)
    with pytest.raises(GridMismatchError, match="neither file says where its pixels lie"):
        read_labels(tmp_path / "bare.tif", get_class_map("binary"), grid=image)


def test_labels_without_a_crs_are_refused_though_their_geotransform_is_the_images(tmp_path):
    with ImageReader(FLANDERS_S2) as r:
        for size in (64, 80):  # the image's size, and larger
            path = write_raster(tmp_path / f"nocrs{size}.tif", np.ones((size, size), np.uint8),
                                transform=Affine(*r.grid.transform))
            with pytest.raises(GridMismatchError, match=r"it has no georeferencing \(no CRS"):
                read_labels(path, get_class_map("binary"), grid=r.grid)


def test_the_codes_checked_of_a_larger_label_tile_are_those_under_the_image(tmp_path):
    from core.raster import check_label_file, grid_of_file

    grid = grid_of_file(FLANDERS_S2)
    tile = np.full((84, 84), 255, np.uint8)
    tile[10:74, 10:74] = np.indices((64, 64)).sum(axis=0) % 2  # the image's part: 0 and 1 alike
    a, _, c, _, e, f = grid.transform
    path = write_raster(tmp_path / "tile.tif", tile, crs=grid.crs, transform=Affine(a, 0, c - 10 * a, 0, e, f - 10 * e))
    counts = check_label_file(path, get_class_map("binary"), grid=grid, strip_pixels=64 * 8)
    assert counts.pixels == 64 * 64 and counts.counts[0] == counts.counts[1] == 64 * 32 and counts.counts[255] == 0


def test_written_masks_and_codes_keep_their_values_grid_and_no_data(tmp_path):
    from core.grid import Grid
    from core.raster import write_codes, write_mask

    grid = Grid("EPSG:32631", (10.0, 0.0, 500000.0, 0.0, -10.0, 5600000.0), 6, 4)
    mask = np.array([[0, 1, 255, 1, 0, 0]] * 4, np.uint8)
    codes = np.where(mask == 255, -1, mask.astype(np.int16) * 300).astype(np.int16)  # a code beyond 255
    with rasterio.open(write_mask(tmp_path / "m.tif", mask, grid)) as src:
        assert (src.dtypes[0], src.nodata, src.descriptions) == ("uint8", 255, ("crop",))
        assert np.array_equal(src.read(1), mask) and tuple(src.transform)[:6] == grid.transform
        assert src.crs.to_epsg() == 32631
    with rasterio.open(write_codes(tmp_path / "c.tif", codes, grid)) as src:
        assert (src.dtypes[0], src.nodata) == ("int16", -1) and np.array_equal(src.read(1), codes)
    with pytest.raises(ValueError, match="bands are 6x5 px, grid is 6x4"):
        write_mask(tmp_path / "tall.tif", np.zeros((5, 6), np.uint8), grid)


def test_written_reflectance_keeps_no_data_as_nan_and_zero_reflectance_as_data(tmp_path):
    from core.grid import Grid
    from core.raster import write_reflectance

    grid = Grid("EPSG:32631", (10.0, 0.0, 500000.0, 0.0, -10.0, 5600000.0), 3, 2)
    feats = np.full((2, 3, 5), 0.2, np.float32)
    feats[0, 0, :4] = 0.0  # a valid pixel of reflectance 0 in every band (negatives clipped)
    valid = np.array([[True, True, False], [True, True, True]])
    feats[~valid] = 0.0
    path = write_reflectance(tmp_path / "r.tif", feats, valid, grid)
    with rasterio.open(path) as src:
        data = src.read()
        assert np.isnan(src.nodata) and np.isnan(data[:, 0, 2]).all()
        assert (data[:, 0, 0] > 0).all() and data[:, 0, 0].max() < 1e-30
    with ImageReader(path) as r:
        assert np.array_equal(r.read()[1], valid)
    with pytest.raises(ValueError, match="grid is 3x2"):
        write_reflectance(tmp_path / "x.tif", feats, valid[:1], grid)


def test_a_window_read_in_strips_of_rows_is_the_window_read_whole(monkeypatch, tmp_path):
    """ImageReader.read reads a large window a strip of rows at a time into one output (its stored values whole
    beside the features were 49 bytes a pixel); strips of 5 rows, from an offset, give the same features and
    validity, and a bad value in a later strip is said of the whole window, as before."""
    import core.raster as raster

    window = rasterio.windows.Window(13, 29, 200, 117)
    with ImageReader(SAMPLE_IMAGE) as r:
        feats, valid = r.read(window)
    monkeypatch.setattr(raster, "STRIP_PIXELS", 5 * 200)
    with ImageReader(SAMPLE_IMAGE) as r:
        strips, strip_valid = r.read(window)
    assert np.array_equal(strips, feats, equal_nan=True) and np.array_equal(strip_valid, valid)
    assert valid.sum() > 0 and strips.shape == (117, 200, 5)

    data = np.full((4, 2048, 40), 1500, np.int16)
    data[0, 1000, 7] = -3000  # far below any reflectance (red alone), in a later strip, between the windows opening samples
    bad = write_raster(tmp_path / "bad.tif", data, descriptions=("R", "G", "B", "NIR"))
    monkeypatch.setattr(raster, "STRIP_PIXELS", 10**9)
    with ImageReader(bad) as r, pytest.raises(InvalidDataError) as whole:
        r.read()
    monkeypatch.setattr(raster, "STRIP_PIXELS", 5 * 40)
    with ImageReader(bad) as r, pytest.raises(InvalidDataError) as parts:
        r.read()
    assert str(parts.value) == str(whole.value)
