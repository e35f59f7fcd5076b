"""Total memory and process caps for a sandboxed command, from the kernel's cgroups.

RLIMIT_AS is per process and RLIMIT_NPROC does not bind root, so neither caps what a
command and all its children use together. A cgroup does: each tool call runs in its own
cgroup (``memory.max``/``pids.max``) inside one cgroup per run with the same caps, so a
run never holds more than the caps whatever its calls do. Two layouts are supported:

- cgroup v2 where our cgroup can have children with the ``memory`` and ``pids``
  controllers (its ``cgroup.subtree_control`` has them or we may enable them: the root
  cgroup of a VM, a delegated empty cgroup);
- cgroup v1 (hybrid hosts and many container runtimes): the ``memory`` and ``pids``
  hierarchies, where our cgroup in each is writable.

Where neither is available :func:`detect` says why, and the process sandbox falls back to
rlimits (see :mod:`driftwatch.sandbox.process`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

_counter = itertools.count()
_REMOVE_WAIT_S = 2.0


@dataclass(frozen=True)
class Usage:
    """What one call's cgroup saw: peaks (``None`` where the kernel does not report them)
    and whether a cap was hit."""

    memory_peak_bytes: int | None = None
    processes_peak: int | None = None
    memory_limit_hit: bool = False
    process_limit_hit: bool = False


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    return int(text) if text is not None and text.strip().isdigit() else None


def _keyed(path: Path, key: str) -> int:
    """A ``key value`` line of a flat-keyed cgroup file (``memory.events``)."""
    for line in (_read(path) or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


def _kill_all(procs_file: Path) -> None:
    for pid in (_read(procs_file) or "").split():
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def _remove(directory: Path) -> None:
    """rmdir once the last process has gone (exiting processes keep it busy briefly)."""
    deadline = time.monotonic() + _REMOVE_WAIT_S
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return  # left behind empty-ish; the kernel frees it when it empties
            _kill_all(directory / "cgroup.procs")
            time.sleep(0.01)


class Cgroups:
    """One layout (v1 or v2) and the parent cgroup(s) we create children in."""

    def __init__(self, version: int, parents: dict[str, Path]) -> None:
        self.version = version
        self.parents = parents  # controller -> directory ("unified" for v2)

    @property
    def name(self) -> str:
        return f"cgroup v{self.version}"

    def create(self, parents: dict[str, Path], memory_bytes: int, processes: int, *,
               holds_children: bool = False) -> Group:
        """A child of ``parents`` with both caps; :class:`OSError` when the kernel refuses.
        ``holds_children``: a run's cgroup, whose calls get cgroups of their own."""
        name = f"driftwatch-{os.getpid()}-{next(_counter)}"
        directories = {key: parent / name for key, parent in parents.items()}
        group = Group(self.version, directories)
        try:
            for directory in directories.values():
                directory.mkdir()
            group.limit(memory_bytes, processes, holds_children=holds_children)
        except OSError:
            group.remove()
            raise
        return group


