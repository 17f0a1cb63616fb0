"""A small `make load`: 40 photos (4 of them bad) in one burst through the local stack, all accounted for.

Runs the real bench/load.py (the script behind `make load`) and checks its accounting, not its timings:
every photo uploaded ends done or failed (or waits in the DLQ), none is lost, and exactly the bad files
are the failures, each with its stable code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PHOTOS, BAD_EVERY = 40, 10


def test_a_small_burst_loses_nothing(astronaut_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "load.py"),
            "--photos",
            str(PHOTOS),
            "--workers",
            "2",
            "--side",
            "160",
            "--bad-every",
            str(BAD_EVERY),
            "--upload-threads",
            "8",
            "--max-seconds",
            "300",
            "--log",
            str(REPO / "test-artifacts" / "load-small-stack.log"),
            "--json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=REPO,
    )
    assert run.stdout.strip(), run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    bad = PHOTOS // BAD_EVERY
    assert report["upload_errors"] == 0, report
    assert report["photos_in"] == PHOTOS, report
    assert not report["timed_out"], report
    assert report["lost"] == 0, report
    assert report["done"] + report["failed"] + report["in_dlq"] == PHOTOS, report
    assert report["in_dlq"] == 0, report  # nothing transient happened: nothing should need a redrive
    assert report["failed"] == report["failed_as_expected"] == bad, report
    assert report["done"] == PHOTOS - bad, report
    assert run.returncode == 0, run.stderr[-3000:]
