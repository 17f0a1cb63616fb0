"""Property-based tests (hypothesis) of the blur geometry and of the worker's event parsing.

Geometry: for any image size and any boxes (off the image, negative, huge, swapped, degenerate), every
region stays inside the image and the mask covers the clipped box; pixels outside every region never
change; a box that cannot be placed (NaN, infinity) is an error, never silently dropped.

Event parsing: any object key, URL-encoded the way S3 encodes keys in event notifications, reaches the
worker as the same key; any message body (garbage, wrong shapes) is acknowledged or fails cleanly per
record, and never crashes the invocation.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any
from urllib.parse import quote_plus

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photoveil.imaging.blur import blur_faces, ellipse_mask
from photoveil.imaging.faces import Face
from photoveil.imaging.geometry import face_regions

# The worker's Metrics flush warns when a record published no metric (garbage is just acknowledged).
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

sides = st.integers(min_value=16, max_value=800)
# Coordinates from "far off the image" to "inside", including huge magnitudes detectors never return.
coords = st.one_of(
    st.integers(min_value=-50, max_value=900).map(float),
    st.floats(min_value=-2000, max_value=3000, allow_nan=False, allow_subnormal=False),
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_subnormal=False),
)
faces_strategy = st.lists(
    st.builds(Face, coords, coords, coords, coords, st.floats(min_value=0, max_value=1)), max_size=6
)


def _clipped_box(face: Face, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The pixels whose centres lie inside the (ordered) box, clipped to the image; None if none.

    A box without area (a line or a point) holds no pixel, whatever centre it passes through:
    face_regions gives it no region either.
    """
    x1, x2 = sorted((face.x1, face.x2))
    y1, y2 = sorted((face.y1, face.y2))
    if x1 == x2 or y1 == y2:
        return None
    px1 = max(0, math.ceil(x1 - 0.5))
    py1 = max(0, math.ceil(y1 - 0.5))
    px2 = min(width, math.floor(x2 - 0.5) + 1)
    py2 = min(height, math.floor(y2 - 0.5) + 1)
    if px2 <= px1 or py2 <= py1:
        return None
    return px1, py1, px2, py2


@FAST
@given(width=sides, height=sides, faces=faces_strategy)
def test_regions_stay_in_bounds_and_cover_every_box(width: int, height: int, faces: list[Face]) -> None:
    regions = face_regions(faces, width, height)
    for region in regions:
        assert 0 <= region.x1 < region.x2 <= width
        assert 0 <= region.y1 < region.y2 <= height
    for face in faces:
        box = _clipped_box(face, width, height)
        if box is None:
            continue
        # Some region contains the whole visible part of the box...
        bx1, by1, bx2, by2 = box
        holders = [r for r in regions if r.x1 <= bx1 and r.y1 <= by1 and r.x2 >= bx2 and r.y2 >= by2]
        assert holders, f"no region holds the box {box} of {face} in {width}x{height}"
        # ...its own region's mask is at full strength over the face itself (the ellipse inscribed in
        # the box)...
        (region,) = face_regions([face], width, height)
        crop = dataclasses.replace(region, x1=bx1, y1=by1, x2=bx2, y2=by2)
        weights = ellipse_mask(crop)
        assert weights.shape == (by2 - by1, bx2 - bx1)
        x1, x2 = sorted((face.x1, face.x2))
        y1, y2 = sorted((face.y1, face.y2))
        xs = (np.arange(bx1, bx2) + 0.5 - (x1 + x2) / 2) / ((x2 - x1) / 2)
        ys = (np.arange(by1, by2) + 0.5 - (y1 + y2) / 2) / ((y2 - y1) / 2)
        inscribed = np.square(xs)[None, :] + np.square(ys)[:, None] <= 1
        assert (weights[inscribed] >= 1).all(), f"face not fully blurred: {face} in {width}x{height}"
        # ...and over nearly all of a box that lies inside the image: only its outermost corners
        # (background beside the chin) may fade out.
        if (bx1, by1, bx2, by2) == (x1, y1, x2, y2) and weights.size >= 100:
            assert (weights >= 1).mean() >= 0.95, f"{(weights >= 1).mean():.3f} of the box at full strength"


