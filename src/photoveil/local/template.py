"""Read the resource settings the local stack must share with AWS from template.yaml.

The local stack creates the same buckets, queues and table as the SAM template, with the same
settings (visibility timeout, maxReceiveCount, DLQ retention, lifecycle, CORS, notification prefix,
batch size, TTL attribute). Rather than repeat them by hand, they are read here from the template;
anything the template does not say (or says through an intrinsic that only AWS can resolve, such as a
CloudFront domain) falls back to the documented defaults below, and `StackSpec.notes` says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STACK_NAME = "photoveil"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation short tags (!Ref, !Sub, !GetAtt...) as plain dicts."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template, keeping intrinsic functions as dicts."""
    return yaml.load(path.read_text(), Loader=_CfnLoader) or {}


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    visibility_timeout_s: int
    retention_s: int
    receive_wait_s: int = 0
    max_receive_count: int | None = None  # with a DLQ: moves after this many receives


@dataclass(frozen=True)
class StackSpec:
    """Everything the local stack needs to mirror template.yaml."""

    uploads_bucket: str
    blurred_bucket: str
    queue: QueueSpec
    dlq: QueueSpec
    table: str
    table_key: str
    ttl_attribute: str | None
    uploads_cors: list[dict[str, Any]]  # boto3 CORSRules; local site origin filled in by the stack
    uploads_lifecycle: list[dict[str, Any]]  # boto3 lifecycle Rules
    blurred_lifecycle: list[dict[str, Any]]
    notification_prefix: str
    notification_events: list[str]
    batch_size: int
    batching_window_s: int
    max_concurrency: int | None
    blur_timeout_s: int
    blur_memory_mb: int
    api_routes: list[tuple[str, str]]  # (METHOD, /path/{param})
    env: dict[str, str]  # handler environment resolvable from the template (Globals + functions)
    source: str
    # What CloudFront adds to the site's responses (SiteHeadersPolicy), with "{uploads_origin}" where the
    # policy names AWS origins; the stack fills in the local ones.
    site_headers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# Defaults follow DESIGN.md (visibility >= 6 x function timeout, maxReceiveCount >= 5, 1-day uploads
# lifecycle, 30-day blurred lifecycle, 14-day DLQ retention) for when the template is absent.
_DEFAULT_TIMEOUT = 30
_DEFAULT_ROUTES = [("POST", "/uploads"), ("GET", "/jobs/{jobId}")]
_SITE_ORIGIN = "{site_origin}"  # placeholder replaced by the local gateway's origin


def _default_cors() -> list[dict[str, Any]]:
    return [
        {
            "AllowedOrigins": [_SITE_ORIGIN],
            "AllowedMethods": ["POST"],
            "AllowedHeaders": ["*"],
            "MaxAgeSeconds": 3000,
        }
    ]


def _expire(days: int, rule_id: str) -> list[dict[str, Any]]:
    return [{"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": days}}]


