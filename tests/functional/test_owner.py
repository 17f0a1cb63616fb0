"""The owner's controls against moto: the token, "delete now" and "blur more", line by line."""

from __future__ import annotations

import copy
import hashlib
import html
import json
import re
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest

from photoveil.local.events import sqs_batch_event
from photoveil.service.owner import MAX_EDITS
from photoveil.settings import get_settings

from .helpers import (
    BLUR_QUEUE_URL,
    BLURRED_BUCKET,
    PUBLIC_BASE_URL,
    REGION,
    UPLOADS_BUCKET,
    Aws,
    Functions,
    load_event,
    s3_put_event,
)

# A rectangle over the astronaut's shoulder badge (lower left), far from her face (which the fake blurs).
BADGE = {"x": 0.05, "y": 0.65, "width": 0.3, "height": 0.3}


def call(
    functions: Functions, event: dict[str, Any], context: Any
) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
    response = functions.api.invoke(event, context)
    body = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], {k.lower(): v for k, v in response.get("headers", {}).items()}, body


def owner_event(
    method: str, job_id: str, token: str | None, body: Any = None, path: str = ""
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("api_get_job.json"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/jobs/{job_id}{path}"
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = f"{method} /jobs/{{jobId}}{path}"
    event["pathParameters"] = {"jobId": job_id}
    if token is not None:
        event["headers"]["authorization"] = f"Bearer {token}"
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def status(functions: Functions, job_id: str, context: Any) -> dict[str, Any]:
    event = owner_event("GET", job_id, None)
    return call(functions, event, context)[2] or {}


def published(aws: Aws, key: str) -> np.ndarray:
    jpeg = aws.s3.get_object(Bucket=BLURRED_BUCKET, Key=key)["Body"].read()
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(int)


def drain_blur_queue(aws: Aws, functions: Functions, context: Any) -> list[dict[str, Any]]:
    """Deliver what is on the blur queue to the worker, as the event source mapping would."""
    messages = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10).get("Messages", [])
    if not messages:
        return []
    event = sqs_batch_event(messages, queue_arn="arn:aws:sqs:us-east-1:123456789012:blur", region=REGION)
    assert functions.worker.invoke(event, context) == {"batchItemFailures": []}
    return messages


@pytest.fixture
def photo(aws: Aws, functions: Functions, context: Any, astronaut_path) -> Callable[..., tuple[str, str]]:
    """Upload the astronaut through the API and the worker: (jobId, ownerToken) of a done photo."""

    def make(email: str | None = None) -> tuple[str, str]:
        event = copy.deepcopy(load_event("api_create_upload.json"))
        data = astronaut_path.read_bytes()
        event["body"] = json.dumps(
            {"contentType": "image/png", "size": len(data), **({"email": email} if email else {})}
        )
        code, _, created = call(functions, event, context)
        assert code == 201 and created
        job_id = created["jobId"]
        aws.put_upload(f"uploads/{job_id}", data)
        assert functions.worker.invoke(s3_put_event(f"uploads/{job_id}", len(data)), context) == {
            "batchItemFailures": []
        }
        assert status(functions, job_id, context)["status"] == "done"
        return job_id, created["ownerToken"]

    return make


# ---------------------------------------------------------------- the token
def test_the_owner_token_is_shown_once_and_stored_only_as_a_hash(aws: Aws, functions, photo, context) -> None:
    job_id, token = photo()
    assert len(token) >= 43  # 256 bits, URL-safe base64 (at least 128 are required)
    item = json.dumps(aws.item(job_id))
    assert token not in item
    assert hashlib.sha256(token.encode()).hexdigest() in item
    assert token not in json.dumps(status(functions, job_id, context))


def test_the_email_link_carries_a_token_of_its_own_that_works(aws: Aws, functions, photo, context) -> None:
    job_id, page_token = photo(email="owner@example.com")
    (email,) = aws.sent_emails()
    email_token = _email_token(email.body, job_id)
    assert email_token != page_token and email_token not in json.dumps(aws.item(job_id))
    assert call(functions, owner_event("DELETE", job_id, email_token), context)[0] == 204


# ---------------------------------------------------------------- delete now
def test_delete_withdraws_the_photo_and_its_variants_everywhere(
    aws: Aws, functions, photo, context, monkeypatch
) -> None:
    cloudfront = aws.cloudfront
    distribution = _distribution(cloudfront)
    monkeypatch.setenv("DISTRIBUTION_ID", distribution)
    monkeypatch.setenv("OWNER_ACTIONS_PER_CLIENT_HOUR", "200")  # the repeated DELETEs below
    get_settings.cache_clear()
    job_id, token = photo()
    functions.variants.invoke(_published_event(job_id), context)
    assert len(aws.keys(BLURRED_BUCKET)) == 4  # the photo and its three variants

    code, _, body = call(functions, owner_event("DELETE", job_id, token), context)

    assert (code, body) == (204, None)
    assert aws.keys(BLURRED_BUCKET) == []
    assert status(functions, job_id, context) == {"jobId": job_id, "status": "deleted", "faces": None}
    with aws.unchecked():
        (invalidation,) = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"][
            "Items"
        ]
        details = cloudfront.get_invalidation(DistributionId=distribution, Id=invalidation["Id"])[
            "Invalidation"
        ]
    assert sorted(details["InvalidationBatch"]["Paths"]["Items"]) == [
        f"/p/{job_id}.jpg",
        *(f"/p/{job_id}/{name}.jpeg" for name in ("200x150", "400x300", "800x600")),
    ]  # exact paths: CloudFront takes only 15 wildcard invalidations in progress
    # Again, 100 times: still 204, and not one more invalidation.
    item = aws.item(job_id)
    for _ in range(100):
        assert call(functions, owner_event("DELETE", job_id, token), context)[0] == 204
    with aws.unchecked():
        assert cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]["Quantity"] == 1
    assert aws.item(job_id) == item  # nor a later expiry


