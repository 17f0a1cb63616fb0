"""What the local stack shares with AWS, read from template.yaml: the one source of those settings.

Each resource kind has its own small reader (a queue's attributes, a bucket's rules, a function's
settings and events...) that turns the template's properties into a spec (photoveil.local.specs) in the
shape boto3 and the local runtime take. Another kind is another reader, called from read_stack_spec.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cfnlint.decode

from photoveil.local.account import ACCOUNT_ID, REGION, STACK_NAME
from photoveil.local.intrinsics import Resolver
from photoveil.local.specs import (
    EMULATOR_ORIGIN,
    LOCAL_API_ID,
    SITE_DOMAIN,
    BucketSpec,
    CdnBehaviour,
    CdnSpec,
    FunctionSpec,
    HttpApiSpec,
    QueueSpec,
    RouteSpec,
    SqsSource,
    StackSpec,
    SubscriptionSpec,
    TableSpec,
    TemplateError,
    TopicSpec,
)

T = TypeVar("T")

# AWS's own defaults, for what a template may leave out.
LAMBDA_DEFAULTS = {"Timeout": 3, "MemorySize": 128}
SQS_SOURCE_DEFAULTS = {"BatchSize": 10, "MaximumBatchingWindowInSeconds": 0}


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template with cfn-lint's loader (short tags become {"Ref": ...} dicts)."""
    if not path.is_file():
        raise TemplateError(f"template {path} not found: pass --template with the SAM template")
    template, errors = cfnlint.decode.decode(str(path))
    if template is None or errors:
        raise TemplateError(f"template {path} could not be read: {'; '.join(e.message for e in errors)}")
    if not template.get("Resources"):
        raise TemplateError(f"template {path} has no Resources")
    return template


def read_stack_spec(path: Path, parameters: dict[str, str] | None = None) -> StackSpec:
    """The local mirror of the template at PATH with PARAMETERS replacing the Parameters' defaults (as
    `sam deploy --parameter-overrides` does); TemplateError if it is missing, unreadable, or a parameter
    is not the template's."""
    template = load_template(path)
    unknown = sorted(set(parameters or {}) - set(template.get("Parameters") or {}))
    if unknown:
        raise TemplateError(f"template {path} has no parameter {', '.join(unknown)}")
    try:
        return _stack_spec(path, template, parameters)
    except TemplateError as exc:
        raise TemplateError(f"template {path}: {exc}") from None
    except KeyError as exc:
        raise TemplateError(
            f"template {path}: {exc.args[0]!r} is missing where the local stack needs it"
        ) from None


def _stack_spec(path: Path, template: dict[str, Any], parameters: dict[str, str] | None) -> StackSpec:
    resources: dict[str, Any] = template["Resources"]
    resolve = resolver(template, parameters)
    globals_fn = (template.get("Globals") or {}).get("Function") or {}

    def read(kind: str, reader: Callable[[str, dict[str, Any], Resolver], T]) -> dict[str, T]:
        found = {
            lid: r
            for lid, r in resources.items()
            if r.get("Type") == kind and ("Condition" not in r or resolve.condition(r["Condition"]))
        }
        return {lid: reader(lid, r.get("Properties") or {}, resolve) for lid, r in found.items()}

    buckets = read("AWS::S3::Bucket", _read_bucket)
    functions = read("AWS::Serverless::Function", lambda lid, p, r: _read_function(lid, p, globals_fn, r))
    return StackSpec(
        source=path,
        queues=read("AWS::SQS::Queue", _read_queue),
        topics=read("AWS::SNS::Topic", _read_topic),
        subscriptions=read("AWS::SNS::Subscription", _read_subscription),
        buckets=buckets,
        tables=read("AWS::DynamoDB::Table", _read_table),
        functions=functions,
        http_api=_read_http_api(template, resolve),
        cdn=_read_cdn(resources, buckets, resolve),
        env=_read_environment(template, resolve),
    )


@dataclass(frozen=True)
class _Naming:
    """How CloudFormation names a kind: its name property, what Ref and GetAtt return for a name."""

    name_property: str
    ref: Callable[[str], str]
    attributes: Callable[[str], dict[str, str]]
    lower_case: bool = False


