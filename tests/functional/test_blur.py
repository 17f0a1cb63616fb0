"""BlurFunction against moto with the events/ files: what lands in S3, the job record and
``batchItemFailures``."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from botocore.exceptions import ClientError

from photoveil.adapters.jobs import JobStore
from photoveil.errors import DetectorError
from photoveil.handlers import worker
from photoveil.imaging.faces import Face
from photoveil.imaging.pipeline import blur_photo
from photoveil.local.events import LambdaContext
from photoveil.observability import logger
from photoveil.settings import get_settings

from .helpers import (
    BAD_JOB,
    BLURRED_BUCKET,
    GOOD_JOB,
    JOBS_TABLE,
    PUBLIC_BASE_URL,
    SENDER,
    UPLOADS_BUCKET,
    Aws,
    FixedBoxDetector,
    Functions,
    load_event,
    s3_put_event,
)


def create_job(
    functions: Functions, context: Any, *, email: str | None = "alice@example.com", size: int = 1000
) -> str:
    """Create a job the way the browser does: through the API handler and its sample event."""
    event = copy.deepcopy(load_event("api_create_upload.json"))
    body: dict[str, Any] = {"contentType": "image/png", "size": size}
    if email:
        body["email"] = email
    event["body"] = json.dumps(body)
    response = functions.api.invoke(event, context)
    assert response["statusCode"] == 201, response["body"]
    return json.loads(response["body"])["jobId"]


def job(aws: Aws, job_id: str) -> dict[str, Any]:
    item = aws.item(job_id)
    assert item is not None
    return {k: next(iter(v.values())) for k, v in item.items()}


def upload_and_blur(aws: Aws, functions: Functions, context: Any, job_id: str, data: bytes) -> dict[str, Any]:
    aws.put_upload(f"uploads/{job_id}", data)
    return functions.worker.invoke(s3_put_event(f"uploads/{job_id}", len(data)), context)


def test_photo_with_a_face_is_blurred_published_and_emailed_once(
    aws: Aws, functions: Functions, detector: FixedBoxDetector, context: Any, astronaut_path: Path
) -> None:
    original = astronaut_path.read_bytes()
    job_id = create_job(functions, context, size=len(original))

    response = upload_and_blur(aws, functions, context, job_id, original)

    assert response == {"batchItemFailures": []}
    assert aws.keys(UPLOADS_BUCKET) == []  # the original is gone
    assert aws.keys(BLURRED_BUCKET) == [f"p/{job_id}.jpg"]
    obj = aws.s3.get_object(Bucket=BLURRED_BUCKET, Key=f"p/{job_id}.jpg")
    assert obj["ContentType"] == "image/jpeg"
    assert obj["CacheControl"] == "public, max-age=86400, immutable"
    jpeg = obj["Body"].read()
    assert jpeg[:3] == b"\xff\xd8\xff"
    blurred = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    source = cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_COLOR)
    assert blurred.shape == source.shape == (512, 512, 3)
    # Inside the (fake) face box the photo changed a lot; far outside it barely (JPEG noise only).
    face = (slice(int(0.15 * 512), int(0.3 * 512)), slice(int(0.35 * 512), int(0.5 * 512)))
    corner = (slice(400, 512), slice(0, 100))
    assert np.abs(blurred[face].astype(int) - source[face]).mean() > 8
    assert np.abs(blurred[corner].astype(int) - source[corner]).mean() < 4

    record = job(aws, job_id)
    assert record["status"] == "done"
    assert int(record["faces"]) == 1 == detector.calls
    assert record["photoKey"] == f"p/{job_id}.jpg"
    assert "email" not in record  # not kept once used

    emails = aws.sent_emails()
    assert len(emails) == 1
    assert emails[0].source == SENDER
    assert emails[0].destinations["ToAddresses"] == ["alice@example.com"]
    assert f"{PUBLIC_BASE_URL}/view.html#{job_id}" in emails[0].body  # the viewer page, not the JPEG

    status = functions.api.invoke(_get_event(job_id), context)
    body = json.loads(status["body"])
    assert body["status"] == "done" and body["faces"] == 1
    assert body["photoUrl"] == f"{PUBLIC_BASE_URL}/p/{job_id}.jpg"
    assert body["expiresAt"] == record["expiresAt"]
    assert "alice" not in status["body"]


def test_duplicate_event_is_a_no_op(
    aws: Aws, functions, detector, context: Any, astronaut_path: Path
) -> None:
    data = astronaut_path.read_bytes()
    job_id = create_job(functions, context)
    event = s3_put_event(f"uploads/{job_id}", len(data))
    aws.put_upload(f"uploads/{job_id}", data)
    assert functions.worker.invoke(event, context) == {"batchItemFailures": []}
    before = aws.s3.head_object(Bucket=BLURRED_BUCKET, Key=f"p/{job_id}.jpg")
    item_before = aws.item(job_id)

    assert functions.worker.invoke(copy.deepcopy(event), context) == {"batchItemFailures": []}

    after = aws.s3.head_object(Bucket=BLURRED_BUCKET, Key=f"p/{job_id}.jpg")
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    assert aws.item(job_id) == item_before
    assert detector.calls == 1  # not blurred twice
    assert len(aws.sent_emails()) == 1


def test_second_upload_after_done_is_deleted_not_republished(
    aws: Aws, functions, detector, context, astronaut_path
):
    # The presigned form stays valid for minutes: a second POST must not replace the published photo.
    job_id = create_job(functions, context)
    upload_and_blur(aws, functions, context, job_id, astronaut_path.read_bytes())
    etag = aws.s3.head_object(Bucket=BLURRED_BUCKET, Key=f"p/{job_id}.jpg")["ETag"]

    assert upload_and_blur(aws, functions, context, job_id, b"\x89PNG other bytes") == {
        "batchItemFailures": []
    }

    assert aws.keys(UPLOADS_BUCKET) == []
    assert aws.s3.head_object(Bucket=BLURRED_BUCKET, Key=f"p/{job_id}.jpg")["ETag"] == etag
    assert len(aws.sent_emails()) == 1


def test_non_image_ends_failed_with_its_reason(aws: Aws, functions, detector, context) -> None:
    job_id = create_job(functions, context)

    response = upload_and_blur(aws, functions, context, job_id, b"%PDF-1.7 definitely not a photo\n" * 20)

    assert response == {"batchItemFailures": []}  # permanent: acknowledged, never retried
    record = job(aws, job_id)
    assert record["status"] == "failed"
    assert record["errorCode"] == "unsupported_format"
    assert record["errorMessage"]
    assert "email" not in record
    assert aws.keys(UPLOADS_BUCKET) == [] and aws.keys(BLURRED_BUCKET) == []
    assert aws.sent_emails() == []
    assert detector.calls == 0
    status = json.loads(functions.api.invoke(_get_event(job_id), context)["body"])
    assert status["error"]["code"] == "unsupported_format"


def test_empty_upload_ends_failed(aws: Aws, functions, context) -> None:
    job_id = create_job(functions, context)
    assert upload_and_blur(aws, functions, context, job_id, b"") == {"batchItemFailures": []}
    assert job(aws, job_id)["errorCode"] == "empty_file"
    assert aws.keys(UPLOADS_BUCKET) == []


@pytest.mark.parametrize("event_size", ["honest", "lying"])
def test_oversize_object_ends_failed_and_is_deleted(
    aws: Aws, functions, detector, context, astronaut_path, monkeypatch, event_size
) -> None:
    # The client ignored the policy (moto does not enforce it; neither does a hand-made request).
    data = astronaut_path.read_bytes()
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(len(data) - 1))
    get_settings.cache_clear()
    job_id = create_job(functions, context, size=100)
    aws.put_upload(f"uploads/{job_id}", data)
    size_in_event = len(data) if event_size == "honest" else 100  # the event's size is not trusted either

    response = functions.worker.invoke(s3_put_event(f"uploads/{job_id}", size_in_event), context)

    assert response == {"batchItemFailures": []}
    record = job(aws, job_id)
    assert (record["status"], record["errorCode"]) == ("failed", "file_too_large")
    assert aws.keys(UPLOADS_BUCKET) == [] and aws.keys(BLURRED_BUCKET) == []
    assert detector.calls == 0


class S3GetFault:
    """A real S3 client whose GetObject fails the way S3 does under load, for chosen keys."""

    def __init__(self, client: Any, failing_keys: set[str]) -> None:
        self._client = client
        self.failing_keys = failing_keys

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"] in self.failing_keys:
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "GetObject"
            )
        return self._client.get_object(**kwargs)


def test_transient_s3_error_fails_the_record_and_publishes_nothing(
    aws: Aws, functions: Functions, detector, context, astronaut_path
):
    fault = S3GetFault(functions.worker.dependencies.s3_client, {f"uploads/{GOOD_JOB}"})
    functions.worker.override(s3=fault)
    _seed_job(aws, GOOD_JOB)
    data = astronaut_path.read_bytes()
    aws.put_upload(f"uploads/{GOOD_JOB}", data)
    event = s3_put_event(f"uploads/{GOOD_JOB}", len(data))

    response = functions.worker.invoke(event, context)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert job(aws, GOOD_JOB)["status"] == "processing"
    assert aws.keys(BLURRED_BUCKET) == []
    assert aws.keys(UPLOADS_BUCKET) == [f"uploads/{GOOD_JOB}"]  # kept for the retry
    assert aws.sent_emails() == []

    # SQS redelivers; S3 has recovered.
    fault.failing_keys.clear()
    assert functions.worker.invoke(event, context) == {"batchItemFailures": []}
    assert job(aws, GOOD_JOB)["status"] == "done"
    assert len(aws.sent_emails()) == 1


class BrokenDetector:
    name = "broken"

    def detect(self, image: np.ndarray) -> list[Any]:
        raise DetectorError("ThrottlingException: Rate exceeded")


def test_detector_error_fails_closed(aws: Aws, functions: Functions, context, astronaut_path) -> None:
    functions.worker.override(detector=BrokenDetector())
    _seed_job(aws, GOOD_JOB)
    data = astronaut_path.read_bytes()
    aws.put_upload(f"uploads/{GOOD_JOB}", data)
    event = s3_put_event(f"uploads/{GOOD_JOB}", len(data))

    response = functions.worker.invoke(event, context)

    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert aws.keys(BLURRED_BUCKET) == []  # an unblurred photo is never published
    assert job(aws, GOOD_JOB)["status"] == "processing"
    assert aws.keys(UPLOADS_BUCKET) == [f"uploads/{GOOD_JOB}"]


def test_batch_with_one_bad_record_reports_only_that_one(
    aws: Aws, functions: Functions, detector, context, astronaut_path
):
    event = load_event("sqs_batch_one_bad.json")
    good_message, bad_message = (r["messageId"] for r in event["Records"])
    functions.worker.override(s3=S3GetFault(functions.worker.dependencies.s3_client, {f"uploads/{BAD_JOB}"}))
    data = astronaut_path.read_bytes()
    for job_id in (GOOD_JOB, BAD_JOB):
        _seed_job(aws, job_id)
        aws.put_upload(f"uploads/{job_id}", data)

    response = functions.worker.invoke(event, context)

    assert response == {"batchItemFailures": [{"itemIdentifier": bad_message}]}
    assert good_message != bad_message
    assert job(aws, GOOD_JOB)["status"] == "done"
    assert job(aws, BAD_JOB)["status"] == "processing"
    assert aws.keys(BLURRED_BUCKET) == [f"p/{GOOD_JOB}.jpg"]


def test_batch_with_a_non_image_acknowledges_both(aws: Aws, functions, context, astronaut_path) -> None:
    event = load_event("sqs_batch_one_bad.json")
    _seed_job(aws, GOOD_JOB)
    _seed_job(aws, BAD_JOB)
    aws.put_upload(f"uploads/{GOOD_JOB}", astronaut_path.read_bytes())
    aws.put_upload(f"uploads/{BAD_JOB}", b"GIF89a" + b"\x00" * 1331)

    assert functions.worker.invoke(event, context) == {"batchItemFailures": []}
    assert job(aws, GOOD_JOB)["status"] == "done"
    assert job(aws, BAD_JOB)["status"] == "failed"


def test_s3_test_event_is_acknowledged(aws: Aws, functions, detector, context) -> None:
    assert functions.worker.invoke(load_event("sqs_s3_test_event.json"), context) == {"batchItemFailures": []}
    assert detector.calls == 0


def test_stray_key_with_spaces_and_unicode_is_decoded_and_deleted(
    aws: Aws, functions, detector, context
) -> None:
    event = load_event("sqs_s3_put.json")
    key = "uploads/Family photo \u2013 \u00e9t\u00e9 2024 (1) \U0001f600.jpg"  # as in sqs_s3_put.json
    aws.put_upload(key, b"whatever")
    aws.put_upload(f"uploads/{GOOD_JOB}", b"unrelated and untouched")

    assert functions.worker.invoke(event, context) == {"batchItemFailures": []}

    assert aws.keys(UPLOADS_BUCKET) == [f"uploads/{GOOD_JOB}"]
    assert detector.calls == 0


def test_upload_without_a_job_is_deleted(aws: Aws, functions, detector, context) -> None:
    job_id = "c" * 32
    aws.put_upload(f"uploads/{job_id}", b"\x89PNG...")
    assert functions.worker.invoke(s3_put_event(f"uploads/{job_id}", 7), context) == {"batchItemFailures": []}
    assert aws.keys(UPLOADS_BUCKET) == []
    assert aws.item(job_id) is None
    assert detector.calls == 0


def test_non_object_created_events_are_ignored(aws: Aws, functions, detector, context) -> None:
    event = s3_put_event(f"uploads/{GOOD_JOB}", 10)
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    event["Records"][0]["body"] = json.dumps(body)
    _seed_job(aws, GOOD_JOB)
    aws.put_upload(f"uploads/{GOOD_JOB}", b"\x89PNG")

    assert functions.worker.invoke(event, context) == {"batchItemFailures": []}
    assert job(aws, GOOD_JOB)["status"] == "awaiting_upload"
    assert aws.keys(UPLOADS_BUCKET) == [f"uploads/{GOOD_JOB}"]


def test_email_failure_never_loses_the_photo(
    aws: Aws, functions, context, astronaut_path, capsys, logs
) -> None:
    aws.ses.delete_identity(Identity=SENDER)  # SES now rejects the sender (MessageRejected)
    job_id = create_job(functions, context)
    capsys.readouterr()

    assert upload_and_blur(aws, functions, context, job_id, astronaut_path.read_bytes()) == {
        "batchItemFailures": []
    }

    assert job(aws, job_id)["status"] == "done"
    assert aws.keys(BLURRED_BUCKET) == [f"p/{job_id}.jpg"]
    assert aws.sent_emails() == []
    assert any(line["message"] == "email not sent" and line.get("job_id") == job_id for line in logs())
    assert _metric_values(_json_lines(capsys.readouterr().out), "EmailFailed") == [1.0]


class SesRefusing:
    """SES as it answers for an unverified recipient in the sandbox: its message names the address."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name != "send_email":
            return getattr(self._client, name)

        def refuse(**kwargs: Any) -> Any:
            (to,) = kwargs["Destination"]["ToAddresses"]
            message = f"Email address is not verified. The following identities failed the check: {to}"
            raise ClientError({"Error": {"Code": "MessageRejected", "Message": message}}, "SendEmail")

        return refuse


