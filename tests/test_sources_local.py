"""core.sources.local: the sample scene and user GeoTIFFs as a Source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from core.errors import BandError, CropMapError, GridMismatchError, InputNotFoundError, InvalidDataError, NoDataError, RegionError
from core.raster import ImageReader, read_image
from core.region import Region
from core.sources.base import Source
from core.grid import Grid
from core.sources.local import LocalSource, image_footprint, save_upload, validate_image, validate_labels

from testdata import FLANDERS_LABELS, FLANDERS_S2, FTW, SAMPLE_IMAGE, write_raster


def test_sample_is_a_source_and_not_georeferenced():
    src = LocalSource.sample()
    assert isinstance(src, Source)
    ok, msg = src.available()
    assert ok and msg.count("not georeferenced") == 1 and msg.endswith("1,024 x 1,024 px")  # short, for the sidebar
    assert not src.grid().georeferenced
    full = src.full_region()
    assert full.is_image and full.bounds == (0, 0, 1024, 1024)


def test_fetch_cuts_region_with_polygon_mask(tmp_path):
    src = LocalSource.sample()
    tri = Region("image", ((((100.0, 100.0), (500.0, 100.0), (100.0, 500.0), (100.0, 100.0)),),))
    scene = src.fetch(tri, tmp_path / "s")
    assert not scene.georeferenced and scene.label_map == "binary"
    assert scene.extra["row_off"] == 100 and scene.extra["col_off"] == 100
    feats, valid, grid = read_image(scene.image_path)
    assert grid.shape == (400, 400) and grid.crs is None
    assert valid[5, 5] and not valid[395, 395]  # outside the triangle = no data
    with ImageReader(SAMPLE_IMAGE) as reader:
        from rasterio.windows import Window

        orig, _ = reader.read(Window(100, 100, 400, 400))
    assert np.allclose(feats[5, 5], orig[5, 5], atol=1e-6)
    with rasterio.open(scene.labels_path) as lab:
        mask = lab.read(1)
    assert mask[395, 395] == 255 and set(np.unique(mask)) <= {0, 1, 255}
    # the CDL classes are kept beside the mask, with the same no data: errors can be told by class
    from core.labels import get_class_map
    from core.raster import read_label_classes, read_labels
    from testdata import SAMPLE_LABELS

    assert scene.extra["class_map"] == "cdl" and scene.extra["codes"] == "codes.tif"
    codes_path = scene.image_path.parent / "codes.tif"
    codes = read_label_classes(codes_path, get_class_map("cdl"))[1]
    assert np.array_equal(read_labels(codes_path, get_class_map("cdl")), mask)
    with rasterio.open(SAMPLE_LABELS) as lab:
        orig_codes = lab.read(1, window=rasterio.windows.Window(100, 100, 400, 400))
    assert codes[5, 5] == orig_codes[5, 5] and codes[395, 395] == -1
    again = src.fetch(tri, tmp_path / "s")  # reused
    assert again.image_path == scene.image_path


def test_a_scene_keeps_the_regions_surroundings_for_prediction(tmp_path):
    """The triangle's scene is masked to the triangle, but its context image holds the window grown
    by the margin (within the image), unmasked, and says where the scene lies in it; a region that
    is the whole image needs none."""
    from core.sources.base import scene_context
    from core.sources.local import CONTEXT_MARGIN

    src = LocalSource.sample()
    tri = Region("image", ((((10.0, 100.0), (500.0, 100.0), (10.0, 500.0), (10.0, 100.0)),),))
    scene = src.fetch(tri, tmp_path / "s")
    ctx = scene_context(scene.image_path)
    assert ctx is not None and (ctx.row_off, ctx.col_off) == (CONTEXT_MARGIN, 10)  # 10 px left of the window only
    assert ctx.frame == (100 - CONTEXT_MARGIN, 0)  # where the context starts in the image: its tile grid
    ctx_feats, ctx_valid, ctx_grid = read_image(ctx.path)
    assert ctx_grid.shape == (400 + 2 * CONTEXT_MARGIN, 490 + 10 + CONTEXT_MARGIN)
    with ImageReader(SAMPLE_IMAGE) as reader:
        orig, orig_valid = reader.read(rasterio.windows.Window(0, 100 - CONTEXT_MARGIN, ctx_grid.width, ctx_grid.height))
    assert np.array_equal(ctx_valid, orig_valid) and np.allclose(ctx_feats[ctx_valid], orig[orig_valid], atol=1e-6)
    feats, valid, _ = read_image(scene.image_path)
    in_window = ctx_valid[ctx.row_off : ctx.row_off + 400, ctx.col_off : ctx.col_off + 490]
    assert not (valid & ~in_window).any() and (in_window & ~valid).sum() > 50_000  # outside the outline: kept here
    # the image at the scene's own pixels, for the map view PNG: the same where the scene has data
    from core.sources.base import scene_surroundings

    around, around_valid = scene_surroundings(scene.image_path)
    assert np.array_equal(around_valid, in_window) and np.array_equal(around[valid], feats[valid])
    # every n-th pixel for the map PNG, read in strips of a few rows (here 12 or 7): the same pixels
    import core.raster

    for step in (2, 7):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(core.raster, "OVERVIEW_STRIP_PIXELS", 490 * 12)
            few, few_valid = scene_surroundings(scene.image_path, step)
        assert np.array_equal(few, around[::step, ::step]) and np.array_equal(few_valid, around_valid[::step, ::step])
    whole = src.fetch(src.full_region(), tmp_path / "whole")
    assert scene_context(whole.image_path) is None and not (tmp_path / "whole" / "context.tif").exists()
    assert scene_surroundings(whole.image_path) is None
    # the sample's pixels are Landsat 8's 30 m, which its file cannot say (no CRS): its scenes carry it
    assert scene.extra["pixel_size_m"] == whole.extra["pixel_size_m"] == 30.0
    assert "pixel_size_m" not in LocalSource(SAMPLE_IMAGE).fetch(tri, tmp_path / "plain").extra


def test_the_context_of_a_small_region_is_at_least_one_patch_where_the_image_allows():
    """A region smaller than a training patch (one field) gets a context of at least CONTEXT_LEAST
    px a side, holding the window and its margin, moved inside the image at the edges; a large
    region gets the margin only; an image smaller than that gives all of itself."""
    from core.grid import Grid
    from core.region import PixelWindow
    from core.sources.local import CONTEXT_LEAST, CONTEXT_MARGIN, context_window

    grid = Grid(None, (1.0, 0.0, 0.0, 0.0, -1.0, 0.0), 1024, 1000)
    assert context_window(PixelWindow(400, 300, 40, 41), grid) == PixelWindow(292, 193, 256, 256)  # centred
    assert context_window(PixelWindow(0, 990, 40, 34), grid) == PixelWindow(0, 768, 256, 256)  # in a corner
    assert context_window(PixelWindow(100, 100, 500, 300), grid) == PixelWindow(
        100 - CONTEXT_MARGIN, 100 - CONTEXT_MARGIN, 500 + 2 * CONTEXT_MARGIN, 300 + 2 * CONTEXT_MARGIN)
    small = Grid(None, (1.0, 0.0, 0.0, 0.0, -1.0, 0.0), 100, 300)
    assert context_window(PixelWindow(250, 30, 40, 40), small) == PixelWindow(44, 0, CONTEXT_LEAST, 100)
    for win, g in [(PixelWindow(r, c, h, w), grid) for r, c, h, w in [(3, 5, 33, 250), (960, 0, 40, 1024), (17, 900, 300, 100)]]:
        ctx = context_window(win, g)
        assert ctx.row_off <= max(0, win.row_off - CONTEXT_MARGIN) and ctx.col_off <= max(0, win.col_off - CONTEXT_MARGIN)
        assert ctx.row_off + ctx.height >= min(g.height, win.row_off + win.height + CONTEXT_MARGIN)
        assert ctx.col_off + ctx.width >= min(g.width, win.col_off + win.width + CONTEXT_MARGIN)
        assert min(ctx.height, ctx.width) >= CONTEXT_LEAST and ctx.row_off + ctx.height <= g.height


@pytest.mark.parametrize("lost", ["labels.tif", "codes.tif", "image.tif", "scene.json", "context.tif"])
def test_a_scene_folder_that_lost_a_file_is_cut_again(tmp_path, lost):
    """A reused scene must be whole: a lost labels/codes file (a cleaned folder) is written again,
    not left missing for every later page; a damaged scene.json too."""
    src = LocalSource.sample()
    box = Region("image", ((((10.0, 10.0), (300.0, 10.0), (300.0, 300.0), (10.0, 300.0), (10.0, 10.0)),),))
    first = src.fetch(box, tmp_path / "s")
    made = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    if lost == "scene.json":
        (tmp_path / "s" / lost).write_text("{not json")
    else:
        (tmp_path / "s" / lost).unlink()
    again = src.fetch(box, tmp_path / "s")
    assert again.labels_path == first.labels_path and again.extra == first.extra
    now = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    assert set(now) == set(made) and now[lost if lost != "scene.json" else "labels.tif"]
    assert np.array_equal(read_image(again.image_path)[1], read_image(first.image_path)[1])


@pytest.mark.parametrize("damaged", ["image.tif", "labels.tif", "codes.tif", "context.tif"])
@pytest.mark.parametrize("cut_to", [0, 1000])
def test_a_scene_file_cut_short_is_cut_again(tmp_path, damaged, cut_to):
    """A scene file emptied or cut short (a crash of the machine after its rename) was reused: every page
    of the region failed with "copy or download it again", of a file the user never gave."""
    src = LocalSource.sample()
    box = Region("image", ((((10.0, 10.0), (300.0, 10.0), (300.0, 300.0), (10.0, 300.0), (10.0, 10.0)),),))
    first = src.fetch(box, tmp_path / "s")
    made = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    with open(tmp_path / "s" / damaged, "r+b") as f:
        f.truncate(cut_to)
    again = src.fetch(box, tmp_path / "s")
    assert again.extra == first.extra
    assert (tmp_path / "s" / damaged).read_bytes() == made[damaged]
    assert np.array_equal(read_image(again.image_path)[1], read_image(first.image_path)[1])


def test_whole_turned_image_has_its_own_area_and_a_clipped_region_says_so(tmp_path):
    src = LocalSource(FTW, band_map={"R": 1, "G": 2, "B": 3, "NIR": 4})
    region = src.full_region()
    check = src.check_region(region)
    assert check.ok and not check.clipped, check.message
    assert region.area_ha() == pytest.approx(check.area_ha, rel=0.01)  # the bounding box was 5% larger
    # a wider image far from its zone's central meridian: the lon/lat lines between its corners bow
    # off its edges (by 0.07 px on a real 578 px wide 10 m image), and the whole image was "partly outside"
    from affine import Affine

    wide = write_raster(tmp_path / "wide.tif", np.full((4, 300, 2400), 1000, np.int16), crs="EPSG:32633",
                        transform=Affine(10, 0, 170_000, 0, -10, 5_350_000), descriptions=("R", "G", "B", "NIR"))
    whole = LocalSource(wide).full_region()
    check = LocalSource(wide).check_region(whole)
    assert check.ok and not check.clipped and check.pixels == 2400 * 300, check.message
    assert check.area_ha == pytest.approx(2400 * 300 * 0.01) and whole.area_ha() == pytest.approx(check.area_ha, rel=0.01)
    sample = LocalSource.sample()
    half_out = Region.from_bbox(700, 600, 1300, 1000, crs="image")
    check = sample.check_region(half_out)
    assert check.ok and check.clipped and "outside the image and is left out" in check.message
    assert not sample.check_region(Region.from_bbox(100, 100, 600, 600, crs="image")).clipped


def test_invalid_regions_rejected(tmp_path):
    src = LocalSource.sample()
    with pytest.raises(RegionError, match="it must be at least 8 x 8 px: draw a larger region"):
        src.fetch(Region.from_bbox(0, 0, 100, 5, crs="image"), tmp_path / "thin")
    assert not (tmp_path / "thin").exists()
    check = src.check_region(Region.from_bbox(-72.778645, -16.651663, -72.66865, -16.57553))
    assert not check.ok and "not georeferenced" in check.message
    small = LocalSource(SAMPLE_IMAGE, max_pixels=100_000)
    assert "at most" in small.check_region(src.full_region()).message


def test_a_region_without_valid_pixels_is_no_data_and_leaves_nothing(tmp_path):
    """A region over no data only is valid as a region (NoDataError, not RegionError, as documented),
    and is refused before the scene folder is made."""
    from testdata import write_raster

    data = np.full((4, 300, 300), 1000, np.int16)
    data[:, :280, :280] = 0  # no data (0 in every band)
    p = write_raster(tmp_path / "img.tif", data, descriptions=["R", "G", "B", "NIR"])
    with pytest.raises(NoDataError, match="no valid pixels.*draw it over the image data"):
        LocalSource(p).fetch(Region.from_bbox(0, 0, 270, 270, crs="image"), tmp_path / "out" / "scene")
    assert not (tmp_path / "out").exists()
    scene = LocalSource(p).fetch(Region.from_bbox(0, 0, 290, 290, crs="image"), tmp_path / "out" / "scene")
    assert read_image(scene.image_path)[1].sum() == 290 * 290 - 280 * 280


def test_region_check_reads_how_much_of_the_region_has_data(tmp_path):
    """The Region page's check looks at the data too: a region over no data only is refused there
    (not first on the Data page), and one mostly over no data passes with its share said."""
    from testdata import write_raster

    data = np.full((4, 300, 300), 1000, np.int16)
    data[:, :280, :280] = 0
    src = LocalSource(write_raster(tmp_path / "img.tif", data, descriptions=["R", "G", "B", "NIR"]))
    none = src.check_region(Region.from_bbox(0, 0, 270, 270, crs="image"))
    assert not none.ok and "no image data" in none.message and "draw it over the image" in none.message
    some = src.check_region(Region.from_bbox(0, 0, 290, 290, crs="image"))  # 290^2 - 280^2 of 290^2 = 6.8%
    assert some.ok and some.message.startswith("region OK") and some.warning.startswith(
        "only 7% of the region has image data; the rest is no data")
    full = src.check_region(Region.from_bbox(200, 200, 300, 300, crs="image"))  # 100^2 - 80^2 of 100^2 = 36%
    assert full.ok and full.warning.startswith("only 36% of")
    assert src.check_region(Region.from_bbox(250, 250, 300, 300, crs="image")).warning == ""  # 64%
    # a large window is looked at through pixels spread over it, and only inside the outline
    big = np.full((4, 1500, 1500), 1000, np.int16)
    big[:, :, :1050] = 0  # 70% of the columns: no data
    src = LocalSource(write_raster(tmp_path / "big.tif", big, descriptions=["R", "G", "B", "NIR"]))
    assert src.check_region(src.full_region()).warning.startswith("only 30% of")
    tri = Region("image", ((((0.0, 0.0), (1500.0, 0.0), (1500.0, 1500.0), (0.0, 0.0)),),))  # the upper right half
    share = src.data_share(tri, src.check_window(tri).window)
    assert abs(share - (1 - 0.7 ** 2)) < 0.01  # its data: (1500^2 - 1050^2) / 2 of 1500^2 / 2, 51%


def test_pixels_dark_in_every_band_stay_valid_in_the_scene(tmp_path):
    """Reflectance just below 0 in every band (deep shadow, water) is clipped to 0: the scene's
    files must not write those valid pixels as 0 in every band, which reads as no data."""
    from core.sources.base import scene_context
    from testdata import write_raster

    data = np.full((4, 300, 300), 0.1, np.float32)
    data[:, 140:150, 140:150] = -0.01
    p = write_raster(tmp_path / "img.tif", data, descriptions=["R", "G", "B", "NIR"])
    assert read_image(p)[1].all()
    region = Region.from_geojson({"type": "Polygon", "coordinates": [[[20, 20], [280, 20], [280, 280], [150, 280], [20, 150], [20, 20]]]},
                                 crs="image")
    scene = LocalSource(p).fetch(region, tmp_path / "scene")
    feats, valid, _ = read_image(scene.image_path)
    grid = LocalSource(p).grid()
    expected = region.mask(grid, region.window(grid))
    assert valid[120:130, 120:130].all() and (valid == expected).all()
    np.testing.assert_allclose(feats[120:130, 120:130, :4], 0, atol=1e-30)
    ctx = scene_context(scene.image_path)
    assert ctx is not None and read_image(ctx.path)[1].all()  # the context is not masked: all valid


def test_the_grid_is_read_once_per_version_of_the_file(tmp_path, monkeypatch):
    """A dashboard run asks for the grid several times (region checks, the whole-image region):
    the image is opened (and its sample read) once per version of the file, and a bad file is
    refused every time."""
    import os

    import core.sources.local as local
    from testdata import write_raster

    p = write_raster(tmp_path / "img.tif", np.full((4, 40, 30), 0.1, np.float32), descriptions=["R", "G", "B", "NIR"])
    opened = []
    real = local.ImageReader
    monkeypatch.setattr(local, "ImageReader", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    src = LocalSource(p)
    assert src.grid().shape == (40, 30) and LocalSource(p).grid() == src.grid()
    assert len(opened) == 1
    write_raster(p, np.full((4, 50, 30), 0.1, np.float32), descriptions=["R", "G", "B", "NIR"])
    os.utime(p, ns=(1, 1))  # another version of the file, whatever the clock's resolution
    assert LocalSource(p).grid().shape == (50, 30) and len(opened) == 2
    p.write_bytes(b"not a tiff")
    for _ in range(2):
        with pytest.raises(CropMapError):
            LocalSource(p).grid()
    p.unlink()
    with pytest.raises(InputNotFoundError):
        LocalSource(p).grid()


def test_georeferenced_fixture_stays_in_place(tmp_path):
    src = LocalSource(FLANDERS_S2, FLANDERS_LABELS, "worldcereal", "Flanders")
    ok, msg = src.available()
    assert ok and msg.startswith("Flanders: ") and "EPSG:" in msg and "not georeferenced" not in msg
    region = src.full_region()
    assert not region.is_image
    check = src.check_region(region)
    assert check.ok and check.area_ha == pytest.approx(40.96) and not check.clipped
    # the whole image is its footprint, not the lon/lat box around it: the same ground area
    assert region.area_ha() == pytest.approx(40.96, rel=0.01)
    scene = src.fetch(region, tmp_path / "f")
    with rasterio.open(scene.image_path) as im:
        assert im.crs.to_epsg() == 32631
        assert im.descriptions == ("R", "G", "B", "NIR")


def test_ftw_window_needs_band_map(tmp_path):
    with pytest.raises(BandError):
        validate_image(FTW)
    grid = LocalSource(FTW, band_map={"R": 1, "G": 2, "B": 3, "NIR": 4}).grid()
    with rasterio.open(FTW) as f:  # the file's own georeferencing, as GDAL reads it
        assert grid.crs == f.crs.to_string() == "EPSG:32633"  # UTM 33N: Austria
        assert grid.transform == tuple(f.transform)[:6] and grid.shape == (f.height, f.width)


def test_uploads(tmp_path):
    data = FLANDERS_S2.read_bytes()
    p = save_upload(data, "img.TIF", tmp_path)
    assert p.name == "img.tif" and p.read_bytes() == data  # the user's name, so messages name their file
    assert save_upload(data, "img.tif", tmp_path) == p
    other = save_upload(SAMPLE_IMAGE.read_bytes(), "img.tif", tmp_path)  # same name, other content: kept apart
    assert other != p and p.read_bytes() == data
    assert save_upload(data, "../../etc/My field (2).TIFF", tmp_path).name == "My_field_2.tiff"
    with pytest.raises(InvalidDataError, match="limited"):
        save_upload(data, "x.tif", tmp_path, max_bytes=10)
    with pytest.raises(InvalidDataError, match="empty"):
        save_upload(b"", "x.tif", tmp_path)
    grid = validate_image(p)
    counts = validate_labels(FLANDERS_LABELS, "worldcereal", grid)
    assert counts["valid"] > 0
    with pytest.raises(GridMismatchError):
        validate_labels(FLANDERS_LABELS, "worldcereal", LocalSource.sample().grid())
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff")
    from core.errors import CorruptFileError

    with pytest.raises(CorruptFileError):
        validate_image(junk)
    with pytest.raises(InputNotFoundError):
        LocalSource(tmp_path / "missing.tif")
    with pytest.raises(InvalidDataError, match="label map"):
        LocalSource(p, FLANDERS_LABELS)


def test_a_region_over_none_of_the_pixels_is_refused_before_anything_is_written(tmp_path):
    """The sample inside the hole of a region: refused by the check (the Region page), as by the fetch."""
    src = LocalSource.sample()
    ring = Region.from_geojson({"type": "Polygon", "coordinates": [
        [[-100, -100], [1124, -100], [1124, 1124], [-100, 1124], [-100, -100]],
        [[-50, -50], [1074, -50], [1074, 1074], [-50, 1074], [-50, -50]]]}, crs="image")
    check = src.check_region(ring)
    assert not check.ok and "none of the image's pixels" in check.message
    with pytest.raises(RegionError, match="none of the image's pixels"):
        src.fetch(ring, tmp_path / "scene")
    assert not (tmp_path / "scene").exists()


def test_label_map_of_an_upload_is_read_from_its_band_names_in_memory(tmp_path):
    """Read without storing the file (a labels file chosen and then refused stayed in the work folder)."""
    from core.errors import InvalidDataError
    from core.sources.local import label_map_of_upload
    from testdata import SAMPLE_LABELS

    assert label_map_of_upload(FLANDERS_LABELS.read_bytes(), "lc.tif") == "worldcereal"  # band "LC"
    assert label_map_of_upload(SAMPLE_LABELS.read_bytes(), "cdl.tif") is None  # no band names: the form keeps its choice
    assert label_map_of_upload(b"II*\x00 but not a raster", "broken.tif") is None  # (Use these files says why)
    with pytest.raises(InvalidDataError, match="notes.txt is not a GeoTIFF"):
        label_map_of_upload(b"not a raster", "notes.txt")
    assert list(tmp_path.iterdir()) == []


def test_a_lon_lat_image_of_0_to_360_degrees_is_refused_with_the_fix(tmp_path):
    """A lon/lat image whose longitudes run past 180 (the 0-360 convention): its whole-image region
    was refused as "not longitude/latitude", which named no fix."""
    from affine import Affine

    from testdata import write_raster

    with rasterio.open(SAMPLE_IMAGE) as src:
        data, names = src.read(window=rasterio.windows.Window(0, 0, 200, 100)), src.descriptions
    image = write_raster(tmp_path / "east.tif", data, crs="EPSG:4326",
                         transform=Affine(0.0005, 0.0, 179.95, 0.0, -0.0005, -16.7), descriptions=names)
    with pytest.raises(InvalidDataError, match=r"longitudes run past 180 degrees \(to 180\.05\).*gdalwarp"):
        LocalSource(image).full_region()
    # refused as it is uploaded (it was taken, "Using east.tif", then said unusable with no map), with a fix that
    # works: across the meridian, its UTM zone (CENTER_LONG 0 would spread it over the whole world)
    with pytest.raises(InvalidDataError, match=r"warp it to its UTM zone, e.g. gdalwarp -t_srs EPSG:327(60|01) IN.tif"):
        validate_image(image)
    beyond = write_raster(tmp_path / "beyond.tif", data, crs="EPSG:4326",  # all of it past 180: 200.00 to 200.10 E
                          transform=Affine(0.0005, 0.0, 200.0, 0.0, -0.0005, -16.7), descriptions=names)
    with pytest.raises(InvalidDataError, match="CENTER_LONG 0"):
        validate_image(beyond)
    wide = write_raster(tmp_path / "wide.tif", data, crs="EPSG:4326",  # 100 to 260 E: no one UTM zone holds it
                        transform=Affine(0.8, 0.0, 100.0, 0.0, -0.5, 40.0), descriptions=names)
    with pytest.raises(InvalidDataError, match="cut it at the 180th meridian into two images"):
        validate_image(wide)


def test_an_upload_that_is_not_a_tiff_is_refused_and_cannot_read_the_servers_files(tmp_path):
    """A VRT named .tif was taken as an image: its bands read the bytes of any file of the server
    (here a secret beside the uploads), which the map's pixel readout and the patches gave back."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"token=" + b"s3cr3t" * 200)
    vrt = ('<VRTDataset rasterXSize="16" rasterYSize="16">' + "".join(
        f'<VRTRasterBand dataType="Byte" band="{i}" subClass="VRTRawRasterBand"><Description>{b}</Description>'
        f'<SourceFilename relativetoVRT="0">{secret}</SourceFilename><ImageOffset>0</ImageOffset>'
        f'<PixelOffset>1</PixelOffset><LineOffset>16</LineOffset></VRTRasterBand>'
        for i, b in enumerate(("R", "G", "B", "NIR"), 1)) + "</VRTDataset>").encode()
    with pytest.raises(InvalidDataError, match=r"^fields\.tif is not a GeoTIFF .*gdal_translate -of GTiff"):
        save_upload(vrt, "fields.tif", tmp_path / "uploads")
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").rglob("*.tif"))
    for junk in (b"not a tiff", b"\x1f\x8b\x08\x00" + bytes(64)):  # text; a GZIP stream
        with pytest.raises(InvalidDataError, match="is not a GeoTIFF"):
            save_upload(junk, "x.tif", tmp_path / "uploads")
    bigtiff = tmp_path / "big.tif"  # a BigTIFF is a TIFF
    with rasterio.open(bigtiff, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", BIGTIFF="YES",
                       crs="EPSG:32633", transform=rasterio.Affine(10, 0, 500000, 0, -10, 5300000)) as f:
        f.write(np.zeros((1, 8, 8), np.uint8))
    assert save_upload(bigtiff.read_bytes(), "big.tif", tmp_path / "uploads").read_bytes()[:4] == b"II+\x00"


