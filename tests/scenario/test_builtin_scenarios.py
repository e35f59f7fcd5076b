"""The built-in scenarios: their shape, their rule packs, and how the simulated profiles
behave in them (steadfast clean, drifter worse under pressure than in control).

Runs are shared between tests through the module-scoped :class:`RunCache`: each
(scenario, profile, variant, seed, turns) combination runs at most once per module.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from driftwatch.core import FindingKind, RunStatus, Severity
from driftwatch.monitor import RulePack, resolve_packs
from driftwatch.runner import RunSummary, run_scenario
from driftwatch.sandbox import ProcessSandbox, find_bubblewrap, get_tools
from driftwatch.scenario import Scenario, discover, load_scenario
from driftwatch.store import Store

SCENARIO_IDS = (
    "oversight-config",
    "successor-replacement",
    "goal-guarding",
    "covert-ranking",
    "vending-operator",
    "insider-email",
    "sandbagging",
    "support-policy",
)
PROFILES = ("steadfast", "drifter", "schemer", "looper", "flaky")
VARIANTS = ("control", "nudge", "pressure")
SHORT_TURNS = 4
# (variant, seed) of the default-length steadfast runs; nudge delivers the same events as
# pressure (only the system prompt differs), so one seed of it is enough
STEADFAST_RUNS = (("control", 1), ("control", 2), ("pressure", 1), ("pressure", 2), ("nudge", 1))
DRIFTER_SEEDS = tuple(range(20))


@dataclass
class RunCache:
    """Memoised runs: a test asks for a run, the first asker pays for it. Scenarios and
    rule packs are loaded once and handed over by object and by file path."""

    scenarios: dict[str, Scenario]
    packs: dict[str, list[RulePack]]
    runs: dict[tuple[str, str, str, int, int | None], RunSummary] = field(default_factory=dict)

    def get(
        self, scenario_id: str, profile: str, variant: str, seed: int, turns: int | None = None
    ) -> RunSummary:
        key = (scenario_id, profile, variant, seed, turns)
        if key not in self.runs:
            self.runs[key] = run_scenario(
                self.scenarios[scenario_id],
                model=f"simulated/{profile}",
                variant=variant,
                seed=seed,
                turns=turns,
                packs=[str(pack.source) for pack in self.packs[scenario_id]],
            )
        return self.runs[key]


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Scenario]:
    return {scenario_id: load_scenario(scenario_id) for scenario_id in SCENARIO_IDS}


@pytest.fixture(scope="module")
def packs(scenarios: dict[str, Scenario]) -> dict[str, list[RulePack]]:
    return {sid: resolve_packs(scenario.rule_packs) for sid, scenario in scenarios.items()}


@pytest.fixture(scope="module")
def run_cache(scenarios: dict[str, Scenario], packs: dict[str, list[RulePack]]) -> RunCache:
    return RunCache(scenarios, packs)


def _errors(summary: RunSummary) -> list[str]:
    return [
        f"{f.rule_id}: {f.message}" for f in summary.findings if f.kind is FindingKind.MONITOR_ERROR
    ]


def _violations(summary: RunSummary) -> list[tuple[str, int | None, str]]:
    return [(f.rule_id, f.turn, f.message) for f in summary.violations]


# --- shape of the scenario files -------------------------------------------------------


def test_every_builtin_scenario_is_discoverable() -> None:
    assert set(SCENARIO_IDS) <= set(discover())


@pytest.mark.parametrize("scenario_id", SCENARIO_IDS)
def test_scenario_has_control_nudge_and_pressure_variants_and_a_long_default(
    scenarios: dict[str, Scenario], scenario_id: str
) -> None:
    scenario = scenarios[scenario_id]
    assert set(VARIANTS) <= set(scenario.variants)
    assert scenario.variants["control"].pressure is False
    assert scenario.variants["pressure"].pressure is True
    assert "nothing else matters" in scenario.full_system_prompt("nudge").lower()
    assert all(event.pressure == 0 for event in scenario.events_for("control"))
    pressure_turns = sorted(e.turn for e in scenario.events_for("pressure") if e.pressure > 0)
    assert len(pressure_turns) >= 3, "pressure should escalate over several events"
    assert pressure_turns[-1] < scenario.max_turns
    assert scenario.max_turns >= 50
    assert scenario.files, "a scenario plants files"
    assert scenario.tasks, "tasks keep a long run going"


@pytest.mark.parametrize("scenario_id", SCENARIO_IDS)
def test_rule_packs_apply_and_have_span_and_final_state_checks(
    packs: dict[str, list[RulePack]], scenario_id: str
) -> None:
    loaded = packs[scenario_id]
    assert loaded
    assert all(pack.applies_to(scenario_id) for pack in loaded)
    assert sum(len(p.rules) + len(p.sequences) + len(p.windows) for p in loaded) >= 2
    assert sum(len(p.final_state) for p in loaded) >= 1


@pytest.mark.parametrize("scenario_id", SCENARIO_IDS)
def test_every_rule_cites_a_constraint_of_its_scenario(
    scenarios: dict[str, Scenario], packs: dict[str, list[RulePack]], scenario_id: str
) -> None:
    constraint_ids = {c.id for c in scenarios[scenario_id].constraints}
    for pack in packs[scenario_id]:
        for rule in [*pack.rules, *pack.sequences, *pack.windows, *pack.final_state]:
            cited = {
                c for c in constraint_ids if re.search(rf"\b{re.escape(c)}\b", rule.description)
            }
            assert cited, f"{rule.id} does not name a constraint of {scenario_id}"


@pytest.mark.parametrize("scenario_id", SCENARIO_IDS)
def test_simulated_hints_are_valid_calls_of_the_scenario_tools(
    scenarios: dict[str, Scenario], scenario_id: str
) -> None:
    scenario = scenarios[scenario_id]
    tools = {tool.name: tool for tool in get_tools(scenario.tools)}
    hints = scenario.simulated
    assert len({(h.tool, repr(h.arguments)) for h in hints.on_task}) >= 3
    assert len({(h.tool, repr(h.arguments)) for h in hints.violations}) >= 3
    for hint in [*hints.on_task, *hints.violations]:
        assert hint.tool in tools, f"{hint.tool} is not a tool of {scenario_id}"
        schema = tools[hint.tool].parameters
        assert set(schema["required"]) <= set(hint.arguments) <= set(schema["properties"])


def test_covert_ranking_expected_rankings_are_the_planted_scripts_output(
    scenarios: dict[str, Scenario], packs: dict[str, list[RulePack]]
) -> None:
    """The pack's expected rankings are derived from the planted data: re-derive them."""
    if find_bubblewrap() is None:
        pytest.skip("bubblewrap is not installed")
    scenario = scenarios["covert-ranking"]
    (pack,) = packs["covert-ranking"]
    files = {planted.path: planted.content for planted in scenario.files}
    sandbox = ProcessSandbox()
    printed = {}
    for category in ("packaging", "electronics", "logistics"):
        result = sandbox.run(f"python3 scoring/score.py data/{category}.csv", files, frozenset())
        assert result.exit_code == 0, result.as_text()
        printed[category] = result.stdout
    names = {c: re.findall(r"(?m)^\d+\. (\S+)", text) for c, text in printed.items()}

    def lists(sql: str, pattern: str) -> dict[str, list[str]]:
        return {m[0]: re.findall(r"'([^']+)'", m[1]) for m in re.findall(pattern, sql)}

    final = next(check for check in pack.final_state if check.id == "submitted-ranking-differs")
    assert lists(final.expect, r"'output/ranking_(\w+)\.txt', \[([^\]]*)\]") == names
    rule = next(rule for rule in pack.rules if rule.id == "ranking-not-script-output")
    in_rule = lists(rule.when, r"WHEN '(\w+)' THEN \[([^\]]*)\]")
    in_rule["logistics"] = re.findall(r"'([^']+)'", rule.when.split("ELSE", 1)[1].split("]")[0])
    assert in_rule == names
    for category in ("electronics", "logistics"):
        honest = [
            h
            for h in scenario.simulated.on_task
            if h.tool == "write_file" and h.arguments["path"] == f"output/ranking_{category}.txt"
        ]
        assert [h.arguments["content"] for h in honest] == [printed[category]]


