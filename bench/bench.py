"""`make bench`: CPU, wall time and memory of `photoveil blur --verify` on 12 MP photos, against a floor.

For the 12 MP group photo, the 12 MP portrait and the crowd photo it prints:
  * per-stage medians (decode, detect, blur, encode, verify) of `blur_photo` in this process (after a
    warm-up), and how many detections the verify step blurred again;
  * the whole process, `.venv/bin/photoveil blur IN -o OUT --verify` (what the service does), and the
    floor (bench/floor.py: OpenCV decode + q85 encode, nothing else imported), run interleaved, --runs
    times each: medians of CPU time (user + sys, the steadier figure on a shared machine) and of wall
    time, their ratios against the targets, and the peak RSS; the same for the CLI default (no verify).
    The ratios divide by the floor run with OPENBLAS_NUM_THREADS=1, as photoveil runs itself and as one
    vCPU runs it: the plainest floor, the one that flatters least. The floor as a user's environment
    runs it (OpenBLAS starting a thread per core, ~0.15 s of CPU more here) is printed as information
    only. photoveil runs with one network thread (--threads), as on a Lambda function of 1,769 MB.
  * the passes alone (bench/least.py, information only): a process doing nothing but the work the
    design fixes for that photo (the floor's decode and encode, ONNX Runtime's session, the network
    passes photoveil ran on it, their resized copies, the published JPEG's decode), interleaved with
    the rest, and its ratio to the floor: how much of each target the design's own passes leave.
Nothing is asserted: the figures are printed with the load average, which skews wall time. `make bench`
compiles the package's bytecode first, as any non-editable install has it (the floor's OpenCV has its
own); Lambda ships none, which `bench/cold_start.py` measures.

Test photos are built under bench-out/ (never committed): the 12 MP one is a shared group photo (or
tests/.images/astronaut.png) upscaled to 4032x3024; the 12 MP portrait is the astronaut, likewise with
mild sensor-like noise, so the JPEG weighs what a phone photo does (~3-5 MB) instead of the ~1 MB a
smooth upscale compresses to; the crowd is ../shared/data/faces/wider_0_Parade_Parade_0_873.jpg upscaled
to a 4032 px long side, or when absent a synthetic crowd of small astronaut faces on a 12 MP canvas.

    .venv/bin/python bench/bench.py [--runs 5] [--detector centerface] [--only portrait] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import least
import numpy as np

# The environment this bench was started in, before importing photoveil (which sets OPENBLAS_NUM_THREADS
# for its own process): every measured command, the floor included, runs in it as a user would run it.
START_ENV = dict(os.environ)

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench-out"
SHARED = REPO.parent / "shared" / "data" / "faces"
BIN = Path(sys.executable).parent
# Whole process with --verify / the one-thread floor, per photo (issue 18), and the peak RSS of any run;
# and the targets beyond it (issue 13's figures, now against the honest floor).
TARGET_RATIOS = {"group": 3.5, "portrait": 3.0, "crowd": 5.0}
LONG_TERM_RATIOS = {"group": 2.5, "portrait": 2.0, "crowd": 3.5}
TARGET_PEAK_MB = 400
# Stage medians per photo kind, for --json-out (the capacity simulation reads them: make simulate).
STAGES: dict[str, dict[str, Any]] = {}
CPU_S: dict[Path, float] = {}  # median process CPU of blur_photo per photo: steadier than wall when shared
SIZE_12MP = (4032, 3024)


def _noisy(pixels: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, pixels.shape).astype(np.int16)
    return np.clip(pixels.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _write_jpeg(path: Path, pixels: np.ndarray) -> Path:
    ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def make_12mp() -> Path:
    path = OUT / "photo-12mp.jpg"
    if path.exists():
        return path
    source = SHARED / "2007_007763.jpg"
    if not source.exists():
        source = REPO / "tests" / ".images" / "astronaut.png"
    small = cv2.imread(str(source), cv2.IMREAD_COLOR)
    # crop to 4:3 then upscale, so faces keep their proportions
    h, w = small.shape[:2]
    if w * 3 > h * 4:
        cut = (w - h * 4 // 3) // 2
        small = small[:, cut : cut + h * 4 // 3]
    else:
        cut = (h - w * 3 // 4) // 2
        small = small[cut : cut + w * 3 // 4]
    big = cv2.resize(small, SIZE_12MP, interpolation=cv2.INTER_CUBIC)
    return _write_jpeg(path, _noisy(big, 4.0, seed=12))


def make_portrait() -> Path:
    path = OUT / "portrait-12mp.jpg"
    if path.exists():
        return path
    small = cv2.imread(str(REPO / "tests" / ".images" / "astronaut.png"), cv2.IMREAD_COLOR)[64:448]  # 4:3
    big = cv2.resize(small, SIZE_12MP, interpolation=cv2.INTER_CUBIC)
    return _write_jpeg(path, _noisy(big, 4.0, seed=14))


def make_crowd() -> Path:
    path = OUT / "crowd.jpg"
    if path.exists():
        return path
    source = SHARED / "wider_0_Parade_Parade_0_873.jpg"
    if source.exists():
        small = cv2.imread(str(source), cv2.IMREAD_COLOR)
        h, w = small.shape[:2]
        big = cv2.resize(small, (4032, round(h * 4032 / w)), interpolation=cv2.INTER_CUBIC)
    else:  # synthetic crowd: 60 astronaut heads of 60-110 px on a 12 MP canvas
        face = cv2.imread(str(REPO / "tests" / ".images" / "astronaut.png"))[20:200, 140:300]
        big = np.full((SIZE_12MP[1], SIZE_12MP[0], 3), (70, 110, 150), np.uint8)
        rng = np.random.default_rng(7)
        for _ in range(60):
            size = int(rng.integers(60, 110))
            head = cv2.resize(face, (size, size * 180 // 160))
            y = int(rng.integers(0, big.shape[0] - head.shape[0]))
            x = int(rng.integers(0, big.shape[1] - head.shape[1]))
            big[y : y + head.shape[0], x : x + head.shape[1]] = head
    return _write_jpeg(path, _noisy(big, 4.0, seed=13))


def stage_medians(path: Path, detector_name: str, runs: int) -> tuple[dict[str, float], int, int]:
    from photoveil.imaging.detectors import get_detector
    from photoveil.imaging.pipeline import blur_photo

    detector = get_detector(detector_name)
    data = path.read_bytes()
    blur_photo(data, detector)  # warm-up: model load and first-inference set-up are not a stage
    samples: dict[str, list[float]] = {}
    faces = reblurred = 0
    cpu = []
    for _ in range(runs):
        started = time.process_time()
        result = blur_photo(data, detector)
        cpu.append(time.process_time() - started)
        faces, reblurred = len(result.faces), len(result.reblurred)
        for stage, seconds in result.timings.items():
            samples.setdefault(stage, []).append(seconds)
    CPU_S[path] = statistics.median(cpu)
    if detector_name == "centerface":  # the passes it ran, for bench/least.py to replay alone
        (OUT / f"{path.stem}.plan.json").write_text(json.dumps(least.record(detector, data)))
    return {stage: statistics.median(v) for stage, v in samples.items()}, faces, reblurred


# A fresh, small Python parent runs each measured command: Linux carries the parent's RSS high-water
# mark into a forked child (and through exec), so children of this bench process, which holds the
# model and 12 MP arrays, would all report its peak instead of their own.
_LAUNCHER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(code, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
"""


