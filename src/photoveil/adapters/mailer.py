"""SES: the "your photo is ready" email, plain text and HTML."""

from __future__ import annotations

import html
import re
from typing import Any

from photoveil.adapters.clients import ses_client

SUBJECT = "Your blurred photo is ready"
MANAGE_NOTE = (
    "Missed a face, or changed your mind? This link lets you blur more of the photo or delete it now:"
)
# What is guaranteed, not more: S3 expires objects at the next midnight UTC and deletes them
# asynchronously, and CloudFront and browsers may keep a copy for the day their cache allows.
DELETION_NOTE = (
    "Then the photo is deleted: storage removes it within about a day, and a copy already cached by a "
    "browser or by our content network can be seen for up to one more day."
)
MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit
# Deliberately plain: one @, a dotted domain, no whitespace, quotes, angle brackets or control
# characters. Anything fancier than this is not worth a delivery attempt from an anonymous form.
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+"
)


def is_valid_email(address: str) -> bool:
    """True for a plain ``local@domain.tld`` address of at most 254 characters (no CR/LF, no spaces)."""
    return len(address) <= MAX_EMAIL_LENGTH and _EMAIL_RE.fullmatch(address) is not None


def render_photo_ready(photo_url: str, manage_url: str, expires_at: str) -> tuple[str, str]:
    """The (text, html) bodies. Only our own URLs and date go in, and the HTML escapes them anyway."""
    text = (
        "Every face we found in your photo is now blurred.\n\n"
        f"Your photo: {photo_url}\n"
        f"The link works until {expires_at} (UTC). {DELETION_NOTE}\n\n"
        f"{MANAGE_NOTE}\n{manage_url}\n\n"
        "Anyone with the link to the photo can see it; keep the link above to yourself. You received this "
        "because your address was entered when the photo was uploaded.\n"
    )
    url, manage, when = (html.escape(v, quote=True) for v in (photo_url, manage_url, expires_at))
    body = (
        "<!doctype html><html><body>"
        "<p>Every face we found in your photo is now blurred.</p>"
        f'<p><a href="{url}">{url}</a></p>'
        f"<p>The link works until {when} (UTC). {html.escape(DELETION_NOTE)}</p>"
        f'<p>{html.escape(MANAGE_NOTE)} <a href="{manage}">Blur more or delete this photo</a>.</p>'
        "<p>Anyone with the link to the photo can see it; keep the link above to yourself. You received "
        "this because your address was entered when the photo was uploaded.</p>"
        "</body></html>"
    )
    return text, body


class Mailer:
    """Sends mail from one verified SES identity."""

    def __init__(self, sender: str, client: Any = None, configuration_set: str = "") -> None:
        self.sender = sender
        # Its reputation metrics and bounce/complaint events (MailEventsFunction) cover every email sent.
        self.configuration_set = configuration_set
        self._client = client or ses_client()

    def send_photo_ready(self, to: str, *, photo_url: str, manage_url: str, expires_at: str) -> str:
        """Send the link; returns the SES message id. Raises ValueError for an unusable address and
        botocore errors for SES failures (the caller decides these never fail the photo)."""
        # Re-checked here, not only in the API: a header-injection attempt must never reach SES.
        if not is_valid_email(to):
            raise ValueError("refusing to send to an invalid address")
        text, body = render_photo_ready(photo_url, manage_url, expires_at)
        extra = {"ConfigurationSetName": self.configuration_set} if self.configuration_set else {}
        response = self._client.send_email(
            **extra,
            Source=self.sender,
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": SUBJECT, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": text, "Charset": "UTF-8"},
                    "Html": {"Data": body, "Charset": "UTF-8"},
                },
            },
        )
        return str(response["MessageId"])
