"""Print the pip requirements of one Lambda function, read from pyproject.toml (the only place pins live).

Used by src/Makefile during `sam build`:

    python build-support/lambda_requirements.py api      # powertools only: no OpenCV/numpy/Pillow
    python build-support/lambda_requirements.py worker   # + the `image` extra

boto3 is left out on purpose: the Lambda Python runtime provides boto3/botocore, and bundling them
would cost ~33 MB of the worker's 250 MB unzipped budget (see docs/deploy.md).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# Provided by the Lambda runtime; see the module docstring.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def requirements(function: str, pyproject: Path = PYPROJECT) -> list[str]:
    """The pinned requirements for ``function`` ("api" or "worker"), without runtime-provided packages."""
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = list(project["dependencies"])
    if function == "worker":
        wanted += project["optional-dependencies"]["image"]
    elif function != "api":
        raise ValueError(f"unknown function {function!r}: expected 'api' or 'worker'")
    return [r for r in wanted if _name(r) not in RUNTIME_PROVIDED]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: lambda_requirements.py api|worker")
    print("\n".join(requirements(sys.argv[1])))
