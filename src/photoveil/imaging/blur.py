"""Blur faces in place: a strong, size-scaled effect over a feathered ellipse per face.

Cost stays small for huge faces because the effect is computed on a DOWNSCALED copy of the face's
region and scaled back: a Gaussian of sigma S at full resolution looks the same as sigma S/k on a
copy shrunk k times, at ~k^2 less work (docs/decisions/0003-blur-on-a-downscaled-copy.md). Only the
final blend runs at full resolution, and only inside the region's rectangle; every pixel whose
mask weight is 0 (everything outside each region's outer ellipse) keeps its exact value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np

from photoveil.imaging.faces import Face
from photoveil.imaging.geometry import Region, face_regions, rectangle_regions

STYLES = ("gaussian", "pixelate", "solid")
# Gaussian sigma as a share of the face size (max side of the detector box). At 0.5 every point
# is averaged over the whole face: features are gone, and CenterFace re-run on the output scores
# what is left far lower, at no cost in collateral (docs/decisions/0004-blur-strength-and-feather.md).
SIGMA_RATIO = 0.5
MIN_SIGMA = 2.0
# ... and at least this share of the photo's long side (40 px on a 12 MP photo, 5 px on a 500 px one).
# A face of ~1 % of the side in a large photo is a smooth blob of a few dozen pixels, which sigma
# 0.5 x its size leaves too close to the original
# (docs/decisions/0005-floors-for-small-faces-in-large-photos.md).
MIN_SIGMA_FRAC = 0.01
# Sigma, in pixels of the downscaled copy, at which the work is done (3 px is smooth enough that
# bilinear upscaling shows no steps).
WORK_SIGMA = 3.0
# Pixelate: about this many blocks across the face (more, smaller blocks leave it recognisable).
PIXELATE_BLOCKS = 7
SOLID_BGR = (64, 64, 64)


def blur_faces(pixels: np.ndarray, faces: Iterable[Face], style: str = "gaussian") -> np.ndarray:
    """Blur every face in ``pixels`` (BGR uint8 HxWx3) IN PLACE and return the same array.

    Regions come from ``photoveil.imaging.geometry.face_regions``; overlapping faces are applied one after
    the other. Pixels outside every region's outer ellipse are left bit-for-bit unchanged.
    """
    _check(pixels, style)
    height, width = pixels.shape[:2]
    return blur_regions(pixels, face_regions(faces, width, height), style)


def blur_rectangles(pixels: np.ndarray, rectangles: Iterable[Face], style: str = "gaussian") -> np.ndarray:
    """Blur areas chosen by hand, IN PLACE, with the style and strength rules of faces sized by each
    rectangle (``photoveil.imaging.geometry.rectangle_regions``). Pixels outside them are left unchanged."""
    _check(pixels, style)
    height, width = pixels.shape[:2]
    return blur_regions(pixels, rectangle_regions(rectangles, width, height), style)


def _check(pixels: np.ndarray, style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown blur style {style!r}: expected one of {', '.join(STYLES)}")
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected BGR uint8 HxWx3 pixels, got {pixels.dtype} {pixels.shape}")


def blur_regions(pixels: np.ndarray, regions: Iterable[Region], style: str) -> np.ndarray:
    """Apply the effect over each region in turn, IN PLACE; returns ``pixels``."""
    long_side = max(pixels.shape[:2])
    for region in regions:
        roi = pixels[region.y1 : region.y2, region.x1 : region.x2]
        effect = _EFFECTS[style](roi, region, long_side)
        alpha = ellipse_mask(region) if region.shape == "ellipse" else rectangle_mask(region)
        # blendLinear normalises by (w1 + w2 + 1e-5): where alpha == 0 the original value rounds back to
        # itself exactly, so untouched pixels really are untouched.
        roi[...] = cv2.blendLinear(effect, roi, alpha, 1.0 - alpha)
    return pixels


def ellipse_mask(region: Region) -> np.ndarray:
    """Weights (float32, region.height x region.width): 1 inside the ellipse, fading to 0 outside."""
    xs = (np.arange(region.x1, region.x2, dtype=np.float32) + 0.5 - region.cx) / region.rx
    ys = (np.arange(region.y1, region.y2, dtype=np.float32) + 0.5 - region.cy) / region.ry
    radius = np.square(xs)[None, :] + np.square(ys)[:, None]
    np.sqrt(radius, out=radius)
    # 1 at radius <= 1, 0 at radius >= 1 + feather, linear in between.
    radius -= 1.0 + region.feather
    radius *= -1.0 / region.feather
    return np.clip(radius, 0.0, 1.0, out=radius)


def rectangle_mask(region: Region) -> np.ndarray:
    """Weights (float32): 1 inside the rectangle, fading to 0 over the feather band round it."""
    xs = np.abs(np.arange(region.x1, region.x2, dtype=np.float32) + 0.5 - region.cx) / region.rx
    ys = np.abs(np.arange(region.y1, region.y2, dtype=np.float32) + 0.5 - region.cy) / region.ry
    distance = np.maximum(xs[None, :], ys[:, None])  # 1 on the rectangle's edge
    distance -= 1.0 + region.feather
    distance *= -1.0 / region.feather
    return np.clip(distance, 0.0, 1.0, out=distance)


def _downscale(roi: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return roi
    height, width = roi.shape[:2]
    if min(height, width) < factor:
        return cv2.resize(roi, (1, 1), interpolation=cv2.INTER_AREA)
    # An integer factor takes OpenCV's fast INTER_AREA path (a box mean of factor x factor blocks)
    # (docs/decisions/0003-blur-on-a-downscaled-copy.md).
    return cv2.resize(roi, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)


def _gaussian(roi: np.ndarray, region: Region, long_side: int) -> np.ndarray:
    sigma = max(MIN_SIGMA, SIGMA_RATIO * region.size, MIN_SIGMA_FRAC * long_side)
    factor = max(1, math.floor(sigma / WORK_SIGMA))
    small = _downscale(roi, factor)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / factor, borderType=cv2.BORDER_REPLICATE)
    if small.shape[:2] == roi.shape[:2]:
        return small
    # Bicubic: a bilinear enlargement of a copy a few pixels across leaves a kink every `factor` px,
    # detail enough to fail the privacy measure on a smooth 12 MP face (docs/decisions/0017).
    return cv2.resize(small, (region.width, region.height), interpolation=cv2.INTER_CUBIC)


def _pixelate(roi: np.ndarray, region: Region, long_side: int) -> np.ndarray:
    block = max(2, round(region.size / PIXELATE_BLOCKS))
    small = _downscale(roi, block)
    return cv2.resize(small, (region.width, region.height), interpolation=cv2.INTER_NEAREST)


def _solid(roi: np.ndarray, region: Region, long_side: int) -> np.ndarray:
    return np.full_like(roi, SOLID_BGR)


_EFFECTS = {"gaussian": _gaussian, "pixelate": _pixelate, "solid": _solid}
