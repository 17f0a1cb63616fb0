"""cfn-lint on template.yaml and on the template SAM translates it into."""

from __future__ import annotations

import json
from typing import Any

from cfnlint.api import ManualArgs, lint, lint_file

from .conftest import TEMPLATE, translate


def _report(matches: list[Any]) -> str:
    return "\n".join(str(m) for m in matches)


def test_cfn_lint_is_clean_on_the_sam_template() -> None:
    matches = lint_file(TEMPLATE, config=ManualArgs(regions=["us-east-1"]))
    assert not matches, _report(matches)


def test_cfn_lint_is_clean_on_the_translated_template(translated: dict[str, Any]) -> None:
    matches = lint(json.dumps(translated), config=ManualArgs(regions=["us-east-1"]))
    assert not matches, _report(matches)


def test_translation_with_every_optional_feature_on_is_clean(template: dict[str, Any]) -> None:
    # The conditional branches (email, alarm topic, extra CORS origins, reservation) must translate too.
    out = translate(
        template,
        {
            "SenderEmail": "noreply@example.com",
            "AlarmEmail": "ops@example.com",
            "ExtraAllowedOrigins": "http://127.0.0.1:3000,http://localhost:3000",
            "WorkerReservedConcurrency": 120,
            "Detector": "both",
        },
    )
    matches = lint(json.dumps(out), config=ManualArgs(regions=["us-east-1"]))
    assert not matches, _report(matches)
