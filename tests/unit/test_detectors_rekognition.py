"""The Rekognition adapter against recorded-shape DetectFaces responses (botocore Stubber), and `both`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
from botocore.stub import ANY, Stubber

from photoveil.deadline import time_budget
from photoveil.errors import (
    DetectorError,
    ImageRefusedError,
    ImageTooLargeError,
    ImageTooNarrowError,
)
from photoveil.imaging.detectors import UnionDetector, get_detector, rekognition
from photoveil.imaging.detectors.rekognition import (
    ATTEMPT_TIMEOUT_S,
    LIMIT_SIDE,
    MAX_BYTES,
    MIN_SIDE,
    RekognitionDetector,
    faces_from_response,
)
from photoveil.imaging.faces import Face


def _face_detail(left: float, top: float, width: float, height: float, confidence: float) -> dict[str, Any]:
    """One FaceDetail as DetectFaces returns it with Attributes=["DEFAULT"]."""
    return {
        "BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top},
        "Landmarks": [
            {"Type": "eyeLeft", "X": left + 0.3 * width, "Y": top + 0.4 * height},
            {"Type": "eyeRight", "X": left + 0.7 * width, "Y": top + 0.4 * height},
            {"Type": "mouthLeft", "X": left + 0.35 * width, "Y": top + 0.75 * height},
            {"Type": "mouthRight", "X": left + 0.65 * width, "Y": top + 0.75 * height},
            {"Type": "nose", "X": left + 0.5 * width, "Y": top + 0.6 * height},
        ],
        "Pose": {"Roll": -2.1, "Yaw": 5.3, "Pitch": 7.7},
        "Quality": {"Brightness": 71.2, "Sharpness": 86.9},
        "Confidence": confidence,
    }


RESPONSE = {
    "FaceDetails": [
        _face_detail(0.3125, 0.0879, 0.1465, 0.1758, 99.98),  # inside the frame
        _face_detail(-0.05, 0.5, 0.2, 0.3, 97.5),  # off the left edge
        _face_detail(0.9, 0.85, 0.25, 0.3, 91.0),  # off the right and bottom edges
    ],
    "ResponseMetadata": {"HTTPStatusCode": 200},
}


@pytest.fixture
def client():
    # A real botocore client (request validation, error parsing) that never reaches the network.
    return boto3.client(
        "rekognition", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def sent(client) -> list[bytes]:
    """The image bytes of every DetectFaces call the client makes."""
    images: list[bytes] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        images.append(params["Image"]["Bytes"])

    client.meta.events.register("provide-client-params.rekognition.DetectFaces", capture)
    return images


class Sleeps:
    """A stand-in for time.sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _detector(client, sleeps: Sleeps | None = None) -> RekognitionDetector:
    return RekognitionDetector(client, sleep=sleeps or Sleeps(), rng=lambda: 1.0)


def _jpeg_segments(data: bytes) -> list[int]:
    """JPEG marker codes before the image data (APP1 = 0xE1 is where EXIF lives)."""
    assert data[:2] == b"\xff\xd8"
    markers, pos = [], 2
    while pos < len(data):
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: headers are over
            break
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return markers


def test_ratio_boxes_become_clamped_pixels() -> None:
    faces = faces_from_response(RESPONSE, width=1024, height=512)
    first = faces[0]
    assert (first.x1, first.y1, first.x2, first.y2, first.score) == pytest.approx(
        (320.0, 45.0048, 470.016, 135.0144, 0.9998), rel=1e-4
    )
    assert faces[1].x1 == 0.0 and faces[1].x2 == pytest.approx(0.15 * 1024)
    assert faces[2].x2 == 1024.0 and faces[2].y2 == 512.0
    assert all(0 <= f.x1 < f.x2 <= 1024 and 0 <= f.y1 < f.y2 <= 512 for f in faces)


