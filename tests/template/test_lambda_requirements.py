"""The two Lambda packages get the right dependencies (read from pyproject.toml by the SAM build)."""

from __future__ import annotations

import importlib.util
import tomllib

from .conftest import REPO

_spec = importlib.util.spec_from_file_location(
    "lambda_requirements", REPO / "build-support" / "lambda_requirements.py"
)
assert _spec and _spec.loader
lambda_requirements = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lambda_requirements)

IMAGE_STACK = {"opencv-python-headless", "numpy", "pillow", "pillow-heif"}
WORKER_IMAGE_STACK = {"opencv-python-headless", "numpy", "onnxruntime", "pillow", "pillow-heif"}


def _names(requirements: list[str]) -> set[str]:
    return {lambda_requirements._name(r) for r in requirements}


def test_api_package_has_no_image_stack() -> None:
    names = _names(lambda_requirements.requirements("api"))
    assert "aws-lambda-powertools" in names
    assert not names & IMAGE_STACK


def test_worker_package_has_the_whole_image_stack_opencv_included_at_the_pinned_versions() -> None:
    worker = lambda_requirements.requirements("worker")
    assert _names(worker) >= WORKER_IMAGE_STACK | {"aws-lambda-powertools"}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    image = project["optional-dependencies"]["image"]
    assert set(image) <= set(worker)


def test_the_image_core_has_one_jpeg_codec() -> None:
    # OpenCV's: a second one (simplejpeg, decision 0016) saved ~3 % of the service path's CPU, under
    # the 10 % it would have to save to stay (docs/decisions/0017-image-core-on-opencv.md).
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    every_pin = _names(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        every_pin |= _names(extra)
    assert "simplejpeg" not in every_pin
    assert "simplejpeg" not in _names(lambda_requirements.requirements("worker"))


def test_the_command_lines_progress_bar_is_in_neither_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    cli_only = _names(project["optional-dependencies"]["cli"])
    assert "tqdm" in cli_only
    for function in ("api", "worker"):
        assert not _names(lambda_requirements.requirements(function)) & cli_only


def test_the_capacity_simulations_packages_are_in_no_function() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    bench_only = _names(project["optional-dependencies"]["bench"])
    assert {"simpy", "matplotlib"} <= bench_only
    for function in ("api", "worker", "variants"):
        assert not _names(lambda_requirements.requirements(function)) & bench_only


def test_runtime_provided_boto3_is_not_bundled() -> None:
    for function in ("api", "worker"):
        assert not _names(lambda_requirements.requirements(function)) & {"boto3", "botocore"}


def _closure(name: str) -> set[str]:
    """A distribution and everything it requires (extras left out), from the installed metadata."""
    import importlib.metadata

    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for requirement in importlib.metadata.requires(current) or []:
            if "extra ==" not in requirement:
                todo.append(lambda_requirements._name(requirement))
    return seen


def test_the_whole_sdk_closure_is_left_to_the_runtime() -> None:
    # Shipping botocore's dependencies without botocore would shadow the runtime's copies under its botocore.
    assert _closure("boto3") == lambda_requirements.RUNTIME_PROVIDED
    stripped = lambda_requirements.provided_paths()
    for name in ("botocore", "urllib3", "dateutil", "jmespath", "six.py", "python_dateutil-*.dist-info"):
        assert name in stripped
