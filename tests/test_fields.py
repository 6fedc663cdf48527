"""Crop fields traced from a crop mask into GeoJSON (core.fields), on the real WorldCereal labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize
from rasterio.transform import Affine
from rasterio.warp import transform_geom

from core.errors import ConfigError, InputNotFoundError, InvalidDataError, NoDataError, OutputExistsError
from core.fields import crop_fields, write_fields
from core.labels import CLASS_MAPS
from core.grid import Grid
from core.raster import grid_of_file, read_labels, write_mask
from testdata import FLANDERS_LABELS, SAMPLE_LABELS


@pytest.fixture(scope="module")
def flanders():
    """The crop mask of the real WorldCereal labels (UTM 31N, 10 m) and its grid."""
    grid = grid_of_file(FLANDERS_LABELS)
    return read_labels(FLANDERS_LABELS, CLASS_MAPS["worldcereal"], grid, band="LC"), grid


def back_to_mask(collection: dict, grid: Grid) -> np.ndarray:
    """The fields rasterized again on the grid (an independent check of the tracing)."""
    shapes = [(transform_geom("EPSG:4326", grid.crs, f["geometry"]), 1) for f in collection["features"]]
    return rasterize(shapes, out_shape=grid.shape, transform=Affine(*grid.transform), dtype="uint8")


def test_fields_cover_exactly_the_crop_pixels(flanders):
    mask, grid = flanders
    assert 0 < (mask == 1).sum() < mask.size
    fc = crop_fields(mask, grid, min_pixels=1)
    assert fc["type"] == "FeatureCollection" and fc["features"]
    assert np.array_equal(back_to_mask(fc, grid) == 1, mask == 1)  # every crop pixel, nothing else
    props = [f["properties"] for f in fc["features"]]
    assert sum(p["pixels"] for p in props) == int((mask == 1).sum())
    assert [p["id"] for p in props] == list(range(1, len(props) + 1))
    assert all(a["pixels"] >= b["pixels"] for a, b in zip(props, props[1:]))  # largest first
    assert all(p["area_ha"] == pytest.approx(p["pixels"] * 0.01) for p in props)  # 10 m pixels = 0.01 ha
    lon, lat = np.array([c for f in fc["features"] for c in f["geometry"]["coordinates"][0]]).T
    assert 2.5 < lon.min() < lon.max() < 6.5 and 50.5 < lat.min() < lat.max() < 51.6  # Flanders, in lon/lat


def test_small_groups_are_left_out(flanders):
    mask, grid = flanders
    all_fields = crop_fields(mask, grid, min_pixels=1)["features"]
    big = crop_fields(mask, grid, min_pixels=20)["features"]
    kept = [f for f in all_fields if f["properties"]["pixels"] >= 20]
    assert 0 < len(big) == len(kept) and [f["properties"]["pixels"] for f in big] == [f["properties"]["pixels"] for f in kept]
    with pytest.raises(NoDataError, match="no group of"):
        crop_fields(mask, grid, min_pixels=mask.size + 1)
    # a mask without data: not "lower the threshold", which cannot help
    from core.labels import NODATA

    with pytest.raises(NoDataError, match=r"^this crop mask has no data \(every pixel is no data\)"):
        crop_fields(np.full_like(mask, NODATA), grid, min_pixels=1)
    with pytest.raises(ConfigError, match="at least 1 pixel"):
        crop_fields(mask, grid, min_pixels=0)


def test_geographic_grid_areas_add_up_like_the_pixel_areas():
    """A 3 x 2 pixel block on a 0.001 degree lon/lat grid near the equator: about 111 m x 111 m pixels."""
    mask = np.zeros((10, 10), np.uint8)
    mask[2:4, 3:6] = 1
    mask[8, 8] = 255
    grid = Grid("EPSG:4326", (0.001, 0.0, -72.75, 0.0, -0.001, 0.005), 10, 10)
    (field,) = crop_fields(mask, grid, min_pixels=1)["features"]
    assert field["properties"]["pixels"] == 6
    assert field["properties"]["area_ha"] == pytest.approx(float((mask == 1) @ np.ones(10) @ grid.pixel_area_ha()), rel=1e-4)
    # at the equator, 111.32 m east-west by 110.57 m north-south on the WGS 84 ellipsoid a pixel
    assert field["properties"]["area_ha"] == pytest.approx(6 * 1.11319 * 1.10574, rel=1e-4)


def test_web_mercator_field_areas_add_up_like_the_pixel_areas():
    # Mercator pixels shrink away from the equator; a field's hectares are those of its pixels
    mask = np.zeros((20, 20), np.uint8)
    mask[2:12, 3:13] = 1
    mask[5:7, 5:7] = 0  # a hole
    grid = Grid("EPSG:3857", (10.0, 0.0, 1000000.0, 0.0, -10.0, 5621521.0), 20, 20)  # near 45 N
    field = crop_fields(mask, grid, 1)["features"][0]["properties"]
    assert field["pixels"] == 96
    assert field["area_ha"] == pytest.approx(float(((mask == 1) * grid.pixel_area_ha()).sum()), rel=1e-4)
    assert 0.4 < field["area_ha"] < 0.6  # 96 nominal 0.01 ha pixels at about cos(45)^2 of their size


def test_an_image_without_a_crs_has_no_fields(tmp_path):
    grid = grid_of_file(SAMPLE_LABELS)
    with pytest.raises(InvalidDataError, match="georeferenced"):
        crop_fields(np.ones(grid.shape, np.uint8), grid)


def test_write_fields_from_a_mask_file(flanders, tmp_path):
    mask, grid = flanders
    mask_path = write_mask(tmp_path / "crop_mask.tif", mask, grid)
    out = tmp_path / "fields.geojson"
    summary = write_fields(mask_path, out, min_pixels=4)
    data = json.loads(out.read_text())
    assert data["min_pixels"] == 4 and len(data["features"]) == summary["fields"] > 0
    assert summary["pixels"] == sum(f["properties"]["pixels"] for f in data["features"]) <= (mask == 1).sum()
    # what is left out of the fields (pieces under min_pixels), so that their total meets the mask's crop
    assert summary["pixels"] + summary["left_out_pixels"] == (mask == 1).sum() and summary["min_pixels"] == 4
    assert write_fields(mask_path, tmp_path / "all.geojson", min_pixels=1)["left_out_pixels"] == 0
    with pytest.raises(OutputExistsError):
        write_fields(mask_path, out)
    assert json.loads(out.read_text()) == data  # untouched
    with pytest.raises(InputNotFoundError):
        write_fields(tmp_path / "none.tif", tmp_path / "x.geojson")
    with rasterio.open(FLANDERS_LABELS) as src:  # class codes, not a crop mask
        codes_path = tmp_path / "codes.tif"
        prof = {**src.profile, "count": 1}
        with rasterio.open(codes_path, "w", **prof) as dst:
            dst.write(src.read(1), 1)
    with pytest.raises(InvalidDataError, match="not a crop mask"):
        write_fields(codes_path, tmp_path / "y.geojson")
    assert not (tmp_path / "y.geojson").exists() and not (tmp_path / "x.geojson").exists()
    with pytest.raises(ConfigError, match="written as GeoJSON; give a name ending in .geojson"):
        write_fields(mask_path, tmp_path / "fields.tif")  # GeoJSON under a GeoTIFF's name
    assert not (tmp_path / "fields.tif").exists()


def _signed_area(ring) -> float:
    x, y = np.asarray(ring, dtype=np.float64).T
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def test_fields_follow_the_right_hand_rule_on_any_grid_orientation():
    """RFC 7946: exterior rings counterclockwise, holes clockwise. A north-down grid (positive y
    pixel size) gave them the other way round, which strict readers (d3-geo) take for the whole
    globe minus the field."""
    mask = np.zeros((12, 12), np.uint8)
    mask[2:10, 2:10] = 1
    mask[5:7, 5:7] = 0  # a hole
    for e, f in ((-10.0, 5_000_000.0), (10.0, 5_000_000.0)):
        grid = Grid("EPSG:32633", (10.0, 0.0, 500_000.0, 0.0, e, f), 12, 12)
        rings = crop_fields(mask, grid, min_pixels=1)["features"][0]["geometry"]["coordinates"]
        assert len(rings) == 2
        assert _signed_area(rings[0]) > 0 and _signed_area(rings[1]) < 0


def test_fields_of_a_rotated_lon_lat_grid_add_up_to_its_crop_area():
    """Slanted field edges were taken at one end's latitude: 11% too much at 30 degrees."""
    from affine import Affine

    from core.metrics import area_ha

    mask = np.zeros((200, 200), np.uint8)
    mask[20:180, 30:170] = 1
    mask[60:90, 60:100] = 0
    for crs, origin, size in (("EPSG:4326", (10.0, 45.0), 0.001), ("EPSG:3857", (1113194.9, 5621521.5), 30.0)):
        grid = Grid(crs, tuple(Affine.translation(*origin) @ Affine.rotation(30) @ Affine.scale(size, -size))[:6], 200, 200)
        field = crop_fields(mask, grid, 1)["features"][0]["properties"]
        assert field["area_ha"] == pytest.approx(area_ha(mask == 1, grid.pixel_area_ha()), rel=1e-3)


