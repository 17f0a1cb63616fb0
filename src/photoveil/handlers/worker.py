"""BlurFunction: SQS messages carrying S3 ObjectCreated events for ``uploads/{jobId}``, and the owners'
edits, withdrawals to finish and reported photos to withhold that the API queues on the same queue (same
retries, DLQ and alarms).

Event in, typed records out, one domain call each (photoveil.service.jobflow). A record that raises lands in
``batchItemFailures`` and is retried (then the DLQ); what no retry can fix is acknowledged here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from photoveil.adapters.queue import EDIT_MESSAGE, WITHDRAW_MESSAGE, WITHHOLD_MESSAGE
from photoveil.deadline import time_budget
from photoveil.dependencies import Dependencies, get_dependencies
from photoveil.handlers.s3_events import objects_created
from photoveil.observability import job_context, logger, metrics, tracer
from photoveil.service.jobflow import apply_edit, handle_upload
from photoveil.service.reports import withhold_photo
from photoveil.service.status import JOB_ID_RE
from photoveil.service.withdrawals import finish_withdrawals

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
        try:
            message = queued_message(record)
            if message is None:
                for upload in objects_created(record):
                    handle_upload(upload, get_dependencies())
            elif message.kind == EDIT_MESSAGE:
                with job_context(message.job_id):
                    apply_edit(message.job_id, message.edit, get_dependencies())
            else:
                with job_context(message.job_id):
                    JOB_ACTIONS[message.kind](message.job_id, get_dependencies())
        except Exception:
            # BatchProcessor keeps the exception to itself; say here why the message will come back.
            logger.exception("record failed; it will be retried (then dead-lettered)")
            raise


# What the API queues on the blur queue beside S3's events (adapters.queue), by kind, besides edits.
JOB_ACTIONS: dict[str, Callable[[str, Dependencies], None]] = {
    WITHDRAW_MESSAGE: finish_withdrawals,  # CloudFront was busy: finish what the job records to withdraw
    WITHHOLD_MESSAGE: withhold_photo,  # reports withdrew the photo (service.reports)
}


@dataclass(frozen=True)
class QueuedMessage:
    kind: str  # EDIT_MESSAGE or a key of JOB_ACTIONS
    job_id: str
    edit: int = 0  # an edit's number


def queued_message(record: SQSRecord) -> QueuedMessage | None:
    """The message if the API queued it (an edit, a withdrawal, a photo to withhold), else None: an S3
    event, or a misshapen message (logged), which objects_created acknowledges."""
    try:
        body = record.json_body
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("photoveil") not in (EDIT_MESSAGE, *JOB_ACTIONS):
        return None
    kind, job_id, edit = body["photoveil"], body.get("jobId"), body.get("edit")
    if (
        not isinstance(job_id, str)
        or not JOB_ID_RE.fullmatch(job_id)
        or (kind == EDIT_MESSAGE and type(edit) is not int)
    ):
        logger.warning(f"ignoring a misshapen {kind} message", extra={"message_id": record.message_id})
        return None
    return QueuedMessage(kind, job_id, edit if kind == EDIT_MESSAGE else 0)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
