"""core.resample: an image averaged (and its labels' most frequent class taken) to another pixel
size, on a grid that keeps the CRS and origin; refusals that lose nothing; the CLI command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from testdata import FLANDERS_LABELS, FTW, ROOT, SAMPLE_IMAGE, write_raster
from core.__main__ import main
from core.errors import ConfigError, GridMismatchError, InvalidDataError, OutputExistsError
from core.grid import Grid
from core.labels import CLASS_MAPS
from core.raster import read_image, read_label_classes
from core.resample import (SHIPPED_PIXEL_SIZE_M, _area_mode, _pixel_overlaps, _reproject, resample_files,
                           resampled_copies, resampled_grid)

RGBN = ("R", "G", "B", "NIR")
UTM = "EPSG:32633"
ORIGIN = (360630.0, 5351440.0)


def _image(path, rows=60, cols=60, size=10.0, nodata_at=()):
    """Real Landsat values from the sample scene (int16 x 10000, 0 = no data) on a UTM grid of ``size`` m pixels."""
    with rasterio.open(SAMPLE_IMAGE) as src:
        data = src.read(window=Window(200, 300, cols, rows))
    assert (data != 0).all()  # a window of the scene with data everywhere, so the test decides where none is
    for r, c in nodata_at:
        data[:, r, c] = 0
    return write_raster(path, data, crs=UTM, transform=Affine(size, 0, ORIGIN[0], 0, -size, ORIGIN[1]), nodata=0,
                        descriptions=RGBN)


def test_the_new_grid_keeps_the_crs_and_origin_and_covers_the_image():
    grid = Grid(UTM, (10.0, 0.0, *ORIGIN[:1], 0.0, -10.0, ORIGIN[1]), 288, 272)
    new = resampled_grid(grid, 30)
    assert new.crs == UTM and new.transform == (30.0, 0.0, ORIGIN[0], 0.0, -30.0, ORIGIN[1])
    assert (new.width, new.height) == (96, 91)  # 272 / 3 = 90.7: the last row covers the image's last 2 rows
    assert resampled_grid(grid, 20).shape == (136, 144)
    # to the nearest whole pixel: the area stays within half a new pixel of the image's on each side
    assert resampled_grid(Grid(UTM, grid.transform, 64, 64), 30).shape == (21, 21)  # 39.7 ha for 41.0
    assert resampled_grid(Grid(UTM, grid.transform, 65, 65), 30).shape == (22, 22)  # 43.6 ha for 42.3
    # a new pixel larger than the image: refused (one 1 km pixel stood for a 640 m image: 100 ha for 41)
    assert resampled_grid(Grid(UTM, grid.transform, 64, 64), 640).shape == (1, 1)
    with pytest.raises(InvalidDataError, match=r"^1000 m pixels are larger than the image \(640 x 640 m\)"):
        resampled_grid(Grid(UTM, grid.transform, 64, 64), 1000)
    # far finer pixels: refused before any memory is taken (0.001 m was "out of memory; resample a smaller image")
    with pytest.raises(InvalidDataError, match=r"^0.001 m pixels would make the image 640,000 x 640,000 px, more than"):
        resampled_grid(Grid(UTM, grid.transform, 64, 64), 0.001)


def test_non_square_pixels_are_resampled_per_axis_and_a_strip_narrower_than_a_new_pixel_is_refused():
    """10 x 20 m pixels: a 1000 x 1000 m image of 100 x 50 of them is 25 x 25 new 40 m pixels, 40 m on each
    axis; an image 20 m tall (2 rows of 10 m) is narrower than one 30 m pixel, however wide it is."""
    grid = Grid(UTM, (10.0, 0.0, ORIGIN[0], 0.0, -20.0, ORIGIN[1]), 100, 50)
    new = resampled_grid(grid, 40)
    assert new.shape == (25, 25) and new.transform == (40.0, 0.0, ORIGIN[0], 0.0, -40.0, ORIGIN[1])
    with pytest.raises(InvalidDataError, match=r"^30 m pixels are larger than the image \(1,000 x 20 m\)"):
        resampled_grid(Grid(UTM, (10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1]), 100, 2), 30)


@pytest.mark.parametrize("grid, match", [
    (Grid(None, (1.0, 0, 0, 0, -1.0, 0), 64, 64), "not georeferenced"),
    (Grid("EPSG:4326", (0.0003, 0, 10.0, 0, -0.0003, 48.0), 64, 64), "not projected in metres"),
    # Web Mercator at 50 N: its 10 m pixels are 6.4 m on the ground (made 19 m ones of "30 m" before)
    (Grid("EPSG:3857", (10.0, 0, 1_113_195.0, 0, -10.0, 6_446_276.0), 64, 64),
     r"does not keep ground sizes \(its pixels are 6.43 m on the ground"),
])
def test_a_grid_without_metres_is_refused(grid, match):
    with pytest.raises(InvalidDataError, match=match):
        resampled_grid(grid, 30)


def test_reflectance_is_the_mean_of_the_valid_pixels_under_each_new_pixel(tmp_path):
    # one pixel of the first 3 x 3 block has no data: the mean is of the other 8; a block with none at all is no data
    src = _image(tmp_path / "s2.tif", nodata_at=[(0, 0)] + [(r, c) for r in range(3, 6) for c in range(3, 6)])
    done = resample_files(src, tmp_path / "s2_30m.tif", 30)
    feats, valid, grid = read_image(src)
    out_feats, out_valid, out_grid = read_image(tmp_path / "s2_30m.tif")
    assert out_grid.transform == (30.0, 0.0, ORIGIN[0], 0.0, -30.0, ORIGIN[1]) and out_grid.shape == (20, 20)
    blocks = feats[..., :4].reshape(20, 3, 20, 3, 4)
    vblocks = valid.reshape(20, 3, 20, 3)
    expected = (blocks * vblocks[..., None]).sum((1, 3)) / np.maximum(vblocks.sum((1, 3)), 1)[..., None]
    assert not out_valid[1, 1] and out_valid.sum() == 399
    assert np.allclose(out_feats[..., :4][out_valid], expected[out_valid], atol=1e-6)
    assert done["valid_pixels"] == 399 and done["size_px"] == {"from": [60, 60], "to": [20, 20]}
    with rasterio.open(tmp_path / "s2_30m.tif") as out:  # named bands: the dashboard and the CLI need no band numbers
        assert out.descriptions == RGBN and out.dtypes[0] == "float32"


def test_labels_take_the_most_frequent_class_and_ignore_no_data(tmp_path):
    src = _image(tmp_path / "s2.tif", rows=6, cols=60)
    codes = np.full((6, 60), 176, np.uint8)  # grassland
    codes[0:2, 0:3] = 1  # 6 of 9 corn: corn
    codes[2, 0:2] = 0  # the rest of the block no data: not a class
    codes[3:6, 3:6] = 0  # a block with no label at all
    labels = write_raster(tmp_path / "cdl.tif", codes, crs=UTM, transform=Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]),
                          nodata=0)
    resample_files(src, tmp_path / "img.tif", 30, labels, tmp_path / "lab.tif", "cdl")
    _, out = read_label_classes(tmp_path / "lab.tif", CLASS_MAPS["cdl"], read_image(tmp_path / "img.tif")[2])
    assert out[0, 0] == 1 and out[1, 1] == -1 and out[0, 1] == 176 and out.shape == (2, 20)


def test_a_new_pixel_takes_the_class_covering_most_of_its_area(tmp_path):
    """10 m to 25 m (not a whole multiple): GDAL's mode counts each old pixel a new one touches once, so a
    class covering 2.75 old pixels of it took it from one covering 3.5. The class of each 25 m pixel is
    the one over most of its area, as counted on 5 m pixels (each 10 m one split in 2 x 2)."""
    src = _image(tmp_path / "s2.tif", rows=60, cols=60)
    codes = np.where(np.random.default_rng(3).random((60, 60)) < 0.5, 1, 176).astype(np.uint8)  # corn, grassland
    labels = write_raster(tmp_path / "cdl.tif", codes, crs=UTM, transform=Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]))
    resample_files(src, tmp_path / "img.tif", 25, labels, tmp_path / "lab.tif", "cdl")
    _, out = read_label_classes(tmp_path / "lab.tif", CLASS_MAPS["cdl"], read_image(tmp_path / "img.tif")[2])
    fine = codes.repeat(2, 0).repeat(2, 1)  # 5 m: each new pixel is 5 x 5 of them (25, an odd count: no ties)
    corn = (fine == 1).reshape(24, 5, 24, 5).sum(axis=(1, 3))
    np.testing.assert_array_equal(out, np.where(corn >= 13, 1, 176))
    assert 0.1 < (corn >= 13).mean() < 0.9


def test_a_tie_goes_to_the_class_at_the_new_pixels_centre(tmp_path):
    """10 m to 30 m: 3 + 3 + 3 or 4 + 4 + 1 of the 9 old pixels tie. Ties went to the lower code, and the
    crop codes are the low ones (CDL's 1-61, WorldCereal's 11): every tie was crop, which moved the
    30 m Flanders figures. The class at the centre wins a tie it is part of; else the lower code."""
    src = _image(tmp_path / "s2.tif", rows=6, cols=9)
    codes = np.full((6, 9), 176, np.uint8)
    codes[0:3, 0:3] = [[1, 1, 1], [176, 176, 176], [5, 5, 5]]  # 3 + 3 + 3, grassland (176) at the centre
    codes[0:3, 3:6] = [[1, 1, 1], [1, 5, 176], [176, 176, 176]]  # 4 + 4 + 1, soybeans (5) at the centre
    codes[0:3, 6:9] = [[1, 1, 176], [1, 176, 176], [1, 176, 5]]  # 4 + 4 + 1 again, grassland at the centre
    codes[3:6, 0:3] = [[176, 176, 5], [176, 5, 5], [1, 1, 1]]  # 3 + 3 + 3, soybeans at the centre
    labels = write_raster(tmp_path / "cdl.tif", codes, crs=UTM, transform=Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]))
    resample_files(src, tmp_path / "img.tif", 30, labels, tmp_path / "lab.tif", "cdl")
    _, out = read_label_classes(tmp_path / "lab.tif", CLASS_MAPS["cdl"], read_image(tmp_path / "img.tif")[2])
    assert out[0].tolist() == [176, 1, 176] and out[1, 0] == 5  # (the second: the centre's 5 is not tied; lower code)
    assert out[1, 1:].tolist() == [176, 176]  # no tie: the class over most of the pixel


def test_a_new_pixel_over_the_images_edge_is_the_mean_and_mode_of_the_pixels_it_covers(tmp_path):
    """An image of 64 x 65 px of 10 m: a last 30 m column would cover 2 px of it, a last row 1 px. The
    column is kept (GDAL counted the image's last column twice there: a biased mean, and a mode that
    another class won); the row, less than half over the image, is left out (every such pixel kept
    made the image's area larger, a 64 x 64 px image's 41.0 ha 43.6 ha)."""
    src = _image(tmp_path / "s2.tif", rows=64, cols=65)
    feats, valid, _ = read_image(src)
    codes = np.full((64, 65), 176, np.uint8)
    codes[60:63, 63:65] = [[24, 24], [24, 24], [5, 5]]  # under one 30 m pixel of the last column: 24 x4, 5 x2
    labels = write_raster(tmp_path / "cdl.tif", codes, crs=UTM, transform=Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]),
                          nodata=0)
    resample_files(src, tmp_path / "img.tif", 30, labels, tmp_path / "lab.tif", "cdl")
    out_feats, out_valid, out_grid = read_image(tmp_path / "img.tif")
    assert out_grid.shape == (21, 22) and out_valid.all()  # 64 / 3 = 21.3 rows, 65 / 3 = 21.7 columns
    # the last column of 30 m pixels covers columns 63-64
    assert np.allclose(out_feats[5, 21, :4], feats[15:18, 63:65, :4].mean((0, 1)), atol=1e-6)
    assert np.allclose(out_feats[20, 21, :4], feats[60:63, 63:65, :4].mean((0, 1)), atol=1e-6)
    assert np.allclose(out_feats[20, 5, :4], feats[60:63, 15:18, :4].mean((0, 1)), atol=1e-6)
    _, out = read_label_classes(tmp_path / "lab.tif", CLASS_MAPS["cdl"], out_grid)
    assert out[20, 21] == 24  # rows 60-62, columns 63-64: 24 x4, 5 x2 (column 64 counted twice: 24 x6, 5 x3)


def test_refusals_write_nothing_and_keep_what_is_there(tmp_path):
    src = _image(tmp_path / "s2.tif")
    (tmp_path / "taken.tif").write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        resample_files(src, tmp_path / "taken.tif", 30)
    assert (tmp_path / "taken.tif").read_bytes() == b"keep me"
    with pytest.raises(ConfigError, match="is an input"):
        resample_files(src, src, 30, overwrite=True)
    with pytest.raises(InvalidDataError, match="already has 10 m pixels"):
        resample_files(src, tmp_path / "same.tif", 10.2)
    other = write_raster(tmp_path / "other.tif", np.ones((30, 30), np.uint8), crs=UTM,
                         transform=Affine(20, 0, ORIGIN[0], 0, -20, ORIGIN[1]))
    with pytest.raises(GridMismatchError):  # labels on another grid: found before the image is written
        resample_files(src, tmp_path / "img.tif", 30, other, tmp_path / "lab.tif", "binary")
    with pytest.raises(ConfigError, match="label map"):
        resample_files(src, tmp_path / "img.tif", 30, other, tmp_path / "lab.tif", "nonsense")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.tif", "s2.tif", "taken.tif"]
    # labels to a file that exists: the option named is theirs (it said "choose another --out")
    with pytest.raises(OutputExistsError, match=r"choose another --labels-out$"):
        resample_files(src, tmp_path / "img.tif", 30, src, tmp_path / "taken.tif", "binary")


def test_cli_resamples_a_sentinel2_image_to_the_shipped_models_pixels(tmp_path, capsys):
    assert main(["resample", "--image", str(FTW), "--bands", "1,2,3,4", "--out", str(tmp_path / "ftw_30m.tif")]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["pixel_size_m"] == {"from": 10.0, "to": 30.0} and done["size_px"]["to"] == [96, 91]
    assert done["warnings"] == []
    # finer pixels than the image's: made, and said to add no detail (it ran in silence)
    assert main(["resample", "--image", str(FTW), "--bands", "1,2,3,4", "--out", str(tmp_path / "ftw_5m.tif"),
                 "--pixel-size", "5"]) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["warnings"] == ["5 m pixels are finer than the image's 10 m: each takes the pixels "
                                                "under it (a share of each where it straddles two), no detail is added"]
    assert said.err.startswith("warning: 5 m pixels are finer")
    _, valid, grid = read_image(tmp_path / "ftw_30m.tif")
    assert round(grid.pixel_size_m(), 6) == 30.0 and valid.all()
    # a second run does not replace it, and says how to
    assert main(["resample", "--image", str(FTW), "--bands", "1,2,3,4", "--out", str(tmp_path / "ftw_30m.tif")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # the sample scene has no place on Earth: one clear line
    assert main(["resample", "--image", str(SAMPLE_IMAGE), "--out", str(tmp_path / "s.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not georeferenced" in err[0] and not (tmp_path / "s.tif").exists()
    # options for labels without labels: said (they were ignored, a misspelled label map too, and no labels written)
    for more in (["--labels-out", str(tmp_path / "l.tif")], ["--label-map", "foo"]):
        assert main(["resample", "--image", str(FTW), "--bands", "1,2,3,4", "--out", str(tmp_path / "k.tif"), *more]) == 2
        assert f"{more[0]} is for --labels; give the labels file too" in capsys.readouterr().err
    assert not (tmp_path / "k.tif").exists()


def test_cli_resamples_the_labels_beside_the_image_when_no_labels_out_is_given(tmp_path, capsys):
    """--labels without --labels-out: the labels go to OUT's name + _labels.tif, as the option's help says, on
    the new grid, each new pixel the class covering most of it."""
    src = _image(tmp_path / "s2.tif", rows=6, cols=60)
    codes = np.full((6, 60), 176, np.uint8)  # grassland
    codes[0:3, 0:3] = 1  # corn: the first 30 m pixel
    labels = write_raster(tmp_path / "cdl.tif", codes, crs=UTM, transform=Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]),
                          nodata=0)
    out = tmp_path / "s2_30m.tif"
    assert main(["resample", "--image", str(src), "--labels", str(labels), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == str(tmp_path / "s2_30m_labels.tif")
    _, classes = read_label_classes(tmp_path / "s2_30m_labels.tif", CLASS_MAPS["cdl"], read_image(out)[2])
    assert classes.shape == (2, 20) and classes[0, 0] == 1 and (classes.ravel()[1:] == 176).all()


def test_the_dashboards_size_is_the_shipped_models_and_copies_are_made_once(tmp_path):
    card = json.loads((ROOT / "assets" / "models" / "crop_unet_light.json").read_text())
    assert SHIPPED_PIXEL_SIZE_M == card["pixel_size_m"]
    src = _image(tmp_path / "s2.tif", rows=6, cols=60)
    codes = np.where(np.arange(60) < 30, 1, 176).astype(np.uint8)[None].repeat(6, 0)
    labels = write_raster(tmp_path / "cdl.tif", codes, crs=UTM, transform=Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]),
                          nodata=0)
    created = []
    image_copy, labels_copy = resampled_copies(src, 30, labels, "cdl", created=created)
    assert (image_copy.name, labels_copy.name) == ("s2_30m.tif", "cdl_30m_cdl.tif")
    assert created == [image_copy, labels_copy]  # (for the uploads' clean-up, should they be refused)
    made = image_copy.stat().st_mtime_ns
    assert resampled_copies(src, 30, labels, "cdl", created=created) == (image_copy, labels_copy)
    assert image_copy.stat().st_mtime_ns == made and len(created) == 2  # the copy made before is used, not listed


def test_an_image_and_its_labels_are_replaced_together_or_not_at_all(tmp_path, monkeypatch):
    """The image was written, then the labels: a failed labels' write left a new image beside old
    labels of another grid."""
    import core.raster

    src = _image(tmp_path / "s2.tif", rows=6, cols=60)
    labels = write_raster(tmp_path / "cdl.tif", np.full((6, 60), 1, np.uint8), crs=UTM,
                          transform=Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]), nodata=0)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "img.tif").write_bytes(b"old image")
    (tmp_path / "out" / "lab.tif").write_bytes(b"old labels")

    def disk_full(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"half")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(core.raster, "write_codes", disk_full)
        with pytest.raises(OSError, match="No space left"):
            resample_files(src, tmp_path / "out" / "img.tif", 30, labels, tmp_path / "out" / "lab.tif", "cdl",
                           overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img.tif", "lab.tif"]  # no temporary left
    assert (tmp_path / "out" / "img.tif").read_bytes() == b"old image"
    assert (tmp_path / "out" / "lab.tif").read_bytes() == b"old labels"
    # new folders made for the outputs are gone again with them
    with monkeypatch.context() as m:
        m.setattr(core.raster, "write_codes", disk_full)
        with pytest.raises(OSError):
            resample_files(src, tmp_path / "new" / "img.tif", 30, labels, tmp_path / "new" / "lab.tif", "cdl")
    assert not (tmp_path / "new").exists()
    resample_files(src, tmp_path / "out" / "img.tif", 30, labels, tmp_path / "out" / "lab.tif", "cdl", overwrite=True)
    assert read_image(tmp_path / "out" / "img.tif")[2].shape == (2, 20)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img.tif", "lab.tif"]


def test_the_images_own_warnings_are_passed_on(tmp_path):
    """An undeclared fill read as no data is told when the image is read (info, predict): resampling said
    nothing, and its copy, float with NaN, no longer shows the fill."""
    with rasterio.open(SAMPLE_IMAGE) as src:
        data = src.read(window=Window(200, 300, 60, 60)).astype(np.uint16)
    data[:, :20] = 65535  # a third of the image: an undeclared fill
    src = write_raster(tmp_path / "fill.tif", data, crs=UTM, transform=Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]),
                       descriptions=RGBN)
    done = resample_files(src, tmp_path / "out.tif", 30)
    assert any("65535" in w and "gdal_edit.py -a_nodata 65535" in w for w in done["warnings"])
    assert done["valid_pixels"] == 14 * 20  # (new rows 6-19: row 6 is the mean of its one image row with data)


def _area_mode_by_gdal(codes, grid, target, nodata):
    """The labels' resampling before it weighed the old pixels itself (commit 6824d8b), kept for the grids the
    new way does not take: GDAL's ``average`` of each class's 0/1 layer over the whole image, a full-size
    reprojection a class, then the class with the largest share (a tie: the class at the centre, else the
    lower code)."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    from core.resample import _area_mode_by_class

    centre = np.full((target.height, target.width), nodata, codes.dtype)
    reproject(codes, centre, src_transform=Affine(*grid.transform), src_crs=grid.crs,
              dst_transform=Affine(*target.transform), dst_crs=target.crs, src_nodata=nodata, dst_nodata=nodata,
              resampling=Resampling.nearest)
    return _area_mode_by_class(codes, grid, target, nodata, centre)


