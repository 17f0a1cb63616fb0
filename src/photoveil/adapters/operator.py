"""SNS: tell the operator that reports took a photo offline (the ReportsTopic; an email subscription is
optional, and the local stack shows what was published in its outbox)."""

from __future__ import annotations

from typing import Any

from photoveil.adapters.clients import sns_client


class OperatorAlerts:
    """Publishes to the operator's topic; with no topic (not configured) it does nothing."""

    def __init__(self, topic_arn: str, client: Any = None) -> None:
        self.topic_arn = topic_arn
        self._client = client

    def photo_withdrawn(self, job_id: str, *, networks: int, reasons: dict[str, int]) -> str | None:
        """Say which photo was withdrawn and why; the SNS message id (None without a topic)."""
        if not self.topic_arn:
            return None
        summary = ", ".join(f"{reason} x{count}" for reason, count in sorted(reasons.items()))
        text = (
            f"Photo {job_id} was taken offline after reports from {networks} different networks "
            f"({summary}). Review it: photoveil admin reports; then photoveil admin restore {job_id} "
            f"or photoveil admin takedown {job_id}."
        )
        response = (self._client or sns_client()).publish(
            TopicArn=self.topic_arn,
            Subject=f"PhotoVeil: photo {job_id[:8]} withdrawn pending review",
            Message=text,
        )
        return str(response["MessageId"])
