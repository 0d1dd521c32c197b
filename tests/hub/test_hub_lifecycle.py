"""Starting and stopping the studio: refusal on bad files, hot reload, demo mode, Ctrl-C."""

import os
import re
import time

import pytest

from harness import Studio, copy_profiles, write_config, write_profiles


def offered(html):
    return set(re.findall(r'name="profile" id="profile-item-[^"]+"\s+value="([^"]+)"', html))


def test_hub_refuses_to_start_on_invalid_profiles(tmp_path):
    profiles = copy_profiles(tmp_path)
    (profiles / "gpu.yaml").write_text((profiles / "gpu.yaml").read_text().replace("gpus: 1", "gpus: one"))
    studio = Studio(tmp_path, write_config(tmp_path, profiles))
    with pytest.raises(RuntimeError, match="exited with 1") as info:
        studio.start()
    assert "cannot start: invalid profiles" in str(info.value)
    assert f"{profiles}/gpu.yaml: profile gpu-1: resources.gpus: 'one' is not of type 'integer'" in str(info.value)


def test_hub_refuses_to_start_on_invalid_config(tmp_path):
    path = write_config(tmp_path, copy_profiles(tmp_path), gpus={"discovery": "magic"})
    studio = Studio(tmp_path, path)
    with pytest.raises(RuntimeError, match="exited with 1") as info:
        studio.start()
    assert f"{path}: gpus.discovery: 'magic' is not one of" in str(info.value)


@pytest.fixture
def shared_studio(tmp_path):
    os.chmod(tmp_path, 0o755)
    studio = Studio(tmp_path, write_config(tmp_path, copy_profiles(tmp_path), local={"user_accounts": "shared"}))
    studio.start()
    yield studio
    studio.stop()


def test_hot_reload_and_invalid_edit_keeps_last_good(shared_studio):
    studio = shared_studio
    assert "DEMO MODE (single account)" in studio.log()
    extra = studio.profiles_dir / "extra.yaml"
    extra.write_text(
        "profiles:\n  - slug: extra\n    display_name: Extra\n"
        "    resources: {cpu: 1, memory: 2Gi}\n    access: {groups: [students]}\n"
    )
    assert "extra" in offered(studio.form("bob"))
    assert "extra" not in offered(studio.form("alice"))
    # an invalid edit: the last good set stays, and the log says why
    extra.write_text(extra.read_text().replace("memory: 2Gi", "memory: plenty"))
    assert "extra" in offered(studio.form("bob"))
    assert "keeping the last good set" in studio.log()
    assert "extra.yaml: profile extra: resources.memory: 'plenty' is invalid" in studio.log()
    r = studio.spawn("bob", {"profile": "extra"})
    assert r.status_code in (201, 202), r.text
    env = studio.server_env("bob")
    assert env["AISTUDIO_PROFILE"] == "extra"
    assert int(env["_uid"]) == os.geteuid()  # demo mode: the hub's own account
    assert env["HOME"] == str(studio.directory / "data" / "homes" / "bob")
    studio.stop_server("bob")
    extra.unlink()
    assert "extra" not in offered(studio.form("bob"))


def test_ctrl_c_stops_hub_proxy_and_servers(shared_studio):
    studio = shared_studio
    assert studio.spawn("carol", {"profile": "cpu-small"}).status_code in (201, 202)
    server_pid = int(studio.server_env("carol")["_pid"])
    proxy_pid = int((studio.directory / "data" / "jupyterhub-proxy.pid").read_text())
    studio.stop()
    assert studio.proc.returncode == 0, studio.log()[-2000:]
    time.sleep(0.5)
    for pid in (server_pid, proxy_pid):
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]


def test_server_past_max_runtime_is_stopped(tmp_path):
    profiles = write_profiles(
        tmp_path,
        "profiles:\n  - slug: short\n    display_name: Short\n"
        "    resources: {cpu: 1, memory: 1Gi}\n    access: {everyone: true}\n    max_runtime: 20s\n",
    )
    studio = Studio(tmp_path, write_config(tmp_path, profiles, spawn={"poll_interval": 1}, local={"user_accounts": "shared"}))
    studio.start()
    try:
        assert studio.spawn("carol", {"profile": "short"}).status_code in (201, 202)
        assert studio.server_env("carol")["AISTUDIO_MAX_RUNTIME"] == "20"
        deadline = time.monotonic() + 60
        while studio.api("GET", "/users/carol").json()["servers"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert studio.api("GET", "/users/carol").json()["servers"] == {}
        assert "carol ran past its limit of 20s; stopping it" in studio.log()
    finally:
        studio.stop()
