"""The local stack's S3 answers a missing key and a copy as S3 does, with IAM enforced: through moto's
server, as `photoveil local` runs it (photoveil.local.s3answers; docs/decisions/local-0005-s3-as-s3.md)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.s3.responses import S3Response

from photoveil.local.account import Credentials, client
from photoveil.local.emulator import QuietMotoRequestHandler, moto_app
from photoveil.local.iam import RoleSpec, create_role, iam_enforced
from photoveil.local.s3answers import s3_answers_as_s3
from photoveil.local.serving import ServerThread, listen, origin

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


# ---------------------------------------------------------------- the switch, entered from several threads
def _answers_as_s3() -> bool:
    return getattr(S3Response._key_response, "__wrapped__", None) is not None


def test_the_answers_last_until_the_last_block_that_entered_them_leaves() -> None:
    """A enters, B enters, A leaves while B's block is open (the local stack's threads and a test do this):
    B still gets S3's answers; moto's own handler is back once B leaves too."""
    assert not _answers_as_s3(), "runs before the module's stack enters IAM enforcement (and the answers)"
    original = S3Response._key_response
    entered, a_left, seen = threading.Barrier(2), threading.Event(), {}

    def a() -> None:
        with s3_answers_as_s3():
            entered.wait(timeout=10)
        a_left.set()

    def b() -> None:
        with s3_answers_as_s3():
            entered.wait(timeout=10)
            a_left.wait(timeout=10)
            seen["after A left"] = _answers_as_s3()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert seen == {"after A left": True}
    assert S3Response._key_response is original


def test_blocks_left_in_any_order_wrap_once_and_restore_once() -> None:
    original = S3Response._key_response
    outer, inner = s3_answers_as_s3(), s3_answers_as_s3()
    outer.__enter__()
    wrapped = S3Response._key_response
    inner.__enter__()
    assert S3Response._key_response is wrapped  # not wrapped twice
    outer.__exit__(None, None, None)  # the first to enter leaves first
    assert S3Response._key_response is wrapped
    inner.__exit__(None, None, None)
    assert S3Response._key_response is original


# ---------------------------------------------------------------- the answers, through moto's server
@dataclass
class Local:
    """moto's server with one bucket (p/photo.jpg and withheld/held.jpg in it) and a client per role."""

    bucket: str
    s3: dict[str, Any]  # by role: "reader", "lister", "mover", "releaser"


def _policy(bucket: str, *grants: tuple[str, str]) -> dict[str, Any]:
    arn = f"arn:aws:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": action, "Resource": arn + where} for action, where in grants
        ],
    }


def _roles(bucket: str) -> dict[str, dict[str, Any]]:
    read_p = [("s3:GetObject", "/p/*"), ("s3:PutObject", "/p/*")]
    move = [*read_p, ("s3:PutObject", "/withheld/*"), ("s3:ListBucket", "")]
    return {
        "reader": _policy(bucket, *read_p),  # reads and writes p/, may not list the bucket
        "lister": _policy(bucket, *read_p, ("s3:ListBucket", "")),
        "mover": _policy(bucket, *move),  # copies p/ -> withheld/, may not read withheld/
        "releaser": _policy(bucket, *move, ("s3:GetObject", "/withheld/*")),
    }


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    sock = listen("127.0.0.1", 0)
    endpoint = origin(sock)
    server = ServerThread(moto_app(), sock, "moto-s3answers", QuietMotoRequestHandler)
    server.start()
    try:
        suffix = uuid.uuid4().hex[:8]
        bucket = f"photoveil-s3answers-{suffix}"
        iam, sts = client("iam", endpoint), client("sts", endpoint)
        keys: dict[str, Credentials] = {}
        for name, policy in _roles(bucket).items():
            spec = RoleSpec(f"{name}Role", f"s3answers-{name}-{suffix}", name, TRUST, {"s3": policy})
            keys[name] = create_role(iam, sts, spec)
        setup = client("s3", endpoint)  # the fake keys: nothing is checked before IAM is enforced
        setup.create_bucket(Bucket=bucket)
        setup.put_object(Bucket=bucket, Key="p/photo.jpg", Body=b"photo")
        setup.put_object(Bucket=bucket, Key="withheld/held.jpg", Body=b"held")
        with iam_enforced():
            yield Local(bucket, {name: client("s3", endpoint, k) for name, k in keys.items()})
    finally:
        server.stop()


def _error(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["ResponseMetadata"]["HTTPStatusCode"], raised.value.response["Error"]["Code"]


def _gone_requests(local: Local, role: str) -> dict[str, Any]:
    s3, bucket = local.s3[role], local.bucket
    return {
        "GetObject": lambda: s3.get_object(Bucket=bucket, Key="p/gone.jpg"),
        "HeadObject": lambda: s3.head_object(Bucket=bucket, Key="p/gone.jpg"),
        "CopyObject": lambda: s3.copy_object(
            Bucket=bucket, Key="p/copy.jpg", CopySource={"Bucket": bucket, "Key": "p/gone.jpg"}
        ),
        "UploadPartCopy": lambda: s3.upload_part_copy(
            Bucket=bucket,
            Key="p/parts.jpg",
            UploadId=s3.create_multipart_upload(Bucket=bucket, Key="p/parts.jpg")["UploadId"],
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "p/gone.jpg"},
        ),
    }


GONE = ["GetObject", "HeadObject", "CopyObject", "UploadPartCopy"]


@pytest.mark.parametrize("operation", GONE)
def test_a_missing_key_is_403_to_a_role_that_may_not_list_the_bucket(local: Local, operation: str) -> None:
    status, code = _error(_gone_requests(local, "reader")[operation])
    assert status == 403 and code in ("AccessDenied", "403")  # a HEAD answer has no body, so no code


@pytest.mark.parametrize("operation", GONE)
def test_a_missing_key_is_404_to_a_role_that_may_list_it(local: Local, operation: str) -> None:
    status, code = _error(_gone_requests(local, "lister")[operation])
    # A HEAD answer has no body; nor has moto's to UploadPartCopy's missing source (S3's says NoSuchKey).
    assert status == 404 and code in ("NoSuchKey", "404")


def test_a_key_that_exists_is_read_without_list_permission(local: Local) -> None:
    assert local.s3["reader"].get_object(Bucket=local.bucket, Key="p/photo.jpg")["Body"].read() == b"photo"
    assert local.s3["reader"].head_object(Bucket=local.bucket, Key="p/photo.jpg")["ContentLength"] == 5


def test_a_copy_needs_get_object_on_its_source(local: Local) -> None:
    bucket = local.bucket
    release = {
        "Bucket": bucket,
        "Key": "p/held.jpg",
        "CopySource": {"Bucket": bucket, "Key": "withheld/held.jpg"},
    }

    assert _error(lambda: local.s3["mover"].copy_object(**release)) == (403, "AccessDenied")
    local.s3["releaser"].copy_object(**release)

    assert local.s3["lister"].get_object(Bucket=bucket, Key="p/held.jpg")["Body"].read() == b"held"
    # The other way, from p/ (which it may read) to withheld/ (which it may write), works.
    local.s3["mover"].copy_object(
        Bucket=bucket, Key="withheld/photo.jpg", CopySource={"Bucket": bucket, "Key": "p/photo.jpg"}
    )
