"""The Model page: shipped, uploaded and fine-tuned models; training jobs followed, cancelled and found again.

Driven with AppTest; the helpers are in apptest.py.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import streamlit as st

from apptest import new_app, own_image_app, by_label, forms, Upload, texts


def test_model_page_loads_uploaded_card_model(fake_map, tiny_model_path):
    at = new_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/model.py")
    at.run()
    assert not at.exception and not at.error
    from core.bands import FEATURE_BANDS

    # the card of the model in use (conftest's tiny model: the light preset on the five feature bands)
    assert f"**tiny\\.keras** -- preset light, bands {', '.join(FEATURE_BANDS)}" in texts(at)  # (as text: "." escaped)


def test_model_page_fine_tunes_the_model_in_use(fake_map, tiny_model_path, monkeypatch):
    from core import training_jobs

    calls = []
    monkeypatch.setattr(training_jobs, "start_training", lambda *a, **k: calls.append((a, k)) or "job")
    at = new_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/model.py")
    at.run()
    assert by_label(at.selectbox, "Preset").value == "light"  # the default preset
    at.checkbox[0].check()
    by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception  # (the job panel then reports that the faked job does not exist)
    (train, val, _job), kw = calls[0]
    assert kw["config"].init_model == str(tiny_model_path) and kw["config"].preset == "light"
    # a browser reload (a new session with the one kept on disk) keeps the box ticked: it came back unticked,
    # and a retry trained from nothing
    from pages.components import state

    again = new_app()
    again.query_params[state.SESSION_PARAM] = at.query_params[state.SESSION_PARAM][0]
    again.switch_page("pages/model.py").run()
    assert again.checkbox(key="train_fine_tune").value is True
    # validation is a held-out block of the region, not the training pixels
    assert train != val and train[0].endswith("train_labels.tif") and val[0].endswith("val_labels.tif")
    assert kw["label_map"] == "binary" and "holds out" in kw["note"]
    # the model card will say what it was trained on in words, not by the job folder's paths
    assert kw["data_text"].startswith("a 1024 x 1024 px region of Sample scene: Landsat 8")
    assert "validation on columns 768-1023" in kw["data_text"] and "Cropland Data Layer" in kw["data_text"]


def test_model_page_keeps_the_training_form_and_refuses_a_second_job(fake_map, monkeypatch):
    from core import jobs, training_jobs

    calls = []
    monkeypatch.setattr(training_jobs, "start_training", lambda *a, **k: calls.append(k) or "job")
    at = new_app()
    at.switch_page("pages/model.py")
    at.run()
    by_label(at.number_input, "Epochs").set_value(3)
    by_label(at.number_input, "Steps per epoch").set_value(4)
    by_label(at.selectbox, "Patch size").set_value(128)
    by_label(at.number_input, "Stop after epochs without improvement").set_value(2)
    by_label(at.number_input, "Patches scored after each epoch").set_value(12)
    # Enter in a box does not start the job: it started with the settings typed so far (Streamlit's default)
    assert not forms(at)["train_form"].enter_to_submit
    by_label(at.button, "Start training").click()
    at.run()
    assert calls[-1]["config"].epochs == 3 and calls[-1]["config"].patch_size == 128
    assert calls[-1]["config"].patience == 2 and calls[-1]["config"].val_patches == 12
    at.switch_page("pages/data.py")
    at.run()
    at.switch_page("pages/model.py")
    at.run()
    assert by_label(at.number_input, "Epochs").value == 3  # not back at the default 5
    assert by_label(at.number_input, "Stop after epochs without improvement").value == 2
    assert by_label(at.number_input, "Steps per epoch").value == 4
    assert by_label(at.selectbox, "Patch size").value == 128
    # a job running in the work folder (e.g. started before a browser reload) is found again, and a
    # second one cannot be started beside it
    job_dir = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs" / "job-running"
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.05}, job_dir, note="held-out note")
    try:
        fresh = new_app()  # a new browser session: nothing in its session state
        fresh.switch_page("pages/model.py")
        fresh.run()
        assert not fresh.exception
        assert by_label(fresh.button, "Start training").disabled
        assert "held-out note" in texts(fresh)
        side = new_app()  # another new session, on the first page: the sidebar follows the job too
        side.run()
        assert "Training: running" in texts(side) or "Training: starting" in texts(side)
        assert any(b.label == "Cancel training" for b in fresh.button)
    finally:
        jobs.cancel(job_dir, terminate_after_s=5)


def test_the_seed_preset_on_smaller_patches_is_refused_on_start_not_in_its_job(fake_map):
    """The form offered the seed preset with 64 px patches: the job started and failed a few seconds later,
    saying to use --patch-size 256 (a flag the page has not), and left an empty failed job."""
    from core import jobs

    at = new_app()
    at.switch_page("pages/model.py")
    at.run()
    by_label(at.selectbox, "Preset").set_value("seed")
    by_label(at.selectbox, "Patch size").set_value(64)
    by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["The 'seed' preset takes 256 px patches only; use --patch-size 256 ('Patch "
                                           "size' in the dashboard) or another preset"]
    assert at.session_state["job_dir"] is None and not jobs.find_jobs(Path(os.environ["CROPMAP_WORKDIR"]) / "jobs")


def test_model_page_names_the_uploaded_files_when_the_card_is_another_models(fake_map, tiny_model_path, monkeypatch,
                                                                              tmp_path):
    """A model and the card of another model, uploaded: the error named the copy of the card stored
    beside the model (``tiny.json``), not the file the user chose; a matching card is used."""
    from core.card import DEFAULT_MODEL_PATH, card_path

    files = {"upload_model": Upload(tiny_model_path, "tiny.keras"),
             "upload_card": Upload(card_path(DEFAULT_MODEL_PATH), "card_of_run_B.json")}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = new_app()
    at.switch_page("pages/model.py").run()
    by_label(at.button, "Use uploaded model").click().run()
    assert not at.exception
    assert [e.value for e in at.error if "card_of_run_B.json is not tiny.keras's" in e.value], texts(at)
    assert at.session_state["model_path"] is None  # (nothing in use changed)
    stored = Path(os.environ["CROPMAP_WORKDIR"]) / "models"
    assert not list(stored.glob("*/tiny.keras"))  # the refused upload's copy is not kept
    files["upload_card"] = Upload(card_path(tiny_model_path), "tiny.json")
    by_label(at.button, "Use uploaded model").click().run()
    assert not at.exception and not at.error and "Using tiny.keras." in texts(at)
    assert len(list(stored.glob("*/tiny.keras"))) == 1


def test_model_page_trains_on_exported_patches(fake_map, small_scene, tmp_path, monkeypatch):
    from core import training_jobs
    from core.config import PatchConfig
    from core.patches import sample_patches

    img, lab = small_scene
    for name, seed in (("train_000", 1), ("test_000", 2)):
        sample_patches(img, lab, "cdl", PatchConfig(patch_size=128, kernel_buffer=16, count=3, seed=seed),
                       tmp_path / f"{name}.tfrecord.gz")
    calls = []
    monkeypatch.setattr(training_jobs, "start_training", lambda *a, **k: calls.append((a, k)) or "job")
    at = new_app()
    at.switch_page("pages/model.py")
    at.run()
    by_label(at.radio, "Train on").set_value("patches")
    at.run()
    by_label(at.selectbox, "Patch size").set_value(128)
    train_box = by_label(at.text_input, "Training patches")
    val_box = by_label(at.text_input, "Validation patches")
    train_box.set_value(str(tmp_path / "missing_*.tfrecord.gz"))
    val_box.set_value(str(tmp_path / "test_000.tfrecord.gz"))
    by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception and not calls
    assert any("No TFRecord files" in e.value for e in at.error)  # the project's message, in the page
    by_label(at.text_input, "Training patches").set_value(str(tmp_path / "train_*.tfrecord.gz"))
    by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception
    (train, val, _job), kw = calls[-1]
    assert train == [str(tmp_path / "train_*.tfrecord.gz")] and val == [str(tmp_path / "test_000.tfrecord.gz")]
    assert kw["note"] == ("Training on 1 TFRecord file(s) of 160 px patches (a random 128 px crop of each); "
                          "validation on the centre 128 px of 1 TFRecord file(s) of 160 px patches.")
    assert kw["pixel_size_m"] is None and kw["trained_on"] is None  # patches from elsewhere do not say their pixel size
    # those the Data page cut do (kept with them), and the model's card gets it; and the scene they were
    # cut from, where the model's figures are then training-set figures (said on Predict and Quality)
    at.session_state["patches"] = {"train": str(tmp_path / "train_*.tfrecord.gz"),
                                   "test": str(tmp_path / "test_000.tfrecord.gz"), "pixel_size_m": 10.0,
                                   "image": "/scenes/abc/image.tif"}
    by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception and calls[-1][1]["pixel_size_m"] == 10.0
    assert calls[-1][1]["trained_on"] == "/scenes/abc/image.tif"
    at.switch_page("pages/data.py")
    at.run()
    at.switch_page("pages/model.py")
    at.run()  # the choice and the paths are kept
    assert by_label(at.radio, "Train on").value == "patches"
    assert by_label(at.text_input, "Training patches").value == str(tmp_path / "train_*.tfrecord.gz")


def test_model_page_shows_the_shipped_cards_validation_figures(fake_map):
    from core.card import DEFAULT_MODEL_PATH, load_card

    card = load_card(DEFAULT_MODEL_PATH)
    at = new_app()
    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/model.py")
    at.run()
    assert not at.exception
    assert "The shipped weights are in use." in [s.value for s in at.success]  # (the button alone did not say)
    assert by_label(at.button, "Load shipped weights").proto.type == "secondary"  # the step taken: no longer the primary one
    shown = {m.label: m.value for m in at.metric}
    assert shown["IoU"] == f"{card.metrics['val_blocks']['iou']:.3f}"
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 6  # one row per val block
    # the card's time, read as a time: "created 2026-11-25 15:22 UTC" (the card says ...T15:22:20+00:00)
    created = card.created.replace("T", " ")[:16]
    assert f"created {created} UTC" in texts(at) and card.created not in texts(at)
    assert not at.warning  # the sample scene: 30 m Landsat, as the model's training images
    # the card in words (its JSON beside it, for programs), the card's own characters kept as they are
    [card_box] = [e for e in at.expander if e.label == "Model card"]
    told = [md.value for md in card_box.tabs[0].markdown]
    assert told[0].startswith("**Model:** U\\-Net, light preset") and "**Trained on:** Ag\\-Net" in told[2]
    assert any(t.startswith("**Made by:** `python -m core train") for t in told)
    assert card_box.tabs[1].json[0].value is not None


def test_an_uploaded_copy_of_the_shipped_model_is_the_shipped_model_on_the_sample(fake_map, monkeypatch):
    """The shipped model's files uploaded under another name (the same weights) lost the caveat that its
    figures on the sample scene, one of its training blocks, are training-set figures: the model was
    known by its path. It is now known by its card's weights fingerprint too (core.card.same_weights)."""
    from core.card import DEFAULT_MODEL_PATH, card_path

    said = "The sample scene is one of the blocks the shipped model was trained on"
    at = new_app()  # (the sample scene)
    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/model.py").run()
    assert not at.exception
    [shipped_caption] = [c.value for c in at.caption if c.value.startswith(said)]
    assert "training-set figures" in shipped_caption
    files = {"upload_model": Upload(DEFAULT_MODEL_PATH, "my_model.keras"),
             "upload_card": Upload(card_path(DEFAULT_MODEL_PATH), "my_model.json")}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    by_label(at.button, "Use uploaded model").click().run()
    assert not at.exception and not at.error and "Using my_model.keras." in texts(at)
    copy = Path(at.session_state["model_path"])
    assert copy.name == "my_model.keras" and copy.resolve() != DEFAULT_MODEL_PATH.resolve()
    at.run()
    assert [c.value for c in at.caption if c.value.startswith(said)] == [shipped_caption]  # beside its card
    # and on the Predict page, beside its map of the sample
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [256, 0], [256, 256], [0, 256], [0, 0]]]}}
    at.switch_page("pages/predict.py").run()
    by_label(at.button, "Predict").click().run()
    assert not at.exception and not at.error
    [caption] = [c.value for c in at.caption if c.value.startswith(said)]
    assert "training-set figures" in caption and caption.endswith("the model card (Model page) gives its figures on "
                                                                  "the validation blocks.")


