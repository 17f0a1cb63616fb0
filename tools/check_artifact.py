"""Check that every shared library in a Lambda artifact can find the libraries it needs (DT_NEEDED).

    .venv/bin/python tools/check_artifact.py .aws-sam/build/BlurFunction

Run by scripts/build.sh after the worker's files are stripped (src/Makefile): a library needed by one
that is left must be left too. Needs are resolved in the library's own folder, its RUNPATH ($ORIGIN
relative) and the runtime's system libraries (glibc, libstdc++, zlib). Works on aarch64 files from any
machine: it reads the ELF headers with `readelf`, it loads nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

# In the python3.12+ Lambda runtimes (Amazon Linux 2023) whatever the artifact carries.
SYSTEM = re.compile(
    r"^(libc|libm|libdl|libpthread|librt|libutil|libstdc\+\+|libgcc_s|libz|ld-linux-[\w-]+)\.so"
)


def dynamic_section(path: Path) -> tuple[list[str], list[str]]:
    """(DT_NEEDED names, RUNPATH/RPATH entries) of an ELF file."""
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=False).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
    paths = [
        p
        for found in re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[(.+?)\]", out)
        for p in found.split(":")
    ]
    return needed, paths


def missing_needs(root: Path) -> list[str]:
    """'library: need' for every DT_NEEDED entry that nothing in or under the runtime provides."""
    problems = []
    for lib in sorted(root.rglob("*.so*")):
        if not lib.is_file() or lib.read_bytes()[:4] != b"\x7fELF":
            continue
        needed, runpaths = dynamic_section(lib)
        folders = [lib.parent] + [Path(p.replace("$ORIGIN", str(lib.parent))) for p in runpaths]
        for need in needed:
            if SYSTEM.match(need) or any((folder / need).exists() for folder in folders):
                continue
            problems.append(f"{lib.relative_to(root)}: {need}")
    return problems


def main() -> int:
    root = Path(sys.argv[1])
    problems = missing_needs(root)
    for problem in problems:
        print(f"check_artifact: missing {problem}", file=sys.stderr)
    print(f"check_artifact: {root}: {'OK' if not problems else f'{len(problems)} missing'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
