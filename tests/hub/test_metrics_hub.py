"""The studio's metrics at /hub/metrics on a real hub: only a token with read:metrics reads
them; the hub's services are checked; refusals, a spawn, a dataset mount and a stop move
them; scans recorded by another process are read at the next scrape."""

import os
import secrets
import shutil
import time
from pathlib import Path

import pytest
import requests
import yaml
from harness import PASSWORD, USERS, Studio, free_ports, write_config, write_profiles
from prometheus_client.parser import text_string_to_metric_families

from hub_config.datasets import DatasetStore
from hub_config.datasets.admin import scan
from hub_config.datasets.scan import ScanSettings

PROFILES = """\
profiles:
  - slug: cpu
    display_name: CPU
    resources: {cpu: 1, memory: 1Gi}
    access: {everyone: true}
  - slug: one-gpu
    display_name: One GPU
    resources: {cpu: 1, memory: 1Gi, gpus: 1, gpu_type: a100}
    access: {groups: [gpu-residents]}
  - slug: three-gpu
    display_name: Three GPUs
    resources: {cpu: 1, memory: 1Gi, gpus: 3, gpu_type: a100}
    access: {everyone: true}
quotas:
  groups:
    gpu-residents:
      member: {max_gpus: 4}
    students:
      group: {max_gpus: 1}
  members: {max_gpus: 0}
"""


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    directory = tmp_path_factory.mktemp("metrics")
    files = Path(f"/tmp/aistudio-test-metrics-{secrets.token_hex(4)}")
    for name, rows in (("alpha", "30-39,F\n40-49,M\n"), ("beta", "30-39,13812345678\n40-49,13912345678\n")):
        (files / name).mkdir(parents=True)
        (files / name / "t.csv").write_text(("age_band,sex\n" if name == "alpha" else "age_band,tel\n") + rows * 10)
    config = write_config(directory, write_profiles(directory, PROFILES), local={"user_accounts": "shared"},
                          auth={"demo": {"password": PASSWORD, "users": USERS}},
                          datasets={"enabled": True, "mount_root": str(files / "mnt")})
    settings = yaml.safe_load(config.read_text())
    taken = set(settings["hub"].values()) | {v.get("service_port") for v in settings.values() if isinstance(v, dict)}
    settings["datasets"]["service_port"] = next(p for p in free_ports(8) if p not in taken)
    config.write_text(yaml.safe_dump(settings))
    data = Path(settings["data_dir"])
    data.mkdir()
    # a steward's dataset, scanned and granted to alice's group before the hub starts
    store = DatasetStore(f"sqlite:///{data}/datasets.sqlite")
    for name in ("alpha", "beta"):
        store.add(name, actor="steward", path=str(files / name))
    assert scan(store, "alpha", ScanSettings(), actor="steward")["passed"]
    store.publish("alpha", actor="steward")
    store.grant("alpha", actor="steward", groups=["gpu-residents"])
    studio = Studio(directory, config)
    studio.store = store
    studio.start()
    studio.metrics_token = studio.api("POST", "/users/admin/tokens",
                                      json={"note": "prometheus", "scopes": ["read:metrics"]}).json()["token"]
    try:
        yield studio
    finally:
        studio.stop()
        shutil.rmtree(files, ignore_errors=True)


def scrape(studio, token=None) -> dict:
    """{(name, sorted labels): value} of /hub/metrics, read with the read:metrics token."""
    r = requests.get(f"{studio.url}/hub/metrics", headers={"Authorization": f"Bearer {token or studio.metrics_token}"},
                     timeout=30)
    assert r.status_code == 200, r.text[:300]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(found, name, default=None, **labels):
    return found.get((name, tuple(sorted(labels.items()))), default)


def test_metrics_need_a_token_with_read_metrics(studio):
    assert requests.get(f"{studio.url}/hub/metrics", timeout=30).status_code == 403
    member = requests.get(f"{studio.url}/hub/metrics", headers={"Authorization": f"token {studio.token('bob')}"},
                          timeout=30)
    assert member.status_code == 403 and "read:metrics" in member.text
    found = scrape(studio)
    assert value(found, "aistudio_gpus_free", gpu_type="a100") == 2
    assert value(found, "aistudio_gpus_devices", gpu_type="a100") == 2
    assert ("jupyterhub_running_servers", ()) in found  # JupyterHub's own are there too
    assert value(found, "aistudio_group_gpu_hours", group="students", period="month") == 0


