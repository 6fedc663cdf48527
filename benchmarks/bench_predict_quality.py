"""The Predict and Quality pages on a large region, step by step (seconds and peak memory), this checkout
against an earlier commit (its own git worktree), alternating, in one run.

    .venv/bin/python benchmarks/bench_predict_quality.py [--repeat 4] [--before REV] [--runs 3]

Inputs as bench_data_page.py (the sample scene mirrored ``repeat`` x ``repeat`` times with its CDL labels,
the whole image the region; the shipped model). The model runs once, in a first child process of this
checkout, timed alone; the timed runs then take its probability in place of the model's (the same
array for both checkouts: model inference is the same code and not what is compared). Steps, each
run a child process with an empty work folder: Predict pressed (the page after inference), a
threshold change there, the Quality page's first visit and a threshold change there. Each step's
peak memory is VmHWM, reset before it (/proc/self/clear_refs). Medians over ``runs``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_data_page import write_inputs
from common import HWM_CODE, ROOT, alternating_runs, before_now_args, save

CHILD = """
import json, os, sys, tempfile, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"; os.environ["USE_FOLIUM"] = "1"
sys.path.insert(0, {root!r} + "/tests"); sys.path.insert(0, {root!r})
os.environ["CROPMAP_WORKDIR"] = tempfile.mkdtemp(dir={tmp!r})
import numpy
from apptest import FakeMap, new_app
from pages.components import mapview
import pages.components.cached, core.overlays, core.raster, core.sources.local, geemap.foliumap, folium  # (not timed)
import core.predict
mapview._st_folium = FakeMap()
{hwm}
inference = []
_predict_array = core.predict.predict_array
def stood_in(*a, **k):  # the model's probability, made once (see the docstring)
    t = time.perf_counter()
    if os.path.exists({probability!r}):
        out = numpy.load({probability!r})
    else:
        out = _predict_array(*a, **k)
        numpy.save({probability!r}, out)
    inference.append(time.perf_counter() - t)
    return out
core.predict.predict_array = stood_in
steps = {{}}
def step(name, fn):
    open("/proc/self/clear_refs", "w").write("5")
    inference.clear()
    t = time.perf_counter(); fn(); seconds = time.perf_counter() - t
    steps[name] = {{"seconds": seconds - sum(inference), "inference_s": sum(inference), "peak_rss_mb": hwm(),
                   "errors": [e.value for e in at.error][:2], "exception": bool(at.exception)}}
at = new_app()
at.default_timeout = 1800
at.session_state["source"] = {{"kind": "local", "image": {image!r}, "labels": {labels!r}, "label_map": "cdl",
                               "title": "big", "band_map": None}}
at.session_state["model_path"] = {model!r}
at.switch_page("pages/predict.py")
at.run()
step("predict_pressed", lambda: next(b for b in at.button if b.label == "Predict").click().run())
step("predict_threshold", lambda: next(s for s in at.slider if s.label == "Crop threshold").set_value(0.45).run())
predict_metrics = [m.label + "=" + m.value for m in at.metric]
at.switch_page("pages/quality.py")
step("quality_visit", at.run)
step("quality_threshold", lambda: next(s for s in at.slider if s.label == "Crop threshold").set_value(0.40).run())
print(json.dumps({{"steps": steps, "metrics": predict_metrics + [m.label + "=" + m.value for m in at.metric]}}))
"""

STEPS = ("predict_pressed", "predict_threshold", "quality_visit", "quality_threshold")


def visit(root: Path, image: Path, labels: Path, tmp: Path) -> dict:
    code = CHILD.format(root=str(root), tmp=str(tmp), hwm=HWM_CODE, image=str(image), labels=str(labels),
                        model=str(ROOT / "assets" / "models" / "crop_unet_light.keras"),
                        probability=str(tmp / "probability.npy"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3000)
    if done.returncode != 0:
        raise SystemExit(f"the pages failed in {root}:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if any(s["exception"] or s["errors"] for s in out["steps"].values()):
        raise SystemExit(f"a page showed an error in {root}: {out['steps']}")
    return out


def main() -> None:
    args = before_now_args(__doc__, 3, "runs of each checkout, alternating")
    with tempfile.TemporaryDirectory(prefix="bench-pq-") as tmp_name:
        tmp = Path(tmp_name)
        image, labels = write_inputs(tmp, args.repeat)
        first = visit(ROOT, image, labels, tmp)  # (the model runs here, once)
        inference_s = first["steps"]["predict_pressed"]["inference_s"]
        runs = alternating_runs(args.before, tmp, args.runs, lambda root: visit(root, image, labels, tmp),
                                lambda r: json.dumps({s: round(v["seconds"], 2) for s, v in r["steps"].items()}))
    side = args.repeat * 1024
    summary = {name: {step: {"median_s": round(statistics.median(r["steps"][step]["seconds"] for r in rs), 2),
                             "peak_rss_mb": round(statistics.median(r["steps"][step]["peak_rss_mb"] for r in rs))}
                      for step in STEPS} | {"metrics": rs[-1]["metrics"]}
               for name, rs in runs.items()}
    if "before" in summary:
        summary["same_figures"] = summary["before"]["metrics"] == summary["now"]["metrics"]
        summary["speedup"] = {step: round(summary["before"][step]["median_s"] / max(summary["now"][step]["median_s"], 1e-3), 1)
                              for step in STEPS}
    result = {"image_px": f"{side} x {side}", "megapixels": round(side * side / 1e6, 1), "before": args.before,
              "model_inference_s": round(inference_s, 1), **summary}
    print(json.dumps(result, indent=1))
    save("predict_quality", result)


if __name__ == "__main__":
    main()
