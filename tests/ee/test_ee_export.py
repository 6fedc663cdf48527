"""Export task configurations (inspected, never started) and EE-layout TFRecords read by core."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from core.ee import export as X
from core.ee.presets import CAMANA
from core.errors import ConfigError, EarthEngineError
from graph_walk import arguments_of, constants

DEST = X.Destination("gcs", bucket="crop-bucket", prefix="camana")


def config_view(task, graph) -> dict:
    """A task's request without starting it: options as sent, expression as its graph."""
    cfg = dict(task.config)
    expr = cfg.pop("expression")
    return {"task_type": str(task.task_type), "state": str(task.state), "config": cfg, "expression": graph(expr)}


def test_training_jobs_batching_and_selectors(ee_offline, graph, golden):
    jobs = X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, DEST, name="camana")
    train = [j for j in jobs if j.split == "train"]
    test = [j for j in jobs if j.split == "test"]
    assert [j.points for j in train] == [100, 100, 100, 100, 100, 50]  # 275 + 275
    assert [j.points for j in test] == [100]  # 50 + 50
    for j in jobs:
        cfg = j.task.config
        assert j.task.state.name == "UNSUBMITTED" and j.task.id is None
        opts = cfg["fileExportOptions"]
        assert opts["fileFormat"] == "TF_RECORD_TABLE"
        assert opts["cloudStorageDestination"] == {"bucket": "crop-bucket", "filenamePrefix": f"camana/camana/{j.split}_{j.index:03d}"}
        assert cfg["selectors"] == ["R", "G", "B", "NIR", "NDVI", "crop"]
        assert cfg["description"] == f"camana_{j.split}_{j.index:03d}"
    golden("export_training_first_task", config_view(train[0].task, graph))
    text = json.dumps(graph(train[0].task.config["expression"]))
    for fn in ("Image.neighborhoodToArray", "Kernel.fixed", "Image.sampleRegions", "Image.stratifiedSample",
               "Collection.randomColumn", "List.slice"):
        assert fn in text
    assert '"EPSG:32718"' in text and "[275, 275]" not in text  # train+test drawn together: 325 per class
    assert "325" in text
    # each class sorted by the random column to split it, then both together: tasks mix the classes
    assert text.count('"Collection.limit"') == 3
    # the last task takes the last 50 points (500 to 550), not an empty slice past the end
    (last,) = arguments_of(graph(train[-1].task.config["expression"]), "List.slice")
    assert constants(last["start"]) == [500] and constants(last["end"]) == [550]
    # one task per split at least, whatever the points per task
    assert X.check_task_count(X.SampleConfig((1, 0), (1, 0)), X.PatchExportConfig(points_per_task=100)) == 2


def test_a_training_export_of_more_tasks_than_earth_engine_queues_is_refused(ee_offline):
    # 1,500 + 1,501 points per split at one per task: 3,001 tasks, one over Earth Engine's pending-task limit
    many = X.SampleConfig(train_points=(750, 750), test_points=(750, 751))
    one_each = X.PatchExportConfig(points_per_task=1)
    with pytest.raises(ConfigError) as info:
        X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, DEST, sample=many, patches=one_each)
    said = str(info.value)
    assert "3,001 export tasks" in said and "at most 3,000 pending tasks" in said and "2 or more points per task" in said
    # the advice holds: two per task make 750 + 751 tasks
    assert len(X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, DEST, sample=many,
                                      patches=X.PatchExportConfig(points_per_task=2))) == 1501
    # counts no task could carry: only fewer points help (quickly: nothing is built first)
    huge = X.SampleConfig(train_points=(10**11, 10**11))
    with pytest.raises(ConfigError, match=r"pending tasks per project: ask for fewer points$"):
        X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, DEST, sample=huge)


