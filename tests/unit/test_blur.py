"""photoveil.imaging.blur: strong blur inside each face's ellipse, bit-exact pixels everywhere else."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from photoveil.imaging.blur import SOLID_BGR, STYLES, blur_faces, blur_rectangles, ellipse_mask
from photoveil.imaging.faces import Face
from photoveil.imaging.geometry import face_regions, rectangle_regions

# Where the astronaut's face is in astronaut.png (512x512), by eye and by CenterFace.
ASTRONAUT_FACE = Face(170, 40, 270, 160, 0.99)


@pytest.fixture(scope="module")
def astronaut(astronaut_path: Path) -> np.ndarray:
    return cv2.imread(str(astronaut_path), cv2.IMREAD_COLOR)


def mask_of(faces: list[Face], shape: tuple[int, ...]) -> np.ndarray:
    """True where any region's ellipse (with feather) has a non-zero weight."""
    mask = np.zeros(shape[:2], bool)
    for r in face_regions(faces, shape[1], shape[0]):
        mask[r.y1 : r.y2, r.x1 : r.x2] |= ellipse_mask(r) > 0
    return mask


def sharpness(pixels: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var())


@pytest.mark.parametrize("style", STYLES)
def test_pixels_outside_every_mask_are_bit_for_bit_unchanged(astronaut: np.ndarray, style: str) -> None:
    faces = [ASTRONAUT_FACE, Face(20, 300, 90, 380, 0.8)]
    out = blur_faces(astronaut.copy(), faces, style)
    outside = ~mask_of(faces, astronaut.shape)
    assert np.array_equal(out[outside], astronaut[outside])


@pytest.mark.parametrize("style", STYLES)
def test_the_face_itself_is_changed_and_its_detail_destroyed(astronaut: np.ndarray, style: str) -> None:
    out = blur_faces(astronaut.copy(), [ASTRONAUT_FACE], style)
    f = ASTRONAUT_FACE
    core = (
        slice(int(f.y1 + 0.2 * f.height), int(f.y2 - 0.2 * f.height)),
        slice(int(f.x1 + 0.2 * f.width), int(f.x2 - 0.2 * f.width)),
    )
    changed = np.abs(out[core].astype(int) - astronaut[core].astype(int)).max(axis=2) > 8
    assert changed.mean() > 0.8
    if style == "gaussian":
        assert sharpness(out[core]) < 0.05 * sharpness(astronaut[core])


def test_blur_is_in_place_and_returns_the_same_array(astronaut: np.ndarray) -> None:
    pixels = astronaut.copy()
    assert blur_faces(pixels, [ASTRONAUT_FACE]) is pixels
    assert not np.array_equal(pixels, astronaut)


def test_no_faces_changes_nothing(astronaut: np.ndarray) -> None:
    assert np.array_equal(blur_faces(astronaut.copy(), []), astronaut)


def test_blur_keeps_flat_colour_exactly() -> None:
    # No brightness or colour drift: blurring a flat area must give the same flat area.
    flat = np.full((200, 300, 3), (12, 150, 240), np.uint8)
    assert np.array_equal(blur_faces(flat.copy(), [Face(50, 50, 150, 170, 0.9)]), flat)


def test_strength_scales_with_face_size() -> None:
    # A fine checkerboard: any surviving detail is easy to measure. Bigger face -> wider blur, so
    # the blurred-out zone of a large face is flat far from its edge.
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (900, 900, 3), dtype=np.uint8)
    small = blur_faces(noise.copy(), [Face(100, 100, 140, 140, 0.9)])
    large = blur_faces(noise.copy(), [Face(300, 300, 700, 700, 0.9)])
    assert small[110:130, 110:130].std() < 0.25 * noise.std()
    assert large[400:600, 400:600].std() < 0.05 * noise.std()


@pytest.mark.parametrize(
    "face",
    [Face(-60, -80, 80, 90, 0.9), Face(440, 430, 600, 620, 0.9), Face(-20, 200, 50, 280, 0.9)],
)
def test_boxes_off_the_edge_blur_the_part_on_the_image(astronaut: np.ndarray, face: Face) -> None:
    out = blur_faces(astronaut.copy(), [face])
    mask = mask_of([face], astronaut.shape)
    assert mask.any()
    assert np.array_equal(out[~mask], astronaut[~mask])
    assert (out[mask] != astronaut[mask]).any()


def test_box_wholly_off_the_image_changes_nothing(astronaut: np.ndarray) -> None:
    out = blur_faces(astronaut.copy(), [Face(600, 600, 700, 700, 0.9), Face(-150, 10, -80, 90, 0.9)])
    assert np.array_equal(out, astronaut)


