"""Stored values -> surface reflectance 0-1: the scale (the file's scale/offset metadata, else int
x 10000 or float 0-1), the checks that refuse values that cannot be reflectance at that scale, which
pixels are valid, and the model's features (R, G, B, NIR, NDVI). Shared by local images
(:mod:`core.raster`) and Earth Engine image exports (:mod:`core.patches`, :mod:`core.predict_export`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from core.bands import INPUT_BANDS
from core.errors import InvalidDataError


#: Reflectance below this (after scaling) is not surface reflectance; a few such pixels are real
#: (atmospheric over-correction over water and shadow, as in Landsat Collection 2 and Sentinel-2 with
#: their offsets) and are clipped to 0, but more than :data:`MAX_NEGATIVE_SHARE` of the image's
#: sampled valid pixels, or any pixel below :data:`MIN_POSSIBLE_REFLECTANCE`, means a wrong scale or
#: band order.
MIN_REFLECTANCE = -0.05
#: Share of the image's sampled valid pixels (:func:`check_reflectance`) that may lie below
#: :data:`MIN_REFLECTANCE` (clipped to 0). Tested on the image's sample, not on each window read: a
#: window over a lake or a mountain's shadow may be mostly dark, and the image must not be accepted
#: as a whole and then refused in the middle of a prediction.
MAX_NEGATIVE_SHARE = 0.05
#: No product's offset reaches below this (Landsat Collection 2: -0.2): a pixel under it is an error.
MIN_POSSIBLE_REFLECTANCE = -0.2
#: No surface reflectance reaches above this (Landsat Collection 2's largest stored value gives 1.6;
#: Sentinel-2 over bright cloud about 1.5): a pixel above it in any band (a saturated pixel, or an
#: undeclared fill such as 65535 or 32767) is read as no data, never fed to the model.
MAX_POSSIBLE_REFLECTANCE = 2.0


def one_value_in_every_band(stored: np.ndarray) -> np.ndarray:
    """Per pixel of ``stored`` (bands, n), whether every band holds the same value: the mark of a fill
    (65535, -9999) rather than of a colour."""
    return (stored == stored[:1]).all(axis=0)


def detect_scale(
    dtype: str, sample: np.ndarray, scales: Sequence[float] | None = None, offsets: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-band ``(scale, offset)`` (float64 arrays, one value per row of ``sample``) that turn stored
    values into reflectance 0-1: ``reflectance = stored * scale + offset``.

    The file's scale/offset metadata wins when it is not the default (scale 1, offset 0), e.g.
    Landsat Collection 2 (2.75e-5, -0.2). Otherwise integers, and floats whose typical (median)
    value is far above 1, are taken as reflectance x 10000. ``sample`` holds stored values (bands,
    n) of valid pixels. Pixels that hold one value in every band (an undeclared fill such as 65535)
    have no say: a float 0-1 image with a few percent of them was read as x 10000, every pixel
    then near 0 reflectance and not crop.
    """
    n = sample.shape[0]
    scale = np.array([1.0 if not s else float(s) for s in scales or ()] or [1.0] * n)
    offset = np.array([float(o or 0.0) for o in offsets or ()] or [0.0] * n)
    if len(scale) != n or len(offset) != n:
        raise ValueError(f"{len(scale)} scales and {len(offset)} offsets for {n} bands")
    if (scale != 1).any() or (offset != 0).any():
        return scale, offset
    if np.dtype(dtype).kind in "iu":
        return np.full(n, 1e-4), offset
    coloured = sample[:, ~one_value_in_every_band(sample)]  # (not a fill value in every band)
    values = coloured[np.isfinite(coloured) & (coloured != 0)]
    if values.size and np.median(values) > 2.0:  # (reflectance x 10000 below 2: 0.0002, not a real scene's)
        return np.full(n, 1e-4), offset
    return scale, offset