def test_no_email_address_reaches_a_log_line_not_even_in_ses_s_error(
    aws: Aws, functions, context, astronaut_path, capsys, logs
) -> None:
    functions.worker.override(ses=SesRefusing(functions.worker.dependencies.ses_client))
    job_id = create_job(functions, context, email="carol.secret@example.com")

    assert upload_and_blur(aws, functions, context, job_id, astronaut_path.read_bytes()) == {
        "batchItemFailures": []
    }

    assert job(aws, job_id)["status"] == "done" and aws.sent_emails() == []
    (line,) = [line for line in logs() if line["message"] == "email not sent"]
    assert (line["error"], line["code"]) == ("ClientError", "MessageRejected")
    printed = capsys.readouterr()
    everything = printed.out + printed.err + json.dumps(logs())
    assert "carol.secret" not in everything


def test_no_email_without_an_address(aws: Aws, functions, context, astronaut_path) -> None:
    job_id = create_job(functions, context, email=None)
    upload_and_blur(aws, functions, context, job_id, astronaut_path.read_bytes())
    assert job(aws, job_id)["status"] == "done"
    assert aws.sent_emails() == []


def test_logs_carry_the_job_id_and_metrics_are_emitted(
    aws: Aws, functions, context, astronaut_path, capsys, logs
):
    job_id = create_job(functions, context)
    capsys.readouterr()
    upload_and_blur(aws, functions, context, job_id, astronaut_path.read_bytes())
    bad_id = create_job(functions, context)
    upload_and_blur(aws, functions, context, bad_id, b"not an image at all")
    lines = _json_lines(capsys.readouterr().out)

    messages = {line["message"]: line for line in logs()}
    assert messages["photo blurred"]["job_id"] == job_id
    assert messages["email sent"]["job_id"] == job_id
    assert messages["photo refused"]["job_id"] == bad_id
    assert "job_id" not in logger.get_current_keys()  # cleared after each record
    assert _metric_values(lines, "PhotosBlurred") == [1.0]
    assert _metric_values(lines, "FacesBlurred") == [1.0]
    for name in ("DecodeTime", "DetectTime", "BlurTime", "EncodeTime", "UploadToDoneLatency"):
        assert len(_metric_values(lines, name)) == 1
    assert _metric_values(lines, "PhotosFailed") == [1.0]
    by_reason = [line for line in lines if "PhotosFailedByReason" in line]
    assert [line["Reason"] for line in by_reason] == ["unsupported_format"]


