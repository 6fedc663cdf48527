"""computePixels request planning (pure) and assembly from a fake server, exactly."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import rasterio

from core.ee import pixels as P
from core.ee.errors import EEMemoryError, EEQuotaError, RetryPolicy
from core.errors import ConfigError, OutputExistsError


def test_plan_small_region_is_one_request():
    plan = P.plan_requests((500010.0, 8150005.0, 511990.0, 8158000.0), 30, ("R", "G", "B", "NIR"), "float32", "EPSG:32718")
    # origin snapped to multiples of 30 m, north up
    assert plan.transform == (30.0, 0.0, 500010.0, 0.0, -30.0, 8158020.0)
    assert (plan.width, plan.height) == (400, 268)  # ceil(11980 / 30), ceil(8015 / 30)
    assert plan.requests == 1 and plan.tiles[0].transform == plan.transform
    assert plan.total_bytes == 400 * 268 * 16


def test_plan_respects_byte_and_side_limits():
    bands = ("R", "G", "B", "NIR")
    plan = P.plan_requests((0, 0, 300_000, 300_000), 30, bands, "float32", "EPSG:32618")  # 10000 x 10000 px
    assert (plan.width, plan.height) == (10000, 10000)
    assert all(t.nbytes <= P.MAX_REQUEST_BYTES for t in plan.tiles)
    assert all(t.width <= P.MAX_SIDE and t.height <= P.MAX_SIDE for t in plan.tiles)
    # tiles cover the grid exactly once
    cover = np.zeros((plan.height, plan.width), np.uint8)
    for t in plan.tiles:
        cover[t.row_off : t.row_off + t.height, t.col_off : t.col_off + t.width] += 1
        assert t.transform == (30.0, 0.0, t.col_off * 30.0, 0.0, -30.0, 300_000 - t.row_off * 30.0)
    assert (cover == 1).all()
    # 1.6 GB / 48 MiB -> at least 32 requests; balanced tiles keep the count close to that
    assert 32 <= plan.requests <= 42
    # 1 band uint8: a 32768 px side is the binding limit on a long strip
    strip = P.plan_requests((0, 0, 40000 * 10, 100 * 10), 10, ("label",), "uint8", "EPSG:32618")
    assert strip.requests == 2 and max(t.width for t in strip.tiles) <= P.MAX_SIDE


def test_plan_is_pure_and_hashable():
    args = ((0, 0, 9000, 9000), 30, ("R",), "float32", "EPSG:32618")
    a, b = P.plan_requests(*args), P.plan_requests(*args)
    assert a == b and a is not b and hash(a) == hash(b)
    assert {a: 1}[b] == 1  # usable as a cache key
    assert P.plan_requests((0, 0, 9000, 9030), 30, ("R",), "float32", "EPSG:32618") != a


def test_plan_tile_side_and_errors():
    plan = P.plan_requests((0, 0, 3000, 3000), 10, ("R",), "float32", "EPSG:32618", tile_side=128)
    assert plan.requests == 9 and max(t.width for t in plan.tiles) <= 128
    with pytest.raises(ConfigError):
        P.plan_requests((0, 0, 1, 1), 0, ("R",), "float32", "EPSG:32618")
    with pytest.raises(ConfigError):
        P.plan_requests((0, 0, 0, 1), 10, ("R",), "float32", "EPSG:32618")
    with pytest.raises(ConfigError):
        P.plan_requests((0, 0, 10, 10), 1, ("R",), "float32", "EPSG:32618", max_bytes=2)


def test_plan_target_requests_for_parallelism():
    bounds = (0, 0, 60_000, 60_000)  # 2000 x 2000 px at 30 m, 64 MB as 4 x float32
    assert P.plan_requests(bounds, 30, ("R", "G", "B", "NIR"), "float32", "EPSG:32618").requests == 4
    assert P.plan_requests(bounds, 30, ("R", "G", "B", "NIR"), "float32", "EPSG:32618", target_requests=16).requests == 16
    # whole rounds of requests: 8 workers get 2 x 4 tiles (one round), not 3 x 3 (two rounds); 3 workers
    # get 6 tiles (two full rounds) rather than the 4 the size limits need (a round of 3, then 1)
    for workers, count in ((8, 8), (3, 6), (2, 4)):
        plan = P.plan_requests(bounds, 30, ("R", "G", "B", "NIR"), "float32", "EPSG:32618", target_requests=workers)
        assert plan.requests == count
        assert sum(t.height * t.width for t in plan.tiles) == 2000 * 2000  # the tiles cover the grid once
        assert max(t.nbytes for t in plan.tiles) <= P.MAX_REQUEST_BYTES
    # never below min_tile_side: a small region stays one request
    assert P.plan_requests((0, 0, 6000, 6000), 30, ("R",), "float32", "EPSG:32618", target_requests=16).requests == 1


def test_plan_for_geometry_camana():
    from core.ee.presets import CAMANA

    plan = P.plan_for_geometry(CAMANA.geojson, 30, ("R", "G", "B", "NIR"), "float32", "EPSG:32718")
    assert plan.crs == "EPSG:32718" and plan.requests == 1
    assert 380 <= plan.width <= 400 and 280 <= plan.height <= 300
    assert plan.transform[2] % 30 == 0 and plan.transform[5] % 30 == 0


def expected_value(band: int, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    return (band * 1_000_000 + row * 1000 + col).astype(np.float32)


class FakeServer:
    """computePixels fake: each pixel's value encodes its global (row, col) and band."""

    def __init__(self, plan: P.PixelPlan, fail: dict | None = None, structured: bool = True, too_large_over: int | None = None):
        self.plan = plan
        self.requests: list[dict] = []
        self.fail = dict(fail or {})
        self.structured = structured
        self.too_large_over = too_large_over
        self.lock = threading.Lock()

    def __call__(self, request: dict):
        grid = request["grid"]
        w, h = grid["dimensions"]["width"], grid["dimensions"]["height"]
        aff = grid["affineTransform"]
        x0, y0 = self.plan.transform[2], self.plan.transform[5]
        col0 = round((aff["translateX"] - x0) / aff["scaleX"])
        row0 = round((aff["translateY"] - y0) / aff["scaleY"])
        # a request on the plan's pixels (one shifted by a fraction of a pixel would be resampled)
        assert abs(x0 + col0 * aff["scaleX"] - aff["translateX"]) < 1e-6 * aff["scaleX"], aff
        assert abs(y0 + row0 * aff["scaleY"] - aff["translateY"]) < 1e-6 * abs(aff["scaleY"]), aff
        with self.lock:
            self.requests.append(request)
            key = (row0, col0)
            if self.fail.get(key):
                self.fail[key] -= 1
                from googleapiclient.errors import HttpError

                class Resp(dict):
                    status = 429
                    reason = "Too Many Requests"

                raise HttpError(Resp(status="429"), b"Too many concurrent aggregations")
        if self.too_large_over and w * h > self.too_large_over:
            import ee

            raise ee.EEException("User memory limit exceeded.")
        rows, cols = np.mgrid[row0 : row0 + h, col0 : col0 + w]
        bands = request["bandIds"]
        if not self.structured:
            return np.stack([expected_value(i, rows, cols) for i in range(len(bands))], axis=-1)
        out = np.zeros((h, w), dtype=[(b, "<f4") for b in bands])
        for i, b in enumerate(bands):
            out[b] = expected_value(i, rows, cols)
        return out


