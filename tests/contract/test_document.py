"""openapi.yaml and the code cannot drift apart: the document is valid OpenAPI 3.1, its operations are
exactly template.yaml's HttpApi routes, its limits are the handlers' own constants, and every error code
the code can answer is documented (and no other).

Each failure names what differs, so a change to the API (a route, a limit, a code) shows here as the line
of openapi.yaml to update. What the handlers answer for the document's own examples is checked at the
functional level (tests/functional/test_openapi_examples.py); every answer of the running stack, by
Schemathesis (test_fuzz.py).
"""

from __future__ import annotations

import ast
import re
import shutil
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

import photoveil.handlers.worker  # noqa: F401  (imports every error the worker can fail a job with)
from photoveil.adapters import jobs
from photoveil.adapters.mailer import _EMAIL_RE, MAX_EMAIL_LENGTH
from photoveil.dependencies import new_job_id
from photoveil.errors import PhotoVeilError
from photoveil.imaging.sizes import VARIANT_NAMES
from photoveil.local.template import read_stack_spec
from photoveil.service import status as status_view
from photoveil.service.owner import MAX_EDITS, MAX_REGIONS, MIN_REGION_SIDE
from photoveil.service.owner_tokens import new_owner_token
from photoveil.service.reports import MAX_NOTE_CHARS, REASONS
from photoveil.service.status import JOB_ID_RE
from photoveil.service.uploads import MAX_BODY_BYTES, UPLOAD_FIELDS
from photoveil.settings import ALLOWED_CONTENT_TYPES
from photoveil_dev.contract import (
    DOCUMENT,
    REPO,
    TEMPLATE,
    accepted_examples,
    documented_error_codes,
    load_document,
    operations,
    refused_examples,
    request_schema,
    resolve,
    response_schema,
    route_drift,
    template_routes,
    validator,
)

SRC = REPO / "src" / "photoveil"
# The modules whose RequestErrors reach an HTTP client (the API function and the domain it calls).
ANSWERING = sorted([SRC / "handlers" / "api.py", *(SRC / "service").glob("*.py")])
# Answered only to an event API Gateway never sends (a direct invoke of another route): not the API's.
NOT_THE_APIS = {(HTTPStatus.NOT_FOUND, "not_found")}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load_document()


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    return document["components"]["schemas"][name]


# ---------------------------------------------------------------- the document itself
def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises, naming the path of what is wrong


def test_the_validator_refuses_a_broken_document(document: dict[str, Any]) -> None:
    broken = {**document, "paths": {"/uploads": {"post": {"responses": {"201": {}}}}}}  # no description
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


# ---------------------------------------------------------------- routes
def test_its_operations_are_exactly_the_templates_http_api_routes(document: dict[str, Any]) -> None:
    drift = route_drift(document)
    assert drift == {key: [] for key in drift}, f"openapi.yaml and template.yaml differ: {drift}"
    assert set(template_routes().values()) == {"ApiFunction"}


