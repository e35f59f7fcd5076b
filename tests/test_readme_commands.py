"""The README holds exactly two set-up commands, and CI runs those very commands: the main
job in .ci/fresh-machine (a fresh venv, system tools hidden), the tests in .ci/run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_two_setup_commands_and_ci_runs_them() -> None:
    main_job, tests = _setup_commands()
    assert "\n" not in main_job
    assert "\n" not in tests
    assert main_job == "pip install . && driftwatch batch"
    fresh = (ROOT / ".ci" / "fresh-machine").read_text()
    assert "pip install --quiet .\n" in fresh
    assert "\ndriftwatch batch " in fresh
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().endswith(tests)
    assert "bash .ci/fresh-machine" in ci