@pytest.mark.parametrize("structured", [True, False])
def test_download_assembles_exactly(tmp_path, structured):
    plan = P.plan_requests((0, 0, 30 * 130, 30 * 70), 30, ("R", "G", "B", "NIR"), "float32", "EPSG:32718", tile_side=32)
    assert plan.requests == 5 * 3
    server = FakeServer(plan, structured=structured)
    seen = []
    out = P.download("IMAGE", plan, tmp_path / "x.tif", compute=server, max_workers=4, progress=lambda d, t, m: seen.append((d, t)))
    with rasterio.open(out) as src:
        data = src.read()
        assert src.crs.to_string() == "EPSG:32718"
        assert tuple(src.transform)[:6] == (30.0, 0.0, 0.0, 0.0, -30.0, 2100.0)
        assert src.descriptions == ("R", "G", "B", "NIR")
        assert src.dtypes[0] == "float32"
    rows, cols = np.mgrid[0 : plan.height, 0 : plan.width]
    for b in range(4):
        np.testing.assert_array_equal(data[b], expected_value(b, rows, cols))
    assert len(server.requests) == 15
    assert seen[-1] == (15, 15) and sorted(d for d, _ in seen) == list(range(1, 16))
    req = server.requests[0]
    assert req["expression"] == "IMAGE" and req["fileFormat"] == "NUMPY_NDARRAY" and req["bandIds"] == ["R", "G", "B", "NIR"]
    assert req["grid"]["crsCode"] == "EPSG:32718"
    assert not list(tmp_path.glob(".*part"))


