"""Configuration read once from the environment, typed, failing fast on what is missing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

DETECTORS = ("rekognition", "centerface", "both")
BLUR_STYLES = ("gaussian", "pixelate", "solid")
MODERATIONS = ("rekognition", "off")
# Rekognition's moderation taxonomy (v7), top-level categories refused unless MODERATION_BLOCKED says
# otherwise; docs/deploy.md says why each.
DEFAULT_BLOCKED_CATEGORIES = ("Explicit", "Violence", "Visually Disturbing", "Hate Symbols")
# What the browser may upload: the presign policy pins one of these exactly, and the
# worker re-checks the real format from magic bytes (moto and buggy clients skip the policy).
ALLOWED_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif")


class SettingsError(RuntimeError):
    pass


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required but not set")
    return value


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip() or default
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected an integer") from None


def _confidence(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number from 0 to 100") from None
    if not 0 <= value <= 100:
        raise SettingsError(f"{name}={raw!r}: expected a number from 0 to 100")
    return value


def _names(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    jobs_table: str
    uploads_bucket: str
    blurred_bucket: str
    public_base_url: str  # where /p/{jobId}.jpg is served (CloudFront, or the local gateway)
    sender_email: str  # empty: no email is sent
    mail_configuration_set: str  # SES configuration set every email is sent with (empty: none, local stack)
    detector: str
    blur_style: str
    max_upload_bytes: int
    max_pixels: int
    upload_url_expires_s: int
    photo_ttl_days: int
    # BlurQueue's retry rhythm, so the status API can tell when a photo's retries are over (see
    # Job.retries_over): a message comes back after the visibility timeout, up to maxReceiveCount times.
    queue_visibility_timeout_s: int
    queue_max_receive_count: int
    blur_queue_url: str  # where the API queues an owner's edit for the worker
    distribution_id: str  # CloudFront, to drop deleted or replaced photos; empty: none (local stack)
    # photoveil.service.quotas: the counters' table and the limits (template parameters of the same meaning).
    quotas_table: str
    uploads_per_client_hour: int
    uploads_per_client_day: int
    owner_actions_per_client_hour: int
    owner_actions_per_day: int
    emails_per_recipient_day: int
    uploads_per_day: int
    # Moderation before publishing (photoveil.imaging.detectors.moderation): on unless "off"; labels of at
    # least this confidence (0-100) under these categories refuse a photo.
    moderation: str = "rekognition"
    moderation_min_confidence: float = 80.0
    moderation_blocked: tuple[str, ...] = DEFAULT_BLOCKED_CATEGORIES
    # Reports (photoveil.service.reports): reports from this many distinct networks (IPv4 /24, IPv6 /48)
    # withdraw a photo pending review, and the operator hears of it on this topic (empty: not told).
    report_threshold: int = 3
    reports_topic_arn: str = ""
    # photoveil.service.quotas: reports per client address per hour, and for the whole service per day.
    reports_per_client_hour: int = 10
    reports_per_day: int = 2000
    # Photo-ready emails one client address may ask for in a day (photoveil.service.mail).
    emails_per_client_day: int = 3

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            jobs_table=_required("JOBS_TABLE"),
            uploads_bucket=_required("UPLOADS_BUCKET"),
            blurred_bucket=_required("BLURRED_BUCKET"),
            public_base_url=_required("PUBLIC_BASE_URL").rstrip("/"),
            sender_email=os.environ.get("SENDER_EMAIL", "").strip(),
            mail_configuration_set=os.environ.get("MAIL_CONFIGURATION_SET", "").strip(),
            detector=_choice("DETECTOR", "both", DETECTORS),
            blur_style=_choice("BLUR_STYLE", "gaussian", BLUR_STYLES),
            max_upload_bytes=_int("MAX_UPLOAD_BYTES", 25 * 1024 * 1024),
            max_pixels=_int("MAX_PIXELS", 50_000_000),
            upload_url_expires_s=_int("UPLOAD_URL_EXPIRES", 300),
            photo_ttl_days=_int("PHOTO_TTL_DAYS", 30),
            queue_visibility_timeout_s=_int("QUEUE_VISIBILITY_TIMEOUT", 180),
            queue_max_receive_count=_int("QUEUE_MAX_RECEIVE_COUNT", 5),
            blur_queue_url=_required("BLUR_QUEUE_URL"),
            distribution_id=os.environ.get("DISTRIBUTION_ID", "").strip(),
            quotas_table=_required("QUOTAS_TABLE"),
            uploads_per_client_hour=_int("UPLOADS_PER_CLIENT_HOUR", 20),
            uploads_per_client_day=_int("UPLOADS_PER_CLIENT_DAY", 100),
            owner_actions_per_client_hour=_int("OWNER_ACTIONS_PER_CLIENT_HOUR", 60),
            owner_actions_per_day=_int("OWNER_ACTIONS_PER_DAY", 2000),
            emails_per_recipient_day=_int("EMAILS_PER_RECIPIENT_DAY", 5),
            uploads_per_day=_int("UPLOADS_PER_DAY", 20000),
            moderation=_choice("MODERATION", "rekognition", MODERATIONS),
            moderation_min_confidence=_confidence("MODERATION_MIN_CONFIDENCE", 80.0),
            moderation_blocked=_names("MODERATION_BLOCKED", DEFAULT_BLOCKED_CATEGORIES),
            report_threshold=max(1, _int("REPORT_THRESHOLD", 3)),
            reports_topic_arn=os.environ.get("REPORTS_TOPIC_ARN", "").strip(),
            reports_per_client_hour=_int("REPORTS_PER_CLIENT_HOUR", 10),
            reports_per_day=_int("REPORTS_PER_DAY", 2000),
            emails_per_client_day=_int("EMAILS_PER_CLIENT_DAY", 3),
        )


@cache
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings.from_env()
