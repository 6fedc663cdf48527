"""Labels from surveyed fields: the polygons of a GeoJSON file, each with a class code in one of its
properties (1 / 0 for crop / not crop, or a land-cover product's code), burnt onto an image's grid as
a label raster. The raster is then read through a label map as any label raster is (``binary`` for
1 / 0, ``cdl`` for CDL codes, ...), so training, evaluation and the dashboard take it unchanged.

A pixel is a field's where its centre lies inside the field (as for regions and zones). Pixels in
no field have no label; pixels inside two fields of different classes have none either (which one
is right cannot be told), and are counted.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import (ConfigError, InputNotFoundError, InvalidDataError, NoDataError, OutsideImageError, RegionError,
                         cut_text)
from core.geojson import NAME_KEYS, check_size, feature_name, gc_paused, geojson_text, left_out_note, polygons_of
from core.grid import Grid

#: Largest GeoJSON file of fields read (a district's surveyed fields)
MAX_FIELDS_BYTES = 200 * 1024 * 1024

#: Property names taken for the class without being asked, in this order (case does not matter)
CLASS_KEYS = ("crop", "cropland", "is_crop", "class", "label_class", "code", "lc", "landcover", "land_cover")

#: The no-data code of the written raster (int16, as :func:`core.raster.write_codes` writes codes)
NO_LABEL = -1
#: Pixels in fields of different classes while fields are burnt (then NO_LABEL)
_CLASH = -2

_NOT_CLASSES = {k.lower() for k in NAME_KEYS} | {"crs", "parts", "fid", "objectid"}


def _features(obj: Any) -> list[dict]:
    """The Features of a FeatureCollection (or the one Feature) that hold a polygon."""
    if not isinstance(obj, dict):
        return []
    if obj.get("type") == "Feature":
        feats = [obj]
    elif obj.get("type") == "FeatureCollection" and isinstance(obj.get("features"), list):
        feats = obj["features"]
    else:
        return []
    out = []
    for f in feats:
        if not isinstance(f, dict) or not isinstance(f.get("geometry"), dict):
            continue
        try:
            if any(True for _ in polygons_of(f)):
                out.append(f)
        except RegionError:
            out.append(f)  # (a malformed polygon: refused when the fields are placed, with the reason)
    return out


def _name(feature: dict, number: int) -> str:
    return feature_name(feature) or f"feature {number}"


def class_code(value: Any) -> int | None:
    """A property's value as a class code: JSON true / false as 1 / 0, a whole number (also written as
    text, "1" or "11.0"); None for no value (null, missing or ""). Anything else raises.

    Raises:
        InvalidDataError: text that is no number, a fraction, a negative number or one too large for a code.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return int(value)
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise InvalidDataError(f"{value!r} is text, not a class code") from None
    if isinstance(number, int) and not 0 <= number <= 32767:  # (before isfinite: 10**400 is no float)
        raise InvalidDataError(f"{cut_text(repr(value), 40)} is not a class code (codes are 0 to 32767)")
    if not isinstance(number, (int, float)) or not math.isfinite(number) or number != int(number):
        raise InvalidDataError(f"{value!r} is not a whole number, so not a class code")
    if not 0 <= number <= 32767:
        raise InvalidDataError(f"{value!r} is not a class code (codes are 0 to 32767)")
    return int(number)


def class_properties(obj: Any) -> list[str]:
    """The properties of a GeoJSON's fields that can be their class: every value of it a class code
    (:func:`class_code`) or empty, and at least one value given. The usual class names
    (:data:`CLASS_KEYS`) come first, then the others in the order of the file; names and ids are left out."""
    order: list[str] = []
    given: set[str] = set()
    refused: set[str] = set()
    for feature in _features(obj):
        props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        for key, value in props.items():
            if key.lower() in _NOT_CLASSES or key in refused:
                continue
            if key not in order:
                order.append(key)
            try:
                if class_code(value) is not None:
                    given.add(key)
            except InvalidDataError:
                refused.add(key)
    found = [k for k in order if k in given and k not in refused]
    rank = {k: i for i, k in enumerate(CLASS_KEYS)}
    return sorted(found, key=lambda k: (rank.get(k.lower(), len(rank)), found.index(k)))