def test_model_page_warns_that_its_figures_are_for_another_pixel_size(fake_map):
    """The shipped model's validation figures are for 30 m pixels: beside them, a 10 m image in use is warned of."""
    from core.card import DEFAULT_MODEL_PATH

    at = own_image_app()  # Sentinel-2, 10 m
    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/model.py")
    at.run()
    assert not at.exception and not at.error
    [warning] = [w.value for w in at.warning]
    assert warning.startswith("On the image in use, the model was trained on 30 m pixels and this image has 10 m pixels")
    assert warning.endswith("The validation figures above are for images of 30 m pixels, like its training images.")


def test_bad_model_path_shows_project_error(fake_map, tmp_path):
    at = new_app()
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip")
    bad.with_suffix(".json").write_text("{}")
    at.session_state["model_path"] = str(bad)
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert at.error and at.error[0].value.startswith("Model card broken.json: this JSON is not a model card")


def test_model_page_says_what_an_upload_needs_and_steps_the_learning_rate_finely(fake_map):
    at = new_app()
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert any(c.value.startswith("Both files are needed: upload the model (.keras) and its model card (.json).")
               for c in at.caption)
    assert next(b for b in at.button if b.label == "Use uploaded model").disabled
    lr = at.number_input(key="train_lr")
    assert lr.value == 0.001 and lr.step == 0.0001  # "+" gave 0.011 (11 times), "-" was greyed out


