"""core.overlays: colours, legends, downsampling, placement (image and web mercator), exports."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rasterio
from PIL import Image

from core import overlays as ov
from core.errors import InvalidDataError
from core.predict import probability_to_uint8, threshold_mask
from core.grid import Grid
from core.raster import read_image

from testdata import FLANDERS_S2, SAMPLE_IMAGE

IMAGE_GRID = Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 300, 200)


def test_colormaps_and_legends():
    lut = ov.colormap("probability")
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert tuple(lut[0]) == (68, 1, 84) and tuple(lut[-1]) == (253, 231, 37)
    legend = ov.gradient_legend("Crop probability", "probability", "0", "1")
    html = legend.to_html()
    assert "linear-gradient" in html and "http" not in html
    classes = ov.class_legend("Labels", ["crop", "not crop", "no data"])
    assert [i[0] for i in classes.items] == ["crop", "not crop", "no data"]


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
    assert [tuple(px) for px in lab[0]] == [ov.CLASS_COLOURS[n] + (255,) for n in ("crop", "not crop", "no data")]
    assert ov.labels_colour(np.array([[255]], np.uint8))[0, 0, 3] == 0  # no data left out unless shown
    # no data is shown where the image has data (a pixel without a label), not outside the region's polygon
    inside = ov.labels_colour(np.array([[255, 255, 1]], np.uint8), True, imaged=np.array([[True, False, False]]))
    assert inside[0, :, 3].tolist() == [255, 0, 255]
    # labels of a few fields (under half the image's pixels) leave the rest clear, not "no data" over the imagery
    fields = np.full((4, 4), 255, np.uint8)
    fields[:1] = 1
    fields[1, :3] = 0
    rgba, legend = ov.labels_layer(fields)  # 7 of 16 pixels labelled
    assert (rgba[..., 3] == 255).sum() == 7 and legend.items[-1] == ("not labelled", "transparent")
    assert [label for label, _ in legend.items] == ["crop", "not crop", "not labelled"]
    assert "background:transparent" in legend.to_html()
    fields[1, 3] = fields[2, 0] = 0  # 9 of 16: most of the image, so the rest is no data, as gaps in a product
    rgba, legend = ov.labels_layer(fields)
    assert (rgba[..., 3] == 255).all() and [label for label, _ in legend.items] == ["crop", "not crop", "no data"]
    # counted over the image's pixels: outside the image (or the region) nothing is painted
    imaged = np.zeros((4, 4), bool)
    imaged[:2] = True
    fields[1, 3] = 255  # 7 of its 8 pixels labelled
    rgba, legend = ov.labels_layer(np.where(imaged, fields, 255).astype(np.uint8), imaged)
    assert (rgba[..., 3] == 255).sum() == 8 and legend.items[-1][0] == "no data"
    assert ov.labels_layer(np.ones((2, 2), np.uint8))[1].items == ov.class_legend("Labels", ["crop", "not crop"]).items
    # legend swatches at the layer's opacity, as the map draws the layer
    legend = ov.class_legend("Labels", ["crop", "no data"])
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


def test_crop_layer_stands_out_from_the_probability_colours():
    # the thresholded layer sits on top of the probability layer: no colormap entry may look like it
    lut = ov.colormap("probability").astype(int)
    distance = np.sqrt(((lut - np.array(ov.CLASS_COLOURS["predicted crop"])) ** 2).sum(axis=1))
    assert distance.min() > 150


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
    # nearest neighbour with the smallest whole stride that fits: every 2nd pixel leaves 1500 rows, every 3rd 1000
    np.testing.assert_array_equal(small, big[::3, ::3])
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
    assert img.mode == "RGBA" and 50 < img.size[0] < 80


def test_an_image_across_the_180th_meridian_is_put_on_the_web_map_whole():
    """An image of eastern Fiji (UTM 60S) across 180 degrees came out a 1 px transparent strip with
    bounds round the whole globe: it is drawn whole, its east in longitudes past 180 (web maps take them)."""
    from rasterio.warp import transform

    x180, y = transform("EPSG:4326", "EPSG:32760", [180.0], [-16.8])
    for x0, across in ((round(x180[0]) - 3600, False), (round(x180[0]) - 1500, True)):
        grid = Grid("EPSG:32760", (30.0, 0.0, x0, 0.0, -30.0, round(y[0])), 100, 100)
        img, ((s, w), (n, e)) = ov.to_web_mercator(np.full((100, 100, 4), 255, np.uint8), grid)
        assert (img[..., 3] > 0).mean() > 0.95 and 95 <= img.shape[0] <= 105 and 95 <= img.shape[1] <= 105
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
    assert 256 <= img.shape[1] <= 258 and img.shape[0] <= ov.MAX_SIDE
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


def test_compose_png_and_geotiff_exports(tmp_path):
    base = np.zeros((50, 60, 4), np.uint8)
    base[..., 3] = 255
    top = ov.crop_colour(np.full((50, 60), 0.9, np.float32), 0.5)
    png = ov.compose_png([base, ov.with_opacity(top, 0.5)], [ov.class_legend("Crop", ["crop"])], "title")
    img = Image.open(io.BytesIO(png))
    # a small raster is enlarged by the smallest whole factor that reaches 1000 px (a slide's width): 17x (16x gave 960)
    assert img.size[0] == 1020 and img.size[1] > 850
    assert np.asarray(img)[:850].reshape(50, 17, 60, 17, 3).std(axis=(1, 3)).max() == 0
    mid = np.zeros((370, 390, 4), np.uint8)
    mid[..., 3] = 255
    assert Image.open(io.BytesIO(ov.compose_png([mid], [], "title"))).size[0] == 1170  # 3x (it stayed 390)
    big = np.zeros((370, 1100, 4), np.uint8)
    big[..., 3] = 255
    assert Image.open(io.BytesIO(ov.compose_png([big], [], "title"))).size[0] == ov.MAX_SIDE  # reduced
    # a portrait region at least 1,000 px wide too (it was enlarged on its height: 986 px wide for 493 x 621)
    tall = np.zeros((621, 493, 4), np.uint8)
    tall[..., 3] = 255
    assert Image.open(io.BytesIO(ov.compose_png([tall], [], "title"))).size[0] == 3 * 493
    very_tall = np.zeros((1900, 300, 4), np.uint8)  # as tall as two slides' widths at most
    very_tall[..., 3] = 255
    assert Image.open(io.BytesIO(ov.compose_png([very_tall], [], "title"))).size[1] < 2 * ov.MAX_SIDE + 400
    with pytest.raises(InvalidDataError):
        ov.compose_png([])
    # a long data credit wraps under the legend: more lines, never wider than the canvas
    credit = "Data: " + "; ".join(["Landsat 8 OLI (USGS)", "USDA NASS Cropland Data Layer 2015 (public domain)"] * 3)
    with_credit = Image.open(io.BytesIO(ov.compose_png([base], [], "title", credit=credit, min_side=1)))
    plain = Image.open(io.BytesIO(ov.compose_png([base], [], "title", min_side=1)))
    assert with_credit.size[0] == plain.size[0] == 360 and with_credit.size[1] >= plain.size[1] + 3 * 14
    # so does a long title (it was cut at the image's edge)
    long_title = Image.open(io.BytesIO(ov.compose_png([base], [], "title " * 40, min_side=1)))
    assert long_title.size[0] == 360 and long_title.size[1] >= plain.size[1] + 2 * 18
    assert ov._wrap("a bb ccc", len, 4) == ["a bb", "ccc"]
    assert ov._wrap("crop at p >= 0.50", len, 12) == ["crop at", "p >= 0.50"]  # a threshold is not broken apart
    assert ov._wrap("crop at p ≥ 0.50", len, 12) == ["crop at", "p ≥ 0.50"]
    # words joined by no-break spaces stay on one line (the PNG title's "— crop at p ≥ 0.70" was cut after "at")
    assert ov._wrap("Scene —\u00a0crop\u00a0at\u00a0p ≥ 0.50", len, 20) == ["Scene", "— crop at p ≥ 0.50"]
    # on a large map the text grows with it, to stay readable when projected
    big = np.zeros((1000, 1000, 4), np.uint8)
    big[..., 3] = 255
    small_strip = Image.open(io.BytesIO(ov.compose_png([base], [ov.class_legend("Crop", ["crop"])], "title",
                                                      min_side=1))).size[1] - 50
    big_strip = Image.open(io.BytesIO(ov.compose_png([big], [ov.class_legend("Crop", ["crop"])], "title"))).size[1] - 1000
    assert big_strip >= 1.3 * small_strip
    grid = Grid("EPSG:32631", (10.0, 0.0, 500000.0, 0.0, -10.0, 5630000.0), 60, 50)
    prob = np.full((50, 60), 0.42, np.float32)
    prob[0, 0] = np.nan
    data = ov.geotiff_bytes(probability_to_uint8(prob), grid, 255, "crop probability (%)")
    path = tmp_path / "p.tif"
    path.write_bytes(data)
    with rasterio.open(path) as src:
        arr = src.read(1)
        assert src.crs.to_epsg() == 32631 and src.nodata == 255
        assert arr[0, 0] == 255 and arr[1, 1] == 42
        assert src.descriptions[0] == "crop probability (%)"
    nocrs = ov.geotiff_bytes(np.zeros((200, 300), np.uint8), IMAGE_GRID, 255, "mask")
    (tmp_path / "m.tif").write_bytes(nocrs)
    with rasterio.open(tmp_path / "m.tif") as src:
        assert src.crs is None


def test_the_map_view_png_keeps_the_pages_caveat(monkeypatch):
    """A handout for stakeholders carries the warning the page gives (e.g. the model's pixel size)."""
    from core.grid import Grid

    feats = np.full((64, 64, 5), 0.1, np.float32)
    valid = np.ones((64, 64), bool)
    prob = np.full((64, 64), 0.7, np.float32)
    grid = Grid("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0), 64, 64)
    seen = []
    real = ov.compose_png
    monkeypatch.setattr(ov, "compose_png", lambda *a, **k: seen.append(k["subtitle"]) or real(*a, **k))
    plain = Image.open(io.BytesIO(ov.threshold_downloads(feats, valid, prob, grid, 0.5, "title")["map.png"]))
    told = Image.open(io.BytesIO(ov.threshold_downloads(feats, valid, prob, grid, 0.5, "title",
                                                        caveat="the model was trained on 30 m pixels")["map.png"]))
    assert seen[0].startswith("Crop 41.0 ha") and "Caution" not in seen[0]
    assert seen[0].endswith(".") and seen[1] == seen[0] + " Caution: the model was trained on 30 m pixels."  # one full stop
    strip = slice(1024, None)  # (the 64 px image enlarged 16x, then the text)
    dark = [(np.asarray(png.convert("L"))[strip] < 128).sum() for png in (told, plain)]
    assert dark[0] > dark[1]  # its text drawn


def test_threshold_downloads_keep_the_mask_whole_and_the_png_small():
    import rasterio

    from core.predict import threshold_mask
    from core.grid import Grid

    rng = np.random.default_rng(0)
    h, w = 2100, 1500  # larger than the PNG: coloured from every 3rd pixel
    feats = rng.random((h, w, 5), dtype=np.float32) * 0.3
    valid = np.ones((h, w), bool)
    valid[:10] = False
    prob = np.where(valid, rng.random((h, w), dtype=np.float32), np.nan).astype(np.float32)
    grid = Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), w, h)
    files = ov.threshold_downloads(feats, valid, prob, grid, 0.4, "title")
    with rasterio.MemoryFile(files["crop_mask.tif"]) as mem, mem.open() as src:
        assert (src.width, src.height) == (w, h)
        np.testing.assert_array_equal(src.read(1), threshold_mask(prob, 0.4))  # every pixel, not a sample
    png = Image.open(io.BytesIO(files["map.png"]))
    # coloured from every 3rd pixel (700 x 500), then enlarged 2x for a slide
    assert png.size[0] == 1000 and 1400 < png.size[1] < 1700
    # the map view as the page shows it: with the probability layer, or with no crop layer
    both = Image.open(io.BytesIO(ov.threshold_downloads(feats, valid, prob, grid, 0.4, "title", "", 0.7, 0.8)["map.png"]))
    plain = Image.open(io.BytesIO(ov.threshold_downloads(feats, valid, prob, grid, 0.4, "title", "", None, None)["map.png"]))
    assert both.size[1] > png.size[1] > plain.size[1]  # a legend row per layer
    top = (slice(20, 300), slice(0, 300))
    assert not np.array_equal(np.asarray(both)[top], np.asarray(png)[top])
    assert not np.array_equal(np.asarray(plain)[top], np.asarray(png)[top])
    with rasterio.MemoryFile(ov.probability_download(prob, grid)) as mem, mem.open() as src:
        assert src.read(1)[0, 0] == 255 and src.read(1)[20, 20] == round(float(prob[20, 20]) * 100)


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


