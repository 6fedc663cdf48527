"""The Quality page: the prediction's accuracy against the labels, and its threshold advice.

Driven with AppTest; the helpers are in apptest.py.
"""

from __future__ import annotations

import pytest

from apptest import map_calls, map_legends, new_app, predict_page, predicted_fields, texts, scene_layers, swapped_layers


def test_quality_page_keeps_the_pixel_size_warning(fake_map):
    """The shipped model (30 m) scored against labels of a 10 m Sentinel-2 image: the Quality page
    says what the Predict page said (its figures are those of a model on pixels of another size)."""
    from core.metrics import format_hectares as hectares
    from core.card import DEFAULT_MODEL_PATH
    from testdata import FLANDERS_LABELS, FLANDERS_S2

    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(FLANDERS_S2), "labels": str(FLANDERS_LABELS),
                                  "label_map": "worldcereal", "title": FLANDERS_S2.name, "band_map": None}
    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/predict.py").run()
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    assert len(at.warning) == 1 and "trained on 30 m pixels" in at.warning[0].value
    # the crop areas in hectares (10 m pixels: 0.01 ha each), as the confusion matrix counts them
    cm = at.table[0].value.map(lambda v: int(str(v).replace(",", "")))
    tp, fp = cm.loc["predicted crop", "label: crop"], cm.loc["predicted crop", "label: not crop"]
    fn = cm.loc["predicted not crop", "label: crop"]
    [line] = [md.value for md in at.markdown if md.value.startswith("**Crop area**")]
    assert line.startswith(f"**Crop area** predicted {hectares((tp + fp) * 0.01)}, in the labels "
                           f"{hectares((tp + fn) * 0.01)}")
    # where the errors are, in hectares too (as the Data page's classes), adding up to the matrix's errors
    errors = at.dataframe[0].value
    assert list(errors.columns) == ["class", "counts as", "area", "predicted crop", "wrong", "share"]
    wrong = errors["wrong"].str.extract(r"^([\d,.]+) ha (missed|false) crop$")
    assert wrong.notna().all().all()
    every = wrong[0].str.replace(",", "").astype(float)
    assert every.sum() == pytest.approx((fp + fn) * 0.01, abs=0.05 * len(errors))  # (each rounded to 0.1 ha)
    # the Data page's classes in hectares as written everywhere (a small class's "0.0 ha" said nothing)
    at.switch_page("pages/data.py").run()
    from pages.components import cached, scene

    classes = next(d.value for d in at.dataframe if "share of labelled pixels" in d.value.columns)
    image = at.session_state["scene"]["image_path"]
    from core.sources.base import Scene

    codes, label_map = scene.class_codes(Scene.from_dict(at.session_state["scene"]))
    rows = cached.class_areas(codes, cached.mtime(codes), label_map, image, cached.mtime(image))
    assert list(classes["area"]) == [hectares(r["area_ha"]) for r in rows]


