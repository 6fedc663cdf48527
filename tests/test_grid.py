import re

import numpy as np
import pytest
from affine import Affine

from testdata import write_raster
from core.grid import Grid
from core.raster import ImageReader

UTM = "EPSG:32631"
T10 = Affine(10, 0, 500000, 0, -10, 5600000)


def test_a_crs_in_words():
    from core.grid import crs_words

    assert crs_words("EPSG:32631") == "EPSG:32631, WGS 84 / UTM zone 31N"
    assert crs_words("EPSG:4326") == "EPSG:4326, WGS 84"
    assert crs_words(None) == "no CRS"
    # a CRS with no code nor name: in PROJ's words, cut at 60 characters
    assert crs_words("+proj=merc +lon_0=180 +a=6378137 +b=6378137 +units=m") == (
        "+proj=merc +lon_0=180 +k=1 +x_0=0 +y_0=0 +R=6378137 +units=m")
    assert crs_words("+proj=merc +lon_0=180 +a=6378137 +b=6378137 +units=m +x_0=1000000 +y_0=1000") == (
        "+proj=merc +lon_0=180 +k=1 +x_0=1000000 +y_0=1000 +R=6378137...")
    assert crs_words("EPSG:abc") == "EPSG:abc"  # (rasterio's plain ValueError: it never raises)


def test_an_unknown_crs_is_none_and_proj_says_nothing_on_the_terminal(capfd):
    """PROJ wrote "ERROR 1: PROJ: internal_proj_create_from_database: crs not found" to stderr before the
    command's own one-line error."""
    from core.grid import parse_crs

    assert parse_crs("EPSG:32631").to_epsg() == 32631
    assert [parse_crs(text) for text in ("EPSG:999999", "EPSG:abc", "EPSG:None", "", "PROJCS[]")] == [None] * 5
    # text that rasterio reads as JSON (a hand-edited mixer's crs): a TypeError escaped, a traceback on the CLI
    assert [parse_crs(text) for text in ("[1, 2]", "[[1, 2]]", '{"a": 1}')] == [None] * 3
    assert "PROJ" not in capfd.readouterr().err


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

    from core.grid import WGS84_A, ellipsoid_sine

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
    # Web Mercator's first column across 180 degrees: its east side's longitude wrapped to -180 and the
    # column spanned ~360 degrees (4e6 ha a 1 km pixel); north-up and rotated grids alike
    x180 = 20037508.342789244
    for turn in (0.0, 30.0):
        areas = [Grid("EPSG:3857", tuple(Affine.translation(x0, -1.8e6) @ Affine.rotation(turn)
                                         @ Affine.scale(1000.0, -1000.0))[:6], 10, 4).pixel_area_ha()
                 for x0 in (x180 - 5000.0, x180 - 500.0)]
        np.testing.assert_allclose(areas[1], areas[0], rtol=1e-6)
        assert 90 < areas[1].max() < 101  # ~100 ha, a little less at 16 degrees south


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


def test_a_local_crs_has_no_place_on_a_map_and_says_so(tmp_path, capsys):
    """A local CRS gives areas but no longitude or latitude: maps, lon/lat regions and crop fields gave
    GDAL's error with a page of the CRS's definition (and the CLI added "check the network")."""
    import rasterio
    from rasterio.crs import CRS

    from core.__main__ import main
    from core.errors import InvalidDataError
    from core.fields import crop_fields
    from core.overlays import lonlat_bounds
    from core.raster import grid_of_file, write_mask
    from core.region import Region
    from core.region_check import check_region
    from core.sources.local import LocalSource, validate_image
    from testdata import write_raster

    wkt = 'LOCAL_CS["site",UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
    path = write_raster(tmp_path / "site.tif", np.full((4, 40, 40), 1500, np.int16), crs=CRS.from_wkt(wkt),
                        transform=rasterio.Affine(2, 0, 0, 0, -2, 80), descriptions=["R", "G", "B", "NIR"])
    grid = grid_of_file(path)
    told = "the image's CRS ('site') is a local one, with no place on Earth"
    for refused in (lambda: lonlat_bounds(grid), lambda: crop_fields(np.ones((40, 40), np.uint8), grid),
                    lambda: validate_image(path), lambda: LocalSource(path).full_region()):
        with pytest.raises(InvalidDataError, match=re.escape(told)):
            refused()
    check = check_region(Region.from_bbox(10.0, 45.0, 10.1, 45.1), grid)
    assert not check.ok and told in check.message
    mask = write_mask(tmp_path / "mask.tif", np.ones((40, 40), np.uint8), grid)
    assert main(["fields", "--mask", str(mask), "--out", str(tmp_path / "f.geojson")]) != 0
    err = capsys.readouterr().err.strip()
    assert told in err and "\n" not in err and "network" not in err and "schema" not in err


