import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from testdata import FTW, SAMPLE_IMAGE, write_raster
from core.config import PredictConfig
from core.errors import ConfigError, InvalidDataError, ModelMismatchError, NoDataError, OutputExistsError, RegionError
from core.card import ModelCard, Normalization, load_card
from core.model import build_unet, save_model
from core.predict import blend_weights, predict_array, predict_image, tile_origins
from core.bands import parse_band_spec
from core.raster import read_image


def test_tile_origins_cover_and_shift():
    for offset in (0, 1, 37, 191):
        starts = tile_origins(1000, 256, 192, offset)
        assert starts[0] <= 0 < starts[0] + 256 and starts[-1] < 1000 <= starts[-1] + 256
        assert all(b - a == 192 for a, b in zip(starts, starts[1:]))
    assert tile_origins(512, 256, 256) == [0, 256]
    # on a 16-px lattice an odd offset moves the grid by whole lattice steps only
    assert all(p % 16 == 0 for p in tile_origins(1000, 512, 384, 37, lattice=16))
    assert tile_origins(1000, 512, 384, 37, lattice=16) == tile_origins(1000, 512, 384, 32, lattice=16)


def test_config_resolves_for_the_model():
    from core.errors import ConfigError

    light = PredictConfig().resolve(None, 16)
    assert (light.tile, light.overlap, light.batch_size) == (512, 128, 2)
    seed = PredictConfig().resolve(256, 32)
    assert (seed.tile, seed.overlap, seed.batch_size) == (256, 64, 8)
    with pytest.raises(ConfigError, match="256 px tiles"):
        PredictConfig(tile=512).resolve(256, 32)
    with pytest.raises(ConfigError, match=r"overlap \(--overlap\) must be a multiple of 32"):
        PredictConfig(tile=256, overlap=48).resolve(256, 32)
    with pytest.raises(ConfigError, match=r"overlap \(--overlap\) must be 0-256, half the 512 px tile, got 512"):
        PredictConfig(overlap=512).resolve(None, 16)


def test_whole_percents_round_halves_up_in_double_precision():
    """float32 arithmetic with ties to even stored these as 96, 64 and 98 (off by one)."""
    from core.predict import probability_to_uint8, threshold_mask, whole_percent

    prob = np.array([0.9549999833, 0.6349999905, 0.9850000143, 0.5, 0.0, 1.0, np.nan], np.float32)
    np.testing.assert_array_equal(whole_percent(prob[:6]), [95, 63, 99, 50, 0, 100])
    np.testing.assert_array_equal(probability_to_uint8(prob), [95, 63, 99, 50, 0, 100, 255])
    # the mask is the stored percent at the threshold: 63 is not crop at 0.64, 99 is at 0.99
    np.testing.assert_array_equal(threshold_mask(prob, 0.64), [1, 0, 1, 0, 0, 1, 255])
    np.testing.assert_array_equal(threshold_mask(prob, 0.99), [0, 0, 1, 0, 0, 1, 255])


def test_thresholds_cut_at_their_own_percent_whatever_the_input_type():
    """Every slider threshold 0.01-0.99 cuts at its own whole percent (0.07 * 100 is 7.000000000000001 in floats:
    its ceiling cut at 8), exact halves round up (0.125 -> 13), and a probability at the threshold is crop in every
    input type (the float16 and 0-d inputs take another path than float32 arrays)."""
    from core.predict import percent_cut, threshold_mask, whole_percent

    assert [percent_cut(t / 100) for t in range(1, 100)] == list(range(1, 100))
    assert percent_cut(0.555) == 56 and percent_cut(0.0) == 0 and percent_cut(1.0) == 100
    np.testing.assert_array_equal(whole_percent(np.array([0.125, 0.375, 0.625, 0.875], np.float32)), [13, 38, 63, 88])
    for prob in (np.float32(0.5), np.array([0.5], np.float16), np.array([0.5], np.float64), np.array([0.5], np.float32)):
        assert threshold_mask(prob, 0.5).tolist() in (1, [1]), prob.dtype
        assert threshold_mask(prob, 0.51).tolist() in (0, [0]), prob.dtype


def test_blend_weights_fall_to_the_edges():
    w = blend_weights(256, 64)
    assert w[128] == 1 and w[0] < 0.01 and w[-1] < 0.01 and np.all(np.diff(w[:64]) > 0)


# Seamless tiling: with the shipped model, moving the tile grid by an odd offset changes 99% of the
# pixels' probabilities by less than P99_SHIFT (absolute, 0-1) and the mean by less than MEAN_SHIFT;
# plain tiling without overlap fails the same test.
P99_SHIFT = 0.03
MEAN_SHIFT = 0.005


def _shift_diff(loaded, feats, valid, cfg):
    a = predict_array(loaded, feats, valid, cfg)
    b = predict_array(loaded, feats, valid, cfg, offset=(37, 101))
    assert np.array_equal(np.isfinite(a), valid) and np.array_equal(np.isfinite(b), valid)
    return np.abs(a - b)[valid]


