import numpy as np
import pytest

from testdata import FLANDERS_L8, FLANDERS_S2, FTW, write_raster
from core.errors import BandError
from core.bands import parse_band_spec, resolve_bands
from core.raster import ImageReader

def test_float_reflectance_and_sentinel2_names():
    with ImageReader(FLANDERS_S2) as r:
        assert r.scale == 1.0
        assert r.band_index == {"R": 3, "G": 2, "B": 1, "NIR": 4}  # B04, B03, B02, B08
        assert r.grid.crs == "EPSG:32631"
        assert r.grid.pixel_area_ha() == pytest.approx(0.01)  # 10 m x 10 m


def test_landsat8_b05_is_nir_when_there_is_no_b08():
    with ImageReader(FLANDERS_L8) as r:
        assert r.band_index["NIR"] == 4


def test_b08_wins_over_b05():
    assert resolve_bands(["B02", "B03", "B04", "B05", "B08"], 5)["NIR"] == 5


def test_sentinel2_20m_stack_takes_b8a_not_the_red_edge_b05_as_nir():
    """A Sentinel-2 20 m stack has B8A (narrow NIR) and no B08: its B05 is red edge (705 nm), not NIR."""
    names = ["B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"]
    assert resolve_bands(names, len(names)) == {"R": 3, "G": 2, "B": 1, "NIR": 7}
    assert resolve_bands(["B2", "B3", "B4", "B5", "B8A"], 5)["NIR"] == 5  # Earth Engine's names
    every = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12"]
    assert every[resolve_bands(every, len(every))["NIR"] - 1] == "B8"  # the 10 m NIR first
    assert resolve_bands(["B2", "B3", "B4", "B5"], 4)["NIR"] == 4  # Landsat 8-9: B5 is NIR


def test_band_number_zero_is_said_to_be_one_too_low():
    with pytest.raises(BandError, match=r"^band R=0 does not exist: the image has 4 bands, numbered from 1$"):
        resolve_bands([None] * 4, 4, parse_band_spec("0,1,2,3"))


def test_numbered_band_names_follow_the_satellite_a_band_tells_or_are_refused():
    """B<n> are other bands on Landsat 4-7 (B3 red, B4 NIR) than on Landsat 8-9 and Sentinel-2: Earth
    Engine's Landsat 5/7 exports (B1-B7) were read as Landsat 8, R = NIR and NIR = SWIR 1, silently."""
    tm = ["B1", "B2", "B3", "B4", "B5", "B6", "B7"]
    with pytest.raises(BandError, match=r"Landsat 4-7 .*here 4,3,2,5 for Landsat 8-9 or 3,2,1,4 for Landsat 4-7"):
        resolve_bands(tm, 7)
    with pytest.raises(BandError, match=r"4,3,2,8 for Sentinel-2 or 3,2,1,4 for Landsat 4-7"):
        resolve_bands([*tm, "B8"], 8)  # Landsat 7's panchromatic B8, or Sentinel-2's NIR
    etm = ["B1", "B2", "B3", "B4", "B5", "B6_VCID_1", "B6_VCID_2", "B7", "B8"]
    assert resolve_bands(etm, 9) == {"R": 3, "G": 2, "B": 1, "NIR": 4}
    # Landsat 8-9 with its thermal bands: B5 is NIR, its B8 (panchromatic) is not
    oli = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11"]
    assert resolve_bands(oli, 11) == {"R": 4, "G": 3, "B": 2, "NIR": 5}
    assert resolve_bands(["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B09", "B10", "B11"], 10)["NIR"] == 5  # HLS L30
    # Sentinel-2 told by B12 but without a NIR band: its B5 (red edge) is not taken for one
    with pytest.raises(BandError, match="lacks band.s. NIR"):
        resolve_bands(["B2", "B3", "B4", "B5", "B12"], 5)
    assert resolve_bands(["RED", "GREEN", "BLUE", "B8"], 4)["NIR"] == 4  # only the missing band by number
    # Sentinel-2 has a B11 (SWIR 1) and, in L1C, a B10 (cirrus): one of them alone tells nothing
    s2 = ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B11"]
    assert resolve_bands(s2, 8)["NIR"] == 7 and resolve_bands(["B02", "B03", "B04", "B08", "B11"], 5)["NIR"] == 4
    assert resolve_bands(["B2", "B3", "B4", "B8", "B10"], 5)["NIR"] == 4


