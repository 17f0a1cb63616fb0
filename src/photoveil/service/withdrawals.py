"""Withdrawing a version of a photo that is no longer published: its objects (the photo and its variants)
deleted, then its cached copies dropped from CloudFront.

What must be withdrawn is recorded on the job (``Job.withdraw``) by the very write that unpublishes it (an
owner's delete, an edit replacing it), and cleared only once done, so a failure at any step leaves the
record and any retry finishes it: the owner's DELETE again, the edit's message again, or a ``withdraw``
message on the blur queue. A job with nothing recorded costs nothing: a repeated DELETE invalidates nothing.

Invalidations name exact paths (the photo and its three variants), never wildcards: CloudFront allows 15
wildcard invalidations in progress per distribution and 3,000 exact paths.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from photoveil.adapters.jobs import Job
from photoveil.adapters.storage import photo_and_variant_keys
from photoveil.dependencies import Dependencies
from photoveil.observability import MetricUnit, logger, metrics

# CloudFront's answers meaning "not now": boto3's standard mode does not retry the first.
CDN_BUSY = frozenset(
    {"TooManyInvalidationsInProgress", "Throttling", "ThrottlingException", "TooManyRequests"}
)


class CdnBusyError(Exception):
    """CloudFront refused the invalidation for now; the record stays, and a later try completes it."""


def cdn_paths(photo_key: str) -> list[str]:
    """The exact paths a published version is served at: the photo and its variants."""
    return [f"/{key}" for key in photo_and_variant_keys(photo_key)]


def complete_withdrawals(job: Job, deps: Dependencies) -> None:
    """Delete and invalidate every version JOB records to withdraw, then clear the record. Raises
    CdnBusyError (the objects are deleted already) or any other AWS error, leaving the record."""
    if not job.withdraw:
        return
    keys = sorted(job.withdraw)
    for key in keys:
        deps.storage.delete_published(key)
        deps.storage.delete_withheld(key)  # a reported photo waits for review under withheld/
    try:
        deps.cdn.invalidate([path for key in keys for path in cdn_paths(key)])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in CDN_BUSY:
            metrics.add_metric(name="InvalidationsDeferred", unit=MetricUnit.Count, value=1)
            raise CdnBusyError(f"CloudFront answered {code}") from error
        raise
    deps.jobs.clear_withdrawals(job.job_id, photo_keys=keys)
    logger.info("versions withdrawn", extra={"versions": len(keys)})


def finish_withdrawals(job_id: str, deps: Dependencies) -> None:
    """Complete what the job still records to withdraw (a ``withdraw`` message; nothing if none)."""
    job = deps.jobs.get(job_id)
    if job is not None:
        complete_withdrawals(job, deps)
