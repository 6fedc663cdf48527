"""EarthEngineSource behind the Source interface, with a fake computePixels and getInfo."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from core.ee.auth import EEStatus
from core.ee.composites import _scene_summary_cached
from core.ee.errors import EENotConfiguredError
from core.ee.presets import CAMANA
from core.errors import EarthEngineError, NoDataError, RegionError
from core.sources.base import Source, scene_context
from core.sources.earthengine import EarthEngineSource, presets, recipes_from_settings
from tests.ee.fake_ee_ops import CODES, FILL
from tests.ee.fake_ee_ops import fake_compute as _fake_compute


def ready():
    return EEStatus(True, "p", "test", "Earth Engine ready: project p (test)")


def fake_compute(requests):
    """The shared fake computePixels (tests/ee/fake_ee_ops.py) with no-data label rows and masked
    composite pixels at each tile's edges."""
    return _fake_compute(requests, edges=True)


@pytest.fixture(autouse=True)
def no_user_store(tmp_path, monkeypatch):
    from ee import oauth

    monkeypatch.setattr(oauth, "get_credentials_path", lambda: str(tmp_path / "nocreds"))
    _scene_summary_cached.cache_clear()


def test_is_a_source():
    assert isinstance(EarthEngineSource(initialize=ready), Source)
    assert EarthEngineSource.name == "earthengine"
    keys = [p["key"] for p in presets()]
    assert keys == ["camana"] and presets()[0]["sensor"] == "L5"


def test_not_configured_says_so():
    src = EarthEngineSource(env={})
    ok, why = src.available()
    assert not ok and "earthengine authenticate" in why and "EE_PROJECT" in why
    with pytest.raises(EENotConfiguredError):
        src.fetch(CAMANA, "/nonexistent-never-written")


def test_check_region_local():
    src = EarthEngineSource(initialize=ready)
    check = src.check_region(CAMANA)
    assert check.ok and 380 * 270 <= check.pixels <= 400 * 300
    assert 9_000 <= check.area_ha <= 11_000  # ~11.7 km x 8.4 km
    tiny = {"type": "Polygon", "coordinates": [[[-72.7, -16.6], [-72.699, -16.6], [-72.699, -16.599], [-72.7, -16.599], [-72.7, -16.6]]]}
    small = src.check_region(tiny)
    assert not small.ok and "at least 8 px" in small.message
    big = {"type": "Polygon", "coordinates": [[[-75, -18], [-70, -18], [-70, -14], [-75, -14], [-75, -18]]]}
    large = src.check_region(big)
    assert not large.ok and "batch export" in large.message
    from core.region import Region

    bad = src.check_region(Region.from_bbox(0, 0, 500, 500, crs="image"))
    assert not bad.ok and "longitude/latitude" in bad.message
    # past UTM's latitudes: refused, saying how to map it (the pole was taken in zone 31N, 21 x 372 px)
    for box, said in (((0.0, 89.9, 0.2, 90.0), "reaches 90.0 degrees north"), ((10.0, -81.0, 10.5, -80.5),
                                                                               "reaches 81.0 degrees south")):
        polar = src.check_region(Region.from_bbox(*box))
        assert not polar.ok and said in polar.message and "past the latitudes of UTM (80 S to 84 N)" in polar.message
        assert ("--crs EPSG:3413" if "north" in said else "--crs EPSG:3031") in polar.message
    # with a CRS given (the command line's --crs), such a region is the user's to choose
    from dataclasses import replace

    polar_src = EarthEngineSource(composite=replace(src.composite, crs="EPSG:3413"), initialize=ready)
    assert polar_src.composite.crs_for(Region.from_bbox(0.0, 84.5, 3.0, 85.0).geometry()) == "EPSG:3413"


def test_check_region_refuses_labels_that_have_no_map_there():
    """CDL over the Camana valley got a green 'region OK' and failed only on the Data page."""
    from core.ee.labels import LabelConfig

    src = EarthEngineSource(CAMANA.composite, LabelConfig("cdl", year=2005), initialize=ready)
    check = src.check_region(CAMANA)
    assert not check.ok and "contiguous United States only" in check.message and check.area_ha > 9_000
    assert EarthEngineSource(CAMANA.composite, CAMANA.labels, initialize=ready).check_region(CAMANA).ok


def test_check_region_refuses_a_continent_before_planning_tiles(monkeypatch):
    from core.ee import pixels

    src = EarthEngineSource(initialize=ready)
    planned = []
    real = pixels.plan_requests
    monkeypatch.setattr(pixels, "plan_requests", lambda *a, **k: planned.append(a) or real(*a, **k))
    continent = {"type": "Polygon", "coordinates": [[[-120, -50], [20, -50], [20, 60], [-120, 60], [-120, -50]]]}
    check = src.check_region(continent)
    assert not check.ok and "direct-download limit" in check.message and check.pixels > 1e11
    assert planned == []  # sized from its bounds: thousands of tiles are never planned
    ok = src.check_region(CAMANA)
    assert ok.ok and len(planned) == 3  # a usable region is planned (image, its context, labels) for its message
    _, plan, _ = src.plans(CAMANA)  # the size from the bounds is the planned grid's
    assert ok.pixels == plan.width * plan.height and f"{plan.width}x{plan.height} px" in ok.message


def test_the_region_check_says_what_the_fetch_downloads(ee_offline, tmp_path):
    """The check described the region's own grid, while the fetch downloads the composite with 32 px
    around it: the size and request count it gave were low."""
    requests = []
    src = EarthEngineSource(preset="camana", initialize=ready, compute=fake_compute(requests),
                            getinfo=lambda d: {"count": 12, "dates": [1]}, max_workers=2)
    message = src.check_region(CAMANA).message
    src.fetch(CAMANA, tmp_path)
    sent = sum(r["grid"]["dimensions"]["width"] * r["grid"]["dimensions"]["height"] * (4 * len(r["bandIds"])
               if r["bandIds"] != ["class"] else 2) for r in requests)
    assert f"downloads {sent / 1e6:.1f} MB in {len(requests)} request(s)" in message
    _, plan, _ = src.plans(CAMANA)
    assert f"composite {plan.width + 64}x{plan.height + 64} px (32 px around" in message
    assert f"labels {plan.width}x{plan.height} px" in message