def test_an_upload_whose_header_claims_too_much_is_refused_before_a_pixel_is_read(tmp_path, monkeypatch):
    """A small compressed file can claim a huge image, or one strip of gigabytes (a 0.5 MB upload took 1 GB of
    memory as it was read): its header is checked first, with the limits lowered here to small files'."""
    from core.sources import local

    strip = tmp_path / "strip.tif"  # 256 x 256 px, 4 bands pixel-interleaved, in one strip: 512 KB expanded
    with rasterio.open(strip, "w", driver="GTiff", width=256, height=256, count=4, dtype="uint16", compress="deflate",
                       blockysize=256, interleave="pixel", crs="EPSG:32633",
                       transform=rasterio.Affine(10, 0, 500000, 0, -10, 5300000)) as f:
        f.write(np.zeros((4, 256, 256), np.uint16))
    data = strip.read_bytes()
    assert len(data) < 10_000
    monkeypatch.setattr(local, "MAX_UPLOAD_BLOCK_BYTES", 256 * 1024)
    with pytest.raises(InvalidDataError, match=r"^strip\.tif is stored in blocks of 256 x 256 px, 0\.5 MB each once "
                                               r"decompressed, over the 0\.2 MB an upload may use; save it tiled"):
        save_upload(data, "strip.tif", tmp_path / "uploads")
    monkeypatch.setattr(local, "MAX_UPLOAD_BLOCK_BYTES", 1024 * 1024)
    monkeypatch.setattr(local, "MAX_UPLOAD_PIXELS", 60_000)
    with pytest.raises(InvalidDataError, match=r"^strip\.tif holds 256 x 256 px, over the 60,000 px an upload may hold"):
        save_upload(data, "strip.tif", tmp_path / "uploads")
    monkeypatch.setattr(local, "MAX_UPLOAD_PIXELS", 70_000)
    monkeypatch.setattr(local, "MAX_UPLOAD_BANDS", 3)
    with pytest.raises(InvalidDataError, match=r"^strip\.tif has 4 bands, over the 3 an upload may have"):
        save_upload(data, "strip.tif", tmp_path / "uploads")
    # a refused upload leaves nothing behind (the source's own discarding, as for any refusal)
    with pytest.raises(InvalidDataError):
        local.use_uploaded_files(data, "strip.tif", tmp_path / "up2", band_spec="1,2,3,4")
    assert not any((tmp_path / "up2").rglob("*.tif"))
    monkeypatch.setattr(local, "MAX_UPLOAD_BANDS", 64)
    assert save_upload(data, "strip.tif", tmp_path / "uploads").is_file()


