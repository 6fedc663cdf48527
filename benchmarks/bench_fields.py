"""Tracing crop fields into GeoJSON (core.fields) against the size of the mask.

    python benchmarks/bench_fields.py [--repeats 1 4 16]

The mask is the shipped model's crop mask (threshold 0.5) of the georeferenced Sentinel-2 test image
(Upper Austria, 288 x 272 px at 10 m, UTM 33N), repeated n x n times on its own grid extended to the
south-east, so that larger masks keep the real fields' shapes. Timed: tracing, areas, reprojection
to lon/lat and the compact GeoJSON text (what the Predict page's button and ``python -m core fields``
do), best of 3 (1 for the largest).
"""

from __future__ import annotations

import argparse

import numpy as np

from common import ROOT, save, timeit

FTW = ROOT / "tests" / "data" / "georef" / "ftw_austria_s2_2021-06-17_window.tif"


def main() -> None:
    from core.config import PredictConfig
    from core.fields import crop_fields, fields_bytes
    from core.card import DEFAULT_MODEL_PATH
    from core.model import load_model
    from core.predict import predict_array, threshold_mask
    from core.bands import parse_band_spec
    from core.grid import Grid
    from core.raster import read_image

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, nargs="+", default=[1, 4, 16])
    args = ap.parse_args()
    feats, valid, grid = read_image(FTW, parse_band_spec("1,2,3,4"))
    mask = threshold_mask(predict_array(load_model(DEFAULT_MODEL_PATH), feats, valid, PredictConfig()), 0.5)
    rows = []
    for n in args.repeats:
        big = np.tile(mask, (n, n))
        g = Grid(grid.crs, grid.transform, grid.width * n, grid.height * n)
        out = {}

        def run():
            fc = crop_fields(big, g, min_pixels=4)
            out["fields"], out["bytes"] = len(fc["features"]), len(fields_bytes(fc))

        seconds = timeit(run, repeat=3 if big.size < 5_000_000 else 1, warmup=0)
        rows.append({"repeat": n, "width": g.width, "height": g.height, "pixels": int(big.size),
                     "crop_pixels": int((big == 1).sum()), "fields": out["fields"], "geojson_mb": out["bytes"] / 1e6,
                     "seconds": seconds, "mpx_per_s": big.size / 1e6 / seconds})
        print(rows[-1], flush=True)
    save("fields", {"image": FTW.name, "threshold": 0.5, "min_pixels": 4, "rows": rows})


if __name__ == "__main__":
    main()
