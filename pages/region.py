"""Step 1, Region: choose a source and a region (presets, drawing, GeoJSON upload)."""

from __future__ import annotations

import contextlib
import json

import streamlit as st

from core.errors import CropMapError
from core.field_labels import is_fields_file
from core.files import limit_text
from core.geojson import MAX_GEOJSON_BYTES, left_out_note
from core.region import Region
from core.resample import SHIPPED_PIXEL_SIZE_M
from core.labels import CLASS_MAPS
from core.metrics import area_text, format_area, nominal_area
from core.patches import assembled_export, mixer_file
from core.grid import place_words
from core.ee import settings as ee_settings
from core.ee.presets import CAMANA
from core.ee.composites import composite_note
from core.ee.labels import check_coverage, labels_note
from core.sources.earthengine import recipes_from_settings
from core.sources.local import MAX_FIELDS_UPLOAD_BYTES, LocalSource, use_uploaded_files
from pages.components import cached, eeform, mapview, navigation, scene, state, ui

#: The map's name for a screen reader (drawing on it needs a mouse: the box and the file do not)
REGION_MAP_LABEL = ("Map for choosing the region (drawing needs a mouse; enter a box by its coordinates or upload a "
                    "GeoJSON file instead)")

navigation.require_app(__file__)
st.title("Region", anchor=False)  # (no link: a nameless link beside each title, to a screen reader)
st.caption("Choose the area to map: a preset, a polygon or rectangle drawn on the map, a box by its coordinates, "
           "or a GeoJSON file (the box and the file need no mouse).")

ee = cached.ee_status()
spec = state.get(state.SOURCE)

# ------------------------------------------------------------------ presets
# without Earth Engine, why its preset is greyed out, on the heading's line (a line under the button
# pushed the map's foot below a laptop's screen); the sidebar's Why and the button's help say how
st.markdown("**Presets**" + ("" if ee["ok"] else
                             " :gray[(the Camana valley needs Earth Engine, which is not set up here: the sidebar's "
                             "*Why* says how)]"))
c1, c2 = st.columns(2)
if c1.button("Sample scene (whole image)", help="Landsat 8 scene with CDL labels, shipped with the app",
             width="stretch"):
    state.set_source({"kind": "sample"})
    st.rerun()
if c2.button(f"{CAMANA.place} (Earth Engine)", disabled=not ee["ok"],
             help=None if ee["ok"] else f"Needs Earth Engine: {ee['message']}", width="stretch"):
    state.set_source({"kind": "earthengine", "preset": CAMANA.key})
    state.set_region(scene.camana_region().to_geojson(), remember=False)
    st.rerun()

# The map comes right under the presets, the other sources below it; but they run first, so that a
# source or region they set is already on the map in the same run.
map_area = st.container()
with map_area:  # the map's place made now, so that the sources below do not come first and jump down as it arrives
    source_line = st.empty()  # (an Earth Engine source's settings, said above its map)
    map_col, info_col = st.columns([3, 1])
    map_box = ui.map_place(map_col)
st.markdown("**Other sources**")
with st.expander("Earth Engine: any region on Earth (composite and labels settings)", expanded=False):
    if not ee["ok"]:
        st.caption(f"Needs Earth Engine: {ee['message']}")
    else:
        st.caption("Pick the imagery and labels, then draw the region on the map above (it starts on the Camana valley).")
        with ui.errors_shown():
            # the settings in use, or those left for another source (back to Earth Engine, where it was)
            on_ee = spec.get("kind") == "earthengine"
            last = None if on_ee else state.get(state.EE_LAST)
            ee_spec = spec if on_ee else (last or {}).get("spec")
            ee_source = scene.source_from_spec(ee_spec) if ee_spec else None
            current = ee_source.settings() if ee_source else None
            settings = eeform.settings_form(current)
            for note in (labels_note(ee_source.labels, ee_source.composite), composite_note(ee_source.composite)) \
                    if ee_source else ():
                if note:
                    st.info(ui.sentence(note, "."), icon=":material/info:")
            if settings is not None:
                # validate before switching (ConfigError says what is wrong), labels over the region too
                # (CDL outside the US was taken: every layer gone, the reason twice, the settings lost)
                _, labels = recipes_from_settings(settings)
                region_geo = state.get(state.REGION) if on_ee else (last or {}).get("region")
                kept = Region.from_geojson(region_geo) if region_geo else scene.camana_region()
                if labels is not None and not kept.is_image:
                    check_coverage(labels, kept.geometry())
                chosen = {"kind": "earthengine", "settings": settings}
                if chosen != spec:  # (the settings in use, submitted again, change nothing: scene, patches stay)
                    state.set_source(chosen)
                    state.set_region(region_geo, remember=False)  # keep a lon/lat region already drawn for Earth Engine
                st.rerun()

