"""The monitors a run gets unless told otherwise, as keyword arguments (the same as
``build_monitors(EngineConfig(...))``, see :mod:`driftwatch.monitor.engine.build`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from driftwatch.monitor.base import Monitor
from driftwatch.monitor.engine.build import DEFAULT_MONITOR_NAMES, EngineConfig, build_monitors
from driftwatch.monitor.judge.judge import JudgeClient, JudgeMonitor
from driftwatch.monitor.rules.pack import RulePack

__all__ = ["DEFAULT_MONITOR_NAMES", "default_monitors"]


def default_monitors(
    packs: Sequence[RulePack | str | Path] = (),
    *,
    judge: str | JudgeClient | JudgeMonitor | None = None,
    judge_options: Mapping[str, Any] | None = None,
    embedding_model: str | None = None,
    drift_options: Mapping[str, Any] | None = None,
    goal_options: Mapping[str, Any] | None = None,
    loop_options: Mapping[str, Any] | None = None,
    say_do_options: Mapping[str, Any] | None = None,
    exclude: Collection[str] = (),
) -> list[Monitor]:
    """Rule packs + adherence drift + goal drift + loop + say–do, and the LLM judge only
    when ``judge`` is given (a model string, a ``complete``-able client, or a ready
    :class:`JudgeMonitor`). Hand the list to one
    :class:`~driftwatch.monitor.engine.live.MonitorEngine`: the drift monitor reads the rule
    packs' violations through the engine. The monitors built here that read turns share
    one :class:`~driftwatch.monitor.turngroup.TurnGrouping` (each run is grouped into
    turns once), so call them as the engine does: every one of them with the same record
    list for a run in a round (a ready ``JudgeMonitor`` keeps its own grouping).

    ``packs`` are loaded packs, pack ids or paths; none means no rule-pack monitor (and
    so no violations for the drift monitor to follow). ``embedding_model`` switches goal
    drift to embeddings. ``*_options`` are keyword arguments of each monitor; ``exclude``
    drops monitors by registered name (``DEFAULT_MONITOR_NAMES``). Raises what the
    monitors raise on bad options (``ValueError``, ``UsageError`` for a missing pack).
    """
    options = {name: value for name, value in (
        ("judge", judge_options), ("drift", drift_options), ("goal_drift", goal_options),
        ("loop", loop_options), ("say_do", say_do_options)) if value}
    return build_monitors(EngineConfig(packs=tuple(packs), judge=judge,
                                       embedding_model=embedding_model, options=options,
                                       exclude=frozenset(exclude)))
