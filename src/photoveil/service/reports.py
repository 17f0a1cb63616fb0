"""Visitors' reports of a published photo (``POST /jobs/{jobId}/report``), and what enough of them do.

No token: anyone who has the link may report. One report per client address (IPv6: per /64) per photo
counts, and every one is recorded for the operator; the photo is withdrawn pending review when reports
have come from ``REPORT_THRESHOLD`` distinct networks (IPv4 /24, IPv6 /48: addresses are cheap, networks
less so): moved out of ``p/`` (so neither CloudFront nor the origin serves it), its status says
``withdrawn``, and the operator is told on the reports topic. The operator then restores it or takes it
down (photoveil.service.review); a restore keeps the reporters and their networks, so only networks that
had not reported the photo before can withdraw it again. Addresses and networks are kept only as hashes
salted with the photo. The owner can still delete it.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from http import HTTPStatus

from botocore.exceptions import BotoCoreError, ClientError

from photoveil.adapters.jobs import (
    DONE,
    MAX_NETWORKS,
    MAX_REPORTERS,
    MAX_STORED_REPORTS,
    PROCESSING,
    REASONS,
    WITHDRAWN,
    Job,
    ReportWrite,
)
from photoveil.dependencies import Dependencies
from photoveil.errors import RequestError
from photoveil.observability import MetricUnit, job_context, logger, metrics
from photoveil.service.quotas import SERVICE, Limits, charge, client_block, client_key, client_network
from photoveil.service.status import JOB_ID_RE
from photoveil.service.uploads import bad_request, json_object
from photoveil.service.withdrawals import cdn_paths

# REASONS (adapters.jobs) are the reasons a visitor may give: the viewer page offers the same list
# (frontend/view.js).
MAX_NOTE_CHARS = 500
REPORTABLE = frozenset({DONE, PROCESSING, WITHDRAWN})  # PROCESSING: published, an edit under way


@dataclass(frozen=True)
class ReportRequest:
    reason: str
    note: str


def parse_report(body: bytes) -> ReportRequest:
    """``{"reason": one of REASONS, "note"?: text}``; RequestError(400) for anything else."""
    data = json_object(body)
    if not set(data) <= {"reason", "note"} or data.get("reason") not in REASONS:
        raise bad_request(
            "invalid_report", f'the body must be {{"reason": one of {", ".join(REASONS)}, "note"?}}'
        )
    note = data.get("note", "")
    if not isinstance(note, str):
        raise bad_request("invalid_report", "the note must be text")
    # Measured as sent (what openapi.yaml's maxLength says), then control characters are dropped: the
    # note ends up in the operator's terminal and email.
    if len(note) > MAX_NOTE_CHARS:
        raise bad_request("note_too_long", f"the note takes at most {MAX_NOTE_CHARS} characters")
    note = "".join(c for c in note if unicodedata.category(c)[0] != "C" or c in "\n").strip()
    return ReportRequest(reason=data["reason"], note=note)


def reporter_id(job_id: str, source_ip: str) -> str:
    """The reporter as stored: a hash of the client address (an IPv6 client by its /64, which one
    household or phone holds), salted with the photo so that no two photos' reporters can be matched."""
    network = client_network(source_ip)
    return hashlib.sha256(f"photoveil-report:{job_id}:{network}".encode()).hexdigest()[:32]


def network_id(job_id: str, source_ip: str) -> str:
    """The reporter's network as stored (IPv4 /24, IPv6 /48), hashed and salted with the photo too."""
    block = client_block(source_ip)
    return hashlib.sha256(f"photoveil-report-network:{job_id}:{block}".encode()).hexdigest()[:32]


def report_photo(job_id: str, request: ReportRequest, source_ip: str, deps: Dependencies) -> None:
    """Record the report (once per address) and withdraw the photo at the threshold. 404 for no photo."""
    if not JOB_ID_RE.fullmatch(job_id):
        raise bad_request("invalid_job_id", "a job id is 32 lowercase hexadecimal characters")
    with job_context(job_id):
        now = deps.clock()
        # The client's limit is counted before the photo is looked up: it bounds probing for photos too.
        # The service's ceiling only once a report counts (_record_report): made-up job ids and repeats
        # from a few addresses must not silence reporting for everyone.
        limits = Limits.from_settings(deps.settings)
        charge(deps.quotas, now, [(limits.reports_per_client_hour, client_key(source_ip))])
        job = deps.jobs.get(job_id)
        if job is None or job.expired(now) or job.status not in REPORTABLE or job.photo_key is None:
            raise RequestError(
                HTTPStatus.NOT_FOUND, "job_not_found", "no such photo (or it is no longer online)"
            )
        counted = _record_report(job, request, source_ip, deps)
        # A repeat from the same address is answered the same way: nothing tells it apart.
        logger.info("photo reported", extra={"reason": request.reason, "counted": counted is not None})
        if counted is not None:
            metrics.add_metric(name="PhotosReported", unit=MetricUnit.Count, value=1)
        if counted is not None and counted.network_count >= deps.settings.report_threshold:
            withdraw(counted, deps)