def test_geographic_areas_are_on_the_wgs84_ellipsoid():
    """A 0.01 degree cell at 48 N against the ellipsoid's area element integrated numerically
    (M(lat) N(lat) cos(lat) d(lat) d(lon)); a sphere of the mean radius was 0.3% under."""
    from core.grid import WGS84_A, WGS84_F

    e2 = WGS84_F * (2 - WGS84_F)
    lat = np.radians(np.linspace(47.99, 48.0, 20001))
    s = np.sin(lat)
    element = WGS84_A**2 * (1 - e2) / (1 - e2 * s * s) ** 2 * np.cos(lat)  # M * N * cos(lat)
    expected_ha = float(np.sum((element[1:] + element[:-1]) / 2 * np.diff(lat))) * np.radians(0.01) / 1e4
    g = Grid("EPSG:4326", (0.01, 0, 10.0, 0, -0.01, 48.0), 1, 1)
    assert g.pixel_area_ha()[0, 0] == pytest.approx(expected_ha, rel=1e-6)


def test_a_geographic_crs_in_grads_has_the_area_of_its_degrees():
    """EPSG:4807 (NTF Paris) counts angles in grads (0.9 degree): read as degrees, its pixels were
    given 10% too much area (and a latitude of 54 grads, 48.6 degrees, was taken for 54)."""
    grads = Grid("EPSG:4807", (0.001, 0, 2.0, 0, -0.001, 54.0), 64, 64)
    degrees = Grid("EPSG:4326", (0.0009, 0, 4.0, 0, -0.0009, 48.6), 64, 64)
    assert grads.pixel_area_ha() == pytest.approx(degrees.pixel_area_ha(), rel=1e-9)
    turned = Affine.translation(2.0, 54.0) @ Affine.rotation(30) @ Affine.scale(0.001, -0.001)
    assert Grid("EPSG:4807", tuple(turned)[:6], 8, 8).pixel_area_ha()[4, 0] == pytest.approx(
        degrees.pixel_area_ha()[0, 0], rel=2e-3)


@pytest.mark.parametrize("crs, origin, size", [("EPSG:4326", (10.0, 45.0), 0.001), ("EPSG:3857", (1113194.9, 5621521.5), 30.0)])
def test_a_rotated_geographic_or_mercator_grid_has_the_ground_area_of_its_pixels(crs, origin, size):
    """A rotated grid's pixels cover as much ground as north-up pixels of the same size at the same
    place. Rows of a rotated lon/lat grid do not follow parallels: its area took a row's slant for
    its height (cos^2 of the angle too small), and a rotated Mercator grid got the nominal area
    (twice the ground's at 45 degrees)."""
    north_up = Affine.translation(*origin) @ Affine.scale(size, -size)
    turned = Affine.translation(*origin) @ Affine.rotation(30) @ Affine.scale(size, -size)
    # the rotated grid's middle row, centre column, lies where the north-up grid's pixel (row, col) does
    mid = ~north_up @ (turned @ (50.5, 50.5))
    assert 0 <= mid[1] < 101
    expected = Grid(crs, tuple(north_up)[:6], 101, 101).pixel_area_ha()[int(mid[1]), 0]
    area = Grid(crs, tuple(turned)[:6], 101, 101).pixel_area_ha()
    assert area.shape == (101, 1)
    assert area[50, 0] == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("turn", [0.0, 20.0, 135.0])
