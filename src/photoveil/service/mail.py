"""Whether a photo-ready email may go out: the limits that stop PhotoVeil being turned on strangers.

Anyone can type any address into the upload form, and the email shows a photo the uploader chose (text
in an image passes moderation), so mail is bounded twice (docs/decisions/safety-0002-attacks-priced-in-
addresses.md):

- per client: ``EMAILS_PER_CLIENT_DAY`` emails asked for a day from one address (IPv6: per /64), to any
  recipients, charged at ``POST /uploads`` where the client is known;
- per recipient: ``EMAILS_PER_RECIPIENT_DAY`` emails a day to one address, whoever asks, charged when the
  worker sends, so an upload that never happens spends nothing of the recipient's allowance. At
  ``POST /uploads`` it is only looked at, so a full day is said in the ``201`` (``emailRefused``).

An address that bounced or complained gets no mail at all (photoveil.service.mail_events). Addresses are
never logged nor stored in clear (the job keeps one until its email is sent).
"""

from __future__ import annotations

from photoveil.dependencies import Dependencies
from photoveil.service.quotas import Limits, allow, client_key, recipient_key, spent

SUPPRESSED = "email_suppressed"
RATE_LIMITED = "email_rate_limited"


def refusal_at_upload(email: str, source_ip: str, deps: Dependencies) -> dict[str, str] | None:
    """Why no email may go to EMAIL for this upload (``{code, message}``), else None, having counted it
    against the client's daily allowance. A refused email never costs the photo: the upload goes on."""
    recipient, now = recipient_key(email), deps.clock()
    limits = Limits.from_settings(deps.settings)
    if deps.quotas.is_suppressed(recipient, now=now):
        return {"code": SUPPRESSED, "message": "mail to this address bounced or was marked as spam"}
    if spent(deps.quotas, now, limits.emails_per_recipient_day, recipient):
        refusal = limits.emails_per_recipient_day.refusal
        return {"code": RATE_LIMITED, "message": f"{refusal}; the photo is still blurred"}
    if not allow(deps.quotas, now, limits.emails_per_client_day, client_key(source_ip)):
        refusal = limits.emails_per_client_day.refusal
        return {"code": RATE_LIMITED, "message": f"{refusal}; the photo is still blurred"}
    return None


def refusal_at_send(email: str, deps: Dependencies) -> str | None:
    """Why the worker must not send to EMAIL now (a code), else None, having counted the email against
    the recipient's daily allowance: it bounced or complained since the upload, or had its day's mail."""
    recipient, now = recipient_key(email), deps.clock()
    if deps.quotas.is_suppressed(recipient, now=now):
        return SUPPRESSED
    if not allow(deps.quotas, now, Limits.from_settings(deps.settings).emails_per_recipient_day, recipient):
        return RATE_LIMITED
    return None
