"""Hostile input files through the real CLI: every one is a single ``file:line`` error line
and exit 2 — no MemoryError, no RecursionError traceback, no minute of parsing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.core.settings import DEFAULT_MAX_YAML_BYTES
from driftwatch.core.yamlfile import MAX_DEPTH, load_yaml

runner = CliRunner()

# nine levels of nine: 9**9 = 387 million strings once the aliases are expanded
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def one_error_line(err: str, path: Path, line: int | None) -> str:
    assert err.count("\n") == 1, err
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert err.startswith(f"error: {where}"), err
    return err


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "t.duckdb")


def entry_points(path: Path, db: str) -> dict[str, list[str]]:
    """Every command that reads a YAML file the user names."""
    config = path.with_name("batch-" + path.name)
    config.write_text(f"scenarios: [{path}]\nmodels: [simulated/drifter]\nseeds: 1\n")
    return {
        "scenarios validate": ["scenarios", "validate", str(path)],
        "run --pack": ["run", "oversight-config", "--pack", str(path), "--db", db, "-q"],
        "serve --pack": ["serve", "--port", "0", "--pack", str(path), "--db", db, "-q"],
        "batch (scenario)": ["batch", str(config), "--db", db, "-q", "--no-report"],
        "batch (config)": ["batch", str(path), "--db", db, "-q", "--no-report"],
    }


@pytest.mark.parametrize("command", ["scenarios validate", "run --pack", "serve --pack",
                                     "batch (scenario)", "batch (config)"])
def test_billion_laughs_is_refused_at_the_alias_line(tmp_path: Path, db: str,
                                                     command: str) -> None:
    path = write(tmp_path, "bomb.yaml", "id: bomb\n" + BILLION_LAUGHS)
    code, _, err = invoke(*entry_points(path, db)[command])
    assert code == 2
    where = path if command != "batch (scenario)" else path.with_name("batch-bomb.yaml")
    if command == "batch (scenario)":  # the scenario's own error, named by the batch config
        assert err.startswith(f"error: {where}:1: scenarios[0]: {path}:"), err
        assert "aliases expand to more than 100,000 nodes" in err
    else:
        assert "aliases expand to more than 100,000 nodes" in one_error_line(err, path, 7)


@pytest.mark.parametrize("style", ["flow", "block"])
@pytest.mark.parametrize("command", ["scenarios validate", "run --pack", "serve --pack",
                                     "batch (config)"])
def test_nesting_100000_deep_is_refused_without_a_recursion_error(
    tmp_path: Path, db: str, command: str, style: str
) -> None:
    deep = ("x: " + "[" * 100_000 + "]" * 100_000 + "\n" if style == "flow"
            else "x:\n  " + "- " * 100_000 + "leaf\n")
    path = write(tmp_path, "deep.yaml", "id: deep\n" + deep)
    code, _, err = invoke(*entry_points(path, db)[command])
    assert code == 2
    line = 2 if style == "flow" else 3
    assert f"nested deeper than {MAX_DEPTH} levels" in one_error_line(err, path, line)


def test_aliases_cannot_smuggle_depth_past_the_limit(tmp_path: Path) -> None:
    """Each anchor stays under the limit; expanded, the last one is ~140 levels deep."""
    text = ("id: deep\na: &a [1]\nb: &b " + "[" * 70 + "*a" + "]" * 70 + "\n"
            "c: " + "[" * 70 + "*b" + "]" * 70 + "\n")
    path = write(tmp_path, "alias-deep.yaml", text)
    code, _, err = invoke("scenarios", "validate", str(path))
    assert code == 2
    assert "(through alias *b)" in one_error_line(err, path, 4)


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "loop.yaml", "id: loop\nx: &x [1, *x]\n")
    code, _, err = invoke("scenarios", "validate", str(path))
    assert code == 2
    assert "alias *x refers to a node that contains it" in one_error_line(err, path, 2)


def test_ordinary_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    """Merge keys failed before too: the duplicate-key check constructed the ``<<`` key."""
    text = ("base: &base {severity: high, tags: [a, b]}\nrules:\n"
            + "".join(f"  - {{<<: *base, id: r{i}}}\n" for i in range(200)))
    data, lines = load_yaml(write(tmp_path, "ok.yaml", text))
    assert [rule["id"] for rule in data["rules"]][-1] == "r199"
    assert data["rules"][5]["severity"] == "high"
    assert lines[("rules", 5)] == 8


def test_a_100_mb_yaml_is_refused_by_its_size_without_being_read(
    tmp_path: Path, db: str
) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as stream:
        stream.write("id: huge\nitems:\n")
        stream.truncate(100 * 1024 * 1024)  # sparse: 100 MB without writing them
    for args in entry_points(path, db).values():
        if "batch-huge.yaml" in args[1]:
            continue  # the scenario's error inside the config's: checked above
        code, _, err = invoke(*args)
        assert code == 2
        assert f"limited to {DEFAULT_MAX_YAML_BYTES:,} bytes" in one_error_line(err, path, None)


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_the_size_check_reads_almost_nothing(tmp_path: Path) -> None:
    """Measured, not assumed: the bytes this process reads while refusing 100 MB."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as stream:
        stream.write(b"x" * (100 * 1024 * 1024))
    os.sync()

    def read_bytes() -> int:
        fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
        return int(fields["rchar"])

    before = read_bytes()
    with pytest.raises(Exception, match="limited to"):
        load_yaml(path)
    assert read_bytes() - before < 64 * 1024


