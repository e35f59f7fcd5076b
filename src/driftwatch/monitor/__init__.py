"""Monitors: the contract, the registry, rule packs and the live engine."""

from driftwatch.monitor.base import (
    MONITOR_ERROR_SEVERITY,
    BaseMonitor,
    BatchObserver,
    Monitor,
    error_finding,
)
from driftwatch.monitor.engine import FindingStore, MonitorEngine
from driftwatch.monitor.evidence import record_columns, safe_format
from driftwatch.monitor.registry import (
    create_monitor,
    monitor,
    registered_monitors,
)
from driftwatch.monitor.rulepack import (
    FinalStateCheck,
    Rule,
    RulePack,
    RulePackMonitor,
    builtin_pack_paths,
    discover_packs,
    load_rule_pack,
    load_rule_packs,
    resolve_packs,
)
from driftwatch.monitor.sequence_spec import SequencePattern, SequenceRule
from driftwatch.monitor.window_spec import WindowPer, WindowRule

__all__ = [
    "MONITOR_ERROR_SEVERITY",
    "BaseMonitor",
    "BatchObserver",
    "FinalStateCheck",
    "FindingStore",
    "Monitor",
    "MonitorEngine",
    "Rule",
    "RulePack",
    "RulePackMonitor",
    "SequencePattern",
    "SequenceRule",
    "WindowPer",
    "WindowRule",
    "builtin_pack_paths",
    "create_monitor",
    "discover_packs",
    "error_finding",
    "load_rule_pack",
    "load_rule_packs",
    "monitor",
    "record_columns",
    "registered_monitors",
    "resolve_packs",
    "safe_format",
]
