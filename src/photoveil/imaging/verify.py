"""Verify and blur again: look for the blurred faces in the JPEG as published, and blur what is found.

A blurred head is still a head to CenterFace (trained on WIDER FACE, whose labelled faces include
heavily blurred ones). What it finds is the head's outline, which no stronger or different effect over
the same region removes; blurring again where the detector now sees a head does
(docs/decisions/0009-verify-step.md).

So, after encoding, the in-process detector looks again at the JPEG as published (its block noise lifts
a blurred head's score), only in windows round the blurred faces (CenterFaceDetector.detect_near). Each
detection there scoring at least VERIFY_THRESHOLD is blurred as a face of its own (a little larger
each round), the photo is encoded again, and the next look is round what changed, at most MAX_ROUNDS
times.

A look costs up to one more detection pass (a window round a large face is most of the photo), so the
service always runs this step and the command line on request (--verify). Detectors without
detect_near (Rekognition alone) skip it: a second paid call per photo would buy little, and the
in-process model is not loaded on that path.
"""

from __future__ import annotations

from typing import Any, Protocol

import cv2
import numpy as np

from photoveil.imaging.blur import blur_faces
from photoveil.imaging.detectors.nms import face_boxes, iou_matrix
from photoveil.imaging.faces import Detector, Face
from photoveil.imaging.geometry import Region, face_regions
from photoveil.imaging.image import decode_jpeg, encode_jpeg
from photoveil.imaging.jpeg_rows import decode_rows, splice_rows

# deface's default detection threshold, not CenterFace's 0.1: the lower it is, the more is blurred
# twice, and every extra pixel is collateral (docs/decisions/0010-verify-threshold.md).
VERIFY_THRESHOLD = 0.2
MAX_ROUNDS = 6
# A window's score is a whole-photo pass's only to within about this (its context ends at the window's
# edge; windows forced on every shared photo moved a score >= 0.2 by up to 0.04): a blurred face found
# in a window this close under the threshold is settled by the whole photo, so what verify passes is what
# any whole-photo detection passes (docs/decisions/0012-look-again-windows.md).
WINDOW_TOLERANCE = 0.05
# A detection is one of the blurred faces found again when it overlaps its box this much (IoU), or
# when its centre lies in the face's blur region (a head found round a blurred face is larger than it).
MATCH_IOU = 0.3
# What is found again is blurred as a face of its own, its box first shrunk about its centre by this
# factor, plus REBLUR_GROWTH each round: a head found round a blurred face gets a roomier box than a
# face, and face_regions enlarges it again (docs/decisions/0011-reblur-box-scale.md).
REBLUR_SCALE = 0.75
REBLUR_GROWTH = 0.15
# The fixed part of a look-again window's context as a share of the photo's long side: CenterFace's
# 64 net px (centerface.WINDOW_MARGIN) are ~5.6 % of the side at its fine pass on a 12 MP photo
# (1152 px) and ~6.4 % on a 500 px photo (enlarged 2x) (docs/decisions/0012-look-again-windows.md).
CONTEXT_REACH = 0.065
# JPEG (4:2:0, as encode_jpeg writes it) codes 16 x 16 px blocks each on its own, and the decoder smooths
# colour across a block's edge by a pixel or two: blurring again changes the published photo's decoded
# pixels only in the blocks it touched and their neighbours (docs/decisions/perf-cpu-per-photo.md).
JPEG_BLOCK = 16


class VerifyingDetector(Protocol):
    """A detector that can look again, cheaply, round boxes it found (see CenterFaceDetector). It may
    also say which rows a look reads (``rows_near(shape, near)``) and prepare the photo once for many
    looks (``prepare(photo, rows)``, whose result detect_near takes and ``changed(rects)`` updates)."""

    def detect_near(self, image: Any, near: list[Face], *, exact: bool = False) -> list[Face]: ...


