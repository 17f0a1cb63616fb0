"""What the owner is promised, against moto with IAM enforced: a deleted or replaced version goes from the
bucket and the CDN even when a step fails once or a delete lands between any two steps of the worker."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from photoveil.local.events import sqs_batch_event
from photoveil.settings import get_settings

from .helpers import (
    BLUR_QUEUE_URL,
    BLURRED_BUCKET,
    PUBLIC_BASE_URL,
    REGION,
    UPLOADS_BUCKET,
    Aws,
    Functions,
    RecordingClient,
    load_event,
    s3_put_event,
)
from .test_owner import (
    BADGE,
    _distribution,
    _published_event,
    call,
    drain_blur_queue,
    owner_event,
    published,
    status,
)
from .test_owner import photo as photo

VARIANTS = ("200x150", "400x300", "800x600")


class FailingOnce:
    """A client whose OPERATION fails once with CODE (for keys starting with KEY_PREFIX), then works."""

    def __init__(self, client: Any, operation: str, code: str, key_prefix: str = "") -> None:
        self._client, self._operation, self._code, self._prefix = client, operation, code, key_prefix
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name != self._operation:
            return method

        def failing(**kwargs: Any) -> Any:
            if not self.failed and str(kwargs.get("Key", self._prefix)).startswith(self._prefix):
                self.failed += 1
                raise ClientError({"Error": {"Code": self._code, "Message": "failing once"}}, name)
            return method(**kwargs)

        return failing


class BeforeStep:
    """Wraps a function's clients and runs ACTION just before their STEP-th call (counted across them)."""

    def __init__(self, step: int, action: Callable[[], None]) -> None:
        self.step, self.action, self.calls = step, action, 0

    def wrap(self, client: Any) -> Any:
        hook = self

        class Wrapped:
            def __getattr__(self, name: str) -> Any:
                method = getattr(client, name)
                if not callable(method) or name.startswith(("get_paginator", "meta", "can_")):
                    return method

                def call(*args: Any, **kwargs: Any) -> Any:
                    hook.calls += 1
                    if hook.calls == hook.step:
                        hook.action()
                    return method(*args, **kwargs)

                return call

        return Wrapped()


def invoke_worker_with_a_delete_at(
    step: int, functions: Functions, event: dict[str, Any], job_id: str, token: str, context: Any
) -> list[int]:
    """Invoke the worker with EVENT while the owner's DELETE lands just before its STEP-th call to S3 or
    DynamoDB (after the invocation, when it makes fewer); the status codes the DELETE got."""
    deleted: list[int] = []

    def delete() -> None:
        deleted.append(call(functions, owner_event("DELETE", job_id, token), context)[0])

    hook = BeforeStep(step, delete)
    deps = functions.worker.dependencies
    functions.worker.override(s3=hook.wrap(deps.s3_client), dynamodb=hook.wrap(deps.dynamodb_client))
    functions.worker.invoke(event, context)
    if not deleted:
        delete()
    return deleted


