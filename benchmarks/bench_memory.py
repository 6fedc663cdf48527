"""Extra peak memory and time of one call of each function the memory review cut whole-image temporaries
from, now against an earlier commit.

    python benchmarks/bench_memory.py [--before 0140af9] [--sizes 2048 8192] [--app-sizes 2048 4096] [--cases ...]
                                      [--name memory]

Each case is one call, as the dashboard or the CLI makes it, in a child process of its own: its inputs are
loaded first, the heap they freed given back (malloc_trim), then /proc/self/clear_refs resets the peak (VmHWM)
to the resident memory (VmRSS), and the call's extra peak is VmHWM after it less VmRSS before it (the array it
returns included), reported in MB and in bytes a pixel of the n x n image, beside its seconds. The earlier
commit (``--before``, a git worktree of it in a temporary folder, removed after) and this checkout run each
case in turn, the earlier first, so that a busy moment of the machine falls on both; the child prints a
checksum of what the call returned (and of the files it wrote), which must match. Cases and their calls:

- to_mask: ``ClassMap.to_mask`` of the uint8 CDL codes (as ``read_labels`` calls it);
- threshold_curve: the Quality page's curve, at every value of the threshold slider;
- class_errors: the Quality page's errors by class at threshold 0.5 (int16 codes, their crop mask, areas);
- probability_to_uint8: a whole probability, as the dashboard's probability download converts it;
- patch_windows: a labelled mask's training windows, as ``patches`` finds them (256 px, stride 8, 0.5
  labelled; without its extra offsets), ``_valid_windows`` and ``_covered``;
- spatial_holdout: a training job's held-out block (256 px patches, both classes);
- image_read: ``ImageReader.read`` of the whole n x n window (a region fetched from a local scene);
- resample_files: ``python -m core resample`` of image and labels from 30 to 60 m;
- resample_files_75m: the same to 75 m, 2.5 old pixels a new one (as 10 to 25 m): partial pixels weighed;
- read_crop_mask: a uint8 crop mask file read (``crop_mask_values``; ``fields`` and ``zones`` read it).

The dashboard's cases (threshold_curve, class_errors, probability_to_uint8, image_read) run at
``--app-sizes`` (its scenes are at most 4096 px a side), the others at ``--sizes``. Inputs: the shipped
sample scene (``assets/sample``: 1024 x 1024 px of Landsat 8 and its CDL block) tiled n x n px with np.tile
and written as tiled DEFLATE GeoTIFFs, given a UTM CRS (EPSG:32614, 30 m pixels) for these measurements alone:
the sample has none, and resampling and areas need one; no location is claimed for it, and no figure here is a
place's. The probability is made from the labels, not the model: 0.8 where they say
crop, 0.2 where not, plus normal noise (sd 0.15, np.random.default_rng(0)), clipped to 0-1, NaN where they
have no data; the crop mask is that probability at 0.5 (core.predict.threshold_mask).
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
import ctypes, gc, glob, hashlib, json, os, shutil, sys, time
sys.path.insert(0, {root!r})
import numpy as np
import rasterio
{hwm}
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def digest(x, h):
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, np.ndarray):
        h.update(f"{{x.shape}}{{x.dtype.str}}".encode()); h.update(np.ascontiguousarray(x).tobytes())
    elif isinstance(x, dict):
        for k in sorted(x):
            h.update(str(k).encode()); digest(x[k], h)
    elif isinstance(x, (list, tuple)):
        for v in x:
            digest(v, h)
    else:  # (floats to 9 digits: sums taken a part at a time may differ in the last bits)
        h.update((f"{{x:.9g}}" if isinstance(x, float) else repr(x)).encode())
    return h

n, img, lab, mask, out = {n}, {img!r}, {lab!r}, {mask!r}, {out!r}
shutil.rmtree(out, ignore_errors=True); os.makedirs(out)
prob = np.load({prob!r}) if {needs_prob} else None
{setup}
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)  # (freed heap given back: not counted as in use before)
open("/proc/self/clear_refs", "w").write("5")
r0 = rss(); t = time.perf_counter()
result = {call}
seconds = time.perf_counter() - t
peak = hwm() - r0
files = [rasterio.open(p).read() for p in sorted(glob.glob(os.path.join(out, "*.tif")))]
check = digest([result, files], hashlib.sha1()).hexdigest()[:16]
print(json.dumps({{"seconds": seconds, "peak_above_mb": peak, "checksum": check}}))
"""

