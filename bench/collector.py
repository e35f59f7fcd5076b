"""Collector benchmark: ``driftwatch serve`` over HTTP with monitors on.

Starts ``driftwatch serve`` (a separate process; all built-in rule packs plus a small
unscoped pack with one rule the load violates) and drives it from this process with
pre-encoded 512-span protobuf requests over keep-alive connections:

  1. throughput: ``--connections`` senders (default 16, as from many agents' exporters)
     as fast as the collector acknowledges, for ``--seconds``; spans/s acknowledged
     (= committed to DuckDB and queued for the monitors) and spans/s end to end (until
     the monitors have evaluated every span). A sender waits for each answer, so few
     senders measure their own round trips: 4 senders cap near 4 × 512 spans per
     acknowledgement latency;
  2. alert latency: one request every 512/``--rate`` s (default 5,000 spans/s), each
     with one violating span in a fresh run; latency from the moment the request is sent
     to the moment its alert line appears in the collector's JSONL sink (so it includes
     upload and decoding: an upper bound on receipt → sink); p50/p99;
     Before it, the collector settles (every run of the throughput phase ended), and the
     first ``--latency-warmup`` requests at that rate are sent but not counted, so the
     figure is the steady state at that rate, not the backlog of phase 1;
  3. the must-show case: an agent instrumented with the official OpenTelemetry SDK and
     its OTLP/HTTP exporter (``BatchSpanProcessor``, 50 ms schedule delay) runs
     ``--otel-runs`` short runs, each ending in a violating tool call; latency from the
     end of that span (in the agent) to its alert line in the JSONL sink; p50/max;
  4. peak RSS (VmHWM) of the collector and of its monitor process, and their sum.

Prints a machine-speed reference (a fixed pure-Python loop) so numbers from a loaded
shared machine can be compared.

    PYTHONPATH=src python bench/collector.py
    PYTHONPATH=src python bench/collector.py --seconds 10 --connections 2 --rate 2000
    PYTHONPATH=src python bench/collector.py --components   # where the ceiling is

``--components`` measures the pipeline's stages alone, in this process, on the same
requests: protobuf decoding, the DuckDB commit, and each monitor (the collector's
default set and packs, micro-batches of 4,096 spans as it uses), in spans/s of one core.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from driftwatch.collector.info import info_path
from driftwatch.monitor import builtin_pack_paths

SPANS_PER_REQUEST = 512
RUNS_PER_REQUEST = 8
T0 = 1_767_225_600_000_000_000
# JSON, as our own tools return. A plain-text result ("total 0") makes the built-in
# packs' combined predicate query fail (a `tool_result->>` is evaluated before its
# `json_valid` guard) and the rule-pack monitor fall back to one query per rule:
# --text-results measures that case.
RESULT = json.dumps({"stdout": "total 0", "exit_code": 0})
BENCH_PACK = """\
pack: bench-policy
description: Unscoped rule for the benchmark load.
rules:
  - id: bench-recursive-delete
    severity: high
    description: rm -rf in a shell command.
    when: >-
      operation = 'execute_tool' AND tool_name = 'shell'
      AND regexp_matches(coalesce(tool_arguments->>'command', ''), 'rm\\s+-rf')
    message: "recursive delete at turn {turn}"
