"""Moderation (photoveil.imaging.detectors.moderation) against DetectModerationLabels responses of the
documented shape (botocore Stubber: a real client that validates each request against the API model)."""

from __future__ import annotations

import re
import threading
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.stub import ANY, Stubber

from photoveil import settings
from photoveil.errors import ContentRefusedError, DetectorError, ImageTooNarrowError
from photoveil.imaging.detectors.moderation import (
    DEFAULT_BLOCKED,
    V7_CATEGORIES,
    ModeratedDetector,
    ModerationConfigError,
    ModerationLabel,
    ModerationPolicy,
    RekognitionModerator,
    blocked_categories,
    blocked_labels,
    labels_from_response,
    moderated,
)
from photoveil.imaging.detectors.rekognition import MAX_BYTES, RekognitionDetector
from photoveil.imaging.faces import Face

VIOLENCE = {
    "ModerationLabels": [
        {"Confidence": 88.0, "Name": "Violence", "ParentName": "", "TaxonomyLevel": 1},
        {"Confidence": 88.0, "Name": "Weapon Violence", "ParentName": "Violence", "TaxonomyLevel": 2},
    ],
    "ModerationModelVersion": "7.0",
    "ContentTypes": [],
}
ALCOHOL = {
    "ModerationLabels": [
        {"Confidence": 99.0, "Name": "Alcohol", "ParentName": "", "TaxonomyLevel": 1},
        {"Confidence": 99.0, "Name": "Alcoholic Beverages", "ParentName": "Alcohol", "TaxonomyLevel": 2},
    ],
    "ModerationModelVersion": "7.0",
    "ContentTypes": [],
}


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "rekognition", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _image() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 255, size=(600, 900, 3), dtype=np.uint8)


def _label(name: str, parent: str, level: int, confidence: float = 90.0) -> ModerationLabel:
    return ModerationLabel(name=name, parent=parent, level=level, confidence=confidence)


def test_the_defaults_are_the_same_everywhere() -> None:
    assert settings.DEFAULT_BLOCKED_CATEGORIES == DEFAULT_BLOCKED
    assert ModerationPolicy().blocked == frozenset(DEFAULT_BLOCKED)
    assert blocked_categories(DEFAULT_BLOCKED) == frozenset(DEFAULT_BLOCKED)  # all version 7 categories


def test_an_l3_label_is_blocked_by_its_l1_category_through_its_parents() -> None:
    labels = [
        _label("Explicit", "", 1),
        _label("Explicit Nudity", "Explicit", 2),
        _label("Exposed Male Genitalia", "Explicit Nudity", 3),
    ]
    assert [b.name for b in blocked_labels(labels, ModerationPolicy())] == [b.name for b in labels]


def test_a_parent_the_response_does_not_list_still_counts() -> None:
    # An L2 returned without its L1: its own ParentName names the category.
    labels = [_label("Graphic Violence", "Violence", 2)]
    assert blocked_labels(labels, ModerationPolicy()) == labels


def test_under_the_minimum_confidence_or_outside_the_blocked_categories_passes() -> None:
    policy = ModerationPolicy(min_confidence=80)
    assert blocked_labels([_label("Violence", "", 1, confidence=79.9)], policy) == []
    assert blocked_labels(labels_from_response(ALCOHOL), policy) == []


def test_blocked_names_match_the_labels_ignoring_case() -> None:
    policy = ModerationPolicy(blocked=frozenset({"alcohol"}))
    assert [b.name for b in blocked_labels(labels_from_response(ALCOHOL), policy)] == [
        "Alcohol",
        "Alcoholic Beverages",
    ]


def test_blocked_names_are_version_7_top_level_categories_in_any_case() -> None:
    assert blocked_categories(["explicit", "HATE SYMBOLS", "Drugs & tobacco"]) == {
        "Explicit",
        "Hate Symbols",
        "Drugs & Tobacco",
    }
    assert len(V7_CATEGORIES) == 10


@pytest.mark.parametrize(
    "name",
    [
        "Explict",  # a typo
        "Suggestive",  # a version 6.1 top-level category, gone in version 7
        "Explicit Nudity",  # a version 7 level-2 label
        "Violence ",  # a stray space
    ],
)
def test_any_other_blocked_name_stops_the_moderator_before_any_call(name: str) -> None:
    rekognition = Recording(VIOLENCE)  # would wait for a second call: none may be made
    with pytest.raises(ModerationConfigError, match=repr(name)) as stopped:
        RekognitionModerator(rekognition, policy=ModerationPolicy(blocked=frozenset({"Violence", name})))
    assert stopped.value.code == "moderation_misconfigured" and not stopped.value.permanent  # retried
    assert isinstance(stopped.value, DetectorError) and rekognition.images == {}


@pytest.mark.parametrize("version", ["7.0", "7.1"])
def test_an_answer_from_a_version_7_model_is_judged(client: Any, version: str) -> None:
    with Stubber(client) as stub:
        stub.add_response("detect_moderation_labels", VIOLENCE | {"ModerationModelVersion": version})
        assert RekognitionModerator(client).blocked(_image())


