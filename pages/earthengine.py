"""Step 6, Earth Engine: batch exports, the task monitor, and the prediction uploaded back as an asset.

The large-job half of the original notebook's Earth Engine -> TensorFlow -> Earth Engine loop;
interactive work (Region to Quality) downloads pixels directly and needs none of this.
"""

from __future__ import annotations

import json

import streamlit as st

from core.ee.export import (MAX_POINTS_PER_TASK, check_export_name, check_export_place, delete_export_files,
                            parse_destination, patch_globs, start_jobs)
from core.errors import ConfigError, CropMapError
from core.ee.tasks import cancel_outcome, cancel_task, ingestion_note, state_label
from core.ee.upload import UploadConfig, default_storage_client, upload_prediction_bytes, viewed_asset
from pages.components import cached, mapview, navigation, predictions, scene, state, ui


def ingestion_pending(asset_id: str) -> tuple[bool, str] | None:
    """(failed, what to say) instead of the map while the asset uploaded last is still being ingested
    or when its ingestion failed (:func:`core.ee.tasks.ingestion_note`); None when it is done, or not
    this session's upload."""
    made = state.get(state.EE_INGESTION)
    if not made or made["asset"] != asset_id:
        return None
    row, why = cached.ee_task_view(made["task"])
    if row is None:  # (said once: the asset, asked for after it, failed too, a second error under this one)
        return True, ui.sentence(f"the state of ingestion task {made['task']}, which makes {asset_id}, could not be "
                                 f"read: {why.rstrip('.')}", ".")
    return ingestion_note([row], made["task"], asset_id)


#: the context margin each kind of export starts with: none for training patches (as the CLI's
#: ee-export-patches; a margin makes each patch larger than the region around a point), 32 px for an
#: image export, whose overlapping patches make a prediction without seams
DEFAULT_MARGIN = {"patches": 0, "image": 32}
_KINDS = {"patches": "Training and test patches (TFRecord)", "image": "Image for prediction (TFRecord patches + mixer)"}


