"""The event source mapping stand-in: workers that turn SQS messages into Lambda SQS batch events.

Each worker long-polls the queue with the template's batch size, invokes the function's real handler
with a real-shaped event and a Lambda context, and then does what Lambda does with the result: delete
every message not listed in ``batchItemFailures``; delete nothing when the invocation fails (exception,
unparseable response), so those messages reappear after the visibility timeout and, after
maxReceiveCount receives, moto's redrive policy moves them to the DLQ.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import BotoCoreError, ClientError

from photoveil.local.account import REGION
from photoveil.local.events import failed_message_ids, sqs_batch_event
from photoveil.local.faults import SimulatedCrash
from photoveil.local.functions import LocalFunction
from photoveil.local.specs import SqsSource

log = logging.getLogger("photoveil.local")

JobReporter = Callable[[str, float], None]


def job_ids_in(body: str) -> list[str]:
    """Job ids named by an S3 event message body (keys uploads/{jobId}); [] for s3:TestEvent."""
    try:
        event = json.loads(body)
    except ValueError:
        return []
    ids = []
    for record in event.get("Records") or [] if isinstance(event, dict) else []:
        key = unquote_plus(((record.get("s3") or {}).get("object") or {}).get("key", ""))
        ids.append(key.rsplit("/", 1)[-1])
    return ids


class Poller:
    """N worker threads polling one queue and invoking one function, as its event source mapping does."""

    def __init__(
        self,
        *,
        sqs: Any,
        queue_url: str,
        source: SqsSource,
        function: LocalFunction,
        workers: int,
        on_job_done: JobReporter | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.source = source
        self.function = function
        self.on_job_done = on_job_done
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"worker-{i + 1}", daemon=True) for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop polling; wait for in-flight invocations up to the function's timeout (the rest retries)."""
        self._stop.set()
        deadline = time.monotonic() + self.function.spec.timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))

    def _receive_batch(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.source.batching_window_s
        while not self._stop.is_set() and len(messages) < self.source.batch_size:
            # Short long-polls keep Ctrl-C responsive; SQS returns at most 10 per call.
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.source.batch_size - len(messages)),
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(got)
            if messages and (not got or time.monotonic() >= deadline):
                break
        return messages

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._receive_batch()
            except Exception as exc:  # the emulator going away at shutdown, or a hiccup: poll again
                if not self._stop.is_set():
                    log.warning("poll failed: %s", exc)
                    time.sleep(1)
                continue
            if messages:
                self._invoke(messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        jobs = {m["MessageId"]: job_ids_in(m["Body"]) for m in messages}
        for m in messages:
            for job in jobs[m["MessageId"]]:
                receives = m.get("Attributes", {}).get("ApproximateReceiveCount", "?")
                log.info(
                    "job %s: received by %s (receive #%s)", job, threading.current_thread().name, receives
                )
        event = sqs_batch_event(messages, queue_arn=self.source.queue_arn, region=REGION)
        started = time.monotonic()
        try:
            result = self.function.invoke(event)
        except (Exception, SimulatedCrash) as exc:
            # An invocation error: Lambda deletes nothing; every message retries after the visibility timeout.
            log.warning(
                "%s invocation failed (%s: %s): %d message(s) will retry after the visibility timeout",
                self.function.name,
                type(exc).__name__,
                exc,
                len(messages),
            )
            return
        failed = failed_message_ids(result)
        if failed is None:
            log.warning(
                "%s returned an invalid partial batch response %r: the whole batch retries",
                self.function.name,
                result,
            )
            return
        self._delete([m for m in messages if m["MessageId"] not in failed])
        for m in messages:
            for job in jobs[m["MessageId"]]:
                if m["MessageId"] in failed:
                    log.info("job %s: reported as failed by the handler: will retry", job)
                elif self.on_job_done:
                    self.on_job_done(job, time.monotonic() - started)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            try:
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (BotoCoreError, ClientError) as exc:  # e.g. the role may not sqs:DeleteMessage
                log.warning("%d message(s) not deleted (%s): they will be received again", len(chunk), exc)