# ------------------------------------------------------------------ own files
def next_steps() -> None:
    """What to do once a source is in use (the form that set it lies below the map, out of view on a laptop);
    nothing once a region is drawn on it (the notice stays while the file is chosen)."""
    if state.get(state.REGION) is not None:
        return
    try:
        scene.require_usable_region()
    except CropMapError:
        st.caption("The map above now shows the whole image: draw a region on it (the whole image cannot be "
                   "used as it is; the message beside the map says why).")
        return
    st.caption("The map above now shows the whole image, which is the region: draw a smaller one on it, "
               "or go on with the whole image.")
    st.page_link("pages/data.py", label="Next: Data (whole image)", icon=":material/arrow_forward:")


with st.expander("Use your own image (GeoTIFF with R, G, B, NIR bands)"):
    st.caption("A Landsat or Sentinel-2 download comes as one file per band: `.venv/bin/python -m core stack FOLDER --out "
               "image.tif --bbox=W,S,E,N` makes the one image of a part of it (README, command line). "
               f"Files up to {st.get_option('server.maxUploadSize'):g} MB (the server's limit): cut a larger image to "
               "the part you need (`--bbox`) or compress it (`gdal_translate -co COMPRESS=DEFLATE -co PREDICTOR=2`); "
               "`.venv/bin/python -m core predict` takes an image of any size.")
    img_file = st.file_uploader("Image GeoTIFF", type=["tif", "tiff"], key="upload_image")
    lab_file = st.file_uploader("Labels (optional): a GeoTIFF on the image's pixels, or a GeoJSON of surveyed fields "
                                f"up to {limit_text(MAX_FIELDS_UPLOAD_BYTES)}",
                                type=["tif", "tiff", "geojson", "json"], key="upload_labels",
                                help="A GeoTIFF on the image's pixels: the image's grid, or a larger or smaller tile on "
                                     "the same pixels (its part under the image is used; outside a smaller one, no "
                                     "pixel has a label). A GeoJSON: field polygons (lon/lat, or the image's columns "
                                     "and rows with \"crs\": \"image\"), each with its class in a property, e.g. "
                                     "crop = 1 or 0; pixels outside the fields have no label.")
    # the choices of the files in use when the page is opened again (widgets forget them on other pages); not
    # for another image chosen (the band numbers of the one before were applied to it, and refused)
    in_use = state.get(state.SOURCE) or {}
    in_use = in_use if in_use.get("kind") == "local" and (img_file is None or img_file.name == in_use.get("title")) else {}
    map_in_use = in_use.get("label_map") if in_use.get("label_map") in CLASS_MAPS else "cdl"
    # a labels file whose band names its product (WorldCereal's LC, WorldCover's Map) starts on that map
    named, field_prop = None, None
    if lab_file is not None and is_fields_file(lab_file.name):
        with ui.errors_shown():  # (no property of class codes: said here, where the file was chosen)
            classes = cached.upload_field_classes(lab_file.file_id, lab_file.name, lab_file.getvalue())
            field_prop = st.selectbox("Class property of the fields", list(classes), key="upload_field_property",
                                      help="The property that holds each field's class: 1 / 0 (crop / not crop: "
                                           "label map binary) or a land-cover product's code.")
            named = classes[field_prop]
    elif lab_file is not None:
        with contextlib.suppress(CropMapError):  # (a file too large or empty: "Use these files" says so)
            named = cached.upload_label_map(lab_file.file_id, lab_file.name, lab_file.getvalue())
    label_map = st.selectbox("Label map", sorted(CLASS_MAPS), index=sorted(CLASS_MAPS).index(named or map_in_use),
                             format_func=lambda k: f"{k}: {CLASS_MAPS[k].title}",
                             help=(f"Chosen from the fields' values of {field_prop}." if field_prop else
                                   f"Chosen from the labels file's band name ({CLASS_MAPS[named].band}).") if named else
                                  "How the labels' codes read as crop / not crop: the land-cover product they come from.")
    chosen = img_file.file_id if img_file is not None else None
    if chosen != state.get(state.UPLOAD_CHOSEN) or "upload_bands" not in st.session_state:  # (another file, or back)
        state.put(state.UPLOAD_CHOSEN, chosen)
        st.session_state["upload_bands"] = ",".join(f"{b}={i}" for b, i in (in_use.get("band_map") or {}).items())
    band_spec = st.text_input("Band numbers of R, G, B, NIR (only for files that do not name their bands)",
                              placeholder="e.g. 1,2,3,4 or R=3,G=2,B=1,NIR=4", key="upload_bands")
    coarser = st.checkbox(f"Average to {SHIPPED_PIXEL_SIZE_M:g} m pixels", key="upload_resample",
                          help=f"For 10-20 m images such as Sentinel-2: the shipped model learned fields on "
                               f"{SHIPPED_PIXEL_SIZE_M:g} m Landsat pixels, and finer pixels make them look larger to it. "
                               "Reflectance is averaged over the pixels with data, labels take the class covering "
                               "most of each pixel. Coarser pixels also lose small fields and edges, so whether it helps depends "
                               "on the image: with labels, compare both on the Quality page. Needs a CRS in ground metres "
                               "(e.g. UTM, not Web Mercator).")
    if st.button("Use these files", disabled=img_file is None):
        # the outcome stays shown on later runs (typing the band numbers it asks for, a map event)
        state.put(state.UPLOAD_NOTICE, None)
        with ui.errors_shown(remember=lambda text: state.put(state.UPLOAD_NOTICE, ("error", text, img_file.file_id))), \
                st.spinner("Checking the files and storing them (a large image takes a while)..."):
            made = use_uploaded_files(img_file.getvalue(), img_file.name, state.work().uploads,
                                      lab_file.getvalue() if lab_file is not None else None,
                                      lab_file.name if lab_file is not None else None, label_map, band_spec,
                                      SHIPPED_PIXEL_SIZE_M if coarser else None, field_prop)
            state.set_source(made.spec)
            doubt = made.warning
            text = ui.no_links(made.describe()) + (f" {ui.sentence(doubt, '.')}" if doubt else "")  # (file names)
            state.put(state.UPLOAD_NOTICE, ("warning" if doubt else "success", text, img_file.file_id))
            (st.warning if doubt else st.success)(text)
            next_steps()
    elif (notice := state.get(state.UPLOAD_NOTICE)) is not None and img_file is not None and notice[2] == img_file.file_id:
        kind, text, _ = notice  # said again while the same file is chosen; another file or none: nothing
        if kind == "error":  # (the text errors_shown showed the first time)
            st.error(text, icon=":material/error:")
        else:
            (st.warning if kind == "warning" else st.success)(text)
            next_steps()

