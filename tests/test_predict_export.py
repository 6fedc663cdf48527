import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from testdata import FLANDERS_S2
from core.config import PredictConfig
from core.errors import ConfigError, CorruptFileError, ModelMismatchError, OutputExistsError
from core.patches import export_files, write_image_export
from core.predict import predict_image
from core.predict_export import predict_export
from core.raster import ImageReader


def test_image_export_predicts_like_the_geotiff(tiny_model_path, small_scene, tmp_path):
    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=64)
    events = []
    s = predict_export(mixer, tmp_path / "a", tiny_model_path, progress=lambda d, t: events.append((d, t)))
    assert events[0] == (0, 9) and events[-1] == (9, 9)  # the total from the start (a bar shows it)
    predict_image(img, tmp_path / "b", tiny_model_path)
    with rasterio.open(tmp_path / "a" / "probability.tif") as a, rasterio.open(tmp_path / "b" / "probability.tif") as b:
        pa, pb = a.read(1), b.read(1)
        assert a.transform == b.transform  # placed by the mixer
        assert a.descriptions == b.descriptions == ("crop probability (%)",)
        assert a.width == 384 and a.height == 384  # whole patches, as Earth Engine pads them
    pa = pa[: pb.shape[0], : pb.shape[1]]
    assert np.array_equal(pa == 255, pb == 255)
    v = pb != 255
    # different tilings of the same image with enough context agree closely
    assert np.abs(pa[v].astype(int) - pb[v]).mean() < 3
    assert s["kernel"] == 64 and s["valid_pixels"] == int(v.sum())


def test_georeferenced_export_keeps_its_crs(tiny_model_path, tmp_path):
    with ImageReader(FLANDERS_S2) as r:
        mixer = write_image_export(tmp_path / "s2", r, patch=32, kernel=32)
    assert json.loads(mixer.read_text())["projection"]["crs"] == "EPSG:32631"
    s = predict_export(mixer, tmp_path / "o", tiny_model_path)
    with rasterio.open(tmp_path / "o" / "crop_mask.tif") as m:
        assert m.crs.to_epsg() == 32631 and m.transform.c == 501360.0
    assert s["crop_area_ha"] == pytest.approx(s["crop_pixels"] * 0.01)