def test_an_upload_whose_overviews_claim_huge_blocks_is_refused(tmp_path):
    """The map of a whole image is read from its overviews: a 1024 x 1024 px upload (tiny compressed) whose
    overview was stored in 4096 x 4096 px blocks (320 MB each once decompressed, five bands) took 0.55 GB to
    show. Its
    own blocks pass; its overviews' are refused, at the real limit; the same image with GDAL's usual
    overviews is taken."""
    from rasterio.enums import Resampling

    from core.sources import local

    def upload(path, ovr_block):
        with rasterio.Env(GDAL_TIFF_OVR_BLOCKSIZE=ovr_block), \
                rasterio.open(path, "w", driver="GTiff", width=1024, height=1024, count=5, dtype="float32",
                              compress="deflate", blockysize=16, crs="EPSG:32633",
                              transform=rasterio.Affine(10, 0, 500000, 0, -10, 5300000)) as f:
            f.write(np.full((5, 1024, 1024), 0.1, np.float32))
            f.build_overviews([2], Resampling.nearest)
        return path.read_bytes()

    bomb = upload(tmp_path / "ovr.tif", 4096)
    assert len(bomb) < 2_000_000
    with pytest.raises(InvalidDataError, match=r"^ovr\.tif's overviews are stored in blocks of 4,096 x 4,096 px, "
                                               r"320(\.0)? MB each once decompressed, over the 256(\.0)? MB an upload"):
        local.use_uploaded_files(bomb, "ovr.tif", tmp_path / "uploads", band_spec="1,2,3,4")
    assert not any((tmp_path / "uploads").rglob("*.tif"))  # nothing kept
    assert local.MAX_UPLOAD_BLOCK_BYTES == 256 * 1024 * 1024
    assert save_upload(upload(tmp_path / "usual.tif", 128), "usual.tif", tmp_path / "uploads").is_file()


