"""WorkerTimeout: the worker's timeout as a template parameter, each allowed value with its queue's visibility
timeout (6x), read as the local stack, SAM and the capacity model read it (Fn::FindInMap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoveil.local.template import read_stack_spec

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.mark.parametrize("timeout", [30, 60, 120, 300])
def test_the_local_stack_gives_the_worker_its_timeout_and_the_queue_six_times_it(timeout: int) -> None:
    # What `photoveil local --parameter-overrides WorkerTimeout=N` and `sam local invoke` read (FindInMap).
    spec = read_stack_spec(TEMPLATE, {"WorkerTimeout": str(timeout)})
    assert spec.functions["BlurFunction"].timeout_s == timeout
    assert spec.upload_queue.visibility_timeout_s == 6 * timeout
    assert spec.env["QUEUE_VISIBILITY_TIMEOUT"] == str(6 * timeout)