#: A band whose median pixel is brighter than this is not reflectance 0-1 (snow and cloud reach about 1).
MAX_MEDIAN_REFLECTANCE = 1.5
#: If the 99th percentile of every band stays below this, the values are not reflectance: 8-bit
#: display values (at most 255) read as reflectance x 10000 stay below 0.0255.
MIN_BRIGHT_REFLECTANCE = 0.03
#: If even the 1st percentile of the darkest band is above this, the values carry an offset (Landsat
#: Collection 2 stored values read as x 10000 start at 0.727); real scenes have shadow, water and
#: dark fields well below it.
MIN_DARK_REFLECTANCE = 0.4
#: Below MIN_DARK_REFLECTANCE but above this, the darkest pixels are only suspect: real scenes with
#: crops have them at 0.006-0.024 (the sample scene, the Ag-Net blocks, the Sentinel-2 and Landsat
#: fixtures), while Sentinel-2 L2A stored as reflectance x 10000 + 1000 (processing baseline 04.00,
#: 2022 on) read as x 10000 puts them at 0.1 and more. A scene of bright desert or snow may be
#: right there, so this is a warning, not a refusal.
DARK_OFFSET_WARNING = 0.08
#: Above MIN_BRIGHT_REFLECTANCE but below this, the brightest pixels are only suspect: vegetation's NIR
#: (0.3-0.5), bare soil and built-up land put the 99th percentile of the brightest band well above it
#: in every real scene here (0.38-0.65), while reflectance stored x 1000 and read as x 10000 puts it
#: at a tenth of that. A scene of water alone may be right there, so this is a warning.
DIM_SCALE_WARNING = 0.1


def reflectance_warnings(refl: np.ndarray, what: str, scaled: bool = True) -> tuple[str, ...]:
    """Warnings about reflectance that is possible but suspect (``refl``: bands x valid pixels of a
    sample, after scale and offset; ``scaled``: stored as scaled numbers, e.g. x 10000, which may be
    the wrong scale); empty for samples of fewer than MIN_CHECKED_PIXELS pixels."""
    if refl.ndim != 2 or refl.shape[1] < MIN_CHECKED_PIXELS:
        return ()
    bright = float(np.percentile(refl, 99, axis=1).max())
    if scaled and bright < DIM_SCALE_WARNING:
        return (f"even the brightest pixels of {what} have reflectance {bright:.3f} or less (99th percentile of the "
                "brightest band), where vegetation's NIR is usually 0.3 or more: if the values are reflectance x "
                f"1000, not x 10000, set the file's scale (gdal_edit.py -scale 0.001 FILE.tif), or the crop map "
                "will be wrong",)
    dark = float(np.percentile(refl, 1, axis=1).min())
    if dark <= DARK_OFFSET_WARNING:
        return ()
    return (f"even the darkest pixels of {what} have reflectance {dark:.2f} or more (1st percentile of the "
            "darkest band), where fields, water and shadow are usually below 0.03: if it is Sentinel-2 L2A from "
            "2022 on (reflectance x 10000 + 1000), set its offset (gdal_edit.py -scale 0.0001 -offset -0.1 "
            "FILE.tif) or subtract 1000, or the crop map will be wrong",)


