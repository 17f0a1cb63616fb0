"""boto3 clients, created once per process on first use (never at import time, so tests can patch first).

``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` (read by boto3 itself) point them at a local stand-in,
and so does ``PHOTOVEIL_ENDPOINT_URL``, which the template declares (empty on AWS): `sam local invoke
--env-vars` can set only the variables a template declares, so that is how an invoked function reaches the
local stack (scripts/invoke.sh).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode backs off on throttling (DynamoDB, SES) before the message has to be retried whole.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
# SigV4 presigned POST works in every region. Addressing stays "auto": virtual-host URLs on AWS,
# path-style on a local endpoint (an IP address cannot carry a bucket sub-domain).
_SERVICE_CONFIGS = {"s3": _CONFIG.merge(Config(signature_version="s3v4"))}
ENDPOINT_VARIABLE = "PHOTOVEIL_ENDPOINT_URL"


def endpoint_url() -> str | None:
    """The endpoint every client is made for: PHOTOVEIL_ENDPOINT_URL if set and not empty, else None (AWS's,
    or AWS_ENDPOINT_URL's)."""
    return os.environ.get(ENDPOINT_VARIABLE, "").strip() or None


def new_client(service: str, session: boto3.session.Session | None = None) -> Any:
    """A new client for SERVICE configured as the handlers' are, from SESSION (default: boto3's).

    The local stack and the functional tests give each function a session signing as its own role.
    """
    config = _SERVICE_CONFIGS.get(service, _CONFIG)
    return (session or boto3).client(service, config=config, endpoint_url=endpoint_url())


@cache
def s3_client() -> Any:
    return new_client("s3")


@cache
def dynamodb_client() -> Any:
    return new_client("dynamodb")


@cache
def ses_client() -> Any:
    return new_client("ses")


@cache
def sqs_client() -> Any:
    return new_client("sqs")


@cache
def cloudfront_client() -> Any:
    return new_client("cloudfront")


@cache
def sns_client() -> Any:
    return new_client("sns")


def clear_clients() -> None:
    """Forget the cached clients (tests that start a new moto mock call this)."""
    for factory in (s3_client, dynamodb_client, ses_client, sqs_client, cloudfront_client, sns_client):
        factory.cache_clear()
