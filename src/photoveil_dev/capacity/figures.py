"""Per-photo service times and the cold start, from `make bench`'s JSON files, and the photo mix.

`bench/bench.py --json-out` writes, for each photo kind, the in-process stage medians (seconds) of
`blur_photo` with the CenterFace detector and the verify step; `bench/cold_start.py --json-out` writes
each function's INIT. `make simulate-figures` writes both under bench-out/simulate/figures/; when they are
absent the model falls back to FALLBACK, the same figures as measured when the model was last calibrated
(src/photoveil_dev/capacity/bench.json, which says where and when).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BENCH_JSON = REPO / "bench-out" / "simulate" / "figures" / "bench.json"
COLD_START_JSON = BENCH_JSON.with_name("cold_start.json")
FALLBACK = HERE / "bench.json"
# What a mix of uploads looks like (an input: no traffic has been observed yet).
DEFAULT_MIX = {"portrait": 0.6, "group": 0.3, "crowd": 0.1}


class FiguresError(ValueError):
    """A figures file is missing a photo kind or a stage the model needs."""


@dataclass(frozen=True)
class PhotoTime:
    """One photo kind's warm in-process seconds: all of it, and the CenterFace detection within it."""

    total_s: float
    detect_s: float
    verify_s: float = 0.0
    # Measured whole-photo times to draw from instead of total_s with jitter (the validation's).
    samples: tuple[float, ...] = ()

    @property
    def without_detection_s(self) -> float:
        return self.total_s - self.detect_s


@dataclass(frozen=True)
class ServiceTimes:
    """What the worker spends per photo kind, and once per new execution environment."""

    photos: dict[str, PhotoTime]
    init_s: float
    source: str

    def check_mix(self, mix: dict[str, float]) -> None:
        missing = set(mix) - set(self.photos)
        if missing:
            raise FiguresError(f"no service time for {', '.join(sorted(missing))} in {self.source}")


def _photo_time(kind: str, entry: dict[str, Any]) -> PhotoTime:
    """Stage medians are wall time; with the run's CPU time ("cpu_s") they are scaled to it, as a
    1-vCPU function shares its core with nobody, while the bench's machine may be shared."""
    stages: dict[str, float] = entry["stages"]
    if "detect" not in stages:
        raise FiguresError(f"{kind}: no 'detect' stage")
    wall = sum(stages.values())
    factor = entry["cpu_s"] / wall if entry.get("cpu_s") else 1.0
    return PhotoTime(wall * factor, stages["detect"] * factor, stages.get("verify", 0.0) * factor)


def read_bench(bench_json: Path, cold_start_json: Path | None = None) -> ServiceTimes:
    """Service times from bench.py's JSON (and cold_start.py's, else the INIT the bench file carries)."""
    bench = json.loads(bench_json.read_text())
    photos = {kind: _photo_time(kind, entry) for kind, entry in bench["photos"].items()}
    init_s = bench.get("worker_init_s")
    if cold_start_json is not None and cold_start_json.exists():
        init_s = json.loads(cold_start_json.read_text())["BlurFunction"]["no_bytecode_s"]
    if init_s is None:
        raise FiguresError(f"{bench_json}: no worker INIT (run bench/cold_start.py --json-out)")
    return ServiceTimes(photos, float(init_s), str(bench_json))


def load_service_times(path: Path | None = None) -> ServiceTimes:
    """From ``path``, else `make simulate-figures`' output, else the committed FALLBACK."""
    if path is not None:
        return read_bench(path, COLD_START_JSON)
    if BENCH_JSON.exists():
        return read_bench(BENCH_JSON, COLD_START_JSON)
    return read_bench(FALLBACK)


def parse_mix(text: str) -> dict[str, float]:
    """``portrait=0.6,group=0.3,crowd=0.1`` -> weights that sum to 1."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, weight = part.partition("=")
        weights[kind.strip()] = float(weight)
    total = sum(weights.values())
    if total <= 0:
        raise FiguresError(f"photo mix {text!r} has no positive weight")
    return {kind: w / total for kind, w in weights.items()}
