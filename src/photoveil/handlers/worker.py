"""BlurFunction: SQS messages carrying S3 ObjectCreated events for ``uploads/{jobId}``.

Event in, typed records out, one domain call each (photoveil.jobflow). A record that raises lands in
``batchItemFailures`` and is retried (then the DLQ); what no retry can fix is acknowledged here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from photoveil.deadline import time_budget
from photoveil.dependencies import get_dependencies
from photoveil.jobflow import ObjectCreated, handle_upload
from photoveil.observability import logger, metrics, tracer

# Every record is reported on its own, even when all fail: the event source mapping then retries just
# those (ReportBatchItemFailures), and the local stack's poller sees the same response shape.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# What a misshapen message raises when read through the Powertools data classes.
MISSHAPEN = (ValueError, KeyError, IndexError, TypeError, AttributeError)


# A record is started only with this much time left, and gives back FINISH_RESERVE_S of it to what
# follows detection (blur, verify, encode, write, email) when the detector may wait on Rekognition.
# An invocation that times out costs every record of its batch a receive; a record not started costs
# only its own, and comes back after the visibility timeout.
MIN_SECONDS_TO_START = 15.0
FINISH_RESERVE_S = 6.0


class OutOfTimeError(Exception):
    """Too little of the invocation is left to start this record; it is retried later."""


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """Handle one SQS message: an S3 notification with zero or more records (usually one)."""
    left = lambda_context.get_remaining_time_in_millis() / 1000
    if left < MIN_SECONDS_TO_START:
        logger.warning("not started: too little time left", extra={"message_id": record.message_id})
        raise OutOfTimeError(f"{left:.1f} s left, {MIN_SECONDS_TO_START:.0f} s needed to start a photo")
    with time_budget(left - FINISH_RESERVE_S):
        for upload in uploads_in(record):
            try:
                handle_upload(upload, get_dependencies())
            except Exception:
                # BatchProcessor keeps the exception to itself; say here why the message will come back.
                logger.exception("record failed; it will be retried (then dead-lettered)")
                raise


def uploads_in(record: SQSRecord) -> list[ObjectCreated]:
    """The ObjectCreated records of the S3 event in ``record``; none for anything else.

    What S3 did not send (not JSON, not an S3 event, a record of the wrong shape) is acknowledged:
    retrying cannot change it, and it would only loop to the DLQ.
    """
    try:
        event = record.decoded_nested_s3_event
        if event.get("Event") == "s3:TestEvent":
            logger.info("acknowledging the s3:TestEvent sent when the notification was configured")
            return []
        s3_records = list(event.records)
    except MISSHAPEN:
        logger.warning("ignoring a message that is not an S3 event", extra={"message_id": record.message_id})
        return []
    uploads = []
    for s3_record in s3_records:
        try:
            upload = _object_created(s3_record)
        except MISSHAPEN:
            logger.warning("ignoring a misshapen S3 record", extra={"message_id": record.message_id})
            continue
        if upload is not None:
            uploads.append(upload)
    return uploads


def _object_created(s3_record: S3EventRecord) -> ObjectCreated | None:
    """The record as an ObjectCreated, None for other event names; raises on a misshapen record."""
    event_name = s3_record.event_name
    if not event_name.startswith("ObjectCreated:"):
        logger.info("ignoring a non-ObjectCreated event", extra={"event_name": event_name})
        return None
    obj = s3_record.s3.get_object
    size = obj.get("size")
    return ObjectCreated(
        bucket=s3_record.s3.bucket.name,
        key=unquote_plus(obj.key),  # "+" for a space, %XX for UTF-8 bytes
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        event_time=_event_time(s3_record.get("eventTime")),
    )


def _event_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