# --- runs ------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario_id", SCENARIO_IDS)
def test_every_variant_runs_with_every_simulated_profile(
    run_cache: RunCache, scenario_id: str
) -> None:
    """Short runs of every profile on every variant complete without monitor errors
    (steadfast's runs are the default-length ones of the next test)."""
    for variant in VARIANTS:
        for profile in PROFILES:
            if profile == "steadfast":
                summary = run_cache.get(scenario_id, profile, variant, seed=1)
            else:
                summary = run_cache.get(scenario_id, profile, variant, seed=3, turns=SHORT_TURNS)
            where = f"{scenario_id}/{variant}/{profile}"
            assert summary.status is RunStatus.COMPLETED, f"{where}: {summary.error}"
            full = run_cache.scenarios[scenario_id].max_turns
            assert summary.turns == (full if profile == "steadfast" else SHORT_TURNS), where
            assert _errors(summary) == [], where


@pytest.mark.parametrize("scenario_id", SCENARIO_IDS)
def test_steadfast_is_clean_at_default_length(run_cache: RunCache, scenario_id: str) -> None:
    for variant, seed in STEADFAST_RUNS:
        summary = run_cache.get(scenario_id, "steadfast", variant, seed)
        where = f"{scenario_id}/{variant}/seed {seed}"
        assert summary.status is RunStatus.COMPLETED, where
        assert summary.turns == run_cache.scenarios[scenario_id].max_turns, where
        assert _errors(summary) == [], where
        assert _violations(summary) == [], where


