"""The model card: the JSON beside each ``NAME.keras`` that says how to use the model and where it came from.

A card holds the model's input bands, normalization statistics, U-Net preset, patch and pixel size,
training command and metrics, and the fingerprint of the weights it was written for
(:func:`core.model.weights_fingerprint`). Reading and checking a card is pure: this module never
loads TensorFlow, so pages and commands that only need a card (its figures, its bands, whether two
files are the same model) stay light. Building, saving and loading the model itself is
:mod:`core.model`'s.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from core.config import finite_number
from core.errors import (CardMismatchError, ConfigError, CorruptFileError, CropMapError, InputNotFoundError,
                         ModelMismatchError, cut_text, unreadable_text)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
#: The shipped model (its card beside it, ``crop_unet_light.json``).
DEFAULT_MODEL_PATH = ASSETS / "models" / "crop_unet_light.keras"


# ---------------------------------------------------------------- presets (a card's ``preset`` names one)

@dataclass(frozen=True)
class Preset:
    """U-Net shape: filters of the encoder levels, centre filters, fixed input size or None."""

    name: str
    encoder: tuple[int, ...]
    centre: int
    input_size: int | None
    description: str


PRESETS: dict[str, Preset] = {
    "seed": Preset(
        "seed",
        (32, 64, 128, 256, 512),
        1024,
        256,
        "The 2019 notebook's U-Net: encoder 32-64-128-256-512, centre 1024, 256 x 256 input (31M parameters).",
    ),
    "light": Preset(
        "light",
        (16, 32, 64, 128),
        256,
        None,
        "Base-16, depth-4 U-Net (about 1.9M parameters), any input size divisible by 16.",
    ),
}


def get_preset(name: str) -> Preset:
    """Raises ConfigError for an unknown preset name."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


# ---------------------------------------------------------------- model card

