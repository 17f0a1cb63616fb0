"""S3's answers where moto's are kinder, while IAM is enforced (docs/decisions/local-0005-s3-as-s3.md).

S3 tells whether a key exists only to a caller that may list the bucket: a GetObject or HeadObject of a
key that is not there, or a CopyObject whose source is not there, answers 404 NoSuchKey to a caller with
s3:ListBucket on the bucket and 403 AccessDenied to any other. And a CopyObject reads its source: the
caller needs s3:GetObject on it as well as s3:PutObject on the target. (S3 API reference, GetObject,
HeadObject and CopyObject, "Permissions".) moto 5.2.5 answers 404 to anyone and checks only the target of
a copy, so a role that lacks either permission works here and fails on AWS.

While :func:`s3_answers_as_s3` lasts, moto's S3 makes both checks itself, for the caller of each signed
request, with moto's own policy evaluator; in-process (``mock_aws``) and in moto's server alike, since
both reach S3 through the same response class.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlparse

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.access_control import S3IAMRequest
from moto.s3.exceptions import MissingKey
from moto.s3.responses import S3Response

from photoveil.local.patching import PatchWhileEntered

KeyResponse = Callable[[S3Response, Any, str], Any]


_KEY_RESPONSE = PatchWhileEntered(S3Response, "_key_response", lambda handler: _as_s3(handler))


@contextmanager
def s3_answers_as_s3() -> Iterator[None]:
    """moto's S3 answers a missing key and checks a copy's source as S3 does while this lasts
    (process-wide, like moto's IAM switch; it lasts until every block that entered it has left)."""
    with _KEY_RESPONSE.entered():
        yield


def _as_s3(key_response: KeyResponse) -> KeyResponse:
    """moto's handler of a request for one key, with S3's two checks around it."""

    @functools.wraps(key_response)
    def answer(response: S3Response, request: Any, full_url: str) -> Any:
        if not checks_caller() or "Authorization" not in response.headers:
            return key_response(response, request, full_url)  # moto checks nothing, or refuses it itself
        source = copy_source(response)
        if source is not None:
            check_permitted(response, "GetObject", *source)
        try:
            answered = key_response(response, request, full_url)
        except MissingKey:
            check_permitted(response, "ListBucket", source[0] if source else response.bucket_name)
            raise
        # moto answers a HEAD of a missing key and an UploadPartCopy of a missing source 404, without raising.
        if answered[0] == 404 and (response.method == "HEAD" or source is not None):
            check_permitted(response, "ListBucket", source[0] if source else response.bucket_name)
        return answered

    return answer


def checks_caller() -> bool:
    """Whether moto checks this request's caller (what its own check of every request asks)."""
    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def copy_source(response: S3Response) -> tuple[str, str] | None:
    """The (bucket, key) a CopyObject (or UploadPartCopy) reads, parsed as moto parses it; None otherwise."""
    header = response.headers.get("x-amz-copy-source") if response.method == "PUT" else None
    if not header:
        return None
    bucket, _, key = unquote(urlparse(str(header)).path).lstrip("/").partition("/")
    return bucket, key


def check_permitted(response: S3Response, action: str, bucket: str, key: str | None = None) -> None:
    """Raise S3's 403 AccessDenied unless the request's caller may do s3:ACTION on BUCKET (or its KEY)."""
    resource = f"arn:aws:s3:::{bucket}" + (f"/{key}" if key is not None else "")
    S3IAMRequest(
        account_id=response.current_account,
        method=response.method,
        path=response.raw_path,
        data={"BucketName": bucket},
        body=b"",
        headers=response.headers,
        action=action,
    ).check_action_permitted(resource)