def test_the_map_png_of_an_image_with_a_crs_has_a_scale_bar():
    """A handout of a georeferenced image had no scale: a bar of a round length, a fifth of the width
    at most, in its lower left corner; none for an image without a CRS (the sample)."""
    from core.grid import Grid

    assert [ov.scale_length(30.0, 200), ov.scale_length(10.0, 57.6), ov.scale_length(0.5, 100)] == [5000.0, 500.0, 50.0]
    rng = np.random.default_rng(1)
    feats = (rng.random((288, 288, 5), dtype=np.float32) * 0.2 + 0.1).astype(np.float32)
    valid = np.ones((288, 288), bool)
    prob = np.full((288, 288), 0.9, np.float32)  # all crop: no black in the map itself
    corner = {}
    for crs in ("EPSG:32633", None):
        grid = Grid(crs, (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 288, 288)
        png = np.asarray(Image.open(io.BytesIO(ov.threshold_downloads(feats, valid, prob, grid, 0.5, "t")["map.png"])))
        assert png.shape[1] == 4 * 288  # (enlarged 4x for a slide)
        corner[crs] = png[4 * 288 - 80 : 4 * 288, :400]  # the image's lower left corner (the text is under it)
    # 2880 m wide, shown 4x: a 500 m bar of 50 px, 200 px in the PNG; black half of it and the outline
    black = (corner["EPSG:32633"] < 30).all(axis=-1)
    assert black.any(axis=0).sum() >= 200 and not (corner[None] < 30).all(axis=-1).any()


def test_the_map_png_draws_legend_swatches_at_their_layers_opacity():
    """The map view PNG's layers are faded (0.8 crop, 0.7 probability by default): full-strength
    swatches under it did not look like the map's colours."""
    base = np.zeros((64, 64, 4), np.uint8)
    base[..., 3] = 255
    legends = [ov.class_legend("Crop", ["predicted crop"]), ov.gradient_legend("P", "probability", "0", "1")]
    full = np.asarray(Image.open(io.BytesIO(ov.compose_png([base], legends, "t", min_side=1))).convert("RGB")).astype(int)
    faded = np.asarray(Image.open(io.BytesIO(ov.compose_png([base], legends, "t", min_side=1,
                                                             legend_opacities=[0.5, 0.5]))).convert("RGB")).astype(int)
    assert full.shape == faded.shape
    diff = (full != faded).any(axis=-1)
    assert diff.any() and not diff[:64].any()  # only the legend's swatches change, not the map
    assert (faded[diff] >= full[diff]).all()  # lighter: over white
    crop = np.array([int(ov.hex_colour(ov.CLASS_COLOURS["predicted crop"])[i : i + 2], 16) for i in (1, 3, 5)])
    swatch = (np.abs(full - crop).sum(axis=-1) == 0)
    assert swatch.sum() > 20 and np.abs(faded[swatch] - (255 + (crop - 255) * 0.5)).max() <= 1


def test_the_map_png_shows_pixels_without_data_light_grey_as_the_map_does():
    from core.grid import Grid

    feats = np.full((64, 64, 5), 0.1, np.float32)
    valid = np.ones((64, 64), bool)
    prob = np.full((64, 64), 0.2, np.float32)
    grid = Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 64, 64)
    whole = Image.open(io.BytesIO(ov.threshold_downloads(feats, valid, prob, grid, 0.5, "t", "", None, None)["map.png"]))
    valid[:16, :16] = False  # a gap (white in the PNG before, where the map shows its light grey)
    prob[~valid] = np.nan
    gap = Image.open(io.BytesIO(ov.threshold_downloads(feats, valid, prob, grid, 0.5, "t", "", None, None)["map.png"]))
    px = np.asarray(gap.convert("RGB"))
    k = gap.size[0] // 64  # small images are enlarged by a whole factor
    hatch = {tuple(c) for c in px[: 16 * k, : 16 * k].reshape(-1, 3)}  # grey hatching, as on the map
    assert hatch == set(ov.HATCH_COLOURS) and tuple(px[40 * k, 40 * k]) not in hatch
    assert gap.size[1] > whole.size[1]  # its legend row ("Grey hatching: no image data")


