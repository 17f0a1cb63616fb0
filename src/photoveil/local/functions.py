"""The template's functions, run in this process: the handler its `Handler:` names, with a Lambda context."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from photoveil.local.events import LambdaContext
from photoveil.local.specs import FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]


class LocalFunction:
    """One function of the template: invoke it with an event, as Lambda would."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        module, _, name = spec.handler.rpartition(".")
        self.handler: Handler = getattr(importlib.import_module(module), name)

    @property
    def name(self) -> str:
        return self.spec.logical_id

    def invoke(self, event: dict[str, Any]) -> Any:
        """The handler's result for EVENT; its exceptions propagate (an invocation error)."""
        context = LambdaContext(
            function_name=self.spec.logical_id,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
        )
        return self.handler(event, context)