@FAST
@given(
    width=st.integers(16, 160),
    height=st.integers(16, 160),
    faces=st.lists(
        st.builds(
            Face,
            st.floats(-100, 260),
            st.floats(-100, 260),
            st.floats(-100, 260),
            st.floats(-100, 260),
            st.just(0.9),
        ),
        max_size=4,
    ),
    style=st.sampled_from(["gaussian", "pixelate", "solid"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_pixels_outside_every_region_never_change(
    width: int, height: int, faces: list[Face], style: str, seed: int
) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    before = pixels.copy()
    blur_faces(pixels, faces, style)
    outside = np.ones((height, width), bool)
    for region in face_regions(faces, width, height):
        outside[region.y1 : region.y2, region.x1 : region.x2] = False
    assert np.array_equal(pixels[outside], before[outside])


@pytest.mark.parametrize("extent", [1e-200, 2.5e-309])
def test_sub_pixel_boxes_are_placed_or_skipped(extent: float) -> None:
    """A box thinner than a pixel must not crash the worker with a non-PhotoVeil error."""
    for face in (Face(0, 0, 1, extent, 0.5), Face(3, 3, 3 + extent, 9, 0.5)):
        for region in face_regions([face], 16, 16):
            assert 0 <= region.x1 < region.x2 <= 16 and 0 <= region.y1 < region.y2 <= 16
            assert np.isfinite(ellipse_mask(region)).all()


@FAST
@given(
    width=sides,
    height=sides,
    good=faces_strategy,
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
    slot=st.integers(0, 3),
)
def test_a_box_that_cannot_be_placed_is_an_error(
    width: int, height: int, good: list[Face], bad: float, slot: int
) -> None:
    values = [10.0, 10.0, 50.0, 50.0]
    values[slot] = bad
    with pytest.raises(ValueError):
        face_regions([*good, Face(*values, 0.9)], width, height)


# --------------------------------------------------------------------------- event parsing

UPLOADS = "photoveil-uploads-test"


class RecordingS3:
    """A fake S3 client: what the worker deleted, and nothing to read (no job ever exists here)."""

    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []
        self.written: list[str] = []

    def delete_object(self, *, Bucket: str, Key: str) -> dict:
        self.deleted.append((Bucket, Key))
        return {}

    def put_object(self, **kwargs: Any) -> dict:
        self.written.append(kwargs["Key"])
        return {}

    def get_object(self, **kwargs: Any) -> dict:
        raise AssertionError("no job exists, so no original may be read")


class EmptyJobsTable:
    """A fake DynamoDB client whose table holds no jobs (a stray or expired upload)."""

    def get_item(self, **kwargs: Any) -> dict:
        return {}

    def update_item(self, **kwargs: Any) -> dict:
        raise AssertionError("no job exists, so none may be updated")


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch):
    """The real BlurFunction handler with fake clients (no job in the table, nothing to read)."""
    for name, value in {
        "JOBS_TABLE": "jobs",
        "UPLOADS_BUCKET": UPLOADS,
        "BLURRED_BUCKET": "blurred",
        "PUBLIC_BASE_URL": "https://photos.example",
        "DETECTOR": "centerface",
        "BLUR_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/blur",
        "QUOTAS_TABLE": "quotas",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "CRITICAL",
    }.items():
        monkeypatch.setenv(name, value)
    from photoveil.dependencies import Dependencies, set_dependencies
    from photoveil.handlers import worker as blur_handler
    from photoveil.settings import get_settings

    get_settings.cache_clear()
    s3 = RecordingS3()
    set_dependencies(Dependencies(s3=s3, dynamodb=EmptyJobsTable(), ses=object(), detector=object()))
    yield blur_handler, s3
    set_dependencies(None)
    get_settings.cache_clear()


def _sqs_event(bodies: list[str]) -> dict:
    from photoveil.local.events import sqs_batch_event

    messages = [
        {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": body, "MD5OfBody": "", "Attributes": {}}
        for i, body in enumerate(bodies)
    ]
    return sqs_batch_event(
        messages, queue_arn="arn:aws:sqs:us-east-1:123456789012:BlurQueue", region="us-east-1"
    )


def _context() -> Any:
    from photoveil.local.events import LambdaContext

    return LambdaContext(function_name="BlurFunction", memory_limit_in_mb=1769, timeout_s=60)


def _s3_put_body(encoded_key: str, bucket: str = UPLOADS) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Post",
                    "eventTime": "2025-01-01T00:00:00.000Z",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": encoded_key, "size": 1234}},
                }
            ]
        }
    )