def test_quality_page_metrics(fake_map, tiny_model_path, monkeypatch):
    from pages.components import cached

    curves = []
    real_curve = cached.threshold_curve
    monkeypatch.setattr(cached, "threshold_curve", lambda *a: curves.append(real_curve(*a)) or curves[-1])
    # (a box where the untrained model's best threshold does better than calling every pixel crop: in the
    # top left corner it does not, and no threshold is offered there)
    at = predict_page(tiny_model_path, box=(0, 384, 256, 640))
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    labels = [m.label for m in at.metric]
    assert labels == ["IoU", "F1", "Precision", "Recall", "Accuracy"]  # as the Model page has them
    from core.metrics import SCORE_HELP  # each explained in plain words where it is shown

    assert [m.proto.help for m in at.metric] == [SCORE_HELP[k] for k in ("iou", "f1", "precision", "recall", "accuracy")]
    assert len(at.table) == 1
    assert not [c for c in at.caption if c.value.startswith("Few labelled pixels")]  # 65,536 px: enough of each
    # the confusion matrix (counts with thousands separators) gives the IoU shown
    cm = at.table[0].value.map(lambda v: int(str(v).replace(",", "")))
    tp, fp = cm.loc["predicted crop", "label: crop"], cm.loc["predicted crop", "label: not crop"]
    fn = cm.loc["predicted not crop", "label: crop"]
    assert float({m.label: m.value for m in at.metric}["IoU"]) == pytest.approx(tp / (tp + fp + fn), abs=5e-4)
    # the crop areas, predicted and labelled, from the same matrix (image coordinates: pixels, and the ground
    # area at the sample's stated 30 m pixels, as the Predict page gives it)
    from core.metrics import nominal_area

    [line] = [md.value for md in at.markdown if md.value.startswith("**Crop area**")]
    diff = (tp + fp) / (tp + fn) - 1
    assert nominal_area(tp + fp, 30.0).startswith("about ") and nominal_area(tp + fp, 30.0).endswith(" ha at 30 m pixels")
    assert line.startswith(f"**Crop area** predicted {tp + fp:,} px ({nominal_area(tp + fp, 30.0)}), in the labels "
                           f"{tp + fn:,} px ({nominal_area(tp + fn, 30.0)}): "
                           f"**{abs(diff):.1%} {'more' if diff > 0 else 'less'}** than the labels")
    # errors by CDL class, named from the legend, most errors first
    errors = at.dataframe[0].value
    assert list(errors.columns) == ["class", "counts as", "pixels", "predicted crop", "wrong pixels", "share"]
    assert 1 <= len(errors) <= 6 and errors["class"].str.match(r"^\d+ \S").all()
    wrong = errors["wrong pixels"].str.split(" ").str[0].str.replace(",", "").astype(int)
    assert (wrong.diff().dropna() <= 0).all()
    # the errors swapped in place over the imagery: a threshold change keeps the map's zoom and the click
    assert len(scene_layers(fake_map.maps[-1][0])) == 1 and list(swapped_layers(fake_map)) == ["Disagreement"]
    assert scene_layers(fake_map.maps[-1][0]) == ["True colour in grey"]  # the errors' colours stand out from it
    # the threshold left untouched on Predict arrives as it was (not reset to the slider's minimum)
    assert at.slider[0].value == pytest.approx(0.5)
    # the best-F1 threshold from the curve, one click away; it becomes the shared threshold
    best = [c for c in at.caption if c.value.startswith("Best F1")][0].value
    best_t = float(best.rstrip(".").rsplit(" ", 1)[1])
    # picked on the labels it is scored on: said, with what it does to the crop area (here, at the
    # threshold the curve says: predicted / labelled crop = recall / precision)
    row = [r for r in curves[-1] if r["threshold"] == pytest.approx(best_t)][0]
    # searched at every value the slider takes (0.05 apart, a better one between was missed)
    assert [r["threshold"] for r in curves[-1]] == pytest.approx([round(0.05 + 0.01 * i, 2) for i in range(91)])
    assert row["f1"] == max(r["f1"] or 0 for r in curves[-1])
    d = row["recall"] / row["precision"] - 1
    told = [c.value for c in at.caption if "picked on these labels" in c.value]
    assert told == [f"At threshold {best_t:.2f} the predicted crop area is {abs(d):.1%} "
                    f"{'larger' if d > 0 else 'smaller'} than the labelled one. "
                    "The threshold is picked on these labels, so its figures are optimistic for other regions."]
    # a threshold within 0.005 F1 of the best is not worth moving: said, and no button (that moved the crop
    # area by several percent for +0.001 F1)
    near = [r for r in curves[-1] if r["threshold"] != pytest.approx(best_t) and row["f1"] - r["f1"] < 0.005]
    assert near
    at.slider[0].set_value(near[0]["threshold"]).run()
    assert not [b for b in at.button if b.key == "quality_use_best"]
    assert f"F1 at threshold {near[0]['threshold']:.2f} is within 0.005 of the best: little to gain by moving it." in [
        c.value for c in at.caption]
    other = 0.9 if best_t < 0.5 else 0.1
    at.slider[0].set_value(other).run()
    use = [b for b in at.button if b.key == "quality_use_best"]
    assert use and use[0].label == f"Use threshold {best_t:.2f}"
    use[0].click().run()
    assert not at.exception and at.slider[0].value == pytest.approx(best_t)
    assert at.session_state["threshold"] == pytest.approx(best_t)
    assert not [b for b in at.button if b.key == "quality_use_best"]  # at the best already: no button
    # and says so (the button goes, and the slider may be out of view, at the top of the page)
    assert [t.value for t in at.toast] == [f"Threshold set to {best_t:.2f}, the best F1 here; the Predict page uses "
                                           "it too."]


