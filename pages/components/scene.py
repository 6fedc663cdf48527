"""From session state to core objects: the source, the region and the fetched scene.

Every function raises :class:`core.errors.CropMapError` subclasses for the page to show.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from core.errors import ConfigError, CropMapError, EarthEngineError, RegionError
from core.overlays import Bounds, Overlay, focus_bounds, map_bounds, window_map_bounds
from core.bbox import box_within, image_box_bounds, parse_bbox
from core.bbox import box_text as bounds_text
from core.ee.presets import CAMANA
from core.geometry import LONLAT_CRS, clipped_to_box
from core.region import Region
from core.region_check import box_advice, read_uploaded_region, upload_advice
from core.sources.base import Progress, Scene
from core.sources.local import LocalSource
from pages.components import cached, state

#: the layer of a local image around a scene, under the scene's own layers (see :func:`map_view`)
SURROUNDINGS = "Surroundings (the image around the region)"
UNDER_WHOLE_IMAGE = "The image under the layers (its gaps in grey hatching)"
SURROUNDINGS_OPACITY = 0.5


def source_from_spec(spec: dict):
    """The :class:`core.sources.base.Source` described by a source spec.

    Raises:
        EarthEngineError: for the Earth Engine source when it is not available.
        InputNotFoundError, InvalidDataError: for a local source with missing files.
        ConfigError: a spec of an unknown kind.
    """
    kind = spec.get("kind", "sample")
    if kind == "sample":
        return LocalSource.sample()
    if kind == "local":
        return LocalSource(spec["image"], spec.get("labels"), spec.get("label_map"), spec.get("title"),
                           band_map=spec.get("band_map"))
    if kind == "earthengine":
        status = cached.ee_status()
        if not status["ok"]:
            raise EarthEngineError(status["message"])
        try:
            from core.sources.earthengine import EarthEngineSource, recipes_from_settings
        except ImportError as err:
            raise EarthEngineError(f"the Earth Engine source cannot be loaded ({err.name} is missing)") from None
        if spec.get("settings"):
            composite, labels = recipes_from_settings(spec["settings"])
            return EarthEngineSource(composite, labels, secrets=cached.secrets(), reuse=True)
        return EarthEngineSource(preset=spec.get("preset"), secrets=cached.secrets(), reuse=True)
    raise ConfigError(f"unknown data source {kind!r}")


def current_source():
    """The source in session state (see :func:`source_from_spec`)."""
    return source_from_spec(state.get(state.SOURCE))


def check_current_region(region: Region):
    """The current source's RegionCheck of ``region`` (cached). Raises as :func:`source_from_spec`."""
    spec = state.get(state.SOURCE)
    image = spec.get("image")
    return cached.region_check(json.dumps(spec, sort_keys=True), json.dumps(region.to_geojson(), sort_keys=True),
                               cached.mtime(image) if image else None)


def require_usable_region(region: Region | None = None) -> None:
    """Raise unless the current source can use ``region`` (default: the current region); cheap:
    nothing is fetched.

    Raises:
        RegionError: why it cannot (outside the image, too small, too large, lon/lat on an image
            without a place on Earth...); CropMapError from the source.
    """
    check = check_current_region(region or current_region())
    if not check.ok:
        raise RegionError(check.message)


def use_uploaded_region(data: bytes, name: str) -> list[str]:
    """Make an uploaded GeoJSON the region, if the current source can use it. Returns the names of
    its features left out for holding no polygon (:func:`core.geojson.features_without_area`).

    Raises:
        RegionError: the file is not a usable polygon, or the source cannot use it (outside the
            image, lon/lat on an image without a place on Earth, too small or too large); the
            region in use is kept.
    """
    grid = current_source().grid() if is_local() else None
    region = None
    try:
        region = read_uploaded_region(data, name, grid)
        require_usable_region(region)
    except RegionError as err:
        said = upload_advice(str(err).rstrip("."), region, grid, data)
        raise RegionError(f"the file {name} cannot be used: {said}. The region in use is kept.") from None
    state.set_region(region.to_geojson())
    return list(region.left_out)