def test_a_field_across_the_180th_meridian_is_cut_there():
    """Taveuni (Fiji, UTM 60S) lies across 180 degrees: a field there was one ring from 179.9985 E to
    179.9987 W, which GIS draw as a band round the globe; it is two polygons meeting at the meridian
    (RFC 7946, 3.1.9), each in the right-hand order, with the field's pixels and area."""
    from rasterio.warp import transform

    x180, y = transform("EPSG:4326", "EPSG:32760", [180.0], [-16.8])
    grid = Grid("EPSG:32760", (30.0, 0.0, round(x180[0]) - 290, 0.0, -30.0, round(y[0]) + 300), 20, 20)
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 1  # 10 x 10 px, 3 px west of 180 degrees and 7 east
    mask[8:11, 8:11] = 0  # with a hole on the meridian
    mask[0:2, 0:2] = 1  # and a field west of it
    fields = crop_fields(mask, grid, min_pixels=4)["features"]
    big, small = fields[0]["geometry"], fields[1]["geometry"]
    assert big["type"] == "MultiPolygon" and len(big["coordinates"]) == 2 and small["type"] == "Polygon"
    for part in big["coordinates"]:
        lons = [p[0] for p in part[0]]
        assert max(lons) - min(lons) < 0.01 and (max(lons) == 180.0 or min(lons) == -180.0)
        assert _signed_area(part[0]) > 0
    assert fields[0]["properties"] == {"id": 1, "pixels": 91, "area_ha": pytest.approx(91 * 0.09)}
    # the parts rasterized back on the grid are the field's pixels, less its hole
    back = back_to_mask({"features": fields[:1]}, grid)
    assert (back == (mask == 1) & (np.arange(20)[:, None] >= 5)).all()


