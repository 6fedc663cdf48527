import numpy as np
import pytest

from core.errors import GridMismatchError, InvalidDataError, NoDataError
from core.metrics import area_ha, confusion, crop_area, few_pixels_note, threshold_curve
from core.predict import threshold_mask


def test_confusion_counts_valid_pixels_only():
    pred = np.array([1, 1, 0, 0, 1, 255, 0], np.uint8)
    lab = np.array([1, 0, 1, 0, 255, 1, 0], np.uint8)
    c = confusion(pred, lab)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 1, 1, 2)
    assert c.accuracy == pytest.approx(3 / 5)
    assert c.precision == pytest.approx(0.5) and c.recall == pytest.approx(0.5)
    assert c.f1 == pytest.approx(0.5) and c.iou == pytest.approx(1 / 3)
    assert c.to_dict()["confusion_matrix"]["matrix"] == [[2, 1], [1, 1]]


def test_every_score_follows_its_own_counts():
    """Counts all different (tp 3, fp 1, fn 2, tn 4), so that no score can take one for another (fp and
    fn equal, F1 with fp counted twice passed)."""
    pred = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], np.uint8)
    lab = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0], np.uint8)
    c = confusion(pred, lab)
    assert (c.tp, c.fp, c.fn, c.tn) == (3, 1, 2, 4)
    assert c.accuracy == pytest.approx(7 / 10)
    assert c.precision == pytest.approx(3 / 4) and c.recall == pytest.approx(3 / 5)
    assert c.f1 == pytest.approx(2 * 3 / (2 * 3 + 1 + 2)) and c.iou == pytest.approx(3 / (3 + 1 + 2))
    assert c.to_dict()["confusion_matrix"]["matrix"] == [[4, 1], [2, 3]]


def test_confusion_shape_mismatch():
    with pytest.raises(GridMismatchError):
        confusion(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))


