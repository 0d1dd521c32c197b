"""Quotas on a real hub: concurrent launches against a cap, usage across a hub restart."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from harness import PASSWORD, Studio, write_config, write_profiles

from hub_config.usage.store import UsageStore

CROWD = [f"u{i:02d}" for i in range(30)]
PROFILES = """\
profiles:
  - slug: one-gpu
    display_name: One GPU
    resources: {cpu: 1, memory: 1Gi, gpus: 1, gpu_type: a100}
    access: {everyone: true}
quotas:
  groups:
    crowd:
      group: {max_gpus: 4}
"""


@pytest.fixture(scope="module")
def crowd_studio(tmp_path_factory):
    directory = tmp_path_factory.mktemp("crowd")
    profiles = write_profiles(directory, PROFILES)
    users = {u: {"groups": ["crowd"]} for u in CROWD} | {"admin": {"admin": True}}
    studio = Studio(directory, write_config(
        directory, profiles,
        auth={"demo": {"password": PASSWORD, "users": users}},
        local={"user_accounts": "shared"},
        gpus={"discovery": "inventory", "inventory": [{"index": i, "type": "a100"} for i in range(8)]},
    ))
    studio.start()
    for user in CROWD:
        studio.token(user)
    yield studio
    studio.stop()


@pytest.mark.parametrize("round_", [1, 2])
def test_thirty_concurrent_launches_never_exceed_group_cap(crowd_studio, round_):
    studio = crowd_studio
    with ThreadPoolExecutor(len(CROWD)) as pool:
        responses = dict(zip(CROWD, pool.map(lambda u: studio.spawn(u, {"profile": "one-gpu"}, wait=False), CROWD)))
    started = [u for u, r in responses.items() if r.status_code in (201, 202)]
    refused = [u for u, r in responses.items() if r.status_code == 429]
    try:
        assert len(started) == 4 and len(refused) == 26, {u: r.status_code for u, r in responses.items()}
        assert {responses[u].json()["message"] for u in refused} == {
            "Group crowd uses 4 of 4 GPUs: choose a CPU profile or try later. You can wait in line for it: "
            "join the GPU queue from the start page (or POST /hub/api/queue)."
        }
        for user in started:
            studio.wait_ready(user)
        running = [u for u in CROWD if studio.api("GET", f"/users/{u}").json()["servers"]]
        assert sorted(running) == sorted(started)
        usage = UsageStore(f"sqlite:///{studio.config['data_dir']}/usage.sqlite")
        assert sorted(s.user for s in usage.active()) == sorted(started)
        devices = {studio.server_env(u)["CUDA_VISIBLE_DEVICES"] for u in started}
        assert len(devices) == 4
    finally:
        for user in started:
            studio.stop_server(user)
    assert UsageStore(f"sqlite:///{studio.config['data_dir']}/usage.sqlite").active() == []


def test_usage_survives_hub_restart_with_server_running(tmp_path):
    profiles = write_profiles(tmp_path, PROFILES)
    studio = Studio(tmp_path, write_config(
        tmp_path, profiles, hub={"stop_servers_on_exit": False}, local={"user_accounts": "shared"},
    ))
    studio.start()
    try:
        begun = time.time()
        assert studio.spawn("alice", {"profile": "one-gpu"}).status_code in (201, 202)
        pid = int(studio.server_env("alice")["_pid"])
        device = studio.server_env("alice")["CUDA_VISIBLE_DEVICES"]
        studio.stop()  # the hub goes, the server stays
        assert os.path.exists(f"/proc/{pid}")
        time.sleep(2)
        studio.start()
        assert studio.wait_ready("alice")
        assert studio.server_env("alice")["_pid"] == str(pid)
        # the restarted hub still knows the device is taken
        assert "A100 1 of 2" in " ".join(studio.form("bob").split())
        assert studio.spawn("ahmed", {"profile": "one-gpu"}).status_code in (201, 202)
        assert studio.server_env("ahmed")["CUDA_VISIBLE_DEVICES"] != device
        studio.stop_server("ahmed")
        studio.stop_server("alice")
        ended = time.time()
    finally:
        if studio.proc.poll() is None:
            for user in ("alice", "ahmed"):  # this hub leaves servers running when it stops
                if studio.api("GET", f"/users/{user}").json()["servers"]:
                    studio.stop_server(user)
        studio.stop()
    rows = [r for r in UsageStore(f"sqlite:///{studio.config['data_dir']}/usage.sqlite").rows() if r.user == "alice"]
    assert len(rows) == 1 and rows[0].stopped_at is not None
    assert begun <= rows[0].started_at <= rows[0].stopped_at <= ended
    hours = UsageStore(f"sqlite:///{studio.config['data_dir']}/usage.sqlite").gpu_hours(since=begun - 60, user="alice")
    assert hours == pytest.approx((rows[0].stopped_at - rows[0].started_at) / 3600)
    assert (ended - begun) / 3600 - 10 / 3600 < hours <= (ended - begun) / 3600


def test_idle_culler_stops_idle_servers(tmp_path):
    profiles = write_profiles(tmp_path, PROFILES)
    studio = Studio(tmp_path, write_config(
        tmp_path, profiles, local={"user_accounts": "shared"}, culler={"enabled": True, "timeout": 10, "every": 5},
    ))
    studio.start()
    try:
        services = studio.api("GET", "/services").json()
        assert "idle-culler" in services and services["idle-culler"]["command"][1:3] == ["-m", "jupyterhub_idle_culler"]
        assert studio.spawn("carol", {"profile": "one-gpu"}).status_code in (201, 202)
        deadline = time.monotonic() + 60
        while studio.api("GET", "/users/carol").json()["servers"] and time.monotonic() < deadline:
            time.sleep(1)
        assert studio.api("GET", "/users/carol").json()["servers"] == {}
        assert "Culling server carol" in studio.log() or "culling server carol" in studio.log().lower()
    finally:
        studio.stop()


def test_usage_summary_for_admins_only(crowd_studio):
    studio = crowd_studio
    assert studio.spawn("u00", {"profile": "one-gpu"}).status_code in (201, 202)
    try:
        admin = studio.session("admin")
        page = admin.get(f"{studio.url}/services/usage/", timeout=30)
        assert page.status_code == 200, page.text[:500]
        assert "GPU usage" in page.text and 'data-testid="chart"' in page.text
        summary = admin.get(f"{studio.url}/services/usage/api/summary", timeout=30).json()
        crowd = next(g for g in summary["groups"] if g["group"] == "crowd")
        assert (crowd["servers"], crowd["gpus"], crowd["max_gpus"], crowd["by_type"]) == (1, 1, 4, {"a100": 1})
        assert len(summary["daily"]) == 30 and summary["daily"][-1]["gpu_hours"] >= 0
        # a member gets their own usage page (tests/hub/test_usage_member.py), not the admins'
        # summary; the API without the service's login or a token answers 401
        anonymous = requests.get(f"{studio.url}/services/usage/api/summary", timeout=30)
        assert anonymous.status_code == 401 and anonymous.json()["status"] == 401
        member = studio.session("u01").get(f"{studio.url}/services/usage/", timeout=30)
        assert member.status_code == 200 and "My usage" in member.text and "In use now, per group" not in member.text
        member = studio.session("u01").get(f"{studio.url}/services/usage/api/summary", timeout=30)
        assert member.status_code == 403 and member.json()["status"] == 403
        assert studio.session("u01").get(f"{studio.url}/hub/spawn", timeout=30).ok
    finally:
        studio.stop_server("u00")


def test_spawn_page_shows_what_is_left(crowd_studio):
    text = " ".join(crowd_studio.form("u02").split())
    assert "Group crowd: 0 of 4 GPUs in use" in text
    assert "GPUs free now: A100 8 of 8" in text