@pytest.fixture
def cdn(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> str:
    """A distribution the functions invalidate (the local stack has none)."""
    with aws.unchecked():
        distribution = _distribution(aws.cloudfront)
    monkeypatch.setenv("DISTRIBUTION_ID", distribution)
    get_settings.cache_clear()
    return distribution


def invalidated(aws: Aws, distribution: str) -> list[list[str]]:
    with aws.unchecked():
        listed = aws.cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
        ids = [item["Id"] for item in listed.get("Items", [])]
        batches = [aws.cloudfront.get_invalidation(DistributionId=distribution, Id=i) for i in ids]
    return [sorted(b["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]) for b in batches]


def exact_paths(key: str) -> list[str]:
    return sorted([f"/{key}", *(f"/{key.removesuffix('.jpg')}/{name}.jpeg" for name in VARIANTS)])


def test_a_busy_cdn_is_retried_through_the_queue_and_the_delete_still_answers_204(
    aws: Aws, functions: Functions, photo, context, cdn: str
) -> None:
    job_id, token = photo()
    functions.variants.invoke(_published_event(job_id), context)
    busy = FailingOnce(
        functions.api.dependencies.cloudfront_client, "create_invalidation", "TooManyInvalidationsInProgress"
    )
    sent = RecordingClient(functions.api.dependencies.sqs_client, "send_message")
    functions.api.override(cloudfront=busy, sqs=sent)

    code, _, _ = call(functions, owner_event("DELETE", job_id, token), context)

    assert code == 204 and busy.failed == 1
    assert aws.keys(BLURRED_BUCKET) == []  # deleted before CloudFront was asked
    assert invalidated(aws, cdn) == []
    # Queued to come back in a minute (CloudFront's busy spells are short), not at once, not in 20.
    ((operation, queued),) = sent.sent
    assert operation == "send_message" and queued["QueueUrl"] == BLUR_QUEUE_URL
    assert queued["DelaySeconds"] == 60
    assert drain_blur_queue(aws, functions, context) == []  # not before its delay
    aws.sqs.send_message(QueueUrl=BLUR_QUEUE_URL, MessageBody=queued["MessageBody"])  # its minute is over
    assert len(drain_blur_queue(aws, functions, context)) == 1  # the worker finishes the withdrawal
    assert invalidated(aws, cdn) == [exact_paths(f"p/{job_id}.jpg")]
    assert "withdraw" not in (aws.item(job_id) or {})
    assert call(functions, owner_event("DELETE", job_id, token), context)[0] == 204
    assert len(invalidated(aws, cdn)) == 1


@pytest.mark.parametrize(
    ("client", "operation", "code"),
    [("s3", "delete_object", "InternalError"), ("cloudfront", "create_invalidation", "ServiceUnavailable")],
)
def test_an_edit_whose_clean_up_fails_once_ends_with_the_old_version_deleted_and_invalidated(
    aws: Aws, functions: Functions, photo, context, cdn: str, client: str, operation: str, code: str
) -> None:
    job_id, token = photo()
    old_key = f"p/{job_id}.jpg"
    functions.variants.invoke(_published_event(job_id), context)
    before = published(aws, old_key)
    assert (
        call(functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context)[0]
        == 202
    )
    (message,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    real = getattr(functions.worker.dependencies, f"{client}_client")
    failing = FailingOnce(real, operation, code, key_prefix=f"p/{job_id}")
    functions.worker.override(**{client: failing})
    event = sqs_event(message)

    assert functions.worker.invoke(event, context)["batchItemFailures"]  # the clean-up failed: retried
    assert failing.failed == 1
    assert functions.worker.invoke(event, context) == {"batchItemFailures": []}  # the retry

    view = status(functions, job_id, context)
    new_key = view["photoUrl"].removeprefix(f"{PUBLIC_BASE_URL}/")
    assert view["status"] == "done" and new_key != old_key
    assert aws.keys(BLURRED_BUCKET) == [new_key]
    assert exact_paths(old_key) in invalidated(aws, cdn)
    assert "withdraw" not in (aws.item(job_id) or {})
    after = published(aws, new_key)  # the published pixels: the badge is blurred, the rest is not
    h, w = before.shape[:2]
    inside = (slice(int(0.65 * h) + 8, int(0.95 * h) - 8), slice(int(0.05 * w) + 8, int(0.35 * w) - 8))
    assert np.abs(after[inside] - before[inside]).mean() > 6


def sqs_event(message: dict[str, Any]) -> dict[str, Any]:
    return sqs_batch_event([message], queue_arn="arn:aws:sqs:us-east-1:123456789012:blur", region=REGION)


# Enough steps to pass every AWS call a worker makes for a photo or an edit (a delete after the last is
# the ordinary case, and must withdraw too).
@pytest.mark.parametrize("step", range(1, 13))
def test_a_delete_between_any_two_steps_of_the_worker_leaves_nothing_published(
    aws: Aws, functions: Functions, context, astronaut_path, step: int
) -> None:
    event = load_event("api_create_upload.json")
    data = astronaut_path.read_bytes()
    event["body"] = json.dumps({"contentType": "image/png", "size": len(data)})
    _, _, created = call(functions, event, context)
    assert created
    job_id, token = created["jobId"], created["ownerToken"]
    aws.put_upload(f"uploads/{job_id}", data)
    event = s3_put_event(f"uploads/{job_id}", len(data))
    assert invoke_worker_with_a_delete_at(step, functions, event, job_id, token, context) == [204]
    assert aws.keys(BLURRED_BUCKET) == [] and aws.keys(UPLOADS_BUCKET) == []
    assert status(functions, job_id, context)["status"] == "deleted"


@pytest.mark.parametrize("step", range(1, 13))
def test_a_delete_between_any_two_steps_of_an_edit_leaves_nothing_published(
    aws: Aws, functions: Functions, photo, context, step: int
) -> None:
    job_id, token = photo()
    functions.variants.invoke(_published_event(job_id), context)
    assert (
        call(functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context)[0]
        == 202
    )
    (message,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    event = sqs_event(message)
    assert invoke_worker_with_a_delete_at(step, functions, event, job_id, token, context) == [204]
    assert aws.keys(BLURRED_BUCKET) == []
    assert status(functions, job_id, context)["status"] == "deleted"
