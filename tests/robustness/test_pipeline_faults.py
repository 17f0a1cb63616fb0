"""The whole product under bad input and faults: the corpus and injected failures through `photoveil local`.

One local stack for the folder (conftest.py: real handlers, moto over HTTP, CenterFace in-process) with
``--detector both``, so every photo also goes through a fake Rekognition (a real HTTP server that can
throttle or fail), a 5 s visibility timeout (a failed photo is retried quickly) and E's switchable fault
layer (``/__faults``: errors or simulated crashes in the handlers' own AWS calls; no test-only code in
the handlers).

For every case: the photo ends ``done`` exactly once, or ``failed`` with its stable code, or waits in the
DLQ (shown failed, ``not_finished``, once its retries are over) until a redrive completes it; nothing is
ever published unblurred; never two emails; the original is always deleted; and the worker stays healthy.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import corpus
import cv2
import numpy as np
import pytest
from localstack import FakeRekognition, RunningStack

from conftest import VISIBILITY_TIMEOUT_S, assert_clean_jpeg

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIDE = 256  # the astronaut downscaled: CenterFace still finds the face and each photo costs ~1/3
# The face in the 256 px astronaut: rows, columns well inside CenterFace's box (~x 91-135, y 32-89).
FACE = (slice(40, 85), slice(95, 130))


@pytest.fixture(scope="module")
def astronaut_small(astronaut_path: Path) -> np.ndarray:
    pixels = cv2.imread(str(astronaut_path))
    return cv2.resize(pixels, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def astronaut_jpeg(astronaut_small: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", astronaut_small, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


@pytest.fixture
def quiet(stack: RunningStack, rekognition: FakeRekognition) -> Iterator[RunningStack]:
    """An idle stack with no fault armed, before and after the test (faults are global to the workers)."""
    stack.clear_faults()
    rekognition.failures.clear()
    settle(stack)
    yield stack
    stack.clear_faults()
    rekognition.failures.clear()


def settle(stack: RunningStack, timeout_s: float = 30) -> None:
    """Wait until the queue is empty (every invocation finished: emails sent, messages deleted)."""
    deadline = time.monotonic() + timeout_s
    while stack.queue_depths()["queue"]:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"queue not empty after {timeout_s} s: {stack.queue_depths()}\n{stack.log_tail()}"
            )
        time.sleep(0.2)


def sharpness(jpeg_or_pixels: bytes | np.ndarray) -> float:
    pixels = jpeg_or_pixels
    if isinstance(pixels, bytes):
        pixels = cv2.imdecode(np.frombuffer(pixels, np.uint8), cv2.IMREAD_COLOR)
    grey = cv2.cvtColor(pixels[FACE], cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def assert_done_and_blurred(stack: RunningStack, job_id: str, original: bytes) -> None:
    status = stack.status(job_id)
    assert status["status"] == "done", status
    assert status["faces"] >= 1, status
    photo = stack.published(job_id)
    assert photo is not None, "done, but nothing published"
    assert_clean_jpeg(photo)
    assert sharpness(photo) < 0.25 * sharpness(original), "the published face is not blurred"
    assert not stack.upload_exists(f"uploads/{job_id}"), "the original was kept"


def s3_event(stack: RunningStack, job_id: str, size: int) -> str:
    """The S3 ObjectCreated notification body S3 (and moto) put on the queue for uploads/{jobId}."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "eventName": "ObjectCreated:Post",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": stack.state()["uploadsBucket"]},
                        "object": {"key": f"uploads/{job_id}", "size": size},
                    },
                }
            ]
        }
    )


# --------------------------------------------------------------------------- the corpus

# The whole corpus goes through the pipeline (issue 5 asks for >= 40 cases end to end);
# ROBUSTNESS_QUICK=1 sends only this subset, which still has every stable code and kind of valid image.
PIPELINE_SUBSET = {
    "zero_bytes",
    "text_as_jpg",
    "svg_as_jpg",
    "pdf_as_jpg",
    "zip_as_jpg",
    "gif_animated",
    "tiff_as_jpg",
    "jpeg_truncated_half",
    "png_truncated_half",
    "webp_truncated_half",
    "heic_truncated_half",
    "png_bomb_60000x60000",
    "jpeg_sof_65000x65000",
    "webp_16384x16384",
    "webp_animated",
    "png_apng",
    "png_1x1",
    "jpeg_15x15",
    "over_byte_limit",
    "jpeg_16x16",
    "jpeg_baseline",
    "jpeg_cmyk",
    "png_rgb16",
    "png_rgba",
    "heic",
    "webp_lossy",
    "jpeg_plus_zip_polyglot",
    "jpeg_html_comment",
    "jpeg_huge_exif_junk",
    "jpeg_orientation_6",
}


