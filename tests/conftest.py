"""Fixtures shared by every test level."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_IMAGES = REPO / "tests" / ".images"  # filled by `make install` (scripts/fetch_test_images.py)
SHARED_FACES = REPO.parent / "shared" / "data" / "faces"


def _test_image(name: str) -> Path:
    path = TEST_IMAGES / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make install` (scripts/fetch_test_images.py) first")
    return path


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    """A 512x512 RGB photo with one real face (NASA, public domain; from the scikit-image wheel)."""
    return _test_image("astronaut.png")


@pytest.fixture(scope="session")
def camera_path() -> Path:
    """A 512x512 grayscale photo with one real face (from the scikit-image wheel)."""
    return _test_image("camera.png")


@pytest.fixture(scope="session")
def shared_faces_dir() -> Path:
    """../shared/data/faces: real photos with annotated faces; absent in a user's clone, so skip."""
    if not SHARED_FACES.is_dir():
        pytest.skip("../shared/data/faces is absent (only the team's machines have it)")
    return SHARED_FACES
