"""YAML files validated by pydantic models, with errors as ``path:line: field: problem``.

PyYAML's node tree keeps line marks; we walk it alongside the loaded data so that a
pydantic error location (``("rules", 2, "severity")``) maps back to the line it came from.

Every YAML file driftwatch reads (scenarios, rule packs, batch and alert configs) comes
through :func:`load_yaml`, which refuses hostile input before building anything from it:
a file over the size limit is refused from its size alone (never read whole); then one
pass over the parser's event stream (libyaml's, when PyYAML has it) checks the nesting
depth — counting what an alias would expand to — and the nodes that aliases add, so a
"billion laughs" file or 100,000 nested brackets become a one-line ``path:line`` error
instead of a MemoryError or a RecursionError. Recursive aliases are refused too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from driftwatch.core.errors import SpecError
from driftwatch.core.settings import max_yaml_bytes

M = TypeVar("M", bound=BaseModel)

Loc = tuple[str | int, ...]

# The built-in files nest at most ~8 deep and use no aliases; these bounds are far above
# any hand-written file and far below what exhausts memory or Python's recursion limit.
MAX_DEPTH: Final = 100
MAX_ALIAS_NODES: Final = 100_000

# libyaml parses about ten times faster than the pure-Python parser; both give marks.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LIBYAML_DEPTH: Final = "exceeded maximum nesting depth"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


class _SafeLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate mapping keys (a silent overwrite hides typos)."""


def _construct_mapping(loader: _SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # ``<<: *base``: merged by construct_mapping (may repeat, by the spec)
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


class _LimitError(Exception):
    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = mark.line + 1 if mark is not None else None


@dataclass
class _Open:
    """A collection whose end event has not come yet."""

    anchor: str | None
    first_node: int  # the node count when it began
    height: int = 0  # of its tallest child so far (a scalar is 0, a collection 1 + …)


class _LimitScan:
    """Walks the event stream (cheap: no nodes are built) and raises :class:`_LimitError`
    at the first event past a limit. Heights and sizes are counted as if every alias were
    expanded, which is what the walk over the node tree and pydantic later see."""

    def __init__(self) -> None:
        self.stack: list[_Open] = []
        self.heights: dict[str, int] = {}  # anchor -> height of the node it names
        self.sizes: dict[str, int] = {}  # anchor -> nodes it expands to
        self.open_anchors: dict[str, int] = {}
        self.nodes = 0
        self.alias_nodes = 0

    def run(self, text: str) -> None:
        parser = _BaseLoader(text)
        try:
            while parser.check_event():
                event = parser.get_event()  # type: ignore[no-untyped-call]
                if isinstance(event, yaml.AliasEvent):
                    self.alias(event)
                elif isinstance(event, yaml.ScalarEvent):
                    self.leaf(event.anchor, 0, 1)
                elif isinstance(event, yaml.CollectionStartEvent):
                    self.start(event)
                elif isinstance(event, yaml.CollectionEndEvent):
                    self.end()
        except yaml.YAMLError:
            return  # a syntax error: the composer reports it with its mark
        finally:
            parser.dispose()

    def alias(self, event: yaml.AliasEvent) -> None:
        anchor = str(event.anchor)
        if self.open_anchors.get(anchor):
            raise _LimitError(f"alias *{anchor} refers to a node that contains it",
                              event.start_mark)
        if anchor not in self.sizes:
            return  # undefined: the composer says so
        if len(self.stack) + self.heights[anchor] > MAX_DEPTH:
            raise _LimitError(f"nested deeper than {MAX_DEPTH} levels (through alias "
                              f"*{anchor})", event.start_mark)
        self.alias_nodes += self.sizes[anchor]
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise _LimitError(f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes "
                              "(an alias bomb?)", event.start_mark)
        self.leaf(None, self.heights[anchor], self.sizes[anchor])

    def leaf(self, anchor: str | None, height: int, size: int) -> None:
        """A finished child of the innermost open collection."""
        self.nodes += size
        if anchor is not None:
            self.heights[anchor], self.sizes[anchor] = height, size
        if self.stack and height > self.stack[-1].height:
            self.stack[-1].height = height

    def start(self, event: yaml.CollectionStartEvent) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise _LimitError(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        anchor = event.anchor
        self.stack.append(_Open(anchor, self.nodes))
        if anchor is not None:
            self.open_anchors[anchor] = self.open_anchors.get(anchor, 0) + 1

    def end(self) -> None:
        closed = self.stack.pop()
        if closed.anchor is not None:
            self.open_anchors[closed.anchor] -= 1
        self.leaf(closed.anchor, closed.height + 1, self.nodes - closed.first_node + 1)


def _read_text(path: Path, limit: int) -> str:
    """The file's text, refusing one over ``limit`` bytes by its size (or, for a pipe or
    device, after reading one byte past the limit): never the whole of a huge file."""
    path_str = str(path)
    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > limit:
                raise SpecError(path_str, None, "", _too_big(size, limit))
            data = stream.read(limit + 1)
    except FileNotFoundError:
        raise SpecError(path_str, None, "", "file not found") from None
    except OSError as exc:
        raise SpecError(path_str, None, "", f"cannot read file: {exc}") from None
    if len(data) > limit:
        raise SpecError(path_str, None, "", _too_big(None, limit))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(path_str, line, "", f"cannot read file: not UTF-8 ({exc.reason})") from None


def _too_big(size: int | None, limit: int) -> str:
    what = f"{size:,} bytes" if size is not None else "larger than that"
    return (f"file is {what}; YAML input is limited to {limit:,} bytes "
            "(DRIFTWATCH_MAX_YAML_BYTES raises the limit)")


def load_yaml(path: str | Path, text: str | None = None) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file within the size, depth and alias limits; return the data and a
    map from location tuple to line number. Raises :class:`SpecError` (one line, with the
    line number where there is one) for a file that is unreadable, malformed or over a
    limit."""
    path_str = str(path)
    limit = max_yaml_bytes()
    if text is None:
        text = _read_text(Path(path), limit)
    elif len(text) > limit:
        raise SpecError(path_str, None, "", _too_big(len(text), limit))
    loader: _SafeLoader | None = None
    try:
        _LimitScan().run(text)
        loader = _SafeLoader(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _LimitError as exc:
        raise SpecError(path_str, exc.line, "", exc.problem) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = f"invalid YAML: {exc.problem or exc}"
        if exc.problem == _LIBYAML_DEPTH:  # libyaml's own bound (1,000) came first
            problem = f"nested deeper than {MAX_DEPTH} levels"
        raise SpecError(path_str, line, "", problem) from None
    except yaml.YAMLError as exc:
        raise SpecError(path_str, None, "", f"invalid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
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
