"""Land-cover products -> crop (1) / not crop (0) / no data (255) masks.

A :class:`ClassMap` names the codes of one product that count as cropland. The same maps are
used for local rasters (here) and for Earth Engine label recipes (``core.ee.labels``), so a
"crop" pixel means the same thing everywhere. Every metric and area in the project uses them.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.errors import ConfigError, InvalidDataError

CROP = 1
NOT_CROP = 0
NODATA = 255


def _ranges(*spans: tuple[int, int]) -> frozenset[int]:
    return frozenset(v for lo, hi in spans for v in range(lo, hi + 1))


#: Every class map's codes fit in a byte (CDL, GLC30, WorldCover, Dynamic World, GLC-FCS30D, WorldCereal LC).
MAX_CODE = 255


@dataclass(frozen=True)
class ClassMap:
    """Which codes of a land-cover product are cropland.

    ``crop_codes`` are crop; ``nodata_codes`` (and NaN) are no data; every other code is not crop.
    """

    name: str
    title: str
    crop_codes: frozenset[int]
    nodata_codes: frozenset[int] = frozenset({0})
    band: str | None = None  # band name in Earth Engine / a multi-band label file

    def to_mask(self, labels: np.ndarray) -> np.ndarray:
        """Map raw class codes to a uint8 mask (1 crop, 0 not crop, 255 no data).

        Raises:
            InvalidDataError: if a binary map receives codes other than 0/1 (and no data), or the
                values cannot be class codes (fractions, or above :data:`MAX_CODE`: an image).
        """
        arr = np.asarray(labels)
        invalid = np.zeros(arr.shape, dtype=bool)
        if arr.dtype.kind == "f":
            invalid = ~np.isfinite(arr)
            arr = np.where(invalid, -1, arr)
        if arr.dtype.kind == "f" and arr.size and (arr != np.floor(arr)).any():
            self.refuse_non_codes(float(arr[arr != np.floor(arr)][0]), {}, arr.size)
        # (integer codes as they are: an int64 copy of a uint8 raster was 8 bytes a pixel)
        codes = arr if arr.dtype.kind in "iu" else arr.astype(np.int64, copy=False)
        if codes.size and codes.max() > MAX_CODE:
            high, pixels = np.unique(codes[codes > MAX_CODE], return_counts=True)
            self.refuse_non_codes(None, dict(zip(high.tolist(), pixels.tolist())), codes.size)
        if self.name == "binary":
            bad = ~invalid & ~np.isin(codes, [0, 1, 255])
            if bad.any():
                _refuse_binary_values(np.unique(codes[bad])[:5].tolist())
        # a table of the codes 0-MAX_CODE (the only ones left but negative ones, no data): np.isin of every
        # pixel against the crop codes took 0.5-1.5 s on 16.8 Mpx
        table = np.full(MAX_CODE + 1, NOT_CROP, np.uint8)
        table[[c for c in self.crop_codes if 0 <= c <= MAX_CODE]] = CROP
        table[[c for c in self.nodata_codes if 0 <= c <= MAX_CODE]] = NODATA
        # indexed, not np.take: take casts every code to intp first (8 bytes a pixel for a uint8 raster); codes are
        # at most MAX_CODE here, and a negative one (no data, set below) is clipped to -1, a place in the table
        out = table[codes] if codes.dtype.kind == "u" else table[np.clip(codes, -1, MAX_CODE)]
        gaps = invalid | (codes < 0) if codes.dtype.kind != "u" else invalid
        if gaps.any():
            out[gaps] = NODATA
        return out

    def refuse_non_codes(self, fraction: float | None, high: dict[int, int], pixels: int,
                         low: dict[int, int] | None = None) -> None:
        """Refuse values that cannot be class codes (as :meth:`to_mask` finds them, or :class:`CodeCounts`
        over a raster read in parts): ``fraction``, a value that is not a whole number (None: none);
        ``high``, values above :data:`MAX_CODE` -> their pixels, of ``pixels`` in all; for a binary
        mask, ``low``, values below 0 -> their pixels (other maps take them for no data).

        Raises:
            InvalidDataError: saying what the raster looks like instead, or which no-data value to declare.
        """
        if fraction is not None:
            raise InvalidDataError(
                f"label codes must be whole numbers, but this raster holds values like {fraction:g}; "
                "it looks like an image or a probability map: give a land-cover label raster"
            )
        if len(high) == 1:  # one value beside the codes: a fill value that the file does not declare
            (value, count), = high.items()
            raise InvalidDataError(
                f"label codes of {self.title} are 0-{MAX_CODE}, but {count / pixels:.1%} of this raster's pixels hold "
                f"{int(value)}, a no-data value that the file does not declare; set it as the file's nodata "
                f"(gdal_edit.py -a_nodata {int(value)} FILE.tif) so that those pixels count as no data"
            )
        if high:
            raise InvalidDataError(
                f"label codes of {self.title} are 0-{MAX_CODE}, but this raster holds {int(max(high))}; it looks "
                "like an image (reflectance) or another band: give the land-cover label raster (or, for evaluate, its band of class codes with --label-band)"
            )
        if self.name == "binary" and low:
            _refuse_binary_values(sorted(low)[:5])


def _refuse_binary_values(found: list[int]) -> None:
    """Refuse values of a binary label mask other than 0, 1 and 255 (``found``: some of them).

    Raises:
        InvalidDataError: saying to choose the product's label map.
    """
    raise InvalidDataError(f"a binary label mask may only hold 0, 1 and 255 (no data), found {found}; "
                           "choose the label map of the product (e.g. --label-map cdl)")


CLASS_MAPS: dict[str, ClassMap] = {
    m.name: m
    for m in (
        ClassMap(
            "cdl",
            "USDA NASS Cropland Data Layer",
            _ranges((1, 61), (66, 77), (204, 254)),
            # 81 "Clouds/No Data": a class of the CDLs of 2007 and before (none in the shipped scene's 2015)
            frozenset({0, 81, 255}),
            band="cropland",
        ),
        ClassMap("glc30", "GLC30 / GlobeLand30 (10 = cultivated land)", frozenset({10}), frozenset({0, 255})),
        # 255 is no class of any product here; it is the usual byte fill (and this project's no data)
        ClassMap("worldcover", "ESA WorldCover (40 = cropland)", frozenset({40}), frozenset({0, 255}), band="Map"),
        ClassMap("dynamicworld", "Dynamic World (4 = crops)", frozenset({4}), frozenset({255}), band="label"),
        ClassMap(
            "glcfcs30d",
            "GLC-FCS30D (10, 11, 12, 20 = cropland)",
            frozenset({10, 11, 12, 20}),
            frozenset({0, 250, 255}),
        ),
        ClassMap("worldcereal", "WorldCereal LC (11 = annual cropland)", frozenset({11}), frozenset({0, 255}), band="LC"),
        ClassMap("binary", "Binary mask (1 = crop, 0 = not crop)", frozenset({1}), frozenset({255})),
    )
}


@dataclass(frozen=True)
class LabelCounts:
    """Crop and not-crop label pixels where the image has data (:func:`label_counts`)."""

    crop: int
    not_crop: int

    @property
    def labelled(self) -> int:
        return self.crop + self.not_crop

    @property
    def crop_share(self) -> float | None:
        """The crop share of the labelled pixels; None when none is labelled."""
        return self.crop / self.labelled if self.labelled else None


#: labels covering less than this share of an image's pixels are a few fields (surveyed ones, say),
#: not a land-cover product with gaps: the rest of the image is "not labelled" rather than no data,
#: and the label layer leaves it clear over the imagery (:func:`core.overlays.labels_legend`)
FEW_LABELS_SHARE = 0.5


def few_labels(labelled: int, imaged: int) -> bool:
    """Whether ``labelled`` pixels of an image's ``imaged`` ones (with data) are a few fields
    (:data:`FEW_LABELS_SHARE`)."""
    return labelled < FEW_LABELS_SHARE * imaged


def label_counts(mask: np.ndarray, valid: np.ndarray) -> LabelCounts:
    """Count a crop mask's classes (:data:`CROP`, :data:`NOT_CROP`) over the pixels where ``valid``
    (the image has data): a label under no image data is never counted, as in every metric."""
    return LabelCounts(int(((mask == CROP) & valid).sum()), int(((mask == NOT_CROP) & valid).sum()))


def label_map_named_by(descriptions: Sequence[str | None]) -> str | None:
    """The label map whose product's band name one of ``descriptions`` is, matched as
    :func:`core.raster.label_band_index` matches it (e.g. WorldCereal's ``LC``, WorldCover's ``Map``);
    None when no band, or bands of several products, are so named."""
    names = {(d or "").upper() for d in descriptions}
    found = [m.name for m in CLASS_MAPS.values() if m.band and m.band.upper() in names]
    return found[0] if len(found) == 1 else None


def get_class_map(name: str) -> ClassMap:
    """Return the class map called ``name``.

    Raises:
        ConfigError: if no such map exists (the message lists the known ones).
    """
    try:
        return CLASS_MAPS[name.lower()]
    except KeyError:
        raise ConfigError(
            f"unknown label map {name!r}; choose one of: {', '.join(sorted(CLASS_MAPS))}"
        ) from None


#: The CDL legend (code, name) shipped with the sample scene (Ag-Net's ``cdlvalue.csv``).
CDL_LEGEND = Path(__file__).resolve().parent.parent / "assets" / "sample" / "cdlvalue.csv"

#: Class names of the other products (from their documentation; GLC-FCS30D: its 35-class fine legend).
_NAMES: dict[str, dict[int, str]] = {
    "worldcover": {10: "Tree cover", 20: "Shrubland", 30: "Grassland", 40: "Cropland", 50: "Built-up",
                   60: "Bare / sparse vegetation", 70: "Snow and ice", 80: "Permanent water bodies",
                   90: "Herbaceous wetland", 95: "Mangroves", 100: "Moss and lichen"},
    "dynamicworld": {0: "Water", 1: "Trees", 2: "Grass", 3: "Flooded vegetation", 4: "Crops",
                     5: "Shrub and scrub", 6: "Built", 7: "Bare", 8: "Snow and ice"},
    "glc30": {10: "Cultivated land", 20: "Forest", 30: "Grassland", 40: "Shrubland", 50: "Wetland",
              60: "Water bodies", 70: "Tundra", 80: "Artificial surfaces", 90: "Bare land",
              100: "Permanent snow and ice"},
    "glcfcs30d": {10: "Rainfed cropland", 11: "Herbaceous cover cropland", 12: "Tree or shrub cover (orchard) cropland",
                  20: "Irrigated cropland", 51: "Open evergreen broadleaved forest",
                  52: "Closed evergreen broadleaved forest", 61: "Open deciduous broadleaved forest",
                  62: "Closed deciduous broadleaved forest", 71: "Open evergreen needle-leaved forest",
                  72: "Closed evergreen needle-leaved forest", 81: "Open deciduous needle-leaved forest",
                  82: "Closed deciduous needle-leaved forest", 91: "Open mixed-leaf forest",
                  92: "Closed mixed-leaf forest", 120: "Shrubland", 121: "Evergreen shrubland",
                  122: "Deciduous shrubland", 130: "Grassland", 140: "Lichens and mosses", 150: "Sparse vegetation",
                  152: "Sparse shrubland", 153: "Sparse herbaceous", 181: "Swamp", 182: "Marsh", 183: "Flooded flat",
                  184: "Saline", 185: "Mangrove", 186: "Salt marsh", 187: "Tidal flat", 190: "Impervious surfaces",
                  200: "Bare areas", 201: "Consolidated bare areas", 202: "Unconsolidated bare areas",
                  210: "Water body", 220: "Permanent ice and snow"},
    "worldcereal": {11: "Annual cropland", 13: "Grassland", 60: "Built-up", 99: "Other"},
    "binary": {0: "Not crop", 1: "Crop"},
}


@lru_cache(maxsize=1)
def _cdl_names() -> dict[int, str]:
    """Code -> name from :data:`CDL_LEGEND` ({} if the file is missing or unreadable)."""
    names: dict[int, str] = {}
    try:
        with CDL_LEGEND.open(newline="") as f:
            for row in csv.reader(f):
                if len(row) >= 2 and row[0].strip().isdigit() and row[1].strip():
                    names[int(row[0])] = row[1].strip()
    except (OSError, UnicodeDecodeError):
        return {}
    return names


def _names(label_map: str) -> dict[int, str]:
    """Code -> name of a product's classes ({} when not known)."""
    return _cdl_names() if label_map.lower() == "cdl" else _NAMES.get(label_map.lower(), {})


