"""The Data page: image and label layers, class statistics, training patches cut from the region.

Driven with AppTest; the helpers are in apptest.py.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from pages.components import scene

from apptest import (
    click_map, readout, map_legends, new_app, own_image_app, SQUARE_300, by_label, forms, texts,
    layer_names, scene_layers,
)


def test_data_page_layers_and_statistics(fake_map):
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception and not at.error
    labels = {m.label: m.value for m in at.metric}
    assert "Valid pixels" in labels and "Crop share (labels)" in labels
    # no hectares from a CRS (it has none), but the ground the valid pixels cover at Landsat's 30 m, as
    # the Region and Predict pages say
    valid = int(labels["Valid pixels"].replace(",", ""))
    from core.metrics import format_hectares

    assert (f"Not georeferenced: sizes are in pixels; the valid pixels cover about {format_hectares(valid * 0.09)} at 30 m "
            "pixels (the image's stated pixel size).") in [c.value for c in at.caption]
    # the CDL classes of the region, named, largest first, in pixels (the sample has no CRS)
    classes = at.dataframe[0].value
    assert list(classes.columns) == ["class", "counts as", "share of labelled pixels", "area"] and 1 <= len(classes) <= 8
    assert classes["area"].str.endswith(" px").all()
    px = classes["area"].str.split(" ").str[0].str.replace(",", "").astype(int)
    assert (px.diff().dropna() <= 0).all() and px.sum() <= 300 * 300
    # the region has more classes than are listed: the caption says what the others hold, so that
    # the crop rows are not taken for all of the crop
    shares = classes["share of labelled pixels"].str.rstrip("%").astype(float)
    rest = [c.value for c in at.caption if c.value.startswith(f"The {len(classes)} largest of ")]
    assert len(classes) == 8 and len(rest) == 1
    held = float(re.search(r"hold ([\d.]+)% of the labelled pixels", rest[0]).group(1))
    assert held == pytest.approx(100 - shares.sum(), abs=0.2)
    assert any("Classes in the region" in md.value and "Cropland Data Layer" in md.value for md in at.markdown)
    m, kwargs = fake_map.maps[-1]
    assert kwargs["returned_objects"] == ["last_clicked"]  # clicks only: moving the map runs nothing
    assert readout(fake_map) is None  # (the map says to click it)
    html = m.get_root().render()
    assert scene_layers(m) == ["True colour (R,G,B)", "Labels"]  # by default, over the image around the region
    assert "cropmap.clickMarker(" in html  # a click is marked on the map by the map itself
    assert layer_names(m)[0] == scene.SURROUNDINGS and '"opacity": 0.5' in html and "6 4" in html and "#202020" in html  # its outline, cased
    # the legend inside the map fades the label colours as the layer is faded (0.7 by default)
    assert "opacity:0.70" in html
    at.slider(key="data_op_labels").set_value(0.3).run()
    assert "opacity:0.30" in fake_map.maps[-1][0].get_root().render()
    assert not [c for c in at.caption if "hidden under" in c.value]
    at.checkbox(key="data_show_ndvi").check().run()
    assert len(scene_layers(fake_map.maps[-1][0])) == 3
    assert "NDVI" in map_legends(fake_map)  # its legend inside the map, in view with it
    # true colour at full opacity under NDVI at full opacity cannot be seen: the page says so
    assert [c.value for c in at.caption if "hidden under" in c.value] == [
        "True colour (R,G,B) is hidden under a layer at full opacity: lower its opacity or untick it."]
    # a click on the map reads the pixel there: its image values, its label and the product's class
    from core.labels import class_name, get_class_map
    from core.raster import read_image, read_label_classes
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS

    feats, valid, _ = read_image(SAMPLE_IMAGE)
    mask, codes = read_label_classes(SAMPLE_LABELS, get_class_map("cdl"))
    row, col = next((r, c) for r in range(120, 300) for c in range(40, 300) if valid[r, c] and mask[r, c] == 1)
    click_map(at, "data_map", -(row + 0.5), col + 0.5)
    at.run()
    assert not at.exception
    info, lat, lng = readout(fake_map)  # shown inside the map, with the click it reads
    assert (lat, lng) == (-(row + 0.5), col + 0.5)
    assert info == (f"Pixel row {row}, column {col}: NDVI {feats[row, col, 4]:.2f} (reflectance R {feats[row, col, 0]:.3f}, "
                    f"G {feats[row, col, 1]:.3f}, B {feats[row, col, 2]:.3f}, NIR {feats[row, col, 3]:.3f}); labelled "
                    f"crop ({codes[row, col]} {class_name('cdl', codes[row, col])}).")
    click_map(at, "data_map", -310.5, 5.5)  # on the image around the region: not its pixel
    at.run()
    assert readout(fake_map) is None
    at.slider(key="data_op_ndvi").set_value(0.5).run()
    assert not [c for c in at.caption if "hidden under" in c.value]


def test_data_page_cuts_patches_and_hands_them_to_training(fake_map):
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.switch_page("pages/data.py")
    at.run()
    by_label(at.selectbox, "Patch size").set_value(64)
    by_label(at.number_input, "Training patches").set_value(5)
    by_label(at.number_input, "Test patches").set_value(2)
    assert not forms(at)["patch_form"].enter_to_submit  # (Enter in a box cut patches of half-typed settings)
    by_label(at.button, "Cut patches").click()
    at.run()
    assert not at.exception and not at.error
    made = at.session_state["patches"]
    assert made["count"] == [5, 2] and "held out" in made["note"]
    assert made["pixel_size_m"] == 30.0  # the sample's stated pixel size, for the card of a model trained on them
    assert made["image"] == at.session_state["scene"]["image_path"]  # (a model trained on them: on these pixels)
    assert "5 training patches" in texts(at) and "2 test patches" in texts(at)
    assert not [w for w in at.warning if "repeat" in w.value]  # 300 px holds many different 64 px patches
    from core.patchset import open_patch_set

    assert open_patch_set([made["train"]], 64).record_size == 64 and open_patch_set([made["test"]], 64).record_size == 64
    at.switch_page("pages/region.py")
    at.run()
    at.switch_page("pages/data.py")
    at.run()  # back on the page, the form shows what was last cut
    assert by_label(at.selectbox, "Patch size").value == 64
    assert by_label(at.number_input, "Training patches").value == 5 and by_label(at.number_input, "Test patches").value == 2
    downloads = [d for d in at.get("download_button")]
    assert len(downloads) == 2
    # a held-out block unlike the rest of the region is pointed out (the review's 26% and 63% crop)
    for crop, warned in (([0.26, 0.63], True), ([0.44, 0.5], False)):
        at.session_state["patches"] = {**made, "crop": crop}
        at.run()
        assert any("percentage points" in w.value for w in at.warning) == warned
    at.session_state["patches"] = {**made, "count": [5, 1]}
    at.run()
    assert "and 1 test patch (crop" in texts(at)  # (not "1 test patches")
    at.session_state["patches"] = made
    by_label(at.button, "Train on these patches").click()
    at.run()
    assert not at.exception
    # the Model page opens with the patches chosen and their paths filled in
    assert by_label(at.radio, "Train on").value == "patches"
    assert by_label(at.text_input, "Training patches").value == made["train"]
    assert by_label(at.text_input, "Validation patches").value == made["test"]
    assert at.selectbox(key="train_patch").value == 64


def test_data_page_says_when_patches_repeat_on_a_small_region(fake_map):
    """A region one patch large holds one place for it: the copies the count asks for are said."""
    at = new_app()
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"},
                                  "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [64, 0], [64, 64], [0, 64], [0, 0]]]}}
    at.switch_page("pages/data.py").run()
    assert at.selectbox(key="patch_size").options == ["64"]
    by_label(at.number_input, "Training patches").set_value(5)
    by_label(at.number_input, "Test patches").set_value(2)
    by_label(at.button, "Cut patches").click().run()
    assert not at.exception and not at.error
    repeats = [w.value for w in at.warning if "repeat" in w.value]
    assert len(repeats) == 2 and repeats[0].startswith("Training patches: only 1 of the 5 patches differ")
    assert repeats[1].startswith("Test patches: only 1 of the 2 patches differ")


def test_data_page_keeps_the_label_layer_and_patch_form_across_sources_and_regions(fake_map):
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.switch_page("pages/data.py").run()
    assert at.checkbox(key="data_show_labels").value
    by_label(at.selectbox, "Patch size").set_value(64)
    by_label(at.number_input, "Training patches").set_value(3)
    by_label(at.number_input, "Test patches").set_value(2)
    by_label(at.button, "Cut patches").click().run()
    assert not at.exception and not at.error
    # an image without labels: the box is unticked and disabled ...
    at.switch_page("pages/region.py").run()
    at.session_state["source"] = own_image_app().session_state["source"]
    at.session_state["region"] = at.session_state["scene"] = None  # as state.set_source leaves them
    at.switch_page("pages/data.py").run()
    assert not at.exception
    box = at.checkbox(key="data_show_labels")
    assert not box.value and box.disabled
    # ... and back on the sample, with another region, the labels show again and the form is as submitted
    at.switch_page("pages/region.py").run()
    at.session_state["source"] = {"kind": "sample"}
    at.session_state["region"] = {**SQUARE_300, "properties": {"crs": "image", "name": "another"}}
    at.session_state["scene"] = at.session_state["patches"] = None  # as a new region leaves them
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert at.checkbox(key="data_show_labels").value
    assert len(scene_layers(fake_map.maps[-1][0])) == 2  # true colour + labels
    assert by_label(at.selectbox, "Patch size").value == 64
    assert by_label(at.number_input, "Training patches").value == 3 and by_label(at.number_input, "Test patches").value == 2


def test_data_page_leaves_no_progress_bar_when_the_region_is_unusable(fake_map):
    at = new_app()
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"},
                                  "geometry": {"type": "Polygon", "coordinates": [[[2000, 2000], [2400, 2000], [2400, 2400], [2000, 2000]]]}}
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert any("outside the image" in e.value for e in at.error)
    assert not at.get("progress")


def test_a_full_disk_while_cutting_the_scene_is_an_error_message(fake_map, monkeypatch, tiny_model_path):
    """The region's scene cannot be written (disk full, a folder that cannot be written): Data,
    Predict and Quality show the machine's failure as an error, as the CLI does (it was a traceback)."""
    import errno

    from core.sources.local import LocalSource

    def full(self, region, out_dir, progress=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / "image.tif"))

    monkeypatch.setattr(LocalSource, "fetch", full)
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.session_state["model_path"] = str(tiny_model_path)
    at.session_state["prediction"] = {"key": ["a prediction made earlier"]}
    for page in ("pages/data.py", "pages/predict.py", "pages/quality.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception[0].value)
        assert any("No space left on device" in e.value and "disk has space" in e.value for e in at.error), page
        assert not at.get("progress"), page
        assert "Model: tiny.keras" in texts(at)  # the page ended there, the sidebar is still drawn


def test_out_of_memory_for_the_region_preview_is_an_error_message(fake_map, monkeypatch):
    """A large own image whose preview does not fit in memory: the Region page says so (it was a traceback)."""
    from pages.components import cached

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cached, "source_preview", no_memory)
    at = new_app()
    at.run()
    assert not at.exception
    assert any(e.value.startswith("Out of memory") for e in at.error)


