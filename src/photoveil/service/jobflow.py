"""A photo's life in the worker: from an uploaded original to a published, blurred photo.

``handle_upload`` is what BlurFunction does for each S3 ObjectCreated record, given the adapters in
``Dependencies``. Every transition of the job is a conditional write (adapters.jobs), so a duplicate
event, a racing worker or a second POST of the same form can never publish twice or email twice.
Permanent input errors end the job ``failed``; anything else raises, and the message is retried, then
dead-lettered. Fail closed: nothing is published unless detection and blurring succeeded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from photoveil.adapters.jobs import DONE, Job
from photoveil.adapters.storage import edited_key, too_large_message
from photoveil.dependencies import Dependencies
from photoveil.errors import EmptyFileError, FileTooLargeError, ImageRefusedError, PhotoVeilError
from photoveil.imaging.detectors.moderation import ModerationConfigError, moderated
from photoveil.imaging.pipeline import BlurResult, blur_more
from photoveil.observability import (
    MetricUnit,
    count_detector_refusal,
    count_failure,
    job_context,
    logger,
    metrics,
    tracer,
)
from photoveil.service.mail import refusal_at_send
from photoveil.service.notifications import ObjectCreated
from photoveil.service.owner_tokens import new_owner_token
from photoveil.service.status import viewer_url
from photoveil.service.withdrawals import complete_withdrawals

UPLOAD_KEY_RE = re.compile(r"uploads/([0-9a-f]{32})")
# Keep a failed job visible to its status page for a day, like an unfinished one.
FAILED_JOB_TTL = timedelta(days=1)
STAGE_METRICS = {"decode": "DecodeTime", "detect": "DetectTime", "blur": "BlurTime", "encode": "EncodeTime"}
# Counted on each attempt moderation could not judge as configured, so up to 5 a photo (BlurQueue's
# maxReceiveCount), then the DLQ (template: ModerationMisconfiguredAlarm).
MODERATION_MISCONFIGURED = "ModerationMisconfigured"


@dataclass(frozen=True)
class Published:
    """What a finished blur left behind: the blurred photo's key, its result and the stage timings."""

    photo_key: str
    result: BlurResult
    timings_ms: dict[str, float]


def handle_upload(upload: ObjectCreated, deps: Dependencies) -> None:
    """Blur an ``uploads/{jobId}`` object of our bucket; delete anything else written under uploads/."""
    if upload.bucket != deps.settings.uploads_bucket:
        logger.warning("ignoring an event for another bucket", extra={"bucket": upload.bucket})
        return
    match = UPLOAD_KEY_RE.fullmatch(upload.key)
    if not match:
        # Only presigned POSTs write here, so this is misuse; originals are never kept, so delete it.
        logger.warning("deleting a stray upload that belongs to no job", extra={"key": upload.key[:200]})
        deps.storage.delete_upload_key(upload.key)
        return
    with job_context(match.group(1)):
        blur_upload(match.group(1), upload, deps)


@tracer.capture_method
def blur_upload(job_id: str, upload: ObjectCreated, deps: Dependencies) -> None:
    """Blur ``uploads/{jobId}`` into ``p/{jobId}.jpg``, at most once per job."""
    job = _claim(job_id, deps)
    if job is None:
        return
    try:
        published = _blur_and_publish(job_id, upload.size, deps)
    except PhotoVeilError as error:
        if isinstance(error, ModerationConfigError):  # retried like any detector error, and alarmed
            metrics.add_metric(name=MODERATION_MISCONFIGURED, unit=MetricUnit.Count, value=1)
        if isinstance(error, ImageRefusedError):  # failed for good, and alarmed: it may be our parameter
            count_detector_refusal(error.operation)
        if not error.permanent:
            raise
        _fail(job_id, error, deps)
        return

    done_at = deps.clock()
    expires_at = done_at + timedelta(days=deps.settings.photo_ttl_days)
    # The email carries its own owner token (only its hash is kept), so its link can edit or delete.
    email_token, email_token_hash = new_owner_token() if job.email else (None, None)
    previous = deps.jobs.mark_done(
        job_id,
        faces=len(published.result.faces),
        photo_key=published.photo_key,
        expires_at=expires_at,
        now=done_at,
        email_token_hash=email_token_hash,
    )
    if previous is None:
        _lost_the_race(job_id, deps)
        return

    _record_success(published, upload.event_time, done_at)
    # Email before deleting the original: only this transition to done may send it, so a failed delete
    # (retried as a duplicate, which deletes again) must not come first and cost the user the email.
    if previous.email and email_token and deps.mailer is not None:
        _send_email(previous, email_token, expires_at=expires_at, deps=deps)
    deps.storage.delete_original(job_id)