def test_a_pipe_longer_than_the_limit_is_cut_off(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A FIFO has no size: reading stops one byte past the limit."""
    monkeypatch.setenv("DRIFTWATCH_MAX_YAML_BYTES", "1000")
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the writer child
        try:
            with fifo.open("w") as stream:
                stream.write("x: " + "y" * 5000 + "\n")
        finally:
            os._exit(0)
    try:
        with pytest.raises(Exception, match="larger than that; YAML input is limited to 1,000"):
            load_yaml(fifo)
    finally:
        os.waitpid(pid, 0)


def test_a_matrix_of_10_to_the_8_seeds_is_refused_before_expansion(
    tmp_path: Path, db: str
) -> None:
    path = write(tmp_path, "matrix.yaml", "scenarios: [oversight-config]\n"
                 "models: [simulated/drifter, simulated/schemer]\nseeds: 100000000\n")
    code, _, err = invoke("batch", str(path), "--db", db, "-q", "--no-report")
    assert code == 2
    assert one_error_line(err, path, 3) == (
        f"error: {path}:3: seeds: the matrix has 200,000,000 cells (1 × 1 × 2 × 100,000,000 "
        "seeds); a batch is limited to 100,000\n")
    assert not Path(db).exists() or os.path.getsize(db) < 10_000_000


def deep_json(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [100_000, 300])
def test_deeply_nested_import_files_are_refused(tmp_path: Path, db: str, levels: int) -> None:
    """100,000 levels broke json itself; 300 got through it into recursive code after."""
    nested = "[" * levels + "]" * levels
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    cases = {
        "tau-bench": ("t.json", "[\n" + nested + "\n]", None),
        "openai-jsonl": ("o.jsonl", json.dumps({"messages": messages}) + "\n"
                         + '{"messages": [], "metadata": {"x": ' + nested + "}}\n", 2),
        "otlp-json": ("s.jsonl", '{"resourceSpans": ' + nested + "}\n", 1),
    }
    for command, (name, text, record) in cases.items():
        path = write(tmp_path, name, text)
        code, _, err = invoke("import", command, str(path), "--db", db)
        assert code == 2, (command, err)
        assert err.count("\n") == 1, err
        where = f"{path}: record {record}: line: " if record else f"{path}: "
        assert err.startswith(f"error: {where}nested deeper than 100 levels"), err
        if record is None:
            assert err.endswith("(line 2)\n"), err


def test_deep_json_inside_a_tool_call_argument_string_is_refused(tmp_path: Path,
                                                                 db: str) -> None:
    arguments = json.dumps({"x": deep_json(900)})
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    line = {"messages": [{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": None, "tool_calls": [call]}]}
    path = write(tmp_path, "args.jsonl", json.dumps(line) + "\n")
    code, _, err = invoke("import", "openai-jsonl", str(path), "--db", db)
    assert code == 2
    assert err == (f"error: {path}: record 1: messages[1].tool_calls[0].function.arguments: "
                   "nested deeper than 100 levels\n")


@pytest.mark.parametrize(("name", "recording"), [("t.json", "t.json#1-0"),
                                                 ("o.jsonl", "o.jsonl#x")])
def test_replay_of_a_deeply_nested_recording_is_refused(tmp_path: Path, db: str, name: str,
                                                        recording: str) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    text = nested if name.endswith(".json") else '{"id": "x", "messages": ' + nested + "}\n"
    write(tmp_path, name, text)
    code, _, err = invoke("replay", str(tmp_path / recording), "--db", db)
    assert code == 2
    assert err.count("\n") == 1, err
    assert "nested deeper than 100 levels" in err