def test_info_describes_an_export_as_predict_takes_it(capsys, tmp_path):
    """`info --image X-mixer.json` said "not a GeoTIFF", while predict takes the same file."""
    from core.__main__ import main

    with ImageReader(FLANDERS_S2) as r:
        mixer = write_image_export(tmp_path / "s2", r, patch=32, kernel=32)
        grid = r.grid
    assert main(["info", "--image", str(mixer)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "earth engine image export" and info["crs"] == "EPSG:32631"
    assert (info["width"], info["height"]) == (64, 64) == (grid.width, grid.height)  # 2 x 2 patches of 32
    assert info["transform"][:3] == [10.0, 0.0, 501360.0] and info["patches"] == 4
    assert info["files"] == export_files(mixer)
    # its scale as predict detects it (write_image_export writes reflectance 0-1, as Earth Engine's
    # composites), and no warning
    assert info["scales"] == {b: 1.0 for b in ("R", "G", "B", "NIR")} and info["warnings"] == []
    assert main(["info", "--image", str(mixer), "--bands", "1,2,3,4"]) == 2
    assert "--bands works on GeoTIFF images only" in capsys.readouterr().err


def test_info_says_that_an_export_lacks_a_file_before_a_prediction_finds_it_out(capsys, tmp_path):
    """An export whose last file is missing (still being written, or not all copied) was described without a
    warning; predict read every patch before it said "some files are missing"."""
    from core.__main__ import main

    with ImageReader(FLANDERS_S2) as r:
        mixer = write_image_export(tmp_path / "s2", r, patch=16, kernel=16, records_per_file=5)
    files = export_files(mixer)
    assert len(files) == 4  # 16 patches, 5 to a file
    assert main(["info", "--image", str(mixer)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["patches"] == info["patches_in_files"] == 16 and info["warnings"] == []
    Path(files[-1]).unlink()
    assert main(["info", "--image", str(mixer)]) == 0
    out, err = capsys.readouterr()
    info = json.loads(out)
    assert info["patches_in_files"] == 15 and info["warnings"] == [
        "the image export has 15 patches but its mixer says 16; some files are missing (still being written, or not "
        "all copied): prediction will refuse it"]
    assert err == f"warning: {info['warnings'][0]}\n"
    import shutil

    with ImageReader(FLANDERS_S2) as r:  # another export's files under this one's prefix
        write_image_export(tmp_path / "x", r, patch=16, kernel=16, records_per_file=5)
    shutil.copy(tmp_path / "x-00003.tfrecord.gz", tmp_path / "s2-00003.tfrecord.gz")
    shutil.copy(tmp_path / "x-00000.tfrecord.gz", tmp_path / "s2-00004.tfrecord.gz")
    assert main(["info", "--image", str(mixer)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["patches_in_files"] == 21 and "more than the 16 its mixer says" in info["warnings"][0]


def test_export_errors(tiny_model_path, small_scene, tmp_path):
    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "odd", r, patch=128, kernel=2)
    with pytest.raises(ModelMismatchError, match="multiple of 16"):
        predict_export(mixer, tmp_path / "o", tiny_model_path)
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "cut", r, patch=128, kernel=64, records_per_file=3)
    import os

    os.remove(export_files(mixer)[-1])
    with pytest.raises(CorruptFileError, match="missing"):
        predict_export(mixer, tmp_path / "p", tiny_model_path)
    assert not (tmp_path / "p" / "probability.tif").exists()
    # an output's name taken by a folder: refused before any work, the earlier outputs untouched
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "ok", r, patch=128, kernel=64)
    out = tmp_path / "q"
    (out / "summary.json").mkdir(parents=True)
    for name in ("probability.tif", "crop_mask.tif"):
        (out / name).write_text("earlier")
    with pytest.raises(ConfigError, match="summary.json is a folder"):
        predict_export(mixer, out, tiny_model_path, overwrite=True)
    assert [(out / n).read_text() for n in ("probability.tif", "crop_mask.tif")] == ["earlier", "earlier"]


def _rescaled_export(mixer_path, prefix, factor, add=0.0):
    """A copy of an image export whose R, G, B, NIR values are multiplied by ``factor``, plus ``add``
    (NDVI kept), in one file."""
    import shutil
    from pathlib import Path

    from core.patches import iter_export_patches, write_records
    from core.bands import FEATURE_BANDS

    patches = np.concatenate([b for _, b in iter_export_patches(mixer_path, FEATURE_BANDS)])
    patches[..., :4] = patches[..., :4] * factor + add
    prefix.parent.mkdir(parents=True, exist_ok=True)
    write_records(Path(f"{prefix}-00000.tfrecord.gz"), ({b: p[..., k] for k, b in enumerate(FEATURE_BANDS)} for p in patches))
    shutil.copy(mixer_path, f"{prefix}-mixer.json")
    return Path(f"{prefix}-mixer.json")


def test_export_in_reflectance_x10000_predicts_like_the_same_export_in_0_1(tiny_model_path, small_scene, tmp_path):
    """Exports get the GeoTIFFs' scale detection: raw Sentinel-2 SR (x 10000) is not fed to the model as is."""
    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=64, records_per_file=4)
    x10k = _rescaled_export(mixer, tmp_path / "x10k" / "img", 10000.0)
    a = predict_export(mixer, tmp_path / "a", tiny_model_path)
    b = predict_export(x10k, tmp_path / "b", tiny_model_path)
    with rasterio.open(tmp_path / "a" / "probability.tif") as pa, rasterio.open(tmp_path / "b" / "probability.tif") as pb:
        assert np.abs(pa.read(1).astype(int) - pb.read(1)).max() <= 1
    assert a["valid_pixels"] == b["valid_pixels"] and abs(a["crop_pixels"] - b["crop_pixels"]) <= a["valid_pixels"] * 0.001


@pytest.mark.parametrize("value", ["float32 max", "above any reflectance"])
def test_an_export_with_one_patch_of_impossible_values_keeps_the_scale_of_the_rest(tiny_model_path, small_scene, tmp_path,
                                                                                    value):
    """One patch of nine whose R band holds float32's largest value (a fill in one band) is no data; the
    rest predicts as without it (the fill made the export read as x 10000: no crop anywhere). So is one
    holding a value no surface reflectance reaches (above MAX_POSSIBLE_REFLECTANCE, yet finite and small
    enough for the model to give a number), as a GeoTIFF's reader reads it."""
    from pathlib import Path

    from core.bands import FEATURE_BANDS
    from core.patches import iter_export_patches, write_records
    from core.reflectance import MAX_POSSIBLE_REFLECTANCE

    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=64)
    patches = np.concatenate([b for _, b in iter_export_patches(mixer, FEATURE_BANDS)])
    patches[4, ..., 0] = np.finfo(np.float32).max if value == "float32 max" else MAX_POSSIBLE_REFLECTANCE + 0.5
    odd = tmp_path / "odd"
    odd.mkdir()
    write_records(odd / "img-00000.tfrecord.gz", ({b: p[..., k] for k, b in enumerate(FEATURE_BANDS)} for p in patches))
    (odd / "img-mixer.json").write_text(Path(mixer).read_text())
    a = predict_export(mixer, tmp_path / "a", tiny_model_path)
    b = predict_export(odd / "img-mixer.json", tmp_path / "b", tiny_model_path)
    with rasterio.open(tmp_path / "a" / "probability.tif") as pa, rasterio.open(tmp_path / "b" / "probability.tif") as pb:
        before, after = pa.read(1), pb.read(1)
    core = np.zeros(before.shape, bool)
    core[128:256, 128:256] = True  # (the fifth patch's own pixels: row 1, column 1)
    assert (before[core] != 255).any() and (after[core] == 255).all()
    assert b["valid_pixels"] == a["valid_pixels"] - int((before[core] != 255).sum())
    assert np.array_equal(after[~core], before[~core])  # (each patch holds its own buffer: the rest is unchanged)
    assert abs(b["crop_pixels"] / b["valid_pixels"] - a["crop_pixels"] / a["valid_pixels"]) < 0.05 and b["crop_pixels"] > 0


def test_export_that_is_not_reflectance_is_refused(tiny_model_path, small_scene, tmp_path):
    from core.errors import InvalidDataError

    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=64, records_per_file=4)
    for factor, match in ((255.0 / 0.6, "8-bit"), (100000.0, "too large")):
        bad = _rescaled_export(mixer, tmp_path / f"x{factor:g}" / "img", factor)
        with pytest.raises(InvalidDataError, match=match):
            predict_export(bad, tmp_path / "o", tiny_model_path)
        assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_export_with_negative_reflectance_is_refused_like_a_geotiff(tiny_model_path, small_scene, tmp_path):
    from core.errors import InvalidDataError
    from core.patches import iter_export_patches, write_records
    from core.bands import FEATURE_BANDS

    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=64, records_per_file=9)
    patches = np.concatenate([b for _, b in iter_export_patches(mixer, FEATURE_BANDS)])
    patches[4, 100, 100, 0] = -0.3
    write_records(export_files(mixer)[0], ({b: p[..., k] for k, b in enumerate(FEATURE_BANDS)} for p in patches), overwrite=True)
    with pytest.raises(InvalidDataError, match="negative"):
        predict_export(mixer, tmp_path / "o", tiny_model_path)


