"""The local stack's moderation switch: off by default (moto has no Rekognition), on only with the
caller's own AWS credentials, and the roles it makes follow the template's Moderation parameter."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoveil.local.cli import MODERATION_NOTES, _parser
from photoveil.local.stack import LocalOptions, LocalStack, ModerationNeedsCredentialsError


def _actions(stack: LocalStack) -> set[str]:
    role = stack.roles["BlurFunction"]
    return {
        action
        for document in role.policies.values()
        for statement in document["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }


def test_moderation_is_off_by_default_and_says_so() -> None:
    args = _parser().parse_args([])
    assert args.moderation == "off"
    assert "Moderation is OFF" in MODERATION_NOTES[args.moderation]
    stack = LocalStack(LocalOptions())
    assert "rekognition:DetectModerationLabels" not in _actions(stack)


def test_moderation_without_credentials_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ModerationNeedsCredentialsError, match="--moderation off"):
        LocalStack(LocalOptions(moderation="rekognition"))


def test_moderation_with_credentials_gives_the_worker_the_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    stack = LocalStack(LocalOptions(moderation="rekognition"))
    assert "rekognition:DetectModerationLabels" in _actions(stack)
