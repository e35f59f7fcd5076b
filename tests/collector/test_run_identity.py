"""Run identity and derived turns for agents that are not ours (issue 17, item 2 and 7):
a conversation key on some spans only still makes one run, whatever the exporter's
batching; turns come from the model calls when the spans carry none."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from collector_helpers import POLICY, attribute, call, json_body

from driftwatch.alert import AlertConfig
from driftwatch.collector import Collector, CollectorConfig, CollectorLimits
from driftwatch.core.records import Finding, RunInfo, RunStatus
from driftwatch.monitor import RulePackMonitor
from driftwatch.store import Store

T0 = 1_767_225_600_000_000_000


class Recorder:
    """An alert sink that keeps what it was sent."""

    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[Finding] = []

    def send(self, findings: Sequence[Finding]) -> None:
        self.sent.extend(findings)

    def close(self) -> None:
        return None


def span(trace: str, n: int, name: str, *, parent: str | None = "root", start: int,
         end: int, attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OTLP JSON span: ``n`` its id, ``parent`` "root" (span 1 of the trace) or None."""
    out: dict[str, Any] = {
        "traceId": trace, "spanId": f"{n:016x}", "name": name,
        "startTimeUnixNano": str(T0 + start * 1_000_000),
        "endTimeUnixNano": str(T0 + end * 1_000_000),
        "attributes": [attribute(k, v) for k, v in (attrs or {}).items()],
    }
    if parent == "root":
        out["parentSpanId"] = f"{1:016x}"
    return out


def chat(trace: str, n: int, start: int, **extra: Any) -> dict[str, Any]:
    return span(trace, n, "chat gpt-4o", start=start, end=start + 5,
                attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                       **extra})


def tool(trace: str, n: int, start: int, command: str, **extra: Any) -> dict[str, Any]:
    return span(trace, n, "execute_tool shell", start=start, end=start + 2,
                attrs={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "shell",
                       "gen_ai.tool.call.arguments": json.dumps({"command": command}),
                       **extra})


def root(trace: str, start: int, end: int, **extra: Any) -> dict[str, Any]:
    return span(trace, 1, "invoke_agent ops", parent=None, start=start, end=end,
                attrs={"gen_ai.operation.name": "invoke_agent", **extra})


def util_genai_trace(trace: str, conversation: str, at: int,
                     commands: Sequence[str]) -> list[dict[str, Any]]:
    """What util-genai exports, in end order: chat and tool children without a key,
    then the ``invoke_agent`` root, the only span with ``gen_ai.conversation.id``."""
    spans: list[dict[str, Any]] = []
    n = 2
    for k, command in enumerate(commands):
        spans.append(chat(trace, n, at + 10 * k))
        spans.append(tool(trace, n + 1, at + 10 * k + 6, command))
        n += 2
    spans.append(root(trace, at, at + 10 * len(commands),
                      **{"gen_ai.conversation.id": conversation}))
    return spans


def make(tmp_path: Path, *, in_process: bool, name: str = "c") -> tuple[Collector, Recorder]:
    recorder = Recorder()
    config = CollectorConfig(db=tmp_path / f"{name}.duckdb", alerts=AlertConfig(),
                             limits=CollectorLimits(max_body_bytes=1024 * 1024),
                             packs=(str(POLICY),), idle_timeout_s=600, root_grace_s=600)
    monitors = [RulePackMonitor([POLICY])] if in_process else None
    return Collector(config, monitors=monitors, extra_sinks=[recorder]), recorder


def send(collector: Collector, spans: Sequence[dict[str, Any]]) -> None:
    response = call(collector.app, "POST", "/v1/traces", json_body(*spans),
                    {"content-type": "application/json"})
    assert response.status == 200, response.body


def outcome(collector: Collector) -> dict[str, Any]:
    assert collector.flush(60)
    store = collector.store
    return {
        "spans": sorted(store.query("select span_id, trace_id, run_id, turn from spans").rows),
        "runs": sorted(store.query("select run_id from runs").rows),
        "findings": sorted(store.query(
            "select finding_id, run_id, rule_id, span_id, turn, message from findings").rows),
        "alerts": sorted(store.query("select finding_id, sink from alerts").rows),
    }


