"""SiteContentFunction: the CloudFormation custom resource that publishes the website
(photoveil.service.site).

Create/Update: write the page files shipped in this function's package (``site/``) and config.json
with the API's URL, then invalidate CloudFront. Delete: empty the bucket. Whatever happens, answer
CloudFormation (an unanswered custom resource holds the stack for an hour).
"""

from __future__ import annotations

import contextvars
import json
import os
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.data_classes import CloudFormationCustomResourceEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from photoveil.dependencies import get_dependencies
from photoveil.observability import logger
from photoveil.service.site import empty_bucket, invalidate, publish_site

# Time kept back from the function's timeout to answer CloudFormation (the PUT has a 30 s timeout).
RESPOND_RESERVE_S = 35.0


def site_dir() -> Path:
    """Where the page's files are: SITE_DIR, or ``site/`` at the root of the function's package."""
    return Path(os.environ.get("SITE_DIR") or Path(os.environ["LAMBDA_TASK_ROOT"]) / "site")


def apply(event: CloudFormationCustomResourceEvent) -> dict[str, Any]:
    """Do what the request asks; returns the response's Data."""
    props = event.resource_properties
    dependencies = get_dependencies()
    s3, cloudfront = dependencies.s3_client, dependencies.cloudfront_client
    if event.request_type == "Delete":
        return {"Deleted": empty_bucket(s3, props["BucketName"])}
    written = publish_site(
        s3, props["BucketName"], site_dir(), api_url=props["ApiUrl"], page_policy=props.get("PagePolicy", "")
    )
    invalidation = invalidate(cloudfront, props["DistributionId"]) if event.request_type == "Update" else ""
    return {"Files": len(written), "InvalidationId": invalidation}


def respond(event: CloudFormationCustomResourceEvent, status: str, reason: str, data: dict[str, Any]) -> None:
    """PUT the result to the pre-signed ResponseURL CloudFormation waits on."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:500],
            "PhysicalResourceId": event.resource_properties["BucketName"],
            "StackId": event.stack_id,
            "RequestId": event.request_id,
            "LogicalResourceId": event.logical_resource_id,
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(
        event.response_url,
        data=body,
        method="PUT",
        headers={"Content-Type": ""},  # as presigned
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    request = CloudFormationCustomResourceEvent(event)
    # Client retries can outlast the function: what is not done with RESPOND_RESERVE_S left is FAILED,
    # answered by this invocation, never left to CloudFormation's ServiceTimeout.
    budget_s = max(1.0, context.get_remaining_time_in_millis() / 1000 - RESPOND_RESERVE_S)
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        data = pool.submit(contextvars.copy_context().run, apply, request).result(timeout=budget_s)
    except TimeoutError:
        logger.error("site content not applied in time", extra={"request_type": request.request_type})
        respond(
            request, "FAILED", f"not done within {budget_s:.0f} s (AWS calls kept failing or hanging)", {}
        )
        return
    except Exception as error:
        logger.exception("site content not applied", extra={"request_type": request.request_type})
        respond(request, "FAILED", f"{type(error).__name__}: {error}", {})
        return
    finally:
        pool.shutdown(wait=False)
    logger.info("site content applied", extra={"request_type": request.request_type, **data})
    respond(request, "SUCCESS", "", data)
