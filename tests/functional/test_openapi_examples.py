"""openapi.yaml's own examples through the real ApiFunction (moto, IAM enforced): each accepted example is
taken, each refused one gets exactly the answer the document shows, and every answer fits the document
(status, body schema, headers). The answers the examples do not reach (401, 403, 404, 409, 429) are
provoked here too, so each documented status is one the handler really gives, in the documented shape.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from photoveil.settings import get_settings
from photoveil_dev.contract import (
    Example,
    Operation,
    accepted_examples,
    load_document,
    operation,
    refused_examples,
    resolve,
    response_headers,
    response_schema,
    validator,
)

from .helpers import Aws, Functions, load_event, s3_put_event

DOCUMENT = load_document()
Answer = tuple[int, dict[str, str], Any]


def api_event(
    op: Operation, job_id: str | None, body: Any = None, token: str | None = None
) -> dict[str, Any]:
    """The payload 2.0 event API Gateway sends for OP (on JOB_ID), from the events/ samples."""
    event = copy.deepcopy(load_event("api_create_upload.json"))
    path = op.path.replace("{jobId}", job_id or "")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = op.method
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{op.method} {op.path}"
    event["pathParameters"] = {"jobId": job_id} if job_id else None
    event["headers"].pop("content-length")
    if token is not None:
        event["headers"]["authorization"] = f"Bearer {token}"
    if body is None:
        event.pop("body")
    else:
        event["body"] = json.dumps(body)
    return event


def answer(functions: Functions, context: Any, event: dict[str, Any]) -> Answer:
    response = functions.api.invoke(event, context)
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return response["statusCode"], headers, json.loads(response["body"]) if response.get("body") else None


def assert_documented(op: Operation, got: Answer) -> None:
    """The answer is one OP documents: its status, a body its schema takes, its required headers, each
    header's value as its schema says."""
    status, headers, body = got
    assert str(status) in op.spec["responses"], f"{op.operation_id} answered an undocumented {status}: {body}"
    schema = response_schema(DOCUMENT, op, status)
    if schema is None:
        assert body is None, f"{op.operation_id} {status} has no documented body, yet answered {body}"
    else:
        errors = [e.message for e in validator(DOCUMENT, schema).iter_errors(body)]
        assert not errors, f"{op.operation_id} {status}: {body} does not fit openapi.yaml: {errors}"
    for name, header in response_headers(DOCUMENT, op, status).items():
        if name not in headers:
            assert not header.get("required"), f"{op.operation_id} {status} lacks the header {name}"
            continue
        value: Any = headers[name]
        if resolve(DOCUMENT, header["schema"]).get("type") == "integer":
            value = int(value) if value.isdigit() else value
        assert validator(DOCUMENT, header["schema"]).is_valid(value), f"{name}: {value!r}"


Upload = Callable[..., tuple[str, str]]


@pytest.fixture
def upload(aws: Aws, functions: Functions, context: Any, astronaut_path: Any) -> Upload:
    """upload(publish=True) -> (jobId, ownerToken) of a new job, its photo published (or never uploaded)."""

    def make(*, publish: bool = True) -> tuple[str, str]:
        data = astronaut_path.read_bytes()
        body = {"contentType": "image/png", "size": len(data)}
        status, _, created = answer(
            functions, context, api_event(operation(DOCUMENT, "createUpload"), None, body)
        )
        assert status == 201
        if publish:
            aws.put_upload(f"uploads/{created['jobId']}", data)
            event = s3_put_event(f"uploads/{created['jobId']}", len(data))
            assert functions.worker.invoke(event, context) == {"batchItemFailures": []}
        return created["jobId"], created["ownerToken"]

    return make


def _ids(example: Example) -> str:
    return f"{example.operation.operation_id}-{example.name}"


@pytest.mark.parametrize("example", list(accepted_examples(DOCUMENT)), ids=_ids)
def test_each_accepted_example_is_taken(
    example: Example, functions: Functions, context: Any, upload: Upload
) -> None:
    op = example.operation
    job_id, token = (None, None) if op.operation_id == "createUpload" else upload()

    got = answer(functions, context, api_event(op, job_id, example.body, token))

    assert got[0] in (201, 202), got
    assert_documented(op, got)


@pytest.mark.parametrize("example", list(refused_examples(DOCUMENT)), ids=_ids)
def test_each_refused_example_gets_the_documented_answer(
    example: Example, functions: Functions, context: Any, upload: Upload
) -> None:
    op = example.operation
    # The owner's token is checked before the body: a job of its own, never uploaded, is enough.
    job_id, token = (None, None) if op.operation_id == "createUpload" else upload(publish=False)

    got = answer(functions, context, api_event(op, job_id, example.body, token))

    assert (got[0], got[2]) == (example.status, example.answer)
    assert_documented(op, got)


@pytest.mark.parametrize("operation_id", ["deleteJob", "editJob"])
def test_the_owner_routes_refusals_are_documented(
    operation_id: str, functions: Functions, context: Any, upload: Upload
) -> None:
    op = operation(DOCUMENT, operation_id)
    job_id, token = upload(publish=False)
    other_job, _ = upload(publish=False)
    body = {"regions": [{"x": 0, "y": 0, "width": 1, "height": 1}]} if op.method == "POST" else None
    cases = {
        401: api_event(op, job_id, body),
        403: api_event(op, other_job, body, token),
        404: api_event(op, "0" * 32, body, token),
        400: api_event(op, "not-a-job-id", body, token),
    }
    if operation_id == "editJob":
        cases[409] = api_event(op, job_id, body, token)  # never uploaded: not ready

    for status, event in cases.items():
        got = answer(functions, context, event)
        assert got[0] == status, got
        assert_documented(op, got)


def test_the_status_of_each_kind_of_job_is_documented(
    functions: Functions, context: Any, upload: Upload
) -> None:
    op = operation(DOCUMENT, "getJob")
    awaiting, _ = upload(publish=False)
    done, _ = upload()
    deleted, deleted_token = upload()
    delete = operation(DOCUMENT, "deleteJob")
    for _ in range(2):  # deleted, then deleted again
        got = answer(functions, context, api_event(delete, deleted, None, deleted_token))
        assert got[0] == 204
        assert_documented(delete, got)

    shown = {job: answer(functions, context, api_event(op, job)) for job in (awaiting, done, deleted)}
    assert [got[2]["status"] for got in shown.values()] == ["awaiting_upload", "done", "deleted"]
    for got in shown.values():
        assert_documented(op, got)
    assert_documented(op, answer(functions, context, api_event(op, "0" * 32)))
    assert_documented(op, answer(functions, context, api_event(op, "NOT-HEX")))


def test_a_spent_limit_answers_as_documented(
    monkeypatch: pytest.MonkeyPatch, functions: Functions, context: Any
) -> None:
    monkeypatch.setenv("UPLOADS_PER_CLIENT_HOUR", "1")
    get_settings.cache_clear()
    op = operation(DOCUMENT, "createUpload")
    event = api_event(op, None, {"contentType": "image/jpeg", "size": 10})
    assert answer(functions, context, event)[0] == 201

    got = answer(functions, context, event)

    assert got[0] == 429 and got[2]["error"]["code"] == "rate_limited"
    assert "retry-after" in got[1]  # optional in the document only because API Gateway's own 429 has none
    assert_documented(op, got)
