"""Register monitors by name: ``@monitor("name")`` on a class or factory records the spec
(name + creation arguments) that every finding it produces carries, so a stored result can
be rebuilt with ``create_monitor(spec["name"], **spec["args"])``. Third-party monitors come
from the ``driftwatch.monitors`` entry-point group (see :mod:`driftwatch.core.registry`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from driftwatch.core.registry import Registry, spec_value
from driftwatch.monitor.base import Monitor

__all__ = [
    "ENTRY_POINT_GROUP",
    "Registry",
    "create_monitor",
    "monitor",
    "registered_monitors",
    "spec_value",
]

F = TypeVar("F", bound=Callable[..., Any])

ENTRY_POINT_GROUP = "driftwatch.monitors"

_monitors = Registry("monitor", ENTRY_POINT_GROUP)


def monitor(name: str) -> Callable[[F], F]:
    """Class or factory decorator: ``@monitor("rule_pack")``."""
    return _monitors.decorator(name)


def registered_monitors() -> dict[str, Callable[..., Any]]:
    """Name → factory, including entry-point monitors."""
    return _monitors.entries()


def create_monitor(name: str, /, **args: Any) -> Monitor:
    """Build a registered monitor by name; unknown names raise :class:`NotFoundError`."""
    created: Monitor = _monitors.create(name, args)
    return created
