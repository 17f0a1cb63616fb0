"""Functional fixtures: the handlers against in-process moto, fed with the files in events/, each function
under its own IAM role made from template.yaml and enforced by moto (photoveil.local.iam)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from photoveil.adapters.clients import clear_clients, new_client
from photoveil.dependencies import Dependencies
from photoveil.local.account import Credentials, identity_session
from photoveil.local.emulator import moto_app
from photoveil.local.events import LambdaContext
from photoveil.local.formpost import FormPostAuthoriser
from photoveil.local.functions import LocalFunction
from photoveil.local.iam import RoleSpec, create_admin, create_role, iam_enforced, read_function_roles
from photoveil.local.specs import FunctionSpec
from photoveil.local.template import read_stack_spec
from photoveil.observability import SERVICE, logger
from photoveil.settings import get_settings

from .helpers import (
    BLUR_QUEUE,
    BLUR_QUEUE_URL,
    BLURRED_BUCKET,
    JOBS_TABLE,
    PARAMETERS,
    PUBLIC_BASE_URL,
    QUOTAS_TABLE,
    REGION,
    REPORTS_TOPIC,
    REPORTS_TOPIC_ARN,
    RESOURCE_NAMES,
    SENDER,
    TEMPLATE,
    UPLOADS_BUCKET,
    Aws,
    FixedBoxDetector,
    Functions,
)

ADMIN = "admin"
# The limits' variables: unset, each takes the deployment's default (a test may set one).
QUOTA_LIMITS = (
    "UPLOADS_PER_CLIENT_HOUR",
    "UPLOADS_PER_CLIENT_DAY",
    "OWNER_ACTIONS_PER_CLIENT_HOUR",
    "OWNER_ACTIONS_PER_DAY",
    "EMAILS_PER_RECIPIENT_DAY",
    "EMAILS_PER_CLIENT_DAY",
    "UPLOADS_PER_DAY",
    "REPORTS_PER_CLIENT_HOUR",
    "REPORTS_PER_DAY",
)


class Identity:
    """A boto3 session signing as one IAM identity of the current test's account.

    Clients are what a moto test spends most on, so they are made once for the package; each test's
    fresh account gives the identity new keys, which the same clients then sign with.
    """

    def __init__(self) -> None:
        self.session = identity_session(Credentials("none-yet", "none-yet"))

    def sign_as(self, keys: Credentials) -> None:
        signing = self.session.get_credentials()  # the object the session's clients sign with
        signing.access_key, signing.secret_key = keys.access_key_id, keys.secret_access_key
        signing.token = keys.session_token


@pytest.fixture(scope="package")
def aws_environment() -> Iterator[None]:
    """Fake default credentials (refused once IAM is enforced: every call must be some identity's)."""
    with pytest.MonkeyPatch.context() as mp:
        # PHOTOVEIL_ENDPOINT_URL too: a developer who exported it for `make invoke` must not send the
        # tests' clients to a stack of their own.
        for name in (
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_ENDPOINT_URL",
            "PHOTOVEIL_ENDPOINT_URL",
        ):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        clear_clients()
        yield
        clear_clients()


@pytest.fixture(scope="session")
def function_specs() -> dict[str, FunctionSpec]:
    return read_stack_spec(TEMPLATE, PARAMETERS).functions  # with a sender, as the roles are made


@pytest.fixture(scope="session")
def template_roles() -> dict[str, RoleSpec]:
    """Each function's role, as SAM translates the template, for the resource names the tests use."""
    return read_function_roles(TEMPLATE, PARAMETERS, RESOURCE_NAMES)


@pytest.fixture
def roles(template_roles: dict[str, RoleSpec]) -> dict[str, RoleSpec]:
    """The roles the test's account is made with (a test module may give other ones)."""
    return template_roles


@pytest.fixture(scope="package")
def identities(aws_environment: None, function_specs: dict[str, FunctionSpec]) -> dict[str, Identity]:
    return {name: Identity() for name in (ADMIN, *function_specs)}


@pytest.fixture(scope="package")
def role_dependencies(identities: dict[str, Identity]) -> dict[str, Dependencies]:
    """Each function's dependencies: the clients of its role's session, made once."""
    return {name: Dependencies.from_session(i.session) for name, i in identities.items() if name != ADMIN}


@pytest.fixture(scope="package")
def setup_clients(aws_environment: None) -> dict[str, Any]:
    """Clients with the fake keys: for making the account before IAM is enforced."""
    return {name: new_client(name) for name in ("s3", "dynamodb", "ses", "sqs", "iam", "sts", "sns")}


@pytest.fixture(scope="package")
def admin_clients(identities: dict[str, Identity]) -> dict[str, Any]:
    return {
        name: new_client(name, identities[ADMIN].session)
        for name in ("s3", "dynamodb", "ses", "sqs", "cloudfront")
    }


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, aws_environment: None) -> Iterator[None]:
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
        "QUOTAS_TABLE": QUOTAS_TABLE,
        # No Rekognition in moto: tests that moderate turn it on with a stand-in (test_moderation).
        "MODERATION": "off",
        "REPORTS_TOPIC_ARN": REPORTS_TOPIC_ARN,
    }
    for name in (
        "MAX_UPLOAD_BYTES",
        "MAX_PIXELS",
        "UPLOAD_URL_EXPIRES",
        "PHOTO_TTL_DAYS",
        "QUEUE_VISIBILITY_TIMEOUT",
        "QUEUE_MAX_RECEIVE_COUNT",
        "DISTRIBUTION_ID",
        *QUOTA_LIMITS,
        "MODERATION_MIN_CONFIDENCE",
        "MODERATION_BLOCKED",
        "REPORT_THRESHOLD",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _make_resources(clients: dict[str, Any]) -> None:
    for bucket in (UPLOADS_BUCKET, BLURRED_BUCKET):
        clients["s3"].create_bucket(Bucket=bucket)
    clients["sqs"].create_queue(QueueName=BLUR_QUEUE)
    for table, key in ((JOBS_TABLE, "jobId"), (QUOTAS_TABLE, "key")):
        clients["dynamodb"].create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        clients["dynamodb"].update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )
    clients["ses"].verify_email_identity(EmailAddress=SENDER)
    clients["sns"].create_topic(Name=REPORTS_TOPIC)


