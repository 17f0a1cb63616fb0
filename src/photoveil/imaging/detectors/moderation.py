"""Moderation before publishing: Rekognition DetectModerationLabels beside face detection, joined here.

    detector = moderated(get_detector("both"), RekognitionModerator(policy=ModerationPolicy(80, BLOCKED)))
    faces = detector.detect(pixels)  # ContentRefusedError if a blocked label was found

Both calls run at once on the same oriented, downscaled JPEG (rekognition.sharing_encoding), so
moderation adds a paid call but no latency. Fail closed: a moderation error is a DetectorError, retried
like one, and nothing is published until both halves succeeded. So is a policy that cannot judge: blocked
names that are not version 7's top-level categories, or an answer from a model that is not version 7.
"""

from __future__ import annotations

import contextvars
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from photoveil import deadline
from photoveil.errors import ContentRefusedError, DetectorError, PhotoVeilError
from photoveil.imaging.detectors.rekognition import RekognitionCalls, rekognition_jpeg, sharing_encoding
from photoveil.imaging.faces import LOOK_AGAIN_METHODS, Detector, Face

# The top-level (L1) categories of Rekognition's moderation taxonomy, version 7 ("Label Categories",
# https://docs.aws.amazon.com/rekognition/latest/dg/moderation-api.html). AWS moved every account from
# model 6.1 to 7 in 2024 and renamed labels on the way (moderation-response-transform.html): a name that is
# not here would never match, and a photo would pass unjudged, so only these may be blocked.
V7_CATEGORIES = (
    "Explicit",
    "Non-Explicit Nudity of Intimate parts and Kissing",
    "Swimwear or Underwear",
    "Violence",
    "Visually Disturbing",
    "Drugs & Tobacco",
    "Alcohol",
    "Rude Gestures",
    "Gambling",
    "Hate Symbols",
)
MODEL_VERSION = "7"  # the major version of ModerationModelVersion these names belong to
# Refused by default: docs/deploy.md says why each, and why the others (swimwear, alcohol...) are published.
DEFAULT_BLOCKED = ("Explicit", "Violence", "Visually Disturbing", "Hate Symbols")
DEFAULT_MIN_CONFIDENCE = 80.0
REFUSED_MESSAGE = (
    "This photo was not published: it appears to contain content PhotoVeil does not publish "
    "(explicit, violent, disturbing or hateful). It has been deleted."
)


class ModerationConfigError(DetectorError):
    """Moderation cannot judge as configured (blocked names, or the model Rekognition answers with): nothing
    is published, and the photo is retried like any detector error, so it can be redriven once fixed."""

    code = "moderation_misconfigured"


def blocked_categories(names: Iterable[str]) -> frozenset[str]:
    """NAMES as version 7 top-level categories, matched ignoring case; ModerationConfigError names any that
    is not one."""
    by_folded = {category.casefold(): category for category in V7_CATEGORIES}
    unknown = sorted({name for name in names if name.casefold() not in by_folded})
    if unknown:
        raise ModerationConfigError(
            f"blocked moderation categories {', '.join(map(repr, unknown))} are not top-level categories of "
            f"Rekognition's moderation taxonomy (version 7): {', '.join(V7_CATEGORIES)}"
        )
    return frozenset(by_folded[name.casefold()] for name in names)


def check_model_version(response: dict[str, Any]) -> None:
    """ModerationConfigError unless RESPONSE comes from a version 7 model (the names above are its)."""
    version = str(response.get("ModerationModelVersion") or "")
    if version.split(".")[0] != MODEL_VERSION:
        raise ModerationConfigError(
            f"Rekognition answered with moderation model {version or '(none)'}; the blocked categories are "
            f"version {MODEL_VERSION}'s, so its labels cannot be judged"
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
    """The labels that refuse a photo under POLICY (a blocked name at any level of their chain, ignoring
    case)."""
    blocked = {name.casefold() for name in policy.blocked}
    return [
        label
        for label in labels
        if label.confidence >= policy.min_confidence
        and blocked.intersection(name.casefold() for name in categories(label, labels))
    ]


class RekognitionModerator:
    """DetectModerationLabels on the JPEG made for Rekognition; transient errors retried, then
    DetectorError. A policy that names something other than version 7's top-level categories raises
    ModerationConfigError here, in the constructor; the worker builds it on first use and keeps only a
    built one, so a bad policy is checked, and refused, again on every attempt at every photo, unjudged."""

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
        policy = policy or ModerationPolicy()
        self.policy = ModerationPolicy(policy.min_confidence, blocked_categories(policy.blocked))
        self._calls = RekognitionCalls(client, sleep=sleep, rng=rng, seconds_left=seconds_left)

    def blocked(self, image: np.ndarray) -> list[ModerationLabel]:
        """The blocked labels found in a BGR uint8 image (empty: publishable). Raises DetectorError
        (ModerationConfigError if the answer is not version 7's)."""
        jpeg, _ = rekognition_jpeg(image)
        response = self._calls.call(
            "detect_moderation_labels",
            "DetectModerationLabels",
            Image={"Bytes": jpeg},
            MinConfidence=self.policy.min_confidence,
        )
        check_model_version(response)
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
