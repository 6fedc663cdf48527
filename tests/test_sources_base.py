"""core.sources.base: what a scene folder's scene.json says (its context, its window in the source image,
its origin) and how much of one scene another holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.sources.base import scene_context, scene_origin, shared_pixels


def _scene(folder: Path, meta) -> Path:
    """A scene folder whose scene.json holds ``meta`` (any JSON value); returns its image.tif's path."""
    folder.mkdir(parents=True)
    (folder / "scene.json").write_text(json.dumps(meta))
    return folder / "image.tif"


def _cut(folder: Path, source: str, row: int, col: int, height: int, width: int) -> Path:
    """A local scene cut from ``source`` at the window (row, col, height, width), as LocalSource.fetch says it."""
    return _scene(folder, {"title": "t", "extra": {"source": source, "row_off": row, "col_off": col, "height": height,
                                                     "width": width}})


@pytest.mark.parametrize("content", [[], "scene", 3, None])
def test_a_scene_json_that_is_not_an_object_is_no_scene(tmp_path, content):
    """A scene.json holding a list or a bare value (a damaged or foreign file): the scene is its own context and
    is named by its file, not a crash (AttributeError) of every page that shows or downloads it."""
    image = _scene(tmp_path / "s", content)
    assert scene_context(image) is None
    assert scene_origin(image) == "image.tif"
    assert shared_pixels(image, _cut(tmp_path / "o", "a.tif", 0, 0, 10, 10)) == 0.0


def test_a_context_image_that_is_gone_is_no_context(tmp_path):
    """scene.json names context.tif but the file is gone (a cleaned folder): the scene is its own context,
    rather than prediction failing to open a missing file; with the file there, it is the context."""
    image = _scene(tmp_path / "s", {"extra": {"row_off": 40, "col_off": 50,
                                              "context": {"file": "context.tif", "row_off": 32, "col_off": 10}}})
    assert scene_context(image) is None
    (tmp_path / "s" / "context.tif").write_bytes(b"II*\x00")
    ctx = scene_context(image)
    assert ctx is not None and (ctx.path, ctx.row_off, ctx.col_off, ctx.frame) == (tmp_path / "s" / "context.tif", 32, 10,
                                                                                      (8, 40))


def test_the_same_window_of_two_images_shares_no_pixel(tmp_path):
    """A model trained on rows 0-99 of one upload and scored on rows 0-99 of another was said to be scored on
    its own training pixels (the Quality page's warning), though the two images have nothing in common."""
    one = _cut(tmp_path / "a", str(tmp_path / "field_2021.tif"), 0, 0, 100, 100)
    other = _cut(tmp_path / "b", str(tmp_path / "field_2022.tif"), 0, 0, 100, 100)
    assert shared_pixels(one, other) == 0.0
    assert shared_pixels(one, _cut(tmp_path / "c", str(tmp_path / "field_2021.tif"), 0, 0, 100, 100)) == 1.0


def test_overlapping_windows_share_the_overlap_of_the_scored_scene(tmp_path):
    """The share of the *scored* scene's pixels that training saw: a quarter where two 100 px windows overlap
    by 50 x 50 px, a quarter of a 200 px scene holding the 100 px training window, and all of the 100 px scene
    inside the 200 px training window (a wrong share over- or understated how much the score flatters the model)."""
    src = str(tmp_path / "image.tif")
    a = _cut(tmp_path / "a", src, 0, 0, 100, 100)
    b = _cut(tmp_path / "b", src, 50, 50, 100, 100)
    big = _cut(tmp_path / "big", src, 0, 0, 200, 200)
    assert shared_pixels(a, b) == shared_pixels(b, a) == 0.25
    assert shared_pixels(a, big) == 0.25  # trained on a, scored on big
    assert shared_pixels(big, a) == 1.0  # trained on big, scored on a
    tall = _cut(tmp_path / "tall", src, 0, 0, 300, 50)  # rows 0-299 over rows 50-149: the rows of b only
    assert shared_pixels(tall, b) == 0.0 and shared_pixels(_cut(tmp_path / "t2", src, 0, 60, 300, 50), b) == 0.5
    apart = _cut(tmp_path / "apart", src, 500, 500, 100, 100)
    assert shared_pixels(a, apart) == shared_pixels(apart, a) == 0.0