TRACE_A, TRACE_B = "a1" * 16, "b2" * 16


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "monitor-process"])
def test_children_before_the_keyed_root_are_one_run_under_the_key(
        tmp_path: Path, in_process: bool) -> None:
    spans = util_genai_trace(TRACE_A, "conv-1", 0, ["ls /data", "rm -rf /data"])
    collector, recorder = make(tmp_path, in_process=in_process)
    try:
        send(collector, spans[:2])  # chat + tool: stored under the trace, flagged there
        assert collector.flush(60)
        send(collector, spans[2:4])  # the violation: still no key
        assert collector.flush(60)
        assert [f.run_id for f in recorder.sent] == [TRACE_A]
        send(collector, spans[4:])  # the root with gen_ai.conversation.id
        got = outcome(collector)
    finally:
        collector.close()
    assert {run for _, _, run, _ in got["spans"]} == {"conv-1"}
    assert got["runs"] == [("conv-1",)]
    turns = {span_id: turn for span_id, _, _, turn in got["spans"]}
    assert turns == {f"{1:016x}": 0, f"{2:016x}": 1, f"{3:016x}": 1, f"{4:016x}": 2,
                     f"{5:016x}": 2}
    assert [(run, rule, turn, message) for _, run, rule, _, turn, message in got["findings"]] == [
        ("conv-1", "recursive-delete", 2, "recursive delete at turn 2")]
    # alerted once, under the provisional run; its alert row moved with the finding
    assert len(recorder.sent) == 1
    assert "driftwatch_runs_rekeyed_total 1.0" in collector.metrics.render()[0].decode()
    assert got["alerts"] == [(got["findings"][0][0], "recorder")]


def test_a_second_trace_of_the_conversation_continues_its_turns(tmp_path: Path) -> None:
    first = util_genai_trace(TRACE_A, "conv-2", 0, ["ls", "pwd"])
    second = util_genai_trace(TRACE_B, "conv-2", 100, ["rm -rf /srv"])
    collector, recorder = make(tmp_path, in_process=False)
    try:
        send(collector, first)
        send(collector, second[:-1])
        assert collector.flush(60)
        send(collector, second[-1:])
        got = outcome(collector)
    finally:
        collector.close()
    assert got["runs"] == [("conv-2",)]
    by_trace = sorted((trace, span_id, turn) for span_id, trace, _, turn in got["spans"])
    assert [turn for trace, _, turn in by_trace if trace == TRACE_B] == [2, 3, 3]
    assert [(run, turn) for _, run, _, _, turn, _ in got["findings"]] == [("conv-2", 3)]
    assert len(recorder.sent) == 1


