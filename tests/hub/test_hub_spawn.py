"""Logging in and launching through a real hub, proxy and JupyterLab processes."""

import os
import pwd
import re
import stat

import pytest
import requests

from harness import ACCOUNT_PREFIX

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="per-user system accounts need root")

EXPECTED_PROFILES = {
    "alice": {"cpu-small", "gpu-1", "gpu-multi"},
    "bob": {"cpu-small", "gpu-1"},
    "carol": {"cpu-small"},
}


def offered_profiles(html: str) -> set[str]:
    return set(re.findall(r'name="profile" id="profile-item-[^"]+"\s+value="([^"]+)"', html))


@pytest.mark.parametrize("user", sorted(EXPECTED_PROFILES))
def test_each_user_sees_exactly_their_profiles(studio, user):
    assert offered_profiles(studio.form(user)) == EXPECTED_PROFILES[user]


def test_form_offers_only_allowed_option_values(studio):
    # students may pick at most 8Gi on cpu-small; residents up to 16Gi
    bob = studio.form("bob")
    alice = studio.form("alice")
    assert re.search(r'profile-option-cpu-small--memory".*?</select>', bob, re.S).group(0).count("<option") == 2
    assert 'value="16Gi"' in re.search(r'profile-option-cpu-small--memory".*?</select>', alice, re.S).group(0)
    assert "GPUs free now" in alice


def test_spawn_through_api_runs_jupyterlab_as_own_account(studio):
    r = studio.spawn("bob", {"profile": "cpu-small", "memory": "4Gi"})
    assert r.status_code in (201, 202), r.text
    try:
        lab = requests.get(
            f"{studio.url}/user/bob/api/status",
            headers={"Authorization": f"token {studio.token('bob')}"}, timeout=30,
        )
        assert lab.status_code == 200, lab.text
        env = studio.server_env("bob")
        account = pwd.getpwuid(int(env["_uid"]))
        assert account.pw_name == f"{ACCOUNT_PREFIX}bob"
        assert stat.S_IMODE(os.stat(account.pw_dir).st_mode) == 0o700
        assert env["MEM_LIMIT"] == str(4 * 1024**3)
        assert float(env["CPU_LIMIT"]) == 2.0
        assert env["CUDA_VISIBLE_DEVICES"] == ""
        assert env["AISTUDIO_PROFILE"] == "cpu-small"
        model = studio.api("GET", "/users/bob").json()
        # the profile's first environment: the server runs from it, not from the hub's
        assert model["servers"][""]["user_options"] == {"profile": "cpu-small", "memory": "4Gi", "environment": "data-science"}
        assert env["PATH"].split(os.pathsep)[0].endswith("/data-science/bin")
    finally:
        studio.stop_server("bob")


@pytest.mark.parametrize(
    "user, options, status, words",
    [
        ("bob", {"profile": "gpu-multi"}, 403, ["gpu-multi", "not available to bob", "students"]),
        ("carol", {"profile": "gpu-1"}, 403, ["gpu-1", "not available"]),
        ("bob", {"profile": "cpu-small", "memory": "16Gi"}, 403, ["exceeds your limit of 8Gi"]),
        ("alice", {"profile": "gpu-multi", "gpus": 8}, 400, ["gpus=8", "not offered", "2, 3, 4"]),
        ("alice", {"profile": "cpu-small", "memory": "a lot"}, 400, ["memory", "not a memory quantity"]),
        ("alice", {"profile": "cpu-small", "colour": "red"}, 400, ["no option 'colour'"]),
        ("alice", {"profile": "no-such-profile"}, 400, ["There is no profile 'no-such-profile'"]),
    ],
)
def test_api_refuses_launch_outside_rights(studio, user, options, status, words):
    r = studio.spawn(user, options, wait=False)
    assert r.status_code == status, r.text
    message = r.json()["message"]
    for word in words:
        assert word in message
    assert studio.api("GET", f"/users/{user}").json()["servers"] == {}


def test_form_post_outside_rights_shows_error_on_spawn_page(studio):
    s = studio.session("bob")
    r = s.post(f"{studio.url}/hub/spawn/bob", data={"profile": "gpu-multi", "_xsrf": s.cookies.get("_xsrf")}, timeout=30)
    assert r.status_code == 403
    assert "not available to bob" in r.text
    assert offered_profiles(r.text) == EXPECTED_PROFILES["bob"]


def test_saved_options_of_removed_profile_fall_back_to_default(studio):
    extra = studio.profiles_dir / "temporary.yaml"
    extra.write_text(
        "profiles:\n"
        "  - slug: temporary\n    display_name: Temporary\n"
        "    resources: {cpu: 1, memory: 2Gi}\n    access: {everyone: true}\n"
    )
    try:
        assert "temporary" in offered_profiles(studio.form("carol"))
        assert studio.spawn("carol", {"profile": "temporary"}).status_code in (201, 202)
        studio.stop_server("carol")
    finally:
        extra.unlink()
    # carol's saved options name a profile that is gone: a plain start still works
    r = studio.spawn("carol")
    assert r.status_code in (201, 202), r.text
    try:
        assert studio.server_env("carol")["AISTUDIO_PROFILE"] == "cpu-small"
    finally:
        studio.stop_server("carol")


def test_spawn_reports_progress_steps(studio):
    r = studio.spawn("ahmed", {"profile": "gpu-1"})
    assert r.status_code in (201, 202), r.text
    try:
        log = studio.log()
        steps = ["Checking your profile and options", "Profile 1× A100, 8 CPU, 64 GiB", "GPUs assigned", "Starting JupyterLab"]
        positions = [log.find(f"ahmed: {step}") for step in steps]
        assert -1 not in positions, positions
        assert positions == sorted(positions)
    finally:
        studio.stop_server("ahmed")


def test_members_cannot_read_each_others_files(studio):
    for user in ("alice", "bob"):
        assert studio.spawn(user, {"profile": "cpu-small"}).status_code in (201, 202)
    try:
        alice_home = pwd.getpwnam(f"{ACCOUNT_PREFIX}alice").pw_dir
        out = studio.run_in_kernel("alice", "open('secret.txt', 'w').write('alice only'); print(open('secret.txt').read())")
        assert out.strip() == "alice only"
        code = (
            "import os\n"
            f"print(os.environ['USER'], os.getuid() != 0)\n"
            f"try:\n    print(open({alice_home + '/secret.txt'!r}).read())\n"
            "except PermissionError as e:\n    print('denied')\n"
        )
        assert studio.run_in_kernel("bob", code).split() == [f"{ACCOUNT_PREFIX}bob", "True", "denied"]
    finally:
        for user in ("alice", "bob"):
            studio.stop_server(user)
