"""The map of a region's results (Data, Predict, Quality): its layers over the image around the
region, the region's outline, the legends inside it and the note on pixels without data under it."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import streamlit as st

from core.inspect import describe_pixel, pixel_at, place
from core.overlays import Overlay, map_bounds
from pages.components import cached, mapview, scene, state, ui


def show(sc, grid, offset: tuple[int, int], valid: np.ndarray, overlays: Sequence[Overlay],
         opacities: dict[str, float], key: str, dynamic: Sequence[Overlay] = (),
         inspect: Callable[[int, int], str] | None = None, label: str = "Map of the region") -> None:
    """Draw the map of scene ``sc`` (its ``grid``, drawn at ``offset`` in image coordinates, ``valid``
    its pixels with data): ``overlays`` bottom first (and ``dynamic``, see :class:`mapview.MapSpec`)
    over the image around the region (a local source's; see :func:`scene.map_view`), with the layers'
    legends inside the map at their ``opacities``, and under it, where the region has pixels without
    data, a line naming their light grey. With ``inspect`` (row, col -> a line on that pixel of the scene,
    e.g. :func:`core.inspect.describe_pixel`), a click on the map marks the pixel and says what its
    layers hold there, inside the map (:class:`mapview.MapSpec` ``readout``). ``label``: what the map
    shows, for a screen reader."""
    with ui.errors_shown(stop=True):
        view, under = scene.map_view(grid, offset)
        region = scene.current_region() if under else None
        outline = region.outline_geojson(mapview.outline_tolerance(region)) if region is not None else None
    readout, box = None, map_bounds(grid, offset)  # (the map takes clicks in the box)
    if inspect is not None:  # the click that ran this page, read before the map is drawn: its reading goes with it
        clicked = fresh_click(key, (str(sc.image_path), grid.crs))
        lng, lat = clicked.get("lng"), clicked.get("lat")
        with ui.errors_shown():  # (on every run, clicked or not: it holds a place in the page, see errors_shown)
            if isinstance(lng, (int, float)) and isinstance(lat, (int, float)):
                pixel = pixel_at(float(lng), float(lat), grid, offset)
                if pixel is not None:
                    # a region's scene leaves the pixels outside its outline without data: over the image
                    # shown around it, such a pixel is not "no image data; no label" (it has both)
                    said = (inspect(*pixel) if valid[pixel] or not under else
                            "no data of the region here (outside its outline, or a gap in the image).")
                    readout = (f"{place(float(lng), float(lat), *pixel, grid, offset)}: {said}", float(lat), float(lng))
                elif box[0][0] <= lat <= box[1][0] and box[0][1] <= lng <= box[1][1]:
                    # a corner of a turned (e.g. UTM) scene's lon/lat box, outside its pixels: the map
                    # waited for a reading ("Reading the pixel...") for good
                    readout = ("No pixel of the region here: click inside it", float(lat), float(lng))
    mapview.render(mapview.MapSpec(bounds=view, image=not grid.georeferenced, overlays=[*under, *overlays],
                                   opacities=opacities, dynamic=dynamic, region_geojson=outline,
                                   click_marker=box if inspect else None, readout=readout,
                                   keep_view=True, label=label),
                   key=key, returned_objects=["last_clicked"] if inspect else ())
    if note := scene.nodata_note(sc, valid):
        st.caption(note)


def fresh_click(key: str, shown: tuple) -> dict:
    """The last click on the map ``key`` ({"lat", "lng"}), or {} where it was made on another scene
    than ``shown`` (its image and CRS): the browser keeps a map's last click and sends it again, e.g.
    after another image was chosen, where a point in the sample's pixels is no place on the new map."""
    clicked = (mapview.returned(key) or {}).get("last_clicked") or {}
    clicks = dict(state.get(state.MAP_CLICKS))
    scene_then, stale = clicks.get(key) or (None, None)
    if list(shown) != scene_then:  # (kept as a list, as JSON would give it back)
        clicks[key] = [list(shown), clicked or None]
        state.put(state.MAP_CLICKS, clicks)
        return {} if scene_then is not None else clicked
    return {} if clicked == stale else clicked


def pixel_reader(sc, features: np.ndarray, valid: np.ndarray, probability: np.ndarray | None = None,
                 threshold: float | None = None) -> Callable[[int, int], str]:
    """What a click on the map of scene ``sc`` reads (see :func:`show`): its image (``features``,
    ``valid``), its labels and the label product's classes where it has them, and a prediction's
    ``probability`` at ``threshold``. The labels are read on the first click."""
    def read(row: int, col: int) -> str:
        labels = codes = None
        if sc.labels_path is not None and sc.label_map is not None:
            path = str(sc.labels_path)
            labels = cached.label_mask(path, cached.mtime(path), sc.label_map)
        classes = scene.class_codes(sc)
        if classes is not None:
            codes = cached.label_codes(classes[0], cached.mtime(classes[0]), classes[1])
        return describe_pixel(row, col, features, valid, probability, threshold, labels, codes,
                              classes[1] if classes else None)

    return read