def class_name(label_map: str, code: int) -> str:
    """The product's name for class ``code`` (e.g. cdl 176 -> "Grassland/Pasture"); "class N" when unknown."""
    return _names(label_map).get(int(code), f"class {int(code)}")


def with_class_names(rows: list[dict], label_map: str) -> list[dict]:
    """``rows`` (dicts with a ``code``) each with the class's ``name`` added (see :func:`class_name`)."""
    return [{**r, "name": class_name(label_map, r["code"])} for r in rows]


def legend_codes(label_map: str) -> frozenset[int]:
    """The class codes the product defines (CDL: from :data:`CDL_LEGEND`); empty when not known."""
    return frozenset(_names(label_map))


#: Share of labelled pixels whose codes the product does not define above which the labels are
#: taken for another product's (a few unknown codes are tolerated: legends change between years).
MAX_UNKNOWN_SHARE = 0.5


def _refuse_a_crop_mask(counts: np.ndarray, class_map: ClassMap, what: str) -> None:
    """Refuse a 0/1 crop mask (255 = no data, as this project and Earth Engine fetches write them)
    read with a product's class map in which 0 is no data: its not-crop pixels would be dropped and
    every score would look perfect. Maps with a real class 0 (Dynamic World's water) are left alone.

    Raises:
        InvalidDataError: saying to use the binary label map.
    """
    if 0 not in class_map.nodata_codes or 0 in legend_codes(class_map.name):
        return
    zeros, ones = int(counts[0]), int(counts[1])
    others = int(counts.sum()) - zeros - ones - int(counts[NODATA])
    # the harm is in the zeros (not crop) read as no data: a mask with little crop is refused too
    if others == 0 and ones > 0 and zeros >= 0.01 * (zeros + ones):
        raise InvalidDataError(
            f"{what}: the codes are only 0 and 1 (besides no data), a crop mask, not {class_map.title}'s classes (in which "
            f"0 is no data: the not-crop pixels would be dropped); choose the label map binary (--label-map binary on "
            f"the command line, 'Label map' in the dashboard)"
        )


