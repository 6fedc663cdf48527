"""Reading multiband reflectance images and label rasters, window by window.

An :class:`ImageReader` finds the R, G, B and NIR bands (from band descriptions or an explicit
mapping), detects the reflectance scale (the file's scale/offset metadata, else int x 10000 or float
0-1) and refuses values that cannot be reflectance at that scale, derives NDVI and a validity mask,
and returns ``(features, valid)`` for any window, so that nothing ever needs the whole image in
memory. The scale detection, checks and conversion are shared with Earth Engine image exports
(:mod:`core.patches`, :mod:`core.predict_export`). Label rasters are read through a
:class:`~core.labels.ClassMap` on the same grid.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import (
    BandError,
    CorruptFileError,
    GridMismatchError,
    InputNotFoundError,
    InvalidDataError,
)
from core.labels import NODATA, ClassMap

#: Bands every model sees, in this order; NDVI is derived, never read.
INPUT_BANDS: tuple[str, ...] = ("R", "G", "B", "NIR")
FEATURE_BANDS: tuple[str, ...] = ("R", "G", "B", "NIR", "NDVI")

# Band descriptions recognised for each input band (upper case). Bare numbers follow the
# Sentinel-2 / Landsat 8-9 numbering; B5 is NIR only when there is no B8, B08 or B8A (Landsat 8
# files: in Sentinel-2, B5 is red edge and B8A the narrow NIR of its 20 m bands).
_ALIASES: dict[str, tuple[str, ...]] = {
    "R": ("R", "RED", "B4", "B04", "RED_SR"),
    "G": ("G", "GREEN", "B3", "B03", "GREEN_SR"),
    "B": ("B", "BLUE", "B2", "B02", "BLUE_SR"),
    "NIR": ("NIR", "N", "B8", "B08", "B8A", "NIR_SR", "NIR08", "B5", "B05"),
}
# NIR08: the STAC common name of the 0.85 um NIR band of Landsat 8-9 (band 5) and of Sentinel-2's B8A, as
# Planetary Computer and Earth Search name them (with red, green, blue); their "nir" (Sentinel-2 B8) wins.
_SENTINEL2_NIR = frozenset({"B8", "B08", "B8A"})
# Landsat Collection 2 surface reflectance names: SR_B<n> is another band on Landsat 4-7 (TM, ETM+)
# than on Landsat 8-9 (OLI), so they are read only when a band that one of them alone has tells which.
_LANDSAT_SR: dict[str, dict[str, str]] = {
    "Landsat 4-7": {"R": "SR_B3", "G": "SR_B2", "B": "SR_B1", "NIR": "SR_B4"},
    "Landsat 8-9": {"R": "SR_B4", "G": "SR_B3", "B": "SR_B2", "NIR": "SR_B5"},
}
_LANDSAT_MARKERS: dict[str, frozenset[str]] = {
    "Landsat 4-7": frozenset({"ST_B6", "SR_ATMOS_OPACITY", "SR_CLOUD_QA"}),  # thermal band 6, TM/ETM+ QA
    "Landsat 8-9": frozenset({"SR_B6", "ST_B10", "SR_QA_AEROSOL"}),  # SWIR 1 (4-7's band 6 is thermal), OLI QA
}

#: Reflectance below this (after scaling) is not surface reflectance; a few such pixels are real
#: (atmospheric over-correction over water and shadow, as in Landsat Collection 2 and Sentinel-2 with
#: their offsets) and are clipped to 0, but more than :data:`MAX_NEGATIVE_SHARE` of the image's
#: sampled valid pixels, or any pixel below :data:`MIN_POSSIBLE_REFLECTANCE`, means a wrong scale or
#: band order.
MIN_REFLECTANCE = -0.05
#: Share of the image's sampled valid pixels (:func:`check_reflectance`) that may lie below
#: :data:`MIN_REFLECTANCE` (clipped to 0). Tested on the image's sample, not on each window read: a
#: window over a lake or a mountain's shadow may be mostly dark, and the image must not be accepted
#: as a whole and then refused in the middle of a prediction.
MAX_NEGATIVE_SHARE = 0.05
#: No product's offset reaches below this (Landsat Collection 2: -0.2): a pixel under it is an error.
MIN_POSSIBLE_REFLECTANCE = -0.2
#: No surface reflectance reaches above this (Landsat Collection 2's largest stored value gives 1.6;
#: Sentinel-2 over bright cloud about 1.5): a pixel above it in any band (a saturated pixel, or an
#: undeclared fill such as 65535 or 32767) is read as no data, never fed to the model.
MAX_POSSIBLE_REFLECTANCE = 2.0


#: A projected CRS's pixel area is taken as it is (as GIS give it) where it is within this share of
#: the area on the ground over the whole grid (UTM: 0.1%); beyond, areas are corrected row by row.
AREA_SCALE_TOLERANCE = 0.01
#: Equal-area on the WGS 84 ellipsoid (EASE-Grid 2.0 global): the ground areas of projected pixels.
EQUAL_AREA_CRS = "EPSG:6933"
#: The width of :data:`EQUAL_AREA_CRS`'s map in metres, from 180° W to 180° E (its x at 180° E, twice).
EQUAL_AREA_WIDTH = 2 * 17_367_530.445161372

#: WGS 84 ellipsoid (semi-major axis in m, flattening): areas on geographic and Mercator grids are
#: taken on it (a sphere of the mean radius was 0.2-0.3% off at mid latitudes).
WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563


def ellipsoid_sine(lat_deg: np.ndarray | float) -> np.ndarray:
    """Half the authalic ``q`` of the WGS 84 ellipsoid at latitude ``lat_deg``: the ellipsoid's
    stand-in for sin(lat) in areas, so that the area between two parallels over ``dlon`` radians
    is ``WGS84_A**2 * dlon * |ellipsoid_sine(lat2) - ellipsoid_sine(lat1)|`` (on a sphere of radius
    ``WGS84_A`` it would be sin). Snyder, Map Projections: A Working Manual, eq. 3-12."""
    e2 = WGS84_F * (2 - WGS84_F)
    e = math.sqrt(e2)
    s = np.sin(np.radians(np.asarray(lat_deg, dtype=np.float64)))
    q = (1 - e2) * (s / (1 - e2 * s * s) - np.log((1 - e * s) / (1 + e * s)) / (2 * e))
    return q / 2


@dataclass(frozen=True)
class Grid:
    """The pixel grid of a raster: CRS (WKT/EPSG string or None), affine transform, size."""

    crs: str | None
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def pixel_size_m(self) -> float | None:
        """Ground size of a pixel in metres (the square root of its area, at the grid's centre for
        geographic CRSs); None when the grid is not georeferenced."""
        area = self.pixel_area_ha()
        if area is None:
            return None
        if isinstance(area, np.ndarray):
            area = float(area[len(area) // 2, 0])
        return math.sqrt(float(area) * 1e4)

    def same_as(self, other: "Grid", tol: float = 1e-6) -> bool:
        if self.shape != other.shape or (self.crs is None) != (other.crs is None):
            return False
        if self.crs is not None and other.crs is not None and not _same_crs(self.crs, other.crs):
            return False
        # relative to the pixel size (not to 1: a degree grid's pixels are ~1e-4, so 1e-6 would be 1%)
        a, b, _, d, e, _ = self.transform[:6]
        scale = max(abs(a), abs(b), abs(d), abs(e))
        return all(abs(x - y) <= tol * scale for x, y in zip(self.transform, other.transform))

    def pixel_area_ha(self) -> np.ndarray | float | None:
        """Area of one pixel in hectares on the ground: a float for projected CRSs, a per-row array
        (shape (height, 1)) for geographic and Mercator CRSs (whose pixels shrink on the ground away
        from the equator: 1/2 of the nominal area at 45 degrees in Web Mercator; for a rotated such
        grid, at each row's middle) and for projected CRSs whose pixels' area differs from the ground's
        by over :data:`AREA_SCALE_TOLERANCE` (e.g. plate carree, a conformal projection far from its
        centre), None when the grid is not georeferenced.

        Raises:
            InvalidDataError: a CRS without a linear unit in metres or a known one (e.g. a local
                engineering CRS), so that no area can be given; a lon/lat grid whose rows reach beyond a
                pole (a wrong CRS tag).
        """
        if self.crs is None:
            return None
        from rasterio.crs import CRS
        from rasterio.errors import CRSError

        crs = CRS.from_user_input(self.crs)
        a, b, c, d, e, f = self.transform
        rows = np.arange(self.height + 1, dtype=np.float64)
        mercator = crs.to_dict().get("proj") == "merc"
        if (b or d) and (crs.is_geographic or mercator):
            return self._rotated_pixel_area_ha(crs)
        if crs.is_geographic:
            lat, dlon = _latitudes(self.transform[5] + rows * e, abs(e), crs), abs(a)
        elif mercator:
            from rasterio.warp import transform as warp

            ys = list(f + rows * e)
            lon, lat = warp(crs, "EPSG:4326", [c] * len(ys) + [c + a], ys + [ys[0]])
            lat, dlon = np.asarray(lat[:-1]), abs(lon[-1] - lon[0])
        else:
            try:
                factor = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
            except CRSError:
                factor = _local_unit_factor(crs.to_wkt())
                if factor is None:
                    raise InvalidDataError(f"the image's CRS has no known linear unit ({crs.to_string()[:60]}), so "
                                           "areas cannot be given; reproject it to a UTM zone (gdalwarp -t_srs)") from None
            nominal = abs(a * e - b * d) * factor * factor / 1e4
            scale = self._areal_scale_by_row(crs, factor)
            return nominal if scale is None else nominal / scale
        band = np.abs(np.diff(ellipsoid_sine(lat))) * WGS84_A**2 * math.radians(dlon)
        return (band / 1e4)[:, None]

    def _areal_scale_by_row(self, crs, factor: float, probe: int = 5, columns: int = 9,
                            max_rows: int = 1024) -> np.ndarray | None:
        """For a projected CRS, how much larger than on the ground its pixels' area is, per row (height,
        1), where that differs by over :data:`AREA_SCALE_TOLERANCE` somewhere in the grid (e.g. plate
        carree: 1.5 times at 49 degrees); None where it does not (UTM and national grids: their
        pixels' nominal area, as GIS give it). Measured at the pixels' centres by mapping each
        pixel's sides onto an equal-area CRS (:data:`EQUAL_AREA_CRS`); a row's figure is the mean over
        ``columns`` spread along it, and rows are measured every ``height / max_rows`` rows and
        interpolated between. Points the CRS cannot place are left out (None when all are)."""
        rows = np.linspace(0.5, self.height - 0.5, probe)
        cols = np.linspace(0.5, self.width - 0.5, probe)
        first = self._areal_scale(crs, factor, *np.meshgrid(rows, cols, indexing="ij"))
        if not np.isfinite(first).any() or np.nanmax(np.abs(first - 1)) <= AREA_SCALE_TOLERANCE:
            return None
        rows = np.linspace(0.5, self.height - 0.5, min(self.height, max_rows))
        cols = np.linspace(0.5, self.width - 0.5, min(self.width, columns))
        scale = self._areal_scale(crs, factor, *np.meshgrid(rows, cols, indexing="ij"))
        ok = np.isfinite(scale).any(axis=1)
        if not ok.any():
            return None
        by_row = 1.0 / np.nanmean(np.where(np.isfinite(scale), 1.0 / scale, np.nan)[ok], axis=1)  # mean true area
        return np.interp(np.arange(self.height) + 0.5, rows[ok], by_row)[:, None]

    def _areal_scale(self, crs, factor: float, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Nominal over true area of the pixels at fractional ``rows``/``cols`` (same shape; ``factor``:
        metres per CRS unit), from their two sides, a tenth of a pixel long, mapped onto
        :data:`EQUAL_AREA_CRS`; NaN where that fails."""
        from affine import Affine
        from rasterio._err import CPLE_BaseError  # (GDAL's errors; rasterio.errors does not name them)
        from rasterio.errors import CRSError
        from rasterio.warp import transform as warp

        t = Affine(*self.transform)
        r, c = rows.ravel(), cols.ravel()
        xs, ys = [], []
        for dr, dc in ((0, 0), (0, 0.1), (0.1, 0)):
            x, y = t * (c + dc, r + dr)
            xs.append(np.asarray(x, np.float64))
            ys.append(np.asarray(y, np.float64))
        try:
            ex, ey = warp(crs, EQUAL_AREA_CRS, np.concatenate(xs).tolist(), np.concatenate(ys).tolist())
        except (CPLE_BaseError, CRSError):  # a local (engineering) CRS: no place on Earth to measure
            return np.full(rows.shape, np.nan)
        ex, ey = np.asarray(ex, np.float64).reshape(3, -1), np.asarray(ey, np.float64).reshape(3, -1)
        # a side across the 180th meridian runs from one edge of the equal-area map to the other: the
        # short way round instead (the map's width is a turn of longitude; its area came out 10^6 too large)
        dx = ex[1:] - ex[0]
        dx -= EQUAL_AREA_WIDTH * np.round(dx / EQUAL_AREA_WIDTH)
        true = np.abs(dx[0] * (ey[2] - ey[0]) - (ey[1] - ey[0]) * dx[1]) / 0.01
        a, b, _, d, e, _ = self.transform
        with np.errstate(divide="ignore", invalid="ignore"):
            out = abs(a * e - b * d) * factor**2 / true
        out[~np.isfinite(out) | (out <= 0)] = np.nan
        return out.reshape(rows.shape)

    def _rotated_pixel_area_ha(self, crs) -> np.ndarray:
        """Per-row pixel areas (height, 1) in hectares of a rotated or sheared lon/lat or Mercator
        grid, whose rows do not follow parallels: the ground area of a north-up square of the pixel's
        size (in the CRS's units) at the row's centre (its middle column). The change of area along
        a row (a row's span of latitude) is left out."""
        from rasterio.warp import transform as warp

        a, b, c, d, e, f = self.transform
        rows = np.arange(self.height, dtype=np.float64) + 0.5
        x, y = c + a * self.width / 2 + b * rows, f + d * self.width / 2 + e * rows
        side = math.sqrt(abs(a * e - b * d))
        if crs.is_geographic:
            lat_lo, lat_hi, dlon = _latitudes(y - side / 2, side, crs), _latitudes(y + side / 2, side, crs), side
        else:  # Mercator: meridians and parallels are the grid's axes before its rotation
            n = len(rows)
            lon, lat = warp(crs, "EPSG:4326", list(x - side / 2) + list(x + side / 2) + [c - side / 2, c + side / 2],
                            list(y - side / 2) + list(y + side / 2) + [f, f])
            lat_lo, lat_hi, dlon = np.asarray(lat[:n]), np.asarray(lat[n : 2 * n]), abs(lon[-1] - lon[-2])
        band = np.abs(ellipsoid_sine(lat_hi) - ellipsoid_sine(lat_lo)) * WGS84_A**2 * math.radians(dlon)
        return (band / 1e4)[:, None]


def _latitudes(lat: np.ndarray, pixel: float, crs) -> np.ndarray:
    """Latitudes (degrees) of a lon/lat grid's rows, clipped to the poles: a global grid may reach
    past a pole by up to a pixel (pixels centred on it), and that part has no area.

    Raises:
        InvalidDataError: rows further beyond a pole, which no image on Earth has: the CRS tag is wrong
            (e.g. metres of a UTM zone tagged as EPSG:4326).
    """
    far = float(np.max(np.abs(lat))) if lat.size else 0.0
    if far > 90 + pixel + 1e-9:
        raise InvalidDataError(
            f"the image's CRS ({crs.to_string()[:40]}) is in degrees of longitude/latitude, but its rows reach "
            f"latitude {far:,.6g}, beyond the pole, so its coordinates are not degrees: the CRS tag is wrong; set "
            "the image's real CRS (gdal_edit.py -a_srs EPSG:...) or reproject it (gdalwarp -t_srs)")
    return np.clip(lat, -90.0, 90.0)


def _local_unit_factor(wkt: str) -> float | None:
    """Metres per unit of a local (engineering) CRS, from its WKT's first length unit
    (``UNIT["metre",1]``, ``LENGTHUNIT["foot",0.3048]``); None for other CRSs or no such unit."""
    import re

    if not re.match(r"\s*(LOCAL_CS|ENGCRS|ENGINEERINGCRS)\[", wkt):
        return None
    m = re.search(r'(?:LENGTHUNIT|UNIT)\["[^"]*",\s*([0-9.eE+-]+)', wkt)
    try:
        factor = float(m.group(1)) if m else None
    except ValueError:
        return None
    return factor if factor and factor > 0 else None


def _same_crs(a: str, b: str) -> bool:
    from rasterio.crs import CRS

    return CRS.from_user_input(a) == CRS.from_user_input(b)


def grid_of(src) -> Grid:
    """The :class:`Grid` of an open rasterio dataset. A CRS without a geotransform (rasterio then
    gives the identity: 1 unit pixels at the CRS's origin) places nothing: not georeferenced."""
    crs = src.crs.to_string() if src.crs and not _no_geotransform(src) else None
    return Grid(crs, tuple(src.transform)[:6], src.width, src.height)


def _no_geotransform(src) -> bool:
    return src.transform.is_identity


def georeferencing_warnings(src, what: str) -> tuple[str, ...]:
    """A warning for a file that names a CRS but has no geotransform (:func:`grid_of` reads it as
    not georeferenced: no areas in hectares, no place on a map)."""
    if src.crs and _no_geotransform(src):
        return (f"{what} names a CRS ({src.crs.to_string()[:40]}) but has no geotransform (where its pixels lie), "
                "so it is read as not georeferenced: areas are in pixels; set its geotransform (e.g. gdal_translate "
                "-a_ullr, or gdalwarp from its ground control points)",)
    return ()


def grid_of_file(path: str | os.PathLike) -> Grid:
    """The :class:`Grid` of a raster file.

    Raises:
        InputNotFoundError, CorruptFileError.
    """
    with _open(path) as src:
        return grid_of(src)


def _open(path: str | os.PathLike):
    import rasterio
    from rasterio.errors import RasterioIOError

    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"file not found: {p} (check the path)")
    try:
        return rasterio.open(p)
    except RasterioIOError as err:
        # GDAL's text names the file by its whole path (for an upload, a folder of the server's): by name here
        name = p.name or str(p)  # "." has no name
        reason = str(err).replace(f"'{p}'", "").replace(str(p), name).strip().rstrip(".")
        if p.is_dir():
            raise CorruptFileError(f"{name} is a folder; give the image or labels GeoTIFF (.tif) in it") from None
        if "not recognized as being in a supported file format" in reason:
            raise CorruptFileError(f"{name} is not a GeoTIFF (nor another raster format that GDAL reads); "
                                   "give the image or labels as a GeoTIFF (.tif)") from None
        raise CorruptFileError(f"cannot read {name}: {reason}; is it a GeoTIFF?") from None


