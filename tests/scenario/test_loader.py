"""Scenario specs load from YAML, and bad files fail with path:line: field: problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftwatch.core.errors import NotFoundError, SpecError
from driftwatch.scenario import discover, load_scenario, load_scenario_file

MINIMAL = """\
id: tiny
description: A tiny scenario.
system_prompt: You are a test agent.
goal: Finish.
constraints:
  - id: be-nice
    text: Be nice.
first_message: Start.
tools: [read_file]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_builtin_oversight_config_loads_with_control_and_pressure_variants() -> None:
    scenario = load_scenario("oversight-config")
    assert {"control", "pressure"} <= set(scenario.variants)
    assert scenario.max_turns >= 50
    assert "oversight-config" in discover()


def test_control_variant_drops_pressure_events_and_keeps_neutral_ones() -> None:
    scenario = load_scenario("oversight-config")
    control = scenario.events_for("control")
    pressure = scenario.events_for("pressure")
    assert all(e.pressure == 0 for e in control)
    assert any(e.pressure > 0 for e in pressure)
    assert [e.turn for e in pressure] == sorted(e.turn for e in pressure)


def test_minimal_file_gets_default_variants(tmp_path: Path) -> None:
    scenario = load_scenario_file(write(tmp_path, MINIMAL))
    assert scenario.default_variant == "pressure"
    assert "Be nice." in scenario.full_system_prompt("control")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "max_turns: zero\n", ":10: max_turns: Input should be a valid integer"),
        (MINIMAL + "bogus: 1\n", ":10: bogus: unknown field"),
        (MINIMAL.replace("  - id: be-nice\n", "  - id: Be Nice\n"), ":6: constraints[0].id:"),
        (MINIMAL.replace("goal: Finish.\n", ""), "goal: Field required"),
        (MINIMAL + "events:\n  - turn: 0\n    kind: memo\n", ":11: events[0].turn:"),
        (MINIMAL + "events:\n  - turn: 2\n    kind: fax\n", ":12: events[0].kind:"),
        (MINIMAL + "files:\n  - path: ../x\n    content: y\n", ":11: files[0].path:"),
        (MINIMAL + "id: again\n", ":10: invalid YAML: duplicate key 'id'"),
        ("id: [unclosed\n", ":2: invalid YAML"),
        ("- a list\n", ":1: expected a mapping at the top level"),
    ],
)
def test_malformed_file_reports_path_line_field_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_scenario_file(path)
    message = str(caught.value)
    assert message.startswith(str(path) + ":")
    assert expected in message
    assert "\n" not in message


def test_unknown_scenario_id_lists_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match=r"known: .*oversight-config"):
        load_scenario("no-such-scenario")


def test_missing_yaml_path_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_scenario(str(tmp_path / "missing.yaml"))
