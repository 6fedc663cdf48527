import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.config import PatchConfig
from core.errors import ConfigError, CorruptFileError, InputNotFoundError, NoDataError, OutputExistsError, RegionError
from core.patches import (
    LABEL,
    Mixer,
    export_files,
    iter_export_patches,
    mixer_file,
    read_mixer,
    read_records,
    sample_patches,
    write_image_export,
    write_records,
)
from core.__main__ import main
from core.bands import FEATURE_BANDS
from core.raster import ImageReader


def _examples(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield {"R": rng.random((h, w), np.float32), "crop": (np.arange(h * w).reshape(h, w) + i).astype(np.float32)}


def test_roundtrip_is_bit_exact_and_not_transposed(tmp_path):
    h, w = 5, 7  # not square: a transpose would change the shape
    path = tmp_path / "p.tfrecord.gz"
    assert write_records(path, _examples(3, h, w)) == 3
    batches = list(read_records(path, ["R", "crop"], (h, w), batch_size=2))
    got = np.concatenate(batches)
    want = list(_examples(3, h, w))
    assert got.shape == (3, h, w, 2)
    for i, ex in enumerate(want):
        assert np.array_equal(got[i, ..., 0], ex["R"])  # bit for bit
        assert got[i, 0, 1, 1] == 1 + i and got[i, 1, 0, 1] == w + i  # row-major: rows stay rows


def test_existing_output_is_not_overwritten(tmp_path):
    path = tmp_path / "p.tfrecord.gz"
    write_records(path, _examples(1, 4, 4))
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        write_records(path, _examples(2, 4, 4, seed=5))
    assert path.read_bytes() == before


def test_truncated_and_mis_shaped_records(tmp_path):
    import tensorflow as tf

    from core.patches import example_bytes

    path = tmp_path / "p.tfrecord.gz"
    write_records(path, _examples(4, 16, 16))
    plain = tmp_path / "plain.tfrecord"  # uncompressed (write_records always GZIPs: its cut was a GZIP stream's)
    with tf.io.TFRecordWriter(str(plain)) as w:
        for ex in _examples(3, 16, 16):
            w.write(example_bytes(ex))
    assert plain.read_bytes()[:2] != b"\x1f\x8b"
    # GZIP cut short, and a plain file cut 2 bytes into its last checksum (struct's "unpack requires 4 bytes")
    for name, data in (("cut.tfrecord.gz", path.read_bytes()[:-40]), ("cut.tfrecord", plain.read_bytes()[:-2])):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CorruptFileError, match=f"{name} is truncated"):
            list(read_records(tmp_path / name, ["R", "crop"], (16, 16)))
    with pytest.raises(CorruptFileError, match=r"holds 256 values, not 8 x 8 = 64"):  # larger than asked: not cut
        list(read_records(path, ["R", "crop"], (8, 8)))
    with pytest.raises(CorruptFileError, match=r"holds 256 values, not 32 x 32 = 1024"):
        list(read_records(path, ["R", "crop"], (32, 32)))
    with pytest.raises(CorruptFileError):
        list(read_records(path, ["NIR"], (16, 16)))
    with pytest.raises(InputNotFoundError):
        list(read_records(tmp_path / "none", ["R"], (16, 16)))


def test_sample_patches_with_kernel_buffer(small_scene, tmp_path):
    img, lab = small_scene
    cfg = PatchConfig(patch_size=64, kernel_buffer=16, count=6, seed=3)
    s = sample_patches(img, lab, "cdl", cfg, tmp_path / "train.tfrecord.gz")
    assert s.count == 6 and 0 < s.crop_fraction < 1
    batch = np.concatenate(list(read_records(s.path, [*FEATURE_BANDS, LABEL], (96, 96))))
    assert batch.shape == (6, 96, 96, 6)
    labels = batch[..., -1]
    assert set(np.unique(labels)) <= {0.0, 1.0, 255.0}
    # each patch is a real window of the image: find the first one in the scene
    with ImageReader(img) as r:
        feats, _ = r.read()
    first = batch[0, ..., 0]
    hits = [(i, j) for i in range(feats.shape[0] - 95) for j in range(0, feats.shape[1] - 95, 8)
            if np.array_equal(feats[i : i + 96, j : j + 96, 0], first)]
    assert len(hits) == 1


