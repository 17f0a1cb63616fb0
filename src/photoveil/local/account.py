"""The fake AWS account the local stack lives in, and clients for it."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

STACK_NAME = "photoveil"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def client(service: str, endpoint: str) -> Any:
    """A boto3 client for the local endpoint, from a private session.

    A private session because the fault layer hooks boto3's default one (the handlers'), never these.
    """
    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    return session.client(
        service, endpoint_url=endpoint, config=Config(retries={"mode": "standard", "max_attempts": 3})
    )
