"""core.ee.assets: an asset as Earth Engine describes it, asked once (getAsset injected)."""

from __future__ import annotations

import pytest

from core.ee import assets as A
from core.ee.errors import EENotConfiguredError, EEPermissionError, RetryPolicy
from core.errors import ConfigError, EarthEngineError
from fake_ee_ops import FakeAssets, image_asset


def test_an_image_asset_gives_its_bands_and_footprint():
    fake = FakeAssets({"projects/p/assets/pred": image_asset(-72.78, -16.65, -72.67, -16.58)})
    info = A.image_asset("projects/p/assets/pred", get_asset=fake)
    assert info.kind == "IMAGE" and info.bands == ("crop_probability",)
    assert info.bounds == (-72.78, -16.65, -72.67, -16.58) and info.properties == {"threshold": 0.5}


def test_footprints_of_every_geometry_kind():
    multi = {"type": "MultiPolygon", "coordinates": [[[[1, 2], [3, 2], [3, 4], [1, 2]]], [[[-5, -6], [0, -6], [0, 0], [-5, -6]]]]}
    assert A.footprint_bounds(multi) == (-5.0, -6.0, 3.0, 4.0)
    collection = {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [10, 20]},
                                                               {"type": "LineString", "coordinates": [[11, 19], [12, 21]]}]}
    assert A.footprint_bounds(collection) == (10.0, 19.0, 12.0, 21.0)
    # a global image's footprint (Earth Engine's unbounded geodesic box) stays on the globe
    assert A.footprint_bounds({"type": "Polygon", "coordinates": [[[-181, -91], [181, -91], [181, 91], [-181, -91]]]}) == \
        (-180.0, -90.0, 180.0, 90.0)
    assert A.footprint_bounds(None) is None and A.footprint_bounds({"type": "Polygon", "coordinates": []}) is None


def test_a_missing_asset_says_what_to_check():
    """The asset layer said "Earth Engine refused access: check that the asset id is right ... and that
    the project has the Earth Engine API enabled" of an asset whose ingestion had not finished."""
    fake = FakeAssets()
    assert A.find_asset("projects/p/assets/nope", get_asset=fake) is None
    with pytest.raises(EarthEngineError, match="^Earth Engine has no asset projects/p/assets/nope that this account can "
                                               "read: check the id .* ingestion task has completed"):
        A.image_asset("projects/p/assets/nope", get_asset=fake)
    assert fake.asked == ["projects/p/assets/nope"] * 2  # not retried: an answer, not a failure


@pytest.mark.parametrize("kind, said", [("IMAGE_COLLECTION", "is an image collection, not an image"),
                                        ("FOLDER", "is a folder, not an image"), ("TABLE", "is a table, not an image")])
def test_an_asset_that_is_not_an_image_is_refused(kind, said):
    fake = FakeAssets({"projects/p/assets/x": {"type": kind}})
    with pytest.raises(ConfigError, match=f"^projects/p/assets/x {said}: give the id of one image asset"):
        A.image_asset("projects/p/assets/x", get_asset=fake)


def test_other_refusals_are_not_taken_for_a_missing_asset():
    import ee

    def denied(name):
        raise ee.EEException("Permission denied: caller may not read projects/q/assets/x")

    def not_set_up(name):
        raise ee.EEException("Please authorize access to your Earth Engine account by running earthengine authenticate")

    with pytest.raises(EEPermissionError, match="Permission denied"):
        A.find_asset("projects/q/assets/x", get_asset=denied, retry=RetryPolicy(attempts=1))
    with pytest.raises(EENotConfiguredError):
        A.find_asset("projects/q/assets/x", get_asset=not_set_up, retry=RetryPolicy(attempts=1))
