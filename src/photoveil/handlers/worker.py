"""BlurFunction: SQS messages carrying S3 ObjectCreated events for ``uploads/{jobId}``.

Event in, typed records out, one domain call each (photoveil.jobflow). A record that raises lands in
``batchItemFailures`` and is retried (then the DLQ); what no retry can fix is acknowledged here.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from photoveil.deadline import time_budget
from photoveil.dependencies import get_dependencies
from photoveil.handlers.s3_events import objects_created
from photoveil.jobflow import handle_upload
from photoveil.observability import logger, metrics, tracer

# Every record is reported on its own, even when all fail: the event source mapping then retries just
# those (ReportBatchItemFailures), and the local stack's poller sees the same response shape.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


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
        for upload in objects_created(record):
            try:
                handle_upload(upload, get_dependencies())
            except Exception:
                # BatchProcessor keeps the exception to itself; say here why the message will come back.
                logger.exception("record failed; it will be retried (then dead-lettered)")
                raise


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
