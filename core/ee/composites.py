"""Median cloud-masked composites (R, G, B, NIR reflectance 0-1, NDVI) for a region and dates.

Landsat Collection 2 Level 2 (TM, ETM+, OLI, OLI-2) are masked with QA_PIXEL bits 0-4 (fill,
dilated cloud, cirrus, cloud, cloud shadow) and QA_RADSAT, then scaled x 0.0000275 - 0.2.
Sentinel-2 SR harmonized is masked with Cloud Score+ (``cs_cdf`` >= threshold) and scaled
/ 10000. NDVI is (NIR - R) / (NIR + R) on reflectance clipped at 0, 0 where the sum is ~0,
exactly as :func:`core.reflectance.ndvi` computes it locally.

The composite keeps no fixed projection (so map tiles render at every zoom); the scale and CRS
of :class:`CompositeConfig` are applied by every request that materialises pixels (direct
download grids, exports, sampling), which average each scene onto a grid coarser than the sensor's
pixels (``composite_image(..., on_grid=True)``).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from core.errors import ConfigError
from core.bands import FEATURE_BANDS, INPUT_BANDS
from core.reflectance import LANDSAT_C2_OFFSET, LANDSAT_C2_SCALE

#: QA_PIXEL bits that must all be 0: fill(0), dilated cloud(1), cirrus(2), cloud(3), shadow(4).
LANDSAT_QA_MASK = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4)
#: Collection 2 Level 2 surface reflectance = stored x scale + offset (the same for local files)
LANDSAT_SCALE, LANDSAT_OFFSET = LANDSAT_C2_SCALE, LANDSAT_C2_OFFSET
S2_SCALE = 1.0 / 10000.0
CLOUD_SCORE_PLUS = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
NDVI_EPS = 1e-6
#: a southern UTM zone's false northing (EPSG:327xx against 326xx), in metres
SOUTH_ZONE_FALSE_NORTHING = 10_000_000.0
#: a grid this many times coarser than a source's pixels, or more, aggregates them into each of its
#: own (:func:`aggregation`); a finer one takes Earth Engine's default, the source pixel nearest its centre
AGGREGATE_ABOVE = 1.5
#: the most source pixels aggregated into one (Earth Engine holds them in memory); a grid coarser still
#: (over 60 times the source's pixels) starts from a coarser level of the source's pyramid
MOST_AGGREGATED = 4096


@dataclass(frozen=True)
class SensorSpec:
    """One image collection: its id, the bands that are R, G, B, NIR, its default scale."""

    key: str
    title: str
    collection: str
    bands: tuple[str, str, str, str]  # R, G, B, NIR
    scale: float
    cloud_property: str
    first_year: int
    last_year: int | None
    family: str  # "landsat" | "s2"
    first_day: str = ""  # the collection's first and last image (YYYY-MM-DD) where the year alone is not enough
    last_day: str = ""
    #: Where the collection's pixel corners fall in its UTM grid, in metres modulo its pixel size:
    #: Landsat's at 15 m (pixel centres on multiples of 30 m), Sentinel-2's on multiples of 10 m (0).
    #: A grid snapped to this takes each pixel as it is; one off by half a pixel puts every pixel
    #: centre on a corner of four source pixels, and nearest-neighbour picks one of them: a shift.
    grid_origin: float = 0.0
    #: Whether the collection's grid is the northern UTM zone's also south of the equator (Landsat:
    #: USGS processes every scene in EPSG:326xx, northings negative in the south), so that in a
    #: southern zone (EPSG:327xx, northings 10,000 km larger) its corners' northings shift by
    #: 10,000,000 m modulo the pixel size (25 m, not 15 m, for 30 m pixels). Sentinel-2's tiles are
    #: in the southern zones themselves.
    north_zone_grid: bool = False

    @property
    def archive(self) -> tuple[_dt.date, _dt.date | None]:
        """(first, last or None for a running mission) day of the collection's images."""
        first = _dt.date.fromisoformat(self.first_day) if self.first_day else _dt.date(self.first_year, 1, 1)
        if self.last_day:
            return first, _dt.date.fromisoformat(self.last_day)
        return first, (_dt.date(self.last_year, 12, 31) if self.last_year is not None else None)


