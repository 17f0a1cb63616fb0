"""`make simulate-validate`: the model against the local stack, on this machine, in one command.

1. Runs `make load`'s script (bench/load.py: N photos from C clients through `photoveil local` with W
   workers), keeping the stack's log.
2. Takes the model's inputs from that same run, so they are measured under the same load as the result
   they predict: each photo's processing time as the local runtime logged it ("job ...: done in N ms"),
   and the burst's upload rate (load.py's report).
3. Runs the model with the local stack's settings: W workers polling from the start (no scaling, no cold
   start: the workers are threads of one warm process), batch size and visibility from template.yaml, the
   in-process detector (no Rekognition), uploads spread evenly over the burst, per-photo times drawn from
   the measured ones; it predicts load.py's figures (throughput, latency p50 and p95), the median of SEEDS
   runs, with half of load.py's 0.5 s watch interval added to each latency (a photo is seen done on the
   next scan of the jobs table).
4. Prints predicted against measured, and whether each is within 20 %.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from photoveil_dev.capacity.config import from_template
from photoveil_dev.capacity.figures import REPO, PhotoTime, ServiceTimes
from photoveil_dev.capacity.model import Pipeline
from photoveil_dev.capacity.report import percentile

LOAD = REPO / "bench" / "load.py"
OUT = REPO / "bench-out" / "simulate"
DONE_LINE = re.compile(r"job ([0-9a-f]+): (?:done|failed) in (\d+) ms")
# Blur jobs only: the variants function's pollers log their photos' keys (hex + ".jpg") with the same names.
RECEIVED_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d) INFO\s+job ([0-9a-f]+): received by (worker-\d+)", re.M)
WATCH_INTERVAL_S = 0.5  # bench/load.py's watch(): one scan of the jobs table every 0.5 s
TOLERANCE = 0.20
SEEDS = 21


def run_load(photos: int, clients: int, workers: int, log: Path) -> dict[str, Any]:
    """bench/load.py's JSON report, its stack log kept at ``log``."""
    command = [sys.executable, str(LOAD), "--photos", str(photos), "--clients", str(clients)]
    command += ["--workers", str(workers), "--json", "--quiet", "--log", str(log)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"bench/load.py failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def processing_times(log_text: str) -> list[float]:
    """Seconds per photo, as the local runtime logged each finished invocation."""
    return [int(ms) / 1000 for _, ms in DONE_LINE.findall(log_text)]


def poll_overhead(log_text: str) -> float:
    """Seconds a local worker spends per photo outside the invocation (delete, record read, next
    receive): each worker's span from first to last receive, less the invocations within it, per photo.
    The log's timestamps are whole seconds: over a run of ~100 photos a worker that is ~0.01 s a photo."""
    seconds = {job: int(ms) / 1000 for job, ms in DONE_LINE.findall(log_text)}
    received: dict[str, list[tuple[int, str]]] = {}
    for h, m, s, job, worker in RECEIVED_LINE.findall(log_text):
        received.setdefault(worker, []).append((int(h) * 3600 + int(m) * 60 + int(s), job))
    gaps, photos = 0.0, 0
    for seq in received.values():
        if len(seq) > 1:
            gaps += seq[-1][0] - seq[0][0] - sum(seconds.get(job, 0.0) for _, job in seq[:-1])
            photos += len(seq) - 1
    return max(0.0, gaps / photos) if photos else 0.0


def predict(
    measured: dict[str, Any], samples: list[float], overhead_s: float, workers: int, seed: int
) -> dict[str, float]:
    """The model's throughput (photos/min) and latency percentiles for the same burst on W workers."""
    # The local stack's settings: the in-process detector, no moderation (its default: moto has no
    # Rekognition), W workers.
    local = {
        "Detector": "centerface",
        "Moderation": "off",
        "max_concurrency": str(workers),
        "notify_delay_s": "0",
    }
    local["poll_overhead_s"] = str(overhead_s)
    config = from_template(overrides={**local, "io_overhead_s": "0", "reserved_concurrency": "0"})
    times = ServiceTimes(
        {"photo": PhotoTime(statistics.mean(samples), 0.0, samples=tuple(samples))}, 0.0, "log"
    )
    photos = measured["photos_in"]
    burst_s = photos / measured["burst_per_min"] * 60
    pipeline = Pipeline(config, times, {"photo": 1.0}, lambda t: 0.0, seed=seed, initial_concurrency=workers)
    pipeline.upload_at([burst_s * (i + 1) / photos for i in range(photos)], "photo")
    stats = pipeline.run(until=burst_s + 10 * photos * max(samples) + 60)
    observed = WATCH_INTERVAL_S / 2
    waits = [at + observed - stats.uploaded_at[i] for i, at in stats.published.items()]
    last = max(stats.published.values()) + observed
    return {
        "throughput_per_min": len(stats.published) / last * 60,
        "p50": percentile(waits, 0.5),
        "p95": percentile(waits, 0.95),
    }


def compare(measured: dict[str, Any], predicted: dict[str, float]) -> list[tuple[str, float, float, float]]:
    """(figure, predicted, measured, relative error) for throughput, p50 and p95."""
    pairs = [
        ("throughput photos/min", predicted["throughput_per_min"], measured["throughput_per_min"]),
        ("latency p50 s", predicted["p50"], measured["latency_s"]["p50"]),
        ("latency p95 s", predicted["p95"], measured["latency_s"]["p95"]),
    ]
    return [(name, p, m, (p - m) / m) for name, p, m in pairs]


def table(rows: list[tuple[str, float, float, float]]) -> str:
    lines = [f"{'figure':<22} {'predicted':>10} {'measured':>10} {'error':>8}  within 20 %"]
    for name, p, m, err in rows:
        lines.append(
            f"{name:<22} {p:>10.1f} {m:>10.1f} {err:>+8.1%}  {'yes' if abs(err) <= TOLERANCE else 'NO'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="the local stack's default")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "validate-stack.log"
    measured = run_load(args.photos, args.clients, args.workers, log)
    log_text = log.read_text(errors="replace")
    samples, overhead_s = processing_times(log_text), poll_overhead(log_text)
    if not samples:
        raise SystemExit(f"no 'done in N ms' lines in {log}: is the stack logging at INFO?")
    runs = [predict(measured, samples, overhead_s, args.workers, seed) for seed in range(SEEDS)]
    predicted = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    rows = compare(measured, predicted)
    print(
        f"make load N={args.photos} CLIENTS={args.clients} with {args.workers} workers: "
        f"{measured['photos_in']} photos in at {measured['burst_per_min']:.0f}/min; per-photo processing "
        f"(from its log, {len(samples)} photos): median {statistics.median(samples):.2f} s, "
        f"mean {statistics.mean(samples):.2f} s; between invocations {overhead_s:.3f} s per photo"
    )
    print(f"model: median of {SEEDS} runs with those times, {args.workers} workers, template.yaml's queue\n")
    print(table(rows))
    result = {"measured": measured, "predicted": predicted, "overhead_s": overhead_s, "samples_s": samples}
    (OUT / "validate.json").write_text(json.dumps(result, indent=1))
    return 0 if all(abs(err) <= TOLERANCE for *_, err in rows) else 1
