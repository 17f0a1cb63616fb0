"""The deployed pipeline's settings as the model needs them, read from template.yaml (its parameter
defaults, or overrides by parameter name) with cfn-lint's loader, as the local stack reads it.

Figures the template does not hold (account quotas, the Rekognition call's latency, the S3 and DynamoDB
round trips) are model inputs with stated defaults, overridable the same way by their field name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from photoveil.local.intrinsics import Resolver
from photoveil.local.template import load_template

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
WORKER = "BlurFunction"
QUEUE = "BlurQueue"


class ConfigError(ValueError):
    """An override names no parameter or field, or the template lacks what the model reads."""


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides how fast uploads become published photos."""

    batch_size: int
    batching_window_s: float
    max_concurrency: int
    reserved_concurrency: int
    function_timeout_s: float
    memory_mb: int
    visibility_timeout_s: float
    max_receive_count: int
    detector: str
    moderation: bool
    # Not in the template: account quotas and assumptions (docs/deploy.md states them).
    account_concurrency: int = 1000
    faces_tps: float = 100.0  # DetectFaces default quota, us-east-1
    moderation_tps: float = 100.0  # DetectModerationLabels (assumed equal to DetectFaces' default)
    rekognition_latency_s: float = 0.5  # one call's round trip: assumed, as docs/deploy.md's cost table does
    throttle_latency_s: float = 0.05  # a throttled call's round trip (assumed)
    io_overhead_s: float = 0.15  # S3 get/put and DynamoDB writes per photo (assumed; not measured here)
    notify_delay_s: float = 0.5  # S3 event -> message visible in SQS (assumed)
    # After an invocation, before its slot takes the next batch (deleting the batch, polling again): on
    # AWS the mapping's own work, not billed and not measured (0); the local stack's is measured.
    poll_overhead_s: float = 0.0
    record_min_time_left_s: float = 15.0  # the worker starts a record only with this much time left
    env_idle_reclaim_s: float = 600.0  # an idle execution environment is kept this long (assumed)
    service_jitter: float = 0.15  # coefficient of variation of per-photo time around its median

    @property
    def uses_rekognition(self) -> bool:
        return self.detector in ("both", "rekognition")

    def with_overrides(self, overrides: dict[str, str]) -> PipelineConfig:
        """A copy with fields set by name (snake_case field names only)."""
        kinds = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, text in overrides.items():
            if name not in kinds:
                raise ConfigError(f"no setting {name!r}; known: {', '.join(sorted(kinds))}")
            changes[name] = _parse(text, str(kinds[name]))
        return replace(self, **changes)


def _parse(text: str, kind: str) -> Any:
    if kind == "bool":
        return text.strip().lower() in ("1", "true", "yes", "on")
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    return text


def _moderates(value: Any) -> bool:
    """The template's Moderation parameter: a service name ("rekognition") or "off"."""
    return str(value).strip().lower() not in ("off", "false", "no", "0", "")


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Each parameter's default, replaced by an override of the same (CamelCase) name."""
    declared = template.get("Parameters") or {}
    unknown = set(overrides) - set(declared)
    if unknown:
        raise ConfigError(f"not template parameters: {', '.join(sorted(unknown))}")
    return {name: overrides.get(name, spec.get("Default")) for name, spec in declared.items()}


def from_template(path: Path = TEMPLATE, overrides: dict[str, str] | None = None) -> PipelineConfig:
    """The model's settings from the template at ``path``; ``overrides`` mixes parameter and field names."""
    template = load_template(path)
    overrides = overrides or {}
    params = {k: v for k, v in overrides.items() if k[:1].isupper()}
    values = parameter_values(template, params)
    resolve = Resolver(template, refs=values)

    def setting(value: Any) -> Any:
        """VALUE resolved as the deployed stack resolves it (ConfigError if only AWS could)."""
        if (got := resolve(value)) is None:
            raise ConfigError(f"{value!r} does not resolve from the template's parameters")
        return got

    resources = template["Resources"]
    worker = resources[WORKER]["Properties"]
    queue = resources[QUEUE]["Properties"]
    source = next(e["Properties"] for e in worker["Events"].values() if e["Type"] == "SQS")
    scaling = source.get("ScalingConfig") or {}
    config = PipelineConfig(
        batch_size=int(setting(source.get("BatchSize", 10))),
        batching_window_s=float(setting(source.get("MaximumBatchingWindowInSeconds", 0))),
        max_concurrency=int(setting(scaling.get("MaximumConcurrency", 1000))),
        # No reservation (AWS::NoValue, when the parameter is 0) resolves to None.
        reserved_concurrency=int(resolve(worker.get("ReservedConcurrentExecutions", 0)) or 0),
        function_timeout_s=float(setting(worker.get("Timeout", 3))),
        memory_mb=int(setting(worker.get("MemorySize", 128))),
        visibility_timeout_s=float(setting(queue.get("VisibilityTimeout", 30))),
        max_receive_count=int(setting(queue["RedrivePolicy"]["maxReceiveCount"])),
        detector=str(values.get("Detector", "centerface")),
        moderation=_moderates(values.get("Moderation", "off")),
    )
    fields_only = {k: v for k, v in overrides.items() if not k[:1].isupper()}
    return config.with_overrides(fields_only)
