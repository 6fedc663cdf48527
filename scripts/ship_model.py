"""Copy the best checkpoint of a training run to assets/models/ with a complete model card.

    python scripts/ship_model.py --run runs/light --val ../shared/data/agnet/val [--name crop_unet_light]
    python scripts/ship_model.py --remeasure assets/models/crop_unet_light.keras --val ../shared/data/agnet/val

The card gets the training command (from the run), and metrics on the validation blocks measured
the way users predict: whole-block seamless tiled prediction at threshold 0.5, pooled over all
valid pixels of all blocks, plus each block's own figures. ``--remeasure`` measures a shipped
model's validation figures again (e.g. after a change in how prediction thresholds) and rewrites
only those in its card.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.card import ModelCard

ROOT = Path(__file__).resolve().parent.parent
#: what the model learned from (the data README): one scene, one date; the Model page says so beside the weights
AGNET_DATA = ("Ag-Net: one Landsat 8 OLI scene of the northern Great Plains, USA (Red River valley area), "
              "2015-09-02 (late season), 30 m pixels, with USDA CDL 2015 labels: 23 train blocks, 6 val blocks "
              "(1024 x 1024 px); the model was selected on val loss")
#: Ag-Net's pixel size (Landsat 8 OLI, 30 m: the data README), which its files do not carry
AGNET_PIXEL_SIZE_M = 30.0
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def val_blocks(loaded, val: str) -> dict:
    """The card's ``val_blocks`` figures of a loaded model on the blocks in folder ``val``."""
    from core.config import PredictConfig
    from core.dataset import load_scenes, pair_paths
    from core.metrics import Confusion, confusion
    from core.predict import make_predictor, predict_array, threshold_mask

    per_block, total = {}, Confusion(0, 0, 0, 0)
    cfg = PredictConfig()
    used = make_predictor(loaded, cfg).config  # what predict_array runs with, for the card
    for (img, _), scene in zip(pair_paths([val]), load_scenes([val])):
        prob = predict_array(loaded, scene.features, scene.valid, cfg)
        c = confusion(threshold_mask(prob, 0.5), scene.labels)
        per_block[img.name] = {"iou": round(c.iou, 4), "f1": round(c.f1, 4), "valid_pixels": c.total}
        total = total + c
        print(img.name, per_block[img.name], flush=True)
    pooled = {k: round(v, 4) for k, v in total.to_dict().items() if k in ("accuracy", "precision", "recall", "f1", "iou")}
    return {"how": f"whole-block tiled prediction (default config: {used.tile} px tiles, {used.overlap} px overlap), "
                   "threshold 0.5 on the probability in whole percent (as probability.tif stores it), pooled over "
                   "valid pixels",
            **pooled, "confusion_matrix": total.to_dict()["confusion_matrix"], "per_block": per_block}


def remeasure(model_path: Path, val: str) -> None:
    """Rewrite the ``val_blocks`` figures in a shipped model's card (atomically); nothing else changes."""
    from core.files import replacing
    from core.card import card_path
    from core.model import load_model

    loaded = load_model(model_path)
    card = loaded.card.to_dict()
    card["metrics"] = {**card["metrics"], "val_blocks": val_blocks(loaded, val)}
    with replacing(card_path(model_path)) as tmp:
        tmp.write_text(json.dumps(card, indent=2))
    print(json.dumps({k: card["metrics"]["val_blocks"][k] for k in ("accuracy", "precision", "recall", "f1", "iou")}, indent=2))


def patches_seen(card: ModelCard) -> int | None:
    """The patches a run's best checkpoint had seen: its epoch's steps of batches (a card written before
    runs counted them by checkpoint gave the whole planned run's)."""
    t = card.training
    if card.best_epoch is None or not all(isinstance(t.get(k), int) for k in ("steps_per_epoch", "batch_size")):
        return t.get("patches_seen")
    return card.best_epoch * t["steps_per_epoch"] * t["batch_size"]


def main() -> None:
    from core.card import ModelCard, load_card
    from core.model import load_model, save_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--run")
    ap.add_argument("--remeasure", metavar="MODEL.keras")
    ap.add_argument("--val", required=True)
    ap.add_argument("--name", default="crop_unet_light")
    args = ap.parse_args()
    if bool(args.run) == bool(args.remeasure):
        ap.error("give one of --run or --remeasure")
    if args.remeasure:
        remeasure(Path(args.remeasure), args.val)
        return
    run = Path(args.run)
    loaded = load_model(run / "best.keras")
    info = json.loads((run / "run.json").read_text())
    card = loaded.card
    metrics = {
        "val_blocks": val_blocks(loaded, args.val),
        "val_patches_at_best_epoch": card.metrics.get("val", {}),
    }
    pooled = {k: metrics["val_blocks"][k] for k in ("accuracy", "precision", "recall", "f1", "iou")}
    history = (run / "history.csv").read_text().strip().splitlines()
    training = {**card.training, "epochs_run": len(history) - 1, "patches_seen": patches_seen(card)}
    init = info["config"].get("init_model")
    if init:  # a fine-tuning run: record how the starting model was made, so the chain reproduces
        parent = load_card(init)
        training["init_model_made_by"] = parent.command
        training["init_model_patches_seen"] = patches_seen(parent)
    # the Ag-Net blocks carry no CRS, so the training could not read their pixel size (unless given
    # --pixel-size-m): the data README's 30 m Landsat 8 pixels, for the card's pixel size warning
    pixel_note = "" if card.pixel_size_m is not None else (
        " pixel_size_m: the Ag-Net blocks are 30 m Landsat 8 pixels (data README); the files carry no CRS, so the "
        "training command could not read it from them.")
    new = ModelCard(**{**card.__dict__, "metrics": metrics, "command": info["command"],
                       "pixel_size_m": card.pixel_size_m if card.pixel_size_m is not None else AGNET_PIXEL_SIZE_M,
                       "training": training,
                       "data": AGNET_DATA,
                       "notes": "Light preset (base 16, depth 4). Inputs R, G, B, NIR surface reflectance 0-1 and NDVI, "
                                "normalized with the statistics in normalization. Output: crop probability (CDL crop codes "
                                "1-61, 66-77, 204-254)." + (
                                    " Trained in two runs: from random weights (training.init_model_made_by), then "
                                    "fine-tuned from that run's best checkpoint (command)." if init else "") + pixel_note})
    out = ROOT / "assets" / "models" / f"{args.name}.keras"
    save_model(loaded.model, new, out)
    shutil.copy(run / "history.csv", out.with_name(f"{args.name}_history.csv"))
    print(json.dumps({"model": str(out), **pooled}, indent=2))


if __name__ == "__main__":
    main()
