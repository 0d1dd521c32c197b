"""Enforced memory and CPU limits of local-mode servers.

Each server gets a cgroup of its own under the hub's cgroup, where the machine offers one
(cgroup v2 with the memory and cpu controllers delegated, else cgroup v1's memory and cpu
hierarchies); elsewhere an address-space limit (RLIMIT_AS) is the only, rough, guard
(``systemd-run --scope`` is not used yet).

The choice of mechanism and the values written are pure functions of what the files show
(:func:`detect`, :func:`cgroup_values`, :func:`oom_kills`); :class:`ServerCgroup` does the
writing for one server.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass, field

from .. import units

CPU_PERIOD_US = 100_000
GROUP = "aistudio"  # the sub-tree of the hub's cgroup its servers' cgroups live in


@dataclass(frozen=True)
class Mechanism:
    """How servers' limits are enforced on this machine."""

    kind: str  # cgroup2 | cgroup1 | rlimit
    bases: dict = field(default_factory=dict)  # controller ("memory", "cpu"; "" for v2) -> parent folder of the servers' cgroups
    reason: str = ""  # why nothing better was available (rlimit)

    @property
    def label(self) -> str:
        return {
            "cgroup2": "cgroup v2",
            "cgroup1": "cgroup v1",
            "rlimit": "an address-space limit (RLIMIT_AS) only",
        }[self.kind]

    def describe(self) -> str:
        where = ", ".join(f"{c or 'unified'}: {p}" for c, p in sorted(self.bases.items()))
        text = f"Memory and CPU limits of servers are enforced by {self.label}"
        if where:
            text += f" ({where})"
        if self.reason:
            text += f"; {self.reason}"
        return text


