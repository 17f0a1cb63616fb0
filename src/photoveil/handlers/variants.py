"""VariantsFunction: SQS messages from the PhotoPublished topic, one per published photo.

Event in, typed records out, one domain call each (photoveil.service.variantflow). A record that raises lands
in ``batchItemFailures`` and is retried (then VariantsDLQ); the photo itself is already done.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from photoveil.dependencies import get_dependencies
from photoveil.handlers.s3_events import objects_created
from photoveil.observability import logger, metrics, tracer
from photoveil.service.variantflow import NotPublishedYetError, handle_published

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


# A photo announced before its job recorded it is looked at again this soon, not a visibility timeout later.
RETRY_SOON_S = 2


def record_handler(record: SQSRecord) -> None:
    """Handle one SQS message: the S3 event of a published photo, raw or in its SNS envelope."""
    for photo in objects_created(record):
        try:
            handle_published(photo, get_dependencies())
        except NotPublishedYetError:
            logger.info("photo not recorded yet; retrying soon")
            get_dependencies().messages.show_again(
                record.event_source_arn, record.receipt_handle, RETRY_SOON_S
            )
            raise
        except Exception:
            logger.exception("record failed; it will be retried (then dead-lettered)")
            raise


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