def test_model_page_follows_the_running_job_of_another_tab(fake_map):
    """This session followed a finished job; another tab starts one: the panel shows the running
    job with its Cancel (it showed the finished one, while the form said 'cancel it below')."""
    from core import jobs
    from test_jobs import wait_for

    root = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs"
    jobs.start_job("selftest", {"epochs": 1, "steps": 1, "delay": 0.0}, root / "job-a", note="job A")
    wait_for(root / "job-a", ("done",))
    at = new_app()
    at.session_state["job_dir"] = str(root / "job-a")  # this session started it
    at.switch_page("pages/model.py").run()
    assert "job A" in texts(at)
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.1}, root / "job-b", note="job B")
    try:
        wait_for(root / "job-b", ("running",))
        at.run()
        start = by_label(at.button, "Start training")
        assert start.disabled and "cancel it above" in (start.help or "")
        assert any(b.label == "Cancel training" for b in at.button) and "job B" in texts(at)
    finally:
        jobs.cancel(root / "job-b", terminate_after_s=5)


def test_model_page_says_that_the_followed_jobs_status_is_damaged(fake_map):
    """A status.json damaged on disk (an epoch numbered NaN) is said in the job's panel; the page
    keeps working (it was a ValueError in the training chart)."""
    import json

    from test_jobs import _finished_status

    job = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs" / "job-damaged"
    job.mkdir(parents=True)
    history = [{"epoch": 1, "loss": 0.5, "val_loss": 0.45}, {"epoch": float("nan"), "loss": 0.4, "val_loss": 0.41}]
    (job / "status.json").write_text(json.dumps(_finished_status(history=history)))
    at = new_app()
    at.session_state["job_dir"] = str(job)
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert any("is damaged (an epoch's number is nan)" in e.value for e in at.error), [e.value for e in at.error]
    assert any(b.label == "Load shipped weights" for b in at.button)


