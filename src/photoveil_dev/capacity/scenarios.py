"""Traffic scenarios (photos per minute over time) and the two sets of settings each is run with."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

LOW, HIGH = 10.0, 10_000.0  # photos per minute: the product's range
MINUTE = 60.0

# What docs/deploy.md recommends for 10,000 photos a minute (chosen from this model's runs: the docs say
# how): template parameters by name, account quotas by the model's field names. The cap stays below what
# the quota can serve (250 TPS x ~0.9 s a photo): above it, the catch-up after a step exhausts throttled
# calls' retries and those photos wait out the 180 s visibility timeout.
RECOMMENDED = {"WorkerMaxConcurrency": "200", "faces_tps": "250", "moderation_tps": "250"}


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    rate: Callable[[float], float]  # photos per minute at t seconds
    arrivals_s: float  # uploads stop here
    drain_s: float  # then the model runs on this long, so a backlog can empty
    note: str = ""

    @property
    def until_s(self) -> float:
        return self.arrivals_s + self.drain_s


def step(t: float) -> float:
    """10 a minute for 10 minutes, then 10,000 a minute."""
    return LOW if t < 10 * MINUTE else HIGH


def spike(t: float) -> float:
    """10 a minute, with 10,000 a minute from minute 20 to minute 30."""
    return HIGH if 20 * MINUTE <= t < 30 * MINUTE else LOW


DAY_COMPRESSION = 12  # a day's swing in two hours


def day(t: float) -> float:
    """From 10 a minute at night to 10,000 at midday and back: a day compressed into two hours."""
    phase = 2 * math.pi * t / (24 * 3600 / DAY_COMPRESSION)
    return LOW + (HIGH - LOW) * (1 - math.cos(phase)) / 2


SCENARIOS = {
    "step": Scenario("step", "Step: 10 -> 10,000 photos/min at minute 10", step, 60 * MINUTE, 30 * MINUTE),
    "spike": Scenario("spike", "Spike: 10,000 photos/min for 10 minutes", spike, 60 * MINUTE, 30 * MINUTE),
    "day": Scenario(
        "day",
        f"Day: 10 <-> 10,000 photos/min (24 h compressed {DAY_COMPRESSION}x into 2 h)",
        day,
        2 * 3600,
        30 * MINUTE,
        note=f"a real day: {DAY_COMPRESSION}x this run's photos and cost, ramps {DAY_COMPRESSION}x slower",
    ),
}