def box_in_use(text: str, in_use: Region, whole: bool = False) -> bool:
    """Whether the box typed as ``text`` is the region ``in_use`` as the box field shows it
    (:func:`box_text`, however its numbers are written: "100,100,108,108" is "100, 100, 108, 108", and
    to the field's decimals: a box kept to more, or cut to a georeferenced image's extent, is the one
    shown), where that region is a box or the ``whole`` image; False for text that is no box
    (:func:`use_box` says why) and for a region of another shape (the box around a drawing makes the box
    the region)."""
    try:
        typed = parse_bbox(text, in_use.is_image)
    except RegionError:
        return False
    if bounds_text(typed, in_use.is_image) != box_text(in_use):
        return False
    return whole or Region.from_bbox(*in_use.bounds, crs=in_use.crs).polygons == in_use.polygons


def use_box(text: str, image: bool) -> str | None:
    """Make the box typed as ``text`` (:func:`core.bbox.parse_bbox`: west, south, east, north in
    degrees, or with ``image`` the left, top, right and bottom edges in pixels) the region, if the
    current source can use it: cut to a local image's edges (:func:`core.bbox.box_within`; the map
    then looks at the image, not at the box). Returns a note to show where it was cut, else None.

    Raises:
        RegionError: not a box, or the source cannot use it (outside the image: its edges, and a hint
            where the numbers look like latitude first); the region in use is kept.
    """
    try:
        box = parse_bbox(text, image)
        bounds = _box_bounds(image)
        box, cut = box_within(box, bounds, image)
        region = Region.from_bbox(*box, crs="image" if image else LONLAT_CRS, name="box")
        check = check_current_region(region)
        # (its advice is for a drawing; one too large to fetch is kept, as a drawing is, for a batch export:
        # refused, the advice to export it led nowhere, the Earth Engine page exporting the region in use)
        if not check.ok and not check.batch_only:
            raise RegionError(box_advice(check.message))
    except RegionError as err:
        raise RegionError(f"this box cannot be used: {str(err).rstrip('.')}. The region in use is kept.") from None
    state.set_region(region.to_geojson(), remember=current_region_usable())
    if not cut:
        return None
    # (a projected image lies turned against the meridians: its box in degrees reaches past its corners, whose
    # slivers the Region page then says are left out; "cut to the image's edges" contradicted that)
    return (f"The box was cut to the image's edges: {box_text(region)}." if image else
            f"The box was cut to the image's extent in longitude and latitude: {box_text(region)}.")


def _box_bounds(image: bool) -> tuple[float, float, float, float] | None:
    """The edges of the current local image, in a typed box's terms (its pixels, or its lon/lat box);
    None for Earth Engine (any place on Earth), an image across the 180th meridian or one without a
    place on Earth."""
    return image_box_bounds(current_source().grid(), image) if is_local() else None


def imagery_dates() -> tuple[str, str] | None:
    """The first and last day (ISO) of the imagery of the current source: an Earth Engine composite's
    date range; None for a local image (its dates are not known)."""
    composite = getattr(current_source(), "composite", None)
    start, end = getattr(composite, "start", None), getattr(composite, "end", None)
    return (str(start), str(end)) if start and end else None


def current_region_usable() -> bool:
    """Whether the current source can use the current region."""
    try:
        require_usable_region()
    except CropMapError:
        return False
    return True


def box_text(region: Region) -> str:
    """The bounds of ``region`` as :func:`use_box` takes them (:func:`core.bbox.box_text`): of its part
    on a local image, where a part of it lies beyond (a file's polygon far off: the box of all of them,
    used, made the region 68 times larger)."""
    bounds = region.bounds
    edges = _box_bounds(region.is_image)
    if edges is not None and not (edges[0] <= bounds[0] and edges[1] <= bounds[1] and bounds[2] <= edges[2]
                                  and bounds[3] <= edges[3]):
        cut = clipped_to_box(region.geometry(), edges)
        if cut is not None:
            polys = [cut["coordinates"]] if cut["type"] == "Polygon" else cut["coordinates"]
            xs, ys = zip(*(p[:2] for poly in polys for p in poly[0]))
            bounds = (min(xs), min(ys), max(xs), max(ys))
    return bounds_text(bounds, region.is_image)


