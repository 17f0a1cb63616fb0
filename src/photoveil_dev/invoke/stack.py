"""The running local stack as the invoked functions and the checks see it, read from its DATA_DIR/stack.json.

The invoked functions act as the stack's own: each with its role's keys (IAM is enforced there) and the
environment the template gives it there; the checks read the stack's state as its admin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photoveil.adapters.jobs import Job, JobStore
from photoveil.adapters.quotas import QuotaCounters
from photoveil.local.account import Credentials, client


class StackNotRunningError(RuntimeError):
    """No local stack wrote its stack.json where we look."""


@dataclass
class StackState:
    """Names, endpoint and keys of a running `photoveil local`."""

    pid: int
    moto: str  # the emulator's endpoint on this machine (127.0.0.1)
    uploads_bucket: str
    blurred_bucket: str
    jobs_table: str
    queue_url: str  # BlurQueue's
    admin: Credentials
    roles: dict[str, Credentials]  # each function's role session, by function
    environment: dict[str, str]  # the template's variables as the stack gives them to its functions
    workers: int
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, data_dir: Path) -> StackState:
        path = data_dir / "stack.json"
        if not path.is_file():
            raise StackNotRunningError(f"no local stack wrote {path}: start one with `make run`")
        state = json.loads(path.read_text())
        if "roles" not in state:
            raise StackNotRunningError(f"{path} names no roles: the stack predates `make invoke`, restart it")
        return cls(
            pid=int(state["pid"]),
            moto=state["moto"],
            uploads_bucket=state["uploadsBucket"],
            blurred_bucket=state["blurredBucket"],
            jobs_table=state["jobsTable"],
            queue_url=state["queueUrl"],
            admin=Credentials.from_json(state["credentials"]),
            roles={fn: Credentials.from_json(keys) for fn, keys in state["roles"].items()},
            environment=state["environment"],
            workers=int(state.get("workers", 0)),
        )

    def client(self, service: str) -> Any:
        """The admin's client for SERVICE (the checks' view of the stack), made once."""
        if service not in self._clients:
            self._clients[service] = client(service, self.moto, self.admin)
        return self._clients[service]

    @property
    def jobs(self) -> JobStore:
        return JobStore(self.jobs_table, client=self.client("dynamodb"))

    @property
    def quotas(self) -> QuotaCounters:
        return QuotaCounters(self.environment["QUOTAS_TABLE"], client=self.client("dynamodb"))

    def job(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def keys(self, bucket: str, prefix: str) -> list[str]:
        listed = self.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def object_bytes(self, bucket: str, key: str) -> bytes:
        return self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def queue_url_named(self, name: str) -> str:
        return self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
