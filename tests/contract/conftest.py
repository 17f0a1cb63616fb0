"""A local stack of the contract tests' own, and a count of every request Schemathesis sends it.

Its own stack (not the e2e suite's): the fuzzer creates hundreds of jobs, reports and edits, which must
not show up in another suite's outbox or queues, and `pytest tests/contract` starts only what it needs.
Every request comes from 127.0.0.1, one client to the quotas, so they are raised (as every suite does)
and no 429 cuts the run short.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# recorder.py sits next to the tests; pytest's "prepend" import mode puts this folder on sys.path.
from recorder import Sent

from photoveil_dev.launcher import LaunchedStack, LaunchError, launch, raised_limits

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
START_TIMEOUT_S = 90


SENT = Sent()


@pytest.fixture(scope="session")
def sent() -> Sent:
    return SENT


# Module scope: only test_fuzz.py needs it, and it stops when that module is done, not at the session's end.
@pytest.fixture(scope="module")
def contract_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaunchedStack]:
    """`photoveil local` with the in-process detector, one worker per queue, raised quotas, a report
    threshold of 1 and the fault endpoint (test_fuzz.py makes one server error on purpose)."""
    from photoveil.imaging.model import model_path

    model_path()  # "run `make install`" now rather than as photos stuck in the queue
    try:
        stack = launch(
            # One report withdraws a photo, so the links meet withdrawn photos too (every report comes
            # from one address, which counts once per photo).
            [
                "--workers",
                "1",
                "--allow-faults",
                *raised_limits(),
                "--parameter-overrides",
                "ReportThreshold=1",
            ],
            data_dir=tmp_path_factory.mktemp("contract-stack"),
            log=ARTIFACTS / "contract-stack.log",
            timeout_s=START_TIMEOUT_S,
            env={"POWERTOOLS_LOG_LEVEL": "INFO"},
            cwd=REPO,
        )
    except LaunchError as error:
        pytest.fail(str(error))
    try:
        yield stack
    finally:
        stack.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SENT.requests:
        terminalreporter.write_sep("-", "Schemathesis against the local stack")
        terminalreporter.write_line(SENT.summary())
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "contract-requests.json").write_text(json.dumps(SENT.requests, indent=0))
