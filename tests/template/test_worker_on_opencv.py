"""The worker's image core runs on OpenCV (docs/decisions/0017-image-core-on-opencv.md): its Lambda
package ships it (src/Makefile, build-support/lambda_requirements.py), and no second JPEG codec."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO

# Any `import simplejpeg` (the codec of the core without OpenCV, decision 0016) raises ImportError; then
# tools/worker_loads.py imports the worker's handler and blurs a photo of every accepted kind in every
# style with the verify step.
BLOCK_SECOND_CODEC_AND_RUN = (
    "import runpy, sys; sys.modules['simplejpeg'] = None; "
    "runpy.run_path('tools/worker_loads.py', run_name='__main__')"
)


@pytest.mark.slow
def test_every_photo_kind_blurs_with_opencv_and_no_second_codec() -> None:
    run = subprocess.run(
        [sys.executable, "-c", BLOCK_SECOND_CODEC_AND_RUN],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    libraries = [line for line in run.stdout.splitlines() if line.startswith("library ")]
    modules = {line.split()[1] for line in run.stdout.splitlines() if line.startswith("module ")}
    assert "cv2" in modules
    assert any("cv2" in line for line in libraries)
    assert not [line for line in libraries if "simplejpeg" in line]