def pick_class_property(obj: Any, file_name: str = "the GeoJSON") -> str:
    """The class property to use without being told: the only one there is, or the first of the usual
    class names (:data:`CLASS_KEYS`); a property of a usual name that holds no class codes is still
    that one (:func:`burn_fields` then names the field whose value is not a code).

    Raises:
        ConfigError: the file holds no field; there is no such property, or several and none of the usual
            names (the message lists them).
    """
    if not _features(obj):  # ("its fields have no properties" was said of a file without fields)
        raise ConfigError(f"{file_name} holds no field: no Feature with a Polygon or MultiPolygon geometry; give a "
                          "GeoJSON of the surveyed fields' outlines, each with its class (e.g. crop = 1 or 0)")
    found = class_properties(obj)
    if len(found) == 1 or (found and found[0].lower() in CLASS_KEYS):
        return found[0]
    keys = sorted({k for f in _features(obj) if isinstance(f.get("properties"), dict) for k in f["properties"]})
    usual = [k for k in keys if k.lower() in CLASS_KEYS]
    if not found and usual:  # a class named as usual but not held as codes: burning says which field holds what
        return usual[0]
    if not found:
        said = f" (its properties: {', '.join(keys[:8])})" if keys else " (its fields have no properties)"
        raise ConfigError(f"no property of {file_name}'s fields holds class codes{said}; give each field a "
                          "property such as crop = 1 (crop) or 0 (not crop), or a land-cover product's code")
    raise ConfigError(f"{file_name}'s fields have several properties that could be their class: "
                      f"{', '.join(found[:8])}; say which (--property)")


def is_fields_file(name: str | os.PathLike | None) -> bool:
    """Whether a file name is a GeoJSON's (.geojson or .json), not a label raster's."""
    return name is not None and Path(name).suffix.lower() in (".geojson", ".json")


def suggested_label_map(obj: Any, prop: str) -> str | None:
    """The label map for the fields' ``prop``: ``binary`` where every value is 1 / 0 (or true / false),
    the product's map where ``prop`` is a product's band name (WorldCereal's ``LC``), else None."""
    from core.labels import label_map_named_by

    values = set()
    for feature in _features(obj):
        props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        try:
            values.add(class_code(props.get(prop)))
        except InvalidDataError:
            return None
    values.discard(None)
    if values and values <= {0, 1}:
        return "binary"
    return label_map_named_by([prop])


def class_choices(obj: Any, file_name: str = "the GeoJSON") -> dict[str, str | None]:
    """The properties that can be the fields' class, each with the label map it suggests
    (:func:`suggested_label_map`), the one :func:`pick_class_property` picks first (for a form).

    Raises:
        ConfigError: as :func:`pick_class_property`.
    """
    first = pick_class_property(obj, file_name)
    return {k: suggested_label_map(obj, k) for k in [first, *(k for k in class_properties(obj) if k != first)]}


@dataclass(frozen=True)
class FieldLabels:
    """Class codes (int16 on the grid, :data:`NO_LABEL` outside the fields) burnt from a GeoJSON's fields."""

    codes: np.ndarray
    prop: str
    fields: int  # fields with a class, inside the image or not
    pixels_by_code: dict[int, int]
    conflict_pixels: int = 0  # inside fields of different classes: no label
    without_class: tuple[str, ...] = ()  # fields with no value of the property (left out)
    left_out: tuple[str, ...] = ()  # features that hold no polygon

    @property
    def labelled_pixels(self) -> int:
        return int(sum(self.pixels_by_code.values()))

    def notes(self, file_name: str) -> list[str]:
        """What was left out or could not be told, in words."""
        out = []
        if self.without_class:
            shown = ", ".join(self.without_class[:5])
            more = f" and {len(self.without_class) - 5} more" if len(self.without_class) > 5 else ""
            out.append(f"{len(self.without_class)} field(s) of {file_name} have no {self.prop} and are left out: "
                       f"{shown}{more}")
        if self.conflict_pixels:
            out.append(f"{self.conflict_pixels:,} pixel(s) lie in overlapping fields of different classes and have "
                       "no label")
        if self.left_out:
            out.append(left_out_note(self.left_out, file_name))
        return out


