"""Register sinks by name and keep how each was made: ``@sink("jsonl")`` on a class or
factory records ``spec = {"name": ..., "args": {...}}`` on every instance, and
``create_sink("jsonl", path=...)`` builds one by name (configuration files, the CLI).
Third-party sinks come from the ``driftwatch.sinks`` entry-point group, loaded once, lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from driftwatch.core.protocols import FindingSink
from driftwatch.core.registry import Registry, spec_value

__all__ = [
    "ENTRY_POINT_GROUP",
    "Registry",
    "create_sink",
    "registered_sinks",
    "sink",
    "spec_value",
]

F = TypeVar("F", bound=Callable[..., Any])

ENTRY_POINT_GROUP = "driftwatch.sinks"

_sinks = Registry("sink", ENTRY_POINT_GROUP)


def sink(name: str) -> Callable[[F], F]:
    """Class or factory decorator: ``@sink("jsonl")``."""
    return _sinks.decorator(name)


def registered_sinks() -> dict[str, Callable[..., Any]]:
    """Name → factory, including entry-point sinks."""
    return _sinks.entries()


def create_sink(name: str, /, **args: Any) -> FindingSink:
    """Build a registered sink by name; unknown names raise :class:`NotFoundError`."""
    created: FindingSink = _sinks.create(name, args)
    return created