def export_form() -> None:
    """The export form for the current Earth Engine region; starts the tasks when submitted."""
    kinds, sizes = list(_KINDS), [128, 256, 512]
    prev = state.get(state.EE_EXPORT_FORM)  # the form opens as it was last submitted
    started = state.get(state.EE_EXPORT_STARTED)
    if started and started.get("untick"):  # a replacement was started: the next export of the name asks again
        st.session_state["ee_exp_again"] = False
    # (outside the form: the form shows the fields of this kind; training points mean nothing to an image)
    what = st.radio("What", kinds, index=ui.remembered_index(kinds, prev, "what", "patches"), horizontal=True,
                    key="ee_exp_kind", format_func=_KINDS.get)
    metres = None
    with ui.errors_shown():  # (settings that cannot make a source are said; the form still shows)
        metres = scene.current_source().composite.resolution
    with st.form("ee_export", enter_to_submit=False):
        c1, c2 = st.columns([3, 2])  # (the destination's example was cut at 800 px)
        dest = c1.text_input("Destination", ui.remembered(prev, "dest", ""), placeholder="gcs:BUCKET/PREFIX or drive:FOLDER",
                             key="ee_exp_dest",
                             help="gcs:BUCKET/PREFIX: a Cloud Storage bucket and folder (gcs:BUCKET alone writes under "
                                  "crop-mapping/). drive:FOLDER: one folder at the root of your Google Drive.")
        name = c2.text_input("Export name", ui.remembered(prev, "name", "crops"), key="ee_exp_name",
                             help="Names the folder of the export's files and the start of its task names.")
        train = test = per_task = 0
        if what == "patches":
            d1, d2, d3, d4, d5 = st.columns(5)
            train = ui.remembered_number(
                d1.number_input, "Training points per class", 1, 5000, prev, "train", 275, key="ee_exp_train",
                help="Points drawn in the region for each class, crop and not crop; each point is the centre of "
                     "one training patch.")
            test = ui.remembered_number(
                d2.number_input, "Test points per class", 0, 5000, prev, "test", 50, key="ee_exp_test",
                help="Further points of each class, apart from the training points, for validation patches; 0 for none.")
            per_task = ui.remembered_number(
                d3.number_input, "Points per task", 1, MAX_POINTS_PER_TASK, prev, "per_task", 100, key="ee_exp_per_task",
                help="The patches are exported by tasks of this many points each (the defaults, 275 + 275 training "
                     "and 50 + 50 test points, make 6 + 1 tasks); fewer per task when a task runs out of memory.")
        else:
            d4, d5 = st.columns(2)
        patch = d4.selectbox("Patch size (px)", sizes, index=ui.remembered_index(sizes, prev, "patch", 256),
                             key="ee_exp_patch",
                             format_func=lambda n: f"{n} px ({n * metres / 1000:.3g} km)" if metres else f"{n} px",
                             help=f"The side of each patch, in pixels of {metres:g} m." if metres else None)
        margin = ui.remembered_number(
            d5.number_input, "Margin (px)", 0, 256, prev, f"kernel_{what}", DEFAULT_MARGIN[what],
            step=8, key=f"ee_exp_kernel_{what}",
            help="Image around each patch, on each side (Earth Engine's kernel buffer), at most half the patch size. " +
                 ("A multiple of 8 px; an image export needs it for a prediction without seams." if what == "image"
                  else "Training crops patches to the model's size, so patches need none."))
        again = st.checkbox("Replace an earlier export of this name", key="ee_exp_again",
                            help="An export of the same kind with this name and destination: in Cloud Storage, its "
                                 "files are deleted before the new tasks start; one started in this session and not "
                                 "yet written, or in Drive, is written over by the new one.")
        go = st.form_submit_button("Start export")
    this = _export_place(dest, name, what)
    if go:
        form = {**prev, "what": what, "dest": dest, "name": name, "patch": int(patch), f"kernel_{what}": int(margin)}
        if what == "patches":
            form.update(train=int(train), test=int(test), per_task=int(per_task))
        state.put(state.EE_EXPORT_FORM, form)
        state.put(state.EE_EXPORT_STARTED, None)
        with ui.errors_shown():
            # (core's rules, said in the form's words: core's name its fields, kernel_buffer and patch_size)
            if margin > patch // 2 or (what == "image" and margin % 8):
                raise ConfigError(f"a margin of {margin} px does not fit {patch} px patches: give "
                                  f"{'a multiple of 8 px ' if what == 'image' else ''}up to {patch // 2} px, half the "
                                  "patch size" + (" (the model's input, a patch and its margins, is a multiple of 16 px)"
                                                  if what == "image" else ""))
            done = state.get(state.EE_EXPORTS)
            if this in done and not again:  # (two exports of one name wrote to one place, unsaid)
                raise ConfigError(f"an {'image' if what == 'image' else 'patch'} export named {name.strip()!r} to "
                                  f"{dest.strip()} was started in this session: "
                                  "its files would be written over; give another export name, or tick 'Replace an "
                                  "earlier export of this name'")
            warnings: list[str] = []
            # files of an earlier export of this name in the bucket (another session's, or a finished one): refused
            # unless replaced, then deleted before the tasks start (training would read them with the new ones)
            earlier = check_export_place(parse_destination(dest), check_export_name(name.strip()), what,
                                         _storage_client, again, warnings)
            jobs = scene.current_source().export_jobs(
                scene.current_region(), what, dest, name.strip(), train_points=(int(train), int(train)),
                test_points=(int(test), int(test)), patch_size=int(patch), kernel_buffer=int(margin),
                points_per_task=int(per_task or 100), warnings=warnings)
            for warning in warnings:
                st.warning(ui.sentence(warning), icon=":material/warning:")
            asked = json.dumps([form, _here()], sort_keys=True)
            if warnings and state.get(state.EE_EXPORT_WARNED) != asked:  # (they were said after its tasks had started)
                state.put(state.EE_EXPORT_WARNED, asked)
                st.info("Nothing was started: press Start export again to start it as it is, or change the settings.",
                        icon=":material/info:")
            else:
                state.put(state.EE_EXPORT_WARNED, None)
                _start(jobs, what, dest, int(patch), [*[d for d in done if d != this], this], untick=again,
                       earlier=earlier)
    if started:  # said once, on the run after the start
        state.put(state.EE_EXPORT_STARTED, None)
        n = len(started["tasks"])
        st.success(f"Started {n} task{'s' if n != 1 else ''}; follow {'them' if n != 1 else 'it'} on the Tasks tab.",
                   icon=":material/check_circle:")
        st.dataframe(started["tasks"], hide_index=True, width="stretch")
        if started.get("note"):
            st.caption(started["note"])
    # the last exports of this source and region (those of another, under a new export, were taken for its own)
    image = state.get(state.EE_IMAGE_EXPORT)
    if image and image.get("for") == _here():
        st.caption(f"The last image export covers {image['width']:,} x {image['height']:,} px in {image['crs']}: the "
                   f"region's box of {image['region_width']:,} x {image['region_height']:,} px with "
                   f"{image.get('margin', 0)} px of context around it, grown to whole {image['patch']} px patches "
                   "(Earth Engine leaves out patches that do not fit whole). When its task has succeeded, predict "
                   f"it: {_mixer_advice(_export_prefix(image))} The prediction covers the grown box: the region's own crop is "
                   "`.venv/bin/python -m core zones --pred DIR/crop_mask.tif --zones` with the region's GeoJSON (Region page).")
    exported = state.get(state.EE_PATCHES)
    if exported and exported.get("for") == _here():
        st.caption(f"Training patches go to `{exported['train']}`, test patches to `{exported['test']}`. When "
                   "their tasks have succeeded, train on them. Test patches are drawn over the same region, so they "
                   "overlap training patches: validation on them is optimistic (see docs/EARTH_ENGINE.md).")
        if st.button("Train on the exported patches", key="ee_train_patches"):
            state.train_on_patches(exported["train"], exported["test"], exported["size"])
            st.switch_page("pages/model.py")