def test_the_labels_legend_names_no_data_only_where_the_layer_shows_some(tmp_path):
    from pages.components import cached
    from testdata import write_raster

    whole = np.zeros((1, 16, 16), np.uint8)
    whole[0, :8] = 1
    gappy = whole.copy()
    gappy[0, 0, 0] = 255
    fields = np.full((1, 16, 16), 255, np.uint8)  # a few surveyed fields: the rest is left clear
    fields[0, 2:6, 2:6], fields[0, 9:12, 3:14] = 1, 0
    items = {}
    for name, data in (("whole", whole), ("gappy", gappy), ("fields", fields)):
        path = write_raster(tmp_path / f"{name}.tif", data)
        legend = cached.labels_overlay(str(path), cached.mtime(str(path)), "binary").legend
        items[name] = [label for label, _ in legend.items]
    assert items == {"whole": ["crop", "not crop"], "gappy": ["crop", "not crop", "no label"],
                     "fields": ["crop", "not crop", "not labelled"]}


def test_the_data_page_gives_the_labels_crop_of_each_part_of_the_region(fake_map):
    """A file of two fields: the labels' crop of each (CDL crop codes over the pixels with image data),
    before any model is loaded."""
    import rasterio
    from rasterio.windows import Window

    from apptest import new_app
    from core.region import Region
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS

    fields = {"type": "FeatureCollection", "crs": "image", "features": [
        {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": [
            [[c0, 300], [c1, 300], [c1, 420], [c0, 420], [c0, 300]]]}} for name, c0, c1 in (("west", 200, 290), ("east", 290, 400))]}
    at = new_app()
    at.session_state["region"] = Region.from_geojson(fields).to_geojson()
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    [table] = [d.value for d in at.dataframe if "part" in d.value.columns]
    assert list(table["part"]) == ["west", "east"]
    # independently: the CDL's crop codes (1-61, 66-77, 204-254) where the image has data
    with rasterio.open(SAMPLE_LABELS) as src:
        codes = src.read(1, window=Window(200, 300, 200, 120))
    with rasterio.open(SAMPLE_IMAGE) as src:
        data = src.read_masks(1, window=Window(200, 300, 200, 120)) > 0
    crop = data & (((codes >= 1) & (codes <= 61)) | ((codes >= 66) & (codes <= 77)) | ((codes >= 204) & (codes <= 254)))
    expected = [f"{int(crop[:, :90].sum()):,} px", f"{int(crop[:, 90:].sum()):,} px"]
    assert list(table["crop (labels)"]) == expected and int(crop.sum()) > 0
    assert any(d.label == "Labels by part CSV" for d in at.get("download_button"))
    # a part reaching past the image's edge: the part off the image is said so (it said "outside the
    # prediction", with no prediction made)
    from pages.components import cached

    half_off = {**fields, "features": [{**fields["features"][0], "geometry": {"type": "Polygon", "coordinates": [
        [[1000, 300], [1048, 300], [1048, 420], [1000, 420], [1000, 300]]]}}]}
    [row] = cached.zone_label_areas((str(SAMPLE_LABELS), cached.mtime(str(SAMPLE_LABELS)), "cdl"),
                                    (str(SAMPLE_IMAGE), cached.mtime(str(SAMPLE_IMAGE))), json.dumps(half_off), (0, 0))
    assert row["note"] == "50% of the part lies outside the image; the figures are for the part inside"


