"""``kill -9`` at random points while a sender streams 1,000 violating runs, with
retries, then a clean restart and drain: the monitoring is what a run without a crash
gives — no finding lost, none stored or alerted twice, no run left ``running``, every
run with spans has a row — and a client's retry after the restart changes nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from collector_helpers import POLICY
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from serve_process import ServeProcess, wait_for
from test_shutdown import error_lines

from driftwatch.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.network_loopback]

RUNS = 1000
OPEN_AT_ONCE = 8  # a run's root is sent this many requests after its first spans
KILLS = 5
PROTOBUF = {"content-type": "application/x-protobuf"}
SERVE_ARGS = ("--pack", str(POLICY), "--idle-timeout", "2")


def _span(spans: object, run: int, number: int, *, command: str | None, turn: int) -> None:
    span = spans.add(  # type: ignore[attr-defined]
        trace_id=(run + 1).to_bytes(16, "big"), span_id=number.to_bytes(8, "big"),
        name="execute_tool shell" if command else "invoke_agent ops",
        start_time_unix_nano=1_767_225_600_000_000_000 + run * 1_000_000 + number * 1000,
        end_time_unix_nano=1_767_225_600_000_000_000 + run * 1_000_000 + number * 1000 + 500)
    values = {"gen_ai.conversation.id": f"crash-{run:04d}", "driftwatch.turn": turn}
    if command is None:
        values["gen_ai.operation.name"] = "invoke_agent"
    else:
        span.parent_span_id = (99).to_bytes(8, "big")
        values |= {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "shell",
                   "gen_ai.tool.call.arguments": json.dumps({"command": command})}
    for key, value in values.items():
        attribute = span.attributes.add(key=key)
        if isinstance(value, int):
            attribute.value.int_value = value
        else:
            attribute.value.string_value = value


def requests() -> list[bytes]:
    """Each run: a request with its first spans (the second one a recursive delete), and
    later one with its root span; several runs are open at any time."""
    bodies: list[tuple[float, bytes]] = []
    for run in range(RUNS):
        first = ExportTraceServiceRequest()
        spans = first.resource_spans.add().scope_spans.add().spans
        _span(spans, run, 1, command="ls /srv", turn=1)
        _span(spans, run, 2, command=f"rm -rf /srv/{run}", turn=2)
        _span(spans, run, 3, command="df -h", turn=3)
        root = ExportTraceServiceRequest()
        _span(root.resource_spans.add().scope_spans.add().spans, run, 99, command=None, turn=3)
        bodies.append((run, first.SerializeToString()))
        bodies.append((run + OPEN_AT_ONCE + 0.5, root.SerializeToString()))
    return [body for _, body in sorted(bodies, key=lambda item: item[0])]


class Sender(threading.Thread):
    """Sends every request until it is acknowledged, as an OTLP exporter retries: on a
    refused connection or a 503 it waits for the collector (``url`` changes when it is
    restarted) and sends the same request again. After each restart it also re-sends the
    last three acknowledged requests (a client unsure whether they arrived)."""

    def __init__(self, bodies: list[bytes], url: str) -> None:
        super().__init__(daemon=True)
        self.bodies = bodies
        self.url = url
        self.acked = 0
        self.retries = 0
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            with httpx.Client(timeout=10) as client:
                url = self.url
                for index, body in enumerate(self.bodies):
                    while True:
                        if self.url != url:  # restarted: repeat the last acknowledged ones
                            url = self.url
                            for previous in self.bodies[max(0, index - 3):index]:
                                self._post(client, url, previous)
                        if self._post(client, url, body):
                            break
                        self.retries += 1
                        time.sleep(0.05)
                    self.acked = index + 1
        except Exception as error:  # surfaced by the test
            self.errors.append(repr(error))

    @staticmethod
    def _post(client: httpx.Client, url: str, body: bytes) -> bool:
        try:
            return client.post(f"{url}/v1/traces", content=body,
                               headers=PROTOBUF).status_code == 200
        except httpx.TransportError:
            return False


def drain_and_stop(server: ServeProcess, sender: Sender) -> str:
    sender.join(600)
    assert not sender.is_alive()
    assert not sender.errors, sender.errors
    assert wait_for(lambda: "driftwatch_open_runs 0.0" in server.metrics(), timeout_s=120)
    _, stderr = server.stop()
    assert server.process.returncode == 0, stderr
    return stderr


def outcome(db: Path) -> dict[str, object]:
    with Store(db, read_only=True) as store:
        findings = store.query("select finding_id, run_id, monitor, rule_id, kind, span_id, "
                               "turn from findings").rows
        return {
            "findings": Counter(row[1:] for row in findings),
            "finding_ids": Counter(row[0] for row in findings),
            "statuses": Counter(dict(store.query(
                "select status, count(*) from runs group by all").rows)),
            "runs_without_row": store.query(
                "select count(distinct run_id) from spans anti join runs using (run_id)"
            ).scalar(),
            "spans": store.query("select count(*) from spans").scalar(),
            "alerts": Counter(dict(store.query(
                "select sink, count(*) from alerts group by all").rows)),
        }


def _resumed_runs(server: ServeProcess) -> int:
    """How many runs the restarted collector resumed, from its start-up warning (logged
    before it listens, so it is in the stderr written so far)."""
    assert server.process.stderr is not None
    os.set_blocking(server.process.stderr.fileno(), False)
    text = server.process.stderr.read() or ""
    os.set_blocking(server.process.stderr.fileno(), True)
    for line in text.splitlines():
        if "resuming runs left open" in line:
            return int(json.loads(line)["runs"])
    return 0


def jsonl_ids(path: Path) -> Counter[str]:
    return Counter(json.loads(line)["finding_id"] for line in path.read_text().splitlines())


def test_kill_9_at_random_points_loses_and_repeats_no_finding(tmp_path: Path) -> None:
    bodies = requests()

    # what the monitoring gives without a crash
    calm_db, calm_alerts = tmp_path / "calm.duckdb", tmp_path / "calm.jsonl"
    server = ServeProcess(calm_db, *SERVE_ARGS, "--jsonl", str(calm_alerts))
    sender = Sender(bodies, server.url)
    sender.start()
    drain_and_stop(server, sender)
    calm = outcome(calm_db)
    assert sum(1 for key in calm["findings"] if key[2] == "recursive-delete") == RUNS
    assert calm["statuses"] == Counter({"completed": RUNS})

    # the same stream, killed five times at random points
    db, alerts = tmp_path / "crash.duckdb", tmp_path / "crash.jsonl"
    rng = random.Random(15)
    kill_points = sorted(rng.sample(range(50, len(bodies) - 50), KILLS))
    server = ServeProcess(db, *SERVE_ARGS, "--jsonl", str(alerts))
    sender = Sender(bodies, server.url)
    sender.start()
    resumed: list[int] = []
    for point in kill_points:
        assert wait_for(lambda p=point: sender.acked >= p or not sender.is_alive(),
                        timeout_s=300)
        server.process.send_signal(signal.SIGKILL)
        server.process.communicate(timeout=60)
        server = ServeProcess(db, *SERVE_ARGS, "--jsonl", str(alerts))
        sender.url = server.url
        resumed.append(_resumed_runs(server))
    stderr = drain_and_stop(server, sender)
    assert error_lines(stderr) == []
    assert sender.retries >= KILLS  # each kill cut requests off
    assert all(resumed), resumed  # every kill left open runs that the restart resumed
    print(f"kill points {kill_points}, runs resumed per restart {resumed}, "
          f"retried requests {sender.retries}")

    crashed = outcome(db)
    lost = calm["findings"] - crashed["findings"]
    extra = crashed["findings"] - calm["findings"]
    assert (sum(lost.values()), sum(extra.values())) == (0, 0), (lost, extra)
    assert crashed["finding_ids"] == calm["finding_ids"]  # stable ids: the same ones
    assert max(crashed["finding_ids"].values()) == 1
    assert crashed["statuses"] == Counter({"completed": RUNS})
    assert crashed["runs_without_row"] == 0
    assert crashed["spans"] == calm["spans"] == RUNS * 4
    assert crashed["alerts"] == calm["alerts"]  # one alerts row per finding and sink
    sent = jsonl_ids(alerts)
    assert set(sent) == set(calm["finding_ids"])  # every finding alerted at least once

    # a client retries everything after a clean restart: nothing stored, monitored or
    # alerted again
    server = ServeProcess(db, *SERVE_ARGS, "--jsonl", str(alerts))
    retry = Sender(bodies[:200], server.url)
    retry.start()
    drain_and_stop(server, retry)
    assert outcome(db) == crashed
    assert jsonl_ids(alerts) == sent
