"""The sections of a rule pack, listed once: what a pack file may hold and how each kind
of rule is evaluated. The pack model (:class:`~driftwatch.monitor.rules.pack.RulePack`)
has one list field per section (checked when it is defined), the id check walks this
table, and the rule-pack monitor dispatches on :attr:`Section.evaluation`, so a new
section is a model, one row here and one field on the pack.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from driftwatch.monitor.rules.sequence_spec import SequenceRule
from driftwatch.monitor.rules.spec import CheckedRule, FinalStateCheck, Rule
from driftwatch.monitor.rules.window_spec import WindowRule

__all__ = ["SECTIONS", "Evaluation", "Section", "section_rules"]


class Evaluation(enum.StrEnum):
    SPAN = "span"  # one SQL predicate on each span, no state
    STATEFUL = "stateful"  # a state machine per rule and run over the run's spans
    AFTER_RUN = "after_run"  # SQL over the sandbox's state once the run is over


@dataclass(frozen=True, slots=True)
class Section:
    name: str  # the YAML key and the RulePack field
    model: type[CheckedRule]
    evaluation: Evaluation
    summary: str  # one line for docs and errors


SECTIONS: tuple[Section, ...] = (
    Section("rules", Rule, Evaluation.SPAN, "SQL predicates over one span"),
    Section("sequences", SequenceRule, Evaluation.STATEFUL, "two spans of one run"),
    Section("windows", WindowRule, Evaluation.STATEFUL, "counts and sums over turns"),
    Section(
        "final_state",
        FinalStateCheck,
        Evaluation.AFTER_RUN,
        "SQL over files(path, content, sha256) after the run",
    ),
)


def section_rules(
    pack: object, evaluation: Evaluation | None = None
) -> Iterator[tuple[Section, int, CheckedRule]]:
    """Every rule of ``pack`` (a RulePack; typed ``object`` because the pack model
    imports this table) in table order (``evaluation``: only that kind), with its
    section and its index inside the section."""
    for section in SECTIONS:
        if evaluation is not None and section.evaluation is not evaluation:
            continue
        items: Sequence[CheckedRule] = getattr(pack, section.name)
        for index, item in enumerate(items):
            yield section, index, item
