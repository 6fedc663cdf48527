"""An Earth Engine source's settings as plain data: the defaults a settings form starts from, the
settings made from what was entered in it, and their description in one line.

The settings are a mapping ``{"composite": {...}, "labels": {...} or None}`` (what
:meth:`core.sources.earthengine.EarthEngineSource.settings` gives and
:func:`core.sources.earthengine.recipes_from_settings` turns into recipes). Nothing here reaches
Earth Engine.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from core.ee.composites import SENSORS, CompositeConfig
from core.ee.labels import PRODUCTS, LabelConfig, has_map, map_years, nearest_map_year, whole_number
from core.errors import ConfigError
from core.resample import SHIPPED_PIXEL_SIZE_M

#: The label choice that fetches no labels.
NO_LABELS = "none"
#: The products whose annual map is picked by a year.
YEARLY = ("glcfcs30d", "cdl")
#: What a form starts from without settings: the recipes' own defaults, on the shipped model's pixels.
_COMPOSITE, _LABELS = CompositeConfig(), LabelConfig()
DEFAULT_COMPOSITE = {"sensor": _COMPOSITE.sensor, "start": _COMPOSITE.start, "end": _COMPOSITE.end,
                     "max_cloud": _COMPOSITE.max_cloud, "scale": SHIPPED_PIXEL_SIZE_M}


def form_defaults(current: Mapping[str, Any] | None) -> dict:
    """What a settings form shows first for the ``current`` settings (None: the defaults): sensor,
    start and end (dates), max_cloud, scale, product (:data:`NO_LABELS` for none), year (text;
    empty when it is the composite's own year, so that it follows new dates), asset_id,
    crop_values and nodata_values (comma-separated text)."""
    comp = {**DEFAULT_COMPOSITE, **{k: v for k, v in ((current or {}).get("composite") or {}).items() if v is not None}}
    # no settings: the default product; settings without labels: "no labels"
    labels = (current.get("labels") or {"product": NO_LABELS}) if current else {"product": _LABELS.product}
    start = dt.date.fromisoformat(comp["start"])
    year = labels.get("year")
    return {
        "sensor": comp["sensor"],
        "start": start,
        "end": dt.date.fromisoformat(comp["end"]),
        "max_cloud": float(comp["max_cloud"]),
        "scale": float(comp["scale"]),
        "product": labels.get("product", _LABELS.product),
        "year": "" if year in (None, start.year) else str(year),
        "asset_id": labels.get("asset_id") or "",
        "crop_values": ",".join(str(v) for v in labels.get("crop_values") or ()),
        "nodata_values": ",".join(str(v) for v in labels.get("nodata_values") or ()),
    }


def settings_from_form(*, sensor: str, start: dt.date, end: dt.date, max_cloud: float, scale: float,
                       product: str, year: str = "", asset_id: str = "", crop_values: str = "",
                       nodata_values: str = "") -> dict:
    """The settings for what a form gives (the fields of :func:`form_defaults`): an empty ``year``
    of a yearly product is the composite's; the text fields are trimmed and split at commas. The
    recipes check the rest when they are made.

    Raises:
        ConfigError: a year or value that is not a whole number, or an empty year whose composite
            year the product has no map for (the message says which year to enter).
    """
    composite = {"sensor": sensor, "start": start.isoformat(), "end": end.isoformat(), "max_cloud": float(max_cloud),
                 "scale": float(scale)}
    if product == NO_LABELS:
        return {"composite": composite, "labels": None}
    labels: dict = {"product": product}
    if product in YEARLY:
        labels["year"] = whole_number(year.strip(), "label year") if year.strip() else composite_year(product, start.year)
    if product == "asset":
        labels["asset_id"] = asset_id.strip() or None
        labels["crop_values"] = [whole_number(v.strip(), "crop value") for v in crop_values.split(",") if v.strip()]
        labels["nodata_values"] = [whole_number(v.strip(), "no-data value") for v in nodata_values.split(",") if v.strip()]
    return {"composite": composite, "labels": labels}


def composite_year(product: str, year: int) -> int:
    """The composite's ``year``, taken for an empty label year, if ``product`` has a map for it.

    Raises:
        ConfigError: it has none (the message says the year came from the composite, and which to enter).
    """
    if not has_map(product, year):  # (GLC-FCS30D: 1985, 1990, 1995 and 2000-2022, not each year of 1985-2022)
        raise ConfigError(f"the label year is empty, so the composite's year {year} was taken, but "
                          f"{PRODUCTS[product][0].split(' (')[0]} has maps for {map_years(product)}: enter a label "
                          f"year (e.g. {nearest_map_year(product, year)}) or change the dates")
    return year


def describe(settings: Mapping[str, Any]) -> str:
    """One line: the imagery and labels that ``settings`` fetch (unknown names are shown as given)."""
    comp, labels = settings.get("composite") or {}, settings.get("labels")
    sensor = SENSORS[comp["sensor"]].title if comp.get("sensor") in SENSORS else comp.get("sensor", "?")
    scale = comp.get("scale") or (SENSORS[comp["sensor"]].scale if comp.get("sensor") in SENSORS else None)
    text = (f"{sensor}, median of {comp.get('start')} to {comp.get('end')}, scenes under {comp.get('max_cloud', _COMPOSITE.max_cloud):g}% "
            "cloud" + (f", {scale:g} m pixels" if scale else ""))
    if not labels:
        return text + "; no labels"
    if labels.get("product") == "asset":  # (which asset, and its crop values: "User asset (crop value given)" said neither)
        crop = ", ".join(str(v) for v in labels.get("crop_values") or ())
        return text + f"; labels: user asset {labels.get('asset_id', '?')}, crop = {crop or '?'}"
    name = PRODUCTS[labels["product"]][0] if labels.get("product") in PRODUCTS else labels.get("product", "?")
    year = labels.get("year")
    return text + f"; labels: {name}" + (f", {year}" if year and labels.get("product") in YEARLY else "")
