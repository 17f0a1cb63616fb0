"""Moderation before publishing (issue 20): BlurFunction with Rekognition DetectModerationLabels beside
face detection, under the worker's role as template.yaml gives it, IAM enforced.

moto has no model of DetectModerationLabels, but it does check IAM before it finds that out: the stand-in
below sends each request to moto first, signed with the worker's role, so a role without the permission
gets AccessDenied as on AWS; only an authorised request gets the stand-in's answer.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from botocore.exceptions import ClientError

from photoveil.imaging.detectors.rekognition import LIMIT_SIDE, MAX_BYTES, MIN_SIDE, new_rekognition_client
from photoveil.local.iam import RoleSpec, read_function_roles
from photoveil.observability import IMAGE_REFUSED_METRIC, SERVICE
from photoveil.settings import get_settings

from .helpers import BLURRED_BUCKET, PARAMETERS, RESOURCE_NAMES, TEMPLATE, UPLOADS_BUCKET, Aws, Functions
from .test_blur import _json_lines, _metric_values, create_job, job, upload_and_blur

EXPLICIT = [  # the shape of a real response: the L3 label comes with its L2 and L1 ancestors
    {"Confidence": 97.1, "Name": "Explicit", "ParentName": "", "TaxonomyLevel": 1},
    {"Confidence": 97.1, "Name": "Explicit Nudity", "ParentName": "Explicit", "TaxonomyLevel": 2},
    {
        "Confidence": 96.4,
        "Name": "Exposed Female Nipple",
        "ParentName": "Explicit Nudity",
        "TaxonomyLevel": 3,
    },
]
SWIMWEAR = [
    {"Confidence": 91.0, "Name": "Swimwear or Underwear", "ParentName": "", "TaxonomyLevel": 1},
    {
        "Confidence": 91.0,
        "Name": "Female Swimwear or Underwear",
        "ParentName": "Swimwear or Underwear",
        "TaxonomyLevel": 2,
    },
]


class ModerationStandIn:
    """Stands in for Rekognition's DetectModerationLabels at its documented limits and response shape.

    Each request first goes to moto signed with the worker's role (IAM checked there); the image must be a
    JPEG or PNG of at most 5 MB as bytes (else InvalidImageFormatException / ImageTooLargeException) and
    80 to 10,000 px a side (https://docs.aws.amazon.com/rekognition/latest/dg/limits.html; the code AWS
    answers outside them is not documented: ImageTooLargeException here, a refusal either way), and labels
    under MinConfidence are not returned. ERRORS, if given, are raised by the first calls in turn.
    """

    def __init__(
        self,
        role_client: Any,
        labels: list[dict[str, Any]],
        errors: list[str] | None = None,
        version: str = "7.0",
    ) -> None:
        self.role_client = role_client
        self.labels = labels
        self.errors = list(errors or [])
        self.version = version  # the ModerationModelVersion it answers with
        self.images: list[bytes] = []

    def detect_moderation_labels(
        self, *, Image: dict[str, Any], MinConfidence: float = 50.0
    ) -> dict[str, Any]:
        # Authorised if moto gets past IAM to find it has no model of the operation.
        with contextlib.suppress(NotImplementedError):
            self.role_client.detect_moderation_labels(Image=Image, MinConfidence=MinConfidence)
        data = Image["Bytes"]
        self.images.append(data)
        if len(data) > MAX_BYTES:
            raise _error("ImageTooLargeException", "Image size is too large.")
        if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
            raise _error("InvalidImageFormatException", "Request has invalid image format")
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if not MIN_SIDE <= min(decoded.shape[:2]) <= max(decoded.shape[:2]) <= LIMIT_SIDE:
            raise _error("ImageTooLargeException", "Image dimensions are out of range.")
        if not 0 <= MinConfidence <= 100:
            raise _error("InvalidParameterException", "MinConfidence out of range")
        if self.errors:
            raise _error(self.errors.pop(0), "stand-in failure")
        return {
            "ModerationLabels": [label for label in self.labels if label["Confidence"] >= MinConfidence],
            "ModerationModelVersion": self.version,
            "ContentTypes": [],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "DetectModerationLabels")


@pytest.fixture
def roles(request: pytest.FixtureRequest, template_roles: dict[str, RoleSpec]) -> dict[str, RoleSpec]:
    """The template's roles; a test may parametrize other template parameters (indirect)."""
    changes = getattr(request, "param", None)
    if not changes:
        return template_roles
    return read_function_roles(TEMPLATE, PARAMETERS | changes, RESOURCE_NAMES)


