"""MailEventsFunction: SNS messages with SES bounce and complaint events (photoveil.service.mail_events)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from photoveil.dependencies import get_dependencies
from photoveil.observability import logger, metrics, tracer
from photoveil.service.mail_events import stop_mail


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # its events carry email addresses
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    stopped = 0
    for record in SNSEvent(event).records:
        try:
            notification = json.loads(record.sns.message)
        except ValueError:
            logger.warning("ignoring an SNS message that is not JSON")
            continue
        if isinstance(notification, dict):
            stopped += stop_mail(notification, get_dependencies())
    return {"stopped": stopped}
