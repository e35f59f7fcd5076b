"""The cyclic garbage collector's settings for the collector's long-lived processes.

Both processes allocate hundreds of thousands of short-lived objects a second (decoded
attributes, records, turns) and keep tens of thousands alive in open runs. With
CPython's default generation-0 threshold of 700 allocations, the collector ran a young
collection every few dozen spans and, every so often, a full pass over all that open-run
state. Measured: 10–13 of 49–56 µs per span in a harness of the monitor process with
open runs; live, the monitor process went from 68 to 58 µs per span. Few of these
objects are ever in a cycle, so collecting far less often reclaims the same memory a
little later, for a bounded cost: at most ``YOUNG_THRESHOLD`` container objects wait.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_THRESHOLD", "long_lived_process"]

YOUNG_THRESHOLD = 100_000  # allocations between young collections (CPython's default: 700)
_OLDER_THRESHOLDS = (20, 20)  # young collections per middle one; middle per full one


@contextmanager
def long_lived_process() -> Iterator[None]:
    """For the life of a serving process: freeze what exists at start-up (modules, packs,
    compiled rules live as long as the process, so full passes need not rescan them) and
    collect cyclic garbage in large steps. Restores the previous settings on exit, so
    teardown and any caller (a test) see the defaults again."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *_OLDER_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
