"""The collector's monitors in a process of their own.

One interpreter cannot decode, commit and monitor 20,000 spans a second: the three share
its lock, so the collector tops out near what one core does. Here the monitors run in a
child process (``spawn``; an engine that :func:`~driftwatch.monitor.engine.build.
build_engine` makes from the collector's :class:`~driftwatch.monitor.engine.build.
EngineConfig`, as every other caller does), so decoding and the commit use one core and
the monitors the other.

Protocol, over one duplex pipe (messages are pickled tuples):

- parent → child: ``("spans", seq, ipc)`` the committed spans as an Arrow IPC stream
  (the table the store was written with, plus the exact nanosecond times);
  ``("end", req, run_id)``; ``("rekey", req, old, new, turn_offset)`` (forget both runs:
  ``old`` was re-keyed into ``new``, whose spans come next); ``("flush", req)``;
  ``("close",)``.
- child → parent: ``("ready", specs)`` (each monitor's spec) or ``("failed", message)``
  at start;
  ``("findings", [Finding])`` as the engine finds them; ``("done", seq, n)`` once a
  span batch is evaluated; ``("ended", req)``; ``("rekeyed", req, old, new,
  turn_offset)`` after every finding of the runs it forgot (the parent then moves the
  stored findings, before any finding of the new run's spans arrives);
  ``("flushed", req)``; ``("closed",)``.

The parent delivers findings (store, then alert sinks) on its reader thread, so the
child never opens the DuckDB file. Ordering is the pipe's: a run's ``end`` is evaluated
after every span sent before it.

Backpressure: :meth:`MonitorProcess.submit` blocks while ``max_in_flight`` spans are
sent and not yet evaluated, which stalls the ingest writer and, in turn, makes the HTTP
layer answer 503. If the child dies (the OOM killer, say), the parent logs it, starts a
new one and, before anything else reaches it, sends it the stored spans of the runs
still open (``replay``: the collector reads them from the store), so the new child
rebuilds their monitor state; spans committed meanwhile may come twice, and the child
evaluates each span of a run once. Findings have stable ids, so what the old child had
already found is not stored or alerted again.

Life: the parent alone decides when the child stops. The child ignores SIGINT and
SIGTERM (Ctrl-C and ``systemd``/``docker stop`` signal the whole process group; the
parent then stops it in order, after its last spans), and exits at once when the parent
is gone (its pipe closes, or — should the child be busy — a watchdog thread sees it
re-parented), so a ``kill -9`` of the collector leaves no monitor process behind.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

import pyarrow as pa

from driftwatch.collector.gcpolicy import long_lived_process
from driftwatch.core.errors import DriftwatchError
from driftwatch.core.logging import get_logger
from driftwatch.core.records import Finding
from driftwatch.monitor.engine.build import EngineConfig, build_engine
from driftwatch.monitor.engine.delivery import FindingDelivery, close_components
from driftwatch.store.arrow import column_values
from driftwatch.store.span_batch import SpanBatch

__all__ = ["MonitorProcess", "MonitorProcessError"]

log = get_logger(__name__)


def _table_to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _table_from_ipc(data: bytes) -> pa.Table:
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_all()


class MonitorProcessError(DriftwatchError):
    """The monitor process could not be started (one line for the CLI)."""


class MonitorProcess:
    """The parent's side: the same ``submit``/``flush``/``end_run``/``close`` and
    ``records_seen`` as the collector needs from a ``MonitorEngine``. Thread-safe."""

    def __init__(
        self,
        config: EngineConfig,
        delivery: FindingDelivery,
        *,
        max_in_flight: int = 65_536,
        max_in_flight_bytes: int = 128 * 1024 * 1024,
        start_timeout_s: float = 120.0,
        replay: Callable[[], Iterable[pa.Table]] | None = None,
        on_rekeyed: Callable[[str, str, int], None] | None = None,
    ) -> None:
        # a long-lived child that may evaluate a run again after a restart, and owns its
        # monitors and its one sink, whatever the caller's settings
        self._config = replace(config, keep_findings=False, stable_finding_ids=True,
                               close_components=True)
        self.monitor_specs: list[dict[str, Any]] = []  # what the child runs, once started
        self._replay = replay
        self._on_rekeyed = on_rekeyed
        self._delivery = delivery
        self._max_in_flight = max_in_flight
        self._max_in_flight_bytes = max_in_flight_bytes  # one 15 MB span is one span
        self._in_flight_bytes: dict[int, int] = {}  # seq → table bytes
        self._start_timeout_s = start_timeout_s
        self._context = multiprocessing.get_context("spawn")
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._in_flight: dict[int, int] = {}  # seq → spans
        self._waiters: dict[int, Future[None]] = {}
        self._seq = itertools.count(1)
        self._records_seen = 0
        self._restarts = 0
        self._closed = False
        self._connection: Connection | None = None
        self._process: Any = None
        self._reader: threading.Thread | None = None
        self._start()

    # --- life cycle ---------------------------------------------------------------------

    def _start(self) -> None:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_child_main, args=(child, self._config, os.getpid()),
            name="driftwatch-monitors", daemon=True,
        )
        process.start()
        child.close()
        if not parent.poll(self._start_timeout_s):
            process.kill()
            raise MonitorProcessError("the monitor process did not start in time")
        try:
            message = parent.recv()
        except EOFError:
            process.join(5)
            raise MonitorProcessError(
                f"the monitor process exited at start (exit code {process.exitcode})"
            ) from None
        if message[0] != "ready":
            process.join(5)
            raise MonitorProcessError(f"the monitor process failed to start: {message[1]}")
        self.monitor_specs = list(message[1])
        self._connection, self._process = parent, process
        self._reader = threading.Thread(target=self._read, args=(parent, process),
                                        name="driftwatch-monitor-reader", daemon=True)
        self._reader.start()

    def close(self, timeout_s: float = 30.0) -> None:
        """Let the child evaluate what it was sent, deliver its findings, stop it, then
        close the delivery's sinks (as ``MonitorEngine(close_components=True)`` does)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(OSError, ValueError):
            self._send(("close",))
        if self._reader is not None:
            self._reader.join(timeout_s)
        if self._process is not None:
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
        if self._connection is not None:
            self._connection.close()
        close_components((), self._delivery.sinks)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    @property
    def records_seen(self) -> int:
        """Spans the monitors have evaluated (whose findings are delivered)."""
        return self._records_seen

    @property
    def restarts(self) -> int:
        return self._restarts

    # --- requests -----------------------------------------------------------------------

    def submit(self, table: pa.Table) -> None:
        """Send committed spans: ``table`` as :func:`~driftwatch.store.arrow.
        exact_span_table` makes it (``SPAN_SCHEMA`` plus the exact times); blocks while
        too many are in flight. Never raises: after ``close`` (or when the child cannot
        be restarted) the spans are stored but not monitored, which is logged."""
        count = table.num_rows
        if not count:
            return
        with self._cond:
            size = table.nbytes
            while (not self._closed and self._in_flight
                   and (sum(self._in_flight.values()) + count > self._max_in_flight
                        or sum(self._in_flight_bytes.values()) + size
                        > self._max_in_flight_bytes)):
                self._cond.wait(0.1)
            if self._closed:
                log.warning("monitor process closed; spans not monitored", spans=count)
                return
            seq = next(self._seq)
            self._in_flight[seq] = count
            self._in_flight_bytes[seq] = size
        payload = _table_to_ipc(table)
        try:
            self._send(("spans", seq, payload))
        except (OSError, ValueError) as error:
            log.error("monitor process unreachable; spans not monitored", spans=count,
                      error=str(error))
            with self._cond:
                self._in_flight.pop(seq, None)
                self._in_flight_bytes.pop(seq, None)
                self._cond.notify_all()

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Wait until everything sent so far is evaluated and its findings delivered."""
        return self._request(("flush",), timeout_s)

    def end_run(self, run_id: str, timeout_s: float | None = 60.0) -> bool:
        """The monitors' ``end_run`` for ``run_id``, after every span sent before; its
        findings are delivered like the others. Returns whether it finished in time."""
        return self._request(("end", run_id), timeout_s)

    def rekey(self, old: str, new: str, turn_offset: int) -> None:
        """Forget runs ``old`` and ``new`` after every span sent before; ``on_rekeyed``
        is called on the reader thread once their findings are delivered. The caller
        then sends the new run's stored spans. Does not wait."""
        with self._cond:
            if self._closed:
                return
            req = next(self._seq)
        try:
            self._send(("rekey", req, old, new, turn_offset))
        except (OSError, ValueError) as error:
            log.error("monitor process unreachable; run not re-keyed", run_id=old,
                      new_run_id=new, error=str(error))

    def _request(self, message: tuple[Any, ...], timeout_s: float | None) -> bool:
        future: Future[None] = Future()
        with self._cond:
            if self._closed:
                return False
            req = next(self._seq)
            self._waiters[req] = future
        try:
            self._send((message[0], req, *message[1:]))
            future.result(timeout_s)
        except Exception:  # timeout, child gone: the caller only needs yes or no
            with self._cond:
                self._waiters.pop(req, None)
            return False
        return True

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            if self._connection is None:
                raise OSError("no monitor process")
            self._connection.send(message)

    # --- reader thread ------------------------------------------------------------------

    def _read(self, connection: Connection, process: Any) -> None:
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                self._child_gone(connection, process)
                return
            kind = message[0]
            if kind == "findings":
                self._delivery.deliver(message[1])
            elif kind == "done":
                with self._cond:
                    self._records_seen += message[2]
                    self._in_flight.pop(message[1], None)
                    self._in_flight_bytes.pop(message[1], None)
                    self._cond.notify_all()
            elif kind == "rekeyed":
                if self._on_rekeyed is not None:
                    try:
                        self._on_rekeyed(message[2], message[3], message[4])
                    except Exception:
                        log.exception("moving a re-keyed run's findings failed",
                                      run_id=message[2], new_run_id=message[3])
            elif kind in ("ended", "flushed"):
                with self._cond:
                    future = self._waiters.pop(message[1], None)
                if future is not None:
                    future.set_result(None)
            elif kind == "closed":
                return

    def _child_gone(self, connection: Connection, process: Any) -> None:
        with self._cond:
            closed = self._closed
            lost = sum(self._in_flight.values())
            self._in_flight.clear()
            self._in_flight_bytes.clear()
            waiters = list(self._waiters.values())
            self._waiters.clear()
            self._cond.notify_all()
        for future in waiters:
            future.set_exception(RuntimeError("the monitor process exited"))
        if closed:
            return
        process.join(1)
        log.error("monitor process exited; starting a new one and evaluating the open "
                  "runs again", exit_code=process.exitcode, spans_in_flight=lost)
        with self._send_lock:  # no span, end or flush gets to the new child before these
            connection.close()
            self._connection = None
            try:
                self._start()
            except Exception as error:
                log.error("monitor process could not be restarted", error=str(error))
                return
            self._restarts += 1
            try:
                for table in self._replay() if self._replay is not None else ():
                    self._send_spans(table)
            except Exception as error:  # the new child serves the runs it gets from now
                log.error("open runs could not be evaluated again", error=str(error))

    def _send_spans(self, table: pa.Table) -> None:
        """Send spans with the send lock held (no backpressure wait: the replay is
        bounded by the open runs)."""
        if not table.num_rows:
            return
        with self._cond:
            seq = next(self._seq)
            self._in_flight[seq] = table.num_rows
        assert self._connection is not None
        self._connection.send(("spans", seq, _table_to_ipc(table)))


