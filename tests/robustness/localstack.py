"""Drive `photoveil local` from tests: start it in a subprocess, upload like the browser, poll, inspect.

Also a fake Rekognition: a real HTTP server speaking DetectFaces' JSON wire protocol (moto has no
DetectFaces), which can be told to throttle or fail the next N calls. It finds no faces itself; with
``--detector both`` the in-process CenterFace still does the real detection.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from photoveil_dev.launcher import LaunchedStack, launch, photoveil_script

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90
JOB_TIMEOUT_S = 60  # generous for a shared 2-core machine: a liveness bound, not a speed assertion
FINISHED = ("done", "failed")


class RunningStack(LaunchedStack):
    """The launcher's stack plus the browser's flow, what the stack holds and the fault layer."""

    # --- the browser's flow ------------------------------------------------------------------------
    def presign(self, content_type: str, size: int, email: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"contentType": content_type, "size": size}
        if email:
            body["email"] = email
        created = requests.post(f"{self.url}/uploads", json=body, timeout=10)
        assert created.status_code == 201, created.text
        return created.json()

    def post_form(
        self, upload: dict[str, Any], data: bytes, filename: str, content_type: str, key: str | None = None
    ) -> None:
        """The multipart POST to the presigned URL (``key``: a policy-ignoring client's own key)."""
        fields = dict(upload["fields"])
        if key is not None:
            fields["key"] = key
        posted = requests.post(
            upload["url"], data=fields, files={"file": (filename, data, content_type)}, timeout=60
        )
        assert posted.status_code in (200, 201, 204), posted.text[:500]

    def upload(
        self,
        data: bytes,
        content_type: str = "image/jpeg",
        *,
        filename: str = "photo.jpg",
        email: str | None = None,
        declared_size: int | None = None,
    ) -> str:
        job = self.presign(content_type, declared_size or len(data), email)
        self.post_form(job["upload"], data, filename, content_type)
        return job["jobId"]

    def status(self, job_id: str) -> dict[str, Any]:
        return requests.get(f"{self.url}/jobs/{job_id}", timeout=10).json()

    def wait(self, job_id: str, timeout_s: float = JOB_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status(job_id)
            if status.get("status") in FINISHED:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {status} after {timeout_s} s:\n{self.log_tail()}")
            time.sleep(0.15)

    def wait_all(self, job_ids: list[str], timeout_s: float = JOB_TIMEOUT_S) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        results: dict[str, dict[str, Any]] = {}
        while len(results) < len(job_ids):
            for job_id in job_ids:
                if job_id not in results:
                    status = self.status(job_id)
                    if status.get("status") in FINISHED:
                        results[job_id] = status
            if len(results) < len(job_ids):
                if time.monotonic() > deadline:
                    pending = [j for j in job_ids if j not in results]
                    raise AssertionError(
                        f"{len(pending)} job(s) unfinished after {timeout_s} s:\n{self.log_tail()}"
                    )
                time.sleep(0.2)
        return results

    # --- what the stack holds ----------------------------------------------------------------------
    def published(self, job_id: str) -> bytes | None:
        """The public photo at /p/{jobId}.jpg, or None if there is none."""
        response = requests.get(f"{self.url}/p/{job_id}.jpg", timeout=10)
        return response.content if response.status_code == 200 else None

    def upload_exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client("s3").head_object(Bucket=self.state()["uploadsBucket"], Key=key)
        except ClientError:
            return False
        return True

    def emails(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/outbox.json", timeout=10).json()["emails"]

    def emails_to(self, address: str) -> int:
        return sum(address in map(str, email["to"]) for email in self.emails())

    def queue_depths(self) -> dict[str, int]:
        """Visible + in-flight messages of the queue and the DLQ."""
        sqs, state = self.client("sqs"), self.state()
        out = {}
        for name, url in (("queue", state["queueUrl"]), ("dlq", state["dlqUrl"])):
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            out[name] = int(attrs["ApproximateNumberOfMessages"]) + int(
                attrs["ApproximateNumberOfMessagesNotVisible"]
            )
        return out

    # --- the fault layer (E's /__faults) -------------------------------------------------------------
    def arm(self, operation: str, kind: str = "error", count: int = 1) -> None:
        armed = requests.post(
            f"{self.url}/__faults", json={"operation": operation, "kind": kind, "count": count}, timeout=10
        )
        assert armed.status_code == 200, armed.text

    def faults(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/__faults", timeout=10).json()

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/__faults", timeout=10)

    def redrive(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*photoveil(), "local", "redrive", "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )


def photoveil() -> list[str]:
    return [str(photoveil_script())]


def start_stack(
    args: list[str], *, log: Path, data_dir: Path, env: dict[str, str] | None = None
) -> RunningStack:
    """Start `photoveil local ARGS` on free ports and wait until it serves /config.json."""
    return launch(
        args,
        data_dir=data_dir,
        log=log,
        timeout_s=START_TIMEOUT_S,
        env={"POWERTOOLS_LOG_LEVEL": "INFO", **(env or {})},
        cwd=REPO,
        stack_type=RunningStack,
    )


# --------------------------------------------------------------------------- fake Rekognition


@dataclass
class FakeRekognition:
    """DetectFaces over HTTP: answers "no faces", or the next N calls with an error of our choosing."""

    port: int = 0
    calls: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)  # (status, __type) for the next calls
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, count: int, error: str = "ThrottlingException", status: int = 400) -> None:
        with self._lock:
            self.failures.extend([(status, error)] * count)

    def pending_failures(self) -> int:
        with self._lock:
            return len(self.failures)

    def start(self) -> FakeRekognition:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                with fake._lock:
                    fake.calls += 1
                    failure = fake.failures.pop(0) if fake.failures else None
                if failure is not None:
                    status, error = failure
                    body = {"__type": error, "message": f"fake Rekognition: {error}"}
                elif target.endswith(".DetectFaces"):
                    status, body = 200, {"FaceDetails": []}
                else:
                    status, body = 400, {"__type": "InvalidRequestException", "message": target}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="fake-rekognition", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