def test_confusion_without_valid_pixels():
    with pytest.raises(NoDataError, match="no pixel is valid"):
        confusion(np.full((2, 2), 255, np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(NoDataError):  # valid in each, but never in both
        confusion(np.array([1, 255], np.uint8), np.array([255, 0], np.uint8))


def test_confusion_refuses_what_is_not_a_crop_mask():
    prob = np.array([[0, 37], [100, 255]], np.uint8)  # probability.tif: percent
    with pytest.raises(InvalidDataError, match="crop_mask.tif"):
        confusion(prob, np.zeros((2, 2), np.uint8))
    with pytest.raises(InvalidDataError, match="1834"):  # reflectance
        confusion(np.array([0, 1834], np.int16), np.zeros(2, np.uint8))


def test_threshold_curve_matches_confusion():
    rng = np.random.default_rng(1)
    prob = rng.random((50, 60)).astype(np.float32)
    prob[0, :5] = np.nan
    lab = (rng.random((50, 60)) < 0.4).astype(np.uint8)
    lab[1, :7] = 255
    prob[2, :4] = [0.495, 0.4949, 0.3449, 0.355]  # on either side of a rounding edge
    for row in threshold_curve(prob, lab, [0.1, 0.345, 0.35, 0.5, 0.555, 0.9]):
        c = confusion(threshold_mask(prob, row["threshold"]), lab)  # the masks the app and CLI make
        assert row["iou"] == pytest.approx(c.iou) and row["f1"] == pytest.approx(c.f1)


def test_threshold_curve_without_valid_pixels():
    with pytest.raises(NoDataError):
        threshold_curve(np.full((2, 2), np.nan), np.zeros((2, 2), np.uint8))


def test_area_of_selected_pixels():
    sel = np.array([[True, False], [True, True]])
    assert area_ha(sel, 0.09) == pytest.approx(0.27)
    assert area_ha(sel, np.array([[1.0], [2.0]])) == pytest.approx(1.0 + 2 * 2.0)  # per-row areas (geographic CRS)
    assert area_ha(sel, None) is None


def test_crop_area():
    mask = np.array([[1, 1], [0, 255]], np.uint8)
    assert crop_area(mask, 0.09)["crop_area_ha"] == pytest.approx(0.18)
    res = crop_area(mask, None)
    assert res["crop_area_ha"] is None and res["crop_fraction"] == pytest.approx(2 / 3)


def test_class_errors_say_which_classes_are_confused():
    from core.metrics import class_errors

    # codes: 5 (crop) x4, 37 (crop) x3, 176 (not crop) x4, 111 (not crop) x2, 0 (no data) x1
    codes = np.array([5, 5, 5, 5, 37, 37, 37, 176, 176, 176, 176, 111, 111, 0])
    lab = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 255], np.uint8)
    pred = np.array([1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1], np.uint8)
    rows = class_errors(codes, lab, pred)
    by = {r["code"]: r for r in rows}
    assert [r["code"] for r in rows] == [37, 176, 5, 111]  # most errors first, no-data pixels left out
    assert by[37] == {"code": 37, "crop": True, "pixels": 3, "predicted_crop": pytest.approx(1 / 3), "errors": 2,
                      "share": pytest.approx(2 / 3), "area_ha": None, "errors_ha": None}  # 2 of the 3 missed crop pixels
    # with the pixels' area (30 m: 0.09 ha), the ground of each class and of its errors
    at_30m = {r["code"]: r for r in class_errors(codes, lab, pred, 0.09)}
    assert at_30m[37]["area_ha"] == pytest.approx(0.27) and at_30m[37]["errors_ha"] == pytest.approx(0.18)
    assert at_30m[176]["errors_ha"] == pytest.approx(0.18) and at_30m[111]["errors_ha"] == 0.0
    # or one area per row (geographic CRSs): the missed crop of class 5 lies in the second row
    per_row = np.array([[0.1], [0.2]])
    rows2 = {r["code"]: r for r in class_errors(codes.reshape(2, 7), lab.reshape(2, 7), pred.reshape(2, 7), per_row)}
    assert rows2[5]["area_ha"] == pytest.approx(0.4) and rows2[5]["errors_ha"] == pytest.approx(0.1)
    assert rows2[37]["errors_ha"] == pytest.approx(0.1 + 0.1) and rows2[176]["errors_ha"] == pytest.approx(0.2 + 0.2)
    assert by[176]["errors"] == 2 and not by[176]["crop"] and by[176]["share"] == pytest.approx(1.0)
    assert by[111]["errors"] == 0 and by[111]["share"] == 0.0
    with pytest.raises(GridMismatchError):
        class_errors(codes[:-1], lab, pred)
    with pytest.raises(InvalidDataError):
        class_errors(codes, lab, np.full(codes.shape, 50, np.uint8))


def test_class_areas_count_each_class_and_leave_out_no_data():
    from core.metrics import class_areas

    codes = np.array([[5, 5, 176], [176, 176, -1]], np.int16)
    rows = class_areas(codes, frozenset({5}))
    assert [(r["code"], r["crop"], r["pixels"]) for r in rows] == [(176, False, 3), (5, True, 2)]
    assert rows[0]["share"] == pytest.approx(0.6) and rows[0]["area_ha"] is None
    assert class_areas(codes, frozenset({5}), 0.09)[1]["area_ha"] == pytest.approx(0.18)  # 30 m pixels
    per_row = np.array([[0.1], [0.2]])  # geographic CRS: pixel area per row
    assert class_areas(codes, frozenset({5}), per_row)[0]["area_ha"] == pytest.approx(0.1 + 0.2 + 0.2)
    # integer codes are counted, not sorted (0.45 s for 15 Mpx): the rows of sorted codes, over several chunks
    from core import metrics
    from core.labels import whole_code_counts

    many = np.random.default_rng(1).choice(np.array([-1, 0, 1, 5, 176, 255], np.int16), (301, 7))
    counted = metrics.class_areas(many, frozenset({1, 5}), 0.09)
    assert counted == metrics.class_areas(many.astype(np.float64), frozenset({1, 5}), 0.09)
    tally, outside = whole_code_counts(many, chunk=100)
    assert tally[tally > 0].tolist() == [r["pixels"] for r in sorted(counted, key=lambda r: r["code"])]
    assert outside.tolist() == [-1] * int((many == -1).sum())
    # a code past those a label raster can hold: the rows as sorting gives them
    many[0, 0] = 32767
    assert metrics.class_areas(many, frozenset({1, 5}))[-1]["code"] == 32767


