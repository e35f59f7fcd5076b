"""The inline SVG charts: one line and band per variant, escaped names, honest points."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from driftwatch.report.charts import first_violation_chart, rate_chart, survival_chart
from driftwatch.report.contents import FirstViolations
from driftwatch.stats import RunOutcomes, RunTurns, violation_rate_by_turn

SVG = "{http://www.w3.org/2000/svg}"


def _curve(first: list[int | None]) -> RunOutcomes:
    return RunOutcomes.from_runs([10] * len(first), first)


def test_survival_chart_has_a_line_and_band_per_variant_and_is_valid_xml() -> None:
    svg = survival_chart([("control", _curve([None, None, 8]).kaplan_meier(), 10.0),
                          ("<b>pressure</b>", _curve([2, 4, None]).kaplan_meier(), 10.0)],
                         "title & more")
    root = ET.fromstring(str(svg))
    assert len(root.findall(f"{SVG}polyline")) == 2
    assert len(root.findall(f"{SVG}polygon")) == 2
    assert "<b>" not in svg
    assert root.find(f"{SVG}title").text == "title & more"
    pressure = root.findall(f"{SVG}polyline")[1]
    ys = [float(point.split(",")[1]) for point in pressure.get("points", "").split()]
    assert ys == sorted(ys)  # survival never rises: y (downwards) never decreases


def test_rate_chart_marks_only_turns_with_violations() -> None:
    rates = violation_rate_by_turn([RunTurns.from_violation_turns(5, [2]),
                                    RunTurns.from_violation_turns(5, [2, 4])])
    root = ET.fromstring(str(rate_chart([("pressure", rates)], "rates")))
    titles = [circle.find(f"{SVG}title").text for circle in root.findall(f"{SVG}circle")]
    assert titles == ["pressure, turn 2: 2/2", "pressure, turn 4: 1/2"]


def test_first_violation_chart_has_one_dot_per_turn_with_its_count() -> None:
    row = FirstViolations(variant="pressure", turns=[3, 3, 3, 7], clean_runs=1, median=3.0,
                          median_low=3.0, median_high=None, last_turn=10.0)
    svg = str(first_violation_chart([row], "first"))
    assert re.findall(r"<title>(\d+) run\(s\) first violated at turn (\d+)</title>", svg) == [
        ("3", "3"), ("1", "7")]
    assert 'class="median"' in svg
    assert 'class="ci"' in svg