def test_a_field_across_the_180th_meridian_of_a_polar_grid_is_cut_there_and_one_on_a_pole_refused():
    """Antarctic polar stereographic (EPSG:3031) across 180 degrees at 77 S: GDAL cuts nothing from a polar
    CRS, and the field was one polygon round the globe, 13,000 times its area. A field that holds a pole
    cannot be a polygon in longitude and latitude: said, not traced wrong (+27% in area)."""
    from core.errors import InvalidDataError
    from core.metrics import area_ha

    grid = Grid("EPSG:3031", (30.0, 0.0, -300.0, 0.0, -30.0, -1418000.0), 20, 20)  # x = 0 is 180 degrees here
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 4:14] = 1  # 6 px west of the meridian's line, 4 px east
    [field] = crop_fields(mask, grid, min_pixels=4)["features"]
    assert field["geometry"]["type"] == "MultiPolygon" and len(field["geometry"]["coordinates"]) == 2
    for part in field["geometry"]["coordinates"]:
        lons = [p[0] for p in part[0]]
        assert max(lons) - min(lons) < 0.1 and (max(lons) == 180.0 or min(lons) == -180.0)
    assert field["properties"]["area_ha"] == pytest.approx(area_ha(mask == 1, grid.pixel_area_ha()), rel=0.01)
    pole = Grid("EPSG:3413", (30.0, 0.0, -300.0, 0.0, -30.0, 300.0), 20, 20)  # the North Pole at its centre
    with pytest.raises(InvalidDataError, match="holds a pole"):
        crop_fields(mask, pole, min_pixels=4)


