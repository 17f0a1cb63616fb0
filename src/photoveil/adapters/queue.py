"""The blur queue, as the API writes to it: an owner's edit is a message the worker picks up there."""

from __future__ import annotations

import json
from typing import Any

from photoveil.adapters.clients import sqs_client

EDIT_MESSAGE = "edit"


def edit_message(job_id: str, number: int) -> str:
    return json.dumps({"photoveil": EDIT_MESSAGE, "jobId": job_id, "edit": number}, separators=(",", ":"))


class EditQueue:
    """Sends edit requests to BlurQueue (the worker tells them from S3 events by their ``photoveil`` key)."""

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client or sqs_client()

    def send_edit(self, job_id: str, number: int) -> None:
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=edit_message(job_id, number))