def test_a_rotated_utm_grid_has_the_area_of_its_pixels(turn):
    """A UTM grid's pixels keep their area when the grid is turned (the transform's determinant, not
    its diagonal: 30 m pixels turned by 20 degrees were 0.0795 ha by a * e alone)."""
    turned = Affine.translation(500000, 5600000) @ Affine.rotation(turn) @ Affine.scale(30, -30)
    assert Grid(UTM, tuple(turned)[:6], 16, 16).pixel_area_ha() == pytest.approx(0.09, rel=1e-9)


def test_lon_lat_pixels_that_are_not_square_have_the_area_of_their_sides():
    """A lon/lat export's pixels can be wider than tall (0.002 x 0.001 degrees): twice the area of
    square 0.001 degree ones at the same latitude (the width was once taken from the height)."""
    square = Grid("EPSG:4326", (0.001, 0, 10.0, 0, -0.001, 60.0), 4, 4).pixel_area_ha()
    wide = Grid("EPSG:4326", (0.002, 0, 10.0, 0, -0.001, 60.0), 4, 4).pixel_area_ha()
    assert wide == pytest.approx(2 * square, rel=1e-12)


@pytest.mark.parametrize("turn", [0.0, 20.0, 180.0])
def test_a_window_of_a_turned_grid_is_found_as_on_a_north_up_one(turn):
    """window_within: a part on the whole's pixels at a whole-pixel offset, for a grid turned by any
    angle (``predict --window`` output evaluated on its image's labels); not at a half pixel, not at
    another angle or pixel size, not past the edge."""
    from affine import Affine
    from rasterio.windows import Window

    from core.grid import Grid, window_within

    whole_t = Affine.translation(500000, 8150000) @ Affine.rotation(turn) @ Affine.scale(30, -30)
    whole = Grid("EPSG:32718", tuple(whole_t)[:6], 300, 200)

    def part(dc, dr, w=100, h=50, t=whole_t):
        return Grid("EPSG:32718", tuple(t @ Affine.translation(dc, dr))[:6], w, h)

    assert window_within(part(40, 30), whole) == Window(40, 30, 100, 50)
    assert window_within(part(200, 150), whole) == Window(200, 150, 100, 50)
    assert window_within(part(40.5, 30), whole) is None
    assert window_within(part(201, 150), whole) is None  # past the right edge
    assert window_within(part(-1, 0), whole) is None
    other_angle = Affine.translation(500000, 8150000) @ Affine.rotation(turn + 5) @ Affine.scale(30, -30)
    assert window_within(part(40, 30, t=other_angle), whole) is None
    assert window_within(part(40, 30, t=whole_t @ Affine.scale(2)), whole) is None


def test_grids_without_a_geotransform_are_said_to_be_unmatchable():
    """Two TIFFs without a geotransform share GDAL's identity: a smaller one cannot be placed on the other."""
    from core.grid import grid_difference

    bare = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert not Grid(None, bare, 4, 4).placed and Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 4, 4).placed
    assert grid_difference(Grid(None, bare, 8, 8), Grid(None, bare, 4, 4)) == (
        "it is 4 x 4 px, the image's 8 x 8 px, and neither file says where its pixels lie (no geotransform), so they "
        "cannot be matched; give labels of the image's size, or both files with their geotransform")


def test_lengths_in_messages_are_written_out():
    """A 1 km pixel read "1e+03 m pixels"."""
    from core.grid import metres_text

    assert [metres_text(v) for v in (1000.0, 29.98, 10.0, 0.5, 12345.6)] == ["1,000", "30", "10", "0.5", "12,346"]


@pytest.mark.parametrize("crs, origin", [("EPSG:3857", (1e20, 5.6e6)), ("EPSG:32631", (5e5, -1e19)),
                                         ("EPSG:4326", (1e17, 50.0))])
