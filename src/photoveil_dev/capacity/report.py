"""What a run of the model shows: a summary row (latency, backlog, cost), per-minute series, a picture."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from photoveil_dev.capacity.config import PipelineConfig
from photoveil_dev.capacity.model import Stats

PROMISE_S = 60.0
# us-east-1 list prices, as docs/deploy.md's Costs section assumes them.
LAMBDA_GB_S = 0.0000133334
LAMBDA_REQUEST = 0.0000002
REKOGNITION_CALL = 0.001  # DetectFaces and DetectModerationLabels, per image (first million a month)
# Per photo, everything but the worker and Rekognition (docs/deploy.md's table: API + HTTP API, S3 PUT/GET
# and 30 days of storage, SQS + DynamoDB, CloudFront); the variants fan-out is not included there either.
REST_PER_PHOTO = 0.0000082 + 0.0000104 + 0.000023 + 0.0000037 + 0.000090


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 1]) of values; nan when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass(frozen=True)
class Summary:
    """One scenario under one set of settings, in real (unscaled) counts."""

    photos: int
    published: int
    dead_lettered: int
    unfinished: int
    within_promise: float  # share of uploads published within 60 s
    p50_s: float
    p99_s: float
    worst_minute_p99_s: float
    peak_concurrency: int
    peak_backlog: int
    cold_starts: int
    throttled: int
    cost: float
    hours: float

    @property
    def promise_holds(self) -> bool:
        """Nothing lost or left waiting, and in every minute 99 % of the photos published within 60 s."""
        done = self.unfinished == 0 and self.dead_lettered == 0
        return done and self.worst_minute_p99_s <= PROMISE_S


def latencies(stats: Stats, end_s: float) -> list[float]:
    """Upload-to-published seconds per upload; a photo never published counts as (end - upload)."""
    published = stats.published
    return [published.get(i, end_s) - up for i, up in enumerate(stats.uploaded_at)]


def cost(stats: Stats, config: PipelineConfig, scale: float) -> float:
    """Dollars for the run at full scale: the worker's billed time and requests, Rekognition, the rest."""
    worker = stats.billed_s * config.memory_mb / 1024 * LAMBDA_GB_S + stats.invocations * LAMBDA_REQUEST
    rekognition = sum(stats.calls.values()) * REKOGNITION_CALL
    return (worker + rekognition + len(stats.uploaded_at) * REST_PER_PHOTO) / scale


def summarise(stats: Stats, config: PipelineConfig, scale: float, end_s: float, hours: float) -> Summary:
    waits = latencies(stats, end_s)
    by_minute = minute_series(stats, end_s)
    up = 1 / scale
    return Summary(
        photos=round(len(stats.uploaded_at) * up),
        published=round(len(stats.published) * up),
        dead_lettered=round(stats.dead_lettered * up),
        unfinished=round((len(stats.uploaded_at) - len(stats.published) - stats.dead_lettered) * up),
        within_promise=sum(w <= PROMISE_S for w in waits) / max(1, len(waits)),
        p50_s=percentile(waits, 0.5),
        p99_s=percentile(waits, 0.99),
        worst_minute_p99_s=max((p for p in by_minute["p99"] if not math.isnan(p)), default=math.nan),
        peak_concurrency=round(max((s[1] for s in stats.samples), default=0) * up),
        peak_backlog=round(max((s[3] for s in stats.samples), default=0) * up),
        cold_starts=round(stats.cold_starts * up),
        throttled=round(sum(stats.throttled.values()) * up),
        cost=cost(stats, config, scale),
        hours=hours,
    )


def minute_series(stats: Stats, end_s: float, scale: float = 1.0) -> dict[str, list[float]]:
    """Per minute: uploads and publications (full scale), mean running invocations and the mapping's
    concurrency, backlog at the minute's end, and p50/p99 latency of the photos published in it."""
    minutes = math.ceil(end_s / 60)
    uploads, done = [0.0] * minutes, [0.0] * minutes
    waits: list[list[float]] = [[] for _ in range(minutes)]
    for up in stats.uploaded_at:
        uploads[min(int(up // 60), minutes - 1)] += 1 / scale
    for photo, at in stats.published.items():
        m = min(int(at // 60), minutes - 1)
        done[m] += 1 / scale
        waits[m].append(at - stats.uploaded_at[photo])
    running, cap, backlog = ([[] for _ in range(minutes)] for _ in range(3))
    for t, run, conc, queued in stats.samples:
        m = min(int((t - 1e-9) // 60), minutes - 1)
        running[m].append(run / scale)
        cap[m].append(conc / scale)
        backlog[m].append(queued / scale)
    return {
        "uploads": uploads,
        "published": done,
        "running": [sum(v) / len(v) if v else 0.0 for v in running],
        "concurrency": [max(v) if v else 0.0 for v in cap],
        "backlog": [v[-1] if v else 0.0 for v in backlog],
        "p50": [percentile(w, 0.5) for w in waits],
        "p99": [percentile(w, 0.99) for w in waits],
    }


HEADER = (
    f"{'settings':<12} {'photos':>9} {'published':>9} {'DLQ':>5} {'unfinished':>10} {'<=60s':>7} "
    f"{'p50 s':>7} {'p99 s':>7} {'worst-min p99':>13} {'peak conc':>9} {'peak backlog':>12} "
    f"{'cold':>6} {'throttled':>9} {'cost $':>9} {'$/hour':>8}  promise"
)


def row(label: str, s: Summary) -> str:
    verdict = "holds" if s.promise_holds else "BROKEN"
    return (
        f"{label:<12} {s.photos:>9,} {s.published:>9,} {s.dead_lettered:>5,} {s.unfinished:>10,} "
        f"{s.within_promise:>7.1%} {s.p50_s:>7.1f} {s.p99_s:>7.1f} {s.worst_minute_p99_s:>13.1f} "
        f"{s.peak_concurrency:>9,} {s.peak_backlog:>12,} {s.cold_starts:>6,} {s.throttled:>9,} "
        f"{s.cost:>9,.0f} {s.cost / s.hours:>8,.0f}  {verdict}"
    )


def plot(title: str, series: dict[str, dict[str, list[float]]], path: Path) -> None:
    """One PNG: arrivals and publications, concurrency, backlog, latency p50/p99, per minute."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    colours = {label: f"C{i}" for i, label in enumerate(series)}
    for label, s in series.items():
        x, c = range(len(s["uploads"])), colours[label]
        axes[0].plot(x, s["published"], color=c, label=f"published/min ({label})")
        axes[1].plot(x, s["running"], color=c, label=f"running invocations ({label})")
        axes[1].plot(x, s["concurrency"], color=c, linestyle=":", label=f"mapping's concurrency ({label})")
        axes[2].plot(x, s["backlog"], color=c, label=label)
        axes[3].plot(x, s["p50"], color=c, linestyle="--", label=f"p50 ({label})")
        axes[3].plot(x, s["p99"], color=c, label=f"p99 ({label})")
    first = next(iter(series.values()))
    axes[0].plot(range(len(first["uploads"])), first["uploads"], color="grey", alpha=0.6, label="uploads/min")
    axes[3].axhline(PROMISE_S, color="red", linewidth=0.8, label="the 1-minute promise")
    axes[3].set_yscale("log")
    for ax, name in zip(axes, ("photos/min", "invocations", "backlog (photos)", "latency s"), strict=True):
        ax.set_ylabel(name)
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minute")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
