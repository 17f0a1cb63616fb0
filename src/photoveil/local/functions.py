"""The template's functions, run in this process: the handler its `Handler:` names, with a Lambda context
and the function's own dependencies (the clients of its IAM role)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from photoveil.dependencies import Dependencies, use_dependencies
from photoveil.local.events import LambdaContext
from photoveil.local.specs import FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]


class LocalFunction:
    """One function of the template: invoke it with an event, as Lambda would."""

    def __init__(self, spec: FunctionSpec, dependencies: Dependencies) -> None:
        self.spec = spec
        self.dependencies = dependencies
        module, _, name = spec.handler.rpartition(".")
        self.handler: Handler = getattr(importlib.import_module(module), name)

    @property
    def name(self) -> str:
        return self.spec.logical_id

    def invoke(self, event: dict[str, Any], context: Any = None) -> Any:
        """The handler's result for EVENT; its exceptions propagate (an invocation error).

        CONTEXT: a Lambda context of the caller's (tests); by default one with the function's settings.
        """
        context = context or LambdaContext(
            function_name=self.spec.logical_id,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
        )
        with use_dependencies(self.dependencies):
            return self.handler(event, context)

    def override(self, **changes: Any) -> Dependencies:
        """Replace some of the function's dependencies (tests: a failing client, a fake detector); the new
        dependencies, which later invocations use."""
        self.dependencies = self.dependencies.replaced(**changes)
        return self.dependencies
