"""SiteContentFunction against moto: the custom resource that publishes the website on deploy."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from photoveil.handlers.site import RESPOND_RESERVE_S
from photoveil.local.events import LambdaContext

from .helpers import SITE_BUCKET, Aws, Functions

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com"
PAGE_POLICY = (
    f"connect-src 'self' {API_URL} https://up.s3.amazonaws.com\n  https://up.s3.us-east-1.amazonaws.com"
)


class CloudFormationEndpoint:
    """The pre-signed ResponseURL CloudFormation waits on: a real HTTP server keeping each PUT body."""

    def __init__(self) -> None:
        responses = self.responses = []

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                responses.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/response"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def cfn() -> Iterator[CloudFormationEndpoint]:
    endpoint = CloudFormationEndpoint()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


@pytest.fixture
def distribution(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SITE_DIR", str(FRONTEND))
    aws.s3.create_bucket(Bucket=SITE_BUCKET)
    created = aws.cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "test",
            "Comment": "",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "site",
                        "DomainName": f"{SITE_BUCKET}.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {"TargetOriginId": "site", "ViewerProtocolPolicy": "redirect-to-https"},
        }
    )
    yield created["Distribution"]["Id"]


def event(request_type: str, response_url: str, distribution_id: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/photoveil/abc",
        "RequestId": "req-1",
        "ResourceType": "Custom::SiteContent",
        "LogicalResourceId": "SiteContent",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:site",
            "BucketName": SITE_BUCKET,
            "ApiUrl": API_URL,
            "PagePolicy": PAGE_POLICY,
            "DistributionId": distribution_id,
            "SiteVersion": "3",
        },
    }


def test_create_publishes_the_page_and_its_config(
    aws: Aws, functions: Functions, cfn, distribution: str, context
) -> None:
    aws.s3.put_object(Bucket=SITE_BUCKET, Key="old-page.js", Body=b"from an older deploy")

    functions.site.invoke(event("Create", cfn.url, distribution), context)

    (response,) = cfn.responses
    assert (response["Status"], response["PhysicalResourceId"]) == ("SUCCESS", SITE_BUCKET)
    assert (response["RequestId"], response["LogicalResourceId"]) == ("req-1", "SiteContent")
    expected = {p.name for p in FRONTEND.iterdir() if p.is_file() and p.name != "config.json"}
    assert set(aws.keys(SITE_BUCKET)) == expected | {"config.json"}  # the stale file is gone
    config = aws.s3.get_object(Bucket=SITE_BUCKET, Key="config.json")
    assert json.loads(config["Body"].read()) == {"apiUrl": API_URL}
    assert config["CacheControl"] == "no-cache"
    page = aws.s3.get_object(Bucket=SITE_BUCKET, Key="index.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    # Issue 27: each page carries a policy naming this stack's API (the header's cannot), first in <head>.
    meta = (
        '<meta http-equiv="Content-Security-Policy" content="connect-src &#x27;self&#x27; '
        f'{API_URL} https://up.s3.amazonaws.com https://up.s3.us-east-1.amazonaws.com">'
    )
    for name in ("index.html", "view.html"):
        html = aws.s3.get_object(Bucket=SITE_BUCKET, Key=name)["Body"].read().decode()
        head = html.index("<head>") + len("<head>")
        assert html[head:].lstrip().startswith(meta) and html.index(meta) < html.index("<script")
        assert html.replace(meta, "").replace("<head>\n  ", "<head>", 1) == (FRONTEND / name).read_text()
    assert (
        aws.s3.get_object(Bucket=SITE_BUCKET, Key="app.js")["Body"].read()
        == (FRONTEND / "app.js").read_bytes()
    )


def test_update_invalidates_the_cached_site(
    aws: Aws, functions: Functions, cfn, distribution: str, context
) -> None:
    functions.site.invoke(event("Update", cfn.url, distribution), context)

    (response,) = cfn.responses
    assert response["Status"] == "SUCCESS" and response["Data"]["InvalidationId"]
    with aws.unchecked():
        invalidations = aws.cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert invalidations["Quantity"] == 1


def test_delete_empties_the_bucket_so_the_stack_can_go(
    aws: Aws, functions: Functions, cfn, distribution: str, context
) -> None:
    functions.site.invoke(event("Create", cfn.url, distribution), context)

    functions.site.invoke(event("Delete", cfn.url, distribution), context)

    assert [r["Status"] for r in cfn.responses] == ["SUCCESS", "SUCCESS"]
    assert aws.keys(SITE_BUCKET) == []


def test_a_failure_is_reported_to_cloudformation_not_left_hanging(
    aws: Aws, functions: Functions, cfn, distribution: str, context
) -> None:
    # The bucket its role may write is gone (another bucket would be an AccessDenied).
    aws.s3.delete_bucket(Bucket=SITE_BUCKET)

    functions.site.invoke(event("Create", cfn.url, distribution), context)

    (response,) = cfn.responses
    assert response["Status"] == "FAILED"
    assert "NoSuchBucket" in response["Reason"]


class KeepsOneObject:
    """The site role's real S3 client, except DeleteObjects reports one key it could not delete."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def delete_objects(self, **kwargs: Any) -> Any:
        response = self._client.delete_objects(**kwargs)
        first = kwargs["Delete"]["Objects"][0]["Key"]
        return {**response, "Errors": [{"Key": first, "Code": "AccessDenied", "Message": "Access Denied"}]}


