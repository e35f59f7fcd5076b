"""A per-run virtual environment: files, a mailbox and a turn clock, all in memory.

Nothing a tool does here touches the host: paths are normalised inside a virtual root,
and there is no code path from a tool to the real filesystem or network.

Read-only files (and everything under a read-only folder) stay as planted: the file
tools refuse to change them, and what a shell command did to them (``chmod``, ``rm`` and
recreate, ``mv`` over, writes through a hard link) is undone when the workspace comes
back from the sandbox. Every such attempt is kept in :attr:`VirtualEnvironment.tamper_events`
(and so in the snapshot) for the tool span and final-state rules.
"""

from __future__ import annotations

import copy
import hashlib
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from driftwatch.core.errors import SandboxError
from driftwatch.sandbox.process import ProcessSandbox
from driftwatch.scenario.spec import PlantedFile


class ToolFailure(SandboxError):
    """A tool refused or failed; the message goes back to the agent as the tool result."""


def normalize_path(path: str) -> str:
    """Workspace-relative POSIX path. ``..`` may not climb out; absolute paths are read as
    relative to the workspace root (``/etc/passwd`` → ``etc/passwd``, which does not exist)."""
    if not isinstance(path, str) or not path.strip():
        raise ToolFailure("path must be a non-empty string")
    if "\x00" in path:
        raise ToolFailure("path contains a NUL byte")
    parts: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ToolFailure(f"path {path!r} leaves the workspace")
            parts.pop()
            continue
        parts.append(part)
    if not parts:
        return ""
    return posixpath.join(*parts)


@dataclass
class Mail:
    to: list[str]
    subject: str
    body: str
    sender: str = "agent"
    folder: str = "sent"
    turn: int | None = None
    id: int = 0
    forwarded_from: int | None = None

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "to": ", ".join(self.to),
            "sender": self.sender,
            "subject": self.subject,
            "body": self.body,
            "folder": self.folder,
            "turn": self.turn,
            "forwarded_from": self.forwarded_from,
        }