def test_landsat_sr_band_names_follow_the_satellite_or_are_refused(tmp_path):
    """SR_B<n> are other bands on Landsat 4-7 (SR_B3 red, SR_B4 NIR) than on 8-9 (SR_B4 red, SR_B5 NIR):
    a band that only one of them has decides; without one, the file is refused, never guessed."""
    l89 = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"]
    assert resolve_bands(l89, 7) == {"R": 4, "G": 3, "B": 2, "NIR": 5}
    l47 = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7", "ST_B6"]
    assert resolve_bands(l47, 7) == {"R": 3, "G": 2, "B": 1, "NIR": 4}
    assert resolve_bands(["SR_B2", "SR_B3", "SR_B4", "SR_B5", "ST_B10"], 5)["NIR"] == 4
    for names in (["SR_B2", "SR_B3", "SR_B4", "SR_B5"], ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"]):
        with pytest.raises(BandError, match=r"Landsat 4-7 .* Landsat 8-9 .*name the bands R, G, B, NIR .*--bands"):
            resolve_bands(names, len(names))
    # the message gives the band numbers for either satellite where the file holds their bands
    with pytest.raises(BandError, match=r"here 3,2,1,4 for Landsat 4-7 or 4,3,2,5 for Landsat 8-9"):
        resolve_bands(["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5"], 5)
    # a file of such bands: refused on open, read with the band numbers given
    data = np.full((4, 16, 16), 1000, np.int16)
    p = write_raster(tmp_path / "sr.tif", data, descriptions=["SR_B2", "SR_B3", "SR_B4", "SR_B5"])
    with pytest.raises(BandError, match="Landsat"):
        ImageReader(p)
    with ImageReader(p, parse_band_spec("3,2,1,4")) as r:
        assert r.band_index == {"R": 3, "G": 2, "B": 1, "NIR": 4}


def test_undescribed_bands_need_a_band_list():
    with pytest.raises(BandError, match="--bands"):
        ImageReader(FTW)
    with ImageReader(FTW, parse_band_spec("1,2,3,4")) as r:
        assert r.scale == pytest.approx(1e-4)
        feats, valid = r.read()
        assert valid.all() and 0 < feats[..., 0].mean() < 0.3


def test_missing_band_is_named(tmp_path):
    p = write_raster(tmp_path / "rgb.tif", np.ones((3, 8, 8), np.int16), descriptions=["R", "G", "B"])
    with pytest.raises(BandError, match="NIR"):
        ImageReader(p)


@pytest.mark.parametrize("bands", [None, {"R": 1, "G": 2, "B": 3, "NIR": 3}])
def test_too_few_bands_say_that_nir_is_needed_not_which_numbers_to_give(tmp_path, bands):
    """A 3-band picture (an RGB export, a PNG renamed .tif) was told to give 'the band numbers of R,
    G, B and NIR', which it does not have."""
    p = write_raster(tmp_path / "rgb.tif", np.ones((3, 8, 8), np.int16))
    with pytest.raises(BandError, match=r"has 3 bands, but a crop map needs four: R, G, B and NIR") as err:
        ImageReader(p, bands)
    assert "band numbers" not in str(err.value) and "core stack" not in str(err.value)
    # one band: a download's band file, given alone; the message says how such files become one image
    one = write_raster(tmp_path / "LC08_L2SP_fixture_SR_B4.TIF", np.ones((1, 8, 8), np.int16))
    with pytest.raises(BandError, match=r"has 1 band, .*stacked into one image by python -m core stack"):
        ImageReader(one)


@pytest.mark.parametrize("spec", ["1,2,3", "R=1,G=2,B=3", "a,b,c,d", "1,2,3,4,5", "1,1,1,1"])
def test_bad_band_spec(spec):
    with pytest.raises(BandError):
        parse_band_spec(spec)


def test_band_list_must_give_four_different_bands():
    for spec in ("1,2,3,4,5", "1,1,1,1", "1,2,3,3", "R=1,G=2,B=3,NIR=4,R=2", "R=1,G=1,B=3,NIR=4"):
        with pytest.raises(BandError):
            parse_band_spec(spec)
    with pytest.raises(BandError, match="different bands"):
        resolve_bands([None] * 4, 4, {"R": 1, "G": 1, "B": 1, "NIR": 1})
    with pytest.raises(BandError, match="NIR"):
        resolve_bands([None] * 4, 4, {"R": 1, "G": 2, "B": 3})
    assert parse_band_spec("4, 3, 2, 1") == {"R": 4, "G": 3, "B": 2, "NIR": 1}
    assert parse_band_spec("nir=1,r=2,g=3,b=4") == {"NIR": 1, "R": 2, "G": 3, "B": 4}


def test_band_numbers_that_contradict_the_files_band_names_are_warned_of(tmp_path):
    """--bands 4,3,2,1 on a file whose bands are named R, G, B, NIR gave a plausible crop map of 1.4%
    crop (52% without it) and no word."""
    from core.bands import parse_band_spec
    from core.raster import ImageReader
    from testdata import SAMPLE_IMAGE

    with ImageReader(SAMPLE_IMAGE, parse_band_spec("4,3,2,1")) as reader:
        assert any("differ from what the file's band names say (R=1, G=2, B=3, NIR=4)" in w for w in reader.warnings)
    with ImageReader(SAMPLE_IMAGE, parse_band_spec("1,2,3,4")) as reader:  # the same as the names: no word
        assert not any("band names" in w for w in reader.warnings)
    with ImageReader(SAMPLE_IMAGE) as reader:
        assert not any("band names" in w for w in reader.warnings)


def test_a_band_number_past_the_images_last_band_is_refused():
    with pytest.raises(BandError, match=r"^band NIR=5 does not exist: the image has 4 bands$"):
        resolve_bands([None] * 4, 4, parse_band_spec("1,2,3,5"))
    assert resolve_bands([None] * 5, 5, parse_band_spec("1,2,3,5"))["NIR"] == 5


def test_a_narrow_nir_band_named_alone_by_its_number_is_nir():
    """R, G, B named, and Sentinel-2's B8A as the only numbered band: the NIR band, as B8 would be."""
    assert resolve_bands(["RED", "GREEN", "BLUE", "B8A"], 4) == {"R": 1, "G": 2, "B": 3, "NIR": 4}


def test_landsat_sr_names_with_bands_of_both_generations_are_refused_not_guessed():
    names = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "ST_B6", "ST_B10"]  # 4-7's thermal and 8-9's
    with pytest.raises(BandError, match="the file does not tell which"):
        resolve_bands(names, len(names))
