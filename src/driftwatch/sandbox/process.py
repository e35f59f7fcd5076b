"""A real process sandbox for the ``bash`` tool, built on bubblewrap.

Each command runs in fresh namespaces (no network, own PIDs, an unprivileged uid), with
a read-only view of ``/usr`` only — no ``/etc``, no ``/home``, nothing else of the host —
and a size-limited tmpfs workspace seeded with the run's files. The workspace goes in as
a tar archive and comes back out as one, so the run's :class:`VirtualEnvironment` stays
the single source of truth (and the input to snapshots and final-state rules).

Nothing of driftwatch's environment goes in: bwrap itself starts with a minimal
environment (its init process is PID 1 inside, and ``/proc/1/environ`` is readable
there), the command arrives in a file rather than on a command line, and only the three
input files' descriptors are passed.

Limits: wall time (``timeout`` inside, a hard kill outside), CPU seconds, address space
and file size per process, workspace size and captured output, and — for the command and
everything it starts together — a total memory cap and a process cap: a cgroup per call
inside a cgroup per run where the kernel lets us create them (see
:mod:`driftwatch.sandbox.cgroup`), else RLIMIT_NPROC set inside the sandbox (as root bwrap
then runs as ``nobody``, because RLIMIT_NPROC does not bind root) with memory bounded by
processes × address space. When bubblewrap is missing or cannot start,
:class:`ProcessSandbox` refuses to start; nothing ever runs on the host.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import tarfile
import tempfile
import threading
import weakref
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from driftwatch.core.errors import SandboxError
from driftwatch.core.logging import get_logger
from driftwatch.sandbox import cgroup
from driftwatch.sandbox.bwrap import (
    UNSHARE,
    drop_privileges,
    find_bubblewrap,
    minimal_environment,
    system_mounts,
    usable_bubblewrap,
)

__all__ = ["Limits", "ProcessResult", "ProcessSandbox", "find_bubblewrap"]

# RLIMIT_NPROC is set here, inside the new user namespace, so the kernel counts only this
# sandbox's processes (set before bwrap it would count every process of the host user).
# dash spells it -p, bash and busybox -u; /proc/self/limits proves it took.
_INNER_SCRIPT = """\
ulimit -u "$DW_NPROC" 2>/dev/null || ulimit -p "$DW_NPROC" 2>/dev/null
capped=
while read -r a b c d e; do
  [ "$a $b $c $d" = "Max processes $DW_NPROC $DW_NPROC" ] && capped=1
done </proc/self/limits
[ -n "$capped" ] || { echo 125 >/meta/status; exit 0; }
tar -x -f /input.tar -C /workspace 2>/meta/untar || { echo 126 >/meta/status; exit 0; }
cd /workspace
# inode numbers before and after tell a replaced file from one left alone (same content)
find . -type f -printf '%i %P\n' >/meta/inodes.before 2>/dev/null
timeout -s KILL "$DW_TIMEOUT" /bin/sh /command.sh </dev/null >/out/stdout 2>/err/stderr
echo $? >/meta/status
# what the command left running goes, and is reaped, before tar needs a process of its own
kill -KILL -1 2>/dev/null
i=0
while [ $i -lt 2000 ]; do
  n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
  [ $n -le 2 ] && break  # bwrap's init and this shell
  i=$((i+1))
