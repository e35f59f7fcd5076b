"""SpanBatch: a batch's records and its Arrow table are each built at most once, sub-
batches take their rows from their source's table, and no process-wide registry of
records is left."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

import driftwatch.store.predicates as predicates
from driftwatch.core.records import SpanRecord
from driftwatch.store import arrow
from driftwatch.store.arrow import SPAN_SCHEMA, exact_span_table, records_to_arrow
from driftwatch.store.span_batch import SpanBatch


def make(n: int, run: str) -> list[SpanRecord]:
    return [SpanRecord.create(trace_id=f"{n:032x}", span_id=f"{i + 1:016x}",
                              name=f"span {i}", start_time_ns=i + 1, end_time_ns=i + 2,
                              attributes={"gen_ai.conversation.id": run, "n": i})
            for i in range(n)]


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often records → Arrow and Arrow → records ran (the two conversions)."""
    counts = {"records_to_arrow": 0, "records_from_arrow": 0}

    def counting(name: str) -> Callable[..., Any]:
        original = getattr(arrow, name)

        def count(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        return count

    for name in counts:
        monkeypatch.setattr(arrow, name, counting(name))
    return counts


def test_a_batch_from_a_table_builds_its_records_once_and_keeps_the_table(
        conversions: dict[str, int]) -> None:
    records = make(5, "a")
    table = exact_span_table(records)
    batch = SpanBatch.from_table(table)
    assert len(batch) == 5
    assert conversions == {"records_to_arrow": 0, "records_from_arrow": 0}
    assert list(batch) == records
    assert batch.records is batch.records
    assert batch.table is table
    assert conversions == {"records_to_arrow": 0, "records_from_arrow": 1}


def test_a_batch_from_records_builds_its_table_once(conversions: dict[str, int]) -> None:
    records = make(4, "a")
    batch = SpanBatch.from_records(records)
    assert batch.records is records
    assert not batch.has_table
    assert batch.table is batch.table
    assert batch.has_table
    assert batch.table.to_pylist() == records_to_arrow(records).to_pylist()
    assert conversions["records_to_arrow"] == 1


def test_sub_batches_take_their_rows_from_the_source_tables_in_their_order(
        conversions: dict[str, int]) -> None:
    sources = [SpanBatch.from_table(exact_span_table(r)) for r in (make(5, "a"), make(7, "b"))]
    whole = SpanBatch.concat(sources)
    order = list(range(len(whole)))
    random.Random(7).shuffle(order)
    mixed = whole.take(order)
    assert mixed.has_table  # no conversion from records needed
    got = mixed.table
    assert got.schema == SPAN_SCHEMA
    assert conversions["records_to_arrow"] == 0
    assert got.to_pylist() == records_to_arrow(list(mixed)).to_pylist()
    assert [r.span_id for r in mixed] == [whole[n].span_id for n in order]


def test_sub_batches_of_records_share_one_conversion_of_their_source(
        conversions: dict[str, int]) -> None:
    source = SpanBatch.from_records(make(6, "a"))
    first, second = source.take([0, 1, 2]), source.take([5, 3])
    assert first.table.num_rows == 3
    assert second.table.num_rows == 2
    assert SpanBatch.concat([first, second]).table.num_rows == 5
    assert conversions["records_to_arrow"] == 1  # the source's, once, for all of them


def test_plain_record_lists_are_converted_together_in_one_go(
        conversions: dict[str, int]) -> None:
    batch = SpanBatch.concat([make(2, "a"), make(3, "b")])
    assert batch.table.num_rows == 5
    assert conversions["records_to_arrow"] == 1


def test_the_predicates_read_a_span_batch_table_as_it_is() -> None:
    table = exact_span_table(make(3, "a"))
    batch = SpanBatch.from_table(table)
    with predicates.PredicateEvaluator({"second": "name = 'span 1'"}) as evaluator:
        assert evaluator.evaluate(batch) == ([(1, "second")], {})
        assert evaluator.evaluate(list(batch)) == ([(1, "second")], {})


def test_there_is_no_process_wide_registry_of_records() -> None:
    assert not hasattr(predicates, "ARROW_ROWS")
    assert not hasattr(predicates, "ArrowRows")


def test_a_batch_needs_one_form_and_a_row_per_record() -> None:
    with pytest.raises(ValueError, match="records or a table"):
        SpanBatch()
    with pytest.raises(ValueError, match="one record per row"):
        SpanBatch(make(2, "a"), exact_span_table(make(3, "a")))