@pytest.fixture
def moderating(monkeypatch: pytest.MonkeyPatch, aws: Aws, identities: dict[str, Any]) -> Any:
    """Turn moderation on as deployed; returns a function that puts a stand-in with LABELS in place."""
    monkeypatch.setenv("MODERATION", "rekognition")
    get_settings.cache_clear()

    def stand_in(functions: Functions, labels: list[dict[str, Any]], **kwargs: Any) -> ModerationStandIn:
        rekognition = ModerationStandIn(
            new_rekognition_client(identities["BlurFunction"].session), labels, **kwargs
        )
        functions.worker.override(rekognition=rekognition)
        return rekognition

    return stand_in


def _blur(aws: Aws, functions: Functions, context: Any, photo: bytes) -> tuple[str, dict[str, Any]]:
    job_id = create_job(functions, context, size=len(photo))
    return job_id, upload_and_blur(aws, functions, context, job_id, photo)


def test_a_flagged_photo_is_refused_deleted_and_never_published(
    aws: Aws, functions: Functions, context: Any, astronaut_path: Path, moderating: Any
) -> None:
    rekognition = moderating(functions, EXPLICIT)

    job_id, response = _blur(aws, functions, context, astronaut_path.read_bytes())

    assert response == {"batchItemFailures": []}  # refused for good: no retry
    assert len(rekognition.images) == 1
    record = job(aws, job_id)
    assert record["status"] == "failed"
    assert record["errorCode"] == "content_refused"
    assert "not published" in record["errorMessage"]
    assert aws.keys(BLURRED_BUCKET) == []  # nothing under p/
    assert aws.keys(UPLOADS_BUCKET) == []  # the original is deleted
    assert aws.sent_emails() == []  # no link anywhere
    status = functions.api.invoke(_status_event(job_id), context)
    assert '"content_refused"' in status["body"] and f"p/{job_id}" not in status["body"]


def test_a_label_outside_the_blocked_categories_is_published(
    aws: Aws, functions: Functions, context: Any, astronaut_path: Path, moderating: Any
) -> None:
    rekognition = moderating(functions, SWIMWEAR)

    job_id, response = _blur(aws, functions, context, astronaut_path.read_bytes())

    assert response == {"batchItemFailures": []}
    assert job(aws, job_id)["status"] == "done"
    assert aws.keys(BLURRED_BUCKET) == [f"p/{job_id}.jpg"]
    # Rekognition got the oriented, downscaled JPEG PhotoVeil made, no larger than its limit.
    assert rekognition.images[0][:3] == b"\xff\xd8\xff"


def test_a_moderation_error_retries_and_publishes_nothing(
    aws: Aws, functions: Functions, context: Any, astronaut_path: Path, moderating: Any
) -> None:
    rekognition = moderating(functions, [], errors=["AccessDeniedException", "InternalServerError"] * 5)

    job_id, response = _blur(aws, functions, context, astronaut_path.read_bytes())

    assert len(response["batchItemFailures"]) == 1  # the message comes back
    assert job(aws, job_id)["status"] == "processing"
    assert aws.keys(BLURRED_BUCKET) == []
    assert aws.keys(UPLOADS_BUCKET) == [f"uploads/{job_id}"]  # kept for the retry
    assert aws.sent_emails() == []

    rekognition.errors.clear()  # Rekognition is back: the retry publishes
    retry = functions.worker.invoke(_put_event(job_id, astronaut_path), context)
    assert retry == {"batchItemFailures": []}
    assert job(aws, job_id)["status"] == "done"


