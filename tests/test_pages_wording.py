"""Page wording and layout that a review in a real browser found wrong, driven with AppTest: chart
names and axes, where an error or an empty page sends the user, the Earth Engine note, the model card."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa

from apptest import new_app, predict_page


def _charts(at) -> list[tuple[dict, "object"]]:
    """(Vega-Lite spec, data as a DataFrame) of every chart on the page."""
    out = []
    for el in at.get("arrow_vega_lite_chart"):
        frames = [pa.ipc.open_stream(d).read_all().to_pandas()
                  for d in [el.proto.data.data, *(ds.data.data for ds in el.proto.datasets)] if d]
        out.append((json.loads(el.proto.spec), max(frames, key=len)))  # the curves' data (not a rule's one row)
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
    # the legend above the plot in one column (at the right, then in one row above it, a 1024 px screen cut
    # it to "F1 IoU Precision Re"; in two columns, an 800 px window), and the chosen threshold drawn as a rule
    assert spec["layer"][0]["encoding"]["color"]["legend"] == {"orient": "top", "columns": 1, "labelFontSize": 13, "titleFontSize": 13,
                                                               "labelColor": "#31333f", "titleColor": "#31333f"}  # (12:1)
    assert spec["layer"][1]["mark"]["type"] == "rule"
    # four hues, one per score (the theme gave F1/IoU and precision/recall two shades of one hue)
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    assert scale["domain"] == ["F1", "IoU", "Precision", "Recall"] and len(set(scale["range"])) == 4


def _finished_job(workdir, epochs: int) -> str:
    """A finished training job in the work folder, with ``epochs`` rows of history; returns its folder."""
    job = workdir / "jobs" / "job-20260101-000000-abcdef"
    job.mkdir(parents=True)
    rows = [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.1 / e, "iou": 0.2 * e, "val_iou": 0.15 * e,
             "dice": 0.3 * e, "val_dice": 0.25 * e} for e in range(1, epochs + 1)]
    (job / "status.json").write_text(json.dumps({"state": "done", "job_id": job.name, "started": 1.0, "epoch": epochs,
                                                 "epochs": epochs, "history": rows, "message": "finished"}))
    return str(job)


def test_training_curves_are_named_and_not_drawn_empty_after_one_epoch(fake_map, tmp_path):
    """After a one-epoch training the Model page drew two empty charts (a line needs two
    points); with more epochs the curves were named by raw history keys (loss, val_loss, iou,
    val_iou, dice, val_dice) on unlabelled axes."""
    job = _finished_job(tmp_path / "work", 1)
    at = new_app()
    at.session_state["job_dir"] = job  # this session's job
    at.switch_page("pages/model.py").run()
    assert not at.exception and not at.error
    assert not _charts(at)
    # a finished job will have no second epoch: it says why there are no curves
    assert any(c.value.startswith("One finished epoch only, so no training curves") for c in at.caption)

    at.switch_page("pages/region.py").run()
    (tmp_path / "work" / "jobs" / "job-20260101-000000-abcdef" / "status.json").unlink()
    (tmp_path / "work" / "jobs" / "job-20260101-000000-abcdef").rmdir()
    at.session_state["job_dir"] = _finished_job(tmp_path / "work", 3)
    at.switch_page("pages/model.py").run()
    assert not at.exception and not at.error
    charts = _charts(at)
    assert len(charts) == 2
    (loss_spec, loss), (score_spec, score) = charts
    names = lambda df: set(df[[c for c in df.columns if df[c].dtype == object][0]])  # noqa: E731
    assert names(loss) == {"training loss", "validation loss"}
    assert names(score) == {"training IoU", "validation IoU", "training F1", "validation F1"}
    assert _axis_titles(loss_spec) == ("epoch", "loss") and _axis_titles(score_spec) == ("epoch", "score (0-1)")
    # whole epochs on the x axis, each once, not the 1.0, 1.5, 2.0 of a line chart's default ticks
    # (they read "1 2 2 3"); the loss axis fitted to the figures, not from 0 (where a drop looks flat)
    assert loss_spec["encoding"]["x"]["axis"] == {"format": "d", "values": [1, 2, 3]}
    assert loss_spec["encoding"]["y"]["scale"] == {"zero": False}
    # the four scores' legend in two columns above the plot (in one row a laptop's half column cut it)
    assert score_spec["encoding"]["color"]["legend"] == {"orient": "top", "columns": 2}


def _finished_with_best(tmp_path, tiny_model_path) -> Path:
    """A finished 3-epoch training job whose best checkpoint (a copy of the tiny model) is epoch 1's."""
    import shutil

    job = Path(_finished_job(tmp_path / "work", 3))
    status = json.loads((job / "status.json").read_text())
    status["history"][0].update(val_loss=0.3, val_iou=0.697)  # epoch 1 the best (the others: 0.55, 0.37)
    (job / "status.json").write_text(json.dumps(status))
    (job / "train").mkdir()
    shutil.copy(tiny_model_path, job / "train" / "best.keras")
    shutil.copy(tiny_model_path.with_suffix(".json"), job / "train" / "best.json")
    return job


