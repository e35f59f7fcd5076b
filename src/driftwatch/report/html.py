"""The batch report as one self-contained HTML file.

Jinja2 renders it with autoescaping on for every value: agent messages, tool arguments,
finding messages and names all arrive as plain strings and are escaped. The only markup
inserted as is are the SVG charts, which :mod:`driftwatch.report.charts` builds from
numbers and escaped names. A Content-Security-Policy forbids scripts and any network
access, as a second line of defence should something ever slip through.
"""

from __future__ import annotations

from datetime import UTC, datetime

from driftwatch import __version__
from driftwatch.report.charts import PALETTE, section_charts
from driftwatch.report.contents import BatchReport, verdict_label
from driftwatch.report.numbers import p_value, percent, signed, turn

__all__ = ["render_html"]


def render_html(report: BatchReport, *, generated_at: datetime | None = None) -> str:
    """The page as a string (UTF-8 when written)."""
    import jinja2  # start-up time: only the commands that write a page load the templating

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("driftwatch.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(percent=percent, turn=turn, p=p_value, signed=signed,
                               verdict=verdict_label)
    template = environment.get_template("report.html.j2")
    return template.render(
        report=report,
        charts=[section_charts(section) for section in report.sections],
        palette=PALETTE,
        version=__version__,
        generated_at=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
    )