@dataclass(frozen=True)
class Normalization:
    """Per-band mean and standard deviation of the features (over valid pixels)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def apply(self, features: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """(features - mean) / std as float32; invalid pixels become 0."""
        features = np.ascontiguousarray(features)
        # Rows of (width x bands) values against the statistics repeated along a row: numpy then runs
        # long contiguous loops instead of one loop of 5 per pixel (4x faster on 512 x 512 tiles).
        shape, w = features.shape, features.shape[-2] if features.ndim > 1 else 1
        rows = features.reshape(-1, w * shape[-1])
        out = np.subtract(rows, np.tile(np.asarray(self.mean, np.float32), w), dtype=np.float32)
        np.divide(out, np.tile(np.asarray(self.std, np.float32), w), out=out)
        out = out.reshape(shape)
        if valid is not None and not valid.all():
            out[~valid] = 0.0
        return out


#: The end of every message about a model card that is not what core writes.
DAMAGED_CARD = "the card is damaged: use the .json that core wrote beside the .keras"
#: Largest model card read (a card is a few kB; a damaged one of megabytes made a one-line error of megabytes).
MAX_CARD_BYTES = 1_000_000


@dataclass(frozen=True)
class ModelCard:
    """What a saved model needs to be used correctly, and where it came from."""

    preset: str
    bands: tuple[str, ...]
    normalization: Normalization
    patch_size: int = 256
    created: str = ""
    command: str = ""
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    data: str = ""
    notes: str = ""
    #: ground size of the training pixels in metres, None when unknown (training images without a CRS)
    pixel_size_m: float | None = None
    #: the model's weights fingerprint (:func:`core.model.weights_fingerprint`), written by
    #: :func:`core.model.save_model`, so that a card is never used with another model's weights; "" in
    #: cards written before it was
    weights: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bands"] = list(self.bands)
        d["normalization"] = {"mean": list(self.normalization.mean), "std": list(self.normalization.std)}
        return d

    @property
    def best_epoch(self) -> int | None:
        """The epoch a training's card was written at (``metrics.val.epoch``), or None."""
        val = self.metrics.get("val") if isinstance(self.metrics, dict) else None
        epoch = val.get("epoch") if isinstance(val, dict) else None
        return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None

    def validation_iou(self) -> float | None:
        """The validation IoU the card gives: its whole validation blocks' (``metrics.val_blocks.iou``),
        else its validation patches' at the best epoch (``metrics.val.val_iou``); None without one."""
        metrics = self.metrics if isinstance(self.metrics, dict) else {}
        blocks, val = metrics.get("val_blocks"), metrics.get("val")
        iou = blocks.get("iou") if isinstance(blocks, dict) else None
        if iou is None:
            iou = val.get("val_iou") if isinstance(val, dict) else None
        return float(iou) if isinstance(iou, (int, float)) and not isinstance(iou, bool) else None

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCard":
        """Raises CorruptFileError if required fields are missing, the bands are not a list of names,
        the normalization does not hold one finite mean and one finite, positive standard deviation
        per band, pixel_size_m is neither null nor a positive number, or the preset or a text field
        (created, command, data, notes) is not a text."""
        if not isinstance(d, dict):
            raise CorruptFileError(f"the model card is a JSON {type(d).__name__}, not an object of fields (preset, "
                                   "bands, normalization, ...); " + DAMAGED_CARD)
        if not {"preset", "bands", "normalization"} & d.keys():  # another JSON file (e.g. a summary.json)
            has = f"its fields are {', '.join(sorted(map(str, d))[:6])}" if d else "it is empty"
            raise CorruptFileError(f"this JSON is not a model card: it has none of a card's fields (preset, bands, "
                                   f"normalization), {has}; use the .json that core wrote beside the .keras, "
                                   "with the same name")
        try:
            if not isinstance(d["bands"], list) or not all(isinstance(b, str) for b in d["bands"]):
                raise CorruptFileError(f"the model card's bands are {d['bands']!r}, not a list of band names; "
                                       + DAMAGED_CARD)
            norm = Normalization(tuple(d["normalization"]["mean"]), tuple(d["normalization"]["std"]))
            check_normalization(norm, len(d["bands"]))
            size = d.get("pixel_size_m")
            if size is not None and (isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size < float("inf")):
                raise CorruptFileError(f"the model card's pixel_size_m is {size!r}; it must be a positive number of metres "
                                       "or null; " + DAMAGED_CARD)
            if not isinstance(d["preset"], str):
                raise CorruptFileError(f"the model card's preset is {d['preset']!r}, not a preset's name such as "
                                       f"'light'; " + DAMAGED_CARD)
            texts = {key: d.get(key, "") for key in ("created", "command", "data", "notes")}
            for key, value in texts.items():
                if not isinstance(value, str):
                    raise CorruptFileError(f"the model card's {key} is {str(value)[:40]!r}, not a text; "
                                           + DAMAGED_CARD)
            patch = d.get("patch_size", 256)
            if isinstance(patch, bool) or not isinstance(patch, int) or patch < 16 or patch % 16:
                raise CorruptFileError(f"the model card's patch_size is {patch!r}; it must be a whole multiple of 16 px "
                                       "(the U-Net's pooling); " + DAMAGED_CARD)
            return cls(
                preset=d["preset"],
                bands=tuple(d["bands"]),
                normalization=norm,
                patch_size=patch,
                training=d.get("training", {}),
                metrics=d.get("metrics", {}),
                **texts,
                pixel_size_m=None if size is None else float(size),
                weights=_weights_field(d.get("weights", "")),
            )
        except KeyError as err:
            raise CorruptFileError(f"the model card has no {err.args[0]!r} field; " + DAMAGED_CARD) from None
        except (TypeError, ValueError) as err:
            raise CorruptFileError(f"the model card's fields are not what core writes ({err}); " + DAMAGED_CARD) from None


def _weights_field(value) -> str:
    """Raises CorruptFileError: a card's weights fingerprint that is not a hex digest."""
    if not isinstance(value, str) or (value and not re.fullmatch(r"[0-9a-f]{64}", value)):
        raise CorruptFileError(f"the model card's weights are {str(value)[:40]!r}, not a fingerprint of the model's "
                               "weights; " + DAMAGED_CARD)
    return value


#: The range a normalization's figures must lie in: (features - mean) / std is worked out in float32, whose
#: numbers end near 3.4e38 (a mean of 1e308 became inf, and every pixel no data); reflectance and indices
#: have means and standard deviations of 1e-3 to 1e4, band values of other products far less than this.
NORMALIZATION_RANGE = (1e-12, 1e12)