def test_download_retries_429_with_backoff(tmp_path):
    plan = P.plan_requests((0, 0, 3000, 3000), 30, ("R",), "float32", "EPSG:32618", tile_side=50)
    server = FakeServer(plan, fail={(0, 0): 2, (50, 50): 1})
    sleeps = []
    stats = P.DownloadStats()
    P.download("I", plan, tmp_path / "r.tif", compute=server, sleep=sleeps.append, stats=stats, max_workers=2,
               retry=RetryPolicy(attempts=4, base_delay=0.5, jitter=0.0))
    assert stats.retries == 3 and len(server.requests) == plan.requests + 3
    assert sorted(sleeps) == [0.5, 0.5, 1.0]
    with rasterio.open(tmp_path / "r.tif") as src:
        rows, cols = np.mgrid[0:100, 0:100]
        np.testing.assert_array_equal(src.read(1), expected_value(0, rows, cols))


def test_download_gives_up_and_leaves_nothing(tmp_path):
    plan = P.plan_requests((0, 0, 3000, 3000), 30, ("R",), "float32", "EPSG:32618", tile_side=50)
    server = FakeServer(plan, fail={(0, 0): 99})
    with pytest.raises(EEQuotaError):
        P.download("I", plan, tmp_path / "r.tif", compute=server, sleep=lambda s: None, retry=RetryPolicy(attempts=3))
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_download_does_not_wait_for_a_request_that_stalled(tmp_path):
    """Ctrl-C (here: raised by the progress callback after the first tile) waited for every request under
    way: one that stalled (a dropped connection) held the command up for as long as it stalled."""
    import threading
    import time

    plan = P.plan_requests((0, 0, 3000, 1500), 30, ("R",), "float32", "EPSG:32618", tile_side=50)
    assert plan.requests == 2
    server, release = FakeServer(plan), threading.Event()

    def compute(req):
        if req["grid"]["affineTransform"]["translateX"] > 0:  # the second tile stalls
            release.wait(60)
        return server(req)

    def interrupt(done, total, message):
        raise KeyboardInterrupt

    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            P.download("I", plan, tmp_path / "r.tif", compute=compute, max_workers=2, progress=interrupt)
        assert time.monotonic() - started < 20
    finally:
        release.set()
    assert list(tmp_path.iterdir()) == []


def test_download_splits_tiles_the_server_cannot_compute(tmp_path):
    plan = P.plan_requests((0, 0, 30 * 300, 30 * 300), 30, ("R",), "float32", "EPSG:32618")
    assert plan.requests == 1
    server = FakeServer(plan, too_large_over=150 * 150)
    stats = P.DownloadStats()
    P.download("I", plan, tmp_path / "s.tif", compute=server, stats=stats)
    assert stats.splits == 1 and stats.requests == 4
    with rasterio.open(tmp_path / "s.tif") as src:
        rows, cols = np.mgrid[0:300, 0:300]
        np.testing.assert_array_equal(src.read(1), expected_value(0, rows, cols))
    small = P.plan_requests((0, 0, 30 * 100, 30 * 100), 30, ("R",), "float32", "EPSG:32618")
    with pytest.raises(EEMemoryError):
        P.download("I", small, tmp_path / "t.tif", compute=FakeServer(small, too_large_over=10))


