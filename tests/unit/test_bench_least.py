"""bench/least.py replays the detector's network passes alone: its plan must be the passes a real run
makes (detection on the upload, verify's looks on the published photo), and recording must leave the
detector as it was."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import cv2
import pytest

from photoveil.imaging.detectors.centerface import CenterFaceDetector

LEAST = Path(__file__).resolve().parents[2] / "bench" / "least.py"


@pytest.fixture(scope="module")
def least() -> ModuleType:
    spec = importlib.util.spec_from_file_location("least", LEAST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plan_is_the_passes_a_verified_run_makes(least: ModuleType, astronaut_path: Path) -> None:
    detector = CenterFaceDetector(threads=1)
    plan = least.record(detector, astronaut_path.read_bytes())
    # 512 px: the fine pass enlarges it 2x (1024 px, one piece), so a coarse pass follows (0006).
    assert plan["upload"] == [[2.0, [[1024, 1024]]], [1.0, [[512, 512]]]]
    # The astronaut's face is blurred, so verify looks again at the published photo, in windows.
    assert plan["published"], "verify ran no look"
    for scale, pieces in plan["published"]:
        assert scale in (2.0, 1.0) and all(0 < h <= 1024 and 0 < w <= 1024 for h, w in pieces)
    assert not {"_run_tiled", "_infer", "detect_near"} & set(vars(detector)), "detector left patched"


def test_the_replay_writes_the_upload_encoded(
    least: ModuleType, astronaut_path: Path, tmp_path: Path
) -> None:
    plan = least.record(CenterFaceDetector(threads=1), astronaut_path.read_bytes())
    plan_path, out = tmp_path / "plan.json", tmp_path / "out.jpg"
    plan_path.write_text(json.dumps(plan))
    least.main(str(astronaut_path), str(out), str(plan_path))
    assert cv2.imread(str(out)).shape == (512, 512, 3)
