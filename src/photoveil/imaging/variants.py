"""Fixed-size versions of a published (already blurred) photo: 800x600, 400x300 and 200x150.

Each fills its box and is centre-cropped to it; a portrait photo gets the box turned (600x800...).
Nothing is ever enlarged: a photo smaller than a box gives the largest centred 4:3 (or 3:4) crop at its
own size. JPEG quality 80, progressive, no metadata (cv2.imencode writes a bare JFIF stream). Pure: bytes
in, bytes out, and the same bytes for the same input, so a repeated event rewrites identical objects.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from photoveil.errors import CorruptImageError
from photoveil.imaging.sizes import VARIANT_SIZES

QUALITY = 80
REDUCED_DECODES = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)


@dataclass(frozen=True)
class Variant:
    name: str  # the nominal size, "800x600", whatever the photo's orientation
    width: int
    height: int
    jpeg: bytes


def make_variants(jpeg: bytes) -> list[Variant]:
    """The variants of a published JPEG, largest first. Raises CorruptImageError if it does not decode."""
    pixels = _decode(jpeg)
    portrait = pixels.shape[0] > pixels.shape[1]
    variants, source = [], pixels
    for width, height in VARIANT_SIZES:  # each smaller one is made from the one before
        box = (height, width) if portrait else (width, height)
        source = _fill(source, *box)
        ok, buf = cv2.imencode(
            ".jpg", source, [cv2.IMWRITE_JPEG_QUALITY, QUALITY, cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
        )
        if not ok:
            raise CorruptImageError("could not encode a variant")
        variants.append(Variant(f"{width}x{height}", source.shape[1], source.shape[0], buf.tobytes()))
    return variants


def _decode(jpeg: bytes) -> np.ndarray:
    # The largest box needs at most 800 px: let libjpeg decode at 1/8, 1/4 or 1/2 scale (DCT scaling,
    # several times cheaper than a full 12 MP decode) when the result still fills it.
    flags = cv2.IMREAD_COLOR
    size = jpeg_size(jpeg)
    if size is not None:
        width, height = size
        for factor, flag in REDUCED_DECODES:
            if _covers(-(-height // factor), -(-width // factor), *VARIANT_SIZES[0]):
                flags = flag
                break
    pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), flags)
    if pixels is None:
        raise CorruptImageError("the published photo does not decode")
    return pixels


def jpeg_size(jpeg: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None if there is none before the image data."""
    pos = 2
    while pos + 9 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame segment
            height, width = struct.unpack(">HH", jpeg[pos + 5 : pos + 9])
            return width, height
        if marker == 0xDA:  # start of scan: no frame header came first
            return None
        pos += 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
    return None


def _covers(height: int, width: int, box_w: int, box_h: int) -> bool:
    """Whether an image of this size fills the box (turned for a portrait) without enlarging."""
    if height > width:
        box_w, box_h = box_h, box_w
    return width >= box_w and height >= box_h


def _fill(pixels: np.ndarray, box_w: int, box_h: int) -> np.ndarray:
    """The centred crop of ``pixels`` with the box's aspect, shrunk to the box if it is larger."""
    height, width = pixels.shape[:2]
    # Crop to the box's aspect ratio first (the largest such centred rectangle), then shrink.
    crop_w, crop_h = width, round(width * box_h / box_w)
    if crop_h > height:
        crop_w, crop_h = round(height * box_w / box_h), height
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    cropped = pixels[y0 : y0 + crop_h, x0 : x0 + crop_w]
    if crop_w <= box_w:
        return np.ascontiguousarray(cropped)  # never enlarged
    return cv2.resize(cropped, (box_w, box_h), interpolation=cv2.INTER_AREA)
