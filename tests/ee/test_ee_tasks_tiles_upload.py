"""Task monitor (fake client), tile URL cache, upload + ingestion manifest."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from core.ee import tasks as T
from core.ee import tiles
from core.ee import upload as U
from core.ee.errors import EETaskFailedError
from core.errors import ConfigError, EarthEngineError, InputNotFoundError
from fake_ee_ops import FakeAssets, FakeOps, FakeStorage, image_asset, op


@pytest.fixture(autouse=True)
def assets(monkeypatch):
    """Earth Engine's assets, none unless a test adds some (an upload asks first whether its asset exists)."""
    from core.ee import assets as A

    fake = FakeAssets()
    monkeypatch.setattr(A, "_default_get_asset", fake)
    return fake



def test_list_and_states():
    c = FakeOps({"A": [op("A", "RUNNING", created="2026-01-02T00:00:00Z")], "B": [op("B", "SUCCEEDED")], "C": [op("C", "PENDING")]})
    infos = T.list_tasks(c)
    assert [i.id for i in infos][0] == "A"  # newest first
    assert {i.id: i.state for i in infos} == {"A": "RUNNING", "B": "COMPLETED", "C": "READY"}
    assert [i.id for i in T.list_tasks(c, active_only=True)] == ["A", "C"]
    assert T.summarize(infos) == {"RUNNING": 1, "COMPLETED": 1, "READY": 1}
    assert infos[0].destination_uris == ("https://console.cloud.google.com/storage/browser/b/x/",)  # as the fake op has it
    # a finished task is 100 % done even when its metadata has no progress; a waiting one has no estimate
    assert {i.id: i.progress for i in infos}["B"] == 1.0
    assert {i.id: i.progress for i in infos}["C"] is None


@pytest.mark.parametrize("state, shown", [("PENDING", "READY"), ("RUNNING", "RUNNING"), ("CANCELLING", "CANCEL_REQUESTED"),
                                           ("SUCCEEDED", "COMPLETED"), ("CANCELLED", "CANCELLED"), ("FAILED", "FAILED"),
                                           ("SOMETHING_NEW", "UNKNOWN")])
def test_each_operation_state_is_named_as_the_code_editor_names_it(state, shown):
    """From the operation's own state alone (no ``done`` key: an operation still listed, or one
    whose answer leaves it out), so that the mapping itself is what is tested."""
    info = T.task_info({"name": "projects/p/operations/X", "metadata": {"state": state, "description": "d"}})
    assert info.state == shown and info.id == "X"
    assert (info.progress == 1.0) == (shown == "COMPLETED")


def test_an_operation_with_null_fields_is_a_task_with_empty_ones():
    """A null description (or type, times, error text) in an operation was a traceback in ee-tasks."""
    info = T.task_info({"name": "projects/p/operations/Y", "done": True, "error": {"message": None},
                        "metadata": {"state": "FAILED", "description": None, "type": None, "createTime": None,
                                     "progress": None, "destinationUris": None}})
    assert (info.id, info.state, info.description, info.task_type, info.error_message, info.created) == (
        "Y", "FAILED", "", "", "", "")
    assert info.progress is None and info.destination_uris == ()
    assert T.task_rows([info])[0]["description"] == ""
    assert T.task_info({"name": None, "metadata": None}).state == "UNKNOWN"


def test_wait_until_done_with_fake_sleep():
    c = FakeOps({"A": [op("A", "PENDING"), op("A", "RUNNING"), op("A", "SUCCEEDED")], "B": [op("B", "SUCCEEDED")]})
    sleeps, seen = [], []
    final = T.wait_for(["A", "projects/p/operations/B"], c, poll_seconds=5, sleep=sleeps.append, progress=lambda d, t, m: seen.append(d))
    assert [f.state for f in final] == ["COMPLETED", "COMPLETED"]
    assert sleeps == [5, 5] and seen == [1, 1, 2]


def test_failed_task_raises_with_its_message():
    c = FakeOps({"A": [op("A", "RUNNING"), op("A", "FAILED", "camana_train_000", error="User memory limit exceeded.")]})
    with pytest.raises(EETaskFailedError) as info:
        T.wait_for(["A"], c, sleep=lambda s: None)
    assert info.value.task_id == "A" and info.value.error_message == "User memory limit exceeded."
    assert "camana_train_000" in str(info.value) and "--points-per-task" in str(info.value)
    assert "exceeded; export again with fewer" in str(info.value)  # the message's own full stop gives way to the advice
    # the task list (dashboard, ee-tasks) says the same as the error; nothing for tasks that did not fail
    failed = op("A", "FAILED", "camana_train_000", error="User memory limit exceeded.")
    rows = T.task_rows([T.task_info(failed), T.task_info(op("B", "RUNNING"))])
    assert rows[0]["failure"] == str(info.value) and rows[1]["failure"] == ""


@pytest.mark.parametrize("task_type, advice, not_advice", [
    ("EXPORT_IMAGE", "smaller region", "points per task"),
    ("INGEST_IMAGE", "smaller region", "points per task"),
    ("EXPORT_FEATURES", "points per task", "coarser"),
])
def test_memory_advice_fits_the_kind_of_task(task_type, advice, not_advice):
    """Out of memory: fewer points per task only helps a patch (table) export, not an image export."""
    info = T.TaskInfo("A", "projects/p/operations/A", "camana_image", "FAILED", task_type,
                      error_message="User memory limit exceeded.")
    with pytest.raises(EETaskFailedError) as err:
        T.raise_for_state(info)
    assert advice in str(err.value) and not_advice not in str(err.value)


