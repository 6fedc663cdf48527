"""The Data page's first visit to a large region: seconds and peak memory, this checkout against an
earlier commit (its own git worktree), alternating, in one run.

    .venv/bin/python benchmarks/bench_data_page.py [--repeat 4] [--before REV] [--runs 2]

The image is the sample scene (1,024 x 1,024 px of Landsat 8 with its CDL block, in image coordinates)
repeated ``repeat`` x ``repeat`` times (4: 4,096 x 4,096 px, 16.8 Mpx), mirrored at every other copy so
the fields meet; the region is the whole image. Each visit runs in a child process of its own with an
empty work folder (cold caches: the region's scene is cut, written, read back and drawn), driven by
Streamlit's AppTest with the map component stubbed; its peak resident memory is VmHWM.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import HWM_CODE, ROOT, alternating_runs, before_now_args, save

SAMPLE = ROOT / "assets" / "sample"

CHILD = """
import json, os, sys, tempfile, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"; os.environ["USE_FOLIUM"] = "1"
sys.path.insert(0, {root!r} + "/tests"); sys.path.insert(0, {root!r})
os.environ["CROPMAP_WORKDIR"] = tempfile.mkdtemp(dir={tmp!r})
from apptest import FakeMap, new_app
from pages.components import mapview
import pages.components.cached, core.overlays, core.raster, core.sources.local, geemap.foliumap, folium  # (not timed)
mapview._st_folium = FakeMap()
{hwm}at = new_app()
at.default_timeout = 900
at.session_state["source"] = {{"kind": "local", "image": {image!r}, "labels": {labels!r}, "label_map": "cdl",
                               "title": "big", "band_map": None}}
at.switch_page("pages/data.py")
t = time.perf_counter()
at.run()
seconds = time.perf_counter() - t
print(json.dumps({{"seconds": seconds, "peak_rss_mb": hwm(), "errors": [e.value for e in at.error][:2],
                  "exception": bool(at.exception), "metrics": [m.label + "=" + m.value for m in at.metric]}}))
"""


def mosaic(array: np.ndarray, n: int) -> np.ndarray:
    """``array`` (..., h, w) repeated n x n times, every other copy mirrored (the fields meet at the seams)."""
    rows = []
    for i in range(n):
        row = [array[..., ::-1 if i % 2 else 1, ::-1 if j % 2 else 1] for j in range(n)]
        rows.append(np.concatenate(row, axis=-1))
    return np.ascontiguousarray(np.concatenate(rows, axis=-2))


def write_inputs(folder: Path, n: int) -> tuple[Path, Path]:
    """The sample's image and CDL labels repeated n x n times, as tiled DEFLATE GeoTIFFs without a CRS."""
    import rasterio

    out = []
    for name, count in (("sample_rgbn.tif", 4), ("sample_cdl.tif", 1)):
        with rasterio.open(SAMPLE / name) as src:
            data, profile = mosaic(src.read(), n), src.profile
            descriptions = src.descriptions
        profile.update(width=data.shape[2], height=data.shape[1], tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate")
        path = folder / f"big_{name}"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            for i, d in enumerate(descriptions[:count], start=1):
                if d:
                    dst.set_band_description(i, d)
        out.append(path)
    return out[0], out[1]


def visit(root: Path, image: Path, labels: Path, tmp: Path) -> dict:
    code = CHILD.format(root=str(root), tmp=str(tmp), hwm=HWM_CODE, image=str(image), labels=str(labels))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"the Data page failed in {root}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = before_now_args(__doc__, 2, "visits of each checkout, alternating")
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp_name:
        tmp = Path(tmp_name)
        image, labels = write_inputs(tmp, args.repeat)
        runs = alternating_runs(args.before, tmp, args.runs, lambda root: visit(root, image, labels, tmp))
    side = args.repeat * 1024
    summary = {name: {"best_seconds": round(min(r["seconds"] for r in rs), 2),
                      "seconds": [round(r["seconds"], 2) for r in rs],
                      "peak_rss_mb": round(max(r["peak_rss_mb"] for r in rs)), "metrics": rs[-1]["metrics"]}
               for name, rs in runs.items()}
    if "before" in summary:
        summary["speedup"] = round(summary["before"]["best_seconds"] / summary["now"]["best_seconds"], 2)
    result = {"image_px": f"{side} x {side}", "megapixels": round(side * side / 1e6, 1), "before": args.before,
              **summary}
    print(json.dumps(result, indent=1))
    save("data_page", result)


if __name__ == "__main__":
    main()