# Without a name property, a resource is named after the stack and its logical id, without AWS's random
# suffix so that names are stable between runs.
_NAMING = {
    "AWS::S3::Bucket": _Naming(
        "BucketName",
        ref=lambda name: name,
        attributes=lambda name: {
            "Arn": f"arn:aws:s3:::{name}",
            "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
        },
        lower_case=True,
    ),
    "AWS::SQS::Queue": _Naming(
        "QueueName",
        ref=lambda name: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}",
        attributes=lambda name: {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}", "QueueName": name},
    ),
    "AWS::SNS::Topic": _Naming(
        "TopicName",
        ref=lambda name: f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}",
        attributes=lambda name: {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}", "TopicName": name},
    ),
    "AWS::DynamoDB::Table": _Naming(
        "TableName",
        ref=lambda name: name,
        attributes=lambda name: {"Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"},
    ),
}


def resolver(
    template: dict[str, Any], parameters: dict[str, str] | None = None, names: dict[str, str] | None = None
) -> Resolver:
    """The template's intrinsics resolved for the local account.

    ``parameters`` replace the Parameters' defaults; ``names`` give resources (by logical id) a name of
    the caller's instead of the template's or the generated one (the functional tests' names).
    """
    names_only = Resolver(template, dict(parameters or {}))
    refs: dict[str, Any] = dict(parameters or {})
    attributes: dict[str, Any] = {}
    for lid, resource in template["Resources"].items():
        kind = resource.get("Type")
        if kind == "AWS::CloudFront::Distribution":
            attributes[f"{lid}.DomainName"] = SITE_DOMAIN
        if kind in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"):
            refs[lid] = LOCAL_API_ID  # the gateway: its id only ever ends up in an https:// origin
        if naming := _NAMING.get(kind):
            generated = f"{STACK_NAME}-{lid}"
            generated = generated.lower() if naming.lower_case else generated
            named = names_only((resource.get("Properties") or {}).get(naming.name_property))
            name = (names or {}).get(lid) or named or generated
            refs[lid] = naming.ref(name)
            attributes |= {f"{lid}.{attribute}": v for attribute, v in naming.attributes(name).items()}
    return Resolver(template, refs, attributes)


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
)


def _read_queue(logical_id: str, props: dict[str, Any], resolve: Resolver) -> QueueSpec:
    attributes = {key: str(resolve(props[key])) for key in _QUEUE_ATTRIBUTES if key in props}
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(resolve(props["RedrivePolicy"]))
    return QueueSpec(
        logical_id=logical_id,
        name=resolve({"Fn::GetAtt": [logical_id, "QueueName"]}),
        arn=resolve({"Fn::GetAtt": [logical_id, "Arn"]}),
        attributes=attributes,
    )


def _read_topic(logical_id: str, props: dict[str, Any], resolve: Resolver) -> TopicSpec:
    # KmsMasterKeyId is left out: moto keeps no key material, and nothing local reads the topic at rest.
    return TopicSpec(
        logical_id=logical_id,
        name=resolve({"Fn::GetAtt": [logical_id, "TopicName"]}),
        arn=resolve({"Ref": logical_id}),
    )


_SUBSCRIPTION_ATTRIBUTES = ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy")


def _read_subscription(logical_id: str, props: dict[str, Any], resolve: Resolver) -> SubscriptionSpec:
    attributes = {}
    for key in _SUBSCRIPTION_ATTRIBUTES:
        if key in props:
            value = resolve(props[key])
            attributes[key] = json.dumps(value) if isinstance(value, dict) else str(value).lower()
    return SubscriptionSpec(
        logical_id=logical_id,
        topic_arn=resolve(props["TopicArn"]),
        protocol=resolve(props["Protocol"]),
        endpoint=resolve(props["Endpoint"]),
        attributes=attributes,
    )


def _read_bucket(logical_id: str, props: dict[str, Any], resolve: Resolver) -> BucketSpec:
    cors = resolve(props.get("CorsConfiguration")) or {}
    lifecycle = resolve(props.get("LifecycleConfiguration")) or {}
    return BucketSpec(
        logical_id=logical_id,
        name=resolve({"Ref": logical_id}),
        public_access_block=resolve(props.get("PublicAccessBlockConfiguration")),
        lifecycle_rules=[_lifecycle_rule(rule) for rule in lifecycle.get("Rules", [])],
        cors_rules=[_renamed(rule, _CORS_RULE_NAMES) for rule in cors.get("CorsRules", [])],
        notifications=_notifications(resolve(props.get("NotificationConfiguration")) or {}),
    )


