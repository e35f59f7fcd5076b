"""Register monitors by name and keep how each instance was made.

``@monitor("name")`` goes on a class or on a factory function. Whenever it is called, the
instance gets ``spec = {"name": name, "args": {...}}`` — the registered name and the
creation arguments (bound to the signature, defaults filled in, made JSON-safe) — and
every finding it produces carries that spec, so a stored result can be rebuilt with
``create_monitor(spec["name"], **spec["args"])``.

Third-party monitors are found through the ``driftwatch.monitors`` entry-point group,
loaded once, lazily (the first time a name is not already registered). An entry point's
object is either already decorated, or registered under the entry point's name.
"""

from __future__ import annotations

import enum
import functools
import inspect
import os
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, TypeVar

from driftwatch.core.errors import NotFoundError
from driftwatch.core.logging import get_logger

__all__ = [
    "ENTRY_POINT_GROUP",
    "create_monitor",
    "monitor",
    "registered_monitors",
    "spec_value",
]

F = TypeVar("F", bound=Callable[..., Any])

ENTRY_POINT_GROUP = "driftwatch.monitors"

log = get_logger(__name__)

_registry: dict[str, Callable[..., Any]] = {}
_lock = threading.Lock()
_entry_points_loaded = False


def spec_value(value: Any) -> Any:
    """A JSON-safe copy of a creation argument. Objects may offer a ``spec_ref`` attribute
    (a rule pack gives its file path) to say how they should be recorded."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return spec_value(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(key): spec_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [spec_value(item) for item in value]
    ref = getattr(value, "spec_ref", None)
    if ref is not None and ref is not value:
        return spec_value(ref)
    return repr(value)


def _bound_args(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        # the call itself is about to fail with a clearer message
        return {}
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for key, value in bound.arguments.items():
        kind = signature.parameters[key].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update({str(k): spec_value(v) for k, v in value.items()})
        else:
            out[key] = spec_value(value)
    return out


def _set_identity(instance: Any, name: str, spec: dict[str, Any]) -> None:
    try:
        instance.spec = spec
        if not getattr(instance, "name", ""):
            instance.name = name
    except (AttributeError, TypeError):  # e.g. a frozen or slotted object
        log.debug("cannot attach a spec to the monitor", monitor=name)


def _wrap_class(cls: type[Any], name: str) -> type[Any]:
    original_init = cls.__init__
    signature = inspect.signature(original_init)

    @functools.wraps(original_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        original_init(self, *args, **kwargs)
        # a registered subclass runs its own wrapper last, so its name wins
        if type(self) is cls or not _registered_class(type(self)):
            spec = {"name": name, "args": _bound_args(signature, (self, *args), kwargs)}
            spec["args"].pop(next(iter(signature.parameters), "self"), None)
            _set_identity(self, name, spec)

    cls.__init__ = __init__  # type: ignore[misc]
    if not cls.__dict__.get("name"):
        cls.name = name
    cls.__driftwatch_registered__ = name
    return cls


def _registered_class(cls: type[Any]) -> bool:
    return "__driftwatch_registered__" in cls.__dict__


def _wrap_function(factory: Callable[..., Any], name: str) -> Callable[..., Any]:
    signature = inspect.signature(factory)

    @functools.wraps(factory)
    def create(*args: Any, **kwargs: Any) -> Any:
        instance = factory(*args, **kwargs)
        _set_identity(instance, name, {"name": name, "args": _bound_args(signature, args, kwargs)})
        return instance

    return create


def register(name: str, obj: F) -> F:
    """Register ``obj`` (class or factory) under ``name``; return the spec-recording
    version. Registering the same name twice replaces the earlier entry (re-imports in a
    notebook), with a debug log line."""
    wrapped = _wrap_class(obj, name) if isinstance(obj, type) else _wrap_function(obj, name)
    with _lock:
        if name in _registry and _registry[name] is not wrapped:
            log.debug("monitor re-registered", monitor=name)
        _registry[name] = wrapped
    return wrapped  # type: ignore[return-value]


def monitor(name: str) -> Callable[[F], F]:
    """Class or factory decorator: ``@monitor("rule_pack")``."""

    def decorate(obj: F) -> F:
        return register(name, obj)

    return decorate


def _load_entry_points() -> None:
    global _entry_points_loaded  # noqa: PLW0603 - the registry is process-wide by nature
    with _lock:
        if _entry_points_loaded:
            return
        _entry_points_loaded = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = entry.load()
        except Exception as exc:  # a broken plugin must not break the others
            log.warning("cannot load monitor entry point", entry_point=entry.name, error=str(exc))
            continue
        with _lock:
            known = entry.name in _registry
        if not known and callable(obj):
            register(entry.name, obj)


def registered_monitors() -> dict[str, Callable[..., Any]]:
    """Name → factory, including entry-point monitors."""
    _load_entry_points()
    with _lock:
        return dict(_registry)


def create_monitor(name: str, /, **args: Any) -> Any:
    """Build a registered monitor by name; unknown names raise :class:`NotFoundError`."""
    with _lock:
        factory = _registry.get(name)
    if factory is None:
        factory = registered_monitors().get(name)
    if factory is None:
        names = ", ".join(sorted(registered_monitors())) or "none"
        raise NotFoundError(f"unknown monitor {name!r} (known: {names})")
    return factory(**args)
