"""Published photos fanned out through the local stack: S3 -> SNS -> SQS -> VariantsFunction, over HTTP.

moto delivers the bucket's notification to the topic and the topic to the queue itself (prefix and suffix
filter, raw delivery); the stack's pollers run the real variants handler.
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from test_local_stack import upload  # the browser's upload flow, shared by the e2e files

pytestmark = pytest.mark.e2e

TIMEOUT_S = 90  # a liveness bound on a shared 2-core machine, not a speed assertion


def wait_for(stack: Any, job_id: str, ready: Any) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status = requests.get(f"{stack.url}/jobs/{job_id}", timeout=10).json()
        if ready(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not ready: {status}\n{stack.log_tail()}")


def photo(astronaut_path: Any, width: int, height: int) -> bytes:
    pixels = cv2.resize(cv2.imread(str(astronaut_path)), (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


@pytest.mark.parametrize(("width", "height", "portrait"), [(1600, 1200, False), (1200, 1600, True)])
def test_a_published_photo_gets_three_variants_served_at_their_sizes(
    local_stack: Any, astronaut_path: Any, width: int, height: int, portrait: bool
) -> None:
    job_id = upload(local_stack, photo(astronaut_path, width, height), "image/jpeg")

    status = wait_for(local_stack, job_id, lambda s: "variants" in s)

    assert status["status"] == "done"
    assert set(status["variants"]) == {"800x600", "400x300", "200x150"}
    for name, url in status["variants"].items():
        response = requests.get(url, timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
        pixels = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        box_w, box_h = (int(n) for n in name.split("x"))
        assert pixels.shape[:2] == ((box_w, box_h) if portrait else (box_h, box_w))
    # Writing the variants published nothing more: no variants of variants.
    keys = [
        o["Key"]
        for o in local_stack.client("s3").list_objects_v2(Bucket=local_stack.state()["blurredBucket"])[
            "Contents"
        ]
        if o["Key"].startswith(f"p/{job_id}")
    ]
    assert sorted(keys) == sorted([f"p/{job_id}.jpg"] + [f"p/{job_id}/{n}.jpeg" for n in status["variants"]])
