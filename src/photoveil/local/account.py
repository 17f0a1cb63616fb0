"""The fake AWS account the local stack lives in, the identities in it, and clients for it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

STACK_NAME = "photoveil"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass(frozen=True)
class Credentials:
    """An identity's keys: an IAM user's (no token) or an assumed role's session."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def client_arguments(self) -> dict[str, str]:
        """The keyword arguments boto3's ``client()`` and ``Session()`` take for these keys."""
        arguments = {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}
        if self.session_token:
            arguments["aws_session_token"] = self.session_token
        return arguments

    def as_json(self) -> dict[str, str]:
        keys = {"accessKeyId": self.access_key_id, "secretAccessKey": self.secret_access_key}
        return keys | ({"sessionToken": self.session_token} if self.session_token else {})

    @classmethod
    def from_json(cls, value: dict[str, str]) -> Credentials:
        """What :meth:`as_json` wrote (stack.json holds the admin's keys and the roles' sessions)."""
        return cls(value["accessKeyId"], value["secretAccessKey"], value.get("sessionToken"))


FAKE = Credentials(FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


@cache
def _service_models() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


def identity_session(credentials: Credentials) -> boto3.session.Session:
    """A boto3 session of its own signing as CREDENTIALS.

    Sessions share one loader of botocore's service models: a client then costs a few milliseconds
    instead of the ~40 ms of reading its model again.
    """
    core = botocore.session.Session()
    core.register_component("data_loader", _service_models())
    core.set_credentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token)
    return boto3.session.Session(botocore_session=core, region_name=REGION)


def client(service: str, endpoint: str, credentials: Credentials | None = None) -> Any:
    """A boto3 client for the local endpoint, signing as CREDENTIALS (default: the fake keys), from a
    private session.

    A private session because the fault layer hooks the handlers' sessions, never these.
    """
    session = identity_session(credentials or FAKE)
    return session.client(
        service, endpoint_url=endpoint, config=Config(retries={"mode": "standard", "max_attempts": 3})
    )
