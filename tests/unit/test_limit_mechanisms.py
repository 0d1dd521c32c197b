"""Choosing how servers' limits are enforced, and the values written (hub_config.spawners.limits)."""

import os

import pytest

from hub_config.spawners import limits

V1_MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""
V1_SELF = "4:memory:/process_api/abc\n1:cpu:/\n0::/\n"
V2_MOUNTS = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"
V2_SELF = "0::/system.slice/aistudio.service\n"


def make(root, rel, files=()):
    d = root / rel.lstrip("/")
    d.mkdir(parents=True, exist_ok=True)
    for name, text in dict(files).items():
        (d / name).write_text(text)
    return d


@pytest.fixture
def v1(tmp_path):
    make(tmp_path, "/sys/fs/cgroup/memory/process_api/abc", {"memory.limit_in_bytes": "9", "cgroup.procs": ""})
    make(tmp_path, "/sys/fs/cgroup/cpu", {"cpu.cfs_quota_us": "-1", "cgroup.procs": ""})
    make(tmp_path, "/sys/fs/cgroup/unified", {"cgroup.controllers": ""})
    return tmp_path


def test_v1_hierarchies_under_the_hubs_own_cgroups(v1):
    m = limits.detect(V1_MOUNTS, V1_SELF, systemd=False, root=str(v1))
    assert m.kind == "cgroup1" and m.label == "cgroup v1"
    assert m.bases == {
        "memory": f"{v1}/sys/fs/cgroup/memory/process_api/abc/aistudio",
        "cpu": f"{v1}/sys/fs/cgroup/cpu/aistudio",
    }
    assert "cgroup v1" in m.describe()


def test_v2_with_memory_and_cpu_delegated_comes_first(tmp_path):
    make(tmp_path, "/sys/fs/cgroup/system.slice/aistudio.service", {"cgroup.controllers": "cpuset cpu io memory pids"})
    m = limits.detect(V2_MOUNTS, V2_SELF, systemd=True, root=str(tmp_path))
    assert m.kind == "cgroup2"
    assert m.bases == {"": f"{tmp_path}/sys/fs/cgroup/system.slice/aistudio.service/aistudio"}


def test_v2_without_the_memory_controller_falls_back(tmp_path):
    make(tmp_path, "/sys/fs/cgroup/system.slice/aistudio.service", {"cgroup.controllers": "pids"})
    m = limits.detect(V2_MOUNTS, V2_SELF, systemd=True, root=str(tmp_path))
    assert m.kind == "rlimit" and "systemd-run" in m.reason
    assert "RLIMIT_AS" in m.describe()


def test_a_namespaced_mount_shows_the_hubs_cgroup_as_its_root(tmp_path):
    make(tmp_path, "/sys/fs/cgroup/memory", {"memory.limit_in_bytes": "9"})
    make(tmp_path, "/sys/fs/cgroup/cpu", {"cpu.cfs_quota_us": "-1"})
    m = limits.detect(V1_MOUNTS, "4:memory:/docker/xyz\n1:cpu:/docker/xyz\n", systemd=False, root=str(tmp_path))
    assert m.bases["memory"] == f"{tmp_path}/sys/fs/cgroup/memory/aistudio"


def test_nothing_mounted_means_rlimit(tmp_path):
    m = limits.detect("", "0::/\n", systemd=False, root=str(tmp_path))
    assert m.kind == "rlimit" and m.bases == {}


def test_combined_cpu_cpuacct_mount(tmp_path):
    make(tmp_path, "/sys/fs/cgroup/cpu,cpuacct", {"cpu.cfs_quota_us": "-1"})
    make(tmp_path, "/sys/fs/cgroup/memory", {"memory.limit_in_bytes": "9"})
    mounts = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
    m = limits.detect(mounts, "5:cpu,cpuacct:/\n4:memory:/\n", systemd=False, root=str(tmp_path))
    assert m.kind == "cgroup1" and m.bases["cpu"] == f"{tmp_path}/sys/fs/cgroup/cpu,cpuacct/aistudio"


def test_values_written():
    gib = 1024**3
    assert limits.cgroup_values("cgroup2", 2, 8 * gib) == {
        "": [("memory.max", str(8 * gib)), ("memory.swap.max", "0"), ("cpu.max", "200000 100000")]
    }
    assert limits.cgroup_values("cgroup1", 0.5, gib) == {
        "memory": [("memory.limit_in_bytes", str(gib)), ("memory.memsw.limit_in_bytes", str(gib))],
        "cpu": [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "50000")],
    }
    assert limits.cgroup_values("cgroup1", 0.001, gib, memsw=False)["memory"] == [("memory.limit_in_bytes", str(gib))]
    assert limits.cgroup_values("cgroup1", 0.001, gib)["cpu"][1] == ("cpu.cfs_quota_us", "1000")
    assert limits.rlimit_as(8 * gib) == 12 * gib
    assert limits.rlimit_as(256 * 1024**2) == 256 * 1024**2 + 2 * gib


def test_oom_counters_and_texts():
    assert limits.oom_kills("cgroup1", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n") == 3
    assert limits.oom_kills("cgroup2", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n") == 1
    assert limits.oom_kills("cgroup1", "") == 0
    m = limits.Mechanism("cgroup1", {})
    assert limits.limits_line(m, 2, 8 * 1024**3) == "Memory limit 8 GiB and 2 CPU enforced by cgroup v1"
    assert "address-space" in limits.limits_line(limits.Mechanism("rlimit"), 1, 1024**3)
    text = limits.notice_text(8 * 1024**3, "CPU small", when=0)
    assert "more than the 8 GiB of memory of profile CPU small" in text
    assert limits.cgroup_name("al ice", "") == "al_ice" and limits.cgroup_name("bob", "gpu") == "bob-gpu"
    assert limits.cgroup_name("bob", "gpu", "1a2b3c4d") == "1a2b3c4d-bob-gpu"  # one studio's, not another's


def test_server_cgroup_in_fake_folders(tmp_path):
    m = limits.Mechanism("cgroup1", {"memory": str(tmp_path / "m" / "aistudio"), "cpu": str(tmp_path / "c" / "aistudio")})
    cg = limits.ServerCgroup(m, "bob")
    cg.create(1.5, 1024**2)  # plain folders: the files are simply written
    assert (tmp_path / "m/aistudio/bob/memory.limit_in_bytes").read_text() == str(1024**2)
    assert (tmp_path / "c/aistudio/bob/cpu.cfs_quota_us").read_text() == "150000"
    (tmp_path / "m/aistudio/bob/memory.oom_control").write_text("oom_kill 2\n")
    assert cg.oom_kills() == 2
    for d in cg.dirs.values():  # a real cgroup folder empties itself; a fake one must be emptied
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
    assert cg.remove() and not os.path.exists(cg.dirs["memory"])