class Group:
    """A cgroup (one directory per v1 hierarchy, one for v2) with memory and pid caps."""

    def __init__(self, version: int, directories: dict[str, Path]) -> None:
        self.version = version
        self.directories = directories

    @property
    def procs_files(self) -> tuple[str, ...]:
        """Where a process writes ``0`` to join (the child, before ``exec``)."""
        return tuple(str(d / "cgroup.procs") for d in self.directories.values())

    def limit(self, memory_bytes: int, processes: int, *, holds_children: bool) -> None:
        if self.version == 2:
            unified = self.directories["unified"]
            if holds_children:  # v2: a cgroup with processes may not pass controllers on
                (unified / "cgroup.subtree_control").write_text("+memory +pids")
            (unified / "memory.max").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):  # no swap accounting: nothing to cap
                (unified / "memory.swap.max").write_text("0")
            with contextlib.suppress(OSError):  # older kernels: the OOM killer picks one
                (unified / "memory.oom.group").write_text("1")
            (unified / "pids.max").write_text(str(processes))
            return
        memory = self.directories["memory"]
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        with contextlib.suppress(OSError):  # only with swap accounting
            (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        (self.directories["pids"] / "pids.max").write_text(str(processes))

    def child(self, cgroups: Cgroups, memory_bytes: int, processes: int) -> Group:
        return cgroups.create(self.directories, memory_bytes, processes)

    def remove_quietly(self) -> None:
        """For a finalizer: never raises."""
        with contextlib.suppress(Exception):
            self.remove()

    def usage(self) -> Usage:
        if self.version == 2:
            unified = self.directories["unified"]
            return Usage(
                memory_peak_bytes=_read_int(unified / "memory.peak"),
                processes_peak=_read_int(unified / "pids.peak"),
                memory_limit_hit=_keyed(unified / "memory.events", "oom_kill") > 0,
                process_limit_hit=_keyed(unified / "pids.events", "max") > 0,
            )
        memory, pids = self.directories["memory"], self.directories["pids"]
        return Usage(
            memory_peak_bytes=_read_int(memory / "memory.max_usage_in_bytes"),
            processes_peak=_read_int(pids / "pids.peak"),
            memory_limit_hit=_keyed(memory / "memory.oom_control", "oom_kill") > 0,
            process_limit_hit=_keyed(pids / "pids.events", "max") > 0,
        )

    def kill(self) -> None:
        for directory in self.directories.values():
            if self.version == 2 and (directory / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (directory / "cgroup.kill").write_text("1")
            _kill_all(directory / "cgroup.procs")

    def remove(self) -> None:
        self.kill()
        for directory in self.directories.values():
            _remove(directory)


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(root, mount point, fstype, super options) of each cgroup mount."""
    mounts = []
    for line in (_read(Path("/proc/self/mountinfo")) or "").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            mounts.append((fields[3], fields[4], tail[0], set(tail[2].split(","))))
    return mounts


def _own_paths() -> dict[str, str]:
    """Our cgroup per controller from /proc/self/cgroup (``unified`` for v2)."""
    paths: dict[str, str] = {}
    for line in (_read(Path("/proc/self/cgroup")) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            paths["unified"] = path
        for controller in controllers.split(","):
            if controller:
                paths[controller] = path
    return paths


def _directory(root: str, mount_point: str, path: str) -> Path | None:
    if root != "/" and not (path == root or path.startswith(root.rstrip("/") + "/")):
        return None  # our cgroup is outside what is mounted here
    relative = path[len(root):] if root != "/" else path
    return Path(mount_point) / relative.lstrip("/")


def _v2_candidates(directory: Path, mount_point: str) -> list[Path]:
    """Our cgroup, then its ancestors up to the mount: a cgroup with processes in it may
    not hand controllers to children, so a desktop session's scope cannot, but the
    delegated slice above it (``user@UID.service/app.slice``) can."""
    candidates = [directory]
    while directory != Path(mount_point) and directory.parent != directory:
        directory = directory.parent
        candidates.append(directory)
    return candidates


def _v2_parent() -> Path | None:
    own = _own_paths().get("unified")
    wanted = {"memory", "pids"}
    for root, mount_point, fstype, _ in _mounts():
        if fstype != "cgroup2" or own is None:
            continue
        directory = _directory(root, mount_point, own)
        if directory is None:
            continue
        for candidate in _v2_candidates(directory, mount_point):
            if not os.access(candidate, os.W_OK) or not wanted <= set(
                    (_read(candidate / "cgroup.controllers") or "").split()):
                continue
            enabled = set((_read(candidate / "cgroup.subtree_control") or "").split())
            if not wanted <= enabled:
                try:  # allowed only where no process sits in this cgroup (or at the root)
                    (candidate / "cgroup.subtree_control").write_text("+memory +pids")
                except OSError:
                    continue
            return candidate
    return None


def _v1_parents() -> dict[str, Path] | None:
    own = _own_paths()
    parents: dict[str, Path] = {}
    for root, mount_point, fstype, options in _mounts():
        for controller in ("memory", "pids"):
            if fstype == "cgroup" and controller in options and controller in own:
                directory = _directory(root, mount_point, own[controller])
                if directory is not None:
                    parents[controller] = directory
    return parents if len(parents) == 2 else None


def _works(cgroups: Cgroups) -> bool:
    try:
        run = cgroups.create(cgroups.parents, 1 << 30, 64, holds_children=True)
        try:
            run.child(cgroups, 1 << 30, 64).remove()
        finally:
            run.remove()
    except OSError:
        return False
    return True


def _remove_stale(parent: Path) -> None:
    """Cgroups of earlier driftwatch processes that were killed (kill -9 skips cleanup)."""
    for directory in parent.glob("driftwatch-*-*"):
        pid = directory.name.split("-")[1]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for child in directory.glob("driftwatch-*"):
            with contextlib.suppress(OSError):
                child.rmdir()
        with contextlib.suppress(OSError):
            directory.rmdir()


def detect() -> Cgroups | None:
    """The cgroup layout we can create capped children in, or ``None``."""
    unified = _v2_parent()
    layouts = [Cgroups(2, {"unified": unified})] if unified is not None else []
    parents = _v1_parents()
    if parents is not None:
        layouts.append(Cgroups(1, parents))
    for cgroups in layouts:
        for parent in cgroups.parents.values():
            with contextlib.suppress(OSError):
                _remove_stale(parent)
        if _works(cgroups):
            return cgroups
    return None
