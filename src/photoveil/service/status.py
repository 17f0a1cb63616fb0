"""What ``GET /jobs/{jobId}`` shows of a job: its status, its photo once done, its error once failed."""

from __future__ import annotations

import re
from datetime import datetime
from http import HTTPStatus
from typing import Any

from photoveil.adapters.jobs import DELETED, DONE, FAILED, WITHDRAWN, Job
from photoveil.adapters.storage import variant_key
from photoveil.dependencies import Dependencies
from photoveil.errors import RequestError
from photoveil.imaging.sizes import VARIANT_NAMES
from photoveil.observability import job_context
from photoveil.settings import Settings

JOB_ID_RE = re.compile(r"[0-9a-f]{32}")
# The page a shared link opens (frontend/view.html): it shows the photo's current version, so the link
# outlives an owner's edits (only the JPEG's own URL changes). The id travels in the fragment, which no
# server or CDN log sees.
VIEWER_PAGE = "view.html"
# What a job whose retries are over shows (Job.retries_over). Not the user's fault, and nothing was published.
NOT_FINISHED = "not_finished"
NOT_FINISHED_MESSAGE = "We could not finish blurring this photo, and nothing was published. Please try again."
EDIT_NOT_APPLIED = "edit_not_applied"
EDIT_NOT_APPLIED_MESSAGE = "We could not apply your last edit; the photo is as it was. Please try again."
WITHDRAWN_MESSAGE = (
    "This photo has been taken offline while reports about it are reviewed. Its owner can still delete it."
)


def job_status(job_id: str, deps: Dependencies) -> dict[str, Any]:
    """The status document of a live job; RequestError 400 for a malformed id, 404 for no such job."""
    if not JOB_ID_RE.fullmatch(job_id):
        raise RequestError(
            HTTPStatus.BAD_REQUEST, "invalid_job_id", "a job id is 32 lowercase hexadecimal characters"
        )
    with job_context(job_id):
        job = deps.jobs.get(job_id)
        now = deps.clock()
        if job is None or job.expired(now):
            raise RequestError(HTTPStatus.NOT_FOUND, "job_not_found", "no such job (or it has expired)")
        return job_view(job, deps.settings, now)


def retries_are_over(job: Job, settings: Settings, now: datetime) -> bool:
    """Job.retries_over with the blur queue's own rhythm (its visibility timeout and maxReceiveCount)."""
    return job.retries_over(
        now,
        visibility_timeout_s=settings.queue_visibility_timeout_s,
        max_receive_count=settings.queue_max_receive_count,
    )


def job_view(job: Job, settings: Settings, now: datetime) -> dict[str, Any]:
    """What the status shows: never the email, the owner tokens or internal bookkeeping.

    A job whose retries are over (its message dead-lettered: a worker crash or a fault that outlasted
    every retry) is shown ``failed``, so the page stops waiting for a photo that will not come. The
    record itself stays ``processing``: a redrive may still finish it. An edit whose retries are over
    leaves the photo as it was: ``done``, with an error saying the edit was not applied.
    """
    retries_over = retries_are_over(job, settings, now)
    if job.status == DELETED:
        return {"jobId": job.job_id, "status": DELETED, "faces": None}
    if job.status == WITHDRAWN:  # reported: no photo to show until the operator's review
        return {
            "jobId": job.job_id,
            "status": WITHDRAWN,
            "faces": None,
            "error": {"code": WITHDRAWN, "message": WITHDRAWN_MESSAGE},
        }
    if retries_over and job.pending_edit is None:
        return {
            "jobId": job.job_id,
            "status": FAILED,
            "faces": None,
            "error": {"code": NOT_FINISHED, "message": NOT_FINISHED_MESSAGE},
        }
    view: dict[str, Any] = {"jobId": job.job_id, "status": job.status, "faces": job.faces}
    if job.photo_key:  # done, or being edited: the photo as published now
        view.update(_published(job, settings))
    if retries_over:
        view["status"] = DONE
        view["error"] = {"code": EDIT_NOT_APPLIED, "message": EDIT_NOT_APPLIED_MESSAGE}
    elif job.status == FAILED:
        view["error"] = {"code": job.error_code or "internal_error", "message": job.error_message or ""}
    return view


def viewer_url(base_url: str, job_id: str) -> str:
    """The link to share: the viewer page of the job's photo on the site at BASE_URL."""
    return f"{base_url}/{VIEWER_PAGE}#{job_id}"


def _published(job: Job, settings: Settings) -> dict[str, Any]:
    assert job.photo_key is not None
    base = settings.public_base_url
    fields: dict[str, Any] = {
        "photoUrl": f"{base}/{job.photo_key}",
        "viewUrl": viewer_url(base, job.job_id),
        "expiresAt": job.expires_at,
    }
    if job.edit_count:
        fields["edits"] = job.edit_count
    if job.variants_ready:
        fields["variants"] = {name: f"{base}/{variant_key(job.photo_key, name)}" for name in VARIANT_NAMES}
    return fields
