"""The Earth Engine settings form of the Region page: sensor, dates, clouds, label product.

It only gathers values; :func:`core.sources.earthengine.recipes_from_settings` validates them.
Widget keys are ``ee_form_<name>_<version>`` (see :func:`_version`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import streamlit as st

from core.ee.composites import SENSORS
from core.ee.labels import PRODUCTS, year_span
from core.errors import ConfigError

NO_LABELS = "none"
DEFAULT_SCALE_M = 30.0  # the shipped model's pixel size (Landsat)
VERSION = "ee_form__v"  # see _version


def settings_form(current: dict | None) -> dict | None:
    """Draw the form (prefilled from ``current`` settings); the settings dict when submitted, else None.

    Raises:
        ConfigError: if the label year or a crop value is not a whole number.
    """
    v = _version(current)
    comp = (current or {}).get("composite") or {"sensor": "L8", "start": "2020-01-01", "end": "2020-12-31",
                                                "max_cloud": 20.0}
    labels = (current or {}).get("labels") or {"product": "worldcover"}
    sensors = list(SENSORS)
    products = [*PRODUCTS, NO_LABELS]
    start0 = dt.date.fromisoformat(comp["start"])
    # a label year that is the composite's own is shown empty, so that it follows new dates
    year0 = labels.get("year")
    year0 = "" if year0 in (None, start0.year) else str(year0)
    # without a max_value, Streamlit caps a date input at ten years after its first value
    first, last = dt.date(1984, 1, 1), dt.date.today()
    with st.form(f"ee_form_{v}", enter_to_submit=False):
        c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1])
        sensor = c1.selectbox("Sensor", sensors, index=sensors.index(comp.get("sensor", "L8")),
                              format_func=lambda k: SENSORS[k].title, key=f"ee_form_sensor_{v}")
        start = c2.date_input("From", start0, key=f"ee_form_start_{v}", min_value=first, max_value=last)
        end = c3.date_input("To", dt.date.fromisoformat(comp["end"]), key=f"ee_form_end_{v}", min_value=first,
                            max_value=last)
        cloud = c4.number_input("Cloud cover under %", 1.0, 100.0, float(comp.get("max_cloud", 20.0)), 5.0, format="%g",
                                key=f"ee_form_cloud_{v}")
        scale = c5.number_input("Pixel size (m)", 10.0, 1000.0, float(comp.get("scale") or DEFAULT_SCALE_M), 10.0,
                                format="%g", key=f"ee_form_scale_{v}",
                                help="the grid the imagery and labels are fetched on. The shipped model was trained "
                                     "on 30 m Landsat pixels: keep 30 m for it (Sentinel-2 is then resampled); a "
                                     "coarser size fits a larger region into one direct download")
        d1, d2, d3, d4, d5 = st.columns([2, 1, 1, 1, 1])
        product = d1.selectbox("Labels", products, index=products.index(labels.get("product", "worldcover")),
                               format_func=lambda k: "no labels" if k == NO_LABELS else PRODUCTS[k][0],
                               key=f"ee_form_labels_{v}")
        year = d2.text_input("Label year (GLC-FCS30D, CDL)", year0, key=f"ee_form_year_{v}", placeholder="composite's year",
                             help="which annual map of GLC-FCS30D or CDL (empty: the year the composite starts); the other "
                                  "products have no year to choose. CDL maps every state of the contiguous US from "
                                  "2008, some states only before")
        asset = d3.text_input("Asset id (User asset)", labels.get("asset_id") or "", key=f"ee_form_asset_{v}",
                              help="only for 'User asset' labels: an image asset, e.g. users/me/glc30")
        crop = d4.text_input("Crop value(s) (User asset)", ",".join(str(v) for v in labels.get("crop_values") or ()),
                             key=f"ee_form_crop_{v}", help="only for 'User asset' labels: the class value(s) meaning crop, e.g. 10")
        nodata = d5.text_input("No-data value(s) (User asset)",
                               ",".join(str(v) for v in labels.get("nodata_values") or ()), key=f"ee_form_nodata_{v}",
                               help="only for 'User asset' labels: the class value(s) meaning no data, never trained "
                                    "on or scored, e.g. GLC30's 0,255 (masked pixels are no data anyway); every "
                                    "other value is not crop")
        if not st.form_submit_button("Use Earth Engine with these settings"):
            return None
    composite = {"sensor": sensor, "start": start.isoformat(), "end": end.isoformat(), "max_cloud": float(cloud),
                 "scale": float(scale)}
    if product == NO_LABELS:
        return {"composite": composite, "labels": None}
    label_settings: dict = {"product": product}
    if product in ("glcfcs30d", "cdl"):
        label_settings["year"] = _whole(year, "label year") if year.strip() else _composite_year(product, start.year)
    if product == "asset":
        label_settings["asset_id"] = asset.strip() or None
        label_settings["crop_values"] = [_whole(v, "crop value") for v in crop.split(",") if v.strip()]
        label_settings["nodata_values"] = [_whole(v, "no-data value") for v in nodata.split(",") if v.strip()]
    return {"composite": composite, "labels": label_settings}


def _version(current: dict | None) -> str:
    """A short id of the settings the form is filled from, part of every widget key: when the
    source's settings change (e.g. the Camana preset was picked) the widgets are new ones and show
    the settings in use, not what was typed before. Stored under ``ee_form__v``; old keys are dropped."""
    v = hashlib.sha1(json.dumps(current, sort_keys=True, default=str).encode()).hexdigest()[:8]
    for key in [k for k in st.session_state if str(k).startswith("ee_form_") and not str(k).endswith(v)]:
        del st.session_state[key]
    st.session_state[VERSION] = v
    return v


def _composite_year(product: str, year: int) -> int:
    """The composite's ``year`` for an empty label year, if ``product`` has a map for it.

    Raises:
        ConfigError: it has none (the message says the year came from the composite, and which to enter).
    """
    first, last = year_span(product)
    if not first <= year <= last:
        nearest = min(max(year, first), last)
        raise ConfigError(f"the label year is empty, so the composite's year {year} was taken, but {PRODUCTS[product][0].split(' (')[0]} "
                          f"has maps for {first}-{last}: enter a label year (e.g. {nearest}) or change the dates")
    return year


def _whole(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ConfigError(f"{what} must be a whole number, got {text.strip()!r}") from None


def describe(settings: dict) -> str:
    """One line for the Region page: the imagery and labels that Earth Engine ``settings`` fetch."""
    comp, labels = settings.get("composite") or {}, settings.get("labels")
    sensor = SENSORS[comp["sensor"]].title if comp.get("sensor") in SENSORS else comp.get("sensor", "?")
    scale = comp.get("scale") or (SENSORS[comp["sensor"]].scale if comp.get("sensor") in SENSORS else None)
    text = (f"{sensor}, median of {comp.get('start')} to {comp.get('end')}, scenes under {comp.get('max_cloud', 20):g}% "
            "cloud" + (f", {scale:g} m pixels" if scale else ""))
    if not labels:
        return text + "; no labels"
    name = PRODUCTS[labels["product"]][0] if labels.get("product") in PRODUCTS else labels.get("product", "?")
    year = labels.get("year")
    return text + f"; labels: {name}" + (f", {year}" if year and labels.get("product") in ("glcfcs30d", "cdl") else "")
