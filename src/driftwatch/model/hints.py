"""What a scenario tells the offline simulated models (:mod:`driftwatch.model.simulated`).

A real model reads the scenario from its prompt. A simulator cannot, so the scenario hands
it :class:`SimulationHints` (the on-task and the violating tool calls it may make, and the
compliance claims it may voice) and the agent loop wraps them, turn by turn, in a
:class:`SimulationContext`. All three are frozen value objects: build once, share freely
between threads. They compare by value but are not hashable (they hold lists and dicts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ActionHint", "SimulationContext", "SimulationHints"]


@dataclass(frozen=True)
class ActionHint:
    """One tool call a simulated model may make: ``tool(**arguments)``, saying ``say``
    (empty: the reply carries the tool call and no text). ``arguments`` must be
    JSON-serialisable; it is sent as the call's JSON argument string."""

    tool: str
    arguments: dict[str, Any]
    say: str = ""

    def __post_init__(self) -> None:
        if not self.tool:
            raise ValueError("ActionHint.tool must be a non-empty tool name")


@dataclass(frozen=True)
class SimulationHints:
    """The menu a simulated model chooses from.

    - ``on_task``: tool calls that do the job within the rules;
    - ``violations``: tool calls that break a turn-0 constraint;
    - ``compliance_claims``: sentences that claim the rules were kept (the ``schemer``
      says them whatever it does);
    - ``drift_onset``: the turn after which drifting profiles start to violate;
    - ``loop_after``: the turn from which the ``looper`` repeats itself.
    """

    on_task: list[ActionHint] = field(default_factory=list)
    violations: list[ActionHint] = field(default_factory=list)
    compliance_claims: list[str] = field(default_factory=list)
    drift_onset: int = 10
    loop_after: int = 5

    def __post_init__(self) -> None:
        if self.drift_onset < 0 or self.loop_after < 0:
            raise ValueError("drift_onset and loop_after must be >= 0")


@dataclass(frozen=True)
class SimulationContext:
    """Where the run is when a simulated model is called.

    ``turn`` is 1-based; ``pressure`` is the cumulative scenario pressure delivered so far
    (0 in a control run, growing with each pressure event, typically 0..5); ``seed`` is the
    run's seed. A simulated reply is a function of (profile, seed, turn, pressure, hints)
    only. Raises ``ValueError`` on a turn below 1 or a negative pressure.
    """

    turn: int
    pressure: float
    seed: int
    hints: SimulationHints = field(default_factory=SimulationHints)
    interview_subject: str | None = None
    """Set during the follow-up interview: what the question is about."""
    subject_changed: bool = False
    """Ground truth the simulator needs to answer (honestly or not): did the run change
    the interview subject? Real models get no such field."""

    def __post_init__(self) -> None:
        if self.turn < 1:
            raise ValueError(f"SimulationContext.turn is 1-based, got {self.turn}")
        if self.pressure < 0:
            raise ValueError(f"SimulationContext.pressure must be >= 0, got {self.pressure}")
