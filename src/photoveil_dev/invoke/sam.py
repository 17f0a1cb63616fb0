"""`sam local invoke FUNCTION --event FILE`, as the function itself would be run by Lambda, against the local
stack: the function's role's keys, and its environment from the template with `--env-vars` giving it the
stack's names and endpoint (SAM alone passes each `!Ref` through as the resource's logical id).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photoveil.adapters.clients import ENDPOINT_VARIABLE
from photoveil.local.account import REGION, Credentials
from photoveil.local.intrinsics import Resolver

REPO = Path(__file__).resolve().parents[3]
SAM = REPO / ".venv-sam" / "bin" / "sam"
BUILT_TEMPLATE = REPO / ".aws-sam" / "build" / "template.yaml"
# Variables the local stack sets for its own console (log level, no X-Ray daemon): an invoked function
# keeps the template's, and SAM tells Powertools it runs locally (AWS_SAM_LOCAL).
CONSOLE_ONLY = ("POWERTOOLS_",)


# Under emulation a function's cold start alone can take longer than its deployed Timeout (the API's
# 10 s: Python and boto3 start in about 9 s on a loaded 2-core machine).
EMULATION_TIMEOUT_FACTOR = 10
LAMBDA_MAX_TIMEOUT_S = 900
LAMBDA_DEFAULT_TIMEOUT_S = 3
# What `sam local invoke` may take beyond the function's own Timeout: SAM's start, the container's
# creation and, under emulation, its runtime's start.
SAM_OVERHEAD_S = 120


class InvokeError(RuntimeError):
    """`sam local invoke` failed, or the function answered with an error instead of a response."""


def function_properties(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Globals' Function section and each function's Properties: where a function's settings are (the
    same objects as in TEMPLATE, so a caller may change them)."""
    sections = [(template.get("Globals") or {}).get("Function") or {}]
    sections += [
        r.get("Properties") or {}
        for r in template["Resources"].values()
        if r.get("Type") == "AWS::Serverless::Function"
    ]
    return sections


def declared_variables(template: dict[str, Any]) -> set[str]:
    """Every environment variable the template declares (Globals and each function's own): the only ones
    `sam local invoke --env-vars` can set."""
    sections = function_properties(template)
    return {name for s in sections for name in ((s.get("Environment") or {}).get("Variables") or {})}


def env_vars(declared: Iterable[str], environment: dict[str, str], endpoint: str) -> dict[str, Any]:
    """The `--env-vars` document: every declared variable as the local stack gives it to its functions
    (empty where the stack sets none, e.g. no CloudFront distribution), the endpoint the function reaches
    the stack at, and the template's own values for what the stack sets only for its console."""
    values = {
        name: environment.get(name, "")
        for name in sorted(declared)
        if not name.startswith(CONSOLE_ONLY) and name != ENDPOINT_VARIABLE
    }
    return {"Parameters": values | {ENDPOINT_VARIABLE: endpoint}}


def emulated_template(
    built: dict[str, Any], factor: int = EMULATION_TIMEOUT_FACTOR, qemu_cpu: str = ""
) -> dict[str, Any]:
    """BUILT (the template `sam build` wrote) with each function's fixed Timeout FACTOR times longer, at
    most Lambda's 900 s. A Timeout given by a parameter (the worker's WorkerTimeout) is left to it. With
    QEMU_CPU, every container is also given QEMU_CPU (a variable declared in Globals is the only way SAM
    puts one into the container: its --container-env-vars applies only when debugging)."""
    emulated = json.loads(json.dumps(built))
    for properties in function_properties(emulated):
        if isinstance(properties.get("Timeout"), int):
            properties["Timeout"] = min(properties["Timeout"] * factor, LAMBDA_MAX_TIMEOUT_S)
    if qemu_cpu:
        globals_ = emulated.setdefault("Globals", {}).setdefault("Function", {})
        variables = globals_.setdefault("Environment", {}).setdefault("Variables", {})
        variables["QEMU_CPU"] = qemu_cpu
    return emulated


def function_timeout(template: dict[str, Any], function: str, parameters: dict[str, str]) -> int:
    """FUNCTION's Timeout in TEMPLATE (its own, else Globals', else Lambda's 3 s), a parameter's resolved
    from PARAMETERS or its default."""
    own = template["Resources"][function].get("Properties") or {}
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    timeout = own.get("Timeout", globals_.get("Timeout", LAMBDA_DEFAULT_TIMEOUT_S))
    return int(Resolver(template, refs=parameters)(timeout))


