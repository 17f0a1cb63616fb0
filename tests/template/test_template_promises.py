"""The promises template.yaml makes, read from the template itself (and from its SAM translation).

Each test names a product promise or an AWS fact: if someone edits the template and breaks one,
the test says which promise broke.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from samtranslator.model.exceptions import InvalidDocumentException

from photoveil import settings as settings_module
from photoveil.adapters import clients
from photoveil.local.iam import translate
from photoveil.local.template import resolver

from .conftest import REPO

BUCKETS = ("UploadsBucket", "BlurredBucket", "SiteBucket")
# Actions that have no resource-level permissions, so "*" is the only possible Resource.
STAR_RESOURCE_ACTIONS = {
    "rekognition:DetectFaces",
    "rekognition:DetectModerationLabels",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}


# ---------------------------------------------------------------- helpers
def _of_type(resources: dict[str, Any], type_: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == type_}


def _function_prop(template: dict[str, Any], fn: str, name: str) -> Any:
    props = template["Resources"][fn]["Properties"]
    return props[name] if name in props else template["Globals"]["Function"][name]


def _statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Policy statements, with conditional ones (Fn::If [cond, stmt, NoValue]) unwrapped."""
    for statement in document["Statement"]:
        if "Fn::If" in statement:
            _, *branches = statement["Fn::If"]
            yield from (b for b in branches if b != {"Ref": "AWS::NoValue"})
        else:
            yield statement


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    policies = resources[role]["Properties"].get("Policies", [])
    return [s for p in policies for s in _statements(p["PolicyDocument"])]


def _allowed_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in _as_list(s["Action"])}