def parse_self_cgroup(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as controller -> path (``""``: the v2 hierarchy)."""
    out = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            out[""] = path
        for c in controllers.split(","):
            if c:
                out[c] = path
    return out


def parse_mounts(text: str) -> list[tuple[str, str, set[str]]]:
    """The cgroup mounts of ``/proc/self/mounts``: (type, mount point, options)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
            out.append((parts[2], parts[1], set(parts[3].split(","))))
    return out


def _own_dir(root: str, mount_point: str, path: str) -> str:
    """The hub's cgroup folder in a hierarchy mounted at ``mount_point``; a namespaced
    mount shows the hub's cgroup as the mount itself."""
    full = os.path.join(root + mount_point, path.lstrip("/"))
    return full if os.path.isdir(full) else root + mount_point


def _writable(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK)


def detect(mounts: str, self_cgroup: str, *, systemd: bool, root: str = "") -> Mechanism:
    """Choose the mechanism from the mount table, the hub's ``/proc/self/cgroup`` and whether
    systemd runs as PID 1 (``/run/systemd/system``). ``root`` prefixes every path (tests)."""
    own = parse_self_cgroup(self_cgroup)
    table = parse_mounts(mounts)
    v2 = next((m for t, m, _ in table if t == "cgroup2"), None)
    if v2 is not None and "" in own:
        d = _own_dir(root, v2, own[""])
        try:
            with open(os.path.join(d, "cgroup.controllers")) as f:
                controllers = set(f.read().split())
        except OSError:
            controllers = set()
        if {"memory", "cpu"} <= controllers and _writable(d):
            return Mechanism("cgroup2", {"": os.path.join(d, GROUP)})
    v1 = {}
    for kind, mount_point, options in table:
        if kind != "cgroup":
            continue
        for c in ("memory", "cpu"):
            if c in options and c in own and c not in v1:
                v1[c] = _own_dir(root, mount_point, own[c])
    if (
        "memory" in v1 and "cpu" in v1
        and os.path.exists(os.path.join(v1["memory"], "memory.limit_in_bytes"))
        and os.path.exists(os.path.join(v1["cpu"], "cpu.cfs_quota_us"))
        and all(_writable(d) for d in v1.values())
    ):
        return Mechanism("cgroup1", {c: os.path.join(d, GROUP) for c, d in v1.items()})
    if os.geteuid() != 0:
        reason = "not running as root, no cgroup can be made"
    else:
        reason = "no writable cgroup (v2 with memory and cpu delegated, or v1 memory and cpu)"
    if systemd:
        reason += "; systemd-run scopes are not used yet"
    return Mechanism("rlimit", reason=reason)


def detect_here() -> Mechanism:
    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""

    return detect(read("/proc/self/mounts"), read("/proc/self/cgroup"), systemd=os.path.isdir("/run/systemd/system"))


def cpu_quota_us(cpu: float) -> int:
    return max(1000, int(round(cpu * CPU_PERIOD_US)))


def cgroup_values(kind: str, cpu: float, memory: int, *, memsw: bool = True) -> dict[str, list[tuple[str, str]]]:
    """The files written, in order, per controller: ``{"memory": [(file, value)], ...}``."""
    if kind == "cgroup2":
        return {"": [
            ("memory.max", str(memory)),
            ("memory.swap.max", "0"),
            ("cpu.max", f"{cpu_quota_us(cpu)} {CPU_PERIOD_US}"),
        ]}
    if kind == "cgroup1":
        mem = [("memory.limit_in_bytes", str(memory))]
        if memsw:  # memory and swap together: no swapping past the limit (after limit_in_bytes)
            mem.append(("memory.memsw.limit_in_bytes", str(memory)))
        return {
            "memory": mem,
            "cpu": [("cpu.cfs_period_us", str(CPU_PERIOD_US)), ("cpu.cfs_quota_us", str(cpu_quota_us(cpu)))],
        }
    raise ValueError(kind)


def rlimit_as(memory: int) -> int:
    """The address-space limit standing in for ``memory``: address space is not memory used
    (thread stacks, malloc arenas and mapped libraries reserve much more), so a margin."""
    return memory + max(2 * units.GiB, memory // 2)


def oom_kills(kind: str, text: str) -> int:
    """Processes the OOM killer stopped, from v1 ``memory.oom_control`` or v2 ``memory.events``."""
    m = re.search(r"^oom_kill (\d+)$", text, re.M)
    return int(m.group(1)) if m else 0


def cgroup_name(user: str, server: str, studio: str = "") -> str:
    """The server's cgroup under ``aistudio/``: ``STUDIO-user[-server]``. ``studio`` tells
    studios on one machine apart (two hubs with a member of the same name must not share,
    or remove, each other's cgroups)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{user}-{server}" if server else user)
    return (f"{studio}-{safe}" if studio else safe)[:200]


def limits_line(mechanism: Mechanism, cpu: float, memory: int) -> str:
    """The spawn progress line."""
    what = f"Memory limit {units.human_bytes(memory)} and {units.format_cores(cpu)} CPU"
    if mechanism.kind == "rlimit":
        return f"{what}: only an address-space limit of {units.human_bytes(rlimit_as(memory))} is enforced here"
    return f"{what} enforced by {mechanism.label}"


def notice_text(memory: int, profile: str, when: float | None = None) -> str:
    at = time.strftime("%H:%M", time.localtime(when))
    return (
        f"AI Studio: a process of your server was stopped at {at}: it used more than the "
        f"{units.human_bytes(memory)} of memory of profile {profile}.\n"
        f"Your server is still running; restart the kernel, and use less memory or choose a larger profile.\n"
    )


NOTICE_FILE = "MEMORY-LIMIT-NOTICE.txt"


class ServerCgroup:
    """One server's cgroup(s) under a cgroup mechanism."""

    def __init__(self, mechanism: Mechanism, name: str):
        self.mechanism = mechanism
        self.dirs = {c: os.path.join(base, name) for c, base in mechanism.bases.items()}

    @property
    def memory_dir(self) -> str:
        return self.dirs.get("memory", self.dirs.get(""))

    def create(self, cpu: float, memory: int) -> None:
        kind = self.mechanism.kind
        if kind == "cgroup2":
            parent = self.mechanism.bases[""]
            _prepare_v2_parent(parent)
        for c, d in self.dirs.items():
            os.makedirs(d, exist_ok=True)
        memsw = os.path.exists(os.path.join(self.dirs.get("memory", ""), "memory.memsw.limit_in_bytes"))
        for c, values in cgroup_values(kind, cpu, memory, memsw=memsw).items():
            for name, value in values:
                path = os.path.join(self.dirs[c], name)
                if name == "memory.swap.max" and not os.path.exists(path):
                    continue  # no swap accounting: nothing to limit
                with open(path, "w") as f:
                    f.write(value)

    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.dirs.values()]

    def join_fn(self):
        """For a preexec: puts the calling (child) process into the cgroups."""
        files = self.procs_files()

        def join():
            for path in files:
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.write(fd, str(os.getpid()).encode())
                finally:
                    os.close(fd)

        return join

    def pids(self) -> set[int]:
        found = set()
        for path in self.procs_files():
            try:
                with open(path) as f:
                    found.update(int(p) for p in f.read().split())
            except (OSError, ValueError):
                pass
        return found

    def oom_kills(self) -> int:
        name = "memory.events" if self.mechanism.kind == "cgroup2" else "memory.oom_control"
        try:
            with open(os.path.join(self.memory_dir, name)) as f:
                return oom_kills(self.mechanism.kind, f.read())
        except OSError:
            return 0

    def remove(self, timeout: float = 5.0) -> bool:
        """Kill what is left inside and remove the cgroups; whether they are gone."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.pids()
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            gone = True
            for d in self.dirs.values():
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    pass
                except OSError:
                    gone = False
            if gone or time.monotonic() > deadline:
                return gone
            time.sleep(0.1)


def _prepare_v2_parent(parent: str) -> None:
    """v2 allows processes only in leaves of a cgroup with controllers enabled: the hub moves
    itself into ``<hub's cgroup>/hub`` before ``<hub's cgroup>/aistudio`` gets memory and cpu."""
    own = os.path.dirname(parent)
    control = os.path.join(own, "cgroup.subtree_control")
    with open(control) as f:
        enabled = set(f.read().split())
    if not {"memory", "cpu"} <= enabled:
        leaf = os.path.join(own, "hub")
        os.makedirs(leaf, exist_ok=True)
        with open(os.path.join(own, "cgroup.procs")) as f:
            pids = f.read().split()
        for pid in pids:
            try:
                with open(os.path.join(leaf, "cgroup.procs"), "w") as f:
                    f.write(pid)
            except OSError:
                pass
        with open(control, "w") as f:
            f.write("+memory +cpu")
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
        f.write("+memory +cpu")
