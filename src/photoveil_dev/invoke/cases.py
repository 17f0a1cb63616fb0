"""What each file in events/ does under `sam local invoke` against the local stack, and how that is checked.

Each case seeds what its event names (the jobs and objects of the fixed ids in the file), so it does the same
whatever ran before, invokes its function with the file as it is, and checks the response and the state the
function left. events/README.md says the same in words, row by row.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from photoveil.adapters.jobs import AWAITING_UPLOAD, DONE, PROCESSING
from photoveil.adapters.storage import blurred_key, upload_key, variant_key
from photoveil.imaging.sizes import VARIANT_NAMES
from photoveil.service.quotas import client_key, recipient_key
from photoveil_dev.invoke.pixels import check_blurred
from photoveil_dev.invoke.sam import Invoked
from photoveil_dev.invoke.stack import StackState

REPO = Path(__file__).resolve().parents[3]
EVENTS = REPO / "events"
GOOD_JOB = "3f1c0a5e9b7d4c2a8e6f1b3d5a7c9e0f"  # the job of sqs_batch_one_bad.json, api_get_job.json...
BAD_JOB = "b2e4d6f8a0c2e4f6a8b0c2d4e6f8a0b2"  # sqs_batch_one_bad.json's second message
PHOTO = REPO / "tests" / ".images" / "astronaut.png"  # one face, 512 px (scripts/fetch_test_images.py)
# Smaller, so that the worker under emulation takes less: 384 px detect and verify in half the time of 512.
PHOTO_SIDE = 384


class CheckError(AssertionError):
    """The function did not do what events/README.md says it does."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckError(message)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@dataclass(frozen=True)
class Case:
    event: str  # a file in events/
    function: str
    does: str  # what it does, as events/README.md says
    seed: Callable[[StackState], None]
    check: Callable[[StackState, Invoked], str]  # CheckError, or what was seen
    # The fixed jobs its seed makes anew: cases that share one must not run at the same time.
    jobs: tuple[str, ...] = ()


# ---------------------------------------------------------------- seeds: the state each event names
def utc_now() -> datetime:
    return datetime.now(UTC)


def fresh_job(stack: StackState, job_id: str, *, content_type: str = "image/png") -> None:
    """JOB_ID awaiting its upload, as the API leaves it, with nothing of an earlier run left."""
    stack.client("dynamodb").delete_item(TableName=stack.jobs_table, Key={"jobId": {"S": job_id}})
    for bucket, prefix in ((stack.uploads_bucket, upload_key(job_id)), (stack.blurred_bucket, f"p/{job_id}")):
        for key in stack.keys(bucket, prefix):
            stack.client("s3").delete_object(Bucket=bucket, Key=key)
    now = utc_now()
    stack.jobs.create(
        job_id,
        content_type=content_type,
        size=len(photo_bytes()),
        email=None,
        owner_token_hash="0" * 64,
        now=now,
        ttl=int((now + timedelta(hours=1)).timestamp()),
    )


def published_job(stack: StackState, job_id: str) -> None:
    """JOB_ID done, its photo at p/{jobId}.jpg, no variants yet (as the worker leaves it)."""
    fresh_job(stack, job_id)
    now = utc_now()
    stack.jobs.mark_processing(job_id, now=now)
    stack.client("s3").put_object(
        Bucket=stack.blurred_bucket, Key=blurred_key(job_id), Body=photo_bytes(".jpg")
    )
    stack.jobs.mark_done(
        job_id, faces=1, photo_key=blurred_key(job_id), expires_at=now + timedelta(days=30), now=now
    )


