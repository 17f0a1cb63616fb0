"""The capacity model's pieces on small cases with known answers (src/photoveil_dev/capacity)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("simpy")

from photoveil.local.template import load_template
from photoveil_dev.capacity import report, rules
from photoveil_dev.capacity.config import ConfigError, PipelineConfig, from_template
from photoveil_dev.capacity.figures import PhotoTime, ServiceTimes, parse_mix, read_bench
from photoveil_dev.capacity.model import Pipeline, Stats
from photoveil_dev.capacity.report import percentile
from photoveil_dev.capacity.validate import poll_overhead, processing_times

# One photo kind: 1 s of work of which 0.4 s is CenterFace's detection; no jitter, no cold start.
TIMES = ServiceTimes({"photo": PhotoTime(1.0, 0.4)}, init_s=0.0, source="test")
NO_TRAFFIC = lambda t: 0.0  # noqa: E731  (uploads are scheduled by each test)


def config(**changes: object) -> PipelineConfig:
    base = PipelineConfig(
        batch_size=1,
        batching_window_s=0.0,
        max_concurrency=1000,
        reserved_concurrency=0,
        function_timeout_s=30.0,
        memory_mb=1769,
        visibility_timeout_s=180.0,
        max_receive_count=5,
        detector="both",
        moderation=False,
        rekognition_latency_s=0.5,
        io_overhead_s=0.0,
        notify_delay_s=0.0,
        service_jitter=0.0,
    )
    return PipelineConfig(**{**base.__dict__, **changes})


def pipeline(cfg: PipelineConfig, times: ServiceTimes = TIMES, **kwargs: object) -> Pipeline:
    return Pipeline(cfg, times, {"photo": 1.0}, NO_TRAFFIC, **kwargs)


class Closed:
    """A Rekognition quota that allows nothing before ``opens_at``."""

    def __init__(self, opens_at: float = float("inf")) -> None:
        self.opens_at = opens_at

    def take(self, now: float) -> bool:
        return now >= self.opens_at


# --- the scaling rule -------------------------------------------------------------------------------------
def test_the_mapping_starts_with_five_and_adds_300_a_minute_while_messages_wait() -> None:
    assert rules.initial_concurrency(100) == 5
    assert rules.initial_concurrency(2) == 2
    assert rules.scaled_concurrency(5, True, 1000, 60) == 305
    assert rules.scaled_concurrency(5, True, 100, 60) == 100
    assert rules.scaled_concurrency(5, True, 1000, 1) == 10
    assert rules.scaled_concurrency(50, False, 1000, 60) == 50


def test_the_cap_is_the_lowest_of_maximum_concurrency_reservation_account_and_1000() -> None:
    assert rules.concurrency_cap(100) == 100
    assert rules.concurrency_cap(300, reserved=200) == 200
    assert rules.concurrency_cap(1000, account_limit=400) == 400
    assert rules.concurrency_cap(5000, account_limit=5000) == 1000


def test_under_a_standing_backlog_the_model_grows_five_invocations_a_second() -> None:
    model = pipeline(config(detector="centerface"), ServiceTimes({"photo": PhotoTime(100.0, 1.0)}, 0.0, "t"))
    model.upload_at([0.0] * 2000, "photo")
    stats = model.run(until=12.5)
    concurrency = {round(t): cap for t, _, cap, _ in stats.samples}
    assert concurrency[1] == 10 and concurrency[12] == 65
    assert max(running for _, running, _, _ in stats.samples) <= 65


def test_the_mapping_never_exceeds_maximum_concurrency() -> None:
    model = pipeline(
        config(detector="centerface", max_concurrency=20),
        ServiceTimes({"photo": PhotoTime(100.0, 1.0)}, 0.0, "t"),
    )
    model.upload_at([0.0] * 500, "photo")
    stats = model.run(until=30)
    assert max(running for _, running, _, _ in stats.samples) == 20


# --- retries after the visibility timeout -----------------------------------------------------------------
def test_a_throttled_photo_comes_back_after_the_visibility_timeout_and_is_published() -> None:
    model = pipeline(config())
    model.buckets["DetectFaces"] = Closed(opens_at=100.0)  # type: ignore[assignment]
    model.upload_at([0.0], "photo")
    stats = model.run(until=400)
    # received at 0, failed (throttled); received again at 0 + 180; the call (0.5 s) overlaps CenterFace
    # (0.4 s), then the rest of the work (0.6 s).
    assert stats.failed_attempts == 1
    assert stats.published == {0: pytest.approx(181.1)}


def test_a_photo_failing_every_receive_goes_to_the_dlq_after_max_receive_count() -> None:
    model = pipeline(config())
    model.buckets["DetectFaces"] = Closed()  # type: ignore[assignment]
    model.upload_at([0.0], "photo")
    stats = model.run(until=4 * 180 + 170)
    assert (stats.failed_attempts, stats.dead_lettered, stats.published) == (5, 1, {})
    assert model.queue.backlog == 0


def test_records_started_with_less_than_15_s_left_go_back_untouched() -> None:
    # 10 records of 5 s in one 30 s invocation: started at 0, 5, 10, 15 s; at 20 s only 10 s are left.
    slow = ServiceTimes({"photo": PhotoTime(5.0, 1.0)}, 0.0, "t")
    one_batch = config(detector="centerface", batch_size=10, batching_window_s=1.0, account_concurrency=1)
    model = pipeline(one_batch, slow)
    model.upload_at([0.0] * 10, "photo")
    stats = model.run(until=100)
    assert sorted(stats.published.values()) == [5.0, 10.0, 15.0, 20.0]
    assert stats.failed_attempts == 6


# --- the TPS limit -----------------------------------------------------------------------------------------
def test_the_token_bucket_allows_rate_calls_a_second_and_one_second_of_burst() -> None:
    bucket = rules.TokenBucket(10)
    assert [bucket.take(0.0) for _ in range(11)] == [True] * 10 + [False]
    assert sum(bucket.take(0.5) for _ in range(10)) == 5
    assert sum(bucket.take(100.0) for _ in range(20)) == 10


def test_calls_through_the_model_stay_within_the_quota_and_the_rest_are_throttled() -> None:
    model = pipeline(config(faces_tps=20.0), initial_concurrency=1000)
    model.upload_at([0.0] * 1000, "photo")
    stats = model.run(until=30)
    assert stats.calls["DetectFaces"] <= 20 + 20 * 30
    assert stats.throttled["DetectFaces"] > 0


def test_moderation_adds_a_second_limited_call_per_photo() -> None:
    model = pipeline(config(moderation=True, moderation_tps=1.0))
    model.upload_at([0.0, 0.0], "photo")
    stats = model.run(until=60)
    assert stats.calls == {"DetectFaces": 2, "DetectModerationLabels": 2}
    assert stats.throttled["DetectModerationLabels"] >= 1


def test_backoff_is_full_jitter_capped() -> None:
    assert rules.backoff_delay(0, 0.5, 0.25, 4.0) == 0.125
    assert rules.backoff_delay(3, 0.5, 0.25, 4.0) == 1.0
    assert rules.backoff_delay(10, 0.5, 0.25, 4.0) == 2.0


# --- inputs ------------------------------------------------------------------------------------------------
def test_settings_come_from_the_template_and_take_overrides() -> None:
    template = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
    defaults = from_template()
    assert defaults.max_concurrency == template["Parameters"]["WorkerMaxConcurrency"]["Default"]
    assert defaults.batch_size == template["Parameters"]["WorkerBatchSize"]["Default"]
    timeouts = template["Mappings"]["WorkerTimeouts"]  # the queue's visibility for each worker timeout
    default_timeout = template["Parameters"]["WorkerTimeout"]["Default"]
    assert defaults.function_timeout_s == default_timeout
    assert defaults.visibility_timeout_s == timeouts[str(default_timeout)]["QueueVisibilityTimeout"]
    longer = from_template(overrides={"WorkerTimeout": "300"})
    assert (longer.function_timeout_s, longer.visibility_timeout_s) == (300, 1800)
    assert defaults.moderation == (template["Parameters"]["Moderation"]["Default"] != "off")
    assert not from_template(overrides={"Moderation": "off"}).moderation
    raised = from_template(overrides={"WorkerMaxConcurrency": "300", "faces_tps": "250"})
    assert (raised.max_concurrency, raised.faces_tps) == (300, 250.0)
    with pytest.raises(ConfigError):
        from_template(overrides={"NoSuchParameter": "1"})
    with pytest.raises(ConfigError):
        from_template(overrides={"no_such_field": "1"})


def test_bench_figures_are_scaled_to_cpu_time(tmp_path: Path) -> None:
    bench = tmp_path / "bench.json"
    stages = {"decode": 0.2, "detect": 1.0, "blur": 0.2, "encode": 0.2, "verify": 0.4}
    bench.write_text(
        json.dumps({"worker_init_s": 1.0, "photos": {"group": {"stages": stages, "cpu_s": 1.0}}})
    )
    times = read_bench(bench)
    assert times.photos["group"].total_s == pytest.approx(1.0)
    assert times.photos["group"].detect_s == pytest.approx(0.5)
    assert times.init_s == 1.0


def test_mix_and_log_parsing() -> None:
    assert parse_mix("portrait=6,group=3,crowd=1") == pytest.approx(
        {"portrait": 0.6, "group": 0.3, "crowd": 0.1}
    )
    log = "12:00:01 INFO    job 0af3: done in 812 ms (1 face(s) blurred)\njob 9b: failed in 40 ms (error x)\n"
    assert processing_times(log) == [0.812, 0.04]
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_the_local_workers_time_between_invocations_is_read_from_the_log() -> None:
    # worker-1: receives at 10 s, 12 s, 15 s after invocations of 1.5 s and 2.5 s: 1 s idle over 2 photos.
    log = "\n".join(
        [
            "00:00:10 INFO    job aa: received by worker-1 (receive #1)",
            "00:00:10 INFO    job aa.jpg: received by worker-1 (receive #1)",
            "00:00:11 INFO    job aa: done in 1500 ms (1 face(s) blurred)",
            "00:00:12 INFO    job bb: received by worker-1 (receive #1)",
            "00:00:14 INFO    job bb: done in 2500 ms (1 face(s) blurred)",
            "00:00:15 INFO    job cc: received by worker-1 (receive #1)",
            "00:00:16 INFO    job cc: done in 900 ms (1 face(s) blurred)",
        ]
    )
    assert poll_overhead(log) == pytest.approx(0.5)


def test_cost_bills_the_workers_time_rekognitions_calls_and_the_rest_per_photo_at_full_scale() -> None:
    stats = Stats(uploaded_at=[0.0] * 10, billed_s=1024.0, invocations=10, calls={"DetectFaces": 10})
    worker = 1024.0 * 1769 / 1024 * report.LAMBDA_GB_S + 10 * report.LAMBDA_REQUEST
    expected = worker + 10 * report.REKOGNITION_CALL + 10 * report.REST_PER_PHOTO
    assert report.cost(stats, config(), scale=1.0) == pytest.approx(expected)
    assert report.cost(stats, config(), scale=0.1) == pytest.approx(10 * expected)


def test_the_promise_breaks_when_any_minutes_p99_is_over_60_s_or_a_photo_is_left() -> None:
    stats = Stats(uploaded_at=[0.0, 10.0, 70.0], published={0: 5.0, 1: 20.0, 2: 140.0})
    late = report.summarise(stats, config(), 1.0, end_s=180.0, hours=1.0)
    assert (late.worst_minute_p99_s, late.promise_holds) == (70.0, False)
    stats.published[2] = 100.0
    assert report.summarise(stats, config(), 1.0, end_s=180.0, hours=1.0).promise_holds
    del stats.published[2]
    left = report.summarise(stats, config(), 1.0, end_s=180.0, hours=1.0)
    assert (left.unfinished, left.promise_holds) == (1, False)
