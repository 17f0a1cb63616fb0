"""Start `photoveil local` in a subprocess on free ports and wait until it serves (tests and benches).

One launcher for every caller that needs a real local stack: the e2e and robustness fixtures and the
bench scripts. It runs the venv's own `photoveil` console script (what `make run` calls), so what is
tested is the installed command, not an import of its internals.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from photoveil.local.account import Credentials, client
from photoveil.local.cli import EXIT_PORT_IN_USE


def raised_limits(factor: int = 1000) -> list[str]:
    """`photoveil local` arguments that raise every quota FACTOR times over its deployed default.

    Every test request and bench upload comes from 127.0.0.1, one client to the quotas: suites and
    benches raise the limits explicitly, and a stack started without these keeps a deployment's defaults.
    """
    from photoveil.local.template import load_template

    repo = Path(__file__).resolve().parents[2]
    parameters = load_template(repo / "template.yaml")["Parameters"]
    limits = (
        "UploadsPerClientHour",
        "UploadsPerClientDay",
        "OwnerActionsPerClientHour",
        "OwnerActionsPerDay",
        "EmailsPerRecipientDay",
        "EmailsPerClientDay",
        "UploadsPerDay",
        "ReportsPerClientHour",
        "ReportsPerDay",
    )
    values = {name: int(parameters[name]["Default"]) * factor for name in limits}
    return ["--parameter-overrides", *(f"{name}={value}" for name, value in values.items())]


class LaunchError(RuntimeError):
    """`photoveil local` is missing, exited during start-up, or did not start in time."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def photoveil_script() -> Path:
    """The `photoveil` console script next to this interpreter."""
    script = Path(sys.executable).with_name("photoveil")
    if not script.exists():
        raise LaunchError(f"{script} is missing: run `make install`")
    return script


@dataclass
class LaunchedStack:
    """A running `photoveil local` that we started (and so may stop)."""

    url: str  # gateway: site, API, /p/, /outbox
    moto: str  # the emulator endpoint (S3, SQS, DynamoDB, SES)
    data_dir: Path
    log: Path
    proc: subprocess.Popen[bytes]
    killed: bool = False  # set by stop() if SIGINT was not enough

    def client(self, service: str) -> Any:
        """A boto3 client for the emulator signing as the stack's admin (a private session: the stack's
        fault layer never sees it)."""
        return client(service, self.moto, Credentials.from_json(self.state()["credentials"]))

    def state(self) -> dict[str, Any]:
        """DATA_DIR/stack.json: names and URLs of the running stack's resources."""
        return json.loads((self.data_dir / "stack.json").read_text())

    def log_text(self) -> str:
        """Everything the stack wrote to stdout and stderr so far."""
        return self.log.read_text(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        """The last ``chars`` characters of the log (for error messages)."""
        return self.log_text()[-chars:]

    def stop(self, timeout_s: float = 60) -> int:
        """SIGINT (what Ctrl-C sends), as a user stops `make run`; kill only if it does not stop in time.

        Returns the exit code; ``killed`` tells whether the kill was needed.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.killed = True
                return self.proc.wait()
        return self.proc.returncode


S = TypeVar("S", bound=LaunchedStack)


def launch(
    extra_args: Sequence[str],
    *,
    data_dir: Path,
    log: Path,
    port: int | None = None,
    moto_port: int | None = None,
    timeout_s: float = 120,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stack_type: type[S] = LaunchedStack,  # type: ignore[assignment]
) -> S:
    """Start `photoveil local --port P --moto-port M --data-dir D EXTRA_ARGS`; wait for GET /config.json.

    ``env`` is added to this process's environment. Raises LaunchError with the log tail if the process
    exits first or does not serve /config.json (and write stack.json) within ``timeout_s``; in the latter
    case it is stopped first.
    """

    def once() -> S:
        ports = (port or free_port(), moto_port or free_port())
        return _launch_once(extra_args, data_dir, log, *ports, timeout_s, env, cwd, stack_type)

    if port is None and moto_port is None:
        for _ in range(PORT_ATTEMPTS - 1):
            try:
                return once()
            except PortTakenError:
                # free_port() only found the ports free: another process on a shared machine may bind
                # them before the stack does. Ports we chose are chosen again.
                pass
    return once()


class PortTakenError(LaunchError):
    """The stack exited because a port it was given was taken meanwhile."""


# How often launch() picks new ports when the ones it picked were taken before the stack bound them.
PORT_ATTEMPTS = 3


def _launch_once(
    extra_args: Sequence[str],
    data_dir: Path,
    log: Path,
    port: int,
    moto_port: int,
    timeout_s: float,
    env: Mapping[str, str] | None,
    cwd: Path | None,
    stack_type: type[S],
) -> S:
    ports = ["--port", str(port), "--moto-port", str(moto_port), "--data-dir", str(data_dir)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:  # the child keeps its own handle; ours can close
        proc = subprocess.Popen(
            [str(photoveil_script()), "local", *ports, *extra_args],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            # unbuffered: the log tail in an error message must show the last lines written
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    stack = stack_type(
        url=f"http://127.0.0.1:{port}",
        moto=f"http://127.0.0.1:{moto_port}",
        data_dir=data_dir,
        log=log,
        proc=proc,
    )
    _wait_until_serving(stack, timeout_s)
    return stack


def _wait_until_serving(stack: LaunchedStack, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if stack.proc.poll() is not None:
            error = PortTakenError if stack.proc.returncode == EXIT_PORT_IN_USE else LaunchError
            raise error(f"`photoveil local` exited with {stack.proc.returncode}:\n{stack.log_tail()}")
        try:
            with urllib.request.urlopen(f"{stack.url}/config.json", timeout=2) as response:
                json.load(response)
            # the stack writes stack.json before its gateway answers; checked so callers may rely on it
            if (stack.data_dir / "stack.json").exists():
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            stack.stop()
            raise LaunchError(
                f"`photoveil local` did not serve /config.json in {timeout_s} s; see {stack.log}:\n"
                + stack.log_tail()
            )
        time.sleep(0.3)
