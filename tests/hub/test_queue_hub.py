"""The GPU queue on a real hub: one free A100 and three members. The second member waits,
gets the GPU reserved (notice on the hub pages, an e-mail through a real SMTP server) when
the first stops, a third cannot take it, the second starts; a member who asked for it is
started by the hub itself; refusals that waiting cannot help are not queued."""

import time
from functools import partial

import harness
import pytest
import requests
from harness import PASSWORD, Studio, write_config, write_profiles

wait_for = partial(harness.wait_for, timeout=20, what="the queue")

PROFILES = """\
profiles:
  - slug: one-gpu
    display_name: One A100
    resources: {cpu: 1, memory: 1Gi, gpus: 1, gpu_type: a100}
    access: {everyone: true}
    max_runtime: 2h
  - slug: two-gpu
    display_name: Two A100s
    resources: {cpu: 1, memory: 1Gi, gpus: 2, gpu_type: a100}
    access: {everyone: true}
quotas:
  members: {max_gpus: 1}
  queue: {claim_timeout: 5m}
"""
USERS = ["alice", "bob", "carol", "dan"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory, inbox):
    directory = tmp_path_factory.mktemp("queue")
    users = {u: {"email": f"{u}@lab.example"} for u in USERS} | {"admin": {"admin": True}}
    studio = Studio(directory, write_config(
        directory, write_profiles(directory, PROFILES),
        auth={"demo": {"password": PASSWORD, "users": users}},
        local={"user_accounts": "shared"},
        gpus={"discovery": "inventory", "inventory": [{"index": 0, "type": "a100"}]},
        notifications={"smtp": {"host": "127.0.0.1", "port": inbox.port, "from": "AI Studio <studio@lab.example>"}},
    ))
    studio.start()
    yield studio
    studio.stop()


def queue(studio, user):
    r = studio.api("GET", "/queue", user=user)
    assert r.status_code == 200, r.text
    return r.json()["entries"]


def test_the_second_member_waits_and_gets_the_gpu_when_the_first_stops(studio, inbox):
    messages = inbox.messages
    assert studio.spawn("alice", {"profile": "one-gpu"}).status_code in (201, 202)
    refused = studio.spawn("bob", {"profile": "one-gpu"}, wait=False)
    assert refused.status_code == 409 and "join the GPU queue" in refused.json()["message"]
    form = studio.form("bob")
    assert 'data-testid="queue-offer-one-gpu"' in form and "you would be number" in form
    assert 'data-testid="queue-offer-two-gpu"' not in form  # over bob's own limit: waiting cannot help

    joined = studio.session("bob").post(f"{studio.url}/hub/api/queue", json={"user_options": {"profile": "one-gpu"}})
    assert joined.status_code == 201, joined.text
    assert (joined.json()["place"], joined.json()["state"]) == (1, "waiting")
    assert joined.json()["estimated_wait"] > 0  # alice's server holds the only A100
    again = studio.session("bob").post(f"{studio.url}/hub/api/queue", json={"user_options": {"profile": "one-gpu"}})
    assert again.status_code == 409 and "already wait" in again.json()["message"]
    assert [e["user"] for e in queue(studio, "bob")] == ["bob"]
    assert queue(studio, "carol") == []  # members see only their own entries
    assert [e["user"] for e in queue(studio, "admin")] == ["bob"]
    page = studio.session("bob").get(f"{studio.url}/hub/home").text
    assert 'data-testid="queue-waiting-notice"' in page and "number <strong>1</strong>" in page

    studio.stop_server("alice")
    [entry] = wait_for(lambda: [e for e in queue(studio, "bob") if e["state"] == "reserved"], what="bob's reservation")
    assert entry["reserved_until"] - time.time() > 250  # claim_timeout 5m
    taken = studio.spawn("carol", {"profile": "one-gpu"}, wait=False)
    assert taken.status_code == 409 and "reserved for members in the queue" in taken.json()["message"]
    assert 'data-testid="queue-reserved-notice"' in studio.session("bob").get(f"{studio.url}/hub/home").text
    [(to, subject, body)] = wait_for(lambda: [m for m in messages if m[0] == "bob@lab.example"], what="the e-mail")
    assert subject.startswith("AI Studio: 1× A100 reserved for you until")
    assert "Start your server before" in body and f"{studio.url}/hub/queue" in body

    assert studio.spawn("bob", {"profile": "one-gpu"}).status_code in (201, 202)
    assert queue(studio, "admin") == []  # served
    studio.stop_server("bob")


