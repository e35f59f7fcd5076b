"""Sinks that wrap another sink: dedupe, cooldown, and status recording.

A wrapper passes some findings on to the sink it wraps and holds the others back. Held
back findings are recorded as ``suppressed`` in the ``alerts`` table under the wrapped
sink's name, so SQL shows every finding the destination accepted and what became of it.
Findings passed on are recorded by the wrapped sink if it records its own alerts (the
webhook), otherwise here: ``sent``, or ``failed`` when the wrapped sink reported a
failure. The engine leaves alert rows of these sinks to them (``records_own_alerts``).

Wrappers nest (``DedupeSink(CooldownSink(WebhookSink(url)))``) and all report the
innermost name. Called on the engine's worker thread, like any sink.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from driftwatch.alert.base import BaseSink
from driftwatch.alert.recorder import FAILED, SENT, SUPPRESSED, AlertRecorder, as_recorder
from driftwatch.alert.registry import sink
from driftwatch.core.clock import SYSTEM_CLOCK, Clock
from driftwatch.core.logging import get_logger
from driftwatch.core.protocols import FindingSink
from driftwatch.core.records import Finding

__all__ = ["CooldownSink", "DedupeSink", "ForwardingSink", "RecordedSink"]

log = get_logger(__name__)

COOLDOWN_KEY = "alert.cooldown_suppressed"


class ForwardingSink(BaseSink):
    """Base of the wrappers: ``select`` decides what goes on; the rest is recorded as
    suppressed. The wrapped sink's ``accepts`` (its minimum severity) still applies."""

    records_own_alerts = True

    def __init__(
        self, inner: FindingSink, *, recorder: object | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        super().__init__()
        self.inner = inner
        self.name = str(getattr(inner, "name", "") or type(inner).__name__)
        self.suppressed = 0
        self._clock = clock
        self._recorder: AlertRecorder | None = None
        if recorder is not None:
            self.attach_recorder(recorder)

    def accepts(self, finding: Finding) -> bool:
        accepts = getattr(self.inner, "accepts", None)
        return bool(accepts(finding)) if callable(accepts) else True

    def attach_recorder(self, recorder: object) -> None:
        """Record through ``recorder``; the wrapped sink gets it too. Ignored if set."""
        if self._recorder is not None:
            return
        self._recorder = as_recorder(recorder)
        attach = getattr(self.inner, "attach_recorder", None)
        if callable(attach):
            attach(self._recorder)

    def select(self, findings: Sequence[Finding]) -> list[Finding]:
        """The findings to pass on (possibly changed); the others are suppressed."""
        return list(findings)

    def deliver(self, findings: Sequence[Finding]) -> None:
        chosen = self.select(findings)
        passed = {item.finding_id for item in chosen}
        held = [item for item in findings if item.finding_id not in passed]
        self.suppressed += len(held)
        self._record(held, SUPPRESSED, None)
        if not chosen:
            return
        failures_before = getattr(self.inner, "failures", 0)
        error: str | None = None
        try:
            self.inner.send(chosen)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("wrapped sink failed", sink=self.name, error=error)
        if error is None and getattr(self.inner, "failures", 0) != failures_before:
            error = "delivery failed (see log)"
        if not getattr(self.inner, "records_own_alerts", False):
            self._record(chosen, FAILED if error else SENT, error)

    def _record(self, findings: Sequence[Finding], status: str, error: str | None) -> None:
        if self._recorder is None or not findings:
            return
        at = self._clock.now()
        attempts = 0 if status == SUPPRESSED else 1
        ids = [item.finding_id for item in findings]
        try:
            self._recorder.record_many(ids, self.name, status, attempts, at, error)
        except Exception:
            log.exception("recording alerts failed", sink=self.name, status=status)

    def close(self) -> None:
        self.inner.close()


@sink("recorded")
class RecordedSink(ForwardingSink):
    """Passes everything on; records ``sent``/``failed`` for a sink that does not record
    its own alerts (console, JSONL), through a recorder of our choosing (so Prometheus can
    count them)."""


@sink("dedupe")
class DedupeSink(ForwardingSink):
    """One alert per (rule_id, run_id): the first finding of a rule in a run goes on,
    later ones are suppressed (counted in ``suppressed``). Remembers the last
    ``max_keys`` pairs, oldest forgotten first."""

    def __init__(
        self,
        inner: FindingSink,
        *,
        max_keys: int = 100_000,
        recorder: object | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(inner, recorder=recorder, clock=clock)
        self.max_keys = max_keys
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def select(self, findings: Sequence[Finding]) -> list[Finding]:
        chosen = []
        for item in findings:
            key = (item.rule_id, item.run_id)
            if key in self._seen:
                self._seen.move_to_end(key)
                continue
            self._seen[key] = None
            if len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
            chosen.append(item)
        return chosen


@sink("cooldown")
class CooldownSink(ForwardingSink):
    """At most one alert per rule_id every ``cooldown_s`` seconds (by ``clock``). Findings
    inside the window are suppressed and counted; the next alert of that rule says how
    many (message suffix, and ``alert.cooldown_suppressed`` in its evidence)."""

    def __init__(
        self,
        inner: FindingSink,
        cooldown_s: float,
        *,
        recorder: object | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if cooldown_s < 0:
            raise ValueError(f"cooldown_s must be >= 0, got {cooldown_s}")
        super().__init__(inner, recorder=recorder, clock=clock)
        self.cooldown_ns = int(cooldown_s * 1e9)
        self._last_sent_ns: dict[str, int] = {}
        self._held: dict[str, int] = {}

    def select(self, findings: Sequence[Finding]) -> list[Finding]:
        chosen = []
        now = self._clock.time_ns()
        for item in findings:
            last = self._last_sent_ns.get(item.rule_id)
            if last is not None and now - last < self.cooldown_ns:
                self._held[item.rule_id] = self._held.get(item.rule_id, 0) + 1
                continue
            self._last_sent_ns[item.rule_id] = now
            chosen.append(self._with_summary(item, self._held.pop(item.rule_id, 0)))
        return chosen

    @staticmethod
    def _with_summary(finding: Finding, held: int) -> Finding:
        if not held:
            return finding
        noun = "alert" if held == 1 else "alerts"
        evidence: dict[str, Any] = {**finding.evidence, COOLDOWN_KEY: held}
        return dataclasses.replace(
            finding,
            message=f"{finding.message} (+{held} earlier {noun} held back by cooldown)",
            evidence=evidence,
        )
