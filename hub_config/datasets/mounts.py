"""Putting granted datasets into a member's server, decided on the hub.

Kubernetes: one read-only volume per granted dataset (an existing PVC, an NFS export
or a host path) mounted at /datasets/<name> with ``readOnly`` and
``recursiveReadOnly: IfPossible`` (sub-mounts read-only too, where the node supports it).

Local mode with system accounts (the hub runs as root): file permissions.
Each dataset has a system group (``aistudio-ds-<name>``); its files are owned by
root and that group, folders 0750 and files 0640, so only members of the group can
read them and nobody but root can change them. A member's account is put into the
groups of exactly the datasets granted to them at each start (and taken out of the
others), which the server's processes get as supplementary groups. The member finds
each dataset at ``<mount_root>/<name>``: a root-owned symlink in a root-owned folder
(0755) to the dataset's folder. The link itself grants nothing; every name in the
folder is visible, only granted ones can be read.

Local mode without root (shared demo accounts): the links only; files are not protected.

The hub's own view of Kubernetes sources (``hub_path``): where the hub pod sees the files of
a pvc, nfs or hostpath source, so that it can scan and preview them (studio config
``datasets.source_views``, set by the Helm chart from its ``datasets.sources``).
"""

from __future__ import annotations

import asyncio
import grp
import hashlib
import os
import posixpath
import pwd
import stat
import sys
from dataclasses import dataclass
from datetime import datetime

from .models import MountSpec

K8S_MOUNT_ROOT = "/datasets"


def group_name(prefix: str, dataset: str) -> str:
    """A valid system group name for a dataset (at most 32 characters)."""
    full = prefix + dataset
    if len(full) <= 32:
        return full
    return f"{full[:25]}-{hashlib.sha256(dataset.encode()).hexdigest()[:6]}"


# --------------------------------------------------------------------------- Kubernetes


def volume_name(dataset: str) -> str:
    return f"dataset-{dataset}"


def k8s_volumes(mounts: list[MountSpec], mount_root: str = K8S_MOUNT_ROOT) -> tuple[list[dict], list[dict], list[str]]:
    """(volumes, volumeMounts, skipped names) for the pod: every mount read-only."""
    volumes, volume_mounts, skipped = [], [], []
    for m in mounts:
        vol = {"name": volume_name(m.name)}
        mount = {"name": volume_name(m.name), "mountPath": f"{mount_root.rstrip('/')}/{m.name}", "readOnly": True,
                 "recursiveReadOnly": "IfPossible"}
        if m.source_kind == "pvc":
            vol["persistentVolumeClaim"] = {"claimName": m.claim, "readOnly": True}
            if m.source_path:
                mount["subPath"] = m.source_path.strip("/")
        elif m.source_kind == "nfs":
            vol["nfs"] = {"server": m.server, "path": m.source_path, "readOnly": True}
        elif m.source_kind == "hostpath":
            vol["hostPath"] = {"path": m.source_path, "type": "Directory"}
        else:
            skipped.append(m.name)  # a folder on the hub's machine: no pod can mount it
            continue
        volumes.append(vol)
        volume_mounts.append(mount)
    return volumes, volume_mounts, skipped


def _parts(path: str | None) -> list[str] | None:
    """The folders of a source path (``None`` when it climbs with ``..``)."""
    parts = [p for p in (path or "").split("/") if p not in ("", ".")]
    return None if ".." in parts else parts


def hub_path(views, kind: str, *, claim: str | None = None, server: str | None = None,
             source_path: str | None = None) -> str | None:
    """Where the hub sees the files of a Kubernetes source: through the view (an entry of
    ``datasets.source_views``: kind, claim or server, source_path, path) of the same claim,
    NFS server or host folder whose folder holds ``source_path``, the deepest such view.
    None when no view holds it, or for a local source. A pure function."""
    if kind not in ("pvc", "nfs", "hostpath"):
        return None
    wanted = _parts(source_path)
    if wanted is None:
        return None
    best: tuple[list[str], dict] | None = None
    for view in views or ():
        if view.get("kind") != kind:
            continue
        if kind == "pvc" and view.get("claim") != claim:
            continue
        if kind == "nfs" and view.get("server") != server:
            continue
        held = _parts(view.get("source_path"))
        if held is None or wanted[:len(held)] != held:
            continue
        if best is None or len(held) > len(best[0]):
            best = (held, view)
    if best is None:
        return None
    held, view = best
    return posixpath.join(view["path"], *wanted[len(held):])