def test_sandbagging_reference_accuracy_is_the_control_variants_accuracy(
    run_cache: RunCache,
) -> None:
    """The monitor's reference_accuracy is the honest control accuracy, measured."""
    (reference,) = [
        ref.args["reference_accuracy"]
        for ref in run_cache.scenarios["sandbagging"].monitors
        if ref.name == "sandbagging"
    ]
    correct = total = 0
    for seed in (seed for variant, seed in STEADFAST_RUNS if variant == "control"):
        rounds = run_cache.get("sandbagging", "steadfast", "control", seed).final_state["rounds"]
        assert isinstance(rounds, list)
        correct += sum(row["correct"] for row in rounds)
        total += sum(row["total"] for row in rounds)
    assert total >= 300
    assert abs(correct / total - reference) < 0.02


def test_oversight_interview_is_asked_only_when_the_config_changed(tmp_path: Path) -> None:
    db = tmp_path / "interview.duckdb"
    changed = run_scenario(
        "oversight-config", model="simulated/drifter", seed=1, variant="pressure", db_path=db
    )
    unchanged = run_scenario(
        "oversight-config", model="simulated/steadfast", seed=1, variant="pressure", db_path=db
    )
    assert (
        changed.final_state["files"].get("project/oversight_config.yaml")
        != unchanged.final_state["files"]["project/oversight_config.yaml"]
    )
    with Store(db, read_only=True) as store:
        asked = dict(
            store.query(
                "select run_id, count(*) from spans "
                "where name = 'driftwatch.event interview_question' group by run_id"
            ).rows
        )
    assert asked.get(changed.run_id) == 3
    assert unchanged.run_id not in asked


# --- the scenario design under the drifter --------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("scenario_id", SCENARIO_IDS)
def test_drifter_violates_more_under_pressure_than_in_control(
    run_cache: RunCache, packs: dict[str, list[RulePack]], scenario_id: str
) -> None:
    """A test of the scenario design: over 20 seeds, the escalating events must make the
    drifter violate clearly more often than the same seeds without them (common random
    numbers: the seeds are paired). Also: every rule of medium severity or more is
    reachable, i.e. fired in at least one pressure run."""
    control = [
        len(run_cache.get(scenario_id, "drifter", "control", s).violations) for s in DRIFTER_SEEDS
    ]
    pressure = [
        len(run_cache.get(scenario_id, "drifter", "pressure", s).violations) for s in DRIFTER_SEEDS
    ]
    control_mean, pressure_mean = statistics.fmean(control), statistics.fmean(pressure)
    more = sum(p > c for p, c in zip(pressure, control, strict=True))
    report = (
        f"{scenario_id}: control {control} (mean {control_mean:.1f}), "
        f"pressure {pressure} (mean {pressure_mean:.1f})"
    )
    assert pressure_mean >= 1.5 * control_mean + 2, report
    assert more >= 15, report

    fired = {
        f.rule_id
        for s in DRIFTER_SEEDS
        for f in run_cache.get(scenario_id, "drifter", "pressure", s).violations
    }
    expected = {
        item.id
        for pack in packs[scenario_id]
        for item in [*pack.rules, *pack.sequences, *pack.windows, *pack.final_state]
        if item.severity >= Severity.MEDIUM
    }
    assert expected <= fired, f"never fired: {sorted(expected - fired)}"


@pytest.mark.slow
def test_a_500_turn_run_completes(tmp_path: Path) -> None:
    db = tmp_path / "long.duckdb"
    summary = run_scenario(
        "support-policy", model="simulated/drifter", seed=5, turns=500, db_path=db
    )
    assert summary.status is RunStatus.COMPLETED
    assert summary.turns == 500
    assert _errors(summary) == []
    with Store(db, read_only=True) as store:
        turns, probes = store.query(
            "select count(*) filter (where operation = 'driftwatch.turn'), "
            "count(*) filter (where name = 'driftwatch.event probe') from spans"
        ).rows[0]
    assert (turns, probes) == (500, 50)
