"""The documented rules the capacity model is made of, as small pure functions (tested on known answers).

* An SQS event source mapping starts with five concurrent batches and, while messages wait, adds up to
  300 concurrent invocations a minute, never more than 1,000, nor MaximumConcurrency, nor the function's
  reserved concurrency (AWS Lambda developer guide, "Scaling behavior for SQS event source mappings").
* A Rekognition operation allows so many transactions per second per account: a token bucket refilled
  at that rate and holding one second of it; a call without a token is throttled.
* A throttled call is retried by the worker with full-jitter exponential backoff, within a bound
  (photoveil.imaging.detectors.rekognition: the same constants).
* A message received and not deleted becomes visible again when its visibility timeout, counted from
  the receive, runs out; after maxReceiveCount receives the queue moves it to the dead-letter queue.
"""

from __future__ import annotations

from dataclasses import dataclass

ESM_INITIAL_BATCHES = 5
ESM_STEP_PER_MINUTE = 300
ESM_HARD_CAP = 1000


def concurrency_cap(max_concurrency: int, reserved: int = 0, account_limit: int = ESM_HARD_CAP) -> int:
    """The most invocations an SQS mapping can run at once: its own cap, the reservation, the account."""
    caps = [ESM_HARD_CAP, max_concurrency, account_limit]
    if reserved > 0:
        caps.append(reserved)
    return max(1, min(caps))


def scaled_concurrency(
    current: float, messages_waiting: bool, cap: float, elapsed_s: float, scale: float = 1.0
) -> float:
    """The mapping's concurrency after ``elapsed_s`` seconds: grows at 300 a minute while messages wait.

    ``scale`` < 1 models a fraction of the traffic with the same fraction of every capacity (make
    simulate's --scale), so concurrencies are fractional there.
    """
    if not messages_waiting:
        return min(current, cap)
    return min(cap, current + ESM_STEP_PER_MINUTE * scale * elapsed_s / 60)


def initial_concurrency(cap: float, scale: float = 1.0) -> float:
    """Five concurrent batches at first (fewer if the cap is lower)."""
    return min(ESM_INITIAL_BATCHES * scale, cap)


@dataclass
class TokenBucket:
    """``rate`` calls a second, up to one second's worth saved up; time is given, never read."""

    rate: float
    tokens: float = -1.0
    updated_at: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.rate

    def take(self, now: float) -> bool:
        """True (and one token fewer) if a call at ``now`` is allowed; False if it is throttled."""
        self.tokens = min(self.rate, self.tokens + (now - self.updated_at) * self.rate)
        self.updated_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def backoff_delay(attempt: int, draw: float, base_s: float, cap_s: float) -> float:
    """Full jitter: a uniform draw in [0, min(cap, base * 2**attempt)) (``draw`` in [0, 1))."""
    return draw * min(cap_s, base_s * 2**attempt)


def visible_again_at(received_at: float, visibility_timeout_s: float) -> float:
    """When a message received at ``received_at`` and not deleted can be received again."""
    return received_at + visibility_timeout_s


def dead_lettered(receive_count: int, max_receive_count: int) -> bool:
    """Whether a message that failed its ``receive_count``-th receive goes to the DLQ instead of back."""
    return receive_count >= max_receive_count