def stored_ceiling(scales: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per band, the stored value above which a pixel's reflectance (``stored * scale + offset``)
    exceeds :data:`MAX_POSSIBLE_REFLECTANCE` (for :func:`valid_pixels`); scales are positive."""
    return (MAX_POSSIBLE_REFLECTANCE - np.asarray(offsets, np.float64)) / np.asarray(scales, np.float64)


def sample_warnings(stored: np.ndarray, scales: np.ndarray, offsets: np.ndarray, what: str) -> tuple[str, ...]:
    """Warnings about a sample (``stored``: bands x pixels with data, as stored) read with ``scales``
    and ``offsets``: pixels above any reflectance (:func:`stored_ceiling`; read as no data), naming
    the value most of them hold in every band, a fill value that the file could declare; then the
    rest's suspect but possible values (:func:`reflectance_warnings`)."""
    high = (stored > stored_ceiling(scales, offsets)[:, None]).any(axis=0)
    warnings: tuple[str, ...] = ()
    if high.any():
        fill = _undeclared_fill(stored[:, high])
        what_fill = (f": most hold {fill:g} in every band, a no-data value that the file does not declare (set it: "
                     f"gdal_edit.py -a_nodata {fill:g} FILE.tif)" if fill is not None else " (saturated pixels?)")
        warnings = (f"{high.mean():.1%} of the sampled pixels of {what} have reflectance above "
                    f"{MAX_POSSIBLE_REFLECTANCE:g} in some band, which no surface reflectance reaches; they are "
                    f"read as no data{what_fill}",)
    rest = stored[:, ~high]
    scaled = bool(np.any(np.asarray(scales) != 1.0))  # (a dim scene stored as reflectance 0-1 is just dim)
    return warnings + reflectance_warnings(rest * scales[:, None] + offsets[:, None], what, scaled)


#: Landsat Collection 2 Level-2 surface reflectance as stored: reflectance = stored * scale + offset.
LANDSAT_C2_SCALE = 2.75e-5
LANDSAT_C2_OFFSET = -0.2
#: Fewer valid pixels than this in a sample say too little for the checks: they are skipped.
MIN_CHECKED_PIXELS = 100


def _undeclared_fill(stored: np.ndarray | None) -> float | None:
    """The stored value that most of the pixels ``stored`` (bands, n: those with impossible
    reflectance) hold in every band, e.g. -9999: a no-data value that the file does not declare;
    None when there is no such value."""
    if stored is None or not stored.size:
        return None
    same = one_value_in_every_band(stored)
    if same.sum() * 2 < stored.shape[1]:
        return None
    values, counts = np.unique(stored[0, same], return_counts=True)
    return float(values[counts.argmax()]) if counts.max() * 2 >= stored.shape[1] else None


def _negative_reflectance(what: str, low: float, share: float | None = None,
                          stored: np.ndarray | None = None) -> InvalidDataError:
    """The error for reflectance that is too negative to be real (``share``: of the pixels below
    :data:`MIN_REFLECTANCE`, where known; ``stored``: those pixels' stored values, where known)."""
    many = "" if share is None else f", {share:.1%} of the pixels below {MIN_REFLECTANCE}"
    fill = _undeclared_fill(stored)
    if fill is not None:
        return InvalidDataError(
            f"{what} holds {fill:g} in every band of its pixels with negative reflectance (down to {low:.3f}{many}): "
            f"a no-data value that the file does not declare; set it as the file's nodata value "
            f"(gdal_edit.py -a_nodata {fill:g} FILE.tif) so that those pixels count as no data"
        )
    return InvalidDataError(
        f"{what} holds negative reflectance (down to {low:.3f}{many}); surface reflectance must be 0-1 (or "
        "0-10000 as integers): check the scale factors or the band order"
    )


#: What to do about values that are no reflectance, in a raster (its own advice where it may differ).
RASTER_ADVICE = "give surface reflectance as integers x 10000 or floats 0-1, or set the file's scale/offset metadata"


def check_reflectance(refl: np.ndarray, what: str, stored: np.ndarray | None = None,
                      advice: str = RASTER_ADVICE) -> None:
    """Refuse values that cannot be surface reflectance, from robust statistics of a sample.

    ``refl`` holds reflectance (after scale and offset) of valid pixels, one row per band R, G, B,
    NIR; ``stored`` the same pixels as stored (for the message); ``advice``, what to do (TFRecord
    patches have no integers nor metadata: their own). A sample of fewer than
    :data:`MIN_CHECKED_PIXELS` pixels passes.

    Raises:
        InvalidDataError: more than :data:`MAX_NEGATIVE_SHARE` of the pixels below
            :data:`MIN_REFLECTANCE` or any below :data:`MIN_POSSIBLE_REFLECTANCE` (a wrong offset,
            scale or band order), a band's median is above :data:`MAX_MEDIAN_REFLECTANCE` (values too
            large: a wrong scale), or the 99th percentile of every band is below
            :data:`MIN_BRIGHT_REFLECTANCE` (values too small: e.g. 8-bit display values), or the 1st
            percentile of every band is above :data:`MIN_DARK_REFLECTANCE` (an offset, e.g. Landsat
            Collection 2 stored values without their scale/offset metadata).
    """
    if refl.ndim != 2 or refl.shape[1] < MIN_CHECKED_PIXELS:
        return
    low = float(refl.min())
    share = float((refl < MIN_REFLECTANCE).any(axis=0).mean())
    if low < MIN_POSSIBLE_REFLECTANCE or share > MAX_NEGATIVE_SHARE:
        below = (refl < MIN_REFLECTANCE).any(axis=0)
        raise _negative_reflectance(what, low, share, None if stored is None else stored[:, below])
    p1, medians, p99 = np.percentile(refl, [1, 50, 99], axis=1)
    if medians.max() <= MAX_MEDIAN_REFLECTANCE and p99.max() >= MIN_BRIGHT_REFLECTANCE \
            and p1.min() <= MIN_DARK_REFLECTANCE:
        return
    raw = "" if stored is None else " (stored values: median {:.4g}, 99th percentile {:.4g})".format(
        *np.percentile(stored, [50, 99]))
    if p1.min() > MIN_DARK_REFLECTANCE and medians.max() <= MAX_MEDIAN_REFLECTANCE:
        raise InvalidDataError(
            f"{what} does not look like surface reflectance: even its darkest pixels have reflectance "
            f"{p1.min():.2f} or more (1st percentile of the darkest band){raw}; the values seem to carry an "
            "offset, e.g. Landsat Collection 2 surface reflectance, which is stored x 0.0000275 - 0.2: "
            + (advice if advice != RASTER_ADVICE else "set the file's scale/offset metadata or convert it to reflectance 0-1")
            + " (a scene entirely under cloud or snow has no crops to map)"
        )
    if medians.max() > MAX_MEDIAN_REFLECTANCE:
        i = int(medians.argmax())
        band = INPUT_BANDS[i] if len(medians) == len(INPUT_BANDS) else "a band"
        if stored is not None:  # that band's stored values (the others may be fine)
            raw = " (its stored values: median {:.4g}, 99th percentile {:.4g})".format(*np.percentile(stored[i], [50, 99]))
            fill = _undeclared_fill(stored[i : i + 1])
            if fill is not None:  # half its pixels or more hold one value: a fill in this band alone
                raise InvalidDataError(
                    f"{what} does not look like surface reflectance: half or more of its {band} pixels hold {fill:g}, "
                    f"reflectance {medians.max():.3g}, far above 1: a no-data value that the file does not declare? "
                    f"Set it as the file's nodata value (gdal_edit.py -a_nodata {fill:g} FILE.tif) so that those "
                    "pixels count as no data, or give surface reflectance as integers x 10000 or floats 0-1")
        landsat = stored is not None and _reflectance_at(stored, LANDSAT_C2_SCALE, LANDSAT_C2_OFFSET)
        raise InvalidDataError(
            f"{what} does not look like surface reflectance: the median {band} pixel has reflectance "
            f"{medians.max():.3g}{raw}, far above 1; the values are too large (a wrong scale?): "
            + ("they fit Landsat Collection 2 surface reflectance, whose values become reflectance x "
               f"{LANDSAT_C2_SCALE:.7f} - {-LANDSAT_C2_OFFSET:g}: if that is what it is, set the file's scale/offset "
               f"(gdal_edit.py -scale {LANDSAT_C2_SCALE:.7f} -offset {LANDSAT_C2_OFFSET:g} FILE.tif); otherwise "
               + advice if landsat else advice)
        )
    raise InvalidDataError(
        f"{what} does not look like surface reflectance: even its brightest pixels have reflectance "
        f"{p99.max():.4f} (99th percentile of the brightest band){raw}; these look like 8-bit display values "
        f"(0-255), percent or another unit, not reflectance: {advice}"
    )


def _reflectance_at(stored: np.ndarray, scale: float, offset: float) -> bool:
    """Whether stored values (bands, n) pass :func:`check_reflectance` at ``scale`` and ``offset``."""
    try:
        check_reflectance(stored * scale + offset, "")
    except InvalidDataError:
        return False
    return True


def reflectance_scaling(
    dtype: str, sample: np.ndarray, what: str, scales: Sequence[float] | None = None,
    offsets: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Detect the scale and offset of a sample of stored values (bands R, G, B, NIR x pixels, valid
    pixels only) with :func:`detect_scale`, and check the result with :func:`check_reflectance`.

    Returns per-band (scale, offset). Shared by GeoTIFFs and Earth Engine image exports.

    Raises:
        InvalidDataError: the values are not reflectance at any scale we know; the file's scale or offset
            metadata is not finite (damaged).
    """
    if sample.shape[1] > 65536:  # percentiles of 65,536 pixels are as good, and cheaper
        sample = sample[:, :: math.ceil(sample.shape[1] / 65536)]
    scale, offset = detect_scale(dtype, sample, scales, offsets)
    if not (np.isfinite(scale).all() and np.isfinite(offset).all()):  # (reflectance "nan" was said as 8-bit values)
        raise InvalidDataError(f"{what}'s scale and offset metadata are {', '.join(f'{v:g}' for v in scale)} and "
                               f"{', '.join(f'{v:g}' for v in offset)}, not all finite "
                               "numbers: the metadata is damaged; set the right ones (e.g. gdal_edit.py -scale 0.0001 "
                               "-offset 0 FILE.tif for reflectance x 10000)")
    # an undeclared fill above any reflectance (65535 in every band) is no data (valid_pixels), and has
    # no say in the checks either: framing most of an image, it made the median pixel 65535
    fill = one_value_in_every_band(sample) & (sample[0] > stored_ceiling(scale, offset)[0])
    kept = sample[:, ~fill]
    check_reflectance(kept * scale[:, None] + offset[:, None], what, kept)
    return scale, offset


def valid_pixels(raw: np.ndarray, nodata: float | None, what: str, pixels: str = "pixels",
                 ceiling: np.ndarray | None = None) -> np.ndarray:
    """Validity mask (h, w) of stored values (bands, h, w): not no data in any band, not zero in
    every band (a gap in every product we know: Landsat fill, Ag-Net missing tiles, Earth Engine's
    masked pixels), not above ``ceiling`` in any band (per band: :func:`stored_ceiling`, values that
    cannot be reflectance), and NaN only where the nodata value is NaN.

    Raises:
        InvalidDataError: NaN or infinite values without a NaN nodata value.
    """
    valid = np.ones(raw.shape[1:], dtype=bool)
    if raw.dtype.kind == "f":
        finite = np.isfinite(raw)
        if nodata is not None and np.isnan(nodata):
            valid &= finite.all(axis=0)
        elif not finite.all():
            bad = ~finite if nodata is None else ~finite & (raw != nodata)  # an infinite nodata (-inf) is no data
            if bad.any():
                raise InvalidDataError(
                    f"{what} holds NaN or infinite reflectance in {int(bad.any(axis=0).sum())} {pixels} "
                    "but declares no NaN nodata value; mark them as no data (nodata=nan) or fill them"
                )
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(raw == nodata).any(axis=0)
    valid &= ~(raw == 0).all(axis=0)
    if ceiling is not None:
        if raw.dtype.kind in "iu":  # compared in the stored type (no float copy of the window): raw > floor(c)
            top = np.iinfo(raw.dtype).max
            c = np.floor(np.asarray(ceiling, np.float64))
            if (c < top).any():
                valid &= ~(raw > np.clip(c, np.iinfo(raw.dtype).min, top).astype(raw.dtype)[:, None, None]).any(axis=0)
        else:
            valid &= ~(raw > np.asarray(ceiling).astype(raw.dtype)[:, None, None]).any(axis=0)
    return valid


def lift_zeros(bands: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Set a valid pixel of 0 in every band of ``bands`` (bands, h, w; e.g. all four clipped) to the
    smallest positive float32, in place, and return ``bands``: 0 in every band marks no data in patches,
    image exports (Earth Engine's masked pixels) and the reader (:func:`valid_pixels`), where it was dropped."""
    black = valid & (bands == 0).all(axis=0)
    if black.any():
        bands[:, black] = np.finfo(np.float32).tiny
    return bands


#: Pixels in each strip of rows that :func:`to_features` works on at once.
FEATURE_STRIP_PIXELS = 1 << 20


def to_features(raw: np.ndarray, valid: np.ndarray, scale: np.ndarray, offset: np.ndarray, what: str) -> np.ndarray:
    """:func:`_to_features` strip by strip into one output: temporaries of about a megapixel, not of the
    image (760 MB of them for 15 Mpx, 8 s on a cold machine of which most went to touching new memory).

    Raises:
        InvalidDataError: as :func:`_to_features`, said of the whole window (its counts and values).
    """
    h, w = raw.shape[1:]
    rows = max(1, FEATURE_STRIP_PIXELS // max(w, 1))
    if h <= rows:
        return _to_features(raw, valid, scale, offset, what)
    feats = np.empty((h, w, 5), np.float32)
    try:
        for r0 in range(0, h, rows):
            feats[r0:r0 + rows] = _to_features(raw[:, r0:r0 + rows], valid[r0:r0 + rows], scale, offset, what)
    except InvalidDataError:
        feats = None  # (freed before the whole window is checked again, for its message)
        return _to_features(raw, valid, scale, offset, what)
    return feats


def _to_features(raw: np.ndarray, valid: np.ndarray, scale: np.ndarray, offset: np.ndarray, what: str) -> np.ndarray:
    """Features (h, w, 5) float32 = R, G, B, NIR reflectance (``raw * scale + offset``, negatives
    clipped to 0; a valid pixel of 0 in every band is the smallest positive float32, as 0 in every
    band is no data in patches) and NDVI, from stored values (4, h, w); invalid pixels get features 0.

    Raises:
        InvalidDataError: a valid pixel below :data:`MIN_POSSIBLE_REFLECTANCE` (the share of pixels
            below :data:`MIN_REFLECTANCE` is judged once, on the image's sample: :func:`check_reflectance`).
    """
    if (scale == scale[0]).all():
        refl = np.multiply(raw, np.float32(scale[0]), dtype=np.float32)
    else:
        refl = np.multiply(raw, scale.astype(np.float32)[:, None, None], dtype=np.float32)
    if (offset != 0).any():
        refl += offset.astype(np.float32)[:, None, None]
    all_valid = bool(valid.all())
    # Cheap test on the whole window first; only a window with such values pays for the masked one.
    # fmin ignores NaN (a NaN no-data pixel would make min() NaN and skip the test) and never warns.
    if refl.size and np.fmin.reduce(refl, axis=None) < MIN_POSSIBLE_REFLECTANCE and valid.any():
        low = float((refl if all_valid else refl[:, valid]).min())
        if low < MIN_POSSIBLE_REFLECTANCE:
            below = (refl < MIN_POSSIBLE_REFLECTANCE).any(axis=0) & valid
            raise _negative_reflectance(what, low, stored=raw[:, below])
    np.maximum(refl, 0.0, out=refl)
    lift_zeros(refl, valid)
    feats = np.empty(refl.shape[1:] + (5,), dtype=np.float32)
    for i in range(4):
        feats[..., i] = refl[i]
    with np.errstate(over="ignore", invalid="ignore"):  # invalid pixels' values (e.g. float32's largest), zeroed below
        feats[..., 4] = ndvi(refl[0], refl[3])
    if not all_valid:
        feats[~valid] = 0.0
    return feats


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """(NIR - R) / (NIR + R), 0 where the sum is 0; float32."""
    red = red.astype(np.float32, copy=False)
    nir = nir.astype(np.float32, copy=False)
    den = nir + red
    out = np.zeros_like(den)
    np.divide(nir - red, den, out=out, where=np.abs(den) > 1e-6)
    return np.clip(out, -1.0, 1.0)


def sample_valid(sample: np.ndarray, nodata: float | None) -> np.ndarray:
    """Which pixels (columns) of a sample (bands, n) are valid, as :func:`valid_pixels` has it;
    NaN and infinite values are left out here (:meth:`core.raster.ImageReader.read` refuses them)."""
    valid = np.isfinite(sample).all(axis=0) & ~(sample == 0).all(axis=0)
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(sample == nodata).any(axis=0)
    return valid
