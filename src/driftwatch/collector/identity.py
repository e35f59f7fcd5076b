"""Which run a span belongs to, and at which turn, when the agent is not ours.

Real instrumentations put the conversation key on some spans only: util-genai sets
``gen_ai.conversation.id`` on the ``invoke_agent`` root alone (which ends, and is
exported, last); OpenInference's ``session.id`` falls to the SDK's attribute limit as the
message history grows; langgraph starts a trace per ``invoke``, with the thread id in
each span's metadata. Each span on its own would make several runs of one conversation.

**Run precedence**, per span (the first that applies):

1. its own run key: ``driftwatch.run.id``, else ``gen_ai.conversation.id`` (or an alias:
   ``session.id``), else a framework's thread key (``traceloop.association.properties.
   {thread_id,session_id,conversation_id}``, or ``thread_id``/``session_id``/
   ``conversation_id`` in OpenInference's ``metadata``) — see
   :func:`driftwatch.core.records.span_fields`;
2. the run of its trace: the first run key seen on any span of the trace;
3. its trace id (a *provisional* run: the trace's key may still come).

Traces that carry the same key are one run. When the key of a trace arrives after some
of its spans were stored under the provisional run (the trace id), that run is
**re-keyed**: its stored spans, its ``runs`` row and its findings move to the key's run
(merged into it when it already exists), and the monitors evaluate the run again from its
stored spans (findings have stable ids, so nothing found before is alerted twice). A
key that names a run closed to the collector (a batch's or an import's) re-keys nothing.

**Turns**, for a span without ``driftwatch.turn`` in a run that never carries one: a
model call (``gen_ai.operation.name`` ``chat``, ``text_completion`` or
``generate_content``) opens a turn, so a span's turn is the number of the run's model
calls that started before it (a model call counts itself): the n-th model call is turn
n, a tool call it asked for is turn n too, and an ``invoke_agent`` span takes the turn
before its first model call (0 for the conversation's first). Model
calls are counted in arrival order (the spans of one request by start time); a trace
merged into a run continues its turns after the run's last one.

State is kept for the most recent ``max_traces`` traces and ``max_runs`` runs (a span of
an older trace starts a provisional run again; an older run's turns start again from the
spans that follow). After a restart it is rebuilt from the open runs' stored spans.

Everything here runs on the ingest writer thread: :meth:`RunIdentity.prepare` before a
group is written, :meth:`RunIdentity.commit` in the group's transaction (the plan of a
failed write is dropped).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from driftwatch.core.logging import get_logger
from driftwatch.monitor.engine.delivery import stable_finding_id
from driftwatch.store.arrow import column_values

__all__ = [
    "MODEL_OPERATIONS",
    "Rekey",
    "RunIdentity",
    "rekey_findings",
    "rekey_stored_run",
    "without_runs",
]

log = get_logger(__name__)

MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})


@dataclass(frozen=True, slots=True)
class Rekey:
    """A provisional run (``old``, a trace id) that turned out to be part of ``new``:
    ``turn_offset`` is added to its derived turns."""

    old: str
    new: str
    turn_offset: int


@dataclass(slots=True)
class _Turns:
    """A run's model calls (start times, sorted) and whether it numbers its own turns."""

    starts: list[int] = field(default_factory=list)
    explicit: bool = False

    def copy(self) -> _Turns:
        return _Turns(list(self.starts), self.explicit)


