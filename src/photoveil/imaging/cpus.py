"""How many threads the image work may use: the CPUs this process really has."""

from __future__ import annotations

import os

# Lambda gives one vCPU per 1,769 MB of memory but shows the host's cores: more threads than vCPUs only
# contend for them, at a cost in CPU time (measured in docs/decisions/perf-cpu-per-photo.md).
LAMBDA_MB_PER_VCPU = 1769


def cpu_budget() -> int:
    """$PHOTOVEIL_THREADS, else the Lambda function's vCPUs, else this machine's CPUs."""
    if configured := os.environ.get("PHOTOVEIL_THREADS"):
        return max(1, int(configured))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if lambda_mb := os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"):
        return max(1, min(cpus, int(lambda_mb) // LAMBDA_MB_PER_VCPU))
    return cpus