def _padded(codes, grid, target, nodata=-1):
    """``codes`` padded with no data to the new grid's last row and column, as :func:`_reproject` pads them."""
    rows = math.ceil(target.height * abs(target.transform[4]) / abs(grid.transform[4]) - 1e-9)
    cols = math.ceil(target.width * abs(target.transform[0]) / abs(grid.transform[0]) - 1e-9)
    band = np.full((max(rows, grid.height), max(cols, grid.width)), nodata, codes.dtype)
    band[: grid.height, : grid.width] = codes
    return band


def _random_labels(seed, shape, classes, field_px, nodata_share):
    """Fields of ``classes`` codes (squares of ``field_px`` old pixels), a tenth of the pixels another
    class scattered, ``nodata_share`` of them no data (-1) and a corner with none at all."""
    rng = np.random.default_rng(seed)
    codes = rng.choice(np.arange(1, 256, dtype=np.int16), classes, replace=False)  # (not 0 to classes-1: any codes)
    fields = rng.integers(0, classes, (shape[0] // field_px + 1, shape[1] // field_px + 1))
    out = codes[np.kron(fields, np.ones((field_px, field_px), int))[: shape[0], : shape[1]]]
    scattered = rng.random(shape) < 0.1
    out[scattered] = codes[rng.integers(0, classes, scattered.sum())]
    out[rng.random(shape) < nodata_share] = -1
    out[: shape[0] // 5, : shape[1] // 5] = -1
    return out


# old pixel size, new, origin, size (rows, columns), classes, field size (old pixels), no data share
_RATIOS = [
    (10, 30, ORIGIN, (97, 131), 60, 1, 0.05),  # Sentinel-2 to Landsat: 3 x 3 old pixels, many classes, mostly mixed
    (10, 30, ORIGIN, (90, 93), 3, 1, 0.0),  # 3 classes at random: ties of 3 + 3 + 3 and 4 + 4 + 1 throughout
    (30, 60, (500000.0, 5300000.0), (120, 121), 4, 3, 0.1),  # even (the benchmark's): the centre is a corner
    (10, 20, (399960.123, 5000040.77), (80, 77), 2, 1, 0.2),  # even, an origin off whole metres: 2 + 2 ties
    (10, 25, ORIGIN, (101, 88), 40, 2, 0.05),  # not whole: half and quarter old pixels weighed
    (10, 25, (600000.0, 9990000.0), (75, 75), 3, 1, 0.0),
    (20, 30, ORIGIN, (99, 100), 50, 2, 0.1),  # 1.5 old pixels
    (20, 30, (399960.123, 5000040.77), (64, 64), 2, 1, 0.3),
    (30, 90, ORIGIN, (120, 100), 90, 4, 0.05),
    (10, 15, ORIGIN, (60, 61), 5, 1, 0.05),
    (10, 35, ORIGIN, (140, 141), 30, 3, 0.05),  # 3.5
    (10, 5, ORIGIN, (30, 31), 5, 1, 0.1),  # finer: each new pixel within one old one
    (10, 27.3, ORIGIN, (82, 82), 10, 2, 0.05),  # 2.73 old pixels: left to GDAL, class by class
]


@pytest.mark.parametrize("old_size, new_size, origin, shape, classes, field_px, nodata_share", _RATIOS)
def test_the_class_covering_most_of_a_new_pixel_is_gdals_averages_exactly(old_size, new_size, origin, shape, classes,
                                                                          field_px, nodata_share):
    """The labels' resampling weighs the old pixels under each new one itself, all classes at once, where
    the new grid is the old one scaled by a ratio of small whole numbers (110 s for 8192 x 8192 px of CDL
    before, a full-size GDAL average a class): every code is the one GDAL's averages give, ties, no data
    and the image's last row and column included."""
    codes = _random_labels(int(old_size * 1000 + new_size * 10 + classes), shape, classes, field_px, nodata_share)
    grid = Grid(UTM, (float(old_size), 0.0, origin[0], 0.0, -float(old_size), origin[1]), shape[1], shape[0])
    target = resampled_grid(grid, new_size)
    band = _padded(codes, grid, target)
    expected = _area_mode_by_gdal(band, grid, target, -1)
    assert (_pixel_overlaps(band.shape, grid, target) is None) == (new_size == 27.3)
    np.testing.assert_array_equal(_area_mode(band, grid, target, -1), expected)
    np.testing.assert_array_equal(_reproject(codes[None], grid, target, "area_mode", -1)[0], expected)
    assert (expected == -1).any() and len(np.unique(expected)) > min(classes, 3)
    if new_size % old_size == 0 and classes <= 4:  # ties there, and the centre's class won some of them
        r = int(new_size // old_size)
        blocks = band[: target.height * r, : target.width * r].reshape(target.height, r, target.width, r)
        counts = np.stack([(blocks == c).sum(axis=(1, 3)) for c in np.unique(codes[codes != -1])], -1)
        tied = (counts == counts.max(-1, keepdims=True)).sum(-1) > 1
        lowest_tied = np.unique(codes[codes != -1])[np.argmax(counts == counts.max(-1, keepdims=True), -1)]
        assert tied.mean() > 0.05 and (expected[tied] != lowest_tied[tied]).any()


def test_real_labels_resampled_take_the_same_classes_as_gdals_averages():
    """The shipped CDL block (34 classes; given a UTM grid here) and a Flanders crop-type window, each to
    several pixel sizes: the same codes as GDAL's averages class by class."""
    from core.raster import read_label_classes

    with rasterio.open(ROOT / "assets" / "sample" / "sample_cdl.tif") as src:
        cdl = src.read(1, window=Window(300, 200, 301, 257)).astype(np.int16)
    cdl[cdl == 0] = -1
    _, flanders = read_label_classes(FLANDERS_LABELS, CLASS_MAPS["worldcereal"])
    with rasterio.open(FLANDERS_LABELS) as src:
        flanders_grid = Grid(src.crs.to_string(), tuple(src.transform)[:6], src.width, src.height)
    cases = [(cdl, Grid(UTM, (30.0, 0.0, *ORIGIN[:1], 0.0, -30.0, ORIGIN[1]), 301, 257), size) for size in (60, 75, 90, 45)]
    cases += [(flanders, flanders_grid, size) for size in (20, 25, 30)]
    for codes, grid, size in cases:
        target = resampled_grid(grid, size)
        band = _padded(codes, grid, target)
        assert _pixel_overlaps(band.shape, grid, target) is not None
        np.testing.assert_array_equal(_area_mode(band, grid, target, -1), _area_mode_by_gdal(band, grid, target, -1))


def test_labels_are_left_to_gdal_where_a_tie_could_turn_on_rounding():
    """Pixels of 2.73 old ones (two shares of a new pixel can be 1 / 74,529 apart, near TIE_TOLERANCE:
    a rounding could make a tie or break one), a rotated grid, or another CRS: GDAL averages each class."""
    grid = Grid(UTM, (10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1]), 100, 100)
    assert _pixel_overlaps((100, 100), grid, resampled_grid(grid, 30)) is not None
    assert _pixel_overlaps((100, 100), grid, resampled_grid(grid, 27.3)) is None
    rotated = Grid(UTM, (10.0, 1.0, ORIGIN[0], 1.0, -10.0, ORIGIN[1]), 100, 100)
    assert _pixel_overlaps((100, 100), rotated, resampled_grid(rotated, 30)) is None
    other = Grid("EPSG:32632", resampled_grid(grid, 30).transform, 34, 34)
    assert _pixel_overlaps((100, 100), grid, other) is None