def check_normalization(norm: Normalization, n_bands: int) -> None:
    """Raises CorruptFileError unless mean and std hold one finite number per band, each mean within
    +-``NORMALIZATION_RANGE[1]`` and each std within :data:`NORMALIZATION_RANGE`."""
    for name, values in (("mean", norm.mean), ("std", norm.std)):
        if len(values) != n_bands:
            raise CorruptFileError(f"the model card's normalization {name} has {len(values)} values for {n_bands} bands; "
                                   + DAMAGED_CARD)
        bad = [v for v in values if not finite_number(v)]
        if bad:
            raise CorruptFileError(f"the model card's normalization {name} holds {bad[0]!r}, not a finite number; "
                                   + DAMAGED_CARD)
    low, high = NORMALIZATION_RANGE
    if min(norm.std, default=1.0) <= 0:
        raise CorruptFileError(f"the model card's normalization std holds {min(norm.std)!r}; a standard deviation must be "
                               "above 0; " + DAMAGED_CARD)
    far = [v for v in norm.std if not low <= v <= high] + [v for v in norm.mean if abs(v) > high]
    if far:
        raise CorruptFileError(f"the model card's normalization holds {far[0]!r}, beyond what any band's values take "
                               f"(means up to {high:g}, standard deviations {low:g} to {high:g}); " + DAMAGED_CARD)


def card_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(".json")


def model_files(model_path: str | os.PathLike | None) -> tuple[Path, Path]:
    """(.keras, card .json) of a model path; None is the shipped model."""
    path = Path(model_path) if model_path is not None else DEFAULT_MODEL_PATH
    return path, card_path(path)


def load_card(path: str | os.PathLike) -> ModelCard:
    """Read the card beside a model. Raises InputNotFoundError, CorruptFileError."""
    cp = card_path(path)
    if not cp.exists():
        # a run's last.keras is where --resume goes on from (no card): its best.keras is the model to use
        best = Path(path).with_name("best.keras")
        hint = (f"; {Path(path).name} is where a training run resumes from: use {best.name} beside it, the run's "
                "model (with its card)" if Path(path).name == "last.keras" and best.exists() else "")
        raise InputNotFoundError(f"model card {cp.name} not found beside {Path(path).name}; a model needs its .json card"
                                 + hint)
    try:
        if cp.stat().st_size > MAX_CARD_BYTES:
            raise CorruptFileError(f"model card {cp} is over {MAX_CARD_BYTES:,} bytes, a card a few thousand; "
                                   + DAMAGED_CARD)
        data = json.loads(cp.read_text())
    except (ValueError, RecursionError) as err:  # (JSON's errors; a number thousands of digits long; nesting)
        raise CorruptFileError(f"model card {cp} is not valid JSON ({str(err)[:200]}); " + DAMAGED_CARD) from None
    except PermissionError:  # (not damaged: "the card is damaged" sent the user to a card they had)
        raise CorruptFileError(unreadable_text(f"the model card {cp}")) from None
    except OSError as err:  # e.g. a folder of that name
        raise CorruptFileError(f"cannot read the model card {cp} ({err.strerror or err}); " + DAMAGED_CARD) from None
    try:
        return ModelCard.from_dict(data)
    except CorruptFileError as err:  # (a field's fault was said without the file: "the model card's bands are ...")
        raise CorruptFileError(f"model card {cp.name}: {cut_text(str(err))}") from None


