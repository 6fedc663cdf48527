"""core.mapimage: the map view PNG's composition, text (font, wrapping) and legend swatches."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core import mapimage as mi, overlays as ov
from core.errors import InvalidDataError


def test_compose_png():
    base = np.zeros((50, 60, 4), np.uint8)
    base[..., 3] = 255
    top = ov.crop_colour(np.full((50, 60), 0.9, np.float32), 0.5)
    png = mi.compose_png([base, ov.with_opacity(top, 0.5)], [ov.class_legend("Crop", ["crop"])], "title")
    img = Image.open(io.BytesIO(png))
    # a small raster is enlarged by the smallest whole factor that reaches 1000 px (a slide's width): 17x (16x gave 960)
    assert img.size[0] == 1020 and img.size[1] > 850
    assert np.asarray(img)[:850].reshape(50, 17, 60, 17, 3).std(axis=(1, 3)).max() == 0
    mid = np.zeros((370, 390, 4), np.uint8)
    mid[..., 3] = 255
    assert Image.open(io.BytesIO(mi.compose_png([mid], [], "title"))).size[0] == 1170  # 3x (it stayed 390)
    big = np.zeros((370, 1100, 4), np.uint8)
    big[..., 3] = 255
    assert Image.open(io.BytesIO(mi.compose_png([big], [], "title"))).size[0] == ov.MAX_SIDE  # reduced
    # a portrait region at least 1,000 px wide too (it was enlarged on its height: 986 px wide for 493 x 621)
    tall = np.zeros((621, 493, 4), np.uint8)
    tall[..., 3] = 255
    assert Image.open(io.BytesIO(mi.compose_png([tall], [], "title"))).size[0] == 3 * 493
    very_tall = np.zeros((1900, 300, 4), np.uint8)  # as tall as two slides' widths at most
    very_tall[..., 3] = 255
    assert Image.open(io.BytesIO(mi.compose_png([very_tall], [], "title"))).size[1] < 2 * ov.MAX_SIDE + 400
    with pytest.raises(InvalidDataError):
        mi.compose_png([])
    # a long data credit wraps under the legend: more lines, never wider than the canvas
    credit = "Data: " + "; ".join(["Landsat 8 OLI (USGS)", "USDA NASS Cropland Data Layer 2015 (public domain)"] * 3)
    with_credit = Image.open(io.BytesIO(mi.compose_png([base], [], "title", credit=credit, min_side=1)))
    plain = Image.open(io.BytesIO(mi.compose_png([base], [], "title", min_side=1)))
    assert with_credit.size[0] == plain.size[0] == 360 and with_credit.size[1] >= plain.size[1] + 3 * 14
    # so does a long title (it was cut at the image's edge)
    long_title = Image.open(io.BytesIO(mi.compose_png([base], [], "title " * 40, min_side=1)))
    assert long_title.size[0] == 360 and long_title.size[1] >= plain.size[1] + 2 * 18
    assert mi._wrap("a bb ccc", len, 4) == ["a bb", "ccc"]
    assert mi._wrap("crop at p >= 0.50", len, 12) == ["crop at", "p >= 0.50"]  # a threshold is not broken apart
    assert mi._wrap("crop at p ≥ 0.50", len, 12) == ["crop at", "p ≥ 0.50"]
    # words joined by no-break spaces stay on one line (the PNG title's "— crop at p ≥ 0.70" was cut after "at")
    assert mi._wrap("Scene —\u00a0crop\u00a0at\u00a0p ≥ 0.50", len, 20) == ["Scene", "— crop at p ≥ 0.50"]
    # a title wraps into as few lines, as even as can be: greedily, its threshold was left alone under a full line
    title = "Sample scene: Landsat 8, 2015-09-02, northern Great Plains, USA (not georeferenced) —\u00a0crop\u00a0at\u00a0p ≥ 0.70"
    assert mi._wrap(title, len, 90)[1] == "— crop at p ≥ 0.70"
    even = mi._balanced(title, len, 90)
    assert len(even) == 2 and max(map(len, even)) <= 90 and abs(len(even[0]) - len(even[1])) < 15, even
    assert mi._balanced("a bb ccc", len, 40) == ["a bb ccc"]  # one line: as it is
    # on a large map the text grows with it, to stay readable when projected
    big = np.zeros((1000, 1000, 4), np.uint8)
    big[..., 3] = 255
    small_strip = Image.open(io.BytesIO(mi.compose_png([base], [ov.class_legend("Crop", ["crop"])], "title",
                                                      min_side=1))).size[1] - 50
    big_strip = Image.open(io.BytesIO(mi.compose_png([big], [ov.class_legend("Crop", ["crop"])], "title"))).size[1] - 1000
    assert big_strip >= 1.3 * small_strip


def test_the_map_png_draws_legend_swatches_at_their_layers_opacity():
    """The map view PNG's layers are faded (0.8 crop, 0.7 probability by default): full-strength
    swatches under it did not look like the map's colours."""
    base = np.zeros((64, 64, 4), np.uint8)
    base[..., 3] = 255
    legends = [ov.class_legend("Crop", ["predicted crop"]), ov.gradient_legend("P", "probability", "0", "1")]
    full = np.asarray(Image.open(io.BytesIO(mi.compose_png([base], legends, "t", min_side=1))).convert("RGB")).astype(int)
    faded = np.asarray(Image.open(io.BytesIO(mi.compose_png([base], legends, "t", min_side=1,
                                                             legend_opacities=[0.5, 0.5]))).convert("RGB")).astype(int)
    assert full.shape == faded.shape
    diff = (full != faded).any(axis=-1)
    assert diff.any() and not diff[:64].any()  # only the legend's swatches change, not the map
    assert (faded[diff] >= full[diff]).all()  # lighter: over white
    crop = np.array([int(ov.hex_colour(ov.CLASS_COLOURS["predicted crop"])[i : i + 2], 16) for i in (1, 3, 5)])
    swatch = (np.abs(full - crop).sum(axis=-1) == 0)
    assert swatch.sum() > 20 and np.abs(faded[swatch] - (255 + (crop - 255) * 0.5)).max() <= 1