def test_an_object_left_behind_on_delete_is_reported_as_a_failure(
    aws: Aws, functions: Functions, cfn, distribution: str, context
) -> None:
    functions.site.invoke(event("Create", cfn.url, distribution), context)
    functions.site.override(s3=KeepsOneObject(functions.site.dependencies.s3_client))

    functions.site.invoke(event("Delete", cfn.url, distribution), context)

    assert [r["Status"] for r in cfn.responses] == ["SUCCESS", "FAILED"]
    assert "not deleted" in cfn.responses[1]["Reason"] and "AccessDenied" in cfn.responses[1]["Reason"]


class Busy:
    """The site role's real clients, except OPERATION fails with CODE (CloudFront busy), or sleeps."""

    def __init__(self, client: Any, operation: str, *, code: str = "", sleep_s: float = 0) -> None:
        self._client, self._operation, self._code, self._sleep_s = client, operation, code, sleep_s

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name != self._operation:
            return method

        def busy(**kwargs: Any) -> Any:
            if self._sleep_s:
                time.sleep(self._sleep_s)
                return method(**kwargs)
            raise ClientError({"Error": {"Code": self._code, "Message": "busy"}}, name)

        return busy


def test_a_refused_invalidation_never_fails_the_stack_operation(
    aws: Aws, functions: Functions, cfn, distribution: str, context
) -> None:
    busy = Busy(
        functions.site.dependencies.cloudfront_client,
        "create_invalidation",
        code="TooManyInvalidationsInProgress",
    )
    functions.site.override(cloudfront=busy)

    functions.site.invoke(event("Update", cfn.url, distribution), context)

    (response,) = cfn.responses
    assert response["Status"] == "SUCCESS"
    assert response["Data"]["InvalidationId"] == "skipped: ClientError"
    assert "index.html" in aws.keys(SITE_BUCKET)


def test_a_delete_of_a_bucket_already_gone_is_done(
    aws: Aws, functions: Functions, cfn, distribution: str, context
) -> None:
    aws.s3.delete_bucket(Bucket=SITE_BUCKET)
    functions.site.invoke(event("Delete", cfn.url, distribution), context)
    assert [(r["Status"], r["Data"]) for r in cfn.responses] == [("SUCCESS", {"Deleted": 0})]


def test_work_not_done_in_time_is_answered_failed_before_the_function_times_out(
    aws: Aws, functions: Functions, cfn, distribution: str
) -> None:
    slow = Busy(functions.site.dependencies.s3_client, "put_object", sleep_s=3)
    functions.site.override(s3=slow)
    short = LambdaContext(function_name="site", memory_limit_in_mb=256, timeout_s=int(RESPOND_RESERVE_S) + 1)

    functions.site.invoke(event("Create", cfn.url, distribution), short)

    (response,) = cfn.responses  # answered by the invocation, not left to ServiceTimeout
    assert response["Status"] == "FAILED" and "not done within" in response["Reason"]