class _Resolver:
    """Resolves the intrinsics the local stack can know (parameters, pseudo parameters, local names)."""

    def __init__(self, template: dict[str, Any], names: dict[str, str]) -> None:
        self.params = {
            k: v.get("Default") for k, v in (template.get("Parameters") or {}).items() if isinstance(v, dict)
        }
        self.names = names
        self.pseudo = {
            "AWS::StackName": STACK_NAME,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.names:
            return self.names[name]
        return self.params.get(name)

    def __call__(self, value: Any) -> Any:
        """The value with intrinsics resolved, or None when only AWS could resolve it."""
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self.ref(value["Ref"])
        if "Fn::Sub" in value:
            arg = value["Fn::Sub"]
            text, extra = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
            unresolved = False

            def sub(match: re.Match[str]) -> str:
                nonlocal unresolved
                key = match.group(1)
                got = self(extra[key]) if key in extra else self.ref(key)
                if got is None:
                    unresolved = True
                    return ""
                return str(got)

            out = re.sub(r"\$\{([^}!]+)\}", sub, text)
            return None if unresolved else out
        if "Fn::If" in value or "Fn::GetAtt" in value or "Fn::ImportValue" in value:
            return None
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            got = [self(p) for p in parts]
            return None if any(g is None for g in got) else sep.join(str(g) for g in got)
        return None


# Used when the template has no response headers policy: the same protections, minus a CSP.
_DEFAULT_SITE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
UPLOADS_ORIGIN = "{uploads_origin}"  # placeholder for the local origins the page talks to
_DIRECTIVES_WITH_ORIGINS = ("connect-src", "form-action")


def _site_headers(resources: dict[str, Any], notes: list[str]) -> dict[str, str]:
    """The security headers of the template's CloudFront response headers policy, as local headers.

    The CSP keeps every directive of the deployed one; its ``https://`` sources (execute-api and the
    uploads bucket on S3) become ``{uploads_origin}``, since locally the API is the page's own origin
    and uploads go to moto. HSTS is left out: the local site is plain http on 127.0.0.1.
    """
    policies = [v for v in resources.values() if v.get("Type") == "AWS::CloudFront::ResponseHeadersPolicy"]
    if not policies:
        notes.append("no CloudFront response headers policy in the template: the site has no CSP")
        return dict(_DEFAULT_SITE_HEADERS)
    config = ((policies[0].get("Properties") or {}).get("ResponseHeadersPolicyConfig") or {}).get(
        "SecurityHeadersConfig"
    ) or {}
    headers: dict[str, str] = {}
    if "ContentTypeOptions" in config:
        headers["X-Content-Type-Options"] = "nosniff"
    if frame := (config.get("FrameOptions") or {}).get("FrameOption"):
        headers["X-Frame-Options"] = str(frame)
    if referrer := (config.get("ReferrerPolicy") or {}).get("ReferrerPolicy"):
        headers["Referrer-Policy"] = str(referrer)
    csp = (config.get("ContentSecurityPolicy") or {}).get("ContentSecurityPolicy")
    if isinstance(csp, dict) and "Fn::Sub" in csp:
        csp = csp["Fn::Sub"][0] if isinstance(csp["Fn::Sub"], list) else csp["Fn::Sub"]
    if isinstance(csp, str):
        directives = []
        for directive in csp.split(";"):
            words = [w for w in directive.split() if not w.startswith("https://")]
            if words and words[0] in _DIRECTIVES_WITH_ORIGINS:
                words.append(UPLOADS_ORIGIN)
            if words:
                directives.append(" ".join(words))
        headers["Content-Security-Policy"] = "; ".join(directives)
    return headers


def _valid_bucket_name(name: Any) -> str | None:
    if isinstance(name, str) and re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name):
        return name
    return None


