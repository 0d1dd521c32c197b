"""Enforced limits in local mode: a kernel past its profile's memory is stopped, alone."""

import os
import pwd
import time

import pytest
import requests
from harness import ACCOUNT_PREFIX, Studio, write_config, write_profiles

from hub_config.processes import studio_id
from hub_config.spawners import limits

PROFILES = """\
profiles:
  - slug: tiny
    display_name: Tiny
    resources: {cpu: 1, memory: 320Mi}
    access: {everyone: true}
"""
HOG = """
b = bytearray(600 * 2**20)
for i in range(0, len(b), 4096):
    b[i] = 1
print("survived")
"""


@pytest.fixture(scope="module")
def tiny_studio(tmp_path_factory):
    mechanism = limits.detect_here()
    assert mechanism.kind.startswith("cgroup"), f"this machine offers no cgroup to enforce limits: {mechanism.describe()}"
    directory = tmp_path_factory.mktemp("limits")
    studio = Studio(directory, write_config(directory, write_profiles(directory, PROFILES)))
    studio.start()
    yield studio
    studio.stop()


def wait_for(check, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def test_kernel_over_memory_limit_is_stopped_and_told(tiny_studio):
    studio = tiny_studio
    for user in ("bob", "carol"):
        r = studio.spawn(user, {"profile": "tiny"})
        assert r.status_code in (201, 202), r.text
    try:
        assert "enforced by cgroup" in studio.log()
        cgroup = limits.ServerCgroup(limits.detect_here(), limits.cgroup_name("bob", "", studio_id(studio.config["data_dir"])))
        assert int(studio.server_env("bob")["_pid"]) in cgroup.pids()
        with open(os.path.join(cgroup.memory_dir, "memory.limit_in_bytes" if "memory" in cgroup.dirs else "memory.max")) as f:
            assert int(f.read()) == 320 * 2**20

        with pytest.raises(Exception) as killed:
            studio.run_in_kernel("bob", HOG, timeout=15)
        assert "survived" not in str(killed.value)

        # bob's server and carol's are still up and answer
        for user in ("bob", "carol"):
            lab = requests.get(f"{studio.url}/user/{user}/api/status",
                               headers={"Authorization": f"token {studio.token(user)}"}, timeout=30)
            assert lab.status_code == 200, lab.text
        assert studio.run_in_kernel("carol", "print(6 * 7)").strip() == "42"
        assert studio.run_in_kernel("bob", "print(6 * 7)").strip() == "42"

        notice = os.path.join(pwd.getpwnam(f"{ACCOUNT_PREFIX}bob").pw_dir, limits.NOTICE_FILE)
        assert wait_for(lambda: os.path.exists(notice)), studio.log()[-3000:]
        with open(notice) as f:
            assert "it used more than the 320 MiB of memory of profile Tiny" in f.read()
        assert "bob's server stopped by its memory limit of 320 MiB (profile Tiny)" in studio.log()
        carol_home = pwd.getpwnam(f"{ACCOUNT_PREFIX}carol").pw_dir
        assert not os.path.exists(os.path.join(carol_home, limits.NOTICE_FILE))
    finally:
        for user in ("bob", "carol"):
            studio.stop_server(user)
    assert wait_for(lambda: not any(os.path.exists(d) for d in cgroup.dirs.values()), 10), cgroup.dirs