def test_a_field_from_earth_engine_comes_with_a_whole_patch_of_context(ee_offline, tmp_path):
    """A region of about 40 x 40 px (one field, in the Camana valley at 30 m): the composite comes
    down 256 px a side around it (not 32 px), as a local image's context, so that it is predicted as
    it would be in a larger region; the check says so."""
    from core.raster import grid_of_file
    from core.region import Region
    from core.sources.base import context_margin

    assert context_margin(40, 40) == 108 and context_margin(300, 40) == 108 and context_margin(400, 300) == 32
    requests = []
    src = EarthEngineSource(preset="camana", initialize=ready, compute=fake_compute(requests),
                            getinfo=lambda d: {"count": 12, "dates": [1]}, max_workers=1)
    field = Region.from_bbox(-72.73, -16.62, -72.7188, -16.6092)  # about 1.2 km a side
    _, plan, _ = src.plans(field)
    assert 35 <= min(plan.width, plan.height) and max(plan.width, plan.height) <= 45
    margin = context_margin(plan.height, plan.width)
    check = src.check_region(field)
    assert check.ok and f"({margin} px around the region for context)" in check.message
    scene = src.fetch(field, tmp_path)
    ctx = scene_context(scene.image_path)
    assert (ctx.row_off, ctx.col_off) == (margin, margin)
    assert grid_of_file(ctx.path).shape == (plan.height + 2 * margin, plan.width + 2 * margin)
    assert min(grid_of_file(ctx.path).shape) >= 256 and grid_of_file(scene.image_path).shape == (plan.height, plan.width)


def test_fetch_writes_a_scene_core_can_read(ee_offline, tmp_path):
    from core.labels import CLASS_MAPS
    from core.raster import ImageReader, read_labels

    requests, infos, progress = [], [], []
    src = EarthEngineSource(preset="camana", initialize=ready, compute=fake_compute(requests),
                            getinfo=lambda d: infos.append(d) or {"count": 12, "dates": [1]}, max_workers=1)
    said = []
    scene = src.fetch(CAMANA, tmp_path, progress=lambda d, t, m: progress.append((d, t)) or said.append(m))
    assert scene.georeferenced and scene.label_map == "binary"
    assert scene.title == CAMANA.title  # the preset's own box carries its name
    assert scene.image_path == tmp_path / "image.tif" and scene.labels_path == tmp_path / "labels.tif"
    assert "Landsat" in scene.attribution and "GLC-FCS30D (Zhang" in scene.attribution
    assert scene.extra["scenes"] == 12 and scene.extra["crs"] == "EPSG:32718"
    assert len(infos) == 1  # one getInfo for the whole fetch
    assert progress[-1][0] == progress[-1][1] == len(requests) == 2  # one request per file
    # the words count as the bar does, the whole download (each file's own count said "1/1" at half way)
    assert said == ["downloaded 1/2 tiles (imagery)", "downloaded 2/2 tiles (labels)"]
    with ImageReader(scene.image_path) as reader:
        feats, valid = reader.read()
        assert reader.grid.crs == "EPSG:32718" and reader.scale == 1.0
        assert reader.band_index == {"R": 1, "G": 2, "B": 3, "NIR": 4}
        grid = reader.grid
    inside = _inside(CAMANA.geojson, grid)
    assert scene.extra["region_pixels"] == inside.sum()  # for the Data page's counts
    # the lon/lat box is a slightly turned box in UTM: the grid's corners fall outside it
    assert 0.96 < inside.mean() < 1.0 and not inside[0, 0]
    assert (valid == inside).all()  # the composite's masked pixels (fake_compute) lie in the context around it
    r, c = grid.height // 2, grid.width // 4
    np.testing.assert_allclose(feats[r, c], [0.05, 0.1, 0.15, 0.4, (0.4 - 0.05) / 0.45], rtol=1e-6)
    mask = read_labels(scene.labels_path, CLASS_MAPS["binary"], grid=grid)
    half = grid.width // 2
    assert (mask[0] == 255).all() and (mask[~inside] == 255).all()
    assert (mask[1:, :half][inside[1:, :half]] == 1).all() and (mask[1:, half:][inside[1:, half:]] == 0).all()
    # the labels came down as GLC-FCS30D's own class codes; the mask was made from them here, and
    # the codes stay beside it (the fill value and pixels outside the region as -1) for class tables
    label_req = [r for r in requests if r["bandIds"] == ["class"]][0]
    image_req = [r for r in requests if r["bandIds"] != ["class"]][0]
    # the composite came down with 32 px of surroundings (context.tif, for prediction) on the labels' lattice
    lab, img = label_req["grid"], image_req["grid"]
    assert (img["dimensions"]["width"], img["dimensions"]["height"]) == (grid.width + 64, grid.height + 64)
    assert (lab["dimensions"]["width"], lab["dimensions"]["height"]) == (grid.width, grid.height)
    assert img["affineTransform"]["translateX"] == lab["affineTransform"]["translateX"] - 32 * 30
    assert img["affineTransform"]["translateY"] == lab["affineTransform"]["translateY"] + 32 * 30
    ctx = scene_context(scene.image_path)
    assert (ctx.path, ctx.row_off, ctx.col_off, ctx.frame) == (tmp_path / "context.tif", 32, 32, (0, 0))
    with ImageReader(ctx.path) as reader:
        ctx_feats, ctx_valid = reader.read()
        assert reader.grid.crs == grid.crs and reader.band_index == {"R": 1, "G": 2, "B": 3, "NIR": 4}
    inner = np.s_[32 : 32 + grid.height, 32 : 32 + grid.width]
    assert ctx_valid[inner][~inside].any()  # not masked to the region's outline there ...
    assert (valid == (ctx_valid[inner] & inside)).all()  # ... but the scene is, and the same pixels otherwise
    np.testing.assert_array_equal(feats[valid], ctx_feats[inner][valid])
    assert (scene.extra["codes"], scene.extra["class_map"]) == ("codes.tif", "glcfcs30d")
    with rasterio.open(tmp_path / "codes.tif") as f:
        codes = f.read(1)
        assert f.nodata == -1 and f.crs == "EPSG:32718" and tuple(f.transform)[:6] == grid.transform
    assert (codes[0] == -1).all() and (codes[~inside] == -1).all() and FILL not in codes
    assert set(np.unique(codes[mask == 1])) == {CODES[0]} and set(np.unique(codes[mask == 0])) == {CODES[1]}
    assert ((codes == -1) == (mask == 255)).all()
    meta = json.loads((tmp_path / "scene.json").read_text())["extra"]  # (a local scene's layout: core.sources.base)
    assert meta["composite"]["sensor"] == "L5"
    from core.sources.base import scene_origin

    assert scene_origin(tmp_path / "image.tif") == meta["title"] == scene.title  # (named so by the downloads)

    # a second fetch reuses the cached scene summary (no getInfo on reruns); 4 workers -> 2x2 tiles
    requests.clear()
    src.max_workers = 4
    again = src.fetch(CAMANA, tmp_path / "again", progress=lambda d, t, m: progress.append((d, t)))
    assert len(infos) == 1
    assert progress[-1][0] == progress[-1][1] == len(requests) == 8
    with ImageReader(again.image_path) as reader:
        assert reader.grid == grid


