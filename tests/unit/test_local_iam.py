"""photoveil.local.iam: the functions' roles as SAM translates the template, made as moto can check them."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoveil.local.iam import local_statements, read_function_roles
from photoveil.local.specs import TemplateError

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
BLURRED = "arn:aws:s3:::photoveil-blurred-123456789012-10ca1000"


@pytest.fixture(scope="module")
def roles() -> dict:
    return read_function_roles(
        TEMPLATE, {"SenderEmail": "photos@photoveil.example", "Detector": "centerface"}
    )


def statements(roles: dict, function: str) -> dict[str, dict]:
    (policy,) = roles[function].policies.values()
    return {s.get("Sid", f"#{i}"): s for i, s in enumerate(policy["Statement"])}


def test_every_function_gets_its_own_role_from_the_template(roles: dict) -> None:
    assert {function: role.name for function, role in roles.items()} == {
        "ApiFunction": "photoveil-ApiRole",
        "BlurFunction": "photoveil-BlurRole",
        "VariantsFunction": "photoveil-VariantsRole",
        "SiteContentFunction": "photoveil-SiteContentRole",
        "MailEventsFunction": "photoveil-MailEventsRole",
    }
    trust = roles["BlurFunction"].trust_policy["Statement"][0]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_s3_and_sqs_statements_keep_their_local_arns(roles: dict) -> None:
    blur = statements(roles, "BlurFunction")
    assert blur["PublishBlurred"]["Resource"] == f"{BLURRED}/p/*"
    assert blur["ConsumeQueue"]["Resource"] == "arn:aws:sqs:us-east-1:123456789012:photoveil-BlurQueue"


def test_the_template_s_parameters_decide_its_conditional_statements(roles: dict) -> None:
    blur = statements(roles, "BlurFunction")
    assert "SendEmail" in blur  # a sender is given
    assert "DetectFaces" not in blur  # the in-process detector: no Rekognition
    assert "Condition" not in blur["SendEmail"] and blur["SendEmail"]["Resource"] == "*"


def test_other_services_are_checked_by_action_against_any_resource() -> None:
    statement = {
        "Effect": "Allow",
        "Action": ["ses:SendEmail"],
        "Resource": "arn:aws:ses:us-east-1:123456789012:identity/*",
    }
    assert local_statements(statement) == [statement | {"Resource": "*"}]


def test_dynamodb_statements_keep_their_table_arns() -> None:
    statement = {
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem"],
        "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/jobs",
    }
    assert local_statements(statement) == [statement | {"Action": ["dynamodb:GetItem"]}]


def test_conditions_are_left_out() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": "arn:aws:sqs:us-east-1:123456789012:q",
        "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::b"}},
    }
    (local,) = local_statements(statement)
    assert "Condition" not in local


def test_sqs_actions_come_with_their_batch_form() -> None:
    statement = {
        "Effect": "Allow",
        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
        "Resource": "arn:aws:sqs:us-east-1:123456789012:q",
    }
    (local,) = local_statements(statement)
    assert local["Action"] == ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:DeleteMessageBatch"]


def test_deleting_a_bucket_s_objects_also_covers_delete_objects_on_the_bucket() -> None:
    statement = {
        "Effect": "Allow",
        "Action": ["s3:PutObject", "s3:DeleteObject"],
        "Resource": f"{BLURRED}/p/*",
    }
    assert local_statements(statement) == [
        statement,
        {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": [BLURRED]},
    ]


def test_an_s3_resource_that_does_not_resolve_locally_is_an_error() -> None:
    with pytest.raises(TemplateError, match="did not resolve"):
        local_statements({"Sid": "Broken", "Effect": "Allow", "Action": "s3:GetObject", "Resource": [None]})


def test_dynamodb_is_checked_by_table_only_while_iam_is_enforced() -> None:
    # The table check used to stay on DynamoDB's handler for good once any block had entered.
    from moto.dynamodb.responses import DynamoHandler

    from photoveil.local.iam import iam_enforced

    assert "_determine_resource" not in DynamoHandler.__dict__
    with iam_enforced():
        with iam_enforced():  # nested, as a test inside the running local stack is
            assert "_determine_resource" in DynamoHandler.__dict__
        assert "_determine_resource" in DynamoHandler.__dict__  # the outer block still wants it
    assert "_determine_resource" not in DynamoHandler.__dict__


def test_a_patch_lasts_until_the_last_block_leaves_whatever_the_order() -> None:
    from photoveil.local.patching import PatchWhileEntered

    class Base:
        def answer(self) -> str:
            return "inherited"

    class Own(Base):
        pass

    class Mine(Base):
        def answer(self) -> str:
            return "its own"

    for owner, before in ((Own, "inherited"), (Mine, "its own")):
        patch = PatchWhileEntered(owner, "answer", lambda original: lambda self: f"patched {original(self)}")
        first, second = patch.entered(), patch.entered()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # threads leave in any order: the second still relies on it
        assert owner().answer() == f"patched {before}"
        second.__exit__(None, None, None)
        assert owner().answer() == before
        assert ("answer" in owner.__dict__) == (owner is Mine)  # an inherited one is not copied in
