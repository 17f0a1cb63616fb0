"""The one core function: photo bytes in, a metadata-free JPEG with every face blurred out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from photoveil.errors import RegionOutsidePhotoError
from photoveil.imaging.blur import STYLES, blur_faces, blur_rectangles
from photoveil.imaging.faces import Detector, Face
from photoveil.imaging.image import DEFAULT_MAX_PIXELS, decode_jpeg, encode_jpeg, load_image
from photoveil.imaging.jpeg_rows import encode_rows
from photoveil.imaging.verify import reblur_until_clean


@dataclass(frozen=True)
class BlurResult:
    """The blurred JPEG, the faces found (oriented pixel frame) and seconds spent per stage."""

    jpeg: bytes
    faces: list[Face]
    width: int
    height: int
    timings: dict[str, float] = field(default_factory=dict)  # decode, detect, blur, encode[, verify]
    format: str = ""  # the input's sniffed format
    # Found again in the output by the verify step (photoveil.imaging.verify) and blurred again; and what it
    # still found after its last round (normally nothing).
    reblurred: list[Face] = field(default_factory=list)
    residual: list[Face] = field(default_factory=list)


def blur_photo(
    data: bytes,
    detector: Detector,
    *,
    style: str = "gaussian",
    quality: int = 85,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    verify: bool = True,
    regions: Sequence[Face] = (),
) -> BlurResult:
    """Decode, detect, blur, re-encode ``data``, then verify: blur again what is still found.

    ``regions``: rectangles (pixels of the oriented photo) to blur as well as the faces found, each
    sized as a face of its own; one that misses the photo raises RegionOutsidePhotoError.

    Raises InputError subclasses for unusable photos. Any detector exception propagates unchanged
    (fail closed): nothing is encoded when detection did not complete. ``verify=False`` skips the
    look for blurred faces in the output (photoveil.imaging.verify), which costs up to a second detection.
    """
    if style not in STYLES:  # before the expensive stages, not after them
        raise ValueError(f"unknown blur style {style!r}: expected one of {', '.join(STYLES)}")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    image = load_image(data, max_pixels=max_pixels)
    mark = time.perf_counter()
    timings["decode"] = mark - start

    faces = list(detector.detect(image.pixels))
    now = time.perf_counter()
    timings["detect"], mark = now - mark, now

    # The decoded array is ours alone, so the blur works in place (no second 12 MP copy).
    blurred = blur_faces(image.pixels, faces, style=style)
    if regions:
        _check_inside(regions, image.width, image.height)
        blur_rectangles(blurred, regions, style=style)
    now = time.perf_counter()
    timings["blur"], mark = now - mark, now

    jpeg = encode_rows(blurred, quality=quality)  # cut in rows: verify re-encodes only those it changes
    now = time.perf_counter()
    timings["encode"], mark = now - mark, now

    reblurred: list[Face] = []
    residual: list[Face] = []
    if verify:
        jpeg, reblurred, residual = reblur_until_clean(
            blurred, jpeg, faces, detector, style=style, quality=quality
        )
        timings["verify"] = time.perf_counter() - mark
    return BlurResult(
        jpeg=jpeg,
        faces=faces,
        width=image.width,
        height=image.height,
        timings=timings,
        format=image.format,
        reblurred=reblurred,
        residual=residual,
    )


def _check_inside(regions: Sequence[Face], width: int, height: int) -> None:
    for r in regions:
        if (
            min(r.x1, r.x2) >= width
            or min(r.y1, r.y2) >= height
            or max(r.x1, r.x2) <= 0
            or max(r.y1, r.y2) <= 0
        ):
            raise RegionOutsidePhotoError(
                f"region {r.x1:g},{r.y1:g},{r.x2:g},{r.y2:g} lies outside the {width}x{height} photo"
            )


def blur_more(
    jpeg: bytes, regions: Sequence[tuple[float, float, float, float]], *, style: str, quality: int = 85
) -> bytes:
    """A published photo with more of it blurred: ``regions`` are (x, y, width, height) fractions of it.

    Works on the published JPEG (the original is gone by design), with the face rules sized by each
    rectangle; the result is encoded like any published photo (no metadata).
    """
    pixels = decode_jpeg(jpeg)
    height, width = pixels.shape[:2]
    rectangles = [
        Face(x * width, y * height, (x + w) * width, (y + h) * height, 1.0) for x, y, w, h in regions
    ]
    blur_rectangles(pixels, rectangles, style=style)
    return encode_jpeg(pixels, quality=quality)