def test_the_map_png_shows_the_image_outside_a_regions_outline_faded_not_as_missing_data():
    """Outside a drawn polygon the PNG was the light grey that its legend calls "no image data": a
    stakeholder read the corners as missing data. The image there is faded, as on the web map."""
    from core.grid import Grid

    feats = np.full((64, 64, 5), 0.1, np.float32)
    feats[..., :3] += np.linspace(0, 0.2, 64)[None, :, None]  # brighter to the east: a column's pixels alike
    around_valid = np.ones((64, 64), bool)
    around_valid[:, :8] = False  # no data in the image itself: light grey, as before
    valid = np.tril(np.ones((64, 64), bool)) & around_valid  # the region: a triangle
    prob = np.where(valid, 0.2, np.nan).astype(np.float32)
    grid = Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 64, 64)

    def png(surroundings):
        out = ov.threshold_downloads(feats, valid, prob, grid, 0.5, "t", "", None, None, surroundings=surroundings)
        return Image.open(io.BytesIO(out["map.png"]))

    plain, faded = png(None), png((feats, around_valid))
    k = faded.size[0] // 64
    px, before = np.asarray(faded.convert("RGB")).astype(int), np.asarray(plain.convert("RGB")).astype(int)
    outside, inside, gap = px[4 * k, 40 * k], px[50 * k, 40 * k], px[40 * k, 2 * k]  # (inside: the same column)
    hatch = {tuple(c) for c in ov.HATCH_COLOURS}  # (no data: grey hatching, as on the map)
    assert tuple(before[4 * k, 40 * k]) in hatch  # (what it was)
    assert tuple(gap) in hatch and tuple(outside) not in hatch
    assert (np.abs(outside - (255 + (inside - 255) * ov.SURROUNDINGS_OPACITY)) <= 2).all()  # faded over white
    assert faded.size[1] > plain.size[1]  # its legend row ("Faded: outside the region")