def test_the_best_epoch_is_named_where_it_is_not_the_last(fake_map, tmp_path, tiny_model_path):
    """The best checkpoint was epoch 1 of 3, yet the bar and the curves gave only the last epoch's figures,
    and "Use the best checkpoint" did not say which it was: a presenter quoted the wrong number."""
    job = _finished_with_best(tmp_path, tiny_model_path)
    at = new_app()
    at.session_state["job_dir"] = str(job)
    at.switch_page("pages/model.py").run()
    assert not at.exception and not at.error
    assert [b for b in at.button if b.label == "Use the best checkpoint (epoch 1, val IoU 0.697)"]
    assert "best (the checkpoint kept): epoch 1, val loss 0.300, val IoU 0.697" in at.get("progress")[0].proto.text
    for spec, _ in _charts(at):  # a dashed rule at epoch 1 on both charts
        rule = [layer for layer in spec["layer"] if layer["mark"].get("type", layer["mark"]) == "rule"]
        assert rule and rule[0]["encoding"]["x"]["field"] == "epoch"
    # the page opens where that result is (after a reload it opened on the shipped weights, a tab away)
    from test_page_model import _opening_tab

    assert _opening_tab(at) == 2
    assert not [c for c in at.caption if "this checkpoint's" in c.value]  # no model in use to compare with
    # the shipped model in use scores higher on its own validation blocks: said beside the button, which was
    # taken for an upgrade
    from pages.components import models

    at.session_state["model_path"] = str(models.shipped())
    at.run()
    [said] = [c.value for c in at.caption if "this checkpoint's" in c.value]
    assert said.startswith("The model in use, crop_unet_light.keras, has validation IoU 0.791 (on its own validation "
                           "data, not this run's): this checkpoint's 0.697 is lower.")
    [b for b in at.button if b.label.startswith("Use the best checkpoint")][0].click().run()
    assert not at.exception and at.session_state["model_path"] == str(job / "train" / "best.keras")
    at.switch_page("pages/region.py").run()
    at.switch_page("pages/model.py").run()
    assert _opening_tab(at) == 0  # in use: nothing new there


def test_the_predict_page_offers_a_finished_trainings_best_checkpoint(fake_map, tmp_path, tiny_model_path):
    """The Predict page offered the shipped weights (or ran the model in use) while this session's
    training had finished, its best checkpoint a page away and unsaid."""
    job = _finished_with_best(tmp_path, tiny_model_path)
    at = new_app()
    at.session_state["job_dir"] = str(job)
    at.switch_page("pages/predict.py").run()
    assert not at.exception
    assert any(i.value == "Your training has finished: its best checkpoint (epoch 1, validation IoU 0.697) is not the "
               "model in use." for i in at.info), [i.value for i in at.info]
    from pages.components import models

    at.session_state["model_path"] = str(models.shipped())
    at.run()
    # with how it compares with the model in use (the Model page said it; here it was offered as an upgrade)
    assert any("is not the model in use (crop_unet_light.keras). The model in use has validation IoU 0.791 (on its "
               "own validation data): this checkpoint's 0.697 is lower." in i.value for i in at.info)
    [b for b in at.button if b.key == "use_finished_training"][0].click().run()
    assert not at.exception and at.session_state["model_path"] == str(job / "train" / "best.keras")
    assert not [b for b in at.button if b.key == "use_finished_training"]  # in use: nothing more to offer
    at.switch_page("pages/quality.py").run()
    assert not [b for b in at.button if b.key == "use_finished_training"]
    # the shipped weights chosen again after it: passed over, no longer offered (it came back on every page)
    at.switch_page("pages/model.py").run()
    [b for b in at.button if b.label == "Load shipped weights"][0].click().run()
    assert not at.exception and at.session_state["model_path"] == str(models.shipped())
    at.switch_page("pages/predict.py").run()
    assert not at.exception and not [b for b in at.button if b.key == "use_finished_training"]


