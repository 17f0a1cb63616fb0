"""The operator's review of reported photos (``photoveil admin``): list them, restore one, take one down.

Run with the operator's own credentials against a deployed stack or the local stack, never by the API.
Every action is logged with the job id as the correlation key (photoveil.observability).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from photoveil.adapters.jobs import DONE, PROCESSING, WITHDRAWN, Job
from photoveil.dependencies import Dependencies
from photoveil.observability import job_context, logger
from photoveil.service.withdrawals import cdn_paths

# A taken-down job's record outlives every late event for it (the uploads bucket keeps an original a day).
TAKEN_DOWN_MIN_TTL = timedelta(days=2)


class ReviewError(Exception):
    """The operator asked for something the photo's state does not allow (e.g. restore a deleted one)."""


def reported_photos(deps: Dependencies) -> list[dict[str, Any]]:
    """Withdrawn photos and photos with reports not yet reviewed, withdrawn first then by networks and
    reports: the new reports' reasons counted and notes listed (a restore reviewed the earlier ones)."""
    jobs = sorted(
        deps.jobs.reported(),
        key=lambda j: (j.status != "withdrawn", -j.network_count, -j.unreviewed, j.job_id),
    )
    return [_summary(job) for job in jobs]


def _summary(job: Job) -> dict[str, Any]:
    new = job.new_reports
    return {
        "jobId": job.job_id,
        "status": job.status,
        "reporters": job.unreviewed,  # each report is a distinct address's
        "stored": len(new),  # the first MAX_STORED_REPORTS of them are kept whole, with their notes
        "networks": job.network_count,  # what withdraws a photo, counted since the last review
        "reviewed": job.reviewed_reports,
        "reasons": job.unreviewed_reasons,  # every report not reviewed yet, stored or not
        "notes": [f"{report.at} {report.reason}: {report.note}" for report in new if report.note],
        "withdrawnAt": job.withdrawn_at,
        "expiresAt": job.expires_at,
        "photoKey": job.photo_key,
    }


def take_down(job_id: str, deps: Dependencies) -> Job:
    """Remove the photo for good: every published or withheld copy, its variants and the original; the
    job stays ``deleted`` (with takenDownAt) so no late upload event, edit or variant can publish again."""
    with job_context(job_id):
        now = deps.clock()
        job = deps.jobs.get(job_id)
        if job is None:
            raise ReviewError(f"no job {job_id} (never existed, or its record has expired)")
        ttl = max(job.ttl, int((now + TAKEN_DOWN_MIN_TTL).timestamp()))
        before = deps.jobs.mark_taken_down(job_id, now=now, ttl=ttl) or job
        keys = sorted({k for k in (before.photo_key, job.photo_key) if k})
        for key in keys:
            deps.storage.delete_published(key)
            deps.storage.delete_withheld(key)
        deps.storage.delete_original(job_id)
        deps.cdn.invalidate([path for key in keys for path in cdn_paths(key)])
        logger.warning(
            "photo taken down by the operator", extra={"was": before.status, "photo_key": before.photo_key}
        )
        return before


def restore(job_id: str, deps: Dependencies) -> Job:
    """Publish a withdrawn photo again, its reports reviewed; or finish a restore that stopped half-way
    (run it again). ReviewError if it is not withdrawn, or has expired (its link is over: it stays down)."""
    with job_context(job_id):
        now = deps.clock()
        job = deps.jobs.get(job_id)
        if job is not None and job.expired(now):
            raise ReviewError(
                f"photo {job_id} expired at {job.expires_at or 'its end'}: it cannot be published again "
                "(take it down, or let the bucket's lifecycle delete it)"
            )
        reviewed = job.unreviewed_reasons if job else {}  # the restore drops them: this log line keeps them
        restored = _mark_restored(job_id, now, deps)
        assert restored.photo_key is not None  # withdrawn photos are published ones
        moved = deps.storage.release(restored.photo_key, days_left=restored.days_left(now))
        undone = _undo_if_changed(job_id, restored.photo_key, deps)
        deps.cdn.invalidate(cdn_paths(restored.photo_key))  # edges may hold the withdrawn time's 404s
        deps.jobs.finish_restore(job_id, photo_key=restored.photo_key)
        if undone:
            logger.warning("restore undone: the photo changed while it was restored", extra={"now": undone})
            raise ReviewError(f"photo {job_id} was {undone} while it was being restored: it is not published")
        logger.warning("photo restored by the operator", extra={"objects_moved": moved, "reviewed": reviewed})
        return restored


def _mark_restored(job_id: str, now: datetime, deps: Dependencies) -> Job:
    """The job marked restored by this call, or one a restore marked before and did not finish."""
    restored = deps.jobs.mark_restored(job_id, now=now)
    if restored is not None:
        return restored
    current = deps.jobs.get(job_id)
    if current is None or current.status != DONE or current.restoring != current.photo_key:
        state = current.status if current else "gone"
        raise ReviewError(f"photo {job_id} is not withdrawn (it is {state}): nothing to restore")
    logger.info("finishing a restore that stopped half-way")
    return current


def _undo_if_changed(job_id: str, photo_key: str, deps: Dependencies) -> str | None:
    """Read the job again after the objects were moved back to p/ (as the worker's withhold does): if new
    networks withdrew it meanwhile, move them out again; if it was deleted or no longer publishes this
    key, delete what the move published. What happened, or None if it is still published."""
    after = deps.jobs.get(job_id)
    if after is not None and after.status in (DONE, PROCESSING) and after.photo_key == photo_key:
        return None
    if after is not None and after.status == WITHDRAWN and after.photo_key == photo_key:
        deps.storage.withhold(photo_key)  # the withdrawal's own withhold finds nothing left to move
        return "withdrawn again by new reports"
    deps.storage.delete_published(photo_key)
    deps.storage.delete_withheld(photo_key)
    return f"changed (it is now {after.status})" if after else "deleted (its record is gone)"