# --- the child ------------------------------------------------------------------------


class _PipeSink:
    """The child's only sink: findings go back to the parent, which stores and sends."""

    name = "parent"

    def __init__(self, send: Any) -> None:
        self._send = send

    def send(self, findings: Sequence[Finding]) -> None:
        try:
            self._send(("findings", list(findings)))
        except OSError:  # the parent is gone: nobody can store these findings
            os._exit(0)

    def close(self) -> None:
        return None


def _watch_parent(parent_pid: int, every_s: float = 0.2) -> None:
    """Exit when the parent is gone, even while the main thread is busy evaluating (a
    pipe's end-of-file is only seen at the next read)."""
    while True:
        time.sleep(every_s)
        if os.getppid() != parent_pid:
            os._exit(0)


def _child_main(connection: Connection, config: EngineConfig, parent_pid: int) -> None:
    # the parent stops this process (after its last spans); a signal to the whole
    # process group must not kill it first and lose the findings in flight
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="driftwatch-parent-watch",
                     daemon=True).start()
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            connection.send(message)

    try:
        engine = build_engine(config, sinks=[_PipeSink(send)])
    except Exception as error:  # a pack that will not load: the parent says why
        send(("failed", f"{type(error).__name__}: {error}"))
        return
    with long_lived_process():
        send(("ready", [dict(monitor.spec) for monitor in engine.monitors]))
        try:
            _serve_parent(connection, engine, send)
        except OSError:  # the parent went away mid-reply: nothing left to do
            os._exit(0)


