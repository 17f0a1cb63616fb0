"""`make invoke` and `make invoke-check`: the template's functions in Lambda containers (`sam local invoke`)
against the local stack, each outcome checked.

    python -m photoveil_dev.invoke event ApiFunction events/api_create_upload.json
    python -m photoveil_dev.invoke photo [tests/.images/astronaut.png]
    python -m photoveil_dev.invoke check          # every events/ file, then the photo end to end

Against `make run`'s stack if one runs with no workers of its own (`make run WORKERS=0`: its workers would
take the messages the containers are to handle), else against a stack started for the run and stopped after.
Needs `make build` and a Docker engine (scripts/invoke.sh sees to both).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from photoveil.local.template import load_template
from photoveil_dev.invoke.cases import CASES, Case, case_for, load_event, small_photo
from photoveil_dev.invoke.network import (
    NetworkError,
    container_endpoint,
    engine_os,
    forward_needs_root,
    pid_alive,
)
from photoveil_dev.invoke.runner import Runner, emulated, qemu_cpu, sam_parameters
from photoveil_dev.invoke.sam import (
    BUILT_TEMPLATE,
    SAM_OVERHEAD_S,
    SamInvoker,
    declared_variables,
    emulated_template,
    env_vars,
    function_timeout,
)
from photoveil_dev.invoke.stack import StackNotRunningError, StackState

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "template.yaml"
RUN_DATA_DIR = REPO / ".local"  # `make run`'s
WORK_DIR = REPO / ".local" / "invoke"  # logs, the env file, a stack of our own


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m photoveil_dev.invoke", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--data-dir", type=Path, help="a running stack's data dir (default: make run's, if usable)"
    )
    parser.add_argument(
        "--preflight", action="store_true", help="only say whether the run can start (before a build)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    event = sub.add_parser("event", help="one function on one event file")
    event.add_argument("function", nargs="?", default="", help="default: the events/ file's own")
    event.add_argument("event", nargs="?", default="", help="an events/ file, or one of your own")
    photo = sub.add_parser("photo", help="one photo end to end")
    photo.add_argument("photo", type=Path, nargs="?", help="default: the test photo of one face, 384 px")
    sub.add_parser("check", help="every events/ file, then a photo end to end")
    return parser


def _usable(data_dir: Path) -> StackState | None:
    """The stack running from DATA_DIR if it can serve the containers; None if none runs there."""
    try:
        stack = StackState.read(data_dir)
    except StackNotRunningError:
        return None
    if not pid_alive(stack.pid):
        return None  # a stack killed before it could remove its stack.json
    if stack.workers:
        raise StackNotRunningError(
            f"the stack of {data_dir} runs {stack.workers} worker(s) per queue, which would take the "
            "messages meant for the containers: stop it, or restart it with `make run WORKERS=0`"
        )
    return stack


@contextmanager
def local_stack(data_dir: Path | None) -> Iterator[StackState]:
    """A running stack with no workers of its own: DATA_DIR's, make run's, or one started for the run."""
    found = _usable(data_dir or RUN_DATA_DIR)
    if found is not None:
        print(f"==> against the local stack of {data_dir or RUN_DATA_DIR} (moto {found.moto})", flush=True)
        yield found
        return
    if data_dir is not None:
        raise StackNotRunningError(f"no local stack runs from {data_dir}")
    from photoveil_dev.launcher import launch, raised_limits

    started = time.monotonic()
    launched = launch(
        ["--workers", "0", *raised_limits()], data_dir=WORK_DIR / "stack", log=WORK_DIR / "stack.log"
    )
    print(f"==> local stack started for the run in {time.monotonic() - started:.1f} s ({launched.moto})")
    try:
        yield StackState.read(launched.data_dir)
    finally:
        launched.stop()


RAPID_IMAGE = "public.ecr.aws/lambda/python:3.13-rapid-arm64"  # what SAM runs the functions in
IMAGE_TIME_LIMIT_S = 120  # `uname -m` in a container, under emulation included


def image_verdict(architecture: str, machine: str) -> tuple[bool, str]:
    """Whether the functions ran as on Lambda arm64: the image says arm64 and its programs see aarch64."""
    line = f"{RAPID_IMAGE}: {architecture or '?'} image, `uname -m` in it: {machine or '?'}"
    return (architecture == "arm64" and machine == "aarch64"), line


def _image_check() -> tuple[bool, str]:
    inspect = ["docker", "image", "inspect", "-f", "{{.Architecture}}", RAPID_IMAGE]
    uname = ["docker", "run", "--rm", "--entrypoint", "uname", RAPID_IMAGE, "-m"]
    found = []
    for command in (inspect, uname):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=IMAGE_TIME_LIMIT_S)
            found.append(done.stdout.strip())
        except subprocess.TimeoutExpired:
            found.append(f"no answer in {IMAGE_TIME_LIMIT_S} s")
    return image_verdict(*found)


Check = tuple[str, Callable[[], str]]


def _event_checks(runner: Runner, function: str, event_file: Path) -> list[Check]:
    """One events/ file's check, or an event of the user's own, invoked and answered unchecked."""
    case = case_for(str(event_file))
    if case is None or case.function != (function or case.function):
        event = json.loads(event_file.read_text())
        return [(f"{function} {event_file}", lambda: _unchecked(runner, function, event, event_file))]
    return [_case_check(runner, case)]


def _case_check(runner: Runner, case: Case) -> Check:
    return f"{case.function} events/{case.event}", lambda: runner.run_case(case, load_event(case.event))


def _unchecked(runner: Runner, function: str, event: dict, event_file: Path) -> str:
    invoked = runner.invoke(function, event, event_file.name)
    answer = json.dumps(invoked.response)[:300]
    return f"answered (not an events/ file of that function: nothing checked): {answer}"


def usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with `make invoke`'s FN and EVENT, or None."""
    if args.command != "event":
        return None
    if not args.event:
        return "make invoke needs EVENT=events/<file> (and FN=<function> for a file not in events/)"
    if not Path(args.event).is_file():
        return f"no such event file: {args.event} (see events/)"
    if not args.function and case_for(args.event) is None:
        return f"{args.event} is not an events/ file: say which function takes it, FN=<function>"
    return None


