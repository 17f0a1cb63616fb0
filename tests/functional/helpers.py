"""Shared pieces of the functional tests: names, event loaders, a fake detector, the account's clients."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import numpy as np
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.authorization import disable_iam_authentication
from moto.ses import ses_backends
from werkzeug.test import Client

from photoveil.imaging.faces import Face
from photoveil.local.functions import LocalFunction

EVENTS = Path(__file__).resolve().parents[2] / "events"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
REGION = "us-east-1"
UPLOADS_BUCKET = "photoveil-uploads-123456789012-10ca1000"  # the name used in events/
BLURRED_BUCKET = "photoveil-blurred-123456789012-10ca1000"
JOBS_TABLE = "photoveil-JobsTable-TEST"
QUOTAS_TABLE = "photoveil-QuotasTable-TEST"
BLUR_QUEUE = "photoveil-BlurQueue-TEST"
BLUR_QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/123456789012/{BLUR_QUEUE}"
VARIANTS_QUEUE = "photoveil-VariantsQueue-TEST"
SITE_BUCKET = "photoveil-site-test"
REPORTS_TOPIC = "photoveil-ReportsTopic-TEST"
REPORTS_TOPIC_ARN = f"arn:aws:sns:us-east-1:123456789012:{REPORTS_TOPIC}"
# The template's resources under the names above: the functions' roles are made for these.
RESOURCE_NAMES = {
    "UploadsBucket": UPLOADS_BUCKET,
    "BlurredBucket": BLURRED_BUCKET,
    "SiteBucket": SITE_BUCKET,
    "JobsTable": JOBS_TABLE,
    "QuotasTable": QUOTAS_TABLE,
    "BlurQueue": BLUR_QUEUE,
    "VariantsQueue": VARIANTS_QUEUE,
    "ReportsTopic": REPORTS_TOPIC,
}
SENDER = "photos@photoveil.example"
# The template's parameters as deployed, with a sender (the email path needs its SES permission).
PARAMETERS = {"SenderEmail": SENDER}
PUBLIC_BASE_URL = "https://d111111abcdef8.cloudfront.net"
GOOD_JOB = "3f1c0a5e9b7d4c2a8e6f1b3d5a7c9e0f"  # the job ids in events/sqs_batch_one_bad.json
BAD_JOB = "b2e4d6f8a0c2e4f6a8b0c2d4e6f8a0b2"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def s3_put_event(key: str, size: int, *, template: str = "sqs_s3_put.json") -> dict[str, Any]:
    """events/sqs_s3_put.json with its object key (URL-encoded the way S3 does) and size replaced."""
    event = copy.deepcopy(load_event(template))
    record = event["Records"][0]
    body = json.loads(record["body"])
    body["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")
    body["Records"][0]["s3"]["object"]["size"] = size
    record["body"] = json.dumps(body)
    return event


class FixedBoxDetector:
    """Stands in for a real detector: one 'face' box at fixed relative coordinates."""

    name = "fixed-box"

    def __init__(self, box: tuple[float, float, float, float] = (0.3, 0.1, 0.55, 0.35)) -> None:
        self.box = box
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        h, w = image.shape[:2]
        x1, y1, x2, y2 = self.box
        return [Face(x1 * w, y1 * h, x2 * w, y2 * h, 0.99)]


class RecordingClient:
    """A boto3 client that keeps the parameters of every call to the operations it is told, and makes the
    call all the same: a test asserts on what was really sent (a delay, a timeout), not on a constant."""

    def __init__(self, client: Any, *operations: str) -> None:
        self._client, self._operations = client, operations
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in self._operations:
            return method

        def recorded(**kwargs: Any) -> Any:
            self.sent.append((name, copy.deepcopy(kwargs)))
            return method(**kwargs)

        return recorded


@dataclass
class Aws:
    """The mocked account: the admin's clients (the functions use their roles') and helpers for
    assertions."""

    s3: Any
    dynamodb: Any
    ses: Any
    sqs: Any
    cloudfront: Any
    uploads: Any  # moto's S3 behind the local stack's form POST authoriser (a WSGI app)

    def post_form(self, upload: dict[str, Any], data: bytes, content_type: str) -> Any:
        """The browser's form POST of DATA to a presigned upload, authorised as S3 would; the response."""
        form = {**upload["fields"], "file": (io.BytesIO(data), "photo", content_type)}
        return Client(self.uploads).post("/", base_url=upload["url"], data=form)

    @contextmanager
    def unchecked(self) -> Iterator[None]:
        """IAM not enforced in the block. For CloudFront's GET calls only: moto 5.2.5 checks their
        signature against the request's headers as if they were its body, so it refuses them."""
        with disable_iam_authentication():
            yield

    def put_upload(self, key: str, data: bytes, content_type: str = "image/png") -> None:
        self.s3.put_object(Bucket=UPLOADS_BUCKET, Key=key, Body=data, ContentType=content_type)

    def keys(self, bucket: str) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

    def item(self, job_id: str) -> dict[str, Any] | None:
        return self.dynamodb.get_item(TableName=JOBS_TABLE, Key={"jobId": {"S": job_id}}).get("Item")

    def sent_emails(self) -> list[Any]:
        return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


@dataclass
class Functions:
    """The template's functions, each run as Lambda would: its handler under its own role's clients."""

    api: LocalFunction
    worker: LocalFunction
    variants: LocalFunction
    site: LocalFunction
    mail_events: LocalFunction
