"""core.overlays: colours, legends, downsampling, placement (image and web mercator)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rasterio
from PIL import Image

from core import overlays as ov
from core.errors import InvalidDataError
from core.predict import threshold_mask
from core.grid import Grid
from core.raster import read_image

from testdata import FLANDERS_S2, SAMPLE_IMAGE

IMAGE_GRID = Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 300, 200)



def labels_layer(mask, imaged=None):
    """The label layer's RGBA and legend, as the dashboard makes them (cached.labels_overlay)."""
    legend, show_nodata = ov.labels_legend(mask, imaged)
    return ov.labels_colour(mask, show_nodata, imaged), legend

def test_colormaps_and_legends():
    lut = ov.colormap("probability")
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert tuple(lut[0]) == (68, 1, 84) and tuple(lut[-1]) == (253, 231, 37)
    legend = ov.gradient_legend("Crop probability", "probability", "0", "1")
    html = legend.to_html()
    assert "linear-gradient" in html and "http" not in html
    classes = ov.class_legend("Labels", ["crop", "not crop", "no label"])
    assert [i[0] for i in classes.items] == ["crop", "not crop", "no label"]


def test_class_and_probability_rendering():
    prob = np.array([[0.1, 0.6], [np.nan, 0.9]], np.float32)
    rgba = ov.probability_colour(prob)
    assert rgba[1, 0, 3] == 0 and rgba[0, 0, 3] == 255
    crop = ov.crop_colour(prob, 0.5)
    assert crop[0, 0, 3] == 0 and crop[0, 1, 3] == 255 and crop[1, 1, 3] == 255 and crop[1, 0, 3] == 0
    assert tuple(crop[0, 1, :3]) == ov.CLASS_COLOURS["predicted crop"]
    mask = threshold_mask(prob, 0.5)
    assert mask.tolist() == [[0, 1], [255, 1]]
    # the crop layer is the crop mask: 0.496 is stored as 50 percent, crop at 0.50 in both
    edge = np.array([[0.494, 0.496, 0.5, 0.504]], np.float32)
    assert (ov.crop_colour(edge, 0.5)[..., 3] == 255).tolist() == (threshold_mask(edge, 0.5) == 1).tolist()
    assert ov.crop_colour(edge, 0.5)[0, :, 3].tolist() == [0, 255, 255, 255]
    lab = ov.labels_colour(np.array([[1, 0, 255]], np.uint8), show_nodata=True)
    # each class drawn opaque in its legend colour: the layer's opacity alone sets how all of them look
    assert [tuple(px) for px in lab[0]] == [ov.CLASS_COLOURS[n] + (255,) for n in ("crop", "not crop", "no label")]
    assert ov.labels_colour(np.array([[255]], np.uint8))[0, 0, 3] == 0  # no data left out unless shown
    # no data is shown where the image has data (a pixel without a label), not outside the region's polygon
    inside = ov.labels_colour(np.array([[255, 255, 1]], np.uint8), True, imaged=np.array([[True, False, False]]))
    assert inside[0, :, 3].tolist() == [255, 0, 255]
    # labels of a few fields (under half the image's pixels) leave the rest clear, not "no label" over the imagery
    fields = np.full((4, 4), 255, np.uint8)
    fields[:1] = 1
    fields[1, :3] = 0
    rgba, legend = labels_layer(fields)  # 7 of 16 pixels labelled
    assert (rgba[..., 3] == 255).sum() == 7 and legend.items[-1] == ("not labelled", "transparent")
    assert [label for label, _ in legend.items] == ["crop", "not crop", "not labelled"]
    assert "background:transparent" in legend.to_html()
    fields[1, 3] = fields[2, 0] = 0  # 9 of 16: most of the image, so the rest is no data, as gaps in a product
    rgba, legend = labels_layer(fields)
    assert (rgba[..., 3] == 255).all() and [label for label, _ in legend.items] == ["crop", "not crop", "no label"]
    # counted over the image's pixels: outside the image (or the region) nothing is painted
    imaged = np.zeros((4, 4), bool)
    imaged[:2] = True
    fields[1, 3] = 255  # 7 of its 8 pixels labelled
    rgba, legend = labels_layer(np.where(imaged, fields, 255).astype(np.uint8), imaged)
    assert (rgba[..., 3] == 255).sum() == 8 and legend.items[-1][0] == "no label"
    assert labels_layer(np.ones((2, 2), np.uint8))[1].items == ov.class_legend("Labels", ["crop", "not crop"]).items
    # legend swatches at the layer's opacity, as the map draws the layer
    legend = ov.class_legend("Labels", ["crop", "no label"])
    assert "opacity" not in legend.to_html() and legend.to_html(0.5).count("opacity:0.50") == 2
    dis = ov.disagreement_colour(np.array([[1, 0, 1, 255]], np.uint8), np.array([[0, 1, 1, 1]], np.uint8))
    assert tuple(dis[0, 0, :3]) == ov.CLASS_COLOURS["false crop"]
    assert tuple(dis[0, 1, :3]) == ov.CLASS_COLOURS["missed crop"]
    assert dis[0, 2, 3] == 0 and dis[0, 3, 3] == 0
    with pytest.raises(InvalidDataError):
        ov.disagreement_colour(np.zeros((2, 2), np.uint8), np.zeros((3, 3), np.uint8))
    # the errors of one label class alone: the others become transparent
    one = ov.disagreement_colour(np.array([[1, 0, 1, 255]], np.uint8), np.array([[0, 1, 1, 1]], np.uint8),
                                 np.array([[False, True, True, True]]))
    assert one[0, 0, 3] == 0 and tuple(one[0, 1, :3]) == ov.CLASS_COLOURS["missed crop"] and one[0, 1, 3] == 255
    with pytest.raises(InvalidDataError, match="selection"):
        ov.disagreement_colour(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), np.ones((3, 3), bool))


