"""The agent loop, as a langgraph graph: environment → agent → tools → environment …

Each turn: the environment node closes the previous turn's span, opens the next, and
injects the events scheduled for it; the agent node makes one model call; the tools node
executes the calls it asked for. The run ends at ``max_turns``, when the agent calls a
tool that ends the run, or when the model fails for good.

This module is the only langgraph importer (imported when a graph is built). The
conversation and the environment live in a :class:`RunContext` beside the graph state,
which carries only counters: the graph decides *what runs next*, the context holds data.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from driftwatch.agent.context import ContextWindow, dumps
from driftwatch.agent.interview import run_interview
from driftwatch.agent.state import RunContext, call_model, simulation_for
from driftwatch.agent.user import user_model_for
from driftwatch.core import semconv as sc
from driftwatch.model import ModelClient
from driftwatch.sandbox import ProcessSandbox, VirtualEnvironment, get_tools, run_tool
from driftwatch.scenario import Event, Scenario


class LoopState(TypedDict):
    turn: int
    done: bool


@dataclass
class AgentResult:
    run_id: str
    trace_id: str
    turns: int
    tool_calls: int
    model_calls: int
    stopped_by: str  # max_turns | agent_done | model_error
    error: str | None
    initial_state: dict[str, Any]
    final_state: dict[str, Any]
    malformed_tool_calls: int = 0
    generation_limits: int = 0


def _format_event(event: Event) -> str:
    label = event.kind.replace("_", " ").upper()
    sender = f" from {event.sender}" if event.sender else ""
    return f"[{label}{sender}] {event.content}".strip()


def _environment(ctx: RunContext, state: LoopState) -> LoopState:
    if ctx.turn_span is not None:
        ctx.turn_span.end()
        ctx.turn_span = None
        if ctx.on_turn is not None:
            ctx.on_turn(state["turn"])
    turn = state["turn"] + 1
    if state["done"] or turn > ctx.max_turns:
        return {"turn": state["turn"], "done": True}
    ctx.env.turn = turn
    ctx.common[sc.DW_TURN] = turn
    day = ctx.scenario.sim_day(turn)
    if day is not None:
        ctx.common[sc.DW_SIM_DAY] = day
        ctx.env.records["day"] = day
    ctx.turn_span = ctx.tracer.start_span(
        sc.SPAN_TURN,
        context=trace.set_span_in_context(ctx.root),
        attributes=ctx.attrs(**{sc.GEN_AI_OPERATION_NAME: sc.OP_TURN}),
    )
    if turn == 1:
        ctx.add_message({"role": "user", "content": ctx.scenario.first_message})
        if ctx.user is not None:  # a user model speaks: every user message is an event
            _user_message_span(ctx, ctx.scenario.first_message)
    elif not ctx.pending_calls and ctx.messages and ctx.messages[-1].get("role") == "assistant":
        # the agent answered without acting: hand it the next request
        _next_user_message(ctx)
    for event in ctx.events_by_turn.get(turn, ()):
        _deliver(ctx, event, turn)
    ctx.pending_calls = []
    return {"turn": turn, "done": False}


def _merge_records(records: dict[str, Any], update: dict[str, Any]) -> None:
    """Lists are appended to, everything else replaced."""
    for key, value in update.items():
        if isinstance(value, list) and isinstance(records.get(key), list):
            records[key].extend(value)
        else:
            records[key] = value


def _next_user_message(ctx: RunContext) -> None:
    """The agent answered without acting: the (simulated) user speaks next."""
    if ctx.user is not None:
        text = ctx.user.reply(ctx)
        _user_message_span(ctx, text)
    elif ctx.scenario.tasks:
        text = ctx.scenario.tasks[ctx.task_index % len(ctx.scenario.tasks)]
        ctx.task_index += 1
    else:
        text = ctx.scenario.continue_message
    ctx.add_message({"role": "user", "content": text})


def _user_message_span(ctx: RunContext, text: str) -> None:
    span = ctx.child_span(f"{sc.SPAN_EVENT_PREFIX} user_message", SpanKind.INTERNAL,
                          ctx.attrs(**{sc.GEN_AI_OPERATION_NAME: sc.OP_EVENT,
                                       sc.DW_EVENT_KIND: "user_message"}))
    if ctx.capture_content:
        span.set_attribute(sc.DW_EVENT_CONTENT, text)
    span.end()


def _deliver(ctx: RunContext, event: Event, turn: int) -> None:
    ctx.pressure += event.pressure
    text = _format_event(event)
    if event.kind == "email":
        mail = ctx.env.receive(event.sender or "unknown", event.subject or "(no subject)",
                               event.content)
        text = (f"[NEW EMAIL id {mail.id} from {mail.sender}] Subject: {mail.subject}\n"
                f"{event.content}")
    attributes = ctx.attrs(
        **{
            sc.GEN_AI_OPERATION_NAME: sc.OP_EVENT,
            sc.DW_EVENT_KIND: event.kind,
            sc.DW_EVENT_PRESSURE: event.pressure,
        }
    )
    if ctx.capture_content:
        attributes[sc.DW_EVENT_CONTENT] = text
    span = ctx.child_span(f"{sc.SPAN_EVENT_PREFIX} {event.kind}", SpanKind.INTERNAL, attributes)
    if event.files:
        ctx.env.plant(event.files)
        span.set_attribute("driftwatch.event.files", [f.path for f in event.files])
    if event.records:
        _merge_records(ctx.env.records, copy.deepcopy(event.records))
    if event.content:
        ctx.add_message({"role": "user", "content": text})
    span.end()


def _agent(ctx: RunContext, state: LoopState) -> LoopState:
    turn = state["turn"]
    reply = call_model(ctx, simulation_for(ctx, turn))
    if reply is None:
        return {"turn": turn, "done": True}
    ctx.pending_calls = list(reply.tool_calls)
    return {"turn": turn, "done": False}


def _tools(ctx: RunContext, state: LoopState) -> LoopState:
    done = False
    for call in ctx.pending_calls:
        attributes = ctx.attrs(
            **{
                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                sc.GEN_AI_TOOL_NAME: call.name,
                sc.GEN_AI_TOOL_CALL_ID: call.id,
                sc.GEN_AI_TOOL_TYPE: "function",
                sc.GEN_AI_TOOL_CALL_ARGUMENTS: dumps(call.arguments),
            }
        )
        span = ctx.child_span(f"{sc.OP_EXECUTE_TOOL} {call.name}", SpanKind.INTERNAL, attributes)
        tamper_mark = len(ctx.env.tamper_events)
        result = run_tool(ctx.env, ctx.tools, call.name, call.arguments)
        ctx.tool_calls += 1
        _record_tamper(span, ctx.env.tamper_events[tamper_mark:])
        if ctx.capture_content:
            span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, result.text)
        if not result.ok:
            span.set_status(Status(StatusCode.ERROR, result.text[:200]))
            span.set_attribute(sc.ERROR_TYPE, "tool_error")
        span.end()
        ctx.add_message({"role": "tool", "tool_call_id": call.id, "content": result.text})
        if result.ends_run:
            done = True
            ctx.stopped_by = "agent_done"
    return {"turn": state["turn"], "done": done}


def _record_tamper(span: trace.Span, events: list[dict[str, Any]]) -> None:
    """Attempts to change read-only files (refused or undone) stay on the tool's span."""
    if not events:
        return
    for event in events:
        span.add_event(sc.EVENT_TAMPER, {sc.DW_TAMPER_PATH: event["path"],
                                         sc.DW_TAMPER_ACTION: event["action"]})
    span.set_attribute(sc.DW_TAMPER_PATHS, sorted({event["path"] for event in events}))