@dataclass
class VirtualEnvironment:
    """The state a run's tools act on. Single-threaded: only the agent loop touches it."""

    files: dict[str, str] = field(default_factory=dict)
    read_only: set[str] = field(default_factory=set)
    mail: list[Mail] = field(default_factory=list)
    """Outgoing mail (what the agent sent or forwarded)."""
    inbox: list[Mail] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)
    """Structured scenario state that scenario tools read and change."""
    turn: int = 0
    max_file_bytes: int = 1_000_000
    max_files: int = 10_000
    process: ProcessSandbox | None = None
    """Set when the scenario has a ``bash`` tool (see :mod:`driftwatch.sandbox.process`)."""
    tamper_events: list[dict[str, Any]] = field(default_factory=list)
    """Each attempt to change a read-only file: ``{"path", "action", "turn"}``, in order.
    ``action``: ``write refused``, ``delete refused``, ``move refused`` (file tools), or
    ``modified``, ``deleted``, ``made writable``, ``replaced``, ``created`` (a shell
    command's change, undone)."""

    @classmethod
    def from_planted(cls, planted: Iterable[PlantedFile]) -> VirtualEnvironment:
        env = cls()
        env.plant(planted)
        return env

    def plant(self, planted: Iterable[PlantedFile]) -> None:
        for item in planted:
            path = normalize_path(item.path)
            self.files[path] = item.content
            if item.read_only:
                self.read_only.add(path)

    # --- file operations used by tools ---------------------------------------------
    def is_dir(self, path: str) -> bool:
        prefix = path + "/" if path else ""
        return any(name.startswith(prefix) for name in self.files)

    def read(self, path: str) -> str:
        path = normalize_path(path)
        if path not in self.files:
            if self.is_dir(path):
                raise ToolFailure(f"{path} is a directory")
            raise ToolFailure(f"{path or '/'}: no such file")
        return self.files[path]

    def is_protected(self, path: str) -> bool:
        """Read-only itself or under a read-only folder."""
        return path in self.read_only or any(
            path.startswith(p.rstrip("/") + "/") for p in self.read_only
        )

    def record_tamper(self, path: str, action: str) -> None:
        self.tamper_events.append({"path": path, "action": action, "turn": self.turn})

    def _check_writable(self, path: str, action: str = "write") -> None:
        if self.is_protected(path):
            self.record_tamper(path, f"{action} refused")
            raise ToolFailure(f"{path}: permission denied (read-only)")

    def write(self, path: str, content: str) -> None:
        path = normalize_path(path)
        if not path:
            raise ToolFailure("cannot write to the workspace root")
        if not isinstance(content, str):
            raise ToolFailure("content must be a string")
        if len(content.encode()) > self.max_file_bytes:
            raise ToolFailure(f"{path}: file too large (limit {self.max_file_bytes} bytes)")
        if path not in self.files and len(self.files) >= self.max_files:
            raise ToolFailure("workspace is full (too many files)")
        if self.is_dir(path):
            raise ToolFailure(f"{path} is a directory")
        self._check_writable(path)
        self.files[path] = content

    def delete(self, path: str) -> None:
        path = normalize_path(path)
        if path not in self.files:
            raise ToolFailure(f"{path or '/'}: no such file")
        self._check_writable(path, "delete")
        del self.files[path]
        self.read_only.discard(path)

    def move(self, source: str, destination: str) -> None:
        source, destination = normalize_path(source), normalize_path(destination)
        content = self.read(source)
        self._check_writable(source, "move")
        self.write(destination, content)
        del self.files[source]

    def set_read_only(self, path: str, read_only: bool) -> None:
        path = normalize_path(path)
        if path not in self.files and not self.is_dir(path):
            raise ToolFailure(f"{path or '/'}: no such file")
        if read_only:
            self.read_only.add(path)
        else:
            self.read_only.discard(path)

    def list_dir(self, path: str = "") -> list[str]:
        path = normalize_path(path) if path not in ("", ".", "/") else ""
        prefix = path + "/" if path else ""
        if path and path in self.files:
            return [path]
        entries: set[str] = set()
        for name in self.files:
            if name.startswith(prefix):
                rest = name[len(prefix) :]
                head, sep, _ = rest.partition("/")
                entries.add(head + "/" if sep else head)
        if path and not entries:
            raise ToolFailure(f"{path}: no such directory")
        return sorted(entries)

    # --- mail ---------------------------------------------------------------------------
    def receive(self, sender: str, subject: str, body: str) -> Mail:
        mail = Mail(to=["agent"], subject=subject, body=body, sender=sender, folder="inbox",
                    turn=self.turn, id=len(self.inbox) + 1)
        self.inbox.append(mail)
        return mail

    def send(self, to: list[str], subject: str, body: str,
             forwarded_from: int | None = None) -> Mail:
        mail = Mail(to=to, subject=subject, body=body, turn=self.turn,
                    id=len(self.mail) + 1, forwarded_from=forwarded_from)
        self.mail.append(mail)
        return mail

    def inbox_mail(self, mail_id: int) -> Mail:
        for mail in self.inbox:
            if mail.id == mail_id:
                return mail
        raise ToolFailure(f"no email with id {mail_id}")

    # --- snapshots for final-state rules --------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Plain-data copy for final-state rules: ``files`` ({path: content}), ``read_only``,
        ``mail`` (sent) and ``inbox`` (lists of rows), ``records`` (the structured state
        as is) and, for convenience, each record that is a list of objects again at the
        top level (so ``refunds`` becomes a table) and each scalar record in ``state``."""
        snapshot: dict[str, Any] = {
            "files": dict(self.files),
            "read_only": sorted(self.read_only),
            "mail": [m.row() for m in self.mail],
            "inbox": [m.row() for m in self.inbox],
            "records": copy.deepcopy(self.records),
            "tamper_events": copy.deepcopy(self.tamper_events),
        }
        for key, value in self.records.items():
            if key in snapshot:
                continue
            is_table = isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
            snapshot[key] = copy.deepcopy(value) if is_table else value
        return snapshot

    def adopt_workspace(self, files: dict[str, str], modes: dict[str, int],
                        replaced: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
        """Adopt what a shell command left in the workspace, except changes to read-only
        files, which are undone and recorded. Returns (files left out for their size,
        read-only paths the command tried to change)."""
        adopted = dict(files)
        tampered: list[str] = []
        for path, content in self.files.items():
            if not self.is_protected(path):
                continue
            if path not in adopted:
                action = "deleted"
            elif adopted[path] != content:
                action = "modified"
            elif modes.get(path, 0) & 0o222:  # planted 0444: chmod, or rm and recreate
                action = "made writable"
            elif path in replaced:  # a new file with the same content and mode
                action = "replaced"
            else:
                continue
            adopted[path] = content
            self.record_tamper(path, action)
            tampered.append(path)
        for path in sorted(set(adopted) - set(self.files)):
            if self.is_protected(path):  # a new file in a read-only folder
                del adopted[path]
                self.record_tamper(path, "created")
                tampered.append(path)
        return self.replace_files(adopted), tampered

    def replace_files(self, files: dict[str, str]) -> list[str]:
        """Adopt the workspace a process sandbox returned. Files over the size limit are
        left out (and named in the result) rather than stored."""
        kept: dict[str, str] = {}
        skipped: list[str] = []
        for path, content in files.items():
            if len(content.encode()) > self.max_file_bytes or len(kept) >= self.max_files:
                skipped.append(path)
            else:
                kept[normalize_path(path)] = content
        self.files = kept
        # a read-only folder stays read-only while it has files (it is not a key of `kept`)
        self.read_only = {path for path in self.read_only
                          if path in kept or self.is_dir(path)}
        return skipped

    def copy(self) -> VirtualEnvironment:
        clone = copy.copy(self)
        clone.files = dict(self.files)
        clone.read_only = set(self.read_only)
        clone.mail = list(self.mail)
        clone.inbox = list(self.inbox)
        clone.records = copy.deepcopy(self.records)
        clone.tamper_events = copy.deepcopy(self.tamper_events)
        return clone


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def diff_snapshots(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """Which files were added, removed or modified between two snapshots."""
    old, new = before.get("files", {}), after.get("files", {})
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "modified": sorted(p for p in set(old) & set(new) if _digest(old[p]) != _digest(new[p])),
    }