def test_detect_sends_a_small_clean_jpeg_in_the_oriented_frame(client, sent, astronaut_path: Path) -> None:
    image = cv2.imread(str(astronaut_path), cv2.IMREAD_COLOR)
    portrait = np.ascontiguousarray(cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)[:, :300])  # 512 tall, 300 wide
    with Stubber(client) as stub:
        stub.add_response("detect_faces", RESPONSE, {"Image": {"Bytes": ANY}, "Attributes": ["DEFAULT"]})
        faces = _detector(client).detect(portrait)
    assert len(faces) == 3 and faces[0].score == pytest.approx(0.9998)
    assert faces[0].x1 == pytest.approx(0.3125 * 300) and faces[0].y1 == pytest.approx(0.0879 * 512)
    (jpeg,) = sent
    assert len(jpeg) <= MAX_BYTES
    assert 0xE1 not in _jpeg_segments(jpeg)  # no EXIF (or XMP): nothing could rotate the boxes
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == portrait.shape  # same frame: not rotated, not resized (small photo)
    assert np.abs(decoded.astype(int) - portrait.astype(int)).mean() < 4  # the same pixels, JPEG noise


def test_a_huge_photo_is_downscaled_under_the_byte_limit(client, sent) -> None:
    noisy = np.random.default_rng(1).integers(0, 256, (3024, 4032, 3), dtype=np.uint8)  # worst case for JPEG
    with Stubber(client) as stub:
        stub.add_response("detect_faces", RESPONSE, {"Image": {"Bytes": ANY}, "Attributes": ["DEFAULT"]})
        faces = _detector(client).detect(noisy)
    assert len(sent[0]) <= MAX_BYTES
    decoded = cv2.imdecode(np.frombuffer(sent[0], np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[1] / decoded.shape[0] == pytest.approx(4032 / 3024, rel=0.01)
    assert faces[0].x1 == pytest.approx(0.3125 * 4032)  # boxes in the caller's frame, not the JPEG's


def test_a_tiny_photo_is_enlarged_to_the_minimum_side(client, sent) -> None:
    with Stubber(client) as stub:
        stub.add_response(
            "detect_faces", {"FaceDetails": []}, {"Image": {"Bytes": ANY}, "Attributes": ["DEFAULT"]}
        )
        assert _detector(client).detect(np.full((40, 60, 3), 128, np.uint8)) == []
    decoded = cv2.imdecode(np.frombuffer(sent[0], np.uint8), cv2.IMREAD_COLOR)
    assert min(decoded.shape[:2]) >= 80


# Rekognition's limits on an image passed as bytes: 80 to 10,000 px a side (DetectModerationLabels gets the
# same JPEG as DetectFaces), 5 MB (https://docs.aws.amazon.com/rekognition/latest/dg/limits.html).
@pytest.mark.parametrize(
    ("height", "width"), [(9000, 100), (9000, 72), (40, 5000), (10000, 80), (80, 10000), (12000, 200)]
)
def test_a_long_thin_photo_that_can_fit_is_sent_within_both_side_limits(client, sent, height, width) -> None:
    with Stubber(client) as stub:
        stub.add_response("detect_faces", {"FaceDetails": []}, {"Image": {"Bytes": ANY}, "Attributes": ANY})
        assert _detector(client).detect(np.full((height, width, 3), 128, np.uint8)) == []
    decoded = cv2.imdecode(np.frombuffer(sent[0], np.uint8), cv2.IMREAD_COLOR)
    assert min(decoded.shape[:2]) >= MIN_SIDE and max(decoded.shape[:2]) <= LIMIT_SIDE
    assert len(sent[0]) <= MAX_BYTES


@pytest.mark.parametrize(("height", "width"), [(9000, 40), (40, 9000), (10001, 80), (12000, 80)])
def test_a_photo_too_long_and_thin_for_rekognition_is_bad_input_and_never_sent(
    client, sent, height, width
) -> None:
    # 40x9000: enlarging its short side to 80 px makes its long side 18,000, over 10,000.
    with Stubber(client) as stub:  # no response queued: a call would fail the test
        with pytest.raises(ImageTooNarrowError) as refused:
            _detector(client).detect(np.full((height, width, 3), 128, np.uint8))
        stub.assert_no_pending_responses()
    assert sent == []
    assert refused.value.code == "image_too_narrow" and refused.value.permanent
    assert f"{width}x{height}" in refused.value.message


def test_an_image_that_fits_the_bytes_only_under_80_px_is_bad_input(
    client, sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Noise 300x100 fits 5 MB easily; with the limit at 8,000 bytes it fits only if its short side went
    # under 80 px (80x240 at q70 is 11 KB here), which Rekognition would refuse.
    monkeypatch.setattr(rekognition, "MAX_BYTES", 8_000)
    noise = np.random.default_rng(3).integers(0, 256, (300, 100, 3), dtype=np.uint8)
    with Stubber(client), pytest.raises(ImageTooLargeError):
        _detector(client).detect(noise)
    assert sent == []


@pytest.mark.parametrize(
    "code", ["InvalidParameterException", "InvalidImageFormatException", "ImageTooLargeException"]
)
def test_an_image_rekognition_refuses_is_bad_input_and_not_retried(client, code: str) -> None:
    sleeps = Sleeps()
    with Stubber(client) as stub:
        stub.add_client_error("detect_faces", code, "refused", 400)
        with pytest.raises(ImageRefusedError) as refused:
            _detector(client, sleeps).detect(np.zeros((100, 100, 3), np.uint8))
        stub.assert_no_pending_responses()
    assert sleeps.delays == []
    assert refused.value.code == "image_refused_by_detector" and refused.value.permanent
    assert refused.value.operation == "DetectFaces"  # the worker counts refusals by operation, and alarms


def test_throttling_is_retried_with_backoff_then_succeeds(client) -> None:
    sleeps = Sleeps()
    with Stubber(client) as stub:
        stub.add_client_error("detect_faces", "ThrottlingException", "Rate exceeded", 400)
        stub.add_client_error("detect_faces", "ProvisionedThroughputExceededException", "Slow down", 400)
        stub.add_response("detect_faces", RESPONSE)
        faces = _detector(client, sleeps).detect(np.zeros((100, 100, 3), np.uint8))
        stub.assert_no_pending_responses()
    assert len(faces) == 3
    assert sleeps.delays == [0.25, 0.5]  # exponential; rng pinned at the top of the jitter range


def test_throttling_forever_raises_detector_error(client) -> None:
    sleeps = Sleeps()
    with Stubber(client) as stub:
        for _ in range(5):
            stub.add_client_error("detect_faces", "ThrottlingException", "Rate exceeded", 400)
        with pytest.raises(DetectorError, match="after retries"):
            _detector(client, sleeps).detect(np.zeros((100, 100, 3), np.uint8))
        stub.assert_no_pending_responses()
    assert len(sleeps.delays) == 4 and sum(sleeps.delays) <= 10


class SlowClock:
    """Time left in the invocation: each call to DetectFaces takes CALL_S, each sleep its delay."""

    CALL_S = 1.0

    def __init__(self, left_s: float) -> None:
        self.left_s = left_s
        self.calls = 0

    def seconds_left(self) -> float:
        return self.left_s

    def sleep(self, seconds: float) -> None:
        self.left_s -= seconds

    def on_call(self, **_: Any) -> None:
        self.calls += 1
        self.left_s -= self.CALL_S


def test_retries_stop_while_a_whole_attempt_still_fits_in_the_invocation(client) -> None:
    clock = SlowClock(left_s=ATTEMPT_TIMEOUT_S + 3.0)
    client.meta.events.register("provide-client-params.rekognition.DetectFaces", clock.on_call)
    detector = RekognitionDetector(
        client, sleep=clock.sleep, rng=lambda: 1.0, seconds_left=clock.seconds_left
    )
    with Stubber(client) as stub:
        for _ in range(5):
            stub.add_client_error("detect_faces", "ThrottlingException", "Rate exceeded", 400)
        with pytest.raises(DetectorError):
            detector.detect(np.zeros((100, 100, 3), np.uint8))
    # Plenty of attempts were allowed without the deadline (5); only those that fit were made, and no
    # attempt started with less than its worst-case duration left.
    assert 1 <= clock.calls < 5
    assert clock.left_s >= ATTEMPT_TIMEOUT_S - SlowClock.CALL_S


def test_no_attempt_starts_without_time_for_it(client) -> None:
    with Stubber(client) as stub:  # no response queued: a call would fail the test
        detector = RekognitionDetector(client, sleep=Sleeps(), seconds_left=lambda: ATTEMPT_TIMEOUT_S - 0.5)
        with pytest.raises(DetectorError, match="no time left"):
            detector.detect(np.zeros((100, 100, 3), np.uint8))
        stub.assert_no_pending_responses()


def test_the_time_budget_reaches_the_rekognition_half_of_both(client) -> None:
    with Stubber(client) as stub, time_budget(ATTEMPT_TIMEOUT_S - 1):
        with pytest.raises(DetectorError, match="no time left"):
            get_detector("both", rekognition_client=client).detect(np.zeros((100, 100, 3), np.uint8))
        stub.assert_no_pending_responses()


def test_access_denied_is_not_retried(client) -> None:
    sleeps = Sleeps()
    with Stubber(client) as stub:
        stub.add_client_error("detect_faces", "AccessDeniedException", "not authorized", 400)
        with pytest.raises(DetectorError, match="AccessDeniedException"):
            _detector(client, sleeps).detect(np.zeros((100, 100, 3), np.uint8))
    assert sleeps.delays == []


def test_both_is_the_union_of_the_two_detectors(client, astronaut_path: Path) -> None:
    image = cv2.imread(str(astronaut_path), cv2.IMREAD_COLOR)
    # Rekognition reports the astronaut's face (overlapping CenterFace's) and one CenterFace misses.
    response = {
        "FaceDetails": [_face_detail(0.34, 0.1, 0.2, 0.25, 99.9), _face_detail(0.8, 0.8, 0.1, 0.1, 95.0)]
    }
    centerface_faces = get_detector("centerface").detect(image)
    with Stubber(client) as stub:
        stub.add_response("detect_faces", response)
        faces = get_detector("both", rekognition_client=client).detect(image)
    assert len(faces) == len(centerface_faces) + 1  # the shared face merged, the extra one added
    extra = [f for f in faces if f.x1 >= 0.8 * 512 - 1 and f.y1 >= 0.8 * 512 - 1]
    assert len(extra) == 1 and extra[0].score == pytest.approx(0.95)


def test_both_passes_an_image_rekognition_refuses_through_as_bad_input(client, astronaut_path: Path) -> None:
    image = cv2.imread(str(astronaut_path), cv2.IMREAD_COLOR)
    with Stubber(client) as stub:
        stub.add_client_error("detect_faces", "InvalidImageFormatException", "refused", 400)
        with pytest.raises(ImageRefusedError):  # not a DetectorError: the photo fails, it is not retried
            get_detector("both", rekognition_client=client).detect(image)


def test_both_fails_closed_when_rekognition_fails(client, astronaut_path: Path) -> None:
    image = cv2.imread(str(astronaut_path), cv2.IMREAD_COLOR)
    with Stubber(client) as stub:
        stub.add_client_error("detect_faces", "AccessDeniedException", "not authorized", 400)
        with pytest.raises(DetectorError):
            get_detector("both", rekognition_client=client).detect(image)


class BrokenDetector:
    name = "broken"

    def detect(self, image: np.ndarray) -> list[Face]:
        raise RuntimeError("bug")


class OneFace:
    name = "one"

    def detect(self, image: np.ndarray) -> list[Face]:
        return [Face(1, 1, 10, 10, 0.9)]


def test_union_turns_any_failure_into_detector_error() -> None:
    with pytest.raises(DetectorError, match="broken failed"):
        UnionDetector("both", [OneFace(), BrokenDetector()]).detect(np.zeros((20, 20, 3), np.uint8))


def test_get_detector_caches_per_name_and_threshold(client) -> None:
    assert get_detector("rekognition") is get_detector("rekognition")
    assert get_detector("centerface", threshold=0.5) is not get_detector("centerface")
    assert get_detector("rekognition", rekognition_client=client) is not get_detector("rekognition")
    with pytest.raises(ValueError, match="unknown detector"):
        get_detector("haar")
