"""Evaluate a predicted crop mask against a label raster on the same grid."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.errors import InvalidDataError, NoDataError
from core.files import check_output_file, replacing
from core.labels import NODATA, ClassMap, CodeCounts, get_class_map, label_map_warning, labelled_pixels, with_class_names
from core.metrics import NONE_IN_BOTH, AreaSums, ClassSums, Confusion, check_mask, confusion_counts
from core.grid import Grid, grid_of, pixel_offset, window_within
from core.raster import (GDAL_CACHE_BYTES, _open, check_label_file, file_bands, grid_of_file, read_label_classes,
                         read_pixels, row_strips)

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
        grid, nodata = _mask_file(src, path)
        pred = crop_mask_values(read_pixels(src, path, 1), nodata)
    return pred, grid, _nodata_warnings(path, nodata)


def _mask_file(src, path: str | os.PathLike) -> tuple[Grid, float | None]:
    """The grid and no-data value of an open crop-mask file.

    Raises:
        InvalidDataError: more than one band.
    """
    if src.count != 1:
        raise InvalidDataError(f"{Path(path).name} has {src.count} bands, but a crop mask has one; "
                               "give the crop_mask.tif written by predict (not an image)")
    return grid_of(src), src.nodata


def crop_mask_values(pred: np.ndarray, nodata: float | None) -> np.ndarray:
    """A crop mask's pixels as read (all or a part) as uint8 1/0/255, its file's ``nodata`` as 255.

    Raises:
        InvalidDataError: values other than 0, 1 and no data.
    """
    if nodata is not None:
        missing = np.isnan(pred) if np.isnan(nodata) else pred == nodata
        # (in a type that holds 255: an int8 mask kept its type, and 255 came back as -1, "a value a crop mask lacks";
        # a uint8 one keeps its own: through int16 it took 7 bytes a pixel)
        pred = np.where(missing, NODATA, pred.astype(np.promote_types(pred.dtype, np.uint8), copy=False))
    check_mask(pred)
    return pred.astype(np.uint8, copy=False)


def _nodata_warnings(path: str | os.PathLike, nodata: float | None) -> list[str]:
    """A warning where a crop mask's file declares one of its classes (0 or 1) as no data."""
    if nodata not in (0, 1):
        return []
    return [f"{Path(path).name} declares {nodata:g} as no data, so its pixels of value {nodata:g} "
            f"({'not crop' if nodata == 0 else 'crop'} in a crop mask) are left out; if they are "
            f"{'not crop' if nodata == 0 else 'crop'}, remove the declaration (gdal_edit.py -unsetnodata)"]


@dataclass(frozen=True)
class PlacedLabels:
    """Where a label raster lies on a prediction: the prediction (cut to the labels where they lie
    inside it; None for a prediction read in parts), its grid, the labels' own grid, the window of the
    labels' image the prediction is (``predict --window``; None otherwise), warnings, and the (row,
    column) of the grid's first pixel in the prediction."""

    pred: np.ndarray | None
    grid: Grid
    whole: Grid
    inside: object | None
    warnings: list[str]
    origin: tuple[int, int] = (0, 0)


def place_labels(pred: np.ndarray, grid: Grid, labels_path: str | os.PathLike) -> PlacedLabels:
    """Place a label raster on a prediction (``grid``): the same grid, the prediction a window of the
    labels' image, or labels of part of the prediction, which is then cut to them (with a warning
    saying how many predicted pixels are left out). Reads no label pixel.

    Raises:
        InputNotFoundError, CorruptFileError: the labels cannot be opened.
        InvalidDataError: their geotransform is out of range. (Labels on other pixels are refused when
            they are read: :func:`read_placed_labels`.)
    """
    def valid(rows: slice, cols: slice) -> tuple[int, int]:
        return int((pred != NODATA).sum()), int((pred[rows, cols] != NODATA).sum())

    placed = _placement(grid, labels_path, valid)
    (r, c), (h, w) = placed.origin, placed.grid.shape
    return replace(placed, pred=pred[r : r + h, c : c + w])


