"""QuotasTable (DynamoDB): counters for photoveil.service.quotas, and the addresses mail must not go to.

Item schema (attribute names are part of the template contract)::

    key    S  "{limit}#{subject}#{window start}" for a counter, "suppressed#{recipient key}" for an address
              that bounced or complained; subjects are SHA-256 hashes, never addresses
    used   N  actions counted in the window
    ttl    N  epoch seconds: the window's end (plus a margin); a suppression keeps SUPPRESSION_DAYS
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from photoveil.adapters.clients import dynamodb_client

# A hard bounce or a complaint stops mail to the address for this long (SES's own list keeps them too).
SUPPRESSION_DAYS = 365


class QuotaCounters:
    """Conditional counters with TTL in one table (service.quotas.CounterStore), and suppressed recipients."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client or dynamodb_client()

    def take(self, key: str, *, allowed: int, expires_at: int) -> bool:
        """One atomic increment, refused once ``allowed`` actions are counted (then nothing changes)."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"key": {"S": key}},
                UpdateExpression="ADD used :one SET #ttl = if_not_exists(#ttl, :ttl)",
                ConditionExpression="attribute_not_exists(used) OR used < :allowed",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":allowed": {"N": str(allowed)},
                    ":ttl": {"N": str(expires_at)},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def used(self, key: str) -> int:
        """How many actions are counted under ``key`` (0 when none, or its item expired and is gone)."""
        item = self._client.get_item(
            TableName=self.table_name, Key={"key": {"S": key}}, ConsistentRead=True
        ).get("Item")
        return int(item["used"]["N"]) if item and "used" in item else 0

    def suppress(self, recipient: str, *, reason: str, now: datetime) -> None:
        """Stop mail to RECIPIENT (a service.quotas.recipient_key) for SUPPRESSION_DAYS."""
        self._client.put_item(
            TableName=self.table_name,
            Item={
                "key": {"S": f"suppressed#{recipient}"},
                "reason": {"S": reason[:40]},
                "ttl": {"N": str(int((now + timedelta(days=SUPPRESSION_DAYS)).timestamp()))},
            },
        )

    def is_suppressed(self, recipient: str, *, now: datetime) -> bool:
        item = self._client.get_item(
            TableName=self.table_name, Key={"key": {"S": f"suppressed#{recipient}"}}, ConsistentRead=True
        ).get("Item")
        # TTL deletes lazily: an expired suppression no longer counts.
        return item is not None and int(item["ttl"]["N"]) > int(now.timestamp())
