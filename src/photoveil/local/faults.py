"""A switchable fault layer under the handlers' AWS clients, for testing recovery without test-only code.

Faults are armed per AWS operation ("s3.GetObject") and fire for the next N calls made by the handlers'
clients (those of the sessions the layer is installed on: one per function's role); the local stack's
own clients and the pollers' use other sessions and are never affected. Two kinds:

- ``crash``: raises :class:`SimulatedCrash` (a BaseException, like a killed Lambda sandbox): it escapes
  the handler's per-record error handling, the invocation dies, the poller deletes nothing and the
  message comes back after the visibility timeout.
- ``error``: raises an ordinary exception (a network error), which the handler reports per record.

Arm them with ``photoveil local --fault s3.GetObject:crash:1`` or, when started with
``--allow-faults``, ``POST /__faults`` on the gateway with ``{"operation", "kind", "count"}``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import EndpointConnectionError

KINDS = ("crash", "error")


class SimulatedCrash(BaseException):
    """The worker died mid-photo (stands in for a killed process or a Lambda timeout)."""


@dataclass
class Fault:
    operation: str  # "s3.GetObject"
    kind: str
    remaining: int

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """``service.Operation:kind[:count]``, e.g. ``s3.GetObject:crash:1``."""
        parts = spec.split(":")
        if len(parts) not in (2, 3) or "." not in parts[0] or parts[1] not in KINDS:
            raise ValueError(f"bad fault {spec!r}: expected service.Operation:{'|'.join(KINDS)}[:count]")
        return cls(parts[0], parts[1], int(parts[2]) if len(parts) == 3 else 1)


class FaultLayer:
    """Faults armed on the handlers' sessions; thread-safe; counts what fired."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.fired: list[dict[str, Any]] = []

    def install(self, sessions: Iterable[boto3.session.Session]) -> None:
        """Hook into the handlers' SESSIONS. Must run before the handlers' clients are created from them."""
        for session in sessions:
            session.events.register("before-call.*.*", self._before_call)

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "armed": [vars(f).copy() for f in self._faults if f.remaining > 0],
                "fired": list(self.fired),
            }

    def _before_call(self, model: Any, params: Any = None, **_: Any) -> None:
        operation = f"{model.service_model.service_name}.{model.name}"
        with self._lock:
            fault = next((f for f in self._faults if f.operation == operation and f.remaining > 0), None)
            if fault is None:
                return
            fault.remaining -= 1
            self.fired.append({"operation": operation, "kind": fault.kind})
        if fault.kind == "crash":
            raise SimulatedCrash(f"fault layer: worker crashed during {operation}")
        raise EndpointConnectionError(endpoint_url=f"fault-layer://{operation}")