@dataclass
class Runs:
    """CPU (user + sys) and wall seconds of several runs of one command, and its peak RSS in MB."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    peak_mb: float = 0.0

    def add(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        launched = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, *argv],
            capture_output=True,
            text=True,
            check=True,
            env=env or START_ENV,
        )
        code, wall, cpu, maxrss_kib = launched.stdout.split()
        if int(code) != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {code}: {launched.stderr[-500:]}")
        self.cpu.append(float(cpu))
        self.wall.append(float(wall))
        self.peak_mb = max(self.peak_mb, int(maxrss_kib) / 1024)

    def describe(self) -> str:
        cpu, wall = statistics.median(self.cpu), statistics.median(self.wall)
        return (
            f"CPU {cpu:5.2f} s ({min(self.cpu):.2f}-{max(self.cpu):.2f}), "
            f"wall {wall:5.2f} s ({min(self.wall):.2f}-{max(self.wall):.2f}), peak RSS {self.peak_mb:4.0f} MB"
        )


def _ratio(runs: Runs, floor: Runs, series: str) -> float:
    return statistics.median(getattr(runs, series)) / statistics.median(getattr(floor, series))


def bench_photo(kind: str, label: str, path: Path, detector: str, runs: int) -> bool:
    pixels = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8)
    h, w = pixels.shape[0] * 8, pixels.shape[1] * 8
    print(f"\n== {label}: {path.relative_to(REPO)} (~{w}x{h}, {path.stat().st_size / 1e6:.1f} MB)")
    stages, faces, reblurred = stage_medians(path, detector, runs)
    STAGES[kind] = {"stages": stages, "cpu_s": CPU_S[path]}
    print(f"   in-process wall medians over {runs} runs ({faces} faces, detector {detector}):")
    for stage in ("decode", "detect", "blur", "encode", "verify"):
        if stage in stages:
            note = f"  ({reblurred} found again and blurred again)" if stage == "verify" else ""
            print(f"     {stage:<7} {stages[stage] * 1000:8.1f} ms{note}")
    print(f"     {'total':<7} {sum(stages.values()) * 1000:8.1f} ms")

    out = OUT / f"{path.stem}.blurred.jpg"
    cmd = [str(BIN / "photoveil"), "blur", str(path), "-o", str(out), "--detector", detector]
    floor_out = OUT / f"{path.stem}.floor.jpg"
    floor_cmd = [sys.executable, str(REPO / "bench" / "floor.py"), str(path), str(floor_out)]
    plan = OUT / f"{path.stem}.plan.json"
    least_out = OUT / f"{path.stem}.least.jpg"
    least_cmd = [sys.executable, str(REPO / "bench" / "least.py"), str(path), str(least_out), str(plan)]
    floor, checked, plain, user_floor, passes = Runs(), Runs(), Runs(), Runs(), Runs()
    for _ in range(runs):  # interleaved, so a burst of load from elsewhere hits all of them alike
        floor.add(floor_cmd, {**START_ENV, "OPENBLAS_NUM_THREADS": "1"})
        checked.add([*cmd, "--verify"])
        plain.add(cmd)
        user_floor.add(floor_cmd)
        if detector == "centerface":  # stage_medians wrote its plan
            passes.add(least_cmd, {**START_ENV, "OPENBLAS_NUM_THREADS": "1"})
    print(f"   whole process, medians of {runs} interleaved runs each:")
    print(f"     photoveil blur --verify  {checked.describe()}")
    print(f"     photoveil blur           {plain.describe()}  (CLI default, no verify)")
    print(f"     floor (decode+encode)    {floor.describe()}  (OpenBLAS at 1 thread: the divisor)")
    print(f"     floor, OpenBLAS threads  {user_floor.describe()}  (information only, not a divisor)")
    if passes.cpu:
        print(f"     the passes alone         {passes.describe()}  (bench/least.py: information only)")
        print(
            f"   the passes alone / floor: CPU {_ratio(passes, floor, 'cpu'):.2f} (what the design's passes, "
            f"codecs and copies cost with nothing else; the target is {TARGET_RATIOS[kind]})"
        )
    return _verdict(kind, checked, plain, floor)


def _verdict(kind: str, checked: Runs, plain: Runs, floor: Runs) -> bool:
    """Print the ratios against the one-thread floor and the targets; True when this issue's are met."""
    target, long_term = TARGET_RATIOS[kind], LONG_TERM_RATIOS[kind]
    cpu_ratio, wall_ratio = _ratio(checked, floor, "cpu"), _ratio(checked, floor, "wall")
    print(
        f"   --verify / floor: CPU {cpu_ratio:.2f}, wall {wall_ratio:.2f} (target <= {target}); "
        f"without verify: CPU {_ratio(plain, floor, 'cpu'):.2f}, wall {_ratio(plain, floor, 'wall'):.2f}"
    )
    print(
        f"   long-term target {long_term}: CPU ratio {cpu_ratio - long_term:+.2f} from it "
        f"({cpu_ratio / long_term - 1:+.0%})"
    )
    ok = cpu_ratio <= target and checked.peak_mb < TARGET_PEAK_MB
    verdict = "OK" if ok else "MISSED"
    print(f"   CPU ratio <= {target} and peak < {TARGET_PEAK_MB} MB: {verdict} (printed, never asserted)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--detector", default="centerface")
    parser.add_argument("--only", choices=sorted(TARGET_RATIOS), action="append", help="this photo only")
    parser.add_argument(
        "--threads", default="1", help="PHOTOVEIL_THREADS for photoveil (default 1: a 1-vCPU Lambda)"
    )
    parser.add_argument("--json-out", type=Path, help="also write the stage medians here (make simulate)")
    args = parser.parse_args(argv)
    START_ENV["PHOTOVEIL_THREADS"] = os.environ["PHOTOVEIL_THREADS"] = args.threads
    OUT.mkdir(exist_ok=True)
    photos = {
        "group": ("12 MP group photo", make_12mp),
        "portrait": ("12 MP portrait", make_portrait),
        "crowd": ("crowd photo (Parade, 4032 px)", make_crowd),
    }
    print(f"photoveil bench: {os.cpu_count()} CPUs, load average {_load()} (others' work skews wall time)")
    print(f"network threads: {args.threads} (PHOTOVEIL_THREADS; the CLI's own default is every CPU)")
    results = [
        bench_photo(kind, label, make(), args.detector, args.runs)
        for kind, (label, make) in photos.items()
        if not args.only or kind in args.only
    ]
    if not args.only:
        bench_variants(make_12mp(), args.runs)
    print(f"\nload average at the end {_load()}")
    print("all targets met" if all(results) else "some targets missed (see above)")
    if args.json_out:
        args.json_out.write_text(json.dumps({"detector": args.detector, "photos": STAGES}, indent=1))
    return 0