def _inside(geojson, grid) -> np.ndarray:
    """Pixels of ``grid`` whose centre lies inside the lon/lat polygon (computed here independently)."""
    from rasterio.features import rasterize
    from rasterio.transform import Affine
    from rasterio.warp import transform_geom

    shape = transform_geom("EPSG:4326", grid.crs, geojson)
    return rasterize([(shape, 1)], out_shape=(grid.height, grid.width), transform=Affine(*grid.transform)).astype(bool)


def test_fetch_masks_pixels_outside_a_drawn_polygon(ee_offline, tmp_path):
    """A triangle covers about half of its bounding box: the other half is no data in image and labels."""
    from core.labels import CLASS_MAPS, NODATA
    from core.raster import ImageReader, read_labels

    w, s, e, n = CAMANA.bbox
    triangle = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [w, n], [w, s]]]}
    src = EarthEngineSource(preset="camana", initialize=ready, compute=fake_compute([]),
                            getinfo=lambda d: {"count": 3, "dates": [1]}, max_workers=3)
    scene = src.fetch(triangle, tmp_path)
    with ImageReader(scene.image_path) as reader:
        _, valid = reader.read()
        grid = reader.grid
    inside = _inside(triangle, grid)
    assert 0.45 < inside.mean() < 0.55
    # inside, only the few pixels the fake marks as masked (a corner and the first row of each tile) lack data
    assert not valid[~inside].any() and valid[inside].mean() > 0.98
    labels = read_labels(scene.labels_path, CLASS_MAPS["binary"], grid=grid)
    assert (labels[~inside] == NODATA).all() and (labels[inside] != NODATA).mean() > 0.98