def test_a_map_handout_says_the_crop_area_and_the_grid():
    """The Region map PNG's line under its title: hectares and CRS for a georeferenced image, pixels and
    'not georeferenced' otherwise (a handout without them said nothing of what it shows)."""
    from core.metrics import crop_area, describe_crop
    from core.grid import Grid

    mask = np.array([[1, 1, 0], [0, 255, 1]], np.uint8)
    utm = Grid("EPSG:32631", (10.0, 0.0, 500000.0, 0.0, -10.0, 5630000.0), 3, 2)
    assert describe_crop(crop_area(mask, utm.pixel_area_ha()), utm) == (
        "Crop 0.03 ha, 60.0% of the 5 valid pixels. EPSG:32631, 10 m pixels.")
    big = Grid("EPSG:32631", (1000.0, 0.0, 500000.0, 0.0, -1000.0, 5630000.0), 3, 2)
    assert describe_crop(crop_area(mask, big.pixel_area_ha()), big) == (
        "Crop 300.0 ha, 60.0% of the 5 valid pixels. EPSG:32631, 1,000 m pixels.")
    drone = Grid("EPSG:32631", (0.5, 0.0, 500000.0, 0.0, -0.5, 5630000.0), 3, 2)
    assert describe_crop(crop_area(mask, drone.pixel_area_ha()), drone).endswith("EPSG:32631, 0.5 m pixels.")
    mollweide = Grid("ESRI:54009", (1000.0, 0.0, 0.0, 0.0, -1000.0, 5000000.0), 3, 2)
    assert "ESRI:54009, 1,000 m pixels" in describe_crop(crop_area(mask, mollweide.pixel_area_ha()), mollweide)
    from core.metrics import format_hectares

    assert [format_hectares(a) for a in (0, 0.03, 24.26, 12_345.6)] == ["0 ha", "0.03 ha", "24.3 ha", "12,346 ha"]
    plain = Grid(None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 3, 2)
    assert describe_crop(crop_area(mask, None), plain) == (
        "Crop 3 px, 60.0% of 5 valid pixels. Image coordinates: not georeferenced.")
    # with a stated pixel size (the sample's Landsat 30 m), the ground area the Predict page gives beside it too
    assert describe_crop(crop_area(mask, None), plain, pixel_size_m=30.0) == (
        "Crop 3 px (about 0.27 ha at 30 m pixels), 60.0% of 5 valid pixels. Image coordinates: not georeferenced.")


def test_few_pixels_of_a_class_come_with_a_caution():
    assert few_pixels_note(tp=900, fp=50, fn=100, tn=949) == (
        "Few labelled pixels of not crop (1,000 crop, 999 not crop): a handful of pixels moves these scores, "
        "and the best threshold found here is a guess; judge the model on a larger region.")
    assert few_pixels_note(tp=900, fp=50, fn=100, tn=950) is None  # 1,000 of each: enough
    assert few_pixels_note(tp=0, fp=5, fn=0, tn=10) is None  # no crop in the labels: said otherwise
    assert few_pixels_note(tp=10, fp=5000, fn=0, tn=10).startswith("Few labelled pixels of crop (10 crop, 5,010 not ")
    assert few_pixels_note(tp=10, fp=5, fn=0, tn=10).startswith("Few labelled pixels of either class (10 crop, 15 not ")



def test_crop_area_agreement_compares_areas_over_pixels_valid_in_both():
    from core.metrics import crop_area_agreement

    pred = np.array([[1, 1, 0, 255], [1, 0, 0, 1]], np.uint8)
    labels = np.array([[1, 0, 1, 1], [1, 1, 255, 0]], np.uint8)
    # valid in both: all but (0, 3) and (1, 2); 4 crop pixels each, 2 of them the same: the errors cancel
    assert crop_area_agreement(pred, labels, 0.09) == {
        "predicted_pixels": 4, "labelled_pixels": 4, "predicted_ha": 0.36, "labelled_ha": 0.36, "difference": 0.0}
    pred[1, 3] = 0  # one crop pixel fewer: 25% under
    got = crop_area_agreement(pred, labels, None)
    assert got["difference"] == -0.25 and got["predicted_ha"] is None and got["labelled_ha"] is None
    rows = np.array([[0.1], [0.3]])  # pixel areas by row (a geographic grid): the difference by area
    got = crop_area_agreement(pred, labels, rows)
    assert got["predicted_ha"] == pytest.approx(0.5) and got["labelled_ha"] == pytest.approx(0.8)
    assert got["difference"] == pytest.approx(-0.375)
    assert crop_area_agreement(pred, np.zeros_like(labels), 0.09)["difference"] is None  # no crop in the labels
    with pytest.raises(GridMismatchError):
        crop_area_agreement(pred, labels[:, :3], 0.09)
    many = np.ones((26, 37), np.uint8)  # 962 pixels of 0.01 ha: 9.62 ha, not float noise in metrics.json
    assert crop_area_agreement(many, many, 0.01)["labelled_ha"] == 9.62 != 962 * 0.01


