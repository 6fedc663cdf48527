"""The map of a region's results (Data, Predict, Quality): its layers over the image around the
region, the region's outline, the legends and the note on pixels without data under it."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import streamlit as st

from core.overlays import Overlay
from pages.components import mapview, scene, ui


def show(sc, grid, offset: tuple[int, int], valid: np.ndarray, overlays: Sequence[Overlay],
         opacities: dict[str, float], key: str, legends: Sequence[Overlay], dynamic: Sequence[Overlay] = ()) -> None:
    """Draw the map of scene ``sc`` (its ``grid``, drawn at ``offset`` in image coordinates, ``valid``
    its pixels with data): ``overlays`` bottom first (and ``dynamic``, see :class:`mapview.MapSpec`)
    over the image around the region (a local source's; see :func:`scene.map_view`), then the
    legends of ``legends`` at their ``opacities`` and, where the region has pixels without data, a
    line naming their light grey."""
    with ui.errors_shown(stop=True):
        view, under = scene.map_view(sc, grid, offset)
        outline = scene.current_region().to_map_geojson() if under else None
    mapview.render(mapview.MapSpec(bounds=view, image=not grid.georeferenced, overlays=[*under, *overlays],
                                   opacities=opacities, dynamic=dynamic, region_geojson=outline), key=key)
    st.markdown(mapview.legends_html(legends, opacities), unsafe_allow_html=True)
    if note := scene.nodata_note(sc, valid):
        st.caption(note)