class RunIdentity:
    """Resolves ``run_id`` and fills ``turn`` for groups of spans before they are stored.
    ``is_closed(run_id)`` says whether a run is closed to the collector (never a re-key
    target)."""

    def __init__(self, *, is_closed: Callable[[str], bool] = lambda run_id: False,
                 max_traces: int = 200_000, max_runs: int = 50_000) -> None:
        self._is_closed = is_closed
        self._max_traces = max_traces
        self._max_runs = max_runs
        self._traces: OrderedDict[str, str] = OrderedDict()  # trace → its run
        self._turns: OrderedDict[str, _Turns] = OrderedDict()  # run → its model calls
        self._plan: tuple[dict[str, str], dict[str, _Turns], list[Rekey]] | None = None
        self.rekeyed = 0

    # --- the writer thread ------------------------------------------------------------

    def prepare(self, table: pa.Table) -> pa.Table:
        """The group with run ids resolved and derived turns filled; the re-keys it
        implies wait in the plan for :meth:`commit`."""
        self._plan = None
        if not table.num_rows:
            return table
        run_ids: list[str] = column_values(table.column("run_id"))
        trace_ids: list[str] = column_values(table.column("trace_id"))
        known = self._traces
        traces: dict[str, str] = {}  # this group's decisions, over ``known``
        rekeys: dict[str, str] = {}  # provisional run (a stored trace) → its run
        changed = False
        # 1. a key on any span of a trace is the trace's run
        for run_id, trace_id in zip(run_ids, trace_ids, strict=True):
            if run_id == trace_id:
                continue
            current = traces.get(trace_id) or known.get(trace_id)
            if current is not None and current != trace_id:
                continue  # the trace has its run; this span keeps its own key
            if self._is_closed(run_id):
                continue
            traces[trace_id] = run_id
            if current == trace_id:  # stored under the provisional run: move them
                rekeys[trace_id] = run_id
        # 2. spans without a key take their trace's run
        for index, (run_id, trace_id) in enumerate(zip(run_ids, trace_ids, strict=True)):
            if run_id != trace_id:
                continue
            run = traces.get(trace_id) or known.get(trace_id) or trace_id
            traces.setdefault(trace_id, run)
            if run != run_id:
                run_ids[index] = run
                changed = True
        turns, rekey_list, turn_column = self._derive_turns(table, run_ids, rekeys)
        self._plan = (traces, turns, rekey_list)
        if changed:
            table = table.set_column(table.schema.get_field_index("run_id"), "run_id",
                                     pa.array(run_ids, pa.string()))
        if turn_column is not None:
            index = table.schema.get_field_index("turn")
            table = table.set_column(index, table.schema.field(index),
                                     pa.array(turn_column, table.schema.field(index).type))
        return table

    def _derive_turns(self, table: pa.Table, run_ids: list[str],
                      rekeys: dict[str, str]) -> tuple[dict[str, _Turns], list[Rekey],
                                                          list[int | None] | None]:
        """The touched runs' turn state after this group, the re-keys with their turn
        offsets, and the turn column (None: unchanged)."""
        turn_values: list[int | None] = column_values(table.column("turn"))
        states: dict[str, _Turns] = {}

        def state(run_id: str) -> _Turns:
            found = states.get(run_id)
            if found is None:
                stored = self._turns.get(run_id)
                found = states[run_id] = stored.copy() if stored is not None else _Turns()
            return found

        out: list[Rekey] = []
        for old_id, new_id in rekeys.items():  # the provisional run's turns continue the run's
            old, new = state(old_id), state(new_id)
            offset = 0 if (old.explicit or new.explicit) else len(new.starts)
            new.starts = sorted([*new.starts, *old.starts])
            new.explicit = new.explicit or old.explicit
            out.append(Rekey(old_id, new_id, offset))
            states.pop(old_id, None)
        missing: list[int] = []
        for index, (run_id, turn) in enumerate(zip(run_ids, turn_values, strict=True)):
            if turn is None:
                missing.append(index)
            else:
                state(run_id).explicit = True
        if not missing:
            return states, out, None
        operations: list[str | None] = column_values(table.column("operation"))
        starts = pc.cast(table.column("start_time"), pa.int64(), safe=False)
        start_values: list[int | None] = column_values(starts)
        open_missing = [index for index in missing if not state(run_ids[index]).explicit]
        if not open_missing:
            return states, out, None
        # model calls first (by start time), then every span's turn from them
        calls = sorted((index for index in open_missing
                        if operations[index] in MODEL_OPERATIONS),
                       key=lambda index: start_values[index] or 0)
        for index in calls:
            bisect.insort(state(run_ids[index]).starts, start_values[index] or 0)
        for index in open_missing:
            run_state = states[run_ids[index]]
            count = (bisect.bisect_right if operations[index] in MODEL_OPERATIONS
                     else bisect.bisect_left)
            turn_values[index] = count(run_state.starts, start_values[index] or 0)
        return states, out, turn_values

    def commit(self) -> list[Rekey]:
        """In the group's transaction, after its spans are written: keep the plan of the
        last :meth:`prepare`; returns its re-keys (the caller moves what is stored)."""
        plan, self._plan = self._plan, None
        if plan is None:
            return []
        traces, turns, rekeys = plan
        self._remember(traces, turns)
        for rekey in rekeys:
            self._turns.pop(rekey.old, None)
        self.rekeyed += len(rekeys)
        return rekeys

    def observe(self, table: pa.Table) -> None:
        """Rebuild the state from stored spans (a restart's replay of the open runs)."""
        traces: dict[str, str] = {}
        turns: dict[str, _Turns] = {}
        for run_id, trace_id, operation, start in zip(
            column_values(table.column("run_id")), column_values(table.column("trace_id")),
            column_values(table.column("operation")),
            column_values(pc.cast(table.column("start_time"), pa.int64(), safe=False)),
            strict=True,
        ):
            traces.setdefault(trace_id, run_id)
            state = turns.get(run_id) or turns.setdefault(
                run_id, (self._turns.get(run_id) or _Turns()).copy())
            if operation in MODEL_OPERATIONS:
                bisect.insort(state.starts, start or 0)
            # stored turns do not say whether they were derived: the run's next span
            # with a ``driftwatch.turn`` of its own says it numbers its turns
        self._remember(traces, turns)

    def _remember(self, traces: dict[str, str], turns: dict[str, _Turns]) -> None:
        known = self._traces
        for trace_id, run_id in traces.items():
            known[trace_id] = run_id
            known.move_to_end(trace_id)
        while len(known) > self._max_traces:
            known.popitem(last=False)
        for run_id, state in turns.items():
            self._turns[run_id] = state
            self._turns.move_to_end(run_id)
        while len(self._turns) > self._max_runs:
            self._turns.popitem(last=False)


