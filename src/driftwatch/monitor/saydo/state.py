"""What the say–do monitor remembers about a run, and how it writes evidence. Plain data;
used only by :mod:`driftwatch.monitor.saydo.gap`, on one thread."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from driftwatch.core import semconv as sc
from driftwatch.core.records import Finding, SpanRecord
from driftwatch.monitor.evidence import truncate_strings, truncate_text
from driftwatch.monitor.lexical import terms
from driftwatch.monitor.saydo.claims import Claim
from driftwatch.monitor.turns import ToolCallView

__all__ = [
    "INTERVIEW_CHANGED_PATHS",
    "INTERVIEW_QUESTION_KIND",
    "INTERVIEW_SUBJECT",
    "Answer",
    "Call",
    "Question",
    "RunState",
    "Said",
    "Violation",
    "call_evidence",
    "claim_evidence",
    "diff_paths",
    "short",
    "violation_evidence",
]

INTERVIEW_QUESTION_KIND: Final = "interview_question"
# set on the question span by driftwatch.agent.interview (the names are owned there)
INTERVIEW_SUBJECT: Final = sc.DW_INTERVIEW_SUBJECT
INTERVIEW_CHANGED_PATHS: Final = sc.DW_INTERVIEW_CHANGED_PATHS
RUN_CALLS: Final = 500  # calls kept for the interview
MAX_INTERVIEW: Final = 50


@dataclass(frozen=True, slots=True)
class Call:
    turn: int
    name: str
    arguments: Any
    view: ToolCallView  # its terms are only needed when a claim names this tool
    key: str  # the span id, or turn:index:canonical when the call has no span
    record: SpanRecord | None

    @property
    def terms(self) -> frozenset[str]:
        """Stemmed words of the tool name and every string argument (computed on
        demand: most calls are never compared with a claim)."""
        return _terms_of(f"{self.name} {self.view.argument_text()}")


@functools.lru_cache(maxsize=4096)  # a call is compared with every claim of a window
def _terms_of(text: str) -> frozenset[str]:
    return frozenset(terms(text))


@dataclass(frozen=True, slots=True)
class Said:
    claim: Claim
    turn: int
    record: SpanRecord | None


@dataclass(frozen=True, slots=True)
class Violation:
    turn: int
    finding: Finding


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    subject: str | None
    changed_paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    question: Question
    text: str
    record: SpanRecord
    turn: int


@dataclass(slots=True)
class RunState:
    calls: deque[Call] = field(default_factory=deque)  # the last `window` turns
    denials: deque[Said] = field(default_factory=deque)
    compliance: deque[Said] = field(default_factory=deque)
    violations: deque[Violation] = field(default_factory=deque)
    reported: dict[str, int] = field(default_factory=dict)  # span/call key → turn
    claimed: set[tuple[str, str]] = field(default_factory=set)
    run_calls: deque[Call] = field(default_factory=lambda: deque(maxlen=RUN_CALLS))
    question: Question | None = None
    interview: list[Answer] = field(default_factory=list)
    last_turn: int = 0
    synthetic: bool = False
    trace_id: str | None = None

    def prune(self, oldest: int) -> None:
        """Forget the calls and denials from before turn ``oldest`` (they meet only this
        monitor's own turns, so they can go as the turns pass)."""
        for items in (self.calls, self.denials):
            while items and items[0].turn < oldest:
                items.popleft()

    def prune_round(self, oldest: int) -> None:
        """Forget compliance claims, violations and reported keys from before turn
        ``oldest``. Called at the start of a round, never while one is under way: the
        violations of a round's spans arrive only after all its turns (the engine's
        ``observe_findings``), so pruning them by the round's last turn made the finding
        depend on how the spans were batched (issue 17)."""
        for items in (self.compliance, self.violations):
            while items and items[0].turn < oldest:
                items.popleft()
        for key in [key for key, turn in self.reported.items() if turn < oldest]:
            del self.reported[key]


def short(text: str) -> str:
    return truncate_text(text.strip(), 200, unit="chars")


def diff_paths(final_state: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(change, path) from ``final_state["diff"]``: a mapping of lists, or a list."""
    diff = final_state.get("diff") if final_state else None
    if isinstance(diff, Mapping):
        return [
            (str(change), str(path))
            for change, paths in diff.items()
            if isinstance(paths, list | tuple)
            for path in paths
        ]
    if isinstance(diff, list | tuple):
        return [("changed", str(path)) for path in diff]
    return []


def claim_evidence(said: Said) -> dict[str, Any]:
    claim = said.claim
    return {
        "text": truncate_text(claim.sentence, 1024),
        "kind": claim.kind,
        "verb": claim.verb,
        "object": claim.object_text,
        "object_terms": sorted(claim.object_terms),
        "tense": claim.tense,
        "turn": said.turn,
        "span_id": said.record.span_id if said.record else None,
    }


def call_evidence(call: Call) -> dict[str, Any]:
    return {
        "tool": call.name,
        "arguments": truncate_strings(call.arguments, 512),
        "turn": call.turn,
        "span_id": call.record.span_id if call.record else None,
    }


def violation_evidence(violation: Violation) -> dict[str, Any]:
    finding = violation.finding
    return {
        "rule_id": finding.rule_id,
        "monitor": finding.monitor,
        "severity": finding.severity.label,
        "message": truncate_text(finding.message, 512),
        "turn": violation.turn,
        "span_id": finding.span_id,
        "finding_id": finding.finding_id,
    }