def test_the_map_png_text_is_set_in_a_truetype_font_with_its_characters(monkeypatch):
    """The handout's text is DejaVu Sans, not PIL's default font (Aileron), whose 3 px word space ran
    "901,109 valid" together (and "433,431" read as "433, 431") and which has no "—" or "≥"."""
    from PIL import ImageFont

    assert ov.font_path() is not None  # installed with the requirements (matplotlib ships it)
    font = ov.map_font(19)
    assert isinstance(font, ImageFont.FreeTypeFont) and font.getname()[0] == "DejaVu Sans"
    assert ov.has_glyphs(font, "—≥≤0123456789,") and not ov.has_glyphs(font, "\u4e00")  # (no CJK in DejaVu Sans)
    # a word space is a clear gap (a third of an em), so "901,109 valid" and "433,431" keep their shapes
    for spaced, tight in (("901,109 valid", "901,109valid"), ("433, 431", "433,431")):
        assert font.getlength(spaced) - font.getlength(tight) >= 0.3 * font.size
    assert ov.typeset("Scene — crop at p ≥ 0.70, x ≤ 1", font) == "Scene — crop at p ≥ 0.70, x ≤ 1"

    base = np.zeros((64, 64, 4), np.uint8)
    base[..., 3] = 255

    def png(title, legend="Crop (p ≥ 0.70)"):
        return ov.compose_png([base], [ov.class_legend(legend, ["predicted crop"])], title, min_side=1)

    drawn = png("Scene — crop at p ≥ 0.70")
    assert png("Scene \uffff crop at p \uffff 0.70") != drawn  # the characters are not the missing-glyph box
    assert png("Scene crop at p 0.70") != drawn
    # the download's legend says "≥" too
    seen = []
    real = ov.compose_png
    monkeypatch.setattr(ov, "compose_png", lambda layers, legends, *a, **k: seen.extend(legends) or real(layers, legends, *a, **k))
    ov.threshold_downloads(np.full((64, 64, 5), 0.1, np.float32), np.ones((64, 64), bool), np.full((64, 64), 0.7, np.float32),
                           Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 64, 64), 0.7, "t")
    assert [legend.title for legend in seen] == ["Crop (p ≥ 0.70)"]


