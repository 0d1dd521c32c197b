"""A server's life on a real hub: named servers with their own GPUs and records, capped by
max_servers; a warning before a short run-time limit (e-mail through a real SMTP server, the
hub pages) and the stop after it; an extension within the policy and one refused beyond
it; a server whose GPUs stay idle is warned then stopped, a busy one keeps running."""

import json
import time
from functools import partial

import harness
import pytest
from harness import PASSWORD, Studio, write_config, write_profiles

from hub_config.usage.store import UsageStore

wait_for = partial(harness.wait_for, timeout=40, what="it", every=0.5)

PROFILES = """\
profiles:
  - slug: cpu
    display_name: CPU
    resources: {cpu: 1, memory: 1Gi}
    access: {everyone: true}
  - slug: short
    display_name: Short CPU
    resources: {cpu: 1, memory: 1Gi}
    access: {everyone: true}
    max_runtime: 25s
  - slug: one-gpu
    display_name: One A100
    resources: {cpu: 1, memory: 1Gi, gpus: 1, gpu_type: a100}
    access: {everyone: true}
    gpu_idle: {threshold: 10, after: 12s}
quotas:
  members: {max_servers: 2, max_gpus: 2, extend_by: 1m, max_extensions: 1}
"""
USERS = ["alice", "bob", "carol", "dan", "erin"]


