"""Evaluate a predicted crop mask against a label raster on the same grid."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InvalidDataError
from core.files import check_output_file, replacing
from core.labels import NODATA, get_class_map, label_map_warning, with_class_names
from core.metrics import check_mask, class_errors, confusion, crop_area_agreement
from core.grid import Grid, grid_of, pixel_offset, window_within
from core.raster import _open, file_bands, grid_of_file, read_label_classes, read_pixels

#: classes listed in ``errors_by_class`` (those with the most wrong pixels)
BY_CLASS_ROWS = 10


def read_crop_mask(path: str | os.PathLike) -> tuple[np.ndarray, "Grid", list[str]]:
    """A predicted crop mask (``predict``'s ``crop_mask.tif``, or another tool's 0/1 mask) as uint8 1/0/255,
    its grid, and warnings: its own no-data value (0 in some tools' masks, NaN in a float one) is no
    data, and a declared 0 or 1 is said to leave those pixels out.

    Raises:
        InputNotFoundError, CorruptFileError: the file is missing or unreadable.
        InvalidDataError: not a crop mask (more than one band, or values other than 0, 1 and no data).
    """
    with _open(path) as src:
        if src.count != 1:
            raise InvalidDataError(f"{Path(path).name} has {src.count} bands, but a crop mask has one; "
                                   "give the crop_mask.tif written by predict (not an image)")
        grid = grid_of(src)
        pred = read_pixels(src, path, 1)
        nodata = src.nodata
    if nodata is not None:
        missing = np.isnan(pred) if np.isnan(nodata) else pred == nodata
        # (in a type that holds 255: an int8 mask kept its type, and 255 came back as -1, "a value a crop mask lacks")
        pred = np.where(missing, NODATA, pred.astype(np.promote_types(pred.dtype, np.int16), copy=False))
    check_mask(pred)
    warnings = []
    if nodata in (0, 1):
        warnings.append(f"{Path(path).name} declares {nodata:g} as no data, so its pixels of value {nodata:g} "
                        f"({'not crop' if nodata == 0 else 'crop'} in a crop mask) are left out; if they are "
                        f"{'not crop' if nodata == 0 else 'crop'}, remove the declaration (gdal_edit.py -unsetnodata)")
    return pred.astype(np.uint8, copy=False), grid, warnings


@dataclass(frozen=True)
class PlacedLabels:
    """Where a label raster lies on a prediction: the prediction (cut to the labels where they lie
    inside it), its grid, the labels' own grid, the window of the labels' image the prediction is
    (``predict --window``; None otherwise), and warnings."""

    pred: np.ndarray
    grid: Grid
    whole: Grid
    inside: object | None
    warnings: list[str]


def place_labels(pred: np.ndarray, grid: Grid, labels_path: str | os.PathLike) -> PlacedLabels:
    """Place a label raster on a prediction (``grid``): the same grid, the prediction a window of the
    labels' image, or labels of part of the prediction, which is then cut to them (with a warning
    saying how many predicted pixels are left out). Reads no label pixel.

    Raises:
        InputNotFoundError, CorruptFileError: the labels cannot be opened.
        GridMismatchError: neither is on the other's pixels.
    """
    warnings: list[str] = []
    whole = grid_of_file(labels_path)
    inside = None if whole.same_as(grid) else window_within(grid, whole)
    if inside is None and not whole.same_as(grid):
        # labels of part of the prediction (an Earth Engine export padded to whole patches, labels of
        # the fields surveyed): outside them no pixel has a label, so the pixels valid in both are inside
        offset = pixel_offset(whole, grid)  # (column, row) of the labels' first pixel in the prediction
        if offset is not None:
            (c, r), predicted = offset, int((pred != NODATA).sum())
            rows, cols = slice(max(r, 0), max(r + whole.height, 0)), slice(max(c, 0), max(c + whole.width, 0))
            covered = int((pred[rows, cols] != NODATA).sum())
            last_row, last_col = min(r + whole.height, pred.shape[0]) - 1, min(c + whole.width, pred.shape[1]) - 1
            if window_within(whole, grid) is not None:  # all of them inside: compared on their grid
                pred, grid = pred[rows, cols], whole
            if predicted > covered:  # (an export's padding holds no prediction: nothing to say then)
                share = f"{covered / predicted:.2%}"
                warnings.append(
                    f"the labels' raster covers only {covered:,} of the {predicted:,} predicted pixels "
                    f"({'over 99.99%' if share == '100.00%' else share}: rows {rows.start}-{last_row}, columns "
                    f"{cols.start}-{last_col} of the prediction); the figures are for that part only")
    return PlacedLabels(pred, grid, whole, inside, warnings)


def read_placed_labels(placed: PlacedLabels, labels_path: str | os.PathLike, class_map, label_band: str | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The crop mask and class codes of the labels, on ``placed.grid`` (see :func:`place_labels`).

    Raises:
        as :func:`core.raster.read_label_classes`.
    """
    if placed.inside is not None:  # a prediction of a window of the labels' image (predict --window)
        return read_label_classes(labels_path, class_map, grid=placed.whole, window=placed.inside, band=label_band)
    return read_label_classes(labels_path, class_map, grid=placed.grid, band=label_band)


