import numpy as np
import pytest

from core.errors import ConfigError, InvalidDataError
from core.labels import CLASS_MAPS, CROP, NODATA, NOT_CROP, get_class_map


@pytest.mark.parametrize(
    "name, crop, not_crop, nodata",
    [
        # 255: no class of CDL, WorldCover or Dynamic World; the usual byte fill, undeclared it was "not crop"
        # 81: "Clouds/No Data" in the CDLs of 2007 and before; 88 "Nonag/Undefined" is land, not crop
        ("cdl", [1, 61, 66, 77, 204, 254], [62, 65, 78, 88, 111, 121, 176, 203], [0, 81, 255]),
        ("glc30", [10], [20, 30, 60, 80], [0, 255]),
        ("worldcover", [40], [10, 30, 50, 80], [0, 255]),
        ("dynamicworld", [4], [0, 1, 2, 3, 5, 6, 7, 8], [255]),
        ("glcfcs30d", [10, 11, 12, 20], [51, 71, 130, 190, 210], [0, 250, 255]),
        ("worldcereal", [11], [13, 60, 99], [0, 255]),
        ("binary", [1], [0], [255]),
    ],
)
def test_class_maps(name, crop, not_crop, nodata):
    cmap = get_class_map(name)
    codes = np.array(crop + not_crop + nodata)
    want = np.array([CROP] * len(crop) + [NOT_CROP] * len(not_crop) + [NODATA] * len(nodata), np.uint8)
    np.testing.assert_array_equal(cmap.to_mask(codes), want)


def test_an_undeclared_fill_above_the_codes_is_named_with_the_fix():
    codes = np.full((10, 10), 176, np.uint16)
    codes[:2] = 65535
    with pytest.raises(InvalidDataError, match=r"20.0% of this raster's pixels hold 65535, a no-data value that the "
                                               r"file does not declare; set it as the file's nodata \(gdal_edit.py "
                                               r"-a_nodata 65535 FILE.tif\)"):
        get_class_map("cdl").to_mask(codes)
    codes[0, 0] = 4000  # several values above the codes: an image, not labels
    with pytest.raises(InvalidDataError, match="holds 65535; it looks like an image"):
        get_class_map("cdl").to_mask(codes)


def test_nan_is_nodata_in_float_labels():
    mask = get_class_map("worldcereal").to_mask(np.array([11.0, np.nan, 13.0], np.float32))
    np.testing.assert_array_equal(mask, [CROP, NODATA, NOT_CROP])


@pytest.mark.parametrize("name", sorted(set(CLASS_MAPS) - {"binary"}))
def test_negative_codes_are_nodata(name):
    """No land-cover product has a negative class: a fill of -1 or -9999 in a signed label raster
    that does not declare it (where 0 is a class, as Dynamic World's water) was scored as "not crop"."""
    codes = np.array([[-1, -9999, -32768]], np.int16)
    np.testing.assert_array_equal(get_class_map(name).to_mask(codes), [[NODATA] * 3])


def test_binary_rejects_class_codes():
    with pytest.raises(InvalidDataError, match="binary"):
        get_class_map("binary").to_mask(np.array([0, 1, 40]))


def test_unknown_map_lists_known_ones():
    with pytest.raises(ConfigError, match="cdl"):
        get_class_map("corine")
    assert set(CLASS_MAPS) >= {"cdl", "glc30", "worldcover", "dynamicworld", "glcfcs30d", "worldcereal", "binary"}


def test_class_names_come_from_the_products_legends():
    from core.labels import class_name

    assert class_name("cdl", 176) == "Grassland/Pasture"  # from the shipped CDL legend (cdlvalue.csv)
    assert class_name("CDL", 37) == "Other Hay/Non Alfalfa"
    assert class_name("worldcover", 40) == "Cropland" and class_name("dynamicworld", 4) == "Crops"
    assert class_name("glc30", 10) == "Cultivated land" and class_name("worldcereal", 13) == "Grassland"
    assert class_name("glcfcs30d", 20) == "Irrigated cropland" and class_name("glcfcs30d", 202) == "Unconsolidated bare areas"
    assert class_name("glcfcs30d", 100) == "class 100" and class_name("cdl", 100) == "class 100"  # unknown: the code


