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

# The classic fork bomb: contained, and the host is fine afterwards. Its processes die and
# are replaced all the time, so counting /proc while it runs overcounts (a directory scan
# is no snapshot); the cap's exact test is PROCESS_HOARD.
FORK_BOMB = r"""
bomb() { bomb | bomb & }; bomb 2>/dev/null
echo "bomb started"
"""

# One process forks 200 times and every child it wins sleeps on, so nothing exits while
# it counts /proc: the count is exact (a shell would die at its first failed fork).
PROCESS_HOARD = r"""
python3 - <<'PY'
import os, time
for _ in range(200):
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
    except OSError:
        pass
print("processes:", sum(name.isdigit() for name in os.listdir("/proc")), flush=True)
PY
"""


def processes_counted(stdout: str) -> int:
    lines = [x for x in stdout.splitlines() if x.startswith("processes: ")]
    assert lines, "no count: the command did not get through its spawning"
    return int(lines[0].split()[1])
