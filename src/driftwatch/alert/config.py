"""Alert configuration (a YAML file, a mapping, or CLI flags) and the sinks it builds.

```yaml
console: true
jsonl: traces/findings.jsonl
webhook:
  url: https://hooks.slack.com/services/T000/B000/XXXX
  timeout_s: 5
  retries: 5
min_severity: medium
cooldown_s: 300
dedupe: true
```

Strict: unknown fields, wrong types (``retries: "5"``) and bad values fail with one line
naming the field (:class:`~driftwatch.core.errors.SpecError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from driftwatch.alert.base import BaseSink
from driftwatch.alert.console import ConsoleSink
from driftwatch.alert.jsonl import JsonlSink
from driftwatch.alert.prometheus import PrometheusSink
from driftwatch.alert.recorder import AlertRecorder, CountingRecorder, StatusListener, as_recorder
from driftwatch.alert.webhook import WebhookSink, check_webhook_url
from driftwatch.alert.wrappers import CooldownSink, DedupeSink, RecordedSink
from driftwatch.core.clock import SYSTEM_CLOCK, Clock
from driftwatch.core.protocols import FindingSink
from driftwatch.core.records import Severity
from driftwatch.core.yamlfile import load_model, validate

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["AlertConfig", "WebhookConfig", "build_sinks"]


class WebhookConfig(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    url: str
    timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=5, ge=0, le=100)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        return check_webhook_url(value)

    @model_validator(mode="after")
    def _backoff_in_order(self) -> WebhookConfig:
        if self.backoff_s > self.max_backoff_s:
            raise ValueError("backoff_s must not exceed max_backoff_s")
        return self


class AlertConfig(BaseModel):
    """Which sinks, and how alerts are thinned out before they reach them.

    ``min_severity`` applies to every destination; ``cooldown_s`` (per rule) and
    ``dedupe`` (per rule and run) wrap each destination. ``webhook`` may be just a URL."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    console: bool = False
    jsonl: str | None = None
    webhook: WebhookConfig | None = None
    min_severity: str = "low"
    cooldown_s: float | None = Field(default=None, ge=0)
    dedupe: bool = False

    @field_validator("webhook", mode="before")
    @classmethod
    def _url_alone(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @field_validator("min_severity")
    @classmethod
    def _known_severity(cls, value: str) -> str:
        return Severity.parse(value).label

    @field_validator("jsonl")
    @classmethod
    def _non_empty_path(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a file path, not empty")
        return value

    @classmethod
    def load(cls, path: str | Path) -> AlertConfig:
        """From a YAML file; errors say ``path:line: field: problem``."""
        return load_model(cls, path)

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "alert config") -> AlertConfig:
        """From already-parsed data (flags, a section of a bigger file)."""
        return validate(cls, data, path=source, lines={})

    @property
    def severity(self) -> Severity:
        return Severity.parse(self.min_severity)


def _recorder(store: object | None, listeners: list[StatusListener]) -> AlertRecorder | None:
    inner = as_recorder(store) if store is not None else None
    if not listeners:
        return inner
    return CountingRecorder(inner, listeners)


def _destinations(config: AlertConfig, clock: Clock) -> list[BaseSink]:
    severity = config.severity
    out: list[BaseSink] = []
    if config.console:
        out.append(ConsoleSink(min_severity=severity))
    if config.jsonl is not None:
        out.append(JsonlSink(config.jsonl, min_severity=severity))
    if config.webhook is not None:
        hook = config.webhook
        out.append(
            WebhookSink(
                hook.url,
                timeout_s=hook.timeout_s,
                retries=hook.retries,
                backoff_s=hook.backoff_s,
                max_backoff_s=hook.max_backoff_s,
                headers=hook.headers,
                min_severity=severity,
                clock=clock,
            )
        )
    return out


def build_sinks(
    config: AlertConfig,
    *,
    store: object | None = None,
    registry: CollectorRegistry | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> list[FindingSink]:
    """The sinks ``config`` asks for, wrapped for cooldown and dedupe, recording their
    alerts into ``store`` (a :class:`driftwatch.store.Store`) when given, plus a
    :class:`PrometheusSink` counting findings and alert statuses when ``registry`` is
    given. Pass them to the engine; the engine's ``close_components`` or the caller
    closes them."""
    prometheus = PrometheusSink(registry) if registry is not None else None
    recorder = _recorder(store, [prometheus.alert_recorded] if prometheus else [])
    sinks: list[FindingSink] = []
    for destination in _destinations(config, clock):
        wrapped: BaseSink = destination
        if config.cooldown_s:
            wrapped = CooldownSink(wrapped, config.cooldown_s, clock=clock)
        if config.dedupe:
            wrapped = DedupeSink(wrapped, clock=clock)
        if not getattr(wrapped, "records_own_alerts", False):
            wrapped = RecordedSink(wrapped, clock=clock)
        if recorder is not None:
            wrapped.attach_recorder(recorder)
        sinks.append(wrapped)
    if prometheus is not None:
        sinks.append(prometheus)
    return sinks
