"""U-Net presets, the masked BCE + Dice loss, Dice/IoU metrics, and saving with a model card.

A model is two files: ``NAME.keras`` (Keras 3 archive) and ``NAME.json`` (the :class:`ModelCard`:
input bands, normalization statistics, preset, training command and metrics). Loading checks both
and raises precise errors; :func:`check_bands` refuses an image whose bands differ from the model's.

Labels travel as ``y_true[..., 0]`` = crop (0/1) and ``y_true[..., 1]`` = valid (0/1), so loss and
metrics ignore no-data pixels.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from core.tfimport import import_tensorflow

import_tensorflow()  # the model's library, without TensorFlow's start-up notices (see core.tfimport)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from core.errors import (CardMismatchError, ConfigError, CorruptFileError, InputNotFoundError,  # noqa: E402
                         ModelMismatchError)
from core.files import MAX_UPLOAD_BYTES, move_into_place, safe_stem, staging_dir, temp_name  # noqa: E402

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MODEL_PATH = ASSETS / "models" / "crop_unet_light.keras"


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


def _conv_block(x, filters: int):
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    return x


def build_unet(preset: str | Preset, n_bands: int = 5) -> keras.Model:
    """Build an (uncompiled) U-Net of ``preset`` with ``n_bands`` inputs and a sigmoid output.

    Raises:
        ConfigError: for an unknown preset.
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    size = p.input_size
    inputs = keras.Input((size, size, n_bands), name="features")
    x = inputs
    skips = []
    for f in p.encoder:
        x = _conv_block(x, f)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = _conv_block(x, p.centre)
    for f, skip in zip(reversed(p.encoder), reversed(skips)):
        x = layers.Conv2DTranspose(f, 2, strides=2, padding="same")(x)
        x = layers.Concatenate()([skip, x])
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = _conv_block(x, f)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="crop_probability")(x)
    return keras.Model(inputs, outputs, name=f"unet_{p.name}")


# ---------------------------------------------------------------- loss and metrics

def _split(y_true, y_pred):
    y = tf.cast(y_true[..., 0], tf.float32)
    w = tf.cast(y_true[..., 1], tf.float32)
    p = tf.clip_by_value(tf.cast(y_pred[..., 0], tf.float32), 1e-7, 1 - 1e-7)
    return y, w, p


def masked_bce_dice(y_true, y_pred):
    """Binary cross-entropy + (1 - Dice), both over valid pixels only."""
    y, w, p = _split(y_true, y_pred)
    n = tf.maximum(tf.reduce_sum(w), 1.0)
    bce = -(y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p))
    bce = tf.reduce_sum(bce * w) / n
    inter = tf.reduce_sum(w * p * y)
    dice = (2 * inter + 1.0) / (tf.reduce_sum(w * p) + tf.reduce_sum(w * y) + 1.0)
    return bce + (1.0 - dice)


