"""The prediction's downloads made from arrays in memory: the probability and crop mask GeoTIFFs and
the map view PNG (:mod:`core.mapimage`), as the dashboard offers them (the CLI writes its files with
:mod:`core.predict`)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from core.errors import InvalidDataError
from core.grid import Grid
from core.mapimage import compose_png, part_outlines
from core.overlays import (Legend, band_limits, class_legend, crop_colour, downsample_step, gradient_legend, hatch_gaps,
                           hex_colour, probability_colour, true_colour, with_opacity)

#: The map view PNG's image outside a region's outline: faded over white, as the web map dims it.
SURROUNDINGS_OPACITY = 0.4
#: Its legend swatch: a mid grey faded as the image is.
FADED_SWATCH = (200, 200, 200)


def geotiff_bytes(array: np.ndarray, grid: Grid, nodata: float | None, description: str,
                  tags: Mapping[str, str] | None = None, overview_resampling: str = "nearest") -> bytes:
    """A single-band Cloud Optimized GeoTIFF (DEFLATE, with overviews made by ``overview_resampling``,
    as ``python -m core predict`` writes its outputs) of ``array`` on ``grid`` (no CRS when the grid
    has none), with the dataset ``tags`` (e.g. :func:`core.predict.provenance_tags`).

    Raises:
        InvalidDataError: if the array does not match the grid.
    """
    if array.shape != grid.shape:
        raise InvalidDataError(f"array {array.shape} does not match the grid {grid.shape}")
    from affine import Affine
    from rasterio.io import MemoryFile

    profile = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": array.dtype.name,
        "transform": Affine(*grid.transform),
        "compress": "DEFLATE",
        "level": 1,  # (as predict's COGs: twice as fast as level 6, files ~15% larger)
        "num_threads": "ALL_CPUS",
        "nodata": nodata,
        "overview_resampling": overview_resampling,
    }
    if grid.crs is not None:
        profile["crs"] = grid.crs
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(array, 1)
            dst.set_band_description(1, description)
            if tags:
                dst.update_tags(**tags)
        return mem.read()


def probability_download(prob: np.ndarray, grid: Grid, tags: Mapping[str, str] | None = None) -> bytes:
    """The probability GeoTIFF the dashboard offers: uint8 percent, 255 = no data; ``tags`` as for
    :func:`geotiff_bytes`."""
    from core.predict import PROBABILITY_DESCRIPTION, probability_to_uint8

    return geotiff_bytes(probability_to_uint8(prob), grid, 255, PROBABILITY_DESCRIPTION, tags, "average")


def threshold_downloads(features: np.ndarray, valid: np.ndarray, prob: np.ndarray, grid: Grid, threshold: float,
                        title: str, credit: str = "", probability_opacity: float | None = None,
                        crop_opacity: float | None = 0.6, caveat: str = "",
                        surroundings: tuple[np.ndarray, np.ndarray] | None = None,
                        area_unit: str = "hectares",
                        parts: Sequence[tuple[str, tuple[int, int], np.ndarray]] = (),
                        tags: Mapping[str, str] | None = None, pixel_size_m: float | None = None) -> dict[str, bytes]:
    """The downloads that change with the threshold: ``crop_mask.tif`` (as :func:`core.predict.threshold_mask`;
    its dataset ``tags`` as for :func:`geotiff_bytes`, and the threshold)
    and ``map.png``, the map view (true colour under the probability and crop layers at the map's
    opacities, a layer left out where its opacity is None; titled, with the data ``credit``),
    coloured from every n-th pixel where the image is larger than the PNG (at most ``MAX_SIDE`` px a side),
    with the crop area (in ``area_unit``; an image without a CRS: its pixels, and their area at its stated
    ``pixel_size_m`` if any) and the grid's CRS under the title (:func:`core.metrics.describe_crop`), and
    ``caveat`` after them (e.g. the model's resolution warning: a handout must not lose it). Pixels
    without image data are grey hatching, as on the web map, and the legend says so. ``surroundings``
    (features, valid of the image at the same pixels, or at every n-th as the PNG takes them,
    :func:`core.sources.base.scene_surroundings`):
    the image outside a region's outline, shown faded as on the web map (it was the same light grey
    as the gaps in the data), and named in the legend. ``parts`` (as :func:`core.mapimage.part_outlines` takes them)
    of a region of several: each outlined and named, as on the web map (a handout of a
    farm's fields). An image with a CRS gets a scale bar.

    Raises:
        ConfigError: an unknown ``area_unit``; InvalidDataError: ``surroundings`` not at the image's pixels.
    """
    from core.metrics import crop_area, crop_rule, describe_crop
    from core.predict import MASK_DESCRIPTION, mask_tags, threshold_mask

    mask = threshold_mask(prob, threshold)
    figures = describe_crop(crop_area(mask, grid.pixel_area_ha()), grid, area_unit, pixel_size_m)
    if caveat:
        figures = f"{figures.rstrip('.')}. Caution: {caveat.rstrip('.')}."
    step = downsample_step(valid.shape)
    f, v, p = features[::step, ::step], valid[::step, ::step], prob[::step, ::step]
    outside = np.zeros_like(v)
    limits = None
    if surroundings is not None:  # one stretch for the region and the image around it, as on the web map
        sf, sv = surroundings
        if sv.shape == valid.shape != v.shape:  # (at the image's pixels, not yet every step-th: scene_surroundings(..., step))
            sf, sv = sf[::step, ::step], sv[::step, ::step]
        if sv.shape != v.shape:
            raise InvalidDataError(f"the image around the region ({sv.shape}) is neither on the region's pixels "
                                   f"{valid.shape} nor on every {step}th of them {v.shape}")
        outside = sv & ~v
        limits = band_limits(sf, sv | v)
    layers, legends, fades = [true_colour(f, v, limits)], [], []
    if outside.any():
        layers.insert(0, with_opacity(true_colour(sf, outside, limits), SURROUNDINGS_OPACITY))
        legends.append(Legend("Faded", items=(("outside the region", hex_colour(FADED_SWATCH)),)))
        fades.append(1.0)
    if not (v | outside).all():  # as on the map: grey hatching
        layers.insert(0, hatch_gaps(np.zeros(v.shape + (4,), np.uint8), v | outside))
        legends.append(class_legend("Grey hatching", ["no image data"]))
        fades.append(1.0)
    if probability_opacity is not None:
        layers.append(with_opacity(probability_colour(p), probability_opacity))
        legends.append(gradient_legend("Crop probability", "probability", "0", "1"))
        fades.append(probability_opacity)
    if crop_opacity is not None:
        layers.append(with_opacity(crop_colour(p, threshold), crop_opacity))
        legends.append(class_legend(f"Crop ({crop_rule(threshold)})", ["predicted crop"]))
        fades.append(crop_opacity)
    names = []
    if parts:
        lines, names = part_outlines(parts, v.shape, step)
        layers.append(lines)
    width = grid.pixel_width_m()  # (along the rows, as the bar is drawn: not the side of a square of the area)
    side = width * step if width is not None else None
    png = compose_png(layers, legends, title, credit=credit, subtitle=figures, legend_opacities=fades,
                      metres_per_px=side, labels=names)
    return {"crop_mask.tif": geotiff_bytes(mask, grid, 255, MASK_DESCRIPTION, mask_tags(tags, threshold) if tags else None,
                                           "mode"),
            "map.png": png}