def test_sample_patches_reaches_the_far_edges(tmp_path):
    """Only the bottom-right 74 x 74 px of a 150 x 170 image are labelled (48 px patches + 13 px
    buffer each side): the one window that fits starts at row 76, column 96, off the 8 px grid."""
    from testdata import write_raster

    h, w = 150, 170
    rng = np.random.default_rng(0)
    img = write_raster(tmp_path / "img.tif", rng.integers(200, 4000, (4, h, w)).astype(np.int16),
                       descriptions=["R", "G", "B", "NIR"])
    labels = np.full((h, w), 255, np.uint8)
    labels[h - 74 :, w - 74 :] = 1
    lab = write_raster(tmp_path / "corner.tif", labels, nodata=255)
    cfg = PatchConfig(patch_size=48, kernel_buffer=13, count=2, min_valid_fraction=1.0)
    made = sample_patches(img, lab, "binary", cfg, tmp_path / "edge.tfrecord.gz")
    assert made.count == 2 and made.crop_fraction == 1.0
    assert not [w for w in made.warnings if "sparse" in w]  # the exact window, not the fallback for sparse labels
    with ImageReader(img) as r:
        feats, _ = r.read()
    got = next(iter(read_records(str(tmp_path / "edge.tfrecord.gz"), [FEATURE_BANDS[0]], (74, 74))))
    np.testing.assert_array_equal(got[0, ..., 0], feats[h - 74 :, w - 74 :, 0])


def test_sample_patches_errors(small_scene, tmp_path):
    import rasterio

    from testdata import write_raster

    img, lab = small_scene
    with pytest.raises(RegionError, match="smaller than one patch"):
        sample_patches(img, lab, "cdl", PatchConfig(patch_size=512, count=1), tmp_path / "a.tfrecord.gz")
    with rasterio.open(img) as src:
        zeros = write_raster(tmp_path / "zeros.tif", np.zeros((src.height, src.width), np.uint8), transform=src.transform)
    with pytest.raises(NoDataError):
        sample_patches(img, zeros, "cdl", PatchConfig(patch_size=64, count=1), tmp_path / "c.tfrecord.gz")
    assert not (tmp_path / "c.tfrecord.gz").exists()
    # GZIP content under a name without .gz would be read as plain records by a reader going by the name
    for name in ("train.tfrecord", "train.txt", ".tfrecord.gz"):
        with pytest.raises(ConfigError, match=r"must end in \.tfrecord\.gz"):
            sample_patches(img, lab, "cdl", PatchConfig(patch_size=64, count=1), tmp_path / name)
        assert not (tmp_path / name).exists()


