"""Step 2, Data: the region's composite (true colour, false colour, NDVI) and labels, with statistics."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from core.config import PatchConfig
from core.labels import few_labels, get_class_map, label_counts
from core.metrics import area_ha, area_text, format_area, nominal_area, share_text
from core.patchset import crop_share_gap, cut_train_test
from pages.components import cached, navigation, parts, regionmap, scene, state, ui

#: label classes listed under "Classes in the region"
TOP_CLASSES = 8
#: patch files larger than this are not offered as browser downloads (each rerun sends them to the
#: server's media store)
MAX_DOWNLOAD_MB = 50

navigation.require_app(__file__)
st.title("Data", anchor=False)  # (no link: a nameless link beside each title, to a screen reader)

with ui.errors_shown(stop=True, fix_at=ui.TO_REGION):
    sc = scene.current_scene_shown(at_once=True)
    path = str(sc.image_path)
    feats, valid, grid = cached.image_arrays(path, cached.mtime(path))

offset = scene.scene_offset(sc)
st.caption(ui.no_links(sc.title) + (f" -- {sc.attribution}" if sc.attribution else ""))  # (a title: a file's name)

layers = {"true": "True colour (R,G,B)", "false": "False colour (NIR,R,G)", "ndvi": "NDVI"}
settings = dict(state.get(state.LAYERS))
ctrl, map_col, stats_col = st.columns([1, 3, 1])
map_box = ui.map_place(map_col)  # (first on a phone: style.css)
with ctrl:
    st.markdown("**Layers**")
    chosen = []
    for key, title in layers.items():
        prev = settings.get(key, {"show": key == "true", "opacity": 1.0})
        show = st.checkbox(title, value=prev["show"], key=f"data_show_{key}")
        # (its value says what it is; its hidden label, for a screen reader, which layer: three read "Opacity")
        opacity = st.slider(f"{title} opacity", 0.0, 1.0, prev["opacity"], 0.05, key=f"data_op_{key}",
                            disabled=not show, label_visibility="collapsed", format="opacity %.2f")
        settings[key] = {"show": show, "opacity": opacity}
        if show:
            chosen.append((key, opacity))
    has_labels = sc.labels_path is not None and sc.label_map is not None
    # (at 0.5 the crop colour over dark and bright fields looked like two classes)
    prev = settings.get("labels", {"show": True, "opacity": 0.7})
    show_labels = st.checkbox("Labels (crop / not crop)", value=prev["show"] and has_labels,
                              disabled=not has_labels, key="data_show_labels",
                              help=None if has_labels else "this source has no labels")
    lab_opacity = st.slider("Labels opacity", 0.0, 1.0, prev["opacity"], 0.05, key="data_op_labels",
                            disabled=not show_labels, label_visibility="collapsed", format="opacity %.2f")
    # a source without labels shows the box unticked but keeps the user's choice for the next source
    settings["labels"] = {"show": show_labels if has_labels else prev["show"], "opacity": lab_opacity}
    hidden = [layers[k] for i, (k, _) in enumerate(chosen) if any(op >= 1.0 for _, op in chosen[i + 1:])]
    if hidden:  # layers are drawn in this order, each over the last: a full-opacity one hides those under it
        st.caption(f"{' and '.join(hidden)} {'is' if len(hidden) == 1 else 'are'} hidden under a layer at full "
                   "opacity: lower its opacity or untick it.")
    state.put(state.LAYERS, settings)

overlays, opacities = [], {}
with ui.errors_shown():
    for key, opacity in chosen:
        o = cached.image_overlay(path, cached.mtime(path), key, offset, scene.colour_limits())
        overlays.append(o)
        opacities[o.name] = opacity
    mask = None
    if has_labels:
        lpath = str(sc.labels_path)
        mask = cached.label_mask(lpath, cached.mtime(lpath), sc.label_map)
        if show_labels:
            o = cached.labels_overlay(lpath, cached.mtime(lpath), sc.label_map, offset, path, cached.mtime(path))
            overlays.append(o)
            opacities[o.name] = lab_opacity

with map_box:
    regionmap.show(sc, grid, offset, valid, overlays, opacities, "data_map",
                   inspect=regionmap.pixel_reader(sc, feats, valid), label="Map of the region's imagery and labels")

with stats_col:
    st.markdown("**Statistics**")
    inside = sc.extra.get("region_pixels")  # the pixels inside the outline (a local scene says how many)
    known = isinstance(inside, int) and valid.sum() <= inside <= valid.size
    n = int(inside) if known else valid.size
    st.metric("Valid pixels", f"{int(valid.sum()):,}")
    st.caption(f"{share_text(int(valid.sum()), n)} of the region's {n:,} pixels have data in every band" if known else
               f"{share_text(int(valid.sum()), valid.size)} of the {n:,} pixels around the region have data in every band "
               "(pixels outside the region's outline count as no data)")
    if mask is not None:  # over the valid pixels (labels where the image has no data are never counted)
        counts = label_counts(mask, valid)
        labelled = counts.labelled
        st.metric("Crop share (labels)", f"{counts.crop_share:.1%}" if labelled else "n/a")
        # (a few surveyed fields: the rest is not labelled, and the label layer leaves it clear)
        few = few_labels(labelled, int(valid.sum()))
        rest = "not labelled pixels" if few else "pixels without a label"  # (the legend's "no label")
        st.caption(f"{counts.crop:,} crop / {counts.not_crop:,} not crop / {n - labelled:,} {rest} "
                   + ("in the region " if known else "") + "(or without image data)")
        if not labelled and valid.any():  # nothing to train on or to score against
            st.warning(f"The labels hold no class where the image has data: {scene.unlabelled_advice()}.",
                       icon=":material/warning:")
    elif not has_labels:  # (labels that cannot be read have their error above)
        st.caption("No labels for this source: the Quality page needs labels.")
    area = area_ha(valid, grid.pixel_area_ha())
    if area is not None:
        st.metric("Area", format_area(area, state.area_unit()),
                  help="Ground area of the pixels with data: those whose centre lies inside the region, less the "
                       "pixels without data (clouds and their shadows masked, gaps). It is below the region's own "
                       "area on the Region page by the share of those (said under Valid pixels), and a little at "
                       "the outline's edge.")
    else:
        ground = nominal_area(int(valid.sum()), sc.extra.get("pixel_size_m"), state.area_unit())
        st.caption("Not georeferenced: sizes are in pixels"
                   + (f"; the valid pixels cover {ground} (the image's stated pixel size)." if ground else "."))
    st.page_link("pages/model.py", label="Next: Model", icon=":material/arrow_forward:")

codes = scene.class_codes(sc)
if codes:
    rows = []  # (the class table's rows; none where the classes cannot be read, said in the page)
    with ui.errors_shown():
        every = cached.class_areas(codes[0], cached.mtime(codes[0]), codes[1], path, cached.mtime(path))
        rows, rest = every[:TOP_CLASSES], every[TOP_CLASSES:]
        georef = rows and rows[0]["area_ha"] is not None
    if rows:  # (none: no labelled pixel in the region, said above; no empty table under a heading)
        st.markdown(f"**Classes in the region** ({get_class_map(codes[1]).title}, largest first)")
        table = {"class": [f"{r['code']} {r['name']}" for r in rows],
                 "counts as": ["crop" if r["crop"] else "not crop" for r in rows],
                 "share of labelled pixels": [f"{r['share']:.1%}" for r in rows]}
        table["area"] = [area_text(r["area_ha"] if georef else None, r["pixels"], state.area_unit()) for r in rows]
        st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
        if rest:  # so that the crop rows are not taken for all of the crop
            st.caption(f"The {len(rows)} largest of {len(every)} classes. The other {len(rest)} hold "
                       f"{sum(r['share'] for r in rest):.1%} of the labelled pixels "
                       f"({sum(r['share'] for r in rest if r['crop']):.1%} in classes that count as crop).")

if mask is not None:  # a file of fields or farms: how much of each the labels call crop
    parts.show_labels(scene.current_region(), (lpath, cached.mtime(lpath), sc.label_map), (path, cached.mtime(path)),
                      offset, grid.georeferenced)

if has_labels:
    st.divider()
    st.header("Training patches", anchor=False)  # (h2 under the h1: an h3 skipped a level)
    st.caption("Cut patches of this region into TFRecord files in Earth Engine's layout (one float feature per "
               "band R, G, B, NIR, NDVI and a `crop` label: 1 crop, 0 not crop, 255 no data), like the Earth "
               "Engine page's training export. Test patches come from a held-out block. Train on them on the "
               "Model page, or download them for your own TensorFlow code.")
    asked = state.get(state.PATCH_FORM)  # the form opens as it was last submitted (for any region)
    fits, index, size_help = ui.patch_size_choice(grid.shape, ui.remembered(asked, "size", 128))
    if not fits:
        st.info(f"The region is {grid.width:,} x {grid.height:,} px, smaller than the smallest patch "
                f"({ui.PATCH_SIZES[0]} x {ui.PATCH_SIZES[0]} px): draw a larger region on the Region page to cut "
                "training patches of it.", icon=":material/info:")
        ui.stop()
    with st.form("patch_form", enter_to_submit=False):
        f1, f2, f3, f4 = st.columns(4)
        size = f1.selectbox("Patch size", fits, index=index, key="patch_size", help=size_help)
        buffer = ui.remembered_number(f2.number_input, "Context margin (px each side)", 0, 64, asked, "buffer", 0,
                                      key="patch_buffer",
                                 help="Extra image around each patch, in px on each side (the kernel buffer of Earth "
                                      "Engine's exports; their kernelSize is twice this)")
        n_train = ui.remembered_number(f3.number_input, "Training patches", 1, 500, asked, "train", 100, key="patch_train")
        n_test = ui.remembered_number(f4.number_input, "Test patches", 1, 200, asked, "test", 25, key="patch_test")
        cut = st.form_submit_button("Cut patches")
    if cut:
        state.put(state.PATCH_FORM, {"size": int(size), "buffer": int(buffer), "train": int(n_train), "test": int(n_test)})
        with ui.errors_shown():
            with ui.progress_bar("Cutting patches...") as bar:
                root = state.work().patches
                root.mkdir(parents=True, exist_ok=True)
                out = Path(tempfile.mkdtemp(prefix=time.strftime("patches-%Y%m%d-%H%M%S-"), dir=root))  # never reused
                made = cut_train_test(sc.image_path, sc.labels_path, sc.label_map, out,
                                      PatchConfig(patch_size=int(size), kernel_buffer=int(buffer), count=int(n_train)),
                                      int(n_test), band_map=sc.extra.get("band_map"), progress=ui.progress_callback(bar, "Cutting patches"))
            # the patches do not carry their pixel size: kept here for the model trained on them (its card)
            pixel_m = grid.pixel_size_m() or sc.extra.get("pixel_size_m")
            state.put(state.PATCHES, {"train": str(made.train.path), "test": str(made.test.path), "note": made.note,
                                      "image": str(sc.image_path),  # (a model trained on them: on its pixels)
                                      "pixel_size_m": pixel_m, "size": int(size), "stored": made.train.config.full_size,
                                      "crop": [made.train.crop_fraction, made.test.crop_fraction],
                                      "count": [made.train.count, made.test.count],
                                      "warnings": [*(f"Training patches: {w}" for w in made.train.warnings),
                                                   *(f"Test patches: {w}" for w in made.test.warnings)]})
    cut_files = state.get(state.PATCHES)
    if cut_files and all(Path(cut_files[k]).exists() for k in ("train", "test")):
        n_train, n_test = cut_files["count"]
        st.success(f"{n_train} training patch{'es' if n_train != 1 else ''} (crop {cut_files['crop'][0]:.0%} of labelled "
                   f"pixels) and {n_test} test patch{'es' if n_test != 1 else ''} (crop {cut_files['crop'][1]:.0%}), "
                   f"{cut_files['stored']} x {cut_files['stored']} px. {cut_files['note']}")
        for warning in cut_files.get("warnings", []):  # e.g. patches that repeat on a small region
            st.warning(ui.no_links(warning), icon=":material/warning:")
        gap_note = crop_share_gap(*cut_files["crop"])
        if gap_note:  # the held-out block is one part of the region, and may not look like the rest
            st.warning(gap_note, icon=":material/warning:")
        d1, d2, d3 = st.columns(3)
        for col, split in ((d1, "train"), (d2, "test")):
            path = Path(cut_files[split])
            mb = path.stat().st_size / 1e6
            if mb > MAX_DOWNLOAD_MB:  # the browser download goes through the server's memory
                col.caption(f"{path.name}: {mb:,.0f} MB, too large to download here; copy it from the folder below")
            else:
                col.download_button(f"{path.name} ({mb:.1f} MB)", path.read_bytes, file_name=path.name,  # read on click
                                    mime="application/gzip", on_click="ignore", key=f"patch_download_{split}")
        if d3.button("Train on these patches", key="patch_train_here", type="primary"):
            state.train_on_patches(cut_files["train"], cut_files["test"], cut_files["size"])
            st.switch_page("pages/model.py")
        st.caption(f"Saved in {Path(cut_files['train']).parent}")
