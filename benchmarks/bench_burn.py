"""Memory and time of rasterizing polygons: region masks (``core.geometry.pixels_inside``) against rasterio's
``geometry_mask``, and surveyed fields burnt into a label raster (``core.field_labels.burn_fields``) as the
image grows.

    python benchmarks/bench_burn.py [--side 4096] [--finer 8 32] [--repeats 4 16] [--parts masks burn]

Region masks: a 4-vertex region over a ``side`` x ``side`` window (the local source's largest region is
4096 x 4096), each way in its own process (peak resident memory, VmHWM, above the process's own after the
imports), best of 3.

Fields: the shipped model's crop fields (threshold 0.5) of the georeferenced Sentinel-2 test image (Upper
Austria, 10 m, UTM 33N), traced to lon/lat GeoJSON with ``core.fields`` (real field shapes), burnt onto a grid
and written as the int16 label GeoTIFF (what the Data page's fields upload and ``python -m core labels`` do),
each in its own process: the image's 98 fields on grids of its extent with pixels ``--finer`` times smaller
(the image grows, the file does not: memory a pixel), and the fields of its mask repeated n x n on its grid
extended to the south-east (``--repeats``: the file grows with the image: time and memory a field).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import HWM_CODE, ROOT, save

FTW = ROOT / "tests" / "data" / "georef" / "ftw_austria_s2_2021-06-17_window.tif"

MASK_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from rasterio.features import geometry_mask
from rasterio.transform import Affine
from core.geometry import pixels_inside
{hwm}n = {side}
geom = {{"type": "Polygon", "coordinates": [[[0, 0], [n, 0], [n, 0.7 * n], [0, n], [0, 0]]]}}
ways = {{"geometry_mask": lambda: geometry_mask([geom], out_shape=(n, n), transform=Affine.identity(), invert=True),
        "pixels_inside": lambda: pixels_inside([geom], (n, n), Affine.identity())}}
before = hwm()
best, inside = float("inf"), 0
for _ in range(3):
    t = time.perf_counter()
    m = ways[{way!r}]()
    best = min(best, time.perf_counter() - t)
    inside = int(m.sum())
    del m
print(json.dumps({{"seconds": best, "peak_above_mb": hwm() - before, "inside": inside}}))
"""

BURN_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
import rasterio
from core.field_labels import burn_fields
from core.grid import Grid
from core.raster import write_codes
{hwm}fc = json.load(open({fields!r}))
crs, transform, width, height = json.load(open({grid!r}))
grid = Grid(crs, tuple(transform), width, height)
before = hwm()
t = time.perf_counter()
burnt = burn_fields(fc, grid, "crop")
mid = time.perf_counter()
write_codes({out!r}, burnt.codes, grid, description="crop")
print(json.dumps({{"burn_seconds": mid - t, "write_seconds": time.perf_counter() - mid, "peak_above_mb": hwm() - before,
                  "labelled_pixels": burnt.labelled_pixels}}))
"""


def child(code: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr.strip().splitlines()[-1])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    from core.bands import parse_band_spec
    from core.card import DEFAULT_MODEL_PATH
    from core.config import PredictConfig
    from core.fields import crop_fields
    from core.grid import Grid
    from core.model import load_model
    from core.predict import predict_array, threshold_mask
    from core.raster import read_image

    ap = argparse.ArgumentParser()
    ap.add_argument("--side", type=int, default=4096)
    ap.add_argument("--finer", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--repeats", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--parts", nargs="+", choices=["masks", "burn"], default=["masks", "burn"])
    args = ap.parse_args()

    out: dict = {"side": args.side, "image": FTW.name}
    if "masks" in args.parts:
        masks = {}
        for way in ("geometry_mask", "pixels_inside"):
            masks[way] = child(MASK_CHILD.format(root=str(ROOT), hwm=HWM_CODE, side=args.side, way=way))
            print(way, masks[way], flush=True)
        if masks["geometry_mask"]["inside"] != masks["pixels_inside"]["inside"]:
            raise SystemExit("the two masks differ")
        out.update(masks=masks,
                   mask_memory_ratio=masks["geometry_mask"]["peak_above_mb"] / masks["pixels_inside"]["peak_above_mb"],
                   mask_speedup=masks["geometry_mask"]["seconds"] / masks["pixels_inside"]["seconds"])
    if "burn" not in args.parts:
        save("burn", out)
        return
    feats, valid, grid = read_image(FTW, parse_band_spec("1,2,3,4"))
    mask = threshold_mask(predict_array(load_model(DEFAULT_MODEL_PATH), feats, valid, PredictConfig()), 0.5)
    a, b, c, d, e, f = grid.transform
    cases = [("finer", k, Grid(grid.crs, (a / k, b, c, d, e / k, f), grid.width * k, grid.height * k), mask)
             for k in args.finer]
    cases += [("repeats", n, Grid(grid.crs, grid.transform, grid.width * n, grid.height * n), np.tile(mask, (n, n)))
              for n in args.repeats]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, n, g, traced in cases:
            on = Grid(grid.crs, grid.transform, traced.shape[1], traced.shape[0])
            fc = crop_fields(traced, on, min_pixels=4)
            for feat in fc["features"]:
                feat["properties"]["crop"] = 1
            fields, grid_file = Path(tmp) / "fields.geojson", Path(tmp) / "grid.json"
            fields.write_text(json.dumps(fc))
            grid_file.write_text(json.dumps([g.crs, list(g.transform), g.width, g.height]))
            res = child(BURN_CHILD.format(root=str(ROOT), hwm=HWM_CODE, fields=str(fields), grid=str(grid_file),
                                          out=str(Path(tmp) / f"labels_{kind}_{n}.tif")))
            rows.append({"case": kind, "n": n, "width": g.width, "height": g.height, "pixels": g.width * g.height,
                         "fields": len(fc["features"]), "geojson_mb": fields.stat().st_size / 1e6, **res,
                         "bytes_per_pixel": res["peak_above_mb"] * 2**20 / (g.width * g.height)})
            print(rows[-1], flush=True)
    save("burn", {**out, "rows": rows})

if __name__ == "__main__":
    main()
