"""photoveil.imaging.geometry: detector boxes -> enlarged, clipped blur regions."""

from __future__ import annotations

import math

import pytest

from photoveil.imaging.faces import Face
from photoveil.imaging.geometry import HEIGHT_SCALE, MIN_FEATHER_FRAC, WIDTH_SCALE, Region, face_regions


def inside(region: Region, x: float, y: float) -> bool:
    """Is (x, y) inside the region's full-strength ellipse?"""
    return ((x - region.cx) / region.rx) ** 2 + ((y - region.cy) / region.ry) ** 2 <= 1.0


def test_region_is_enlarged_and_reaches_above_the_box() -> None:
    (region,) = face_regions([Face(100, 100, 200, 220, 0.9)], 1000, 1000)
    assert region.rx == pytest.approx(WIDTH_SCALE * 100 / 2)
    assert region.ry == pytest.approx(HEIGHT_SCALE * 120 / 2)
    assert region.cx == pytest.approx(150)
    assert region.cy < 160  # moved up: forehead and hair
    assert inside(region, 150, 100 - 0.25 * 120)  # well above the detector box's top edge
    assert region.size == 120


def test_central_part_of_the_box_is_fully_covered() -> None:
    # The middle 60 % of the box (eyes, nose, mouth) must be inside the full-strength ellipse.
    (region,) = face_regions([Face(100, 100, 200, 200, 0.9)], 1000, 1000)
    for x in (120, 180):
        for y in (120, 180):
            assert inside(region, x, y)


def test_bounds_contain_the_ellipse_and_its_feather() -> None:
    (region,) = face_regions([Face(400, 300, 500, 420, 0.9)], 1000, 1000)
    outer_x = region.rx * (1 + region.feather)
    outer_y = region.ry * (1 + region.feather)
    assert region.x1 <= region.cx - outer_x and region.x2 >= region.cx + outer_x
    assert region.y1 <= region.cy - outer_y and region.y2 >= region.cy + outer_y


@pytest.mark.parametrize(
    "face",
    [
        Face(-50, -40, 60, 70, 0.9),  # over the top-left corner
        Face(950, 950, 1080, 1100, 0.9),  # over the bottom-right corner
        Face(-30, 400, 40, 480, 0.9),  # over the left edge
    ],
)
def test_boxes_partly_off_the_image_are_clipped(face: Face) -> None:
    (region,) = face_regions([face], 1000, 1000)
    assert 0 <= region.x1 < region.x2 <= 1000
    assert 0 <= region.y1 < region.y2 <= 1000
    # the ellipse itself is not clipped: the on-image part of the face keeps its full-size blur
    assert region.rx == pytest.approx(WIDTH_SCALE * face.width / 2)


@pytest.mark.parametrize(
    "face",
    [
        Face(-500, -500, -300, -300, 0.9),
        Face(2000, 10, 2100, 110, 0.9),
        Face(10, 1500, 110, 1600, 0.9),
    ],
)
def test_boxes_wholly_off_the_image_yield_nothing(face: Face) -> None:
    assert face_regions([face], 1000, 1000) == []


@pytest.mark.parametrize("face", [Face(10, 10, 10, 50, 0.9), Face(10, 10, 50, 10, 0.9)])
def test_zero_area_boxes_yield_nothing(face: Face) -> None:
    assert face_regions([face], 100, 100) == []


def test_reversed_corners_are_swapped_not_dropped() -> None:
    (reversed_region,) = face_regions([Face(200, 220, 100, 100, 0.9)], 1000, 1000)
    (normal_region,) = face_regions([Face(100, 100, 200, 220, 0.9)], 1000, 1000)
    assert reversed_region == normal_region


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_boxes_raise_instead_of_vanishing(bad: float) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        face_regions([Face(bad, 10, 50, 50, 0.9)], 100, 100)


def test_tiny_faces_still_get_a_feather_of_at_least_two_pixels() -> None:
    (region,) = face_regions([Face(50, 50, 53, 53, 0.9)], 100, 100)
    assert min(region.rx, region.ry) * region.feather >= 2.0 - 1e-9


def test_small_faces_in_large_photos_get_a_feather_sized_by_the_photo() -> None:
    # A 40 px face on a 12 MP photo: an 8 % band would be a ~2 px step (a sharp oval outline).
    (region,) = face_regions([Face(2000, 1500, 2040, 1540, 0.9)], 4032, 3024)
    assert min(region.rx, region.ry) * region.feather >= MIN_FEATHER_FRAC * 4032 - 1e-6 > 20
    # The same face on a small photo keeps a narrow band (each feathered pixel is collateral).
    (small,) = face_regions([Face(200, 150, 240, 190, 0.9)], 500, 375)
    assert min(small.rx, small.ry) * small.feather < 4


def test_one_region_per_face_in_order() -> None:
    faces = [Face(10, 10, 30, 30, 0.9), Face(60, 60, 90, 90, 0.8)]
    regions = face_regions(faces, 100, 100)
    assert [round(r.cx) for r in regions] == [20, 75]