def test_an_ingestion_is_said_until_it_completes():
    """The asset's map waits for its ingestion: while it runs (no tiles yet) and when it failed, a note."""
    def note(*ops):
        return T.ingestion_note(T.task_rows([T.task_info(o) for o in ops]), "ING", "projects/p/assets/a")

    assert note(op("ING", "RUNNING")) == (False, "projects/p/assets/a is being made by ingestion task ING (running); "
                                                 "it shows here when the task has completed (Refresh on the Tasks tab "
                                                 "to look again).")
    failed, text = note(op("X", "RUNNING"), op("ING", "FAILED", "Ingest a", error="Asset already exists."))
    assert failed and text == "projects/p/assets/a was not made. Earth Engine task Ingest a failed: Asset already exists."
    assert note(op("ING", "SUCCEEDED")) is None and note(op("X", "RUNNING")) is None  # done, or no longer listed


def test_cancelled_and_timeout():
    c = FakeOps({"A": [op("A", "CANCELLED")]})
    with pytest.raises(EarthEngineError, match="cancelled"):
        T.wait_for(["A"], c, sleep=lambda s: None)
    clock = iter([0.0, 100.0, 200.0])
    c = FakeOps({"B": [op("B", "RUNNING")]})
    with pytest.raises(EarthEngineError, match="still running"):
        T.wait_for(["B"], c, timeout=150, sleep=lambda s: None, clock=lambda: next(clock))


def test_a_pace_or_limit_out_of_range_is_refused_before_any_request():
    c = FakeOps({"A": [op("A", "RUNNING")]})
    c.get_operation = c.list_operations = lambda *a: pytest.fail("Earth Engine was asked")
    for poll, timeout in ((float("nan"), None), (-0.5, None), (86401, None), (True, None), ("30", None), (1, -1), (1, float("inf"))):
        with pytest.raises(ConfigError):
            T.wait_for(["A"], c, poll_seconds=poll, timeout=timeout, sleep=lambda s: None)
    for limit in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="limit must be a number of tasks"):
            T.list_tasks(c, limit=limit)


def test_cancel():
    c = FakeOps({"A": [op("A", "RUNNING")], "B": [op("B", "SUCCEEDED")]})
    assert T.cancel_task("A", c).state == "CANCEL_REQUESTED" and c.cancelled == ["A"]
    assert T.cancel_task("B", c).state == "COMPLETED" and c.cancelled == ["A"]  # finished: nothing to cancel
    # what the dashboard says of each (by the task's name, else its id)
    assert T.cancel_outcome(T.get_task("A", c)) == "d: cancel requested; Earth Engine stops it shortly"
    assert T.cancel_outcome(T.task_info(op("C", "CANCELLED", description=""))) == "C: cancelled"
    with pytest.raises(EarthEngineError, match="no Earth Engine task"):
        T.get_task("Z", c)
    # a client that names operations without listing them (the real one): Earth Engine's "not found" is an
    # unknown task, not an asset to share ("check that the asset id is right")
    import ee

    class Naming(FakeOps):
        def operation_name(self, task_id):
            return f"projects/p/operations/{task_id}"

        def get_operation(self, name):
            raise ee.EEException(f"Operation {name} not found.")

    for call in (lambda: T.get_task("ZZZ", Naming({})), lambda: T.cancel_task("ZZZ", Naming({})),
                 lambda: T.wait_for(["ZZZ"], Naming({}), poll_seconds=0)):
        with pytest.raises(EarthEngineError, match=r"^no Earth Engine task with id ZZZ \(Earth Engine does not know it\)"):
            call()


def test_cancel_refused_says_it_of_the_task():
    """Earth Engine refusing a cancel is said of the task (it was the advice for an asset id)."""
    import ee

    class Refusing(FakeOps):
        def cancel_operation(self, name):
            raise ee.EEException("Permission denied: the caller does not have permission")

    c = Refusing({"A": [op("A", "RUNNING")]})
    with pytest.raises(EarthEngineError) as err:
        T.cancel_task("A", c)
    text = str(err.value)
    assert text.startswith("Earth Engine refused to cancel task A: it may belong to another account")
    assert "Permission denied" in text and "asset id" not in text


def test_list_retries_transient_errors(monkeypatch):
    from googleapiclient.errors import HttpError

    class R(dict):
        status = 502
        reason = "bad gateway"

    calls = []

    class Flaky(FakeOps):
        def list_operations(self):
            calls.append(1)
            if len(calls) == 1:
                raise HttpError(R(status="502"), b"")
            return super().list_operations()

    import time as _time

    monkeypatch.setattr(_time, "sleep", lambda s: None)
    assert len(T.list_tasks(Flaky({"A": [op("A", "RUNNING")]}))) == 1 and len(calls) == 2


# ------------------------------------------------------------------------------------ tiles


