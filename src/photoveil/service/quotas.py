"""Per-client, per-recipient and service-wide limits on what anonymous clients can make the service do.

HTTP APIs take neither AWS WAF nor per-client throttling, so the limits live here, counted in DynamoDB
(adapters.quotas). The interface, small on purpose so that other actions can reuse it:

    limits = Limits.from_settings(deps.settings)
    charge(deps.quotas, deps.clock(), [(limits.uploads_per_client_hour, client_key(source_ip)), ...])
        -> None, or raises QuotaExceededError (an HTTP 429 RequestError, code ``rate_limited``, with
           ``retry_after`` seconds for the ``Retry-After`` header)
    allow(deps.quotas, deps.clock(), limit, subject) -> bool   (when a refusal must not fail the request)
    spent(deps.quotas, deps.clock(), limit, subject) -> bool   (is it full? counts nothing)

- A ``Limit`` is a name, a fixed window (an hour or a day, aligned on UTC) and how many actions it allows.
- A subject is who is counted: ``client_key(sourceIp)`` (IPv6 per /64, the block one subscriber usually
  holds), ``recipient_key(email)`` or ``SERVICE``. Client and recipient keys are SHA-256 hashes: no
  address is ever stored in clear.
- ``charge`` counts each (limit, subject) in order and stops at the first refused: a client refused per
  hour does not also spend its daily allowance or the service's. Counts are never given back, so a
  request refused by a later limit still used the earlier ones (a few actions at most, in the client's
  disfavour).
- The counter store is anything with ``take(key, *, allowed, expires_at) -> bool`` (one conditional
  increment) and ``used(key) -> int``; its items expire with their window.

To add a limit (say reports per client per hour): a setting, a template parameter, a field of Limits
and a ``charge`` where the action happens. Why counters in DynamoDB and not WAF or usage plans:
docs/decisions/safety-0001-limits-in-the-application.md.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Protocol

from photoveil.errors import RequestError
from photoveil.settings import Settings

HOUR = 3600
DAY = 86400
SERVICE = "service"
# Counters outlive their window a little, so a clock a few seconds off never resets one early.
EXPIRY_MARGIN_S = 300
RATE_LIMITED = "rate_limited"


class CounterStore(Protocol):
    def take(self, key: str, *, allowed: int, expires_at: int) -> bool:
        """Count one more action under ``key`` if fewer than ``allowed`` were counted; False if not."""

    def used(self, key: str) -> int:
        """How many actions are counted under ``key`` (0 for none)."""


@dataclass(frozen=True)
class Limit:
    name: str  # part of the counter's key: stable
    window_s: int  # HOUR or DAY
    allowed: int
    refusal: str  # what the refused client is told (what was refused, not who)
    service_wide: bool = False  # counted for the whole service (SERVICE): reaching it refuses everyone

    def counter_key(self, subject: str, now: datetime) -> str:
        return f"{self.name}#{subject}#{_window_start(now, self.window_s)}"

    def retry_after(self, now: datetime) -> int:
        """Seconds until this limit's window ends (at least 1)."""
        epoch = int(now.timestamp())
        return max(1, _window_start(now, self.window_s) + self.window_s - epoch)

    def expires_at(self, now: datetime) -> int:
        return _window_start(now, self.window_s) + self.window_s + EXPIRY_MARGIN_S


def _window_start(now: datetime, window_s: int) -> int:
    epoch = int(now.astimezone(UTC).timestamp())
    return epoch - epoch % window_s


