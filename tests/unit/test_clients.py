"""The clients reach the endpoint the template declares (PHOTOVEIL_ENDPOINT_URL), and AWS's when it is empty,
as the template declares it for AWS."""

from __future__ import annotations

import pytest

from photoveil.adapters import clients


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch):
    def set_to(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(clients.ENDPOINT_VARIABLE, raising=False)
        else:
            monkeypatch.setenv(clients.ENDPOINT_VARIABLE, value)

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return set_to


def test_clients_go_to_the_declared_endpoint_when_it_is_set(endpoint) -> None:
    endpoint("http://host.docker.internal:4566")
    s3 = clients.new_client("s3")
    assert s3.meta.endpoint_url == "http://host.docker.internal:4566"
    assert clients.new_client("dynamodb").meta.endpoint_url == "http://host.docker.internal:4566"
    # botocore addresses a custom endpoint path-style: a bucket sub-domain of a local host name would resolve
    # nowhere (as host.docker.internal's, from a container).
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "photoveil-uploads", "Key": "k"})
    assert url.startswith("http://host.docker.internal:4566/photoveil-uploads/k")


@pytest.mark.parametrize("value", [None, "", "  "])
def test_clients_go_to_aws_when_the_endpoint_is_empty_as_the_template_declares_it(endpoint, value) -> None:
    endpoint(value)
    assert clients.new_client("s3").meta.endpoint_url == "https://s3.amazonaws.com"
    assert clients.new_client("sqs").meta.endpoint_url == "https://sqs.us-east-1.amazonaws.com"