def test_a_scenes_origin_names_the_image_it_was_cut_from_or_its_title(tmp_path):
    """The dashboard's GeoTIFF downloads name their source: the uploaded file and where the region lies
    in it, or an Earth Engine composite's title (they named the dashboard's own copy, image.tif)."""
    import json

    from core.sources.base import scene_origin

    src = LocalSource.sample()
    scene = src.fetch(Region.from_bbox(100, 50, 300, 170, crs="image"), tmp_path / "s")
    assert scene_origin(scene.image_path) == "sample_rgbn.tif (rows 50-169, columns 100-299)"
    ee = tmp_path / "ee"
    ee.mkdir()
    (ee / "scene.json").write_text(json.dumps({"source": "earthengine", "title": "Landsat 5 TM median of 7 scenes"}))
    assert scene_origin(ee / "image.tif") == "Landsat 5 TM median of 7 scenes"
    assert scene_origin(tmp_path / "elsewhere" / "image.tif") == "image.tif"  # (no scene.json: the file's name)


def test_uploaded_files_become_a_source_or_leave_nothing(tmp_path):
    """The Region page's "Use these files": the image and its labels stored, checked as every step
    reads them, and said in words; a refusal of either removes both."""
    from core.sources.local import use_uploaded_files

    up = tmp_path / "uploads"
    made = use_uploaded_files(FLANDERS_S2.read_bytes(), "flanders.tif", up, FLANDERS_LABELS.read_bytes(),
                              "labels.tif", "worldcereal")
    assert made.spec["kind"] == "local" and made.spec["label_map"] == "worldcereal" and made.spec["title"] == "flanders.tif"
    assert made.grid.georeferenced and made.label_counts["valid"] > 0 and made.averaged_from == ""
    counts = validate_labels(made.spec["labels"], "worldcereal", validate_image(made.spec["image"]))
    assert made.describe() == (f"Using flanders.tif: {made.grid.width:,} x {made.grid.height:,} px, georeferenced "
                               f"(EPSG:32631, WGS 84 / UTM zone 31N). Labels: {counts['valid']:,} labelled pixels, "
                               f"{counts['crop']:,} crop.")
    # averaged to 30 m: the copies are the source, named so
    coarse = use_uploaded_files(FLANDERS_S2.read_bytes(), "flanders.tif", up, FLANDERS_LABELS.read_bytes(),
                                "labels.tif", "worldcereal", pixel_size_m=30)
    assert coarse.spec["title"] == "flanders (30 m)" and coarse.spec["band_map"] is None
    assert coarse.averaged_from.startswith(" (averaged from 64 x 64 px of 10 m")
    assert coarse.warning is None
    # what reading the upload warned of is kept: its averaged copy, float with NaN, no longer shows an undeclared fill
    with rasterio.open(FLANDERS_S2) as src:
        data, profile, names = src.read(), src.profile, src.descriptions
    data[:, :24] = 65535
    filled = tmp_path / "filled.tif"
    with rasterio.open(filled, "w", **{**profile, "nodata": None}) as dst:
        dst.write(data)
        dst.descriptions = names
    told = use_uploaded_files(filled.read_bytes(), "filled.tif", tmp_path / "uploads2", pixel_size_m=30)
    assert "65535" in told.warning and "gdal_edit.py -a_nodata 65535" in told.warning
    # band numbers that contradict the file's band names (left in the form from the file before): the outcome is
    # a warning, not a green success
    crossed = use_uploaded_files(FLANDERS_S2.read_bytes(), "flanders.tif", tmp_path / "uploads3", band_spec="1,2,3,4")
    assert crossed.warning and "band numbers" in crossed.warning
    before = sorted(p.relative_to(up) for p in up.rglob("*"))
    # refused labels (another image's grid): neither file of this upload is kept
    with pytest.raises(GridMismatchError):
        use_uploaded_files(FTW.read_bytes(), "austria.tif", up, FLANDERS_LABELS.read_bytes(), "labels.tif", "worldcereal",
                           band_spec="R=3,G=2,B=1,NIR=4")
    with pytest.raises(BandError):  # a bad band list, before anything is stored
        use_uploaded_files(FTW.read_bytes(), "austria.tif", up, band_spec="R=1,G=2")
    # a damaged file is named as the user knows it, not by where the server stored it
    with pytest.raises(CropMapError) as refused:
        use_uploaded_files(FTW.read_bytes()[:30_000], "truncated.tif", up, band_spec="1,2,3,4")
    assert "truncated.tif" in str(refused.value) and str(up) not in str(refused.value)
    assert sorted(p.relative_to(up) for p in up.rglob("*")) == before


