"""Evaluate a predicted crop mask against a label raster on the same grid."""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.errors import OutputExistsError
from core.labels import get_class_map
from core.metrics import confusion
from core.raster import _open, grid_of, read_labels


def evaluate_files(pred_path: str | os.PathLike, labels_path: str | os.PathLike, label_map: str = "cdl",
                   out: str | os.PathLike | None = None, overwrite: bool = False, label_band: str | None = None) -> dict:
    """Confusion matrix, accuracy, precision, recall, F1 and IoU over pixels valid in both; writes JSON.

    Raises:
        InputNotFoundError, CorruptFileError: a file is missing or unreadable.
        GridMismatchError: the label raster is not on the prediction's grid.
        OutputExistsError: the JSON exists and ``overwrite`` is False.
    """
    out_path = Path(out) if out else Path(pred_path).with_name("metrics.json")
    if out_path.exists() and not overwrite:
        raise OutputExistsError(f"{out_path} already exists; pass --overwrite or choose another --out")
    with _open(pred_path) as src:
        grid = grid_of(src)
        pred = src.read(1)
    labels = read_labels(labels_path, get_class_map(label_map), grid=grid, band=label_band)
    result = {"prediction": str(pred_path), "labels": str(labels_path), "label_map": label_map,
              **confusion(pred, labels).to_dict()}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out_path)
    return result