def _mixer_advice(prefix: str) -> str:
    """Where the mixer JSON of an image export whose files start ``prefix`` (gs://... or drive:...) is,
    and what to give it to."""
    where = ("`.venv/bin/python -m core predict --image`, or to the Region page's 'Use an Earth Engine image export'")
    if prefix.startswith("drive:"):
        folder = prefix[len("drive:"):].split("/", 1)[0]
        return (f"download the files of Google Drive's folder `{folder}` whose names start "
                f"`{prefix.rsplit('/', 1)[-1]}` to one local folder, and give the path of the mixer JSON among them "
                f"(`...mixer.json`) to {where}.")
    return (f"give its mixer JSON, `{prefix}*mixer.json` (a pattern that finds it: Earth Engine names it "
            f"`...-mixer.json` or `...mixer.json`), to {where}.")


def _export_prefix(image: dict) -> str:
    """The start of the files' names of an image export (:data:`state.EE_IMAGE_EXPORT`; a session kept
    before had its mixer's pattern, PREFIX*mixer.json)."""
    return image.get("prefix") or str(image.get("mixer", "")).removesuffix("*mixer.json")


def _storage_client():
    """A Cloud Storage client with Earth Engine's credentials (see :func:`core.ee.upload.default_storage_client`)."""
    return default_storage_client(cached.ee_status().get("project"), secrets=cached.secrets())


def _start(jobs: list, what: str, dest: str, patch: int, exports: list[str], untick: bool, earlier: list[str]) -> None:
    """Start the export's tasks (``jobs``, of kind ``what`` to ``dest``, patches of ``patch`` px), keep
    what to say of them, and run the page again (so that the 'Replace' tick is cleared before its box draws);
    ``exports``: the session's exports with this one (see :data:`state.EE_EXPORTS`); ``untick``: the
    export replaced an earlier one (the box that said so is cleared for the next); ``earlier``: the files of
    an earlier export of its name that it replaces, deleted first."""
    if earlier:
        delete_export_files(earlier, _storage_client())
    started = start_jobs(jobs)
    state.put(state.EE_EXPORTS, exports)
    cached.ee_tasks.clear()
    note = None
    if what == "image" and (g := jobs[0].grid) is not None:
        state.put(state.EE_IMAGE_EXPORT, {"prefix": jobs[0].uri_prefix, "for": _here(),
                                          "width": g.width, "height": g.height, "crs": g.crs,
                                          "region_width": g.region_width, "region_height": g.region_height,
                                          "margin": g.region_col, "patch": patch})
    if what == "patches":
        globs = patch_globs(jobs)
        state.put(state.EE_PATCHES, globs and {**globs, "size": min(patch, 256), "for": _here()})
        if globs is None and dest.strip().startswith("drive:"):
            note = "Drive exports: download the files, then train on them from the Model page."
        elif globs is None:
            note = ("No test patches were exported: give validation patches of your own on the Model page, or "
                    "export some test points.")
    state.put(state.EE_EXPORT_STARTED, {"tasks": started, "note": note, "untick": untick})
    st.rerun()


