"""End to end in real Chromium: region drawing, data, shipped weights, prediction, threshold.

Screenshots of each step go to test-artifacts/. The page must make no request to a non-local host.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import rasterio
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from core.metrics import format_hectares
from pages.components.ui import cut_long_words
from tests.e2e.helpers import (MAP_FRAME, external_requests, goto_page, jobs_report, map_frame, open_region_page,
                               snapshot, wait_map_layers, wait_script_idle)

#: how far the page's main area (which scrolls, not the window) is scrolled down
MAIN_SCROLL = "() => document.querySelector(\"[data-testid='stMain']\").scrollTop"


def metric_value(page, label: str) -> str:
    block = page.locator("[data-testid='stMetric']", has_text=label).first
    return block.locator("[data-testid='stMetricValue']").inner_text()


def wait_metric_change(page, label: str, before: str, timeout: float = 60_000) -> str:
    """Wait until the metric called ``label`` shows something other than ``before``; return it."""
    page.wait_for_function(
        """([label, before]) => [...document.querySelectorAll("[data-testid='stMetric']")]
             .some(m => m.innerText.includes(label)
                   && m.querySelector("[data-testid='stMetricValue']").innerText !== before)""",
        arg=[label, before], timeout=timeout,
    )
    return metric_value(page, label)


def test_full_flow_offline(page, app_url, artifacts):
    page.goto(app_url)
    # 1. Region page with the sample scene in image coordinates
    page.get_by_role("heading", name="Region").wait_for(timeout=60_000)
    wait_map_layers(page, 1)
    frame = map_frame(page)
    frame.get_by_text("not georeferenced: image coordinates").wait_for()
    frame.locator(".leaflet-control-zoom-fullscreen").wait_for()  # the full-screen button, served locally
    page.screenshot(path=str(artifacts / "01_region_sample.png"))
    assert metric_value(page, "Area").startswith("1,048,576")

    # draw a polygon with the Leaflet.draw toolbar
    frame.locator(".leaflet-draw-draw-polygon").click()
    box = page.locator("iframe[title='streamlit_folium.st_folium']").last.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    pts = [(cx - 130, cy - 110), (cx + 110, cy - 120), (cx + 120, cy + 100), (cx - 120, cy + 120)]
    for x, y in pts:
        page.mouse.click(x, y)
        page.wait_for_timeout(150)
    page.mouse.click(*pts[0])  # click the first vertex to close the polygon
    area = wait_metric_change(page, "Area", "1,048,576 px")
    page.get_by_text("region OK").wait_for(timeout=60_000)
    assert area != "1,048,576 px" and area.endswith(" px")
    wait_map_layers(page, 1)
    snapshot(page, artifacts / "02_region_drawn.png")

    # 2. Data page
    goto_page(page, "2. Data")
    wait_map_layers(page, 2)
    page.get_by_text("Crop share (labels)").wait_for()
    snapshot(page, artifacts / "03_data.png")
    # the wheel over the map scrolls the page (to the figures below it), not the map, until it is clicked
    top = page.evaluate(MAIN_SCROLL)
    box = page.locator(MAP_FRAME).last.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 150)
    page.mouse.wheel(0, 200)
    frame.locator(".cropmap-wheel-hint").get_by_text("Click the map to zoom with the mouse wheel").wait_for()
    page.wait_for_function(f"t => ({MAIN_SCROLL})() > t", arg=top)
    # the first click on the page's map reads its pixel (the map was drawn anew by the run it started,
    # and the reading lost, while the first run's "Reading the image..." stood before the map)
    layer = frame.locator(".leaflet-image-layer").last
    layer.scroll_into_view_if_needed()
    spot = layer.bounding_box()
    page.mouse.click(spot["x"] + spot["width"] * 0.5, spot["y"] + spot["height"] * 0.5)
    expect(frame.locator(".cropmap-readout")).to_contain_text("Pixel row", timeout=30_000)
    page.get_by_text("Classes in the region").wait_for()  # the CDL classes of the drawn region
    page.locator("[data-testid='stDataFrame']").last.scroll_into_view_if_needed()
    page.get_by_text("Grassland/Pasture").first.wait_for(state="attached", timeout=30_000)
    snapshot(page, artifacts / "03b_data_classes.png")
    # training patches of the region, in Earth Engine's TFRecord layout
    page.get_by_label("Training patches").fill("8")
    page.get_by_label("Test patches").fill("2")
    page.get_by_role("button", name="Cut patches").click()
    page.get_by_text("8 training patches", exact=False).wait_for(timeout=120_000)
    page.get_by_role("button", name="Train on these patches").scroll_into_view_if_needed()
    wait_script_idle(page)
    page.screenshot(path=str(artifacts / "03c_data_patches.png"))
    # a patch file downloads whole (read when its button is clicked, not on every run of the page)
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile(r"^train\.tfrecord\.gz \(")).click()
    got = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename == "train.tfrecord.gz" and got[:2] == b"\x1f\x8b" and len(got) > 1000

    # 3. Model page: shipped weights
    goto_page(page, "3. Model")
    page.get_by_role("button", name="Load shipped weights").click()
    page.get_by_text("Shipped weights loaded.").wait_for(timeout=120_000)
    page.locator("[data-testid='stSidebar']").get_by_text("Model: crop_unet_light.keras").wait_for(timeout=60_000)
    wait_script_idle(page)
    page.screenshot(path=str(artifacts / "04_model.png"))
    # the training form, on exported TFRecord patches (nothing is started)
    page.get_by_role("tab", name="Train").click()
    page.get_by_text("TFRecord patches (cut on the Data page, or an Earth Engine export)").click()
    page.get_by_text("Training patches", exact=True).wait_for(timeout=30_000)
    wait_script_idle(page)
    page.screenshot(path=str(artifacts / "04b_model_train_patches.png"))

    # 4. Predict
    goto_page(page, "4. Predict")
    page.get_by_role("button", name="Predict").click()
    wait_map_layers(page, 2, timeout=300_000)  # the imagery and the crop layer (the answer) at first
    map_frame(page).get_by_text("predicted crop", exact=False).first.wait_for()  # its legend, inside the map
    wait_script_idle(page)
    # the map's place keeps its height while a new layer's map comes in a new frame (0 px high until its
    # script sized it: the page under the map jumped up by the map's height and back, for a second)
    page.evaluate("""() => { const box = document.querySelector('.st-key-map-first'); window.__lowest = 1e9;
      new MutationObserver(() => { window.__lowest = Math.min(window.__lowest, box.getBoundingClientRect().height); })
        .observe(box, {subtree: true, childList: true, attributes: true}); }""")
    page.get_by_text("Probability layer").click()  # and the probability, one tick away
    wait_map_layers(page, 3, timeout=60_000)
    wait_script_idle(page)
    assert page.evaluate("window.__lowest") >= 480
    map_frame(page).get_by_text("Crop probability", exact=False).first.wait_for()
    before = metric_value(page, "Crop area")
    # the run's progress and its note gone with it (the note stayed, then went on the next run: the
    # slider and map jumped up under the user's pointer)
    expect(page.get_by_text("The prediction goes on if you open another page")).to_have_count(0)
    # the words that hold the map's place until it arrives are behind the map once it is drawn
    centre = page.locator(MAP_FRAME).last.bounding_box()
    on_top = page.evaluate("([x, y]) => document.elementFromPoint(x, y).tagName",
                           [centre["x"] + centre["width"] / 2, centre["y"] + centre["height"] / 2])
    assert on_top == "IFRAME" and page.locator(".map-wait").count() == 1
    # and a map's place whose page stopped before its map (an error above says why) is not left saying so
    # once the run has ended (a place with no map in it, beside this one)
    wait_script_idle(page)
    assert page.evaluate("""() => {
        const box = document.createElement('div'), words = document.createElement('div');
        box.className = 'st-key-map-first'; words.className = 'map-wait'; box.appendChild(words);
        document.querySelector("[data-testid='stMain']").appendChild(box);
        const shown = getComputedStyle(words).display; box.remove(); return shown; }""") == "none"
    snapshot(page, artifacts / "05_predict.png")
    # the eye button held down hides the crop and probability layers and their legend (the image under
    # them shows); let go, they are back. The imagery stays.
    frame = map_frame(page)
    marked, legend = frame.locator(".leaflet-image-layer.cropmap-layer"), frame.locator(".cropmap-fades")
    assert marked.count() == 2 and frame.locator(".leaflet-image-layer:not(.cropmap-layer)").count() >= 1
    eye = frame.get_by_role("button", name="Hold to see the image under the layers")
    eye.hover()
    page.mouse.down()
    expect(marked.first).to_be_hidden()
    expect(marked.last).to_be_hidden()
    expect(legend).to_be_hidden()
    expect(frame.locator(".leaflet-image-layer:not(.cropmap-layer)").first).to_be_visible()
    snapshot(page, artifacts / "05b_predict_peek.png")
    page.mouse.up()
    expect(marked.last).to_be_visible()
    expect(legend).to_be_visible()

    # a click on the map, right after the prediction, marks that pixel and reads it inside the map; the
    # map stays as it was (a page that changed before the map on the next run reloaded it, mark and all)
    frame = map_frame(page)
    frame.locator(".cropmap-readout").get_by_text("Click the map to read a pixel; Enter reads its centre").wait_for()
    crop = frame.locator(".leaflet-image-layer").last.bounding_box()
    page.mouse.click(crop["x"] + crop["width"] * 0.7, crop["y"] + crop["height"] * 0.3)  # (data there)
    expect(frame.locator(".cropmap-readout")).to_have_text(
        re.compile(r"Pixel row [\d,]+, column [\d,]+: .*crop probability [01]\.\d\d: (not )?crop at threshold"), timeout=60_000)
    wait_script_idle(page)
    assert map_frame(page).locator(".cropmap-click-mark").count() == 3  # the pixel's outline, the ring and its casing

    # threshold: keyboard on the slider thumb; meanwhile the map, stale until each run reaches it, is not
    # greyed out (its "Drawing the map..." place showed through it, as if it were reloading)
    page.evaluate("""() => { window.__mapFades = []; window.__sampler = setInterval(() => {
        const box = document.querySelector('.st-key-map-first iframe').closest("[data-testid='stElementContainer']");
        if (box.getAttribute('data-stale') === 'true') window.__mapFades.push(getComputedStyle(box).opacity); }, 40); }""")
    thumb = page.get_by_role("slider").first
    thumb.focus()
    for _ in range(25):
        thumb.press("ArrowRight")
    wait_metric_change(page, "Crop area", before)  # the first press answered ...
    final = float(thumb.get_attribute("aria-valuenow"))  # ... then the last: the figures of where the slider ends
    page.get_by_text(f"valid pixels at threshold {final:.2f}").wait_for(timeout=60_000)
    wait_script_idle(page)
    fades = page.evaluate("clearInterval(window.__sampler) || window.__mapFades")
    assert fades and set(fades) == {"1"}, fades  # (seen stale, and never faded)
    after = metric_value(page, "Crop area")
    assert after != before
    assert re.match(r"^[\d,]+ px$", after), after  # sample scene: pixels, no hectares
    wait_map_layers(page, 3)
    # every layer's image fetched from the server's media store and drawn (not a broken image)
    page.wait_for_timeout(500)
    drawn = map_frame(page).locator("img.leaflet-image-layer").evaluate_all(
        "els => els.map(e => [e.complete && e.naturalWidth > 0, new URL(e.src).pathname.startsWith('/media/')])")
    assert len(drawn) >= 3 and all(ok and served for ok, served in drawn), drawn
    snapshot(page, artifacts / "06_threshold.png")

    # the reading follows the threshold (the same click, read again)
    readout = map_frame(page).locator(".cropmap-readout")
    expect(readout).to_contain_text(f"at threshold {final:.2f}", timeout=30_000)
    snapshot(page, artifacts / "06_pixel_clicked.png")
    # the keyboard's way: Enter on the focused map reads the pixel at its centre (another than the one clicked)
    clicked = readout.inner_text()
    map_frame(page).locator(".leaflet-container").focus()
    map_frame(page).locator(".leaflet-container").press("Enter")
    expect(readout).not_to_have_text(clicked, timeout=60_000)
    expect(readout).to_have_text(re.compile(r"Pixel row [\d,]+, column [\d,]+: \w"), timeout=60_000)
    expect(readout).not_to_have_text("Reading the pixel...", timeout=60_000)
    # the icons' names are not read out before each message and link ("check_circle Region OK")
    icons = page.locator("[data-testid=stIconMaterial], [data-testid=stAlertDynamicIcon]")
    assert icons.count() >= 2 and set(icons.evaluate_all("els => els.map(e => e.getAttribute('aria-hidden'))")) == {"true"}
    # (the script's element takes no space: it put a gap of 16 px above every page's title)
    assert page.evaluate("getComputedStyle(document.querySelector('.stHtml > script')"
                         ".closest('[data-testid=stElementContainer]')).display") == "none"
    # said to a screen reader from the map's live region, which stays put (the box above moves), once per
    # map; the map and its frame are named, with the keys that work on it
    status = map_frame(page).locator(".leaflet-container > [role=status]")
    expect(status).to_have_count(1)
    expect(status).to_have_text(readout.inner_text())
    assert status.get_attribute("aria-live") == "polite"
    container = map_frame(page).locator(".leaflet-container")
    assert container.get_attribute("aria-label") == "Map of the crop prediction"
    assert "Enter reads the pixel at its centre" in map_frame(page).locator(".cropmap-keys").inner_text()
    assert page.locator(MAP_FRAME).last.get_attribute("aria-label") == "Map of the crop prediction"
    wait_script_idle(page)
    # the map view PNG, a handout: at a slide's size, with the crop area shown, over the image around
    # the polygon (faded, not the light grey of missing data)
    with page.expect_download() as download:
        page.get_by_role("button", name="Region map PNG").click()
    assert download.value.suggested_filename == f"crop_map_t{final:.2f}.png"
    download.value.save_as(artifacts / "06e_map_view.png")
    from PIL import Image

    with Image.open(artifacts / "06e_map_view.png") as png:
        assert png.size[0] >= 1000

    # a laptop or a projector (1024 x 768): the threshold's figures are in view, next to it, and whole
    page.set_viewport_size({"width": 1024, "height": 768})
    page.wait_for_timeout(500)
    figure = page.locator("[data-testid='stMetric']", has_text="Crop area").first.locator("[data-testid='stMetricValue'] > div")
    box = figure.bounding_box()
    assert box["y"] + box["height"] <= 768 and box["x"] + box["width"] <= 1024, box
    assert figure.evaluate("e => e.scrollWidth <= e.clientWidth"), "the crop area is cut off"
    # the map, narrower now, fits the region again: the crop layer (the region's window; the imagery
    # under it has the context around it) is whole inside the map, not cut at the sides
    frame = map_frame(page)
    page.wait_for_timeout(1000)
    crop, room = frame.locator(".leaflet-image-layer").last.bounding_box(), frame.locator(".leaflet-container").bounding_box()
    assert crop["x"] >= room["x"] - 2 and crop["x"] + crop["width"] <= room["x"] + room["width"] + 2, (crop, room)
    # and clear of the buttons down the map's left edge (zoom, full screen: the west end lay under them)
    tools = frame.locator(".leaflet-top.leaflet-left").bounding_box()
    assert crop["x"] >= tools["x"] + tools["width"], (crop, tools)
    page.screenshot(path=str(artifacts / "06a_laptop_width.png"))
    # the whole map on the first screen, its foot too (style.css's smaller title on a short screen)
    assert room["y"] + room["height"] <= 768, room
    # a click on the map's part in view does not scroll the page to show the rest of the map (its foot
    # below a shorter screen), which moved the page between the press and the release: the wrong pixel was read
    page.set_viewport_size({"width": 1024, "height": 640})
    page.wait_for_timeout(800)
    room = frame.locator(".leaflet-container").bounding_box()
    assert room["y"] + room["height"] > 640
    main = page.locator("section[data-testid='stMain']")
    page.evaluate("() => document.activeElement.blur()")  # (the map, clicked above, has the focus still)
    top = main.evaluate("e => e.scrollTop")
    page.mouse.click(room["x"] + room["width"] / 2, 640 - 30)
    page.wait_for_timeout(500)
    assert main.evaluate("e => e.scrollTop") == top
    wait_script_idle(page)
    # a view the user zoomed into is kept when the window changes again
    frame.locator(".leaflet-control-zoom-in").click()
    page.wait_for_timeout(800)
    zoomed = frame.locator(".leaflet-image-layer").last.bounding_box()["width"]
    assert zoomed > 1.5 * crop["width"]
    page.set_viewport_size({"width": 1500, "height": 1200})
    page.wait_for_timeout(1000)
    assert map_frame(page).locator(".leaflet-image-layer").last.bounding_box()["width"] == pytest.approx(zoomed, abs=2)

    # full screen for an audience: the map fills the screen, with its legend and the image-coordinates note
    frame = map_frame(page)
    legend = frame.get_by_text("predicted crop")
    assert legend.is_visible()  # inside the map, in view with it (below it, a laptop's screen did not show it)
    frame.locator(".leaflet-control-zoom-fullscreen").click()
    legend.wait_for(state="visible", timeout=10_000)
    frame.get_by_text("not georeferenced: image coordinates").wait_for(state="visible")
    # the crop layer's legend names the threshold moved to above (set in place, without reloading the map)
    chosen = float(page.get_by_role("slider").first.get_attribute("aria-valuenow"))
    frame.get_by_text(f"Crop (probability ≥ {chosen:.2f})").wait_for(state="visible", timeout=10_000)
    # and its colours faded as the layer is (0.75 by default)
    swatch = frame.locator("[data-cropmap-swatch='Crop']").first
    assert swatch.evaluate("e => getComputedStyle(e).opacity") == "0.75"
    page.wait_for_timeout(500)  # the map refits the data to the screen
    page.screenshot(path=str(artifacts / "06b_fullscreen.png"))
    frame.locator(".leaflet-control-zoom-fullscreen").click()
    page.wait_for_timeout(500)
    assert legend.is_visible()

    # on a phone the columns stack, the map's first: it was below the threshold, the figures and the layers'
    # settings, 1,100 px down, out of view as the threshold moved
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(1500)
    map_box = page.locator(MAP_FRAME).first.bounding_box()
    assert map_box["y"] < page.get_by_role("slider").first.bounding_box()["y"], map_box
    assert map_box["y"] < 844, map_box  # in view
    # the map's legend and its image-coordinates note (said above the map too) do not run into each other:
    # on a narrow map the note gives way ("not geore[predicted crop]dinates")
    frame = map_frame(page)
    page.wait_for_timeout(500)
    note = frame.get_by_text("not georeferenced: image coordinates")
    box, legend_box = note.bounding_box(), frame.locator(".leaflet-bottom.leaflet-right .cropmap-note").first.bounding_box()
    apart = box["x"] + box["width"] <= legend_box["x"] or box["y"] >= legend_box["y"] + legend_box["height"]
    assert apart or note.evaluate("e => getComputedStyle(e).visibility") == "hidden", (box, legend_box)
    page.screenshot(path=str(artifacts / "06d_phone.png"))
    page.set_viewport_size({"width": 1500, "height": 1200})

    # a browser reload (F5 in a demo) comes back to the same prediction at the same threshold
    assert "session=" in page.url
    own = parse_qs(urlparse(page.url).query)["session"]
    page.reload()
    page.get_by_role("heading", name="Predict").first.wait_for(timeout=60_000)
    wait_map_layers(page, 3)
    snapshot(page, artifacts / "06c_after_reload.png")
    assert metric_value(page, "Crop area") == after and parse_qs(urlparse(page.url).query)["session"] == own
    # the link passed round (an attendee opens it): a copy of the session under an id of its own, so that
    # what the attendee does is not what the presenter's next reload comes back to
    other = page.context.browser.new_page(viewport=page.viewport_size)
    try:
        other.goto(page.url)
        other.get_by_role("heading", name="Predict").first.wait_for(timeout=60_000)
        wait_map_layers(other, 3)
        wait_script_idle(other)
        assert metric_value(other, "Crop area") == after
        theirs = parse_qs(urlparse(other.url).query).get("session")
        assert theirs and theirs != own, other.url
    finally:
        other.close()

    # 5. Quality: metrics, confusion matrix and the disagreement map against the CDL labels
    goto_page(page, "5. Quality")
    page.get_by_text("Confusion matrix").wait_for(timeout=120_000)
    wait_map_layers(page, 2)
    iou = float(metric_value(page, "IoU"))
    assert 0.0 <= iou <= 1.0
    page.get_by_text("crop threshold").first.wait_for(timeout=60_000)  # the threshold curve's axis
    drawn_badly = [e for e in page.console_errors if "Infinity" in e or "NaN" in e]
    assert not drawn_badly, drawn_badly  # e.g. Vega's "<g> attribute transform: translate(61,Infinity)"
    snapshot(page, artifacts / "07_quality.png", full_page=True)
    # in a narrow window (900 px, beside the sidebar) the map takes the width, the scores under it (beside
    # it, it was 340 px wide: too small to check a prediction by eye)
    page.set_viewport_size({"width": 900, "height": 1000})
    page.wait_for_timeout(1000)
    room = page.locator("[data-testid='stMainBlockContainer']").bounding_box()
    assert page.locator(MAP_FRAME).last.bounding_box()["width"] >= 0.85 * room["width"]
    page.set_viewport_size({"width": 1500, "height": 1200})
    page.wait_for_timeout(1000)
    page.get_by_text("Where the errors are").wait_for()  # by CDL class, under the map
    page.locator("[data-testid='stDataFrame']").last.scroll_into_view_if_needed()
    page.get_by_text("Grassland/Pasture").first.wait_for(state="attached", timeout=30_000)  # a canvas grid: cells are hidden DOM
    snapshot(page, artifacts / "07b_quality_errors.png")
    # the disagreement map on one class alone: where CDL grassland/pasture is taken for crop
    page.get_by_text("every class of the labels").click()
    page.get_by_role("option").filter(has_text="176 Grassland/Pasture").first.click()
    map_frame(page).get_by_text("Disagreement on 176 Grassland/Pasture").wait_for(state="attached", timeout=60_000)
    wait_map_layers(page, 2)
    page.get_by_text("Show the errors on").scroll_into_view_if_needed()
    snapshot(page, artifacts / "07c_quality_one_class.png")
    # zoomed into some fields, a threshold change swaps the errors in place: the map stays where it is
    # (it was reloaded, back to the whole region)
    frame = map_frame(page)
    frame.locator(".leaflet-control-zoom-in").click()
    page.wait_for_timeout(800)
    zoomed = frame.locator(".leaflet-image-layer").last.bounding_box()["width"]
    before = metric_value(page, "IoU")
    thumb = page.get_by_role("slider").first
    thumb.focus()
    for _ in range(10):
        thumb.press("ArrowLeft")
    wait_metric_change(page, "IoU", before)
    wait_script_idle(page)
    page.wait_for_timeout(1000)
    assert map_frame(page).locator(".leaflet-image-layer").last.bounding_box()["width"] == pytest.approx(zoomed, abs=2)
    # the errors on every class again: the map is built anew, at the view it was zoomed to (it went back
    # to the whole region, and the fields being checked were lost)
    page.locator("[data-testid='stSelectbox']", has_text="Show the errors on").click()
    page.get_by_role("option").filter(has_text="every class of the labels").first.click()
    expect(map_frame(page).get_by_text("Disagreement on 176 Grassland/Pasture")).to_have_count(0, timeout=60_000)
    wait_map_layers(page, 2)
    wait_script_idle(page)
    page.wait_for_timeout(1000)
    assert map_frame(page).locator(".leaflet-image-layer").last.bounding_box()["width"] == pytest.approx(zoomed, abs=2)
    snapshot(page, artifacts / "07d_quality_view_kept.png")

    ext = external_requests(page.requests)
    assert not ext, f"external requests: {ext[:5]}"


def test_training_on_patches_cut_from_the_region(page, app_url, artifacts, tmp_path):
    """Data page: cut patches of the sample scene; hand them to the Model page; train in the background."""
    page.goto(app_url)
    page.get_by_role("heading", name="Region").wait_for(timeout=60_000)
    goto_page(page, "2. Data")
    page.get_by_text("Crop share (labels)").wait_for(timeout=120_000)
    page.locator("[data-testid='stSelectbox']", has_text="Patch size").click()
    page.get_by_role("option", name="64").click()
    page.get_by_label("Training patches").fill("16")
    page.get_by_label("Test patches").fill("4")
    page.get_by_role("button", name="Cut patches").click()
    page.get_by_text("16 training patches", exact=False).wait_for(timeout=120_000)
    wait_script_idle(page)
    page.get_by_role("button", name="Train on these patches").click()
    # the Model page opens on its Train tab, the patches and their size filled in
    page.get_by_role("heading", name="Model").first.wait_for(timeout=60_000)
    train_box = page.get_by_label("Training patches")
    train_box.wait_for(timeout=60_000)
    assert train_box.input_value().endswith("train.tfrecord.gz")
    assert page.get_by_label("Validation patches").input_value().endswith("test.tfrecord.gz")
    wait_script_idle(page)
    page.get_by_label("Epochs", exact=True).fill("2")
    page.get_by_label("Steps per epoch").fill("2")
    page.get_by_label("Batch size").fill("4")
    page.get_by_label("Steps per epoch").press("Tab")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Training on 1 TFRecord file(s) of 64 px patches", exact=False).wait_for(timeout=120_000)
    page.get_by_role("button", name="Use the best checkpoint").wait_for(timeout=300_000)
    page.get_by_text("finished: all 2 epochs done", exact=False).first.wait_for(timeout=300_000)
    snapshot(page, artifacts / "04c_model_trained_on_patches.png")
    page.get_by_role("button", name="Use the best checkpoint").click()
    page.locator("[data-testid='stSidebar']").get_by_text("Model: best.keras").wait_for(timeout=60_000)
    page.get_by_text("patch 64 px", exact=False).first.wait_for(timeout=60_000)

    # a second training on a laptop: the Start button is far below the finished job's panel; the new
    # job's progress there is brought into view (it stayed above the screen, unseen, until the end)
    page.set_viewport_size({"width": 1366, "height": 768})
    wait_script_idle(page)
    # long enough that the Cancel click always lands while it runs (2 epochs of 2 steps could end first)
    page.get_by_label("Epochs", exact=True).fill("50")
    page.get_by_label("Epochs", exact=True).press("Tab")
    wait_script_idle(page)
    page.evaluate("() => { const m = document.querySelector(\"[data-testid='stMain']\"); m.scrollTo(0, m.scrollHeight); }")
    page.get_by_role("button", name="Start training").click()
    page.get_by_role("button", name="Cancel training").wait_for(timeout=120_000)
    page.wait_for_function("() => { const e = document.querySelector(\"[data-testid='stProgress']\");"
                           " if (!e) return false; const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= 768; }",
                           timeout=60_000)
    snapshot(page, artifacts / "04d_second_training_laptop.png")
    page.get_by_role("button", name="Cancel training").click()
    try:
        page.get_by_text("cancelled", exact=False).first.wait_for(timeout=120_000)
    except PlaywrightTimeout:  # (once, in CI, and never again since: what the job and the page said)
        raise AssertionError("the training was not cancelled:\n" + jobs_report(tmp_path, page)) from None


@pytest.mark.parametrize("width", [1280, 1500])
def test_a_wide_region_is_fitted_clear_of_the_buttons_down_the_maps_left_edge(page, app_url, artifacts, width):
    """A strip across the sample (1,024 x 160 px): its west end lay under the zoom, full-screen and
    drawing buttons, where a rectangle could not be drawn from either."""
    page.set_viewport_size({"width": width, "height": 900})
    open_region_page(page, app_url)
    page.get_by_text("Enter a box by its coordinates").click()
    wait_script_idle(page)
    page.get_by_label("Box", exact=True).fill("0, 400, 1024, 560")
    page.get_by_label("Box", exact=True).press("Enter")
    wait_script_idle(page)
    page.get_by_role("button", name="Use this box").click()
    page.get_by_text("Region OK: it fits a box of 1,024 x 160 px").wait_for(timeout=60_000)
    wait_map_layers(page, 1)
    frame = map_frame(page)
    outline = frame.locator(".leaflet-overlay-pane path").last
    outline.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)  # (fitted once the frame has its size)
    frame.locator(".leaflet-top.leaflet-left").scroll_into_view_if_needed()
    region, tools = outline.bounding_box(), frame.locator(".leaflet-top.leaflet-left").bounding_box()
    room = frame.locator(".leaflet-container").bounding_box()
    assert region["x"] >= tools["x"] + tools["width"], (region, tools)
    assert region["x"] + region["width"] <= room["x"] + room["width"], (region, room)  # still whole
    assert region["width"] > 0.6 * room["width"]  # and as large as the map allows, nearly
    snapshot(page, artifacts / f"02b_wide_region_{width}.png")


def test_a_page_opened_by_its_url_on_a_fresh_server_is_the_dashboards(page, app_url, artifacts):
    """A bookmark, or a reload after the server restarted: the first request names a page. Streamlit
    would run that file alone (no page config, navigation titles or sidebar status); the page must
    come up inside the dashboard, with the sidebar drawn even though the page stops early."""
    page.goto(app_url.rstrip("/") + "/predict")
    page.get_by_role("heading", name="Predict").wait_for(timeout=60_000)
    page.get_by_text("Load a model first").wait_for()
    page.get_by_role("button", name="Use the shipped weights").wait_for()  # the usual choice, right here
    side = page.locator("[data-testid='stSidebar']")
    side.get_by_text("3. Model").wait_for()  # the dashboard's navigation, not the files' names
    side.get_by_text("Status").wait_for()
    side.get_by_text("Model: none loaded (Model page)").wait_for()
    assert urlparse(page.url).path.rstrip("/").endswith("/predict")
    snapshot(page, artifacts / "00_direct_url_predict.png")
    # the page's icon became the favicon; a material icon's was fetched from fonts.gstatic.com
    ext = external_requests(page.requests)
    assert not ext, f"external requests: {ext[:5]}"


def test_a_page_link_with_its_session_on_a_fresh_server_comes_back_to_the_session(page, app_url, tmp_path, artifacts):
    """A demo laptop restarts the app and the open tab is reloaded: the first request names a page
    and the session (``/predict?session=...``); sending the page into the dashboard must not lose
    the session (st.switch_page drops the URL's parameters)."""
    from core.card import DEFAULT_MODEL_PATH

    sid = "0123456789abcdef0123456789abcdef"
    (tmp_path / "sessions").mkdir(exist_ok=True)
    (tmp_path / "sessions" / f"{sid}.json").write_text(json.dumps({"model_path": str(DEFAULT_MODEL_PATH),
                                                                   "threshold": 0.35}))
    page.goto(app_url.rstrip("/") + f"/predict?session={sid}")
    page.get_by_role("heading", name="Predict").wait_for(timeout=60_000)
    side = page.locator("[data-testid='stSidebar']")
    side.get_by_text(f"Model: {DEFAULT_MODEL_PATH.name}").wait_for(timeout=60_000)
    page.get_by_role("button", name="Predict").first.wait_for()
    assert page.get_by_text("Load a model first").count() == 0
    wait_script_idle(page)
    assert f"session={sid}" in page.url and urlparse(page.url).path.rstrip("/").endswith("/predict")
    snapshot(page, artifacts / "00b_direct_url_with_session.png")


def test_own_georeferenced_image_with_band_numbers(page, app_url, artifacts):
    """A user's GeoTIFF without band names: band numbers in the form, real place on the map, hectares."""
    from tests.e2e.helpers import ROOT

    image = ROOT / "tests" / "data" / "georef" / "ftw_austria_s2_2021-06-17_window.tif"
    open_region_page(page, app_url)
    page.get_by_text("Use your own image").click()
    page.locator("input[type=file]").first.set_input_files(str(image))
    page.get_by_text(image.name).first.wait_for(timeout=30_000)
    use = page.get_by_role("button", name="Use these files")
    expect(use).to_be_enabled(timeout=60_000)  # the upload has reached the server (the name shows before)
    wait_script_idle(page)
    use.click()
    # the file has 4 unnamed bands: the error says how to name them, and nothing is switched
    told = page.get_by_text("cannot be told apart", exact=False).first
    told.wait_for(timeout=60_000)
    box = page.get_by_label("Band numbers of R, G, B, NIR", exact=False)
    box.fill("1,2,3,4")
    box.press("Enter")
    wait_script_idle(page)
    expect(told).to_be_visible()  # still there while the user follows it (the Enter was a new run)
    snapshot(page, artifacts / "08a_own_image_band_numbers.png", full_page=True)
    page.get_by_role("button", name="Use these files").click()
    page.get_by_text("288 x 272 px, EPSG:32633").wait_for(timeout=60_000)
    # (a long file name is cut in the middle in the narrow sidebar)
    page.locator("[data-testid='stSidebar']").get_by_text(f"Source: {cut_long_words(image.name)}").wait_for(timeout=60_000)
    wait_script_idle(page)
    frame = map_frame(page)
    assert frame.get_by_text("not georeferenced: image coordinates").count() == 0

    # the form lies below the map: the way on is said there, where the user is
    page.get_by_role("link", name="Next: Data (whole image)").click()
    page.get_by_role("heading", name="Data").first.wait_for(timeout=60_000)
    wait_map_layers(page, 1)
    page.get_by_text("No labels for this source", exact=False).wait_for(timeout=60_000)
    area = metric_value(page, "Area")
    assert re.match(r"^[\d,.]+ ha$", area), area
    # 288 x 272 pixels of 10 m: 783.4 ha, computed from the CRS
    assert abs(float(area.split()[0].replace(",", "")) - 288 * 272 * 100 / 10_000) < 0.1
    snapshot(page, artifacts / "08_own_image_data.png")
    # on a narrow window the map's attribution wraps onto two lines: the basemap's note stays above it (it
    # lay under the second line, one line's height up)
    said, credits = map_frame(page).get_by_text("Basemap tiles did not load"), map_frame(page).locator(".leaflet-control-attribution")
    said.wait_for(timeout=60_000)
    wide = page.viewport_size
    page.set_viewport_size({"width": 800, "height": wide["height"]})
    for _ in range(100):  # until the narrower map is laid out (the attribution wraps)
        page.wait_for_timeout(100)
        if credits.bounding_box()["height"] > 24:
            break
    page.wait_for_timeout(300)
    note, credit = said.bounding_box(), credits.bounding_box()
    assert credit["height"] > 24 and note["y"] + note["height"] <= credit["y"] + 0.5, (note, credit)
    # and the click's hint at the top right leaves the zoom buttons at the top left uncovered (it lay over the +)
    hint, zoom = (map_frame(page).locator(sel).bounding_box() for sel in (".cropmap-readout", ".leaflet-control-zoom"))
    assert hint["x"] >= zoom["x"] + zoom["width"], (hint, zoom)
    snapshot(page, artifacts / "08e_own_image_narrow.png", full_page=True)
    page.set_viewport_size(wide)
    # in acres for a US audience (the sidebar's Area unit), then back
    for unit, symbol, value in (("acres", "ac", 288 * 272 * 100 / 10_000 / 0.40468564224), ("hectares", "ha", None)):
        page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']", has_text="Area unit").click()
        page.get_by_role("option").filter(has_text=f"{unit} ({symbol})").first.click()
        expect(page.locator("[data-testid='stMetric']", has_text="Area").first).to_contain_text(f" {symbol}",
                                                                                            timeout=60_000)
        if value is not None:
            acres = metric_value(page, "Area")
            assert re.match(r"^[\d,.]+ ac$", acres) and abs(float(acres.split()[0].replace(",", "")) - value) <= 0.5
            snapshot(page, artifacts / "08d_own_image_acres.png")

    # predict with the shipped weights, then download the crop fields as GeoJSON (lon/lat, in Austria)
    goto_page(page, "3. Model")
    page.get_by_role("button", name="Load shipped weights").click()
    page.get_by_text("Shipped weights loaded.").wait_for(timeout=120_000)
    goto_page(page, "4. Predict")
    page.get_by_role("button", name="Predict").click()
    wait_map_layers(page, 2, timeout=300_000)  # the imagery and the crop layer
    shown = metric_value(page, "Crop area")
    assert re.match(r"^[\d,.]+ ha$", shown)
    # the summary download gives the figures shown, with the image and the model they come from
    with page.expect_download() as download:
        page.get_by_role("button", name="Summary JSON").click()
    summary = json.loads(Path(download.value.path()).read_text())
    assert format_hectares(summary["crop_area_ha"]) == shown and summary["threshold"] == 0.5
    assert summary["image"] == image.name and summary["model_card"]["preset"] == "light"
    assert summary["warnings"] and "30 m" in summary["warnings"][0]  # the shipped model on 10 m pixels
    # the crop mask GeoTIFF (made when clicked) holds the crop pixels shown, in the image's CRS
    with page.expect_download() as download:
        page.get_by_role("button", name="Crop mask GeoTIFF").click()
    with rasterio.open(download.value.path()) as src:
        mask, crs = src.read(1), src.crs
    assert download.value.suggested_filename == "crop_mask_t0.50.tif" and crs.to_epsg() == 32633
    assert int((mask == 1).sum()) == summary["crop_pixels"] and set(np.unique(mask)) <= {0, 1, 255}
    page.get_by_role("button", name="Crop areas GeoJSON").click()
    offer = page.get_by_role("button", name=re.compile(r"Download [\d,]+ crop areas"))
    offer.wait_for(timeout=120_000)
    with page.expect_download() as download:
        offer.click()
    fields = json.loads(Path(download.value.path()).read_text())
    assert download.value.suggested_filename == "crop_fields_t0.50.geojson" and fields["features"]
    lon, lat = zip(*(xy for f in fields["features"] for xy in f["geometry"]["coordinates"][0]))
    assert 9 < min(lon) <= max(lon) < 17 and 46 < min(lat) <= max(lat) < 49  # Austria
    snapshot(page, artifacts / "08b_own_image_fields.png")

    # the same file averaged to the shipped model's 30 m pixels: the source is the copy, and the Predict
    # page no longer warns that fields look 3 times larger to the model
    goto_page(page, "1. Region")
    page.get_by_text("Use your own image").click()
    page.locator("input[type=file]").first.set_input_files(str(image))  # (the upload box forgets on other pages)
    use = page.get_by_role("button", name="Use these files")
    expect(use).to_be_enabled(timeout=60_000)
    page.get_by_text("Average to 30 m pixels").click()
    wait_script_idle(page)
    use.click()
    page.get_by_text("96 x 91 px (averaged from 288 x 272 px of 10 m), georeferenced").wait_for(timeout=60_000)
    page.locator("[data-testid='stSidebar']").get_by_text("(30 m)", exact=False).first.wait_for(timeout=60_000)
    snapshot(page, artifacts / "08c_own_image_30m.png", full_page=True)
    goto_page(page, "4. Predict")
    page.get_by_role("button", name="Predict").wait_for(timeout=60_000)
    wait_script_idle(page)
    assert page.get_by_text("fields look", exact=False).count() == 0

    # only basemap tiles may come from elsewhere (they are optional); scripts and styles are local
    ext = [u for u in external_requests(page.requests) if not re.search(r"/\d+/\d+/\d+\.png", u)]
    assert not ext, f"external requests other than basemap tiles: {ext[:5]}"


def test_earth_engine_region_drawn_on_the_real_map(page, tmp_path, artifacts):
    """With Earth Engine (faked in the server: tests/e2e/fake_ee), the Camana preset opens a real map
    with Earth Engine tile layers; a rectangle drawn there becomes the region; Data downloads it."""
    from tests.e2e.helpers import ROOT, dashboard

    fake = ROOT / "tests" / "e2e" / "fake_ee"
    env = {"CROPMAP_FAKE_EE": "1", "PYTHONPATH": os.pathsep.join(p for p in (str(fake), os.environ.get("PYTHONPATH")) if p)}
    with dashboard(tmp_path, env) as (url, _):
        page.goto(url)
        page.get_by_role("heading", name="Region").wait_for(timeout=60_000)
        wait_script_idle(page)
        page.get_by_role("button", name="Camana valley", exact=False).click()
        page.get_by_text("Camana valley, Arequipa, Peru", exact=True).wait_for(timeout=60_000)
        wait_script_idle(page)
        frame = map_frame(page)
        frame.locator(".leaflet-control-layers").wait_for(state="attached", timeout=60_000)
        frame.locator(".leaflet-draw-draw-rectangle").wait_for(timeout=60_000)
        box = page.locator("iframe[title='streamlit_folium.st_folium']").last.bounding_box()
        assert box["height"] > 300  # the map is drawn (a script error leaves the frame at height 0)
        html = frame.locator("body").inner_html()
        assert "127.0.0.1:9/ee-tiles" in html  # Earth Engine tile layers on the map
        # their tiles fail (a closed port): said in the corner, above the attribution, not under it, on a
        # laptop's narrower map too (its long attribution hid the end of the note)
        said = frame.get_by_text("Earth Engine tiles did not load (no internet? quota?)")
        said.wait_for(timeout=60_000)
        wide, credits = page.viewport_size, frame.locator(".leaflet-control-attribution")
        credits.get_by_text("Google Earth Engine").wait_for(timeout=60_000)  # (the long attribution, its layers added)
        before = credits.bounding_box()
        page.set_viewport_size({"width": 1280, "height": wide["height"]})
        for _ in range(50):  # until the page has laid the narrower map out
            page.wait_for_timeout(100)
            if credits.bounding_box() != before:
                break
        page.wait_for_timeout(300)
        note, credit = said.bounding_box(), credits.bounding_box()
        assert note["x"] + note["width"] > credit["x"]  # (side by side, they would meet)
        assert note["y"] + note["height"] <= credit["y"] + 0.5, (note, credit)
        page.set_viewport_size(wide)
        before = metric_value(page, "Area")
        assert before.endswith(" ha")

        # draw a rectangle inside the preset's box
        frame.locator(".leaflet-draw-draw-rectangle").click()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx - 120, cy - 90)
        page.mouse.down()
        page.mouse.move(cx + 40, cy + 60, steps=8)
        page.mouse.up()
        after = wait_metric_change(page, "Area", before)
        assert after.endswith(" ha") and float(after.split()[0].replace(",", "")) < float(before.split()[0].replace(",", ""))
        page.get_by_text("px at 30 m in EPSG:32718", exact=False).wait_for(timeout=60_000)
        snapshot(page, artifacts / "09_ee_region_drawn.png")

        goto_page(page, "2. Data")
        page.get_by_text("Crop share (labels)").wait_for(timeout=120_000)
        wait_map_layers(page, 2)
        assert metric_value(page, "Area").endswith(" ha")
        snapshot(page, artifacts / "10_ee_data.png")