def test_tile_url_cache_ttl(ee_offline):
    from core.ee.presets import CAMANA

    tiles.clear_cache()
    calls = []
    now = [1000.0]

    class Fetcher:
        def __init__(self, n):
            self.url_format = f"https://earthengine.googleapis.com/v1/projects/p/maps/m{n}/tiles/{{z}}/{{x}}/{{y}}"

    def get_map_id(image, vis):
        calls.append(vis)
        return {"mapid": "m", "token": "", "tile_fetcher": Fetcher(len(calls))}

    kw = dict(get_map_id=get_map_id, now=lambda: now[0], ttl=600)
    layers = tiles.composite_layers(CAMANA.composite, CAMANA.geojson, **kw)
    assert [layer.name.split()[-1] for layer in layers] == ["colour", "(NIR-R-G)", "NDVI"]
    assert [c["bands"] for c in calls] == [["R", "G", "B"], ["NIR", "R", "G"], ["NDVI"]]
    assert all("{z}/{x}/{y}" in layer.url for layer in layers)
    again = tiles.composite_layers(CAMANA.composite, CAMANA.geojson, **kw)
    assert [a.url for a in again] == [a.url for a in layers] and len(calls) == 3  # cached: no new calls
    now[0] += 601
    tiles.composite_layers(CAMANA.composite, CAMANA.geojson, **kw)
    assert len(calls) == 6  # expired: refreshed
    lab = tiles.label_layers(CAMANA.labels, CAMANA.geojson, **kw)
    assert len(lab) == 1 and calls[-1]["palette"] and "GLC-FCS30D" in lab[0].name
    asset = tiles.asset_layer("projects/p/assets/pred", **kw)
    assert asset.name == "projects/p/assets/pred" and calls[-1]["max"] == 100
    assert tiles.TTL_SECONDS < 4 * 3600
    # expired URLs are dropped as new ones come (a server's regions piled up in the cache)
    assert len(tiles._cache) == 5
    now[0] += 601
    tiles.asset_layer("projects/p/assets/other", **kw)
    assert len(tiles._cache) == 1


def test_map_layers_draw_no_data_transparent_within_the_region(ee_offline, graph):
    """What getMapId is asked to draw: labels and an asset with their 255s masked (they were painted as crop
    and as 100 %), the composite clipped to the region, false colour and NDVI off at first; a refused
    request (too many at once) is retried."""
    from graph_walk import arguments_of, constants, resolved

    from core.ee.errors import RetryPolicy
    from core.ee.presets import CAMANA

    tiles.clear_cache()
    drawn, refusals = [], [1]

    def get_map_id(image, vis):
        if refusals:
            refusals.pop()
            raise ee_offline.EEException("Too many concurrent aggregations.")
        drawn.append(graph(image))
        return {"mapid": f"m{len(drawn)}", "token": ""}

    kw = dict(get_map_id=get_map_id, policy=RetryPolicy(attempts=3, base_delay=0.0, jitter=0.0))
    layers = tiles.composite_layers(CAMANA.composite, CAMANA.geojson, **kw)
    assert len(drawn) == 3 and not refusals  # the first request refused once, then drawn
    assert [layer.show for layer in layers] == [True, False, False]
    assert all(arguments_of(g, "Image.clip") for g in drawn)
    tiles.label_layers(CAMANA.labels, CAMANA.geojson, **kw)
    tiles.asset_layer("projects/p/assets/pred", **kw)
    for g in drawn[3:]:
        (mask,) = arguments_of(g, "Image.updateMask")
        (neq,) = arguments_of(mask, "Image.neq")
        assert constants(resolved(g, neq["image2"])) == [255]
    assert arguments_of(drawn[3], "Image.clip")  # the labels cut to the region too


# ------------------------------------------------------------------------------------ upload


def test_upload_cog_and_ingest(tmp_path):
    cog = tmp_path / "prediction.tif"
    cog.write_bytes(b"II*\x00fake")
    storage, ingested = FakeStorage(), []

    def ingest(request_id, manifest, allow_overwrite):
        ingested.append((request_id, manifest, allow_overwrite))
        return {"id": "TASK123", "name": "projects/p/operations/TASK123", "started": "OK"}

    cfg = U.UploadConfig(gcs_uri="gs://crop-bucket/predictions/", asset_id="camana_pred")
    tid = U.upload_prediction_cog(cog, cfg, storage, project="my-proj", ingest=ingest, properties={"model": "unet"})
    assert tid == "TASK123"
    # a folder: the file is named as the asset (two assets uploaded to one folder met in one file)
    assert storage.uploaded == {"gs://crop-bucket/predictions/camana_pred.tif": b"II*\x00fake"}
    _, manifest, overwrite = ingested[0]
    assert manifest == {
        "name": "projects/my-proj/assets/camana_pred",
        "tilesets": [{"id": "0", "sources": [{"uris": ["gs://crop-bucket/predictions/camana_pred.tif"]}]}],
        "bands": [{"id": "crop_probability", "tilesetId": "0", "tilesetBandIndex": 0, "pyramidingPolicy": "MEAN",
                   "missingData": {"values": [255]}}],
        "properties": {"model": "unet"},
    }
    assert overwrite is False


def test_a_prediction_in_memory_is_staged_in_a_folder_of_its_own_and_nothing_is_left(tmp_path):
    """The dashboard wrote probability.tif and summary.json into one folder per prediction, shared by
    every session: two uploads of one prediction at two thresholds could give one asset the other's
    threshold, or a half-written file."""
    from testdata import write_raster

    tif = write_raster(tmp_path / "p.tif", np.arange(64, dtype=np.uint8).reshape(8, 8), crs="EPSG:32631").read_bytes()
    work, storage, ingested = tmp_path / "work", FakeStorage(), []

    def ingest(request_id, manifest, allow_overwrite):
        ingested.append(manifest)
        return {"id": f"T{len(ingested)}"}

    for threshold, name in ((0.4, "low"), (0.6, "high")):
        cfg = U.UploadConfig(gcs_uri=f"gs://crop-bucket/{name}.tif", asset_id=name)
        assert U.upload_prediction_bytes(tif, {"threshold": threshold, "crop_fraction": threshold / 2}, cfg, storage,
                                         work, project="p", ingest=ingest) == (f"T{len(ingested)}", f"projects/p/assets/{name}")
    assert [m["properties"]["threshold"] for m in ingested] == [0.4, 0.6]
    assert [m["properties"]["crop_fraction"] for m in ingested] == [0.2, 0.3]
    assert storage.uploaded["gs://crop-bucket/high.tif"] == tif and not list(work.iterdir())
    # refused (a file with no CRS): nothing uploaded, nothing left behind
    flat = write_raster(tmp_path / "flat.tif", np.zeros((8, 8), np.uint8)).read_bytes()
    with pytest.raises(ConfigError, match="has no CRS"):
        U.upload_prediction_bytes(flat, {}, U.UploadConfig("gs://crop-bucket/x.tif", "x"), storage, work, ingest=ingest)
    assert len(ingested) == 2 and "gs://crop-bucket/x.tif" not in storage.uploaded and not list(work.iterdir())


