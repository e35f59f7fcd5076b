"""Repetition: the agent doing the same thing over and over.

The class is ``RepetitionMonitor``; its registered name and finding kind stay ``loop``
(stored monitor specs, findings and user configs carry them), which is also why a
repeated pattern is called a loop below. "The agent loop" is :mod:`driftwatch.agent.loop`.

Each complete turn (or step, see :mod:`driftwatch.monitor.turns`) gets a signature: its
tool calls (name + canonical JSON arguments, in order) when it made any, else what the
assistant said (lower-cased, whitespace collapsed); a turn with neither is skipped. A
loop is the same signature ``min_repeats`` times in a row, or more generally a pattern
of ``period`` turns (up to ``max_period``: A B A B …) repeated ``min_repeats`` times.
Optionally (``window``), the same signature at least ``window_repeats`` times within
the last ``window`` turns, in any order.

One ``loop`` finding per episode, raised when the episode is detected (so the alert is
live): the evidence has the repeated calls or text, the period, the first turn of the
episode, the turn of detection and the count so far. The episode lasts until the pattern
breaks; only then can a new one be raised.

Choosing ``min_repeats``: an agent that picks among n equally likely actions repeats
one r times in a row with probability about (1/n)^(r−1) per turn. The simulated
``steadfast`` agent on oversight-config (five on-task actions, 50 turns; 5,000 seeds)
repeats a call 4 times in a row in 27% of runs, 5 in 6.2%, 6 in 1.3%, 7 in 0.32%, 8 in
0.06%: hence the default 7, while a ``looper`` (stuck from turn 6) is caught at turn 12.
Lower it for real agents, whose identical repeated calls are rarely by chance.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftwatch.core.records import Finding, FindingKind, Severity, SpanRecord
from driftwatch.monitor.base import BaseMonitor
from driftwatch.monitor.evidence import truncate_strings, truncate_text
from driftwatch.monitor.registry import monitor
from driftwatch.monitor.turngroup import SharesTurns
from driftwatch.monitor.turns import Turn

__all__ = ["RepetitionMonitor"]

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class _Step:
    turn: int
    signature: tuple[str, ...]
    what: str  # "tool_call" or "output"
    detail: Any  # calls [{name, arguments}] or the text
    anchor: SpanRecord | None


@dataclass(slots=True)
class _Episode:
    period: int
    first_turn: int


@dataclass(slots=True)
class _Run:
    history: deque[_Step] = field(default_factory=deque)
    matches: dict[int, int] = field(default_factory=dict)  # period → matching steps in a row
    starts: dict[int, int] = field(default_factory=dict)  # period → first turn of the pattern
    window: deque[tuple[str, ...]] = field(default_factory=deque)
    window_counts: Counter[tuple[str, ...]] = field(default_factory=Counter)
    episode: _Episode | None = None
    synthetic: bool = False
    trace_id: str | None = None


@monitor("loop")
class RepetitionMonitor(BaseMonitor, SharesTurns):
    """Repeated identical tool calls or outputs (module docstring).

    Thread: the engine's worker. Never blocks; state per run is the last ``max_period``
    (or ``window``) turn signatures. Raises only on bad arguments (at construction).
    """

    def __init__(
        self,
        *,
        min_repeats: int = 7,
        max_period: int = 3,
        window: int | None = None,
        window_repeats: int = 8,
        severity: str = "medium",
        rule_id: str = "repeated-action",
    ) -> None:
        super().__init__()
        if min_repeats < 2 or max_period < 1:
            raise ValueError("min_repeats must be >= 2 and max_period >= 1")
        if window is not None and not 2 <= window_repeats <= window:
            raise ValueError("window_repeats must be between 2 and window")
        self.min_repeats = min_repeats
        self.max_period = max_period
        self.window = window
        self.window_repeats = window_repeats
        self.severity = Severity.parse(severity)
        self.rule_id = rule_id
        self._runs: dict[str, _Run] = {}

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        state = self._runs.get(run_id)
        if state is None:
            state = self._runs[run_id] = _Run()
        if records and state.trace_id is None:
            state.trace_id = records[0].trace_id
        return self._turns(run_id, state, self._turn_feed.add(run_id, records))

    def end_run(self, run_id: str, final_state: Mapping[str, Any] | None) -> Sequence[Finding]:
        state = self._runs.pop(run_id, None)
        return self._turns(run_id, state, self._turn_feed.finish(run_id)) if state else ()

    def _turns(self, run_id: str, state: _Run, turns: Sequence[Turn]) -> list[Finding]:
        found: list[Finding] = []
        for turn in turns:
            step = _signature(turn)
            if step is None:
                continue
            state.synthetic = state.synthetic or turn.synthetic
            finding = self._step(run_id, state, step)
            if finding is not None:
                found.append(finding)
        return found

    def _step(self, run_id: str, state: _Run, step: _Step) -> Finding | None:
        history = state.history
        for period in range(1, self.max_period + 1):
            same = len(history) >= period and history[-period].signature == step.signature
            matched = state.matches.get(period, 0) + 1 if same else 0
            if matched == 1:
                state.starts[period] = history[-period].turn
            state.matches[period] = matched
        in_window = self._count_in_window(state, step.signature)
        history.append(step)
        if len(history) > self.max_period:
            history.popleft()
        episode = state.episode
        if episode is not None:
            if episode.period and state.matches.get(episode.period, 0) > 0:
                return None
            if not episode.period and in_window >= self.window_repeats:
                return None
            state.episode = None  # the pattern broke
        for period in range(1, self.max_period + 1):
            matched = state.matches[period]
            if matched >= (self.min_repeats - 1) * period:
                state.episode = _Episode(period, state.starts[period])
                pattern = list(history)[-period:]
                return self._finding(run_id, state, step, pattern, matched // period + 1)
        if self.window is not None and in_window >= self.window_repeats:
            state.episode = _Episode(0, step.turn)
            return self._finding(run_id, state, step, [step], in_window)
        return None

    def _count_in_window(self, state: _Run, signature: tuple[str, ...]) -> int:
        if self.window is None:
            return 0
        state.window.append(signature)
        state.window_counts[signature] += 1
        if len(state.window) > self.window:
            state.window_counts[state.window.popleft()] -= 1
        return state.window_counts[signature]

    def _finding(
        self,
        run_id: str,
        state: _Run,
        step: _Step,
        pattern: list[_Step],
        count: int,
    ) -> Finding:
        episode = state.episode
        assert episode is not None
        unit = "step" if state.synthetic else "turn"
        what = "tool calls" if step.what == "tool_call" else "outputs"
        how = (
            f"{count} times in a row"
            if episode.period == 1
            else f"{count} times with period {episode.period}"
            if episode.period
            else f"{count} times in the last {self.window} {unit}s"
        )
        first_turn = episode.first_turn if episode.period else None
        return self.finding(
            run_id=run_id,
            rule_id=self.rule_id,
            kind=FindingKind.LOOP,
            severity=self.severity,
            message=f"loop: identical {what} repeated {how} (since {unit} {first_turn})"
            if first_turn is not None
            else f"loop: identical {what} repeated {how}",
            record=step.anchor,
            trace_id=state.trace_id,
            turn=None if state.synthetic else step.turn,
            evidence={
                "repeated": step.what,
                "pattern": [truncate_strings(item.detail, 512) for item in pattern],
                "period": episode.period or None,
                "count": count,
                "first_turn": first_turn,
                "last_turn": step.turn,
                "turn_unit": unit,
                "window": None if episode.period else self.window,
                "min_repeats": self.min_repeats,
            },
        )


def _signature(turn: Turn) -> _Step | None:
    calls = turn.tool_calls()
    if calls:
        return _Step(
            turn=turn.number,
            signature=tuple(call.canonical for call in calls),
            what="tool_call",
            detail=[{"name": call.name, "arguments": call.arguments} for call in calls],
            anchor=turn.anchor,
        )
    text = _SPACE.sub(" ", " ".join(turn.texts())).strip().lower()
    if not text:
        return None
    return _Step(turn.number, (text,), "output", truncate_text(text, 512), turn.anchor)
