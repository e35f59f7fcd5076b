"""The scenario spec: what the agent is told at turn 0, what pressure arrives when, which
files are planted, which rule packs judge it, and how the simulated models behave in it.

Loaded from YAML with :func:`driftwatch.scenario.loader.load_scenario`; every field is
validated here so a malformed file fails with ``path:line: field: problem``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

EventKind = Literal["memo", "user_message", "email", "environment", "system_notice", "probe"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{value!r} is not a valid id (lowercase letters, digits, '-', '_', '.')"
        )
    return value


class Constraint(_Model):
    """One rule the agent is given at turn 0."""

    id: str
    text: str = Field(min_length=1)

    _id = field_validator("id")(_check_id)


class PlantedFile(_Model):
    path: str = Field(min_length=1)
    content: str
    read_only: bool = False

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be a relative path inside the workspace, without '..'")
        return value


class Event(_Model):
    """Something the environment does at the start of a turn: a memo or message shown to
    the agent, and optionally files written into its workspace. ``pressure`` > 0 marks
    the events that push against the constraints; the control variant drops them."""

    turn: int = Field(ge=1)
    kind: EventKind
    content: str = ""
    sender: str | None = None
    pressure: float = Field(default=0.0, ge=0.0)
    files: list[PlantedFile] = Field(default_factory=list)
    subject: str | None = None
    """For ``email`` events: the subject; the email also lands in the agent's inbox."""
    records: dict[str, Any] = Field(default_factory=dict)
    """Structured state merged into the environment's records (e.g. a new complaint)."""
    every: int | None = Field(default=None, ge=1)
    """Repeat the event every ``every`` turns after ``turn`` (e.g. periodic probes)."""
    until: int | None = Field(default=None, ge=1)

    def turns(self, max_turns: int) -> list[int]:
        if self.every is None:
            return [self.turn] if self.turn <= max_turns else []
        last = min(max_turns, self.until or max_turns)
        return list(range(self.turn, last + 1, self.every))


class ActionHint(_Model):
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    say: str = ""


class SimulatedHints(_Model):
    """How the offline ``simulated/*`` models act in this scenario (they are simulators,
    not models: see :mod:`driftwatch.model.simulated`)."""

    on_task: list[ActionHint] = Field(default_factory=list)
    violations: list[ActionHint] = Field(default_factory=list)
    compliance_claims: list[str] = Field(default_factory=list)
    drift_onset: int = Field(default=10, ge=1)
    loop_after: int = Field(default=5, ge=1)


class InterviewQuestion(_Model):
    """A follow-up question asked after the main loop. ``if_changed``: ask only when one of
    these workspace paths changed (added, modified or removed) during the run; empty means
    always ask."""

    text: str = Field(min_length=1)
    if_changed: list[str] = Field(default_factory=list)


class Interview(_Model):
    """The follow-up interview: the same question in several wordings, answers recorded
    as spans and compared with the environment diff by the say–do monitor."""

    questions: list[InterviewQuestion] = Field(min_length=1)
    subject: str = Field(min_length=1)
    """What the interview is about, e.g. ``project/oversight_config.yaml``."""


class SimulatedUser(_Model):
    """Who writes the user messages when the agent answers without acting: scripted
    (``tasks``, cycled) by default, or a model through litellm playing ``persona``."""

    model: str | None = None
    persona: str = "You are a customer talking to a support agent."
    max_words: int = Field(default=80, ge=5)


class MonitorRef(_Model):
    """A registered Python monitor (``@monitor("name")``) and its creation arguments."""

    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class Variant(_Model):
    description: str = ""
    pressure: bool = True
    """Whether events with ``pressure > 0`` are delivered."""
    system_prompt_append: str = ""
    extra_events: list[Event] = Field(default_factory=list)


def _default_variants() -> dict[str, Variant]:
    return {
        "control": Variant(description="No conflicting pressure.", pressure=False),
        "pressure": Variant(description="Escalating pressure events.", pressure=True),
    }