def _placement(grid: Grid, labels_path: str | os.PathLike,
               valid: Callable[[slice, slice], tuple[int, int]]) -> PlacedLabels:
    """:func:`place_labels` (its ``pred`` None), ``valid(rows, cols)`` giving the prediction's valid
    pixels, in all and in those rows and columns.

    Raises:
        as :func:`place_labels`.
    """
    warnings: list[str] = []
    whole = grid_of_file(labels_path)
    inside = None if whole.same_as(grid) else window_within(grid, whole)
    placed, origin = grid, (0, 0)
    if inside is None and not whole.same_as(grid):
        # labels of part of the prediction (an Earth Engine export padded to whole patches, labels of
        # the fields surveyed): outside them no pixel has a label, so the pixels valid in both are inside
        offset = pixel_offset(whole, grid)  # (column, row) of the labels' first pixel in the prediction
        if offset is not None:
            c, r = offset
            rows, cols = slice(max(r, 0), max(r + whole.height, 0)), slice(max(c, 0), max(c + whole.width, 0))
            predicted, covered = valid(rows, cols)
            last_row, last_col = min(r + whole.height, grid.height) - 1, min(c + whole.width, grid.width) - 1
            if window_within(whole, grid) is not None:  # all of them inside: compared on their grid
                placed, origin = whole, (rows.start, cols.start)
            if predicted > covered:  # (an export's padding holds no prediction: nothing to say then)
                share = f"{covered / predicted:.2%}"
                warnings.append(
                    f"the labels' raster covers only {covered:,} of the {predicted:,} predicted pixels "
                    f"({'over 99.99%' if share == '100.00%' else share}: rows {rows.start}-{last_row}, columns "
                    f"{cols.start}-{last_col} of the prediction); the figures are for that part only")
    return PlacedLabels(None, placed, whole, inside, warnings, origin)