def test_a_photo_too_long_and_thin_for_rekognition_is_refused_as_bad_input_before_any_call(
    aws: Aws, functions: Functions, context: Any, moderating: Any
) -> None:
    rekognition = moderating(functions, [])
    # 40x9000: 80 px wide (Rekognition's minimum) it would be 18,000 tall, over its 10,000.
    strip = cv2.imencode(".png", np.full((9000, 40, 3), 128, np.uint8))[1].tobytes()

    job_id, response = _blur(aws, functions, context, strip)

    assert response == {"batchItemFailures": []}  # bad input: no retry, no DLQ
    assert rekognition.images == []  # refused before the paid call
    record = job(aws, job_id)
    assert record["status"] == "failed" and record["errorCode"] == "image_too_narrow"
    assert aws.keys(BLURRED_BUCKET) == [] and aws.keys(UPLOADS_BUCKET) == []  # original deleted too


@pytest.mark.parametrize(
    "code", ["InvalidParameterException", "InvalidImageFormatException", "ImageTooLargeException"]
)
def test_an_image_rekognition_refuses_fails_the_photo_without_retries_and_alarms(
    aws: Aws,
    functions: Functions,
    context: Any,
    astronaut_path: Path,
    moderating: Any,
    capsys: Any,
    code: str,
) -> None:
    rekognition = moderating(functions, [], errors=[code])
    capsys.readouterr()

    job_id, response = _blur(aws, functions, context, astronaut_path.read_bytes())

    assert response == {"batchItemFailures": []}
    assert len(rekognition.images) == 1  # one call: the same image would be refused again
    record = job(aws, job_id)
    assert record["status"] == "failed" and record["errorCode"] == "image_refused_by_detector"
    assert aws.keys(BLURRED_BUCKET) == [] and aws.keys(UPLOADS_BUCKET) == []
    # Counted, since the limits were checked before the call: in total (the alarm's series), and by operation.
    assert _refusals(_json_lines(capsys.readouterr().out)) == [
        ({"service": SERVICE}, 1.0),
        ({"service": SERVICE, "Operation": "DetectModerationLabels"}, 1.0),
    ]


def _refusals(lines: list[dict[str, Any]]) -> list[tuple[dict[str, str], float]]:
    """Each ImageRefusedByDetector value the worker wrote (EMF), with its dimensions."""
    found = []
    for line in lines:
        for metrics in line.get("_aws", {}).get("CloudWatchMetrics", []):
            if any(m["Name"] == IMAGE_REFUSED_METRIC for m in metrics["Metrics"]):
                (dimensions,) = metrics["Dimensions"]
                values = line[IMAGE_REFUSED_METRIC]
                for value in values if isinstance(values, list) else [values]:
                    found.append(({name: line[name] for name in dimensions}, value))
    return sorted(found, key=lambda one: len(one[0]))