def _labelled(counts: np.ndarray, class_map: ClassMap) -> np.ndarray:
    """``counts`` (pixels per code 0-:data:`MAX_CODE`) without ``class_map``'s no-data codes."""
    counts = counts.copy()
    for code in class_map.nodata_codes:
        if 0 <= code <= MAX_CODE:
            counts[code] = 0
    return counts


def labelled_pixels(codes: "CodeCounts", class_map: ClassMap) -> int:
    """The pixels counted in ``codes`` that ``class_map`` reads as crop or not crop (not its no data, nor
    values outside 0-:data:`MAX_CODE`)."""
    return int(_labelled(codes.counts, class_map).sum())


def crop_pixels(codes: "CodeCounts", class_map: ClassMap) -> int:
    """The pixels counted in ``codes`` that ``class_map`` reads as crop (its crop codes, not its no data)."""
    counts = _labelled(codes.counts, class_map)
    return int(sum(int(counts[c]) for c in class_map.crop_codes if 0 <= c <= MAX_CODE))


def _share_in(counts: np.ndarray, codes: frozenset[int]) -> float:
    """The share of the pixels counted in ``counts`` (not all zero) that hold one of ``codes``."""
    return float(sum(int(counts[c]) for c in codes if 0 <= c <= MAX_CODE)) / int(counts.sum())