def test_patch_globs_name_the_files_training_reads(ee_offline):
    jobs = X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, DEST, name="camana")
    globs = X.patch_globs(jobs)
    assert globs == {"train": "gs://crop-bucket/camana/camana/train_*.tfrecord.gz",
                     "test": "gs://crop-bucket/camana/camana/test_*.tfrecord.gz"}
    from core.patchset import is_patch_source

    assert all(is_patch_source(g) for g in globs.values())
    # every task's files match its split's glob (Earth Engine appends .tfrecord.gz to the prefix)
    import fnmatch

    for j in jobs:
        assert fnmatch.fnmatch(j.uri_prefix + ".tfrecord.gz", globs[j.split])
    drive = X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, X.Destination("drive", prefix="f"),
                                   name="c", sample=X.SampleConfig((2, 2), (1, 1)))
    assert X.patch_globs(drive) is None
    no_test = X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, DEST, name="c",
                                     sample=X.SampleConfig((2, 2), (0, 0)))
    assert X.patch_globs(no_test) is None


@pytest.mark.parametrize("name", ["", "my crops", "a/b", "../up", "crops*", ".hidden", "x" * 81])
def test_export_name_with_odd_characters_is_refused(ee_offline, name):
    """The name is a folder under the prefix and part of the globs training reads: an empty one gave
    'prefix//train_000', a space, '/' or '*' another folder or a glob matching other files."""
    with pytest.raises(ConfigError, match="export name"):
        X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, DEST, name=name)
    with pytest.raises(ConfigError, match="export name"):
        X.image_export_job(CAMANA.composite, CAMANA.geojson, DEST, name=name)
    assert X.check_export_name("camana_2005-v1.2") == "camana_2005-v1.2"


def test_an_image_export_over_its_max_pixels_is_refused_before_it_starts(ee_offline):
    """A 12 x 10 degree box of Sentinel-2 at 10 m (1.17e10 px) was planned and would have been submitted,
    for Earth Engine to fail it later ("Export too large"): the task's maxPixels cannot be raised here."""
    from dataclasses import replace

    from core.ee.composites import CompositeConfig

    box = {"type": "Polygon", "coordinates": [[[-10, 40], [2, 40], [2, 50], [-10, 50], [-10, 40]]]}
    s2 = CompositeConfig(sensor="S2", start="2021-06-01", end="2021-08-31")
    with pytest.raises(ConfigError, match=r"^the export would be 102,656 x 113,664 px \(1.17e\+10\), more than the "
                                          r"1e\+10 px an export task may write \(maxPixels\)"):
        X.image_export_job(s2, box, DEST, name="big")
    job = X.image_export_job(replace(s2, scale=30.0), box, DEST, name="big")  # (at 30 m: 1.3e9 px)
    assert job.grid.width * job.grid.height < X.MAX_PIXELS


def test_sampling_is_balanced_and_disjoint(ee_offline, graph):
    pts = X.sample_points(CAMANA.composite, CAMANA.labels, CAMANA.geojson, X.SampleConfig((275, 275), (50, 50), seed=3))
    train, test = graph(pts["train"]), graph(pts["test"])
    c = constants(train)
    assert [325, 325] in c and [0, 1] in c and 3 in c  # train + test per class, classes 0/1, seed
    # sampled on Landsat's own pixels (corners at 15 m + multiples of 30 m in EPSG:32618, USGS's grid
    # for Landsat south of the equator too: northings at 25 m + multiples of 30 m in EPSG:32718), as
    # downloads and image exports
    assert "EPSG:32718" in c and [30.0, 0, 15.0, 0, -30.0, 25.0] in c
    # test = first 50 of each class, train = the next 275 (toList(count, offset)): disjoint
    t = json.dumps(train)
    assert t.count('"Collection.toList"') == 2 and '"constantValue": 275' in t and '"constantValue": 50' in t
    assert json.dumps(test).count('"Collection.toList"') == 2
    pairs = {split: sorted((a["count"]["constantValue"], a["offset"]["constantValue"])
                           for a in arguments_of(graph(pts[split]), "Collection.toList")) for split in pts}
    assert pairs == {"test": [(50, 0), (50, 0)], "train": [(275, 50), (275, 50)]}  # (count, offset) per class
    # each class's own counts, not the other's (the default's equal counts hide a swap)
    from core.labels import CROP, NOT_CROP

    assert X.SampleConfig((10, 20), (1, 2)).per_class == ((NOT_CROP, 10, 1), (CROP, 20, 2))


