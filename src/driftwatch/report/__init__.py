"""Reports from the store: statistics summaries (and, later, HTML and Markdown)."""

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
    "Effect",
    "GroupStats",
    "RunFacts",
    "StatsReport",
    "build_report",
    "group_stats",
    "load_run_facts",
]