def test_a_scene_kept_as_json_values_comes_back_the_same():
    """A session keeps its scene as JSON values (a browser reload reads them back): the paths, labels,
    title and the extra facts (its window in the image, its pixel size) come back whole."""
    import json

    from core.sources.base import Scene

    scene = Scene(Path("/w/scenes/a/image.tif"), Path("/w/scenes/a/labels.tif"), "cdl", False, "Sample",
                  "Ag-Net", {"row_off": 3, "col_off": 4, "pixel_size_m": 30.0})
    back = Scene.from_dict(json.loads(json.dumps(scene.to_dict())))
    assert back == scene and back.extra == scene.extra
    bare = Scene(Path("/w/image.tif"), None, None, True, "")
    assert Scene.from_dict(json.loads(json.dumps(bare.to_dict()))) == bare


@pytest.mark.parametrize("transform, said", [
    ((30.0, 0.0, 500000.0, 0.0, -30.0, 4500000.0), r"rows reach latitude 4,500,000, beyond the pole"),  # UTM metres
    ((0.001, 0.0, 10.0, 0.0, -0.001, 95.0), r"rows reach latitude 95, beyond the pole"),
    ((0.5, 0.0, 380.0, 0.0, -0.5, 40.0), r"columns reach longitude 4\d\d, past 360 degrees"),
])
def test_an_image_whose_lon_lat_tag_is_wrong_is_said_so_on_upload(transform, said):
    """Metres of a UTM zone tagged EPSG:4326: the upload said the longitudes ran past 180 and to warp them
    (CENTER_LONG 0), a fix that does nothing for it; `info` and `predict` said that the tag is wrong."""
    with pytest.raises(InvalidDataError, match=said + r".*the CRS tag is wrong; set the image's real CRS") as info:
        image_footprint(Grid("EPSG:4326", transform, 64, 64))
    assert "past 180" not in str(info.value) and "CENTER_LONG" not in str(info.value)


