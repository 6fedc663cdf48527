"""Step 5, Quality: prediction vs labels at the chosen threshold, threshold curve, disagreement map."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.metrics import (BEST_F1_GAIN, SCORE_HELP, SCORE_TITLES, area_text, best_threshold, everything_crop_f1,
                          few_pixels_note, format_area, nominal_area)
from core.card import load_card, resolution_warning
from pages.components import cached, charts, models, navigation, parts, predictions, regionmap, scene, state, ui

#: label classes listed under "Where the errors are"
TOP_CLASSES = 6
#: why the page has nothing to show for a source without labels, and what to do
NO_LABELS = ("This image has no labels, so there is nothing to check a prediction against. To check one, choose "
             "a source with labels on the Region page: the sample scene, your image with its labels (a GeoTIFF, or a "
             "GeoJSON of surveyed fields), or "
             "Earth Engine settings with a label product.")


def area_line(areas: dict, pixel_size_m: float | None = None) -> str:
    """The crop area predicted against the labels' (core.metrics.crop_area_agreement), in one line; in
    pixels without a CRS, with the ground area at ``pixel_size_m`` where the image states it (as the
    Predict page gives it)."""
    unit, georef = state.area_unit(), areas["predicted_ha"] is not None

    def text(ha, pixels):
        ground = None if georef else nominal_area(pixels, pixel_size_m, unit)
        return area_text(ha if georef else None, pixels, unit) + (f" ({ground})" if ground else "")

    pred, lab = text(areas["predicted_ha"], areas["predicted_pixels"]), text(areas["labelled_ha"], areas["labelled_pixels"])
    diff = areas["difference"]
    how = ("" if diff is None else ": the same" if abs(diff) < 0.0005 else
           f": **{abs(diff):.1%} {'more' if diff > 0 else 'less'}** than the labels")
    return (f"**Crop area** predicted {pred}, in the labels {lab}{how} (pixels valid in both; false and missed "
            "crop cancel out in an area)")


navigation.require_app(__file__)
st.title("Quality", anchor=False)  # (no link: a nameless link beside each title, to a screen reader)

model_path = state.get(state.MODEL_PATH)
running = None
with ui.errors_shown():
    running = predictions.settle()  # a prediction left running on the Predict page
pred = state.get(state.PREDICTION)
if not scene.has_labels():  # said before asking for a prediction that could not be checked
    ui.stop_with(NO_LABELS, "pages/region.py", "Go to the Region page")
if not model_path:  # the Predict page would only say so
    ui.stop_with("Run a prediction first: no model is loaded yet, so load one on the Model page, then predict.",
                 "pages/model.py", "Go to the Model page")
models.require_model(model_path)
if running is not None:
    @st.fragment(run_every=1.0)
    def wait_for_the_prediction() -> None:
        if running.finished.is_set():
            st.rerun()  # the whole page, now with the prediction
        st.progress(running.fraction, text=running.text)

    wait_for_the_prediction()
    ui.stop_with("A prediction started on the Predict page is running; its figures appear here when it is done.",
                 "pages/predict.py", "Go to the Predict page")
with ui.errors_shown(stop=True, fix_at=ui.TO_REGION):  # a region that cannot be used is the first thing to fix
    if not pred:
        scene.require_usable_region()
    sc = scene.current_scene_shown()
    image_path = str(sc.image_path)
    grid = cached.image_arrays(image_path, cached.mtime(image_path))[2]
    region = scene.current_region()
    key = cached.prediction_key(image_path, region.key(), model_path, state.get(state.VIEWS))
unlabelled = False
with ui.errors_shown(stop=True):
    unlabelled = scene.labels_hold_no_class(sc)
if unlabelled:  # said before asking for a prediction that could not be checked (it then failed, with no way on)
    ui.stop_with("The labels hold no class where this region's image has data, so there is nothing to check a "
                 f"prediction against here: {scene.unlabelled_advice()}.", "pages/region.py", "Go to the Region page")
pred = predictions.shown(pred, key)  # (predicted before, e.g. before a visit to another source: as on Predict)
if not pred:
    ui.stop_with("Run a prediction first: there is none for this region yet (a new region, image or model "
                 "starts over).", "pages/predict.py", "Go to the Predict page")
if (made := predictions.views_behind(pred, key)) is not None:  # as the Predict page, which still shows it
    wanted = predictions.views_text(key[-1])
    st.info(f"These figures are of the prediction made with {predictions.views_text(made)} of each tile: press "
            f"Predict on the Predict page to map crops with {wanted}.", icon=":material/info:")
    key = tuple(pred["key"])
if tuple(pred["key"]) != key:
    ui.stop_with(f"The prediction is out of date ({cached.prediction_change(tuple(pred['key']), key)} changed): "
                 "predict again.", "pages/predict.py", "Go to the Predict page")
if sc.labels_path is None or sc.label_map is None:
    ui.stop_with(NO_LABELS, "pages/region.py", "Go to the Region page")

lpath = str(sc.labels_path)
lkey = (lpath, cached.mtime(lpath), sc.label_map)
offset = scene.scene_offset(sc)
wkey = state.sync_widget(state.THRESHOLD)
# the controls in one row, so that the map and the figures beside it start near the top of the page (the
# disagreement map, the page's answer to "where is it wrong", was below a laptop's screen)
# (each column wider than style.css's 11rem in a 1280 px window: with [3, 4, 2, 3] the opacity slider took a
# line of its own there, and the map's legend went below the screen)
t_col, class_col, show_col, op_col = st.columns([3, 4, 3, 3], vertical_alignment="bottom")
threshold = t_col.slider("Crop threshold", **state.THRESHOLD_SLIDER, key=wkey,
                         on_change=state.store_widget, args=(state.THRESHOLD,))
with ui.errors_shown(stop=True):
    conf = cached.confusion(key, *lkey, float(threshold))
    curve = cached.threshold_curve(key, *lkey)
    by_class = []
    if codes := scene.class_codes(sc):  # the label product's own classes
        by_class = cached.class_errors(key, codes[0], cached.mtime(codes[0]), codes[1], float(threshold))

# the errors on one class of the labels alone, e.g. where grassland is taken for crop; the choices
# (largest class first) do not depend on the threshold, so moving it keeps the choice
classes = {r["code"]: r for r in sorted(by_class, key=lambda r: (-r["pixels"], r["code"]))}
# "all" rather than None: a selectbox whose state is None shows no choice at all
if state.get(state.QUALITY_CLASS) not in classes:  # kept across pages while the region has that class
    state.put(state.QUALITY_CLASS, "all")
shown = class_col.selectbox("Show the errors on", ["all", *classes], disabled=not classes,
                            key=state.sync_widget(state.QUALITY_CLASS), on_change=state.store_widget,
                            args=(state.QUALITY_CLASS,),
                            format_func=lambda c: "every class of the labels" if c == "all" else
                            f"{c} {classes[c]['name']} ({'crop' if classes[c]['crop'] else 'not crop'}, "
                            f"{classes[c]['pixels']:,} px)",
                            help="The disagreement map on one class of the label product (largest first; the table "
                                 "below ranks them by wrong pixels)." if classes else
                                 "Needs the label product's own classes (a land-cover product, not a 0/1 mask).")
# the errors on and off, and their opacity: to look at the image under them (kept as the Data page's layers)
settings = dict(state.get(state.LAYERS))
prev = settings.get("disagreement", {"show": True, "opacity": 0.9})
show_dis = show_col.checkbox("Disagreement layer", value=prev["show"], key="quality_show_dis",
                             help="False crop in red-orange and missed crop in sky blue over the image in grey; off, the image "
                                  "in colour, to judge by eye whether the labels or the prediction are right there.")
dis_opacity = op_col.slider("Disagreement opacity", 0.0, 1.0, prev["opacity"], 0.05, key="quality_op_dis",
                            disabled=not show_dis)
settings["disagreement"] = {"show": show_dis, "opacity": dis_opacity}
state.put(state.LAYERS, settings)

with ui.errors_shown():  # (the figures are the model's on pixels of another size than it learned on)
    if warning := resolution_warning(load_card(model_path), grid, scene.advice_for_pixel_size()):
        st.warning(ui.sentence(warning, "."), icon=":material/warning:")
# Without crop in the labels (or in the prediction) recall (precision) is undefined, not 0; F1 and IoU are
# 0 where the prediction has crop the labels do not, and undefined where neither has any.
label_crop = conf["tp"] + conf["fn"]
if not label_crop:
    st.info("The labels of this region hold no crop pixel, so recall is undefined here; every pixel predicted "
            "crop is a false crop (the map shows where), and IoU and F1 are 0 if there is any, undefined if none.")



def use_threshold(value: float) -> None:
    """The best threshold's button: set it, and say so (the button goes, and the slider may be out of view)."""
    state.set_widget(state.THRESHOLD, value)
    st.toast(f"Threshold set to {value:.2f}, the best F1 here; the Predict page uses it too.", icon=":material/check:")


