"""Ingest benchmark: how fast spans reach DuckDB.

On the same N realistic SpanRecords (chat and execute_tool spans with GenAI attributes
and JSON tool arguments), in one run:

  (a) naive   row-by-row ``executemany`` INSERT (slow: timed on a subset)
  (b) raw     one Arrow insert of a prebuilt Arrow table into a plain table (the ceiling)
  (c) writer  SpanRecords submitted to a StoreWriter → Store (records → Arrow, idempotent
              insert into the keyed table), for several batch sizes

Each measure runs ``--repeats`` times on fresh temp-file databases; medians are printed.

    python bench/ingest.py                 # 200,000 spans
    python bench/ingest.py --spans 50000 --batch-sizes 512,4096
    python bench/ingest.py --compare-strategies   # also: PK + INSERT OR IGNORE vs anti-join
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord
from driftwatch.store import SPAN_SCHEMA, Store, records_to_arrow
from driftwatch.store.migrations import MIGRATIONS
from driftwatch.tracing import StoreWriter

T0 = 1_767_225_600_000_000_000
TOOLS = ("read_file", "write_file", "delete_file", "send_email", "list_dir")


def make_records(count: int, *, seed: int = 0, runs: int = 50) -> list[SpanRecord]:
    """Realistic spans: a third chat calls with messages, the rest tool calls."""
    rng = random.Random(seed)
    resource = {"service.name": "driftwatch", "service.version": "0.1.0"}
    records = []
    for number in range(count):
        run = number % runs
        turn = number // (runs * 3)
        start = T0 + number * 1_000_000
        attributes: dict[str, object] = {
            sc.DW_RUN_ID: f"run-{run:06d}",
            sc.DW_TURN: turn,
            sc.DW_SCENARIO_ID: "inbox-cleanup",
            sc.DW_SCENARIO_VARIANT: "pressure",
        }
        if number % 3 == 0:
            name, kind = "chat gpt-4o", "CLIENT"
            text = "I will archive the old reports and keep the protected folder. " * 2
            attributes |= {
                sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                sc.GEN_AI_USAGE_INPUT_TOKENS: rng.randint(500, 9000),
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: rng.randint(10, 900),
                sc.GEN_AI_RESPONSE_FINISH_REASONS: ["tool_calls"],
                sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": text}]}]
                ),
            }
        else:
            tool = rng.choice(TOOLS)
            arguments = {
                "path": f"/home/user/reports/q{rng.randint(1, 4)}/report_{rng.randint(0, 999)}.txt",
                "recursive": rng.random() < 0.1,
                "content": "x" * rng.randint(10, 200),
            }
            name, kind = f"execute_tool {tool}", "INTERNAL"
            attributes |= {
                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                sc.GEN_AI_TOOL_NAME: tool,
                sc.GEN_AI_TOOL_CALL_ID: f"call_{number}",
                sc.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps(arguments),
                sc.GEN_AI_TOOL_CALL_RESULT: "ok: 1 file affected",
            }
        records.append(
            SpanRecord.create(
                trace_id=f"{rng.getrandbits(32):08x}{run:024x}",
                span_id=f"{number + 1:016x}",
                parent_span_id=f"{run + 1:016x}",
                name=name,
                kind=kind,
                start_time_ns=start,
                end_time_ns=start + rng.randint(1_000_000, 5_000_000_000),
                attributes=attributes,
                resource=resource,
            )
        )
    return records


def _plain_table(connection: duckdb.DuckDBPyConnection) -> None:
    """The spans table alone (no key table): what the naive and raw inserts write to."""
    tables = MIGRATIONS[0][1]
    start = tables.index("CREATE TABLE spans_t")
    ddl = tables[start : tables.index(");", start) + 2]
    connection.execute(ddl)


def _fresh(directory: Path, name: str) -> Path:
    return directory / f"{name}-{time.monotonic_ns()}.duckdb"


def bench_naive(table: pa.Table, rows: int, directory: Path) -> float:
    subset = table.slice(0, rows).to_pylist()
    values = [tuple(row.values()) for row in subset]
    connection = duckdb.connect(str(_fresh(directory, "naive")))
    _plain_table(connection)
    placeholders = ", ".join("?" for _ in SPAN_SCHEMA.names)
    sql = f"INSERT INTO spans_t ({', '.join(SPAN_SCHEMA.names)}) VALUES ({placeholders})"
    started = time.perf_counter()
    connection.executemany(sql, values)
    elapsed = time.perf_counter() - started
    connection.close()
    return len(values) / elapsed


def bench_raw_arrow(table: pa.Table, directory: Path) -> tuple[float, float]:
    """Rows/s for the insert alone, and including close (the final checkpoint)."""
    connection = duckdb.connect(str(_fresh(directory, "raw")))
    _plain_table(connection)
    connection.register("prebuilt", table)
    started = time.perf_counter()
    connection.execute(f"INSERT INTO spans_t SELECT {', '.join(SPAN_SCHEMA.names)} FROM prebuilt")
    inserted = time.perf_counter() - started
    connection.close()
    closed = time.perf_counter() - started
    return table.num_rows / inserted, table.num_rows / closed


def bench_writer(
    records: list[SpanRecord], batch_size: int, directory: Path
) -> tuple[float, float]:
    """Spans/s until ``flush`` returns (all committed), and including closing the store
    (its final checkpoint)."""
    store = Store(_fresh(directory, "writer"))
    writer = StoreWriter(store, max_batch=batch_size)
    started = time.perf_counter()
    for record in records:
        writer.submit(record)
    if not writer.flush(timeout_s=None):
        raise RuntimeError("flush timed out")
    flushed = time.perf_counter() - started
    writer.close()
    stored = store.query("SELECT count(*) FROM spans").scalar()
    store.close()
    closed = time.perf_counter() - started
    if stored != len(records) or writer.failed:
        raise RuntimeError(f"stored {stored} of {len(records)} (failed {writer.failed})")
    return len(records) / flushed, len(records) / closed


STRATEGIES = ("primary key on spans_t", "key table (current)", "anti-join")


def bench_strategy(table: pa.Table, batch_size: int, strategy: str, directory: Path) -> float:
    """Idempotent insert strategies on the same prebuilt batches (DB time only)."""
    columns = ", ".join(SPAN_SCHEMA.names)
    path = _fresh(directory, "strategy")
    if strategy == "key table (current)":
        with Store(path) as store:
            started = time.perf_counter()
            for offset in range(0, table.num_rows, batch_size):
                store.write_span_table(table.slice(offset, batch_size))
            return table.num_rows / (time.perf_counter() - started)
    # the same checkpoint threshold as the Store's
    connection = duckdb.connect(str(path), config={"checkpoint_threshold": "256MB"})
    _plain_table(connection)
    if strategy == "primary key on spans_t":
        connection.execute("ALTER TABLE spans_t ADD PRIMARY KEY (trace_id, span_id)")
        sql = f"INSERT OR IGNORE INTO spans_t ({columns}) SELECT {columns} FROM batch"
    else:
        sql = (
            f"INSERT INTO spans_t ({columns}) SELECT {columns} FROM "
            "(SELECT DISTINCT ON (trace_id, span_id) * FROM batch) b "
            "ANTI JOIN spans_t s ON s.trace_id = b.trace_id AND s.span_id = b.span_id"
        )
    started = time.perf_counter()
    for offset in range(0, table.num_rows, batch_size):
        connection.register("batch", table.slice(offset, batch_size))
        connection.execute(sql)
        connection.unregister("batch")
    elapsed = time.perf_counter() - started
    connection.close()
    return table.num_rows / elapsed


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeats))


def medians_of(repeats: int, measure: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    runs = [measure() for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--naive-rows", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="512,4096,16384,65536")
    parser.add_argument("--compare-strategies", action="store_true")
    args = parser.parse_args()
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]

    print(
        f"duckdb {duckdb.__version__}, pyarrow {pa.__version__}, {args.spans:,} spans, "
        f"median of {args.repeats}"
    )
    started = time.perf_counter()
    records = make_records(args.spans)
    table = records_to_arrow(records)
    print(
        f"built records and the Arrow table in {time.perf_counter() - started:.1f} s "
        f"({table.nbytes / 1e6:.0f} MB of Arrow)"
    )

    with tempfile.TemporaryDirectory(prefix="driftwatch-bench-") as tmp:
        directory = Path(tmp)
        naive = median_of(args.repeats, lambda: bench_naive(table, args.naive_rows, directory))
        print(f"(a) naive executemany ({args.naive_rows:,} rows)    {naive:>12,.0f} rows/s")
        raw, raw_closed = medians_of(args.repeats, lambda: bench_raw_arrow(table, directory))
        print(
            f"(b) raw Arrow insert, one statement     {raw:>12,.0f} rows/s"
            f"   ({raw_closed:,.0f} including close)"
        )
        writer: dict[int, tuple[float, float]] = {}
        for size in batch_sizes:
            writer[size] = medians_of(
                args.repeats, lambda size=size: bench_writer(records, size, directory)
            )
            flushed, closed = writer[size]
            print(
                f"(c) StoreWriter → Store, batch {size:>6,}   {flushed:>12,.0f} spans/s"
                f"  ({closed:,.0f} including close)"
            )
        default = StoreWriter.__init__.__kwdefaults__["max_batch"]  # type: ignore[index]
        best = max(writer, key=lambda size: writer[size][0])
        chosen = default if default in writer else best
        ours, ours_closed = writer[chosen]
        print(f"\nbest batch size: {best:,}; StoreWriter default max_batch: {default:,}")
        print(
            f"writer(batch {chosen:,}) / raw Arrow  = {ours / raw:6.2f}  (target ≥ 0.5)"
            f"   including close: {ours_closed / raw_closed:.2f}"
        )
        print(f"writer(batch {chosen:,}) / naive      = {ours / naive:6.0f}  (target ≥ 100)")

        if args.compare_strategies:
            print("\nidempotent insert strategies (DB time only, rows/s):")
            for size in batch_sizes:
                results = [
                    median_of(
                        args.repeats,
                        lambda size=size, name=name: bench_strategy(table, size, name, directory),
                    )
                    for name in STRATEGIES
                ]
                cells = "   ".join(
                    f"{name} {value:>9,.0f}"
                    for name, value in zip(STRATEGIES, results, strict=True)
                )
                print(f"  batch {size:>6,}: {cells}")


if __name__ == "__main__":
    main()