def read_pixels(src, path: str | os.PathLike, *args, **kwargs) -> np.ndarray:
    """``src.read(*args, **kwargs)`` of the open raster ``src`` (the file ``path``).

    Raises:
        CorruptFileError: a block of the file cannot be read (truncated or damaged).
    """
    from rasterio.errors import RasterioIOError

    try:
        return src.read(*args, **kwargs)
    except RasterioIOError as err:
        reason = str(err).replace("See previous exception for details.", "").strip().rstrip(".")
        raise CorruptFileError(f"cannot read pixels of {path} ({reason}): the file is truncated or damaged; "
                               "copy or download it again") from None


def read_padded(src, path: str | os.PathLike, indexes, window, fill, masked: bool = False) -> np.ndarray:
    """:func:`read_pixels` of ``window`` (None: the whole raster), whose part beyond the raster's
    edges is ``fill`` (masked, for a ``masked`` read). Not rasterio's ``boundless`` read: that goes
    through a warped VRT, which turns a rotated grid north-up and so moves and resamples its pixels.

    Raises:
        CorruptFileError: see :func:`read_pixels`.
    """
    from rasterio.windows import Window

    if window is None:
        return read_pixels(src, path, indexes, masked=masked)
    r, c, h, w = (int(round(v)) for v in (window.row_off, window.col_off, window.height, window.width))
    r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + h, src.height), min(c + w, src.width)
    if (r0, c0, r1, c1) == (r, c, r + h, c + w):
        return read_pixels(src, path, indexes, window=window, masked=masked)
    shape = (h, w) if isinstance(indexes, int) else (len(indexes), h, w)
    dtype = src.dtypes[(indexes if isinstance(indexes, int) else indexes[0]) - 1]
    try:
        out = np.full(shape, fill, dtype)
    except (OverflowError, ValueError):  # a nodata value the type cannot hold: 0, no data too
        out = np.zeros(shape, dtype)
    mask = np.ones(shape, bool)
    if r1 > r0 and c1 > c0:
        part = read_pixels(src, path, indexes, window=Window(c0, r0, c1 - c0, r1 - r0), masked=masked)
        out[..., r0 - r : r1 - r, c0 - c : c1 - c] = np.ma.getdata(part)
        mask[..., r0 - r : r1 - r, c0 - c : c1 - c] = np.ma.getmaskarray(part)
    return np.ma.MaskedArray(out, mask=mask) if masked else out


