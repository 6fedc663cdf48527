"""Earth Engine direct-download benchmark with a fake computePixels server (no network).

1. How the request plan scales with region size (requests, bytes, largest request).
2. How concurrency hides per-request latency: throughput vs max_workers (1, 2, 4, 8, 16) for
   several tile sizes, with a fake server that sleeps LATENCY + bytes / BANDWIDTH per request.

The whole pipeline runs for real (planning, thread pool, retries wrapper, array conversion,
GeoTIFF assembly with deflate, atomic rename); only the server is fake.

    .venv/bin/python benchmarks/bench_ee.py [--quick] [--latency 0.3] [--mbps 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.ee.pixels import MAX_REQUEST_BYTES, DownloadStats, download, plan_requests  # noqa: E402

BANDS4 = ("R", "G", "B", "NIR")


class FakeServer:
    """Sleeps latency + bytes / bandwidth, then returns a structured array like NUMPY_NDARRAY."""

    def __init__(self, latency: float, bytes_per_s: float):
        self.latency = latency
        self.bytes_per_s = bytes_per_s
        self.requests = 0

    def __call__(self, req: dict):
        dims = req["grid"]["dimensions"]
        w, h = dims["width"], dims["height"]
        bands = req["bandIds"]
        nbytes = w * h * len(bands) * 4
        time.sleep(self.latency + nbytes / self.bytes_per_s)
        self.requests += 1
        out = np.empty((h, w), dtype=[(b, "<f4") for b in bands])
        for i, b in enumerate(bands):
            out[b] = 0.1 * (i + 1)
        return out


def plan_table() -> list[str]:
    lines = [
        "| region (km a side) | scale | bands x dtype | grid (px) | MB total | requests | largest request MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for scale, bands, dtype, label in ((30, BANDS4, "float32", "4 x float32"), (10, BANDS4, "float32", "4 x float32"), (30, ("class",), "int16", "1 x int16 (class codes)"), (30, ("label",), "uint8", "1 x uint8 (asset mask)")):
        for km in (10, 25, 50, 100, 200, 500):
            side = km * 1000.0
            p = plan_requests((0, 0, side, side), scale, bands, dtype, "EPSG:32718")
            biggest = max(t.nbytes for t in p.tiles)
            lines.append(
                f"| {km} | {scale} m | {label} | {p.width} x {p.height} | {p.total_bytes / 1e6:,.1f} | {p.requests} | {biggest / 1e6:.1f} |"
            )
    return lines


def concurrency_table(latency: float, mbps: float, quick: bool) -> list[str]:
    km = 30 if quick else 60  # 30 m pixels: 1000 x 1000 or 2000 x 2000 px, 4 float32 bands
    side = km * 1000.0
    workers_list = (1, 2, 4, 8, 16)
    tile_sides = ("target", None, 512, 256) if not quick else ("target", None, 256)
    lines = [
        f"Region {km} km x {km} km at 30 m, 4 x float32; fake server: {latency:.2f} s + bytes / {mbps:.0f} MB/s per request.",
        "",
        "| tile side | requests | MB | workers | wall s | MB/s | requests/s | speed-up vs 1 worker |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ts in tile_sides:
        base = None
        for workers in workers_list:
            if ts == "target":  # what core.sources.earthengine does: at least one request per worker
                plan = plan_requests((0, 0, side, side), 30, BANDS4, "float32", "EPSG:32718", target_requests=workers)
            else:
                plan = plan_requests((0, 0, side, side), 30, BANDS4, "float32", "EPSG:32718", tile_side=ts)
            server = FakeServer(latency, mbps * 1e6)
            stats = DownloadStats()
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                download("IMAGE", plan, Path(d) / "x.tif", compute=server, max_workers=workers, stats=stats)
                wall = time.perf_counter() - t0
            base = base or wall
            widest = max(t.width for t in plan.tiles)
            label = f"target=workers ({widest})" if ts == "target" else (f"{ts}" if ts else f"largest ({widest})")
            lines.append(
                f"| {label} | {plan.requests} | {plan.total_bytes / 1e6:.0f} | {workers} | {wall:.2f} | "
                f"{plan.total_bytes / 1e6 / wall:.1f} | {plan.requests / wall:.1f} | {base / wall:.1f}x |"
            )
            print(lines[-1], flush=True)
    return lines


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.3)
    ap.add_argument("--mbps", type=float, default=50.0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}")
    print(f"# request limit {MAX_REQUEST_BYTES} bytes")
    print("\n".join(plan_table()))
    print()
    concurrency_table(args.latency, args.mbps, args.quick)


if __name__ == "__main__":
    main()
