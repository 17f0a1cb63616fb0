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
from photoveil.service import mail
from photoveil.service import status as status_view
from photoveil.service.owner import MAX_EDITS, MAX_REGIONS, MIN_REGION_SIDE
from photoveil.service.owner_tokens import new_owner_token
from photoveil.service.reports import MAX_NOTE_CHARS, REASONS
from photoveil.service.status import JOB_ID_RE
from photoveil.service.uploads import MAX_BODY_BYTES, UPLOAD_FIELDS
from photoveil.settings import ALLOWED_CONTENT_TYPES
from photoveil_dev.answers import Answer, Route, answering_modules, route, route_answers, unreached_answers
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


# ---------------------------------------------------------------- error codes, operation by operation
def test_each_operation_documents_exactly_the_error_codes_its_handler_can_answer(
    document: dict[str, Any],
) -> None:
    drift = error_code_drift(document, route_answers())
    assert not drift, "openapi.yaml and the code differ:\n" + "\n".join(drift)


def error_code_drift(document: dict[str, Any], answers: dict[Route, set[Answer]]) -> list[str]:
    """One line per (operation, status) whose codes differ between what its handler can answer (ANSWERS,
    read from the source) and what openapi.yaml allows that operation."""
    drift = []
    for op in operations(document):
        in_code: dict[int, set[str]] = {}
        for status, code in answers.get(route(op.method, op.path), set()):
            in_code.setdefault(int(status), set()).add(code)
        in_document = documented_error_codes(document, op)
        for status in sorted(set(in_code) | set(in_document)):
            said, answered = in_document.get(status, set()), in_code.get(status, set())
            if said != answered:
                drift.append(
                    f"{op.operation_id} {status}: answered, not documented {sorted(answered - said)}; "
                    f"documented, never answered {sorted(said - answered)}"
                )
    return drift


def test_every_answer_in_the_source_is_reached_by_a_route() -> None:
    # The reader follows names; an answer it cannot reach from any route is dead code or a call it cannot
    # follow (say, a method of an object), and then the comparison above would miss it.
    assert unreached_answers() == {}


def test_the_source_reader_finds_the_codes_it_must() -> None:
    answers = route_answers()
    report, delete = answers[route("POST", "/jobs/{jobId}/report")], answers[route("DELETE", "/jobs/{jobId}")]
    assert (HTTPStatus.TOO_MANY_REQUESTS, "rate_limited") in report  # a constant, in a class, in quotas.py
    assert (HTTPStatus.UNAUTHORIZED, "missing_token") in delete  # RequestError(...) over several lines
    assert (HTTPStatus.BAD_REQUEST, "invalid_json") in report  # bad_request(...), in the handler module
    assert (HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error") in report  # the handler's error handler
    assert (HTTPStatus.CONFLICT, "changed_meanwhile") in delete and not any(s == 409 for s, _ in report)
    # The status route refers to the quota error only to look at it (isinstance), and charges nothing.
    assert not any(status == 429 for status, _ in answers[route("GET", "/jobs/{jobId}")])
    assert (HTTPStatus.NOT_FOUND, "not_found") not in set().union(*answers.values())  # direct invokes only


def test_a_code_answered_by_one_operation_and_documented_for_another_is_named(
    document: dict[str, Any], tmp_path: Path
) -> None:
    """A report answering 409 changed_meanwhile (documented for DELETE only) is drift for reportJob."""
    src = tmp_path / "src"
    for name, path in answering_modules().items():
        copy = src / Path(*name.split(".")).with_suffix(".py")
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
    reports = src / "photoveil" / "service" / "reports.py"
    text = reports.read_text()
    counted = "        counted = _record_report(job, request, source_ip, deps)\n"
    assert counted in text
    conflict = '        raise RequestError(HTTPStatus.CONFLICT, "changed_meanwhile", "try again")\n'
    reports.write_text(text.replace(counted, conflict + counted))

    assert (
        "reportJob 409: answered, not documented ['changed_meanwhile']; documented, never answered []"
        in error_code_drift(document, route_answers(src))
    )


def test_email_refusals_are_the_mail_services_own(document: dict[str, Any]) -> None:
    refused = schema(document, "CreatedUpload")["properties"]["emailRefused"]["properties"]["code"]
    assert set(refused["enum"]) == _refusal_codes() == {mail.SUPPRESSED, mail.RATE_LIMITED}


def _refusal_codes() -> set[str]:
    """The ``"code"`` of every refusal service.mail.refusal_at_upload returns (a string or a constant)."""
    tree = ast.parse(Path(mail.__file__).read_text())
    (function,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "refusal_at_upload"]
    codes = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code":
                    codes.add(
                        getattr(mail, value.id) if isinstance(value, ast.Name) else ast.literal_eval(value)
                    )
    return codes


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