class _MaskedCounts(keras.metrics.Metric):
    """Accumulates masked tp/fp/fn at threshold 0.5."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.tp = self.add_weight(name="tp", initializer="zeros")
        self.fp = self.add_weight(name="fp", initializer="zeros")
        self.fn = self.add_weight(name="fn", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, w, p = _split(y_true, y_pred)
        hard = tf.cast(p >= 0.5, tf.float32)
        self.tp.assign_add(tf.reduce_sum(w * hard * y))
        self.fp.assign_add(tf.reduce_sum(w * hard * (1 - y)))
        self.fn.assign_add(tf.reduce_sum(w * (1 - hard) * y))

    def reset_state(self):
        for v in (self.tp, self.fp, self.fn):
            v.assign(0.0)


class MaskedIoU(_MaskedCounts):
    def __init__(self, name: str = "iou", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return self.tp / tf.maximum(self.tp + self.fp + self.fn, 1.0)


class MaskedDice(_MaskedCounts):
    def __init__(self, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return 2 * self.tp / tf.maximum(2 * self.tp + self.fp + self.fn, 1.0)


def compile_model(model: keras.Model, learning_rate=1e-3) -> keras.Model:
    """Compile with Adam, masked BCE + Dice, and masked Dice/IoU metrics."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=masked_bce_dice,
        metrics=[MaskedDice(), MaskedIoU()],
    )
    return model


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
    #: the model's weights fingerprint (:func:`weights_fingerprint`), written by :func:`save_model`, so
    #: that a card is never used with another model's weights; "" in cards written before it was
    weights: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bands"] = list(self.bands)
        d["normalization"] = {"mean": list(self.normalization.mean), "std": list(self.normalization.std)}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCard":
        """Raises CorruptFileError if required fields are missing, the bands are not a list of names,
        the normalization does not hold one finite mean and one finite, positive standard deviation
        per band, or pixel_size_m is neither null nor a positive number."""
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
            _check_normalization(norm, len(d["bands"]))
            size = d.get("pixel_size_m")
            if size is not None and (isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size < float("inf")):
                raise CorruptFileError(f"the model card's pixel_size_m is {size!r}; it must be a positive number of metres "
                                       "or null; " + DAMAGED_CARD)
            patch = d.get("patch_size", 256)
            if isinstance(patch, bool) or not isinstance(patch, int) or patch < 16 or patch % 16:
                raise CorruptFileError(f"the model card's patch_size is {patch!r}; it must be a whole multiple of 16 px "
                                       "(the U-Net's pooling); " + DAMAGED_CARD)
            return cls(
                preset=d["preset"],
                bands=tuple(d["bands"]),
                normalization=norm,
                patch_size=patch,
                created=d.get("created", ""),
                command=d.get("command", ""),
                training=d.get("training", {}),
                metrics=d.get("metrics", {}),
                data=d.get("data", ""),
                notes=d.get("notes", ""),
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


def weights_fingerprint(model) -> str:
    """SHA-256 of a model's weights (each array's shape, type and values, in the model's order): the
    same for a model and the file it was saved to, and for nothing else in practice."""
    import hashlib

    digest = hashlib.sha256()
    for w in model.get_weights():
        w = np.ascontiguousarray(w)
        digest.update(f"{w.shape}{w.dtype.str};".encode())
        digest.update(w.tobytes())
    return digest.hexdigest()


def _check_normalization(norm: Normalization, n_bands: int) -> None:
    """Raises CorruptFileError unless mean and std hold one finite number per band and std > 0."""
    for name, values in (("mean", norm.mean), ("std", norm.std)):
        if len(values) != n_bands:
            raise CorruptFileError(f"the model card's normalization {name} has {len(values)} values for {n_bands} bands; "
                                   + DAMAGED_CARD)
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v)]
        if bad:
            raise CorruptFileError(f"the model card's normalization {name} holds {bad[0]!r}, not a finite number; "
                                   + DAMAGED_CARD)
    if min(norm.std, default=1.0) <= 0:
        raise CorruptFileError(f"the model card's normalization std holds {min(norm.std)!r}; a standard deviation must be "
                               "above 0; " + DAMAGED_CARD)


def card_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(".json")


def model_files(model_path: str | os.PathLike | None) -> tuple[Path, Path]:
    """(.keras, card .json) of a model path; None is the shipped model."""
    path = Path(model_path) if model_path is not None else DEFAULT_MODEL_PATH
    return path, card_path(path)


@dataclass
class LoadedModel:
    """A Keras model with its card."""

    model: keras.Model
    card: ModelCard
    path: Path