def test_a_region_short_of_points_is_refused_before_any_export_starts(ee_offline, graph):
    """Earth Engine's stratifiedSample takes every pixel of a class that has fewer than asked for: the
    export would hold fewer, unbalanced patches (and its last tasks none). One getInfo of the same
    sample's class histogram says so first."""
    from core.errors import NoDataError

    asked = []

    def getinfo(histogram):
        asked.append(graph(histogram))
        return answer

    answer = {"0": 325, "1": 325}
    sample = X.SampleConfig((275, 275), (50, 50), seed=3)
    assert X.check_sample_points(CAMANA.composite, CAMANA.labels, CAMANA.geojson, sample, getinfo) == \
        {"not crop": 325, "crop": 325}
    text = json.dumps(asked[0])
    assert "AggregateFeatureCollection.histogram" in text and "Image.stratifiedSample" in text and [325, 325] in constants(asked[0])
    answer = {"0": 900, "1": 40}
    with pytest.raises(NoDataError, match=r"only 40 crop point\(s\) of the 325 asked for \(275 train \+ 50 test\)"):
        X.check_sample_points(CAMANA.composite, CAMANA.labels, CAMANA.geojson, sample, getinfo)
    answer = {"0": 300, "1": 300}  # enough for training alone, not for its test points too
    with pytest.raises(NoDataError, match=r"only 300 not crop point\(s\) of the 325"):
        X.check_sample_points(CAMANA.composite, CAMANA.labels, CAMANA.geojson, sample, getinfo)
    answer = {"1": 400}  # (no not-crop pixel at all)
    with pytest.raises(NoDataError, match="only 0 not crop point"):
        X.check_sample_points(CAMANA.composite, CAMANA.labels, CAMANA.geojson, sample, getinfo)
    assert len(asked) == 4  # one request each
    # the count too much for an interactive request (a region large enough for a batch export): it blocked every
    # export of such a region; the export goes on unchecked, said (None)
    import ee

    for text in ("Computation timed out.", "User memory limit exceeded."):
        def too_much(histogram, text=text):
            raise ee.EEException(text)

        assert X.check_sample_points(CAMANA.composite, CAMANA.labels, CAMANA.geojson, sample, too_much) is None


def test_patch_kernel(ee_offline, graph):
    cfg = X.PatchExportConfig(patch_size=128, kernel_buffer=32)
    assert cfg.full_size == 192
    g = graph(X.patch_image(CAMANA.composite, CAMANA.labels, CAMANA.geojson, cfg))
    assert constants(g).count(192) >= 4  # x, y and both List.repeat counts of the fixed kernel
    assert "Image.neighborhoodToArray" in json.dumps(g)


def test_patch_labels_are_no_data_where_the_composite_is_masked(ee_offline, graph):
    # Patches store masked composite pixels as 0: their labels must say no data, or training
    # would learn clouds and scene gaps as crop / not crop at zero reflectance.
    g = graph(X.imaged_label(CAMANA.composite, CAMANA.labels, CAMANA.geojson))
    text = json.dumps(g)
    for fn in ("Image.mask", "Reducer.min", "Image.where", "Image.not"):
        assert f'"{fn}"' in text, fn
    assert 255 in constants(g)
    # the same label feeds the stratified points (patch centres) and the patch arrays
    pts = json.dumps(graph(X.sample_points(CAMANA.composite, CAMANA.labels, CAMANA.geojson)["train"]))
    arrays = json.dumps(graph(X.patch_image(CAMANA.composite, CAMANA.labels, CAMANA.geojson, X.PatchExportConfig())))
    assert '"Image.mask"' in pts and '"Image.where"' in pts
    assert '"Image.mask"' in arrays and '"Image.where"' in arrays