def test_areas_are_shown_in_hectares_or_acres_with_the_same_precision():
    """The dashboard's area unit (its sidebar's choice): an international acre is 0.40468564224 ha."""
    from core.errors import ConfigError
    from core.grid import Grid
    from core.metrics import AREA_UNITS, crop_area, describe_crop, format_area, nominal_area

    assert [format_area(a, "acres") for a in (0, 0.03, 0.40468564224, 24.26, 12_345.6)] == [
        "0 ac", "0.07 ac", "1.0 ac", "59.9 ac", "30,507 ac"]
    assert format_area(404.68564224, "acres") == "1,000 ac" and format_area(404.6, "acres") == "999.8 ac"
    assert format_area(24.26) == format_area(24.26, "hectares") == "24.3 ha"
    assert set(AREA_UNITS) == {"hectares", "acres"}
    with pytest.raises(ConfigError, match="unknown area unit 'm2'; choose one of hectares, acres"):
        format_area(1.0, "m2")
    # the sample's nominal area, and a handout's line
    assert nominal_area(100, 30.0, "acres") == "about 22.2 ac at 30 m pixels"  # 100 x 0.09 ha
    utm = Grid("EPSG:32631", (100.0, 0.0, 500000.0, 0.0, -100.0, 5630000.0), 3, 2)
    mask = np.array([[1, 1, 0], [0, 255, 1]], np.uint8)
    assert describe_crop(crop_area(mask, utm.pixel_area_ha()), utm, "acres").startswith("Crop 7.4 ac, 60.0% of")
    # an area where it is known, else pixels, as every page shows one
    from core.metrics import area_text

    assert area_text(24.26, 270, "acres") == "59.9 ac" and area_text(None, 12_345) == "12,345 px"


def test_the_best_threshold_and_whether_it_is_worth_moving_to():
    from core.metrics import BEST_F1_GAIN, best_threshold

    curve = [{"threshold": 0.3, "f1": 0.80, "precision": 0.7, "recall": 0.93},
             {"threshold": 0.4, "f1": 0.85, "precision": 0.8, "recall": 0.9},
             {"threshold": 0.5, "f1": 0.848, "precision": 0.85, "recall": 0.846}]
    best = best_threshold(curve, 0.3, 0.80)
    assert (best.threshold, best.f1, best.worth_moving, best.in_use) == (0.4, 0.85, True, False)
    assert best.area_ratio == pytest.approx(0.9 / 0.8)  # predicted / labelled crop there
    assert not best_threshold(curve, 0.5, 0.848).worth_moving  # +0.002 F1: not worth a move
    assert best_threshold(curve, 0.5, 0.848, min_gain=0.001).worth_moving and BEST_F1_GAIN == 0.005
    assert best_threshold(curve, 0.4, 0.85).in_use and not best_threshold(curve, 0.4, 0.85).worth_moving
    # no threshold finds crop: no best
    assert best_threshold([{"threshold": 0.5, "f1": None, "precision": None, "recall": 0.0}], 0.5, None) is None
    assert best_threshold([], 0.5, None) is None
    # every pixel crop at the lowest threshold: the "everything is crop" baseline, not a threshold to offer (on
    # labels 58% crop its F1 0.736 beat the model's 0.672, and the button mapped the whole region as crop)
    everything = {"threshold": 0.05, "f1": 0.736, "precision": 0.58, "recall": 1.0, "crop_fraction": 1.0}
    mapped = [{**r, "crop_fraction": 0.6} for r in curve]
    assert best_threshold([everything, *mapped], 0.5, 0.848).threshold == 0.4
    assert best_threshold([everything], 0.5, 0.7) is None
    from core.metrics import everything_crop_f1

    assert everything_crop_f1(40, 60, 18, 22) == pytest.approx(2 * (58 / 140) / (1 + 58 / 140))  # (58 of 140 crop)
    assert everything_crop_f1(0, 5, 0, 5) is None