def test_overlapping_faces_are_all_blurred(astronaut: np.ndarray) -> None:
    faces = [Face(170, 40, 270, 160, 0.9), Face(200, 80, 300, 200, 0.7)]
    out = blur_faces(astronaut.copy(), faces)
    outside = ~mask_of(faces, astronaut.shape)
    assert np.array_equal(out[outside], astronaut[outside])
    for f in faces:
        core = astronaut[int(f.y1) + 30 : int(f.y2) - 30, int(f.x1) + 30 : int(f.x2) - 30]
        blurred = out[int(f.y1) + 30 : int(f.y2) - 30, int(f.x1) + 30 : int(f.x2) - 30]
        assert sharpness(blurred) < 0.1 * sharpness(core)


def test_face_bigger_than_the_image(astronaut: np.ndarray) -> None:
    out = blur_faces(astronaut.copy(), [Face(-200, -200, 700, 700, 0.9)])
    assert sharpness(out) < 0.01 * sharpness(astronaut)


def test_small_faces_in_a_large_photo_are_smeared_by_the_photos_scale() -> None:
    # A 40 px face on a 12 MP photo whose detail is face-sized (an upscaled photo, as a phone's
    # small faces are): sigma follows the photo (1 % of its side, 40 px), not only the face
    # (0.5 x 40 = 20 px, which left the centre at 0.66 of its contrast and changed it by ~19 levels).
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, (76, 101, 3), dtype=np.uint8)
    pixels = cv2.resize(coarse, (4032, 3024), interpolation=cv2.INTER_CUBIC)
    core = (slice(1508, 1532), slice(2008, 2032))
    before = pixels[core].astype(int)
    blur_faces(pixels, [Face(2000, 1500, 2040, 1540, 0.9)])
    assert pixels[core].std() < 0.5 * before.std()
    assert np.abs(pixels[core] - before).mean() > 30


def test_huge_face_on_a_12_megapixel_photo() -> None:
    # The downscaled path: an 800 px face must still be blurred over its whole ellipse.
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (3024, 4032, 3), dtype=np.uint8)
    face = Face(1600, 1200, 2400, 2000, 0.9)
    before = pixels[1400:1800, 1800:2200].copy()
    blur_faces(pixels, [face])
    assert pixels[1400:1800, 1800:2200].std() < 0.05 * before.std()


def test_unknown_style_and_bad_arrays_are_rejected(astronaut: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown blur style"):
        blur_faces(astronaut.copy(), [ASTRONAUT_FACE], "swirl")
    with pytest.raises(ValueError, match="BGR uint8"):
        blur_faces(astronaut.astype(np.float32), [ASTRONAUT_FACE])


def test_solid_fills_the_core_with_one_colour(astronaut: np.ndarray) -> None:
    out = blur_faces(astronaut.copy(), [ASTRONAUT_FACE], "solid")
    core = out[80:120, 200:240].reshape(-1, 3)
    assert (core == core[0]).all()


def test_pixelate_makes_blocks(astronaut: np.ndarray) -> None:
    out = blur_faces(astronaut.copy(), [ASTRONAUT_FACE], "pixelate")
    core = out[90:110, 205:235]
    # far fewer distinct colours than the original region
    assert len(np.unique(core.reshape(-1, 3), axis=0)) < 0.2 * len(
        np.unique(astronaut[90:110, 205:235].reshape(-1, 3), axis=0)
    )


def test_a_rectangle_is_blurred_at_full_strength_to_its_corners_and_not_beyond_its_band() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (400, 600, 3), dtype=np.uint8)
    before = pixels.copy()
    rect = Face(100, 80, 300, 200, 1.0)
    blur_rectangles(pixels, [rect], style="solid")
    (region,) = rectangle_regions([rect], 600, 400)
    assert region.shape == "rectangle"
    # Full strength right into the corners (an ellipse would leave them), untouched beyond the band.
    assert (pixels[80:200, 100:300] == SOLID_BGR).all()
    outside = np.ones((400, 600), bool)
    outside[region.y1 : region.y2, region.x1 : region.x2] = False
    assert np.array_equal(pixels[outside], before[outside])


def test_rectangles_are_clipped_to_the_photo_and_non_finite_ones_refused() -> None:
    (region,) = rectangle_regions([Face(-50, -50, 40, 30, 1.0)], 600, 400)
    assert (region.x1, region.y1) == (0, 0) and region.cx == 20 and region.cy == 15
    assert rectangle_regions([Face(700, 10, 800, 50, 1.0)], 600, 400) == []
    with pytest.raises(ValueError, match="non-finite"):
        rectangle_regions([Face(float("nan"), 0, 10, 10, 1.0)], 600, 400)