def test_the_corpus_through_the_local_pipeline(
    quiet: RunningStack, astronaut_small: np.ndarray, astronaut_jpeg: bytes
) -> None:
    from PIL import Image

    stack = quiet
    cases = corpus.build_corpus(Image.fromarray(cv2.cvtColor(astronaut_small, cv2.COLOR_BGR2RGB)))
    if os.environ.get("ROBUSTNESS_QUICK"):
        cases = [case for case in cases if case.name in PIPELINE_SUBSET]
        assert len(cases) == len(PIPELINE_SUBSET)
    jobs: dict[str, corpus.Case] = {}
    for n, case in enumerate(cases):
        # The API only presigns allowed types and sizes; a lying client then sends whatever it likes.
        claimed = case.content_type if case.content_type in corpus.ALLOWED else corpus.JPEG
        declared = min(max(len(case.data), 1), 1_000_000)
        jobs[
            stack.upload(
                case.data,
                claimed,
                filename=case.filename,
                declared_size=declared,
                email=f"corpus{n}@example.com",
            )
        ] = case
    results = stack.wait_all(list(jobs), timeout_s=180)
    settle(stack)

    wrong = {
        case.name: (case.expected, (r.get("error") or {}).get("code", r["status"]))
        for job_id, case in jobs.items()
        for r in [results[job_id]]
        if (r["status"] == "done") != (case.expected == corpus.OK)
        or (case.expected != corpus.OK and r["error"]["code"] != case.expected)
    }
    assert not wrong, f"expected vs got: {wrong}"

    for n, (job_id, case) in enumerate(jobs.items()):
        assert not stack.upload_exists(f"uploads/{job_id}"), f"{case.name}: the original was kept"
        photo = stack.published(job_id)
        if case.expected == corpus.OK:
            assert photo is not None, case.name
            assert_clean_jpeg(photo)
            size = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR).shape[1::-1]
            assert tuple(size) == case.size, case.name
            assert stack.emails_to(f"corpus{n}@example.com") == 1, case.name
        else:
            assert photo is None, f"{case.name}: refused, yet something was published"
            assert results[job_id]["error"]["message"], case.name
            assert stack.emails_to(f"corpus{n}@example.com") == 0, case.name
    # The photos with the astronaut's face at full size were really blurred where the face is.
    for job_id, case in jobs.items():
        if case.name in ("jpeg_baseline", "png_rgb", "webp_lossy", "heic", "jpeg_cmyk", "png_rgb16"):
            assert sharpness(stack.published(job_id)) < 0.25 * sharpness(astronaut_jpeg), case.name
    assert stack.queue_depths() == {"queue": 0, "dlq": 0}, "bad input must be acknowledged, not retried"
    # The worker is still healthy: a good photo after all the bad ones completes.
    job_id = stack.upload(astronaut_jpeg)
    stack.wait(job_id)
    assert_done_and_blurred(stack, job_id, astronaut_jpeg)


def _full_size_photos(stack: RunningStack) -> int:
    """Published photos (p/{jobId}[-{version}].jpg) in the blurred bucket. Not its variants
    (p/{jobId}/{size}.jpeg): those of an earlier test's photos may still be arriving (settle waits for
    the blur queue only), and an odd key that got published would show as a photo first."""
    blurred = stack.state()["blurredBucket"]
    pages = stack.client("s3").get_paginator("list_objects_v2").paginate(Bucket=blurred, Prefix="p/")
    return sum(obj["Key"].endswith(".jpg") for page in pages for obj in page.get("Contents", []))


def test_odd_keys_are_deleted_and_never_published(quiet: RunningStack, astronaut_jpeg: bytes) -> None:
    """A client that ignores the policy and writes elsewhere under uploads/: removed, never blurred."""
    stack = quiet
    before = _full_size_photos(stack)
    job = stack.presign("image/jpeg", len(astronaut_jpeg))
    keys = [case.key for case in corpus.odd_keys(job["jobId"])]
    for key in keys:
        stack.post_form(job["upload"], astronaut_jpeg, "x.jpg", "image/jpeg", key=key)
    deadline = time.monotonic() + 30
    while any(stack.upload_exists(key) for key in keys):
        assert time.monotonic() < deadline, [k for k in keys if stack.upload_exists(k)]
        time.sleep(0.2)
    settle(stack)
    assert _full_size_photos(stack) == before
    assert stack.status(job["jobId"])["status"] == "awaiting_upload"  # its own key was never written
    assert stack.queue_depths() == {"queue": 0, "dlq": 0}


