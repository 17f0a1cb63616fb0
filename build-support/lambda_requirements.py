"""The pip requirements of each Lambda function, read from pyproject.toml (the only place pins live),
and what the Lambda runtime provides, which the packages must not ship.

Used by src/Makefile during `sam build`:

    python build-support/lambda_requirements.py api        # powertools only: no OpenCV/numpy/Pillow
    python build-support/lambda_requirements.py worker     # + the whole `image` extra (OpenCV included)
    python build-support/lambda_requirements.py variants   # + OpenCV and numpy only: no model, no Pillow
    python build-support/lambda_requirements.py provided   # paths to delete from an artifact

The runtime provides boto3 and its whole dependency closure. Shipping botocore's dependencies without
botocore (aws-xray-sdk pulls them in) would put our urllib3, dateutil and jmespath in front of the
runtime's, under the runtime's botocore; shipping a pinned SDK instead would cost ~35 MB of the worker's
250 MB. So the SDK and everything it needs come from the runtime, all of it.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# boto3 and its dependency closure, as distribution names.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"}
)
# What VariantsFunction takes of the `image` extra: it resizes and encodes JPEGs, nothing else. The
# worker takes all of it: its image core does its pixel work with OpenCV (docs/decisions/0017).
VARIANTS_IMAGE = frozenset({"opencv-python-headless", "numpy"})
# What each of them installs at the top of site-packages (besides its *.dist-info).
_TOP_LEVEL = {"python-dateutil": "dateutil", "six": "six.py"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def requirements(function: str, pyproject: Path = PYPROJECT) -> list[str]:
    """The pinned requirements for ``function`` (api, worker, variants), without runtime-provided packages."""
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = list(project["dependencies"])
    image = project["optional-dependencies"]["image"]
    if function == "worker":
        wanted += image
    elif function == "variants":
        wanted += [r for r in image if _name(r) in VARIANTS_IMAGE]
    elif function != "api":
        raise ValueError(f"unknown function {function!r}: expected api, worker or variants")
    return [r for r in wanted if _name(r) not in RUNTIME_PROVIDED]


def provided_paths() -> list[str]:
    """Glob patterns, relative to an artifact, of the runtime-provided packages pip installed there."""
    paths = []
    for name in sorted(RUNTIME_PROVIDED):
        paths.append(_TOP_LEVEL.get(name, name.replace("-", "_")))
        paths.append(f"{name.replace('-', '_')}-*.dist-info")
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: lambda_requirements.py api|worker|variants|provided")
    if sys.argv[1] == "provided":
        print(" ".join(provided_paths()))
    else:
        print("\n".join(requirements(sys.argv[1])))