def _opening_tab(at) -> int:
    """The index of the tab a page's (only) st.tabs opens on."""
    def find(node):
        for child in getattr(node, "children", {}).values():
            if getattr(child, "type", "") == "tab_container":
                return child.proto.tab_container.default_tab_index
            found = find(child)
            if found is not None:
                return found
        return None

    return find(at.main)


def test_model_page_opens_on_the_running_job(fake_map):
    """Back on the Model page while its job runs: the Train tab, with the job's progress and Cancel above
    the (disabled) form; it opened on 'Shipped weights', the job hidden a tab away and below the form.
    Another session opens as usual (a new user landed on someone's progress bar and Cancel button,
    nothing saying whose), the job's bar saying it was started elsewhere."""
    from core import jobs
    from test_jobs import wait_for

    at = new_app()
    at.switch_page("pages/model.py").run()
    assert _opening_tab(at) == 0
    job_dir = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs" / "job-run"
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.1}, job_dir)
    try:
        wait_for(job_dir, ("running",))
        at.session_state["job_dir"] = str(job_dir)  # (as Start training keeps it)
        at.switch_page("pages/region.py").run()
        at.switch_page("pages/model.py").run()
        assert not at.exception and _opening_tab(at) == 2
        kinds = [getattr(c, "type", "") for c in at.tabs[2].children.values()]
        assert kinds.index("flex_container") < kinds.index("form")  # the job panel (a fragment), then the form
        assert any(b.label == "Cancel training" for b in at.tabs[2].button)
        assert "another session" not in " ".join(p.proto.text for p in at.get("progress"))
        other = new_app()
        other.switch_page("pages/model.py").run()
        assert not other.exception and _opening_tab(other) == 0
        assert any(b.label == "Cancel training" for b in other.tabs[2].button)  # (followed there all the same)
        assert "(started in another session)" in " ".join(p.proto.text for p in other.get("progress"))
    finally:
        jobs.cancel(job_dir, terminate_after_s=5)
    at.run()
    assert _opening_tab(at) == 0  # finished: the page opens as usual again


