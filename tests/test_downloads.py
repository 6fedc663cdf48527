"""core.downloads: the probability and crop mask GeoTIFFs and the map view PNG made in memory."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rasterio
from PIL import Image

from core import downloads as dl, overlays as ov
from core.errors import InvalidDataError
from core.grid import Grid
from core.mapimage import part_outlines, scale_length
from core.predict import probability_to_uint8

IMAGE_GRID = Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 300, 200)


def test_geotiff_exports(tmp_path):
    grid = Grid("EPSG:32631", (10.0, 0.0, 500000.0, 0.0, -10.0, 5630000.0), 60, 50)
    prob = np.full((50, 60), 0.42, np.float32)
    prob[0, 0] = np.nan
    data = dl.geotiff_bytes(probability_to_uint8(prob), grid, 255, "crop probability (%)")
    path = tmp_path / "p.tif"
    path.write_bytes(data)
    with rasterio.open(path) as src:
        arr = src.read(1)
        assert src.crs.to_epsg() == 32631 and src.nodata == 255
        assert arr[0, 0] == 255 and arr[1, 1] == 42
        assert src.descriptions[0] == "crop probability (%)"
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.compression.name.lower() == "deflate"
    # a region large enough for overviews has them, averaged for the probability (as predict writes it)
    big = np.zeros((1200, 1000), np.uint8)
    big[:, 1::2] = 100  # a column of 0 % then one of 100 %: each overview pixel averages them to 50 %
    grid2 = Grid("EPSG:32631", (10.0, 0.0, 500000.0, 0.0, -10.0, 5630000.0), 1000, 1200)
    (tmp_path / "big.tif").write_bytes(dl.geotiff_bytes(big, grid2, 255, "crop probability (%)", None, "average"))
    with rasterio.open(tmp_path / "big.tif") as src:
        assert src.overviews(1) and (src.read(1, out_shape=(600, 500)) == 50).all()
    nocrs = dl.geotiff_bytes(np.zeros((200, 300), np.uint8), IMAGE_GRID, 255, "mask")
    (tmp_path / "m.tif").write_bytes(nocrs)
    with rasterio.open(tmp_path / "m.tif") as src:
        assert src.crs is None


def test_the_map_png_legend_says_at_least_as_the_map_does(monkeypatch):
    """The download's crop legend says "≥" too (set in :func:`core.mapimage.map_font`)."""
    seen = []
    real = dl.compose_png
    monkeypatch.setattr(dl, "compose_png", lambda layers, legends, *a, **k: seen.extend(legends) or real(layers, legends, *a, **k))
    dl.threshold_downloads(np.full((64, 64, 5), 0.1, np.float32), np.ones((64, 64), bool), np.full((64, 64), 0.7, np.float32),
                           Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 64, 64), 0.7, "t")
    assert [legend.title for legend in seen] == ["Crop (probability ≥ 0.70)"]


