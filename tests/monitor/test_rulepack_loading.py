"""Rule-pack files: the format, and every error as ``path:line: field: problem``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from driftwatch.core import FindingKind, NotFoundError, Severity, SpecError
from driftwatch.monitor import (
    builtin_pack_paths,
    discover_packs,
    load_rule_pack,
    load_rule_packs,
    resolve_packs,
)

PackWriter = Callable[..., Path]

MINIMAL = """\
pack: {pack}
rules:
  - id: {rule}
    severity: high
    when: tool_name = 'delete_file'
"""


def test_oversight_pack_loads_with_all_fields(oversight_pack: Path) -> None:
    pack = load_rule_pack(oversight_pack)
    assert pack.pack == "oversight-config"
    assert pack.scenarios == ["oversight-config"]
    assert pack.source == str(oversight_pack)
    [rule] = pack.rules
    assert rule.severity is Severity.CRITICAL
    assert rule.kind is FindingKind.VIOLATION
    assert rule.message == "{tool_name} on {tool_arguments[path]} at turn {turn}"
    [check] = pack.final_state
    assert check.id == "oversight-disabled"
    assert "oversight_enabled" in check.expect


def _error(path: Path, load: Callable[[Path], object] = load_rule_pack) -> str:
    # try/except rather than pytest.raises(...) as info: a kept traceback would hold the
    # store's module-global DuckDB connection alive until interpreter exit
    try:
        load(path)
    except SpecError as error:
        return str(error)
    raise AssertionError(f"{path} loaded without a SpecError")


def test_bad_severity_points_at_its_line(write_pack: PackWriter) -> None:
    path = write_pack(
        """\
        pack: p
        rules:
          - id: r1
            severity: severe
            when: tool_name = 'x'
        """
    )
    assert _error(path) == (
        f"{path}:4: rules[0].severity: unknown severity 'severe' "
        "(allowed: info, low, medium, high, critical)"
    )


def test_unknown_field_points_at_its_line(write_pack: PackWriter) -> None:
    path = write_pack(
        """\
        pack: p
        rules:
          - id: r1
            severity: low
            when: tool_name = 'x'
            sevrity: high
        """
    )
    assert _error(path) == f"{path}:6: rules[0].sevrity: unknown field"


def test_bad_sql_in_when_points_at_the_when_line(write_pack: PackWriter) -> None:
    path = write_pack(
        """\
        pack: p
        rules:
          - id: r1
            severity: low
            when: tool_name = 'x'
          - id: r2
            severity: low
            when: no_such_column = 1
        """
    )
    message = _error(path)
    assert message.startswith(f"{path}:8: rules[1].when: invalid SQL predicate: ")
    assert "no_such_column" in message


def test_sql_syntax_error_in_when_is_reported(write_pack: PackWriter) -> None:
    path = write_pack(
        """\
        pack: p
        rules:
          - id: r1
            severity: low
            when: tool_name = = 'x'
        """
    )
    assert _error(path).startswith(f"{path}:5: rules[0].when: invalid SQL predicate: ")


def test_missing_rule_id_points_at_the_rule(write_pack: PackWriter) -> None:
    path = write_pack(
        """\
        pack: p
        rules:
          - severity: low
            when: tool_name = 'x'
        """
    )
    assert _error(path) == f"{path}:3: rules[0].id: Field required"


def test_missing_pack_id_is_reported(write_pack: PackWriter) -> None:
    path = write_pack("rules: []\n")
    assert _error(path) == f"{path}:1: pack: Field required"


def test_duplicate_rule_ids_across_packs_name_both_places(write_pack: PackWriter) -> None:
    first = write_pack(MINIMAL.format(pack="a", rule="same"), "a.yaml")
    second = write_pack(
        "pack: b\nrules:\n  - id: other\n    severity: low\n    when: 'true'\n"
        "  - id: same\n    severity: low\n    when: 'true'\n",
        "b.yaml",
    )
    message = _error(first, lambda _: load_rule_packs([first, second]))
    assert message == (f"{second}:6: rules[1].id: duplicate rule id 'same' (also in {first}:3)")


def test_duplicate_ids_between_rules_and_final_state_are_rejected(
    write_pack: PackWriter,
) -> None:
    path = write_pack(
        """\
        pack: p
        rules:
          - id: r1
            severity: low
            when: tool_name = 'x'
        final_state:
          - id: r1
            severity: low
            expect: 'true'
        """
    )
    assert _error(path) == f"{path}:7: final_state[0].id: duplicate rule id 'r1' (also in {path}:3)"


def test_duplicate_pack_ids_are_rejected(write_pack: PackWriter) -> None:
    first = write_pack(MINIMAL.format(pack="same", rule="r1"), "a.yaml")
    second = write_pack(MINIMAL.format(pack="same", rule="r2"), "b.yaml")
    with pytest.raises(SpecError, match=r"b\.yaml:1: pack: duplicate pack id 'same'"):
        load_rule_packs([first, second])


def test_bad_kind_lists_the_allowed_kinds(write_pack: PackWriter) -> None:
    path = write_pack(
        "pack: p\nrules:\n  - id: r1\n    severity: low\n    kind: oops\n    when: 'true'\n"
    )
    message = _error(path)
    assert message.startswith(f"{path}:5: rules[0].kind: Input should be 'violation'")


def test_invalid_yaml_reports_the_line(write_pack: PackWriter) -> None:
    path = write_pack("pack: p\nrules: [\n  - id: x\n")
    assert _error(path).startswith(f"{path}:")
    assert "invalid YAML" in _error(path)


def test_duplicate_yaml_key_is_an_error(write_pack: PackWriter) -> None:
    path = write_pack("pack: p\npack: q\n")
    assert _error(path) == f"{path}:2: invalid YAML: duplicate key 'pack'"


def test_missing_file_is_reported(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: file not found"


def test_packs_in_working_directory_monitors_are_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "monitors"
    local.mkdir()
    (local / "local-pack.yaml").write_text(MINIMAL.format(pack="local-pack", rule="local-rule"))
    monkeypatch.chdir(tmp_path)
    assert local / "local-pack.yaml" in builtin_pack_paths()
    assert "local-pack" in discover_packs()
    [pack] = resolve_packs(["local-pack"])
    assert pack.rules[0].id == "local-rule"


def test_resolve_packs_accepts_paths_and_loads_a_file_once(oversight_pack: Path) -> None:
    packs = resolve_packs([oversight_pack, str(oversight_pack)])
    assert [pack.pack for pack in packs] == ["oversight-config"]


def test_unknown_pack_id_lists_the_known_packs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "monitors"
    local.mkdir()
    (local / "mine.yaml").write_text(MINIMAL.format(pack="mine", rule="r"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFoundError, match=r"unknown rule pack 'nope' \(known: .*mine"):
        resolve_packs(["nope"])


def test_path_that_does_not_exist_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        resolve_packs([str(tmp_path / "missing.yaml")])


def test_every_shipped_pack_loads_and_is_recorded_by_id() -> None:
    packs = load_rule_packs(builtin_pack_paths())
    for pack in packs:
        # a built-in pack is recorded by id, so a spec rebuilds on any machine
        assert pack.spec_ref == pack.pack


def _copy_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """``./monitors`` holding a copy of the built-in packs: a checkout beside a
    non-editable install of the same version."""
    from driftwatch.core.resources import builtin_dir

    builtin = builtin_dir("monitors")
    assert builtin is not None
    local = tmp_path / "monitors"
    local.mkdir()
    for path in builtin.glob("*.yaml"):
        (local / path.name).write_text(path.read_text())
    monkeypatch.chdir(tmp_path)
    return builtin, local


def test_identical_builtin_and_local_packs_are_one_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtin, _local = _copy_builtin(tmp_path, monkeypatch)
    paths = builtin_pack_paths()
    assert sorted(p.name for p in paths) == sorted(p.name for p in builtin.glob("*.yaml"))
    assert all(path.parent == builtin for path in paths)  # the portable built-in copy
    packs = load_rule_packs(paths)
    assert all(pack.spec_ref == pack.pack for pack in packs)
    assert len(discover_packs()) == len(paths)


def test_a_real_conflict_names_both_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtin, local = _copy_builtin(tmp_path, monkeypatch)
    changed = local / "covert-ranking.yaml"
    changed.write_text(changed.read_text().replace("severity: critical", "severity: low", 1))
    with pytest.raises(SpecError) as error:
        builtin_pack_paths()
    message = str(error.value)
    assert message.startswith(f"{changed}:")
    assert str(builtin / "covert-ranking.yaml") in message
    assert "is also defined, differently" in message
    # by id, ./monitors takes precedence over the built-in pack
    [pack] = resolve_packs(["covert-ranking"])
    assert pack.source == str(changed)


def test_two_local_files_with_one_pack_id_are_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "monitors"
    local.mkdir()
    (local / "a.yaml").write_text(MINIMAL.format(pack="twice", rule="r1"))
    (local / "b.yaml").write_text(MINIMAL.format(pack="twice", rule="r2"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match=rf"b.yaml:\d+: pack: duplicate pack id 'twice' "
                                        rf"\(also in {local / 'a.yaml'}\)"):
        builtin_pack_paths()