@pytest.mark.parametrize("vision", ["normal", "deuteranopia", "protanopia", "tritanopia"])
def test_crop_layer_stands_out_from_the_probability_colours(vision):
    """The thresholded layer sits on top of the probability layer: no colormap entry may look like it,
    to colour-blind viewers too (the magenta it was matched a probability's colour within 0.6 CIELAB
    units to deuteranopes and protanopes)."""
    from colour_vision import difference

    lut = ov.colormap("probability").astype(float)
    assert difference(ov.CLASS_COLOURS["predicted crop"], lut, vision).min() > 10


@pytest.mark.parametrize("vision", ["normal", "deuteranopia", "protanopia", "tritanopia"])
def test_false_and_missed_crop_stand_out_from_each_other_and_the_grey_image(vision):
    """The disagreement map's two errors over the image in grey (the Quality page): the red false crop
    was within 30 CIELAB units of a grey to protanopes (olive on grey)."""
    from colour_vision import difference

    greys = np.array([[g, g, g] for g in range(40, 221, 5)], float)
    false, missed = ov.CLASS_COLOURS["false crop"], ov.CLASS_COLOURS["missed crop"]
    assert difference(false, greys, vision).min() > 30 and difference(missed, greys, vision).min() > 30
    assert difference(false, missed, vision) > 80


def test_composites_of_real_sample():
    with rasterio.open(SAMPLE_IMAGE):
        pass
    feats, valid, grid = read_image(SAMPLE_IMAGE)
    tc = ov.true_colour(feats, valid)
    assert tc.shape == (1024, 1024, 4)
    assert (tc[..., 3][~valid] == 0).all()
    assert tc[valid, :3].std() > 10  # stretched, not flat
    fc = ov.false_colour(feats, valid)
    nd = ov.ndvi_colour(feats, valid)
    assert fc.shape == nd.shape == tc.shape
    assert (fc[..., 3] == valid * 255).all() and (nd[..., 3] == valid * 255).all()
    # false colour is NIR, R, G: its green and blue are true colour's red and green (same per-band stretch)
    assert np.array_equal(fc[..., 1:3], tc[..., 0:2])
    # and its red follows NIR: brighter NIR is never shown darker
    order = np.argsort(feats[valid, 3], kind="stable")
    assert (np.diff(fc[valid, 0][order].astype(int)) >= 0).all() and fc[valid, 0].std() > 10
    # NDVI colours come from the ndvi colormap, in NDVI order (the colormap's entries are all distinct)
    index = {tuple(c): i for i, c in enumerate(ov.colormap("ndvi"))}
    lut_pos = np.array([index[tuple(c)] for c in nd[valid, :3]])
    order = np.argsort(feats[valid, 4], kind="stable")
    assert (np.diff(lut_pos[order]) >= 0).all() and lut_pos.max() - lut_pos.min() > 50