def test_download_splits_tiles_whose_output_is_too_large_to_compute(tmp_path):
    """EE's per-tile output limit ("Output of image computation is too large ... > 80.0 MiB") is
    passed by smaller tiles, like a memory failure."""
    import ee

    msg = ("Output of image computation is too large (4 bands for 1048576 pixels = 96.0 MiB > 80.0 MiB). "
           "If this is a reduction, try specifying a larger 'tileScale' parameter.")
    plan = P.plan_requests((0, 0, 30 * 300, 30 * 300), 30, ("R",), "float32", "EPSG:32618")
    assert plan.requests == 1

    def compute(req):
        dims = req["grid"]["dimensions"]
        if dims["width"] * dims["height"] > 150 * 150:
            raise ee.EEException(msg)
        return np.zeros((dims["height"], dims["width"]), dtype=[("R", "<f4")])

    stats = P.DownloadStats()
    P.download("I", plan, tmp_path / "o.tif", compute=compute, stats=stats, sleep=lambda s: None)
    assert stats.splits == 1 and stats.requests == 4
    # the time limit of an interactive request, for a heavy recipe over a large tile: smaller ones finish (it
    # ended the whole download)
    msg = "Computation timed out."
    stats = P.DownloadStats()
    P.download("I", plan, tmp_path / "t.tif", compute=compute, stats=stats, sleep=lambda s: None)
    assert stats.splits == 1 and stats.requests == 4


def test_prepare_image_marks_pixels_outside_a_bounded_image(ee_offline, graph):
    """The sentinel must reach pixels outside the image's footprint too (unmask sameFootprint=false):
    computePixels returns masked pixels as 0, which is a valid value (a class code, reflectance)."""
    import json

    img = P.prepare_image(ee_offline.Image("users/someone/x").rename("class"), ("class",), "int16", -1)
    text = json.dumps(graph(img))
    assert '"functionName": "Image.unmask"' in text and '"sameFootprint": {"constantValue": false}' in text
    # each type asked for is the type sent (labels as uint8: a float's 4 bytes a pixel overran the plan's)
    for dtype, cast in (("int16", "Image.toInt16"), ("uint8", "Image.toUint8"), ("float32", "Image.toFloat")):
        sent = json.dumps(graph(P.prepare_image(ee_offline.Image("users/someone/x"), ("b1",), dtype, 0)))
        assert f'"functionName": "{cast}"' in sent and sent.count('"functionName": "Image.to') == 1, dtype


def test_download_does_not_split_when_the_request_itself_is_too_large(tmp_path):
    import ee

    from core.ee.errors import EEPayloadTooLargeError

    plan = P.plan_requests((0, 0, 30 * 300, 30 * 300), 30, ("R",), "float32", "EPSG:32618")
    calls = []

    def compute(req):
        calls.append(req)
        raise ee.EEException("Request payload size exceeds the limit: 10485760 bytes.")

    with pytest.raises(EEPayloadTooLargeError, match="simplify the region"):
        P.download("I", plan, tmp_path / "p.tif", compute=compute, sleep=lambda s: None)
    assert len(calls) == plan.requests == 1  # neither retried nor split into smaller tiles
    assert list(tmp_path.iterdir()) == []


def test_download_does_not_split_when_the_pixel_size_is_too_coarse_to_aggregate(tmp_path):
    """reduceResolution's "too many input pixels per output pixel" was taken for a request too large: each
    tile was split in four, again and again (456 requests for a plan of 16) before the error came."""
    import ee

    from core.ee.errors import EEPixelSizeError

    plan = P.plan_requests((0, 0, 30 * 3000, 30 * 3000), 30, ("R",), "float32", "EPSG:32618", target_requests=4)
    calls = []

    def compute(req):
        calls.append(req)
        raise ee.EEException("Image.reduceResolution: Too many input pixels per output pixel. Need 10404, but only "
                             "4096 allowed.")

    with pytest.raises(EEPixelSizeError, match="finer pixel size"):
        P.download("I", plan, tmp_path / "p.tif", compute=compute, sleep=lambda s: None, max_workers=1)
    assert plan.requests > 1 and len(calls) == 1  # neither retried nor split into smaller tiles
    assert list(tmp_path.iterdir()) == []


def test_download_never_overwrites_unless_asked(tmp_path):
    plan = P.plan_requests((0, 0, 300, 300), 30, ("R",), "float32", "EPSG:32618")
    target = tmp_path / "a.tif"
    target.write_bytes(b"keep")
    server = FakeServer(plan)
    with pytest.raises(OutputExistsError):
        P.download("I", plan, target, compute=server)
    assert target.read_bytes() == b"keep" and server.requests == []
    P.download("I", plan, target, compute=server, overwrite=True)
    with rasterio.open(target) as src:
        assert src.shape == (10, 10)


