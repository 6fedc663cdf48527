"""The CLI: real runs, and every user mistake as one line on stderr with a non-zero exit."""

import json
from pathlib import Path
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from testdata import ROOT, SAMPLE_IMAGE, write_raster
from core.commands import python_command
from core.__main__ import main


def test_predict_then_evaluate_subprocess(tiny_model_path, small_scene, tmp_path):
    img, lab = small_scene
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = tmp_path / "pred"
    r = subprocess.run([sys.executable, "-m", "core", "predict", "--image", str(img), "--model", str(tiny_model_path),
                        "--out", str(out), "--threshold", "0.5"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["valid_pixels"] > 0
    r = subprocess.run([sys.executable, "-m", "core", "evaluate", "--pred", str(out / "crop_mask.tif"), "--labels", str(lab),
                        "--label-map", "cdl"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    m = res["confusion_matrix"]["matrix"]
    assert sum(map(sum, m)) == res["valid_pixels"] > 0 and 0 <= res["iou"] <= 1
    (tn, fp), (fn, tp) = m  # rows: labels not crop / crop; columns: predicted not crop / crop
    assert res["iou"] == pytest.approx(tp / (tp + fp + fn)) and res["accuracy"] == pytest.approx((tp + tn) / sum(map(sum, m)))
    assert json.loads((out / "metrics.json").read_text()) == res
    by_class = res["errors_by_class"]  # CDL classes with the most wrong pixels, named
    assert 1 <= len(by_class) <= 10 and all(r["errors"] > 0 and r["name"] for r in by_class)
    assert [r["errors"] for r in by_class] == sorted((r["errors"] for r in by_class), reverse=True)
    wrong = m[0][1] + m[1][0]  # false crop + missed crop
    assert sum(r["errors"] for r in by_class) <= wrong
    # a user mistake in a command that loads TensorFlow: exactly one line, no start-up notices
    r = subprocess.run([sys.executable, "-m", "core", "predict", "--image", str(img), "--model", str(tiny_model_path),
                        "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1, r.stderr


def _err(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    return err


def test_user_mistakes_are_one_line(capsys, tmp_path, small_scene, tiny_model_path):
    img, lab = small_scene
    assert "not found" in _err(capsys, ["predict", "--image", str(tmp_path / "x.tif"), "--out", str(tmp_path / "o")])
    # a missing input is said before an output in the way (whose --overwrite would not help)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "summary.json").write_text("{}")
    for argv, said in ((["--image", str(tmp_path / "x.tif")], "file not found: "),
                       (["--image", str(img), "--model", str(tmp_path / "m.keras")], "model file not found: ")):
        assert said in _err(capsys, ["predict", *argv, "--out", str(tmp_path / "full")])
    # an unknown option points to the command's own help, where the options are
    with pytest.raises(SystemExit) as info:
        main(["info", "--image", str(small_scene[0]), "--bogus"])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == "error: unrecognized arguments: --bogus; see python -m core info --help"
    rgb = write_raster(tmp_path / "rgb.tif", np.ones((3, 300, 300), np.int16), descriptions=["R", "G", "B"])
    assert "NIR" in _err(capsys, ["predict", "--image", str(rgb), "--model", str(tiny_model_path), "--out", str(tmp_path / "o")])
    # the image's size in the terms of --window (ROW,COL,HEIGHT,WIDTH): rows and columns, not "320x288"
    assert _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(tmp_path / "o"),
                         "--window", "0,0,9999,256"]) == (
        "error: the window (rows 0 to 9998, columns 0 to 255) is not inside the image: the image is 288 rows x 320 columns; "
        "give ROW,COL,HEIGHT,WIDTH inside it")
    with rasterio.open(lab) as src:
        shifted = write_raster(tmp_path / "shifted.tif", src.read(1), transform=src.transform @ src.transform.translation(1, 0))
    pred = tmp_path / "p"
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(pred)]) == 0
    capsys.readouterr()
    assert "grid" in _err(capsys, ["evaluate", "--pred", str(pred / "crop_mask.tif"), "--labels", str(shifted)])
    assert "already" in _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(pred)])
    # what evaluate wrote of a crop mask goes when --overwrite replaces the mask
    assert main(["evaluate", "--pred", str(pred / "crop_mask.tif"), "--labels", str(lab)]) == 0
    assert (pred / "metrics.json").exists()
    assert capsys.readouterr().err == f"wrote {pred / 'metrics.json'}\n"  # where it went, as predict says
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(pred), "--overwrite"]) == 0
    assert not (pred / "metrics.json").exists() and "removed" in capsys.readouterr().err
    # a folder of a derived file's name is no file of ours: it stays, with what it holds (it was removed whole)
    (pred / "crop_fields.geojson").mkdir()
    (pred / "crop_fields.geojson" / "notes.txt").write_text("mine")
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(pred), "--overwrite"]) == 0
    assert (pred / "crop_fields.geojson" / "notes.txt").read_text() == "mine"
    capsys.readouterr()
    # metrics.json of an earlier mask, with the prediction itself gone: a new one went in beside it, exit 0, and a
    # later evaluate stopped at "metrics.json already exists". Refused like the prediction's own files
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "metrics.json").write_text("{}")
    err = _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(alone)])
    assert f"{alone} already holds metrics.json (made from an earlier crop mask: --overwrite removes it)" in err
    assert [p.name for p in alone.iterdir()] == ["metrics.json"]
    assert "label map" in _err(capsys, ["evaluate", "--pred", str(pred / "crop_mask.tif"), "--labels", str(lab),
                                        "--label-map", "nope"])
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "bad.json").write_text(tiny_model_path.with_suffix(".json").read_text())
    assert "truncated" in _err(capsys, ["predict", "--image", str(img), "--model", str(bad), "--out", str(tmp_path / "q")])
    assert "band" in _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out",
                                   str(tmp_path / "r"), "--bands", "1,2"])


def _patches(img, lab, out, *more: str) -> list[str]:
    """argv of ``python -m core patches`` on an image and its labels."""
    return ["patches", "--image", str(img), "--labels", str(lab), "--out", str(out), *more]


def test_patches_command(capsys, small_scene, tmp_path):
    img, lab = small_scene
    out = tmp_path / "p.tfrecord.gz"
    assert main(_patches(img, lab, out, "--count", "3", "--size", "64", "--buffer", "16")) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["patches"] == 3 and info["side"] == 96
    assert "already exists" in _err(capsys, _patches(img, lab, out))
    err = _err(capsys, _patches(img, lab, tmp_path / "z.tfrecord.gz", "--size", "70"))
    assert err == "error: --size must be a multiple of 16, got 70"  # the option the user typed, not the field
    # 16 px patches: refused here, as train refuses them (they were cut, and the train command printed failed)
    assert _err(capsys, _patches(img, lab, tmp_path / "z.tfrecord.gz", "--size", "16")) == "error: --size must be 32-2048, got 16"
    assert "--buffer must be 0-64" in _err(capsys, _patches(img, lab, tmp_path / "z.tfrecord.gz", "--size", "64",
                                                            "--buffer", "65"))
    assert not (tmp_path / "z.tfrecord.gz").exists()
    # the side and the buffer also take the names train and ee-export-* give them
    assert main(_patches(img, lab, tmp_path / "a.tfrecord.gz", "--count", "1", "--patch-size", "32", "--kernel", "8")) == 0
    assert json.loads(capsys.readouterr().out)["side"] == 48


def test_patches_that_must_repeat_are_warned_of(capsys, tmp_path):
    """An image exactly one patch large gave --count 5 identical patches without a word."""
    from rasterio.windows import Window
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS, cut

    win = Window(200, 300, 64, 64)
    img, lab = cut(SAMPLE_IMAGE, tmp_path / "one.tif", win), cut(SAMPLE_LABELS, tmp_path / "one_cdl.tif", win)
    assert main(_patches(img, lab, tmp_path / "p.tfrecord.gz", "--count", "5", "--size", "64")) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["patches"] == 5
    assert said.err == ("warning: only 1 of the 5 patches differ: the image holds 1 place for a 64 px patch with 50% "
                        "valid pixels, so the others repeat them; use a larger image or region, a smaller patch size "
                        "(--size; 'Patch size' in the dashboard) or fewer patches (--count; 'Training patches' and "
                        "'Test patches')\nwrote " + str(tmp_path / "p.tfrecord.gz") + "\n")
    assert main(_patches(img, lab, tmp_path / "q.tfrecord.gz", "--count", "1", "--size", "64")) == 0
    # as many places as patches: nothing to say but where it wrote, as every command that writes says it
    assert capsys.readouterr().err == f"wrote {tmp_path / 'q.tfrecord.gz'}\n"


