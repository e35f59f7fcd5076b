"""User SQL for the process that writes the store, in a process of its own.

The writer's DuckDB instance cannot give one query its own limits: ``memory_limit`` and
``threads`` are instance-wide (a ``SET`` on a cursor is global) and the configuration is
locked, so a query on a cursor of the writer shares ingest's memory and cores (a query
building big strings took a collector to 6.5 GB). Here each query runs in a worker
process over a snapshot of the database:

- the snapshot: under the store's lock (writes pause), a checkpoint and a copy of the
  file into ``.<db>.sql-snapshots/`` beside it (mode 0700), taken again only when the
  file or its WAL changed since the last one, so a query sees every commit acknowledged
  before it started. Its cost is a copy of the database file, during which ingest waits
  (the price of isolation; a checkpoint happens anyway when ingest goes idle).
- the worker: its own DuckDB instance (``memory_limit`` = half of ``memory_bytes``, one
  thread, external access disabled, configuration locked), an address-space limit of
  ``memory_bytes`` plus the interpreter, the same statement check, read-only
  transaction and time limit as :func:`~driftwatch.store.safe_sql.safe_query`, and a
  result size limit.
- the parent: kills the worker when its resident memory passes ``memory_bytes`` or the
  time limit passed without an answer, and starts a new one for the next query. One
  query runs at a time; others wait their turn within their own time limit.

Only the worker's memory grows with a query: the collector's own stays flat.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import shutil
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from driftwatch.core.errors import QueryError
from driftwatch.core.logging import get_logger
from driftwatch.store.result import QueryResult
from driftwatch.store.safe_sql import check_read_only

if TYPE_CHECKING:
    from driftwatch.store.db import Store

__all__ = ["SqlWorker"]

log = get_logger(__name__)

_POLL_S: Final = 0.02
# what the interpreter, pyarrow and DuckDB map before a query allocates anything
_ADDRESS_SPACE_BASE: Final = 1024 * 1024 * 1024


class SqlWorker:
    """Runs :meth:`query` for a live :class:`Store` in a worker process (thread-safe)."""

    def __init__(self, store: Store, *, memory_bytes: int = 512 * 1024 * 1024,
                 max_result_bytes: int = 64 * 1024 * 1024) -> None:
        self._store = store
        self.memory_bytes = memory_bytes
        self.max_result_bytes = max_result_bytes
        self._lock = threading.Lock()
        # next to the database: the same disk (a tmpfs /tmp would hold the copy in RAM),
        # private to the user; one left by a killed collector is replaced
        source = store.path
        assert isinstance(source, Path), "a snapshot needs a database file"
        self._directory = source.with_name(f".{source.name}.sql-snapshots")
        shutil.rmtree(self._directory, ignore_errors=True)
        self._directory.mkdir(mode=0o700)
        self._snapshot = self._directory / "snapshot.duckdb"
        self._generation = 0
        self._stamp: tuple[int, ...] | None = None
        self._process: Any = None
        self._connection: Connection | None = None
        self.killed = 0
        self._closed = False

    def query(self, sql: str, timeout_s: float, max_rows: int | None,
              params: list[Any] | None = None) -> QueryResult:
        """Like ``safe_query(store, ...)``; ``params`` fill the statement's ``?``
        placeholders (JSON values: text, numbers, booleans, null, lists). Raises
        :class:`QueryError` (one line) for a
        refused statement, the time limit, the memory limit or an oversized result."""
        check_read_only(sql)
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=max(0.0, timeout_s)):
            raise QueryError(f"another query is running; none started within {timeout_s:g} s")
        try:
            if self._closed:
                raise QueryError("the collector is stopping")
            self._refresh()
            return self._ask(sql, deadline, timeout_s, max_rows, params)
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop()
            shutil.rmtree(self._directory, ignore_errors=True)

    # --- snapshot --------------------------------------------------------------------

    def _refresh(self) -> None:
        source = self._store.path
        assert isinstance(source, Path), "a snapshot needs a database file"
        wal = source.with_name(source.name + ".wal")
        stamp = _stamp(source) + _stamp(wal)
        if stamp == self._stamp and self._snapshot.exists():
            return
        self._generation += 1
        target = self._directory / f"snapshot-{self._generation}.duckdb"
        with self._store._lock:  # no commit between the checkpoint and the copy
            self._store.checkpoint()
            shutil.copyfile(source, target)
            if wal.exists():
                shutil.copyfile(wal, target.with_name(target.name + ".wal"))
            stamp = _stamp(source) + _stamp(wal)
        old = self._snapshot
        self._snapshot, self._stamp = target, stamp
        for stale in (old, old.with_name(old.name + ".wal")):
            with contextlib.suppress(OSError):
                stale.unlink()

    # --- the worker ------------------------------------------------------------------

    def _ask(self, sql: str, deadline: float, timeout_s: float,
             max_rows: int | None, params: list[Any] | None = None) -> QueryResult:
        connection = self._start()
        # the worker interrupts itself at the time limit; the grace covers an answer
        # under way, after which it is killed
        remaining = max(0.0, deadline - time.monotonic())
        connection.send((str(self._snapshot), sql, remaining, max_rows, self.max_result_bytes,
                         params))
        kill_at = deadline + 1.0
        while not connection.poll(_POLL_S):
            if _resident_bytes(self._process.pid) > self.memory_bytes:
                self._kill("memory")
                raise QueryError(f"query exceeded the memory limit of "
                                 f"{self.memory_bytes // (1024 * 1024)} MiB")
            if time.monotonic() > kill_at:
                self._kill("time")
                raise QueryError(f"query exceeded the {timeout_s:g} s time limit")
            if not self._process.is_alive():
                break
        try:
            status, payload = connection.recv()
        except (EOFError, OSError):
            self._kill("died")
            raise QueryError(f"query exceeded the memory limit of "
                             f"{self.memory_bytes // (1024 * 1024)} MiB (worker ended)") from None
        if status == "error":
            if "time limit" in payload:
                raise QueryError(f"query exceeded the {timeout_s:g} s time limit")
            raise QueryError(payload)
        columns, rows, truncated = pickle.loads(payload)  # noqa: S301 - our own child's bytes
        return QueryResult(columns=columns, rows=rows, truncated=truncated)

    def _start(self) -> Connection:
        if self._process is not None and self._process.is_alive():
            assert self._connection is not None
            return self._connection
        self._stop()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=True)
        process = context.Process(target=_worker_main,
                                  args=(child, self.memory_bytes), daemon=True,
                                  name="driftwatch-sql")
        process.start()
        child.close()
        self._process, self._connection = process, parent
        return parent

    def _kill(self, reason: str) -> None:
        self.killed += 1
        log.warning("sql worker killed", reason=reason)
        self._stop()

    def _stop(self) -> None:
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            connection.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(10)


def _stamp(path: Path) -> tuple[int, ...]:
    try:
        status = path.stat()
    except FileNotFoundError:
        return (0, 0)
    return (status.st_mtime_ns, status.st_size)


def _resident_bytes(pid: int) -> int:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _worker_main(connection: Connection, memory_bytes: int) -> None:
    """The worker: one query per message, on its own DuckDB instance over the snapshot."""
    import resource  # POSIX only, and only in the worker process

    limit = memory_bytes + _ADDRESS_SPACE_BASE
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # in the worker process, after its address-space limit is set
    from driftwatch.store.connection import first_line, open_connection
    from driftwatch.store.safe_sql import _run

    settings = {"memory_limit": f"{memory_bytes // 2 // (1024 * 1024)}MiB", "threads": "1"}
    opened: tuple[str, Any] | None = None
    while True:
        try:
            snapshot, sql, timeout_s, max_rows, max_result_bytes, params = connection.recv()
        except (EOFError, OSError):
            return
        try:
            if opened is None or opened[0] != snapshot:
                if opened is not None:
                    opened[1].close()
                opened = (snapshot, open_connection(Path(snapshot), read_only=True,
                                                    settings=settings))
            result = _run(opened[1], sql, timeout_s, max_rows, params)
            payload = pickle.dumps((result.columns, result.rows, result.truncated))
            if len(payload) > max_result_bytes:
                raise QueryError(f"result over {max_result_bytes // (1024 * 1024)} MiB; "
                                 "select fewer rows or columns")
            connection.send(("ok", payload))
        except MemoryError:
            connection.send(("error", "query exceeded the memory limit of "
                                      f"{memory_bytes // (1024 * 1024)} MiB"))
        except Exception as error:  # one line back to the parent, the worker lives on
            connection.send(("error", first_line(error)))