def has_labels(spec: dict | None = None) -> bool:
    """Whether the source (of ``spec``, default the one in session state) comes with labels, read
    from its spec alone (no source built, nothing fetched): an own image without a labels file, or
    Earth Engine settings with "no labels", have none."""
    spec = spec or state.get(state.SOURCE)
    if spec.get("kind") == "local":
        return bool(spec.get("labels"))
    if spec.get("kind") == "earthengine" and spec.get("settings"):
        return bool(spec["settings"].get("labels"))
    return True


def unlabelled_advice() -> str:
    """What to do where the labels hold no class over a region's image data (the Data and Quality pages
    say it): a file's labels lie elsewhere; a label product does not cover the region or year."""
    if is_local():
        return ("the labels file has no label over this region: draw the region over the labelled area (Region "
                "page), or upload labels that cover it")
    return ("the label product does not cover this region or year (the CDL covers the contiguous United States, "
            "and before 2008 only some states): choose another label product or year on the Region page")


def labels_hold_no_class(sc: Scene) -> bool:
    """Whether the scene's labels hold no class (crop or not) anywhere its image has data (a region drawn
    between surveyed fields): there is then nothing to score a prediction against. False for a scene
    without labels or without image data (each said otherwise).

    Raises:
        CropMapError subclasses: the image or the labels cannot be read.
    """
    if sc.labels_path is None or sc.label_map is None:
        return False
    image, labels = str(sc.image_path), str(sc.labels_path)
    if not cached.image_arrays(image, cached.mtime(image))[1].any():  # (no data at all: the region's own error)
        return False
    return cached.labelled_pixels(labels, cached.mtime(labels), sc.label_map, image, cached.mtime(image)) == 0


def advice_for_pixel_size() -> str:
    """How the pages advise on an image of another pixel size than the model's
    (:func:`core.card.resolution_warning`'s ``advice``): by the Earth Engine settings for a composite,
    by exporting again for an Earth Engine image export, by the upload's averaging for a file."""
    spec = state.get(state.SOURCE)
    return "earthengine" if spec.get("kind") == "earthengine" else "export" if spec.get("mixer") else "dashboard"


def is_local(spec: dict | None = None) -> bool:
    return (spec or state.get(state.SOURCE)).get("kind") in ("sample", "local")


#: the region Earth Engine pages work on until one is drawn (the original notebook's valley)
DEFAULT_EE_REGION_NAME = CAMANA.place


def region_label() -> str:
    """What the pages' region is called (the sidebar's line), without building the source:
    the stored region's name, else the fallback of :func:`current_region`."""
    geo = state.get(state.REGION)
    if geo is not None:
        return (geo.get("properties") or {}).get("name") or "drawn/uploaded"
    return DEFAULT_EE_REGION_NAME if state.get(state.SOURCE).get("kind") == "earthengine" else "whole image"


def current_region() -> Region:
    """The region in session state, or the whole image of a local source.

    Raises:
        RegionError: if the stored region is malformed; CropMapError from the source.
    """
    geo = state.get(state.REGION)
    if geo is not None:
        return Region.from_geojson(geo)
    source = current_source()
    if isinstance(source, LocalSource):
        return source.full_region()
    spec = state.get(state.SOURCE)
    if spec.get("kind") == "earthengine":
        return camana_region()
    raise RegionError("no region yet: draw one on the Region page")


def camana_region() -> Region:
    """The Camana valley preset's region (Earth Engine's region until one is drawn)."""
    return Region.from_bbox(*CAMANA.bbox, name=CAMANA.place)


def scene_dir(source_key: str) -> Path:
    return state.work().scenes / source_key


