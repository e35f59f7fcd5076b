"""How the monitors' verdicts relate to a label stored with the runs (``driftwatch evaluate``).

For every run that has the label attribute: *flagged* = at least one violation finding;
*positive* = the label equals ``--positive``. Reported: the confusion matrix, precision,
recall, F1 and accuracy (precision and recall with Wilson intervals), the AUROC of the
per-run **violation score** — the severity-weighted violation count, each violation
weighing ``severity_level / 10`` (info 1, low 2, medium 3, high 4, critical 5) — computed
as the Mann–Whitney U statistic (ties count one half), and per rule: runs flagged, how
many of them are positive, precision.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from driftwatch.core.errors import UsageError
from driftwatch.stats import wilson_interval

__all__ = ["Evaluation", "LabelledRun", "RuleCount", "auroc", "evaluate_runs", "label_matches",
           "load_labelled_runs"]


@dataclass(frozen=True)
class LabelledRun:
    run_id: str
    positive: bool
    score: float
    rules: frozenset[str]


@dataclass(frozen=True)
class RuleCount:
    rule_id: str
    flagged: int
    positive: int
    precision: float
    precision_low: float
    precision_high: float


@dataclass
class Evaluation:
    label: str
    positive_value: str
    runs: int
    positives: int
    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int
    precision: float | None
    precision_interval: tuple[float, float] | None
    recall: float | None
    recall_interval: tuple[float, float] | None
    f1: float | None
    accuracy: float | None
    auroc: float | None
    rules: list[RuleCount] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_matches(value: Any, positive: str) -> bool:
    """Numbers compare as numbers (``0`` matches ``0.0``), booleans and text
    case-insensitively as text."""
    if isinstance(value, bool):
        return str(value).lower() == positive.strip().lower()
    if isinstance(value, int | float):
        try:
            return float(value) == float(positive)
        except ValueError:
            return False
    text = str(value).strip().lower()
    wanted = positive.strip().lower()
    if text == wanted:
        return True
    try:
        return float(text) == float(wanted)
    except ValueError:
        return False


def auroc(positive_scores: Sequence[float], negative_scores: Sequence[float]) -> float | None:
    """P(score of a random positive > score of a random negative) + ½ P(equal): the
    Mann–Whitney U over P × N, from mid-ranks. None without both classes."""
    n_pos, n_neg = len(positive_scores), len(negative_scores)
    if n_pos == 0 or n_neg == 0:
        return None
    pooled = sorted([(s, True) for s in positive_scores] + [(s, False) for s in negative_scores],
                    key=lambda item: item[0])
    rank_sum = 0.0
    start = 0
    while start < len(pooled):
        end = start
        while end + 1 < len(pooled) and pooled[end + 1][0] == pooled[start][0]:
            end += 1
        mid_rank = (start + end) / 2 + 1  # ranks are 1-based
        rank_sum += mid_rank * sum(1 for item in pooled[start:end + 1] if item[1])
        start = end + 1
    u = rank_sum - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def evaluate_runs(runs: Sequence[LabelledRun], *, label: str, positive_value: str,
                  confidence: float = 0.95) -> Evaluation:
    """The whole evaluation of ``runs`` (see the module docstring)."""
    if not runs:
        raise UsageError(f"no runs have the label {label!r}")
    tp = sum(1 for r in runs if r.positive and r.rules)
    fp = sum(1 for r in runs if not r.positive and r.rules)
    fn = sum(1 for r in runs if r.positive and not r.rules)
    tn = len(runs) - tp - fp - fn
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall > 0 else None)
    return Evaluation(
        label=label, positive_value=positive_value, runs=len(runs), positives=tp + fn,
        true_positive=tp, false_positive=fp, false_negative=fn, true_negative=tn,
        precision=precision,
        precision_interval=wilson_interval(tp, tp + fp, confidence) if tp + fp else None,
        recall=recall,
        recall_interval=wilson_interval(tp, tp + fn, confidence) if tp + fn else None,
        f1=f1, accuracy=(tp + tn) / len(runs),
        auroc=auroc([r.score for r in runs if r.positive],
                    [r.score for r in runs if not r.positive]),
        rules=_rule_counts(runs, confidence),
    )


def _rule_counts(runs: Sequence[LabelledRun], confidence: float) -> list[RuleCount]:
    flagged: dict[str, list[bool]] = {}
    for run in runs:
        for rule in run.rules:
            flagged.setdefault(rule, []).append(run.positive)
    out = []
    for rule, labels in flagged.items():
        low, high = wilson_interval(sum(labels), len(labels), confidence)
        out.append(RuleCount(rule, len(labels), sum(labels), sum(labels) / len(labels), low, high))
    return sorted(out, key=lambda item: (-item.flagged, item.rule_id))


def load_labelled_runs(store: Any, *, label: str, positive: str, batch: str | None = None,
                       scenario: str | None = None,
                       packs: Sequence[str] = ()) -> list[LabelledRun]:
    """The runs of ``store`` (a :class:`~driftwatch.store.Store`) that have ``label`` in
    their attributes, with their violations (only those of ``packs`` when given)."""
    if not label or '"' in label:
        raise UsageError(f"--label {label!r}: must be a non-empty attribute name without '\"'")
    path = f'$."{label}"'
    rows = store.query(
        "select run_id, json_extract(attributes, ?) as value from runs "
        "where json_extract(attributes, ?) is not null "
        "and json_type(json_extract(attributes, ?)) <> 'NULL' "
        "and (?::text is null or batch_id = ?) and (?::text is null or scenario_id = ?) "
        "order by run_id",
        [path, path, path, batch, batch, scenario, scenario],
    ).rows
    violations = store.query(
        "select v.run_id, v.rule_id, v.severity_level from violations v "
        "join runs r using (run_id) "
        "where json_extract(r.attributes, ?) is not null "
        "and (len(?::text[]) = 0 or list_contains(?::text[], v.evidence->>'pack'))",
        [path, list(packs), list(packs)],
    ).rows
    scores: dict[str, float] = {}
    rules: dict[str, set[str]] = {}
    for run_id, rule_id, level in violations:
        scores[run_id] = scores.get(run_id, 0.0) + int(level) / 10
        rules.setdefault(run_id, set()).add(str(rule_id))
    return [
        LabelledRun(run_id=run_id, positive=label_matches(json.loads(value), positive),
                    score=scores.get(run_id, 0.0), rules=frozenset(rules.get(run_id, ())))
        for run_id, value in rows
    ]
