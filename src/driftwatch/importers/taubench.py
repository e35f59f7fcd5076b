"""tau-bench result files: a JSON list of ``{task_id, trial, reward, info, traj}``.

``traj`` is the OpenAI chat conversation (system policy first); the reward becomes the
labels ``reward`` and ``label.success``. See ``docs/importers.md``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

from driftwatch.core import jsonfile
from driftwatch.core.conversation import Conversation
from driftwatch.core.importer import KEYS_MATCH, SHAPE_MATCHES, ImportFormatError, importer
from driftwatch.importers.conversation import check_messages, scalar_items

__all__ = ["DEFAULT_MODEL", "DEFAULT_SCENARIO", "TauBenchImporter", "read_taubench"]

DEFAULT_SCENARIO: Final = "taubench-airline"
DEFAULT_MODEL: Final = "openai/gpt-4o"
AGENT_NAME: Final = "taubench-agent"
# a key of tau-bench's run objects (task_id comes first in their files)
_KEY: Final = re.compile(r'"(?:task_id|traj)"\s*:')


@importer("tau-bench")
class TauBenchImporter:
    """tau-bench results files (a JSON list of ``{task_id, trial, reward, info, traj}``)."""

    def detect(self, path: Path, head: str) -> float:
        if not head.lstrip().startswith("["):
            return 0.0
        return KEYS_MATCH if _KEY.search(head) else SHAPE_MATCHES

    def load(self, path: Path, *, scenario_id: str | None = None,
             model: str | None = None) -> list[Conversation]:
        return read_taubench(path, scenario_id=scenario_id, model=model)


def read_taubench(path: Path, *, scenario_id: str | None = None,
                  model: str | None = None) -> list[Conversation]:
    """Parse and check the whole file; raises :class:`ImportFormatError` at the first bad
    record (1-based item number)."""
    try:
        items = jsonfile.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(str(path), None, "", f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ImportFormatError(str(path), None, "",
                                f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except jsonfile.JsonDepthError as exc:
        raise ImportFormatError(str(path), None, "", str(exc)) from None
    if not isinstance(items, list):
        raise ImportFormatError(str(path), None, "", "must be a JSON list of runs")
    batch_id = f"import-tau-bench-{path.stem}"
    seen: dict[str, int] = {}
    out: list[Conversation] = []
    for number, item in enumerate(items, start=1):
        try:
            conversation = _conversation(item, path.stem, batch_id,
                                         scenario_id or DEFAULT_SCENARIO, model or DEFAULT_MODEL)
        except ValueError as exc:
            field, _, problem = str(exc).partition(": ")
            raise ImportFormatError(str(path), number, field, problem) from None
        if conversation.run_id in seen:
            raise ImportFormatError(str(path), number, "task_id",
                                    f"task {item['task_id']} trial {item.get('trial', 0)} "
                                    f"repeats record {seen[conversation.run_id]}")
        seen[conversation.run_id] = number
        out.append(conversation)
    return out


def _conversation(item: Any, stem: str, batch_id: str, scenario_id: str,
                  model: str) -> Conversation:
    if not isinstance(item, dict):
        raise ValueError("item: must be an object")
    task_id, trial, reward = item.get("task_id"), item.get("trial", 0), item.get("reward")
    if not isinstance(task_id, int | str) or isinstance(task_id, bool):
        raise ValueError("task_id: must be an integer or a string")
    if not isinstance(trial, int) or isinstance(trial, bool):
        raise ValueError("trial: must be an integer")
    if reward is not None and (not isinstance(reward, int | float) or isinstance(reward, bool)):
        raise ValueError("reward: must be a number")
    messages = check_messages(item.get("traj"), "traj")
    labels: dict[str, Any] = {"source": "tau-bench", "task_id": task_id, "trial": trial}
    if reward is not None:
        labels["reward"] = float(reward)
        labels["label.success"] = float(reward) == 1.0
    labels.update({k: v for k, v in scalar_items(item).items() if k not in labels})
    info = item.get("info")
    if isinstance(info, dict):
        labels.update(scalar_items(info, "info."))
    return Conversation(
        run_id=f"taubench-{stem}-{task_id}-{trial}", messages=messages, scenario_id=scenario_id,
        model=model, seed=trial, batch_id=batch_id, labels=labels, agent_name=AGENT_NAME,
    )