def test_a_download_cut_short_at_close_replaces_nothing(tmp_path, monkeypatch):
    """GDAL writes a file's last blocks when it is closed, and rasterio does not raise when that fails (a full
    disk): the download cut short (and the region's image cut from it) was renamed into place, over the file
    it replaced, and ee-fetch went on as if it had the pixels."""
    from core.files import synced

    def cut_short(path):  # the disk full as the last blocks were written
        os.truncate(path, os.path.getsize(path) - 20)
        synced(path)

    plan = P.plan_requests((0, 0, 300, 300), 30, ("R",), "float32", "EPSG:32618")
    grown = P.grown_plan(plan, 5)
    P.download("I", grown, tmp_path / "ctx.tif", compute=FakeServer(grown))
    target = tmp_path / "a.tif"
    target.write_bytes(b"keep")
    monkeypatch.setattr(P, "synced", cut_short)
    with pytest.raises(OSError, match="did not reach the disk whole"):
        P.download("I", plan, target, compute=FakeServer(plan), overwrite=True)
    with pytest.raises(OSError, match="did not reach the disk whole"):
        P.cut_out(tmp_path / "ctx.tif", tmp_path / "img.tif", plan, 5, 5)
    assert target.read_bytes() == b"keep" and not (tmp_path / "img.tif").exists()
    assert not list(tmp_path.glob(".*part"))


def test_sentinel_becomes_nodata(tmp_path):
    plan = P.plan_requests((0, 0, 300, 300), 30, ("R", "NIR"), "float32", "EPSG:32618")

    def compute(req):
        out = np.zeros((10, 10), dtype=[("R", "<f4"), ("NIR", "<f4")])
        out["R"] = 0.1
        out["NIR"] = 0.4
        out["R"][0, :3] = -9999.0
        return out

    P.download("I", plan, tmp_path / "n.tif", compute=compute, nodata=float("nan"), sentinel=-9999.0)
    with rasterio.open(tmp_path / "n.tif") as src:
        assert np.isnan(src.nodata)
        r = src.read(1)
    assert np.isnan(r[0, :3]).all() and np.isfinite(r[1:]).all()