def test_image_export_averages_views_like_a_geotiff(tiny_model_path, small_scene, tmp_path):
    from core.config import PredictConfig

    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=64)
    one = predict_export(mixer, tmp_path / "one", tiny_model_path)
    four = predict_export(mixer, tmp_path / "four", tiny_model_path, PredictConfig(views=4))
    assert one["views"] == 1 and four["views"] == 4 and four["valid_pixels"] == one["valid_pixels"]
    with rasterio.open(tmp_path / "one" / "probability.tif") as a, rasterio.open(tmp_path / "four" / "probability.tif") as b:
        assert not np.array_equal(a.read(1), b.read(1))  # the views were averaged in


def test_export_with_oblong_patches_predicts_like_the_square_one(tiny_model_path, small_scene, tmp_path):
    """Earth Engine's patchDimensions may be [width, height] with width != height."""
    img, _ = small_scene
    with ImageReader(img) as r:
        square = write_image_export(tmp_path / "sq" / "img", r, patch=128, kernel=64)
        oblong = write_image_export(tmp_path / "ob" / "img", r, patch=(192, 96), kernel=64)
    assert json.loads(oblong.read_text())["patchDimensions"] == [192, 96]
    predict_export(square, tmp_path / "a", tiny_model_path)
    b = predict_export(oblong, tmp_path / "b", tiny_model_path)
    assert b["kernel"] == 64
    with rasterio.open(tmp_path / "a" / "probability.tif") as fa, rasterio.open(tmp_path / "b" / "probability.tif") as fb:
        pa, pb = fa.read(1), fb.read(1)
    h, w = min(pa.shape[0], pb.shape[0]), min(pa.shape[1], pb.shape[1])
    pa, pb = pa[:h, :w], pb[:h, :w]
    assert np.array_equal(pa == 255, pb == 255)
    v = pa != 255
    assert v.any() and np.abs(pa[v].astype(int) - pb[v]).mean() < 3
    with pytest.raises(ConfigError, match="square"):
        predict_export(oblong, tmp_path / "c", tiny_model_path, config=PredictConfig(views=8))