@pytest.mark.parametrize("sensor, scale, reducers", [
    ("L8", None, {"Reducer.mode"}),  # 10 m WorldCover on Landsat's 30 m patches
    ("S2", None, set()),  # all on 10 m
    ("S2", 30, {"Reducer.mode", "Reducer.mean"}),  # Sentinel-2 on 30 m patches: its reflectance averaged too
])
def test_patches_on_a_coarser_grid_are_aggregated(ee_offline, graph, sensor, scale, reducers):
    """On patches coarser than the sources' pixels, each label pixel is the most frequent class under it
    and the reflectance their mean, in the points, the patch arrays and the image export alike."""
    from core.ee.composites import CompositeConfig
    from core.ee.labels import LabelConfig

    comp = CompositeConfig(sensor=sensor, start="2021-01-01", end="2021-12-31", scale=scale)
    labels = LabelConfig("worldcover")
    exprs = {"points": X.sample_points(comp, labels, CAMANA.geojson)["train"],
             "patches": X.patch_image(comp, labels, CAMANA.geojson, X.PatchExportConfig()),
             "image": X.features_image(comp, CAMANA.geojson)}
    for what, expr in exprs.items():
        found = {a["reducer"]["functionInvocationValue"]["functionName"]
                 for a in arguments_of(graph(expr), "Image.reduceResolution")}
        assert found == (reducers - {"Reducer.mode"} if what == "image" else reducers), what


def test_image_export_for_prediction(ee_offline, graph, golden):
    job = X.image_export_job(CAMANA.composite, CAMANA.geojson, DEST, name="camana",
                             image_cfg=X.ImageExportConfig(patch_size=256, kernel_buffer=32, max_file_mb=100))
    cfg = job.task.config
    opts = cfg["fileExportOptions"]
    assert opts["fileFormat"] == "TF_RECORD_IMAGE"
    assert opts["tfRecordOptions"]["tileDimensions"] == {"width": 256, "height": 256}
    assert opts["tfRecordOptions"]["marginDimensions"] == {"width": 64, "height": 64}  # kernelSize = 2 x buffer
    assert opts["tfRecordOptions"]["compress"] is True
    assert opts["cloudStorageDestination"]["filenamePrefix"] == "camana/camana/image"
    assert cfg["maxPixels"] == {"value": "10000000000"}
    golden("export_image_camana", config_view(job.task, graph))
    # exactly the grid of whole patches: reprojected onto its transform, clipped to its W x H pixels
    g = graph(cfg["expression"])
    grid = job.grid
    (reproject,) = arguments_of(g, "Image.reproject")
    assert reproject["crsTransform"]["constantValue"] == list(grid.transform)
    assert "EPSG:32718" in constants(g) and grid.transform[0] == 30.0
    (rect,) = arguments_of(g, "GeometryConstructors.Rectangle")
    assert rect["coordinates"]["constantValue"] == [0, 0, grid.width, grid.height]
    assert len(arguments_of(g, "Image.clipToBoundsAndScale")) == 1


