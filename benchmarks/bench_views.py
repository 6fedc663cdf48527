"""Averaging the model over views of each tile (``PredictConfig.views``): time and accuracy.

    python benchmarks/bench_views.py [--views 1 2 4 8]

Predicts every block of ``val`` (``AGNET_DATA``, default ../shared/data/agnet) with the shipped model
for each number of views, in one run: seconds (model and blending, in memory) and IoU / F1 pooled over
the valid pixels of all blocks at threshold 0.5, the way the model card's figures are measured.
"""

from __future__ import annotations

import argparse
import time

from common import AGNET, save


def main() -> None:
    from core.config import PredictConfig
    from core.dataset import load_scenes
    from core.metrics import Confusion, confusion
    from core.model import load_model
    from core.predict import predict_array, threshold_mask

    ap = argparse.ArgumentParser()
    ap.add_argument("--views", type=int, nargs="+", default=[1, 2, 4, 8])
    args = ap.parse_args()
    loaded = load_model()
    scenes = load_scenes([AGNET / "val"])
    predict_array(loaded, scenes[0].features[:512, :512], scenes[0].valid[:512, :512])  # trace once, untimed
    rows = []
    for views in args.views:
        total, seconds = Confusion(0, 0, 0, 0), 0.0
        for scene in scenes:
            t = time.perf_counter()
            prob = predict_array(loaded, scene.features, scene.valid, PredictConfig(views=views))
            seconds += time.perf_counter() - t
            total = total + confusion(threshold_mask(prob, 0.5), scene.labels)
        rows.append({"views": views, "seconds": seconds, "iou": total.iou, "f1": total.f1,
                     "precision": total.precision, "recall": total.recall})
        print(rows[-1], flush=True)
    base = rows[0]["seconds"]
    for r in rows:
        r["time_ratio"] = r["seconds"] / base
    save("views", {"blocks": len(scenes), "pixels": int(sum(s.valid.sum() for s in scenes)), "rows": rows})


if __name__ == "__main__":
    main()