def test_image_export_roundtrip(small_scene, tmp_path, capsys, monkeypatch):
    img, _ = small_scene
    with ImageReader(img) as r:
        mixer_path = write_image_export(tmp_path / "exp" / "scene", r, patch=128, kernel=32, records_per_file=4)
        feats, _ = r.read()
        grid = r.grid
    mixer = read_mixer(mixer_path)
    d = json.loads(mixer_path.read_text())
    assert d["patchDimensions"] == [128, 128] and d["patchesPerRow"] == 3 and d["totalPatches"] == 9
    assert mixer.affine == grid.transform and mixer.crs is None
    assert len(export_files(mixer_path)) == 3  # 9 patches, 4 per file
    patches = {}
    for first, batch in iter_export_patches(mixer_path, FEATURE_BANDS):
        for k, p in enumerate(batch):
            patches[first + k] = p
    assert len(patches) == 9 and patches[0].shape == (160, 160, 5)
    # patch 4 is row 1, col 1: its centre is feats[128:256, 128:256]
    np.testing.assert_array_equal(patches[4][16:144, 16:144], feats[128:256, 128:256])
    # patch 0's margin lies outside the image: zeros
    assert not patches[0][:16].any()
    with pytest.raises(OutputExistsError):
        with ImageReader(img) as r:
            write_image_export(tmp_path / "exp" / "scene", r, patch=128, kernel=32)
    # another export whose prefix starts the same is not part of this one
    with ImageReader(img) as r:
        other = write_image_export(tmp_path / "exp" / "scene-b", r, patch=128, kernel=32, records_per_file=2)
    assert len(export_files(other)) == 5 and len(export_files(mixer_path)) == 3
    # the pattern the dashboard and ee-export-image give (PREFIX*mixer.json: Earth Engine's name has a '-' or
    # not) finds the one mixer; one that matches two, or none, is said
    assert len(export_files(tmp_path / "exp" / "scene-b*mixer.json")) == 5
    assert read_mixer(tmp_path / "exp" / "scene-b*mixer.json").patches_per_row == 3
    with pytest.raises(InputNotFoundError, match=r"scene\*mixer.json matches 2 files .*: give the path of one mixer"):
        read_mixer(tmp_path / "exp" / "scene*mixer.json")
    with pytest.raises(InputNotFoundError, match="no mixer file matches .*has its export task succeeded"):
        export_files(tmp_path / "exp" / "later*mixer.json")
    # a folder whose name holds glob characters (a download "exp [2024]"): only '*' is a pattern
    odd = tmp_path / "exp [2024]"
    odd.mkdir()
    shutil.copy(tmp_path / "exp" / "scene-b-mixer.json", odd / "scene-b-mixer.json")
    assert mixer_file(odd / "scene-b*mixer.json") == str(odd / "scene-b-mixer.json")
    # a pattern over folders, or of other files than mixers, is refused (it found and named other files of the
    # server, e.g. another user's saved session); a file too large for a mixer is not read whole
    for pattern in (tmp_path / "*" / "scene-b-mixer.json", tmp_path / "exp" / "*.json", tmp_path / "*" / "*mixer.json"):
        with pytest.raises(InputNotFoundError, match="only a file name may hold '.', and it ends in mixer.json"):
            read_mixer(pattern)
    big = tmp_path / "big-mixer.json"
    big.write_bytes(b" " * (2 * 1024 * 1024))
    with pytest.raises(CorruptFileError, match="is no Earth Engine mixer: it is over 1,048,576 bytes"):
        read_mixer(big)
    for text in ('{"patchesPerRow": ' + "1" * 5000 + "}", "[" * 100_000 + "]" * 100_000):  # (a ValueError, a RecursionError)
        big.write_text(text)
        with pytest.raises(CorruptFileError, match="is not valid JSON"):
            read_mixer(big)
    # a pattern typed in the export's folder, with no folder before it (it was refused as a folder's pattern)
    monkeypatch.chdir(tmp_path / "exp")
    assert mixer_file("scene-b*mixer.json") == "scene-b-mixer.json"
    # a mixer renamed (a browser's copy): said, and the predict command takes it for a mixer, not a GeoTIFF
    renamed = shutil.copy(mixer_path, tmp_path / "exp" / "scene-mixer (1).json")
    with pytest.raises(InputNotFoundError, match="not named as an Earth Engine export's mixer"):
        export_files(renamed)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "probability.tif").write_bytes(b"earlier")  # an output in the way: said after the mixer
    assert main(["predict", "--image", str(renamed), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "not named as an Earth Engine export's mixer" in err and "--overwrite" not in err
    Path(renamed).unlink()
    # overwritten with fewer files: none of the earlier, larger export's files is left to be read
    with ImageReader(img) as r:
        write_image_export(tmp_path / "exp" / "scene", r, patch=128, kernel=32, records_per_file=8, overwrite=True)
    assert [Path(f).name for f in export_files(mixer_path)] == ["scene-00000.tfrecord.gz", "scene-00001.tfrecord.gz"]
    assert sum(len(b) for _, b in iter_export_patches(mixer_path, FEATURE_BANDS)) == 9
    # a one-file export without a number (PREFIX.tfrecord.gz beside PREFIX-mixer.json) is found too
    for f in export_files(mixer_path):
        Path(f).unlink()
    with pytest.raises(InputNotFoundError, match="no TFRecord files of the image export"):
        export_files(mixer_path)
    with ImageReader(img) as r:
        write_image_export(tmp_path / "exp" / "scene", r, patch=128, kernel=32, records_per_file=9, overwrite=True)
    Path(export_files(mixer_path)[0]).rename(tmp_path / "exp" / "scene.tfrecord.gz")
    assert export_files(mixer_path) == [str(tmp_path / "exp" / "scene.tfrecord.gz")]
    assert sum(len(b) for _, b in iter_export_patches(mixer_path, FEATURE_BANDS)) == 9
    # and beside PREFIXmixer.json (no separator), as the docstring says (it was not)
    Path(mixer_path).rename(tmp_path / "exp" / "scenemixer.json")
    assert export_files(tmp_path / "exp" / "scenemixer.json") == [str(tmp_path / "exp" / "scene.tfrecord.gz")]


def test_exports_in_folders_named_with_glob_characters_are_found(small_scene, tmp_path):
    """A folder such as "exp [2024]" is a name, not a pattern (it found no file: "no TFRecord files")."""
    from core.patches import list_records

    img, _ = small_scene
    folder = tmp_path / "exp [2024] *?"
    with ImageReader(img) as r:
        mixer_path = write_image_export(folder / "scene", r, patch=128, kernel=32, records_per_file=4)
    assert [Path(f).name for f in export_files(mixer_path)] == [f"scene-0000{i}.tfrecord.gz" for i in range(3)]
    assert sum(len(b) for _, b in iter_export_patches(mixer_path, FEATURE_BANDS)) == 9
    assert list_records(folder) == export_files(mixer_path)  # a folder of records (train --train FOLDER)


def test_image_export_that_fails_leaves_the_earlier_export_whole(small_scene, tmp_path, monkeypatch):
    img, _ = small_scene
    prefix = tmp_path / "exp" / "scene"
    with ImageReader(img) as r:
        mixer_path = write_image_export(prefix, r, patch=128, kernel=32, records_per_file=4)
    before = {p.name: p.read_bytes() for p in prefix.parent.iterdir()}
    with ImageReader(img) as r:
        real, calls = r.read, []

        def failing(*a, **k):  # the 6th patch cannot be read (a damaged block, a full disk ...)
            calls.append(1)
            if len(calls) == 6:
                raise CorruptFileError("block unreadable")
            return real(*a, **k)

        monkeypatch.setattr(r, "read", failing)
        with pytest.raises(CorruptFileError):
            write_image_export(prefix, r, patch=64, kernel=16, records_per_file=2, overwrite=True)
    # neither new record files beside the old mixer nor a staging folder: the earlier export as it was
    assert {p.name: p.read_bytes() for p in prefix.parent.iterdir()} == before
    assert sum(len(b) for _, b in iter_export_patches(mixer_path, FEATURE_BANDS)) == 9
    # a first export that fails leaves no folder it made
    with ImageReader(img) as r:
        monkeypatch.setattr(r, "read", lambda *a, **k: (_ for _ in ()).throw(CorruptFileError("unreadable")))
        with pytest.raises(CorruptFileError):
            write_image_export(tmp_path / "new" / "scene", r, patch=128, kernel=32)
    assert not (tmp_path / "new").exists()


def test_image_export_to_geotiff_is_placed_by_the_mixer(tmp_path):
    """A georeferenced image -> image export (patches with a kernel buffer + mixer) -> one GeoTIFF:
    same CRS and transform, same reflectances, no data beyond the image; nothing left on failure."""
    from core.patches import export_to_geotiff
    from core.raster import read_image

    src = Path(__file__).parent / "data" / "georef" / "ftw_austria_s2_2021-06-17_window.tif"
    bands = {"R": 1, "G": 2, "B": 3, "NIR": 4}
    with ImageReader(src, bands) as r:
        mixer_path = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=32, records_per_file=4)
        feats, valid = r.read()
        grid = r.grid
    out = tmp_path / "scene" / "image.tif"
    seen = []
    got = export_to_geotiff(mixer_path, out, progress=lambda i, n: seen.append((i, n)))
    assert seen[-1] == (9, 9) and got.crs == grid.crs and got.transform == grid.transform
    f2, v2, g2 = read_image(out)
    assert g2.crs == grid.crs and g2.transform == grid.transform and (g2.height, g2.width) == (3 * 128, 3 * 128)
    h, w = grid.height, grid.width
    assert (v2[:h, :w] == valid).all() and not v2[h:].any() and not v2[:, w:].any()
    np.testing.assert_array_equal(f2[:h, :w, :4][valid], feats[..., :4][valid])
    # a pixel dark in one band only (0 blue over deep water) has data: only 0 in every band is Earth Engine's mask
    import rasterio

    row, col = (int(v) for v in np.argwhere(valid)[0])
    with rasterio.open(src) as s:
        data, profile = s.read(), s.profile
    data[bands["B"] - 1, row, col] = 0
    dark = tmp_path / "dark.tif"
    with rasterio.open(dark, "w", **profile) as d:
        d.write(data)
    with ImageReader(dark, bands) as r:
        dark_mixer = write_image_export(tmp_path / "dark" / "img", r, patch=128, kernel=32, records_per_file=4)
    export_to_geotiff(dark_mixer, tmp_path / "dark_scene.tif")
    f3, v3, _ = read_image(tmp_path / "dark_scene.tif")
    assert v3[row, col] and f3[row, col, 2] == 0.0 and f3[row, col, 0] == feats[row, col, 0]
    with pytest.raises(OutputExistsError):
        export_to_geotiff(mixer_path, out)
    # a missing file: an error, and no partial output
    Path(export_files(mixer_path)[-1]).unlink()
    with pytest.raises(CorruptFileError, match="some files are missing"):
        export_to_geotiff(mixer_path, tmp_path / "other.tif")
    assert not list(tmp_path.glob("*other*")) and not list(tmp_path.glob(".other*"))
    # more patches than the mixer says (8 left, it says 5): the same clear error before any is placed
    mixer = json.loads(Path(mixer_path).read_text())
    Path(mixer_path).write_text(json.dumps({**mixer, "totalPatches": 5}))
    with pytest.raises(CorruptFileError, match="more patches than the 5 its mixer says"):
        export_to_geotiff(mixer_path, tmp_path / "other.tif")
    assert not list(tmp_path.glob("*other*")) and not list(tmp_path.glob(".other*"))


def test_mixer_json_roundtrip_and_errors(tmp_path):
    m = Mixer("EPSG:32618", (30.0, 0.0, 100.0, 0.0, -30.0, 200.0), (256, 256), 4, 10)
    assert Mixer.from_json(json.loads(json.dumps(m.to_json()))) == m
    assert m.grid.width == 1024 and m.grid.height == 768
    bad = tmp_path / "x-mixer.json"
    bad.write_text(json.dumps({"patchDimensions": [256, 256]}))
    with pytest.raises(CorruptFileError, match="projection"):
        read_mixer(bad)
    bad.write_text(json.dumps({**m.to_json(), "projection": 1}))
    with pytest.raises(CorruptFileError, match="projection must be an object with affine.doubleMatrix"):
        read_mixer(bad)


@pytest.mark.parametrize("field, value", [
    ("patchesPerRow", 0), ("patchesPerRow", -3), ("patchesPerRow", 1.5), ("patchesPerRow", "3"), ("patchesPerRow", True),
    ("totalPatches", 0), ("totalPatches", None), ("patchDimensions", [0, 256]), ("patchDimensions", [256]),
    ("patchDimensions", 256), ("affine", [30.0, 0.0, 100.0, 0.0, -30.0]), ("affine", [0.0, 0.0, 100.0, 0.0, 0.0, 200.0]),
    ("affine", [30.0, 0.0, "x", 0.0, -30.0, 200.0]),
    ("totalPatches", 1_000_000_000),  # an image of 1,024 x 64 million px: the output raster could not even be made
    # a corner beyond the globe (1e20 m east): reprojecting it held a command for minutes (core.grid.off_earth_corner)
    ("affine", [30.0, 0.0, 1e20, 0.0, -30.0, 200.0]),
    # a CRS GDAL does not know: rasterio's CRSError came through as a traceback (found by fuzzing mixers)
    ("crs", "EPSG:99999"), ("crs", ""), ("crs", "PROJCS[]"),
    # a code that is not a number: rasterio raises a plain ValueError (a traceback, found by fuzzing GeoJSON crs members)
    ("crs", "EPSG:abc"), ("crs", "EPSG:32618.5"),
])
def test_mixer_with_bad_sizes_is_refused(tmp_path, field, value):
    """Non-positive or non-integer sizes (patchesPerRow 0 divided by zero), a broken affine or an
    unknown CRS: one CorruptFileError."""
    d = Mixer("EPSG:32618", (30.0, 0.0, 100.0, 0.0, -30.0, 200.0), (256, 256), 4, 12).to_json()
    if field == "affine":
        d["projection"]["affine"]["doubleMatrix"] = value
    elif field == "crs":
        d["projection"]["crs"] = value
    else:
        d[field] = value
    path = tmp_path / "x-mixer.json"
    path.write_text(json.dumps(d))
    with pytest.raises(CorruptFileError, match="mixer"):
        read_mixer(path)


def test_mixer_sizes_written_as_whole_floats_are_accepted():
    d = Mixer(None, (30.0, 0.0, 100.0, 0.0, -30.0, 200.0), (256, 256), 4, 12).to_json()
    d["patchesPerRow"], d["patchDimensions"] = 4.0, [256.0, 256]
    assert Mixer.from_json(d).patches_per_row == 4 and Mixer.from_json(d).patch == (256, 256)


def test_truncated_record_is_named_without_tf_internals(tmp_path):
    """The error names the file that is truncated (the second of three), not the first, and no TF internals."""
    folder = tmp_path / "recs"
    folder.mkdir()
    for i in range(3):
        write_records(folder / f"img-{i:05d}.tfrecord.gz", _examples(4, 64, 64, seed=i))
    second = folder / "img-00001.tfrecord.gz"
    second.write_bytes(second.read_bytes()[: len(second.read_bytes()) // 2])
    with pytest.raises(CorruptFileError) as err:
        list(read_records(folder, ["R", "crop"], (64, 64)))
    msg = str(err.value)
    assert "img-00001.tfrecord.gz" in msg and "img-00000" not in msg and "truncated" in msg
    assert "function_node" not in msg and "{{" not in msg and "[Op:" not in msg and "\n" not in msg


def _rescaled_export(mixer_path, prefix, factor):
    """A copy of an image export whose R, G, B, NIR values are multiplied by ``factor`` (NDVI kept), in one file."""
    import shutil

    batches = [b for _, b in iter_export_patches(mixer_path, FEATURE_BANDS)]
    patches = np.concatenate(batches)
    patches[..., :4] *= factor
    prefix.parent.mkdir(parents=True, exist_ok=True)
    write_records(Path(f"{prefix}-00000.tfrecord.gz"), ({b: p[..., k] for k, b in enumerate(FEATURE_BANDS)} for p in patches))
    shutil.copy(mixer_path, f"{prefix}-mixer.json")
    return Path(f"{prefix}-mixer.json")


def test_image_export_scale_is_detected_and_checked(small_scene, tmp_path):
    """An export of reflectance x 10000 (as raw Sentinel-2 SR) is read as reflectance, like a GeoTIFF;
    one of 8-bit display values is refused."""
    from core.errors import InvalidDataError
    from core.patches import export_scaling, export_to_geotiff
    from core.raster import read_image

    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=32, records_per_file=4)
    scale, offset = export_scaling(mixer)
    assert (scale == 1.0).all() and (offset == 0).all()
    x10k = _rescaled_export(mixer, tmp_path / "x10k" / "img", 10000.0)
    scale, _ = export_scaling(x10k)
    assert scale == pytest.approx([1e-4] * 4)
    export_to_geotiff(mixer, tmp_path / "a.tif")
    export_to_geotiff(x10k, tmp_path / "b.tif")
    fa, va, _ = read_image(tmp_path / "a.tif")
    fb, vb, _ = read_image(tmp_path / "b.tif")
    assert np.array_equal(va, vb) and va.any()
    np.testing.assert_allclose(fb[vb], fa[va], atol=1e-6)
    display = _rescaled_export(mixer, tmp_path / "u8" / "img", 255.0 / 0.6)  # 0-255 as floats
    with pytest.raises(InvalidDataError, match="8-bit"):
        export_scaling(display)
    with pytest.raises(InvalidDataError, match="8-bit"):
        export_to_geotiff(display, tmp_path / "c.tif")
    assert not (tmp_path / "c.tif").exists()


def test_patches_larger_than_the_free_disk_are_refused_before_any_is_cut(monkeypatch, small_scene, tmp_path):
    """--count 100000 of 256 px patches (tens of GB) ran until the disk was full."""
    import shutil
    from collections import namedtuple

    from core.config import PatchConfig
    from core.errors import ConfigError
    from core.patches import sample_patches

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 50_000_000, 50_000_000))
    img, lab = small_scene
    cfg = PatchConfig(patch_size=64, count=1000)  # >= 1000 * 64 * 64 * 6 * 4 * 0.2 bytes = 19.7 MB: fits in 50 MB
    assert sample_patches(img, lab, "cdl", cfg, tmp_path / "fits.tfrecord.gz").count == 1000
    with pytest.raises(ConfigError, match=r"^10,000 patches of 64 px would take at least 196.6 MB and .* has 50.0 MB "
                                          r"free; cut fewer \(--count"):
        sample_patches(img, lab, "cdl", PatchConfig(patch_size=64, count=10_000), tmp_path / "big.tfrecord.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fits.tfrecord.gz"]


