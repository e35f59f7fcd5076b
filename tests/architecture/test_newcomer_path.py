"""The newcomer's path of docs/architecture.md is true: a new monitor and a new importer
are each one new file plus one registration line, and then work by name end to end.
Done on a copy of the package, in a subprocess that imports the copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]

MONITOR = '''\
from collections.abc import Sequence

from driftwatch.core.records import Finding, Severity, SpanRecord
from driftwatch.monitor.base import BaseMonitor
from driftwatch.monitor.registry import monitor


@monitor("every_tool_call")
class EveryToolCall(BaseMonitor):
    """One finding per executed tool call (a newcomer's first monitor)."""

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        return [self.finding(run_id=run_id, rule_id="tool-called", message=r.name,
                             severity=Severity.LOW, record=r)
                for r in records if r.operation == "execute_tool"]
'''

IMPORTER = '''\
import json
from pathlib import Path

from driftwatch.core.conversation import Conversation
from driftwatch.core.importer import KEYS_MATCH, importer


@importer("my-format")
class MyFormatImporter:
    def detect(self, path: Path, head: str) -> float:
        return KEYS_MATCH if head.startswith('{"my_format":') else 0.0

    def load(self, path: Path, *, scenario_id=None, model=None) -> list[Conversation]:
        data = json.loads(path.read_text())
        return [Conversation(run_id=run["id"], messages=run["messages"],
                             scenario_id=scenario_id or "imported", model=model or "x/y",
                             seed=0, batch_id="import") for run in data["my_format"]]
'''

CHECK = '''\
import json, sys
from pathlib import Path
from driftwatch.monitor import EngineConfig, MonitorSpec, build_engine
from driftwatch.testing import RecordFactory
from driftwatch.core.importer import detect_importer
import driftwatch.importers

engine = build_engine(EngineConfig(monitors=(MonitorSpec("every_tool_call"),)))
factory = RecordFactory(run_id="run-new")
engine.submit(factory.tool_call("read_file", {"path": "a"}, turn=1))
engine.flush()
engine.end_run("run-new", None)
print(json.dumps({"rules": [f.rule_id for f in engine.findings("run-new")]}))
engine.close()
path = Path(sys.argv[1])
found = detect_importer(path)
conversations = found.load(path)
print(json.dumps({"importer": type(found).__name__, "runs": [c.run_id for c in conversations]}))
'''


def test_a_new_monitor_and_a_new_importer_are_one_file_and_one_line_each(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src" / "driftwatch"
    shutil.copytree(ROOT / "src" / "driftwatch", src,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for kind in ("scenarios", "monitors"):
        (tmp_path / kind).symlink_to(ROOT / kind)
    # the monitor: one file, one import line
    (src / "monitor" / "drift" / "every_tool_call.py").write_text(MONITOR)
    with (src / "monitor" / "__init__.py").open("a") as init:
        init.write("from driftwatch.monitor.drift.every_tool_call import EveryToolCall  # noqa\n")
    # the importer: one file, one import line
    (src / "importers" / "my_format.py").write_text(IMPORTER)
    with (src / "importers" / "__init__.py").open("a") as init:
        init.write("from driftwatch.importers import my_format  # noqa\n")
    recording = tmp_path / "runs.json"
    recording.write_text('{"my_format": [\n {"id": "r1",\n  "messages": '
                         '[{"role": "user", "content": "hi"}]}]}\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CHECK), str(recording)],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == '{"rules": ["tool-called"]}'
    assert lines[-1] == '{"importer": "MyFormatImporter", "runs": ["r1"]}'
