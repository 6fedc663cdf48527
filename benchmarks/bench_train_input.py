"""Time the input pipeline adds to a training step.

    python benchmarks/bench_train_input.py [--steps 30] [--batch 16]

Trains the light preset for the same number of steps three ways: from one batch held in memory
(no input work: the floor), from TFRecord patches through ``core.dataset.tfrecord_dataset`` (what
``python -m core train`` uses on patches), and from random windows of in-memory scenes
(``core.dataset.SceneSet``, what it uses on images).
Overhead = (time - floor) / floor. Also the input alone (no model): seconds per batch, over the floor's
step time, which bounds what the input can add when nothing overlaps.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import ROOT, save

SAMPLE = ROOT / "assets" / "sample"


def main() -> None:
    import tensorflow as tf

    from core.config import PatchConfig
    from core.dataset import SceneSet, compute_normalization, load_scenes, tfrecord_dataset
    from core.model import build_unet, compile_model
    from core.patches import sample_patches

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    pair = f"{SAMPLE / 'sample_rgbn.tif'}:{SAMPLE / 'sample_cdl.tif'}"
    scenes = load_scenes([pair])
    norm = compute_normalization(scenes)
    model = compile_model(build_unet("light"))
    sset = SceneSet(scenes, 256, norm)
    with tempfile.TemporaryDirectory() as d:
        rec = Path(d) / "p.tfrecord.gz"
        sample_patches(SAMPLE / "sample_rgbn.tif", SAMPLE / "sample_cdl.tif", "cdl", PatchConfig(count=128), rec)
        x, y = sset.sample(args.batch)
        sources = {
            "in_memory_batch": lambda: tf.data.Dataset.from_tensors((x, y)).repeat(),
            "tfrecord_pipeline": lambda: tfrecord_dataset(rec, norm, 256, batch_size=args.batch, shuffle=64),
            "scene_sampler": lambda: sset.tf_dataset(args.batch),
        }
        datasets = {name: make() for name, make in sources.items()}
        for ds in datasets.values():
            model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)  # warm up (tracing, first reads)
        res = {name: {"seconds_per_step": float("inf")} for name in datasets}
        for _ in range(3):  # rounds, so that a busy moment does not fall on one source only
            for name, ds in datasets.items():
                t = time.perf_counter()
                model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
                res[name]["seconds_per_step"] = min(res[name]["seconds_per_step"], (time.perf_counter() - t) / args.steps)
        # The input alone, no model: what a step can wait for at most when nothing overlaps. A
        # bound that the VM's noise (step times vary by about 10% between runs) does not blur.
        for name, make in sources.items():
            it = iter(make())
            next(it)
            t = time.perf_counter()
            for _ in range(args.steps):
                next(it)
            res[name]["input_seconds_per_batch"] = (time.perf_counter() - t) / args.steps
    floor = res["in_memory_batch"]["seconds_per_step"]
    for name in ("tfrecord_pipeline", "scene_sampler"):
        res[name]["overhead"] = res[name]["seconds_per_step"] / floor - 1
        res[name]["overhead_bound"] = res[name]["input_seconds_per_batch"] / floor
    res["steps"], res["batch"], res["rounds"] = args.steps, args.batch, 3
    save("train_input", res)


if __name__ == "__main__":
    main()