"""


# Realistic message text: ~1 KB per chat span, joined from recorded agent messages
# (bench/data: an excerpt of the τ-bench airline trajectories, MIT licence). --short-texts
# gives the one-line texts this bench used before (a 390-byte span), for comparison.
MESSAGES = json.loads((Path(__file__).parent / "data" / "tau_airline_messages.json")
                      .read_text())["messages"]
MESSAGE_CHARS = 1000


def _message(number: int, turn: int) -> str:
    if MESSAGE_CHARS == 0:
        return f"Listing the files for step {turn}."
    parts: list[str] = []
    while sum(len(part) + 1 for part in parts) < MESSAGE_CHARS:
        parts.append(MESSAGES[(number + len(parts) * 7) % len(MESSAGES)])
    return "\n".join(parts)


def _set(span: object, key: str, value: object) -> None:
    attribute = span.attributes.add(key=key)  # type: ignore[attr-defined]
    if isinstance(value, int):
        attribute.value.int_value = value
    else:
        attribute.value.string_value = str(value)


def _trace_prefix(number: int) -> bytes:
    return b"\xfe\xed" + number.to_bytes(6, "big")


def _conversation_prefix(number: int) -> bytes:
    return f"bench-{number:08d}-".encode()


def encode_request(number: int, *, violation: bool = False) -> tuple[bytes, str | None]:
    """512 spans in 8 runs (a chat span then a tool span per turn); optionally one
    violating tool call. Returns the body and the violating span's id. Trace ids and
    conversation ids embed ``number`` at fixed width, so :func:`renumber` can make new
    unique requests from one encoded template."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    _set(resource_spans.resource, "service.name", "bench-agent")
    spans = resource_spans.scope_spans.add().spans
    per_run = SPANS_PER_REQUEST // RUNS_PER_REQUEST
    violating: str | None = None
    for run in range(RUNS_PER_REQUEST):
        trace = _trace_prefix(number) + (run + 1).to_bytes(8, "big")
        conversation = _conversation_prefix(number).decode() + str(run)
        for index in range(per_run):
            span_id = (index + 1).to_bytes(8, "big")
            turn = index // 2 + 1
            start = T0 + index * 10**6
            span = spans.add(trace_id=trace, span_id=span_id, start_time_unix_nano=start,
                             end_time_unix_nano=start + 500_000,
                             parent_span_id=(10**6).to_bytes(8, "big"))
            _set(span, "gen_ai.conversation.id", conversation)
            _set(span, "driftwatch.turn", turn)
            if index % 2 == 0:
                span.name = "chat gpt-4o"
                span.kind = 3
                _set(span, "gen_ai.operation.name", "chat")
                _set(span, "gen_ai.request.model", "gpt-4o")
                _set(span, "gen_ai.provider.name", "openai")
                _set(span, "gen_ai.usage.input_tokens", 900 + index)
                _set(span, "gen_ai.usage.output_tokens", 40)
                _set(span, "gen_ai.output.messages", json.dumps(
                    [{"role": "assistant", "content": _message(run * per_run + index, turn)}]))
            else:
                command = f"ls -la /srv/data/{turn}"
                if violation and run == 0 and index == per_run - 1:
                    command = "rm -rf /srv/data"
                    violating = span_id.hex()
                span.name = "execute_tool shell"
                _set(span, "gen_ai.operation.name", "execute_tool")
                _set(span, "gen_ai.tool.name", "shell")
                _set(span, "gen_ai.tool.call.id", f"call_{index}")
                _set(span, "gen_ai.tool.call.arguments", json.dumps({"command": command}))
                _set(span, "gen_ai.tool.call.result", RESULT)
    return request.SerializeToString(), violating


def renumber(template: bytes, number: int) -> bytes:
    """The request ``encode_request(0)`` would be as ``encode_request(number)``: same
    length, so a byte replacement is enough (and costs microseconds, not an encode)."""
    return template.replace(_trace_prefix(0), _trace_prefix(number)).replace(
        _conversation_prefix(0), _conversation_prefix(number))