def test_labels_of_another_product_are_refused_with_the_map_they_fit():
    """Read with the wrong label map, real label rasters gave wrong masks and metrics silently
    (WorldCereal 13 grassland and 60 built-up are CDL crop codes)."""
    from core.raster import read_labels
    from testdata import FLANDERS_LABELS, SAMPLE_LABELS

    with pytest.raises(InvalidDataError, match="named 'LC', the band of WorldCereal.*--label-map worldcereal"):
        read_labels(FLANDERS_LABELS, CLASS_MAPS["cdl"])
    with pytest.raises(InvalidDataError, match=r"100% of the labelled pixels hold codes that ESA WorldCover .*fit: cdl"):
        read_labels(SAMPLE_LABELS, CLASS_MAPS["worldcover"])
    # the right maps read them
    assert (read_labels(FLANDERS_LABELS, CLASS_MAPS["worldcereal"]) == CROP).any()
    assert (read_labels(SAMPLE_LABELS, CLASS_MAPS["cdl"]) == CROP).any()


def test_a_crop_mask_read_as_a_products_codes_is_refused(tmp_path):
    """A 0/1 crop mask (255 = no data; what an Earth Engine fetch writes) evaluated with the default
    CDL map lost every not-crop pixel as no data and scored a perfect precision, silently."""
    import rasterio

    from core.raster import read_labels
    from testdata import SAMPLE_LABELS

    with rasterio.open(SAMPLE_LABELS) as src:
        profile, codes = src.profile, src.read(1)
    binary = CLASS_MAPS["cdl"].to_mask(codes)  # the sample's own crop mask, 1/0/255
    profile.update(dtype="uint8", nodata=255)
    with rasterio.open(tmp_path / "mask.tif", "w", **profile) as dst:
        dst.write(binary, 1)
    for name in ("cdl", "glc30", "worldcover", "glcfcs30d", "worldcereal"):
        with pytest.raises(InvalidDataError, match="only 0 and 1.*a crop mask.*--label-map binary"):
            read_labels(tmp_path / "mask.tif", CLASS_MAPS[name])
    assert np.array_equal(read_labels(tmp_path / "mask.tif", CLASS_MAPS["binary"]), binary)
    from core.labels import check_label_codes

    check_label_codes(np.array([0] * 50 + [1] * 50), CLASS_MAPS["dynamicworld"])  # water and trees: real classes
    little_crop = np.array([1] * 5 + [0] * 995, np.uint8)  # 0.5% crop: its precision would be 1 by construction
    with pytest.raises(InvalidDataError, match="--label-map binary"):
        check_label_codes(little_crop, CLASS_MAPS["cdl"])
    check_label_codes(np.array([0] * 1 + [1] * 300), CLASS_MAPS["cdl"])  # corn with a speck of background