def _faulty_field(group: list[dict], feats: list[dict], crs_member: dict) -> str | None:
    """The name (or number in the file) of the first field of ``group`` that is no region on its own, or None."""
    from core.region import Region

    for feature in group:
        try:
            Region.from_geojson({"type": "FeatureCollection", "features": [feature], **crs_member})
        except RegionError:
            return _name(feature, next(i for i, f in enumerate(feats, 1) if f is feature))
    return None


@gc_paused()
def burn_fields(obj: Any, grid: Grid, prop: str, file_name: str = "the GeoJSON") -> FieldLabels:
    """Burn the fields of a GeoJSON (a FeatureCollection or a Feature, in lon/lat, a CRS its ``crs``
    member names, or the image's columns and rows with ``"crs": "image"``) onto ``grid``: each pixel
    whose centre lies in a field gets the field's ``prop`` as its class code.

    Raises:
        InvalidDataError: a field's ``prop`` is no class code (the message names the field).
        RegionError: the GeoJSON holds no polygon, a polygon is malformed (the message names its field), or
            the fields' kind of coordinates does not fit the grid (lon/lat fields on an image without a CRS, or image
            coordinates on a georeferenced one).
        NoDataError: no field has a ``prop``, or no field covers a pixel centre of the image.
    """
    from rasterio.transform import Affine

    from core.geojson import features_without_area
    from core.geometry import pixels_inside
    from core.raster import row_strips
    from core.region import Region

    feats = _features(obj)
    if not feats:
        raise RegionError(f"{file_name} holds no field (no Polygon or MultiPolygon feature); give the fields as "
                          "polygons, each with its class in a property")
    groups: dict[int, list[dict]] = {}
    without = []
    for i, feature in enumerate(feats, 1):
        props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        try:
            code = class_code(props.get(prop))
        except InvalidDataError as err:
            raise InvalidDataError(f"{_name(feature, i)} in {file_name}: {prop} = {err}; give each field's class as "
                                   "a number (1 crop / 0 not crop, or the label map's code)") from None
        if code is None:
            without.append(_name(feature, i))
        else:
            groups.setdefault(code, []).append(feature)
    if not groups:
        names = sorted({k for f in feats if isinstance(f.get("properties"), dict) for k in f["properties"]}, key=str)
        shown = ", ".join(map(str, names[:12])) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        raise NoDataError(f"no field of {file_name} has a value of {prop!r}; choose the property that holds the class"
                          + (f" (its fields have {cut_text(shown, 300)})" if names else " (its fields have no properties)"))
    # one int16 array, the output, and strips of rows: 2 bytes a pixel (a mask, a "taken" and a "clash" array
    # over the image, and rasterio's 64-bit burn, were 21: 2 GB for 100 Mpx under fields over all of it)
    codes = np.full((grid.height, grid.width), NO_LABEL, np.int16)
    crs_member = {"crs": obj["crs"]} if isinstance(obj, dict) and "crs" in obj else {}
    for code, group in sorted(groups.items()):
        try:
            region = Region.from_geojson({"type": "FeatureCollection", "features": group, **crs_member})
            geom = region.geometry_in(grid)
            w = region.window(grid, geom)
        except OutsideImageError:
            continue
        except RegionError as err:  # (a message about a region: these are the fields; the one at fault named)
            raise RegionError(f"{_faulty_field(group, feats, crs_member) or 'the fields'} of {file_name}: {err}") from None
        for r0, r1 in row_strips(w.height, w.width):
            inside = pixels_inside([geom], (r1 - r0, w.width), Affine.translation(w.col_off, w.row_off + r0))
            sub = codes[w.row_off + r0 : w.row_off + r1, w.col_off : w.col_off + w.width]
            held = sub != NO_LABEL
            sub[inside & held & (sub != code)] = _CLASH  # (a clash stays one)
            sub[inside & ~held] = code
    counts = np.zeros(2 - _CLASH + 32767, np.int64)  # codes _CLASH .. 32767
    for r0, r1 in row_strips(grid.height, grid.width):
        strip = codes[r0:r1]
        counts += np.bincount(strip.ravel().astype(np.int32) - _CLASH, minlength=len(counts))
        strip[strip == _CLASH] = NO_LABEL
    by_code = {c: int(counts[c - _CLASH]) for c in np.flatnonzero(counts[-_CLASH:]).tolist()}
    if not by_code:
        raise NoDataError(f"no field of {file_name} covers a pixel of the image ({grid.width:,} x {grid.height:,} px): "
                          "the fields lie outside it, or are smaller than its pixels")
    return FieldLabels(codes, prop, sum(len(g) for g in groups.values()), by_code, int(counts[0]), tuple(without),
                       tuple(features_without_area(obj)))