def test_an_object_already_in_cloud_storage_is_replaced_only_when_asked(tmp_path):
    """The upload replaced whatever was at the path typed; "Replace" spoke only of the asset."""
    from core.errors import OutputExistsError

    cog = tmp_path / "prediction.tif"
    cog.write_bytes(b"II*\x00new")
    storage, ingested = FakeStorage(), []
    uri = "gs://crop-bucket/predictions/prediction.tif"
    storage.uploaded[uri] = b"II*\x00someone's map"
    cfg = U.UploadConfig(gcs_uri=uri, asset_id="projects/p/assets/x")
    with pytest.raises(OutputExistsError, match=f"^{uri} already exists in Cloud Storage; choose another path, or replace"):
        U.upload_prediction_cog(cog, cfg, storage, ingest=lambda *a: ingested.append(a) or {"id": "T"})
    assert storage.uploaded[uri] == b"II*\x00someone's map" and ingested == []  # kept, and nothing ingested
    U.upload_prediction_cog(cog, replace(cfg, overwrite=True), storage, ingest=lambda *a: ingested.append(a) or {"id": "T"})
    assert storage.uploaded[uri] == b"II*\x00new" and ingested[0][2] is True


def test_only_a_refused_ingestion_is_started_again():
    """ee.data.startIngestion does not send its request id to Earth Engine, so a start whose answer was
    lost (a server or network failure) may have started a task: starting it again made a second
    ingestion of the asset, and the page followed the one that failed. Only a refusal (quota: nothing
    started) is retried, and no request id is given, so the ee client does not retry on its own."""
    import ee

    from core.ee.errors import EEQuotaError, EEServerError, RetryPolicy

    manifest = U.image_manifest("projects/p/assets/x", ["gs://bkt/a.tif"])
    calls = []

    def failing_once(message):
        def ingest(rid, m, o):
            calls.append(rid)
            if len(calls) == 1:
                raise ee.EEException(message)
            return {"id": "T9"}
        return ingest

    assert U.start_ingestion(manifest, ingest=failing_once("Too many requests: quota exceeded"), sleep=lambda s: None) == "T9"
    assert calls == ["", ""]
    calls.clear()
    with pytest.raises(EEServerError, match="may have started anyway: check the task list") as info:
        U.start_ingestion(manifest, ingest=failing_once("An internal error has occurred (request: 1234)."),
                          retry=RetryPolicy(attempts=3), sleep=lambda s: None)
    assert len(calls) == 1 and "projects/p/assets/x" in str(info.value)
    assert not isinstance(info.value, EEQuotaError)
    calls.clear()
    with pytest.raises(EEQuotaError, match="failed 2 times"):
        U.start_ingestion(manifest, ingest=lambda *a: calls.append(a) or (_ for _ in ()).throw(ee.EEException("quota exceeded")),
                          retry=RetryPolicy(attempts=2), sleep=lambda s: None)
    assert len(calls) == 2
    # a mistake is not retried
    calls.clear()
    with pytest.raises(EarthEngineError):
        U.start_ingestion(manifest, ingest=lambda *a: calls.append(a) or (_ for _ in ()).throw(
            ee.EEException("Asset projects/p/assets/x already exists.")), sleep=lambda s: None)
    assert len(calls) == 1


def test_an_existing_asset_is_refused_before_anything_is_uploaded(tmp_path, assets):
    """The ingestion refused an existing asset only after the file was uploaded; a retry under another
    asset id then met that file ("already exists")."""
    from core.errors import OutputExistsError

    cog = tmp_path / "probability.tif"
    cog.write_bytes(b"II*\x00fake")
    storage, ingested = FakeStorage(), []
    assets.existing["projects/p/assets/camana"] = image_asset(-72.8, -16.7, -72.6, -16.5)
    cfg = U.UploadConfig("gs://crop-bucket/pred/", "camana")
    with pytest.raises(OutputExistsError, match="^the asset projects/p/assets/camana already exists; give another asset id"):
        U.upload_prediction_cog(cog, cfg, storage, project="p", ingest=lambda *a: ingested.append(a) or {"id": "T"})
    assert storage.uploaded == {} and ingested == [] and assets.asked == ["projects/p/assets/camana"]
    # another id goes ahead; replacing is asked for: not looked up, and the ingestion may overwrite
    assert U.upload_prediction_cog(cog, replace(cfg, asset_id="camana2"), storage, project="p",
                                   ingest=lambda *a: ingested.append(a) or {"id": "T"}) == "T"
    assert U.upload_prediction_cog(cog, replace(cfg, overwrite=True), storage, project="p",
                                   ingest=lambda *a: ingested.append(a) or {"id": "T"}) == "T"
    assert list(storage.uploaded) == ["gs://crop-bucket/pred/camana2.tif", "gs://crop-bucket/pred/camana.tif"]
    assert [a[2] for a in ingested] == [False, True] and len(assets.asked) == 2