def test_the_map_png_falls_back_to_pils_font_without_boxes(monkeypatch):
    """Without the TrueType file (or with an unreadable one) the PNG is still made, in PIL's own
    font, and a character that font lacks is written in ASCII rather than drawn as a box."""
    monkeypatch.setattr(ov, "font_path", lambda: "/nonexistent/no-such-font.ttf")
    fallback = ov.map_font(19)
    assert fallback.getname()[0] != "DejaVu Sans"
    text = ov.typeset("Scene — crop at p ≥ 0.70", fallback)
    assert text == "Scene -- crop at p >= 0.70" and ov.has_glyphs(fallback, "".join(text.split()))
    base = np.zeros((64, 64, 4), np.uint8)
    base[..., 3] = 255
    made = Image.open(io.BytesIO(ov.compose_png([base], [ov.class_legend("Crop (p ≥ 0.70)", ["predicted crop"])],
                                                "Scene — crop at p ≥ 0.70", min_side=1)))
    assert made.size[0] == 360
    monkeypatch.setattr(ov, "font_path", lambda: None)
    assert ov.map_font(11) is not None


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


def test_the_map_view_png_outlines_and_names_a_regions_parts():
    """A handout of a farm's fields: each part outlined (white on a dark casing, as on the web map) and
    its name written inside it, also for an L-shaped field whose centre of mass lies outside it."""
    square = np.zeros((60, 80), bool)
    square[10:30, 10:30] = True
    ell = np.zeros((60, 80), bool)
    ell[10:50, 40:50] = True
    ell[40:50, 40:75] = True
    rgba, names = ov.part_outlines([("North", (10, 10), square[10:30, 10:30]), ("Ell", (0, 0), ell),
                                    ("Outside", (0, 0), np.zeros((60, 80), bool))], (60, 80))
    assert [n for n, _, _ in names] == ["North", "Ell"]  # a part with no pixel is left out
    white = (rgba[..., :3] == 255).all(-1) & (rgba[..., 3] == 255)
    edge = square & ~np.pad(square, 1)[2:, 1:-1] | square & ~np.pad(square, 1)[:-2, 1:-1] \
        | square & ~np.pad(square, 1)[1:-1, 2:] | square & ~np.pad(square, 1)[1:-1, :-2]
    assert (white[square] == edge[square]).all() and white[10, 10:30].all() and not white[15:25, 15:25].any()
    assert rgba[9, 15, 3] == 200 and rgba[0, 0, 3] == 0  # the casing just outside; nothing elsewhere
    for name, row, col in names:
        assert {"North": square, "Ell": ell}[name][int(row), int(col)]  # written inside the part
    # in the PNG: the outline's white, and the names (black text) over the image
    feats = np.full((60, 80, 5), 0.1, np.float32)
    valid = np.ones((60, 80), bool)
    prob = np.zeros((60, 80), np.float32)
    grid = Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 80, 60)
    plain = np.asarray(Image.open(io.BytesIO(ov.threshold_downloads(feats, valid, prob, grid, 0.5, "t")["map.png"])))
    drawn = ov.threshold_downloads(feats, valid, prob, grid, 0.5, "t", parts=[("North", (0, 0), square), ("Ell", (0, 0), ell)])
    png = np.asarray(Image.open(io.BytesIO(drawn["map.png"])))
    assert png.shape == plain.shape
    k = png.shape[1] // 80  # (enlarged by a whole factor for a slide)
    assert (png[10 * k + k // 2, 20 * k] == 255).all() and not (plain[10 * k + k // 2, 20 * k] == 255).all()
    # the name in black over a white halo at its place, inside the outline (the image there is dark)
    [(_, row, col)] = [n for n in names if n[0] == "North"]
    box = png[int((row - 4) * k): int((row + 5) * k), int((col - 4) * k): int((col + 5) * k)]
    assert (box.min(-1) > 235).sum() > 20 and not (plain[int((row - 4) * k): int((row + 5) * k)] > 235).any()


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
