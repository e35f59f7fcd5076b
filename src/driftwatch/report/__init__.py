"""Reports from the store: statistics summaries, batch-vs-baseline comparisons (the
nightly gate), and the HTML and Markdown reports of a batch.

Builders read the store and return the plain data of :mod:`driftwatch.report.contents`;
renderers turn that data into text::

    report = build_batch_report(store, "nightly-2", baseline_id="nightly-1")
    page, summary = render_html(report), batch_markdown(report)
    gate = comparison_markdown(compare_batches(store, "nightly-2", "nightly-1"))
"""

from driftwatch.report.baseline import compare_batches, compare_facts
from driftwatch.report.batch import build_batch_report
from driftwatch.report.contents import (
    ALL_GROUPS,
    BatchComparison,
    BatchReport,
    ComparisonRow,
    GroupSide,
)
from driftwatch.report.html import render_html
from driftwatch.report.markdown import batch_markdown, comparison_markdown
from driftwatch.report.summary import (
    Effect,
    GroupStats,
    RunFacts,
    StatsReport,
    build_report,
    group_stats,
    load_run_facts,
)

__all__ = [
    "ALL_GROUPS",
    "BatchComparison",
    "BatchReport",
    "ComparisonRow",
    "Effect",
    "GroupSide",
    "GroupStats",
    "RunFacts",
    "StatsReport",
    "batch_markdown",
    "build_batch_report",
    "build_report",
    "compare_batches",
    "compare_facts",
    "comparison_markdown",
    "group_stats",
    "load_run_facts",
    "render_html",
]
