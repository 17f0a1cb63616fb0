"""JobsTable (DynamoDB): one item per photo, keyed by ``jobId``, expired by the ``ttl`` attribute.

Item schema (attribute names are part of the template contract)::

    jobId        S  32 lowercase hex chars (partition key)
    status       S  awaiting_upload | processing | done | failed | deleted | withdrawn (reported, in review)
    contentType  S  what the browser declared (the worker re-checks the real type)
    size         N  declared size in bytes
    email        S  optional; removed when the job finishes (we keep it no longer than we need it)
    createdAt    S  ISO 8601 UTC;  updatedAt S  ISO 8601 UTC
    attempts     N  how many times a worker started on it
    faces        N  faces blurred (done)
    photoKey     S  the photo as published: p/{jobId}.jpg, after an edit p/{jobId}-{version}.jpg
    expiresAt    S  ISO 8601 UTC, when the public photo is deleted (done)
    errorCode    S, errorMessage S  (failed)
    variantsDone SS names of the variants written for photoKey (800x600, 400x300, 200x150)
    variantsReady S  the photoKey whose variants are all written (set once, by whichever write ends the set)
    ownerTokens  SS SHA-256 hashes of the tokens that may edit or delete the photo (never the tokens)
    editCount    N  edits asked for;  pendingEdit M {n N, version S, regions S (JSON)} while one runs
    withdraw     SS photo keys no longer published whose objects and CDN copies are still to be dropped:
                    added by the write that unpublishes them (a delete, an edit), removed once done
    ttl          N  epoch seconds: upload window + 1 day while pending/failed, expiresAt once done
    reporters    SS hashes of the client addresses that reported the photo (one report each counts), kept
                    across the operator's review, so an address reports a photo once for good; at most
                    MAX_REPORTERS (past it only a report from a new network counts, unstored)
    networks     SS hashes of the networks (IPv4 /24, IPv6 /48) those addresses are in, also kept; at most
                    MAX_NETWORKS (past it no further network counts: the photo has been reviewed often)
    networkCount N  networks counted since the last review: a network counts once for good, so after a
                    restore only networks that had not reported the photo can withdraw it again
    reportCount  N  reports counted, every review together (stored or not)
    reviewedReports N  of those, how many the operator has reviewed (a restore reviews them all)
    reports      L  [{reason S, note S?, at S}] what the reports not yet reviewed said: the first
                    MAX_STORED_REPORTS of them (a restore removes them; the log of the restore keeps them)
    reason_<reason> N  reports not yet reviewed giving that reason (REASONS), stored or not
    withdrawnAt  S  when enough reports took the photo offline (status withdrawn) pending review
    restoring    S  the photo key a restore is publishing again, until its objects are back in p/ (a
                    restore that stopped half-way is finished by running it again)
    invalidatePending S  a marker of the withdrawal (its time and a random suffix, unique to it) while its
                    CloudFront copies are still to be dropped: set by the write that withdraws the photo,
                    removed once the worker invalidated (only if it is still that withdrawal's) or by a
                    restore
    takenDownAt  S  when the operator took the photo down for good (status deleted)

Transitions are conditional writes, so duplicate S3 events and racing workers cannot undo a finished job.
"""

from __future__ import annotations

import json
import math
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from photoveil.adapters.clients import dynamodb_client