def test_a_geotransform_beyond_the_globe_is_refused_on_opening(tmp_path, crs, origin):
    """A corner 1e20 m east of Web Mercator's origin: GDAL brings longitudes back round the globe a
    turn at a time, so reprojecting it (its area, its place on the map) held `core info` and the page
    for minutes, beyond Ctrl-C. It is refused when the file is opened, with the corner and the fix."""
    from core.errors import InvalidDataError
    from core.raster import grid_of_file

    scale = 0.001 if crs == "EPSG:4326" else 10.0
    path = write_raster(tmp_path / "far.tif", np.full((4, 8, 8), 3000, np.int16), crs=crs,
                        transform=Affine(scale, 0, origin[0], 0, -scale, origin[1]), descriptions=("R", "G", "B", "NIR"))
    with pytest.raises(InvalidDataError, match=r"far.tif's geotransform puts a corner at .* beyond the globe.*gdal_edit"):
        grid_of_file(path)
    with pytest.raises(InvalidDataError, match="beyond the globe"):
        ImageReader(path)
    # a grid far but on Earth (a UTM easting of 5,000 km) is read as before, and
    # so are degrees in metres' place (a CRS that does not fit the coordinates: other checks say so)
    near = (5e6, 5.6e6) if crs != "EPSG:4326" else (501360.0, 5629680.0)
    ok = write_raster(tmp_path / "near.tif", np.full((4, 8, 8), 3000, np.int16), crs=crs,
                      transform=Affine(scale, 0, near[0], 0, -scale, near[1]), descriptions=("R", "G", "B", "NIR"))
    assert grid_of_file(ok).crs is not None


def test_a_crs_naming_an_ellipsoid_but_no_datum_is_kept_as_the_files_own(tmp_path):
    """``+proj=utm +zone=33 +ellps=intl`` was read as EPSG:23033 (ED50: a datum the file does not name,
    which PROJ matches at 70%): the image was placed about 100 m away, and its outputs tagged so. A CRS
    that is its code's, datum included, is still its code."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.warp import transform

    from core.grid import crs_words
    from core.raster import grid_of_file

    data = np.random.default_rng(0).integers(50, 4000, (4, 16, 16)).astype(np.int16)
    own = "+proj=utm +zone=33 +ellps=intl +units=m +no_defs"
    p = write_raster(tmp_path / "intl.tif", data, crs=own, transform=Affine(10, 0, 359130, 0, -10, 5352340))
    grid = grid_of_file(p)
    with rasterio.open(p) as src:
        assert CRS.from_user_input(grid.crs) == src.crs and "23033" not in grid.crs
        lon, lat = transform(src.crs, "EPSG:4326", [359210], [5352260])
    assert (lon, lat) == transform(grid.crs, "EPSG:4326", [359210], [5352260])  # the same place
    assert crs_words(grid.crs) == "+proj=utm +zone=33 +ellps=intl +units=m"  # (no code it is not)
    for code, proj in (("EPSG:32633", "+proj=utm +zone=33 +datum=WGS84 +units=m +no_defs"),
                       ("EPSG:4326", "+proj=longlat +datum=WGS84 +no_defs"), ("EPSG:5070", "EPSG:5070")):
        assert grid_of_file(write_raster(tmp_path / "c.tif", data, crs=proj)).crs == code


def test_a_pixels_width_on_the_ground_is_along_its_rows():
    """The ground length of a column step, a scale bar's: not the side of a square of the pixel's area."""
    import math

    lonlat = Grid("EPSG:4326", (0.0003, 0, 10, 0, -0.0003, 60.045), 400, 300)
    # a degree of longitude at 60 degrees north on WGS 84: N cos(lat) pi / 180 = 55,800 m
    n = 6378137.0 / math.sqrt(1 - 0.00669437999014 * math.sin(math.radians(60)) ** 2)
    assert lonlat.pixel_width_m() == pytest.approx(n * math.cos(math.radians(60)) * math.radians(0.0003), rel=1e-4)
    assert lonlat.pixel_size_m() > 1.4 * lonlat.pixel_width_m()
    assert Grid("EPSG:32633", (10, 0, 500000, 0, -20, 5e6), 8, 8).pixel_width_m() == pytest.approx(10, rel=1e-3)
    turned = Grid("EPSG:32633", (0, 10, 500000, 20, 0, 5e6), 8, 8)  # columns run north: a column step is 20 m
    assert turned.pixel_width_m() == pytest.approx(20, rel=1e-3)
    assert Grid(None, (1, 0, 0, 0, -1, 0), 8, 8).pixel_width_m() is None
    local = Grid('LOCAL_CS["site survey",UNIT["metre",1]]', (5, 0, 0, 0, -5, 0), 8, 8)  # no place on Earth
    assert local.pixel_width_m() == local.pixel_size_m() == 5.0


@pytest.mark.parametrize("transform", [(0.0, 0.0, 500000.0, 0.0, 0.0, 4000000.0), (30.0, 0.0, 500000.0, 0.0, 0.0, 4000000.0),
                                       (30.0, 30.0, 500000.0, 30.0, 30.0, 4000000.0)])
def test_a_geotransform_whose_pixels_have_no_size_is_refused_on_opening(tmp_path, transform):
    """A pixel size of 0 on an axis (or two axes along one line) divided by zero in predict's resolution check,
    resample, fields and zones (tracebacks), and `info` said 0 ha pixels."""
    from core.errors import InvalidDataError
    from core.raster import grid_of_file

    path = write_raster(tmp_path / "flat.tif", np.full((4, 8, 8), 3000, np.int16), crs="EPSG:32614",
                        transform=Affine(*transform), descriptions=("R", "G", "B", "NIR"))
    with pytest.raises(InvalidDataError, match=r"flat.tif's geotransform gives its pixels no size .*damaged.*gdal_edit"):
        grid_of_file(path)
    with pytest.raises(InvalidDataError, match="gives its pixels no size"):
        ImageReader(path)


def test_grids_differ_by_any_origin_or_axis_and_windows_keep_theirs():
    """Labels moved by whole rows only were taken as on the image's grid, and a part half a row off as one of its
    windows; a window's grid keeps its column and row apart (col_off moves x, row_off moves y)."""
    from rasterio.windows import Window

    from core.grid import pixel_offset, window_grid

    base = Grid("EPSG:32614", (30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0), 64, 48)
    down = Grid(base.crs, (30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0 - 3 * 30), 64, 48)
    right = Grid(base.crs, (30.0, 0.0, 500000.0 + 2 * 30, 0.0, -30.0, 4000000.0), 64, 48)
    assert base.same_as(base) and not base.same_as(down) and not base.same_as(right)
    assert pixel_offset(down, base) == (0, 3) and pixel_offset(right, base) == (2, 0)
    half_row = Grid(base.crs, (30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0 - 15), 64, 48)
    half_col = Grid(base.crs, (30.0, 0.0, 500000.0 + 15, 0.0, -30.0, 4000000.0), 64, 48)
    assert pixel_offset(half_row, base) is None and pixel_offset(half_col, base) is None
    win = window_grid(base, Window(col_off=5, row_off=2, width=10, height=7))
    assert win.transform[2] == 500000.0 + 5 * 30 and win.transform[5] == 4000000.0 - 2 * 30 and win.shape == (7, 10)