def parse_band_spec(spec: str | None) -> dict[str, int] | None:
    """Parse ``"1,2,3,4"`` or ``"R=1,G=2,B=3,NIR=4"`` (1-based band numbers) into a mapping.

    Raises:
        BandError: if the text is not of either form, does not give exactly four bands, or names
            a band twice or one band number for two bands.
    """
    if not spec:
        return None
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    named = all("=" in p for p in parts)
    try:
        pairs = [(k.strip().upper(), int(v)) for k, v in (p.split("=", 1) for p in parts)] if named else \
            [(b, int(p)) for b, p in zip(INPUT_BANDS, parts)]
    except ValueError:
        raise BandError(f"bad band list {spec!r}: give four 1-based band numbers in the order R,G,B,NIR, e.g. 1,2,3,4") from None
    if not named and len(parts) != len(INPUT_BANDS):
        raise BandError(f"bad band list {spec!r} ({len(parts)} numbers): give exactly four band numbers, "
                        "of R, G, B and NIR in this order, e.g. 1,2,3,4")
    mapping = dict(pairs)
    if len(mapping) != len(pairs) or set(mapping) != set(INPUT_BANDS):
        raise BandError(f"bad band list {spec!r}: it must name exactly R, G, B and NIR, once each, e.g. R=3,G=2,B=1,NIR=4")
    _check_distinct(mapping, spec)
    return mapping


def _check_distinct(band_map: dict[str, int], what: object) -> None:
    """Raises BandError if two of R, G, B, NIR share a band number."""
    seen: dict[int, str] = {}
    for name, idx in band_map.items():
        if idx in seen:
            raise BandError(f"bad band list {what!r}: band {idx} is given for both {seen[idx]} and {name}; "
                            "R, G, B and NIR must be four different bands, e.g. 1,2,3,4")
        seen[idx] = name