class _SeenSpans:
    """The spans of each open run this child has evaluated: after a restart the parent's
    replay and its live stream may both carry a span, which must count once."""

    def __init__(self) -> None:
        self._runs: dict[str, set[tuple[str, str]]] = {}

    def new_only(self, table: pa.Table) -> pa.Table:
        keep: list[bool] = []
        runs = self._runs
        for run_id, trace_id, span_id in zip(column_values(table.column("run_id")),
                                             column_values(table.column("trace_id")),
                                             column_values(table.column("span_id")),
                                             strict=True):
            spans = runs.get(run_id)
            if spans is None:
                spans = runs[run_id] = set()
            key = (trace_id, span_id)
            keep.append(key not in spans)
            spans.add(key)
        return table if all(keep) else table.filter(pa.array(keep, pa.bool_()))

    def forget(self, run_id: str) -> None:
        self._runs.pop(run_id, None)


def _serve_parent(connection: Connection, engine: Any, send: Any) -> None:
    seen = _SeenSpans()
    while True:
        try:
            messages = [connection.recv()]
            # whatever else is waiting is evaluated with it: one wait for many runs' ends
            while len(messages) < 256 and connection.poll(0):
                messages.append(connection.recv())
        except (EOFError, OSError):  # the parent is gone: its findings cannot be stored
            os._exit(0)
        replies: list[tuple[Any, ...]] = []
        for message in messages:
            kind = message[0]
            if kind == "spans":
                batch = SpanBatch.from_table(seen.new_only(_table_from_ipc(message[2])))
                engine.submit_batch(batch)  # the rule packs take their rows from its table
                replies.append(("done", message[1], len(batch)))
            elif kind == "end":
                engine.request_end_run(message[2])
                seen.forget(message[2])
                replies.append(("ended", message[1]))
            elif kind == "rekey":  # a barrier: what came before is evaluated and sent
                engine.discard_run([message[2], message[3]])
                seen.forget(message[2])
                seen.forget(message[3])
                engine.flush(None)
                replies.append(("rekeyed", *message[1:]))
                for reply in replies:
                    send(reply)
                replies = []
            elif kind == "flush":
                replies.append(("flushed", message[1]))
            elif kind == "close":
                engine.close()
                for reply in replies:
                    send(reply)
                send(("closed",))
                connection.close()
                return
        engine.flush(None)
        for reply in replies:
            send(reply)