def test_an_asset_that_cannot_be_looked_up_stops_the_upload(tmp_path, assets):
    """A refusal other than "not found" (no access to the project) is not taken for a free asset id."""
    import ee

    from core.ee.errors import EEPermissionError

    def refused(name):
        raise ee.EEException("Permission denied on projects/other/assets/x")

    cog = tmp_path / "probability.tif"
    cog.write_bytes(b"II*\x00fake")
    storage = FakeStorage()
    with pytest.raises(EEPermissionError):
        U.upload_prediction_cog(cog, U.UploadConfig("gs://crop-bucket/p.tif", "projects/other/assets/x"), storage,
                                ingest=lambda *a: {"id": "T"}, get_asset=refused)
    assert storage.uploaded == {}


def test_ingest_manifest_is_accepted_by_ee_converter():
    from ee import _cloud_api_utils

    m = U.image_manifest("projects/p/assets/x", ["gs://bkt/a.tif"], dates=("2005-01-01", "2006-12-31"))
    converted = _cloud_api_utils.convert_params_to_image_manifest(m)
    assert converted["name"] == "projects/p/assets/x"
    # the imagery's days: from the first day's start to the last day's end
    assert (converted["startTime"], converted["endTime"]) == ("2005-01-01T00:00:00Z", "2007-01-01T00:00:00Z")
    assert "startTime" not in U.image_manifest("projects/p/assets/x", ["gs://bkt/a.tif"])


def test_a_predictions_summary_gives_the_asset_its_properties_and_dates(tmp_path):
    """The summary beside probability.tif: threshold, crop fraction and the imagery's days reach the
    ingestion; days out of order are left out, not sent."""
    from testdata import write_raster

    folder = tmp_path / "prediction"
    folder.mkdir()
    write_raster(folder / "probability.tif", np.array([[0, 40], [100, 255]], np.uint8), crs="EPSG:32631", nodata=255)
    manifests = []
    cfg = U.UploadConfig("gs://crop-bucket/pred/", "projects/p/assets/camana")
    for dates, start in ((["2005-01-01", "2006-12-31"], "2005-01-01T00:00:00Z"), (["2006-12-31", "2005-01-01"], None)):
        (folder / "summary.json").write_text(json.dumps({"threshold": 0.5, "crop_fraction": 0.25, "dates": dates}))
        task, asset = U.upload_prediction(folder, cfg, FakeStorage(),
                                          ingest=lambda request_id, manifest, *a, **kw: manifests.append(manifest) or {"id": "T"})
        assert (task, asset) == ("T", "projects/p/assets/camana")
        assert manifests[-1].get("startTime") == start
        assert manifests[-1]["properties"]["threshold"] == 0.5 and manifests[-1]["properties"]["crop_fraction"] == 0.25


def test_upload_tfrecord_with_mixer(tmp_path):
    from core import patches

    preds = [np.full((8, 8), v, np.float32) for v in (0.1, 0.9)]
    rec = tmp_path / "pred-00000.tfrecord.gz"
    assert U.write_prediction_tfrecord(preds, rec) == 2
    got = np.concatenate(list(patches.read_records(str(rec), [U.PREDICTION_BAND], (8, 8))))
    np.testing.assert_array_equal(got[..., 0], np.stack(preds))
    mixer = tmp_path / "image-mixer.json"
    mixer.write_text(json.dumps(patches.Mixer("EPSG:32718", (30, 0, 0, 0, -30, 0), (8, 8), 2, 2).to_json()))
    storage, ingested = FakeStorage(), []
    tid = U.upload_prediction_tfrecord([rec], mixer, U.UploadConfig("gs://bkt/run1", "projects/p/assets/pred"), storage,
                                       ingest=lambda rid, m, o: ingested.append(m) or {"id": "T2"})
    assert tid == "T2"
    assert ingested[0]["tilesets"][0]["sources"][0]["uris"] == ["gs://bkt/run1/pred-00000.tfrecord.gz", "gs://bkt/run1/image-mixer.json"]
    # percent with 255 where there is no data, as the COG and the asset's map layer (it said nothing of no data)
    assert ingested[0]["bands"][0]["missingData"] == {"values": [255]}
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="mixer"):
        U.upload_prediction_tfrecord([rec], bad, U.UploadConfig("gs://bkt/run1", "projects/p/assets/pred"), storage, ingest=lambda *a: {})


@pytest.mark.parametrize("uri", ["gs://crop-bucket/", "gs://crop-bucket"])
def test_upload_to_a_bucket_root(tmp_path, uri):
    """A bucket given alone (the folder is its root) was refused as 'not a Cloud Storage URI'."""
    cog = tmp_path / "probability.tif"
    cog.write_bytes(b"II*\x00fake")
    storage = FakeStorage()
    cfg = U.UploadConfig(gcs_uri=uri, asset_id="projects/p/assets/x")
    assert U.upload_prediction_cog(cog, cfg, storage, ingest=lambda *a: {"id": "T"}) == "T"
    assert list(storage.uploaded) == ["gs://crop-bucket/x.tif"]
    with pytest.raises(ConfigError, match="'Crop_Bucket' is not a Cloud Storage bucket name: bucket names have no capital"):
        U.UploadConfig("gs://Crop_Bucket/", "projects/p/assets/a")
    with pytest.raises(ConfigError, match="'b' is not a Cloud Storage bucket name"):  # (was: "not a Cloud Storage URI")
        U.UploadConfig("gs://b/x.tif", "projects/p/assets/a")
    # Cloud Storage's naming rules, as exports check them (it passed, and the upload failed later)
    with pytest.raises(ConfigError, match="'goog-crops' is not a Cloud Storage bucket name: Cloud Storage refuses"):
        U.UploadConfig("gs://goog-crops/x.tif", "projects/p/assets/a")


