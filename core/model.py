"""U-Net building, the masked BCE + Dice loss, Dice/IoU metrics, and saving with a model card.

A model is two files: ``NAME.keras`` (Keras 3 archive) and ``NAME.json`` (the model card,
:class:`core.card.ModelCard`: input bands, normalization statistics, preset, training command and
metrics; its reading and checking, TensorFlow-free, are in :mod:`core.card`). Loading checks both and
raises precise errors; :func:`core.card.check_bands` refuses an image whose bands differ from the model's.

Labels travel as ``y_true[..., 0]`` = crop (0/1) and ``y_true[..., 1]`` = valid (0/1), so loss and
metrics ignore no-data pixels.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.tfimport import import_tensorflow

import_tensorflow()  # the model's library, without TensorFlow's start-up notices (see core.tfimport)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from core.card import (MAX_CARD_BYTES, PRESETS, ModelCard, Preset, card_mismatch, card_path, get_preset,  # noqa: E402
                       load_card, model_files)
from core.errors import (ConfigError, CorruptFileError, InputNotFoundError, ModelMismatchError,  # noqa: E402
                         unreadable_text)
from core.files import (MAX_UPLOAD_BYTES, limit_text, move_into_place, safe_stem, staging_dir, synced,  # noqa: E402
                        temp_name)


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


def set_batchnorm_momentum(model: keras.Model, momentum: float) -> None:
    """Set the moving-average momentum of every BatchNormalization layer of ``model`` (nested
    models included) before it is trained: a traced training step keeps the value it was traced
    with. The momentum is saved with the model's layers."""
    todo = list(model.layers)
    while todo:
        layer = todo.pop()
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = float(momentum)
        todo.extend(getattr(layer, "layers", ()))


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
        raise InvalidDataError(f"the model is {limit_text(len(model_bytes))}; uploads are limited to {limit_text(max_bytes)}")
    if len(card_bytes) > MAX_CARD_BYTES:
        raise InvalidDataError("the model card is larger than 1 MB; it is not a model card")
    try:
        ModelCard.from_dict(json.loads(card_bytes))
    except (ValueError, RecursionError) as err:  # (JSON's errors; a number thousands of digits long; nesting)
        raise CorruptFileError(f"the model card is not valid JSON ({str(err)[:200]}); upload the .json that core wrote "
                               "beside the .keras") from None
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
    stale = None
    try:
        synced(tmp)
        # this upload's folder left incomplete (its card deleted by hand): replaced, as it holds only this upload
        # (a complete one, stored by another session meanwhile, stays: the rename below fails and it is used)
        if folder.is_dir() and not folder.is_symlink() and not (final.exists() and card_path(final).exists()):
            stale = temp_name(folder)
            os.replace(folder, stale)
        os.replace(tmp, folder)
    except OSError:  # another session stored the same upload meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final.exists() and card_path(final).exists()):
            raise
    finally:
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def check_model_files(path: str | os.PathLike | None = None) -> tuple[Path, ModelCard]:
    """A model's .keras file (default: the shipped weights) and its card, checked without loading the
    model (in a moment: a command says of them before an output in its way).

    Raises:
        InputNotFoundError: the .keras file or its card is missing.
        ConfigError: ``path`` is a folder.
        CorruptFileError: the card or the model may not be read (no permission) or the card is damaged, or a
            .keras file is not a Keras archive (a zip), or one that expands to far more than its size
            (:func:`_check_archive`).
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
    try:  # (zipfile.is_zipfile says False of a file it may not open: "truncated or not a Keras model")
        with open(path, "rb"):
            pass
    except PermissionError:
        raise CorruptFileError(unreadable_text(f"the model {path}")) from None
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise CorruptFileError(f"cannot load model {path.name}: the file is truncated or not a Keras model (not a "
                               ".keras archive); save or download it again")
    if zipfile.is_zipfile(path):
        _check_archive(path)
    return path, card


#: the most a .keras archive may expand to: a multiple of its size (Keras stores its files uncompressed)
#: or this many bytes, whichever is larger; and the most its configuration may hold
MAX_EXPANSION, MIN_EXPANDED_LIMIT, MAX_CONFIG_BYTES = 4, 64 * 1024 * 1024, 16 * 1024 * 1024


def _check_archive(path: Path) -> None:
    """Refuse a .keras archive that expands to far more than its size, or holds a huge configuration
    (a zip bomb: a 1 MB upload took 2 GB of memory before Keras refused it). Entries are measured by
    their data, not by the sizes the archive's index declares (which may lie).

    Raises:
        CorruptFileError: as said, or an archive whose entries cannot be measured (damaged, or packed
            otherwise than stored or deflated).
    """
    size = path.stat().st_size
    limit = max(MAX_EXPANSION * size, MIN_EXPANDED_LIMIT)
    expanded = config = 0
    try:
        with zipfile.ZipFile(path) as archive, path.open("rb") as raw:
            for entry in archive.infolist():
                n = _entry_size(raw, entry, limit - expanded + 1)
                expanded += n
                config += n if entry.filename.endswith(".json") else 0
                if expanded > limit or config > MAX_CONFIG_BYTES:
                    break
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as err:
        raise CorruptFileError(f"cannot load model {path.name}: its archive is damaged ({str(err)[:120]}); save or "
                               "download it again") from None
    if config > MAX_CONFIG_BYTES:
        raise CorruptFileError(f"cannot load model {path.name}: its configuration is over {MAX_CONFIG_BYTES // 2**20} "
                               "MB (a U-Net's is under 1 MB); use a model saved by core")
    if expanded > limit:
        raise CorruptFileError(f"cannot load model {path.name}: its archive expands to over {limit:,} bytes from "
                               f"{size:,} (a model's does not: Keras stores its files as they are); use a model saved "
                               "by core")


def _entry_size(raw, entry: zipfile.ZipInfo, most: int) -> int:
    """The bytes the zip ``entry`` expands to (at most ``most``, then ``most``), from its data in the
    archive's file ``raw``: a stored entry's own size, a deflated one's counted as it is inflated.

    Raises:
        ValueError: packed otherwise; zlib.error, EOFError: damaged data.
    """
    if entry.compress_type == zipfile.ZIP_STORED:
        return entry.compress_size
    if entry.compress_type != zipfile.ZIP_DEFLATED:
        raise ValueError(f"{entry.filename} is packed in a way Keras never writes")
    raw.seek(entry.header_offset)
    header = raw.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise EOFError(f"{entry.filename}: no local header")
    raw.seek(entry.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little"))
    inflate, left, n = zlib.decompressobj(-15), entry.compress_size, 0
    while left > 0 and n < most:
        chunk = raw.read(min(left, 1 << 20))
        if not chunk:
            raise EOFError(f"{entry.filename}: its data ends too soon")
        left -= len(chunk)
        data = inflate.decompress(chunk, 1 << 24)
        n += len(data)
        while inflate.unconsumed_tail and n < most:  # (a chunk of a bomb expands past one read)
            n += len(inflate.decompress(inflate.unconsumed_tail, 1 << 24))
    return min(n, most)


def load_model(path: str | os.PathLike | None = None) -> LoadedModel:
    """Load a model and its card (default: the shipped weights).

    Raises:
        InputNotFoundError: the .keras file or its card is missing.
        ConfigError: ``path`` is a folder.
        CorruptFileError: either file is truncated or not what it claims, or the model's configuration
            cannot be rebuilt.
        CardMismatchError: its card was written for another model's weights.
        ModelMismatchError: the model is not a crop segmentation model (one image in, one
            probability per pixel out) taking the card's bands, or not of the preset its card names.
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
        if isinstance(err, zipfile.BadZipFile) and "CRC" in str(err):  # (a flipped byte: a zip whose check fails)
            why = "a part of it is damaged: its checksum fails"
        raise CorruptFileError(f"cannot load model {path.name}: the file is truncated or not a Keras model "
                               f"({why}){hint}") from None
    except Exception as err:  # noqa: BLE001 - rebuilding a damaged configuration fails in any of Keras's ways
        # (an AttributeError for a number where a layer's dtype policy is named, TensorFlow's
        # ResourceExhaustedError for a layer a billion channels wide, ...): only Keras runs inside
        raise CorruptFileError(f"cannot load model {path.name}: its configuration is damaged or not one core saves "
                               f"({type(err).__name__}: {str(err)[:120]}); use a model saved by core, or save or "
                               "download it again") from None
    _check_model_shape(model, card, path.name)
    if card.weights and card.weights != weights_fingerprint(model):
        raise card_mismatch(card_path(path).name, "this model")
    _check_model_runs(model, path.name)
    return LoadedModel(model, card, path)


