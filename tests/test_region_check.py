"""core.region_check: whether a region can be used on a grid."""

from __future__ import annotations

import pytest

from core.geometry import IMAGE_CRS
from core.grid import Grid
from core.region import PixelWindow, Region
from core.region_check import check_region

IMAGE_GRID = Grid(None, (30.0, 0.0, 61440.0, 0.0, -30.0, 107520.0), 1024, 1024)
UTM_GRID = Grid("EPSG:32631", (10.0, 0.0, 501360.0, 0.0, -10.0, 5629680.0), 640, 640)


def test_a_region_a_few_millimetres_past_the_image_edge_is_not_clipped():
    """A GeoJSON of this image's own crop areas, its lon/lat rounded to 7 decimals, overshoots the
    image edge by millimetres: that is not "part of the region lies outside the image"; a region
    a third of a pixel past the edge is."""
    from rasterio.warp import transform

    def region_to(col_past_edge: float) -> Region:
        cols = [340.0, UTM_GRID.width + col_past_edge]
        xs = [501360.0 + 10.0 * c for c in cols]
        ys = [5629680.0 - 10.0 * 100, 5629680.0 - 10.0 * 400]
        lon, lat = transform("EPSG:32631", "EPSG:4326", [xs[0], xs[1], xs[1], xs[0]], [ys[0], ys[0], ys[1], ys[1]])
        ring = tuple((round(x, 7), round(y, 7)) for x, y in zip(lon, lat))
        return Region("EPSG:4326", ((ring + ring[:1],),))

    near = check_region(region_to(0.0005), UTM_GRID)  # 5 mm on 10 m pixels
    assert near.ok and not near.clipped and "outside" not in near.message
    assert near.window.col_off + near.window.width == UTM_GRID.width
    past = check_region(region_to(0.33), UTM_GRID)
    assert past.ok and past.clipped and "outside the image" in past.message


def test_a_multipolygon_part_far_from_the_image_is_said_to_be_left_out():
    """A part 5 degrees away was dropped before the pixel bounds were taken: "region OK", no word."""
    from rasterio.warp import transform

    xs = [501360.0 + 10.0 * c for c in (100, 500)]
    ys = [5629680.0 - 10.0 * r for r in (100, 400)]
    lon, lat = transform("EPSG:32631", "EPSG:4326", [xs[0], xs[1], xs[1], xs[0]], [ys[0], ys[0], ys[1], ys[1]])
    over = tuple(zip(lon, lat))
    far = tuple((x + 5.0, y) for x, y in over)
    alone = check_region(Region("EPSG:4326", ((over + over[:1],),)), UTM_GRID)
    both = check_region(Region("EPSG:4326", ((over + over[:1],), (far + far[:1],))), UTM_GRID)
    assert alone.ok and not alone.clipped
    assert both.ok and both.clipped and "part of the region lies outside the image and is left out" in both.message
    assert both.window == alone.window and both.pixels == alone.pixels and both.area_ha == alone.area_ha


def test_a_part_beyond_the_image_does_not_widen_the_window():
    """A file's polygon past the image's edge (not far enough to be dropped) widened the window to the
    image's edge: "fits a box of 924 x 924 px" for 100 x 100 px used, a scene 85 times larger, and a
    map that looked at the empty space between. The window is that of the part on the image."""
    from rasterio.warp import transform

    inside = [[100, 100], [200, 100], [200, 200], [100, 200], [100, 100]]
    beyond = [[2000, 2000], [2100, 2000], [2100, 2100], [2000, 2100], [2000, 2000]]
    res = check_region(Region.from_geojson({"type": "MultiPolygon", "coordinates": [[inside], [beyond]]},
                                           crs=IMAGE_CRS), IMAGE_GRID)
    assert res.ok and res.clipped and res.window == PixelWindow(100, 100, 100, 100) and res.pixels == 100 * 100
    assert "fits a box of 100 x 100 px; part of the region lies outside the image" in res.message
    # a lon/lat part an image's width east of a UTM image (within the box around it that is kept)
    xs = [501360.0 + 10.0 * c for c in (100, 300)]
    ys = [5629680.0 - 10.0 * r for r in (100, 400)]
    lon, lat = transform("EPSG:32631", "EPSG:4326", [xs[0], xs[1], xs[1], xs[0]], [ys[0], ys[0], ys[1], ys[1]])
    over = tuple(zip(lon, lat))
    east = tuple((x + 0.12, y) for x, y in over)  # (about 8.5 km: 1.3 image widths)
    alone = check_region(Region("EPSG:4326", ((over + over[:1],),)), UTM_GRID)
    both = check_region(Region("EPSG:4326", ((over + over[:1],), (east + east[:1],))), UTM_GRID)
    assert alone.ok and both.ok and both.clipped and not Region("EPSG:4326", ((east + east[:1],),)).reaches_far_beyond(UTM_GRID)
    assert both.window == alone.window and both.pixels == alone.pixels


