"""openapi.yaml, the HTTP API's contract, read the way the tests compare it with the code.

The tests that keep the document and the code together (tests/contract/, and
tests/functional/test_openapi_examples.py) share these readers: its operations beside template.yaml's
HttpApi routes, its schemas as JSON Schema validators, its examples (accepted ones, and refused ones
with the answer they get), and the error codes each response allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker

from photoveil.local.template import read_stack_spec

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "openapi.yaml"
TEMPLATE = REPO / "template.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The extension a refused example carries: the request body that gets the example's answer.
REQUEST_BODY = "x-request-body"
JSON = "application/json"

Route = tuple[str, str]  # ("POST", "/jobs/{jobId}/regions")


@cache
def load_document(path: Path = DOCUMENT) -> dict[str, Any]:
    """The document as data (cached: callers must not change it)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Operation:
    method: str  # "POST"
    path: str  # "/jobs/{jobId}/regions"
    spec: dict[str, Any]  # the Operation Object

    @property
    def operation_id(self) -> str:
        return str(self.spec["operationId"])

    @property
    def route(self) -> Route:
        return self.method, self.path


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of the document, in its order."""
    return [
        Operation(method.upper(), path, spec)
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if method in METHODS
    ]


def operation(document: dict[str, Any], operation_id: str) -> Operation:
    """The operation with this operationId (KeyError if there is none)."""
    found = [op for op in operations(document) if op.operation_id == operation_id]
    if not found:
        raise KeyError(f"openapi.yaml has no operation {operation_id}")
    return found[0]


def template_routes(template: Path = TEMPLATE) -> dict[Route, str]:
    """template.yaml's HttpApi routes, read by the local stack's own template reader: route -> function."""
    return {(r.method, r.path): r.function for r in read_stack_spec(template).http_api.routes}


def route_drift(document: dict[str, Any], template: Path = TEMPLATE) -> dict[str, list[str]]:
    """What one has and the other lacks, as "METHOD /path" lines (both lists empty when they agree)."""
    documented = {op.route for op in operations(document)}
    routed = set(template_routes(template))
    return {
        "in template.yaml, not in openapi.yaml": sorted(f"{m} {p}" for m, p in routed - documented),
        "in openapi.yaml, not in template.yaml": sorted(f"{m} {p}" for m, p in documented - routed),
    }


def resolve(document: dict[str, Any], node: Any) -> Any:
    """NODE with its local ``$ref`` ("#/components/...") followed, as often as it takes."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) for SCHEMA, whose "#/components/..."
    references resolve in the document; formats (uri, date-time) are checked too."""
    return Draft202012Validator(
        {**schema, "components": document["components"]}, format_checker=FormatChecker()
    )


def request_schema(document: dict[str, Any], op: Operation) -> dict[str, Any]:
    body = resolve(document, op.spec["requestBody"])
    return body["content"][JSON]["schema"]


def response_schema(document: dict[str, Any], op: Operation, status: int) -> dict[str, Any] | None:
    """The JSON body schema of OP's answer STATUS; None if that answer has no body."""
    response = resolve(document, op.spec["responses"][str(status)])
    content = response.get("content")
    return content[JSON]["schema"] if content else None


def response_headers(document: dict[str, Any], op: Operation, status: int) -> dict[str, dict[str, Any]]:
    """OP's answer STATUS's headers, lower-cased name -> Header Object."""
    response = resolve(document, op.spec["responses"][str(status)])
    return {name.lower(): resolve(document, h) for name, h in (response.get("headers") or {}).items()}


@dataclass(frozen=True)
class Example:
    operation: Operation
    name: str
    body: Any  # the request body
    status: int | None = None  # refused examples: the answer's status...
    answer: Any = None  # ...and its body


def accepted_examples(document: dict[str, Any]) -> Iterator[Example]:
    """The request bodies each operation documents as taken."""
    for op in operations(document):
        if "requestBody" not in op.spec:
            continue
        media = resolve(document, op.spec["requestBody"])["content"][JSON]
        for name, example in (media.get("examples") or {}).items():
            yield Example(op, name, resolve(document, example)["value"])


def refused_examples(document: dict[str, Any]) -> Iterator[Example]:
    """The requests each operation documents as refused, with the answer (status, body) they get."""
    for op in operations(document):
        for status, response in op.spec["responses"].items():
            content = resolve(document, response).get("content") or {}
            for name, example in (content.get(JSON, {}).get("examples") or {}).items():
                example = resolve(document, example)
                if REQUEST_BODY in example:
                    yield Example(op, name, example[REQUEST_BODY], int(status), example["value"])


def error_codes(document: dict[str, Any], schema: Any) -> set[str]:
    """The ``error.code`` values an error body schema allows (through $ref, allOf, anyOf, oneOf)."""
    schema = resolve(document, schema)
    if not isinstance(schema, dict):
        return set()
    code = schema.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
    codes = set(code.get("enum", []))
    for keyword in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(keyword, []):
            codes |= error_codes(document, part)
    return codes


def documented_error_codes(document: dict[str, Any], op: Operation) -> dict[int, set[str]]:
    """The error codes OP's answers allow, by HTTP status (statuses whose bodies have no code left out)."""
    by_status: dict[int, set[str]] = {}
    for status in (s for s in op.spec["responses"] if int(s) >= 400):
        schema = response_schema(document, op, int(status))
        codes = error_codes(document, schema) if schema is not None else set()
        if codes:
            by_status[int(status)] = codes
    return by_status
