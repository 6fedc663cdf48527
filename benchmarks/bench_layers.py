"""A threshold step's map layers on large regions: colouring the whole probability, then keeping 1 pixel
in n for the overlay (before), against colouring only the pixels the overlay keeps
(``core.overlays.pixelwise_overlay``, the dashboard's crop, probability and disagreement layers).

    python benchmarks/bench_layers.py [--sizes 1024 2048 4096]

The probability is the shipped model's on the sample scene (1,024 px, in image coordinates), repeated
to each size; the georeferenced rows use the Sentinel-2 test image of Upper Austria (UTM 33N, 10 m),
predicted and repeated the same way on its own grid grown to the size (the web map's reprojection).
Both ways must give the same PNG; the figures are best-of-3 seconds for the crop layer at one threshold.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

from common import ROOT, save, timeit

SAMPLE = ROOT / "assets" / "sample" / "sample_rgbn.tif"
AUSTRIA = ROOT / "tests" / "data" / "georef" / "ftw_austria_s2_2021-06-17_window.tif"


def probability(path, band_map=None) -> tuple[np.ndarray, object]:
    from core.model import load_model
    from core.predict import predict_array
    from core.raster import ImageReader

    with ImageReader(path, band_map) as reader:
        feats, valid = reader.read()
        grid = reader.grid
    return predict_array(load_model(), feats, valid), grid


def main() -> None:
    from core import overlays as ov
    from core.grid import Grid

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    args = ap.parse_args()
    sources = {"image coordinates (sample scene)": probability(SAMPLE),
               "UTM 33N (Upper Austria, Sentinel-2)": probability(AUSTRIA, {"R": 1, "G": 2, "B": 3, "NIR": 4})}
    rows = []
    for name, (prob, grid) in sources.items():
        for size in args.sizes:
            big = np.tile(prob, (-(-size // prob.shape[0]), -(-size // prob.shape[1])))[:size, :size]
            g = Grid(grid.crs, grid.transform, size, size)
            whole = partial(ov.make_overlay, "Crop")
            before = timeit(lambda: whole(ov.crop_colour(big, 0.5), g), repeat=3)
            after = timeit(lambda: ov.pixelwise_overlay("Crop", partial(ov.crop_colour, threshold=0.5), [big], g),
                           repeat=3)
            same = (whole(ov.crop_colour(big, 0.5), g).png
                    == ov.pixelwise_overlay("Crop", partial(ov.crop_colour, threshold=0.5), [big], g).png)
            rows.append({"grid": name, "size": size, "whole_s": round(before, 3), "kept_s": round(after, 3),
                         "speedup": round(before / after, 1), "same_png": same})
            print(rows[-1])
    save("layers", {"rows": rows})


if __name__ == "__main__":
    main()