def reblur_until_clean(
    pixels: np.ndarray, jpeg: bytes, faces: list[Face], detector: Detector, *, style: str, quality: int
) -> tuple[bytes, list[Face], list[Face]]:
    """Blur again, in ``pixels`` (already blurred over ``faces``), what the detector still finds.

    Returns the final JPEG (``jpeg``, the first encoding of ``pixels``, with the rows blurred again
    spliced in: jpeg_rows), the detections blurred again, and those still found after MAX_ROUNDS
    (normally none; MAX_ROUNDS + 1 looks in all). Detector errors propagate: nothing is published.
    """
    if not faces or not hasattr(detector, "detect_near"):
        return jpeg, [], []
    blurred, reblurred = list(faces), []
    look_near = blurred
    height, width = pixels.shape[:2]
    reach = CONTEXT_REACH * max(height, width)
    published = _Published(jpeg, pixels, quality, detector)  # what it shows, round after round
    for round_number in range(MAX_ROUNDS + 1):
        residual = _look_again(detector, published, look_near, blurred)
        if not residual or round_number == MAX_ROUNDS:
            break
        # Each round a little larger, so a head that survives one more blur is covered sooner.
        scale = REBLUR_SCALE + REBLUR_GROWTH * round_number
        again = [_scaled(f, scale) for f in residual]
        blur_faces(pixels, again, style=style)
        # Encoded and decoded again only round what changed; at the end only the rows that changed are
        # encoded again, into the JPEG (jpeg_rows).
        published.blurred_again(face_regions(again, width, height))
        blurred += residual
        reblurred += residual
        # Only the pixels round what was just blurred again changed: look again round it, and round
        # the faces near enough for that change to reach their windows: their scores move too
        # (docs/decisions/0012-look-again-windows.md).
        look_near = [f for f in blurred if any(_close(f, r, reach) for r in residual)]
    changed_rows = [(r.y1, r.y2) for r in published.regions]
    return splice_rows(jpeg, pixels, changed_rows, quality) if changed_rows else jpeg, reblurred, residual


def found_again(
    detections: list[Face], blurred: list[Face], width: int, height: int, threshold: float = VERIFY_THRESHOLD
) -> list[Face]:
    """The detections scoring >= ``threshold`` that are one of the ``blurred`` faces found again."""
    detections = [d for d in detections if d.score >= threshold]
    if not detections or not blurred:
        return []
    iou = iou_matrix(face_boxes(detections), face_boxes(blurred))
    regions = face_regions(blurred, width, height)
    again = []
    for i, d in enumerate(detections):
        cx, cy = (d.x1 + d.x2) / 2, (d.y1 + d.y2) / 2
        if iou[i].max() >= MATCH_IOU or any(r.x1 <= cx < r.x2 and r.y1 <= cy < r.y2 for r in regions):
            again.append(d)
    return again


def _look_again(
    detector: VerifyingDetector, published: _Published, near: list[Face], blurred: list[Face]
) -> list[Face]:
    """The blurred faces round ``near`` found again in the published JPEG."""
    height, width = published.pixels.shape[:2]
    detections = detector.detect_near(published.read(near), near)
    # Matched once, down to the close calls; a detection's match does not depend on the others.
    candidates = found_again(detections, blurred, width, height, VERIFY_THRESHOLD - WINDOW_TOLERANCE)
    close_call = any(d.score < VERIFY_THRESHOLD for d in candidates)
    if close_call and not getattr(detections, "whole", False):
        # Just under the threshold in a window: the whole photo decides, for every face looked at (one
        # far from the next round's changes is not looked at again).
        exact = detector.detect_near(published.read(near, whole=True), near, exact=True)
        return found_again(exact, blurred, width, height)
    return [d for d in candidates if d.score >= VERIFY_THRESHOLD]


