"""checkov finds nothing left in template.yaml: every finding is fixed or skipped there with a reason."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from .conftest import REPO, TEMPLATE


@pytest.mark.slow
def test_checkov_reports_no_failed_checks() -> None:
    # One run (~20 s once installed); scripts/checkov.sh creates .venv-checkov on first use.
    run = subprocess.run(
        ["bash", "scripts/checkov.sh", "--output", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if not (REPO / ".venv-checkov" / "bin" / "checkov").exists():
        message = f"checkov could not be installed into .venv-checkov: {run.stderr[-500:]}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)  # in CI a missing checkov is a failure, not a pass by omission
        pytest.skip(message)
    report = json.loads(run.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["parsing_errors"] == 0
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 0


def test_every_checkov_skip_gives_a_reason() -> None:
    text = TEMPLATE.read_text()
    skips = re.findall(r"- id: (CKV2?_AWS_\d+)\n\s+comment: (.*)", text)
    assert skips, "expected the documented checkov skips"
    assert len(skips) == len(re.findall(r"- id: CKV", text))
    for check, reason in skips:
        assert len(reason.split()) >= 6, f"{check}: say why it does not apply"
