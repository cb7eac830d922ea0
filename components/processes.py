"""This machine's processes, as far as a run needs them: who is still running, a process's
children, and the processes that carry a run's marker in their environment (Linux ``/proc``;
elsewhere every answer is the cautious one: "running", "no children", "none marked")."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any


def pid_namespace() -> str:
    """This process's PID namespace (Linux: the inode of ``/proc/self/ns/pid``), "" elsewhere."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def identity() -> dict[str, Any]:
    """Who this process is, as another process on the same machine can check it."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pidns": pid_namespace()}


def is_running(pid: int) -> bool:
    """A process with ``pid`` exists and is not a zombie (True when that cannot be known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def is_dead(holder: dict[str, Any]) -> bool:
    """True only when ``holder`` (an :func:`identity`) ran on this host in this PID namespace
    and no process with its PID runs now; False whenever that cannot be known."""
    here = identity()
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0 or not here["pidns"]:
        return False
    if holder.get("host") != here["host"] or holder.get("pidns") != here["pidns"]:
        return False
    return not is_running(pid)


def children(pid: int) -> list[int]:
    """The PIDs of ``pid``'s child processes (empty when unknown)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_gone(pids: list[int], *, timeout_s: float) -> bool:
    """Wait until none of ``pids`` runs any more; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(is_running(pid) for pid in pids):
            return True
        time.sleep(0.02)
    return not any(is_running(pid) for pid in pids)


def marked(name: str, value: str) -> list[int]:
    """PIDs of this user's processes whose environment holds ``name=value`` (not this one)."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def terminate(pids: list[int], *, grace_s: float = 10.0) -> list[int]:
    """SIGTERM ``pids``, SIGKILL those still running after ``grace_s``; return the PIDs that
    were running."""
    alive = [pid for pid in pids if is_running(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    if not wait_gone(alive, timeout_s=grace_s):
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        wait_gone(alive, timeout_s=grace_s)
    return alive
