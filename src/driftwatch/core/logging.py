"""structlog set-up: pretty on a terminal, JSON lines otherwise (or when asked)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from driftwatch.core.settings import ENV_LOG_FORMAT
from driftwatch.core.terminal import printable

if TYPE_CHECKING:
    import structlog

_configured = False


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (test runners and the CLI runner swap it;
    a logger bound to the old stream would write to a closed file)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "warning", fmt: str | None = None) -> None:
    """Configure structlog once. ``fmt`` is ``console`` or ``json``; by default console
    when stderr is a terminal, JSON otherwise (``DRIFTWATCH_LOG_FORMAT`` overrides)."""
    global _configured  # noqa: PLW0603 - logging is process-wide by nature
    import structlog

    fmt = fmt or os.environ.get(ENV_LOG_FORMAT) or ("console" if sys.stderr.isatty() else "json")
    renderers: list[structlog.types.Processor]
    if fmt == "json":
        renderers = [structlog.processors.JSONRenderer()]  # JSON escapes control characters
    else:
        renderers = [_printable_values, structlog.dev.ConsoleRenderer(colors=use_color())]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *renderers,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _configured = True


def use_color() -> bool:
    """Colour on a terminal unless ``NO_COLOR`` is set to anything but "" (no-color.org)."""
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


class _Escaped:
    """A string value shown escaped and quoted: the console renderer prints strings
    without spaces as they are and repr()s the rest, and either would pass an escape
    sequence on (or double the backslashes of ours)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return "'" + printable(self.text) + "'"


def _printable_values(logger: Any, method: str,
                      event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Log lines quote model and sender text (a provider's error, a span's name): control
    characters in the event text, a traceback or any string value are shown escaped."""
    for key, value in event.items():
        if not isinstance(value, str):
            continue
        if key in ("event", "exception", "stack"):
            event[key] = printable(value, multiline=key != "event")
        elif printable(value) != value:
            event[key] = _Escaped(value)
    return event


class _LazyLogger:
    """Imports structlog on first use, so importing a module that logs stays cheap
    (``driftwatch --help`` must start fast)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            import structlog  # start-up: structlog loads at the first log call

            if not _configured and not structlog.is_configured():
                # structlog's own default prints debug lines to stdout: never for a library
                configure_logging()

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attribute)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger for ``name``; structlog itself is imported on the first call."""
    return _LazyLogger(name)
