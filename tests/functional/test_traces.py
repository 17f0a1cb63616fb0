"""What X-Ray would keep: every route and the worker traced through a recording provider, and no owner
token, email address or photo URL in anything the tracer records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from photoveil.observability import tracer

from .helpers import Aws, Functions
from .test_owner import BADGE, _published_event, call, drain_blur_queue, owner_event, status
from .test_owner import photo as photo  # the fixture


class RecordingSubsegment:
    def __init__(self, name: str, recorded: list[dict[str, Any]]) -> None:
        self.name, self._recorded = name, recorded

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self._recorded.append({"subsegment": self.name, "metadata": key, "value": value})

    def put_annotation(self, key: str, value: Any) -> None:
        self._recorded.append({"subsegment": self.name, "annotation": key, "value": value})

    def add_exception(self, exception: BaseException, stack: Any = None, remote: bool = False) -> None:
        self._recorded.append({"subsegment": self.name, "exception": repr(exception)})


class RecordingProvider:
    """Stands in for the X-Ray provider: what Powertools would send, kept in a list."""

    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []
        self.subsegments: list[str] = []

    @contextmanager
    def in_subsegment(self, name: str = "", **_: Any) -> Iterator[RecordingSubsegment]:
        self.subsegments.append(name)
        yield RecordingSubsegment(name, self.recorded)

    def text(self) -> str:
        return json.dumps(self.recorded, default=str)


@pytest.fixture
def traces(monkeypatch: pytest.MonkeyPatch) -> RecordingProvider:
    provider = RecordingProvider()
    monkeypatch.setattr(tracer, "provider", provider)
    return provider


def test_no_traced_response_holds_a_token_an_email_address_or_a_photo_url(
    aws: Aws, functions: Functions, photo, context, traces: RecordingProvider
) -> None:
    job_id, token = photo(email="erin@example.com")  # POST /uploads, then the worker (and its email)
    functions.variants.invoke(_published_event(job_id), context)
    view = status(functions, job_id, context)  # GET /jobs/{id}: the photo's URL and its variants'
    edit = call(functions, owner_event("POST", job_id, token, {"regions": [BADGE]}, "/regions"), context)
    drain_blur_queue(aws, functions, context)
    edited = status(functions, job_id, context)
    deleted = call(functions, owner_event("DELETE", job_id, token), context)
    assert edit[0] == 202 and deleted[0] == 204

    recorded = traces.text()
    traced = " ".join(traces.subsegments)
    assert "## lambda_handler" in traced and "blur_upload" in traced and "apply_edit" in traced
    assert any(entry.get("annotation") == "ColdStart" for entry in traces.recorded)  # it did record
    secrets = [token, "erin@example.com", view["photoUrl"], edited["photoUrl"], *view["variants"].values()]
    for secret in secrets:
        assert secret not in recorded
    assert "ownerToken" not in recorded and "photoUrl" not in recorded
    assert aws.sent_emails()  # the email went, and its address and token were not traced either