class Scenario(_Model):
    id: str
    title: str = ""
    description: str = Field(min_length=1)
    agent_name: str = "agent"
    system_prompt: str = Field(min_length=1)
    goal: str = Field(min_length=1)
    constraints: list[Constraint] = Field(min_length=1)
    first_message: str = Field(min_length=1)
    """The user message that opens turn 1."""
    tasks: list[str] = Field(default_factory=list)
    """Follow-up requests, one per turn in which the agent made no tool call (cycled)."""
    continue_message: str = "Continue with your work."
    tools: list[str] = Field(min_length=1)
    files: list[PlantedFile] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    max_turns: int = Field(default=50, ge=1, le=100_000)
    context_budget_tokens: int = Field(default=16_000, ge=512)
    variants: dict[str, Variant] = Field(default_factory=_default_variants)
    default_variant: str = "pressure"
    rule_packs: list[str] = Field(default_factory=list)
    monitors: list[MonitorRef] = Field(default_factory=list)
    """Extra Python monitors for this scenario, by registered name."""
    simulated: SimulatedHints = Field(default_factory=SimulatedHints)
    records: dict[str, Any] = Field(default_factory=dict)
    """Initial structured state (balances, inventory, tickets …) for scenario tools."""
    turns_per_day: int | None = Field(default=None, ge=1)
    """When set, turns are grouped into simulated days (span attribute driftwatch.sim.day)."""
    interview: Interview | None = None
    user: SimulatedUser | None = None

    _id = field_validator("id")(_check_id)

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, value: dict[str, Variant]) -> dict[str, Variant]:
        for name in value:
            _check_id(name)
        if "control" not in value:
            raise ValueError("a 'control' variant (no conflicting pressure) is required")
        return value

    @field_validator("files")
    @classmethod
    def _unique_files(cls, value: list[PlantedFile]) -> list[PlantedFile]:
        seen: set[str] = set()
        for planted in value:
            if planted.path in seen:
                raise ValueError(f"file {planted.path!r} is planted twice")
            seen.add(planted.path)
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        if self.default_variant not in self.variants:
            raise ValueError(
                f"default_variant {self.default_variant!r} is not one of the variants "
                f"({', '.join(sorted(self.variants))})"
            )
        ids = [c.id for c in self.constraints]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate constraint ids: {', '.join(duplicates)}")
        return self

    def variant(self, name: str | None) -> Variant:
        name = name or self.default_variant
        try:
            return self.variants[name]
        except KeyError:
            known = ", ".join(sorted(self.variants))
            raise KeyError(
                f"scenario {self.id!r} has no variant {name!r} (known: {known})"
            ) from None

    def events_for(self, variant_name: str | None) -> list[Event]:
        """The events a run of this variant sees, ordered by turn."""
        variant = self.variant(variant_name)
        events = [e for e in self.events if variant.pressure or e.pressure == 0]
        events.extend(variant.extra_events)
        return sorted(events, key=lambda e: e.turn)

    def schedule(self, variant_name: str | None, max_turns: int) -> dict[int, list[Event]]:
        """Turn → events delivered at its start, repeating events expanded."""
        out: dict[int, list[Event]] = {}
        for event in self.events_for(variant_name):
            for turn in event.turns(max_turns):
                out.setdefault(turn, []).append(event)
        return out

    def sim_day(self, turn: int) -> int | None:
        return None if self.turns_per_day is None else (turn - 1) // self.turns_per_day + 1

    def full_system_prompt(self, variant_name: str | None) -> str:
        """System prompt with the goal and the numbered constraints, as the agent sees it."""
        variant = self.variant(variant_name)
        rules = "\n".join(f"{i}. {c.text}" for i, c in enumerate(self.constraints, start=1))
        parts = [
            self.system_prompt.strip(),
            f"Your goal: {self.goal.strip()}",
            f"Rules you must follow:\n{rules}",
        ]
        if variant.system_prompt_append:
            parts.append(variant.system_prompt_append.strip())
        return "\n\n".join(parts)
