"""Named, ordered schema migrations.

Tables ending in ``_t`` are private and may change between versions. The views are the
public schema users write SQL against; their names and columns are a contract (see
docs/schema.md). A migration is never edited once released: change the schema by appending a
new one (``CREATE OR REPLACE VIEW`` for a view change).

Applied migrations are recorded in ``_migrations(name, applied_at)``; applying is
idempotent and an older database gets only the ones it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from driftwatch.core.logging import get_logger
from driftwatch.core.records import FindingKind

if TYPE_CHECKING:
    import duckdb

log = get_logger(__name__)

MIGRATIONS_TABLE: Final = "_migrations"

_TABLES = """
CREATE TABLE batches_t (
    batch_id    VARCHAR PRIMARY KEY,
    name        VARCHAR,
    status      VARCHAR NOT NULL,
    started_at  TIMESTAMPTZ,
    ended_at    TIMESTAMPTZ,
    config      JSON
);
CREATE TABLE runs_t (
    run_id      VARCHAR PRIMARY KEY,
    batch_id    VARCHAR,
    trace_id    VARCHAR,
    scenario_id VARCHAR,
    variant     VARCHAR,
    model       VARCHAR,
    seed        BIGINT,
    status      VARCHAR NOT NULL,
    turns       INTEGER NOT NULL DEFAULT 0,
    started_at  TIMESTAMPTZ,
    ended_at    TIMESTAMPTZ,
    error       VARCHAR,
    attributes  JSON
);
-- One row per (trace_id, span_id) ever stored, as a 128-bit md5 of 'trace:span': the
-- idempotency key (a span re-sent after a retry is stored once). Kept apart from the
-- wide spans_t because an index on the wide table makes every insert slower (see db.py).
CREATE TABLE span_keys_t (
    span_key UHUGEINT PRIMARY KEY
);
-- Column order follows store/arrow.py SPAN_SCHEMA. Written only together with
-- span_keys_t, in the same statement.
CREATE TABLE spans_t (
    trace_id       VARCHAR NOT NULL,
    span_id        VARCHAR NOT NULL,
    parent_span_id VARCHAR,
    run_id         VARCHAR NOT NULL,
    turn           INTEGER,
    name           VARCHAR NOT NULL,
    kind           VARCHAR,
    operation      VARCHAR,
    model          VARCHAR,
    provider       VARCHAR,
    tool_name      VARCHAR,
    input_tokens   BIGINT,
    output_tokens  BIGINT,
    start_time     TIMESTAMPTZ,
    end_time       TIMESTAMPTZ,
    duration_ms    DOUBLE,
    status_code    VARCHAR,
    status_message VARCHAR,
    attributes     JSON,
    resource       JSON,
    events         JSON
);
CREATE TABLE findings_t (
    finding_id     VARCHAR PRIMARY KEY,
    run_id         VARCHAR NOT NULL,
    trace_id       VARCHAR,
    span_id        VARCHAR,
    turn           INTEGER,
    monitor        VARCHAR NOT NULL,
    rule_id        VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL,
    severity       VARCHAR NOT NULL,
    severity_level INTEGER NOT NULL,
    message        VARCHAR,
    evidence       JSON,
    detected_at    TIMESTAMPTZ,
    monitor_spec   JSON
);
CREATE TABLE alerts_t (
    alert_id    VARCHAR PRIMARY KEY,
    finding_id  VARCHAR,
    sink        VARCHAR NOT NULL,
    status      VARCHAR NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    sent_at     TIMESTAMPTZ,
    error       VARCHAR
);
"""

_VIOLATION = FindingKind.VIOLATION.value

_VIEWS = f"""
CREATE OR REPLACE VIEW batches AS
SELECT batch_id, name, status, started_at, ended_at, config FROM batches_t;

CREATE OR REPLACE VIEW runs AS
SELECT run_id, batch_id, trace_id, scenario_id, variant, model, seed, status, turns,
       started_at, ended_at, error, attributes
FROM runs_t;

-- Attribute keys contain dots, so JSON access quotes the key inside the path:
--   attributes->>'$."gen_ai.tool.call.arguments"'   (text)
--   attributes->'$."gen_ai.usage.input_tokens"'     (JSON)
-- The common ones are already columns here and in tool_calls / turns.
CREATE OR REPLACE VIEW spans AS
SELECT trace_id, span_id, parent_span_id, run_id, turn, name, kind, operation, model,
       provider, tool_name, input_tokens, output_tokens, start_time, end_time, duration_ms,
       status_code, status_message, attributes, resource, events
