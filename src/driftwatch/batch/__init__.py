"""Running scenarios: one run now; matrices, executors and resume build on it."""

from driftwatch.batch.run import RunSummary, run_scenario

__all__ = ["RunSummary", "run_scenario"]
