"""Monitors: the contract, the registry, rule packs, drift, goal drift, loop, say–do and
LLM-judge monitors, and the live engine."""

from driftwatch.monitor.base import (
    MONITOR_ERROR_SEVERITY,
    BaseMonitor,
    BatchObserver,
    DeferredFindings,
    FindingObserver,
    Monitor,
    error_finding,
)
from driftwatch.monitor.drift.adherence import DriftMonitor
from driftwatch.monitor.drift.goal import GoalDriftMonitor
from driftwatch.monitor.drift.repetition import RepetitionMonitor
from driftwatch.monitor.drift.sandbagging import SandbaggingMonitor
from driftwatch.monitor.engine.build import EngineConfig, MonitorSpec, build_engine, build_monitors
from driftwatch.monitor.engine.defaults import DEFAULT_MONITOR_NAMES, default_monitors
from driftwatch.monitor.engine.live import FindingStore, MonitorEngine
from driftwatch.monitor.evidence import record_columns, safe_format
from driftwatch.monitor.judge.judge import JudgeClient, JudgeMonitor
from driftwatch.monitor.registry import (
    create_monitor,
    monitor,
    registered_monitors,
)
from driftwatch.monitor.rules.rulepack import (
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
from driftwatch.monitor.rules.sequence_spec import SequencePattern, SequenceRule
from driftwatch.monitor.rules.window_spec import WindowPer, WindowRule
from driftwatch.monitor.saydo.gap import SayDoMonitor

__all__ = [
    "DEFAULT_MONITOR_NAMES",
    "MONITOR_ERROR_SEVERITY",
    "BaseMonitor",
    "BatchObserver",
    "DeferredFindings",
    "DriftMonitor",
    "EngineConfig",
    "FinalStateCheck",
    "FindingObserver",
    "FindingStore",
    "GoalDriftMonitor",
    "JudgeClient",
    "JudgeMonitor",
    "Monitor",
    "MonitorEngine",
    "MonitorSpec",
    "RepetitionMonitor",
    "Rule",
    "RulePack",
    "RulePackMonitor",
    "SandbaggingMonitor",
    "SayDoMonitor",
    "SequencePattern",
    "SequenceRule",
    "WindowPer",
    "WindowRule",
    "build_engine",
    "build_monitors",
    "builtin_pack_paths",
    "create_monitor",
    "default_monitors",
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