@gc_paused()
def load_fields(data: bytes, file_name: str = "the GeoJSON", max_bytes: int = MAX_FIELDS_BYTES) -> dict:
    """The JSON object of a GeoJSON file of fields (UTF-8, UTF-16 or Latin-1 text).

    Raises:
        RegionError: the file is too large, or is not JSON text (a binary file: the message names it).
    """
    check_size(len(data), file_name, max_bytes)
    try:
        text = geojson_text(data)
    except RegionError as err:  # ("the file is not GeoJSON text" named none: an image given as the fields?)
        raise RegionError(f"{file_name}: {err}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise RegionError(f"{file_name} is not valid JSON (line {err.lineno}, column {err.colno}: "
                          f"{err.msg.lower()}), so not GeoJSON; save the fields as GeoJSON, e.g. with QGIS") from None
    except RecursionError:
        raise RegionError(f"{file_name} nests its JSON too deeply to be GeoJSON") from None
    except ValueError:  # (a number of thousands of digits: Python's limit on reading integers)
        raise RegionError(f"{file_name} holds a number thousands of digits long, which no GeoJSON of fields has") from None
    if not isinstance(obj, dict):
        raise RegionError(f"{file_name} is JSON but not GeoJSON (a FeatureCollection of the fields)")
    return obj


def write_field_labels(fields_path: str | os.PathLike, image_path: str | os.PathLike, out_path: str | os.PathLike,
                       prop: str | None = None, overwrite: bool = False) -> dict:
    """Burn a GeoJSON file of fields onto an image's grid (:func:`burn_fields`) and write the class codes
    as a one-band int16 GeoTIFF (band named ``prop``, -1 = no label) at ``out_path``, atomically.
    ``prop`` None: :func:`pick_class_property`. Returns what was written, in figures.

    Raises:
        OutputExistsError, ConfigError: ``out_path`` exists without ``overwrite``, or is a folder (checked first);
            ConfigError also as :func:`pick_class_property`.
        InputNotFoundError, CorruptFileError: the fields file or the image cannot be read.
        RegionError, InvalidDataError, NoDataError: as :func:`load_fields` and :func:`burn_fields`.
    """
    from core.files import GEOTIFF_SUFFIXES, check_output_file
    from core.raster import grid_of_file, write_codes

    out = check_output_file(out_path, overwrite, kind=("a GeoTIFF", GEOTIFF_SUFFIXES))
    src = Path(fields_path)
    if not src.is_file():
        raise InputNotFoundError(f"{src} does not exist" if not src.exists() else f"{src} is a folder, not a GeoJSON file")
    grid = grid_of_file(image_path)
    check_size(src.stat().st_size, src.name, MAX_FIELDS_BYTES)  # (before reading it all)
    obj = load_fields(src.read_bytes(), src.name)
    prop = prop or pick_class_property(obj, src.name)
    burnt = burn_fields(obj, grid, prop, src.name)
    write_codes(out, burnt.codes, grid, description=prop)
    return {"out": str(out), "property": prop, "fields": burnt.fields, "labelled_pixels": burnt.labelled_pixels,
            "pixels_by_code": {str(k): v for k, v in burnt.pixels_by_code.items()},
            "conflict_pixels": burnt.conflict_pixels, "warnings": burnt.notes(src.name)}
