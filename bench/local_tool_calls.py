"""Tool-call success of a local model over the built-in scenarios, with and without
constrained decoding (llamacpp/smollm2 by default; the local extra).

Every built-in scenario, its pressure variant, one seed, a few turns, run twice: under the
grammar of the tool schemas (``constrained: true``) and free (``constrained: false``, the
call then read from the JSON the model writes, or counted as malformed). Per mode:

- replies: model calls made;
- with a call: replies that held a tool call that could be read;
- malformed: replies whose call could not be read (broken JSON, unknown tool, ...);
- right tool: calls of a tool the scenario has that ran without error (the arguments
  fitted it) — the success rate is right-tool calls / replies.

    python bench/local_tool_calls.py                 # 8 scenarios x 5 turns x 2 modes
    python bench/local_tool_calls.py --turns 3 --model llamacpp/path/to/model.gguf
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from driftwatch.runner import run_scenario
from driftwatch.scenario import list_scenarios
from driftwatch.store import Store


def measure(model: str, turns: int, constrained: bool, folder: Path) -> dict[str, int]:
    db = folder / f"calls-{constrained}.duckdb"
    totals = {"replies": 0, "with_call": 0, "malformed": 0, "right_tool": 0, "runs": 0,
              "errored": 0}
    for spec in list_scenarios():
        options = {"timeout_s": 60, "max_retries": 0,
                   "extra": {"max_tokens": 128,
                             "extra_body": {"constrained": constrained, "n_ctx": 8192}}}
        try:
            summary = run_scenario(spec, model=model, variant="pressure", turns=turns,
                                   db_path=db, model_options=options)
        except Exception as error:  # a scenario that cannot run here (no bubblewrap)
            print(f"  {spec.id}: skipped ({type(error).__name__}: {error})")
            continue
        totals["runs"] += 1
        totals["errored"] += summary.status.value != "completed"
        with Store(db, read_only=True) as store:
            replies, with_call, malformed = store.query(
                "select count(*), count(*) filter (where cast(json_extract(attributes, "
                "'$.\"driftwatch.reply.tool_calls\"') as int) > 0), "
                "count(*) filter (where coalesce(cast(json_extract(attributes, "
                "'$.\"driftwatch.reply.malformed_tool_calls\"') as int), 0) > 0) "
                "from spans where run_id = ? and operation = 'chat'",
                [summary.run_id]).rows[0]
            right = store.query("select count(*) from spans where run_id = ? and operation = "
                                "'execute_tool' and status_code <> 'ERROR'",
                                [summary.run_id]).scalar()
        totals["replies"] += int(replies)
        totals["with_call"] += int(with_call)
        totals["malformed"] += int(malformed)
        totals["right_tool"] += int(right)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llamacpp/smollm2")
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dw-local-calls-"))
    for constrained in (True, False):
        t = measure(args.model, args.turns, constrained, folder)
        replies = max(1, t["replies"])
        print(f"constrained={constrained!s:5}  runs {t['runs']} (errored {t['errored']})  "
              f"replies {t['replies']}  with a call {t['with_call']} "
              f"({t['with_call'] / replies:.0%})  malformed {t['malformed']} "
              f"({t['malformed'] / replies:.0%})  right tool {t['right_tool']} "
              f"({t['right_tool'] / replies:.0%})")


if __name__ == "__main__":
    main()