def test_patches_have_no_label_where_the_image_has_no_data_and_count_their_crop_exactly(tmp_path):
    """Labels under the image's no data (0 in every band) are no data in the records, and the crop fraction
    is of the labelled pixels written, read back from them."""
    from core.labels import NODATA

    from testdata import write_raster

    rng = np.random.default_rng(1)
    data = rng.integers(200, 4000, (4, 64, 64)).astype(np.int16)
    data[:, :, :20] = 0  # the image's left third has no data
    img = write_raster(tmp_path / "img.tif", data, descriptions=["R", "G", "B", "NIR"])
    labels = rng.integers(0, 2, (64, 64)).astype(np.uint8)
    lab = write_raster(tmp_path / "lab.tif", labels, nodata=255)
    made = sample_patches(img, lab, "binary", PatchConfig(patch_size=32, count=6, min_valid_fraction=0.1, seed=2),
                          tmp_path / "p.tfrecord.gz")
    got = np.concatenate(list(read_records(made.path, [FEATURE_BANDS[0], "crop"], (32, 32))))
    imaged = got[..., 0] != 0
    assert (got[..., 1][~imaged] == NODATA).all() and (got[..., 1][imaged] != NODATA).all() and (~imaged).any()
    crop = got[..., 1] == 1
    assert made.crop_fraction == pytest.approx(crop.sum() / (got[..., 1] != NODATA).sum(), abs=1e-4)