def test_quality_page_shows_the_errors_on_one_class(fake_map, tiny_model_path):
    """The disagreement map narrowed to one CDL class (e.g. grassland taken for crop), kept when the
    threshold moves."""
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    pick = at.selectbox(key="w_quality_class")
    assert pick.value == "all" and len(pick.options) > 2 and pick.options[0] == "every class of the labels"
    every = fake_map.maps[-1][0].get_root().render()
    wrong = at.dataframe[0].value["class"].iloc[0]  # the class with the most wrong pixels
    code = int(wrong.split(" ")[0])
    pick.set_value(code).run()
    assert not at.exception and not at.error
    html = fake_map.maps[-1][0].get_root().render()
    assert len(scene_layers(fake_map.maps[-1][0])) == 1 and html != every
    assert list(swapped_layers(fake_map)) == [f"Disagreement on {wrong}"]
    # the figures beside it stay the whole region's, and the page says so
    assert f"The figures are for every class; the map shows the errors on {wrong} alone." in texts(at)
    from html import escape

    legend = map_legends(fake_map)
    # the legend says which class, and the one error it can have; at which threshold, set in place
    assert f"Disagreement on {escape(wrong)}" in legend
    group = fake_map.maps[-1][1]["feature_group_to_add"]
    [(_, title, _)] = map_calls(group, "dynamicTitle")
    assert title == f"Disagreement on {wrong} (threshold {at.session_state['threshold']:.2f})"
    from core.labels import get_class_map

    is_crop = code in get_class_map("cdl").crop_codes
    assert ("missed crop" in legend) == is_crop and ("false crop" in legend) == (not is_crop)
    # the layer can be faded or hidden, to see the image under the errors
    at.slider(key="quality_op_dis").set_value(0.4).run()
    assert swapped_layers(fake_map) == {f"Disagreement on {wrong}": 0.4}
    group = fake_map.maps[-1][1]["feature_group_to_add"]  # its legend's swatches too, set in place
    assert [opacity for _, _, opacity in map_calls(group, "dynamicTitle")] == [0.4]
    at.checkbox(key="quality_show_dis").uncheck().run()
    assert not at.exception and len(scene_layers(fake_map.maps[-1][0])) == 1 and swapped_layers(fake_map) == {}
    assert "Disagreement" not in map_legends(fake_map)  # a hidden layer's legend goes with it
    # with the errors hidden the image is in colour (to judge by eye who is right), in grey under them
    assert scene_layers(fake_map.maps[-1][0]) == ["True colour (R,G,B)"]
    at.checkbox(key="quality_show_dis").check().run()
    assert scene_layers(fake_map.maps[-1][0]) == ["True colour in grey"]
    at.slider[0].set_value(0.3).run()
    assert at.selectbox(key="w_quality_class").value == code  # the choice survives a threshold change
    at.switch_page("pages/predict.py").run()
    at.switch_page("pages/quality.py").run()
    assert at.selectbox(key="w_quality_class").value == code  # and a visit to another page


def test_quality_follows_the_prediction_the_predict_page_shows_after_a_views_change(fake_map, tiny_model_path):
    """The views changed, Predict not pressed: the Predict page still shows the 1-view prediction, and
    the Quality page checks that one too, saying so (it called it out of date, while Predict showed it)."""
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.selectbox(key="w_views").set_value(4).run()  # changed, not predicted again
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    assert [i.value for i in at.info][:1] == ["These figures are of the prediction made with 1 view of each tile: "
                                              "press Predict on the Predict page to map crops with 4 views."]
    assert [m.label for m in at.metric][:1] == ["IoU"]
    assert any(c.value == "Prediction by tiny.keras." for c in at.caption)  # the 1-view one's figures


