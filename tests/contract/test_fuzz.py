"""Schemathesis against the local stack: every operation of openapi.yaml with valid and invalid requests,
then the document's links (an upload's job and owner token, followed to every job route), each answer
checked against the document: no 5xx, a documented status, content type, headers and body.

Bounded and repeatable: one seed and a fixed number of examples (tests/contract/schemathesis.toml), no
time limit. A failure prints the curl command that reproduces it. The stack is the real one (moto, the
handlers, IAM enforced): only HTTP between them. conftest.py counts every request and prints the count.
What it found and why some checks are off: docs/decisions/api-0001-the-contract-by-hand-kept-by-tests.md.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import cv2
import hypothesis
import numpy as np
import pytest
import requests
import schemathesis
from recorder import Sent
from schemathesis.core.failures import FailureGroup

from photoveil.local.gateway import MAX_PAYLOAD_BYTES
from photoveil_dev.contract import DOCUMENT, load_document
from photoveil_dev.launcher import LaunchedStack

CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")
schema = schemathesis.openapi.from_path(DOCUMENT, config=schemathesis.Config.from_path(CONFIG_FILE))

# The stateful run: scenarios of linked calls, each starting with POST /uploads.
SCENARIOS = 25
MAX_STEPS = 6
# A job's photo is published within a second or two; the polls stop earlier if it is not (the linked
# calls then meet a job still processing, which is documented too).
POLLS, POLL_INTERVAL_S = 40, 0.1


@schemathesis.check
def edits_refused_only_past_the_edge(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """positive_data_acceptance for POST /jobs/{jobId}/regions, less the one rule JSON Schema cannot
    state: a valid edit may be refused only as region_outside_photo, and only if a region is past an edge."""
    meta = case.meta
    if case.operation.label != "POST /jobs/{jobId}/regions" or meta is None:
        return None
    if not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    code = response.json()["error"]["code"]
    regions = case.body["regions"]
    past = [r for r in regions if r["x"] + r["width"] > 1 or r["y"] + r["height"] > 1]
    if code != "region_outside_photo" or not past:
        raise AssertionError(f"a schema-valid edit was refused with {code} (regions past an edge: {past})")
    return True


# Jobs a DELETE was answered 204 for, in this run (job ids are random: no two tests share one).
DELETED_JOBS: set[str] = set()


@schemathesis.check
def deleted_jobs_stay_deleted(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """use_after_free as this API means it: once a DELETE of a job answered 204, GET shows it ``deleted``
    and nothing else (README, "Delete now"), and no other route takes it (a 2xx edit or report of a deleted
    photo). Schemathesis's own check is off for GET (schemathesis.toml) and never judges a POST."""
    job_id = (case.path_parameters or {}).get("jobId")
    if not isinstance(job_id, str):
        return None
    if case.operation.label == "DELETE /jobs/{jobId}":
        if response.status_code == 204:
            DELETED_JOBS.add(job_id)
        return None
    if job_id not in DELETED_JOBS or not 200 <= response.status_code < 300:
        return None
    if case.operation.label == "GET /jobs/{jobId}" and response.json() == {
        "jobId": job_id,
        "status": "deleted",
        "faces": None,
    }:
        return True
    raise AssertionError(
        f"{case.operation.label} answered {response.status_code} for a job deleted before: {response.text}"
    )


# ---------------------------------------------------------------- the harness itself fails when it must
def test_an_answer_the_document_does_not_allow_fails(contract_stack: LaunchedStack, sent: Sent) -> None:
    """Three documents, each wrong about one thing POST /uploads answers: each call must fail its check."""
    session = sent.session("harness")
    wrong = {
        "Response violates schema": ("CreatedUpload", "required", lambda r: [*r, "receipt"]),
        "Undocumented Content-Type": ("createUpload201", "content", lambda c: {"text/plain": c[_JSON]}),
        "Undocumented status code": ("createUpload", "responses", lambda r: _without(r, "201")),
    }
    for title, (where, key, change) in wrong.items():
        document = copy.deepcopy(load_document())
        node = _node(document, where)
        node[key] = change(node[key])
        broken = schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_path(CONFIG_FILE))
        case = broken["/uploads"]["POST"].Case(body={"contentType": "image/jpeg", "size": 10})
        with pytest.raises(FailureGroup, match=title):
            case.call_and_validate(base_url=contract_stack.url, session=session)


def test_a_server_error_fails(contract_stack: LaunchedStack, sent: Sent) -> None:
    """The handler's next DynamoDB read fails (the fault layer): GET /jobs answers 500 internal_error."""
    faults = f"{contract_stack.url}/__faults"
    arm = {"operation": "dynamodb.GetItem", "kind": "error", "count": 1}
    assert requests.post(faults, json=arm, timeout=10).ok
    case = schema["/jobs/{jobId}"]["GET"].Case(path_parameters={"jobId": "0" * 32})
    try:
        with pytest.raises(FailureGroup, match="Server error"):
            case.call_and_validate(base_url=contract_stack.url, session=sent.session("harness"))
    finally:
        requests.delete(faults, timeout=10)  # unspent, it must not fail a later request


