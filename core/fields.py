"""Crop fields as polygons: the crop pixels of a mask traced into GeoJSON, for GIS tools.

Each polygon is a 4-connected group of crop pixels (holes kept), traced along pixel edges, with its
size in pixels and hectares, in longitude/latitude (RFC 7946), largest first. Fields that touch in the
mask make one polygon: these are connected crop areas, not field boundaries. Groups smaller than
``min_pixels`` (isolated pixels, speckle) are left out, so the fields' total area can be a little
below the crop area of the mask.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from core.errors import ConfigError, InvalidDataError, NoDataError
from core.labels import CROP, NODATA
from core.grid import Grid
from core.geojson import gc_paused
from core.geometry import polygon_area

#: More polygons than this make a file too large to be useful in a browser or a GIS.
MAX_FIELDS = 200_000
#: Coordinates are rounded to 7 decimals of a degree (about 1 cm).
DECIMALS = 7


def _ellipsoid_area_ha(rings) -> float:
    """Area in hectares of a lon/lat polygon (a traced group of pixels) on the ellipsoid
    :meth:`core.grid.Grid.pixel_area_ha` uses, so that fields add up to the crop area the app
    shows: each edge adds a^2 * d(lon) * ellipsoid_sine(lat) at the mean of its ends' values, exact
    for edges along meridians and parallels (a north-up grid) and close for the slanted edges of a
    rotated one."""
    from core.grid import WGS84_A, ellipsoid_sine

    def ring(r) -> float:
        xy = np.asarray(r, dtype=np.float64)
        q = ellipsoid_sine(xy[:, 1])
        return abs(float(np.sum(np.radians(np.diff(xy[:, 0])) * (q[1:] + q[:-1]) / 2)))

    return (ring(rings[0]) - sum(ring(r) for r in rings[1:])) * WGS84_A**2 / 1e4


def _right_hand(ring: np.ndarray, exterior: bool) -> np.ndarray:
    """A lon/lat ring (n, 2) in RFC 7946's orientation: counterclockwise for an exterior ring,
    clockwise for a hole (tracing gives them the other way round on a north-down grid)."""
    x, y = ring[:, 0], ring[:, 1]
    counterclockwise = float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])) > 0
    return ring if counterclockwise == exterior else ring[::-1]


def _require_crs(grid: Grid) -> None:
    if not grid.georeferenced:
        raise InvalidDataError("crop areas as polygons need a georeferenced image: this one has no CRS, so they "
                               "would have no place on Earth; use the crop mask GeoTIFF itself")
    grid.require_place_on_earth()


#: The fewest crop pixels a traced crop area holds: smaller groups are speckle, left out
MIN_FIELD_PIXELS = 4


@gc_paused()
def crop_fields(mask: np.ndarray, grid: Grid, min_pixels: int = MIN_FIELD_PIXELS) -> dict:
    """A GeoJSON FeatureCollection of the crop (1) areas of ``mask`` (uint8 1/0, 255 = no data) on
    ``grid``: one Polygon per 4-connected group of at least ``min_pixels`` crop pixels (a MultiPolygon
    of its two sides where it lies across the 180th meridian), with
    properties ``id`` (1 = largest), ``pixels`` and ``area_ha``, in longitude/latitude.

    Raises:
        InvalidDataError: the grid has no CRS, or a local one (fields would have no place on Earth).
        ConfigError: ``min_pixels`` below 1, or more than :data:`MAX_FIELDS` fields.
        NoDataError: no group of crop pixels is large enough.
    """
    from rasterio.features import shapes
    from rasterio.transform import Affine
    from rasterio.warp import transform

    _require_crs(grid)
    if min_pixels < 1:
        raise ConfigError(f"the smallest field must be at least 1 pixel (--min-pixels), got {min_pixels}")
    if mask.shape != grid.shape:
        raise ConfigError(f"mask is {mask.shape[1]}x{mask.shape[0]} px, grid is {grid.width}x{grid.height}")
    crop = mask == CROP
    affine = Affine(*grid.transform)
    pixel_units = abs(affine.a * affine.e - affine.b * affine.d)
    pixel_ha = grid.pixel_area_ha()
    found = []
    for geom, _ in shapes(crop.astype(np.uint8), mask=crop, transform=affine, connectivity=4):
        pixels = int(round(polygon_area(geom["coordinates"]) / pixel_units))
        if pixels >= min_pixels:  # (its rings as arrays at once: the lists of tuples of all fields were most of the memory)
            found.append((pixels, [np.asarray(r, dtype=np.float64)[:, :2] for r in geom["coordinates"]]))
            if len(found) > MAX_FIELDS:
                raise ConfigError(f"over {MAX_FIELDS:,} crop areas of {min_pixels}+ pixels: choose a smaller region "
                                  "(or, on the command line, raise --min-pixels)")
    if not found:
        if not (mask != NODATA).any():  # (a lower threshold cannot help a mask without data)
            raise NoDataError("this crop mask has no data (every pixel is no data): predict an image region with data")
        raise NoDataError(f"no group of {min_pixels} or more crop pixels in this crop mask: lower the threshold (the "
                          "Predict page's slider, or predict --threshold), or on the command line --min-pixels")
    found.sort(key=lambda pg: -pg[0])
    # every vertex of every ring to lon/lat in one call, then back into rings
    rings = [r for _, polygon in found for r in polygon]
    xy = np.concatenate(rings)
    lon, lat = transform(grid.crs, "EPSG:4326", xy[:, 0], xy[:, 1])
    exact = np.column_stack([lon, lat])
    ends = np.cumsum([len(r) for r in rings])
    parts = iter(np.split(exact, ends[:-1]))
    features = []
    for i, (pixels, traced) in enumerate(found, start=1):
        polygon = [_right_hand(next(parts), exterior=k == 0) for k in range(len(traced))]
        lons = polygon[0][:, 0]
        if np.ptp(lons) > 180:  # its ring ran round the Earth the other way
            polygons = _cut_at_180({"type": "Polygon", "coordinates": [r.tolist() for r in traced]}, grid.crs)
            if any(np.ptp(part[0][:, 0]) > 180 for part in polygons):  # not cut (GDAL cuts none from a polar CRS)
                polygons = _cut_continuous(polygon)
        elif lons.min() < -180 or lons.max() > 180:  # a lon/lat grid's longitudes past 180 (e.g. a 0-360 grid)
            wrapped = [np.column_stack([(ring[:, 0] + 180.0) % 360.0 - 180.0, ring[:, 1]]) for ring in polygon]
            if np.ptp(wrapped[0][:, 0]) > 180:  # across 180 (in plate carree about 180, its ring is whole)
                polygons = _cut_at_180(_ring_geometry(polygon, EQC_180), EQC_180)
            else:  # on one side of it (e.g. across Greenwich on a 0-360 grid): moved by 360 degrees
                polygons = [wrapped]
        else:
            polygons = [polygon]
        if isinstance(pixel_ha, np.ndarray):  # lon/lat or Mercator grid: the area on the ellipsoid, as for pixels
            area_ha = sum(_ellipsoid_area_ha(part) for part in polygons)
        else:
            area_ha = pixels * float(pixel_ha)
        coords = [[np.round(ring, DECIMALS).tolist() for ring in part] for part in polygons]
        shape = {"type": "Polygon", "coordinates": coords[0]} if len(coords) == 1 else \
            {"type": "MultiPolygon", "coordinates": coords}
        features.append({"type": "Feature", "id": i, "geometry": shape,
                         "properties": {"id": i, "pixels": pixels, "area_ha": round(area_ha, 4)}})
    return {"type": "FeatureCollection", "features": features}


#: Plate carree centred on the 180th meridian: lon/lat rings past 180 are continuous in it, to be cut there.
EQC_180 = "+proj=eqc +lon_0=180 +datum=WGS84 +units=m +no_defs"


def _ring_geometry(polygon: list[np.ndarray], crs: str) -> dict:
    """A lon/lat polygon (rings as arrays) as a GeoJSON Polygon in ``crs``."""
    from rasterio.warp import transform_geom

    geom = {"type": "Polygon", "coordinates": [ring.tolist() for ring in polygon]}
    return transform_geom("EPSG:4326", crs, geom, precision=-1)


def _cut_continuous(polygon: list[np.ndarray]) -> list[list[np.ndarray]]:
    """A lon/lat polygon whose rings jump from 180 E to 180 W, cut at the 180th meridian from its rings
    made continuous (plate carree about 180): for a polar grid across it, where GDAL cut nothing and the
    field, one polygon round the globe, had 13,000 times its area.

    Raises:
        InvalidDataError: the field holds a pole (its ring goes round the Earth), which longitude and
            latitude cannot draw as a polygon.
    """
    rings = [np.column_stack([np.degrees(np.unwrap(np.radians(r[:, 0]))), r[:, 1]]) for r in polygon]
    if abs(rings[0][-1, 0] - rings[0][0, 0]) > 180:  # (a closed ring, yet 360 degrees apart at its ends)
        raise InvalidDataError("a crop area of this mask holds a pole, which cannot be drawn as a polygon in "
                               "longitude and latitude; trace the fields of a window that leaves the pole out "
                               "(predict --window)")
    return _cut_at_180(_ring_geometry(rings, EQC_180), EQC_180)


def _cut_at_180(geom: dict, crs: str) -> list[list[np.ndarray]]:
    """A traced polygon (in the grid's CRS) that lies across the 180th meridian, in lon/lat as the parts
    on either side of it (RFC 7946, 3.1.9), each a list of rings in its orientation: vertex by vertex
    its ring ran from 180 E to 180 W, round the Earth the other way, and GIS drew a band round the globe."""
    from rasterio.warp import transform_geom

    cut = transform_geom(crs, "EPSG:4326", geom, antimeridian_cutting=True, precision=-1)
    parts = cut["coordinates"] if cut["type"] == "MultiPolygon" else [cut["coordinates"]]
    return [[_right_hand(np.asarray(r, dtype=np.float64)[:, :2], exterior=k == 0) for k, r in enumerate(part)]
            for part in parts]


def fields_area_ha(collection: dict) -> float:
    """The area of all the crop areas of a :func:`crop_fields` collection, in hectares."""
    return sum(f["properties"]["area_ha"] for f in collection["features"])


def fields_bytes(collection: dict, **members) -> bytes:
    """The collection as compact UTF-8 GeoJSON, with ``members`` (e.g. threshold, min_pixels) added
    at the top level as descriptive foreign members."""
    return json.dumps({**collection, **members}, separators=(",", ":")).encode("utf-8")


def write_fields(mask_path: str | os.PathLike, out_path: str | os.PathLike, min_pixels: int = MIN_FIELD_PIXELS,
                 overwrite: bool = False) -> dict:
    """Trace the crop fields of a crop-mask GeoTIFF (``predict``'s ``crop_mask.tif``) into a GeoJSON
    file, atomically; returns a summary (fields, pixels, area_ha, out).

    Raises:
        OutputExistsError, ConfigError: ``out_path`` exists and ``overwrite`` is False, or is a folder
            (checked once the mask has been read, before tracing).
        InputNotFoundError, CorruptFileError: the mask cannot be read.
        InvalidDataError: the file holds values other than 0, 1 and 255, or has no CRS.
        ConfigError, NoDataError: as :func:`crop_fields`.
    """
    from core.evaluate import read_crop_mask
    from core.files import check_output_file, replacing

    try:  # read as evaluate reads a prediction (a declared 0, as some tools write, leaves the crop as it is)
        mask, grid, _ = read_crop_mask(mask_path)
    except InvalidDataError:
        raise InvalidDataError(f"{Path(mask_path).name} is not a crop mask (1 crop, 0 not crop, 255 no data); "
                               "give the crop_mask.tif that predict wrote") from None
    _require_crs(grid)  # said before an output that exists
    out = check_output_file(out_path, overwrite, kind=("GeoJSON", (".geojson", ".json")))  # after the input's own mistakes, before the tracing
    collection = crop_fields(mask, grid, min_pixels)
    with replacing(out) as tmp:
        Path(tmp).write_bytes(fields_bytes(collection, min_pixels=min_pixels, source=Path(mask_path).name))
    props = [f["properties"] for f in collection["features"]]
    pixels = sum(p["pixels"] for p in props)
    # the crop pixels in pieces under min_pixels, left out (the totals were below summary.json's, unexplained)
    return {"fields": len(props), "pixels": pixels, "area_ha": round(fields_area_ha(collection), 2),
            "left_out_pixels": int((mask == CROP).sum()) - pixels, "min_pixels": min_pixels, "out": str(out)}
