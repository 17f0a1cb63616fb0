"""A change to one of moto's classes that lasts while any block wants it, process-wide.

The local stack's threads and the tests enter and leave IAM enforcement independently, nested or not and
in any order; so the class is changed when the first block enters and put back as it was when the last
one leaves (a plain save-and-restore would undo a change another block still relies on, or keep one no
block wants any more).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_UNSET = object()


class PatchWhileEntered:
    """OWNER.NAME replaced by ``make(original)`` while at least one ``entered()`` block lasts."""

    def __init__(self, owner: type, name: str, make: Callable[[Any], Any]) -> None:
        self.owner, self.name, self.make = owner, name, make
        self._lock = threading.Lock()
        self._entered = 0
        self._original: Any = _UNSET  # the owner's own attribute, or _UNSET if it only inherited one

    @contextmanager
    def entered(self) -> Iterator[None]:
        self._enter()
        try:
            yield
        finally:
            self._leave()

    def _enter(self) -> None:
        with self._lock:
            if self._entered == 0:
                self._original = self.owner.__dict__.get(self.name, _UNSET)
                setattr(self.owner, self.name, self.make(getattr(self.owner, self.name, None)))
            self._entered += 1

    def _leave(self) -> None:
        with self._lock:
            self._entered -= 1
            if self._entered == 0:
                if self._original is _UNSET:
                    delattr(self.owner, self.name)
                else:
                    setattr(self.owner, self.name, self._original)
                self._original = _UNSET