SENSORS: dict[str, SensorSpec] = {
    s.key: s
    for s in (
        SensorSpec("L5", "Landsat 5 TM", "LANDSAT/LT05/C02/T1_L2", ("SR_B3", "SR_B2", "SR_B1", "SR_B4"), 30.0, "CLOUD_COVER", 1984, 2012, "landsat",
                   "1984-03-16", "2012-05-05", grid_origin=15.0, north_zone_grid=True),
        # Landsat 7's Collection 2 Tier 1 ends with its last science acquisitions on 2024-01-19 (the
        # Earth Engine catalog's LE07/C02/T1_TOA and T1_RT availability); the L2 scenes are made from them
        SensorSpec("L7", "Landsat 7 ETM+", "LANDSAT/LE07/C02/T1_L2", ("SR_B3", "SR_B2", "SR_B1", "SR_B4"), 30.0, "CLOUD_COVER", 1999, 2024, "landsat",
                   "1999-05-28", "2024-01-19", grid_origin=15.0, north_zone_grid=True),
        SensorSpec("L8", "Landsat 8 OLI", "LANDSAT/LC08/C02/T1_L2", ("SR_B4", "SR_B3", "SR_B2", "SR_B5"), 30.0, "CLOUD_COVER", 2013, None, "landsat",
                   "2013-03-18", grid_origin=15.0, north_zone_grid=True),
        SensorSpec("L9", "Landsat 9 OLI-2", "LANDSAT/LC09/C02/T1_L2", ("SR_B4", "SR_B3", "SR_B2", "SR_B5"), 30.0, "CLOUD_COVER", 2021, None, "landsat",
                   "2021-10-31", grid_origin=15.0, north_zone_grid=True),
        SensorSpec("S2", "Sentinel-2 SR (harmonized)", "COPERNICUS/S2_SR_HARMONIZED", ("B4", "B3", "B2", "B8"), 10.0, "CLOUDY_PIXEL_PERCENTAGE", 2017, None, "s2",
                   "2017-03-28"),
    )
}


def _number(value: Any, field: str, what: str) -> float:
    """``value`` as a float (a number, or text that is one).

    Raises:
        ConfigError: anything else (text that is not a number, a bool, None, a list...).
    """
    if isinstance(value, (bool, bytes)):
        raise ConfigError(f"{field} must be {what}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{field} must be {what}, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{field} must be {what}, got {value!r}")
    return number


