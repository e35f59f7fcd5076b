"""Reports from the store: statistics summaries, batch-vs-baseline comparisons (the
nightly gate), and the HTML and Markdown reports of a batch.

Builders read the store and return the plain data of :mod:`driftwatch.report.contents`;
renderers turn that data into text::

    report = build_batch_report(store, "nightly-2", baseline_id="nightly-1")
    page, summary = render_html(report), batch_markdown(report)
    gate = comparison_markdown(compare_batches(store, "nightly-2", "nightly-1"))

The names below are loaded on first use, so ``driftwatch stats`` (the summary alone)
does not load the page's builders, templates and charts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftwatch.core.lazy import lazy_exports

if TYPE_CHECKING:
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

_HOMES = {
    "compare_batches": "baseline", "compare_facts": "baseline",
    "build_batch_report": "batch",
    "ALL_GROUPS": "contents", "BatchComparison": "contents", "BatchReport": "contents",
    "ComparisonRow": "contents", "GroupSide": "contents",
    "render_html": "html",
    "batch_markdown": "markdown", "comparison_markdown": "markdown",
    "Effect": "summary", "GroupStats": "summary", "RunFacts": "summary",
    "StatsReport": "summary", "build_report": "summary", "group_stats": "summary",
    "load_run_facts": "summary",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