def test_overwriting_an_export_prediction_removes_what_was_made_from_the_old_mask(tiny_model_path, tmp_path):
    """metrics.json and crop_fields.geojson described the replaced crop mask: they go with it, as
    for a GeoTIFF's prediction (they stayed, beside a new mask at another threshold)."""
    with ImageReader(FLANDERS_S2) as r:
        mixer = write_image_export(tmp_path / "s2", r, patch=32, kernel=32)
    out = tmp_path / "o"
    predict_export(mixer, out, tiny_model_path)
    for name in ("metrics.json", "crop_fields.geojson"):
        (out / name).write_text("from the old mask")
    with pytest.raises(OutputExistsError):  # without --overwrite nothing changes
        predict_export(mixer, out, tiny_model_path, PredictConfig(threshold=0.3))
    assert (out / "metrics.json").read_text() == "from the old mask"
    s = predict_export(mixer, out, tiny_model_path, PredictConfig(threshold=0.3), overwrite=True)
    assert s["threshold"] == 0.3
    assert sorted(p.name for p in out.iterdir()) == ["crop_mask.tif", "probability.tif", "summary.json"]


def test_export_with_the_sentinel2_offset_gets_the_geotiffs_warning(tiny_model_path, small_scene, tmp_path):
    """Reflectance x 10000 + 1000 (Sentinel-2 L2A from 2022 on) is possible but suspect: an export's
    summary warns as a GeoTIFF's does (it said nothing)."""
    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=64, records_per_file=4)
    plain = predict_export(mixer, tmp_path / "a", tiny_model_path)
    shifted = _rescaled_export(mixer, tmp_path / "s2" / "img", 10000.0, add=1000.0)
    s = predict_export(shifted, tmp_path / "b", tiny_model_path)
    assert plain["warnings"] == []
    assert len(s["warnings"]) == 1 and "darkest pixels of the image export img-mixer.json" in s["warnings"][0]
    assert "subtract 1000" in s["warnings"][0]


def test_export_whose_data_lie_in_files_not_sampled_gets_its_scale_from_them(tiny_model_path, small_scene, tmp_path):
    """A small region's data in a few files of a large export (x 10000): the files sampled for the
    scale held none, so it was taken as 0-1, and every pixel was then out of range (no data)."""
    import shutil

    from core.bands import FEATURE_BANDS
    from core.errors import NoDataError
    from core.patches import EXPORT_SAMPLE_PATCHES, export_reflectance, iter_export_patches, write_records

    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=64, kernel=32, records_per_file=1)
    patches = np.concatenate([b for _, b in iter_export_patches(mixer, FEATURE_BANDS)])
    sampled = set(np.linspace(0, len(patches) - 1, EXPORT_SAMPLE_PATCHES).astype(int))
    kept = [i for i in range(len(patches)) if i not in sampled][:2]  # the data: in two files not sampled
    out = tmp_path / "x10k"
    out.mkdir()
    for i, patch in enumerate(patches):
        values = patch[..., :4] * 10000.0 if i in kept else np.zeros_like(patch[..., :4])
        write_records(out / f"img-{i:05d}.tfrecord.gz", [{b: values[..., k] for k, b in enumerate(FEATURE_BANDS[:4])}])
    shutil.copy(mixer, out / "img-mixer.json")
    scales, _, _ = export_reflectance(out / "img-mixer.json")
    assert np.allclose(scales, 1e-4)
    result = predict_export(out / "img-mixer.json", tmp_path / "pred", tiny_model_path)
    core = [patches[i][16:80, 16:80, :4] for i in kept]  # (the kernel's 16 px a side are the neighbours')
    assert result["valid_pixels"] == sum(int((c != 0).any(axis=-1).sum()) for c in core) > 0
    for path in out.glob("*.tfrecord.gz"):  # no data at all: said, not a guess
        write_records(path, [{b: np.zeros((96, 96), np.float32) for b in FEATURE_BANDS[:4]}], overwrite=True)
    with pytest.raises(NoDataError, match="holds no valid pixels"):
        export_reflectance(out / "img-mixer.json")


