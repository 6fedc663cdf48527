"""The model in use: the shipped weights, making a model the one in use, and pages that need one."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from core.bands import FEATURE_BANDS
from core.lineage import below_model_in_use, seen_pixels
from pages.components import cached, state, ui


def shipped() -> Path:
    """The shipped weights; CROPMAP_SHIPPED_MODEL points elsewhere (e.g. a checkout without weights)."""
    from core.card import DEFAULT_MODEL_PATH

    return Path(os.environ.get("CROPMAP_SHIPPED_MODEL", DEFAULT_MODEL_PATH))


def apart(a: float, b: float) -> tuple[str, str]:
    """Two scores written with as many decimals (3 to 6) as tell them apart: "this checkpoint's 0.791 is
    lower" than 0.791 read as a mistake."""
    digits = next((d for d in range(3, 7) if f"{a:.{d}f}" != f"{b:.{d}f}"), 6)
    return f"{a:.{digits}f}", f"{b:.{digits}f}"


def label(path: str | os.PathLike) -> str:
    """The model's file name, with when its training job started and the epoch its card was saved
    at for a job's model (every training leaves a best.keras, and a copy taken while a job runs is
    an earlier epoch of it: "best.keras (training of 2026-12-01 21:40, epoch 8)")."""
    from core.jobs import started_at
    from core.training_jobs import source_job

    p, job_dir = Path(path), source_job(path)
    started = started_at(job_dir) if job_dir is not None else None
    if not started:
        return p.name
    epoch = _card_epoch(p)
    name = "best.keras" if p.name.endswith("best.keras") else p.name  # (a copy's name starts with its job's)
    return f"{name} (training of {started}" + (f", epoch {epoch})" if epoch else ")")


def made_by(model_path: str | os.PathLike, views: int) -> str:
    """The line that names the model behind a prediction shown (Predict and Quality pages)."""
    return f"Prediction by {label(model_path)}" + (f", averaged over {views} views of each tile." if views > 1 else ".")


def show_trained_on_this_image(model_path: str | os.PathLike, image_path: str | os.PathLike,
                               beside_card: bool = False) -> None:
    """Say so when the model was trained on the image in use, whose figures against its labels are
    then training-set figures, higher than the model's validation figures: a caption for the shipped
    model on the sample scene (one of its training blocks: a known fact of the demo), a warning for a
    dashboard training on this region's pixels (its figures flatter it; and its validation figures
    too where it was fine-tuned from a model trained on this image, held-out block included);
    nothing otherwise. ``beside_card``: said on the Model page, beside those figures (elsewhere it
    sends there)."""
    seen = seen_pixels(model_path, image_path, sample_scene=state.get(state.SOURCE).get("kind") == "sample")
    if seen is None:
        return
    if seen.shipped_sample:
        st.caption("The sample scene is one of the blocks the shipped model was trained on, so its figures against the "
                   "sample's labels are training-set figures, higher than on new images; "
                   + ("the figures above are on the validation blocks." if beside_card else
                      "the model card (Model page) gives its figures on the validation blocks."))
        return
    if seen.base is not None and seen.share > 0:
        st.warning(f"This model was trained on this region's pixels, fine-tuned from {label(seen.base)}, which was "
                   "trained on this image too, its held-out block included: its figures here and its training's "
                   "validation figures all flatter it. Compare models on an image that none of them was trained "
                   "on.", icon=":material/warning:")
        return
    if seen.base is not None:  # trained elsewhere, from a model that saw this image
        st.warning(f"This model was fine-tuned from {label(seen.base)}, which was trained on this image: its figures "
                   "here flatter it. Compare models on an image that none of them was trained on.",
                   icon=":material/warning:")
        return
    if seen.share < 0.999:  # another region of the image, overlapping this one (said with how much)
        st.warning(f"This model was trained on pixels of this image that cover {seen.share:.0%} of this region's box, "
                   "so its figures here are partly training-set figures: they flatter it. Compare models on pixels "
                   "none of them was trained on.", icon=":material/warning:")
        return
    if seen.validated_on_training:  # (its validation figures were called "the honest ones" after it)
        then = ("Its validation figures flatter it too: compare models on pixels none of them was trained on.")
    else:
        then = ("The training's validation figures are the honest ones." if beside_card else
                "The training's validation figures (Model page) are the honest ones.")
    st.warning("This model was trained on this region's pixels, so its figures here are mostly training-set "
               "figures: they flatter it. " + (seen.note + " " if seen.note else "") + then, icon=":material/warning:")


def _card_epoch(model_path: Path) -> int | None:
    """The epoch a training checkpoint's card was written at (:attr:`core.card.ModelCard.best_epoch`), or None."""
    card = _card(model_path)
    return card.best_epoch if card is not None else None