def _template(invoked: dict) -> Path:
    """The built template SAM runs; under emulation, a copy whose fixed timeouts are longer (the worker's
    comes from its parameter, WorkerTimeout) and whose containers are given QEMU_CPU."""
    if not emulated():
        return BUILT_TEMPLATE
    copy = BUILT_TEMPLATE.with_name("template.emulated.json")  # beside it: CodeUri paths are relative
    copy.write_text(json.dumps(invoked, indent=1))
    return copy


def _run_template() -> dict:
    """The template as SAM will run it (the emulated copy's, under emulation)."""
    built = load_template(BUILT_TEMPLATE)
    return emulated_template(built, qemu_cpu=qemu_cpu()) if emulated() else built


def lanes(checks: list[tuple[Case, Check]], end_to_end: Check) -> list[list[Check]]:
    """Two lanes, side by side: the cases whose seeds remake the same fixed jobs one after another in the
    first, the others shared out, the photo first in the second (it takes longest)."""
    same_job = [check for case, check in checks if case.jobs]
    others = [check for case, check in checks if not case.jobs]
    half = (len(others) + 1) // 2
    return [same_job + others[:half], [end_to_end, *others[half:]]]


def _selected(args: argparse.Namespace, runner: Runner) -> list[list[Check]]:
    """What to run, in lanes: each lane's checks one after another, the lanes side by side."""
    from photoveil_dev.invoke.photo import run_photo

    if args.command == "event":
        return [_event_checks(runner, args.function, Path(args.event))]
    photo = args.photo if args.command == "photo" and args.photo else small_photo(WORK_DIR)
    end_to_end = (f"a photo end to end ({photo.name})", lambda: run_photo(runner, photo))
    if args.command == "photo":
        return [[end_to_end]]
    return lanes([(case, _case_check(runner, case)) for case in CASES], end_to_end)


def _run_lanes(runner: Runner, lanes: list[list[Check]]) -> list[bool]:
    def lane(checks: list[Check]) -> list[bool]:
        return [runner.run(label, check) for label, check in checks]

    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        return [ok for results in pool.map(lane, lanes) for ok in results]


def preflight(args: argparse.Namespace) -> str | None:
    """Why the run cannot go on, said before anything is built or started; None if it can."""
    return usage_error(args) or forward_needs_root(dict(os.environ), engine_os(), os.geteuid())


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    args = _parser().parse_args(argv)
    refusal = preflight(args)
    if refusal or args.preflight:
        if refusal:
            print(f"invoke: {refusal}", file=sys.stderr)
        return 2 if refusal else 0
    if not BUILT_TEMPLATE.is_file():
        print(f"{BUILT_TEMPLATE} is missing: run `make build`", file=sys.stderr)
        return 2
    try:
        return _invoke(args)
    except (StackNotRunningError, NetworkError) as error:
        print(f"invoke: {error}", file=sys.stderr)
        return 2


def _invoker(env_file: Path) -> SamInvoker:
    template, parameters = _run_template(), sam_parameters()
    limits = {
        name: function_timeout(template, name, parameters) + SAM_OVERHEAD_S
        for name, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }
    return SamInvoker(
        env_file=env_file,
        parameters=parameters,
        log_dir=WORK_DIR / "logs",
        template=_template(template),
        time_limits=limits,
    )


def _invoke(args: argparse.Namespace) -> int:
    started = time.monotonic()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    with local_stack(args.data_dir) as stack, container_endpoint(stack.moto) as endpoint:
        env_file = WORK_DIR / "env.json"
        document = env_vars(declared_variables(load_template(TEMPLATE)), stack.environment, endpoint)
        env_file.write_text(json.dumps(document, indent=2))
        invoker = _invoker(env_file)
        runner = Runner.for_stack(stack, invoker, TEMPLATE)
        print(f"==> containers reach the stack at {endpoint}", flush=True)
        print(
            f"    --template {invoker.template.relative_to(REPO)} --env-vars {env_file.relative_to(REPO)} "
            f"--parameter-overrides {invoker.parameters}",
            flush=True,
        )
        results = _run_lanes(runner, _selected(args, runner))
        arm64, line = _image_check()
        print(f"{'==>' if arm64 else 'FAIL'} the functions ran in {line}", flush=True)
    total = time.monotonic() - started
    print(
        f"invoke: {sum(results)} of {len(results)} as events/README.md says, "
        f"{'in' if arm64 else 'NOT in'} arm64 containers, {runner.invocations} sam local invoke(s) in "
        f"{total:.0f} s (logs: {invoker.log_dir.relative_to(REPO)})",
        flush=True,
    )
    return 0 if all(results) and arm64 else 1


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends the run as Ctrl-C would: through every `finally`, so the forward's rules, route_localnet
    and a stack started for the run are undone (Python's default for SIGTERM skips them)."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main(sys.argv[1:]))