def test_patches_command_with_a_test_split(capsys, small_scene, tmp_path, monkeypatch):
    img, lab = small_scene
    out = tmp_path / "cut"
    assert main(_patches(img, lab, out, "--count", "3", "--size", "64", "--test", "2")) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train"]["patches"] == 3 and info["test"]["patches"] == 2 and "held out" in info["note"]
    assert info["train"]["path"] == str(out / "train.tfrecord.gz") and (out / "test.tfrecord.gz").exists()
    assert info["train_with"].startswith(f"{python_command()} -m core train --train {out / 'train.tfrecord.gz'} --val "
                                         f"{out / 'test.tfrecord.gz'} --patch-size 64")
    # the held-out block unlike the rest (test crop 0.2% of labelled pixels, training 38%): said, as the Data page
    # says it (a val IoU near 0 followed, unexplained)
    import core.patchset
    from dataclasses import replace

    real = core.patchset.cut_train_test

    def unlike(*a, **k):
        made = real(*a, **k)
        return replace(made, train=replace(made.train, crop_fraction=0.38), test=replace(made.test, crop_fraction=0.002))

    monkeypatch.setattr(core.patchset, "cut_train_test", unlike)
    assert main(_patches(img, lab, tmp_path / "unlike", "--count", "3", "--size", "64", "--test", "2")) == 0
    err = capsys.readouterr().err
    assert ("warning: The test patches' crop share (0%) differs from the training patches' (38%) by 38 percentage "
            "points: the held-out block is not like the rest of the region") in err
    monkeypatch.setattr(core.patchset, "cut_train_test", real)
    again = _patches(img, lab, out, "--size", "64", "--test", "1")
    assert "already exists" in _err(capsys, again)
    assert "the number of test patches must be at least 1, got 0" in _err(capsys, [*again[:-1], "0", "--overwrite"])
    # with --test, --out is a folder: a patches file's name is refused, not made into a folder
    named = tmp_path / "a.tfrecord.gz"
    assert "with --test, --out is a folder" in _err(capsys, _patches(img, lab, named, "--size", "64", "--test", "1"))
    assert not named.exists()