AWAITING_UPLOAD = "awaiting_upload"
PROCESSING = "processing"
DONE = "done"
FAILED = "failed"
DELETED = "deleted"
WITHDRAWN = "withdrawn"  # taken offline by reports, pending the operator's review (restore or takedown)
# What a photo's reports may add to its item, which must stay below DynamoDB's 400 KB or every later write
# of the job fails, an owner's delete included. Worst case (DynamoDB's item size rules:
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
# 100 reports not yet reviewed, each a note of 500 four-byte characters (2,000 bytes) + its reason and time
# ≈ 2,045 bytes: 205 KB; 1,000 reporters and 500 networks of 32 bytes: 48 KB; ≈ 253 KB with the rest of the
# job (under 5 KB). tests/functional/test_reports.py writes that item and keeps working on it.
MAX_STORED_REPORTS = 100  # reports not yet reviewed kept whole; later ones are counted (and by reason)
MAX_REPORTERS = 1000  # addresses kept to tell repeats apart
MAX_NETWORKS = 500  # networks kept; a photo reported from this many has been reviewed over and over
REASONS = ("sexual", "violence", "hate", "my_face", "illegal", "other")  # what a visitor may give
FINISHED = frozenset({DONE, FAILED, DELETED})


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second (what the API returns)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class PendingEdit:
    """An edit asked for and not yet applied: its number, the key its result is published under, and
    the rectangles to blur as fractions of the published photo (x, y, width, height)."""

    number: int
    version: str
    regions: tuple[tuple[float, float, float, float], ...]

    def as_attribute(self) -> dict[str, Any]:
        regions = json.dumps([list(r) for r in self.regions], separators=(",", ":"))
        return {
            "M": {"n": {"N": str(self.number)}, "version": {"S": self.version}, "regions": {"S": regions}}
        }

    @classmethod
    def from_attribute(cls, value: dict[str, Any]) -> PendingEdit:
        fields = value["M"]
        regions = tuple(tuple(float(v) for v in r) for r in json.loads(fields["regions"]["S"]))
        return cls(int(fields["n"]["N"]), fields["version"]["S"], regions)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Report:
    """One visitor's report of a photo: a reason from the fixed list, an optional note, when."""

    reason: str
    note: str
    at: str

    @classmethod
    def from_attribute(cls, value: dict[str, Any]) -> Report:
        fields = value["M"]
        return cls(fields["reason"]["S"], fields.get("note", {}).get("S", ""), fields["at"]["S"])


@dataclass(frozen=True)
class Job:
    job_id: str
    status: str
    created_at: str
    ttl: int
    content_type: str | None = None
    size: int | None = None
    email: str | None = None
    faces: int | None = None
    photo_key: str | None = None
    expires_at: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    updated_at: str | None = None
    variants_ready_for: str | None = None
    owner_token_hashes: frozenset[str] = frozenset()
    edit_count: int = 0
    pending_edit: PendingEdit | None = None
    withdraw: frozenset[str] = frozenset()
    report_count: int = 0
    reports: tuple[Report, ...] = ()
    new_reasons: tuple[tuple[str, int], ...] = ()  # (reason, reports not yet reviewed giving it)
    reporter_hashes: frozenset[str] = frozenset()
    network_hashes: frozenset[str] = frozenset()
    network_count: int = 0
    reviewed_reports: int = 0
    withdrawn_at: str | None = None
    invalidate_pending: str | None = None
    taken_down_at: str | None = None
    restoring: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def unreviewed(self) -> int:
        """How many reports the operator has not reviewed yet (those since the last restore)."""
        return max(0, self.report_count - self.reviewed_reports)

    @property
    def unreviewed_reasons(self) -> dict[str, int]:
        """The reasons the reports not reviewed yet gave, every one counted, stored or not (a job reported
        before the counts by reason existed: its stored reports)."""
        return dict(self.new_reasons) or dict(Counter(report.reason for report in self.new_reports))

    @property
    def new_reports(self) -> tuple[Report, ...]:
        """The reports not reviewed yet that are stored (the first MAX_STORED_REPORTS of them). A restore
        before this rule kept the reviewed ones at the head of ``reports``: they are left out."""
        return self.reports[max(0, len(self.reports) - self.unreviewed) :]

    @property
    def variants_ready(self) -> bool:
        """Whether every variant of the photo as published now exists."""
        return (
            self.status == DONE and self.photo_key is not None and self.variants_ready_for == self.photo_key
        )

    def days_left(self, now: datetime) -> int:
        """Whole days until the photo's expiresAt, rounded up (at least 1): what a copy or a later object of
        it may live (adapters.storage.DAYS_LEFT_TAG)."""
        end = _parse_iso(self.expires_at).timestamp() if self.expires_at else self.ttl
        return max(1, math.ceil((end - now.timestamp()) / 86400))

    def expired(self, now: datetime) -> bool:
        """DynamoDB deletes expired items lazily (up to days later): treat them as gone already."""
        return self.ttl <= int(now.timestamp())

    def retries_over(self, now: datetime, *, visibility_timeout_s: int, max_receive_count: int) -> bool:
        """True when a ``processing`` job can no longer finish by itself: its message is in the DLQ.

        Every receive that reaches the worker counts an attempt and moves ``updatedAt``; a failed one
        comes back after the visibility timeout, until maxReceiveCount receives. So once
        ``visibility x (receives left + 1)`` has passed since the last attempt, no retry is coming. A
        receive that died before counting only leaves more time; a retry held in a queue backlog for longer
        than that is shown failed early (and still finishes). A redrive of the DLQ starts a new attempt,
        and the job is simply ``processing`` again.
        """
        if self.status != PROCESSING or not self.updated_at:
            return False
        receives_left = max(0, max_receive_count - self.attempts)
        deadline = _parse_iso(self.updated_at) + timedelta(seconds=visibility_timeout_s * (receives_left + 1))
        return now >= deadline

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        def s(name: str) -> str | None:
            return item[name]["S"] if name in item else None

        def n(name: str) -> int | None:
            return int(item[name]["N"]) if name in item else None

        return cls(
            job_id=item["jobId"]["S"],
            status=item["status"]["S"],
            created_at=s("createdAt") or "",
            ttl=n("ttl") or 0,
            content_type=s("contentType"),
            size=n("size"),
            email=s("email"),
            faces=n("faces"),
            photo_key=s("photoKey"),
            expires_at=s("expiresAt"),
            error_code=s("errorCode"),
            error_message=s("errorMessage"),
            attempts=n("attempts") or 0,
            updated_at=s("updatedAt"),
            variants_ready_for=s("variantsReady"),
            owner_token_hashes=frozenset(item["ownerTokens"]["SS"]) if "ownerTokens" in item else frozenset(),
            edit_count=n("editCount") or 0,
            pending_edit=PendingEdit.from_attribute(item["pendingEdit"]) if "pendingEdit" in item else None,
            withdraw=frozenset(item["withdraw"]["SS"]) if "withdraw" in item else frozenset(),
            report_count=n("reportCount") or 0,
            reports=tuple(Report.from_attribute(r) for r in item.get("reports", {}).get("L", [])),
            new_reasons=tuple((r, int(item[f"reason_{r}"]["N"])) for r in REASONS if f"reason_{r}" in item),
            reporter_hashes=frozenset(item.get("reporters", {}).get("SS", [])),
            network_hashes=frozenset(item.get("networks", {}).get("SS", [])),
            network_count=n("networkCount") or 0,
            reviewed_reports=n("reviewedReports") or 0,
            withdrawn_at=s("withdrawnAt"),
            invalidate_pending=s("invalidatePending"),
            taken_down_at=s("takenDownAt"),
            restoring=s("restoring"),
        )