def test_the_ground_size_of_lon_lat_and_mercator_pixels_is_the_grids_centres():
    """A lon/lat grid's pixel size is its middle row's (60 degrees of rows: the top row's is far smaller), and a Web
    Mercator pixel's width across the 180th meridian is its own, not the globe's circumference less it."""
    deg = Grid("EPSG:4326", (0.01, 0.0, 0.0, 0.0, -0.01, 60.0), 100, 6000)
    mid = deg.pixel_area_ha()[3000, 0]
    assert deg.pixel_size_m() == pytest.approx(np.sqrt(mid * 1e4)) and deg.pixel_size_m() > 1.2 * np.sqrt(
        deg.pixel_area_ha()[0, 0] * 1e4)
    edge = 20037508.342789244
    merc = Grid("EPSG:3857", (100.0, 0.0, edge - 150.0, 0.0, -100.0, 1e6), 3, 3)  # its middle column across 180
    assert merc.pixel_width_m() == pytest.approx(100 * np.cos(np.radians(8.95)), rel=0.01)


def test_a_global_lon_lat_grid_of_pixels_centred_on_the_poles_and_on_0_to_360_degrees_east_is_in_degrees():
    from core.errors import InvalidDataError

    g = Grid("EPSG:4326", (1.0, 0, -0.5, 0, -1.0, 90.5), 361, 181)  # pixel centres from 0 to 360 E, 90 N to 90 S
    g.require_degrees()
    area = g.pixel_area_ha()
    # the top and bottom rows reach half a pixel past the poles: only their half up to the pole has area
    cap = Grid("EPSG:4326", (1.0, 0, 0.0, 0, -0.5, 90.0), 1, 1).pixel_area_ha()[0, 0]
    assert area[0, 0] == pytest.approx(cap, rel=1e-9) and area[-1, 0] == pytest.approx(cap, rel=1e-9)
    Grid(UTM, tuple(T10)[:6], 8, 8).require_degrees()  # not a lon/lat grid: left alone
    with pytest.raises(InvalidDataError, match="beyond the pole"):
        Grid("EPSG:4326", (1.0, 0, -0.5, 0, -1.0, 92.0), 361, 181).require_degrees()


