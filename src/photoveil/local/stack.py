"""LocalStack: moto + gateway + pollers, started and stopped as one unit (in-process).

    with LocalStack(LocalOptions(port=0)) as stack:
        print(stack.urls.site)

Handlers run in this process, so ``start()`` sets the process environment (AWS endpoint, fake
credentials, the Settings variables) before the handlers create their cached clients. moto's state is
process-global too: run one LocalStack per process (the e2e tests start it as a subprocess).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from photoveil.local.emulator import FAKE_CREDENTIALS, MotoServer, Resources, create_resources, sent_emails
from photoveil.local.faults import Fault, FaultLayer
from photoveil.local.gateway import Gateway, GatewayConfig
from photoveil.local.poller import Handler, Poller
from photoveil.local.template import REGION, UPLOADS_ORIGIN, StackSpec, read_stack_spec

log = logging.getLogger("photoveil.local")

REPO = Path(__file__).resolve().parents[3]
API_HANDLER = "photoveil.handlers.api:lambda_handler"
BLUR_HANDLER = "photoveil.handlers.worker:lambda_handler"


class PortInUseError(OSError):
    """A port the stack must bind is taken."""


@dataclass
class LocalOptions:
    port: int = 3000  # gateway (site + API + /p/); 0 = any free port
    moto_port: int = 0  # 0 = any free port
    workers: int = 2
    host: str = "127.0.0.1"
    detector: str = "centerface"
    data_dir: Path = Path(".local")
    template: Path = REPO / "template.yaml"
    site_dir: Path = REPO / "frontend"
    sender_email: str = "photoveil@localhost"
    visibility_timeout_s: int | None = None  # override the template's (tests use a short one)
    faults: list[str] = field(default_factory=list)  # armed at start, e.g. "s3.GetObject:crash:1"
    allow_faults: bool = False  # expose /__faults on the gateway
    api_handler: str = API_HANDLER  # "module:function"
    blur_handler: str = BLUR_HANDLER
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Urls:
    site: str
    api: str
    moto: str
    outbox: str


def _import(spec: str) -> Handler:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class LocalStack:
    """The whole product on 127.0.0.1; ``start()`` / ``stop()`` or use as a context manager."""

    def __init__(self, options: LocalOptions | None = None) -> None:
        self.options = options or LocalOptions()
        spec = read_stack_spec(self.options.template)
        if self.options.visibility_timeout_s:
            # Resolved here, once: the queue moto makes, the API's view of its retries and the start-up
            # log all read this one spec.
            queue = replace(spec.queue, visibility_timeout_s=self.options.visibility_timeout_s)
            spec = replace(spec, queue=queue)
        self.spec: StackSpec = spec
        self.faults = FaultLayer()
        self.resources: Resources | None = None
        self._moto: MotoServer | None = None
        self._gateway: Gateway | None = None
        self._poller: Poller | None = None
        self._outbox_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._api: Handler | None = None
        self._api_lock = threading.Lock()
        self.urls: Urls | None = None
        self._clients: dict[str, Any] = {}

    # --- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Urls:
        """Bind both ports, start moto, create the resources, then the gateway and the workers."""
        opts = self.options
        if opts.host != "127.0.0.1":
            raise ValueError("the local stack binds 127.0.0.1 only")
        try:
            self._moto = MotoServer(opts.moto_port, opts.host)
        except OSError as exc:
            raise PortInUseError(
                f"moto port {opts.moto_port} on {opts.host} is not free ({exc.strerror}): "
                "pass --moto-port with another port (or 0 for any free one)"
            ) from exc
        config = GatewayConfig(
            site_dir=opts.site_dir,
            public_url="",
            routes=self.spec.api_routes,
            api_handler=self._api_handler,
            s3=self._client("s3"),
            blurred_bucket=self.spec.blurred_bucket,
            outbox=sent_emails,
            faults=self.faults if opts.allow_faults else None,
            site_headers={},  # filled in below, once moto's port is known
        )
        try:
            self._gateway = Gateway(config, opts.port, opts.host)
        except OSError as exc:
            self._moto.stop()
            raise PortInUseError(
                f"port {opts.port} on {opts.host} is already in use ({exc.strerror}): stop the "
                "program using it or pass --port (e.g. `make run PORT=3001`)"
            ) from exc
        site = f"http://{opts.host}:{self._gateway.port}"
        config.public_url = site
        self.urls = Urls(site=site, api=site, moto=self._moto.endpoint, outbox=f"{site}/outbox")
        # The API shares the site's origin here; the page's uploads go to moto (S3 on AWS).
        config.site_headers = {
            name: value.replace(UPLOADS_ORIGIN, self._moto.endpoint)
            for name, value in self.spec.site_headers.items()
        }
        self._moto.start()

        self._set_environment()
        self.resources = create_resources(
            self.spec,
            self._moto.endpoint,
            site_origin=site,
            sender_email=opts.sender_email,
        )
        # The fault layer hooks boto3's default session before the handlers build their clients.
        self.faults.install()
        for spec in opts.faults:
            self.faults.arm(Fault.parse(spec))

        self._client("dynamodb")  # created here: creating clients from threads at once is not safe
        blur = _import(opts.blur_handler)  # imports OpenCV and the model path now, not on the first photo
        self._poller = Poller(
            sqs=self._client("sqs"),
            queue_url=self.resources.queue_url,
            queue_arn=self.resources.queue_arn,
            region=REGION,
            handler=blur,
            function_name="BlurFunction",
            timeout_s=self.spec.blur_timeout_s,
            memory_mb=self.spec.blur_memory_mb,
            batch_size=self.spec.batch_size,
            batching_window_s=self.spec.batching_window_s,
            workers=opts.workers,
            on_job_done=self._job_done,
        )
        # State first: whoever sees the gateway answer may already look for stack.json.
        self._write_state()
        self._gateway.start()
        self._poller.start()
        self._outbox_thread = threading.Thread(target=self._watch_outbox, name="outbox", daemon=True)
        self._outbox_thread.start()
        return self.urls

    def stop(self) -> None:
        """Stop accepting, let in-flight photos finish, shut the servers, free the ports. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._gateway:
            self._gateway.stop()
        if self._poller:
            self._poller.stop(timeout_s=self.spec.blur_timeout_s)
        if self._outbox_thread:
            self._outbox_thread.join(timeout=5)
        if self._moto:
            self._moto.stop()
        (self.options.data_dir / "stack.json").unlink(missing_ok=True)

    # --- helpers ------------------------------------------------------------------------------------
    def _client(self, service: str) -> Any:
        """The stack's own client for SERVICE, created once (boto3 clients are thread-safe)."""
        # A private session: the fault layer hooks the default one (the handlers'), never these.
        assert self._moto is not None
        if service not in self._clients:
            session = boto3.session.Session(
                region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
            )
            self._clients[service] = session.client(
                service,
                endpoint_url=self._moto.endpoint,
                config=Config(retries={"mode": "standard", "max_attempts": 3}),
            )
        return self._clients[service]

    def _api_handler(self) -> Handler:
        # Imported on first request so a stack without handlers still serves the site.
        with self._api_lock:
            if self._api is None:
                self._api = _import(self.options.api_handler)
            return self._api

    def _set_environment(self) -> None:
        assert self._moto is not None and self.urls is not None
        env = dict(self.spec.env)
        env.update(
            {
                **FAKE_CREDENTIALS,
                "AWS_ENDPOINT_URL": self._moto.endpoint,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "JOBS_TABLE": self.spec.table,
                "UPLOADS_BUCKET": self.spec.uploads_bucket,
                "BLURRED_BUCKET": self.spec.blurred_bucket,
                "PUBLIC_BASE_URL": self.urls.site,
                "SENDER_EMAIL": self.options.sender_email,
                "DETECTOR": self.options.detector,
                # the queue as the emulator made it (tests shorten the visibility timeout)
                "QUEUE_VISIBILITY_TIMEOUT": str(self.spec.queue.visibility_timeout_s),
                "QUEUE_MAX_RECEIVE_COUNT": str(self.spec.queue.max_receive_count),
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
                "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines would drown the console
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
                "AWS_LAMBDA_FUNCTION_NAME": "photoveil-local",
            }
        )
        env.update(self.options.extra_env)
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            os.environ.pop(name, None)  # never reach a real account from the local stack
        os.environ.update(env)
        try:  # cached settings from an earlier import must not win over the local environment
            from photoveil.settings import get_settings

            get_settings.cache_clear()
        except ImportError:
            pass

    def _job_done(self, job_id: str, elapsed_s: float) -> None:
        """Log how a photo ended, from the jobs table (the handler's own record of it)."""
        try:
            item = (
                self._client("dynamodb")
                .get_item(TableName=self.spec.table, Key={self.spec.table_key: {"S": job_id}})
                .get("Item", {})
            )
        except Exception:
            item = {}
        plain = {k: next(iter(v.values())) for k, v in item.items()}
        status = plain.get("status", "?")
        faces = plain.get("faces", plain.get("faceCount", plain.get("face_count", "?")))
        detail = (
            f"{faces} face(s) blurred"
            if status == "done"
            else f"error {plain.get('errorCode') or plain.get('error', '')}"
        )
        log.info("job %s: %s in %.0f ms (%s)", job_id, status, elapsed_s * 1000, detail)

    def _watch_outbox(self) -> None:
        """Print each email moto's SES accepted and keep a copy in DATA_DIR/outbox/."""
        seen = 0
        outbox = self.options.data_dir / "outbox"
        while not self._stopping.wait(0.5):
            emails = sent_emails()
            for email in emails[seen:]:
                outbox.mkdir(parents=True, exist_ok=True)
                name = f"{time.strftime('%Y%m%dT%H%M%S')}-{email['id']}.json"
                (outbox / name).write_text(json.dumps(email, indent=2, default=str))
                log.info(
                    "email to %s: %r (%s)\n%s",
                    ", ".join(map(str, email["to"])),
                    email["subject"],
                    outbox / name,
                    email["body"] or email["raw"],
                )
            seen = len(emails)

    def _write_state(self) -> None:
        """DATA_DIR/stack.json lets `photoveil local redrive` and scripts find the running stack."""
        assert self.urls is not None and self.resources is not None
        self.options.data_dir.mkdir(parents=True, exist_ok=True)
        (self.options.data_dir / "stack.json").write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "site": self.urls.site,
                    "moto": self.urls.moto,
                    "queueUrl": self.resources.queue_url,
                    "dlqUrl": self.resources.dlq_url,
                    "uploadsBucket": self.spec.uploads_bucket,
                    "blurredBucket": self.spec.blurred_bucket,
                    "jobsTable": self.spec.table,
                },
                indent=2,
            )
        )
