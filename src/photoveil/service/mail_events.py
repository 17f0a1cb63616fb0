"""Bounces and complaints SES reports (configuration set -> SNS): stop mail to those addresses.

A permanent bounce (no such mailbox) or a complaint (marked as spam) suppresses the address, hashed
(service.quotas.recipient_key), in QuotasTable; the API then takes uploads for it without the email. A
transient bounce (mailbox full, greylisting) suppresses nothing.
"""

from __future__ import annotations

from typing import Any

from photoveil.dependencies import Dependencies
from photoveil.observability import MetricUnit, logger, metrics
from photoveil.service.quotas import recipient_key


def addresses_to_stop(notification: dict[str, Any]) -> tuple[str, list[str]]:
    """(kind, addresses) of an SES event: ``eventType`` from a configuration set, ``notificationType``
    from an identity's notifications."""
    kind = str(notification.get("eventType") or notification.get("notificationType") or "")
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return kind, []
        recipients = bounce.get("bouncedRecipients") or []
    elif kind == "Complaint":
        recipients = (notification.get("complaint") or {}).get("complainedRecipients") or []
    else:
        return kind, []
    return kind, [str(r["emailAddress"]) for r in recipients if isinstance(r, dict) and r.get("emailAddress")]


def stop_mail(notification: dict[str, Any], deps: Dependencies) -> int:
    """Suppress every address the notification says must get no more mail; how many."""
    kind, addresses = addresses_to_stop(notification)
    for address in addresses:
        deps.quotas.suppress(recipient_key(address), reason=kind.lower(), now=deps.clock())
    if addresses:
        metrics.add_metric(name=f"MailStopped{kind}", unit=MetricUnit.Count, value=len(addresses))
        logger.info("mail stopped", extra={"kind": kind, "addresses": len(addresses)})  # never the address
    return len(addresses)