def test_a_key_on_a_closed_run_moves_nothing(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    with Store(db) as store:
        store.upsert_run(RunInfo(run_id="batch-run", trace_id=None, scenario_id="s",
                                 variant="control", model="m", seed=1,
                                 status=RunStatus.COMPLETED, started_at=None))
    spans = util_genai_trace(TRACE_A, "batch-run", 0, ["ls"])
    collector, _ = make(tmp_path, in_process=True)
    try:
        send(collector, spans[:-1])
        send(collector, spans[-1:])
        got = outcome(collector)
    finally:
        collector.close()
    assert {run for _, _, run, _ in got["spans"]} == {TRACE_A}
    assert ("batch-run",) in got["runs"]


def test_spans_that_lost_the_session_attribute_stay_in_the_run(tmp_path: Path) -> None:
    """OpenInference: ``session.id`` on the early spans only (the attribute limit drops
    it as the history grows)."""
    spans = [chat(TRACE_A, 2, 0, **{"session.id": "sess-9"}),
             tool(TRACE_A, 3, 6, "ls", **{"session.id": "sess-9"}),
             chat(TRACE_A, 4, 10), tool(TRACE_A, 5, 16, "rm -rf /x")]
    collector, _ = make(tmp_path, in_process=True)
    try:
        send(collector, spans[:2])
        send(collector, spans[2:])
        got = outcome(collector)
    finally:
        collector.close()
    assert {run for _, _, run, _ in got["spans"]} == {"sess-9"}
    assert [(run, turn) for _, run, _, _, turn, _ in got["findings"]] == [("sess-9", 2)]


def test_langgraph_traces_with_one_thread_id_are_one_run(tmp_path: Path) -> None:
    """One trace per ``invoke``; the thread id is in each span's metadata (OpenInference)
    or association properties (OpenLLMetry)."""
    meta = {"metadata": json.dumps({"thread_id": "thread-7", "langgraph_step": 1})}
    assoc = {"traceloop.association.properties.thread_id": "thread-7"}
    spans = [chat(TRACE_A, 2, 0, **meta), tool(TRACE_A, 3, 6, "ls", **meta),
             chat(TRACE_B, 2, 100, **assoc), tool(TRACE_B, 3, 106, "rm -rf /", **assoc)]
    collector, _ = make(tmp_path, in_process=True)
    try:
        send(collector, spans)
        got = outcome(collector)
    finally:
        collector.close()
    assert got["runs"] == [("thread-7",)]
    assert [turn for *_, turn in sorted(got["spans"], key=lambda row: (row[1], row[0]))] == [
        1, 1, 2, 2]


def test_explicit_turns_are_kept(tmp_path: Path) -> None:
    spans = [chat(TRACE_A, 2, 0, **{"driftwatch.turn": 7, "gen_ai.conversation.id": "c"}),
             tool(TRACE_A, 3, 6, "ls", **{"driftwatch.turn": 7, "gen_ai.conversation.id": "c"}),
             span(TRACE_A, 4, "note", start=8, end=9, attrs={"gen_ai.conversation.id": "c"})]
    collector, _ = make(tmp_path, in_process=True)
    try:
        send(collector, spans)
        got = outcome(collector)
    finally:
        collector.close()
    assert {span_id: turn for span_id, *_, turn in got["spans"]} == {
        f"{2:016x}": 7, f"{3:016x}": 7, f"{4:016x}": None}


def _conversations() -> list[list[dict[str, Any]]]:
    """Recorded-shape traces of three conversations, each trace in export (end) order."""
    meta = {"metadata": json.dumps({"thread_id": "lg-1"})}
    return [
        util_genai_trace("c1" * 16, "util-1", 0, ["ls", "rm -rf /a", "pwd"]),
        util_genai_trace("c2" * 16, "util-1", 200, ["rm -rf /b"]),
        [chat("d1" * 16, 2, 0, **{"session.id": "oi-1"}), tool("d1" * 16, 3, 6, "ls"),
         chat("d1" * 16, 4, 10), tool("d1" * 16, 5, 16, "rm -rf /c")],
        [chat("e1" * 16, 2, 0, **meta), tool("e1" * 16, 3, 6, "rm -rf /d", **meta)],
        [chat("e2" * 16, 2, 50), tool("e2" * 16, 3, 56, "ls"),
         span("e2" * 16, 1, "LangGraph", parent=None, start=49, end=60, attrs=meta)],
    ]


def _requests(rng: random.Random) -> list[list[dict[str, Any]]]:
    """The conversations' spans interleaved (each trace keeps its export order, traces
    of one conversation one after the other) and cut into requests at random."""
    traces = [list(trace) for trace in _conversations()]
    order: list[dict[str, Any]] = []
    pending = [traces[0] + traces[1], traces[2], traces[3] + traces[4]]
    while any(pending):
        stream = rng.choice([p for p in pending if p])
        order.append(stream.pop(0))
    requests, current = [], []
    for item in order:
        current.append(item)
        if rng.random() < 0.4:
            requests.append(current)
            current = []
    return requests + ([current] if current else [])


def _view(got: dict[str, Any]) -> dict[str, Any]:
    return {
        "spans": sorted((trace, span_id, run, turn)
                        for span_id, trace, run, turn in got["spans"]),
        "runs": got["runs"],
        "findings": sorted((run, rule, span_id, turn, message)
                           for _, run, rule, span_id, turn, message in got["findings"]),
        "findings_alerted": len(got["alerts"]),
    }


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "monitor-process"])
def test_any_split_into_requests_gives_the_same_runs_turns_and_findings(
        tmp_path: Path, in_process: bool) -> None:
    """The batching-invariance property over random partitions and interleavings."""
    collector, _ = make(tmp_path, in_process=in_process, name="all")
    try:
        send(collector, [s for trace in _conversations() for s in trace])
        expected = _view(outcome(collector))
    finally:
        collector.close()
    assert expected["runs"] == [("lg-1",), ("oi-1",), ("util-1",)]
    assert len(expected["findings"]) == 4
    assert expected["findings_alerted"] == 4
    rng = random.Random(1717)
    for example in range(6 if in_process else 3):
        collector, _ = make(tmp_path, in_process=in_process, name=f"split{example}")
        try:
            for request in _requests(rng):
                send(collector, request)
                if rng.random() < 0.5:
                    assert collector.flush(60)
            assert _view(outcome(collector)) == expected, f"example {example}"
        finally:
            collector.close()


