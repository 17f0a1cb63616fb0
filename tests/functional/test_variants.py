"""VariantsFunction against moto with the events/ files: the variants written, the job's record of them,
what ``GET /jobs/{jobId}`` shows, and ``batchItemFailures``."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np
import pytest

from photoveil.adapters.jobs import JobStore
from photoveil.imaging.sizes import VARIANT_NAMES
from photoveil.local.events import sqs_batch_event

from .helpers import (
    BLURRED_BUCKET,
    GOOD_JOB,
    JOBS_TABLE,
    PUBLIC_BASE_URL,
    REGION,
    VARIANTS_QUEUE,
    Aws,
    Functions,
    RecordingClient,
    load_event,
)

PHOTO_KEY = f"p/{GOOD_JOB}.jpg"  # the photo in events/sqs_published_*.json
SHAPES = ["sqs_published_raw.json", "sqs_published_sns_envelope.json"]


def publish(aws: Aws, width: int = 1600, height: int = 1200, *, ttl_days: float = 30) -> bytes:
    """A done job publishing PHOTO_KEY, as the worker leaves it, and the photo itself."""
    now = datetime.now(UTC)
    store = JobStore(JOBS_TABLE, client=aws.dynamodb)
    store.create(
        GOOD_JOB,
        content_type="image/jpeg",
        size=1,
        email=None,
        owner_token_hash="0" * 64,
        now=now,
        ttl=int(now.timestamp()) + 60,
    )
    store.mark_processing(GOOD_JOB, now=now)
    store.mark_done(
        GOOD_JOB, faces=1, photo_key=PHOTO_KEY, expires_at=now + timedelta(days=ttl_days), now=now
    )
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.dstack([x * 255 // width, y * 255 // height, np.full_like(x, 90)]).astype(np.uint8)
    jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    aws.s3.put_object(Bucket=BLURRED_BUCKET, Key=PHOTO_KEY, Body=jpeg, ContentType="image/jpeg")
    return jpeg


def variant_keys(aws: Aws) -> list[str]:
    return sorted(k for k in aws.keys(BLURRED_BUCKET) if k != PHOTO_KEY)


def status(functions: Functions, context: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("api_get_job.json"))
    return json.loads(functions.api.invoke(event, context)["body"])


@pytest.mark.parametrize("shape", SHAPES)
def test_a_published_photo_gets_its_three_variants(aws: Aws, functions, context, shape: str) -> None:
    publish(aws, 1600, 1200)
    assert "variants" not in status(functions, context)  # absent until all three exist

    assert functions.variants.invoke(load_event(shape), context) == {"batchItemFailures": []}

    assert variant_keys(aws) == sorted(f"p/{GOOD_JOB}/{name}.jpeg" for name in VARIANT_NAMES)
    body = status(functions, context)
    assert body["status"] == "done"
    assert body["variants"] == {name: f"{PUBLIC_BASE_URL}/p/{GOOD_JOB}/{name}.jpeg" for name in VARIANT_NAMES}
    for name in VARIANT_NAMES:
        obj = aws.s3.get_object(Bucket=BLURRED_BUCKET, Key=f"p/{GOOD_JOB}/{name}.jpeg")
        assert (obj["ContentType"], obj["CacheControl"]) == ("image/jpeg", "public, max-age=86400, immutable")
        pixels = cv2.imdecode(np.frombuffer(obj["Body"].read(), np.uint8), cv2.IMREAD_COLOR)
        width, height = (int(n) for n in name.split("x"))
        assert pixels.shape[:2] == (height, width)


def test_a_portrait_gets_turned_boxes(aws: Aws, functions, context) -> None:
    publish(aws, 1200, 1600)
    functions.variants.invoke(load_event(SHAPES[0]), context)
    obj = aws.s3.get_object(Bucket=BLURRED_BUCKET, Key=f"p/{GOOD_JOB}/400x300.jpeg")
    assert cv2.imdecode(np.frombuffer(obj["Body"].read(), np.uint8), cv2.IMREAD_COLOR).shape[:2] == (400, 300)


def test_a_duplicate_event_changes_nothing_and_finishes_once(aws: Aws, functions, context, capsys) -> None:
    publish(aws)
    event = load_event(SHAPES[0])
    functions.variants.invoke(event, context)
    heads = {k: aws.s3.head_object(Bucket=BLURRED_BUCKET, Key=k)["ETag"] for k in variant_keys(aws)}
    item = aws.item(GOOD_JOB)

    assert functions.variants.invoke(copy.deepcopy(event), context) == {"batchItemFailures": []}

    assert {k: aws.s3.head_object(Bucket=BLURRED_BUCKET, Key=k)["ETag"] for k in variant_keys(aws)} == heads
    assert aws.item(GOOD_JOB) == item
    ready = [line for line in capsys.readouterr().out.splitlines() if '"VariantsReady"' in line]
    assert len(ready) == 1  # marked ready exactly once


def test_a_second_run_after_a_partial_one_rewrites_the_same_bytes(aws: Aws, functions, context) -> None:
    publish(aws)
    functions.variants.invoke(load_event(SHAPES[0]), context)
    before = {k: aws.s3.get_object(Bucket=BLURRED_BUCKET, Key=k)["Body"].read() for k in variant_keys(aws)}
    # As if the set had not been finished: the record of the run is lost, the next run rewrites.
    aws.dynamodb.update_item(
        TableName=JOBS_TABLE,
        Key={"jobId": {"S": GOOD_JOB}},
        UpdateExpression="REMOVE variantsReady, variantsDone",
    )

    assert functions.variants.invoke(load_event(SHAPES[1]), context) == {"batchItemFailures": []}

    after = {k: aws.s3.get_object(Bucket=BLURRED_BUCKET, Key=k)["Body"].read() for k in variant_keys(aws)}
    assert after == before
    assert "variants" in status(functions, context)


def test_an_expired_photo_gets_no_variants(aws: Aws, functions, context) -> None:
    publish(aws, ttl_days=-1)  # its job expired (DynamoDB deletes lazily) and the photo with it
    aws.s3.delete_object(Bucket=BLURRED_BUCKET, Key=PHOTO_KEY)

    assert functions.variants.invoke(load_event(SHAPES[0]), context) == {"batchItemFailures": []}

    assert aws.keys(BLURRED_BUCKET) == []


def test_a_photo_its_job_no_longer_publishes_gets_no_variants(aws: Aws, functions, context) -> None:
    publish(aws)
    aws.dynamodb.update_item(  # replaced by another version meanwhile
        TableName=JOBS_TABLE,
        Key={"jobId": {"S": GOOD_JOB}},
        UpdateExpression="SET photoKey = :other",
        ExpressionAttributeValues={":other": {"S": f"p/{GOOD_JOB}-2.jpg"}},
    )

    assert functions.variants.invoke(load_event(SHAPES[0]), context) == {"batchItemFailures": []}

    assert variant_keys(aws) == []


def test_an_event_for_a_job_that_never_existed_is_acknowledged(aws: Aws, functions, context) -> None:
    assert functions.variants.invoke(load_event(SHAPES[0]), context) == {"batchItemFailures": []}
    assert aws.keys(BLURRED_BUCKET) == []


class WithdrawnMidway:
    """The real JobStore, except the photo is withdrawn (replaced) right after the first variant."""

    def __init__(self, jobs: Any, aws: Aws) -> None:
        self._jobs, self._aws = jobs, aws

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jobs, name)

    def record_variant(self, job_id: str, **kwargs: Any) -> Any:
        recorded = self._jobs.record_variant(job_id, **kwargs)
        self._aws.dynamodb.update_item(
            TableName=JOBS_TABLE,
            Key={"jobId": {"S": job_id}},
            UpdateExpression="SET photoKey = :other",
            ExpressionAttributeValues={":other": {"S": f"p/{job_id}-2.jpg"}},
        )
        return recorded


def test_variants_written_for_a_photo_withdrawn_meanwhile_are_deleted(aws: Aws, functions, context) -> None:
    publish(aws)
    deps = functions.variants.dependencies
    deps.jobs  # noqa: B018  (build the real store first, then wrap it)
    deps.__dict__["jobs"] = WithdrawnMidway(deps.jobs, aws)

    assert functions.variants.invoke(load_event(SHAPES[0]), context) == {"batchItemFailures": []}

    assert variant_keys(aws) == []
    assert "variantsReady" not in aws.item(GOOD_JOB)


class S3PutFault:
    """A real S3 client whose PutObject fails like an outage for keys under a prefix."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client, self.prefix = client, prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_object(self, **kwargs: Any) -> Any:
        if self.prefix and kwargs["Key"].startswith(self.prefix):
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="https://s3.us-east-1.amazonaws.com")
        return self._client.put_object(**kwargs)


