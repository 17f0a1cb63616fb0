"""Shared helpers for the robustness tests: the generated corpus and a fast fake detector."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

# corpus.py and localstack.py sit next to the tests (test helpers, not product code); pytest's default
# "prepend" import mode puts this folder on sys.path, so they import as plain modules.
import corpus
import numpy as np
import pytest
from localstack import FakeRekognition, RunningStack, start_stack

from photoveil.imaging.faces import Face
from photoveil_dev.launcher import raised_limits

REPO = Path(__file__).resolve().parents[2]


class CentreDetector:
    """A fake detector: one "face" over the middle half of any image, and a log of the calls."""

    name = "centre"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        self.calls.append((width, height))
        return [Face(width / 4, height / 4, 3 * width / 4, 3 * height / 4, 0.99)]


def centre_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The integer pixel box (x1, y1, x2, y2) strictly inside CentreDetector's face."""
    return width // 4 + 1, height // 4 + 1, 3 * width // 4 - 1, 3 * height // 4 - 1


def jpeg_markers(data: bytes) -> list[int]:
    """The markers of a JPEG's header segments up to SOS (raises on anything that is not a JPEG)."""
    return [marker for marker, _start, _end in corpus.jpeg_segments(data)]


def assert_clean_jpeg(data: bytes) -> None:
    """A bare JPEG: SOI first, EOI last, no EXIF/XMP (APP1), ICC (APP2), other APPn but JFIF, or comment."""
    assert data[:3] == b"\xff\xd8\xff", "output is not a JPEG"
    assert data[-2:] == b"\xff\xd9", "output has bytes after its end-of-image marker"
    markers = jpeg_markers(data)
    metadata = [hex(m) for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE]
    assert not metadata, f"metadata segments survived: {metadata}"
    # The payloads a hostile upload carried must be gone too (also from the entropy data, by luck or not).
    for needle in (b"Exif", b"<script", b"PK\x03\x04", b"http://ns.adobe.com/xap"):
        assert needle not in data, f"{needle!r} found in the output"
    # Exactly one EOI at the end: a trailing JPEG (an appended thumbnail or polyglot) would show as a
    # second SOI after the first EOI.
    assert struct.pack(">H", 0xFFD8) not in data[2:], "a second image is embedded in the output"


# --------------------------------------------------------------------------- one local stack for the folder

# Short, so a failed photo is retried quickly, yet longer than a photo takes on a busy 2-core machine
# (shorter and every photo is received twice, which the handlers survive but which doubles the work).
VISIBILITY_TIMEOUT_S = 5


@pytest.fixture(scope="session")
def rekognition() -> Iterator[FakeRekognition]:
    """A fake Rekognition over real HTTP (moto has no DetectFaces) that can throttle or fail on demand."""
    fake = FakeRekognition().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def stack(rekognition: FakeRekognition, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`photoveil local --detector both` with the fault endpoint on and a short visibility timeout."""
    from photoveil.imaging.model import model_path

    model_path()  # "run `make install`" now, not as photos stuck in the queue
    running = start_stack(
        [
            "--detector",
            "both",
            "--visibility-timeout",
            str(VISIBILITY_TIMEOUT_S),
            "--allow-faults",
            "--workers",
            "2",
            *raised_limits(),
        ],
        log=REPO / "test-artifacts" / "robustness-stack.log",
        data_dir=tmp_path_factory.mktemp("robustness"),
        env={"AWS_ENDPOINT_URL_REKOGNITION": rekognition.endpoint},
    )
    try:
        yield running
    finally:
        running.stop()
