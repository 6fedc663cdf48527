"""The dashboard's charts (pages/components/charts.py), read from their Vega-Lite specifications."""

from __future__ import annotations

import math

from pages.components import charts


def _layers(chart) -> list[dict]:
    spec = chart.to_dict()
    return spec.get("layer", [spec])


def _data(chart, layer: dict) -> list[dict]:
    return chart.to_dict()["datasets"][layer["data"]["name"]]


def test_the_threshold_chart_has_each_score_a_gap_where_undefined_and_the_chosen_threshold():
    curve = [{"threshold": t, "f1": t, "iou": t / 2, "precision": None if t > 0.8 else 1 - t, "recall": 0.5}
             for t in (0.1, 0.5, 0.9)]
    chart = charts.threshold_chart(curve, 0.35)
    lines, rule = _layers(chart)
    rows = _data(chart, lines)
    assert {r["score"] for r in rows} == {"F1", "IoU", "Precision", "Recall"} and len(rows) == 12
    [gap] = [r for r in rows if r["score"] == "Precision" and r["threshold"] == 0.9]
    assert gap["value"] is None or math.isnan(gap["value"])  # a gap in the line, not a zero
    assert lines["encoding"]["color"]["scale"]["range"] == charts.SCORE_COLOURS
    assert rule["mark"]["type"] == "rule" and _data(chart, rule) == [{"threshold": 0.35}]
    assert lines["encoding"]["y"]["scale"]["domain"] == [0.0, 1]  # (the lowest score, IoU's 0.05)
    # scores of 0.67-1 fill the plot (from 0 they were squeezed into its top third): from the tenth below
    high = [{"threshold": t, "f1": 0.9, "iou": 0.67 + t / 10, "precision": 0.95, "recall": 1.0} for t in (0.1, 0.5)]
    assert _layers(charts.threshold_chart(high, 0.5))[0]["encoding"]["y"]["scale"]["domain"] == [0.6, 1]


def test_the_training_chart_marks_the_kept_epoch_unless_it_is_the_last_and_labels_whole_epochs():
    history = [{"epoch": e, "loss": 1 / e, "val_loss": 1.2 / e if e != 3 else 0.1, "iou": e / 30, "val_iou": e / 40}
               for e in range(1, 26)]
    chart = charts.training_chart(history, charts.LOSS_CURVES, "loss", best_epoch=3)
    lines, rule, text = _layers(chart)
    assert {r["curve"] for r in _data(chart, lines)} == {"training loss", "validation loss"}
    ticks = lines["encoding"]["x"]["axis"]["values"]
    assert ticks == [1, 4, 7, 10, 13, 16, 19, 22, 25] and len(ticks) <= charts.MAX_EPOCH_TICKS  # whole epochs
    assert lines["encoding"]["y"]["scale"]["zero"] is False  # fitted to the figures
    assert _data(chart, rule) == [{"epoch": 3, "label": "best"}] and text["mark"]["type"] == "text"
    # the last epoch kept: nothing to mark (the line ends there)
    assert len(_layers(charts.training_chart(history, charts.LOSS_CURVES, "loss", best_epoch=25))) == 1
    assert len(_layers(charts.training_chart(history, charts.SCORE_CURVES, "score", best_epoch=None))) == 1
    # stretched to its column, the layered chart cut its y axis (a loss of 1.24 read ".24", the title gone; seen in
    # the browser test's screenshot): the width it fits holds the axis
    for best in (3, None):
        spec = charts.training_chart(history, charts.LOSS_CURVES, "loss", best_epoch=best).to_dict()
        assert spec["autosize"] == {"type": "fit-x", "contains": "padding"} and spec["height"] == 300


def test_the_charts_say_what_they_show_to_a_screen_reader():
    """Vega named the threshold chart by its tick labels ("0.0 0.1 ... score (0-1) F1 IoU ...")."""
    from pages.components import charts

    curve = [{"threshold": t, "f1": 0.5, "iou": 0.4, "precision": 0.6, "recall": 0.7} for t in (0.1, 0.2)]
    assert charts.threshold_chart(curve, 0.45).to_dict()["description"] == (
        "Line chart of F1, IoU, Precision, Recall against the crop threshold from 0 to 1, with a dashed line at the "
        "chosen threshold 0.45")
    history = [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.1 / e} for e in (1, 2, 3)]
    assert charts.training_chart(history, charts.LOSS_CURVES, "loss", 2).to_dict()["description"] == (
        "Line chart of training loss, validation loss against the epoch, epochs 1 to 3; the kept checkpoint is epoch 2")
