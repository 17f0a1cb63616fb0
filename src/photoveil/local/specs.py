"""What the local stack builds, one frozen type per resource kind, and the stack as a whole.

The template readers (photoveil.local.template) make these; the emulator, the gateway and the pollers
use them. Values only AWS can know are placeholders until :meth:`StackSpec.localised` fills them in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

# Placeholders for what only AWS knows: the site's CloudFront domain, and the AWS origins (the API on
# execute-api, S3) that the site's CSP names, which are the emulator's origin locally.
SITE_DOMAIN = "{site_domain}"
SITE_ORIGIN = f"https://{SITE_DOMAIN}"
EMULATOR_ORIGIN = "{emulator_origin}"
LOCAL_API_ID = "localapi"  # what Ref of the HTTP API gives locally (its id; the gateway serves the API)
SQS_DEFAULT_VISIBILITY_TIMEOUT_S = 30  # AWS's, for a queue that does not set one


class TemplateError(ValueError):
    """The template is missing, unreadable, or lacks something the local stack needs."""


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    arn: str
    attributes: dict[str, str]  # CreateQueue attributes, RedrivePolicy included

    @property
    def visibility_timeout_s(self) -> int:
        return int(self.attributes.get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_TIMEOUT_S))

    @property
    def redrive_policy(self) -> dict[str, Any]:
        return json.loads(self.attributes.get("RedrivePolicy", "{}"))


@dataclass(frozen=True)
class BucketSpec:
    logical_id: str
    name: str
    public_access_block: dict[str, bool] | None
    lifecycle_rules: list[dict[str, Any]]  # boto3 lifecycle Rules
    cors_rules: list[dict[str, Any]]  # boto3 CORSRules
    notifications: dict[str, list[dict[str, Any]]]  # boto3 NotificationConfiguration


@dataclass(frozen=True)
class TopicSpec:
    logical_id: str
    name: str
    arn: str


@dataclass(frozen=True)
class SubscriptionSpec:
    """A topic's subscriber: moto delivers to it itself (an SQS queue here), raw or in SNS's envelope."""

    logical_id: str
    topic_arn: str
    protocol: str
    endpoint: str
    attributes: dict[str, str]  # Subscribe attributes (RawMessageDelivery, FilterPolicy...)


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    name: str
    definition: dict[str, Any]  # CreateTable arguments other than TableName
    time_to_live: dict[str, Any] | None  # boto3 TimeToLiveSpecification


@dataclass(frozen=True)
class SqsSource:
    """A function's SQS event: what Lambda's event source mapping polls, and how."""

    queue_arn: str
    batch_size: int
    batching_window_s: int


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str  # "package.module.function", as the template's Handler
    timeout_s: int
    memory_mb: int
    sqs_sources: tuple[SqsSource, ...]


@dataclass(frozen=True)
class RouteSpec:
    method: str  # "POST", or "ANY"
    path: str  # "/jobs/{jobId}"
    function: str  # logical id

    @property
    def key(self) -> str:
        """The HTTP API routeKey, "GET /jobs/{jobId}"."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class HttpApiSpec:
    routes: tuple[RouteSpec, ...]
    cors: dict[str, Any] | None  # the HttpApi's CorsConfiguration


@dataclass(frozen=True)
class CdnBehaviour:
    path_pattern: str  # "p/*"
    bucket: str  # the bucket behind it
    headers: dict[str, str]  # what its response headers policy adds


@dataclass(frozen=True)
class CdnSpec:
    """The CloudFront distribution: the site (default behaviour) and the paths served from buckets."""

    headers: dict[str, str]
    behaviours: tuple[CdnBehaviour, ...]
    not_found_page: str | None = None  # the site's page CloudFront shows for a 403/404 (CustomErrorResponses)
    page_policy: str = ""  # the CSP the site publisher writes into every page (service.site.with_page_policy)


T = TypeVar("T")


@dataclass(frozen=True)
class StackSpec:
    """Everything the local stack needs to mirror the template."""

    source: Path
    queues: dict[str, QueueSpec]
    topics: dict[str, TopicSpec]
    subscriptions: dict[str, SubscriptionSpec]
    buckets: dict[str, BucketSpec]
    tables: dict[str, TableSpec]
    functions: dict[str, FunctionSpec]
    http_api: HttpApiSpec
    cdn: CdnSpec
    env: dict[str, str]  # the functions' environment, as far as the template resolves it

    def _one(self, found: Iterable[T], what: str) -> T:
        items = list(found)
        if len(items) != 1:
            raise TemplateError(f"template {self.source}: expected one {what}, found {len(items)}")
        return items[0]

    def queue_with_arn(self, arn: str) -> QueueSpec:
        return self._one((q for q in self.queues.values() if q.arn == arn), f"queue {arn}")

    @property
    def uploads_bucket(self) -> BucketSpec:
        """The bucket whose new objects go to a queue (the upload flow)."""
        buckets = self.buckets.values()
        return self._one((b for b in buckets if "QueueConfigurations" in b.notifications), "uploads bucket")

    @property
    def upload_queue(self) -> QueueSpec:
        return self.queue_with_arn(self.uploads_bucket.notifications["QueueConfigurations"][0]["QueueArn"])

    def dead_letter_queue(self, queue: QueueSpec) -> QueueSpec:
        return self.queue_with_arn(queue.redrive_policy.get("deadLetterTargetArn", ""))

    @property
    def photos_bucket(self) -> str:
        """The bucket the CDN serves photos from."""
        return self._one((b.bucket for b in self.cdn.behaviours), "CloudFront behaviour backed by a bucket")

    @property
    def jobs_table(self) -> TableSpec:
        """The table the functions keep jobs in (JOBS_TABLE); the others (quotas) are found the same way."""
        return self.table_named_by("JOBS_TABLE")

    def table_named_by(self, variable: str) -> TableSpec:
        name = self.env.get(variable)
        return self._one((t for t in self.tables.values() if t.name == name), f"table named by {variable}")

    def with_visibility_timeout(self, seconds: int) -> StackSpec:
        """The same stack with every queue a function consumes set to a visibility timeout of SECONDS."""
        consumed = {s.queue_arn for f in self.functions.values() for s in f.sqs_sources}
        queues = {
            lid: dataclasses.replace(q, attributes=q.attributes | {"VisibilityTimeout": str(seconds)})
            if q.arn in consumed
            else q
            for lid, q in self.queues.items()
        }
        return dataclasses.replace(self, queues=queues)

    def localised(self, site_origin: str, emulator_origin: str) -> StackSpec:
        """The spec with the AWS-only values replaced: the CloudFront site by the gateway, S3 by moto."""
        values = {
            SITE_ORIGIN: site_origin,
            SITE_DOMAIN: site_origin.split("://", 1)[1],
            EMULATOR_ORIGIN: emulator_origin,
        }
        return _replace_text(self, values)


def _replace_text(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for placeholder, local in values.items():
            value = value.replace(placeholder, local)
        return value
    if isinstance(value, list):
        return [_replace_text(v, values) for v in value]
    if isinstance(value, tuple):
        return tuple(_replace_text(v, values) for v in value)
    if isinstance(value, dict):
        return {k: _replace_text(v, values) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _replace_text(getattr(value, f.name), values) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value