def test_bad_response_shape(tmp_path):
    from core.errors import EarthEngineError

    plan = P.plan_requests((0, 0, 300, 300), 30, ("R",), "float32", "EPSG:32618")
    with pytest.raises(EarthEngineError, match="expected"):
        P.download("I", plan, tmp_path / "b.tif", compute=lambda r: np.zeros((5, 5), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_geotiff_response(tmp_path):
    from rasterio.io import MemoryFile

    plan = P.plan_requests((0, 0, 300, 300), 30, ("label",), "uint8", "EPSG:32618")

    def compute(req):
        assert req["fileFormat"] == "GEO_TIFF"
        with MemoryFile() as mem:
            with mem.open(driver="GTiff", width=10, height=10, count=1, dtype="uint8", crs="EPSG:32618",
                          transform=rasterio.Affine(30, 0, 0, 0, -30, 300)) as d:
                d.write(np.full((1, 10, 10), 7, np.uint8))
            return mem.read()

    P.download("I", plan, tmp_path / "g.tif", compute=compute, file_format="GEO_TIFF", nodata=255)
    with rasterio.open(tmp_path / "g.tif") as src:
        assert (src.read(1) == 7).all() and src.nodata == 255


def test_a_small_download_is_said_in_kilobytes():
    """A small region's plan read "= 0.0 MB in 1 request(s)"."""
    from core.files import size_text

    assert size_text(40_000) == "40.0 kB" and size_text(12) == "0.1 kB" and size_text(2_500_000) == "2.5 MB"
    assert size_text(62_000_000_000) == "62.0 GB"


def test_grown_plan_lies_on_the_same_lattice_and_holds_the_plan_at_its_margin():
    plan = P.plan_requests((600, 900, 30 * 130 + 600, 30 * 70 + 900), 30, ("R", "NIR"), "float32", "EPSG:32718")
    grown = P.grown_plan(plan, 32, target_requests=4)
    assert (grown.width, grown.height) == (130 + 64, 70 + 64)
    assert grown.transform == (30.0, 0.0, 600.0 - 32 * 30, 0.0, -30.0, 30 * 70 + 900 + 32 * 30)
    assert (grown.crs, grown.bands, grown.dtype) == (plan.crs, plan.bands, plan.dtype)
    assert sum(t.width * t.height for t in grown.tiles) == grown.width * grown.height
    assert P.grown_plan(plan, 0).transform == plan.transform
    with pytest.raises(ConfigError, match="cannot grow"):
        P.grown_plan(plan, -1)
    landsat = P.PixelPlan("EPSG:32718", (30.0, 0.0, 15.0, 0.0, -30.0, 45.0), 10, 10, ("R",), "float32", ())
    assert P.grown_plan(landsat, 2).transform == (30.0, 0.0, -45.0, 0.0, -30.0, 105.0)  # on Landsat's lattice
    # corners at other offsets in x and y (Landsat's northings in a southern zone: 25 m, eastings 15 m)
    south = P.PixelPlan("EPSG:32718", (30.0, 0.0, 15.0, 0.0, -30.0, 55.0), 10, 10, ("R",), "float32", ())
    assert P.grown_plan(south, 2).transform == (30.0, 0.0, -45.0, 0.0, -30.0, 115.0)


def test_cut_out_writes_the_window_masked_to_the_geometry(tmp_path):
    """The region's image cut from a download of its surroundings: the same pixels, the outline's
    outside as no data (strips of a few rows, so the strip edges are crossed), the source untouched."""
    from rasterio.warp import transform_geom

    plan = P.plan_requests((300000, 8150010, 300000 + 30 * 40, 8150010 + 30 * 30), 30, ("R", "NIR"), "float32", "EPSG:32718")
    grown = P.grown_plan(plan, 5)
    P.download("IMAGE", grown, tmp_path / "ctx.tif", compute=FakeServer(grown), nodata=float("nan"))
    # a triangle over the plan's grid, given in lon/lat as a drawn region is
    x0, y1 = plan.transform[2], plan.transform[5]
    x1, y0 = x0 + 30 * plan.width, y1 - 30 * plan.height
    tri = transform_geom("EPSG:32718", "EPSG:4326", {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x0, y1], [x0, y0]]]})
    inside_count = P.cut_out(tmp_path / "ctx.tif", tmp_path / "img.tif", plan, 5, 5, tri, rows_at_once=7)
    out = tmp_path / "img.tif"
    with rasterio.open(out) as img, rasterio.open(tmp_path / "ctx.tif") as ctx:
        assert (img.width, img.height, img.crs, img.descriptions) == (40, 30, ctx.crs, ("R", "NIR"))
        assert tuple(img.transform)[:6] == plan.transform and np.isnan(img.nodata)
        got, around = img.read(), ctx.read()
    inner = around[:, 5:35, 5:45]
    inside = np.isfinite(got[0])
    rows, cols = np.mgrid[0:30, 0:40]
    assert (inside == ((cols + 0.5) / 40 < (rows + 0.5) / 30)).mean() > 0.97  # the lower left half
    assert 0.4 < inside.mean() < 0.6 and np.isfinite(inner).all()
    np.testing.assert_array_equal(got[:, inside], inner[:, inside])
    assert inside_count == P.CutOut(inside.sum(), inside.sum())  # every pixel inside has data here
    with pytest.raises(OutputExistsError):
        P.cut_out(tmp_path / "ctx.tif", out, plan, 5, 5)
    with pytest.raises(ConfigError, match="does not hold"):
        P.cut_out(tmp_path / "ctx.tif", tmp_path / "other.tif", plan, 11, 5)
    assert not (tmp_path / "other.tif").exists() and not list(tmp_path.glob(".*part"))