class _Published:
    """The published JPEG as the looks see it: decoded only in the rows they read when that is not the
    whole photo (jpeg_rows.decode_rows; the other rows stay black and unread), kept what the JPEG of
    ``pixels`` decodes to as heads are blurred again (_republish), and prepared once for the detector
    (CenterFaceDetector.prepare: its resized copies are then updated, not made again, look after look)."""

    def __init__(self, jpeg: bytes, pixels: np.ndarray, quality: int, detector: VerifyingDetector) -> None:
        self.jpeg, self.pixels, self.quality, self.detector = jpeg, pixels, quality, detector
        self.array: np.ndarray | None = None
        self.prepared: Any = None  # what detect_near is given: the array, or the detector's prepared copy
        self.rows = (0, 0)  # the rows of ``array`` that are the published photo's
        self.regions: list[Region] = []  # blurred again since ``jpeg``

    def read(self, near: list[Face], *, whole: bool = False) -> Any:
        """The published photo, exact in every row ``detector.detect_near(it, near)`` may read (in every
        row when ``whole``: an exact look runs over the whole photo)."""
        height = self.pixels.shape[0]
        rows_near = None if whole else getattr(self.detector, "rows_near", None)
        y0, y1 = rows_near(self.pixels.shape, near) if rows_near else (0, height)
        if self.array is not None and self.rows[0] <= y0 and y1 <= self.rows[1]:
            return self.prepared
        if self.array is None and (y0, y1) != (0, height):
            top, band = decode_rows(self.jpeg, y0, y1)
            self.array = np.zeros_like(self.pixels)
            self.array[top : top + band.shape[0]] = band
            self.rows = (top, top + band.shape[0])
        else:  # the whole photo: the JPEG as first published, then every head blurred again since
            self.array, self.rows = decode_jpeg(self.jpeg), (0, height)
            _republish(self.array, self.pixels, self.regions, self.quality)
        prepare = getattr(self.detector, "prepare", None)
        rows = None if self.rows == (0, height) else self.rows
        self.prepared = prepare(self.array, rows) if prepare else self.array
        return self.prepared

    def blurred_again(self, regions: list[Region]) -> None:
        """``pixels`` changed in ``regions``: so does the published photo."""
        assert self.array is not None  # a look always comes first
        changed = _republish(self.array, self.pixels, regions, self.quality)
        self.regions += regions
        if hasattr(self.prepared, "changed"):
            self.prepared.changed(changed)


def _republish(
    published: np.ndarray, pixels: np.ndarray, regions: list[Region], quality: int
) -> list[tuple[int, int, int, int]]:
    """Make ``published`` (the decoded JPEG of ``pixels`` before ``regions`` changed) what the JPEG of
    ``pixels`` now decodes to, IN PLACE: each changed area, with a block of neighbours, is encoded and
    decoded as a crop on JPEG's block grid, whose outer block is left out (its colour is smoothed with
    what lies past the crop) unless it ends with the photo. tests/unit/test_verify.py checks it."""
    height, width = pixels.shape[:2]
    block = JPEG_BLOCK
    crops = np.zeros((-(-height // block), -(-width // block)), np.uint8)
    for r in regions:  # the blocks changed, one round them decoded differently, one more as margin
        crops[
            max(0, r.y1 // block - 2) : -(-r.y2 // block) + 2,
            max(0, r.x1 // block - 2) : -(-r.x2 // block) + 2,
        ] = 1
    _, _, stats, _ = cv2.connectedComponentsWithStats(crops, connectivity=8)
    changed = []
    for bx, by, bw, bh, _ in stats[1:]:
        x0, y0 = int(bx) * block, int(by) * block
        x1, y1 = min(width, int(bx + bw) * block), min(height, int(by + bh) * block)
        crop = decode_jpeg(encode_jpeg(pixels[y0:y1, x0:x1], quality=quality))
        ix0, iy0 = x0 + (block if x0 > 0 else 0), y0 + (block if y0 > 0 else 0)
        ix1, iy1 = x1 - (block if x1 < width else 0), y1 - (block if y1 < height else 0)
        published[iy0:iy1, ix0:ix1] = crop[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        changed.append((ix0, iy0, ix1, iy1))
    return changed


def _close(face: Face, changed: Face, reach: float) -> bool:
    """Whether ``face``'s look-again window may reach what blurring ``changed`` again altered.

    Generous on purpose: a window spans a face size and a fixed margin round its face (``reach``, in
    photo px), the blur about half a box round ``changed``.
    """
    pad_face, pad_changed = 1.5 * max(face.width, face.height) + reach, max(changed.width, changed.height)
    return (
        face.x1 - pad_face < changed.x2 + pad_changed
        and changed.x1 - pad_changed < face.x2 + pad_face
        and face.y1 - pad_face < changed.y2 + pad_changed
        and changed.y1 - pad_changed < face.y2 + pad_face
    )


def _scaled(face: Face, scale: float) -> Face:
    cx, cy = (face.x1 + face.x2) / 2, (face.y1 + face.y2) / 2
    half_w, half_h = scale * face.width / 2, scale * face.height / 2
    return Face(cx - half_w, cy - half_h, cx + half_w, cy + half_h, face.score)