def test_export_refuses_a_model_trained_on_other_bands(swir_model_path, tmp_path):
    """A model whose card names a SWIR band takes 5 inputs like ours, so without the band check it
    predicted an export's R, G, B, NIR, NDVI as if they were its own bands: crops from the wrong
    features, without a word. It must be refused, as a GeoTIFF's prediction refuses it."""
    with ImageReader(FLANDERS_S2) as r:
        mixer = write_image_export(tmp_path / "s2", r, patch=32, kernel=32)
    with pytest.raises(ModelMismatchError, match="SWIR1"):
        predict_export(mixer, tmp_path / "o", swir_model_path)
    assert not (tmp_path / "o").exists()


def test_an_export_the_fixed_size_model_cannot_take_says_how_to_export_it(small_scene, tmp_path):
    """A seed-preset model (256 px only) and an export of 96 + 32 px patches said that they differ, and no more."""
    from core.bands import FEATURE_BANDS
    from core.card import ModelCard, Normalization, Preset
    from core.model import build_unet, save_model

    fixed = build_unet(Preset("fixed", (4,), 8, 96, "a 96 px only U-Net"))  # (its card names its own preset: a card
    # naming "light" beside it is refused as another model's)
    norm = Normalization((0.0,) * 5, (1.0,) * 5)
    path = save_model(fixed, ModelCard(preset="fixed", bands=FEATURE_BANDS, normalization=norm), tmp_path / "f.keras")
    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "x", r, patch=96, kernel=32)
    with pytest.raises(ModelMismatchError, match=r"are 128 px with their buffer but the model takes 96 px: export the "
                                                 r"image again with patch \+ 2 x kernel = 96 \(e.g. --patch 32 --kernel 32\)"):
        predict_export(mixer, tmp_path / "o", path)
    assert not (tmp_path / "o").exists()


def test_each_export_patch_gives_its_own_pixels_the_probability_a_geotiff_gives_them(small_scene, tmp_path):
    """A model of each pixel alone (a 1 x 1 convolution of its red band): any tiling gives every pixel the
    same probability, so the export's must equal the GeoTIFF's pixel for pixel; the core of each patch
    taken from the wrong place in it (its corner, not past the kernel) shifts every value."""
    import keras

    from core.bands import FEATURE_BANDS
    from core.card import ModelCard
    from core.dataset import compute_normalization, load_scenes
    from core.model import save_model
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS

    inputs = keras.Input((None, None, len(FEATURE_BANDS)))
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", kernel_initializer=keras.initializers.Constant(
        [[[[1.5], [0.0], [0.0], [0.0], [0.0]]]]), bias_initializer="zeros")(inputs)
    norm = compute_normalization(load_scenes([f"{SAMPLE_IMAGE}:{SAMPLE_LABELS}"]))
    model = save_model(keras.Model(inputs, outputs), ModelCard("light", FEATURE_BANDS, norm), tmp_path / "pixel.keras")
    img, _ = small_scene
    with ImageReader(img) as r:
        mixer = write_image_export(tmp_path / "exp" / "img", r, patch=128, kernel=64)
    predict_export(mixer, tmp_path / "a", model)
    predict_image(img, tmp_path / "b", model)
    with rasterio.open(tmp_path / "a" / "probability.tif") as a, rasterio.open(tmp_path / "b" / "probability.tif") as b:
        pb = b.read(1)
        pa = a.read(1)[: pb.shape[0], : pb.shape[1]]
    v = pb != 255
    assert np.array_equal(pa == 255, ~v) and np.ptp(pb[v]) > 20  # (the red band's detail, not a flat layer)
    assert np.abs(pa[v].astype(int) - pb[v]).max() <= 1  # (whole percent: rounding only)


def test_an_export_predictions_files_say_what_they_were_made_from(tiny_model_path, tmp_path):
    """As a GeoTIFF's prediction, the files name the export and the model, and how many views each patch was
    averaged over (the export's said 1 whatever the views)."""
    from core.card import load_card

    with ImageReader(FLANDERS_S2) as r:
        mixer = write_image_export(tmp_path / "s2", r, patch=32, kernel=32)
    s = predict_export(mixer, tmp_path / "o", tiny_model_path, PredictConfig(views=4, threshold=0.3))
    assert s["views"] == 4
    with rasterio.open(tmp_path / "o" / "crop_mask.tif") as m, rasterio.open(tmp_path / "o" / "probability.tif") as p:
        for tags in (m.tags(), p.tags()):
            assert tags["VIEWS_PER_TILE"] == "4" and tags["SOURCE"] == mixer.name
            assert tags["MODEL_WEIGHTS_SHA256"] == load_card(tiny_model_path).weights
        assert float(m.tags()["THRESHOLD"]) == 0.3
