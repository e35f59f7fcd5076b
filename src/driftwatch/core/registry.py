"""Registries by decorator that keep how each instance was made (inspect_ai style).

``@monitor("name")`` / ``@sink("name")`` go on a class or a factory. Whenever it is called,
the instance gets ``spec = {"name": name, "args": {...}}`` — the registered name and the
creation arguments (bound to the signature, defaults filled in, made JSON-safe) — so a
stored result can be rebuilt by name. Third-party entries come from an entry-point group,
loaded once, lazily; an entry point's object is either already decorated or registered
under the entry point's name.
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

__all__ = ["Registry", "spec_value"]

F = TypeVar("F", bound=Callable[..., Any])

log = get_logger(__name__)


def spec_value(value: Any) -> Any:
    """A JSON-safe copy of a creation argument. Objects may offer a ``spec_ref`` attribute
    (a rule pack gives its file path) to say how they should be recorded."""
    result: Any
    if value is None or isinstance(value, bool | int | float | str):
        result = value
    elif isinstance(value, enum.Enum):
        result = spec_value(value.value)
    elif isinstance(value, os.PathLike):
        result = os.fspath(value)
    elif isinstance(value, Mapping):
        result = {str(key): spec_value(item) for key, item in value.items()}
    elif isinstance(value, list | tuple | set | frozenset):
        result = [spec_value(item) for item in value]
    elif getattr(value, "spec_ref", None) not in (None, value):
        result = spec_value(value.spec_ref)
    else:
        result = repr(value)
    return result


def _bound_args(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:  # the call itself is about to fail with a clearer message
        return {}
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for key, value in bound.arguments.items():
        kind = signature.parameters[key].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update({str(k): spec_value(v) for k, v in value.items()})
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:  # object.__init__'s "*args" is noise when empty
                out[key] = spec_value(value)
        else:
            out[key] = spec_value(value)
    return out


def _set_identity(instance: Any, name: str, spec: dict[str, Any]) -> None:
    try:
        instance.spec = spec
        if not getattr(instance, "name", ""):
            instance.name = name
    except (AttributeError, TypeError):  # e.g. a frozen or slotted object
        log.debug("cannot attach a spec", name=name)


class Registry:
    """Name → class or factory, with spec recording and lazy entry-point loading.

    Serves ``@monitor``, ``@sink`` and ``@scenario``-style registries alike.
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()
        self._entry_points_loaded = False

    def register(self, name: str, obj: F) -> F:
        """Register ``obj`` (class or factory) under ``name``; return the spec-recording
        version. Registering a name again replaces it (re-imports in a notebook)."""
        wrapped = self._wrap_class(obj, name) if isinstance(obj, type) else self._wrap(obj, name)
        with self._lock:
            self._entries[name] = wrapped
        return wrapped  # type: ignore[return-value]

    def decorator(self, name: str) -> Callable[[F], F]:
        def decorate(obj: F) -> F:
            return self.register(name, obj)

        return decorate

    def entries(self) -> dict[str, Callable[..., Any]]:
        """Name → factory, including entry-point plugins."""
        self._load_entry_points()
        with self._lock:
            return dict(self._entries)

    def create(self, name: str, args: dict[str, Any]) -> Any:
        with self._lock:
            factory = self._entries.get(name)
        if factory is None:
            factory = self.entries().get(name)
        if factory is None:
            names = ", ".join(sorted(self.entries())) or "none"
            raise NotFoundError(f"unknown {self.kind} {name!r} (known: {names})")
        return factory(**args)

    @staticmethod
    def _wrap_class(target: type[Any], name: str) -> type[Any]:
        original_init = target.__init__
        signature = inspect.signature(original_init)
        self_name = next(iter(signature.parameters), "self")

        @functools.wraps(original_init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original_init(self, *args, **kwargs)
            # a registered subclass runs its own wrapper last, so its name wins
            if type(self) is target or "__driftwatch_registered__" not in type(self).__dict__:
                bound = _bound_args(signature, (self, *args), kwargs)
                bound.pop(self_name, None)
                _set_identity(self, name, {"name": name, "args": bound})

        target.__init__ = __init__
        if not target.__dict__.get("name"):
            target.name = name
        target.__driftwatch_registered__ = name
        return target

    @staticmethod
    def _wrap(factory: Callable[..., Any], name: str) -> Callable[..., Any]:
        signature = inspect.signature(factory)

        @functools.wraps(factory)
        def create(*args: Any, **kwargs: Any) -> Any:
            instance = factory(*args, **kwargs)
            spec = {"name": name, "args": _bound_args(signature, args, kwargs)}
            _set_identity(instance, name, spec)
            return instance

        return create

    def _load_entry_points(self) -> None:
        with self._lock:
            if self._entry_points_loaded:
                return
            self._entry_points_loaded = True
        for entry in entry_points(group=self.group):
            try:
                obj = entry.load()
            except Exception as exc:  # a broken plugin must not break the others
                log.warning(
                    "cannot load entry point", group=self.group, name=entry.name, error=str(exc)
                )
                continue
            with self._lock:
                known = entry.name in self._entries
            if not known and callable(obj):
                self.register(entry.name, obj)