# name: (a dashboard case (at --app-sizes), setup, the call)
CASES = {
    "to_mask": (False, "from core.labels import get_class_map; cm = get_class_map('cdl')\n"
                       "codes = rasterio.open(lab).read(1)", "cm.to_mask(codes)"),
    "threshold_curve": (True, "from core.labels import get_class_map; from core.metrics import threshold_curve\n"
                              "from core.raster import read_labels; m = read_labels(lab, get_class_map('cdl'))\n"
                              "from pages.components.state import THRESHOLD_SLIDER as S\n"
                              "th = np.round(np.arange(S['min_value'], S['max_value'] + S['step'] / 2, S['step']), 2)",
                        "threshold_curve(prob, m, th)"),
    "class_errors": (True, "from core.labels import get_class_map; from core.metrics import class_errors\n"
                           "from core.raster import grid_of_file, read_label_classes\n"
                           "m, codes = read_label_classes(lab, get_class_map('cdl'))\n"
                           "from core.predict import threshold_mask; pred = threshold_mask(prob, 0.5)\n"
                           "pa = grid_of_file(img).pixel_area_ha()", "class_errors(codes, m, pred, pa)"),
    "probability_to_uint8": (True, "from core.predict import probability_to_uint8", "probability_to_uint8(prob)"),
    "patch_windows": (False, "from core.dataset import patch_windows; from core.labels import get_class_map\n"
                             "from core.raster import read_labels\n"
                             "labelled = read_labels(lab, get_class_map('cdl')) != 255",
                      "patch_windows([labelled], 256, 0.5, stride=8)"),
    "spatial_holdout": (False, "from core.dataset import spatial_holdout",
                        "spatial_holdout(img, lab, 'cdl', out, 256, both_classes=True)"),
    "image_read": (True, "from rasterio.windows import Window; from core.raster import ImageReader\n"
                         "reader = ImageReader(img).__enter__()", "reader.read(Window(0, 0, n, n))"),
    "resample_files": (False, "from core.resample import resample_files",
                       "resample_files(img, out + '/im.tif', 60.0, lab, out + '/lab.tif', 'cdl', overwrite=True)"),
    "resample_files_75m": (False, "from core.resample import resample_files",
                           "resample_files(img, out + '/im.tif', 75.0, lab, out + '/lab.tif', 'cdl', overwrite=True)"),
    "read_crop_mask": (False, "from core.evaluate import read_crop_mask", "read_crop_mask(mask)[0]"),
}