def test_grids_lie_on_the_sensors_own_pixels():
    """Landsat's pixel corners are at 15 m + multiples of 30 m in UTM; a grid on multiples of 30 m put
    each pixel's centre on a corner of four Landsat pixels (half a pixel's shift by nearest neighbour)."""
    from core.ee.composites import CompositeConfig
    from core.ee.export import image_export_grid
    from core.ee.presets import CAMANA

    assert CompositeConfig("L5", "2005-01-01", "2006-12-31").grid_origin("EPSG:32633") == (15.0, 15.0)
    assert CompositeConfig("L9", "2023-01-01", "2023-12-31").grid_origin("EPSG:32633") == (15.0, 15.0)
    assert CompositeConfig("S2", "2023-01-01", "2023-12-31").grid_origin("EPSG:32633") == (0.0, 0.0)
    # south of the equator Landsat stays on the northern zone's grid (USGS's EPSG:326xx, northings
    # negative): in EPSG:327xx, northings 10,000,000 m larger, its corners are at 25 m + multiples of 30 m
    assert CompositeConfig("L5", "2005-01-01", "2006-12-31").grid_origin("EPSG:32718") == (15.0, 25.0)
    assert CompositeConfig("L8", "2015-01-01", "2015-12-31", scale=60).grid_origin("EPSG:32718") == (15.0, 55.0)
    assert CompositeConfig("S2", "2023-01-01", "2023-12-31").grid_origin("EPSG:32718") == (0.0, 0.0)  # (S2's own zone)
    transform, width, height = P.snap_grid((100, 200, 190, 290), 30, origin=15.0)
    assert transform == (30.0, 0.0, 75.0, 0.0, -30.0, 315.0) and (width, height) == (4, 4)  # covers the bounds
    assert P.snap_grid((105, 195, 195, 285), 30, origin=15.0) == ((30.0, 0.0, 105.0, 0.0, -30.0, 285.0), 3, 3)
    plan = P.plan_requests((100, 200, 190, 290), 30, ("R",), "float32", "EPSG:32718", origin=15.0)
    assert plan.transform == transform
    assert P.snap_grid((100, 200, 190, 290), 30, origin=(15.0, 25.0)) == ((30.0, 0.0, 75.0, 0.0, -30.0, 295.0), 4, 4)
    camana = CAMANA.composite
    crs = camana.crs_for(CAMANA.geojson)
    x0, y0 = image_export_grid(CAMANA.geojson, 30.0, crs, 256, origin=camana.grid_origin(crs)).transform[2::3]
    # on the pixels of a Landsat scene there: its corner in EPSG:32618 (as USGS gives it) less 10,000 km
    assert crs == "EPSG:32718" and (x0 % 30, (y0 - 10_000_000) % 30) == (15.0, 15.0)


# ------------------------------------------------------------------- plan edges (from mutation testing)


def test_plan_refuses_bounds_bands_scales_and_workers_it_cannot_plan(tmp_path):
    """Zero-height bounds gave a one-pixel plan; no bands a ZeroDivisionError; a NaN scale a ValueError
    deep in the grid's snapping; no worker at all a download that never started."""
    for bounds, bands, scale, match in (((0, 10, 10, 10), ("R",), 1, "empty bounds"), ((0, 0, 10, 10), (), 1, "one band"),
                                         ((0, 0, 10, 10), ("R",), float("nan"), "scale must be"),
                                         ((0, 0, float("inf"), 10), ("R",), 1, "finite")):
        with pytest.raises(ConfigError, match=match):
            P.plan_requests(bounds, scale, bands, "float32", "EPSG:32618")
    plan = P.plan_requests((0, 0, 300, 300), 30, ("R",), "float32", "EPSG:32618")
    with pytest.raises(ConfigError):
        P.download("I", plan, tmp_path / "x.tif", compute=FakeServer(plan), max_workers=0)
    assert not list(tmp_path.iterdir())


def test_plan_bytes_add_up_and_its_limit_holds_for_parallel_and_grown_plans():
    plan = P.plan_requests((0, 0, 30 * 300, 30 * 200), 30, ("R", "G", "B"), "float32", "EPSG:32618", max_bytes=1 << 20)
    assert sum(t.nbytes for t in plan.tiles) == plan.total_bytes == 300 * 200 * 12
    assert plan.max_request_bytes == 1 << 20 and all(t.nbytes <= 1 << 20 for t in P.grown_plan(plan, 8).tiles)
    wide = P.plan_requests((0, 0, 30 * 2000, 30 * 2000), 30, ("R",), "float32", "EPSG:32618", max_bytes=1 << 20,
                           target_requests=4)
    assert all(t.nbytes <= 1 << 20 for t in wide.tiles)
    two = P.plan_requests((0, 0, 30 * 1024, 30 * 1024), 30, ("R",), "float32", "EPSG:32618", target_requests=2)
    assert two.requests == 2  # two workers: two requests at once, not one