#: a region of the sample scene under 8 px a side (drawn by a user zoomed in)
SMALL_REGION = {"type": "Feature", "properties": {"crs": "image", "name": "drawn"},
                "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [6, 0], [6, 6], [0, 6], [0, 0]]]}}


def test_a_region_the_pages_cannot_use_links_back_to_the_region_page(fake_map, tiny_model_path):
    """A region too small for the model (or any scene that cannot be made): Data and Predict showed
    the error and nothing else, a dead end; they now link to the Region page, where it is redrawn."""
    at = new_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.session_state["region"] = SMALL_REGION
    for page in ("pages/data.py", "pages/predict.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.error and "at least 8 x 8 px" in at.error[0].value, page
        assert [link for link in at.get("page_link") if link.proto.label == "Go to the Region page"], page


#: what core.ee.auth says on a machine without Earth Engine credentials
EE_UNSET = ("Earth Engine is not configured: no credentials found; set GOOGLE_APPLICATION_CREDENTIALS to a "
            "service-account JSON key, or run `earthengine authenticate` once; and set EE_PROJECT")


def _no_earth_engine(monkeypatch):
    from core.ee import auth

    monkeypatch.setattr(auth, "status", lambda *a, **k: auth.EEStatus(False, None, "none", EE_UNSET))


def test_without_earth_engine_the_region_page_says_so_in_one_line(fake_map, monkeypatch):
    """Without Earth Engine, the caption under the disabled Camana preset repeated the whole
    set-up text (five lines at 1024 px wide, pushing the map below the fold); it is one line
    pointing to the sidebar, which (with the button's help) keeps the full reason."""
    _no_earth_engine(monkeypatch)
    at = new_app().run()
    assert not at.exception
    # on the presets' heading line (a caption under the button pushed the map down a line)
    assert not at.columns[1].caption
    assert at.markdown[0].value == ("**Presets** :gray[(the Camana valley needs Earth Engine, which is not set up here: "
                                    "the sidebar's *Why* says how)]")
    assert any(EE_UNSET in c.value for c in at.sidebar.caption)


def test_the_earth_engine_page_says_earth_engine_once(fake_map, monkeypatch):
    """It said 'Earth Engine is not available: Earth Engine is not configured: ...'."""
    _no_earth_engine(monkeypatch)
    at = new_app()
    at.switch_page("pages/earthengine.py").run()
    assert not at.exception
    told = at.info[0].value
    assert told.startswith("Earth Engine is not configured: no credentials found") and told.count("Earth Engine") == 1, told
    assert told.endswith("EE_PROJECT. Everything else works on local data."), told


def test_quality_before_any_prediction_sends_to_the_step_that_is_missing(fake_map, tiny_model_path):
    """Quality said 'Run a prediction first.' and linked to Predict even with no model loaded
    (after a browser reload, for example), where Predict only says 'Load a model first'; and
    after the region changed it said the same, as if nothing had ever been predicted."""
    at = new_app()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    assert "no model is loaded yet" in at.info[0].value
    assert [link.proto.page for link in at.get("page_link")] == ["model"]

    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    assert "none for this region yet" in at.info[0].value and "a new region" in at.info[0].value
    assert [link.proto.page for link in at.get("page_link")] == ["predict"]


def test_the_shipped_model_card_reads_without_nested_parentheses(fake_map):
    """'On the validation blocks (not used for training; whole-block tiled prediction (default
    config: 512 px tiles, 128 px overlap), ... pooled over valid pixels)': the card's method is
    now its own line under the heading."""
    from core.card import DEFAULT_MODEL_PATH

    at = new_app()
    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/model.py").run()
    assert not at.exception and not at.error
    assert "**On the validation blocks** (not used for training)" in [m.value for m in at.markdown]
    # in plain words; the card's own (technical) words in its help
    [how] = [c for c in at.caption if c.value.startswith("How: ")]
    assert how.value == ("How: each of the 6 validation blocks predicted whole, as the Predict page does; a pixel is "
                         "crop at probability 0.5 or more; the figures count the pixels of all blocks together.")
    # the card's words reach the tooltip (Markdown) escaped, so that they show as written
    assert how.help.startswith(r"whole\-block tiled prediction \(default config: 512 px tiles")
    assert re.sub(r"\\(.)", r"\1", how.help).startswith("whole-block tiled prediction (default config: 512 px tiles")
    assert list(at.dataframe[0].value.index)[0] == "block_r1_c1"  # the blocks by name, not by file
    # the sample scene is a training block: said beside these figures (the Quality page's are higher)
    [said] = [c.value for c in at.caption
              if c.value.startswith("The sample scene is one of the blocks the shipped model was trained on")]
    assert said.endswith("the figures above are on the validation blocks.")  # (it sent to the Model page, from there)


def test_predict_without_a_model_loads_the_shipped_weights_in_one_click(fake_map, tiny_model_path, monkeypatch):
    """A fresh session (a bookmark, a browser reload) on Predict only said 'Load a model first' and
    linked to the Model page; the usual choice, the shipped weights, is now a button right there."""
    monkeypatch.setenv("CROPMAP_SHIPPED_MODEL", str(tiny_model_path))
    at = new_app()
    at.switch_page("pages/predict.py").run()
    assert "Load a model first" in at.info[0].value
    use = [b for b in at.button if b.label == "Use the shipped weights"]
    assert len(use) == 1
    use[0].click().run()
    assert not at.exception
    assert at.session_state["model_path"] == str(tiny_model_path)
    assert "Predict" in [b.label for b in at.button] and not [i for i in at.info if "Load a model" in i.value]


def test_a_trained_models_validation_figures_are_named_in_words(fake_map, tiny_model_path, tmp_path):
    """The Model page showed Keras's keys: "val_dice 0.874, val_iou 0.777, val_loss 0.626"."""
    import shutil

    model = tmp_path / "best.keras"
    shutil.copy(tiny_model_path, model)
    card = json.loads(tiny_model_path.with_suffix(".json").read_text())
    card["metrics"] = {"val": {"val_dice": 0.874, "val_iou": 0.777, "val_loss": 0.626, "loss": 0.5}}
    model.with_suffix(".json").write_text(json.dumps(card))
    at = new_app()
    at.session_state["model_path"] = str(model)
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert ("Validation patches at the best epoch: IoU 0.777, F1 (Dice) 0.874, loss 0.626."
            in [c.value for c in at.caption])


def test_core_messages_are_shown_as_sentences_but_names_as_written():
    from pages.components.ui import sentence

    assert sentence("the region lies outside the image") == "The region lies outside the image"
    assert sentence("training diverged: the loss became nan", ".") == "Training diverged: the loss became nan."
    assert sentence("Already a sentence.", ".") == "Already a sentence."
    # a file, a path or an identifier first keeps its spelling (fake_png.tif is not Fake_png.tif)
    for name in ("fake_png.tif is not on the image's grid", "gs://bucket/x: not found", "crop_unet.keras: unreadable",
                 "ee.Initialize failed"):
        assert sentence(name) == name


def test_a_files_words_in_a_message_make_no_link_and_a_command_with_backticks_stays_one_code_span():
    """Messages quote a file's words (a GeoJSON's names, a band name, a file name): as Markdown, ``[Sign in](url)``
    made a link and ``![](url)`` a remote image inside the app's own error box. A model card's command holding
    a backtick ended its code span, and the rest showed as the card's own Markdown."""
    from html import escape

    from markdown_it import MarkdownIt

    from pages.components.ui import code_span, sentence

    md = MarkdownIt()
    for words in ("field [Sign in](http://example.com/x) has no crop", "band ![](http://example.com/i.png)",
                  "see <http://example.com/y> or <b>bold</b>"):
        shown = md.render(sentence(words))
        assert "<a " not in shown and "<img" not in shown and "<b>" not in shown, shown
    assert sentence("a < b and 3<4") == "A < b and 3<4"  # (a comparison is no link: left as it is)
    for command in ("python -m core train --out runs/x", "echo `whoami` [x](http://example.com)", "a `` b"):
        html = md.render(code_span(command))
        assert html.count("<code>") == 1 and "<a " not in html, html
        assert html.strip() == f"<p><code>{escape(command, quote=False)}</code></p>", html  # (all of it, as written)


def test_long_file_names_are_cut_in_the_middle_for_the_sidebar():
    """A Sentinel-2 tile's name in the sidebar's status box broke mid-word over two lines."""
    from pages.components.ui import cut_long_words

    said = cut_long_words("00002806639B424A_S2L2A_2017-08-27_B02_B03_B04_B08.tif: 64 x 64 px, EPSG:32631, WGS 84")
    assert said == "00002806639B4…3_B04_B08.tif: 64 x 64 px, EPSG:32631, WGS 84"
    # the same name cut the same wherever it stands ("…7_window.tif:" in one box, "…17_window.tif" in the next)
    name = "ftw_austria_s2_2021-06-17_window.tif"
    assert cut_long_words(f"Source: {name}") == "Source: " + cut_long_words(f"{name}:")[:-1]
    assert cut_long_words(f"({name})") == f"({cut_long_words(name)})"
    assert cut_long_words("sample scene: 1024 x 1024 px") == "sample scene: 1024 x 1024 px"


def test_an_out_of_date_prediction_names_what_changed_and_only_that():
    """A local image's scene is cut anew for every region, so its path changes with the region: a new
    region alone is "the region", not "the image, the region"."""
    from pages.components.cached import prediction_change

    made = ("scenes/a/image.tif", 1.0, "box-a", "m.keras", 5.0, 1)
    assert prediction_change(made, ("scenes/b/image.tif", 2.0, "box-b", "m.keras", 5.0, 1)) == "the region"
    assert prediction_change(made, ("scenes/a/image.tif", 3.0, "box-a", "m.keras", 5.0, 1)) == "the image"
    assert prediction_change(made, ("scenes/b/image.tif", 2.0, "box-b", "n.keras", 6.0, 1)) == "the region, the model"
    assert prediction_change(made, made[:-1] + (4,)) == "the views of each tile (predicted with 1, now set to 4)"


def test_two_scores_compared_are_written_apart():
    """'The model in use has validation IoU 0.791 ...: this checkpoint's 0.791 is lower' (0.7914 and 0.7911)."""
    from pages.components.models import apart

    assert apart(0.7914, 0.7911) == ("0.7914", "0.7911") and apart(0.791, 0.697) == ("0.791", "0.697")
    assert apart(0.5, 0.5) == ("0.500000", "0.500000")  # (the same: as far as it goes)


def test_a_model_chosen_while_the_training_runs_does_not_pass_its_result_over(fake_map, tmp_path, tiny_model_path,
                                                                            monkeypatch):
    """The shipped weights loaded to look at the region while the training ran (the usual thing to do): the
    training's best checkpoint was then taken for passed over, and never offered when it finished."""
    from dataclasses import replace

    from core import jobs

    job = _finished_with_best(tmp_path, tiny_model_path)
    real = jobs.status
    monkeypatch.setattr(jobs, "status", lambda job_dir, *a, **k: replace(real(job_dir, *a, **k), state="running"))
    at = new_app()
    at.session_state["job_dir"] = str(job)
    at.switch_page("pages/predict.py").run()
    assert not at.exception and not [b for b in at.button if b.key == "use_finished_training"]  # (not finished yet)
    [b for b in at.button if b.label == "Use the shipped weights"][0].click().run()
    assert not at.exception and at.session_state["model_path"] is not None
    monkeypatch.setattr(jobs, "status", real)  # the training ends
    at.run()
    assert not at.exception
    assert any(i.value.startswith("Your training has finished: its best checkpoint (epoch 1, validation IoU 0.697) is "
                                  "not the model in use (crop_unet_light.keras).") for i in at.info), [i.value for i in at.info]
    assert [b for b in at.button if b.key == "use_finished_training"]
