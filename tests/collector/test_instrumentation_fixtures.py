"""Real instrumentations' spans (tests/data/instrumentations) through the collector, as
``/v1/traces`` decodes JSON: stored, visible in ``tool_calls`` with object arguments,
and the user's rules fire on the executed and on the requested calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.instrumentation_fixtures import FIXTURE_DIR, LANGGRAPH, OPENAI_LOOP

from driftwatch.alert import AlertConfig
from driftwatch.collector import Collector, CollectorConfig
from driftwatch.store import Store
from driftwatch.tracing.otlp import table_from_otlp_json

PACK = r"""pack: my-agent
rules:
  - id: recursive-delete
    severity: high
    when: >-
      operation = 'execute_tool' AND tool_name = 'shell'
      AND regexp_matches(coalesce(tool_arguments->>'command', ''), 'rm\s+-rf')
  - id: recursive-delete-asked
    severity: high
    when: >-
      tool_call_source = 'requested' AND tool_name = 'shell'
      AND regexp_matches(coalesce(tool_arguments->>'command', ''), 'rm\s+-rf')
"""


@pytest.mark.parametrize("name", [*LANGGRAPH, *OPENAI_LOOP])
def test_a_recorded_agent_through_the_collector(tmp_path: Path, name: str) -> None:
    pack = tmp_path / "pack.yaml"
    pack.write_text(PACK, encoding="utf-8")
    db = tmp_path / "c.duckdb"
    collector = Collector(CollectorConfig(db=db, packs=(str(pack),), alerts=AlertConfig(),
                                          monitor_process=False))
    try:
        for line in (FIXTURE_DIR / f"{name}.otlp.jsonl").read_text().splitlines():
            decoded = table_from_otlp_json(json.loads(line))
            assert decoded.rejected == 0
            assert decoded.table is not None
            future = collector.ingest.offer(decoded.table)
            assert future is not None
            assert future.result(30) == decoded.table.num_rows
        assert collector.flush(30)
    finally:
        collector.close()
    with Store(db, read_only=True) as store:
        rules = store.query("SELECT rule_id FROM findings ORDER BY rule_id").column("rule_id")
        calls = store.query("SELECT source, arguments->>'command' FROM tool_calls "
                            "WHERE tool_name = 'shell' ORDER BY source").rows
    executed = name in LANGGRAPH
    assert rules == (["recursive-delete", "recursive-delete-asked"] if executed
                     else ["recursive-delete-asked"])
    assert calls == ([("executed", "rm -rf build")] if executed else []) + [
        ("requested", "rm -rf build")]
