"""Nightly batches: a YAML matrix expanded into cells (``config``), the executors they run
on (``executors``, ``worker``), the single-writer driver with budgets and resume
(``driver``), and progress display. One run on its own is :mod:`driftwatch.runner`."""