def test_upload_validation(tmp_path):
    with pytest.raises(ConfigError):
        U.UploadConfig("s3://x/y", "projects/p/assets/a")
    # refused before the upload (the ingestion failed after the file was copied)
    with pytest.raises(ConfigError, match="pyramiding must be MEAN"):
        U.UploadConfig("gs://crop-bucket/p.tif", "projects/p/assets/a", pyramiding="AVG")
    with pytest.raises(ConfigError, match="band name '1x' must be"):
        U.UploadConfig("gs://crop-bucket/p.tif", "projects/p/assets/a", band="1x")
    with pytest.raises(ConfigError, match="not a Cloud Storage URI"):
        U.parse_gs_uri("gs://crop-bucket/")  # a bucket, no file in it
    assert U.cog_uri("gs://b/p/x.tiff", "projects/p/assets/a") == "gs://b/p/x.tiff"
    assert U.cog_uri("gs://b/p/x.TIF", "projects/p/assets/a") == "gs://b/p/x.TIF"  # (was the folder x.TIF/)
    assert U.cog_uri("gs://b/p/", "projects/p/assets/a") == "gs://b/p/a.tif"
    with pytest.raises(ConfigError):
        U.asset_name("short")
    for bad in ("projects/p/assets/bad name", "projects/p/assets/a//b", "projects/p/assets/a/", "projects/p/assets/../x",
                "projects/P/assets/x", "projects/p/assets/"):
        with pytest.raises(ConfigError, match="is not a valid Earth Engine asset id: projects/PROJECT/assets/NAME"):
            U.asset_name(bad)
    # to view, any id with a slash is Earth Engine's to judge (catalog and community ids); a name is the project's
    for typed in ("ESA/WorldCover/v200", "projects/sat-io/open-datasets/ESA/WorldCover", "projects/p/assets/f/pred.v2"):
        assert U.viewed_asset(f" {typed} ", "p") == typed
    assert U.viewed_asset("camana_pred", "p") == "projects/p/assets/camana_pred"
    # a domain-scoped project, folders
    assert U.asset_name("projects/example.com:crops/assets/peru/camana_2005") == "projects/example.com:crops/assets/peru/camana_2005"
    with pytest.raises(InputNotFoundError):
        U.upload_file(tmp_path / "missing.tif", "gs://bkt/x.tif", FakeStorage())
    assert U.asset_name("users/me/pred") == "users/me/pred"


def test_manifest_name_is_a_cloud_asset_name():
    """ImageManifest.name must be projects/*/assets/** (the ee client converts only an 'id'): a legacy
    users/... id goes under projects/earthengine-legacy."""
    assert U.image_manifest(U.asset_name("users/me/pred"), ["gs://bkt/p.tif"])["name"] == \
        "projects/earthengine-legacy/assets/users/me/pred"
    assert U.image_manifest("projects/p/assets/a", ["gs://bkt/p.tif"])["name"] == "projects/p/assets/a"


def test_storage_client_finds_the_key_in_the_dashboards_secrets(monkeypatch):
    """Uploads use the same credentials as Earth Engine, including a key kept only in the secrets."""
    from google.auth.credentials import AnonymousCredentials

    from core.ee import auth

    seen = []

    class Found:
        credentials = AnonymousCredentials()

    monkeypatch.setattr(auth, "find_credentials", lambda secrets=None, **kw: seen.append(secrets) or Found())
    client = U.default_storage_client("p", secrets={"ee_service_account_json": "{}"})
    assert seen == [{"ee_service_account_json": "{}"}]
    assert client.project == "p"


class FailingStorage(FakeStorage):
    """Cloud Storage whose uploads raise ``failures`` (one per call) before succeeding."""

    def __init__(self, failures):
        super().__init__()
        self.failures = list(failures)
        self.calls = 0

    def bucket(self, name):
        real = super().bucket(name)
        storage = self

        class Bucket:
            def blob(self, path):
                blob = real.blob(path)
                upload = blob.upload_from_filename

                def failing(filename, **kwargs):
                    storage.calls += 1
                    if storage.failures:
                        raise storage.failures.pop(0)
                    upload(filename, **kwargs)

                blob.upload_from_filename = failing
                return blob

        return Bucket()


@pytest.mark.parametrize(
    "exc, cls, words",
    [
        (lambda: _gexc().Forbidden("x@y.iam does not have storage.objects.create access"), "EEPermissionError", "'crop-bucket'"),
        (lambda: _gexc().NotFound("The specified bucket does not exist."), "EEPermissionError", "bucket 'crop-bucket' was not found"),
        (lambda: _gexc().Unauthorized("Invalid Credentials"), "EENotConfiguredError", "earthengine authenticate"),
        (lambda: _gexc().BadRequest("Invalid argument"), "EarthEngineError", "HTTP 400"),
    ],
)
def test_upload_storage_refusals_are_project_errors(tmp_path, exc, cls, words):
    """A Cloud Storage refusal (google.api_core errors, with .code) ends as a project error naming the
    bucket, without retries (retrying a 403 or 404 cannot help)."""
    from core.ee import errors as E

    cog = tmp_path / "prediction.tif"
    cog.write_bytes(b"II*\x00fake")
    storage, sleeps = FailingStorage([exc(), exc(), exc()]), []
    with pytest.raises(EarthEngineError) as info:
        U.upload_file(cog, "gs://crop-bucket/predictions/prediction.tif", storage, sleep=sleeps.append)
    assert type(info.value) is getattr(E, cls, EarthEngineError)
    assert words in str(info.value) and "gs://crop-bucket/predictions/prediction.tif" in str(info.value)
    assert storage.calls == 1 and sleeps == [] and storage.uploaded == {}
    # the same through the whole upload + ingestion: nothing is ingested
    ingested = []
    with pytest.raises(EarthEngineError, match="crop-bucket"):
        U.upload_prediction_cog(cog, U.UploadConfig("gs://crop-bucket/p.tif", "projects/p/assets/x"),
                                FailingStorage([exc()]), ingest=lambda *a: ingested.append(a) or {"id": "T"})
    assert ingested == []