@lru_cache(maxsize=256)
def _projected_crs(code: str) -> str:
    """``code`` (``EPSG:<n>``, upper case) if it is a known projected CRS in metres.

    Raises:
        ConfigError: unknown code, a geographic CRS (degrees: the scale in metres would be taken as
        degrees), or a projected CRS in other units.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    fix = "use a projected CRS in metres such as the region's UTM zone (e.g. EPSG:32718), or leave crs empty for the region's UTM zone"
    try:
        with rasterio.Env():  # PROJ's complaint about an unknown code goes to logging, not stderr
            crs = CRS.from_user_input(code)
    except CRSError:
        raise ConfigError(f"crs {code} is not a known EPSG code; {fix}") from None
    if crs.is_geographic:
        raise ConfigError(f"crs {code} is geographic (longitude/latitude in degrees), but the scale is in metres; {fix}")
    if not crs.is_projected:
        raise ConfigError(f"crs {code} is not a projected CRS; {fix}")
    units = (crs.linear_units or "").lower()
    if units not in ("metre", "meter", "m", "metres", "meters"):
        raise ConfigError(f"crs {code} is in {crs.linear_units or 'unknown units'}, but the scale is in metres; {fix}")
    return code


def parse_date(text: str, field: str) -> _dt.date:
    """``text`` as a date, written YYYY-MM-DD only: Python 3.11 also reads "20200101" and "2020-W01-1",
    which went to Earth Engine's filterDate as typed (and were compared as text with real dates).

    Raises:
        ConfigError: naming ``field``.
    """
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ConfigError(f"{field} must be a date YYYY-MM-DD, got {text!r}")
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{field} must be a date YYYY-MM-DD, got {text!r}") from None


#: the finest scale a composite is asked at, in metres (Sentinel-2's pixels are 10 m; finer only repeats them)
MIN_SCALE_M = 1.0


@dataclass(frozen=True)
class CompositeConfig:
    """A median composite: sensor, dates [start, end] inclusive, scene cloud cover, grid.

    ``scale`` (metres) defaults to the sensor's native resolution; ``crs`` None (or empty) means
    the UTM zone of the region's centre (see :func:`utm_crs`); a given ``crs`` must be a projected
    CRS in metres (``EPSG:<n>``), since ``scale`` is in metres. Numbers given as text ("20") are
    converted.

    Raises (on construction):
        ConfigError: unknown sensor, bad/inverted dates, dates outside the sensor's life,
        max_cloud not a number in (0, 100] (scenes under it are kept), scale not a positive number, malformed, unknown or
        geographic CRS, bad cloud-score threshold.
    """

    sensor: str = "L8"
    start: str = "2020-01-01"
    end: str = "2020-12-31"
    max_cloud: float = 20.0
    scale: float | None = None
    crs: str | None = None
    cs_threshold: float = 0.6

    def __post_init__(self) -> None:
        if not isinstance(self.sensor, str) or self.sensor not in SENSORS:
            raise ConfigError(f"unknown sensor {self.sensor!r}; choose one of {', '.join(SENSORS)}")
        start, end = parse_date(self.start, "start"), parse_date(self.end, "end")
        today = _dt.date.today()  # (before the order of the two: a --start far ahead alone kept the default end)
        if start > today:  # (sent, the scene count came back 0: "widen the dates or raise the cloud limit")
            raise ConfigError(f"start {self.start} is after today ({today}): there are no images of those dates "
                              "yet; pick dates up to today")
        if end > today + _dt.timedelta(days=366):  # (a year ahead is a plan; 9999-12-31 overflowed a date)
            raise ConfigError(f"end {self.end} is more than a year after today ({today}); give the last day of the "
                              "images wanted (today at the latest)")
        if end < start:
            raise ConfigError(f"end {self.end} is before start {self.start}")
        spec = SENSORS[self.sensor]
        first, last = spec.archive  # to the day: Landsat 9 in 2021-01..09, Landsat 5 after 2012-05 have no scene
        if end < first or (last is not None and start > last):
            life = f"{first}..{last or 'today'}"
            raise ConfigError(f"{spec.title} has no images in {self.start}..{self.end} (it covers {life}); pick another sensor or dates")
        # Each number must be one; one given as text ("20") is replaced by its value (frozen:
        # object.__setattr__), while numbers keep their type (the expression graphs show them).
        for name, what in (("max_cloud", "a number in (0, 100] (% of the scene)"), ("scale", "a positive number of metres"),
                           ("cs_threshold", "a number in (0, 1)")):
            value = getattr(self, name)
            if value is not None or name != "scale":  # scale None: the sensor's own
                number = _number(value, name, what)
                if isinstance(value, str):
                    object.__setattr__(self, name, number)
        if not 0.0 < self.max_cloud <= 100.0:  # scenes with cloud cover under it are kept: 0 would keep none
            raise ConfigError(f"max_cloud must be above 0 and at most 100 (scenes with cloud cover under it, in % "
                              f"of the scene, are kept), got {self.max_cloud}")
        if self.scale is not None and not (MIN_SCALE_M <= self.scale <= 10000):  # (1e-300 overflowed a count)
            raise ConfigError(f"scale must be a number of metres from {MIN_SCALE_M:g} to 10000 (Landsat's pixels are "
                              f"30 m, Sentinel-2's 10 m), got {self.scale}")
        if isinstance(self.crs, str) and not self.crs.strip():
            object.__setattr__(self, "crs", None)  # empty: the region's UTM zone, as None
        if self.crs is not None:
            if not (isinstance(self.crs, str) and self.crs.upper().startswith("EPSG:") and self.crs[5:].isdigit()):
                raise ConfigError(f"crs must look like 'EPSG:32718' (or be empty for the region's UTM zone), got {self.crs!r}")
            _projected_crs(self.crs.upper())
        if not 0.0 < self.cs_threshold < 1.0:
            raise ConfigError(f"cs_threshold must be in (0, 1), got {self.cs_threshold}")

    @property
    def spec(self) -> SensorSpec:
        return SENSORS[self.sensor]

    @property
    def resolution(self) -> float:
        """The scale in metres actually used."""
        return float(self.scale) if self.scale is not None else self.spec.scale

    def grid_origin(self, crs: str) -> tuple[float, float]:
        """(x, y) in ``crs`` units where this composite's pixel corners fall, modulo its scale
        (:attr:`SensorSpec.grid_origin`; Landsat's northings in a southern UTM zone:
        :attr:`SensorSpec.north_zone_grid`): every grid of this composite (downloads, exports,
        sample points) is snapped to it."""
        o = self.spec.grid_origin
        if self.spec.north_zone_grid and re.fullmatch(r"EPSG:327\d\d", crs.strip().upper()):
            return o, math.fmod(o + SOUTH_ZONE_FALSE_NORTHING, self.resolution)
        return o, o

    @property
    def end_exclusive(self) -> str:
        """Earth Engine's filterDate end is exclusive: the day after ``end``."""
        return (_dt.date.fromisoformat(self.end) + _dt.timedelta(days=1)).isoformat()

    @property
    def year(self) -> int:
        """The year a label map should describe: the year the composite starts (the Camana preset:
        2005-2006 with 2005 labels), as the dashboard's empty label year has it."""
        return _dt.date.fromisoformat(self.start).year

    def crs_for(self, geometry: Mapping[str, Any]) -> str:
        """The CRS to use for a region: ``crs`` if set, else the UTM zone of its centre.

        Raises:
            RegionError: no ``crs`` set and the region reaches past UTM's latitudes (80 S to 84 N), where
                a UTM grid stretches out of shape (a region at the pole was taken in zone 31N).
        """
        if self.crs:
            return self.crs.upper()
        w, s, e, n = geojson_bounds(geometry)
        if s < UTM_LATITUDES[0] or n > UTM_LATITUDES[1]:
            from core.errors import RegionError

            pole, polar = ("north", "EPSG:3413, NSIDC's north polar stereographic") if n > UTM_LATITUDES[1] else \
                ("south", "EPSG:3031, the Antarctic polar stereographic")
            raise RegionError(f"the region reaches {max(n, -s):.1f} degrees {pole}, past the latitudes of UTM (80 S to "
                              f"84 N), the projection a region gets: the dashboard takes regions within them; for this one use "
                              f"the command line with a polar projection, e.g. --crs {polar} (Landsat's orbits reach about "
                              "82 degrees)")
        return utm_crs((w + e) / 2, (s + n) / 2)

    def grid_size(self, geometry: Mapping[str, Any]) -> tuple[int, int]:
        """(width, height) in pixels of the composite's grid over ``geometry``'s bounds (on the sensor's
        pixels, in :meth:`crs_for`), as a download or an export of the region has it; no request.

        Raises:
            ConfigError, RegionError: as :func:`core.ee.pixels.geometry_bounds` (a region its CRS cannot hold).
        """
        from core.ee.pixels import geometry_bounds, snap_grid

        crs = self.crs_for(geometry)
        _, width, height = snap_grid(geometry_bounds(geometry, self.resolution, crs), self.resolution,
                                     self.grid_origin(crs))
        return width, height


