"""Crop area by zone: the crop mask summed inside each part of a region (each field, farm or district
of a GeoJSON file), as an agronomist's table.

A zone is one feature of the GeoJSON (all its polygons), named as :func:`core.geojson.part_names`
names it (:meth:`core.region.Region.part_regions`). Each zone's pixels are those whose centre lies
inside it, as for the region itself; zones that overlap each count their common pixels. No data
(255 in the mask) is never counted.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.errors import GridMismatchError, OutsideImageError, RegionError
from core.grid import Grid
from core.labels import CROP, NODATA
from core.metrics import Confusion, area_ha
from core.geojson import left_out_note
from core.geometry import IMAGE_CRS
from core.region import PixelWindow, Region


#: Largest zones file read (a district's field boundaries; the dashboard's uploads stop at 5 MB)
MAX_ZONES_BYTES = 200 * 1024 * 1024
#: a zone's note where it lies on the grid but holds no pixel's centre (smaller than a pixel, or a sliver)
NO_PIXEL_CENTRE = "no pixel's centre inside"


@dataclass(frozen=True)
class ZoneArea:
    """One zone's figures; areas in hectares are None on an image without a CRS."""

    name: str
    pixels: int  # inside the zone and the image, with data or not
    valid_pixels: int
    crop_pixels: int
    crop_fraction: float | None  # of the valid pixels
    valid_area_ha: float | None
    crop_area_ha: float | None
    note: str = ""
    # against labels (None without them): over the zone's pixels valid in both
    compared_pixels: int | None = None
    compared_crop_pixels: int | None = None  # predicted crop over the compared pixels (beside the labels' crop)
    compared_crop_area_ha: float | None = None
    label_crop_pixels: int | None = None
    label_crop_area_ha: float | None = None
    iou: float | None = None  # None where neither has crop
    f1: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _shifted(region: Region, offset: tuple[int, int]) -> Region:
    """An image region moved into a scene cut from its image at ``offset`` (row, col)."""
    if not region.is_image or offset == (0, 0):
        return region
    r0, c0 = offset
    polys = tuple(tuple(tuple((x - c0, y - r0) for x, y in ring) for ring in poly) for poly in region.polygons)
    return Region(IMAGE_CRS, polys, region.name)


def zone_pixels(grid: Grid, zones: list[tuple[str, Region]], offset: tuple[int, int] = (0, 0)
                ) -> list[tuple[str, PixelWindow | None, np.ndarray | None]]:
    """Where each zone lies on ``grid``: (name, its window, the pixels of the window whose centre is
    inside it), or (name, None, None) for a zone outside the grid. ``offset`` as for :func:`crop_by_zone`.

    Raises:
        RegionError: a zone's kind does not fit the grid.
    """
    out = []
    for name, zone in zones:
        zone = _shifted(zone, offset)
        try:
            window = zone.window(grid)
        except OutsideImageError:
            out.append((name, None, None))
            continue
        out.append((name, window, zone.mask(grid, window)))
    return out


