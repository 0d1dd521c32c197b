"""Residency applications on a real hub: the public form from a logged-out browser,
its abuse limits (size, honeypot, per-address rate), the reviewers' scope, mail caught
by a real SMTP server, and an acceptance that lets the applicant log in and start a
residents' server (Chromium for the form and the reviewer's queue)."""

from __future__ import annotations

import os
import re

import pytest
import requests
from harness import CHROMIUM, PASSWORD, Studio, browser_login, copy_profiles, free_ports, wait_for, write_config

SVC = "/services/announcements/"
USERS = {"admin": {"admin": True}, "olivia": {"groups": ["organisers"]}, "carol": {"groups": []}}
FORM = {"name": "Dr. Lin Wei", "organisation": "Heart Clinic Ltd", "email": "lin@clinic.example", "area": "healthcare",
        "reserves": "An ECG triage model", "team": "3 cardiologists", "wants": "GPU time and a partner clinic"}


@pytest.fixture(scope="module")
def studio(tmp_path_factory, inbox):
    directory = tmp_path_factory.mktemp("residency")
    os.chmod(directory, 0o755)
    studio = Studio(directory, write_config(
        directory, copy_profiles(directory),
        auth={"demo": {"password": PASSWORD, "users": USERS}},
        local={"user_accounts": "shared"},
        culler={"enabled": False},
        announcements={"service_port": free_ports(1)[0], "organiser_groups": ["organisers"],
                       "residency": {"reviewer_groups": ["organisers"], "per_address_per_hour": 3}},
        notifications={"smtp": {"host": "127.0.0.1", "port": inbox.port, "from": "studio@lab.example"}},
    ))
    studio.start(timeout=120)
    wait_for(lambda: _get(studio.url + SVC + "residency").status_code == 200, 60, "the residency form")
    yield studio
    studio.stop()


def _get(url, **kw):
    try:
        return requests.get(url, timeout=10, **kw)
    except requests.RequestException as e:
        return type("R", (), {"status_code": str(e)})()


def api(studio: Studio, method: str, path: str, user: str | None, **kw) -> requests.Response:
    headers = {"Authorization": f"token {studio.token(user)}"} if user else {}
    return requests.request(method, f"{studio.url}{SVC}{path}", headers=headers, timeout=30, allow_redirects=False, **kw)


def anonymous(base: str, forwarded_for: str | None = None) -> tuple[requests.Session, str]:
    """A logged-out browser-like session that opened the form: it holds the anonymous XSRF token."""
    s = requests.Session()
    if forwarded_for:
        s.headers["X-Forwarded-For"] = forwarded_for
    r = s.get(f"{base}{SVC}residency", timeout=10)
    assert r.status_code == 200 and 'data-testid="residency-form"' in r.text, r.text[:300]
    return s, re.search(r'name="_xsrf" value="([^"]+)"', r.text).group(1)


def test_public_form_limits_mail_and_private_link(studio, inbox):
    s, xsrf = anonymous(studio.url)
    url = f"{studio.url}{SVC}residency"
    assert s.post(url, data=FORM, timeout=10).status_code == 403  # no XSRF token
    for bad, said in [({"reserves": "x" * 5001}, "reserves: is 5001 characters long"),
                      ({"email": "nobody"}, "email: must be one e-mail address"),
                      ({"team": "<script>x</script>"}, "team: must be plain text, without HTML tags"),
                      ({"wants": "y" * 40_000}, "request: larger than")]:
        r = s.post(url, data={**FORM, **bad, "_xsrf": xsrf}, headers={"Accept": "application/json"}, timeout=10)
        assert r.status_code == 400 and said in r.json()["message"], (bad.keys(), r.text[:300])
    before = len(api(studio, "GET", "api/residency", "olivia").json()["applications"])
    r = s.post(url, data={**FORM, "website": "http://spam.example", "_xsrf": xsrf}, timeout=10)
    assert r.status_code == 200 and "your application was received" in r.text  # the bot is told nothing
    assert len(api(studio, "GET", "api/residency", "olivia").json()["applications"]) == before

    r = s.post(f"{studio.url}{SVC}api/residency", json=FORM, headers={"X-XSRFToken": xsrf}, timeout=10)
    assert r.status_code == 201, r.text
    status_url = r.json()["status_url"]
    mail = wait_for(lambda: [m for m in inbox.messages if m[0] == FORM["email"] and "received" in m[1]], 20,
                    "the confirmation mail")[0]
    link = re.search(r"https?://\S+/residency/status/\S+", mail[2]).group(0)
    assert link.endswith(status_url)
    r = requests.get(studio.url + status_url, timeout=10)
    assert r.status_code == 200 and "Submitted" in r.text and "Heart Clinic Ltd" in r.text
    assert requests.get(studio.url + status_url[:-3] + "xyz", timeout=10).status_code == 404

    # the rate limit holds per client address, the last hop of X-Forwarded-For (the proxy's, when
    # behind it); here straight to the service, as if behind the proxy, from two clients
    direct = f"http://127.0.0.1:{studio.config['announcements']['service_port']}"
    limited, token = anonymous(direct, "10.9.9.1")
    codes = []
    for spoof in ("1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"):  # what the client writes first is not its address
        r = limited.post(f"{direct}{SVC}api/residency", json=FORM, timeout=10,
                         headers={"X-XSRFToken": token, "X-Forwarded-For": f"{spoof}, 10.9.9.1"})
        codes.append(r.status_code)
    assert codes == [201, 201, 201, 429], codes
    assert int(r.headers["Retry-After"]) > 3000
    other, token = anonymous(direct, "10.9.9.2")
    assert other.post(f"{direct}{SVC}api/residency", json=FORM, headers={"X-XSRFToken": token}, timeout=10).status_code == 201