def test_the_whole_image_s_gaps_are_hatched_under_its_layers(fake_map):
    """The whole image as the region: its gaps were the map's background (flat grey, the image's edge
    lost in it) on the Data, Predict and Quality maps, while the note under them named grey hatching;
    a smaller region had them, from the image around it."""
    at = new_app()  # (the sample scene, whole)
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    m, _ = fake_map.maps[-1]
    assert layer_names(m)[0] == scene.UNDER_WHOLE_IMAGE and scene_layers(m) == ["True colour (R,G,B)", "Labels"]
    assert any(c.value.startswith("Grey hatching on the map") for c in at.caption)
    under, image = (next(c for c in m._children.values() if getattr(c, "layer_name", None) == name)
                    for name in (scene.UNDER_WHOLE_IMAGE, "True colour (R,G,B)"))
    assert under.bounds == image.bounds  # (placed over the image)


def test_labels_of_a_few_surveyed_fields_leave_the_imagery_clear(fake_map, small_scene, tmp_path):
    """Surveyed fields label a few percent of an image: the rest is "not labelled" in the figures and
    the legend, and the layer leaves it clear (it was painted black "no label" over the imagery)."""
    from testdata import surveyed_labels

    img, lab = small_scene
    fields = surveyed_labels(lab, tmp_path / "fields_cdl.tif")
    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(img), "labels": str(fields), "label_map": "cdl",
                                  "title": "surveyed"}
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    caption = [c.value for c in at.caption if " not crop / " in c.value]
    assert len(caption) == 1 and "not labelled pixels" in caption[0] and "(or without image data)" in caption[0]
    assert "Labels" in map_legends(fake_map) and "not labelled" in map_legends(fake_map)
    assert "no label" not in map_legends(fake_map).split("Labels", 1)[1]