def _bucket_policy(resources: dict[str, Any], bucket: str) -> dict[str, Any]:
    policies = [
        p
        for p in _of_type(resources, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    assert len(policies) == 1, f"{bucket} needs exactly one bucket policy"
    return policies[0]["Properties"]["PolicyDocument"]


def _expiration_days(resources: dict[str, Any], bucket: str) -> list[int]:
    """The expirations of BUCKET's enabled rules that apply to every object (no tag filter)."""
    rules = resources[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
    return [
        r["ExpirationInDays"]
        for r in rules
        if r.get("Status") == "Enabled" and "ExpirationInDays" in r and not r.get("TagFilters")
    ]


# ---------------------------------------------------------------- runtime
@pytest.mark.parametrize("fn", ["ApiFunction", "BlurFunction"])
def test_functions_run_python_3_12_or_newer_on_arm64(template: dict[str, Any], fn: str) -> None:
    runtime = _function_prop(template, fn, "Runtime")
    match = re.fullmatch(r"python3\.(\d+)", runtime)
    assert match and int(match.group(1)) >= 12, runtime  # 3.10/3.11 can no longer be created
    assert _function_prop(template, fn, "Architectures") == ["arm64"]


def test_handlers_are_the_documented_entry_points(resources: dict[str, Any]) -> None:
    assert resources["ApiFunction"]["Properties"]["Handler"] == "photoveil.handlers.api.lambda_handler"
    assert resources["BlurFunction"]["Properties"]["Handler"] == "photoveil.handlers.worker.lambda_handler"


def test_environment_is_exactly_what_settings_and_the_clients_read(
    template: dict[str, Any], monkeypatch
) -> None:
    # Record every variable Settings.from_env() and the clients' endpoint look up, by running them against a
    # recording environment.
    resolve = resolver(template)

    def value(v: Any) -> str:  # as the local stack resolves it, or a stand-in for what only AWS knows
        got = resolve(v)
        return "resolved-by-aws" if got is None else str(got)

    env = {k: value(v) for k, v in template["Globals"]["Function"]["Environment"]["Variables"].items()}
    # A function may add its own (the worker's mail configuration set): still read by Settings.
    for resource in template["Resources"].values():
        own = ((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        env |= {k: "resolved-by-aws" for k in own}

    class RecordingEnviron(dict):
        def __init__(self, values: dict[str, str]) -> None:
            super().__init__(values)
            self.read: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.read.add(key)
            return super().get(key, default)

    recording = RecordingEnviron(env)
    monkeypatch.setattr(os, "environ", recording)
    settings_module.Settings.from_env()  # also proves the template's literal values parse
    clients.endpoint_url()
    powertools = {k for k in env if k.startswith("POWERTOOLS_")}
    assert set(env) - powertools == recording.read
    assert env["POWERTOOLS_SERVICE_NAME"] == "photoveil"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "PhotoVeil"


def test_api_routes(resources: dict[str, Any]) -> None:
    events = resources["ApiFunction"]["Properties"]["Events"].values()
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events if e["Type"] == "HttpApi"}
    assert routes == {
        ("POST", "/uploads"),
        ("GET", "/jobs/{jobId}"),
        ("DELETE", "/jobs/{jobId}"),
        ("POST", "/jobs/{jobId}/regions"),
        ("POST", "/jobs/{jobId}/report"),  # anyone with the link (issue 20)
    }


def test_owner_routes_are_throttled_apart_and_cors_lets_the_page_use_them(translated, template) -> None:
    stage = translated["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"]
    for route in ("DELETE /jobs/{jobId}", "POST /jobs/{jobId}/regions"):
        limits = stage["RouteSettings"][route]
        assert limits["ThrottlingRateLimit"] == {"Ref": "OwnerThrottleRate"}
        assert limits["ThrottlingBurstLimit"] == {"Ref": "OwnerThrottleBurst"}
    cors = translated["Resources"]["HttpApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"]
    for branch in cors["Fn::If"][1:]:
        assert "DELETE" in branch["allowMethods"] and "authorization" in branch["allowHeaders"]


def test_the_api_is_ipv4_only_because_sam_does_not_pass_ip_address_type(template: dict[str, Any]) -> None:
    # Issue 27: a dual-stack HTTP API (IpAddressType: dualstack) would let IPv6 clients in, and reports
    # and quotas are ready for them (/48, /64), but SAM's HttpApi refuses the property (aws-sam-translator
    # 1.115). When this fails, SAM takes it: enable it, and update
    # docs/decisions/safety-0002-attacks-priced-in-addresses.md.
    dual = copy.deepcopy(template)
    dual["Resources"]["HttpApi"]["Properties"]["IpAddressType"] = "dualstack"
    with pytest.raises(InvalidDocumentException, match="IpAddressType"):
        translate(dual)
    assert "IpAddressType" not in template["Resources"]["HttpApi"]["Properties"]


def test_api_is_throttled_and_cors_is_limited_to_the_site(translated: dict[str, Any]) -> None:
    stage = translated["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRate"}
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurst"}
    cors = translated["Resources"]["HttpApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"]
    _, with_extra, site_only = cors["Fn::If"]
    assert site_only["allowOrigins"] == [{"Fn::Sub": "https://${SiteDistribution.DomainName}"}]
    assert "*" not in str(with_extra["allowOrigins"])
    assert with_extra["allowOrigins"]["Fn::Split"][1]["Fn::Sub"].startswith(
        "https://${SiteDistribution.DomainName},"
    )


@pytest.mark.parametrize(
    ("origins", "accepted"),
    [
        ("", True),
        ("https://a.example", True),
        ("https://a.example,http://127.0.0.1:3000", True),
        ("https://a.example, http://127.0.0.1:3000", False),  # the space would end up in the origin
        ("https://a.example/", False),
        ("a.example", False),
    ],
)
def test_extra_origins_are_refused_unless_exact(
    template: dict[str, Any], origins: str, accepted: bool
) -> None:
    # CloudFormation splits the parameter on commas and cannot trim: a malformed list must fail to deploy.
    pattern = template["Parameters"]["ExtraAllowedOrigins"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, origins)) is accepted


# ---------------------------------------------------------------- queues and their consumers
# Every SQS-driven function, its queue and that queue's DLQ.
CONSUMERS = [("BlurFunction", "BlurQueue", "BlurDLQ"), ("VariantsFunction", "VariantsQueue", "VariantsDLQ")]


def _worker_timeouts(template: dict[str, Any]) -> list[dict[str, str]]:
    """Parameter overrides for every WorkerTimeout the template allows (a deploy may choose any)."""
    return [
        {"WorkerTimeout": str(value)} for value in template["Parameters"]["WorkerTimeout"]["AllowedValues"]
    ]


@pytest.mark.parametrize(("fn", "queue", "dlq"), CONSUMERS)
def test_visibility_timeout_is_at_least_six_function_timeouts(template, resources, fn, queue, dlq) -> None:
    (event,) = resources[fn]["Properties"]["Events"].values()
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
    window = event["Properties"].get("MaximumBatchingWindowInSeconds", 0)
    for parameters in _worker_timeouts(template):
        resolve = resolver(template, parameters)
        timeout = int(resolve(_function_prop(template, fn, "Timeout")))
        visibility = int(resolve(resources[queue]["Properties"]["VisibilityTimeout"]))
        assert visibility >= 6 * timeout + window, parameters


def test_worker_timeout_leaves_room_for_the_one_minute_promise(template: dict[str, Any]) -> None:
    # The deployed default; the longer allowed values are for `sam local invoke` under emulation.
    assert int(resolver(template)(_function_prop(template, "BlurFunction", "Timeout"))) <= 60


@pytest.mark.parametrize(("fn", "queue", "dlq"), CONSUMERS)
def test_failed_messages_go_to_the_dlq_after_at_least_five_tries(resources, fn, queue, dlq) -> None:
    redrive = resources[queue]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}
    assert redrive["maxReceiveCount"] >= 5
    assert resources[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_the_status_api_knows_the_queues_retry_rhythm(template: dict[str, Any], resources) -> None:
    # The API shows a photo failed once its retries are over (Job.retries_over): with other figures
    # than the queue's it would give up on a photo still being retried, or wait for one in the DLQ.
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    queue = resources["BlurQueue"]["Properties"]
    for parameters in _worker_timeouts(template):
        resolve = resolver(template, parameters)
        assert int(resolve(variables["QUEUE_VISIBILITY_TIMEOUT"])) == int(resolve(queue["VisibilityTimeout"]))
    assert int(variables["QUEUE_MAX_RECEIVE_COUNT"]) == queue["RedrivePolicy"]["maxReceiveCount"]


def test_queues_are_encrypted(resources: dict[str, Any]) -> None:
    for queue in _of_type(resources, "AWS::SQS::Queue"):
        assert resources[queue]["Properties"]["SqsManagedSseEnabled"] is True, queue


@pytest.mark.parametrize("queue", [q for _, *queues in CONSUMERS for q in queues])
def test_queues_refuse_plain_http(resources: dict[str, Any], queue: str) -> None:
    policies = [
        p["Properties"]["PolicyDocument"]
        for p in _of_type(resources, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue} in p["Properties"]["Queues"]
    ]
    denies = [s for doc in policies for s in _statements(doc) if s["Effect"] == "Deny"]
    assert [d["Condition"] for d in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]
    assert denies[0]["Action"] == "sqs:*" and denies[0]["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}


def test_consumers_report_batch_item_failures_with_capped_concurrency(translated, template) -> None:
    mappings = {
        m["Properties"]["FunctionName"]["Ref"]: m["Properties"]
        for m in _of_type(translated["Resources"], "AWS::Lambda::EventSourceMapping").values()
    }
    assert set(mappings) == {fn for fn, _, _ in CONSUMERS}
    for fn, queue, _ in CONSUMERS:
        assert mappings[fn]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert mappings[fn]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert 2 <= _resolved(template, mappings[fn]["ScalingConfig"]["MaximumConcurrency"]) <= 1000
    assert mappings["BlurFunction"]["BatchSize"] == {"Ref": "WorkerBatchSize"}
    assert mappings["BlurFunction"]["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "WorkerMaxConcurrency"}
    limits = template["Parameters"]["WorkerMaxConcurrency"]
    assert (limits["MinValue"], limits["MaxValue"]) == (2, 1000)  # what the event source mapping accepts


def _resolved(template: dict[str, Any], value: Any) -> Any:
    """A literal, or a parameter's default."""
    return template["Parameters"][value["Ref"]]["Default"] if isinstance(value, dict) else value


@pytest.mark.parametrize(("fn", "queue", "dlq"), CONSUMERS)
def test_no_function_level_dlq_on_an_sqs_consumer(resources: dict[str, Any], fn, queue, dlq) -> None:
    # A function DLQ only applies to async invokes; the queue's redrive is the DLQ here.
    assert "DeadLetterQueue" not in resources[fn]["Properties"]


# ---------------------------------------------------------------- published photos fan out
def test_only_full_size_photos_are_published_to_the_topic(resources: dict[str, Any]) -> None:
    from photoveil.adapters.storage import blurred_key, variant_key

    (config,) = resources["BlurredBucket"]["Properties"]["NotificationConfiguration"]["TopicConfigurations"]
    assert config["Topic"] == {"Ref": "PhotoPublishedTopic"}
    rules = {r["Name"]: r["Value"] for r in config["Filter"]["S3Key"]["Rules"]}
    photo = blurred_key("0" * 32)
    assert photo.startswith(rules["prefix"]) and photo.endswith(rules["suffix"])
    for name in ("800x600", "400x300", "200x150"):  # a variant written can never publish again
        key = variant_key(photo, name)
        assert key.startswith(rules["prefix"]) and not key.endswith(rules["suffix"])
    assert resources["BlurredBucket"]["DependsOn"] == "PhotoPublishedTopicPolicy"


def test_only_this_stacks_blurred_bucket_may_publish(resources: dict[str, Any]) -> None:
    (statement,) = _statements(resources["PhotoPublishedTopicPolicy"]["Properties"]["PolicyDocument"])
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"} and statement["Action"] == "sns:Publish"
    source = statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Join"][1]
    assert source[1] == resources["BlurredBucket"]["Properties"]["BucketName"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_topic_is_encrypted_with_a_key_s3_may_use(resources: dict[str, Any]) -> None:
    assert resources["PhotoPublishedTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "PhotoPublishedKey"}
    key = resources["PhotoPublishedKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    s3 = [s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "s3.amazonaws.com"}]
    assert len(s3) == 1 and set(s3[0]["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}


def test_the_variants_queue_takes_raw_messages_from_the_topic_only(resources: dict[str, Any]) -> None:
    subscription = resources["VariantsSubscription"]["Properties"]
    assert subscription["TopicArn"] == {"Ref": "PhotoPublishedTopic"}
    assert subscription["Endpoint"] == {"Fn::GetAtt": ["VariantsQueue", "Arn"]}
    assert (subscription["Protocol"], subscription["RawMessageDelivery"]) == ("sqs", True)
    allow = [
        s
        for s in _statements(resources["VariantsQueuePolicy"]["Properties"]["PolicyDocument"])
        if s["Effect"] == "Allow"
    ]
    assert len(allow) == 1 and allow[0]["Principal"] == {"Service": "sns.amazonaws.com"}
    assert allow[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "PhotoPublishedTopic"}}}


def test_the_variants_function_ships_no_face_detector(resources: dict[str, Any]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "lambda_requirements", REPO / "build-support" / "lambda_requirements.py"
    )
    assert spec and spec.loader
    requirements = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(requirements)
    names = {requirements._name(r) for r in requirements.requirements("variants")}
    assert {"opencv-python-headless", "numpy"} <= names and not names & {"pillow", "pillow-heif"}
    makefile = (REPO / "src" / "Makefile").read_text()
    recipe = makefile.split("build-VariantsFunction:")[1].split("\n\n")[0]
    assert "variants" in recipe and "--exclude=models" in recipe


def test_uploads_notify_the_queue_for_the_uploads_prefix_only(resources: dict[str, Any]) -> None:
    (config,) = resources["UploadsBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Queue"] == {"Fn::GetAtt": ["BlurQueue", "Arn"]}
    assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]
    assert resources["UploadsBucket"]["DependsOn"] == "BlurQueuePolicy"


def test_queue_policy_admits_only_this_stacks_uploads_bucket(resources: dict[str, Any]) -> None:
    statements = list(_statements(resources["BlurQueuePolicy"]["Properties"]["PolicyDocument"]))
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    # The constructed ARN must name exactly the bucket the template creates.
    source_arn = allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Join"][1]
    assert source_arn[0] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::"}
    assert source_arn[1] == resources["UploadsBucket"]["Properties"]["BucketName"]


# ---------------------------------------------------------------- buckets
def test_lifecycles_delete_originals_after_1_day_and_photos_after_30(template, resources) -> None:
    assert _expiration_days(resources, "UploadsBucket") == [1]
    assert _expiration_days(resources, "BlurredBucket") == [30]
    # The job record's expiresAt (PHOTO_TTL_DAYS) must tell the user the truth.
    assert template["Globals"]["Function"]["Environment"]["Variables"]["PHOTO_TTL_DAYS"] == "30"


def test_an_object_tagged_with_the_days_its_photo_has_left_expires_after_those_days(resources) -> None:
    # Findings on issue 27: a copy (a restore) or a later object (an edit, a late variant) starts S3's age
    # count again; adapters.storage tags it with the whole days left, and one rule per value expires it.
    from photoveil.adapters.storage import DAYS_LEFT_TAG, MAX_DAYS_LEFT

    rules = resources["BlurredBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    tagged = {
        (tuple((t["Key"], t["Value"]) for t in r["TagFilters"]), r["ExpirationInDays"])
        for r in rules
        if r.get("TagFilters") and r.get("Status") == "Enabled" and not r.get("Prefix")
    }
    assert tagged == {(((DAYS_LEFT_TAG, str(n)),), n) for n in range(1, MAX_DAYS_LEFT + 1)}
    assert _expiration_days(resources, "BlurredBucket")[0] == MAX_DAYS_LEFT  # no photo lives longer


@pytest.mark.parametrize("bucket", BUCKETS)
def test_buckets_block_public_access_and_are_encrypted(resources: dict[str, Any], bucket: str) -> None:
    props = resources[bucket]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert "VersioningConfiguration" not in props  # versions would keep deleted photos


@pytest.mark.parametrize("bucket", BUCKETS)
def test_buckets_refuse_plain_http(resources: dict[str, Any], bucket: str) -> None:
    denies = [
        s
        for s in _statements(_bucket_policy(resources, bucket))
        if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denies) == 1
    assert denies[0]["Principal"] == "*" and denies[0]["Action"] == "s3:*"
    assert {"Fn::GetAtt": [bucket, "Arn"]} in denies[0]["Resource"]
    assert {"Fn::Sub": f"${{{bucket}.Arn}}/*"} in denies[0]["Resource"]


def test_uploads_cors_allows_post_from_the_site(resources: dict[str, Any]) -> None:
    (rule,) = resources["UploadsBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedMethods"] == ["POST"]
    _, with_extra, site_only = rule["AllowedOrigins"]["Fn::If"]
    assert "*" not in str(with_extra)
    assert site_only == [{"Fn::Sub": "https://${SiteDistribution.DomainName}"}]


# ---------------------------------------------------------------- CloudFront
def test_cloudfront_serves_the_site_and_photos_through_oac(resources: dict[str, Any]) -> None:
    config = resources["SiteDistribution"]["Properties"]["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    assert origins["site"]["DomainName"] == {"Fn::GetAtt": ["SiteBucket", "RegionalDomainName"]}
    assert origins["photos"]["DomainName"] == {"Fn::GetAtt": ["BlurredBucket", "RegionalDomainName"]}
    for origin in origins.values():
        assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OriginAccessControl", "Id"]}
        assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    oac = resources["OriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "site"
    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    assert behaviors["p/*"]["TargetOriginId"] == "photos"
    for behavior in [config["DefaultCacheBehavior"], *behaviors.values()]:
        assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
        assert behavior["AllowedMethods"] == ["GET", "HEAD"]


@pytest.mark.parametrize(("bucket", "resource"), [("SiteBucket", "/*"), ("BlurredBucket", "/p/*")])
def test_only_this_distribution_reads_the_private_buckets(resources, bucket: str, resource: str) -> None:
    allows = [s for s in _statements(_bucket_policy(resources, bucket)) if s["Effect"] == "Allow"]
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"  # no ListBucket: photo keys stay unguessable
    assert allow["Resource"] == {"Fn::Sub": f"${{{bucket}.Arn}}{resource}"}
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source.endswith(":distribution/${SiteDistribution}")


def test_cloudfront_names_are_unique_to_the_stack(resources: dict[str, Any]) -> None:
    # Names are global per account: the same stack name in two regions must not clash, and OAC names
    # are capped at 64 characters.
    names = {
        "AWS::CloudFront::OriginAccessControl": "OriginAccessControlConfig",
        "AWS::CloudFront::CachePolicy": "CachePolicyConfig",
        "AWS::CloudFront::ResponseHeadersPolicy": "ResponseHeadersPolicyConfig",
    }
    for type_, config in names.items():
        for resource in _of_type(resources, type_).values():
            text, variables = resource["Properties"][config]["Name"]["Fn::Sub"]
            assert "${AWS::StackName}" not in text
            assert variables["StackUuid"] == {
                "Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]
            }
            assert len(text.replace("${StackUuid}", "x" * 36)) <= 64


def test_photos_leave_the_edge_within_a_day_of_deletion(resources: dict[str, Any]) -> None:
    behaviors = resources["SiteDistribution"]["Properties"]["DistributionConfig"]["CacheBehaviors"]
    (photos,) = [b for b in behaviors if b["PathPattern"] == "p/*"]
    assert photos["CachePolicyId"] == {"Ref": "PhotosCachePolicy"}
    assert resources["PhotosCachePolicy"]["Properties"]["CachePolicyConfig"]["MaxTTL"] <= 86400


def test_site_csp_allows_only_self_the_api_and_the_uploads_bucket(resources: dict[str, Any]) -> None:
    config = resources["SiteHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    csp_sub = config["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    assert csp_sub["Override"] is True
    text, variables = csp_sub["ContentSecurityPolicy"]["Fn::Sub"]
    directives = {d.split()[0]: d.split()[1:] for d in " ".join(text.split()).split("; ")}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no inline script, no third party
    assert directives["img-src"] == ["'self'", "data:", "blob:"]
    uploads = [
        "https://${UploadsBucketName}.s3.${AWS::URLSuffix}",
        "https://${UploadsBucketName}.s3.${AWS::Region}.${AWS::URLSuffix}",
    ]
    # The header cannot name the API (a dependency cycle): execute-api of this region, in this partition.
    assert directives["connect-src"] == [
        "'self'",
        "https://*.execute-api.${AWS::Region}.${AWS::URLSuffix}",
        *uploads,
    ]
    assert directives["form-action"] == ["'self'", *uploads]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in text and "amazonaws.com" not in text  # ${AWS::URLSuffix}: China's too
    # The CSP names the very bucket the template creates.
    assert variables["UploadsBucketName"] == resources["UploadsBucket"]["Properties"]["BucketName"]


def test_every_page_s_own_policy_names_this_stack_s_api(resources: dict[str, Any]) -> None:
    # Issue 27: the site publisher writes it into each page (photoveil.service.site.with_page_policy);
    # a browser enforces it and the header's together, so the page may connect to this API only.
    content = resources["SiteContent"]["Properties"]
    text, variables = content["PagePolicy"]["Fn::Sub"]
    (directive,) = " ".join(text.split()).split("; ")
    assert directive.split() == [
        "connect-src",
        "'self'",
        "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}",
        "https://${UploadsBucketName}.s3.${AWS::URLSuffix}",
        "https://${UploadsBucketName}.s3.${AWS::Region}.${AWS::URLSuffix}",
    ]
    assert content["ApiUrl"] == {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert variables["UploadsBucketName"] == resources["UploadsBucket"]["Properties"]["BucketName"]
    behaviors = resources["SiteDistribution"]["Properties"]["DistributionConfig"]
    assert behaviors["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == {"Ref": "SiteHeadersPolicy"}


# ---------------------------------------------------------------- data
def test_jobs_table_is_on_demand_with_ttl_and_pitr(resources: dict[str, Any]) -> None:
    props = resources["JobsTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "jobId", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "jobId", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


# ---------------------------------------------------------------- least privilege
def test_no_wildcard_resource_except_actions_that_have_no_arn(translated: dict[str, Any]) -> None:
    roles = _of_type(translated["Resources"], "AWS::IAM::Role")
    assert set(roles) == {"ApiRole", "BlurRole", "SiteContentRole", "VariantsRole", "MailEventsRole"}
    for name, role in roles.items():
        assert not role["Properties"].get("ManagedPolicyArns"), f"{name} has managed policies"
        for statement in _role_statements(translated["Resources"], name):
            actions = _as_list(statement["Action"])
            assert all("*" not in a for a in actions), (name, actions)
            if "*" in _as_list(statement["Resource"]):
                assert set(actions) <= STAR_RESOURCE_ACTIONS, (name, actions)


def test_api_role_can_presign_and_track_jobs_but_not_read_photos(resources: dict[str, Any]) -> None:
    statements = _role_statements(resources, "ApiRole")
    assert _allowed_actions(statements) - STAR_RESOURCE_ACTIONS == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "s3:PutObject",
        "s3:DeleteObject",
        "sqs:SendMessage",
        "cloudfront:CreateInvalidation",
        "sns:Publish",  # a photo withdrawn by reports: the operator is told
    }
    by_action: dict[str, list[Any]] = {}
    for statement in statements:
        for action in _as_list(statement["Action"]):
            by_action.setdefault(action, []).append(statement["Resource"])
    assert by_action["s3:PutObject"] == [{"Fn::Sub": "${UploadsBucket.Arn}/uploads/*"}]
    # Deletes (a photo, or a withdrawn photo waiting under withheld/), never reads.
    assert by_action["s3:DeleteObject"] == [
        {"Fn::Sub": "${BlurredBucket.Arn}/p/*"},
        {"Fn::Sub": "${BlurredBucket.Arn}/withheld/*"},
    ]
    assert by_action["sns:Publish"] == [{"Ref": "ReportsTopic"}]
    by_action = {a: s["Resource"] for s in statements for a in _as_list(s["Action"])}
    assert by_action["sqs:SendMessage"] == {"Fn::GetAtt": ["BlurQueue", "Arn"]}
    assert by_action["cloudfront:CreateInvalidation"]["Fn::Sub"].endswith(":distribution/${SiteDistribution}")


def test_worker_role_has_exactly_its_actions(translated: dict[str, Any]) -> None:
    # Pinned as ApiRole's is: losing one (the edit's CDN invalidation, say) fails here, not only at runtime.
    statements = _role_statements(translated["Resources"], "BlurRole")
    assert _allowed_actions(statements) - STAR_RESOURCE_ACTIONS == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "s3:GetObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:PutObject",
        "s3:PutObjectTagging",  # an edit, or a photo a racing restore moves back, lives its days left
        "cloudfront:CreateInvalidation",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "ses:SendEmail",  # only when SenderEmail is set (test_optional_permissions_exist_only_when_used)
    }


def test_worker_role_is_scoped_to_named_resources(resources: dict[str, Any]) -> None:
    by_action: dict[str, list[Any]] = {}
    for statement in _role_statements(resources, "BlurRole"):
        for action in _as_list(statement["Action"]):
            by_action.setdefault(action, []).extend(_as_list(statement["Resource"]))
    uploads, blurred = {"Fn::Sub": "${UploadsBucket.Arn}/uploads/*"}, {"Fn::Sub": "${BlurredBucket.Arn}/p/*"}
    withheld = {"Fn::Sub": "${BlurredBucket.Arn}/withheld/*"}
    # Originals, the published photo an edit starts from, and a withheld photo a racing restore copies back
    # (CopyObject reads its source: issue 26).
    assert by_action["s3:GetObject"] == [uploads, blurred, withheld]
    # Without ListBucket S3 answers 403 for a key that is gone: the worker could not tell it from a denial.
    buckets = [{"Fn::GetAtt": ["UploadsBucket", "Arn"]}, {"Fn::GetAtt": ["BlurredBucket", "Arn"]}]
    assert by_action["s3:ListBucket"] == buckets
    # Deletes originals, and withdraws a photo it published when another worker refused it meanwhile;
    # moves a photo reports withdrew to withheld/ (issue 20).
    assert by_action["s3:DeleteObject"] == [uploads, blurred, withheld]
    assert by_action["s3:PutObject"] == [blurred, withheld]
    # The jobs, and (issue 27) a recipient's daily emails, counted when one is sent.
    tables = [{"Fn::GetAtt": ["JobsTable", "Arn"]}, {"Fn::GetAtt": ["QuotasTable", "Arn"]}]
    assert by_action["dynamodb:UpdateItem"] == tables
    assert by_action["sqs:ReceiveMessage"] == [{"Fn::GetAtt": ["BlurQueue", "Arn"]}]
    assert "dynamodb:PutItem" not in by_action and "dynamodb:DeleteItem" not in by_action


def test_email_is_sent_only_from_the_sender_address(resources: dict[str, Any]) -> None:
    (ses,) = [s for s in _role_statements(resources, "BlurRole") if s.get("Sid") == "SendEmail"]
    assert ses["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}}
    # The identity, and the identity's default configuration set if it has one, are both authorised.
    kinds = sorted(r["Fn::Sub"].rsplit(":", 1)[1] for r in ses["Resource"])
    assert kinds == ["configuration-set/*", "identity/*"]


def test_the_deployed_default_detector_is_both(template: dict[str, Any]) -> None:
    # Rekognition alone misses the small faces of crowd photos and has no verify step.
    assert template["Parameters"]["Detector"]["Default"] == "both"


@pytest.mark.parametrize(
    ("sid", "condition"), [("DetectFaces", "UsesRekognition"), ("SendEmail", "SendsEmail")]
)
def test_optional_permissions_exist_only_when_used(resources, template, sid: str, condition: str) -> None:
    policy = resources["BlurRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    (wrapped,) = [s for s in policy["Statement"] if "Fn::If" in s and s["Fn::If"][1]["Sid"] == sid]
    assert wrapped["Fn::If"][0] == condition
    assert wrapped["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert condition in template["Conditions"]


# ---------------------------------------------------------------- logs and alarms
@pytest.mark.parametrize(
    ("fn", "role"),
    [
        ("ApiFunction", "ApiRole"),
        ("BlurFunction", "BlurRole"),
        ("SiteContentFunction", "SiteContentRole"),
        ("VariantsFunction", "VariantsRole"),
        ("MailEventsFunction", "MailEventsRole"),
    ],
)
def test_each_function_logs_to_its_own_group_with_retention(resources, fn: str, role: str) -> None:
    group = resources[fn]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert resources[group]["Type"] == "AWS::Logs::LogGroup"
    assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    (logs,) = [s for s in _role_statements(resources, role) if s.get("Sid") == "Logs"]
    assert logs["Resource"] == {"Fn::GetAtt": [group, "Arn"]}


def test_every_log_group_has_retention(resources: dict[str, Any]) -> None:
    for name, group in _of_type(resources, "AWS::Logs::LogGroup").items():
        assert "RetentionInDays" in group["Properties"], name


def _alarm(resources: dict[str, Any], metric: str, dimension_ref: Any) -> dict[str, Any]:
    found = [
        a["Properties"]
        for a in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == metric
        and dimension_ref in [d["Value"] for d in a["Properties"]["Dimensions"]]
    ]
    assert len(found) == 1, f"no single alarm on {metric} for {dimension_ref}"
    return found[0]


def test_alarms_watch_the_dlq_the_queue_age_and_the_worker(resources: dict[str, Any]) -> None:
    for _, _, queue in CONSUMERS:
        dlq = _alarm(resources, "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": [queue, "QueueName"]})
        assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    age = _alarm(resources, "ApproximateAgeOfOldestMessage", {"Fn::GetAtt": ["BlurQueue", "QueueName"]})
    assert age["Threshold"] <= 60 and age["ComparisonOperator"] == "GreaterThanThreshold"
    for metric in ("Errors", "Throttles"):
        _alarm(resources, metric, {"Ref": "BlurFunction"})
    for alarm in _of_type(resources, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"]["Fn::If"][0] == "HasAlarmEmail"


def test_an_alarm_hears_when_a_service_wide_ceiling_refuses_anyone(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    # Issue 27: what photoveil.observability.count_rate_limited emits for a service-wide limit.
    from photoveil.observability import NAMESPACE, SERVICE, SERVICE_CEILING_METRIC

    (alarm,) = [
        a["Properties"]
        for a in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == SERVICE_CEILING_METRIC
    ]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert alarm["Namespace"] == NAMESPACE == variables["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert variables["POWERTOOLS_SERVICE_NAME"] == SERVICE
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum",
        0,
        "GreaterThanThreshold",
    )


def test_the_operator_policy_docs_list_is_the_template_s_and_names_only_the_stack_s_resources(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    # Issue 27: `photoveil admin`'s permissions were written nowhere. docs/deploy.md lists them; the local
    # stack's operator signs with exactly the template's (photoveil.local.iam.read_operator_policy).
    from cfnlint.decode import cfn_yaml

    policy = resources["OperatorPolicy"]["Properties"]["PolicyDocument"]
    text = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = text[text.index("**The permissions `photoveil admin` needs.**") :]
    block = section[section.index("```yaml\n") + len("```yaml\n") : section.index("\n```\n")]
    assert json.loads(json.dumps(cfn_yaml.loads(block))) == {"PolicyDocument": policy}
    actions = sorted(a for st in policy["Statement"] for a in _as_list(st["Action"]))
    assert actions == [
        "cloudformation:DescribeStacks",
        "cloudfront:CreateInvalidation",
        "dynamodb:GetItem",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
        "s3:DeleteObject",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "s3:PutObjectTagging",
    ]
    assert all(r != "*" for st in policy["Statement"] for r in _as_list(st["Resource"]))
    assert template["Outputs"]["OperatorPolicyArn"]["Value"] == {"Ref": "OperatorPolicy"}


def test_a_moderation_that_cannot_judge_alarms_at_once(resources: dict[str, Any]) -> None:
    # The metric the worker counts on every attempt moderation cannot judge (issue 26); the DLQ alarm would
    # fire too, but only after five receives, and without saying why.
    from photoveil.observability import NAMESPACE, SERVICE
    from photoveil.service.jobflow import MODERATION_MISCONFIGURED

    (name,) = [
        n
        for n, a in _of_type(resources, "AWS::CloudWatch::Alarm").items()
        if a["Properties"]["MetricName"] == MODERATION_MISCONFIGURED
    ]
    alarm = resources[name]
    assert alarm["Condition"] == "Moderates"
    props = alarm["Properties"]
    assert props["Namespace"] == NAMESPACE and props["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert (props["Statistic"], props["Threshold"], props["ComparisonOperator"]) == (
        "Sum",
        0,
        "GreaterThanThreshold",
    )


def test_an_image_the_detector_refuses_alarms_at_once(resources: dict[str, Any]) -> None:
    # A refusal fails the photo for good with no retry, so neither the DLQ alarm nor WorkerErrors would hear
    # a parameter mistake failing every photo; the limits are checked before the call, so the first is news.
    from photoveil.observability import IMAGE_REFUSED_METRIC, NAMESPACE, SERVICE

    (alarm,) = [
        a["Properties"]
        for a in _of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == IMAGE_REFUSED_METRIC
    ]
    assert alarm["Namespace"] == NAMESPACE and alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum",
        0,
        "GreaterThanThreshold",
    )
    assert alarm["TreatMissingData"] == "notBreaching"  # no refusal, no data: a quiet alarm


# ---------------------------------------------------------------- outputs and build
def test_outputs_name_everything_deploy_tests_and_frontend_need(template: dict[str, Any]) -> None:
    assert {
        "SiteUrl",
        "ApiUrl",
        "UploadsBucketName",
        "BlurredBucketName",
        "SiteBucketName",
        "DistributionId",
        "JobsTableName",
        "BlurQueueUrl",
        "BlurDLQUrl",
        "BlurDLQArn",
        "PhotoPublishedTopicArn",
        "VariantsQueueUrl",
        "VariantsDLQUrl",
        "VariantsDLQArn",
    } <= set(template["Outputs"])


def test_the_stack_publishes_its_own_site(resources: dict[str, Any]) -> None:
    # `sam deploy` alone must leave a working site: the page and a config.json naming this stack's API.
    content = resources["SiteContent"]["Properties"]
    assert content["ServiceToken"] == {"Fn::GetAtt": ["SiteContentFunction", "Arn"]}
    assert content["BucketName"] == {"Ref": "SiteBucket"}
    assert content["DistributionId"] == {"Ref": "SiteDistribution"}
    assert content["ApiUrl"] == {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    # Re-run whenever the function's package (the page files) changes.
    assert content["SiteVersion"] == {"Ref": "SiteContentFunction.Version"}
    assert resources["SiteContentFunction"]["Properties"]["AutoPublishAlias"]
    writes = {
        a: s["Resource"]
        for s in _role_statements(resources, "SiteContentRole")
        for a in _as_list(s["Action"])
    }
    assert writes["s3:PutObject"] == writes["s3:DeleteObject"] == {"Fn::Sub": "${SiteBucket.Arn}/*"}
    assert writes["cloudfront:CreateInvalidation"]["Fn::Sub"].endswith(":distribution/${SiteDistribution}")


def test_every_makefile_built_function_has_a_build_target(resources: dict[str, Any]) -> None:
    makefile = (REPO / "src" / "Makefile").read_text()
    for name, fn in _of_type(resources, "AWS::Serverless::Function").items():
        assert fn["Metadata"]["BuildMethod"] == "makefile"
        assert re.search(rf"^build-{name}:", makefile, re.MULTILINE), name


def test_wheels_are_built_for_the_templates_runtime(template: dict[str, Any]) -> None:
    # src/Makefile fetches wheels for one CPython version: it must be the one the functions run.
    runtime = template["Globals"]["Function"]["Runtime"]
    makefile = (REPO / "src" / "Makefile").read_text()
    (version,) = re.findall(r"^LAMBDA_PYTHON_VERSION \?= (\S+)$", makefile, re.MULTILINE)
    assert runtime == f"python{version}"
    for name in ("Makefile", "README.md"):
        assert not set(re.findall(r"python3\.\d+", (REPO / name).read_text())) - {runtime}, name


# ---------------------------------------------------------------- mail that cannot be turned on anyone
def test_every_email_goes_out_under_a_configuration_set_whose_bounces_stop_mail(
    resources: dict[str, Any],
) -> None:
    config = resources["MailConfigurationSet"]
    assert config["Properties"]["ReputationOptions"] == {"ReputationMetricsEnabled": True}
    worker_env = resources["BlurFunction"]["Properties"]["Environment"]["Variables"]
    assert worker_env["MAIL_CONFIGURATION_SET"] == {
        "Fn::If": ["SendsEmail", {"Ref": "MailConfigurationSet"}, ""]
    }
    destination = resources["MailEventsDestination"]["Properties"]
    assert destination["ConfigurationSetName"] == {"Ref": "MailConfigurationSet"}
    assert sorted(destination["EventDestination"]["MatchingEventTypes"]) == ["bounce", "complaint"]
    assert destination["EventDestination"]["SnsDestination"] == {"TopicARN": {"Ref": "MailEventsTopic"}}
    events = resources["MailEventsFunction"]["Properties"]["Events"]
    assert [e["Properties"]["Topic"] for e in events.values()] == [{"Ref": "MailEventsTopic"}]
    statements = _role_statements(resources, "MailEventsRole")
    assert _allowed_actions(statements) - STAR_RESOURCE_ACTIONS == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:PutItem",
    }
    (put,) = [s for s in statements if s["Action"] == "dynamodb:PutItem"]
    assert put["Resource"] == {"Fn::GetAtt": ["QuotasTable", "Arn"]}


@pytest.mark.parametrize(
    ("alarm", "metric", "threshold"),
    [
        ("BounceRateAlarm", "Reputation.BounceRate", 0.05),
        ("ComplaintRateAlarm", "Reputation.ComplaintRate", 0.001),
    ],
)
def test_reputation_alarms_fire_where_aws_starts_reviewing(
    resources: dict[str, Any], alarm: str, metric: str, threshold: float
) -> None:
    props = resources[alarm]["Properties"]
    assert (props["Namespace"], props["MetricName"], props["Threshold"]) == ("AWS/SES", metric, threshold)
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_the_monthly_budget_is_optional_and_mails_its_subscriber(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    budget = resources["MonthlyBudget"]
    assert budget["Condition"] == "HasBudget" and template["Parameters"]["MonthlyBudgetUsd"]["Default"] == 0
    assert budget["Properties"]["Budget"]["BudgetLimit"] == {
        "Amount": {"Ref": "MonthlyBudgetUsd"},
        "Unit": "USD",
    }
    for notification in budget["Properties"]["NotificationsWithSubscribers"]:
        assert notification["Subscribers"] == [
            {"SubscriptionType": "EMAIL", "Address": {"Ref": "BudgetEmail"}}
        ]


def test_every_limit_is_a_parameter_passed_to_the_functions(template: dict[str, Any]) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    limits = {
        "UploadsPerClientHour": "UPLOADS_PER_CLIENT_HOUR",
        "UploadsPerClientDay": "UPLOADS_PER_CLIENT_DAY",
        "OwnerActionsPerClientHour": "OWNER_ACTIONS_PER_CLIENT_HOUR",
        "OwnerActionsPerDay": "OWNER_ACTIONS_PER_DAY",
        "EmailsPerRecipientDay": "EMAILS_PER_RECIPIENT_DAY",
        "EmailsPerClientDay": "EMAILS_PER_CLIENT_DAY",
        "UploadsPerDay": "UPLOADS_PER_DAY",
    }
    for parameter, variable in limits.items():
        assert template["Parameters"][parameter]["Type"] == "Number"
        assert template["Parameters"][parameter]["Default"] >= 1
        assert env[variable] == {"Ref": parameter}
