"""Starting a photo's life: validate ``POST /uploads``, create its job and a presigned upload form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from photoveil.adapters.mailer import is_valid_email
from photoveil.adapters.storage import too_large_message
from photoveil.dependencies import Dependencies, new_job_id
from photoveil.errors import RequestError
from photoveil.observability import MetricUnit, job_context, logger, metrics
from photoveil.service.mail import refusal_at_upload
from photoveil.service.owner_tokens import new_owner_token
from photoveil.service.quotas import SERVICE, Limits, charge, client_key
from photoveil.settings import ALLOWED_CONTENT_TYPES, Settings

MAX_BODY_BYTES = 4096
UPLOAD_FIELDS = frozenset({"contentType", "size", "email"})
# An upload never arrives after its presigned POST expires; the job row only has to outlive the
# uploads bucket's 1-day lifecycle rule so a late event still finds it.
PENDING_JOB_TTL = timedelta(days=1)


def bad_request(code: str, message: str) -> RequestError:
    return RequestError(HTTPStatus.BAD_REQUEST, code, message)


@dataclass(frozen=True)
class UploadRequest:
    content_type: str
    size: int
    email: str | None


def parse_upload_request(body: bytes, settings: Settings) -> UploadRequest:
    """Validate a ``POST /uploads`` body; raises RequestError(400) with a stable code.

    Unknown fields are rejected (a typo such as ``content_type`` should fail loudly, not be ignored).
    """
    data = json_object(body)
    unknown = sorted(set(data) - UPLOAD_FIELDS)
    if unknown:
        raise bad_request("unknown_field", f"unknown field: {unknown[0][:40]}")
    for name in ("contentType", "size"):
        if name not in data:
            raise bad_request("missing_field", f"{name} is required")

    content_type = data["contentType"]
    if not isinstance(content_type, str) or content_type not in ALLOWED_CONTENT_TYPES:
        raise bad_request(
            "unsupported_content_type", f"contentType must be one of {', '.join(ALLOWED_CONTENT_TYPES)}"
        )
    size = data["size"]
    # JSON has one number type: 1000.0 is the whole number 1000 (and an integer to JSON Schema, so to
    # openapi.yaml); 1000.5, NaN and Infinity are not.
    if isinstance(size, float) and size.is_integer():
        size = int(size)
    # bool is an int in Python; `true` is not a size.
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise bad_request("invalid_size", "size must be a positive whole number of bytes")
    if size > settings.max_upload_bytes:
        raise bad_request("file_too_large", too_large_message(settings.max_upload_bytes))

    email = data.get("email")
    if email in (None, ""):
        email = None
    elif not isinstance(email, str) or not is_valid_email(email):
        raise bad_request("invalid_email", "email must be a valid address of at most 254 characters")
    return UploadRequest(content_type=content_type, size=size, email=email)


def json_object(body: bytes) -> dict[str, Any]:
    """A small JSON object request body; RequestError(400) with a stable code for anything else."""
    if len(body) > MAX_BODY_BYTES:
        raise bad_request("body_too_large", f"the request body must be at most {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a few KB of "[[[[..." nest deeper than the parser's stack; still just bad JSON.
        raise bad_request("invalid_json", "the request body must be JSON") from None
    if not isinstance(data, dict):
        raise bad_request("invalid_request", "the request body must be a JSON object")
    return data


def charge_upload(source_ip: str, deps: Dependencies) -> None:
    """Count an upload against its client's hour and day and the service's day; QuotaExceededError (429)."""
    limits = Limits.from_settings(deps.settings)
    client = client_key(source_ip)
    charges = [
        (limits.uploads_per_client_hour, client),
        (limits.uploads_per_client_day, client),
        (limits.uploads_per_day, SERVICE),
    ]
    charge(deps.quotas, deps.clock(), charges)


def create_upload(
    request: UploadRequest, deps: Dependencies, *, api_url: str, source_ip: str
) -> dict[str, Any]:
    """Charge the client's quotas, create a job ``awaiting_upload`` and the form that uploads its photo;
    the ``201`` body (with ``emailRefused`` when the email will not be sent)."""
    settings = deps.settings
    charge_upload(source_ip, deps)
    refused = refusal_at_upload(request.email, source_ip, deps) if request.email else None
    email = None if refused else request.email
    job_id = new_job_id()
    token, token_hash = new_owner_token()
    with job_context(job_id):
        now = deps.clock()
        deps.jobs.create(
            job_id,
            content_type=request.content_type,
            size=request.size,
            email=email,
            owner_token_hash=token_hash,
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
            extra={"content_type": request.content_type, "size": request.size, "email": bool(email)},
        )
    body = {
        "jobId": job_id,
        "upload": {"url": upload.url, "fields": upload.fields},
        "statusUrl": f"{api_url}/jobs/{job_id}",
        "expiresIn": settings.upload_url_expires_s,
        # Shown this once: it deletes or edits the photo, and only its hash is kept.
        "ownerToken": token,
    }
    if refused:
        body["emailRefused"] = refused
    return body