def test_a_geotransform_whose_rows_step_beyond_the_globe_puts_a_corner_off_earth():
    from core.grid import off_earth_corner

    g = Grid(UTM, (10.0, 0, 500000.0, 0, -1e12, 5600000.0), 8, 8)  # a damaged row step: its last row 8e12 m south
    assert off_earth_corner(g) == (500000.0, 5600000.0 - 8e12)


def test_a_part_of_a_degree_grid_with_pixels_1_percent_larger_is_not_a_window_of_it():
    from rasterio.windows import Window

    from core.grid import window_within

    whole = Grid("EPSG:4326", (8.983e-5, 0, 10.0, 0, -8.983e-5, 45.0), 5000, 5000)
    assert window_within(Grid("EPSG:4326", (9.07e-5, 0, 10.0, 0, -9.07e-5, 45.0), 100, 100), whole) is None
    moved = Grid("EPSG:4326", (8.983e-5, 0, 10.0 + 5 * 8.983e-5, 0, -8.983e-5, 45.0), 100, 100)
    assert window_within(moved, whole) == Window(5, 0, 100, 100)


@pytest.mark.parametrize("crs, origin, size", [("EPSG:4326", (10.0, 45.0), 0.001), ("EPSG:3857", (1113194.9, 5621521.5), 30.0)])
def test_a_wide_rotated_grid_has_the_area_of_the_middle_of_each_row(crs, origin, size):
    turned = Affine.translation(*origin) @ Affine.rotation(30) @ Affine.scale(size, -size)
    area = Grid(crs, tuple(turned)[:6], 3001, 3).pixel_area_ha()
    x, y = turned @ (1500.5, 1.5)  # the middle of the middle row, 1,500 columns from the origin
    here = Grid(crs, (size, 0, x - size / 2, 0, -size, y + size / 2), 1, 1).pixel_area_ha()[0, 0]
    assert area[1, 0] == pytest.approx(here, rel=1e-6)


def test_grids_turned_either_side_of_180_degrees_are_said_to_be_turned_the_short_way():
    from core.grid import grid_difference

    def turned(angle):
        return Grid(UTM, tuple(T10 @ Affine.rotation(angle))[:6], 64, 64)

    assert grid_difference(turned(100), turned(-110)).startswith("its pixels are turned 150 degrees against the image's")


def test_an_image_with_neither_crs_nor_geotransform_opens_in_pixels_without_a_warning(tmp_path):
    import rasterio

    path = tmp_path / "bare.tif"
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=4, dtype="int16") as dst:
        dst.write(np.random.default_rng(0).integers(50, 4000, (4, 32, 32)).astype(np.int16))
        dst.descriptions = ("R", "G", "B", "NIR")
    with ImageReader(path) as r:
        assert not r.grid.placed and r.grid.pixel_area_ha() is None and r.warnings == ()


def test_a_projection_whose_pixels_are_smaller_than_the_ground_has_the_grounds_area():
    # a transverse Mercator of scale 0.9 at its centre: 30 m on its map is 33.3 m on the ground
    shrunk = "+proj=tmerc +lat_0=0 +lon_0=0 +k=0.9 +x_0=500000 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    area = Grid(shrunk, (30.0, 0, 500000.0, 0, -30.0, 300.0), 10, 10).pixel_area_ha()
    assert np.asarray(area) == pytest.approx(0.09 / 0.81, rel=1e-3)
