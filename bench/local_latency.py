"""Local stack figures: upload-to-visible latency for a 12 MP photo, and sustained photos per minute.

    .venv/bin/python bench/local_latency.py [--photos 20] [--burst 30] [--workers 2] [--url URL]

Starts `photoveil local` on free ports (or uses --url), then:
1. latency: uploads --photos photos one at a time, each timed from the end of its upload (the multipart
   POST to the emulator returned) to its blurred copy being served at /p/{jobId}.jpg; prints median and
   p95 (and the same from the POST /uploads request, i.e. including presign + upload);
2. throughput: uploads --burst photos back to back and times first upload start to last photo visible.
The photo is tests/.images/astronaut.png scaled to 4000x3000 (12 MP) and saved as a JPEG (quality 90).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import requests

from photoveil_dev.launcher import LaunchedStack, LaunchError, launch

REPO = Path(__file__).resolve().parent.parent
POLL_S = 0.05


def twelve_mp_jpeg() -> bytes:
    source = cv2.imread(str(REPO / "tests" / ".images" / "astronaut.png"), cv2.IMREAD_COLOR)
    if source is None:
        sys.exit("tests/.images/astronaut.png is missing: run `make install`")
    ok, data = cv2.imencode(
        ".jpg",
        cv2.resize(source, (4000, 3000), interpolation=cv2.INTER_CUBIC),
        [cv2.IMWRITE_JPEG_QUALITY, 90],
    )
    assert ok
    return data.tobytes()


def start_stack(workers: int, data_dir: Path) -> LaunchedStack:
    try:
        return launch(
            ["--workers", str(workers)],
            data_dir=data_dir,
            log=data_dir / "stack.log",
            timeout_s=120,
            cwd=REPO,
        )
    except LaunchError as error:
        sys.exit(str(error))


def upload(session: requests.Session, url: str, data: bytes) -> tuple[str, float, float]:
    """(jobId, time POST /uploads was sent, time the upload finished)."""
    started = time.perf_counter()
    job = session.post(f"{url}/uploads", json={"contentType": "image/jpeg", "size": len(data)}, timeout=30)
    job.raise_for_status()
    body = job.json()
    form = body["upload"]
    posted = session.post(
        form["url"], data=form["fields"], files={"file": ("photo.jpg", data, "image/jpeg")}, timeout=60
    )
    posted.raise_for_status()
    return body["jobId"], started, time.perf_counter()


def wait_visible(session: requests.Session, url: str, job_id: str, timeout_s: float = 120) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if session.head(f"{url}/p/{job_id}.jpg", timeout=30).status_code == 200:
            return time.perf_counter()
        time.sleep(POLL_S)
    raise TimeoutError(f"job {job_id} not visible after {timeout_s} s")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=20, help="sequential photos for latency (default 20)")
    parser.add_argument("--burst", type=int, default=30, help="photos for the throughput run (default 30)")
    parser.add_argument("--workers", type=int, default=2, help="worker threads of the stack (default 2)")
    parser.add_argument("--url", help="use a running local stack instead of starting one")
    args = parser.parse_args()

    data = twelve_mp_jpeg()
    print(f"photo: 4000x3000 JPEG, {len(data) / 1e6:.1f} MB; {os.cpu_count()} CPU(s); workers {args.workers}")
    stack = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.url:
            url = args.url.rstrip("/")
        else:
            stack = start_stack(args.workers, Path(tmp))
            url = stack.url
        try:
            session = requests.Session()
            # Warm-up: the first photo loads the model in each worker; not a steady-state figure.
            for _ in range(args.workers):
                job, _, _ = upload(session, url, data)
                wait_visible(session, url, job)

            from_upload, from_request = [], []
            for _ in range(args.photos):
                job, requested, uploaded = upload(session, url, data)
                visible = wait_visible(session, url, job)
                from_upload.append(visible - uploaded)
                from_request.append(visible - requested)
            print(
                f"latency over {args.photos} photos, upload finished -> blurred photo served at /p/: "
                f"median {statistics.median(from_upload):.2f} s, p95 {p95(from_upload):.2f} s "
                f"(max {max(from_upload):.2f} s)"
            )
            print(
                f"  including POST /uploads + the upload: median {statistics.median(from_request):.2f} s,"
                f" p95 {p95(from_request):.2f} s"
            )

            jobs: list[str] = []
            start = time.perf_counter()
            uploader = threading.Thread(
                target=lambda: jobs.extend(
                    upload(requests.Session(), url, data)[0] for _ in range(args.burst)
                )
            )
            uploader.start()
            uploader.join()
            last = max(wait_visible(session, url, job, timeout_s=600) for job in jobs)
            elapsed = last - start
            print(
                f"throughput: {args.burst} photos uploaded back to back, all visible after {elapsed:.1f} s "
                f"= {args.burst / elapsed * 60:.0f} photos/min with {args.workers} worker(s)"
            )
        finally:
            if stack is not None:
                stack.stop(120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
