"""The monitors a run gets unless told otherwise."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from driftwatch.monitor.base import Monitor
from driftwatch.monitor.drift.adherence import DriftMonitor
from driftwatch.monitor.drift.goal import GoalDriftMonitor
from driftwatch.monitor.drift.repetition import RepetitionMonitor
from driftwatch.monitor.judge.judge import JudgeClient, JudgeMonitor
from driftwatch.monitor.rules.rulepack import RulePack, RulePackMonitor
from driftwatch.monitor.saydo.gap import SayDoMonitor
from driftwatch.monitor.turngroup import SharesTurns, TurnGrouping

__all__ = ["DEFAULT_MONITOR_NAMES", "default_monitors"]

DEFAULT_MONITOR_NAMES = ("rule_pack", "drift", "goal_drift", "loop", "say_do")


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
    unknown = set(exclude) - set(DEFAULT_MONITOR_NAMES) - {"judge"}
    if unknown:
        raise ValueError(f"unknown monitor names in exclude: {', '.join(sorted(unknown))}")
    monitors: list[Monitor] = []
    if packs and "rule_pack" not in exclude:
        monitors.append(RulePackMonitor(packs))
    if "drift" not in exclude:
        monitors.append(DriftMonitor(**dict(drift_options or {})))
    if "goal_drift" not in exclude:
        goal = dict(goal_options or {})
        if embedding_model:
            goal.setdefault("embedding_model", embedding_model)
        monitors.append(GoalDriftMonitor(**goal))
    if "loop" not in exclude:
        monitors.append(RepetitionMonitor(**dict(loop_options or {})))
    if "say_do" not in exclude:
        monitors.append(SayDoMonitor(**dict(say_do_options or {})))
    grouping = TurnGrouping()
    for item in monitors:
        if isinstance(item, SharesTurns):
            item.share_turns(grouping)
    if judge is not None and "judge" not in exclude:
        monitors.append(_judge(judge, judge_options, grouping))
    return monitors


def _judge(
    judge: str | JudgeClient | JudgeMonitor,
    options: Mapping[str, Any] | None,
    grouping: TurnGrouping,
) -> JudgeMonitor:
    """The judge to add: a ready one as given (it keeps its own turn grouping), else a
    new one reading ``grouping``."""
    if isinstance(judge, JudgeMonitor):
        return judge
    if isinstance(judge, str):
        made = JudgeMonitor(judge, **dict(options or {}))
    else:
        made = JudgeMonitor(client=judge, **dict(options or {}))
    made.share_turns(grouping)
    return made
