"""Local-model benchmark: SmolLM2-135M-Instruct (llamacpp/smollm2, the local extra) driving
oversight-config, in process and through llama-cpp-python's OpenAI-compatible server.

For each path and each run length (10 and 50 turns by default) it prints, from the stored
chat spans: seconds per turn (median of turns 2..n, turn 1 alone: the cold prefix), the
first and the last five turns' medians side by side (flat means the prefix cache is
re-used as the conversation grows), prompt tokens at the end, generation tokens/s; and,
in process, one prompt timed with its prefix cached vs after a KV-cache reset.

Bounded: every run has a turn limit, a per-call timeout and max_tokens; the server is
started on 127.0.0.1 and stopped at the end.

    python bench/local_model.py                       # 10 and 50 turns, both paths
    python bench/local_model.py --turns 10 --paths inprocess
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from driftwatch.model.llamacpp import resolve_model_file
from driftwatch.runner import run_scenario
from driftwatch.store import Store

OPTIONS: dict[str, Any] = {"timeout_s": 120, "max_retries": 0,
                           "extra": {"max_tokens": 128,
                                     "extra_body": {"n_ctx": 16384, "n_threads": 1}}}


def chat_rows(db: Path, run_id: str) -> list[tuple[int, float, int, int]]:
    with Store(db, read_only=True) as store:
        rows = store.query("select turn, duration_ms / 1000, input_tokens, output_tokens "
                           "from spans where run_id = ? and operation = 'chat' order by turn",
                           [run_id]).rows
    return [(int(t), float(d), int(i or 0), int(o or 0)) for t, d, i, o in rows]


def report(path: str, turns: int, summary: Any, rows: list[tuple[int, float, int, int]]) -> None:
    later = [d for t, d, _, _ in rows if t > 1]
    first5 = [d for t, d, _, _ in rows if 1 < t <= 6]
    last5 = [d for t, d, _, _ in rows[-5:]]
    tokens = sum(o for *_, o in rows)
    seconds = sum(d for _, d, _, _ in rows)
    print(f"{path:10} {turns:3} turns  status {summary.status.value:9}  "
          f"turn 1 {rows[0][1]:6.2f}s  median s/turn {statistics.median(later):5.2f}  "
          f"turns 2-6 {statistics.median(first5):5.2f}  last 5 {statistics.median(last5):5.2f}  "
          f"prompt at end {rows[-1][2]:5} tok  gen {tokens / seconds:5.1f} tok/s (incl. prefill)  "
          f"malformed {summary.malformed_tool_calls}  tool calls {summary.tool_calls}")


def cached_vs_uncached(db: Path, run_id: str) -> None:
    """The last turn's prompt, evaluated with its prefix in the KV cache and after a reset."""
    from driftwatch.model import llamacpp

    with Store(db, read_only=True) as store:
        raw = store.query("select json_extract_string(attributes, '$.\"gen_ai.input.messages\"')"
                          " from spans where run_id = ? and operation = 'chat' "
                          "order by turn desc limit 1", [run_id]).scalar()
    messages = llamacpp.render_messages(json.loads(raw), [])
    loaded = next(iter(llamacpp._models.values()))  # the model the run used, still loaded
    llama = loaded.llama
    timings = {}
    for label in ("uncached", "cached"):
        if label == "uncached":
            llama.reset()
            llama._ctx.memory_clear(True) if hasattr(llama._ctx, "memory_clear") else None
        started = time.perf_counter()
        llama.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0)
        timings[label] = time.perf_counter() - started
    prompt = llama.n_tokens
    print(f"{'':10} prefix of {prompt} tokens: uncached {timings['uncached']:.2f}s, "
          f"cached {timings['cached']:.2f}s ({timings['uncached'] / timings['cached']:.0f}x)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_model_file("smollm2")),
         "--model_alias", "smollm2", "--chat_format", "chatml-function-calling", "--host",
         "127.0.0.1", "--port", str(port), "--n_ctx", "16384", "--n_threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("llama_cpp.server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--paths", nargs="+", default=["inprocess", "server"],
                        choices=["inprocess", "server"])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dw-local-bench-"))
    for path in args.paths:
        server = None
        model, options = "llamacpp/smollm2", OPTIONS
        if path == "server":
            server, base = start_server()
            os.environ.setdefault("OPENAI_API_KEY", "local")
            model = "openai/smollm2"
            options = {"timeout_s": 120, "max_retries": 0, "api_base": base,
                       "extra": {"max_tokens": 128, "tool_choice": "auto"}}
        try:
            for turns in args.turns:
                db = folder / f"{path}-{turns}.duckdb"
                summary = run_scenario("oversight-config", model=model, turns=turns,
                                       db_path=db, model_options=options)
                rows = chat_rows(db, summary.run_id)
                report(path, turns, summary, rows)
                if path == "inprocess" and turns == max(args.turns):
                    cached_vs_uncached(db, summary.run_id)
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:  # busy in a generation: it stops now
                    server.kill()
                    server.wait(timeout=30)


if __name__ == "__main__":
    main()