def test_a_crop_mask_that_declares_a_class_as_no_data_is_refused(tmp_path):
    """A 0/1 crop mask declaring 0 as no data (as gdal_rasterize and gdal_calc often write them) lost
    every not-crop pixel and scored as perfect, with any label map; one declaring 1 lost the crop."""
    import rasterio

    from core.evaluate import evaluate_files
    from core.raster import grid_of_file, read_labels, write_mask
    from testdata import SAMPLE_LABELS

    with rasterio.open(SAMPLE_LABELS) as src:
        profile, codes = src.profile, src.read(1)
    binary = CLASS_MAPS["cdl"].to_mask(codes)
    profile.update(dtype="uint8")
    for declared in (0, 1):
        profile.update(nodata=declared)
        path = tmp_path / f"mask_nd{declared}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.where(binary == NODATA, 0, binary).astype(np.uint8), 1)
        with pytest.raises(InvalidDataError, match=f"mask_nd{declared}.tif declares {declared} as no data, but in a crop "
                                                   "mask .* -unsetnodata"):
            read_labels(path, CLASS_MAPS["binary"])
    # read with a product's map, the same file is a product's one class around its background (CDL clipped to
    # a corn field, 0 declared no data): read as it says
    assert set(np.unique(read_labels(tmp_path / "mask_nd0.tif", CLASS_MAPS["cdl"]))) <= {CROP, NODATA}
    # the prediction scored against it: refused, not a perfect score
    pred = write_mask(tmp_path / "pred.tif", binary, grid_of_file(SAMPLE_LABELS))
    with pytest.raises(InvalidDataError, match="declares 0 as no data"):
        evaluate_files(pred, tmp_path / "mask_nd0.tif", "binary")
    # a product that declares 0 as no data, with its real classes, is read as before
    profile.update(nodata=0)
    with rasterio.open(tmp_path / "cdl_nd0.tif", "w", **profile) as dst:
        dst.write(codes, 1)
    assert np.array_equal(read_labels(tmp_path / "cdl_nd0.tif", CLASS_MAPS["cdl"]), binary)
    # ... and read as a crop mask, it is told to choose its label map (it was told to remove its declaration,
    # which would damage a correct file)
    with pytest.raises(InvalidDataError, match=r"cdl_nd0.tif: its codes are not 0 and 1 \(e.g. .*\) but a land-cover "
                                               r"product's classes, .*\(--label-map cdl on the command line"):
        read_labels(tmp_path / "cdl_nd0.tif", CLASS_MAPS["binary"])


def test_worldcereal_codes_read_as_a_crop_mask_are_told_their_own_label_map_first():
    """WorldCereal's codes (its band named LC) read as a crop mask were told "--label-map cdl"."""
    from core.raster import read_labels
    from testdata import FLANDERS_LABELS

    with pytest.raises(InvalidDataError, match=r"its codes are not 0 and 1 .*\(--label-map worldcereal[ )]"):
        read_labels(FLANDERS_LABELS, CLASS_MAPS["binary"], band="LC")


def test_a_few_unknown_codes_are_tolerated():
    from core.labels import check_label_codes

    cmap = CLASS_MAPS["worldcover"]
    codes = np.array([10] * 60 + [40] * 30 + [77] * 10)  # 10% of codes WorldCover does not define
    check_label_codes(codes, cmap)
    with pytest.raises(InvalidDataError, match="60% of the labelled pixels"):
        check_label_codes(np.array([10] * 40 + [77] * 60), cmap)
    # no data and masked pixels are not counted; binary masks are checked by to_mask instead
    check_label_codes(np.ma.masked_array([10, 77, 77, 0, 0], mask=[0, 1, 1, 0, 0]), cmap)
    check_label_codes(np.array([0, 1, 1]), CLASS_MAPS["binary"])


def test_a_label_band_named_as_a_products_band_names_its_label_map():
    from core.labels import label_map_named_by

    assert label_map_named_by(["LC", "CT"]) == "worldcereal"  # WorldCereal's label files (tests/data/georef)
    assert label_map_named_by(["map"]) == "worldcover" and label_map_named_by(["label"]) == "dynamicworld"
    assert label_map_named_by([None]) is None and label_map_named_by(["B1"]) is None
    assert label_map_named_by(["LC", "Map"]) is None  # two products: no guess


def test_label_counts_leave_out_labels_under_no_image_data():
    from core.labels import label_counts

    mask = np.array([[CROP, CROP, NOT_CROP], [NODATA, CROP, NOT_CROP]], np.uint8)
    valid = np.array([[True, False, True], [True, True, True]])
    counts = label_counts(mask, valid)
    assert (counts.crop, counts.not_crop, counts.labelled) == (2, 2, 4)  # the crop under no data is not counted
    assert counts.crop_share == 0.5
    assert label_counts(np.full((2, 2), NODATA, np.uint8), np.ones((2, 2), bool)).crop_share is None


