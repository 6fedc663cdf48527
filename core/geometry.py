"""Polygons as rings of (x, y), in image pixels (:data:`IMAGE_CRS`) or lon/lat (:data:`LONLAT_CRS`), and
what is computed on them in the plane: areas (overlaps counted once), outlines that cross themselves, a
cut to a box, their GeoJSON geometry."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np

#: The CRS of coordinates in pixels (col, row) of an image without a place on Earth
IMAGE_CRS = "image"
#: The CRS of longitude/latitude coordinates, as GeoJSON has them
LONLAT_CRS = "EPSG:4326"

Ring = tuple[tuple[float, float], ...]
Polygon = tuple[Ring, ...]  # exterior ring first, then holes


def _ring_area(ring: Sequence[Sequence[float]]) -> float:
    """Unsigned shoelace area of a closed or open ring (extra coordinates, e.g. z, ignored)."""
    xy = np.asarray(ring, dtype=np.float64)
    xs, ys = xy[:, 0], xy[:, 1]
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2.0)


def polygon_area(poly: Polygon) -> float:
    """Planar area of a polygon (outer ring, then holes) in the units of its coordinates squared."""
    return _ring_area(poly[0]) - sum(_ring_area(h) for h in poly[1:])


#: Most cells a side of the grid :func:`union_area` rasterizes a group of overlapping polygons on
UNION_GRID_MOST = 2048
#: ... each cell at least of the area of a square whose side is this many times shorter than the side of the
#: smallest polygon of the group (square cells 1/200 of it, over the whole group, were up to 1% off)
UNION_CELLS_SIDE = 450


def _overlapping_groups(boxes: Sequence[tuple[float, float, float, float]]
                        ) -> list[tuple[list[int], tuple[float, float, float, float] | None]]:
    """Indices of ``boxes`` (x0, y0, x1, y1) in groups linked by boxes that overlap (a sweep along x),
    each with the bounding box of where two of its boxes overlap (None for a box alone)."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    meets: list[tuple[int, tuple[float, float, float, float]]] = []  # (a box, where it overlaps another)
    active: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda k: boxes[k][0]):
        x0, y0, x1, y1 = boxes[i]
        active = [j for j in active if boxes[j][2] > x0]
        for j in active:
            if boxes[j][1] < y1 and y0 < boxes[j][3]:
                parent[root(j)] = root(i)
                meets.append((i, (x0, max(y0, boxes[j][1]), min(x1, boxes[j][2]), min(y1, boxes[j][3]))))
        active.append(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(root(i), []).append(i)
    windows: dict[int, tuple[float, float, float, float]] = {}
    for i, (a, b, c, d) in meets:
        w = windows.get(root(i))
        windows[root(i)] = (a, b, c, d) if w is None else (min(w[0], a), min(w[1], b), max(w[2], c), max(w[3], d))
    return [(members, windows.get(r)) for r, members in groups.items()]


@lru_cache(maxsize=64)
def union_area(polygons: tuple[Polygon, ...]) -> float:
    """Planar area covered by ``polygons`` (units of their coordinates squared), an overlap counted once.

    Polygons apart (bounding boxes that do not overlap) add up exactly; where some overlap, the area
    counted twice is found on a grid over where their bounding boxes overlap (at most :data:`UNION_GRID_MOST`
    cells along each side, see :data:`UNION_CELLS_SIDE`) and taken off the exact sum: a file of fields
    that overlap one another is not an area larger than the fields.
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
    for group, window in _overlapping_groups(boxes):
        if window is None:
            continue
        from rasterio.features import MergeAlg, rasterize
        from rasterio.transform import from_origin

        # on where the boxes overlap alone (where an area can be counted twice), UNION_GRID_MOST cells along each
        # side (a thin overlap of long strips, on square cells, was 1% off), each at least of the area of a square
        # of 1/UNION_CELLS_SIDE of the smallest polygon's side (the cost of a file of thousands of fields)
        x0, y0, x1, y1 = window
        cx, cy = (x1 - x0) / UNION_GRID_MOST, (y1 - y0) / UNION_GRID_MOST
        least = min(max(areas[i], 0.0) for i in group) / UNION_CELLS_SIDE**2
        if not (cx > 0 and cy > 0):
            continue
        if cx * cy < least:
            grow = math.sqrt(least / (cx * cy))
            cx, cy = cx * grow, cy * grow
        shape = (max(1, math.ceil((y1 - y0) / cy)), max(1, math.ceil((x1 - x0) / cx)))
        counts = rasterize(
            [({"type": "Polygon", "coordinates": polygons[i]}, 1) for i in group], out_shape=shape,
            transform=from_origin(x0, y1, cx, cy), fill=0, merge_alg=MergeAlg.add, dtype="uint16")
        over = counts[counts > 1]
        twice = float(over.sum(dtype=np.int64) - over.size) * cx * cy
        total -= min(twice, total)
    return total


def pixels_inside(geometries: Sequence[dict], shape: tuple[int, int], transform) -> np.ndarray:
    """Boolean ``shape`` array: True at the pixels whose centre lies inside one of ``geometries`` (GeoJSON,
    in the coordinates ``transform`` maps pixels to). Rasterized as bytes: rasterio's ``geometry_mask``
    burns 64-bit integers, then copies them to booleans (15 bytes a pixel at its peak; this takes 1)."""
    from rasterio.features import rasterize

    if not geometries:
        return np.zeros(shape, bool)
    return rasterize(list(geometries), out_shape=shape, transform=transform, fill=0, default_value=1,
                     dtype="uint8").view(bool)


def _edges(poly: Polygon) -> np.ndarray:
    """Every edge of every ring of ``poly`` as rows (x0, y0, x1, y1)."""
    rows = []
    for ring in poly:
        xy = np.asarray(ring, dtype=np.float64)[:, :2]
        if len(xy) and (xy[0] != xy[-1]).any():
            xy = np.vstack([xy, xy[:1]])
        rows.append(np.hstack([xy[:-1], xy[1:]]))
    return np.vstack(rows)


def _outline_crosses(poly: Polygon, chunk: int = 256, block: int = 16_384, budget: int = 400_000_000) -> bool:
    """Whether two edges of the rings of ``poly`` cross (a ring crossing itself, a hole its outer
    ring or another hole); edges that only touch (at a corner, as a traced field's holes may) do not
    cross. The edges, sorted by their west end, are compared a ``chunk`` at a time with those whose x
    ranges can meet theirs, so an outline of 100,000 corners (a field or a district traced in detail)
    is checked in a second (all against all, it was skipped past 5,000 edges and a figure of eight
    passed). An outline whose edges overlap in x so much that the pairs to compare exceed ``budget``
    (long edges across the whole outline) is not checked."""
    e = _edges(poly)
    e = e[np.argsort(np.minimum(e[:, 0], e[:, 2]), kind="stable")]
    west, east = np.minimum(e[:, 0], e[:, 2]), np.maximum(e[:, 0], e[:, 2])
    south, north = np.minimum(e[:, 1], e[:, 3]), np.maximum(e[:, 1], e[:, 3])

    def side(px, py, qx, qy, rx, ry):
        return (qx - px) * (ry - py) - (qy - py) * (rx - px)

    spent = 0
    for i in range(0, len(e), chunk):
        stop = int(np.searchsorted(west, east[i : i + chunk].max(), side="right"))  # (later edges start east of them)
        spent += min(chunk, len(e) - i) * (stop - i)
        if spent > budget:
            return False
        for j in range(i, stop, block):  # this chunk's edges against the edges that may meet them, a ``block``
            k = min(stop, j + block)     # at a time (an edge across the outline meets them all)
            near = (south[i : i + chunk, None] <= north[None, j:k]) & (south[None, j:k] <= north[i : i + chunk, None]) \
                & (west[None, j:k] <= east[i : i + chunk, None])
            ci, aj = np.nonzero(near)  # the pairs whose boxes meet, alone (few: most edges are far apart)
            cx, cy, dx, dy = e[i + ci].T
            ax, ay, bx, by = e[j + aj].T
            if ((side(cx, cy, dx, dy, ax, ay) * side(cx, cy, dx, dy, bx, by) < 0)
                    & (side(ax, ay, bx, by, cx, cy) * side(ax, ay, bx, by, dx, dy) < 0)).any():
                return True
    return False


def _inside(points: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Whether each of ``points`` (n, 2) lies inside the ring of ``edges`` (:func:`_edges`; even-odd rule; a
    point on it may go either way)."""
    x, y = points[:, :1], points[:, 1:2]
    x0, y0, x1, y1 = (edges[None, :, k] for k in range(4))
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return (straddles & (x < at)).sum(axis=1) % 2 == 1


def _hole_outside(poly: Polygon, corners: int = 16) -> bool:
    """Whether a hole of ``poly`` lies outside its outer ring (none of its corners inside it): its
    area was taken off the polygon's, which is not the pixels inside the outline. Asked after
    :func:`_outline_crosses`: a hole that crosses no outline is all inside or all outside, so a few
    of its ``corners``, spread round it, tell (more than one: a corner on the outline may go either way).
    Every hole's corners at once (one at a time, a traced field's holes took as long as the rest of its checks)."""
    if len(poly) < 2:
        return False
    some = []
    for hole in poly[1:]:
        xy = np.asarray(hole, dtype=np.float64)[:, :2]
        some.append(xy[np.linspace(0, len(xy) - 1, min(corners, len(xy))).astype(int)])
    inside = _inside(np.vstack(some), _edges(poly[:1]))
    starts = np.cumsum([0] + [len(c) for c in some[:-1]])
    return bool((np.add.reduceat(inside, starts) == 0).any())


@lru_cache(maxsize=64)
def outline_problem(polygons: tuple[Polygon, ...]) -> str | None:
    """What is wrong with the outlines of a region's ``polygons`` (None: nothing): an outline that
    crosses itself (a bowtie's area is not that of the pixels inside it, and its two halves may cancel
    out), or a hole outside its polygon (its area taken off the polygon's). Polygons may overlap one
    another (fields of a file that overlap): the pixels inside any of them are the region. Cached: a
    page builds the same region on every run."""
    if any(_outline_crosses(p) for p in polygons):
        return ("the region's outline crosses itself (its corners are not in order around it); draw it again, "
                "corner after corner around the area (or, for a file, mend its geometry, e.g. with QGIS's Fix "
                "geometries)")
    if any(_hole_outside(p) for p in polygons):
        return ("a hole of the region lies outside the polygon it belongs to (a hole must be inside its outline); "
                "mend the file's geometry, e.g. with QGIS's Fix geometries")
    if all(polygon_area(p) <= 0 for p in polygons):
        return "the region has zero area; draw a polygon or rectangle with some extent"
    return None


def geometry_of(polygons: Sequence[Polygon]) -> dict:
    coords = [[[list(p) for p in ring] for ring in poly] for poly in polygons]
    if len(coords) == 1:
        return {"type": "Polygon", "coordinates": coords[0]}
    return {"type": "MultiPolygon", "coordinates": coords}


def clipped_to_box(geometry: dict, box: tuple[float, float, float, float]) -> dict | None:
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


def _simplified_ring(ring: Ring, tolerance: float) -> Ring:
    """A closed ring without the corners that move it by at most ``tolerance`` (Douglas-Peucker, split at
    the corner farthest from its first); at least 4 positions (a closed triangle) where it had them."""
    xy = np.asarray(ring, dtype=np.float64)[:, :2]
    n = len(xy)
    if n <= 4:
        return tuple(ring)
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    far = int(np.argmax(((xy - xy[0]) ** 2).sum(axis=1)))
    keep[far] = True
    stack, tol2 = [(0, far), (far, n - 1)], tolerance * tolerance
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        d = xy[j] - xy[i]
        seg = xy[i + 1 : j] - xy[i]
        dd = float(d @ d)
        # the distance to the segment, not to the line through it (a spike past its ends was dropped)
        t = np.zeros(len(seg)) if dd == 0.0 else np.clip((seg @ d) / dd, 0.0, 1.0)
        dist2 = ((seg - t[:, None] * d) ** 2).sum(axis=1)
        k = int(np.argmax(dist2))
        if dist2[k] > tol2:
            keep[i + 1 + k] = True
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    if keep.sum() < 4:  # (a ring within the tolerance: four of its corners, a sliver still drawn)
        keep[np.linspace(0, n - 1, 4).astype(int)] = True
    return tuple(map(tuple, xy[keep].tolist()))


@lru_cache(maxsize=2)
def simplified(polygons: tuple[Polygon, ...], tolerance: float) -> tuple[Polygon, ...]:
    """The polygons without the corners that move their outline by at most ``tolerance`` (in their units):
    for drawing an outline, never for areas or masks (a simplified outline may cross itself within the
    tolerance). Cached: a page draws the same region on every run."""
    return tuple(tuple(_simplified_ring(ring, tolerance) for ring in poly) for poly in polygons)
