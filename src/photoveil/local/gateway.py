"""The local gateway: CloudFront and API Gateway in one werkzeug app, plus the local-only pages.

As CloudFront: the site from the site folder, and each bucket-backed path (/p/*) from its bucket in
moto, with the response headers policy of the template. As API Gateway (HTTP API): the template's
routes, turned into payload format 2.0 events for the function behind each; the CORS preflight from its
CorsConfiguration. Local only: /config.json, /outbox, /outbox.json and /__faults.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.security import safe_join
from werkzeug.serving import WSGIRequestHandler
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

from photoveil.local.events import http_api_event, http_api_response
from photoveil.local.faults import Fault, FaultLayer, SimulatedCrash
from photoveil.local.specs import CdnBehaviour, CdnSpec, HttpApiSpec, RouteSpec
from photoveil.service.site import with_page_policy

log = logging.getLogger("photoveil.local")

Invoke = Callable[[str, dict[str, Any]], Any]  # (function logical id, event) -> handler result
# An HTTP API's payload quota (API Gateway quotas, "Payload size 10 MB", not adjustable): a larger request
# body is answered 413 by API Gateway itself and never reaches the function.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024


@dataclass
class GatewayConfig:
    site_dir: Path
    site_url: str
    api: HttpApiSpec
    cdn: CdnSpec
    invoke: Invoke
    s3: Any  # the stack's own client for moto
    outbox: Callable[[], list[dict[str, Any]]]
    faults: FaultLayer | None  # None: /__faults is off


class RequestLog(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("gateway: %s %s %s", self.command, self.path, code)


def _json(status: int, value: Any) -> Response:
    return Response(
        json.dumps(value), status, mimetype="application/json", headers={"Cache-Control": "no-store"}
    )


def _not_found_text() -> Response:
    return Response("Not Found", 404, mimetype="text/plain")


def _rule_path(template_path: str) -> str:
    """An HTTP API path as a werkzeug rule: {name} is one segment, a greedy {name+} the rest."""
    return re.sub(r"\{(\w+)\}", r"<\1>", re.sub(r"\{(\w+)\+\}", r"<path:\1>", template_path))


class Gateway:
    """The WSGI app; serve it with :class:`photoveil.local.serving.ServerThread`."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.urls = Map(self._rules(), strict_slashes=False, merge_slashes=False)

    def _rules(self) -> list[Rule]:
        rules = [
            Rule("/config.json", methods=["GET"], endpoint=self._site_config),
            Rule("/outbox", methods=["GET"], endpoint=self._outbox_page),
            Rule("/outbox.json", methods=["GET"], endpoint=self._outbox_json),
            Rule("/__faults", methods=["GET", "POST", "DELETE"], endpoint=self._faults),
        ]
        for behaviour in self.config.cdn.behaviours:
            prefix = behaviour.path_pattern.removesuffix("/*")
            endpoint = partial(self._bucket_object, behaviour)
            rules.append(Rule(f"/{prefix}/<path:key>", methods=["GET"], endpoint=endpoint))
        for route in self.config.api.routes:
            methods = None if route.method == "ANY" else [route.method]
            rules.append(Rule(_rule_path(route.path), methods=methods, endpoint=partial(self._api, route)))
        rules.append(Rule("/", methods=["GET"], endpoint=self._site_file, defaults={"path": ""}))
        rules.append(Rule("/<path:path>", methods=["GET"], endpoint=self._site_file))
        return rules

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self._dispatch(request)(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        if request.method == "OPTIONS" and self.config.api.cors:
            return self._preflight(request)
        try:
            # Routed on the path as sent, as API Gateway does: an encoded "/" stays inside its segment.
            endpoint, arguments = self.urls.bind_to_environ(request.environ).match(_raw_path(request))
        except (NotFound, MethodNotAllowed):
            # What HTTP API answers for a path or a method it does not route.
            return _json(404, {"message": "Not Found"})
        return endpoint(request, **arguments)

    # --- API Gateway ------------------------------------------------------------------------------
    def _api(self, route: RouteSpec, request: Request, **path_parameters: str) -> Response:
        if route.method not in (request.method, "ANY"):  # werkzeug lets HEAD through GET rules
            return _json(404, {"message": "Not Found"})
        if (request.content_length or 0) > MAX_PAYLOAD_BYTES or len(request.get_data()) > MAX_PAYLOAD_BYTES:
            return _json(413, {"message": "Request Too Large"})
        event = http_api_event(
            method=request.method,
            raw_path=_raw_path(request),
            raw_query=request.query_string.decode(),
            headers=_forwarded_headers(request),
            body=request.get_data(),
            source_ip=request.remote_addr or "127.0.0.1",
            domain_name=request.host,
            route_key=route.key,
            path_parameters=path_parameters,
        )
        try:
            result = self.config.invoke(route.function, event)
        except (Exception, SimulatedCrash):
            # HTTP API turns a function error (or a crashed sandbox) into this exact response.
            log.exception("%s failed on %s %s", route.function, request.method, request.path)
            return _json(500, {"message": "Internal Server Error"})
        status, headers, data = http_api_response(result)
        if route.method == "POST" and status < 300:
            log.info("job %s: upload URL presigned", _job_id(data))
        response = Response(data, status, headers=headers)
        if "content-type" not in headers:
            del response.headers["Content-Type"]  # werkzeug's default; HTTP API adds none
        return response

    def _preflight(self, request: Request) -> Response:
        """HTTP API answers CORS preflights itself, from the API's CorsConfiguration."""
        cors = self.config.api.cors or {}
        response = Response(status=204)
        for setting, header in _PREFLIGHT_HEADERS.items():
            if setting in cors:
                value = cors[setting]
                response.headers[header] = ",".join(value) if isinstance(value, list) else str(value)
        origin = request.headers.get("Origin")
        if origin and {origin, "*"} & set(cors.get("AllowOrigins", [])):
            response.headers["Access-Control-Allow-Origin"] = origin
        return response

    # --- CloudFront -------------------------------------------------------------------------------
    def _site_file(self, request: Request, path: str) -> Response:
        name = unquote(path) or "index.html"
        try:
            response = send_from_directory(self.config.site_dir, name, request.environ)
        except NotFound:
            return _not_found_text()
        if name.endswith(".html") and self.config.cdn.page_policy and response.status_code == 200:
            # As the site publisher writes the pages into the bucket (service.site.publish_site).
            response.direct_passthrough = False
            page = with_page_policy(response.get_data(), self.config.cdn.page_policy)
            response = Response(page, response.status_code, mimetype="text/html")
        response.headers.update(self.config.cdn.headers)
        return response

    def _bucket_object(self, behaviour: CdnBehaviour, request: Request, key: str) -> Response:
        full_key = safe_join(behaviour.path_pattern.removesuffix("/*"), unquote(key))
        if full_key is None:
            return _not_found_text()
        try:
            found = self.config.s3.get_object(Bucket=behaviour.bucket, Key=full_key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "AccessDenied"):
                return self._not_found_page()
            raise
        response = Response(found["Body"].read(), mimetype=found.get("ContentType"))
        if "CacheControl" in found:
            response.headers["Cache-Control"] = found["CacheControl"]
        response.set_etag(found["ETag"].strip('"'))
        response.last_modified = found["LastModified"]
        response.headers.update(behaviour.headers)
        return response.make_conditional(request)

    def _not_found_page(self) -> Response:
        """What CloudFront answers for a missing photo: the template's error page, as a 404."""
        page = self.config.cdn.not_found_page
        path = safe_join(str(self.config.site_dir), page.lstrip("/")) if page else None
        if path is None or not Path(path).is_file():
            return _not_found_text()
        response = Response(Path(path).read_bytes(), 404, mimetype="text/html")
        response.headers.update(self.config.cdn.headers)
        return response

    # --- local only -------------------------------------------------------------------------------
    def _site_config(self, request: Request) -> Response:
        return _json(200, {"apiUrl": self.config.site_url})

    def _outbox_json(self, request: Request) -> Response:
        return _json(200, {"emails": self.config.outbox()})

    def _outbox_page(self, request: Request) -> Response:
        emails = self.config.outbox()
        rows = "".join(_email_html(email) for email in reversed(emails)) or "<p>No email sent yet.</p>"
        page = (
            f"<!doctype html><html lang=en><meta charset=utf-8><title>PhotoVeil local outbox</title>"
            f"<h1>Local outbox ({len(emails)})</h1><p>Emails the local stack's SES accepted; "
            f"nothing leaves this machine.</p>{rows}</html>"
        )
        response = Response(page, mimetype="text/html", headers={"Cache-Control": "no-store"})
        response.headers.update(self.config.cdn.headers)
        return response

    def _faults(self, request: Request) -> Response:
        layer = self.config.faults
        if layer is None:
            return _json(404, {"message": "Not Found (start with --allow-faults)"})
        if request.method == "POST":
            try:
                spec = json.loads(request.get_data() or b"{}")
                layer.arm(
                    Fault(str(spec["operation"]), str(spec.get("kind", "crash")), int(spec.get("count", 1)))
                )
            except (ValueError, KeyError, TypeError) as exc:
                return _json(400, {"error": str(exc)})
        elif request.method == "DELETE":
            layer.clear()
        return _json(200, layer.state())


_PREFLIGHT_HEADERS = {
    "AllowMethods": "Access-Control-Allow-Methods",
    "AllowHeaders": "Access-Control-Allow-Headers",
    "MaxAge": "Access-Control-Max-Age",
}


def _raw_path(request: Request) -> str:
    return request.environ.get("RAW_URI", request.path).partition("?")[0]


def _forwarded_headers(request: Request) -> list[tuple[str, str]]:
    """The request's headers as API Gateway passes them on (the API builds its own URLs from these)."""
    return [
        *((k, v) for k, v in request.headers.items() if not k.lower().startswith("x-forwarded-")),
        ("x-forwarded-for", request.remote_addr or "127.0.0.1"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-port", str(request.environ["SERVER_PORT"])),
    ]


def _job_id(data: bytes) -> str:
    try:
        return str(json.loads(data).get("jobId"))
    except (ValueError, AttributeError):
        return "?"


def _email_html(email: dict[str, Any]) -> str:
    return (
        f"<article><h2>{html.escape(str(email['subject']))}</h2>"
        f"<p>From {html.escape(str(email['from']))} to {html.escape(', '.join(map(str, email['to'])))}</p>"
        f"<pre>{html.escape(str(email['body'] or email['raw']))}</pre></article>"
    )
