"""Support requests and field-test scenarios on a real hub: the support staff's scope
given by a role to their group (and refused to everyone else), a member limited to their
own requests, assignment to members of the staff group as the hub lists them, an e-mail
per state change caught by a real SMTP server on loopback, and a scenario application
reviewed by an organiser and shown to the partner through the private link."""

from __future__ import annotations

import os
import re

import pytest
import requests
from harness import PASSWORD, Studio, browser_login, copy_profiles, free_ports, wait_for, write_config

SVC = "/services/announcements/"
USERS = {
    "olga": {"groups": ["organisers"]},
    "sam": {"groups": ["support"], "email": "sam@lab.example"},
    "alice": {"groups": ["gpu-residents"], "email": "alice@lab.example"},
    "bob": {"groups": ["students"], "email": "bob@lab.example"},
}
REQUEST = {"kind": "knowledge_base", "subject": "oncology-guidelines", "description": "Build a *knowledge base* from 40 PDFs."}


@pytest.fixture(scope="module")
def studio(tmp_path_factory, inbox):
    directory = tmp_path_factory.mktemp("support")
    os.chmod(directory, 0o755)
    studio = Studio(directory, write_config(
        directory, copy_profiles(directory),
        auth={"demo": {"password": PASSWORD, "users": USERS}},
        local={"user_accounts": "shared"},
        culler={"enabled": False},
        announcements={"service_port": free_ports(1)[0], "organiser_groups": ["organisers"],
                       "support": {"staff_groups": ["support"]}},
        notifications={"smtp": {"host": "127.0.0.1", "port": inbox.port, "from": "studio@lab.example"}},
    ))
    studio.start(timeout=120)
    wait_for(lambda: _status(studio, "api/support", "alice") == 200, 60, "the support API")
    yield studio
    studio.stop()


def api(studio: Studio, method: str, path: str, user: str | None, **kw) -> requests.Response:
    headers = {"Authorization": f"token {studio.token(user)}"} if user else {}
    return requests.request(method, f"{studio.url}{SVC}{path}", headers=headers, timeout=30, allow_redirects=False, **kw)


def _status(studio, path, user):
    try:
        return api(studio, "GET", path, user).status_code
    except requests.RequestException:
        return None


