"""``model_options`` of a batch config: checked when the config loads, not when a cell runs.

The top-level keys are :class:`~driftwatch.model.ModelClient`'s keyword arguments (with its
defaults, so ``dict(options)`` is what a worker passes on); ``extra`` holds keyword
arguments for ``litellm.completion``, known by name and type. A typo, a wrong type or an
option driftwatch sets itself is a ``path:line`` error before the batch starts, where it
used to fail every cell at run time.

Secrets are refused, not stored: the config is written into the store with the batch
(``batches.config``, Parquet exports, reports), and the file itself usually lives in git.
Redacting instead would make a stored batch that cannot be resumed with the settings it
was started with, and would still leave the key in the YAML file. litellm reads each
provider's key from its environment variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, …).
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LITELLM_OPTIONS", "ModelOptions"]

_SECRET: Final = re.compile(
    r"api[_-]?key|secret|password|passwd|credential|authorization|cookie"
    r"|(?:^|[_-])(?:access|session|auth|ad|bearer|id|refresh)[_-]?token",
    re.IGNORECASE,
)
USE_ENV_HINT: Final = ("secrets do not belong in a batch config (it is stored with the batch); "
                       "set the provider's environment variable instead (e.g. OPENAI_API_KEY)")

_NUMBER: Final = (int, float)
# Keyword arguments of litellm.completion (1.110) and common provider pass-throughs, with
# the JSON types a YAML file can give them. tests/batch pins the names against litellm.
LITELLM_OPTIONS: Final[dict[str, tuple[type, ...]]] = {
    "temperature": _NUMBER, "top_p": _NUMBER, "n": (int,), "stop": (str, list),
    "max_completion_tokens": (int,), "max_tokens": (int,), "modalities": (list,),
    "prediction": (dict,), "audio": (dict,), "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER, "logit_bias": (dict,), "user": (str,),
    "reasoning_effort": (str,), "verbosity": (str,), "response_format": (dict,),
    "tool_choice": (str, dict), "logprobs": (bool,), "top_logprobs": (int,),
    "parallel_tool_calls": (bool,), "web_search_options": (dict,),
    "deployment_id": (str,), "extra_headers": (dict,), "safety_identifier": (str,),
    "service_tier": (str,), "store": (bool,), "prompt_cache_key": (str,),
    "prompt_cache_retention": (str,), "base_url": (str,), "api_version": (str,),
    "thinking": (dict,), "metadata": (dict,),
    # not in the signature; litellm forwards them through **kwargs
    "top_k": (int,), "extra_body": (dict,), "custom_llm_provider": (str,),
    "drop_params": (bool,), "aws_region_name": (str,), "vertex_project": (str,),
    "vertex_location": (str,), "safety_settings": (list,), "mock_response": (str,),
}
# Set by driftwatch for every call: giving them here would be ignored or break the loop.
_OWNED: Final = {
    "model": "the batch's models list", "messages": "the scenario", "tools": "the scenario",
    "stream": "nothing (streaming is not supported)", "seed": "the batch's seeds",
    "timeout": "model_options.timeout_s", "num_retries": "model_options.max_retries",
    "max_retries": "model_options.max_retries", "functions": "the scenario",
    "function_call": "the scenario", "api_base": "model_options.api_base",
}
_TYPE_NAMES: Final = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
                      list: "a list", dict: "a mapping"}


class ModelOptions(BaseModel):
    """The ``model_options`` mapping. Defaults are ModelClient's (a test keeps them equal)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff_base_s: float | None = Field(default=None, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    api_base: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    extra: dict[str, Any] | None = None

    @field_validator("api_base")
    @classmethod
    def _no_credentials_in_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http(s) URL")
            if parts.username or parts.password:
                raise ValueError(f"must not hold a user name or password: {USE_ENV_HINT}")
        return value

    @field_validator("extra")
    @classmethod
    def _litellm_options(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        problem = extra_problem(value or {})
        if problem:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        return value


def extra_problem(extra: dict[str, Any]) -> tuple[str, str] | None:
    """The first key of ``extra`` litellm would not accept, and why; None if all are fine."""
    for key, option in extra.items():
        if key in _OWNED:
            return key, f"set by driftwatch (use {_OWNED[key]})"
        if key not in LITELLM_OPTIONS:
            return key, "unknown litellm option (provider-specific fields go in extra_body)"
        kinds = LITELLM_OPTIONS[key]
        if not isinstance(option, kinds) or (isinstance(option, bool) and bool not in kinds):
            return key, "must be " + " or ".join(_TYPE_NAMES[kind] for kind in kinds)
    return None


def find_secret(value: Any, loc: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The location of the first secret-looking key in ``value``, nested mappings too
    (``extra.extra_headers.Authorization``), or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*loc, str(key))
            if _SECRET.search(str(key)):
                return here
            found = find_secret(item, here)
            if found:
                return found
    return None


def refuse_secrets(value: Any) -> Any:
    """A pydantic before-validator: raises ``ValueError`` naming the first secret."""
    found = find_secret(value)
    if found:
        raise ValueError(f"{'.'.join(found)}: {USE_ENV_HINT}")
    return value