def test_downsample_and_png():
    rows, cols = np.mgrid[0:3000, 0:1500]
    big = np.stack([rows % 256, cols % 256, rows // 256, cols // 256], axis=-1).astype(np.uint8)  # pixels say where they are
    small = ov.downsample(big, 1024)
    assert max(small.shape[:2]) <= 1024
    # nearest neighbour with the smallest whole stride that fits (every 2nd pixel leaves 1500 rows, every 3rd
    # 1000), the centre pixel of each 3 x 3 block: the first one drew the image a pixel up and left of its place
    np.testing.assert_array_equal(small, big[1::3, 1::3])
    rows = np.arange(3001)
    odd = ov.downsample(np.stack([rows % 256, rows // 256], -1)[:, None].repeat(1500, 1).astype(np.uint8), 1024)
    rows = odd[..., 1].astype(int) * 256 + odd[..., 0]  # 1001 rows, each over 3001 / 1001 image rows: its centre
    assert odd.shape[:2] == (1001, 500) and (rows[:, 0] == ((np.arange(1001) + 0.5) * 3001 / 1001).astype(int)).all()
    tiny = np.zeros((10, 10, 4), np.uint8)
    assert ov.downsample(tiny) is tiny  # small enough: returned as it is, not copied
    png = ov.png_bytes(small)
    assert Image.open(io.BytesIO(png)).size == (small.shape[1], small.shape[0])
    assert ov.data_url(png).startswith("data:image/png;base64,")


def test_image_overlay_in_pixel_bounds_with_offset():
    rgba = np.full((200, 300, 4), 255, np.uint8)
    o = ov.make_overlay("x", rgba, IMAGE_GRID, offset=(10, 20))
    assert o.bounds == ((-210.0, 20.0), (-10.0, 320.0))
    assert (o.width, o.height) == (300, 200)
    assert ov.map_bounds(IMAGE_GRID) == ((-200.0, 0.0), (0.0, 300.0))
    with pytest.raises(InvalidDataError, match="not georeferenced"):
        ov.lonlat_bounds(IMAGE_GRID)
    with pytest.raises(InvalidDataError):
        ov.make_overlay("x", np.zeros((5, 5, 4), np.uint8), IMAGE_GRID)


def test_georeferenced_overlay_is_reprojected_to_web_mercator():
    feats, valid, grid = read_image(FLANDERS_S2)
    o = ov.make_overlay("tc", ov.true_colour(feats, valid), grid)
    (s, w), (n, e) = o.bounds
    assert 50.80 < s < n < 50.83 and 3.01 < w < e < 3.04  # Flanders, Belgium
    (s2, w2), (n2, e2) = ov.lonlat_bounds(grid)
    assert s == pytest.approx(s2, abs=1e-3) and e == pytest.approx(e2, abs=1e-3)
    img = Image.open(io.BytesIO(o.png))
    assert img.mode == "RGBA" and 4 * 50 < img.size[0] < 4 * 80  # 4 times finer than its pixels (WEB_FINER)


def test_an_image_across_the_180th_meridian_is_put_on_the_web_map_whole():
    """An image of eastern Fiji (UTM 60S) across 180 degrees came out a 1 px transparent strip with
    bounds round the whole globe: it is drawn whole, its east in longitudes past 180 (web maps take them)."""
    from rasterio.warp import transform

    x180, y = transform("EPSG:4326", "EPSG:32760", [180.0], [-16.8])
    for x0, across in ((round(x180[0]) - 3600, False), (round(x180[0]) - 1500, True)):
        grid = Grid("EPSG:32760", (30.0, 0.0, x0, 0.0, -30.0, round(y[0])), 100, 100)
        img, ((s, w), (n, e)) = ov.to_web_mercator(np.full((100, 100, 4), 255, np.uint8), grid)
        assert (img[..., 3] > 0).mean() > 0.95 and 4 * 95 <= img.shape[0] <= 4 * 105 and 4 * 95 <= img.shape[1] <= 4 * 105
        assert -16.83 < s < n < -16.79 and 179.9 < w < e < 180.1 and (e > 180) == across
        (s2, w2), (n2, e2) = ov.lonlat_bounds(grid)
        assert (w2, e2) == (pytest.approx(w, abs=1e-3), pytest.approx(e, abs=1e-3))
    # a region's outline on that map: its western longitudes past 180 too
    from core.lonlat import east_past_180

    outline = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
        [[179.99, -16.81], [-179.99, -16.81], [-179.99, -16.8], [179.99, -16.81]]]}}
    assert east_past_180(outline)["geometry"]["coordinates"][0][1] == [pytest.approx(180.01), -16.81]


@pytest.mark.parametrize("lat", [0.1, 45.0, 60.0, 70.0])
def test_a_lon_lat_image_keeps_its_columns_on_the_web_map(lat):
    """Square-degree pixels are taller than wide on the web map away from the equator; GDAL's default
    squared them on their mean, and a 256 px wide image at 60° came out 162 px wide (37% of its
    columns dropped, fields' edges blurred)."""
    grid = Grid("EPSG:4326", (0.0003, 0.0, 10.0, 0.0, -0.0003, lat + 256 * 0.0003), 256, 256)
    rgba = np.zeros((256, 256, 4), np.uint8)
    rgba[..., 3], rgba[:, ::2, 0] = 255, 255  # columns in turn red and black
    img, _ = ov.to_web_mercator(rgba, grid)
    # every column kept, drawn as much finer as MAX_SIDE allows (WEB_FINER): 3 times at the equator, none at 60°
    assert 256 <= img.shape[1] and max(img.shape[:2]) <= ov.MAX_SIDE < 2 * max(img.shape[:2])
    row = img[img.shape[0] // 2, :, 0][img[img.shape[0] // 2, :, 3] > 0]
    assert np.count_nonzero(np.diff(row.astype(int))) >= 250  # every column is still there, in turn


def test_large_georeferenced_overlay_is_capped():
    grid = Grid("EPSG:32631", (10.0, 0.0, 500000.0, 0.0, -10.0, 5630000.0), 3000, 2000)
    rgba = np.full((2000, 3000, 4), 200, np.uint8)
    img, bounds = ov.to_web_mercator(rgba, grid, max_side=512)
    assert max(img.shape[:2]) <= 512
    assert bounds[0][0] < bounds[1][0]


@pytest.mark.parametrize("h,w", [(3000, 1), (1000, 1), (1, 3000), (5000, 2)])
def test_a_thin_georeferenced_strip_is_put_on_the_web_map(h, w):
    """GDAL sizes the web mercator copy of a strip narrower than one of its pixels 0 px wide: it
    must be 1 px across the strip's bounds, not a crash."""
    grid = Grid("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), w, h)
    o = ov.make_overlay("strip", np.full((h, w, 4), 200, np.uint8), grid)
    img = np.asarray(Image.open(io.BytesIO(o.png)))
    assert 1 <= min(img.shape[:2]) and max(img.shape[:2]) <= ov.MAX_SIDE and img[..., 3].any()
    (s, west), (n, e) = o.bounds
    (s2, w2), (n2, e2) = ov.lonlat_bounds(grid)
    assert s == pytest.approx(s2, abs=1e-3) and n == pytest.approx(n2, abs=1e-3)
    assert west == pytest.approx(w2, abs=1e-3) and e == pytest.approx(e2, abs=1e-3)


def test_focus_bounds_shows_a_small_region_with_its_surroundings_inside_the_image():
    from core.overlays import focus_bounds

    image = ((-1024.0, 0.0), (0.0, 1024.0))  # a 1024 px image in image coordinates (lat = -row)
    field = ((-540.0, 500.0), (-500.0, 540.0))  # 40 x 40 px
    assert focus_bounds(field, image, (40, 40)) == ((-580.0, 460.0), (-460.0, 580.0))  # 40 px each side
    big = ((-900.0, 100.0), (-100.0, 900.0))  # 800 px: 5 % each side (40 px)
    assert focus_bounds(big, image, (800, 800)) == ((-940.0, 60.0), (-60.0, 940.0))
    corner = ((-40.0, 984.0), (0.0, 1024.0))  # at the image's corner: the view stays inside the image
    assert focus_bounds(corner, image, (40, 40)) == ((-80.0, 944.0), (0.0, 1024.0))
    over = ((-40.0, 1000.0), (10.0, 1100.0))  # a region over the image's edge is still all in view
    (s, w), (n, e) = focus_bounds(over, image, (50, 100))
    assert s < -40.0 and w < 1000.0 and (n, e) == (10.0, 1100.0)
    thin = ((-540.0, 0.0), (-500.0, 1000.0))  # 40 rows x 1000 columns: 40 px of rows each side, 5 % of columns
    assert focus_bounds(thin, image, (40, 1000)) == ((-580.0, 0.0), (-460.0, 1024.0))
    # a region drawn beside the image (refused): the view holds both, not the empty shape alone
    off = ((-1500.0, 1200.0), (-1300.0, 1400.0))
    assert focus_bounds(off, image, (200, 200)) == ((-1500.0, 0.0), (0.0, 1400.0))


def test_a_region_stretched_as_its_whole_image_has_the_colours_of_the_image_around_it():
    """A region's colour layers stretched to the whole image's limits are the whole image's layers cut
    to the region; stretched on its own (the 2-98 % of its pixels) a field looked brighter inside its
    outline than outside."""
    feats, valid, _ = read_image(SAMPLE_IMAGE)
    limits = ov.band_limits(feats, valid)
    assert len(limits) == 4 and all(lo < hi for lo, hi in limits)
    win = np.s_[300:340, 200:260]
    for render in (ov.true_colour, ov.false_colour):
        whole = render(feats, valid, limits)[win]
        assert np.array_equal(render(feats[win], valid[win], limits), whole)
        assert not np.array_equal(render(feats[win], valid[win]), whole)  # its own stretch differs
    assert ov.band_limits(feats, np.zeros_like(valid)) is None


def test_gaps_in_an_image_are_hatched_grey_and_the_hatching_survives_its_downsampling():
    """Pixels without data were transparent: the map's light grey background showed through, and gaps at
    an image's edge looked like a ragged outline of the image."""
    rgba = np.full((3000, 2000, 4), 90, np.uint8)
    valid = np.ones((3000, 2000), bool)
    valid[:600, :900] = False
    out = ov.hatch_gaps(rgba, valid, ov.downsample_step(valid.shape))
    assert (out[valid] == rgba[valid]).all() and (out[~valid][:, 3] == 255).all()
    small = ov.downsample(out)[: 600 // 3, : 900 // 3]  # the overlay the map gets (3x smaller)
    colours = {tuple(c) for c in small.reshape(-1, 4)[:, :3]}
    assert colours == set(ov.HATCH_COLOURS)  # both the light grey and its lines, not one of them
    share = (small[..., 0] == ov.HATCH_COLOURS[1][0]).mean()
    assert 0.1 < share < 0.25  # one line in 6 pixels


def test_grey_imagery_is_the_true_colours_luminance():
    """Under the Quality page's errors: red on green fields is olive on olive to deuteranopes."""
    feats = np.zeros((2, 2, 5), np.float32)
    feats[0, 0, :3] = (0.02, 0.2, 0.02)  # green vegetation
    feats[0, 1, :3] = (0.2, 0.02, 0.02)
    valid = np.array([[True, True], [True, False]])
    limits = ((0.0, 0.2),) * 4
    rgb, grey = ov.true_colour(feats, valid, limits), ov.grey_colour(feats, valid, limits)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert (grey[..., 3] == rgb[..., 3]).all() and grey[0, 0, 0] > grey[0, 1, 0]  # green is the lighter


def test_an_image_preview_is_its_whole_extent_with_its_gaps_counted():
    """The Region page's backdrop (core.overlays.image_preview): the whole sample in its own pixels, its
    pixels without data counted exactly where it is read whole, and about where it is read as an overview."""
    from core.overlays import image_preview
    from core.raster import read_image
    from testdata import SAMPLE_IMAGE

    _, valid, grid = read_image(SAMPLE_IMAGE)
    preview, seen, warnings, limits, missing = image_preview(SAMPLE_IMAGE)
    assert seen.shape == grid.shape and preview.bounds == ov.map_bounds(grid) and max(preview.width, preview.height) <= 1024
    assert missing == int((~valid).sum()) > 0 and len(limits) == 4 and warnings == ()  # (R, G, B, NIR)
    small, _, _, _, about = image_preview(SAMPLE_IMAGE, max_side=128)  # read as an overview of 256 px a side
    assert max(small.width, small.height) <= 128 and small.bounds == preview.bounds
    assert abs(about - missing) < 0.02 * grid.width * grid.height


def test_a_georeferenced_overlay_shows_under_a_point_the_pixel_that_a_click_there_reads():
    """Drawn on a Web Mercator grid as coarse as the image and of its own phase, each web pixel straddled
    the image's pixel edges: up to half a pixel off, and under 43% of the clicks on a UTM image the
    overlay showed another pixel than the one the click read. Drawn finer (WEB_FINER), far fewer."""
    import math

    from core.inspect import pixel_at
    from core.raster import grid_of_file
    from testdata import FTW

    grid = grid_of_file(FTW)
    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    rgba = np.stack([rows % 256, cols % 256, rows // 256 * 16 + cols // 256, np.full_like(rows, 255)], -1).astype(np.uint8)
    img, ((s, w), (n, e)) = ov.to_web_mercator(rgba, grid)
    y = lambda lat: math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))  # noqa: E731 (Mercator's y)
    rng = np.random.default_rng(0)
    shown = read = 0
    for lng, lat in zip(rng.uniform(w, e, 3000), rng.uniform(s, n, 3000)):
        r = int((y(n) - y(lat)) / (y(n) - y(s)) * img.shape[0])
        c = int((lng - w) / (e - w) * img.shape[1])
        pixel = pixel_at(lng, lat, grid)
        if pixel is None or img[r, c, 3] == 0:
            continue
        read += 1
        v = img[r, c].astype(int)
        shown += (v[2] // 16 * 256 + v[0], v[2] % 16 * 256 + v[1]) != tuple(pixel)
    assert read > 2000 and shown / read < 0.2  # (0.43 drawn as coarse as the image's pixels)


def test_a_georeferenced_overlay_uses_its_whole_size_budget():
    """Cut by whole steps to MAX_SIDE before it was reprojected, a 1,225 x 777 px lon/lat image came out
    614 px wide: half its pixels lost where 1,024 were allowed."""
    grid = Grid("EPSG:4326", (0.0003, 0.0, 3.0, 0.0, -0.0003, 51.0), 1225, 777)
    img, _ = ov.to_web_mercator(np.full((777, 1225, 4), 200, np.uint8), grid)
    assert ov.MAX_SIDE - 8 <= max(img.shape[:2]) <= ov.MAX_SIDE


@pytest.mark.parametrize("georeferenced", [True, False])
@pytest.mark.parametrize("shape", [(300, 200), (2100, 1300)])
def test_a_layer_coloured_from_the_pixels_it_keeps_is_the_same_layer(georeferenced, shape):
    """A threshold step coloured the whole probability before the overlay kept 1 pixel in n: colouring
    the kept pixels alone gives the same PNG and bounds."""
    grid = (Grid("EPSG:32631", (10.0, 0.0, 500000.0, 0.0, -10.0, 5630000.0), shape[1], shape[0]) if georeferenced
            else Grid(None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), shape[1], shape[0]))
    rng = np.random.default_rng(3)
    prob = rng.random(shape).astype(np.float32)
    prob[rng.random(shape) < 0.1] = np.nan
    for colour in (ov.probability_colour, lambda p: ov.crop_colour(p, 0.4)):
        whole = ov.make_overlay("x", colour(prob), grid, (5, 7), max_side=512)
        kept = ov.pixelwise_overlay("x", colour, [prob], grid, (5, 7), max_side=512)
        assert kept.png == whole.png and kept.bounds == whole.bounds
    with pytest.raises(InvalidDataError, match="do not all match the grid"):
        ov.pixelwise_overlay("x", ov.disagreement_colour, [prob, prob[:-1]], grid)


def test_a_legends_colours_are_named_to_a_screen_reader():
    """A swatch was an empty box to a screen reader: "Disagreement false crop missed crop"."""
    for name, rgb in ov.CLASS_COLOURS.items():
        assert ov.hex_colour(rgb) in ov.COLOUR_WORDS, name  # (a new class colour gets its word)
    said = ov.class_legend("Disagreement", ["false crop", "missed crop"]).to_html()
    assert "role='img' aria-label='red-orange'" in said and "aria-label='sky blue'" in said
    for cmap, words in (("probability", "dark purple to yellow"), ("ndvi", "brown to dark green")):
        assert f"role='img' aria-label='{words}'" in ov.gradient_legend("t", cmap, "0", "1").to_html()


def test_colour_layers_are_stretched_and_mapped_as_computed_by_hand():
    """The 2-98 % stretch of the valid pixels alone (an outlier in a gap changes nothing), each layer its
    own bands' limits; NDVI -1..1 and probability 0..1 over the whole colormap."""
    rng = np.random.default_rng(3)
    feats = rng.random((20, 30, 5)).astype(np.float32) * 0.5
    valid = np.ones((20, 30), bool)
    valid[:4] = False
    feats[:4] = 1e6  # invalid pixels' values
    limits = ov.band_limits(feats, valid)
    want = [tuple(np.percentile(feats[..., i][valid], [2, 98])) for i in range(4)]
    assert limits == pytest.approx(want)
    false = ov.false_colour(feats, valid, limits)
    for channel, band in enumerate((3, 0, 1)):  # NIR, R, G
        lo, hi = limits[band]
        hand = np.clip((feats[..., band] - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
        assert np.array_equal(false[..., channel][valid], hand[valid])
    assert (false[..., 3] == np.where(valid, 255, 0)).all()
    ndvi = np.zeros((1, 3, 5), np.float32)
    ndvi[0, :, 4] = [-1.0, 0.0, 1.0]
    assert ov.ndvi_colour(ndvi, np.ones((1, 3), bool))[0, :, :3].tolist() == ov.colormap("ndvi")[[0, 127, 255]].tolist()
    prob = ov.probability_colour(np.array([[0.0, 0.25, 1.0]], np.float32))
    assert prob[0, :, :3].tolist() == ov.colormap("probability")[[0, 63, 255]].tolist()
    assert ov.gradient_legend("Crop probability", "probability", "0", "1").low == "0"


def test_a_class_layer_on_the_web_map_keeps_its_class_colours():
    """Reprojection picks pixels (nearest), never blends classes into colours no legend names."""
    _, _, grid = read_image(FLANDERS_S2)
    mask = np.zeros(grid.shape, np.uint8)
    mask[:, : grid.width // 2] = 1
    mask[::7, ::5] = 255
    o = ov.make_overlay("labels", ov.labels_colour(mask, show_nodata=True), grid)
    seen = {tuple(px) for px in np.asarray(Image.open(io.BytesIO(o.png))).reshape(-1, 4)}
    classes = {ov.CLASS_COLOURS[n] + (255,) for n in ("crop", "not crop", "no label")}
    assert seen - {(0, 0, 0, 0)} <= classes and len(seen & classes) == 3


def test_a_window_is_placed_where_it_lies_in_its_image():
    from core.region import PixelWindow

    assert ov.window_map_bounds(IMAGE_GRID, PixelWindow(5, 20, 10, 10)) == ((-15, 20), (-5, 30))
    assert ov.map_bounds(IMAGE_GRID, (5, 20)) == ((-205, 20), (-5, 320))


def test_a_pixel_by_pixel_layer_of_a_large_odd_sized_image_is_drawn():
    """Its kept pixels (ceil of each side over the step) are the overlay's shape, not one row short."""
    grid = Grid(None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 2001, 3001)
    prob = np.full(grid.shape, 0.7, np.float32)
    o = ov.pixelwise_overlay("crop", lambda p: ov.crop_colour(p, 0.5), [prob], grid)
    step = ov.downsample_step(grid.shape)
    assert step > 1 and (o.height, o.width) == (-(-3001 // step), -(-2001 // step))


def test_the_colormaps_pass_through_their_anchor_colours():
    """The probability layer is viridis (its quarter points) and NDVI runs brown to dark green through a
    pale middle: an anchor moved along the scale recoloured every probability between."""
    for cmap, stops in (("probability", {64: (59, 82, 139), 128: (33, 145, 140), 191: (94, 201, 98)}),
                        ("ndvi", {102: (216, 179, 101), 128: (246, 232, 195), 178: (90, 174, 97)})):
        lut = ov.colormap(cmap).astype(int)
        for index, rgb in stops.items():
            assert np.abs(lut[index] - rgb).max() <= 2, (cmap, index, lut[index])


def test_a_gradient_with_an_unnamed_end_is_not_named_to_a_screen_reader():
    """A gradient whose ends have no word gets no label rather than "None to yellow"."""
    html = ov.Legend("t", gradient=("#123456", "#fde725")).to_html()
    assert "aria-label" not in html and "None" not in html


def test_legend_text_is_escaped_in_its_html():
    """The legend is HTML put into the page: its title and labels are text, never markup."""
    html = ov.Legend("Fields & <b>crops</b>", items=(("a<b", "#ffc107"),)).to_html()
    assert "Fields &amp; &lt;b&gt;crops&lt;/b&gt;" in html and "a&lt;b" in html and "<b>crops" not in html


def test_true_colour_takes_red_green_and_blue_each_from_its_own_band():
    rng = np.random.default_rng(5)
    feats = rng.random((6, 7, 5)).astype(np.float32) * 0.4
    valid = np.ones((6, 7), bool)
    limits = ((0.0, 0.4), (0.05, 0.35), (0.1, 0.3), (0.0, 0.4))
    rgba = ov.true_colour(feats, valid, limits)
    for band in range(3):
        lo, hi = limits[band]
        hand = np.clip((feats[..., band] - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
        assert np.array_equal(rgba[..., band], hand), band


def test_an_image_without_valid_pixels_or_with_flat_bands_is_rendered():
    """A region all without data is clear, not an error; a band of one value (no stretch to make) is
    drawn, not a division by zero."""
    feats = np.full((3, 4, 5), 0.1, np.float32)
    none = np.zeros((3, 4), bool)
    for render in (ov.true_colour, ov.false_colour, ov.grey_colour):
        assert not render(feats, none).any()
        flat = render(feats, ~none)
        assert (flat[..., 3] == 255).all()
    assert ov.true_colour(feats, ~none, ov.band_limits(feats, ~none))[..., 3].all()


def test_grey_imagery_is_the_luminance_of_each_colour():
    feats = np.zeros((1, 4, 5), np.float32)
    feats[0, 0, :3] = 1.0  # white
    feats[0, 1, 0] = feats[0, 2, 1] = feats[0, 3, 2] = 1.0  # red, green, blue
    grey = ov.grey_colour(feats, np.ones((1, 4), bool), ((0.0, 1.0),) * 4)[0, :, 0].astype(int)
    assert np.abs(grey - [255, 0.299 * 255, 0.587 * 255, 0.114 * 255]).max() <= 1.5, grey


def test_a_layer_faded_is_a_copy_with_its_alpha_scaled_within_0_and_255():
    rgba = np.full((2, 2, 4), 200, np.uint8)
    rgba[0, 0, 3] = 255
    half = ov.with_opacity(rgba, 0.5)
    assert half[..., 3].tolist() == [[127, 100], [100, 100]] and (half[..., :3] == 200).all()
    assert (rgba[..., 3] == [[255, 200], [200, 200]]).all()  # the layer itself unchanged (a cached one, say)
    assert ov.with_opacity(rgba, 1.5)[0, 0, 3] == 255 and (ov.with_opacity(rgba, -1)[..., 3] == 0).all()


def test_focus_bounds_of_a_region_at_the_images_lower_left_corner_stay_inside_it():
    image = ((-1024.0, 0.0), (0.0, 1024.0))
    corner = ((-1024.0, 0.0), (-984.0, 40.0))  # 40 x 40 px in the lower left corner
    assert ov.focus_bounds(corner, image, (40, 40)) == ((-1024.0, 0.0), (-944.0, 80.0))
