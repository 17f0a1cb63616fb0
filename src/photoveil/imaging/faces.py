"""The one box format every detector returns and the blur consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class Face:
    """A detected face: pixel corners in the oriented image's frame (x2, y2 exclusive) and a score."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def as_dict(self) -> dict[str, float]:
        return {
            "box": [round(self.x1, 1), round(self.y1, 1), round(self.x2, 1), round(self.y2, 1)],
            "score": round(self.score, 4),
        }


# What the verify step (photoveil.imaging.verify) uses of a detector that can look again: a detector
# wrapping one passes them all on.
LOOK_AGAIN_METHODS = ("detect_near", "rows_near", "prepare")


class Look(list[Face]):
    """The faces a look again round some boxes found (CenterFaceDetector.detect_near), and whether every
    pass it ran covered the whole photo, so that its scores are a whole-photo detection's exactly."""

    def __init__(self, faces: list[Face], *, whole: bool) -> None:
        super().__init__(faces)
        self.whole = whole


class Detector(Protocol):
    """Finds faces in a BGR uint8 image. Raises DetectorError on failure, never returns partial."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]: ...
