"""Lon/lat geometry on the Earth: areas in hectares, long edges given corners before reprojection, the
box around a grid a region is cut to, longitudes past 180 (grids stored in 0..360, drawings on a web
map's copies of the world)."""

from __future__ import annotations

import functools
import math
from typing import Sequence

from core.errors import RegionError
from core.geometry import LONLAT_CRS, union_area
from core.grid import Grid, degrees_per_unit


def lonlat_area_ha(geometry: dict) -> float:
    """Area in hectares of a lon/lat GeoJSON Polygon or MultiPolygon on the WGS 84 ellipsoid
    (projected to a Lambert azimuthal equal-area about its centre, its edges straight in lon/lat as
    :meth:`core.region.Region.geometry_in` takes them: corners added along long edges, which the projection curves);
    polygons that overlap count once (:func:`core.geometry.union_area`)."""
    from rasterio.warp import transform_geom

    geometry = densified(geometry)
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


def densified(geometry: dict) -> dict:
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


@functools.lru_cache(maxsize=16)  # (asked twice per region check: geometry_in, reaches_far_beyond)
def around(grid: Grid) -> tuple[float, float, float, float] | None:
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
    if lon_frame_centre(grid) is not None:  # longitudes past 180: the box in the grid's own longitudes
        return w - dx, max(s - dy, -90.0), e_ + dx, min(n + dy, 90.0)
    return max(w - dx, -180.0), max(s - dy, -90.0), min(e_ + dx, 180.0), min(n + dy, 90.0)


def lon_frame_centre(grid: Grid) -> float | None:
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


def into_lon_frame(geometry: dict, centre: float) -> dict:
    """A lon/lat Polygon or MultiPolygon with each polygon moved by whole turns (360 degrees) of
    longitude to lie nearest ``centre``: -169.9 becomes 190.1 on a grid stored in 0..360."""
    polys = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    moved = []
    for poly in polys:
        lons = [x for x, _ in poly[0]]
        turn = 360.0 * round((centre - (min(lons) + max(lons)) / 2) / 360.0)
        moved.append([[[x + turn, y] for x, y in ring] for ring in poly])
    return {"type": geometry["type"], "coordinates": moved if geometry["type"] == "MultiPolygon" else moved[0]}


def _lons(c, shift: float = 0.0, found: list | None = None):
    """GeoJSON coordinates ``c`` (any nesting) with ``shift`` added to every longitude, each
    longitude (before it) appended to ``found``."""
    if isinstance(c, (list, tuple)) and len(c) >= 2 and all(isinstance(v, (int, float)) for v in c[:2]):
        if found is not None:
            found.append(float(c[0]))
        return [c[0] + shift, *c[1:]]
    return [_lons(x, shift, found) for x in c] if isinstance(c, (list, tuple)) else c


def onto_first_world(feature: dict) -> dict:
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
