"""moto's server in this process, and the template's resources created in it, one function per kind.

In-process so that it starts in about a second, stops with the rest of the stack and lets the outbox
read what moto's SES accepted; everything else talks to it over HTTP with boto3, as the handlers talk
to AWS. What moto does and does not emulate: docs/decisions/local-0001-moto-in-process.md.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

from photoveil.local.account import ACCOUNT_ID, REGION, Credentials, client
from photoveil.local.specs import BucketSpec, QueueSpec, StackSpec, SubscriptionSpec, TableSpec


def moto_app() -> Any:
    """moto's WSGI app for every service (what `moto_server` runs), DynamoDB's requests one at a time."""
    return OneDynamoDBRequestAtATime(DomainDispatcherApplication(create_backend_app))


class OneDynamoDBRequestAtATime:
    """DynamoDB's conditional writes are atomic on AWS; moto's backend has no lock, so two workers'
    racing conditional updates could both succeed (seen: two workers both published one photo and both
    emailed). DynamoDB requests are milliseconds here: serialising them costs nothing that matters."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self._lock:
            return list(self.app(environ, start_response))  # the whole answer, inside the lock


class QuietMotoRequestHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # moto logs every request (the pollers' too); the stack logs what matters


def create_resources(
    spec: StackSpec, endpoint: str, *, sender_email: str, credentials: Credentials
) -> dict[str, str]:
    """Create the template's queues, topics, buckets and tables (and the SES sender) in moto, as the
    identity CREDENTIALS gives; returns queue URLs.

    Queues and topics first: the buckets' notifications name them (and moto sends them a test event).
    """
    sqs, sns, s3, dynamodb = (
        client(service, endpoint, credentials) for service in ("sqs", "sns", "s3", "dynamodb")
    )
    # Dead-letter queues before the queues whose redrive policy names them.
    queues = sorted(spec.queues.values(), key=lambda queue: "RedrivePolicy" in queue.attributes)
    queue_urls = {queue.logical_id: create_queue(sqs, queue) for queue in queues}
    for topic in spec.topics.values():
        sns.create_topic(Name=topic.name)
    for subscription in spec.subscriptions.values():
        create_subscription(sns, subscription)
    for bucket in spec.buckets.values():
        create_bucket(s3, bucket)
    for table in spec.tables.values():
        create_table(dynamodb, table)
    if sender_email:
        client("ses", endpoint, credentials).verify_email_identity(EmailAddress=sender_email)
    return queue_urls


def create_queue(sqs: Any, queue: QueueSpec) -> str:
    return sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)["QueueUrl"]


def create_subscription(sns: Any, subscription: SubscriptionSpec) -> None:
    # moto delivers to SQS subscribers itself, honouring RawMessageDelivery and filter policies.
    sns.subscribe(
        TopicArn=subscription.topic_arn,
        Protocol=subscription.protocol,
        Endpoint=subscription.endpoint,
        Attributes=subscription.attributes,
    )


def create_bucket(s3: Any, bucket: BucketSpec) -> None:
    s3.create_bucket(Bucket=bucket.name)
    if bucket.public_access_block:
        s3.put_public_access_block(
            Bucket=bucket.name, PublicAccessBlockConfiguration=bucket.public_access_block
        )
    if bucket.lifecycle_rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket.name, LifecycleConfiguration={"Rules": bucket.lifecycle_rules}
        )
    if bucket.cors_rules:
        s3.put_bucket_cors(Bucket=bucket.name, CORSConfiguration={"CORSRules": bucket.cors_rules})
    if bucket.notifications:
        # moto delivers these itself, after a test event (as S3 sends s3:TestEvent).
        s3.put_bucket_notification_configuration(
            Bucket=bucket.name, NotificationConfiguration=bucket.notifications
        )


def create_table(dynamodb: Any, table: TableSpec) -> None:
    dynamodb.create_table(TableName=table.name, **table.definition)
    if table.time_to_live:
        dynamodb.update_time_to_live(TableName=table.name, TimeToLiveSpecification=table.time_to_live)


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


def topic_notices(topic_arns: list[str]) -> list[dict[str, Any]]:
    """What was published to these topics (no local subscriber reads them: the operator's email), in the
    outbox's shape, oldest first (moto's in-process backend)."""
    from moto.sns.models import sns_backends

    topics = sns_backends[ACCOUNT_ID][REGION].topics
    out = []
    for arn in topic_arns:
        topic = topics.get(arn)
        for message_id, message, subject, *_ in list(topic.sent_notifications) if topic else []:
            name = arn.rsplit(":", 1)[-1]
            out.append(
                {
                    "id": message_id,
                    "from": f"SNS {name}",
                    "to": [f"subscribers of {name}"],
                    "subject": subject,
                    "body": message,
                    "raw": None,
                }
            )
    return out
