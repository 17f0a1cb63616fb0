"""The local gateway: the site, /config.json, the HTTP API (as real v2 events), /p/* and the outbox.

It stands in for CloudFront (site + /p/* from the BlurredBucket) and API Gateway (routes from the
template turned into payload-format-2.0 events for the real ApiFunction handler).
"""

from __future__ import annotations

import html
import json
import logging
import mimetypes
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from photoveil.local.events import LambdaContext, http_api_event, http_api_response, match_route
from photoveil.local.faults import Fault, FaultLayer

log = logging.getLogger("photoveil.local")

Handler = Callable[[dict[str, Any], Any], Any]


class GatewayConfig:
    """What the gateway serves; filled by LocalStack."""

    def __init__(
        self,
        *,
        site_dir: Path,
        public_url: str,
        routes: list[tuple[str, str]],
        api_handler: Callable[[], Handler],
        s3: Any,
        blurred_bucket: str,
        outbox: Callable[[], list[dict[str, Any]]],
        faults: FaultLayer | None,
        site_headers: dict[str, str],
    ) -> None:
        self.site_dir = site_dir.resolve()
        self.public_url = public_url
        self.routes = routes
        self.api_handler = api_handler
        self.s3 = s3
        self.blurred_bucket = blurred_bucket
        self.outbox = outbox
        self.faults = faults
        # What CloudFront adds to the site and /p/* (the template's SiteHeadersPolicy, CSP included): the
        # page must work under it locally too.
        self.site_headers = site_headers


class _Handler(BaseHTTPRequestHandler):
    server_version = "PhotoVeilLocal"
    protocol_version = "HTTP/1.1"
    config: GatewayConfig

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("gateway: " + format, *args)

    # --- plumbing -------------------------------------------------------------------------------
    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(
            status,
            {"Content-Type": "application/json", "Cache-Control": "no-store"},
            json.dumps(value).encode(),
        )

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        try:
            if path == "/config.json" and self.command in ("GET", "HEAD"):
                return self._json(200, {"apiUrl": self.config.public_url})
            if path == "/__faults":
                return self._faults()
            if path.startswith("/p/") and self.command in ("GET", "HEAD"):
                return self._photo(path[1:])
            if path in ("/outbox", "/outbox.json") and self.command in ("GET", "HEAD"):
                return self._outbox(path.endswith(".json"))
            if self.command == "OPTIONS" or match_route(self.config.routes, self.command, path):
                return self._api(path, query)
            if self.command in ("GET", "HEAD"):
                return self._static(path)
            return self._json(404, {"message": "Not Found"})
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    # --- routes ---------------------------------------------------------------------------------
    def _api(self, path: str, query: str) -> None:
        body = self._body()
        if self.command == "OPTIONS":
            # HTTP API answers CORS preflights itself (the function never sees them). The site and the
            # API share one origin locally, so browsers never need one; answer for completeness.
            return self._send(
                204,
                {
                    "Access-Control-Allow-Origin": self.config.public_url,
                    "Access-Control-Allow-Methods": "GET,POST,OPTIONS",
                    "Access-Control-Allow-Headers": "content-type",
                    "Access-Control-Max-Age": "600",
                },
                b"",
            )
        matched = match_route(self.config.routes, self.command, path)
        assert matched is not None
        route_key, params = matched
        # API Gateway adds these; the API builds its own absolute URLs (statusUrl) from them.
        forwarded = [
            ("x-forwarded-for", self.client_address[0]),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-port", str(self.server.server_address[1])),
        ]
        headers = [(k, v) for k, v in self.headers.items() if not k.lower().startswith("x-forwarded-")]
        event = http_api_event(
            method=self.command,
            raw_path=path,
            raw_query=query,
            headers=headers + forwarded,
            body=body,
            source_ip=self.client_address[0],
            domain_name=self.headers.get("Host", "127.0.0.1"),
            route_key=route_key,
            path_parameters=params,
        )
        try:
            result = self.config.api_handler()(
                event, LambdaContext(function_name="ApiFunction", timeout_s=10)
            )
        except Exception:
            # HTTP API turns a function error into this exact response.
            log.error("ApiFunction failed on %s %s:\n%s", self.command, path, traceback.format_exc())
            return self._json(500, {"message": "Internal Server Error"})
        status, headers, data = http_api_response(result)
        if route_key.startswith("POST") and status < 300:
            try:
                job = json.loads(data).get("jobId")
                log.info("job %s: upload URL presigned", job)
            except (ValueError, AttributeError):
                pass
        self._send(status, headers, data)

    def _photo(self, key: str) -> None:
        # Only p/{jobId}.jpg: the CloudFront behaviour maps /p/* onto the BlurredBucket and nothing else.
        try:
            obj = self.config.s3.get_object(Bucket=self.config.blurred_bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "AccessDenied"):
                return self._send(404, {"Content-Type": "text/plain"}, b"Not Found")
            raise
        data = obj["Body"].read()
        self._send(
            200,
            {
                "Content-Type": obj.get("ContentType") or "image/jpeg",
                "Cache-Control": obj.get("CacheControl") or "public, max-age=86400",
                "ETag": obj.get("ETag", ""),
                **self.config.site_headers,
            },
            data,
        )

    def _outbox(self, as_json: bool) -> None:
        emails = self.config.outbox()
        if as_json:
            return self._json(200, {"emails": emails})
        rows = (
            "".join(
                f"<article><h2>{html.escape(str(e['subject']))}</h2><p>From {html.escape(str(e['from']))} "
                f"to {html.escape(', '.join(map(str, e['to'])))}</p>"
                f"<pre>{html.escape(str(e['body'] or e['raw']))}"
                "</pre></article>"
                for e in reversed(emails)
            )
            or "<p>No email sent yet.</p>"
        )
        page = (
            f"<!doctype html><html lang=en><meta charset=utf-8><title>PhotoVeil local outbox</title>"
            f"<h1>Local outbox ({len(emails)})</h1><p>Emails the local stack's SES accepted; "
            f"nothing leaves this machine.</p>{rows}</html>"
        )
        self._send(
            200,
            {
                "Content-Type": "text/html; charset=utf-8",
                "Cache-Control": "no-store",
                **self.config.site_headers,
            },
            page.encode(),
        )

    def _faults(self) -> None:
        layer = self.config.faults
        if layer is None:
            return self._json(404, {"message": "Not Found (start with --allow-faults)"})
        if self.command == "POST":
            try:
                spec = json.loads(self._body() or b"{}")
                layer.arm(
                    Fault(str(spec["operation"]), str(spec.get("kind", "crash")), int(spec.get("count", 1)))
                )
            except (ValueError, KeyError, TypeError) as exc:
                return self._json(400, {"error": str(exc)})
        elif self.command == "DELETE":
            layer.clear()
        return self._json(200, layer.state())

    def _static(self, path: str) -> None:
        rel = path.lstrip("/") or "index.html"
        target = (self.config.site_dir / rel).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(self.config.site_dir) or not target.is_file():
            return self._send(404, {"Content-Type": "text/plain"}, b"Not Found")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "image/svg+xml"):
            ctype += "; charset=utf-8"
        self._send(
            200,
            {"Content-Type": ctype, "Cache-Control": "no-cache", **self.config.site_headers},
            target.read_bytes(),
        )


class Gateway:
    """A threading HTTP server bound to 127.0.0.1; raises OSError at construction if the port is taken."""

    def __init__(self, config: GatewayConfig, port: int, host: str = "127.0.0.1") -> None:
        handler = type("GatewayHandler", (_Handler,), {"config": config})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # shutdown() waits for serve_forever() to return: it would block forever if it never ran.
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
