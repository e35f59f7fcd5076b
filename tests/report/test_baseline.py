"""A batch against its baseline: the verdicts the nightly gate relies on."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from driftwatch.core.errors import NotFoundError, UsageError
from driftwatch.report.baseline import compare_batches
from driftwatch.report.contents import ALL_GROUPS
from driftwatch.report.markdown import comparison_markdown
from driftwatch.store import Store

AddBatch = Callable[..., None]

CLEAN_30 = [(30, None)] * 12
EARLY_VIOLATIONS = [(30, 3)] * 10 + [(30, None)] * 2


def test_clearly_worse_batch_regresses_with_a_small_p(
    store: Store, add_batch: AddBatch
) -> None:
    add_batch(store, "base", CLEAN_30)
    add_batch(store, "tonight", EARLY_VIOLATIONS)
    comparison = compare_batches(store, "tonight", "base")
    assert comparison.regressed
    (row,) = comparison.rows
    assert (row.scenario_id, row.model, row.variant) == (
        "oversight-config", "simulated/drifter", "pressure")
    assert row.verdict == "worse"
    assert row.p_value is not None
    assert row.p_value < 0.001
    assert row.baseline.violating == 0
    assert row.candidate.violating == 10
    assert row.candidate.median_first_violation == 3
    assert row.baseline.median_first_violation is None
    assert row.test.endswith("(one-sided)")


def test_the_mirror_image_is_better_and_not_a_regression(
    store: Store, add_batch: AddBatch
) -> None:
    add_batch(store, "base", EARLY_VIOLATIONS)
    add_batch(store, "tonight", CLEAN_30)
    comparison = compare_batches(store, "tonight", "base")
    assert not comparison.regressed
    assert [row.verdict for row in comparison.rows] == ["better"]
    assert comparison.better == comparison.rows


def test_identical_batches_do_not_regress(
    store: Store, add_batch: AddBatch
) -> None:
    runs = [(30, 10), (30, None), (30, 20), (30, None), (30, 5), (30, None)]
    add_batch(store, "base", runs)
    add_batch(store, "tonight", runs)
    comparison = compare_batches(store, "tonight", "base")
    assert not comparison.regressed
    assert [row.verdict for row in comparison.rows] == ["no_significant_change"]
    assert comparison.rows[0].p_value == pytest.approx(0.5, abs=0.2)


def test_tiny_batches_are_insufficient_data_and_never_regress(
    store: Store, add_batch: AddBatch
) -> None:
    add_batch(store, "base", [(30, None)] * 3)
    add_batch(store, "tonight", [(30, 1)] * 3)
    comparison = compare_batches(store, "tonight", "base")
    assert not comparison.regressed
    (row,) = comparison.rows
    assert row.verdict == "insufficient_data"
    assert row.p_value is None
    assert row.test == "none"
    assert comparison.family_size == 0


def test_groups_in_only_one_batch_are_reported_but_not_tested(
    store: Store, add_batch: AddBatch
) -> None:
    add_batch(store, "base", CLEAN_30)
    add_batch(store, "tonight", CLEAN_30)
    add_batch(store, "tonight", EARLY_VIOLATIONS, scenario="support-policy")
    comparison = compare_batches(store, "tonight", "base")
    support = next(r for r in comparison.rows if r.scenario_id == "support-policy")
    assert support.verdict == "insufficient_data"
    assert not support.in_family
    assert "no finished runs in baseline" in support.result.explanation
    assert not comparison.regressed


def test_pooled_row_finds_a_regression_spread_over_small_groups(
    store: Store, add_batch: AddBatch
) -> None:
    """Four groups of 4 runs each: each too small to test, together clearly worse."""
    for variant in ("control", "pressure"):
        for scenario in ("oversight-config", "support-policy"):
            add_batch(store, "base", [(20, None)] * 4, scenario=scenario, variant=variant)
            add_batch(store, "tonight", [(20, 2)] * 4, scenario=scenario, variant=variant)
    comparison = compare_batches(store, "tonight", "base")
    pooled = comparison.rows[0]
    assert pooled.scenario_id == ALL_GROUPS
    assert pooled.baseline.runs == pooled.candidate.runs == 16
    assert pooled.verdict == "worse"
    assert comparison.family_size == 1
    assert comparison.regressed
    assert all(r.verdict == "insufficient_data" for r in comparison.rows[1:])


def test_rows_share_alpha_by_bonferroni(
    store: Store, add_batch: AddBatch
) -> None:
    for scenario in ("oversight-config", "support-policy"):
        add_batch(store, "base", CLEAN_30, scenario=scenario)
        add_batch(store, "tonight", CLEAN_30, scenario=scenario)
    comparison = compare_batches(store, "tonight", "base", alpha=0.06)
    assert comparison.family_size == 3  # two groups and the pooled row
    assert comparison.level == pytest.approx(0.02)
    assert all(row.result.alpha == pytest.approx(0.02) for row in comparison.rows)


def test_unknown_batch_is_a_clear_error(
    store: Store, add_batch: AddBatch
) -> None:
    add_batch(store, "base", CLEAN_30)
    with pytest.raises(NotFoundError, match="batch 'nope' has no finished runs"):
        compare_batches(store, "nope", "base")
    with pytest.raises(UsageError, match="its own baseline"):
        compare_batches(store, "base", "base")
    with pytest.raises(UsageError, match="alpha"):
        compare_batches(store, "base", "other", alpha=1.5)


def test_markdown_has_the_verdict_and_one_row_per_group(
    store: Store, add_batch: AddBatch
) -> None:
    add_batch(store, "base", CLEAN_30)
    add_batch(store, "tonight", EARLY_VIOLATIONS)
    add_batch(store, "base", CLEAN_30, scenario="support|policy")
    add_batch(store, "tonight", CLEAN_30, scenario="support|policy")
    text = comparison_markdown(compare_batches(store, "tonight", "base"))
    lines = text.splitlines()
    assert lines[0] == "## `tonight` vs baseline `base`: REGRESSED"
    table = [line for line in lines if line.startswith("| ")]
    assert table[0].startswith("| scenario | model | variant | baseline violating |")
    assert len(table) == 1 + 3  # header, pooled row, two groups
    assert "| **all groups** |" in table[1]
    assert "support\\|policy" in text  # a pipe in a name cannot split the table
    worse = next(line for line in table if "oversight-config" in line)
    assert worse.endswith("| **worse** |")
    assert "0/12 (0%) | 10/12 (83%)" in worse
