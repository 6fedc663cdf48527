"""What a threshold change costs the Predict page's downloads, against the region's size.

    python benchmarks/bench_exports.py [--repeats 1 2 4]

The shipped model's probability of the sample scene (1024 x 1024), repeated n x n. Timed, best of 3:
``core.downloads.threshold_downloads`` (the crop mask GeoTIFF and the map view PNG, what the page makes
for each new threshold) and ``core.downloads.probability_download`` (the probability GeoTIFF, made once
per prediction), beside the reference the page used before: all three files for each threshold, the
PNG coloured from every pixel of the region before it is reduced.
"""

from __future__ import annotations

import argparse

import numpy as np

from common import ROOT, save, timeit


def main() -> None:
    import core.downloads as dl
    import core.overlays as ov
    from core.mapimage import compose_png
    from core.card import DEFAULT_MODEL_PATH
    from core.model import load_model
    from core.predict import predict_array, probability_to_uint8, threshold_mask
    from core.grid import Grid
    from core.raster import read_image

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    feats, valid, grid = read_image(ROOT / "assets" / "sample" / "sample_rgbn.tif")
    prob = predict_array(load_model(DEFAULT_MODEL_PATH), feats, valid)
    t = 0.4
    rows = []
    for n in args.repeats:
        f, v, p = np.tile(feats, (n, n, 1)), np.tile(valid, (n, n)), np.tile(prob, (n, n))
        g = Grid(None, grid.transform, grid.width * n, grid.height * n)

        def before():  # every file at every threshold, the PNG coloured at full size
            png = compose_png([ov.true_colour(f, v), ov.with_opacity(ov.crop_colour(p, t), 0.6)],
                              [ov.class_legend(f"Crop (p >= {t:.2f})", ["predicted crop"])], "title")
            return (dl.geotiff_bytes(probability_to_uint8(p), g, 255, "crop probability (%)"),
                    dl.geotiff_bytes(threshold_mask(p, t), g, 255, "crop (1), not crop (0)"), png)

        rows.append({
            "side": g.width, "pixels": int(v.size),
            "per_threshold_s": timeit(lambda: dl.threshold_downloads(f, v, p, g, t, "title")),
            "once_per_prediction_s": timeit(lambda: dl.probability_download(p, g)),
            "before_per_threshold_s": timeit(before),
        })
        rows[-1]["speedup"] = rows[-1]["before_per_threshold_s"] / rows[-1]["per_threshold_s"]
        print(rows[-1], flush=True)
    save("exports", {"threshold": t, "rows": rows})


if __name__ == "__main__":
    main()
