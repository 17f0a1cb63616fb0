"""A photo is deleted at its expiresAt whatever was written after its first publication (findings on
issue 27): S3's expiry counts from an object's creation, and a restore's copy, an edit or a late variant is
a new object. Each is tagged with the whole days its photo has left (adapters.storage.DAYS_LEFT_TAG), which
BlurredBucket's lifecycle rules expire (template.yaml); these tests check the tags, IAM enforced."""

from __future__ import annotations

import math
import time
from typing import Any

from photoveil.adapters.storage import DAYS_LEFT_TAG, WITHHELD_PREFIX
from photoveil.dependencies import Dependencies
from photoveil.service.review import restore

from .helpers import BLUR_QUEUE_URL, BLURRED_BUCKET, JOBS_TABLE, PUBLIC_BASE_URL, Aws, Functions
from .test_owner import BADGE, _published_event, call, drain_blur_queue, owner_event, status
from .test_owner import photo as photo
from .test_reports import ADDRESSES, report
from .test_reports import admin as admin  # the fixture: the operator's dependencies


def tags(aws: Aws, key: str) -> dict[str, str]:
    tag_set = aws.s3.get_object_tagging(Bucket=BLURRED_BUCKET, Key=key)["TagSet"]
    return {tag["Key"]: tag["Value"] for tag in tag_set}


def expiring_in(aws: Aws, job_id: str, days: float) -> int:
    """Move the job's expiresAt to DAYS from now (as if published 30 - DAYS days ago); the whole days left."""
    end = int(time.time() + days * 86400)
    aws.dynamodb.update_item(
        TableName=JOBS_TABLE,
        Key={"jobId": {"S": job_id}},
        UpdateExpression="SET expiresAt = :at, #ttl = :end",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={
            ":at": {"S": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end))},
            ":end": {"N": str(end)},
        },
    )
    return math.ceil(days)


def test_a_restored_photo_and_its_sizes_expire_with_the_photo_not_30_days_after_the_restore(
    aws: Aws, functions: Functions, photo, context: Any, admin: Dependencies
) -> None:
    job_id, _ = photo()
    assert functions.variants.invoke(_published_event(job_id), context) == {"batchItemFailures": []}
    for address in ADDRESSES:
        report(functions, context, job_id, address)
    drain_blur_queue(aws, functions, context)
    withheld = sorted(k for k in aws.keys(BLURRED_BUCKET) if k.startswith(WITHHELD_PREFIX))
    assert len(withheld) == 4 and all(tags(aws, key) == {} for key in withheld)  # kept 30 days for review
    days = expiring_in(aws, job_id, 10.3)

    restore(job_id, admin)

    published = sorted(aws.keys(BLURRED_BUCKET))
    assert len(published) == 4 and all(key.startswith(f"p/{job_id}") for key in published)
    assert [tags(aws, key) for key in published] == [{DAYS_LEFT_TAG: str(days)}] * 4  # 11: rounded up


def test_a_photo_restored_while_the_worker_withheld_it_expires_with_the_photo(
    aws: Aws, functions: Functions, photo, context: Any, admin: Dependencies
) -> None:
    # The worker's own copy back (a restore that landed while it moved the photo out).
    from .test_withhold import withdrawn, withhold_while_restored

    job_id, _ = photo()
    message = withdrawn(aws, functions, context, job_id)
    days = expiring_in(aws, job_id, 2.5)

    assert withhold_while_restored(functions, context, message, job_id, admin) == {"batchItemFailures": []}

    assert tags(aws, f"p/{job_id}.jpg") == {DAYS_LEFT_TAG: str(days)}


def test_an_edit_and_its_sizes_expire_with_the_photo_not_30_days_after_the_edit(
    aws: Aws, functions: Functions, photo, context: Any
) -> None:
    job_id, token = photo()
    days = expiring_in(aws, job_id, 3.01)
    assert (
        call(functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context)[0]
        == 202
    )
    drain_blur_queue(aws, functions, context)
    edited = status(functions, job_id, context)["photoUrl"].removeprefix(f"{PUBLIC_BASE_URL}/")
    event = _published_event(job_id)
    event["Records"][0]["body"] = event["Records"][0]["body"].replace(f"p/{job_id}.jpg", edited)

    assert functions.variants.invoke(event, context) == {"batchItemFailures": []}

    keys = sorted(aws.keys(BLURRED_BUCKET))
    assert len(keys) == 4 and edited in keys
    assert [tags(aws, key) for key in keys] == [{DAYS_LEFT_TAG: str(days)}] * 4  # 4: rounded up
    assert aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL).get("Messages") is None
