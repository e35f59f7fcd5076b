"""``driftwatch watch`` is stopped with Ctrl-C or SIGTERM: exit 0 and one line saying so."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serve_process import ServeProcess


@pytest.mark.slow
@pytest.mark.network_loopback
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_watch_stops_on_a_signal_with_exit_0(tmp_path: Path, signum: int) -> None:
    serve = ServeProcess(tmp_path / "w.duckdb")
    try:
        watch = subprocess.Popen(
            [sys.executable, "-m", "driftwatch", "watch", "--url", serve.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60  # start-up, then the stream's connection
        while "driftwatch_stream_subscribers 1.0" not in serve.metrics():
            assert watch.poll() is None, watch.communicate()
            assert time.monotonic() < deadline, "watch never connected"
            time.sleep(0.1)
        watch.send_signal(signum)
        _, err = watch.communicate(timeout=30)
    finally:
        serve.stop()
    assert watch.returncode == 0, err
    assert "Traceback" not in err
    assert err.strip() == f"stopped watching {serve.url} (0 findings shown)"
