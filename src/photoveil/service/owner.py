"""What the uploader can do with a published photo, proving it with the owner token: delete it, or ask
for more of it to be blurred. No account: the token (shown once, stored only as a hash) is the proof.

Edits work on the published, already blurred photo (the original is gone); the worker applies them
(jobflow.apply_edit) from a message on the blur queue.

No service-wide ceiling ever refuses an owner whose token matched: what the service's daily ceiling
(``OwnerActionsPerDay``) bounds is the CloudFront invalidations deletes and edits cause, and past it the
invalidation is put off, never the delete or the edit (service.withdrawals; docs/decisions/safety-0004).
"""

from __future__ import annotations

import math
import secrets
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from photoveil.adapters.jobs import DELETED, DONE, Job, PendingEdit
from photoveil.dependencies import Dependencies
from photoveil.errors import RequestError
from photoveil.observability import MetricUnit, job_context, logger, metrics
from photoveil.service.owner_tokens import token_matches
from photoveil.service.quotas import Limits, charge, client_key
from photoveil.service.status import JOB_ID_RE, retries_are_over
from photoveil.service.uploads import bad_request, json_object
from photoveil.service.withdrawals import CdnBusyError, complete_withdrawals

MAX_REGIONS = 20
MAX_EDITS = 10
MIN_REGION_SIDE = 0.005  # of the photo's width or height: smaller is a slip of the pointer
# A deleted job's record outlives late events for its upload (the uploads bucket keeps a day).
DELETED_JOB_TTL = timedelta(days=1)
# CloudFront busy (15 wildcard invalidations at most in progress, account-wide throttling): try again later.
WITHDRAW_RETRY_DELAY_S = 60


def charge_owner_request(source_ip: str, deps: Dependencies) -> None:
    """Count a delete or an edit request against its client's hourly allowance, before its token is
    looked at (a wrong token counts: the limit bounds guessing); QuotaExceededError (429) when spent."""
    limit = Limits.from_settings(deps.settings).owner_actions_per_client_hour
    charge(deps.quotas, deps.clock(), [(limit, client_key(source_ip))])


def owned_job(job_id: str, authorization: str | None, deps: Dependencies) -> Job:
    """The job, if the request carries one of its owner tokens. 401 without a token, 404 for no such
    job, 403 for a token of another job (or none)."""
    token = _bearer_token(authorization)
    if not JOB_ID_RE.fullmatch(job_id):
        raise bad_request("invalid_job_id", "a job id is 32 lowercase hexadecimal characters")
    job = deps.jobs.get(job_id)
    if job is None or job.expired(deps.clock()):
        raise RequestError(HTTPStatus.NOT_FOUND, "job_not_found", "no such job (or it has expired)")
    if not token_matches(token, job.owner_token_hashes):
        raise RequestError(HTTPStatus.FORBIDDEN, "wrong_token", "this token does not own this photo")
    return job


def _bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RequestError(
            HTTPStatus.UNAUTHORIZED, "missing_token", "send the photo's owner token as Authorization: Bearer"
        )
    return token.strip()


def delete_photo(job: Job, deps: Dependencies) -> None:
    """Withdraw the photo and its variants, everywhere, for good: the objects are always deleted; the
    edges are invalidated while the day's budget lasts (service.withdrawals). Repeating it costs nothing:
    once the photo is withdrawn, a DELETE changes nothing, deletes nothing and invalidates nothing."""
    with job_context(job.job_id):
        deleted, by_this_call = _mark_deleted(job, deps)
        if by_this_call:
            metrics.add_metric(name="PhotosDeleted", unit=MetricUnit.Count, value=1)
        try:
            complete_withdrawals(deleted, deps)
        except CdnBusyError as error:
            # The objects are gone already; the edge copies go when the queue brings this back.
            deps.queue.send_withdrawal(job.job_id, delay_s=WITHDRAW_RETRY_DELAY_S)
            logger.warning("invalidation deferred to the queue", extra={"reason": str(error)})
        logger.info("photo deleted by its owner", extra={"was": job.status})