@pytest.mark.slow
def test_real_centerface_detector_finds_and_blurs_the_astronaut(
    aws: Aws, functions: Functions, context, astronaut_path
) -> None:
    # The production wiring from the environment, model included: no fake anywhere.
    functions.worker.override(detector=None)
    job_id = create_job(functions, context)
    assert upload_and_blur(aws, functions, context, job_id, astronaut_path.read_bytes()) == {
        "batchItemFailures": []
    }
    record = job(aws, job_id)
    assert record["status"] == "done"
    assert int(record["faces"]) == 1
    assert aws.keys(BLURRED_BUCKET) == [f"p/{job_id}.jpg"]
    assert aws.keys(UPLOADS_BUCKET) == []


def _seed_job(aws: Aws, job_id: str) -> None:
    """A job as the API leaves it, for events whose job id is fixed (events/sqs_batch_one_bad.json)."""
    now = datetime.now(UTC)
    JobStore(JOBS_TABLE, client=aws.dynamodb).create(
        job_id,
        content_type="image/png",
        size=1000,
        email="bob@example.com",
        owner_token_hash="0" * 64,
        now=now,
        ttl=int(now.timestamp()) + 3600,
    )


def _get_event(job_id: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("api_get_job.json"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/jobs/{job_id}"
    event["pathParameters"] = {"jobId": job_id}
    return event


def _json_lines(out: str) -> list[dict[str, Any]]:
    lines = []
    for raw in out.splitlines():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


def _metric_values(lines: list[dict[str, Any]], name: str) -> list[float]:
    values: list[float] = []
    for line in lines:
        if "_aws" in line and name in line:
            value = line[name]
            values.extend(value if isinstance(value, list) else [value])
    return values


class RacingJobs:
    """The real JobStore, except another worker refuses the photo just before this one finishes."""

    def __init__(self, jobs: Any) -> None:
        self._jobs = jobs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jobs, name)

    def mark_done(self, job_id: str, **kwargs: Any) -> Any:
        now = kwargs["now"]
        self._jobs.mark_failed(job_id, code="unsupported_format", message="x", now=now, ttl=10**10)
        return self._jobs.mark_done(job_id, **kwargs)


def test_losing_a_race_to_a_refusal_withdraws_the_photo(aws: Aws, functions, context, astronaut_path) -> None:
    deps = functions.worker.dependencies
    deps.jobs  # noqa: B018  (build the real store first, then wrap it)
    deps.__dict__["jobs"] = RacingJobs(deps.jobs)
    job_id = create_job(functions, context)

    assert upload_and_blur(aws, functions, context, job_id, astronaut_path.read_bytes()) == {
        "batchItemFailures": []
    }

    assert job(aws, job_id)["status"] == "failed"
    assert aws.keys(BLURRED_BUCKET) == []
    assert aws.keys(UPLOADS_BUCKET) == []
    assert aws.sent_emails() == []


def test_event_for_a_vanished_upload_ends_failed_not_retried_forever(
    aws: Aws, functions, detector, context
) -> None:
    job_id = create_job(functions, context)  # the object was never written (or the lifecycle rule removed it)
    assert functions.worker.invoke(s3_put_event(f"uploads/{job_id}", 1000), context) == {
        "batchItemFailures": []
    }
    assert job(aws, job_id)["errorCode"] == "upload_missing"
    assert detector.calls == 0


def _record(**overrides: Any) -> dict[str, Any]:
    """One S3 ObjectCreated record for GOOD_JOB's upload, with some fields replaced or removed (None)."""
    record: dict[str, Any] = {
        "eventName": "ObjectCreated:Post",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "s3": {"bucket": {"name": UPLOADS_BUCKET}, "object": {"key": f"uploads/{GOOD_JOB}", "size": 7}},
    }
    for name, value in overrides.items():
        if value is None:
            record.pop(name)
        else:
            record[name] = value
    return record


# Every shape the worker acknowledged before it read events through the Powertools data classes.
ACKNOWLEDGED_BODIES = {
    "not JSON": "this is not JSON",
    "JSON list": "[1, 2]",
    "JSON string": '"Records"',
    "JSON null": "null",
    "no Records": json.dumps({"hello": "world"}),
    "s3:TestEvent": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": UPLOADS_BUCKET}),
    "Records a string": json.dumps({"Records": "abc"}),
    "Records a number": json.dumps({"Records": 5}),
    "Records null": json.dumps({"Records": None}),
    "Records an object": json.dumps({"Records": {"eventName": "ObjectCreated:Put"}}),
    "a record not an object": json.dumps({"Records": ["ObjectCreated:Put"]}),
    "no s3": json.dumps({"Records": [_record(s3=None)]}),
    "s3 a list": json.dumps({"Records": [_record(s3=[1])]}),
    "no bucket": json.dumps({"Records": [_record(s3={"object": {"key": f"uploads/{GOOD_JOB}"}})]}),
    "no object": json.dumps({"Records": [_record(s3={"bucket": {"name": UPLOADS_BUCKET}})]}),
    "key a number": json.dumps(
        {"Records": [_record(s3={"bucket": {"name": UPLOADS_BUCKET}, "object": {"key": 5}})]}
    ),
    "no eventName": json.dumps({"Records": [_record(eventName=None)]}),
    "eventName a number": json.dumps({"Records": [_record(eventName=3)]}),
    "ObjectRemoved": json.dumps({"Records": [_record(eventName="ObjectRemoved:Delete")]}),
    "another bucket": json.dumps(
        {"Records": [_record(s3={"bucket": {"name": "elsewhere"}, "object": {"key": f"uploads/{GOOD_JOB}"}})]}
    ),
}


@pytest.mark.parametrize("body", ACKNOWLEDGED_BODIES.values(), ids=ACKNOWLEDGED_BODIES.keys())
def test_messages_no_retry_can_fix_are_acknowledged_and_change_nothing(
    aws: Aws, functions, detector, context, body: str
) -> None:
    _seed_job(aws, GOOD_JOB)
    aws.put_upload(f"uploads/{GOOD_JOB}", b"\x89PNG")
    event = s3_put_event(f"uploads/{GOOD_JOB}", 4)
    event["Records"][0]["body"] = body

    assert functions.worker.invoke(event, context) == {"batchItemFailures": []}

    assert job(aws, GOOD_JOB)["status"] == "awaiting_upload"
    assert aws.keys(UPLOADS_BUCKET) == [f"uploads/{GOOD_JOB}"]
    assert aws.keys(BLURRED_BUCKET) == []
    assert detector.calls == 0


def test_a_misshapen_record_does_not_cost_its_neighbour_the_photo(
    aws: Aws, functions, detector, context, astronaut_path
) -> None:
    _seed_job(aws, GOOD_JOB)
    data = astronaut_path.read_bytes()
    aws.put_upload(f"uploads/{GOOD_JOB}", data)
    event = s3_put_event(f"uploads/{GOOD_JOB}", len(data))
    event["Records"][0]["body"] = json.dumps({"Records": [_record(s3=None), _record()]})

    assert functions.worker.invoke(event, context) == {"batchItemFailures": []}

    assert job(aws, GOOD_JOB)["status"] == "done"
    assert aws.keys(BLURRED_BUCKET) == [f"p/{GOOD_JOB}.jpg"]


class RunningOutContext(LambdaContext):
    """A Lambda context whose remaining time is whatever the test's slow detector leaves of it."""

    def __init__(self, left_s: float) -> None:
        super().__init__(function_name="BlurFunction", memory_limit_in_mb=2048, timeout_s=30)
        self.left_s = left_s

    def get_remaining_time_in_millis(self) -> int:
        return int(self.left_s * 1000)


class SlowDetector(FixedBoxDetector):
    """Each photo takes ``seconds`` of the invocation's time (on the context's clock, not really)."""

    def __init__(self, context: RunningOutContext, seconds: float) -> None:
        super().__init__()
        self.context, self.seconds = context, seconds

    def detect(self, image: np.ndarray) -> list[Any]:
        self.context.left_s -= self.seconds
        return super().detect(image)


def test_records_left_without_time_are_reported_unattempted(
    aws: Aws, functions: Functions, context, astronaut_path
) -> None:
    event = load_event("sqs_batch_one_bad.json")
    first, second = (r["messageId"] for r in event["Records"])
    clock = RunningOutContext(left_s=worker.MIN_SECONDS_TO_START + 5)
    detector = SlowDetector(clock, seconds=10)  # the first photo leaves too little for the second
    functions.worker.override(detector=detector)
    data = astronaut_path.read_bytes()
    for job_id in (GOOD_JOB, BAD_JOB):
        _seed_job(aws, job_id)
        aws.put_upload(f"uploads/{job_id}", data)

    response = functions.worker.invoke(event, clock)

    assert response == {"batchItemFailures": [{"itemIdentifier": second}]}
    assert first != second and detector.calls == 1
    assert job(aws, GOOD_JOB)["status"] == "done"
    assert job(aws, BAD_JOB)["status"] == "awaiting_upload"  # never started: no attempt counted
    assert aws.keys(UPLOADS_BUCKET) == [f"uploads/{BAD_JOB}"]  # kept for its retry


def test_an_invocation_with_too_little_time_starts_nothing(
    aws: Aws, functions, detector, astronaut_path
) -> None:
    event = load_event("sqs_batch_one_bad.json")
    for job_id in (GOOD_JOB, BAD_JOB):
        _seed_job(aws, job_id)
        aws.put_upload(f"uploads/{job_id}", astronaut_path.read_bytes())

    response = functions.worker.invoke(event, RunningOutContext(left_s=worker.MIN_SECONDS_TO_START - 1))

    assert len(response["batchItemFailures"]) == 2
    assert detector.calls == 0
    assert aws.keys(BLURRED_BUCKET) == []


class RekognitionAtItsLimits:
    """Stands in for DetectFaces: returns the faces it is given that Rekognition can see, as ratio boxes.

    Its documented limit: a face smaller than 40 x 40 px in a 1920 x 1080 image is not found.
    """

    def __init__(self, faces: list[tuple[int, int, int]], width: int, height: int) -> None:
        self.faces, self.width, self.height = faces, width, height
        self.calls = 0

    def detect_faces(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        scale = 1920 / max(self.width, self.height)
        return {
            "FaceDetails": [
                {
                    "BoundingBox": {
                        "Left": x / self.width,
                        "Top": y / self.height,
                        "Width": side / self.width,
                        "Height": side / self.height,
                    },
                    "Confidence": 99.9,
                }
                for x, y, side in self.faces
                if side * scale >= 40
            ]
        }


def _crowd(astronaut_path: Path) -> tuple[bytes, list[tuple[int, int, int]]]:
    """A 1920 x 1280 JPEG: one 420 px face and five 30 px faces (x, y, side), the first the large one."""
    head = cv2.imread(str(astronaut_path))[40:200, 140:300]
    canvas = np.repeat(np.linspace(90, 160, 1920, dtype=np.uint8)[None, :, None], 1280, axis=0)
    canvas = np.ascontiguousarray(np.repeat(canvas, 3, axis=2))
    faces = [
        (100, 100, 420),
        (900, 200, 30),
        (1200, 250, 30),
        (1500, 300, 30),
        (1000, 800, 30),
        (1400, 900, 30),
    ]
    for x, y, side in faces:
        canvas[y : y + side, x : x + side] = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes(), faces


def _template_default_detector() -> str:
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(Path(__file__).resolve().parents[2] / "template.yaml"))
    return str(template["Parameters"]["Detector"]["Default"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("detector_name", "small_faces_blurred"), [("default", True), ("rekognition", False)]
)
def test_the_default_detector_blurs_small_faces_rekognition_cannot_see(
    aws: Aws,
    functions: Functions,
    context,
    astronaut_path,
    monkeypatch,
    detector_name: str,
    small_faces_blurred: bool,
) -> None:
    monkeypatch.setenv(
        "DETECTOR", _template_default_detector() if detector_name == "default" else detector_name
    )
    get_settings.cache_clear()
    photo, faces = _crowd(astronaut_path)
    rekognition = RekognitionAtItsLimits(faces, 1920, 1280)
    functions.worker.override(rekognition=rekognition, detector=None)  # everything else as deployed
    job_id = create_job(functions, context, size=len(photo))

    assert upload_and_blur(aws, functions, context, job_id, photo) == {"batchItemFailures": []}

    assert rekognition.calls == 1
    assert job(aws, job_id)["status"] == "done"
    jpeg = aws.s3.get_object(Bucket=BLURRED_BUCKET, Key=f"p/{job_id}.jpg")["Body"].read()
    published = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(int)
    original = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR).astype(int)
    changes = [np.abs(published - original)[y : y + s, x : x + s].mean() for x, y, s in faces]
    assert changes[0] > 8  # the large face: both detectors see it
    assert all(bool(change > 8) is small_faces_blurred for change in changes[1:]), changes


class LookingAgainDetector(FixedBoxDetector):
    """Finds its one face, and looks again as the in-process detector does (detect_near): the first look
    finds the blurred head still there (a head, larger than the face), later ones nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.looks: list[list[Face]] = []

    def detect_near(self, image: np.ndarray, near: list[Face], *, exact: bool = False) -> list[Face]:
        self.looks.append(list(near))
        if len(self.looks) > 1:
            return []
        (face,) = near
        cx, cy = (face.x1 + face.x2) / 2, (face.y1 + face.y2) / 2
        half_w, half_h = 0.7 * face.width, 0.7 * face.height
        return [Face(cx - half_w, cy - half_h, cx + half_w, cy + half_h, 0.9)]


def test_the_worker_looks_again_at_the_photo_it_publishes_and_blurs_again_what_it_finds(
    aws: Aws, functions: Functions, context, astronaut_path
) -> None:
    detector = LookingAgainDetector()
    functions.worker.override(detector=detector)
    original = astronaut_path.read_bytes()
    job_id = create_job(functions, context, email=None)

    assert upload_and_blur(aws, functions, context, job_id, original) == {"batchItemFailures": []}

    # It looked round the face it blurred, found the head again, blurred it, and looked again: clean.
    (face,) = FixedBoxDetector().detect(np.zeros((512, 512, 3), np.uint8))
    assert len(detector.looks) == 2 and detector.looks[0] == [face] and face in detector.looks[1]
    jpeg = aws.s3.get_object(Bucket=BLURRED_BUCKET, Key=f"p/{job_id}.jpg")["Body"].read()
    published = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(int)
    unverified = blur_photo(original, FixedBoxDetector(), verify=False).jpeg
    once = cv2.imdecode(np.frombuffer(unverified, np.uint8), cv2.IMREAD_COLOR).astype(int)
    changed = np.abs(published - once).max(axis=2) > 12
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 500, "the head found again was blurred again"
    # ... round the head found again (its box: 1.4x the face's, centred on it), and nowhere else.
    head_x1, head_y1 = face.x1 - 0.2 * face.width, face.y1 - 0.2 * face.height
    head_x2, head_y2 = face.x2 + 0.2 * face.width, face.y2 + 0.2 * face.height
    assert head_x1 - 32 <= xs.min() and xs.max() <= head_x2 + 32
    assert head_y1 - 32 <= ys.min() and ys.max() <= head_y2 + 32