def _claim(job_id: str, deps: Dependencies) -> Job | None:
    """Move the job to ``processing`` for this attempt; None (original deleted) if there is nothing to do."""
    job = deps.jobs.get(job_id)
    now = deps.clock()
    if job is None or job.expired(now):
        logger.info("no live job for this upload; deleting it")
        deps.storage.delete_original(job_id)
        return None
    if job.finished or job.photo_key is not None:
        # A duplicate event (S3 is at-least-once) or a second POST with the same form: the photo was
        # already published (and may be being edited) or refused. Nothing to redo, no second email;
        # the original must still go.
        logger.info("job already finished; duplicate event", extra={"status": job.status})
        deps.storage.delete_original(job_id)
        metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
        return None
    claimed = deps.jobs.mark_processing(job_id, now=now)
    if claimed is None:
        # Finished (deleted, say) or published between the read and the claim: the original must still go.
        logger.info("job finished meanwhile; duplicate event")
        deps.storage.delete_original(job_id)
    return claimed


def _blur_and_publish(job_id: str, event_size: int | None, deps: Dependencies) -> Published:
    """Read, re-check, blur and write the photo. Raises PhotoVeilError (permanent or not) or ClientError."""
    settings = deps.settings
    # The presign policy caps the size on real S3, but moto and a hand-made request do not care.
    if event_size is not None and event_size > settings.max_upload_bytes:
        raise FileTooLargeError(too_large_message(settings.max_upload_bytes))
    if event_size == 0:
        raise EmptyFileError("the uploaded file is empty")
    timings: dict[str, float] = {}
    with _timed(timings, "read"):
        data = deps.storage.read_original(job_id, max_bytes=settings.max_upload_bytes)
    # Moderation runs beside face detection, on the same pixels: a refused photo is never encoded.
    detector = moderated(deps.detector, deps.moderator)
    # The core sniffs the real format from magic bytes; the declared Content-Type is never trusted.
    result = deps.blur_photo(data, detector, style=settings.blur_style, max_pixels=settings.max_pixels)
    timings.update({stage: round(seconds * 1000, 1) for stage, seconds in result.timings.items()})
    with _timed(timings, "write"):
        photo_key = deps.storage.put_blurred(job_id, result.jpeg)
    return Published(photo_key=photo_key, result=result, timings_ms=timings)


def _lost_the_race(job_id: str, deps: Dependencies) -> None:
    """Another worker finished first (a duplicate event, or a second POST of the same form).

    If it refused the photo, what we just wrote must not stay reachable.
    """
    current = deps.jobs.get(job_id)
    if current is None or current.status != DONE:
        deps.storage.delete_blurred(job_id)
    deps.storage.delete_original(job_id)
    logger.info("another worker finished this job first; not emailing again")


def _fail(job_id: str, error: PhotoVeilError, deps: Dependencies) -> None:
    now = deps.clock()
    # The cause says what refused it (e.g. the moderation labels found); the user sees only the message.
    cause = str(error.__cause__)[:300] if error.__cause__ else None
    logger.info("photo refused", extra={"code": error.code, "reason": error.message, "cause": cause})
    failed = deps.jobs.mark_failed(
        job_id, code=error.code, message=error.message, now=now, ttl=int((now + FAILED_JOB_TTL).timestamp())
    )
    deps.storage.delete_original(job_id)
    if failed is not None:
        count_failure(error.code)


def _error_code(error: Exception) -> str | None:
    """The AWS error code of a ClientError (None for any other error): what may be logged of it."""
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


