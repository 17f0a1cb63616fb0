"""`make bench`: speed and memory of `photoveil blur` on 12 MP photos and a crowd photo.

Prints, for each photo:
  * per-stage medians (decode, detect, blur, encode, and verify as the service runs it) of
    `blur_photo` in this process (after a warm-up), and how many detections verify blurred again;
  * the whole-process wall time of `.venv/bin/photoveil blur IN -o OUT` (median), and its peak RSS;
    the same with --verify (what the service does: look for the blurred faces again in the output);
  * the floor: the same Python process doing only decode + encode (bench/floor.py), time and peak RSS;
  * process / floor, against the targets (ratio <= 2.5, peak < 600 MB).

Test photos are built under bench-out/ (never committed): the 12 MP one is a shared group photo (or
tests/.images/astronaut.png) upscaled to 4032x3024; the 12 MP portrait is the astronaut, likewise with
mild sensor-like noise, so the JPEG weighs what a phone photo does (~3-5 MB) instead of the ~1 MB a
smooth upscale compresses to; the crowd is ../shared/data/faces/wider_0_Parade_Parade_0_873.jpg upscaled
to a 4032 px long side, or when absent a synthetic crowd of small astronaut faces on a 12 MP canvas.

    .venv/bin/python bench/bench.py [--runs 5] [--detector centerface]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench-out"
SHARED = REPO.parent / "shared" / "data" / "faces"
BIN = Path(sys.executable).parent
TARGET_RATIO = 2.5
TARGET_PEAK_MB = 600
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
    from photoveil.detectors import get_detector
    from photoveil.pipeline import blur_photo

    detector = get_detector(detector_name)
    data = path.read_bytes()
    blur_photo(data, detector)  # warm-up: model load and first-inference set-up are not a stage
    samples: dict[str, list[float]] = {}
    faces = reblurred = 0
    for _ in range(runs):
        result = blur_photo(data, detector)
        faces, reblurred = len(result.faces), len(result.reblurred)
        for stage, seconds in result.timings.items():
            samples.setdefault(stage, []).append(seconds)
    return {stage: statistics.median(v) for stage, v in samples.items()}, faces, reblurred


# A fresh, small Python parent runs each measured command: Linux carries the parent's RSS high-water
# mark into a forked child (and through exec), so children of this bench process, which holds the
# model and 12 MP arrays, would all report its peak instead of their own.
_LAUNCHER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - start
print(code, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def run_process(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``argv`` in its own process."""
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv], capture_output=True, text=True, check=True
    )
    code, wall, maxrss_kib = launched.stdout.split()
    if int(code) != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {code}: {launched.stderr[-500:]}")
    return float(wall), int(maxrss_kib) / 1024


def process_medians(argv: list[str], runs: int) -> tuple[float, float]:
    walls, peaks = zip(*(run_process(argv) for _ in range(runs)), strict=True)
    return statistics.median(walls), max(peaks)


def bench_photo(label: str, path: Path, detector: str, runs: int) -> bool:
    pixels = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8)
    h, w = pixels.shape[0] * 8, pixels.shape[1] * 8
    print(f"\n== {label}: {path.relative_to(REPO)} (~{w}x{h}, {path.stat().st_size / 1e6:.1f} MB)")
    stages, faces, reblurred = stage_medians(path, detector, runs)
    print(f"   in-process medians over {runs} runs ({faces} faces, detector {detector}):")
    for stage in ("decode", "detect", "blur", "encode", "verify"):
        if stage in stages:
            note = f"  ({reblurred} found again and blurred again)" if stage == "verify" else ""
            print(f"     {stage:<7} {stages[stage] * 1000:8.1f} ms{note}")
    print(f"     {'total':<7} {sum(stages.values()) * 1000:8.1f} ms")

    out = OUT / f"{path.stem}.blurred.jpg"
    cmd = [str(BIN / "photoveil"), "blur", str(path), "-o", str(out), "--detector", detector]
    floor_out = OUT / f"{path.stem}.floor.jpg"
    floor_cmd = [sys.executable, str(REPO / "bench" / "floor.py"), str(path), str(floor_out)]
    wall, peak = process_medians(cmd, runs)
    checked_wall, checked_peak = process_medians([*cmd, "--verify"], runs)
    floor_wall, floor_peak = process_medians(floor_cmd, runs)
    ratio = wall / floor_wall
    ok = ratio <= TARGET_RATIO and peak < TARGET_PEAK_MB
    print(f"   photoveil blur process: {wall:6.2f} s median, peak RSS {peak:6.0f} MB")
    print(
        f"   ... with --verify:      {checked_wall:6.2f} s median, peak RSS {checked_peak:6.0f} MB"
        f" (ratio {checked_wall / floor_wall:.2f})"
    )
    print(f"   floor (decode+encode):  {floor_wall:6.2f} s median, peak RSS {floor_peak:6.0f} MB")
    verdict = "OK" if ok else "MISSED"
    print(f"   ratio {ratio:.2f} (target <= {TARGET_RATIO}), peak target < {TARGET_PEAK_MB} MB: {verdict}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--detector", default="centerface")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    load = os.getloadavg()[0]
    print(f"photoveil bench: {os.cpu_count()} CPUs, load average {load:.1f} (others' work skews it)")
    results = [
        bench_photo("12 MP group photo", make_12mp(), args.detector, args.runs),
        bench_photo("12 MP portrait", make_portrait(), args.detector, args.runs),
        bench_photo("crowd photo", make_crowd(), args.detector, args.runs),
    ]
    print("\nall targets met" if all(results) else "\nsome targets missed (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