def test_use_after_free_is_off_for_the_status_of_a_deleted_job_only() -> None:
    checks = {
        op.label: schema.config.checks_config_for(operation=op).use_after_free.enabled
        for op in (result.ok() for result in schema.get_all_operations())
    }
    assert checks == {
        "POST /uploads": True,
        "GET /jobs/{jobId}": False,
        "DELETE /jobs/{jobId}": True,
        "POST /jobs/{jobId}/regions": True,
        "POST /jobs/{jobId}/report": True,
    }


def test_a_deleted_job_that_answers_as_if_it_were_not_fails(
    contract_stack: LaunchedStack, sent: Sent
) -> None:
    """The check is told a published, undeleted photo was deleted: its report (202) and status (done) must
    each fail deleted_jobs_stay_deleted; a job really deleted then shows "deleted" and passes."""
    session = sent.session("harness")
    created = session.post(f"{contract_stack.url}/uploads", json={"contentType": "image/jpeg", "size": 10})
    job_id, token = created.json()["jobId"], created.json()["ownerToken"]
    publish(created.json(), "image/jpeg", session)
    DELETED_JOBS.add(job_id)  # the lie
    report = schema["/jobs/{jobId}/report"]["POST"].Case(
        path_parameters={"jobId": job_id}, body={"reason": "other"}
    )
    status = schema["/jobs/{jobId}"]["GET"].Case(path_parameters={"jobId": job_id})
    for case in (status, report):
        with pytest.raises(FailureGroup, match="for a job deleted before"):
            case.call_and_validate(base_url=contract_stack.url, session=session)

    delete = schema["/jobs/{jobId}"]["DELETE"].Case(
        path_parameters={"jobId": job_id}, headers={"Authorization": f"Bearer {token}"}
    )
    assert delete.call_and_validate(base_url=contract_stack.url, session=session).status_code == 204
    status.call_and_validate(base_url=contract_stack.url, session=session)


def test_a_body_over_api_gateways_quota_is_its_413(contract_stack: LaunchedStack, sent: Sent) -> None:
    """A body over 10 MB never reaches the function: the gateway answers it, as openapi.yaml documents."""
    session = sent.session("harness")
    operation = schema["/uploads"]["POST"]
    envelope = len(json.dumps({"contentType": "image/jpeg", "size": 10, "email": ""}))
    answers = {}
    for size in (MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1):  # the quota itself, then one byte over it
        email = "a" * (size - envelope)
        case = operation.Case(body={"contentType": "image/jpeg", "size": 10, "email": email})
        response = case.call_and_validate(base_url=contract_stack.url, session=session)
        assert len(response.request.body) == size
        answers[size] = response.status_code, response.json()
    assert answers[MAX_PAYLOAD_BYTES][0] == 400  # the function's own limit (4,096 bytes) answers this one
    assert answers[MAX_PAYLOAD_BYTES + 1] == (413, {"message": "Request Too Large"})


_JSON = "application/json"


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def _node(document: dict[str, Any], where: str) -> dict[str, Any]:
    if where == "createUpload":
        return document["paths"]["/uploads"]["post"]
    if where == "createUpload201":
        return document["paths"]["/uploads"]["post"]["responses"]["201"]
    return document["components"]["schemas"][where]


# ---------------------------------------------------------------- every operation, on its own
@pytest.fixture(scope="module")
def stateless(sent: Sent) -> requests.Session:
    return sent.session("stateless")


@schema.parametrize()
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, contract_stack: LaunchedStack, stateless: requests.Session
) -> None:
    case.call_and_validate(base_url=contract_stack.url, session=stateless)


# ---------------------------------------------------------------- linked: upload, then the job's routes
def test_linked_operations_answer_as_documented(contract_stack: LaunchedStack, sent: Sent) -> None:
    calls, setup = sent.session("stateful"), sent.session("setup: photo uploads and status polls")

    class LinkedCalls(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": contract_stack.url, "session": calls}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            if case.operation.label == "POST /uploads" and response.status_code == 201:
                # The links then reach a published photo: edits and reports are taken, not only refused.
                publish(response.json(), case.body["contentType"], setup)

    LinkedCalls.run(
        settings=hypothesis.settings(
            max_examples=SCENARIOS,
            stateful_step_count=MAX_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )


def publish(created: dict[str, Any], content_type: str, session: requests.Session) -> None:
    """Post a small photo to the job's upload form, as the browser does, and wait (a bounded number of
    polls) until the worker has finished with it."""
    form = created["upload"]
    # Every kind of job for the links to meet: a HEIF that is a damaged JPEG ends "failed".
    photo = ("photo", PHOTO[:400] if content_type == "image/heif" else PHOTO, content_type)
    assert session.post(form["url"], data=form["fields"], files={"file": photo}, timeout=10).ok
    for _ in range(POLLS):
        if session.get(created["statusUrl"], timeout=10).json()["status"] not in (
            "awaiting_upload",
            "processing",
        ):
            return
        time.sleep(POLL_INTERVAL_S)


def _photo() -> bytes:
    # A 320x240 gradient: quick to blur. The worker reads the bytes' own type, whatever was declared.
    image = np.zeros((240, 320, 3), np.uint8)
    image[:, :, 1] = np.arange(320, dtype=np.uint16)[None, :] * 255 // 319
    return cv2.imencode(".jpg", image)[1].tobytes()


PHOTO = _photo()