def _send_email(job: Job, token: str, *, expires_at: datetime, deps: Dependencies) -> None:
    """Send the link once, if the recipient may still get mail today (its allowance is spent here, when
    mail goes out). A refused or failed email is logged (never the address) and counted; it never fails
    or re-blurs the photo."""
    assert deps.mailer is not None and job.email
    base = deps.settings.public_base_url
    try:
        refused = refusal_at_send(job.email, deps)
    except (ClientError, BotoCoreError) as error:
        refused = f"allowance_unknown:{_error_code(error) or type(error).__name__}"  # not counted, not sent
    if refused:
        logger.info("email not sent", extra={"refused": refused})
        metrics.add_metric(name="EmailRefused", unit=MetricUnit.Count, value=1)
        return
    try:
        message_id = deps.mailer.send_photo_ready(
            job.email,
            # The viewer page, not the JPEG: it keeps working after the owner blurs more.
            photo_url=viewer_url(base, job.job_id),
            # The token goes in the fragment: browsers never send it to a server, so no log holds it.
            manage_url=f"{base}/#job={job.job_id}&token={token}",
            expires_at=expires_at.strftime("%Y-%m-%d %H:%M"),
        )
    except (ClientError, BotoCoreError, ValueError) as error:
        # Only the error's code: SES's message names the recipient ("... failed the check ...: a@b.c").
        logger.warning("email not sent", extra={"error": type(error).__name__, "code": _error_code(error)})
        metrics.add_metric(name="EmailFailed", unit=MetricUnit.Count, value=1)
        return
    logger.info("email sent", extra={"ses_message_id": message_id})
    metrics.add_metric(name="EmailSent", unit=MetricUnit.Count, value=1)


def _record_success(published: Published, uploaded_at: datetime | None, done_at: datetime) -> None:
    faces = len(published.result.faces)
    logger.info("photo blurred", extra={"faces": faces, "timings_ms": published.timings_ms})
    metrics.add_metric(name="PhotosBlurred", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="FacesBlurred", unit=MetricUnit.Count, value=faces)
    for stage, ms in published.timings_ms.items():
        metrics.add_metric(
            name=STAGE_METRICS.get(stage, f"{stage.capitalize()}Time"), unit=MetricUnit.Milliseconds, value=ms
        )
    # Upload-to-published latency is the product promise (a minute): measure it where it ends.
    if uploaded_at is not None:
        latency_ms = max(0.0, (done_at - uploaded_at).total_seconds() * 1000)
        metrics.add_metric(name="UploadToDoneLatency", unit=MetricUnit.Milliseconds, value=round(latency_ms))


@tracer.capture_method
def apply_edit(job_id: str, number: int, deps: Dependencies) -> None:
    """Blur an owner's rectangles on the published photo and publish the result under a new key.

    At most once per edit: the worker counts an attempt only on the pending edit with this number, and
    only one ``finish_edit`` wins; it records the replaced version to withdraw in the same write, and the
    withdrawal follows. A retry after a failed withdrawal finds the edit applied and finishes it.
    """
    job = deps.jobs.get(job_id)
    edit = job.pending_edit if job else None
    if job is None or edit is None or edit.number != number or job.photo_key is None:
        logger.info("edit no longer pending; duplicate or withdrawn", extra={"edit": number})
        if job is not None:
            complete_withdrawals(job, deps)  # what an earlier attempt's clean-up left, if anything
        return
    if deps.jobs.mark_edit_attempt(job_id, number=number, now=deps.clock()) is None:
        return
    new_key = edited_key(job_id, edit.version)  # the same for every attempt: a retry overwrites it
    jpeg = blur_more(deps.storage.read_blurred(job.photo_key), edit.regions, style=deps.settings.blur_style)
    # A new object starts S3's age count again: it must not outlive the photo's expiresAt by a day.
    deps.storage.put_published(new_key, jpeg, days_left=job.days_left(deps.clock()))
    published = deps.jobs.finish_edit(
        job_id, number=number, photo_key=new_key, replaced=job.photo_key, now=deps.clock()
    )
    if published is None:
        current = deps.jobs.get(job_id)
        if current is None or current.photo_key != new_key:  # deleted meanwhile: nothing may stay
            deps.storage.delete_published(new_key)
        return
    metrics.add_metric(name="EditsApplied", unit=MetricUnit.Count, value=1)
    logger.info("edit applied", extra={"edit": number, "regions": len(edit.regions)})
    complete_withdrawals(published, deps)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round((time.perf_counter() - start) * 1000, 1)
