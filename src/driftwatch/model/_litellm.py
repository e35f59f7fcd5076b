"""The one place that prepares litellm for import (it takes ~5 s, so only on first use).

Callers run :func:`prepare_litellm` and then ``import litellm`` inside their function.
Process-wide effects, applied once: ``LITELLM_LOCAL_MODEL_COST_MAP`` defaults to true (no
cost-map download; machines may be offline) and ``litellm.suppress_debug_info`` is set, so a
failed call does not print litellm's help banner next to our one-line errors. Other packages
that call litellm directly should call :func:`prepare_litellm` first too.
"""

# function-level imports: start-up — litellm takes seconds to import, so it loads at the first real
# model call
from __future__ import annotations

import inspect
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_prepared = False
_supports_skip_mcp = False


def prepare_litellm() -> None:
    """Import and configure litellm once. Thread-safe; cheap after the first call."""
    global _prepared, _supports_skip_mcp  # noqa: PLW0603 - one-time, process-wide set-up
    if _prepared:
        return
    with _lock:
        if _prepared:
            return
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm
        import litellm.main

        litellm.suppress_debug_info = True
        with warnings.catch_warnings():
            # pydantic warns once, when litellm's first ModelResponse builds its deferred
            # schema, about a ReadOnly TypedDict item in litellm's types. Build it here,
            # quietly, so the warning never surfaces mid-run (or as an error under pytest).
            warnings.filterwarnings(
                "ignore", message=r".*is using the `ReadOnly` qualifier", category=UserWarning
            )
            from litellm.types.utils import ModelResponse

            ModelResponse()
        # litellm 1.10x imports its MCP gateway (and the optional `mcp` package) whenever
        # `tools` is passed; we never use that gateway. Only pass the private opt-out flag to
        # versions that read it, so older versions do not forward it to the provider.
        code = getattr(inspect.unwrap(litellm.main.completion), "__code__", None)
        _supports_skip_mcp = code is not None and "_skip_mcp_handler" in code.co_consts
        _prepared = True


def fixed_kwargs() -> dict[str, Any]:
    """Keyword arguments every call gets: litellm's and the provider SDK's retries off (we
    own retries) and, where supported, the MCP gateway check off."""
    prepare_litellm()
    kwargs: dict[str, Any] = {"num_retries": 0, "max_retries": 0}
    if _supports_skip_mcp:
        kwargs["_skip_mcp_handler"] = True
    return kwargs


@contextmanager
def skip_success_logging() -> Iterator[None]:
    """Within the block, litellm skips its per-call success handler (a task on its logging
    thread pool that rebuilds the logging payload and recomputes cost). Used for simulated
    calls, which no litellm callback needs to see. A no-op on litellm versions without the
    flag."""
    try:
        from litellm._internal_context import is_internal_call
    except ImportError:  # pragma: no cover - depends on the litellm version
        yield
        return
    token = is_internal_call.set(True)
    try:
        yield
    finally:
        is_internal_call.reset(token)


_providers_lock = threading.Lock()


def register_custom_provider(name: str, respond: Callable[[dict[str, Any]], Any]) -> bool:
    """Register ``name/*`` with litellm as a custom provider whose calls (sync and async)
    are ``respond(kwargs)`` — how ``simulated``, ``replay`` and ``llamacpp`` plug in,
    through litellm's public ``custom_provider_map``. Idempotent and thread-safe; a
    handler some other code registered under ``name`` is left in place. True when this
    call registered it."""
    prepare_litellm()
    import litellm
    from litellm.llms.custom_llm import CustomLLM

    with _providers_lock:
        if any(item.get("provider") == name for item in litellm.custom_provider_map):
            return False

        class Provider(CustomLLM):
            def completion(self, *args: Any, **kwargs: Any) -> Any:
                return respond(kwargs)

            async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
                return respond(kwargs)

        Provider.__name__ = Provider.__qualname__ = f"{name.title()}Provider"
        litellm.custom_provider_map.append({"provider": name, "custom_handler": Provider()})
        return True