def test_an_export_of_wide_patches_is_assembled_where_the_image_was(small_scene, tmp_path):
    """Patches 128 px wide and 64 px high (Earth Engine's patchDimensions are width, height): the GeoTIFF
    assembled from them is the source image, pixel for pixel, not patches cut or placed as squares."""
    from core.patches import export_to_geotiff
    from core.raster import read_image

    img, _ = small_scene  # 320 x 288 px
    with ImageReader(img) as r:
        mixer_path = write_image_export(tmp_path / "exp" / "wide", r, patch=(128, 64), kernel=32, records_per_file=8)
        feats, valid = r.read()
    assert json.loads(mixer_path.read_text())["patchDimensions"] == [128, 64]
    grid = export_to_geotiff(mixer_path, tmp_path / "wide.tif")
    f2, v2, g2 = read_image(tmp_path / "wide.tif")
    assert (grid.width, grid.height) == (g2.width, g2.height) == (3 * 128, 5 * 64)
    h, w = valid.shape
    assert (v2[:h, :w] == valid).all() and not v2[h:].any() and not v2[:, w:].any()
    np.testing.assert_array_equal(f2[:h, :w, :4][valid], feats[..., :4][valid])


def test_patches_as_many_as_their_windows_are_each_window_once(tmp_path):
    """A 64 x 64 px image labelled throughout has 25 windows of 32 px on the 8 px grid: 25 patches are
    those 25, none twice (drawn with replacement, a third of them repeated and others were left out)."""
    from testdata import write_raster

    rng = np.random.default_rng(2)
    img = write_raster(tmp_path / "img.tif", rng.integers(200, 4000, (4, 64, 64)).astype(np.int16),
                       descriptions=["R", "G", "B", "NIR"])
    lab = write_raster(tmp_path / "lab.tif", rng.integers(0, 2, (64, 64)).astype(np.uint8), nodata=255)
    made = sample_patches(img, lab, "binary", PatchConfig(patch_size=32, count=25, seed=1), tmp_path / "p.tfrecord.gz")
    assert made.count == 25 and not made.warnings
    got = np.concatenate(list(read_records(made.path, ["R"], (32, 32))))
    assert len({p.tobytes() for p in got}) == 25


