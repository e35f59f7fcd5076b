"""Drift of rule adherence: a change-point detector over the per-turn violation series.

The series. For each complete turn, the severity-weighted sum of the violations the
other monitors found in it (weights :data:`DEFAULT_WEIGHTS`: info 0, low 1, medium 2,
high 3, critical 4; a "violation" is a finding of a kind in ``kinds``). The detector sees
that sum divided by the critical weight and capped at ``turn_cap`` (default 1): one
critical violation is one unit, and one turn full of violations (an edit, a chmod and a
delete of the same file) counts as one bad turn, not as drift on its own.

The detector (:mod:`driftwatch.stats.changepoint`, a pure core+numpy library: ``monitor``
imports it although ``stats`` sits to its right in docs/architecture.md) is CUSUM by default,
with its baseline (mean, σ floored at ``min_sigma``) estimated from the first ``warmup``
turns; Page–Hinkley with ``detector="page_hinkley"``. At an alarm:

- the onset is the earlier of the detector's own estimate and the turn after the
  minimum of the Page–Hinkley sum (drift ``onset_delta``) over the series so far. CUSUM's
  own estimate (the turn after S was last 0) comes late on a slow rise: each clean turn
  between the first sparse violations pulls S back to 0;
- the alarm is confirmed with a one-sided Fisher exact test (``confirm_alpha``) that turns
  with violations are more frequent from the onset on than before it (at least
  ``min_baseline_turns`` turns before). An agent that violates at a steady rate from the
  start is not drifting; an unconfirmed alarm re-arms the detector.

Defaults were picked on simulated runs (``simulated/drifter`` on oversight-config,
hazard rising after turn 15) and on steady Bernoulli series: see
``tests/monitor/test_drift_simulated.py`` and the measurements in the monitor docs.
It raises at most ONE ``drift`` finding per run, at the alarm turn: the finding's
``turn`` is the estimated onset, its span the turn span of the alarm turn; the evidence
has the series so far, the onset, the alarm turn, the statistic, the confirmation and
the detector's parameters. The onset is searched within the last 200 turns.

Where the violations come from: the engine shows this monitor each round's findings
(:class:`~driftwatch.monitor.base.FindingObserver`) after every monitor has seen the
round's records; a finding is placed in the turn of its span (else its ``turn``), and
one for a turn already evaluated counts in the next. Turns are complete as described in
:mod:`driftwatch.monitor.turns`; a turn number skipped by the agent counts as a clean
turn. Findings produced by ``end_run`` (final-state checks) are not per turn and are
not counted. Used without an engine, call ``observe`` then ``observe_findings``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from driftwatch.core.records import Finding, FindingKind, Severity, SpanRecord
from driftwatch.monitor.base import BaseMonitor
from driftwatch.monitor.registry import monitor
from driftwatch.monitor.turngroup import SharesTurns
from driftwatch.monitor.turns import Turn

# stats is a pure library of core + numpy; the detectors are its live half
from driftwatch.stats.changepoint import (
    ChangeDetector,
    ChangePoint,
    CusumDetector,
    PageHinkleyDetector,
)
from driftwatch.stats.compare import fisher_exact_greater

__all__ = ["DEFAULT_WEIGHTS", "DriftMonitor"]

DEFAULT_WEIGHTS: Final[dict[str, float]] = {
    "info": 0.0,
    "low": 1.0,
    "medium": 2.0,
    "high": 3.0,
    "critical": 4.0,
}
_MAX_GAP: Final = 100  # skipped turn numbers filled with clean turns, at most this many
_MAX_SERIES: Final = 200  # turns of series kept for the evidence


@dataclass(slots=True)
class _Run:
    completed: list[Turn] = field(default_factory=list)  # waiting for observe_findings
    pending: dict[int, float] = field(default_factory=dict)  # turn → weighted sum
    pending_counts: dict[int, int] = field(default_factory=dict)
    carry: float = 0.0  # violations of turns already evaluated
    carry_count: int = 0
    detector: ChangeDetector | None = None
    evaluated_upto: int | None = None
    synthetic: bool = False
    series: deque[float] = field(default_factory=lambda: deque(maxlen=_MAX_SERIES))
    inputs: deque[float] = field(default_factory=lambda: deque(maxlen=_MAX_SERIES))
    rejected: int = 0  # alarms the confirmation test turned down
    counts: deque[int] = field(default_factory=lambda: deque(maxlen=_MAX_SERIES))
    turn_spans: dict[int, SpanRecord | None] = field(default_factory=dict)
    trace_id: str | None = None
    alarm: ChangePoint | None = None


@monitor("drift")
class DriftMonitor(BaseMonitor, SharesTurns):
    """Change-point detection on the per-turn adherence series (module docstring).

    Thread: the engine's worker. Never blocks; O(1) work and state per turn (the
    evidence keeps the last 200 turns). Raises only on nonsensical arguments (at
    construction).
    """

    def __init__(
        self,
        *,
        detector: Literal["cusum", "page_hinkley"] = "cusum",
        k: float = 0.5,
        h: float = 5.0,
        warmup: int = 10,
        min_sigma: float = 0.4,
        delta: float = 0.05,
        threshold: float = 3.0,
        min_turns: int = 5,
        weights: Mapping[str, float] | None = None,
        turn_cap: float = 1.0,
        kinds: Sequence[str] = ("violation",),
        onset_delta: float = 0.05,
        confirm_alpha: float | None = 0.01,
        min_baseline_turns: int = 5,
        severity: str = "high",
        rule_id: str = "adherence-drift",
    ) -> None:
        super().__init__()
        if detector not in ("cusum", "page_hinkley"):
            raise ValueError(f"unknown detector {detector!r} (known: cusum, page_hinkley)")
        self.detector = detector
        self.params: dict[str, float] = (
            {"k": k, "h": h, "warmup": warmup, "min_sigma": min_sigma}
            if detector == "cusum"
            else {"delta": delta, "threshold": threshold, "min_turns": min_turns}
        )
        self.make_detector(1)  # validates the parameters now, not mid-run
        merged = {**DEFAULT_WEIGHTS, **{key.lower(): v for key, v in (weights or {}).items()}}
        self.weights = {Severity.parse(key): float(value) for key, value in merged.items()}
        if turn_cap <= 0 or max(self.weights.values()) <= 0:
            raise ValueError("turn_cap and the largest weight must be positive")
        self.scale = max(self.weights.values())
        self.turn_cap = turn_cap
        if onset_delta < 0 or min_baseline_turns < 1:
            raise ValueError("onset_delta must be >= 0 and min_baseline_turns >= 1")
        if confirm_alpha is not None and not 0 < confirm_alpha <= 1:
            raise ValueError("confirm_alpha must be in (0, 1] or None")
        self.onset_delta = onset_delta
        self.confirm_alpha = confirm_alpha
        self.min_baseline_turns = min_baseline_turns
        self.kinds = frozenset(FindingKind(kind) for kind in kinds)
        self.severity = Severity.parse(severity)
        self.rule_id = rule_id
        self._runs: dict[str, _Run] = {}

    def make_detector(self, start_turn: int) -> ChangeDetector:
        """A fresh detector with this monitor's parameters, numbering turns from
        ``start_turn``."""
        p = self.params
        if self.detector == "cusum":
            return CusumDetector(
                k=p["k"],
                h=p["h"],
                warmup=int(p["warmup"]),
                min_sigma=p["min_sigma"],
                start_turn=start_turn,
            )
        return PageHinkleyDetector(
            delta=p["delta"],
            threshold=p["threshold"],
            min_turns=int(p["min_turns"]),
            start_turn=start_turn,
        )

    def _run(self, run_id: str) -> _Run:
        state = self._runs.get(run_id)
        if state is None:
            state = self._runs[run_id] = _Run()
        return state

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        state = self._run(run_id)
        if records and state.trace_id is None:
            state.trace_id = records[0].trace_id
        state.completed.extend(self._turn_feed.add(run_id, records))
        return ()

    def observe_findings(self, run_id: str, findings: Sequence[Finding]) -> Sequence[Finding]:
        state = self._run(run_id)
        for item in findings:
            if item.kind in self.kinds and item.run_id == run_id:
                self._place(run_id, state, item)
        completed, state.completed = state.completed, []
        return self._evaluate(run_id, state, completed)

    def end_run(self, run_id: str, final_state: Mapping[str, Any] | None) -> Sequence[Finding]:
        state = self._runs.pop(run_id, None)
        if state is None:
            return ()
        return self._evaluate(run_id, state, [*state.completed, *self._turn_feed.finish(run_id)])

    # --- the series -------------------------------------------------------------------

    def _place(self, run_id: str, state: _Run, item: Finding) -> None:
        weight = self.weights.get(item.severity, 0.0)
        number = self._turn_feed.turn_of_span(run_id, item.span_id)
        if number is None:
            number = item.turn
        if number is None or (state.evaluated_upto is not None and number <= state.evaluated_upto):
            state.carry += weight
            state.carry_count += 1
            return
        state.pending[number] = state.pending.get(number, 0.0) + weight
        state.pending_counts[number] = state.pending_counts.get(number, 0) + 1

    def _evaluate(self, run_id: str, state: _Run, turns: Sequence[Turn]) -> list[Finding]:
        found: list[Finding] = []
        for turn in turns:
            state.synthetic = state.synthetic or turn.synthetic
            previous = state.evaluated_upto
            if previous is not None and turn.number <= previous:
                continue  # a turn can only be evaluated once
            if previous is not None:  # skipped turn numbers are clean turns
                for _ in range(min(turn.number - previous - 1, _MAX_GAP)):
                    self._step(run_id, state, None, 0.0, 0, found)
            weighted = state.pending.pop(turn.number, 0.0) + state.carry
            count = state.pending_counts.pop(turn.number, 0) + state.carry_count
            state.carry, state.carry_count = 0.0, 0
            state.evaluated_upto = turn.number
            if state.detector is None:
                state.detector = self.make_detector(turn.number)
            self._step(run_id, state, turn, weighted, count, found)
        return found

    def _step(
        self,
        run_id: str,
        state: _Run,
        turn: Turn | None,
        weighted: float,
        count: int,
        found: list[Finding],
    ) -> None:
        value = min(weighted / self.scale, self.turn_cap)
        state.series.append(weighted)
        state.counts.append(count)
        state.inputs.append(value)
        if turn is not None:
            state.turn_spans = {turn.number: turn.anchor}  # only the alarm turn's is needed
        if state.alarm is not None or state.detector is None:
            return
        alarm = state.detector.update(value)
        if alarm is None:
            return
        last = alarm.alarm_turn
        onset = min(alarm.onset_turn, self._min_onset(state.inputs, last - len(state.inputs) + 1))
        confirmation = self._confirm(state.inputs, last - len(state.inputs) + 1, onset)
        if confirmation is not None and not confirmation["confirmed"]:
            state.rejected += 1
            state.detector.reset()
            return
        state.alarm = alarm
        found.append(self._finding(run_id, state, alarm, onset, confirmation))

    def _min_onset(self, inputs: Sequence[float], first_turn: int) -> int:
        """The turn after the minimum of the Page–Hinkley cumulative sum over ``inputs``."""
        mean = cumulative = minimum = 0.0
        minimum_turn = first_turn - 1
        for index, value in enumerate(inputs):
            mean += (value - mean) / (index + 1)
            cumulative += value - mean - self.onset_delta
            if cumulative <= minimum:
                minimum, minimum_turn = cumulative, first_turn + index
        return minimum_turn + 1

    def _confirm(
        self, inputs: Sequence[float], first_turn: int, onset: int
    ) -> dict[str, Any] | None:
        """Fisher's test of "more violating turns from ``onset`` on than before"."""
        if self.confirm_alpha is None:
            return None
        split = onset - first_turn
        before, after = list(inputs)[:split], list(inputs)[split:]
        bad_before = sum(1 for value in before if value > 0)
        bad_after = sum(1 for value in after if value > 0)
        p_value = (
            fisher_exact_greater(bad_after, len(after), bad_before, len(before))
            if len(before) >= self.min_baseline_turns and after
            else 1.0
        )
        return {
            "test": "fisher_exact_greater",
            "p_value": round(p_value, 6),
            "alpha": self.confirm_alpha,
            "violating_turns_before": [bad_before, len(before)],
            "violating_turns_after": [bad_after, len(after)],
            "confirmed": p_value < self.confirm_alpha,
        }

    def _finding(
        self,
        run_id: str,
        state: _Run,
        alarm: ChangePoint,
        onset: int,
        confirmation: dict[str, Any] | None,
    ) -> Finding:
        last = state.evaluated_upto if state.evaluated_upto is not None else alarm.alarm_turn
        start = last - len(state.series) + 1
        anchor = state.turn_spans.get(alarm.alarm_turn)
        unit = "step" if state.synthetic else "turn"
        baseline = getattr(state.detector, "baseline", None)
        evidence: dict[str, Any] = {
            "onset_turn": onset,
            "detector_onset_turn": alarm.onset_turn,
            "alarm_turn": alarm.alarm_turn,
            "turn_unit": unit,
            "statistic": round(alarm.statistic, 4),
            "detector": self.detector,
            "params": dict(self.params),
            "baseline": list(baseline) if baseline else None,
            "onset_delta": self.onset_delta,
            "confirmation": confirmation,
            "rejected_alarms": state.rejected,
            "series_start_turn": start,
            "series": list(state.series),
            "violations": list(state.counts),
            "weights": {severity.label: weight for severity, weight in self.weights.items()},
            "scale": self.scale,
            "turn_cap": self.turn_cap,
        }
        name = "CUSUM" if self.detector == "cusum" else "Page-Hinkley"
        return self.finding(
            run_id=run_id,
            rule_id=self.rule_id,
            kind=FindingKind.DRIFT,
            severity=self.severity,
            message=(
                f"rule adherence drifted: violations rose from {unit} {onset} "
                f"(alarm at {unit} {alarm.alarm_turn}, {name} statistic "
                f"{alarm.statistic:.2f})"
            ),
            record=anchor,
            trace_id=state.trace_id,
            turn=None if state.synthetic else onset,
            evidence=evidence,
        )