@pytest.mark.parametrize("version", ["6.1", "8.0", None])
def test_an_answer_from_another_model_fails_closed(client: Any, version: str | None) -> None:
    answer = {k: v for k, v in VIOLENCE.items() if k != "ModerationModelVersion"}
    if version:
        answer["ModerationModelVersion"] = version
    with Stubber(client) as stub:
        stub.add_response("detect_moderation_labels", answer)
        with pytest.raises(ModerationConfigError, match=re.escape(f"moderation model {version or '(none)'}")):
            RekognitionModerator(client).blocked(_image())


def test_the_moderator_sends_a_valid_request_and_reads_the_response(client: Any) -> None:
    with Stubber(client) as stub:
        stub.add_response(
            "detect_moderation_labels", VIOLENCE, {"Image": {"Bytes": ANY}, "MinConfidence": 80.0}
        )
        blocked = RekognitionModerator(client).blocked(_image())
    assert {b.name for b in blocked} == {"Violence", "Weapon Violence"}


def test_throttling_is_retried_and_a_denial_is_a_detector_error(client: Any) -> None:
    sleeps: list[float] = []
    with Stubber(client) as stub:
        stub.add_client_error("detect_moderation_labels", "ThrottlingException", "Rate exceeded", 400)
        stub.add_response("detect_moderation_labels", ALCOHOL)
        assert RekognitionModerator(client, sleep=sleeps.append).blocked(_image()) == []
    assert len(sleeps) == 1
    with Stubber(client) as stub:
        stub.add_client_error("detect_moderation_labels", "AccessDeniedException", "not authorized", 400)
        with pytest.raises(DetectorError, match="DetectModerationLabels failed: AccessDeniedException"):
            RekognitionModerator(client).blocked(_image())


class Recording:
    """Records the JPEG each Rekognition call gets, and which threads made them."""

    def __init__(self, moderation: dict[str, Any]) -> None:
        self.moderation = moderation
        self.images: dict[str, bytes] = {}
        self.threads: set[int] = set()
        self.both_waiting = threading.Barrier(2, timeout=5)

    def _record(self, operation: str, image: dict[str, Any]) -> None:
        self.images[operation] = image["Bytes"]
        self.threads.add(threading.get_ident())
        self.both_waiting.wait()  # only returns if the other call is in flight at the same time

    def detect_faces(self, **params: Any) -> dict[str, Any]:
        self._record("faces", params["Image"])
        return {"FaceDetails": [{"BoundingBox": {"Left": 0.1, "Top": 0.1, "Width": 0.2, "Height": 0.2}}]}

    def detect_moderation_labels(self, **params: Any) -> dict[str, Any]:
        self._record("moderation", params["Image"])
        return self.moderation


def test_face_detection_and_moderation_run_at_once_on_one_jpeg() -> None:
    rekognition = Recording(ALCOHOL)
    detector = moderated(RekognitionDetector(rekognition), RekognitionModerator(rekognition))

    faces = detector.detect(_image())

    assert len(faces) == 1
    assert rekognition.images["faces"] == rekognition.images["moderation"]
    assert len(rekognition.images["faces"]) <= MAX_BYTES
    assert len(rekognition.threads) == 2


def test_a_blocked_label_refuses_whatever_the_faces() -> None:
    rekognition = Recording(VIOLENCE)
    detector = moderated(RekognitionDetector(rekognition), RekognitionModerator(rekognition))
    with pytest.raises(ContentRefusedError) as refused:
        detector.detect(_image())
    assert refused.value.code == "content_refused" and refused.value.permanent
    assert "Weapon Violence" in str(refused.value.__cause__)


class Failing:
    name = "failing"

    def blocked(self, image: np.ndarray) -> list[ModerationLabel]:
        raise RuntimeError("a bug")


class OneFace:
    name = "one-face"

    def detect(self, image: np.ndarray) -> list[Face]:
        return [Face(1, 1, 10, 10, 0.9)]


def test_a_moderation_bug_fails_closed_as_a_detector_error() -> None:
    with pytest.raises(DetectorError, match="moderation failed: a bug"):
        ModeratedDetector(OneFace(), Failing()).detect(_image())


def test_an_image_rekognition_cannot_take_fails_moderation_as_bad_input_before_any_call() -> None:
    rekognition = Recording(ALCOHOL)  # would wait for a second call: none may be made
    strip = np.full((9000, 40, 3), 128, np.uint8)  # 80 px wide would make it 18,000 tall, over 10,000
    with pytest.raises(ImageTooNarrowError):  # not a DetectorError: the photo fails, it is not retried
        ModeratedDetector(OneFace(), RekognitionModerator(rekognition)).detect(strip)
    assert rekognition.images == {}


def test_moderation_off_leaves_the_detector_alone() -> None:
    detector = OneFace()
    assert moderated(detector, None) is detector


def test_a_moderated_detector_looks_again_with_its_face_detector() -> None:
    """Verify's looks (detect_near, and rows_near / prepare, which make them cheaper) reach the face
    detector inside: moderation judged the photo once."""
    from photoveil.imaging.detectors import get_detector

    faces = get_detector("centerface")
    wrapped = ModeratedDetector(faces, Failing())
    assert wrapped.detect_near == faces.detect_near
    assert wrapped.rows_near == faces.rows_near and wrapped.prepare == faces.prepare
    assert not hasattr(ModeratedDetector(OneFace(), Failing()), "prepare")
