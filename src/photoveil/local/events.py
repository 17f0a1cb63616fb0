"""What the handlers receive: API Gateway HTTP API v2 events, Lambda SQS batches and a Lambda context.

Pure functions (no I/O), so the shapes can be checked on their own; the gateway, the pollers and the
functional tests use them.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from photoveil.local.account import ACCOUNT_ID, REGION

API_ID = "local"
TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded", "application/xml")


def http_api_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    domain_name: str,
    route_key: str,
    path_parameters: dict[str, str],
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event, as AWS builds it."""
    merged, cookies = _merged_headers(headers)
    query = _query_parameters(raw_query)
    is_text = not body or merged.get("content-type", "").startswith(TEXT_TYPES)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": _request_context(method, raw_path, route_key, source_ip, domain_name, merged),
        "isBase64Encoded": not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode("utf-8", "replace") if is_text else base64.b64encode(body).decode()
    return event


def _merged_headers(headers: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Lower-cased headers, repeated ones joined with commas as HTTP API does, and the cookies apart."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        else:
            merged[lname] = f"{merged[lname]},{value}" if lname in merged else value
    return merged, cookies


def _query_parameters(raw_query: str) -> dict[str, str]:
    query: dict[str, str] = {}
    for part in filter(None, raw_query.split("&")):
        k, _, v = part.partition("=")
        k, v = unquote_plus(k), unquote_plus(v)
        query[k] = f"{query[k]},{v}" if k in query else v
    return query


def _request_context(
    method: str, raw_path: str, route_key: str, source_ip: str, domain_name: str, headers: dict[str, str]
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".")[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": uuid.uuid4().hex[:16],
        "routeKey": route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }


def http_api_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """What HTTP API sends back for a handler's return value (payload 2.0 rules, incl. the inferred form)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # "If your Lambda function doesn't return a statusCode, API Gateway infers the response format."
        return 200, {"content-type": "application/json"}, json.dumps(result).encode()
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ",".join(map(str, values))
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    if result.get("cookies"):
        headers["set-cookie"] = "; ".join(result["cookies"])
    return int(result["statusCode"]), headers, data


def sqs_record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One Lambda SQS event record from a ReceiveMessage result entry."""
    attrs = {k: v for k, v in (message.get("Attributes") or {}).items()}
    msg_attrs = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        msg_attrs[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(value["BinaryValue"]).decode()
            if value.get("BinaryValue")
            else None,
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attrs,
        "messageAttributes": msg_attrs,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_batch_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The Lambda event for a batch of SQS messages."""
    return {"Records": [sqs_record(m, queue_arn=queue_arn, region=region) for m in messages]}


def failed_message_ids(result: Any) -> set[str] | None:
    """Message ids the handler reported in batchItemFailures; None means "the whole batch failed".

    Lambda treats an unparseable partial batch response as a complete failure.
    """
    if result is None:
        return set()
    if not isinstance(result, dict):
        return None
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids = set()
    for item in failures:
        if not isinstance(item, dict) or not item.get("itemIdentifier"):
            return None
        ids.add(str(item["itemIdentifier"]))
    return ids


@dataclass
class LambdaContext:
    """The Lambda context object handlers and Powertools read; its remaining time runs down from creation."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: float
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))