def test_fields_of_a_lon_lat_grid_past_180_have_longitudes_within_180():
    """A lon/lat grid whose longitudes run past 180 (a 0-360 grid, or one across the meridian, here
    179.9 to 180.1 E) wrote fields at longitudes over 180: not RFC 7946, and refused when uploaded
    back as a region. They are cut at 180 as a projected grid's are, and moved to -180..180."""
    from core.region import Region

    grid = Grid("EPSG:4326", (0.001, 0.0, 179.9, 0.0, -0.001, -16.7), 200, 100)
    mask = np.zeros((100, 200), np.uint8)
    mask[10:20, 90:110] = 1  # 10 px west of 180 and 10 east
    mask[50:60, 150:170] = 1  # all east of it: at 180.05 to 180.07 E, i.e. 179.95 to 179.93 W
    fields = crop_fields(mask, grid, min_pixels=4)["features"]
    assert [f["geometry"]["type"] for f in fields] == ["MultiPolygon", "Polygon"]
    across, east = (f["geometry"] for f in fields)
    for part in across["coordinates"]:
        lons = [p[0] for p in part[0]]
        assert max(lons) - min(lons) == pytest.approx(0.01) and (max(lons) == 180.0 or min(lons) == -180.0)
        assert _signed_area(part[0]) > 0
    assert [min(p[0] for p in east["coordinates"][0]), max(p[0] for p in east["coordinates"][0])] == \
        pytest.approx([-179.95, -179.93])
    pixel_ha = grid.pixel_area_ha()
    for field, block in zip(fields, ((slice(10, 20), slice(90, 110)), (slice(50, 60), slice(150, 170)))):
        assert field["properties"]["pixels"] == 200
        assert field["properties"]["area_ha"] == pytest.approx(float(pixel_ha[block[0], 0].sum()) * 20, rel=1e-4)
    # and they are a region again, on either side of the meridian
    Region.from_geojson({"type": "FeatureCollection", "features": fields[1:]})
    # a field across Greenwich on a 0-360 grid (359.99 to 360.02 E): moved, not cut (it went round the globe)
    zero = Grid("EPSG:4326", (0.001, 0.0, 359.99, 0.0, -0.001, 10.0), 40, 20)
    block = np.zeros((20, 40), np.uint8)
    block[5:15, 5:35] = 1
    (greenwich,) = crop_fields(block, zero, min_pixels=4)["features"]
    lons = [p[0] for p in greenwich["geometry"]["coordinates"][0]]
    assert greenwich["geometry"]["type"] == "Polygon" and min(lons) == pytest.approx(-0.005) and max(lons) == pytest.approx(0.025)
    assert greenwich["properties"]["area_ha"] == pytest.approx(float(zero.pixel_area_ha()[5:15, 0].sum()) * 30, rel=1e-4)


def test_a_crop_mask_that_declares_0_as_no_data_is_traced(tmp_path):
    """Some tools write a 0/1 mask with 0 declared as no data: tracing its crop (1) is unaffected, and
    it was refused as "not a crop mask" once the labels' reader refused such files."""
    mask = np.zeros((40, 40), np.uint8)
    mask[10:25, 10:25] = 1
    path = tmp_path / "mask_nd0.tif"
    with rasterio.open(path, "w", driver="GTiff", width=40, height=40, count=1, dtype="uint8", crs="EPSG:32631",
                       transform=Affine(10, 0, 500000, 0, -10, 5600000), nodata=0) as dst:
        dst.write(mask, 1)
    done = write_fields(path, tmp_path / "f.geojson")
    assert done["fields"] == 1 and done["pixels"] == 225 and done["area_ha"] == pytest.approx(2.25)


