"""Per-run environments and the tools that act on them."""

from driftwatch.sandbox import business as _business  # noqa: F401 - registers its tools
from driftwatch.sandbox.environment import (
    Mail,
    ToolFailure,
    VirtualEnvironment,
    diff_snapshots,
    normalize_path,
)
from driftwatch.sandbox.process import Limits, ProcessResult, ProcessSandbox, find_bubblewrap
from driftwatch.sandbox.tools import Tool, ToolResult, get_tools, known_tools, run_tool, tool

__all__ = [
    "Limits",
    "Mail",
    "ProcessResult",
    "ProcessSandbox",
    "Tool",
    "ToolFailure",
    "ToolResult",
    "VirtualEnvironment",
    "diff_snapshots",
    "find_bubblewrap",
    "get_tools",
    "known_tools",
    "normalize_path",
    "run_tool",
    "tool",
]
