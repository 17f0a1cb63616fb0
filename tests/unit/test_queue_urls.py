"""adapters.queue builds queue URLs from the client's own endpoint: right in every partition."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from photoveil.adapters.queue import Messages


@pytest.mark.parametrize(
    ("region", "partition", "url"),
    [
        ("us-east-1", "aws", "https://sqs.us-east-1.amazonaws.com/123456789012/photoveil-q"),
        ("cn-north-1", "aws-cn", "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/photoveil-q"),
        ("us-gov-west-1", "aws-us-gov", "https://sqs.us-gov-west-1.amazonaws.com/123456789012/photoveil-q"),
    ],
)
def test_show_again_names_the_queue_in_its_own_partition(region: str, partition: str, url: str) -> None:
    client = boto3.client("sqs", region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response(
            "change_message_visibility", {}, {"QueueUrl": url, "ReceiptHandle": "r", "VisibilityTimeout": 5}
        )
        Messages(client=client).show_again(f"arn:{partition}:sqs:{region}:123456789012:photoveil-q", "r", 5)
        stub.assert_no_pending_responses()
