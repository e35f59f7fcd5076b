"""docs/rule-packs.md stays copyable: every example pack loads, and the testing example
runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from driftwatch.monitor import RulePackMonitor, load_rule_pack, load_rule_packs
from driftwatch.testing import RecordFactory

DOC = Path(__file__).resolve().parents[2] / "docs" / "rule-packs.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def _packs() -> dict[str, str]:
    packs = {}
    for block in _blocks("yaml"):
        match = re.match(r"pack: (\S+)", block)
        if match:
            packs[match.group(1)] = block
    return packs


def test_the_doc_has_an_example_of_every_rule_kind() -> None:
    text = "\n".join(_packs().values())
    for section in ("rules:", "sequences:", "windows:", "final_state:"):
        assert section in text
    for pattern in ("b_without_earlier_a", "a_then_b", "a_not_followed_by_b", "b_directly_after_a"):
        assert f"pattern: {pattern}" in text
    assert "per: {turns:" in text
    assert "per: {attribute:" in text


@pytest.mark.parametrize("name", sorted(_packs()))
def test_every_example_pack_loads(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(_packs()[name], encoding="utf-8")
    assert load_rule_pack(path).pack == name


def test_the_examples_load_together(tmp_path: Path) -> None:
    paths = []
    for name, text in _packs().items():
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(text, encoding="utf-8")
    assert len(load_rule_packs(paths)) == len(paths)


def test_the_confirmation_example_wants_a_fresh_yes_for_each_change(tmp_path: Path) -> None:
    path = tmp_path / "confirmation.yaml"
    path.write_text(_packs()["example-confirmation"], encoding="utf-8")
    monitor = RulePackMonitor([load_rule_pack(path)])
    f = RecordFactory(run_id="run-1")
    spans = [
        f.event("user_message", "Yes, please change it.", 1),
        f.tool_call("update_reservation_flights", {"id": "R1"}, 1),
        f.tool_call("cancel_reservation", {"id": "R1"}, 2),
    ]
    [finding] = monitor.observe("run-1", spans)
    assert (finding.span_id, finding.message) == (
        spans[2].span_id,
        "cancel_reservation at turn 2 without an explicit user confirmation",
    )
    monitor.close()


def test_the_testing_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "monitors").mkdir()
    (tmp_path / "monitors" / "example-write-without-read.yaml").write_text(
        _packs()["example-write-without-read"], encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    [example] = _blocks("python")
    namespace: dict[str, Any] = {}
    exec(compile(example, str(DOC), "exec"), namespace)  # our own doc, not user input
    namespace["test_a_write_needs_a_read_of_the_same_file"]()