def test_a_route_added_to_the_template_alone_is_named(document: dict[str, Any], tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    shutil.copy(TEMPLATE, template)
    text = template.read_text()
    added = "        ReportJob:\n          Type: HttpApi\n"
    assert added in text
    extra = (
        "        ListJobs:\n          Type: HttpApi\n          Properties:\n            ApiId: !Ref HttpApi\n"
    )
    extra += "            Path: /jobs\n            Method: GET\n"
    template.write_text(text.replace(added, extra + added))

    assert route_drift(document, template)["in template.yaml, not in openapi.yaml"] == ["GET /jobs"]


def test_every_operation_has_a_unique_id_and_answers_its_errors_as_json(document: dict[str, Any]) -> None:
    ids = [op.operation_id for op in operations(document)]
    assert len(ids) == len(set(ids)), ids
    for op in operations(document):
        for status in op.spec["responses"]:
            if int(status) >= 400:
                assert response_schema(document, op, int(status)) is not None, f"{op.route} {status}"


# ---------------------------------------------------------------- the handlers' limits
def test_the_upload_request_has_the_handlers_limits(document: dict[str, Any]) -> None:
    upload = schema(document, "UploadRequest")
    assert set(upload["properties"]) == UPLOAD_FIELDS
    assert upload["additionalProperties"] is False
    assert tuple(schema(document, "ContentType")["enum"]) == ALLOWED_CONTENT_TYPES
    max_bytes = int(read_stack_spec(TEMPLATE).env["MAX_UPLOAD_BYTES"])
    assert (upload["properties"]["size"]["minimum"], upload["properties"]["size"]["maximum"]) == (
        1,
        max_bytes,
    )
    address = upload["properties"]["email"]["anyOf"][-1]
    assert address["maxLength"] == MAX_EMAIL_LENGTH
    assert address["pattern"] == f"^{_EMAIL_RE.pattern}$"
    assert f"{MAX_BODY_BYTES:,} bytes" in document["info"]["description"]


def test_the_edit_request_has_the_handlers_limits(document: dict[str, Any]) -> None:
    regions = schema(document, "EditRequest")["properties"]["regions"]
    assert (regions["minItems"], regions["maxItems"]) == (1, MAX_REGIONS)
    region = schema(document, "Region")["properties"]
    assert {name: (p["minimum"], p["maximum"]) for name, p in region.items()} == {
        "x": (0, 1),
        "y": (0, 1),
        "width": (MIN_REGION_SIDE, 1),
        "height": (MIN_REGION_SIDE, 1),
    }
    assert schema(document, "EditAccepted")["properties"]["edit"]["maximum"] == MAX_EDITS


def test_the_report_request_has_the_handlers_limits(document: dict[str, Any]) -> None:
    report = schema(document, "ReportRequest")["properties"]
    assert tuple(report["reason"]["enum"]) == REASONS
    assert report["note"]["maxLength"] == MAX_NOTE_CHARS


def test_ids_and_tokens_are_as_the_service_makes_them(document: dict[str, Any]) -> None:
    job_id = schema(document, "JobId")
    assert job_id["pattern"] == f"^{JOB_ID_RE.pattern}$"
    token = schema(document, "CreatedUpload")["properties"]["ownerToken"]["pattern"]
    for _ in range(20):  # random values: a few of each
        assert re.fullmatch(job_id["pattern"], new_job_id())
        assert re.fullmatch(token, new_owner_token()[0])


def test_the_job_status_shows_what_the_service_can_show(document: dict[str, Any]) -> None:
    view = schema(document, "JobStatus")["properties"]
    statuses = {jobs.AWAITING_UPLOAD, jobs.PROCESSING, jobs.DONE, jobs.FAILED, jobs.DELETED, jobs.WITHDRAWN}
    assert set(view["status"]["enum"]) == statuses
    assert tuple(view["variants"]["required"]) == VARIANT_NAMES
    # A failed job shows the code of the permanent error the worker failed it with, or what the view says.
    permanent = {error.code for error in _subclasses(PhotoVeilError) if error.permanent}
    shown = {status_view.NOT_FINISHED, status_view.EDIT_NOT_APPLIED, jobs.WITHDRAWN, "internal_error"}
    documented = set(view["error"]["properties"]["code"]["enum"])
    assert documented == permanent | shown, (
        f"undocumented: {sorted((permanent | shown) - documented)}; "
        f"documented, never shown: {sorted(documented - permanent - shown)}"
    )


def _subclasses(cls: type) -> list[type]:
    return [sub for child in cls.__subclasses__() for sub in (child, *_subclasses(child))]


# ---------------------------------------------------------------- error codes
def test_every_error_code_the_code_answers_is_documented_and_no_other(document: dict[str, Any]) -> None:
    in_code: dict[int, set[str]] = {}
    for status, code in _answered_codes():
        if (status, code) not in NOT_THE_APIS:
            in_code.setdefault(int(status), set()).add(code)
    in_document = documented_error_codes(document)
    undocumented = {
        s: sorted(c - in_document.get(s, set())) for s, c in in_code.items() if c - in_document.get(s, set())
    }
    unanswered = {
        s: sorted(c - in_code.get(s, set())) for s, c in in_document.items() if c - in_code.get(s, set())
    }
    assert in_code == in_document, (
        f"in the code, not in openapi.yaml: {undocumented}; in openapi.yaml, not in the code: {unanswered}"
    )


def _answered_codes() -> set[tuple[HTTPStatus, str]]:
    """(status, code) of every RequestError the answering modules raise, read from their source:
    ``bad_request("code", ...)`` is a 400, ``RequestError(HTTPStatus.X, "code", ...)`` and
    ``_error(HTTPStatus.X, "code", ...)`` say theirs; a code may be a module-level constant."""
    found: set[tuple[HTTPStatus, str]] = set()
    for path in ANSWERING:
        tree = ast.parse(path.read_text())
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name) and isinstance(node.value.value, str)
        }
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            found |= _answer(call, constants)
    return found


