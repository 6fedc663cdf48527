"""Realistic user inputs that once broke a promise of the CLI (one clear line that says what to do,
areas from the right CRS, no stray warnings): a wrong CRS tag, an undeclared fill value, Landsat
values without their scale, STAC band names, a closed pipe."""

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from testdata import SAMPLE_IMAGE, write_raster
from core.__main__ import main
from core.errors import InvalidDataError
from core.grid import Grid

RGBN = ("R", "G", "B", "NIR")


def _err(capsys, argv) -> str:
    """The one line on stderr of a failing command."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _block(rows: int = 64, cols: int = 64) -> np.ndarray:
    with rasterio.open(SAMPLE_IMAGE) as src:
        return src.read(window=Window(200, 300, cols, rows))


def test_lonlat_grid_beyond_the_pole_is_refused():
    # metres of a UTM zone tagged as EPSG:4326 (a common wrong tag): latitudes of millions of degrees
    wrong = Grid("EPSG:4326", (30.0, 0, 500000.0, 0, -30.0, 4000000.0), 64, 64)
    with pytest.raises(InvalidDataError, match="beyond the pole.*CRS tag is wrong"):
        wrong.pixel_area_ha()
    rotated = Grid("EPSG:4326", (21.0, 21.0, 500000.0, 21.0, -21.0, 4000000.0), 64, 64)
    with pytest.raises(InvalidDataError, match="beyond the pole"):
        rotated.pixel_area_ha()
    # a global grid whose pixels are centred on the poles reaches half a pixel past them: no area there
    polar = Grid("EPSG:4326", (0.25, 0, -180.125, 0, -0.25, 90.125), 1440, 721)
    area = polar.pixel_area_ha()
    assert area[0, 0] == pytest.approx(area[-1, 0]) and area[0, 0] > 0
    assert float(area.sum()) * 1440 == pytest.approx(510_065_622 * 100, rel=1e-6)  # the WGS 84 ellipsoid, in ha


def test_predict_refuses_utm_metres_tagged_as_degrees(capsys, tmp_path, tiny_model_path):
    img = write_raster(tmp_path / "img.tif", _block(), crs="EPSG:4326", transform=Affine(30, 0, 500000, 0, -30, 4000000),
                       descriptions=RGBN)
    out = tmp_path / "pred"
    assert "CRS tag is wrong" in _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path),
                                               "--out", str(out)])
    assert not out.exists()


def test_evaluate_with_the_image_as_labels_says_it_is_an_image(capsys, tmp_path):
    # reflectance x 10000 read as class codes: most values are above any code, a few below 255 (dark water)
    img = write_raster(tmp_path / "img.tif", _block(), descriptions=RGBN)
    mask = write_raster(tmp_path / "crop_mask.tif", np.ones((64, 64), np.uint8), nodata=255)
    err = _err(capsys, ["evaluate", "--pred", str(mask), "--labels", str(img)])
    assert "looks like an image" in err and "another product" not in err


def test_undeclared_fill_value_is_named(capsys, tmp_path, tiny_model_path):
    # -9999 fill without a nodata tag: "negative reflectance ... check the scale factors" did not say what to do
    data = _block()
    data[:, :8] = -9999
    img = write_raster(tmp_path / "img.tif", data, descriptions=RGBN)
    err = _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(tmp_path / "o")])
    assert "holds -9999 in every band" in err and "-a_nodata -9999" in err
    # fill where the opening sample does not look: refused when read, with the same advice
    from core.raster import ImageReader

    wide = np.tile(_block(), (1, 1, 16))  # 64 x 1024: the sample's windows start at columns 0, 298, 597, 896
    wide[:, 10:12, 150:160] = -9999
    img = write_raster(tmp_path / "wide.tif", wide, descriptions=RGBN)
    with ImageReader(img) as reader, pytest.raises(InvalidDataError, match="-a_nodata -9999"):
        reader.read(Window(128, 0, 64, 64))


def test_landsat_collection2_without_its_scale_says_so(capsys, tmp_path, tiny_model_path):
    # Landsat C2 L2 stored values (reflectance = DN x 0.0000275 - 0.2) from a file that lost its scale/offset:
    # read as x 10000 they were "far above 1; a wrong scale?", with no word of Landsat's scale
    refl = _block().astype(np.float64) / 10000
    dn = np.round((refl + 0.2) / 2.75e-5).astype(np.uint16)
    img = write_raster(tmp_path / "LC08_SR.tif", dn, descriptions=RGBN)
    err = _err(capsys, ["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(tmp_path / "o")])
    assert "Landsat Collection 2" in err and "-scale 0.0000275 -offset -0.2" in err
    with rasterio.open(img, "r+") as dst:  # with the metadata set as the error says, it is read
        dst.scales, dst.offsets = (2.75e-5,) * 4, (-0.2,) * 4
    from core.raster import ImageReader

    with ImageReader(img) as reader:
        feats, valid = reader.read()
    assert np.allclose(feats[..., :4][valid], np.moveaxis(refl, 0, -1)[valid], atol=2e-5)
    assert main(["info", "--image", str(img)]) == 0  # info gives each band's scale and offset
    info = json.loads(capsys.readouterr().out)
    assert info["scales"] == {b: 2.75e-5 for b in RGBN} and info["offsets"] == {b: -0.2 for b in RGBN}


def test_sentinel2_with_its_1000_offset_is_warned_about(capsys, tmp_path, tiny_model_path):
    # Sentinel-2 L2A from processing baseline 04.00 stores reflectance x 10000 + 1000: read as x 10000 every
    # band is 0.1 too bright (NDVI of crops falls), possible but suspect: a warning with the fix, not a refusal
    data = _block().astype(np.uint16)
    data[:, (data != 0).any(axis=0)] += 1000
    img = write_raster(tmp_path / "S2_L2A.tif", data, descriptions=RGBN)
    assert main(["info", "--image", str(img)]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["warnings"] and "warning: even the darkest pixels of S2_L2A.tif" in out.err
    assert "-scale 0.0001 -offset -0.1" in out.err
    assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(tmp_path / "o")]) == 0
    assert "warning: even the darkest pixels" in capsys.readouterr().err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert len(summary["warnings"]) == 1 and "Sentinel-2 L2A" in summary["warnings"][0]
    # the same scene without the offset is not warned about
    assert main(["info", "--image", str(write_raster(tmp_path / "plain.tif", _block(), descriptions=RGBN))]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["warnings"] == [] and "warning" not in out.err


def test_stac_band_names_with_nir08_are_found():
    # Landsat 8-9 stacked from a STAC catalogue (Planetary Computer): red, green, blue, nir08
    from core.bands import resolve_bands

    assert resolve_bands(["coastal", "blue", "green", "red", "nir08"], 5) == {"R": 4, "G": 3, "B": 2, "NIR": 5}
    # Sentinel-2 from Earth Search: nir (B8) before nir08 (B8A)
    assert resolve_bands(["blue", "green", "red", "nir08", "nir"], 5)["NIR"] == 5


def test_a_closed_pipe_is_no_disk_error(capsys, monkeypatch):
    # `python -m core info ... | head` printed "error: Broken pipe; check that the folder exists and can be
    # written, and that the disk has space"
    import sys

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["info", "--image", str(SAMPLE_IMAGE)]) == 141
    monkeypatch.undo()
    assert capsys.readouterr().err == ""


def test_an_image_without_geotransform_prints_no_rasterio_warnings(capsys, tmp_path, tiny_model_path):
    # a plain TIFF (no geotransform): rasterio's NotGeoreferencedWarning put 4 lines of warning text on stderr
    import warnings

    img = tmp_path / "plain.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(img, "w", driver="GTiff", width=64, height=64, count=4, dtype="int16") as dst:
            dst.write(_block())
            dst.descriptions = RGBN
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["predict", "--image", str(img), "--model", str(tiny_model_path), "--out", str(tmp_path / "o")]) == 0
        assert main(["info", "--image", str(img)]) == 0
    assert [str(w.message) for w in seen if w.category.__name__ == "NotGeoreferencedWarning"] == []
    assert (tmp_path / "o" / "crop_mask.tif").exists()


def test_a_folder_where_a_file_is_expected_is_named(capsys, tmp_path, tiny_model_path):
    # a folder of models given as the model: the ones it holds are named (it suggested a best.keras it lacked)
    assert f"is a folder; give the model's .keras file (it holds {tiny_model_path})" in _err(
        capsys, ["predict", "--image", str(SAMPLE_IMAGE), "--model", str(tiny_model_path.parent), "--out", str(tmp_path / "o")])
    (tmp_path / "run").mkdir()  # an empty one (a run not started): what it would hold
    assert f"(e.g. {tmp_path / 'run' / 'best.keras'} of a training run)" in _err(
        capsys, ["predict", "--image", str(SAMPLE_IMAGE), "--model", str(tmp_path / "run"), "--out", str(tmp_path / "o")])
    # a folder named like an output: said at once, not "pass --overwrite" first
    (tmp_path / "p" / "probability.tif").mkdir(parents=True)
    err = _err(capsys, ["predict", "--image", str(SAMPLE_IMAGE), "--model", str(tiny_model_path), "--out", str(tmp_path / "p")])
    assert "probability.tif is a folder" in err and "--overwrite" not in err


def test_an_input_mistake_is_said_before_an_output_in_the_way(capsys, tmp_path, tiny_model_path):
    """A text file as the image, or a pixel size that is no number, with outputs already there: the
    user was told to pass --overwrite, then (having done so) that the input was wrong."""
    done = tmp_path / "done"
    (done).mkdir()
    for name in ("probability.tif", "crop_mask.tif", "summary.json", "out.tif"):
        (done / name).write_bytes(b"earlier")
    notes = tmp_path / "README.md"
    notes.write_text("# not an image\n")
    err = _err(capsys, ["predict", "--image", str(notes), "--model", str(tiny_model_path), "--out", str(done)])
    assert "--overwrite" not in err and "GeoTIFF" in err
    image = write_raster(tmp_path / "s2.tif", _block(), crs="EPSG:32633",
                         transform=Affine(10, 0, 360630.0, 0, -10, 5351440.0), nodata=0, descriptions=RGBN)
    err = _err(capsys, ["resample", "--image", str(image), "--out", str(done / "out.tif"), "--pixel-size", "nan"])
    assert "--overwrite" not in err and "pixel size nan" in err
    assert all((done / n).read_bytes() == b"earlier" for n in ("probability.tif", "summary.json", "out.tif"))
    # the model's own mistakes too: no card, a folder, a .keras file that is no Keras archive
    (tmp_path / "models").mkdir()
    bad = tmp_path / "bad.keras"
    bad.write_bytes(tiny_model_path.read_bytes()[:5000])  # truncated
    bad.with_suffix(".json").write_bytes(tiny_model_path.with_suffix(".json").read_bytes())
    import zipfile

    other_zip = tmp_path / "zipped.keras"  # a zip archive of something else (the message named a KeyError)
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("notes.txt", "not a model")
    other_zip.with_suffix(".json").write_bytes(tiny_model_path.with_suffix(".json").read_bytes())
    for model, told in ((SAMPLE_IMAGE, "model card"), (tmp_path / "models", "is a folder"), (bad, "truncated")):
        err = _err(capsys, ["predict", "--image", str(SAMPLE_IMAGE), "--model", str(model), "--out", str(done)])
        assert "--overwrite" not in err and told in err and "Error" not in err, err
    err = _err(capsys, ["predict", "--image", str(SAMPLE_IMAGE), "--model", str(other_zip), "--out", str(tmp_path / "new")])
    assert "not a Keras model (a zip archive without a Keras model's files)" in err and "KeyError" not in err, err


def test_info_describes_an_image_whose_bands_are_not_named_before_its_error(capsys, tmp_path):
    # info refused such an image outright, so the command meant to show a file's bands showed nothing of it
    img = write_raster(tmp_path / "unnamed.tif", _block())
    err = _err(capsys, ["info", "--image", str(img)])
    assert "without descriptions" in err and "--bands" in err
    assert main(["info", "--image", str(img)]) == 2
    info = json.loads(capsys.readouterr().out)
    assert (info["width"], info["height"], info["band_names"], info["bands"]) == (64, 64, [None] * 4, None)
    assert main(["info", "--image", str(img), "--bands", "1,2,3,4"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["bands"] == {"R": 1, "G": 2, "B": 3, "NIR": 4} and info["band_names"] == [None] * 4


def test_an_output_named_for_another_format_is_refused_before_anything_is_written(capsys, tmp_path):
    """A GeoTIFF written as out.png, or metrics written as metrics.tif, was a file that its name's
    program could not open."""
    block = _block()
    geo = dict(crs="EPSG:32633", transform=Affine(10, 0, 360630.0, 0, -10, 5351440.0), nodata=0)
    image = write_raster(tmp_path / "s2.tif", block, descriptions=RGBN, **geo)
    err = _err(capsys, ["resample", "--image", str(image), "--out", str(tmp_path / "out.png"), "--pixel-size", "30"])
    assert "--out is written as a GeoTIFF; give a name ending in .tif or .tiff, such as out.tif" in err
    bands = [write_raster(tmp_path / f"{b}.tif", block[i:i + 1], **geo) for i, b in enumerate(RGBN)]
    err = _err(capsys, ["stack", "--red", str(bands[0]), "--green", str(bands[1]), "--blue", str(bands[2]),
                        "--nir", str(bands[3]), "--out", str(tmp_path / "stack")])
    assert "give a name ending in .tif or .tiff, such as stack.tif" in err
    mask = write_raster(tmp_path / "crop_mask.tif", (block[:1] > 1000).astype("uint8"), nodata=255,
                        **{k: v for k, v in geo.items() if k != "nodata"})
    err = _err(capsys, ["evaluate", "--pred", str(mask), "--labels", str(mask), "--label-map", "binary",
                        "--out", str(tmp_path / "metrics.tif")])
    assert "--out is written as JSON; give a name ending in .json, such as metrics.json" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s2.tif", "crop_mask.tif", *(f"{b}.tif" for b in RGBN)])


@pytest.mark.parametrize("argv, said", [
    (["predict", "--image", str(SAMPLE_IMAGE), "--out", "OUT", "--threshold", "2"], "--threshold must be a probability"),
    (["predict", "--image", str(SAMPLE_IMAGE), "--out", "OUT", "--views", "3"], "views"),
    (["patches", "--image", str(SAMPLE_IMAGE), "--labels", str(SAMPLE_IMAGE), "--out", "OUT.tfrecord.gz", "--size", "17"],
     "--size must be 32-2048, got 17"),
    (["train", "--train", "a.tif:b.tif", "--val", "c.tif:d.tif", "--out", "OUT", "--lr", "-1"], "--lr must be in (0, 1)"),
])
def test_an_option_out_of_range_is_said_before_tensorflow_is_loaded(capsys, monkeypatch, tmp_path, argv, said):
    """--threshold 2 waited 8-27 s for TensorFlow to start before its one-line error."""
    import core.tfimport

    monkeypatch.setattr(core.tfimport, "import_tensorflow", lambda: pytest.fail("TensorFlow loaded first"))
    line = _err(capsys, [str(tmp_path / a) if a.startswith("OUT") else a for a in argv])
    assert line.startswith("error: ") and said in line
    assert list(tmp_path.iterdir()) == []


def test_a_model_given_as_training_data_is_said_to_be_a_model(capsys, tmp_path):
    """train --train crop_unet_light.keras said "no label raster for crop_unet_light.keras; give IMAGE:LABELS"."""
    from core.card import DEFAULT_MODEL_PATH

    line = _err(capsys, ["train", "--train", str(DEFAULT_MODEL_PATH), "--val", str(DEFAULT_MODEL_PATH),
                         "--out", str(tmp_path / "run")])
    assert line.startswith("error: crop_unet_light.keras is a model (or its card), not training data") and "--init" in line
    assert not (tmp_path / "run").exists()


def test_a_box_on_a_corner_of_the_images_lonlat_box_but_not_on_its_pixels_gets_the_images_edges(capsys, tmp_path):
    """The image's lon/lat box is larger than the image (UTM, turned against the meridians): a box on its corner
    was refused as "the region lies outside the image (64 x 64 px)", without the edges other refusals give."""
    from testdata import FLANDERS_L8

    line = _err(capsys, ["predict", "--image", str(FLANDERS_L8), "--out", str(tmp_path / "o"),
                         "--bbox", "3.383,51.1826,3.39,51.19"])
    assert line == ("error: --bbox: the box lies outside the image, whose edges are 3.373950, 51.176838, 3.383153, "
                    "51.182623 (west, south, east, north; the image is turned against the meridians, so the box must "
                    "reach its pixels, not only a corner of these)")
    assert not (tmp_path / "o").exists()


def test_info_gives_the_images_size_crs_and_pixel_area(capsys, tmp_path):
    """info's figures of a GeoTIFF: columns and rows (not swapped), its CRS and transform, and the area of a
    pixel (10 m x 10 m = 0.01 ha)."""
    transform = Affine(10, 0, 360630.0, 0, -10, 5351440.0)
    img = write_raster(tmp_path / "s2.tif", _block(rows=40, cols=64), crs="EPSG:32633", transform=transform,
                       descriptions=RGBN)
    assert main(["info", "--image", str(img)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["width"], info["height"], info["crs"], info["georeferenced"]) == (64, 40, "EPSG:32633", True)
    assert info["transform"][:6] == list(transform)[:6] and info["bands"] == {"R": 1, "G": 2, "B": 3, "NIR": 4}
    assert info["pixel_area_ha"] == pytest.approx(10 * 10 / 10_000)
    # an image without a CRS has no ground area
    assert main(["info", "--image", str(write_raster(tmp_path / "plain.tif", _block(), descriptions=RGBN))]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["crs"] is None and info["georeferenced"] is False and info["pixel_area_ha"] is None


def test_a_band_numbers_warning_is_said_once(capsys, tmp_path):
    """resample --bands that contradict the file's band names printed the same warning twice: before the
    run (as train and patches say it) and again with the reader's warnings after it."""
    block = _block()
    five = np.concatenate([block, block[3:]])  # R, G, B, NIR and a fifth band
    image = write_raster(tmp_path / "s2.tif", five, crs="EPSG:32633", transform=Affine(10, 0, 360630.0, 0, -10, 5351440.0),
                         nodata=0, descriptions=(*RGBN, "X"))
    assert main(["resample", "--image", str(image), "--out", str(tmp_path / "out.tif"), "--bands", "1,2,3,5"]) == 0
    err = capsys.readouterr().err
    assert err.count("the band numbers given (R=1, G=2, B=3, NIR=5) differ") == 1, err


