"""Accuracy figures over valid pixels: confusion matrix, precision, recall, F1, IoU, threshold
curves and crop areas. Pixels that are no data (255) in either prediction or labels never count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from core.errors import GridMismatchError, InvalidDataError, NoDataError
from core.labels import CROP, MAX_CODE, NODATA, NOT_CROP, whole_code_counts


@dataclass(frozen=True)
class Confusion:
    """Pixel counts: true/false positives/negatives, crop being positive."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @staticmethod
    def _div(a: float, b: float) -> float:
        return float(a / b) if b else 0.0

    @property
    def accuracy(self) -> float:
        return self._div(self.tp + self.tn, self.total)

    @property
    def precision(self) -> float:
        return self._div(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return self._div(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return self._div(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def iou(self) -> float:
        return self._div(self.tp, self.tp + self.fp + self.fn)

    def __add__(self, other: "Confusion") -> "Confusion":
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    def scores(self) -> dict:
        """Precision, recall, F1 and IoU, None where undefined (as the Quality page's "n/a"): precision
        without predicted crop; recall without crop in the labels; F1 and IoU without crop in either
        (false crop where the labels have none scores 0, as in :mod:`core.zones`, not "n/a")."""
        label_crop, pred_crop = self.tp + self.fn, self.tp + self.fp
        either = self.tp + self.fp + self.fn
        return {"precision": self.precision if pred_crop else None, "recall": self.recall if label_crop else None,
                "f1": self.f1 if either else None, "iou": self.iou if either else None}

    def to_dict(self) -> dict:
        return {
            "confusion_matrix": {"rows": "labels (not crop, crop)", "cols": "prediction (not crop, crop)",
                                 "matrix": [[self.tn, self.fp], [self.fn, self.tp]]},
            **asdict(self),
            "valid_pixels": self.total,
            "accuracy": self.accuracy,
            **self.scores(),
        }


def _check_same_shape(pred_mask: np.ndarray, label_mask: np.ndarray) -> None:
    """Raises GridMismatchError if a prediction and its labels differ in shape."""
    if pred_mask.shape != label_mask.shape:
        raise GridMismatchError(f"prediction {pred_mask.shape} and labels {label_mask.shape} differ in shape; use labels on the prediction's grid")


def confusion(pred_mask: np.ndarray, label_mask: np.ndarray) -> Confusion:
    """Confusion of two uint8 masks (1 crop, 0 not crop, 255 no data) over pixels valid in both.

    Raises:
        GridMismatchError: the shapes differ.
        InvalidDataError: the prediction holds values other than 0, 1 and 255 (not a crop mask).
        NoDataError: no pixel is valid in both.
    """
    counts = confusion_counts(pred_mask, label_mask)
    if not counts.total:
        raise NoDataError(NO_COMMON_PIXEL)
    return counts


#: what :func:`confusion` says when no pixel is valid in both masks (:func:`core.evaluate.evaluate_files` gives
#: the particular reason after its first part)
NONE_IN_BOTH = "no pixel is valid in both the prediction and the labels"
NO_COMMON_PIXEL = (f"{NONE_IN_BOTH} (one of them is all no data, or they do not overlap); use labels that cover the "
                   "predicted area")


def confusion_counts(pred_mask: np.ndarray, label_mask: np.ndarray) -> Confusion:
    """:func:`confusion`, all zero where no pixel is valid in both (a part of a raster read in turn).

    Raises:
        GridMismatchError, InvalidDataError: as :func:`confusion`.
    """
    _check_same_shape(pred_mask, label_mask)
    check_mask(pred_mask)
    ok = (pred_mask != NODATA) & (label_mask != NODATA)
    p = pred_mask[ok] == CROP
    y = label_mask[ok] == CROP
    tp = int(np.count_nonzero(p & y))
    fp = int(np.count_nonzero(p & ~y))
    fn = int(np.count_nonzero(~p & y))
    return Confusion(tp, fp, fn, int(p.size) - tp - fp - fn)


@dataclass(frozen=True)
class ClassSums:
    """Per class code of a label product (index = code), over pixels valid in both masks with a code
    (-1 is no data): its ``pixels``, those predicted crop (``as_crop``), those the labels call crop
    (``labelled_crop``), and with pixel areas (else None) the ground area in hectares of its pixels
    (``area_ha``), of those predicted crop (``as_crop_ha``) and of those not (``as_not_crop_ha``).
    Sums over the parts of a raster read in turn (``a + b``); :meth:`rows` gives :func:`class_errors`."""

    pixels: np.ndarray
    as_crop: np.ndarray
    labelled_crop: np.ndarray
    area_ha: np.ndarray | None
    as_crop_ha: np.ndarray | None
    as_not_crop_ha: np.ndarray | None

    @classmethod
    def of(cls, codes: np.ndarray, label_mask: np.ndarray, pred_mask: np.ndarray,
           pixel_area_ha: float | np.ndarray | None = None) -> "ClassSums":
        """The sums of one part (as :func:`class_errors` takes it).

        Raises:
            GridMismatchError, InvalidDataError: as :func:`class_errors`.
        """
        _check_class_shapes(codes, label_mask, pred_mask)
        check_mask(pred_mask)
        ok = (label_mask != NODATA) & (pred_mask != NODATA) & (codes >= 0)
        c, y, p = codes[ok].astype(np.int64), label_mask[ok] == CROP, pred_mask[ok] == CROP
        pixels = np.bincount(c)
        as_crop, labelled = (np.bincount(c, weights=w).astype(np.int64) for w in (p, y))
        areas = None
        if pixel_area_ha is not None:  # each pixel's area (one number, or one per row)
            weights = np.broadcast_to(np.asarray(pixel_area_ha, dtype=np.float64), codes.shape)[ok]
            areas = [np.bincount(c, weights=w) for w in (weights, weights * p, weights * ~p)]
        return cls(pixels, as_crop, labelled, *(areas or (None, None, None)))

    def __add__(self, other: "ClassSums") -> "ClassSums":
        def add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            if a is None or b is None:
                return None
            n = max(len(a), len(b))
            return np.pad(a, (0, n - len(a))) + np.pad(b, (0, n - len(b)))

        return ClassSums(*(add(getattr(self, f), getattr(other, f))
                           for f in ("pixels", "as_crop", "labelled_crop", "area_ha", "as_crop_ha", "as_not_crop_ha")))

    def rows(self) -> list[dict]:
        """:func:`class_errors`' rows of these sums."""
        found = np.flatnonzero(self.pixels)
        pixels, as_crop = self.pixels[found], self.as_crop[found]
        is_crop = self.labelled_crop[found] > pixels / 2  # one class: one kind of label
        errors = np.where(is_crop, pixels - as_crop, as_crop)
        missed, false = int(errors[is_crop].sum()), int(errors[~is_crop].sum())
        areas = wrong_areas = [None] * len(found)
        if self.area_ha is not None:  # wrong: missed crop of a crop class, false crop of another
            areas = self.area_ha[found].tolist()
            wrong_areas = np.where(is_crop, self.as_not_crop_ha[found], self.as_crop_ha[found]).tolist()
        rows = [{"code": int(k), "crop": bool(crop), "pixels": int(n), "predicted_crop": float(a / n), "errors": int(e),
                 "share": float(e / (missed if crop else false)) if (missed if crop else false) else 0.0,
                 "area_ha": None if ha is None else round(ha, 4), "errors_ha": None if wrong_ha is None else round(wrong_ha, 4)}
                for k, crop, n, a, e, ha, wrong_ha in zip(found, is_crop, pixels, as_crop, errors, areas, wrong_areas)]
        return sorted(rows, key=lambda r: (-r["errors"], r["code"]))


def class_errors(codes: np.ndarray, label_mask: np.ndarray, pred_mask: np.ndarray,
                 pixel_area_ha: float | np.ndarray | None = None) -> list[dict]:
    """Where the errors are, by class of the label product, over pixels valid in both masks.

    One row per class code: ``code``, ``crop`` (whether the class counts as crop), ``pixels``,
    ``predicted_crop`` (the share of its pixels predicted crop), ``errors`` (its pixels predicted
    wrong: missed crop for a crop class, false crop otherwise) and ``share`` (of all missed crop,
    or of all false crop); most errors first. With ``pixel_area_ha`` (see :func:`area_ha`), also the
    ground area of its pixels, ``area_ha``, and of its errors, ``errors_ha`` (None without).

    Raises:
        GridMismatchError: the shapes differ.
        InvalidDataError: ``pred_mask`` is not a crop mask.
    """
    _check_class_shapes(codes, label_mask, pred_mask)
    # summed over strips of rows (ClassSums' int64 codes and float64 weights of every pixel: 29 bytes a pixel at once)
    rows = max(1, CLASS_STRIP_PIXELS // max(codes.shape[-1], 1)) if codes.ndim == 2 else max(len(codes), 1)
    total = None
    for r in range(0, max(len(codes), 1), rows):
        ha = pixel_area_ha[r : r + rows] if isinstance(pixel_area_ha, np.ndarray) and pixel_area_ha.ndim else pixel_area_ha
        part = ClassSums.of(codes[r : r + rows], label_mask[r : r + rows], pred_mask[r : r + rows], ha)
        total = part if total is None else total + part
    return total.rows()


#: Pixels in each strip of rows :func:`class_errors` sums at once
CLASS_STRIP_PIXELS = 1 << 20


def _check_class_shapes(codes: np.ndarray, label_mask: np.ndarray, pred_mask: np.ndarray) -> None:
    """Raises GridMismatchError where class codes, labels and prediction differ in shape."""
    if not (codes.shape == label_mask.shape == pred_mask.shape):
        raise GridMismatchError(f"class codes {codes.shape}, labels {label_mask.shape} and prediction {pred_mask.shape} "
                                "differ in shape")


#: The scores' names as the pages show them, in the order the Model page's validation figures and the
#: Quality page's metrics show them
SCORE_TITLES = {"iou": "IoU", "f1": "F1", "precision": "Precision", "recall": "Recall", "accuracy": "Accuracy"}
#: What each score of a crop map against its labels means, in plain words (the dashboard's help on them).
SCORE_HELP = {
    "iou": "Intersection over union: the crop that both the map and the labels show, as a share of the crop "
           "either shows. 1 is a perfect match; both kinds of error (false and missed crop) lower it.",
    "f1": "The balance of precision and recall (their harmonic mean; the Dice score): high only when both are.",
    "precision": "Of the pixels the map calls crop, the share the labels call crop too (low: much false crop).",
    "recall": "Of the pixels the labels call crop, the share the map finds (low: much missed crop).",
    "accuracy": "The share of all pixels, crop or not, on which the map and the labels agree. High even for a poor "
                "crop map where crop is rare: IoU and F1 say more.",
}


#: Fewer labelled pixels than this of either class make the scores of a region a rough guide only.
FEW_PIXELS = 1000


def few_pixels_note(tp: int, fp: int, fn: int, tn: int, least: int = FEW_PIXELS) -> str | None:
    """A caution when the labels hold under ``least`` pixels of crop or of not crop (one field, say):
    a few pixels then move the scores, and the threshold that scores best is a guess. None when
    both classes have enough (or the labels hold no crop, which is said otherwise)."""
    crop, other = tp + fn, fp + tn
    if not crop or min(crop, other) >= least:
        return None
    which = "either class" if max(crop, other) < least else "crop" if crop < least else "not crop"
    return (f"Few labelled pixels of {which} ({crop:,} crop, {other:,} not crop): a handful of pixels moves "
            "these scores, and the best threshold found here is a guess; judge the model on a larger region.")


def check_mask(mask: np.ndarray) -> None:
    """Check that ``mask`` is a crop mask: values 0 (not crop), 1 (crop) and 255 (no data) only.

    Raises:
        InvalidDataError: another value occurs (a probability map or an image, not a crop mask).
    """
    bad = (mask != NOT_CROP) & (mask != CROP) & (mask != NODATA)
    if bad.any():
        raise InvalidDataError(f"the prediction holds the value {mask[bad].flat[0]}, but a crop mask holds only 0, 1 and 255; "
                               "give the crop_mask.tif written by predict (not probability.tif or an image)")


def threshold_curve(prob: np.ndarray, label_mask: np.ndarray, thresholds: Sequence[float] | None = None) -> list[dict]:
    """Precision, recall, F1 and IoU at each threshold (probabilities 0-1, NaN = no data); None where
    undefined (:meth:`Confusion.scores`), as the figures at one threshold.

    Raises:
        NoDataError: no pixel is valid in both.
    """
    if thresholds is None:
        thresholds = np.round(np.arange(0.05, 0.96, 0.05), 2)
    ok = np.isfinite(prob) & (label_mask != NODATA)
    if not ok.any():
        raise NoDataError(NONE_IN_BOTH)
    from core.predict import PERCENT_CHUNK, percent_cut, whole_percent

    # Histogram of whole percents (as core.predict.threshold_mask compares them) once, then
    # cumulative sums: O(pixels) whatever the number of thresholds, and exactly the masks' counts;
    # a megapixel at a time (whole_percent's float64 and int64 copies of every pixel: 17 bytes a pixel)
    pos, neg = np.zeros(101, np.int64), np.zeros(101, np.int64)
    probs, labels, oks = np.ravel(prob), np.ravel(label_mask), ok.reshape(-1)
    for i in range(0, probs.size, PERCENT_CHUNK):
        part = oks[i : i + PERCENT_CHUNK]
        bins = np.clip(whole_percent(probs[i : i + PERCENT_CHUNK][part]), 0, 100)
        y = labels[i : i + PERCENT_CHUNK][part] == CROP
        pos += np.bincount(bins[y], minlength=101)
        neg += np.bincount(bins[~y], minlength=101)
    pos_ge = np.cumsum(pos[::-1])[::-1]
    neg_ge = np.cumsum(neg[::-1])[::-1]
    npos, nneg = int(pos.sum()), int(neg.sum())
    rows = []
    for t in thresholds:
        k = max(percent_cut(t), 0)
        tp, fp = int(pos_ge[k]) if k <= 100 else 0, int(neg_ge[k]) if k <= 100 else 0
        c = Confusion(tp, fp, npos - tp, nneg - fp)
        rows.append({"threshold": float(t), **c.scores(), "accuracy": c.accuracy,
                     "crop_fraction": (tp + fp) / max(npos + nneg, 1)})
    return rows


def everything_crop_f1(tp: int, fp: int, fn: int, tn: int) -> float | None:
    """The F1 of calling every pixel crop on the labels of a confusion matrix (the baseline a map must
    beat: 2s / (1 + s) for a crop share s of the labels); None without labelled crop."""
    labelled = tp + fp + fn + tn
    share = (tp + fn) / labelled if labelled else 0.0
    return 2 * share / (1 + share) if share > 0 else None


#: a best F1 less than this above the threshold in use is not worth a move (it moved the crop area by
#: several percent for +0.001 F1)
BEST_F1_GAIN = 0.005


@dataclass(frozen=True)
class BestThreshold:
    """The threshold of a :func:`threshold_curve` with the best F1, against the one in use."""

    threshold: float
    f1: float
    #: predicted / labelled crop at it (recall / precision), None where nothing is predicted crop
    area_ratio: float | None
    #: whether moving to it gains at least :data:`BEST_F1_GAIN` F1 over the threshold in use
    worth_moving: bool
    #: whether it is the threshold in use
    in_use: bool


def best_threshold(curve: Sequence[dict], current: float, current_f1: float | None,
                   min_gain: float = BEST_F1_GAIN, baseline: float | None = None) -> BestThreshold | None:
    """The threshold of ``curve`` (:func:`threshold_curve` rows) with the best F1, or None where no
    threshold finds any crop (every F1 0 or undefined: no crop predicted, or none in the labels). A
    threshold at which every pixel is crop (its ``crop_fraction`` 1) is no map but the "everything is
    crop" baseline, never offered: on labels mostly crop its F1 beat the model's, and the button made
    the whole region crop. With ``baseline`` (the F1 of that map, :func:`everything_crop_f1`), nor is a
    threshold whose F1 does not beat it by ``min_gain`` (None where none does): near that score a map
    calls nearly every pixel crop (an untrained model's "best" 0.561 against 0.559, at a threshold that
    made 99.5% of the region crop)."""
    curve = [r for r in curve if r.get("crop_fraction", 0.0) < 1.0
             and (baseline is None or (r["f1"] or 0.0) >= baseline + min_gain)]
    if not curve:
        return None
    best = max(curve, key=lambda r: r["f1"] or 0.0)
    if not (best["f1"] or 0.0) > 0:
        return None
    ratio = best["recall"] / best["precision"] if best["precision"] else None
    in_use = abs(best["threshold"] - float(current)) <= 1e-9
    gain = best["f1"] - (current_f1 or 0.0)
    return BestThreshold(float(best["threshold"]), float(best["f1"]), ratio, not in_use and gain >= min_gain, in_use)


def class_areas(codes: np.ndarray, crop_codes: frozenset[int] | set[int],
                pixel_area_ha: float | np.ndarray | None = None) -> list[dict]:
    """How much of each class of a label product there is, largest first, over codes >= 0 (-1 = no data).

    One row per class: ``code``, ``crop`` (in ``crop_codes``), ``pixels``, ``share`` (of the pixels
    with a class) and ``area_ha`` (None without a CRS; see :func:`area_ha`).
    """
    found = idx = ok = areas = None
    per_row = isinstance(pixel_area_ha, np.ndarray) and codes.ndim == 2 and pixel_area_ha.shape in (
        (codes.shape[0], 1), (codes.shape[0],))
    if codes.dtype.kind in "iu" and per_row and codes.size and codes.min() >= -1 and codes.max() <= MAX_CODE:
        tally, row_areas = _codes_by_row(codes, np.asarray(pixel_area_ha, np.float64).reshape(-1))
        found = np.flatnonzero(tally)
        counts, areas = tally[found], row_areas[found].tolist()
    elif codes.dtype.kind in "iu" and not isinstance(pixel_area_ha, np.ndarray):
        # counted, not sorted (0.45 s for 15 Mpx, 0.03 s counted so); codes are at most MAX_CODE once read
        tally, outside = whole_code_counts(codes)
        if not (outside >= 0).any():
            found = np.flatnonzero(tally)
            counts = tally[found]
    if found is None:  # (areas per pixel need each pixel's class)
        ok = codes >= 0
        found, idx, counts = np.unique(codes[ok], return_inverse=True, return_counts=True)
    total = int(counts.sum())
    if areas is None and pixel_area_ha is None:
        areas = [None] * len(found)
    elif areas is None and isinstance(pixel_area_ha, np.ndarray):  # per pixel: one pass over the pixels
        weights = np.broadcast_to(pixel_area_ha, codes.shape)[ok]
        areas = np.bincount(idx.ravel(), weights=weights, minlength=len(found)).tolist()
    elif areas is None:
        areas = (counts * float(pixel_area_ha)).tolist()
    rows = [{"code": int(k), "crop": int(k) in crop_codes, "pixels": int(n), "share": int(n) / total, "area_ha": a}
            for k, n, a in zip(found, counts, areas)]
    return sorted(rows, key=lambda r: (-r["pixels"], r["code"]))


def _codes_by_row(codes: np.ndarray, row_ha: np.ndarray, strip_pixels: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """(pixels, hectares) of each code 0-:data:`MAX_CODE` of ``codes`` (h, w; -1 = no data, left out), the
    area of a pixel of row i being ``row_ha[i]`` (a lon/lat grid's): each strip of rows' codes counted by row,
    then weighted by its rows' areas (the class of every pixel sorted, with its inverse and its weight, was
    26 bytes a pixel)."""
    h, w = codes.shape
    side = MAX_CODE + 2  # (-1, then 0..MAX_CODE)
    pixels, areas = np.zeros(side, np.int64), np.zeros(side, np.float64)
    rows = max(1, min(strip_pixels // max(w, 1), 4096))  # (and a (rows, codes) table of at most 8 MB)
    for r0 in range(0, h, rows):
        part = codes[r0 : r0 + rows]
        n = len(part)
        at = (part.astype(np.int32) + 1) + side * np.arange(n, dtype=np.int32)[:, None]
        by_row = np.bincount(at.reshape(-1), minlength=n * side).reshape(n, side)
        pixels += by_row.sum(axis=0)
        areas += row_ha[r0 : r0 + n] @ by_row
    return pixels[1:], areas[1:]


def crop_area(mask: np.ndarray, pixel_area_ha: float | np.ndarray | None) -> dict:
    """Pixels, crop pixels, crop fraction of valid pixels, and crop area in hectares (None without a CRS)."""
    valid = mask != NODATA
    crop = mask == CROP
    n_valid, n_crop = int(valid.sum()), int(crop.sum())
    return {"pixels": int(mask.size), "valid_pixels": n_valid, "crop_pixels": n_crop,
            "crop_fraction": n_crop / n_valid if n_valid else None, "crop_area_ha": area_ha(crop, pixel_area_ha)}


def crop_area_agreement(pred_mask: np.ndarray, label_mask: np.ndarray, pixel_area_ha: float | np.ndarray | None) -> dict:
    """The crop area of the prediction against that of the labels, over pixels valid in both: their
    crop pixels, hectares (None without a CRS) and the prediction's relative difference (None without
    crop in the labels). Pixel errors of both kinds cancel here, which is what an area estimate needs.

    Raises:
        GridMismatchError: the shapes differ.
    """
    return AreaSums.of(pred_mask, label_mask).to_dict(pixel_area_ha)


@dataclass(frozen=True)
class AreaSums:
    """The crop pixels of a prediction and of its labels over pixels valid in both, row by row (so
    that their hectares are those of the whole rasters to the last digit); the rows of the parts of a
    raster read in turn, top to bottom, follow on (``a + b``). :meth:`to_dict` gives
    :func:`crop_area_agreement`."""

    predicted: np.ndarray
    labelled: np.ndarray

    @classmethod
    def of(cls, pred_mask: np.ndarray, label_mask: np.ndarray) -> "AreaSums":
        """The sums of one part's rows.

        Raises:
            GridMismatchError: the shapes differ.
        """
        _check_same_shape(pred_mask, label_mask)
        ok = (pred_mask != NODATA) & (label_mask != NODATA)
        pred, lab = ok & (pred_mask == CROP), ok & (label_mask == CROP)
        return cls(np.count_nonzero(pred, axis=-1).reshape(-1), np.count_nonzero(lab, axis=-1).reshape(-1))

    def __add__(self, other: "AreaSums") -> "AreaSums":
        return AreaSums(np.concatenate([self.predicted, other.predicted]), np.concatenate([self.labelled, other.labelled]))

    def to_dict(self, pixel_area_ha: float | np.ndarray | None) -> dict:
        """:func:`crop_area_agreement`'s figures, with ``pixel_area_ha`` as :func:`area_ha` takes it (of all the rows)."""
        n_pred, n_lab = int(self.predicted.sum()), int(self.labelled.sum())
        pred_ha, lab_ha = _rows_area_ha(self.predicted, pixel_area_ha), _rows_area_ha(self.labelled, pixel_area_ha)
        if not n_lab:
            difference = None
        elif isinstance(pixel_area_ha, np.ndarray):  # pixels of different sizes (by row): by area
            difference = (pred_ha - lab_ha) / lab_ha
        else:
            difference = (n_pred - n_lab) / n_lab

        def ha(value: float | None) -> float | None:  # (to a square metre, as summary.json: no 9.620000000000001)
            return None if value is None else round(value, 4)

        return {"predicted_pixels": n_pred, "labelled_pixels": n_lab, "predicted_ha": ha(pred_ha), "labelled_ha": ha(lab_ha),
                "difference": difference}


#: the units the dashboard can show areas in (files, JSON and the CLI always give hectares): name ->
#: (symbol, units in a hectare); an international acre is 0.40468564224 ha
AREA_UNITS = {"hectares": ("ha", 1.0), "acres": ("ac", 1 / 0.40468564224)}


def format_area(ha: float, unit: str = "hectares") -> str:
    """An area of ``ha`` hectares for people, in ``unit`` (a name of :data:`AREA_UNITS`): tenths below
    1,000, whole units from there (a large region's "1,537,572.5 ha" did not fit a column, and
    "8,510.0 ha" beside "16,671 ha" read as two precisions; a tenth of a hectare is about one 30 m
    pixel), hundredths below 1 (a small field's "0.0 ha" said nothing).

    Raises:
        ConfigError: an unknown unit.
    """
    if unit not in AREA_UNITS:
        from core.errors import ConfigError

        raise ConfigError(f"unknown area unit {unit!r}; choose one of {', '.join(AREA_UNITS)}")
    symbol, per_ha = AREA_UNITS[unit]
    value = ha * per_ha
    if value == 0:
        return f"0 {symbol}"
    if value < 1:
        return f"{value:.2f} {symbol}"
    return f"{value:,.1f} {symbol}" if round(value, 1) < 1_000 else f"{value:,.0f} {symbol}"


def share_text(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage to a tenth, never rounded to a whole that it is not: "over
    99.9%" for 74,997 of 75,000 (not "100.0%", beside a note of the 3 without), "under 0.1%" for a few."""
    share = part / whole if whole else 0.0
    if 0.999 < share < 1:
        return "over 99.9%"
    if 0 < share < 0.001:
        return "under 0.1%"
    return f"{share:.1%}"


def format_hectares(ha: float) -> str:
    """An area in hectares for people (:func:`format_area`)."""
    return format_area(ha, "hectares")


def area_text(ha: float | None, pixels: int, unit: str = "hectares") -> str:
    """An area in short: ``ha`` hectares in ``unit`` (:func:`format_area`) where it is known (a grid with a
    CRS), else the count of ``pixels`` ("1,234 px").

    Raises:
        ConfigError: an unknown unit.
    """
    return format_area(ha, unit) if ha is not None else f"{int(pixels):,} px"


def crop_area_text(stats: dict, unit: str = "hectares") -> str:
    """The crop area of :func:`crop_area`'s ``stats`` in short: in ``unit`` where the grid has a CRS, pixels otherwise."""
    return area_text(stats["crop_area_ha"], stats["crop_pixels"], unit)


def nominal_area(pixels: int, pixel_size_m: float | None, unit: str = "hectares") -> str | None:
    """For an image without a CRS whose pixel size is known otherwise (the sample: Landsat's 30 m),
    the ground area of ``pixels`` in words ("about 9,966 ha at 30 m pixels"), in ``unit``; None when
    the size is not known. Only an estimate: nothing places such an image, so its pixels' true size is
    not checked."""
    if not pixel_size_m or pixel_size_m <= 0:
        return None
    return f"about {format_area(pixels * pixel_size_m**2 / 1e4, unit)} at {pixel_size_m:g} m pixels"


def crop_rule(threshold: float) -> str:
    """The rule of a crop layer at ``threshold``, as legends and titles word it ("probability ≥ 0.50"):
    a pixel is crop where the model's crop probability is at least the threshold."""
    return f"probability ≥ {threshold:.2f}"


def describe_crop(stats: dict, grid, unit: str = "hectares", pixel_size_m: float | None = None) -> str:
    """One line for a map handout: the crop area (in ``unit`` where the grid has a CRS, pixels
    otherwise, with their :func:`nominal_area` at ``pixel_size_m``) and share of the valid pixels of
    :func:`crop_area`'s ``stats``, and the grid's CRS and pixel size, or that it has none."""
    share = f"{stats['crop_fraction']:.1%}" if stats["crop_fraction"] is not None else "n/a"
    if stats["crop_area_ha"] is None:
        ground = nominal_area(stats["crop_pixels"], pixel_size_m, unit)
        return (f"Crop {stats['crop_pixels']:,} px{f' ({ground})' if ground else ''}, {share} of "
                f"{stats['valid_pixels']:,} valid pixels. Image coordinates: not georeferenced.")
    from rasterio.crs import CRS

    crs = CRS.from_user_input(grid.crs)
    authority = crs.to_authority()
    name = ":".join(authority) if authority else (crs.to_dict().get("proj") or "custom CRS")
    size = grid.pixel_size_m()
    return (f"Crop {format_area(stats['crop_area_ha'], unit)}, {share} of the {stats['valid_pixels']:,} valid "
            f"pixels. {name}, {f'{size:,.0f}' if size >= 10 else f'{size:.2g}'} m pixels.")


def area_ha(selected: np.ndarray, pixel_area_ha: float | np.ndarray | None) -> float | None:
    """Ground area in hectares of the True pixels of ``selected`` (None without a CRS); the pixel
    area is one number, or a per-row column (h, 1) for geographic and Mercator CRSs (Grid.pixel_area_ha)."""
    if isinstance(pixel_area_ha, np.ndarray):  # row by row (no (h, w) array of areas: 134 MB at 4096 x 4096)
        return _rows_area_ha(np.count_nonzero(selected, axis=-1), pixel_area_ha)
    return _rows_area_ha(np.count_nonzero(selected), pixel_area_ha)


def _rows_area_ha(pixels: np.ndarray | int, pixel_area_ha: float | np.ndarray | None) -> float | None:
    """:func:`area_ha` of ``pixels`` selected in each row (or in all, with one pixel area)."""
    if pixel_area_ha is None:
        return None
    if isinstance(pixel_area_ha, np.ndarray):
        return float(pixels @ pixel_area_ha[:, 0])
    return int(np.sum(pixels)) * float(pixel_area_ha)
