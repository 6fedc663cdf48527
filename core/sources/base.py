"""The interface every data source implements.

A source turns a region into a local *scene*: an image GeoTIFF (bands R, G, B, NIR with
descriptions) and, where it has labels, a label GeoTIFF on the same grid plus the name of the
class map that reads it, and, where the labels come from a land-cover product, the product's
class codes (:data:`CODES_FILE`). From a scene on, the local pipeline (patches, training, prediction,
metrics) is the same whatever the source was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

#: ``progress(done, total, message)``; sources call it while they work.
Progress = Callable[[int, int, str], None]

#: The scene file with the label product's own class codes (int16, -1 = no data), for tables of
#: classes and of errors by class; named in ``Scene.extra["codes"]`` with ``extra["class_map"]``.
CODES_FILE = "codes.tif"

#: The scene file with the image around the region, for prediction: the region's window grown by a
#: margin (within the image) and without the region's outline masked, so that the model sees a
#: field's surroundings as it does in the whole image, however tightly the region is drawn. Named
#: in ``Scene.extra["context"]`` (``{"file", "row_off", "col_off"}``: where the scene's first pixel
#: lies in it); a scene without one is its own context.
CONTEXT_FILE = "context.tif"
#: Pixels of image around a region's window that prediction sees (:data:`CONTEXT_FILE`).
CONTEXT_MARGIN = 32
#: The context image of a small region is at least this many pixels a side (where the image allows):
#: the model then sees around a field as much as one training patch holds, as in the whole image.
CONTEXT_LEAST = 256


@dataclass(frozen=True)
class SceneContext:
    """Where a scene's context image is, where the scene lies in it, and where it lies in the
    source image (``frame``: its first pixel's row and column there, for the model's tile grid)."""

    path: Path
    row_off: int
    col_off: int
    frame: tuple[int, int] = (0, 0)


#: the file name of a scene's image in its folder (local and Earth Engine scenes)
SCENE_IMAGE = "image.tif"


def _scene_json(scene_image: str | Path) -> tuple[dict, dict] | None:
    """(the ``scene.json`` beside ``scene_image``, its ``extra``: a local scene's Scene holds one, an Earth
    Engine scene's file is its extra), or None where there is none or it cannot be read."""
    import json

    try:
        meta = json.loads((Path(scene_image).parent / "scene.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    extra = meta.get("extra", meta)
    return (meta, extra) if isinstance(extra, dict) else None


def scene_context(scene_image: str | Path) -> SceneContext | None:
    """The context of the scene whose ``image.tif`` is ``scene_image`` (from the ``scene.json``
    beside it), or None: no scene folder, a scene that is its own context, or another file of the
    folder (e.g. the scene resampled beside it, or the context itself)."""
    if Path(scene_image).name != SCENE_IMAGE:  # (its pixels are not the scene's: read at the scene's place)
        return None
    folder = Path(scene_image).parent
    if (meta := _scene_json(scene_image)) is None:
        return None
    extra = meta[1]
    try:
        ctx = extra["context"]
        r, c = int(ctx["row_off"]), int(ctx["col_off"])
        frame = (int(extra.get("row_off", r)) - r, int(extra.get("col_off", c)) - c)
        found = SceneContext(folder / ctx["file"], r, c, frame)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if found.path.is_file() else None


def scene_window(scene_image: str | Path) -> tuple[str, int, int, int, int] | None:
    """(the source image, row, col, height, width) of a local scene cut from it (its ``scene.json``),
    or None (no scene folder, or a scene of another kind)."""
    if (found := _scene_json(scene_image)) is None:
        return None
    extra = found[1]
    source = extra.get("source")
    if not isinstance(source, str) or not source.lower().endswith((".tif", ".tiff", ".json")):
        return None
    try:
        return (str(Path(source).resolve()), int(extra["row_off"]), int(extra["col_off"]), int(extra["height"]),
                int(extra["width"]))
    except (KeyError, TypeError, ValueError):
        return None


def scene_origin(scene_image: str | Path) -> str:
    """What the scene whose ``image.tif`` is ``scene_image`` was cut from, in words for a file's tags:
    the source image's file name and the scene's rows and columns in it (a local scene,
    :func:`scene_window`), or the scene's title (an Earth Engine composite); the file's own name where
    no ``scene.json`` says."""
    if (window := scene_window(scene_image)) is not None:
        source, r, c, h, w = window
        return f"{Path(source).name} (rows {r}-{r + h - 1}, columns {c}-{c + w - 1})"
    meta, extra = _scene_json(scene_image) or ({}, {})
    title = meta.get("title") or extra.get("title")
    return title if isinstance(title, str) and title else Path(scene_image).name


def shared_pixels(one: str | Path, other: str | Path) -> float:
    """The share (0-1) of scene ``other``'s pixels that scene ``one`` holds too: 1 for the same file,
    the overlap of their windows for two regions cut from one image (:func:`scene_window`), else 0.
    (A model trained on ``one`` is scored on training pixels over that share of ``other``.)"""
    if Path(one).resolve() == Path(other).resolve():
        return 1.0
    a, b = scene_window(one), scene_window(other)
    if a is None or b is None or a[0] != b[0] or not b[3] or not b[4]:
        return 0.0
    rows = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    cols = min(a[2] + a[4], b[2] + b[4]) - max(a[2], b[2])
    return max(rows, 0) * max(cols, 0) / (b[3] * b[4])


def scene_surroundings(scene_image: str | Path, step: int = 1):
    """The context image's features and validity (as :meth:`core.raster.ImageReader.read` gives
    them) at the pixels of the scene whose ``image.tif`` is ``scene_image``: what lies there outside
    the region's outline, which the scene leaves without data. None for a scene that is its own
    context (nothing of the image around it is kept). With ``step``, every step-th row and column
    from the first (``[::step, ::step]``), read a strip of rows at a time (the map PNG of a 3,900 px
    region read 0.5 GB of it at full size to keep 1 pixel in 16).

    Raises:
        InputNotFoundError, CorruptFileError, InvalidDataError: a missing or damaged scene or context image.
    """
    import numpy as np
    from rasterio.windows import Window

    from core.raster import OVERVIEW_STRIP_PIXELS, ImageReader

    ctx = scene_context(scene_image)
    if ctx is None:
        return None
    with ImageReader(scene_image) as scene:
        height, width = scene.grid.height, scene.grid.width
    with ImageReader(ctx.path) as reader:
        if step == 1:
            return reader.read(Window(ctx.col_off, ctx.row_off, width, height))
        rows = step * max(1, OVERVIEW_STRIP_PIXELS // (width * step))  # (a whole number of steps: the rows kept stay in step)
        feats, valid = [], []
        for r in range(0, height, rows):
            f, v = reader.read(Window(ctx.col_off, ctx.row_off + r, width, min(rows, height - r)))
            feats.append(f[::step, ::step].copy())  # (a copy: the strip's memory is let go)
            valid.append(v[::step, ::step].copy())
    return np.concatenate(feats), np.concatenate(valid)


@dataclass(frozen=True)
class Scene:
    """A region materialised on disk: image, optional labels, and what they are."""

    image_path: Path
    labels_path: Path | None
    label_map: str | None
    georeferenced: bool
    title: str
    attribution: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict:
        """The scene as JSON values (paths as text), as a session keeps it; :meth:`from_dict` reads it back."""
        return {"image_path": str(self.image_path), "labels_path": str(self.labels_path) if self.labels_path else None,
                "label_map": self.label_map, "georeferenced": self.georeferenced, "title": self.title,
                "attribution": self.attribution, "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        """The scene of :meth:`to_dict`'s values (``d`` checked for its shape by its keeper).

        Raises:
            KeyError: ``d`` has no ``image_path``.
        """
        return cls(Path(d["image_path"]), Path(d["labels_path"]) if d.get("labels_path") else None, d.get("label_map"),
                   bool(d.get("georeferenced")), d.get("title", ""), d.get("attribution", ""), dict(d.get("extra") or {}))


def scene_files(meta: dict) -> list[str]:
    """The files of a scene folder its scene.json (``meta``) names: the image, and the labels, class codes
    and context where it has them."""
    extra = meta.get("extra") or {}
    codes, context = extra.get("codes"), (extra.get("context") or {}).get("file")
    return [SCENE_IMAGE, *(["labels.tif"] if meta.get("labels") else []), *([codes] if codes else []),
            *([context] if context else [])]


def scene_record(scene: Scene, folder: Path) -> dict:
    """What a scene folder's scene.json holds of ``scene`` (its files in ``folder``, of the sizes they
    have there): :func:`complete_scene` reads it back."""
    meta = {"title": scene.title, "attribution": scene.attribution, "georeferenced": scene.georeferenced,
            "labels": scene.labels_path is not None, "label_map": scene.label_map, "extra": dict(scene.extra)}
    meta["sizes"] = {name: (Path(folder) / name).stat().st_size for name in scene_files(meta)}
    return meta


def complete_scene(out_dir: Path) -> dict | None:
    """The scene.json of a scene folder whose files are all there (image, and labels and class codes
    where it says it has them), each of the size it was written with, else None: a folder that lost a
    file, whose file was cut short or emptied (a crash of the machine after its rename), or whose
    scene.json cannot be read, is written again rather than reused (a damaged copy failed every page
    with "copy or download it again", of a file the user never gave)."""
    import json

    try:
        meta = json.loads((Path(out_dir) / "scene.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("extra", {}), dict):
        return None
    sizes = meta.get("sizes") if isinstance(meta.get("sizes"), dict) else {}  # (none in a folder of an older version)
    for name in scene_files(meta):
        path = Path(out_dir) / name
        if not path.is_file() or (name in sizes and path.stat().st_size != sizes[name]):
            return None
    return meta


def scene_from_meta(out_dir: Path, meta: dict) -> Scene:
    """The :class:`Scene` of a complete scene folder (``meta``: its scene.json, :func:`complete_scene`)."""
    out_dir = Path(out_dir)
    return Scene(
        image_path=out_dir / SCENE_IMAGE,
        labels_path=(out_dir / "labels.tif") if meta.get("labels") else None,
        label_map=meta.get("label_map"),
        georeferenced=bool(meta.get("georeferenced")),
        title=meta.get("title", ""),
        attribution=meta.get("attribution", ""),
        extra=dict(meta.get("extra") or {}),
    )


@dataclass(frozen=True)
class RegionCheck:
    """Whether a region can be used with a source, and why not."""

    ok: bool
    message: str
    area_ha: float | None = None
    pixels: int | None = None
    #: part of the region lies outside the data (only the part inside is used)
    clipped: bool = False
    #: something to know about a usable region (e.g. that most of it has no data); "" when nothing
    warning: str = ""
    #: the share of the region's pixels with image data (from a sample of them), where the source knows it
    data_share: float | None = None
    #: too large to fetch, but a batch export (Earth Engine's) can take it: a region to keep for that
    batch_only: bool = False


@runtime_checkable
class Source(Protocol):
    """A place imagery and labels come from."""

    name: str

    def available(self) -> tuple[bool, str]:
        """(usable now, one line that says why or why not)."""
        ...

    def check_region(self, region) -> RegionCheck:
        """Validate a region (``core.region.Region``) against the data and the source's limits."""
        ...

    def fetch(self, region, out_dir: Path, progress: Progress | None = None) -> Scene:
        """Write the region's image (and labels) under ``out_dir``; raises CropMapError subclasses."""
        ...


def context_margin(height: int, width: int) -> int:
    """Pixels of context on each side of a region's grid of ``height`` x ``width`` where the source
    has image all around it (Earth Engine): :data:`CONTEXT_MARGIN`, or more for a small region, so
    that its context is at least :data:`CONTEXT_LEAST` pixels a side."""
    return max(CONTEXT_MARGIN, -(-(CONTEXT_LEAST - min(height, width)) // 2))
