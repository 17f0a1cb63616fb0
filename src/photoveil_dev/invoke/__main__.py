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
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from photoveil.local.template import load_template
from photoveil_dev.invoke.cases import CASES, SAME_JOB_EVENTS, case_for, load_event, small_photo
from photoveil_dev.invoke.network import NetworkError, container_endpoint
from photoveil_dev.invoke.runner import Runner, emulated, sam_parameters
from photoveil_dev.invoke.sam import (
    BUILT_TEMPLATE,
    SamInvoker,
    declared_variables,
    emulated_template,
    env_vars,
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
    sub = parser.add_subparsers(dest="command", required=True)
    event = sub.add_parser("event", help="one function on one event file")
    event.add_argument("function")
    event.add_argument("event", type=Path)
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
    if not Path(f"/proc/{stack.pid}").exists():
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


def _image_line() -> str:
    """Which image SAM runs the functions in, and the machine its programs see."""
    image = "public.ecr.aws/lambda/python:3.13-rapid-arm64"
    inspect = ["docker", "image", "inspect", "-f", "{{.Architecture}}", image]
    arch = subprocess.run(inspect, capture_output=True, text=True).stdout.strip()
    uname = ["docker", "run", "--rm", "--entrypoint", "uname", image, "-m"]
    machine = subprocess.run(uname, capture_output=True, text=True).stdout.strip()
    return f"{image}: {arch or '?'} image, `uname -m` in it: {machine or '?'}"


def _event_checks(
    runner: Runner, function: str | None, event_file: Path | None
) -> list[tuple[str, Callable[[], str]]]:
    """What to run: (label, check) pairs."""
    if event_file is None:
        return [(f"{case.function} events/{case.event}", _case_check(runner, case)) for case in CASES]
    case = case_for(str(event_file))
    if case is None or case.function != function:
        event = json.loads(event_file.read_text())
        return [(f"{function} {event_file}", lambda: _unchecked(runner, function or "", event, event_file))]
    return [(f"{case.function} events/{case.event}", _case_check(runner, case))]


def _case_check(runner: Runner, case) -> Callable[[], str]:
    return lambda: runner.run_case(case, load_event(case.event))


def _unchecked(runner: Runner, function: str, event: dict, event_file: Path) -> str:
    invoked = runner.invoke(function, event, event_file.name)
    answer = json.dumps(invoked.response)[:300]
    return f"answered (not an events/ file of that function: nothing checked): {answer}"


def _template() -> Path:
    """The built template SAM runs; under emulation, a copy whose fixed timeouts are longer (the worker's
    comes from its parameter, WorkerTimeout)."""
    if not emulated():
        return BUILT_TEMPLATE
    copy = BUILT_TEMPLATE.with_name("template.emulated.json")  # beside it: CodeUri paths are relative
    copy.write_text(json.dumps(emulated_template(load_template(BUILT_TEMPLATE)), indent=1))
    return copy


def _selected(args: argparse.Namespace, runner: Runner) -> list[list[tuple[str, Callable[[], str]]]]:
    """What to run, in lanes: each lane's checks one after another, the lanes side by side."""
    from photoveil_dev.invoke.photo import run_photo

    if args.command == "event":
        return [_event_checks(runner, args.function, args.event)]
    photo = args.photo if args.command == "photo" and args.photo else small_photo(WORK_DIR)
    end_to_end = (f"a photo end to end ({photo.name})", lambda: run_photo(runner, photo))
    if args.command == "photo":
        return [[end_to_end]]
    checks = dict(_event_checks(runner, None, None))
    # The events that name job GOOD_JOB seed it in turn, so they share a lane; two lanes fill both cores.
    same_job = [label for label in checks if any(name in label for name in SAME_JOB_EVENTS)]
    others = [label for label in checks if label not in same_job]
    half = (len(others) + 1) // 2
    first = [(label, checks[label]) for label in same_job + others[:half]]
    return [first, [end_to_end, *((label, checks[label]) for label in others[half:])]]


def _run_lanes(runner: Runner, lanes: list[list[tuple[str, Callable[[], str]]]]) -> list[bool]:
    def lane(checks: list[tuple[str, Callable[[], str]]]) -> list[bool]:
        return [runner.run(label, check) for label, check in checks]

    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        return [ok for results in pool.map(lane, lanes) for ok in results]


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not BUILT_TEMPLATE.is_file():
        print(f"{BUILT_TEMPLATE} is missing: run `make build`", file=sys.stderr)
        return 2
    try:
        return _invoke(args)
    except (StackNotRunningError, NetworkError) as error:
        print(f"invoke: {error}", file=sys.stderr)
        return 2


def _invoke(args: argparse.Namespace) -> int:
    started = time.monotonic()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    with local_stack(args.data_dir) as stack, container_endpoint(stack.moto) as endpoint:
        env_file = WORK_DIR / "env.json"
        document = env_vars(declared_variables(load_template(TEMPLATE)), stack.environment, endpoint)
        env_file.write_text(json.dumps(document, indent=2))
        invoker = SamInvoker(
            env_file=env_file, parameters=sam_parameters(), log_dir=WORK_DIR / "logs", template=_template()
        )
        runner = Runner.for_stack(stack, invoker, TEMPLATE)
        print(f"==> containers reach the stack at {endpoint}", flush=True)
        print(
            f"    --template {invoker.template.relative_to(REPO)} --env-vars {env_file.relative_to(REPO)} "
            f"--parameter-overrides {invoker.parameters}",
            flush=True,
        )
        results = _run_lanes(runner, _selected(args, runner))
        print(f"==> the functions ran in {_image_line()}", flush=True)
    total = time.monotonic() - started
    print(
        f"invoke: {sum(results)} of {len(results)} as events/README.md says, {runner.invocations} "
        f"sam local invoke(s) in {total:.0f} s (logs: {invoker.log_dir.relative_to(REPO)})",
        flush=True,
    )
    return 0 if all(results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main(sys.argv[1:]))