def s3_event_key(key: str) -> str:
    """Encode an object key as S3 does in event notifications: form-encoding, "+" for a space."""
    return quote_plus(key, safe="/")


key_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=60
)


@FAST
@given(suffix=key_text)
def test_any_key_reaches_the_worker_unchanged(worker, suffix: str) -> None:
    handler, s3 = worker
    s3.deleted.clear()
    key = f"uploads/{suffix}"
    result = handler.lambda_handler(_sqs_event([_s3_put_body(s3_event_key(key))]), _context())
    assert result == {"batchItemFailures": []}
    # Stray uploads (or uploads of a job that does not exist) are deleted: the worker must have
    # decoded the key back to exactly what the client wrote, or it would delete the wrong object.
    assert s3.deleted == [(UPLOADS, key)]
    assert s3.written == []


@FAST
@given(job_id=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32))
def test_a_job_key_is_recognised(worker, job_id: str) -> None:
    handler, s3 = worker
    s3.deleted.clear()
    result = handler.lambda_handler(_sqs_event([_s3_put_body(f"uploads/{job_id}")]), _context())
    assert result == {"batchItemFailures": []}
    assert s3.deleted == [(UPLOADS, f"uploads/{job_id}")]  # no live job: its original is deleted


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _s3ish(value: Any) -> st.SearchStrategy:
    """Bodies that look like S3 events but have the wrong shape somewhere."""
    return st.one_of(
        st.just({"Records": value}),
        st.just({"Records": [value]}),
        st.just({"Records": [{"eventName": "ObjectCreated:Put", "s3": value}]}),
        st.just({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": value, "object": value}}]}),
        st.just(
            {
                "Records": [
                    {
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": UPLOADS}, "object": {"key": value}},
                    }
                ]
            }
        ),
        st.just({"Event": value}),
    )


def _claims_records(body: str) -> bool:
    """True for a JSON object with a top-level "Records": an S3 event (the misshapen ones are below)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and "Records" in doc


garbage_bodies = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
    json_values.map(json.dumps),
).filter(lambda body: not _claims_records(body))
misshapen_s3_events = json_values.flatmap(_s3ish).map(json.dumps)


@FAST
@given(bodies=st.lists(garbage_bodies, min_size=1, max_size=5))
def test_garbage_messages_are_acknowledged_not_looped(worker, bodies: list[str]) -> None:
    """No message body can crash the invocation; garbage is acknowledged (retrying cannot fix it)."""
    handler, s3 = worker
    s3.written.clear()
    result = handler.lambda_handler(_sqs_event(bodies), _context())
    assert set(result) == {"batchItemFailures"}
    assert result["batchItemFailures"] == [], f"garbage would be retried until the DLQ: {bodies}"
    assert s3.written == []


@FAST
@given(bodies=st.lists(misshapen_s3_events, min_size=1, max_size=3))
def test_misshapen_s3_events_are_acknowledged_not_looped(worker, bodies: list[str]) -> None:
    handler, s3 = worker
    s3.written.clear()
    result = handler.lambda_handler(_sqs_event(bodies), _context())
    assert result["batchItemFailures"] == [], f"garbage would be retried until the DLQ: {bodies}"
    assert s3.written == []