def test_a_class_code_file_that_is_no_raster_is_said_by_its_name(tmp_path):
    """The Data page's class areas read the code file's grid with rasterio directly: a file that is not
    a GeoTIFF was told as a folder to check for space, with the server's path; now as core says it."""
    from core.errors import CorruptFileError
    from pages.components import cached

    bad = tmp_path / "codes.tif"
    bad.write_text("not a raster")
    with pytest.raises(CorruptFileError, match="codes.tif is not a GeoTIFF"):
        cached.image_grid_of_labels(str(bad), cached.mtime(str(bad)))


def test_a_click_in_a_regions_box_outside_its_outline_says_so(fake_map):
    """A triangle's box holds pixels outside the triangle: a click there, on the image shown around the
    region, read "no image data; no label", though the image has both there."""
    from apptest import click_map, readout

    triangle = {"type": "Feature", "properties": {"crs": "image"},
                "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [300, 0], [0, 300], [0, 0]]]}}
    at = new_app()
    at.session_state["region"] = triangle
    at.switch_page("pages/data.py").run()
    assert not at.exception
    click_map(at, "data_map", -280.5, 280.5)  # row 280, column 280: in the box, outside the triangle
    at.run()
    assert not at.exception
    assert readout(fake_map)[0] == ("Pixel row 280, column 280: no data of the region here (outside its outline, or "
                                    "a gap in the image).")
    click_map(at, "data_map", -20.5, 20.5)  # inside it: read as before
    at.run()
    assert readout(fake_map)[0].startswith("Pixel row 20, column 20: NDVI ")


def test_a_click_on_a_thin_region_reads_its_pixel_and_an_old_click_is_not_read_on_a_new_region(fake_map):
    """A region of the sample wider than high (rows 100-140, columns 300-500) was drawn with its rows and columns
    offsets swapped: it stood elsewhere on the image, and a click on it read no pixel (or another one). And the
    browser sends a map's last click again: after a new region, the old region's click was read on the new map,
    a marker and a reading where the user had not clicked."""
    thin = {"type": "Feature", "properties": {"crs": "image"},
            "geometry": {"type": "Polygon", "coordinates": [[[300, 100], [500, 100], [500, 140], [300, 140], [300, 100]]]}}
    at = new_app()
    at.session_state["region"] = thin
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    click_map(at, "data_map", -120.5, 400.5)  # row 120, column 400: inside it
    at.run()
    assert not at.exception and readout(fake_map)[0].startswith("Pixel row 120, column 400: NDVI ")
    # another region over that pixel, as the Region page sets it: the click made on the first is not read
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"}, "geometry": {
        "type": "Polygon", "coordinates": [[[250, 50], [450, 50], [450, 250], [250, 250], [250, 50]]]}}
    at.session_state["scene"] = None
    at.run()
    assert not at.exception and not at.error and readout(fake_map) is None
    click_map(at, "data_map", -200.5, 260.5)  # a new click on it is read
    at.run()
    assert not at.exception and readout(fake_map)[0].startswith("Pixel row 200, column 260: NDVI ")