@pytest.fixture(scope="module")
def utilisation(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpu") / "utilisation.json"
    path.write_text("{}")
    return path


@pytest.fixture(scope="module")
def studio(tmp_path_factory, inbox, utilisation):
    directory = tmp_path_factory.mktemp("lifecycle")
    users = {u: {"email": f"{u}@lab.example"} for u in USERS} | {"admin": {"admin": True}}
    studio = Studio(directory, write_config(
        directory, write_profiles(directory, PROFILES),
        auth={"demo": {"password": PASSWORD, "users": users}},
        local={"user_accounts": "shared"},
        gpus={"discovery": "inventory", "inventory": [{"index": i, "type": "a100"} for i in range(4)]},
        spawn={"start_timeout": 90, "http_timeout": 90, "poll_interval": 2},
        lifecycle={"warn_before": [20], "every": 1,
                   "gpu_idle": {"source": "file", "file": str(utilisation), "every": 1}},
        notifications={"smtp": {"host": "127.0.0.1", "port": inbox.port, "from": "studio@lab.example"}},
    ))
    studio.start()
    yield studio
    studio.stop()


def start(studio, user, server, options):
    path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
    return studio.api("POST", path, user=user, json={"user_options": options})


def servers_of(studio, user):
    return studio.api("GET", f"/users/{user}").json()["servers"]


def wait_ready(studio, user, server):
    return wait_for(lambda: servers_of(studio, user).get(server, {}).get("ready"), timeout=90,
                    what=f"{user}'s server {server!r} starting")


def usage(studio):
    return UsageStore(f"sqlite:///{studio.config['data_dir']}/usage.sqlite")


def test_named_servers_each_with_its_own_profile_gpus_and_record_up_to_max_servers(studio):
    assert start(studio, "alice", "", {"profile": "one-gpu"}).status_code in (201, 202)
    assert start(studio, "alice", "train", {"profile": "one-gpu"}).status_code in (201, 202)
    wait_ready(studio, "alice", "")
    wait_ready(studio, "alice", "train")
    try:
        third = start(studio, "alice", "more", {"profile": "cpu"})
        assert third.status_code == 429
        assert third.json()["message"] == "You already run 2 of your 2 servers: stop one before starting another."
        rows = {(r.server_name, r.profile, r.gpus) for r in usage(studio).rows() if r.user == "alice" and not r.stopped_at}
        assert rows == {("", "one-gpu", 1), ("train", "one-gpu", 1)}
        devices = {studio.server_env("alice", name)["CUDA_VISIBLE_DEVICES"] for name in ("", "train")}
        assert len(devices) == 2  # each server its own GPU
        form = studio.session("alice").get(f"{studio.url}/hub/spawn/alice/third").text
        assert 'data-testid="server-name"' in form and "third" in form
        home = studio.session("alice").get(f"{studio.url}/hub/home").content.decode()  # UTF-8 whatever requests guesses
        card = home[home.find("studio-servers"):home.find("extend-error")]
        assert 'data-testid="studio-server-train"' in card and "1× A100" in card and "no limit" in card, card
    finally:
        studio.api("DELETE", "/users/alice/servers/train", user="alice")
        studio.stop_server("alice")


def test_a_warning_before_the_run_time_limit_then_the_stop(studio, inbox):
    began = time.monotonic()
    assert start(studio, "bob", "", {"profile": "short"}).status_code in (201, 202)
    wait_ready(studio, "bob", "")
    runtime = studio.api("GET", "/users/bob/server/runtime", user="bob").json()
    assert runtime["max_runtime"] == 25 and 0 < runtime["left"] <= 25 and runtime["warn_before"] == [20]
    assert runtime["extend"]["by"] == 60 and runtime["extend"]["refusal"] is None
    to, subject, body = wait_for(lambda: next((m for m in inbox.messages if m[0] == "bob@lab.example"), None),
                                 what="the warning e-mail")
    assert subject.startswith("AI Studio: your server default stops at") and "Save your work" in body
    assert "You may extend it by 1m" in body
    page = studio.session("bob").get(f"{studio.url}/hub/home").text
    if servers_of(studio, "bob"):  # still running: the notice says so
        assert 'data-testid="runtime-warning"' in page
    wait_for(lambda: not servers_of(studio, "bob"), timeout=60, what="the stop at the limit")
    assert time.monotonic() - began >= 20


def test_an_extension_within_the_policy_and_one_beyond_it(studio):
    assert start(studio, "carol", "", {"profile": "short"}).status_code in (201, 202)
    wait_ready(studio, "carol", "")
    try:
        assert studio.api("POST", "/users/carol/server/extend", user="bob").status_code == 403  # not bob's
        extended = studio.api("POST", "/users/carol/server/extend", user="carol")
        assert extended.status_code == 200, extended.text
        assert extended.json()["max_runtime"] == 85 and extended.json()["left"] > 25
        again = studio.api("POST", "/users/carol/server/extend", user="carol")
        assert again.status_code == 409 and again.json()["message"] == "This server was already extended 1 of 1 times."
        [record] = [r for r in usage(studio).rows() if r.user == "carol" and not r.stopped_at]
        [ext] = usage(studio).extensions(record.usage_id)
        assert (ext.user, ext.seconds, ext.new_limit) == ("carol", 60, 85)
        time.sleep(30)  # past the first limit: still running
        assert servers_of(studio, "carol")[""]["ready"]
    finally:
        studio.stop_server("carol")


def test_an_idle_gpu_server_is_warned_then_stopped_and_a_busy_one_keeps_running(studio, inbox, utilisation):
    utilisation.write_text(json.dumps({"dan/": 2.0, "erin/": 85.0}))
    for user in ("dan", "erin"):
        assert start(studio, user, "", {"profile": "one-gpu"}).status_code in (201, 202)
    for user in ("dan", "erin"):
        wait_ready(studio, user, "")
    try:
        to, subject, body = wait_for(lambda: next((m for m in inbox.messages if m[0] == "dan@lab.example"), None),
                                     what="the idle warning")
        assert "unless its GPUs are used" in subject and "below 10%" in body
        wait_for(lambda: not servers_of(studio, "dan"), timeout=40, what="the idle server's stop")
        assert any(m[0] == "dan@lab.example" and "was stopped (GPUs idle)" in m[1] for m in inbox.messages)
        assert servers_of(studio, "erin")[""]["ready"]  # busy: still running
        assert not any(m[0] == "erin@lab.example" for m in inbox.messages)
        means = {r.user: r.gpu_util_mean for r in usage(studio).rows() if r.user in ("dan", "erin")}
        assert means["dan"] == pytest.approx(2.0) and means["erin"] == pytest.approx(85.0)
    finally:
        for user in ("dan", "erin"):
            if servers_of(studio, user):
                studio.stop_server(user)