def test_a_share_is_never_rounded_to_all_or_none_that_it_is_not():
    from core.metrics import share_text

    assert share_text(74_997, 75_000) == "over 99.9%" and share_text(75_000, 75_000) == "100.0%"
    assert share_text(3, 75_000) == "under 0.1%" and share_text(0, 75_000) == "0.0%"
    assert share_text(901_109, 1_048_576) == "85.9%" and share_text(1, 0) == "0.0%"
    assert share_text(999, 1000) == "99.9%" and share_text(1, 1000) == "0.1%"  # the edges are themselves


def test_class_zero_and_the_curves_ends_are_kept():
    """Class 0 (Dynamic World's water, WorldCover's none) has rows of its own; the curve runs 0.05 to 0.95 in
    steps of 0.05, and its crop fraction is of every compared pixel predicted crop (false crop included)."""
    from core.metrics import class_errors

    codes = np.array([[0, 0, 4, 4]])
    rows = {r["code"]: r for r in class_errors(codes, np.array([[0, 0, 1, 1]], np.uint8), np.array([[1, 0, 1, 1]], np.uint8))}
    assert rows[0]["pixels"] == 2 and rows[0]["errors"] == 1 and rows[4]["errors"] == 0
    curve = threshold_curve(np.full((1, 4), 0.9, np.float32), np.array([[1, 1, 1, 0]], np.uint8))
    assert [r["threshold"] for r in curve] == [round(0.05 * k, 2) for k in range(1, 20)]
    at_half = next(r for r in curve if r["threshold"] == 0.5)
    assert at_half["crop_fraction"] == 1.0 and at_half["precision"] == pytest.approx(0.75)


def test_scores_are_undefined_only_without_the_crop_they_divide_by():
    """As the Quality page's "n/a": precision without predicted crop, recall without labelled crop, F1 and
    IoU without crop in either; false crop on labels without crop scores 0 (not "n/a"), as does missed crop."""
    from core.metrics import Confusion

    missed = Confusion(tp=0, fp=0, fn=4, tn=6).scores()
    assert missed == {"precision": None, "recall": 0.0, "f1": 0.0, "iou": 0.0}
    false = Confusion(tp=0, fp=3, fn=0, tn=5).scores()
    assert false == {"precision": 0.0, "recall": None, "f1": 0.0, "iou": 0.0}
    assert Confusion(0, 0, 0, 5).scores() == {"precision": None, "recall": None, "f1": None, "iou": None}
    nothing = Confusion(0, 0, 0, 0)  # (a division by zero is 0, never an error)
    assert (nothing.accuracy, nothing.precision, nothing.recall, nothing.f1, nothing.iou) == (0.0,) * 5


def test_confusion_without_crop_predicted_or_labelled_is_counted():
    """Pixels valid in both but no crop anywhere: all true negatives, not "no pixel is valid"."""
    c = confusion(np.zeros((2, 3), np.uint8), np.zeros((2, 3), np.uint8))
    assert (c.tp, c.fp, c.fn, c.tn) == (0, 0, 0, 6)


def test_small_areas_are_given_to_a_square_metre():
    """2 m pixels (0.0004 ha): a class of 3 pixels is 0.0012 ha, not 0.0 (rounded to hundredths)."""
    from core.metrics import class_errors, crop_area_agreement

    codes = np.array([[5, 5, 5, 176]])
    lab = np.array([[1, 1, 1, 0]], np.uint8)
    pred = np.array([[1, 1, 0, 1]], np.uint8)
    rows = {r["code"]: r for r in class_errors(codes, lab, pred, 0.0004)}
    assert rows[5]["area_ha"] == 0.0012 and rows[5]["errors_ha"] == 0.0004 and rows[176]["errors_ha"] == 0.0004
    area = crop_area_agreement(pred, lab, 0.0004)
    assert area["predicted_ha"] == 0.0012 and area["labelled_ha"] == 0.0012


