"""Moderation before publishing: Rekognition DetectModerationLabels beside face detection, joined here.

    detector = moderated(get_detector("both"), RekognitionModerator(policy=ModerationPolicy(80, BLOCKED)))
    faces = detector.detect(pixels)  # ContentRefusedError if a blocked label was found

Both calls run at once on the same oriented, downscaled JPEG (rekognition.sharing_encoding), so
moderation adds a paid call but no latency. Fail closed: a moderation error is a DetectorError, retried
like one, and nothing is published until both halves succeeded.
"""

from __future__ import annotations

import contextvars
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from photoveil import deadline
from photoveil.errors import ContentRefusedError, DetectorError, PhotoVeilError
from photoveil.imaging.detectors.rekognition import RekognitionCalls, rekognition_jpeg, sharing_encoding
from photoveil.imaging.faces import LOOK_AGAIN_METHODS, Detector, Face

# Top-level (L1) categories of Rekognition's moderation taxonomy (version 7) refused by default:
# docs/deploy.md says why each, and why the others (swimwear, alcohol, gestures...) are published.
DEFAULT_BLOCKED = ("Explicit", "Violence", "Visually Disturbing", "Hate Symbols")
DEFAULT_MIN_CONFIDENCE = 80.0
REFUSED_MESSAGE = (
    "This photo was not published: it appears to contain content PhotoVeil does not publish "
    "(explicit, violent, disturbing or hateful). It has been deleted."
)


@dataclass(frozen=True)
class ModerationLabel:
    """One label of a DetectModerationLabels response; ``parent`` is "" for a top-level category."""

    name: str
    parent: str
    level: int
    confidence: float


@dataclass(frozen=True)
class ModerationPolicy:
    """What is refused: labels of at least ``min_confidence`` (0-100) under a ``blocked`` L1 category."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    blocked: frozenset[str] = frozenset(DEFAULT_BLOCKED)


def labels_from_response(response: dict[str, Any]) -> list[ModerationLabel]:
    return [
        ModerationLabel(
            name=str(label.get("Name", "")),
            parent=str(label.get("ParentName", "")),
            level=int(label.get("TaxonomyLevel", 0) or 0),
            confidence=float(label.get("Confidence", 0.0)),
        )
        for label in response.get("ModerationLabels", [])
    ]


def categories(label: ModerationLabel, labels: list[ModerationLabel]) -> list[str]:
    """LABEL's name and its ancestors' up to its L1 category, following parents through the response
    (an L3's parent is an L2); a parent the response does not list ends the climb."""
    parents = {other.name: other.parent for other in labels}
    chain = [label.name]
    parent = label.parent
    while parent and parent not in chain and len(chain) < 3:  # the taxonomy has three levels
        chain.append(parent)
        parent = parents.get(parent, "")
    return chain


def blocked_labels(labels: list[ModerationLabel], policy: ModerationPolicy) -> list[ModerationLabel]:
    """The labels that refuse a photo under POLICY (a blocked name at any level of their chain)."""
    return [
        label
        for label in labels
        if label.confidence >= policy.min_confidence
        and policy.blocked.intersection(categories(label, labels))
    ]


class RekognitionModerator:
    """DetectModerationLabels on the JPEG made for Rekognition; transient errors retried, then
    DetectorError."""

    name = "rekognition"

    def __init__(
        self,
        client: Any = None,
        *,
        policy: ModerationPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        seconds_left: Callable[[], float] = deadline.seconds_left,
    ) -> None:
        self.policy = policy or ModerationPolicy()
        self._calls = RekognitionCalls(client, sleep=sleep, rng=rng, seconds_left=seconds_left)

    def blocked(self, image: np.ndarray) -> list[ModerationLabel]:
        """The blocked labels found in a BGR uint8 image (empty: publishable). Raises DetectorError."""
        jpeg, _ = rekognition_jpeg(image)
        response = self._calls.call(
            "detect_moderation_labels",
            "DetectModerationLabels",
            Image={"Bytes": jpeg},
            MinConfidence=self.policy.min_confidence,
        )
        return blocked_labels(labels_from_response(response), self.policy)


class Moderator(Protocol):
    """What ModeratedDetector needs of a moderator (RekognitionModerator, or a stand-in in tests)."""

    name: str

    def blocked(self, image: np.ndarray) -> list[ModerationLabel]: ...


class ModeratedDetector:
    """A face detector whose every whole-photo detection also runs moderation, concurrently."""

    def __init__(self, detector: Detector, moderator: Moderator) -> None:
        self.detector = detector
        self.moderator = moderator
        self.name = detector.name
        # The verify step looks again with the face detector only: moderation judged the photo once.
        for method in LOOK_AGAIN_METHODS:
            if hasattr(detector, method):
                setattr(self, method, getattr(detector, method))

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in IMAGE; ContentRefusedError if moderation blocks it, DetectorError if either half fails."""
        with sharing_encoding(image), ThreadPoolExecutor(max_workers=2) as pool:
            # Each branch runs in the caller's context: the time budget and the shared JPEG.
            labels = pool.submit(contextvars.copy_context().run, self.moderator.blocked, image)
            faces = pool.submit(contextvars.copy_context().run, self.detector.detect, image)
            blocked = _moderation_result(labels)
            if blocked:
                # Refused whatever face detection says: nothing of this photo will be published.
                names = ", ".join(sorted({f"{b.name} ({b.confidence:.0f}%)" for b in blocked}))
                raise ContentRefusedError(REFUSED_MESSAGE) from DetectorError(f"blocked labels: {names}")
            return list(faces.result())


def _moderation_result(future: Future[list[ModerationLabel]]) -> list[ModerationLabel]:
    try:
        return future.result()
    except PhotoVeilError:
        raise  # DetectorError (retried), or an image Rekognition cannot take (bad input): neither publishes
    except Exception as exc:
        # A bug in moderation must still stop the photo, never let it through unjudged.
        raise DetectorError(f"moderation failed: {exc}") from exc


def moderated(detector: Detector, moderator: Moderator | None) -> Detector:
    """DETECTOR with MODERATOR joined to it, or DETECTOR itself when moderation is off (None)."""
    return detector if moderator is None else ModeratedDetector(detector, moderator)