# ----------------------------------------------------------------------------- pure helpers


def region_geometry(region: Any) -> dict:
    """The GeoJSON geometry (EPSG:4326) of a region: an object with ``.geojson`` (dict or method),
    a ``core.region.Region`` in lon/lat (``.geometry()``), a Feature, or a geometry dict.

    Raises:
        RegionError: if it is none of these, is in image pixels, or has no coordinates or malformed ones
            (:meth:`core.region.Region.from_geojson` checks a dict given).
    """
    from core.errors import RegionError

    crs = getattr(region, "crs", None)
    if isinstance(crs, str) and crs.upper() not in ("EPSG:4326", "OGC:CRS84"):
        raise RegionError(
            f"Earth Engine needs a region in longitude/latitude, this one is in {crs!r} "
            "(an image without a location); draw the region on the map or upload lon/lat GeoJSON"
        )
    if isinstance(region, Mapping):
        geo = region
    elif hasattr(region, "geojson"):
        geo = region.geojson
    elif hasattr(region, "geometry"):  # core.region.Region
        geo = region.geometry
    elif hasattr(region, "to_geojson"):
        geo = region.to_geojson
    else:
        geo = None
    if callable(geo):
        geo = geo()
    if not isinstance(geo, Mapping):
        raise RegionError("the region has no GeoJSON geometry in lon/lat; draw or choose a georeferenced region")
    if geo.get("type") == "Feature":
        geo = geo.get("geometry") or {}
    if geo.get("type") == "FeatureCollection":
        feats = geo.get("features") or []
        if len(feats) != 1:
            raise RegionError("give one polygon (a FeatureCollection with exactly one feature)")
        geo = feats[0].get("geometry") or {}
    if geo.get("type") not in ("Polygon", "MultiPolygon") or not geo.get("coordinates"):
        raise RegionError(f"the region must be a Polygon or MultiPolygon, got {geo.get('type')!r}")
    if isinstance(region, Mapping):  # a dict as given (a Region is checked already): an empty ring or text
        from core.region import Region  # coordinates were a ValueError from the bounds, a traceback

        Region.from_geojson(dict(geo))
    return dict(geo)


