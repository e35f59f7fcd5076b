"""The batch report as one self-contained HTML file.

Jinja2 renders it with autoescaping on for every value: agent messages, tool arguments,
finding messages and names all arrive as plain strings and are escaped. The only markup
inserted as is are the SVG charts, which :mod:`driftwatch.report.charts` builds from
numbers and escaped names. A Content-Security-Policy forbids scripts and any network
access, as a second line of defence should something ever slip through.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from driftwatch import __version__
from driftwatch.report.charts import PALETTE
from driftwatch.report.compare import verdict_label

if TYPE_CHECKING:
    from driftwatch.report.batch import BatchReport

__all__ = ["render_html"]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _turn(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _signed(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "–" if value is None else f"{scale * value:+.{digits}f}"


def render_html(report: BatchReport, *, generated_at: datetime | None = None) -> str:
    """The page as a string (UTF-8 when written)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("driftwatch.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(percent=_percent, turn=_turn, p=_p, signed=_signed,
                               verdict=verdict_label)
    template = environment.get_template("report.html.j2")
    return template.render(
        report=report,
        palette=PALETTE,
        version=__version__,
        generated_at=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
    )
