"""Print the core pipeline's section of RESULTS.md from benchmarks/results/*.json."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def main() -> None:
    lines = ["## Core pipeline", ""]
    pred = load("predict")
    if pred:
        m = pred["machine"]
        lines += [f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, TensorFlow {m['tensorflow']}; {m['date']}.", ""]
        t = pred["throughput"]
        lines += ["### Prediction pipeline vs the bare model (`bench_predict.py`)", "",
                  f"{t['size']} x {t['size']} px mosaic of the sample scene, shipped light model, {t['tiles']} tiles of 512 px "
                  "(128 px overlap).", "",
                  "| | seconds | tiles/s |", "|---|---|---|",
                  f"| whole pipeline (read, normalize, infer, blend, write 2 COGs + summary) | {t['pipeline_seconds']:.1f} | {t['pipeline_tiles_per_s']:.2f} |",
                  f"| bare model on the same tiles, already normalized in memory | {t['bare_model_seconds']:.1f} | {t['bare_tiles_per_s']:.2f} |",
                  f"| **ratio pipeline / bare** | | **{t['ratio_pipeline_over_bare']:.2f}** |", ""]
        if "memory" in pred:
            lines += ["### Peak memory while predicting (separate process, VmHWM)", "",
                      "| image | pixels | seconds | peak RSS (MB) |", "|---|---|---|---|"]
            for r in pred["memory"]:
                lines.append(f"| {r['size']} x {r['size']} | {r['pixels']:,} | {r['seconds']:.0f} | {r['peak_rss_mb']:.0f} |")
            lines.append("")
    parse = load("parse")
    if parse:
        lines += ["### TFRecord reading and parsing (`bench_parse.py`)", "",
                  f"{parse['patches']} patches of {parse['size']} x {parse['size']} x 6 float features in {parse['files']} GZIP files, "
                  f"batches of {parse['batch']}, best of 5; every pipeline gives the same arrays bit for bit.", "",
                  "End to end from the files (read, inflate, parse, batch):", "",
                  "| pipeline | seconds | patches/s | speed-up vs notebook |", "|---|---|---|---|"]
        base = parse["files_notebook"]["seconds"]
        for k in ("files_notebook", "files_tf_batch_parse_example", "files_core", "files_core_tf"):
            if k in parse:
                lines.append(f"| {k} | {parse[k]['seconds']:.3f} | {parse[k]['patches_per_s']:.0f} | {base / parse[k]['seconds']:.2f}x |")
        lines += ["", "The parse alone, records already inflated in memory:", "",
                  "| pipeline | seconds | patches/s | speed-up vs notebook |", "|---|---|---|---|"]
        base = parse["notebook_per_example"]["seconds"]
        for k in ("notebook_per_example", "notebook_per_example_parallel5", "tf_batch_parse_example", "core_parse"):
            if k in parse:
                lines.append(f"| {k} | {parse[k]['seconds']:.3f} | {parse[k]['patches_per_s']:.0f} | {base / parse[k]['seconds']:.2f}x |")
        lines.append("")
        if parse.get("by_size"):
            lines += ["By patch size, in memory, the same number of floats in each row (batches of "
                      f"{parse['batch']}; the first row is the table above):", "",
                      "| patch (px) | patches | notebook s | core parse s | speed-up |", "|---|---|---|---|---|"]
            for r in parse["by_size"]:
                lines.append(f"| {r['size']} | {r['patches']:,} | {r['notebook_s']:.3f} | {r['core_s']:.3f} | {r['speedup']:.2f}x |")
            lines.append("")
    ti = load("train_input")
    if ti:
        lines += ["### Input pipeline cost in a training step (`bench_train_input.py`)", "",
                  f"Light preset, batch {ti['batch']}, {ti['steps']} steps, best of {ti.get('rounds', 2)} rounds.", "",
                  "| input | s/step | overhead vs in-memory batch | input alone, s/batch | bound: input / step |", "|---|---|---|---|---|"]
        for k in ("in_memory_batch", "tfrecord_pipeline", "scene_sampler"):
            o, b, a = ti[k].get("overhead"), ti[k].get("overhead_bound"), ti[k].get("input_seconds_per_batch")
            lines.append(f"| {k} | {ti[k]['seconds_per_step']:.3f} | {'-' if o is None else f'{o:+.1%}'} | "
                         f"{'-' if a is None else f'{a:.4f}'} | {'-' if b is None else f'{b:.1%}'} |")
        lines.append("")
    tp = load("presets_throughput")
    if tp:
        lines += ["### Light vs seed preset (`bench_presets.py`)", "",
                  "| shape | parameters | inference patches/s | training patches/s |", "|---|---|---|---|"]
        for k, v in tp["presets"].items():
            lines.append(f"| {k} preset | {v['params']:,} | {v['inference_patches_per_s']:.1f} | {v['training_patches_per_s']:.2f} |")
        for k, v in tp.get("candidates", {}).items():
            lines.append(f"| candidate {k} | {v['params']:,} | {v['inference_patches_per_s']:.1f} | {v['training_patches_per_s']:.2f} |")
        lines += ["", f"Ratios light / seed: inference **{tp['inference_ratio_light_over_seed']:.2f}x**, "
                      f"training **{tp['training_ratio_light_over_seed']:.2f}x**.", ""]
    sched = load("presets_schedule")
    if sched:
        lines += ["Same short schedule for both (IoU on the 6 val blocks, whole-block prediction, threshold 0.5):", "",
                  "| preset | patches | training minutes | val IoU | val F1 |", "|---|---|---|---|---|"]
        for k, v in sched.items():
            if k == "machine":
                continue
            lines.append(f"| {k} | {v['patches']} | {v['train_seconds'] / 60:.1f} | {v['iou']:.3f} | {v['f1']:.3f} |")
        lines.append("")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
