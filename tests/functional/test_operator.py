"""`photoveil admin --stack NAME` as an operator runs it against a deployed stack, signing as an IAM user
with exactly the template's OperatorPolicy, IAM enforced: every statement's action is used here, the
CloudFormation and CloudFront ones included, which the local stack (no CloudFormation, no distribution)
never calls. moto matches the DynamoDB and S3 statements against their resources, the others by action
only (photoveil.local.iam)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from photoveil import admin
from photoveil.local.iam import create_operator, read_operator_policy
from photoveil.local.template import load_template
from photoveil.service.review import reported_photos, restore, take_down

from .conftest import ADMIN
from .helpers import (
    BLUR_QUEUE_URL,
    BLURRED_BUCKET,
    JOBS_TABLE,
    PARAMETERS,
    PUBLIC_BASE_URL,
    REGION,
    RESOURCE_NAMES,
    TEMPLATE,
    UPLOADS_BUCKET,
    Aws,
    Functions,
)
from .test_owner import photo as photo
from .test_owner import status
from .test_reports import ADDRESSES, published_keys, report, withheld_keys
from .test_withdrawals import cdn as cdn
from .test_withdrawals import exact_paths, invalidated, sqs_event

STACK = "photoveil"
# The stack's one resource, which moto's CloudFormation keeps as nothing, as CloudFormation does.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS")


@pytest.fixture
def policy(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The template's OperatorPolicy as the local stack gives its operator, or (parametrized, indirect)
    with one statement taken away."""
    taken_away = getattr(request, "param", None)
    if taken_away is None:
        return read_operator_policy(TEMPLATE, PARAMETERS, RESOURCE_NAMES)
    template = copy.deepcopy(load_template(TEMPLATE))
    statements = template["Resources"]["OperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if s["Sid"] != taken_away]
    (tmp_path / "template.json").write_text(json.dumps(template))
    return read_operator_policy(tmp_path / "template.json", PARAMETERS, RESOURCE_NAMES)


@pytest.fixture
def connect(
    aws: Aws, identities: dict[str, Any], cdn: str, policy: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Any]:
    """`photoveil admin --stack photoveil` connecting: a stack whose outputs name the test's resources, and
    an operator with exactly POLICY whose keys are the environment's AWS credentials."""
    session = identities[ADMIN].session
    keys = create_operator(session.client("iam"), policy)
    outputs = {
        "JobsTableName": JOBS_TABLE,
        "UploadsBucketName": UPLOADS_BUCKET,
        "BlurredBucketName": BLURRED_BUCKET,
        "SiteUrl": PUBLIC_BASE_URL,
        "BlurQueueUrl": BLUR_QUEUE_URL,
        "DistributionId": cdn,
    }
    session.client("cloudformation").create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(
            {
                "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {name: {"Value": value} for name, value in outputs.items()},
            }
        ),
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_access_key)
    return lambda: admin.stack_dependencies(STACK, REGION)


def withdrawn(aws: Aws, functions: Functions, context: Any, photo: Any) -> str:
    """A photo reports withdrew and the worker moved to withheld/."""
    job_id, _ = photo()
    for address in ADDRESSES:
        assert report(functions, context, job_id, address)[0] == 202
    (message,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    assert functions.worker.invoke(sqs_event(message), context) == {"batchItemFailures": []}
    return job_id


def test_the_operator_policy_is_enough_for_every_command_against_a_deployed_stack(
    aws: Aws, functions: Functions, photo, context: Any, connect: Callable[[], Any], cdn: str
) -> None:
    first = withdrawn(aws, functions, context, photo)
    second = withdrawn(aws, functions, context, photo)
    operator = connect()  # DescribeStacks

    assert {listed["jobId"] for listed in reported_photos(operator)} == {first, second}  # Scan
    restore(first, operator)  # GetItem, UpdateItem, CopyObject with tags, DeleteObject, CreateInvalidation
    take_down(second, operator)  # DeleteObject in both buckets, CreateInvalidation

    assert status(functions, first, context)["status"] == "done"
    assert published_keys(aws, first) == [f"p/{first}.jpg"] and withheld_keys(aws, second) == []
    # The two withdrawals' (the worker's), then the restore's and the takedown's (the operator's).
    assert invalidated(aws, cdn) == [exact_paths(f"p/{first}.jpg"), exact_paths(f"p/{second}.jpg")] * 2


@pytest.mark.parametrize("policy", ["FindTheStack"], indirect=True)
def test_without_describe_stacks_the_operator_cannot_find_the_stack(connect: Callable[[], Any]) -> None:
    with pytest.raises(admin.StackNotFoundError, match=r"not authorized|AccessDenied"):
        connect()


@pytest.mark.parametrize("policy", ["InvalidatePhotos"], indirect=True)
def test_without_create_invalidation_a_restore_stops_before_it_is_done(
    aws: Aws, functions: Functions, photo, context: Any, connect: Callable[[], Any]
) -> None:
    job_id = withdrawn(aws, functions, context, photo)

    with pytest.raises(ClientError) as refused:
        restore(job_id, connect())

    # moto's CloudFront answers the denial 403 with no error code (AWS: AccessDenied).
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.operation_name == "CreateInvalidation"

    assert aws.item(job_id)["restoring"] == {"S": f"p/{job_id}.jpg"}  # to be finished by running it again