def _parts_table(page, kind: str, shot: Path) -> list[dict]:
    """The rows of the page's table of the region's parts ("Crop" or "Agreement"), from its CSV download,
    once the table is in view (its screenshot saved as ``shot``)."""
    import csv

    heading = page.get_by_text(f"{kind} by part of the region")
    heading.wait_for(timeout=120_000)
    wait_script_idle(page)
    heading.scroll_into_view_if_needed()
    snapshot(page, shot)
    with page.expect_download() as download:
        page.get_by_role("button", name=f"{kind} by part CSV").click()
    with open(download.value.path(), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_a_file_of_fields_gets_the_crop_and_the_agreement_of_each(page, app_url, tmp_path, artifacts):
    """An agronomist's GeoJSON of fields (in the sample's pixels, as it has no place on Earth): the Region
    page keeps them apart, Predict gives each field's crop (the fields' crop adds up to the region's),
    Quality each field's agreement with the labels, and the CSV the same figures."""
    fields = {"type": "FeatureCollection", "crs": "image", "features": [
        {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for name, ring in (("Field A", [[120, 150], [330, 150], [330, 330], [120, 330], [120, 150]]),
                           ("Field B", [[340, 200], [520, 180], [560, 360], [360, 400], [340, 200]]))]}
    path = tmp_path / "fields.geojson"
    path.write_text(json.dumps(fields))
    open_region_page(page, app_url)
    page.get_by_text("Upload a region (GeoJSON)").click()
    page.locator("input[type=file]").last.set_input_files(str(path))
    page.get_by_role("button", name="Use this GeoJSON region").click(timeout=60_000)
    page.get_by_text("2 parts (one per feature of the file)").wait_for(timeout=60_000)
    goto_page(page, "3. Model")
    page.get_by_role("button", name="Load shipped weights").click()
    page.get_by_text("Shipped weights loaded.").wait_for(timeout=120_000)
    goto_page(page, "4. Predict")
    page.get_by_role("button", name="Predict").click()
    wait_map_layers(page, 2, timeout=300_000)
    rows = _parts_table(page, "Crop", artifacts / "11_fields_crop_by_part.png")
    assert [r["name"] for r in rows] == ["Field A", "Field B"]
    crop = metric_value(page, "Crop area")  # the region's, in pixels (the sample has no CRS)
    assert sum(int(r["crop_pixels"]) for r in rows) == int(crop.split()[0].replace(",", "")) > 0
    # a field is named wherever it is pointed at (not on its outline only), and a click inside it still
    # reads the pixel there
    frame = map_frame(page)
    upper = frame.locator("path.leaflet-interactive[fill-opacity='0']").first
    box = upper.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    expect(frame.locator(".leaflet-tooltip")).to_have_text("Field A", timeout=30_000)
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    expect(frame.locator(".cropmap-readout")).to_contain_text("Pixel row", timeout=60_000)
    snapshot(page, artifacts / "11c_field_pointed_at.png")
    # the handout (the Region map PNG): the fields outlined and named
    with page.expect_download() as download:
        page.get_by_role("button", name="Region map PNG").click()
    download.value.save_as(artifacts / "11d_fields_map_view.png")
    goto_page(page, "5. Quality")
    scored = _parts_table(page, "Agreement", artifacts / "11b_fields_agreement_by_part.png")
    assert [r["crop_pixels"] for r in scored] == [r["crop_pixels"] for r in rows]  # the same prediction
    assert all(0 < float(r["iou"]) <= 1 for r in scored)
