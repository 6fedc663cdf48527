"""The table of a region's parts (a file of fields, farms or districts): the labels' crop of each on
the Data page, the predicted crop on the Predict page, and its agreement with the labels on the
Quality page (core.zones)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.metrics import area_text
from core.region import Region
from core.zones import ZoneArea, label_zones_csv, zones_csv
from pages.components import cached, state, ui


def _amount(ha: float | None, pixels: int | None, georeferenced: bool) -> str:
    if pixels is None:
        return "n/a"
    return area_text(ha if georeferenced else None, pixels, state.area_unit())


def score_text(value: float | None) -> str:
    """A score to 3 decimals, "n/a" where it is undefined (None)."""
    return f"{value:.3f}" if value is not None else "n/a"


def several(region: Region) -> bool:
    """Whether the region has parts to tell apart (features of a file, :meth:`Region.part_regions`)."""
    return len(region.part_regions()) > 1


def rows(region: Region, key: tuple, threshold: float, offset: tuple[int, int],
         labels: tuple[str, float, str] | None = None) -> list[dict]:
    """The parts' figures (core.zones.ZoneArea as dicts; cached). Raises CropMapError subclasses."""
    return cached.zone_areas(key, float(threshold), json.dumps(region.to_geojson()), offset, labels)


def _table(found: list[dict], table: dict, caption: str, what: str, file_name: str, labels_only: bool = False) -> None:
    """``table`` (its columns after "part"; a note column where a part has one), ``caption`` under it,
    and the parts' CSV download ("``what`` by part CSV", saved as ``file_name``; ``labels_only``: rows of
    a label mask, in the ``label_*`` columns)."""
    table = {"part": [r["name"] for r in found], **table}
    if any(r["note"] for r in found):
        table["note"] = [r["note"] for r in found]
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    st.caption(caption)
    rows = [ZoneArea(**r) for r in found]
    st.download_button(f"{what} by part CSV", label_zones_csv(rows) if labels_only else zones_csv(rows), file_name,
                       "text/csv", on_click="ignore")


def _share(found: list[dict]) -> list[str]:
    return [f"{r['crop_fraction']:.1%}" if r["crop_fraction"] is not None else "n/a" for r in found]


def show(region: Region, key: tuple, threshold: float, offset: tuple[int, int], georeferenced: bool,
         labels: tuple[str, float, str] | None = None, file_tag: str = "") -> None:
    """The parts' table (nothing for a region of one polygon) with its CSV download; with ``labels``
    (path, mtime, label map) the labels' crop, IoU and F1 of each part."""
    if not several(region):
        return
    what = "Agreement" if labels else "Crop"
    st.divider()
    st.markdown(f"**{what} by part of the region** at threshold {threshold:.2f}")
    with ui.errors_shown():
        found = rows(region, key, threshold, offset, labels)
        # beside the labels: over the pixels valid in both, as the region's line (a part's pixels without a
        # label counted its predicted crop and not the labels')
        table = {"predicted crop": [_amount(r["compared_crop_area_ha"], r["compared_crop_pixels"], georeferenced)
                                    if labels else _amount(r["crop_area_ha"], r["crop_pixels"], georeferenced)
                                    for r in found]}
        if labels:
            table["crop in the labels"] = [_amount(r["label_crop_area_ha"], r["label_crop_pixels"], georeferenced)
                                           for r in found]
            table["IoU"] = [score_text(r["iou"]) for r in found]
            table["F1"] = [score_text(r["f1"]) for r in found]
        else:
            table["crop share"] = _share(found)
            table["with data"] = [_amount(r["valid_area_ha"], r["valid_pixels"], georeferenced) for r in found]
        caption = ("Each part counts the pixels whose centre lies inside it (parts that overlap both count theirs)"
                   + ("; the crop, the labels' crop and the scores are over its pixels with both data and a label"
                      if labels else
                      "; the crop share is of its pixels with data")
                   + ("." if georeferenced else ". Not georeferenced: in pixels."))
        _table(found, table, caption, what, f"{what.lower()}_by_part{'_' + file_tag if file_tag else ''}.csv")


def show_labels(region: Region, labels: tuple[str, float, str], image: tuple[str, float], offset: tuple[int, int],
                georeferenced: bool) -> None:
    """The labels' crop in each part (nothing for a region of one polygon), with its CSV download."""
    if not several(region):
        return
    st.markdown("**Crop in the labels by part of the region**")
    with ui.errors_shown():
        found = cached.zone_label_areas(labels, image, json.dumps(region.to_geojson()), offset)
        table = {"crop (labels)": [_amount(r["crop_area_ha"], r["crop_pixels"], georeferenced) for r in found],
                 "crop share": _share(found),
                 "labelled": [_amount(r["valid_area_ha"], r["valid_pixels"], georeferenced) for r in found]}
        caption = "Over each part's pixels with both image data and a label" + (
            "." if georeferenced else "; not georeferenced: in pixels.")
        _table(found, table, caption, "Labels", "labels_by_part.csv", labels_only=True)
