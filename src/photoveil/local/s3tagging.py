"""S3's permissions for an object's tags, which moto does not check, while IAM is enforced.

S3 authorises a PutObject that sets a tag-set (the ``x-amz-tagging`` header) as ``s3:PutObjectTagging``
on the new object as well as ``s3:PutObject`` (S3 API reference, PutObject, "Permissions"); a CopyObject
that sets one (``x-amz-tagging-directive: REPLACE`` with ``x-amz-tagging``) the same way, and one that
copies a tagged source's tags (the directive ``COPY``, the default) as ``s3:GetObjectTagging`` on the source
and ``s3:PutObjectTagging`` on the copy (AWS Knowledge Center, "copy objects between buckets"). moto 5.2.5
checks only ``s3:PutObject``, so a role without the tagging grant would work here and fail on AWS.

While :func:`s3_tagging_as_s3` lasts, moto's S3 makes these checks for the caller of each signed request,
with moto's own policy evaluator (as photoveil.local.s3answers does for a missing key and a copy's source).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.s3.exceptions import MissingBucket
from moto.s3.responses import S3Response

from photoveil.local.patching import PatchWhileEntered
from photoveil.local.s3answers import check_permitted, checks_caller, copy_source

Handler = Callable[[S3Response], Any]


@contextmanager
def s3_tagging_as_s3() -> Iterator[None]:
    """moto's S3 checks the tagging permissions of a PutObject and a CopyObject while this lasts
    (process-wide; until every block that entered it has left)."""
    with _PUT.entered(), _COPY.entered():
        yield


def _checked(handler: Handler, *, copy: bool) -> Handler:
    """moto's PutObject (or CopyObject) handler, with S3's checks of the tags it writes before it."""

    @functools.wraps(handler)
    def check_then_handle(response: S3Response) -> Any:
        if checks_caller() and "Authorization" in response.headers:
            target = (response.bucket_name, response.parse_key_name())
            source = copy_source(response) if copy else None
            replaced = not copy or response.headers.get("x-amz-tagging-directive", "COPY") == "REPLACE"
            if replaced and response.headers.get("x-amz-tagging"):
                check_permitted(response, "PutObjectTagging", *target)
            elif source is not None and not replaced and _tagged(response, *source):
                check_permitted(response, "GetObjectTagging", *source)
                check_permitted(response, "PutObjectTagging", *target)
        return handler(response)

    return check_then_handle


_PUT = PatchWhileEntered(S3Response, "put_object", lambda handler: _checked(handler, copy=False))
_COPY = PatchWhileEntered(S3Response, "copy_object", lambda handler: _checked(handler, copy=True))


def _tagged(response: S3Response, bucket: str, key: str) -> bool:
    """Whether the object (bucket, key) has tags (False if it is not there: moto answers that itself)."""
    try:
        found = response.backend.get_object(bucket, key)
    except MissingBucket:  # moto's own handler answers it
        return False
    return bool(found and response.backend.get_object_tagging(found)["Tags"])