def _gexc():
    from google.api_core import exceptions

    return exceptions


def test_upload_retries_transient_storage_failures(tmp_path):
    """429, 5xx and dropped connections are retried with backoff; the upload then succeeds."""
    import requests

    cog = tmp_path / "prediction.tif"
    cog.write_bytes(b"II*\x00fake")
    g = _gexc()
    failures = [g.TooManyRequests("slow down"), g.ServiceUnavailable("backend"), g.InternalServerError("oops"),
                requests.exceptions.ConnectionError("Connection reset by peer")]
    storage, sleeps = FailingStorage(failures), []
    assert U.upload_file(cog, "gs://bkt/a.tif", storage, sleep=sleeps.append) == "gs://bkt/a.tif"
    assert storage.calls == 5 and len(sleeps) == 4
    assert storage.uploaded == {"gs://bkt/a.tif": b"II*\x00fake"}


def test_upload_certificate_failure_is_not_retried_as_a_network_failure(tmp_path):
    """A certificate that cannot be verified (a proxy that inspects TLS, a wrong clock) fails the same
    way every time: counted as a network failure it was retried with backoff and ended as "check the
    network connection". One try, and the certificate advice."""
    import ssl

    cog = tmp_path / "prediction.tif"
    cog.write_bytes(b"x")
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer certificate")
    storage, sleeps = FailingStorage([cert] * 3), []
    with pytest.raises(EarthEngineError, match="TLS certificate could not be verified") as info:
        U.upload_file(cog, "gs://bkt/a.tif", storage, sleep=sleeps.append)
    assert "network connection" not in str(info.value)
    assert storage.calls == 1 and sleeps == [] and storage.uploaded == {}


def test_upload_gives_up_on_persistent_server_errors(tmp_path):
    from core.ee.errors import EEServerError, RetryPolicy

    cog = tmp_path / "prediction.tif"
    cog.write_bytes(b"x")
    storage, sleeps = FailingStorage([_gexc().ServiceUnavailable("down")] * 3), []
    with pytest.raises(EEServerError, match="Cloud Storage server error .HTTP 503. uploading to gs://bkt/a.tif") as info:
        U.upload_file(cog, "gs://bkt/a.tif", storage, retry=RetryPolicy(attempts=3), sleep=sleeps.append)
    assert "failed 3 times" in str(info.value)
    assert storage.calls == 3 and len(sleeps) == 2


def test_upload_does_not_wrap_bugs(tmp_path):
    cog = tmp_path / "prediction.tif"
    cog.write_bytes(b"x")
    with pytest.raises(KeyError):
        U.upload_file(cog, "gs://bkt/a.tif", FailingStorage([KeyError("bug")]), sleep=lambda s: None)


def test_upload_tfrecord_bad_mixer_json_is_a_corrupt_file(tmp_path):
    from core.errors import CorruptFileError

    rec = tmp_path / "pred-00000.tfrecord.gz"
    rec.write_bytes(b"x")
    storage = FakeStorage()
    cfg = U.UploadConfig("gs://bkt/run1", "projects/p/assets/pred")
    for text in ('{"patchDimensions": [8, 8], "projection"', "\xff\xfe garbage", "[1, 2]"):
        mixer = tmp_path / "image-mixer.json"
        mixer.write_bytes(text.encode("latin-1"))
        with pytest.raises((CorruptFileError, ConfigError), match="mixer"):
            U.upload_prediction_tfrecord([rec], mixer, cfg, storage, ingest=lambda *a: {})
    mixer.write_text('{"patchDimensions": [8, 8], "projection"')
    with pytest.raises(CorruptFileError, match="not a readable JSON mixer"):
        U.upload_prediction_tfrecord([rec], mixer, cfg, storage, ingest=lambda *a: {})
    # a missing record is found before anything is uploaded
    mixer.write_text(json.dumps({"patchDimensions": [8, 8], "projection": {}}))
    with pytest.raises(InputNotFoundError, match="missing"):
        U.upload_prediction_tfrecord([rec, tmp_path / "missing.tfrecord.gz"], mixer, cfg, storage, ingest=lambda *a: {})
    assert storage.uploaded == {}


@pytest.mark.parametrize("dates", [("2006-12-31", "2005-01-01"), ("2005-13-01", "2006-01-01"), ("2005", None)])
def test_dates_that_are_not_two_days_in_order_are_refused(dates):
    with pytest.raises(ConfigError, match="are not a first and a last day"):
        U.image_manifest("projects/p/assets/x", ["gs://bkt/a.tif"], dates=dates)


# ------------------------------------------------------------------- task states (from mutation testing)

N = "projects/p/operations/X"


def test_a_task_named_twice_is_waited_for_once():
    """By id twice, or by id and by name: wait_for polled for ever (one final state short)."""
    c = FakeOps({"A": [op("A", "RUNNING"), op("A", "SUCCEEDED")]})
    ticks = iter(range(1000))  # (a clock that moves: a regression times out instead of hanging the suite)
    final = T.wait_for(["A", "A", "projects/p/operations/A"], c, sleep=lambda s: None, timeout=60,
                       clock=lambda: next(ticks))
    assert [f.id for f in final] == ["A"] and final[0].state == "COMPLETED"