def test_a_rotated_utm_grid_counts_its_fields_pixels_once():
    """The pixel size from the whole determinant: without the rotation's terms a 30-degree grid counted
    each pixel 1/cos^2 times (133 for 100) and its hectares likewise."""
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 1
    grid = Grid("EPSG:32631", tuple(Affine.translation(500_000.0, 5_600_000.0) @ Affine.rotation(30)
                                    @ Affine.scale(10.0, -10.0))[:6], 20, 20)
    (field,) = crop_fields(mask, grid, 1)["features"]
    assert field["properties"]["pixels"] == 100 and field["properties"]["area_ha"] == pytest.approx(1.0)


def test_a_lon_lat_grid_west_of_minus_180_gives_longitudes_within_180():
    grid = Grid("EPSG:4326", (0.001, 0.0, -200.0, 0.0, -0.001, 10.0), 40, 20)
    block = np.zeros((20, 40), np.uint8)
    block[5:15, 5:35] = 1
    (field,) = crop_fields(block, grid, min_pixels=4)["features"]
    lons = [p[0] for p in field["geometry"]["coordinates"][0]]
    assert min(lons) == pytest.approx(160.005) and max(lons) == pytest.approx(160.035)


def test_a_mask_not_of_its_grid_and_too_many_fields_are_refused(monkeypatch):
    from core import fields

    grid = Grid("EPSG:32631", (10.0, 0.0, 500_000.0, 0.0, -10.0, 5_600_000.0), 20, 20)
    mask = np.zeros((20, 20), np.uint8)
    mask[0:4, 0:4] = mask[8:12, 8:12] = mask[15:19, 15:19] = 1
    with pytest.raises(ConfigError, match="mask is 20x19 px, grid is 20x20"):
        crop_fields(mask[1:], grid)
    monkeypatch.setattr(fields, "MAX_FIELDS", 2)
    with pytest.raises(ConfigError, match="over 2 crop areas"):
        crop_fields(mask, grid)


def test_fields_are_4_connected_groups_with_their_hectares_and_no_data_is_not_crop(tmp_path):
    """Crop pixels meeting only at a corner are two crop areas, each with its own 30 m pixels' hectares
    (0.09 ha a pixel); a lone crop pixel is speckle, left out and counted as such; no data is not crop."""
    grid = Grid("EPSG:32631", (30.0, 0.0, 500_000.0, 0.0, -30.0, 5_600_000.0), 16, 16)
    mask = np.zeros((16, 16), np.uint8)
    mask[2:5, 2:5] = 1  # 9 px
    mask[5:7, 5:7] = 1  # 4 px, touching the first at a corner only
    mask[12, 12] = 1  # speckle
    mask[:, 14:] = 255  # no data
    fc = crop_fields(mask, grid)
    assert [(f["properties"]["pixels"], f["properties"]["area_ha"]) for f in fc["features"]] == [
        (9, pytest.approx(9 * 0.09)), (4, pytest.approx(4 * 0.09))]
    done = write_fields(write_mask(tmp_path / "crop_mask.tif", mask, grid), tmp_path / "f.geojson")
    assert done["fields"] == 2 and done["pixels"] == 13 and done["left_out_pixels"] == 1
    assert done["area_ha"] == pytest.approx(13 * 0.09)


def test_a_mask_with_some_no_data_and_no_crop_is_told_to_lower_the_threshold():
    """Only a mask of no data everywhere is "no data"; one with data but no crop group is told what helps."""
    grid = Grid("EPSG:32631", (30.0, 0.0, 500_000.0, 0.0, -30.0, 5_600_000.0), 16, 16)
    mask = np.zeros((16, 16), np.uint8)
    mask[:4] = 255
    with pytest.raises(NoDataError, match="no group of 4 or more crop pixels in this crop mask: lower the threshold"):
        crop_fields(mask, grid)