def _record_report(job: Job, request: ReportRequest, source_ip: str, deps: Dependencies) -> Job | None:
    """Record the report once per address, its network counted once per network; the job as it is now,
    or None for a report that does not count (a repeat, or a photo gone meanwhile). Decided on the job
    as read, written on condition that it is still so: a report racing another from the same network is
    decided again. The service's daily ceiling is charged once, by a report that counts."""
    reporter, network = reporter_id(job.job_id, source_ip), network_id(job.job_id, source_ip)
    charged = False
    for _ in range(3):
        report = _counting(job, reporter, network, request)
        if report is None:
            return None
        if not charged:  # a report that counts: each address spends at most one per photo it knows
            ceiling = Limits.from_settings(deps.settings).reports_per_day
            charge(deps.quotas, deps.clock(), [(ceiling, SERVICE)])
            charged = True
        recorded = deps.jobs.add_report(job.job_id, report, now=deps.clock())
        if recorded is not None:
            return recorded
        current = deps.jobs.get(job.job_id)
        if current is None or current.status not in REPORTABLE or current.photo_key is None:
            return None
        job = current
    return None


def _counting(job: Job, reporter: str, network: str, request: ReportRequest) -> ReportWrite | None:
    """How the report counts on JOB as read, or None if it does not: a repeat from its address, or, once
    the addresses kept are at their cap (repeats can no longer be told apart), one whose network counted
    already. Every cap keeps the job's item far below DynamoDB's 400 KB (adapters.jobs)."""
    if reporter in job.reporter_hashes:
        return None
    keep_reporter = len(job.reporter_hashes) < MAX_REPORTERS
    new_network = network not in job.network_hashes and len(job.network_hashes) < MAX_NETWORKS
    if not keep_reporter and not new_network:
        return None
    return ReportWrite(
        reporter=reporter,
        network=network,
        reason=request.reason,
        note=request.note,
        keep_reporter=keep_reporter,
        new_network=new_network,
        stored=len(job.reports) < MAX_STORED_REPORTS,
    )


def withdraw(job: Job, deps: Dependencies) -> None:
    """Take the photo offline pending review: the conditional write lets one request withdraw it and tell
    the operator; the worker moves it out of p/ (queued: retried, then dead-lettered and alarmed). A new
    report of a photo already withdrawn queues the move again, in case an earlier one was lost."""
    threshold = deps.settings.report_threshold
    withdrawn = deps.jobs.mark_withdrawn(job.job_id, threshold=threshold, now=deps.clock())
    if withdrawn is None and job.status != WITHDRAWN:
        return  # another request is withdrawing it right now
    deps.queue.send_withhold(job.job_id)
    if withdrawn is None:
        return
    reasons = withdrawn.unreviewed_reasons
    metrics.add_metric(name="PhotosWithdrawn", unit=MetricUnit.Count, value=1)
    try:
        deps.operator_alerts.photo_withdrawn(job.job_id, networks=withdrawn.network_count, reasons=reasons)
    except (ClientError, BotoCoreError) as error:
        # The photo is offline either way and `photoveil admin reports` lists it; the reporter's request
        # must not fail for it (a retry would not count again, so it would not alert again either).
        logger.exception("operator not told of a withdrawn photo", extra={"error": type(error).__name__})
        metrics.add_metric(name="OperatorAlertFailed", unit=MetricUnit.Count, value=1)
    logger.warning("photo withdrawn pending review", extra={"networks": withdrawn.network_count})


def withhold_photo(job_id: str, deps: Dependencies) -> None:
    """The worker's part: move a withdrawn photo and its variants to withheld/ and drop cached copies, on
    every attempt until both are done. Nothing if the operator restored it (or it was deleted) meanwhile."""
    job = deps.jobs.get(job_id)
    if job is None or job.status != WITHDRAWN or job.photo_key is None:
        logger.info("photo no longer withdrawn; nothing to withhold", extra={"status": job and job.status})
        return
    moved = deps.storage.withhold(job.photo_key)
    # The withdrawal recorded its invalidation and only a done invalidation clears it: a retry after
    # CreateInvalidation failed (TooManyInvalidationsInProgress) moves nothing and still invalidates, and a
    # later report's repeat of the move costs no invalidation. The marker is this withdrawal's (a restore
    # removes it), so a worker late for an earlier withdrawal cannot clear a later one's.
    if moved or job.invalidate_pending:
        deps.cdn.invalidate(cdn_paths(job.photo_key))
        if job.invalidate_pending:
            deps.jobs.clear_invalidation(job_id, marker=job.invalidate_pending)
    after = deps.jobs.get(job_id)
    if after is not None and after.status == DONE and after.photo_key == job.photo_key:
        # The operator restored it while we moved it (their copy back may have come first): undo ours.
        deps.storage.release(job.photo_key, days_left=after.days_left(deps.clock()))
        logger.info("restored while being withheld; published again")
        return
    logger.info("withdrawn photo withheld", extra={"objects_moved": moved})