def test_a_region_thinner_than_a_pixel_is_said_to_be_so():
    """A sliver inside the image was told it covers "only the space around" the image's pixels."""
    sliver = Region.from_bbox(10.2, 10.2, 10.4, 300, crs=IMAGE_CRS)
    res = check_region(sliver, IMAGE_GRID)
    assert not res.ok and "thinner than a pixel" in res.message and "space around" not in res.message


def test_check_region_rules():
    ok = check_region(Region.from_bbox(0, 0, 300, 300, crs=IMAGE_CRS), IMAGE_GRID)
    assert ok.ok and ok.area_ha is None and ok.pixels == 90000
    # the pixels used are those inside the shape, not its bounding box's
    tri = check_region(Region.from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [300, 0], [0, 300], [0, 0]]]},
                                           crs=IMAGE_CRS), IMAGE_GRID)
    assert tri.ok and tri.window.pixels == 90000 and abs(tri.pixels - 45000) <= 300
    small = check_region(Region.from_bbox(0, 0, 7, 300, crs=IMAGE_CRS), IMAGE_GRID)
    assert not small.ok and "covers 7 x 300 px of the image; it must be at least 8 x 8 px" in small.message
    assert check_region(Region.from_bbox(0, 0, 8, 8, crs=IMAGE_CRS), IMAGE_GRID).ok  # one field, seen in context
    # the size is that of the pixels used (centres inside), not of those the outline only touches: a box from
    # 0.6 to 7.4 px touches 8 x 8 pixels but uses 6 x 6 of them
    touched = check_region(Region.from_bbox(0.6, 0.6, 7.4, 7.4, crs=IMAGE_CRS), IMAGE_GRID)
    assert not touched.ok and "covers 6 x 6 px of the image" in touched.message
    assert check_region(Region.from_bbox(0.6, 0.6, 8.6, 8.6, crs=IMAGE_CRS), IMAGE_GRID).ok  # 8 x 8 used of 9 x 9
    assert not check_region(Region.from_bbox(0, 0, 100, 300, crs=IMAGE_CRS), IMAGE_GRID, min_side=128).ok
    big = check_region(Region.from_bbox(0, 0, 1024, 1024, crs=IMAGE_CRS), IMAGE_GRID, max_pixels=500_000)
    assert not big.ok and "at most 500,000" in big.message
    wrong = check_region(Region.from_bbox(0, 0, 1, 1), IMAGE_GRID)
    assert not wrong.ok and "not georeferenced" in wrong.message


def test_check_region_small_image_and_hectares():
    grid = Grid("EPSG:32631", (10.0, 0.0, 501360.0, 0.0, -10.0, 5629680.0), 64, 64)
    from core.overlays import lonlat_bounds

    (s, w), (n, e) = lonlat_bounds(grid)
    res = check_region(Region.from_bbox(w, s, e, n), grid)
    assert res.ok, res.message  # smaller than a patch, but it is the whole image
    assert res.area_ha == pytest.approx(40.96)
    # a triangle over the same window: only the pixels inside its outline count (the rest is no data)
    tri = Region.from_geojson({"type": "Polygon", "coordinates": [[[w, n], [e, n], [w, s], [w, n]]]})
    half = check_region(tri, grid)
    assert half.ok and half.window == res.window
    inside = int(tri.mask(grid, half.window).sum())
    assert half.area_ha == pytest.approx(inside * 0.01) and 0.4 < half.area_ha / 40.96 < 0.6
    # the box it fits (its area, the pixels used, is another figure: the page shows it beside the message)
    assert half.message.startswith("region OK: it fits a box of 64 x 64 px") and " ha" not in half.message


