"""The IAM net: every function runs under its role as template.yaml gives it and moto enforces it, so a
permission the template lacks fails here as it would on AWS, with AccessDenied.

Each test takes a copy of the template with one permission taken away or pointed at the wrong resource,
and drives the path that needs it (the same paths pass with the template as written: test_blur,
test_owner, test_variants, test_api).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from photoveil.local.events import sqs_batch_event
from photoveil.local.iam import RoleSpec, function_roles
from photoveil.local.template import load_template

from .helpers import (
    BLUR_QUEUE_URL,
    BLURRED_BUCKET,
    GOOD_JOB,
    PARAMETERS,
    REGION,
    RESOURCE_NAMES,
    TEMPLATE,
    UPLOADS_BUCKET,
    Aws,
    Functions,
    load_event,
    s3_put_event,
)
from .test_blur import RacingJobs
from .test_owner import BADGE, drain_blur_queue, owner_event
from .test_variants import publish
from .test_withdrawals import cdn as cdn
from .test_withdrawals import exact_paths, invalidated

Change = Callable[[dict[str, Any]], None]


def _statements(template: dict[str, Any], role: str, sid: str) -> tuple[list[dict[str, Any]], int]:
    """The list holding ROLE's statement SID, and where in it."""
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        statements = policy["PolicyDocument"]["Statement"]
        for index, statement in enumerate(statements):
            if statement.get("Sid") == sid:
                return statements, index
            if "Fn::If" in statement and statement["Fn::If"][1].get("Sid") == sid:
                return [statement["Fn::If"][1]], 0  # a conditional statement: its "true" branch
    raise AssertionError(f"{role} has no statement {sid}")


def without(role: str, sid: str, action: str) -> Change:
    """The template with ACTION taken out of ROLE's statement SID (the statement gone if it was all)."""

    def change(template: dict[str, Any]) -> None:
        statements, index = _statements(template, role, sid)
        actions = statements[index]["Action"]
        actions = actions if isinstance(actions, list) else [actions]
        assert action in actions
        if len(actions) == 1:
            del statements[index]
        else:
            statements[index]["Action"] = [a for a in actions if a != action]

    return change


def elsewhere(role: str, sid: str, resource: Any) -> Change:
    """The template with ROLE's statement SID granted on RESOURCE instead."""

    def change(template: dict[str, Any]) -> None:
        statements, index = _statements(template, role, sid)
        statements[index]["Resource"] = resource

    return change


@pytest.fixture
def roles(request: pytest.FixtureRequest) -> dict[str, RoleSpec]:
    """The functions' roles made from the template with the test's change (overrides conftest's)."""
    template = copy.deepcopy(load_template(TEMPLATE))
    request.param(template)
    return function_roles(template, PARAMETERS, RESOURCE_NAMES)


def denials(logs: Callable[[], list[dict[str, Any]]]) -> list[str]:
    """The errors the functions logged that were AccessDenied."""
    return [json.dumps(line) for line in logs() if "AccessDenied" in json.dumps(line)]


def create_job(functions: Functions, context: Any) -> tuple[str, str]:
    event = load_event("api_create_upload.json")
    response = functions.api.invoke(event, context)
    assert response["statusCode"] == 201, response["body"]
    created = json.loads(response["body"])
    return created["jobId"], created["ownerToken"]


def blur(aws: Aws, functions: Functions, context: Any, job_id: str, photo: bytes) -> dict[str, Any]:
    aws.put_upload(f"uploads/{job_id}", photo)
    return functions.worker.invoke(s3_put_event(f"uploads/{job_id}", len(photo)), context)


@pytest.mark.parametrize(
    "roles", [without("BlurRole", "PublishBlurred", "s3:DeleteObject")], ids=["BlurRole"], indirect=True
)
def test_without_s3_delete_on_photos_the_worker_cannot_withdraw_one(
    aws: Aws, functions: Functions, context, astronaut_path, logs
) -> None:
    # The defect issue 10 names: a photo published while another worker refused the upload stays public.
    deps = functions.worker.dependencies
    deps.__dict__["jobs"] = RacingJobs(deps.jobs)
    job_id, _ = create_job(functions, context)

    response = blur(aws, functions, context, job_id, astronaut_path.read_bytes())

    assert len(response["batchItemFailures"]) == 1
    assert aws.keys(BLURRED_BUCKET) == [f"p/{job_id}.jpg"]
    assert denials(logs)


