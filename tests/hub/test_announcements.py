"""Announcements on a real hub: the hub-managed service (hub_config/announcements), its
scopes, XSS-inert views, seminar registration under concurrency, a killed service, the
hub banner in Chromium, and 400s for bad input."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from harness import CHROMIUM, PASSWORD, Studio, browser_login, copy_profiles, free_ports, write_config
from icalendar import Calendar

CROWD = [f"m{i:02d}" for i in range(20)]
USERS = {
    "admin": {"admin": True},
    "olga": {"groups": ["organisers"]},
    "alice": {"groups": ["gpu-residents"]},
    "bob": {"groups": ["students"]},
    "carol": {"groups": []},
    **{u: {"groups": ["students"]} for u in CROWD},
}
SVC = "/services/announcements/"

# Markup that must stay text wherever an announcement is shown.
XSS = [
    "<script>alert('xss-1')</script>",
    "<img src=x onerror=alert('xss-2')>",
    "<svg/onload=alert('xss-3')>",
    "\"><script>alert('xss-4')</script>",
    "[click](javascript:alert('xss-5'))",
    "[click](JaVaScRiPt:alert('xss-6'))",
    "<a href=\"javascript:alert('xss-7')\">x</a>",
    "<iframe src=\"javascript:alert('xss-8')\"></iframe>",
    "![x](x\" onerror=\"alert('xss-9'))",
    "{{ 7*7 }}</textarea><script>alert('xss-10')</script>",
    "<style>body{display:none}</style><b onmouseover=alert('xss-11')>hover</b>",
    "]]></content><script>alert('xss-12')</script>",
]


def later(**kw) -> str:
    return (datetime.now(timezone.utc) + timedelta(**kw)).replace(microsecond=0).isoformat()


@pytest.fixture(scope="module")
def ann(tmp_path_factory):
    directory = tmp_path_factory.mktemp("announcements")
    os.chmod(directory, 0o755)
    studio = Studio(directory, write_config(
        directory, copy_profiles(directory),
        auth={"demo": {"password": PASSWORD, "users": USERS}},
        local={"user_accounts": "shared"},
        culler={"enabled": False},
        announcements={"service_port": free_ports(1)[0], "organiser_groups": ["organisers"], "timezone": "Europe/Paris"},
    ))
    studio.start(timeout=120)  # a busy machine slows the hub's start
    wait_service(studio)
    yield studio
    studio.stop()


def wait_service(studio: Studio, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = api(studio, "GET", "api/me", "carol")
            if r.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the announcements service did not answer:\n{studio.log()[-3000:]}")


def api(studio: Studio, method: str, path: str, user: str | None, headers=None, **kwargs) -> requests.Response:
    headers = {**({"Authorization": f"token {studio.token(user)}"} if user else {}), **(headers or {})}
    return requests.request(method, f"{studio.url}{SVC}{path}", headers=headers, timeout=30, allow_redirects=False, **kwargs)


def seminar(**over) -> dict:
    return {"kind": "seminar", "title": "Federated learning on EHRs", "body": "**Bring** questions.",
            "speaker": "Dr. Ada Lovelace", "start": later(days=3), "end": later(days=3, hours=1),
            "timezone": "Europe/Paris", "place": "Room 4.12", "capacity": 30, **over}


def page_session(studio: Studio, user: str) -> requests.Session:
    """The user's browser-like session, logged in to the service through the hub (OAuth)."""
    s = studio.session(user)
    r = s.get(f"{studio.url}{SVC}", timeout=30)
    assert r.status_code == 200 and "Announcements" in r.text, r.text[:500]
    return s


def xsrf_of(html: str) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', html).group(1)


class InertChecker(HTMLParser):
    """Collects every way markup could run script: script elements (other than the page's
    own, which name no payload), on* attributes, javascript: URLs, iframes, styles."""

    def __init__(self):
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.lower().startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name.lower() in ("href", "src", "action", "formaction", "xlink:href") and value:
                if re.sub(r"[\s\x00-\x1f]", "", value).lower().startswith(("javascript:", "data:text")):
                    self.problems.append(f"<{tag} {name}={value!r}>")
        if tag in ("iframe", "svg", "object", "embed", "style"):
            self.problems.append(f"<{tag}>")
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and "xss-" in data:
            self.problems.append(f"script with a payload: {data[:80]!r}")


