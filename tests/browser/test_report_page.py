"""The report page in headless Chromium: it renders offline, logs no errors, and markup
planted in agent messages, tool calls and findings stays inert text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def opened(browser: Any, report_page: Path) -> Iterator[dict[str, Any]]:
    """The page loaded with network access cut off, plus what it logged and requested;
    every ``<details>`` opened by clicking its summary, as a reader would."""
    context = browser.new_context()
    page = context.new_page()
    seen: dict[str, Any] = {"page": page, "console": [], "errors": [], "requests": []}
    page.on("console", lambda message: seen["console"].append((message.type, message.text)))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("request", lambda request: seen["requests"].append(request.url))
    context.route("**/*", lambda route: route.continue_()
                  if route.request.url.startswith("file://") else route.abort())
    page.goto(report_page.as_uri(), wait_until="load")
    summaries = page.locator("details > summary")
    for index in range(summaries.count()):
        summary = summaries.nth(index)
        if summary.is_visible():
            summary.click()
    page.wait_for_timeout(200)
    yield seen
    context.close()


def test_page_renders_its_sections_and_charts(opened: dict[str, Any]) -> None:
    page = opened["page"]
    assert page.title() == "driftwatch report: browser-1"
    assert page.locator("h1").inner_text().startswith("driftwatch report: batch")
    headings = page.locator("h2").all_inner_texts()
    assert headings[:2] == ["Contents", "Overview"]
    assert "support-policy × simulated/drifter" in headings
    assert headings[-1] == "Methods"
    charts = page.locator("svg.chart")
    assert charts.count() == 3
    for index in range(3):
        box = charts.nth(index).bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 60
    assert page.locator("svg.chart polyline").count() >= 4  # two variants, two line charts


def test_no_console_errors_and_no_network(opened: dict[str, Any], report_page: Path) -> None:
    assert opened["errors"] == []
    assert [entry for entry in opened["console"] if entry[0] in ("error", "warning")] == []
    assert opened["requests"] == [report_page.as_uri()]


def test_planted_markup_stays_inert(opened: dict[str, Any]) -> None:
    page = opened["page"]
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.title() == "driftwatch report: browser-1"
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0


def test_planted_markup_is_visible_as_text(opened: dict[str, Any], planted_script: str) -> None:
    page = opened["page"]
    agent = page.locator("pre.agent-text", has_text=planted_script)
    assert agent.count() >= 2  # the rule's example and the run's turn 3
    assert agent.first.is_visible()
    finding = page.locator("p.finding", has_text=f"agent wrote {planted_script}").first
    assert finding.is_visible()
    event = page.locator("pre.event", has_text=f"[USER] {planted_script}").first
    assert event.is_visible()
    assert page.locator("pre", has_text='"><img src=x onerror=').first.is_visible()
