"""Fixtures for the template checks: template.yaml as written, and as SAM translates it (offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from photoveil.local.iam import translate  # what the transform makes of it, offline

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"


def load_template() -> dict[str, Any]:
    """template.yaml with its short tags (!Ref, !Sub, ...) in JSON form ({"Ref": ...}, {"Fn::Sub": ...})."""
    return json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    return translate(template)
