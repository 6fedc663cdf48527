"""The dashboard's charts (Altair): built here, shown by the pages with ``st.altair_chart``.

Each function takes plain figures (lists of dicts, as core gives them) and returns a chart; none
shows anything or reads the session.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from core.metrics import SCORE_TITLES

#: the threshold curve's series, as the Quality page's metrics name them
SCORE_NAMES = {key: SCORE_TITLES[key] for key in ("f1", "iou", "precision", "recall")}
#: one distinct colour per score (Okabe-Ito, safe for colour-blind readers); the theme's paired
#: palette gave F1/IoU and precision/recall two shades of one hue, hard to tell apart on a projector
SCORE_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7"]
#: the training curves' series (history.csv columns), by what they are
LOSS_CURVES = {"loss": "training loss", "val_loss": "validation loss"}
SCORE_CURVES = {"iou": "training IoU", "val_iou": "validation IoU", "dice": "training F1", "val_dice": "validation F1"}  # (Dice is F1)
#: the charts' text (axes, legends): the page's own, 12:1 on white
TEXT_COLOUR = "#31333f"
#: at most this many epochs are labelled on a training chart's axis
MAX_EPOCH_TICKS = 10


def threshold_chart(curve: Sequence[dict], threshold: float):
    """The scores against the threshold (``curve``: rows with "threshold" and the scores; an undefined
    score, None, leaves a gap), with the chosen ``threshold`` as a dashed rule; the legend (titled)
    above the plot in one column, where the narrowest column (the Quality page's in an 800 px window,
    184 px) does not cut it (in one row, "Recall" was cut to "Re" at 1024 px; in two, at 800 px, and
    the plot with it, at threshold 0.85)."""
    import altair as alt

    df = pd.DataFrame(list(curve)).set_index("threshold").astype(float)
    long = (df[[c for c in SCORE_NAMES if c in df]].rename(columns=SCORE_NAMES).reset_index()
            .melt("threshold", var_name="score", value_name="value"))
    lowest = long["value"].min()
    # from the tenth below the lowest score, to 1: from 0, scores of 0.7-1 were squeezed into the plot's top third
    floor = min(max(math.floor(10 * lowest - 0.5) / 10, 0.0), 0.9) if math.isfinite(lowest) else 0.0
    # (read on a projector: Vega's 10 px were not; in the text's colour: the theme's grey was 3.7:1 on white)
    axis = alt.Axis(labelFontSize=13, titleFontSize=13, labelColor=TEXT_COLOUR, titleColor=TEXT_COLOUR)
    lines = alt.Chart(long, height=340).mark_line(strokeWidth=2.5).encode(
        x=alt.X("threshold:Q", title="crop threshold", scale=alt.Scale(domain=[0, 1]), axis=axis),
        y=alt.Y("value:Q", title="score (0-1)", scale=alt.Scale(domain=[floor, 1]), axis=axis),
        # a legend title: layered with the rule, an untitled legend made Vega draw at translate(61, Infinity)
        color=alt.Color("score:N", title="score", sort=list(SCORE_NAMES.values()),
                        legend=alt.Legend(orient="top", columns=1, labelFontSize=13, titleFontSize=13,
                                          labelColor=TEXT_COLOUR, titleColor=TEXT_COLOUR),
                        scale=alt.Scale(domain=list(SCORE_NAMES.values()), range=SCORE_COLOURS)),
        tooltip=[alt.Tooltip("threshold:Q", format=".2f"), "score", alt.Tooltip("value:Q", format=".3f")],
    )
    rule = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(strokeDash=[4, 3], color="gray").encode(
        x="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", title="chosen threshold", format=".2f")])
    # said to a screen reader (Vega's own name for the chart was its tick labels, "0.0 0.1 ... score")
    return (lines + rule).properties(description=(
        f"Line chart of {', '.join(SCORE_NAMES.values())} against the crop threshold from 0 to 1, with a dashed "
        f"line at the chosen threshold {threshold:.2f}"))


def training_chart(history: Sequence[dict], names: dict[str, str], y_label: str, best_epoch: int | None = None):
    """The ``names`` columns of a training run's ``history`` (rows with "epoch", as history.csv) against
    the epoch, named by ``names``' values, with the epoch whose checkpoint is kept (``best_epoch``)
    marked "best" unless it is the last. Whole epochs on the x axis, each once (the default ticks,
    1, 1.5, 2..., read "1 2 2 3"); the y axis fitted to the figures (from 0, a loss going from 1.28 to
    1.05 looks flat); the legend in two columns (in one row, a 1366 px screen cut it to "validation Di...")."""
    import altair as alt

    hist = pd.DataFrame(list(history))
    long = hist.melt("epoch", [c for c in names if c in hist], "curve", "value")
    long["curve"] = long["curve"].map(names)
    last = int(hist["epoch"].max())
    ticks = list(range(1, last + 1, -(-last // MAX_EPOCH_TICKS)))
    lines = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(values=ticks, format="d")),
        y=alt.Y("value:Q", title=y_label, scale=alt.Scale(zero=False)),
        color=alt.Color("curve:N", title=None, sort=list(names.values()), legend=alt.Legend(orient="top", columns=2)),
        tooltip=["epoch", "curve", alt.Tooltip("value:Q", title=y_label, format=".3f")],
    )
    if best_epoch is not None and int(best_epoch) != last:
        mark = pd.DataFrame({"epoch": [best_epoch], "label": ["best"]})
        lines += alt.Chart(mark).mark_rule(color="#6b7280", strokeDash=[4, 3]).encode(x="epoch:Q")
        lines += alt.Chart(mark).mark_text(align="left", dx=3, color="#6b7280").encode(
            x="epoch:Q", y=alt.value(8), text="label:N")  # (at the plot's top)
    best = f"; the kept checkpoint is epoch {int(best_epoch)}" if best_epoch is not None else ""
    # (a layered chart stretched to its column cut its y axis's title and the first digit of its labels, a
    # loss of 1.24 read ".24", unless the width it fits includes the axis: autosize fit-x, padding contained)
    fit = alt.AutoSizeParams(type="fit-x", contains="padding")
    return lines.properties(height=300, autosize=fit, description=(  # (for a screen reader, as threshold_chart's)
        f"Line chart of {', '.join(n for c, n in names.items() if c in hist)} against the epoch, epochs 1 to {last}{best}"))
