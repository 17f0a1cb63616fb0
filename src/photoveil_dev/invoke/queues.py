"""The local stack's queues as the checks use them: the message about one object, received as an event
source mapping would, and the messages the checks' own seeds caused, drained so that none is left to cycle
towards a dead-letter queue on `make run`'s stack."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

RECEIVE_WAIT_S = 30
DRAIN_ROUNDS = 20  # receives of up to 10 messages: more than the checks ever leave


def object_keys(body: str) -> list[tuple[str, str]]:
    """(bucket, key) of the objects an S3 event message names, also inside SNS's envelope (keys decoded:
    S3 sends them URL-encoded)."""
    try:
        event = json.loads(body)
        if event.get("Type") == "Notification":
            event = json.loads(event["Message"])
        return [
            (record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"]))
            for record in event.get("Records", [])
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def _receive(sqs: Any, queue_url: str, wait_s: int) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_s,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])


def _release(sqs: Any, queue_url: str, held: list[dict[str, Any]]) -> None:
    """Make HELD visible again, each received once more than before: not once a second."""
    for message in held:
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def receive(
    sqs: Any, queue_url: str, wanted: Callable[[dict[str, Any]], bool], drained: Callable[[str], bool]
) -> dict[str, Any]:
    """The first message WANTED takes, as the event source mapping receives it. Messages DRAINED says are
    the checks' own are deleted; others are held until then, and released."""
    deadline, held = time.monotonic() + RECEIVE_WAIT_S, []
    try:
        while time.monotonic() < deadline:
            for message in _receive(sqs, queue_url, wait_s=1):
                if wanted(message):
                    return message
                if drained(message["Body"]):
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    held.append(message)
    finally:
        _release(sqs, queue_url, held)
    raise AssertionError(f"no message about it on {queue_url} in {RECEIVE_WAIT_S} s")


def drain(sqs: Any, queue_url: str, drained: Callable[[str], bool]) -> int:
    """Delete every message on QUEUE_URL that DRAINED says is the checks' own; how many."""
    deleted, held = 0, []
    try:
        for _ in range(DRAIN_ROUNDS):
            received = _receive(sqs, queue_url, wait_s=0)
            if not received:
                break
            for message in received:
                if drained(message["Body"]):
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    deleted += 1
                else:
                    held.append(message)
    finally:
        _release(sqs, queue_url, held)
    return deleted


def about(objects: set[tuple[str, str]]) -> Callable[[str], bool]:
    """Whether a message body names one of OBJECTS ((bucket, key) pairs), or is S3's s3:TestEvent (the
    stack's start sends one to each queue; an event source mapping's function only acknowledges it, and
    left to `make run WORKERS=0`'s queues it would be received until it reached the dead-letter queue)."""
    return lambda body: s3_test_event(body) or any(named in objects for named in object_keys(body))


def s3_test_event(body: str) -> bool:
    try:
        return json.loads(body).get("Event") == "s3:TestEvent"
    except (ValueError, AttributeError):
        return False
