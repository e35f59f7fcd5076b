"""``driftwatch serve``: the collector on uvicorn, until SIGINT/SIGTERM.

Refuses to start on a non-loopback address without a token. Writes
``<db>.collector.json`` once listening (so ``driftwatch sql`` and ``watch`` find it) and
removes it on the way out. On SIGINT or SIGTERM (Ctrl-C, ``systemd``, ``docker stop``,
Kubernetes): stop accepting, answer the requests in progress, commit what was accepted,
end the runs whose root span arrived and mark the others ``interrupted``, let the
monitor process evaluate what it was sent and stop it, close the store, and return —
exit code 0 and one summary line, no traceback. uvicorn serves the app behind the
connection guard (:mod:`driftwatch.collector.guard`); see :func:`uvicorn_config`.
"""

# function-level imports: optional dependency — uvicorn is the [collector] extra
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any

from driftwatch.collector.gcpolicy import long_lived_process
from driftwatch.collector.info import CollectorInfo, remove_info, write_info
from driftwatch.collector.origin import is_loopback
from driftwatch.collector.service import Collector, CollectorConfig
from driftwatch.core.errors import UsageError
from driftwatch.core.logging import get_logger

__all__ = ["check_bind", "is_loopback", "serve", "uvicorn_config"]

log = get_logger(__name__)


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise UsageError(f"--token is required to listen on {host} (not loopback); "
                         "or bind 127.0.0.1")


def uvicorn_config(collector: Collector, host: str, port: int) -> Any:
    """uvicorn's configuration for ``collector``: its app behind the connection guard.

    ``limit_concurrency`` stays off: uvicorn counts idle sockets against it and answers
    503 to everyone once they fill it; the guard bounds connections instead (per client,
    in all, with head timeouts), and the app bounds memory. ``timeout_keep_alive`` closes
    a kept-alive connection idle after a response; the guard times request heads.
    """
    import uvicorn

    collector.app.bind(host)
    return uvicorn.Config(
        collector.app, host=host, port=port, log_level="warning",
        access_log=False, lifespan="off", timeout_graceful_shutdown=3,
        http=collector.app.guard.protocol_class("httptools"), ws="none",
        timeout_keep_alive=5, server_header=False, date_header=False,
    )


def serve(config: CollectorConfig, *,
          on_ready: Callable[[str], None] | None = None,
          on_grpc: Callable[[str], None] | None = None,
          on_stopped: Callable[[str], None] | None = None) -> None:
    """Run until SIGINT or SIGTERM, then stop in order and return (no exception).
    ``on_ready(url)`` is called once the port is open, ``on_stopped(line)`` with a
    one-line summary once everything is closed. With ``config.grpc_port`` the OTLP/gRPC
    services listen too (:mod:`driftwatch.collector.grpc_server`), on the same address;
    ``on_grpc(address)`` is called once they do."""
    check_bind(config.host, config.token)
    import uvicorn

    stop = _StopSignals()
    previous = {signum: signal.signal(signum, stop.handle) for signum in _STOP_SIGNALS}
    collector: Collector | None = None
    try:
        collector = Collector(config)  # a signal meanwhile is noted: no serving then
        server = uvicorn.Server(uvicorn_config(collector, config.host, config.port))
        stop.server = server
        if stop.signal is None:
            with long_lived_process():
                asyncio.run(_run(server, collector, on_ready, lambda: stop.signal is not None,
                                 on_grpc))
        stop.server = None  # uvicorn is done: a signal now only concerns the close
    finally:
        stop.server = None
        remove_info(config.db)
        if collector is not None:
            collector.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if on_stopped is not None:
        on_stopped(_summary(collector, stop.signal))


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopSignals:
    """Our handler for SIGINT/SIGTERM around uvicorn's. While uvicorn serves, its own
    handler (``Server.handle_exit``) is installed; it shuts the server down and, once
    done, re-raises the signal, which lands here and is only noted — no
    KeyboardInterrupt through asyncio's tasks. Before serving (the collector is
    starting) and after (it is committing and closing) a signal is noted too: the
    start-up skips serving, the close goes on (bounded), and a second signal says so."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.server: object = None

    def handle(self, signum: int, frame: object) -> None:
        first = self.signal is None
        if first:
            self.signal = signum
        server = self.server
        handle_exit = getattr(server, "handle_exit", None)
        if callable(handle_exit) and getattr(server, "started", False):
            handle_exit(signum, frame)  # a signal between uvicorn's handlers and ours
        elif not first:
            log.warning("still stopping: committing accepted spans and closing; kill -9 "
                        "stops at once (acknowledged spans are stored)")


def _summary(collector: Collector | None, signum: int | None) -> str:
    why = signal.Signals(signum).name if signum is not None else "stop"
    if collector is None:  # pragma: no cover - Collector() raised: no summary is printed
        return f"driftwatch collector stopped ({why})"
    runs = collector.runs
    line = (f"driftwatch collector stopped ({why}): {collector.ingest.stored} spans stored; "
            f"runs: {runs.ended} ended, {runs.interrupted} interrupted")
    return line + (" (resumed at the next start)" if runs.interrupted else "")


async def _run(server: object, collector: Collector,
               on_ready: Callable[[str], None] | None,
               stop_requested: Callable[[], bool],
               on_grpc: Callable[[str], None] | None = None) -> None:
    import uvicorn

    assert isinstance(server, uvicorn.Server)
    task = asyncio.ensure_future(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if not server.started:
        with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind
            await task
        config = collector.config
        raise UsageError(f"cannot listen on {config.host}:{config.port}")
    port = server.servers[0].sockets[0].getsockname()[1]
    host = collector.config.host
    local = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - a name, not a bind
    url = f"http://[{local}]:{port}" if ":" in local else f"http://{local}:{port}"
    receiver = None
    if collector.config.grpc_port is not None:
        # optional dependency — grpcio is the [collector] extra; loaded only when asked for
        from driftwatch.collector.grpc_server import GrpcReceiver

        receiver = GrpcReceiver(collector.app)
        try:
            grpc_port = await receiver.start(host or "127.0.0.1", collector.config.grpc_port)
        except (OSError, RuntimeError) as error:
            server.should_exit = True
            await task
            raise UsageError(f"cannot listen on {host}:{collector.config.grpc_port} (gRPC): "
                             f"{error}") from None
        if on_grpc is not None:
            on_grpc(f"[{local}]:{grpc_port}" if ":" in local else f"{local}:{grpc_port}")
    write_info(collector.config.db, CollectorInfo(url=url, pid=os.getpid(),
                                                  token_required=bool(collector.config.token)))
    if on_ready is not None:
        on_ready(url)
    while not task.done():
        if stop_requested():  # a signal before uvicorn's handlers were in place
            server.should_exit = True
        if server.should_exit:
            collector.app.stopping = True  # end the findings streams
        await asyncio.sleep(0.1)
    if receiver is not None:  # requests in progress are committed before the store closes
        await receiver.stop()
    await task
