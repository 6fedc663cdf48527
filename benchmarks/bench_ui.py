"""Dashboard timings in headless Chromium: server start -> map visible, first page load -> the sidebar's
Status title (a waiting line or the status), Region -> Data page's map (its first
visit), Predict click -> overlays
visible, threshold change -> crop area updated, and -> the page's run finished, and the bytes the server sends
the browser for one threshold step (the page's messages and the map layers' PNGs). Prints one JSON line.

    .venv/bin/python benchmarks/bench_ui.py [--model PATH]

Uses the shipped weights unless --model is given (CROPMAP_SHIPPED_MODEL).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.helpers import browser_page, dashboard, goto_page, map_frame, wait_map_layers, wait_script_idle  # noqa: E402


def metric(page, label: str) -> str:
    return page.locator("[data-testid='stMetric']", has_text=label).first.locator("[data-testid='stMetricValue']").inner_text()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="model used as the shipped weights (default: assets/models/...)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    env = {"CROPMAP_SHIPPED_MODEL": args.model} if args.model else {}
    res: dict = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}",
                 "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "model": args.model or "shipped"}
    with tempfile.TemporaryDirectory() as wd, browser_page() as (page, _):
        # bytes the server sent the browser over the page's websocket (the reruns' output), and as the map
        # layers' PNGs fetched from the media store
        received = [0]
        page.on("websocket", lambda ws: ws.on("framereceived", lambda f: received.__setitem__(0, received[0] + len(f))))
        page.on("response", lambda r: received.__setitem__(0, received[0] + int(r.headers.get("content-length") or 0))
                if "/media/" in r.url else None)
        t0 = time.perf_counter()
        with dashboard(Path(wd), env) as (url, healthy_s):
            t = time.perf_counter()
            page.goto(url)
            page.locator("[data-testid='stSidebar'] strong", has_text="Status").wait_for()
            res["page_to_sidebar_status_s"] = round(time.perf_counter() - t, 2)
            wait_map_layers(page, 1)
            map_frame(page).locator(".leaflet-image-layer").first.wait_for(state="visible")
            res["start_to_map_s"] = round(time.perf_counter() - t0, 2)
            res["server_healthy_s"] = round(healthy_s, 2)
            wait_script_idle(page)
            t = time.perf_counter()  # the Data page's first visit: the region's scene, its layers and figures
            goto_page(page, "2. Data")
            wait_map_layers(page, 2)
            page.get_by_text("Crop share (labels)").wait_for()
            res["region_to_data_map_s"] = round(time.perf_counter() - t, 2)
            goto_page(page, "3. Model")
            page.get_by_role("button", name="Load shipped weights").click()
            page.get_by_text("Shipped weights loaded.").wait_for(timeout=120_000)
            goto_page(page, "4. Predict")
            t = time.perf_counter()
            page.get_by_role("button", name="Predict").click()
            wait_map_layers(page, 2, timeout=600_000)  # the imagery and the crop layer (shown at first)
            res["predict_click_to_overlay_s"] = round(time.perf_counter() - t, 2)
            thumb = page.get_by_role("slider").first
            times, runs, sent = [], [], []
            for i in range(args.repeats):
                wait_script_idle(page)  # a key pressed during a rerun can be lost with the re-rendered slider
                before = metric(page, "Crop area")
                thumb.focus()
                t = time.perf_counter()
                thumb.press("ArrowLeft" if i % 2 else "ArrowRight")
                page.wait_for_function(
                    """([b]) => [...document.querySelectorAll("[data-testid='stMetric']")]
                        .some(m => m.innerText.includes('Crop area') &&
                              m.querySelector("[data-testid='stMetricValue']").innerText !== b)""",
                    arg=[before], timeout=60_000)
                wait_map_layers(page, 2)
                times.append(time.perf_counter() - t)
                wait_script_idle(page)  # the rest of the page too (downloads, ...): the server is free again
                runs.append(time.perf_counter() - t)
                page.wait_for_timeout(300)
            # the bytes of a step to a threshold not shown before (a value shown before comes back as a
            # reference to the browser's copy of the page's message: Streamlit's message cache)
            for _ in range(args.repeats):
                wait_script_idle(page)
                thumb.focus()
                page.wait_for_timeout(300)
                received[0] = 0
                thumb.press("ArrowRight")
                page.wait_for_timeout(300)
                wait_script_idle(page)
                page.wait_for_timeout(300)
                sent.append(received[0])
            res["threshold_change_s"] = round(sorted(times)[len(times) // 2], 2)
            res["threshold_run_s"] = round(sorted(runs)[len(runs) // 2], 2)
            res["threshold_sent_mb"] = round(sorted(sent)[len(sent) // 2] / 1e6, 3)  # server -> browser, one step
            res["region_pixels"] = 1024 * 1024
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