@cache
def photo_bytes(extension: str = ".png") -> bytes:
    """The test photo, PHOTO_SIDE px, encoded as EXTENSION says."""
    import cv2

    pixels = cv2.resize(cv2.imread(str(PHOTO)), (PHOTO_SIDE, PHOTO_SIDE), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(extension, pixels)
    assert ok
    return data.tobytes()


def small_photo(directory: Path) -> Path:
    """The test photo at PHOTO_SIDE px, written in DIRECTORY (the end-to-end run posts a file)."""
    path = directory / f"astronaut-{PHOTO_SIDE}.png"
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(photo_bytes())
    return path


def _stray_key() -> str:
    body = json.loads(load_event("sqs_s3_put.json")["Records"][0]["body"])
    return urllib.parse.unquote_plus(body["Records"][0]["s3"]["object"]["key"])


def _seed_stray(stack: StackState) -> None:
    stack.client("s3").put_object(Bucket=stack.uploads_bucket, Key=_stray_key(), Body=b"not from a job")


def _seed_batch(stack: StackState) -> None:
    """Both jobs of the batch with their originals; the second original archived (S3 Glacier), which
    GetObject refuses (InvalidObjectState): an error the worker retries, as any it cannot judge."""
    s3 = stack.client("s3")
    for job_id in (GOOD_JOB, BAD_JOB):
        fresh_job(stack, job_id)
    s3.put_object(Bucket=stack.uploads_bucket, Key=upload_key(GOOD_JOB), Body=photo_bytes())
    s3.put_object(
        Bucket=stack.uploads_bucket, Key=upload_key(BAD_JOB), Body=photo_bytes(), StorageClass="GLACIER"
    )


BOUNCED = "bounce@simulator.amazonses.com"  # sns_ses_bounce.json's recipient


def _seed_no_suppression(stack: StackState) -> None:
    key = f"suppressed#{recipient_key(BOUNCED)}"
    stack.client("dynamodb").delete_item(TableName=stack.environment["QUOTAS_TABLE"], Key={"key": {"S": key}})


def client_ip() -> str:
    """The client address the API events come from."""
    return load_event("api_create_upload.json")["requestContext"]["http"]["sourceIp"]


def fresh_client(stack: StackState) -> None:
    """No upload nor email counted yet for the events' client address (a documentation address, no one's):
    against `make run`'s stack, which keeps a deployment's quotas (3 emails asked for a day), the second
    run of a day would otherwise have its photo's email refused."""
    dynamodb, table = stack.client("dynamodb"), stack.environment["QUOTAS_TABLE"]
    subject = f"#{client_key(client_ip())}#"  # counter keys are "{limit}#{subject}#{window start}"
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table,
        ProjectionExpression="#k",
        FilterExpression="contains(#k, :subject)",
        ExpressionAttributeNames={"#k": "key"},
        ExpressionAttributeValues={":subject": {"S": subject}},
    )
    for item in (item for page in pages for item in page["Items"]):
        dynamodb.delete_item(TableName=table, Key={"key": item["key"]})


def _nothing(stack: StackState) -> None:
    pass


def seeded_keys(stack: StackState) -> set[tuple[str, str]]:
    """(bucket, key) of every object a seed or a seeded job's function writes where S3 notifies a queue:
    their messages are the checks' own, and are drained (drain_seeded)."""
    uploads = {upload_key(job) for job in (GOOD_JOB, BAD_JOB)} | {_stray_key()}
    return {(stack.uploads_bucket, key) for key in uploads} | {(stack.blurred_bucket, blurred_key(GOOD_JOB))}


# ---------------------------------------------------------------- checks: what the function did
def api_body(invoked: Invoked, status: int) -> dict[str, Any]:
    """The API response's JSON body, once its status code is STATUS."""
    response = invoked.response
    expect(
        response.get("statusCode") == status,
        f"expected {status}, got {response.get('statusCode')}: {response.get('body')}",
    )
    return json.loads(response["body"])


def _check_upload_created(stack: StackState, invoked: Invoked) -> str:
    body = api_body(invoked, 201)
    job = stack.job(body["jobId"])
    expect(job is not None and job.status == AWAITING_UPLOAD, f"job {body['jobId']}: {job}")
    key = body["upload"]["fields"].get("key")
    expect(key == upload_key(body["jobId"]), f"the form posts to {key!r}")
    return f"201, job {body['jobId']} awaiting its upload, form for {key}"


def _check_refused_type(stack: StackState, invoked: Invoked) -> str:
    code = api_body(invoked, 400)["error"]["code"]
    expect(code == "unsupported_content_type", f"error code {code}")
    return f"400 {code}"


def _check_job_status(stack: StackState, invoked: Invoked) -> str:
    body = api_body(invoked, 200)
    expect(body["jobId"] == GOOD_JOB and body["status"] == AWAITING_UPLOAD, f"body {body}")
    return f"200, job {GOOD_JOB} {body['status']}"


def batch_failures(invoked: Invoked) -> list[str]:
    """The message ids the SQS handler reported failed (ReportBatchItemFailures)."""
    response = invoked.response
    expect(isinstance(response, dict) and "batchItemFailures" in response, f"response {response}")
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def _check_stray_deleted(stack: StackState, invoked: Invoked) -> str:
    expect(batch_failures(invoked) == [], f"failures {invoked.response}")
    key = _stray_key()
    expect(key not in stack.keys(stack.uploads_bucket, "uploads/"), f"{key!r} is still there")
    return f"acknowledged, {key!r} deleted"


def _check_test_event(stack: StackState, invoked: Invoked) -> str:
    expect(batch_failures(invoked) == [], f"failures {invoked.response}")
    expect("s3:TestEvent" in invoked.logs, "no log line about the s3:TestEvent")
    return "acknowledged (logged as the s3:TestEvent)"


