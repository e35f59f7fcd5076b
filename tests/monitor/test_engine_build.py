"""build_engine: one configuration gives the same monitors to every caller that builds an
engine (a run, the collector in-process and in its monitor process, an import), and a
monitor registered with ``@monitor`` is switched on through the configuration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from driftwatch.alert import AlertConfig
from driftwatch.collector import Collector, CollectorConfig
from driftwatch.core import FrozenClock, SequentialIds, Severity
from driftwatch.core.records import Finding, SpanRecord
from driftwatch.importers import monitor_runs
from driftwatch.monitor import (
    DEFAULT_MONITOR_NAMES,
    BaseMonitor,
    EngineConfig,
    MonitorEngine,
    MonitorSpec,
    build_engine,
    build_monitors,
    monitor,
    resolve_packs,
)
from driftwatch.runner import run_scenario
from driftwatch.testing import RecordFactory

PACKS = ("oversight-config", "goal-guarding")


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[list[dict[str, Any]]]:
    """The specs of the monitors of every MonitorEngine made in this process."""
    specs: list[list[dict[str, Any]]] = []
    original = MonitorEngine.__init__

    def spy(self: MonitorEngine, monitors: Sequence[Any], **options: Any) -> None:
        specs.append([dict(item.spec) for item in monitors])
        original(self, monitors, **options)

    monkeypatch.setattr(MonitorEngine, "__init__", spy)
    return specs


def test_the_four_callers_build_the_same_monitors_for_the_same_packs(
        built: list[list[dict[str, Any]]], tmp_path: Path) -> None:
    expected = [dict(item.spec) for item in
                build_monitors(EngineConfig(packs=tuple(resolve_packs(PACKS))))]
    assert [spec["name"] for spec in expected] == list(DEFAULT_MONITOR_NAMES)
    built.clear()

    run_scenario("oversight-config", model="simulated/steadfast", turns=1,
                 packs=list(PACKS), db_path=tmp_path / "run.duckdb")
    monitor_runs([], list(PACKS))
    in_process = Collector(CollectorConfig(db=tmp_path / "a.duckdb", packs=PACKS,
                                           alerts=AlertConfig(), monitor_process=False))
    in_process.close()
    assert len(built) == 3  # the run, the import, the in-process collector
    child = Collector(CollectorConfig(db=tmp_path / "b.duckdb", packs=PACKS,
                                      alerts=AlertConfig(), monitor_process=True))
    try:
        child_specs = child.engine.monitor_specs  # type: ignore[union-attr]
    finally:
        child.close()
    assert [*built, child_specs] == [expected] * 4


@monitor("test_engine_build_marker")
class MarkerMonitor(BaseMonitor):
    """Reports each run's first span once, with its label."""

    def __init__(self, label: str = "marker") -> None:
        self.label = label
        self._seen: set[str] = set()

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        if run_id in self._seen:
            return ()
        self._seen.add(run_id)
        return [self.finding(run_id=run_id, rule_id="first-span", message=self.label,
                             severity=Severity.LOW, record=records[0])]

    def end_run(self, run_id: str, final_state: Mapping[str, Any] | None) -> Sequence[Finding]:
        self._seen.discard(run_id)
        return ()


def test_a_registered_monitor_is_switched_on_by_name_through_the_configuration() -> None:
    config = EngineConfig(monitors=(MonitorSpec("test_engine_build_marker", {"label": "hi"}),),
                          exclude=frozenset(DEFAULT_MONITOR_NAMES))
    factory = RecordFactory(run_id="run-1")
    with build_engine(config, ids=SequentialIds(), clock=FrozenClock()) as engine:
        assert [type(item) for item in engine.monitors] == [MarkerMonitor]
        engine.submit(factory.tool_call("read_file", {"path": "a"}, 1))
        engine.end_run("run-1")
        found = engine.findings("run-1")
    assert [(f.monitor, f.rule_id, f.message) for f in found] == [
        ("test_engine_build_marker", "first-span", "hi")]
    assert found[0].monitor_spec == {"name": "test_engine_build_marker",
                                     "args": {"label": "hi"}}


def test_the_defaults_come_after_each_other_and_the_named_monitors_after_them() -> None:
    config = EngineConfig(monitors=(MonitorSpec("test_engine_build_marker"),),
                          exclude=frozenset({"goal_drift"}))
    names = [item.spec["name"] for item in build_monitors(config)]
    assert names == ["drift", "loop", "say_do", "test_engine_build_marker"]


def test_an_unknown_name_in_exclude_or_options_is_refused() -> None:
    with pytest.raises(ValueError, match="exclude: nope"):
        build_monitors(EngineConfig(exclude=frozenset({"nope"})))
    with pytest.raises(ValueError, match="options: lop"):
        build_monitors(EngineConfig(options={"lop": {"min_repeats": 2}}))


def test_options_reach_the_monitor_of_that_name() -> None:
    (loop,) = build_monitors(EngineConfig(
        options={"loop": {"min_repeats": 4}},
        exclude=frozenset(DEFAULT_MONITOR_NAMES) - {"loop"}))
    assert loop.spec["args"]["min_repeats"] == 4
