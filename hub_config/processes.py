"""The studio's own processes on this machine: found by a mark in their environment,
stopped when a studio run left them behind.

The hub gives every hub-managed service (and the proxy inherits from the hub) the
variable ``AISTUDIO_STUDIO`` naming the studio's data folder. When a hub dies without
cleaning up (``kill -9``, a crash, SIGTERM before it installed its handlers), its
services and proxy keep running and hold their ports; the next ``aistudio up`` with
the same data folder finds them by that mark and stops them, and ``aistudio up``
sweeps them once more after the hub exits. Members' servers carry no mark: a hub
that comes back finds them running, as JupyterHub does.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

MARK_ENV = "AISTUDIO_STUDIO"


def mark_of(data_dir: str | os.PathLike) -> str:
    return str(Path(data_dir).resolve())


def studio_id(data_dir: str | os.PathLike) -> str:
    """A short name of the studio on this machine (its servers' cgroups carry it)."""
    return hashlib.sha1(mark_of(data_dir).encode()).hexdigest()[:8]


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or another account's
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def marked(mark: str, exclude: set[int] | None = None) -> list[tuple[int, str]]:
    """(pid, command line) of every running process carrying ``mark``, but ``exclude``d ones and this one."""
    exclude = set(exclude or ()) | {os.getpid()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        if _environ(int(entry.name)).get(MARK_ENV) == mark:
            found.append((int(entry.name), _cmdline(int(entry.name))))
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped by its parent) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop(pids: list[int], timeout: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL for what still runs after ``timeout`` seconds. Returns the pids stopped."""
    stopped = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in stopped):
        time.sleep(0.1)
    for pid in stopped:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return stopped