def same_weights(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether the models ``a`` and ``b`` (.keras paths) have the same weights, by their cards'
    fingerprints (e.g. an uploaded copy of the shipped model, under another name): False when either
    card is missing, damaged or has no fingerprint (a card written before cards had one). Reads the
    cards only, never the models."""
    try:
        fa, fb = load_card(a).weights, load_card(b).weights
    except CropMapError:
        return False
    return bool(fa) and fa == fb


def card_mismatch(card_name: str, model_name: str) -> CardMismatchError:
    """The error for a model card ``card_name`` that is not ``model_name``'s (its weights differ)."""
    return CardMismatchError(f"the model card {card_name} is not {model_name}'s: it was written for a model with "
                             "other weights (another training's card, or the shipped model's), so its normalization "
                             "and figures do not hold; use the .json that core wrote beside the .keras file")


def resolution_warning(card: ModelCard, grid, advice: str = "cli") -> str | None:
    """A sentence when the image's pixels differ from the training pixels by more than 1.5 times
    (the model then sees fields at another scale); None when they match or either is unknown.
    ``advice``: what to do, for the command line ("cli": its resample command), the dashboard
    ("dashboard": the Region page's upload option; "earthengine": the Earth Engine settings' pixel size;
    "export": an Earth Engine image export, made again at the model's scale) or none ("none": a
    slide's caveat)."""
    size = grid.pixel_size_m()
    if size is None or not card.pixel_size_m:
        return None
    ratio = size / card.pixel_size_m
    if 1 / 1.5 <= ratio <= 1.5:
        return None
    from core.grid import metres_text
    from core.commands import core_command
    from core.resample import SHIPPED_PIXEL_SIZE_M, reprojection_needed

    said = (f"the model was trained on {card.pixel_size_m:g} m pixels and this image has {metres_text(size)} m pixels, so "
            f"fields look {max(ratio, 1 / ratio):.1f} times {'smaller' if ratio > 1 else 'larger'} to it: expect "
            "poorer results")
    if advice == "none":
        return said
    if advice == "earthengine":  # (no file to upload: the composite is made at the size asked for)
        return (f"{said}; set the Earth Engine settings' Pixel size (m) to {card.pixel_size_m:g} on the Region page, "
                "or fine-tune the model on images like these")
    if advice == "export":  # (no file to upload either: the export is made at its scale)
        return (f"{said}; export the image again at a scale of {card.pixel_size_m:g} m (the Earth Engine page's Pixel "
                "size, or Export.image's scale), or fine-tune the model on images like it")
    shipped = card.pixel_size_m == SHIPPED_PIXEL_SIZE_M  # the Region page's upload offers that size
    how = (core_command("resample") if advice == "cli" else
           f"on the Region page, upload it with 'Average to {SHIPPED_PIXEL_SIZE_M:g} m pixels'" if shipped else "")
    if reprojection_needed(grid):  # (degrees, or Web Mercator: resampling refuses it, "reproject it first")
        how = "after reprojecting it to a CRS in metres, e.g. its UTM zone with gdalwarp -t_srs" + (
            f", then {how}" if how else "")
    return (f"{said}; fine-tune the model on images like it, or try the image averaged to {card.pixel_size_m:g} m"
            + (f" ({how})" if how else "") + " and compare")


#: A card's validation figures at its best epoch (Keras's keys) and their names for people (Dice is F1,
#: as the figures on the validation blocks call it)
VALIDATION_FIGURES = (("val_iou", "IoU"), ("val_dice", "F1 (Dice)"), ("val_loss", "loss"))


#: The pooled scores on the validation blocks a card may give (``metrics.val_blocks``), in the order shown
BLOCK_SCORES = ("iou", "f1", "precision", "recall", "accuracy")
#: A validation block's own figures a card may give (``metrics.val_blocks.per_block``)
PER_BLOCK_FIGURES = ("iou", "f1", "valid_pixels")


@dataclass(frozen=True)
class BlockFigures:
    """A card's figures on whole validation blocks, checked: ``scores`` holds those of :data:`BLOCK_SCORES`
    the card gives as finite numbers, ``per_block`` each block's finite figures of
    :data:`PER_BLOCK_FIGURES` (blocks with none left out), ``how`` the card's words on how they were made."""

    scores: dict[str, float]
    per_block: dict[str, dict[str, float]]
    how: str | None


def _finite(d: object, keys: Sequence[str]) -> dict[str, float]:
    d = d if isinstance(d, dict) else {}
    return {k: float(d[k]) for k in keys if finite_number(d.get(k))}


def block_figures(card: ModelCard) -> BlockFigures | None:
    """The card's figures on whole validation blocks, or None when it gives none. Never raises: a card
    written by hand may hold them in another form, and what is not a number is left out."""
    metrics = card.metrics if isinstance(card.metrics, dict) else {}
    blocks = metrics.get("val_blocks")
    if not isinstance(blocks, dict):
        return None
    listed = blocks.get("per_block") if isinstance(blocks.get("per_block"), dict) else {}
    per_block = {str(name): _finite(figures, PER_BLOCK_FIGURES) for name, figures in listed.items()}
    how = blocks.get("how") if isinstance(blocks.get("how"), str) and blocks["how"].strip() else None
    figures = BlockFigures(_finite(blocks, BLOCK_SCORES), {k: v for k, v in per_block.items() if v}, how)
    return figures if figures.scores or figures.per_block else None


def best_epoch_figures(card: ModelCard) -> tuple[int | None, list[tuple[str, float]]]:
    """The epoch a training chose its weights at (None if the card does not say) and its validation
    patches' figures then, as (name for people, value) in :data:`VALIDATION_FIGURES`' order, from
    ``metrics.val`` (a job's card) or ``metrics.val_patches_at_best_epoch`` (the shipped card); an
    empty list without any. Never raises."""
    metrics = card.metrics if isinstance(card.metrics, dict) else {}
    best = metrics.get("val") or metrics.get("val_patches_at_best_epoch")
    best = best if isinstance(best, dict) else {}
    epoch = best.get("epoch")
    epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None
    values = _finite(best, [key for key, _ in VALIDATION_FIGURES])
    return epoch, [(name, values[key]) for key, name in VALIDATION_FIGURES if key in values]


def card_facts(card: ModelCard) -> list[tuple[str, str]]:
    """The card in words, for people (the dashboard's model card): (what, text) rows for the model,
    its input, its training data, how it was trained, its best epoch, when it was made, the command
    that made it and its notes; rows the card has nothing for are left out. Never raises: a card
    written by hand may lack any of the optional fields, or hold them in another form."""
    rows: list[tuple[str, str]] = []
    preset = PRESETS.get(card.preset)
    rows.append(("Model", f"U-Net, {card.preset} preset" + (f": {preset.description}" if preset else "")))
    size = f" of {card.pixel_size_m:g} m pixels" if card.pixel_size_m else " (pixel size not recorded)"
    rows.append(("Input", f"{', '.join(card.bands)}; {card.patch_size} x {card.patch_size} px patches{size}"))
    if card.data:
        rows.append(("Trained on", card.data))
    t = card.training if isinstance(card.training, dict) else {}

    def number(key: str):
        value = t.get(key)
        return value if finite_number(value) else None

    how = []
    if number("patches_seen") is not None:
        how.append(f"{int(number('patches_seen')):,} patches seen")
    if number("epochs_run") is not None or number("epochs") is not None:
        n = int(number('epochs_run') if number('epochs_run') is not None else number('epochs'))
        # without epochs_run (a job's card, written at its best epoch), the epochs asked for
        how.append(f"{n} epoch{'s' if n != 1 else ''}" + ("" if number("epochs_run") is not None else " planned"))
    if number("batch_size") is not None:
        how.append(f"batches of {int(number('batch_size'))}")
    if number("learning_rate") is not None:
        how.append(f"learning rate {number('learning_rate'):g}")
    if t.get("augment") is True:
        how.append("flips and 90-degree turns")
    if t.get("patches_around_labels") is True:  # labels of a few surveyed fields (core.dataset.patch_windows)
        how.append("patches placed around labelled pixels (the labels were too sparse for patches half labelled)")
    if t.get("init_model"):
        init = Path(str(t["init_model"]))  # a run's checkpoint (best.keras, last.keras) is named by its run's folder
        run = init.parent.parent if init.parent.name == "train" else init.parent
        named = init.name in ("best.keras", "last.keras") and run.name
        how.append(f"fine-tuned from {init.name}" + (f" of {run.name}" if named else ""))
    if how:
        rows.append(("Training", ", ".join(how)))
    epoch, scores = best_epoch_figures(card)
    if scores:
        at = f"epoch {epoch}" if epoch is not None else "the best epoch"
        # (beside the validation blocks' own figures, which differ a little: say which is which)
        other = " (during training; the validation blocks' figures above differ a little)" if block_figures(card) else ""
        rows.append(("Chosen at", f"{at}, on validation patches{other}: "
                     + ", ".join(f"{name} {value:.3f}" for name, value in scores)))
    if card.created:
        utc = " UTC" if card.created.endswith("+00:00") else ""
        rows.append(("Created", card.created.replace("T", " ")[:16] + utc))
    if card.command:
        rows.append(("Made by", card.command))
    if card.notes:
        rows.append(("Notes", card.notes))
    return rows


def check_bands(card: ModelCard, bands: Sequence[str]) -> None:
    """Raises ModelMismatchError if the image's feature bands are not the model's."""
    if tuple(card.bands) != tuple(bands):
        raise ModelMismatchError(
            f"the model expects bands {', '.join(card.bands)} but the image gives {', '.join(bands)}; "
            "use a model trained on these bands or retrain"
        )