# --------------------------------------------------------------------------- faults

# (operation, kind, count, emails expected). A failed or crashed email is not retried: at most once.
HANDLER_FAULTS = [
    ("s3.GetObject", "error", 1, 1),
    ("s3.GetObject", "crash", 1, 1),
    ("s3.PutObject", "crash", 1, 1),
    ("s3.DeleteObject", "error", 1, 1),
    ("dynamodb.UpdateItem", "error", 1, 1),
    ("dynamodb.UpdateItem", "crash", 1, 1),
    ("rekognition.DetectFaces", "error", 2, 1),
    ("ses.SendEmail", "error", 1, 0),
    ("ses.SendEmail", "crash", 1, 0),
]


@pytest.mark.parametrize(
    ("operation", "kind", "count", "emails"),
    HANDLER_FAULTS,
    ids=[
        f"{p.values[0]}-{p.values[1]}" if hasattr(p, "values") else f"{p[0]}-{p[1]}" for p in HANDLER_FAULTS
    ],
)
def test_a_fault_in_the_worker_is_survived(
    quiet: RunningStack, astronaut_jpeg: bytes, operation: str, kind: str, count: int, emails: int
) -> None:
    stack = quiet
    address = f"{operation.replace('.', '-')}-{kind}@example.com".lower()
    job = stack.presign("image/jpeg", len(astronaut_jpeg), address)
    # Armed once the API is done: its quota counters are UpdateItems too, and the fault is the worker's.
    stack.arm(operation, kind, count)
    stack.post_form(job["upload"], astronaut_jpeg, "photo.jpg", "image/jpeg")
    job_id = job["jobId"]
    status = stack.wait(job_id)
    settle(stack)
    fired = [f for f in stack.faults()["fired"] if f["operation"] == operation]
    assert len(fired) >= count, f"the fault never fired: {stack.faults()}"
    assert status["status"] == "done", status
    assert_done_and_blurred(stack, job_id, astronaut_jpeg)
    assert stack.emails_to(address) == emails
    assert stack.queue_depths() == {"queue": 0, "dlq": 0}


@pytest.mark.parametrize(
    ("error", "status", "count"),
    [
        ("ThrottlingException", 400, 3),  # retried with backoff inside the detector
        (
            "AccessDeniedException",
            400,
            1,
        ),  # not retryable in the detector: DetectorError, the message retries
        ("InternalServerError", 500, 8),  # outlasts the detector's own retries: the message retries
    ],
)
def test_rekognition_errors_never_publish_unblurred(
    quiet: RunningStack,
    rekognition: FakeRekognition,
    astronaut_jpeg: bytes,
    error: str,
    status: int,
    count: int,
) -> None:
    stack = quiet
    address = f"rekognition-{error.lower()}@example.com"
    calls = rekognition.calls
    rekognition.fail_next(count, error, status)
    job_id = stack.upload(astronaut_jpeg, email=address)
    stack.wait(job_id, timeout_s=90)
    settle(stack)
    assert rekognition.pending_failures() == 0 and rekognition.calls - calls > count
    assert_done_and_blurred(stack, job_id, astronaut_jpeg)
    assert stack.emails_to(address) == 1


def test_a_crash_mid_batch_loses_no_photo_of_the_batch(quiet: RunningStack, astronaut_jpeg: bytes) -> None:
    stack = quiet
    stack.arm("s3.PutObject", "crash", 1)
    addresses = [f"batch{i}@example.com" for i in range(4)]
    jobs = [stack.upload(astronaut_jpeg, email=address) for address in addresses]
    stack.wait_all(jobs)
    settle(stack)
    assert stack.faults()["fired"][-1] == {"operation": "s3.PutObject", "kind": "crash"}
    for job_id, address in zip(jobs, addresses, strict=True):
        assert_done_and_blurred(stack, job_id, astronaut_jpeg)
        assert stack.emails_to(address) == 1