def test_best_checkpoint_of_a_running_job_is_used_as_a_copy(fake_map, tiny_model_path):
    """While the job runs, every better epoch replaces best.keras: the model in use is a copy,
    so it does not change behind the user's back."""
    import shutil

    from core import jobs
    from core.card import load_card
    from core.model import build_unet, save_model
    from test_jobs import wait_for

    job_dir = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs" / "job-run"
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.2}, job_dir)
    try:
        wait_for(job_dir, ("running",))
        (job_dir / "train").mkdir()
        best = job_dir / "train" / "best.keras"
        shutil.copy(tiny_model_path, best)
        shutil.copy(tiny_model_path.with_suffix(".json"), best.with_suffix(".json"))
        at = new_app()
        at.switch_page("pages/model.py").run()
        by_label(at.button, "Use the best checkpoint so far").click().run()
        in_use = Path(at.session_state["model_path"])
        assert not at.exception and in_use != best and in_use.read_bytes() == best.read_bytes()
        # said where the button is (the sidebar's model line may be below a laptop's screen)
        from pages.components import models

        said = f"Using {models.label(in_use)}: predict with it on the Predict page."
        assert [s.value for s in at.main.success] == [said]
        save_model(build_unet("light"), load_card(best), best)  # a better epoch is saved over it
        assert in_use.read_bytes() != best.read_bytes()  # the model in use stayed as it was
    finally:
        jobs.cancel(job_dir, terminate_after_s=5)
    # a second training started: the notice stays with the job it came from, not under the new job's bar
    # (two trainings started in one minute read alike: it looked like the new job's checkpoint)
    second = job_dir.with_name("job-second")
    jobs.start_job("selftest", {"epochs": 50, "steps": 10, "delay": 0.2}, second)
    try:
        at.session_state["job_dir"] = str(second)
        at.run()
        assert not at.exception and at.session_state["model_path"] == str(in_use) and not at.main.success
    finally:
        jobs.cancel(second, terminate_after_s=5)
    at.session_state["job_dir"] = str(job_dir)  # the first job's panel again (nothing running now)
    at.run()
    assert [s.value for s in at.main.success] == [said]


def test_a_cancel_the_worker_cannot_see_can_be_forced(fake_map):
    """A worker busy outside a batch (here a 60 s step; loading data or a stuck read) never sees
    the cancel flag: the page offers 'Stop now', which ends the process."""
    from core import jobs

    with _slow_job_on_the_model_page("job-slow") as (at, job_dir):
        jobs.cancel(job_dir)  # asked (e.g. from another tab): the worker will not see it for a minute
        assert jobs.status(job_dir).state == "cancelling"
        at.run()  # the panel drawn again: the job is cancelling
        assert "stopping when the data has loaded" in texts(at)  # no batch has run: not "after the current batch"
        by_label(at.button, "Stop now").click().run()
        st = jobs.status(job_dir)
        assert not at.exception and not st.active and st.state == "cancelled"


def test_cancel_before_the_first_batch_ends_the_worker_at_once(fake_map):
    """While the worker loads the data (here a 60 s first step) nothing would be kept: Cancel ends it
    at once; it said 'stopping after the current batch' and took as long as the loading."""
    from core import jobs

    with _slow_job_on_the_model_page("job-loading") as (at, job_dir):
        by_label(at.button, "Cancel training").click().run()
        st = jobs.status(job_dir)
        # ended by the page's signal in the middle of its first step, not by itself once the step was over
        # (that says "cancelled before the first epoch ended", a minute later); its process is gone
        assert not at.exception and (st.state, st.message) == ("cancelled", "stopped at your request")
        assert st.pid is not None and not jobs._pid_alive(st.pid, job_dir)
        # a job this session did not start (here, a job of the work folder): its end is shown where it was
        # cancelled (the panel went blank, "No training job yet", and the sidebar's line with it)
        at.run()
        assert "Stopped at your request" in texts(at) and "No training job in this session yet" not in texts(at)


