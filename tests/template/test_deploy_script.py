"""scripts/deploy.sh against stand-ins for the AWS and SAM command lines (nothing here can deploy)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

FAKE_AWS = """#!/usr/bin/env bash
echo "aws $*" >> "$CALLS"
case "$*" in
  "sts get-caller-identity"*) echo 123456789012 ;;
  "cloudformation describe-stacks"*StackStatus*)
    if [[ "$STATUS" == NONE ]]; then echo "Stack does not exist" >&2; exit 254; fi
    echo "$STATUS" ;;
  "cloudformation describe-stacks"*) echo "https://example.invalid" ;;
esac
"""
FAKE_SAM = """#!/usr/bin/env bash
echo "sam $*" >> "$CALLS"
"""


def deploy(tmp_path: Path, status: str) -> tuple[int, list[str], str]:
    """Run deploy.sh with the stack in ``status``; returns its exit code, the commands it ran, its output."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("aws", FAKE_AWS), ("sam", FAKE_SAM)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "STATUS": status,
        "SAM": str(bin_dir / "sam"),
        "SKIP_BUILD": "1",
    }
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "deploy.sh")],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    ran = calls.read_text().splitlines() if calls.exists() else []
    return done.returncode, ran, done.stdout + done.stderr


def _commands(ran: list[str]) -> list[str]:
    return [" ".join(line.split()[:3]) for line in ran if not line.startswith("aws sts")]


def test_a_stack_whose_creation_rolled_back_is_deleted_then_deployed_guided(tmp_path: Path) -> None:
    code, ran, output = deploy(tmp_path, "ROLLBACK_COMPLETE")
    assert code == 0, output
    commands = _commands(ran)
    delete = commands.index("aws cloudformation delete-stack")
    assert commands[delete + 1] == "aws cloudformation wait"
    assert any(c.startswith("sam deploy --guided") for c in commands[delete:])


@pytest.mark.parametrize(("status", "guided"), [("NONE", True), ("UPDATE_COMPLETE", False)])
def test_first_deploy_is_guided_and_later_ones_are_not(tmp_path: Path, status: str, guided: bool) -> None:
    code, ran, output = deploy(tmp_path, status)
    assert code == 0, output
    sam = [line for line in ran if line.startswith("sam deploy")]
    assert len(sam) == 1 and ("--guided" in sam[0]) is guided
    assert not any("delete-stack" in line for line in ran)
    if guided:
        assert "ApiFunction has no authentication" in output  # the answer the default (N) gets wrong


def test_a_stack_in_progress_is_left_alone(tmp_path: Path) -> None:
    code, ran, output = deploy(tmp_path, "UPDATE_IN_PROGRESS")
    assert code == 1 and "wait for it to finish" in output
    assert not any(line.startswith("sam") or "delete-stack" in line for line in ran)