def test_a_persistent_fault_parks_the_photo_in_the_dlq_and_redrive_completes_it(
    quiet: RunningStack, astronaut_jpeg: bytes
) -> None:
    stack = quiet
    stack.arm("s3.GetObject", "error", 1000)
    job_id = stack.upload(astronaut_jpeg, email="dlq@example.com")
    deadline = time.monotonic() + 90
    while stack.queue_depths()["dlq"] == 0:
        assert time.monotonic() < deadline, (
            f"never reached the DLQ: {stack.queue_depths()}\n{stack.log_tail()}"
        )
        time.sleep(0.5)
    # The page stops waiting: once the last retry's visibility timeout has passed, the job shows failed.
    status = stack.wait(job_id, timeout_s=VISIBILITY_TIMEOUT_S * 3)
    assert status["status"] == "failed" and status["error"]["code"] == "not_finished", status
    assert stack.published(job_id) is None
    assert stack.upload_exists(f"uploads/{job_id}"), "the original must wait for the redrive"
    assert stack.emails_to("dlq@example.com") == 0

    stack.clear_faults()
    redriven = stack.redrive()
    assert redriven.returncode == 0, redriven.stderr
    deadline = time.monotonic() + 60
    while (status := stack.status(job_id))["status"] != "done":  # failed (shown) until the retry starts
        assert time.monotonic() < deadline, f"the redriven photo never finished: {status}\n{stack.log_tail()}"
        time.sleep(0.2)
    settle(stack)
    assert_done_and_blurred(stack, job_id, astronaut_jpeg)
    assert stack.emails_to("dlq@example.com") == 1
    assert stack.queue_depths() == {"queue": 0, "dlq": 0}


def test_duplicate_events_change_nothing(quiet: RunningStack, astronaut_jpeg: bytes) -> None:
    stack = quiet
    sqs, queue = stack.client("sqs"), stack.state()["queueUrl"]
    # 1. A duplicate of a finished job's event (S3 is at-least-once), twice, long after it finished.
    job_id = stack.upload(astronaut_jpeg, email="dup-late@example.com")
    stack.wait(job_id)
    settle(stack)
    photo = stack.published(job_id)
    for _ in range(2):
        sqs.send_message(QueueUrl=queue, MessageBody=s3_event(stack, job_id, len(astronaut_jpeg)))
    settle(stack)
    assert stack.published(job_id) == photo
    assert stack.status(job_id)["status"] == "done"
    assert stack.emails_to("dup-late@example.com") == 1

    # 2. Duplicates racing the first event: three copies in flight at once, two workers.
    job = stack.presign("image/jpeg", len(astronaut_jpeg), "dup-race@example.com")
    stack.post_form(job["upload"], astronaut_jpeg, "photo.jpg", "image/jpeg")
    for _ in range(2):
        sqs.send_message(QueueUrl=queue, MessageBody=s3_event(stack, job["jobId"], len(astronaut_jpeg)))
    stack.wait(job["jobId"])
    settle(stack)
    assert_done_and_blurred(stack, job["jobId"], astronaut_jpeg)
    assert stack.emails_to("dup-race@example.com") == 1
    assert stack.queue_depths() == {"queue": 0, "dlq": 0}


def test_events_out_of_order(quiet: RunningStack, astronaut_jpeg: bytes) -> None:
    """Old events re-delivered in reverse order, interleaved with a new upload: each job ends once."""
    stack = quiet
    sqs, queue = stack.client("sqs"), stack.state()["queueUrl"]
    old = [stack.upload(astronaut_jpeg, email=f"order{i}@example.com") for i in range(3)]
    stack.wait_all(old)
    settle(stack)
    new = stack.presign("image/jpeg", len(astronaut_jpeg), "order-new@example.com")
    for job_id in reversed(old):
        sqs.send_message(QueueUrl=queue, MessageBody=s3_event(stack, job_id, len(astronaut_jpeg)))
        if job_id == old[1]:
            stack.post_form(new["upload"], astronaut_jpeg, "photo.jpg", "image/jpeg")
    stack.wait(new["jobId"])
    settle(stack)
    for i, job_id in enumerate(old):
        assert stack.status(job_id)["status"] == "done"
        assert stack.emails_to(f"order{i}@example.com") == 1
    assert_done_and_blurred(stack, new["jobId"], astronaut_jpeg)
    assert stack.emails_to("order-new@example.com") == 1