def _check_model_runs(model, name: str) -> None:
    """Run ``model`` once on a blank patch (its own size, else 32 x 32 px), so that a configuration that
    loads but cannot run (a layer called with a misshapen argument) is refused when loaded, not in the
    middle of a prediction or a training.

    Raises:
        CorruptFileError: the model fails on the patch.
    """
    _, h, w, bands = model.inputs[0].shape
    try:
        model(np.zeros((1, h or 32, w or 32, bands), np.float32), training=False)
    except Exception as err:  # noqa: BLE001 - only Keras runs inside: a damaged layer fails in any of its ways
        why = str(err).split("\n")[0][:120] or type(err).__name__
        raise CorruptFileError(f"cannot use model {name}: it loads but fails on an image ({why}); its configuration "
                               "is damaged or not one core saves: use a model saved by core") from None


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
    shape = _unet_shape(model)
    preset = PRESETS.get(card.preset)
    if preset is not None and shape is not None and shape != (preset.encoder[0], len(preset.encoder), preset.centre):
        # (a card of a seed model beside light weights: the Model page said "preset seed" of them)
        first, depth, centre = shape
        raise ModelMismatchError(f"{name}'s card says it is a {card.preset} U-Net ({len(preset.encoder)} levels of "
                                 f"{'-'.join(map(str, preset.encoder))} filters, {preset.centre} at the centre), but the "
                                 f"model has {depth} levels from {first} filters, {centre} at the centre; the card "
                                 "belongs to another model: use the .json that core wrote beside the .keras")


def _unet_shape(model) -> tuple[int, int, int] | None:
    """(the first convolution's filters, the poolings, the widest convolution's filters) of a U-Net as
    :func:`build_unet` makes them; None for a model without convolutions."""
    convs = [layer.filters for layer in model.layers if type(layer) is layers.Conv2D and layer.filters > 1]
    pools = sum(isinstance(layer, layers.MaxPooling2D) for layer in model.layers)
    return (convs[0], pools, max(convs)) if convs else None


