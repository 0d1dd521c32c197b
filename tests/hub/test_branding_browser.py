"""The studio's look and first page in Debian's Chromium, with the demo content on: the login
page (name, logo, what the lab offers, the demo users and their roles), members landing on
the hub's home page (servers, the demo announcements, Start), one navigation bar across hub
pages and services, an organiser who may publish, and JupyterLab without Jupyter's news
prompt but with the studio's announcements."""

from __future__ import annotations

import os
import re
import time

import pytest
import requests
from harness import CHROMIUM, PASSWORD, Studio, browser_login, copy_profiles, free_ports, write_config

SVC = "/services/announcements/"
USERS = {
    "admin": {"admin": True, "description": "Hub admin: users, servers, everyone's usage"},
    "olivia": {"groups": ["organisers"], "description": "Organiser: publishes seminars, calls and news"},
    "bob": {"groups": ["students"], "description": "Student: CPU and 1× A100 servers"},
}
DEMO_TITLES = ("Learning from de-identified hospital records", "AI for chronic disease management", "Welcome to AI Studio")
NEWS_PROMPT = "Would you like to get notified about official Jupyter news?"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (scripts/setup.sh --test)"),
]


@pytest.fixture(scope="module")
def branded(tmp_path_factory):
    directory = tmp_path_factory.mktemp("branding")
    os.chmod(directory, 0o755)
    studio = Studio(directory, write_config(
        directory, copy_profiles(directory),
        auth={"demo": {"password": PASSWORD, "users": USERS}},
        culler={"enabled": False},
        announcements={"service_port": free_ports(1)[0], "demo": True},
    ))
    studio.start(timeout=120)
    yield studio
    studio.stop()


def nav_links(page) -> list[str]:
    """The link texts of the page's top navigation bar (left side)."""
    return [t.strip() for t in page.locator("nav .navbar-nav.me-auto > li > a").all_inner_texts()]


