"""The rule-pack sections are listed once (monitor.rules.sections): the pack model, the id
check and the rule-pack monitor all follow the table."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from driftwatch.core.errors import SpecError
from driftwatch.monitor.rules.pack import RulePack, check_sections, load_rule_pack
from driftwatch.monitor.rules.rulepack import RulePackMonitor
from driftwatch.monitor.rules.sections import SECTIONS, Evaluation, section_rules
from driftwatch.monitor.rules.spec import Rule

PACK = """\
pack: every-section
rules:
  - {id: r1, severity: low, when: "tool_name = 'a'"}
sequences:
  - {id: s1, severity: low, pattern: a_then_b, a: "tool_name = 'a'", b: "tool_name = 'b'"}
windows:
  - {id: w1, severity: low, when: "tool_name = 'a'", more_than: 3, per: {turns: 5}}
final_state:
  - {id: f1, severity: low, expect: "exists (select 1 from files)"}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pack.yaml"
    path.write_text(text)
    return path


def test_every_section_of_the_table_is_a_pack_field_and_is_walked(tmp_path: Path) -> None:
    pack = load_rule_pack(_write(tmp_path, PACK))
    names = [section.name for section in SECTIONS]
    assert names == ["rules", "sequences", "windows", "final_state"]
    walked = [(section.name, index, item.id) for section, index, item in section_rules(pack)]
    assert walked == [("rules", 0, "r1"), ("sequences", 0, "s1"), ("windows", 0, "w1"),
                      ("final_state", 0, "f1")]
    stateful = [item.id for _, _, item in section_rules(pack, Evaluation.STATEFUL)]
    assert stateful == ["s1", "w1"]


def test_the_monitor_dispatches_each_section_by_its_evaluation(tmp_path: Path) -> None:
    monitor = RulePackMonitor([load_rule_pack(_write(tmp_path, PACK))])
    assert set(monitor._rules) == {"r1"}
    assert set(monitor._stateful_ids) == {"s1", "w1"}
    assert set(monitor._checks) == {"f1"}


def test_a_duplicate_id_names_the_section_it_is_in(tmp_path: Path) -> None:
    text = PACK.replace("{id: w1,", "{id: s1,")
    with pytest.raises(SpecError, match=r"windows\[0\]\.id: duplicate rule id 's1'"):
        load_rule_pack(_write(tmp_path, text))


def test_a_pack_model_that_drifts_from_the_table_is_refused() -> None:
    check_sections(RulePack)

    class MissingWindows(BaseModel):
        pack: str
        rules: list[Rule] = Field(default_factory=list)

    with pytest.raises(RuntimeError, match="do not match the section table"):
        check_sections(MissingWindows)