@contextlib.contextmanager
def _slow_job_on_the_model_page(name: str):
    """(app on the Model page, job folder) while a self-test job whose first step takes a minute
    runs (as a worker loading its data); the job is ended afterwards."""
    from core import jobs
    from test_jobs import wait_for

    job_dir = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs" / name
    jobs.start_job("selftest", {"epochs": 1, "steps": 2, "delay": 60.0}, job_dir)
    try:
        wait_for(job_dir, ("running",))
        at = new_app()
        at.switch_page("pages/model.py").run()
        yield at, job_dir
    finally:
        jobs.cancel(job_dir, terminate_after_s=0)


def test_shipped_weights_say_what_they_learned_from_and_how_far_that_goes(fake_map, tiny_model_path, tmp_path,
                                                                          monkeypatch):
    """The shipped tab gives the card's training data (one scene, one date) and its validation IoU, and
    that elsewhere the model is to be checked or fine-tuned; a card that names no data adds nothing."""
    import json
    import shutil

    from core.card import DEFAULT_MODEL_PATH
    from pages.components.ui import plain

    shipped = json.loads(DEFAULT_MODEL_PATH.with_suffix(".json").read_text())
    at = new_app()
    at.switch_page("pages/model.py")
    at.run()
    assert not at.exception
    note = next(c.value for c in at.caption if c.value.startswith("Trained on"))
    # the card's words as written (escaped for Markdown), which name the scene's place and date
    assert "northern Great Plains" in shipped["data"] and "2015-09-02" in shipped["data"]
    assert plain(shipped["data"]) in note
    assert f"validation IoU there is {shipped['metrics']['val_blocks']['iou']:.2f}" in note
    assert "Quality page" in note and "fine-tune" in note
    # a model of one's own as the shipped weights (CROPMAP_SHIPPED_MODEL), its card without training data
    own = tmp_path / "own.keras"
    shutil.copy(tiny_model_path, own)
    card = json.loads(Path(tiny_model_path).with_suffix(".json").read_text())
    own.with_suffix(".json").write_text(json.dumps({**card, "data": ""}))
    monkeypatch.setenv("CROPMAP_SHIPPED_MODEL", str(own))
    at = new_app()
    at.switch_page("pages/model.py")
    at.run()
    assert not at.exception
    assert not [c for c in at.caption if c.value.startswith("Trained on")]


def test_a_hand_edited_cards_figures_show_what_they_can(fake_map, tiny_model_path, tmp_path):
    """A card's metrics written by hand (one score only, a list, a text for a number): the page showed a
    crash (KeyError 'f1' and the like); it shows the figures that are numbers and leaves the rest out."""
    import json
    import shutil

    card = json.loads(Path(tiny_model_path).with_suffix(".json").read_text())
    for metrics, shown, not_shown in (
            ({"val_blocks": {"iou": 0.8}}, ["IoU"], ["F1", "Precision"]),
            ({"val_blocks": {"iou": "x", "f1": 0.7, "per_block": {"a.tif": {"iou": 0.6, "f1": None}, "b": []}}},
             ["F1"], ["IoU"]),
            ([], [], ["IoU", "F1"]),
            ({"val_patches_at_best_epoch": {"val_iou": 0.75, "epoch": 3}}, [], ["IoU"])):
        own = tmp_path / f"own{len(shown)}{len(not_shown)}.keras"
        shutil.copy(tiny_model_path, own)
        own.with_suffix(".json").write_text(json.dumps({**card, "metrics": metrics}))
        at = new_app()
        at.session_state["model_path"] = str(own)
        at.switch_page("pages/model.py")
        at.run()
        assert not at.exception and not at.error, (metrics, texts(at))
        labels = [m.label for m in at.metric]
        assert all(name in labels for name in shown) and not any(name in labels for name in not_shown), labels
    # the shipped card's name for its best epoch's figures (the page read only a job card's "val")
    assert "Validation patches at the best epoch (epoch 3): IoU 0.750." in [c.value for c in at.caption]
    assert not [w for w in at.warning if "on the model's training pixels" in w.value]
    # validated on its training pixels (a region too small to hold a block out): said beside the figures, not
    # only in the job's panel, which the next job replaces
    own.with_suffix(".json").write_text(json.dumps({**card, "metrics": {"val_patches_at_best_epoch": {
        "val_iou": 0.95, "epoch": 5}}, "data": "a 64 x 64 px region of x; validation on the training pixels; labels: y"}))
    at.run()
    assert [w.value for w in at.warning if w.value.startswith("These validation figures are on the model's training "
                                                              "pixels")]


