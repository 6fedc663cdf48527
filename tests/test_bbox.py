"""core.bbox: a box typed as text, put in order and cut to an image."""

from __future__ import annotations

import pytest

from core.errors import RegionError


def test_a_box_typed_or_pasted_is_read_as_four_numbers_never_evaluated():
    from core.bbox import parse_bbox

    camana = (-72.778645, -16.651663, -72.66865, -16.57553)
    for text in ("-72.778645, -16.651663, -72.66865, -16.57553", "[-72.778645,-16.651663,-72.66865,-16.57553]",
                 " (-72.778645; -16.651663; -72.66865; -16.57553) ", "-72.778645 -16.651663\t-72.66865 -16.57553"):
        assert parse_bbox(text) == camana, text
    assert parse_bbox("1e2, .5, +3, 4.") == (100.0, 0.5, 3.0, 4.0)
    with pytest.raises(RegionError, match="'1e400' is too large a number"):  # (infinity, silently cut to the image)
        parse_bbox("0, 0, 1e400, 10")
    for text, said in (("1, 2, 3", "not 3"), ("", "not 0"), ("1, 2, 3, 4, 5", "not 5"),
                       ("__import__('os'), 1, 2, 3", "'__import__('os')' is not a number"),
                       ("1, 2, 3, 4 * 2", "'*' is not a number"), ("nan, 1, 2, 3", "'nan' is not a number")):
        with pytest.raises(RegionError, match="a box is four numbers") as err:
            parse_bbox(text)
        assert said in str(err.value), (text, str(err.value))
    # the example in the box's own terms: an image's pixels (it was a lon/lat one on the sample scene)
    with pytest.raises(RegionError, match=r"left, top, right and bottom edges in pixels \(e.g. 100, 100, 400, 300\)"):
        parse_bbox("hello world", image=True)


def test_a_typed_box_is_put_in_order_and_cut_to_the_image():
    """Pixel edges in either order, south and north too; a box reaching past the image cut to it (the
    map zoomed out to the box, the image a corner of it); one wholly outside names the image's edges."""
    from core.errors import OutsideImageError
    from core.bbox import box_within

    image = (0.0, 0.0, 1024.0, 1024.0)
    assert box_within((400, 300, 100, 100), image, True) == ((100, 100, 400, 300), False)
    assert box_within((-50, -50, 5000, 5000), image, True) == (image, True)
    assert box_within((10.0, 48.2, 11.0, 48.1), None, False) == ((10.0, 48.1, 11.0, 48.2), False)
    with pytest.raises(OutsideImageError, match=r"outside the image, whose edges are 0, 0, 1024, 1024 \(left, top"):
        box_within((2000, 0, 2100, 100), image, True)
    with pytest.raises(RegionError, match="west edge, 11, lies east of its east edge, 10"):
        box_within((11.0, 48.1, 10.0, 48.2), None, False)
    with pytest.raises(RegionError, match="no width"):
        box_within((5, 1, 5, 9), image, True)


def test_a_box_outside_that_fits_with_its_numbers_swapped_is_said_to_be_latitude_first():
    from core.bbox import box_text, box_within
    from core.errors import OutsideImageError

    austria = (15.0, 47.5, 15.5, 48.0)  # west, south, east, north
    with pytest.raises(OutsideImageError, match=r"look like latitude, longitude: .* \(e.g. 15.1, 47.6, 15.2, 47.7\)"):
        box_within((47.6, 15.1, 47.7, 15.2), austria, False)
    with pytest.raises(OutsideImageError) as err:  # wholly elsewhere either way: no hint
        box_within((0.0, 0.0, 1.0, 1.0), austria, False)
    assert "latitude" not in str(err.value)
    with pytest.raises(OutsideImageError) as err:  # pixels have no order to mistake
        box_within((2000, 0, 2100, 100), (0.0, 0.0, 1024.0, 1024.0), True)
    assert "latitude" not in str(err.value)
    assert box_text((15.0, 47.5, 15.5, 48.0), False) == "15.000000, 47.500000, 15.500000, 48.000000"
    # pixels to 2 decimals, whole ones without ("10.4" was shown "10": the box typed as shown was another)
    assert box_text((0.0, 10.4, 1024.0, 512.0), True) == "0, 10.4, 1024, 512"
    assert box_text((-0.001, 7.255, 8.0, 9.999), True) == "0, 7.25, 8, 10"


def test_a_lon_lat_grid_stored_past_either_end_of_180_has_no_box_to_cut_to():
    """A grid stored from 180.003 W (-180.003) to 179.997 W: its edges were given as a box to cut a typed
    box to, and a box on the image (at 179.9985 E, the same place) was said to lie outside it, "whose
    edges are -180.003006, ...", numbers no box can hold. As for a grid stored past 180 E: none."""
    from core.bbox import image_box_bounds
    from core.grid import Grid

    for west in (179.997, -180.003):
        assert image_box_bounds(Grid("EPSG:4326", (0.0001, 0.0, west, 0.0, -0.0001, -17.0), 60, 60), image=False) is None
    inside = image_box_bounds(Grid("EPSG:4326", (0.0001, 0.0, 179.99, 0.0, -0.0001, -17.0), 60, 60), image=False)
    assert inside == pytest.approx((179.99, -17.006, 179.996, -17.0))


def test_a_box_of_no_height_or_only_touching_the_image_is_refused():
    from core.bbox import box_within
    from core.errors import OutsideImageError

    image = (0.0, 0.0, 1024.0, 1024.0)
    with pytest.raises(RegionError, match="no height: its two edges are the same"):
        box_within((1, 5, 9, 5), image, True)
    with pytest.raises(RegionError, match="no height"):
        box_within((10.0, 48.1, 11.0, 48.1), None, False)
    for touching in ((1024, 0, 2000, 100), (0, -100, 100, 0)):  # sharing only an edge with the image: no pixel of it
        with pytest.raises(OutsideImageError, match="outside the image"):
            box_within(touching, image, True)


def test_an_images_box_in_pixels_is_its_width_then_its_height_and_none_once_it_is_on_the_earth():
    from core.bbox import image_box_bounds
    from core.grid import Grid

    assert image_box_bounds(Grid(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 300, 200), image=True) == (0.0, 0.0, 300.0, 200.0)
    assert image_box_bounds(Grid("EPSG:32633", (30.0, 0.0, 500000.0, 0.0, -30.0, 5e6), 300, 200), image=True) is None


def test_a_number_followed_by_anything_is_not_a_number():
    from core.bbox import not_numbers, parse_bbox

    assert not_numbers("1a, 2, 3e, 4") == ["1a", "3e"]
    with pytest.raises(RegionError, match="'1a' is not a number"):
        parse_bbox("1a, 2, 3, 4")
