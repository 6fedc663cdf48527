"""What a UI review in a real browser found, driven with AppTest (helpers and the fake map from test_pages)."""

from __future__ import annotations

import json

import pyarrow as pa

from test_pages import fake_map, new_app, predict_page  # noqa: F401 - fake_map is a fixture


def _charts(at) -> list[tuple[dict, "object"]]:
    """(Vega-Lite spec, data as a DataFrame) of every chart on the page."""
    out = []
    for el in at.get("arrow_vega_lite_chart"):
        data = el.proto.data.data or next(iter(el.proto.datasets)).data.data
        out.append((json.loads(el.proto.spec), pa.ipc.open_stream(data).read_all().to_pandas()))
    return out


def _axis_titles(spec: dict) -> tuple[str | None, str | None]:
    enc = spec["layer"][0]["encoding"] if "layer" in spec else spec["encoding"]
    return enc["x"].get("title"), enc["y"].get("title")


def test_quality_curve_names_its_series_and_axes_as_the_metrics_do(fake_map, tiny_model_path):
    """The threshold curve was titled 'F1 and IoU against the threshold' but drew four lines,
    named in its legend by raw keys (f1, iou, precision, recall), with unlabelled axes."""
    at = predict_page(tiny_model_path)
    at.button[0].click().run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception and not at.error
    [(spec, data)] = _charts(at)
    series = set(data[[c for c in data.columns if data[c].dtype == object][0]])
    assert series == {"F1", "IoU", "Precision", "Recall"}, series
    assert _axis_titles(spec) == ("crop threshold", "score (0-1)")
    assert "**Scores against the threshold**" in [m.value for m in at.markdown]