def test_a_threshold_of_1_counts_the_pixels_of_probability_1_as_crop():
    """As the crop mask does at 1.00 (threshold_mask): the curve's last point is not an empty map."""
    prob = np.array([[1.0, 1.0, 0.999, 0.2]], np.float32)
    lab = np.array([[1, 0, 1, 0]], np.uint8)
    (row,) = threshold_curve(prob, lab, [1.0])
    c = confusion(threshold_mask(prob, 1.0), lab)
    assert (c.tp, c.fp) == (2, 1)  # (0.999 is stored as 100 percent)
    assert row["precision"] == pytest.approx(c.precision) and row["crop_fraction"] == pytest.approx(3 / 4)


def test_a_best_threshold_no_better_than_calling_every_pixel_crop_is_none():
    """Labels 39% crop (everything crop: F1 0.559): a threshold at which the map calls 99.5% of the pixels
    crop scored F1 0.561, "the best", and was offered. With the baseline given, the best must beat it by
    at least ``min_gain``."""
    from core.metrics import BEST_F1_GAIN, best_threshold, everything_crop_f1

    baseline = everything_crop_f1(tp=388, fp=0, fn=0, tn=612)
    assert baseline == pytest.approx(0.5591, abs=1e-4)
    near_all = {"threshold": 0.4, "f1": 0.5605, "precision": 0.3896, "recall": 0.9985, "crop_fraction": 0.995}
    poor = {"threshold": 0.5, "f1": 0.104, "precision": 0.162, "recall": 0.076, "crop_fraction": 0.18}
    assert best_threshold([near_all, poor], 0.5, 0.104).threshold == 0.4  # (without the baseline: offered)
    assert best_threshold([near_all, poor], 0.5, 0.104, baseline=baseline) is None
    assert best_threshold([near_all, poor], 0.4, 0.5605, baseline=baseline) is None  # (in use: not "the best" either)
    mapped = {"threshold": 0.44, "f1": baseline + BEST_F1_GAIN, "precision": 0.5, "recall": 0.7, "crop_fraction": 0.55}
    best = best_threshold([near_all, mapped, poor], 0.5, 0.104, baseline=baseline)
    assert best.threshold == 0.44 and best.worth_moving


def test_the_best_threshold_is_worth_moving_to_from_a_gain_of_min_gain_or_from_no_crop():
    from core.metrics import best_threshold

    curve = [{"threshold": 0.3, "f1": 0.80, "precision": 0.7, "recall": 0.93},
             {"threshold": 0.4, "f1": 0.85, "precision": 0.8, "recall": 0.9}]
    assert best_threshold(curve, 0.3, 0.80, min_gain=0.85 - 0.80).worth_moving  # at least min_gain: worth it
    # no F1 at the threshold in use (nothing predicted crop there): any best is worth the move
    assert best_threshold(curve, 0.9, None).worth_moving


def test_crop_area_of_a_mask_all_no_data_has_no_crop_fraction():
    """No valid pixel: the share of crop is unknown ("n/a" on the handout), not 0%."""
    from core.grid import Grid
    from core.metrics import describe_crop

    stats = crop_area(np.full((2, 3), 255, np.uint8), None)
    assert stats == {"pixels": 6, "valid_pixels": 0, "crop_pixels": 0, "crop_fraction": None, "crop_area_ha": None}
    assert "n/a of 0 valid pixels" in describe_crop(stats, Grid(None, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 3, 2))
    assert crop_area(np.array([[1, 0, 255]], np.uint8), None)["pixels"] == 3  # every pixel, valid or not


def test_predicted_crop_where_the_labels_have_no_data_is_not_counted_in_the_areas():
    from core.metrics import crop_area_agreement

    pred = np.array([[1, 1, 1, 1]], np.uint8)
    labels = np.array([[1, 1, 255, 255]], np.uint8)
    assert crop_area_agreement(pred, labels, 0.09) == {
        "predicted_pixels": 2, "labelled_pixels": 2, "predicted_ha": 0.18, "labelled_ha": 0.18, "difference": 0.0}


def test_areas_just_under_1000_are_shown_whole_as_they_round():
    from core.metrics import format_area

    assert format_area(999.96) == "1,000 ha" and format_area(999.94) == "999.9 ha"


