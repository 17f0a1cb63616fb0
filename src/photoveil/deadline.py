"""The time an invocation has left, for code deep in a call that must stop before it runs out.

The worker opens a budget per record (``time_budget``); the Rekognition retry loop reads it
(``seconds_left``) so that it never sleeps or calls past the function's timeout. A ContextVar, so
each thread of the `both` detector's pool sees the budget of the record it works for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("photoveil_deadline", default=None)


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Code inside the block has ``seconds`` from now (monotonic clock)."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def seconds_left() -> float:
    """Seconds left in the current budget; infinity outside one (the command line has no timeout)."""
    deadline = _deadline.get()
    return math.inf if deadline is None else deadline - time.monotonic()
