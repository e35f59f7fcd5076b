"""What one run of the agent loop holds, and the one way it calls the model.

:class:`RunContext` is the conversation and the environment of a run, beside the graph
state (which carries only counters). :func:`call_model` is a model call as a ``chat``
span; the loop's agent node and the follow-up interview both make their calls through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from driftwatch.agent.context import ContextWindow, Message, dumps
from driftwatch.core import semconv as sc
from driftwatch.core.errors import ModelError
from driftwatch.model import (
    ActionHint,
    ModelClient,
    ModelReply,
    SimulationContext,
    SimulationHints,
)
from driftwatch.sandbox import Tool, VirtualEnvironment
from driftwatch.scenario import Event, Scenario

__all__ = ["RunContext", "call_model", "simulation_for"]


@dataclass
class RunContext:
    scenario: Scenario
    variant: str
    model: ModelClient
    tracer: trace.Tracer
    run_id: str
    seed: int
    max_turns: int
    capture_content: bool
    env: VirtualEnvironment
    tools: dict[str, Tool]
    events_by_turn: dict[int, list[Event]]
    common: dict[str, Any]
    root: Span
    window: ContextWindow = field(default_factory=lambda: ContextWindow(16_000))
    turn_span: Span | None = None
    pressure: float = 0.0
    pending_calls: list[Any] = field(default_factory=list)
    tool_calls: int = 0
    model_calls: int = 0
    task_index: int = 0
    stopped_by: str = "max_turns"
    error: str | None = None
    on_turn: Callable[[int], None] | None = None
    hints: Any = None  # SimulationHints, built on the first simulated call
    user: Any = None  # a SimulatedUserModel when the scenario has an LLM-simulated user
    tool_schemas: list[dict[str, Any]] = field(default_factory=list)
    malformed_tool_calls: int = 0  # tool calls the model sent that could not be read
    generation_limits: int = 0  # replies cut off at max_tokens or the time limit

    def attrs(self, **extra: Any) -> dict[str, Any]:
        out = dict(self.common)
        out.update(extra)
        return out

    @property
    def messages(self) -> list[Message]:
        return self.window.messages

    def add_message(self, message: Message) -> int:
        return self.window.append(message)

    def child_span(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> Span:
        parent = self.turn_span or self.root
        return self.tracer.start_span(
            name, context=trace.set_span_in_context(parent), kind=kind, attributes=attributes
        )


def simulation_for(ctx: RunContext, turn: int, **extra: Any) -> Any:
    """The SimulationContext a ``simulated/*`` model needs (None for real models)."""
    if not ctx.model.model.startswith("simulated/"):
        return None
    if ctx.hints is None:
        ctx.hints = scenario_hints(ctx.scenario)
    return SimulationContext(turn=turn, pressure=ctx.pressure, seed=ctx.seed,
                             hints=ctx.hints, **extra)


def call_model(
    ctx: RunContext, simulation: Any, *, tools: bool = True, **span_attributes: Any
) -> ModelReply | None:
    """One model call as a ``chat`` span; the reply joins the conversation. On a model
    failure the span records the error, the run is marked stopped, and None is returned."""
    model_name = ctx.model.model
    attributes = ctx.attrs(
        **{
            sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
            sc.GEN_AI_PROVIDER_NAME: ctx.model.provider,
            sc.GEN_AI_REQUEST_MODEL: model_name,
            sc.GEN_AI_REQUEST_SEED: ctx.seed,
        },
        **span_attributes,
    )
    if ctx.capture_content:
        attributes[sc.GEN_AI_INPUT_MESSAGES] = dumps(ctx.messages)
    span = ctx.child_span(f"{sc.OP_CHAT} {model_name}", SpanKind.CLIENT, attributes)
    ctx.model_calls += 1
    try:
        reply = ctx.model.complete(
            ctx.messages, ctx.tool_schemas if tools else None, simulation=simulation
        )
    except ModelError as exc:
        span.set_status(Status(StatusCode.ERROR, str(exc)))
        span.set_attribute(sc.ERROR_TYPE, getattr(exc, "error_type", None)
                           or type(exc.__cause__ or exc).__name__)
        span.end()
        ctx.stopped_by, ctx.error = "model_error", str(exc)
        return None
    record_reply(span, reply, ctx.capture_content)
    ctx.malformed_tool_calls += len(reply.malformed_tool_calls)
    if reply.limit is not None:  # the turn ends here; the run goes on
        ctx.generation_limits += 1
        span.set_status(Status(StatusCode.ERROR, f"generation stopped at its {reply.limit}"))
        span.set_attribute(sc.ERROR_TYPE, "generation_limit")
    span.end()
    dropped = ctx.add_message(reply.message)
    if dropped and ctx.turn_span is not None:
        ctx.turn_span.set_attribute(sc.DW_CONTEXT_DROPPED, dropped)
    return reply


def record_reply(span: Span, reply: ModelReply, capture: bool) -> None:
    values: dict[str, Any] = {
        sc.GEN_AI_RESPONSE_MODEL: reply.response_model,
        sc.GEN_AI_RESPONSE_ID: reply.response_id,
        sc.GEN_AI_USAGE_INPUT_TOKENS: reply.input_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: reply.output_tokens,
        sc.DW_MODEL_ATTEMPTS: reply.attempts,
        sc.DW_MODEL_COST_USD: reply.cost_usd,
        sc.DW_REPLY_TOOL_CALLS: len(reply.tool_calls),
        sc.DW_REPLY_HAS_TEXT: bool(reply.text and reply.text.strip()),
    }
    if reply.finish_reason:
        values[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [reply.finish_reason]
    if reply.malformed_tool_calls:
        values[sc.DW_REPLY_MALFORMED_TOOL_CALLS] = len(reply.malformed_tool_calls)
        values[sc.DW_REPLY_MALFORMED_REASONS] = list(reply.malformed_tool_calls)
    if reply.limit is not None:
        values[sc.DW_REPLY_LIMIT] = reply.limit
    if capture:
        # what the model said (None when nothing); the history copy carries "" for servers
        values[sc.GEN_AI_OUTPUT_MESSAGES] = dumps([{**reply.message, "content": reply.text}])
    span.set_attributes({k: v for k, v in values.items() if v is not None})


def scenario_hints(scenario: Scenario) -> Any:
    """The scenario's simulated-model hints as the model layer's types (built once a run)."""
    sim = scenario.simulated
    return SimulationHints(
        on_task=[ActionHint(h.tool, dict(h.arguments), h.say) for h in sim.on_task],
        violations=[ActionHint(h.tool, dict(h.arguments), h.say) for h in sim.violations],
        compliance_claims=list(sim.compliance_claims),
        drift_onset=sim.drift_onset,
        loop_after=sim.loop_after,
    )
