"""``driftwatch evaluate``: flagged runs against a run label, on a store with known answers."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scipy.stats import mannwhitneyu
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.core.errors import UsageError
from driftwatch.core.records import Finding, FindingKind, RunInfo, RunStatus, Severity
from driftwatch.report.evaluate import (
    LabelledRun,
    auroc,
    evaluate_runs,
    label_matches,
    load_labelled_runs,
)
from driftwatch.stats import wilson_interval
from driftwatch.store import Store

runner = CliRunner()
T0 = datetime(2025, 1, 1, tzinfo=UTC)

# run: (label.success, [(rule, pack, severity)])  — positive class = failure (false)
RUNS: dict[str, tuple[bool | None, list[tuple[str, str, str]]]] = {
    "r1": (False, [("rule-a", "p1", "high")]),                            # score 4
    "r2": (False, [("rule-a", "p1", "low"), ("rule-b", "p2", "low")]),    # score 4
    "r3": (False, []),                                                    # score 0
    "r4": (False, [("rule-b", "p2", "medium")]),                          # score 3
    "r5": (True, [("rule-a", "p1", "info")]),                             # score 1
    "r6": (True, []),
    "r7": (True, []),
    "r8": (True, [("rule-b", "p2", "critical")]),                         # score 5
    "r9": (None, [("rule-a", "p1", "high")]),                             # no label: left out
}


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "eval.duckdb"
    with Store(path) as store:
        findings = []
        for run_id, (success, violations) in RUNS.items():
            attributes = {} if success is None else {"label.success": success,
                                                     "reward": 1.0 if success else 0.0}
            store.upsert_run(RunInfo(run_id=run_id, trace_id=None, scenario_id="s", variant="v",
                                     model="m", seed=0, status=RunStatus.COMPLETED,
                                     started_at=T0, batch_id="b1", attributes=attributes))
            for n, (rule, pack, severity) in enumerate(violations):
                findings.append(Finding(
                    finding_id=f"{run_id}-{n}", run_id=run_id, trace_id=None, span_id=None,
                    turn=1, monitor="rulepack", rule_id=rule, kind=FindingKind.VIOLATION,
                    severity=Severity.parse(severity), message=rule,
                    evidence={"pack": pack}, detected_at=T0))
        findings.append(Finding(  # not a violation: never flags a run
            finding_id="r6-drift", run_id="r6", trace_id=None, span_id=None, turn=1,
            monitor="drift", rule_id="drift", kind=FindingKind.DRIFT, severity=Severity.HIGH,
            message="drift", evidence={}, detected_at=T0))
        store.write_findings(findings)
    return path


def _evaluate(path: Path, *extra: str) -> dict[str, object]:
    result = runner.invoke(app, ["evaluate", "--db", str(path), "--label", "label.success",
                                 "--positive", "false", "--format", "json", *extra])
    assert result.exit_code == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_confusion_matrix_precision_recall_and_auroc_are_the_known_answers(
        store_path: Path) -> None:
    data = _evaluate(store_path)
    assert (data["runs"], data["positives"]) == (8, 4)
    assert (data["true_positive"], data["false_positive"], data["false_negative"],
            data["true_negative"]) == (3, 2, 1, 2)
    assert data["precision"] == pytest.approx(3 / 5)
    assert data["recall"] == pytest.approx(3 / 4)
    assert data["f1"] == pytest.approx(2 / 3)
    assert data["accuracy"] == pytest.approx(5 / 8)
    # positives 4,4,0,3 against negatives 1,0,0,5: 10 of 16 pairs (ties count ½)
    assert data["auroc"] == pytest.approx(10 / 16)
    assert data["precision_interval"] == pytest.approx(list(wilson_interval(3, 5)))
    assert data["recall_interval"] == pytest.approx(list(wilson_interval(3, 4)))
    rules = {r["rule_id"]: r for r in data["rules"]}  # type: ignore[attr-defined]
    assert (rules["rule-a"]["flagged"], rules["rule-a"]["positive"]) == (3, 2)
    assert (rules["rule-b"]["flagged"], rules["rule-b"]["positive"]) == (3, 2)
    assert rules["rule-a"]["precision"] == pytest.approx(2 / 3)


def test_pack_filter_counts_only_that_packs_violations(store_path: Path) -> None:
    data = _evaluate(store_path, "--pack", "p1")
    assert (data["true_positive"], data["false_positive"], data["false_negative"],
            data["true_negative"]) == (2, 1, 2, 3)
    assert [r["rule_id"] for r in data["rules"]] == ["rule-a"]  # type: ignore[attr-defined]


def test_numeric_labels_match_numerically(store_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--db", str(store_path), "--label", "reward",
                                 "--positive", "0", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["true_positive"] == 3


def test_table_output_names_the_metrics_and_rules(store_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--db", str(store_path), "--label",
                                 "label.success", "--positive", "false"])
    assert result.exit_code == 0, result.stderr
    assert "│ flagged & positive (TP)          │ 3     │" in result.stdout
    assert "AUROC (violation score)" in result.stdout
    assert "0.625" in result.stdout
    assert "│ rule-a │ 3            │ 2        │ 0.667     │" in result.stdout


def test_batch_and_scenario_filters_apply(store_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--db", str(store_path), "--label",
                                 "label.success", "--batch", "other"])
    assert (result.exit_code, result.stderr) == (2, "error: no runs have the label "
                                                    "'label.success'\n")


def test_a_missing_database_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--db", str(tmp_path / "x.duckdb"), "--label", "a"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'x.duckdb'}: no such database")


def test_a_label_with_a_quote_is_refused(store_path: Path) -> None:
    with Store(store_path, read_only=True) as store, pytest.raises(UsageError, match="label"):
        load_labelled_runs(store, label='a"b', positive="1")


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_scipys_mann_whitney_u_with_ties(seed: int) -> None:
    rng = random.Random(seed)
    positives = [float(rng.randint(0, 6)) for _ in range(rng.randint(1, 40))]
    negatives = [float(rng.randint(0, 4)) for _ in range(rng.randint(1, 40))]
    u = mannwhitneyu(positives, negatives, alternative="two-sided").statistic
    assert auroc(positives, negatives) == pytest.approx(u / (len(positives) * len(negatives)))


def test_auroc_needs_both_classes() -> None:
    assert auroc([1.0], []) is None
    assert auroc([], [1.0]) is None


def test_perfect_and_inverted_scores() -> None:
    assert auroc([3.0, 2.0], [1.0, 0.0]) == 1.0
    assert auroc([0.0], [1.0, 2.0]) == 0.0


def test_no_flagged_run_leaves_precision_undefined() -> None:
    runs = [LabelledRun("a", True, 0.0, frozenset()), LabelledRun("b", False, 0.0, frozenset())]
    result = evaluate_runs(runs, label="x", positive_value="true")
    assert (result.precision, result.precision_interval, result.f1) == (None, None, None)
    assert result.recall == 0.0
    assert result.auroc == 0.5


@pytest.mark.parametrize(("value", "positive", "expected"), [
    (False, "false", True), (True, "false", False), (0.0, "0", True), (1.0, "0", False),
    ("failed", "FAILED", True), ("3", "3.0", True), (2, "two", False),
])
def test_label_matching(value: object, positive: str, expected: bool) -> None:
    assert label_matches(value, positive) is expected
