"""Runs one pod's container, as root, inside a private mount namespace (started as
``unshare --mount --propagation private python -m simulated_cluster.podrun SPEC``).

The container's root file system is an overlay of this machine's root (the "image":
the same Python environment as the hub) with a throw-away upper layer on a tmpfs;
/proc, /dev and /sys are the host's, /tmp is private. Each volume is bind-mounted at
its mountPath (read-only where the pod says so); then the process chroots into that
root, takes the pod's user, group and supplementary groups, sets no_new_privs and
execs the container's command with the pod's environment."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys


def mount(*args: str):
    subprocess.run(["mount", *args], check=True)


def main(spec_path: str):
    spec = json.loads(open(spec_path).read())
    base = spec["dir"]
    layers = os.path.join(base, "layers")
    root = os.path.join(base, "root")
    os.makedirs(layers, exist_ok=True)
    os.makedirs(root, exist_ok=True)
    mount("-t", "tmpfs", "-o", "mode=0755", "container-layer", layers)
    os.makedirs(os.path.join(layers, "upper"))
    os.makedirs(os.path.join(layers, "work"))
    mount("-t", "overlay", "container-root", "-o",
          f"lowerdir=/,upperdir={layers}/upper,workdir={layers}/work", root)
    for special in ("/proc", "/dev", "/sys"):
        mount("--rbind", special, root + special)
    mount("-t", "tmpfs", "-o", "mode=1777", "container-tmp", root + "/tmp")
    for hidden in spec.get("empty_dirs", []):  # the image has none of this machine's homes or data
        if os.path.isdir(root + hidden):
            mount("-t", "tmpfs", "-o", "mode=0755", "container-empty", root + hidden)
    for extra in spec.get("host_dirs", []):  # the Python environment, when on another file system
        os.makedirs(root + extra, exist_ok=True)
        mount("--bind", extra, root + extra)
        mount("-o", "remount,bind,ro", root + extra)
    for m in spec["mounts"]:
        target = root + m["path"]
        if os.path.isdir(m["source"]):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        mount("--bind", m["source"], target)
        if m["read_only"]:
            mount("-o", "remount,bind,ro", target)
    os.chroot(root)
    workdir = spec.get("working_dir") or "/"
    os.makedirs(workdir, exist_ok=True)
    os.chdir(workdir)
    groups = sorted(set(spec.get("groups", [])))
    os.setgroups(groups)
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    if spec.get("no_new_privs"):
        PR_SET_NO_NEW_PRIVS = 38
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    env = spec["env"]
    argv = spec["argv"]
    program = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH", os.defpath))
    if not program:
        print(f"simulated kubelet: {argv[0]}: executable file not found in $PATH", file=sys.stderr)
        sys.exit(127)
    os.execve(program, argv, env)


if __name__ == "__main__":
    main(sys.argv[1])