def _getatt_target(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    return None


def _cors_rules(cfn: dict[str, Any], resolve: _Resolver, notes: list[str]) -> list[dict[str, Any]]:
    rules = []
    for rule in cfn.get("CorsRules") or []:
        origins = []
        for origin in rule.get("AllowedOrigins") or []:
            got = resolve(origin)
            if got is None or (
                isinstance(got, str)
                and not got.startswith(("http://127.", "http://localhost"))
                and got != "*"
            ):
                # The deployed site origin (CloudFront) is the local gateway here.
                got = _SITE_ORIGIN
            if got not in origins:
                origins.append(got)
        out: dict[str, Any] = {
            "AllowedOrigins": origins,
            "AllowedMethods": rule.get("AllowedMethods") or ["POST"],
        }
        for cfn_key, api_key in (
            ("AllowedHeaders", "AllowedHeaders"),
            ("ExposedHeaders", "ExposeHeaders"),
            ("MaxAge", "MaxAgeSeconds"),
            ("Id", "ID"),
        ):
            if cfn_key in rule and resolve(rule[cfn_key]) is not None:
                out[api_key] = resolve(rule[cfn_key])
        rules.append(out)
    if not rules:
        notes.append(
            "uploads bucket has no CorsConfiguration in the template: using POST from the site origin"
        )
        return _default_cors()
    return rules


def _lifecycle_rules(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    rules = []
    for i, rule in enumerate(cfn.get("Rules") or []):
        out: dict[str, Any] = {
            "ID": str(rule.get("Id") or f"rule-{i}"),
            "Status": rule.get("Status", "Enabled"),
            "Filter": {"Prefix": rule.get("Prefix", "")},
        }
        if "ExpirationInDays" in rule:
            out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            days = rule["AbortIncompleteMultipartUpload"].get("DaysAfterInitiation", 1)
            out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
        if "NoncurrentVersionExpiration" in rule:
            days = rule["NoncurrentVersionExpiration"].get("NoncurrentDays", 1)
            out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(days)}
        rules.append(out)
    return rules


def read_stack_spec(path: Path | None) -> StackSpec:
    """The local mirror of template.yaml (or of DESIGN.md's defaults when there is no template)."""
    notes: list[str] = []
    template: dict[str, Any] = {}
    if path is not None and path.is_file():
        try:
            template = load_template(path)
            source = str(path)
        except yaml.YAMLError as exc:
            source = "built-in defaults (template.yaml unreadable)"
            notes.append(f"{path} could not be parsed ({str(exc).splitlines()[0]}): using built-in defaults")
    else:
        source = "built-in defaults (no template.yaml)"
        notes.append(f"{path} not found: using built-in defaults")
    resources: dict[str, Any] = template.get("Resources") or {}

    def props(logical_id: str | None) -> dict[str, Any]:
        return (resources.get(logical_id or "") or {}).get("Properties") or {}

    functions = {k: v for k, v in resources.items() if v.get("Type") == "AWS::Serverless::Function"}
    globals_fn = (template.get("Globals") or {}).get("Function") or {}

    # The worker is the function with an SQS event; the API is the one with HttpApi events.
    blur_id, sqs_event = "BlurFunction", {}
    routes: list[tuple[str, str]] = []
    for fid, fn in functions.items():
        for event in ((fn.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") == "SQS":
                blur_id, sqs_event = fid, event.get("Properties") or {}
            elif event.get("Type") in ("HttpApi", "Api"):
                ep = event.get("Properties") or {}
                routes.append((str(ep.get("Method", "ANY")).upper(), str(ep.get("Path", "/"))))
    queue_id = _getatt_target(sqs_event.get("Queue")) or "BlurQueue"
    redrive = props(queue_id).get("RedrivePolicy") or {}
    dlq_id = _getatt_target(redrive.get("deadLetterTargetArn")) or "BlurDLQ"

    bucket_ids = [k for k, v in resources.items() if v.get("Type") == "AWS::S3::Bucket"]
    uploads_id = "UploadsBucket"
    for bid in bucket_ids:
        for qc in (props(bid).get("NotificationConfiguration") or {}).get("QueueConfigurations") or []:
            if _getatt_target(qc.get("Queue")) == queue_id:
                uploads_id = bid
    table_id = next(
        (
            k
            for k, v in resources.items()
            if v.get("Type") in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
        ),
        "JobsTable",
    )

    # Names: the template's explicit names when resolvable, else stable local ones.
    names: dict[str, str] = {}
    pre = _Resolver(template, {})
    defaults = {
        uploads_id: "photoveil-uploads",
        "BlurredBucket": "photoveil-blurred",
        queue_id: "photoveil-blur-queue",
        dlq_id: "photoveil-blur-dlq",
        table_id: "photoveil-jobs",
    }
    for lid, default in defaults.items():
        p = props(lid)
        raw = p.get("BucketName") or p.get("QueueName") or p.get("TableName")
        got = pre(raw) if raw is not None else None
        if lid in (uploads_id, "BlurredBucket"):
            got = _valid_bucket_name(got)
        names[lid] = got or default
    resolve = _Resolver(template, names)

    def queue_spec(lid: str, default_vis: int, default_retention: int) -> QueueSpec:
        p = props(lid)
        rp = p.get("RedrivePolicy") or {}
        mrc = resolve(rp.get("maxReceiveCount")) if rp else None
        return QueueSpec(
            logical_id=lid,
            name=names[lid],
            visibility_timeout_s=int(resolve(p.get("VisibilityTimeout")) or default_vis),
            retention_s=int(resolve(p.get("MessageRetentionPeriod")) or default_retention),
            receive_wait_s=int(resolve(p.get("ReceiveMessageWaitTimeSeconds")) or 0),
            max_receive_count=int(mrc) if mrc is not None else (5 if lid == queue_id else None),
        )

    blur_props = (functions.get(blur_id) or {}).get("Properties") or {}
    timeout = int(resolve(blur_props.get("Timeout", globals_fn.get("Timeout"))) or _DEFAULT_TIMEOUT)
    memory = int(resolve(blur_props.get("MemorySize", globals_fn.get("MemorySize"))) or 1769)
    queue = queue_spec(queue_id, 6 * timeout, 4 * 86400)
    dlq = queue_spec(dlq_id, 30, 14 * 86400)  # 30 s: the SQS default

    uploads = props(uploads_id)
    blurred = props("BlurredBucket")
    notif_prefix, notif_events = "uploads/", ["s3:ObjectCreated:*"]
    for qc in (uploads.get("NotificationConfiguration") or {}).get("QueueConfigurations") or []:
        notif_events = [qc.get("Event", "s3:ObjectCreated:*")]
        for rule in ((qc.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []:
            if str(rule.get("Name", "")).lower() == "prefix":
                notif_prefix = rule.get("Value", notif_prefix)
    if resources and not (uploads.get("NotificationConfiguration") or {}).get("QueueConfigurations"):
        notes.append("no QueueConfigurations on the uploads bucket in the template: using prefix uploads/")

    table = props(table_id)
    key = next((k["AttributeName"] for k in table.get("KeySchema") or [] if k.get("KeyType") == "HASH"), None)
    key = key or (table.get("PrimaryKey") or {}).get("Name") or "jobId"
    ttl_spec = table.get("TimeToLiveSpecification") or {}
    ttl_attr = ttl_spec.get("AttributeName") if ttl_spec.get("Enabled", True) else None
    if not ttl_spec:
        ttl_attr = "ttl"

    env: dict[str, str] = {}
    for source_env in (
        (globals_fn.get("Environment") or {}).get("Variables") or {},
        *[
            (((f.get("Properties") or {}).get("Environment") or {}).get("Variables") or {})
            for f in functions.values()
        ],
    ):
        for k, v in source_env.items():
            got = resolve(v)
            if got is not None:
                env[k] = str(got)

    return StackSpec(
        uploads_bucket=names[uploads_id],
        blurred_bucket=names["BlurredBucket"],
        queue=queue,
        dlq=dlq,
        table=names[table_id],
        table_key=key,
        ttl_attribute=ttl_attr,
        uploads_cors=_cors_rules(uploads.get("CorsConfiguration") or {}, resolve, notes),
        uploads_lifecycle=_lifecycle_rules(uploads.get("LifecycleConfiguration") or {})
        or _expire(1, "expire-originals"),
        blurred_lifecycle=_lifecycle_rules(blurred.get("LifecycleConfiguration") or {})
        or _expire(30, "expire-blurred"),
        notification_prefix=notif_prefix,
        notification_events=notif_events,
        batch_size=int(resolve(sqs_event.get("BatchSize")) or 1),
        batching_window_s=int(resolve(sqs_event.get("MaximumBatchingWindowInSeconds")) or 0),
        max_concurrency=(
            int(resolve((sqs_event.get("ScalingConfig") or {}).get("MaximumConcurrency")) or 0) or None
        ),
        blur_timeout_s=timeout,
        blur_memory_mb=memory,
        api_routes=routes or list(_DEFAULT_ROUTES),
        env=env,
        source=source,
        site_headers=_site_headers(resources, notes),
        notes=notes,
    )