_CORS_RULE_NAMES = {"Id": "ID", "ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}


def _renamed(properties: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names.get(key, key): value for key, value in properties.items()}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    tags = rule.get("TagFilters") or []
    if tags and len(tags) == 1 and not rule.get("Prefix"):
        rule_filter: dict[str, Any] = {"Tag": tags[0]}
    elif tags:
        rule_filter = {"And": {"Prefix": rule.get("Prefix", ""), "Tags": tags}}
    else:
        rule_filter = {"Prefix": rule.get("Prefix", "")}
    out = {"Status": rule["Status"], "Filter": rule_filter}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": rule["ExpirationInDays"]}
    for kept in ("AbortIncompleteMultipartUpload", "NoncurrentVersionExpiration"):
        if kept in rule:
            out[kept] = rule[kept]
    return out


# NotificationConfiguration lists and the target each entry names: (template key, boto3 key).
_NOTIFICATION_TARGETS = {
    "QueueConfigurations": ("Queue", "QueueArn"),
    "TopicConfigurations": ("Topic", "TopicArn"),
}


def _notifications(config: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, (target, target_arn) in _NOTIFICATION_TARGETS.items():
        for entry in config.get(kind, []):
            converted = {target_arn: entry[target], "Events": [entry["Event"]]}
            if rules := ((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules"):
                converted["Filter"] = {"Key": {"FilterRules": rules}}
            out.setdefault(kind, []).append(converted)
    return out


_TABLE_DEFINITION = ("AttributeDefinitions", "KeySchema", "BillingMode", "ProvisionedThroughput")


def _read_table(logical_id: str, props: dict[str, Any], resolve: Resolver) -> TableSpec:
    return TableSpec(
        logical_id=logical_id,
        name=resolve({"Ref": logical_id}),
        definition={key: resolve(props[key]) for key in _TABLE_DEFINITION if key in props},
        time_to_live=resolve(props.get("TimeToLiveSpecification")),
    )


def _read_function(
    logical_id: str, props: dict[str, Any], globals_fn: dict[str, Any], resolve: Resolver
) -> FunctionSpec:
    def setting(name: str) -> Any:
        return resolve(props.get(name, globals_fn.get(name, LAMBDA_DEFAULTS.get(name))))

    if not setting("Handler"):
        raise TemplateError(f"function {logical_id} has no Handler")
    events = (props.get("Events") or {}).values()
    return FunctionSpec(
        logical_id=logical_id,
        handler=setting("Handler"),
        timeout_s=int(setting("Timeout")),
        memory_mb=int(setting("MemorySize")),
        sqs_sources=tuple(
            _sqs_source(resolve(e.get("Properties") or {})) for e in events if e.get("Type") == "SQS"
        ),
    )


def _sqs_source(props: dict[str, Any]) -> SqsSource:
    settings = SQS_SOURCE_DEFAULTS | props
    return SqsSource(
        queue_arn=props["Queue"],
        batch_size=int(settings["BatchSize"]),
        batching_window_s=int(settings["MaximumBatchingWindowInSeconds"]),
    )


def _read_http_api(template: dict[str, Any], resolve: Resolver) -> HttpApiSpec:
    routes, api_ids = [], set()
    for lid, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                props = event.get("Properties") or {}
                # SAM: an HttpApi event without Path and Method is the API's catch-all route.
                method, path = str(props.get("Method", "ANY")).upper(), props.get("Path", "/{proxy+}")
                routes.append(RouteSpec(method, path, lid))
                api_ids.add(referenced_id(props.get("ApiId")))
    apis = [template["Resources"][api] for api in api_ids if api] or [
        {"Properties": (template.get("Globals") or {}).get("HttpApi") or {}}
    ]
    cors = resolve((apis[0].get("Properties") or {}).get("CorsConfiguration"))
    return HttpApiSpec(routes=tuple(routes), cors=cors or None)


def referenced_id(value: Any) -> str | None:
    """The logical id a Ref or GetAtt names."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        got = value["Fn::GetAtt"]
        return got.split(".")[0] if isinstance(got, str) else got[0]
    return None


def _read_cdn(resources: dict[str, Any], buckets: dict[str, BucketSpec], resolve: Resolver) -> CdnSpec:
    distributions = [r for r in resources.values() if r.get("Type") == "AWS::CloudFront::Distribution"]
    if not distributions:
        return CdnSpec(headers={}, behaviours=())
    config = distributions[0]["Properties"]["DistributionConfig"]
    origins = {origin["Id"]: referenced_id(origin["DomainName"]) for origin in config.get("Origins", [])}

    def headers(behaviour: dict[str, Any]) -> dict[str, str]:
        policy = resources.get(referenced_id(behaviour.get("ResponseHeadersPolicyId")) or "")
        return _security_headers(policy, resolve) if policy else {}

    behaviours = tuple(
        CdnBehaviour(b["PathPattern"], buckets[origins[b["TargetOriginId"]]].name, headers(b))
        for b in config.get("CacheBehaviors", [])
        if origins.get(b["TargetOriginId"]) in buckets
    )
    pages = {int(r["ErrorCode"]): r.get("ResponsePagePath") for r in config.get("CustomErrorResponses", [])}
    return CdnSpec(
        headers=headers(config["DefaultCacheBehavior"]),
        behaviours=behaviours,
        not_found_page=pages.get(403) or pages.get(404),
        page_policy=_page_policy(resources, resolve),
    )


def _page_policy(resources: dict[str, Any], resolve: Resolver) -> str:
    """The policy the site publisher writes into every page (its PagePolicy), as the gateway serves it:
    its https:// origins (the API, S3) swapped for the local ones, as the header policy's are."""
    for resource in resources.values():
        if resource.get("Type") == "Custom::SiteContent" and "PagePolicy" in resource.get("Properties", {}):
            policy = resolve(resource["Properties"]["PagePolicy"])
            if not isinstance(policy, str):
                raise TemplateError("SiteContent's PagePolicy did not resolve locally")
            return _local_csp(policy)
    return ""


def _security_headers(policy: dict[str, Any], resolve: Resolver) -> dict[str, str]:
    """A response headers policy's security headers, as the gateway sends them.

    HSTS is left out: the local site is plain http on 127.0.0.1.
    """
    config = resolve(policy["Properties"]["ResponseHeadersPolicyConfig"]).get("SecurityHeadersConfig", {})
    headers = {}
    if "ContentTypeOptions" in config:
        headers["X-Content-Type-Options"] = "nosniff"
    if "FrameOptions" in config:
        headers["X-Frame-Options"] = config["FrameOptions"]["FrameOption"]
    if "ReferrerPolicy" in config:
        headers["Referrer-Policy"] = config["ReferrerPolicy"]["ReferrerPolicy"]
    if "ContentSecurityPolicy" in config:
        headers["Content-Security-Policy"] = _local_csp(
            config["ContentSecurityPolicy"]["ContentSecurityPolicy"]
        )
    return headers


def _local_csp(csp: str) -> str:
    """The CSP with its https:// sources (the API on execute-api, uploads on S3) swapped for the emulator.

    Locally the API is the page's own origin ('self'), and uploads go to moto.
    """
    directives = []
    for directive in csp.split(";"):
        words = directive.split()
        local = [word for word in words if not word.startswith("https://")]
        if len(local) < len(words):
            local.append(EMULATOR_ORIGIN)
        if local:
            directives.append(" ".join(local))
    return "; ".join(directives)


def _read_environment(template: dict[str, Any], resolve: Resolver) -> dict[str, str]:
    functions = [r for r in template["Resources"].values() if r.get("Type") == "AWS::Serverless::Function"]
    sources = [(template.get("Globals") or {}).get("Function") or {}]
    sources += [r.get("Properties") or {} for r in functions]
    env: dict[str, str] = {}
    for source in sources:
        for name, value in resolve((source.get("Environment") or {}).get("Variables") or {}).items():
            if value is not None:
                env[name] = str(value)
    return env