def test_check_region_hectares_on_a_geographic_grid():
    # 300 x 300 pixels of 0.0001 deg at 45 N: rows differ in area, and the region's area is the sum
    # over its rows of (pixels in the row) x (that row's pixel area), as Region.area_ha() has it
    grid = Grid("EPSG:4326", (0.0001, 0.0, 10.0, 0.0, -0.0001, 45.0), 300, 300)
    region = Region.from_bbox(10.0, 44.97, 10.03, 45.0)
    res = check_region(region, grid)
    assert res.ok, res.message
    rows = grid.pixel_area_ha()[:, 0]
    assert res.area_ha == pytest.approx(float(rows.sum()) * 300, rel=1e-6)
    assert res.area_ha == pytest.approx(region.area_ha(), rel=0.01)
    # a region of the southern rows: their hectares, not those of the grid's first rows
    south = check_region(Region.from_bbox(10.0, 44.97, 10.03, 44.98), grid)
    assert south.ok and south.area_ha == pytest.approx(float(rows[200:].sum()) * 300, rel=1e-6)
    assert south.area_ha > float(rows[:100].sum()) * 300


def test_the_size_limit_holds_to_the_pixel_and_a_region_off_the_top_left_is_said_clipped():
    box = Region.from_bbox(0, 0, 100, 100, crs=IMAGE_CRS)
    assert check_region(box, IMAGE_GRID, max_pixels=10_000).ok
    assert "at most 9,999 px" in check_region(box, IMAGE_GRID, max_pixels=9_999).message
    for ring in ((-5, 10, 20, 30), (10, -5, 30, 20)):  # off the left edge, off the top
        edge = check_region(Region.from_bbox(*ring, crs=IMAGE_CRS), IMAGE_GRID)
        assert edge.ok and edge.clipped and "part of the region lies outside the image" in edge.message


def test_check_region_on_an_image_smaller_than_a_patch_says_so():
    grid = Grid(None, (1.0, 0.0, 0.0, 0.0, -1.0, 0.0), 24, 64)
    res = check_region(Region.from_bbox(0, 0, 24, 20, crs=IMAGE_CRS), grid, min_side=32)
    assert not res.ok and "at least 24 x 32 px (the image is smaller than 32 px a side, so all of it)" in res.message


def test_a_region_around_the_image_but_over_none_of_its_pixels_is_refused():
    """Parts either side of the image, or the image inside a hole: the bounding box overlaps the
    image, no pixel is inside the region (the check said OK, and the fetch failed later)."""
    sides = {"type": "MultiPolygon", "coordinates": [
        [[[-400, 0], [-10, 0], [-10, 1024], [-400, 1024], [-400, 0]]],
        [[[1100, 0], [1500, 0], [1500, 1024], [1100, 1024], [1100, 0]]]]}
    ring = {"type": "Polygon", "coordinates": [
        [[-100, -100], [1124, -100], [1124, 1124], [-100, 1124], [-100, -100]],
        [[-50, -50], [1074, -50], [1074, 1074], [-50, 1074], [-50, -50]]]}
    for geometry in (sides, ring):
        res = check_region(Region.from_geojson(geometry, crs=IMAGE_CRS), IMAGE_GRID)
        assert not res.ok and "none of the image's pixels" in res.message, res.message
    # the same ring with a hole that leaves a corner of the image inside the region is fine
    ring["coordinates"][1] = [[100, 100], [1074, 100], [1074, 1074], [100, 1074], [100, 100]]
    res = check_region(Region.from_geojson(ring, crs=IMAGE_CRS), IMAGE_GRID)
    assert res.ok and res.window == PixelWindow(0, 0, 1024, 1024), res.message


