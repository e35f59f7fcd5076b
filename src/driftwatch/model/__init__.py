"""Model calls: a litellm wrapper (lazy import, retries, timeouts, cost) and the offline
``simulated/*`` models. Importing this package does not import litellm."""

from driftwatch.model.client import ModelCallError, ModelClient
from driftwatch.model.hints import ActionHint, SimulationContext, SimulationHints
from driftwatch.model.profiles import KNOWN_PROFILES, drifter_hazard, plan_turn, schemer_hazard
from driftwatch.model.simulated import register_simulated_provider, simulation_metadata
from driftwatch.model.types import ModelReply, ToolCall

__all__ = [
    "KNOWN_PROFILES",
    "ActionHint",
    "ModelCallError",
    "ModelClient",
    "ModelReply",
    "SimulationContext",
    "SimulationHints",
    "ToolCall",
    "drifter_hazard",
    "plan_turn",
    "register_simulated_provider",
    "schemer_hazard",
    "simulation_metadata",
]
