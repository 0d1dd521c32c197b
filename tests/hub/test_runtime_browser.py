"""A server's run time inside JupyterLab, in Debian's Chromium, on a real hub: a member
starts a profile with a short run-time limit (25 s, warned 20 s before), opens JupyterLab,
sees the time left in the status bar, gets the warning notification and extends the
server by 1m from it (the quota allows one extension); the status bar then shows the new
time and the hub's API the new limit. A screenshot goes to the test's tmp_path."""

import os
import re

import pytest
from playwright.sync_api import expect
from harness import CHROMIUM, PASSWORD, Studio, browser_login, write_config, write_profiles

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (scripts/setup.sh --test installs it)"
    ),
]

PROFILES = """\
profiles:
  - slug: short
    display_name: Short CPU
    resources: {cpu: 1, memory: 1Gi}
    access: {everyone: true}
    max_runtime: 25s
quotas:
  members: {max_servers: 1, extend_by: 1m, max_extensions: 1}
"""


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    directory = tmp_path_factory.mktemp("runtime-browser")
    studio = Studio(directory, write_config(
        directory, write_profiles(directory, PROFILES),
        auth={"demo": {"password": PASSWORD, "users": {"alice": {}, "admin": {"admin": True}}}},
        local={"user_accounts": "shared"},
        spawn={"start_timeout": 60, "http_timeout": 60, "poll_interval": 1},
        lifecycle={"warn_before": [20], "every": 1},
    ))
    studio.start()
    yield studio
    studio.stop()


def shot(page, tmp_path, name):
    """A screenshot into the test's folder (kept by pytest for a look after a failure)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled")  # the toasts shown where they come to rest
    assert path.stat().st_size > 0, path
    return path


def test_member_sees_the_time_left_gets_the_warning_and_extends_from_jupyterlab(studio, page, tmp_path):
    page.set_default_timeout(20_000)
    browser_login(page, studio.url, "alice")  # before the start: the server's 25 s are for JupyterLab
    page.wait_for_url(lambda url: "/hub/login" not in url)
    started = studio.api("POST", "/users/alice/server", user="alice", json={"user_options": {"profile": "short"}})
    assert started.status_code in (201, 202), started.text
    try:
        studio.wait_ready("alice", timeout=30)
        page.goto(f"{studio.url}/user/alice/lab")

        # the status bar: the time left, counting down, under a minute ("18 s left")
        status = page.get_by_test_id("aistudio-runtime")
        expect(status).to_have_text(re.compile(r"^\d{1,2} s left$"))
        assert 0 < int(status.get_attribute("data-left")) <= 25
        assert "Short CPU" in status.get_attribute("title") and "may be extended by 1m" in status.get_attribute("title")

        # the warning at the 20 s point, with the extension the quota allows
        notice = page.get_by_text(re.compile(r"^Your server stops at \d{2}:\d{2}, in \d{1,2} s: save your work$"))
        expect(notice).to_be_visible(timeout=15_000)
        expect(status).to_have_class(re.compile(r"\baistudio-Runtime-warning\b"))  # below the largest point
        extend = page.get_by_role("button", name="Extend by 1m")
        expect(extend).to_be_visible()
        warned = shot(page, tmp_path, "runtime-warning")
        extend.click()

        expect(page.get_by_text(re.compile(r"^Extended by 1m: your server now stops at \d{2}:\d{2}, in 1 min"))).to_be_visible()
        expect(status).to_have_text(re.compile(r"^1 min( \d{1,2} s)? left$"))
        assert int(status.get_attribute("data-left")) > 25
        expect(status).not_to_have_class(re.compile(r"\baistudio-Runtime-warning\b"))
        shot(page, tmp_path, "runtime-extended")

        runtime = studio.api("GET", "/users/alice/server/runtime", user="alice").json()
        assert runtime["max_runtime"] == 85 and runtime["left"] > 25, runtime
        assert runtime["extend"]["done"] == 1 and runtime["extend"]["by"] is None, runtime
        assert warned.exists()
    finally:
        if studio.api("GET", "/users/alice").json()["servers"]:
            studio.stop_server("alice")
