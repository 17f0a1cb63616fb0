"""Making the variants of a published photo (photoveil.imaging.variants), with its job as the judge of
what is live.

``handle_published`` is what VariantsFunction does for each photo the PhotoPublished topic announces.
The job record decides: only the photo it publishes now gets variants, so a late or duplicate event for
a photo since deleted, replaced by an edit or expired writes nothing (and what a race let through is
withdrawn). Each variant written is recorded with a conditional update; the write that completes the
set marks the job's variants ready, exactly once. The photo itself never waits for this: a failure here
retries, then dead-letters, and the job simply has no variants.
"""

from __future__ import annotations

import re

from photoveil.adapters.jobs import DONE, PROCESSING, Job
from photoveil.adapters.storage import blurred_key, edited_key, variant_key
from photoveil.dependencies import Dependencies
from photoveil.errors import PhotoVeilError
from photoveil.imaging.sizes import VARIANT_NAMES
from photoveil.imaging.variants import make_variants
from photoveil.observability import MetricUnit, job_context, logger, metrics, tracer
from photoveil.service.notifications import ObjectCreated


# p/{jobId}.jpg, or p/{jobId}-{version}.jpg after an edit (storage.edited_key)
class NotPublishedYetError(PhotoVeilError):
    """The event came before the job recorded the photo: retry in a moment."""


PHOTO_KEY_RE = re.compile(r"p/([0-9a-f]{32})(?:-[0-9a-f]{16})?\.jpg")


def handle_published(photo: ObjectCreated, deps: Dependencies) -> None:
    """Make the variants of a full-size photo of our bucket; anything else is acknowledged."""
    match = PHOTO_KEY_RE.fullmatch(photo.key)
    if photo.bucket != deps.settings.blurred_bucket or not match:
        logger.warning("ignoring an object that is not a published photo", extra={"key": photo.key[:200]})
        return
    with job_context(match.group(1)):
        make_variants_of(match.group(1), photo, deps)


@tracer.capture_method
def make_variants_of(job_id: str, photo: ObjectCreated, deps: Dependencies) -> None:
    """Write the variants of ``photo`` if its job still publishes it, and mark them ready once."""
    job = deps.jobs.get(job_id)
    if job is not None and _being_published(job, photo.key):
        # The photo is written before its job says done: S3 can announce it first.
        raise NotPublishedYetError("the photo's job has not recorded it yet")
    if job is None or job.expired(deps.clock()) or job.status != DONE or job.photo_key != photo.key:
        logger.info("photo no longer published; no variants", extra={"status": job and job.status})
        return
    if job.variants_ready:
        logger.info("variants already made; duplicate event")
        return
    names = list(VARIANT_NAMES)
    days_left = job.days_left(deps.clock())  # a variant made late must not outlive its photo
    for variant in make_variants(deps.storage.read_blurred(photo.key)):
        deps.storage.put_variant(variant_key(photo.key, variant.name), variant.jpeg, days_left=days_left)
        recorded = deps.jobs.record_variant(job_id, photo_key=photo.key, name=variant.name, now=deps.clock())
        if recorded is None:
            # Deleted, edited or expired while we worked: what was written must not stay reachable.
            deps.storage.delete_variants(photo.key)
            logger.info("photo withdrawn meanwhile; variants deleted")
            return
    if deps.jobs.finish_variants(job_id, photo_key=photo.key, names=names, now=deps.clock()) is not None:
        _record_ready(photo, deps)


def _being_published(job: Job, key: str) -> bool:
    """Whether ``key`` is the photo the job is about to record as published (upload or edit)."""
    if job.status != PROCESSING:
        return False
    if job.photo_key is None:
        return key == blurred_key(job.job_id)
    return job.pending_edit is not None and key == edited_key(job.job_id, job.pending_edit.version)


def _record_ready(photo: ObjectCreated, deps: Dependencies) -> None:
    logger.info("variants ready", extra={"variants": VARIANT_NAMES})
    metrics.add_metric(name="VariantsReady", unit=MetricUnit.Count, value=1)
    if photo.event_time is not None:
        latency_ms = (deps.clock() - photo.event_time).total_seconds() * 1000
        metrics.add_metric(name="PublishToVariantsLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
