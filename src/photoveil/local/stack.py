"""LocalStack: moto + gateway + pollers, started and stopped as one unit (in-process).

    with LocalStack(LocalOptions(port=0)) as stack:
        print(stack.urls.site)

Handlers run in this process, so ``start()`` sets the process environment (AWS endpoint, fake
credentials, the Settings variables) first. Each function runs with the clients of its own IAM role, made
in moto from the template and enforced there (photoveil.local.iam); the stack's own clients sign as an
admin user. moto's state and its IAM switch are process-global too: run one LocalStack per process (the
e2e tests start it as a subprocess).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from photoveil.adapters.jobs import JobStore
from photoveil.dependencies import Dependencies
from photoveil.local.account import FAKE_CREDENTIALS, REGION, Credentials, client, identity_session
from photoveil.local.emulator import (
    QuietMotoRequestHandler,
    create_resources,
    moto_app,
    sent_emails,
    topic_notices,
)
from photoveil.local.faults import Fault, FaultLayer
from photoveil.local.formpost import FormPostAuthoriser
from photoveil.local.functions import LocalFunction
from photoveil.local.gateway import Gateway, GatewayConfig, RequestLog
from photoveil.local.iam import (
    RoleSpec,
    create_admin,
    create_operator,
    create_role,
    iam_enforced,
    read_function_roles,
    read_operator_policy,
)
from photoveil.local.poller import Poller
from photoveil.local.serving import ServerThread, listen, origin
from photoveil.local.specs import StackSpec
from photoveil.local.template import read_stack_spec

log = logging.getLogger("photoveil.local")

REPO = Path(__file__).resolve().parents[3]


class PortInUseError(OSError):
    """A port the stack must bind is taken."""


class ModerationNeedsCredentialsError(ValueError):
    """--moderation rekognition without AWS credentials to call Rekognition with."""


def own_rekognition_client() -> Any:
    """A Rekognition client with the caller's own AWS credentials and AWS's real endpoint."""
    import boto3

    from photoveil.imaging.detectors.rekognition import new_rekognition_client

    session = boto3.Session()
    if session.get_credentials() is None:
        raise ModerationNeedsCredentialsError(
            "--moderation rekognition calls Amazon Rekognition with your own AWS credentials, and none were "
            "found (AWS_PROFILE, AWS_ACCESS_KEY_ID...); without them run with --moderation off (the default)"
        )
    return new_rekognition_client(session)


def _serve(app: Any, sock: socket.socket, name: str, handler: Any) -> ServerThread:
    server = ServerThread(app, sock, name, handler)
    server.start()
    return server


@dataclass
class LocalOptions:
    port: int = 3000  # gateway (site + API + /p/); 0 = any free port
    moto_port: int = 0  # 0 = any free port
    workers: int = 2  # pollers per SQS-triggered function
    host: str = "127.0.0.1"
    detector: str = "centerface"
    # Moderation needs Rekognition, which moto lacks: off unless asked for, then with the caller's own AWS
    # credentials (read before the stack replaces the environment) for the Rekognition calls only.
    moderation: str = "off"
    data_dir: Path = Path(".local")
    template: Path = REPO / "template.yaml"
    site_dir: Path = REPO / "frontend"
    sender_email: str = "photoveil@localhost"
    visibility_timeout_s: int | None = None  # override the template's (tests use a short one)
    faults: list[str] = field(default_factory=list)  # armed at start, e.g. "s3.GetObject:crash:1"
    allow_faults: bool = False  # expose /__faults on the gateway
    iam: bool = True  # enforce each function's IAM role (False: to tell whether a failure is a denial)
    # Template parameters, as `sam deploy --parameter-overrides` gives them (tests raise the quotas).
    parameter_overrides: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Urls:
    site: str  # the site, the API and /p/, as CloudFront and API Gateway serve them
    moto: str
    outbox: str


class LocalStack:
    """The whole product on 127.0.0.1; ``start()`` / ``stop()`` or use as a context manager."""

    def __init__(self, options: LocalOptions | None = None) -> None:
        """Read the template (TemplateError if it is missing or unreadable); start nothing yet."""
        self.options = options or LocalOptions()
        # The parameters `sam deploy --parameter-overrides` would give for the local settings.
        parameters = {
            "Detector": self.options.detector,
            "SenderEmail": self.options.sender_email,
            "Moderation": self.options.moderation,
        }
        parameters |= self.options.parameter_overrides
        spec = read_stack_spec(self.options.template, parameters)
        if self.options.visibility_timeout_s:
            spec = spec.with_visibility_timeout(self.options.visibility_timeout_s)
        self.spec: StackSpec = spec
        self.roles: dict[str, RoleSpec] = read_function_roles(self.options.template, parameters)
        self.operator_policy = read_operator_policy(self.options.template, parameters)
        self.admin: Credentials | None = None
        self.operator: Credentials | None = None  # `photoveil admin` signs as it: exactly OperatorPolicy
        self.role_keys: dict[str, Credentials] = {}  # each function's role session, by function
        # Made now, before start() points every AWS client at moto.
        self._rekognition = own_rekognition_client() if self.options.moderation == "rekognition" else None
        self.faults = FaultLayer()
        self.urls: Urls | None = None
        self.queue_urls: dict[str, str] = {}  # by logical id
        self._sockets: list[socket.socket] = []
        self._moto: ServerThread | None = None
        self._gateway: ServerThread | None = None
        self._pollers: list[Poller] = []
        self._outbox_thread = threading.Thread(target=self._watch_outbox, name="outbox", daemon=True)
        self._stopping = threading.Event()
        self._clients: dict[str, Any] = {}
        self._enforcement = ExitStack()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Urls:
        """Bind both ports, start moto, create the resources, then the gateway and the workers."""
        moto_socket, gateway_socket = self._bind_ports()
        site = origin(gateway_socket)
        self.urls = Urls(site=site, moto=origin(moto_socket), outbox=f"{site}/outbox")
        self.spec = self.spec.localised(site_origin=site, emulator_origin=self.urls.moto)
        uploads = FormPostAuthoriser(moto_app())
        self._moto = _serve(uploads, moto_socket, "moto", QuietMotoRequestHandler)
        self._set_environment()
        self.admin, role_keys = self._create_identities()
        self.role_keys = role_keys
        uploads.identities = {keys.access_key_id: keys for keys in (self.admin, *role_keys.values())}
        uploads.forward_as = self.admin
        self.queue_urls = create_resources(
            self.spec, self.urls.moto, sender_email=self.options.sender_email, credentials=self.admin
        )
        functions = self._make_functions(role_keys)
        for fault in self.options.faults:
            self.faults.arm(Fault.parse(fault))
        self._pollers = self._make_pollers(functions, role_keys)
        # State first: whoever sees the gateway answer may already look for stack.json.
        self._write_state()
        self._gateway = _serve(
            Gateway(self._gateway_config(functions)), gateway_socket, "gateway", RequestLog
        )
        for poller in self._pollers:
            poller.start()
        self._outbox_thread.start()
        return self.urls

    def stop(self) -> None:
        """Stop accepting, let in-flight photos finish, shut the servers, free the ports. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._gateway:  # first: no new uploads while the photos in progress finish
            self._gateway.stop()
        for poller in self._pollers:
            poller.stop()
        if self._outbox_thread.is_alive():
            self._outbox_thread.join(timeout=5)
        if self._moto:
            self._moto.stop()
        self._enforcement.close()
        for sock in self._sockets:
            sock.close()  # a port bound before start() failed
        (self.options.data_dir / "stack.json").unlink(missing_ok=True)

    # --- start-up steps -----------------------------------------------------------------------------
    def _bind_ports(self) -> tuple[socket.socket, socket.socket]:
        host = self.options.host
        if host != "127.0.0.1":
            raise ValueError("the local stack binds 127.0.0.1 only")
        ports = (
            (
                "moto port",
                self.options.moto_port,
                "pass --moto-port with another port (or 0 for any free one)",
            ),
            (
                "port",
                self.options.port,
                "stop the program using it or pass --port (e.g. `make run PORT=3001`)",
            ),
        )
        for name, port, hint in ports:
            try:
                self._sockets.append(listen(host, port))
            except OSError as exc:
                raise PortInUseError(
                    f"{name} {port} on {host} is already in use ({exc.strerror}): {hint}"
                ) from exc
        return self._sockets[0], self._sockets[1]

    def _client(self, service: str) -> Any:
        """The stack's own client for SERVICE, signing as the admin, created once (thread-safe)."""
        assert self.urls is not None
        if service not in self._clients:
            self._clients[service] = client(service, self.urls.moto, self.admin)
        return self._clients[service]

    def _create_identities(self) -> tuple[Credentials, dict[str, Credentials]]:
        """The admin's keys and each function's role session (by function), then IAM enforced."""
        assert self.urls is not None
        iam, sts = client("iam", self.urls.moto), client("sts", self.urls.moto)
        admin = create_admin(iam)
        self.operator = create_operator(iam, self.operator_policy)
        role_keys = {function: create_role(iam, sts, role) for function, role in self.roles.items()}
        if self.options.iam:
            self._enforcement.enter_context(iam_enforced())  # moto runs in this process
        return admin, role_keys

    def _make_functions(self, role_keys: dict[str, Credentials]) -> dict[str, LocalFunction]:
        """Each function with the clients of its role, made here: creating clients from several threads
        at once is not safe. Imports every handler now (OpenCV and the model for the worker), not on the
        first request."""
        sessions = {function: identity_session(keys) for function, keys in role_keys.items()}
        self.faults.install(sessions.values())  # before the clients are made from them
        own = {"rekognition": self._rekognition} if self._rekognition is not None else {}
        return {
            lid: LocalFunction(spec, Dependencies.from_session(sessions[lid], **own))
            for lid, spec in self.spec.functions.items()
        }

    def _set_environment(self) -> None:
        assert self.urls is not None
        queue = self.spec.upload_queue
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            os.environ.pop(name, None)  # never reach a real account from the local stack
        os.environ.update(
            self.spec.env
            | FAKE_CREDENTIALS
            | {
                "AWS_ENDPOINT_URL": self.urls.moto,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "SENDER_EMAIL": self.options.sender_email,
                "DETECTOR": self.options.detector,
                "MODERATION": self.options.moderation,
                # The queue as made here (tests shorten its visibility): the API tells from these when a
                # photo's retries are over.
                "QUEUE_VISIBILITY_TIMEOUT": str(queue.visibility_timeout_s),
                "QUEUE_MAX_RECEIVE_COUNT": str(queue.redrive_policy["maxReceiveCount"]),
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
                "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines would drown the console
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
                "AWS_LAMBDA_FUNCTION_NAME": "photoveil-local",
            }
        )
        from photoveil.settings import get_settings

        get_settings.cache_clear()  # settings cached before now must not win over the local environment

    def _make_pollers(
        self, functions: dict[str, LocalFunction], role_keys: dict[str, Credentials]
    ) -> list[Poller]:
        assert self.urls is not None
        self._client("dynamodb")  # created here: creating clients from several threads at once is not safe
        return [
            Poller(
                # The event source mapping polls with the function's role (the fault layer never sees it).
                sqs=client("sqs", self.urls.moto, role_keys[function.name]),
                queue_url=self.queue_urls[self.spec.queue_with_arn(source.queue_arn).logical_id],
                source=source,
                function=function,
                workers=self.options.workers,
                on_job_done=self._job_done,
            )
            for function in functions.values()
            for source in function.spec.sqs_sources
        ]

    def _gateway_config(self, functions: dict[str, LocalFunction]) -> GatewayConfig:
        assert self.urls is not None
        # One invocation at a time per function behind the gateway, as in one Lambda execution environment:
        # the API's handler keeps the request in module state (Powertools' resolver, app.current_event), so
        # two requests in two threads could read each other's headers (a poll's missing owner token).
        environments = {name: threading.Lock() for name in functions}

        def invoke(function: str, event: dict[str, Any]) -> Any:
            with environments[function]:
                return functions[function].invoke(event)

        return GatewayConfig(
            site_dir=self.options.site_dir,
            site_url=self.urls.site,
            api=self.spec.http_api,
            cdn=self.spec.cdn,
            invoke=invoke,
            s3=self._client("s3"),
            outbox=self._outbox,
            faults=self.faults if self.options.allow_faults else None,
        )

    def _write_state(self) -> None:
        """DATA_DIR/stack.json lets `photoveil local redrive` and scripts find the running stack."""
        assert self.urls is not None
        queue = self.spec.upload_queue
        state = {
            "pid": os.getpid(),
            "site": self.urls.site,
            "moto": self.urls.moto,
            "queueUrl": self.queue_urls[queue.logical_id],
            "dlqUrl": self.queue_urls[self.spec.dead_letter_queue(queue).logical_id],
            "uploadsBucket": self.spec.uploads_bucket.name,
            "blurredBucket": self.spec.photos_bucket,
            "jobsTable": self.spec.jobs_table.name,
            "credentials": self.admin.as_json() if self.admin else None,  # the admin's, for scripts
            "operatorCredentials": self.operator.as_json() if self.operator else None,  # photoveil admin
            # What a function run elsewhere needs to act as the stack's own (`sam local invoke`, through
            # photoveil_dev.invoke): its role's keys, and the environment the template gives it here.
            "roles": {function: keys.as_json() for function, keys in self.role_keys.items()},
            "environment": {name: os.environ[name] for name in self.spec.env},
            "workers": self.options.workers,
        }
        self.options.data_dir.mkdir(parents=True, exist_ok=True)
        (self.options.data_dir / "stack.json").write_text(json.dumps(state, indent=2))

    # --- while running ------------------------------------------------------------------------------
    def _job_done(self, job_id: str, elapsed_s: float) -> None:
        """Log how a photo ended, from the jobs table (the handler's own record of it)."""
        try:
            job = JobStore(self.spec.jobs_table.name, client=self._client("dynamodb")).get(job_id)
        except (BotoCoreError, ClientError) as exc:
            log.warning(
                "job %s: finished in %.0f ms; its record could not be read (%s)",
                job_id,
                elapsed_s * 1000,
                exc,
            )
            return
        if job is None:
            detail, status = "no job record", "?"
        else:
            detail = f"{job.faces} face(s) blurred" if job.status == "done" else f"error {job.error_code}"
            status = job.status
        log.info("job %s: %s in %.0f ms (%s)", job_id, status, elapsed_s * 1000, detail)

    def _outbox(self) -> list[dict[str, Any]]:
        """Emails moto's SES accepted, then what went to topics no local subscriber reads (the operator's
        reports topic): on AWS those reach their email subscribers."""
        read = {subscription.topic_arn for subscription in self.spec.subscriptions.values()}
        return sent_emails() + topic_notices([t.arn for t in self.spec.topics.values() if t.arn not in read])

    def _watch_outbox(self) -> None:
        """Print each email moto's SES accepted (and each operator notice) and keep a copy in
        DATA_DIR/outbox/."""
        seen: set[str] = set()  # by id: the outbox is two lists (emails, notices) that both grow
        outbox = self.options.data_dir / "outbox"
        while not self._stopping.wait(0.5):
            emails = self._outbox()
            for email in [e for e in emails if str(e["id"]) not in seen]:
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
            seen.update(str(e["id"]) for e in emails)
