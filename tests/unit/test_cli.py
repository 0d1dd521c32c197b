"""The aistudio command as an admin uses it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def aistudio(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "hub_config.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_validate_shipped_profiles_exits_0():
    r = aistudio("profiles", "validate", "spawner_profiles/")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("OK: 3 profiles in 3 files")
    assert "Quotas per month: groups gpu-residents, students; users none" in r.stdout


def test_validate_broken_copy_exits_1_one_line_per_problem(tmp_path):
    broken = tmp_path / "profiles"
    shutil.copytree(REPO / "spawner_profiles", broken)
    gpu = broken / "gpu.yaml"
    gpu.write_text(gpu.read_text().replace("memory: 64Gi", "memory: lots", 1).replace("max_runtime: 24h", "max_runtime: soon"))
    (broken / "cpu.yaml").write_text((broken / "cpu.yaml").read_text().replace("step: 4Gi", "step: 0"))
    r = aistudio("profiles", "validate", str(broken))
    assert r.returncode == 1
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3, lines
    assert lines[0] == f"{broken}/cpu.yaml: profile cpu-small: options.memory.step: must be larger than 0"
    assert lines[1].startswith(f"{gpu}: profile gpu-1: resources.memory: 'lots' is invalid")
    assert lines[2].startswith(f"{gpu}: profile gpu-multi: max_runtime: 'soon' is invalid")


def test_validate_defaults_to_the_configs_profiles():
    r = aistudio("profiles", "validate")
    assert r.returncode == 0 and "cpu-small, gpu-1, gpu-multi" in r.stdout


def test_show_table_for_demo_user():
    r = aistudio("profiles", "show", "--user", "bob")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "bob (groups: students) may launch:"
    assert "cpu-small" in r.stdout and "gpu-1" in r.stdout and "gpu-multi" not in r.stdout
    assert "memory: 4Gi, 8Gi" in r.stdout


def test_show_json_with_explicit_groups():
    r = aistudio("profiles", "show", "--user", "zoe", "--groups", "gpu-residents", "--format", "json")
    data = json.loads(r.stdout)
    assert data["groups"] == ["gpu-residents"]
    multi = next(p for p in data["profiles"] if p["slug"] == "gpu-multi")
    assert multi["resources"]["gpus"] == 2 and multi["options"]["gpus"]["choices"] == ["2", "3", "4"]
    assert [p["slug"] for p in data["profiles"]] == ["cpu-small", "gpu-1", "gpu-multi"]


def test_show_user_without_rights(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "profiles:\n  - slug: staff\n    display_name: Staff\n"
        "    resources: {cpu: 1, memory: 1Gi}\n    access: {groups: [staff]}\n"
    )
    r = aistudio("profiles", "show", "--user", "eve", "--groups", "", "--profiles-dir", str(tmp_path))
    assert r.returncode == 0 and "nothing" in r.stdout


def test_bad_studio_config_is_reported(tmp_path):
    (tmp_path / "aistudio.yaml").write_text("hub: {port: -1}\n")
    r = aistudio("--config", str(tmp_path / "aistudio.yaml"), "profiles", "validate")
    assert r.returncode == 1 and "hub.port: -1 is less than the minimum of 1" in r.stderr


def test_queue_list_as_table_and_json(tmp_path):
    from hub_config.queue.manager import GPUQueue
    from hub_config.quotas import QuotaPolicy
    from hub_config.usage.store import UsageStore

    data = tmp_path / "data"
    config = tmp_path / "aistudio.yaml"
    config.write_text(f"data_dir: {data}\nprofiles_dir: {REPO / 'spawner_profiles'}\n")
    empty = aistudio("--config", str(config), "queue", "list")
    assert empty.returncode == 1 and "no usage database yet" in empty.stderr
    usage = UsageStore(f"sqlite:///{data / 'usage.sqlite'}")
    usage.open("alice", "", ["gpu-residents"], "gpu-1", 1, "a100", 8, 2**30)
    queue = GPUQueue(usage, lambda: QuotaPolicy())
    for user in ("bob", "bea"):
        queue.store.add(user=user, groups=["students"], server_name="", profile="gpu-1",
                        user_options={"profile": "gpu-1"}, gpus=1, gpu_type="a100", auto_start=user == "bea")
    table = aistudio("--config", str(config), "queue", "list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["GPU", "PLACE", "USER", "LAUNCH", "SINCE", "STATE", "ESTIMATED", "WAIT"]
    assert lines[1].split()[:4] == ["A100", "1", "bob", "1x"] and "waiting" in lines[1]
    assert lines[2].split()[:3] == ["A100", "2", "bea"] and "(starts by itself)" in lines[2]
    listed = json.loads(aistudio("--config", str(config), "queue", "list", "--format", "json").stdout)["entries"]
    assert [(e["user"], e["place"], e["state"]) for e in listed] == [("bob", 1, "waiting"), ("bea", 2, "waiting")]
    assert listed[0]["estimated_wait"] > 0  # alice's server holds the A100 for its typical length
    usage.engine.dispose()
