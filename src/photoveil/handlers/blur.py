"""BlurFunction: SQS messages carrying S3 ObjectCreated events for ``uploads/{jobId}``.

One record at a time (Powertools BatchProcessor): a permanent input error ends the job ``failed`` and
acknowledges the message; anything transient raises, so the record lands in ``batchItemFailures`` and
is retried (then the DLQ). Fail closed: nothing is published unless detection and blurring succeeded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from photoveil.adapters.jobs import DONE, Job
from photoveil.adapters.storage import too_large_message
from photoveil.errors import EmptyFileError, FileTooLargeError, PhotoVeilError
from photoveil.handlers.dependencies import Dependencies, get_dependencies
from photoveil.observability import MetricUnit, count_failure, job_context, logger, metrics, tracer

UPLOAD_KEY_RE = re.compile(r"uploads/([0-9a-f]{32})")
# Keep a failed job visible to its status page for a day, like an unfinished one.
FAILED_JOB_TTL = timedelta(days=1)
STAGE_METRICS = {"decode": "DecodeTime", "detect": "DetectTime", "blur": "BlurTime", "encode": "EncodeTime"}

# Every record is reported on its own, even when all fail: the event source mapping then retries just
# those (ReportBatchItemFailures), and the local stack's poller sees the same response shape.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    """Handle one SQS message: an S3 notification with zero or more records (usually one)."""
    try:
        body = json.loads(record.body)
    except ValueError:
        # Not something S3 sent: retrying cannot make it parse.
        logger.warning("ignoring a message that is not JSON", extra={"message_id": record.message_id})
        return
    if not isinstance(body, dict):
        logger.warning("ignoring a message that is not an S3 event", extra={"message_id": record.message_id})
        return
    if body.get("Event") == "s3:TestEvent":
        logger.info("acknowledging the s3:TestEvent sent when the notification was configured")
        return
    s3_records = body.get("Records") or []
    if not isinstance(s3_records, list) or not all(isinstance(r, dict) for r in s3_records):
        # Not the shape S3 sends; retrying cannot change it, so acknowledge rather than loop to the DLQ.
        logger.warning("ignoring misshapen S3 records", extra={"message_id": record.message_id})
        return
    for s3_record in s3_records:
        try:
            handle_s3_record(s3_record, get_dependencies())
        except Exception:
            # BatchProcessor keeps the exception to itself; say here why the message will come back.
            logger.exception("record failed; it will be retried (then dead-lettered)")
            raise


def handle_s3_record(s3_record: dict[str, Any], deps: Dependencies) -> None:
    """Route one S3 event record to ``blur_upload`` if it is an upload we expect."""
    event_name = str(s3_record.get("eventName", ""))
    if not event_name.startswith("ObjectCreated:"):
        logger.info("ignoring a non-ObjectCreated event", extra={"event_name": event_name})
        return
    s3 = _mapping(s3_record.get("s3"))
    bucket = _mapping(s3.get("bucket")).get("name")
    obj = _mapping(s3.get("object"))
    key = unquote_plus(str(obj.get("key", "")))  # S3 URL-encodes keys in events, "+" for a space
    if bucket != deps.settings.uploads_bucket:
        logger.warning("ignoring an event for another bucket", extra={"bucket": bucket})
        return
    match = UPLOAD_KEY_RE.fullmatch(key)
    if not match:
        # Only presigned POSTs write here, so this is misuse; originals are never kept, so delete it.
        logger.warning("deleting a stray upload that belongs to no job", extra={"key": key[:200]})
        deps.storage.delete_upload_key(key)
        return
    with job_context(match.group(1)):
        blur_upload(
            match.group(1), event_size=obj.get("size"), event_time=s3_record.get("eventTime"), deps=deps
        )


def _mapping(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one: misshapen events are ignored, not retried."""
    return value if isinstance(value, dict) else {}