left, right = st.columns([3, 2])
map_box = ui.map_place(left)  # (the map's column takes the whole width of a narrow window: style.css)
with left:
    with ui.errors_shown(stop=True):
        only = None if shown == "all" else (codes[0], cached.mtime(codes[0]), codes[1], shown,
                                           f"{shown} {classes[shown]['name']}")
        dis = cached.disagreement_overlay(key, offset, *lkey, float(threshold), only)
        # in grey under the errors: their vermillion and sky blue stand out from it for every viewer (red on green
        # fields was olive on olive to the commonest colour blindness); in colour with the errors off, to
        # judge by eye who is right where they were (the grey image alone told little)
        base = cached.image_overlay(image_path, key[1], "grey" if show_dis else "true", offset, scene.colour_limits())
    feats, valid = cached.image_arrays(image_path, key[1])[:2]
    # the errors as a layer swapped in place: a threshold change keeps the map where the user zoomed,
    # and the pixel clicked (a reloaded map went back to the whole region)
    with map_box:
        regionmap.show(sc, grid, offset, valid, [base], {dis.name: dis_opacity}, "quality_map",
                       [dis] if show_dis else [],
                       inspect=regionmap.pixel_reader(sc, feats, valid, cached.cached_probability(key), float(threshold)),
                       label="Map of where the prediction and the labels disagree")
    # under the map whose colours it counts (beside it, the right column ran far below the map's foot)
    st.markdown(area_line(conf["crop_area"], sc.extra.get("pixel_size_m")))
    st.markdown("**Confusion matrix** (pixels valid in both; on the map, false crop in red-orange and missed crop in sky blue)")
    st.table(pd.DataFrame({"label: crop": [f"{conf['tp']:,}", f"{conf['fn']:,}"],
                          "label: not crop": [f"{conf['fp']:,}", f"{conf['tn']:,}"]},
                          index=["predicted crop", "predicted not crop"]))