def test_a_variants_failure_retries_and_never_changes_the_photo(aws: Aws, functions, context) -> None:
    publish(aws)
    fault = S3PutFault(functions.variants.dependencies.s3_client, f"p/{GOOD_JOB}/")
    functions.variants.override(s3=fault)
    event = load_event(SHAPES[0])

    response = functions.variants.invoke(event, context)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    body = status(functions, context)
    assert body["status"] == "done" and body["photoUrl"].endswith(PHOTO_KEY)
    assert "variants" not in body
    fault.prefix = ""  # S3 recovered; SQS redelivers
    assert functions.variants.invoke(event, context) == {"batchItemFailures": []}
    assert set(status(functions, context)["variants"]) == set(VARIANT_NAMES)


def test_the_s3_test_event_through_sns_is_acknowledged(aws: Aws, functions, context) -> None:
    event = load_event(SHAPES[1])
    envelope = json.loads(event["Records"][0]["body"])
    envelope["Message"] = json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BLURRED_BUCKET}
    )
    event["Records"][0]["body"] = json.dumps(envelope)
    assert functions.variants.invoke(event, context) == {"batchItemFailures": []}
    assert aws.keys(BLURRED_BUCKET) == []


def test_a_photo_announced_before_its_job_recorded_it_comes_back_in_seconds(
    aws: Aws, functions, context
) -> None:
    jpeg = publish(aws)
    aws.dynamodb.update_item(  # as the worker leaves it between writing the photo and marking it done
        TableName=JOBS_TABLE,
        Key={"jobId": {"S": GOOD_JOB}},
        UpdateExpression="SET #status = :processing REMOVE photoKey",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":processing": {"S": "processing"}},
    )
    assert jpeg
    sqs = aws.sqs
    queue = sqs.create_queue(QueueName=VARIANTS_QUEUE, Attributes={"VisibilityTimeout": "180"})
    arn = sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.send_message(QueueUrl=queue["QueueUrl"], MessageBody=load_event(SHAPES[0])["Records"][0]["body"])
    (message,) = sqs.receive_message(QueueUrl=queue["QueueUrl"])["Messages"]
    event = sqs_batch_event([message], queue_arn=arn, region=REGION)
    sent = RecordingClient(functions.variants.dependencies.sqs_client, "change_message_visibility")
    functions.variants.override(sqs=sent)

    response = functions.variants.invoke(event, context)

    assert response == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert variant_keys(aws) == []
    # Back in 2 s (what the README promises), not the queue's 180 s visibility timeout.
    ((operation, asked),) = sent.sent
    assert operation == "change_message_visibility"
    assert (asked["ReceiptHandle"], asked["VisibilityTimeout"]) == (message["ReceiptHandle"], 2)
    assert sqs.receive_message(QueueUrl=queue["QueueUrl"]).get("Messages", []) == []  # not before