def test_the_map_png_text_is_set_in_a_truetype_font_with_its_characters(monkeypatch):
    """The handout's text is DejaVu Sans, not PIL's default font (Aileron), whose 3 px word space ran
    "901,109 valid" together (and "433,431" read as "433, 431") and which has no "—" or "≥"."""
    from PIL import ImageFont

    assert mi.font_path() is not None  # installed with the requirements (matplotlib ships it)
    font = mi.map_font(19)
    assert isinstance(font, ImageFont.FreeTypeFont) and font.getname()[0] == "DejaVu Sans"
    assert mi.has_glyphs(font, "—≥≤0123456789,") and not mi.has_glyphs(font, "\u4e00")  # (no CJK in DejaVu Sans)
    # a word space is a clear gap (a third of an em), so "901,109 valid" and "433,431" keep their shapes
    for spaced, tight in (("901,109 valid", "901,109valid"), ("433, 431", "433,431")):
        assert font.getlength(spaced) - font.getlength(tight) >= 0.3 * font.size
    assert mi.typeset("Scene — crop at p ≥ 0.70, x ≤ 1", font) == "Scene — crop at p ≥ 0.70, x ≤ 1"

    base = np.zeros((64, 64, 4), np.uint8)
    base[..., 3] = 255

    def png(title, legend="Crop (p ≥ 0.70)"):
        return mi.compose_png([base], [ov.class_legend(legend, ["predicted crop"])], title, min_side=1)

    drawn = png("Scene — crop at p ≥ 0.70")
    assert png("Scene \uffff crop at p \uffff 0.70") != drawn  # the characters are not the missing-glyph box
    assert png("Scene crop at p 0.70") != drawn


def test_the_map_png_falls_back_to_pils_font_without_boxes(monkeypatch):
    """Without the TrueType file (or with an unreadable one) the PNG is still made, in PIL's own
    font, and a character that font lacks is written in ASCII rather than drawn as a box."""
    monkeypatch.setattr(mi, "font_path", lambda: "/nonexistent/no-such-font.ttf")
    fallback = mi.map_font(19)
    assert fallback.getname()[0] != "DejaVu Sans"
    text = mi.typeset("Scene — crop at p ≥ 0.70", fallback)
    assert text == "Scene -- crop at p >= 0.70" and mi.has_glyphs(fallback, "".join(text.split()))
    base = np.zeros((64, 64, 4), np.uint8)
    base[..., 3] = 255
    made = Image.open(io.BytesIO(mi.compose_png([base], [ov.class_legend("Crop (p ≥ 0.70)", ["predicted crop"])],
                                                "Scene — crop at p ≥ 0.70", min_side=1)))
    assert made.size[0] == 360
    monkeypatch.setattr(mi, "font_path", lambda: None)
    assert mi.map_font(11) is not None


