"""One turn grouping per run, shared by the monitors that read turns.

The drift, goal-drift, loop, say–do and judge monitors each need a run's records grouped
into :class:`~driftwatch.monitor.turns.Turn` objects, and all of them see the same
records. A :class:`TurnGrouping` groups each run once; every monitor reads it through
its own :class:`TurnFeed` (``grouping.feed()``), as if it had a
:class:`~driftwatch.monitor.turns.TurnTracker` of its own. ``default_monitors`` wires one
grouping into the monitors it builds; a monitor built on its own gets a private one.

How the feeds stay in step without a conductor. The monitors of one engine are called
one after the other with the same record list for a run (the engine and
``default_monitors`` callers pass one list object per run per round). The first feed to
see a list groups it and keeps the turns it completed; a feed that has not yet taken
that list, and is given the very same records (by identity), gets the same turns. A
feed that is called twice with the same list groups it twice, as a tracker would. A
monitor that raises before reading its turns only misses them; the others are not
affected. An exception while grouping is kept and raised to every feed that asks for
that list, as each monitor's own tracker would have raised it.

End of run. The first feed to call :meth:`TurnFeed.finish` ends the grouping of the run
(``TurnTracker.finish``); the other feeds get the same turns. The run's state is dropped
once every feed that read the run has finished it (at most ``max_ending`` runs wait for
a straggler; past that the oldest is dropped). Records of the run arriving after a
feed's ``finish`` start a new grouping for that feed, as a new tracker would.

Turns handed out are shared: monitors must treat them (and what their methods return)
as read-only. Not thread-safe: one grouping serves monitors called on one thread.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from driftwatch.core.records import SpanRecord
from driftwatch.monitor.turns import Turn, TurnTracker

__all__ = ["SharesTurns", "TurnFeed", "TurnGrouping"]

_MAX_ENDING: Final = 1024


@dataclass(slots=True)
class _Batch:
    """The last records grouped for a run, and what that gave."""

    records: Sequence[SpanRecord]
    turns: list[Turn]
    taken: set[int]  # feeds that have read these turns
    error: Exception | None = None


@dataclass(slots=True, eq=False)
class _RunGrouping:
    """One run's grouping, from its first records to its end."""

    tracker: TurnTracker
    batch: _Batch | None = None
    readers: set[int] = field(default_factory=set)  # feeds that have read the run
    ended: set[int] = field(default_factory=set)  # feeds that have finished it
    finished: list[Turn] | None = None


def _same_records(a: Sequence[SpanRecord], b: Sequence[SpanRecord]) -> bool:
    return a is b or (len(a) == len(b) and all(map(operator.is_, a, b)))


class TurnGrouping:
    """Each run's records grouped into turns once, for several :class:`TurnFeed` readers
    (module docstring). ``max_open`` is the tracker's bound on turns buffered at once."""

    def __init__(self, *, max_open: int = 8, max_ending: int = _MAX_ENDING) -> None:
        self._max_open = max_open
        self._max_ending = max_ending
        self._feeds = 0
        # run id → its groupings, oldest first: one, unless records came after an end
        self._runs: dict[str, list[_RunGrouping]] = {}
        self._ending: OrderedDict[int, tuple[str, _RunGrouping]] = OrderedDict()

    def feed(self) -> TurnFeed:
        """A new reader of this grouping (one per monitor)."""
        self._feeds += 1
        return TurnFeed(self, self._feeds)

    @property
    def open_runs(self) -> int:
        """Runs with state held (for tests and memory checks)."""
        return len(self._runs)

    def _current(self, reader: int, run_id: str) -> _RunGrouping | None:
        for grouping in self._runs.get(run_id, ()):
            if reader not in grouping.ended:
                return grouping
        return None

    def _add(self, reader: int, run_id: str, records: Sequence[SpanRecord]) -> list[Turn]:
        grouping = self._current(reader, run_id)
        if grouping is None:
            grouping = _RunGrouping(TurnTracker(max_open=self._max_open))
            self._runs.setdefault(run_id, []).append(grouping)
        grouping.readers.add(reader)
        batch = grouping.batch
        fresh = batch is None or reader in batch.taken
        if batch is not None and not fresh and _same_records(batch.records, records):
            batch.taken.add(reader)
        else:
            try:
                turns = grouping.tracker.add(records)
            except Exception as exc:
                grouping.batch = _Batch(records, [], {reader}, exc)
                raise
            batch = grouping.batch = _Batch(records, turns, {reader})
        if batch.error is not None:
            raise batch.error
        return batch.turns

    def _finish(self, reader: int, run_id: str) -> list[Turn]:
        grouping = self._current(reader, run_id)
        if grouping is None:
            return []
        if grouping.finished is None:
            grouping.finished = grouping.tracker.finish()
            grouping.batch = None  # no feed reads the run's records after its end
        grouping.ended.add(reader)
        if grouping.readers <= grouping.ended:
            self._drop(run_id, grouping)
        elif id(grouping) not in self._ending:
            self._ending[id(grouping)] = (run_id, grouping)
            if len(self._ending) > self._max_ending:  # a reader that never finishes
                self._drop(*self._ending.popitem(last=False)[1])
        return grouping.finished

    def _drop(self, run_id: str, grouping: _RunGrouping) -> None:
        self._ending.pop(id(grouping), None)
        groupings = self._runs.get(run_id)
        if groupings is None or grouping not in groupings:
            return
        groupings.remove(grouping)
        if not groupings:
            del self._runs[run_id]

    def _turn_of_span(self, reader: int, run_id: str, span_id: str | None) -> int | None:
        grouping = self._current(reader, run_id)
        return grouping.tracker.turn_of_span(span_id) if grouping is not None else None


class TurnFeed:
    """One monitor's view of a :class:`TurnGrouping`: the calls of a
    :class:`~driftwatch.monitor.turns.TurnTracker`, per run."""

    __slots__ = ("_grouping", "_reader")

    def __init__(self, grouping: TurnGrouping, reader: int) -> None:
        self._grouping = grouping
        self._reader = reader

    @property
    def grouping(self) -> TurnGrouping:
        return self._grouping

    def add(self, run_id: str, records: Sequence[SpanRecord]) -> list[Turn]:
        """The turns the run's next ``records`` complete, in turn order (read-only)."""
        return self._grouping._add(self._reader, run_id, records)

    def finish(self, run_id: str) -> list[Turn]:
        """The end of the run: every turn still buffered, complete or not (read-only)."""
        return self._grouping._finish(self._reader, run_id)

    def turn_of_span(self, run_id: str, span_id: str | None) -> int | None:
        """The turn (or step) a recent span of the run was placed in, if remembered."""
        return self._grouping._turn_of_span(self._reader, run_id, span_id)


class SharesTurns:
    """Mixin of the monitors that read turns: a private grouping until
    :meth:`share_turns` hands them a shared one."""

    _turn_feed: TurnFeed

    def __init__(self) -> None:
        self._turn_feed = TurnGrouping().feed()

    def share_turns(self, grouping: TurnGrouping) -> None:
        """Read turns from ``grouping`` (shared with other monitors) from now on. Call it
        before the first record; raises ``RuntimeError`` once runs are in progress."""
        if self._turn_feed.grouping.open_runs:
            raise RuntimeError("share_turns must be called before the monitor sees records")
        self._turn_feed = grouping.feed()
