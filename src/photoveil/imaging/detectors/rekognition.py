"""Amazon Rekognition DetectFaces as a Detector: a small adapter, no image logic beyond the upload copy.

We send a JPEG we encode ourselves from the already-oriented (and downscaled) pixels: it carries no
EXIF, so Rekognition's boxes are in our frame, and it stays under the 5 MB limit for image bytes.
DetectFaces returns at most the 100 largest faces: a crowd photo can have more, which is why `both`
(the union with the in-process detector) exists.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

import cv2
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from photoveil import deadline
from photoveil.errors import DetectorError, ImageRefusedError, ImageTooLargeError, ImageTooNarrowError
from photoveil.imaging.faces import Face
from photoveil.imaging.image import encode_jpeg

# Rekognition's set quotas for an image passed as bytes (https://docs.aws.amazon.com/rekognition/latest/dg/
# limits.html): at most 5 MB, each side at least 80 px, and for DetectModerationLabels, which gets the same
# JPEG as DetectFaces, each side at most 10,000 px. So no JPEG can be sent for an image whose long side is
# more than 125 times its short side.
MAX_BYTES = 5 * 1024 * 1024
MIN_SIDE = 80
LIMIT_SIDE = 10_000
# Faces under 40 px in a 1920x1080 image are not found anyway, so a larger upload buys nothing but bytes.
MAX_SIDE = 1920
JPEG_QUALITIES = (90, 80, 70)

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailableException",
        "InternalServerError",
        "LimitExceededException",
    }
)
# The image itself is refused: the same bytes would be refused again, so the photo fails as bad input. The
# limits are checked before each call (encode_for_rekognition), so a refusal is unexpected, and
# InvalidParameterException may as well be a parameter of ours gone wrong, failing every photo: the worker
# counts each refusal by operation (ImageRefusedByDetector), and an alarm fires on the first.
REFUSED_IMAGE_CODES = frozenset(
    {"InvalidParameterException", "InvalidImageFormatException", "ImageTooLargeException"}
)
MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 4.0
MAX_TOTAL_SLEEP_S = 10.0  # well inside a Lambda timeout; then the SQS message retries later
# The longest one attempt can take (connect + read timeouts): an attempt starts only if it fits in the
# time the invocation has left (photoveil.deadline). DetectFaces answers in about a second.
CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 6
ATTEMPT_TIMEOUT_S = CONNECT_TIMEOUT_S + READ_TIMEOUT_S

# Our own loop does the backoff (with full jitter, bounded in total): botocore must not retry too, or
# the attempts multiply.
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=CONNECT_TIMEOUT_S,
    read_timeout=READ_TIMEOUT_S,
)


@cache
def rekognition_client() -> Any:
    """The process-wide Rekognition client, created on first use (never at import)."""
    return new_rekognition_client()


def new_rekognition_client(session: Any = None) -> Any:
    """A new Rekognition client with this adapter's timeouts and no botocore retries, from SESSION
    (default: boto3's)."""
    import boto3

    return (session or boto3).client("rekognition", config=_CLIENT_CONFIG)


def rekognition_scale(width: int, height: int) -> float:
    """The scale from an image's pixels to the JPEG Rekognition gets: the long side down to MAX_SIDE, the
    short side up to MIN_SIDE, never past LIMIT_SIDE. ImageTooNarrowError if no scale fits both sides."""
    long_side, short_side = max(width, height), min(width, height)
    if long_side * MIN_SIDE > short_side * LIMIT_SIDE:
        raise ImageTooNarrowError(
            f"the image is {width}x{height}: too long and narrow to be checked for faces "
            f"(its longer side may be at most {LIMIT_SIDE // MIN_SIDE} times its shorter side)"
        )
    return max(min(1.0, MAX_SIDE / long_side), MIN_SIDE / short_side)


def encode_for_rekognition(image: np.ndarray) -> tuple[bytes, float]:
    """JPEG bytes for DetectFaces and DetectModerationLabels and the scale from image pixels to the JPEG's.

    Within Rekognition's limits (rekognition_scale, then under MAX_BYTES), no metadata (image.encode_jpeg
    writes none); the boxes come back as ratios, so the scale is only informative. Raises a permanent
    PhotoVeilError (ImageTooNarrowError, ImageTooLargeError) for an image no JPEG within the limits can show.
    """
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    h, w = image.shape[:2]
    scale = rekognition_scale(w, h)
    smallest = MIN_SIDE / min(h, w)  # the short side may not go under MIN_SIDE
    side = MAX_SIDE
    while True:
        if abs(scale - 1.0) > 1e-6:
            width, height = max(MIN_SIDE, round(w * scale)), max(MIN_SIDE, round(h * scale))
            method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            copy = cv2.resize(image, (width, height), interpolation=method)
        else:
            copy = image
        for quality in JPEG_QUALITIES:
            jpeg = encode_jpeg(copy, quality)
            if len(jpeg) <= MAX_BYTES:
                return jpeg, scale
        if scale <= smallest:
            raise ImageTooLargeError("the image cannot be made small enough to be checked for faces")
        # Only a pathological (noise-like) photo gets here: shrink until it fits.
        side = int(side * 0.75)
        scale = max(smallest, min(scale, side / max(h, w)))


def faces_from_response(
    response: dict[str, Any], width: int, height: int, min_score: float = 0.0
) -> list[Face]:
    """DetectFaces FaceDetails (ratio boxes, may be < 0 or > 1) -> clamped pixel Faces."""
    faces = []
    for detail in response.get("FaceDetails", []):
        box = detail["BoundingBox"]
        left, top = float(box["Left"]), float(box["Top"])
        x1 = min(max(left, 0.0), 1.0) * width
        y1 = min(max(top, 0.0), 1.0) * height
        x2 = min(max(left + float(box["Width"]), 0.0), 1.0) * width
        y2 = min(max(top + float(box["Height"]), 0.0), 1.0) * height
        score = float(detail.get("Confidence", 100.0)) / 100.0
        if x2 > x1 and y2 > y1 and score >= min_score:
            faces.append(Face(x1, y1, x2, y2, score))
    return faces


class RekognitionCalls:
    """Rekognition operations with bounded, jittered retries that fit in the invocation's time left.

    Shared by face detection and moderation (photoveil.imaging.detectors.moderation): both are paid calls
    under the same account quota, so both back off the same way. Failures raise DetectorError (fail closed),
    or ImageRefusedError when Rekognition refuses the image itself (bad input: retrying cannot help).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        seconds_left: Callable[[], float] = deadline.seconds_left,
    ) -> None:
        self._client = client
        self._sleep = sleep
        self._rng = rng
        self._seconds_left = seconds_left

    @property
    def client(self) -> Any:
        return self._client or rekognition_client()

    def call(self, operation: str, name: str, **params: Any) -> dict[str, Any]:
        """client.OPERATION(**PARAMS) (NAME is the API's name, for messages), retried while transient."""
        slept = 0.0
        last: Exception | None = None
        for attempt in range(MAX_ATTEMPTS):
            if self._seconds_left() < ATTEMPT_TIMEOUT_S:
                # Past this point the function could time out mid-call, costing every record of the
                # batch a receive; failing this record now retries it alone, later.
                raise DetectorError("no time left for a Rekognition call in this invocation") from last
            try:
                return getattr(self.client, operation)(**params)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in REFUSED_IMAGE_CODES:
                    raise ImageRefusedError(
                        f"the photo could not be checked: Rekognition {name} refused it ({code})",
                        operation=name,
                    ) from exc
                if code not in RETRYABLE_CODES:
                    raise DetectorError(f"Rekognition {name} failed: {code or exc}") from exc
                last = exc
            except BotoCoreError as exc:  # connection errors, timeouts: transient
                last = exc
            # Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): spreads the retries
            # of many workers throttled at the same moment.
            delay = self._rng() * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
            too_late = self._seconds_left() - delay < ATTEMPT_TIMEOUT_S
            if attempt == MAX_ATTEMPTS - 1 or slept + delay > MAX_TOTAL_SLEEP_S or too_late:
                break
            self._sleep(delay)
            slept += delay
        raise DetectorError(f"Rekognition {name} still failing after retries: {last}") from last


class _SharedEncoding:
    """One image's JPEG for Rekognition, encoded once by whichever caller asks first (the others wait)."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self._lock = threading.Lock()
        self._encoded: tuple[bytes, float] | None = None

    def get(self) -> tuple[bytes, float]:
        with self._lock:
            if self._encoded is None:
                self._encoded = encode_for_rekognition(self.image)
            return self._encoded


_shared_encoding: ContextVar[_SharedEncoding | None] = ContextVar("rekognition_jpeg", default=None)


@contextmanager
def sharing_encoding(image: np.ndarray) -> Iterator[None]:
    """Within the block (and threads started with its context), calls on IMAGE share one JPEG: face
    detection and moderation send Rekognition the same bytes and pay for one encode. Scoped, not cached,
    because the pipeline blurs the same array in place afterwards."""
    token = _shared_encoding.set(_SharedEncoding(image))
    try:
        yield
    finally:
        _shared_encoding.reset(token)


def rekognition_jpeg(image: np.ndarray) -> tuple[bytes, float]:
    """encode_for_rekognition(IMAGE), shared inside a ``sharing_encoding(IMAGE)`` block."""
    shared = _shared_encoding.get()
    if shared is None or shared.image is not image:
        return encode_for_rekognition(image)
    return shared.get()


class RekognitionDetector:
    """Faces via Rekognition DetectFaces; transient failures retried, then DetectorError."""

    name = "rekognition"

    def __init__(
        self,
        client: Any = None,
        *,
        threshold: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        seconds_left: Callable[[], float] = deadline.seconds_left,
    ) -> None:
        self.threshold = threshold or 0.0
        self._calls = RekognitionCalls(client, sleep=sleep, rng=rng, seconds_left=seconds_left)

    @property
    def client(self) -> Any:
        return self._calls.client

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a BGR uint8 image (its pixel frame). Raises DetectorError, or a permanent PhotoVeilError
        for an image Rekognition cannot take."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise DetectorError("expected an HxWx3 uint8 image")
        jpeg, _ = rekognition_jpeg(image)
        response = self._calls.call(
            "detect_faces", "DetectFaces", Image={"Bytes": jpeg}, Attributes=["DEFAULT"]
        )
        return faces_from_response(response, image.shape[1], image.shape[0], self.threshold)