def crop_by_zone(mask: np.ndarray, grid: Grid, zones: list[tuple[str, Region]],
                 offset: tuple[int, int] = (0, 0), labels: np.ndarray | None = None,
                 covering: str = "the prediction", called: str = "zone") -> list[ZoneArea]:
    """The crop of ``mask`` (uint8: 1 crop, 0 not, 255 no data, on ``grid``) in each zone, and with
    ``labels`` (a mask of the same kind on the same grid) the predicted and the labels' crop over the
    pixels valid in both, IoU and F1 there.
    ``covering`` names what ``grid`` covers in a note on a zone partly or wholly off it ("the image"
    for the labels' crop before any prediction), ``called`` the zone ("part" for a region's parts).

    ``offset``: (row, col) of ``grid`` in the image an image-coordinate zone was drawn on (a scene
    cut from it); lon/lat zones are placed by the grid's CRS.

    Raises:
        GridMismatchError: ``mask`` (or ``labels``) is not of ``grid``'s shape.
        RegionError: a zone's kind does not fit the grid (lon/lat zones on an image without a CRS, or
            image zones on a georeferenced one).
    """
    for what, array in (("crop mask", mask), ("labels", labels)):
        if array is not None and array.shape != (grid.height, grid.width):
            raise GridMismatchError(f"the {what} is {array.shape[1]} x {array.shape[0]} px but the grid "
                                    f"{grid.width} x {grid.height} px")
    pixel_ha = grid.pixel_area_ha()
    rows = []
    for (_, zone), (name, window, inside) in zip(zones, zone_pixels(grid, zones, offset)):
        if window is None:
            none = 0.0 if pixel_ha is not None else None
            against = dict(compared_pixels=0, compared_crop_pixels=0, compared_crop_area_ha=none, label_crop_pixels=0,
                           label_crop_area_ha=none) if labels is not None else {}
            rows.append(ZoneArea(name, 0, 0, 0, None, none, none, f"outside {covering}", **against))
            continue
        sub = mask[window.row_off : window.row_off + window.height, window.col_off : window.col_off + window.width]
        valid, crop = inside & (sub != NODATA), inside & (sub == CROP)
        area = pixel_ha
        if isinstance(pixel_ha, np.ndarray):  # per row on some CRSs
            area = pixel_ha[window.row_off : window.row_off + window.height]
        n_valid, n_crop = int(valid.sum()), int(crop.sum())
        note = "" if n_valid else (NO_PIXEL_CENTRE if not inside.any() else "no data")
        against = {}
        if labels is not None:
            lab = labels[window.row_off : window.row_off + window.height, window.col_off : window.col_off + window.width]
            both = valid & (lab != NODATA)
            p, y = crop & both, both & (lab == CROP)
            tp, fp, fn = int((p & y).sum()), int((p & ~y).sum()), int((~p & y).sum())
            scores = Confusion(tp, fp, fn, int(both.sum()) - tp - fp - fn)
            against = dict(compared_pixels=scores.total, compared_crop_pixels=tp + fp,
                           compared_crop_area_ha=_rounded(area_ha(p, area)), label_crop_pixels=tp + fn,
                           label_crop_area_ha=_rounded(area_ha(y, area)),
                           iou=round(scores.iou, 4) if tp + fp + fn else None,
                           f1=round(scores.f1, 4) if tp + fp + fn else None)
            if n_valid and not against["compared_pixels"]:
                note = "no labels"
        # a zone partly off the prediction (an image's edge, a --window's): its figures are those of the part
        # on it, said (they were given as the zone's, with no note); only a window at the grid's edge can be,
        # or a zone of several polygons, one of which may lie wholly off it (the window is of the part on it)
        # (a zone of one polygon inside it is not placed on the grid a third time)
        edge = (window.row_off == 0 or window.col_off == 0 or window.row_off + window.height == grid.height
                or window.col_off + window.width == grid.width or len(zone.polygons) > 1)
        share = _shifted(zone, offset).share_on(grid) if edge else 1.0
        if share < 0.995:
            outside = f"{1 - share:.0%}" if 1 - share < 0.995 else "almost all"  # (not "100%" of a zone partly inside)
            off = f"{outside} of the {called} lies outside {covering}; the figures are for the part inside"
            note = f"{note}; {off}" if note else off
        rows.append(ZoneArea(name, int(inside.sum()), n_valid, n_crop, round(n_crop / n_valid, 4) if n_valid else None,
                             _rounded(area_ha(valid, area)), _rounded(area_ha(crop, area)), note, **against))
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


