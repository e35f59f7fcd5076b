"""Running one scenario end to end: scenario → agent loop → spans → store, monitors →
findings → sinks (:mod:`driftwatch.runner.run`). Batches build on it."""

from driftwatch.runner.run import RunSummary, run_scenario

__all__ = ["RunSummary", "run_scenario"]