def current_scene(progress: Progress | None = None) -> Scene:
    """The scene of the current source and region, fetched (cut out) on first use.

    Raises:
        RegionError: if the region is not valid for the source (the message says why);
        other CropMapError subclasses from the source.
    """
    cached_scene = state.get(state.SCENE)
    source = current_source()
    region = current_region()
    if isinstance(source, LocalSource):
        key = source.scene_key(region)  # (the source's file and mtime: one written anew at its path is cut again)
    else:
        key = hashlib.sha1(json.dumps([state.get(state.SOURCE), region.key()]).encode()).hexdigest()[:16]
    exports = state.work().exports.resolve()
    if isinstance(source, LocalSource) and source.image_path.parent.parent.resolve() == exports:
        cached.used(source.image_path.parent)  # (an export assembled: kept while in use, core.workdir.prune_exports)
    kept = Path(cached_scene["image_path"]) if cached_scene else None
    if kept is not None and kept.exists() and (kept.parent.name == key or not isinstance(source, LocalSource)):
        cached.used(kept.parent)  # (kept as long again: core.workdir.prune_scenes)
        return Scene.from_dict(cached_scene)
    cached.used(scene_dir(key))  # (one cut before, found again; before the fetch reads it)
    scene = source.fetch(region, scene_dir(key), progress)
    state.put(state.SCENE, scene.to_dict())
    return scene


def current_scene_shown(text: str = "Preparing the region's scene...", at_once: bool = False) -> Scene:
    """:func:`current_scene`, its progress (an Earth Engine download, an image cut) in a bar while it
    works; with ``at_once``, the bar stands from the start (``text``), also where the scene is cut
    already. The bar's place is there on every run (``st.empty``), so that the page has as many
    elements before its map on every run (a page whose count changed reloaded its map).

    Raises:
        as :func:`current_scene`.
    """
    import streamlit as st

    slot = st.empty()
    if at_once:
        slot.progress(0.0, text=text)
    try:
        return current_scene(progress=lambda done, total, msg="": slot.progress(
            min(max(done / max(total, 1), 0.0), 1.0), text=msg or text))
    finally:
        slot.empty()


def _fetched_grid():
    """The grid of the current region's scene when it has been fetched already (nothing is fetched
    here); None otherwise.

    Raises:
        CropMapError: its image cannot be read.
    """
    d = state.get(state.SCENE)
    if not d or not Path(d["image_path"]).exists():
        return None
    return cached.image_arrays(d["image_path"], cached.mtime(d["image_path"]))[2]


def fetched_shape() -> tuple[int, int] | None:
    """(rows, columns) of the current region's scene when it has been fetched already (nothing is
    fetched here); None otherwise, or when its image cannot be read."""
    try:
        grid = _fetched_grid()
    except CropMapError:
        return None
    return grid.shape if grid is not None else None


def region_shape() -> tuple[int, int] | None:
    """(rows, columns) of the current region's scene: the fetched one's, else the region's box on a
    local image (nothing is fetched or cut); None where it is not known without fetching (an Earth
    Engine region) or cannot be read."""
    shape = fetched_shape()
    if shape is not None:
        return shape
    if state.get(state.SOURCE).get("kind") == "earthengine":  # (its region's size needs its grid, not built here)
        return None
    try:
        source = current_source()
        if not isinstance(source, LocalSource):
            return None
        window = current_region().window(source.grid())
    except CropMapError:
        return None
    return window.height, window.width


def known_grid():
    """The grid of the images the model will see, where known without fetching anything: the
    fetched scene's, else a local source's; None otherwise (an Earth Engine region not yet fetched)
    or when the image cannot be read (the pages that use it say why)."""
    try:
        grid = _fetched_grid()
        if grid is None and isinstance(source := current_source(), LocalSource):
            grid = source.grid()
    except CropMapError:
        return None
    return grid


def scene_offset(scene: Scene) -> tuple[int, int]:
    """(row, col) of the scene in its source image (non-georeferenced scenes are drawn there)."""
    if scene.georeferenced:
        return (0, 0)
    return (int(scene.extra.get("row_off", 0)), int(scene.extra.get("col_off", 0)))


def region_view(region: Region, grid, whole: Bounds, margin_px: int = 100) -> Bounds:
    """The Region page's view of a local image: all of it, or once a region is drawn (or uploaded)
    the region with about ``margin_px`` pixels of image around it, so that a small one stays in view
    when the map is drawn again with it."""
    if state.get(state.REGION) is None:
        return whole
    try:
        c0, r0, c1, r1 = region.pixel_bounds(grid)
    except RegionError:  # (its check says why)
        return whole
    x0, y0, x1, y1 = region.bounds
    inner = ((-y1, x0), (-y0, x1)) if region.is_image else ((y0, x0), (y1, x1))
    shape = (max(1, r1 - r0), max(1, c1 - c0))
    if c0 < 0 or r0 < 0 or c1 > grid.width or r1 > grid.height or region.reaches_far_beyond(grid):
        try:  # the part on the image: a file's part beyond it made the map look at the empty space between
            window = region.window(grid)
            inner, shape = window_map_bounds(grid, window), (window.height, window.width)
        except CropMapError:  # (wholly off the image: shown with the image, where to draw it again)
            pass
    return focus_bounds(inner, whole, shape, margin_px)


