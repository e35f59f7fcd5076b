"""Finding a running collector, and talking to it: the ``<db>.collector.json`` file and
the HTTP client calls behind ``driftwatch sql`` (when the collector holds the database)
and ``driftwatch watch``.

The info file is written once the server listens and removed when it stops; it holds the
URL and the process id, never the token. A file left by a killed collector is ignored
(its process is gone) and overwritten by the next ``serve``.

``driftwatch sql`` sends ``DRIFTWATCH_TOKEN`` to the URL in that file, so the file is
trusted only when it cannot have been planted: a regular file (not a symlink) owned by
the current user and not writable by group or others, whose process is alive, runs as
the current user and listens on the URL's port (read from ``/proc``; where there is no
``/proc``, the URL must be loopback). Otherwise ``read_info`` ignores it and says why
through ``on_untrusted``; the caller falls back to the database file.
"""

# function-level imports: start-up — httpx loads only when a running collector is asked (driftwatch
# sql ≤ 0.5 s)
from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from driftwatch.collector.origin import is_loopback
from driftwatch.core.errors import DriftwatchError, QueryError, UsageError

__all__ = [
    "ENV_TOKEN",
    "CollectorInfo",
    "info_path",
    "read_info",
    "remote_query",
    "remove_info",
    "stream_lines",
    "write_info",
]

ENV_TOKEN: Final = "DRIFTWATCH_TOKEN"  # noqa: S105 - the variable's name, not a secret


@dataclass(frozen=True, slots=True)
class CollectorInfo:
    url: str
    pid: int
    token_required: bool


def info_path(db: str | os.PathLike[str]) -> Path:
    path = Path(db)
    return path.with_name(path.name + ".collector.json")


def write_info(db: str | os.PathLike[str], info: CollectorInfo) -> Path:
    """Atomically (write, then rename), readable by the owner only."""
    target = info_path(db)
    temporary = target.with_name(target.name + f".{os.getpid()}.tmp")
    payload = {"url": info.url, "pid": info.pid, "token_required": info.token_required}
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    temporary.replace(target)
    return target


