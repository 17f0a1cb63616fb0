"""SQS as the functions use it besides their event source: the API queues an owner's edit for the worker,
and a consumer can bring a message back sooner than its visibility timeout."""

from __future__ import annotations

import json
from typing import Any

from photoveil.adapters.clients import sqs_client

EDIT_MESSAGE = "edit"
WITHDRAW_MESSAGE = "withdraw"
WITHHOLD_MESSAGE = "withhold"  # reports withdrew a photo: the worker moves it out of p/ (with retries)


def edit_message(job_id: str, number: int) -> str:
    return json.dumps({"photoveil": EDIT_MESSAGE, "jobId": job_id, "edit": number}, separators=(",", ":"))


def withhold_message(job_id: str) -> str:
    return json.dumps({"photoveil": WITHHOLD_MESSAGE, "jobId": job_id}, separators=(",", ":"))


class Messages:
    """What a consumer may do with a message it holds besides letting it fail: bring it back sooner."""

    def __init__(self, client: Any = None) -> None:
        self._client = client or sqs_client()

    def show_again(self, queue_arn: str, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after ``seconds`` instead of the visibility timeout."""
        _, _, _, _, account, name = queue_arn.split(":", 5)
        # The client's own endpoint knows the partition's domain (amazonaws.com.cn, ...) and the region.
        queue_url = f"{self._client.meta.endpoint_url}/{account}/{name}"
        self._client.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


class EditQueue:
    """Sends edit requests to BlurQueue (the worker tells them from S3 events by their ``photoveil`` key)."""

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client or sqs_client()

    def send_edit(self, job_id: str, number: int) -> None:
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=edit_message(job_id, number))

    def send_withdrawal(self, job_id: str, *, delay_s: int) -> None:
        """Ask the worker to finish what the job records to withdraw, in DELAY_S seconds (at most 900)."""
        body = json.dumps({"photoveil": WITHDRAW_MESSAGE, "jobId": job_id}, separators=(",", ":"))
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=body, DelaySeconds=min(delay_s, 900))

    def send_withhold(self, job_id: str) -> None:
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=withhold_message(job_id))