with right:
    st.caption(models.made_by(model_path, key[-1]))  # (the views of each tile the prediction was made with)
    # beside the figures it is about (above the map, it pushed the map's foot below a laptop's screen)
    models.show_trained_on_this_image(model_path, image_path)
    if shown != "all":  # the map shows one class's errors; the figures stay the whole region's
        st.caption(f"The figures are for every class; the map shows the errors on {shown} {classes[shown]['name']} "
                   "alone.")
    # in the Model page's order (its validation figures), so that the two read side by side
    for col, (name, title) in zip([*st.columns(3), *st.columns(3)[:2]], SCORE_TITLES.items()):
        col.metric(title, f"{conf[name]:.3f}" if name == "accuracy" else parts.score_text(conf[name]), help=SCORE_HELP[name])
    if note := few_pixels_note(conf["tp"], conf["fp"], conf["fn"], conf["tn"]):
        st.caption(note)
    baseline = everything_crop_f1(conf["tp"], conf["fp"], conf["fn"], conf["tn"])
    if baseline is not None and conf["f1"] is not None and conf["f1"] <= baseline:  # (a map no better than none)
        share = (conf["tp"] + conf["fn"]) / (conf["tp"] + conf["fp"] + conf["fn"] + conf["tn"])
        st.warning(f"Calling every pixel crop would score F1 {baseline:.3f} on these labels ({share:.0%} of them "
                   f"crop); this map scores {conf['f1']:.3f}: here the model does no better than that.",
                   icon=":material/warning:")
    st.markdown("**Scores against the threshold**")
    st.altair_chart(charts.threshold_chart(curve, float(threshold)), width="stretch")
    # (none: nothing to find; nor a threshold no better than calling every pixel crop, which maps nearly all crop)
    best = best_threshold(curve, float(threshold), conf["f1"], baseline=baseline) if label_crop else None
    if label_crop and best is None and baseline is not None and any((r["f1"] or 0.0) > 0 for r in curve):
        st.caption(f"No threshold scores F1 {BEST_F1_GAIN} or more above calling every pixel crop ({baseline:.3f}) "
                   "here, so none is recommended: near that score the map calls nearly every pixel crop.")
    elif label_crop and best is None:
        st.caption("No threshold finds any of the labels' crop: the model takes none of it for crop here.")
    elif best is not None:
        st.caption(f"Best F1 {best.f1:.3f} at threshold {best.threshold:.2f}.")
        # chosen on the labels it is scored against: say so, and what it does to the crop area
        ratio = best.area_ratio  # predicted / labelled crop
        there = (f"At threshold {best.threshold:.2f} the predicted crop area is {abs(ratio - 1):.1%} "
                 f"{'larger' if ratio > 1 else 'smaller'} than the labelled one. "
                 if ratio is not None and abs(ratio - 1) >= 0.0005 else "")
        st.caption(there + "The threshold is picked on these labels, so its figures are optimistic for other regions.")
    if best is not None and not best.in_use and not best.worth_moving:
        # a button for a gain in the third decimal moved the crop area by several percent for nothing
        st.caption(f"F1 at threshold {float(threshold):.2f} is within {BEST_F1_GAIN} of the best: little to gain "
                   "by moving it.")
    elif best is not None and best.worth_moving:
        st.button(f"Use threshold {best.threshold:.2f}", key="quality_use_best",
                  on_click=use_threshold, args=(best.threshold,),
                  help="Sets the threshold of the Predict and Quality pages. It is chosen on these labels, "
                       "so expect somewhat lower figures on other regions.")

