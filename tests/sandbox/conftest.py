"""Sandbox tests run wherever the packaged bubblewrap can start (and always in CI)."""

from __future__ import annotations

import os

import pytest

from driftwatch.core.errors import SandboxError
from driftwatch.sandbox import ProcessSandbox


def _unavailable() -> str | None:
    try:
        ProcessSandbox()
    except SandboxError as exc:
        return str(exc)
    return None


UNAVAILABLE = _unavailable()

needs_sandbox = pytest.mark.skipif(
    UNAVAILABLE is not None and not os.environ.get("CI"),
    reason=f"no usable bubblewrap here ({UNAVAILABLE}); CI runs these",
)
