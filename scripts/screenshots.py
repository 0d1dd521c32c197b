#!/usr/bin/env python3
"""Screenshots of AI Studio's main screens, for review by eye (nothing is compared).

    scripts/setup.sh --test                     # Playwright and Debian's Chromium
    .venv/bin/python scripts/screenshots.py     # -> screenshots/*.png

It starts the demo studio of ``aistudio.yaml`` on free ports with a throwaway data
folder, walks through the screens as the demo users would (logged out, a resident,
an organiser, the admin) in Chromium, saves one PNG per screen and stops the studio.
A screen that cannot be reached is reported and the others are still taken; the exit
status is 1 when any failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from harness import CHROMIUM, Studio, free_ports  # noqa: E402  the tests' way to run a studio: ports, start, Ctrl-C
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 900}


def demo_config(folder: Path) -> Path:
    """The repository's demo config on free ports, with its state in ``folder``."""
    config = yaml.safe_load((REPO / "aistudio.yaml").read_text())
    port, hub_port, proxy_api, usage, datasets, announcements = free_ports(6)
    config["data_dir"] = str(folder / "data")
    config["profiles_dir"] = str(REPO / "spawner_profiles")
    config.setdefault("hub", {}).update(port=port, hub_port=hub_port, proxy_api_port=proxy_api)
    config.setdefault("usage", {})["service_port"] = usage
    config.setdefault("datasets", {})["service_port"] = datasets
    config.setdefault("announcements", {})["service_port"] = announcements
    path = folder / "aistudio.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Camera:
    """Takes the screenshots; remembers which screens failed and why."""

    def __init__(self, out: Path):
        self.out = out
        self.taken: list[str] = []
        self.failed: list[str] = []

    def shot(self, page, name: str, take) -> None:
        try:
            take()
            page.wait_for_load_state("networkidle", timeout=15_000)
            path = self.out / f"{len(self.taken) + len(self.failed) + 1:02d}-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            self.taken.append(path.name)
            print(f"  {path.name}")
        except Exception as e:  # one screen that fails must not hide the others
            self.failed.append(f"{name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            print(f"  {name}: FAILED ({self.failed[-1]})", file=sys.stderr)


def login(page, studio: Studio, user: str) -> None:
    page.goto(f"{studio.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", studio.config["auth"]["demo"]["password"])
    page.click("#login_submit")
    page.wait_for_url("**/hub/home", timeout=30_000)


def take_all(browser, studio: Studio, camera: Camera) -> None:
    def visit(page, path: str, wait_for: str | None = None):
        def go():
            response = page.goto(f"{studio.url}{path}")
            if response is not None and response.status >= 400:
                raise RuntimeError(f"{path} answered HTTP {response.status}")
            if wait_for:
                page.wait_for_selector(wait_for, timeout=30_000)
        return go

    # logged out: the login page and the public residency form
    page = browser.new_page(viewport=VIEWPORT)
    camera.shot(page, "login", visit(page, "/hub/login", "#login_submit"))
    camera.shot(page, "residency-form", visit(page, "/services/announcements/residency", "form"))
    page.close()

    # a GPU resident: home, the spawn form, programme, usage, queue, then JupyterLab
    page = browser.new_page(viewport=VIEWPORT)
    login(page, studio, "alice")
    camera.shot(page, "home", lambda: None)
    camera.shot(page, "spawn-form", visit(page, "/hub/spawn", "form"))
    camera.shot(page, "announcements", visit(page, "/services/announcements/"))
    camera.shot(page, "support-requests", visit(page, "/services/announcements/support"))
    camera.shot(page, "scenarios", visit(page, "/services/announcements/scenarios"))
    camera.shot(page, "usage", visit(page, "/services/usage/"))
    camera.shot(page, "queue", visit(page, "/hub/queue"))

    def start_lab():
        page.goto(f"{studio.url}/hub/spawn")
        page.locator("form input[type=submit], form button[type=submit]").first.click()
        page.wait_for_selector(".jp-LabShell", timeout=180_000)
        page.wait_for_timeout(2000)  # the panels settle

    camera.shot(page, "jupyterlab", start_lab)

    def datasets_panel():
        if not page.locator(".aistudio-Datasets-list").first.is_visible():  # JupyterLab may restore it open
            page.locator('[data-id="aistudio-datasets"]').click()
        page.wait_for_timeout(1500)

    camera.shot(page, "lab-datasets-panel", datasets_panel)

    def dataset_view():
        page.locator(".aistudio-Datasets-item[data-dataset] a").first.click()
        page.wait_for_timeout(2500)  # the preview loads

    camera.shot(page, "lab-dataset-view", dataset_view)
    page.close()

    # the organiser and the admin
    for user, screens in (("olivia", [("organiser-review", "/services/announcements/review"),
                                      ("residency-queue", "/services/announcements/residency/review")]),
                          ("admin", [("admin", "/hub/admin"), ("admin-usage", "/services/usage/")])):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        login(page, studio, user)
        for name, path in screens:
            camera.shot(page, name, visit(page, path))
        context.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "screenshots", help="folder for the PNGs (default: screenshots/)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright  # installed by scripts/setup.sh --test

    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    folder = Path(tempfile.mkdtemp(prefix="aistudio-screens-"))
    os.chmod(folder, 0o755)  # the servers' system accounts enter it
    studio = Studio(folder, demo_config(folder))
    camera = Camera(args.out)
    print(f"screenshots: starting the demo studio ({folder})")
    try:
        studio.start(timeout=120)
        print(f"screenshots: {studio.url}, taking them into {args.out}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                take_all(browser, studio, camera)
            finally:
                browser.close()
    finally:
        studio.stop()
    print(f"screenshots: {len(camera.taken)} taken in {args.out}" +
          (f"; {len(camera.failed)} failed: " + "; ".join(camera.failed) if camera.failed else ""))
    if not camera.failed:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if camera.failed else 0


if __name__ == "__main__":
    sys.exit(main())