def scope_note(model_path: str | os.PathLike) -> str | None:
    """What a model's card says it learned from, with its validation IoU, and that elsewhere it is to be
    checked or fine-tuned (the shipped model's one scene, for a valley elsewhere); None without a card
    or where it names no training data."""
    card = _card(model_path)
    if card is None or not card.data:
        return None
    iou = card.validation_iou()
    measured = f" Its validation IoU there is {iou:.2f}." if iou is not None else ""
    # (the card's words as written: a file's text, not Markdown)
    return (f"Trained on {ui.plain(ui.sentence(card.data.strip(), '.'))}{measured} On another region, season or "
            "sensor it has not been measured: check it against labels on the Quality page, or fine-tune it on labels of your region "
            "(Train tab: *Start from the model in use*).")


def _card(model_path: str | os.PathLike):
    """The card beside a model (read without loading TensorFlow), or None where it is missing or damaged."""
    from core.card import load_card
    from core.errors import CropMapError

    try:
        return load_card(model_path)
    except CropMapError:
        return None


def use_model(path: str) -> None:
    """Load (cached), check the bands, and make ``path`` the model in use.

    Raises:
        CropMapError: the model cannot be loaded, or was trained on other bands.
    """
    from core.card import check_bands

    loaded = cached.model(path, cached.mtime(path))
    check_bands(loaded.card, FEATURE_BANDS)
    if path != state.get(state.MODEL_PATH):  # the same model again keeps its prediction
        state.put(state.MODEL_PATH, path)
        state.forget_prediction()
    followed = state.job_dir()  # another model chosen after the training ended: its checkpoint is passed over
    if followed and not Path(path).resolve().is_relative_to(Path(followed).resolve()) and _ended(followed):
        state.put(state.PASSED_OVER_JOB, followed)


def _ended(job_dir: str) -> bool:
    from core import jobs
    from core.errors import CropMapError

    try:
        return not jobs.status(job_dir).active
    except CropMapError:
        return False


def offer_finished_training(model_in_use: str | None) -> None:
    """Where the training this session follows has finished with a best checkpoint that is not the
    model in use, say so with a button that makes it the model in use (the Predict page offered the
    shipped weights, or ran the model in use, with the training's result a page away, unsaid)."""
    from core import jobs, training_jobs
    from core.errors import CropMapError

    followed = state.job_dir()
    if not followed or state.get(state.PASSED_OVER_JOB) == followed:  # (another model chosen since it ended)
        return
    try:
        js = jobs.status(followed)
    except CropMapError:
        return
    if not training_jobs.best_not_in_use(followed, js, model_in_use):
        return
    below = below_model_in_use(js.best(), model_in_use)
    ref, kept = apart(*below) if below is not None else ("", "")
    lower = (f" The model in use has validation IoU {ref} (on its own validation data): this checkpoint's "
             f"{kept} is lower." if below is not None else "")
    st.info(f"Your training has finished: its best checkpoint{js.best_words('validation IoU')} is not the model in use"
            + (f" ({label(model_in_use)})." if model_in_use else ".") + lower, icon=":material/model_training:")
    if st.button("Use the training's best checkpoint", key="use_finished_training"):
        with ui.errors_shown(stop=True):
            use_model(str(training_jobs.best_checkpoint(followed)))
        st.rerun()


def require_model(model_path: str | None, offer_shipped: bool = False) -> str:
    """The model in use, or end the page saying what to do: none loaded yet (with ``offer_shipped``,
    a button that loads the shipped weights right here, the usual choice, after the best checkpoint of a
    training that finished, :func:`offer_finished_training`), or its files gone since it was loaded (deleted or moved, e.g. a cleaned work folder), which no prediction can fix."""
    from core.card import model_files

    if offer_shipped:  # (the Predict page: where a model is chosen to run)
        offer_finished_training(model_path)
    if not model_path:
        if offer_shipped and shipped().exists():
            st.info("Load a model first: the shipped weights here, or an uploaded or trained model on the Model page.",
                    icon=":material/info:")
            if st.button("Use the shipped weights", type="primary"):
                with ui.errors_shown(stop=True):
                    use_model(str(shipped()))
                st.rerun()
            st.page_link("pages/model.py", label="Go to the Model page")
            ui.stop()
        ui.stop_with("Load a model first.", "pages/model.py", "Go to the Model page")
    keras_file, card = model_files(model_path)
    missing = [p.name for p in (keras_file, card) if not p.exists()]
    if missing:
        ui.stop_with(f"The model in use is no longer on disk ({' and '.join(missing)} missing from "
                     f"{keras_file.parent}): load a model again.", "pages/model.py", "Go to the Model page")
    return model_path
