"""The local stack, started once per test session as the real command (`photoveil local`) in a subprocess.

Shared by every e2e test (the browser tests use ``local_stack.url``). It runs with a short visibility
timeout and the fault endpoint enabled, so recovery tests need not wait three minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photoveil_dev.launcher import (
    LaunchedStack,
    LaunchError,
    free_port,
    launch,
    photoveil_script,
    raised_limits,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
VISIBILITY_TIMEOUT_S = 8  # template: 180 s; short here so a crashed photo comes back quickly
START_TIMEOUT_S = 90


def photoveil_command() -> list[str]:
    """The installed `photoveil` console script of this venv (what `make run` calls)."""
    try:
        return [str(photoveil_script())]
    except LaunchError as error:
        pytest.fail(str(error))


class RunningStack(LaunchedStack):
    """The launcher's stack under the names these tests use."""

    def boto3_client(self, service: str) -> Any:
        return self.client(service)


def start_stack(args: list[str], log: Path, data_dir: Path) -> RunningStack:
    """Start `photoveil local ARGS` and wait until it serves /config.json."""
    photoveil_command()  # "run `make install`" as a test failure
    try:
        return launch(
            args,
            data_dir=data_dir,
            log=log,
            timeout_s=START_TIMEOUT_S,
            env={"POWERTOOLS_LOG_LEVEL": "INFO"},
            cwd=REPO,
            stack_type=RunningStack,
        )
    except LaunchError as error:
        pytest.fail(str(error))


def stop_stack(stack: LaunchedStack, timeout_s: float = 60) -> int:
    """Ctrl-C (SIGINT), as a user stops `make run`; kill only if it does not stop in time."""
    code = stack.stop(timeout_s)
    if stack.killed:
        pytest.fail(f"`photoveil local` did not stop within {timeout_s} s of SIGINT")
    return code


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One `photoveil local` for the session (real handlers, moto, in-process detector)."""
    from photoveil.imaging.model import model_path

    model_path()  # raises "run `make install`" now rather than as a photo stuck in the queue
    stack = start_stack(
        [
            "--visibility-timeout",
            str(VISIBILITY_TIMEOUT_S),
            "--allow-faults",
            "--workers",
            "2",
            *raised_limits(),
        ],
        log=ARTIFACTS / "local-stack.log",
        data_dir=tmp_path_factory.mktemp("local-stack"),
    )
    try:
        yield stack
    finally:
        stop_stack(stack)


class StackLauncher:
    """Start and stop extra stacks (for tests of start-up and shutdown themselves)."""

    command = staticmethod(photoveil_command)
    free_port = staticmethod(free_port)

    def __init__(self) -> None:
        self.started: list[LaunchedStack] = []

    def start(self, args: list[str], log: Path, data_dir: Path) -> RunningStack:
        stack = start_stack(args, log=log, data_dir=data_dir)
        self.started.append(stack)
        return stack

    def stop(self, stack: LaunchedStack, timeout_s: float = 60) -> int:
        return stop_stack(stack, timeout_s)

    def stop_leftovers(self) -> None:
        """A test that failed before its own stop must not leave a stack (and its ports) behind."""
        for stack in self.started:
            if stack.proc.poll() is None:
                stack.stop(30)


@pytest.fixture
def launcher() -> Iterator[StackLauncher]:
    stacks = StackLauncher()
    try:
        yield stacks
    finally:
        stacks.stop_leftovers()
