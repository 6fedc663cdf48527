"""Regions of interest: a polygon in image pixels or in lon/lat, validated against a grid.

A :class:`Region` is either

* ``crs == IMAGE_CRS`` ("image"): pixel coordinates ``(col, row)`` of a non-georeferenced image
  (the sample scene). Nothing here gives such a region a place on Earth; or
* ``crs == LONLAT_CRS`` ("EPSG:4326"): longitude/latitude, as GeoJSON has it.

Regions are built from GeoJSON (text, dict, upload bytes), a bounding box, or a geometry drawn on
the dashboard map (Leaflet's Simple CRS for images: ``lat = -row``, ``lng = col``). Text is parsed
with ``json.loads`` only. :func:`check_region` decides whether a region is usable with a grid:
inside the data, at least one patch large, not larger than a limit.
"""

from __future__ import annotations

import functools
import json
import math
import re
from functools import lru_cache
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np

from core.errors import OutsideImageError, RegionError
from core.config import MIN_REGION_SIDE
from core.grid import Grid, degrees_per_unit

IMAGE_CRS = "image"
LONLAT_CRS = "EPSG:4326"
#: Largest GeoJSON text accepted from an upload.
MAX_GEOJSON_BYTES = 5 * 1024 * 1024
#: How far (in pixels) a region's vertex may lie past a pixel edge and still count as on it.
EDGE_TOLERANCE_PX = 0.01

Ring = tuple[tuple[float, float], ...]
Polygon = tuple[Ring, ...]  # exterior ring first, then holes


@dataclass(frozen=True)
class PixelWindow:
    """A rectangle of pixels: offsets and size, in rows/cols of a grid."""

    row_off: int
    col_off: int
    height: int
    width: int

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def to_rasterio(self):
        from rasterio.windows import Window

        return Window(self.col_off, self.row_off, self.width, self.height)


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


def _ring_area(ring: Sequence[Sequence[float]]) -> float:
    """Unsigned shoelace area of a closed or open ring (extra coordinates, e.g. z, ignored)."""
    xy = np.asarray(ring, dtype=np.float64)
    xs, ys = xy[:, 0], xy[:, 1]
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2.0)


#: Most cells a side of the grid :func:`union_area` rasterizes a group of overlapping polygons on
UNION_GRID_MOST = 2048


