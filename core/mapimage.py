"""The map view PNG, rendered server-side from RGBA layers with PIL: the image with its legend,
title, figures, data credit, scale bar and the names of a region's parts (a handout that keeps what the
web map shows). Nothing is shown here; everything returns bytes or arrays."""

from __future__ import annotations

import functools
import importlib.util
import io
import math
import re
from dataclasses import replace
from typing import Sequence

import numpy as np

from core.errors import InvalidDataError
from core.overlays import MAX_SIDE, Legend

#: The map view PNG enlarges smaller rasters (whole pixel factors, no smoothing) to at least this side
#: (a slide's width: a 500 px region at one pixel each was small there).
MIN_SIDE = 1000
#: The map PNG's typeface: DejaVu Sans (proportional figures, a full word space, the em dash and
#: "≥"). PIL's own ``load_default`` font (Aileron) has a 3 px space, so "901,109 valid" read as
#: "901,109valid", and no "—" or "≥" (they came out as boxes).
FONT_FILE = "DejaVuSans.ttf"
#: Characters of the PNG's texts that fonts may lack, and what stands for them there (PIL's own font)
_ASCII = {"—": "--", "≥": ">=", "≤": "<="}


@functools.lru_cache(maxsize=1)
def font_path() -> str | None:
    """The file of the map PNG's typeface (:data:`FONT_FILE`): matplotlib's copy (matplotlib is
    pinned in requirements.txt; found, not imported), else where PIL finds it among
    the system's fonts; None where there is none (the PNG then falls back to PIL's own font)."""
    from PIL import ImageFont

    try:
        spec = importlib.util.find_spec("matplotlib")
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = f"{root}/mpl-data/fonts/ttf/{FONT_FILE}"
        try:
            return ImageFont.truetype(path, 10).path
        except OSError:
            continue
    try:
        return ImageFont.truetype(FONT_FILE, 10).path  # PIL searches the system's font folders
    except OSError:
        return None


def map_font(size: int):
    """The map PNG's font at ``size`` px: :data:`FONT_FILE`, or PIL's default font where that is
    not found or cannot be read (never an error). A new object each call: PNGs are made in the
    server's threads."""
    from PIL import ImageFont

    path = font_path()
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError):  # PIL without FreeType: the bitmap font, one size
        return ImageFont.load_default()


def has_glyphs(font, text: str) -> bool:
    """Whether ``font`` draws every character of ``text`` as itself, not as the missing-glyph box
    (a character no font has, U+FFFF, shows that box)."""
    try:
        missing = font.getmask("\uffff")
        box = (missing.size, bytes(missing))
        for ch in text:
            mask = font.getmask(ch)
            if mask.getbbox() is None or (mask.size, bytes(mask)) == box:
                return False
    except (UnicodeError, ValueError, OSError):  # PIL's bitmap font: Latin-1 only
        return False
    return True


def typeset(text: str, font) -> str:
    """``text`` as ``font`` can draw it: the em dash, "≥" and "≤" as ASCII where it lacks them (no boxes)."""
    if any(char in text for char in _ASCII) and not has_glyphs(font, "".join(_ASCII)):
        text = text.translate(str.maketrans({char: ascii_ for char, ascii_ in _ASCII.items()}))
    return text