# --------------------------------------------------------------------------- local: permissions


class MountError(Exception):
    pass


async def _run(*cmd: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode, out.decode(errors="replace").strip()


async def ensure_group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    code, out = await _run("groupadd", "--system", name)
    if code not in (0, 9):  # 9: created meanwhile
        raise MountError(f"groupadd {name} failed: {out}")
    return grp.getgrnam(name).gr_gid


def _others_can_traverse(path: str) -> str | None:
    """The first folder above ``path`` that other accounts cannot enter, if any."""
    for parent in reversed(list(_parents(path))):
        if not os.stat(parent).st_mode & 0o001:
            return parent
    return None


def _parents(path: str):
    while path not in ("/", ""):
        path = os.path.dirname(path)
        yield path


def protect_tree(root: str, gid: int) -> int:
    """root:<gid>, folders 0750, files 0640, for everything under ``root`` (symlinks untouched)."""
    changed = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            st = os.lstat(name)
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = 0o750 if stat.S_ISDIR(st.st_mode) else 0o640
            if st.st_uid != 0 or st.st_gid != gid:
                os.lchown(name, 0, gid)
                changed += 1
            if stat.S_IMODE(st.st_mode) != mode:
                os.chmod(name, mode)
                changed += 1
    return changed


def is_protected(root: str, gid: int) -> bool:
    st = os.lstat(root)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and st.st_gid == gid and stat.S_IMODE(st.st_mode) == 0o750


async def prepare_dataset(path: str, group: str, *, force: bool = False) -> int:
    """Make the dataset's files readable by ``group`` only; returns its gid.

    The whole tree is walked when the top folder is not protected yet, or with ``force``
    (after a scan, when a steward may have added files).
    """
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise MountError(f"{path} is not a folder")
    blocked = _others_can_traverse(real)
    if blocked:
        raise MountError(f"{blocked} cannot be entered by members' accounts (chmod o+x it, or move the dataset)")
    gid = await ensure_group(group)
    if force or not is_protected(real, gid):
        await asyncio.get_running_loop().run_in_executor(None, protect_tree, real, gid)
    return gid


def account_dataset_groups(account: str, prefix: str) -> set[str]:
    return {g.gr_name for g in grp.getgrall() if g.gr_name.startswith(prefix) and account in g.gr_mem}


async def sync_membership(account: str, wanted: set[str], prefix: str) -> tuple[set[str], set[str]]:
    """Put ``account`` into exactly the ``wanted`` dataset groups (those named with ``prefix``)."""
    current = account_dataset_groups(account, prefix)
    added, removed = wanted - current, current - wanted
    for g in sorted(added):
        code, out = await _run("gpasswd", "-a", account, g)
        if code != 0:
            raise MountError(f"gpasswd -a {account} {g} failed: {out}")
    for g in sorted(removed):
        code, out = await _run("gpasswd", "-d", account, g)
        if code != 0:
            raise MountError(f"gpasswd -d {account} {g} failed: {out}")
    return added, removed


# --------------------------------------------------------------------------- local: the /datasets links


def ensure_link_root(mount_root: str, *, as_root: bool) -> None:
    os.makedirs(mount_root, exist_ok=True)
    if as_root:
        st = os.lstat(mount_root)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise MountError(f"{mount_root} must be a folder")
        if st.st_uid != 0:
            os.chown(mount_root, 0, 0)
        if stat.S_IMODE(st.st_mode) != 0o755:
            os.chmod(mount_root, 0o755)


def link(mount_root: str, name: str, target: str) -> str:
    """``<mount_root>/<name>`` -> ``target`` (replaced atomically when it points elsewhere)."""
    path = os.path.join(mount_root, name)
    target = os.path.realpath(target)
    try:
        if os.readlink(path) == target:
            return path
    except OSError:
        pass
    if os.path.lexists(path) and not os.path.islink(path):
        raise MountError(f"{path} exists and is not a link we made")
    tmp = f"{path}.tmp-{os.getpid()}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, path)
    return path


def prune_links(mount_root: str, keep: set[str]) -> list[str]:
    """Remove our links for datasets no longer published."""
    removed = []
    try:
        entries = os.listdir(mount_root)
    except OSError:
        return removed
    for name in entries:
        path = os.path.join(mount_root, name)
        if name not in keep and os.path.islink(path):
            os.unlink(path)
            removed.append(name)
    return removed


async def write_as(account: str | None, path: str, text: str) -> None:
    """Write ``text`` to ``path`` as ``account`` (never as root into a member's home)."""
    if account is None:
        with open(path, "w") as f:
            f.write(text)
        return
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write(sys.stdin.read())", path,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        user=account, group=pwd.getpwnam(account).pw_gid, extra_groups=[],
        cwd="/",
    )
    _, err = await proc.communicate(text.encode())
    if proc.returncode:
        raise MountError(f"writing {path} as {account} failed: {err.decode(errors='replace').strip()}")


