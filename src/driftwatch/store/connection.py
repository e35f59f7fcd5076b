"""Opening DuckDB connections the one way driftwatch does it, and turning driver errors
into one-line driftwatch errors.

Every connection (the writer's, read-only ones for user SQL, the private ones of the
predicate evaluators) is opened with external access disabled and its configuration
locked, so no SQL that reaches it can read or write files, attach databases, install or
load extensions from disk, or change settings. DuckDB still reads and writes the
connection's own database file, its WAL and its spill directory (``<db>.tmp``).

What that costs the writer: ``COPY … TO``, ``EXPORT DATABASE``, ``ATTACH`` and
``read_parquet`` are unavailable on the store connection. Parquet export therefore goes
through Arrow (fetch record batches, write them with pyarrow), which needs no external
access, instead of ``COPY``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import duckdb

from driftwatch.core.errors import NotFoundError, StoreError

MEMORY: Final = ":memory:"

_PID = re.compile(r"\(PID (\d+)\)")


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error message (DuckDB adds context lines)."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


def normalize_path(path: str | Path) -> str | Path:
    """``":memory:"`` stays a string; anything else becomes an absolute Path."""
    if isinstance(path, str) and path in {MEMORY, ""}:
        return MEMORY
    return Path(path).expanduser().resolve()


def open_connection(
    path: str | Path,
    *,
    read_only: bool = False,
    settings: Mapping[str, str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a locked-down connection (see the module docstring).

    ``settings`` are applied (``SET GLOBAL``) before the configuration is locked.
    Raises :class:`NotFoundError` when ``read_only`` and the file does not exist, and
    :class:`StoreError` with one line naming the path when the file is locked by another
    process, already open here with other settings, or not a database.
    """
    target = normalize_path(path)
    if isinstance(target, Path):
        if read_only and not target.exists():
            raise NotFoundError(f"database not found: {target}")
        if not read_only:
            target.parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = duckdb.connect(
            str(target), read_only=read_only, config={"enable_external_access": False}
        )
    except duckdb.Error as error:
        raise _open_error(target, error) from None
    try:
        locked = connection.execute("SELECT current_setting('lock_configuration')").fetchone()
        if locked and locked[0]:
            # DuckDB shares one database instance per file within a process: this file is
            # already open here and was set up (and locked) by the first connection.
            return connection
        # icu is statically linked; loading it needs no file access. It has to be loaded
        # before TimeZone can be set, which is why this is not in the connect config.
        connection.execute("LOAD icu")
        connection.execute("LOAD json")
        connection.execute("SET GLOBAL TimeZone = 'UTC'")
        # No progress bar on this (the writing) connection: DuckDB draws one on stdout for
        # any statement over 2 s (a big insert on a loaded machine), amid our output.
        connection.execute("SET enable_progress_bar = false")
        for name, value in (settings or {}).items():
            connection.execute(f"SET GLOBAL {name} = ?", [value])
        connection.execute("SET lock_configuration = true")
    except duckdb.Error as error:
        connection.close()
        raise StoreError(f"cannot set up {target}: {first_line(error)}") from None
    return connection


def _open_error(target: str | Path, error: duckdb.Error) -> StoreError:
    message = str(error)
    if "Could not set lock" in message or "Conflicting lock" in message:
        pid = _PID.search(message)
        holder = (
            f"another driftwatch process (PID {pid.group(1)})"
            if pid
            else ("another driftwatch process")
        )
        return StoreError(
            f"{target} is locked: {holder} holds it; query it through that process "
            "or wait until it finishes"
        )
    if "different configuration" in message:
        return StoreError(
            f"{target} is already open in this process with different settings "
            "(read-only vs read-write)"
        )
    return StoreError(f"cannot open {target}: {first_line(error)}")
