"""`make bench` (cold starts): each function's INIT as Lambda runs it, in a fresh Python process.

INIT here is what a new execution environment does before its first event is handled: import the
handler module, read the settings, build the clients and, for the worker, load the face model (which
PhotoVeil does on first use, so the first invocation pays it). Each figure is the median of RUNS fresh
processes, measured inside the process from interpreter start-up to the end of INIT, twice:

* with bytecode: the .pyc files this venv holds (what a package with precompiled bytecode would give);
* without: every module compiled from source (an empty PYTHONPYCACHEPREFIX, nothing written), which is
  what the Lambda package gives: src/Makefile ships no bytecode, because .pyc files are specific to the
  interpreter version and this machine has no CPython 3.13 to compile them for the runtime.

No AWS call is made: clients are built, not used. Figures are printed, never asserted.

    .venv/bin/python bench/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Runs in the child process: INIT of one function, timed from the interpreter's own start. Without
# bytecode, modules of what the package ships are compiled from source (their cached .pyc is ignored);
# the standard library and the SDK the runtime provides keep theirs, as on Lambda.
CHILD = """
import json, re, sys, time
started = time.perf_counter()
if sys.argv[4] == "compile":
    import importlib.machinery, photoveil, site
    shipped = tuple(site.getsitepackages()) + (photoveil.__path__[0],)
    provided = tuple(f"/{name}/" for name in sys.argv[5].split(","))
    stats = importlib.machinery.SourceFileLoader.path_stats
    def path_stats(self, path):
        if path.startswith(shipped) and not any(p in path for p in provided):
            raise OSError("no bytecode in the package")  # get_code then compiles the source
        return stats(self, path)
    importlib.machinery.SourceFileLoader.path_stats = path_stats
import importlib
handler = importlib.import_module(sys.argv[1])
imported = time.perf_counter()
from photoveil.dependencies import get_dependencies
deps = get_dependencies()
deps.settings
for name in sys.argv[2].split(","):
    getattr(deps, name)
built = time.perf_counter()
if sys.argv[3] == "model":
    deps.detector
done = time.perf_counter()
print(json.dumps({
    "import": imported - started, "clients": built - imported, "model": done - built,
    "peak_mb": int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) / 1024,
}))
"""
REQUIREMENTS = Path(__file__).resolve().parents[1] / "build-support" / "lambda_requirements.py"


def runtime_provided() -> list[str]:
    """Top-level names of what the Lambda runtime provides (src/Makefile strips them from the packages)."""
    spec = importlib.util.spec_from_file_location("lambda_requirements", REQUIREMENTS)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [p.removesuffix(".py") for p in module.provided_paths() if not p.endswith(".dist-info")]


FUNCTIONS = {
    # name: (handler module, adapters built at INIT, loads the model)
    "ApiFunction": ("photoveil.handlers.api", "jobs,storage,queue,cdn", False),
    "BlurFunction": ("photoveil.handlers.worker", "jobs,storage,mailer,cdn", True),
    "VariantsFunction": ("photoveil.handlers.variants", "jobs,storage,messages", False),
}

LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "photoveil-bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "JOBS_TABLE": "jobs",
    "QUOTAS_TABLE": "quotas",
    "UPLOADS_BUCKET": "uploads",
    "BLURRED_BUCKET": "blurred",
    "PUBLIC_BASE_URL": "https://photos.example",
    "BLUR_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/blur",
    "SENDER_EMAIL": "photos@photoveil.example",
    "DETECTOR": "both",
    "POWERTOOLS_SERVICE_NAME": "photoveil",
}


def init_once(module: str, adapters: str, model: bool, *, bytecode: bool) -> dict[str, float]:
    """One fresh process's INIT; seconds per phase, the process's own start-up included in 'total'."""
    env = {**os.environ, **LAMBDA_ENV}
    mode = "cached" if bytecode else "compile"
    args = [sys.executable, "-B", "-c", CHILD, module, adapters, "model" if model else "-", mode]
    start = time.perf_counter()
    done = subprocess.run(
        [*args, ",".join(runtime_provided())],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    total = time.perf_counter() - start
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["total"] = total
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json-out", type=Path, help="also write the medians here (make simulate)")
    args = parser.parse_args(argv)
    figures: dict[str, dict[str, float]] = {}
    load = os.getloadavg()[0]
    print(f"Cold start (INIT) per function, median of {args.runs} fresh processes, load {load:.1f}:")
    columns = ("total", "imports", "clients", "model", "peak")
    print(f"  {'function':<16} {'bytecode':<9} " + " ".join(f"{c:>8}" for c in columns))
    for name, (module, adapters, model) in FUNCTIONS.items():
        for bytecode in (True, False):
            runs = [init_once(module, adapters, model, bytecode=bytecode) for _ in range(args.runs)]
            med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            figures.setdefault(name, {})["bytecode_s" if bytecode else "no_bytecode_s"] = med["total"]
            print(
                f"  {name:<16} {'yes' if bytecode else 'no':<9} {med['total']:7.2f}s {med['import']:7.2f}s "
                f"{med['clients']:7.2f}s {med['model']:7.2f}s {med['peak_mb']:6.0f}MB"
            )
    print("  (Lambda ships no bytecode: see the module docstring; 'total' includes interpreter start-up.)")
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
