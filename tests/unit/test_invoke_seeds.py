"""What the `make invoke` checks leave on a stack they share with `make run` (the client's quotas, the
messages their seeds cause), and how a blurred photo is told from its claim: on moto in-process and on
pixels made here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import boto3
import cv2
import numpy as np
import pytest
from moto import mock_aws

from photoveil.adapters.quotas import QuotaCounters
from photoveil.imaging.faces import Face
from photoveil.service.quotas import DAY, HOUR, Limit, allow, client_key, recipient_key
from photoveil_dev.invoke.cases import BAD_JOB, GOOD_JOB, client_ip, fresh_client, seeded_keys
from photoveil_dev.invoke.pixels import BlurCheckError, blur_verdict
from photoveil_dev.invoke.queues import about, drain

REGION = "us-east-1"


class MotoStack:
    """The parts of a StackState the seeds use, on moto in-process."""

    uploads_bucket = "photoveil-uploads-123456789012-10ca1000"
    blurred_bucket = "photoveil-blurred-123456789012-10ca1000"
    environment: ClassVar[dict[str, str]] = {"QUOTAS_TABLE": "photoveil-Quotas"}

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoStack]:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=MotoStack.environment["QUOTAS_TABLE"],
            KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield MotoStack()


def test_a_run_starts_with_nothing_counted_for_the_events_client(stack: MotoStack) -> None:
    # make run keeps a deployment's quotas: 3 emails asked for a day from one address. The second run of
    # a day had its photo's email refused ("the worker sent no photo-ready email").
    counters = QuotaCounters(stack.environment["QUOTAS_TABLE"], client=stack.client("dynamodb"))
    now = datetime.now(UTC)
    emails, uploads = Limit("emails-client-day", DAY, 3, "-"), Limit("uploads-client-hour", HOUR, 20, "-")
    someone = client_key("198.51.100.7")
    for _ in range(3):
        assert allow(counters, now, emails, client_key(client_ip()))
        assert allow(counters, now, uploads, client_key(client_ip()))
    assert allow(counters, now, emails, someone)
    counters.suppress(recipient_key("x@example.com"), reason="bounce", now=now)
    assert not allow(counters, now, emails, client_key(client_ip()))

    fresh_client(stack)  # type: ignore[arg-type]

    assert allow(counters, now, emails, client_key(client_ip()))
    assert counters.used(emails.counter_key(someone, now)) == 1  # another client's count is kept
    assert counters.is_suppressed(recipient_key("x@example.com"), now=now)


def _s3_event(bucket: str, key: str) -> str:
    return json.dumps({"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]})


def test_the_messages_the_seeds_caused_are_drained_and_no_other(stack: MotoStack) -> None:
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName="photoveil-BlurQueue")["QueueUrl"]
    seeded = seeded_keys(stack)  # type: ignore[arg-type]
    assert (stack.uploads_bucket, f"uploads/{BAD_JOB}") in seeded
    assert (stack.blurred_bucket, f"p/{GOOD_JOB}.jpg") in seeded
    sqs.send_message(QueueUrl=url, MessageBody=_s3_event(stack.uploads_bucket, f"uploads/{GOOD_JOB}"))
    envelope = {"Type": "Notification", "Message": _s3_event(stack.blurred_bucket, f"p/{GOOD_JOB}.jpg")}
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(envelope))
    theirs = _s3_event(stack.uploads_bucket, "uploads/0123456789abcdef0123456789abcdef")
    sqs.send_message(QueueUrl=url, MessageBody=theirs)
    # The same key in another bucket is not the seeds'.
    sqs.send_message(QueueUrl=url, MessageBody=_s3_event("other-bucket", f"uploads/{GOOD_JOB}"))
    # What S3 sends when the stack sets its notifications up: a mapping's function only acknowledges it.
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}))

    assert drain(sqs, url, about(seeded)) == 3

    left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert sorted(message["Body"] for message in left) == sorted(
        [theirs, _s3_event("other-bucket", f"uploads/{GOOD_JOB}")]
    )


# ---------------------------------------------------------------- faces blurred, seen in the pixels
FACE = Face(60, 50, 120, 130, 0.9)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (200, 240, 3), dtype=np.uint8)


def _blurred(photo: np.ndarray, y: slice, x: slice) -> np.ndarray:
    out = photo.copy()
    out[y, x] = cv2.GaussianBlur(photo[y, x], (31, 31), 0)
    return out


def test_a_photo_blurred_where_its_face_is_passes(photo: np.ndarray) -> None:
    assert "each face changed" in blur_verdict(photo, _blurred(photo, slice(40, 140), slice(50, 130)), [FACE])


def test_a_photo_published_as_it_was_fails(photo: np.ndarray) -> None:
    with pytest.raises(BlurCheckError, match="not blurred"):
        blur_verdict(photo, photo.copy(), [FACE])


def test_a_photo_blurred_elsewhere_fails(photo: np.ndarray) -> None:
    everywhere = _blurred(photo, slice(0, 200), slice(0, 240))
    with pytest.raises(BlurCheckError, match="outside the faces"):
        blur_verdict(photo, everywhere, [FACE])
    with pytest.raises(BlurCheckError, match="no face"):
        blur_verdict(photo, everywhere, [])
