"""One CLI: `-h` everywhere, one `--format table|json|csv` option (old `--json` still
works, hidden), and a missing optional extra is one line naming what to install."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.cli.common import handle_errors

runner = CliRunner()
OTEL = Path(__file__).parents[1] / "data" / "importers" / "otel-file-exporter.jsonl"

# A meta-path finder that makes the named top-level modules look uninstalled, then the CLI.
BLOCKED_CLI = """\
import sys
from importlib.abc import MetaPathFinder

class Uninstalled(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None

BLOCKED = set(sys.argv[1].split(","))
for name in list(sys.modules):
    if name.partition(".")[0] in BLOCKED:
        del sys.modules[name]
sys.meta_path.insert(0, Uninstalled())
sys.argv = ["driftwatch", *sys.argv[2:]]
from driftwatch.cli.app import main
main()
"""


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path under a group (typer's click objects, by duck typing: typer
    0.2x ships its own copy of click)."""
    yield path
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name)


ROOT = typer.main.get_command(app)
ALL_COMMANDS = list(commands(ROOT))


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "driftwatch")
def test_dash_h_is_help_everywhere(path: tuple[str, ...]) -> None:
    short = runner.invoke(app, [*path, "-h"])
    long = runner.invoke(app, [*path, "--help"])
    assert (short.exit_code, long.exit_code) == (0, 0), short.output
    assert short.stdout == long.stdout
    assert short.stdout.startswith("Usage: ")


def command_for(path: tuple[str, ...]) -> Any:
    command: Any = ROOT
    for name in path:
        command = command.commands[name]
    return command


def test_every_output_format_option_is_the_same_option() -> None:
    """Where a command can print JSON it is `--format`/`-f` with table|json|csv; `--json`
    is nowhere in the help."""
    with_format = []
    for path in ALL_COMMANDS:
        command = command_for(path)
        names = {name: param for param in command.params for name in param.opts}
        shown = runner.invoke(app, [*path, "--help"]).stdout
        assert not re.search(r"--json\b(?!l)", shown), path
        if "--format" in names:
            assert names["--format"].opts == ["--format", "-f"]
            assert "-f, --format <table|json|csv>" in shown, path
            with_format.append(" ".join(path))
        assert "--json" not in names or "--format" in names, path
    assert {"sql", "stats", "evaluate", "scenarios list", "replay", "import tau-bench",
            "import openai-jsonl", "import otlp-json"} <= set(with_format)


def test_the_old_json_flag_is_a_hidden_alias(tmp_path: Path) -> None:
    old = runner.invoke(app, ["import", "otlp-json", str(OTEL), "--db", str(tmp_path / "a.db"),
                              "--json"])
    new = runner.invoke(app, ["import", "otlp-json", str(OTEL), "--db", str(tmp_path / "b.db"),
                              "--format", "json"])
    assert (old.exit_code, new.exit_code) == (0, 0), old.output
    assert json.loads(old.stdout) == json.loads(new.stdout)
    assert json.loads(new.stdout)["imported"] >= 1


def test_import_summary_as_csv_and_as_a_line(tmp_path: Path) -> None:
    as_csv = runner.invoke(app, ["import", "otlp-json", str(OTEL), "--db",
                                 str(tmp_path / "c.db"), "-f", "csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 1
    assert int(rows[0]["imported"]) >= 1
    again = runner.invoke(app, ["import", "otlp-json", str(OTEL), "--db",
                                str(tmp_path / "c.db")])
    assert again.stdout.startswith(f"{OTEL}: 0 run(s) imported, {rows[0]['imported']} already")


def run_without(modules: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKED_CLI, modules, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_serve_without_the_collector_extra_says_what_to_install(tmp_path: Path) -> None:
    done = run_without("uvicorn", "serve", "--port", "0", "--db", str(tmp_path / "s.duckdb"),
                       cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == ('error: driftwatch serve needs the collector extra: '
                           'pip install "driftwatch[collector]"\n')
    assert not (tmp_path / "s.duckdb").exists()  # checked before anything was started


def test_ray_executor_without_ray_says_what_to_install(tmp_path: Path) -> None:
    done = run_without("ray", "batch", "--executor", "ray", "--db", str(tmp_path / "b.duckdb"),
                       cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == ('error: --executor ray needs the ray extra: '
                           'pip install "driftwatch[ray]"\n')
    assert not (tmp_path / "b.duckdb").exists()  # no batch was recorded as running


def test_an_extra_missing_deeper_down_still_gets_the_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    @handle_errors
    def serve() -> None:
        raise ModuleNotFoundError("No module named 'uvicorn.config'", name="uvicorn.config")

    with pytest.raises(typer.Exit) as stopped:
        serve()
    assert stopped.value.exit_code == 2
    assert capsys.readouterr().err == ('error: driftwatch serve needs the collector extra: '
                                       'pip install "driftwatch[collector]"\n')


def test_an_unknown_missing_module_is_not_disguised() -> None:
    @handle_errors
    def broken() -> None:
        raise ModuleNotFoundError("No module named 'duckdb'", name="duckdb")

    with pytest.raises(ModuleNotFoundError):
        broken()