FROM spans_t;

CREATE OR REPLACE VIEW findings AS
SELECT finding_id, run_id, trace_id, span_id, turn, monitor, rule_id, kind, severity,
       severity_level, message, evidence, detected_at, monitor_spec
FROM findings_t;

CREATE OR REPLACE VIEW violations AS
SELECT * FROM findings WHERE kind = '{_VIOLATION}';

CREATE OR REPLACE VIEW alerts AS
SELECT alert_id, finding_id, sink, status, attempts, sent_at, error FROM alerts_t;

-- One row per tool call. ``arguments`` is JSON, so ``arguments->>'path'`` works; an
-- argument string that is not valid JSON is kept as a JSON string.
CREATE OR REPLACE VIEW tool_calls AS
SELECT trace_id, span_id, run_id, turn, tool_name,
       attributes->>'$."gen_ai.tool.call.id"' AS call_id,
       CASE
           WHEN json_type(attributes->'$."gen_ai.tool.call.arguments"') <> 'VARCHAR'
               THEN attributes->'$."gen_ai.tool.call.arguments"'
           WHEN json_valid(attributes->>'$."gen_ai.tool.call.arguments"')
               THEN CAST(attributes->>'$."gen_ai.tool.call.arguments"' AS JSON)
           ELSE attributes->'$."gen_ai.tool.call.arguments"'
       END AS arguments,
       attributes->>'$."gen_ai.tool.call.result"' AS result,
       status_code, start_time, duration_ms
FROM spans_t
WHERE operation = 'execute_tool';

-- One row per (run_id, turn) seen in spans; spans without a turn are left out.
CREATE OR REPLACE VIEW turns AS
WITH per_turn AS (
    SELECT run_id, turn,
           min(start_time) AS start_time,
           max(end_time) AS end_time,
           count(*) FILTER (WHERE operation IN ('chat', 'text_completion', 'generate_content'))
               AS model_calls,
           count(*) FILTER (WHERE operation = 'execute_tool') AS tool_calls,
           count(*) FILTER (WHERE operation = 'driftwatch.event') AS events,
           CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
           CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens
    FROM spans_t
    WHERE turn IS NOT NULL
    GROUP BY run_id, turn
),
violations_per_turn AS (
    SELECT run_id, turn, count(*) AS violations
    FROM findings_t
    WHERE kind = '{_VIOLATION}' AND turn IS NOT NULL
    GROUP BY run_id, turn
)
SELECT p.run_id, p.turn, p.start_time, p.end_time,
       (epoch_us(p.end_time) - epoch_us(p.start_time)) / 1000.0 AS duration_ms,
       p.model_calls, p.tool_calls, p.events, p.input_tokens, p.output_tokens,
       CAST(coalesce(v.violations, 0) AS BIGINT) AS violations
FROM per_turn p
LEFT JOIN violations_per_turn v ON v.run_id = p.run_id AND v.turn = p.turn;
"""

# Derived views for the common statistical questions. The exact estimators with
# intervals live in driftwatch.stats (``driftwatch stats``); these give the same point
# estimates in plain SQL.
_STATS_VIEWS = """
CREATE VIEW run_outcomes AS
SELECT r.run_id, r.batch_id, r.scenario_id, r.model, r.variant, r.seed, r.turns,
       min(v.turn) AS first_violation_turn,
       count(v.finding_id) AS violations
FROM runs r
LEFT JOIN violations v ON v.run_id = r.run_id AND v.turn BETWEEN 1 AND r.turns
WHERE r.status IN ('completed', 'errored') AND r.turns > 0
GROUP BY ALL;