@pytest.mark.slow
@pytest.mark.network_loopback
@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "monitor-process"])
def test_real_sdk_batching_with_the_key_on_the_root_only(tmp_path: Path,
                                                         in_process: bool) -> None:
    """The OpenTelemetry SDK's own exporter and BatchSpanProcessor (small batches, so
    the children reach the collector in requests before the root that has the key), spans
    without ``driftwatch.turn``: one run under the key, model-call turns, one finding."""
    from live_server import served
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    collector, recorder = make(tmp_path, in_process=in_process)
    try:
        with served(collector) as url:
            provider = TracerProvider()
            exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces")
            provider.add_span_processor(BatchSpanProcessor(
                exporter, max_export_batch_size=2, schedule_delay_millis=20))
            tracer = provider.get_tracer("ops-agent")
            with tracer.start_as_current_span("invoke_agent ops") as top:
                top.set_attribute("gen_ai.operation.name", "invoke_agent")
                for command in ["ls /var/data", "du -sh /var/data", "rm -rf /var/data"]:
                    with tracer.start_as_current_span("chat gpt-4o") as call_span:
                        call_span.set_attribute("gen_ai.operation.name", "chat")
                        call_span.set_attribute("gen_ai.request.model", "gpt-4o")
                    with tracer.start_as_current_span("execute_tool shell") as tool_span:
                        tool_span.set_attribute("gen_ai.operation.name", "execute_tool")
                        tool_span.set_attribute("gen_ai.tool.name", "shell")
                        tool_span.set_attribute("gen_ai.tool.call.arguments",
                                                json.dumps({"command": command}))
                    provider.force_flush()  # the children go before the root
                top.set_attribute("gen_ai.conversation.id", "sdk-conv")
            assert provider.force_flush()
            provider.shutdown()
        got = outcome(collector)
    finally:
        collector.close()
    assert got["runs"] == [("sdk-conv",)]
    assert {run for _, _, run, _ in got["spans"]} == {"sdk-conv"}
    assert sorted(turn for *_, turn in got["spans"]) == [0, 1, 1, 2, 2, 3, 3]
    assert [(run, turn, message) for _, run, _, _, turn, message in got["findings"]] == [
        ("sdk-conv", 3, "recursive delete at turn 3")]
    assert len(recorder.sent) == 1


def test_stats_and_the_turn_views_work_on_external_runs(tmp_path: Path) -> None:
    """Item 7: with derived turns, ``driftwatch stats`` finds the finished external runs
    (it said "no finished runs match") and the survival numbers come from their turns."""
    import subprocess
    import sys

    collector, _ = make(tmp_path, in_process=True)
    try:
        for trace, conversation in [("c1" * 16, "conv-x"), ("c2" * 16, "conv-y")]:
            send(collector, util_genai_trace(trace, conversation, 0, ["ls", "rm -rf /a", "pwd"]))
        assert collector.flush(60)
        collector.runs.sweep(now=float("inf"))  # both runs end
        turns = collector.store.query(
            "select run_id, count(*) from turns group by run_id order by run_id").rows
    finally:
        collector.close()
    assert turns == [("conv-x", 4), ("conv-y", 4)]  # turn 0 (the root) to 3
    done = subprocess.run([sys.executable, "-m", "driftwatch", "stats", "--db",
                           str(tmp_path / "c.duckdb"), "--format", "json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    [group] = json.loads(done.stdout)["groups"]
    assert (group["runs"], group["violating_runs"]) == (2, 2)
    assert group["median_turns_to_first_violation"] == 2.0
