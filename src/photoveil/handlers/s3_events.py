"""S3 event notifications as they reach a function through SQS: directly (uploads) or through SNS.

What S3 did not send (not JSON, not an S3 event, a record of the wrong shape) is acknowledged: retrying
cannot change it, and it would only loop to the DLQ. Read through Powertools' data classes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes.s3_event import S3Event, S3EventRecord
from aws_lambda_powertools.utilities.data_classes.sns_event import SNSMessage
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from photoveil.observability import logger
from photoveil.service.notifications import ObjectCreated

# What a misshapen message raises when read through the Powertools data classes.
MISSHAPEN = (ValueError, KeyError, IndexError, TypeError, AttributeError)


def objects_created(record: SQSRecord) -> list[ObjectCreated]:
    """The ObjectCreated records of the S3 event in an SQS message, raw or in an SNS envelope."""
    try:
        event = _s3_event(record)
        if event.get("Event") == "s3:TestEvent":
            logger.info("acknowledging the s3:TestEvent sent when the notification was configured")
            return []
        s3_records = list(event.records)
    except MISSHAPEN:
        logger.warning("ignoring a message that is not an S3 event", extra={"message_id": record.message_id})
        return []
    created = []
    for s3_record in s3_records:
        try:
            parsed = _object_created(s3_record)
        except MISSHAPEN:
            logger.warning("ignoring a misshapen S3 record", extra={"message_id": record.message_id})
            continue
        if parsed is not None:
            created.append(parsed)
    return created


def _s3_event(record: SQSRecord) -> S3Event:
    """The message body, or the SNS Message in it (a subscription without raw message delivery)."""
    body = record.json_body
    if isinstance(body, dict) and body.get("Type") == "Notification" and "TopicArn" in body:
        return S3Event(json.loads(SNSMessage(body).message))
    return record.decoded_nested_s3_event


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