def test_a_fractional_scale_snaps_without_float_noise():
    t, w, h = P.snap_grid((4.3, 0.0, 5.0, 1.0), 0.1)
    assert t[2] == pytest.approx(4.3) and (w, h) == (7, 10)  # not 8 columns for 4.2999999


def test_an_odd_oblong_tile_splits_into_parts_that_cover_it_once():
    tile = P.PixelTile(0, 0, 129, 200, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 129 * 200 * 4)
    parts = P.split_tile(tile, 4)
    assert sum(p.height * p.width for p in parts) == 129 * 200
    assert sorted((p.height, p.width) for p in parts) == [(64, 100), (64, 100), (65, 100), (65, 100)]


def test_a_response_missing_a_band_is_an_earth_engine_error():
    from core.errors import EarthEngineError

    with pytest.raises(EarthEngineError):
        P.to_band_array(np.zeros((2, 2), dtype=[("R", "<f4")]), ("R", "G"), (2, 2), "float32")


@pytest.mark.parametrize("answer, said", [
    (b"", "computePixels returned no data"),  # (rasterio's "'driver' is required", a traceback)
    (b"junk" * 3, "computePixels returned 12 bytes that are no GeoTIFF"),  # (GDAL's words on a temporary file)
    (np.full((2, 2), "x"), "values of type <U1 where numbers belong"),  # ("could not convert string to float")
    (np.zeros((2, 2), dtype=[("R", "U3")]), "values of type <U3 where numbers belong"),
])
def test_a_malformed_answer_is_an_earth_engine_error(answer, said):
    from core.errors import EarthEngineError

    with pytest.raises(EarthEngineError, match=said):
        P.to_band_array(answer, ("R",), (2, 2), "float32")


def _triangle(plan):
    from rasterio.warp import transform_geom

    x0, y1 = plan.transform[2], plan.transform[5]
    ring = [[x0, y1 - 300], [x0 + 300, y1 - 300], [x0, y1], [x0, y1 - 300]]
    return transform_geom("EPSG:32718", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})


def test_a_region_without_nodata_keeps_every_value_it_downloads(tmp_path):
    """No nodata value given: the pixels outside the geometry are kept as they came (not NaN)."""
    plan = P.plan_requests((300000, 8150010, 300000 + 30 * 40, 8150010 + 30 * 30), 30, ("R",), "float32", "EPSG:32718")
    P.download("I", plan, tmp_path / "x.tif", compute=FakeServer(plan), geometry=_triangle(plan))
    with rasterio.open(tmp_path / "x.tif") as src:
        rows, cols = np.mgrid[0:30, 0:40]
        np.testing.assert_array_equal(src.read(1), expected_value(0, rows, cols))
    grown = P.grown_plan(plan, 5)
    P.download("I", grown, tmp_path / "ctx.tif", compute=FakeServer(grown))
    assert P.cut_out(tmp_path / "ctx.tif", tmp_path / "img.tif", plan, 5, 5, _triangle(plan)) == P.CutOut(40 * 30, 40 * 30)
    with rasterio.open(tmp_path / "img.tif") as img, rasterio.open(tmp_path / "ctx.tif") as ctx:
        np.testing.assert_array_equal(img.read(), ctx.read()[:, 5:35, 5:45])


def test_splitting_stops_at_small_tiles_and_progress_and_bytes_count_the_parts(tmp_path):
    plan = P.plan_requests((0, 0, 30 * 100, 30 * 100), 30, ("R",), "float32", "EPSG:32618")
    server = FakeServer(plan, too_large_over=10)
    with pytest.raises(EEMemoryError):
        P.download("I", plan, tmp_path / "t.tif", compute=server)
    assert len(server.requests) == 1  # 100 px a side: too small to split further
    plan = P.plan_requests((0, 0, 30 * 300, 30 * 300), 30, ("R",), "float32", "EPSG:32618")
    seen, stats = [], P.DownloadStats()
    P.download("I", plan, tmp_path / "s.tif", compute=FakeServer(plan, too_large_over=150 * 150), stats=stats,
               progress=lambda d, t, m: seen.append((d, t)))
    assert seen[-1] == (4, 4) and stats.bytes == plan.total_bytes  # the one request split in four, all done
