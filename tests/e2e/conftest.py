"""The local stack, started once per test session as the real command (`photoveil local`) in a subprocess.

Shared by every e2e test (the browser tests use ``local_stack.url``). It runs with a short visibility
timeout and the fault endpoint enabled, so recovery tests need not wait three minutes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
VISIBILITY_TIMEOUT_S = 8  # template: 180 s; short here so a crashed photo comes back quickly
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def photoveil_command() -> list[str]:
    """The installed `photoveil` console script of this venv (what `make run` calls)."""
    script = Path(sys.executable).with_name("photoveil")
    if not script.exists():
        pytest.fail(f"{script} is missing: run `make install`")
    return [str(script)]


@dataclass
class RunningStack:
    url: str  # gateway: site, API, /p/, /outbox
    moto: str  # the emulator endpoint (S3, SQS, DynamoDB, SES)
    data_dir: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def boto3_client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session().client(
            service,
            endpoint_url=self.moto,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def state(self) -> dict[str, Any]:
        """DATA_DIR/stack.json: names and URLs of the running stack's resources."""
        return json.loads((self.data_dir / "stack.json").read_text())

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_stack(args: list[str], log: Path, data_dir: Path) -> RunningStack:
    """Start `photoveil local ARGS` and wait until it serves /config.json."""
    port, moto_port = free_port(), free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *photoveil_command(),
                "local",
                "--port",
                str(port),
                "--moto-port",
                str(moto_port),
                "--data-dir",
                str(data_dir),
                *args,
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"`photoveil local` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/config.json", timeout=2) as response:
                json.load(response)
            break
        except OSError:
            if time.monotonic() > deadline:
                stop_stack(proc)
                pytest.fail(f"`photoveil local` did not serve /config.json in {START_TIMEOUT_S} s; see {log}")
            time.sleep(0.3)
    return RunningStack(url=url, moto=f"http://127.0.0.1:{moto_port}", data_dir=data_dir, log=log, proc=proc)


def stop_stack(proc: subprocess.Popen[bytes], timeout_s: float = 60) -> int:
    """Ctrl-C (SIGINT), as a user stops `make run`; kill only if it does not stop in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"`photoveil local` did not stop within {timeout_s} s of SIGINT")
    return proc.returncode


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One `photoveil local` for the session (real handlers, moto, in-process detector)."""
    from photoveil.model import model_path

    model_path()  # raises "run `make install`" now rather than as a photo stuck in the queue
    stack = start_stack(
        ["--visibility-timeout", str(VISIBILITY_TIMEOUT_S), "--allow-faults", "--workers", "2"],
        log=ARTIFACTS / "local-stack.log",
        data_dir=tmp_path_factory.mktemp("local-stack"),
    )
    try:
        yield stack
    finally:
        stop_stack(stack.proc)


class StackLauncher:
    """Start and stop extra stacks (for tests of start-up and shutdown themselves)."""

    command = staticmethod(photoveil_command)
    start = staticmethod(start_stack)
    stop = staticmethod(stop_stack)
    free_port = staticmethod(free_port)


@pytest.fixture(scope="session")
def launcher() -> StackLauncher:
    return StackLauncher()