def _under(attribute: str, cap: str) -> str:
    """The condition that a set or list ATTRIBUTE holds fewer than CAP elements (none counts)."""
    return f"(attribute_not_exists({attribute}) OR size({attribute}) < {cap})"


def _new_and_under(attribute: str, value: str, cap: str) -> str:
    """The condition that the set ATTRIBUTE does not hold VALUE and has room for it under CAP."""
    return f"NOT contains({attribute}, {value}) AND {_under(attribute, cap)}"


@dataclass(frozen=True)
class ReportWrite:
    """A report to count, and how, as decided on the job as read (JobStore.add_report)."""

    reporter: str  # the client address, hashed with the photo
    network: str  # its network, hashed with the photo
    reason: str  # one of REASONS
    note: str
    keep_reporter: bool  # its address is kept to tell repeats apart (the set is under MAX_REPORTERS)
    new_network: bool  # its network counts now (not counted before, the set under MAX_NETWORKS)
    stored: bool  # the report itself is kept (fewer than MAX_STORED_REPORTS not reviewed are)

    def entry(self, now: datetime) -> dict[str, Any]:
        entry: dict[str, Any] = {"reason": {"S": self.reason}, "at": {"S": iso(now)}}
        if self.note:
            entry["note"] = {"S": self.note}
        return entry


# "Not finished" as a condition, and the values it names.
_NOT_FINISHED = "NOT #status IN (:done, :failed, :deleted)"
_FINISHED = {":done": {"S": DONE}, ":failed": {"S": FAILED}, ":deleted": {"S": DELETED}}