def save_model(model: keras.Model, card: ModelCard, path: str | os.PathLike) -> Path:
    """Write ``path`` (.keras) and its card (.json) atomically (temporary names, then rename).

    The file holds what prediction and fine-tuning need, without a compiled model's optimizer state
    (a third of the size; a training run's ``last.keras`` keeps that state for resuming).

    Raises:
        ConfigError: ``path`` does not end in .keras.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ConfigError(f"model files end in .keras, got {path.name}")
    if getattr(model, "optimizer", None) is not None:
        model = keras.Model(model.input, model.output, name=model.name)  # the same layers, uncompiled
    card = replace(card, weights=weights_fingerprint(model))  # whatever card it was given: this model's
    # a hidden folder beside the model, removed whatever happens (a full disk, an interrupt): no
    # temporary or replaced file is left in the model's folder
    with staging_dir(path.parent, prefix=f".{path.stem}.save-") as tmpdir:
        tmp, tmp_card = tmpdir / path.name, tmpdir / card_path(path).name
        model.save(tmp)
        tmp_card.write_text(json.dumps(card.to_dict(), indent=2))
        # the card first: whoever finds the model (a page polling a training run) finds its card too;
        # both or neither (an old model never goes with a new card)
        move_into_place([(tmp_card, card_path(path)), (tmp, path)], tmpdir)
    return path


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
        return ModelCard.from_dict(json.loads(cp.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"model card {cp} is not valid JSON ({err}); " + DAMAGED_CARD) from None
    except OSError as err:  # e.g. a folder of that name
        raise CorruptFileError(f"cannot read the model card {cp} ({err.strerror or err}); " + DAMAGED_CARD) from None


#: Largest model card accepted from an upload (a card is a few kB).
MAX_CARD_BYTES = 1_000_000


def discard_stored_model(path: str | os.PathLike) -> None:
    """Remove a model that :func:`store_uploaded_model` stored (``root/<hash>/NAME.keras`` and its card:
    its folder), e.g. one refused when loaded; anything else is left alone."""
    import shutil

    path = Path(path)
    folder = path.parent
    try:
        ours = {p.name for p in folder.iterdir()} <= {path.name, card_path(path).name}
    except OSError:  # gone already
        return
    if re.fullmatch(r"[0-9a-f]{16}", folder.name) and path.suffix == ".keras" and ours:
        shutil.rmtree(folder, ignore_errors=True)


def store_uploaded_model(model_bytes: bytes, card_bytes: bytes, root: str | os.PathLike,
                         max_bytes: int = MAX_UPLOAD_BYTES, name: str = "model.keras") -> Path:
    """Store an uploaded model and its card as ``root/<hash>/NAME.keras`` + ``NAME.json`` (``name``:
    the uploaded file's name, made safe for a path); return the ``.keras`` path.

    The folder is named by the hash of both files together, so an upload never replaces the files
    of another model (for example the one in use, uploaded earlier with another card). The card is
    checked before anything is written, and the folder appears only when both files are complete.
    The model itself is checked when it is loaded (:func:`load_model`, :func:`check_bands`).

    Raises:
        InvalidDataError: a file is empty or too large.
        CorruptFileError: the card is not JSON or lacks required fields.
    """
    import hashlib

    from core.errors import InvalidDataError

    if not model_bytes or not card_bytes:
        raise InvalidDataError("the uploaded " + ("model" if not model_bytes else "model card") + " is empty")
    if len(model_bytes) > max_bytes:
        raise InvalidDataError(f"the model is {len(model_bytes) / 1e6:.0f} MB; uploads are limited to {max_bytes / 1e6:.0f} MB")
    if len(card_bytes) > MAX_CARD_BYTES:
        raise InvalidDataError("the model card is larger than 1 MB; it is not a model card")
    try:
        ModelCard.from_dict(json.loads(card_bytes))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"the model card is not valid JSON ({err}); upload the .json that core wrote beside the .keras") from None
    stem = safe_stem(name, "model")
    digest = hashlib.sha1(hashlib.sha1(model_bytes).digest() + hashlib.sha1(card_bytes).digest()
                          + stem.encode()).hexdigest()[:16]
    root = Path(root)
    folder = root / digest
    final = folder / f"{stem}.keras"
    if final.exists() and card_path(final).exists():
        return final
    import shutil

    tmp = temp_name(root / digest)
    tmp.mkdir(parents=True)
    try:
        (tmp / final.name).write_bytes(model_bytes)
        (tmp / card_path(final).name).write_bytes(card_bytes)
    except BaseException:  # e.g. a full disk: nothing half-written stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, folder)
    except OSError:  # another session stored the same upload meanwhile (or a stale partial folder)
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final.exists() and card_path(final).exists()):
            raise
    return final


def check_model_files(path: str | os.PathLike | None = None) -> tuple[Path, ModelCard]:
    """A model's .keras file (default: the shipped weights) and its card, checked without loading the
    model (in a moment: a command says of them before an output in its way).

    Raises:
        InputNotFoundError: the .keras file or its card is missing.
        ConfigError: ``path`` is a folder.
        CorruptFileError: the card is unreadable, or a .keras file is not a Keras archive (a zip).
    """
    path = model_files(path)[0]
    if not path.exists():
        raise InputNotFoundError(f"model file not found: {path}")
    if path.is_dir():
        held = sorted(path.glob("*.keras"))  # the models it holds, by name (a run's best.keras among them)
        named = (f"it holds {', '.join(str(p) for p in held[:3])}{' ...' if len(held) > 3 else ''}" if held
                 else f"e.g. {path / 'best.keras'} of a training run")
        raise ConfigError(f"{path} is a folder; give the model's .keras file ({named})")
    card = load_card(path)
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise CorruptFileError(f"cannot load model {path.name}: the file is truncated or not a Keras model (not a "
                               ".keras archive); save or download it again")
    return path, card


def load_model(path: str | os.PathLike | None = None) -> LoadedModel:
    """Load a model and its card (default: the shipped weights).

    Raises:
        InputNotFoundError: the .keras file or its card is missing.
        ConfigError: ``path`` is a folder.
        CorruptFileError: either file is truncated or not what it claims.
        CardMismatchError: its card was written for another model's weights.
        ModelMismatchError: the model is not a crop segmentation model (one image in, one
            probability per pixel out) taking the card's bands.
    """
    path, card = check_model_files(path)
    try:
        model = keras.models.load_model(path, compile=False)
    except TypeError:  # Keras: "Could not locate class ..." for a layer or object it does not know
        raise CorruptFileError(f"cannot load model {path.name}: its configuration names a layer or object that this "
                               "version of core does not know; use a model saved by core") from None
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as err:
        if "safe_mode" in str(err):  # Keras's safe mode: a Lambda layer's Python code is not run from a file
            raise CorruptFileError(f"cannot load model {path.name}: it holds Python code (a Lambda layer), which is "
                                   "never run from a file, for safety; use a model that core saved (its U-Nets hold "
                                   "no code)") from None
        hint = ("; give the model's .keras file (its card, the .json beside it, is read with it)"
                if path.suffix.lower() != ".keras" else "; save or download it again")
        why = {"BadZipFile": "not a zip archive", "KeyError": "a zip archive without a Keras model's files",
               "EOFError": "it ends too soon"}.get(type(err).__name__, "it cannot be read as one")
        raise CorruptFileError(f"cannot load model {path.name}: the file is truncated or not a Keras model "
                               f"({why}){hint}") from None
    _check_model_shape(model, card, path.name)
    if card.weights and card.weights != weights_fingerprint(model):
        raise card_mismatch(card_path(path).name, "this model")
    return LoadedModel(model, card, path)


def card_mismatch(card_name: str, model_name: str) -> CardMismatchError:
    """The error for a model card ``card_name`` that is not ``model_name``'s (its weights differ)."""
    return CardMismatchError(f"the model card {card_name} is not {model_name}'s: it was written for a model with "
                             "other weights (another training's card, or the shipped model's), so its normalization "
                             "and figures do not hold; use the .json that core wrote beside the .keras file")


def _check_model_shape(model, card: ModelCard, name: str) -> None:
    """Refuse a model that does not take (n, H, W, bands of the card) and give (n, H, W, 1).

    Raises:
        ModelMismatchError: another kind of model (e.g. a classifier), or a card of another model.
    """
    try:
        ins, outs = model.inputs, model.outputs
    except AttributeError:  # a layer or another object saved as .keras, not a model
        ins = outs = None
    shape_in = tuple(ins[0].shape) if ins and len(ins) == 1 else None
    shape_out = tuple(outs[0].shape) if outs and len(outs) == 1 else None
    if shape_in is None or shape_out is None or len(shape_in) != 4 or shape_out[1:] != (*shape_in[1:3], 1):
        raise ModelMismatchError(f"{name} is not a crop segmentation model (it takes {shape_in or 'no image'} and gives "
                                 f"{shape_out or 'no image'}; a U-Net takes (n, H, W, bands) and gives (n, H, W, 1)); "
                                 "use a model trained by core")
    if shape_in[-1] != len(card.bands):
        raise ModelMismatchError(f"{name} takes {shape_in[-1]} input bands but its card names {len(card.bands)} "
                                 f"({', '.join(card.bands)}); the card belongs to another model: use the .json that "
                                 "core wrote beside the .keras")


def resolution_warning(card: ModelCard, grid, advice: str = "cli") -> str | None:
    """A sentence when the image's pixels differ from the training pixels by more than 1.5 times
    (the model then sees fields at another scale); None when they match or either is unknown.
    ``advice``: what to do, for the command line ("cli": its resample command), the dashboard
    ("dashboard": the Region page's upload option; "earthengine": the Earth Engine settings' pixel size)
    or none ("none": a slide's caveat)."""
    size = grid.pixel_size_m()
    if size is None or not card.pixel_size_m:
        return None
    ratio = size / card.pixel_size_m
    if 1 / 1.5 <= ratio <= 1.5:
        return None
    from core.grid import metres_text
    from core.resample import SHIPPED_PIXEL_SIZE_M

    said = (f"the model was trained on {card.pixel_size_m:g} m pixels and this image has {metres_text(size)} m pixels, so "
            f"fields look {max(ratio, 1 / ratio):.1f} times {'smaller' if ratio > 1 else 'larger'} to it: expect "
            "poorer results")
    if advice == "none":
        return said
    if advice == "earthengine":  # (no file to upload: the composite is made at the size asked for)
        return (f"{said}; set the Earth Engine settings' Pixel size (m) to {card.pixel_size_m:g} on the Region page, "
                "or fine-tune the model on images like these")
    shipped = card.pixel_size_m == SHIPPED_PIXEL_SIZE_M  # the Region page's upload offers that size
    how = ("python -m core resample" if advice == "cli" else
           f"on the Region page, upload it with 'Average to {SHIPPED_PIXEL_SIZE_M:g} m pixels'" if shipped else "")
    return (f"{said}; fine-tune the model on images like it, or try the image averaged to {card.pixel_size_m:g} m"
            + (f" ({how})" if how else "") + " and compare")


#: A card's validation figures at its best epoch (Keras's keys) and their names for people (Dice is F1,
#: as the figures on the validation blocks call it)
VALIDATION_FIGURES = (("val_iou", "IoU"), ("val_dice", "F1 (Dice)"), ("val_loss", "loss"))


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
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    how = []
    if number("patches_seen") is not None:
        how.append(f"{int(number('patches_seen')):,} patches seen")
    if number("epochs_run") is not None or number("epochs") is not None:
        n = int(number('epochs_run') or number('epochs'))
        # without epochs_run (a job's card, written at its best epoch), the epochs asked for
        how.append(f"{n} epoch{'s' if n != 1 else ''}" + ("" if number("epochs_run") is not None else " planned"))
    if number("batch_size") is not None:
        how.append(f"batches of {int(number('batch_size'))}")
    if number("learning_rate") is not None:
        how.append(f"learning rate {number('learning_rate'):g}")
    if t.get("augment") is True:
        how.append("flips and 90-degree turns")
    if t.get("init_model"):
        init = Path(str(t["init_model"]))  # a run's checkpoint (best.keras, last.keras) is named by its run's folder
        run = init.parent.parent if init.parent.name == "train" else init.parent
        named = init.name in ("best.keras", "last.keras") and run.name
        how.append(f"fine-tuned from {init.name}" + (f" of {run.name}" if named else ""))
    if how:
        rows.append(("Training", ", ".join(how)))
    metrics = card.metrics if isinstance(card.metrics, dict) else {}
    best = metrics.get("val") or metrics.get("val_patches_at_best_epoch")
    if isinstance(best, dict):
        scores = [f"{name} {best[key]:.3f}" for key, name in VALIDATION_FIGURES
                  if isinstance(best.get(key), (int, float))]
        if scores:
            at = f"epoch {best['epoch']}" if isinstance(best.get("epoch"), int) else "the best epoch"
            # (beside the validation blocks' own figures, which differ a little: say which is which)
            other = " (during training; the validation blocks' figures above differ a little)" if metrics.get("val_blocks") else ""
            rows.append(("Chosen at", f"{at}, on validation patches{other}: " + ", ".join(scores)))
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
