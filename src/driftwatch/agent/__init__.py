"""The agent loop (the only langgraph importer) and its context-window policy."""

from driftwatch.agent.context import apply_window, estimate_tokens
from driftwatch.agent.loop import AgentResult, run_agent

__all__ = ["AgentResult", "apply_window", "estimate_tokens", "run_agent"]