def test_image_export_grid_holds_the_region_in_whole_patches(ee_offline):
    # Earth Engine drops the border patches that do not fit whole: the grid is grown to whole patches
    from rasterio.warp import transform_bounds

    from core.ee.composites import geojson_bounds

    grid = X.image_export_job(CAMANA.composite, CAMANA.geojson, DEST, name="c",
                              image_cfg=X.ImageExportConfig(kernel_buffer=32)).grid
    assert grid.crs == "EPSG:32718" and grid.width % 256 == 0 and grid.height % 256 == 0
    # the region's box with the kernel buffer's 32 px of real context on every side (outside the export's
    # rectangle Earth Engine has no data: its edges would have been predicted with zeros around them)
    assert (grid.region_col, grid.region_row) == (32, 32)
    assert 0 <= grid.width - grid.region_width - 64 < 256 and 0 <= grid.height - grid.region_height - 64 < 256
    # Camana at 30 m: about 395 x 286 px, of which one 256 px patch (all that an export of the region's box
    # keeps) covers 58 %; four patches cover it and its context
    assert 256 < grid.region_width < 512 and 256 < grid.region_height < 512 and (grid.width, grid.height) == (512, 512)
    a, _, x0, _, e, y0 = grid.transform
    west, south, east, north = transform_bounds("EPSG:4326", grid.crs, *geojson_bounds(CAMANA.geojson), densify_pts=21)
    x1, y1 = x0 + 32 * a, y0 + 32 * e  # the box's corner
    assert x1 <= west < x1 + a and north <= y1 < north + a and x0 + grid.width * a >= east + 32 * a
    assert y0 + grid.height * e <= south - 32 * a
    assert x1 + grid.region_width * a >= east and x1 + (grid.region_width - 1) * a < east
    # on the same pixels as without the margin
    plain = X.image_export_job(CAMANA.composite, CAMANA.geojson, DEST, name="c",
                               image_cfg=X.ImageExportConfig(kernel_buffer=0)).grid
    assert plain.transform[2::3] == (x1, y1) and (plain.region_col, plain.region_width) == (0, grid.region_width)
    # a box of exactly two patches is not grown; a metre more takes a third
    w, s = 736920.0, 8150730.0
    exact = X.patch_grid((w, s, w + 2 * 7680, s + 7680), 30.0, "EPSG:32718", 256)
    assert (exact.width, exact.height) == (512, 256) == (exact.region_width, exact.region_height)
    assert exact.transform == (30.0, 0.0, w, 0.0, -30.0, s + 7680) and exact.dimensions == "512x256"
    wider = X.patch_grid((w, s, w + 2 * 7680 + 1, s + 7680), 30.0, "EPSG:32718", 256)
    assert (wider.region_width, wider.width, wider.height) == (513, 768, 256)


def test_drive_destination(ee_offline):
    dest = X.Destination("drive", prefix="crop_exports")
    jobs = X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, dest, name="c",
                                  sample=X.SampleConfig((10, 10), (5, 5)), patches=X.PatchExportConfig(points_per_task=8))
    assert [j.points for j in jobs] == [8, 8, 4, 8, 2]
    opts = jobs[0].task.config["fileExportOptions"]
    assert opts["driveDestination"] == {"folder": "crop_exports", "filenamePrefix": "c_train_000"}  # the name kept
    assert jobs[0].uri_prefix == "drive:crop_exports/c_train_000"
    img = X.image_export_job(CAMANA.composite, CAMANA.geojson, dest, name="c", image_cfg=X.ImageExportConfig(kernel_buffer=0))
    assert "marginDimensions" not in img.task.config["fileExportOptions"]["tfRecordOptions"]
    # the files where the job says they are (the prefix Drive is given is the one reported)
    assert img.task.config["fileExportOptions"]["driveDestination"] == {"folder": "crop_exports", "filenamePrefix": "c_image"}
    assert img.uri_prefix == "drive:crop_exports/c_image"


def test_an_image_export_of_some_bands_exports_those(ee_offline, graph):
    job = X.image_export_job(CAMANA.composite, CAMANA.geojson, DEST, name="c",
                             image_cfg=X.ImageExportConfig(bands=("R", "NIR")))
    from graph_walk import resolved

    g = graph(job.task.config["expression"])
    chosen = [[resolved(g, v).get("constantValue") for v in a["bandSelectors"]["arrayValue"]["values"]]
              for a in arguments_of(g, "Image.select") if "arrayValue" in a["bandSelectors"]]
    assert ["R", "NIR"] in chosen