def test_the_crop_rule_says_at_least_the_threshold_and_sizes_are_positive():
    """A pixel is crop at a probability equal to the threshold (threshold_mask): "≥", not ">"."""
    from core.metrics import crop_rule, nominal_area

    assert crop_rule(0.5) == "probability ≥ 0.50" and threshold_mask(np.array([0.5], np.float32), 0.5)[0] == 1
    assert nominal_area(100, 0.0) is None and nominal_area(100, -30.0) is None


def test_curve_and_class_errors_summed_in_parts_are_those_of_the_whole(monkeypatch):
    """threshold_curve and class_errors add their counts up a part at a time (memory: whole-image float64 and
    int64 copies were 17 and 29 bytes a pixel); parts of a few pixels, across rows, give the same figures."""
    from core import metrics, predict
    from core.labels import CROP, NODATA, NOT_CROP
    from core.metrics import class_errors

    rng = np.random.default_rng(5)
    prob = rng.random((37, 23)).astype(np.float32)
    prob[rng.random(prob.shape) < 0.1] = np.nan
    labels = rng.choice(np.array([CROP, NOT_CROP, NODATA], np.uint8), prob.shape, p=[0.4, 0.5, 0.1])
    codes = rng.choice(np.array([1, 5, 176, 111], np.int16), prob.shape)
    pred = threshold_mask(prob, 0.5)
    rows_ha = np.linspace(0.08, 0.1, 37)[:, None]
    whole = (threshold_curve(prob, labels), class_errors(codes, labels, pred, 0.09),
             class_errors(codes, labels, pred, rows_ha), predict.probability_to_uint8(prob))
    monkeypatch.setattr(predict, "PERCENT_CHUNK", 7)
    monkeypatch.setattr(metrics, "CLASS_STRIP_PIXELS", 50)  # two rows and a bit: strips of 2 rows
    parts = (threshold_curve(prob, labels), class_errors(codes, labels, pred, 0.09),
             class_errors(codes, labels, pred, rows_ha), predict.probability_to_uint8(prob))
    assert parts[0] == whole[0] and parts[1] == whole[1] and np.array_equal(parts[3], whole[3])
    assert [r["code"] for r in parts[2]] == [r["code"] for r in whole[2]]
    for a, b in zip(parts[2], whole[2]):  # (areas summed in another order)
        assert a == pytest.approx(b)
    assert sum(r["pixels"] for r in whole[1]) == int(((labels != NODATA) & (pred != NODATA)).sum())
    with pytest.raises(GridMismatchError, match="differ in shape"):
        class_errors(codes[:-1], labels, pred)


def test_class_areas_of_a_lon_lat_grid_counted_by_row_in_strips_are_the_pixels_weighted_one_by_one():
    """Areas per row (a lon/lat grid's) are counted a strip of rows at a time, by row and class (sorting every
    pixel's class with its weight was 26 bytes a pixel): the same pixels and hectares as weighting each pixel."""
    from core import metrics

    rng = np.random.default_rng(11)
    codes = rng.choice(np.array([-1, 0, 1, 5, 176, 255], np.int16), (300, 7))
    row_ha = np.linspace(0.05, 0.09, 300)[:, None]
    got = metrics.class_areas(codes, frozenset({1, 5}), row_ha)
    pixel_ha = np.broadcast_to(row_ha, codes.shape)
    want = {int(k): (int((codes == k).sum()), float(pixel_ha[codes == k].sum())) for k in (0, 1, 5, 176, 255)}
    assert {r["code"]: r["pixels"] for r in got} == {k: n for k, (n, _) in want.items()}
    assert all(r["area_ha"] == pytest.approx(want[r["code"]][1]) for r in got)
    one_by_one = metrics.class_areas(codes.astype(np.float32), frozenset({1, 5}), row_ha)  # the per-pixel way
    assert [{**r, "area_ha": pytest.approx(r["area_ha"])} for r in one_by_one] == got
    small = metrics._codes_by_row(codes, row_ha.reshape(-1), strip_pixels=7 * 3)  # strips of 3 rows
    whole = metrics._codes_by_row(codes, row_ha.reshape(-1))
    assert np.array_equal(small[0], whole[0]) and np.allclose(small[1], whole[1])