def _as_a_user() -> None:
    """(In a child process) root's bypass of file permissions dropped (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
    from the bounding set: prctl PR_CAPBSET_DROP), so that a file without read permission is refused to it as
    to a user."""
    import ctypes
    import os

    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):
            if libc.prctl(24, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl")


def test_an_input_that_may_not_be_read_is_said_so(tmp_path):
    """A file without read permission was "truncated or damaged; copy or download it again", one in a folder
    that may not be entered, or a fields file not readable, "check that the folder exists and can be written,
    and that the disk has space", and a download's folder that may not be listed held "no band files"."""
    import os
    import shutil
    import subprocess
    import sys

    from testdata import FLANDERS_S2, ROOT, box_ring, feature_collection

    closed = tmp_path / "closed"
    closed.mkdir()
    image = shutil.copy(FLANDERS_S2, tmp_path / "image.tif")
    inside = shutil.copy(FLANDERS_S2, closed / "image.tif")
    fields = tmp_path / "fields.geojson"
    fields.write_text(json.dumps(feature_collection(({"crop": 1}, box_ring(3.37, 51.17, 3.38, 51.18)))))
    for path in (image, fields):
        os.chmod(path, 0)
    os.chmod(closed, 0)

    def line(*argv: str) -> str:
        # (the project runs on Linux, whose prctl drops root's bypass: a failure to drop it fails the test)
        r = subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, capture_output=True, text=True,
                           preexec_fn=_as_a_user, timeout=120)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        return lines[0]

    try:
        for argv, path in ((["info", "--image", str(image)], image), (["info", "--image", str(inside)], inside),
                           (["labels-from-fields", "--fields", str(fields), "--image", str(FLANDERS_S2), "--out",
                             str(tmp_path / "labels.tif")], fields),
                           (["stack", str(closed), "--out", str(tmp_path / "stack.tif")], closed)):
            said = line(*argv)
            assert "permission denied" in said.lower() and str(path.name) in said, said
            assert "check the permissions" in said and "damaged" not in said and "disk has space" not in said, said
            assert "band files" not in said, said
    finally:
        os.chmod(closed, 0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["closed", "fields.geojson", "image.tif"]
