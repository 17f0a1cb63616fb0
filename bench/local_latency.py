"""Local stack figures for a 12 MP photo: upload to photo, to its variants, an owner's edit, and throughput.

    .venv/bin/python bench/local_latency.py [--photos 20] [--burst 30] [--workers 2] [--url URL]

Starts `photoveil local` on free ports (or uses --url), then:
1. latency: uploads --photos photos one at a time, each timed from the end of its upload (the multipart
   POST to the emulator returned) to its blurred copy being served at /p/{jobId}.jpg, and to its three
   variants being listed by GET /jobs/{jobId}; prints median and p95 (and the photo's from the POST
   /uploads request, i.e. including presign + upload);
2. edits: on each of those photos, POST /jobs/{jobId}/regions (one rectangle) timed to the new version
   being served at its new URL;
3. throughput: uploads --burst photos back to back and times first upload start to last photo visible.
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
from collections.abc import Callable
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


def upload(session: requests.Session, url: str, data: bytes) -> tuple[dict, float, float]:
    """(the POST /uploads body, time it was sent, time the upload finished)."""
    started = time.perf_counter()
    job = session.post(f"{url}/uploads", json={"contentType": "image/jpeg", "size": len(data)}, timeout=30)
    job.raise_for_status()
    body = job.json()
    form = body["upload"]
    posted = session.post(
        form["url"], data=form["fields"], files={"file": ("photo.jpg", data, "image/jpeg")}, timeout=60
    )
    posted.raise_for_status()
    return body, started, time.perf_counter()


def wait_visible(session: requests.Session, url: str, job_id: str, timeout_s: float = 120) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if session.head(f"{url}/p/{job_id}.jpg", timeout=30).status_code == 200:
            return time.perf_counter()
        time.sleep(POLL_S)
    raise TimeoutError(f"job {job_id} not visible after {timeout_s} s")


def wait_status(
    session: requests.Session, job: dict, ready: Callable[[dict], bool], timeout_s: float = 120
) -> float:
    """When GET /jobs/{jobId} first satisfies ``ready``."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if ready(session.get(job["statusUrl"], timeout=30).json()):
            return time.perf_counter()
        time.sleep(POLL_S)
    raise TimeoutError(f"job {job['jobId']} not ready after {timeout_s} s")


def edit(session: requests.Session, url: str, job: dict) -> float:
    """Seconds from asking for one more blurred rectangle to the new version being served."""
    before = session.get(job["statusUrl"], timeout=30).json()["photoUrl"]
    started = time.perf_counter()
    response = session.post(
        f"{url}/jobs/{job['jobId']}/regions",
        json={"regions": [{"x": 0.05, "y": 0.6, "width": 0.3, "height": 0.3}]},
        headers={"Authorization": f"Bearer {job['ownerToken']}"},
        timeout=30,
    )
    response.raise_for_status()
    wait_status(session, job, lambda s: s["status"] == "done" and s.get("photoUrl", before) != before)
    new_url = session.get(job["statusUrl"], timeout=30).json()["photoUrl"]
    while session.head(new_url, timeout=30).status_code != 200:
        time.sleep(POLL_S)
    return time.perf_counter() - started


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s, p95 {p95(values):.2f} s (max {max(values):.2f} s)"


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
                wait_visible(session, url, job["jobId"])

            from_upload, from_request, variants_ready, done_jobs = [], [], [], []
            for _ in range(args.photos):
                job, requested, uploaded = upload(session, url, data)
                visible = wait_visible(session, url, job["jobId"])
                ready = wait_status(session, job, lambda s: "variants" in s)
                from_upload.append(visible - uploaded)
                from_request.append(visible - requested)
                variants_ready.append(ready - uploaded)
                done_jobs.append(job)
            print(f"latency over {args.photos} photos, from the end of the upload:")
            print(f"  -> blurred photo served at /p/: {summary(from_upload)}")
            print(f"  -> its three variants listed by GET /jobs: {summary(variants_ready)}")
            print(f"  including POST /uploads + the upload, to the photo: {summary(from_request)}")
            edits = [edit(session, url, job) for job in done_jobs]
            print(
                f"owner's edit over {len(edits)} photos, POST regions -> new version served: {summary(edits)}"
            )

            jobs: list[str] = []
            start = time.perf_counter()
            uploader = threading.Thread(
                target=lambda: jobs.extend(
                    upload(requests.Session(), url, data)[0]["jobId"] for _ in range(args.burst)
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