def test_patches_of_a_georeferenced_image_suggest_training_with_its_pixel_size(capsys, tmp_path):
    # patches do not carry the pixel size, so a model trained on them had none in its card (and no warning
    # for images of another pixel size) unless the user knew to add --pixel-size-m
    from testdata import FLANDERS_LABELS, FLANDERS_S2

    args = ["patches", "--image", str(FLANDERS_S2), "--labels", str(FLANDERS_LABELS), "--label-map", "worldcereal",
            "--out", str(tmp_path / "cut"), "--count", "2", "--size", "32", "--test", "1"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["train_with"].endswith("--out runs/NAME --pixel-size-m 10")


def test_out_of_range_options_are_named_as_typed(capsys, small_scene, tmp_path):
    img, lab = small_scene
    pair = f"{img}:{lab}"
    train = ["train", "--train", pair, "--val", pair, "--out", str(tmp_path / "run")]
    assert _err(capsys, [*train, "--lr", "2"]) == "error: --lr must be in (0, 1), got 2.0"
    assert _err(capsys, [*train, "--steps", "0"]) == "error: --steps must be at least 1, got 0"
    assert _err(capsys, [*train, "--patch-size", "40"]) == "error: --patch-size must be a multiple of 16, >= 32, got 40"
    assert _err(capsys, [*train, "--bn-momentum", "1"]) == "error: --bn-momentum must be in [0, 1), got 1.0"
    assert _err(capsys, ["predict", "--image", str(img), "--out", str(tmp_path / "o"), "--batch-size", "0"]) == (
        "error: --batch-size must be 1-256, got 0")
    assert _err(capsys, ["predict", "--image", str(img), "--out", str(tmp_path / "o"), "--views", "3"]) == (
        "error: --views must be one of 1, 2, 4, 8, got 3")
    assert not (tmp_path / "run").exists() and not (tmp_path / "o").exists()


def test_predict_warns_when_the_pixels_differ_from_the_training_pixels(capsys, tmp_path, monkeypatch):
    """The shipped model (30 m Landsat) on a 10 m Sentinel-2 image: a warning line, and in summary.json."""
    import core.predict
    from testdata import FTW

    real = core.predict._write_outputs

    def model_runs(*a, **k):  # (marks where in stderr the model started)
        print("<the model runs>", file=sys.stderr)
        return real(*a, **k)

    monkeypatch.setattr(core.predict, "_write_outputs", model_runs)
    code = main(["predict", "--image", str(FTW), "--bands", "1,2,3,4", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 0
    warning = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "30 m" in warning[0] and "10 m" in warning[0] and "resample" in warning[0]
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["warnings"] == [warning[0][len("warning: "):]]
    # before the run, not after it (a large scene's map, hours later, would be thrown away): before the figures
    assert err.index(warning[0]) < err.index("<the model runs>"), err

    # the crop mask traced into fields (GeoJSON, lon/lat) beside it, once
    assert main(["fields", "--mask", str(tmp_path / "o" / "crop_mask.tif"), "--min-pixels", "9"]) == 0
    res = json.loads(capsys.readouterr().out)
    fc = json.loads((tmp_path / "o" / "crop_fields.geojson").read_text())
    assert res["out"] == str(tmp_path / "o" / "crop_fields.geojson") and res["fields"] == len(fc["features"]) > 0
    assert min(f["properties"]["pixels"] for f in fc["features"]) >= 9 and fc["min_pixels"] == 9
    assert "already exists" in _err(capsys, ["fields", "--mask", str(tmp_path / "o" / "crop_mask.tif")])
    assert "not found" in _err(capsys, ["fields", "--mask", str(tmp_path / "none.tif")])
    no_crs = write_raster(tmp_path / "no_crs.tif", np.ones((40, 40), np.uint8))
    assert "georeferenced" in _err(capsys, ["fields", "--mask", str(no_crs), "--out", str(tmp_path / "s.geojson")])
    assert not (tmp_path / "s.geojson").exists()
    # the input's own mistake is told first, not an output in the way (fixed, it would be the next error)
    probability = str(tmp_path / "o" / "probability.tif")
    assert "is not a crop mask" in _err(capsys, ["fields", "--mask", probability, "--out", str(tmp_path / "o" / "crop_fields.geojson")])
    assert "georeferenced" in _err(capsys, ["fields", "--mask", str(no_crs), "--out", str(tmp_path / "o" / "crop_fields.geojson")])
    assert main(["evaluate", "--pred", str(tmp_path / "o" / "crop_mask.tif"), "--labels", str(tmp_path / "o" / "crop_mask.tif"),
                 "--label-map", "binary"]) == 0
    capsys.readouterr()
    assert "unknown label map 'cld'" in _err(capsys, ["evaluate", "--pred", str(tmp_path / "o" / "crop_mask.tif"), "--labels",
                                                      str(tmp_path / "o" / "crop_mask.tif"), "--label-map", "cld"])


def _like(lab, path, make):
    """A uint8 raster on the grid of ``lab``, its pixels ``make(shape)``."""
    with rasterio.open(lab) as src:
        return write_raster(path, make(src.shape).astype(np.uint8), crs=src.crs, transform=src.transform)


def test_evaluate_refuses_what_cannot_be_scored(capsys, small_scene, tmp_path):
    """No pixel valid in both, a probability map, or an image: one line, and no metrics.json."""
    img, lab = small_scene
    empty = _like(lab, tmp_path / "empty.tif", lambda shape: np.full(shape, 255))
    assert "no pixel is valid in both the prediction and the labels: the prediction is all no data" in \
        _err(capsys, ["evaluate", "--pred", str(empty), "--labels", str(lab)])
    # labels of no class under the map (a raster of negative values), or labelled only where the prediction has no data
    ones = _like(lab, tmp_path / "ones.tif", lambda shape: np.ones(shape))
    with rasterio.open(lab) as src:
        codes = -(np.arange(src.height * src.width).reshape(src.shape) % 200) - 1
        negative = write_raster(tmp_path / "neg.tif", codes.astype(np.int16), crs=src.crs, transform=src.transform)
    err = _err(capsys, ["evaluate", "--pred", str(ones), "--labels", str(negative)])
    assert "neg.tif holds no crop or not-crop pixel there as the 'cdl' label map reads it; their values run -200 to -1" in err
    half = _like(lab, tmp_path / "half.tif", lambda shape: np.where(np.arange(shape[1]) < shape[1] // 2, 1, 255) * np.ones(shape))
    only_right = _like(lab, tmp_path / "right.tif", lambda shape: np.where(np.arange(shape[1]) < shape[1] // 2, 255, 0)
                       * np.ones(shape))
    err = _err(capsys, ["evaluate", "--pred", str(only_right), "--labels", str(half), "--label-map", "binary"])
    assert "the labelled pixels of half.tif lie where the prediction has no data" in err
    prob = _like(lab, tmp_path / "prob.tif", lambda shape: np.random.default_rng(0).integers(0, 101, shape))
    assert "crop_mask.tif" in _err(capsys, ["evaluate", "--pred", str(prob), "--labels", str(lab)])
    err = _err(capsys, ["evaluate", "--pred", str(img), "--labels", str(lab), "--out", str(tmp_path / "m.json")])
    assert "4 bands" in err and "crop_mask.tif" in err
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.glob(".*"))


def test_outputs_do_not_write_over_the_files_predict_wrote_beside_the_prediction(capsys, small_scene, tmp_path):
    """`evaluate --out DIR/summary.json --overwrite` wrote over predict's summary, and zones then counted from the
    mask's corner (the window lost), unsaid: evaluate, fields and zones refuse predict's files as --out."""
    _, lab = small_scene
    pred = tmp_path / "p"
    pred.mkdir()
    mask = _like(lab, pred / "crop_mask.tif", lambda shape: np.ones(shape))
    (pred / "summary.json").write_text('{"window": {"row": 0, "col": 0}}')
    zones = tmp_path / "z.geojson"
    zones.write_text('{"type": "FeatureCollection", "features": []}')
    for argv in (["evaluate", "--pred", str(mask), "--labels", str(lab), "--out", str(pred / "summary.json"), "--overwrite"],
                 ["fields", "--mask", str(mask), "--out", str(pred / "summary.json"), "--overwrite"],
                 ["zones", "--pred", str(mask), "--zones", str(zones), "--out", str(pred / "summary.json"), "--overwrite"]):
        err = _err(capsys, argv)
        assert "is one of the files predict wrote beside --" in err and "choose another --out" in err, err
    assert (pred / "summary.json").read_text() == '{"window": {"row": 0, "col": 0}}'


def test_predict_out_named_as_a_file_is_refused(capsys, small_scene, tiny_model_path, tmp_path):
    """`predict --out crop.tif` made a folder crop.tif/ with the three files in it; a file's name for
    the outputs' folder is refused, naming one to use, and an existing folder of that name is used."""
    img, _ = small_scene
    for name, stem in (("crop.tif", "crop"), ("map.PNG", "map"), ("summary.json", "summary"), ("p.tfrecord.gz", "p")):
        err = _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(tmp_path / name)])
        assert f"named as a {Path(name).suffix} file" in err and err.endswith(f"e.g. {tmp_path / stem}")
        assert not (tmp_path / name).exists()
    (tmp_path / "old.tif").mkdir()  # a folder so named already: the user's
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(tmp_path / "old.tif")]) == 0
    assert (tmp_path / "old.tif" / "crop_mask.tif").is_file()


def test_predict_window_must_be_four_whole_numbers(capsys, small_scene, tmp_path):
    img, _ = small_scene
    for bad in ("a,b,c,d", "0,0,256.5,256", "0,0,256"):
        err = _err(capsys, ["predict", "--image", str(img), "--out", str(tmp_path / "o"), "--window", bad])
        assert "four whole numbers" in err and repr(bad) in err
    assert not (tmp_path / "o").exists()


def test_predict_a_box_in_degrees_is_the_window_that_covers_it(capsys, tiny_model_path, tmp_path):
    """--bbox W,S,E,N on a georeferenced image predicts the same pixels as the --window that covers the
    box; on an image without a CRS, with --window, or outside the image: one line, nothing written."""
    from rasterio.warp import transform_bounds

    from core.raster import grid_of_file
    from core.region import Region

    image = ROOT / "tests" / "data" / "georef" / "ftw_austria_s2_2021-06-17_window.tif"
    grid = grid_of_file(image)
    with rasterio.open(image) as src:
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    box = (w + (e - w) * 0.2, s + (n - s) * 0.3, e - (e - w) * 0.25, n - (n - s) * 0.2)
    text = ",".join(f"{v:.6f}" for v in box)
    win = Region.from_bbox(*(float(v) for v in text.split(","))).window(grid)
    assert 0 < win.height < grid.height and 0 < win.width < grid.width
    common = ["predict", "--image", str(image), "--model", str(tiny_model_path), "--bands", "1,2,3,4"]
    assert main([*common, "--out", str(tmp_path / "box"), f"--bbox={text}"]) == 0
    said = capsys.readouterr().err
    window = f"{win.row_off},{win.col_off},{win.height},{win.width}"
    assert f"--bbox: predicted the window {window} (ROW,COL,HEIGHT,WIDTH)" in said
    assert main([*common, "--out", str(tmp_path / "win"), "--window", window]) == 0
    capsys.readouterr()
    # four values, as the ee- commands take them (it was "unrecognized arguments")
    assert main([*common, "--out", str(tmp_path / "four"), "--bbox", *text.split(",")]) == 0
    assert f"--bbox: predicted the window {window} (ROW,COL,HEIGHT,WIDTH)" in capsys.readouterr().err
    capsys.readouterr()
    with rasterio.open(tmp_path / "box" / "probability.tif") as a, rasterio.open(tmp_path / "win" / "probability.tif") as b:
        assert a.shape == (win.height, win.width) and a.transform == b.transform and (a.read() == b.read()).all()
    # the summary records what was asked for (it kept the window alone)
    summary = json.loads((tmp_path / "box" / "summary.json").read_text())
    assert summary["bbox"] == [float(v) for v in text.split(",")] and summary["bbox_cut_to_image"] is False
    assert summary["bbox_share_on_image"] >= 0.999
    assert summary["bands"] == "1,2,3,4"
    # a box reaching past the image (its east edge 0.05 degrees beyond): cut to it, said with the share covered
    past = f"{box[0]:.6f},{box[1]:.6f},{e + 0.05:.6f},{box[3]:.6f}"
    assert main([*common, "--out", str(tmp_path / "past"), f"--bbox={past}"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: --bbox")]
    assert len(warning) == 1 and "reaches past the image: predicting the part on it" in warning[0], warning
    share = int(re.search(r"it, (\d+)% of the box", warning[0]).group(1))
    assert 0 < share < 50
    recorded = json.loads((tmp_path / "past" / "summary.json").read_text())
    assert recorded["bbox_cut_to_image"] is True and round(recorded["bbox_share_on_image"] * 100) == share
    # a box inside the image's lon/lat box but over its corner there (a UTM image is turned against the
    # meridians: about a quarter of this box lies off its pixels): cut, and said (it was not)
    corner = f"{w:.6f},{n - (n - s) * 0.1:.6f},{w + (e - w) * 0.1:.6f},{n:.6f}"
    assert main([*common, "--out", str(tmp_path / "corner"), f"--bbox={corner}"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: --bbox")]
    assert len(warning) == 1 and 60 < int(re.search(r"it, (\d+)% of the box", warning[0]).group(1)) < 90, warning
    assert json.loads((tmp_path / "corner" / "summary.json").read_text())["bbox_cut_to_image"] is True
    # a west edge mistyped far west (a sign, a digit): a sliver of the box on the image is refused with the
    # image's edges (it predicted the sliver and said "0% of the box", exit 0)
    typo = f"{box[0] - 30:.6f},{box[1]:.6f},{box[2]:.6f},{box[3]:.6f}"
    err = _err(capsys, [*common, "--out", str(tmp_path / "typo"), f"--bbox={typo}"])
    assert re.search(r"--bbox has 0\.\d+% of it on the image, which covers -?\d+\.\d{6}, ", err), err
    assert "check the box's numbers" in err and not (tmp_path / "typo").exists()
    for argv, said in (
            (["--bbox", "1,2,3"], "--bbox: a box is four numbers"),
            # a number mistyped: named (it was told to put the files before --bbox)
            (["--bbox=nan,1,2,3"], "--bbox takes four numbers, west, south, east and north in degrees, and 'nan' is "
                                   "not a number (e.g. --bbox=-72.78,-16.65,-72.67,-16.58)"),
            (["--bbox", "13.1°", "1", "2", "3"], "and '13.1°' is not a number"),
            (["--bbox", "1,2,3,4", "out/dir"], "and 'out/dir' is not one of them; put the files before --bbox"),
            (["--bbox", "1", "2", "3", "4", "bands"], "and 'bands' is not one of them; put the files before --bbox"),
            (["--bbox", "1", "2", "3", "inf"], "and 'inf' is not a number"),
            # across the 180th meridian (west 179.99, east -179.99): said so, not "give xmin < xmax"
            (["--bbox=179.99,-17.0,-179.99,-16.9"], "a box across the 180th meridian is not handled"),
            ([f"--bbox={text}", "--window", window], "--bbox and --window both say what to predict"),
            (["--bbox", "0,0,1,1"], f"--bbox: the box lies outside the image, whose edges are {w:.6f}, {s:.6f}"),
            # a box of a few pixels: said of --bbox, in one line (it said to give a larger --window, after a line
            # saying which window it was predicting)
            ([f"--bbox={box[0]:.6f},{box[1]:.6f},{box[0] + 0.0001:.6f},{box[1] + 0.0001:.6f}"],
             "px of the image (columns x rows), under 8 px a side: give a larger box"),
            # latitude first, as a map's search box gives it: said so, as the Region page says it
            ([f"--bbox={box[1]:.6f},{box[0]:.6f},{box[3]:.6f},{box[2]:.6f}"],
             f"; the numbers look like latitude, longitude: a box is longitude first, west, south, east, north "
             f"(e.g. {box[0]:g}, {box[1]:g}, {box[2]:g}, {box[3]:g})"),
    ):
        err = _err(capsys, [*common, "--out", str(tmp_path / "o"), *argv])
        # (a note of the order after one that gives it already: "... (west, south, east, north) (west, south, ...")
        assert said in err and "north) (west" not in err and not err.endswith(")) (west, south, east, north in degrees)")
    sample = ["predict", "--image", str(ROOT / "assets" / "sample" / "sample_rgbn.tif"), "--model", str(tiny_model_path)]
    err = _err(capsys, [*sample, "--out", str(tmp_path / "o"), f"--bbox={text}"])
    assert "has no place on Earth (no CRS)" in err and err.endswith("--window ROW,COL,HEIGHT,WIDTH instead")
    # pixels given as a box on it: the same advice, not "not longitude/latitude" (which depended on the numbers)
    assert "has no place on Earth (no CRS)" in _err(capsys, [*sample, "--out", str(tmp_path / "o"), "--bbox=100,200,400,500"])
    assert not (tmp_path / "o").exists()


def test_predict_window_is_refused_for_an_earth_engine_export(capsys, tmp_path):
    err = _err(capsys, ["predict", "--image", str(tmp_path / "img-mixer.json"), "--out", str(tmp_path / "o"),
                        "--window", "0,0,256,256"])
    assert "--window" in err and "mixer.json" in err


def test_outputs_under_a_file_or_onto_a_folder(capsys, small_scene, tmp_path):
    """--out where a file stands in the way, or a folder where a file is to be written: one line, nothing left."""
    img, lab = small_scene
    afile = tmp_path / "afile"
    afile.write_text("keep")
    assert "is a file" in _err(capsys, ["predict", "--image", str(img), "--out", str(afile)])
    assert "is a file" in _err(capsys, ["predict", "--image", str(img), "--out", str(afile / "sub")])
    mask = _like(lab, tmp_path / "mask.tif", np.ones)
    assert "is a file" in _err(capsys, ["evaluate", "--pred", str(mask), "--labels", str(lab), "--out", str(afile / "m.json")])
    assert "is a file" in _err(capsys, ["patches", "--image", str(img), "--labels", str(lab), "--out",
                                        str(afile / "x.tfrecord.gz"), "--count", "1", "--size", "64"])
    assert afile.read_text() == "keep"
    folder = tmp_path / "somedir"
    folder.mkdir()
    assert "is a folder" in _err(capsys, ["evaluate", "--pred", str(mask), "--labels", str(lab), "--out", str(folder),
                                          "--overwrite"])
    records = tmp_path / "adir.tfrecord.gz"
    records.mkdir()
    assert "is a folder" in _err(capsys, ["patches", "--image", str(img), "--labels", str(lab), "--out", str(records),
                                          "--count", "1", "--size", "64", "--overwrite"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.tfrecord.gz", "afile", "mask.tif", "somedir"]
    assert not any(folder.iterdir()) and not any(records.iterdir())


def test_predict_views_reach_the_summary(capsys, small_scene, tiny_model_path, tmp_path):
    img, _ = small_scene
    out = tmp_path / "o"
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(out), "--views", "4",
                 "--window", "0,0,256,256"]) == 0
    assert json.loads((out / "summary.json").read_text())["views"] == 4


def test_mistakes_found_in_review_are_one_line_and_lose_nothing(capsys, tmp_path, small_scene, tiny_model_path):
    img, lab = small_scene
    # an output that is one of the inputs is refused, even with --overwrite, and the input is kept
    before = lab.read_bytes()
    assert "same file as --labels" in _err(capsys, _patches(img, lab, lab, "--count", "1", "--size", "64", "--overwrite"))
    assert lab.read_bytes() == before
    assert "--seed must be 0-4294967295" in _err(capsys, _patches(img, lab, tmp_path / "s.tfrecord.gz", "--seed=-5"))
    # a model card that is not text, or is a folder
    for name, make in (("bin", lambda p: p.write_bytes(b"\xff\xfe\x00 binary")), ("dir", lambda p: p.mkdir())):
        model = tmp_path / f"{name}.keras"
        model.write_bytes(tiny_model_path.read_bytes())
        make(model.with_suffix(".json"))
        assert "card" in _err(capsys, ["predict", "--image", str(img), "--model", str(model), "--out", str(tmp_path / name)])
        assert not (tmp_path / name).exists()
    # a TFRecord whose GZIP stream is cut inside its first record, or is not GZIP at all
    assert main(_patches(img, lab, tmp_path / "p.tfrecord.gz", "--count", "2", "--size", "64")) == 0
    capsys.readouterr()
    (tmp_path / "head.tfrecord.gz").write_bytes((tmp_path / "p.tfrecord.gz").read_bytes()[:2000])
    (tmp_path / "junk.tfrecord.gz").write_bytes(b"\x1f\x8b" + b"junk" * 100)
    for bad in ("head", "junk"):
        err = _err(capsys, ["train", "--train", str(tmp_path / f"{bad}.tfrecord.gz"), "--val", str(tmp_path / "p.tfrecord.gz"),
                            "--patch-size", "64", "--out", str(tmp_path / f"run_{bad}")])
        assert f"{bad}.tfrecord.gz is" in err and not (tmp_path / f"run_{bad}").exists()
    assert "choose one" in _err(capsys, ["train", "--train", str(tmp_path / "p.tfrecord.gz"), "--val",
                                         str(tmp_path / "p.tfrecord.gz"), "--out", str(tmp_path / "r"), "--resume",
                                         "--overwrite"])
    assert "--val-patches must be 0 (all) or more" in _err(capsys, [
        "train", "--train", str(tmp_path / "p.tfrecord.gz"), "--val", str(tmp_path / "p.tfrecord.gz"),
        "--out", str(tmp_path / "r"), "--val-patches", "-1"])
    # a prediction of a window of the image is evaluated against that window of the image's labels
    win = tmp_path / "win"
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(win),
                 "--window", "16,32,256,272"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(win / "crop_mask.tif"), "--labels", str(lab)]) == 0
    res = json.loads(capsys.readouterr().out)
    from core.labels import get_class_map
    from core.metrics import confusion
    from core.raster import read_labels

    with rasterio.open(win / "crop_mask.tif") as src:
        expected = confusion(src.read(1), read_labels(lab, get_class_map("cdl"))[16:272, 32:304])
    assert res["confusion_matrix"]["matrix"] == expected.to_dict()["confusion_matrix"]["matrix"]
    # labels of part of a prediction (an Earth Engine export padded to whole patches) count there only
    with rasterio.open(win / "crop_mask.tif") as src:
        at, crs = src.transform @ src.transform.translation(40, 20), src.crs
    part_labels = read_labels(lab, get_class_map("cdl"))[16 + 20 : 16 + 120, 32 + 40 : 32 + 240]
    part = write_raster(tmp_path / "part_cdl.tif", part_labels, crs=crs, transform=at, nodata=255)
    assert main(["evaluate", "--pred", str(win / "crop_mask.tif"), "--labels", str(part), "--label-map", "binary",
                 "--out", str(tmp_path / "part.json")]) == 0
    with rasterio.open(win / "crop_mask.tif") as src:
        whole_mask = src.read(1)
        expected = confusion(whole_mask[20:120, 40:240], read_labels(part, get_class_map("binary")))
    said = capsys.readouterr()
    res = json.loads(said.out)
    assert res["confusion_matrix"]["matrix"] == expected.to_dict()["confusion_matrix"]["matrix"]
    # and the user is told that the figures cover only that part of what was predicted
    covered, predicted = int((whole_mask[20:120, 40:240] != 255).sum()), int((whole_mask != 255).sum())
    assert res["warnings"] == [f"the labels' raster covers only {covered:,} of the {predicted:,} predicted pixels "
                               f"({covered / predicted:.2%}: rows 20-119, columns 40-239 of the prediction); the "
                               "figures are for that part only"]
    assert said.err == f"warning: {res['warnings'][0]}\nwrote {tmp_path / 'part.json'}\n"
    assert res["warnings"] == json.loads((tmp_path / "part.json").read_text())["warnings"]
    # an Earth Engine export names its bands: --bands is refused, not ignored
    mixer = tmp_path / "exp-mixer.json"
    mixer.write_text("{}")
    assert "--bands works on GeoTIFF images only" in _err(capsys, ["predict", "--image", str(mixer), "--bands",
                                                                  "9,9,9,9", "--out", str(tmp_path / "e")])
    # and is predicted patch by patch as exported: --tile and --overlap are refused too (they had no effect)
    for option in ("--tile", "--overlap"):
        said = _err(capsys, ["predict", "--image", str(mixer), option, "128", "--out", str(tmp_path / "e")])
        assert f"{option} works on GeoTIFF images only: an Earth Engine export is predicted patch by patch" in said
    assert not (tmp_path / "e").exists()
    # a machine failure (here: an output folder that cannot be made) is one line too, not a traceback
    assert "check that the folder exists" in _err(capsys, ["predict", "--image", str(img), "--model",
                                                           str(tiny_model_path), "--out", "/proc/cropmap-test/out"])


def test_train_refuses_at_once_what_the_patches_would_ignore(capsys, small_scene, tmp_path):
    """On TFRecord patches, --label-map foo trained a whole run and recorded "label_map": "foo"."""
    img, lab = small_scene
    patches = tmp_path / "p.tfrecord.gz"
    assert main(_patches(img, lab, patches, "--count", "2", "--size", "64")) == 0
    capsys.readouterr()
    train = ["train", "--train", str(patches), "--val", str(patches), "--patch-size", "64", "--out", str(tmp_path / "r")]
    assert _err(capsys, [*train, "--label-map", "foo"]).startswith("error: unknown label map 'foo'; choose one of: ")
    # --bands numbers the bands of images; patches name theirs
    assert "TFRecord patches name their bands, so leave it out" in _err(capsys, [*train, "--bands", "1,2,3,4"])
    assert "bad band list" in _err(capsys, [*train, "--bands", "1,2"])
    assert not (tmp_path / "r").exists()


def test_the_progress_bar_is_made_with_its_total():
    """predict's bar showed "predict: 0tile [00:00, ?tile/s]" until the first tiles were done."""
    from core.progress import TqdmProgress

    bar = TqdmProgress("predict", "tile")
    assert bar.bar is None  # nothing shown while the model loads
    bar(0, 12)
    assert (bar.bar.n, bar.bar.total) == (0, 12)
    bar(12, 12)
    bar.close()
    TqdmProgress("unused", "tile").close()  # a command that fails before its first step


def test_every_option_says_what_it_does():
    import argparse

    from core.__main__ import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = [f"{name} {action.option_strings[0]}" for name, sub in commands.items() for action in sub._actions
               if action.option_strings and action.help is None]
    assert missing == []


def test_tile_sizes_get_an_overlap_on_the_models_lattice():
    from core.config import PredictConfig
    from core.errors import ConfigError

    assert PredictConfig(tile=96).resolve(None, 16).overlap == 16  # a quarter of 96 is 24: down to 16
    assert PredictConfig().resolve(None, 16).overlap == 128
    with pytest.raises(ConfigError, match="32 to 2048"):
        PredictConfig(tile=16384)


def test_machine_failures_in_words():
    from core.__main__ import environment_error

    assert "out of memory" in environment_error(MemoryError())
    # in the command's own options ("patches" was told of --window, --tile and --batch-size, which it has not)
    assert environment_error(MemoryError(), "patches") == "out of memory; cut fewer patches (--count) or smaller ones (--size)"
    assert "--window" in environment_error(MemoryError(), "predict")
    assert "--window" not in environment_error(MemoryError(), "predict-export")  # (an export takes no --window)
    assert "--batch-size" in environment_error(MemoryError(), "train")
    assert environment_error(OSError(28, "No space left on device", "/x/y.tif")).startswith("No space left on device (/x/y.tif)")
    assert environment_error(ValueError("a bug")) is None  # not the machine's: a traceback, to be fixed
    # GDAL's words for a full disk (as a 2 MB tmpfs gave them) get what to check; other GDAL errors do not
    from rasterio._err import CPLE_AppDefinedError

    assert environment_error(CPLE_AppDefinedError(1, 1, "TIFFAppendToStrip:Write error at scanline 4294967295")) == (
        "TIFFAppendToStrip:Write error at scanline 4294967295; writing failed: check that the folder can be "
        "written and that the disk has space")
    assert environment_error(CPLE_AppDefinedError(1, 1, "Band 2 out of range")) == "Band 2 out of range"
    # rasterio's words when a write to a full disk fails (resample and stack said them with nothing to check)
    assert environment_error(CPLE_AppDefinedError(1, 1, "Write failed. See previous exception for details.")).endswith(
        "; writing failed: check that the folder can be written and that the disk has space")
    # rasterio's error for a file it cannot read is an OSError too: it was told to check the disk's space
    from rasterio.errors import RasterioIOError

    assert environment_error(RasterioIOError("x.tif: not recognized as being in a supported file format.")) == (
        "x.tif: not recognized as being in a supported file format.")
    # an output's temporary name (".p.tfrecord.gz.23232-d7e1b21e.tmp") is said as the output's own, and a folder
    # a user may not write to gets what to check
    from core.files import temp_name

    tmp = temp_name("/data/my run/p.tfrecord.gz")
    assert environment_error(PermissionError(1, "Operation not permitted", str(tmp))) == (
        "Operation not permitted (/data/my run/p.tfrecord.gz); check that the folder exists and can be written, and "
        "that the disk has space")
    # a file that may not be read (a fields file, one in a folder that may not be entered) is no disk to check
    assert environment_error(PermissionError(13, "Permission denied", "/data/fields.geojson")) == (
        "Permission denied (/data/fields.geojson); check the permissions of it and of the folders above it (ls -l): "
        "an input must be readable, an output's folder writable")
    from tensorflow.errors import PermissionDeniedError

    said = environment_error(PermissionDeniedError(None, None, f"{tmp}; Operation not permitted"))
    assert said == ("/data/my run/p.tfrecord.gz; Operation not permitted; writing failed: check that the folder can be "
                    "written and that the disk has space")


def test_a_killed_command_removes_its_temporary_files(small_scene, tmp_path):
    """SIGTERM (a kill, a timeout) ends a command as Ctrl-C does: no half-written file is left; the exit
    status is 143 (128 + 15), as a shell reports a command a SIGTERM stopped (Ctrl-C: 130)."""
    import signal
    import time

    img, lab = small_scene
    out = tmp_path / "many.tfrecord.gz"
    proc = subprocess.Popen([sys.executable, "-m", "core", *_patches(img, lab, out, "--count", "1000000", "--size", "64")],
                            cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300  # (a machine busy with other work starts TensorFlow slowly)
    while not any(p.name.startswith(".") for p in tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.2)  # until the temporary file exists: writing has started
    started = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:  # (once, on a machine loaded with other tests: say where it was)
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"no exit within 180 s of SIGTERM (writing started: {bool(started)}); stderr: {err[-1500:]}")
    assert started, "the command never began writing: the kill would test nothing"
    assert proc.returncode == 143 and "Traceback" not in err, err  # 128 + SIGTERM, as a shell reports it
    assert err.strip().splitlines()[-1] == "error: interrupted; no output was written or replaced", err
    assert list(tmp_path.iterdir()) == []


def test_an_interruption_after_predict_has_written_says_so(small_scene, tiny_model_path, tmp_path, capsys, monkeypatch):
    """Ctrl-C just after the outputs were put in place said "no output was written or replaced",
    and the old metrics.json (removed after the new mask was in place) could stay beside it."""
    import core.__main__ as cli

    img, lab = small_scene
    pred = tmp_path / "p"
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(pred)]) == 0
    assert main(["evaluate", "--pred", str(pred / "crop_mask.tif"), "--labels", str(lab)]) == 0
    capsys.readouterr()

    real = cli.json.dumps

    def interrupted(obj, *a, **k):  # the Ctrl-C comes as the figures are printed (not summary.json's)
        if isinstance(obj, dict) and "crop_fraction" in obj and "model_card" not in obj:
            raise KeyboardInterrupt
        return real(obj, *a, **k)

    monkeypatch.setattr(cli.json, "dumps", interrupted)
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(pred), "--overwrite"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: interrupted; the new outputs in {pred} were written whole", err
    assert not (pred / "metrics.json").exists()  # gone with the mask it described, in the same step
    monkeypatch.setattr(cli.json, "dumps", real)
    # earlier still: as the old files put aside are deleted, the new ones in place (it said "no output was
    # written or replaced")
    import core.files

    remove = core.files._remove

    def interrupted_cleanup(path):
        if path.name.startswith(".old-"):
            raise KeyboardInterrupt
        remove(path)

    monkeypatch.setattr(core.files, "_remove", interrupted_cleanup)
    before = (pred / "summary.json").read_text()
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(pred), "--overwrite",
                 "--threshold", "0.6"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: interrupted; the new outputs in {pred} were written whole", err
    assert (pred / "summary.json").read_text() != before and '"threshold": 0.6' in (pred / "summary.json").read_text()
    assert sorted(p.name for p in pred.iterdir()) == ["crop_mask.tif", "probability.tif", "summary.json"]


def test_a_ctrl_c_that_code_turns_into_another_exception_is_still_an_interruption(small_scene, capsys, monkeypatch):
    """A Ctrl-C landing inside TensorFlow came out of it as a SystemError (once in about 20 Ctrl-Cs of a
    prediction): a traceback, not the one line that names what the command leaves."""
    import signal
    import time

    import core.raster

    def mangled(path):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # (the signal's handler raises here)
        except KeyboardInterrupt:
            raise SystemError("<built-in function __import__> returned a result with an exception set") from None
        raise AssertionError("no SIGINT came")

    monkeypatch.setattr(core.raster, "grid_of_file", mangled)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # (as a terminal starts it; a background run ignores it)
    try:
        assert main(["info", "--image", str(small_scene[0])]) == 130
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: interrupted; ")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back as it was
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_signal_the_caller_ignores_stays_ignored(small_scene, capsys):
    """`nohup python -m core ... &` ignores SIGHUP: the command put its own handler in, and died of a
    SIGHUP when the terminal closed ("error: interrupted")."""
    import signal

    import core.raster

    seen = {}

    real = core.raster.grid_of_file

    def look(path):
        seen["hup"] = signal.getsignal(signal.SIGHUP)
        return real(path)

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        core.raster.grid_of_file = look
        assert main(["info", "--image", str(small_scene[0])]) == 0
    finally:
        core.raster.grid_of_file = real
        signal.signal(signal.SIGHUP, before)
    assert seen["hup"] is signal.SIG_IGN


def test_an_interruption_says_what_each_command_leaves():
    from core.__main__ import interrupted_note

    # before an epoch has finished: the one case that applies (it said both "if an epoch had finished, ...; if none had")
    assert interrupted_note("train") == "no epoch had finished, so the run left nothing: run the same command again"
    assert "the run it was replacing is left as it was" in interrupted_note("train", overwrite=True)
    assert "the run is kept as it was" in interrupted_note("train", resume=True)
    assert "ee-tasks" in interrupted_note("ee-export-image")  # started tasks run on
    assert interrupted_note("predict") == "no output was written or replaced"


def test_argument_mistakes_are_one_line(capsys):
    for argv, words in ((["predikt"], "invalid choice: 'predikt'"),
                        (["train", "--epochs", "x", "--train", "a", "--val", "b", "--out", "c"], "invalid int value: 'x'"),
                        (["predict", "--image", "x", "--out", "y", "--window", "-1,0,1,1"], "--window=-10,0,256,256")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ") and words in err, err


def test_training_on_patches_without_a_pixel_size_says_how_to_record_it(capsys, small_scene, tmp_path):
    """Trained on TFRecord patches, the card's pixel size was null without a word, so predictions on
    10 m pixels got no resolution warning."""
    from core.card import load_card

    img, lab = small_scene
    assert main(_patches(img, lab, tmp_path / "p.tfrecord.gz", "--count", "4", "--size", "64")) == 0
    capsys.readouterr()
    assert main(["train", "--train", str(tmp_path / "p.tfrecord.gz"), "--val", str(tmp_path / "p.tfrecord.gz"),
                 "--patch-size", "64", "--epochs", "1", "--steps", "1", "--batch-size", "2", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    [note] = [line for line in err.splitlines() if "did not say its pixel size" in line]
    assert load_card(tmp_path / "r" / "best.keras").pixel_size_m is None and "--pixel-size-m" in note


def test_band_numbers_against_the_file_s_band_names_are_warned_of_by_every_command(capsys, small_scene, tmp_path):
    """--bands with R and G swapped was warned of by info and predict only; patches, train and resample
    went on in silence (the README says such numbers are warned of)."""
    img, lab = small_scene
    swapped = ["--bands", "R=2,G=1,B=3,NIR=4"]
    told = "the band numbers given (R=2, G=1, B=3, NIR=4) differ from what the file's band names say"
    assert main([*_patches(img, lab, tmp_path / "p.tfrecord.gz", "--count", "1", "--size", "64"), *swapped]) == 0
    assert told in capsys.readouterr().err
    pair = f"{img}:{lab}"
    # warned of before the run starts (here it stops at once: its --out is a file)
    (tmp_path / "run").write_text("a file")
    assert main(["train", "--train", pair, "--val", pair, "--out", str(tmp_path / "run"), "--steps", "1", *swapped]) == 2
    err = capsys.readouterr().err
    assert err.count(told) == 1  # (the image read for --train and --val: said once)
    # band numbers the file lacks: the error alone (a warning for each image came before it)
    err = _err(capsys, ["train", "--train", pair, "--val", pair, "--out", str(tmp_path / "r2"), "--bands", "0,1,2,3"])
    assert err.startswith("error: band R=0 does not exist") and "differ from" not in err
    main(["resample", "--image", str(img), "--pixel-size", "60", "--out", str(tmp_path / "r.tif"), *swapped])
    assert told in capsys.readouterr().err
    # the file's own order, given as numbers, is no contradiction
    assert main([*_patches(img, lab, tmp_path / "q.tfrecord.gz", "--count", "1", "--size", "64"),
                 "--bands", "1,2,3,4"]) == 0
    assert "differ from what the file" not in capsys.readouterr().err


def test_an_interrupted_training_says_which_epoch_it_kept(capsys, monkeypatch, small_scene, tmp_path):
    """After a finished epoch, an interrupt names it and how to go on; with --overwrite, "the same command and
    --resume" would be refused (choose one), so the advice says --resume in place of --overwrite."""
    import core.train

    def interrupted(*_args, progress, **_kwargs):
        progress({"event": "epoch", "epoch": 3, "epochs": 20, "step": 50, "steps": 50, "logs": {"loss": 0.4}})
        raise KeyboardInterrupt

    monkeypatch.setattr(core.train, "train", interrupted)
    img, lab = small_scene
    train = ["train", "--train", f"{img}:{lab}", "--val", f"{img}:{lab}", "--out", str(tmp_path / "run")]
    for more, how in (([], "the same command and --resume"),
                      (["--overwrite"], "the same command, --resume in place of --overwrite"),
                      (["--resume"], "the same command")):
        assert main([*train, *more]) == 130
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"error: interrupted; epoch 3 of 20 had finished and is kept, with those before it: continue with {how}")


def test_an_empty_value_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch):
    """``--out ""`` (an unset shell variable) wrote probability.tif and the rest into the current folder."""
    monkeypatch.chdir(tmp_path)
    for argv, option in ((["predict", "--image", "x.tif", "--out", ""], "--out"),
                         (["train", "--train", "a", " ", "--val", "b", "--out", "r"], "--train"),
                         (["evaluate", "--pred", "", "--labels", "l.tif"], "--pred")):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2
        assert capsys.readouterr().err.startswith(f"error: {option} is empty; give it a value")
    assert not list(tmp_path.iterdir())


def test_an_unexpanded_home_or_a_dash_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch):
    """``--out=~/pred`` (the shell expands ``~`` only at the start of a word) made a folder named "~" in the
    current folder and said "wrote ~/pred/...", which is not in the home folder; ``--out -`` made a folder or
    run named "-"."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    for argv, said in (
        (["predict", "--image", "x.tif", "--out", "~/pred"], "--out ~/pred: the shell did not expand '~'"),
        (["fields", "--mask", "m.tif", "--out", "~/f.geojson"], f"give {home / 'f.geojson'}"),
        (["info", "--image", "~/scene.tif"], f"give {home / 'scene.tif'}"),
        (["train", "--train", "a.tif:~/l.tif", "--val", "b.tif:l.tif", "--out", "run"],
         f"give a.tif:{home / 'l.tif'}"),
        (["stack", "~/download", "--out", "s.tif"], f"give {home / 'download'}"),
        (["predict", "--image", "x.tif", "--out", "-"], "--out is '-'"),
        (["train", "--train", "a.tif:l.tif", "--val", "b.tif:l.tif", "--out", "-"], "--out is '-'"),
    ):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and said in err and len(err.strip().splitlines()) == 1, err
    assert not list(work.iterdir()) and not list(home.iterdir())
    # a file that is named so is read as it is named
    (work / "~x.tif").write_bytes(b"")
    assert "~x.tif is not a GeoTIFF" in _err(capsys, ["info", "--image", "~x.tif"])


def test_paths_are_printed_in_their_own_letters(small_scene, tmp_path, capsys, monkeypatch):
    """A folder named "Champs près de Ça" came out as "Champs pr\\u00e8s de \\u00c7a" in the JSON printed."""
    import io
    import shutil

    folder = tmp_path / "Champs près de Ça"
    folder.mkdir()
    image = shutil.copy(small_scene[0], folder / "scène.tif")
    assert main(["info", "--image", str(image)]) == 0
    out = capsys.readouterr().out
    assert "Champs près de Ça/scène.tif" in out and json.loads(out)["image"] == str(image)
    # an output that has no such letters (an ASCII pipe) gets them escaped, not a traceback
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", ascii_out)
    assert main(["info", "--image", str(image)]) == 0
    ascii_out.seek(0)
    assert "Champs pr\\u00e8s de \\u00c7a" in ascii_out.read()


def test_the_next_steps_name_the_python_that_ran_the_command(tmp_path, monkeypatch):
    """A next step printed as `python -m core ...` failed, copied as it was, with a traceback from a
    Python without the project's libraries: it names the Python that ran the command, as a shell runs it."""
    import shutil

    venv = tmp_path / "repo" / ".venv" / "bin" / "python"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert python_command(str(venv), tmp_path / "repo") == ".venv/bin/python"
    assert python_command(str(venv), tmp_path / "elsewhere") == str(venv)
    assert python_command("/opt/my env/bin/python", tmp_path) == "'/opt/my env/bin/python'"
    assert python_command(str(venv), venv.parent) == "./python"  # (a bare name would be looked up on the PATH)
    monkeypatch.setattr(shutil, "which", lambda name: str(venv))  # an activated virtual environment
    assert python_command(str(venv), tmp_path / "repo") == "python"


def test_a_missing_library_is_told_with_what_to_do_where_it_is_missing():
    """Another Python (the system's, with numpy alone) is told to run the project's; the project's own
    .venv lacking a library (a failed install) is told to install the requirements, not to use itself;
    a module of the project missing is a bug, left to its traceback."""
    from core.commands import missing_module_advice

    err = ModuleNotFoundError("No module named 'rasterio'", name="rasterio")
    other = missing_module_advice(err, "/usr/bin/python3", "/usr")
    assert other.startswith("No module named 'rasterio' in this Python (/usr/bin/python3); run the command with the "
                            "project's Python: .venv/bin/python -m core")
    own = missing_module_advice(err, str(ROOT / ".venv" / "bin" / "python"), str(ROOT / ".venv"))
    assert "the project's .venv lacks it; install the requirements again (make venv" in own
    assert missing_module_advice(ModuleNotFoundError("No module named 'core.nothing'", name="core.nothing")) is None


def test_a_python_without_the_libraries_gets_one_line_saying_which_to_use():
    """Run by a Python that lacks one of the project's libraries, a command says so in one line with
    what to do, not a traceback."""
    code = ("import sys; sys.modules['rasterio'] = None; from core.__main__ import main; "
            f"sys.exit(main(['info', '--image', {str(SAMPLE_IMAGE)!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: No module named 'rasterio") and "make venv" in line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ as Linux has them")
@pytest.mark.parametrize("command", ["resample", "stack"])
def test_a_full_disk_fails_the_command_and_keeps_the_file_it_was_to_replace(tmp_path, command):
    """A file size limit stands for a full disk: GDAL wrote the file's last blocks at close, which failed unsaid;
    the command printed "wrote ..." and exited 0, and with --overwrite a truncated file replaced a good one."""
    import resource
    import signal

    from testdata import FLANDERS_S2

    out = tmp_path / "out.tif"
    out.write_bytes(b"the earlier result")
    if command == "resample":
        args = ["resample", "--image", str(FLANDERS_S2)]
    else:  # one file per band, as a Landsat or Sentinel-2 download gives them
        with rasterio.open(FLANDERS_S2) as src:
            bands = src.read()
            profile = {**src.profile, "count": 1}
        files = []
        for i, name in enumerate(("B04", "B03", "B02", "B08")):
            files.append(tmp_path / f"T31UES_20170827_{name}_10m.tif")
            with rasterio.open(files[-1], "w", **profile) as dst:
                dst.write(bands[[2, 1, 0, 3][i]][None])
        args = ["stack", "--red", str(files[0]), "--green", str(files[1]), "--blue", str(files[2]),
                "--nir", str(files[3])]

    def limit() -> None:  # (in the child: writes past 4 kB fail with EFBIG, as on a full disk)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))

    r = subprocess.run([sys.executable, "-m", "core", *args, "--out", str(out), "--overwrite"], cwd=ROOT,
                       capture_output=True, text=True, preexec_fn=limit, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: the GeoTIFF did not reach the disk whole") and "disk has space" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "wrote" not in r.stderr + r.stdout
    assert out.read_bytes() == b"the earlier result"  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_a_full_disk_fails_predict_and_keeps_the_outputs_it_was_to_replace(capsys, small_scene, tiny_model_path,
                                                                             tmp_path, monkeypatch):
    """GDAL writes a GeoTIFF's last blocks when it is closed, and rasterio does not raise when that fails: a COG
    copy cut short by a full disk was moved into place over the earlier outputs, with "wrote ..." and exit
    status 0 (probability.tif then could not be opened); the raw file cut short was said as "'.../.predict-x/
    probability.raw.tif' not recognized as being in a supported file format", nothing to check."""
    import rasterio.shutil

    img, _ = small_scene
    out = tmp_path / "o"
    out.mkdir()
    for name in ("probability.tif", "crop_mask.tif", "summary.json"):
        (out / name).write_text("earlier")
    copy = rasterio.shutil.copy

    def cut_short(src, dst, **kwargs):  # the disk full as the copy's last blocks were written
        copy(src, dst, **kwargs)
        if Path(dst).name.startswith("probability"):
            os.truncate(dst, os.path.getsize(dst) - 100)

    monkeypatch.setattr(rasterio.shutil, "copy", cut_short)
    err = _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(out),
                        "--window", "0,0,64,64", "--overwrite"])
    assert err.startswith("error: the GeoTIFF did not reach the disk whole") and "disk has space" in err, err
    assert "probability.tif" in err and ".predict-" not in err, err
    assert sorted(p.name for p in out.iterdir()) == ["crop_mask.tif", "probability.tif", "summary.json"]
    assert all((out / n).read_text() == "earlier" for n in ("probability.tif", "crop_mask.tif", "summary.json"))
    monkeypatch.undo()

    if not sys.platform.startswith("linux"):  # (RLIMIT_FSIZE and SIGXFSZ as Linux has them)
        return
    import resource
    import signal

    def limit() -> None:  # (in the child: writes past 4 kB fail with EFBIG, as on a full disk)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))

    r = subprocess.run([sys.executable, "-m", "core", "predict", "--image", str(img), "--model", str(tiny_model_path),
                        "--out", str(out), "--overwrite"], cwd=ROOT, capture_output=True, text=True, preexec_fn=limit,
                       timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines = [line for line in r.stderr.strip().splitlines() if not line.startswith("warning: ")]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: the GeoTIFF did not reach the disk whole") and "disk has space" in lines[0]
    assert ".predict-" not in lines[0] and "wrote" not in r.stderr + r.stdout, lines[0]
    assert all((out / n).read_text() == "earlier" for n in ("probability.tif", "crop_mask.tif", "summary.json"))
    assert sorted(p.name for p in out.iterdir()) == ["crop_mask.tif", "probability.tif", "summary.json"]


def test_predict_prints_its_figures_as_json_and_a_pixel_is_crop_at_50_percent_by_default(capsys, small_scene,
                                                                                        tiny_model_path, tmp_path):
    """stdout is the prediction's figures as JSON (a script reads them); without --threshold a pixel is crop
    where its stored probability is 50% or more, as the option's help says."""
    img, _ = small_scene
    out = tmp_path / "o"
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(out),
                 "--window", "0,0,64,64"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with rasterio.open(out / "crop_mask.tif") as m, rasterio.open(out / "probability.tif") as p:
        mask, percent = m.read(1), p.read(1)
    valid, crop = int((mask != 255).sum()), int((mask == 1).sum())
    assert valid > 0
    assert np.array_equal(mask[mask != 255], (percent[mask != 255] >= 50).astype(mask.dtype))
    assert set(printed) == {"pixels", "valid_pixels", "crop_pixels", "crop_fraction", "crop_area_ha", "threshold", "note"}
    assert (printed["pixels"], printed["valid_pixels"], printed["crop_pixels"]) == (64 * 64, valid, crop)
    assert printed["threshold"] == 0.5 and printed["crop_fraction"] == pytest.approx(crop / valid, abs=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert {k: summary[k] for k in printed} == printed


def test_an_output_that_is_an_input_is_refused_even_with_overwrite(capsys, tmp_path):
    """labels-from-fields --out IMAGE and zones --out ZONES.json (a GeoJSON may end in .json) wrote over
    the input with --overwrite; refused, as patches refuses --out LABELS, and the input kept."""
    from testdata import box_ring, feature_collection

    image = write_raster(tmp_path / "img.tif", np.ones((4, 20, 20), np.int16), descriptions=["R", "G", "B", "NIR"])
    fields = tmp_path / "fields.json"
    fields.write_text(json.dumps(feature_collection(({"name": "A", "class": 1}, box_ring(0, 0, 10, 10)), crs="image")))
    mask = write_raster(tmp_path / "crop_mask.tif", np.ones((20, 20), np.uint8), nodata=255)
    kept = {p: p.read_bytes() for p in (image, fields, mask)}
    for argv, option in ((["labels-from-fields", "--fields", str(fields), "--image", str(image), "--out", str(image)],
                          "--image"),
                         (["zones", "--pred", str(mask), "--zones", str(fields), "--out", str(fields)], "--zones")):
        assert f"--out is the same file as {option}" in _err(capsys, [*argv, "--overwrite"])
    assert {p: p.read_bytes() for p in kept} == kept


def test_each_option_sets_its_own_config_value():
    """An option swapped with another or left out of its command's config (--tile with --overlap, --patience,
    --min-valid) was taken at its default without a word."""
    from core.__main__ import build_parser, patch_config, predict_config, train_config

    parser = build_parser()
    cfg = predict_config(parser.parse_args(["predict", "--image", "i.tif", "--out", "o", "--tile", "256",
                                            "--overlap", "32", "--batch-size", "3", "--threshold", "0.7",
                                            "--views", "4"]))
    assert (cfg.tile, cfg.overlap, cfg.batch_size, cfg.threshold, cfg.views) == (256, 32, 3, 0.7, 4)
    default = predict_config(parser.parse_args(["predict", "--image", "i.tif", "--out", "o"]))
    assert (default.threshold, default.views) == (0.5, 1)  # (as the help says: 0.5 = 50%, 1 view)
    cfg = train_config(parser.parse_args(["train", "--train", "a", "--val", "b", "--out", "r", "--epochs", "3",
                                          "--steps", "4", "--batch-size", "5", "--lr", "0.01", "--patch-size", "64",
                                          "--val-patches", "7", "--patience", "2", "--seed", "9",
                                          "--bn-momentum", "0.5", "--preset", "light"]))
    assert (cfg.epochs, cfg.steps_per_epoch, cfg.batch_size, cfg.learning_rate, cfg.patch_size, cfg.val_patches,
            cfg.patience, cfg.seed, cfg.bn_momentum) == (3, 4, 5, 0.01, 64, 7, 2, 9, 0.5)
    cfg = patch_config(parser.parse_args(["patches", "--image", "i", "--labels", "l", "--out", "p.tfrecord.gz",
                                          "--size", "64", "--buffer", "8", "--count", "6", "--seed", "2",
                                          "--min-valid", "0.25"]))
    assert (cfg.patch_size, cfg.kernel_buffer, cfg.count, cfg.seed, cfg.min_valid_fraction) == (64, 8, 6, 2, 0.25)
