"""BlurFunction: SQS messages carrying S3 ObjectCreated events for ``uploads/{jobId}``, and the owners'
edits and the reported photos to withhold that the API queues on the same queue (same retries, DLQ and
alarms).

Event in, typed records out, one domain call each (photoveil.service.jobflow). A record that raises lands in
``batchItemFailures`` and is retried (then the DLQ); what no retry can fix is acknowledged here.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from photoveil.adapters.queue import EDIT_MESSAGE, WITHDRAW_MESSAGE, WITHHOLD_MESSAGE
from photoveil.deadline import time_budget
from photoveil.dependencies import get_dependencies
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
            edit, withdrawal, withheld = (
                edit_request(record),
                withdrawal_request(record),
                withhold_request(record),
            )
            if edit is not None:
                with job_context(edit[0]):
                    apply_edit(*edit, get_dependencies())
            elif withdrawal is not None:
                with job_context(withdrawal):
                    finish_withdrawals(withdrawal, get_dependencies())
            elif withheld is not None:
                with job_context(withheld):
                    withhold_photo(withheld, get_dependencies())
            else:
                for upload in objects_created(record):
                    handle_upload(upload, get_dependencies())
        except Exception:
            # BatchProcessor keeps the exception to itself; say here why the message will come back.
            logger.exception("record failed; it will be retried (then dead-lettered)")
            raise


def edit_request(record: SQSRecord) -> tuple[str, int] | None:
    """(jobId, edit number) if the message is an edit the API queued (adapters.queue), else None."""
    try:
        body = record.json_body
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("photoveil") != EDIT_MESSAGE:
        return None
    job_id, number = body.get("jobId"), body.get("edit")
    if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id) or type(number) is not int:
        logger.warning("ignoring a misshapen edit message", extra={"message_id": record.message_id})
        return None
    return job_id, number


def withdrawal_request(record: SQSRecord) -> str | None:
    """The jobId of a ``withdraw`` message the API queued (CloudFront was busy), else None."""
    return _job_message(record, WITHDRAW_MESSAGE)


def withhold_request(record: SQSRecord) -> str | None:
    """The jobId of a photo reports withdrew (the API queued it: service.reports), else None."""
    return _job_message(record, WITHHOLD_MESSAGE)


def _job_message(record: SQSRecord, kind: str) -> str | None:
    try:
        body = record.json_body
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("photoveil") != kind:
        return None
    job_id = body.get("jobId")
    if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id):
        logger.warning(
            "ignoring a misshapen job message", extra={"message_id": record.message_id, "kind": kind}
        )
        return None
    return job_id


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