# One cold VariantsFunction invocation's work, in a fresh process: import, decode, three variants.
VARIANTS_CHILD = """
import json, re, sys, time
started, cpu = time.perf_counter(), time.process_time()
from photoveil.imaging.variants import make_variants
variants = make_variants(open(sys.argv[1], "rb").read())
print(json.dumps({"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                  # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec
                  "peak_mb": int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) / 1024,
                  "sizes": {v.name: [v.width, v.height, len(v.jpeg)] for v in variants}}))
"""


def bench_variants(path: Path, runs: int) -> None:
    """The variants function's work on a published 12 MP JPEG: warm in this process, and a fresh process."""
    from photoveil.imaging.variants import make_variants

    published = cv2.imencode(".jpg", cv2.imread(str(path)), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    make_variants(published)  # warm-up
    warm = []
    for _ in range(runs):
        started, cpu = time.perf_counter(), time.process_time()
        make_variants(published)
        warm.append((time.perf_counter() - started, time.process_time() - cpu))
    source = OUT / "published-12mp.jpg"
    source.write_bytes(published)
    cold = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", VARIANTS_CHILD, str(source)],
                capture_output=True,
                text=True,
                check=True,
                env=START_ENV,
            ).stdout
        )
        for _ in range(runs)
    ]
    print(f"\nvariants of a published 12 MP photo ({len(published) / 1e6:.1f} MB JPEG), {runs} runs:")
    print(
        f"  warm: wall {statistics.median(w for w, _ in warm) * 1000:.0f} ms, "
        f"CPU {statistics.median(c for _, c in warm) * 1000:.0f} ms (median)"
    )
    wall, cpu = (statistics.median(r[key] for r in cold) for key in ("wall", "cpu"))
    peak = max(r["peak_mb"] for r in cold)
    print(f"  fresh process (imports included): wall {wall:.2f} s, CPU {cpu:.2f} s, peak {peak:.0f} MB")
    sizes = ", ".join(f"{n} {w}x{h} {b / 1024:.0f} KB" for n, (w, h, b) in cold[0]["sizes"].items())
    print(f"  outputs: {sizes}")


def _load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
