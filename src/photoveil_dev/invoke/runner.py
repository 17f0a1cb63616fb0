"""Invoking the template's functions in their Lambda containers against one running local stack, and saying
what each invocation did (one line each, for the CI log)."""

from __future__ import annotations

import os
import platform
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photoveil.local.template import read_stack_spec
from photoveil_dev.invoke.cases import Case, CheckError, seeded_keys
from photoveil_dev.invoke.queues import about, drain
from photoveil_dev.invoke.sam import Invoked, InvokeError, SamInvoker
from photoveil_dev.invoke.stack import StackState

# An arm64 function on another machine runs under emulation: a photo takes about a minute, over the
# worker's deployed 30 s (template parameter WorkerTimeout; each value has its queue's visibility).
EMULATED_WORKER_TIMEOUT = "300"


def emulated() -> bool:
    """Whether this machine runs arm64 Lambda containers under emulation."""
    return platform.machine().lower() not in ("aarch64", "arm64")


# qemu's default CPU emulates pointer authentication: ~25x slower than a Neoverse N1 (Graviton 2) without
# it. Given to every container under emulation; PHOTOVEIL_QEMU_CPU= (empty) gives none, for a qemu
# too old to know the model.
QEMU_CPU = "neoverse-n1"


def qemu_cpu() -> str:
    return os.environ.get("PHOTOVEIL_QEMU_CPU", QEMU_CPU)


def sam_parameters() -> dict[str, str]:
    return {"WorkerTimeout": EMULATED_WORKER_TIMEOUT} if emulated() else {}


@dataclass
class Runner:
    stack: StackState
    invoker: SamInvoker
    variants_queue: str  # VariantsQueue's name in the stack
    invocations: int = 0
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_stack(cls, stack: StackState, invoker: SamInvoker, template: Path) -> Runner:
        for service in ("s3", "sqs", "dynamodb"):
            stack.client(service)  # made here: making clients from several threads at once is not safe
        return cls(stack, invoker, read_stack_spec(template).queues["VariantsQueue"].name)

    def drained(self, body: str) -> bool:
        """Whether a queue message is about an object the checks' seeds wrote (theirs to delete)."""
        return about(seeded_keys(self.stack))(body)

    def drain_seeded(self) -> int:
        """Delete the messages S3 sent about what the seeds wrote, on BlurQueue and VariantsQueue: left on
        `make run`'s queues, they would be received again and again and end in the dead-letter queues."""
        sqs = self.stack.client("sqs")
        queues = (self.stack.queue_url, self.stack.queue_url_named(self.variants_queue))
        return sum(drain(sqs, queue_url, self.drained) for queue_url in queues)

    def say(self, text: str) -> None:
        self._emit(f"      {text}")

    def _emit(self, line: str) -> None:
        lines = getattr(self._local, "lines", None)
        if lines is None:
            print(line, flush=True)
        else:
            lines.append(line)

    def invoke(self, function: str, event: dict[str, Any], name: str) -> Invoked:
        """FUNCTION in its container on EVENT, signing as the stack's role of that function."""
        if function not in self.stack.roles:
            raise CheckError(f"the local stack has no {function} (its template condition is off there)")
        invoked = self.invoker.invoke(function, event, name, self.stack.roles[function])
        with self._lock:
            self.invocations += 1
        self._emit(f"    sam local invoke {function} ({name}): {invoked.seconds:.1f} s")
        return invoked

    def run(self, label: str, check: Callable[[], str]) -> bool:
        """CHECK, said under LABEL with what it printed, in one block once it is over (checks run two at
        a time); False if it failed."""
        self._local.lines = [f"--> {label}"]
        started = time.monotonic()
        try:
            verdict = f"ok   {label}: {check()}"
        except (AssertionError, InvokeError) as error:
            verdict = f"FAIL {label}: {error}"
        except Exception as error:  # a seed's ClientError, a body's KeyError: this check fails, not the run
            self._emit("".join(traceback.format_exception(error, limit=-3)).rstrip())
            verdict = f"FAIL {label}: {type(error).__name__}: {error}"
        lines, self._local.lines = self._local.lines, None
        with self._lock:
            print("\n".join([*lines, f"{verdict} ({time.monotonic() - started:.0f} s)"]), flush=True)
        return verdict.startswith("ok")

    def run_case(self, case: Case, event: dict[str, Any]) -> str:
        """Seed what CASE's event names, invoke its function with EVENT, check what it did."""
        case.seed(self.stack)
        try:
            return case.check(self.stack, self.invoke(case.function, event, case.event))
        finally:
            self.drain_seeded()