def test_an_image_narrower_than_a_patch_in_one_direction_is_refused(tmp_path):
    """A 300 x 40 px image (wide enough, not high enough for a 64 px patch) is refused as too small."""
    from testdata import write_raster

    rng = np.random.default_rng(0)
    img = write_raster(tmp_path / "strip.tif", rng.integers(200, 4000, (4, 40, 300)).astype(np.int16),
                       descriptions=["R", "G", "B", "NIR"])
    lab = write_raster(tmp_path / "lab.tif", np.ones((40, 300), np.uint8), nodata=255)
    with pytest.raises(RegionError, match=r"the image \(300x40 px\) is smaller than one patch \(64x64 px\)"):
        sample_patches(img, lab, "binary", PatchConfig(patch_size=64, count=2), tmp_path / "p.tfrecord.gz")
    assert not (tmp_path / "p.tfrecord.gz").exists()


def test_export_records_smaller_than_the_mixers_patch_are_refused(small_scene, tmp_path):
    """Records of 64 x 64 px behind a mixer that says 128 px patches (files of another export under its
    name): a damaged export, not patches with a negative kernel buffer read as 64 px ones."""
    img, _ = small_scene
    with ImageReader(img) as r:
        mixer_path = write_image_export(tmp_path / "exp" / "scene", r, patch=64, kernel=0, records_per_file=32)
    d = json.loads(mixer_path.read_text())
    mixer_path.write_text(json.dumps({**d, "patchDimensions": [128, 128]}))  # 25 patches in 5 rows still
    with pytest.raises(CorruptFileError, match="hold 4096 float values per band, not a 128 x 128 px patch"):
        list(iter_export_patches(mixer_path, FEATURE_BANDS))


