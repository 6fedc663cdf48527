"""Regions of interest: a polygon in image pixels or in lon/lat, placed on a grid.

A :class:`Region` is either

* ``crs == IMAGE_CRS`` ("image"): pixel coordinates ``(col, row)`` of a non-georeferenced image
  (the sample scene). Nothing here gives such a region a place on Earth; or
* ``crs == LONLAT_CRS`` ("EPSG:4326"): longitude/latitude, as GeoJSON has it.

Regions are built from GeoJSON (text, dict, upload bytes; read by :mod:`core.geojson`), a bounding
box, or a geometry drawn on the dashboard map (Leaflet's Simple CRS for images: ``lat = -row``,
``lng = col``). Text is parsed with ``json.loads`` only. Whether a region is usable with a grid is
:func:`core.region_check.check_region`'s to say.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np

from core.errors import OutsideImageError, RegionError
from core.geojson import (MAX_GEOJSON_BYTES, check_size, declared_crs, features_without_area, geojson_name,
                          geojson_text, named_crs, part_names, polygons_of, to_lonlat)
from core.geometry import (IMAGE_CRS, LONLAT_CRS, Polygon, clipped_to_box, geometry_of, outline_problem,
                           polygon_area, simplified, union_area)
from core.grid import Grid
from core.lonlat import around, densified, into_lon_frame, lon_frame_centre, lonlat_area_ha, onto_first_world

#: How far (in pixels) a region's vertex may lie past a pixel edge and still count as on it.
EDGE_TOLERANCE_PX = 0.01
#: The largest column or row (either sign) an image-coordinate region may name: GDAL's largest raster
#: side, 2^31 - 1 px.
MAX_IMAGE_COORD = 2**31 - 1
#: Corners of a region's outline past which the dashboard's maps draw it simplified (:meth:`Region.outline_geojson`).
DRAWN_CORNERS = 5_000


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
    #: name (:func:`core.geojson.part_names`); empty for one drawn shape
    parts: tuple[str, ...] = ()
    #: the names of the features of its file left out for holding no polygon
    #: (:func:`core.geojson.features_without_area`); not part of the region's identity
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
                    if self.crs == IMAGE_CRS and not (abs(x) <= MAX_IMAGE_COORD and abs(y) <= MAX_IMAGE_COORD):
                        # (no image is that large, and the geometry's arithmetic would overflow)
                        raise RegionError(f"coordinate ({x:g}, {y:g}) is not an image's column and row: image "
                                          f"coordinates lie within {MAX_IMAGE_COORD:,} px of the image's corner")
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
        problem = outline_problem(self.polygons)
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
            head = obj[:512].lstrip(b"\xef\xbb\xbf \t\r\n" if isinstance(obj, bytes) else "\ufeff \t\r\n")
            if not head:
                raise RegionError("the file is empty; save the region as GeoJSON (a Polygon, Feature or "
                                  "FeatureCollection), e.g. with QGIS or geojson.io, or draw it on the map")
            if head[:1] in ("<", b"<"):  # XML: KML (Google Earth), GML, GPX
                raise RegionError("the file is XML (KML, GML or GPX?), not GeoJSON; convert it, e.g. with QGIS (Export, "
                                  "Save Features As, GeoJSON) or ogr2ogr -f GeoJSON out.geojson in.kml")
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
            except ValueError:  # (a number of thousands of digits: Python's limit on reading integers)
                raise RegionError("the file holds a number thousands of digits long, which no coordinate has; save "
                                  "the region as GeoJSON again, or draw it on the map") from None
        if not isinstance(obj, dict):
            raise RegionError("GeoJSON must be an object (a Geometry, Feature or FeatureCollection)")
        found_crs = crs or declared_crs(obj) or LONLAT_CRS
        name = name or geojson_name(obj)
        polys = tuple(polygons_of(obj))
        if not polys:
            raise RegionError("the GeoJSON holds no Polygon or MultiPolygon; draw or upload an area, not points or lines")
        named = named_crs(obj) if found_crs == LONLAT_CRS else None
        if named is not None:  # e.g. a layer saved in UTM by GDAL: its coordinates are metres
            polys = to_lonlat(polys, named)
        return cls(found_crs, polys, name, part_names(obj, len(polys)), tuple(features_without_area(obj)))

    @classmethod
    def from_upload(cls, data: bytes, name: str = "", max_bytes: int = MAX_GEOJSON_BYTES) -> "Region":
        """Region from uploaded GeoJSON bytes (UTF-8, at most ``max_bytes``).

        Raises:
            RegionError: if the file is too large, not UTF-8 JSON, or holds no polygon.
        """
        check_size(len(data), "the GeoJSON file", max_bytes)
        text = geojson_text(data)
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
            return cls.from_geojson(onto_first_world(feature), crs=LONLAT_CRS, name=name)
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
        return geometry_of(self.polygons)

    def to_geojson(self) -> dict:
        """A GeoJSON Feature; image regions carry ``"crs": "image"`` in their properties, and a region of
        several features the part of each polygon (``"parts"``, read back by :meth:`from_geojson`)."""
        props = {"name": self.name, "crs": self.crs, **({"parts": list(self.parts)} if self.parts else {})}
        return {"type": "Feature", "properties": props, "geometry": self.geometry()}

    def to_map_geojson(self) -> dict:
        """The Feature in map coordinates (image regions: ``lat = -row``, ``lng = col``)."""
        if not self.is_image:
            return self.to_geojson()
        return {"type": "Feature", "properties": {"name": self.name, "crs": "map"},
                "geometry": geometry_of(self._on_map(self.polygons))}

    def _on_map(self, polygons: tuple[Polygon, ...]) -> tuple[Polygon, ...]:
        """``polygons`` (the region's, or a simplified copy) in map coordinates."""
        if not self.is_image:
            return polygons
        return tuple(tuple(tuple(image_to_map(x, y) for x, y in ring) for ring in p) for p in polygons)

    def outline_geojson(self, tolerance: float = 0.0) -> dict:
        """The outline to draw on the dashboard map (map coordinates): :meth:`to_map_geojson`, or for
        a region of several parts a FeatureCollection of one Feature per part with its ``name`` (a map
        can name the part pointed at). With ``tolerance`` (in the region's units), an outline of more than
        :data:`DRAWN_CORNERS` corners is drawn without the corners that move it by less
        (:func:`core.geometry.simplified`): a district traced with 100,000 corners sent 4 MB to the
        browser twice on every run of a page and took seconds to build. For drawing only: masks, areas
        and downloads keep every corner."""
        polygons = self.polygons
        if tolerance > 0 and sum(len(ring) for poly in polygons for ring in poly) > DRAWN_CORNERS:
            polygons = simplified(polygons, tolerance)
        polygons = self._on_map(polygons)
        if not self.parts:
            props = {"name": self.name, "crs": "map" if self.is_image else self.crs}
            return {"type": "Feature", "properties": props, "geometry": geometry_of(polygons)}
        grouped: dict[str, list] = {}
        for name, poly in zip(self.parts, polygons):
            grouped.setdefault(name, []).append(poly)
        return {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": name}, "geometry": geometry_of(polys)}
            for name, polys in grouped.items()]}

    def part_regions(self) -> list[tuple[str, "Region"]]:
        """(name, region) of each part, in the order of its file: its polygons by :attr:`parts`; the
        region itself for a region without parts (a drawn shape, or a file of one feature: a MultiPolygon
        of a farm's two plots is one farm, as in a file of several)."""
        if not self.parts:
            return [(self.name or "region", self)]
        grouped: dict[str, list] = {}
        for name, poly in zip(self.parts, self.polygons):
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
        box, geometry = around(grid), self._geometry_for(grid)
        near = geometry if box is None else clipped_to_box(geometry, box)
        if near is None:
            raise OutsideImageError("the region lies outside the image; draw it over the image")
        geom = transform_geom(LONLAT_CRS, grid.crs, densified(near))
        inv = ~Affine(*grid.transform)

        def conv(ring: Iterable[Sequence[float]]) -> list[list[float]]:
            return [list(inv @ (p[0], p[1])) for p in ring]

        if geom["type"] == "Polygon":
            return {"type": "Polygon", "coordinates": [conv(r) for r in geom["coordinates"]]}
        return {"type": "MultiPolygon", "coordinates": [[conv(r) for r in p] for p in geom["coordinates"]]}

    def _geometry_for(self, grid: Grid) -> dict:
        """The lon/lat geometry in the longitudes of a georeferenced ``grid`` (see :func:`core.lonlat.lon_frame_centre`)."""
        centre = lon_frame_centre(grid)
        return self.geometry() if centre is None else into_lon_frame(self.geometry(), centre)

    def reaches_far_beyond(self, grid: Grid) -> bool:
        """Whether part of a lon/lat region lies far beyond the image (out of the box around it that
        :meth:`geometry_in` cuts the region to, so that its pixel bounds do not show it)."""
        if self.is_image or not grid.georeferenced:
            return False
        box, geometry = around(grid), self._geometry_for(grid)
        return box is not None and clipped_to_box(geometry, box) is not geometry  # (as it is when inside)

    def pixel_bounds(self, grid: Grid) -> tuple[int, int, int, int]:
        """(col0, row0, col1, row1): the whole pixels the region touches on ``grid``, not clipped
        to the grid (so a region partly outside the image reaches below 0 or past its size).

        Raises:
            RegionError: as :meth:`geometry_in`.
        """
        return _whole_pixels(self.geometry_in(grid))

    def share_on(self, grid: Grid) -> float:
        """The share (0-1) of the region's area that lies on ``grid`` (1 for a region inside it; for one
        reaching far beyond it, as :meth:`geometry_in` cuts it, an upper bound).

        Raises:
            RegionError: as :meth:`geometry_in`.
        """
        geom = self.geometry_in(grid)
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        total = sum(polygon_area(p) for p in polys)
        cut = clipped_to_box(geom, (0.0, 0.0, float(grid.width), float(grid.height)))
        if cut is None or total <= 0:
            return 0.0
        if cut is geom:
            return 1.0
        on = sum(polygon_area(p) for p in ([cut["coordinates"]] if cut["type"] == "Polygon" else cut["coordinates"]))
        return min(on / total, 1.0)

    def window(self, grid: Grid, geometry: dict | None = None) -> PixelWindow:
        """The pixel window of ``grid`` covering the region's part on it: a part of a file's region
        lying beyond the image (a stray polygon far away) does not widen it. ``geometry``: the region's
        :meth:`geometry_in` the grid where the caller has it already (reprojecting thousands of fields twice
        took a third of burning them).

        Raises:
            RegionError: if the region's kind does not fit the grid; OutsideImageError (a RegionError) if
                it lies outside the data.
        """
        geometry = geometry if geometry is not None else self.geometry_in(grid)
        cut = clipped_to_box(geometry, (0.0, 0.0, float(grid.width), float(grid.height)))
        c0, r0, c1, r1 = _whole_pixels(cut) if cut is not None else (0, 0, 0, 0)
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
        from rasterio.transform import Affine

        from core.geometry import pixels_inside

        geom = self.geometry_in(grid)
        window = window or self.window(grid, geom)
        shift = Affine.translation(window.col_off, window.row_off)
        return pixels_inside([geom], (window.height, window.width), shift)


def _whole_pixels(geom: dict) -> tuple[int, int, int, int]:
    """(col0, row0, col1, row1): the whole pixels a geometry in pixel space (x = col, y = row) touches."""
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    pts = np.array([p for poly in polys for p in poly[0]], dtype=np.float64)
    # a vertex within EDGE_TOLERANCE_PX of a pixel edge is on it: a reprojection, or coordinates
    # rounded to 7 decimals (a GeoJSON of this image's own crop areas), leave it a hair off
    c0, r0 = np.floor(pts.min(axis=0) + EDGE_TOLERANCE_PX).astype(int)
    c1, r1 = np.ceil(pts.max(axis=0) - EDGE_TOLERANCE_PX).astype(int)
    return int(c0), int(r0), int(max(c1, c0 + 1)), int(max(r1, r0 + 1))


def image_to_map(col: float, row: float) -> tuple[float, float]:
    """Pixel (col, row) -> GeoJSON (lng, lat) on the Simple-CRS image map."""
    return (float(col), -float(row))


def map_to_image(lng: float, lat: float) -> tuple[float, float]:
    """GeoJSON (lng, lat) on the Simple-CRS image map -> pixel (col, row)."""
    return (float(lng), -float(lat))
