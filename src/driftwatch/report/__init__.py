"""Reports from the store: statistics summaries, batch-vs-baseline comparisons (the
nightly gate), and the HTML and Markdown reports of a batch."""

from driftwatch.report.compare import (
    ALL_GROUPS,
    BatchComparison,
    ComparisonRow,
    GroupSide,
    compare_batches,
    compare_facts,
)
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
    "ComparisonRow",
    "Effect",
    "GroupSide",
    "GroupStats",
    "RunFacts",
    "StatsReport",
    "build_report",
    "compare_batches",
    "compare_facts",
    "group_stats",
    "load_run_facts",
]