def _fitting(counts: np.ndarray, class_map: ClassMap) -> list[ClassMap]:
    """The other products (not binary masks) whose classes and no-data codes hold 95% of ``counts``."""
    return [m for m in CLASS_MAPS.values() if m.name not in ("binary", class_map.name)
            and legend_codes(m.name) and _share_in(counts, legend_codes(m.name) | m.nodata_codes) >= 0.95]


#: Labels that read as crop at this share or more, and that another product's legend fits, get
#: :func:`label_map_warning`: codes of another product read with the wrong map (WorldCover's 10-60
#: and Dynamic World's 1-8 are crop codes of CDL) looked like a region of crop alone.
ALL_CROP_SHARE = 0.99
#: ... when the other product reads at least this share of them as crop: one that reads (almost) none
#: tells nothing (a region of CDL's corn and soy, 1 and 5, is Dynamic World's trees and shrub).
MIN_OTHER_CROP_SHARE = 0.05
#: Labels with at least this share of codes the label map's product does not define, whose codes all fit
#: another product's legend, get :func:`label_map_warning` too (a WorldCover tile read as CDL: 95% crop).
UNKNOWN_WARN_SHARE = 0.05


def _undefined_codes(counts: np.ndarray, known: frozenset[int], most: int = 5) -> list[int]:
    """The commonest codes among ``counts`` (per code) that a product's legend ``known`` lacks, for a message."""
    return [int(c) for c in np.argsort(counts)[::-1][:8] if counts[c] and c not in known][:most]


