"""Finding a running collector, and talking to it: the ``<db>.collector.json`` file and
the HTTP client calls behind ``driftwatch sql`` (when the collector holds the database)
and ``driftwatch watch``.

The info file is written once the server listens and removed when it stops; it holds the
URL and the process id, never the token. A file left by a killed collector is ignored
(its process is gone) and overwritten by the next ``serve``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

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


def read_info(db: str | os.PathLike[str]) -> CollectorInfo | None:
    """The running collector that owns ``db``, or None (no file, a bad file, or its
    process is gone)."""
    try:
        data = json.loads(info_path(db).read_text(encoding="utf-8"))
        info = CollectorInfo(url=str(data["url"]), pid=int(data["pid"]),
                             token_required=bool(data.get("token_required")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(info.pid):
        return None
    return info


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
                 max_rows: int | None = None) -> tuple[list[str], list[list[Any]], bool]:
    """Run read-only SQL through a collector's ``/v1/sql``. Raises :class:`QueryError`
    for SQL the collector refused, :class:`UsageError` for a missing token and
    ``ConnectionError`` when nothing answers."""
    import httpx

    body: dict[str, Any] = {"sql": sql, "timeout_s": timeout_s}
    if max_rows is not None:
        body["max_rows"] = max_rows
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
