"""Peak memory and time of ``python -m core evaluate`` against the size of the mask.

    python benchmarks/bench_evaluate.py [--repeats 4 8 12]

The mask is the shipped model's crop mask (threshold 0.5) of the sample scene (1024 x 1024 px of
Landsat 8, not georeferenced), the labels its CDL block; both are repeated n x n times (so that
larger rasters keep the real fields and classes) and written as tiled, DEFLATE-compressed GeoTIFFs,
as ``predict`` writes them. Each size is evaluated in a child process of its own, whose peak resident
memory (VmHWM) is reported beside its seconds (one run).
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

SAMPLE = ROOT / "assets" / "sample"

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from core.evaluate import evaluate_files
{hwm}t = time.perf_counter()
r = evaluate_files({pred!r}, {labels!r}, "cdl", out={out!r})
print(json.dumps({{"seconds": time.perf_counter() - t, "peak_rss_mb": hwm(), "valid_pixels": r["valid_pixels"],
                  "iou": r["iou"]}}))
"""


def write(path: Path, array: np.ndarray, nodata: int | None) -> None:
    import rasterio

    profile = {"driver": "GTiff", "width": array.shape[1], "height": array.shape[0], "count": 1,
               "dtype": array.dtype.name, "tiled": True, "blockxsize": 512, "blockysize": 512,
               "compress": "deflate", "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def main() -> None:
    from core.card import DEFAULT_MODEL_PATH
    from core.config import PredictConfig
    from core.bands import parse_band_spec
    from core.model import load_model
    from core.predict import predict_array, threshold_mask
    from core.raster import read_image
    import rasterio

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, nargs="+", default=[4, 8, 12])
    args = ap.parse_args()
    feats, valid, _ = read_image(SAMPLE / "sample_rgbn.tif", parse_band_spec("1,2,3,4"))
    mask = threshold_mask(predict_array(load_model(DEFAULT_MODEL_PATH), feats, valid, PredictConfig()), 0.5)
    with rasterio.open(SAMPLE / "sample_cdl.tif") as src:
        cdl, cdl_nodata = src.read(1), src.nodata
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in args.repeats:
            pred, labels = Path(d) / f"mask_{n}.tif", Path(d) / f"cdl_{n}.tif"
            write(pred, np.tile(mask, (n, n)), 255)
            write(labels, np.tile(cdl, (n, n)), cdl_nodata)
            code = CHILD.format(root=str(ROOT), pred=str(pred), labels=str(labels), out=str(Path(d) / f"m_{n}.json"),
                                hwm=HWM_CODE)
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append({"repeat": n, "width": 1024 * n, "height": 1024 * n, "pixels": (1024 * n) ** 2, **res})
            print(rows[-1], flush=True)
            pred.unlink()
            labels.unlink()
    save("evaluate", {"mask": "sample scene, shipped model, threshold 0.5", "label_map": "cdl", "rows": rows})


if __name__ == "__main__":
    main()