def evaluate_files(pred_path: str | os.PathLike, labels_path: str | os.PathLike, label_map: str = "cdl",
                   out: str | os.PathLike | None = None, overwrite: bool = False, label_band: str | None = None) -> dict:
    """Confusion matrix, accuracy, precision, recall, F1 and IoU over pixels valid in both, the crop
    area predicted against the labels' (:func:`core.metrics.crop_area_agreement`), and (for a
    land-cover product, not a binary mask) the label classes with the most wrong pixels; writes JSON
    (default ``metrics.json`` beside the prediction). Labels that cover only part of the predicted
    pixels are compared there, with a line in ``warnings`` that says so.

    Raises:
        InputNotFoundError, CorruptFileError: a file is missing or unreadable.
        InvalidDataError: the prediction is not a crop mask (more than one band, or other values than 0/1/255).
        NoDataError: no pixel is valid in both.
        GridMismatchError: the label raster is not on the prediction's grid, nor is one a pixel-aligned
            window of the other (a prediction of ``predict --window``; labels of part of an Earth
            Engine export, which is padded to whole patches).
        OutputExistsError: the JSON exists and ``overwrite`` is False.
        ConfigError: the JSON's path is a folder or lies under a file.
    """
    class_map = get_class_map(label_map)
    pred, grid, warnings = read_crop_mask(pred_path)
    placed = place_labels(pred, grid, labels_path)
    pred, grid, warnings = placed.pred, placed.grid, warnings + placed.warnings
    # the inputs' own mistakes first (each told at once), then an output in the way
    out_path = check_output_file(out or Path(pred_path).with_name("metrics.json"), overwrite,
                                 kind=("JSON", (".json",)))
    labels, codes = read_placed_labels(placed, labels_path, class_map, label_band)
    said = label_map_warning(codes, class_map, Path(labels_path).name, file_bands(labels_path))
    warnings += [said] if said else []
    pixel_ha = grid.pixel_area_ha()
    result = {"prediction": str(pred_path), "labels": str(labels_path), "label_map": label_map,
              **confusion(pred, labels).to_dict(),
              # the prediction as an area estimate (hectares where the grid has a CRS)
              "crop_area": crop_area_agreement(pred, labels, pixel_ha), "warnings": warnings}
    if class_map.name != "binary":  # which of the product's classes the errors fall in (hectares, as above)
        rows = [r for r in class_errors(codes, labels, pred, pixel_ha) if r["errors"]][:BY_CLASS_ROWS]
        result["errors_by_class"] = with_class_names(rows, label_map)
    with replacing(out_path) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    return result