def test_late_events_cannot_bring_a_deleted_photo_back(
    aws: Aws, functions, photo, context, astronaut_path
) -> None:
    job_id, token = photo()
    call(functions, owner_event("DELETE", job_id, token), context)
    data = astronaut_path.read_bytes()
    aws.put_upload(f"uploads/{job_id}", data)  # a second POST of the form, or a duplicate event

    assert functions.worker.invoke(s3_put_event(f"uploads/{job_id}", len(data)), context) == {
        "batchItemFailures": []
    }
    assert functions.variants.invoke(_published_event(job_id), context) == {"batchItemFailures": []}

    assert aws.keys(BLURRED_BUCKET) == [] and aws.keys("photoveil-uploads-123456789012-10ca1000") == []
    assert status(functions, job_id, context)["status"] == "deleted"


def test_deleting_before_the_photo_is_done_publishes_nothing(
    aws: Aws, functions, context, astronaut_path
) -> None:
    event = copy.deepcopy(load_event("api_create_upload.json"))
    event["body"] = json.dumps({"contentType": "image/png", "size": 1000})
    created = call(functions, event, context)[2]
    assert created
    assert call(functions, owner_event("DELETE", created["jobId"], created["ownerToken"]), context)[0] == 204
    data = astronaut_path.read_bytes()
    aws.put_upload(f"uploads/{created['jobId']}", data)
    functions.worker.invoke(s3_put_event(f"uploads/{created['jobId']}", len(data)), context)
    assert aws.keys(BLURRED_BUCKET) == []
    assert aws.sent_emails() == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, (401, "missing_token")), ("", (401, "missing_token")), ("Basic abc", (401, "missing_token"))],
)
def test_no_token_is_401(
    aws: Aws, functions, photo, context, header: str | None, expected: tuple[int, str]
) -> None:
    job_id, _ = photo()
    event = owner_event("DELETE", job_id, None)
    if header is not None:
        event["headers"]["authorization"] = header
    code, headers, body = call(functions, event, context)
    assert (code, body and body["error"]["code"]) == expected
    assert headers["www-authenticate"].startswith("Bearer")
    assert len(aws.keys(BLURRED_BUCKET)) == 1


def test_a_wrong_token_is_403_and_a_token_works_on_its_own_job_only(
    aws: Aws, functions, photo, context
) -> None:
    first, first_token = photo()
    second, second_token = photo()
    for job_id, token in ((first, "nope"), (first, second_token), (second, first_token)):
        for method, path, body in (("DELETE", "", None), ("POST", "/regions", {"regions": [BADGE]})):
            code, _, answer = call(functions, owner_event(method, job_id, token, body, path), context)
            assert (code, answer and answer["error"]["code"]) == (403, "wrong_token")
    assert len(aws.keys(BLURRED_BUCKET)) == 2


