"""Frozen, validated configurations for each step of the pipeline.

Each config checks itself in ``__post_init__`` and raises :class:`~core.errors.ConfigError` with a
message naming the bad field, so an invalid combination is rejected where it is defined.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from core.errors import ConfigError
from core.bands import FEATURE_BANDS


def finite_number(value: object) -> bool:
    """Whether ``value`` is a finite int or float (not a bool, not NaN or infinite): a number read from
    a JSON file or given to a function that takes seconds, counts or statistics."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def check_pixel_size_m(value: float | None) -> float | None:
    """``value`` (the ground size of a pixel in metres, or None for unknown) as a float.

    Raises:
        ConfigError: it is not a positive finite number.
    """
    if value is None:
        return None
    try:
        size = float(value)
    except (TypeError, ValueError):
        size = math.nan
    _require(math.isfinite(size) and size > 0,
             f"the pixel size must be a positive number of metres (e.g. --pixel-size-m 10), got {value}")
    return size


@dataclass(frozen=True)
class PatchConfig:
    """How training patches are cut: size, kernel buffer (extra pixels on each side), count."""

    patch_size: int = 256
    kernel_buffer: int = 0
    count: int = 1000
    min_valid_fraction: float = 0.5
    seed: int = 0
    bands: tuple[str, ...] = FEATURE_BANDS

    def __post_init__(self) -> None:
        # (at least 32, as training takes them: 16 px patches were cut, then refused by train)
        _require(32 <= self.patch_size <= 2048, f"patch_size must be 32-2048, got {self.patch_size}")
        _require(self.patch_size % 16 == 0, f"patch_size must be a multiple of 16, got {self.patch_size}")
        _require(0 <= self.kernel_buffer <= self.patch_size, f"kernel_buffer must be 0-{self.patch_size}")
        _require(self.count >= 1, f"count must be at least 1, got {self.count}")
        _require(0.0 <= self.min_valid_fraction <= 1.0, f"min_valid_fraction must be 0-1, got {self.min_valid_fraction}")
        _require(0 <= self.seed < 2**32, f"seed must be 0-4294967295, got {self.seed}")

    @property
    def full_size(self) -> int:
        """Side of a stored patch: the patch plus its kernel buffer on both sides."""
        return self.patch_size + 2 * self.kernel_buffer


@dataclass(frozen=True)
class TrainConfig:
    """Training schedule and model choice."""

    preset: str = "light"
    epochs: int = 20
    steps_per_epoch: int = 50
    batch_size: int = 16
    learning_rate: float = 1e-3
    patch_size: int = 256
    val_patches: int = 96
    patience: int = 6
    seed: int = 0
    augment: bool = True
    #: start from this model's weights and normalization (fine-tuning) instead of random weights
    init_model: str | None = None
    #: BatchNormalization's moving-average momentum while training. PyTorch's 0.9: Keras' own 0.99
    #: still weighs the random start by a third after 100 steps (the dashboard's default run), so a
    #: short run was validated, chosen and saved with statistics far from those it trained with.
    bn_momentum: float = 0.9

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}")
        _require(self.steps_per_epoch >= 1, f"steps_per_epoch must be at least 1, got {self.steps_per_epoch}")
        _require(1 <= self.batch_size <= 512, f"batch_size must be 1-512, got {self.batch_size}")
        _require(0 < self.learning_rate < 1, f"learning_rate must be in (0, 1), got {self.learning_rate}")
        _require(self.patch_size % 16 == 0 and self.patch_size >= 32, f"patch_size must be a multiple of 16, >= 32, got {self.patch_size}")
        from core.card import PRESETS  # (here, not at the top: core.card imports this module)

        fixed = PRESETS[self.preset].input_size if self.preset in PRESETS else None
        # (in the caller's process: a dashboard training of the seed preset on 64 px patches failed in its job)
        _require(fixed in (None, self.patch_size),
                 f"the '{self.preset}' preset takes {fixed} px patches only"
                 + (" (a fine-tuning keeps the preset of the model it starts from)" if self.init_model else "")
                 + f"; use --patch-size {fixed} ('Patch size' in the dashboard) or another preset")
        _require(self.patience >= 1, f"patience must be at least 1, got {self.patience}")
        _require(self.val_patches >= 0, f"val_patches must be 0 (all) or more, got {self.val_patches}")
        _require(0 <= self.seed < 2**32, f"seed must be 0-4294967295, got {self.seed}")
        _require(0 <= self.bn_momentum < 1, f"bn_momentum must be in [0, 1), got {self.bn_momentum}")

    def to_dict(self) -> dict:
        return asdict(self)


