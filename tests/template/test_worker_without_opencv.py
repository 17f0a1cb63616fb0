"""The worker runs with OpenCV out of reach: its Lambda package ships none (src/Makefile,
build-support/lambda_requirements.py), so no module on its path may import cv2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO

# Any `import cv2` raises ImportError; then tools/worker_loads.py imports the worker's handler and blurs
# a photo of every accepted kind in every style with the verify step.
BLOCK_OPENCV_AND_RUN = (
    "import runpy, sys; sys.modules['cv2'] = None; "
    "runpy.run_path('tools/worker_loads.py', run_name='__main__')"
)


@pytest.mark.slow
def test_every_photo_kind_blurs_without_opencv() -> None:
    run = subprocess.run(
        [sys.executable, "-c", BLOCK_OPENCV_AND_RUN], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    libraries = [line for line in run.stdout.splitlines() if line.startswith("library ")]
    assert any("simplejpeg" in line for line in libraries)
    assert not [line for line in libraries if "opencv" in line or "cv2" in line]
