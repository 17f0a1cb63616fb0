"""`make simulate`: every scenario with the template's defaults and with the recommended settings.

    python bench/simulate.py [--scenario step] [--set WorkerBatchSize=5] [--set faces_tps=200]
                             [--figures bench-out/bench.json] [--mix portrait=6,group=3,crowd=1]
                             [--scale 0.1] [--out bench-out/simulate] [--docs]

Prints a table per scenario and writes bench-out/simulate/<scenario>.png and summary.md; --docs also
writes the step scenario's picture to docs/simulate-step.png (the README's).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from photoveil_dev.capacity import report
from photoveil_dev.capacity.config import TEMPLATE, PipelineConfig, from_template
from photoveil_dev.capacity.figures import DEFAULT_MIX, REPO, ServiceTimes, load_service_times, parse_mix
from photoveil_dev.capacity.model import Pipeline
from photoveil_dev.capacity.scenarios import RECOMMENDED, SCENARIOS

OUT = REPO / "bench-out" / "simulate"
DOCS_PICTURE = REPO / "docs" / "simulate-step.png"


@dataclass(frozen=True)
class Job:
    scenario: str
    label: str
    config: PipelineConfig
    times: ServiceTimes
    mix: dict[str, float]
    scale: float
    seed: int


def run_job(job: Job) -> tuple[report.Summary, dict[str, list[float]]]:
    """One scenario under one set of settings (in a worker process)."""
    scenario = SCENARIOS[job.scenario]
    pipeline = Pipeline(job.config, job.times, job.mix, scenario.rate, seed=job.seed, scale=job.scale)
    stats = pipeline.run(scenario.until_s, scenario.arrivals_s)
    hours = scenario.arrivals_s / 3600
    summary = report.summarise(stats, job.config, job.scale, scenario.until_s, hours)
    return summary, report.minute_series(stats, scenario.until_s, job.scale)


def settings(args: argparse.Namespace) -> dict[str, PipelineConfig]:
    common = dict(part.split("=", 1) for part in args.set)
    return {
        "defaults": from_template(args.template, common),
        "recommended": from_template(args.template, {**common, **RECOMMENDED}),
    }


def describe(label: str, c: PipelineConfig) -> str:
    moderation = f", DetectModerationLabels {c.moderation_tps:.0f} TPS" if c.moderation else ""
    return (
        f"  {label:<12} detector {c.detector}, batch {c.batch_size}, MaximumConcurrency {c.max_concurrency}, "
        f"reserved {c.reserved_concurrency or 'none'}, account {c.account_concurrency}, "
        f"DetectFaces {c.faces_tps:.0f} TPS{moderation}, timeout {c.function_timeout_s:.0f} s, "
        f"visibility {c.visibility_timeout_s:.0f} s"
    )


def print_inputs(args: argparse.Namespace, configs: dict[str, PipelineConfig], times: ServiceTimes) -> None:
    print(f"capacity simulation of {args.template.name}: scale {args.scale} (traffic and capacities)")
    print(f"  per-photo CPU seconds from {times.source}; worker INIT {times.init_s:.2f} s")
    for kind, t in times.photos.items():
        share = args.mix.get(kind, 0.0)
        print(f"    {kind:<9} {t.total_s:.2f} s (CenterFace detection {t.detect_s:.2f} s), mix {share:.0%}")
    for label, config in configs.items():
        print(describe(label, config))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    times = load_service_times(args.figures)
    configs = settings(args)
    print_inputs(args, configs, times)
    jobs = [
        Job(name, label, config, times, args.mix, args.scale, args.seed)
        for name in args.scenario
        for label, config in configs.items()
    ]
    with ProcessPoolExecutor(max_workers=args.processes) as pool:
        results = dict(zip(((j.scenario, j.label) for j in jobs), pool.map(run_job, jobs), strict=True))
    lines = []
    for name in args.scenario:
        lines += render(name, {label: results[(name, label)] for label in configs}, args)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"\nwritten: {args.out}/ ({time.monotonic() - started:.1f} s)")
    return 0


def render(
    name: str, results: dict[str, tuple[report.Summary, dict[str, list[float]]]], args: argparse.Namespace
) -> list[str]:
    scenario = SCENARIOS[name]
    lines = [f"\n== {scenario.title} ({scenario.arrivals_s / 60:.0f} min of uploads)", report.HEADER]
    lines += [report.row(label, summary) for label, (summary, _) in results.items()]
    if scenario.note:
        lines.append(f"   ({scenario.note})")
    print("\n".join(lines))
    series = {label: s for label, (_, s) in results.items()}
    report.plot(scenario.title, series, args.out / f"{name}.png")
    if name == "step" and args.docs:
        report.plot(scenario.title, series, DOCS_PICTURE)
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--set", action="append", default=[], help="Parameter=value or model_field=value")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument(
        "--figures", type=Path, help="bench.py --json-out file (default: bench-out/ or the fallback)"
    )
    parser.add_argument("--mix", type=parse_mix, default=DEFAULT_MIX, help="portrait=6,group=3,crowd=1")
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of traffic and capacity modelled")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--docs", action="store_true", help="also write docs/simulate-step.png")
    args = parser.parse_args(argv)
    args.scenario = args.scenario or list(SCENARIOS)
    args.out.mkdir(parents=True, exist_ok=True)
    return args