def test_an_unknown_job_is_404(aws: Aws, functions, context) -> None:
    code, _, body = call(functions, owner_event("DELETE", "e" * 32, "some-token"), context)
    assert (code, body and body["error"]["code"]) == (404, "job_not_found")


# ---------------------------------------------------------------- blur more
def test_an_edit_blurs_only_its_regions_and_is_published_under_a_new_key(
    aws: Aws, functions, photo, context
) -> None:
    job_id, token = photo()
    functions.variants.invoke(_published_event(job_id), context)
    before = published(aws, f"p/{job_id}.jpg")

    code, _, body = call(
        functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context
    )

    assert code == 202 and body and (body["status"], body["edit"]) == ("processing", 1)
    assert status(functions, job_id, context)["status"] == "processing"
    assert len(drain_blur_queue(aws, functions, context)) == 1
    view = status(functions, job_id, context)
    assert view["status"] == "done" and view["edits"] == 1 and "variants" not in view
    new_key = view["photoUrl"].removeprefix(f"{PUBLIC_BASE_URL}/")
    assert new_key != f"p/{job_id}.jpg" and new_key.startswith(f"p/{job_id}-")
    assert aws.keys(BLURRED_BUCKET) == [new_key]  # the old version and its variants are gone
    after = published(aws, new_key)
    h, w = before.shape[:2]
    inside = (slice(int(0.65 * h) + 8, int(0.95 * h) - 8), slice(int(0.05 * w) + 8, int(0.35 * w) - 8))
    assert np.abs(after[inside] - before[inside]).mean() > 6
    outside = np.ones((h, w), bool)
    outside[int(0.6 * h) :, : int(0.4 * w)] = False  # the region, its feather band and the blocks round it
    assert np.abs(after[outside] - before[outside]).mean() < 1.5  # re-encoding noise only


def test_the_same_edit_delivered_twice_applies_once(aws: Aws, functions, photo, context) -> None:
    job_id, token = photo()
    call(functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context)
    (message,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL).get("Messages", [])
    event = sqs_batch_event([message], queue_arn="arn:aws:sqs:us-east-1:123456789012:blur", region=REGION)
    functions.worker.invoke(event, context)
    view = status(functions, job_id, context)
    item = aws.item(job_id)

    assert functions.worker.invoke(copy.deepcopy(event), context) == {"batchItemFailures": []}

    assert status(functions, job_id, context) == view and aws.item(job_id) == item
    assert len(aws.keys(BLURRED_BUCKET)) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"regions": [BADGE] * 21}, "too_many_regions"),
        ({"regions": [{**BADGE, "x": 0.8}]}, "region_outside_photo"),
        ({"regions": [{**BADGE, "y": -0.1}]}, "region_outside_photo"),
        ({"regions": [{**BADGE, "width": 0.004}]}, "region_too_small"),
        ({"regions": []}, "invalid_regions"),
        ({"regions": [{**BADGE, "x": "0.1"}]}, "invalid_regions"),
        ({"regions": [{**BADGE, "x": True}]}, "invalid_regions"),
        ({"regions": [{**BADGE, "angle": 3}]}, "invalid_regions"),
        ({"regions": [BADGE], "also": 1}, "invalid_regions"),
        ("not json", "invalid_json"),
    ],
)
def test_bad_regions_are_400_and_change_nothing(
    aws: Aws, functions, photo, context, body: Any, code: str
) -> None:
    job_id, token = photo()
    item = aws.item(job_id)
    status_code, _, answer = call(functions, owner_event("POST", job_id, token, body, "/regions"), context)
    assert (status_code, answer and answer["error"]["code"]) == (400, code)
    assert answer and answer["error"]["message"]
    assert aws.item(job_id) == item and drain_blur_queue(aws, functions, context) == []


def test_an_edit_before_the_photo_is_done_is_409_not_ready(aws: Aws, functions, context) -> None:
    event = copy.deepcopy(load_event("api_create_upload.json"))
    event["body"] = json.dumps({"contentType": "image/png", "size": 1000})
    created = call(functions, event, context)[2]
    assert created
    code, _, body = call(
        functions,
        owner_event("POST", created["jobId"], created["ownerToken"], {"regions": [BADGE]}, "/regions"),
        context,
    )
    assert (code, body and body["error"]["code"]) == (409, "not_ready")


