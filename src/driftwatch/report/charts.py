"""Inline SVG charts for the HTML report, drawn in Python from the series of a
:class:`~driftwatch.report.contents.Section`: no JavaScript, no CDN, so the page works
offline and from a CI artifact.

Every chart is built from numbers and from names that go through :func:`escape`; the
result is a :class:`markupsafe.Markup` the template inserts as is. No text that came from
a model is ever drawn here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from markupsafe import Markup, escape

from driftwatch.report.contents import FirstViolations, Section
from driftwatch.stats import SurvivalCurve, TurnRates

__all__ = ["PALETTE", "SectionCharts", "first_violation_chart", "rate_chart", "section_charts",
           "survival_chart"]

# Colour-blind-safe (Okabe–Ito); a variant keeps its colour across a section's charts.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
# ...and its own dash pattern, so curves that coincide stay distinguishable.
DASHES = ("", "6 3", "2 3", "8 3 2 3")

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 36


@dataclass(frozen=True)
class _Frame:
    """Maps (turn, probability) to pixels."""

    x_max: float
    height: int = HEIGHT

    def x(self, turn: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (turn / self.x_max if self.x_max else 0.0)

    def y(self, value: float) -> float:
        return self.height - BOTTOM - (self.height - TOP - BOTTOM) * value


def _turn_ticks(x_max: float) -> list[int]:
    if x_max <= 0:
        return [0]
    raw = x_max / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return list(range(0, int(x_max) + 1, max(1, int(step))))


def _axes(frame: _Frame, y_label: str, *, probability_axis: bool = True) -> list[str]:
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{frame.y(0):.1f}" x2="{WIDTH - RIGHT}" '
        f'y2="{frame.y(0):.1f}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{frame.y(0):.1f}"/>',
    ]
    if probability_axis:
        for value in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = frame.y(value)
            parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" '
                         f'y2="{y:.1f}"/>')
            parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                         f'text-anchor="end">{value:g}</text>')
    for turn in _turn_ticks(frame.x_max):
        x = frame.x(turn)
        parts.append(f'<text class="tick" x="{x:.1f}" y="{frame.y(0) + 16:.1f}" '
                     f'text-anchor="middle">{turn}</text>')
    parts.append(f'<text class="label" x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" '
                 f'y="{frame.height - 4}" text-anchor="middle">turn</text>')
    parts.append(f'<text class="label" x="12" y="{(frame.height - BOTTOM) / 2:.1f}" '
                 f'transform="rotate(-90 12 {(frame.height - BOTTOM) / 2:.1f})" '
                 f'text-anchor="middle">{escape(y_label)}</text>')
    return parts


def _svg(parts: Sequence[str], title: str, height: int = HEIGHT) -> Markup:
    body = "".join(parts)
    return Markup(  # noqa: S704 - numbers, fixed markup and names passed through escape()
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f"{body}</svg>"
    )


def _stroke(index: int) -> str:
    dash = DASHES[index % len(DASHES)]
    colour = PALETTE[index % len(PALETTE)]
    return f'stroke="{colour}"' + (f' stroke-dasharray="{dash}"' if dash else "")


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _steps(times: Sequence[float], values: Sequence[float], end: float,
           frame: _Frame) -> list[tuple[float, float]]:
    """A right-continuous step function as polyline points, carried on to ``end``."""
    points: list[tuple[float, float]] = []
    for index, (time, value) in enumerate(zip(times, values, strict=True)):
        if index:
            points.append((frame.x(time), points[-1][1]))
        points.append((frame.x(time), frame.y(value)))
    points.append((frame.x(end), points[-1][1]))
    return points


def survival_chart(curves: Sequence[tuple[str, SurvivalCurve, float]], title: str) -> Markup:
    """Kaplan–Meier Ŝ(turn) of "no violation yet" per variant, with its pointwise band.
    ``curves`` holds (variant, curve, last turn followed)."""
    x_max = max((end for _, _, end in curves), default=1.0) or 1.0
    frame = _Frame(x_max)
    parts = _axes(frame, "P(no violation yet)")
    for index, (name, curve, end) in enumerate(curves):
        colour = PALETTE[index % len(PALETTE)]
        times = curve.times.tolist()
        upper = _steps(times, curve.upper.tolist(), end, frame)
        lower = _steps(times, curve.lower.tolist(), end, frame)
        parts.append(f'<polygon class="band" fill="{colour}" '
                     f'points="{_points(upper + lower[::-1])}"/>')
        parts.append(f'<polyline class="line" {_stroke(index)} '
                     f'points="{_points(_steps(times, curve.survival.tolist(), end, frame))}">'
                     f"<title>{escape(name)}</title></polyline>")
        for time, value, censored in zip(times, curve.survival.tolist(),
                                         curve.censored.tolist(), strict=True):
            if censored:
                x, y = frame.x(time), frame.y(value)
                parts.append(f'<path class="censor" stroke="{colour}" '
                             f'd="M{x:.1f},{y - 4:.1f}v8"><title>{escape(name)}: {censored} '
                             f"run(s) ended clean at turn {time:g}</title></path>")
    return _svg(parts, title)


def rate_chart(series: Sequence[tuple[str, TurnRates]], title: str) -> Markup:
    """Share of runs violating at each turn per variant, with Wilson bands."""
    x_max = float(max((int(r.turn[-1]) for _, r in series if r.turn.size), default=1))
    frame = _Frame(x_max)
    parts = _axes(frame, "violation rate")
    for index, (name, rates) in enumerate(series):
        if not rates.turn.size:
            continue
        colour = PALETTE[index % len(PALETTE)]
        turns = rates.turn.tolist()
        upper = [(frame.x(t), frame.y(v)) for t, v in zip(turns, rates.high.tolist(), strict=True)]
        lower = [(frame.x(t), frame.y(v)) for t, v in zip(turns, rates.low.tolist(), strict=True)]
        parts.append(f'<polygon class="band" fill="{colour}" '
                     f'points="{_points(upper + lower[::-1])}"/>')
        line = [(frame.x(t), frame.y(v)) for t, v in zip(turns, rates.rate.tolist(), strict=True)]
        parts.append(f'<polyline class="line" {_stroke(index)} points="{_points(line)}">'
                     f"<title>{escape(name)}</title></polyline>")
        for turn, (x, y), violating, at_risk in zip(turns, line, rates.violating.tolist(),
                                                    rates.at_risk.tolist(), strict=True):
            if violating:
                parts.append(f'<circle class="dot" fill="{colour}" cx="{x:.1f}" cy="{y:.1f}" '
                             f'r="2.5"><title>{escape(name)}, turn {turn}: {violating}/{at_risk}'
                             "</title></circle>")
    return _svg(parts, title)


def first_violation_chart(rows: Sequence[FirstViolations], title: str) -> Markup:
    """One strip per variant: a dot at each turn where runs first violated (its area grows
    with their number), the median as a bar and its confidence interval as a line
    (drawn to the end of the follow-up when unbounded)."""
    lane = 34
    height = TOP + BOTTOM + lane * max(1, len(rows))
    x_max = max((row.last_turn for row in rows), default=1.0) or 1.0
    frame = _Frame(x_max, height)
    parts = _axes(frame, "", probability_axis=False)
    for index, row in enumerate(rows):
        colour = PALETTE[index % len(PALETTE)]
        y = TOP + lane * index + lane / 2
        parts.append(f'<text class="tick" x="{LEFT + 4}" y="{y - 9:.1f}">{escape(row.variant)} '
                     f"({row.clean_runs} clean)</text>")
        counts: dict[int, int] = {}
        for turn in row.turns:
            counts[turn] = counts.get(turn, 0) + 1
        for turn, count in sorted(counts.items()):
            radius = min(9.0, 2.5 + 1.5 * math.sqrt(count - 1))
            parts.append(f'<circle class="dot" fill="{colour}" cx="{frame.x(turn):.1f}" '
                         f'cy="{y + 6:.1f}" r="{radius:.1f}"><title>{count} run(s) first '
                         f"violated at turn {turn}</title></circle>")
        if row.median_low is not None:
            high = row.median_high if row.median_high is not None else row.last_turn
            parts.append(f'<line class="ci" stroke="{colour}" x1="{frame.x(row.median_low):.1f}" '
                         f'y1="{y:.1f}" x2="{frame.x(high):.1f}" y2="{y:.1f}"/>')
        if row.median is not None:
            x = frame.x(row.median)
            parts.append(f'<line class="median" stroke="{colour}" x1="{x:.1f}" y1="{y - 7:.1f}" '
                         f'x2="{x:.1f}" y2="{y + 7:.1f}"><title>median {row.median:g}</title>'
                         "</line>")
    return _svg(parts, title, height)


class SectionCharts(NamedTuple):
    """A section's three charts, in the order the page shows them."""

    survival: Markup
    rates: Markup
    first_violation: Markup


def section_charts(section: Section) -> SectionCharts:
    """The three charts of one scenario × model, titled with it."""
    return SectionCharts(
        survival=survival_chart(
            [(series.variant, series.curve, series.last_turn) for series in section.survival],
            f"Survival of no violation yet: {section.title}"),
        rates=rate_chart([(series.variant, series.rates) for series in section.rates],
                         f"Violation rate by turn: {section.title}"),
        first_violation=first_violation_chart(section.first_violations,
                                              f"Turns to first violation: {section.title}"),
    )