def _export_place(dest: str, name: str, what: str) -> str:
    """Where an export of kind ``what`` named ``name`` to ``dest`` writes (what two exports must not share
    unsaid; an image export and a patch export of one name write files of their own names): the address
    its destination resolves to (``gs://b/x`` and ``gcs:b/x`` are one place), else the text as typed."""
    try:
        place = parse_destination(dest).uri(name.strip())
    except ConfigError:
        place = f"{dest.strip().rstrip('/')}|{name.strip()}"
    return f"{place}|{what}"


def _here() -> str:
    """The Earth Engine settings and region in use, which an export was of."""
    return json.dumps([state.get(state.SOURCE), state.get(state.REGION)], sort_keys=True)


#: the most tasks the monitor's table shows (the newest); every waiting or running one can be cancelled
SHOWN_TASKS = 50
#: the most failed tasks whose error is spelt out under the table (the table's error column has every one)
SHOWN_FAILURES = 5


def task_monitor() -> None:
    """The account's tasks: a table of the newest, the errors of failed ones, and cancelling."""
    c1, c2 = st.columns([3, 1])
    active_only = c1.toggle("Only waiting and running tasks", key=state.sync_widget(state.EE_TASKS_ACTIVE),
                            on_change=state.store_widget, args=(state.EE_TASKS_ACTIVE,))
    if c2.button("Refresh", key="ee_tasks_refresh", width="stretch"):
        cached.ee_tasks.clear()
        cached.ee_task.clear()
    listed: list[dict] | None = None
    with ui.errors_shown():
        listed = cached.ee_tasks()
    if listed is not None:  # (a listing that failed is said above; "No tasks." under it was not so)
        task_table(listed, active_only)
        cancel_form(listed)
    # a cancel just done: said once, where the button was (above the table, it was out of view)
    for kind, text in state.get(state.EE_TASK_NOTICE) or []:
        if kind == "error":
            st.error(text, icon=":material/error:")
        else:
            st.success(text, icon=":material/check_circle:")
    state.put(state.EE_TASK_NOTICE, None)


def task_table(listed: list[dict], active_only: bool) -> None:
    """The newest of the tasks ``listed`` (rows of :func:`core.ee.tasks.task_rows`; the waiting and
    running ones with ``active_only``), with the errors of failed ones."""
    rows = [r for r in listed if r["active"]] if active_only else listed
    if not rows:
        st.info("No waiting or running tasks." if active_only else "No tasks.")
        return
    st.dataframe([{**r, "state": state_label(r["state"]), "created": ui.when(r["created"])} for r in rows[:SHOWN_TASKS]],
                 hide_index=True, width="stretch", column_order=["state", "description", "error", "created", "progress", "id"],
                 column_config={"progress": st.column_config.ProgressColumn(
                                    "progress", min_value=0.0, max_value=1.0, format="percent", width="small",
                                    help="Earth Engine's own estimate; blank until it gives one"),
                                "error": st.column_config.TextColumn("error", width="large"),
                                "id": st.column_config.TextColumn("id", width="small")})
    if len(rows) > SHOWN_TASKS:
        st.caption(f"The newest {SHOWN_TASKS} of {len(rows):,} tasks; all of them: `.venv/bin/python -m core "
                   "ee-tasks`, or the Tasks tab of Earth Engine's Code Editor.")
    failed = [r for r in rows[:SHOWN_TASKS] if r["state"] == "FAILED"]
    for row in failed[:SHOWN_FAILURES]:
        st.error(ui.sentence(row["failure"]), icon=":material/error:")
    if len(failed) > SHOWN_FAILURES:
        st.caption(f"{len(failed) - SHOWN_FAILURES} more failed tasks in the table: their error column says why.")