with st.expander("Use an Earth Engine image export (TFRecord patches + mixer JSON)"):
    st.caption("What the Earth Engine page's image export writes (or the original notebook's): the export is "
               "assembled into one GeoTIFF, placed by its mixer, each patch's overlapping margin (kernel buffer) cut off.")
    mixer = st.text_input("Path of its mixer JSON (a local file or gs://)", key="upload_mixer",
                          placeholder="/data/exports/camana-mixer.json")
    if st.button("Use this export", disabled=not mixer.strip()):
        with ui.errors_shown():
            found = mixer_file(mixer.strip())  # (the Earth Engine page gives a pattern, PREFIX*mixer.json)
            with ui.progress_bar("Assembling the export...") as bar:
                image, grid = assembled_export(found, state.work().exports,
                                               progress=ui.progress_callback(bar, "Assembling patches"))
            name = found.rstrip("/").rsplit("/", 1)[-1]
            state.set_source({"kind": "local", "image": str(image), "labels": None, "label_map": None,
                              "title": f"{name} (Earth Engine image export)", "mixer": found})
            st.success(ui.no_links(f"Using {name}: {grid.width:,} x {grid.height:,} px, {place_words(grid)}"))
            next_steps()

with st.expander("Upload a region (GeoJSON)"):
    # its limit in the label (the upload box itself names the server's, for images: 200 MB)
    geo_file = st.file_uploader(f"Polygon/MultiPolygon in lon/lat, or image pixels with \"crs\": \"image\" (up to "
                                f"{limit_text(MAX_GEOJSON_BYTES)})", type=["geojson", "json"], key="upload_geojson",
                                help="The upload box's own limit is the server's, for images; a GeoJSON file may be "
                                     f"up to {limit_text(MAX_GEOJSON_BYTES)}.")
    if geo_file is not None and st.button("Use this GeoJSON region"):
        with ui.errors_shown():
            skipped = scene.use_uploaded_region(geo_file.getvalue(), geo_file.name)
            # (a toast went with the reruns the new map makes, in under a second): said while the region is in use
            state.put(state.GEOJSON_NOTICE, {"note": left_out_note(skipped, geo_file.name), "region": state.get(
                state.REGION)} if skipped else None)
            st.rerun()
    notice = state.get(state.GEOJSON_NOTICE)
    if notice and notice["region"] == state.get(state.REGION):
        st.info(ui.sentence(notice["note"], "."), icon=":material/info:")

