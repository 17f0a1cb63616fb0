"""Face detectors behind one interface (photoveil.imaging.faces.Detector): centerface, rekognition, both.

    detector = get_detector("centerface")
    faces = detector.detect(bgr_pixels)  # list[Face] in the image's pixel frame; raises DetectorError

Instances are cached per process: the CenterFace model is read, verified and loaded once.
"""

from __future__ import annotations

import contextvars
from functools import cache
from typing import Any

import numpy as np

from photoveil.errors import DetectorError, PhotoVeilError
from photoveil.imaging.detectors.nms import merge_faces
from photoveil.imaging.faces import LOOK_AGAIN_METHODS, Detector, Face

NAMES = ("centerface", "rekognition", "both")


class UnionDetector:
    """Runs several detectors concurrently and returns the union of their faces (fail closed)."""

    def __init__(self, name: str, detectors: list[Detector]) -> None:
        self.name = name
        self.detectors = detectors
        # The verify step (photoveil.imaging.verify) looks again with the in-process member, if it has one.
        lookers = [d for d in detectors if hasattr(d, "detect_near")]
        if lookers:
            for method in LOOK_AGAIN_METHODS:
                if hasattr(lookers[0], method):
                    setattr(self, method, getattr(lookers[0], method))

    def detect(self, image: np.ndarray) -> list[Face]:
        """Union of every detector's faces, overlaps merged; DetectorError if any detector fails (its own
        PhotoVeilError if it has one: an image Rekognition cannot take fails as bad input)."""
        # Imported here: only `both` runs a pool, and concurrent.futures brings logging and threading.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(self.detectors)) as pool:
            # Each branch runs in the caller's context, so it sees the caller's time budget.
            futures = [pool.submit(contextvars.copy_context().run, d.detect, image) for d in self.detectors]
            faces: list[Face] = []
            for detector, future in zip(self.detectors, futures, strict=True):
                try:
                    faces.extend(future.result())
                except PhotoVeilError:
                    raise
                except Exception as exc:
                    # A bug in one branch must still fail the photo, never publish a partial result.
                    raise DetectorError(f"{detector.name} failed: {exc}") from exc
        return merge_faces(faces)


def get_detector(name: str, *, threshold: float | None = None, rekognition_client: Any = None) -> Detector:
    """The detector called `name` (centerface | rekognition | both).

    threshold: minimum score (0..1) for a face; None keeps each detector's measured default.
    rekognition_client: a boto3 Rekognition client to use (tests); passing one bypasses the cache.
    """
    if name not in NAMES:
        raise ValueError(f"unknown detector {name!r}: expected one of {', '.join(NAMES)}")
    if rekognition_client is not None:
        return _build(name, threshold, rekognition_client)
    return _cached(name, threshold)


@cache
def _cached(name: str, threshold: float | None) -> Detector:
    return _build(name, threshold, None)


@cache
def _centerface(threshold: float | None) -> Detector:
    # Imported here: ONNX Runtime and the model are only loaded by processes that need them.
    from photoveil.imaging.detectors.centerface import CenterFaceConfig, CenterFaceDetector

    config = CenterFaceConfig() if threshold is None else CenterFaceConfig(threshold=threshold)
    return CenterFaceDetector(config)


def _build(name: str, threshold: float | None, client: Any) -> Detector:
    if name == "centerface":
        return _centerface(threshold)
    # Imported only on the Rekognition path: a centerface process (the CLI default) does not pay
    # botocore's start-up (docs/decisions/0014-rekognition-imported-only-when-used.md).
    from photoveil.imaging.detectors.rekognition import RekognitionDetector

    if name == "rekognition":
        return RekognitionDetector(client, threshold=threshold)
    return UnionDetector("both", [_centerface(threshold), RekognitionDetector(client, threshold=threshold)])
