"""The fixed-size variants of a published photo: sizes, crops, no enlarging, the JPEG they are written as."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from photoveil.errors import CorruptImageError
from photoveil.imaging.sizes import VARIANT_NAMES
from photoveil.imaging.variants import jpeg_size, make_variants


def _jpeg(width: int, height: int) -> bytes:
    """A smooth photo-like JPEG (two gradients)."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.dstack([(x * 255 // max(width, 1)), (y * 255 // max(height, 1)), np.full_like(x, 128)])
    pixels = pixels.astype(np.uint8)
    return cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def _sizes(jpeg: bytes) -> dict[str, tuple[int, int]]:
    return {v.name: (v.width, v.height) for v in make_variants(jpeg)}


def _luminance_dc_quantiser(jpeg: bytes) -> int:
    """The first entry of the first quantisation table (libjpeg: 16 at quality 50, 6 at quality 80)."""
    pos = jpeg.index(b"\xff\xdb")
    return jpeg[pos + 5]


def _markers(jpeg: bytes) -> list[int]:
    """The JPEG's marker codes up to the first scan."""
    markers, pos = [], 2
    while pos < len(jpeg):
        markers.append(jpeg[pos + 1])
        if jpeg[pos + 1] == 0xDA:
            return markers
        pos += 2 + int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
    return markers


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (4032, 3024, {"800x600": (800, 600), "400x300": (400, 300), "200x150": (200, 150)}),  # phone, 4:3
        (
            3024,
            4032,
            {"800x600": (600, 800), "400x300": (300, 400), "200x150": (150, 200)},
        ),  # portrait: turned
        (1920, 1080, {"800x600": (800, 600), "400x300": (400, 300), "200x150": (200, 150)}),  # 16:9, cropped
        (1000, 1000, {"800x600": (800, 600), "400x300": (400, 300), "200x150": (200, 150)}),  # square
        (800, 600, {"800x600": (800, 600), "400x300": (400, 300), "200x150": (200, 150)}),  # exactly a box
    ],
)
def test_each_variant_fills_its_box(width: int, height: int, expected: dict[str, tuple[int, int]]) -> None:
    assert _sizes(_jpeg(width, height)) == expected


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        # Smaller than a box: the largest centred 4:3 crop at the photo's own size, never enlarged.
        (300, 200, {"800x600": (267, 200), "400x300": (267, 200), "200x150": (200, 150)}),
        (120, 90, {"800x600": (120, 90), "400x300": (120, 90), "200x150": (120, 90)}),
        (500, 700, {"800x600": (500, 667), "400x300": (300, 400), "200x150": (150, 200)}),
    ],
)
def test_small_photos_are_never_enlarged(
    width: int, height: int, expected: dict[str, tuple[int, int]]
) -> None:
    sizes = _sizes(_jpeg(width, height))
    assert sizes == expected
    assert all(w <= width and h <= height for w, h in sizes.values())


def test_the_crop_is_centred() -> None:
    # A wide photo with a white band in its middle third: the 4:3 crop keeps the band in the middle.
    pixels = np.zeros((600, 1600, 3), np.uint8)
    pixels[:, 700:900] = 255
    jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    large = make_variants(jpeg)[0]
    out = cv2.imdecode(np.frombuffer(large.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    columns = out.mean(axis=0)
    bright = np.nonzero(columns > 128)[0]
    # The crop is x 400..1200 of the original (800 wide), so the band sits at 300..500 of it.
    assert abs(bright.min() - 300) <= 3 and abs(bright.max() - 499) <= 3


def test_variants_are_progressive_quality_80_jpegs_without_metadata() -> None:
    for variant in make_variants(_jpeg(1600, 1200)):
        markers = _markers(variant.jpeg)
        assert 0xC2 in markers and 0xC0 not in markers  # progressive, not baseline
        assert not {m for m in markers if 0xE1 <= m <= 0xEF}  # no EXIF, XMP, ICC...: only JFIF (APP0)
        assert jpeg_size(variant.jpeg) == (variant.width, variant.height)
        assert _luminance_dc_quantiser(variant.jpeg) == 6  # libjpeg's table scaled for quality 80


def test_the_same_photo_gives_the_same_bytes() -> None:
    jpeg = _jpeg(2000, 1500)
    assert make_variants(jpeg) == make_variants(jpeg)


def test_names_are_the_nominal_sizes() -> None:
    assert VARIANT_NAMES == ("800x600", "400x300", "200x150")
    assert tuple(v.name for v in make_variants(_jpeg(3024, 4032))) == VARIANT_NAMES


def test_what_does_not_decode_raises_a_corrupt_image_error() -> None:
    with pytest.raises(CorruptImageError):
        make_variants(b"\xff\xd8\xff\xe0 not really a jpeg")
