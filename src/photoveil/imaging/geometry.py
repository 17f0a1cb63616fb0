"""Detector boxes -> the pixel regions that get blurred.

Box format, named once: a ``Face`` is ``(x1, y1, x2, y2)`` pixel corners in the ORIENTED image's
frame, x2/y2 exclusive, floats, possibly partly or wholly outside the image (detectors and
Rekognition both return such boxes).

A ``Region`` is an ellipse around the face, larger than the box (a detector box stops at the
eyebrows or hairline; forehead, hair and ears identify people too), plus a feather band outside it,
and the clipped integer rectangle that contains both. Pixels outside that rectangle are never touched.
Models: deface ``scale_bb`` (enlarge the box) and face_recognition ``_trim_css_to_bounds`` (clip).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from photoveil.imaging.faces import Face

# Enlargement of the detector box. Width x1.3 as deface does; height x1.45 with the extra mostly
# above the box (forehead and hair): the centre moves up by 0.1 of the box height.
WIDTH_SCALE = 1.3
HEIGHT_SCALE = 1.45
CENTER_SHIFT_UP = 0.1
# Feather band outside the full-strength ellipse: its outer edge is the ellipse scaled by
# (1 + FEATHER); at least 2 px wide on the shorter axis. Narrow, because every feathered pixel
# counts as collateral (docs/decisions/0004-blur-strength-and-feather.md).
FEATHER = 0.05
# ... and at least this share of the photo's long side wide (24 px on a 12 MP photo, 3 px on a 500 px
# one): a 5-8 % band round a 40 px face in a large photo is a 1-2 px step, a sharp oval outline that both
# the privacy metric and CenterFace pick up (docs/decisions/0005-floors-for-small-faces-in-large-photos.md).
MIN_FEATHER_FRAC = 0.006


@dataclass(frozen=True, slots=True)
class Region:
    """An elliptical blur region in image pixels.

    ``cx, cy, rx, ry``: the full-strength ellipse (centre and semi-axes, unclipped, may leave the
    image). ``feather``: the effect fades to nothing between that ellipse and the same ellipse
    scaled by ``1 + feather``. ``x1, y1, x2, y2``: integer bounds of that outer ellipse clipped to
    the image (x2/y2 exclusive);
    never empty. ``size``: the face's size in px (max side of the detector box), which sets the
    blur strength. ``shape``: "ellipse" round a face, or "rectangle" for an area chosen by hand
    (``cx, cy, rx, ry`` are then its centre and half-sides).
    """

    cx: float
    cy: float
    rx: float
    ry: float
    feather: float
    x1: int
    y1: int
    x2: int
    y2: int
    size: float
    shape: str = "ellipse"

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1


def _corners(box: Face, what: str) -> tuple[float, float, float, float]:
    """``box``'s corners as x1 <= x2, y1 <= y2 (given in either order); ValueError when one is not
    finite: a box we cannot place must not be silently dropped (fail closed)."""
    coords = (box.x1, box.y1, box.x2, box.y2)
    if not all(math.isfinite(c) for c in coords):
        raise ValueError(f"{what} has a non-finite coordinate: {coords}")
    x1, x2 = sorted((float(box.x1), float(box.x2)))
    y1, y2 = sorted((float(box.y1), float(box.y2)))
    return x1, y1, x2, y2


def face_regions(faces: Iterable[Face], width: int, height: int) -> list[Region]:
    """Enlarged, clipped blur regions for ``faces`` in a ``width`` x ``height`` image.

    Corners given in the wrong order are swapped; boxes with no area, or whose region lies wholly
    outside the image, yield no region. A non-finite coordinate raises ValueError: a box we cannot
    place must not be silently dropped (fail closed).
    """
    regions = []
    for face in faces:
        x1, y1, x2, y2 = _corners(face, "face box")
        w, h = x2 - x1, y2 - y1
        if w <= 0 or h <= 0:
            continue
        # At least half a pixel: a sub-pixel box (1e-300 tall) would otherwise overflow the mask maths.
        rx = max(WIDTH_SCALE * w / 2, 0.5)
        ry = max(HEIGHT_SCALE * h / 2, 0.5)
        cx = (x1 + x2) / 2
        cy = (y1 + y2) / 2 - CENTER_SHIFT_UP * h
        region = _placed(cx, cy, rx, ry, max(w, h), width, height, "ellipse")
        if region is not None:
            regions.append(region)
    return regions


def rectangle_regions(rectangles: Iterable[Face], width: int, height: int) -> list[Region]:
    """Blur regions for areas chosen by hand (same box format as a Face): each rectangle itself at full
    strength, with the feather band of a face region round it, clipped to the image."""
    regions = []
    for rect in rectangles:
        x1, y1, x2, y2 = _corners(rect, "rectangle")
        x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
        w, h = x2 - x1, y2 - y1
        if w <= 0 or h <= 0:
            continue
        rx, ry = max(w / 2, 0.5), max(h / 2, 0.5)
        region = _placed((x1 + x2) / 2, (y1 + y2) / 2, rx, ry, max(w, h), width, height, "rectangle")
        if region is not None:
            regions.append(region)
    return regions


def _placed(
    cx: float, cy: float, rx: float, ry: float, size: float, width: int, height: int, shape: str
) -> Region | None:
    """The region with its feather band and clipped bounds; None if it lies wholly outside the image."""
    feather = max(FEATHER, max(2.0, MIN_FEATHER_FRAC * max(width, height)) / min(rx, ry))
    outer_x, outer_y = rx * (1 + feather), ry * (1 + feather)
    bx1 = max(0, math.floor(cx - outer_x))
    by1 = max(0, math.floor(cy - outer_y))
    bx2 = min(width, math.ceil(cx + outer_x))
    by2 = min(height, math.ceil(cy + outer_y))
    if bx2 <= bx1 or by2 <= by1:
        return None
    return Region(cx, cy, rx, ry, feather, bx1, by1, bx2, by2, size=size, shape=shape)
