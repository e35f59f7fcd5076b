"""The importer registry: the built-in formats are detected from real files, an unknown file
is one line naming the formats tried, and a format registered here (one class, one
decorator) is picked up by both ``driftwatch import FILE`` and a ``replay/*`` run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.core.conversation import Conversation
from driftwatch.core.errors import UsageError
from driftwatch.importers import detect_importer, importer, registered_importers
from driftwatch.importers.conversation import check_messages
from driftwatch.model.replay import load_recording
from driftwatch.store import Store

DATA = Path(__file__).resolve().parents[1] / "data"
TAUBENCH = DATA / "taubench" / "gpt-4o-airline-excerpt.json"
CHATS = DATA / "importers" / "chats.jsonl"
OTEL = DATA / "importers" / "otel-file-exporter.jsonl"
TOY_MAGIC = "#toy-chat v1"
runner = CliRunner()


@importer("toy-chat")
class ToyChatImporter:
    """A format made up for this test: a magic first line, then ``role: text`` lines.
    Registered for the whole session (as a plugin would be); it claims only its own files."""

    def detect(self, path: Path, head: str) -> float:
        return 1.0 if head.startswith(TOY_MAGIC) else 0.0

    def load(self, path: Path, *, scenario_id: str | None = None,
             model: str | None = None) -> list[Conversation]:
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        messages = [{"role": role, "content": text.strip()}
                    for role, _, text in (line.partition(":") for line in lines if line)]
        return [Conversation(run_id=f"toy-{path.stem}", messages=check_messages(messages),
                             scenario_id=scenario_id or "toy", model=model or "toy/recorded",
                             seed=0, batch_id=f"import-toy-chat-{path.stem}",
                             labels={"source": "toy-chat"})]


def _toy_file(tmp_path: Path) -> Path:
    path = tmp_path / "talk.toy"
    path.write_text(f"{TOY_MAGIC}\nsystem: Be brief.\nuser: Hello?\nassistant: Hi.\n"
                    "user: Which day is it?\nassistant: Tuesday.\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("path", "name"), [(TAUBENCH, "tau-bench"), (CHATS, "openai-jsonl"),
                                            (OTEL, "otlp-json")])
def test_each_built_in_format_is_detected_from_a_real_file(path: Path, name: str) -> None:
    assert detect_importer(path).name == name


def test_the_built_in_formats_are_registered() -> None:
    assert {"tau-bench", "openai-jsonl", "otlp-json"} <= set(registered_importers())


@pytest.mark.parametrize(("path", "name"), [(TAUBENCH, "tau-bench"), (CHATS, "openai-jsonl"),
                                            (OTEL, "otlp-json")])
def test_import_file_detects_what_the_named_subcommand_imports(path: Path, name: str,
                                                               tmp_path: Path) -> None:
    detected = runner.invoke(app, ["import", str(path), "--db", str(tmp_path / "a.db"),
                                   "--format", "json"])
    named = runner.invoke(app, ["import", name, str(path), "--db", str(tmp_path / "b.db"),
                                "--format", "json"])
    assert (detected.exit_code, named.exit_code) == (0, 0), detected.stderr + named.stderr
    assert json.loads(detected.stdout) == json.loads(named.stdout)
    assert json.loads(detected.stdout)["source"] == name


def test_an_unknown_file_is_one_line_naming_the_formats_tried(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(path), "--db", str(tmp_path / "s.db")])
    tried = ", ".join(sorted(registered_importers()))
    assert "openai-jsonl, otlp-json, tau-bench" in tried
    assert (result.exit_code, result.stderr) == (
        2, f"error: {path}: unknown format (tried {tried})\n")
    assert not (tmp_path / "s.db").exists()
    with pytest.raises(UsageError, match="unknown format"):
        load_recording(f"replay/{path}")


def test_the_importer_option_overrides_detection(tmp_path: Path) -> None:
    """A chat file named as tau-bench fails as tau-bench would fail on it."""
    result = runner.invoke(app, ["import", str(CHATS), "--importer", "tau-bench",
                                 "--db", str(tmp_path / "s.db")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {CHATS}: not valid JSON"), result.stderr
    unknown = runner.invoke(app, ["import", str(CHATS), "--importer", "nope"])
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error: unknown importer 'nope' (known: "), unknown.stderr


def test_a_new_importer_is_picked_up_by_import_and_by_replay(tmp_path: Path) -> None:
    path = _toy_file(tmp_path)
    imported = runner.invoke(app, ["import", str(path), "--db", str(tmp_path / "i.db"),
                                   "--format", "json"])
    assert imported.exit_code == 0, imported.stderr
    assert json.loads(imported.stdout)["source"] == "toy-chat"
    named = runner.invoke(app, ["import", "toy-chat", str(path), "--db", str(tmp_path / "i.db"),
                                "--format", "json"])
    assert named.exit_code == 0, named.stderr
    assert json.loads(named.stdout)["skipped"] == 1  # the same run, stored already
    replayed = runner.invoke(app, ["replay", str(path), "--db", str(tmp_path / "r.db"),
                                   "--format", "json"])
    assert replayed.exit_code == 0, replayed.stderr
    assert json.loads(replayed.stdout)["turns"] == 2
    query = ("select (attributes->>'$.\"gen_ai.output.messages\"')::json->0->>'content' "
             "from spans where name like 'chat %' order by start_time")
    for db in ("i.db", "r.db"):
        with Store(tmp_path / db, read_only=True) as store:
            assert store.query(query).rows == [("Hi.",), ("Tuesday.",)], db


def test_a_span_format_cannot_be_replayed() -> None:
    with pytest.raises(UsageError, match="otlp-json files hold spans, not conversations"):
        load_recording(f"replay/{OTEL}")


def test_a_recording_without_runs_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("[]\n", encoding="utf-8")
    with pytest.raises(UsageError, match="no conversations"):
        load_recording(f"replay/{path}")


def test_replay_reaches_the_importers_through_the_entry_point_not_an_import() -> None:
    """The model layer imports no importer; the registry loads the built-ins by entry
    point when a recording is first read."""
    code = ("import sys; from driftwatch.model.replay import load_recording; "
            "assert not any(m.startswith('driftwatch.importers') for m in sys.modules); "
            f"print(load_recording({f'replay/{TAUBENCH}#38-2'!r}).run_id)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert (result.returncode, result.stdout) == (0, "taubench-gpt-4o-airline-excerpt-38-2\n"), \
        result.stderr