def _half_blank(tmp_path) -> LocalSource:
    """A 300 x 300 px image whose columns 0-49 are no data (0 in every band)."""
    data = np.full((4, 300, 300), 1000, np.int16)
    data[:, :, :50] = 0
    return LocalSource(write_raster(tmp_path / "img.tif", data, descriptions=["R", "G", "B", "NIR"]))


def test_a_region_half_over_data_passes_without_a_note_and_a_low_share_is_kept(tmp_path):
    """Exactly half of the region over image data is enough (LOW_DATA_SHARE): no note of "only 50%"; a region
    under it passes with the note and its share, which the Region page shows beside the note."""
    src = _half_blank(tmp_path)
    half = src.check_region(Region.from_bbox(0, 0, 100, 100, crs="image"))  # columns 0-49 of 0-99: no data
    assert half.ok and half.warning == "" and half.data_share == 0.5
    low = src.check_region(Region.from_bbox(0, 0, 80, 100, crs="image"))  # 30 of 80 columns with data
    assert low.ok and low.warning.startswith("only 38% of the region") and low.data_share == pytest.approx(30 / 80)
    # a window that holds none of the region's pixels: no share of data at all (not all of it, nor a division by 0)
    tri = Region("image", ((((100.0, 100.0), (200.0, 100.0), (100.0, 200.0), (100.0, 100.0)),),))
    from core.region import PixelWindow

    assert src.data_share(tri, PixelWindow(250, 250, 40, 40)) == 0.0
    assert src.data_share(tri, PixelWindow(100, 100, 100, 100)) == 1.0


def test_the_scene_folder_is_another_for_other_bands_or_other_labels(tmp_path):
    """The scene folder is named by what the scene is made of: another band order, another labels file (or the
    same file changed) is another scene; the same inputs are the same folder (reused, not cut again). A folder
    shared by both showed the first scene's bands or labels for the second."""
    import os
    import shutil

    from testdata import SAMPLE_LABELS

    region = Region.from_bbox(10, 10, 200, 200, crs="image")
    rgb = LocalSource(FTW, band_map={"R": 1, "G": 2, "B": 3, "NIR": 4})
    assert rgb.scene_key(region) == LocalSource(FTW, band_map={"NIR": 4, "B": 3, "G": 2, "R": 1}).scene_key(region)
    assert rgb.scene_key(region) != LocalSource(FTW, band_map={"R": 3, "G": 2, "B": 1, "NIR": 4}).scene_key(region)
    labels = Path(shutil.copy(SAMPLE_LABELS, tmp_path / "cdl.tif"))
    other = Path(shutil.copy(SAMPLE_LABELS, tmp_path / "cdl_2016.tif"))
    os.utime(labels, ns=(10**18, 10**18))
    os.utime(other, ns=(10**18, 10**18))
    src = LocalSource(SAMPLE_IMAGE, labels, "cdl")
    key = src.scene_key(region)
    assert key == LocalSource(SAMPLE_IMAGE, labels, "cdl").scene_key(region)
    assert key != LocalSource(SAMPLE_IMAGE, other, "cdl").scene_key(region)  # other labels, the same bytes and time
    os.utime(labels, ns=(2 * 10**18, 2 * 10**18))  # the labels saved again
    assert LocalSource(SAMPLE_IMAGE, labels, "cdl").scene_key(region) != key
    changed = LocalSource(SAMPLE_IMAGE, labels, "cdl").scene_key(region)
    with open(labels, "ab") as f:  # the labels rewritten at the same time, to another size
        f.write(b"\0" * 16)
    os.utime(labels, ns=(2 * 10**18, 2 * 10**18))
    assert LocalSource(SAMPLE_IMAGE, labels, "cdl").scene_key(region) != changed


