"""ApiFunction against moto: presigned uploads, job status and the error contract."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from photoveil.service.status import NOT_FINISHED_MESSAGE

from .helpers import BLURRED_BUCKET, JOBS_TABLE, PUBLIC_BASE_URL, UPLOADS_BUCKET, Aws, Functions, load_event

MAX_UPLOAD = 25 * 1024 * 1024


def call(
    functions: Functions, event: dict[str, Any], context: Any
) -> tuple[int, dict[str, str], dict[str, Any]]:
    response = functions.api.invoke(event, context)
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    return response["statusCode"], headers, json.loads(response["body"])


def create_event(body: Any, *, raw: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("api_create_upload.json"))
    event["body"] = raw if raw is not None else json.dumps(body)
    return event


def get_event(job_id: str, *, method: str = "GET", path: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("api_get_job.json"))
    path = path or f"/jobs/{job_id}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["pathParameters"] = {"jobId": job_id}
    return event


def test_create_upload_returns_job_presigned_post_and_absolute_status_url(
    aws: Aws, functions, context
) -> None:
    status, headers, body = call(functions, load_event("api_create_upload.json"), context)

    assert status == 201
    assert headers["content-type"].startswith("application/json")
    job_id = body["jobId"]
    assert len(job_id) == 32 and int(job_id, 16) >= 0 and job_id == job_id.lower()
    assert body["statusUrl"] == f"https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/jobs/{job_id}"
    assert body["expiresIn"] == 300
    assert body["upload"]["fields"]["key"] == f"uploads/{job_id}"
    assert body["upload"]["fields"]["Content-Type"] == "image/jpeg"
    assert UPLOADS_BUCKET in body["upload"]["url"]

    item = aws.item(job_id)
    assert item is not None
    assert item["status"]["S"] == "awaiting_upload"
    assert item["email"]["S"] == "alice@example.com"
    ttl = int(item["ttl"]["N"])
    assert 0 < ttl - datetime.now(UTC).timestamp() <= 86_400 + 60


def test_presign_policy_has_exactly_the_expected_conditions(aws: Aws, functions, context) -> None:
    _, _, body = call(functions, create_event({"contentType": "image/png", "size": 1234}), context)
    job_id, fields = body["jobId"], body["upload"]["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))

    conditions = policy["conditions"]
    as_pairs = sorted(json.dumps(c, sort_keys=True) for c in conditions)
    credential = fields["x-amz-credential"]
    expected = [
        # The function signs with its role's session, as on Lambda: the form carries the session's token.
        {"x-amz-security-token": fields["x-amz-security-token"]},
        {"Content-Type": "image/png"},
        ["content-length-range", 1, MAX_UPLOAD],
        {"bucket": UPLOADS_BUCKET},
        {"key": f"uploads/{job_id}"},
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
        {"x-amz-credential": credential},
        {"x-amz-date": fields["x-amz-date"]},
    ]
    assert as_pairs == sorted(json.dumps(c, sort_keys=True) for c in expected)
    # No starts-with anywhere: every value is pinned exactly.
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    # S3 rejects a form whose fields the policy does not cover: every field has a condition.
    covered = {next(iter(c)).lower() for c in conditions if isinstance(c, dict)}
    assert {name.lower() for name in fields} - {"policy", "x-amz-signature"} <= covered
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 0 < (expires - datetime.now(UTC)).total_seconds() <= 300 + 5


def test_presigned_post_creates_the_upload_object(aws: Aws, functions, context) -> None:
    # The browser's form POST to the mocked S3, authorised as the role that presigned it.
    _, _, body = call(functions, create_event({"contentType": "image/png", "size": 5}), context)
    response = aws.post_form(body["upload"], b"\x89PNG!", "image/png")
    assert response.status_code == 204
    head = aws.s3.head_object(Bucket=UPLOADS_BUCKET, Key=f"uploads/{body['jobId']}")
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == 5


def test_status_url_includes_a_named_stage(aws: Aws, functions, context) -> None:
    event = load_event("api_create_upload.json")
    event["requestContext"]["stage"] = "prod"
    event["rawPath"] = "/prod/uploads"
    _, _, body = call(functions, event, context)
    assert body["statusUrl"].startswith("https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod/jobs/")


def test_email_is_optional(aws: Aws, functions, context) -> None:
    status, _, body = call(functions, create_event({"contentType": "image/webp", "size": 10}), context)
    assert status == 201
    assert "email" not in aws.item(body["jobId"])


def test_a_whole_number_written_with_a_fraction_is_a_size(aws: Aws, functions, context) -> None:
    # JSON has one number type and JSON Schema counts 1000.0 as an integer, so openapi.yaml's `size`
    # allows it (Schemathesis sent 220.0 and got a 400 before this was fixed).
    status, _, body = call(functions, create_event({"contentType": "image/jpeg", "size": 1000.0}), context)
    assert status == 201, body
    assert aws.item(body["jobId"])["size"] == {"N": "1000"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"contentType": "application/pdf", "size": 10}, "unsupported_content_type"),
        ({"contentType": "IMAGE/JPEG", "size": 10}, "unsupported_content_type"),
        ({"contentType": ["image/jpeg"], "size": 10}, "unsupported_content_type"),
        ({"size": 10}, "missing_field"),
        ({"contentType": "image/jpeg"}, "missing_field"),
        ({"contentType": "image/jpeg", "size": 0}, "invalid_size"),
        ({"contentType": "image/jpeg", "size": -5}, "invalid_size"),
        ({"contentType": "image/jpeg", "size": True}, "invalid_size"),
        ({"contentType": "image/jpeg", "size": 10.5}, "invalid_size"),
        ({"contentType": "image/jpeg", "size": "10"}, "invalid_size"),
        ({"contentType": "image/jpeg", "size": MAX_UPLOAD + 1}, "file_too_large"),
        ({"contentType": "image/jpeg", "size": 10, "email": "not-an-email"}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "email": "a@b.com\r\nBcc: x@evil.test"}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "email": "a@b.com\n"}, "invalid_email"),
        (
            {"contentType": "image/jpeg", "size": 10, "email": "a" * 64 + "@" + "b" * 186 + ".com"},
            "invalid_email",
        ),
        ({"contentType": "image/jpeg", "size": 10, "email": 42}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "filename": "me.jpg"}, "unknown_field"),
        (["image/jpeg", 10], "invalid_request"),
        ("image/jpeg", "invalid_request"),
    ],
)
def test_invalid_upload_requests_get_400_with_a_stable_code(aws: Aws, functions, context, body, code) -> None:
    status, _, response = call(functions, create_event(body), context)
    assert (status, response) == (400, {"error": {"code": code, "message": response["error"]["message"]}})
    assert response["error"]["message"]
    assert aws.dynamodb.scan(TableName=JOBS_TABLE)["Count"] == 0


def test_the_invalid_sample_event_is_rejected(aws: Aws, functions, context) -> None:
    status, _, body = call(functions, load_event("api_create_upload_invalid.json"), context)
    assert status == 400
    assert body["error"]["code"] == "unsupported_content_type"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "invalid_json"),
        ("", "invalid_json"),
        ('{"contentType": "image/jpeg", "size": 10, "email": "' + "a" * 5000 + '@b.com"}', "body_too_large"),
    ],
)
def test_malformed_bodies_get_400(aws: Aws, functions, context, raw, code) -> None:
    status, _, body = call(functions, create_event(None, raw=raw), context)
    assert status == 400
    assert body["error"]["code"] == code


def test_base64_encoded_bodies_are_decoded(aws: Aws, functions, context) -> None:
    event = create_event(None, raw=base64.b64encode(b'{"contentType": "image/heic", "size": 99}').decode())
    event["isBase64Encoded"] = True
    status, _, _ = call(functions, event, context)
    assert status == 201


def _put_job(aws: Aws, job_id: str, **attributes: dict[str, str]) -> None:
    item = {
        "jobId": {"S": job_id},
        "status": {"S": "awaiting_upload"},
        "createdAt": {"S": "2024-07-14T09:21:05Z"},
        "ttl": {"N": str(int(datetime.now(UTC).timestamp()) + 3600)},
        "email": {"S": "alice@example.com"},
        **attributes,
    }
    aws.dynamodb.put_item(TableName=JOBS_TABLE, Item=item)


def test_get_job_awaiting_upload(aws: Aws, functions, context) -> None:
    job_id = "3f1c0a5e9b7d4c2a8e6f1b3d5a7c9e0f"
    _put_job(aws, job_id)
    status, headers, body = call(functions, load_event("api_get_job.json"), context)
    assert status == 200
    assert headers["cache-control"] == "no-store"
    assert body == {"jobId": job_id, "status": "awaiting_upload", "faces": None}


def test_get_job_done_has_public_photo_url_and_expiry_but_never_the_email(
    aws: Aws, functions, context
) -> None:
    job_id = "0" * 31 + "a"
    _put_job(
        aws,
        job_id,
        status={"S": "done"},
        faces={"N": "3"},
        photoKey={"S": f"p/{job_id}.jpg"},
        expiresAt={"S": "2030-01-02T03:04:05Z"},
    )
    status, _, body = call(functions, get_event(job_id), context)
    assert status == 200
    assert body == {
        "jobId": job_id,
        "status": "done",
        "faces": 3,
        "photoUrl": f"{PUBLIC_BASE_URL}/p/{job_id}.jpg",
        "viewUrl": f"{PUBLIC_BASE_URL}/view.html#{job_id}",  # the link to share: the same after edits
        "expiresAt": "2030-01-02T03:04:05Z",
    }
    assert "alice" not in json.dumps(body)


def test_get_job_failed_has_the_error(aws: Aws, functions, context) -> None:
    job_id = "f" * 32
    _put_job(
        aws,
        job_id,
        status={"S": "failed"},
        errorCode={"S": "unsupported_format"},
        errorMessage={"S": "not an image"},
    )
    status, _, body = call(functions, get_event(job_id), context)
    assert status == 200
    assert body["error"] == {"code": "unsupported_format", "message": "not an image"}
    assert "alice" not in json.dumps(body)


# The template's queue: a failed receive comes back after 180 s, and the 5th receive is the last.
@pytest.mark.parametrize(
    ("attempts", "since_last_attempt", "shown"),
    [
        (5, timedelta(minutes=2), "processing"),  # the last attempt may still be running or failing
        (5, timedelta(minutes=4), "failed"),  # ... and its message is in the DLQ by now
        (1, timedelta(minutes=14), "processing"),  # four receives may still come, 3 minutes apart
        (1, timedelta(minutes=16), "failed"),
    ],
)
def test_a_job_whose_retries_are_over_is_shown_failed_and_kept_for_a_redrive(
    aws: Aws, functions, context, attempts: int, since_last_attempt: timedelta, shown: str
) -> None:
    job_id = "4" * 32
    updated = datetime.now(UTC) - since_last_attempt
    _put_job(
        aws,
        job_id,
        status={"S": "processing"},
        attempts={"N": str(attempts)},
        updatedAt={"S": updated.strftime("%Y-%m-%dT%H:%M:%SZ")},
    )
    status, _, body = call(functions, get_event(job_id), context)
    assert status == 200
    assert body["status"] == shown
    if shown == "failed":
        assert body == {
            "jobId": job_id,
            "status": "failed",
            "faces": None,
            "error": {"code": "not_finished", "message": NOT_FINISHED_MESSAGE},
        }
    # Only what is shown changes: the record stays processing, so a redrive of the DLQ can finish it.
    item = aws.dynamodb.get_item(TableName=JOBS_TABLE, Key={"jobId": {"S": job_id}})["Item"]
    assert item["status"] == {"S": "processing"}


def test_get_unknown_job_is_404(aws: Aws, functions, context) -> None:
    status, headers, body = call(functions, get_event("1" * 32), context)
    assert (status, body["error"]["code"]) == (404, "job_not_found")
    assert headers["cache-control"] == "no-store"


def test_get_expired_job_is_404_even_before_dynamodb_deletes_it(aws: Aws, functions, context) -> None:
    job_id = "2" * 32
    _put_job(aws, job_id, ttl={"N": str(int(datetime.now(UTC).timestamp()) - 10)})
    status, _, body = call(functions, get_event(job_id), context)
    assert (status, body["error"]["code"]) == (404, "job_not_found")


@pytest.mark.parametrize(
    "job_id", ["3F1C0A5E9B7D4C2A8E6F1B3D5A7C9E0F", "abc", "g" * 32, "0" * 33, "0" * 31 + "%"]
)
def test_get_malformed_job_id_is_400(aws: Aws, functions, context, job_id) -> None:
    status, _, body = call(functions, get_event(job_id), context)
    assert (status, body["error"]["code"]) == (400, "invalid_job_id")


@pytest.mark.parametrize("path", ["/nope", "/jobs/" + "a" * 32 + "/extra", "/"])
def test_unknown_route_is_404_in_the_error_shape(aws: Aws, functions, context, path) -> None:
    status, _, body = call(functions, get_event("x", path=path), context)
    assert (status, body["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(("method", "path"), [("GET", "/uploads"), ("PUT", "/jobs/" + "a" * 32)])
def test_a_method_no_route_takes_is_404_when_invoked_directly(
    aws: Aws, functions, context, method, path
) -> None:
    # API Gateway (and the local gateway) never route these to the function; a direct invoke gets a 404.
    status, _, body = call(functions, get_event("a" * 32, method=method, path=path), context)
    assert (status, body["error"]["code"]) == (404, "not_found")


class BrokenDynamoDB:
    """A DynamoDB client whose every call fails like an outage."""

    def __getattr__(self, name: str) -> Any:
        def fail(**_: Any) -> Any:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

        return fail


def test_crash_is_500_in_the_error_shape_without_details(aws: Aws, functions, context) -> None:
    functions.api.override(dynamodb=BrokenDynamoDB())
    status, _, body = call(functions, get_event("a" * 32), context)
    assert status == 500
    assert body["error"]["code"] == "internal_error"
    assert "dynamodb" not in json.dumps(body).lower()


def test_blurred_bucket_is_untouched_by_the_api(aws: Aws, functions, context) -> None:
    call(functions, load_event("api_create_upload.json"), context)
    assert aws.keys(BLURRED_BUCKET) == []
    assert aws.keys(UPLOADS_BUCKET) == []
