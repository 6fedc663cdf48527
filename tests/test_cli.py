"""The CLI: real runs, and every user mistake as one line on stderr with a non-zero exit."""

import json
import os
import subprocess
import sys

import numpy as np
import rasterio

from testdata import ROOT, write_raster
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
    assert json.loads((out / "metrics.json").read_text()) == res


def _err(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    return err


def test_user_mistakes_are_one_line(capsys, tmp_path, small_scene, tiny_model_path):
    img, lab = small_scene
    assert "not found" in _err(capsys, ["predict", "--image", str(tmp_path / "x.tif"), "--out", str(tmp_path / "o")])
    rgb = write_raster(tmp_path / "rgb.tif", np.ones((3, 300, 300), np.int16), descriptions=["R", "G", "B"])
    assert "NIR" in _err(capsys, ["predict", "--image", str(rgb), "--model", str(tiny_model_path), "--out", str(tmp_path / "o")])
    assert "not inside" in _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out",
                                         str(tmp_path / "o"), "--window", "0,0,9999,256"])
    with rasterio.open(lab) as src:
        shifted = write_raster(tmp_path / "shifted.tif", src.read(1), transform=src.transform * src.transform.translation(1, 0))
    pred = tmp_path / "p"
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(pred)]) == 0
    capsys.readouterr()
    assert "grid" in _err(capsys, ["evaluate", "--pred", str(pred / "crop_mask.tif"), "--labels", str(shifted)])
    assert "already" in _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(pred)])
    assert "label map" in _err(capsys, ["evaluate", "--pred", str(pred / "crop_mask.tif"), "--labels", str(lab),
                                        "--label-map", "nope"])
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "bad.json").write_text(tiny_model_path.with_suffix(".json").read_text())
    assert "truncated" in _err(capsys, ["predict", "--image", str(img), "--model", str(bad), "--out", str(tmp_path / "q")])
    assert "band" in _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out",
                                   str(tmp_path / "r"), "--bands", "1,2"])


def test_patches_command(capsys, small_scene, tmp_path):
    img, lab = small_scene
    out = tmp_path / "p.tfrecord.gz"
    assert main(["patches", "--image", str(img), "--labels", str(lab), "--out", str(out), "--count", "3", "--size", "64",
                 "--buffer", "16"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["patches"] == 3 and info["side"] == 96
    assert "already exists" in _err(capsys, ["patches", "--image", str(img), "--labels", str(lab), "--out", str(out)])
    assert "patch_size" in _err(capsys, ["patches", "--image", str(img), "--labels", str(lab), "--out",
                                         str(tmp_path / "z.tfrecord.gz"), "--size", "70"])


def test_predict_warns_when_the_pixels_differ_from_the_training_pixels(capsys, tmp_path):
    """The shipped model (30 m Landsat) on a 10 m Sentinel-2 image: a warning line, and in summary.json."""
    from testdata import FTW

    code = main(["predict", "--image", str(FTW), "--bands", "1,2,3,4", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 0
    warning = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "30 m" in warning[0] and "10 m" in warning[0] and "resample" in warning[0]
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["warnings"] == [warning[0][len("warning: "):]]
