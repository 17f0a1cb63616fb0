"""ApiFunction: ``POST /uploads`` (photoveil.service.uploads), ``GET /jobs/{jobId}``
(photoveil.service.status), the owner's ``DELETE /jobs/{jobId}`` and ``POST /jobs/{jobId}/regions``
(photoveil.service.owner), and anyone's ``POST /jobs/{jobId}/report`` (photoveil.service.reports).

Routing and HTTP only. Every error, including crashes, is ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from photoveil.dependencies import get_dependencies
from photoveil.errors import RequestError
from photoveil.observability import count_rate_limited, logger, metrics, tracer
from photoveil.service.owner import charge_owner_request, delete_photo, owned_job, request_edit
from photoveil.service.quotas import QuotaExceededError
from photoveil.service.reports import parse_report, report_photo
from photoveil.service.status import job_status
from photoveil.service.uploads import bad_request, create_upload, parse_upload_request

app = APIGatewayHttpResolver()


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    # A 401 names the scheme it wants (RFC 9110), so clients know to send the owner token.
    if status == HTTPStatus.UNAUTHORIZED:
        headers = {"WWW-Authenticate": 'Bearer realm="photoveil"', **(headers or {})}
    return _json(status, {"error": {"code": code, "message": message}}, headers)


def _source_ip() -> str:
    # API Gateway sets it from the connection; a client cannot choose it with a header.
    return app.current_event.request_context.http.source_ip


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
        raise bad_request("invalid_json", "the request body must be JSON") from None


@app.post("/uploads")
def post_upload() -> Response:
    deps = get_dependencies()
    request = parse_upload_request(_raw_body(app.current_event), deps.settings)
    body = create_upload(request, deps, api_url=_base_url(app.current_event), source_ip=_source_ip())
    return _json(HTTPStatus.CREATED, body)


@app.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    return _json(HTTPStatus.OK, job_status(job_id, get_dependencies()))


@app.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> Response:
    deps = get_dependencies()
    charge_owner_request(_source_ip(), deps)
    delete_photo(owned_job(job_id, app.current_event.headers.get("authorization"), deps), deps)
    return Response(status_code=HTTPStatus.NO_CONTENT.value, headers={"Cache-Control": "no-store"})


@app.post("/jobs/<job_id>/regions")
def post_regions(job_id: str) -> Response:
    deps = get_dependencies()
    charge_owner_request(_source_ip(), deps)
    job = owned_job(job_id, app.current_event.headers.get("authorization"), deps)
    edit = request_edit(job, _raw_body(app.current_event), deps)
    body = {
        "jobId": job_id,
        "status": "processing",
        "edit": edit.number,
        "statusUrl": f"{_base_url(app.current_event)}/jobs/{job_id}",
    }
    return _json(HTTPStatus.ACCEPTED, body)


@app.post("/jobs/<job_id>/report")
def post_report(job_id: str) -> Response:
    deps = get_dependencies()
    request = parse_report(_raw_body(app.current_event))
    report_photo(job_id, request, _source_ip(), deps)
    return _json(HTTPStatus.ACCEPTED, {"jobId": job_id, "status": "received"})


@app.not_found
def route_not_found(_: NotFoundError) -> Response:
    # API Gateway only routes the template's routes here; this answers direct invokes with other events.
    return _error(HTTPStatus.NOT_FOUND, "not_found", "no such route")


@app.exception_handler(RequestError)
def request_error(error: RequestError) -> Response:
    logger.info("request rejected", extra={"code": error.code, "status": int(error.status)})
    headers = None
    if isinstance(error, QuotaExceededError):
        count_rate_limited(error.limit, service_wide=error.service_wide)
        headers = {"Retry-After": str(error.retry_after)}
    return _error(error.status, error.code, error.message, headers)


@app.exception_handler(Exception)
def internal_error(error: Exception) -> Response:
    logger.exception("unhandled error")
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "something went wrong; try again")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
# Responses carry the owner token (POST /uploads) and the photo's URL (GET /jobs), which X-Ray must never
# keep: the tracer records the invocation, not what it answered.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
