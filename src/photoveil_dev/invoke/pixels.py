"""Whether a published photo is the original with its faces blurred, judged from the pixels rather than
from what the worker says it did (its job's face count): inside each face the photo changed a lot, and
outside the blurred regions only by JPEG's re-encoding."""

from __future__ import annotations

from functools import cache

import numpy as np

from photoveil.imaging.detectors.centerface import CenterFaceDetector
from photoveil.imaging.faces import Face
from photoveil.imaging.geometry import face_regions
from photoveil.imaging.image import load_image

# Re-encoding a whole photo as JPEG changes it a little everywhere (tests/e2e: the astronaut at quality 85
# by 2.7 on average, 0-255 scale); a blurred face changes by tens.
JPEG_NOISE = 5.0
# The middle of a face box: its edges are where the blur fades, and a detector's box is a few px off.
FACE_CORE = 0.2  # the share of each side left out


class BlurCheckError(AssertionError):
    """The published photo is not the original with its faces blurred."""


@cache
def _detector() -> CenterFaceDetector:
    """The in-process detector, made once (loading its model takes a second)."""
    return CenterFaceDetector(threads=1)


def faces_in(photo: bytes) -> list[Face]:
    """The faces this machine's detector finds in PHOTO (natively, whatever the containers did)."""
    return _detector().detect(load_image(photo).pixels)


def blur_verdict(original: np.ndarray, published: np.ndarray, faces: list[Face]) -> str:
    """What changed between ORIGINAL and PUBLISHED (BGR, same frame); BlurCheckError unless each of FACES
    changed by more than 4x JPEG_NOISE and the photo outside their blur regions by less than JPEG_NOISE."""
    if original.shape != published.shape:
        raise BlurCheckError(f"published {published.shape[:2]}, original {original.shape[:2]}")
    if not faces:
        raise BlurCheckError("no face in the original to look at")
    change = np.abs(published.astype(np.int16) - original.astype(np.int16))
    height, width = original.shape[:2]
    inside = min(float(change[_core(face, width, height)].mean()) for face in faces)
    outside_mask = np.ones((height, width), bool)
    for region in face_regions(faces, width, height):
        outside_mask[max(0, region.y1 - 2) : region.y2 + 2, max(0, region.x1 - 2) : region.x2 + 2] = False
    outside = float(change[outside_mask].mean()) if outside_mask.any() else 0.0
    if inside <= 4 * JPEG_NOISE:
        raise BlurCheckError(f"a face changed by only {inside:.1f} on average: not blurred")
    if outside >= JPEG_NOISE:
        raise BlurCheckError(f"the photo outside the faces changed by {outside:.1f} on average")
    return f"pixels: each face changed by >= {inside:.0f}, the rest by {outside:.1f} (JPEG noise)"


def _core(face: Face, width: int, height: int) -> tuple[slice, slice]:
    dx, dy = FACE_CORE * face.width, FACE_CORE * face.height
    x1, x2 = max(0, round(face.x1 + dx)), min(width, round(face.x2 - dx))
    y1, y2 = max(0, round(face.y1 + dy)), min(height, round(face.y2 - dy))
    return slice(y1, max(y2, y1 + 1)), slice(x1, max(x2, x1 + 1))


def check_blurred(original: bytes, published: bytes) -> str:
    """blur_verdict of two encoded photos, the faces found in ORIGINAL by this machine's detector."""
    before, after = load_image(original).pixels, load_image(published).pixels
    return blur_verdict(before, after, faces_in(original))
