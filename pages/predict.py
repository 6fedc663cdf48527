"""Step 4, Predict: tiled prediction for the region, probability and crop layers, threshold, downloads."""

from __future__ import annotations

import json
from functools import partial

import streamlit as st

from core.errors import NoDataError
from core.fields import MIN_FIELD_PIXELS
from core.metrics import crop_area_text, crop_rule, format_area, nominal_area
from core.card import load_card, resolution_warning
from core.predict import prediction_summary
from pages.components import cached, models, navigation, parts, predictions, regionmap, scene, state, ui

navigation.require_app(__file__)
st.title("Predict", anchor=False)  # (no link: a nameless link beside each title, to a screen reader)

with ui.errors_shown(stop=True, fix_at=ui.TO_REGION):  # a region that cannot be used is the first thing to fix
    scene.require_usable_region()
model_path = models.require_model(state.get(state.MODEL_PATH), offer_shipped=True)
with ui.errors_shown(stop=True, fix_at=ui.TO_REGION):
    sc = scene.current_scene_shown()
    image_path = str(sc.image_path)
    feats, valid, grid = cached.image_arrays(image_path, cached.mtime(image_path))
    region = scene.current_region()
    region_key = region.key()

offset = scene.scene_offset(sc)
card, warning, caveat = None, None, ""
with ui.errors_shown():
    card = load_card(model_path)
    warning = resolution_warning(card, grid, scene.advice_for_pixel_size())
    caveat = resolution_warning(card, grid, "none") or ""  # the map PNG's, for a slide: no advice
    if warning:
        st.warning(ui.sentence(warning, "."), icon=":material/warning:")
with ui.errors_shown():  # the image's own (its values, its band numbers): said on the Region page, and here by its figures
    for text in scene.image_warnings(sc):
        st.warning(ui.sentence(text, "."), icon=":material/warning:")

button_col, views_col, _ = st.columns([1, 2, 3], vertical_alignment="bottom")
with views_col:
    views = st.selectbox("Views of each tile", state.VIEW_CHOICES, key=state.sync_widget(state.VIEWS),
                         on_change=state.store_widget, args=(state.VIEWS,), format_func=state.VIEW_CHOICES.get,
                         help="Averages the model over mirrored (and turned) copies of each tile, which evens out "
                              "the model's quirks: a smoother map, usually a little more accurate, and as many "
                              "times slower as there are views.")
key = cached.prediction_key(image_path, region_key, model_path, views)
with button_col:
    go = st.button("Predict", type="primary")
with ui.errors_shown():  # (entered on every run: it holds a place in the page, see ui.errors_shown)
    if go:
        if (pending := state.get(state.PREDICTING)) and tuple(pending) != key:  # (its views changed while it ran:
            predictions.leave(tuple(pending), predictions.follower())  # the run replaced stops, unless others follow it)
        predictions.start(key, cached.prediction_work(key), follower=predictions.follower())
        state.put(state.PREDICTING, list(key))
        state.save()  # now, not when the wait below ends: a browser reload meanwhile follows the run
# the model runs in a thread of the server: a visit to another page meanwhile (which ends this
# script) loses nothing, and coming back here follows the same run
running = None
with ui.errors_shown():
    running = predictions.settle()
# the progress's place, there on every run: a page whose elements before the map differed in number
# between the run that ends a prediction and the next (a click on the map) reloaded the map then
box = st.empty()
# and the note's place: it is cleared as a run starts (a "Press Predict" from the run before stayed,
# greyed, under the progress bar)
note = st.empty()
# (a run of this region and model, followed also after the views setting changed under it)
if running is not None and tuple(running.key)[:-1] == tuple(key)[:-1]:
    # the bar and its note each in its own place, emptied when it ends (in one container, the note stayed
    # when a container without it replaced that one; and any container left there was a 16 px gap, gone at
    # the first click on the map: the page jumped under the mouse)
    bar = box.progress(running.fraction, text=running.text)
    note.caption("The prediction goes on if you open another page meanwhile."
                 + (f" It uses {predictions.views_text(running.key[-1])} of each tile, as set when Predict was "
                    "pressed." if running.key[-1] != key[-1] else ""))
    # the wait ends as soon as the run does; each redraw is also where a page change ends this script
    while not running.finished.wait(0.25):
        bar.progress(running.fraction, text=running.text)
    note.empty()
    settled = False
    with box.container():  # in the progress's place
        with ui.errors_shown():
            predictions.settle()  # now the session's prediction (or its error, shown)
            settled = True
    if settled:  # an empty place, as on the next runs: a container, even with nothing in it, is 16 px more
        box.empty()