@tracer.capture_method
def blur_upload(job_id: str, *, event_size: Any, event_time: Any, deps: Dependencies) -> None:
    """Blur ``uploads/{jobId}`` into ``p/{jobId}.jpg``, at most once per job."""
    settings = deps.settings
    job = deps.jobs.get(job_id)
    now = deps.clock()
    if job is None or job.expired(now):
        logger.info("no live job for this upload; deleting it")
        deps.storage.delete_original(job_id)
        return
    if job.finished:
        # A duplicate event (S3 is at-least-once) or a second POST with the same form: the photo was
        # already published or refused. Nothing to redo, no second email; the original must still go.
        logger.info("job already finished; duplicate event", extra={"status": job.status})
        deps.storage.delete_original(job_id)
        metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
        return
    if deps.jobs.mark_processing(job_id, now=now) is None:
        logger.info("job finished meanwhile; duplicate event")
        return

    try:
        jpeg, faces, timings = _blur(job_id, event_size, deps)
    except PhotoVeilError as error:
        if not error.permanent:
            raise
        _fail(job_id, error, deps)
        return

    with _timed(timings, "write"):
        photo_key = deps.storage.put_blurred(job_id, jpeg)
    done_at = deps.clock()
    expires_at = done_at + timedelta(days=settings.photo_ttl_days)
    previous = deps.jobs.mark_done(
        job_id, faces=faces, photo_key=photo_key, expires_at=expires_at, now=done_at
    )
    if previous is None:
        # Another worker finished first (a duplicate event, or a second POST of the same form).
        # If it refused the photo, what we just wrote must not stay reachable.
        current = deps.jobs.get(job_id)
        if current is None or current.status != DONE:
            deps.storage.delete_blurred(job_id)
        deps.storage.delete_original(job_id)
        logger.info("another worker finished this job first; not emailing again")
        return

    _record_success(faces, timings, event_time, done_at)
    logger.info("photo blurred", extra={"faces": faces, "timings_ms": timings})
    # Email before deleting the original: only this transition to done may send it, so a failed delete
    # (retried as a duplicate, which deletes again) must not come first and cost the user the email.
    if previous.email and deps.mailer is not None:
        _send_email(
            previous, photo_url=f"{settings.public_base_url}/{photo_key}", expires_at=expires_at, deps=deps
        )
    deps.storage.delete_original(job_id)


def _blur(job_id: str, event_size: Any, deps: Dependencies) -> tuple[bytes, int, dict[str, float]]:
    """Read, re-check and blur the original. Raises PhotoVeilError (permanent or not) or ClientError."""
    settings = deps.settings
    # The presign policy caps the size on real S3, but moto and a hand-made request do not care.
    if isinstance(event_size, int) and event_size > settings.max_upload_bytes:
        raise FileTooLargeError(too_large_message(settings.max_upload_bytes))
    if event_size == 0:
        raise EmptyFileError("the uploaded file is empty")
    timings: dict[str, float] = {}
    with _timed(timings, "read"):
        data = deps.storage.read_original(job_id, max_bytes=settings.max_upload_bytes)
    # The core sniffs the real format from magic bytes; the declared Content-Type is never trusted.
    result = deps.blur_photo(data, deps.detector, style=settings.blur_style, max_pixels=settings.max_pixels)
    for stage, seconds in result.timings.items():
        timings[stage] = round(seconds * 1000, 1)
    return result.jpeg, len(result.faces), timings


def _fail(job_id: str, error: PhotoVeilError, deps: Dependencies) -> None:
    now = deps.clock()
    logger.info("photo refused", extra={"code": error.code, "reason": error.message})
    failed = deps.jobs.mark_failed(
        job_id, code=error.code, message=error.message, now=now, ttl=int((now + FAILED_JOB_TTL).timestamp())
    )
    deps.storage.delete_original(job_id)
    if failed is not None:
        count_failure(error.code)


def _send_email(job: Job, *, photo_url: str, expires_at: datetime, deps: Dependencies) -> None:
    """Send the link once. A failed email is logged and counted; it never fails or re-blurs the photo."""
    assert deps.mailer is not None and job.email
    try:
        message_id = deps.mailer.send_photo_ready(
            job.email, photo_url=photo_url, expires_at=expires_at.strftime("%Y-%m-%d %H:%M")
        )
    except (ClientError, BotoCoreError, ValueError) as error:
        logger.warning("email not sent", extra={"error": type(error).__name__, "detail": str(error)[:300]})
        metrics.add_metric(name="EmailFailed", unit=MetricUnit.Count, value=1)
        return
    logger.info("email sent", extra={"ses_message_id": message_id})
    metrics.add_metric(name="EmailSent", unit=MetricUnit.Count, value=1)


def _record_success(faces: int, timings: dict[str, float], event_time: Any, done_at: datetime) -> None:
    metrics.add_metric(name="PhotosBlurred", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="FacesBlurred", unit=MetricUnit.Count, value=faces)
    for stage, ms in timings.items():
        metrics.add_metric(
            name=STAGE_METRICS.get(stage, f"{stage.capitalize()}Time"), unit=MetricUnit.Milliseconds, value=ms
        )
    # Upload-to-published latency is the product promise (a minute): measure it where it ends.
    uploaded_at = _parse_event_time(event_time)
    if uploaded_at is not None:
        latency_ms = max(0.0, (done_at - uploaded_at).total_seconds() * 1000)
        metrics.add_metric(name="UploadToDoneLatency", unit=MetricUnit.Milliseconds, value=round(latency_ms))


def _parse_event_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round((time.perf_counter() - start) * 1000, 1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
