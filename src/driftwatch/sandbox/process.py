"""A real process sandbox for the ``bash`` tool, built on bubblewrap.

Each command runs in fresh namespaces (no network, own PIDs, an unprivileged uid), with
a read-only view of ``/usr`` only — no ``/etc``, no ``/home``, nothing else of the host —
and a size-limited tmpfs workspace seeded with the run's files. The workspace goes in as
a tar archive and comes back out as one, so the run's :class:`VirtualEnvironment` stays
the single source of truth (and the input to snapshots and final-state rules).

Limits: wall time (``timeout`` inside, a hard kill outside), CPU seconds, address space,
processes, per-file size, workspace size and captured output. When bubblewrap is
missing, :class:`ProcessSandbox` refuses to start; nothing ever runs on the host.
"""

from __future__ import annotations

import io
import os
import resource
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from driftwatch.core.errors import SandboxError

_INNER_SCRIPT = """\
tar -x -f /input.tar -C /workspace 2>/meta/untar || { echo 126 >/meta/status; exit 0; }
cd /workspace
timeout -s KILL "$DW_TIMEOUT" /bin/sh -c "$1" </dev/null >/out/stdout 2>/out/stderr
echo $? >/meta/status
tar -c -f - -C / workspace out meta 2>/dev/null
"""


@dataclass(frozen=True)
class Limits:
    wall_time_s: float = 10.0
    cpu_time_s: int = 10
    memory_bytes: int = 1 << 30
    processes: int = 64
    file_bytes: int = 16 << 20
    workspace_bytes: int = 64 << 20
    output_bytes: int = 64 << 10


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    files: dict[str, str]  # the workspace after the command (regular text files)

    def as_text(self) -> str:
        """What the agent sees as the tool result."""
        parts = []
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        if self.truncated:
            parts.append("[output truncated]")
        if self.timed_out:
            parts.append("[killed: time limit exceeded]")
        parts.append(f"[exit code {self.exit_code if self.exit_code is not None else 'none'}]")
        return "\n".join(parts)


def find_bubblewrap() -> str | None:
    return shutil.which("bwrap")


