"""Record the agents again with the real instrumentation packages (the ``conformance``
extra) and check that what the store, the views and the rules see is what the committed
fixtures say: a new version of an instrumentation that changes its shapes fails here."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.instrumentation_fixtures import ALL, CALLS, FIXTURE_DIR, LANGGRAPH, RESULTS, load

from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord
from driftwatch.monitor import RulePackMonitor, load_rule_pack
from driftwatch.store import Store
from driftwatch.testing import FrozenClock, SequentialIds

_MODULES = ("opentelemetry.instrumentation.openai_v2", "opentelemetry.util.genai",
            "openinference.instrumentation.openai", "openinference.instrumentation.langchain",
            "opentelemetry.instrumentation.openai", "opentelemetry.instrumentation.langchain",
            "langchain_openai", "langgraph.prebuilt", "litellm")


def _absent(name: str) -> bool:
    try:  # find_spec imports the parents: a missing parent package raises
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:
        return True


_MISSING = [name for name in _MODULES if _absent(name)]

if _MISSING and os.environ.get("DRIFTWATCH_CONFORMANCE") == "1":  # .ci/run's step
    raise RuntimeError(f"conformance extra missing: {', '.join(_MISSING)}")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.network_loopback,
    pytest.mark.skipif(bool(_MISSING), reason="the conformance extra is not installed "
                       f"(pip install -e '.[conformance]'); missing: {', '.join(_MISSING)}"),
]

_RULE = """pack: live
rules:
  - id: recursive-delete
    severity: high
    when: >-
      tool_call_source IS NOT NULL AND tool_name = 'shell'
      AND regexp_matches(coalesce(tool_arguments->>'command', ''), 'rm\\s+-rf')
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recorded")
    subprocess.run([sys.executable, str(FIXTURE_DIR / "record.py"), "--out", str(out)],
                   check=True, capture_output=True, timeout=600)
    return out


def _shape(directory: Path, name: str, scratch: Path) -> list[tuple[object, ...]]:
    """What the store and the rules make of one recording, without ids and times."""
    records = load(name, directory)
    with Store() as store:
        store.write_spans(records)
        rows = store.query("SELECT source, tool_name, arguments, result, "
                           "requested_span_id IS NOT NULL, executed_span_id IS NOT NULL "
                           "FROM tool_calls ORDER BY start_time, source DESC").rows
    pack = scratch / "live-pack.yaml"
    pack.write_text(_RULE, encoding="utf-8")
    monitor = RulePackMonitor([load_rule_pack(pack)]).bind(ids=SequentialIds(),
                                                          clock=FrozenClock())
    try:
        by_run: dict[str, list[SpanRecord]] = {}
        for record in records:
            by_run.setdefault(record.run_id, []).append(record)
        findings = [f for found in monitor.observe_batch(by_run).values() for f in found]
    finally:
        monitor.close()
    operations = sorted({str(r.operation) for r in records if r.operation})
    return [*((row[0], row[1], json.loads(str(row[2])), *row[3:]) for row in rows),
            ("operations", *operations), ("findings", len(findings))]


@pytest.mark.parametrize("name", ALL)
def test_a_live_recording_looks_like_the_committed_fixture(
        recorded: Path, name: str, tmp_path: Path) -> None:
    live = _shape(recorded, name, tmp_path)
    assert live == _shape(FIXTURE_DIR, name, tmp_path)
    requested = [(row[1], row[2]) for row in live if row[0] == "requested"]
    assert requested == CALLS
    if name in LANGGRAPH:
        executed = [(row[1], row[2], row[3]) for row in live if row[0] == "executed"]
        assert executed == [(t, a, r) for (t, a), r in zip(CALLS, RESULTS, strict=True)]
    assert live[-1] == ("findings", 1)
    assert sc.OP_CHAT in live[-2]