def test_quality_without_crop_in_the_labels_recommends_no_threshold(fake_map, tiny_model_path, monkeypatch):
    import numpy as np

    from pages.components import cached

    real = cached.confusion

    def no_crop_labels(*args):
        c = dict(real(*args))
        c.update(fp=c["fp"] + c["tp"], tn=c["tn"] + c["fn"], tp=0, fn=0, recall=None, precision=0.0, f1=0.0, iou=0.0)
        return c

    monkeypatch.setattr(cached, "confusion", no_crop_labels)
    monkeypatch.setattr(cached, "threshold_curve", lambda *a: [
        {"threshold": t, "f1": 0.0, "iou": 0.0, "precision": 0.0, "recall": 0.0} for t in np.arange(0.05, 1, 0.05)])
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Recall"] == "n/a" and shown["F1"] == shown["IoU"] == "0.000"  # all of its crop is false crop
    assert any("no crop pixel" in i.value for i in at.info)
    assert not [c for c in at.caption if c.value.startswith("Best F1")]
    assert not [b for b in at.button if b.key == "quality_use_best"]


def test_quality_when_no_threshold_finds_crop_recommends_none(fake_map, tiny_model_path, monkeypatch):
    """Labels with crop, a model that finds none of it (a desert region, an unsuited model): the page
    offered 'Best F1 0.000 at threshold 0.05' and a button to use it."""
    import numpy as np

    from pages.components import cached

    monkeypatch.setattr(cached, "threshold_curve", lambda *a: [
        {"threshold": t, "f1": 0.0, "iou": 0.0, "precision": None, "recall": 0.0} for t in np.arange(0.05, 1, 0.05)])
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    assert any(c.value.startswith("No threshold finds any of the labels' crop") for c in at.caption)
    assert not [c for c in at.caption if c.value.startswith("Best F1")]
    assert not [b for b in at.button if b.key == "quality_use_best"]


def test_a_map_no_better_than_calling_everything_crop_is_said_and_that_threshold_never_offered(
        fake_map, tiny_model_path, monkeypatch):
    """Labels mostly crop (Flanders averaged to 30 m): "Best F1 0.736 at threshold 0.05", a button for it, and
    every pixel of the region crop once pressed; the model's F1 0.672 was below that baseline, unsaid."""
    import numpy as np

    from pages.components import cached

    real = cached.confusion

    def poor(*args):  # a map of 441 labelled pixels, 257 crop: F1 0.672
        return {**real(*args), "tp": 150, "fp": 39, "fn": 107, "tn": 145, "f1": 0.672}

    monkeypatch.setattr(cached, "confusion", poor)
    monkeypatch.setattr(cached, "threshold_curve", lambda *a: [
        {"threshold": t, "f1": 0.736 if t < 0.1 else 0.672, "iou": 0.5, "precision": 0.6, "recall": 0.9,
         "crop_fraction": 1.0 if t < 0.1 else 0.5} for t in np.arange(0.05, 1, 0.05)])
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    said = [w.value for w in at.warning if w.value.startswith("Calling every pixel crop would score F1")]
    assert said == ["Calling every pixel crop would score F1 0.736 on these labels (58% of them crop); this map scores "
                    "0.672: here the model does no better than that."]
    assert not [c for c in at.caption if c.value.startswith("Best F1 0.736")]
    assert not [b for b in at.button if b.key == "quality_use_best" and "0.05" in b.label]


def test_a_threshold_that_maps_nearly_every_pixel_as_crop_is_not_offered(fake_map, tiny_model_path):
    """An untrained model on the sample's 256 px corner (labels 39% crop): the page said the model did no
    better than calling every pixel crop (F1 0.559), and beside it "Best F1 0.561 at threshold 0.40" with a
    button for it, which mapped 99.5% of the region as crop (its crop area 156% larger than the labels'):
    the everything-crop map, less a few pixels. A threshold is offered only where it beats that map."""
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    assert [w.value for w in at.warning if w.value.startswith("Calling every pixel crop would score F1 0.559")]
    for threshold in (0.5, 0.9, 0.4):  # (0.40: the threshold it offered, in use: not called the best there either)
        at.slider[0].set_value(threshold).run()
        assert not at.exception
        assert not [c.value for c in at.caption if c.value.startswith(("Best F1", "F1 at threshold"))], threshold
        assert not [b for b in at.button if b.key == "quality_use_best"], threshold
        assert [c.value for c in at.caption if c.value.startswith("No threshold")] == [
            "No threshold scores F1 0.005 or more above calling every pixel crop (0.559) here, so none is "
            "recommended: near that score the map calls nearly every pixel crop."], threshold