def _check_batch(stack: StackState, invoked: Invoked) -> str:
    second = load_event("sqs_batch_one_bad.json")["Records"][1]["messageId"]
    expect(batch_failures(invoked) == [second], f"failures {invoked.response}, expected only {second}")
    good, bad = stack.job(GOOD_JOB), stack.job(BAD_JOB)
    expect(good is not None and good.status == DONE and (good.faces or 0) >= 1, f"good job: {good}")
    expect(stack.keys(stack.blurred_bucket, f"p/{GOOD_JOB}") == [blurred_key(GOOD_JOB)], "not published")
    expect(stack.keys(stack.uploads_bucket, upload_key(GOOD_JOB)) == [], "the good original is kept")
    expect(bad is not None and bad.status == PROCESSING, f"bad job: {bad}")
    kept = stack.keys(stack.uploads_bucket, upload_key(BAD_JOB))
    expect(kept == [upload_key(BAD_JOB)], "the bad original is gone: its retry has nothing to read")
    pixels = check_blurred(photo_bytes(), stack.object_bytes(stack.blurred_bucket, blurred_key(GOOD_JOB)))
    return (
        f"batchItemFailures = [{second}] only; {GOOD_JOB} done ({good.faces} face(s) blurred, original "
        f"deleted; {pixels}); {BAD_JOB} processing, original kept for the retry"
    )


def _check_variants(stack: StackState, invoked: Invoked) -> str:
    expect(batch_failures(invoked) == [], f"failures {invoked.response}")
    job = stack.job(GOOD_JOB)
    expect(job is not None and job.variants_ready, f"variants not ready: {job}")
    expected = sorted(variant_key(blurred_key(GOOD_JOB), name) for name in VARIANT_NAMES)
    made = [key for key in stack.keys(stack.blurred_bucket, f"p/{GOOD_JOB}/")]
    expect(made == expected, f"variants {made}, expected {expected}")
    return f"acknowledged, {len(made)} variants written, job {GOOD_JOB} variants ready"


def _check_bounce(stack: StackState, invoked: Invoked) -> str:
    expect(invoked.response == {"stopped": 1}, f"response {invoked.response}")
    expect(stack.quotas.is_suppressed(recipient_key(BOUNCED), now=utc_now()), f"{BOUNCED} not suppressed")
    return f"{{'stopped': 1}}, no more mail to {BOUNCED}"


CASES = [
    Case(
        "api_create_upload.json",
        "ApiFunction",
        "POST /uploads of a JPEG: a job awaiting its upload, and the form that uploads it",
        fresh_client,
        _check_upload_created,
    ),
    Case(
        "api_create_upload_invalid.json",
        "ApiFunction",
        "POST /uploads of a type outside the allowlist: refused",
        _nothing,
        _check_refused_type,
    ),
    Case(
        "api_get_job.json",
        "ApiFunction",
        f"GET /jobs/{GOOD_JOB} (seeded awaiting its upload): its status",
        lambda stack: fresh_job(stack, GOOD_JOB),
        _check_job_status,
        jobs=(GOOD_JOB,),
    ),
    Case(
        "sqs_s3_put.json",
        "BlurFunction",
        "an upload under a key of no job (spaces, accents, an emoji, URL-encoded): deleted",
        _seed_stray,
        _check_stray_deleted,
    ),
    Case(
        "sqs_s3_test_event.json",
        "BlurFunction",
        "the s3:TestEvent S3 sends when the notification is set up: acknowledged",
        _nothing,
        _check_test_event,
    ),
    Case(
        "sqs_batch_one_bad.json",
        "BlurFunction",
        "two uploads, the second unreadable (archived): only the second reported failed",
        _seed_batch,
        _check_batch,
        jobs=(GOOD_JOB, BAD_JOB),
    ),
    Case(
        "sqs_published_raw.json",
        "VariantsFunction",
        f"p/{GOOD_JOB}.jpg published (raw delivery): its three variants",
        lambda stack: published_job(stack, GOOD_JOB),
        _check_variants,
        jobs=(GOOD_JOB,),
    ),
    Case(
        "sqs_published_sns_envelope.json",
        "VariantsFunction",
        "the same in SNS's envelope (a subscription without raw delivery): its three variants",
        lambda stack: published_job(stack, GOOD_JOB),
        _check_variants,
        jobs=(GOOD_JOB,),
    ),
    Case(
        "sns_ses_bounce.json",
        "MailEventsFunction",
        f"SES's permanent bounce for {BOUNCED}: no more mail to that address",
        _seed_no_suppression,
        _check_bounce,
    ),
]


def case_for(event_file: str) -> Case | None:
    """The case of an events/ file (by name or path), None for an event of the user's own."""
    return next((case for case in CASES if case.event == Path(event_file).name), None)