def _mark_deleted(job: Job, deps: Dependencies) -> tuple[Job, bool]:
    """The job marked deleted, and whether this call did it (not if it was already); retried if the worker
    published or an edit replaced the photo meanwhile."""
    for _ in range(3):
        if job.status == DELETED:
            return job, False
        now = deps.clock()
        ttl = max(job.ttl, int((now + DELETED_JOB_TTL).timestamp()))
        deleted = deps.jobs.mark_deleted(job.job_id, photo_key=job.photo_key, now=now, ttl=ttl)
        if deleted is not None:
            return deleted, True
        job = deps.jobs.get(job.job_id) or job  # deleted or edited meanwhile: decide again on what it is now
    raise RequestError(HTTPStatus.CONFLICT, "changed_meanwhile", "the photo changed meanwhile; try again")


def request_edit(job: Job, body: bytes, deps: Dependencies) -> PendingEdit:
    """Validate the regions, take the next edit number, and queue the edit for the worker."""
    regions = parse_regions(body)
    stale = None
    if job.pending_edit is not None and retries_are_over(job, deps.settings, deps.clock()):
        stale = job.pending_edit.number  # its message is dead-lettered: a new edit may replace it
    if job.status != DONE and stale is None:
        raise RequestError(HTTPStatus.CONFLICT, "not_ready", "the photo is not published (yet, or any more)")
    if job.edit_count >= MAX_EDITS:
        raise RequestError(HTTPStatus.CONFLICT, "too_many_edits", f"a photo takes at most {MAX_EDITS} edits")
    edit = PendingEdit(number=job.edit_count + 1, version=secrets.token_hex(8), regions=regions)
    with job_context(job.job_id):
        # Never refused by a service-wide ceiling: an edit is bounded per client (the hourly limit), per
        # photo (MAX_EDITS) and so by UploadsPerDay x MAX_EDITS; what it costs the CDN is budgeted when
        # the replaced version is withdrawn (service.withdrawals).
        if deps.jobs.request_edit(job.job_id, edit=edit, now=deps.clock(), stale=stale) is None:
            raise RequestError(HTTPStatus.CONFLICT, "not_ready", "the photo changed meanwhile; try again")
        deps.queue.send_edit(job.job_id, edit.number)
        metrics.add_metric(name="EditsRequested", unit=MetricUnit.Count, value=1)
        logger.info("edit requested", extra={"edit": edit.number, "regions": len(regions)})
    return edit


def parse_regions(body: bytes) -> tuple[tuple[float, float, float, float], ...]:
    """``{"regions": [{"x", "y", "width", "height"}, ...]}`` as fractions of the photo; RequestError(400)."""
    data = json_object(body)
    if set(data) != {"regions"} or not isinstance(data["regions"], list) or not data["regions"]:
        raise bad_request(
            "invalid_regions", 'the body must be {"regions": [{"x", "y", "width", "height"}, ...]}'
        )
    if len(data["regions"]) > MAX_REGIONS:
        raise bad_request("too_many_regions", f"at most {MAX_REGIONS} regions per edit")
    return tuple(_region(item) for item in data["regions"])


def _region(item: Any) -> tuple[float, float, float, float]:
    fields = ("x", "y", "width", "height")
    if not isinstance(item, dict) or set(item) != set(fields):
        raise bad_request("invalid_regions", "each region is {x, y, width, height}, fractions of the photo")
    values = [item[name] for name in fields]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise bad_request("invalid_regions", "x, y, width and height must be numbers")
    x, y, width, height = (float(v) for v in values)
    if x < 0 or y < 0 or x + width > 1 + 1e-9 or y + height > 1 + 1e-9:
        raise bad_request("region_outside_photo", "a region must lie within the photo (fractions 0 to 1)")
    if width < MIN_REGION_SIDE or height < MIN_REGION_SIDE:
        raise bad_request("region_too_small", f"a region must be at least {MIN_REGION_SIDE:.1%} of each side")
    return x, y, width, height
