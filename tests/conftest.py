"""Fixtures: a running studio per test module, and removal of the test accounts."""

import os
import pwd
import subprocess

import pytest

from harness import ACCOUNT_PREFIX, CHROMIUM, Studio, copy_profiles, write_config


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A studio with the shipped profiles and the test users, shared by a module."""
    directory = tmp_path_factory.mktemp("studio")
    os.chmod(directory, 0o755)
    studio = Studio(directory, write_config(directory, copy_profiles(directory)))
    studio.start()
    yield studio
    studio.stop()


@pytest.fixture(scope="session", autouse=True)
def remove_test_accounts():
    """Delete the system accounts the tests' studios created."""
    yield
    if os.geteuid() != 0:
        return
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(ACCOUNT_PREFIX):
            subprocess.run(["userdel", "--remove", entry.pw_name], capture_output=True)


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API keeps an event loop running in
    the main thread afterwards, which async tests (pytest-asyncio) cannot share."""
    uses_browser = [item for item in items if "page" in getattr(item, "fixturenames", ())]
    items[:] = [item for item in items if item not in uses_browser] + uses_browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Playwright drives Debian's Chromium, with no sandbox (root) and no background networking."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"],
    }
