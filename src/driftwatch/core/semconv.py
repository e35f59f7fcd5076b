"""Attribute names on the wire: OpenTelemetry GenAI semantic conventions plus our own keys.

The GenAI conventions are still "development" status, so every name lives here once and
known aliases from other instrumentations are normalised on ingest (:data:`ALIASES`).
"""

from __future__ import annotations

from typing import Final

# --- OpenTelemetry GenAI semantic conventions ---------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"
ERROR_TYPE: Final = "error.type"

# gen_ai.operation.name values
OP_CHAT: Final = "chat"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CREATE_AGENT: Final = "create_agent"
OP_EXECUTE_TASK: Final = "execute_task"  # OpenLLMetry's value for a step inside a workflow
# our own operation values for the spans the conventions do not cover
OP_TURN: Final = "driftwatch.turn"
OP_EVENT: Final = "driftwatch.event"

# --- driftwatch keys ------------------------------------------------------------------
DW_RUN_ID: Final = "driftwatch.run.id"
DW_BATCH_ID: Final = "driftwatch.batch.id"
DW_SCENARIO_ID: Final = "driftwatch.scenario.id"
DW_SCENARIO_VARIANT: Final = "driftwatch.scenario.variant"
DW_SEED: Final = "driftwatch.seed"
DW_TURN: Final = "driftwatch.turn"
DW_SIM_DAY: Final = "driftwatch.sim.day"
DW_PHASE: Final = "driftwatch.phase"
DW_INTERVIEW_SUBJECT: Final = "driftwatch.interview.subject"
DW_INTERVIEW_SUBJECT_CHANGED: Final = "driftwatch.interview.subject_changed"
DW_INTERVIEW_CHANGED_PATHS: Final = "driftwatch.interview.changed_paths"
DW_EVENT_KIND: Final = "driftwatch.event.kind"
DW_EVENT_CONTENT: Final = "driftwatch.event.content"
DW_EVENT_PRESSURE: Final = "driftwatch.event.pressure"
DW_MODEL_ATTEMPTS: Final = "driftwatch.model.attempts"
DW_MODEL_COST_USD: Final = "driftwatch.model.cost_usd"
DW_RUN_STATUS: Final = "driftwatch.run.status"
DW_RUN_TURNS: Final = "driftwatch.run.turns"
DW_CONTEXT_DROPPED: Final = "driftwatch.context.dropped_messages"
# a tool call that tried to change a read-only file: a span event per attempt, and the paths
EVENT_TAMPER: Final = "driftwatch.tamper"
DW_TAMPER_PATH: Final = "driftwatch.tamper.path"
DW_TAMPER_ACTION: Final = "driftwatch.tamper.action"
DW_TAMPER_PATHS: Final = "driftwatch.tamper.paths"
# derived on every chat span (live, replayed and imported alike), for rules on the reply's shape
DW_REPLY_TOOL_CALLS: Final = "driftwatch.reply.tool_calls"
DW_REPLY_HAS_TEXT: Final = "driftwatch.reply.has_text"
# tool calls in a reply that could not be read (count, and the reasons as a string list)
DW_REPLY_MALFORMED_TOOL_CALLS: Final = "driftwatch.reply.malformed_tool_calls"
DW_REPLY_MALFORMED_REASONS: Final = "driftwatch.reply.malformed_reasons"
# a generation that stopped at its limit: "max_tokens" or "time_limit"
DW_REPLY_LIMIT: Final = "driftwatch.reply.limit"

# a tool span whose instrumentation gave the arguments as one bare value (OpenInference's
# langchain tools): the key it was stored under in the arguments object, until the tool's
# declared parameter name is known (see driftwatch.core.toolcalls)
DW_TOOL_ARGUMENTS_FALLBACK_KEY: Final = "driftwatch.tool.arguments.fallback_key"
# in a rule's batch: "requested" (a chat span's requested tool call) or "executed"; the
# attribute is set on the rows driftwatch.core.toolcalls.requested_call_records makes
# (for the reader of a finding's evidence: the batch's column never reads it)
DW_TOOL_CALL_SOURCE: Final = "driftwatch.tool_call.source"
TOOL_CALL_REQUESTED: Final = "requested"
TOOL_CALL_EXECUTED: Final = "executed"

# span names
SPAN_TURN: Final = "driftwatch.turn"
SPAN_EVENT_PREFIX: Final = "driftwatch.event"

# Known aliases from other instrumentations, mapped to the current names. Applied on
# ingest; the current name wins when both exist. Sources: older GenAI conventions and
# litellm's OTel callback (gen_ai.system, gen_ai.usage.prompt_tokens), OpenLLMetry
# (llm.usage.*), OpenInference (llm.model_name, llm.provider, llm.system,
# llm.token_count.*, tool.name, session.id, agent.name). OpenInference's
# tool.parameters is the tool's JSON schema, not the call's arguments: not an alias.
# Structural rewrites (flattened messages, span kinds, tool input/output) are in
# driftwatch.core.aliases.
ALIASES: Final[dict[str, str]] = {
    "gen_ai.system": GEN_AI_PROVIDER_NAME,
    "gen_ai.usage.prompt_tokens": GEN_AI_USAGE_INPUT_TOKENS,
    "gen_ai.usage.completion_tokens": GEN_AI_USAGE_OUTPUT_TOKENS,
    "llm.usage.prompt_tokens": GEN_AI_USAGE_INPUT_TOKENS,
    "llm.usage.completion_tokens": GEN_AI_USAGE_OUTPUT_TOKENS,
    "llm.token_count.prompt": GEN_AI_USAGE_INPUT_TOKENS,
    "llm.token_count.completion": GEN_AI_USAGE_OUTPUT_TOKENS,
    "llm.model_name": GEN_AI_REQUEST_MODEL,
    "llm.provider": GEN_AI_PROVIDER_NAME,
    "llm.system": GEN_AI_PROVIDER_NAME,
    "tool.name": GEN_AI_TOOL_NAME,
    "tool.description": "gen_ai.tool.description",
    "session.id": GEN_AI_CONVERSATION_ID,
    "agent.name": GEN_AI_AGENT_NAME,
}

# The span attribute keys that the collector filled from GenAI events (OTLP log
# records) rather than the span itself (see driftwatch.tracing.genai_events).
DW_CONTENT_FROM_LOGS: Final = "driftwatch.content.from_logs"