def compose_png(
    layers: Sequence[np.ndarray],
    legends: Sequence[Legend] = (),
    title: str = "",
    max_side: int = MAX_SIDE,
    credit: str = "",
    min_side: int = MIN_SIDE,
    subtitle: str = "",
    legend_opacities: Sequence[float] | None = None,
    metres_per_px: float | None = None,
    labels: Sequence[tuple[str, float, float]] = (),
) -> bytes:
    """Alpha-composite RGBA layers (same shape, bottom first) into one PNG with a title, a
    subtitle (e.g. the figures), legend strip and data credit (the text wrapped to the width)
    under the image: the "map view" download, rendered from arrays with PIL. Images wider than
    ``max_side`` (or taller than twice that) are reduced; images narrower than ``min_side`` are
    enlarged by a whole factor (each pixel a visible square), as far as twice ``max_side`` in height. ``legend_opacities`` (one per legend): their layers' opacities, at which the
    swatches are drawn over white, as the colours look on the map. ``metres_per_px`` (the ground
    size of the layers' pixels): a scale bar in the image's lower left corner. ``labels``: (text, row,
    col) in the layers' pixels, written centred there over a white halo (the names of a region's
    parts). The text is set in :func:`map_font` (see :func:`typeset`).

    Raises:
        InvalidDataError: if there is no layer or the layers differ in shape.
    """
    from PIL import Image, ImageDraw

    if not layers:
        raise InvalidDataError("nothing to render: no layer")
    shape = layers[0].shape[:2]
    if any(layer.shape[:2] != shape for layer in layers):
        raise InvalidDataError("map layers differ in shape")
    base = Image.new("RGBA", (shape[1], shape[0]), (255, 255, 255, 255))
    for layer in layers:
        base = Image.alpha_composite(base, Image.fromarray(np.ascontiguousarray(layer, dtype=np.uint8)))
    h, w = shape
    tallest = 2 * max_side  # (a portrait region: as tall as two slides' widths at most)
    if w > max_side or h > tallest:
        f = min(max_side / w, tallest / h)
        base = base.resize((max(1, int(w * f)), max(1, int(h * f))), Image.NEAREST)
    elif w < min_side:  # a slide's width: the smallest whole factor that reaches it (each pixel a visible square)
        k = max(1, min(-(-min_side // w), tallest // h))
        base = base.resize((w * k, h * k), Image.NEAREST)
    width = max(base.width, 360)
    # text and swatches grow with the image (13 px text on a 1000 px map is hard to read on a projector)
    u = max(1.0, width / 700)
    font, small = map_font(round(13 * u)), map_font(round(11 * u))
    title, credit, subtitle = typeset(title, font), typeset(credit, small), typeset(subtitle, small)
    rows = [replace(legend, title=typeset(legend.title, font), low=typeset(legend.low, font), high=typeset(legend.high, font),
                    items=tuple((typeset(label, font), colour) for label, colour in legend.items))
            for legend in legends]
    line, small_line, sw = round(18 * u), round(14 * u), round(10 * u)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    title_lines = _balanced(title, lambda text: measure.textlength(text, font=font), width - 8) if title else []
    credit_lines = _wrap(credit, lambda text: measure.textlength(text, font=small), width - 8) if credit else []
    sub_lines = _wrap(subtitle, lambda text: measure.textlength(text, font=small), width - 8) if subtitle else []
    strip_h = line * (len(rows) + len(title_lines)) + small_line * (len(credit_lines) + len(sub_lines)) + 8
    canvas = Image.new("RGBA", (width, base.height + strip_h), (255, 255, 255, 255))
    canvas.paste(base, (0, 0))
    draw = ImageDraw.Draw(canvas)
    if metres_per_px:
        _scale_bar(draw, base.height, metres_per_px * shape[1] / base.width, base.width, small, u)
    for text, row, col in labels:
        at = ((col + 0.5) * base.width / shape[1], (row + 0.5) * base.height / shape[0])
        draw.text(at, typeset(text, font), fill=(0, 0, 0, 255), font=font, anchor="mm", stroke_width=max(2, round(2 * u)),
                  stroke_fill=(255, 255, 255, 255))
    y = base.height + 4
    for text in title_lines:
        draw.text((4, y), text, fill=(0, 0, 0, 255), font=font)
        y += line
    for text in sub_lines:
        draw.text((4, y), text, fill=(40, 40, 40, 255), font=small)
        y += small_line
    fades = list(legend_opacities) if legend_opacities is not None else [1.0] * len(rows)
    for legend, fade in zip(rows, fades):
        x = 4
        draw.text((x, y), legend.title + ":", fill=(0, 0, 0, 255), font=font)
        x += 8 + int(draw.textlength(legend.title + ":", font=font))
        top = y + (line - sw) // 2 - 1
        for label, colour in legend.items:
            draw.rectangle([x, top, x + sw, top + sw], fill=_over_white(colour, fade), outline=(80, 80, 80))
            draw.text((x + sw + round(6 * u), y), label, fill=(0, 0, 0, 255), font=font)  # (a space from its swatch)
            x += sw + round(6 * u) + 10 + int(draw.textlength(label, font=font))
        if legend.gradient:
            draw.text((x, y), legend.low, fill=(0, 0, 0, 255), font=font)
            x += 6 + int(draw.textlength(legend.low, font=font))
            n = len(legend.gradient)
            for i, colour in enumerate(legend.gradient):
                draw.rectangle([x + i * 2 * sw, top, x + (i + 1) * 2 * sw, top + sw], fill=_over_white(colour, fade))
            x += n * 2 * sw + 6
            draw.text((x, y), legend.high, fill=(0, 0, 0, 255), font=font)
        y += line
    for text in credit_lines:
        draw.text((4, y), text, fill=(90, 90, 90, 255), font=small)
        y += small_line
    buf = io.BytesIO()
    canvas.convert("RGB").save(buf, format="PNG", compress_level=3)  # made on every threshold change: 0.07 s less, 5% larger
    return buf.getvalue()


def part_outlines(parts: Sequence[tuple[str, tuple[int, int], np.ndarray]], shape: tuple[int, int],
                  step: int = 1) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The outlines of a region's parts as one RGBA layer of ``shape`` (an image's grid taken every
    ``step`` pixels, as :func:`core.downloads.threshold_downloads` colours it): each part's edge pixels white on a dark
    casing, as the web map draws a region's outline; and where to write their names, (name, row, col)
    at the part's pixel nearest its centre of mass (inside it, also for an L-shaped field). ``parts``:
    (name, (row, col) of its window on the image's grid, the window's pixels inside it), as
    :func:`core.zones.zone_pixels` gives them (a file of thousands of fields makes no image-sized mask
    per field); a part with no pixel on the layer is left out."""
    edge, casing = np.zeros(shape, bool), np.zeros(shape, bool)
    names = []
    for name, (r0, c0), inside in parts:
        i0, j0 = -r0 % step, -c0 % step  # the window's first rows and columns on the layer
        taken = inside[i0::step, j0::step]
        if not taken.any():
            continue
        top, left = (r0 + i0) // step, (c0 + j0) // step
        padded = np.pad(taken, 2)  # (a margin for the casing)
        interior = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        border = padded[1:-1, 1:-1] & ~interior
        grown = np.pad(border, 1)
        grown = grown[1:-1, 1:-1] | grown[:-2, 1:-1] | grown[2:, 1:-1] | grown[1:-1, :-2] | grown[1:-1, 2:]
        _or_into(edge, border, top - 1, left - 1)
        _or_into(casing, grown, top - 1, left - 1)
        rows, cols = np.nonzero(taken)
        nearest = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
        names.append((name, float(top + rows[nearest]), float(left + cols[nearest])))
    rgba = np.zeros(shape + (4,), np.uint8)
    rgba[casing] = (32, 32, 32, 200)
    rgba[edge] = (255, 255, 255, 255)
    return rgba, names


def _or_into(target: np.ndarray, patch: np.ndarray, row: int, col: int) -> None:
    """``target |= patch`` placed with its top-left corner at (row, col), the part outside ``target`` left out."""
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + patch.shape[0], target.shape[0]), min(col + patch.shape[1], target.shape[1])
    if r1 > r0 and c1 > c0:
        target[r0:r1, c0:c1] |= patch[r0 - row:r1 - row, c0 - col:c1 - col]


def scale_length(metres_per_px: float, most_px: float) -> float:
    """The longest round ground length (1, 2 or 5 times a power of ten, in metres) that spans at most
    ``most_px`` pixels of ``metres_per_px``: a scale bar's."""
    most = metres_per_px * most_px
    power = 10.0 ** math.floor(math.log10(most))
    return max(k * power for k in (1, 2, 5) if k * power <= most)


def _scale_bar(draw, image_height: int, metres_per_px: float, image_width: int, font, u: float) -> None:
    """A scale bar (a fifth of the image's width at most, round length) on a white box in the image's
    lower left corner."""
    metres = scale_length(metres_per_px, image_width / 5)
    bar = metres / metres_per_px
    text = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"
    pad, tall = round(4 * u), round(5 * u)
    label_w = draw.textlength(text, font=font)
    x0, y1 = pad, image_height - pad
    box_h = round(14 * u) + tall + 2 * pad
    draw.rectangle([x0, y1 - box_h, x0 + 2 * pad + max(bar, label_w), y1], fill=(255, 255, 255, 220))
    bx, by = x0 + pad, y1 - pad
    draw.rectangle([bx, by - tall, bx + bar, by], fill=(255, 255, 255, 255), outline=(0, 0, 0, 255))
    draw.rectangle([bx, by - tall, bx + bar / 2, by], fill=(0, 0, 0, 255))
    draw.text((bx, y1 - box_h + pad // 2), text, fill=(0, 0, 0, 255), font=font)


def _over_white(colour: str, opacity: float) -> tuple[int, int, int]:
    """A hex colour (or "transparent": an empty swatch) at ``opacity`` over white, as RGB."""
    if colour == "transparent":
        return (255, 255, 255)
    rgb = [int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)]
    return tuple(round(255 + (c - 255) * opacity) for c in rgb)


def _balanced(text: str, length, width: float) -> list[str]:
    """:func:`_wrap` into as few lines, as even as can be: the narrowest width that needs no more lines
    (a title wrapped greedily left "— crop at p ≥ 0.70" alone under a full line)."""
    lines = _wrap(text, length, width)
    if len(lines) < 2:
        return lines
    lo, hi = width / len(lines), width  # (hi wraps into as few lines; lo is too narrow for them)
    while hi - lo > 1:
        mid = (lo + hi) / 2
        if len(_wrap(text, length, mid)) <= len(lines):
            hi = mid
        else:
            lo = mid
    return _wrap(text, length, hi)


def _wrap(text: str, length, width: float) -> list[str]:
    """Greedy word wrap of ``text`` into lines no longer than ``width`` (as measured by ``length``);
    a comparison stays whole ("p >= 0.50", "p ≥ 0.50" is not broken at its spaces), and words joined
    by no-break spaces (U+00A0) stay on one line."""
    signs = (">=", "<=", ">", "<", "=", "≥", "≤")
    words: list[str] = []
    glue = False
    for token in re.split(r"[ \t\n]+", text.strip()):
        if words and (glue or token in signs):
            words[-1] += " " + token
        else:
            words.append(token)
        glue = token in signs
    words = [word.replace("\u00a0", " ") for word in words]  # (drawn as plain spaces: fonts lack it)
    lines: list[str] = []
    for word in words:
        if lines and length(lines[-1] + " " + word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines
