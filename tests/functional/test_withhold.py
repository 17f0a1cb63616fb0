"""The worker's move of a photo reports withdrew (issue 20), and the variants' read of a photo that may be
gone, against S3's answers as AWS gives them (issue 26): the local stack's S3 answers 403 for a key that is
gone to a role that may not list the bucket, and checks a copy's source (photoveil.local.s3answers). Each
path runs with the roles as template.yaml gives them, then with the one grant it needs taken away: it must
then fail with AccessDenied, as it would on AWS.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from photoveil.dependencies import Dependencies
from photoveil.local.iam import RoleSpec, function_roles
from photoveil.local.template import load_template
from photoveil.service.review import ReviewError, restore

from .helpers import (
    BLUR_QUEUE_URL,
    BLURRED_BUCKET,
    PARAMETERS,
    RESOURCE_NAMES,
    TEMPLATE,
    Aws,
    Functions,
    load_event,
)
from .test_iam import denials, without
from .test_owner import _published_event, call, owner_event, status
from .test_reports import ADDRESSES, published_keys, report, withheld_keys
from .test_variants import PHOTO_KEY, publish
from .test_withdrawals import BeforeStep, FailingOnce, exact_paths, invalidated, sqs_event
from .test_withdrawals import cdn as cdn
from .test_withdrawals import photo as photo

WITHOUT_LIST = without("BlurRole", "MissingPhotoIs404", "s3:ListBucket")
WITHOUT_READING_WITHHELD = without("BlurRole", "WithholdReportedPhotos", "s3:GetObject")
WITHOUT_VARIANTS_LIST = without("VariantsRole", "MissingPhotoIs404", "s3:ListBucket")


@pytest.fixture
def roles(request: pytest.FixtureRequest, template_roles: dict[str, RoleSpec]) -> dict[str, RoleSpec]:
    """The template's roles, or (parametrized, indirect) those of a copy with one grant taken away."""
    change = getattr(request, "param", None)
    if change is None:
        return template_roles
    template = copy.deepcopy(load_template(TEMPLATE))
    change(template)
    return function_roles(template, PARAMETERS, RESOURCE_NAMES)


@pytest.fixture
def admin(aws: Aws) -> Dependencies:
    """The operator's dependencies (`photoveil admin` with the test account's admin)."""
    return Dependencies(s3=aws.s3, dynamodb=aws.dynamodb, cloudfront=aws.cloudfront, sqs=aws.sqs)