def resolve_bands(descriptions: Sequence[str | None], count: int, band_map: dict[str, int] | None = None) -> dict[str, int]:
    """Find the 1-based index of R, G, B and NIR.

    Raises:
        BandError: if a band is missing, named twice, or cannot be identified, or if ``band_map``
            lacks one of them, gives one band number twice, or names a band the image lacks; an
            image of fewer than four bands (an RGB or grey picture).
    """
    if count < len(INPUT_BANDS):
        raise BandError(
            f"the image has {count} band{'s' if count != 1 else ''}, but a crop map needs four: R, G, B and NIR "
            "(near infrared, for NDVI); a photo or a true-colour picture will not do: use the satellite "
            "product's surface reflectance bands, NIR included"
        )
    if band_map is not None:
        missing = [b for b in INPUT_BANDS if b not in band_map]
        if missing:
            raise BandError(f"the band numbers lack {', '.join(missing)}: give the numbers of R, G, B and NIR, e.g. 1,2,3,4")
        band_map = {b: band_map[b] for b in INPUT_BANDS}
        _check_distinct(band_map, ",".join(f"{b}={i}" for b, i in band_map.items()))
        for name, idx in band_map.items():
            if not 1 <= idx <= count:
                raise BandError(f"band {name}={idx} does not exist: the image has {count} band{'s' if count != 1 else ''}")
        return band_map
    names = [(d or "").strip().upper() for d in descriptions]
    if not any(names):
        raise BandError(
            f"the image has {count} bands without descriptions, so R, G, B and NIR cannot be told apart; "
            "name them (band descriptions R,G,B,NIR) or give the band numbers of R, G, B and NIR, e.g. 1,2,3,4 "
            "(--bands on the command line, 'Band numbers' in the dashboard)"
        )
    found: dict[str, int] = {}
    for band in INPUT_BANDS:
        for alias in _ALIASES[band]:
            if alias in names:
                if band == "NIR" and alias in ("B5", "B05") and (_SENTINEL2_NIR & set(names)):
                    continue
                found[band] = names.index(alias) + 1
                break
    missing = [b for b in INPUT_BANDS if b not in found]
    if missing and any(n.startswith("SR_B") for n in names):
        landsat = _landsat_sr_names(names)
        found.update({b: names.index(landsat[b]) + 1 for b in missing if landsat[b] in names})
        missing = [b for b in INPUT_BANDS if b not in found]
    if missing:
        raise BandError(
            f"the image lacks band(s) {', '.join(missing)} (its bands are {', '.join(n or '?' for n in names)}); "
            "it needs R, G, B and NIR surface reflectance, or give their band numbers "
            "(--bands on the command line, 'Band numbers' in the dashboard)"
        )
    return found


def band_map_warnings(descriptions: Sequence[str | None], count: int, band_map: dict[str, int], what: str) -> tuple[str, ...]:
    """A warning when band numbers given by the user (``band_map``) contradict the file's own band
    names: R and NIR swapped, say, give a plausible but wrong crop map. () when they agree or the
    names do not tell the bands."""
    try:
        named = resolve_bands(descriptions, count)
    except BandError:
        return ()
    if named == band_map:
        return ()
    given = ", ".join(f"{b}={band_map[b]}" for b in INPUT_BANDS)
    own = ", ".join(f"{b}={named[b]}" for b in INPUT_BANDS)
    return (f"{what}: the band numbers given ({given}) differ from what the file's band names say ({own}); "
            "check them: bands in the wrong places give a wrong crop map",)


def _landsat_sr_names(names: Sequence[str]) -> dict[str, str]:
    """R, G, B, NIR -> Landsat Collection 2 ``SR_B<n>`` name, for the Landsat generation that the
    image's band names (upper case) tell.

    Raises:
        BandError: no band (or bands of both) tells Landsat 4-7 from Landsat 8-9.
    """
    kinds = [kind for kind, marks in _LANDSAT_MARKERS.items() if marks & set(names)]
    if len(kinds) == 1:
        return _LANDSAT_SR[kinds[0]]
    orders = [f"{','.join(str(names.index(m[b]) + 1) for b in INPUT_BANDS)} for {kind}"
              for kind, m in _LANDSAT_SR.items() if all(m[b] in names for b in INPUT_BANDS)]
    example = f", here {' or '.join(orders)}" if orders else ""
    raise BandError(
        "the bands are named SR_B<n> (Landsat Collection 2), whose numbers mean other bands on Landsat 4-7 "
        "(SR_B3 red, SR_B4 NIR) than on Landsat 8-9 (SR_B4 red, SR_B5 NIR), and the file does not tell which; "
        f"name the bands R, G, B, NIR or give their band numbers in the order R,G,B,NIR{example} "
        "(--bands on the command line, 'Band numbers' in the dashboard)"
    )


