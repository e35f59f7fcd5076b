"""Settings read from the environment, with the embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB_PATH = Path("traces") / "driftwatch.duckdb"
ENV_DB = "DRIFTWATCH_DB"
ENV_CAPTURE_CONTENT = "DRIFTWATCH_CAPTURE_CONTENT"
ENV_LOG_FORMAT = "DRIFTWATCH_LOG_FORMAT"
ENV_OTLP_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def db_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--db`` wins, then ``DRIFTWATCH_DB``, then ``traces/driftwatch.duckdb``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    return DEFAULT_DB_PATH


def capture_content() -> bool:
    """Message content goes into spans unless ``DRIFTWATCH_CAPTURE_CONTENT`` is false."""
    value = os.environ.get(ENV_CAPTURE_CONTENT, "true").strip().lower()
    return value not in {"0", "false", "no", "off"}


def otlp_configured() -> bool:
    """True when the standard OTLP exporter environment variables name an endpoint."""
    return any(os.environ.get(name) for name in ENV_OTLP_ENDPOINTS)


ENV_MAX_YAML_BYTES = "DRIFTWATCH_MAX_YAML_BYTES"
DEFAULT_MAX_YAML_BYTES = 1024 * 1024  # 50x the largest built-in file; parsing 1 MiB takes ~1 s


def max_yaml_bytes() -> int:
    """The largest YAML file driftwatch reads (``DRIFTWATCH_MAX_YAML_BYTES``, else 1 MiB);
    a value that is not a positive integer keeps the default."""
    raw = os.environ.get(ENV_MAX_YAML_BYTES, "").strip()
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_MAX_YAML_BYTES
    return value if value > 0 else DEFAULT_MAX_YAML_BYTES