#: The smallest region side, in pixels of the source's grid, for every source: a region is
#: predicted in its context (:data:`core.sources.base.CONTEXT_FILE`), so it need not hold a whole
#: model patch; one field will do (8 px: 80 m of Sentinel-2, 240 m of Landsat).
MIN_REGION_SIDE = 8

#: the numbers of tile views prediction can average over (see PredictConfig.views)
VIEWS = (1, 2, 4, 8)


@dataclass(frozen=True)
class PredictConfig:
    """Sliding-window prediction: tile size, overlap between tiles, batch size, threshold.

    ``None`` means "choose for the model" (see :meth:`resolve`): 512 px tiles for fully convolutional
    models (the model's own size otherwise), a quarter of the tile as overlap, and a batch that
    keeps memory like 8 tiles of 256 px (at most 256 tiles).
    """

    tile: int | None = None
    overlap: int | None = None
    batch_size: int | None = None
    threshold: float = 0.5
    #: views of each tile the model's output is averaged over (test-time augmentation): 1 = the tile
    #: as it is; 2 = also mirrored left-right; 4 = also up-down and both; 8 = also transposed. Each
    #: view is one more model call, so 4 views take about 4 times as long.
    views: int = 1

    def __post_init__(self) -> None:
        if self.tile is not None:
            _require(self.tile % 16 == 0 and 32 <= self.tile <= 2048,
                     f"tile must be a multiple of 16 from 32 to 2048, got {self.tile}")
        if self.overlap is not None:  # (with the tile chosen for the model, resolve checks it against that tile)
            if self.tile:
                _require(0 <= self.overlap <= self.tile // 2, f"overlap must be 0-{self.tile // 2}, half the "
                         f"{self.tile} px tile, got {self.overlap}")
            _require(self.overlap >= 0, f"overlap must be 0 or more, got {self.overlap}")
        if self.batch_size is not None:
            _require(1 <= self.batch_size <= 256, f"batch_size must be 1-256, got {self.batch_size}")
        _require(0.0 <= self.threshold <= 1.0, f"threshold must be a probability, 0-1 (0.5 = 50%), got {self.threshold}")
        _require(self.views in VIEWS, f"views must be one of {', '.join(map(str, VIEWS))}, got {self.views}")

    def resolve(self, fixed_size: int | None, lattice: int = 16) -> "PredictConfig":
        """Concrete values for a model with input size ``fixed_size`` (None: any size) whose
        output repeats every ``lattice`` pixels (2 ** number of poolings).

        Raises:
            ConfigError: the tile does not fit the model, or tile/overlap are off the lattice.
        """
        tile = self.tile or fixed_size or 512
        if fixed_size is not None and tile != fixed_size:
            raise ConfigError(f"this model takes {fixed_size} px tiles, not {tile}; use --tile {fixed_size}")
        overlap = self.overlap if self.overlap is not None else tile // 4 // lattice * lattice
        _require(overlap <= tile // 2, f"overlap (--overlap) must be 0-{tile // 2}, half the {tile} px tile, got {overlap}")
        for name, v in (("tile", tile), ("overlap", overlap)):
            _require(v % lattice == 0, f"{name} (--{name}) must be a multiple of {lattice} for this model (its pooling "
                     f"lattice), got {v}")
        batch = self.batch_size or min(256, max(1, 8 * 256 * 256 // (tile * tile)))  # 256: the most allowed
        return PredictConfig(tile, overlap, batch, self.threshold, self.views)

    @property
    def step(self) -> int:
        if self.tile is None or self.overlap is None:
            raise ConfigError("resolve the prediction config for a model first")
        return self.tile - self.overlap
