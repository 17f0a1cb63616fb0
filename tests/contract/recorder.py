"""What the contract tests sent to the local stack: every request, by kind, with the status it got."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests


@dataclass
class Sent:
    """The requests sent to the stack, each as (kind, method, path, status)."""

    requests: list[tuple[str, str, str, int]] = field(default_factory=list)

    def session(self, kind: str) -> requests.Session:
        """A session that records each request it sends under KIND."""
        session = requests.Session()

        def record(response: requests.Response, *_: Any, **__: Any) -> None:
            request = response.request
            path = urlsplit(request.url or "").path
            self.requests.append((kind, str(request.method), path, response.status_code))

        session.hooks["response"].append(record)
        return session

    def summary(self) -> str:
        by_kind = Counter(kind for kind, *_ in self.requests)
        by_status = Counter(status for *_, status in self.requests)
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(by_status.items()))
        return f"{len(self.requests)} requests to the local stack ({kinds}); by status {statuses}"
