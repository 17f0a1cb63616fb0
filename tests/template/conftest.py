"""Fixtures for the template checks: template.yaml as written, and as SAM translates it (offline)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"


def load_template() -> dict[str, Any]:
    """template.yaml with its short tags (!Ref, !Sub, ...) in JSON form ({"Ref": ...}, {"Fn::Sub": ...})."""
    return json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))


def translate(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """What CloudFormation's AWS::Serverless transform makes of the template, computed offline.

    samtranslator needs a region (for ARNs) but never calls AWS for a template whose functions have
    explicit roles; CodeUri must look like an S3 URI, as it does after `sam package`.
    """
    sam = copy.deepcopy(template)
    sam["Globals"]["Function"]["CodeUri"] = "s3://photoveil-artifacts/code.zip"
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="us-east-1"))
    return translator.translate(sam, parameter_values=parameters or {}, get_managed_policy_map=dict)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    return translate(template)