def test_the_crop_share_is_that_of_the_labelled_pixels_counted_under_it(fake_map):
    """The 'Crop share (labels)' metric is crop / (crop + not crop) of the counts in the line under it."""
    at = new_app()
    at.session_state["region"] = SQUARE_300
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    [line] = [c.value for c in at.caption if " crop / " in c.value and " not crop / " in c.value]
    crop, not_crop = (int(n.replace(",", "")) for n in re.match(r"([\d,]+) crop / ([\d,]+) not crop", line).groups())
    assert crop and not_crop
    assert {m.label: m.value for m in at.metric}["Crop share (labels)"] == f"{crop / (crop + not_crop):.1%}"


def test_a_source_image_written_anew_at_its_path_is_cut_again_not_shown_from_its_old_cut(fake_map, tmp_path):
    """An own image's file written anew at the same path (an Earth Engine export assembled again into the
    work folder's exports/<mixer hash>/image.tif, by another tab or before a browser reload): the region's
    scene kept in the session was the old file's cut, so the Data page (and the prediction keyed on that
    scene) went on showing the old pixels while the Region page and the surroundings showed the new file."""
    import os

    import rasterio
    from rasterio.windows import Window

    from testdata import SAMPLE_IMAGE, cut

    image = cut(SAMPLE_IMAGE, tmp_path / "image.tif", Window(200, 300, 320, 288))
    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(image), "labels": None, "label_map": None,
                                  "title": "export (Earth Engine image export)", "band_map": None}
    at.session_state["region"] = {"type": "Feature", "properties": {"crs": "image"}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [200, 0], [200, 200], [0, 200], [0, 0]]]}}
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    from core.raster import read_image

    valid_in_region = lambda: f"{int(read_image(image)[1][:200, :200].sum()):,}"  # (the region: rows and columns 0-199)
    assert {m.label: m.value for m in at.metric}["Valid pixels"] == valid_in_region()
    # the same file written anew: its top 100 rows now without data (0, the file's no-data value)
    with rasterio.open(image) as src:
        profile, data = src.profile, src.read()
    data[:, :100, :] = 0
    with rasterio.open(image, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("R", "G", "B", "NIR")
    later = image.stat().st_mtime + 10
    os.utime(image, (later, later))
    at.run()
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Valid pixels"] == valid_in_region() != "0"
