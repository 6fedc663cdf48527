"""Crop (1) / not-crop (0) / no-data (255) label images from land-cover products in Earth Engine.

The crop and no-data codes come from :data:`core.labels.CLASS_MAPS`, so a crop pixel means the
same here as in a local label raster. Every recipe returns a one-band uint8 image named
``label``, unmasked everywhere (255 where the product has no data), ready to download with the
``binary`` class map, to sample, or to export.
"""

from __future__ import annotations

import datetime as _dt
import operator
from dataclasses import dataclass
from typing import Any, Mapping

from core.ee.composites import parse_date
from core.errors import ConfigError
from core.labels import CLASS_MAPS, CROP, NODATA, NOT_CROP

WORLDCOVER = "ESA/WorldCover/v200"
DYNAMIC_WORLD = "GOOGLE/DYNAMICWORLD/V1"
GLC_FCS30D_ANNUAL = "projects/sat-io/open-datasets/GLC-FCS30D/annual"
GLC_FCS30D_FIVE_YEARS = "projects/sat-io/open-datasets/GLC-FCS30D/five-years-map"
CDL = "USDA/NASS/CDL"
#: GLC-FCS30D's maps before its yearly ones: one every five years (the five-years-map collection's bands
#: b1..b3), then one a year from :data:`GLC_FCS30D_YEARLY_FROM` (the annual collection's b1..b23, 2000-2022)
GLC_FCS30D_FIVE_YEARLY = (1985, 1990, 1995)
GLC_FCS30D_YEARLY_FROM = 2000
#: A lon/lat box (west, south, east, north) around the CDL's one image, the contiguous United
#: States (with a margin: only a region wholly outside it is refused).
CDL_BOUNDS = (-128.0, 22.0, -65.0, 52.0)
#: The first day of Dynamic World (its archive starts with Sentinel-2's in mid-2015).
DYNAMIC_WORLD_FIRST_DAY = "2015-06-27"

#: product -> (title, class map name, first year, last year or None)
PRODUCTS: dict[str, tuple[str, str, int, int | None]] = {
    "worldcover": ("ESA WorldCover v200 (2021)", "worldcover", 2021, 2021),  # v200 is the 2021 map alone
    "dynamicworld": ("Dynamic World V1 (mode of label)", "dynamicworld", 2015, None),
    "glcfcs30d": ("GLC-FCS30D annual (1985-2022)", "glcfcs30d", 1985, 2022),
    "cdl": ("USDA NASS Cropland Data Layer", "cdl", 1997, None),
    "asset": ("User asset (crop value given)", "binary", 1900, None),
}


#: product -> the ground size of its pixels in metres; a grid of coarser pixels takes each one's most
#: frequent class among them (:func:`aggregated`). A user asset's size is not known without a request:
#: its pixels are taken as Earth Engine takes them by default, the one nearest each pixel's centre.
NATIVE_SCALE_M: dict[str, float] = {"worldcover": 10.0, "dynamicworld": 10.0, "glcfcs30d": 30.0, "cdl": 30.0}
#: products made of several images (a mode over dates, a mosaic of tiles), which carry no projection of
#: their own (Earth Engine's default for such: 1 degree), so one of their pixel size is given them
COMPOSED = frozenset({"dynamicworld", "glcfcs30d"})

#: products still made each year -> years after a year ends before its map is out (CDL: early the next year)
PUBLISHED_AFTER: dict[str, int] = {"cdl": 1, "dynamicworld": 0, "asset": 0}


def last_year(product: str, today: _dt.date | None = None) -> int:
    """The last year ``product`` has a map for: its fixed last year, or (a product still made)
    ``today``'s year less the time its maps take to come out."""
    last = PRODUCTS[product][3]
    return last if last is not None else (today or _dt.date.today()).year - PUBLISHED_AFTER.get(product, 0)


def year_span(product: str) -> tuple[int, int]:
    """(first, last) year ``product`` has maps for (:func:`last_year`)."""
    return PRODUCTS[product][2], last_year(product)