def _answer(call: ast.Call, constants: dict[str, str]) -> set[tuple[HTTPStatus, str]]:
    def text(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    func, args = call.func, call.args
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if name == "bad_request" and args and (code := text(args[0])):
        return {(HTTPStatus.BAD_REQUEST, code)}
    # RequestError(...), the handler's _error(...), and a RequestError subclass's super().__init__(...)
    status = args[0] if args and name in ("RequestError", "_error", "__init__") else None
    if isinstance(status, ast.Attribute) and len(args) > 1 and (code := text(args[1])):
        return {(HTTPStatus[status.attr], code)}
    return set()


def test_the_source_reader_finds_the_codes_it_must() -> None:
    codes = _answered_codes()
    assert (HTTPStatus.TOO_MANY_REQUESTS, "rate_limited") in codes  # a constant, in quotas.py
    assert (HTTPStatus.UNAUTHORIZED, "missing_token") in codes  # RequestError(...) over several lines
    assert (HTTPStatus.BAD_REQUEST, "invalid_json") in codes  # bad_request(...)
    assert (HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error") in codes  # _error(...) in the handler


# ---------------------------------------------------------------- the examples
def test_accepted_examples_fit_their_schemas(document: dict[str, Any]) -> None:
    examples = list(accepted_examples(document))
    assert {e.operation.operation_id for e in examples} == {"createUpload", "editJob", "reportJob"}
    for example in examples:
        errors = [
            e.message
            for e in validator(document, request_schema(document, example.operation)).iter_errors(
                example.body
            )
        ]
        assert not errors, f"{example.operation.operation_id} example {example.name}: {errors}"


# JSON Schema cannot add x and width: a region past the photo's edge fits the schema and is refused.
FITS_THE_SCHEMA_BUT_REFUSED = {("editJob", "outside")}


def test_refused_examples_are_refused_by_the_schema_too(document: dict[str, Any]) -> None:
    for example in refused_examples(document):
        key = (example.operation.operation_id, example.name)
        valid = validator(document, request_schema(document, example.operation)).is_valid(example.body)
        assert valid == (key in FITS_THE_SCHEMA_BUT_REFUSED), f"{key}: the schema says valid={valid}"


def test_every_response_example_fits_its_schema(document: dict[str, Any]) -> None:
    checked = 0
    for op in operations(document):
        for status, response in op.spec["responses"].items():
            content = resolve(document, response).get("content") or {}
            for name, example in (content.get("application/json", {}).get("examples") or {}).items():
                answer = response_schema(document, op, int(status))
                assert answer is not None
                errors = [e.message for e in validator(document, answer).iter_errors(example["value"])]
                assert not errors, f"{op.operation_id} {status} example {name}: {errors}"
                checked += 1
    assert checked >= 10


def test_the_readme_points_to_the_document() -> None:
    readme = (REPO / "README.md").read_text()
    assert f"[{DOCUMENT.name}]({DOCUMENT.name})" in readme
