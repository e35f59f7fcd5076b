"""Headless Chromium for the tests that need a real browser (the report page, the
collector's cross-origin checks). CI installs Chromium, so there it is never skipped."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """A Playwright browser on the system Chromium (no browser download). Keep it
    module-scoped: Playwright's sync API runs an asyncio loop in this thread while open,
    which breaks later tests that call ``asyncio.run``."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium; CI installs it)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e .[test])")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=[*LAUNCH_ARGS, *extra_args], headless=True)
        try:
            yield browser
        finally:
            browser.close()