def test_the_hubs_services_are_checked(studio):
    deadline = time.monotonic() + 30
    up = {}
    while time.monotonic() < deadline:
        up = {dict(k[1])["service"]: v for k, v in scrape(studio).items() if k[0] == "aistudio_service_up"}
        if up:
            break
        time.sleep(0.5)  # the first scrape starts the check
    assert up == {"usage": 1, "announcements": 1, "datasets": 1}


def test_refusals_are_counted_by_reason_and_profile(studio):
    before = scrape(studio)
    for user, options, status in (("bob", {"profile": "one-gpu"}, 403), ("bob", {"profile": "cpu", "colour": "red"}, 400),
                                  ("carol", {"profile": "three-gpu"}, 429), ("alice", {"profile": "three-gpu"}, 409),
                                  ("bob", {"profile": "no-such-profile"}, 400)):
        r = studio.spawn(user, options, wait=False)
        assert r.status_code == status, (user, options, r.text)
    after = scrape(studio)
    for reason, profile in (("rights", "one-gpu"), ("malformed", "cpu"), ("quota", "three-gpu"),
                            ("no_free_gpu", "three-gpu"), ("malformed", "(unknown)")):
        name = "aistudio_launches_refused_total"
        assert value(after, name, 0, reason=reason, profile=profile) == value(
            before, name, 0, reason=reason, profile=profile) + 1, (reason, profile)
    assert value(after, "aistudio_gpus_free", gpu_type="a100") == 2  # nothing held after a refusal


def test_a_spawn_and_a_stop_move_the_gpu_and_dataset_metrics(studio):
    before = scrape(studio)
    begun = time.monotonic()
    assert studio.spawn("alice", {"profile": "one-gpu"}).status_code in (201, 202)
    took = time.monotonic() - begun
    try:
        running = scrape(studio)
        assert value(running, "aistudio_gpus_held", gpu_type="a100", group="gpu-residents") == 1
        assert value(running, "aistudio_gpus_free", gpu_type="a100") == 1
        count = "aistudio_spawn_duration_seconds_count"
        assert value(running, count, 0, profile="one-gpu") == value(before, count, 0, profile="one-gpu") + 1
        spent = value(running, "aistudio_spawn_duration_seconds_sum", profile="one-gpu") - value(
            before, "aistudio_spawn_duration_seconds_sum", 0, profile="one-gpu")
        assert 0 < spent <= took + 1
        mounts = "aistudio_dataset_mounts_total"
        assert value(running, mounts, 0, dataset="alpha") == value(before, mounts, 0, dataset="alpha") + 1
        assert os.path.islink(studio.server_env("alice")["AISTUDIO_DATASETS_DIR"] + "/alpha")
    finally:
        studio.stop_server("alice")
    stopped = scrape(studio)
    assert value(stopped, "aistudio_gpus_held", gpu_type="a100", group="gpu-residents") == 0
    assert value(stopped, "aistudio_gpus_free", gpu_type="a100") == 2
    assert 0 < value(stopped, "aistudio_group_gpu_hours", group="gpu-residents", period="month") < took / 3600 + 0.01


def test_scans_recorded_by_another_process_are_read_at_the_next_scrape(studio):
    before = scrape(studio)
    assert value(before, "aistudio_dataset_scans_total", result="passed") >= 1
    assert value(before, "aistudio_datasets", status="published", scan_status="pass") == 1
    assert not scan(studio.store, "beta", ScanSettings(), actor="steward")["passed"]  # telephone numbers
    after = scrape(studio)
    failed = "aistudio_dataset_scans_total"
    assert value(after, failed, result="failed") == value(before, failed, result="failed") + 1
    assert value(after, "aistudio_datasets", status="draft", scan_status="fail") == 1