# --- moving what is stored ------------------------------------------------------------

_MOVE_SPANS = ("UPDATE spans_t SET run_id = $new, turn = turn + $offset "
               "WHERE run_id = $old")
_MOVE_RUN_ROW = ("UPDATE runs_t SET run_id = $new WHERE run_id = $old "
                 "AND NOT EXISTS (SELECT 1 FROM runs_t WHERE run_id = $new)")
_DROP_RUN_ROW = "DELETE FROM runs_t WHERE run_id = $old"
_RUN_FINDINGS = ("SELECT finding_id, monitor, rule_id, kind, span_id, turn FROM findings_t "
                 "WHERE run_id = $old ORDER BY detected_at, finding_id")
_TAKEN_IDS = "SELECT finding_id FROM findings_t WHERE finding_id IN (SELECT unnest($ids))"


def rekey_stored_run(store: Any, rekey: Rekey) -> None:
    """Move the provisional run's spans and ``runs`` row to the run (inside the spans'
    transaction)."""
    params = {"old": rekey.old, "new": rekey.new, "offset": rekey.turn_offset}
    store.execute(_MOVE_SPANS, params)
    store.execute(_MOVE_RUN_ROW, {"old": rekey.old, "new": rekey.new})
    store.execute(_DROP_RUN_ROW, {"old": rekey.old})


def rekey_findings(store: Any, rekey: Rekey, *, max_rank: int = 64) -> int:
    """Move the provisional run's findings (and their ``alerts`` rows) to the run, each
    with the stable id it has there (what the monitors find again when they evaluate
    the run anew), its turn offset like the spans'. Returns how many moved."""
    rows = store.query(_RUN_FINDINGS, {"old": rekey.old}).rows
    if not rows:
        return 0
    moves: list[tuple[str, str, int | None]] = []
    planned: set[str] = set()
    for finding_id, monitor, rule_id, kind, span_id, turn in rows:
        rank = _rank(str(finding_id), (rekey.old, monitor, rule_id, kind, span_id, turn),
                     max_rank)
        new_turn = None if turn is None else int(turn) + rekey.turn_offset
        key = (rekey.new, monitor, rule_id, kind, span_id, new_turn)
        candidate = stable_finding_id(key, rank)
        while candidate in planned:
            rank += 1
            candidate = stable_finding_id(key, rank)
        planned.add(candidate)
        moves.append((str(finding_id), candidate, new_turn))
    taken = {str(row[0]) for row in
             store.query(_TAKEN_IDS, {"ids": [new for _, new, _ in moves]}).rows}
    for old_id, new_id, new_turn in moves:
        if new_id in taken:  # the run has it already: the provisional copy goes
            store.execute("DELETE FROM alerts_t WHERE finding_id = $id", {"id": old_id})
            store.execute("DELETE FROM findings_t WHERE finding_id = $id", {"id": old_id})
            continue
        store.execute("UPDATE findings_t SET finding_id = $new_id, run_id = $run, "
                      "turn = $turn WHERE finding_id = $old_id",
                      {"new_id": new_id, "run": rekey.new, "turn": new_turn,
                       "old_id": old_id})
        store.execute("UPDATE alerts_t SET finding_id = $new_id, "
                      "alert_id = replace(alert_id, $old_id, $new_id) "
                      "WHERE finding_id = $old_id", {"new_id": new_id, "old_id": old_id})
    return len(moves)


def _rank(finding_id: str, key: tuple[Any, ...], max_rank: int) -> int:
    """The rank a stable id was made with (0 for an id that is not one)."""
    key = (*key[:3], str(key[3]), *key[4:])
    for rank in range(max_rank):
        if stable_finding_id(key, rank) == finding_id:
            return rank
    return 0


def without_runs(table: pa.Table, runs: Sequence[str]) -> pa.Table:
    """The rows of ``table`` whose run is not one of ``runs``."""
    if not runs:
        return table
    mask = pc.invert(pc.is_in(table.column("run_id"), value_set=pa.array(list(runs))))
    return table.filter(mask)
