"""photoveil.service.quotas: windows, client and recipient keys, charging in order (a fake counter store)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from photoveil.service.quotas import (
    DAY,
    HOUR,
    RATE_LIMITED,
    Limit,
    Limits,
    QuotaExceededError,
    allow,
    charge,
    client_block,
    client_key,
    recipient_key,
)
from photoveil.settings import Settings


class FakeCounters:
    """The counter store's contract, in memory."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}
        self.expiry: dict[str, int] = {}

    def take(self, key: str, *, allowed: int, expires_at: int) -> bool:
        if self.used.get(key, 0) >= allowed:
            return False
        self.used[key] = self.used.get(key, 0) + 1
        self.expiry.setdefault(key, expires_at)
        return True


NOW = datetime(2026, 12, 6, 21, 45, 30, tzinfo=UTC)
HOURLY = Limit("h", HOUR, 2, "too many this hour")
DAILY = Limit("d", DAY, 3, "too many today")


def test_a_limit_allows_its_count_then_refuses_until_the_window_ends() -> None:
    store = FakeCounters()
    assert [allow(store, NOW, HOURLY, "a") for _ in range(3)] == [True, True, False]
    assert allow(store, NOW, HOURLY, "b")  # another subject has its own count
    assert allow(store, NOW.replace(hour=22, minute=0, second=0), HOURLY, "a")  # the next hour starts afresh
    first = HOURLY.counter_key("a", NOW)
    assert store.expiry[first] >= int(NOW.replace(hour=22, minute=0, second=0).timestamp())  # gone after


def test_refusal_is_a_429_with_a_stable_code_and_the_seconds_left_in_the_window() -> None:
    store = FakeCounters()
    charge(store, NOW, [(HOURLY, "a")])
    charge(store, NOW, [(HOURLY, "a")])
    with pytest.raises(QuotaExceededError) as refused:
        charge(store, NOW, [(HOURLY, "a")])
    error = refused.value
    assert (error.status, error.code) == (429, RATE_LIMITED)
    assert error.retry_after == 14 * 60 + 30  # 21:45:30 -> 22:00:00
    assert "this hour" in error.message and "15 minutes" in error.message


def test_charging_stops_at_the_first_refused_limit() -> None:
    store = FakeCounters()
    for _ in range(2):
        charge(store, NOW, [(HOURLY, "a"), (DAILY, "a")])
    with pytest.raises(QuotaExceededError):
        charge(store, NOW, [(HOURLY, "a"), (DAILY, "a")])
    daily = [v for k, v in store.used.items() if k.startswith("d#")]
    assert daily == [2]  # the refused request did not spend the day's allowance


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),  # one /64: one client
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("192.0.2.1", "::ffff:192.0.2.1", True),  # IPv4-mapped is the IPv4 client
        ("192.0.2.1", "192.0.2.2", False),
    ],
)
def test_clients_are_addresses_and_ipv6_counts_per_64(one: str, other: str, same: bool) -> None:
    assert (client_key(one) == client_key(other)) is same


@pytest.mark.parametrize(
    ("address", "block"),
    [
        ("192.0.2.77", "192.0.2.0/24"),
        ("::ffff:192.0.2.77", "192.0.2.0/24"),  # IPv4-mapped is the IPv4 client's network
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1::/48"),
        ("2001:db8:1:ffff::1", "2001:db8:1::/48"),
        ("2001:db8:2::1", "2001:db8:2::/48"),
        ("garbage", "unparsed:garbage"),
    ],
)
def test_networks_are_ipv4_24s_and_ipv6_48s(address: str, block: str) -> None:
    assert client_block(address) == block


def test_keys_are_hashed_never_the_address() -> None:
    assert "192.0.2.1" not in client_key("192.0.2.1")
    key = recipient_key("Alice@Example.com")
    assert "alice" not in key.lower() and key == recipient_key(" alice@example.COM ")
    assert client_key("not an address") != client_key("192.0.2.1")


def test_the_ceilings_charged_for_the_whole_service_are_flagged_for_the_alarm() -> None:
    # A refusal by a flagged limit is counted as ServiceCeilingReached, which ServiceCeilingAlarm watches.
    numbers = SimpleNamespace(**{f.name: 1 for f in dataclasses.fields(Settings) if f.type in ("int", int)})
    limits = Limits.from_settings(numbers)  # type: ignore[arg-type]
    flagged = {limit.name for limit in vars(limits).values() if limit.service_wide}
    assert flagged == {"uploads-service-day", "owner-service-day", "reports-service-day"}
