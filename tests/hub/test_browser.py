"""A member in Debian's Chromium: log in, see only their profiles, start a server, reach JupyterLab."""

import os
import re

import pytest

from harness import CHROMIUM, browser_login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (scripts/setup.sh --test installs it)"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="per-user system accounts need root"),
]


def test_member_logs_in_picks_profile_and_reaches_jupyterlab(studio, page):
    page.set_default_timeout(60_000)
    browser_login(page, studio.url, "bob")
    page.goto(f"{studio.url}/hub/spawn")
    form = page.get_by_test_id("profile-form")
    form.wait_for()
    offered = page.locator("input[name=profile]").evaluate_all("els => els.map(e => e.value)")
    assert sorted(offered) == ["cpu-small", "gpu-1"]
    assert form.get_by_text("Multi-GPU").count() == 0
    assert "1× A100" in page.get_by_test_id("resources-gpu-1").inner_text()
    page.check("#profile-item-cpu-small")
    page.select_option("#profile-option-cpu-small--memory", "4Gi")
    page.screenshot(path=str(studio.directory / "spawn-form.png"), full_page=True)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(re.compile(r"/user/bob/lab"), timeout=120_000)
    page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)
    assert "JupyterLab" in page.title()
    env = studio.server_env("bob")
    assert env["AISTUDIO_PROFILE"] == "cpu-small" and env["MEM_LIMIT"] == str(4 * 1024**3)
    studio.stop_server("bob")