def test_probability_does_not_depend_on_the_tile_grid(shipped):
    feats, valid, _ = read_image(SAMPLE_IMAGE)
    feats, valid = feats[:640, :640], valid[:640, :640]
    diff = _shift_diff(shipped, feats, valid, PredictConfig())
    assert np.percentile(diff, 99) <= P99_SHIFT and diff.mean() <= MEAN_SHIFT
    plain = _shift_diff(shipped, feats, valid, PredictConfig(tile=256, overlap=0))
    assert np.percentile(plain, 99) > P99_SHIFT  # seams: plain tiling fails the same test


def test_tile_views_undo_exactly():
    from core.predict import tile_unview, tile_view

    y = np.random.default_rng(0).random((2, 32, 32)).astype(np.float32)
    seen = set()
    for k in range(8):
        v = tile_view(k, y)
        assert np.array_equal(tile_unview(k, v), y)
        seen.add(v.tobytes())
    assert len(seen) == 8  # eight different views


@pytest.mark.parametrize("views", [2, 4, 8])
def test_averaged_views_turn_with_the_tiles(shipped, views):
    """Averaged over a group of views, the output follows each of those views of the input exactly
    (mirror the tiles, and the probabilities are mirrored); the model alone does not."""
    from core.predict import ModelRunner, tile_view

    feats, valid, _ = read_image(SAMPLE_IMAGE)
    x = np.stack([shipped.card.normalization.apply(feats[r : r + 64, 300:364], valid[r : r + 64, 300:364])
                  for r in (300, 400)])
    averaged, plain = ModelRunner(shipped.model, 2, views), ModelRunner(shipped.model, 2)
    y = averaged(x)
    for k in range(1, views):
        assert np.allclose(averaged(np.ascontiguousarray(tile_view(k, x))), tile_view(k, y), atol=1e-5)
        assert not np.allclose(plain(np.ascontiguousarray(tile_view(k, x))), tile_view(k, plain(x)), atol=1e-3)
    # and it is the mean of the model's output over the views, each turned back (not a sum, nor scaled)
    from core.predict import tile_unview

    mean = np.mean([tile_unview(k, plain(np.ascontiguousarray(tile_view(k, x)))) for k in range(views)], axis=0)
    np.testing.assert_allclose(y, mean, atol=1e-5)


def test_eight_views_need_square_tiles(shipped):
    from core.predict import ModelRunner

    with pytest.raises(ConfigError, match="square"):
        ModelRunner(shipped.model, 2, 8)(np.zeros((1, 32, 64, 5), np.float32))
    assert ModelRunner(shipped.model, 2, 4)(np.zeros((1, 32, 64, 5), np.float32)).shape == (1, 32, 64)
    with pytest.raises(ConfigError, match="views must be one of 1, 2, 4, 8"):
        PredictConfig(views=3)


def test_predict_image_writes_cogs_and_summary(tiny_model_path, small_scene, tmp_path):
    img, _ = small_scene
    events = []
    summary = predict_image(img, tmp_path / "out", tiny_model_path, PredictConfig(threshold=0.4),
                            progress=lambda d, t: events.append((d, t)))
    out = tmp_path / "out"
    with rasterio.open(out / "probability.tif") as p, rasterio.open(out / "crop_mask.tif") as m:
        prob, mask = p.read(1), m.read(1)
        assert p.nodata == 255 and p.crs is None and p.profile["tiled"]
        assert p.transform == rasterio.open(img).transform
        for ds in (p, m):  # Cloud Optimized GeoTIFF, DEFLATE (too small here for overviews)
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert ds.compression.name.lower() == "deflate"
        # the band's name, as a GIS shows it (they had none)
        assert p.descriptions == ("crop probability (%)",) and m.descriptions == ("crop mask (1 crop, 0 not crop)",)
        # what they were made from, by what and when, in the files themselves (passed on, they said nothing of it)
        tags = m.tags()
        assert tags["SOURCE"] == Path(img).name and tags["MODEL"] == "tiny.keras (U-Net, light preset)"
        assert tags["MODEL_BANDS"] == "R,G,B,NIR,NDVI" and tags["THRESHOLD"] == "0.4" and tags["VIEWS_PER_TILE"] == "1"
        assert tags["MODEL_WEIGHTS_SHA256"] == load_card(tiny_model_path).weights
        assert {k: v for k, v in p.tags().items() if k != "AREA_OR_POINT"} == {
            k: v for k, v in tags.items() if k not in ("THRESHOLD", "AREA_OR_POINT")}
    _, valid, _ = read_image(img)
    assert np.array_equal(prob != 255, valid) and np.array_equal(mask != 255, valid)
    assert prob[valid].max() <= 100
    # the mask is exactly the stored probability (whole percent) at the threshold
    assert np.array_equal(mask[valid] == 1, prob[valid] >= 40)
    s = json.loads((out / "summary.json").read_text())
    assert s == summary
    assert s["valid_pixels"] == int(valid.sum()) and s["crop_pixels"] == int((mask == 1).sum())
    assert s["crop_area_ha"] is None and "not georeferenced" in s["note"] and s["threshold"] == 0.4
    assert s["views"] == 1
    assert s["model_card"]["preset"] == "light"
    assert events[0] == (0, events[-1][1]) and events[-1][0] == events[-1][1]  # the total from the start
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_georeferenced_prediction_has_area_in_hectares(tiny_model_path, tmp_path):
    summary = predict_image(FTW, tmp_path / "o", tiny_model_path, band_map=parse_band_spec("1,2,3,4"))
    with rasterio.open(tmp_path / "o" / "crop_mask.tif") as m:
        assert m.crs.to_epsg() == 32633
        crop = int((m.read(1) == 1).sum())
    assert summary["crop_pixels"] == crop
    assert summary["crop_area_ha"] == pytest.approx(crop * 0.01)  # 10 m pixels
    assert summary["crop_area_ha"] == round(summary["crop_area_ha"], 4)  # to 1 m2, no float-sum digits
    assert summary["georeferenced"] and summary["note"] == ""
    assert summary["warnings"] == []  # the test model's card gives no training pixel size


