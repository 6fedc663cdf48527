"""The ee-* CLI commands, offline: parsing, dry-run exports, tasks with a fake client, fetch and upload
with faked Earth Engine calls. Nothing here opens a connection (see conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from google.auth.credentials import AnonymousCredentials

from core.__main__ import main
from core.ee import auth
from core.ee import cli
from core.ee.auth import EEStatus
from core.ee.composites import _scene_summary_cached

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_credentials(tmp_path, monkeypatch):
    """No key file, no project, no stored user credentials, no memo of an earlier initialisation."""
    from ee import oauth

    monkeypatch.setattr(oauth, "get_credentials_path", lambda: str(tmp_path / "nocreds" / "credentials"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("EE_PROJECT", raising=False)
    monkeypatch.setattr(auth, "_last_ok", None)
    _scene_summary_cached.cache_clear()
    yield
    _scene_summary_cached.cache_clear()


@pytest.fixture
def ready(monkeypatch):
    """Earth Engine 'initialised' (the ee_offline fixture does the real offline initialisation)."""
    calls = []

    def initialize(project=None, *a, **kw):
        calls.append(project)
        return EEStatus(True, project or "p", "test", f"Earth Engine ready: project {project or 'p'} (test)")

    monkeypatch.setattr(auth, "initialize", initialize)
    return calls


#: the command's own storage client, which the fixture below replaces
REAL_STORAGE_CLIENT = cli.storage_client


@pytest.fixture(autouse=True)
def storage(monkeypatch):
    """The Cloud Storage the commands see (an export looks there for an earlier export's files): empty."""
    from fake_ee_ops import FakeStorage

    made = FakeStorage()
    monkeypatch.setattr(cli, "storage_client", lambda args, project: made)
    return made


def run(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(capsys, argv) -> str:
    code, out, err = run(capsys, argv)
    err = err.strip()
    assert code == 2, (out, err)
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# ------------------------------------------------------------------------------------ parser


def test_parser_imports_no_ee():
    code = (
        "import sys\n"
        "import core.ee.cli\n"
        "from core.__main__ import build_parser\n"
        "p = build_parser()\n"
        "p.parse_args(['ee-tasks', '--active'])\n"
        "p.parse_args(['ee-fetch', '--bbox', '-72.78', '-16.65', '-72.67', '-16.58', '--out', 'x'])\n"
        "p.parse_args(['ee-export-image', '--bbox=-72.78,-16.65,-72.67,-16.58', '--dest', 'drive:f', '--name', 'n', '--submit'])\n"
        "assert not [m for m in sys.modules if m == 'ee' or m.startswith('ee.')], 'ee imported'\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_every_command_is_registered():
    from core.__main__ import build_parser

    p = build_parser()
    for name in ("ee-status", "ee-fetch", "ee-export-patches", "ee-export-image", "ee-tasks", "ee-upload"):
        assert callable(p.parse_args([name] + {
            "ee-status": [], "ee-tasks": [],
            "ee-fetch": ["--preset", "camana", "--out", "o"],
            "ee-export-patches": ["--preset", "camana", "--dest", "gcs:b/p", "--name", "n"],
            "ee-export-image": ["--preset", "camana", "--dest", "gcs:b/p", "--name", "n"],
            "ee-upload": ["--prediction", "p.tif", "--gcs", "gs://b/p.tif", "--asset", "projects/p/assets/a"],
        }[name]).func)
    a = p.parse_args(["ee-fetch", "--preset", "camana", "--start", "2005-03-01", "--end", "2005-09-30", "--out", "o"])
    assert (a.start_date, a.end_date) == ("2005-03-01", "2005-09-30")
    # --start is the first date in every command (it started the export tasks once: that is --submit)
    for command in ("ee-export-patches", "ee-export-image"):
        a = p.parse_args([command, "--preset", "camana", "--dest", "gcs:b/p", "--name", "n", "--submit",
                          "--start", "2005-03-01", "--end", "2005-09-30"])
        assert a.submit is True and (a.start_date, a.end_date) == ("2005-03-01", "2005-09-30")
        a = p.parse_args([command, "--preset", "camana", "--dest", "gcs:b/p", "--name", "n", "--start-date", "2005-03-01"])
        assert a.submit is False and a.start_date == "2005-03-01"
        # the side and buffer take the names the other commands give them
        a = p.parse_args([command, "--preset", "camana", "--dest", "gcs:b/p", "--name", "n", "--patch-size", "128",
                          "--buffer", "16"])
        assert (a.patch, a.kernel) == (128, 16)
    with pytest.raises(SystemExit):  # --preset and --bbox exclude each other
        p.parse_args(["ee-fetch", "--preset", "camana", "--bbox=1,2,3,4", "--out", "o"])


def test_parse_helpers():
    from core.errors import ConfigError, RegionError

    assert cli.parse_bbox("-72.78, -16.65,-72.67,-16.58") == (-72.78, -16.65, -72.67, -16.58)
    # as predict --bbox reads a box: spaces and brackets too (a notebook's list pasted)
    assert cli.parse_bbox("[-72.78 -16.65 -72.67 -16.58]") == (-72.78, -16.65, -72.67, -16.58)
    for bad in ("1,2,3", "a,b,c,d", "10,0,5,1", "0,5,1,0", "0,-95,1,1", "-190,0,1,1", "nan,0,1,1", "0,0,1e400,1"):
        with pytest.raises(RegionError):
            cli.parse_bbox(bad)
    with pytest.raises(RegionError, match=r"; give a region across the 180th meridian as two boxes, one on each side, "
                                          r"in two commands \(e.g. 179.5,-17,180,-16 and -180,-17,-179.5,-16\)$"):
        cli.parse_bbox("179.5,-17,-179.5,-16")  # Fiji: said how (only "west < east" before)
    with pytest.raises(RegionError) as err:
        cli.parse_bbox("10,0,5,1")  # a slip, not across the meridian: no such advice
    assert "180th meridian" not in str(err.value)
    d = cli.parse_destination("gcs:crop-bucket/runs/camana")
    assert (d.kind, d.bucket, d.prefix) == ("gcs", "crop-bucket", "runs/camana")
    d = cli.parse_destination("gs://crop-bucket")
    assert (d.kind, d.bucket, d.prefix) == ("gcs", "crop-bucket", "crop-mapping")
    d = cli.parse_destination("drive:crop_exports")
    assert (d.kind, d.prefix) == ("drive", "crop_exports")
    # a Drive folder is one name: Earth Engine takes "a/b" as a folder literally named "a/b", not a subfolder
    for bad in ("s3:bucket/x", "crop-bucket/x", "gcs:", "gcs:gs://x/y", "drive:", "drive:crops/camana"):
        with pytest.raises(ConfigError):
            cli.parse_destination(bad)
    with pytest.raises(ConfigError, match="no --dest given: enter drive:FOLDER for a Google Drive folder"):
        cli.parse_destination("  ")  # the export form left empty
    assert cli._points("275", "--train-points") == (275, 275)
    assert cli._points("300,250", "--train-points") == (300, 250)
    with pytest.raises(ConfigError):
        cli._points("1,2,3", "--train-points")


# ------------------------------------------------------------------------------------ status


def test_status_without_credentials(capsys):
    code, out, err = run(capsys, ["ee-status"])
    assert code == 0, err
    st = json.loads(out)
    assert st["ok"] is False and st["method"] == "none"
    assert "earthengine authenticate" in st["message"] and "EE_PROJECT" in st["message"]
    assert run(capsys, ["ee-status", "--strict"])[0] == 1
    assert "connecting" not in err  # a pipe or a log gets only the result


def test_a_terminal_is_told_that_earth_engine_is_being_reached(capsys, monkeypatch):
    """Offline, reaching Earth Engine took 30-50 s before its error, in silence."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run(capsys, ["ee-status"])
    assert err.startswith("connecting to Earth Engine...") and json.loads(out)["method"] == "none"


def test_status_ready_prints_no_key_material(capsys, tmp_path, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    import ee

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "key-project", "private_key_id": "f00dfeedbeefcafe0123456789abcdef01234567",
            "private_key": pem, "client_email": "cropmap@key-project.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token"}
    key = tmp_path / "key.json"
    key.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    inits = []
    monkeypatch.setattr(ee, "Initialize", lambda credentials=None, **kw: inits.append(kw))
    code, out, err = run(capsys, ["ee-status", "--project", "cli-project"])
    assert code == 0 and len(inits) == 1 and inits[0]["project"] == "cli-project"
    st = json.loads(out)
    assert st["ok"] is True and st["project"] == "cli-project" and st["method"] == "service_account_file"
    body = [line for line in pem.splitlines() if line and "PRIVATE KEY" not in line]
    for secret in body[:3] + body[-2:] + [info["private_key_id"]]:
        assert secret not in out and secret not in err


# ------------------------------------------------------------------------------------ user mistakes


def test_a_western_bbox_after_a_space_is_read_as_the_bbox():
    """``--bbox -72.8,...`` (no '='): argparse took the value for an option ("expected at least one argument")."""
    from core.__main__ import _negative_lists_joined

    assert _negative_lists_joined(["ee-fetch", "--bbox", "-72.78,-16.65,-72.67,-16.58", "--out", "x"]) == [
        "ee-fetch", "--bbox=-72.78,-16.65,-72.67,-16.58", "--out", "x"]
    args = ["ee-fetch", "--bbox", "-72.78", "-16.65", "-72.67", "-16.58", "--out", "x"]  # spaces: as before
    assert _negative_lists_joined(args) == args


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "10,0,5,1", "0,-95,1,1"])
def test_bad_bbox_is_one_clean_line(capsys, bbox):
    err = one_line_error(capsys, ["ee-fetch", f"--bbox={bbox}", "--out", "never-written"])
    assert "--bbox" in err
    err = one_line_error(capsys, ["ee-export-patches", f"--bbox={bbox}", "--dest", "gcs:crop-bucket/x", "--name", "n"])
    assert "--bbox" in err
    assert not Path("never-written").exists()


def test_other_mistakes_are_one_line(capsys, tmp_path):
    assert "preset" in one_line_error(capsys, ["ee-fetch", "--preset", "nowhere", "--out", str(tmp_path)])
    assert "--dest" in one_line_error(capsys, ["ee-export-image", "--preset", "camana", "--dest", "s3:b/x", "--name", "n"])
    assert "sensor" in one_line_error(capsys, ["ee-fetch", "--preset", "camana", "--sensor", "L99", "--out", str(tmp_path)])
    assert "Sentinel-2" in one_line_error(capsys, ["ee-fetch", "--preset", "camana", "--sensor", "S2", "--out", str(tmp_path)])
    assert "--patch must be a multiple of 16" in one_line_error(
        capsys, ["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/x", "--name", "n", "--patch", "100"])
    # the options are named as typed, not as the fields they set
    err = one_line_error(capsys, ["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/x", "--name", "n",
                                  "--kernel", "30"])
    assert err.startswith("error: --kernel 30 (the context margin) does not fit prediction: --patch + 2 x --kernel must be a multiple of 16")
    assert "kernel_buffer" not in err and "patch_size" not in err
    assert "--kernel (the context margin) must be 0-64 px" in one_line_error(capsys, ["ee-export-patches", "--preset", "camana", "--dest",
                                                              "gcs:crop-bucket/x", "--name", "n", "--patch", "128",
                                                              "--kernel", "65"])
    # --start, once the export's start flag, is a date: left without one, the message points to --submit
    with pytest.raises(SystemExit):
        main(["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/x", "--name", "n", "--start"])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--submit starts export tasks" in err, err
    assert "export name" in one_line_error(capsys, ["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/x",
                                                    "--name", "my crops"])  # before credentials are asked for
    assert "at least 8 px" in one_line_error(capsys, ["ee-fetch", "--bbox=-72.7,-16.6,-72.699,-16.599", "--out", str(tmp_path)])
    # a valid request without credentials: told what to set up, nothing written
    err = one_line_error(capsys, ["ee-fetch", "--preset", "camana", "--out", str(tmp_path / "o")])
    assert "earthengine authenticate" in err and not (tmp_path / "o").exists()
    assert "earthengine authenticate" in one_line_error(capsys, ["ee-tasks"])
    assert "earthengine authenticate" in one_line_error(
        capsys, ["ee-export-patches", "--preset", "camana", "--dest", "gcs:crop-bucket/x", "--name", "n"])


# ------------------------------------------------------------------------------------ exports


def test_an_export_of_more_tasks_than_earth_engine_queues_is_refused_before_earth_engine_is_set_up(capsys, ready):
    err = one_line_error(capsys, ["ee-export-patches", "--preset", "camana", "--dest", "gcs:crop-bucket/x", "--name", "n",
                                  "--train-points", "99999999999"])  # (building the tasks hung)
    assert "export tasks, but Earth Engine holds at most 3,000 pending tasks per project: ask for fewer points" in err
    assert ready == []


def test_export_patches_dry_run(ee_offline, ready, capsys):
    code, out, err = run(capsys, ["ee-export-patches", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "camana"])
    assert code == 0, err
    res = json.loads(out)
    assert res["dry_run"] is True and err.strip().endswith("not started; add --submit to start them")
    assert res["selectors"] == ["R", "G", "B", "NIR", "NDVI", "crop"]
    assert res["patchDimensions"] == [256, 256] and res["kernel_buffer"] == 0
    assert res["train_points"] == [275, 275] and res["test_points"] == [50, 50]
    assert res["labels"]["product"] == "glcfcs30d" and res["composite"]["sensor"] == "L5"
    tasks = res["tasks"]
    assert [t["points"] for t in tasks] == [100, 100, 100, 100, 100, 50, 100]
    assert [t["split"] for t in tasks] == ["train"] * 6 + ["test"]
    first = tasks[0]
    assert first["description"] == "camana_train_000" and first["task_type"] == "EXPORT_TABLE"
    assert first["destination"] == "gs://crop-bucket/camana/camana/train_000"
    assert first["config"]["selectors"] == res["selectors"]
    assert first["config"]["fileExportOptions"]["cloudStorageDestination"] == {"bucket": "crop-bucket",
                                                                              "filenamePrefix": "camana/camana/train_000"}
    assert "expression" not in first["config"]

    code, out, err = run(capsys, ["ee-export-patches", "--bbox=-72.78,-16.65,-72.67,-16.58", "--sensor", "l8",
                                  "--start-date", "2020-01-01", "--end", "2020-12-31", "--labels", "worldcover",
                                  "--dest", "drive:crop_exports", "--name", "c", "--train-points", "10", "--test-points", "5",
                                  "--points-per-task", "8", "--patch", "128", "--kernel", "16"])
    assert code == 0, err
    res = json.loads(out)
    assert [t["points"] for t in res["tasks"]] == [8, 8, 4, 8, 2]
    assert res["patchDimensions"] == [160, 160] and res["patch_size"] == 128 and res["kernel_buffer"] == 16
    assert res["composite"]["sensor"] == "L8" and res["labels"] == {**res["labels"], "product": "worldcover", "year": None}
    assert res["tasks"][0]["config"]["fileExportOptions"]["driveDestination"]["folder"] == "crop_exports"
    assert "note:" not in err
    # an early CDL year: said to map some states only (a region outside them gets no labels)
    code, out, err = run(capsys, ["ee-export-patches", "--bbox=-93.7,41.9,-93.5,42.1", "--sensor", "l5", "--start",
                                  "2005-01-01", "--end", "2005-12-31", "--labels", "cdl", "--dest", "gcs:crop-bucket/p", "--name", "c"])
    assert code == 0, err
    assert "note: the Cropland Data Layer of 2005 maps some states only" in err
    # WorldCover (2021 alone, the default labels of a box) for a 2005 composite: said, with the product that has 2005
    code, out, err = run(capsys, ["ee-export-patches", "--bbox=-72.78,-16.65,-72.67,-16.58", "--sensor", "l5", "--start",
                                  "2005-01-01", "--end", "2005-12-31", "--dest", "gcs:crop-bucket/p", "--name", "c"])
    assert code == 0, err
    assert "note: ESA WorldCover maps 2021 only, 16 years from this 2005 composite" in err and "GLC-FCS30D" in err
    # Landsat 7 after its scan-line corrector failed (May 2003): its striped gaps said before anything is fetched
    code, out, err = run(capsys, ["ee-export-patches", "--bbox=-72.78,-16.65,-72.67,-16.58", "--sensor", "l7", "--start",
                                  "2010-01-01", "--end", "2010-12-31", "--labels", "glcfcs30d", "--dest",
                                  "gcs:crop-bucket/p", "--name", "c"])
    assert code == 0, err
    assert "note: Landsat 7's scan-line corrector failed on 2003-05-31" in err
    code, out, err = run(capsys, ["ee-export-patches", "--bbox=-72.78,-16.65,-72.67,-16.58", "--sensor", "l7", "--start",
                                  "2001-01-01", "--end", "2002-12-31", "--labels", "glcfcs30d", "--dest",
                                  "gcs:crop-bucket/p", "--name", "c"])
    assert code == 0 and "scan-line" not in err  # (before it failed: whole scenes)
    # a region smaller than one patch (with its kernel buffer): said before the tasks, as the dashboard says it
    code, out, err = run(capsys, ["ee-export-patches", "--bbox=-72.75,-16.64,-72.74,-16.63", "--sensor", "l8", "--start",
                                  "2020-01-01", "--end", "2020-12-31", "--labels", "worldcover", "--dest",
                                  "gcs:crop-bucket/p", "--name", "c", "--patch", "32", "--kernel", "8"])
    assert code == 0 and "smaller than one 48 px patch" in err, err


def test_export_patches_start(ee_offline, ready, capsys, monkeypatch):
    sent = []

    def export_table(request_id, params):
        sent.append(params["description"])
        return {"name": f"projects/p/operations/OP{len(sent)}"}

    monkeypatch.setattr(ee_offline.data, "exportTable", export_table)
    found = {"0": 2, "1": 4}  # the sample's class histogram (getInfo): 3 + 1 asked for per class
    # (one answer for both getInfo calls: the scene count's keys are no class, the histogram's no count)
    monkeypatch.setattr(ee_offline.data, "computeValue", lambda obj: {**found, "count": 5, "dates": [1]})
    err = one_line_error(capsys, ["ee-export-patches", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name",
                                  "s", "--train-points", "3", "--test-points", "1", "--points-per-task", "4", "--submit"])
    assert "only 2 not crop point(s) of the 4 asked for" in err and "fewer points" in err and sent == []
    found = {"0": 4, "1": 4}
    code, out, err = run(capsys, ["ee-export-patches", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "s",
                                  "--train-points", "3", "--test-points", "1", "--points-per-task", "4", "--submit"])
    assert code == 0, err
    res = json.loads(out)
    assert res["dry_run"] is False and sent == ["s_train_000", "s_train_001", "s_test_000"]
    assert res["points_found"] == {"not crop": 4, "crop": 4}
    assert [t["id"] for t in res["tasks"]] == ["OP1", "OP2", "OP3"]
    assert "ee-tasks --wait OP1 OP2 OP3" in err

    def failing(request_id, params):
        sent.append(params["description"])
        if len(sent) > 4:
            raise ee_offline.EEException("Permission denied on bucket crop-bucket")
        return {"name": "projects/p/operations/FIRST"}

    sent.clear()
    monkeypatch.setattr(ee_offline.data, "exportTable", failing)
    err = one_line_error(capsys, ["ee-export-patches", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "s",
                                  "--train-points", "3", "--test-points", "1", "--points-per-task", "1", "--submit"])
    assert "already started" in err and "FIRST" in err and "--cancel" in err


def test_an_export_over_an_earlier_exports_files_is_refused_unless_replaced(ee_offline, ready, capsys, monkeypatch, storage):
    # training reads gs://.../s/train_*.tfrecord.gz: an earlier export of 3 tasks left train_002, which a new one of
    # 2 tasks would not write over, and training would read with the new files
    earlier = [f"gs://crop-bucket/camana/s/{f}" for f in ("train_000.tfrecord.gz", "train_001.tfrecord.gz",
                                                           "train_002.tfrecord.gz", "test_000.tfrecord.gz")]
    others = ["gs://crop-bucket/camana/s/notes.txt", "gs://crop-bucket/camana/s2/train_000.tfrecord.gz",
              "gs://crop-bucket/camana/s/image-00000.tfrecord.gz"]
    storage.uploaded.update({uri: b"x" for uri in earlier + others})
    sent = []
    monkeypatch.setattr(ee_offline.data, "exportTable",
                        lambda rid, params: sent.append(params["description"]) or {"name": f"projects/p/operations/OP{len(sent)}"})
    monkeypatch.setattr(ee_offline.data, "computeValue", lambda obj: {"0": 4, "1": 4, "count": 5, "dates": [1]})
    argv = ["ee-export-patches", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "s",
            "--train-points", "3", "--test-points", "1", "--points-per-task", "4"]
    code, out, err = run(capsys, argv)  # a dry run says so
    assert code == 0 and "already holds 4 file(s) of an earlier export" in err and "--overwrite" in err, err
    err = one_line_error(capsys, [*argv, "--submit"])
    assert "gs://crop-bucket/camana/s/ already holds 4 training patch files of an earlier export named 's'" in err
    assert "give another export name, delete them, or replace them" in err
    assert sent == [] and storage.deleted == []
    code, out, err = run(capsys, [*argv, "--submit", "--overwrite"])
    assert code == 0, err
    assert sent == ["s_train_000", "s_train_001", "s_test_000"]
    assert storage.deleted == sorted(earlier) and sorted(storage.uploaded) == sorted(others)  # (no other file touched)
    # an image export's own files alike; a patch export's are not its own
    storage.uploaded.update({uri: b"x" for uri in earlier})
    monkeypatch.setattr(ee_offline.data, "exportImage", lambda rid, params: {"name": "projects/p/operations/IMG1"})
    storage.uploaded["gs://crop-bucket/camana/s/image-mixer.json"] = b"{}"
    err = one_line_error(capsys, ["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "s",
                                  "--submit"])
    assert "already holds 2 image export files" in err
    storage.deleted.clear()
    code, out, err = run(capsys, ["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "s",
                                  "--submit", "--overwrite"])
    assert code == 0, err
    assert storage.deleted == ["gs://crop-bucket/camana/s/image-00000.tfrecord.gz", "gs://crop-bucket/camana/s/image-mixer.json"]
    # a bucket the account cannot list: the export is not held back, and the warning says what was not checked
    monkeypatch.setattr(storage, "list_blobs", lambda *a, **k: (_ for _ in ()).throw(PermissionError("403 list denied")))
    code, out, err = run(capsys, ["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "t",
                                  "--submit"])
    assert code == 0 and "could not be checked (PermissionError: 403 list denied)" in err, err
    # Drive cannot be looked into: nothing is listed
    storage.listed.clear()
    code, out, err = run(capsys, ["ee-export-image", "--preset", "camana", "--dest", "drive:f", "--name", "s", "--submit"])
    assert code == 0 and storage.listed == [], err


def test_export_image_dry_run(ee_offline, ready, capsys):
    code, out, err = run(capsys, ["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "camana",
                                  "--patch", "256", "--kernel", "32"])
    assert code == 0, err
    res = json.loads(out)
    assert res["dry_run"] is True and err.strip() == "dry run: the image export was not started; add --submit to start it"
    assert res["patchDimensions"] == [256, 256] and res["kernelSize"] == [64, 64]
    assert res["formatOptions"] == {"patchDimensions": [256, 256], "kernelSize": [64, 64], "compressed": True,
                                    "maxFileSize": 100 * 1024 * 1024}
    assert res["bands"] == ["R", "G", "B", "NIR", "NDVI"] and res["mixer"] == "gs://crop-bucket/camana/camana/image*mixer.json"
    # the region's box grown to whole patches: 2 x 2 of 256 px for Camana's ~395 x 286 px at 30 m
    grid = res["grid"]
    assert (grid["crs"], grid["width"], grid["height"]) == ("EPSG:32718", 512, 512)
    assert 256 < grid["region_width"] <= 512 and 256 < grid["region_height"] <= 512 and grid["transform"][0] == 30.0
    (task,) = res["tasks"]
    assert task["task_type"] == "EXPORT_IMAGE" and task["description"] == "camana_image"
    opts = task["config"]["fileExportOptions"]
    assert opts["fileFormat"] == "TF_RECORD_IMAGE"
    assert opts["tfRecordOptions"]["tileDimensions"] == {"width": 256, "height": 256}
    assert opts["tfRecordOptions"]["marginDimensions"] == {"width": 64, "height": 64}
    assert opts["cloudStorageDestination"]["filenamePrefix"] == "camana/camana/image"

    code, out, err = run(capsys, ["ee-export-image", "--preset", "camana", "--dest", "drive:crop_exports", "--name", "c", "--kernel", "0"])
    assert code == 0, err
    res = json.loads(out)
    assert res["kernelSize"] == [0, 0] and "kernelSize" not in res["formatOptions"]
    assert "marginDimensions" not in res["tasks"][0]["config"]["fileExportOptions"]["tfRecordOptions"]


def test_export_image_start(ee_offline, ready, capsys, monkeypatch):
    sent = []
    monkeypatch.setattr(ee_offline.data, "exportImage", lambda rid, params: sent.append(rid) or {"name": "projects/p/operations/IMG1"})
    # no scene in the dates: said before a task is started (its task failed after its time in the queue,
    # "did not match any bands")
    monkeypatch.setattr(ee_offline.data, "computeValue", lambda obj: {"count": 0, "dates": []})
    err = one_line_error(capsys, ["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "c",
                                  "--start", "2019-01-01", "--end", "2019-01-20", "--sensor", "l8", "--submit"])
    assert err.startswith("error: no Landsat 8 OLI scene with under") and "widen the dates" in err and sent == []
    monkeypatch.setattr(ee_offline.data, "computeValue", lambda obj: {"count": 3, "dates": [1]})
    code, out, err = run(capsys, ["ee-export-image", "--preset", "camana", "--dest", "gcs:crop-bucket/camana", "--name", "c", "--submit"])
    assert code == 0, err
    assert json.loads(out)["tasks"] == [{"id": "IMG1", "description": "c_image", "destination": "gs://crop-bucket/camana/c/image"}]
    assert "mixer.json" in err and "ee-tasks --wait IMG1" in err
    assert "The export is 512 x 512 px, the region's box with context around it, grown to whole patches (the box is its " in err
    assert "from column 32, row 32)" in err


# ------------------------------------------------------------------------------------ tasks


from fake_ee_ops import FakeAssets, FakeOps, FakeStorage, fake_compute, image_asset, op  # noqa: E402


@pytest.fixture
def fake_ops(monkeypatch):
    holder = {}

    def install(script):
        holder["client"] = FakeOps(script)
        monkeypatch.setattr(cli, "tasks_client", lambda args: holder["client"])
        return holder["client"]

    return install


def test_tasks_list(capsys, fake_ops):
    fake_ops({"A": [op("A", "RUNNING", "camana_train_000", created="2026-01-02T00:00:00Z")],
              "B": [op("B", "FAILED", "camana_test_000", error="User memory limit exceeded.\nat sampleRegions")],
              "C": [op("C", "PENDING", "camana_image")]})
    code, out, err = run(capsys, ["ee-tasks"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "DESCRIPTION", "ERROR"]
    assert lines[1].split()[:3] == ["A", "RUNNING", "camana_train_000"]  # newest first
    row_b = next(line for line in lines if line.startswith("B "))
    assert "FAILED" in row_b and "User memory limit exceeded. at sampleRegions" in row_b  # error on one line
    assert len(lines) == 4
    code, out, _ = run(capsys, ["ee-tasks", "--active"])
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["A", "C"]
    code, out, _ = run(capsys, ["ee-tasks", "--json", "--limit", "2"])
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["A", "B"] and rows[1]["state"] == "FAILED" and "memory" in rows[1]["error"]
    fake_ops({})
    assert run(capsys, ["ee-tasks"])[1].strip() == "no tasks"


def test_tasks_cancel(capsys, fake_ops):
    client = fake_ops({"A": [op("A", "RUNNING", "a")], "B": [op("B", "SUCCEEDED", "b")]})
    code, out, err = run(capsys, ["ee-tasks", "--cancel", "A", "B"])
    assert code == 0, err
    assert client.cancelled == ["A"]  # B had finished: nothing to cancel
    states = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert states == {"A": "CANCEL_REQUESTED", "B": "COMPLETED"}
    assert "no Earth Engine task with id Z" in one_line_error(capsys, ["ee-tasks", "--cancel", "Z"])
    # a typo among the ids: the others are still cancelled, and said to be (only the error was printed, and the
    # ids after the typo were not tried)
    client = fake_ops({"A": [op("A", "RUNNING", "a")], "C": [op("C", "RUNNING", "c")]})
    code, out, err = run(capsys, ["ee-tasks", "--cancel", "A", "ZZZ", "C"])
    assert code == 2 and client.cancelled == ["A", "C"]
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["A", "CANCEL_REQUESTED"], ["C", "CANCEL_REQUESTED"]]
    assert err.startswith("error: 1 of the 3 tasks could not be cancelled (the others are listed above): ZZZ: no "
                          "Earth Engine task with id ZZZ") and len(err.strip().splitlines()) == 1


def test_tasks_wait(capsys, fake_ops):
    fake_ops({"A": [op("A", "PENDING"), op("A", "RUNNING"), op("A", "SUCCEEDED", "a")], "B": [op("B", "SUCCEEDED", "b")]})
    code, out, err = run(capsys, ["ee-tasks", "--wait", "A", "projects/p/operations/B", "--poll", "0", "--json"])
    assert code == 0, err
    assert [(r["id"], r["state"]) for r in json.loads(out)] == [("A", "COMPLETED"), ("B", "COMPLETED")]

    fake_ops({"A": [op("A", "RUNNING"), op("A", "FAILED", "camana_train_000", error="User memory limit exceeded.")]})
    err = one_line_error(capsys, ["ee-tasks", "--wait", "A", "--poll", "0"])
    assert "camana_train_000 failed: User memory limit exceeded; export again with fewer points per task" in err and "--points-per-task" in err

    fake_ops({"A": [op("A", "CANCELLED", "a")]})
    assert "cancelled" in one_line_error(capsys, ["ee-tasks", "--wait", "A", "--poll", "0"])

    fake_ops({"B": [op("B", "RUNNING")]})
    assert "still running after 0 s" in one_line_error(capsys, ["ee-tasks", "--wait", "B", "--poll", "0", "--timeout", "0"])


@pytest.mark.parametrize("argv, said", [
    (["--wait", "A", "--poll", "nan"], "--poll must be a number of seconds between polls, from 0 to 86400"),
    (["--wait", "A", "--poll=-1"], "--poll must be"),
    (["--wait", "A", "--poll", "1e12"], "--poll must be"),  # (time.sleep overflowed)
    (["--wait", "A", "--timeout", "inf"], "--timeout must be a number of seconds, 0 or more"),
    (["--wait", "A", "--timeout=-5"], "--timeout must be"),
    (["--limit=-1"], "--limit must be a number of tasks, 1 or more"),  # (was every task but the oldest)
    (["--limit", "0"], "--limit must be"),  # (was every task)
])
def test_tasks_pace_and_limit_are_checked_before_earth_engine_is_asked(capsys, monkeypatch, argv, said):
    asked = []
    monkeypatch.setattr(cli, "tasks_client", lambda args: asked.append(args))
    assert said in one_line_error(capsys, ["ee-tasks", *argv])
    assert asked == []


def test_upload_wait_pace_is_checked_before_anything_is_uploaded(capsys, monkeypatch, ready):
    monkeypatch.setattr(cli, "storage_client", lambda *a: pytest.fail("a storage client was made"))
    assert "--poll must be" in one_line_error(capsys, ["ee-upload", "--prediction", "none.tif", "--gcs", "gs://crop-bucket/a.tif",
                                                       "--asset", "projects/p/assets/a", "--wait", "--poll=-inf"])
    assert ready == []


def test_wait_raises_task_failed_error(fake_ops):
    from core.__main__ import build_parser
    from core.ee.errors import EETaskFailedError

    fake_ops({"A": [op("A", "FAILED", "x", error="Bucket crop-bucket does not exist")]})
    args = build_parser().parse_args(["ee-tasks", "--wait", "A", "--poll", "0"])
    with pytest.raises(EETaskFailedError) as info:
        args.func(args)
    assert info.value.task_id == "A" and "bucket exists" in str(info.value)


# ------------------------------------------------------------------------------------ upload


def test_upload(capsys, tmp_path, monkeypatch, ready, fake_ops):
    import ee

    from affine import Affine

    from testdata import write_raster

    pred = tmp_path / "pred"
    pred.mkdir()
    utm = {"crs": "EPSG:32718", "transform": Affine(30, 0, 735960, 0, -30, 8167050)}
    write_raster(pred / "probability.tif", np.array([[0, 40], [100, 255]], np.uint8), nodata=255, **utm)
    cog = (pred / "probability.tif").read_bytes()
    (pred / "summary.json").write_text(json.dumps({"threshold": 0.5, "crop_fraction": 0.25, "note": "x"}))
    storage, ingested = FakeStorage(), []
    monkeypatch.setattr(cli, "storage_client", lambda args, project: storage)

    def start_ingestion(request_id, manifest, allow_overwrite):
        ingested.append((manifest, allow_overwrite))
        return {"id": "ING1", "name": "projects/my-proj/operations/ING1", "started": "OK"}

    monkeypatch.setattr(ee.data, "startIngestion", start_ingestion)
    monkeypatch.setattr(ee.data, "getAsset", assets := FakeAssets())
    code, out, err = run(capsys, ["ee-upload", "--prediction", str(pred / "probability.tif"), "--gcs", "gs://crop-bucket/pred/camana.tif",
                                  "--asset", "camana_pred", "--project", "my-proj"])
    assert code == 0, err
    res = json.loads(out)
    assert res == {"task_id": "ING1", "asset": "projects/my-proj/assets/camana_pred", "gcs": "gs://crop-bucket/pred/camana.tif",
                   "band": "crop_probability"}
    assert storage.uploaded == {"gs://crop-bucket/pred/camana.tif": cog}
    manifest, overwrite = ingested[0]
    assert manifest["name"] == "projects/my-proj/assets/camana_pred" and overwrite is False
    assert manifest["tilesets"][0]["sources"][0]["uris"] == ["gs://crop-bucket/pred/camana.tif"]
    assert manifest["bands"][0]["missingData"] == {"values": [255]}
    assert manifest["properties"] == {"source": "crop-mapping", "file": "probability.tif", "threshold": 0.5, "crop_fraction": 0.25}
    assert "ee-tasks --wait ING1" in err

    # a folder works too, with --wait on the ingestion task
    fake_ops({"ING1": [op("ING1", "RUNNING"), op("ING1", "SUCCEEDED", "ingest")]})
    code, out, err = run(capsys, ["ee-upload", "--prediction", str(pred), "--gcs", "gs://crop-bucket/pred/",
                                  "--asset", "projects/p/assets/camana_pred", "--overwrite", "--wait", "--poll", "0"])
    assert code == 0, err
    res = json.loads(out)
    assert res["state"] == "COMPLETED" and ingested[-1][1] is True
    # in a folder, the file is named as the asset (and said so)
    assert res["gcs"] == "gs://crop-bucket/pred/camana_pred.tif" and res["gcs"] in storage.uploaded
    # an asset that exists is refused (unless --overwrite) before anything is uploaded
    assets.existing["projects/p/assets/taken"] = image_asset(-72.8, -16.7, -72.6, -16.5)
    n = len(storage.uploaded)
    said = one_line_error(capsys, ["ee-upload", "--prediction", str(pred), "--gcs", "gs://crop-bucket/pred/",
                                   "--asset", "projects/p/assets/taken"])
    assert said.startswith("error: the asset projects/p/assets/taken already exists; give another asset id, or replace "
                           "it") and len(storage.uploaded) == n

    ready.clear()
    assert "not found" in one_line_error(capsys, ["ee-upload", "--prediction", str(tmp_path / "none.tif"), "--gcs", "gs://crop-bucket/a.tif",
                                                  "--asset", "projects/p/assets/a"])
    assert ready == []  # told before Earth Engine is contacted (offline that took 10 s, then a network error)
    # what is not a crop probability with a place on Earth is refused before any upload, and said
    wrong = {"mask.tif": (np.array([[0, 1], [1, 255]], np.uint8), utm, ["crop (1), not crop (0)"], "crop mask"),
             "plain.tif": (np.array([[0, 40], [100, 255]], np.uint8), {}, None, "no CRS"),
             "image.tif": (np.full((4, 2, 2), 900, np.int16), utm, None, "4 band(s) of int16"),
             "fraction.tif": (np.array([[0.0, 0.4], [1.0, 0.5]], np.float32), utm, None, "1 band(s) of float32"),
             "other.tif": (np.array([[0, 180], [7, 255]], np.uint8), utm, None, "above 100")}
    for name, (data, grid, names, said) in wrong.items():
        write_raster(tmp_path / name, data, nodata=255 if data.dtype == np.uint8 else None, descriptions=names, **grid)
        assert said in one_line_error(capsys, ["ee-upload", "--prediction", str(tmp_path / name), "--gcs",
                                               "gs://crop-bucket/a.tif", "--asset", "projects/p/assets/a"]), name
    (tmp_path / "junk.tif").write_bytes(b"II*\x00not a tiff")
    assert "cannot read" in one_line_error(capsys, ["ee-upload", "--prediction", str(tmp_path / "junk.tif"), "--gcs",
                                                    "gs://crop-bucket/a.tif", "--asset", "projects/p/assets/a"])
    assert ready == [] and len(storage.uploaded) == 2  # nothing more uploaded
    assert "gs://" in one_line_error(capsys, ["ee-upload", "--prediction", str(pred), "--gcs", "s3://crop-bucket/a.tif",
                                              "--asset", "projects/p/assets/a"])
    assert "asset" in one_line_error(capsys, ["ee-upload", "--prediction", str(pred), "--gcs", "gs://crop-bucket/a.tif",
                                              "--asset", "projects/p/assets/bad name"])


# ------------------------------------------------------------------------------------ fetch


@pytest.fixture
def fake_pixels(ee_offline, monkeypatch):
    """computePixels and getInfo (computeValue) answered locally."""
    requests, values = [], []
    monkeypatch.setattr(ee_offline.data, "computePixels", fake_compute(requests))
    monkeypatch.setattr(ee_offline.data, "computeValue", lambda obj: values.append(obj) or {"count": 7, "dates": [1]})
    return requests, values


def test_fetch_writes_image_and_labels(capsys, tmp_path, ready, fake_pixels):
    requests, values = fake_pixels
    out_dir = tmp_path / "camana"
    code, out, err = run(capsys, ["ee-fetch", "--preset", "camana", "--out", str(out_dir), "--workers", "2"])
    assert code == 0, err
    res = json.loads(out)
    assert res["image"] == str(out_dir / "image.tif") and res["labels"] == str(out_dir / "labels.tif")
    assert res["label_map"] == "binary" and res["crs"] == "EPSG:32718" and res["scenes"] == 7
    assert (res["codes"], res["class_map"]) == (str(out_dir / "codes.tif"), "glcfcs30d")
    assert res["title"].startswith("Camana") and "GLC-FCS30D (Zhang" in res["attribution"] and "px at 30 m" in res["region"]
    assert (out_dir / "image.tif").is_file() and (out_dir / "labels.tif").is_file() and (out_dir / "scene.json").is_file()
    assert len(values) == 1 and len(requests) == res["requests"] >= 4  # 2 workers: >= 2 tiles per file
    assert "predict --image" in err and ready == [None]

    # the local pipeline reads it: bands R, G, B, NIR on the UTM grid
    code, out, err = run(capsys, ["info", "--image", str(out_dir / "image.tif")])
    assert code == 0, err
    info = json.loads(out)
    assert info["bands"] == {"R": 1, "G": 2, "B": 3, "NIR": 4} and info["crs"] == "EPSG:32718" and info["georeferenced"]
    from core.labels import CLASS_MAPS
    from core.raster import ImageReader, read_labels

    with ImageReader(out_dir / "image.tif") as r:
        grid = r.grid
    mask = read_labels(out_dir / "labels.tif", CLASS_MAPS["binary"], grid=grid)
    # each tile: left half crop; no data only at the grid's edges, outside the lon/lat box turned into UTM
    assert mask.shape == (grid.height, grid.width) and set(np.unique(mask)) == {0, 1, 255}
    assert mask[0, 0] == 255 and 0.96 < (mask != 255).mean() < 1.0
    assert 0.4 < mask[mask != 255].mean() < 0.6

    assert "already exists" in one_line_error(capsys, ["ee-fetch", "--preset", "camana", "--out", str(out_dir)])
    # a file given as the output folder is said at once, not after Earth Engine's set-up
    asked = len(ready)
    assert "is a file" in one_line_error(capsys, ["ee-fetch", "--preset", "camana", "--out", str(out_dir / "image.tif")])
    assert len(ready) == asked
    assert run(capsys, ["ee-fetch", "--preset", "camana", "--out", str(out_dir), "--overwrite", "--workers", "1"])[0] == 0


def test_fetch_bbox_options_and_no_labels(capsys, tmp_path, ready, fake_pixels):
    requests, _ = fake_pixels
    code, out, err = run(capsys, ["ee-fetch", "--bbox=-72.78,-16.65,-72.67,-16.58", "--sensor", "S2", "--start", "2022-03-01",
                                  "--end", "2022-09-30", "--scale", "20", "--labels", "dynamicworld", "--out", str(tmp_path / "dw"),
                                  "--workers", "1", "--project", "cli-proj"])
    assert code == 0, err
    scene = json.loads((tmp_path / "dw" / "scene.json").read_text())["extra"]
    assert scene["composite"]["sensor"] == "S2" and scene["scale"] == 20.0
    assert (scene["labels"]["product"], scene["labels"]["start"], scene["labels"]["end"]) == ("dynamicworld", "2022-03-01", "2022-09-30")
    assert json.loads(out)["label_map"] == "binary" and ready == ["cli-proj"]

    requests.clear()
    code, out, err = run(capsys, ["ee-fetch", "--preset", "camana", "--labels", "none", "--out", str(tmp_path / "img"), "--workers", "1"])
    assert code == 0, err
    res = json.loads(out)
    assert res["labels"] is None and res["label_map"] is None
    assert (tmp_path / "img" / "image.tif").is_file() and not (tmp_path / "img" / "labels.tif").exists()
    assert all(r["bandIds"] != ["label"] for r in requests)


def test_fetch_no_scenes_is_one_line(capsys, tmp_path, ready, ee_offline, monkeypatch):
    monkeypatch.setattr(ee_offline.data, "computeValue", lambda obj: {"count": 0, "dates": []})
    monkeypatch.setattr(ee_offline.data, "computePixels", fake_compute([]))
    assert "widen the dates" in one_line_error(capsys, ["ee-fetch", "--preset", "camana", "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o" / "image.tif").exists()


def test_a_user_asset_as_labels_from_the_command_line(capsys):
    """The 2019 notebook's labels were a GLC30 asset with .eq(10): --labels asset with --asset-id and
    --crop-values (the docs spoke of it, the command had no way to give it)."""
    from core.__main__ import build_parser, main

    p = build_parser()
    a = p.parse_args(["ee-fetch", "--preset", "camana", "--labels", "asset", "--asset-id", "users/me/glc30",
                      "--crop-values", "10, 11", "--nodata-values", "0,255", "--out", "o"])
    preset, _ = cli._region(a)
    labels = cli._labels(a, preset, cli._composite(a, preset))
    assert (labels.product, labels.asset_id, labels.crop_values) == ("asset", "users/me/glc30", (10, 11))
    # its no-data values (GLC30's fill) were not crop, and trained on as such
    assert labels.nodata_values == (0, 255)
    assert main(["ee-fetch", "--preset", "camana", "--labels", "asset", "--asset-id", "users/me/glc30",
                 "--crop-values", "10", "--nodata-values", "10,255", "--out", "o"]) == 2
    assert "value(s) 10 given both as crop and as no data" in capsys.readouterr().err
    assert main(["ee-fetch", "--preset", "camana", "--labels", "asset", "--out", "o"]) == 2
    assert "needs its asset id and the class value(s) meaning crop" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--asset-id", "users/me/glc30", "--crop-values", "10"], ["--crop-values", "10"],
                                  ["--labels", "worldcover", "--nodata-values", "0"]])
def test_asset_options_without_labels_asset_are_refused(capsys, tmp_path, argv):
    """--asset-id users/me/glc30 --crop-values 10 without --labels asset fetched the preset's labels (GLC-FCS30D)
    without a word: the asset the user named was never read."""
    for command in (["ee-fetch", "--out", str(tmp_path / "o")],
                    ["ee-export-patches", "--dest", "gcs:my-bucket/crops", "--name", "camana"]):
        line = one_line_error(capsys, [*command, "--preset", "camana", *argv])
        assert "for --labels asset; give --labels asset too" in line and argv[-2] in line, line
    assert not (tmp_path / "o").exists()


def test_preset_labels_follow_the_composite_dates():
    """The Camana preset's GLC-FCS30D 2005 labels, unless the dates move the composite to another year."""
    from core.__main__ import build_parser

    p = build_parser()
    a = p.parse_args(["ee-fetch", "--preset", "camana", "--out", "o"])
    preset, _ = cli._region(a)
    assert cli._labels(a, preset, cli._composite(a, preset)) == preset.labels and preset.labels.year == 2005
    a = p.parse_args(["ee-fetch", "--preset", "camana", "--sensor", "L8", "--start-date", "2015-01-01",
                      "--end-date", "2015-12-31", "--out", "o"])
    labels = cli._labels(a, preset, cli._composite(a, preset))
    assert (labels.product, labels.year) == ("glcfcs30d", 2015)
    # two years of dates: the year the composite starts, as the dashboard's empty label year (was the middle)
    a = p.parse_args(["ee-fetch", "--preset", "camana", "--sensor", "L8", "--start-date", "2015-01-01",
                      "--end-date", "2016-12-31", "--out", "o"])
    assert cli._labels(a, preset, cli._composite(a, preset)).year == 2015


def test_one_date_given_keeps_the_default_dates_span():
    """--start 2022-05-01 alone was refused, "--end 2020-12-31 is before --start 2022-05-01", with an end
    the user never typed: the other date keeps the preset's (or the default) span from the one given."""
    from core.__main__ import build_parser
    from core.ee.presets import get_preset

    p = build_parser()
    box = ["ee-fetch", "--bbox=-72.8,-16.7,-72.6,-16.5", "--out", "o"]
    # the default dates are a year (2020-01-01..2020-12-31): a year from the date given, in whole months, so that
    # the labels' year is the imagery's (365 days back from 2021-12-31 began on 2020-12-31: 2020's labels)
    for given, dates in ((["--start", "2022-05-01"], ("2022-05-01", "2023-04-30")),
                         (["--start", "2021-01-01"], ("2021-01-01", "2021-12-31")),
                         (["--end", "2021-12-31"], ("2021-01-01", "2021-12-31")),
                         (["--end", "2019-06-30"], ("2018-07-01", "2019-06-30")),
                         (["--start", "2020-01-31"], ("2020-01-31", "2021-01-30"))):
        c = cli._composite(p.parse_args([*box, *given]), None)
        assert (c.start, c.end) == dates, given
    a = p.parse_args([*box, "--end", "2021-12-31", "--labels", "cdl"])
    assert cli._labels(a, None, cli._composite(a, None)).year == 2021
    camana = get_preset("camana")  # its 2005-01-01..2006-12-31: two years
    c = cli._composite(p.parse_args(["ee-fetch", "--preset", "camana", "--out", "o", "--start", "2007-01-01"]), camana)
    assert (c.start, c.end) == ("2007-01-01", "2008-12-31")


def test_composite_mistakes_name_the_options_as_typed(capsys, tmp_path):
    """ee-fetch --max-cloud 200 said "max_cloud must be ...", --crs "leave crs empty": the config's names."""
    fetch = ["ee-fetch", "--bbox", "-72.8,-16.7,-72.6,-16.5", "--out", str(tmp_path / "f")]
    for more, said in ((["--max-cloud", "200"], "error: --max-cloud must be above 0 and at most 100"),
                       (["--start", "2021-01-01", "--end", "2020-01-01"], "error: --end 2020-01-01 is before --start 2021-01-01"),
                       (["--crs", "EPSG:99999"], "error: --crs EPSG:99999 is not a known EPSG code")):
        code, out, err = run(capsys, [*fetch, *more])
        assert code == 2 and err.startswith(said), err
    assert "leave out --crs for the region's UTM zone" in err
    assert not (tmp_path / "f").exists()


def test_the_commands_read_the_apps_secrets_file_as_the_set_up_message_says(capsys, tmp_path, monkeypatch):
    """The no-credentials message says to put a key or the project in .streamlit/secrets.toml; the app
    read it there and the command line did not (still "method": "none")."""
    import ee

    from core.ee import auth

    project = tmp_path / "project"
    (project / ".streamlit").mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setattr(auth, "secrets_paths", lambda: [tmp_path / "home" / "secrets.toml",
                                                        project / ".streamlit" / "secrets.toml"])
    (project / ".streamlit" / "secrets.toml").write_text('ee_project = "from-secrets"\n')
    inits = []
    monkeypatch.setattr(ee, "Initialize", lambda credentials=None, **kw: inits.append(kw))
    monkeypatch.setattr(auth, "_from_user_store", lambda: auth._Creds(object(), "user", None, "stored user credentials"))
    code, out, err = run(capsys, ["ee-status"])
    st = json.loads(out)
    assert st["ok"] is True and st["project"] == "from-secrets" and inits[-1]["project"] == "from-secrets", st
    # a damaged file is said by its name and place, never its content, and nothing is reached
    (project / ".streamlit" / "secrets.toml").write_text('ee_project = "unterminated\nkey = "SECRET-VALUE"\n')
    code, out, err = run(capsys, ["ee-status", "--strict"])
    st = json.loads(out)
    assert code == 1 and st["ok"] is False and "secrets.toml is not valid TOML (" in st["message"]
    assert "SECRET-VALUE" not in out + err and len(inits) == 1
    (project / ".streamlit" / "secrets.toml").write_bytes(b'ee_project = "caf\xe9"\n')  # saved as Latin-1
    code, out, err = run(capsys, ["ee-status"])
    assert code == 0 and "secrets.toml is not UTF-8 text" in json.loads(out)["message"] and "Traceback" not in err


def test_upload_storage_client_finds_the_key_in_the_secrets_file(tmp_path, monkeypatch):
    """ee-upload's Cloud Storage client looks where Earth Engine's initialisation looks, the app's secrets
    file included: a key kept only there made ee-status say ready and ee-upload say 'no credentials'."""
    import argparse

    secrets = tmp_path / "secrets.toml"
    secrets.write_text("ee_service_account_json = '{\"type\": \"service_account\"}'\n", encoding="utf-8")
    monkeypatch.setattr(auth, "secrets_paths", lambda: [secrets])
    monkeypatch.setattr(auth, "_from_gcloud_adc", lambda env: None)
    monkeypatch.setattr(auth, "_service_account",
                        lambda info, method: auth._Creds(AnonymousCredentials(), method, "p", "sa@p"))
    client = REAL_STORAGE_CLIENT(argparse.Namespace(project=None), "p")
    assert client.project == "p" and isinstance(client._credentials, AnonymousCredentials)


def test_dynamic_world_dates_before_its_first_map_are_refused_before_earth_engine_is_asked(capsys, tmp_path):
    """As the sensor's archive and CDL's coverage: said with no credentials (it was said only once Earth
    Engine had been initialised and asked for the scenes), and nothing written."""
    for command in (["ee-fetch", "--out", str(tmp_path / "out")], ["ee-export-patches", "--dest", "drive:f", "--name", "c"]):
        err = one_line_error(capsys, [*command, "--bbox=-97.0,47.0,-96.9,47.1", "--sensor", "l8", "--start", "2014-01-01",
                                      "--end", "2015-01-01", "--labels", "dynamicworld"])
        assert err.startswith("error: Dynamic World has maps from 2015-06-27 on, none for 2014-01-01..2015-01-01"), err
    assert list(tmp_path.iterdir()) == []