def test_quality_without_prediction_says_what_to_do(fake_map):
    at = new_app()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    assert any("Run a prediction first" in i.value for i in at.info)


def test_quality_gives_the_agreement_of_each_part_of_the_region(fake_map, tiny_model_path):
    """A region of two fields side by side: each field's labelled crop, IoU and F1; together, the page's matrix."""
    at = predicted_fields(tiny_model_path, [("left", 0, 128), ("right", 128, 256)], (0, 256))
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    cm = at.table[0].value.map(lambda v: int(str(v).replace(",", "")))
    tp, fn = cm.loc["predicted crop", "label: crop"], cm.loc["predicted not crop", "label: crop"]
    parts = at.dataframe[-1].value
    assert list(parts["part"]) == ["left", "right"] and list(parts.columns) == [
        "part", "predicted crop", "crop in the labels", "IoU", "F1"]
    labelled = [int(v.replace(",", "").removesuffix(" px")) for v in parts["crop in the labels"]]
    assert sum(labelled) == tp + fn and all(0 <= float(v) <= 1 for v in parts["IoU"])
    assert any(d.label == "Agreement by part CSV" for d in at.get("download_button"))


def test_quality_shows_a_prediction_made_before_as_the_predict_page_does(fake_map, tiny_model_path):
    """Back from another source (the session's prediction forgotten, its file still there), the Predict
    page showed the prediction made before at once while the Quality page said to run one."""
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.session_state["prediction"] = None  # as a visit to another source leaves it
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    assert not [i.value for i in at.info if "Run a prediction first" in i.value]
    assert [m.label for m in at.metric][:1] == ["IoU"]


def test_a_reload_while_a_prediction_runs_follows_it(fake_map, tiny_model_path):
    """A browser reload during a prediction lost it: the Predict page said "Press Predict" and the Quality
    page "Run a prediction first" long after it had finished in the server's thread."""
    import threading

    from core.region import Region
    from pages.components import cached, predictions, state

    at = predict_page(tiny_model_path)
    image = at.session_state["scene"]["image_path"]
    key = cached.prediction_key(image, Region.from_geojson(at.session_state["region"]).key(), str(tiny_model_path), 1)
    gate = threading.Event()

    def work(progress):
        gate.wait(60)
        return cached.prediction_work(key)(progress)

    predictions.start(key, work)
    at.session_state["predicting"] = list(key)  # as the Predict button leaves it (and saves it at once)
    at.switch_page("pages/quality.py").run()
    sid = at.query_params[state.SESSION_PARAM][0]

    again = new_app()  # the reload: a new browser session with the same URL
    again.query_params[state.SESSION_PARAM] = sid
    again.switch_page("pages/quality.py").run()
    assert not again.exception and not again.error
    assert any("A prediction started on the Predict page is running" in i.value for i in again.info)
    gate.set()
    assert predictions.get(key).finished.wait(120)
    again.run()
    assert not again.exception and not again.error and [m.label for m in again.metric][:1] == ["IoU"]


def test_the_errors_of_a_crop_class_are_missed_crop_and_of_another_false_crop(fake_map, tiny_model_path):
    """'Where the errors are': a class that counts as crop can only have missed crop, another only false crop,
    in its wrong pixels and its share alike."""
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    errors = at.dataframe[0].value
    assert len(errors)
    for _, row in errors.iterrows():
        kind = "missed" if row["counts as"] == "crop" else "false"
        assert row["wrong pixels"].endswith(f" {kind} crop"), row.to_dict()
        assert row["share"].endswith(f" of all {kind} crop"), row.to_dict()


def test_a_map_exactly_as_good_as_calling_everything_crop_is_said(fake_map, tiny_model_path, monkeypatch):
    """F1 equal to the everything-crop baseline: the map does no better than none, and the page says so."""
    from core.metrics import everything_crop_f1
    from pages.components import cached

    real = cached.confusion
    counts = {"tp": 150, "fp": 39, "fn": 107, "tn": 145}
    monkeypatch.setattr(cached, "confusion", lambda *a: {**real(*a), **counts,
                                                          "f1": everything_crop_f1(*counts.values())})
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    assert [w.value for w in at.warning if w.value.startswith("Calling every pixel crop would score F1 0.736")]