pred = predictions.shown(state.get(state.PREDICTION), key)  # (predicted before: shown at once)
if (made := predictions.views_behind(pred, key)) is not None:
    # only the views of each tile changed: the map made with the others stays until Predict makes the new one
    note.info(f"Press Predict to map crops with {predictions.views_text(views)} of each tile; meanwhile the page shows "
              f"the prediction made with {predictions.views_text(made)}.", icon=":material/info:")
    key, views = tuple(pred["key"]), made
elif not pred or tuple(pred["key"]) != key:
    note.info("Press Predict to map crops in this region with the model in use.")
    ui.stop()

wkey = state.sync_widget(state.THRESHOLD)
# the threshold's figures right under its slider (they stay in view on a small screen, where the
# downloads column moves below the map); the layer settings after them
ctrl, map_col, files_col = st.columns([1, 3, 1])
map_box = ui.map_place(map_col)  # (first on a phone: style.css)
with ctrl:
    threshold = st.slider("Crop threshold", **state.THRESHOLD_SLIDER, key=wkey,
                          on_change=state.store_widget, args=(state.THRESHOLD,))
    stats_box = st.container()
    # kept in the session's layer settings, so that they survive a visit to another page
    settings = dict(state.get(state.LAYERS))
    shown = {}
    # at first the crop layer alone (the answer), a quarter see-through so that the fields show under it
    # (at 0.6 it was pink over bright fields and dark magenta over dark ones: two classes, on a slide too);
    # the two at once blended into a pink that matched neither legend; the probability is one tick away
    for name, title, opacity, first in (("probability", "Probability", 0.5, False), ("crop", "Crop", 0.75, True)):
        prev = settings.get(f"predict_{name}", {"show": first, "opacity": opacity})
        show = st.checkbox(f"{title} layer", value=prev["show"], key=f"predict_show_{name}")
        shown[name] = (show, st.slider(f"{title} opacity", 0.0, 1.0, prev["opacity"], 0.05, disabled=not show,
                                       key=f"predict_op_{name}"))
        settings[f"predict_{name}"] = {"show": show, "opacity": shown[name][1]}
    state.put(state.LAYERS, settings)
    (show_prob, prob_opacity), (show_crop, crop_opacity) = shown["probability"], shown["crop"]

with ui.errors_shown(stop=True):
    stats = cached.crop_stats(key, float(threshold))
unit = state.area_unit()

with stats_box:
    st.metric("Crop area", crop_area_text(stats, unit))
    if stats["crop_area_ha"] is None:
        ground = nominal_area(stats["crop_pixels"], sc.extra.get("pixel_size_m"), unit)
        st.caption("Not georeferenced: area in pixels"
                   + (f"; {ground} (the image's stated pixel size)." if ground else "."))
    frac = stats["crop_fraction"]
    st.metric("Crop share of valid pixels", f"{frac:.1%}" if frac is not None else "n/a")
    st.caption(f"{stats['crop_pixels']:,} of {stats['valid_pixels']:,} valid pixels at threshold {threshold:.2f}")
    # which model made the map, in view with it (the sidebar's line may be below a laptop's screen)
    st.caption(models.made_by(model_path, views))
with ctrl:  # under the layers' settings (above them, its lines pushed them below a laptop's screen)
    models.show_trained_on_this_image(model_path, image_path)  # (why Quality's figures beat the model card's)

