"""Withdrawing a version of a photo that is no longer published: its objects (the photo and its variants)
deleted, then its cached copies dropped from CloudFront.

What must be withdrawn is recorded on the job (``Job.withdraw``) by the very write that unpublishes it (an
owner's delete, an edit replacing it), and cleared only once done, so a failure at any step leaves the
record and any retry finishes it: the owner's DELETE again, the edit's message again, or a ``withdraw``
message on the blur queue. A job with nothing recorded costs nothing: a repeated DELETE invalidates nothing.

Invalidations name exact paths (the photo and its three variants), never wildcards: CloudFront allows 15
wildcard invalidations in progress per distribution and 3,000 exact paths.

The day's invalidations are a budget (``OwnerActionsPerDay``, one unit a version, charged when the version
is withdrawn): an owner's delete or edit is never refused for it. Past it the objects are still deleted
at once and the invalidation is put off for good: edges drop their copy within PhotosCachePolicy's MaxTTL
(a day), counted (``InvalidationsOverBudget``) and alarmed (ServiceCeilingAlarm). Why not a deferred
invalidation: docs/decisions/safety-0004-owners-are-never-refused-a-ceiling.md.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from photoveil.adapters.jobs import Job
from photoveil.adapters.storage import photo_and_variant_keys
from photoveil.dependencies import Dependencies
from photoveil.observability import MetricUnit, count_ceiling_reached, logger, metrics
from photoveil.service.quotas import SERVICE, Limits, allow

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
    """Delete every version JOB records to withdraw, invalidate those the day's budget still pays for,
    then clear the record. Raises CdnBusyError (the objects are deleted already) or any other AWS error,
    leaving the record."""
    if not job.withdraw:
        return
    keys = sorted(job.withdraw)
    for key in keys:
        deps.storage.delete_published(key)
        deps.storage.delete_withheld(key)  # a reported photo waits for review under withheld/
    budgeted = _within_edge_budget(keys, deps)
    try:
        if budgeted:
            deps.cdn.invalidate([path for key in budgeted for path in cdn_paths(key)])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in CDN_BUSY:
            metrics.add_metric(name="InvalidationsDeferred", unit=MetricUnit.Count, value=1)
            raise CdnBusyError(f"CloudFront answered {code}") from error
        raise
    deps.jobs.clear_withdrawals(job.job_id, photo_keys=keys)
    logger.info("versions withdrawn", extra={"versions": len(keys)})


def _within_edge_budget(keys: list[str], deps: Dependencies) -> list[str]:
    """The versions among KEYS whose invalidation today's budget still pays for, one unit each (a retry
    after CloudFront was busy pays again: a few units on a bad day, in the service's disfavour). The
    others are counted and logged: their edge copies expire within a day."""
    limit = Limits.from_settings(deps.settings).owner_actions_per_day
    now = deps.clock()
    budgeted = []
    for key in keys:
        if not allow(deps.quotas, now, limit, SERVICE):
            break
        budgeted.append(key)
    if over := len(keys) - len(budgeted):
        metrics.add_metric(name="InvalidationsOverBudget", unit=MetricUnit.Count, value=over)
        count_ceiling_reached()
        logger.warning(
            "invalidation put off: the day's budget is spent (edges drop the copy within a day)",
            extra={"versions": over},
        )
    return budgeted


def finish_withdrawals(job_id: str, deps: Dependencies) -> None:
    """Complete what the job still records to withdraw (a ``withdraw`` message; nothing if none)."""
    job = deps.jobs.get(job_id)
    if job is not None:
        complete_withdrawals(job, deps)