def _coords(geometry: Mapping[str, Any]) -> list[tuple[float, float]]:
    coords = geometry["coordinates"]
    rings = coords if geometry["type"] == "Polygon" else [r for poly in coords for r in poly]
    return [(float(x), float(y)) for ring in rings for x, y, *_ in ring]


def geojson_bounds(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a Polygon/MultiPolygon in lon/lat.

    Raises:
        RegionError: if coordinates are outside lon -180..180 / lat -90..90, or span over 180 degrees of
            longitude (a region cut at the 180th meridian, whose box would be the whole globe).
    """
    from core.errors import RegionError

    pts = _coords(geometry)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    w, s, e, n = min(xs), min(ys), max(xs), max(ys)
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise RegionError(f"region bounds {w, s, e, n} are not lon/lat degrees (EPSG:4326)")
    if e - w > 180:  # (its parts on either side of the meridian: the box between them goes round the Earth)
        # (said of a box over half the globe too, which no page or command can fetch: "across the 180th
        # meridian" misled for --bbox -180,-90,180,90)
        raise RegionError(f"the region spans longitudes {w:g} to {e:g}, more than half the globe: draw a smaller "
                          "region (a valley, a district); one across the 180th meridian is not handled with Earth "
                          "Engine: draw it on one side of the meridian (or as two regions)")
    return w, s, e, n


def bbox_geojson(west: float, south: float, east: float, north: float) -> dict:
    """A GeoJSON Polygon for a lon/lat box."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


#: The day Landsat 7's scan-line corrector failed: its scenes since have wedge-shaped gaps (about 22% of each).
L7_SLC_OFF = "2003-05-31"


def composite_note(cfg: CompositeConfig) -> str | None:
    """What to know of a composite's imagery before fetching it, or None: Landsat 7 after its scan-line
    corrector failed (its scenes' striped gaps, which a median of several fills only in part)."""
    if cfg.sensor == "L7" and cfg.end > L7_SLC_OFF:
        return (f"Landsat 7's scan-line corrector failed on {L7_SLC_OFF}: each of its scenes since lacks about a "
                "fifth of its pixels in stripes, which the median of several scenes fills only in part (stripes of "
                "no data may remain); Landsat 5 (to 2011) or 8 (from 2013) have none")
    return None


#: The latitudes (south, north) that UTM zones cover.
UTM_LATITUDES = (-80.0, 84.0)


def utm_crs(lon: float, lat: float) -> str:
    """The WGS 84 / UTM zone EPSG code for a point (326xx north, 327xx south)."""
    zone = min(60, max(1, int(math.floor((lon + 180.0) / 6.0)) + 1))
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


# ----------------------------------------------------------------------------- ee builders


def ee_geometry(geometry: Mapping[str, Any]):
    """An ``ee.Geometry`` from GeoJSON in lon/lat, geodesic=False (edges straight on the map)."""
    import ee

    return ee.Geometry(dict(geometry), "EPSG:4326", False)


def _landsat_prepare(spec: SensorSpec):
    import ee

    def prepare(image):
        image = ee.Image(image)
        qa = image.select("QA_PIXEL")
        clear = qa.bitwiseAnd(LANDSAT_QA_MASK).eq(0).And(image.select("QA_RADSAT").eq(0))
        refl = image.select(list(spec.bands), list(INPUT_BANDS)).multiply(LANDSAT_SCALE).add(LANDSAT_OFFSET)
        return refl.updateMask(clear).copyProperties(image, ["system:time_start"])

    return prepare


def _s2_prepare(cfg: CompositeConfig):
    import ee

    spec = cfg.spec

    def prepare(image):
        image = ee.Image(image)
        clear = image.select("cs_cdf").gte(cfg.cs_threshold)
        refl = image.select(list(spec.bands), list(INPUT_BANDS)).multiply(S2_SCALE)
        return refl.updateMask(clear).copyProperties(image, ["system:time_start"])

    return prepare


def scene_collection(cfg: CompositeConfig, geometry: Mapping[str, Any]):
    """The filtered, masked and scaled scenes (bands R, G, B, NIR) before the median."""
    import ee

    spec = cfg.spec
    geom = ee_geometry(geometry)
    col = (
        ee.ImageCollection(spec.collection)
        .filterBounds(geom)
        .filterDate(cfg.start, cfg.end_exclusive)
        .filter(ee.Filter.lt(spec.cloud_property, float(cfg.max_cloud)))  # "under 20%", as the original notebook
    )
    if spec.family == "s2":
        col = col.linkCollection(ee.ImageCollection(CLOUD_SCORE_PLUS), ["cs_cdf"])
        return col.map(_s2_prepare(cfg))
    return col.map(_landsat_prepare(spec))


def add_ndvi(image):
    """Append NDVI = (NIR - R) / (NIR + R), 0 where NIR + R <= 1e-6, clamped to [-1, 1]."""
    red, nir = image.select("R"), image.select("NIR")
    den = nir.add(red)
    small = den.abs().lte(NDVI_EPS)
    nd = nir.subtract(red).divide(den.where(small, 1)).where(small, 0).clamp(-1, 1)
    return image.addBands(nd.rename("NDVI"))


def aggregation(scale_m: float, native_m: float) -> dict[str, Any] | None:
    """``Image.reduceResolution``'s ``bestEffort`` and ``maxPixels`` for a grid of ``scale_m`` metres
    over a source of ``native_m`` metre pixels, or None where the grid is less than
    :data:`AGGREGATE_ABOVE` times coarser (its pixels are then the source's nearest)."""
    if scale_m < AGGREGATE_ABOVE * native_m:
        return None
    # the source pixels one pixel may touch: (ratio + 2)^2 where the grids are not aligned or one is
    # turned (WorldCover's is in degrees); at least Earth Engine's default, 64 (30 m of 10 m)
    most = max(64, (math.ceil(scale_m / native_m) + 2) ** 2)
    return {"bestEffort": most > MOST_AGGREGATED, "maxPixels": min(most, MOST_AGGREGATED)}


def composite_image(cfg: CompositeConfig, geometry: Mapping[str, Any], on_grid: bool = False):
    """Median composite with bands R, G, B, NIR (reflectance clipped at 0, float) and NDVI.

    ``on_grid``: for pixels of the config's scale (downloads, exports, sampling): where it is coarser
    than the sensor's (:func:`aggregation`, e.g. Sentinel-2 on 30 m for the shipped model), each
    scene's reflectance is averaged over the sensor's pixels under each pixel (cloud-masked ones left
    out), as :mod:`core.resample` averages a local image, before the median and NDVI; Earth Engine's
    default would take the one pixel nearest each centre. Without it (map tiles), Earth Engine's own
    pyramids at each zoom.
    """
    import ee

    scenes = scene_collection(cfg, geometry)
    if on_grid and (kw := aggregation(cfg.resolution, cfg.spec.scale)) is not None:
        scenes = scenes.map(lambda scene: ee.Image(scene).reduceResolution(ee.Reducer.mean(), **kw))
    refl = scenes.median().max(0).toFloat()
    image = add_ndvi(refl).select(list(FEATURE_BANDS)).toFloat()
    return image.set({"crop_mapping:sensor": cfg.sensor, "crop_mapping:start": cfg.start, "crop_mapping:end": cfg.end})


#: scenes of dates newer than this many days may still be arriving (Landsat Collection 2 Level 2
#: scenes are published days to weeks after acquisition): a summary reaching them is not cached
SETTLED_DAYS = 60


class _NoSceneYet(Exception):
    """A scene summary that may change, raised so that the cache keeps it not (an exception is never
    cached): none found, or dates too recent to have all their scenes, which keep arriving."""

    def __init__(self, summary: dict):
        super().__init__("no scene")
        self.summary = summary


@lru_cache(maxsize=64)
def _scene_summary_cached(cfg: CompositeConfig, geometry_json: str, getinfo: Any) -> dict:
    import json

    import ee

    geometry = json.loads(geometry_json)
    col = scene_collection(cfg, geometry)
    stats = ee.Dictionary(
        {
            "count": col.size(),
            "dates": ee.List(col.aggregate_array("system:time_start")).sort(),
        }
    )
    summary = (getinfo or (lambda obj: obj.getInfo()))(stats)
    recent = _dt.date.fromisoformat(cfg.end) > _dt.date.today() - _dt.timedelta(days=SETTLED_DAYS)
    if not summary.get("count") or recent:
        raise _NoSceneYet(summary)
    return summary


def scene_summary(cfg: CompositeConfig, geometry: Mapping[str, Any], getinfo: Any = None) -> dict:
    """Number of scenes and their acquisition times (ms), in ONE ``getInfo`` call, cached per
    (config, geometry) for the life of the process once there is a scene and the dates are older than
    :data:`SETTLED_DAYS` (else asked again next time: one call per fetch, which downloads far more).

    Raises:
        EarthEngineError subclasses (mapped) when the request fails; NoDataError: as
            :func:`core.ee.errors.map_ee_error` maps an empty collection.
    """
    import json

    from core.ee.errors import call_with_retries

    key = json.dumps(geometry, sort_keys=True)

    def fetch() -> dict:
        try:
            return _scene_summary_cached(cfg, key, getinfo)
        except _NoSceneYet as none:
            return none.summary

    return dict(call_with_retries(fetch))


def no_clear_pixel(count: int, cfg: CompositeConfig) -> str:
    """The error text of a composite of ``count`` scenes that has no pixel with data in a region:
    each scene masked there (the recipe's cloud mask, or the scene's own gaps)."""
    masked = "cloud, cloud shadow, cirrus or no data" if cfg.spec.family == "landsat" else "cloud or cloud shadow (Cloud Score+)"
    scenes = f"{count:,} {cfg.spec.title} scene{'s' if count != 1 else ''}"
    return (f"the composite has no clear pixel in this region: the {scenes} between {cfg.start} and {cfg.end} "
            f"are all masked there ({masked}); widen the dates, raise the cloud-cover limit ('Cloud cover under %', "
            "--max-cloud), or draw the region elsewhere")


def require_scenes(cfg: CompositeConfig, geometry: Mapping[str, Any], getinfo: Any = None) -> dict:
    """:func:`scene_summary` of a region that has at least one scene (ONE ``getInfo``, cached): a
    download or a batch export of none would fail, an export only after its time in Earth Engine's
    queue ("did not match any bands").

    Raises:
        NoDataError: no scene matches the dates, region and cloud filter (what to change);
        EarthEngineError subclasses (mapped) when the request fails.
    """
    from core.errors import NoDataError

    summary = scene_summary(cfg, geometry, getinfo)
    if not int(summary.get("count") or 0):
        raise NoDataError(
            f"no {cfg.spec.title} scene with under {cfg.max_cloud:g}% cloud covers this region between "
            f"{cfg.start} and {cfg.end}; widen the dates or raise the cloud-cover limit ('Cloud cover under %', "
            "--max-cloud)"
        )
    return summary
