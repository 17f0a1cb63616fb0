"""Publishing the website into its bucket: the page's files plus config.json naming the API.

Used by the SiteContent custom resource (handlers/site.py), so that `sam deploy` alone leaves a working
site, and emptied again on stack deletion so CloudFormation can delete the bucket.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from photoveil.observability import logger

CONFIG_KEY = "config.json"
# The page and its config change with every deploy; the CloudFront invalidation covers the rest.
NO_CACHE = frozenset({"index.html", "view.html", CONFIG_KEY})


def site_files(site_dir: Path) -> dict[str, Path]:
    """Bucket key -> file for every file of the site (hidden files and a local config.json left out)."""
    files = {}
    for path in sorted(site_dir.rglob("*")):
        key = path.relative_to(site_dir).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in path.parts) and key != CONFIG_KEY:
            files[key] = path
    return files


def publish_site(s3: Any, bucket: str, site_dir: Path, *, api_url: str, page_policy: str = "") -> list[str]:
    """Write the site and its config.json; delete what an older version left. Returns the keys written.
    ``page_policy``: a Content-Security-Policy written into every page (with_page_policy)."""
    written = []
    for key, path in site_files(site_dir).items():
        body = path.read_bytes()
        if page_policy and key.endswith(".html"):
            body = with_page_policy(body, page_policy)
        _put(s3, bucket, key, body)
        written.append(key)
    _put(s3, bucket, CONFIG_KEY, json.dumps({"apiUrl": api_url}).encode())
    written.append(CONFIG_KEY)
    stale = [key for key in _keys(s3, bucket) if key not in written]
    _delete(s3, bucket, stale)
    return written


_HEAD = re.compile(rb"<head(\s[^>]*)?>", re.IGNORECASE)


def with_page_policy(page: bytes, policy: str) -> bytes:
    """PAGE with POLICY as a <meta http-equiv="Content-Security-Policy"> first in its <head>, before any
    script: the browser enforces it as well as the response's header (each must allow a request). It
    names what only exists once the stack does (its API), which the header policy cannot
    (docs/decisions/safety-0003-csp-names-the-stack-s-api.md). ValueError for a page without <head>."""
    head = _HEAD.search(page)
    if head is None:
        raise ValueError("a page without <head> cannot carry its policy")
    meta = (
        f'\n  <meta http-equiv="Content-Security-Policy" content="{html.escape(" ".join(policy.split()))}">'
    )
    return page[: head.end()] + meta.encode() + page[head.end() :]


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object in the bucket (CloudFormation deletes only empty buckets); returns how many.
    A bucket that no longer exists is empty: a repeated or late Delete is done, not failed."""
    try:
        keys = _keys(s3, bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return 0
        raise
    _delete(s3, bucket, keys)
    return len(keys)


def invalidate(cloudfront: Any, distribution_id: str) -> str:
    """Ask CloudFront to drop its cached copies of the site; the invalidation id, or why there is none.

    Never raises: the page and config.json are written no-cache and the rest expires in 5 minutes, so a
    refused invalidation (15 wildcard ones in progress, throttling) must not fail the stack operation."""
    try:
        response = cloudfront.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/*"]},
                "CallerReference": str(time.time_ns()),
            },
        )
    except (ClientError, BotoCoreError) as error:
        logger.warning("site invalidation skipped", extra={"error": str(error)[:300]})
        return f"skipped: {type(error).__name__}"
    return str(response["Invalidation"]["Id"])


def _put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
        content_type += "; charset=utf-8"
    cache = "no-cache" if key in NO_CACHE else "public, max-age=300"
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl=cache)


def _keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _delete(s3: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
        chunk = keys[start : start + 1000]
        response = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
        )
        # A key S3 could not delete is reported, not raised: CloudFormation must hear of it, or the stack's
        # deletion fails later on a bucket the custom resource said it had emptied.
        if errors := response.get("Errors"):
            first = errors[0]
            raise RuntimeError(
                f"{len(errors)} object(s) not deleted, e.g. {first.get('Key')}: {first.get('Code')}"
            )
