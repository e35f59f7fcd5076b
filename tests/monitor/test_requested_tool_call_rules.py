"""Rule packs on the spans real instrumentations sent (tests/data/instrumentations): the
documented shell rule and a ``same:`` sequence fire on LangChain tool spans, and rules
that name ``tool_call_source`` see requested calls, each call flagged once."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest
from tests.instrumentation_fixtures import ALL, LANGGRAPH, OPENAI_LOOP, load

from driftwatch.core import Finding
from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord
from driftwatch.monitor import RulePackMonitor
from driftwatch.store.arrow import exact_span_table
from driftwatch.store.span_batch import SpanBatch

PackMonitor = Callable[[str], RulePackMonitor]

# the rule docs/collector.md shows for an external agent
DOCUMENTED = r"""pack: my-agent
rules:
  - id: recursive-delete
    severity: high
    when: >-
      operation = 'execute_tool' AND tool_name = 'shell'
      AND regexp_matches(coalesce(tool_arguments->>'command', ''), 'rm\s+-rf')
"""
OVERWRITE_AFTER_READ = """pack: seq
sequences:
  - id: overwrite-after-read
    severity: medium
    pattern: a_then_b
    a: operation = 'execute_tool' AND tool_name = 'read_file'
    b: operation = 'execute_tool' AND tool_name = 'write_file'
    same: ["tool_arguments->>'path'"]
    message: "{key[0]} overwritten after reading it"