@dataclass(frozen=True)
class Limits:
    """The deployment's limits (template parameters, read by settings). ``owner_actions_per_day`` is a
    budget, not a refusal: the versions deletes and edits withdraw from the edges in a day; past it the
    invalidation is put off and no owner is refused (service.withdrawals)."""

    uploads_per_client_hour: Limit
    uploads_per_client_day: Limit
    owner_actions_per_client_hour: Limit
    owner_actions_per_day: Limit
    emails_per_recipient_day: Limit
    uploads_per_day: Limit
    reports_per_client_hour: Limit
    reports_per_day: Limit
    emails_per_client_day: Limit

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            uploads_per_client_hour=Limit(
                "uploads-client-hour",
                HOUR,
                settings.uploads_per_client_hour,
                "too many uploads from your address this hour",
            ),
            uploads_per_client_day=Limit(
                "uploads-client-day",
                DAY,
                settings.uploads_per_client_day,
                "too many uploads from your address today",
            ),
            owner_actions_per_client_hour=Limit(
                "owner-client-hour",
                HOUR,
                settings.owner_actions_per_client_hour,
                "too many deletes and edits from your address this hour",
            ),
            owner_actions_per_day=Limit(
                "owner-service-day",
                DAY,
                settings.owner_actions_per_day,
                "the day's budget of edge invalidations is spent",
                service_wide=True,
            ),
            emails_per_recipient_day=Limit(
                "emails-recipient-day",
                DAY,
                settings.emails_per_recipient_day,
                "too many emails to this address today",
            ),
            uploads_per_day=Limit(
                "uploads-service-day",
                DAY,
                settings.uploads_per_day,
                "the service has taken all the photos it can today",
                service_wide=True,
            ),
            reports_per_client_hour=Limit(
                "reports-client-hour",
                HOUR,
                settings.reports_per_client_hour,
                "too many reports from your address this hour",
            ),
            reports_per_day=Limit(
                "reports-service-day",
                DAY,
                settings.reports_per_day,
                "the service has taken all the reports it can today; write to the operator",
                service_wide=True,
            ),
            emails_per_client_day=Limit(
                "emails-client-day",
                DAY,
                settings.emails_per_client_day,
                "too many emails asked for from your address today",
            ),
        )


class QuotaExceededError(RequestError):
    """A limit refused the action: HTTP 429 with ``Retry-After``."""

    def __init__(self, limit: Limit, now: datetime) -> None:
        self.retry_after = limit.retry_after(now)
        self.limit = limit.name
        self.service_wide = limit.service_wide
        super().__init__(
            HTTPStatus.TOO_MANY_REQUESTS,
            RATE_LIMITED,
            f"{limit.refusal}; try again in {_duration(self.retry_after)}",
        )


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 2 * HOUR:
        return f"{-(-seconds // 60)} minutes"
    return f"{-(-seconds // HOUR)} hours"


def client_key(source_ip: str) -> str:
    """Who a request comes from, hashed: the IPv4 address, or the /64 an IPv6 address is in."""
    return "c:" + _digest(client_network(source_ip))


def client_network(source_ip: str) -> str:
    """The client as counted, in clear: the IPv4 address, or the /64 an IPv6 address is in (the block one
    subscriber usually holds). Callers store only a hash of it."""
    try:
        address = ipaddress.ip_address(source_ip.strip())
    except ValueError:
        return f"unparsed:{source_ip.strip()[:64]}"  # API Gateway always sends an address; never trust it
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
        return str(mapped) if mapped else str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def client_block(source_ip: str) -> str:
    """The network a client address is in, in clear, for what must take many networks (withdrawing a
    photo): IPv4 /24, IPv6 /48 (a /48 is what one site is given: one address there holds 65,536 /64s).
    Callers store only a hash of it."""
    try:
        address = ipaddress.ip_address(source_ip.strip())
    except ValueError:
        return f"unparsed:{source_ip.strip()[:64]}"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network(f"{address}/48", strict=False))
    ipv4 = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else address
    return str(ipaddress.IPv4Network(f"{ipv4}/24", strict=False))


def recipient_key(email: str) -> str:
    """An email recipient, hashed (case-insensitively): the same address always counts as one."""
    return "r:" + _digest(email.strip().lower())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def charge(store: CounterStore, now: datetime, charges: Iterable[tuple[Limit, str]]) -> None:
    """Count one action against each (limit, subject), in order; QuotaExceededError at the first refused."""
    for limit, subject in charges:
        if not allow(store, now, limit, subject):
            raise QuotaExceededError(limit, now)


def spent(store: CounterStore, now: datetime, limit: Limit, subject: str) -> bool:
    """Whether SUBJECT has no room left under LIMIT in this window; counts nothing."""
    return store.used(limit.counter_key(subject, now)) >= limit.allowed


def allow(store: CounterStore, now: datetime, limit: Limit, subject: str) -> bool:
    """Count one action against LIMIT for SUBJECT; False (nothing counted) if its window is full."""
    return store.take(
        limit.counter_key(subject, now), allowed=limit.allowed, expires_at=limit.expires_at(now)
    )