with files_col:
    st.markdown("**Downloads**")
    # a download needs no new run (which would replace the file being fetched); the files are made
    # when asked for (in a thread of the server), not on every threshold change. The buttons come
    # before the map in the run (the map takes longest), so that quick threshold changes leave them
    # without a file for as short a time as possible; the threshold-made files name their threshold.
    tag = f"t{threshold:.2f}"
    with ui.errors_shown():
        made = (key, float(threshold),  # (the threshold's words on one line)
                f"{sc.title} —\u00a0crop\u00a0where\u00a0{crop_rule(threshold)}",
                f"Data: {sc.attribution}" if sc.attribution else "", prob_opacity if show_prob else None,
                crop_opacity if show_crop else None, caveat, unit,
                json.dumps(region.to_geojson()) if parts.several(region) else "", tuple(offset),
                sc.extra.get("pixel_size_m"))
        st.download_button("Probability GeoTIFF", partial(cached.probability_tif, key), "probability.tif",
                           "image/tiff", on_click="ignore")
        st.download_button("Crop mask GeoTIFF", partial(cached.export_file, "crop_mask.tif", *made),
                           f"crop_mask_{tag}.tif", "image/tiff", on_click="ignore")
        st.download_button("Region map PNG", partial(cached.export_file, "map.png", *made), f"crop_map_{tag}.png",
                           "image/png", on_click="ignore",
                           help="The whole region as on the map (its layers at their opacities), with its legend "
                                "and crop area, at least 1,000 px wide for a slide")
        if card is not None:  # (an unreadable card's error is shown at the top)
            about = {"image": sc.title, "attribution": sc.attribution, "region": region.to_geojson(),
                     "model": models.label(model_path)}
            if sc.extra.get("region_pixels") is not None:  # beside "pixels", the outline's bounding box
                about["region_pixels"] = int(sc.extra["region_pixels"])
            if all(k in sc.extra for k in ("row_off", "col_off", "height", "width")):  # (a local scene)
                # where in the source image, as the CLI's summary says it (evaluate against its labels there)
                about["window"] = {"row": int(sc.extra["row_off"]), "col": int(sc.extra["col_off"]),
                                   "height": int(sc.extra["height"]), "width": int(sc.extra["width"])}
            if parts.several(region):  # (the table below the map, in the report too)
                about["parts"] = parts.rows(region, key, float(threshold), offset)
            summary = prediction_summary(grid, stats, card, float(threshold), views, scene.image_warnings(sc), **about)
            st.download_button("Summary JSON", partial(json.dumps, summary, indent=1), f"summary_{tag}.json",
                               "application/json", on_click="ignore",
                               help="The figures at this threshold, the region, the image and the model card, in one "
                                    "file for other programs or a report (the summary.json of the command line)")
    fields_for = [list(key), float(threshold)]
    if st.button("Crop areas GeoJSON", disabled=not grid.georeferenced,
                 help="The crop layer traced into polygons, each with its area, in longitude/latitude, for a GIS: "
                      f"one polygon per connected group of {MIN_FIELD_PIXELS} or more crop pixels. Fields that touch in the crop "
                      "layer come out as one polygon, so these are crop areas, not field boundaries."
                      if grid.georeferenced else "Needs a georeferenced image: this one has no place on Earth."):
        state.put(state.FIELDS, fields_for)
    if not grid.georeferenced:  # (said on the page: a greyed button's help is only seen by pointing at it)
        st.caption("Crop areas as GeoJSON polygons need a georeferenced image; this one has no place on Earth.")
    if state.get(state.FIELDS) == fields_for:
        with ui.errors_shown():
            try:
                data, n, area = cached.crop_fields(key, float(threshold))
            except NoDataError as none:  # (no crop area at this threshold: an answer, not a failure)
                st.info(ui.sentence(str(none)), icon=":material/info:")
            else:
                st.download_button(f"Download {n:,} crop areas", data, f"crop_fields_{tag}.geojson", "application/geo+json",
                                   type="primary", icon=":material/download:", on_click="ignore")
                # (not quite the crop area shown: groups of 1-3 crop pixels are no polygon)
                st.caption(f"{format_area(area, unit)} in all; groups under {MIN_FIELD_PIXELS} crop pixels are left out.")
    st.page_link("pages/quality.py", label="Next: Quality", icon=":material/arrow_forward:")

with ui.errors_shown(stop=True):
    overlays = [cached.image_overlay(image_path, key[1], "true", offset, scene.colour_limits())]
    opacities = {overlays[0].name: 1.0}
    if show_prob:
        o = cached.probability_overlay(key, offset)
        overlays.append(o)
        opacities[o.name] = prob_opacity
    dynamic = []
    if show_crop:
        o = cached.crop_overlay(key, offset, float(threshold), unit)
        dynamic.append(o)
        opacities[o.name] = crop_opacity

with map_box:
    regionmap.show(sc, grid, offset, valid, overlays, opacities, "predict_map", dynamic,
                   inspect=regionmap.pixel_reader(sc, feats, valid, cached.cached_probability(key), float(threshold)),
                   label="Map of the crop prediction")

with ui.errors_shown():
    parts.show(region, key, float(threshold), offset, grid.georeferenced, file_tag=tag)