#: what a spreadsheet reads as the start of a formula in a cell of text
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """A CSV cell: "" for None; text that a spreadsheet would run as a formula (a zone named
    ``=HYPERLINK(...)`` in the user's GeoJSON) behind a ``'``, which makes it text; numbers as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def zones_csv(rows: list[ZoneArea], columns: dict[str, str] | None = None) -> str:
    """The table as CSV text (a header, one line per zone; empty cells where a figure is None; text that
    would be a spreadsheet formula made text, :func:`_cell`); ``columns``: which fields, under which names
    (default: every field under its own)."""
    columns = columns or {name: name for name in ZoneArea.__dataclass_fields__}
    out = io.StringIO()
    writer = csv.DictWriter(out, list(columns.values()), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        d = row.to_dict()
        writer.writerow({new: _cell(d[old]) for old, new in columns.items()})
    return out.getvalue()


#: the columns of a table of the labels' crop by zone (:func:`crop_by_zone` of a label mask), renamed
#: from a prediction's: a join with the prediction's table (same zone names) then keeps the two apart
LABEL_COLUMNS = {"name": "name", "pixels": "pixels", "valid_pixels": "labelled_pixels",
                 "crop_pixels": "label_crop_pixels", "crop_fraction": "label_crop_fraction",
                 "valid_area_ha": "labelled_area_ha", "crop_area_ha": "label_crop_area_ha", "note": "note"}


def label_zones_csv(rows: list[ZoneArea]) -> str:
    """The labels' crop by zone (rows of :func:`crop_by_zone` over a label mask) as CSV text, in the
    ``label_*`` columns of :data:`LABEL_COLUMNS` (not the prediction's ``crop_*``)."""
    return zones_csv(rows, LABEL_COLUMNS)


def summary_beside(mask_path: str | os.PathLike) -> Path:
    """The summary of a crop mask: ``summary.json`` beside ``crop_mask.tif`` (predict's names), and
    ``summary_<tag>.json`` beside ``crop_mask_<tag>.tif`` (the dashboard's downloads, e.g. ``_t0.50``)
    where that one is there."""
    mask_path = Path(mask_path)
    tag = re.fullmatch(r"crop_mask(_[^/]+)\.tiff?", mask_path.name, re.IGNORECASE)
    tagged = mask_path.with_name(f"summary{tag.group(1)}.json") if tag else None
    return tagged if tagged is not None and tagged.is_file() else mask_path.with_name("summary.json")


def window_offset(mask_path: str | os.PathLike, grid: Grid) -> tuple[int, int]:
    """(row, col) of a crop mask in the image it was predicted from, where that is told by the
    summary beside it (``predict --window``; :func:`summary_beside`) and the mask has no CRS: zones in image
    coordinates are in that image's pixels, as the Region page draws and downloads them. (0, 0) otherwise.

    Raises:
        CorruptFileError: the summary has a window whose row or column is not a pixel of an image (a
            negative, fractional or huge number, or not a number: ``1e400`` was a traceback), or it is no
            prediction's summary (another file written over it, e.g. evaluate's metrics).
    """
    from core.config import finite_number
    from core.errors import CorruptFileError
    from core.region import MAX_IMAGE_COORD

    if grid.georeferenced:
        return (0, 0)
    path = summary_beside(mask_path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # no summary (a mask made otherwise: its own corner), or none to read
        return (0, 0)
    try:
        window = summary["window"]
        at = (window["row"], window["col"])
    except (TypeError, KeyError):  # (zones were counted from the mask's corner, in the wrong place, unsaid)
        if isinstance(summary, dict) and {"threshold", "crop_pixels"} <= summary.keys():
            return (0, 0)  # a prediction's summary that names no window (the dashboard's of a fetched scene)
        raise CorruptFileError(f"{path} is not the summary predict wrote beside the crop mask (it says no window of "
                               "the image): was it written over? predict again, or move it away to count the zones "
                               "from the mask's own corner") from None
    if not all(finite_number(v) and v == int(v) and 0 <= v <= MAX_IMAGE_COORD for v in at):
        raise CorruptFileError(f"{path}: its window's row and col {list(at)} are not pixels of an image (whole numbers "
                               "from 0); the summary is damaged: predict again, or move it away to count the zones "
                               "from the mask's own corner")
    return (int(at[0]), int(at[1]))


def read_zones(path: str | os.PathLike) -> Region:
    """The region of a GeoJSON file of zones (each feature one zone, :meth:`Region.part_regions`), of at
    most :data:`MAX_ZONES_BYTES`; its ``left_out`` names the features that hold no polygon.

    Raises:
        InputNotFoundError: the file does not exist.
        RegionError: it is not GeoJSON with polygons (the message says what it is).
    """
    from core.errors import InputNotFoundError

    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"{p} does not exist" if not p.exists() else f"{p} is a folder, not a GeoJSON file")
    try:
        data = p.read_bytes()
    except OSError as err:
        raise InputNotFoundError(f"{p} cannot be read ({err.strerror})") from None
    try:
        return Region.from_upload(data, p.stem, MAX_ZONES_BYTES)
    except RegionError as err:  # (which file: "the file is not GeoJSON text" named none)
        raise RegionError(f"the zones file {p.name} cannot be used: {err}") from None


def read_labels_on(mask: np.ndarray, grid: Grid, labels_path: str | os.PathLike, label_map: str,
                   label_band: str | None = None) -> tuple[np.ndarray, list[str]]:
    """A label raster's crop mask on ``grid`` (the mask's), as ``evaluate`` places it (the same grid,
    a larger image of the same pixels, or labels of part of it: no data elsewhere), and warnings.

    Raises:
        as :func:`core.evaluate.place_labels` and :func:`core.evaluate.read_placed_labels`.
    """
    from core.evaluate import place_labels, read_placed_labels
    from core.grid import pixel_offset
    from core.labels import get_class_map, label_map_warning
    from core.raster import file_bands

    cmap = get_class_map(label_map)
    placed = place_labels(mask, grid, labels_path)
    labels, codes = read_placed_labels(placed, labels_path, cmap, label_band)
    if placed.grid is not grid:  # labels of part of the mask: on the mask's grid, no data around them
        col, row = pixel_offset(placed.grid, grid)
        full = np.full(mask.shape, NODATA, np.uint8)
        full[row : row + labels.shape[0], col : col + labels.shape[1]] = labels
        labels = full
    said = label_map_warning(codes, cmap, Path(labels_path).name, file_bands(labels_path))
    return labels, placed.warnings + ([said] if said else [])


def write_zones(mask_path: str | os.PathLike, zones_path: str | os.PathLike, out_path: str | os.PathLike | None = None,
                overwrite: bool = False, labels_path: str | os.PathLike | None = None, label_map: str = "cdl",
                label_band: str | None = None) -> dict:
    """The crop area in each zone of a GeoJSON file, of a crop-mask GeoTIFF (``predict``'s
    ``crop_mask.tif``), and with ``labels_path`` the labels' crop, IoU and F1 in each; with
    ``out_path`` (.csv or .json) also written there, atomically.
    Returns {"zones": [rows], "warnings": [...], "out": path or None}.

    Raises:
        InputNotFoundError, CorruptFileError, InvalidDataError: as :func:`core.evaluate.read_crop_mask`.
        RegionError: the GeoJSON is not usable, or its zones do not fit the mask's kind of grid.
        GridMismatchError: the labels are not on the mask's pixels; InvalidDataError: they are not codes of
            ``label_map``; ConfigError: an unknown ``label_map``.
        ConfigError, OutputExistsError: ``out_path`` is not .csv/.json, is a folder, or exists
            without ``overwrite`` (checked before the zones are counted).
    """
    from core.evaluate import read_crop_mask
    from core.files import check_output_file, replacing

    region = read_zones(zones_path)
    zones = region.part_regions()
    mask, grid, warnings = read_crop_mask(mask_path)
    if region.left_out:
        warnings.append(left_out_note(region.left_out, Path(zones_path).name))
    labels = None
    if labels_path is not None:
        labels, said = read_labels_on(mask, grid, labels_path, label_map, label_band)
        warnings += said
    out = None
    if out_path is not None:
        out = check_output_file(out_path, overwrite, kind=("CSV or JSON", (".csv", ".json")))
    rows = crop_by_zone(mask, grid, zones, window_offset(mask_path, grid), labels=labels)
    small = sum(r.note.startswith(NO_PIXEL_CENTRE) for r in rows)  # on the mask, between pixels' centres
    if rows and small == len(rows):
        warnings.append(f"none of the {len(rows)} zone(s) of {Path(zones_path).name} holds a pixel's centre of the crop "
                        "mask: they lie on it, but each is smaller than a pixel or a sliver between pixels' centres (a "
                        "zone counts the pixels whose centres it holds)")
    elif not any(r.pixels for r in rows):  # (every row said "outside the prediction", exit status 0 and no more)
        place = ("its CRS, or lon/lat" if grid.georeferenced else
                 "image coordinates of the image it was predicted from, as the Region page downloads them")
        also = f" ({small} of them lie on it, but are smaller than a pixel)" if small else ""
        warnings.append(f"none of the {len(rows)} zone(s) of {Path(zones_path).name} lies on the crop mask{also}: "
                        f"check that they are where the mask is (in {place})")
    result = {"zones": [r.to_dict() for r in rows], "warnings": list(warnings), "out": str(out) if out else None}
    if out is not None:
        text = zones_csv(rows) if out.suffix.lower() == ".csv" else json.dumps(result["zones"], indent=1)
        with replacing(out) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    return result
