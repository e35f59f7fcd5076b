"""One run, end to end: scenario → agent loop → spans → store, monitors → findings → sinks.

:func:`run_scenario` is the library call behind ``driftwatch run``: it writes to a local
:class:`~driftwatch.store.Store`. :func:`execute_run` is the same run aimed at any
:class:`RunTarget`; the batch workers aim it at an in-memory recorder and ship what it
collected to the batch's single writer (they never open the database file).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from driftwatch.agent import run_agent
from driftwatch.core import (
    DEFAULT_IDS,
    SYSTEM_CLOCK,
    Clock,
    Finding,
    FindingSink,
    IdSource,
    RunInfo,
    RunStatus,
)
from driftwatch.core.errors import UsageError
from driftwatch.model import ModelClient
from driftwatch.monitor import EngineConfig, MonitorSpec, build_engine, resolve_packs
from driftwatch.runner.abandoned import close_abandoned_runs, process_marker
from driftwatch.scenario import Scenario, load_scenario
from driftwatch.store import Store
from driftwatch.tracing import StoreWriter, setup_tracing

if TYPE_CHECKING:
    from driftwatch.monitor import RulePack
    from driftwatch.monitor.engine.delivery import FindingStore


@dataclass
class RunSummary:
    run_id: str
    trace_id: str | None
    scenario_id: str
    variant: str
    model: str
    seed: int
    status: RunStatus
    turns: int
    tool_calls: int
    model_calls: int
    stopped_by: str
    error: str | None
    findings: list[Finding]
    db_path: str
    wall_time_s: float
    final_state: dict[str, object] = field(default_factory=dict)
    malformed_tool_calls: int = 0
    generation_limits: int = 0

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.kind.value == "violation"]


class RunTarget(Protocol):
    """Where one run's records go. ``consumers`` receive every span (as the tracing
    pipeline's ``RecordConsumer``s); the monitor engine writes findings to
    ``finding_store`` when it is not None; ``record_run`` is called with the run row when
    it starts and when it ends (from the calling thread)."""

    @property
    def consumers(self) -> Sequence[Any]: ...

    @property
    def finding_store(self) -> FindingStore | None: ...

    def record_run(self, info: RunInfo) -> None: ...


class _StoreTarget:
    """A local store: spans through a :class:`StoreWriter`, findings and runs directly."""

    def __init__(self, store: Any, extra: Sequence[object], clock: Clock = SYSTEM_CLOCK) -> None:
        close_abandoned_runs(store, clock.now())  # earlier runs whose process was killed
        self._store = store
        self.consumers: Sequence[Any] = [StoreWriter(store), *extra]
        self.finding_store: FindingStore | None = store

    def record_run(self, info: RunInfo) -> None:
        if info.status == RunStatus.RUNNING:  # so a later run can tell if this one was killed
            info = replace(info, attributes={**info.attributes, **process_marker()})
        self._store.upsert_run(info)


def run_scenario(
    scenario: Scenario | str | Path,
    *,
    model: str,
    seed: int = 0,
    variant: str | None = None,
    turns: int | None = None,
    db_path: str | Path = ":memory:",
    sinks: Sequence[FindingSink] = (),
    packs: Sequence[str] | None = None,
    batch_id: str | None = None,
    capture_content: bool = True,
    ids: IdSource = DEFAULT_IDS,
    clock: Clock = SYSTEM_CLOCK,
    on_turn: Callable[[int], None] | None = None,
    model_options: dict[str, object] | None = None,
    otlp: bool | None = None,
    consumers: Sequence[object] = (),
) -> RunSummary:
    """Run ``scenario`` once with ``model`` and store everything in ``db_path``.

    ``consumers`` receive every span record too (e.g. a ``RecordingConsumer`` in tests).
    Raises :class:`UsageError` for a bad variant or turn count; a model that keeps failing
    ends the run with status ``errored`` instead of raising.
    """
    spec = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    # the model, its options (and for llamacpp/* the extra and the file) are checked
    # before the database is created or touched
    ModelClient(model, seed=seed, **(model_options or {}))  # type: ignore[arg-type]
    store = Store(db_path)
    try:
        return execute_run(
            spec, _StoreTarget(store, consumers, clock), model=model, seed=seed, variant=variant,
            turns=turns, sinks=sinks, packs=packs, batch_id=batch_id,
            capture_content=capture_content, ids=ids, clock=clock, on_turn=on_turn,
            model_options=model_options, otlp=otlp, where=str(db_path),
        )
    finally:
        store.close()


def execute_run(
    spec: Scenario,
    target: RunTarget,
    *,
    model: str,
    seed: int = 0,
    variant: str | None = None,
    turns: int | None = None,
    sinks: Sequence[FindingSink] = (),
    packs: Sequence[str] | None = None,
    batch_id: str | None = None,
    run_id: str | None = None,
    capture_content: bool = True,
    ids: IdSource = DEFAULT_IDS,
    clock: Clock = SYSTEM_CLOCK,
    on_turn: Callable[[int], None] | None = None,
    model_options: dict[str, object] | None = None,
    otlp: bool | None = None,
    resolve: Callable[[Sequence[str]], Sequence[RulePack]] | None = None,
    where: str = "",
) -> RunSummary:
    """Run ``spec`` once, sending its records to ``target``; see :func:`run_scenario`.

    ``run_id`` defaults to a new id (batches pass one derived from their cell);
    ``resolve`` turns pack names into packs (batch workers pass a cached resolver).
    An exception from the agent loop (or from ``on_turn``) marks the run ``failed``
    through ``target.record_run`` and is re-raised.
    """
    variant_name = variant or spec.default_variant
    if variant_name not in spec.variants:
        known = ", ".join(sorted(spec.variants))
        raise UsageError(f"scenario {spec.id!r} has no variant {variant_name!r} (known: {known})")
    if turns is not None and turns < 1:
        raise UsageError("--turns must be at least 1")
    pack_names = list(packs) if packs is not None else list(spec.rule_packs)
    resolver = resolve or resolve_packs
    config = EngineConfig(
        packs=tuple(resolver(pack_names)) if pack_names else (),
        monitors=tuple(MonitorSpec(ref.name, ref.args) for ref in spec.monitors))
    engine = build_engine(config, store=target.finding_store, sinks=sinks, ids=ids,
                          clock=clock)
    try:
        client = ModelClient(model, seed=seed, **(model_options or {}))  # type: ignore[arg-type]
        started = time.perf_counter()
        provider = setup_tracing([*target.consumers, engine], otlp=otlp)
        run_id = run_id or ids.run_id()
        info = RunInfo(
            run_id=run_id, trace_id=None, scenario_id=spec.id, variant=variant_name,
            model=model, seed=seed, status=RunStatus.RUNNING, started_at=clock.now(),
            batch_id=batch_id,
        )
        target.record_run(info)
        try:
            result = run_agent(
                spec, model=client, tracer=provider.get_tracer("driftwatch"), run_id=run_id,
                seed=seed, variant=variant_name, max_turns=turns, batch_id=batch_id,
                capture_content=capture_content, on_turn=on_turn,
            )
        except BaseException as exc:
            provider.force_flush()
            error = ("interrupted" if isinstance(exc, KeyboardInterrupt)
                     else f"{type(exc).__name__}: {exc}")
            target.record_run(replace(info, status=RunStatus.FAILED, ended_at=clock.now(),
                                      error=error))
            provider.shutdown()
            raise
        provider.force_flush()
        engine.end_run(run_id, result.final_state)
        findings = engine.findings(run_id)
        status = RunStatus.ERRORED if result.error else RunStatus.COMPLETED
        target.record_run(
            replace(info, trace_id=result.trace_id, status=status, turns=result.turns,
                     ended_at=clock.now(), error=result.error,
                     attributes={"stopped_by": result.stopped_by,
                                 "tool_calls": result.tool_calls,
                                 "model_calls": result.model_calls,
                                 "malformed_tool_calls": result.malformed_tool_calls,
                                 "generation_limits": result.generation_limits})
        )
        provider.shutdown()
    finally:
        engine.close()  # already closed with the tracing pipeline, unless it failed first
        for monitor in engine.monitors:  # the judge's threads, the rule packs' connections
            close = getattr(monitor, "close", None)
            if callable(close):
                close()
    return RunSummary(
        run_id=run_id, trace_id=result.trace_id, scenario_id=spec.id, variant=variant_name,
        model=model, seed=seed, status=status, turns=result.turns,
        tool_calls=result.tool_calls, model_calls=result.model_calls,
        stopped_by=result.stopped_by, error=result.error, findings=findings,
        db_path=where, wall_time_s=time.perf_counter() - started,
        final_state=result.final_state, malformed_tool_calls=result.malformed_tool_calls,
        generation_limits=result.generation_limits,
    )