-- Per run and turn: violations, severity-weighted adherence loss (info 0 … critical 4)
-- and the running total. One row per turn the run reached.
CREATE VIEW drift_curve AS
WITH per_turn AS (
    SELECT t.run_id, o.scenario_id, o.model, o.variant, t.turn,
           count(v.finding_id) AS violations,
           coalesce(sum((v.severity_level - 10) // 10), 0) AS weighted_violations
    FROM turns t
    JOIN run_outcomes o ON o.run_id = t.run_id
    LEFT JOIN violations v ON v.run_id = t.run_id AND v.turn = t.turn
    WHERE t.turn IS NOT NULL
    GROUP BY t.run_id, o.scenario_id, o.model, o.variant, t.turn
)
SELECT *, sum(violations) OVER (PARTITION BY run_id ORDER BY turn) AS cumulative_violations
FROM per_turn;

-- Kaplan–Meier survival of "no violation yet" per scenario × model × variant: one row
-- per distinct turn with an event or a censoring (runs censored at their last turn).
CREATE VIEW survival AS
WITH outcome AS (
    SELECT scenario_id, model, variant,
           coalesce(first_violation_turn, turns) AS turn,
           first_violation_turn IS NOT NULL AS observed
    FROM run_outcomes
), per_turn AS (
    SELECT scenario_id, model, variant, turn,
           count(*) FILTER (WHERE observed) AS events,
           count(*) FILTER (WHERE NOT observed) AS censored
    FROM outcome GROUP BY ALL
), at_risk AS (
    SELECT *, sum(events + censored) OVER (
        PARTITION BY scenario_id, model, variant ORDER BY turn DESC) AS at_risk
    FROM per_turn
)
SELECT scenario_id, model, variant, turn, at_risk, events, censored,
       CASE WHEN max(CASE WHEN events = at_risk THEN 1 ELSE 0 END) OVER w = 1 THEN 0.0
            ELSE exp(sum(ln(1.0 - events / at_risk)) OVER w) END AS survival
FROM at_risk
WINDOW w AS (PARTITION BY scenario_id, model, variant ORDER BY turn
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
"""

# One row per planned cell (scenario × variant × model × seed) of a batch: the ledger
# ``driftwatch batch --resume`` reads to finish what is missing. ``run_id`` is derived
# from (batch, cell), so a cell has one run whatever happens; a cell's run, spans,
# findings and its final status are written in one transaction.
_BATCH_CELLS = """
CREATE TABLE batch_cells_t (
    batch_id      VARCHAR NOT NULL,
    cell_key      VARCHAR NOT NULL,
    scenario_id   VARCHAR NOT NULL,
    variant       VARCHAR NOT NULL,
    model         VARCHAR NOT NULL,
    seed          BIGINT NOT NULL,
    turns         INTEGER,
    run_id        VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         VARCHAR,
    input_tokens  BIGINT,
    output_tokens BIGINT,
    cost_usd      DOUBLE,
    wall_time_s   DOUBLE,
    updated_at    TIMESTAMPTZ,
    PRIMARY KEY (batch_id, cell_key)
);
CREATE OR REPLACE VIEW batch_cells AS
SELECT batch_id, cell_key, scenario_id, variant, model, seed, turns, run_id, status,
       attempts, error, input_tokens, output_tokens, cost_usd, wall_time_s, updated_at
FROM batch_cells_t;
"""

# Requested tool calls (a chat span's gen_ai.output.messages, OpenAI shape or GenAI parts)
# join the executed ones (execute_tool spans) in tool_calls, one row per call and source,
# linked by (run_id, call_id): requested_span_id / executed_span_id name the chat span and
# the tool span of the same call (the first of each, when a call id repeats). An executed
# call whose instrumentation gave one bare value (driftwatch.tool.arguments.fallback_key)
# takes the requested call's object arguments. See docs/schema.md.
_ARGUMENTS = """CASE
           WHEN {v} IS NULL THEN NULL
           WHEN json_type({v}) <> 'VARCHAR' THEN {v}
           WHEN json_valid({v}->>'$') THEN CAST({v}->>'$' AS JSON)
           ELSE {v}
       END"""
# (parenthesised: DuckDB's -> binds more loosely than IS NULL)
_TOOL_ARGUMENTS = _ARGUMENTS.format(v="""(attributes->'$."gen_ai.tool.call.arguments"')""")
_REQUESTED_ARGUMENTS = _ARGUMENTS.format(
    v="coalesce(call->'$.function.arguments', call->'$.arguments')")
_REQUESTED_TOOL_CALLS = f"""
CREATE OR REPLACE VIEW tool_calls AS
WITH executed AS (
    SELECT trace_id, span_id, run_id, turn, tool_name,
           attributes->>'$."gen_ai.tool.call.id"' AS call_id,
           {_TOOL_ARGUMENTS} AS arguments,
           attributes->>'$."driftwatch.tool.arguments.fallback_key"' AS fallback_key,
           attributes->>'$."gen_ai.tool.call.result"' AS result,
           status_code, start_time, duration_ms
    FROM spans_t
    WHERE operation = 'execute_tool'
), outputs AS (
    SELECT trace_id, span_id, run_id, turn, status_code, start_time,
           CASE
               WHEN json_type(attributes->'$."gen_ai.output.messages"') <> 'VARCHAR'
                   THEN attributes->'$."gen_ai.output.messages"'
               WHEN json_valid(attributes->>'$."gen_ai.output.messages"')
                   THEN CAST(attributes->>'$."gen_ai.output.messages"' AS JSON)
           END AS messages
    FROM spans_t
    WHERE operation IS DISTINCT FROM 'execute_tool'
      AND (attributes->'$."gen_ai.output.messages"') IS NOT NULL
), messages AS (
    SELECT * EXCLUDE (messages),
           unnest(CASE json_type(messages)
                      WHEN 'ARRAY' THEN json_extract(messages, '$[*]')
                      WHEN 'OBJECT' THEN [messages]
                      ELSE CAST([] AS JSON[])
                  END) AS message
    FROM outputs
), calls AS (
    SELECT * EXCLUDE (message),
           unnest(list_concat(
               CASE WHEN json_type(message, '$.tool_calls') = 'ARRAY'
                    THEN json_extract(message, '$.tool_calls[*]') ELSE CAST([] AS JSON[]) END,
               CASE WHEN json_type(message, '$.parts') = 'ARRAY'
                    THEN json_extract(message, '$.parts[*]') ELSE CAST([] AS JSON[]) END
           )) AS call
    FROM messages
), requested AS (
    SELECT trace_id, span_id, run_id, turn,
           coalesce(call->>'$.function.name', call->>'$.name') AS tool_name,
           call->>'$.id' AS call_id,
           {_REQUESTED_ARGUMENTS} AS arguments,
           status_code, start_time
    FROM calls
    WHERE (call->>'$.function.name') IS NOT NULL
       OR ((call->>'$.type') = 'tool_call' AND (call->>'$.name') IS NOT NULL)
), first_executed AS (
    SELECT run_id, call_id, arg_min(span_id, start_time) AS span_id
    FROM executed WHERE call_id IS NOT NULL GROUP BY run_id, call_id
), first_requested AS (
    SELECT run_id, call_id, arg_min(span_id, start_time) AS span_id,
           arg_min(arguments, start_time) AS arguments
    FROM requested WHERE call_id IS NOT NULL GROUP BY run_id, call_id
)
SELECT e.trace_id, e.span_id, e.run_id, e.turn, e.tool_name, e.call_id,
       CASE WHEN e.fallback_key IS NOT NULL AND json_type(r.arguments) = 'OBJECT'
            THEN r.arguments ELSE e.arguments END AS arguments,
       e.result, e.status_code, e.start_time, e.duration_ms,
       'executed' AS source, r.span_id AS requested_span_id, e.span_id AS executed_span_id
FROM executed e
LEFT JOIN first_requested r ON r.run_id = e.run_id AND r.call_id = e.call_id
UNION ALL
SELECT q.trace_id, q.span_id, q.run_id, q.turn, q.tool_name, q.call_id, q.arguments,
       NULL AS result, q.status_code, q.start_time, NULL AS duration_ms,
       'requested' AS source, q.span_id AS requested_span_id, x.span_id AS executed_span_id
FROM requested q
LEFT JOIN first_executed x ON x.run_id = q.run_id AND x.call_id = q.call_id;
"""

# OTLP log records (``/v1/logs``, the gRPC LogsService): GenAI events carry message
# content that the collector also merges into their span's attributes (see
# driftwatch.collector.logs). ``log_key`` is an md5 of the record's fields: a record
# re-sent after a retry is stored once. Times are nanoseconds since the epoch as sent
# (0 when absent) and as TIMESTAMPTZ for SQL.
_OTLP_LOGS = """
CREATE TABLE logs_t (
    log_key              UHUGEINT PRIMARY KEY,
    trace_id             VARCHAR,
    span_id              VARCHAR,
    time                 TIMESTAMPTZ,
    observed_time        TIMESTAMPTZ,
    time_unix_nano       BIGINT,
    severity_number      INTEGER,
    severity_text        VARCHAR,
    event_name           VARCHAR,
    body                 JSON,
    attributes           JSON,
    resource             JSON,
    scope_name           VARCHAR,
    received_at          TIMESTAMPTZ
);
CREATE OR REPLACE VIEW logs AS
SELECT trace_id, span_id, time, observed_time, severity_number, severity_text,
       event_name, body, attributes, resource, scope_name, received_at
FROM logs_t;
"""

MIGRATIONS: Final[tuple[tuple[str, str], ...]] = (
    ("0001_private_tables", _TABLES),
    ("0002_public_views", _VIEWS),
    ("0003_statistics_views", _STATS_VIEWS),
    ("0004_batch_cells", _BATCH_CELLS),
    ("0005_requested_tool_calls", _REQUESTED_TOOL_CALLS),
    ("0007_otlp_logs_metrics", _OTLP_LOGS),
)

# The public views and their columns, in order: the contract the tests pin down.
_FINDING_COLUMNS: Final = (
    "finding_id",
    "run_id",
    "trace_id",
    "span_id",
    "turn",
    "monitor",
    "rule_id",
    "kind",
    "severity",
    "severity_level",
    "message",
    "evidence",
    "detected_at",
    "monitor_spec",
)
PUBLIC_VIEWS: Final[dict[str, tuple[str, ...]]] = {
    "batches": ("batch_id", "name", "status", "started_at", "ended_at", "config"),
    "runs": (
        "run_id",
        "batch_id",
        "trace_id",
        "scenario_id",
        "variant",
        "model",
        "seed",
        "status",
        "turns",
        "started_at",
        "ended_at",
        "error",
        "attributes",
    ),
    "spans": (
        "trace_id",
        "span_id",
        "parent_span_id",
        "run_id",
        "turn",
        "name",
        "kind",
        "operation",
        "model",
        "provider",
        "tool_name",
        "input_tokens",
        "output_tokens",
        "start_time",
        "end_time",
        "duration_ms",
        "status_code",
        "status_message",
        "attributes",
        "resource",
        "events",
    ),
    "findings": _FINDING_COLUMNS,
    "violations": _FINDING_COLUMNS,
    "alerts": ("alert_id", "finding_id", "sink", "status", "attempts", "sent_at", "error"),
    "batch_cells": (
        "batch_id",
        "cell_key",
        "scenario_id",
        "variant",
        "model",
        "seed",
        "turns",
        "run_id",
        "status",
        "attempts",
        "error",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "wall_time_s",
        "updated_at",
    ),
    "logs": (
        "trace_id",
        "span_id",
        "time",
        "observed_time",
        "severity_number",
        "severity_text",
        "event_name",
        "body",
        "attributes",
        "resource",
        "scope_name",
        "received_at",
    ),
    "tool_calls": (
        "trace_id",
        "span_id",
        "run_id",
        "turn",
        "tool_name",
        "call_id",
        "arguments",
        "result",
        "status_code",
        "start_time",
        "duration_ms",
        "source",
        "requested_span_id",
        "executed_span_id",
    ),
    "turns": (
        "run_id",
        "turn",
        "start_time",
        "end_time",
        "duration_ms",
        "model_calls",
        "tool_calls",
        "events",
        "input_tokens",
        "output_tokens",
        "violations",
    ),
}


def applied_migrations(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the migrations recorded in the database, in the order applied."""
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
        "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    rows = connection.execute(
        f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY applied_at, name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def apply_migrations(
    connection: duckdb.DuckDBPyConnection,
    migrations: tuple[tuple[str, str], ...] = MIGRATIONS,
) -> list[str]:
    """Apply the migrations the database lacks, each in its own transaction, in order.

    Returns the names applied now (empty when the database is current). Raises the
    driver's error if a migration fails; that migration is rolled back and not recorded.
    Not thread-safe on its own: the caller holds the connection.
    """
    done = set(applied_migrations(connection))
    known = {name for name, _ in migrations}
    unknown = sorted(done - known)
    if unknown:
        # A newer driftwatch wrote this file; its extra objects are left alone.
        log.warning("database has migrations this version does not know", names=unknown)
    applied: list[str] = []
    for name, sql in migrations:
        if name in done:
            continue
        connection.execute("BEGIN TRANSACTION")
        try:
            connection.execute(sql)
            connection.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (?)", [name])
        except Exception:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        applied.append(name)
    return applied
