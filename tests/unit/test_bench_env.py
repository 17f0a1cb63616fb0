"""bench/cold_start.py starts each function as Lambda would: its environment must satisfy the settings
every function reads at INIT (a new required variable once broke `make bench` and `make simulate-figures`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from photoveil.settings import Settings, get_settings

COLD_START = Path(__file__).resolve().parents[2] / "bench" / "cold_start.py"


def test_the_cold_start_environment_gives_complete_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("cold_start", COLD_START)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("QUOTAS_TABLE", "JOBS_TABLE", "BLUR_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in module.LAMBDA_ENV.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        assert Settings.from_env().quotas_table == "quotas"
    finally:
        get_settings.cache_clear()