class JobStore:
    """Reads and conditionally updates jobs in one DynamoDB table."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client or dynamodb_client()

    def create(
        self,
        job_id: str,
        *,
        content_type: str,
        size: int,
        email: str | None,
        owner_token_hash: str,
        now: datetime,
        ttl: int,
    ) -> Job:
        """Create a job ``awaiting_upload``; never overwrites (job ids are random, a clash is a bug)."""
        item: dict[str, Any] = {
            "jobId": {"S": job_id},
            "status": {"S": AWAITING_UPLOAD},
            "contentType": {"S": content_type},
            "size": {"N": str(size)},
            "createdAt": {"S": iso(now)},
            "updatedAt": {"S": iso(now)},
            "ttl": {"N": str(ttl)},
            "ownerTokens": {"SS": [owner_token_hash]},
        }
        if email:
            item["email"] = {"S": email}
        self._client.put_item(
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(jobId)",
        )
        return Job.from_item(item)

    def get(self, job_id: str) -> Job | None:
        """The job, or None if there is no such item. Strongly consistent: the worker decides on it."""
        response = self._client.get_item(
            TableName=self.table_name, Key={"jobId": {"S": job_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return Job.from_item(item) if item else None

    def mark_processing(self, job_id: str, *, now: datetime) -> Job | None:
        """Move a job whose photo was never published to ``processing``; None if it is missing, finished,
        or published already (an edit in progress is not the upload's to take over)."""
        return self._update(
            job_id,
            update="SET #status = :processing, updatedAt = :now ADD attempts :one",
            condition=f"attribute_exists(jobId) AND {_NOT_FINISHED} AND attribute_not_exists(photoKey)",
            values={
                ":processing": {"S": PROCESSING},
                ":now": {"S": iso(now)},
                ":one": {"N": "1"},
                **_FINISHED,
            },
        )

    def mark_done(
        self,
        job_id: str,
        *,
        faces: int,
        photo_key: str,
        expires_at: datetime,
        now: datetime,
        email_token_hash: str | None = None,
    ) -> Job | None:
        """Publish a ``processing`` upload. Returns the job *as it was* (with its email) if this call made
        the transition, None if another worker got there first: only the winner sends the email.
        ``email_token_hash``: the owner token the email will carry, stored (as a hash) with the photo."""
        values = {
            ":done": {"S": DONE},
            ":processing": {"S": PROCESSING},
            ":faces": {"N": str(faces)},
            ":key": {"S": photo_key},
            ":expires": {"S": iso(expires_at)},
            ":now": {"S": iso(now)},
            ":ttl": {"N": str(int(expires_at.timestamp()))},
        }
        update = (
            "SET #status = :done, faces = :faces, photoKey = :key, expiresAt = :expires, "
            "updatedAt = :now, #ttl = :ttl REMOVE email"
        )
        if email_token_hash:
            update += " ADD ownerTokens :token"
            values[":token"] = {"SS": [email_token_hash]}
        return self._update(
            job_id,
            update=update,
            condition="#status = :processing AND attribute_not_exists(photoKey)",
            values=values,
            names={"#ttl": "ttl"},
            return_values="ALL_OLD",
        )

    def mark_failed(self, job_id: str, *, code: str, message: str, now: datetime, ttl: int) -> Job | None:
        """Fail an unfinished job with a stable error code; None if it is missing or already finished."""
        return self._update(
            job_id,
            update=(
                "SET #status = :failed, errorCode = :code, errorMessage = :message, updatedAt = :now, "
                "#ttl = :ttl REMOVE email"
            ),
            condition=f"attribute_exists(jobId) AND {_NOT_FINISHED} AND attribute_not_exists(photoKey)",
            values={
                **_FINISHED,
                ":code": {"S": code},
                ":message": {"S": message[:500]},
                ":now": {"S": iso(now)},
                ":ttl": {"N": str(ttl)},
            },
            names={"#ttl": "ttl"},
        )

    def record_variant(self, job_id: str, *, photo_key: str, name: str, now: datetime) -> Job | None:
        """Note a variant written for ``photo_key``; None if the job no longer publishes that photo
        (deleted, edited, expired): the caller must then withdraw what it wrote."""
        return self._update(
            job_id,
            update="ADD variantsDone :name SET updatedAt = :now",
            condition="#status = :done AND photoKey = :key AND #ttl > :epoch",
            values={
                ":name": {"SS": [name]},
                ":now": {"S": iso(now)},
                ":done": {"S": DONE},
                ":key": {"S": photo_key},
                ":epoch": {"N": str(int(now.timestamp()))},
            },
            names={"#ttl": "ttl"},
        )

    def finish_variants(self, job_id: str, *, photo_key: str, names: list[str], now: datetime) -> Job | None:
        """Mark the variants of ``photo_key`` ready if all ``names`` are written; the job if this call
        did it, None otherwise (not all written yet, already marked, or the photo changed): exactly once."""
        all_written = " AND ".join(f"contains(variantsDone, :n{i})" for i in range(len(names)))
        return self._update(
            job_id,
            update="SET variantsReady = :key, updatedAt = :now",
            condition=(
                f"#status = :done AND photoKey = :key AND {all_written} "
                "AND (attribute_not_exists(variantsReady) OR variantsReady <> :key)"
            ),
            values={
                ":key": {"S": photo_key},
                ":now": {"S": iso(now)},
                ":done": {"S": DONE},
                **{f":n{i}": {"S": name} for i, name in enumerate(names)},
            },
        )

    def mark_deleted(self, job_id: str, *, photo_key: str | None, now: datetime, ttl: int) -> Job | None:
        """Withdraw the photo for good: ``deleted`` whatever the job was doing, kept until ``ttl`` so that
        late events find it, with ``photo_key`` (what it published) recorded to withdraw. Returns the job
        as it is now; None if it is gone, deleted already, or no longer publishes ``photo_key``."""
        values: dict[str, Any] = {
            ":deleted": {"S": DELETED},
            ":now": {"S": iso(now)},
            ":ttl": {"N": str(ttl)},
        }
        update = (
            "SET #status = :deleted, updatedAt = :now, #ttl = :ttl "
            "REMOVE email, pendingEdit, variantsReady, variantsDone"
        )
        published = "attribute_not_exists(photoKey)"
        if photo_key:
            update += " ADD withdraw :key"
            published = "photoKey = :published"
            values |= {":key": {"SS": [photo_key]}, ":published": {"S": photo_key}}
        return self._update(
            job_id,
            update=update,
            condition=f"attribute_exists(jobId) AND #status <> :deleted AND {published}",
            values=values,
            names={"#ttl": "ttl"},
        )

    def clear_withdrawals(self, job_id: str, *, photo_keys: list[str]) -> None:
        """Note that ``photo_keys`` are withdrawn everywhere (nothing if the job is gone)."""
        self._update(
            job_id,
            update="DELETE withdraw :keys",
            condition="attribute_exists(#status)",
            values={":keys": {"SS": photo_keys}},
        )

    def add_report(self, job_id: str, report: ReportWrite, *, now: datetime) -> Job | None:
        """Count REPORT on a published photo, as it was decided on the job as read: the write is
        conditional on the same facts (the reporter new, its network new or not, each list under its cap
        or full). The job as it is now, or None if nothing is published or a fact changed meanwhile (a
        report racing another from the same network: read and decide again)."""
        adds = ["reportCount :one", "#reason :one"]
        sets = ["lastReportAt = :now"]
        conditions = ["#status IN (:done, :processing, :withdrawn) AND attribute_exists(photoKey)"]
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":now": {"S": iso(now)},
            ":done": {"S": DONE},
            ":processing": {"S": PROCESSING},
            ":withdrawn": {"S": WITHDRAWN},
            ":network": {"S": report.network},
            ":maxReporters": {"N": str(MAX_REPORTERS)},
            ":maxNetworks": {"N": str(MAX_NETWORKS)},
            ":maxReports": {"N": str(MAX_STORED_REPORTS)},
        }
        if report.keep_reporter:
            adds.append("reporters :reporters")
            values |= {":reporters": {"SS": [report.reporter]}, ":reporter": {"S": report.reporter}}
            conditions.append(
                f"NOT contains(reporters, :reporter) AND {_under('reporters', ':maxReporters')}"
            )
        else:  # a full set cannot hold this reporter: it was checked not to be there when read
            conditions.append("size(reporters) >= :maxReporters")
        if report.new_network:
            adds += ["networks :networks", "networkCount :one"]
            values[":networks"] = {"SS": [report.network]}
            conditions.append(_new_and_under("networks", ":network", ":maxNetworks"))
        else:
            conditions.append("(contains(networks, :network) OR size(networks) >= :maxNetworks)")
        if report.stored:
            sets.append("reports = list_append(if_not_exists(reports, :none), :entry)")
            values |= {":none": {"L": []}, ":entry": {"L": [{"M": report.entry(now)}]}}
            conditions.append(_under("reports", ":maxReports"))
        else:
            conditions.append("size(reports) >= :maxReports")
        return self._update(
            job_id,
            update=f"ADD {', '.join(adds)} SET {', '.join(sets)}",
            condition=" AND ".join(conditions),
            values=values,
            names={"#reason": f"reason_{report.reason}"},
        )

    def mark_withdrawn(self, job_id: str, *, threshold: int, now: datetime) -> Job | None:
        """Take a published photo reported from at least THRESHOLD networks since its last review offline
        pending review: the job as it is now if this call did it (exactly once), else None. A pending edit
        is dropped: it cannot publish. The withdrawal's invalidation is recorded in the same write, with a
        marker unique to this withdrawal (cleared by clear_invalidation, or a restore): a restore keeps
        the photo key, so a worker late for one withdrawal must not clear the next one's."""
        marker = f"{iso(now)}/{secrets.token_hex(4)}"
        return self._update(
            job_id,
            update=(
                "SET #status = :withdrawn, withdrawnAt = :now, invalidatePending = :marker REMOVE pendingEdit"
            ),
            condition=(
                "#status IN (:done, :processing) AND attribute_exists(photoKey) AND networkCount >= :min"
            ),
            values={
                ":withdrawn": {"S": WITHDRAWN},
                ":now": {"S": iso(now)},
                ":marker": {"S": marker},
                ":done": {"S": DONE},
                ":processing": {"S": PROCESSING},
                ":min": {"N": str(threshold)},
            },
        )

    def clear_invalidation(self, job_id: str, *, marker: str) -> None:
        """Note that the withdrawal MARKER names had its CloudFront copies dropped (nothing if the job now
        records another withdrawal's, or none)."""
        self._remove_if(job_id, "invalidatePending", marker)

    def mark_restored(self, job_id: str, *, now: datetime) -> Job | None:
        """Publish a withdrawn, unexpired photo again, its reports marked reviewed (their entries and
        counts by reason dropped, so the next reports are stored afresh): its reporters and their networks
        are kept (they counted once for good) and no network counts towards the threshold any more;
        ``restoring`` records the photo key until finish_restore. None if it is not withdrawn (or has
        expired)."""
        return self._update(
            job_id,
            update=(
                "SET #status = :done, restoredAt = :now, networkCount = :zero, restoring = photoKey, "
                "reviewedReports = if_not_exists(reportCount, :zero) REMOVE withdrawnAt, invalidatePending, "
                "reports, " + ", ".join(f"reason_{reason}" for reason in REASONS)
            ),
            condition="#status = :withdrawn AND attribute_exists(photoKey) AND #ttl > :epoch",
            values={
                ":done": {"S": DONE},
                ":withdrawn": {"S": WITHDRAWN},
                ":now": {"S": iso(now)},
                ":zero": {"N": "0"},
                ":epoch": {"N": str(int(now.timestamp()))},
            },
            names={"#ttl": "ttl"},
        )

    def finish_restore(self, job_id: str, *, photo_key: str) -> None:
        """Note that a restore's objects are back in p/ (nothing if the job changed meanwhile)."""
        self._remove_if(job_id, "restoring", photo_key)

    def _remove_if(self, job_id: str, attribute: str, value: str) -> None:
        """Remove ATTRIBUTE if it still holds VALUE (what the caller read): nothing if it changed."""
        self._update(
            job_id,
            update="REMOVE #attribute",
            condition="attribute_exists(#status) AND #attribute = :value",
            values={":value": {"S": value}},
            names={"#attribute": attribute},
        )

    def mark_taken_down(self, job_id: str, *, now: datetime, ttl: int) -> Job | None:
        """The operator's takedown: ``deleted`` for good whatever the job was doing, kept until TTL so that
        late events find it. Returns the job as it was (its photoKey says what to delete)."""
        return self._update(
            job_id,
            update=(
                "SET #status = :deleted, takenDownAt = :now, updatedAt = :now, #ttl = :ttl "
                "REMOVE email, pendingEdit, variantsReady, variantsDone, ownerTokens"
            ),
            condition="attribute_exists(jobId)",
            values={":deleted": {"S": DELETED}, ":now": {"S": iso(now)}, ":ttl": {"N": str(ttl)}},
            names={"#ttl": "ttl"},
            return_values="ALL_OLD",
        )

    def reported(self) -> list[Job]:
        """Every job withdrawn or with reports the operator has not reviewed (a Scan: the operator's tool,
        not a request path)."""
        pages = self._client.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression=(
                "#status = :withdrawn OR (attribute_exists(reportCount) AND "
                "(attribute_not_exists(reviewedReports) OR reportCount > reviewedReports))"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":withdrawn": {"S": WITHDRAWN}},
        )
        return [Job.from_item(item) for page in pages for item in page.get("Items", [])]

    def request_edit(self, job_id: str, *, edit: PendingEdit, now: datetime, stale: int | None) -> Job | None:
        """Take edit number ``edit.number`` for a ``done`` photo (or one whose edit ``stale`` ran out of
        retries); None if the photo is not ready or another edit was taken meanwhile."""
        replaceable = "#status = :done"
        values: dict[str, Any] = {
            ":done": {"S": DONE},
            ":processing": {"S": PROCESSING},
            ":edit": edit.as_attribute(),
            ":n": {"N": str(edit.number)},
            ":now": {"S": iso(now)},
            ":zero": {"N": "0"},
        }
        if stale is not None:
            replaceable = "(#status = :done OR (#status = :processing AND pendingEdit.n = :stale))"
            values[":stale"] = {"N": str(stale)}
        count = "attribute_not_exists(editCount)"
        if edit.number > 1:
            count = "editCount = :previous"
            values[":previous"] = {"N": str(edit.number - 1)}
        return self._update(
            job_id,
            update=(
                "SET #status = :processing, pendingEdit = :edit, editCount = :n, updatedAt = :now, "
                "attempts = :zero"
            ),
            condition=f"{replaceable} AND {count}",
            values=values,
        )

    def mark_edit_attempt(self, job_id: str, *, number: int, now: datetime) -> Job | None:
        """Count a worker's attempt at edit ``number``; None if that edit is no longer pending."""
        return self._update(
            job_id,
            update="SET updatedAt = :now ADD attempts :one",
            condition="#status = :processing AND pendingEdit.n = :n",
            values={
                ":processing": {"S": PROCESSING},
                ":n": {"N": str(number)},
                ":now": {"S": iso(now)},
                ":one": {"N": "1"},
            },
        )

    def finish_edit(
        self, job_id: str, *, number: int, photo_key: str, replaced: str, now: datetime
    ) -> Job | None:
        """Publish edit ``number`` as ``photo_key`` in place of ``replaced``, recorded to withdraw in the same
        write. Returns the job as it is now if this call did it, None if the edit is no longer pending
        (done twice, or deleted)."""
        return self._update(
            job_id,
            update=(
                "SET #status = :done, photoKey = :key, updatedAt = :now "
                "REMOVE pendingEdit, variantsReady, variantsDone ADD withdraw :replaced"
            ),
            condition="#status = :processing AND pendingEdit.n = :n AND photoKey = :old",
            values={
                ":done": {"S": DONE},
                ":processing": {"S": PROCESSING},
                ":n": {"N": str(number)},
                ":key": {"S": photo_key},
                ":now": {"S": iso(now)},
                ":old": {"S": replaced},
                ":replaced": {"SS": [replaced]},
            },
        )

    def _update(
        self,
        job_id: str,
        *,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
        return_values: str = "ALL_NEW",
    ) -> Job | None:
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key={"jobId": {"S": job_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status", **(names or {})},
                ExpressionAttributeValues=values,
                ReturnValues=return_values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return Job.from_item(response["Attributes"])