def test_a_fine_tuning_validated_on_pixels_its_base_learned_is_told(fake_map, tiny_model_path):
    """A checkpoint fine-tuned from the shipped model on the sample's patches was offered at validation IoU
    0.873 beside the shipped model's 0.791, with nothing said: the shipped model had learned those pixels."""
    import json
    import shutil

    from core.card import DEFAULT_MODEL_PATH
    from core.sources.local import SAMPLE_IMAGE

    job = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs" / "job-tuned"
    (job / "train").mkdir(parents=True)
    best = job / "train" / "best.keras"
    shutil.copy(tiny_model_path, best)
    card = json.loads(Path(tiny_model_path).with_suffix(".json").read_text())
    best.with_suffix(".json").write_text(json.dumps({**card, "metrics": {"val": {"val_iou": 0.873, "epoch": 2}}}))
    (job / "job.json").write_text(json.dumps({"kind": "train", "note": "Validated on the held-out columns 448-511.",
                                              "params": {"trained_on": str(SAMPLE_IMAGE),
                                                         "config": {"init_model": str(DEFAULT_MODEL_PATH)}}}))
    at = new_app()
    at.session_state["model_path"] = str(best)
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert [w.value for w in at.warning if w.value.startswith("Fine-tuned from crop_unet_light.keras, which learned "
                                                              "from the same image, its validation pixels included")]


def test_a_new_session_finds_earlier_trainings_opens_one_and_deletes_another(fake_map, tiny_model_path):
    """Trainings of earlier sessions were out of reach (the Train tab said "No training job yet"): they are
    listed; Open follows one (its panel, its best checkpoint to use); Delete removes another's folder."""
    import json
    import shutil

    from test_jobs import _finished_status

    root = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs"
    made = []
    for name, started in (("job-20261201-080000-aaaaaa", 100.0), ("job-20261203-093000-bbbbbb", 300.0)):
        job = root / name
        (job / "train").mkdir(parents=True)
        (job / "job.json").write_text(json.dumps({"kind": "train", "params": {}, "note": f"Note of {name[4:12]}."}))
        (job / "status.json").write_text(json.dumps(_finished_status(started=started)))
        shutil.copy(tiny_model_path, job / "train" / "best.keras")
        shutil.copy(tiny_model_path.with_suffix(".json"), job / "train" / "best.json")
        made.append(job)
    old, new = made
    at = new_app()
    at.switch_page("pages/model.py").run()
    assert not at.exception and "No training job in this session yet." in [c.value for c in at.caption]
    (listing,) = [e for e in at.expander if e.label.startswith("Earlier trainings (2, ")]
    lines = [m.value for m in listing.markdown if m.value.startswith("Training of")]  # (not the popovers' questions)
    assert [line.split(":")[0] for line in lines] == ["Training of 2026\\-12\\-03 09", "Training of 2026\\-12\\-01 08"]
    assert "best epoch 1" in lines[0] and "Note of 20261201\\." in [c.value for c in listing.caption]
    at.button(key=f"open_training_{old.name}").click().run()
    assert not at.exception and at.session_state["job_dir"] == str(old)
    assert any(b.label.startswith("Use the best checkpoint (epoch 1") for b in at.button)
    (listing,) = [e for e in at.expander if e.label.startswith("Earlier trainings (1, ")]  # the one opened is above
    at.button(key=f"delete_training_{new.name}").click().run()
    assert not at.exception and not new.exists() and old.exists()
    assert "Deleted the training of 2026-12-03 09:30." in [s.value for s in at.success]
    assert not [e for e in at.expander if e.label.startswith("Earlier trainings")]  # none left but the one followed
    # the model in use came from a training: its deletion is refused, said in the page
    at.button(key="use_best").click().run()
    assert at.session_state["model_path"] == str(old / "train" / "best.keras")
    at.session_state["job_dir"] = None
    at.run()
    at.button(key=f"delete_training_{old.name}").click().run()
    assert not at.exception and old.exists()
    assert any("made the model in use; load another model" in e.value for e in at.error), [e.value for e in at.error]