def test_export_scale_is_found_past_patches_without_data(tmp_path):
    """An export in one file whose first 16 patches hold no data (0 in every band: the region's corner
    beyond a scene) and later ones do: its scale is detected from those, not refused as holding no data."""
    from core.patches import export_scaling

    rng = np.random.default_rng(0)
    exs = [{b: (np.zeros((32, 32), np.float32) if i < 16 else rng.uniform(0.02, 0.4, (32, 32)).astype(np.float32))
            for b in FEATURE_BANDS} for i in range(20)]
    (tmp_path / "exp").mkdir()
    write_records(tmp_path / "exp" / "img-00000.tfrecord.gz", exs)
    mixer = tmp_path / "exp" / "img-mixer.json"
    mixer.write_text(json.dumps(Mixer(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), (32, 32), 5, 20).to_json()))
    scale, offset = export_scaling(mixer)
    assert (scale == 1.0).all() and (offset == 0).all()


def test_an_image_export_never_writes_over_record_files_without_a_mixer(small_scene, tmp_path):
    """PREFIX-00000.tfrecord.gz of another export (its mixer not yet copied, or deleted) is not replaced
    unasked: refused, its bytes as they were."""
    img, _ = small_scene
    (tmp_path / "exp").mkdir()
    other = tmp_path / "exp" / "scene-00000.tfrecord.gz"
    write_records(other, _examples(1, 4, 4))
    before = other.read_bytes()
    with ImageReader(img) as r, pytest.raises(OutputExistsError, match="scene-00000.tfrecord.gz already exists"):
        write_image_export(tmp_path / "exp" / "scene", r, patch=128, kernel=32)
    assert other.read_bytes() == before and sorted(p.name for p in (tmp_path / "exp").iterdir()) == [other.name]