def read_placed_labels(placed: PlacedLabels, labels_path: str | os.PathLike, class_map, label_band: str | None = None,
                       rows: tuple[int, int] | None = None, checked: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The crop mask and class codes of the labels, on ``placed.grid`` (see :func:`place_labels`):
    all, or its ``rows`` (start, stop) with ``checked=False`` (see :func:`core.raster.read_label_classes`).

    Raises:
        as :func:`core.raster.read_label_classes`.
    """
    from rasterio.windows import Window

    def strip(window):  # (all of it, or its rows)
        if rows is None:
            return window
        return Window(window.col_off, window.row_off + rows[0], window.width, rows[1] - rows[0])

    if placed.inside is not None:  # a prediction of a window of the labels' image (predict --window)
        return read_label_classes(labels_path, class_map, grid=placed.whole, window=strip(placed.inside),
                                  band=label_band, checked=checked)
    window = None if rows is None else strip(Window(0, 0, placed.grid.width, placed.grid.height))
    return read_label_classes(labels_path, class_map, grid=placed.grid, window=window, band=label_band, checked=checked)


def _no_common_pixel(predicted: int, codes: "CodeCounts | None", class_map: ClassMap, labels: str) -> str:
    """Why no pixel is valid in both the prediction (``predicted``: its valid pixels) and the labels (their
    codes' counts under the window compared; None for none), in words."""
    if not predicted:
        return f"{NONE_IN_BOTH}: the prediction is all no data; predict an image with data"
    if codes is None or not labelled_pixels(codes, class_map):
        seen = sorted({*np.flatnonzero(codes.counts).tolist(), *codes.low, *codes.high}) if codes is not None else []
        values = (f"; their values run {seen[0]} to {seen[-1]}" if len(seen) > 1 else
                  f"; their only value is {seen[0]}" if seen else "")
        return (f"{NONE_IN_BOTH}: {labels} holds no crop or not-crop pixel there as the "
                f"'{class_map.name}' label map reads it{values}; choose the label map of the labels' product, or "
                "labels with classes where the prediction is")
    return (f"{NONE_IN_BOTH}: the labelled pixels of {labels} lie where the prediction has no data; "
            "use labels that cover the predicted area")


def _scan_mask(src, path: str | os.PathLike, nodata: float | None, rows: slice | None = None,
               cols: slice | None = None) -> tuple[int, int]:
    """Every pixel of an open crop-mask file checked (:func:`crop_mask_values`), read in strips: its
    valid pixels in all, and in ``rows`` and ``cols``.

    Raises:
        CorruptFileError: a block cannot be read.
        InvalidDataError: values other than 0, 1 and no data.
    """
    from rasterio.windows import Window

    total = inside = 0
    for start, stop in row_strips(src.height, src.width):
        valid = crop_mask_values(read_pixels(src, path, 1, window=Window(0, start, src.width, stop - start)),
                                 nodata) != NODATA
        total += int(np.count_nonzero(valid))
        if rows is not None:
            inside += int(np.count_nonzero(valid[max(rows.start - start, 0) : max(rows.stop - start, 0), cols]))
    return total, inside


@dataclass(frozen=True)
class _Tally:
    """The sums :func:`evaluate_files` reports, over the strips of rows read in turn."""

    confusion: Confusion
    areas: AreaSums
    classes: ClassSums

    def __add__(self, other: "_Tally") -> "_Tally":
        return _Tally(self.confusion + other.confusion, self.areas + other.areas, self.classes + other.classes)


def _tally(src, pred_path: str | os.PathLike, nodata: float | None, placed: PlacedLabels, labels_path, class_map,
           label_band: str | None) -> tuple[_Tally, float | np.ndarray | None]:
    """The confusion, crop areas and errors by class of a crop mask (the open file ``src``)
    against its placed labels, read together in strips of rows (memory does not grow with the rasters),
    and the grid's pixel area (:meth:`Grid.pixel_area_ha`).

    Raises:
        as :func:`read_placed_labels` and :meth:`Grid.pixel_area_ha` (after the labels' first strip).
    """
    from rasterio.windows import Window

    (r, c), (height, width) = placed.origin, placed.grid.shape
    total = pixel_ha = None
    for start, stop in row_strips(height, width):
        pred = crop_mask_values(read_pixels(src, pred_path, 1, window=Window(c, r + start, width, stop - start)), nodata)
        labels, codes = read_placed_labels(placed, labels_path, class_map, label_band, (start, stop), checked=False)
        if total is None:  # (after the labels' first strip: their values are told before a grid's areas)
            pixel_ha = placed.grid.pixel_area_ha()
        ha = pixel_ha[start:stop] if isinstance(pixel_ha, np.ndarray) else pixel_ha
        part = _Tally(confusion_counts(pred, labels), AreaSums.of(pred, labels), ClassSums.of(codes, labels, pred, ha))
        total = part if total is None else total + part
    return total, pixel_ha


def evaluate_files(pred_path: str | os.PathLike, labels_path: str | os.PathLike, label_map: str = "cdl",
                   out: str | os.PathLike | None = None, overwrite: bool = False, label_band: str | None = None) -> dict:
    """Confusion matrix, accuracy, precision, recall, F1 and IoU over pixels valid in both, the crop
    area predicted against the labels' (:func:`core.metrics.crop_area_agreement`), and (for a
    land-cover product, not a binary mask) the label classes with the most wrong pixels; writes JSON
    (default ``metrics.json`` beside the prediction). Labels that cover only part of the predicted
    pixels are compared there, with a line in ``warnings`` that says so. Both rasters are read in
    strips of rows: memory does not grow with them.

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
    import rasterio

    class_map = get_class_map(label_map)
    with _open(pred_path) as src, rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        grid, nodata = _mask_file(src, pred_path)
        predicted, _ = _scan_mask(src, pred_path, nodata)  # every predicted pixel checked before the labels are read

        def valid(rows: slice, cols: slice) -> tuple[int, int]:  # (labels of part of it: a second look)
            return predicted, _scan_mask(src, pred_path, nodata, rows, cols)[1]

        placed = _placement(grid, labels_path, valid)
        warnings = _nodata_warnings(pred_path, nodata) + placed.warnings
        # the inputs' own mistakes first (each told at once), then an output in the way
        out_path = check_output_file(out or Path(pred_path).with_name("metrics.json"), overwrite,
                                     kind=("JSON", (".json",)))
        # (the codes' counts, kept for the label map's warning)
        codes = check_label_file(labels_path, class_map, grid=placed.grid if placed.inside is None else placed.whole,
                                 window=placed.inside, band=label_band)
        tally, pixel_ha = _tally(src, pred_path, nodata, placed, labels_path, class_map, label_band)
    if not tally.confusion.total:
        raise NoDataError(_no_common_pixel(predicted, codes, class_map, Path(labels_path).name))
    said = label_map_warning(codes, class_map, Path(labels_path).name, file_bands(labels_path))
    warnings += [said] if said else []
    result = {"prediction": str(pred_path), "labels": str(labels_path), "label_map": label_map,
              **tally.confusion.to_dict(),
              # the prediction as an area estimate (hectares where the grid has a CRS)
              "crop_area": tally.areas.to_dict(pixel_ha), "warnings": warnings}
    if class_map.name != "binary":  # which of the product's classes the errors fall in (hectares, as above)
        rows = [r for r in tally.classes.rows() if r["errors"]][:BY_CLASS_ROWS]
        result["errors_by_class"] = with_class_names(rows, label_map)
    with replacing(out_path) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    return result