def _overlapping_groups(boxes: Sequence[tuple[float, float, float, float]]) -> list[list[int]]:
    """Indices of ``boxes`` (x0, y0, x1, y1) in groups linked by boxes that overlap (a sweep along x)."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    active: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda k: boxes[k][0]):
        x0, y0, _, y1 = boxes[i]
        active = [j for j in active if boxes[j][2] > x0]
        for j in active:
            if boxes[j][1] < y1 and y0 < boxes[j][3]:
                parent[root(j)] = root(i)
        active.append(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


@lru_cache(maxsize=64)
def union_area(polygons: tuple[Polygon, ...]) -> float:
    """Planar area covered by ``polygons`` (units of their coordinates squared), an overlap counted once.

    Polygons apart (bounding boxes that do not overlap) add up exactly; where some overlap, the area
    counted twice is found on a grid (at most :data:`UNION_GRID_MOST` cells a side, a cell at most
    1/200 of the smallest polygon's side) and taken off the exact sum: a file of fields that
    overlap one another is not an area larger than the fields.
    """
    polygons = tuple(dict.fromkeys(polygons))  # the same polygon twice (a field repeated in a file): once, exactly
    areas = [polygon_area(p) for p in polygons]
    total = float(sum(areas))
    if len(polygons) < 2:
        return total
    boxes = []
    for p in polygons:
        xy = np.asarray(p[0], dtype=np.float64)[:, :2]
        boxes.append((*xy.min(axis=0), *xy.max(axis=0)))
    for group in _overlapping_groups(boxes):
        if len(group) < 2:
            continue
        from rasterio.features import MergeAlg, rasterize
        from rasterio.transform import from_origin

        x0, y0 = min(boxes[i][0] for i in group), min(boxes[i][1] for i in group)
        x1, y1 = max(boxes[i][2] for i in group), max(boxes[i][3] for i in group)
        smallest = min(max(areas[i], 0.0) for i in group)
        cell = max(math.sqrt(smallest) / 200, (x1 - x0) / UNION_GRID_MOST, (y1 - y0) / UNION_GRID_MOST)
        if not cell > 0:
            continue
        shape = (max(1, math.ceil((y1 - y0) / cell)), max(1, math.ceil((x1 - x0) / cell)))
        counts = rasterize(
            [({"type": "Polygon", "coordinates": polygons[i]}, 1) for i in group], out_shape=shape,
            transform=from_origin(x0, y1, cell, cell), fill=0, merge_alg=MergeAlg.add, dtype="uint16")
        over = counts[counts > 1]
        twice = float(over.sum(dtype=np.int64) - over.size) * cell * cell
        total -= min(twice, total)
    return total


def lonlat_area_ha(geometry: dict) -> float:
    """Area in hectares of a lon/lat GeoJSON Polygon or MultiPolygon on the WGS 84 ellipsoid
    (projected to a Lambert azimuthal equal-area about its centre, its edges straight in lon/lat as
    :func:`geometry_in` takes them: corners added along long edges, which the projection curves);
    polygons that overlap count once (:func:`union_area`)."""
    from rasterio.warp import transform_geom

    geometry = _densified(geometry)
    rings = [r for poly in ([geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"])
             for r in poly]
    lons = [p[0] for r in rings for p in r]
    lats = [p[1] for r in rings for p in r]
    laea = (f"+proj=laea +lat_0={(min(lats) + max(lats)) / 2} +lon_0={(min(lons) + max(lons)) / 2} "
            "+datum=WGS84 +units=m +no_defs")
    geom = transform_geom(LONLAT_CRS, laea, dict(geometry))
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    return union_area(tuple(tuple(tuple(tuple(pt[:2]) for pt in ring) for ring in p) for p in polys)) / 1e4


#: Longest edge (degrees) of a lon/lat region reprojected as it is; longer edges are cut into
#: pieces this long (at most :data:`DENSIFY_MOST` a ring)
DENSIFY_DEG = 0.05
DENSIFY_MOST = 4096


def _other_text(data: bytes) -> str:
    """The text of a GeoJSON file that is not UTF-8: UTF-16 with its byte order mark (as Windows tools
    save "Unicode" text), else Windows-1252 or Latin-1 (a field named "Feld Müller" by an older
    GIS; a UTF-8 byte order mark before it is dropped), where the bytes are JSON's characters outside
    its strings.

    Raises:
        RegionError: the bytes are no such text (a binary file, a shapefile).
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    elif b"\x00" not in data:  # Latin-1 decodes any bytes: only text without NULs
        data = data.removeprefix(b"\xef\xbb\xbf")
        try:
            return data.decode("cp1252")  # (Windows' quotes and euro sign, where Latin-1 has control codes)
        except UnicodeDecodeError:
            return data.decode("latin-1")
    raise RegionError("the uploaded file is not GeoJSON text (UTF-8, UTF-16 or Latin-1); upload a .geojson/.json "
                      "file (a shapefile or KML: convert it first, e.g. ogr2ogr -f GeoJSON out.geojson in.shp)")


@functools.lru_cache(maxsize=16)  # (asked twice per region check: geometry_in, reaches_far_beyond)
def _around(grid: Grid) -> tuple[float, float, float, float] | None:
    """The lon/lat box (west, south, east, north) of ``grid``'s footprint grown by its own size on
    each side (by 1 degree at least), within the world's bounds; None for a grid across the 180th
    meridian (or one that cannot be placed in lon/lat)."""
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError
    from rasterio.warp import transform_bounds

    a, b, c, d, e, f = grid.transform
    xs = [c, c + a * grid.width, c + b * grid.height, c + a * grid.width + b * grid.height]
    ys = [f, f + d * grid.width, f + e * grid.height, f + d * grid.width + e * grid.height]
    try:
        w, s, e_, n = transform_bounds(grid.crs, LONLAT_CRS, min(xs), min(ys), max(xs), max(ys), densify_pts=21)
    except (CPLE_BaseError, RasterioError):  # a grid GDAL cannot place in lon/lat: not cut, as before
        return None
    if not all(map(math.isfinite, (w, s, e_, n))) or w > e_:
        return None
    dx, dy = max(e_ - w, 1.0), max(n - s, 1.0)
    if _lon_frame_centre(grid) is not None:  # longitudes past 180: the box in the grid's own longitudes
        return w - dx, max(s - dy, -90.0), e_ + dx, min(n + dy, 90.0)
    return max(w - dx, -180.0), max(s - dy, -90.0), min(e_ + dx, 180.0), min(n + dy, 90.0)


def _lon_frame_centre(grid: Grid) -> float | None:
    """For a lon/lat grid (in degrees) whose longitudes reach past 180 or -180 (a global grid in 0..360,
    an image across the 180th meridian stored in one run of longitudes, 179.9..180.1): its middle
    longitude, around which a region's longitudes (-180..180) are taken; None for any other grid."""
    from rasterio.crs import CRS

    crs = CRS.from_user_input(grid.crs)
    if not crs.is_geographic or degrees_per_unit(crs) != 1.0:
        return None
    a, b, c, *_ = grid.transform
    xs = (c, c + a * grid.width, c + b * grid.height, c + a * grid.width + b * grid.height)
    return (min(xs) + max(xs)) / 2 if min(xs) < -180 or max(xs) > 180 else None


def _into_lon_frame(geometry: dict, centre: float) -> dict:
    """A lon/lat Polygon or MultiPolygon with each polygon moved by whole turns (360 degrees) of
    longitude to lie nearest ``centre``: -169.9 becomes 190.1 on a grid stored in 0..360."""
    polys = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    moved = []
    for poly in polys:
        lons = [x for x, _ in poly[0]]
        turn = 360.0 * round((centre - (min(lons) + max(lons)) / 2) / 360.0)
        moved.append([[[x + turn, y] for x, y in ring] for ring in poly])
    return {"type": geometry["type"], "coordinates": moved if geometry["type"] == "MultiPolygon" else moved[0]}


def _clipped_to_box(geometry: dict, box: tuple[float, float, float, float]) -> dict | None:
    """A lon/lat Polygon or MultiPolygon cut to ``box`` (west, south, east, north) (Sutherland-Hodgman,
    ring by ring: pixels inside the box are inside the cut region as they were inside the region);
    as it is when it lies within the box; None when nothing of it is inside."""
    polys = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    pts = [p for poly in polys for ring in poly for p in ring]
    w, s, e, n = box
    if all(w <= p[0] <= e and s <= p[1] <= n for p in pts):
        return geometry

    def cut(ring, inside, cross):
        out = []
        for i, cur in enumerate(ring):
            prev = ring[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cross(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross(prev, cur))
        return out

    def at_x(x):
        return lambda p, q: [x, p[1] + (q[1] - p[1]) * (x - p[0]) / (q[0] - p[0])]

    def at_y(y):
        return lambda p, q: [p[0] + (q[0] - p[0]) * (y - p[1]) / (q[1] - p[1]), y]

    edges = ((lambda p: p[0] >= w, at_x(w)), (lambda p: p[0] <= e, at_x(e)),
             (lambda p: p[1] >= s, at_y(s)), (lambda p: p[1] <= n, at_y(n)))
    kept = []
    for poly in polys:
        rings = []
        for ring in poly:
            r = [list(map(float, p[:2])) for p in ring]
            if r[0] == r[-1]:
                r.pop()  # (the cut closes it again)
            for inside, cross in edges:
                r = cut(r, inside, cross) if r else r
            if len(r) >= 3:
                rings.append(r + [r[0]])
            elif not rings:  # the outer ring is gone: so is the polygon
                break
        if rings and polygon_area(rings) > 0:
            kept.append(rings)
    if not kept:
        return None
    return {"type": "Polygon", "coordinates": kept[0]} if len(kept) == 1 else {"type": "MultiPolygon", "coordinates": kept}


def _densified(geometry: dict) -> dict:
    """A lon/lat Polygon or MultiPolygon with corners added along its edges longer than
    :data:`DENSIFY_DEG` (rings of a few km, as drawn regions are, come back as they were)."""

    def ring(r: Sequence[Sequence[float]]) -> list[list[float]]:
        pts = [list(map(float, p[:2])) for p in r]
        # an edge across the 180th meridian (a jump of more than 180 degrees in longitude) stays as it is:
        # cut, it would run round the world the other way
        edges = [0.0 if abs(b[0] - a[0]) > 180 else max(abs(b[0] - a[0]), abs(b[1] - a[1])) for a, b in zip(pts, pts[1:])]
        step = max(DENSIFY_DEG, sum(edges) / DENSIFY_MOST)
        if not edges or max(edges) <= step:
            return pts
        out = [pts[0]]
        for (a, b), length in zip(zip(pts, pts[1:]), edges):
            n = max(1, math.ceil(length / step))
            out += [[a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n] for k in range(1, n + 1)]
        return out

    if geometry["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": [ring(r) for r in geometry["coordinates"]]}
    return {"type": "MultiPolygon", "coordinates": [[ring(r) for r in p] for p in geometry["coordinates"]]}


def _edges(poly: Polygon) -> np.ndarray:
    """Every edge of every ring of ``poly`` as rows (x0, y0, x1, y1)."""
    rows = []
    for ring in poly:
        xy = np.asarray(ring, dtype=np.float64)[:, :2]
        if len(xy) and (xy[0] != xy[-1]).any():
            xy = np.vstack([xy, xy[:1]])
        rows.append(np.hstack([xy[:-1], xy[1:]]))
    return np.vstack(rows)


def _outline_crosses(poly: Polygon, most: int = 5000, chunk: int = 200) -> bool:
    """Whether two edges of the rings of ``poly`` cross (a ring crossing itself, a hole its outer
    ring or another hole); edges that only touch (at a corner, as a traced field's holes may) do not
    cross. Checked for up to ``most`` edges, ``chunk`` edges against all at a time."""
    e = _edges(poly)
    if len(e) > most:
        return False
    ax, ay, bx, by = (e[:, k] for k in range(4))

    def side(px, py, qx, qy, rx, ry):
        return (qx - px) * (ry - py) - (qy - py) * (rx - px)

    for i in range(0, len(e), chunk):
        c = e[i : i + chunk, :, None]  # this chunk's edges against every edge
        cx, cy, dx, dy = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
        apart = (side(cx, cy, dx, dy, ax, ay) * side(cx, cy, dx, dy, bx, by) < 0) & \
                (side(ax, ay, bx, by, cx, cy) * side(ax, ay, bx, by, dx, dy) < 0)
        if apart.any():
            return True
    return False


@lru_cache(maxsize=64)
def _outline_problem(polygons: tuple[Polygon, ...]) -> str | None:
    """What is wrong with the outlines of a region's ``polygons`` (None: nothing): an outline that
    crosses itself (a bowtie's area is not that of the pixels inside it, and its two halves may cancel
    out). Polygons may overlap one another (fields of a file that overlap): the pixels inside any of
    them are the region. Cached: a page builds the same region on every run."""
    if any(_outline_crosses(p) for p in polygons):
        return ("the region's outline crosses itself (its corners are not in order around it); draw it again, "
                "corner after corner around the area (or, for a file, mend its geometry, e.g. with QGIS's Fix "
                "geometries)")
    if all(polygon_area(p) <= 0 for p in polygons):
        return "the region has zero area; draw a polygon or rectangle with some extent"
    return None


#: a number as people type or paste it (a sign, digits, a point, an exponent)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_bbox(text: str, image: bool = False) -> tuple[float, float, float, float]:
    """The four numbers of a box typed or pasted as text: ``xmin, ymin, xmax, ymax`` (west, south,
    east, north in degrees; or, ``image``, an image's left, top, right, bottom edges in pixels), separated
    by commas, semicolons or spaces, with or without brackets ("[-72.78, -16.65, -72.67, -16.58]",
    as a notebook or a GeoJSON ``bbox`` writes them). Read as numbers only, never evaluated.

    Raises:
        RegionError: not four numbers, or something else in the text.
    """
    body = text.strip().strip("[]()").strip()
    parts = [p for p in re.split(r"[,;\s]+", body) if p]
    bad = [p for p in parts if not _NUMBER.fullmatch(p)]
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
    return (west, south, east, north) if east <= 180 else None


def box_within(box: tuple[float, float, float, float], bounds: tuple[float, float, float, float] | None,
               image: bool) -> tuple[tuple[float, float, float, float], bool]:
    """A typed box (:func:`parse_bbox`) put in order and cut to ``bounds`` (an image's, in the same
    terms: its pixels' edges, or its lon/lat box; None: not cut), and whether it was cut. An image's
    edges may come in either order, and so may south and north (each is plain which is which).

    Raises:
        RegionError: a box of no width or height; lon/lat, a west edge east of the east edge (a box
            across the 180th meridian is not handled); OutsideImageError (a RegionError): a box
            wholly outside ``bounds``, which the message gives (to copy).
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
    bx0, by0, bx1, by1 = bounds
    cut = (max(x0, bx0), max(y0, by0), min(x1, bx1), min(y1, by1))
    if cut[0] >= cut[2] or cut[1] >= cut[3]:
        edges = ", ".join(f"{v:.0f}" if image else f"{v:.6f}" for v in bounds)
        raise OutsideImageError(f"the box lies outside the image, whose edges are {edges} "
                                + ("(left, top, right, bottom in pixels)" if image else "(west, south, east, north)"))
    return cut, cut != (x0, y0, x1, y1)


def polygon_area(poly: Polygon) -> float:
    """Planar area of a polygon (outer ring, then holes) in the units of its coordinates squared."""
    return _ring_area(poly[0]) - sum(_ring_area(h) for h in poly[1:])


@dataclass(frozen=True)
class Region:
    """A polygon (or several) in ``crs`` ("image" pixels or "EPSG:4326" lon/lat).

    Build with :meth:`from_geojson`, :meth:`from_bbox`, :meth:`from_upload` or
    :meth:`from_map_geojson`; the constructor validates the coordinates.

    Raises:
        RegionError: on fewer than 3 distinct points, non-finite or out-of-range coordinates,
            an outline that crosses itself, zero area, or an unknown CRS.
    """

    crs: str
    polygons: tuple[Polygon, ...]
    name: str = ""
    #: for a region of several features (a file of fields or farms): each polygon's feature, by its
    #: name (:func:`part_names`); empty for one drawn shape
    parts: tuple[str, ...] = ()
    #: the names of the features of its file left out for holding no polygon
    #: (:func:`features_without_area`); not part of the region's identity
    left_out: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.crs not in (IMAGE_CRS, LONLAT_CRS):
            raise RegionError(f"unknown region CRS {self.crs!r}: use {IMAGE_CRS!r} (image pixels) or {LONLAT_CRS!r} (lon/lat)")
        if not self.polygons:
            raise RegionError("the region holds no polygon; draw a polygon or rectangle, or upload a GeoJSON polygon")
        if self.parts and len(self.parts) != len(self.polygons):
            raise RegionError(f"the region names the parts of {len(self.parts)} polygons but holds {len(self.polygons)}")
        for poly in self.polygons:
            if not poly or len({tuple(p) for p in poly[0]}) < 3:
                raise RegionError("a region polygon needs at least 3 distinct corners")
            if any(len({tuple(p) for p in hole}) < 3 for hole in poly[1:]):
                raise RegionError("a hole in a region polygon needs at least 3 distinct corners; remove the empty hole")
            for ring in poly:
                for x, y in ring:
                    if not (math.isfinite(x) and math.isfinite(y)):
                        raise RegionError("region coordinates must be finite numbers")
                    if self.crs == LONLAT_CRS and not (-180 <= x <= 180 and -90 <= y <= 90):
                        if abs(x) > 360 or abs(y) > 360:  # metres or feet: a projected CRS (UTM, Web Mercator)
                            raise RegionError(
                                f"coordinate ({x}, {y}) is not longitude/latitude but looks like metres or feet of "
                                "a projected CRS (e.g. UTM); GeoJSON is in longitude/latitude: save the file in "
                                "EPSG:4326 (WGS 84), e.g. ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson"
                            )
                        raise RegionError(
                            f"coordinate ({x}, {y}) is not longitude/latitude (GeoJSON order is lon, lat; "
                            "lon -180..180, lat -90..90)"
                        )
        problem = _outline_problem(self.polygons)
        if problem:
            raise RegionError(problem)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_bbox(cls, xmin: float, ymin: float, xmax: float, ymax: float, crs: str = LONLAT_CRS, name: str = "") -> "Region":
        """Rectangle from its bounds (lon/lat, or col/row for ``crs="image"``).

        Raises:
            RegionError: if min >= max on an axis or the coordinates are invalid.
        """
        if not (xmin < xmax and ymin < ymax):
            raise RegionError(f"bad bounding box ({xmin}, {ymin}, {xmax}, {ymax}): give xmin < xmax and ymin < ymax")
        ring = ((xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin))
        return cls(crs, ((ring,),), name)

    @classmethod
    def from_geojson(cls, obj: dict | str, crs: str | None = None, name: str = "") -> "Region":
        """Region from a GeoJSON Geometry, Feature or FeatureCollection (dict or JSON text).

        Polygons and MultiPolygons are used; other geometry types are ignored. The CRS is
        ``crs`` if given, else ``"image"`` when the object says so (``"crs": "image"`` at the top
        level or in a feature's properties, as :meth:`to_geojson` writes it), else lon/lat; a
        lon/lat region whose GeoJSON names another CRS in a (2008 GeoJSON) ``crs`` member, as GDAL
        writes it, is reprojected from that CRS to lon/lat.

        Raises:
            RegionError: on invalid JSON, no polygon, bad coordinates, or a ``crs`` member that
                names no known CRS.
        """
        if isinstance(obj, (str, bytes)):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError as err:
                raise RegionError(
                    f"the file is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg.lower()}), so "
                    "not GeoJSON; save the region as GeoJSON (a Polygon, Feature or FeatureCollection), e.g. "
                    "with QGIS or geojson.io, or draw it on the map") from None
            except UnicodeDecodeError:
                raise RegionError("the file is not text, so not GeoJSON (a shapefile, a KML zip or an image?); "
                                  "save the region as GeoJSON, e.g. with QGIS, or draw it on the map") from None
            except RecursionError:
                raise RegionError("the file nests its JSON too deeply to be GeoJSON; save the region as GeoJSON (a "
                                  "Polygon, Feature or FeatureCollection), or draw it on the map") from None
        if not isinstance(obj, dict):
            raise RegionError("GeoJSON must be an object (a Geometry, Feature or FeatureCollection)")
        found_crs = crs or _declared_crs(obj) or LONLAT_CRS
        name = name or _geojson_name(obj)
        polys = tuple(_polygons_of(obj))
        if not polys:
            raise RegionError("the GeoJSON holds no Polygon or MultiPolygon; draw or upload an area, not points or lines")
        named = _named_crs(obj) if found_crs == LONLAT_CRS else None
        if named is not None:  # e.g. a layer saved in UTM by GDAL: its coordinates are metres
            polys = _to_lonlat(polys, named)
        return cls(found_crs, polys, name, part_names(obj, len(polys)), tuple(features_without_area(obj)))

    @classmethod
    def from_upload(cls, data: bytes, name: str = "", max_bytes: int = MAX_GEOJSON_BYTES) -> "Region":
        """Region from uploaded GeoJSON bytes (UTF-8, at most ``max_bytes``).

        Raises:
            RegionError: if the file is too large, not UTF-8 JSON, or holds no polygon.
        """
        if len(data) > max_bytes:
            raise RegionError(f"the GeoJSON file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = _other_text(data)
        region = cls.from_geojson(text)  # the name the GeoJSON gives its area, else ``name`` (e.g. the file's)
        return region if region.name or not name else replace(region, name=name)

    @classmethod
    def from_map_geojson(cls, feature: dict, image: bool, name: str = "") -> "Region":
        """Region from a geometry drawn on the dashboard map.

        On an image map (Leaflet Simple CRS) ``lng`` is the column and ``lat`` minus the row;
        otherwise the geometry is lon/lat already.

        Raises:
            RegionError: if the drawing is not a polygon or is degenerate, or lies across the 180th
                meridian.
        """
        if not image:
            return cls.from_geojson(_onto_first_world(feature), crs=LONLAT_CRS, name=name)
        region = cls.from_geojson(feature, crs=IMAGE_CRS, name=name)
        polys = tuple(tuple(tuple(map_to_image(x, y) for x, y in ring) for ring in p) for p in region.polygons)
        return cls(IMAGE_CRS, polys, name)

    # ------------------------------------------------------------------ views
    @property
    def is_image(self) -> bool:
        return self.crs == IMAGE_CRS

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the region's CRS."""
        pts = np.array([p for poly in self.polygons for p in poly[0]], dtype=np.float64)
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())

    def geometry(self) -> dict:
        """GeoJSON geometry (Polygon or MultiPolygon) in the region's CRS."""
        return _geometry(self.polygons)

    def to_geojson(self) -> dict:
        """A GeoJSON Feature; image regions carry ``"crs": "image"`` in their properties, and a region of
        several features the part of each polygon (``"parts"``, read back by :meth:`from_geojson`)."""
        props = {"name": self.name, "crs": self.crs, **({"parts": list(self.parts)} if self.parts else {})}
        return {"type": "Feature", "properties": props, "geometry": self.geometry()}

    def to_map_geojson(self) -> dict:
        """The Feature in map coordinates (image regions: ``lat = -row``, ``lng = col``)."""
        if not self.is_image:
            return self.to_geojson()
        polys = tuple(tuple(tuple(image_to_map(x, y) for x, y in ring) for ring in p) for p in self.polygons)
        return {"type": "Feature", "properties": {"name": self.name, "crs": "map"}, "geometry": _geometry(polys)}

    def outline_geojson(self) -> dict:
        """The outline to draw on the dashboard map (map coordinates): :meth:`to_map_geojson`, or for
        a region of several parts a FeatureCollection of one Feature per part with its ``name`` (a map
        can name the part pointed at)."""
        if not self.parts:
            return self.to_map_geojson()
        return {"type": "FeatureCollection", "features": [
            {**part.to_map_geojson(), "properties": {"name": name}} for name, part in self.part_regions()]}

    def part_regions(self) -> list[tuple[str, "Region"]]:
        """(name, region) of each part, in the order of its file: its polygons by :attr:`parts`, or each
        polygon of a region without parts ("part N"); the region itself for a region of one polygon."""
        names = self.parts or (tuple(f"part {i}" for i in range(1, len(self.polygons) + 1))
                               if len(self.polygons) > 1 else (self.name or "region",))
        grouped: dict[str, list] = {}
        for name, poly in zip(names, self.polygons):
            grouped.setdefault(name, []).append(poly)
        return [(name, Region(self.crs, tuple(polys), name)) for name, polys in grouped.items()]

    def key(self) -> str:
        """A stable text key of the region (for caches and file names)."""
        return json.dumps([self.crs, self.polygons], separators=(",", ":"))

    # ------------------------------------------------------------------ areas
    def area_pixels(self) -> float:
        """Area in pixels (image regions only).

        Raises:
            RegionError: for lon/lat regions (use :meth:`area_ha`).
        """
        if not self.is_image:
            raise RegionError("a lon/lat region has an area in hectares, not pixels")
        return union_area(self.polygons)

    def area_ha(self) -> float | None:
        """Geodesic area in hectares for lon/lat regions (Lambert equal-area about the centre);
        None for image regions, which have no place on Earth."""
        if self.is_image:
            return None
        return lonlat_area_ha(self.geometry())

    def describe_area(self, unit: str = "hectares") -> str:
        """Human text of the area: in ``unit`` (:data:`core.metrics.AREA_UNITS`) for lon/lat, pixels for image regions."""
        if self.is_image:
            return f"{self.area_pixels():,.0f} pixels (image coordinates, no ground area)"
        from core.metrics import format_area

        return format_area(self.area_ha(), unit)

    # ------------------------------------------------------------------ grids
    def geometry_in(self, grid: Grid) -> dict:
        """The geometry in the grid's pixel space (x = col, y = row), as GeoJSON.

        Raises:
            RegionError: if the region's kind does not fit the grid (image region on a
                georeferenced grid or lon/lat region on a non-georeferenced one, or on a grid whose
                CRS has no place on Earth).
        """
        if self.is_image and grid.georeferenced:
            raise RegionError(
                "this region is in image coordinates but the image is georeferenced; draw or upload a lon/lat region"
            )
        if not self.is_image and not grid.georeferenced:
            raise RegionError(
                "this image is not georeferenced (no CRS), so a lon/lat region cannot be placed on it; "
                "draw the region on the image instead, or give a GeoJSON in the image's columns and rows "
                "with \"crs\": \"image\" at its top level"
            )
        if self.is_image:
            return self.geometry()
        grid.require_place_on_earth(RegionError)
        from rasterio.transform import Affine
        from rasterio.warp import transform_geom

        # Only the part near the image is reprojected (a region reaching far beyond a UTM image held
        # points its zone cannot project, and GDAL refused it or placed it wrong), and edges longer
        # than DENSIFY_DEG get corners in between: a straight lon/lat edge bends in most CRSs.
        box, geometry = _around(grid), self._geometry_for(grid)
        near = geometry if box is None else _clipped_to_box(geometry, box)
        if near is None:
            raise OutsideImageError("the region lies outside the image; draw it over the image")
        geom = transform_geom(LONLAT_CRS, grid.crs, _densified(near))
        inv = ~Affine(*grid.transform)

        def conv(ring: Iterable[Sequence[float]]) -> list[list[float]]:
            return [list(inv * (p[0], p[1])) for p in ring]

        if geom["type"] == "Polygon":
            return {"type": "Polygon", "coordinates": [conv(r) for r in geom["coordinates"]]}
        return {"type": "MultiPolygon", "coordinates": [[conv(r) for r in p] for p in geom["coordinates"]]}

    def _geometry_for(self, grid: Grid) -> dict:
        """The lon/lat geometry in the longitudes of a georeferenced ``grid`` (see :func:`_lon_frame_centre`)."""
        centre = _lon_frame_centre(grid)
        return self.geometry() if centre is None else _into_lon_frame(self.geometry(), centre)

    def reaches_far_beyond(self, grid: Grid) -> bool:
        """Whether part of a lon/lat region lies far beyond the image (out of the box around it that
        :meth:`geometry_in` cuts the region to, so that its pixel bounds do not show it)."""
        if self.is_image or not grid.georeferenced:
            return False
        box, geometry = _around(grid), self._geometry_for(grid)
        return box is not None and _clipped_to_box(geometry, box) is not geometry  # (as it is when inside)

    def pixel_bounds(self, grid: Grid) -> tuple[int, int, int, int]:
        """(col0, row0, col1, row1): the whole pixels the region touches on ``grid``, not clipped
        to the grid (so a region partly outside the image reaches below 0 or past its size).

        Raises:
            RegionError: as :meth:`geometry_in`.
        """
        geom = self.geometry_in(grid)
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        pts = np.array([p for poly in polys for p in poly[0]], dtype=np.float64)
        # a vertex within EDGE_TOLERANCE_PX of a pixel edge is on it: a reprojection, or coordinates
        # rounded to 7 decimals (a GeoJSON of this image's own crop areas), leave it a hair off
        c0, r0 = np.floor(pts.min(axis=0) + EDGE_TOLERANCE_PX).astype(int)
        c1, r1 = np.ceil(pts.max(axis=0) - EDGE_TOLERANCE_PX).astype(int)
        return int(c0), int(r0), int(max(c1, c0 + 1)), int(max(r1, r0 + 1))

    def share_on(self, grid: Grid) -> float:
        """The share (0-1) of the region's area that lies on ``grid`` (1 for a region inside it; for one
        reaching far beyond it, as :meth:`geometry_in` cuts it, an upper bound).

        Raises:
            RegionError: as :meth:`geometry_in`.
        """
        geom = self.geometry_in(grid)
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        total = sum(polygon_area(p) for p in polys)
        cut = _clipped_to_box(geom, (0.0, 0.0, float(grid.width), float(grid.height)))
        if cut is None or total <= 0:
            return 0.0
        if cut is geom:
            return 1.0
        on = sum(polygon_area(p) for p in ([cut["coordinates"]] if cut["type"] == "Polygon" else cut["coordinates"]))
        return min(on / total, 1.0)

    def window(self, grid: Grid, bounds: tuple[int, int, int, int] | None = None) -> PixelWindow:
        """The pixel window of ``grid`` covering the region (``bounds``: its :meth:`pixel_bounds`,
        when already known), clipped to the grid.

        Raises:
            RegionError: if the region's kind does not fit the grid; OutsideImageError (a RegionError) if
                it lies outside the data.
        """
        c0, r0, c1, r1 = bounds or self.pixel_bounds(grid)
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, grid.width), min(r1, grid.height)
        if c1 <= c0 or r1 <= r0:
            raise OutsideImageError(
                f"the region lies outside the image ({grid.width:,} x {grid.height:,} px); draw it over the data"
            )
        return PixelWindow(int(r0), int(c0), int(r1 - r0), int(c1 - c0))

    def mask(self, grid: Grid, window: PixelWindow | None = None) -> np.ndarray:
        """Boolean (h, w) array of the window: True inside the region.

        Raises:
            RegionError: as :meth:`window`.
        """
        from rasterio.features import geometry_mask
        from rasterio.transform import Affine

        window = window or self.window(grid)
        geom = self.geometry_in(grid)
        shift = Affine.translation(window.col_off, window.row_off)
        return geometry_mask([geom], out_shape=(window.height, window.width), transform=shift, invert=True, all_touched=False)


def _geometry(polygons: Sequence[Polygon]) -> dict:
    coords = [[[list(p) for p in ring] for ring in poly] for poly in polygons]
    if len(coords) == 1:
        return {"type": "Polygon", "coordinates": coords[0]}
    return {"type": "MultiPolygon", "coordinates": coords}


def image_to_map(col: float, row: float) -> tuple[float, float]:
    """Pixel (col, row) -> GeoJSON (lng, lat) on the Simple-CRS image map."""
    return (float(col), -float(row))


def map_to_image(lng: float, lat: float) -> tuple[float, float]:
    """GeoJSON (lng, lat) on the Simple-CRS image map -> pixel (col, row)."""
    return (float(lng), -float(lat))


def _declared_crs(obj: dict) -> str | None:
    for holder in (obj, obj.get("properties") or {}):
        value = holder.get("crs") if isinstance(holder, dict) else None
        if value == IMAGE_CRS:
            return IMAGE_CRS
    features = obj.get("features")
    for feat in features if isinstance(features, list) else []:
        if isinstance(feat, dict) and isinstance(feat.get("properties"), dict) and feat["properties"].get("crs") == IMAGE_CRS:
            return IMAGE_CRS
    return None


def _named_crs(obj: dict) -> str | None:
    """The CRS named by a GeoJSON's ``crs`` member (GeoJSON 2008: ``{"type": "name", "properties":
    {"name": "urn:ogc:def:crs:EPSG::32631"}}`` or ``{"type": "EPSG", "properties": {"code": 32631}}``)
    when it is not lon/lat; None without such a member or for lon/lat (CRS84, EPSG:4326).

    Raises:
        RegionError: the member cannot be read or names no known CRS.
    """
    member = obj.get("crs")
    if not isinstance(member, dict):  # absent, or the string "image" (see _declared_crs)
        return None
    props = member.get("properties") if isinstance(member.get("properties"), dict) else {}
    name = str(props.get("name", "")) if member.get("type") == "name" else (
        f"EPSG:{props.get('code')}" if member.get("type") == "EPSG" else "")
    advice = "save the GeoJSON in longitude/latitude (EPSG:4326)"
    if not name.strip():
        raise RegionError(f"the GeoJSON's crs member {json.dumps(member)[:100]} names no CRS; {advice}")
    if name.upper().endswith("CRS84"):
        return None
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        parsed = CRS.from_user_input(name)
    except CRSError:
        raise RegionError(f"the GeoJSON's coordinates are in {name}, a CRS that is not known; {advice}") from None
    return None if parsed.to_epsg() == 4326 else name


def _to_lonlat(polys: tuple[Polygon, ...], crs: str) -> tuple[Polygon, ...]:
    """Polygons in ``crs`` reprojected to lon/lat.

    Raises:
        RegionError: a coordinate cannot be reprojected (outside the CRS's area).
    """
    from rasterio._err import CPLE_BaseError
    from rasterio.warp import transform_geom

    try:
        geom = transform_geom(crs, LONLAT_CRS, _geometry(polys))
    except CPLE_BaseError:
        raise RegionError(f"the GeoJSON's coordinates cannot be placed on Earth from {crs}; check them, or save the "
                          "GeoJSON in longitude/latitude (EPSG:4326)") from None
    coords = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    return tuple(tuple(_as_ring(ring) for ring in poly) for poly in coords)


def _as_ring(raw: Any) -> Ring:
    """A GeoJSON ring (a list of ``[x, y, ...]`` positions) as a tuple of (x, y) floats.

    Raises:
        RegionError: a position is not a list of at least two numbers, or a number is too large.
    """
    try:
        ring = tuple((float(p[0]), float(p[1])) for p in raw)
    except (TypeError, ValueError, IndexError, KeyError):  # KeyError: a position written as an object
        raise RegionError("GeoJSON polygon coordinates must be lists of [x, y] numbers") from None
    except OverflowError:  # an integer too large for a float
        raise RegionError("region coordinates must be finite numbers") from None
    return ring


def _list(value: Any, what: str) -> list:
    """``value`` when it is a list (None -> []). Raises RegionError otherwise."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RegionError(f"GeoJSON {what} must be a list, not {type(value).__name__}")
    return value


def features_without_area(obj: Any) -> list[str]:
    """The names (or 1-based numbers, "feature 3") of a FeatureCollection's features that hold no
    Polygon or MultiPolygon (points, lines, or no geometry), which a region leaves out."""
    if not isinstance(obj, dict) or obj.get("type") != "FeatureCollection" or not isinstance(obj.get("features"), list):
        return []
    out = []
    for i, feat in enumerate(obj["features"], 1):
        if not isinstance(feat, dict):
            continue
        try:
            has_area = any(True for _ in _polygons_of(feat))
        except RegionError:
            has_area = True  # (a malformed polygon: refused by the region itself, not left out unsaid)
        if not has_area:
            out.append(_feature_name(feat) or f"feature {i}")
    return out


def left_out_note(skipped: Sequence[str], file_name: str, shown: int = 5) -> str:
    """In words, the features of ``file_name`` left out for holding no polygon (:func:`features_without_area`)."""
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (f"{len(skipped)} feature(s) of {file_name} hold no polygon (points, lines or no geometry) and are left "
            f"out: {', '.join(skipped[:shown])}{more}")


def _polygons_of(obj: dict) -> Iterable[Polygon]:
    kind = obj.get("type")
    if kind == "FeatureCollection":
        for feat in _list(obj.get("features"), "features"):
            if isinstance(feat, dict):
                yield from _polygons_of(feat)
    elif kind == "Feature":
        geom = obj.get("geometry")
        if isinstance(geom, dict):
            yield from _polygons_of(geom)
    elif kind == "GeometryCollection":
        for geom in _list(obj.get("geometries"), "geometries"):
            if isinstance(geom, dict):
                yield from _polygons_of(geom)
    elif kind == "Polygon":
        yield tuple(_as_ring(r) for r in _list(obj.get("coordinates"), "Polygon coordinates"))
    elif kind == "MultiPolygon":
        for poly in _list(obj.get("coordinates"), "MultiPolygon coordinates"):
            yield tuple(_as_ring(r) for r in _list(poly, "MultiPolygon coordinates"))


#: Properties that name a feature, in the order looked for (GIS layers spell "name" many ways)
NAME_KEYS = ("name", "Name", "NAME", "label", "id", "ID")


def _feature_name(feature: dict) -> str:
    props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
    for value in [*(props.get(k) for k in NAME_KEYS), feature.get("id")]:
        if value not in (None, "") and not isinstance(value, (dict, list)):
            return str(value).strip()
    return ""


def part_names(obj: dict, n_polygons: int) -> tuple[str, ...]:
    """The part each of the ``n_polygons`` polygons of a GeoJSON belongs to: its feature's name (its
    ``name`` property, or ``Name``, ``NAME``, ``label``, ``id``, or the feature's id), "part N" for a
    feature without one, "NAME (2)" for a second feature of the same name; () for a GeoJSON of one
    feature (nothing to tell apart), or for a Feature written by :meth:`Region.to_geojson`, its own
    ``parts``.
    """
    props = obj.get("properties") if isinstance(obj.get("properties"), dict) else {}
    kept = props.get("parts") if obj.get("type") == "Feature" else None
    if isinstance(kept, list) and len(kept) == n_polygons and all(isinstance(k, str) for k in kept):
        return tuple(kept)
    if obj.get("type") != "FeatureCollection" or not isinstance(obj.get("features"), list):
        return ()
    names: list[str] = []
    seen: dict[str, int] = {}
    areas = [f for f in obj["features"] if isinstance(f, dict) and isinstance(f.get("geometry"), dict)]
    counts = [sum(1 for _ in _polygons_of(f)) for f in areas]
    if sum(1 for c in counts if c) < 2:
        return ()
    for i, (feature, count) in enumerate(zip(areas, counts), 1):
        if not count:
            continue
        name = _feature_name(feature) or f"part {i}"
        seen[name] = seen.get(name, 0) + 1
        names += [name if seen[name] == 1 else f"{name} ({seen[name]})"] * count
    return tuple(names) if len(names) == n_polygons else ()


def _geojson_name(obj: dict, most: int = 3) -> str:
    """The ``name`` property of a Feature, or the names of a FeatureCollection's features (the first
    ``most`` of them, and how many more); "" when none has one."""
    def name_of(feature) -> str:
        props = feature.get("properties") if isinstance(feature, dict) else None
        value = props.get("name") if isinstance(props, dict) else None
        return str(value).strip() if value not in (None, "") else ""

    if obj.get("type") != "FeatureCollection":
        return name_of(obj)
    feats = [f for f in (obj.get("features") if isinstance(obj.get("features"), list) else [])
             if isinstance(f, dict) and isinstance(f.get("geometry"), dict)
             and f["geometry"].get("type") in ("Polygon", "MultiPolygon", "GeometryCollection")]  # the areas only
    names = list(dict.fromkeys(n for n in map(name_of, feats) if n))  # in order, each once
    unnamed = sum(1 for f in feats if not name_of(f))  # (counted: "a, b" named a file of three fields)
    extra = max(len(names) - most, 0) + (unnamed if names else 0)
    return ", ".join(names[:most]) + (f" and {extra} more" if extra else "")


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
    try:
        bounds = region.pixel_bounds(grid)
        window = region.window(grid, bounds)
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
    return WindowCheck(True, f"region OK: it fits a box of {window.width:,} x {window.height:,} px{note}", area_ha, used,
                       window, clipped)


def _lons(c, shift: float = 0.0, found: list | None = None):
    """GeoJSON coordinates ``c`` (any nesting) with ``shift`` added to every longitude, each
    longitude (before it) appended to ``found``."""
    if isinstance(c, (list, tuple)) and len(c) >= 2 and all(isinstance(v, (int, float)) for v in c[:2]):
        if found is not None:
            found.append(float(c[0]))
        return [c[0] + shift, *c[1:]]
    return [_lons(x, shift, found) for x in c] if isinstance(c, (list, tuple)) else c


def _onto_first_world(feature: dict) -> dict:
    """A drawing on a web map in longitudes -180..180: Leaflet repeats the world east and west, and a
    drawing on a copy (Fiji's west at longitude -182.5) was refused as "not longitude/latitude".

    Raises:
        RegionError: the drawing lies across the 180th meridian.
    """
    geometry = feature.get("geometry", feature) if isinstance(feature, dict) else None
    coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
    lons: list[float] = []
    _lons(coords, 0.0, lons)
    finite = [x for x in lons if math.isfinite(x)]
    if not finite or (-180 <= min(finite) and max(finite) <= 180):
        return feature  # (or nothing to shift: the region's own checks say what is wrong)
    shift = -360.0 * math.floor((min(finite) + 180) / 360)
    if max(finite) + shift > 180:
        raise RegionError("the region drawn lies across the 180th meridian (longitude 180), which is not handled: "
                          "draw it on one side of the meridian")
    moved = {**geometry, "coordinates": _lons(coords, shift)}
    return {**feature, "geometry": moved} if "geometry" in feature else moved


def east_past_180(feature: dict) -> dict:
    """A lon/lat GeoJSON Feature (or each of a FeatureCollection's) with its western longitudes (below 0)
    past 180 (+360): drawn over an image across the 180th meridian, which the map shows there (see
    core.overlays.lonlat_bounds)."""
    if feature.get("type") == "FeatureCollection":
        return {**feature, "features": [east_past_180(f) for f in feature["features"]]}
    geometry = feature["geometry"]
    lons: list[float] = []
    _lons(geometry["coordinates"], 0.0, lons)
    if not lons or min(lons) >= 0:
        return feature
    coords = [[[[x + 360.0 if x < 0 else x, *rest] for x, *rest in ring] for ring in poly]
              for poly in (geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]])]
    shifted = {"type": geometry["type"], "coordinates": coords if geometry["type"] == "MultiPolygon" else coords[0]}
    return {**feature, "geometry": shifted}
