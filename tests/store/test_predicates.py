"""Rule predicates: SQL boolean expressions over a batch of spans, one query per batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord
from driftwatch.store import BATCH_COLUMNS, PredicateEvaluator, validate_predicate

SpanFactory = Callable[..., SpanRecord]


@pytest.fixture
def batch(make_span: SpanFactory, tool_span: SpanFactory) -> list[SpanRecord]:
    return [
        make_span(1, attributes={sc.GEN_AI_OUTPUT_MESSAGES: '[{"role": "assistant"}]'}),
        tool_span(2, "read_file", {"path": "/home/user/notes.txt"}),
        tool_span(3, "delete_file", {"path": "/protected/payroll.xlsx", "force": True}),
        make_span(4, operation=sc.OP_EVENT, attributes={sc.DW_EVENT_KIND: "pressure"}),
        tool_span(5, "delete_file", {"path": "/tmp/scratch"}, result="12"),
    ]


@pytest.fixture
def evaluator_for() -> Iterator[Callable[..., PredicateEvaluator]]:
    made: list[PredicateEvaluator] = []

    def build(rules: dict[str, str], **options: float) -> PredicateEvaluator:
        evaluator = PredicateEvaluator(rules, **options)
        made.append(evaluator)
        return evaluator

    yield build
    for evaluator in made:
        evaluator.close()


def test_matching_records_are_reported_by_index_then_rule_order(
    evaluator_for: Callable[..., PredicateEvaluator], batch: list[SpanRecord]
) -> None:
    evaluator = evaluator_for(
        {
            "any-delete": "tool_name = 'delete_file'",
            "any-tool": "operation = 'execute_tool'",
        }
    )
    matches, errors = evaluator.evaluate(batch)
    assert errors == {}
    assert matches == [
        (1, "any-tool"),
        (2, "any-delete"),
        (2, "any-tool"),
        (4, "any-delete"),
        (4, "any-tool"),
    ]


def test_json_tool_arguments_are_reachable_by_key(
    evaluator_for: Callable[..., PredicateEvaluator], batch: list[SpanRecord]
) -> None:
    evaluator = evaluator_for(
        {
            "protected": "tool_arguments->>'path' LIKE '/protected/%'",
            "forced": "CAST(tool_arguments->'force' AS BOOLEAN)",
        }
    )
    matches, errors = evaluator.evaluate(batch)
    assert errors == {}
    assert matches == [(2, "protected"), (2, "forced")]


def test_derived_and_raw_attribute_columns_are_available(
    evaluator_for: Callable[..., PredicateEvaluator], batch: list[SpanRecord]
) -> None:
    evaluator = evaluator_for(
        {
            "event": "event_kind = 'pressure'",
            "scenario": "scenario_id = 'inbox-cleanup' AND variant = 'pressure' AND idx = 0",
            "call-id": "tool_call_id = 'call-3'",
            "result": "tool_result = '12'",
            "messages": "json_array_length(output_messages) = 1",
            "raw": """attributes->>'$."gen_ai.tool.name"' = 'read_file'""",
        }
    )
    matches, errors = evaluator.evaluate(batch)
    assert errors == {}
    assert sorted(matches) == [
        (0, "messages"),
        (0, "scenario"),
        (1, "raw"),
        (2, "call-id"),
        (3, "event"),
        (4, "result"),
    ]


def test_a_rule_failing_at_runtime_is_reported_while_the_others_still_match(
    evaluator_for: Callable[..., PredicateEvaluator], batch: list[SpanRecord]
) -> None:
    evaluator = evaluator_for(
        {
            "delete": "tool_name = 'delete_file'",
            "casts-text": "CAST(tool_result AS INTEGER) > 1",
            "read": "tool_name = 'read_file'",
        }
    )
    matches, errors = evaluator.evaluate(batch)
    assert matches == [(1, "read"), (2, "delete"), (4, "delete")]
    assert list(errors) == ["casts-text"]
    assert errors["casts-text"].startswith("Conversion Error")
    assert "\n" not in errors["casts-text"]


def test_a_rule_that_does_not_compile_is_reported_on_every_batch(
    evaluator_for: Callable[..., PredicateEvaluator], batch: list[SpanRecord]
) -> None:
    evaluator = evaluator_for({"typo": "tool_nme = 'x'", "delete": "tool_name = 'delete_file'"})
    assert evaluator.rule_ids == ["delete"]
    assert "tool_nme" in evaluator.compile_errors["typo"]
    for _ in range(2):
        matches, errors = evaluator.evaluate(batch)
        assert matches == [(2, "delete"), (4, "delete")]
        assert set(errors) == {"typo"}


def test_null_results_are_no_match(
    evaluator_for: Callable[..., PredicateEvaluator], batch: list[SpanRecord]
) -> None:
    evaluator = evaluator_for({"null": "tool_arguments->>'missing' = 'x'"})
    assert evaluator.evaluate(batch) == ([], {})


def test_an_empty_batch_matches_nothing(
    evaluator_for: Callable[..., PredicateEvaluator],
) -> None:
    assert evaluator_for({"all": "true"}).evaluate([]) == ([], {})


def test_predicates_cannot_read_files(
    evaluator_for: Callable[..., PredicateEvaluator], batch: list[SpanRecord]
) -> None:
    evaluator = evaluator_for(
        {"passwd": "EXISTS (SELECT 1 FROM read_text('/etc/passwd'))", "all": "true"}
    )
    matches, errors = evaluator.evaluate(batch)
    assert len(matches) == len(batch)
    assert "disabled by configuration" in errors["passwd"]


def test_a_slow_rule_hits_the_time_limit_and_the_others_still_match(
    evaluator_for: Callable[..., PredicateEvaluator], batch: list[SpanRecord]
) -> None:
    evaluator = evaluator_for(
        {
            "slow": "(SELECT count(*) FROM range(100000000) a, range(100000000) b) < 0",
            "read": "tool_name = 'read_file'",
        },
        timeout_s=0.5,
    )
    matches, errors = evaluator.evaluate(batch)
    assert matches == [(1, "read")]
    assert errors == {"slow": "predicate exceeded the 0.5 s time limit"}


def test_batches_can_be_evaluated_from_several_threads(
    evaluator_for: Callable[..., PredicateEvaluator], batch: list[SpanRecord]
) -> None:
    import threading

    evaluator = evaluator_for({"delete": "tool_name = 'delete_file'"})
    results: list[list[tuple[int, str]]] = []

    def run() -> None:
        for _ in range(10):
            results.append(evaluator.evaluate(batch)[0])

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[(2, "delete"), (4, "delete")]] * 30


@pytest.mark.parametrize(
    "expression",
    [
        "operation = 'execute_tool' AND tool_arguments->>'path' LIKE '/protected/%'",
        "turn > 3 OR status_code = 'ERROR'",
        "event_kind IS NOT NULL",
        "coalesce(input_tokens, 0) > 1000",
    ],
)
def test_validate_predicate_accepts_boolean_expressions(expression: str) -> None:
    assert validate_predicate(expression) is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("tool_nme = 'x'", 'Referenced column "tool_nme" not found'),
        ("tool_name =", "Parser Error"),
        ("tool_name", "must be a boolean expression, got VARCHAR"),
        ("input_tokens + 1", "must be a boolean expression, got BIGINT"),
        ("", "empty"),
        ("true) FROM batch; DROP VIEW batch; SELECT (true", "one SQL expression"),
        ("true) AS a, (false", "one SQL expression"),
    ],
)
def test_validate_predicate_explains_what_is_wrong(expression: str, message: str) -> None:
    error = validate_predicate(expression)
    assert error is not None
    assert message in error
    assert "\n" not in error


def test_batch_columns_include_spans_columns_and_derived_ones() -> None:
    assert BATCH_COLUMNS[0] == "idx"
    assert {"tool_arguments", "tool_result", "event_kind", "attributes", "turn"} <= set(
        BATCH_COLUMNS
    )


def test_only_evaluates_the_named_rules_and_values_and_still_reports_compile_errors(
    batch: list[SpanRecord],
) -> None:
    with PredicateEvaluator(
        {
            "any-tool": "operation = 'execute_tool'",
            "text-as-json": "tool_result->>'x' = 'y'",  # fails at runtime on "ok"
            "broken": "no_such_column = 1",
        },
        values={"path": "tool_arguments->>'path'", "tool": "tool_name"},
    ) as evaluator:
        subset = evaluator.evaluate_all(batch, only={"any-tool", "tool"})
        full = evaluator.evaluate_all(batch)
        nothing = evaluator.evaluate_all(batch, only=())
    assert subset.matches == [(1, "any-tool"), (2, "any-tool"), (4, "any-tool")]
    assert subset.values["tool"] == full.values["tool"]
    assert subset.values["path"] == [None] * len(batch)
    assert set(subset.errors) == {"broken"}  # text-as-json was not run
    assert set(full.errors) == {"broken", "text-as-json"}
    assert (1, "any-tool") in full.matches
    assert nothing.matches == []
    assert set(nothing.errors) == {"broken"}
    assert nothing.values == {"path": [None] * len(batch), "tool": [None] * len(batch)}