def test_a_model_trained_on_other_bands_is_refused_when_uploaded(fake_map, swir_model_path, monkeypatch):
    """A model whose card names SWIR1 where the dashboard gives NDVI (5 inputs like ours) was made the model in
    use: its predictions were made from the wrong band, without a word."""
    from core.card import card_path

    files = {"upload_model": Upload(swir_model_path), "upload_card": Upload(card_path(swir_model_path))}
    monkeypatch.setattr(st, "file_uploader", lambda *a, key=None, **k: files.get(key))
    at = new_app()
    at.switch_page("pages/model.py").run()
    by_label(at.button, "Use uploaded model").click().run()
    assert not at.exception
    assert [e.value for e in at.error if "The model expects bands R, G, B, NIR, SWIR1 but the image gives R, G, B, NIR, "
            "NDVI" in e.value], texts(at)
    assert at.session_state["model_path"] is None  # (nothing in use changed)
    assert not list((Path(os.environ["CROPMAP_WORKDIR"]) / "models").glob("*/swir.keras"))  # (its copy not kept)


def test_a_model_in_use_is_not_fine_tuned_unless_asked(fake_map, tiny_model_path, monkeypatch):
    """With a model in use and 'Start from the model in use' left unticked, the training starts from nothing."""
    from core import training_jobs

    calls = []
    monkeypatch.setattr(training_jobs, "start_training", lambda *a, **k: calls.append(k) or "job")
    at = new_app()
    at.session_state["model_path"] = str(tiny_model_path)
    at.switch_page("pages/model.py").run()
    assert at.checkbox(key="train_fine_tune").value is False and not at.checkbox(key="train_fine_tune").disabled
    by_label(at.button, "Start training").click().run()
    assert not at.exception and calls and calls[-1]["config"].init_model is None


def test_patches_other_than_those_the_data_page_cut_do_not_take_their_pixel_size(fake_map, small_scene, tmp_path,
                                                                                 monkeypatch):
    """The Data page cut patches (kept with their pixel size and image), then other patches are given by path:
    the model's card must not get the pixel size and image of the ones not used."""
    from core import training_jobs
    from core.config import PatchConfig
    from core.patches import sample_patches

    img, lab = small_scene
    for name, seed in (("train_000", 1), ("test_000", 2)):
        sample_patches(img, lab, "cdl", PatchConfig(patch_size=64, count=2, seed=seed), tmp_path / f"{name}.tfrecord.gz")
    calls = []
    monkeypatch.setattr(training_jobs, "start_training", lambda *a, **k: calls.append(k) or "job")
    at = new_app()
    at.session_state["patches"] = {"train": "/elsewhere/train.tfrecord.gz", "test": "/elsewhere/test.tfrecord.gz",
                                   "pixel_size_m": 10.0, "image": "/scenes/abc/image.tif", "note": "cut here"}
    at.switch_page("pages/model.py").run()
    by_label(at.radio, "Train on").set_value("patches").run()
    by_label(at.selectbox, "Patch size").set_value(64)
    by_label(at.text_input, "Training patches").set_value(str(tmp_path / "train_000.tfrecord.gz"))
    by_label(at.text_input, "Validation patches").set_value(str(tmp_path / "test_000.tfrecord.gz"))
    by_label(at.button, "Start training").click().run()
    assert not at.exception and calls
    assert calls[-1]["pixel_size_m"] is None and calls[-1]["trained_on"] is None


def test_a_region_of_exactly_the_smallest_patch_can_be_trained_on(fake_map):
    """A region 64 px wide (the smallest patch size) holds one patch: training is offered, at 64 px."""
    at = new_app()
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"}, "geometry": {
        "type": "Polygon", "coordinates": [[[500, 500], [564, 500], [564, 600], [500, 600], [500, 500]]]}}
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert not [i.value for i in at.info if i.value.startswith("This region is")]
    assert not by_label(at.button, "Start training").disabled
    assert by_label(at.selectbox, "Patch size").options == ["64"]
