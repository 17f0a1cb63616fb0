"""Functional fixtures: both handlers against in-process moto, fed with the files in events/."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from photoveil.adapters.clients import clear_clients, dynamodb_client, s3_client, ses_client, sqs_client
from photoveil.dependencies import Dependencies, set_dependencies
from photoveil.local.events import LambdaContext
from photoveil.observability import SERVICE, logger
from photoveil.settings import get_settings

from .helpers import (
    BLUR_QUEUE,
    BLUR_QUEUE_URL,
    BLURRED_BUCKET,
    JOBS_TABLE,
    PUBLIC_BASE_URL,
    REGION,
    SENDER,
    UPLOADS_BUCKET,
    Aws,
    FixedBoxDetector,
)


@pytest.fixture(scope="package")
def aws_clients() -> Iterator[tuple[Any, Any, Any]]:
    """Fake credentials and the process's own cached clients, created once for the package (client
    creation dominates a moto test's cost); moto intercepts them inside every later ``mock_aws``."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        clear_clients()
        yield s3_client(), dynamodb_client(), ses_client()
        clear_clients()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, aws_clients: tuple[Any, Any, Any]) -> Iterator[None]:
    """The stack's settings, as the template sets them; tests may change one and clear the cache."""
    values = {
        "JOBS_TABLE": JOBS_TABLE,
        "UPLOADS_BUCKET": UPLOADS_BUCKET,
        "BLURRED_BUCKET": BLURRED_BUCKET,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL + "/",
        "SENDER_EMAIL": SENDER,
        "DETECTOR": "centerface",
        "BLUR_STYLE": "gaussian",
        "BLUR_QUEUE_URL": BLUR_QUEUE_URL,
    }
    for name in (
        "MAX_UPLOAD_BYTES",
        "MAX_PIXELS",
        "UPLOAD_URL_EXPIRES",
        "PHOTO_TTL_DAYS",
        "QUEUE_VISIBILITY_TIMEOUT",
        "QUEUE_MAX_RECEIVE_COUNT",
        "DISTRIBUTION_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def aws(env: None, aws_clients: tuple[Any, Any, Any]) -> Iterator[Aws]:
    """A fresh mocked account with the stack's table, buckets and a verified sender."""
    s3, dynamodb, ses = aws_clients
    with mock_aws():
        for bucket in (UPLOADS_BUCKET, BLURRED_BUCKET):
            s3.create_bucket(Bucket=bucket)
        sqs_client().create_queue(QueueName=BLUR_QUEUE)
        dynamodb.create_table(
            TableName=JOBS_TABLE,
            AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=JOBS_TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )
        ses.verify_email_identity(EmailAddress=SENDER)
        yield Aws(s3=s3, dynamodb=dynamodb, ses=ses)
        set_dependencies(None)


@pytest.fixture
def detector() -> FixedBoxDetector:
    return FixedBoxDetector()


@pytest.fixture
def deps(aws: Aws, detector: FixedBoxDetector) -> Dependencies:
    """Production wiring from the environment (real adapters, default clients, the real image
    pipeline); only the detector is a fake."""
    dependencies = Dependencies(detector=detector)
    set_dependencies(dependencies)
    return dependencies


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext(function_name="photoveil-Function-TEST", memory_limit_in_mb=2048, timeout_s=60)


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Call it to get the JSON log lines PhotoVeil's logger wrote so far in this test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    std_logger = logging.getLogger(SERVICE)  # the stdlib logger behind the Powertools Logger
    std_logger.addHandler(handler)
    try:
        yield lambda: [json.loads(raw) for raw in stream.getvalue().splitlines() if raw.strip()]
    finally:
        std_logger.removeHandler(handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest resets warning filters per test, undoing the one in photoveil.observability.
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(
                pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
            )