def label_map_warning(codes: "np.ndarray | CodeCounts", class_map: ClassMap, what: str = "the labels",
                      descriptions: Sequence[str | None] = ()) -> str | None:
    """A warning when labels read with ``class_map`` are crop almost everywhere (:data:`ALL_CROP_SHARE`)
    while their codes are also the classes of another product that reads some (:data:`MIN_OTHER_CROP_SHARE`)
    but much less of them as crop: the label map is then likely not the labels' product, and every score would be wrong (a
    whole region of crop may be right, so this is a warning; a product that reads none of them as
    crop tells nothing: CDL's corn and soy, 1 and 5, are Dynamic World's trees and shrub); or when
    :data:`UNKNOWN_WARN_SHARE` or more of them hold codes ``class_map``'s product does not define while
    another product's legend fits them all (WorldCover read as CDL: 95% crop, too few for the first). ``codes``:
    the raw class codes, -1 = no data (:func:`core.raster.read_label_classes`), or their :class:`CodeCounts`
    (summed over a raster read in parts); ``descriptions``:
    the file's band names (a band named as ``class_map``'s product's, e.g. CDL's ``cropland``,
    settles it). None when there is nothing to say.
    """
    if label_map_named_by(descriptions) == class_map.name:
        return None
    counts = _labelled((codes if isinstance(codes, CodeCounts) else CodeCounts.of(np.asarray(codes))).counts, class_map)
    if class_map.name == "binary" or counts.sum() < 100:
        return None

    def share(codes: frozenset[int]) -> float:
        return _share_in(counts, codes)

    advice = ("if the labels come from another product, choose its label map (--label-map on the command line, "
              "'Label map' in the dashboard), or every figure is wrong")
    if share(class_map.crop_codes) >= ALL_CROP_SHARE:
        others = [f"{m.name} ({share(m.crop_codes):.0%} crop)" for m in _fitting(counts, class_map)
                  if MIN_OTHER_CROP_SHARE <= share(m.crop_codes) < 0.9]
        if others:
            found = ", ".join(str(int(c)) for c in np.flatnonzero(counts)[:8])
            found += ", ..." if np.count_nonzero(counts) > 8 else ""
            return (f"{what}: {share(class_map.crop_codes):.1%} of the labelled pixels read as crop with "
                    f"{class_map.title}, and their codes ({found}) are also classes of {', '.join(others)}; {advice}")
    known = legend_codes(class_map.name)
    unknown = 1.0 - share(known) if known else 0.0
    if unknown >= UNKNOWN_WARN_SHARE:  # (refused beyond MAX_UNKNOWN_SHARE: check_label_codes)
        # a WorldCover tile read as CDL: its 80 and 90 are no CDL classes, and its 10-50 CDL crops (95% crop)
        others = [f"{m.name} ({share(m.crop_codes):.0%} crop)" for m in _fitting(counts, class_map)]
        if others:
            return (f"{what}: {unknown:.0%} of the labelled pixels hold codes that {class_map.title} does not define "
                    f"(e.g. {', '.join(map(str, _undefined_codes(counts, known)))}), and all their codes are classes "
                    f"of {', '.join(others)}; "
                    f"{advice}")
    return None


#: How a user removes a raster's no-data declaration.
UNSET_NODATA = "e.g. gdal_edit.py -unsetnodata FILE, or write no data as 255"


def _refuse_a_declared_class(declared: float | None, class_map: ClassMap, what: str) -> None:
    """Refuse a 0/1 crop mask whose file declares one of its two classes (0 or 1) as no data, as
    rasterizing tools often write them: those pixels would be dropped from training and every score
    (with 0 declared, every score would look perfect).

    Raises:
        InvalidDataError: saying how to remove the declaration.
    """
    if class_map.name == "binary" and declared in (0, 1):
        meaning = "not crop" if declared == 0 else "crop"
        raise InvalidDataError(
            f"{what} declares {int(declared)} as no data, but in a crop mask {int(declared)} is {meaning}: those "
            f"pixels would be left out of training and of every score; remove the declaration ({UNSET_NODATA})"
        )


