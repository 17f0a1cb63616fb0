"""The adapters, settings and detector a function's domain code works with, built lazily once per process.

Handlers call ``get_dependencies()`` and hand the result to the domain modules (jobflow, uploads,
status). Tests and the local stack give an invocation its own (``use_dependencies``), e.g. with the
clients of the function's IAM role (``Dependencies.from_session``) and a fake detector
(``.replaced(detector=...)``); nothing else needs patching. The API function never touches
``detector`` or ``blur_photo``, so it never imports numpy or the image stack.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from photoveil.adapters import clients
from photoveil.adapters.cdn import Cdn
from photoveil.adapters.jobs import JobStore
from photoveil.adapters.mailer import Mailer
from photoveil.adapters.operator import OperatorAlerts
from photoveil.adapters.queue import EditQueue, Messages
from photoveil.adapters.quotas import QuotaCounters
from photoveil.adapters.storage import PhotoStorage
from photoveil.settings import Settings, get_settings

if TYPE_CHECKING:
    from photoveil.imaging.detectors.moderation import Moderator
    from photoveil.imaging.faces import Detector


def _utc_now() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    """128 random bits as 32 lowercase hex characters: the job id and the unguessable part of the URL."""
    return secrets.token_hex(16)


class Dependencies:
    """Settings, adapters, the detector and the image pipeline for one process."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        s3: Any = None,
        dynamodb: Any = None,
        ses: Any = None,
        rekognition: Any = None,
        sqs: Any = None,
        cloudfront: Any = None,
        sns: Any = None,
        detector: Detector | None = None,
        blur_photo: Callable[..., Any] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._settings = settings
        self._s3 = s3
        self._dynamodb = dynamodb
        self._ses = ses
        self._rekognition = rekognition
        self._sqs = sqs
        self._cloudfront = cloudfront
        self._sns = sns
        self._detector = detector
        self._blur_photo = blur_photo
        self.clock = clock

    @classmethod
    def from_session(cls, session: Any, **changes: Any) -> Dependencies:
        """Dependencies whose AWS clients all come from SESSION (one identity's boto3 session), configured
        as in production; CHANGES replace any argument (a fake detector, a failing client)."""
        from photoveil.imaging.detectors.rekognition import new_rekognition_client  # imports numpy

        services = ("s3", "dynamodb", "ses", "sqs", "cloudfront", "sns")
        made = {name: clients.new_client(name, session) for name in services}
        return cls(**(made | {"rekognition": new_rekognition_client(session)} | changes))

    def replaced(self, **changes: Any) -> Dependencies:
        """New dependencies made of the same arguments, CHANGES replacing some (tests)."""
        given = {
            "settings": self._settings,
            "s3": self._s3,
            "dynamodb": self._dynamodb,
            "ses": self._ses,
            "rekognition": self._rekognition,
            "sqs": self._sqs,
            "cloudfront": self._cloudfront,
            "sns": self._sns,
            "detector": self._detector,
            "blur_photo": self._blur_photo,
            "clock": self.clock,
        }
        return Dependencies(**(given | changes))

    @cached_property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.settings.jobs_table, client=self._dynamodb)

    @cached_property
    def quotas(self) -> QuotaCounters:
        return QuotaCounters(self.settings.quotas_table, client=self._dynamodb)

    @cached_property
    def storage(self) -> PhotoStorage:
        return PhotoStorage(self.settings.uploads_bucket, self.settings.blurred_bucket, client=self._s3)

    @cached_property
    def queue(self) -> EditQueue:
        return EditQueue(self.settings.blur_queue_url, client=self._sqs)

    @cached_property
    def messages(self) -> Messages:
        return Messages(client=self._sqs)

    @cached_property
    def s3_client(self) -> Any:
        """The S3 client itself (the site function writes the page with it)."""
        return self._s3 or clients.s3_client()

    @cached_property
    def dynamodb_client(self) -> Any:
        return self._dynamodb or clients.dynamodb_client()

    @cached_property
    def ses_client(self) -> Any:
        return self._ses or clients.ses_client()

    @cached_property
    def sqs_client(self) -> Any:
        return self._sqs or clients.sqs_client()

    @cached_property
    def cloudfront_client(self) -> Any:
        return self._cloudfront or clients.cloudfront_client()

    @cached_property
    def cdn(self) -> Cdn:
        return Cdn(self.settings.distribution_id, client=self._cloudfront)

    @cached_property
    def operator_alerts(self) -> OperatorAlerts:
        """The operator's topic (REPORTS_TOPIC_ARN); without one, alerts are not sent."""
        return OperatorAlerts(self.settings.reports_topic_arn, client=self._sns)

    @cached_property
    def mailer(self) -> Mailer | None:
        """None when SENDER_EMAIL is empty: email is an optional feature of a deployment."""
        if not self.settings.sender_email:
            return None
        return Mailer(
            self.settings.sender_email,
            client=self._ses,
            configuration_set=self.settings.mail_configuration_set,
        )

    @cached_property
    def detector(self) -> Detector:
        if self._detector is not None:
            return self._detector
        from photoveil.imaging.detectors import get_detector  # worker only: loads the model once per process

        return get_detector(self.settings.detector, rekognition_client=self._rekognition)

    @cached_property
    def moderator(self) -> Moderator | None:
        """Rekognition moderation with the settings' policy; None when MODERATION is off."""
        if self.settings.moderation == "off":
            return None
        from photoveil.imaging.detectors.moderation import ModerationPolicy, RekognitionModerator

        policy = ModerationPolicy(
            min_confidence=self.settings.moderation_min_confidence,
            blocked=frozenset(self.settings.moderation_blocked),
        )
        return RekognitionModerator(self._rekognition, policy=policy)

    @cached_property
    def blur_photo(self) -> Callable[..., Any]:
        if self._blur_photo is not None:
            return self._blur_photo
        from photoveil.imaging.pipeline import blur_photo  # worker only: imports the image stack

        return blur_photo


_current: Dependencies | None = None


# One process on Lambda runs one function; the local stack runs every function in one process, each
# under its own IAM role, so an invocation there can name its own dependencies (use_dependencies).
_scoped: ContextVar[Dependencies | None] = ContextVar("photoveil_dependencies", default=None)


def get_dependencies() -> Dependencies:
    """The dependencies of the current invocation: its own (use_dependencies), else the process's."""
    global _current
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    if _current is None:
        _current = Dependencies()
    return _current


@contextmanager
def use_dependencies(dependencies: Dependencies) -> Iterator[None]:
    """Run the block (one invocation, in this thread) with ``dependencies``."""
    token = _scoped.set(dependencies)
    try:
        yield
    finally:
        _scoped.reset(token)


def set_dependencies(dependencies: Dependencies | None) -> None:
    """Replace the process-wide dependencies (None: rebuild from the environment on next use)."""
    global _current
    _current = dependencies
