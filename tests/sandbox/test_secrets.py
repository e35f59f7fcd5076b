"""The agent's shell cannot read driftwatch's environment: API keys stay outside.

bwrap's init is PID 1 inside the sandbox and its ``/proc/1/environ`` is readable there;
``--clearenv`` only clears the command's environment. Each test plants secrets in our
environment and looks for them everywhere a command inside can read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.sandbox.conftest import PROCESS_HOARD, needs_sandbox, processes_counted

from driftwatch.runner import run_scenario
from driftwatch.sandbox import Limits, ProcessSandbox
from driftwatch.store import Store
from driftwatch.testing.fake_openai import FakeOpenAIServer

pytestmark = needs_sandbox

SECRETS = {
    "OPENAI_API_KEY": "sk-test-0penai-must-not-leak-7f3a",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-must-not-leak-91c2",
    "DRIFTWATCH_TOKEN": "dw-token-must-not-leak-5e0d",
}

# every place inside the sandbox that could carry the launcher's environment
SNOOP = r"""
for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do echo "== $f"; tr '\0' '\n' < "$f"; done
env
cat /inner.sh /command.sh
ls -l /proc/[0-9]*/fd/ 2>&1
for fd in /proc/self/fd/*; do cat "$fd" 2>/dev/null | head -c 4096 | tr -cd '[:print:]\n'; done
grep -rsa -e 'must-not-le[a]k' /proc/[0-9]*/environ /proc/[0-9]*/cmdline / --exclude-dir=proc \
    --exclude-dir=sys --exclude-dir=dev --exclude-dir=usr --exclude-dir=out; echo grep-done
"""


def _assert_nothing_leaks(text: str) -> None:
    for name, value in SECRETS.items():
        assert value not in text, f"{name} leaked into the sandbox"
    assert "must-not-leak" not in text


def test_secrets_in_our_environment_are_not_readable_inside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    result = ProcessSandbox(Limits(wall_time_s=5)).run(SNOOP, {"notes.txt": "hi\n"})
    text = result.stdout + result.stderr
    assert "== /proc/1/environ" in text  # PID 1 (bwrap's init) was read
    assert "grep-done" in text
    _assert_nothing_leaks(text)
    assert all("must-not-leak" not in content for content in result.files.values())


def test_only_the_standard_descriptors_are_open_inside() -> None:
    result = ProcessSandbox().run("ls /proc/self/fd", {})
    # 0-2 and the descriptor ls opens to list the directory; nothing inherited from us
    assert result.stdout.split() == ["0", "1", "2", "3"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to switch to an unprivileged user")
def test_secrets_do_not_leak_as_an_unprivileged_user() -> None:
    """The same attack with driftwatch itself running as ``nobody`` (no cgroup to use, so
    the rlimit path): nothing leaks, and the process cap still holds."""
    code = (
        "import json, os\n"
        "from driftwatch.sandbox import Limits, ProcessSandbox\n"
        "sandbox = ProcessSandbox(Limits(wall_time_s=4, processes=24))\n"
        f"snoop = sandbox.run({SNOOP!r}, {{}})\n"
        f"hoard = sandbox.run({PROCESS_HOARD!r}, {{}})\n"
        "print(json.dumps({'uid': os.getuid(), 'mode': sandbox.enforcement,\n"
        "                  'snoop': snoop.stdout + snoop.stderr, 'hoard': hoard.stdout}))\n")
    env = {**os.environ, **SECRETS, "HOME": "/", "TMPDIR": "/tmp"}
    completed = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-c", code],
        env=env, capture_output=True, text=True, timeout=120, cwd="/", check=False)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["uid"] == 65534
    assert "== /proc/1/environ" in report["snoop"]
    _assert_nothing_leaks(report["snoop"])
    assert processes_counted(report["hoard"]) <= 24


def test_a_whole_run_keeps_secrets_out_of_requests_and_spans(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The agent's bash tool snoops during a real run: the tool result, the next model
    request and every stored span hold none of the secrets."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    script = [{"tool_calls": [{"name": "bash", "arguments": {"command": SNOOP}}]}]
    script += [{"content": "Rankings are done."}] * 6
    db = tmp_path / "run.duckdb"
    with FakeOpenAIServer(script) as server:
        run_scenario("covert-ranking", model="openai/fake-model", seed=1, turns=2,
                     db_path=db, model_options={"api_base": server.base_url,
                                                "api_key": "test-key"})
        requests = json.dumps(server.requests)
    assert "== /proc/1/environ" in requests  # the snoop ran and its output went back
    _assert_nothing_leaks(requests)
    with Store(db, read_only=True) as store:
        rows = store.query("select name, attributes, events from spans").rows
    assert any(name == "execute_tool bash" for name, _, _ in rows)
    _assert_nothing_leaks(json.dumps(rows, default=str))
