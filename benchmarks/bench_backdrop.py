"""The Region page's backdrop of a whole source image: time and peak memory against image size.

Each size is a mosaic of the sample scene (``bench_predict.mosaic``), previewed in a separate
process by ``core.overlays.image_preview``, as the dashboard makes it (the image read as an overview of at most
2,048 px a side, then drawn at 1,024 px); size 0 is the same process without the preview (the
imports alone). Peak memory is VmHWM, as in ``bench_predict.py``.

    python benchmarks/bench_backdrop.py [--sizes 0 2048 6144 12288]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_predict import mosaic
from common import HWM_CODE, ROOT, save

CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
import rasterio
from core.overlays import image_preview
{hwm}t = time.perf_counter()
width = image_preview({img!r})[0].width if {img!r} else 0
print(json.dumps({{"seconds": time.perf_counter() - t, "peak_rss_mb": hwm(), "preview_width": width}}))
"""


def preview(size: int, workdir: Path) -> dict:
    img = str(mosaic(workdir / f"mosaic_{size}.tif", size)) if size else ""
    r = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), img=img, hwm=HWM_CODE)], capture_output=True,
                       text=True, check=True)
    if img:
        Path(img).unlink()
    return {"size": size, **json.loads(r.stdout.strip().splitlines()[-1])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 2048, 6144, 12288])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = [preview(s, Path(d)) for s in args.sizes]
    save("backdrop", {"backdrop": rows})
    print("| image | preview, s | peak memory, MB |\n|---|---|---|")
    for r in rows:
        name = f"{r['size']:,} x {r['size']:,} px" if r["size"] else "imports alone"
        print(f"| {name} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