def _codes(raw: np.ndarray) -> np.ndarray | None:
    """The values of ``raw`` (masked or not) that are not masked or NaN, flat; None where some are not
    whole numbers (not codes: :meth:`ClassMap.to_mask` says so)."""
    data = np.ma.compressed(raw) if np.ma.isMaskedArray(raw) else np.asarray(raw).ravel()
    if data.dtype.kind == "f":
        data = data[np.isfinite(data)]
        if data.size and (data != np.floor(data)).any():
            return None
    return data


def _refuse_codes_as_a_crop_mask(counts: np.ndarray, band_name: str | None, what: str) -> None:
    """Refuse the codes of a land-cover product (values other than 0, 1 and 255; ``counts``: pixels
    per code 0-:data:`MAX_CODE`) read as a crop mask, naming the products whose classes they fit (the
    one whose band ``band_name`` is first).

    Raises:
        InvalidDataError: saying which label map to choose.
    """
    others = counts.copy()
    others[[NOT_CROP, CROP, NODATA]] = 0
    if not others.any():
        return
    fits = sorted(_fitting(counts, CLASS_MAPS["binary"]),
                  key=lambda m: not (band_name and m.band and m.band.upper() == band_name.upper()))
    top = [int(c) for c in np.argsort(others)[::-1][:3] if others[c]]
    which = " or ".join(f"--label-map {m.name}" for m in fits[:3]) or "--label-map"
    raise InvalidDataError(
        f"{what}: its codes are not 0 and 1 (e.g. {', '.join(map(str, top))}) but a land-cover product's classes, so "
        f"it is not a crop mask; choose the product's label map ({which} on the command line, 'Label map' in the "
        "dashboard)"
    )