class Collector:
    def __init__(self, workdir: Path, *, builtin_packs: bool = True) -> None:
        pack = workdir / "bench-policy.yaml"
        pack.write_text(BENCH_PACK)
        self.db = workdir / "bench.duckdb"
        self.alerts = workdir / "alerts.jsonl"
        packs = [arg for path in builtin_pack_paths() for arg in ("--pack", str(path))
                 if builtin_packs]
        command = [sys.executable, "-m", "driftwatch", "serve", "--port", "0", "--db",
                   str(self.db), "--quiet", "--jsonl", str(self.alerts), "--idle-timeout",
                   "5", "--pack", str(pack), *packs]
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                info = json.loads(info_path(self.db).read_text())
                if info["pid"] == self.process.pid:
                    self.url = info["url"]
                    return
            except (OSError, ValueError, KeyError):
                pass
            if self.process.poll() is not None:
                raise SystemExit("driftwatch serve exited")
            time.sleep(0.05)
        raise SystemExit("driftwatch serve did not start")

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"{self.url}/metrics") as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0

    def monitor_pid(self) -> int | None:
        """The monitor process: the one child spawned with multiprocessing's
        ``spawn_main`` (None when monitors run in-process)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        for pid in children.read_text().split():
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
            except OSError:
                continue
        return None

    def peak_rss_mb(self) -> tuple[float, float]:
        """(collector, monitor process) peak RSS in MB (0 without a monitor process)."""
        monitor = self.monitor_pid()
        return _vm_hwm_mb(self.process.pid), 0.0 if monitor is None else _vm_hwm_mb(monitor)

    def cpu_seconds(self) -> tuple[float, float]:
        """(collector, monitor process) CPU time used so far, user + system."""
        monitor = self.monitor_pid()
        return _cpu_seconds(self.process.pid), 0.0 if monitor is None else _cpu_seconds(monitor)

    def settle(self, timeout_s: float = 120.0) -> float:
        """Wait until every run has ended (the throughput phase leaves thousands open);
        returns the seconds waited."""
        started = time.monotonic()
        while self.metric("driftwatch_open_runs") > 0 and time.monotonic() - started < timeout_s:
            time.sleep(0.1)
        return time.monotonic() - started

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=120)


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post(connection: http.client.HTTPConnection, body: bytes) -> int:
    connection.request("POST", "/v1/traces", body=body,
                       headers={"content-type": "application/x-protobuf"})
    response = connection.getresponse()
    response.read()
    return response.status


@dataclass
class Throughput:
    acknowledged: float  # spans/s while sending
    end_to_end: float  # spans/s until the monitors had seen every span
    refused: int  # 503 answers
    cpu_us: tuple[float, float, float]  # CPU µs per span: collector, monitor process, senders


def throughput(collector: Collector, template: bytes, seconds: float,
               connections: int) -> Throughput:
    host = urlsplit(collector.url)
    acked = [0] * connections
    refused = [0] * connections
    stop = time.monotonic() + seconds

    def sender(slot: int) -> None:
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        n = slot + 1
        while time.monotonic() < stop:
            status = post(connection, renumber(template, n))
            if status == 200:
                acked[slot] += SPANS_PER_REQUEST
            elif status == 503:
                refused[slot] += 1
                time.sleep(0.05)
            n += connections
        connection.close()

    before = collector.metric("driftwatch_monitor_records_total")
    cpu_before = (*collector.cpu_seconds(), time.process_time())
    started = time.monotonic()
    threads = [threading.Thread(target=sender, args=(slot,)) for slot in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    acked_s = time.monotonic() - started
    total = sum(acked)
    while collector.metric("driftwatch_monitor_records_total") - before < total:
        time.sleep(0.05)
    end_to_end_s = time.monotonic() - started
    cpu_after = (*collector.cpu_seconds(), time.process_time())
    cpu_us = tuple((after - prior) / max(total, 1) * 1e6
                   for after, prior in zip(cpu_after, cpu_before, strict=True))
    return Throughput(total / acked_s, total / end_to_end_s, sum(refused),
                      (cpu_us[0], cpu_us[1], cpu_us[2]))


def alert_latency(collector: Collector, rate: float, requests: int,
                  first: int, warmup: int = 0) -> list[float]:
    bodies = [encode_request(first + n, violation=True) for n in range(requests + warmup)]
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = threading.Event()

    def tail() -> None:
        offset = collector.alerts.stat().st_size if collector.alerts.exists() else 0
        buffer = b""
        while not done.is_set() or len(latencies) < len(sent_at):
            if collector.alerts.exists():
                with collector.alerts.open("rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                seen = time.monotonic()
                offset += len(chunk)
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    finding = json.loads(line)
                    key = f"{finding['run_id']}:{finding['span_id']}"
                    if key in sent_at:
                        latencies.append(seen - sent_at[key])
            if done.is_set() and time.monotonic() > deadline:
                return
            time.sleep(0.002)

    deadline = float("inf")
    tailer = threading.Thread(target=tail)
    tailer.start()
    host = urlsplit(collector.url)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
    interval = SPANS_PER_REQUEST / rate
    next_at = time.monotonic()
    for n, (body, span_id) in enumerate(bodies):
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        if n >= warmup:
            sent_at[f"{_conversation_prefix(first + n).decode()}0:{span_id}"] = time.monotonic()
        post(connection, body)
        next_at += interval
    connection.close()
    deadline = time.monotonic() + 30
    done.set()
    tailer.join()
    return sorted(latencies)


def otel_agent_latency(collector: Collector, runs: int) -> list[float]:
    """Phase 3: the official SDK and exporter, one run at a time (see the docstring)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "otel-agent"}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces"), schedule_delay_millis=50))
    tracer = provider.get_tracer("bench-agent")
    latencies: list[float] = []
    offset = collector.alerts.stat().st_size if collector.alerts.exists() else 0
    for number in range(runs):
        conversation = f"otel-agent-{number}"
        for turn, command in enumerate(["ls /srv", "du -sh /srv", "rm -rf /srv"], start=1):
            with tracer.start_as_current_span("chat gpt-4o") as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.conversation.id", conversation)
                chat.set_attribute("driftwatch.turn", turn)
            with tracer.start_as_current_span("execute_tool shell") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "shell")
                tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"command": command}))
                tool.set_attribute("gen_ai.conversation.id", conversation)
                tool.set_attribute("driftwatch.turn", turn)
        ended = time.monotonic()
        deadline = ended + 30
        while time.monotonic() < deadline:
            with collector.alerts.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            if f'"run_id":"{conversation}"'.encode() in chunk.replace(b" ", b""):
                latencies.append(time.monotonic() - ended)
                offset += len(chunk)
                break
            time.sleep(0.002)
        time.sleep(0.2)  # one agent at a time
    provider.shutdown()
    return sorted(latencies)