def test_a_lon_lat_prediction_sums_each_rows_own_pixel_area(tiny_model_path, tmp_path):
    """A lon/lat image's pixels shrink towards the pole: the crop area adds each row's own area, over every
    strip of tiles (each strip's rows their own, not the first strip's). The image: a real window of the
    sample scene, its pixels given a lon/lat grid only to test the sums (no place is claimed for it)."""
    from affine import Affine

    from core.metrics import area_ha
    from core.raster import grid_of_file

    with rasterio.open(SAMPLE_IMAGE) as src:
        data, names = src.read(window=rasterio.windows.Window(200, 300, 96, 200)), src.descriptions
    image = write_raster(tmp_path / "deg.tif", data, crs="EPSG:4326", transform=Affine(0.01, 0, 10.0, 0, -0.01, 70.0),
                         descriptions=names)
    summary = predict_image(image, tmp_path / "o", tiny_model_path, PredictConfig(tile=64, overlap=16, threshold=0.0))
    grid = grid_of_file(tmp_path / "o" / "crop_mask.tif")
    with rasterio.open(tmp_path / "o" / "crop_mask.tif") as m:
        crop = m.read(1) == 1
    rows = grid.pixel_area_ha()
    assert crop[:64].any() and crop[-64:].any() and rows[0, 0] < 0.99 * rows[-1, 0]  # strips far apart in area
    assert summary["crop_area_ha"] == pytest.approx(area_ha(crop, rows), rel=1e-6)


