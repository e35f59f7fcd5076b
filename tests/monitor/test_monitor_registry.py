"""``@monitor`` records the registered name and creation arguments on every instance,
and findings carry them as ``monitor_spec``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from driftwatch.core import Finding, NotFoundError, Severity, SpanRecord
from driftwatch.monitor import BaseMonitor, RulePackMonitor, create_monitor, monitor
from driftwatch.monitor.registry import registered_monitors


@monitor("test_threshold")
class ThresholdMonitor(BaseMonitor):
    def __init__(self, limit: int, label: str = "tokens", **extra: Any) -> None:
        self.limit = limit
        self.label = label

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        return [
            self.finding(
                run_id=run_id,
                rule_id="over-limit",
                message=f"{self.label} over {self.limit}",
                severity=Severity.LOW,
                record=record,
            )
            for record in records
            if (record.input_tokens or 0) > self.limit
        ]


class _Plain(BaseMonitor):
    pass


@monitor("test_factory")
def plain_factory(path: Path, levels: Sequence[Severity] = (Severity.HIGH,)) -> BaseMonitor:
    return _Plain()


@monitor("test_child")
class ChildMonitor(ThresholdMonitor):
    def __init__(self, window: int = 3) -> None:
        super().__init__(limit=window * 10)


def _span(tokens: int) -> SpanRecord:
    return SpanRecord.create(
        trace_id="0" * 32,
        span_id="1" * 16,
        name="chat m",
        start_time_ns=0,
        end_time_ns=1,
        attributes={"gen_ai.usage.input_tokens": tokens, "driftwatch.run.id": "run-1"},
    )


def test_class_decorator_records_name_and_bound_arguments_with_defaults() -> None:
    created = ThresholdMonitor(10, extra_flag=True)
    assert created.name == "test_threshold"
    assert created.spec == {
        "name": "test_threshold",
        "args": {"limit": 10, "label": "tokens", "extra_flag": True},
    }


def test_findings_carry_the_monitor_spec() -> None:
    [finding] = ThresholdMonitor(limit=5, label="input").observe("run-1", [_span(8)])
    assert finding.monitor == "test_threshold"
    assert finding.monitor_spec == {
        "name": "test_threshold",
        "args": {"limit": 5, "label": "input"},
    }
    assert finding.message == "input over 5"


def test_factory_decorator_records_json_safe_arguments(tmp_path: Path) -> None:
    created = plain_factory(tmp_path / "x.yaml")
    assert created.name == "test_factory"
    assert created.spec == {
        "name": "test_factory",
        "args": {"path": str(tmp_path / "x.yaml"), "levels": [40]},
    }


def test_registered_subclass_records_its_own_name_and_arguments() -> None:
    created = ChildMonitor(window=2)
    assert created.spec == {"name": "test_child", "args": {"window": 2}}
    assert created.limit == 20


def test_create_monitor_rebuilds_from_a_spec() -> None:
    spec = ThresholdMonitor(limit=7).spec
    rebuilt = create_monitor(spec["name"], **spec["args"])
    assert isinstance(rebuilt, ThresholdMonitor)
    assert rebuilt.spec == spec


def test_rule_pack_monitor_is_registered_and_records_pack_paths(oversight_pack: Path) -> None:
    assert "rule_pack" in registered_monitors()
    created = create_monitor("rule_pack", packs=[str(oversight_pack)])
    assert isinstance(created, RulePackMonitor)
    assert created.spec == {"name": "rule_pack", "args": {"packs": [str(oversight_pack)]}}


def test_unknown_monitor_name_lists_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match=r"unknown monitor 'nope' \(known: .*rule_pack"):
        create_monitor("nope")


def test_unregistered_base_monitor_gets_a_default_spec_and_no_op_hooks() -> None:
    plain = _Plain()
    assert plain.spec == {"name": "_Plain", "args": {}}
    assert list(plain.observe("r", [])) == []
    final: Mapping[str, Any] = {"files": {}}
    assert list(plain.end_run("r", final)) == []


class _FakeEntryPoint:
    def __init__(self, name: str, obj: Any = None, error: Exception | None = None) -> None:
        self.name = name
        self._obj = obj
        self._error = error
        self.loads = 0

    def load(self) -> Any:
        self.loads += 1
        if self._error is not None:
            raise self._error
        return self._obj


def test_entry_points_load_once_lazily_and_a_broken_plugin_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from driftwatch.core import registry as core_registry
    from driftwatch.monitor import registry

    class PluginMonitor(BaseMonitor):
        pass

    good = _FakeEntryPoint("plugin_monitor", obj=PluginMonitor)
    broken = _FakeEntryPoint("broken_monitor", error=ImportError("missing dependency"))
    groups: list[str] = []

    def fake_entry_points(*, group: str) -> list[_FakeEntryPoint]:
        groups.append(group)
        return [good, broken]

    monkeypatch.setattr(core_registry, "entry_points", fake_entry_points)
    fresh = registry.Registry("monitor", registry.ENTRY_POINT_GROUP)
    fresh.register("local", ThresholdMonitor)
    assert isinstance(fresh.create("local", {"limit": 1}), ThresholdMonitor)
    assert groups == []  # a registered name needs no plugin scan
    created = fresh.create("plugin_monitor", {})
    assert created.name == "plugin_monitor"
    assert created.spec == {"name": "plugin_monitor", "args": {}}
    assert set(fresh.entries()) == {"local", "plugin_monitor"}
    with pytest.raises(NotFoundError):
        fresh.create("broken_monitor", {})
    assert groups == ["driftwatch.monitors"]
    assert (good.loads, broken.loads) == (1, 1)