with st.expander("Enter a box by its coordinates"):
    with ui.errors_shown():
        in_use = scene.current_region()
        if in_use.is_image:
            st.caption("In the image's pixels (it has no place on Earth): the left, top, right and bottom edges, "
                       "in columns and rows from the image's top-left corner. Filled in with the region in use.")
        else:
            st.caption("In degrees: west, south, east, north (longitude, latitude, as a notebook or a GeoJSON "
                       "bbox gives them). Filled in with the region in use.")
        # filled in anew when the region changes (a drawing, a preset) and after each box used (one cut to the
        # image's edges, where the region stayed the same, kept the numbers typed), not while the user edits
        # it; one field and one button throughout: a new key each time sent the keyboard's focus to the
        # page's top, and the button, disabled once its box was in use, dropped it too
        current = scene.box_text(in_use)
        notice = state.get(state.BOX_NOTICE) or [None, None]
        if state.get(state.BOX_FILLED) != current or state.BOX_FIELD not in st.session_state:
            st.session_state[state.BOX_FIELD] = current
            state.put(state.BOX_FILLED, current)
        box = st.text_input("Box", key=state.BOX_FIELD, placeholder="-72.778645, -16.651663, -72.66865, -16.57553")
        slot = st.empty()
        pressed = st.button("Use this box", key="use_box")
        whole = state.get(state.REGION) is None and scene.is_local()  # (an Earth Engine source has no whole image)
        unchanged = pressed and scene.box_in_use(box, in_use, whole)  # (used again, it would forget its scene and prediction)
        if unchanged:
            slot.info("This box covers the whole image, the region in use." if whole else "This box is the region in use.",
                      icon=":material/crop:")
        elif notice[1] and notice[0] == current and not pressed:  # (the box in use is the one cut; not beside
            slot.info(notice[1], icon=":material/crop:")         # the error of another box tried)
        if pressed and not unchanged:
            note = scene.use_box(box, image=in_use.is_image)
            state.put(state.BOX_NOTICE, [scene.box_text(scene.current_region()), note])
            state.put(state.BOX_FILLED, None)
            st.rerun()

# ------------------------------------------------------------------ map
def area_shown(region: Region, check, unit: str) -> tuple[bool, str]:
    """(whether it is the area of the pixels used, the area in words) of a region as the page shows it.

    On a local image, that of the pixels used, which every other page counts: their ground area, or
    on an image without a place on Earth their number. Otherwise (Earth Engine, whose pixels are
    only known once fetched, or a region the image cannot use) the shape's own area.
    """
    if scene.is_local() and check.ok and (check.area_ha is not None or check.pixels is not None):
        return True, area_text(check.area_ha, check.pixels, unit)
    return False, (f"{region.area_pixels():,.0f} px" if region.is_image else format_area(region.area_ha(), unit))