def test_a_cancelling_task_is_active_and_an_unknown_state_is_not():
    c = FakeOps({"A": [op("A", "CANCELLING")], "B": [op("B", "SUCCEEDED")], "C": [op("C", "SOMETHING_NEW")]})
    assert [i.id for i in T.list_tasks(c, active_only=True)] == ["A"]
    infos = [T.task_info(op("A", "RUNNING")), T.task_info(op("B", "RUNNING")), T.task_info(op("C", "SOMETHING_NEW"))]
    assert T.summarize(infos) == {"RUNNING": 2, "UNKNOWN": 1}
    assert [r["active"] for r in T.task_rows(infos)] == [True, True, False]
    assert [T.state_label(s) for s in ("READY", "CANCEL_REQUESTED", "COMPLETED")] == ["waiting", "stopping", "done"]


def test_a_finished_operation_with_a_stale_state_is_failed_or_completed_by_its_error():
    assert T.task_info({"name": N, "done": True, "metadata": {"state": "RUNNING"}, "error": {"message": "boom"}}).state == "FAILED"
    assert T.task_info({"name": N, "done": True, "metadata": {"state": "RUNNING"}}).state == "COMPLETED"
    assert T.task_info({"name": N, "metadata": {"state": "FAILED"}, "error": {"message": "boom"}}).error_message == "boom"
    assert T.task_info({"name": N, "metadata": {"state": "RUNNING"}, "error": {"message": "transient"}}).error_message == ""
    info = T.task_info({"name": N, "done": True, "metadata": {"state": "FAILED", "description": "d"},
                        "error": {"message": "Request size exceeds the limit."}})
    assert T.failure_message(info).endswith("limit; split the export into more tasks or a smaller region")


def test_a_failed_task_without_a_message_still_fails_the_wait():
    c = FakeOps({"A": [op("A", "RUNNING"), op("A", "FAILED")]})
    with pytest.raises(EETaskFailedError, match="no error message"):
        T.wait_for(["A"], c, sleep=lambda s: None)


def test_a_task_id_matches_the_whole_last_part_of_its_name():
    c = FakeOps({"BA": [op("BA", "RUNNING")], "A": [op("A", "SUCCEEDED")]})
    assert T.get_task("A", c).state == "COMPLETED"
    assert T.ingestion_note([{"id": "BA", "state": "FAILED", "failure": "x"}], "A", "users/u/a") is None


def test_a_wait_with_no_time_left_says_so_without_sleeping():
    c = FakeOps({"B": [op("B", "RUNNING")]})
    with pytest.raises(EarthEngineError, match="still running"):
        T.wait_for(["B"], c, timeout=0, sleep=lambda s: pytest.fail("slept"), clock=lambda: 0.0)


def test_a_poll_that_fails_once_is_retried_with_the_given_pace():
    from core.ee.errors import RetryPolicy
    from fake_ee_ops import http_error

    class Flaky(FakeOps):
        calls = 0

        def get_operation(self, name):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise http_error(503, "unavailable")
            return super().get_operation(name)

    sleeps = []
    T.wait_for(["A"], Flaky({"A": [op("A", "SUCCEEDED")]}), sleep=sleeps.append,
               retry=RetryPolicy(attempts=3, base_delay=0.25, jitter=0.0))
    assert sleeps == [0.25]


def test_a_refused_cancel_is_a_permission_error():
    import ee

    from core.ee.errors import EEPermissionError

    class Refusing(FakeOps):
        def cancel_operation(self, name):
            raise ee.EEException("Permission denied: the caller does not have permission")

    with pytest.raises(EEPermissionError):
        T.cancel_task("A", Refusing({"A": [op("A", "RUNNING")]}))


@pytest.mark.parametrize("uri, said", [
    ("gs://crop-bucket/x.jpg", "names a .jpg file; the prediction goes up as a GeoTIFF"),
    ("gs://crop-bucket/run/pred.tif.gz", "names a .gz file"),
])
def test_an_upload_to_a_file_that_is_not_a_geotiff_is_refused(uri, said):
    """gs://bucket/x.jpg was taken for a folder: the prediction went to gs://bucket/x.jpg/NAME.tif."""
    with pytest.raises(ConfigError, match=said):
        U.UploadConfig(uri, "projects/p/assets/a")
    for fine in ("gs://crop-bucket/run.v2/", "gs://crop-bucket/run/pred.TIFF", "gs://crop-bucket/run"):
        U.UploadConfig(fine, "projects/p/assets/a")


@pytest.mark.parametrize("asset", ["bad asset!!", "projects/p/assets/bad name", "folder//name"])
def test_a_malformed_asset_id_is_refused_before_earth_engine_is_reached(asset):
    """It was refused only after Earth Engine had been initialised (offline: a credentials error said instead)."""
    with pytest.raises(ConfigError, match="is not a valid Earth Engine asset id"):
        U.UploadConfig("gs://crop-bucket/run/", asset)
    U.UploadConfig("gs://crop-bucket/run/", "crops/camana_2005")  # a short id: its project comes with Earth Engine


def test_cloud_storage_names_over_their_length_are_refused_before_anything_is_sent():
    """Cloud Storage names are at most 1,024 bytes: a 2,000-letter folder went on to "ingestion started" (and an
    export's, to a task that would fail)."""
    from core.ee.export import Destination

    with pytest.raises(ConfigError, match="the Cloud Storage path is 2,004 bytes long; Cloud Storage names are at most"):
        U.UploadConfig("gs://crop-bucket/" + "p" * 2000 + ".tif", "projects/p/assets/a")
    with pytest.raises(ConfigError, match="the prefix is 2,000 bytes long; Cloud Storage names are at most 1,024"):
        Destination("gcs", "crop-bucket", "p" * 2000)
    Destination("gcs", "crop-bucket", "p" * 800)  # (room left for the export's name and its files')
    U.UploadConfig("gs://crop-bucket/" + "p" * 890 + "/", "projects/p/assets/a")
