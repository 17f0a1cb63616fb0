"""ApiFunction: ``POST /uploads`` (create a job and a presigned upload) and ``GET /jobs/{jobId}``.

Thin on purpose: request parsing is ``parse_upload_request``, storage and jobs are adapters.
Every error, including unknown routes and crashes, is ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from photoveil.adapters.jobs import DONE, FAILED, Job
from photoveil.adapters.mailer import is_valid_email
from photoveil.adapters.storage import blurred_key, too_large_message
from photoveil.handlers.dependencies import get_dependencies, new_job_id
from photoveil.observability import MetricUnit, job_context, logger, metrics, tracer
from photoveil.settings import ALLOWED_CONTENT_TYPES, Settings

MAX_BODY_BYTES = 4096
JOB_ID_RE = re.compile(r"[0-9a-f]{32}")
UPLOAD_FIELDS = frozenset({"contentType", "size", "email"})
# An upload never arrives after its presigned POST expires; the job row only has to outlive the
# uploads bucket's 1-day lifecycle rule so a late event still finds it.
PENDING_JOB_TTL = timedelta(days=1)
# What a job whose retries are over shows (Job.retries_over). Not the user's fault, and nothing was published.
NOT_FINISHED = "not_finished"
NOT_FINISHED_MESSAGE = "We could not finish blurring this photo, and nothing was published. Please try again."

app = APIGatewayHttpResolver()


class ApiError(Exception):
    """A client-facing error with an HTTP status and a stable code."""

    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _bad_request(code: str, message: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, code, message)


@dataclass(frozen=True)
class UploadRequest:
    content_type: str
    size: int
    email: str | None


def parse_upload_request(body: bytes, settings: Settings) -> UploadRequest:
    """Validate a ``POST /uploads`` body; raises ApiError(400) with a stable code.

    Unknown fields are rejected (a typo such as ``content_type`` should fail loudly, not be ignored).
    """
    if len(body) > MAX_BODY_BYTES:
        raise _bad_request("body_too_large", f"the request body must be at most {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a few KB of "[[[[..." nest deeper than the parser's stack; still just bad JSON.
        raise _bad_request("invalid_json", "the request body must be JSON") from None
    if not isinstance(data, dict):
        raise _bad_request("invalid_request", "the request body must be a JSON object")
    unknown = sorted(set(data) - UPLOAD_FIELDS)
    if unknown:
        raise _bad_request("unknown_field", f"unknown field: {unknown[0][:40]}")
    for name in ("contentType", "size"):
        if name not in data:
            raise _bad_request("missing_field", f"{name} is required")

    content_type = data["contentType"]
    if not isinstance(content_type, str) or content_type not in ALLOWED_CONTENT_TYPES:
        raise _bad_request(
            "unsupported_content_type", f"contentType must be one of {', '.join(ALLOWED_CONTENT_TYPES)}"
        )
    size = data["size"]
    # bool is an int in Python; `true` is not a size.
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise _bad_request("invalid_size", "size must be a positive whole number of bytes")
    if size > settings.max_upload_bytes:
        raise _bad_request("file_too_large", too_large_message(settings.max_upload_bytes))

    email = data.get("email")
    if email in (None, ""):
        email = None
    elif not isinstance(email, str) or not is_valid_email(email):
        raise _bad_request("invalid_email", "email must be a valid address of at most 254 characters")
    return UploadRequest(content_type=content_type, size=size, email=email)


def _json(status: HTTPStatus, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _error(status: HTTPStatus, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json(status, {"error": {"code": code, "message": message}}, headers)


def _base_url(event: APIGatewayProxyEventV2) -> str:
    """This API's own absolute URL (what the browser called), including a named stage."""
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    proto = headers.get("x-forwarded-proto", "https").split(",")[0].strip()
    if proto not in ("http", "https"):
        proto = "https"
    # requestContext.domainName is set by API Gateway itself; the Host header is only a fallback
    # for gateways that leave it out.
    host = event.request_context.domain_name or headers.get("host", "")
    stage = event.request_context.stage
    prefix = "" if stage in (None, "", "$default") else f"/{stage}"
    return f"{proto}://{host}{prefix}"


