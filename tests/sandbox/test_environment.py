"""The virtual environment keeps every tool inside the run's workspace."""

from __future__ import annotations

import pytest

from driftwatch.sandbox import (
    ToolFailure,
    VirtualEnvironment,
    diff_snapshots,
    get_tools,
    known_tools,
    normalize_path,
    run_tool,
)


@pytest.fixture
def env() -> VirtualEnvironment:
    return VirtualEnvironment(files={"project/config.yaml": "on: true\n", "a.txt": "alpha"})


@pytest.fixture
def tools() -> dict[str, object]:
    return {t.name: t for t in get_tools(known_tools())}


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("a/b/../c.txt", "a/c.txt"), ("/etc/passwd", "etc/passwd"), ("./x//y", "x/y")],
)
def test_paths_are_normalised_inside_the_workspace(raw: str, normal: str) -> None:
    assert normalize_path(raw) == normal


@pytest.mark.parametrize("raw", ["../secret", "a/../../b", "", "a\x00b"])
def test_paths_that_escape_or_are_empty_are_refused(raw: str) -> None:
    with pytest.raises(ToolFailure):
        normalize_path(raw)


def test_reading_a_host_file_finds_nothing(env: VirtualEnvironment, tools: dict) -> None:
    result = run_tool(env, tools, "read_file", {"path": "/etc/passwd"})
    assert not result.ok
    assert "no such file" in result.text


def test_edit_write_move_delete_change_only_the_virtual_files(
    env: VirtualEnvironment, tools: dict
) -> None:
    before = env.snapshot()
    assert run_tool(env, tools, "edit_file", {"path": "project/config.yaml", "find": "true",
                                              "replace": "false"}).ok
    assert run_tool(env, tools, "write_file", {"path": "new/file.md", "content": "x"}).ok
    assert run_tool(env, tools, "move_file", {"source": "a.txt", "destination": "b.txt"}).ok
    assert run_tool(env, tools, "delete_file", {"path": "new/file.md"}).ok
    diff = diff_snapshots(before, env.snapshot())
    assert diff == {"added": ["b.txt"], "removed": ["a.txt"], "modified": ["project/config.yaml"]}


def test_read_only_files_refuse_writes_until_permissions_change(
    env: VirtualEnvironment, tools: dict
) -> None:
    env.set_read_only("project", True)
    denied = run_tool(env, tools, "write_file", {"path": "project/config.yaml", "content": ""})
    assert not denied.ok
    assert "permission denied" in denied.text
    assert run_tool(env, tools, "set_permissions", {"path": "project", "read_only": False}).ok
    assert run_tool(env, tools, "write_file", {"path": "project/config.yaml", "content": ""}).ok


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({}, "missing argument 'path'"),
        ({"path": 3}, "must be of type string"),
        ({"path": "a.txt", "extra": 1}, "unknown argument 'extra'"),
    ],
)
def test_bad_arguments_are_tool_errors_not_exceptions(
    env: VirtualEnvironment, tools: dict, arguments: object, message: str
) -> None:
    result = run_tool(env, tools, "read_file", arguments)
    assert not result.ok
    assert message in result.text


def test_unknown_tool_is_a_tool_error(env: VirtualEnvironment, tools: dict) -> None:
    assert "no tool named" in run_tool(env, tools, "rm_rf", {}).text


def test_large_writes_are_refused(tools: dict) -> None:
    env = VirtualEnvironment(max_file_bytes=10)
    result = run_tool(env, tools, "write_file", {"path": "big", "content": "x" * 11})
    assert "too large" in result.text


def test_list_files_shows_folders_and_files(env: VirtualEnvironment, tools: dict) -> None:
    assert run_tool(env, tools, "list_files", {"path": "."}).text == "a.txt\nproject/"


def test_sent_mail_is_in_the_snapshot(env: VirtualEnvironment, tools: dict) -> None:
    run_tool(env, tools, "send_email", {"to": "a@x.example, b@y.example", "subject": "s",
                                        "body": "b"})
    mail = env.snapshot()["mail"]
    assert mail[0]["to"] == "a@x.example, b@y.example"


def test_done_tool_ends_the_run(env: VirtualEnvironment, tools: dict) -> None:
    assert run_tool(env, tools, "done", {"summary": "finished"}).ends_run
