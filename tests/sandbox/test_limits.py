"""Total process and memory caps hold for a call and its children together, root or not.

RLIMIT_NPROC does not bind root and RLIMIT_AS is per process, so before these caps a fork
bomb ran to hundreds of processes and a few processes held gigabytes in one call.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest
from tests.sandbox.conftest import FORK_BOMB, PROCESS_HOARD, needs_sandbox, processes_counted

from driftwatch.sandbox import Limits, ProcessSandbox

pytestmark = needs_sandbox

# 8 processes each holding 400 MB (written, so resident) for 2 s, started together: the
# survivors held theirs at the same time
MEMORY_HOG = r"""
for i in 1 2 3 4 5 6 7 8; do
  python3 -c "import time; held = b'x' * (400 << 20); time.sleep(2); print('survived')" &
done
wait
"""


def _descendants() -> list[int]:
    """Processes below this test process (a sandbox left running would show here);
    compare with :func:`_left_running`, since earlier tests may keep helpers alive."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found.extend(frontier)
    return found


@pytest.fixture
def already_running() -> set[int]:
    """Children this test process had before the test (servers, workers of other tests)."""
    return set(_descendants())


def test_a_fork_bomb_is_contained_and_the_host_is_fine_afterwards(
    already_running: set[int],
) -> None:
    sandbox = ProcessSandbox(Limits(wall_time_s=3, processes=32))
    result = sandbox.run(FORK_BOMB, {})
    assert "bomb started" in result.stdout
    if result.usage.processes_peak is not None:  # the cgroup counted everything, bwrap too
        assert result.usage.processes_peak <= 32
    assert set(_descendants()) - already_running == set()  # nothing left running
    assert subprocess.run(["true"], check=False).returncode == 0
    assert sandbox.run("echo still fine", {}).stdout == "still fine\n"


def test_processes_never_exceed_the_cap_in_back_to_back_calls(already_running: set[int]) -> None:
    sandbox = ProcessSandbox(Limits(wall_time_s=4, processes=32))
    for _ in range(3):  # each call gets the whole cap, whatever the call before it did
        result = sandbox.run(PROCESS_HOARD, {})
        assert 24 <= processes_counted(result.stdout) <= 32  # the cap is reached, not passed
        if result.usage.processes_peak is not None:
            assert result.usage.processes_peak <= 32
    assert set(_descendants()) - already_running == set()


def _with_total_cap(limits: Limits) -> ProcessSandbox:
    sandbox = ProcessSandbox(limits)
    if sandbox.enforcement == "rlimits":
        pytest.skip("no writable cgroup here: memory is capped per process only")
    return sandbox


def test_many_processes_together_stay_under_the_total_memory_cap(already_running: set[int]) -> None:
    cap = 1 << 30
    sandbox = _with_total_cap(Limits(wall_time_s=8, total_memory_bytes=cap))
    result = sandbox.run(MEMORY_HOG, {})
    assert result.stdout.count("survived") <= 2  # 8 x 400 MB asked for, 1 GiB allowed
    assert result.usage.memory_limit_hit
    assert "[killed: memory limit exceeded]" in result.as_text()
    if result.usage.memory_peak_bytes is not None:  # what the kernel charged, at most
        assert result.usage.memory_peak_bytes <= cap
    assert set(_descendants()) - already_running == set()
    assert sandbox.run("echo still fine", {}).stdout == "still fine\n"


def test_concurrent_calls_of_one_run_share_its_memory_cap() -> None:
    """Each call alone fits (2 × 200 MB under 600 MB); two at once do not: the run's cap
    holds across its calls."""
    two_hogs = ("for i in 1 2; do python3 -c \"import time; held = b'x' * (200 << 20); "
                "time.sleep(3); print('survived')\" & done; wait")
    sandbox = _with_total_cap(Limits(wall_time_s=8, total_memory_bytes=600 << 20))
    assert sandbox.run(two_hogs, {}).stdout.count("survived") == 2
    outputs: list[str] = []
    threads = [threading.Thread(target=lambda: outputs.append(sandbox.run(two_hogs, {}).stdout))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(output.count("survived") for output in outputs) < 4