def test_support_request_life_cycle_scopes_and_mail(studio, inbox):
    mine = api(studio, "POST", "api/support", "alice", json=REQUEST)
    assert mine.status_code == 201, mine.text
    mine = mine.json()
    theirs = api(studio, "POST", "api/support", "bob", json={**REQUEST, "kind": "alignment"}).json()
    bad = api(studio, "POST", "api/support", "alice", json={**REQUEST, "kind": "astrology"})
    assert bad.status_code == 400 and bad.json()["message"].startswith("kind: must be one of")

    # a member sees only their own requests, and not another member's by id
    assert [r["id"] for r in api(studio, "GET", "api/support", "alice").json()["requests"]] == [mine["id"]]
    assert api(studio, "GET", f"api/support/{theirs['id']}", "alice").status_code == 404
    assert api(studio, "PATCH", f"api/support/{theirs['id']}", "alice", json={"comment": "hi"}).status_code == 404
    # staff rights are refused without the role, on every route
    for method, path, body in [("GET", "support/queue", None), ("GET", "support.csv", None),
                               ("PATCH", f"api/support/{mine['id']}", {"status": "accepted"})]:
        for user in ("alice", "olga"):
            r = api(studio, method, path, user, json=body)
            assert r.status_code == 403, (method, path, user, r.status_code)

    queue = api(studio, "GET", "api/support", "sam").json()["requests"]
    assert {r["id"] for r in queue} == {mine["id"], theirs["id"]}

    def staff(body, request_id=mine["id"]):
        return api(studio, "PATCH", f"api/support/{request_id}", "sam", json=body)

    r = staff({"assignee": "alice"})  # the hub lists the staff group's members: alice is not one
    assert r.status_code == 400 and r.json()["message"].startswith("assignee: alice is not")
    assert staff({"status": "delivered"}).json()["message"].startswith("status: a request that is new cannot")
    r = staff({"status": "accepted", "if_status": "new", "assignee": "sam", "comment": "On it"})
    assert r.status_code == 200 and r.json()["status"] == "accepted" and r.json()["assignee"] == "sam"
    stale = staff({"status": "declined", "if_status": "new", "reason": "late click"})
    assert stale.status_code == 409 and stale.json()["message"].startswith("status: the request is no longer new")
    declined = staff({"status": "declined"}, theirs["id"])
    assert declined.status_code == 400 and declined.json()["message"].startswith("reason:")
    assert staff({"status": "declined", "reason": "The PDFs are not licensed for this"}, theirs["id"]).status_code == 200

    mail = wait_for(lambda: [m for m in inbox.messages if m[0] == "alice@lab.example"], 20, "alice's notice")
    to, subject, body = mail[0]
    assert subject == f"Your support request #{mine['id']} is now: Accepted"
    assert f"{SVC}support/{mine['id']}" in body
    wait_for(lambda: any(m[0] == "bob@lab.example" and "not licensed" in m[2] for m in inbox.messages), 20,
             "bob's notice with the reason")
    # a comment alone is no state change: no mail
    count = len(inbox.messages)
    assert api(studio, "PATCH", f"api/support/{mine['id']}", "alice", json={"comment": "Thanks!"}).status_code == 200
    for state in ("in_progress", "delivered"):
        assert staff({"status": state}).json()["status"] == state
    wait_for(lambda: len(inbox.messages) == count + 2, 20, "two more notices")

    # the member's page shows the thread; the XSRF token guards its form
    s = studio.session("alice")
    page = s.get(f"{studio.url}{SVC}support/{mine['id']}", timeout=30)
    assert page.status_code == 200 and "Thanks!" in page.text and "On it" in page.text and "Delivered" in page.text
    bare = requests.Session()
    bare.cookies.update(s.cookies)
    assert bare.post(f"{studio.url}{SVC}support/{mine['id']}", data={"comment": "no token"},
                     allow_redirects=False, timeout=30).status_code == 403
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    r = s.post(f"{studio.url}{SVC}support/{mine['id']}", data={"comment": "From the form", "_xsrf": xsrf},
               allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:300]
    assert api(studio, "GET", f"api/support/{mine['id']}", "alice").json()["thread"][-1]["comment"] == "From the form"

    rows = api(studio, "GET", "support.csv", "sam").text.splitlines()
    assert rows[0].startswith("id,user,kind,subject,status,assignee,reason") and len(rows) == 3
    updates = api(studio, "GET", "api/updates", "alice").json()["updates"]
    assert [(u["kind"], u["id"], u["status"]) for u in updates] == [("support", mine["id"], "delivered")]