def nodata_note(sc: Scene, valid) -> str | None:
    """A line for under a region's map when pixels inside it have no image data, which no legend
    names (the label layer's "no label" is black): on a local image they show the grey
    hatching of the image around the region under them, on Earth Engine's the map's background."""
    inside = sc.extra.get("region_pixels")  # the pixels inside the outline, with data or not
    missing = (int(inside) if isinstance(inside, int) else int(valid.size)) - int(valid.sum())
    if missing <= 0:
        return None
    shown = "Grey hatching on the map" if is_local(state.get(state.SOURCE)) else "Gaps in the imagery on the map"
    return (f"{shown}: no image data ({missing:,} px of the region: gaps, clouds or masked pixels); "
            "they are never predicted or counted.")


def colour_limits():
    """The colour stretch of the current local source's whole image (:func:`core.overlays.band_limits`),
    so that a region's imagery looks as the image around it and as its other regions; None for Earth
    Engine, whose scenes are stretched each on its own.

    Raises:
        CropMapError subclasses: the source image cannot be read.
    """
    if not is_local(state.get(state.SOURCE)):
        return None
    src = current_source()
    path = str(src.image_path)
    return cached.colour_limits(path, cached.mtime(path), src.band_map)


def image_warnings(sc: Scene) -> tuple[str, ...]:
    """The warnings about the image a scene was cut from (its values, its band numbers), as the
    Region page gives them: of the local source's own file (the scene's copy has its bands named and
    its no data declared, so it raises none), else of the scene's image.

    Raises:
        CropMapError subclasses: the image cannot be read.
    """
    if is_local(state.get(state.SOURCE)):
        src = current_source()
        path, band_map = str(src.image_path), src.band_map
    else:
        path, band_map = str(sc.image_path), None
    return cached.image_warnings(path, cached.mtime(path), band_map)


def map_view(grid, offset: tuple[int, int]) -> tuple[Bounds, list[Overlay]]:
    """Where a scene's page map looks, and the layers under the scene's own. For a region of a local
    image: a view a little wider than the scene, over the whole image dimmed (the Region page's
    preview, already made), so that a small region (one field) is seen where it lies; for the whole
    image, its bounds over the same preview (its gaps' hatching). For Earth Engine, whose maps have a
    basemap, the scene's bounds and no layer.

    Raises:
        CropMapError subclasses: the source image cannot be read.
    """
    bounds = map_bounds(grid, offset)
    spec = state.get(state.SOURCE)
    if not is_local(spec):
        return bounds, []
    src = current_source()
    path = str(src.image_path)
    preview = cached.source_preview(path, cached.mtime(path), src.band_map)[0]
    if src.grid().shape == grid.shape:  # the scene is the whole image (the grid is kept per file version):
        # under its layers all the same, for its gaps' hatching (the map's background there, they and
        # the image's edge were lost in it, where the note under the map names grey hatching)
        return bounds, [replace(preview, name=UNDER_WHOLE_IMAGE, opacity=SURROUNDINGS_OPACITY)]
    return focus_bounds(bounds, preview.bounds, grid.shape), [replace(preview, name=SURROUNDINGS, opacity=SURROUNDINGS_OPACITY)]


def class_codes(sc) -> tuple[str, str] | None:
    """(path of the scene's class codes, the product's label map) when the scene keeps the label
    product's own classes (a land-cover product, local or from Earth Engine); None otherwise."""
    name, label_map = sc.extra.get("codes"), sc.extra.get("class_map")
    if not name or label_map in (None, "binary"):
        return None
    return str(Path(sc.image_path).parent / name), label_map