def test_fetch_no_scenes(ee_offline, tmp_path):
    src = EarthEngineSource(preset="camana", initialize=ready, compute=fake_compute([]), getinfo=lambda d: {"count": 0, "dates": []})
    with pytest.raises(NoDataError, match="widen the dates"):
        src.fetch(CAMANA, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_composite_masked_all_over_the_region_is_refused_and_leaves_nothing(ee_offline, tmp_path):
    """Scenes matched, but each was clouded (masked) over the region: the fetch came back as a scene
    with no valid pixel, accepted silently (an empty map, 0 valid pixels, nothing to predict). Now it
    is refused before the labels' download, with what to change, and nothing is written."""
    requests = []
    inner = fake_compute(requests)

    def clouded(req):
        out = inner(req)
        if req["bandIds"] not in (["label"], ["class"]):
            for band in req["bandIds"]:
                out[band][:] = -9999.0  # (the download's sentinel: masked in the composite)
        return out

    src = EarthEngineSource(preset="camana", initialize=ready, compute=clouded,
                            getinfo=lambda d: {"count": 3, "dates": [1]}, max_workers=1)
    with pytest.raises(NoDataError, match=r"^the composite has no clear pixel in this region: the 3 Landsat 5 TM "
                                          r"scenes between 2005-01-01 and 2006-12-31 are all masked there \(cloud, "
                                          r"cloud shadow, cirrus or no data\); widen the dates"):
        src.fetch(CAMANA, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert {tuple(r["bandIds"]) for r in requests} == {("R", "G", "B", "NIR")}  # (no label tile asked for)
    # one clear pixel is enough
    def one_clear(req):
        out = clouded(req)
        if req["bandIds"] not in (["label"], ["class"]) and not one_clear.given:
            h, w = out.shape
            for band in req["bandIds"]:
                out[band][h // 2, w // 2] = 0.1
            one_clear.given = True
        return out

    one_clear.given = False
    src = EarthEngineSource(preset="camana", initialize=ready, compute=one_clear,
                            getinfo=lambda d: {"count": 1, "dates": [1]}, max_workers=1)
    assert src.fetch(CAMANA, tmp_path / "out").image_path.is_file()


def test_a_label_recipe_it_refuses_costs_no_request(ee_offline, tmp_path):
    """Dynamic World for the Camana preset's 2005-2006 is refused as the source is made, before Earth Engine
    is initialised or asked anything; so are the dashboard's settings of it (the form keeps the ones in use)."""
    from core.ee.labels import LabelConfig
    from core.errors import ConfigError

    asked = []
    with pytest.raises(ConfigError, match="Dynamic World has maps from 2015-06-27 on, none for 2005-01-01..2006-12-31"):
        EarthEngineSource(CAMANA.composite, LabelConfig("dynamicworld"), initialize=lambda: asked.append("init"),
                          compute=fake_compute(asked), getinfo=asked.append, max_workers=1)
    assert asked == []
    settings = {"composite": EarthEngineSource(preset="camana", initialize=ready).settings()["composite"],
                "labels": {"product": "dynamicworld"}}
    with pytest.raises(ConfigError, match="2015-06-27"):
        recipes_from_settings(settings)
    later = {**settings, "composite": {**settings["composite"], "sensor": "L8", "start": "2019-01-01",
                                       "end": "2019-12-31"}}
    assert recipes_from_settings(later)[1] == LabelConfig("dynamicworld", start="2019-01-01", end="2019-12-31")


def test_fetch_rejects_bad_region(tmp_path):
    src = EarthEngineSource(initialize=ready)
    with pytest.raises(RegionError):
        src.fetch({"type": "Point", "coordinates": [0, 0]}, tmp_path)
    # malformed polygons given as dicts: refused in words (an empty ring or text coordinates were a ValueError)
    for geometry, words in (({"type": "Polygon", "coordinates": [[]]}, "at least 3 distinct corners"),
                            ({"type": "MultiPolygon", "coordinates": [[[]]]}, "at least 3 distinct corners"),
                            ({"type": "Polygon", "coordinates": [[["a", "b"], [1, 2], [2, 3], ["a", "b"]]]}, "numbers")):
        check = src.check_region(geometry)
        assert not check.ok and words in check.message
        with pytest.raises(RegionError, match=words):
            src.fetch(geometry, tmp_path)


def test_dynamic_world_follows_composite_dates():
    from core.ee.composites import CompositeConfig
    from core.ee.labels import LabelConfig

    src = EarthEngineSource(CompositeConfig(sensor="S2", start="2022-03-01", end="2022-09-30"), LabelConfig("dynamicworld"), initialize=ready)
    assert (src.labels.start, src.labels.end) == ("2022-03-01", "2022-09-30")
    assert src.labels.dates() == ("2022-03-01", "2022-10-01")


def test_a_user_asset_comes_down_as_a_crop_mask(ee_offline, tmp_path):
    """A user asset's crop value is applied in Earth Engine: one uint8 mask, no class codes kept."""
    from core.ee.labels import LabelConfig

    requests = []
    labels = LabelConfig("asset", asset_id="users/someone/glc30", crop_values=(10,))
    src = EarthEngineSource(CAMANA.composite, labels, initialize=ready, compute=fake_compute(requests),
                            getinfo=lambda d: {"count": 3, "dates": [1]}, max_workers=1)
    scene = src.fetch(CAMANA, tmp_path)
    assert [r["bandIds"] for r in requests] == [["R", "G", "B", "NIR"], ["label"]]
    assert scene.label_map == "binary" and "codes" not in scene.extra and not (tmp_path / "codes.tif").exists()


@pytest.mark.parametrize("sensor, scale, image_reducer, label_reducer", [
    ("L8", None, None, "Reducer.mode"),  # 10 m WorldCover on Landsat's 30 m
    ("S2", None, None, None),  # all on 10 m: the pixels as they are
    ("S2", 30, "Reducer.mean", "Reducer.mode"),  # Sentinel-2 on 30 m, the shipped model's pixels
])
def test_a_coarser_grid_comes_down_aggregated(ee_offline, tmp_path, sensor, scale, image_reducer, label_reducer):
    """On a grid coarser than the sources' pixels, the composite's reflectance is their mean under each
    pixel and the label their most frequent class (Image.reduceResolution), not the one pixel nearest
    its centre; on the sources' own pixels, they come down as they are."""
    from core.ee.composites import CompositeConfig
    from core.ee.labels import LabelConfig
    from graph_walk import arguments_of

    requests = []
    src = EarthEngineSource(CompositeConfig(sensor=sensor, start="2021-01-01", end="2021-12-31", scale=scale),
                            LabelConfig("worldcover"), initialize=ready, compute=fake_compute(requests),
                            getinfo=lambda d: {"count": 3, "dates": [1]}, max_workers=1)
    scene = src.fetch(CAMANA, tmp_path)
    # scene.json says what the pixels aggregate, and the title that the image's are not the sensor's own
    said = json.loads((tmp_path / "scene.json").read_text())["extra"]["aggregated"]
    assert ("image" in said) == bool(image_reducer) and ("labels" in said) == bool(label_reducer)
    assert ("averaged to 30 m pixels" in scene.title) == bool(image_reducer)
    if image_reducer:
        assert "mean reflectance over the 10 m Sentinel-2" in said["image"]
    if label_reducer:
        assert "most frequent class of the 10 m ESA WorldCover" in said["labels"]
    for bands, reducer in ((["R", "G", "B", "NIR"], image_reducer), (["class"], label_reducer)):
        sent = [r for r in requests if r["bandIds"] == bands]
        assert sent
        for r in sent:
            g = ee_offline.serializer.encode(r["expression"], for_cloud_api=True)
            found = [a["reducer"]["functionInvocationValue"]["functionName"]
                     for a in arguments_of(g, "Image.reduceResolution")]
            assert found == ([reducer] if reducer else [])
            assert not arguments_of(g, "Image.reproject")  # onto the request's own grid, the composite's


def _labels_fail(requests):
    """computePixels that serves the composite but refuses the labels (not retryable)."""
    import ee

    serve = fake_compute(requests)

    def compute(req):
        if req["bandIds"] in (["class"], ["label"]):
            requests.append(req)
            raise ee.EEException("Permission denied: asset not shared with this account")
        return serve(req)

    return compute


def _fetching_source(compute, overwrite=True):
    return EarthEngineSource(preset="camana", initialize=ready, compute=compute, overwrite=overwrite,
                             getinfo=lambda d: {"count": 3, "dates": [1]}, max_workers=1)


def test_failed_label_download_leaves_nothing_behind(ee_offline, tmp_path):
    """The image came down but the labels failed: no image.tif is left, so a rerun without
    overwrite does not stop at OutputExistsError; a folder the fetch made is removed again."""
    from core.ee.errors import EEPermissionError

    requests = []
    out = tmp_path / "runs" / "camana"
    with pytest.raises(EEPermissionError):
        _fetching_source(_labels_fail(requests), overwrite=False).fetch(CAMANA, out)
    assert [r["bandIds"] for r in requests] == [["R", "G", "B", "NIR"], ["class"]]  # the image was downloaded
    assert not (tmp_path / "runs").exists()
    out.mkdir(parents=True)
    with pytest.raises(EEPermissionError):
        _fetching_source(_labels_fail([]), overwrite=False).fetch(CAMANA, out)
    assert list(out.iterdir()) == []
    # the rerun, without overwrite, works
    scene = _fetching_source(fake_compute([]), overwrite=False).fetch(CAMANA, out)
    assert sorted(p.name for p in out.iterdir()) == ["codes.tif", "context.tif", "image.tif", "labels.tif", "scene.json"]
    assert scene.image_path.is_file() and scene.labels_path.is_file()


def test_failed_fetch_keeps_the_previous_scene(ee_offline, tmp_path):
    """With overwrite, a failed fetch leaves the earlier scene's files exactly as they were."""
    for name in ("image.tif", "codes.tif", "labels.tif", "scene.json"):
        (tmp_path / name).write_bytes(f"earlier {name}".encode())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(EarthEngineError):
        _fetching_source(_labels_fail([])).fetch(CAMANA, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_scene_json_is_written_whole_or_not_at_all(ee_offline, tmp_path, monkeypatch):
    """A failure while writing scene.json leaves neither it nor the images (scene.json marks a
    complete scene, so it must never exist half-written)."""
    import core.sources.earthengine as module

    class BrokenJson:
        @staticmethod
        def dumps(*a, **kw):
            raise RuntimeError("disk full")

    monkeypatch.setattr(module, "json", BrokenJson)
    with pytest.raises(RuntimeError):
        _fetching_source(fake_compute([])).fetch(CAMANA, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_outputs_are_refused_before_any_request(ee_offline, tmp_path):
    from core.errors import OutputExistsError

    (tmp_path / "labels.tif").write_bytes(b"earlier")
    requests, infos = [], []
    src = EarthEngineSource(preset="camana", initialize=ready, compute=fake_compute(requests), overwrite=False,
                            getinfo=lambda d: infos.append(d) or {"count": 3, "dates": [1]}, max_workers=1)
    with pytest.raises(OutputExistsError, match="labels.tif"):
        src.fetch(CAMANA, tmp_path)
    assert requests == [] and infos == [] and [p.name for p in tmp_path.iterdir()] == ["labels.tif"]


def test_overwrite_drops_outputs_the_new_recipe_lacks(ee_offline, tmp_path):
    """Fetching without labels over a scene with labels leaves no stale labels.tif/codes.tif."""
    _fetching_source(fake_compute([])).fetch(CAMANA, tmp_path)
    src = EarthEngineSource(CAMANA.composite, None, initialize=ready, compute=fake_compute([]),
                            getinfo=lambda d: {"count": 3, "dates": [1]}, max_workers=1)
    scene = src.fetch(CAMANA, tmp_path)
    assert scene.labels_path is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["context.tif", "image.tif", "scene.json"]
    meta = json.loads((tmp_path / "scene.json").read_text())
    assert meta["labels"] is False and meta["extra"]["labels"] is None


def test_patches_larger_than_the_region_are_said_before_the_export(ee_offline):
    """A 3.5 km region with the default 256 px patches (7.7 km): 7 tasks started without a word, their
    patches near copies of one another and the test patches on the training patches' pixels."""
    from core.region import Region

    # (one answer for both getInfo calls: the scene count's keys are no class, the histogram's no count)
    src = EarthEngineSource(preset="camana", initialize=ready, getinfo=lambda d: {"0": 10_000, "1": 10_000, "count": 4, "dates": [1]})
    small = Region.from_bbox(-72.75, -16.64, -72.72, -16.61)  # about 107 x 111 px at 30 m
    said: list[str] = []
    jobs = src.export_jobs(small, "patches", "gcs:crop-bucket/p", "s", train_points=(5, 5), test_points=(2, 2), warnings=said)
    assert jobs and len(said) == 1 and "smaller than one 256 px patch" in said[0] and "flatters the model" in said[0]
    said.clear()
    src.export_jobs(small, "patches", "gcs:crop-bucket/p", "s", train_points=(5, 5), test_points=(2, 2), patch_size=64,
                    warnings=said)
    assert said == []  # (patches inside the region)


def test_an_export_of_a_region_without_scenes_is_refused_before_any_task(ee_offline):
    """With no scene in the dates the composite has no bands: the batch task failed only after its time
    in Earth Engine's queue ("did not match any bands"). Now one getInfo says so first, as a download does."""
    from core.errors import NoDataError
    from core.region import Region

    asked = []
    src = EarthEngineSource(preset="camana", initialize=ready, getinfo=lambda d: asked.append(d) or {"count": 0, "dates": []})
    region = Region.from_bbox(-72.75, -16.64, -72.70, -16.60)
    for kind in ("image", "patches"):
        with pytest.raises(NoDataError, match="scene with under .* widen the dates"):
            src.export_jobs(region, kind, "gcs:crop-bucket/p", "s", train_points=(5, 5), test_points=(2, 2))
    assert len(asked) == 2  # (one scene count each; none cached while there is no scene)


def test_map_layers_of_a_preview_try_each_request_as_often_as_asked(ee_offline, monkeypatch):
    """The Region page's preview layers are optional: two tries (five took 11 s of a greyed page on
    every rerun while Earth Engine's quota was spent)."""
    from core.ee import tiles
    from core.ee.errors import EEQuotaError, RetryPolicy

    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt, rng=None: 0.0)  # (no waits between tries)
    tiles.clear_cache()
    calls = []

    def get_map_id(image, vis):
        calls.append(vis)
        raise EEQuotaError("quota exceeded")

    src = EarthEngineSource(CAMANA.composite, CAMANA.labels, initialize=ready)
    for attempts, tries in ((2, 2), (None, 5)):
        calls.clear()
        with pytest.raises(EEQuotaError):
            src.map_layers(CAMANA, get_map_id=get_map_id, attempts=attempts)
        assert len(calls) == tries


def test_the_default_source_has_the_presets_labels():
    """No recipe given: the Camana preset's composite and labels (the dashboard's first Earth Engine scene came
    without labels to train on). A preset named with a composite of one's own keeps the preset's labels; a
    composite alone has none unless given."""
    from core.ee.composites import CompositeConfig
    from core.ee.labels import LabelConfig

    plain = EarthEngineSource(initialize=ready)
    assert plain.composite == CAMANA.composite and plain.labels == CAMANA.labels and plain.preset is None
    own = CompositeConfig(sensor="L5", start="2006-01-01", end="2006-12-31")
    assert EarthEngineSource(own, preset="camana", initialize=ready).labels == CAMANA.labels
    assert EarthEngineSource(own, initialize=ready).labels is None
    given = LabelConfig("worldcover")
    assert EarthEngineSource(own, given, initialize=ready).labels == given


def test_a_failed_set_up_is_tried_again_and_a_working_one_is_kept():
    """Earth Engine not set up at first (no credentials yet), then set up: the next look says ready, rather than
    the first failure for the rest of the session; once ready, it is not initialised again on every page."""
    answers = [EEStatus(False, None, "none", "Earth Engine is not set up: run earthengine authenticate"), ready(), ready()]
    calls = []
    src = EarthEngineSource(initialize=lambda: calls.append(1) or answers[len(calls) - 1])
    assert src.available() == (False, "Earth Engine is not set up: run earthengine authenticate")
    assert src.available() == (True, "Earth Engine ready: project p (test)")
    assert src.available()[0] and len(calls) == 2


def test_a_set_up_that_raises_is_said_not_raised():
    """Initialising Earth Engine failed with an error (credentials refused): available() says why, for the
    sidebar, instead of failing the page; a fetch is refused with the same words."""
    from core.ee.errors import EEPermissionError

    def refused():
        raise EEPermissionError("the service account has no access to project p")

    src = EarthEngineSource(project="p", initialize=refused)
    assert src.available() == (False, "the service account has no access to project p")
    assert src.status().project == "p"
    with pytest.raises(EENotConfiguredError, match="no access to project p"):
        src.fetch(CAMANA, "/nonexistent-never-written")


def _counting_source(asked, labels="preset", histogram=None):
    """The Camana preset's source whose getInfo answers the scene count, then ``histogram`` (or raises it)."""
    def getinfo(d):
        asked.append(d)
        if len(asked) == 1:
            return {"count": 3, "dates": [1]}
        if isinstance(histogram, Exception):
            raise histogram
        return histogram

    if labels == "preset":
        return EarthEngineSource(preset="camana", initialize=ready, getinfo=getinfo)
    return EarthEngineSource(CAMANA.composite, labels, initialize=ready, getinfo=getinfo)


def test_an_export_of_an_unknown_kind_or_of_patches_without_labels_is_refused_before_any_request(ee_offline):
    """"tiles" is no export kind, and training patches need labels: both refused in words before Earth Engine is
    asked anything (not started as patches, nor failing on the missing labels after the scene count)."""
    from core.errors import ConfigError

    asked = []
    with pytest.raises(ConfigError, match="export kind must be 'patches' or 'image', got 'tiles'"):
        _counting_source(asked, histogram={"0": 100, "1": 100}).export_jobs(CAMANA, "tiles", "gcs:crop-bucket/p", "s")
    with pytest.raises(ConfigError, match="training patches need labels: choose a label product"):
        _counting_source(asked, labels=None).export_jobs(CAMANA, "patches", "gcs:crop-bucket/p", "s")
    assert asked == []


def test_an_image_export_keeps_32_px_of_context_unless_told(ee_offline):
    """The image export for prediction has a 32 px kernel buffer by default (the model sees each patch's
    surroundings, as in a download's context); 0 given is 0, not the default."""
    asked = []
    (job,) = _counting_source(asked).export_jobs(CAMANA, "image", "gcs:crop-bucket/p", "c")
    options = job.task.config["fileExportOptions"]["tfRecordOptions"]
    assert options["marginDimensions"] == {"width": 64, "height": 64} and len(asked) == 1  # (the scene count)
    (bare,) = _counting_source([]).export_jobs(CAMANA, "image", "gcs:crop-bucket/p", "c", kernel_buffer=0)
    assert "marginDimensions" not in bare.task.config["fileExportOptions"]["tfRecordOptions"]


def test_points_that_could_not_be_counted_are_said_before_the_export(ee_offline):
    """The count of each class's points timed out (a region large enough for a batch export): the tasks are
    still made, and the user is told they start unchecked; counted points say nothing."""
    from core.ee.errors import EETimeoutError
    from core.ee.export import UNCOUNTED_POINTS

    said: list[str] = []
    jobs = _counting_source([], histogram=EETimeoutError("Computation timed out.")).export_jobs(
        CAMANA, "patches", "gcs:crop-bucket/p", "s", train_points=(5, 5), test_points=(2, 2), patch_size=64, warnings=said)
    assert jobs and said == [UNCOUNTED_POINTS]
    said.clear()
    assert _counting_source([], histogram={"0": 100, "1": 100}).export_jobs(
        CAMANA, "patches", "gcs:crop-bucket/p", "s", train_points=(5, 5), test_points=(2, 2), patch_size=64, warnings=said)
    assert said == []


def test_download_progress_stays_within_its_total_when_a_tile_is_split(ee_offline, tmp_path):
    """Earth Engine found the composite's one tile too large: it came down in four, and the bar's count grew
    with it; it never said more tiles done than in all ("downloaded 3/2 tiles"), and ended full."""
    import ee

    requests = []
    serve = fake_compute(requests)

    def compute(req):
        if req["bandIds"] != ["class"] and req["grid"]["dimensions"]["width"] > 300:
            raise ee.EEException("Total request size (55000000 bytes) must be less than or equal to 50331648 bytes.")
        return serve(req)

    progress = []
    src = EarthEngineSource(preset="camana", initialize=ready, compute=compute, getinfo=lambda d: {"count": 3, "dates": [1]},
                            max_workers=1)
    src.fetch(CAMANA, tmp_path, progress=lambda d, t, m: progress.append((d, t, m)))
    assert len(requests) == 5  # four quarters of the composite, one of the labels
    assert all(d <= t for d, t, _ in progress) and progress[-1][0] == progress[-1][1] == 5
    assert all(f"downloaded {d}/{t} tiles" in m for d, t, m in progress)
    # never back, never full before the labels' tile (it read 4/4 after the imagery, then 2/2 for the labels)
    assert all(b[0] / b[1] >= a[0] / a[1] and b[0] >= a[0] for a, b in zip(progress, progress[1:])), progress
    assert all(d < t for d, t, _ in progress[:-1]), progress


def _unmask_values(ee_offline, request) -> list:
    """The values a request's expression fills masked pixels with (``Image.unmask``'s, as sent)."""
    from graph_walk import arguments_of, function_of, resolved

    g = ee_offline.serializer.encode(request["expression"], for_cloud_api=True)
    values = []
    for args in arguments_of(g, "Image.unmask"):
        value = resolved(g, args["value"])
        if function_of(g, value) == "Image.constant":
            value = resolved(g, value["functionInvocationValue"]["arguments"]["value"])
        values.append(value["constantValue"])
    return values


def test_masked_label_pixels_come_down_as_no_data(ee_offline, tmp_path):
    """Pixels where the label product has no data are filled, for the download, with a value that is no class:
    -1 for class codes (0 is Dynamic World's water, 10 a GLC class), 255 for a user asset's crop mask (0 is
    'not crop'); the composite's with -9999. Filled with a class, they were trained on as that class."""
    from core.ee.labels import LabelConfig

    requests = []
    _fetching_source(fake_compute(requests)).fetch(CAMANA, tmp_path / "codes")
    by_band = {tuple(r["bandIds"]): r for r in requests}
    assert _unmask_values(ee_offline, by_band[("class",)]) == [-1]
    assert _unmask_values(ee_offline, by_band[("R", "G", "B", "NIR")]) == [-9999.0]
    requests.clear()
    asset = LabelConfig("asset", asset_id="users/someone/glc30", crop_values=(10,))
    EarthEngineSource(CAMANA.composite, asset, initialize=ready, compute=fake_compute(requests),
                      getinfo=lambda d: {"count": 3, "dates": [1]}, max_workers=1).fetch(CAMANA, tmp_path / "asset")
    (label_req,) = [r for r in requests if r["bandIds"] == ["label"]]
    assert set(_unmask_values(ee_offline, label_req)) == {255}


def test_dynamic_worlds_water_is_a_class_not_no_data(ee_offline, tmp_path):
    """Dynamic World's class 0 is water: the codes come down with -1 as no data, so water stays water (not crop)
    in the mask and in the codes kept for the class tables; only what lies outside the region is no data."""
    from core.ee.composites import CompositeConfig
    from core.ee.labels import LabelConfig
    from core.labels import CLASS_MAPS
    from core.raster import ImageReader, read_labels

    serve = fake_compute([])

    def compute(req):
        out = serve(req)
        if req["bandIds"] == ["class"]:
            w = req["grid"]["dimensions"]["width"]
            out["class"][:, w // 2 :] = 0  # water in the right half
        return out

    src = EarthEngineSource(CompositeConfig(sensor="S2", start="2021-01-01", end="2021-12-31", scale=30),
                            LabelConfig("dynamicworld"), initialize=ready, compute=compute,
                            getinfo=lambda d: {"count": 3, "dates": [1]}, max_workers=1)
    scene = src.fetch(CAMANA, tmp_path)
    with ImageReader(scene.image_path) as reader:
        grid = reader.grid
    inside = _inside(CAMANA.geojson, grid)
    mask = read_labels(scene.labels_path, CLASS_MAPS["binary"], grid=grid)
    with rasterio.open(tmp_path / "codes.tif") as f:
        codes = f.read(1)
    right = np.zeros_like(inside)
    right[1:, grid.width // 2 :] = True  # (row 0: the fake's no data)
    assert (codes[right & inside] == 0).all() and (mask[right & inside] == 0).all()
    assert (codes[~inside] == -1).all() and (mask[~inside] == 255).all()


def test_only_the_presets_own_box_is_titled_as_the_preset(ee_offline, tmp_path):
    """A region drawn inside the Camana box, sharing its south-west corner, is not "Camana valley": its title
    names the composite and the preset's recipe (the downloads and the Data page say what it is)."""
    from core.region import Region

    w, s, e, n = CAMANA.bbox
    corner = Region.from_bbox(w, s, w + 0.05, s + 0.05)
    scene = _fetching_source(fake_compute([])).fetch(corner, tmp_path)
    assert scene.title != CAMANA.title and scene.title.endswith("(recipe of the camana preset)")
    assert scene.title.startswith("Landsat 5") and "median of 3 scenes" in scene.title


def test_codes_with_the_products_no_data_are_rewritten_as_minus_one(tmp_path):
    """A downloaded class-code file whose pixels hold the product's fill value (GLC-FCS30D's 250): the mask says
    no data there, and the codes kept for the class tables too (-1), not a class 250 no legend knows."""
    from core.labels import CLASS_MAPS
    from core.raster import read_labels
    from core.sources.earthengine import labels_from_codes

    codes = np.array([[CODES[0], CODES[1], FILL], [FILL, CODES[0], -1]], np.int16)
    path = tmp_path / "codes.tif"
    with rasterio.open(path, "w", driver="GTiff", width=3, height=2, count=1, dtype="int16", nodata=-1, crs="EPSG:32718",
                       transform=rasterio.Affine(30, 0, 700_000, 0, -30, 8_160_000)) as f:
        f.write(codes, 1)
    labels = labels_from_codes(path, tmp_path / "labels.tif", "glcfcs30d")
    with rasterio.open(path) as f:
        assert f.read(1).tolist() == [[CODES[0], CODES[1], -1], [-1, CODES[0], -1]] and f.nodata == -1
    assert read_labels(labels, CLASS_MAPS["binary"]).tolist() == [[1, 0, 255], [255, 1, 255]]


def test_recipes_come_back_from_settings_kept_as_json():
    """The Earth Engine settings a session keeps as JSON (lists for tuples) read back as the same recipes,
    usable as keys of a cache; no labels stays no labels."""
    from core.ee.composites import CompositeConfig
    from core.ee.labels import LabelConfig
    from core.sources.earthengine import recipes_from_settings

    composite = CompositeConfig(sensor="S2", start="2021-04-01", end="2021-09-30", max_cloud=30, scale=20)
    labels = LabelConfig("asset", asset_id="users/someone/glc30", crop_values=(10, 11), nodata_values=(0,))
    src = EarthEngineSource(composite, labels, initialize=ready)
    back = recipes_from_settings(json.loads(json.dumps(src.settings())))
    assert back == (composite, labels) and {back: 1}[(composite, labels)] == 1
    assert back[1].crop_values == (10, 11)
    bare = EarthEngineSource(composite, initialize=ready).settings()
    assert bare["labels"] is None and recipes_from_settings(json.loads(json.dumps(bare))) == (composite, None)
    assert recipes_from_settings({"composite": bare["composite"]}) == (composite, None)


def test_reuse_takes_a_complete_scene_of_the_same_recipe_and_region_with_no_request(ee_offline, tmp_path):
    """The dashboard's sessions share one folder per recipe and region (reuse=True): a complete scene there is
    used as it is, and one of another recipe (other labels, written by hand into the folder) is downloaded
    anew; without reuse (the command line) a fetch downloads again."""
    import os

    first = _fetching_source(fake_compute([])).fetch(CAMANA, tmp_path)
    stamp = os.stat(first.image_path).st_mtime_ns
    requests, infos = [], []

    def source(labels=CAMANA.labels, **kw):
        return EarthEngineSource(CAMANA.composite, labels, initialize=ready, compute=fake_compute(requests),
                                 getinfo=lambda d: infos.append(d) or {"count": 3, "dates": [1]}, max_workers=1, **kw)

    again = source(preset="camana", reuse=True).fetch(CAMANA, tmp_path)
    assert (requests, infos) == ([], []) and os.stat(again.image_path).st_mtime_ns == stamp
    assert json.loads(json.dumps(again.to_dict())) == json.loads(json.dumps(first.to_dict(), default=str))
    source(reuse=True).fetch(CAMANA, tmp_path)  # the preset's recipe, not named so (another title): downloaded
    assert requests
    requests.clear()
    other = source(labels=None, reuse=True).fetch(CAMANA, tmp_path)  # another recipe: downloaded
    assert requests and other.labels_path is None and os.stat(other.image_path).st_mtime_ns != stamp
    requests.clear()
    source(labels=None).fetch(CAMANA, tmp_path)  # no reuse: downloaded again
    assert requests


def test_reuse_keeps_a_scene_another_session_completed_while_this_one_downloaded(ee_offline, tmp_path):
    """Two sessions download the same recipe and region at once: the one that finishes second uses the first one's
    complete scene and leaves its files as they are (not renamed over them: their times key its prediction)."""
    import os

    other, calls = {}, []
    inner = fake_compute([])

    def compute_meanwhile(request):
        if not other:  # the other session's whole download, while this one's first tile comes down
            other["scene"] = EarthEngineSource(preset="camana", initialize=ready, compute=fake_compute([]),
                                               getinfo=lambda d: {"count": 3, "dates": [1]}, max_workers=1,
                                               reuse=True).fetch(CAMANA, tmp_path)
            other["stamp"] = os.stat(other["scene"].image_path).st_mtime_ns
        calls.append(request)
        return inner(request)

    mine = EarthEngineSource(preset="camana", initialize=ready, compute=compute_meanwhile,
                             getinfo=lambda d: {"count": 3, "dates": [1]}, max_workers=1, reuse=True).fetch(CAMANA,
                                                                                                             tmp_path)
    assert calls and mine.image_path == other["scene"].image_path
    assert os.stat(mine.image_path).st_mtime_ns == other["stamp"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # (its staging folder gone)
