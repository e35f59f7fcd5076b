"""Scenario specs, their YAML loader and built-in discovery."""

from driftwatch.scenario.loader import discover, list_scenarios, load_scenario, load_scenario_file
from driftwatch.scenario.spec import (
    ActionHint,
    Constraint,
    Event,
    Interview,
    InterviewQuestion,
    MonitorRef,
    PlantedFile,
    Scenario,
    SimulatedHints,
    SimulatedUser,
    Variant,
)

__all__ = [
    "ActionHint",
    "Constraint",
    "Event",
    "Interview",
    "InterviewQuestion",
    "MonitorRef",
    "PlantedFile",
    "Scenario",
    "SimulatedHints",
    "SimulatedUser",
    "Variant",
    "discover",
    "list_scenarios",
    "load_scenario",
    "load_scenario_file",
]
