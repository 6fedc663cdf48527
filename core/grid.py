"""Where a raster's pixels are: its :class:`Grid` (CRS, affine transform, size), the ground area of
its pixels (hectares from the CRS, on the WGS 84 ellipsoid where the projection distorts areas),
and how two grids relate (the same grid, a window of another, or how far apart they are).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import GridMismatchError, InvalidDataError


#: A projected CRS's pixel area is taken as it is (as GIS give it) where it is within this share of
#: the area on the ground over the whole grid (in a UTM zone: from 0.08% under at its central meridian
#: to about 0.2% over at its edges near the equator); beyond, areas are corrected row by row.
AREA_SCALE_TOLERANCE = 0.01
#: Equal-area on the WGS 84 ellipsoid (EASE-Grid 2.0 global): the ground areas of projected pixels.
EQUAL_AREA_CRS = "EPSG:6933"
#: The width of :data:`EQUAL_AREA_CRS`'s map in metres, from 180° W to 180° E (its x at 180° E, twice).
EQUAL_AREA_WIDTH = 2 * 17_367_530.445161372

#: The farthest a coordinate may lie from its CRS's origin (10 million km in metres): no place on Earth
#: needs more, and GDAL brings a longitude past the 180th meridian back round the globe a turn at a time,
#: so reprojecting a corner 1e20 m east of Web Mercator's origin held the page (or a command) for minutes,
#: beyond the reach of Ctrl-C (a Web Mercator easting of 1e15 m took 0.03 s, 1e17 m 1.5 s). The same
#: limit holds for degrees, where it is as quick: coordinates in metres under a CRS in degrees are left
#: to the checks that name the CRS they fit.
MAX_COORDINATE = 1e10

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
    def placed(self) -> bool:
        """Whether the file says where its pixels lie: a CRS, or at least a geotransform of its own
        (a TIFF without one reads as GDAL's identity, which every such file shares)."""
        return self.crs is not None or tuple(self.transform) != (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

    def require_place_on_earth(self, error: type[Exception] = InvalidDataError) -> None:
        """Refuse a CRS with no place on Earth: a local (engineering) CRS, which gives areas in its
        unit but no longitude or latitude, so no map, lon/lat region or GeoJSON (GDAL's own error was
        a page of the CRS's definition). A grid without a CRS is left to its caller.

        Raises:
            ``error`` (InvalidDataError by default): saying to give the image its real CRS.
        """
        if self.crs is None:
            return
        from rasterio.crs import CRS

        crs = CRS.from_user_input(self.crs)
        if not (crs.is_geographic or crs.is_projected):
            name = crs.to_wkt().split('"')[1] if '"' in crs.to_wkt() else crs.to_string()[:40]
            raise error(f"the image's CRS ({name!r}) is a local one, with no place on Earth, so it cannot be shown "
                        "on a map nor placed in longitude/latitude; give the image its real CRS (e.g. gdal_edit.py "
                        "-a_srs EPSG:32618 for UTM zone 18N); python -m core predict takes it as it is")

    def require_degrees(self) -> None:
        """Refuse a lon/lat grid whose coordinates cannot be degrees: a corner beyond a pole (by more
        than a pixel: a global grid's pixels may be centred on it) or beyond 360 degrees of longitude,
        as metres of a UTM zone tagged EPSG:4326 give. Other grids are left alone.

        Raises:
            InvalidDataError: saying that the CRS tag is wrong, and how to set it.
        """
        if self.crs is None:
            return
        from rasterio.crs import CRS

        crs = CRS.from_user_input(self.crs)
        if not crs.is_geographic:
            return
        deg = degrees_per_unit(crs)
        a, b, c, d, e, f = self.transform
        corners = [(c + a * col + b * row, f + d * col + e * row)
                   for col, row in ((0, 0), (self.width, 0), (0, self.height), (self.width, self.height))]
        _latitudes(np.array([y * deg for _, y in corners]), max(abs(d), abs(e)) * deg, crs)
        far = max((abs(x * deg) for x, _ in corners), default=0.0)
        if far > 360 + max(abs(a), abs(b)) * deg + 1e-9:
            raise InvalidDataError(_not_degrees(crs, f"its columns reach longitude {_degrees_text(far)}, past 360 degrees"))

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

    def pixel_width_m(self) -> float | None:
        """Ground length in metres of one column step (a pixel's top side) at the grid's centre: a
        scale bar's along the image's rows, which differs from :meth:`pixel_size_m` where pixels are
        not square on the ground (lon/lat pixels away from the equator: 0.7 times at 45 degrees);
        None when the grid is not georeferenced. For a CRS with no place on Earth (a local one), the
        square root of a pixel's area."""
        if self.crs is None:
            return None
        from affine import Affine
        from rasterio._err import CPLE_BaseError  # (GDAL's errors; rasterio.errors does not name them)
        from rasterio.errors import CRSError
        from rasterio.warp import transform as warp

        t = Affine(*self.transform)
        (x0, y0), (x1, y1) = (t @ (self.width / 2 + dc, self.height / 2) for dc in (0.0, 1.0))
        try:
            lon, lat = (np.radians(np.asarray(v, np.float64)) for v in warp(self.crs, "EPSG:4326", [x0, x1], [y0, y1]))
        except (CPLE_BaseError, CRSError, ValueError):  # a CRS with no place on Earth (a local one)
            lon = lat = np.array([np.nan])
        if not np.isfinite(lon).all() or not np.isfinite(lat).all():
            return self.pixel_size_m()
        mid = float(lat.mean())
        e2 = WGS84_F * (2 - WGS84_F)
        w = 1 - e2 * math.sin(mid) ** 2  # the radii of curvature along the parallel and the meridian
        across, along = WGS84_A / math.sqrt(w) * math.cos(mid), WGS84_A * (1 - e2) / w ** 1.5
        dlon = (float(lon[1] - lon[0]) + math.pi) % (2 * math.pi) - math.pi
        return math.hypot(across * dlon, along * float(lat[1] - lat[0]))

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
            deg = degrees_per_unit(crs)  # (grads: EPSG:4807's 0.9 degree)
            lat, dlon = _latitudes((f + rows * e) * deg, abs(e) * deg, crs), abs(a) * deg
        elif mercator:
            from rasterio.warp import transform as warp

            ys = list(f + rows * e)
            lon, lat = warp(crs, "EPSG:4326", [c] * len(ys) + [c + a], ys + [ys[0]])
            lat, dlon = np.asarray(lat[:-1]), _lon_span(lon[0], lon[-1])
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
            x, y = t @ (c + dc, r + dr)
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
            deg = degrees_per_unit(crs)
            lat_lo, lat_hi = _latitudes((y - side / 2) * deg, side * deg, crs), _latitudes((y + side / 2) * deg, side * deg, crs)
            dlon = side * deg
        else:  # Mercator: meridians and parallels are the grid's axes before its rotation
            n = len(rows)
            lon, lat = warp(crs, "EPSG:4326", list(x - side / 2) + list(x + side / 2) + [c - side / 2, c + side / 2],
                            list(y - side / 2) + list(y + side / 2) + [f, f])
            lat_lo, lat_hi, dlon = np.asarray(lat[:n]), np.asarray(lat[n : 2 * n]), _lon_span(lon[-2], lon[-1])
        band = np.abs(ellipsoid_sine(lat_hi) - ellipsoid_sine(lat_lo)) * WGS84_A**2 * math.radians(dlon)
        return (band / 1e4)[:, None]


def _lon_span(west: float, east: float) -> float:
    """Degrees of longitude between two meridians the short way round: a pixel whose east side lies past
    the 180th meridian wraps to -180 there (a span of ~360 degrees, its area ~10^6 times too large)."""
    return abs((east - west + 180.0) % 360.0 - 180.0)


def degrees_per_unit(crs) -> float:
    """Degrees per angular unit of a geographic CRS: 1 for degrees, 0.9 for grads (EPSG:4807, NTF Paris)."""
    from rasterio.errors import CRSError

    try:
        unit = crs.units_factor
    except CRSError:
        return 1.0
    return math.degrees(unit[1]) if unit and unit[1] else 1.0


def _latitudes(lat: np.ndarray, pixel: float, crs) -> np.ndarray:
    """Latitudes (degrees) of a lon/lat grid's rows, clipped to the poles: a global grid may reach
    past a pole by up to a pixel (pixels centred on it), and that part has no area.

    Raises:
        InvalidDataError: rows further beyond a pole, which no image on Earth has: the CRS tag is wrong
            (e.g. metres of a UTM zone tagged as EPSG:4326).
    """
    far = float(np.max(np.abs(lat))) if lat.size else 0.0
    if far > 90 + pixel + 1e-9:
        raise InvalidDataError(_not_degrees(crs, f"its rows reach latitude {_degrees_text(far)}, beyond the pole"))
    return np.clip(lat, -90.0, 90.0)


def _degrees_text(value: float) -> str:
    """A coordinate read as degrees, for a message: 95.5, or 4,500,000 (not 4.5e+06: metres read as degrees)."""
    return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:.6g}"


def _not_degrees(crs, found: str) -> str:
    """The message of a lon/lat CRS whose grid's coordinates are not degrees (``found``: what shows it)."""
    return (f"the image's CRS ({crs.to_string()[:40]}) is in degrees of longitude/latitude, but {found}, so its "
            "coordinates are not degrees: the CRS tag is wrong; set the image's real CRS (gdal_edit.py -a_srs "
            "EPSG:...) or reproject it (gdalwarp -t_srs)")


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


def metres_text(value: float) -> str:
    """A length in metres for a message: 3 significant digits below 100 m (29.98 -> "30"), whole metres
    with thousands separators above ("1,000", where ``:.3g`` wrote "1e+03")."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _same_crs(a: str, b: str) -> bool:
    from rasterio.crs import CRS

    return CRS.from_user_input(a) == CRS.from_user_input(b)


def grid_of(src) -> Grid:
    """The :class:`Grid` of an open rasterio dataset. A CRS without a geotransform (rasterio then
    gives the identity: 1 unit pixels at the CRS's origin) places nothing: not georeferenced.

    Raises:
        InvalidDataError: a georeferenced file with a corner beyond the globe (:func:`off_earth_corner`), or a
            geotransform whose pixels have no size (or not a finite one).
    """
    crs = crs_text(src.crs) if src.crs and not _no_geotransform(src) else None
    grid = Grid(crs, tuple(src.transform)[:6], src.width, src.height)
    a, b, _, d, e, _ = grid.transform
    if not (math.isfinite(a * e - b * d) and a * e - b * d != 0):  # (areas, windows and warps divide by it)
        raise InvalidDataError(f"{Path(src.name).name}'s geotransform gives its pixels no size (x: {a:g}, {b:g}; y: "
                               f"{d:g}, {e:g}): its georeferencing is damaged; check it (gdalinfo) and set it right "
                               "(e.g. gdal_edit.py -a_ullr ULX ULY LRX LRY), or remove it (the image is then used in "
                               "pixels)")
    if (far := off_earth_corner(grid)) is not None:
        raise InvalidDataError(f"{Path(src.name).name}'s geotransform puts a corner at ({far[0]:g}, {far[1]:g}) in "
                               f"{crs}, beyond the globe: its georeferencing is damaged; check it (gdalinfo) and set it "
                               "right (e.g. gdal_edit.py -a_ullr ULX ULY LRX LRY), or remove it (the image is then used "
                               "in pixels)")
    return grid


def crs_text(crs) -> str:
    """A rasterio CRS as a :class:`Grid` holds it: its code (``EPSG:n``, ``ESRI:n``) where that code is
    the same CRS, datum included, else its WKT. (``CRS.to_string`` gives the code PROJ matches at 70% confidence: for a
    CRS that names an ellipsoid but no datum, e.g. ``+proj=utm +zone=33 +ellps=intl``, a code with a
    datum, EPSG:23033's ED50, which placed the image and its outputs 100 m away.)"""
    return _crs_code(crs) or crs.to_wkt()


def _crs_code(crs) -> str | None:
    """A rasterio CRS's code (``EPSG:n``, or another authority's: ``ESRI:102003``) where the code is the
    same CRS, datum included (see :func:`crs_text`); None where there is none."""
    from rasterio.crs import CRS

    found = crs.to_authority()
    if found is None:
        return None
    code = ":".join(found)
    named = CRS.from_user_input(code)
    return code if named == crs or _datum(named) == _datum(crs) else None  # (axis order, names: WGS 84 lon/lat)


def _datum(crs) -> str | None:
    found = re.search(r'DATUM\["([^"]*)"', crs.to_wkt())
    return found.group(1) if found else None


def off_earth_corner(grid: Grid) -> tuple[float, float] | None:
    """A corner of a georeferenced ``grid`` that is not finite or lies farther from its CRS's origin
    than :data:`MAX_COORDINATE`: a damaged geotransform, which reprojection would take minutes over;
    None where there is none (or no CRS)."""
    from affine import Affine

    if grid.crs is None:
        return None
    t = Affine(*grid.transform)
    corners = np.array([t @ (c, r) for c in (0, grid.width) for r in (0, grid.height)], float)
    reach = np.where(np.isfinite(corners), np.abs(corners), np.inf).max(axis=1)
    if reach.max() <= MAX_COORDINATE:
        return None
    far = corners[int(np.argmax(reach))]
    return float(far[0]), float(far[1])


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


def pixel_offset(part: Grid, whole: Grid, tol: float = 1e-6) -> tuple[int, int] | None:
    """(col, row) of ``part``'s first pixel in ``whole``'s pixels, where ``part`` lies on ``whole``'s
    pixel grid (same CRS and pixel size, a whole-pixel offset; it may reach beyond ``whole``); None
    where it does not."""
    if (part.crs is None) != (whole.crs is None) or (part.crs and whole.crs and not _same_crs(part.crs, whole.crs)):
        return None
    from affine import Affine, TransformNotInvertibleError

    a, b, c, d, e, f = part.transform
    A, B, C, D, E, F = whole.transform
    scale = max(abs(A), abs(B), abs(D), abs(E), 1e-12)
    if any(abs(x - y) > tol * scale for x, y in ((a, A), (b, B), (d, D), (e, E))):
        return None
    try:  # where the part's first pixel lies in the whole's pixels (a turned grid as well)
        col, row = ~Affine(A, B, C, D, E, F) @ (c, f)
    except TransformNotInvertibleError:  # a degenerate transform: no window of it
        return None
    if abs(col - round(col)) > PIXEL_SHIFT_TOLERANCE or abs(row - round(row)) > PIXEL_SHIFT_TOLERANCE:
        return None
    return int(round(col)), int(round(row))


#: How far (in pixels) a grid's origin may lie from a pixel corner of another and still be on its grid: an
#: origin written rounded (1 cm on 10 m pixels is 0.001 px) is the same grid; a millionth refused such files
PIXEL_SHIFT_TOLERANCE = 0.002


def window_grid(grid: Grid, window) -> Grid:
    """The grid of a pixel ``window`` (``row_off``, ``col_off``, ``height``, ``width``: a rasterio
    Window or a region's PixelWindow) of ``grid``: its CRS, the transform moved to the window's corner."""
    from affine import Affine

    t = Affine(*grid.transform) @ Affine.translation(window.col_off, window.row_off)
    return Grid(grid.crs, tuple(t)[:6], int(window.width), int(window.height))


def window_within(part: Grid, whole: Grid, tol: float = 1e-6):
    """The rasterio Window of ``whole`` that ``part`` covers, pixel for pixel (same CRS and pixel
    size, a whole-pixel offset, inside ``whole``: e.g. ``predict --window`` output on its image's
    labels); None when ``part`` is not such a window."""
    from rasterio.windows import Window

    offset = pixel_offset(part, whole, tol)
    if offset is None:
        return None
    col, row = offset
    if col < 0 or row < 0 or col + part.width > whole.width or row + part.height > whole.height:
        return None
    return Window(col, row, part.width, part.height)


def place_words(grid: "Grid") -> str:
    """Where a grid's image lies, for people: "georeferenced (EPSG:32631, WGS 84 / UTM zone 31N)", or
    "not georeferenced (image coordinates)" for one without a place on Earth."""
    return f"georeferenced ({crs_words(grid.crs)})" if grid.georeferenced else "not georeferenced (image coordinates)"


def parse_crs(text: str):
    """``text`` (a code such as "EPSG:32631", a PROJ string or WKT) as a rasterio CRS, or None where GDAL
    does not know it ("EPSG:999999") or cannot read it ("EPSG:abc", which rasterio raises as a plain
    ValueError). Never raises, and PROJ's complaint goes to logging, not to the user's terminal."""
    import rasterio
    from rasterio.crs import CRS

    try:
        with rasterio.Env():
            return CRS.from_user_input(text)
    except (ValueError, TypeError):  # (rasterio's CRSError among them; TypeError: text like JSON, "[1, 2]")
        return None


def crs_words(crs: str | None) -> str:
    """A CRS for people: its code and name ("EPSG:32631, WGS 84 / UTM zone 31N"), the name alone for a
    CRS without a code, "no CRS" for None. Never raises (a CRS GDAL cannot read: its text, cut short)."""
    if crs is None:
        return "no CRS"
    parsed = parse_crs(crs)
    if parsed is None:
        return crs if len(crs) <= 40 else crs[:40] + "..."
    code = _crs_code(parsed)  # (a code only where it is this CRS: not ED50's for an ellipsoid without a datum)
    m = re.match(r'\s*\w+\["([^"]+)"', parsed.to_wkt())
    name = m.group(1) if m and m.group(1).lower() != "unknown" else None
    if code or name:
        return ", ".join(t for t in (code, name) if t)
    try:  # (PROJ's words say it best: "+proj=utm +zone=33 +ellps=intl ...")
        words = " ".join(w for w in parsed.to_proj4().split() if not w.startswith(("+no_defs", "+type=")))
    except ValueError:
        words = crs
    return words if len(words) <= 60 else words[:60] + "..."


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
    if actual.placed != expected.placed:  # (no CRS either: one has a geotransform, the other GDAL's identity)
        return (f"{'the image has' if actual.placed else 'it has'} no geotransform (where its pixels lie) and "
                f"{'it has' if actual.placed else 'the image has'} one, so they cannot be matched; give labels with "
                "the image's geotransform (e.g. gdal_edit.py -a_ullr with the image's corners)")
    (a, b, _, d, e, _), (A, B, _, D, E, _) = actual.transform, expected.transform
    scale = max(abs(A), abs(B), abs(D), abs(E), 1e-12)
    if any(abs(x - y) > 1e-6 * scale for x, y in ((a, A), (b, B), (d, D), (e, E))):
        if np.allclose(np.abs([a, b, d, e]), np.abs([A, B, D, E]), rtol=1e-6, atol=1e-6 * scale):
            ways = [w for w, x, y in (("rows", e or d, E or D), ("columns", a or b, A or B)) if x * y < 0]
            return (f"its {' and '.join(ways) or 'pixels'} run the other way than the image's (one of them is stored "
                    f"{'south-up' if 'rows' in ways else 'mirrored'}: gdalwarp IN.tif OUT.tif writes it north-up)")
        sizes = (np.hypot(a, d), np.hypot(b, e)), (np.hypot(A, D), np.hypot(B, E))
        if np.allclose(sizes[0], sizes[1], rtol=1e-6):  # (the same sizes, turned: "10 x 10, the image's 10 x 10")
            turn = float(np.degrees(np.arctan2(d, a) - np.arctan2(D, A)))
            turn = abs((turn + 180) % 360 - 180)
            return (f"its pixels are turned {turn:.3g} degrees against the image's: rio warp IN.tif OUT.tif --like IMAGE.tif --resampling nearest puts it on the image's grid")
        return (f"its pixels are {sizes[0][0]:.6g} x {sizes[0][1]:.6g}, the image's {sizes[1][0]:.6g} x "
                f"{sizes[1][1]:.6g} (CRS units)")
    from affine import Affine

    offset = pixel_offset(actual, expected)
    if offset is None:  # between the image's pixels
        col, row = ~Affine(*expected.transform) @ actual.transform[2::3]
        return (f"its pixels lie between the image's: its first pixel is at column {col:,.4g}, row {row:,.4g} of "
                "the image" + _how_far(expected, actual))
    col, row = offset
    if actual.shape == expected.shape and abs(col) < actual.width and abs(row) < actual.height:
        return (f"it is of the image's size but moved by {col:,} column(s) and {row:,} row(s) of its pixels (an "
                "export off by some pixels?); export it again on the image's grid, or correct its georeferencing")
    overlaps = col < expected.width and row < expected.height and col + actual.width > 0 and row + actual.height > 0
    if actual.shape != expected.shape and overlaps:
        sizes = f"{actual.width} x {actual.height} px, the image's {expected.width} x {expected.height} px"
        if not (actual.placed and expected.placed):  # (else read as the image's part: core.raster._window_in_labels)
            return (f"it is {sizes}, and neither file says where its pixels lie (no geotransform), so they cannot be "
                    "matched; give labels of the image's size, or both files with their geotransform")
        covers = col <= 0 and row <= 0 and col + actual.width >= expected.width and row + actual.height >= expected.height
        return (f"it {'is larger than' if covers else 'covers only part of'} the image ({sizes}, from column {col:,}, "
                f"row {row:,} of the image; its pixels are the image's)")
    return (f"it lies elsewhere: its first pixel is at column {col:,}, row {row:,} of the image"
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
        said = grid_difference(expected, actual)
        if "; give " in said:  # (it says what to do itself)
            fix = ""
        elif said.startswith("it lies elsewhere"):  # (resampling would not help: they do not overlap)
            fix = "; the two do not overlap: give the labels of the image's own area"
        else:
            fix = ("; resample the labels onto the image's grid first (e.g. gdalwarp with the image's -t_srs, -te and "
                   "-tr; for an image made by python -m core resample, the labels it resampled with it, --labels)")
        raise GridMismatchError(f"{Path(path).name} is not on the image's grid: {said}{fix}")