def _camana_refused() -> str | None:
    """Why the Earth Engine source's labels cannot map the Camana valley (the CDL, of the United
    States only), for the reset button's help; None where they can."""
    try:
        labels = getattr(scene.current_source(), "labels", None)
        if labels is not None:
            check_coverage(labels, scene.camana_region().geometry())
    except CropMapError as err:
        return f"Not with these labels: {ui.sentence(str(err))}"
    return None


def take_drawing(result: dict | None, image: bool) -> None:
    """Make the last shape drawn on the map the region (once per new shape)."""
    drawn = mapview.last_drawing(result)
    if drawn is None:
        return
    text = json.dumps(drawn.get("geometry"), sort_keys=True)
    if text != state.get(state.LAST_DRAWING):
        state.put(state.LAST_DRAWING, text)
        try:
            region = Region.from_map_geojson(drawn, image=image, name="drawn")
        except CropMapError as err:
            # said beside the map until a region is set, and the shape taken off the map (a map drawn anew):
            # it stayed drawn beside the region in use, and was taken for it once its error had gone
            state.put(state.DRAW_REFUSED, ui.sentence(str(err), "."))
            state.put(state.REGION_MAP_GENERATION, state.get(state.REGION_MAP_GENERATION) + 1)
            st.rerun()
        # "Back to the previous region" goes back to the last usable one, not to a mistake before this one
        state.set_region(region.to_geojson(), remember=scene.current_region_usable())
        st.rerun()


spec = state.get(state.SOURCE)
gaps_note = None  # said beside the map (under it, it was below a laptop's screen)
if spec.get("kind") == "earthengine":  # what the map's Earth Engine layers and the next pages fetch
    with source_line.container(), ui.errors_shown():
        st.caption("Earth Engine: " + ee_settings.describe(scene.current_source().settings()))
with map_box:
    if scene.is_local(spec):
        with ui.errors_shown(stop=True):
            source = scene.current_source()
            path = str(source.image_path)
            backdrop, grid, warnings, _, missing = cached.source_preview(path, cached.mtime(path), source.band_map)
            region = scene.current_region()
        for warning in warnings:
            st.warning(ui.sentence(warning, "."), icon=":material/warning:")
        result = mapview.render(
            mapview.MapSpec(bounds=scene.region_view(region, grid, backdrop.bounds), image=not grid.georeferenced,
                            overlays=[backdrop], region_geojson=region.outline_geojson(mapview.outline_tolerance(region)), draw=True,
                            label=REGION_MAP_LABEL),
            key=f"region_map_{state.get(state.REGION_MAP_GENERATION)}", returned_objects=["all_drawings"],
        )
        if missing:  # (the sample scene has large gaps; without a word they look like a fault of the map)
            gaps_note = (f"Grey hatching on the map: no image data ({missing / (grid.width * grid.height):.0%} of the "
                         "image: gaps, clouds or masked pixels); those pixels are never predicted or counted (the "
                         "area above includes any in the region; the Data page counts the region's pixels with data).")
        take_drawing(result, image=not grid.georeferenced)
    else:  # Earth Engine: the real map, the composite and labels as Earth Engine tiles, drawing tools
        with ui.errors_shown(stop=True):
            region = scene.current_region()
        tiles, failed = cached.ee_preview_layers(json.dumps(spec, sort_keys=True),
                                                 json.dumps(region.to_geojson(), sort_keys=True))
        if failed:  # (tried again a minute later: the page goes on without them meanwhile)
            st.warning(f"No Earth Engine preview layers: {failed.rstrip('.')}. They are tried again in a minute; "
                       "meanwhile the region can be drawn and used.", icon=":material/warning:")
        w, s_, e, n = region.bounds
        result = mapview.render(
            mapview.MapSpec(bounds=((s_, w), (n, e)), image=False, tile_layers=tiles,
                            region_geojson=region.outline_geojson(mapview.outline_tolerance(region)), draw=True, label=REGION_MAP_LABEL),
            key=f"region_map_ee_{state.get(state.REGION_MAP_GENERATION)}", returned_objects=["all_drawings"],
        )
        take_drawing(result, image=False)