def _raw_body(event: APIGatewayProxyEventV2) -> bytes:
    body = event.body or ""
    if not event.is_base64_encoded:
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise _bad_request("invalid_json", "the request body must be JSON") from None


@app.post("/uploads")
def create_upload() -> Response:
    deps = get_dependencies()
    settings = deps.settings
    request = parse_upload_request(_raw_body(app.current_event), settings)
    job_id = new_job_id()
    with job_context(job_id):
        now = deps.clock()
        deps.jobs.create(
            job_id,
            content_type=request.content_type,
            size=request.size,
            email=request.email,
            now=now,
            ttl=int((now + PENDING_JOB_TTL).timestamp()),
        )
        upload = deps.storage.presign_upload(
            job_id,
            content_type=request.content_type,
            max_bytes=settings.max_upload_bytes,
            expires_in=settings.upload_url_expires_s,
        )
        metrics.add_metric(name="UploadsCreated", unit=MetricUnit.Count, value=1)
        logger.info(
            "job created",
            extra={"content_type": request.content_type, "size": request.size, "email": bool(request.email)},
        )
    return _json(
        HTTPStatus.CREATED,
        {
            "jobId": job_id,
            "upload": {"url": upload.url, "fields": upload.fields},
            "statusUrl": f"{_base_url(app.current_event)}/jobs/{job_id}",
            "expiresIn": settings.upload_url_expires_s,
        },
    )


def job_view(job: Job, settings: Settings, now: datetime) -> dict[str, Any]:
    """What ``GET /jobs/{jobId}`` shows: never the email or internal bookkeeping.

    A job whose retries are over (its message dead-lettered: a worker crash or a fault that outlasted
    every retry) is shown ``failed``, so the page and the "Check again" button stop waiting for a photo
    that will not come. The record itself stays ``processing``: a redrive may still finish it.
    """
    if job.retries_over(
        now,
        visibility_timeout_s=settings.queue_visibility_timeout_s,
        max_receive_count=settings.queue_max_receive_count,
    ):
        return {
            "jobId": job.job_id,
            "status": FAILED,
            "faces": None,
            "error": {"code": NOT_FINISHED, "message": NOT_FINISHED_MESSAGE},
        }
    view: dict[str, Any] = {"jobId": job.job_id, "status": job.status, "faces": job.faces}
    if job.status == DONE:
        view["photoUrl"] = f"{settings.public_base_url}/{job.photo_key or blurred_key(job.job_id)}"
        view["expiresAt"] = job.expires_at
    elif job.status == FAILED:
        view["error"] = {"code": job.error_code or "internal_error", "message": job.error_message or ""}
    return view


@app.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    if not JOB_ID_RE.fullmatch(job_id):
        raise _bad_request("invalid_job_id", "a job id is 32 lowercase hexadecimal characters")
    deps = get_dependencies()
    with job_context(job_id):
        job = deps.jobs.get(job_id)
        now = deps.clock()
        if job is None or job.expired(now):
            raise ApiError(HTTPStatus.NOT_FOUND, "job_not_found", "no such job (or it has expired)")
        return _json(HTTPStatus.OK, job_view(job, deps.settings, now))


_ROUTE_METHODS = ((re.compile(r"/uploads/?"), "POST"), (re.compile(r"/jobs/[^/]+/?"), "GET"))


@app.not_found
def route_not_found(_: NotFoundError) -> Response:
    path, requested = app.current_event.path, app.current_event.http_method
    for pattern, method in _ROUTE_METHODS:
        if pattern.fullmatch(path) and requested != method:
            return _error(
                HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", f"use {method} here", {"Allow": method}
            )
    return _error(HTTPStatus.NOT_FOUND, "not_found", "no such route")


@app.exception_handler(ApiError)
def api_error(error: ApiError) -> Response:
    logger.info("request rejected", extra={"code": error.code, "status": error.status.value})
    return _error(error.status, error.code, error.message)


@app.exception_handler(Exception)
def internal_error(error: Exception) -> Response:
    logger.exception("unhandled error")
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "something went wrong; try again")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
