"""Bad import files: one line naming the file, record and field; exit 2; nothing stored."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.store import Store

runner = CliRunner()

Item = dict[str, Any]


def _break_arguments(items: list[Item]) -> None:
    call_message = next(i for i, m in enumerate(items[2]["traj"]) if m.get("tool_calls"))
    items[2]["traj"][call_message]["tool_calls"][0]["function"]["arguments"] = "{not json"


def _first_call_index(item: Item) -> int:
    return next(i for i, m in enumerate(item["traj"]) if m.get("tool_calls"))


CASES: list[tuple[str, Callable[[list[Item]], None], Callable[[list[Item]], str]]] = [
    ("arguments not JSON", _break_arguments,
     lambda items: f"record 3: traj[{_first_call_index(items[2])}].tool_calls[0]"
                   ".function.arguments: not valid JSON"),
    ("arguments not an object",
     lambda items: items[4]["traj"][_first_call_index(items[4])]["tool_calls"][0]["function"]
     .__setitem__("arguments", "[1, 2]"),
     lambda items: f"record 5: traj[{_first_call_index(items[4])}].tool_calls[0]"
                   ".function.arguments: must be a JSON object"),
    ("unknown role", lambda items: items[1]["traj"][2].__setitem__("role", "robot"),
     lambda _: "record 2: traj[2].role: must be one of assistant, system, tool, user, "
               "got 'robot'"),
    ("tool message answering nothing",
     lambda items: items[0]["traj"].insert(1, {"role": "tool", "tool_call_id": "call_x",
                                               "content": "?"}),
     lambda _: "record 1: traj[1].tool_call_id: answers no earlier tool call ('call_x')"),
    ("missing task id", lambda items: items[6].pop("task_id"),
     lambda _: "record 7: task_id: must be an integer or a string"),
    ("trial not an integer", lambda items: items[5].__setitem__("trial", "2"),
     lambda _: "record 6: trial: must be an integer"),
    ("reward not a number", lambda items: items[5].__setitem__("reward", "good"),
     lambda _: "record 6: reward: must be a number"),
    ("no trajectory", lambda items: items[8].pop("traj"),
     lambda _: "record 9: traj: must be a non-empty list of messages"),
    ("user message without text", lambda items: items[3]["traj"][1].__setitem__("content", None),
     lambda _: "record 4: traj[1].content: a user message needs text"),
    ("the same task and trial twice", lambda items: items.append(copy.deepcopy(items[0])),
     lambda items: f"record 13: task_id: task {items[0]['task_id']} trial {items[0]['trial']} "
                   "repeats record 1"),
    ("no assistant message",
     lambda items: items[9].__setitem__("traj", items[9]["traj"][:2]),
     lambda _: "record 10: traj: has no assistant message"),
]


def _stored(db: Path) -> tuple[int, int, int]:
    with Store(db) as store:
        return store.query("select (select count(*) from runs), (select count(*) from spans), "
                           "(select count(*) from findings)").rows[0]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in CASES],
                         ids=[name for name, _, _ in CASES])
def test_a_bad_record_is_named_and_nothing_is_imported(
    excerpt: Path, tmp_path: Path, mutate: Callable[[list[Item]], None],
    expected: Callable[[list[Item]], str],
) -> None:
    items = json.loads(excerpt.read_text())
    mutate(items)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(items))
    db = tmp_path / "store.duckdb"
    result = runner.invoke(app, ["import", "tau-bench", str(bad), "--db", str(db)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {bad}: {expected(items)}\n"
    assert not db.exists() or _stored(db) == (0, 0, 0)


def test_a_file_that_is_not_json_is_named_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[\n{"task_id": 1,\n')
    result = runner.invoke(app, ["import", "tau-bench", str(bad), "--db",
                                 str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {bad}: not valid JSON (line 3: ")
    assert result.stderr.count("\n") == 1


def test_a_json_object_instead_of_a_list_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"task_id": 1}')
    result = runner.invoke(app, ["import", "tau-bench", str(bad), "--db",
                                 str(tmp_path / "s.duckdb")])
    assert (result.exit_code, result.stderr) == (2, f"error: {bad}: must be a JSON list of runs\n")


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", "tau-bench", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.json'}: no such file\n"


def test_a_failed_import_leaves_earlier_imports_untouched(excerpt: Path, tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    items = json.loads(excerpt.read_text())
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(items[:3]))
    assert runner.invoke(app, ["import", "tau-bench", str(good), "--db", str(db)]).exit_code == 0
    before = _stored(db)
    _break_arguments(items)
    bad.write_text(json.dumps(items))
    assert runner.invoke(app, ["import", "tau-bench", str(bad), "--db", str(db)]).exit_code == 2
    assert _stored(db) == before


def test_a_write_that_fails_midway_rolls_back_everything(excerpt: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs are written after the spans in one transaction: a failure there keeps no span."""
    from driftwatch.core.errors import StoreError

    db = tmp_path / "store.duckdb"
    calls = {"n": 0}
    original = Store.upsert_run

    def failing(self: Store, info: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise StoreError("disk full (simulated)")
        original(self, info)

    monkeypatch.setattr(Store, "upsert_run", failing)
    result = runner.invoke(app, ["import", "tau-bench", str(excerpt), "--db", str(db)])
    assert (result.exit_code, result.stderr) == (1, "error: disk full (simulated)\n")
    monkeypatch.setattr(Store, "upsert_run", original)
    assert _stored(db) == (0, 0, 0)


def test_an_unknown_pack_fails_before_the_store_is_created(excerpt: Path, tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    result = runner.invoke(app, ["import", "tau-bench", str(excerpt), "--db", str(db),
                                 "--pack", "no-such-pack"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "no-such-pack" in result.stderr
    assert not db.exists()
