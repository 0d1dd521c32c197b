"""The GPU queue in Debian's Chromium, on a real hub with one A100: a member whose launch
cannot start joins the queue from the spawn form, sees his place and estimate on the queue
page and a notice on the hub's pages, gets the GPU reserved when the first member stops and
starts with "Start now"; an admin removes someone from "Everyone waiting". Screenshots of the
pages go to each test's tmp_path."""

import os
import re
from functools import partial

import pytest
from playwright.sync_api import expect
import harness
from harness import CHROMIUM, PASSWORD, Studio, browser_login, write_config, write_profiles

wait_for = partial(harness.wait_for, timeout=20, what="the queue")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (scripts/setup.sh --test installs it)"
    ),
]

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
USERS = ["alice", "bob", "carol"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    directory = tmp_path_factory.mktemp("queue-browser")
    users = {u: {"email": f"{u}@lab.example"} for u in USERS} | {"admin": {"admin": True}}
    studio = Studio(directory, write_config(
        directory, write_profiles(directory, PROFILES),
        auth={"demo": {"password": PASSWORD, "users": users}},
        local={"user_accounts": "shared"},
        gpus={"discovery": "inventory", "inventory": [{"index": 0, "type": "a100"}]},
    ))
    studio.start()
    yield studio
    studio.stop()


def queue(studio, user="admin"):
    r = studio.api("GET", "/queue", user=user)
    assert r.status_code == 200, r.text
    return r.json()["entries"]


def clean_up(studio, *users):
    """After a test, even a failed one: nobody waits and the A100 is free for the next test."""
    for entry in queue(studio):
        studio.api("DELETE", f"/queue/{entry['id']}")
    for user in users:
        if studio.api("GET", f"/users/{user}").json()["servers"]:
            studio.stop_server(user)


def shot(page, tmp_path, name):
    """A full-page screenshot into the test's folder (kept by pytest for a look after a failure)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0, path
    return path


def login(page, studio, user):
    browser_login(page, studio.url, user)
    page.wait_for_url(lambda url: "/hub/login" not in url)


def test_member_joins_the_queue_from_the_spawn_form_and_starts_when_reserved(studio, page, tmp_path):
    page.set_default_timeout(20_000)
    page.clock.install()  # real time flows; fast_forward fires the queue page's 15 s reload at once
    assert studio.spawn("alice", {"profile": "one-gpu"}).status_code in (201, 202)
    try:
        login(page, studio, "bob")
        page.goto(f"{studio.url}/hub/spawn")
        offer = page.get_by_test_id("queue-offer-one-gpu")
        offer.wait_for()
        assert page.get_by_test_id("queue-offer-two-gpu").count() == 0  # over bob's own limit
        assert page.get_by_test_id("cannot-start-two-gpu").is_visible()
        text = offer.inner_text()
        assert "you would be number 1" in text, text
        assert re.search(r"estimated wait (about \d|any moment)", text), text
        assert offer.get_by_test_id("queue-offer-place").inner_text() == "1"
        shot(page, tmp_path, "spawn-form-offer")

        page.get_by_test_id("queue-join-one-gpu").click()
        page.wait_for_url(re.compile(r"/hub/queue$"))
        entry = page.get_by_test_id("queue-entry")
        assert re.fullmatch(r"Number 1 in line", entry.get_by_test_id("queue-state").inner_text().strip())
        estimate = entry.get_by_test_id("queue-estimate").inner_text()
        assert re.fullmatch(r"about \d.*|any moment now", estimate), estimate
        notice = page.get_by_test_id("queue-waiting-notice")
        assert "You are number 1 in line for 1× A100 (one-gpu)" in notice.inner_text()
        assert page.get_by_test_id("queue-reserved-notice").count() == 0
        assert page.get_by_test_id("queue-admin-table").count() == 0  # members see no other line
        shot(page, tmp_path, "queue-waiting")
        [row] = queue(studio, "bob")
        assert (row["place"], row["state"], row["auto_start"]) == (1, "waiting", False)

        page.goto(f"{studio.url}/hub/home")
        assert "number 1 in line" in page.get_by_test_id("queue-waiting-notice").inner_text()
        shot(page, tmp_path, "home-waiting")

        page.goto(f"{studio.url}/hub/queue")
        page.get_by_test_id("queue-place").wait_for()
        studio.stop_server("alice")
        wait_for(lambda: [e for e in queue(studio, "bob") if e["state"] == "reserved"], what="bob's reservation")
        page.clock.fast_forward("00:16")  # the page reloads itself every 15 s to follow the line
        # the same time as the notice and the e-mail: "Reserved for you until 14:03:07 UTC"
        expect(page.get_by_test_id("queue-state")).to_have_text(
            re.compile(r"^\s*Reserved for you until \d{2}:\d{2}:\d{2} UTC\s*$"))
        assert page.get_by_test_id("queue-waiting-notice").count() == 0
        reserved = page.get_by_test_id("queue-reserved-notice")
        assert "1× A100 held for you" in reserved.inner_text()
        assert "alert-success" in reserved.get_attribute("class")
        start = page.get_by_test_id("queue-start")
        assert start.inner_text() == "Start now" and start.is_enabled()
        shot(page, tmp_path, "queue-reserved")

        start.click()
        page.wait_for_url(re.compile(r"/hub/spawn-pending/bob|/user/bob/"))
        studio.wait_ready("bob")
        assert studio.server_env("bob")["AISTUDIO_PROFILE"] == "one-gpu"
        assert queue(studio) == []
        page.goto(f"{studio.url}/hub/home")
        assert page.get_by_test_id("queue-waiting-notice").count() == 0
        assert page.get_by_test_id("queue-reserved-notice").count() == 0
    finally:
        clean_up(studio, "alice", "bob")


def test_admin_removes_a_member_from_every_line(studio, page, tmp_path):
    page.set_default_timeout(20_000)
    assert studio.spawn("alice", {"profile": "one-gpu"}).status_code in (201, 202)
    try:
        joined = studio.session("carol").post(f"{studio.url}/hub/api/queue", json={"user_options": {"profile": "one-gpu"}})
        assert joined.status_code == 201, joined.text
        login(page, studio, "admin")
        page.goto(f"{studio.url}/hub/queue")
        table = page.get_by_test_id("queue-admin-table")
        assert page.get_by_role("heading", name="Everyone waiting").is_visible()
        [row] = table.get_by_test_id("queue-admin-row").all()
        cells = row.locator("td").all_inner_texts()
        assert cells[:3] == ["1", "carol", "1× A100 · one-gpu"], cells
        assert cells[3] and cells[4] == "waiting", cells  # "waiting since", in the browser's clock
        shot(page, tmp_path, "queue-admin")

        page.once("dialog", lambda dialog: dialog.accept())  # "Remove this member from the queue?"
        row.get_by_test_id("queue-remove").click()
        page.get_by_test_id("queue-admin-empty").wait_for()  # the page reloads after the removal
        assert page.get_by_test_id("queue-admin-row").count() == 0
        assert page.get_by_test_id("queue-error").is_hidden()
        assert queue(studio) == []
        shot(page, tmp_path, "queue-admin-empty")
    finally:
        clean_up(studio, "alice")