@dataclass(frozen=True)
class CodeCounts:
    """The values of a label band as :func:`check_code_counts` judges them, summed over the parts of
    a raster read in turn (``a + b``): ``counts``, pixels per whole code 0-:data:`MAX_CODE`;
    ``high``, values above it -> their pixels; ``fraction``, a value that is not a whole number (the
    first found; None: none); ``pixels``, all pixels read (masked ones too); ``low``, values below 0
    -> their pixels. Masked and NaN values are no data and counted in ``pixels`` only."""

    counts: np.ndarray
    high: dict[int, int]
    fraction: float | None
    pixels: int
    low: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: np.ndarray, chunk: int = 1 << 22) -> "CodeCounts":
        """The counts of ``raw`` (masked or not); whole numbers are counted ``chunk`` pixels at a time."""
        values, hidden = np.ma.getdata(raw), np.ma.getmask(raw)
        fraction = None
        if values.dtype.kind in "iu":
            counts, rest = whole_code_counts(values, None if hidden is np.ma.nomask else hidden, chunk)
        else:
            data = _codes(raw)
            if data is None:  # (some values are fractions: the first of them)
                data = np.ma.compressed(raw) if np.ma.isMaskedArray(raw) else np.asarray(raw).ravel()
                data = data[np.isfinite(data)]
                fraction, data = float(data[data != np.floor(data)][0]), data[:0]
            data = data.astype(np.int64, copy=False)
            inside = (data >= 0) & (data <= MAX_CODE)
            counts, rest = np.bincount(data[inside], minlength=MAX_CODE + 1), data[~inside]
        high, pixels = np.unique(rest[rest > MAX_CODE], return_counts=True)
        low, low_pixels = np.unique(rest[rest < 0], return_counts=True)
        return cls(counts, dict(zip(high.tolist(), pixels.tolist())), fraction, int(np.size(raw)),
                   dict(zip(low.tolist(), low_pixels.tolist())))

    def __add__(self, other: "CodeCounts") -> "CodeCounts":
        def added(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
            return {value: a.get(value, 0) + b.get(value, 0) for value in a.keys() | b.keys()}

        return CodeCounts(self.counts + other.counts, added(self.high, other.high),
                          self.fraction if self.fraction is not None else other.fraction, self.pixels + other.pixels,
                          added(self.low, other.low))


def whole_code_counts(values: np.ndarray, hidden: np.ndarray | None = None,
                      chunk: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """(pixels per code 0-:data:`MAX_CODE`, the values outside that range) of whole-number ``values``,
    leaving out the ``hidden`` (masked) ones, ``chunk`` pixels at a time: no copy of every pixel
    unmasked and another in int64 (1.4 s and 200 MB a read of a 16.8 Mpx label raster)."""
    flat = values.reshape(-1)
    hide = None if hidden is None else np.broadcast_to(hidden, values.shape).reshape(-1)
    counts, outside = np.zeros(MAX_CODE + 1, np.int64), []
    for i in range(0, flat.size, chunk):
        part = flat[i : i + chunk] if hide is None else flat[i : i + chunk][~hide[i : i + chunk]]
        if not part.size:
            continue
        if part.min() < 0 or part.max() > MAX_CODE:
            outside.append(part[(part < 0) | (part > MAX_CODE)].astype(np.int64))
            part = part[(part >= 0) & (part <= MAX_CODE)]
        counts += np.bincount(part.astype(np.intp, copy=False), minlength=MAX_CODE + 1)  # (uint64: refused uncast)
    return counts, np.concatenate(outside) if outside else np.zeros(0, np.int64)


def check_label_codes(raw: np.ndarray, class_map: ClassMap, band_name: str | None = None, what: str = "the labels",
                      declared_nodata: float | None = None) -> None:
    """Refuse labels that are evidently another product's than ``class_map`` says, before they give
    wrong crop masks and metrics: a label band named as another product's band (e.g. WorldCereal's
    ``LC``) whose codes all fit that product, or codes that mostly are not ``class_map``'s classes.

    ``raw`` holds the label codes (masked or not); values that cannot be codes are left to
    :meth:`ClassMap.to_mask`. Binary masks are checked there too. ``declared_nodata`` is the file's
    no-data value (masked in ``raw``): a 0/1 crop mask may not declare its 0 or 1 as no data.

    Raises:
        InvalidDataError: naming the label map(s) the codes fit, or a crop mask whose file declares a
            class as no data.
    """
    check_code_counts(CodeCounts.of(raw), class_map, band_name, what, declared_nodata)


def check_code_counts(found: CodeCounts, class_map: ClassMap, band_name: str | None = None, what: str = "the labels",
                      declared_nodata: float | None = None) -> None:
    """:func:`check_label_codes` of the labels whose values ``found`` counts (a raster read in parts);
    values that cannot be codes are left to :meth:`ClassMap.refuse_non_codes`.

    Raises:
        InvalidDataError: as :func:`check_label_codes`.
    """
    if class_map.name == "binary":
        # a product's codes read as a crop mask are told as such first (CDL, which declares 0 as no data,
        # was told to remove that declaration: advice that damaged a correct file)
        if found.fraction is None:
            _refuse_codes_as_a_crop_mask(found.counts, band_name, what)
        _refuse_a_declared_class(declared_nodata, class_map, what)
        return
    if found.fraction is not None or found.high:  # an image or another band, not codes: refuse_non_codes says so
        return
    counts = found.counts
    # (a file declaring 0 as no data is left as it is here: a crop mask's not-crop pixels, or a product's
    # background around one class, as CDL clipped to a corn field; only the binary map says which)
    _refuse_a_crop_mask(counts, class_map, what)
    counts = _labelled(counts, class_map)
    if counts.sum() == 0:
        return

    def share_in(codes: frozenset[int]) -> float:
        return _share_in(counts, codes)

    if band_name:
        for other in _fitting(counts, class_map):
            if other.band and other.band.upper() == band_name.upper() and (class_map.band or "").upper() != band_name.upper():
                raise InvalidDataError(
                    f"{what}: the label band is named {band_name!r}, the band of {other.title}, and its codes are "
                    f"that product's classes, not {class_map.title}'s; choose the label map {other.name} "
                    f"(--label-map {other.name} on the command line, 'Label map' in the dashboard)"
                )
    known = legend_codes(class_map.name)
    if not known:
        return
    unknown = 1.0 - share_in(known)
    if unknown > MAX_UNKNOWN_SHARE:
        top = _undefined_codes(counts, known)
        fits = [m.name for m in _fitting(counts, class_map)]
        raise InvalidDataError(
            f"{what}: {unknown:.0%} of the labelled pixels hold codes that {class_map.title} does not define "
            f"(e.g. {', '.join(map(str, top))}), so these labels are another product's; choose its label map"
            + (f" (the codes fit: {', '.join(fits)})" if fits else "")
            + " (--label-map on the command line, 'Label map' in the dashboard)"
        )