def test_more_than_ten_edits_is_409_too_many_edits(aws: Aws, functions, photo, context) -> None:
    job_id, token = photo()
    versions = set()
    for _ in range(MAX_EDITS):
        assert (
            call(functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context)[0]
            == 202
        )
        drain_blur_queue(aws, functions, context)
        versions.add(status(functions, job_id, context)["photoUrl"])
    assert len(versions) == MAX_EDITS  # each edit was applied: a new version every time
    item = aws.item(job_id)
    code, _, body = call(
        functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context
    )
    assert (code, body and body["error"]["code"]) == (409, "too_many_edits")
    assert aws.item(job_id) == item


def test_an_edit_racing_a_delete_publishes_nothing(aws: Aws, functions, photo, context) -> None:
    job_id, token = photo()
    edit = call(functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context)
    assert edit[0] == 202
    assert call(functions, owner_event("DELETE", job_id, token), context)[0] == 204

    assert len(drain_blur_queue(aws, functions, context)) == 1  # the edit was queued, and met the delete

    assert aws.keys(BLURRED_BUCKET) == []
    assert status(functions, job_id, context)["status"] == "deleted"


def test_a_second_upload_during_an_edit_is_deleted_and_the_edit_still_applies(
    aws: Aws, functions, photo, context, astronaut_path
) -> None:
    job_id, token = photo()
    call(functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context)
    data = astronaut_path.read_bytes()
    aws.put_upload(f"uploads/{job_id}", data)  # the presigned form posted again while the edit waits

    event = s3_put_event(f"uploads/{job_id}", len(data))
    assert functions.worker.invoke(event, context) == {"batchItemFailures": []}

    assert aws.keys(UPLOADS_BUCKET) == []  # originals are never kept, even this one
    assert status(functions, job_id, context)["status"] == "processing"
    before = published(aws, f"p/{job_id}.jpg")
    drain_blur_queue(aws, functions, context)
    view = status(functions, job_id, context)
    assert view["edits"] == 1
    # Applied, not just asked for: a new version, blurred where asked.
    new_key = view["photoUrl"].removeprefix(f"{PUBLIC_BASE_URL}/")
    assert aws.keys(BLURRED_BUCKET) == [new_key] != [f"p/{job_id}.jpg"]
    h, w = before.shape[:2]
    inside = (slice(int(0.65 * h) + 8, int(0.95 * h) - 8), slice(int(0.05 * w) + 8, int(0.35 * w) - 8))
    assert np.abs(published(aws, new_key)[inside] - before[inside]).mean() > 6


# ---------------------------------------------------------------- the token stays secret
def test_no_token_in_any_log_line_status_or_error(aws: Aws, functions, photo, context, capsys, logs) -> None:
    job_id, token = photo(email="owner@example.com")
    other, _ = photo()
    call(functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context)
    drain_blur_queue(aws, functions, context)
    answers = [
        call(functions, owner_event("POST", other, token, {"regions": [BADGE]}, "/regions"), context),  # 403
        call(functions, owner_event("POST", job_id, token, {"regions": []}, "/regions"), context),  # 400
        call(functions, owner_event("DELETE", job_id, token), context),
        call(functions, owner_event("GET", job_id, None), context),
    ]
    email_token = _email_token(aws.sent_emails()[0].body, job_id)
    printed = capsys.readouterr()
    everything = printed.out + printed.err + json.dumps(logs()) + json.dumps([a[2] for a in answers])
    assert token not in everything and email_token not in everything


def _email_token(body: str, job_id: str) -> str:
    """The token in the email's link to the page (the HTML body escapes its "&")."""
    found = re.search(
        rf"{re.escape(PUBLIC_BASE_URL)}/#job={job_id}&token=([A-Za-z0-9_-]+)", html.unescape(body)
    )
    assert found, body
    return found.group(1)


def _published_event(job_id: str) -> dict[str, Any]:
    event = load_event("sqs_published_raw.json")
    body = event["Records"][0]["body"].replace("3f1c0a5e9b7d4c2a8e6f1b3d5a7c9e0f", job_id)
    body = body.replace("photoveil-blurred-123456789012-10ca1000", BLURRED_BUCKET)
    event["Records"][0]["body"] = body
    return event


def _distribution(cloudfront: Any) -> str:
    origin = {
        "Id": "photos",
        "DomainName": f"{BLURRED_BUCKET}.s3.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    created = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "owner-tests",
            "Comment": "",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {"TargetOriginId": "photos", "ViewerProtocolPolicy": "redirect-to-https"},
        }
    )
    return str(created["Distribution"]["Id"])
