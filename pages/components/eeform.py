"""The Earth Engine settings form of the Region page: sensor, dates, clouds, label product.

It only draws the widgets: :mod:`core.ee.settings` gives what they start from and makes the
settings of what was entered; :func:`core.sources.earthengine.recipes_from_settings` validates them.
Widget keys are ``ee_form_<name>_<version>`` (see :func:`_version`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import streamlit as st

from core.ee.composites import SENSORS
from core.ee.labels import PRODUCTS
from core.ee.settings import NO_LABELS, form_defaults, settings_from_form

VERSION = "ee_form__v"  # see _version


def settings_form(current: dict | None) -> dict | None:
    """Draw the form (prefilled from ``current`` settings); the settings dict when submitted, else None.

    Raises:
        ConfigError: if the label year or a crop value is not a whole number, or an empty label
            year takes a composite year the product has no map for.
    """
    v = _version(current)
    d = form_defaults(current)
    sensors = list(SENSORS)
    products = [*PRODUCTS, NO_LABELS]
    # without a max_value, Streamlit caps a date input at ten years after its first value
    first, last = dt.date(1984, 1, 1), dt.date.today()
    with st.form(f"ee_form_{v}", enter_to_submit=False):
        c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1])
        sensor = c1.selectbox("Sensor", sensors, index=sensors.index(d["sensor"]),
                              format_func=lambda k: SENSORS[k].title, key=f"ee_form_sensor_{v}")
        start = c2.date_input("From", d["start"], key=f"ee_form_start_{v}", min_value=first, max_value=last)
        end = c3.date_input("To", d["end"], key=f"ee_form_end_{v}", min_value=first, max_value=last)
        cloud = c4.number_input("Cloud cover under %", 1.0, 100.0, d["max_cloud"], 5.0, format="%g",
                                key=f"ee_form_cloud_{v}")
        scale = c5.number_input("Pixel size (m)", 10.0, 1000.0, d["scale"], 10.0,
                                format="%g", key=f"ee_form_scale_{v}",
                                help="the grid the imagery and labels are fetched on. The shipped model was trained "
                                     "on 30 m Landsat pixels: keep 30 m for it (Sentinel-2's reflectance is then averaged "
                                     "over its 10 m pixels, and 10 m labels take their most frequent class); a "
                                     "coarser size fits a larger region into one direct download")
        d1, d2, d3, d4, d5 = st.columns([2, 1, 1, 1, 1])
        product = d1.selectbox("Labels", products, index=products.index(d["product"]),
                               format_func=lambda k: "no labels" if k == NO_LABELS else PRODUCTS[k][0],
                               key=f"ee_form_labels_{v}")
        year = d2.text_input("Label year (GLC-FCS30D, CDL)", d["year"], key=f"ee_form_year_{v}",
                             placeholder="composite's year",
                             help="which annual map of GLC-FCS30D or CDL (empty: the year the composite starts); the other "
                                  "products have no year to choose. CDL maps every state of the contiguous US from "
                                  "2008, some states only before")
        asset = d3.text_input("Asset id (User asset)", d["asset_id"], key=f"ee_form_asset_{v}",
                              help="only for 'User asset' labels: an image asset, e.g. users/me/glc30")
        crop = d4.text_input("Crop value(s) (User asset)", d["crop_values"], key=f"ee_form_crop_{v}",
                             help="only for 'User asset' labels: the class value(s) meaning crop, e.g. 10")
        nodata = d5.text_input("No-data value(s) (User asset)", d["nodata_values"], key=f"ee_form_nodata_{v}",
                               help="only for 'User asset' labels: the class value(s) meaning no data, never trained "
                                    "on or scored, e.g. GLC30's 0,255 (masked pixels are no data anyway); every "
                                    "other value is not crop")
        if not st.form_submit_button("Use Earth Engine with these settings"):
            return None
    return settings_from_form(sensor=sensor, start=start, end=end, max_cloud=cloud, scale=scale, product=product,
                              year=year, asset_id=asset, crop_values=crop, nodata_values=nodata)


def _version(current: dict | None) -> str:
    """A short id of the settings the form is filled from, part of every widget key: when the
    source's settings change (e.g. the Camana preset was picked) the widgets are new ones and show
    the settings in use, not what was typed before. Stored under ``ee_form__v``; old keys are dropped."""
    v = hashlib.sha1(json.dumps(current, sort_keys=True, default=str).encode()).hexdigest()[:8]
    for key in [k for k in st.session_state if str(k).startswith("ee_form_") and not str(k).endswith(v)]:
        del st.session_state[key]
    st.session_state[VERSION] = v
    return v
