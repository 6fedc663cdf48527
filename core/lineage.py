"""Whether a model's figures on an image are held-out figures: what the model, or a model it was
fine-tuned from, learned from that image's pixels (by the records of the training jobs that made
them, and the shipped model's training blocks, of which the sample scene is one)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: How far back a chain of fine-tunings is followed (a chain of records that loops ends there too).
MAX_ANCESTORS = 10


@dataclass(frozen=True)
class SeenPixels:
    """What a model learned of an image's pixels; :func:`seen_pixels` gives None where it learned none.

    ``shipped_sample``: the model is the shipped one (or a copy of it) and the image the sample scene,
    one of its training blocks (the rest is then left empty). ``share``: the share (0-1) of the
    image's pixels that the model's own training job drew from, 0 for none. ``note``: that job's note
    (which block it held out), without its "Resumed from" sentence. ``validated_on_training``: that
    job's validation was on its training pixels (an image too small to hold a block out), so its
    validation figures flatter it too. ``base``: a model it was fine-tuned from (or one further back)
    that was trained on the image, or None.
    """

    shipped_sample: bool = False
    share: float = 0.0
    note: str = ""
    validated_on_training: bool = False
    base: str | None = None


def is_shipped(model_path: str | os.PathLike) -> bool:
    """Whether ``model_path`` is the shipped model: its file, or a copy under another name (the same
    weights, by the cards' fingerprints). Never raises."""
    from core.card import DEFAULT_MODEL_PATH, same_weights

    return Path(model_path).resolve() == DEFAULT_MODEL_PATH.resolve() or same_weights(model_path, DEFAULT_MODEL_PATH)


def _share_trained_on(model_path: str | os.PathLike, image_path: str | os.PathLike) -> tuple[float, str]:
    """(the share of ``image_path``'s pixels, the job's note) where a training job made ``model_path``
    from pixels of ``image_path`` (the same scene, or another region of the same image that overlaps
    it); (0.0, "") otherwise."""
    from core import training_jobs
    from core.sources.base import shared_pixels

    origin = training_jobs.trained_on(model_path)
    if origin is None:
        return 0.0, ""
    return shared_pixels(origin[0], image_path), origin[1] or ""


def _base_trained_on(model_path: str | os.PathLike, image_path: str | os.PathLike, sample_scene: bool) -> str | None:
    """The model that ``model_path`` was fine-tuned from, or one further back, that was trained on
    ``image_path`` (the shipped model on the sample scene included); else None."""
    from core import training_jobs

    seen: set[str] = set()
    base = training_jobs.fine_tuned_from(model_path)
    while base is not None and base not in seen and len(seen) < MAX_ANCESTORS:
        seen.add(base)
        if (sample_scene and is_shipped(base)) or _share_trained_on(base, image_path)[0] > 0:
            return base
        base = training_jobs.fine_tuned_from(base)
    return None


def below_model_in_use(checkpoint_logs: dict | None, model_in_use: str | os.PathLike | None) -> tuple[float, float] | None:
    """(the model in use's validation IoU, the checkpoint's) where a training's best checkpoint
    (``checkpoint_logs``: its epoch's logs, with ``val_iou``) scores below the model in use by their
    own validation data (a checkpoint offered beside a better model, with nothing said, was taken for an
    upgrade); None where it does not, or either figure is unknown. Reads the model's card only; never raises."""
    from core.card import load_card
    from core.errors import CropMapError

    if not model_in_use or not checkpoint_logs or checkpoint_logs.get("val_iou") is None:
        return None
    try:
        ref = load_card(model_in_use).validation_iou()
        kept = float(checkpoint_logs["val_iou"])
    except (CropMapError, TypeError, ValueError):
        return None
    return (ref, kept) if ref is not None and kept < ref else None


def validated_on_training_pixels(model_path: str | os.PathLike) -> bool:
    """Whether a model's validation figures were measured on its training pixels (a region too small to
    hold a block out, or ``train --val`` given the training data): its card says so in words ("validation
    on the training pixels", or the same files for train and val), or the note of the job that made it
    does. Reads the card and the job's record only; never raises."""
    from core import jobs
    from core import training_jobs
    from core.card import load_card
    from core.dataset import validated_on_training_pixels as said_in
    from core.errors import CropMapError

    try:
        data = load_card(model_path).data
    except CropMapError:
        data = ""
    same = re.fullmatch(r"train: (.*); val: (.*); labels: .*", data or "")
    if "validation on the training pixels" in (data or "") or (same and same.group(1) == same.group(2)):
        return True
    job = training_jobs.source_job(model_path)
    return job is not None and said_in(jobs.job_note(job))


def seen_pixels(model_path: str | os.PathLike, image_path: str | os.PathLike, sample_scene: bool) -> SeenPixels | None:
    """What ``model_path`` (or a model it was fine-tuned from) learned of ``image_path``'s pixels, so
    that its figures there are training-set figures; None where it learned none of them.
    ``sample_scene``: the image is the sample scene. Reads job records and model cards only, never a
    model; never raises."""
    from core import training_jobs

    if sample_scene and is_shipped(model_path):
        return SeenPixels(shipped_sample=True)
    share, note = _share_trained_on(model_path, image_path)
    base = _base_trained_on(model_path, image_path, sample_scene)
    if share <= 0 and base is None:
        return None
    # (the job's note only where the model's own training saw the image; not that it was resumed)
    note = training_jobs.without_resumes(note) if share > 0 else ""
    return SeenPixels(share=share, note=note, base=base,
                      validated_on_training=share > 0 and validated_on_training_pixels(model_path))


def validation_seen_by_base(model_path: str | os.PathLike) -> str | None:
    """The model that ``model_path`` was fine-tuned from (or one further back) that learned from the image
    that ``model_path``'s own training job drew its training and validation pixels from (its held-out block
    or test patches): that job's validation figures then flatter it, as a fine-tuned checkpoint offered
    at 0.87 beside a model in use at 0.79 did. None where none did, or the job is not known (e.g. a model
    from elsewhere). Reads job records and model cards only; never raises."""
    from core import training_jobs
    from core.sources.base import scene_window
    from core.sources.local import SAMPLE_IMAGE

    origin = training_jobs.trained_on(model_path)
    if origin is None:
        return None
    cut = scene_window(origin[0])  # (a region's scene: the image it was cut from)
    sample = str(Path(cut[0] if cut else origin[0]).resolve()) == str(SAMPLE_IMAGE.resolve())
    return _base_trained_on(model_path, origin[0], sample)
