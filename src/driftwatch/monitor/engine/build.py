"""The one way to build a monitor engine: an :class:`EngineConfig` in, a
:class:`~driftwatch.monitor.engine.live.MonitorEngine` out.

Every caller — a run (``driftwatch.runner``), the collector in its own process or in a
monitor child process, an import of other tools' logs — describes what it wants as an
``EngineConfig`` and calls :func:`build_engine`, so the same configuration gives the
same monitors, in the same order, everywhere. Monitors are created through the monitor
registry by name (``create_monitor``), so a monitor registered with ``@monitor("name")``
is switched on with ``EngineConfig(monitors=(MonitorSpec("name", {...}),))``::

    engine = build_engine(EngineConfig(packs=tuple(resolve_packs(["oversight"]))),
                          store=store, sinks=[ConsoleSink()])

An ``EngineConfig`` holds no live objects but the rule packs and the judge, so it can be
sent to another process (the collector's monitor process builds its engine from one);
the store, sinks, ids and clock are what the caller wires in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# imported for their @monitor registrations, which create_monitor looks up by name
import driftwatch.monitor.drift.adherence
import driftwatch.monitor.drift.goal
import driftwatch.monitor.drift.repetition
import driftwatch.monitor.rules.rulepack
import driftwatch.monitor.saydo.gap  # noqa: F401
from driftwatch.core.clock import SYSTEM_CLOCK, Clock
from driftwatch.core.ids import DEFAULT_IDS, IdSource
from driftwatch.core.protocols import FindingSink
from driftwatch.monitor.base import Monitor
from driftwatch.monitor.engine.delivery import FindingStore, close_components
from driftwatch.monitor.engine.live import MonitorEngine
from driftwatch.monitor.judge.judge import JudgeClient, JudgeMonitor
from driftwatch.monitor.registry import create_monitor
from driftwatch.monitor.rules.pack import RulePack
from driftwatch.monitor.turngroup import SharesTurns, TurnGrouping

__all__ = ["DEFAULT_MONITOR_NAMES", "EngineConfig", "MonitorSpec", "build_engine",
           "build_monitors"]

DEFAULT_MONITOR_NAMES = ("rule_pack", "drift", "goal_drift", "loop", "say_do")
"""The registered monitors every engine gets (unless excluded), in this order; the rule
packs' only when there are packs."""

_OPTIONAL_NAMES = ("judge",)


@dataclass(frozen=True, slots=True)
class MonitorSpec:
    """A registered monitor and its creation arguments (what ``@monitor`` records as a
    finding's ``monitor_spec``)."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """What an engine runs and how.

    - ``packs``: loaded rule packs, pack ids or paths; none means no rule-pack monitor.
    - ``judge``: a model string, a ``complete``-able client or a ready
      :class:`JudgeMonitor`; None means no LLM judge.
    - ``embedding_model``: switches goal drift to embeddings.
    - ``options``: keyword arguments per default monitor, by registered name
      (``{"loop": {"min_repeats": 4}, "judge": {"every_turns": 3}}``).
    - ``exclude``: default monitors to leave out, by registered name.
    - ``monitors``: more registered monitors, after the defaults (a scenario's own).
    - the rest are :class:`MonitorEngine` settings: micro-batch size and queue bound;
      ``keep_findings=False`` for a long-lived engine that only stores and sends;
      ``stable_finding_ids`` for one that may evaluate a run again (the collector);
      ``close_components`` when the engine owns its monitors and sinks.
    """

    packs: tuple[RulePack | str | Path, ...] = ()
    judge: str | JudgeClient | JudgeMonitor | None = None
    embedding_model: str | None = None
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    exclude: frozenset[str] = frozenset()
    monitors: tuple[MonitorSpec, ...] = ()
    max_batch: int = 512
    max_pending: int = 100_000
    keep_findings: bool = True
    stable_finding_ids: bool = False
    close_components: bool = False


def build_monitors(config: EngineConfig) -> list[Monitor]:
    """The monitors ``config`` selects, created through the registry: the defaults in
    :data:`DEFAULT_MONITOR_NAMES` order, the judge, then ``config.monitors``. The
    defaults that read turns share one :class:`TurnGrouping` (each run is grouped into
    turns once), so call them as the engine does: all with the same record list for a
    run in a round (a ready ``JudgeMonitor`` keeps its own grouping). Raises
    ``ValueError`` for an unknown name in ``exclude`` or ``options``, what the monitors
    raise on bad options, :class:`NotFoundError` for an unregistered monitor; monitors
    already made are closed first."""
    _check_names(config.exclude, "exclude")
    _check_names(config.options, "options")
    monitors: list[Monitor] = []
    try:
        for name in DEFAULT_MONITOR_NAMES:
            args = dict(config.options.get(name) or {})
            if name in config.exclude or (name == "rule_pack" and not config.packs):
                continue
            if name == "rule_pack":
                args["packs"] = config.packs
            if name == "goal_drift" and config.embedding_model:
                args.setdefault("embedding_model", config.embedding_model)
            monitors.append(create_monitor(name, **args))
        grouping = TurnGrouping()
        for item in monitors:
            if isinstance(item, SharesTurns):
                item.share_turns(grouping)
        if config.judge is not None and "judge" not in config.exclude:
            monitors.append(_judge(config.judge, config.options.get("judge"), grouping))
        monitors += [create_monitor(spec.name, **spec.args) for spec in config.monitors]
    except BaseException:
        close_components(monitors, ())
        raise
    return monitors


def build_engine(
    config: EngineConfig,
    *,
    store: FindingStore | None = None,
    sinks: Sequence[FindingSink] = (),
    ids: IdSource = DEFAULT_IDS,
    clock: Clock = SYSTEM_CLOCK,
    monitors: Sequence[Monitor] | None = None,
) -> MonitorEngine:
    """An engine running :func:`build_monitors` ``(config)`` — or ready ``monitors``
    instead (tests, benchmarks) — with ``config``'s settings, writing findings to
    ``store`` and ``sinks``."""
    built = list(monitors) if monitors is not None else build_monitors(config)
    try:
        return MonitorEngine(
            built, store=store, sinks=sinks, ids=ids, clock=clock,
            max_batch=config.max_batch, max_pending=config.max_pending,
            keep_findings=config.keep_findings, stable_finding_ids=config.stable_finding_ids,
            close_components=config.close_components,
        )
    except BaseException:
        if monitors is None:  # made here: nobody else can close them
            close_components(built, ())
        raise


def _check_names(names: Collection[str], what: str) -> None:
    unknown = set(names) - set(DEFAULT_MONITOR_NAMES) - set(_OPTIONAL_NAMES)
    if unknown:
        raise ValueError(f"unknown monitor names in {what}: {', '.join(sorted(unknown))}")


def _judge(
    judge: str | JudgeClient | JudgeMonitor,
    options: Mapping[str, Any] | None,
    grouping: TurnGrouping,
) -> Monitor:
    """The judge to add: a ready one as given (it keeps its own turn grouping), else a
    new registered one reading ``grouping``."""
    if isinstance(judge, JudgeMonitor):
        return judge
    source = {"model": judge} if isinstance(judge, str) else {"client": judge}
    made = create_monitor("judge", **source, **dict(options or {}))
    if isinstance(made, SharesTurns):
        made.share_turns(grouping)
    return made