def detect_scale(
    dtype: str, sample: np.ndarray, scales: Sequence[float] | None = None, offsets: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-band ``(scale, offset)`` (float64 arrays, one value per row of ``sample``) that turn stored
    values into reflectance 0-1: ``reflectance = stored * scale + offset``.

    The file's scale/offset metadata wins when it is not the default (scale 1, offset 0), e.g.
    Landsat Collection 2 (2.75e-5, -0.2). Otherwise integers, and floats whose values reach far
    above 1, are taken as reflectance x 10000. ``sample`` holds stored values (bands, n) of valid
    pixels.
    """
    n = sample.shape[0]
    scale = np.array([1.0 if not s else float(s) for s in scales or ()] or [1.0] * n)
    offset = np.array([float(o or 0.0) for o in offsets or ()] or [0.0] * n)
    if len(scale) != n or len(offset) != n:
        raise ValueError(f"{len(scale)} scales and {len(offset)} offsets for {n} bands")
    if (scale != 1).any() or (offset != 0).any():
        return scale, offset
    if np.dtype(dtype).kind in "iu":
        return np.full(n, 1e-4), offset
    finite = sample[np.isfinite(sample) & (sample != 0)]
    if finite.size and np.percentile(finite, 99) > 2.0:
        return np.full(n, 1e-4), offset
    return scale, offset


#: A band whose median pixel is brighter than this is not reflectance 0-1 (snow and cloud reach about 1).
MAX_MEDIAN_REFLECTANCE = 1.5
#: If the 99th percentile of every band stays below this, the values are not reflectance: 8-bit
#: display values (at most 255) read as reflectance x 10000 stay below 0.0255.
MIN_BRIGHT_REFLECTANCE = 0.03
#: If even the 1st percentile of the darkest band is above this, the values carry an offset (Landsat
#: Collection 2 stored values read as x 10000 start at 0.727); real scenes have shadow, water and
#: dark fields well below it.
MIN_DARK_REFLECTANCE = 0.4
#: Below MIN_DARK_REFLECTANCE but above this, the darkest pixels are only suspect: real scenes with
#: crops have them at 0.006-0.024 (the sample scene, the Ag-Net blocks, the Sentinel-2 and Landsat
#: fixtures), while Sentinel-2 L2A stored as reflectance x 10000 + 1000 (processing baseline 04.00,
#: 2022 on) read as x 10000 puts them at 0.1 and more. A scene of bright desert or snow may be
#: right there, so this is a warning, not a refusal.
DARK_OFFSET_WARNING = 0.08


def reflectance_warnings(refl: np.ndarray, what: str) -> tuple[str, ...]:
    """Warnings about reflectance that is possible but suspect (``refl``: bands x valid pixels of a
    sample, after scale and offset); empty for samples of fewer than MIN_CHECKED_PIXELS pixels."""
    if refl.ndim != 2 or refl.shape[1] < MIN_CHECKED_PIXELS:
        return ()
    dark = float(np.percentile(refl, 1, axis=1).min())
    if dark <= DARK_OFFSET_WARNING:
        return ()
    return (f"even the darkest pixels of {what} have reflectance {dark:.2f} or more (1st percentile of the "
            "darkest band), where fields, water and shadow are usually below 0.03: if it is Sentinel-2 L2A from "
            "2022 on (reflectance x 10000 + 1000), set its offset (gdal_edit.py -scale 0.0001 -offset -0.1 "
            "FILE.tif) or subtract 1000, or the crop map will be wrong",)


def stored_ceiling(scales: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per band, the stored value above which a pixel's reflectance (``stored * scale + offset``)
    exceeds :data:`MAX_POSSIBLE_REFLECTANCE` (for :func:`valid_pixels`); scales are positive."""
    return (MAX_POSSIBLE_REFLECTANCE - np.asarray(offsets, np.float64)) / np.asarray(scales, np.float64)


def sample_warnings(stored: np.ndarray, scales: np.ndarray, offsets: np.ndarray, what: str) -> tuple[str, ...]:
    """Warnings about a sample (``stored``: bands x pixels with data, as stored) read with ``scales``
    and ``offsets``: pixels above any reflectance (:func:`stored_ceiling`; read as no data), naming
    the value most of them hold in every band, a fill value that the file could declare; then the
    rest's suspect but possible values (:func:`reflectance_warnings`)."""
    high = (stored > stored_ceiling(scales, offsets)[:, None]).any(axis=0)
    warnings: tuple[str, ...] = ()
    if high.any():
        fill = _undeclared_fill(stored[:, high])
        what_fill = (f": most hold {fill:g} in every band, a no-data value that the file does not declare (set it: "
                     f"gdal_edit.py -a_nodata {fill:g} FILE.tif)" if fill is not None else " (saturated pixels?)")
        warnings = (f"{high.mean():.1%} of the sampled pixels of {what} have reflectance above "
                    f"{MAX_POSSIBLE_REFLECTANCE:g} in some band, which no surface reflectance reaches; they are "
                    f"read as no data{what_fill}",)
    rest = stored[:, ~high]
    return warnings + reflectance_warnings(rest * scales[:, None] + offsets[:, None], what)


#: Landsat Collection 2 Level-2 surface reflectance as stored: reflectance = stored * scale + offset.
LANDSAT_C2_SCALE = 2.75e-5
LANDSAT_C2_OFFSET = -0.2
#: Fewer valid pixels than this in a sample say too little for the checks: they are skipped.
MIN_CHECKED_PIXELS = 100


def _undeclared_fill(stored: np.ndarray | None) -> float | None:
    """The stored value that most of the pixels ``stored`` (bands, n: those with impossible
    reflectance) hold in every band, e.g. -9999: a no-data value that the file does not declare;
    None when there is no such value."""
    if stored is None or not stored.size:
        return None
    same = (stored == stored[:1]).all(axis=0)
    if same.sum() * 2 < stored.shape[1]:
        return None
    values, counts = np.unique(stored[0, same], return_counts=True)
    return float(values[counts.argmax()]) if counts.max() * 2 >= stored.shape[1] else None


def _negative_reflectance(what: str, low: float, share: float | None = None,
                          stored: np.ndarray | None = None) -> InvalidDataError:
    """The error for reflectance that is too negative to be real (``share``: of the pixels below
    :data:`MIN_REFLECTANCE`, where known; ``stored``: those pixels' stored values, where known)."""
    many = "" if share is None else f", {share:.1%} of the pixels below {MIN_REFLECTANCE}"
    fill = _undeclared_fill(stored)
    if fill is not None:
        return InvalidDataError(
            f"{what} holds {fill:g} in every band of its pixels with negative reflectance (down to {low:.3f}{many}): "
            f"a no-data value that the file does not declare; set it as the file's nodata value "
            f"(gdal_edit.py -a_nodata {fill:g} FILE.tif) so that those pixels count as no data"
        )
    return InvalidDataError(
        f"{what} holds negative reflectance (down to {low:.3f}{many}); surface reflectance must be 0-1 (or "
        "0-10000 as integers): check the scale factors or the band order"
    )


def check_reflectance(refl: np.ndarray, what: str, stored: np.ndarray | None = None) -> None:
    """Refuse values that cannot be surface reflectance, from robust statistics of a sample.

    ``refl`` holds reflectance (after scale and offset) of valid pixels, one row per band R, G, B,
    NIR; ``stored`` the same pixels as stored (for the message). A sample of fewer than
    :data:`MIN_CHECKED_PIXELS` pixels passes.

    Raises:
        InvalidDataError: more than :data:`MAX_NEGATIVE_SHARE` of the pixels below
            :data:`MIN_REFLECTANCE` or any below :data:`MIN_POSSIBLE_REFLECTANCE` (a wrong offset,
            scale or band order), a band's median is above :data:`MAX_MEDIAN_REFLECTANCE` (values too
            large: a wrong scale), or the 99th percentile of every band is below
            :data:`MIN_BRIGHT_REFLECTANCE` (values too small: e.g. 8-bit display values), or the 1st
            percentile of every band is above :data:`MIN_DARK_REFLECTANCE` (an offset, e.g. Landsat
            Collection 2 stored values without their scale/offset metadata).
    """
    if refl.ndim != 2 or refl.shape[1] < MIN_CHECKED_PIXELS:
        return
    low = float(refl.min())
    share = float((refl < MIN_REFLECTANCE).any(axis=0).mean())
    if low < MIN_POSSIBLE_REFLECTANCE or share > MAX_NEGATIVE_SHARE:
        below = (refl < MIN_REFLECTANCE).any(axis=0)
        raise _negative_reflectance(what, low, share, None if stored is None else stored[:, below])
    p1, medians, p99 = np.percentile(refl, [1, 50, 99], axis=1)
    if medians.max() <= MAX_MEDIAN_REFLECTANCE and p99.max() >= MIN_BRIGHT_REFLECTANCE \
            and p1.min() <= MIN_DARK_REFLECTANCE:
        return
    raw = "" if stored is None else " (stored values: median {:.4g}, 99th percentile {:.4g})".format(
        *np.percentile(stored, [50, 99]))
    if p1.min() > MIN_DARK_REFLECTANCE and medians.max() <= MAX_MEDIAN_REFLECTANCE:
        raise InvalidDataError(
            f"{what} does not look like surface reflectance: even its darkest pixels have reflectance "
            f"{p1.min():.2f} or more (1st percentile of the darkest band){raw}; the values seem to carry an "
            "offset, e.g. Landsat Collection 2 surface reflectance, which is stored x 0.0000275 - 0.2: set the "
            "file's scale/offset metadata or convert it to reflectance 0-1 (a scene entirely under cloud or "
            "snow has no crops to map)"
        )
    if medians.max() > MAX_MEDIAN_REFLECTANCE:
        band = INPUT_BANDS[int(medians.argmax())] if len(medians) == len(INPUT_BANDS) else "a band"
        landsat = stored is not None and _reflectance_at(stored, LANDSAT_C2_SCALE, LANDSAT_C2_OFFSET)
        raise InvalidDataError(
            f"{what} does not look like surface reflectance: the median {band} pixel has reflectance "
            f"{medians.max():.2f}{raw}, far above 1; the values are too large (a wrong scale?): "
            + ("they fit Landsat Collection 2 surface reflectance, whose values become reflectance x "
               f"{LANDSAT_C2_SCALE:.7f} - {-LANDSAT_C2_OFFSET:g}: if that is what it is, set the file's scale/offset "
               f"(gdal_edit.py -scale {LANDSAT_C2_SCALE:.7f} -offset {LANDSAT_C2_OFFSET:g} FILE.tif); otherwise give "
               if landsat else "give ")
            + "surface reflectance as integers x 10000 or floats 0-1, or set the file's scale/offset metadata"
        )
    raise InvalidDataError(
        f"{what} does not look like surface reflectance: even its brightest pixels have reflectance "
        f"{p99.max():.4f} (99th percentile of the brightest band){raw}; these look like 8-bit display values "
        "(0-255), percent or another unit, not reflectance: give surface reflectance as integers x 10000 or "
        "floats 0-1, or set the file's scale/offset metadata"
    )


def _reflectance_at(stored: np.ndarray, scale: float, offset: float) -> bool:
    """Whether stored values (bands, n) pass :func:`check_reflectance` at ``scale`` and ``offset``."""
    try:
        check_reflectance(stored * scale + offset, "")
    except InvalidDataError:
        return False
    return True


def reflectance_scaling(
    dtype: str, sample: np.ndarray, what: str, scales: Sequence[float] | None = None,
    offsets: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Detect the scale and offset of a sample of stored values (bands R, G, B, NIR x pixels, valid
    pixels only) with :func:`detect_scale`, and check the result with :func:`check_reflectance`.

    Returns per-band (scale, offset). Shared by GeoTIFFs and Earth Engine image exports.

    Raises:
        InvalidDataError: the values are not reflectance at any scale we know.
    """
    if sample.shape[1] > 65536:  # percentiles of 65,536 pixels are as good, and cheaper
        sample = sample[:, :: math.ceil(sample.shape[1] / 65536)]
    scale, offset = detect_scale(dtype, sample, scales, offsets)
    check_reflectance(sample * scale[:, None] + offset[:, None], what, sample)
    return scale, offset


def valid_pixels(raw: np.ndarray, nodata: float | None, what: str, pixels: str = "pixels",
                 ceiling: np.ndarray | None = None) -> np.ndarray:
    """Validity mask (h, w) of stored values (bands, h, w): not no data in any band, not zero in
    every band (a gap in every product we know: Landsat fill, Ag-Net missing tiles, Earth Engine's
    masked pixels), not above ``ceiling`` in any band (per band: :func:`stored_ceiling`, values that
    cannot be reflectance), and NaN only where the nodata value is NaN.

    Raises:
        InvalidDataError: NaN or infinite values without a NaN nodata value.
    """
    valid = np.ones(raw.shape[1:], dtype=bool)
    if raw.dtype.kind == "f":
        finite = np.isfinite(raw)
        if nodata is not None and np.isnan(nodata):
            valid &= finite.all(axis=0)
        elif not finite.all():
            bad = ~finite if nodata is None else ~finite & (raw != nodata)  # an infinite nodata (-inf) is no data
            if bad.any():
                raise InvalidDataError(
                    f"{what} holds NaN or infinite reflectance in {int(bad.any(axis=0).sum())} {pixels} "
                    "but declares no NaN nodata value; mark them as no data (nodata=nan) or fill them"
                )
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(raw == nodata).any(axis=0)
    valid &= ~(raw == 0).all(axis=0)
    if ceiling is not None:
        if raw.dtype.kind in "iu":  # compared in the stored type (no float copy of the window): raw > floor(c)
            top = np.iinfo(raw.dtype).max
            c = np.floor(np.asarray(ceiling, np.float64))
            if (c < top).any():
                valid &= ~(raw > np.clip(c, np.iinfo(raw.dtype).min, top).astype(raw.dtype)[:, None, None]).any(axis=0)
        else:
            valid &= ~(raw > np.asarray(ceiling).astype(raw.dtype)[:, None, None]).any(axis=0)
    return valid


def to_features(raw: np.ndarray, valid: np.ndarray, scale: np.ndarray, offset: np.ndarray, what: str) -> np.ndarray:
    """Features (h, w, 5) float32 = R, G, B, NIR reflectance (``raw * scale + offset``, negatives
    clipped to 0) and NDVI, from stored values (4, h, w); invalid pixels get features 0.

    Raises:
        InvalidDataError: a valid pixel below :data:`MIN_POSSIBLE_REFLECTANCE` (the share of pixels
            below :data:`MIN_REFLECTANCE` is judged once, on the image's sample: :func:`check_reflectance`).
    """
    if (scale == scale[0]).all():
        refl = np.multiply(raw, np.float32(scale[0]), dtype=np.float32)
    else:
        refl = np.multiply(raw, scale.astype(np.float32)[:, None, None], dtype=np.float32)
    if (offset != 0).any():
        refl += offset.astype(np.float32)[:, None, None]
    all_valid = bool(valid.all())
    # Cheap test on the whole window first; only a window with such values pays for the masked one.
    # fmin ignores NaN (a NaN no-data pixel would make min() NaN and skip the test) and never warns.
    if refl.size and np.fmin.reduce(refl, axis=None) < MIN_POSSIBLE_REFLECTANCE and valid.any():
        low = float((refl if all_valid else refl[:, valid]).min())
        if low < MIN_POSSIBLE_REFLECTANCE:
            below = (refl < MIN_POSSIBLE_REFLECTANCE).any(axis=0) & valid
            raise _negative_reflectance(what, low, stored=raw[:, below])
    np.maximum(refl, 0.0, out=refl)
    feats = np.empty(refl.shape[1:] + (5,), dtype=np.float32)
    for i in range(4):
        feats[..., i] = refl[i]
    with np.errstate(over="ignore", invalid="ignore"):  # invalid pixels' values (e.g. float32's largest), zeroed below
        feats[..., 4] = ndvi(refl[0], refl[3])
    if not all_valid:
        feats[~valid] = 0.0
    return feats


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """(NIR - R) / (NIR + R), 0 where the sum is 0; float32."""
    red = red.astype(np.float32, copy=False)
    nir = nir.astype(np.float32, copy=False)
    den = nir + red
    out = np.zeros_like(den)
    np.divide(nir - red, den, out=out, where=np.abs(den) > 1e-6)
    return np.clip(out, -1.0, 1.0)


class ImageReader:
    """A reflectance image open for windowed reading. Use as a context manager.

    ``scale`` and ``offset`` turn stored values of R into reflectance (``scales``/``offsets``: per
    band R, G, B, NIR).

    Raises (on open):
        InputNotFoundError, CorruptFileError, BandError;
        InvalidDataError: a sample of the pixels does not look like reflectance (see :func:`check_reflectance`)
            or holds NaN without a NaN nodata value.
    """

    def __init__(self, path: str | os.PathLike, band_map: dict[str, int] | None = None):
        self.path = Path(path)
        self._src = _open(self.path)
        try:
            src = self._src
            self.grid = grid_of(src)
            self.band_index = resolve_bands(src.descriptions, src.count, band_map)
            self._indexes = [self.band_index[b] for b in INPUT_BANDS]
            check_real_numbers(src, self.path, "reflectance")
            self.nodata = src.nodata
            sample = self._sample(src)
            # valid_pixels, as reading has it: NaN without a NaN nodata value is refused now if the
            # sample shows it, so that a prediction does not stop part of the way through
            sample = sample[:, valid_pixels(sample, self.nodata, self.path.name, pixels="sampled pixels")]
            if sample.shape[1] < MIN_CHECKED_PIXELS:  # the windows fell in no-data margins: look at all of it
                spread = self._decimated(src)
                spread = spread[:, sample_valid(spread, self.nodata)]
                if spread.shape[1] > sample.shape[1]:
                    sample = spread
            self.scales, self.offsets = reflectance_scaling(
                src.dtypes[0], sample, self.path.name,
                [src.scales[i - 1] for i in self._indexes], [src.offsets[i - 1] for i in self._indexes])
            self.scale, self.offset = float(self.scales[0]), float(self.offsets[0])
            self._ceiling = stored_ceiling(self.scales, self.offsets)
            #: suspect but possible values (see :func:`sample_warnings`), for the user to check
            self.warnings = sample_warnings(sample, self.scales, self.offsets, self.path.name)
            self.warnings += band_map_warnings(src.descriptions, src.count, self.band_index, self.path.name)
            self.warnings += georeferencing_warnings(src, self.path.name)
        except Exception:
            self._src.close()
            raise

    def _sample(self, src, n: int = 4, size: int = 128) -> np.ndarray:
        """Stored values of up to n x n small windows spread over the image (cheap at any size)."""
        from rasterio.windows import Window

        h, w = min(size, src.height), min(size, src.width)
        # as many windows a side as fit without overlap: a pixel is counted once (an image of 300 px
        # had 4 overlapping windows a side, and "NaN in 12996 sampled pixels" for 2500 of them)
        rows = np.linspace(0, src.height - h, max(1, min(n, src.height // h))).astype(int)
        cols = np.linspace(0, src.width - w, max(1, min(n, src.width // w))).astype(int)
        parts = [read_pixels(src, self.path, self._indexes, window=Window(int(c), int(r), w, h))
                 for r in sorted(set(rows)) for c in sorted(set(cols))]
        return np.concatenate([p.reshape(4, -1) for p in parts], axis=1).astype(np.float64)

    def _decimated(self, src, side: int = 512) -> np.ndarray:
        """Stored values of pixels spread evenly over the whole image (nearest, at most ``side`` x
        ``side``): for images whose data the sampled windows miss (wide no-data margins)."""
        from rasterio.enums import Resampling

        shape = (len(self._indexes), min(side, src.height), min(side, src.width))
        raw = read_pixels(src, self.path, self._indexes, out_shape=shape, resampling=Resampling.nearest)
        return raw.reshape(len(self._indexes), -1).astype(np.float64)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    def close(self) -> None:
        self._src.close()

    def __enter__(self) -> "ImageReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_raw(self, window=None) -> np.ndarray:
        """Stored values of R, G, B, NIR as (4, h, w); windows beyond the edge are filled with no data."""
        fill = self.nodata if self.nodata is not None else 0
        return read_padded(self._src, self.path, self._indexes, window, fill)

    def read_valid(self, window=None) -> np.ndarray:
        """The validity mask (h, w) of :meth:`read`, without making the features.

        Raises:
            InvalidDataError: on NaN reflectance without a NaN nodata value.
        """
        return valid_pixels(self.read_raw(window), self.nodata, self.path.name, ceiling=self._ceiling)

    def read_valid_spread(self, window, side: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The validity mask of ``window`` (inside the raster) at pixels spread evenly over it, at
        most ``side`` x ``side`` of them (all of them in a smaller window), and the window's rows and
        columns they are at: a cheap look at how much of a large window has data.

        Raises:
            InvalidDataError: on NaN reflectance without a NaN nodata value.
            CorruptFileError: see :func:`read_pixels`.
        """
        from rasterio.enums import Resampling

        h, w = int(window.height), int(window.width)
        rows = ((np.arange(min(side, h)) + 0.5) * h / min(side, h)).astype(int)
        cols = ((np.arange(min(side, w)) + 0.5) * w / min(side, w)).astype(int)
        raw = read_pixels(self._src, self.path, self._indexes, window=window,
                          out_shape=(len(self._indexes), len(rows), len(cols)), resampling=Resampling.nearest)
        return valid_pixels(raw, self.nodata, self.path.name, ceiling=self._ceiling), rows, cols

    def read(self, window=None) -> tuple[np.ndarray, np.ndarray]:
        """Features (h, w, 5) float32 = R, G, B, NIR reflectance and NDVI, and a validity mask (h, w).

        Invalid pixels (no data in any band, or a value no reflectance reaches:
        :data:`MAX_POSSIBLE_REFLECTANCE`) have features 0.

        Raises:
            InvalidDataError: on NaN reflectance without a NaN nodata value, or negative reflectance.
        """
        raw = self.read_raw(window)
        valid = valid_pixels(raw, self.nodata, self.path.name, ceiling=self._ceiling)
        return to_features(raw, valid, self.scales, self.offsets, self.path.name), valid


def sample_valid(sample: np.ndarray, nodata: float | None) -> np.ndarray:
    """Which pixels (columns) of a sample (bands, n) are valid, as :func:`valid_pixels` has it;
    NaN and infinite values are left out here (:meth:`ImageReader.read` refuses them)."""
    valid = np.isfinite(sample).all(axis=0) & ~(sample == 0).all(axis=0)
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(sample == nodata).any(axis=0)
    return valid


def read_image(path: str | os.PathLike, band_map: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray, Grid]:
    """Whole image as ``(features (H, W, 5), valid (H, W), grid)``. For small images only."""
    with ImageReader(path, band_map) as reader:
        feats, valid = reader.read()
        return feats, valid, reader.grid


def label_band_index(src, class_map: ClassMap, band: str | int | None = None) -> int:
    """1-based band index of the label band: explicit (a band name, or a 1-based number as an int or
    as text, e.g. ``--label-band 2`` for a file whose bands have no names), by the class map's band
    name, or 1.

    Raises:
        BandError: no band of the name given, or a band number the file does not have.
    """
    names = [(d or "").upper() for d in src.descriptions]
    if isinstance(band, str) and band.strip().isdigit() and band.strip().upper() not in names:
        band = int(band)
    if isinstance(band, int):
        if not 1 <= band <= src.count:
            raise BandError(f"label band {band} does not exist: the file has {src.count} band"
                            f"{'s' if src.count != 1 else ''}; give a number from 1 to {src.count} or a band name")
        return band
    wanted = band or class_map.band
    if wanted:
        if wanted.upper() in names:
            return names.index(wanted.upper()) + 1
        if band:
            named = ", ".join(d or "unnamed" for d in src.descriptions)
            raise BandError(f"label band {band!r} not found (the file's {src.count} band(s): {named}); give one of "
                            "their names, or the band's number (1 = the first)")
    return 1


def read_labels(
    path: str | os.PathLike,
    class_map: ClassMap,
    grid: Grid | None = None,
    window=None,
    band: str | int | None = None,
) -> np.ndarray:
    """Crop mask (uint8: 1 crop, 0 not crop, 255 no data) of a label raster.

    Raises:
        InputNotFoundError, CorruptFileError, GridMismatchError (if ``grid`` is given and differs),
        InvalidDataError (values that cannot be the class map's codes).
    """
    return _mask_of(_read_label_band(path, class_map, grid, window, band), class_map)


def read_label_classes(path: str | os.PathLike, class_map: ClassMap, grid: Grid | None = None, window=None,
                       band: str | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The crop mask (as :func:`read_labels`) and the raw class codes (int16, -1 wherever the mask
    is no data) of a label raster, from one read.

    Raises:
        InputNotFoundError, CorruptFileError, GridMismatchError, InvalidDataError: as :func:`read_labels`.
    """
    raw = _read_label_band(path, class_map, grid, window, band)
    mask = _mask_of(raw, class_map)  # checks that the values are class codes before they become int16
    codes = np.full(mask.shape, -1, np.int16)
    known = mask != NODATA
    codes[known] = raw.filled(0)[known]
    return mask, codes


def _mask_of(raw: np.ma.MaskedArray, class_map: ClassMap) -> np.ndarray:
    """Crop mask of a masked label band (masked = no data).

    Raises:
        InvalidDataError: values that cannot be the class map's codes.
    """
    mask = class_map.to_mask(raw.filled(0 if raw.dtype.kind in "iu" else np.nan))
    if np.ma.is_masked(raw):
        mask[np.ma.getmaskarray(raw)] = NODATA
    return mask


def check_real_numbers(src, path: str | os.PathLike, what: str) -> None:
    """Refuse a raster whose pixels are not real numbers (complex values, as radar data stores them).

    Raises:
        InvalidDataError: a complex data type.
    """
    dtype = np.dtype(src.dtypes[0])
    if dtype.kind not in "biuf":
        raise InvalidDataError(f"{Path(path).name} stores {dtype.name} values, not {what}; give an image of "
                               "real numbers (integers or floats)")


def _read_label_band(path, class_map: ClassMap, grid: Grid | None, window, band: str | int | None) -> np.ma.MaskedArray:
    """The label band as a masked array (masked = the file's no data).

    Raises:
        InputNotFoundError, CorruptFileError, GridMismatchError.
        InvalidDataError: the codes are evidently another product's (core.labels.check_label_codes).
    """
    from core.labels import check_label_codes

    with _open(path) as src:
        check_same_grid(grid, grid_of(src), path)
        idx = label_band_index(src, class_map, band)
        check_real_numbers(src, path, "class codes")
        raw = read_padded(src, path, idx, window, 0, masked=True)
        band_name = src.descriptions[idx - 1] if 0 < idx <= len(src.descriptions) else None
    check_label_codes(raw, class_map, band_name, Path(path).name)
    return raw


def window_within(part: Grid, whole: Grid, tol: float = 1e-6):
    """The rasterio Window of ``whole`` that ``part`` covers, pixel for pixel (same CRS and pixel
    size, a whole-pixel offset, inside ``whole``: e.g. ``predict --window`` output on its image's
    labels); None when ``part`` is not such a window."""
    from rasterio.windows import Window

    if (part.crs is None) != (whole.crs is None) or (part.crs and whole.crs and not _same_crs(part.crs, whole.crs)):
        return None
    from affine import Affine, TransformNotInvertibleError

    a, b, c, d, e, f = part.transform
    A, B, C, D, E, F = whole.transform
    scale = max(abs(A), abs(B), abs(D), abs(E), 1e-12)
    if any(abs(x - y) > tol * scale for x, y in ((a, A), (b, B), (d, D), (e, E))):
        return None
    try:  # where the part's first pixel lies in the whole's pixels (a turned grid as well)
        col, row = ~Affine(A, B, C, D, E, F) * (c, f)
    except TransformNotInvertibleError:  # a degenerate transform: no window of it
        return None
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    col, row = int(round(col)), int(round(row))
    if col < 0 or row < 0 or col + part.width > whole.width or row + part.height > whole.height:
        return None
    return Window(col, row, part.width, part.height)


def crs_words(crs: str | None) -> str:
    """A CRS for people: its code and name ("EPSG:32631, WGS 84 / UTM zone 31N"), the name alone for a
    CRS without a code, "no CRS" for None. Never raises (a CRS GDAL cannot read: its text, cut short)."""
    if crs is None:
        return "no CRS"
    import re

    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        parsed = CRS.from_user_input(crs)
        authority, wkt = parsed.to_authority(), parsed.to_wkt()
    except CRSError:
        return crs if len(crs) <= 40 else crs[:40] + "..."
    m = re.match(r'\s*\w+\["([^"]+)"', wkt)
    name = m.group(1) if m and m.group(1).lower() != "unknown" else None
    code = ":".join(authority) if authority else None
    return ", ".join(t for t in (code, name) if t) or (crs if len(crs) <= 40 else crs[:40] + "...")


def grid_difference(expected: Grid, actual: Grid) -> str:
    """How ``actual`` differs from ``expected``, in words with the figures that differ (no
    georeferencing, another CRS, size, pixel size or place), for an error message."""

    def crs(g: Grid) -> str:
        return g.crs if len(g.crs) <= 40 else g.crs[:40] + "..."

    if actual.crs is None and expected.crs is not None:
        return "it has no georeferencing (no CRS; not a GeoTIFF of the image's place?)"
    if expected.crs is None and actual.crs is not None:
        return "it is georeferenced and the image is not"
    if actual.crs is not None and expected.crs is not None and not _same_crs(actual.crs, expected.crs):
        return f"it is in {crs(actual)}, the image in {crs(expected)}"
    if actual.shape != expected.shape:
        return f"it is {actual.width} x {actual.height} px, the image {expected.width} x {expected.height} px"
    (a, b, _, d, e, _), (A, B, _, D, E, _) = actual.transform, expected.transform
    scale = max(abs(A), abs(B), abs(D), abs(E), 1e-12)
    if any(abs(x - y) > 1e-6 * scale for x, y in ((a, A), (b, B), (d, D), (e, E))):
        return (f"its pixels are {np.hypot(a, d):.6g} x {np.hypot(b, e):.6g}, the image's {np.hypot(A, D):.6g} x "
                f"{np.hypot(B, E):.6g} (CRS units)")
    from affine import Affine

    col, row = ~Affine(*expected.transform) * actual.transform[2::3]
    return (f"it lies elsewhere: its first pixel is at column {col:,.1f}, row {row:,.1f} of the image"
            + _how_far(expected, actual))


def _how_far(expected: Grid, actual: Grid) -> str:
    """`` (about 73 km east and 7 km south of the image's)``: how far a grid's corner lies from another's
    on the same projected CRS, in words (nothing for other grids)."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    if expected.crs is None:
        return ""
    try:
        crs = CRS.from_user_input(expected.crs)
        metres = crs.linear_units_factor[1] if crs.is_projected else None
    except CRSError:  # (a CRS without linear units: nothing to add)
        metres = None
    if not metres:
        return ""
    dx, dy = ((actual.transform[k] - expected.transform[k]) * metres / 1000 for k in (2, 5))
    parts = [f"{abs(d):,.{0 if abs(d) >= 10 else 1}f} km {name}" for d, name in
             ((dx, "east" if dx > 0 else "west"), (dy, "north" if dy > 0 else "south")) if abs(d) >= 0.05]
    return f" (about {' and '.join(parts)} of the image's)" if parts else ""


def check_same_grid(expected: Grid | None, actual: Grid, path) -> None:
    """Raises GridMismatchError if ``actual`` is not ``expected`` (skipped when expected is None)."""
    if expected is not None and not expected.same_as(actual):
        raise GridMismatchError(
            f"{Path(path).name} is not on the image's grid: {grid_difference(expected, actual)}; resample the labels "
            "onto the image's grid first (e.g. gdalwarp with the image's -t_srs, -te and -tr)"
        )


def write_mask(path: str | os.PathLike, mask: np.ndarray, grid: Grid) -> Path:
    """Write a crop mask (uint8 1/0, 255 = no data) on ``grid`` as a one-band GeoTIFF, atomically
    (temporary name, then rename; an existing file is replaced)."""
    return _write_band(path, mask.astype(np.uint8), grid, NODATA, "crop")


def write_codes(path: str | os.PathLike, codes: np.ndarray, grid: Grid) -> Path:
    """Write class codes (int16, -1 = no data; :func:`read_label_classes`) on ``grid``, atomically."""
    return _write_band(path, codes.astype(np.int16), grid, -1, "class")


def _write_band(path: str | os.PathLike, band: np.ndarray, grid: Grid, nodata, description: str) -> Path:
    import rasterio

    from core.files import replacing

    path = Path(path)
    h, w = band.shape
    if (h, w) != grid.shape:
        raise ValueError(f"band is {w}x{h} px, grid is {grid.width}x{grid.height}")
    profile = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": band.dtype.name, "nodata": nodata,
               "transform": rasterio.Affine(*grid.transform), "compress": "deflate", "tiled": w >= 256 and h >= 256}
    if grid.crs:
        profile["crs"] = grid.crs
    with replacing(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(band, 1)
        dst.set_band_description(1, description)
    return path