done
find . -type f -printf '%i %P\n' >/meta/inodes.after 2>/dev/null
tar -c -f - -C / workspace out err meta 2>/dev/null
"""


@dataclass(frozen=True)
class Limits:
    wall_time_s: float = 10.0
    cpu_time_s: int = 10
    memory_bytes: int = 1 << 30
    """Address space of each process (RLIMIT_AS)."""
    total_memory_bytes: int = 1 << 30
    """Memory of the command and all its processes together, per call and per run (cgroup)."""
    processes: int = 64
    """Processes (and threads) of a call together; a run's calls together get twice that
    (room for exited processes whose pid the kernel has not released yet)."""
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
    modes: dict[str, int] = field(default_factory=dict)  # permission bits of those files
    replaced: frozenset[str] = frozenset()  # files that are a new file at the same path
    usage: cgroup.Usage = field(default_factory=cgroup.Usage)

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
        if self.usage.memory_limit_hit:
            parts.append("[killed: memory limit exceeded]")
        if self.usage.process_limit_hit:
            parts.append("[process limit reached]")
        parts.append(f"[exit code {self.exit_code if self.exit_code is not None else 'none'}]")
        return "\n".join(parts)


def _child_setup(limits: Limits, procs_files: Sequence[str], uid: int | None) -> None:
    """In the child before ``exec``, in this order: join the call's cgroup (as ourselves:
    the cgroup files are ours), set the per-process rlimits, then give up root."""
    for procs_file in procs_files:
        fd = os.open(procs_file, os.O_WRONLY)  # plain syscalls: we are a forked child
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_time_s, limits.cpu_time_s))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if uid is not None:
        drop_privileges(uid)


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


def _unpack(
    data: bytes, limits: Limits
) -> tuple[dict[str, str], dict[str, int], dict[str, bytes]]:
    """Workspace files, their modes and the ``out``/``err``/``meta`` files. Symlinks, devices and
    anything outside ``workspace/`` are ignored: they cannot point the host at anything."""
    files: dict[str, str] = {}
    modes: dict[str, int] = {}
    meta: dict[str, bytes] = {}
    if not data:
        return files, modes, meta
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        for member in archive:
            if not (member.isfile() or member.islnk()):  # a hard link: the file's content
                continue
            top, _, rest = member.name.partition("/")
            extracted = archive.extractfile(member)
            if extracted is None or not rest:
                continue
            if top == "workspace":
                files[rest] = extracted.read(limits.file_bytes).decode("utf-8", "replace")
                modes[rest] = member.mode & 0o7777
            elif top in ("out", "err", "meta"):
                meta[member.name] = extracted.read(limits.output_bytes + 1)
    return files, modes, meta


def _replaced(before: bytes, after: bytes) -> frozenset[str]:
    """Paths whose inode changed during the command (rm and recreate, mv over)."""
    def inodes(listing: bytes) -> dict[str, str]:
        pairs = (line.partition(" ") for line in listing.decode("utf-8", "replace").splitlines())
        return {path: inode for inode, _, path in pairs if path}

    old, new = inodes(before), inodes(after)
    return frozenset(path for path, inode in new.items() if old.get(path, inode) != inode)


_log = get_logger("driftwatch.sandbox")
_cgroups_lock = threading.Lock()
_cgroups_detected: list[cgroup.Cgroups | None] = []


def _cgroups() -> cgroup.Cgroups | None:
    """Detected once per process (it creates and removes a test cgroup)."""
    with _cgroups_lock:
        if not _cgroups_detected:
            _cgroups_detected.append(cgroup.detect())
            if _cgroups_detected[0] is None:  # said once: the weaker caps are a choice to see
                _log.warning(
                    "sandbox: no writable cgroup with memory and pids controllers; processes "
                    "are capped by RLIMIT_NPROC, memory only per process (RLIMIT_AS), so a "
                    "call may use processes x memory_bytes in total (see docs/security.md)")
        return _cgroups_detected[0]


class ProcessSandbox:
    """Runs shell commands in bubblewrap. Thread-safe: each call is independent, and the
    caps of :class:`Limits` hold for each call and for all calls of this sandbox (a run)
    together. ``enforcement`` names how the total caps are enforced."""

    def __init__(self, limits: Limits | None = None, bwrap: str | None = None) -> None:
        self.limits = limits or Limits()
        self.bwrap, uid = usable_bubblewrap(bwrap, fallback=_cgroups() is not None)
        self.uid = uid
        self.cgroups = _cgroups()
        self.enforcement = self.cgroups.name if self.cgroups else "rlimits"
        self._run_group: cgroup.Group | None = None
        self._lock = threading.Lock()

    def _group_for_call(self) -> cgroup.Group | None:
        """The call's cgroup inside this run's (created with the first call)."""
        if self.cgroups is None:
            return None
        limits = self.limits
        try:
            with self._lock:
                if self._run_group is None:
                    # the kernel releases an exited process's pid charge a little later,
                    # so back-to-back calls would eat into one shared cap of `processes`
                    self._run_group = self.cgroups.create(
                        self.cgroups.parents, limits.total_memory_bytes,
                        2 * limits.processes, holds_children=True)
                    weakref.finalize(self, self._run_group.remove_quietly)
                run_group = self._run_group
            return run_group.child(self.cgroups, limits.total_memory_bytes, limits.processes)
        except OSError as exc:
            raise SandboxError(
                f"could not create the sandbox's {self.enforcement}: {exc}") from None

    def _argv(self, input_fd: int, script_fd: int, command_fd: int) -> list[str]:
        limits = self.limits
        # argv[0] is the bare name: PID 1's command line is readable inside the sandbox
        return [
            "bwrap", *UNSHARE, "--die-with-parent", "--new-session",
            "--uid", "1000", "--gid", "1000", "--hostname", "sandbox",
            *system_mounts(),
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(8 << 20), "--tmpfs", "/tmp",  # noqa: S108 - inside the sandbox
            "--size", str(limits.workspace_bytes), "--tmpfs", "/workspace",
            # one each, so a flood on stderr cannot leave stdout empty
            "--size", str(limits.output_bytes + 8192), "--tmpfs", "/out",
            "--size", str(limits.output_bytes + 8192), "--tmpfs", "/err",
            "--size", str(1 << 20), "--tmpfs", "/meta",
            "--file", str(input_fd), "/input.tar",
            "--file", str(script_fd), "/inner.sh",
            "--file", str(command_fd), "/command.sh",
            "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
            "--setenv", "HOME", "/workspace", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "DW_TIMEOUT", f"{limits.wall_time_s:g}",
            # bwrap's init (PID 1) sits in an outer user namespace the rlimit does not count
            "--setenv", "DW_NPROC", str(max(limits.processes - 1, 1)),
            "--chdir", "/", "/bin/sh", "/inner.sh",
        ]

    def run(
        self, command: str, files: Mapping[str, str], read_only: frozenset[str] = frozenset()
    ) -> ProcessResult:
        """Run ``command`` with a workspace holding ``files``; return its output and the
        workspace afterwards. Never raises for what the command does."""
        limits = self.limits
        group = self._group_for_call()
        procs_files = group.procs_files if group is not None else ()
        try:
            with tempfile.TemporaryDirectory(prefix="driftwatch-sbx-") as tmp, ExitStack() as fds:
                inputs = {"input.tar": _pack(files, read_only),
                          "inner.sh": _INNER_SCRIPT.encode(), "command.sh": command.encode()}
                opened = []
                for name, content in inputs.items():
                    (Path(tmp) / name).write_bytes(content)
                    fd = os.open(Path(tmp) / name, os.O_RDONLY)
                    fds.callback(os.close, fd)
                    opened.append(fd)
                uid = self.uid
                process = subprocess.Popen(  # noqa: S603 - argv is built here, no shell
                    self._argv(*opened), executable=self.bwrap, env=minimal_environment(),
                    cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, pass_fds=opened,
                    preexec_fn=lambda: _child_setup(limits, procs_files, uid),  # noqa: PLW1509
                )
                fds.close()
                output, stderr_text, hard_killed = self._collect(process)
        finally:
            usage = group.usage() if group is not None else cgroup.Usage()
            if group is not None:
                group.remove()
        return self._result(files, output, stderr_text, hard_killed, usage)

    def _result(self, files: Mapping[str, str], output: bytes, stderr_text: str,
                hard_killed: bool, usage: cgroup.Usage) -> ProcessResult:
        limits = self.limits
        files_after, modes, meta = _unpack(output, limits)
        status_text = meta.get("meta/status", b"").strip()
        exit_code = int(status_text) if status_text.isdigit() else None
        if exit_code == 126 and "meta/untar" in meta:
            raise SandboxError("could not seed the sandbox workspace")
        if exit_code == 125:
            raise SandboxError("could not set the sandbox's process limit (ulimit)")
        replaced = _replaced(meta.get("meta/inodes.before", b""),
                             meta.get("meta/inodes.after", b""))
        stdout = meta.get("out/stdout", b"")
        stderr = meta.get("err/stderr", b"")
        truncated = len(stdout) > limits.output_bytes or len(stderr) > limits.output_bytes
        # 137 is SIGKILL: from `timeout`, unless the memory cap's OOM killer sent it
        timed_out = hard_killed or (exit_code == 137 and not usage.memory_limit_hit)
        if hard_killed or (exit_code is None and not output):
            files_after = dict(files)  # nothing came back: the workspace is unchanged
            modes, replaced = {}, frozenset()
            if not stderr and stderr_text:
                stderr = stderr_text.encode()
        return ProcessResult(
            exit_code=exit_code,
            stdout=stdout[: limits.output_bytes].decode("utf-8", "replace"),
            stderr=stderr[: limits.output_bytes].decode("utf-8", "replace"),
            timed_out=timed_out,
            truncated=truncated,
            files=files_after,
            modes=modes,
            replaced=replaced,
            usage=usage,
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