def cancel_form(listed: list[dict]) -> None:
    """Cancelling any waiting or running ones of the tasks ``listed``, shown or older."""
    # one whose cancel was asked for is on its way out (nothing more to ask)
    active = [r for r in listed if r["active"] and r["state"] != "CANCEL_REQUESTED"]
    if not active:
        return
    ids = [r["id"] for r in active]
    names = {r["id"]: f"{r['description']} ({state_label(r['state'])}, {r['id']})" for r in active}
    # several at once (an export of many tasks was cancelled one task, and one rerun, at a time)
    chosen = st.multiselect("Waiting or running tasks to cancel", ids, key="ee_cancel_ids", format_func=names.get,
                            placeholder="Choose the tasks (type part of an export's name to find its tasks)")
    with st.container(horizontal=True):  # (side by side at the left; in two columns the second floated mid-row)
        # (never disabled: a button disabled under the keyboard's focus sent the focus to the page's top)
        st.button(f"Choose all {len(ids)}", key="ee_cancel_all", on_click=_choose, args=("ee_cancel_ids", ids))
        n = len(chosen)
        go = st.button(f"Cancel {n} task{'s' if n != 1 else ''}" if n else "Cancel the chosen tasks", key="ee_cancel",
                       disabled=not chosen)
    # (in full: the box's tags cut two tasks of one export to the same text; under the buttons, which an
    # element put above them would move, and the keyboard's focus with them)
    st.caption("To cancel: " + "; ".join(names[t] for t in chosen[:10] if t in names) +
               (f"; and {len(chosen) - 10} more" if len(chosen) > 10 else "") if chosen else " ")
    if go:
        said = [_cancel(tid, names[tid]) for tid in chosen if tid in names]  # (each: one refused stops no other)
        cached.ee_tasks.clear()
        state.put(state.EE_TASK_NOTICE, said)
        st.rerun()  # the list above was drawn before the cancel: draw it again


def _choose(key: str, ids: list[str]) -> None:
    """Choose every one of ``ids`` in the multiselect ``key`` (a button's on_click, before it draws)."""
    st.session_state[key] = list(ids)


def _cancel(task_id: str, name: str) -> list[str]:
    """["success", what the cancel did] or ["error", why it failed] for the task ``task_id`` (``name``:
    how the list names it)."""
    try:
        return ["success", cancel_outcome(cancel_task(task_id))]
    except CropMapError as err:
        return ["error", ui.sentence(f"{name} was not cancelled: {err}")]


navigation.require_app(__file__)
st.title("Earth Engine", anchor=False)  # (no link: a nameless link beside each title, to a screen reader)
st.caption("Batch jobs for large regions: TFRecord exports for training and prediction, the task monitor, "
           "and a prediction uploaded back as an image asset.")
ee_state = cached.ee_status()
if not ee_state["ok"]:
    why = ee_state["message"]  # said once: "Earth Engine is not available: Earth Engine is not configured: ..."
    why = why[0].upper() + why[1:] if why.lower().startswith("earth engine") else f"Earth Engine is not available: {why}"
    ui.stop_with(f"{why.rstrip('.')}. Everything else works on local data.",
                 "pages/region.py", "Go to the Region page")

spec = state.get(state.SOURCE)
tasks_tab, export_tab, upload_tab = st.tabs(["Tasks", "Export", "Upload a prediction"])

# ------------------------------------------------------------------ exports
with export_tab:
    if spec.get("kind") != "earthengine":
        st.info("Exports run on the Earth Engine source: pick the Camana preset or Earth Engine settings "
                "on the Region page.", icon=":material/info:")
        st.page_link("pages/region.py", label="Go to the Region page")
    else:
        export_form()

