"""core.lineage: what a model (or one it was fine-tuned from) learned of an image's pixels, from the
records of the training jobs that made them; no model is loaded."""

import json
import shutil

from core.card import DEFAULT_MODEL_PATH, card_path
from core.dataset import SAME_PIXELS_NOTE
from core.lineage import SeenPixels, is_shipped, seen_pixels


def _job(root, name, trained_on, note="", init=None):
    """A training job's folder as core.jobs leaves it, with its best.keras; returns that model's path."""
    job = root / name
    (job / "train").mkdir(parents=True)
    params = {"trained_on": str(trained_on)} if trained_on else {}
    if init:
        params["config"] = {"init_model": str(init)}
    (job / "job.json").write_text(json.dumps({"kind": "train", "params": params, "note": note}))
    best = job / "train" / "best.keras"
    best.write_bytes(b"model bytes")
    return best


def test_the_shipped_model_and_its_copies_are_told_on_the_sample_scene_only(tmp_path):
    copy = tmp_path / "uploaded.keras"
    shutil.copy(DEFAULT_MODEL_PATH, copy)
    shutil.copy(card_path(DEFAULT_MODEL_PATH), card_path(copy))
    assert is_shipped(DEFAULT_MODEL_PATH) and is_shipped(copy)
    assert seen_pixels(copy, tmp_path / "scene.tif", sample_scene=True) == SeenPixels(shipped_sample=True)
    assert seen_pixels(copy, tmp_path / "scene.tif", sample_scene=False) is None
    assert not is_shipped(tmp_path / "missing.keras")


def test_a_jobs_model_on_its_own_image_gives_the_share_and_the_note_without_its_resume(tmp_path):
    image = tmp_path / "scene.tif"
    image.write_bytes(b"")
    note = "Validated on the held-out columns 192-255. Resumed from the training of 2026-12-01 21:30."
    best = _job(tmp_path, "job-1", image, note)
    assert seen_pixels(best, image, sample_scene=False) == SeenPixels(share=1.0, note="Validated on the held-out "
                                                                                      "columns 192-255.")
    assert seen_pixels(best, tmp_path / "other.tif", sample_scene=False) is None  # (another image: nothing seen)
    small = _job(tmp_path, "job-2", image, f"{SAME_PIXELS_NOTE} (the region is too small).")
    assert seen_pixels(small, image, sample_scene=False).validated_on_training


def test_a_base_that_saw_the_image_is_found_back_along_the_fine_tunings(tmp_path):
    image, other = tmp_path / "scene.tif", tmp_path / "other.tif"
    image.write_bytes(b"")
    first = _job(tmp_path, "job-1", image, "held out: rows 0-255")
    second = _job(tmp_path, "job-2", other, "", init=first)
    third = _job(tmp_path, "job-3", other, "held out: rows 0-63", init=second)
    seen = seen_pixels(third, image, sample_scene=False)
    assert seen == SeenPixels(base=str(first))  # (its own training's note is of another image: not given)
    assert seen_pixels(third, image, sample_scene=True).base == str(first)
    # from the shipped model, on the sample scene only
    tuned = _job(tmp_path, "job-4", other, init=DEFAULT_MODEL_PATH)
    assert seen_pixels(tuned, image, sample_scene=True) == SeenPixels(base=str(DEFAULT_MODEL_PATH))
    assert seen_pixels(tuned, image, sample_scene=False) is None
    # records that loop (a job's model said to be fine-tuned from itself) end the search
    looped = _job(tmp_path, "job-5", other)
    (looped.parent.parent / "job.json").write_text(json.dumps({"kind": "train", "params": {
        "trained_on": str(other), "config": {"init_model": str(looped)}}}))
    assert seen_pixels(looped, image, sample_scene=False) is None


def test_a_checkpoint_below_the_model_in_use_is_told_with_both_figures(tmp_path):
    from core.card import load_card
    from core.lineage import below_model_in_use

    ref = load_card(DEFAULT_MODEL_PATH).validation_iou()
    assert below_model_in_use({"val_iou": ref - 0.1, "epoch": 3}, DEFAULT_MODEL_PATH) == (ref, ref - 0.1)
    assert below_model_in_use({"val_iou": ref + 0.01}, DEFAULT_MODEL_PATH) is None  # better: nothing to say
    assert below_model_in_use({"val_iou": ref}, DEFAULT_MODEL_PATH) is None  # as good: nothing to say either
    assert below_model_in_use({"val_iou": None}, DEFAULT_MODEL_PATH) is None
    assert below_model_in_use({"val_iou": "n/a"}, DEFAULT_MODEL_PATH) is None  # (a damaged history row)
    assert below_model_in_use({"val_iou": 0.1}, None) is None
    assert below_model_in_use({"val_iou": 0.1}, tmp_path / "no card.keras") is None


