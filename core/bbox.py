"""A box typed or pasted as text: its four numbers (never evaluated), an image's edges in the same
terms, and the box put in order and cut to them."""

from __future__ import annotations

import math
import re

from core.errors import OutsideImageError, RegionError
from core.grid import Grid

#: a number as people type or paste it (a sign, digits, a point, an exponent)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _parts(text: str) -> list[str]:
    """The values of a typed box: separated by commas, semicolons or spaces, brackets around them left out."""
    return [p for p in re.split(r"[,;\s]+", text.strip().strip("[]()").strip()) if p]


def not_numbers(text: str) -> list[str]:
    """The values of a typed box (as :func:`parse_bbox` splits it) that are not numbers."""
    return [p for p in _parts(text) if not _NUMBER.fullmatch(p)]


def parse_bbox(text: str, image: bool = False) -> tuple[float, float, float, float]:
    """The four numbers of a box typed or pasted as text: ``xmin, ymin, xmax, ymax`` (west, south,
    east, north in degrees; or, ``image``, an image's left, top, right, bottom edges in pixels), separated
    by commas, semicolons or spaces, with or without brackets ("[-72.78, -16.65, -72.67, -16.58]",
    as a notebook or a GeoJSON ``bbox`` writes them). Read as numbers only, never evaluated.

    Raises:
        RegionError: not four numbers, or something else in the text.
    """
    parts = _parts(text)
    bad = not_numbers(text)
    four = ("a box is four numbers, its left, top, right and bottom edges in pixels (e.g. 100, 100, 400, 300)"
            if image else "a box is four numbers, west, south, east, north in degrees (e.g. -72.78, -16.65, -72.67, -16.58)")
    if bad:
        raise RegionError(f"'{bad[0]}' is not a number: {four}")
    if len(parts) != 4:
        raise RegionError(f"{four}, not {len(parts)}")
    values = [float(p) for p in parts]
    if huge := [p for p, v in zip(parts, values) if not math.isfinite(v)]:  # ("1e400": infinity, cut to the image)
        raise RegionError(f"'{huge[0]}' is too large a number: {four}")
    xmin, ymin, xmax, ymax = values
    return xmin, ymin, xmax, ymax


def image_box_bounds(grid: Grid, image: bool) -> tuple[float, float, float, float] | None:
    """The edges of an image on ``grid`` in a typed box's terms (:func:`box_within`): its pixels'
    (``image``, a grid without a place on Earth), or its lon/lat box (west, south, east, north); None
    where they cannot be given so (a georeferenced grid in pixels, one across the 180th meridian, or one
    without a place on Earth)."""
    from core.errors import CropMapError
    from core.overlays import lonlat_bounds

    if image:
        return (0.0, 0.0, float(grid.width), float(grid.height)) if not grid.georeferenced else None
    try:
        (south, west), (north, east) = lonlat_bounds(grid)
    except CropMapError:
        return None
    return (west, south, east, north) if -180 <= west and east <= 180 else None  # (stored past either end)


def box_within(box: tuple[float, float, float, float], bounds: tuple[float, float, float, float] | None,
               image: bool) -> tuple[tuple[float, float, float, float], bool]:
    """A typed box (:func:`parse_bbox`) put in order and cut to ``bounds`` (an image's, in the same
    terms: its pixels' edges, or its lon/lat box; None: not cut), and whether it was cut. An image's
    edges may come in either order, and so may south and north (each is plain which is which).

    Raises:
        RegionError: a box of no width or height; lon/lat, a west edge east of the east edge (a box
            across the 180th meridian is not handled); OutsideImageError (a RegionError): a box
            wholly outside ``bounds``, which the message gives (to copy), with a hint where the box
            would lie on them with its numbers in pairs swapped (latitude first).
    """
    x0, y0, x1, y1 = box
    y0, y1 = sorted((y0, y1))
    if image:
        x0, x1 = sorted((x0, x1))
    elif x0 > x1:
        raise RegionError(f"its west edge, {x0:g}, lies east of its east edge, {x1:g}: give west, south, east, north "
                          "(a box across the 180th meridian is not handled; give the part on one side of it)")
    if x0 == x1 or y0 == y1:
        raise RegionError("the box has no " + ("width: its left and right" if x0 == x1 else "height: its two")
                          + " edges are the same")
    if bounds is None:
        return (x0, y0, x1, y1), False
    cut = box_overlap((x0, y0, x1, y1), bounds)
    if cut is None:
        edges = box_text(bounds, image)
        raise OutsideImageError(f"the box lies outside the image, whose edges are {edges} "
                                + ("(left, top, right, bottom in pixels)" if image else "(west, south, east, north)")
                                + ("" if image else _swapped_hint(box, bounds)))
    return cut, cut != (x0, y0, x1, y1)


def swapped_overlaps(box: tuple[float, float, float, float], bounds: tuple[float, float, float, float]) -> bool:
    """Whether a lon/lat ``box`` (west, south, east, north) would lie on ``bounds`` with each of its
    pairs of numbers swapped (latitude first, as a map's search box or a spreadsheet gives them)."""
    x0, x1 = box[1], box[3]
    y0, y1 = sorted((box[0], box[2]))
    return x0 < x1 and y0 != y1 and box_overlap((x0, y0, x1, y1), bounds) is not None


def _swapped_hint(box: tuple[float, float, float, float], bounds: tuple[float, float, float, float]) -> str:
    """For a lon/lat box outside ``bounds`` that would lie on them with its numbers in pairs swapped
    (:func:`swapped_overlaps`), a hint that says so; else ""."""
    if not swapped_overlaps(box, bounds):
        return ""
    swapped = (box[1], box[0], box[3], box[2])
    return ("; the numbers look like latitude, longitude: a box is longitude first, west, south, east, north "
            f"(e.g. {', '.join(f'{v:g}' for v in swapped)})")


def box_overlap(box: tuple[float, float, float, float],
             bounds: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    """The part of an ordered ``box`` inside ``bounds`` (the same terms), or None where they do not overlap."""
    cut = (max(box[0], bounds[0]), max(box[1], bounds[1]), min(box[2], bounds[2]), min(box[3], bounds[3]))
    return cut if cut[0] < cut[2] and cut[1] < cut[3] else None


def box_text(bounds: tuple[float, float, float, float], image: bool) -> str:
    """``bounds`` as :func:`parse_bbox` reads them back: pixels to 2 decimals for an image's box (whole
    ones without: "100.4" stayed "100", and the box typed as shown was taken for the one in use),
    degrees to 6 decimals (about 10 cm) for a lon/lat one."""
    def pixels(v: float) -> str:
        text = f"{v:.2f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text

    return ", ".join(pixels(v) if image else f"{v:.6f}" for v in bounds)