def test_label_codes_of_any_integer_type_are_counted():
    """Counted in chunks, uint64 codes raised a TypeError (numpy's bincount refuses them uncast)."""
    import numpy as np

    from core.labels import CodeCounts

    for dtype in (np.uint8, np.int16, np.uint32, np.int64, np.uint64):
        codes = np.array([[1, 24], [0, 111]], dtype)
        counts = CodeCounts.of(codes)
        assert counts.counts[[0, 1, 24, 111]].tolist() == [1, 1, 1, 1] and counts.pixels == 4, dtype


def test_labels_under_image_no_data_are_not_counted():
    """The Data page's crop share: a label where the image has no data counts in neither class."""
    from core.labels import LabelCounts, label_counts

    mask = np.array([0, 0, 1, 255], np.uint8)
    assert label_counts(mask, np.array([True, False, True, True])) == LabelCounts(1, 1)
    assert label_counts(mask, np.ones(4, bool)) == LabelCounts(1, 2)


def test_few_labels_are_under_half_of_the_imaged_pixels():
    from core.labels import few_labels

    assert few_labels(49, 100) and not few_labels(50, 100) and not few_labels(100, 100)


def test_label_map_names_are_read_whatever_their_case():
    """``--label-map CDL`` or ``WorldCover`` (as the products spell themselves) name the same maps."""
    for given, name in (("CDL", "cdl"), ("WorldCover", "worldcover"), ("DynamicWorld", "dynamicworld"),
                        ("Binary", "binary")):
        assert get_class_map(given) is CLASS_MAPS[name]


def test_unknown_codes_are_refused_only_above_the_tolerated_share():
    """Labels are taken for another product's only where MORE than MAX_UNKNOWN_SHARE of the labelled
    pixels hold codes the product does not define; exactly that share is tolerated."""
    from core.labels import MAX_UNKNOWN_SHARE, check_label_codes

    cmap = CLASS_MAPS["worldcover"]  # 10 (tree cover) is one of its classes, 77 is none
    unknown = int(MAX_UNKNOWN_SHARE * 100)
    check_label_codes(np.array([10] * (100 - unknown) + [77] * unknown), cmap)
    with pytest.raises(InvalidDataError, match="of the labelled pixels hold codes that ESA WorldCover"):
        check_label_codes(np.array([10] * (99 - unknown) + [77] * (unknown + 1)), cmap)


def test_code_counts_summed_over_parts_keep_what_any_part_found():
    """A label raster is judged on its parts' counts summed (read strip by strip): a fraction found only in
    a later part still refuses the raster, and every pixel read (masked ones too) is counted."""
    from core.labels import CodeCounts

    whole = CodeCounts.of(np.array([[176.0, 1.0], [np.nan, 5.0]], np.float32))
    fractions = CodeCounts.of(np.array([[24.0, 0.25]], np.float32))
    assert whole.fraction is None and fractions.fraction == 0.25
    for found in (whole + fractions, fractions + whole):
        assert found.fraction == 0.25 and found.pixels == 6
        with pytest.raises(InvalidDataError, match="whole numbers.*0.25"):
            CLASS_MAPS["cdl"].refuse_non_codes(found.fraction, found.high, found.pixels, found.low)
    # masked values are no data: not counted as codes, but among the pixels read (a fill's share is of all of them)
    masked = CodeCounts.of(np.ma.masked_array(np.array([176, 65535, 0, 5], np.uint16), mask=[0, 0, 1, 1]))
    assert masked.pixels == 4 and masked.high == {65535: 1} and masked.counts.sum() == 1 and masked.counts[176] == 1
    with pytest.raises(InvalidDataError, match=r"25.0% of this raster's pixels hold 65535"):
        CLASS_MAPS["cdl"].refuse_non_codes(masked.fraction, masked.high, masked.pixels, masked.low)