def remove_info(db: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        info_path(db).unlink()


def read_info(db: str | os.PathLike[str], *,
              on_untrusted: Callable[[str], None] | None = None) -> CollectorInfo | None:
    """The running collector that owns ``db``, or None (no file, a bad file, its
    process is gone, or a file that is not to be trusted: see the module docstring;
    ``on_untrusted`` gets the one-line reason)."""
    path = info_path(db)
    info, problem = _load(path)
    if info is not None and problem is None:
        if not _alive(info.pid):
            return None  # left by a collector that was killed: nothing to warn about
        problem = _process_problem(info)
    if problem is not None:
        _untrusted(on_untrusted, path, problem)
        return None
    return info


def _load(path: Path) -> tuple[CollectorInfo | None, str | None]:
    """The file's contents, or why it is not to be read; (None, None) when absent or
    not an info file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None, None
    except OSError as error:  # a symlink (ELOOP) or unreadable
        return None, f"cannot open it safely ({error.strerror})"
    with os.fdopen(descriptor, "rb") as handle:
        problem = _file_problem(os.fstat(handle.fileno()))
        if problem is not None:
            return None, problem
        try:
            data = json.loads(handle.read(65536))
            return CollectorInfo(url=str(data["url"]), pid=int(data["pid"]),
                                 token_required=bool(data.get("token_required"))), None
        except (OSError, ValueError, KeyError, TypeError):
            return None, None


def _untrusted(report: Callable[[str], None] | None, path: Path, reason: str) -> None:
    if report is not None:
        report(f"ignoring {path}: {reason}; reading the database file instead")


def _file_problem(status: os.stat_result) -> str | None:
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file"
    if hasattr(os, "getuid") and status.st_uid != os.getuid():
        return f"owned by uid {status.st_uid}, not by you"
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by group or others"
    return None


def _process_problem(info: CollectorInfo) -> str | None:
    """Why the process named in the file is not the collector it claims to be."""
    try:
        parts = urlsplit(info.url)
        scheme, port, host = parts.scheme, parts.port, parts.hostname or ""
    except ValueError:  # e.g. a port that is not a number
        scheme, port, host = "", None, ""
    if scheme != "http" or port is None:
        return "its URL is not http://host:port"
    if not Path("/proc/self").exists():  # no /proc: only loopback is believable
        return None if is_loopback(host) else f"its URL {info.url} is not loopback"
    try:
        owner = Path(f"/proc/{info.pid}").stat().st_uid
    except OSError:
        return f"process {info.pid} cannot be inspected"
    if hasattr(os, "getuid") and owner != os.getuid():
        return f"process {info.pid} belongs to uid {owner}, not to you"
    if not _listens(info.pid, port):
        return f"process {info.pid} does not listen on port {port}"
    return None


def _listens(pid: int, port: int) -> bool:
    """Whether ``pid`` holds a TCP socket listening on ``port`` (Linux ``/proc``)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            listening = len(fields) > 9 and fields[3] == "0A"  # TCP_LISTEN
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return False
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for descriptor in descriptors:
        with contextlib.suppress(OSError):
            target = os.readlink(descriptor)
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _headers(token: str | None) -> dict[str, str]:
    token = token or os.environ.get(ENV_TOKEN)
    return {"authorization": f"Bearer {token}"} if token else {}


def _error_message(response: Any) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return str(response.text).strip()


def remote_query(url: str, sql: str, *, token: str | None = None, timeout_s: float = 30.0,
                 max_rows: int | None = None, params: list[Any] | None = None,
                 ) -> tuple[list[str], list[list[Any]], bool]:
    """Run read-only SQL through a collector's ``/v1/sql``. Raises :class:`QueryError`
    for SQL the collector refused, :class:`UsageError` for a missing token and
    ``ConnectionError`` when nothing answers."""
    import httpx

    body: dict[str, Any] = {"sql": sql, "timeout_s": timeout_s}
    if max_rows is not None:
        body["max_rows"] = max_rows
    if params:
        body["params"] = list(params)
    try:
        response = httpx.post(f"{url}/v1/sql", json=body, headers=_headers(token),
                              timeout=timeout_s + 10)
    except httpx.TransportError as error:
        raise ConnectionError(f"collector at {url}: {error}") from None
    if response.status_code == 401:
        raise UsageError(f"the collector at {url} needs a token: pass --token or set "
                         f"{ENV_TOKEN}")
    if response.status_code == 400:
        raise QueryError(_error_message(response))
    if response.status_code != 200:
        raise DriftwatchError(f"collector at {url}: HTTP {response.status_code}: "
                              f"{_error_message(response)}")
    data = response.json()
    return list(data["columns"]), list(data["rows"]), bool(data.get("truncated"))


def stream_lines(url: str, *, token: str | None = None,
                 min_severity: str = "info") -> Iterator[dict[str, Any]]:
    """Findings from a collector's ``/v1/findings/stream``, one dict per line, until the
    collector stops. Raises :class:`UsageError` when it cannot connect or is refused."""
    import httpx

    timeout = httpx.Timeout(10.0, read=None)
    try:
        with httpx.stream("GET", f"{url}/v1/findings/stream",
                          params={"min_severity": min_severity}, headers=_headers(token),
                          timeout=timeout) as response:
            if response.status_code == 401:
                raise UsageError(f"the collector at {url} needs a token: pass --token or "
                                 f"set {ENV_TOKEN}")
            if response.status_code != 200:
                response.read()
                raise UsageError(f"collector at {url}: HTTP {response.status_code}: "
                                 f"{_error_message(response)}")
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)
    except (httpx.TransportError, ConnectionError) as error:
        raise UsageError(f"cannot reach a collector at {url}: {error}") from None
