"""Start-up CPU of a `photoveil blur` process before its first photo, in fresh processes.

Every millisecond here counts against `make bench`'s ratio about five times more than against the
floor (bench/floor.py pays numpy and OpenCV too). Each run is a fresh interpreter that does what
`photoveil blur IN -o OUT` does before it detects anything, and reports its own CPU time per phase:

* ``python``: the interpreter and site, up to the child's first line;
* ``imports``: photoveil.cli, then the modules `photoveil blur` imports late for its first photo
  (the detectors, CenterFace, the pipeline); numpy and OpenCV come with them;
* ``session``: get_detector("centerface"): ONNX Runtime's import, the model's check, the session;
* ``decode``: load_image on IN (12 MP: the decode dominates; the header work and imports are the rest);
* ``total``: the whole child's CPU (user + sys, from the parent), as `make bench` counts it.

``--against SRC`` also runs children with PYTHONPATH=SRC (another checkout's ``src``, for a
before/after), interleaved with this checkout's, and prints the paired ratio of ``total``. The figures
are medians (with min and max), printed, never asserted; the machine's load moves them.

    .venv/bin/python bench/startup.py bench-out/portrait-12mp.jpg [--runs 21] [--against ../main/src]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import sys, time
started = time.process_time()
import photoveil.cli
from photoveil.imaging.detectors import get_detector
import photoveil.imaging.detectors.centerface
from photoveil.imaging.pipeline import blur_photo
imported = time.process_time()
get_detector("centerface")
built = time.process_time()
from photoveil.imaging.image import load_image
with open(sys.argv[1], "rb") as photo:
    load_image(photo.read())
done = time.process_time()
modules = sorted(sys.modules)  # before json, which only this report imports
import json
print(json.dumps({
    "python": started, "imports": imported - started, "session": built - imported,
    "decode": done - built, "modules": modules,
}))
"""
PHASES = ("python", "imports", "session", "decode", "total")
WATCHED = ("PIL", "pillow_heif", "json", "tempfile", "concurrent.futures", "logging", "onnxruntime")


def run_child(photo: Path, pythonpath: str | None) -> dict:
    """One fresh process; its phases in CPU seconds and the modules it had imported at the end."""
    env = {**os.environ, "PHOTOVEIL_THREADS": os.environ.get("PHOTOVEIL_THREADS", "1")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(photo)], env=env, capture_output=True, text=True, check=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["total"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return figures


def summary(label: str, runs: list[dict]) -> None:
    cells = []
    for phase in PHASES:
        values = [run[phase] * 1000 for run in runs]
        cells.append(f"{phase} {statistics.median(values):6.1f} ({min(values):.0f}-{max(values):.0f})")
    print(f"  {label:<10} " + "  ".join(cells) + "  ms CPU")
    modules = runs[-1]["modules"]
    seen = [name for name in WATCHED if name in modules]
    print(f"  {'':<10} {len(modules)} modules; of {', '.join(WATCHED)}: {', '.join(seen) or 'none'}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path, help="a JPEG (e.g. bench-out/portrait-12mp.jpg)")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--against", metavar="SRC", help="also run another checkout's src, interleaved")
    args = parser.parse_args(argv)
    print(f"start-up CPU, medians (min-max) of {args.runs} fresh processes, load {os.getloadavg()[0]:.1f}:")
    ours: list[dict] = []
    theirs: list[dict] = []
    run_child(args.photo, None)  # warm the page cache, not counted
    for _ in range(args.runs):
        ours.append(run_child(args.photo, None))
        if args.against:
            theirs.append(run_child(args.photo, args.against))
    summary("this", ours)
    if args.against:
        summary("against", theirs)
        ratios = sorted(a["total"] / b["total"] for a, b in zip(ours, theirs, strict=True))
        print(
            f"  total this/against, paired: median {statistics.median(ratios):.3f} "
            f"({ratios[0]:.3f}-{ratios[-1]:.3f})"
        )
    print(f"  load at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
