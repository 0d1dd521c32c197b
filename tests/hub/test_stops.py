"""Stopping `aistudio up` at any moment, and coming back after a crash: SIGTERM while
running and during start-up stop servers, services and proxy within 15 s without a
traceback; after a `kill -9` the next start stops what the dead hub left and every
service answers again."""

import os
import signal
import socket
import subprocess
import time

import requests

from harness import AISTUDIO, Studio, copy_profiles, free_ports, write_config
from hub_config import processes

STOP_LIMIT = 15


def make_studio(tmp_path) -> Studio:
    os.chmod(tmp_path, 0o755)
    port = free_ports(1)[0]
    return Studio(tmp_path, write_config(tmp_path, copy_profiles(tmp_path), datasets={"enabled": True,
                                                                                       "service_port": port}))


def leftovers(studio: Studio) -> list:
    return processes.marked(processes.mark_of(studio.config["data_dir"]))


def gone(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def port_free(port: int) -> bool:
    """Nothing listens there: a new studio can bind it (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def stop_within(proc: subprocess.Popen, sig: int) -> float:
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(60)
    return time.monotonic() - started


def test_sigterm_while_running_stops_everything_in_time(tmp_path):
    studio = make_studio(tmp_path).start()
    assert studio.spawn("carol", {"profile": "cpu-small"}).status_code in (201, 202)
    server = int(studio.server_env("carol")["_pid"])
    marked = leftovers(studio)
    assert len(marked) >= 5  # the proxy and the services (usage, announcements, culler, datasets)
    assert "aistudio: ready at " in studio.log()
    took = stop_within(studio.proc, signal.SIGTERM)
    assert took < STOP_LIMIT, studio.log()[-3000:]
    assert studio.proc.returncode == 0
    assert "Traceback" not in studio.log(), studio.log()[-3000:]
    time.sleep(0.3)
    assert gone(server) and leftovers(studio) == []
    assert all(port_free(studio.config["hub"][key]) for key in ("port", "hub_port", "proxy_api_port"))


def test_sigterm_during_start_up_leaves_nothing_running(tmp_path):
    studio = make_studio(tmp_path)
    log = open(studio.log_path, "ab")
    proc = subprocess.Popen([*AISTUDIO, "--config", str(studio.config_path), "up"], stdout=log,
                            stderr=subprocess.STDOUT, cwd=tmp_path)
    # the moment the hub has started some of its services and not yet the others
    deadline = time.monotonic() + 60
    while "Starting service 'usage'" not in studio.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, studio.log()
    took = stop_within(proc, signal.SIGTERM)
    assert took < STOP_LIMIT, studio.log()[-3000:]
    assert "Traceback" not in studio.log(), studio.log()[-3000:]
    time.sleep(0.3)
    assert leftovers(studio) == [], studio.log()[-3000:]
    assert port_free(studio.config["hub"]["port"]) and port_free(studio.config["hub"]["proxy_api_port"])


def test_after_kill_9_the_next_start_stops_the_orphans_and_every_service_answers(tmp_path):
    studio = make_studio(tmp_path).start()
    hub = int((tmp_path / "data" / "jupyterhub.pid").read_text())
    os.kill(studio.proc.pid, signal.SIGKILL)
    os.kill(hub, signal.SIGKILL)
    studio.proc.wait()
    time.sleep(0.5)
    orphans = leftovers(studio)
    assert len(orphans) >= 5, orphans  # the dead hub's proxy and services hold their ports
    studio._sessions.clear()
    studio._tokens.clear()
    studio.start()
    try:
        assert "an earlier run left behind" in studio.log()
        assert all(gone(pid) for pid, _ in orphans)
        # every service answers with the new hub's tokens
        admin = {"Authorization": f"token {studio.token('admin')}"}
        alice = {"Authorization": f"token {studio.token('alice')}"}
        assert requests.get(f"{studio.url}/services/usage/api/summary", headers=admin, timeout=30).status_code == 200
        assert requests.get(f"{studio.url}/services/datasets/api/datasets", headers=alice, timeout=30).status_code == 200
        r = requests.get(f"{studio.url}/services/announcements/api/items", headers=alice, timeout=30)
        assert r.status_code == 200, r.text
        culler = [pid for pid, cmd in leftovers(studio) if "jupyterhub_idle_culler" in cmd]
        assert len(culler) == 1 and culler[0] not in {pid for pid, _ in orphans}
    finally:
        studio.stop()
    assert leftovers(studio) == []
