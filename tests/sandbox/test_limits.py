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
from tests.sandbox.conftest import needs_sandbox

from driftwatch.sandbox import Limits, ProcessSandbox

pytestmark = needs_sandbox

FORK_BOMB = r"""
(bomb() { bomb | bomb & }; bomb) 2>/dev/null &
(while :; do sleep 10 & done) 2>/dev/null &  # keeps every process slot it wins
most=0; i=0
while [ $i -lt 400 ]; do
  n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
  [ $n -gt $most ] && most=$n
  i=$((i+1))
done
echo "most processes seen: $most"
"""

# 8 processes each holding 400 MB (written, so resident), and a sampler of the sandbox's
# total anonymous resident memory (shared library pages would count once per process)
MEMORY_HOG = r"""
python3 - <<'PY' &
import glob, time
most, end = 0, time.monotonic() + 3
while time.monotonic() < end:
    total = 0
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            total += sum(int(line.split()[1]) for line in open(status)
                         if line.startswith("RssAnon"))
        except OSError:
            pass
    most = max(most, total)
print("most resident KiB:", most, flush=True)
PY
for i in 1 2 3 4 5 6 7 8; do
  python3 -c "import time; held = b'x' * (400 << 20); time.sleep(2); print('survived')" &
done
wait
"""


def _descendants() -> list[int]:
    """Processes below this test process (a sandbox left running would show here)."""
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


def _number(stdout: str, label: str) -> int:
    lines = [x for x in stdout.splitlines() if x.startswith(label)]
    assert lines, f"no {label!r} line: the attack ran unchecked until the time limit"
    return int(lines[0].rsplit(" ", 1)[1])


def test_a_fork_bomb_never_exceeds_the_process_cap() -> None:
    sandbox = ProcessSandbox(Limits(wall_time_s=4, processes=32))
    result = sandbox.run(FORK_BOMB, {})
    assert _number(result.stdout, "most processes seen:") <= 32
    if result.usage.processes_peak is not None:  # the cgroup counted everything, bwrap too
        assert result.usage.processes_peak <= 32
    # the host is fine afterwards: nothing left running, and the next call works
    assert _descendants() == []
    assert subprocess.run(["true"], check=False).returncode == 0
    assert sandbox.run("echo still fine", {}).stdout == "still fine\n"


def _with_total_cap(limits: Limits) -> ProcessSandbox:
    sandbox = ProcessSandbox(limits)
    if sandbox.enforcement == "rlimits":
        pytest.skip("no writable cgroup here: memory is capped per process only")
    return sandbox


def test_many_processes_together_stay_under_the_total_memory_cap() -> None:
    cap = 1 << 30
    sandbox = _with_total_cap(Limits(wall_time_s=8, total_memory_bytes=cap))
    result = sandbox.run(MEMORY_HOG, {})
    assert _number(result.stdout, "most resident KiB:") * 1024 <= cap + (64 << 20)
    assert result.stdout.count("survived") <= 2  # 8 × 400 MB asked for, 1 GiB allowed
    assert result.usage.memory_limit_hit
    assert "[killed: memory limit exceeded]" in result.as_text()
    if result.usage.memory_peak_bytes is not None:
        assert result.usage.memory_peak_bytes <= cap
    assert _descendants() == []
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