def test_a_checks_advice_for_a_drawing_becomes_advice_for_a_typed_box():
    from core.region_check import box_advice

    small = check_region(Region.from_bbox(0, 0, 3, 3, crs="image"), IMAGE_GRID)
    assert not small.ok and small.message.endswith("draw a larger region")
    assert box_advice(small.message).endswith(": enter a larger box")
    assert box_advice("the region lies outside the image; draw it over the image", "give") == (
        "the region lies outside the image; give a box over the image")
    assert box_advice("draw a smaller region") == "enter a smaller box"
    assert box_advice("region OK: it fits a box of 8 x 8 px") == "region OK: it fits a box of 8 x 8 px"


def test_an_uploaded_files_region_is_told_what_to_do_as_a_file():
    """A file's region was told to "draw it over the image"; one given latitude first, off a
    georeferenced image, was told only that it lay outside the image."""
    from core.bbox import image_box_bounds
    from core.raster import grid_of_file
    from core.region_check import upload_advice
    from testdata import FTW

    for where in ("image", "data", "image data"):
        assert upload_advice(f"the region lies outside the image; draw it over the {where}") == (
            f"the region lies outside the image; give a region over the {where} (draw one, or upload another file)")
    grid = grid_of_file(FTW)
    w, s, e, n = image_box_bounds(grid, False)  # (Austria: 47 N, 16 E; swapped, 16 N, 47 E lies in Yemen)
    swapped = Region.from_bbox(s, w, n, e)
    said = upload_advice("the region lies outside the image; draw it over the image", swapped, grid)
    assert said.endswith("; the file's coordinates look like latitude, longitude: GeoJSON gives longitude first (x, y), "
                         "so swap them (e.g. QGIS's Swap X and Y coordinates)"), said
    # a region elsewhere, or one on the image: no such hint
    elsewhere = Region.from_bbox(w + 20, s + 10, e + 20, n + 10)
    assert "latitude" not in upload_advice("the region lies outside the image; draw it over the image", elsewhere, grid)
    # read in the CRS its file names (a zone-33 region in a file that says zone 18 lands far off): said
    import json

    named = json.dumps({"type": "Polygon", "crs": {"type": "name", "properties": {"name": "EPSG:32618"}},
                        "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}).encode()
    assert upload_advice("the region lies outside the image", elsewhere, grid, named).endswith(
        "; the file's coordinates were read in EPSG:32618, as its \"crs\" member says: check that they are in that CRS")
    assert "crs" not in upload_advice("the region lies outside the image", elsewhere, grid, b"{not json")


def test_a_pixel_region_file_without_its_crs_is_told_to_say_so():
    """Pixel coordinates in a file that does not say so were told they "look like metres ... save the file in
    EPSG:4326", and after that the image without a place on Earth refused it again."""
    import json

    from core.grid import Grid
    from core.errors import RegionError
    from core.region_check import read_uploaded_region

    ring = [[500, 500], [900, 500], [900, 900], [500, 900], [500, 500]]
    data = json.dumps({"type": "Polygon", "coordinates": [ring]}).encode()
    plain = Grid(None, (1, 0, 0, 0, 1, 0), 1024, 1024)
    with pytest.raises(RegionError, match='looks like metres .*; this image has no place on Earth, so a region file gives '
                                          'its columns and rows and says so: if these are the image\'s, add "crs": "image"'):
        read_uploaded_region(data, "f.geojson", plain)
    with pytest.raises(RegionError, match="looks like metres") as info:  # a georeferenced image: as it was
        read_uploaded_region(data, "f.geojson", None)
    assert "crs" not in str(info.value)
    marked = json.dumps({"type": "Polygon", "coordinates": [ring], "crs": "image"}).encode()
    assert read_uploaded_region(marked, "f.geojson", plain).bounds == (500, 500, 900, 900)


def test_a_sliver_along_the_images_top_left_edges_is_thinner_than_a_pixel():
    """A sliver inside the image touching its left or top edge is thin, not "around" the image."""
    for box in ((0.2, 10, 0.4, 300), (10, 0.2, 300, 0.4)):
        res = check_region(Region.from_bbox(*box, crs=IMAGE_CRS), IMAGE_GRID)
        assert not res.ok and "thinner than a pixel" in res.message and "space around" not in res.message