@pytest.mark.parametrize(
    "roles", [without("BlurRole", "ReadAndDeleteOriginals", "s3:GetObject")], ids=["BlurRole"], indirect=True
)
def test_without_s3_get_on_uploads_no_photo_is_blurred(
    aws: Aws, functions: Functions, context, astronaut_path, logs
) -> None:
    job_id, _ = create_job(functions, context)

    response = blur(aws, functions, context, job_id, astronaut_path.read_bytes())

    assert len(response["batchItemFailures"]) == 1
    assert aws.keys(BLURRED_BUCKET) == [] and aws.keys(UPLOADS_BUCKET) == [f"uploads/{job_id}"]
    assert denials(logs)


OWNER_EDIT_WITHOUT_THE_QUEUE = {
    "no sqs:SendMessage": without("ApiRole", "QueueEdits", "sqs:SendMessage"),
    "the wrong queue": elsewhere("ApiRole", "QueueEdits", {"Fn::GetAtt": ["BlurDLQ", "Arn"]}),
}


@pytest.mark.parametrize(
    "roles", OWNER_EDIT_WITHOUT_THE_QUEUE.values(), ids=OWNER_EDIT_WITHOUT_THE_QUEUE.keys(), indirect=True
)
def test_an_owner_edit_needs_sqs_send_on_the_blur_queue(
    aws: Aws, functions: Functions, context, astronaut_path, logs
) -> None:
    job_id, token = create_job(functions, context)
    assert blur(aws, functions, context, job_id, astronaut_path.read_bytes()) == {"batchItemFailures": []}

    response = functions.api.invoke(
        owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context
    )

    assert response["statusCode"] == 500
    assert denials(logs)


@pytest.mark.parametrize(
    "roles",
    [elsewhere("ApiRole", "PresignUploads", {"Fn::Sub": "${UploadsBucket.Arn}/elsewhere/*"})],
    ids=["ApiRole"],
    indirect=True,
)
def test_an_upload_form_is_authorised_as_the_api_role_on_its_key(
    aws: Aws, functions: Functions, context
) -> None:
    response = functions.api.invoke(load_event("api_create_upload.json"), context)
    upload = json.loads(response["body"])["upload"]

    posted = aws.post_form(upload, b"\xff\xd8\xff", "image/jpeg")

    assert posted.status_code == 403 and b"AccessDenied" in posted.get_data()
    assert aws.keys(UPLOADS_BUCKET) == []


@pytest.mark.parametrize(
    "roles", [without("VariantsRole", "Jobs", "dynamodb:UpdateItem")], ids=["VariantsRole"], indirect=True
)
def test_an_action_of_another_service_is_checked_too(aws: Aws, functions: Functions, context, logs) -> None:
    publish(aws)

    response = functions.variants.invoke(load_event("sqs_published_raw.json"), context)

    assert len(response["batchItemFailures"]) == 1
    assert denials(logs)


@pytest.mark.parametrize(
    "roles",
    [elsewhere("ApiRole", "Jobs", {"Fn::GetAtt": ["QuotasTable", "Arn"]})],
    ids=["ApiRole"],
    indirect=True,
)
def test_the_api_s_job_statements_must_name_the_jobs_table(
    aws: Aws, functions: Functions, context, logs
) -> None:
    # moto compares a DynamoDB request with the table's ARN here (photoveil.local.iam), as AWS does: the
    # right actions on another table would fail every upload and status read once deployed.
    response = functions.api.invoke(load_event("api_create_upload.json"), context)

    assert response["statusCode"] == 500
    assert denials(logs)


@pytest.mark.parametrize(
    "roles", [without("BlurRole", "Allowances", "dynamodb:UpdateItem")], ids=["BlurRole"], indirect=True
)
def test_the_worker_counts_a_recipient_s_email_in_the_quotas_table(
    aws: Aws, functions: Functions, context, astronaut_path, logs
) -> None:
    # Issue 27: the recipient's daily allowance is spent when the email goes out; without the grant the
    # photo is still published, and no email leaves uncounted.
    event = load_event("api_create_upload.json")
    event["body"] = json.dumps({"contentType": "image/png", "size": 1000, "email": "dora@example.com"})
    job_id = json.loads(functions.api.invoke(event, context)["body"])["jobId"]

    assert blur(aws, functions, context, job_id, astronaut_path.read_bytes()) == {"batchItemFailures": []}

    assert aws.item(job_id)["status"] == {"S": "done"} and aws.sent_emails() == []
    # moto answers DynamoDB's denial as a bare 403 (AWS: AccessDeniedException); either way, not sent.
    (line,) = [line for line in logs() if line["message"] == "email not sent"]
    assert line["refused"] in ("allowance_unknown:403", "allowance_unknown:AccessDeniedException")


