"""What the functions are told about objects in their buckets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ObjectCreated:
    """An S3 ObjectCreated notification, as the event states it (not yet trusted)."""

    bucket: str
    key: str  # decoded: S3 URL-encodes keys in events
    size: int | None
    event_time: datetime | None