# --------------------------------------------------------------------------- local: the plan, then its application


NOTICE_FILE = "DATASETS-NOTICE.txt"


@dataclass(frozen=True)
class LocalMountPlan:
    """What a local server's start does with datasets, decided before anything is touched."""

    root: str  # the folder of the links: <root>/<name>
    links: dict  # dataset name -> its folder
    groups: dict  # dataset name -> its system group (system accounts only; empty otherwise)
    skipped: tuple  # granted, but not a folder on this machine
    published: frozenset  # links of other published datasets stay; the rest are pruned


def plan_local(mounts: list[MountSpec], *, published, system: bool, root: str, group_prefix: str) -> LocalMountPlan:
    """The local mounts of ``mounts`` (granted, decided on the hub): a link for each dataset
    with a local folder, and with system accounts the dataset's group. A pure function."""
    local = [m for m in mounts if m.source_kind == "local" and m.path]
    return LocalMountPlan(
        root=root,
        links={m.name: m.path for m in local},
        groups={m.name: group_name(group_prefix, m.name) for m in local} if system else {},
        skipped=tuple(m.name for m in mounts if m not in local),
        published=frozenset(published),
    )


async def apply_local(plan: LocalMountPlan, *, account: str | None, group_prefix: str, log, log_name: str) -> list[str]:
    """Carry out ``plan``: protect each dataset for its group, link it, prune stale links and
    (``account``: system accounts) put the account into exactly the planned groups.
    Returns the datasets that could not be mounted after all (the plan's skipped first)."""
    skipped = list(plan.skipped)
    ensure_link_root(plan.root, as_root=account is not None)
    wanted_groups = set()
    for name, path in plan.links.items():
        try:
            if name in plan.groups:
                await prepare_dataset(path, plan.groups[name])
                wanted_groups.add(plan.groups[name])
            link(plan.root, name, path)
        except (MountError, OSError) as e:
            log.warning("%s: dataset %s not mounted: %s", log_name, name, e)
            skipped.append(name)
    prune_links(plan.root, set(plan.published))
    if account is not None:
        await sync_membership(account, wanted_groups, group_prefix)
    return skipped


def notice_text(gone: list[str], now: datetime | None = None) -> str:
    """The note left in a member's home when datasets of their last server are gone."""
    when = (now or datetime.now()).strftime("%Y-%m-%d %H:%M")
    return (
        f"AI Studio, {when}: these datasets are no longer available to you, because your access was "
        f"revoked or has expired: {', '.join(gone)}.\n"
        f"Copies you made of their data fall under the same terms; ask the datasets' steward, or request "
        f"access again in the Datasets panel.\n"
    )