def test_prediction_summary_is_the_clis_for_the_dashboard():
    """The dashboard's summary download: its own facts first, the CLI summary's figures, warnings, card."""
    from core.metrics import crop_area
    from core.card import DEFAULT_MODEL_PATH, load_card
    from core.predict import prediction_summary
    from core.grid import Grid

    card = load_card(DEFAULT_MODEL_PATH)  # trained on 30 m pixels
    mask = np.array([[1, 0, 255], [1, 1, 0]], dtype=np.uint8)
    utm10 = Grid("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0), 3, 2)
    s = prediction_summary(utm10, crop_area(mask, utm10.pixel_area_ha()), card, 0.4, 4, image="scene", region=None)
    assert list(s)[:2] == ["image", "region"] and s["image"] == "scene"
    assert (s["pixels"], s["valid_pixels"], s["crop_pixels"]) == (6, 5, 3)
    assert s["crop_fraction"] == pytest.approx(0.6) and s["crop_area_ha"] == pytest.approx(0.03)
    assert s["threshold"] == 0.4 and s["views"] == 4 and s["georeferenced"] and s["note"] == ""
    assert len(s["warnings"]) == 1 and "30 m" in s["warnings"][0]  # a 30 m model on 10 m pixels
    assert s["model_card"] == card.to_dict()
    plain = prediction_summary(Grid(None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 3, 2), crop_area(mask, None), card, 0.5)
    assert plain["crop_area_ha"] is None and "not georeferenced" in plain["note"] and plain["warnings"] == []
    json.dumps(s)  # all of it serialisable


def test_existing_outputs_are_kept(tiny_model_path, small_scene, tmp_path):
    img, _ = small_scene
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("precious")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        predict_image(img, out, tiny_model_path)
    assert (out / "summary.json").read_text() == "precious" and not (out / "probability.tif").exists()
    predict_image(img, out, tiny_model_path, overwrite=True)
    assert json.loads((out / "summary.json").read_text())["pixels"] > 0


def test_an_overwrite_interrupted_while_moving_outputs_keeps_the_old_set(tiny_model_path, small_scene, tmp_path,
                                                                         monkeypatch):
    """Ctrl-C as the new files are moved into place: the folder keeps the old probability, mask and
    summary together (never a new probability beside an old summary)."""
    import os

    img, _ = small_scene
    out = tmp_path / "out"
    predict_image(img, out, tiny_model_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_replace = os.replace

    def interrupted(src, dst):
        if os.fspath(dst) == os.fspath(out / "summary.json") and ".predict-" in str(src) and ".old-" not in str(src):
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        predict_image(img, out, tiny_model_path, config=PredictConfig(threshold=0.3), overwrite=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_input_among_the_outputs_is_refused_even_with_overwrite(tiny_model_path, small_scene, tmp_path):
    import shutil

    img, _ = small_scene
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(img, out / "probability.tif")  # the image to predict, named as an output
    before = (out / "probability.tif").read_bytes()
    with pytest.raises(ConfigError, match="is an input of this prediction"):
        predict_image(out / "probability.tif", out, tiny_model_path, overwrite=True)
    assert (out / "probability.tif").read_bytes() == before and not (out / "crop_mask.tif").exists()
    # a model whose card is DIR/summary.json: the card would be replaced by the summary
    shutil.copy(tiny_model_path, out / "summary.keras")
    shutil.copy(tiny_model_path.with_suffix(".json"), out / "summary.json")
    with pytest.raises(ConfigError, match="summary.json is an input"):
        predict_image(img, out, out / "summary.keras", overwrite=True)
    assert json.loads((out / "summary.json").read_text())["preset"]


def test_bad_regions(tiny_model_path, small_scene, tmp_path):
    img, _ = small_scene
    with pytest.raises(RegionError, match=r"\(rows 200 to 455, columns 200 to 455\) is not inside the image: the image is "
                                          r"288 rows x 320 columns"):
        predict_image(img, tmp_path / "a", tiny_model_path, window=(200, 200, 256, 256))
    with pytest.raises(RegionError, match=r"height and width must be positive, got 0 x 16 \(rows x columns\)"):
        predict_image(img, tmp_path / "a", tiny_model_path, window=(0, 0, 0, 16))
    with pytest.raises(RegionError, match=r"the window is 5 x 300 px \(rows x columns\); it must be at least 8 px"):
        predict_image(img, tmp_path / "b", tiny_model_path, window=(0, 0, 5, 300))
    # an image smaller than a patch: its whole window is the whole image, predicted as without --window
    rng = np.random.default_rng(3)
    small = write_raster(tmp_path / "small.tif", rng.integers(200, 3000, (4, 6, 13)).astype(np.int16),
                         descriptions=["R", "G", "B", "NIR"])
    as_window = predict_image(small, tmp_path / "w", tiny_model_path, window=(0, 0, 6, 13))
    plain = predict_image(small, tmp_path / "p", tiny_model_path)
    assert as_window["pixels"] == plain["pixels"] == 78
    assert (tmp_path / "w" / "probability.tif").read_bytes() == (tmp_path / "p" / "probability.tif").read_bytes()
    with pytest.raises(RegionError, match=r"at least 8 px on each side \(or all of a smaller image\)"):
        predict_image(small, tmp_path / "c", tiny_model_path, window=(0, 0, 6, 7))
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


def test_all_nodata_region_writes_nothing(tiny_model_path, tmp_path):
    """Nothing written, and no folder left behind that the failed prediction made; a folder that was there stays."""
    img = write_raster(tmp_path / "empty.tif", np.zeros((4, 300, 300), np.int16), descriptions=["R", "G", "B", "NIR"])
    with pytest.raises(NoDataError):
        predict_image(img, tmp_path / "new" / "out", tiny_model_path)
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(NoDataError):
        predict_image(img, tmp_path / "mine", tiny_model_path)
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())


def test_nan_image_without_nodata_leaves_no_folder(tiny_model_path, tmp_path):
    data = np.full((4, 300, 300), 0.2, np.float32)
    data[:, 10:20, 10:20] = np.nan
    img = write_raster(tmp_path / "nan.tif", data, descriptions=["R", "G", "B", "NIR"])
    with pytest.raises(InvalidDataError, match="NaN"):
        predict_image(img, tmp_path / "out", tiny_model_path)
    assert not (tmp_path / "out").exists()


def test_output_folder_that_cannot_be_one_is_refused(tiny_model_path, small_scene, tmp_path):
    img, _ = small_scene
    afile = tmp_path / "afile"
    afile.write_text("keep")
    with pytest.raises(ConfigError, match="is a file"):
        predict_image(img, afile, tiny_model_path)
    with pytest.raises(ConfigError, match="is a file"):
        predict_image(img, afile / "sub", tiny_model_path)
    assert afile.read_text() == "keep"
    (tmp_path / "out" / "probability.tif").mkdir(parents=True)
    with pytest.raises(ConfigError, match="is a folder"):
        predict_image(img, tmp_path / "out", tiny_model_path, overwrite=True)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["probability.tif"]


def test_model_trained_on_other_bands_is_refused(tmp_path, small_scene):
    img, _ = small_scene
    card = ModelCard("light", ("R", "G", "B", "NIR", "SWIR1"), Normalization((0.1,) * 5, (0.1,) * 5))
    path = save_model(build_unet("light"), card, tmp_path / "swir.keras")
    with pytest.raises(ModelMismatchError, match="SWIR1"):
        predict_image(img, tmp_path / "out", path)


def test_the_crop_mask_is_the_stored_probability_at_the_threshold():
    """A user who thresholds probability.tif in a GIS gets crop_mask.tif exactly: a pixel stored as
    50 (0.4951 rounds up) is crop at 0.50; one stored as 49 is not."""
    from core.predict import percent_cut, probability_to_uint8, threshold_mask

    prob = np.array([[0.4951, 0.4949, 0.5, np.nan, 0.5551, 0.5549, 1.0, 0.0]], np.float32)
    assert threshold_mask(prob, 0.5).tolist() == [[1, 0, 1, 255, 1, 1, 1, 0]]
    assert threshold_mask(prob, 0.555).tolist() == [[0, 0, 0, 255, 1, 0, 1, 0]]  # 0.555 -> 56 %
    assert (percent_cut(0.5), percent_cut(0.555), percent_cut(0.29), percent_cut(0.0)) == (50, 56, 29, 0)
    rng = np.random.default_rng(3)
    many = rng.random((40, 40)).astype(np.float32)
    stored = probability_to_uint8(many)
    for t in (0.05, 0.29, 0.5, 0.555, 0.95):
        assert np.array_equal(threshold_mask(many, t) == 1, stored >= percent_cut(t))
    # made with one comparison against the least value that rounds up to the cut (no float64 and int64
    # copies of every pixel): the stored percent's mask at every threshold, for values a few float steps
    # either side of every cut, in float32 and float64, and for infinities (no data, as NaN)
    for dtype in (np.float32, np.float64):
        cuts = (np.arange(101, dtype=np.float64) - 0.5) / 100
        near = [np.nextafter(np.asarray(c, dtype), np.asarray(d, dtype)) for c in cuts.astype(dtype) for d in (-1, 2)]
        steps = np.concatenate([cuts.astype(dtype), np.array(near, dtype)])
        for _ in range(3):
            steps = np.concatenate([steps, np.nextafter(steps, dtype(-1)), np.nextafter(steps, dtype(2))])
        values = np.concatenate([steps, np.array([np.inf, -np.inf, np.nan, 0.0, 1.0], dtype)])
        values = values[(values >= 0) & (values <= 1) | ~np.isfinite(values)]
        stored = probability_to_uint8(values)
        for t in np.round(np.arange(0, 1.0001, 0.005), 3):
            want = np.where(~np.isfinite(values), 255, stored >= percent_cut(t))
            assert np.array_equal(threshold_mask(values, t), want), (dtype, t)
    # a single value, and thresholds past 0-1 (no caller gives them), as before
    assert threshold_mask(np.float32(0.7), 0.5) == 1 and threshold_mask(np.array([0.7], np.float32), 1e30).tolist() == [0]


def test_a_model_used_for_prediction_can_be_freed():
    """The cache of traced inference functions must not keep models alive (uploads, checkpoints)."""
    import gc
    import weakref

    from core.model import build_unet
    from core.predict import _COMPILED, ModelRunner

    model = build_unet("light")
    ModelRunner(model, 1)(np.zeros((1, 32, 32, 5), np.float32))
    assert model in _COMPILED
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_a_window_is_predicted_as_that_part_of_the_whole_image(shipped, tmp_path):
    # the tile grid is the image's, wherever the window starts (here off the model's 16-px lattice),
    # and the image around the window is read: a 40 px window (one field) too
    predict_image(SAMPLE_IMAGE, tmp_path / "a", loaded=shipped, window=(0, 0, 512, 512))
    predict_image(SAMPLE_IMAGE, tmp_path / "b", loaded=shipped, window=(8, 8, 504, 504))
    predict_image(SAMPLE_IMAGE, tmp_path / "c", loaded=shipped, window=(300, 201, 40, 40))
    with rasterio.open(tmp_path / "a" / "probability.tif") as a, rasterio.open(tmp_path / "b" / "probability.tif") as b:
        whole, part = a.read(1).astype(int), b.read(1).astype(int)
    with rasterio.open(tmp_path / "c" / "probability.tif") as c:
        field = c.read(1).astype(int)
    assert np.array_equal(whole[8:, 8:] == 255, part == 255)
    assert np.abs(whole[8:, 8:] - part).max() <= 1  # whole percents: at most a rounding apart
    assert field.shape == (40, 40) and np.abs(whole[300:340, 201:241] - field).max() <= 1


def test_a_tightly_drawn_region_is_predicted_as_in_the_whole_image(tmp_path):
    """The model sees a region's surroundings (the scene's context image), not no data beyond its
    outline: on a triangle of the sample, the shipped model's probabilities stay within 0.02 of
    the whole image's for 99% of pixels; predicting the masked scene alone is over 4 times as far off."""
    from core.model import load_model
    from core.predict import predict_in_context
    from core.region import Region
    from core.sources.base import scene_context
    from core.sources.local import LocalSource

    loaded = load_model(None)
    src = LocalSource.sample()
    scene = src.fetch(Region("image", ((((300.0, 300.0), (560.0, 300.0), (300.0, 560.0), (300.0, 300.0)),),)),
                      tmp_path / "s")
    feats, valid, _ = read_image(scene.image_path)
    whole_feats, whole_valid, _ = read_image(src.image_path)
    whole = predict_array(loaded, whole_feats, whole_valid)[300:560, 300:560]
    in_context = predict_in_context(loaded, feats, valid, scene_context(scene.image_path))
    alone = predict_array(loaded, feats, valid)
    assert np.array_equal(np.isfinite(in_context), valid)  # no data outside the outline, as before
    off_context = np.percentile(np.abs(in_context[valid] - whole[valid]), 99)
    off_alone = np.percentile(np.abs(alone[valid] - whole[valid]), 99)
    assert off_context <= 0.02 and off_alone > 4 * off_context, (off_context, off_alone)


def test_one_field_is_predicted_as_in_the_whole_image(shipped, tmp_path):
    """A region of 40 x 40 px (a field; regions need only 8 px a side) near the image's edge: its
    context holds a whole 256 px patch, and the probabilities are the whole image's within 0.01
    (with the 32 px margin alone they were up to 0.09 off here)."""
    from core.predict import predict_in_context
    from core.region import Region
    from core.sources.base import scene_context
    from core.sources.local import LocalSource

    src = LocalSource.sample()
    field = Region.from_bbox(10, 700, 50, 740, crs="image")
    assert src.check_region(field).ok
    scene = src.fetch(field, tmp_path / "s")
    context = scene_context(scene.image_path)
    assert read_image(context.path)[2].shape == (256, 256)
    feats, valid, _ = read_image(scene.image_path)
    whole_feats, whole_valid, _ = read_image(src.image_path)
    whole = predict_array(shipped, whole_feats, whole_valid)[700:740, 10:50]
    in_context = predict_in_context(shipped, feats, valid, context)
    assert valid.all() and np.abs(in_context - whole).max() <= 0.01


def test_a_scene_file_is_predicted_in_its_context_as_the_dashboard_does(tmp_path, capsys):
    """``python -m core predict --image <scene>/image.tif`` predicted the masked scene alone, while the
    dashboard (and docs/EARTH_ENGINE.md's command for a fetched scene) use the context around it:
    the two maps differed by up to 86 points near the outline. Now the files hold the dashboard's
    probabilities (whole percents), no data outside the outline, and --no-context keeps the old way."""
    from core.__main__ import main
    from core.model import load_model
    from core.predict import predict_in_context, whole_percent
    from core.region import Region
    from core.sources.base import scene_context
    from core.sources.local import LocalSource

    loaded = load_model(None)
    scene = LocalSource.sample().fetch(
        Region("image", ((((300.0, 300.0), (620.0, 300.0), (300.0, 600.0), (300.0, 300.0)),),)), tmp_path / "s")
    context = scene_context(scene.image_path)
    assert context is not None
    feats, valid, _ = read_image(scene.image_path)
    shown = whole_percent(np.nan_to_num(predict_in_context(loaded, feats, valid, context)))
    summary = predict_image(scene.image_path, tmp_path / "p", loaded=loaded, context=context)
    with rasterio.open(tmp_path / "p" / "probability.tif") as src:
        written = src.read(1)
    assert np.array_equal(written == 255, ~valid)  # the outline's no data, not the context's pixels
    assert np.abs(written[valid].astype(int) - shown[valid].astype(int)).max() <= 1  # rounding apart at most
    assert summary["valid_pixels"] == int(valid.sum()) and summary["context"]["file"] == str(context.path)
    # the command line finds the context by itself and says so; --no-context predicts the image alone
    assert main(["predict", "--image", str(scene.image_path), "--out", str(tmp_path / "cli")]) == 0
    assert "context.tif around the image" in capsys.readouterr().err
    assert main(["predict", "--image", str(scene.image_path), "--out", str(tmp_path / "alone"), "--no-context"]) == 0
    with rasterio.open(tmp_path / "cli" / "probability.tif") as a, rasterio.open(tmp_path / "alone" / "probability.tif") as b:
        cli, alone = a.read(1).astype(int), b.read(1).astype(int)
    assert np.array_equal(cli, written) and np.abs(alone[valid] - cli[valid]).max() > 10
    assert "context" not in json.loads((tmp_path / "alone" / "summary.json").read_text())
    with pytest.raises(ConfigError, match="window"):
        predict_image(scene.image_path, tmp_path / "w", loaded=loaded, context=context, window=(0, 0, 256, 256))
    # another image of the folder (e.g. the scene resampled beside it, or the context) is not that scene:
    # its pixels were replaced by the context's at the scene's place (or refused as not holding it)
    other = scene.image_path.parent / "other_area.tif"  # (another block of the sample, as large as the scene)
    with rasterio.open(SAMPLE_IMAGE) as src:
        block = src.read(window=rasterio.windows.Window(700, 700, valid.shape[1], valid.shape[0]))
        write_raster(other, block, descriptions=src.descriptions, nodata=src.nodata)
    assert scene_context(other) is None and scene_context(context.path) is None
    assert main(["predict", "--image", str(other), "--out", str(tmp_path / "other")]) == 0
    assert "around the image" not in capsys.readouterr().err
    assert main(["predict", "--image", str(other), "--out", str(tmp_path / "other1"), "--no-context"]) == 0
    with rasterio.open(tmp_path / "other" / "probability.tif") as a, rasterio.open(tmp_path / "other1" / "probability.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))  # its own pixels' probabilities


def test_a_context_that_does_not_hold_the_scene_is_refused(tmp_path):
    from core.sources.base import SceneContext

    # a georeferenced fixture (UTM) as the scene, and as its own context 5 px off: outside it
    with pytest.raises(InvalidDataError, match="does not hold the scene"):
        predict_image(FTW, tmp_path / "p", context=SceneContext(FTW, 5, 5), band_map=parse_band_spec("1,2,3,4"))
    assert not (tmp_path / "p").exists()


def test_a_south_up_image_is_shown_to_the_model_north_up(shipped, tmp_path):
    """A GeoTIFF whose rows run north (as written from data with rising latitudes) was fed to the
    model mirrored: 10 pp of probability apart from the same pixels stored north-up."""
    from affine import Affine

    from core.grid import Grid
    from core.predict import north_up_view
    from testdata import FLANDERS_S2

    with rasterio.open(FLANDERS_S2) as src:
        data, profile, t, names = src.read(), src.profile, src.transform, src.descriptions
    profile.update(transform=Affine(t.a, 0, t.c, 0, -t.e, t.f + t.e * data.shape[1]))
    with rasterio.open(tmp_path / "south_up.tif", "w", **profile) as dst:
        dst.write(data[:, ::-1])
        dst.descriptions = names
    north = predict_image(FLANDERS_S2, tmp_path / "n", loaded=shipped)
    south = predict_image(tmp_path / "south_up.tif", tmp_path / "s", loaded=shipped)
    with rasterio.open(tmp_path / "n" / "probability.tif") as a, rasterio.open(tmp_path / "s" / "probability.tif") as b:
        gap = np.abs(a.read(1).astype(float) - b.read(1)[::-1])
    assert gap.mean() < 2 and abs(north["crop_pixels"] - south["crop_pixels"]) < 0.005 * north["valid_pixels"]
    # in memory, as the dashboard predicts: by the grid given
    feats, valid, grid = read_image(tmp_path / "south_up.tif")
    assert grid.transform[4] > 0 and north_up_view(grid) == 2
    on_grid = predict_array(shipped, feats, valid, grid=grid)
    assert np.abs(on_grid - predict_array(shipped, feats[::-1], valid[::-1])[::-1]).mean() < 0.02
    # which grids are turned: by the signs of a north-up grid's steps; not a rotated or an image-coordinate one
    assert [north_up_view(Grid("EPSG:32631", tr, 8, 8)) for tr in
            ((10, 0, 0, 0, -10, 0), (-10, 0, 0, 0, -10, 0), (-10, 0, 0, 0, 10, 0), (7, 7, 0, 7, -7, 0))] == [0, 1, 3, 0]
    assert north_up_view(Grid(None, (1, 0, 0, 0, 1, 0), 8, 8)) == 0 and north_up_view(None) == 0


def test_a_disk_too_small_for_the_outputs_is_said_before_the_model_runs(tiny_model_path, tmp_path, monkeypatch):
    """A full disk failed half-way, said as GDAL's "probability.raw.tif not recognized as being in a supported
    file format", of a temporary file. Refused first, with the space needed and free; nothing is written."""
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 50_000, 50_000))
    with pytest.raises(ConfigError, match=r"the outputs of 1,024 x 1,024 px would take at least 0\.3 MB and .* has "
                                          r"50\.0 kB free; free some space, or write them to another disk"):
        predict_image(SAMPLE_IMAGE, tmp_path / "out", tiny_model_path)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_array_of_no_valid_pixel_is_refused_not_predicted_as_nothing(tiny_model_path):
    """The dashboard predicts in memory: a region that holds no valid pixel is said (NoDataError), never a
    map of no data given as the region's prediction."""
    from core.model import load_model
    from core.predict import predict_in_context

    loaded = load_model(tiny_model_path)
    feats, valid = np.zeros((40, 40, 5), np.float32), np.zeros((40, 40), bool)
    with pytest.raises(NoDataError, match="no valid pixels"):
        predict_array(loaded, feats, valid)
    with pytest.raises(NoDataError, match="no valid pixels"):
        predict_in_context(loaded, feats, valid)


def test_the_masks_threshold_tag_is_the_threshold_in_full():
    """A mask cut at 0.5000001 is cut at 51 percent (percent_cut): its THRESHOLD tag must give that
    threshold back exactly, not a rounded 0.5 (which cuts at 50), and keep the other tags."""
    from core.predict import mask_tags, percent_cut

    for threshold in (0.5000001, 0.4, 1 / 3):
        tags = mask_tags({"SOURCE": "scene.tif"}, threshold)
        assert tags["SOURCE"] == "scene.tif" and float(tags["THRESHOLD"]) == threshold
    assert percent_cut(float(mask_tags({}, 0.5000001)["THRESHOLD"])) == 51 == percent_cut(0.5000001)


def test_a_scene_at_the_far_corner_of_its_context_is_predicted_there(tiny_model_path, small_scene):
    """A region at the image's bottom-right edge: its context ends where the scene ends (the image's
    edge). The scene is predicted as that part of its context; one pixel beyond the context is refused."""
    from core.model import load_model
    from core.predict import predict_in_context
    from core.sources.base import SceneContext

    img, _ = small_scene
    loaded = load_model(tiny_model_path)
    feats, valid, _ = read_image(img)
    h, w = valid.shape
    r, c = h - 64, w - 48
    whole = predict_array(loaded, feats, valid)
    scene = predict_in_context(loaded, feats[r:, c:], valid[r:, c:], SceneContext(Path(img), r, c))
    assert scene.shape == (64, 48) and np.isfinite(scene).any()
    np.testing.assert_array_equal(scene, whole[r:, c:])
    for off in ((r + 1, c), (r, c + 1), (-1, c)):
        with pytest.raises(InvalidDataError, match="does not hold the scene"):
            predict_in_context(loaded, feats[r:, c:], valid[r:, c:], SceneContext(Path(img), *off))


def test_a_context_on_another_grid_than_the_scenes_is_refused(tiny_model_path, tmp_path):
    """A context image as large as the scene, but shifted by a pixel or in another CRS, does not hold the scene:
    its pixels would be predicted in the scene's place. Refused, and nothing written; the same grid is taken."""
    from affine import Affine

    from core.sources.base import SceneContext

    with rasterio.open(FTW) as src:
        data, t, crs = src.read(), src.transform, src.crs
    bands = parse_band_spec("1,2,3,4")
    shifted = write_raster(tmp_path / "shifted.tif", data, crs=crs,
                           transform=Affine(t.a, t.b, t.c + t.a, t.d, t.e, t.f))  # a pixel east
    other_crs = write_raster(tmp_path / "other_crs.tif", data, crs="EPSG:32632", transform=t)
    for context in (shifted, other_crs):
        with pytest.raises(InvalidDataError, match="does not hold the scene at row 0, column 0"):
            predict_image(FTW, tmp_path / "p", tiny_model_path, context=SceneContext(context, 0, 0), band_map=bands)
        assert not (tmp_path / "p").exists()
    same = write_raster(tmp_path / "same.tif", data, crs=crs, transform=t)
    s = predict_image(FTW, tmp_path / "q", tiny_model_path, context=SceneContext(same, 0, 0), band_map=bands)
    assert s["valid_pixels"] > 0 and s["context"]["file"] == str(same)


def test_a_south_up_scene_without_a_context_is_shown_to_the_model_north_up(tiny_model_path, small_scene):
    """Without a context image, the dashboard's prediction of a scene is predict_array on the scene's grid:
    a south-up grid's tiles are turned north-up for the model, as with a context."""
    from core.grid import Grid
    from core.model import load_model
    from core.predict import north_up_view, predict_in_context

    img, _ = small_scene
    loaded = load_model(tiny_model_path)
    feats, valid, _ = read_image(img)
    feats, valid = feats[:64, :80], valid[:64, :80]
    south_up = Grid("EPSG:32631", (30.0, 0.0, 500000.0, 0.0, 30.0, 4000000.0), 80, 64)
    assert north_up_view(south_up) == 2
    on_grid = predict_array(loaded, feats, valid, grid=south_up)
    assert not np.allclose(on_grid, predict_array(loaded, feats, valid), atol=1e-4)  # the view matters to this model
    np.testing.assert_array_equal(predict_in_context(loaded, feats, valid, None, grid=south_up), on_grid)
