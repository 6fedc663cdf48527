"""Evaluate a predicted crop mask against a label raster on the same grid."""

from __future__ import annotations

import json
import os
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
        pred = np.where(missing, NODATA, pred)
    check_mask(pred)
    warnings = []
    if nodata in (0, 1):
        warnings.append(f"{Path(path).name} declares {nodata:g} as no data, so its pixels of value {nodata:g} "
                        f"({'not crop' if nodata == 0 else 'crop'} in a crop mask) are left out; if they are "
                        f"{'not crop' if nodata == 0 else 'crop'}, remove the declaration (gdal_edit.py -unsetnodata)")
    return pred.astype(np.uint8, copy=False), grid, warnings


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
    # the inputs' own mistakes first (each told at once), then an output in the way
    out_path = check_output_file(out or Path(pred_path).with_name("metrics.json"), overwrite)
    if inside is not None:  # a prediction of a window of the labels' image (predict --window)
        labels, codes = read_label_classes(labels_path, class_map, grid=whole, window=inside, band=label_band)
    else:
        labels, codes = read_label_classes(labels_path, class_map, grid=grid, band=label_band)
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
