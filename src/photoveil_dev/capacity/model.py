"""The pipeline as a SimPy discrete-event model: upload -> queue -> event source mapping -> worker -> publish.

* Uploads arrive at a rate that changes over time (a scenario); each message becomes visible in the queue
  ``notify_delay_s`` after its upload.
* The mapping (a dispatcher) starts a worker invocation whenever messages are visible and fewer than its
  current concurrency are running; that concurrency follows rules.scaled_concurrency once a second.
* An invocation takes an idle execution environment or makes a new one (INIT: the cold start), then runs
  its batch one record after another: a record starts only with ``record_min_time_left_s`` left; its time
  is the measured warm figure of its photo kind (with jitter) plus I/O, with the Rekognition call(s) run
  alongside the CenterFace detection and limited by a token bucket per operation (throttled calls retried
  with backoff, as the worker does). A record that fails is returned to the queue when its visibility
  timeout runs out, and dead-lettered after ``max_receive_count`` receives.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from photoveil.imaging.detectors import rekognition as worker_retry
from photoveil_dev.capacity import rules
from photoveil_dev.capacity.config import PipelineConfig
from photoveil_dev.capacity.figures import ServiceTimes

RateFn = Callable[[float], float]  # photos per minute at a time in seconds
Process = Generator[simpy.Event, Any, Any]


@dataclass
class Message:
    photo: int
    kind: str
    uploaded_at: float
    receives: int = 0
    received_at: float = 0.0


@dataclass
class Stats:
    """What a run records: per photo, and sampled once a second."""

    uploaded_at: list[float] = field(default_factory=list)
    published: dict[int, float] = field(default_factory=dict)  # photo -> published at
    dead_lettered: int = 0
    failed_attempts: int = 0
    cold_starts: int = 0
    billed_s: float = 0.0
    invocations: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)
    samples: list[tuple[float, int, float, int]] = field(default_factory=list)  # t, running, cap, backlog


class SqsQueue:
    """Visible messages in order, and how many are received and not yet deleted (in flight)."""

    def __init__(self) -> None:
        self.visible: deque[Message] = deque()
        self.in_flight = 0

    def take(self, count: int, now: float) -> list[Message]:
        batch = [self.visible.popleft() for _ in range(min(count, len(self.visible)))]
        for message in batch:
            message.receives += 1
            message.received_at = now
        self.in_flight += len(batch)
        return batch

    @property
    def backlog(self) -> int:
        return len(self.visible) + self.in_flight


class Pipeline:
    """One run of the model; ``run(until)`` then read ``stats``."""

    def __init__(
        self,
        config: PipelineConfig,
        times: ServiceTimes,
        mix: dict[str, float],
        rate: RateFn,
        seed: int = 1,
        scale: float = 1.0,
        initial_concurrency: float | None = None,
    ) -> None:
        times.check_mix(mix)
        self.config, self.times, self.scale = config, times, scale
        self.rate: RateFn = lambda t: rate(t) * scale
        self.env = simpy.Environment()
        self.rng = random.Random(seed)
        self.kinds, self.weights = list(mix), list(mix.values())
        self.queue = SqsQueue()
        self.stats = Stats()
        self.cap = scale * rules.concurrency_cap(
            config.max_concurrency, config.reserved_concurrency, config.account_concurrency
        )
        self.concurrency = initial_concurrency or rules.initial_concurrency(self.cap, scale)
        self.running = 0
        self.idle_envs: list[float] = []  # when each idle execution environment was last used
        self.buckets = {"DetectFaces": rules.TokenBucket(config.faces_tps * scale)}
        if config.moderation:
            self.buckets["DetectModerationLabels"] = rules.TokenBucket(config.moderation_tps * scale)
        self._wake: simpy.Event = self.env.event()
        self.arrivals_until = math.inf

    # --- the parts the environment runs ---------------------------------------------------------------
    def run(self, until: float, arrivals_until: float | None = None) -> Stats:
        """Simulate ``until`` seconds; uploads stop at ``arrivals_until`` (default: the end)."""
        self.arrivals_until = until if arrivals_until is None else arrivals_until
        self.env.process(self._arrivals())
        self.env.process(self._dispatcher())
        self.env.process(self._scaler())
        self.env.run(until=until)
        return self.stats

    def _arrivals(self) -> Process:
        while True:
            per_s = self.rate(self.env.now) / 60
            gap = self.rng.expovariate(per_s) if per_s > 0 else 1.0
            yield self.env.timeout(gap)
            if self.env.now >= self.arrivals_until:
                return
            if per_s > 0:
                self.upload(self.rng.choices(self.kinds, self.weights)[0])

    def upload_at(self, times: list[float], kind: str) -> None:
        """Uploads at these times (seconds) instead of, or besides, the rate's."""
        self.env.process(self._scheduled(sorted(times), kind))

    def _scheduled(self, times: list[float], kind: str) -> Process:
        for at in times:
            yield self.env.timeout(max(0.0, at - self.env.now))
            self.upload(kind)

    def upload(self, kind: str) -> None:
        """One photo uploaded now; its message is visible ``notify_delay_s`` later."""
        photo = len(self.stats.uploaded_at)
        self.stats.uploaded_at.append(self.env.now)
        message = Message(photo, kind, self.env.now)
        self.env.process(self._deliver(message, self.config.notify_delay_s))

    def _deliver(self, message: Message, delay: float) -> Process:
        yield self.env.timeout(delay)
        self.queue.visible.append(message)
        self._notify()

    def _notify(self) -> None:
        if not self._wake.triggered:
            self._wake.succeed()

    def _dispatcher(self) -> Process:
        """The mapping: a new invocation per batch while under its current concurrency."""
        while True:
            while self.queue.visible and self.running < self.concurrency:
                if not self._batch_ready():
                    break
                batch = self.queue.take(self.config.batch_size, self.env.now)
                self.running += 1
                self.env.process(self._invoke(batch))
            self._wake = self.env.event()
            window = self.config.batching_window_s
            if self.queue.visible and window > 0 and self.running < self.concurrency:
                yield self._wake | self.env.timeout(window)
            else:
                yield self._wake

    def _batch_ready(self) -> bool:
        """A full batch, or no batching window (the template's 0), or the oldest waited the window out."""
        window = self.config.batching_window_s
        if window <= 0 or len(self.queue.visible) >= self.config.batch_size:
            return True
        return self.env.now - self.queue.visible[0].uploaded_at >= window

    def _scaler(self) -> Process:
        """Once a second: grow the mapping's concurrency while messages wait; sample the gauges."""
        while True:
            yield self.env.timeout(1.0)
            waiting = bool(self.queue.visible) and self.running >= self.concurrency
            grown = rules.scaled_concurrency(self.concurrency, waiting, self.cap, 1.0, self.scale)
            if grown != self.concurrency:
                self.concurrency = grown
                self._notify()
            self.stats.samples.append((self.env.now, self.running, self.concurrency, self.queue.backlog))

    # --- one invocation ---------------------------------------------------------------------------------
    def _environment(self) -> float:
        """INIT seconds: 0 with a warm environment, the cold start with a new one."""
        now, reclaim = self.env.now, self.config.env_idle_reclaim_s
        while self.idle_envs and now - self.idle_envs[-1] > reclaim:
            self.idle_envs.pop()
        if self.idle_envs:
            self.idle_envs.pop()
            return 0.0
        self.stats.cold_starts += 1
        return self.times.init_s

    def _invoke(self, batch: list[Message]) -> Process:
        started = self.env.now
        init_s = self._environment()
        if init_s:
            yield self.env.timeout(init_s)
        deadline = self.env.now + self.config.function_timeout_s
        failed = []
        for message in batch:
            if deadline - self.env.now < self.config.record_min_time_left_s:
                failed.append(message)
                continue
            ok = yield from self._record(message, deadline)
            if ok:
                self.stats.published[message.photo] = self.env.now
            else:
                failed.append(message)
        self.stats.invocations += 1
        self.stats.billed_s += self.env.now - started
        self.queue.in_flight -= len(batch)
        for message in failed:
            self._fail(message)
        self.idle_envs.append(self.env.now)  # most recently used last: reused first
        if self.config.poll_overhead_s:
            yield self.env.timeout(self.config.poll_overhead_s)
        self.running -= 1
        self._notify()

    def _fail(self, message: Message) -> None:
        """Back to the queue when its visibility timeout runs out, or to the DLQ after its last receive."""
        self.stats.failed_attempts += 1
        if rules.dead_lettered(message.receives, self.config.max_receive_count):
            self.stats.dead_lettered += 1
            return
        back_at = rules.visible_again_at(message.received_at, self.config.visibility_timeout_s)
        self.queue.in_flight += 1  # still received (invisible) until then
        self.env.process(self._return(message, back_at - self.env.now))

    def _return(self, message: Message, delay: float) -> Process:
        yield self.env.timeout(max(0.0, delay))
        self.queue.in_flight -= 1
        self.queue.visible.append(message)
        self._notify()

    def _jitter(self) -> float:
        cv = self.config.service_jitter
        if cv <= 0:
            return 1.0
        sigma = math.sqrt(math.log(1 + cv * cv))
        return self.rng.lognormvariate(-sigma * sigma / 2, sigma)

    def _record(self, message: Message, deadline: float) -> Process:
        """One photo: detection (CenterFace beside the Rekognition calls), then the rest; True if done."""
        photo, config = self.times.photos[message.kind], self.config
        if photo.samples:  # measured whole-photo times (I/O included): one drawn at random
            yield self.env.timeout(self.rng.choice(photo.samples))
            return True
        factor = self._jitter()
        local_detect = photo.detect_s * factor if config.detector != "rekognition" else 0.0
        rest = photo.without_detection_s * factor + config.io_overhead_s
        if config.detector == "rekognition":
            rest -= photo.verify_s * factor  # no verify step without the in-process model
        started = self.env.now
        if config.uses_rekognition or config.moderation:
            calls = [self.env.process(self._call(name, deadline)) for name in self._operations()]
            results = yield simpy.AllOf(self.env, calls)
            if not all(results.values()):
                return False  # fail closed: the record retries after the visibility timeout
        remaining = max(0.0, local_detect - (self.env.now - started)) + rest
        yield self.env.timeout(remaining)
        return True

    def _operations(self) -> list[str]:
        names = ["DetectFaces"] if self.config.uses_rekognition else []
        return [*names, "DetectModerationLabels"] if self.config.moderation else names

    def _call(self, operation: str, deadline: float) -> Process:
        """One Rekognition operation with the worker's retry loop; True when it answered."""
        bucket, slept = self.buckets[operation], 0.0
        for attempt in range(worker_retry.MAX_ATTEMPTS):
            if deadline - self.env.now < worker_retry.ATTEMPT_TIMEOUT_S:
                return False
            if bucket.take(self.env.now):
                self.stats.calls[operation] = self.stats.calls.get(operation, 0) + 1
                yield self.env.timeout(self.config.rekognition_latency_s)
                return True
            self.stats.throttled[operation] = self.stats.throttled.get(operation, 0) + 1
            yield self.env.timeout(self.config.throttle_latency_s)
            delay = rules.backoff_delay(
                attempt, self.rng.random(), worker_retry.BACKOFF_BASE_S, worker_retry.BACKOFF_CAP_S
            )
            too_late = deadline - self.env.now - delay < worker_retry.ATTEMPT_TIMEOUT_S
            last = attempt == worker_retry.MAX_ATTEMPTS - 1
            if last or slept + delay > worker_retry.MAX_TOTAL_SLEEP_S or too_late:
                return False
            yield self.env.timeout(delay)
            slept += delay
        return False
