"""core.ee.settings: a form's first values, the settings made from what was entered, one line for them."""

from __future__ import annotations

import datetime as dt

import pytest

from core.ee.presets import CAMANA
from core.ee.settings import NO_LABELS, describe, form_defaults, settings_from_form
from core.errors import ConfigError
from core.sources.earthengine import recipes_from_settings

FORM = dict(sensor="L8", start=dt.date(2021, 1, 1), end=dt.date(2021, 12, 31), max_cloud=20, scale=30)


def test_defaults_without_settings_are_a_landsat_8_year_with_worldcover():
    d = form_defaults(None)
    assert (d["sensor"], d["start"], d["end"], d["product"]) == ("L8", dt.date(2020, 1, 1), dt.date(2020, 12, 31),
                                                                 "worldcover")
    assert d["scale"] == 30.0 and d["year"] == "" and d["crop_values"] == ""


def test_defaults_show_a_label_year_only_when_it_is_not_the_composites():
    own = {"composite": {"sensor": "L5", "start": "2005-01-01", "end": "2006-12-31"},
           "labels": {"product": "glcfcs30d", "year": 2005}}
    assert form_defaults(own)["year"] == ""  # follows the dates when they change
    other = {**own, "labels": {"product": "glcfcs30d", "year": 2010}}
    assert form_defaults(other)["year"] == "2010"


def test_defaults_of_settings_without_labels_keep_no_labels():
    """A source set to fetch no labels is shown as such again, not as WorldCover."""
    d = form_defaults({"composite": {"sensor": "S2", "start": "2021-01-01", "end": "2021-12-31"}, "labels": None})
    assert d["product"] == NO_LABELS and d["sensor"] == "S2"


def test_defaults_and_form_round_trip_a_user_asset():
    current = {"composite": {"sensor": "L8", "start": "2021-01-01", "end": "2021-12-31", "max_cloud": 35.0,
                             "scale": 60.0},
               "labels": {"product": "asset", "asset_id": "users/me/glc30", "crop_values": [10],
                          "nodata_values": [0, 255]}}
    d = form_defaults(current)
    assert (d["asset_id"], d["crop_values"], d["nodata_values"]) == ("users/me/glc30", "10", "0,255")
    assert settings_from_form(**d) == current


def test_an_empty_year_of_a_yearly_product_is_the_composites():
    made = settings_from_form(**FORM, product="cdl", year="  ")
    assert made["labels"] == {"product": "cdl", "year": 2021}
    assert made["composite"] == {"sensor": "L8", "start": "2021-01-01", "end": "2021-12-31", "max_cloud": 20.0,
                                 "scale": 30.0}
    recipes_from_settings(made)  # valid recipes


def test_an_empty_year_outside_the_products_maps_says_which_to_enter():
    with pytest.raises(ConfigError, match=r"composite's year 2024 was taken, .* 1985, 1990, 1995 and 2000-2022: "
                                          r"enter a label year \(e.g. 2022\)"):
        settings_from_form(**{**FORM, "start": dt.date(2024, 1, 1)}, product="glcfcs30d")


def test_an_empty_year_between_glc_fcs30d_five_yearly_maps_says_which_to_enter():
    """GLC-FCS30D has maps for 1985, 1990 and 1995, then each year from 2000: a composite of 1992 was taken
    as the label year (within 1985-2022), and refused later as if 1992 had been entered."""
    landsat_5 = {**FORM, "sensor": "L5", "end": dt.date(1992, 12, 31)}
    with pytest.raises(ConfigError, match=r"the label year is empty, so the composite's year 1992 was taken, but "
                                          r"GLC-FCS30D annual has maps for 1985, 1990, 1995 and 2000-2022: enter a "
                                          r"label year \(e.g. 1990\) or change the dates"):
        settings_from_form(**{**landsat_5, "start": dt.date(1992, 1, 1)}, product="glcfcs30d")
    made = settings_from_form(**{**landsat_5, "start": dt.date(1995, 1, 1), "end": dt.date(1995, 12, 31)},
                              product="glcfcs30d")
    assert made["labels"] == {"product": "glcfcs30d", "year": 1995}
    recipes_from_settings(made)


@pytest.mark.parametrize("field, value, said", [("year", "twenty", "label year must be a whole number, got 'twenty'"),
                                                ("crop_values", "10, x", "crop value must be a whole number, got 'x'"),
                                                ("nodata_values", "1.5", "no-data value must be a whole number, got '1.5'")])
def test_text_that_is_not_a_whole_number_is_named(field, value, said):
    product = "cdl" if field == "year" else "asset"
    with pytest.raises(ConfigError, match=said):
        settings_from_form(**FORM, product=product, **{field: value})


def test_products_without_a_year_or_asset_take_none_and_no_labels_is_none():
    made = settings_from_form(**FORM, product="worldcover", year="2019", asset_id="users/me/x", crop_values="3")
    assert made["labels"] == {"product": "worldcover"}
    assert settings_from_form(**FORM, product=NO_LABELS)["labels"] is None


def test_describe_names_sensor_dates_clouds_pixels_and_labels():
    settings = {"composite": {"sensor": CAMANA.composite.sensor, "start": "2005-01-01", "end": "2006-12-31",
                              "max_cloud": 20.0, "scale": 30.0},
                "labels": {"product": "glcfcs30d", "year": 2005}}
    assert describe(settings) == ("Landsat 5 TM, median of 2005-01-01 to 2006-12-31, scenes under 20% cloud, 30 m pixels; "
                                  "labels: GLC-FCS30D annual (1985-2022), 2005")
    assert describe({**settings, "labels": None}).endswith("30 m pixels; no labels")
    assert describe({"composite": {"sensor": "X9", "start": "a", "end": "b"}, "labels": {"product": "mine"}}) == (
        "X9, median of a to b, scenes under 20% cloud; labels: mine")
    # a user asset by its id and crop values (the 2019 notebook's GLC30 asset), which nothing outside the form said
    asset = {"product": "asset", "asset_id": "users/me/glc30", "crop_values": [10, 20], "nodata_values": [0]}
    assert describe({**settings, "labels": asset}).endswith("; labels: user asset users/me/glc30, crop = 10, 20")