def has_map(product: str, year: int) -> bool:
    """Whether ``product`` has a map for ``year``: a year of its span (:func:`year_span`), and for
    GLC-FCS30D before 2000 one of its five-yearly maps (1985, 1990, 1995)."""
    first, last = year_span(product)
    if not first <= year <= last:
        return False
    return product != "glcfcs30d" or year >= GLC_FCS30D_YEARLY_FROM or year in GLC_FCS30D_FIVE_YEARLY


def map_years(product: str) -> str:
    """The years ``product`` has maps for, as said to a user: "1985, 1990, 1995 and 2000-2022" for
    GLC-FCS30D, its span otherwise (e.g. "1997-2025"; "2021" for a product of one year)."""
    first, last = year_span(product)
    if product == "glcfcs30d":
        return f"{', '.join(map(str, GLC_FCS30D_FIVE_YEARLY))} and {GLC_FCS30D_YEARLY_FROM}-{last}"
    return str(first) if first == last else f"{first}-{last}"


def nearest_map_year(product: str, year: int) -> int:
    """The year nearest ``year`` that ``product`` has a map for (:func:`has_map`); the later of two as near."""
    first, last = year_span(product)
    nearest = min(max(year, first), last)
    if has_map(product, nearest):
        return nearest
    return min((y for y in range(first, last + 1) if has_map(product, y)), key=lambda y: (abs(y - year), -y))


#: the first year the CDL maps every state of the contiguous United States (1997-2007: some states only)
CDL_ALL_STATES_FROM = 2008


#: WorldCover's only year (v200: 2021), and how many years from it a composite's labels are said to be taken
WORLDCOVER_YEAR, WORLDCOVER_NEAR_YEARS = 2021, 3


def coverage_note(product: str, year: int | None) -> str | None:
    """What a user should know of ``product``'s coverage in ``year`` (the labels' year, or the
    composite's for a product of one year), where it has gaps that :func:`check_coverage` cannot see
    (CDL before 2008 maps some states only; WorldCover maps 2021 only); None otherwise."""
    if product == "cdl" and year is not None and int(year) < CDL_ALL_STATES_FROM:
        return (f"the Cropland Data Layer of {year} maps some states only (every state of the contiguous "
                f"United States from {CDL_ALL_STATES_FROM}): outside them the labels are no data")
    if product == "worldcover" and year is not None and abs(int(year) - WORLDCOVER_YEAR) > WORLDCOVER_NEAR_YEARS:
        return (f"ESA WorldCover maps {WORLDCOVER_YEAR} only, {abs(int(year) - WORLDCOVER_YEAR)} years from this "
                f"{year} composite: fields made or left since are labelled wrongly; GLC-FCS30D has maps for "
                f"{map_years('glcfcs30d')} (--labels glcfcs30d, or the Earth Engine settings' label product)")
    return None


def labels_note(labels: "LabelConfig | None", composite) -> str | None:
    """:func:`coverage_note` of a label recipe beside its composite (a product of one year, such as
    WorldCover, is set against the composite's year); None without labels or a note."""
    if labels is None:
        return None
    return coverage_note(labels.product, labels.year if labels.year is not None else composite.year)


def check_coverage(cfg: "LabelConfig", geometry: Mapping[str, Any] | None) -> None:
    """Refuse a label product that has no map over the region (GeoJSON in lon/lat; None: nothing to
    check): CDL outside the contiguous United States. Local, no Earth Engine request.

    Raises:
        ConfigError: the region lies outside the product's coverage (the message names products that cover it).
    """
    if cfg.product != "cdl" or geometry is None:
        return
    from core.ee.composites import geojson_bounds

    w, s, e, n = geojson_bounds(geometry)
    cw, cs, ce, cn = CDL_BOUNDS
    if e < cw or w > ce or n < cs or s > cn:  # masked everywhere there: labels all no data
        raise ConfigError(
            f"the USDA NASS Cropland Data Layer covers the contiguous United States only, and this region "
            f"(lon {w:.2f}..{e:.2f}, lat {s:.2f}..{n:.2f}) lies outside it; choose WorldCover, Dynamic "
            "World or GLC-FCS30D, which cover the whole world"
        )


