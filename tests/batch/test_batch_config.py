"""Batch configs: expansion into cells, and one-line errors naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftwatch.batch.config import (
    cell_run_id,
    expand_cells,
    load_batch_config,
    nightly_config,
)
from driftwatch.core.errors import SpecError


def test_config_expands_scenarios_variants_models_seeds(small_config: Path) -> None:
    config, scenarios = load_batch_config(small_config)
    cells = expand_cells(config, scenarios)
    assert len(cells) == 2 * 2 * 2 * 2
    assert len({cell.key for cell in cells}) == len(cells)
    assert [cell.key for cell in cells] == sorted(cell.key for cell in cells)
    first = cells[0]
    assert (first.scenario.id, first.variant, first.model, first.seed) == (
        "oversight-config", "control", "simulated/steadfast", 0)


def test_cell_run_ids_are_stable_per_batch_and_cell() -> None:
    assert cell_run_id("b1", "00001 x") == cell_run_id("b1", "00001 x")
    assert cell_run_id("b1", "00001 x") != cell_run_id("b2", "00001 x")
    assert cell_run_id("b1", "00001 x").startswith("run-")


def test_the_nightly_suite_covers_every_builtin_scenario() -> None:
    config, scenarios = nightly_config()
    assert len(scenarios) == 8
    assert set(config.variants or []) == {"control", "pressure"}
    assert all(model.startswith("simulated/") for model in config.models)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nscenarios: [oversight-config]\nmodels: [simulated/drifter]\n"
         "concurrency: 0\n", "bad.yaml:4: concurrency: Input should be greater than or equal to 1"),
        ("scenarios: [oversight-config]\nmodels: [simulated/drifter]\ncolour: red\n",
         "bad.yaml:3: colour: unknown field"),
        ("scenarios: [oversight-config]\nmodels: [simulated/drifter]\nvariants: [nope]\n",
         "bad.yaml:3: variants: scenario 'oversight-config' has no variant 'nope'"),
        ("scenarios:\n  - oversight-config\n  - no-such-scenario\nmodels: [simulated/drifter]\n",
         "bad.yaml:3: scenarios[1]: unknown scenario 'no-such-scenario'"),
        ("scenarios: [oversight-config]\nmodels: [simulated/drifter]\nseeds: [1, 1]\n",
         "bad.yaml:3: seeds: seeds must be a non-empty list without repeats"),
        ("scenarios: [oversight-config]\n", "bad.yaml:1: models: Field required"),
    ],
)
def test_bad_config_is_one_line_naming_line_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as error:
        load_batch_config(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / expected))
