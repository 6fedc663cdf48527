"""Prediction pipeline against the bare model, and peak memory against image size.

    python benchmarks/bench_predict.py [--sizes 4096 8192] [--throughput-size 2048]

1. Throughput: the whole pipeline (read -> normalize -> infer -> blend -> write COGs) over an image,
   against the bare model applied to the same tiles already in memory. Ratio = bare time / pipeline time.
2. Memory: peak resident memory of a separate process predicting an N x N image, for each size.

Input images are mosaics of the real sample scene (the 1024 x 1024 block repeated), written as tiled
GeoTIFFs in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import HWM_CODE, RESULTS, ROOT, save

SAMPLE = ROOT / "assets" / "sample" / "sample_rgbn.tif"


def mosaic(path: Path, size: int) -> Path:
    """Write a size x size mosaic of the sample scene, one block row at a time."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(SAMPLE) as src:
        block = src.read()
        prof = src.profile.copy()
        desc = src.descriptions
    prof.update(width=size, height=size, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(path, "w", **prof) as dst:
        for r in range(0, size, 1024):
            h = min(1024, size - r)
            row = np.concatenate([block[:, :h]] * ((size + 1023) // 1024), axis=2)[:, :, :size]
            dst.write(row, window=Window(0, r, size, h))
        dst.descriptions = desc
    return path


def throughput(size: int, workdir: Path, repeat: int = 2) -> dict:
    from core.config import PredictConfig
    from core.model import load_model
    from core.predict import ModelRunner, model_lattice, predict_image, tile_origins
    from core.raster import ImageReader

    img = mosaic(workdir / f"mosaic_{size}.tif", size)
    loaded = load_model()
    lattice = model_lattice(loaded.model)
    cfg = PredictConfig().resolve(None, lattice)
    # Pipeline (warm the model first so both sides exclude tracing).
    runner = ModelRunner(loaded.model, cfg.batch_size)
    runner(np.zeros((cfg.batch_size, cfg.tile, cfg.tile, 5), np.float32))
    pipeline = float("inf")
    for _ in range(repeat):  # best of `repeat` for both sides: run-to-run noise here is ~5%
        t = time.perf_counter()
        summary = predict_image(img, workdir / "out", config=cfg, overwrite=True, loaded=loaded)
        pipeline = min(pipeline, time.perf_counter() - t)
    # Bare model on the same tiles: every tile position the pipeline visits, already normalized in memory.
    starts = tile_origins(size, cfg.tile, cfg.step, 0, lattice)
    n_tiles = len(starts) ** 2
    with ImageReader(img) as r:
        feats, valid = r.read()
    x = loaded.card.normalization.apply(feats, valid)
    pad = np.zeros((size + 2 * cfg.tile, size + 2 * cfg.tile, 5), np.float32)
    pad[cfg.tile : cfg.tile + size, cfg.tile : cfg.tile + size] = x
    del feats, valid, x
    tiles_per_row = np.empty((len(starts), cfg.tile, cfg.tile, 5), np.float32)
    bare = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for rs in starts:
            for k, cs in enumerate(starts):
                tiles_per_row[k] = pad[rs + cfg.tile : rs + 2 * cfg.tile, cs + cfg.tile : cs + 2 * cfg.tile]
            runner(tiles_per_row)
        bare = min(bare, time.perf_counter() - t)
    return {"size": size, "tiles": n_tiles, "pipeline_seconds": pipeline, "bare_model_seconds": bare,
            "pipeline_tiles_per_s": n_tiles / pipeline, "bare_tiles_per_s": n_tiles / bare,
            "ratio_pipeline_over_bare": bare / pipeline, "crop_fraction": summary["crop_fraction"], "best_of": repeat}


# Peak RSS: hwm() of common.HWM_CODE.
CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from core.predict import predict_image
{hwm}t = time.perf_counter()
s = predict_image({img!r}, {out!r}, overwrite=True)
print(json.dumps({{"seconds": time.perf_counter() - t, "peak_rss_mb": hwm(), "pixels": s["pixels"]}}))
"""


def memory(size: int, workdir: Path) -> dict:
    img = mosaic(workdir / f"mosaic_{size}.tif", size)
    code = CHILD.format(root=str(ROOT), img=str(img), out=str(workdir / f"mem_{size}"), hwm=HWM_CODE)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    img.unlink()
    return {"size": size, **res}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--only-memory", action="store_true", help="keep the last throughput figures")
    ap.add_argument("--throughput-size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs for each side")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        old = RESULTS / "predict.json"
        if args.only_memory and old.exists():
            out = {"throughput": json.loads(old.read_text())["throughput"],
                   "throughput_measured": json.loads(old.read_text())["machine"]["date"]}
        else:
            out = {"throughput": throughput(args.throughput_size, Path(d), args.repeat)}
        if args.skip_memory:  # keep the memory figures of the last full run
            old = RESULTS / "predict.json"
            if old.exists() and "memory" in json.loads(old.read_text()):
                out["memory"] = json.loads(old.read_text())["memory"]
                out["memory_measured"] = json.loads(old.read_text())["machine"]["date"]
        else:
            out["memory"] = [memory(s, Path(d)) for s in args.sizes]
        save("predict", out)


if __name__ == "__main__":
    main()
