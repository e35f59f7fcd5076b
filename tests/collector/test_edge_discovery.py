"""A planted ``<db>.collector.json`` does not redirect ``driftwatch sql``: the file is
trusted only when owned by the user, not writable by others, not a symlink, and its
process runs as the user and listens on the URL's port. Otherwise one warning line, and
the query runs on the database file; the token never goes to the planted URL."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwatch.collector.info import CollectorInfo, info_path, read_info, write_info
from driftwatch.store import Store
from driftwatch.testing import RecordFactory

pytestmark = pytest.mark.network_loopback

TOKEN = "tok-" + "9" * 20


class Catcher:
    """An HTTP server that records what it is sent and answers like a collector."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                catcher.seen.append(dict(self.headers))
                body = json.dumps({"columns": ["n"], "rows": [[666]], "truncated": False})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    catcher = Catcher()
    yield catcher
    catcher.server.shutdown()
    catcher.server.server_close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "t.duckdb"
    with Store(path) as store:
        store.write_spans([RecordFactory(run_id="r").tool_call("shell", {"c": "ls"}, 1)])
    return path


def plant(db: Path, url: str, pid: int, mode: int = 0o666) -> Path:
    path = info_path(db)
    path.write_text(json.dumps({"url": url, "pid": pid, "token_required": True}))
    path.chmod(mode)
    return path


def run_sql(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftwatch", "sql", "--db", str(db), "--format", "json",
         "select count(*) as n from spans"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "DRIFTWATCH_TOKEN": TOKEN})


def assert_fell_back(result: subprocess.CompletedProcess[str], catcher: Catcher,
                     reason: str) -> None:
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 1}]  # the file's own rows, not 666
    assert catcher.seen == []  # the token went nowhere
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("warning: ignoring ")
    assert reason in warnings[0]


def test_a_world_writable_discovery_file_is_ignored(db: Path, catcher: Catcher) -> None:
    """The planted file names this test's own (live, listening) process."""
    plant(db, catcher.url, os.getpid(), 0o666)
    assert_fell_back(run_sql(db), catcher, "writable by group or others")


def test_a_file_whose_process_does_not_listen_there_is_ignored(
    db: Path, catcher: Catcher
) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        plant(db, catcher.url, sleeper.pid, 0o600)
        assert_fell_back(run_sql(db), catcher, "does not listen on port")
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_symlinked_discovery_file_is_ignored(db: Path, catcher: Catcher,
                                               tmp_path: Path) -> None:
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_text(json.dumps({"url": catcher.url, "pid": os.getpid()}))
    elsewhere.chmod(0o600)
    info_path(db).symlink_to(elsewhere)
    assert_fell_back(run_sql(db), catcher, "cannot open it safely")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root to give the file to another user")
def test_a_file_owned_by_another_user_is_ignored(db: Path, catcher: Catcher) -> None:
    path = plant(db, catcher.url, os.getpid(), 0o600)
    os.chown(path, 65534, 65534)
    assert_fell_back(run_sql(db), catcher, "owned by uid 65534")


def test_the_collectors_own_file_is_trusted(db: Path, catcher: Catcher) -> None:
    """Written as ``serve`` writes it, naming a process of the user that listens on
    the port: followed (the stand-in answers 666 and receives the token)."""
    write_info(db, CollectorInfo(url=catcher.url, pid=os.getpid(), token_required=True))
    reasons: list[str] = []
    assert read_info(db, on_untrusted=reasons.append) is not None
    assert reasons == []
    result = run_sql(db)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 666}]
    assert catcher.seen[0]["authorization"] == f"Bearer {TOKEN}"
