"""The sink base: severity filtering and the never-raise guarantee, written once.

Implements :class:`driftwatch.core.FindingSink`. The engine calls ``send`` from its worker
thread with findings in detection order, after they are stored. A subclass implements
``deliver`` (which may raise: ``send`` logs the error and counts it in ``failures``) and,
if it holds resources, ``close``. ``deliver`` may block briefly (a webhook with a short
timeout), never indefinitely. Later sinks (webhook, Prometheus) and wrappers (dedupe,
cooldown) plug in here: a wrapper is a sink whose ``deliver`` forwards to another sink
(:mod:`driftwatch.alert.wrappers`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from driftwatch.core.logging import get_logger
from driftwatch.core.records import Finding, Severity

__all__ = ["BaseSink"]

log = get_logger(__name__)


class BaseSink:
    """``send`` keeps the findings at or above ``min_severity`` and passes them to
    ``deliver``; it never raises. Thread-safe: deliveries are serialised by a lock."""

    name: str = ""
    #: True for sinks that write their own ``alerts`` rows (the webhook, the wrappers);
    #: the engine then records none for them and offers its store through
    #: :meth:`attach_recorder` instead.
    records_own_alerts: bool = False

    def __init__(self, *, min_severity: Severity | str | int = Severity.INFO) -> None:
        self.min_severity = Severity.parse(min_severity)
        self.failures = 0
        self._send_lock = threading.Lock()

    _spec: dict[str, Any] | None = None

    @property
    def spec(self) -> dict[str, Any]:
        """Registered name and creation arguments (set by ``@sink``)."""
        return self._spec if self._spec is not None else {"name": self.name, "args": {}}

    @spec.setter
    def spec(self, value: dict[str, Any]) -> None:
        self._spec = value

    def accepts(self, finding: Finding) -> bool:
        """Whether ``send`` would deliver this finding (the engine uses it to record
        alerts only for findings a sink actually passed on)."""
        return finding.severity >= self.min_severity

    def send(self, findings: Sequence[Finding]) -> None:
        selected = [finding for finding in findings if self.accepts(finding)]
        if not selected:
            return
        with self._send_lock:
            try:
                self.deliver(selected)
            except Exception as exc:
                self.failures += 1
                log.warning(
                    "sink delivery failed", sink=self.name, count=len(selected), error=repr(exc)
                )

    def attach_recorder(self, recorder: object) -> None:
        """Where to record delivery status (a store or an ``AlertRecorder``); only sinks
        with ``records_own_alerts`` use it."""

    def deliver(self, findings: Sequence[Finding]) -> None:
        """Deliver already-filtered findings. May raise."""
        raise NotImplementedError

    def close(self) -> None:
        return None
