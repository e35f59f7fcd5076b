"""``driftwatch serve``: the collector on uvicorn, until SIGINT/SIGTERM.

Refuses to start on a non-loopback address without a token. Writes
``<db>.collector.json`` once listening (so ``driftwatch sql`` and ``watch`` find it) and
removes it on the way out; on stop, accepted spans are committed, open runs ended and
the store closed. uvicorn serves the app behind the connection guard
(:mod:`driftwatch.collector.guard`); see :func:`uvicorn_config`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
from collections.abc import Callable
from typing import Any

from driftwatch.collector.gcpolicy import long_lived_process
from driftwatch.collector.info import CollectorInfo, remove_info, write_info
from driftwatch.collector.service import Collector, CollectorConfig
from driftwatch.core.errors import UsageError
from driftwatch.core.logging import get_logger

__all__ = ["check_bind", "is_loopback", "serve", "uvicorn_config"]

log = get_logger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
          on_ready: Callable[[str], None] | None = None) -> None:
    """Run until interrupted. ``on_ready(url)`` is called once the port is open."""
    check_bind(config.host, config.token)
    import uvicorn

    collector = Collector(config)
    # uvicorn re-raises the signal that stopped it once it has shut down: SIGINT as
    # KeyboardInterrupt, SIGTERM through this handler, so both end in the cleanup below
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        server = uvicorn.Server(uvicorn_config(collector, config.host, config.port))
        with long_lived_process(), contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run(server, collector, on_ready))
    finally:
        signal.signal(signal.SIGTERM, previous)
        remove_info(config.db)
        collector.close()


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def _run(server: object, collector: Collector,
               on_ready: Callable[[str], None] | None) -> None:
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
    write_info(collector.config.db, CollectorInfo(url=url, pid=os.getpid(),
                                                  token_required=bool(collector.config.token)))
    if on_ready is not None:
        on_ready(url)
    while not task.done():
        if server.should_exit:
            collector.app.stopping = True  # end the findings streams
        await asyncio.sleep(0.1)
    await task