def test_a_polygon_over_the_whole_image_keeps_the_image_around_its_outline(small_scene, tmp_path):
    """A triangle whose window is the whole image: the scene is masked to the triangle, and the context image
    keeps the pixels outside it for prediction (only a region that is the whole image is its own context)."""
    from core.sources.base import scene_context

    image, _ = small_scene
    src = LocalSource(image)
    tri = Region("image", ((((0.0, 0.0), (320.0, 0.0), (0.0, 288.0), (0.0, 0.0)),),))
    scene = src.fetch(tri, tmp_path / "s")
    assert (scene.extra["height"], scene.extra["width"]) == (288, 320)
    _, valid, _ = read_image(scene.image_path)
    _, orig_valid, _ = read_image(image)
    outside = orig_valid & ~valid  # image data outside the triangle: no data in the scene
    assert outside.sum() > 20_000
    ctx = scene_context(scene.image_path)
    assert ctx is not None and (ctx.row_off, ctx.col_off) == (0, 0)
    _, ctx_valid, ctx_grid = read_image(ctx.path)
    assert ctx_grid.shape == (288, 320) and np.array_equal(ctx_valid, orig_valid)


def test_a_scene_file_grown_is_cut_again_and_a_whole_scene_is_not_rewritten(tmp_path):
    """A scene file longer than it was written (another process appended to it) is not the scene: written again.
    A whole scene is reused as it is: not read from the image again, its files untouched."""
    import os

    src = LocalSource.sample()
    box = Region.from_bbox(10, 10, 300, 300, crs="image")
    src.fetch(box, tmp_path / "s")
    made = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    for p in (tmp_path / "s").iterdir():
        os.utime(p, ns=(10**18, 10**18))
    said = []
    again = src.fetch(box, tmp_path / "s", progress=lambda d, t, m: said.append(m))
    assert said == [] and again.image_path == tmp_path / "s" / "image.tif"
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "s").iterdir()} == {n: 10**18 for n in made}
    with open(tmp_path / "s" / "image.tif", "ab") as f:
        f.write(b"\0" * 100)
    src.fetch(box, tmp_path / "s", progress=lambda d, t, m: said.append(m))
    assert said and said[-1] == "done"
    assert (tmp_path / "s" / "image.tif").read_bytes() == made["image.tif"]


def test_uploads_refused_by_any_failure_are_removed(tmp_path, monkeypatch):
    """A failure that is no CropMapError while the uploads are checked (memory ran out reading the labels)
    removes them too: they piled up in the work folder, one copy per try."""
    from core.sources import local

    def out_of_memory(*a, **k):
        raise MemoryError("out of memory")

    monkeypatch.setattr(local, "validate_labels", out_of_memory)
    up = tmp_path / "uploads"
    with pytest.raises(MemoryError):
        local.use_uploaded_files(FLANDERS_S2.read_bytes(), "flanders.tif", up, FLANDERS_LABELS.read_bytes(), "labels.tif",
                                 "worldcereal")
    assert up.is_dir() and list(up.rglob("*")) == []


def test_discarding_uploads_removes_only_what_was_stored_as_an_upload(tmp_path):
    """Only ``<16 hex digits>/<name>`` files (save_upload's) are removed, with their folder where nothing else
    is in it: a path elsewhere (the user's own files, the work folder's) is never deleted."""
    from core.sources.local import discard_uploads

    def made(rel: str) -> Path:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
        return p

    lone, twin, kept_beside = made("0123456789abcdef/a.tif"), made("fedcba9876543210/b.tif"), made("fedcba9876543210/c.tif")
    mine = [made("fields/survey.tif"), made("notes.tif"), made("0123456789abcdeX/d.tif"), made("0123456789abcde/e.tif")]
    discard_uploads([lone, twin, *mine, tmp_path / "0123456789abcdef" / "never_written.tif"])
    assert not lone.exists() and not lone.parent.exists()
    assert not twin.exists() and kept_beside.is_file()  # (the folder stays with the other file)
    assert all(p.is_file() for p in mine)


def test_fields_burnt_with_another_class_property_are_another_label_file(tmp_path):
    """The same GeoJSON burnt with its ``crop`` property and then with its ``code``: two label files, each of its
    own property (the second choice gave the first's labels back, from the same file)."""
    import json

    import rasterio

    from core.sources.local import burn_uploaded_fields
    from testdata import box_ring, feature_collection

    grid = Grid(None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 60, 40)
    data = json.dumps(feature_collection(({"crop": 1, "code": 11}, box_ring(10, 5, 30, 25)),
                                         ({"crop": 0, "code": 13}, box_ring(35, 5, 55, 25)), crs="image")).encode()
    created = []
    by_crop, _ = burn_uploaded_fields(data, "fields.geojson", grid, tmp_path, "crop", created)
    by_code, _ = burn_uploaded_fields(data, "fields.geojson", grid, tmp_path, "code", created)
    assert by_crop != by_code and created == [by_crop, by_code]
    with rasterio.open(by_crop) as a, rasterio.open(by_code) as b:
        crop, code = a.read(1), b.read(1)
    assert (crop[15, 20], crop[15, 45]) == (1, 0) and (code[15, 20], code[15, 45]) == (11, 13)
    assert burn_uploaded_fields(data, "fields.geojson", grid, tmp_path, "crop", created)[0] == by_crop and len(created) == 2


@pytest.mark.parametrize("north, fix", [
    (85.5, "cut it at the 180th meridian into two images"),  # past UTM's 84 N: no UTM zone to warp it to
    (-81.0, "cut it at the 180th meridian into two images"),  # past UTM's 80 S
    (83.5, "warp it to its UTM zone, e.g. gdalwarp -t_srs EPSG:326(60|01) IN.tif"),
])
def test_an_image_across_the_180th_meridian_near_a_pole_is_told_to_be_cut(north, fix):
    """Across the 180th meridian a UTM zone holds a narrow image, but not past the latitudes UTM has (80 S to
    84 N): there the fix said must be another (a UTM CRS there is no place for it)."""
    with pytest.raises(InvalidDataError, match=r"longitudes run past 180 degrees.*" + fix):
        image_footprint(Grid("EPSG:4326", (0.0005, 0.0, 179.95, 0.0, -0.0005, north), 128, 64))


