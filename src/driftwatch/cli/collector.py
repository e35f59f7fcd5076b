"""``driftwatch serve`` and ``driftwatch watch``, and the collector route of ``sql``."""

# function-level imports: start-up — every command imports what it runs when it runs, so each
# starts in ≤ 0.5 s (tests/cli/test_startup_imports.py)
from __future__ import annotations

from typing import Any

import typer

from driftwatch.core.errors import UsageError


def serve_command(
    *,
    host: str,
    port: int,
    db: str | None,
    token: str | None,
    packs: list[str] | None,
    webhook: str | None,
    jsonl: str | None,
    min_severity: str,
    cooldown: float | None,
    dedupe: bool,
    idle_timeout: float,
    max_body_mb: float,
    allowed_hosts: tuple[str, ...] = (),
    grpc_port: int | None = None,
    quiet: bool,
) -> None:
    from pydantic import ValidationError

    from driftwatch.alert import AlertConfig
    from driftwatch.collector import CollectorConfig, CollectorLimits, check_bind, serve
    from driftwatch.core.logging import configure_logging
    from driftwatch.core.settings import db_path

    check_bind(host, token)  # before anything slow
    if port < 0 or port > 65535:
        raise UsageError(f"--port must be 0-65535, got {port}")
    if grpc_port is not None and not 0 <= grpc_port <= 65535:
        raise UsageError(f"--grpc-port must be 0-65535, got {grpc_port}")
    if idle_timeout <= 0 or max_body_mb <= 0:
        raise UsageError("--idle-timeout and --max-body-mb must be positive")
    configure_logging()
    try:
        alerts = AlertConfig.from_mapping(
            {"console": not quiet, "jsonl": jsonl, "webhook": webhook,
             "min_severity": min_severity, "cooldown_s": cooldown, "dedupe": dedupe},
            source="flags",
        )
    except ValidationError as error:  # pragma: no cover - from_mapping raises SpecError
        raise UsageError(str(error).splitlines()[0]) from None
    config = CollectorConfig(
        db=db_path(db), host=host, port=port, grpc_port=grpc_port, token=token,
        packs=tuple(packs or ()),
        alerts=alerts, idle_timeout_s=idle_timeout,
        limits=CollectorLimits(max_body_bytes=int(max_body_mb * 1024 * 1024),
                               allowed_hosts=allowed_hosts),
    )

    grpc_address: list[str] = []

    def ready(url: str) -> None:
        grpc = f"; OTLP/gRPC {grpc_address[0]}" if grpc_address else ""
        typer.echo(f"driftwatch collector on {url} (OTLP/HTTP {url}/v1/traces{grpc}), "
                   f"database {config.db}", err=True)

    def stopped(line: str) -> None:
        typer.echo(line, err=True)

    serve(config, on_ready=ready, on_grpc=grpc_address.append, on_stopped=stopped)


def watch_command(*, url: str | None, db: str | None, token: str | None, min_severity: str,
                  limit: int | None) -> None:
    from rich.console import Console

    from driftwatch.alert import ConsoleSink
    from driftwatch.collector import finding_from_dict, read_info, stream_lines
    from driftwatch.core.records import Severity
    from driftwatch.core.settings import db_path

    try:
        severity = Severity.parse(min_severity)
    except ValueError as error:
        raise UsageError(f"--min-severity: {error}") from None
    if url is None:
        info = read_info(db_path(db), on_untrusted=_warn)
        url = info.url if info is not None else "http://127.0.0.1:4318"
    sink = ConsoleSink(console=Console(highlight=False), min_severity=severity)
    shown = 0
    try:
        for line in stream_lines(url.rstrip("/"), token=token, min_severity=severity.label):
            try:
                finding = finding_from_dict(line)
            except (KeyError, ValueError, TypeError):
                continue  # not a finding (a newer server's line): skip it
            sink.send([finding])
            shown += 1
            if limit is not None and shown >= limit:
                return
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the normal way to stop watching
        typer.echo(f"stopped watching {url} ({shown} findings shown)", err=True)


def query_via_collector(path: Any, sql: str, *, token: str | None, timeout: float
                        ) -> tuple[list[str], list[Any]] | None:
    """Rows from the collector that holds ``path`` open, or None when none runs."""
    from driftwatch.collector.info import read_info, remote_query

    info = read_info(path, on_untrusted=_warn)
    if info is None:
        return None
    try:
        columns, rows, _ = remote_query(info.url, sql, token=token, timeout_s=timeout)
    except ConnectionError:
        return None  # it is stopping: the file is (about to be) free
    return columns, rows


def collector_reader(path: Any, *, token: str | None, timeout: float = 60.0) -> Any:
    """For the read-only commands: ``query(sql, params) -> QueryResult`` through the
    collector that holds ``path`` open (its ``/v1/sql``, the route ``sql`` takes), or
    None when none runs. Only what JSON carries comes back (timestamps as text)."""
    from driftwatch.collector.info import read_info, remote_query
    from driftwatch.store.result import QueryResult

    info = read_info(path, on_untrusted=_warn)
    if info is None:
        return None
    url = info.url

    def query(sql: str, params: list[Any] | None = None) -> QueryResult:
        columns, rows, truncated = remote_query(url, sql, token=token, timeout_s=timeout,
                                                params=list(params or ()))
        if truncated:
            raise UsageError("the collector cut the result short; stop `serve` and run again")
        return QueryResult(columns=columns, rows=[tuple(row) for row in rows])

    return query


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)