def _drawn_text(monkeypatch):
    """Spy on the text the map PNG writes: a list of (xy, text) filled as PIL draws it."""
    from PIL import ImageDraw

    drawn, draw_text = [], ImageDraw.ImageDraw.text

    def text(self, xy, text, *args, **kwargs):
        drawn.append((tuple(xy), text))
        return draw_text(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    return drawn


def test_the_scale_bar_is_of_the_pixels_as_drawn_and_says_km_from_1000_m(monkeypatch):
    """A 60 px wide raster of 30 m pixels (1.8 km) is drawn 17 times larger: a fifth of the PNG's width is
    360 m of ground, so a 200 m bar (not one of the raster's own pixels: "5 km" across a 1.8 km image)."""
    drawn = _drawn_text(monkeypatch)
    base = np.zeros((50, 60, 4), np.uint8)
    base[..., 3] = 255
    mi.compose_png([base], [], "t", metres_per_px=30.0)
    assert "200 m" in [text for _, text in drawn] and "5 km" not in [text for _, text in drawn]
    drawn.clear()
    wide = np.zeros((100, 1000, 4), np.uint8)
    wide[..., 3] = 255
    mi.compose_png([wide], [], "t", metres_per_px=5.0)  # a fifth of 1000 px at 5 m: exactly 1,000 m
    assert "1 km" in [text for _, text in drawn] and "1000 m" not in [text for _, text in drawn]


def test_the_names_of_a_regions_parts_are_written_at_their_pixels_centres(monkeypatch):
    drawn = _drawn_text(monkeypatch)
    base = np.zeros((50, 60, 4), np.uint8)
    base[..., 3] = 255
    mi.compose_png([base], [], "t", labels=[("North", 10.0, 40.0)])  # enlarged 17 times
    (at,) = [xy for xy, text in drawn if text == "North"]
    assert at == pytest.approx(((40 + 0.5) * 17, (10 + 0.5) * 17))


def test_an_empty_legend_swatch_is_white_at_any_opacity():
    """ "not labelled" (a transparent swatch) is an empty box in the PNG, as in the page's legend."""
    assert mi._over_white("transparent", 1.0) == mi._over_white("transparent", 0.4) == (255, 255, 255)
    assert mi._over_white("#000000", 0.5) == (128, 128, 128)


def test_map_layers_of_different_shapes_are_refused_in_words():
    with pytest.raises(InvalidDataError, match="differ in shape"):
        mi.compose_png([np.zeros((10, 10, 4), np.uint8), np.zeros((10, 12, 4), np.uint8)])


def test_part_outlines_on_a_layer_taken_every_few_pixels_are_where_the_parts_are():
    """On a large image's map (every ``step`` pixels) a part given by its window is outlined and named
    where the same part given on the whole image is, not a row or column off."""
    inside = np.zeros((20, 17), bool)
    inside[2:18, 3:15] = True
    inside[10:18, 3:8] = False  # (not a rectangle)
    whole = np.zeros((60, 80), bool)
    whole[7:27, 5:22] = inside
    for step in (1, 2, 3):
        shape = (-(-60 // step), -(-80 // step))
        by_window = mi.part_outlines([("P", (7, 5), inside)], shape, step)
        by_image = mi.part_outlines([("P", (0, 0), whole)], shape, step)
        assert np.array_equal(by_window[0], by_image[0]) and by_window[1] == by_image[1], step
        assert by_window[0][..., 3].any()


def test_a_parts_name_is_written_at_its_pixel_nearest_its_centre():
    square = np.ones((9, 9), bool)
    _, names = mi.part_outlines([("Square", (7, 5), square)], (30, 30))
    assert names == [("Square", 11.0, 9.0)]
