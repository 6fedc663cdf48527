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


def test_augmentation_moves_features_and_targets_together():
    rng = np.random.default_rng(0)
    x = rng.random((8, 16, 16, 5)).astype(np.float32)
    y = np.repeat(x[..., :1], 2, axis=-1)
    augment_batch(x, y, rng)
    np.testing.assert_array_equal(x[..., 0], y[..., 0])


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
    from core.raster import FEATURE_BANDS

    raw = next(read_records(s.path, [*FEATURE_BANDS, LABEL], (80, 80), batch_size=5))[:, 8:72, 8:72]
    lab = raw[..., -1]
    want_valid = lab != NODATA
    np.testing.assert_array_equal(v, want_valid)
    np.testing.assert_array_equal(y.numpy()[..., 0], (lab == 1).astype(np.float32))
    want_x = norm.apply(raw[..., :-1], want_valid)
    np.testing.assert_allclose(x.numpy(), want_x, rtol=1e-6, atol=1e-6)
    with pytest.raises(InputNotFoundError):
        tfrecord_dataset(tmp_path / "missing", norm, 64)
