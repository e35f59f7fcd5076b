"""A heavy read-only query cannot take ingest down: on a real ``driftwatch serve``, SQL
that builds big strings or runs forever is refused or killed within its time limit,
the collector's own memory stays flat, and spans keep being acknowledged meanwhile."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from collector_helpers import json_body, shell_span
from serve_process import ServeProcess

pytestmark = [pytest.mark.slow, pytest.mark.network_loopback]

GIB = 1024**3
JSON = {"content-type": "application/json"}
HEAVY = [
    # big strings: what took a collector to 6.5 GB
    "select sum(length(s)) from (select repeat('x', 10000000) || i::varchar as s "
    "from range(400) t(i))",
    "select length(string_agg(repeat('x', 1000000), '')) from range(3000)",
    # a result too big to hand back
    "select repeat('x', 50000000) as s from range(40)",
    # runs past any time limit
    "select count(*) from range(100000000000) a",
]


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_heavy_queries_are_stopped_and_ingest_keeps_answering(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path / "c.duckdb")
    stop = threading.Event()
    acknowledged: list[int] = []
    peaks = {"collector": 0, "monitors": 0}

    def ingest() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            response = httpx.post(f"{server.url}/v1/traces", headers=JSON, timeout=10,
                                  content=json_body(shell_span(n, "ls")))
            acknowledged.append(response.status_code)
            time.sleep(0.05)

    def sample() -> None:
        while not stop.is_set():
            peaks["collector"] = max(peaks["collector"], resident_bytes(server.process.pid))
            for pid in server.monitor_pids():
                peaks["monitors"] = max(peaks["monitors"], resident_bytes(pid))
            time.sleep(0.05)

    threads = [threading.Thread(target=ingest), threading.Thread(target=sample)]
    try:
        for thread in threads:
            thread.start()
        for sql in HEAVY:
            before = len(acknowledged)
            started = time.monotonic()
            response = httpx.post(f"{server.url}/v1/sql", headers=JSON, timeout=60,
                                  json={"sql": sql, "timeout_s": 5})
            elapsed = time.monotonic() - started
            assert response.status_code == 400, (sql, response.text)
            message = response.json()["message"]
            assert any(word in message for word in ("memory", "time limit", "result over",
                                                    "Out of Memory")), message
            assert elapsed < 5 + 5, (sql, elapsed)  # the limit and the kill's grace
            assert len(acknowledged) > before, "no span acknowledged during the query"
        # the worker is replaced after a kill: the next query is answered
        response = httpx.post(f"{server.url}/v1/sql", headers=JSON, timeout=60,
                              json={"sql": "select count(*) as n from spans"})
        assert response.status_code == 200
        assert response.json()["rows"][0][0] >= 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        server.stop()
    assert set(acknowledged) == {200}
    assert peaks["collector"] < GIB, peaks
    assert peaks["monitors"] < GIB, peaks
