"""The one Logger, Tracer and Metrics every PhotoVeil function uses.

The job id is the correlation key: the worker wraps each record in ``job_context(job_id)`` so every log
line of a photo's life carries ``job_id``, and clears it before the next record of the batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = "photoveil"
NAMESPACE = "PhotoVeil"
# The metric ServiceCeilingAlarm (template.yaml) watches: a service-wide daily ceiling refused someone,
# or the day's budget of edge withdrawals is spent.
SERVICE_CEILING_METRIC = "ServiceCeilingReached"
# The metric ImageRefusedByDetectorAlarm watches: Rekognition refused an image PhotoVeil had fitted to its
# documented limits, so a photo failed for good (its original deleted) for what may be a mistake of ours.
IMAGE_REFUSED_METRIC = "ImageRefusedByDetector"

# Many invocations legitimately record nothing (a status poll, an s3:TestEvent); Powertools would warn
# on every one of them.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

__all__ = [
    "NAMESPACE",
    "SERVICE",
    "MetricUnit",
    "count_ceiling_reached",
    "count_detector_refusal",
    "count_failure",
    "count_rate_limited",
    "job_context",
    "logger",
    "metrics",
    "tracer",
]


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Tag every log line inside the block with ``job_id`` (and the X-Ray segment, when tracing)."""
    logger.append_keys(job_id=job_id)
    tracer.put_annotation(key="job_id", value=job_id)
    try:
        yield
    finally:
        logger.remove_keys(["job_id"])


def count_detector_refusal(operation: str) -> None:
    """Count an image the detector refused: a total (``ImageRefusedByDetector``, for one alarm) and once
    more with an ``Operation`` dimension (DetectFaces, DetectModerationLabels) to say which call."""
    metrics.add_metric(name=IMAGE_REFUSED_METRIC, unit=MetricUnit.Count, value=1)
    _count_alone(IMAGE_REFUSED_METRIC, Operation=operation or "unknown")


def count_failure(reason: str) -> None:
    """Count a failed photo twice: a total (for one alarm) and one series per reason (for the dashboard)."""
    metrics.add_metric(name="PhotosFailed", unit=MetricUnit.Count, value=1)
    _count_alone("PhotosFailedByReason", Reason=reason)


def count_rate_limited(limit: str, *, service_wide: bool) -> None:
    """Count a request a limit refused, per limit (``RateLimited`` with a ``Limit`` dimension), and, when
    the limit is a service-wide ceiling, once more as ``ServiceCeilingReached``: every client is refused
    until the window ends, which ServiceCeilingAlarm tells the operator."""
    _count_alone("RateLimited", Limit=limit)
    if service_wide:  # one series for every ceiling, so one alarm covers them all (RateLimited says which)
        count_ceiling_reached()


def count_ceiling_reached() -> None:
    """Count once more in the one series ServiceCeilingAlarm watches for every service-wide ceiling."""
    _count_alone(SERVICE_CEILING_METRIC)


def _count_alone(name: str, **dimensions: str) -> None:
    """Count one in a metric of its own, with the service's dimension and DIMENSIONS. A dimension on the
    shared Metrics object would apply to every metric of the invocation, so this goes out as its own EMF
    blob."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        for dimension, value in dimensions.items():
            metric.add_dimension(name=dimension, value=value)