with info_col:
    if refused := state.get(state.DRAW_REFUSED):
        st.error(f"The shape drawn was not taken: {refused} The region in use is kept.", icon=":material/error:")
    st.markdown("**Selected region**")
    usable = False
    try:
        region = scene.current_region()
        source = scene.current_source()
        st.markdown(ui.plain(region.name) if region.name else "(unnamed)")
        if region.parts:  # a file of fields or farms: said, with where their figures are
            st.caption(f"{len(set(region.parts))} parts (one per feature of the file); the Data, Predict and Quality pages give the figures of each.")
        check = scene.check_current_region(region)
        usable = check.ok
        unit = state.area_unit()
        used, text = area_shown(region, check, unit)
        if used:
            st.metric("Area", text,
                      help=("the ground area of the pixels used" if check.area_ha is not None else "the pixels used")
                           + ": those whose centre lies inside the shape" + (" and inside the image" if check.clipped else ""))
            ground = (nominal_area(check.pixels, getattr(source, "pixel_size_m", None), unit)
                      if check.area_ha is None else None)
            if ground:  # (an image without a CRS, whose pixel size is known otherwise: the sample's Landsat 30 m)
                st.caption(f"Not georeferenced: {ground} (the image's stated pixel size).")
        else:
            st.metric("Area drawn" if check.clipped or not check.ok else "Area", text,
                      help="the whole shape; only its part inside the image is used" if check.clipped else
                      "the whole shape" if not check.ok else None)
        if check.ok:
            st.success(ui.sentence(check.message), icon=":material/check_circle:")
            if check.warning:
                st.warning(ui.sentence(check.warning), icon=":material/warning:")
            # (the area above counts every pixel; for the whole image the gaps' line below says it)
            elif check.data_share is not None and check.data_share < 0.995 and state.get(state.REGION) is not None:
                st.caption(f"About {check.data_share:.0%} of the region has image data; only that part is predicted "
                           "and counted.")
        else:
            st.error(ui.sentence(check.message), icon=":material/error:")
            prev = state.previous_region()
            if prev is not None and prev[0] is not None:  # (back to the whole image is the Reset button)
                back = Region.from_geojson(prev[0])  # (its area as the page showed it, usable as it was)
                about = ", ".join(t for t in (back.name, area_shown(back, scene.check_current_region(back), unit)[1]) if t)
                if st.button(f"Back to the previous region ({ui.plain(about)})",
                             help="Use the region this one replaced"):
                    state.restore_previous_region()
                    st.rerun()
        if used and check.clipped:  # the shape's own area, a part of it used
            shape_ha = None if region.is_image else region.area_ha()
            sliver = check.area_ha is not None and shape_ha and check.area_ha > 0.98 * shape_ha
            st.caption(f"The region's shape covers {region.describe_area(unit)}; " + (
                "slivers of it lie outside the image and are left out (the area above is that of the pixels used, "
                "whose centres lie inside it)." if sliver else "the part outside the image is left out."))
        if gaps_note:
            st.caption(gaps_note)
        reset = "Reset to the whole image" if scene.is_local() else "Reset to the Camana valley"
        # (CDL labels in use: the valley, in Peru, has none, and was taken: every layer gone, the reason twice)
        reset_refused = None if scene.is_local() else _camana_refused()
        # (not offered for the valley itself, as its preset sets it: the button changed nothing)
        at_reset = not scene.is_local() and json.dumps(state.get(state.REGION), sort_keys=True) == json.dumps(
            scene.camana_region().to_geojson(), sort_keys=True)
        if state.get(state.REGION) is not None and not at_reset and st.button(reset, disabled=reset_refused is not None,
                                                                               help=reset_refused):
            state.set_region(None)
            state.put(state.LAST_DRAWING, None)
            st.rerun()
        if isinstance(source, LocalSource) and source.attribution:
            st.caption(source.attribution)
        st.download_button("Download region GeoJSON", json.dumps(region.to_geojson()), "region.geojson",
                           mime="application/geo+json", on_click="ignore")
    except CropMapError as err:
        st.error(ui.sentence(str(err)), icon=":material/error:")
    st.page_link("pages/data.py", label="Next: Data", icon=":material/arrow_forward:", disabled=not usable,
                 help=None if usable else "first a region the source can use (the message above says what is wrong)")
