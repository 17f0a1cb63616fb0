"""moto's server, in this process, with the resources of template.yaml created in it.

In-process (a werkzeug server thread) rather than a subprocess because: it starts in ~1 s, stops
cleanly with the rest of the stack (no orphan process), and lets the outbox read the emails moto's SES
accepted straight from its backend. Everything else still talks to it over HTTP with boto3, exactly as
the handlers talk to AWS.

What moto 5.2.5's server does here (checked by experiment; the e2e tests exercise each):
- S3 -> SQS notifications: delivered by moto itself for a bucket QueueConfiguration (prefix filter
  honoured), eventName ``ObjectCreated:Post`` for a presigned POST; an ``s3:TestEvent`` is queued when the
  configuration is set, as on AWS. Difference: moto URL-encodes ``/`` in the key (``uploads%2F{id}``);
  AWS does not. ``unquote_plus`` gives the same key either way.
- CORS: the preflight (OPTIONS) is answered from the bucket's CORS rules (403 for another origin); the
  POST response itself carries ``Access-Control-Allow-Origin`` from moto's permissive server-wide CORS,
  so only the preflight checks the rule. The browser posts straight to moto: no proxy needed.
- Presigned POST policy (size range, exact key, content type) is NOT enforced by moto; the worker
  re-checks size and magic bytes itself (DESIGN.md).
- SQS redrive policy: moto moves a message to the DLQ once its receive count passes maxReceiveCount.
  ``StartMessageMoveTask`` is not implemented: ``photoveil local redrive`` moves messages itself.
- SES: ``VerifyEmailIdentity`` works and an unverified sender is refused (MessageRejected), but
  recipients need not be verified (the AWS sandbox requires it); sent mail
  (v1 and v2 APIs) is kept in the backend's ``sent_messages``, which the outbox reads.
- Lifecycle rules and DynamoDB TTL are stored but never applied (nothing expires locally).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from photoveil.local.template import ACCOUNT_ID, REGION, StackSpec

log = logging.getLogger("photoveil.local")

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class MotoServer:
    """moto's werkzeug app served from a thread on 127.0.0.1 (port 0 = any free port)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        # moto's ThreadedMotoServer binds inside its thread, so a taken port hangs start(); bind here.
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            host, port, app, threaded=True, request_handler=_QuietMotoHandler(MotoRequestHandler)
        )
        self.port: int = self._server.server_address[1]
        self.endpoint = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # shutdown() waits for serve_forever() to return: it would block forever if it never ran.
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()


def _QuietMotoHandler(base: type) -> type:
    class Handler(base):  # type: ignore[misc, valid-type]
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # moto logs every request at INFO on stderr; the stack logs what matters

    return Handler


def client(service: str, endpoint: str) -> Any:
    """A boto3 client for the local endpoint (fake credentials, us-east-1)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )


@dataclass(frozen=True)
class Resources:
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str


def create_resources(
    spec: StackSpec,
    endpoint: str,
    *,
    site_origin: str,
    sender_email: str,
) -> Resources:
    """Create the template's buckets, queues, table and SES identity in moto, with the template's settings."""
    s3, sqs, ddb, ses = (client(s, endpoint) for s in ("s3", "sqs", "dynamodb", "ses"))

    dlq_url = sqs.create_queue(
        QueueName=spec.dlq.name,
        Attributes={
            "MessageRetentionPeriod": str(spec.dlq.retention_s),
            "VisibilityTimeout": str(spec.dlq.visibility_timeout_s),
        },
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_attrs = {
        "MessageRetentionPeriod": str(spec.queue.retention_s),
        "VisibilityTimeout": str(spec.queue.visibility_timeout_s),
        "ReceiveMessageWaitTimeSeconds": str(spec.queue.receive_wait_s),
    }
    if spec.queue.max_receive_count:
        queue_attrs["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.queue.max_receive_count}
        )
    queue_url = sqs.create_queue(QueueName=spec.queue.name, Attributes=queue_attrs)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    # The DLQ's redrive allow policy lets a redrive move messages back (as on AWS).
    sqs.set_queue_attributes(
        QueueUrl=dlq_url,
        Attributes={
            "RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [queue_arn]})
        },
    )

    for bucket, lifecycle in (
        (spec.uploads_bucket, spec.uploads_lifecycle),
        (spec.blurred_bucket, spec.blurred_lifecycle),
    ):
        s3.create_bucket(Bucket=bucket)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        if lifecycle:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle})
    cors = [
        {
            **rule,
            "AllowedOrigins": [site_origin if o == "{site_origin}" else o for o in rule["AllowedOrigins"]],
        }
        for rule in spec.uploads_cors
    ]
    s3.put_bucket_cors(Bucket=spec.uploads_bucket, CORSConfiguration={"CORSRules": cors})
    # moto delivers S3 notifications to SQS itself (and sends the s3:TestEvent first, as S3 does).
    s3.put_bucket_notification_configuration(
        Bucket=spec.uploads_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "uploads-to-blur-queue",
                    "QueueArn": queue_arn,
                    "Events": spec.notification_events,
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": spec.notification_prefix}]}
                    },
                }
            ]
        },
    )

    ddb.create_table(
        TableName=spec.table,
        KeySchema=[{"AttributeName": spec.table_key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": spec.table_key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if spec.ttl_attribute:
        ddb.update_time_to_live(
            TableName=spec.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )

    if sender_email:
        ses.verify_email_identity(EmailAddress=sender_email)
    return Resources(queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url, dlq_arn=dlq_arn)


def sent_emails() -> list[dict[str, Any]]:
    """Emails moto's SES (v1 or v2 API) accepted, oldest first (moto's in-process backend)."""
    from moto.ses.models import ses_backends

    out = []
    for message in list(ses_backends[ACCOUNT_ID][REGION].sent_messages):
        fields = vars(message)
        out.append(
            {
                "id": fields.get("id"),
                "from": fields.get("source"),
                "to": (fields.get("destinations") or {}).get("ToAddresses")
                or fields.get("destinations")
                or [],
                "subject": fields.get("subject"),
                "body": fields.get("body") or fields.get("html_body"),
                "raw": fields.get("raw_data"),
            }
        )
    return out