def _make_identities(
    clients: dict[str, Any], roles: dict[str, RoleSpec], identities: dict[str, Identity]
) -> dict[str, Credentials]:
    """The admin user and each function's role session in the account; their keys, by identity."""
    made = {ADMIN: create_admin(clients["iam"])}
    made |= {function: create_role(clients["iam"], clients["sts"], role) for function, role in roles.items()}
    for name, keys in made.items():
        identities[name].sign_as(keys)
    return made


@pytest.fixture
def aws(
    env: None,
    setup_clients: dict[str, Any],
    admin_clients: dict[str, Any],
    identities: dict[str, Identity],
    roles: dict[str, RoleSpec],
) -> Iterator[Aws]:
    """A fresh mocked account with the stack's table, buckets, a verified sender and the functions'
    roles, IAM enforced; the test works in it as the admin."""
    with mock_aws():
        _make_resources(setup_clients)
        keys = _make_identities(setup_clients, roles, identities)
        by_id = {k.access_key_id: k for k in keys.values()}
        uploads = FormPostAuthoriser(moto_app(), by_id, forward_as=keys[ADMIN])
        with iam_enforced():
            yield Aws(**admin_clients, uploads=uploads)


@pytest.fixture
def detector() -> FixedBoxDetector:
    return FixedBoxDetector()


@pytest.fixture
def functions(
    aws: Aws,
    function_specs: dict[str, FunctionSpec],
    role_dependencies: dict[str, Dependencies],
    detector: FixedBoxDetector,
) -> Functions:
    """Each function with its role's clients (production wiring from the environment, real image
    pipeline); only the worker's detector is a fake. ``functions.worker.override(...)`` changes more."""
    made = {
        name: LocalFunction(function_specs[name], deps.replaced()) for name, deps in role_dependencies.items()
    }
    made["BlurFunction"].override(detector=detector)
    return Functions(
        api=made["ApiFunction"],
        worker=made["BlurFunction"],
        variants=made["VariantsFunction"],
        site=made["SiteContentFunction"],
        mail_events=made["MailEventsFunction"],
    )


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
