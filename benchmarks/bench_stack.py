"""Stacking a download's band files (core.stack) against the scene's size: time and peak memory.

    python benchmarks/bench_stack.py [--sides 1920 3840 7680]

The band files are the Landsat 8 test fixture (Flanders, 64 x 64 px, tests/data/georef) written as
Collection 2 Level-2 band files (SR_B2..B5 + QA_PIXEL, as tests/test_stack.py writes them) and repeated
to a side of n px on its own grid extended to the south-east: 7,680 px is about a Landsat scene's
7,700 x 7,800. Each side is stacked in a separate process (peak RSS: VmHWM), whole, into a tiled
DEFLATE GeoTIFF.
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

FIXTURE = ROOT / "tests" / "data" / "georef" / "000028085BF08E7E_L8SR_2019-08-05_B02_B03_B04_B05.tif"

CHILD = HWM_CODE + '''
import json, sys, time
sys.path.insert(0, {root!r})
from core.stack import find_band_files, stack_bands
t = time.perf_counter()
done = stack_bands(find_band_files([{folder!r}]), {out!r})
print(json.dumps({{"seconds": time.perf_counter() - t, "peak_rss_mb": hwm(), "pixels": done["width"] * done["height"],
                  "out_mb": __import__("os").path.getsize({out!r}) / 1e6}}))
'''


def write_download(folder: Path, side: int) -> None:
    """The fixture as Collection 2 Level-2 band files, repeated to ``side`` x ``side`` px."""
    import rasterio

    from core.stack import LANDSAT_C2_SCALING

    scale, offset = LANDSAT_C2_SCALING
    with rasterio.open(FIXTURE) as src:
        refl, profile = src.read(), src.profile
    reps = -(-side // refl.shape[1])
    profile.update(count=1, dtype="uint16", width=side, height=side, nodata=None, tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate")
    stored = np.round((refl - offset) / scale).astype(np.uint16)
    for band, values in zip((2, 3, 4, 5), stored):
        with rasterio.open(folder / f"LC08_L2SP_bench_SR_B{band}.TIF", "w", **profile) as dst:
            dst.write(np.tile(values, (reps, reps))[:side, :side], 1)
    with rasterio.open(folder / "LC08_L2SP_bench_QA_PIXEL.TIF", "w", **profile) as dst:
        dst.write(np.zeros((side, side), np.uint16), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sides", type=int, nargs="+", default=[1920, 3840, 7680])
    args = ap.parse_args()
    rows = []
    for side in args.sides:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "download"
            folder.mkdir()
            write_download(folder, side)
            code = CHILD.format(root=str(ROOT), folder=str(folder), out=str(Path(tmp) / "image.tif"))
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            row = {"side": side, **json.loads(res.stdout.strip().splitlines()[-1])}
            row["mpx_per_s"] = row["pixels"] / 1e6 / row["seconds"]
            rows.append(row)
            print(row, flush=True)
    save("stack", {"fixture": FIXTURE.name, "rows": rows})


if __name__ == "__main__":
    main()
