"""The monitor contract, written once.

A monitor reads the span records of one run, in order, and returns findings. The rules
every implementation may rely on and must keep:

- **Thread.** The engine calls ``observe``/``observe_batch`` and ``end_run`` from its one
  worker thread, never concurrently, never from the agent's thread. A monitor used
  outside the engine (a test, an offline re-scan) is called from the caller's thread; it
  still needs no locks of its own.
- **Order.** Each run's records arrive in the order they were submitted. Records of
  different runs interleave between calls. ``end_run`` comes after the run's last
  records and is the last call for that run: drop the run's state there.
- **State.** A monitor may keep per-run state keyed by ``run_id``; nothing else is shared.
- **Errors.** A monitor may raise. The engine turns the exception into a
  ``monitor_error`` finding for that run and carries on with the other monitors, runs
  and batches. Expected failures (a rule's SQL failing at runtime) are better reported
  by the monitor itself as ``monitor_error`` findings with a precise rule id.
- **Blocking.** Evaluation sits between the agent and its alerts: no long I/O (no
  network calls without a short timeout). Records and ``final_state`` are read-only.
- **Resources.** A monitor holding resources (a DuckDB connection) may define
  ``close()``; the engine calls it once from its own ``close``, after the last batch.

Two optional extensions: :class:`FindingObserver` (a monitor that reads the other
monitors' findings, e.g. a drift detector over violations) and :class:`DeferredFindings`
(a monitor whose findings are ready later, off the worker thread, e.g. an LLM judge).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, Self, runtime_checkable

from driftwatch.core.clock import SYSTEM_CLOCK, Clock
from driftwatch.core.ids import DEFAULT_IDS, IdSource
from driftwatch.core.records import Finding, FindingKind, Severity, SpanRecord

__all__ = [
    "MONITOR_ERROR_SEVERITY",
    "BaseMonitor",
    "BatchObserver",
    "DeferredFindings",
    "FindingObserver",
    "Monitor",
    "error_finding",
]

# A monitor that cannot evaluate is a blind spot in the safety net: worth a look, not a page.
MONITOR_ERROR_SEVERITY = Severity.HIGH


@runtime_checkable
class Monitor(Protocol):
    """What the engine needs from a monitor (see the module docstring for the rules).

    ``name`` is what findings carry in their ``monitor`` column; ``spec`` is the registered
    name and creation arguments (``{"name": ..., "args": {...}}``, set by ``@monitor``).
    """

    name: str
    spec: dict[str, Any]

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        """Findings about ``records`` (the next records of ``run_id``, in order)."""
        ...

    def end_run(self, run_id: str, final_state: Mapping[str, Any] | None) -> Sequence[Finding]:
        """Findings once the run is over. ``final_state`` is the sandbox snapshot
        (``{"files": {path: content}, ...}``) or None when there is none."""
        ...


@runtime_checkable
class BatchObserver(Protocol):
    """Optional: a monitor that is cheaper per micro-batch than per run (one SQL query
    for all runs) implements this; the engine then calls it *instead of* ``observe``,
    once per micro-batch, with every run's records (runs in first-arrival order, records
    in arrival order). Return findings keyed by run id; if it raises, every run in the
    batch gets a ``monitor_error`` finding."""

    def observe_batch(
        self, records_by_run: Mapping[str, Sequence[SpanRecord]]
    ) -> Mapping[str, Sequence[Finding]]: ...


@runtime_checkable
class FindingObserver(Protocol):
    """Optional: a monitor that also reads the findings of the monitors beside it.

    After every monitor has seen a micro-batch (a "round"), the engine calls
    ``observe_findings`` once per run of that batch, on the worker thread, with every
    finding of the round for that run (in production order; possibly none, so the call
    doubles as a "the round's records are evaluated" tick). Findings from ``end_run`` and
    from :class:`DeferredFindings` are not passed, nor are other observers' results.
    Return the observer's own findings for the run (they are delivered with the round).
    It may raise; the engine then reports a ``monitor_error`` as for ``observe``.
    """

    def observe_findings(self, run_id: str, findings: Sequence[Finding]) -> Sequence[Finding]: ...


@runtime_checkable
class DeferredFindings(Protocol):
    """Optional: a monitor whose findings become ready later, on a thread of its own
    (an LLM judge waiting for a model answer must not stall the worker).

    The engine calls ``bind_delivery(deliver)`` once, when it is built. ``deliver`` is
    thread-safe, never raises and blocks only as backpressure (a full engine queue); the
    findings passed to it are stored and sent by the worker soon after. Once
    ``end_run(run_id)`` has been called the monitor must no longer ``deliver`` that run's
    findings: ``end_run`` waits (bounded) for what is pending and returns it instead, so
    the engine's ``end_run`` has them all.
    Unbound (a monitor used outside the engine), it returns ready findings from its next
    ``observe`` or ``end_run`` call.
    """

    def bind_delivery(self, deliver: Callable[[Sequence[Finding]], None]) -> None: ...


def error_finding(
    *,
    monitor_name: str,
    monitor_spec: dict[str, Any],
    run_id: str,
    rule_id: str,
    error_type: str,
    error: str,
    phase: str,
    ids: IdSource,
    clock: Clock,
    trace_id: str | None = None,
    turn: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> Finding:
    """A ``monitor_error`` finding: the monitor (or one of its rules) could not evaluate.
    ``phase`` is ``observe`` or ``end_run``; ``details`` are added to the evidence."""
    return Finding(
        finding_id=ids.finding_id(),
        run_id=run_id,
        trace_id=trace_id,
        span_id=None,
        turn=turn,
        monitor=monitor_name,
        rule_id=rule_id,
        kind=FindingKind.MONITOR_ERROR,
        severity=MONITOR_ERROR_SEVERITY,
        message=f"{rule_id} could not be evaluated: {error_type}: {error}"[:1000],
        evidence={"error_type": error_type, "error": error, "phase": phase, **(details or {})},
        detected_at=clock.now(),
        monitor_spec=monitor_spec,
    )


class BaseMonitor:
    """No-op defaults plus :meth:`finding` to build findings consistently.

    The engine shares its ids and clock with every ``BaseMonitor`` through :meth:`bind`
    (so a test with ``SequentialIds`` and ``FrozenClock`` is deterministic end to end).
    """

    name: str = ""
    ids: IdSource = DEFAULT_IDS
    clock: Clock = SYSTEM_CLOCK
    _spec: dict[str, Any] | None = None

    @property
    def spec(self) -> dict[str, Any]:
        return self._spec if self._spec is not None else {"name": self.monitor_name, "args": {}}

    @spec.setter
    def spec(self, value: dict[str, Any]) -> None:
        self._spec = value

    @property
    def monitor_name(self) -> str:
        return self.name or type(self).__name__

    def bind(self, *, ids: IdSource, clock: Clock) -> Self:
        self.ids = ids
        self.clock = clock
        return self

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        return ()

    def end_run(self, run_id: str, final_state: Mapping[str, Any] | None) -> Sequence[Finding]:
        return ()

    def close(self) -> None:
        return None

    def finding(
        self,
        *,
        run_id: str,
        rule_id: str,
        message: str,
        severity: Severity,
        kind: FindingKind = FindingKind.VIOLATION,
        record: SpanRecord | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        turn: int | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> Finding:
        """A finding with a fresh id, ``detected_at`` from the clock and this monitor's
        name and spec. Trace, span and turn come from ``record`` unless given."""
        if record is not None:
            trace_id = trace_id or record.trace_id
            span_id = span_id or record.span_id
            turn = turn if turn is not None else record.turn
        return Finding(
            finding_id=self.ids.finding_id(),
            run_id=run_id,
            trace_id=trace_id,
            span_id=span_id,
            turn=turn,
            monitor=self.monitor_name,
            rule_id=rule_id,
            kind=kind,
            severity=severity,
            message=message,
            evidence=dict(evidence or {}),
            detected_at=self.clock.now(),
            monitor_spec=self.spec,
        )

    def error_finding(
        self,
        *,
        run_id: str,
        rule_id: str,
        error_type: str,
        error: str,
        phase: str,
        trace_id: str | None = None,
        turn: int | None = None,
    ) -> Finding:
        """A ``monitor_error`` finding from this monitor (see :func:`error_finding`)."""
        return error_finding(
            monitor_name=self.monitor_name,
            monitor_spec=self.spec,
            run_id=run_id,
            rule_id=rule_id,
            error_type=error_type,
            error=error,
            phase=phase,
            ids=self.ids,
            clock=self.clock,
            trace_id=trace_id,
            turn=turn,
        )