# ------------------------------------------------------------------ upload back
with upload_tab:
    model_path = state.get(state.MODEL_PATH)
    pred = state.get(state.PREDICTION)
    sc = key = region = None
    with ui.errors_shown():
        region = scene.current_region()
        sc = scene.current_scene_shown() if pred else None
        key = cached.prediction_key(str(sc.image_path), region.key(), model_path or "", state.get(state.VIEWS)) if sc else None
    if (made := predictions.views_behind(pred, key)) is not None:  # the prediction the Predict page shows
        st.caption(f"The prediction shown on the Predict page, made with {predictions.views_text(made)} of each tile.")
        key = tuple(pred["key"])
    if sc is not None and not sc.georeferenced:
        st.info("This scene has no location (image coordinates), so it cannot become an Earth Engine asset.")
    elif sc is None or not model_path or tuple(pred["key"]) != key:
        st.info("Predict this region first (Predict page); its crop probability is what gets uploaded.")
        st.page_link("pages/predict.py", label="Go to the Predict page")
    else:
        prev = state.get(state.EE_UPLOAD_FORM)  # the form opens as it was last submitted
        with st.form("ee_upload", enter_to_submit=False):
            c1, c2 = st.columns(2)
            gcs = c1.text_input("Cloud Storage path", ui.remembered(prev, "gcs", ""),
                                placeholder="gs://BUCKET/predictions/region.tif",
                                key="ee_up_gcs")
            asset = c2.text_input("Asset", ui.remembered(prev, "asset", ""), placeholder="projects/PROJECT/assets/NAME or NAME",
                                  key="ee_up_asset")
            overwrite = st.checkbox("Replace existing files and asset", key="ee_up_overwrite",
                                    help="Replace the Cloud Storage file and the asset if they exist; without "
                                         "it, an existing one is left as it is and the upload stops.")
            go = st.form_submit_button("Upload and start the ingestion")
        if go:
            state.put(state.EE_UPLOAD_FORM, {"gcs": gcs, "asset": asset})
            with ui.errors_shown():
                cfg = UploadConfig(gcs_uri=gcs.strip(), asset_id=asset.strip(), overwrite=overwrite)
                threshold = float(state.get(state.THRESHOLD))
                stats = cached.crop_stats(key, threshold)  # the asset's properties, as the CLI's upload sets them
                project = ee_state.get("project")
                summary = {"threshold": threshold, "crop_fraction": stats["crop_fraction"]}
                if dates := scene.imagery_dates():
                    summary["dates"] = list(dates)  # (the asset's start and end time)
                task_id, asset_id = upload_prediction_bytes(
                    cached.probability_tif(key), summary, cfg, default_storage_client(project, secrets=cached.secrets()),
                    state.work().ee_upload, project=project)
                state.set_widget(state.EE_ASSET, asset_id)  # the box below (made later in this run) shows it
                state.put(state.EE_INGESTION, {"asset": asset_id, "task": task_id})
                cached.ee_tasks.clear()
                cached.ee_task.clear()
                st.success(f"Uploaded; ingestion task {task_id} makes {asset_id} (follow it on the Tasks tab).",
                           icon=":material/check_circle:")

    st.markdown("**Show an asset on the map**")
    typed = st.text_input("Image asset (crop probability, percent)", placeholder="projects/PROJECT/assets/NAME or NAME",
                          key=state.sync_widget(state.EE_ASSET), on_change=state.store_widget, args=(state.EE_ASSET,))
    shown = ""
    if typed.strip():
        with ui.errors_shown():
            shown = viewed_asset(typed.strip(), ee_state.get("project"))
    if shown and (waiting := ingestion_pending(shown)):
        failed, text = waiting
        if failed:
            st.error(text, icon=":material/error:")
        else:
            st.info(text, icon=":material/hourglass_top:")
    elif shown:
        made = state.get(state.EE_INGESTION) or {}
        layer, why = cached.ee_asset_view(shown, made.get("task", "") if made.get("asset") == shown else "")
        if layer is None:
            st.error(ui.sentence(why), icon=":material/error:")
        else:
            # the map opens on the asset's footprint (an asset of another place showed an empty map
            # around the region), with the region's outline where the region has a place on Earth
            here = region is not None and not region.is_image
            w, s_, e, n = layer["bounds"] or (region.bounds if here else (-180.0, -85.0, 180.0, 85.0))
            with ui.errors_shown():
                mapview.render(mapview.MapSpec(bounds=((max(s_, -85.0), w), (min(n, 85.0), e)), image=False,
                                               tile_layers=[layer], label=f"Map of the asset {shown}",
                                               region_geojson=region.to_map_geojson() if here else None),
                               key="ee_asset_map")

# ------------------------------------------------------------------ task monitor
with tasks_tab:  # (drawn last, though shown first: it lists the tasks an export or upload above just started)
    task_monitor()