def _set_limits(limits: Limits) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_time_s, limits.cpu_time_s))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _pack(files: Mapping[str, str], read_only: frozenset[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, content in sorted(files.items()):
            data = content.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o444 if path in read_only else 0o644
            info.uid = info.gid = 1000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _unpack(data: bytes, limits: Limits) -> tuple[dict[str, str], dict[str, bytes]]:
    """Workspace files and the ``out``/``meta`` files. Symlinks, devices and anything
    outside ``workspace/`` are ignored: they cannot point the host at anything."""
    files: dict[str, str] = {}
    meta: dict[str, bytes] = {}
    if not data:
        return files, meta
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for member in archive:
            if not member.isfile():
                continue
            top, _, rest = member.name.partition("/")
            extracted = archive.extractfile(member)
            if extracted is None or not rest:
                continue
            if top == "workspace":
                files[rest] = extracted.read(limits.file_bytes).decode("utf-8", "replace")
            elif top in ("out", "meta"):
                meta[member.name] = extracted.read(limits.output_bytes + 1)
    return files, meta


class ProcessSandbox:
    """Runs shell commands in bubblewrap. Thread-safe: each call is independent."""

    def __init__(self, limits: Limits | None = None, bwrap: str | None = None) -> None:
        self.limits = limits or Limits()
        found = bwrap or find_bubblewrap()
        if found is None:
            raise SandboxError(
                "bubblewrap (bwrap) is not installed: the bash tool needs it and will not "
                "run commands on the host; install it (e.g. apt-get install bubblewrap)"
            )
        self.bwrap = found

    def _argv(self, input_fd: int, script_fd: int, command: str) -> list[str]:
        limits = self.limits
        argv = [
            self.bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            "--uid", "1000", "--gid", "1000", "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr",
        ]
        for link, target in (("/bin", "usr/bin"), ("/sbin", "usr/sbin"), ("/lib", "usr/lib"),
                             ("/lib64", "usr/lib64"), ("/lib32", "usr/lib32")):
            if os.path.islink(link) or not os.path.exists(link):
                argv += ["--symlink", target, link]
            else:  # a system without the merged /usr layout
                argv += ["--ro-bind", link, link]
        argv += [
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(8 << 20), "--tmpfs", "/tmp",  # noqa: S108 - inside the sandbox
            "--size", str(limits.workspace_bytes), "--tmpfs", "/workspace",
            "--size", str(2 * limits.output_bytes + 8192), "--tmpfs", "/out",
            "--size", str(1 << 20), "--tmpfs", "/meta",
            "--file", str(input_fd), "/input.tar",
            "--file", str(script_fd), "/inner.sh",
            "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
            "--setenv", "HOME", "/workspace", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "DW_TIMEOUT", f"{limits.wall_time_s:g}",
            "--chdir", "/", "/bin/sh", "/inner.sh", command,
        ]
        return argv

    def run(
        self, command: str, files: Mapping[str, str], read_only: frozenset[str] = frozenset()
    ) -> ProcessResult:
        """Run ``command`` with a workspace holding ``files``; return its output and the
        workspace afterwards. Never raises for what the command does."""
        limits = self.limits
        with tempfile.TemporaryDirectory(prefix="driftwatch-sbx-") as tmp:
            archive = Path(tmp) / "input.tar"
            archive.write_bytes(_pack(files, read_only))
            script = Path(tmp) / "inner.sh"
            script.write_text(_INNER_SCRIPT)
            input_fd = os.open(archive, os.O_RDONLY)
            script_fd = os.open(script, os.O_RDONLY)
            try:
                process = subprocess.Popen(  # noqa: S603 - argv is built here, no shell
                    self._argv(input_fd, script_fd, command),
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    pass_fds=(input_fd, script_fd),
                    preexec_fn=lambda: _set_limits(limits),  # noqa: PLW1509 - rlimits need it
                )
            finally:
                os.close(input_fd)
                os.close(script_fd)
            output, stderr_text, hard_killed = self._collect(process)
        files_after, meta = _unpack(output, limits)
        status_text = meta.get("meta/status", b"").strip()
        exit_code = int(status_text) if status_text.isdigit() else None
        if exit_code == 126 and "meta/untar" in meta:
            raise SandboxError("could not seed the sandbox workspace")
        stdout = meta.get("out/stdout", b"")
        stderr = meta.get("out/stderr", b"")
        truncated = len(stdout) > limits.output_bytes or len(stderr) > limits.output_bytes
        timed_out = hard_killed or exit_code == 137
        if hard_killed or (exit_code is None and not output):
            files_after = dict(files)  # nothing came back: the workspace is unchanged
            if not stderr and stderr_text:
                stderr = stderr_text.encode()
        return ProcessResult(
            exit_code=exit_code,
            stdout=stdout[: limits.output_bytes].decode("utf-8", "replace"),
            stderr=stderr[: limits.output_bytes].decode("utf-8", "replace"),
            timed_out=timed_out,
            truncated=truncated,
            files=files_after,
        )

    def _collect(self, process: subprocess.Popen[bytes]) -> tuple[bytes, str, bool]:
        """Read the result archive with a hard wall-clock kill as the last resort."""
        limit = self.limits.workspace_bytes + 4 * self.limits.output_bytes + (1 << 20)
        chunks: list[bytes] = []
        errors: list[bytes] = []

        def drain_stdout() -> None:
            assert process.stdout is not None
            size = 0
            while block := process.stdout.read(65536):
                if size < limit:
                    chunks.append(block)
                size += len(block)

        def drain_stderr() -> None:
            assert process.stderr is not None
            errors.append(process.stderr.read(65536))
            process.stderr.read()

        readers = [threading.Thread(target=drain_stdout), threading.Thread(target=drain_stderr)]
        for reader in readers:
            reader.start()
        hard_killed = False
        try:
            process.wait(timeout=self.limits.wall_time_s + 10)
        except subprocess.TimeoutExpired:
            hard_killed = True
            process.kill()
            process.wait()
        for reader in readers:
            reader.join()
        return b"".join(chunks), b"".join(errors).decode("utf-8", "replace"), hard_killed