def whole_number(value: Any, field: str) -> int:
    """``value`` as an int (a whole number, or text that is one).

    Raises:
        ConfigError: anything else.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{field} must be a whole number, got {value!r}")
    try:
        return operator.index(value)  # int, numpy integers
    except TypeError:
        pass
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{field} must be a whole number, got {value!r}")


@dataclass(frozen=True)
class LabelConfig:
    """Which product labels a region, and for when.

    ``year`` picks the annual map (GLC-FCS30D, CDL); ``start``/``end`` (both or neither) bound
    Dynamic World (default: the year; :class:`core.sources.earthengine.EarthEngineSource` gives it
    the composite's dates when it has neither); ``asset_id``/``band``/``crop_values``/
    ``nodata_values`` describe a user asset (the original notebook: a GLC30 asset with crop value 10).

    Raises (on construction):
        ConfigError: unknown product, a year that is not a whole number or that the product does not
        cover, asset without id/values, crop/no-data values that are not whole numbers, bad dates.
    """

    product: str = "worldcover"
    year: int | None = None
    start: str | None = None
    end: str | None = None
    asset_id: str | None = None
    band: str | None = None
    crop_values: tuple[int, ...] = ()
    nodata_values: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.product, str) or self.product not in PRODUCTS:
            raise ConfigError(f"unknown label product {self.product!r}; choose one of {', '.join(PRODUCTS)}")
        # frozen: whole numbers given as text ("2020") are replaced by ints with object.__setattr__
        if isinstance(self.year, str) and not self.year.strip():
            object.__setattr__(self, "year", None)
        if self.year is not None:
            object.__setattr__(self, "year", whole_number(self.year, "label year"))
        for name in ("crop_values", "nodata_values"):
            values = getattr(self, name)
            if isinstance(values, (int, str)) and not isinstance(values, bool):
                values = (values,)  # one value given alone
            if not isinstance(values, (tuple, list)):
                raise ConfigError(f"{name} must be a list of whole numbers, got {values!r}")
            object.__setattr__(self, name, tuple(whole_number(v, name.replace("_", " ")[:-1]) for v in values))
        first, last = year_span(self.product)
        if self.year is not None and not (first <= int(self.year) <= last):
            span = f"only {first}" if first == last else f"{first}-{last}"
            raise ConfigError(f"{PRODUCTS[self.product][0]} covers {span}, not {self.year}")
        if self.product == "glcfcs30d" and self.year is not None and not has_map(self.product, self.year):
            raise ConfigError(f"GLC-FCS30D before 2000 exists only for 1985, 1990 and 1995, not {self.year}")
        if self.product in ("glcfcs30d", "cdl") and self.year is None:
            raise ConfigError(f"label product {self.product} needs a year")
        if self.product == "asset":
            if not self.asset_id or not self.crop_values:
                raise ConfigError("a user asset label needs its asset id and the class value(s) meaning crop, e.g. 10 "
                                  "(--asset-id and --crop-values; 'Asset id' and 'Crop value(s)' in the dashboard)")
            if both := sorted(set(self.crop_values) & set(self.nodata_values)):  # (crop would all be no data)
                raise ConfigError(f"value(s) {', '.join(map(str, both))} given both as crop and as no data; give each "
                                  "value once")
        for text in (self.start, self.end):
            if text is not None:
                parse_date(text, "label dates")
        if (self.start is None) != (self.end is None):
            raise ConfigError("label dates need both start and end (YYYY-MM-DD), or neither")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ConfigError(f"label dates end ({self.end}) before they start ({self.start})")
        if self.product == "dynamicworld":  # (here, not when the graph is built: refused before any request)
            _dynamic_world_dates(self)

    @property
    def class_map_name(self) -> str:
        """The core.labels class map of the raw product codes."""
        return PRODUCTS[self.product][1]

    def dates(self) -> tuple[str, str]:
        """[start, end) for date-filtered products (Dynamic World)."""
        if self.start and self.end:
            end = _dt.date.fromisoformat(self.end) + _dt.timedelta(days=1)
            return self.start, end.isoformat()
        year = self.year or 2021  # products without dates (WorldCover) are not filtered by them
        return f"{year}-01-01", f"{year + 1}-01-01"


def _dynamic_world_dates(cfg: LabelConfig) -> tuple[str, str]:
    """The [start, end) of a Dynamic World recipe's maps.

    Raises:
        ConfigError: the dates end before Dynamic World's first map (the mode of no image is an image
            without bands, on which every later step fails with an error that names no cause).
    """
    start, end = cfg.dates()
    if end <= DYNAMIC_WORLD_FIRST_DAY:
        last = (_dt.date.fromisoformat(end) - _dt.timedelta(days=1)).isoformat()
        raise ConfigError(
            f"Dynamic World has maps from {DYNAMIC_WORLD_FIRST_DAY} on, none for {start}..{last}; choose "
            f"label dates (or composite dates) from mid-2015 on, or GLC-FCS30D ({map_years('glcfcs30d')}) for "
            "earlier years"
        )
    return start, end


def glcfcs30d_band(year: int) -> tuple[str, str]:
    """(collection, band) of GLC-FCS30D for a year: annual b1..b23 = 2000..2022; five-yearly
    b1..b3 = 1985, 1990, 1995.

    Raises:
        ConfigError: for a year the product does not have.
    """
    if GLC_FCS30D_YEARLY_FROM <= year <= PRODUCTS["glcfcs30d"][3]:
        return GLC_FCS30D_ANNUAL, f"b{year - GLC_FCS30D_YEARLY_FROM + 1}"
    if year in GLC_FCS30D_FIVE_YEARLY:
        return GLC_FCS30D_FIVE_YEARS, f"b{GLC_FCS30D_FIVE_YEARLY.index(year) + 1}"
    raise ConfigError(f"GLC-FCS30D has maps for {map_years('glcfcs30d')}, not {year}")


def to_binary(raw, crop_codes, nodata_codes):
    """Raw class codes -> uint8 ``label``: 1 crop, 0 not crop, 255 no data (masked or a no-data code)."""
    import ee

    crop_codes = sorted(int(c) for c in crop_codes)
    nodata_codes = sorted(int(c) for c in nodata_codes)
    raw = ee.Image(raw)
    out = raw.remap(crop_codes, [CROP] * len(crop_codes), NOT_CROP)
    if nodata_codes:
        is_nodata = raw.remap(nodata_codes, [1] * len(nodata_codes), 0).eq(1)
        out = out.where(is_nodata, NODATA)
    # sameFootprint=False: outside a bounded image (a user asset, CDL's one image) the pixels are
    # masked too, and unmask keeps them masked by default; they would come down (computePixels,
    # exports) as 0, not crop, instead of no data
    return out.unmask(NODATA, False).toUint8().rename("label")


def aggregated(raw, product: str, scale_m: float | None, crs: str | None):
    """``raw`` class codes as pixels of ``scale_m`` metres take them: each its most frequent class
    among the product's pixels under it (weighted by the area each covers; masked ones left out),
    as :mod:`core.resample` takes a local label raster's, instead of Earth Engine's default, the
    class of the one pixel nearest its centre (on 10 m WorldCover at 30 m, one pixel of nine).

    Unchanged where the grid is not coarser than the product's pixels by
    :data:`~core.ee.composites.AGGREGATE_ABOVE` or more, without a scale, and for a user asset
    (:data:`NATIVE_SCALE_M`). The grid itself is the request's or export's, as for the nearest pixel.

    Raises:
        ConfigError: a composed product (:data:`COMPOSED`) to aggregate without the grid's ``crs``.
    """
    import ee

    from core.ee.composites import aggregation

    native = NATIVE_SCALE_M.get(product)
    kw = aggregation(scale_m, native) if scale_m is not None and native is not None else None
    if kw is None:
        return raw
    raw = ee.Image(raw)
    if product in COMPOSED:  # (a crs is needed for that: the grid's, at the product's pixel size)
        if not crs:
            raise ConfigError(f"aggregating {product} labels to {scale_m:g} m needs the grid's CRS")
        raw = raw.setDefaultProjection(crs, None, native)
    return raw.reduceResolution(ee.Reducer.mode(), **kw)


def raw_label_image(cfg: LabelConfig, geometry: Mapping[str, Any] | None = None, scale_m: float | None = None,
                    crs: str | None = None):
    """The product's raw class-code image (one band) for the config; with ``scale_m`` (and the grid's
    ``crs``), for pixels of that size: each the most frequent class under it (:func:`aggregated`).

    Raises:
        ConfigError: Dynamic World dates that end before its first map (2015-06-27); CDL for a
        ``geometry`` wholly outside the contiguous United States.
    """
    return aggregated(_product_codes(cfg, geometry), cfg.product, scale_m, crs)


def _product_codes(cfg: LabelConfig, geometry: Mapping[str, Any] | None):
    """The product's class codes at its own pixels (see :func:`raw_label_image`)."""
    import ee

    if cfg.product == "worldcover":
        return ee.ImageCollection(WORLDCOVER).first().select(CLASS_MAPS["worldcover"].band or "Map")
    if cfg.product == "dynamicworld":
        start, end = _dynamic_world_dates(cfg)
        col = ee.ImageCollection(DYNAMIC_WORLD).filterDate(start, end)
        if geometry is not None:
            from core.ee.composites import ee_geometry

            col = col.filterBounds(ee_geometry(geometry))
        band = CLASS_MAPS["dynamicworld"].band or "label"
        # The mode of no image is an image without bands, on which every later step fails with an error
        # that names no cause. A wholly masked image in the collection keeps the band where no map covers
        # the region in those dates (its pixels no data, as label_image unmasks them); elsewhere the mode
        # ignores it. Every image is cast to uint8 (the classes are 0-8), so that the collection is of one
        # band type whatever type the catalogue's label band has: a reduction refuses a collection of mixed types.
        none = ee.Image.constant(NODATA).toUint8().rename(band).updateMask(0)
        return col.select(band).map(lambda image: ee.Image(image).toUint8()).merge(ee.ImageCollection([none])).mode()
    if cfg.product == "glcfcs30d":
        collection, band = glcfcs30d_band(int(cfg.year))  # type: ignore[arg-type]
        return ee.ImageCollection(collection).select(band).mosaic()
    if cfg.product == "cdl":
        check_coverage(cfg, geometry)
        return (
            ee.ImageCollection(CDL)
            .filterDate(f"{cfg.year}-01-01", f"{int(cfg.year) + 1}-01-01")  # type: ignore[arg-type]
            .first()
            .select(CLASS_MAPS["cdl"].band or "cropland")
        )
    image = ee.Image(cfg.asset_id)
    return image.select(cfg.band) if cfg.band else image.select(0)


def label_image(cfg: LabelConfig, geometry: Mapping[str, Any] | None = None, scale_m: float | None = None,
                crs: str | None = None):
    """The crop / not-crop / no-data ``label`` image (uint8) of a label config; with ``scale_m`` (and
    the grid's ``crs``), from the product's most frequent class under each pixel of that size
    (:func:`aggregated`), for downloads and exports (map tiles take Earth Engine's own pyramids)."""
    raw = raw_label_image(cfg, geometry, scale_m, crs)
    if cfg.product == "asset":
        return to_binary(raw, cfg.crop_values, cfg.nodata_values)
    cmap = CLASS_MAPS[cfg.class_map_name]
    return to_binary(raw, cmap.crop_codes, cmap.nodata_codes)