def _rate(spans: int, seconds: float) -> str:
    return f"{spans / seconds:,.0f} spans/s"


def components(requests: int, builtin_packs: bool) -> None:
    """Each stage alone on ``requests`` requests (see the module docstring)."""
    from driftwatch.monitor import EngineConfig, build_monitors, resolve_packs
    from driftwatch.store import Store
    from driftwatch.tracing.otlp import records_from_otlp_protobuf

    template = encode_request(0)[0]
    bodies = [renumber(template, 10**5 + n) for n in range(requests)]
    started = time.process_time()
    decoded = [records_from_otlp_protobuf(body).records for body in bodies]
    spans = sum(len(records) for records in decoded)
    print(f"decode only (protobuf → SpanRecord): {_rate(spans, time.process_time() - started)}")
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "c.duckdb") as store:
        started = time.perf_counter()
        for records in decoded:
            store.write_spans(records)
        print(f"commit only (one write_spans per request): "
              f"{_rate(spans, time.perf_counter() - started)}")
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(tmp) / "bench-policy.yaml"
        pack.write_text(BENCH_PACK)
        names: list[str | Path] = [*(builtin_pack_paths() if builtin_packs else []), pack]
        monitors = build_monitors(EngineConfig(packs=tuple(resolve_packs(names))))
    per_batch = 4096 // SPANS_PER_REQUEST
    costs = dict.fromkeys((monitor.name for monitor in monitors), 0.0)
    for first in range(0, len(decoded), per_batch):
        by_run: dict[str, list[object]] = {}
        for records in decoded[first:first + per_batch]:
            for record in records:
                by_run.setdefault(record.run_id, []).append(record)
        for monitor in monitors:
            started = time.process_time()
            if hasattr(monitor, "observe_batch"):
                monitor.observe_batch(by_run)
            else:
                for run_id, run_records in by_run.items():
                    monitor.observe(run_id, run_records)  # type: ignore[arg-type]
            costs[monitor.name] += time.process_time() - started
    total = sum(costs.values())
    detail = ", ".join(f"{name} {_rate(spans, cost)}" for name, cost in costs.items())
    print(f"monitors only: {_rate(spans, total)} all together ({detail})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=16,
                        help="concurrent exporters (keep-alive connections)")
    parser.add_argument("--rate", type=float, default=5000.0, help="spans/s for latency")
    parser.add_argument("--latency-requests", type=int, default=100)
    parser.add_argument("--otel-runs", type=int, default=20,
                        help="runs of the OpenTelemetry SDK agent (phase 3); 0 skips it")
    parser.add_argument("--latency-warmup", type=int, default=20,
                        help="requests sent at the latency rate before timing starts")
    parser.add_argument("--no-builtin-packs", action="store_true",
                        help="only the benchmark's one-rule pack (the other monitors stay on)")
    parser.add_argument("--text-results", action="store_true",
                        help="plain-text tool results (the rule packs' slow path)")
    parser.add_argument("--short-texts", action="store_true",
                        help="one-line chat texts (~390-byte spans) instead of ~1 KB messages")
    parser.add_argument("--components", action="store_true",
                        help="measure decoding, commit and each monitor alone, then exit")
    parser.add_argument("--component-requests", type=int, default=32)
    args = parser.parse_args()
    if args.short_texts:
        global MESSAGE_CHARS  # noqa: PLW0603 - a benchmark switch
        MESSAGE_CHARS = 0
    if args.text_results:
        global RESULT  # noqa: PLW0603 - a benchmark switch
        RESULT = "total 0"

    reference_ms = min(timeit.repeat("sum(range(1000))", number=1000, repeat=5))
    print(f"machine reference: sum(range(1000)) x1000 = {reference_ms * 1e3:.1f} ms "
          f"(an idle modern core: ~10 ms); cores: {os.cpu_count()}")
    template = encode_request(0)[0]
    assert renumber(template, 7) == encode_request(7)[0]
    print(f"request: {SPANS_PER_REQUEST} spans, {len(template) / 1024:.0f} KiB protobuf "
          f"({len(template) / SPANS_PER_REQUEST:.0f} bytes a span)")
    if args.components:
        components(args.component_requests, not args.no_builtin_packs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        collector = Collector(Path(tmp), builtin_packs=not args.no_builtin_packs)
        try:
            post_warmup = http.client.HTTPConnection(urlsplit(collector.url).hostname,
                                                     urlsplit(collector.url).port)
            post(post_warmup, renumber(template, 10**7))
            post_warmup.close()
            run = throughput(collector, template, args.seconds, args.connections)
            print(f"throughput ({args.connections} connections, {args.seconds:.0f} s): "
                  f"{run.acknowledged:,.0f} spans/s acknowledged, {run.end_to_end:,.0f} "
                  f"spans/s end to end (monitors done); 503 answers: {run.refused}")
            collector_us, monitor_us, senders_us = run.cpu_us
            print(f"CPU per span: collector {collector_us:.1f} µs + monitor process "
                  f"{monitor_us:.1f} µs = {collector_us + monitor_us:.1f} µs "
                  f"(the senders: {senders_us:.1f} µs); 2 cores at 20,000 spans/s allow "
                  f"{2e6 / 20_000:.0f} µs in all")
            settled = collector.settle()
            print(f"settled: every run ended {settled:.1f} s after the throughput phase")
            latencies = alert_latency(collector, args.rate, args.latency_requests, 10**6,
                                      args.latency_warmup)
            if latencies:
                p50 = statistics.median(latencies) * 1e3
                p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3
                print(f"alert latency at {args.rate:,.0f} spans/s (send → JSONL sink, "
                      f"{len(latencies)}/{args.latency_requests} alerts): p50 {p50:.0f} ms, "
                      f"p99 {p99:.0f} ms, max {latencies[-1] * 1e3:.0f} ms")
            else:
                print("alert latency: no alert arrived")
            if args.otel_runs:
                otel = otel_agent_latency(collector, args.otel_runs)
                if otel:
                    print(f"OTel SDK agent (BatchSpanProcessor 50 ms → OTLP/HTTP): violating "
                          f"span end → JSONL alert, {len(otel)}/{args.otel_runs} runs: "
                          f"p50 {statistics.median(otel) * 1e3:.0f} ms, "
                          f"max {otel[-1] * 1e3:.0f} ms")
                else:
                    print("OTel SDK agent: no alert arrived")
            parent_mb, monitor_mb = collector.peak_rss_mb()
            print(f"peak RSS: collector {parent_mb:.0f} MB + monitor process "
                  f"{monitor_mb:.0f} MB = {parent_mb + monitor_mb:.0f} MB")
        finally:
            collector.stop()


if __name__ == "__main__":
    main()