"""


def _pack(when: str) -> str:
    return f"pack: calls\nrules:\n  - id: rm\n    severity: high\n    when: >-\n      {when}\n"


_RM = "tool_name = 'shell' AND tool_arguments->>'command' LIKE 'rm -rf%'"


def _observe(monitor: RulePackMonitor, records: Sequence[SpanRecord],
             per_span: bool = False) -> list[Finding]:
    """Feed the records in export order (all at once, or one span per batch), then end
    every run."""
    found: list[Finding] = []
    batches = [[r] for r in records] if per_span else [list(records)]
    for batch in batches:
        by_run: dict[str, list[SpanRecord]] = {}
        for record in batch:
            by_run.setdefault(record.run_id, []).append(record)
        for findings in monitor.observe_batch(by_run).values():
            found.extend(findings)
    for run_id in dict.fromkeys(r.run_id for r in records):
        found.extend(monitor.end_run(run_id, None))
    return found


@pytest.mark.parametrize("per_span", [False, True])
@pytest.mark.parametrize("name", LANGGRAPH)
def test_the_documented_shell_rule_fires_for_a_langgraph_agent(
        pack_monitor: PackMonitor, name: str, per_span: bool) -> None:
    records = load(name)
    [finding] = _observe(pack_monitor(DOCUMENTED), records, per_span)
    shell = next(r for r in records if r.operation == sc.OP_EXECUTE_TOOL
                 and r.tool_name == "shell")
    assert (finding.rule_id, finding.span_id) == ("recursive-delete", shell.span_id)
    assert finding.evidence["tool_arguments"] == {"command": "rm -rf build"}
    assert finding.evidence["tool_result"] == "ran: rm -rf build"


@pytest.mark.parametrize("name", LANGGRAPH)
def test_a_same_sequence_compares_the_real_paths(pack_monitor: PackMonitor, name: str) -> None:
    [finding] = _observe(pack_monitor(OVERWRITE_AFTER_READ), load(name))
    assert finding.message == "config.yaml overwritten after reading it"


@pytest.mark.parametrize("name", ALL)
def test_a_rule_on_requested_calls_fires_for_every_instrumentation(
        pack_monitor: PackMonitor, name: str) -> None:
    records = load(name)
    [finding] = _observe(pack_monitor(_pack(f"tool_call_source = 'requested' AND {_RM}")),
                         records)
    chat = next(r for r in records if r.operation == sc.OP_CHAT
                and "rm -rf" in r.attributes.get(sc.GEN_AI_OUTPUT_MESSAGES, ""))
    assert finding.span_id == chat.span_id  # the chat span that asked for it
    assert finding.evidence["tool_name"] == "shell"
    assert finding.evidence["tool_arguments"] == {"command": "rm -rf build"}


@pytest.mark.parametrize("per_span", [False, True])
@pytest.mark.parametrize("name", ALL)
def test_a_call_both_requested_and_executed_is_flagged_once(
        pack_monitor: PackMonitor, name: str, per_span: bool) -> None:
    """``tool_call_source IS NOT NULL`` selects both rows of a call; the call id links
    them, so the request is flagged and its execution is not flagged again."""
    records = load(name)
    found = _observe(pack_monitor(_pack(f"tool_call_source IS NOT NULL AND {_RM}")),
                     records, per_span)
    [finding] = found
    assert finding.span_id in {r.span_id for r in records if r.operation == sc.OP_CHAT}


@pytest.mark.parametrize("name", ALL)
def test_rules_that_do_not_name_the_source_never_see_requested_calls(
        pack_monitor: PackMonitor, name: str) -> None:
    """A rule written for spans keeps its meaning: without tool spans (the openai client
    loop, litellm) a tool-name rule has nothing to match."""
    found = _observe(pack_monitor(_pack(_RM)), load(name))
    assert len(found) == (1 if name in LANGGRAPH else 0)
    assert all(f.span_id not in {r.span_id for r in load(name) if r.operation == sc.OP_CHAT}
               for f in found)


@pytest.mark.parametrize("name", OPENAI_LOOP)
def test_executed_only_rules_stay_silent_without_tool_spans(
        pack_monitor: PackMonitor, name: str) -> None:
    assert _observe(pack_monitor(_pack(f"tool_call_source = 'executed' AND {_RM}")),
                    load(name)) == []


def test_the_engine_path_with_arrow_tables_gives_the_same_findings(
        pack_monitor: PackMonitor) -> None:
    """The collector hands monitors SpanBatches built from Arrow tables: requested rows
    are appended to that table."""
    records = load("openinference-langchain")
    pack = _pack(f"tool_call_source IS NOT NULL AND {_RM}")
    expected = _observe(pack_monitor(pack), records)
    monitor = pack_monitor(pack)
    batch = SpanBatch.from_table(exact_span_table(records))
    by_run = {records[0].run_id: batch}
    found = [f for run in monitor.observe_batch(by_run).values() for f in run]
    assert [(f.span_id, f.message) for f in found] == [
        (f.span_id, f.message) for f in expected]
    assert found[0].evidence["tool_arguments"] == {"command": "rm -rf build"}


def test_a_message_template_can_name_the_source(pack_monitor: PackMonitor) -> None:
    text = _pack(f"tool_call_source IS NOT NULL AND {_RM}") + (
        '    message: "{tool_call_source} {tool_name} at {span_id}"\n')
    [finding] = _observe(pack_monitor(text), load("openai-v2"))
    assert finding.message == f"requested shell at {finding.span_id}"


@pytest.mark.parametrize("seed", range(6))
def test_single_span_findings_do_not_depend_on_arrival_order(
        pack_monitor: PackMonitor, seed: int) -> None:
    """OpenInference's bare tool input needs the chat span's request: a tool span that
    arrives first is evaluated again when its request arrives, and a rule that matched
    it already (any arguments) does not fire twice."""
    records = load("openinference-langchain")
    shuffled = random.Random(seed).sample(records, len(records))
    any_shell = _pack("operation = 'execute_tool' AND tool_name = 'shell'")
    for text in (DOCUMENTED, any_shell):
        expected = _observe(pack_monitor(text), records, per_span=True)
        found = _observe(pack_monitor(text), shuffled, per_span=True)
        assert [(f.rule_id, f.span_id) for f in found] == [
            (f.rule_id, f.span_id) for f in expected]
        assert len(found) == 1


def test_a_tool_span_before_its_request_in_one_batch(pack_monitor: PackMonitor) -> None:
    records = load("openinference-langchain")
    shell = next(r for r in records if r.tool_name == "shell")
    reordered = [shell, *(r for r in records if r is not shell)]
    [finding] = _observe(pack_monitor(DOCUMENTED), reordered)
    assert finding.span_id == shell.span_id
    assert finding.evidence["tool_arguments"] == {"command": "rm -rf build"}


def test_a_span_claiming_to_be_a_request_is_still_seen_by_span_rules(
        pack_monitor: PackMonitor) -> None:
    """The source of a row comes from where the monitor put it, not from attributes a
    client sends: a tool span that claims ``driftwatch.tool_call.source = requested``
    cannot hide from a rule written for spans."""
    records = load("openllmetry-langchain")
    spoofed = [replace(r, attributes={**r.attributes,
                                      sc.DW_TOOL_CALL_SOURCE: sc.TOOL_CALL_REQUESTED})
               if r.tool_name == "shell" else r for r in records]
    text = DOCUMENTED + (
        "  - id: asked\n    severity: low\n    when: >-\n"
        f"      tool_call_source = 'requested' AND {_RM}\n")
    found = _observe(pack_monitor(text), spoofed)
    assert sorted(f.rule_id for f in found) == ["asked", "recursive-delete"]