def test_scenario_application_review_and_partner_link(studio):
    scenario = {"title": "Remote monitoring at a check-up centre", "partner_kind": "checkup_centre",
                "partner": "Harbour Health Checks", "setting": "2 000 check-ups a month",
                "trial": "Wearable-based arrhythmia screening", "data_available": "De-identified ECGs",
                "contact": "Ms Chen <chen@harbour.example>", "window_from": "2030-01-10T09:00",
                "window_to": "2030-06-30T18:00"}
    assert api(studio, "POST", "api/scenarios", "alice", json=scenario).status_code == 403
    bad = api(studio, "POST", "api/scenarios", "olga", json={**scenario, "window_to": "2029-01-01T00:00"})
    assert bad.status_code == 400 and bad.json()["message"].startswith("window_to:")
    created = api(studio, "POST", "api/scenarios", "olga", json=scenario)
    assert created.status_code == 201, created.text
    s = created.json()
    assert s["partner_url"].startswith(f"{SVC}scenarios/partner/")
    listed = api(studio, "GET", "api/scenarios", "alice").json()["scenarios"]
    assert [x["id"] for x in listed] == [s["id"]] and "partner_url" not in listed[0]  # the link is the organisers'

    a = api(studio, "POST", f"api/scenarios/{s['id']}/applications", "alice",
            json={"project": "AF screening", "proposal": "Shadow mode, then a 3-month pilot"})
    assert a.status_code == 201, a.text
    a = a.json()
    b = api(studio, "POST", f"api/scenarios/{s['id']}/applications", "bob",
            json={"project": "Sleep apnoea", "proposal": "Retrospective study"}).json()
    assert api(studio, "GET", f"api/scenario-applications/{a['id']}", "bob").status_code == 404
    assert api(studio, "PATCH", f"api/scenario-applications/{a['id']}", "bob",
               json={"status": "accepted"}).status_code == 403

    def review(app, body):
        return api(studio, "PATCH", f"api/scenario-applications/{app['id']}", "olga", json=body)

    assert review(a, {"status": "accepted"}).status_code == 400  # under review first, as for incubation calls
    assert review(a, {"status": "under_review", "if_status": "submitted"}).status_code == 200
    assert review(a, {"status": "rejected", "if_status": "submitted"}).status_code == 409
    assert review(a, {"status": "accepted", "comment": "Ms Chen will contact you"}).json()["status"] == "accepted"
    assert review(b, {"status": "rejected", "comment": "Out of scope"}).status_code == 200

    partner = requests.get(f"{studio.url}{s['partner_url']}", timeout=30, allow_redirects=False)  # no login
    assert partner.status_code == 200 and "AF screening" in partner.text and "Sleep apnoea" not in partner.text
    wrong = requests.get(f"{studio.url}{SVC}scenarios/partner/{'A' * 32}", timeout=30, allow_redirects=False)
    assert wrong.status_code == 404
    updates = api(studio, "GET", "api/updates", "bob").json()["updates"]
    assert [(u["kind"], u["status"]) for u in updates] == [("support", "declined"), ("scenario", "rejected")]
    queue = studio.session("olga").get(f"{studio.url}{SVC}scenarios/review", timeout=30)
    assert queue.status_code == 200 and "AF screening" in queue.text


@pytest.mark.browser
def test_a_decision_on_my_request_shows_as_a_jupyterlab_notice_once(studio, page):
    """Staff decline bob's request: his JupyterLab tells him, once. (Browser tests may run
    after the module's others, on a studio of their own: the test makes its own request.)"""
    mine = api(studio, "POST", "api/support", "bob", json={**REQUEST, "kind": "labelling", "subject": "ward-notes"})
    assert mine.status_code == 201, mine.text
    r = api(studio, "PATCH", f"api/support/{mine.json()['id']}", "sam",
            json={"status": "declined", "reason": "Outside what the team labels"})
    assert r.status_code == 200 and r.json()["status"] == "declined", r.text
    page.set_default_timeout(60_000)
    r = studio.spawn("bob", {"profile": "cpu-small"}, wait=False)  # this studio has no admin: bob waits
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: (studio.api("GET", "/users/bob", user="bob").json()["servers"].get("") or {}).get("ready"),
             120, "bob's server")
    try:
        browser_login(page, studio.url, "bob", PASSWORD)
        page.goto(f"{studio.url}/user/bob/lab")
        page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)
        notice = page.get_by_text("Support request: Data labelling: ward-notes is now Declined", exact=True)
        notice.first.wait_for(timeout=60_000)
        assert notice.count() == 1
        # shown once: a reload brings no second notice of the same decision
        page.reload()
        page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)
        page.wait_for_timeout(4000)
        assert notice.count() == 0
    finally:
        studio.api("DELETE", "/users/bob/server", user="bob")
        wait_for(lambda: not studio.api("GET", "/users/bob", user="bob").json()["servers"], 60, "bob's server to stop")
