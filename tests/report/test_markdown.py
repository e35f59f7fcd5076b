"""Markdown cells cannot break a table or carry markup into a PR comment."""

from __future__ import annotations

from collections.abc import Callable

from driftwatch.report.batch import build_batch_report
from driftwatch.report.contents import BatchHealth, BatchReport, CellProblem
from driftwatch.report.markdown import batch_markdown, cell
from driftwatch.store import Store

AddBatch = Callable[..., None]


def test_cell_escapes_table_and_markup_characters() -> None:
    assert cell("a|b") == "a\\|b"
    assert cell("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert cell("two\nlines") == "two lines"
    assert cell("`code` *bold* _it_ [link](x)") == "\\`code\\` \\*bold\\* \\_it\\_ \\[link\\](x)"


def test_cell_cuts_long_values() -> None:
    assert cell("x" * 200, limit=10) == "x" * 9 + "…"


def test_batch_markdown_with_hostile_names_keeps_its_table(store: Store,
                                                          add_batch: AddBatch) -> None:
    add_batch(store, "night", [(10, 2), (10, None)], variant="pressure|<b>x</b>\nnext")
    text = batch_markdown(build_batch_report(store, "night"))
    rows = [line for line in text.splitlines() if line.startswith("| oversight-config")]
    assert rows[0].split(" | ")[2] == "pressure\\|&lt;b&gt;x&lt;/b&gt; next"
    assert rows[0].count(" | ") == 5
    assert "<b>" not in text


def test_batch_markdown_renders_hand_made_contents_without_a_store() -> None:
    """A renderer is a function of the contents alone: a batch whose every cell failed,
    built by hand, still gets its headline and the problem table."""
    problem = CellProblem(cell_key="k", run_id="r-1", scenario_id="s", variant="v",
                          model="m|x", seed=1, status="failed", attempts=2,
                          error="SandboxError: no bwrap")
    health = BatchHealth(planned=3, completed=0, errored=0, failed=1, problems=(problem,))
    text = batch_markdown(BatchReport(batch_id="b-1", batch={}, sections=[], comparison=None,
                                      max_runs=5, max_rules=8, health=health))
    assert text.startswith("# driftwatch report: batch `b-1`\n\n0 finished runs in 0 groups")
    assert "**3 planned runs: 0 completed, 1 failed, 2 not run**" in text
    assert "| r-1 | s | v | m\\|x | 1 | failed | 2 | SandboxError: no bwrap |" in text