def assert_inert(html: str, where: str):
    checker = InertChecker()
    checker.feed(html)
    assert not checker.problems, f"{where}: {checker.problems}"


# ------------------------------------------------------------------ the service


def test_service_runs_migrated_database(ann):
    services = ann.api("GET", "/services").json()
    assert services["announcements"]["command"][1:] == ["-m", "hub_config.announcements.service"]
    db = Path(ann.config["data_dir"]) / "announcements.sqlite"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0003",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_scopes_checked_on_every_request(ann):
    # organisers hold custom:announcements:write through their group's role; members do not
    assert api(ann, "GET", "api/me", "olga").json()["organiser"] is True
    assert api(ann, "GET", "api/me", "bob").json()["organiser"] is False
    r = api(ann, "POST", "api/items", "bob", json={"kind": "news", "title": "member news"})
    assert r.status_code == 403 and "custom:announcements:write" in r.json()["message"]
    r = api(ann, "POST", "api/items", "olga", json={"kind": "news", "title": "Draft plan", "draft": True})
    assert r.status_code == 201, r.text
    draft = r.json()["id"]
    r = api(ann, "POST", "api/items", "olga", json={"kind": "call", "title": "Spring incubation",
                                                     "deadline": later(days=20), "offer": "GPUs", "eligibility": "Members"})
    call = r.json()["id"]
    assert api(ann, "PATCH", f"api/items/{call}", "bob", json={"title": "hijacked"}).status_code == 403
    assert api(ann, "DELETE", f"api/items/{call}", "bob").status_code == 403
    # drafts are the organisers' only
    assert api(ann, "GET", f"api/items/{draft}", "bob").status_code == 404
    assert draft not in [i["id"] for i in api(ann, "GET", "api/items", "bob").json()["items"]]
    assert draft in [i["id"] for i in api(ann, "GET", "api/items?all=1", "olga").json()["items"]]
    # members apply; only organisers see the queue, review and export
    r = api(ann, "POST", f"api/items/{call}/applications", "bob",
            json={"project": "Sepsis early warning", "team": "bob, bea", "summary": "ICU vitals", "needs": "1 A100"})
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    assert api(ann, "GET", "api/applications", "bob").status_code == 403
    assert api(ann, "PATCH", f"api/applications/{app_id}", "bob", json={"status": "accepted"}).status_code == 403
    assert api(ann, "GET", "applications.csv", "bob").status_code == 403
    assert api(ann, "GET", f"api/applications/{app_id}", "carol").status_code == 404  # not hers
    assert api(ann, "GET", "api/applications", "olga").json()["applications"][0]["id"] == app_id
    # logged out: pages redirect to the hub's login, API calls get a 401; never content
    for path in ("api/items", f"api/items/{call}", "feed.atom", "calendar.ics", f"api/applications/{app_id}", ""):
        r = requests.get(f"{ann.url}{SVC}{path}", timeout=30, allow_redirects=False)
        if path.startswith("api/"):
            assert r.status_code == 401 and r.json()["status"] == 401, (path, r.status_code)
        else:
            assert r.status_code in (302, 403), (path, r.status_code)
        assert "Spring incubation" not in r.text and "Sepsis" not in r.text
        followed = requests.get(f"{ann.url}{SVC}{path}", timeout=30)
        assert "Spring incubation" not in followed.text and "Sepsis" not in followed.text
    assert requests.post(f"{ann.url}{SVC}api/items", json={"kind": "news", "title": "anon"}, timeout=30).status_code == 401
    api(ann, "DELETE", f"api/items/{draft}", "olga")
    api(ann, "DELETE", f"api/items/{call}", "olga")