def open_home_with_banner(studio: Studio, page, timeout=30):
    """The hub's home page once its banner lists the demo announcements (the hub keeps the
    banner's list a few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        banner = page.get_by_test_id("announcements-banner")
        if banner.count() and all(banner.get_by_text(t).count() for t in DEMO_TITLES):
            return banner
        assert time.monotonic() < deadline, page.content()[:2000]
        time.sleep(1)
        page.goto(f"{studio.url}/hub/home")


def test_login_page_shows_the_brand_the_lab_and_the_demo_users(branded, page):
    page.set_default_timeout(30_000)
    page.goto(f"{branded.url}/hub/login")
    assert page.title() == "Sign in · AI Studio"
    assert page.get_by_test_id("studio-brand").locator("img").get_attribute("alt") == "AI Studio"
    logo = requests.get(f"{branded.url}/hub/logo", timeout=10)
    assert logo.status_code == 200 and logo.headers["Content-Type"].startswith("image/svg+xml")
    assert page.get_by_test_id("studio-name").inner_text() == "Welcome to AI Studio"
    description = page.get_by_test_id("studio-description").inner_text()
    for words in ("GPU", "de-identified health data", "test scenarios", "incubation", "seminars"):
        assert words in description, words
    users = page.get_by_test_id("demo-users")
    assert users.locator("tbody tr").count() == len(USERS)
    admin = users.get_by_test_id("demo-user-admin").inner_text()
    olivia = users.get_by_test_id("demo-user-olivia").inner_text()
    bob = users.get_by_test_id("demo-user-bob").inner_text()
    assert "hub admin" in admin and "organiser" not in admin
    assert "organiser" in olivia and "organisers" in olivia and "publishes seminars" in olivia
    assert "students" in bob and "hub admin" not in bob and "organiser" not in bob
    assert "never for real data" in page.get_by_test_id("demo-password-note").inner_text()
    assert PASSWORD not in page.content()
    page.locator("#login_submit").wait_for()  # JupyterHub's form is still there
    page.screenshot(path=str(branded.directory / "login.png"), full_page=True)


def test_member_lands_on_home_and_finds_one_navigation_everywhere(branded, page):
    page.set_default_timeout(30_000)
    browser_login(page, branded.url, "bob")
    page.wait_for_url(re.compile(r"/hub/home$"))  # not the spawn form, not a server
    banner = open_home_with_banner(branded, page)
    assert banner.get_by_test_id("announcement-pinned").filter(has_text=DEMO_TITLES[0]).count() == 1
    start = page.locator("#start")
    assert start.is_visible() and "Start My Server" in start.inner_text()
    assert page.title() == "AI Studio"
    hub_nav = nav_links(page)
    assert hub_nav == ["Home", "Programme", "Usage", "GPU queue", "Token"], hub_nav
    page.screenshot(path=str(branded.directory / "home.png"), full_page=True)

    # the announcements service: the same bar, the seminar's seats taken from the banner
    page.get_by_test_id("nav-announcements").first.click()
    page.wait_for_url(re.compile(rf"{SVC}$"))
    assert page.get_by_test_id("hub-nav").locator("img").get_attribute("alt") == "AI Studio"
    assert nav_links(page) == hub_nav
    page.screenshot(path=str(branded.directory / "announcements.png"), full_page=True)
    page.get_by_role("link", name=DEMO_TITLES[0]).first.click()
    page.get_by_role("button", name="Register").click()
    page.get_by_text("You are registered.").wait_for()

    # the usage service: the same bar, with its own pages in place of "Usage"
    page.get_by_test_id("nav-usage").click()
    page.wait_for_url(re.compile(r"/services/usage/$"))
    assert page.get_by_test_id("hub-nav").locator("img").get_attribute("alt") == "AI Studio"
    assert nav_links(page) == ["Home", "Programme", "My usage", "GPU queue", "Token"]
    page.get_by_role("link", name="Home").first.click()
    page.wait_for_url(re.compile(r"/hub/home$"))

    # an admin's bar adds Admin, on hub pages as on the usage pages
    html = branded.session("admin").get(f"{branded.url}/hub/home", timeout=30).text
    assert 'href="/hub/admin"' in html and 'data-testid="nav-announcements"' in html


def test_the_organiser_may_publish_and_review(branded, page):
    page.set_default_timeout(30_000)
    browser_login(page, branded.url, "olivia")
    page.wait_for_url(re.compile(r"/hub/home$"))
    page.goto(f"{branded.url}{SVC}")
    page.get_by_test_id("organiser-tools").wait_for()
    assert page.get_by_test_id("review-link").is_visible()
    assert "organiser" in page.get_by_test_id("hub-nav").inner_text()
    # the demo call takes applications: olivia finds it among the items
    assert page.get_by_role("link", name=DEMO_TITLES[1]).count() == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="per-user system accounts need root")
def test_jupyterlab_has_no_news_prompt_and_shows_the_studios_announcements(branded, page):
    page.set_default_timeout(60_000)
    r = branded.spawn("bob", {"profile": "cpu-small"})
    assert r.status_code in (201, 202), r.text
    try:
        browser_login(page, branded.url, "bob")
        page.wait_for_url(re.compile(r"/hub/home$"))
        page.goto(f"{branded.url}/user/bob/lab")
        page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)
        # the studio's announcements come as JupyterLab notifications (the extension's notices)
        page.get_by_text(f"Seminar: {DEMO_TITLES[0]}").first.wait_for(timeout=60_000)
        # JupyterLab asks about Jupyter's news, when it does, right after the same start: give it time
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert page.get_by_text(NEWS_PROMPT).count() == 0
            time.sleep(0.5)
        # because the extension's default says never (news and update checks), not by chance
        settings = page.request.get(
            f"{branded.url}/user/bob/lab/api/settings/@jupyterlab/apputils-extension:notification").json()
        defaults = {k: v.get("default") for k, v in settings["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, defaults
        page.screenshot(path=str(branded.directory / "jupyterlab.png"))
    finally:
        branded.stop_server("bob")
