"""`make load`: push a burst of photos through the local stack and account for every one of them.

Starts `photoveil local` (moto, gateway, N blur workers) in a subprocess, uploads PHOTOS photos the way
the browser does (POST /uploads, then the multipart POST to the emulator) from CLIENTS concurrent clients
(a burst far above what the workers process), then watches the jobs table until every photo is done or
failed, or sits in the DLQ, or the time limit is reached. It prints:

    photos in, done, failed, in the DLQ, unaccounted (lost: must be 0)
    connection errors (refused or reset while uploading: must be 0)
    end-to-end latency p50/p95/p99 (upload finished -> job seen finished), throughput
    peak memory of the stack process and its growth per worker

Photos: the astronaut (a real face) at SIDE px with variations (flips, crops, brightness, JPEG quality),
plus one bad file every BAD_EVERY photos (text, truncated JPEG, PNG bomb) that must end ``failed``.
Bounded: it stops by itself after MAX_SECONDS whatever happens, and always stops the stack.

    python bench/load.py [--photos 1000] [--clients 32] [--workers 3] [--side 320] [--json]
    make load N=1000 CLIENTS=32
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests

from photoveil_dev.launcher import LaunchedStack, LaunchError, launch, raised_limits

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "tests" / ".images" / "astronaut.png"
BAD_KINDS = ("text", "truncated", "bomb")
EXPECTED_BAD_CODES = {"text": "unsupported_format", "truncated": "corrupt_image", "bomb": "image_too_large"}


# --------------------------------------------------------------------------- photos


def good_photos(count: int, side: int, seed: int = 1) -> list[bytes]:
    """``count`` distinct JPEGs of the astronaut at about ``side`` px: flips, crops, light, quality."""
    if not ASTRONAUT.exists():
        raise SystemExit(f"{ASTRONAUT} is missing: run `make install`")
    base = cv2.imread(str(ASTRONAUT))
    rng = np.random.default_rng(seed)
    photos = []
    for _ in range(count):
        crop = int(rng.integers(0, 64))  # keeps the face (it is in the upper middle)
        img = base[crop // 2 : 512 - crop // 2, crop : 512 - crop // 3]
        if rng.random() < 0.5:
            img = cv2.flip(img, 1)
        img = cv2.convertScaleAbs(img, alpha=float(rng.uniform(0.8, 1.2)), beta=float(rng.uniform(-20, 20)))
        scale = side / max(img.shape[:2])
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        quality = int(rng.integers(70, 95))
        photos.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    return photos


def bad_photo(kind: str, good: bytes) -> bytes:
    if kind == "text":
        return b"this is not a photo\n" * 50
    if kind == "truncated":
        return good[: len(good) // 2]

    # A PNG whose header declares 60000x60000 with a tiny IDAT: must be refused from the header.
    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 60001 * 8))
        + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- the stack


Stack = LaunchedStack


def start_stack(workers: int, data_dir: Path, log: Path, visibility_timeout: int | None) -> Stack:
    # Every upload comes from 127.0.0.1: one client to the quotas, so they are raised for the burst.
    args = ["--workers", str(workers), *raised_limits()]
    if visibility_timeout:
        args += ["--visibility-timeout", str(visibility_timeout)]
    try:
        return launch(
            args,
            data_dir=data_dir,
            log=log,
            timeout_s=90,
            env={"POWERTOOLS_LOG_LEVEL": "WARNING"},
            cwd=REPO,
        )
    except LaunchError as error:
        raise SystemExit(str(error)) from None


def stop_stack(stack: Stack) -> None:
    stack.stop(60)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in kB (Linux /proc)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0])
    except OSError:
        pass
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class Photo:
    index: int
    data: bytes
    bad: str | None = None  # the kind of bad file, or None
    job_id: str | None = None
    uploaded_at: float | None = None
    finished_at: float | None = None
    status: str | None = None
    error_code: str | None = None
    upload_error: str | None = None
    connection_error: bool = False  # refused or reset: the server did not take the request


@dataclass
class Report:
    photos_in: int = 0
    upload_errors: int = 0
    connection_errors: int = 0
    clients: int = 0
    done: int = 0
    failed: int = 0
    failed_as_expected: int = 0
    in_dlq: int = 0
    unfinished: int = 0
    lost: int = 0
    latency_s: dict[str, float] = field(default_factory=dict)
    throughput_per_min: float = 0.0
    burst_per_min: float = 0.0
    wall_s: float = 0.0
    workers: int = 0
    peak_rss_mb: float = 0.0
    idle_rss_mb: float = 0.0
    peak_growth_per_worker_mb: float = 0.0
    timed_out: bool = False


def upload(session: requests.Session, stack: Stack, photo: Photo) -> None:
    content_type = "image/png" if photo.bad == "bomb" else "image/jpeg"
    try:
        created = session.post(
            f"{stack.url}/uploads", json={"contentType": content_type, "size": len(photo.data)}, timeout=60
        )
        created.raise_for_status()
        job = created.json()
        form = job["upload"]
        posted = session.post(
            form["url"], data=form["fields"], files={"file": ("photo", photo.data, content_type)}, timeout=60
        )
        posted.raise_for_status()
        photo.job_id = job["jobId"]
        photo.uploaded_at = time.monotonic()
    except (requests.RequestException, KeyError, ValueError) as exc:
        photo.upload_error = f"{type(exc).__name__}: {exc}"[:200]
        photo.connection_error = isinstance(exc, requests.ConnectionError)


def watch(stack: Stack, photos: list[Photo], deadline: float) -> bool:
    """Scan the jobs table until every uploaded photo is finished or in the DLQ; False on timeout."""
    dynamodb, sqs, state = stack.client("dynamodb"), stack.client("sqs"), stack.state()
    by_id = {p.job_id: p for p in photos if p.job_id}
    pending = set(by_id)
    while True:
        now = time.monotonic()
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=state["jobsTable"],
            ProjectionExpression="jobId, #s, errorCode",
            ExpressionAttributeNames={"#s": "status"},
        )
        for page in pages:
            for item in page["Items"]:
                job_id = item["jobId"]["S"]
                status = item["status"]["S"]
                if job_id in pending and status in ("done", "failed"):
                    photo = by_id[job_id]
                    photo.status, photo.finished_at = status, now
                    photo.error_code = item.get("errorCode", {}).get("S")
                    pending.discard(job_id)
        if not pending:
            return True
        dlq = _queue_count(sqs, state["dlqUrl"])
        queue = _queue_count(sqs, state["queueUrl"])
        if dlq >= len(pending) and queue == 0:
            return True  # everything unfinished is parked in the DLQ
        if now > deadline:
            return False
        time.sleep(0.5)


def _queue_count(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run(args: argparse.Namespace) -> Report:
    good = good_photos(min(args.photos, 50), args.side)
    photos = []
    for i in range(args.photos):
        bad = (
            BAD_KINDS[(i // args.bad_every) % len(BAD_KINDS)]
            if args.bad_every and i % args.bad_every == 0
            else None
        )
        data = good[i % len(good)]
        photos.append(Photo(i, bad_photo(bad, data) if bad else data, bad))

    started = time.monotonic()
    hard_deadline = started + args.max_seconds
    report = Report(workers=args.workers, clients=args.clients)
    with tempfile.TemporaryDirectory(prefix="photoveil-load-") as tmp:
        log = Path(args.log) if args.log else Path(tmp) / "stack.log"
        stack = start_stack(args.workers, Path(tmp) / "data", log, args.visibility_timeout)
        try:
            time.sleep(1)  # let the workers' first (cold) poll settle before measuring the idle size
            report.idle_rss_mb = memory_kb(stack.proc.pid).get("VmRSS", 0) / 1024
            burst_started = time.monotonic()
            local = threading.local()

            def send(photo: Photo) -> None:
                if time.monotonic() > hard_deadline:
                    photo.upload_error = "time limit reached before upload"
                    return
                if not hasattr(local, "session"):
                    local.session = requests.Session()
                upload(local.session, stack, photo)

            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                list(pool.map(send, photos))
            burst_s = time.monotonic() - burst_started
            uploaded = [p for p in photos if p.job_id]
            if not args.quiet:
                print(
                    f"burst: {len(uploaded)} photos uploaded in {burst_s:.1f} s "
                    f"({len(uploaded) / burst_s * 60:.0f}/min); waiting for the workers...",
                    file=sys.stderr,
                )
            report.timed_out = not watch(stack, uploaded, hard_deadline)
            state = stack.state()
            report.in_dlq = _queue_count(stack.client("sqs"), state["dlqUrl"])
            report.peak_rss_mb = memory_kb(stack.proc.pid).get("VmHWM", 0) / 1024
        finally:
            stop_stack(stack)

    uploaded = [p for p in photos if p.job_id]
    finished = [p for p in uploaded if p.status]
    report.photos_in = len(uploaded)
    report.upload_errors = sum(1 for p in photos if p.upload_error)
    report.connection_errors = sum(1 for p in photos if p.connection_error)
    report.done = sum(1 for p in finished if p.status == "done")
    report.failed = sum(1 for p in finished if p.status == "failed")
    report.failed_as_expected = sum(
        1 for p in finished if p.status == "failed" and p.bad and p.error_code == EXPECTED_BAD_CODES[p.bad]
    )
    report.unfinished = len(uploaded) - len(finished)
    # Unfinished photos are accounted for only if they wait in the DLQ (to be redriven).
    report.lost = max(0, report.unfinished - report.in_dlq)
    latencies = [p.finished_at - p.uploaded_at for p in finished if p.finished_at and p.uploaded_at]
    report.latency_s = {
        name: round(percentile(latencies, q), 2)
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
    }
    last = max((p.finished_at for p in finished if p.finished_at), default=burst_started)
    report.wall_s = round(last - burst_started, 1)
    report.throughput_per_min = round(len(finished) / max(report.wall_s, 1e-9) * 60, 1)
    report.burst_per_min = round(len(uploaded) / max(burst_s, 1e-9) * 60, 1)
    report.peak_growth_per_worker_mb = round(
        max(0.0, report.peak_rss_mb - report.idle_rss_mb) / args.workers, 1
    )
    report.peak_rss_mb = round(report.peak_rss_mb, 1)
    report.idle_rss_mb = round(report.idle_rss_mb, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--side", type=int, default=320, help="long side of the good photos (px)")
    parser.add_argument("--bad-every", type=int, default=50, help="one bad file every N photos (0: none)")
    parser.add_argument(
        "--clients", "--upload-threads", type=int, default=32, help="concurrent upload clients (default 32)"
    )
    parser.add_argument("--max-seconds", type=float, default=1200, help="hard time limit for the whole run")
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=None,
        help="override the queue's visibility timeout (default: the template's)",
    )
    parser.add_argument("--log", default=None, help="keep the stack's log here")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(vars(report)))
    else:
        r = report
        print(
            f"photos in {r.photos_in} (upload errors {r.upload_errors}) | done {r.done} | failed {r.failed} "
            f"({r.failed_as_expected} bad files refused as expected) | in DLQ {r.in_dlq} | "
            f"unfinished {r.unfinished} | LOST {r.lost}"
        )
        print(
            f"connection errors {r.connection_errors} (refused or reset, of {r.upload_errors} upload errors)"
        )
        print(
            f"latency upload->finished: p50 {r.latency_s['p50']} s, p95 {r.latency_s['p95']} s, "
            f"p99 {r.latency_s['p99']} s, max {r.latency_s['max']} s"
        )
        print(
            f"burst {r.burst_per_min:.0f} photos/min in from {r.clients} clients; "
            f"throughput {r.throughput_per_min:.0f} photos/min out "
            f"with {r.workers} workers over {r.wall_s} s"
        )
        print(
            f"memory: stack process (moto + gateway + {r.workers} worker threads) idle {r.idle_rss_mb} MB, "
            f"peak {r.peak_rss_mb} MB, growth {r.peak_growth_per_worker_mb} MB per worker"
        )
        if r.timed_out:
            print("time limit reached before every photo finished", file=sys.stderr)
    ok = report.lost == 0 and report.upload_errors == 0 and not report.timed_out
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