def test_validation_on_the_training_pixels_is_told_from_the_card_or_the_job(tmp_path):
    """The Model page showed "Validation patches at the best epoch: IoU 0.950" of a fine-tune validated on
    its training pixels, its caveat in the job's panel only (which the next job replaces)."""
    from core.lineage import validated_on_training_pixels

    card = json.loads(card_path(DEFAULT_MODEL_PATH).read_text())

    def model(name, data, note=None):
        path = _job(tmp_path, name, tmp_path / "scene.tif", note or "") if note is not None else tmp_path / f"{name}.keras"
        path.write_bytes(b"model bytes")
        card_path(path).write_text(json.dumps({**card, "data": data}))
        return path

    assert not validated_on_training_pixels(DEFAULT_MODEL_PATH)  # (held-out validation blocks)
    assert validated_on_training_pixels(model("a", "a 64 x 64 px region of x; validation on the training pixels; labels: y"))
    assert validated_on_training_pixels(model("b", "train: img.tif:lab.tif; val: img.tif:lab.tif; labels: cdl"))
    assert not validated_on_training_pixels(model("c", "train: a.tif:l.tif; val: b.tif:l.tif; labels: cdl"))
    assert validated_on_training_pixels(model("d", "train: t.tfrecord.gz; val: v.tfrecord.gz; labels: crop",
                                              note=f"{SAME_PIXELS_NOTE} (the region is too small)."))
    assert not validated_on_training_pixels(tmp_path / "no card.keras")


def test_a_base_that_learned_the_image_a_fine_tuning_validated_on_is_found(tmp_path):
    """A checkpoint fine-tuned on the Data page's patches of a region was offered at validation IoU 0.873
    beside its base at 0.791 with nothing said, though the base had trained on those test patches' pixels."""
    from core.lineage import validation_seen_by_base
    from core.sources.local import SAMPLE_IMAGE

    image, other = tmp_path / "scene.tif", tmp_path / "other.tif"
    first = _job(tmp_path, "job-1", image, "held out: columns 512-575")
    tuned = _job(tmp_path, "job-2", image, "held out: columns 448-511", init=first)
    assert validation_seen_by_base(tuned) == str(first)
    assert validation_seen_by_base(_job(tmp_path, "job-3", other, init=first)) is None  # (validated on another image)
    assert validation_seen_by_base(first) is None and validation_seen_by_base(tmp_path / "uploaded.keras") is None
    # the shipped model learned the whole sample scene: a fine-tuning on it validates on pixels it saw
    assert validation_seen_by_base(_job(tmp_path, "job-4", SAMPLE_IMAGE, init=DEFAULT_MODEL_PATH)) == str(DEFAULT_MODEL_PATH)
    assert validation_seen_by_base(_job(tmp_path, "job-5", image, init=DEFAULT_MODEL_PATH)) is None
    # a region cut from the sample scene (its scene.json names the sample as its source) is the sample scene
    scene = tmp_path / "scenes" / "s1" / "image.tif"
    scene.parent.mkdir(parents=True)
    scene.parent.joinpath("scene.json").write_text(json.dumps({"extra": {
        "source": str(SAMPLE_IMAGE), "row_off": 100, "col_off": 100, "height": 128, "width": 128}}))
    assert validation_seen_by_base(_job(tmp_path, "job-6", scene, init=DEFAULT_MODEL_PATH)) == str(DEFAULT_MODEL_PATH)


def test_a_fine_tuning_that_never_saw_the_image_is_not_said_validated_on_its_training_pixels(tmp_path):
    """Only its base learned the image: its own job's note (same pixels, of another image) is not the image's."""
    image, other = tmp_path / "scene.tif", tmp_path / "other.tif"
    first = _job(tmp_path, "job-1", image, "held out: rows 0-255")
    tuned = _job(tmp_path, "job-2", other, f"{SAME_PIXELS_NOTE} (the region is too small).", init=first)
    seen = seen_pixels(tuned, image, sample_scene=False)
    assert seen.base == str(first) and seen.share == 0 and not seen.validated_on_training
