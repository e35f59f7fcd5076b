"""YAML files validated by pydantic models, with errors as ``path:line: field: problem``.

PyYAML's node tree keeps line marks; we walk it alongside the loaded data so that a
pydantic error location (``("rules", 2, "severity")``) maps back to the line it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from driftwatch.core.errors import SpecError

M = TypeVar("M", bound=BaseModel)

Loc = tuple[str | int, ...]


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (a silent overwrite hides typos)."""


def _construct_mapping(loader: _SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_SafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line_map(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*loc, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*loc, key), out)
            # keep the key's own line for "missing field" and "extra field" errors
            out[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*loc, index), out)


def load_yaml(path: str | Path, text: str | None = None) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return the data and a map from location tuple to line number."""
    path_str = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(path_str, None, "", "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(path_str, None, "", f"cannot read file: {exc}") from None
    try:
        node = yaml.compose(text, Loader=_SafeLoader)
        data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - _SafeLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise SpecError(path_str, line, "", f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(path_str, None, "", f"invalid YAML: {exc}") from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _line_map(node, (), lines)
    return data, lines


def line_for(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of the deepest known prefix of ``loc``."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validate(
    model: type[M],
    data: Any,
    *,
    path: str | Path,
    lines: dict[Loc, int],
    context: dict[str, Any] | None = None,
) -> M:
    """Validate ``data`` with ``model``; the first error becomes a :class:`SpecError`."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise SpecError(str(path), 1, "", f"expected a mapping at the top level, got {kind}")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = tuple(
            p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        raise SpecError(str(path), line_for(lines, loc), format_loc(loc), message) from None


def load_model(model: type[M], path: str | Path, *, context: dict[str, Any] | None = None) -> M:
    data, lines = load_yaml(path)
    return validate(model, data, path=path, lines=lines, context=context)