def test_the_map_view_png_keeps_the_pages_caveat(monkeypatch):
    """A handout for stakeholders carries the warning the page gives (e.g. the model's pixel size)."""
    from core.grid import Grid

    feats = np.full((64, 64, 5), 0.1, np.float32)
    valid = np.ones((64, 64), bool)
    prob = np.full((64, 64), 0.7, np.float32)
    grid = Grid("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0), 64, 64)
    seen = []
    real = dl.compose_png
    monkeypatch.setattr(dl, "compose_png", lambda *a, **k: seen.append(k["subtitle"]) or real(*a, **k))
    plain = Image.open(io.BytesIO(dl.threshold_downloads(feats, valid, prob, grid, 0.5, "title")["map.png"]))
    told = Image.open(io.BytesIO(dl.threshold_downloads(feats, valid, prob, grid, 0.5, "title",
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
    files = dl.threshold_downloads(feats, valid, prob, grid, 0.4, "title")
    with rasterio.MemoryFile(files["crop_mask.tif"]) as mem, mem.open() as src:
        assert (src.width, src.height) == (w, h)
        np.testing.assert_array_equal(src.read(1), threshold_mask(prob, 0.4))  # every pixel, not a sample
    png = Image.open(io.BytesIO(files["map.png"]))
    # coloured from every 3rd pixel (700 x 500), then enlarged 2x for a slide
    assert png.size[0] == 1000 and 1400 < png.size[1] < 1700
    # the map view as the page shows it: with the probability layer, or with no crop layer
    both = Image.open(io.BytesIO(dl.threshold_downloads(feats, valid, prob, grid, 0.4, "title", "", 0.7, 0.8)["map.png"]))
    plain = Image.open(io.BytesIO(dl.threshold_downloads(feats, valid, prob, grid, 0.4, "title", "", None, None)["map.png"]))
    assert both.size[1] > png.size[1] > plain.size[1]  # a legend row per layer
    top = (slice(20, 300), slice(0, 300))
    assert not np.array_equal(np.asarray(both)[top], np.asarray(png)[top])
    assert not np.array_equal(np.asarray(plain)[top], np.asarray(png)[top])
    with rasterio.MemoryFile(dl.probability_download(prob, grid)) as mem, mem.open() as src:
        assert src.read(1)[0, 0] == 255 and src.read(1)[20, 20] == round(float(prob[20, 20]) * 100)


def test_the_map_png_of_an_image_with_a_crs_has_a_scale_bar():
    """A handout of a georeferenced image had no scale: a bar of a round length, a fifth of the width
    at most, in its lower left corner; none for an image without a CRS (the sample)."""
    from core.grid import Grid

    assert [scale_length(30.0, 200), scale_length(10.0, 57.6), scale_length(0.5, 100)] == [5000.0, 500.0, 50.0]
    rng = np.random.default_rng(1)
    feats = (rng.random((288, 288, 5), dtype=np.float32) * 0.2 + 0.1).astype(np.float32)
    valid = np.ones((288, 288), bool)
    prob = np.full((288, 288), 0.9, np.float32)  # all crop: no black in the map itself
    corner = {}
    for crs in ("EPSG:32633", None):
        grid = Grid(crs, (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 288, 288)
        png = np.asarray(Image.open(io.BytesIO(dl.threshold_downloads(feats, valid, prob, grid, 0.5, "t")["map.png"])))
        assert png.shape[1] == 4 * 288  # (enlarged 4x for a slide)
        corner[crs] = png[4 * 288 - 80 : 4 * 288, :400]  # the image's lower left corner (the text is under it)
    # 2880 m wide, shown 4x: a 500 m bar of 50 px, 200 px in the PNG; black half of it and the outline
    black = (corner["EPSG:32633"] < 30).all(axis=-1)
    assert black.any(axis=0).sum() >= 200 and not (corner[None] < 30).all(axis=-1).any()
    # pixels not square on the ground: the bar is as long as its length along the rows (it took the side of a
    # square of the pixel's area: a "1 km" bar 0.7 km long at 60 degrees, a 10 x 20 m pixel taken as 14 m wide)
    for crs, transform, bar_px in (("EPSG:4326", (0.0003, 0, 10, 0, -0.0003, 60.045), 4 * 500 / 16.74),
                                   ("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -20.0, 5000000.0), 200)):
        grid = Grid(crs, transform, 288, 288)
        png = np.asarray(Image.open(io.BytesIO(dl.threshold_downloads(feats, valid, prob, grid, 0.5, "t")["map.png"])))
        drawn = (png[4 * 288 - 80 : 4 * 288, :400] < 30).all(axis=-1).any(axis=0).sum()
        assert bar_px <= drawn <= bar_px + 2, (crs, drawn)


def test_the_map_png_shows_pixels_without_data_light_grey_as_the_map_does():
    from core.grid import Grid

    feats = np.full((64, 64, 5), 0.1, np.float32)
    valid = np.ones((64, 64), bool)
    prob = np.full((64, 64), 0.2, np.float32)
    grid = Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 64, 64)
    whole = Image.open(io.BytesIO(dl.threshold_downloads(feats, valid, prob, grid, 0.5, "t", "", None, None)["map.png"]))
    valid[:16, :16] = False  # a gap (white in the PNG before, where the map shows its light grey)
    prob[~valid] = np.nan
    gap = Image.open(io.BytesIO(dl.threshold_downloads(feats, valid, prob, grid, 0.5, "t", "", None, None)["map.png"]))
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
        out = dl.threshold_downloads(feats, valid, prob, grid, 0.5, "t", "", None, None, surroundings=surroundings)
        return Image.open(io.BytesIO(out["map.png"]))

    plain, faded = png(None), png((feats, around_valid))
    k = faded.size[0] // 64
    px, before = np.asarray(faded.convert("RGB")).astype(int), np.asarray(plain.convert("RGB")).astype(int)
    outside, inside, gap = px[4 * k, 40 * k], px[50 * k, 40 * k], px[40 * k, 2 * k]  # (inside: the same column)
    hatch = {tuple(c) for c in ov.HATCH_COLOURS}  # (no data: grey hatching, as on the map)
    assert tuple(before[4 * k, 40 * k]) in hatch  # (what it was)
    assert tuple(gap) in hatch and tuple(outside) not in hatch
    assert (np.abs(outside - (255 + (inside - 255) * dl.SURROUNDINGS_OPACITY)) <= 2).all()  # faded over white
    assert faded.size[1] > plain.size[1]  # its legend row ("Faded: outside the region")
    with pytest.raises(InvalidDataError, match="neither on the region's pixels"):
        png((feats[:-1], around_valid[:-1]))


def test_the_map_view_png_outlines_and_names_a_regions_parts():
    """A handout of a farm's fields: each part outlined (white on a dark casing, as on the web map) and
    its name written inside it, also for an L-shaped field whose centre of mass lies outside it."""
    square = np.zeros((60, 80), bool)
    square[10:30, 10:30] = True
    ell = np.zeros((60, 80), bool)
    ell[10:50, 40:50] = True
    ell[40:50, 40:75] = True
    rgba, names = part_outlines([("North", (10, 10), square[10:30, 10:30]), ("Ell", (0, 0), ell),
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
    plain = np.asarray(Image.open(io.BytesIO(dl.threshold_downloads(feats, valid, prob, grid, 0.5, "t")["map.png"])))
    drawn = dl.threshold_downloads(feats, valid, prob, grid, 0.5, "t", parts=[("North", (0, 0), square), ("Ell", (0, 0), ell)])
    png = np.asarray(Image.open(io.BytesIO(drawn["map.png"])))
    assert png.shape == plain.shape
    k = png.shape[1] // 80  # (enlarged by a whole factor for a slide)
    assert (png[10 * k + k // 2, 20 * k] == 255).all() and not (plain[10 * k + k // 2, 20 * k] == 255).all()
    # the name in black over a white halo at its place, inside the outline (the image there is dark)
    [(_, row, col)] = [n for n in names if n[0] == "North"]
    box = png[int((row - 4) * k): int((row + 5) * k), int((col - 4) * k): int((col + 5) * k)]
    assert (box.min(-1) > 235).sum() > 20 and not (plain[int((row - 4) * k): int((row + 5) * k)] > 235).any()


def test_a_masks_threshold_tag_is_the_threshold_in_full():
    """A mask cut at 0.5000001 (51 percent and up) was tagged THRESHOLD=0.5 (50 percent and up)."""
    from core.predict import mask_tags

    assert mask_tags({"MODEL": "m"}, 0.5000001) == {"MODEL": "m", "THRESHOLD": "0.5000001"}
    assert mask_tags({}, 0.62)["THRESHOLD"] == "0.62" and mask_tags({}, np.float32(0.5))["THRESHOLD"] == "0.5"


def test_the_dashboards_geotiffs_say_their_no_data_and_where_they_came_from():
    """The crop mask and probability downloads: 255 declared as no data (a GIS read it as a value), the
    provenance tags and the threshold kept, the pixels those of threshold_mask."""
    from core.predict import threshold_mask

    grid = Grid("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0), 64, 48)
    prob = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
    prob[:4] = np.nan
    valid = ~np.isnan(prob)
    files = dl.threshold_downloads(np.full((48, 64, 5), 0.1, np.float32), valid, prob, grid, 0.5, "t",
                                   tags={"MODEL": "wheat.keras"})
    assert sorted(files) == ["crop_mask.tif", "map.png"]
    with rasterio.MemoryFile(files["crop_mask.tif"]) as mem, mem.open() as src:
        assert src.nodata == 255 and src.crs.to_epsg() == 32633
        assert src.tags()["MODEL"] == "wheat.keras" and src.tags()["THRESHOLD"] == "0.5"
        mask = src.read(1)
    np.testing.assert_array_equal(mask, threshold_mask(prob, 0.5))
    assert (mask[:4] == 255).all() and set(np.unique(mask[4:])) == {0, 1}
    with rasterio.MemoryFile(dl.probability_download(prob, grid, {"MODEL": "wheat.keras"})) as mem, mem.open() as src:
        assert src.nodata == 255 and src.tags()["MODEL"] == "wheat.keras" and (src.read(1)[:4] == 255).all()
    with pytest.raises(InvalidDataError, match="does not match the grid"):
        dl.geotiff_bytes(np.zeros((47, 64), np.uint8), grid, 255, "crop mask")


def test_the_probability_downloads_overviews_are_averaged():
    """As predict writes it: a GIS zoomed out shows each overview pixel's mean probability, not one pixel of four."""
    prob = np.zeros((1200, 1000), np.float32)
    prob[:, 1::2] = 1.0  # 0 % then 100 %, column by column: 50 % in each overview pixel
    grid = Grid("EPSG:32631", (10.0, 0.0, 500000.0, 0.0, -10.0, 5630000.0), 1000, 1200)
    with rasterio.MemoryFile(dl.probability_download(prob, grid)) as mem, mem.open() as src:
        assert src.overviews(1) and (src.read(1, out_shape=(600, 500)) == 50).all()


def test_the_map_pngs_area_is_in_the_unit_asked_and_at_the_stated_pixel_size(monkeypatch):
    seen = []
    real = dl.compose_png
    monkeypatch.setattr(dl, "compose_png", lambda *a, **k: seen.append(k["subtitle"]) or real(*a, **k))
    feats, valid, prob = np.full((64, 64, 5), 0.1, np.float32), np.ones((64, 64), bool), np.full((64, 64), 0.7, np.float32)
    utm = Grid("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0), 64, 64)
    dl.threshold_downloads(feats, valid, prob, utm, 0.5, "t", area_unit="acres")
    acres = 64 * 64 * 0.01 / 0.40468564224  # 10 m pixels: 0.01 ha each; an acre is 0.40468564224 ha
    assert seen[-1].startswith(f"Crop {acres:,.1f} ac,")
    image = Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 64, 64)
    dl.threshold_downloads(feats, valid, prob, image, 0.5, "t", pixel_size_m=30.0)
    assert seen[-1].startswith(f"Crop 4,096 px (about {64 * 64 * 0.09:,.1f} ha at 30 m pixels)")  # 30 m: 0.09 ha


def test_a_region_whose_surroundings_fill_the_image_has_no_missing_data_legend(monkeypatch):
    """Around a drawn outline the image is there (faded): no "no image data" hatching is said."""
    seen = []
    real = dl.compose_png
    monkeypatch.setattr(dl, "compose_png", lambda layers, legends, *a, **k: seen.append(legends) or real(layers, legends, *a, **k))
    feats = np.full((64, 64, 5), 0.1, np.float32)
    valid = np.tril(np.ones((64, 64), bool))
    prob = np.where(valid, 0.2, np.nan).astype(np.float32)
    dl.threshold_downloads(feats, valid, prob, Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 64, 64), 0.5, "t",
                           "", None, None, surroundings=(feats, np.ones((64, 64), bool)))
    assert [legend.title for legend in seen[-1]] == ["Faded"]
