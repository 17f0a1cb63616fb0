"""The local stack's template reader: intrinsics, AWS's defaults, and clear errors (no moto, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoveil.local.intrinsics import Resolver
from photoveil.local.template import TemplateError, read_stack_spec

TEMPLATE = """
Parameters:
  Extra: {Type: String, Default: ""}
  Size: {Type: Number, Default: 4}
Conditions:
  HasExtra: !Not [!Equals [!Ref Extra, ""]]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: 3}
  Dlq:
    Type: AWS::SQS::Queue
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Join ["-", [in, !Ref AWS::AccountId]]
      NotificationConfiguration:
        QueueConfigurations:
          - {Event: "s3:ObjectCreated:*", Queue: !GetAtt Queue.Arn}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Handler: some.module.handle
      Environment:
        Variables:
          BUCKET: !Ref Bucket
          ORIGINS: !If [HasExtra, !Ref Extra, !Ref AWS::NoValue]
      Events:
        Work: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn, BatchSize: !Ref Size}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


def test_the_spec_follows_the_template_and_aws_defaults(tmp_path: Path) -> None:
    spec = read_stack_spec(write(tmp_path, TEMPLATE))

    assert spec.uploads_bucket.name == "in-123456789012"
    assert spec.upload_queue.name == "photoveil-Queue"
    assert spec.upload_queue.redrive_policy["maxReceiveCount"] == 3
    assert spec.dead_letter_queue(spec.upload_queue).name == "photoveil-Dlq"
    assert spec.upload_queue.visibility_timeout_s == 30  # SQS's default: the template sets none
    [worker] = spec.functions.values()
    assert (worker.handler, worker.timeout_s, worker.memory_mb) == ("some.module.handle", 3, 128)
    [source] = worker.sqs_sources
    assert (source.queue_arn, source.batch_size) == (spec.upload_queue.arn, 4)
    assert spec.env == {"BUCKET": "in-123456789012"}  # AWS::NoValue leaves the variable out


def test_the_visibility_override_reaches_only_consumed_queues(tmp_path: Path) -> None:
    spec = read_stack_spec(write(tmp_path, TEMPLATE)).with_visibility_timeout(7)

    assert spec.upload_queue.visibility_timeout_s == 7
    assert "VisibilityTimeout" not in spec.dead_letter_queue(spec.upload_queue).attributes


def test_conditions_and_list_functions_resolve_with_parameter_defaults() -> None:
    template = {
        "Parameters": {"Stage": {"Default": "dev"}},
        "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
    }
    resolve = Resolver(template, refs={})

    assert resolve({"Fn::If": ["IsProd", "big", "small"]}) == "small"
    split = {"Fn::Split": ["/", "a/b/c"]}
    assert resolve({"Fn::Join": ["-", [{"Fn::Select": [2, split]}, {"Ref": "Stage"}]]}) == "c-dev"
    assert resolve({"Fn::Sub": "${AWS::Region}-${Stage}"}) == "us-east-1-dev"
    assert resolve({"Fn::Sub": ["${X}!", {"X": {"Ref": "Stage"}}]}) == "dev!"


def test_what_only_aws_knows_stays_unresolved() -> None:
    resolve = Resolver({}, refs={})

    assert resolve({"Fn::GetAtt": ["Distribution", "DomainName"]}) is None
    assert resolve({"Fn::Sub": "https://${Distribution.DomainName}"}) is None
    assert resolve({"Fn::Join": ["", ["a", {"Fn::GetAtt": ["X", "Y"]}]]}) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "not found"),
        ("Resources: [unclosed\n", "could not be read"),
        ("Parameters: {}\n", "has no Resources"),
        ("Resources:\n  F: {Type: AWS::Serverless::Function, Properties: {}}\n", "F has no Handler"),
        (
            "Resources:\n  B: {Type: AWS::S3::Bucket, Properties: {LifecycleConfiguration: {Rules: [{}]}}}\n",
            "'Status'",
        ),
    ],
)
def test_a_template_the_stack_cannot_use_is_an_error_naming_it(
    tmp_path: Path, text: str | None, message: str
) -> None:
    path = write(tmp_path, text) if text is not None else tmp_path / "missing.yaml"

    with pytest.raises(TemplateError, match=message) as raised:
        read_stack_spec(path)

    assert str(path) in str(raised.value)


REPO_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def test_parameter_overrides_reach_the_functions_environment_and_defaults_stay_a_deployments() -> None:
    defaults = read_stack_spec(REPO_TEMPLATE).env
    raised = read_stack_spec(REPO_TEMPLATE, {"UploadsPerClientHour": "7", "UploadsPerDay": "9"}).env
    assert (defaults["UPLOADS_PER_CLIENT_HOUR"], defaults["UPLOADS_PER_DAY"]) == ("20", "20000")
    assert (raised["UPLOADS_PER_CLIENT_HOUR"], raised["UPLOADS_PER_DAY"]) == ("7", "9")
    assert raised["UPLOADS_PER_CLIENT_DAY"] == defaults["UPLOADS_PER_CLIENT_DAY"]


def test_an_override_of_no_parameter_is_refused() -> None:
    with pytest.raises(TemplateError, match="no parameter UploadsPerHour"):
        read_stack_spec(REPO_TEMPLATE, {"UploadsPerHour": "7"})


@pytest.mark.parametrize(
    "argv",
    [
        ["--parameter-overrides", "UploadsPerDay=9", "EmailsPerRecipientDay=2"],
        ["--parameter-overrides", "ParameterKey=UploadsPerDay,ParameterValue=9", "EmailsPerRecipientDay=2"],
        [
            "--parameter-overrides",
            "UploadsPerDay=1",
            "--parameter-overrides",
            "UploadsPerDay=9",
            "EmailsPerRecipientDay=2",
        ],
    ],
)
def test_the_command_line_takes_overrides_as_sam_deploy_does(argv: list[str]) -> None:
    from photoveil.local.cli import _parser

    args = _parser().parse_args(argv)
    assert args.parameter_overrides == {"UploadsPerDay": "9", "EmailsPerRecipientDay": "2"}
