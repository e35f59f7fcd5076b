"""Escape attempts against the bubblewrap sandbox: each one stays contained."""

from __future__ import annotations

import time

import pytest
from tests.sandbox.conftest import needs_sandbox

from driftwatch.core.errors import SandboxError
from driftwatch.sandbox import (
    Limits,
    ProcessSandbox,
    VirtualEnvironment,
    get_tools,
    run_tool,
)

pytestmark = needs_sandbox

FILES = {"notes.txt": "hello\n", "project/config.yaml": "enabled: true\n"}


@pytest.fixture(scope="module")
def sandbox() -> ProcessSandbox:
    return ProcessSandbox(Limits(wall_time_s=2, cpu_time_s=2, output_bytes=4096,
                                 workspace_bytes=8 << 20, file_bytes=4 << 20, processes=32))


def test_commands_see_and_change_only_the_workspace(sandbox: ProcessSandbox) -> None:
    result = sandbox.run("cat notes.txt; echo new > made.txt; rm project/config.yaml", FILES)
    assert result.exit_code == 0
    assert result.stdout == "hello\n"
    assert result.files == {"notes.txt": "hello\n", "made.txt": "new\n"}


@pytest.mark.parametrize("command", ["cat ../../etc/passwd", "cat /etc/passwd",
                                     "cat /root/.bashrc", "ls /home /work"])
def test_host_files_are_not_visible(sandbox: ProcessSandbox, command: str) -> None:
    result = sandbox.run(command, FILES)
    assert result.exit_code != 0
    assert "root:" not in result.stdout


def test_symlinks_out_of_the_workspace_lead_nowhere(sandbox: ProcessSandbox) -> None:
    result = sandbox.run("ln -s /etc/passwd p; ln -s ../.. up; cat p; ls up/work", FILES)
    assert "root:" not in result.stdout
    assert "p" not in result.files  # links never come back as files
    assert result.files.keys() == FILES.keys()


def test_network_is_unreachable(sandbox: ProcessSandbox) -> None:
    script = ("import socket\n"
              "for host in ('127.0.0.1', '1.1.1.1'):\n"
              "    try:\n"
              "        socket.create_connection((host, 80), timeout=1); print('connected')\n"
              "    except OSError as e: print('blocked', type(e).__name__)\n")
    result = sandbox.run(f"python3 -c \"{script}\"", FILES)
    assert "connected" not in result.stdout
    assert result.stdout.count("blocked") == 2


def test_fork_bomb_is_contained(sandbox: ProcessSandbox) -> None:
    start = time.monotonic()
    result = sandbox.run("bomb() { bomb | bomb & }; bomb; sleep 5", FILES)
    assert time.monotonic() - start < 30  # 2 s limit + kill; generous for loaded CI
    assert result.timed_out or result.exit_code != 0
    assert sandbox.run("echo still fine", FILES).stdout == "still fine\n"


def test_unbounded_output_is_truncated(sandbox: ProcessSandbox) -> None:
    result = sandbox.run("yes", FILES)
    assert result.truncated
    assert len(result.stdout) <= 4096


def test_a_command_that_never_ends_is_killed(sandbox: ProcessSandbox) -> None:
    start = time.monotonic()
    result = sandbox.run("while true; do :; done", FILES)
    assert result.timed_out
    assert time.monotonic() - start < 20  # 2 s limit + kill; generous for loaded CI


def test_filling_the_disk_stops_at_the_workspace_limit(sandbox: ProcessSandbox) -> None:
    result = sandbox.run(
        "for i in 1 2 3 4 5 6; do dd if=/dev/zero of=f$i bs=1M count=4 2>/dev/null; done; "
        "du -sk . | cut -f1", FILES)
    used_kib = int(result.stdout.split()[-1])
    assert used_kib <= 8 * 1024 + 64
    assert sum(len(v) for v in result.files.values()) <= 8 << 20


def test_memory_is_limited(sandbox: ProcessSandbox) -> None:
    result = sandbox.run("python3 -c \"x = bytearray(4 << 30)\"", FILES)
    assert result.exit_code != 0
    assert "MemoryError" in result.stderr


def test_bash_tool_updates_the_virtual_environment(sandbox: ProcessSandbox) -> None:
    env = VirtualEnvironment(files=dict(FILES), process=sandbox)
    tools = {t.name: t for t in get_tools(["bash"])}
    result = run_tool(env, tools, "bash", {"command": "sed -i s/true/false/ project/config.yaml"})
    assert result.ok
    assert "[exit code 0]" in result.text
    assert env.files["project/config.yaml"] == "enabled: false\n"


def test_missing_bubblewrap_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("driftwatch.sandbox.bwrap.find_bubblewrap", lambda: None)
    with pytest.raises(SandboxError, match="will not run commands on the host"):
        ProcessSandbox()