def test_an_odd_kernel_is_refused(small_scene, tmp_path):
    """A kernel of 33 px cannot be split half on each side of a patch: refused before anything is written."""
    img, _ = small_scene
    with ImageReader(img) as r, pytest.raises(ConfigError, match="kernel must be even .*got 33"):
        write_image_export(tmp_path / "exp" / "scene", r, patch=128, kernel=33)
    assert not (tmp_path / "exp").exists()


def test_an_export_assembled_before_is_used_as_it_is_and_one_written_again_assembled_anew(small_scene, tmp_path):
    """The Region page's "Use this export" (another session's press, or the same one again): the GeoTIFF
    assembled before is the one used, not written anew (its time is part of every prediction key of the
    session using it); an export whose files were written again (a new export under the same prefix) is
    assembled into a new file."""
    import os

    from core.patches import assembled_export

    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "scene", r, patch=128, kernel=32, records_per_file=4)
        feats, _ = r.read()
    first, grid = assembled_export(mixer, tmp_path / "exports")
    stamp = os.stat(first).st_mtime_ns
    with ImageReader(first) as r:
        h, w = feats.shape[:2]  # (the export's grid: whole patches)
        np.testing.assert_array_equal(r.read()[0][:h, :w, :4], feats[..., :4])
    again, grid_again = assembled_export(tmp_path / "exp" / "scene*mixer.json", tmp_path / "exports")
    assert again == first and os.stat(again).st_mtime_ns == stamp and grid_again == grid
    with ImageReader(img) as r:
        write_image_export(tmp_path / "exp" / "scene", r, patch=128, kernel=32, records_per_file=8, overwrite=True)
    anew, _ = assembled_export(mixer, tmp_path / "exports")
    assert anew != first and anew.is_file() and first.is_file()  # (the one in use elsewhere stays)