def build_graph(ctx: RunContext) -> Any:
    """Compile the loop for one run (the nodes close over its context)."""
    from langgraph.graph import END, START, StateGraph  # start-up: 1 s to import, runs only

    graph = StateGraph(LoopState)
    graph.add_node("environment", lambda state: _environment(ctx, state))
    graph.add_node("agent", lambda state: _agent(ctx, state))
    graph.add_node("tools", lambda state: _tools(ctx, state))
    graph.add_edge(START, "environment")
    graph.add_conditional_edges(
        "environment", lambda state: END if state["done"] else "agent", ["agent", END]
    )
    graph.add_conditional_edges(
        "agent",
        lambda state: "environment" if state["done"] or not ctx.pending_calls else "tools",
        ["tools", "environment"],
    )
    graph.add_edge("tools", "environment")
    return graph.compile()


def run_agent(
    scenario: Scenario,
    *,
    model: ModelClient,
    tracer: trace.Tracer,
    run_id: str,
    seed: int,
    variant: str | None = None,
    max_turns: int | None = None,
    batch_id: str | None = None,
    capture_content: bool = True,
    interview: bool = True,
    on_turn: Callable[[int], None] | None = None,
) -> AgentResult:
    """Run one scenario to its end, then its follow-up interview (if it has one and
    ``interview`` is true); every step becomes a span under one root span.

    Raises ``KeyError`` for an unknown variant and :class:`SandboxError` when the scenario
    needs the process sandbox and bubblewrap is missing — both before any span starts.
    A model that keeps failing ends the run (``stopped_by='model_error'``) instead.
    """
    variant_name = variant or scenario.default_variant
    scenario.variant(variant_name)  # raises KeyError naming the known variants
    turns = max_turns or scenario.max_turns
    tools = {t.name: t for t in get_tools(scenario.tools)}
    env = VirtualEnvironment.from_planted(scenario.files)
    env.records = copy.deepcopy(scenario.records)
    if "bash" in tools:
        env.process = ProcessSandbox()  # refuses to start without bubblewrap
    initial = env.snapshot()
    common: dict[str, Any] = {
        sc.DW_RUN_ID: run_id,
        sc.DW_SCENARIO_ID: scenario.id,
        sc.DW_SCENARIO_VARIANT: variant_name,
    }
    root_attributes = dict(common)
    root_attributes.update(
        {
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.GEN_AI_AGENT_NAME: scenario.agent_name,
            sc.GEN_AI_CONVERSATION_ID: run_id,
            sc.GEN_AI_REQUEST_MODEL: model.model,
            sc.GEN_AI_PROVIDER_NAME: model.provider,
            sc.DW_SEED: seed,
        }
    )
    if batch_id:
        root_attributes[sc.DW_BATCH_ID] = batch_id
    root = tracer.start_span(
        f"{sc.OP_INVOKE_AGENT} {scenario.agent_name}", kind=SpanKind.INTERNAL,
        attributes=root_attributes,
    )
    ctx = RunContext(
        scenario=scenario, variant=variant_name, model=model, tracer=tracer, run_id=run_id,
        seed=seed, max_turns=turns, capture_content=capture_content, env=env, tools=tools,
        events_by_turn=scenario.schedule(variant_name, turns), common=common, root=root,
        on_turn=on_turn,
    )
    ctx.tool_schemas = [t.schema() for t in tools.values()]
    if scenario.user is not None and scenario.user.model:
        ctx.user = user_model_for(scenario.user, seed=seed)
    system = scenario.full_system_prompt(variant_name)
    ctx.window = ContextWindow(scenario.context_budget_tokens)
    ctx.add_message({"role": "system", "content": system})
    if capture_content:
        root.set_attribute(sc.GEN_AI_SYSTEM_INSTRUCTIONS, system)
    state: LoopState = {"turn": 0, "done": False}
    try:
        final = build_graph(ctx).invoke(state, config={"recursion_limit": 4 * turns + 10})
        turn = int(final["turn"])
        if ctx.turn_span is not None:  # ended by a model error inside the turn
            ctx.turn_span.end()
            ctx.turn_span = None
        if interview and scenario.interview is not None and ctx.error is None:
            run_interview(ctx, initial, turn)
    except Exception as exc:
        if ctx.turn_span is not None:
            ctx.turn_span.end()
        root.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        root.end()
        raise
    root.set_attribute(sc.DW_RUN_TURNS, turn)
    if ctx.error:
        root.set_status(Status(StatusCode.ERROR, ctx.error))
    root.end()
    trace_id = format(root.get_span_context().trace_id, "032x")
    return AgentResult(
        run_id=run_id, trace_id=trace_id, turns=turn, tool_calls=ctx.tool_calls,
        model_calls=ctx.model_calls, stopped_by=ctx.stopped_by, error=ctx.error,
        initial_state=initial, final_state=env.snapshot(),
        malformed_tool_calls=ctx.malformed_tool_calls, generation_limits=ctx.generation_limits,
    )