def _withdraw(functions: Functions, context: Any, job_id: str) -> list[int]:
    """Report the photo from three addresses (issue 20): the API withdraws it at the third."""
    codes = []
    for address in ("203.0.113.7", "198.51.100.20", "192.0.2.33"):
        event = owner_event("POST", job_id, None, {"reason": "hate"}, "/report")
        event["requestContext"]["http"]["sourceIp"] = address
        codes.append(functions.api.invoke(event, context)["statusCode"])
    return codes


@pytest.mark.parametrize(
    "roles", [without("ApiRole", "TellTheOperator", "sns:Publish")], ids=["ApiRole"], indirect=True
)
def test_telling_the_operator_needs_sns_publish_on_the_reports_topic(
    aws: Aws, functions: Functions, context, astronaut_path, logs
) -> None:
    job_id, _ = create_job(functions, context)
    assert blur(aws, functions, context, job_id, astronaut_path.read_bytes()) == {"batchItemFailures": []}

    assert _withdraw(functions, context, job_id) == [202, 202, 202]  # withdrawn all the same
    assert aws.item(job_id)["status"] == {"S": "withdrawn"}
    assert denials(logs)  # logged (and counted: OperatorAlertFailed); `photoveil admin reports` lists it


@pytest.mark.parametrize(
    "roles", [without("BlurRole", "WithholdReportedPhotos", "s3:PutObject")], ids=["BlurRole"], indirect=True
)
def test_withholding_a_withdrawn_photo_needs_s3_put_under_withheld(
    aws: Aws, functions: Functions, context, astronaut_path, logs
) -> None:
    job_id, _ = create_job(functions, context)
    assert blur(aws, functions, context, job_id, astronaut_path.read_bytes()) == {"batchItemFailures": []}
    assert _withdraw(functions, context, job_id) == [202, 202, 202]
    (message,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    event = sqs_batch_event([message], queue_arn="arn:aws:sqs:us-east-1:123456789012:blur", region=REGION)

    response = functions.worker.invoke(event, context)

    assert len(response["batchItemFailures"]) == 1  # retried, then dead-lettered and alarmed
    assert aws.keys(BLURRED_BUCKET) == [f"p/{job_id}.jpg"]
    assert denials(logs)


def as_written(template: dict[str, Any]) -> None:
    """No change: the template's roles as they are."""


@pytest.mark.parametrize("roles", [as_written], ids=["as written"], indirect=True)
def test_the_variants_function_can_write_variants_but_no_full_size_photo(
    aws: Aws, functions: Functions
) -> None:
    # Issue 27: VariantsRole could overwrite or delete any published photo (p/*); it writes and deletes
    # only variants (p/{jobId}/{size}.jpeg), which the PhotoPublished topic never announces.
    s3 = functions.variants.dependencies.s3_client  # its role's session
    photo, variant = f"p/{GOOD_JOB}.jpg", f"p/{GOOD_JOB}/800x600.jpeg"
    aws.s3.put_object(Bucket=BLURRED_BUCKET, Key=photo, Body=b"published")

    s3.put_object(Bucket=BLURRED_BUCKET, Key=variant, Body=b"a variant")
    s3.delete_object(Bucket=BLURRED_BUCKET, Key=variant)
    for call in (
        lambda: s3.put_object(Bucket=BLURRED_BUCKET, Key=photo, Body=b"replaced"),
        lambda: s3.delete_object(Bucket=BLURRED_BUCKET, Key=photo),
        lambda: s3.put_object(Bucket=BLURRED_BUCKET, Key=f"withheld/{variant}", Body=b"x"),
    ):
        with pytest.raises(ClientError, match="AccessDenied"):
            call()
    assert aws.s3.get_object(Bucket=BLURRED_BUCKET, Key=photo)["Body"].read() == b"published"


def without_a_sender(template: dict[str, Any]) -> None:
    """The template as deployed with no SenderEmail: every SendsEmail statement left out."""
    template["Conditions"]["SendsEmail"] = {"Fn::Equals": ["sends", "no email"]}


@pytest.mark.parametrize("roles", [without_a_sender], ids=["no SenderEmail"], indirect=True)
def test_without_a_sender_the_worker_still_charges_an_edit_s_invalidation_to_the_budget(
    aws: Aws, functions: Functions, context, astronaut_path, logs, cdn: str
) -> None:
    # The worker spends the day's budget of edge withdrawals when an edit replaces a version: its grant on
    # the quotas table cannot depend on mail being configured.
    event = load_event("api_create_upload.json")
    event["body"] = json.dumps({"contentType": "image/png", "size": 1000})  # no email: none is sent
    created = json.loads(functions.api.invoke(event, context)["body"])
    job_id, token = created["jobId"], created["ownerToken"]
    assert blur(aws, functions, context, job_id, astronaut_path.read_bytes()) == {"batchItemFailures": []}
    edit = owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions")
    assert functions.api.invoke(edit, context)["statusCode"] == 202

    assert len(drain_blur_queue(aws, functions, context)) == 1

    assert invalidated(aws, cdn) == [exact_paths(f"p/{job_id}.jpg")]
    assert denials(logs) == []


def _edit(aws: Aws, functions: Functions, context: Any, astronaut_path: Any) -> tuple[str, dict[str, Any]]:
    """A published photo, an edit of it asked for; (jobId, the worker's answer to the edit)."""
    job_id, token = create_job(functions, context)
    assert blur(aws, functions, context, job_id, astronaut_path.read_bytes()) == {"batchItemFailures": []}
    edit = owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions")
    assert functions.api.invoke(edit, context)["statusCode"] == 202
    (message,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    event = sqs_batch_event([message], queue_arn="arn:aws:sqs:us-east-1:123456789012:blur", region=REGION)
    return job_id, functions.worker.invoke(event, context)


@pytest.mark.parametrize(
    "roles", [without("BlurRole", "PublishBlurred", "s3:PutObjectTagging")], ids=["BlurRole"], indirect=True
)
def test_an_edit_is_tagged_with_its_days_left_which_needs_put_object_tagging(
    aws: Aws, functions: Functions, context, astronaut_path, logs
) -> None:
    # S3 authorises a PutObject that sets tags as s3:PutObjectTagging too (photoveil.local.s3tagging).
    _, edited = _edit(aws, functions, context, astronaut_path)

    assert len(edited["batchItemFailures"]) == 1  # the edit's PutObject is refused: retried
    assert denials(logs)


@pytest.mark.parametrize(
    "roles",
    [without("VariantsRole", "WriteVariants", "s3:PutObjectTagging")],
    ids=["VariantsRole"],
    indirect=True,
)
def test_sizes_are_tagged_with_their_days_left_which_needs_put_object_tagging(
    aws: Aws, functions: Functions, context, astronaut_path, logs
) -> None:
    job_id, edited = _edit(aws, functions, context, astronaut_path)
    assert edited == {"batchItemFailures": []}
    event = load_event("sqs_published_raw.json")
    key = aws.item(job_id)["photoKey"]["S"]  # the edited version, whose sizes are made late
    event["Records"][0]["body"] = event["Records"][0]["body"].replace(f"p/{GOOD_JOB}.jpg", key)

    assert len(functions.variants.invoke(event, context)["batchItemFailures"]) == 1
    assert denials(logs)


@pytest.mark.parametrize("roles", [as_written], ids=["as written"], indirect=True)
def test_a_copy_of_a_tagged_photo_needs_get_object_tagging_unless_it_replaces_the_tags(
    aws: Aws, functions: Functions
) -> None:
    # Why the withhold copies with TaggingDirective REPLACE: copying a tagged source's tags (COPY, the
    # default) needs s3:GetObjectTagging on the source, which BlurRole does not have.
    s3 = functions.worker.dependencies.s3_client
    photo = f"p/{GOOD_JOB}.jpg"
    aws.s3.put_object(Bucket=BLURRED_BUCKET, Key=photo, Body=b"restored", Tagging="photoveil-days-left=9")
    source = {"Bucket": BLURRED_BUCKET, "Key": photo}

    with pytest.raises(ClientError, match="AccessDenied"):
        s3.copy_object(Bucket=BLURRED_BUCKET, Key=f"withheld/{photo}", CopySource=source)
    s3.copy_object(
        Bucket=BLURRED_BUCKET, Key=f"withheld/{photo}", CopySource=source, TaggingDirective="REPLACE"
    )

    held = aws.s3.get_object_tagging(Bucket=BLURRED_BUCKET, Key=f"withheld/{photo}")
    assert held["TagSet"] == []
