"""Whether a region can be used on a grid (:func:`check_region`): inside the data, at least a few pixels
a side, not larger than a limit; never raises for a bad region."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from core.config import MIN_REGION_SIDE
from core.errors import OutsideImageError, RegionError
from core.grid import Grid
from core.region import PixelWindow, Region


@dataclass(frozen=True)
class WindowCheck:
    """Outcome of :func:`check_region` (``message`` says why when ``ok`` is False)."""

    ok: bool
    message: str
    area_ha: float | None = None
    #: the pixels used: those whose centre lies inside the region and the image (for a region too large
    #: to rasterize, its window's)
    pixels: int | None = None
    window: PixelWindow | None = None
    #: part of the region lies outside the image (only the part inside is used)
    clipped: bool = False


def check_region(
    region: Region,
    grid: Grid,
    min_side: int = MIN_REGION_SIDE,
    max_pixels: int = 4096 * 4096,
) -> WindowCheck:
    """Whether ``region`` can be used on ``grid``: it fits the grid's kind, covers pixels of the data, is at
    least ``min_side`` pixels on each side (or the whole image where the image is smaller) and at
    most ``max_pixels`` pixels. Never raises for a bad region: ``ok`` is False and ``message``
    says why and what to do.
    """
    bounds = None
    try:
        bounds = region.pixel_bounds(grid)
        window = region.window(grid)
    except OutsideImageError as err:
        if bounds is not None and bounds[0] < grid.width and bounds[1] < grid.height and bounds[2] > 0 and bounds[3] > 0:
            # around the image, not over it: parts either side of it, or the image inside a hole
            return WindowCheck(False, f"the region covers none of the image's pixels ({grid.width:,} x {grid.height:,} "
                                      "px), only the space around them; draw it over the data")
        return WindowCheck(False, str(err))
    except RegionError as err:
        return WindowCheck(False, str(err))
    # the pixels inside the outline (those outside it are no data), not the whole window; a region
    # far too large anyway is not rasterized: the window's area is enough for the message
    inside = region.mask(grid, window) if window.pixels <= max_pixels else None
    per_row = inside.sum(axis=1) if inside is not None else np.full(window.height, window.width)
    if not per_row.any():  # e.g. parts either side of the image, the image inside a hole, or a sliver
        c0, r0, c1, r1 = bounds
        if c0 >= 0 and r0 >= 0 and c1 <= grid.width and r1 <= grid.height:
            return WindowCheck(False, "the region holds no pixel's centre: it is thinner than a pixel of the image; "
                                      "draw a larger region")
        return WindowCheck(False, f"the region covers none of the image's pixels ({grid.width:,} x {grid.height:,} px), "
                                  "only the space around them; draw it over the data")
    area_ha: float | None = None
    px_area = grid.pixel_area_ha()
    if px_area is not None:
        if isinstance(px_area, np.ndarray):
            rows = px_area[window.row_off : window.row_off + window.height, 0]  # (h, 1) -> (h,), as per_row
            area_ha = float((rows * per_row).sum())
        else:
            area_ha = float(px_area) * float(per_row.sum())
    used = int(per_row.sum())
    need_h, need_w = min(min_side, grid.height), min(min_side, grid.width)
    span_h, span_w = window.height, window.width  # the rows and columns of the pixels used (not those only touched)
    if inside is not None:
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        span_h, span_w = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
    if span_h < need_h or span_w < need_w:
        whole = "" if (need_w, need_h) == (min_side, min_side) else \
            f" (the image is smaller than {min_side} px a side, so all of it)"
        return WindowCheck(
            False,
            f"the region covers {span_w} x {span_h} px of the image; it must be at least "
            f"{need_w} x {need_h} px{whole}: draw a larger region",
            area_ha,
            used,
            window,
        )
    if window.pixels > max_pixels:
        return WindowCheck(
            False,
            f"the region covers {window.pixels:,} px; this source handles at most {max_pixels:,} px "
            f"(about {int(math.sqrt(max_pixels))} x {int(math.sqrt(max_pixels))}): draw a smaller region",
            area_ha,
            used,
            window,
        )
    # (its area is the pixels used, ``used``/``area_ha``, said beside it: the box's size is another figure)
    c0, r0, c1, r1 = bounds
    clipped = c0 < 0 or r0 < 0 or c1 > grid.width or r1 > grid.height or region.reaches_far_beyond(grid)
    note = "; part of the region lies outside the image and is left out" if clipped else ""
    # (the box of the pixels it touches: the scene cut, the GeoTIFFs' size, the Data page's "region is W x H px")
    return WindowCheck(True, f"region OK: it fits a box of {window.width:,} x {window.height:,} px{note}", area_ha, used,
                       window, clipped)


def box_advice(message: str, verb: str = "enter") -> str:
    """A region check's ``message``, whose advice is for a region drawn on the map, with that advice
    for a box typed as numbers instead: "draw a larger region" becomes "enter a larger box" (with
    ``verb`` "give": "give a larger box", as a command-line option is given)."""
    for drawn, typed in (("draw a larger region", "a larger box"), ("draw a smaller region", "a smaller box"),
                         ("draw it over the", "a box over the")):
        message = message.replace(drawn, f"{verb} {typed}")
    return message


#: A drawn region's advice (draw it over the image, the data or the image data), which an uploaded file's
#: region gets as "give a region over the image (draw one, or upload another file)".
_DRAW_IT_OVER = re.compile(r"draw it over the (image data|image|data)")


def read_uploaded_region(data: bytes, name: str, grid: Grid | None = None) -> Region:
    """The region of an uploaded GeoJSON file (:meth:`Region.from_upload`) for an image on ``grid``
    (None: any place on Earth, e.g. Earth Engine's).

    Raises:
        RegionError: as :meth:`Region.from_upload`; where the image has no place on Earth and the file,
            read as lon/lat, is refused but would be fine as the image's columns and rows, saying to
            mark it so (it was told that its coordinates looked like metres, and to save it in
            EPSG:4326, which the image could not use either).
    """
    from core.geojson import geojson_text
    from core.geometry import IMAGE_CRS

    try:
        return Region.from_upload(data, name=name)
    except RegionError as err:
        if grid is None or grid.georeferenced:
            raise
        try:
            Region.from_geojson(geojson_text(data), crs=IMAGE_CRS)
        except RegionError:
            raise err from None
        raise RegionError(f"{str(err).rstrip('.')}; this image has no place on Earth, so a region file gives its "
                          "columns and rows and says so: if these are the image's, add \"crs\": \"image\" at the "
                          "file's top level or in its feature's properties (where the Region page's region GeoJSON "
                          "download writes it)") from None


def upload_advice(message: str, region: Region | None = None, grid: Grid | None = None, data: bytes | None = None) -> str:
    """A region check's ``message`` (advice for a drawing) for an uploaded file's ``region`` (read from
    ``data``) on ``grid``: it says to give a region over the image rather than to draw this one there;
    where the region lies off a georeferenced image, that it would lie on it with longitude and latitude
    swapped, or the CRS its coordinates were read in, as the file's ``crs`` member names it (a wrong one
    put it elsewhere without a word)."""
    from core.bbox import box_overlap, image_box_bounds, swapped_overlaps

    message = _DRAW_IT_OVER.sub(r"give a region over the \1 (draw one, or upload another file)", message)
    if region is None or region.is_image or grid is None or not grid.georeferenced:
        return message
    bounds = image_box_bounds(grid, False)
    if bounds is None or box_overlap(region.bounds, bounds) is not None:
        return message
    if swapped_overlaps(region.bounds, bounds):
        return message + ("; the file's coordinates look like latitude, longitude: GeoJSON gives longitude first "
                          "(x, y), so swap them (e.g. QGIS's Swap X and Y coordinates)")
    if (named := _named_crs(data)) is not None:
        message += (f"; the file's coordinates were read in {named}, as its \"crs\" member says: check that they "
                    "are in that CRS")
    return message


def _named_crs(data: bytes | None) -> str | None:
    """The CRS a GeoJSON file's ``crs`` member names (:func:`core.geojson.named_crs`), or None (none, or unreadable)."""
    import json

    from core.geojson import geojson_text, named_crs

    try:
        obj = json.loads(geojson_text(data)) if data else None
        return named_crs(obj) if isinstance(obj, dict) else None
    except (RegionError, ValueError, RecursionError):
        return None