def test_blocked_categories_are_read_ignoring_case(
    aws: Aws, functions: Functions, context: Any, astronaut_path: Path, moderating: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MODERATION_BLOCKED", "explicit,VIOLENCE")
    get_settings.cache_clear()
    moderating(functions, EXPLICIT)

    job_id, response = _blur(aws, functions, context, astronaut_path.read_bytes())

    assert response == {"batchItemFailures": []}
    assert job(aws, job_id)["errorCode"] == "content_refused"


def _misconfigured(
    aws: Aws, functions: Functions, context: Any, photo: bytes, capsys: Any
) -> tuple[str, dict[str, Any]]:
    """Blur PHOTO while moderation cannot judge; the job and the worker's answer, after checking what
    must hold: nothing published or mailed, the original kept for a redrive, and the metric counted."""
    capsys.readouterr()
    job_id, response = _blur(aws, functions, context, photo)
    assert len(response["batchItemFailures"]) == 1  # retried, then dead-lettered: redriven once fixed
    assert job(aws, job_id)["status"] == "processing"
    assert aws.keys(BLURRED_BUCKET) == [] and aws.sent_emails() == []
    assert aws.keys(UPLOADS_BUCKET) == [f"uploads/{job_id}"]
    assert _metric_values(_json_lines(capsys.readouterr().out), "ModerationMisconfigured") == [1.0]
    return job_id, response


@pytest.mark.parametrize("blocked", ["Explict,Violence", "Suggestive,Violence"], ids=["typo", "v6.1 name"])
def test_a_blocked_name_that_is_no_v7_category_publishes_nothing_and_alarms(
    aws: Aws,
    functions: Functions,
    context: Any,
    astronaut_path: Path,
    moderating: Any,
    monkeypatch: Any,
    capsys: Any,
    blocked: str,
) -> None:
    monkeypatch.setenv("MODERATION_BLOCKED", blocked)
    get_settings.cache_clear()
    rekognition = moderating(functions, SWIMWEAR)  # publishable, were it judged

    _misconfigured(aws, functions, context, astronaut_path.read_bytes(), capsys)

    assert rekognition.images == []  # no paid call that could not be judged


def test_an_answer_from_another_model_version_publishes_nothing_and_alarms(
    aws: Aws, functions: Functions, context: Any, astronaut_path: Path, moderating: Any, capsys: Any
) -> None:
    rekognition = moderating(functions, SWIMWEAR, version="6.1")

    _misconfigured(aws, functions, context, astronaut_path.read_bytes(), capsys)

    assert len(rekognition.images) == 1


def test_moderation_off_makes_no_call(
    aws: Aws, functions: Functions, context: Any, astronaut_path: Path, moderating: Any, monkeypatch: Any
) -> None:
    rekognition = moderating(functions, EXPLICIT)
    monkeypatch.setenv("MODERATION", "off")
    get_settings.cache_clear()

    job_id, response = _blur(aws, functions, context, astronaut_path.read_bytes())

    assert response == {"batchItemFailures": []}
    assert rekognition.images == []
    assert job(aws, job_id)["status"] == "done"


@pytest.mark.parametrize("roles", [{"Moderation": "off"}], indirect=True)
def test_a_role_without_the_permission_is_denied_and_publishes_nothing(
    aws: Aws, functions: Functions, context: Any, astronaut_path: Path, moderating: Any
) -> None:
    # The role made from Moderation=off lacks rekognition:DetectModerationLabels; the function asks anyway.
    rekognition = moderating(functions, [])

    job_id, response = _blur(aws, functions, context, astronaut_path.read_bytes())

    assert len(response["batchItemFailures"]) == 1
    assert rekognition.images == []  # moto refused it before the stand-in answered
    assert aws.keys(BLURRED_BUCKET) == []
    assert job(aws, job_id)["status"] == "processing"


def _rekognition_actions(role: RoleSpec) -> set[str]:
    return {
        action
        for document in role.policies.values()
        for statement in document["Statement"]
        for action in _as_list(statement.get("Action", []))
        if action.startswith("rekognition:")
    }


def test_the_worker_role_allows_exactly_the_new_call(template_roles: dict[str, RoleSpec]) -> None:
    assert _rekognition_actions(template_roles["BlurFunction"]) == {
        "rekognition:DetectFaces",
        "rekognition:DetectModerationLabels",
    }
    off = read_function_roles(TEMPLATE, PARAMETERS | {"Moderation": "off"}, RESOURCE_NAMES)
    actions = {name: _rekognition_actions(role) for name, role in off.items()}
    assert actions.pop("BlurFunction") == {"rekognition:DetectFaces"}
    assert set(actions) >= {"ApiFunction", "SiteContentFunction", "VariantsFunction"}
    assert all(found == set() for found in actions.values()), actions  # no other function calls Rekognition


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _status_event(job_id: str) -> dict[str, Any]:
    from .helpers import load_event

    event = load_event("api_get_job.json")
    event["pathParameters"] = {"jobId": job_id}
    event["rawPath"] = f"/jobs/{job_id}"
    return event


def _put_event(job_id: str, astronaut_path: Path) -> dict[str, Any]:
    from .helpers import s3_put_event

    return s3_put_event(f"uploads/{job_id}", len(astronaut_path.read_bytes()))