def credentials_environment(keys: Credentials) -> dict[str, str]:
    """What SAM reads the function's credentials and region from, and passes into the container."""
    env = {
        "AWS_ACCESS_KEY_ID": keys.access_key_id,
        "AWS_SECRET_ACCESS_KEY": keys.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    if keys.session_token:
        env["AWS_SESSION_TOKEN"] = keys.session_token
    return env


@dataclass(frozen=True)
class Invoked:
    """What one `sam local invoke` gave back."""

    function: str
    event: str  # the event file's name, or what the end-to-end run made
    response: Any  # the function's response (JSON), as SAM prints it on stdout
    logs: str  # the container's output: the function's log lines, START/END/REPORT
    seconds: float


@dataclass(frozen=True)
class SamInvoker:
    """Runs `sam local invoke` with a fixed environment file and parameter overrides."""

    env_file: Path
    parameters: dict[str, str]  # --parameter-overrides (e.g. the worker's emulated timeout)
    log_dir: Path
    template: Path = BUILT_TEMPLATE
    # How long each function's `sam local invoke` may take (its Timeout + SAM_OVERHEAD_S), by function.
    time_limits: dict[str, int] = field(default_factory=dict)

    def command(self, function: str, event_file: Path) -> list[str]:
        command = [str(SAM), "local", "invoke", function, "--template", str(self.template)]
        command += ["--event", str(event_file), "--env-vars", str(self.env_file)]
        if self.parameters:
            overrides = [f"ParameterKey={k},ParameterValue={v}" for k, v in self.parameters.items()]
            command += ["--parameter-overrides", *overrides]
        return command

    def invoke(self, function: str, event: dict[str, Any], name: str, keys: Credentials) -> Invoked:
        """Invoke FUNCTION with EVENT (called NAME in logs) signing as KEYS; InvokeError unless it answers."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=self.log_dir, delete=False) as file:
            json.dump(event, file)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        # SAM_SKIP_PULL_IMAGE comes from scripts/invoke.sh when the image is the stand-in.
        env |= credentials_environment(keys) | {"SAM_CLI_TELEMETRY": "0"}
        limit = self.time_limits.get(function, LAMBDA_MAX_TIMEOUT_S + SAM_OVERHEAD_S)
        started = time.monotonic()
        try:
            done = run_within(self.command(function, Path(file.name)), env=env, limit_s=limit)
        finally:
            Path(file.name).unlink()
        seconds = time.monotonic() - started
        log = self.log_dir / f"{function}-{Path(name).stem}.log"
        log.write_text(done.stderr + "\n--- stdout ---\n" + done.stdout)
        if done.returncode is None:
            raise InvokeError(f"sam local invoke {function} gave no answer in {limit} s, stopped ({log})")
        return Invoked(function, name, _response(done, function, log), done.stderr, seconds)


@dataclass(frozen=True)
class Finished:
    """What a command printed, and its exit code (None: stopped at its time limit)."""

    returncode: int | None
    stdout: str
    stderr: str


def run_within(command: list[str], *, env: dict[str, str], limit_s: float, grace_s: float = 30) -> Finished:
    """COMMAND (in the repository), stopped if it runs longer than LIMIT_S: SIGINT first, which SAM
    answers by removing its container, then SIGKILL after GRACE_S."""
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=limit_s)
        return Finished(process.returncode, stdout, stderr)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        return Finished(None, stdout or "", stderr or "")
    except BaseException:  # SIGTERM (SystemExit) or Ctrl-C while waiting: no SAM nor container left
        _stop(process, grace_s=10)
        raise


def _stop(process: subprocess.Popen[str], grace_s: float) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _response(done: Finished, function: str, log: Path) -> Any:
    """The function's response: SAM prints it alone on stdout's last line."""
    lines = done.stdout.strip().splitlines()
    try:
        response = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        response = None
    if done.returncode != 0 or response is None:
        raise InvokeError(f"sam local invoke {function} exited {done.returncode} with no response ({log})")
    if isinstance(response, dict) and "errorType" in response:
        raise InvokeError(f"{function} failed: {response.get('errorType')}: {response.get('errorMessage')}")
    return response
