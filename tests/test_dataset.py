import numpy as np
import pytest

from core.config import PatchConfig
from core.dataset import SceneSet, augment_batch, compute_normalization, encode_targets, load_scenes, tfrecord_dataset
from core.errors import InputNotFoundError
from core.labels import NODATA
from core.patches import sample_patches


def test_scenes_normalization_and_sampling(small_scene):
    img, lab = small_scene
    scenes = load_scenes([f"{img}:{lab}"])
    norm = compute_normalization(scenes)
    assert len(norm.mean) == 5 and all(s > 0 for s in norm.std)
    sset = SceneSet(scenes, 64, norm, seed=1)
    x, y = sset.sample(4)
    assert x.shape == (4, 64, 64, 5) and y.shape == (4, 64, 64, 2)
    assert (y[..., 1].mean(axis=(1, 2)) >= 0.5).all()  # at least half valid
    assert np.all(x[y[..., 1] == 0] == 0)  # invalid pixels are zero after normalization
    valid = y[..., 1] == 1
    assert abs(x[valid].mean()) < 1.5
    # the statistics are those of the valid pixels, each band's own (not mean and std swapped, nor of no data)
    pix = np.concatenate([sc.features[sc.valid] for sc in scenes])
    np.testing.assert_allclose(norm.mean, pix.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(norm.std, pix.std(axis=0), rtol=1e-6)
    assert not scenes[0].valid.all()  # (there are pixels without data to leave out)


def test_scenes_tall_or_wide_give_patches_reaching_their_far_side():
    """Windows are kept inside a scene of any shape and reach its far sides, labelled all over or sparsely (a
    column clipped by the height crashed a tall scene and never reached the right of a wide one). Each pixel's
    features are its row and column / 1000, read with mean 0 and std 1, so a patch says where it was cut."""
    from core.card import Normalization
    from core.dataset import Scene

    norm = Normalization((0.0,) * 5, (1.0,) * 5)
    for h, w in ((200, 80), (80, 200)):
        feats = np.zeros((h, w, 5), np.float32)
        feats[..., 0], feats[..., 1] = np.indices((h, w)) / 1000
        feats[..., 2:] = 0.2
        dense = (np.indices((h, w)).sum(axis=0) % 2).astype(np.uint8)
        sparse = np.full((h, w), NODATA, np.uint8)
        sparse[-3:, -3:] = 1  # a few labelled pixels in the far corner
        for labels in (dense, sparse):
            sset = SceneSet([Scene(feats, labels, "scene")], 64, norm, seed=3)
            x, _ = sset.sample(200, augment=False)
            shown = x[:, 0, 0, :2] if labels is dense else x[:, -1, -1, :2] - 63 / 1000
            rows, cols = np.round(shown * 1000).astype(int).T  # each patch's top-left pixel
            assert rows.min() >= 0 and cols.min() >= 0 and rows.max() == h - 64 and cols.max() == w - 64, (h, w)


def test_augmentation_moves_features_and_targets_together():
    rng = np.random.default_rng(0)
    x = rng.random((8, 16, 16, 5)).astype(np.float32)
    y = np.repeat(x[..., :1], 2, axis=-1)
    before = x.copy()
    augment_batch(x, y, rng)
    np.testing.assert_array_equal(x[..., 0], y[..., 0])
    np.testing.assert_array_equal(x[..., 0], y[..., 1])
    # each sample is one of the 8 flips/rotations of itself (all bands alike), and some did move
    views = lambda a: [np.rot90(a, k) for k in range(4)] + [np.rot90(a, k)[:, ::-1] for k in range(4)]  # noqa: E731
    for i in range(len(x)):
        assert any(np.array_equal(x[i], v) for v in views(before[i])), i
    assert sum(not np.array_equal(x[i], before[i]) for i in range(len(x))) >= 1


def test_the_tfrecord_pipeline_turns_features_and_targets_together(tmp_path):
    """Augmented patches (random crops, rotations, flips): each pixel's features stay over its own label. The
    records: random crop / not crop labels, red 0.3 on crop and 0.1 elsewhere, read with mean 0 and std 1."""
    from core.bands import FEATURE_BANDS
    from core.card import Normalization
    from core.patches import LABEL, write_records

    rng = np.random.default_rng(4)
    examples = []
    for _ in range(8):
        crop = rng.integers(0, 2, (40, 40)).astype(np.float32)
        bands = {b: np.full((40, 40), 0.2, np.float32) for b in FEATURE_BANDS}
        examples.append({**bands, FEATURE_BANDS[0]: 0.1 + 0.2 * crop, LABEL: crop})
    path = tmp_path / "p.tfrecord.gz"
    write_records(path, examples)
    norm = Normalization((0.0,) * 5, (1.0,) * 5)
    ds = tfrecord_dataset(path, norm, 32, kernel_buffer=4, batch_size=8, augment=True, shuffle=0, seed=5)
    for x, y in ds.take(3):
        x, y = x.numpy(), y.numpy()
        assert y[..., 1].all()
        np.testing.assert_array_equal(x[..., 0] > 0.2, y[..., 0] == 1)


def test_augmented_patches_are_the_same_for_the_same_seed(small_scene, tmp_path):
    """Two pipelines over the same patches with one seed give the same batches, crops, turns and flips
    included; another seed others. (The random draws came from a state shared by the parallel map's
    threads, so a seeded training on patches differed from run to run.)"""
    img, lab = small_scene
    s = sample_patches(img, lab, "cdl", PatchConfig(patch_size=64, kernel_buffer=8, count=12, seed=2),
                       tmp_path / "p.tfrecord.gz")
    norm = compute_normalization(load_scenes([f"{img}:{lab}"]))

    def batches(seed):
        ds = tfrecord_dataset(s.path, norm, 48, kernel_buffer=16, batch_size=3, augment=True, shuffle=8, seed=seed)
        return [np.concatenate([x.numpy(), y.numpy()], axis=-1) for x, y in ds.take(24)]

    first, again, other = batches(7), batches(7), batches(8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    # (the draws vary from batch to batch: not every batch of a seed cut at one offset, turned one way)
    assert len({a.tobytes() for a in first}) == len(first)


def test_the_shuffle_pool_of_large_records_is_capped_in_memory(tmp_path, monkeypatch):
    """The pool holds whole records: 256 of 512 px records took 1.6 GB. It holds as many as fit in
    SHUFFLE_POOL_BYTES (and two batches at least); small records keep the pool asked for."""
    import core.dataset
    import core.tfrecord
    from core.bands import FEATURE_BANDS
    from core.card import Normalization
    from core.patches import LABEL, write_records

    write_records(tmp_path / "p.tfrecord.gz", [{**{b: np.full((40, 40), 0.2, np.float32) for b in FEATURE_BANDS},
                                                LABEL: np.ones((40, 40), np.float32)}])
    asked = []
    real = core.tfrecord.read_batches
    monkeypatch.setattr(core.tfrecord, "read_batches", lambda *a, **k: asked.append(k["shuffle"]) or real(*a, **k))
    norm = Normalization((0.0,) * 5, (1.0,) * 5)

    def pool(**kw):
        next(iter(tfrecord_dataset(tmp_path / "p.tfrecord.gz", norm, 32, kernel_buffer=4, batch_size=1, **kw)))
        return asked[-1]

    assert pool() == 256
    record = 40 * 40 * 6 * 4
    monkeypatch.setattr(core.dataset, "SHUFFLE_POOL_BYTES", 10 * record)
    assert pool() == 10 and pool(shuffle=4) == 4 and pool(shuffle=0) == 0
    monkeypatch.setattr(core.dataset, "SHUFFLE_POOL_BYTES", record)
    assert pool() == 2  # (two batches at least)


def test_the_share_labelled_that_decides_what_a_record_shows_is_its_centres(tmp_path):
    """A record with a kernel buffer: whether it shows its labelled pixels only (labels fill a quarter or more) is
    judged on the centre patch that is trained on, not on a corner that holds the buffer. Here the centre's lower
    half is labelled (50%) and the top-left 32 px none: the unlabelled pixels with image data are blanks."""
    from core.bands import FEATURE_BANDS
    from core.card import Normalization
    from core.patches import LABEL, write_records

    crop = np.full((64, 64), float(NODATA), np.float32)
    crop[32:48, 16:48] = 1.0
    write_records(tmp_path / "p.tfrecord.gz", [{**{b: np.full((64, 64), 0.2, np.float32) for b in FEATURE_BANDS},
                                                LABEL: crop}])
    ds = tfrecord_dataset(tmp_path / "p.tfrecord.gz", Normalization((0.0,) * 5, (1.0,) * 5), 32, kernel_buffer=16,
                          batch_size=1, augment=False, shuffle=0, repeat=False)
    x, y = (t.numpy()[0] for t in next(iter(ds)))
    assert y[16:, :, 1].all() and not y[:16, :, 1].any()
    assert (x[:16] == 0).all() and (x[16:] == np.float32(0.2)).all()


def test_encode_targets():
    t = encode_targets(np.array([[1, 0, NODATA]], np.uint8))
    np.testing.assert_array_equal(t[0], [[1, 1], [0, 1], [0, 0]])


def test_tfrecord_pipeline_matches_records(small_scene, tmp_path):
    img, lab = small_scene
    cfg = PatchConfig(patch_size=64, kernel_buffer=8, count=5, seed=2)
    s = sample_patches(img, lab, "cdl", cfg, tmp_path / "p.tfrecord.gz")
    norm = compute_normalization(load_scenes([f"{img}:{lab}"]))
    ds = tfrecord_dataset(s.path, norm, 64, kernel_buffer=8, batch_size=5, augment=False, shuffle=0, repeat=False)
    x, y = next(iter(ds))
    assert x.shape == (5, 64, 64, 5) and y.shape == (5, 64, 64, 2)
    aug = tfrecord_dataset(s.path, norm, 64, kernel_buffer=8, batch_size=2, augment=True, shuffle=8)
    xa, ya = next(iter(aug))
    assert xa.shape == (2, 64, 64, 5) and ya.shape == (2, 64, 64, 2)
    v = y.numpy()[..., 1] == 1
    assert np.all(x.numpy()[~v] == 0)
    # the same patches read plainly: centre crop, normalized, crop/valid targets
    from core.patches import LABEL, read_records
    from core.bands import FEATURE_BANDS

    raw = next(read_records(s.path, [*FEATURE_BANDS, LABEL], (80, 80), batch_size=5))[:, 8:72, 8:72]
    lab = raw[..., -1]
    want_valid = lab != NODATA
    np.testing.assert_array_equal(v, want_valid)
    np.testing.assert_array_equal(y.numpy()[..., 0], (lab == 1).astype(np.float32))
    want_x = norm.apply(raw[..., :-1], want_valid)
    np.testing.assert_allclose(x.numpy(), want_x, rtol=1e-6, atol=1e-6)
    with pytest.raises(InputNotFoundError):
        tfrecord_dataset(tmp_path / "missing", norm, 64)


def test_spatial_holdout_splits_the_labels_into_disjoint_parts(tmp_path):
    from core.dataset import spatial_holdout
    from core.labels import get_class_map
    from core.raster import grid_of_file, read_labels
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS

    split = spatial_holdout(SAMPLE_IMAGE, SAMPLE_LABELS, "cdl", tmp_path / "holdout", 256)
    assert split.label_map == "binary" and "columns 768-1023" in split.note
    assert split.describe("the sample", (1024, 1024), "cdl") == (
        "a 1024 x 1024 px region of the sample; validation on columns 768-1023 of the region (25%, 4 tiles of "
        "256 px), held out from training; labels: USDA NASS Cropland Data Layer")
    full = read_labels(SAMPLE_LABELS, get_class_map("cdl"), grid=grid_of_file(SAMPLE_IMAGE))
    parts = {}
    for name, pair in (("train", split.train), ("val", split.val)):
        image, labels = pair.split(":", 1)
        assert image == str(SAMPLE_IMAGE)
        parts[name] = read_labels(labels, get_class_map("binary"), grid=grid_of_file(SAMPLE_IMAGE))
    train, val = parts["train"], parts["val"]
    assert not ((train != NODATA) & (val != NODATA)).any()  # no pixel in both
    assert (val[:, :768] == NODATA).all() and (train[:, 768:] == NODATA).all()
    keep = full != NODATA  # every labelled pixel is in exactly one part, with its class
    np.testing.assert_array_equal(np.where(val != NODATA, val, train)[keep], full[keep])
    # the pairs feed training: load_scenes reads them, and validation tiles exist in the held-out block
    from core.dataset import tiled_patches
    from core.card import Normalization

    scenes = load_scenes([split.val], split.label_map)
    x, y = tiled_patches(scenes, 256, Normalization((0.0,) * 5, (1.0,) * 5))
    # the 256 px tiles of the held-out block with at least a quarter labelled (tiled_patches' default), and only those
    held_out = [r for r in range(0, 1024 - 255, 256) if (val[r : r + 256, 768:1024] != NODATA).mean() >= 0.25]
    assert len(x) == len(held_out) >= 1
    for k, r in enumerate(held_out):
        np.testing.assert_array_equal(y[k, ..., 1] == 1, val[r : r + 256, 768:1024] != NODATA)


def test_spatial_holdout_holds_out_a_block_before_an_edge_without_labels(tmp_path):
    """The sample with its last 256 columns unlabelled (a scene's edge, a download's padding): the last tile
    column alone was tried, and the test patches came from the training pixels 'as the region is too small',
    which it is not. The last column of tiles that will do is held out."""
    import rasterio

    from core.dataset import spatial_holdout
    from testdata import SAMPLE_IMAGE, SAMPLE_LABELS

    with rasterio.open(SAMPLE_LABELS) as src:
        profile, codes = src.profile, src.read(1)
    codes[:, 768:] = 0  # (CDL's background: no label)
    with rasterio.open(tmp_path / "edge_cdl.tif", "w", **profile) as dst:
        dst.write(codes, 1)
    split = spatial_holdout(SAMPLE_IMAGE, tmp_path / "edge_cdl.tif", "cdl", tmp_path / "h", 256)
    assert split.train != split.val and "columns 512-767" in split.note
    # nothing labelled but one block's worth: said as such, not as a region too small
    codes[:, 256:] = 0
    with rasterio.open(tmp_path / "left_cdl.tif", "w", **profile) as dst:
        dst.write(codes, 1)
    split = spatial_holdout(SAMPLE_IMAGE, tmp_path / "left_cdl.tif", "cdl", tmp_path / "h2", 256)
    assert split.train == split.val and "no 256 px block of the region holds labelled tiles enough" in split.note


def test_spatial_holdout_falls_back_on_small_regions(small_scene, tmp_path):
    from core.dataset import spatial_holdout

    img, lab = small_scene  # 320 x 288: under two 256 px tiles both ways
    split = spatial_holdout(img, lab, "cdl", tmp_path / "h", 256)
    assert split.train == split.val == f"{img}:{lab}" and split.label_map == "cdl"
    assert split.describe("a scene", (288, 320), "cdl").endswith("validation on the training pixels; labels: "
                                                                  "USDA NASS Cropland Data Layer")
    assert "too small" in split.note and not (tmp_path / "h").exists()
    # why its figures still differ from the training ones (val IoU 0.31 beside a training IoU of 0.61 after
    # one epoch, on the same pixels, looked like a contradiction)
    assert split.note.endswith("differ from training's, which are an average over the epoch while the model learns, "
                               "on flipped and turned patches.")
    # with 128 px tiles the same region is split (rows or columns, along its longer side)
    split = spatial_holdout(img, lab, "cdl", tmp_path / "h128", 128)
    assert split.train != split.val and "columns 128-255" in split.note


def test_spatial_holdout_refuses_what_cannot_be_trained_on(small_scene, tmp_path):
    """Said before a training job starts, not by the job after it has begun."""
    from core.dataset import spatial_holdout
    from core.errors import NoDataError, RegionError
    from testdata import FLANDERS_LABELS, FLANDERS_S2

    with pytest.raises(RegionError, match="64 x 64 px, smaller than one 128 x 128"):
        spatial_holdout(FLANDERS_S2, FLANDERS_LABELS, "worldcereal", tmp_path / "f", 128)
    img, _ = small_scene
    import rasterio

    empty = tmp_path / "unlabelled.tif"
    with rasterio.open(img) as src:
        profile = dict(src.profile, count=1, dtype="uint8", nodata=0)
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.zeros((1, 288, 320), np.uint8))
    with pytest.raises(NoDataError, match="no pixel of the region is labelled"):
        spatial_holdout(img, empty, "cdl", tmp_path / "e", 128)
    # labels of one class: a job started, loaded its data, then failed naming its cache's files
    for value, missing in ((1, "not-crop"), (0, "crop")):
        one = tmp_path / f"all_{value}.tif"
        with rasterio.open(one, "w", **dict(profile, nodata=255)) as dst:
            dst.write(np.full((1, 288, 320), value, np.uint8))
        with pytest.raises(NoDataError, match=f"the region's labels hold no {missing} pixel, so a model would learn "
                                              "one class.*on the Region page"):
            spatial_holdout(img, one, "binary", tmp_path / "o", 128, both_classes=True)
        # patches of one class (patches --test, the Data page) may be pooled with others': cut
        assert spatial_holdout(img, one, "binary", tmp_path / f"p{value}", 128).train
    assert not (tmp_path / "f").exists() and not (tmp_path / "e").exists() and not (tmp_path / "o").exists()


def test_pair_paths_finds_labels_beside_rgbn_images_and_never_pairs_an_image_with_itself(small_scene, tmp_path):
    import shutil

    from core.dataset import pair_paths
    from core.errors import ConfigError

    img, lab = small_scene
    assert pair_paths([img]) == [(img, lab)]  # X_rgbn.tif pairs with X_cdl.tif beside it
    assert pair_paths([img.parent]) == [(img, lab)]
    other = shutil.copy(img, tmp_path / "scene.tif")  # not named *_rgbn.tif: no way to find its labels
    with pytest.raises(InputNotFoundError, match=r"no label raster for scene\.tif; give IMAGE:LABELS"):
        pair_paths([other])
    lonely = shutil.copy(img, tmp_path / "lonely_rgbn.tif")
    with pytest.raises(InputNotFoundError, match="lonely_cdl.tif.*IMAGE:LABELS"):
        pair_paths([lonely])
    with pytest.raises(ConfigError, match="both image and labels"):
        pair_paths([f"{img}:{img}"])
    # a path left out of the pair was read as the current folder (". is a folder")
    with pytest.raises(ConfigError, match=r"^the labels path is empty in IMAGE:LABELS .*small_rgbn.tif:; give both"):
        pair_paths([f"{img}:"])
    with pytest.raises(ConfigError, match=r"^the image path is empty in IMAGE:LABELS :"):
        pair_paths([f":{lab}"])
    # patches given as an image's labels: said so (it was "no TFRecord files at IMG.tif:p.tfrecord.gz" alone)
    from core.patches import list_records

    with pytest.raises(InputNotFoundError, match=r"small_rgbn.tif is an image: an IMAGE:LABELS pair takes a label "
                                                 r"raster \(.tif\), and TFRecord patches are given alone$"):
        list_records(f"{img}:p.tfrecord.gz")
    with pytest.raises(InputNotFoundError, match=r"^no TFRecord files at .*missing.tfrecord.gz$"):
        list_records(tmp_path / "missing.tfrecord.gz")


def test_pair_paths_takes_image_and_labels_whose_names_hold_colons(small_scene, tmp_path):
    import shutil

    from core.dataset import pair_paths, spatial_holdout

    img, lab = small_scene
    stamped = tmp_path / "scene_2020-06-01T10:30.tif"  # a time in the name
    labels = tmp_path / "labels:v2.tif"
    shutil.copy(img, stamped)
    shutil.copy(lab, labels)
    assert pair_paths([f"{stamped}:{labels}"]) == [(stamped, labels)]
    with pytest.raises(InputNotFoundError, match=r"file not found: .*missing\.tif"):
        pair_paths([f"{stamped}:{tmp_path / 'missing.tif'}"])  # the missing file is the one named
    split = spatial_holdout(stamped, labels, "cdl", tmp_path / "h", 128)  # joins them as IMAGE:LABELS
    assert [p[0] for p in pair_paths([split.train, split.val])] == [stamped, stamped]


@pytest.fixture()
def half_labelled(small_scene, tmp_path):
    """The small scene with its top 96 rows unlabelled (CDL background, 0) over real image data, as
    labels of the fields surveyed leave the rest of an image."""
    import rasterio

    img, lab = small_scene
    with rasterio.open(lab) as src:
        profile, codes = src.profile, src.read(1)
    codes[:96] = 0
    with rasterio.open(tmp_path / "half_cdl.tif", "w", **profile) as dst:
        dst.write(codes, 1)
    return img, tmp_path / "half_cdl.tif"


def test_unlabelled_pixels_with_image_data_are_no_data_to_the_model_in_training(half_labelled, tmp_path):
    """The context around labelled pixels is 0 in both pipelines for patches at least a quarter labelled,
    as docs/ARCHITECTURE.md says why (showing the image there was measured worse); the labelled pixels
    keep their image. (Sparser patches: test_labels_of_a_few_surveyed_fields_still_give_patches.)"""
    img, lab = half_labelled
    scenes = load_scenes([f"{img}:{lab}"])
    norm = compute_normalization(scenes)
    x, y = SceneSet(scenes, 64, norm, seed=3).sample(16, augment=False)
    unlabelled = y[..., 1] == 0
    assert unlabelled.any() and (x[unlabelled] == 0).all() and np.abs(x[~unlabelled]).sum() > 0
    s = sample_patches(img, lab, "cdl", PatchConfig(patch_size=64, count=24, seed=4, min_valid_fraction=0.25),
                       tmp_path / "p.tfrecord.gz")
    xt, yt = next(iter(tfrecord_dataset(s.path, norm, 64, batch_size=24, augment=False, shuffle=0, repeat=False)))
    unlabelled = yt.numpy()[..., 1] == 0
    assert unlabelled.any() and (xt.numpy()[unlabelled] == 0).all() and np.abs(xt.numpy()[~unlabelled]).sum() > 0


@pytest.fixture()
def surveyed_fields(small_scene, tmp_path):
    """The small scene labelled in six 20 x 20 px fields only (2.6% of its pixels; CDL background 0, no
    data, elsewhere), as labels of surveyed fields leave an image: no 128 px window is half labelled."""
    from testdata import surveyed_labels

    img, lab = small_scene
    return img, surveyed_labels(lab, tmp_path / "surveyed_cdl.tif")


def test_a_sparsely_labelled_image_beside_a_dense_one_is_trained_and_validated_on(small_scene):
    """Two training images, one labelled throughout and one with a single 10 x 10 px field: the field's
    image had no window half labelled, so it got weight 0 and no validation tile, without a word."""
    from core.dataset import Scene, tiled_patches

    [dense] = load_scenes([":".join(map(str, small_scene))])
    labels = np.full_like(dense.labels, NODATA)
    labels[70:80, 90:100] = dense.labels[70:80, 90:100]
    field = Scene(dense.features, labels, "field")
    norm = compute_normalization([dense])
    sset = SceneSet([dense, field], 64, norm, seed=1)
    # drawn from, about as often as its labelled pixels are many (not as its windows holding one)
    share = 100 / (100 + dense.valid.sum())
    assert not sset.sparse and 0.5 * share < sset.weights[1] < 2 * share
    sset.weights = np.array([0.0, 1.0])
    x, y = sset.sample(40, augment=False)
    # each around the field (a window of any of its pixels, moved as others are, often lost it)
    assert (y[..., 1].sum(axis=(1, 2)) > 0).all() and (y[..., 1].sum(axis=(1, 2)) == 100).any()
    xv, yv = tiled_patches([dense, field], 64, norm)
    assert yv[..., 1].sum() == dense.valid[: 64 * (dense.valid.shape[0] // 64), : 64 * (dense.valid.shape[1] // 64)].sum() + 100


def test_labels_of_a_few_surveyed_fields_still_give_patches(surveyed_fields, small_scene, tmp_path):
    """Where patches half labelled would hold few of the labelled pixels (none here), patches are placed
    around labelled pixels (training and validation count labelled pixels only), and said; labels that
    fill patches keep the usual windows."""
    from core.dataset import around_valid, patch_windows, spatial_holdout, tiled_patches

    img, lab = surveyed_fields
    scenes = load_scenes([f"{img}:{lab}"])
    labelled = scenes[0].valid
    assert labelled.mean() < 0.03
    norm = compute_normalization(scenes)
    sset = SceneSet(scenes, 128, norm, seed=2)
    assert sset.sparse
    x, y = sset.sample(64, augment=False)
    assert (y[..., 1].sum(axis=(1, 2)) > 0).all()
    # a patch around a field or two shows the model the image around them (as prediction does), not blanks
    assert (y[..., 1].mean(axis=(1, 2)) < 0.25).all()
    assert (np.abs(x).sum(axis=-1) > 0).mean() > 10 * y[..., 1].mean()
    # every field is in some patch: each is as likely as another, wherever it lies
    corners = around_valid(labelled, 128, 600, np.random.default_rng(0))
    seen = np.zeros_like(labelled)
    for r, c in corners:
        seen[r : r + 128, c : c + 128] = True
    assert seen[labelled].all()
    xv, yv = tiled_patches(scenes, 128, norm)
    tiles = [labelled[r : r + 128, c : c + 128] for r in (0, 128) for c in (0, 128)]  # the whole 128 px tiles
    assert len(xv) == sum(t.any() for t in tiles) >= 3 and yv[..., 1].sum() == labelled[:256, :256].sum()
    split = spatial_holdout(img, lab, "cdl", tmp_path / "h", 128)
    assert split.train and split.val
    full = load_scenes([":".join(map(str, small_scene))])
    assert not SceneSet(full, 128, norm).sparse  # labels that fill patches: as before
    # a block labelled throughout beside scattered fields: patches half labelled while they hold 90% of the
    # labelled pixels, else patches around them (the fields would be left out)
    mask = np.zeros((512, 512), bool)
    mask[:128, :128] = True  # 16,384 px
    for n, (r, c) in enumerate((r, c) for r in range(200, 500, 24) for c in range(0, 500, 24)):
        mask[r : r + 8, c : c + 8] = n < 10  # 10 fields of 64 px: 640 px
    assert not patch_windows([mask], 128, 0.5)[1]
    for r, c in ((r, c) for r in range(200, 500, 24) for c in range(0, 500, 24)):
        mask[r : r + 8, c : c + 8] = True  # 13 x 21 fields: 17,472 px, in no window half labelled
    assert patch_windows([mask], 128, 0.5)[1]
    # cut as TFRecord patches too, saying why their patches are mostly no data; read as the scenes are
    s = sample_patches(img, lab, "cdl", PatchConfig(patch_size=128, count=8, seed=1), tmp_path / "p.tfrecord.gz")
    assert s.count == 8 and any("are sparse" in w and "placed around a labelled pixel" in w for w in s.warnings)
    # the --min-valid asked for is said not to be applied (it was overridden in silence: 8 of 20 patches half
    # labelled under --min-valid 0.9, "labels of surveyed fields?" the only word)
    strict = sample_patches(img, lab, "cdl", PatchConfig(patch_size=128, count=8, seed=1, min_valid_fraction=0.9),
                            tmp_path / "strict.tfrecord.gz")
    assert any("for 128 px patches with 90% of their pixels labelled (--min-valid on the command line)" in w
               and "instead, whatever its share of labelled pixels" in w for w in strict.warnings)
    xt, yt = next(iter(tfrecord_dataset(s.path, norm, 128, batch_size=8, augment=False, shuffle=0, repeat=False)))
    xt, yt = xt.numpy(), yt.numpy()
    assert (yt[..., 1].mean(axis=(1, 2)) < 0.25).all() and (np.abs(xt).sum(axis=-1) > 0).mean() > 10 * yt[..., 1].mean()
    from core.patchset import open_patch_set, patch_validation

    xp, yp = patch_validation(open_patch_set([str(s.path)], 128), 128, norm)
    assert np.array_equal(yp, yt) and np.allclose(xp, xt, atol=1e-5)  # the same patches, shown the same
    # none at all
    from core.errors import NoDataError

    with pytest.raises(NoDataError, match="no pixel is labelled"):
        SceneSet([type(scenes[0])(scenes[0].features, np.full_like(scenes[0].labels, NODATA), "none")], 128, norm)


def test_patches_at_a_min_valid_of_zero_still_hold_a_labelled_pixel(half_labelled, tmp_path):
    """--min-valid 0 took windows with no labelled pixel at all (half of the patches, all the test ones of an
    image labelled in parts): nothing to learn from, nor to validate on. Each window holds one at least."""
    from core.dataset import patch_windows

    img, lab = half_labelled
    scenes = load_scenes([f"{img}:{lab}"])
    [corners], _ = patch_windows([scenes[0].valid], 64, 0.0, stride=16)
    assert len(corners) and all(scenes[0].valid[r:r + 64, c:c + 64].any() for r, c in corners)
    unlabelled = [(r, c) for r in range(0, scenes[0].valid.shape[0] - 63, 16)
                  for c in range(0, scenes[0].valid.shape[1] - 63, 16) if not scenes[0].valid[r:r + 64, c:c + 64].any()]
    assert unlabelled  # (windows there are to be left out)
    s = sample_patches(img, lab, "cdl", PatchConfig(patch_size=64, count=24, seed=4, min_valid_fraction=0.0),
                       tmp_path / "p.tfrecord.gz")
    _, y = next(iter(tfrecord_dataset(s.path, compute_normalization(scenes), 64, batch_size=24, augment=False,
                                      shuffle=0, repeat=False)))
    assert (y.numpy()[..., 1].reshape(24, -1) > 0).any(axis=1).all()


def test_labelled_pixels_without_image_data_are_no_data_to_training(tmp_path):
    """Labels over the image's no data (0 in every band: beyond a scene's edge) are no data in the scenes
    loaded: they were trained on as crop / not crop over blank features."""
    from testdata import write_raster

    rng = np.random.default_rng(1)
    data = rng.integers(200, 4000, (4, 64, 64)).astype(np.int16)
    data[:, :, :20] = 0  # the image's left third has no data
    img = write_raster(tmp_path / "img.tif", data, descriptions=["R", "G", "B", "NIR"])
    lab = write_raster(tmp_path / "lab.tif", rng.integers(0, 2, (64, 64)).astype(np.uint8), nodata=255)
    [scene] = load_scenes([f"{img}:{lab}"], "binary")
    assert (scene.labels[:, :20] == NODATA).all() and not scene.valid[:, :20].any()
    assert (scene.labels[:, 20:] != NODATA).all()


def test_scene_patches_are_flipped_and_turned_when_augmented():
    """SceneSet.sample(augment=True) gives flipped and turned windows (training was asked to augment and
    never did); augment=False gives windows as they lie. Features are each pixel's row and column / 1000."""
    from core.card import Normalization
    from core.dataset import Scene

    h, w = 96, 128
    feats = np.zeros((h, w, 5), np.float32)
    feats[..., 0], feats[..., 1] = np.indices((h, w)) / 1000
    feats[..., 2:] = 0.2
    norm = Normalization((0.0,) * 5, (1.0,) * 5)
    sset = SceneSet([Scene(feats, np.ones((h, w), np.uint8), "scene")], 32, norm, seed=2)

    def as_it_lies(x):  # rows grow downwards in band 0, columns rightwards in band 1
        return (np.diff(x[..., 0], axis=0) > 0).all() and (np.diff(x[..., 1], axis=1) > 0).all()

    x, _ = sset.sample(16, augment=False)
    assert all(as_it_lies(p) for p in x)
    x, y = sset.sample(16, augment=True)
    assert sum(not as_it_lies(p) for p in x) >= 4 and y[..., 1].all()


def test_normalization_of_a_constant_band_has_a_std_above_zero():
    """A band of one value (a sensor's band filled with one number) gives a std floor, not 0: dividing by it
    made every input of that band NaN or infinite."""
    from core.dataset import Scene

    feats = np.random.default_rng(0).uniform(0.05, 0.3, (16, 16, 5)).astype(np.float32)
    feats[..., 3] = 0.25
    norm = compute_normalization([Scene(feats, np.ones((16, 16), np.uint8), "flat")])
    assert all(s > 0 for s in norm.std) and np.isfinite(norm.apply(feats)).all()


def test_normalization_subsample_is_drawn_from_every_scene():
    """Over max_pixels, the pixels are a random subsample of all scenes, not the first scene's pixels:
    two scenes of means 0.1 and 0.3 give about 0.2."""
    from core.dataset import Scene

    scenes = [Scene(np.full((40, 40, 5), v, np.float32), np.ones((40, 40), np.uint8), f"s{v}") for v in (0.1, 0.3)]
    norm = compute_normalization(scenes, max_pixels=400)
    assert 0.16 < norm.mean[0] < 0.24


def test_records_smaller_than_the_training_patch_are_refused(tmp_path):
    """32 px records cannot give a 48 px patch: said when the pipeline is made, not as TensorFlow's slicing
    error in the middle of a run."""
    from core.bands import FEATURE_BANDS
    from core.card import Normalization
    from core.errors import ConfigError
    from core.patches import LABEL, write_records

    write_records(tmp_path / "p.tfrecord.gz", [{**{b: np.full((32, 32), 0.2, np.float32) for b in FEATURE_BANDS},
                                                LABEL: np.ones((32, 32), np.float32)}])
    with pytest.raises(ConfigError, match="patches of 32 px are smaller than the 48 px training patch"):
        tfrecord_dataset(tmp_path / "p.tfrecord.gz", Normalization((0.0,) * 5, (1.0,) * 5), 48, record_size=32)


def test_an_image_with_both_label_files_beside_it_pairs_with_its_cdl(tmp_path):
    """X_rgbn.tif with both X_cdl.tif and X_labels.tif beside it pairs with X_cdl.tif, the name the
    messages ask for first; with only X_labels.tif, with that."""
    from core.dataset import pair_paths

    for name in ("x_rgbn.tif", "x_cdl.tif", "x_labels.tif", "y_rgbn.tif", "y_labels.tif"):
        (tmp_path / name).write_bytes(name.encode())
    assert pair_paths([tmp_path]) == [(tmp_path / "x_rgbn.tif", tmp_path / "x_cdl.tif"),
                                      (tmp_path / "y_rgbn.tif", tmp_path / "y_labels.tif")]


def test_a_held_out_block_of_one_class_is_not_held_out(small_scene, tmp_path):
    """Each block that could be held out holds one class only (crop, or not crop): its validation IoU
    would say nothing, so validation uses the training pixels and the note says why; where another block
    holds both, that one is held out."""
    import rasterio

    from core.dataset import spatial_holdout, validated_on_training_pixels

    img, _ = small_scene  # 320 x 288 px: 128 px blocks at columns 128-255, then 0-127
    with rasterio.open(img) as src:
        profile = dict(src.profile, count=1, dtype="uint8", nodata=255)
    labels = np.zeros((288, 320), np.uint8)
    labels[:, 128:] = 1  # columns 0-127 not crop, 128-319 crop
    with rasterio.open(tmp_path / "halves.tif", "w", **profile) as dst:
        dst.write(labels, 1)
    split = spatial_holdout(img, tmp_path / "halves.tif", "binary", tmp_path / "h", 128)
    assert validated_on_training_pixels(split.note) and "has only one class" in split.note
    assert split.train == split.val
    labels[::2, :128] = 1  # columns 0-127 and 256-319 now both classes: 0-127 held out, not 128-255 (all crop)
    labels[::2, 256:] = 0
    with rasterio.open(tmp_path / "mixed.tif", "w", **profile) as dst:
        dst.write(labels, 1)
    split = spatial_holdout(img, tmp_path / "mixed.tif", "binary", tmp_path / "m", 128)
    assert "columns 0-127" in split.note and split.train != split.val


def test_windows_and_their_cover_counted_in_strips_are_those_counted_whole(monkeypatch):
    """The valid windows (an int32 integral image summed in place) and the pixels they cover (counted a strip
    of rows at a time) are what brute force finds, with strips of a few rows as with one strip."""
    import core.dataset as dataset

    rng = np.random.default_rng(3)
    valid = rng.random((70, 53)) < 0.7
    valid[20:45, 10:40] = False  # a hole no window fills
    size, stride = 16, 8
    want = [(r, c) for r in range(0, 70 - size + 1, stride) for c in range(0, 53 - size + 1, stride)
            if valid[r:r + size, c:c + size].mean() >= 0.5]
    corners = dataset._valid_windows(valid, size, 0.5, stride=stride)
    assert sorted(map(tuple, corners.tolist())) == want
    cover = np.zeros(valid.shape, bool)
    for r, c in want:
        cover[r:r + size, c:c + size] = True
    whole = dataset._covered(valid, corners, size)
    monkeypatch.setattr(dataset, "STRIP_PIXELS", 3 * 53)
    assert dataset._covered(valid, corners, size) == whole == int((cover & valid).sum()) > 0
