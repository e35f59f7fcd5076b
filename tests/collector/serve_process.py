"""Running ``driftwatch serve`` as a real process for the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from driftwatch.collector.info import info_path


class ServeProcess:
    """``driftwatch serve --port 0`` on ``db``; ``url`` once it listens."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None,
                 new_session: bool = False) -> None:
        """``new_session``: in a process group of its own, so a test can signal the
        whole group as a terminal's Ctrl-C or ``systemd`` does."""
        self.db = db
        command = [sys.executable, "-m", "driftwatch", "serve", "--port", "0", "--db", str(db),
                   "--quiet", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **(env or {})},
                                        start_new_session=new_session)
        self.url = self._wait_ready()

    def _wait_ready(self, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        path = info_path(self.db)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.process.communicate()[1]}")
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                info = {}
            if info.get("pid") == self.process.pid:
                return str(info["url"])
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("serve did not start in time")

    def metrics(self, token: str | None = None) -> str:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{self.url}/metrics", headers=headers, timeout=10).text

    def stop(self, timeout_s: float = 60.0) -> tuple[str, str]:
        """SIGINT, as Ctrl-C would; returns stdout and stderr."""
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=timeout_s)
        return out, err

    def monitor_pids(self) -> list[int]:
        """The monitor process(es) ``serve`` spawned (multiprocessing's ``spawn_main``)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        found = []
        for child in children:
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except OSError:
                continue
        return found

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup at all
        self.process.communicate(timeout=30)


def wait_for(predicate: Any, timeout_s: float = 20.0, every_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    return predicate()
