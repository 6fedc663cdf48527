"""Light preset vs the 2019 notebook's seed preset: inference and training throughput, and IoU on
``val`` after the same short training schedule.

    python benchmarks/bench_presets.py [--steps 100] [--batch 16] [--only schedule] [--presets light]

Uses the Ag-Net data (``AGNET_DATA``, default ../shared/data/agnet). Its schedule trained for 20 minutes on a
2-core CPU, most of it training the seed preset.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from common import AGNET, save, timeit


#: Shapes measured when choosing the light preset (inference and training throughput only).
CANDIDATES = {
    "base8_depth4": ((8, 16, 32, 64), 128),
    "base16_depth4_light": ((16, 32, 64, 128), 256),
    "base24_depth4": ((24, 48, 96, 192), 384),
    "base16_depth5": ((16, 32, 64, 128, 256), 512),
    "base16_depth5_capped": ((16, 32, 64, 128, 128), 256),
}


def throughput(preset, batch: int = 8, n_batches: int = 4) -> dict:
    import tensorflow as tf

    from core.model import build_unet, compile_model

    model = build_unet(preset)
    x = np.random.default_rng(0).normal(size=(batch, 256, 256, 5)).astype(np.float32)
    y = np.stack([np.ones((batch, 256, 256)), np.ones((batch, 256, 256))], -1).astype(np.float32)
    infer = tf.function(lambda v: model(v, training=False))
    t_inf = timeit(lambda: [infer(x) for _ in range(n_batches)], repeat=2)
    compile_model(model)
    t_train = timeit(lambda: [model.train_on_batch(x, y) for _ in range(2)], repeat=2)
    return {"params": int(model.count_params()), "inference_patches_per_s": batch * n_batches / t_inf,
            "training_patches_per_s": batch * 2 / t_train}


def val_iou(model_path) -> dict:
    from core.config import PredictConfig
    from core.dataset import load_scenes
    from core.metrics import Confusion, confusion
    from core.model import load_model
    from core.predict import predict_array, threshold_mask

    loaded = load_model(model_path)
    total = Confusion(0, 0, 0, 0)
    for scene in load_scenes([AGNET / "val"]):
        prob = predict_array(loaded, scene.features, scene.valid, PredictConfig())
        total = total + confusion(threshold_mask(prob, 0.5), scene.labels)
    return {"iou": total.iou, "f1": total.f1, "accuracy": total.accuracy}


def short_schedule(preset: str, steps: int, batch: int) -> dict:
    from core.config import TrainConfig
    from core.train import train

    cfg = TrainConfig(preset=preset, epochs=4, steps_per_epoch=steps // 4, batch_size=batch, val_patches=32, patience=10)
    with tempfile.TemporaryDirectory() as d:
        t = time.time()
        res = train(cfg, [str(AGNET / "train")], [str(AGNET / "val")], d, command="bench_presets")
        seconds = time.time() - t
        return {"patches": steps * batch, "train_seconds": seconds, **val_iou(res.best_model)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--only", choices=["throughput", "schedule"], default=None)
    ap.add_argument("--presets", nargs="+", choices=["light", "seed"], default=["light", "seed"],
                    help="the presets to train on the schedule (e.g. light alone, for as long as the seed took)")
    args = ap.parse_args()
    if args.only != "schedule":
        from core.card import Preset

        out = {"presets": {}}
        for preset in ("light", "seed"):
            out["presets"][preset] = throughput(preset)
        l, s = out["presets"]["light"], out["presets"]["seed"]
        out["inference_ratio_light_over_seed"] = l["inference_patches_per_s"] / s["inference_patches_per_s"]
        out["training_ratio_light_over_seed"] = l["training_patches_per_s"] / s["training_patches_per_s"]
        out["candidates"] = {name: throughput(Preset(name, enc, centre, None, name))
                             for name, (enc, centre) in CANDIDATES.items()}
        save("presets_throughput", out)
    if args.only != "throughput":
        sched = {}
        name = "presets_schedule" if args.steps == 100 else f"presets_schedule_{args.steps}_steps"
        for preset in args.presets:
            sched[preset] = short_schedule(preset, args.steps, args.batch)
            save(name, sched)


if __name__ == "__main__":
    main()