def test_start_tasks_patched(ee_offline, monkeypatch):
    sent = []

    def export_table(request_id, params):
        sent.append((request_id, params))
        if len(sent) == 1:
            from fake_ee_ops import http_error

            raise http_error(503, "backend unavailable")
        return {"name": f"projects/p/operations/{request_id}"}

    monkeypatch.setattr(ee_offline.data, "exportTable", export_table)
    jobs = X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, DEST, name="s",
                                  sample=X.SampleConfig((3, 3), (0, 0)), patches=X.PatchExportConfig(points_per_task=6))
    sleeps = []
    ids = X.start_tasks(jobs, sleep=sleeps.append)
    assert len(ids) == 1 and len(sent) == 2 and len(sleeps) == 1
    assert sent[0][0] == sent[1][0]  # the same request id on retry: idempotent
    # retries run out on server failures: the task may exist all the same, so the error says to look before a
    # second start (it said "retrying usually helps", and a repeat could start the export twice)
    def failing(request_id, params):
        raise ee_offline.EEException("An internal error has occurred")

    monkeypatch.setattr(ee_offline.data, "exportTable", failing)
    jobs = X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, DEST, name="s",
                                  sample=X.SampleConfig((3, 3), (0, 0)), patches=X.PatchExportConfig(points_per_task=6))
    from core.ee.errors import EEServerError

    with pytest.raises(EEServerError, match=r"the export s_train_000 may have started anyway: check the task list") as info:
        X.start_jobs(jobs, sleep=sleeps.append)
    assert "already started" not in str(info.value)  # the first: none started before it
    # several: started in order, their ids in that order; a later one refused names those running
    answers = iter(["A", "B", "refuse"])

    def in_turn(request_id, params):
        answer = next(answers)
        if answer == "refuse":
            raise ee_offline.EEException("Permission denied on bucket crop-bucket")
        return {"name": f"projects/p/operations/{answer}"}

    monkeypatch.setattr(ee_offline.data, "exportTable", in_turn)
    many = X.training_export_jobs(CAMANA.composite, CAMANA.labels, CAMANA.geojson, DEST, name="m",
                                  sample=X.SampleConfig((6, 6), (3, 3)), patches=X.PatchExportConfig(points_per_task=6))
    assert len(many) == 3
    with pytest.raises(EarthEngineError, match=r"2 task\(s\) already started and still running: A, B"):
        X.start_jobs(many, sleep=sleeps.append)
    answers = iter(["A", "B", "C"])
    assert [row["id"] for row in X.start_jobs(many, sleep=sleeps.append)] == ["A", "B", "C"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: X.Destination("s3", bucket="b"),
        lambda: X.Destination("gcs"),
        lambda: X.Destination("gcs", bucket="gs://b"),
        lambda: X.SampleConfig((0, 0), (1, 1)),
        lambda: X.PatchExportConfig(patch_size=100),
        lambda: X.PatchExportConfig(kernel_buffer=200),
        lambda: X.PatchExportConfig(bands=("SWIR",)),
        lambda: X.ImageExportConfig(max_file_mb=0),
        lambda: X.SampleConfig(train_points=(-1, 10)),
        lambda: X.PatchExportConfig(points_per_task=X.MAX_POINTS_PER_TASK + 1),
    ],
)
def test_config_validation(make):
    with pytest.raises(ConfigError):
        make()


@pytest.mark.parametrize(("text", "said"), [
    ("gcs:My_Bucket", "no capital letters"),
    ("gcs:goog-crops", "start with 'goog'"),
    ("gcs:my-google-crops", "contain 'google'"),
    ("gcs:my..crops", "between dots"),
    ("gcs:192.168.0.1", "not an IP address"),
    ("gcs:" + "c" * 64, "at most 63"),
    ("gcs:ab", "3-63 lower-case letters"),
    ("gcs:crops/a b", "holds a space"),
    ("gcs:crops/runs*", "holds a space, a '*'"),
    ("gcs:crops/a//b", "an empty folder"),
    # characters of a file pattern, and a parent folder: training's globs of the files would miss them
    ("gcs:crops/a[1]", "holds a space"),
    ("gcs:crops/{x}", "holds a space"),
    ("gcs:crops/a\\b", "holds a space"),
    ("gcs:crops/a/../b", ".."),
])
def test_destination_refused_with_the_rule_it_breaks(text, said):
    """A bucket Cloud Storage refuses, or a prefix that breaks training's file patterns, is refused before
    a task starts (they failed in the queue, or matched other exports' files), saying why."""
    with pytest.raises(ConfigError, match=re.escape(said)):
        X.parse_destination(text)