def withdrawn(aws: Aws, functions: Functions, context: Any, job_id: str) -> dict[str, Any]:
    """Report the photo from ADDRESSES, which withdraws it; the withhold message the API queued."""
    assert [report(functions, context, job_id, address)[0] for address in ADDRESSES] == [202] * 3
    (message,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    return message


def report_after_the_withdrawal(aws: Aws, functions: Functions, context: Any, job_id: str) -> dict[str, Any]:
    """Withhold the photo (and its variants), then report it from one more address, as a visitor whose page
    was open before the withdrawal does: the worker's answer to the withhold that report queues again."""
    functions.variants.invoke(_published_event(job_id), context)  # all four objects exist: the first
    first = withdrawn(aws, functions, context, job_id)  # move finds every key it copies
    assert functions.worker.invoke(sqs_event(first), context) == {"batchItemFailures": []}
    assert report(functions, context, job_id, "192.0.2.99")[0] == 202
    (again,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    return functions.worker.invoke(sqs_event(again), context)


def test_a_report_after_the_withdrawal_moves_nothing_and_ends_cleanly(
    aws: Aws, functions: Functions, photo, context: Any, logs
) -> None:
    job_id, _ = photo()

    assert report_after_the_withdrawal(aws, functions, context, job_id) == {"batchItemFailures": []}

    assert published_keys(aws, job_id) == []
    assert len(withheld_keys(aws, job_id)) == 4  # the photo and its three variants, moved once
    assert denials(logs) == []


@pytest.mark.parametrize("roles", [WITHOUT_LIST], ids=["BlurRole"], indirect=True)
def test_without_s3_list_a_report_after_the_withdrawal_fails_into_the_dlq(
    aws: Aws, functions: Functions, photo, context: Any, logs
) -> None:
    job_id, _ = photo()

    response = report_after_the_withdrawal(aws, functions, context, job_id)

    assert len(response["batchItemFailures"]) == 1  # S3 answers 403 for the keys moved already: retried
    assert denials(logs)


def test_an_invalidation_failing_once_after_the_move_is_made_by_the_retry(
    aws: Aws, functions: Functions, photo, context: Any, cdn: str
) -> None:
    job_id, _ = photo()
    message = withdrawn(aws, functions, context, job_id)
    busy = FailingOnce(
        functions.worker.dependencies.cloudfront_client,
        "create_invalidation",
        "TooManyInvalidationsInProgress",
    )
    functions.worker.override(cloudfront=busy)

    assert len(functions.worker.invoke(sqs_event(message), context)["batchItemFailures"]) == 1
    assert busy.failed == 1 and published_keys(aws, job_id) == []  # moved before CloudFront was asked
    assert invalidated(aws, cdn) == []
    assert functions.worker.invoke(sqs_event(message), context) == {"batchItemFailures": []}  # the retry

    assert invalidated(aws, cdn) == [exact_paths(f"p/{job_id}.jpg")]
    assert "invalidatePending" not in (aws.item(job_id) or {})
    # A later report queues the move again: nothing left to move, nothing more to invalidate.
    assert report(functions, context, job_id, "192.0.2.99")[0] == 202
    (again,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    assert functions.worker.invoke(sqs_event(again), context) == {"batchItemFailures": []}
    assert len(invalidated(aws, cdn)) == 1


def withhold_while_restored(
    functions: Functions, context: Any, message: dict[str, Any], job_id: str, admin: Dependencies
) -> dict[str, Any]:
    """The worker takes the withhold; the operator restores the photo just after the worker read the job
    and before its first copy, so the worker moves the photo out after the restore moved nothing back."""
    hook = BeforeStep(2, lambda: restore(job_id, admin))  # 1: the worker's read of the job
    deps = functions.worker.dependencies
    functions.worker.override(s3=hook.wrap(deps.s3_client), dynamodb=hook.wrap(deps.dynamodb_client))
    return functions.worker.invoke(sqs_event(message), context)


def test_a_restore_racing_the_withhold_ends_published(
    aws: Aws, functions: Functions, photo, context: Any, admin: Dependencies, logs
) -> None:
    job_id, _ = photo()
    message = withdrawn(aws, functions, context, job_id)

    assert withhold_while_restored(functions, context, message, job_id, admin) == {"batchItemFailures": []}

    assert status(functions, job_id, context)["status"] == "done"
    assert published_keys(aws, job_id) == [f"p/{job_id}.jpg"] and withheld_keys(aws, job_id) == []
    served = aws.s3.get_object(Bucket=BLURRED_BUCKET, Key=f"p/{job_id}.jpg")
    assert served["Body"].read()[:3] == b"\xff\xd8\xff"  # what CloudFront's /p/ serves
    assert denials(logs) == []


@pytest.mark.parametrize("roles", [WITHOUT_READING_WITHHELD], ids=["BlurRole"], indirect=True)
def test_without_s3_get_on_withheld_a_racing_restore_is_undone(
    aws: Aws, functions: Functions, photo, context: Any, admin: Dependencies, logs
) -> None:
    job_id, _ = photo()
    message = withdrawn(aws, functions, context, job_id)

    response = withhold_while_restored(functions, context, message, job_id, admin)

    assert len(response["batchItemFailures"]) == 1  # the copy back from withheld/ is refused
    assert denials(logs)
    # The retry finds the photo restored and does nothing: the job says done, the photo is not served.
    assert functions.worker.invoke(sqs_event(message), context) == {"batchItemFailures": []}
    assert status(functions, job_id, context)["status"] == "done"
    assert published_keys(aws, job_id) == []


class BeforeClearing:
    """The worker's job store, running ACTION just before it clears a withdrawal's invalidation."""

    def __init__(self, jobs: Any, action: Any) -> None:
        self._jobs, self._action = jobs, action

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jobs, name)

    def clear_invalidation(self, job_id: str, **kwargs: Any) -> None:
        self._action()
        self._jobs.clear_invalidation(job_id, **kwargs)


def test_a_worker_late_for_one_withdrawal_leaves_the_next_one_s_invalidation_to_do(
    aws: Aws, functions: Functions, photo, context: Any, admin: Dependencies, cdn: str
) -> None:
    # Issue 26's review: the worker cleared invalidatePending on condition that it named the photo's key,
    # which a restore keeps. A worker late for one withdrawal cleared the next one's, and when that one's
    # CreateInvalidation then failed once, its retry moved nothing and invalidated nothing.
    job_id, _ = photo()
    first = withdrawn(aws, functions, context, job_id)

    def restored_and_withdrawn_again() -> None:
        restore(job_id, admin)
        assert "invalidatePending" not in aws.item(job_id)  # the restore ended that withdrawal
        for address in ("192.0.2.10", "100.64.0.10", "2001:db8:7::1"):  # three new networks
            assert report(functions, context, job_id, address)[0] == 202

    deps = functions.worker.dependencies
    jobs = deps.jobs
    deps.__dict__["jobs"] = BeforeClearing(jobs, restored_and_withdrawn_again)
    assert functions.worker.invoke(sqs_event(first), context) == {"batchItemFailures": []}
    assert aws.item(job_id)["status"] == {"S": "withdrawn"} and "invalidatePending" in aws.item(job_id)

    deps.__dict__["jobs"] = jobs
    (second,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    busy = FailingOnce(deps.cloudfront_client, "create_invalidation", "TooManyInvalidationsInProgress")
    functions.worker.override(cloudfront=busy)
    assert len(functions.worker.invoke(sqs_event(second), context)["batchItemFailures"]) == 1  # moved
    assert functions.worker.invoke(sqs_event(second), context) == {"batchItemFailures": []}

    # The first withdrawal's, the restore's (the 404s edges held) and the second withdrawal's.
    assert invalidated(aws, cdn) == [exact_paths(f"p/{job_id}.jpg")] * 3
    assert published_keys(aws, job_id) == [] and "invalidatePending" not in aws.item(job_id)


def variants_of_a_photo_gone_meanwhile(aws: Aws, functions: Functions, context: Any) -> dict[str, Any]:
    """VariantsFunction on a photo its job still publishes, deleted from S3 after the function read the job
    (an owner's delete or a withdrawal lands between the two reads)."""
    publish(aws)
    aws.s3.delete_object(Bucket=BLURRED_BUCKET, Key=PHOTO_KEY)
    return functions.variants.invoke(load_event("sqs_published_raw.json"), context)


def test_the_variants_of_a_photo_gone_meanwhile_read_it_as_missing(
    aws: Aws, functions: Functions, context: Any, logs
) -> None:
    response = variants_of_a_photo_gone_meanwhile(aws, functions, context)

    assert len(response["batchItemFailures"]) == 1  # retried: the next try finds the job changed too
    assert "NoSuchKey" in str(logs()) and denials(logs) == []  # no false alarm of a missing permission


@pytest.mark.parametrize("roles", [WITHOUT_VARIANTS_LIST], ids=["VariantsRole"], indirect=True)
def test_without_s3_list_the_variants_of_a_photo_gone_meanwhile_are_denied(
    aws: Aws, functions: Functions, context: Any, logs
) -> None:
    response = variants_of_a_photo_gone_meanwhile(aws, functions, context)

    assert len(response["batchItemFailures"]) == 1
    assert denials(logs) and "NoSuchKey" not in str(logs())


class AfterRestoring:
    """The operator's job store, running ACTION just after the restore marked the photo published."""

    def __init__(self, jobs: Any, action: Any) -> None:
        self._jobs, self._action = jobs, action

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jobs, name)

    def mark_restored(self, job_id: str, **kwargs: Any) -> Any:
        restored = self._jobs.mark_restored(job_id, **kwargs)
        self._action()
        return restored


def test_a_restore_racing_a_new_withdrawal_leaves_the_photo_withheld(
    aws: Aws, functions: Functions, photo, context: Any, admin: Dependencies
) -> None:
    # Findings on issue 27: new networks withdrew the photo between the restore's write and its move back
    # to p/, and the restore published it while its status said withdrawn.
    job_id, _ = photo()
    functions.variants.invoke(_published_event(job_id), context)
    assert functions.worker.invoke(sqs_event(withdrawn(aws, functions, context, job_id)), context) == {
        "batchItemFailures": []
    }

    def withdrawn_again() -> None:
        for address in ("192.0.2.10", "100.64.0.10", "2001:db8:7::1"):  # three new networks
            assert report(functions, context, job_id, address)[0] == 202

    admin.__dict__["jobs"] = AfterRestoring(admin.jobs, withdrawn_again)
    with pytest.raises(ReviewError, match="withdrawn again"):
        restore(job_id, admin)

    assert aws.item(job_id)["status"] == {"S": "withdrawn"} and "restoring" not in aws.item(job_id)
    assert published_keys(aws, job_id) == [] and len(withheld_keys(aws, job_id)) == 4
    (again,) = aws.sqs.receive_message(QueueUrl=BLUR_QUEUE_URL, MaxNumberOfMessages=10)["Messages"]
    assert functions.worker.invoke(sqs_event(again), context) == {"batchItemFailures": []}
    assert published_keys(aws, job_id) == [] and len(withheld_keys(aws, job_id)) == 4


def test_a_restore_racing_the_owner_s_delete_publishes_nothing(
    aws: Aws, functions: Functions, photo, context: Any, admin: Dependencies
) -> None:
    job_id, token = photo()
    assert functions.worker.invoke(sqs_event(withdrawn(aws, functions, context, job_id)), context) == {
        "batchItemFailures": []
    }

    def deleted_by_its_owner() -> None:
        # The owner's DELETE landed and deleted p/ (nothing there yet); its delete of withheld/ comes after
        # the restore's copies: as the API's own write leaves the job for that moment.
        deps = functions.api.dependencies
        job = deps.jobs.get(job_id)
        assert deps.jobs.mark_deleted(job_id, photo_key=job.photo_key, now=deps.clock(), ttl=job.ttl)

    admin.__dict__["jobs"] = AfterRestoring(admin.jobs, deleted_by_its_owner)
    with pytest.raises(ReviewError, match="it is now deleted"):
        restore(job_id, admin)

    assert published_keys(aws, job_id) == [] and withheld_keys(aws, job_id) == []
    assert status(functions, job_id, context)["status"] == "deleted"
    assert call(functions, owner_event("DELETE", job_id, token), context)[0] == 204  # finishes its record