def test_reviewing_needs_the_reviewers_scope(studio):
    assert api(studio, "GET", "api/residency", None).status_code == 401
    r = api(studio, "GET", "api/residency", "carol")
    assert r.status_code == 403 and "custom:announcements:residency" in r.json()["message"]
    assert api(studio, "PATCH", "api/residency/1", "carol", json={"status": "accepted"}).status_code == 403
    assert studio.session("carol").get(f"{studio.url}{SVC}residency/review", timeout=10).status_code == 403
    direct = f"http://127.0.0.1:{studio.config['announcements']['service_port']}"
    s, token = anonymous(direct, "10.9.9.3")
    assert s.post(f"{direct}{SVC}api/residency", json=FORM, headers={"X-XSRFToken": token}, timeout=10).status_code == 201
    r = api(studio, "GET", "api/residency?status=submitted", "olivia")
    assert r.status_code == 200
    app_id = r.json()["applications"][-1]["id"]
    r = api(studio, "PATCH", f"api/residency/{app_id}", "olivia", json={"status": "maybe"})
    assert r.status_code == 400 and r.json()["message"].startswith("status:")
    r = api(studio, "PATCH", f"api/residency/{app_id}", "olivia", json={"status": "rejected", "if_status": "more_info"})
    assert r.status_code == 409  # the reviewer saw another state: nothing changes
    assert api(studio, "GET", f"api/residency/{app_id}", "olivia").json()["status"] == "submitted"


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (scripts/setup.sh --test)")
def test_browser_application_review_acceptance_and_first_server(studio, inbox, page):
    page.set_default_timeout(30_000)
    page.goto(f"{studio.url}{SVC}residency")  # logged out
    for field in ("name", "organisation", "email"):
        page.fill(f"#{field}", {"name": "Mei Chen", "organisation": "Insight Pharma", "email": "mei@pharma.example"}[field])
    page.select_option("#area", "drug_rnd")
    page.fill("#reserves", "A screening pipeline: > 1M compounds & more")
    page.fill("#team", "Two chemists")
    page.fill("#wants", "GPUs")
    page.get_by_test_id("residency-submit").click()
    page.get_by_text("Thank you: your application was received").wait_for()
    status_url = page.get_by_test_id("status-link").get_attribute("href")

    reviewer = page.context.browser.new_context()
    rpage = reviewer.new_page()
    rpage.set_default_timeout(30_000)
    browser_login(rpage, studio.url, "olivia")
    rpage.wait_for_url(re.compile(r"/hub/"))
    rpage.goto(f"{studio.url}{SVC}residency/review")
    rpage.get_by_test_id("residency-queue").get_by_role("link", name="Mei Chen").click()
    rpage.select_option("#status", "accepted")
    rpage.fill("#comment", "Welcome to the lab")
    rpage.get_by_test_id("residency-review-save").click()
    invitation = rpage.get_by_test_id("invitation").get_by_role("link").get_attribute("href")
    reviewer.close()
    mail = wait_for(lambda: [m for m in inbox.messages if m[0] == "mei@pharma.example" and "Accepted" in m[1]], 20,
                    "the acceptance mail")[0]
    assert invitation in mail[2] and "Welcome to the lab" in mail[2]

    page.goto(studio.url + status_url)
    assert page.get_by_test_id("status").inner_text() == "Accepted"
    page.goto(invitation)
    page.fill("#user", "meichen")
    page.fill("#password", PASSWORD)
    page.fill("#password2", PASSWORD)
    page.click("button[type=submit]")
    assert page.get_by_test_id("account-user").inner_text() == "meichen"
    page.goto(invitation)
    assert "unknown, used or expired" in page.content()  # single use

    groups = studio.api("GET", "/users/meichen", user="meichen").json()["groups"]
    assert groups == ["gpu-residents"]
    r = studio.spawn("meichen", {"profile": "gpu-multi"})  # a profile only residents may start
    assert r.status_code in (201, 202), r.text
    assert studio.server_env("meichen")["AISTUDIO_PROFILE"] == "gpu-multi"
    studio.stop_server("meichen")