def test_destination_edges_cloud_storage_allows():
    """A dotted bucket name may be up to 222 characters (each part up to 63); a prefix's own final slash."""
    name = "a" * 60 + "." + "b" * 10
    assert X.check_bucket(name) == name
    assert X.Destination("gcs", bucket="b-ucket", prefix="x/").uri("n") == "gs://b-ucket/x/n"


def test_a_patch_grid_grows_by_its_margin_on_both_sides_and_a_region_of_one_patch_is_enough():
    g = X.patch_grid((0, 0, 30 * 100, 30 * 100), 30, "EPSG:32718", 16, margin=8)
    assert (g.width, g.height) == (128, 128)  # 100 + 2 x 8 = 116, to whole patches of 16

    class Exactly:
        resolution = 30

        def grid_size(self, geometry):
            return 256, 256

    assert X.patches_past_region(Exactly(), {}, X.PatchExportConfig(patch_size=256)) is None


def test_destination_spaces_and_case_around_parts():
    """Spaces pasted around the parts, and an upper-case kind, are not part of the names."""
    d = X.parse_destination(" GCS: crop-bucket/runs/camana/ ")
    assert (d.kind, d.bucket, d.prefix) == ("gcs", "crop-bucket", "runs/camana")
    assert d.uri("x") == "gs://crop-bucket/runs/camana/x"
    assert X.parse_destination("drive: crop_exports ").prefix == "crop_exports"


def test_label_name_is_the_one_core_reads():
    from core import patches

    assert X.LABEL_BAND == patches.LABEL


def test_core_reads_ee_layout_tfrecords(tmp_path):
    """Records written exactly as EE writes a table export of patches are read by core.patches."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from core import patches

    cfg = X.PatchExportConfig(patch_size=32, kernel_buffer=4)
    k = cfg.full_size
    rng = np.random.default_rng(0)
    arrays = [{name: rng.random((k, k), dtype=np.float32) for name in cfg.selectors} for _ in range(3)]
    path = tmp_path / "train_000.tfrecord.gz"
    with tf.io.TFRecordWriter(str(path), options=tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for ex in arrays:
            feats = {n: tf.train.Feature(float_list=tf.train.FloatList(value=a.ravel(order="C"))) for n, a in ex.items()}
            w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    batches = list(patches.read_records(str(tmp_path), cfg.selectors, (k, k), batch_size=8))
    got = np.concatenate(batches)
    assert got.shape == (3, k, k, len(cfg.selectors))
    for i, ex in enumerate(arrays):
        for j, name in enumerate(cfg.selectors):
            np.testing.assert_array_equal(got[i, ..., j], ex[name])


@pytest.mark.parametrize("patch", [16, 128, 256, 512])
def test_image_export_kernel_fits_prediction(patch):
    """ImageExportConfig accepts exactly the kernel buffers core.predict_export.ExportPredictor can
    predict: patch + kernelSize (2 x kernel_buffer) a multiple of 16, kernel_buffer <= patch / 2."""
    accepted = []
    for kb in range(0, patch // 2 + 9):
        try:
            cfg = X.ImageExportConfig(patch_size=patch, kernel_buffer=kb)
        except ConfigError as err:
            assert "multiple of 16" in str(err) and f"for patch_size {patch} use 0, 8" in str(err)
            continue
        accepted.append(kb)
        kernel = cfg.format_options.get("kernelSize", [0, 0])[0]
        assert (cfg.format_options["patchDimensions"][0] + kernel) % 16 == 0  # ExportPredictor's side % 16
    assert accepted == list(range(0, patch // 2 + 1, 8))


def test_export_image_cli_refuses_a_kernel_prediction_cannot_use(ee_offline, capsys):
    from core.__main__ import main

    code = main(["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "c",
                 "--patch", "256", "--kernel", "12"])
    err = capsys.readouterr().err
    assert code == 2 and "--kernel 12 (the context margin) does not fit prediction" in err and "kernel_buffer" not in err and "0, 8, 16, 24, ..., 128" in err
