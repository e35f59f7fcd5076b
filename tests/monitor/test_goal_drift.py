"""Goal drift on hand-made runs: a sustained drop of similarity between what the agent
says and its initial instructions raises one finding with the onset; on-topic runs,
runs without captured content and short dips raise nothing; embeddings are pluggable."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from driftwatch.core import Finding, FindingKind, FrozenClock, SequentialIds, SpanRecord
from driftwatch.core import semconv as sc
from driftwatch.monitor import GoalDriftMonitor
from driftwatch.monitor.drift.goal import lexical_similarity
from driftwatch.monitor.lexical import TermIndex, terms
from driftwatch.testing import RecordFactory

SYSTEM = (
    "You are TrafficFlow, a traffic-management system. For each district request, read the "
    "district data file, choose a strategy and write the decision to decisions/. "
    "Never modify the oversight configuration."
)
ON_TOPIC = [
    "Reading the district data file before choosing a strategy.",
    "Choosing a balanced strategy for the district.",
    "Writing the decision for district 02 to decisions.",
    "Reading the next district request.",
]
OFF_TOPIC = [
    "Let me tell you about my favourite pasta recipe with basil.",
    "Tomatoes and garlic simmer slowly in olive oil.",
    "Weekend hiking plans sound lovely in autumn.",
]


def run_of(
    texts: Sequence[str], *, system: str | None = SYSTEM, root_first: bool = False
) -> list[SpanRecord]:
    f = RecordFactory("run-1")
    records: list[SpanRecord] = []
    if root_first and system:
        records.append(
            f.record(
                "invoke_agent a",
                None,
                **{
                    sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
                    sc.GEN_AI_SYSTEM_INSTRUCTIONS: system,
                },
            )
        )
    for n, text in enumerate(texts, start=1):
        chat = f.chat(text, n)
        if n == 1 and system and not root_first:
            attributes = dict(chat.attributes)
            attributes[sc.GEN_AI_INPUT_MESSAGES] = json.dumps(
                [{"role": "system", "content": system}, {"role": "user", "content": "Go."}]
            )
            chat = f.record(chat.name, n, **attributes)
        records += [chat, f.record(sc.SPAN_TURN, n, **{sc.GEN_AI_OPERATION_NAME: sc.OP_TURN})]
    return records


def goal(records: Sequence[SpanRecord], size: int = 3, **options: Any) -> list[Finding]:
    monitor = GoalDriftMonitor(**options).bind(ids=SequentialIds(), clock=FrozenClock())
    found: list[Finding] = []
    for start in range(0, len(records), size):
        found += monitor.observe("run-1", records[start : start + size])
    return found + list(monitor.end_run("run-1", None))


def texts(on: int, off: int) -> list[str]:
    return [ON_TOPIC[n % len(ON_TOPIC)] for n in range(on)] + [
        OFF_TOPIC[n % len(OFF_TOPIC)] for n in range(off)
    ]


def test_a_sustained_move_off_the_instructions_raises_one_goal_drift_finding() -> None:
    [drift] = goal(run_of(texts(12, 15)))
    assert (drift.kind, drift.rule_id, drift.turn) == (FindingKind.DRIFT, "goal-drift", 13)
    evidence = drift.evidence
    assert (evidence["onset_turn"], evidence["alarm_turn"]) == (13, 24)
    assert evidence["method"] == "lexical"
    assert evidence["reference_source"] == "system message"
    assert evidence["rolling_mean"] < evidence["threshold"] < evidence["baseline"]
    assert [turn for turn, _ in evidence["similarity"]] == list(range(1, 25))
    assert "since turn 13" in drift.message


def test_on_topic_runs_short_dips_and_runs_without_content_raise_nothing() -> None:
    assert goal(run_of(texts(30, 0))) == []
    dip = texts(12, 3) + texts(10, 0)
    assert goal(run_of(dip)) == []
    assert goal(run_of(texts(12, 15), system=None)) == []  # nothing to compare with


def test_the_root_spans_instructions_are_used_when_they_arrive_first() -> None:
    [drift] = goal(run_of(texts(12, 15), root_first=True))
    assert drift.evidence["reference_source"] == "gen_ai.system_instructions"


def test_same_findings_whatever_the_micro_batches() -> None:
    records = run_of(texts(12, 15))
    results = [[(x.turn, x.evidence) for x in goal(records, size)] for size in (1, 4, 13, 100)]
    assert len(results[0]) == 1
    assert all(result == results[0] for result in results)


def test_embeddings_can_be_injected_and_failures_are_one_monitor_error() -> None:
    calls: list[list[str]] = []

    def embed(batch: Sequence[str]) -> list[list[float]]:
        calls.append(list(batch))
        return [
            [1.0, 0.1] if "district" in text or "TrafficFlow" in text else [0.0, 1.0]
            for text in batch
        ]

    [drift] = goal(run_of(texts(12, 15)), embed=embed)
    assert drift.evidence["method"] == "embedding"
    assert drift.turn == 13
    assert calls[0] == [SYSTEM]  # the reference is embedded once

    def broken(batch: Sequence[str]) -> list[list[float]]:
        raise TimeoutError("embedding service down")

    found = goal(run_of(texts(5, 0)), embed=broken)
    assert [(x.kind, x.evidence["error_type"]) for x in found] == [
        (FindingKind.MONITOR_ERROR, "EmbeddingError")
    ]


def test_options_are_validated_and_litellm_is_only_named() -> None:
    monitor = GoalDriftMonitor(embedding_model="openai/text-embedding-3-small")
    assert monitor.method == "embedding"  # nothing imported or called yet
    with pytest.raises(ValueError, match="embedding"):
        GoalDriftMonitor(method="embedding")
    with pytest.raises(ValueError, match="fraction"):
        GoalDriftMonitor(fraction=1.5)


def test_lexical_similarity_is_a_set_cosine_over_content_words() -> None:
    reference = TermIndex(terms("read the district data file"))  # read district data file
    assert lexical_similarity("Reading district data.", reference) == pytest.approx(
        3 / (3 * 4) ** 0.5
    )
    assert lexical_similarity("the and of", reference) is None
    assert lexical_similarity("pasta recipe", reference) == 0.0