top = [r for r in by_class if r["errors"]][:TOP_CLASSES]
if top:
    st.divider()
    st.markdown("**Where the errors are**, by class of the labels")
    ha = top[0]["area_ha"] is not None  # (in hectares, as the Data page's classes, where the image has a CRS)
    st.dataframe(pd.DataFrame({
        "class": [f"{r['code']} {r['name']}" for r in top],
        "counts as": ["crop" if r["crop"] else "not crop" for r in top],
        **({"area": [format_area(r["area_ha"], state.area_unit()) for r in top]} if ha else
           {"pixels": [f"{r['pixels']:,}" for r in top]}),
        "predicted crop": [f"{r['predicted_crop']:.0%}" for r in top],
        "wrong" if ha else "wrong pixels": [
            f"{format_area(r['errors_ha'], state.area_unit()) if ha else format(r['errors'], ',')} "
            f"{'missed crop' if r['crop'] else 'false crop'}" for r in top],
        "share": [f"{r['share']:.0%} of all {'missed' if r['crop'] else 'false'} crop" for r in top],
    }), hide_index=True, width="stretch")

with ui.errors_shown():  # a file of fields or farms: how well each is mapped
    parts.show(region, key, float(threshold), offset, grid.georeferenced, lkey, f"t{threshold:.2f}")
