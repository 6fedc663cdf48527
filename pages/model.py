"""Step 3, Model: load the shipped weights, upload a .keras model, or train one in the background."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import jobs, training_jobs
from core.errors import CardMismatchError, CropMapError
from core.config import TrainConfig
from core.card import PRESETS, best_epoch_figures, block_figures, card_facts, card_mismatch, resolution_warning
from core.lineage import below_model_in_use, validated_on_training_pixels, validation_seen_by_base
from core.metrics import SCORE_HELP, SCORE_TITLES
from pages.components import cached, charts, models, navigation, scene, state, trainings, ui

navigation.require_app(__file__)
st.title("Model", anchor=False)  # (no link: a nameless link beside each title, to a screen reader)
SHIPPED = models.shipped()


def preset_label(name: str) -> str:
    return f"{name} (default)" if name == TrainConfig.preset else name


def base_saw_validation(base: str) -> str:
    """Why a fine-tuned model's validation figures flatter it: its ``base`` learned those pixels
    (:func:`core.lineage.validation_seen_by_base`)."""
    return (f"Fine-tuned from {models.label(base)}, which learned from the same image, its validation pixels "
            "included: these validation figures flatter it (they cannot be compared with that model's). Compare "
            "models on labelled pixels that none of them learned from, on the Quality page.")


opening = state.get(state.MODEL_TAB)  # once: the Train tab after a hand-over of patches
state.put(state.MODEL_TAB, None)
JOBS = state.work().jobs
running = jobs.active_job(JOBS)  # one at a time; the panel below reads it too
training_now = running is not None
# (a job started in another session is followed and can be cancelled here too, but the page does not open on it)
theirs = training_now and state.get(state.JOB_DIR) != str(running)


def _train_tab_has_news() -> bool:
    """Whether the job this session follows stopped and can go on (its Resume button is on Train), or
    finished with a best checkpoint that is not the model in use (its "Use the best checkpoint")."""
    followed = state.job_dir()
    if not followed:
        return False
    try:
        js = jobs.status(followed)
    except CropMapError:
        return False
    return training_jobs.can_resume(followed, js) or training_jobs.best_not_in_use(followed, js, state.get(state.MODEL_PATH))


# a running job's progress and Cancel button, a stopped one's Resume button, or a finished one's best checkpoint
# not yet in use (after a reload too: it opened on the shipped weights, the training's result a tab away)
opening = opening or ("Train" if (training_now and not theirs) or _train_tab_has_news() else None)
tab_ship, tab_upload, tab_train = st.tabs(["Shipped weights", "Upload a model", "Train"], default=opening)

with tab_ship:
    st.write(f"`{SHIPPED.name}`: the U-Net trained on the Ag-Net Landsat 8 / CDL blocks.")
    if (scope := models.scope_note(SHIPPED)) is not None:
        st.caption(scope)
    current = state.get(state.MODEL_PATH)
    in_use = bool(current) and Path(current).resolve() == SHIPPED.resolve()
    # the step to take until it is taken (a primary button after loading looked like a step still to do)
    if st.button("Load shipped weights", type="secondary" if in_use else "primary", disabled=not SHIPPED.exists(),
                 help=None if SHIPPED.exists() else f"{SHIPPED} is missing"):
        ok = False
        with ui.errors_shown(), st.spinner("Loading the model..."):
            models.use_model(str(SHIPPED))
            ok = True
        if ok:
            st.success("Shipped weights loaded.")
    elif in_use:
        st.success("The shipped weights are in use.")  # (the button alone did not say whether they were)

with tab_upload:
    keras_file = st.file_uploader("Model (.keras)", type=["keras"], key="upload_model")
    card_file = st.file_uploader("Its model card (.json, written beside the .keras by core)", type=["json"],
                                 key="upload_card")
    missing = [what for what, f in (("the model (.keras)", keras_file), ("its model card (.json)", card_file)) if f is None]
    if missing:  # said, not only a greyed-out button
        st.caption("Both files are needed: upload " + " and ".join(missing) + ". The card holds the model's bands, "
                   "normalization and patch size.")
    if st.button("Use uploaded model", disabled=bool(missing)):
        with ui.errors_shown(), st.spinner("Checking the model..."):  # (loading Keras the first time: seconds)
            # (imported here: core.model loads Keras, 3 s in which the page's first visit showed nothing at all)
            from core.model import discard_stored_model, store_uploaded_model

            final = store_uploaded_model(keras_file.getvalue(), card_file.getvalue(), state.work().models,
                                         name=keras_file.name)
            try:
                models.use_model(str(final))
            except CropMapError as err:  # refused: its stored copy goes (refused uploads piled up in the work folder)
                discard_stored_model(final)
                if isinstance(err, CardMismatchError):  # (named by the copy stored beside the model: the user's names)
                    raise card_mismatch(card_file.name, keras_file.name) from None
                raise
            st.success(ui.no_links(f"Using {keras_file.name}."))

with tab_train:
    st.write("Train a U-Net in a background process, on the current region's image and labels or on "
             "exported patches. It keeps running while you use other pages.")

    @st.fragment(run_every=2.0)
    def job_panel() -> None:
        if (running is None) != (jobs.active_job(JOBS) is None):  # a job started or ended since the page was drawn
            # (another session's too: its form stayed greyed, "a training job is running", for good; or open
            # for a job another session had started, its Start refused)
            st.rerun()
        job_dir = state.job_dir()
        if not job_dir:
            st.caption("No training job in this session yet.")
            return
        try:
            js = jobs.status(job_dir)
        except CropMapError as err:
            st.error(ui.sentence(str(err)))
            return
        started = jobs.started_at(job_dir)  # (the job's id means nothing to a user; when it started does)
        whose = " (started in another session)" if str(job_dir) != state.get(state.JOB_DIR) else ""
        st.progress(js.fraction, text=f"Training of {started}{whose}, {js.progress_text()}" if started
                    else f"{Path(job_dir).name}{whose}, {js.progress_text()}")
        notice = state.get(state.MODEL_NOTICE)  # said here, where the button was (the sidebar may be off screen)
        # while that model is the one in use, in the panel of the job it came from (not under a new job's bar)
        if notice and notice[0] == state.get(state.MODEL_PATH) and notice[2:3] == [str(job_dir)]:
            st.success(notice[1], icon=":material/check_circle:")
        if js.state != "failed":  # a failure's message is shown as an error below
            st.caption(ui.sentence(js.message))
        note = jobs.job_note(job_dir)
        if note:
            st.caption(note)
        if len(js.history) >= 2:  # a line needs two epochs; one epoch's figures are in the bar's text
            best = js.best()  # (the epoch whose checkpoint is kept, marked)
            curves = ((charts.LOSS_CURVES, "loss"), (charts.SCORE_CURVES, "score (0-1)"))
            for col, (names, y_label) in zip(st.columns(2), curves):
                chart = charts.training_chart(js.history, names, y_label, best["epoch"] if best else None)
                col.altair_chart(chart, width="stretch")
        elif js.history:
            st.caption("The training curves appear when a second epoch has finished." if js.active else
                       "One finished epoch only, so no training curves: its figures are in the line above.")
        if js.state == "cancelling":  # the worker stops after its current batch; loading data has no batches
            if st.button("Stop now", key=f"stop_job_{Path(job_dir).name}",
                         help="end the worker process at once (the checkpoints of finished epochs are kept)"):
                with st.spinner("Stopping the worker..."), ui.errors_shown():  # (another user's process: said)
                    jobs.cancel(job_dir, terminate_after_s=0)
                    state.put(state.JOB_DIR, str(job_dir))  # (see Cancel training)
                    st.rerun()  # (not an error: errors_shown lets Streamlit's rerun through)
        elif js.active:
            # (a key of its job's: a press meant for a job that ended meanwhile is not one for the next job
            # another session started, shown in its place on the rerun)
            if st.button("Cancel training", key=f"cancel_job_{Path(job_dir).name}"):
                # before its first batch nothing would be kept anyway: end the worker now rather than
                # after it has loaded the data (tens of seconds); later, after the current batch
                with st.spinner("Stopping the worker..." if js.step == 0 else "Asking it to stop..."), ui.errors_shown():
                    jobs.cancel(job_dir, terminate_after_s=0 if js.step == 0 else None)
                    # followed from now on here, though another session started it: its end (cancelled,
                    # its epochs kept, Resume) is shown to whoever cancelled it, where the panel went blank
                    state.put(state.JOB_DIR, str(job_dir))
                    st.rerun()
        elif running is not None and running == Path(job_dir):  # it finished: re-enable the form
            st.rerun()
        elif training_jobs.can_resume(job_dir, js):
            other = jobs.active_job(JOBS)
            st.caption(f"Its {len(js.history)} finished epoch(s) are kept: resume it to train the other "
                       f"{max(js.epochs - len(js.history), 0)} from the last one, with the same data and settings.")
            if st.button("Resume training", key="resume_job", disabled=other is not None,
                         help=f"a training job is running ({jobs.job_words(other)})" if other else None):
                with ui.errors_shown():
                    resumed = jobs.new_job_dir(JOBS)
                    training_jobs.resume_training(job_dir, resumed, one_at_a_time=True)
                    state.put(state.JOB_DIR, str(resumed))
                    st.rerun()
        best = training_jobs.best_checkpoint(job_dir)
        if best.exists() and (base := validation_seen_by_base(best)) is not None:  # (before its figure is taken up)
            st.caption(base_saw_validation(base))
        label = "Use the best checkpoint so far" if js.active else "Use the best checkpoint"
        label += js.best_words()  # which epoch it is, and its figure (not the last epoch's)
        in_use = state.get(state.MODEL_PATH)
        lower = below_model_in_use(js.best(), in_use) if best.exists() else None
        if lower is not None:
            ref, kept = models.apart(*lower)
            st.caption(f"The model in use, {models.label(in_use)}, has validation IoU {ref} (on its own validation "
                       f"data, not this run's): this checkpoint's {kept} is lower. "
                       "To compare them on the same pixels, predict with each and look at the Quality page.")
        if best.exists() and st.button(label, key="use_best"):
            with ui.errors_shown():
                # while training runs, best.keras is replaced by every better epoch: use a copy of it now
                in_use = str(training_jobs.snapshot_checkpoint(best, state.work().models)) if js.active else str(best)
                models.use_model(in_use)
                said = f"Using {models.label(in_use)}: predict with it on the Predict page."
                state.put(state.MODEL_NOTICE, [in_use, said, str(job_dir)])
                st.rerun()
        if js.state == "failed":
            st.error(ui.sentence(js.message))

    # a job's progress, then its results, above the form (disabled while it runs), in one place
    # from start to finish; below it only the note that there is no job yet
    panel_first = training_now or bool(state.job_dir())
    if panel_first:
        ui.anchor("job")  # (the Start button is far below it: the job's progress is brought into view)
        job_panel()
    # The last submitted values, so that navigation keeps them. The widgets have keys, so that a
    # submission that fails (and so changes these defaults) does not make them new widgets that
    # forget what the user types next.
    prev = state.get(state.TRAIN_FORM)
    sources = ["region", "patches"]
    source = st.radio(
        "Train on", sources, index=ui.remembered_index(sources, prev, "source", "region"), horizontal=True,
        key="train_source",
        # kept when changed without a training started, too (a visit to the Data page to cut patches)
        on_change=lambda: state.put(state.TRAIN_FORM, {**state.get(state.TRAIN_FORM),
                                                       "source": st.session_state["train_source"]}),
        format_func={"region": "This region's image and labels",
                     "patches": "TFRecord patches (cut on the Data page, or an Earth Engine export)"}.get)
    # (known before the region's scene is cut: on the way from the Region page, all sizes were offered to a
    # 58 px region, and Start said to pick a smaller one than the smallest)
    shape, least = scene.region_shape() if source == "region" else None, min(ui.PATCH_SIZES)
    too_small = shape is not None and min(shape) < least  # (one field: it can be predicted, not trained on)
    if too_small:
        st.info(f"This region is {shape[1]} x {shape[0]} px: training needs at least one {least} x {least} px patch "
                "of it. Draw a larger region to train on, or train on TFRecord patches; the model in use still "
                "predicts this region.", icon=":material/info:")
    with st.form("train_form", enter_to_submit=False):
        if source == "patches":
            st.caption("Patches in Earth Engine's TFRecord layout, with bands R, G, B, NIR, NDVI and a `crop` "
                       "label: the Data page's, the Earth Engine page's training export, or `.venv/bin/python -m core patches`.")
            p1, p2 = st.columns(2)
            train_path = p1.text_input("Training patches", ui.remembered(prev, "train_patches", ""),
                                       placeholder="gs://bucket/prefix/name/train_*.tfrecord.gz", key="train_patches")
            val_path = p2.text_input("Validation patches", ui.remembered(prev, "val_patches_path", ""),
                                     placeholder="gs://bucket/prefix/name/test_*.tfrecord.gz", key="train_val_patches")
        c1, c2, c3 = st.columns(3)
        names = list(PRESETS)
        preset = c1.selectbox("Preset", names, index=ui.remembered_index(names, prev, "preset", TrainConfig.preset),
                              format_func=preset_label, key="train_preset",
                              help="light: the default, fast on a CPU; seed: the 2019 notebook's U-Net, "
                                   "about 3.6 times slower")
        epochs = ui.remembered_number(c2.number_input, "Epochs", 1, 200, prev, "epochs", 5, key="train_epochs",
                                      help="Rounds of training; each ends with a check on the validation patches, "
                                           "and the model of the best round is the one kept")
        steps = ui.remembered_number(c3.number_input, "Steps per epoch", 1, 1000, prev, "steps_per_epoch", 20,
                                     key="train_steps", help="Batches of training patches in each round")
        c4, c5, c6 = st.columns(3)
        batch = ui.remembered_number(c4.number_input, "Batch size", 1, 64, prev, "batch_size", 8, key="train_batch",
                                     help="Patches in each step; lower it if the machine runs out of memory")
        # on the region: the sizes it holds (a 100 px field offered 256 px, refused on Start)
        sizes, index, size_help = ui.patch_size_choice(None if too_small else shape,
                                                       ui.remembered(prev, "patch_size", 256))
        patch = c5.selectbox("Patch size", sizes, index=index, key="train_patch", help=size_help)
        lr = ui.remembered_number(c6.number_input, "Learning rate", 1e-5, 0.1, prev, "learning_rate", 1e-3,
                                  step=1e-4, format="%.5f", key="train_lr", help="steps of 0.0001; lower it (e.g. to 0.0005) if the loss turns NaN or "
                                                  "jumps about")
        with st.expander("Validation and early stopping"):
            c7, c8 = st.columns(2)
            val_n = ui.remembered_number(c7.number_input, "Patches scored after each epoch", 1, 512, prev,
                                         "val_patches", 32, key="train_val_n",
                                    help="validation patches, taken once from the validation data (at most this "
                                         "many); more gives steadier figures and slower epochs")
            patience = ui.remembered_number(c8.number_input, "Stop after epochs without improvement", 1, 200, prev,
                                            "patience", TrainConfig.patience, key="train_patience",
                                       help="early stopping: the run ends when the validation loss has not improved "
                                            "for this many epochs; the best epoch's model is kept")
        in_use = state.get(state.MODEL_PATH)
        fine_tune = st.checkbox(  # (as last sent: after a reload it came back unticked, and a retry trained from nothing)
            "Start from the model in use (fine-tune it)", value=bool(in_use and prev.get("fine_tune") is True),
            disabled=not in_use, key="train_fine_tune",
            help="keeps its preset and normalization; a lower learning rate (e.g. 0.0003) suits fine-tuning"
            if in_use else "load or train a model first")
        start = st.form_submit_button(
            "Start training", type="primary", disabled=running is not None or too_small,
            help=f"a training job is running ({jobs.job_words(running)}); cancel it above or wait for it" if running else
            "the region is smaller than the smallest patch" if too_small else None)
    if start:
        with ui.errors_shown():
            values = {"preset": preset, "epochs": int(epochs), "steps_per_epoch": int(steps), "batch_size": int(batch),
                      "patch_size": int(patch), "learning_rate": float(lr), "val_patches": int(val_n),
                      "patience": int(patience)}
            state.put(state.TRAIN_FORM, {**values, "source": source, "fine_tune": bool(fine_tune), **(
                {"train_patches": train_path, "val_patches_path": val_path} if source == "patches" else {})})
            config = training_jobs.training_config(values, in_use if fine_tune and in_use else None)
            if source == "patches":
                cut = state.get(state.PATCHES) or {}  # the Data page's patches know their pixel size; others do not
                mine = (train_path.strip(), val_path.strip()) == (cut.get("train"), cut.get("test"))
                job_dir = training_jobs.train_on_patches(train_path.strip(), val_path.strip(), JOBS, config,
                                                pixel_size_m=cut.get("pixel_size_m") if mine else None,
                                                trained_on=cut.get("image") if mine else None,  # (scored there: said so)
                                                cut_note=cut.get("note", "") if mine else "")
            else:
                sc = scene.current_scene_shown()
                job_dir = training_jobs.train_on_image(sc.image_path, sc.labels_path, sc.label_map, JOBS, config,
                                              title=sc.title, pixel_size_m=sc.extra.get("pixel_size_m"),
                                              class_map=sc.extra.get("class_map", sc.label_map))
            state.put(state.JOB_DIR, str(job_dir))
            state.put(state.SCROLL_TO, "job")
            st.rerun()  # redraw the form with the button disabled while the job runs
    if not panel_first:
        job_panel()
    trainings.show(JOBS, state.job_dir(), running)  # (those of earlier sessions: their models were out of reach)


st.divider()
st.header("Model in use", anchor=False)  # (h2 under the h1: an h3 skipped a level)
current = state.get(state.MODEL_PATH)
if not current:
    st.info("No model loaded yet: load the shipped weights, upload a model or train one.")
else:
    with ui.errors_shown():
        loaded = cached.model(current, cached.mtime(current))
        card = loaded.card
        st.write(f"**{ui.plain(models.label(current))}** -- preset {ui.plain(card.preset)}, "
                 f"bands {ui.plain(', '.join(card.bands))}, "
                 f"patch {card.patch_size} px" + (f", created {ui.when(card.created)}" if card.created else ""))
        blocks = block_figures(card)
        epoch, at_best = best_epoch_figures(card)
        if blocks:
            st.markdown("**On the validation blocks** (not used for training)")
            if blocks.per_block:  # in plain words (the card's own technical words are in its JSON, below)
                st.caption(f"How: each of the {len(blocks.per_block)} validation blocks predicted whole, as the "
                           "Predict page does; a pixel is crop at probability 0.5 or more; the figures count the "
                           "pixels of all blocks together.", help=ui.plain(blocks.how) if blocks.how else None)
            elif blocks.how:  # (the card's own words, with their own parentheses: a line of their own)
                st.caption("How: " + ui.plain(blocks.how) + ".")
            shown = [(name, title) for name, title in SCORE_TITLES.items() if name in blocks.scores]
            for col, (name, title) in zip(st.columns(5), shown):
                col.metric(title, f"{blocks.scores[name]:.3f}", help=SCORE_HELP[name])
            if blocks.per_block:
                import pandas as pd

                table = pd.DataFrame(blocks.per_block).T
                table.index = [name.removesuffix(".tif").removesuffix("_rgbn") for name in table.index]
                st.dataframe(table, width="content", column_config={
                    "_index": st.column_config.TextColumn("validation block"),
                    "iou": st.column_config.NumberColumn("IoU", format="%.3f"),
                    "f1": st.column_config.NumberColumn("F1", format="%.3f"),
                    "valid_pixels": st.column_config.NumberColumn("valid pixels", format="localized"),
                })
            source = scene.current_source() if scene.is_local() else None
            if source is not None:  # (the shipped model on the sample: why the Quality page's figures are higher)
                models.show_trained_on_this_image(current, source.image_path, beside_card=True)
        elif at_best:  # the page's words, not Keras's
            at = f" (epoch {epoch})" if epoch is not None else ""
            st.caption(f"Validation patches at the best epoch{at}: "
                       + ", ".join(f"{name} {value:.3f}" for name, value in at_best) + ".")
            if validated_on_training_pixels(current):  # (said in the job's panel only, which another job replaces)
                st.warning("These validation figures are on the model's training pixels (no block was held out "
                           "from them), so they flatter it: check it on other labelled pixels on the Quality page.",
                           icon=":material/warning:")
            elif (base := validation_seen_by_base(current)) is not None:
                st.warning(base_saw_validation(base), icon=":material/warning:")
        # here too, beside the figures, which a demo would quote for an image they do not hold for
        grid = scene.known_grid()
        warning = resolution_warning(card, grid, scene.advice_for_pixel_size()) if grid is not None else None
        if warning:
            figures = (f" The validation figures above are for images of {card.pixel_size_m:g} m pixels, like its "
                       "training images." if blocks or at_best else "")
            st.warning(f"On the image in use, {warning}.{figures}", icon=":material/warning:")
        with st.expander("Model card"):
            words, raw = st.tabs(["In words", "All fields (JSON)"])
            with words:  # (the JSON's 17-digit statistics and Keras names are for programs)
                for what, text in card_facts(card):
                    st.markdown(f"**{what}:** " + (ui.code_span(text) if what == "Made by" else ui.plain(text)))
            with raw:
                st.json(card.to_dict())
    st.page_link("pages/predict.py", label="Next: Predict", icon=":material/arrow_forward:")