def test_forms_need_xsrf_and_organiser_scope(ann):
    olga = page_session(ann, "olga")
    page = olga.get(f"{ann.url}{SVC}items/new?kind=news", timeout=30)
    assert page.status_code == 200 and 'data-testid="edit-form"' in page.text
    form = {"kind": "news", "title": "Form-made news", "body": "hello", "timezone": "Europe/Paris"}
    # without the XSRF token the cookie does not count: refused
    r = olga.post(f"{ann.url}{SVC}items/new", data=form, timeout=30, allow_redirects=False,
                  headers={"X-XSRFToken": ""})
    assert r.status_code == 403
    r = olga.post(f"{ann.url}{SVC}items/new", data={**form, "_xsrf": xsrf_of(page.text)}, timeout=30, allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    item_id = int(r.headers["Location"].rsplit("/", 1)[1])
    assert api(ann, "GET", f"api/items/{item_id}", "bob").json()["title"] == "Form-made news"
    # a member's page has no organiser tools, and the same form post is refused
    bob = page_session(ann, "bob")
    index = bob.get(f"{ann.url}{SVC}", timeout=30).text
    assert "organiser-tools" not in index and "Form-made news" in index
    assert bob.get(f"{ann.url}{SVC}items/new?kind=news", timeout=30).status_code == 403
    sem = api(ann, "POST", "api/items", "olga", json=seminar(title="Form seminar")).json()
    item_page = bob.get(f"{ann.url}{SVC}items/{sem['id']}", timeout=30).text
    r = bob.post(f"{ann.url}{SVC}items/new", data={**form, "_xsrf": xsrf_of(item_page)}, timeout=30, allow_redirects=False)
    assert r.status_code == 403
    r = bob.post(f"{ann.url}{SVC}items/{item_id}/delete", data={"_xsrf": xsrf_of(item_page)}, timeout=30,
                 allow_redirects=False)
    assert r.status_code == 403
    # a member's own form: registering works with the token, and not without it
    assert bob.post(f"{ann.url}{SVC}items/{sem['id']}/register", data={}, timeout=30, allow_redirects=False,
                    headers={"X-XSRFToken": ""}).status_code == 403
    r = bob.post(f"{ann.url}{SVC}items/{sem['id']}/register", data={"_xsrf": xsrf_of(item_page)}, timeout=30)
    assert r.status_code == 200 and "You are registered." in r.text
    assert api(ann, "DELETE", f"api/items/{item_id}", "olga").status_code == 204
    assert api(ann, "DELETE", f"api/items/{sem['id']}", "olga").status_code == 204


def test_bad_input_gets_400_and_writes_nothing(ann):
    before = api(ann, "GET", "api/items?all=1", "olga").json()["items"]
    past = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    cases = [
        ({"kind": "news", "title": "x", "colour": "red"}, "unknown field"),
        ({"kind": "news", "title": "x", "speaker": "someone"}, "unknown field"),
        ({"kind": "gossip", "title": "x"}, "kind"),
        ({"kind": "news"}, "title: is required"),
        ({"kind": "news", "title": "x" * 201}, "title"),
        ({"kind": "news", "title": "x", "body": "y" * 20_001}, "body: is 20001 characters long"),
        ({"kind": "news", "title": "x", "publish_at": "next tuesday"}, "publish_at"),
        ({"kind": "news", "title": "x", "publish_at": later(days=2), "expires_at": later(days=1)}, "expires_at"),
        ({"kind": "news", "title": "x", "timezone": "Mars/Olympus"}, "timezone"),
        ({"kind": "news", "title": "x", "pinned": "maybe"}, "pinned"),
        ({"kind": "call", "title": "x", "deadline": past}, "deadline: is in the past"),
        ({"kind": "call", "title": "x"}, "deadline: is required"),
        ({"kind": "call", "title": "x", "deadline": "2026-02-30T10:00"}, "deadline"),
        (seminar(start=later(days=2), end=later(days=1)), "end: must be after start"),
        (seminar(start=past), "start"),
        (seminar(capacity=0), "capacity"),
        (seminar(capacity="lots"), "capacity"),
        (seminar(link="javascript:alert(1)"), "link"),
        (seminar(place="", link=None), "place"),
        (seminar(speaker=None), "speaker"),
    ]
    for body, message in cases:
        r = api(ann, "POST", "api/items", "olga", json=body)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert message in r.json()["message"], (message, r.json())
    for raw in (b"{not json", b"[1, 2]", b'"text"'):
        r = api(ann, "POST", "api/items", "olga", data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
    # changes and applications are checked the same way
    item = api(ann, "POST", "api/items", "olga", json=seminar(title="Checked")).json()
    for patch, message in [({"kind": "news"}, "kind"), ({"end": later(days=1)}, "end"), ({"nope": 1}, "unknown")]:
        r = api(ann, "PATCH", f"api/items/{item['id']}", "olga", json=patch)
        assert r.status_code == 400 and message in r.json()["message"], r.text
    call = api(ann, "POST", "api/items", "olga", json={"kind": "call", "title": "C", "deadline": later(days=9)}).json()
    for body, message in [({"project": "p"}, "team"), ({"project": "p", "team": "t", "summary": "s", "needs": "n", "x": 1},
                                                         "unknown"), ({"project": "p", "team": "t", "summary": "s" * 20_001,
                                                                      "needs": "n"}, "summary")]:
        r = api(ann, "POST", f"api/items/{call['id']}/applications", "bob", json=body)
        assert r.status_code == 400 and message in r.json()["message"], r.text
    # a form post with a bad date gets the same 400, as a page
    olga = page_session(ann, "olga")
    page = olga.get(f"{ann.url}{SVC}items/new?kind=call", timeout=30).text
    r = olga.post(f"{ann.url}{SVC}items/new", data={"_xsrf": xsrf_of(page), "kind": "call", "title": "Late",
                                                    "deadline": "2001-01-01T10:00", "timezone": "Europe/Paris"}, timeout=30)
    assert r.status_code == 400 and "deadline: is in the past" in r.text and "Nothing was saved" in r.text
    api(ann, "DELETE", f"api/items/{item['id']}", "olga")
    api(ann, "DELETE", f"api/items/{call['id']}", "olga")
    assert api(ann, "GET", "api/items?all=1", "olga").json()["items"] == before
    assert api(ann, "GET", "api/applications", "olga").json()["applications"] == []


def test_concurrent_registration_capacity_and_waiting_list(ann):
    for user in CROWD:
        ann.token(user)
    item = api(ann, "POST", "api/items", "olga", json=seminar(title="Popular seminar", capacity=5)).json()
    path = f"api/items/{item['id']}/registration"
    with ThreadPoolExecutor(len(CROWD)) as pool:
        results = dict(zip(CROWD, pool.map(lambda u: api(ann, "POST", path, u), CROWD)))
    assert all(r.status_code == 201 for r in results.values()), {u: r.text for u, r in results.items()}
    registered = [u for u, r in results.items() if r.json()["status"] == "registered"]
    waiting = {u: r.json()["position"] for u, r in results.items() if r.json()["status"] == "waiting"}
    assert len(registered) == 5 and len(waiting) == 15
    assert sorted(waiting.values()) == list(range(1, 16))
    # registering twice changes nothing
    again = api(ann, "POST", path, registered[0])
    assert again.status_code == 200 and again.json()["status"] == "registered"
    listed = api(ann, "GET", f"api/items/{item['id']}", "bob").json()
    assert (listed["registered"], listed["waiting"], listed["seats_left"]) == (5, 15, 0)
    # two cancellations at once: the first two on the waiting list move up, in order
    first_two = sorted(waiting, key=waiting.get)[:2]
    with ThreadPoolExecutor(2) as pool:
        cancels = list(pool.map(lambda u: api(ann, "DELETE", path, u), registered[:2]))
    assert all(c.status_code == 200 for c in cancels)
    assert sorted(sum((c.json()["promoted"] for c in cancels), [])) == sorted(first_two)
    regs = api(ann, "GET", f"api/items/{item['id']}/registrations", "olga").json()["registrations"]
    seated = [r["user"] for r in regs if r["status"] == "registered"]
    assert len(seated) == 5 and set(first_two) <= set(seated) and not set(registered[:2]) & set(seated)
    assert api(ann, "GET", path, sorted(waiting, key=waiting.get)[2]).json() == {"status": "waiting", "position": 1}
    assert api(ann, "GET", f"api/items/{item['id']}/registrations", "bob").status_code == 403
    # the seminar's calendar file
    cal = Calendar.from_ical(api(ann, "GET", f"items/{item['id']}/event.ics", "bob").content)
    event = cal.walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == "Popular seminar (Dr. Ada Lovelace)"
    assert str(event["DTSTART"].dt.tzinfo) == "Europe/Paris" and cal.walk("VTIMEZONE")
    assert event["DTSTART"].dt == datetime.fromisoformat(item["start"])
    upcoming = Calendar.from_ical(api(ann, "GET", "calendar.ics", "bob").content)
    assert "Popular seminar (Dr. Ada Lovelace)" in [str(e["SUMMARY"]) for e in upcoming.walk("VEVENT")]
    api(ann, "DELETE", f"api/items/{item['id']}", "olga")


def test_application_review_flow_and_csv(ann):
    call = api(ann, "POST", "api/items", "olga", json={
        "kind": "call", "title": "Incubation: autumn", "deadline": later(days=30),
        "eligibility": "Teams of *members*", "offer": "4 A100 for 3 months"}).json()
    r = api(ann, "POST", f"api/items/{call['id']}/applications", "alice", json={
        "project": "=HYPERLINK(\"http://evil\")", "team": "alice", "summary": "Chest X-ray triage", "needs": "GPUs"})
    app_id = r.json()["id"]
    assert api(ann, "POST", f"api/items/{call['id']}/applications", "alice", json={
        "project": "again", "team": "a", "summary": "s", "needs": "n"}).status_code == 409

    def review(body, user="olga"):
        return api(ann, "PATCH", f"api/applications/{app_id}", user, json=body)

    assert review({"status": "accepted"}).status_code == 400  # submitted -> under review first
    assert review({"status": "under_review"}).json()["status"] == "under_review"
    assert review({"status": "needs_info", "comment": "Which hospital's data?"}).json()["status"] == "needs_info"
    mine = api(ann, "GET", "api/applications?mine=1", "alice").json()["applications"]
    assert mine[0]["status"] == "needs_info" and mine[0]["history"][-1]["comment"] == "Which hospital's data?"
    r = api(ann, "PATCH", f"api/applications/{app_id}", "alice", json={
        "project": "X-ray triage", "team": "alice", "summary": "St. Mary's PACS", "needs": "GPUs"})
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    assert review({"status": "under_review"}).status_code == 200
    assert review({"status": "accepted", "comment": "Welcome!"}).json()["status"] == "accepted"
    assert review({"status": "rejected"}).status_code == 400  # final
    page = page_session(ann, "alice").get(f"{ann.url}{SVC}applications/{app_id}", timeout=30).text
    assert "Accepted" in page and "Welcome!" in page
    csv_text = api(ann, "GET", f"applications.csv?call={call['id']}", "olga").text
    assert csv_text.splitlines()[0].startswith("id,call_id,call,user,project")
    assert "'=HYPERLINK" not in csv_text and "X-ray triage" in csv_text and "Welcome!" in csv_text
    queue = page_session(ann, "olga").get(f"{ann.url}{SVC}review", timeout=30).text
    assert "X-ray triage" in queue
    api(ann, "DELETE", f"api/items/{call['id']}", "olga")


def test_xss_payloads_stay_inert_everywhere(ann):
    ids = []
    for n, payload in enumerate(XSS):
        kind = ("news", "seminar", "call")[n % 3]
        body = {"kind": kind, "title": f"T{n} {payload}"[:200], "body": f"Body {payload}\n\n{payload}", "pinned": n == 0}
        if kind == "seminar":
            body = seminar(**body, speaker=payload[:200], place=payload[:200])
        if kind == "call":
            body.update(deadline=later(days=10), eligibility=payload, offer=payload)
        r = api(ann, "POST", "api/items", "olga", json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    time.sleep(6)  # the hub's banner keeps its list a few seconds
    bob = page_session(ann, "bob")
    home = bob.get(f"{ann.url}/hub/home", timeout=30)
    assert 'data-testid="announcements-banner"' in home.text
    assert_inert(home.text, "hub home")
    assert "T0 &lt;script&gt;" in home.text  # shown, as text
    for path in ["", "mine", *[f"items/{i}" for i in ids]]:
        r = bob.get(f"{ann.url}{SVC}{path}", timeout=30)
        assert r.status_code == 200, path
        assert_inert(r.text, path or "index")
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    olga = page_session(ann, "olga")
    for path in [f"items/{ids[1]}/edit", f"items/{ids[2]}/edit", "review"]:
        assert_inert(olga.get(f"{ann.url}{SVC}{path}", timeout=30).text, path)
    # JSON: served as JSON, never sniffed as HTML, and the rendered HTML is sanitised
    r = api(ann, "GET", "api/items", "bob")
    assert r.headers["Content-Type"].startswith("application/json") and r.headers["X-Content-Type-Options"] == "nosniff"
    for item in r.json()["items"]:
        for key in ("body_html", "eligibility_html", "offer_html"):
            if item.get(key):
                assert_inert(item[key], f"json {key}")
    # Atom: well-formed, and its HTML content is sanitised
    feed = api(ann, "GET", "feed.atom", "bob")
    root = ET.fromstring(feed.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    titles = [e.find("a:title", ns).text for e in entries]
    assert f"T0 {XSS[0]}" in titles  # the title is text, escaped by the XML writer
    for e in entries:
        content = e.find("a:content", ns)
        assert_inert(content.text or "", "atom content")
    # iCalendar parses, with the payload as text
    Calendar.from_ical(api(ann, "GET", "calendar.ics", "bob").content)
    for item_id in ids:
        api(ann, "DELETE", f"api/items/{item_id}", "olga")


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (scripts/setup.sh --test)")
def test_browser_banner_on_hub_home_and_registration(ann, page):
    # (conftest runs browser tests last, so this one sets up what it needs)
    item = api(ann, "POST", "api/items", "olga", json=seminar(
        title="Pinned: GPU cluster office hours", pinned=True, capacity=1)).json()
    ids = [api(ann, "POST", "api/items", "olga", json={
        "kind": "news", "title": f"T{n} {payload}", "body": payload, "pinned": n == 0}).json()["id"]
        for n, payload in enumerate(XSS[:4])]
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_default_timeout(30_000)
    browser_login(page, ann.url, "carol")
    page.wait_for_url(re.compile(r"/hub/"))
    deadline = time.monotonic() + 15
    while True:  # the hub keeps the banner's list a few seconds
        page.goto(f"{ann.url}/hub/home")
        if page.get_by_text("Pinned: GPU cluster office hours").count() or time.monotonic() > deadline:
            break
        time.sleep(1)
    banner = page.get_by_test_id("announcements-banner")
    banner.wait_for()
    pinned = page.get_by_test_id("announcement-pinned").filter(has_text="GPU cluster office hours")
    assert pinned.count() == 1
    assert page.get_by_text("T0 <script>alert('xss-1')</script>").count() >= 1  # a title shown as text
    page.screenshot(path=str(ann.directory / "hub-home-banner.png"), full_page=True)
    pinned.get_by_role("link").click()
    page.wait_for_url(re.compile(rf"{SVC}items/{item['id']}$"))
    page.get_by_role("button", name="Register").click()
    page.get_by_text("You are registered.").wait_for()
    for i in ids:
        page.goto(f"{ann.url}{SVC}items/{i}")
        page.get_by_test_id("item").wait_for()
    assert dialogs == [], dialogs
    assert api(ann, "GET", f"api/items/{item['id']}/registration", "carol").json()["status"] == "registered"
    for item_id in [item["id"], *ids]:
        api(ann, "DELETE", f"api/items/{item_id}", "olga")


def _service_pid(studio: Studio) -> int:
    port = str(studio.config["announcements"]["service_port"])
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            env = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if b"hub_config.announcements.service" in cmd and f"127.0.0.1:{port}" in env:
            return int(pid)
    raise AssertionError("no announcements service process")


def test_kill_9_during_writes_loses_no_acknowledged_write(ann):
    pid = _service_pid(ann)
    acknowledged, failed = [], []
    stop = threading.Event()
    lock = threading.Lock()
    token = ann.token("olga")

    def writer(n):
        i = 0
        while not stop.is_set():
            title = f"burst {n}-{i}"
            try:
                r = requests.post(f"{ann.url}{SVC}api/items", json={"kind": "news", "title": title},
                                  headers={"Authorization": f"token {token}"}, timeout=10)
                with lock:
                    (acknowledged if r.status_code == 201 else failed).append((title, r.status_code))
                    if r.status_code == 201:
                        assert r.json()["title"] == title
            except requests.RequestException as e:
                with lock:
                    failed.append((title, str(e)[:60]))
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    os.kill(pid, signal.SIGKILL)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) > 10 and failed, (len(acknowledged), failed[:3])
    # the hub notices the dead service at its next poll (up to 30 s) and starts it again
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if api(ann, "GET", "api/me", "olga").status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.5)
    else:
        raise AssertionError(f"the hub did not restart the service:\n{ann.log()[-2000:]}")
    assert _service_pid(ann) != pid
    stored = {i["title"]: i["id"] for i in api(ann, "GET", "api/items?all=1", "olga").json()["items"]}
    lost = [t for t, _ in acknowledged if t not in stored]
    assert not lost, f"{len(lost)} acknowledged writes lost: {lost[:5]}"
    with sqlite3.connect(Path(ann.config["data_dir"]) / "announcements.sqlite") as conn:
        titles = {row[0] for row in conn.execute("SELECT title FROM items")}
    assert {t for t, _ in acknowledged} <= titles
    for title, item_id in stored.items():
        if title.startswith("burst "):
            api(ann, "DELETE", f"api/items/{item_id}", "olga")

