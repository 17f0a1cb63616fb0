"""Threads for the image work: what the process is really given, on Lambda and elsewhere."""

from __future__ import annotations

import os

import pytest

from photoveil.imaging.cpus import cpu_budget


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHOTOVEIL_THREADS", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3, 4, 5}, raising=False)


def test_outside_lambda_every_cpu_of_the_process() -> None:
    assert cpu_budget() == 6


# Whole vCPUs only (10,240 MB is 5.8 of them): a thread more than the share only waits for it.
@pytest.mark.parametrize(
    ("memory_mb", "vcpus"), [("1024", 1), ("1769", 1), ("3008", 1), ("3538", 2), ("10240", 5)]
)
def test_on_lambda_one_thread_per_vcpu_its_memory_buys(
    monkeypatch: pytest.MonkeyPatch, memory_mb: str, vcpus: int
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb)
    assert cpu_budget() == vcpus


def test_the_environment_decides_when_it_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "10240")
    monkeypatch.setenv("PHOTOVEIL_THREADS", "1")
    assert cpu_budget() == 1