def write_inputs(folder: Path, n: int) -> dict[str, str]:
    """The sample scene tiled to n x n px: image, labels, crop mask GeoTIFFs and the probability (.npy)."""
    import rasterio
    from rasterio.transform import Affine

    from core.labels import NODATA, get_class_map
    from core.predict import threshold_mask

    with rasterio.open(SAMPLE / "sample_rgbn.tif") as src:
        image, descriptions, image_nodata = src.read(), src.descriptions, src.nodata
    with rasterio.open(SAMPLE / "sample_cdl.tif") as src:
        codes, codes_nodata = src.read(1), src.nodata
    labels = get_class_map("cdl").to_mask(codes)
    noise = np.random.default_rng(0).normal(0, 0.15, labels.shape)
    prob = np.where(labels == NODATA, np.nan, np.clip(np.where(labels == 1, 0.8, 0.2) + noise, 0, 1)).astype(np.float32)
    k = -(-n // 1024)
    tile = lambda a: np.tile(a, (1,) * (a.ndim - 2) + (k, k))[..., :n, :n]  # noqa: E731
    profile = {"driver": "GTiff", "width": n, "height": n, "crs": "EPSG:32614",
               "transform": Affine(30, 0, 500000, 0, -30, 5300000),
               "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "zlevel": 1}
    paths = {key: str(folder / f"{key}_{n}.tif") for key in ("img", "lab", "mask")}
    for key, array, nodata in (("img", tile(image), image_nodata), ("lab", tile(codes)[None], codes_nodata),
                               ("mask", threshold_mask(tile(prob), 0.5)[None], 255)):
        with rasterio.open(paths[key], "w", count=len(array), dtype=array.dtype.name, nodata=nodata, **profile) as dst:
            dst.write(array)
            if key == "img":
                dst.descriptions = descriptions
    paths["prob"] = str(folder / f"prob_{n}.npy")
    np.save(paths["prob"], tile(prob))
    return paths


def child(root: Path, case: str, n: int, paths: dict[str, str], out: str) -> dict:
    _, setup, call = CASES[case]
    code = CHILD.format(root=str(root), hwm=HWM_CODE, n=n, img=paths["img"], lab=paths["lab"], mask=paths["mask"],
                        prob=paths["prob"], needs_prob="prob" in setup + call, out=out, setup=setup, call=call)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    if r.returncode:
        raise SystemExit(f"{case} {n} px in {root}: {r.stderr.strip()[-2000:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    return {**res, "bytes_per_pixel": res["peak_above_mb"] * 2**20 / (n * n)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="0140af9", help="the earlier commit (a git worktree of it; default: the last "
                    "before the memory review)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192], help="px a side of the CLI's cases")
    ap.add_argument("--app-sizes", type=int, nargs="+", default=[2048, 4096], help="px a side of the dashboard's")
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    ap.add_argument("--name", default="memory", help="the results file, benchmarks/results/NAME.json (a run of a few "
                    "cases to another name keeps the full run's)")
    args = ap.parse_args()
    before = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.before], check=True,
                            capture_output=True, text=True).stdout.strip()
    now = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    if subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD"]).returncode:  # (this checkout measured)
        now += " with uncommitted changes"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), before], check=True,
                       capture_output=True)
        try:
            for n in sorted({*args.sizes, *args.app_sizes}):
                cases = [c for c in args.cases if n in (args.app_sizes if CASES[c][0] else args.sizes)]
                if not cases:
                    continue
                paths = write_inputs(Path(tmp), n)
                for case in cases:
                    res = {name: child(root, case, n, paths, str(Path(tmp) / "out"))
                           for name, root in (("before", tree), ("now", ROOT))}
                    if res["before"]["checksum"] != res["now"]["checksum"]:
                        print(f"warning: {case} at {n} px returned something else before", flush=True)
                    rows.append({"case": case, "side": n, "pixels": n * n, **res,
                                 "same_result": res["before"]["checksum"] == res["now"]["checksum"],
                                 "memory_ratio": res["now"]["peak_above_mb"] / res["before"]["peak_above_mb"],
                                 "speedup": res["before"]["seconds"] / res["now"]["seconds"]})
                    print(case, n, {k: round(v["peak_above_mb"], 1) for k, v in res.items()}, "MB, ratio",
                          round(rows[-1]["memory_ratio"], 2), flush=True)
                for p in paths.values():
                    Path(p).unlink()
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    save(args.name, {"before": before, "now": now, "inputs": "assets/sample tiled n x n px, EPSG:32614 30 m; "
                     "probability from the labels (0.8 crop / 0.2 not, noise sd 0.15, seed 0)", "rows": rows})


if __name__ == "__main__":
    main()