def test_the_hub_starts_the_server_of_a_member_who_asked_it_to(studio):
    assert studio.spawn("alice", {"profile": "one-gpu"}).status_code in (201, 202)
    joined = studio.session("dan").post(f"{studio.url}/hub/api/queue",
                                        json={"user_options": {"profile": "one-gpu"}, "auto_start": True})
    assert joined.status_code == 201 and joined.json()["auto_start"] is True
    studio.stop_server("alice")
    wait_for(lambda: studio.api("GET", "/users/dan").json()["servers"].get("", {}).get("ready"), timeout=60,
             what="dan's server starting by itself")
    assert "CUDA_VISIBLE_DEVICES" in studio.server_env("dan") and queue(studio, "admin") == []
    studio.stop_server("dan")


def test_refusals_waiting_cannot_help_are_not_queued_and_bad_requests_name_the_field(studio):
    session = studio.session("carol")
    over = session.post(f"{studio.url}/hub/api/queue", json={"user_options": {"profile": "two-gpu"}})
    assert over.status_code == 429
    assert over.json()["message"] == ("You may use at most 1 GPU at a time and asked for 2: "
                                      "choose a profile with fewer GPUs or a CPU profile.")
    unknown = session.post(f"{studio.url}/hub/api/queue", json={"user_options": {"profile": "one-gpu"}, "when": "now"})
    assert unknown.status_code == 400 and "'when'" in unknown.json()["message"]
    missing = session.post(f"{studio.url}/hub/api/queue", json={"auto_start": True})
    assert missing.status_code == 400 and "'user_options'" in missing.json()["message"]
    nope = session.post(f"{studio.url}/hub/api/queue", json={"user_options": {"profile": "no-such"}})
    assert nope.status_code == 400
    assert queue(studio, "admin") == []


def test_leaving_and_an_admin_removing_and_who_may_do_what(studio):
    assert studio.spawn("alice", {"profile": "one-gpu"}).status_code in (201, 202)
    try:
        for user in ("bob", "carol"):
            r = studio.session(user).post(f"{studio.url}/hub/api/queue", json={"user_options": {"profile": "one-gpu"}})
            assert r.status_code == 201
        bob, carol = (queue(studio, u)[0]["id"] for u in ("bob", "carol"))
        assert studio.api("DELETE", f"/queue/{carol}", user="bob").status_code == 404  # not his
        assert studio.api("DELETE", f"/queue/{bob}", user="bob").status_code == 204
        assert [e["user"] for e in queue(studio, "admin")] == ["carol"]
        assert queue(studio, "carol")[0]["place"] == 1
        page = studio.session("admin").get(f"{studio.url}/hub/queue").text
        assert 'data-testid="queue-admin-row"' in page and "carol" in page
        assert studio.api("DELETE", f"/queue/{carol}", user="admin").status_code == 204
        assert queue(studio, "admin") == []
        assert studio.session("bob").get(f"{studio.url}/hub/api/queue", headers={"Authorization": ""}).status_code == 200
        assert requests.get(f"{studio.url}/hub/api/queue", timeout=10).status_code in (401, 403)
    finally:
        studio.stop_server("alice")


def test_the_queue_is_in_the_hubs_metrics(studio):
    assert studio.spawn("alice", {"profile": "one-gpu"}).status_code in (201, 202)
    try:
        assert studio.session("bob").post(f"{studio.url}/hub/api/queue",
                                          json={"user_options": {"profile": "one-gpu"}}).status_code == 201
        scraped = requests.get(f"{studio.url}/hub/metrics", timeout=10,
                               headers={"Authorization": f"token {studio.token('admin')}"}).text
        assert 'aistudio_queue_entries{gpu_type="a100",state="waiting"} 1.0' in scraped
        studio.api("DELETE", f"/queue/{queue(studio, 'bob')[0]['id']}", user="bob")
    finally:
        studio.stop_server("alice")
