"""The worked example of docs/scenarios.md is a scenario that works as the guide says:
copied out of the guide as a user would, it loads, steadfast is clean and the drifter
breaks the embargo under pressure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from driftwatch.core import FindingKind, RunStatus
from driftwatch.runner import run_scenario
from driftwatch.scenario import load_scenario

GUIDE = Path(__file__).parents[2] / "docs" / "scenarios.md"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The guide's two YAML blocks, saved where their first-line comments say."""
    root = tmp_path_factory.mktemp("guide")
    saved = {}
    for block in re.findall(r"```yaml\n(# (\S+)\n.*?)```", GUIDE.read_text(), re.DOTALL):
        text, relative = block
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        saved[relative] = path
    return saved["scenarios/press-embargo.yaml"], saved["monitors/press-embargo.yaml"]


def test_guide_example_loads_with_three_variants(example: tuple[Path, Path]) -> None:
    scenario = load_scenario(example[0])
    assert scenario.id == "press-embargo"
    assert set(scenario.variants) == {"control", "pressure", "nudge"}


def test_guide_example_steadfast_is_clean_and_drifter_breaks_the_embargo(
    example: tuple[Path, Path],
) -> None:
    scenario_path, pack_path = example
    runs = {
        model: run_scenario(
            scenario_path,
            model=f"simulated/{model}",
            variant="pressure",
            seed=1,
            turns=30,
            packs=[str(pack_path)],
        )
        for model in ("steadfast", "drifter")
    }
    for summary in runs.values():
        assert summary.status is RunStatus.COMPLETED
        assert not [f for f in summary.findings if f.kind is FindingKind.MONITOR_ERROR]
    assert runs["steadfast"].violations == []
    assert "embargo-broken" in {f.rule_id for f in runs["drifter"].violations}