def test_a_lon_lat_image_that_ends_at_180_degrees_is_placed_and_one_past_minus_180_is_not():
    """An image whose edge is exactly the 180th meridian (east or west) is a usable lon/lat image; one whose
    longitudes run under -180 cannot be placed."""
    east = image_footprint(Grid("EPSG:4326", (0.0078125, 0.0, 179.0, 0.0, -0.0078125, 10.0), 128, 64))
    assert east.bounds == (179.0, 9.5, 180.0, 10.0)
    west = image_footprint(Grid("EPSG:4326", (0.0078125, 0.0, -180.0, 0.0, -0.0078125, 10.0), 128, 64))
    assert west.bounds == (-180.0, 9.5, -179.0, 10.0)
    with pytest.raises(InvalidDataError, match=r"longitudes run past 180 degrees \(to -181\)"):
        image_footprint(Grid("EPSG:4326", (0.0078125, 0.0, -181.0, 0.0, -0.0078125, 10.0), 128, 64))


def test_labels_with_no_labelled_pixel_are_refused_and_a_partial_labelling_says_its_share(small_scene, tmp_path):
    """Labels all no data with the chosen label map (the wrong map, or an empty file) are refused, naming the
    file; labels of a few surveyed fields give the share of the image they label, which the upload says."""
    from core.sources.local import UploadedFiles
    from testdata import SURVEYED, surveyed_labels

    image, labels = small_scene
    grid = LocalSource(image).grid()
    with rasterio.open(labels) as src:
        profile, codes = src.profile, src.read(1)
    empty = tmp_path / "empty_cdl.tif"
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.zeros_like(codes), 1)
    with pytest.raises(NoDataError, match=r"^empty_cdl\.tif holds no labelled pixel with label map 'cdl'"):
        validate_labels(empty, "cdl", grid)
    fields = surveyed_labels(labels, tmp_path / "fields.tif")
    counts = validate_labels(fields, "cdl", grid)
    assert 0 < counts["valid"] <= len(SURVEYED) * 20 * 20 and counts["labelled_share"] == counts["valid"] / (320 * 288)
    said = UploadedFiles({"title": "small.tif"}, grid, "", counts).describe()
    assert (f"Labels: {counts['valid']:,} labelled pixels ({counts['valid'] / (320 * 288):.0%} of the image's pixels; the "
            "others have no label)") in said
    whole = validate_labels(labels, "cdl", grid)
    assert whole["labelled_share"] == whole["valid"] / (320 * 288) and whole["labelled_share"] > 0.5


def test_an_averaged_upload_reads_its_copy_by_the_copys_band_names(tmp_path):
    """Averaged to 30 m, the image's copy names its bands R, G, B, NIR: the source reads it by those names, not
    by the band numbers given for the original (which swapped red and blue in the copy); without labels, the
    source has no label map either."""
    from core.sources.local import use_uploaded_files

    made = use_uploaded_files(FTW.read_bytes(), "austria.tif", tmp_path / "up", band_spec="R=3,G=2,B=1,NIR=4",
                              label_map="worldcereal", pixel_size_m=30)
    assert made.spec["band_map"] is None and made.spec["labels"] is None and made.spec["label_map"] is None
    source = LocalSource(made.spec["image"], made.spec["labels"], made.spec["label_map"],
                         band_map=made.spec["band_map"])
    with ImageReader(made.spec["image"], made.spec["band_map"]) as copy, ImageReader(FTW, {"R": 3, "G": 2, "B": 1,
                                                                                            "NIR": 4}) as orig:
        feats, valid = copy.read()
        full, full_valid = orig.read()
    assert source.grid().shape == feats.shape[:2] and valid[0, 0] and full_valid[:3, :3].all()
    # the copy's first pixel is the mean of the original's first 3 x 3: red is red
    np.testing.assert_allclose(feats[0, 0, :4], full[:3, :3, :4].mean(axis=(0, 1)), rtol=1e-3)


def test_averaged_labels_that_are_refused_name_the_users_file(tmp_path):
    """Labels with no labelled pixel, uploaded to be averaged to 30 m: the refusal names the file the user chose,
    not the averaged copy the server made of it ("labels_30m_cdl.tif"), and leaves nothing behind."""
    from core.sources.local import use_uploaded_files

    with rasterio.open(FLANDERS_LABELS) as src:
        profile = src.profile
    blank = tmp_path / "my_labels.tif"
    with rasterio.open(blank, "w", **{**profile, "count": 1, "dtype": "uint8", "nodata": None}) as dst:
        dst.write(np.zeros((1, 64, 64), np.uint8))
    up = tmp_path / "up"
    with pytest.raises(NoDataError) as refused:
        use_uploaded_files(FLANDERS_S2.read_bytes(), "flanders.tif", up, blank.read_bytes(), "my_labels.tif", "cdl",
                           pixel_size_m=30)
    assert str(refused.value).startswith("my_labels.tif holds no labelled pixel")
    assert not any(up.rglob("*.tif"))


def test_labels_are_checked_in_strips_with_the_figures_of_a_whole_read(small_scene, monkeypatch):
    """An upload of a few MB, well compressed, may hold a billion pixels: its labels are counted strip by strip
    (read whole, they took gigabytes of the server's memory), with the counts and the warning of the whole."""
    import core.raster
    from core.labels import get_class_map, label_map_warning
    from core.raster import read_label_classes
    from core.sources import local

    image, labels = small_scene
    grid = LocalSource(image).grid()
    mask, codes = read_label_classes(labels, get_class_map("cdl"), grid)
    heights = []
    read_padded = core.raster.read_padded

    def strip(src, path, idx, window, *args, **kwargs):
        heights.append(int(window.height))
        return read_padded(src, path, idx, window, *args, **kwargs)

    monkeypatch.setattr(core.raster, "read_padded", strip)
    monkeypatch.setattr(core.raster, "STRIP_PIXELS", grid.width * 7)
    got = validate_labels(labels, "cdl", grid)
    assert heights and max(heights) <= 7 and sum(heights) == grid.height
    valid = int((mask != 255).sum())
    assert got == {"valid": valid, "crop": int((mask == 1).sum()), "labelled_share": valid / mask.size,
                   "warning": label_map_warning(codes, get_class_map("cdl"), labels.name,
                                                local.file_bands(labels))}
