"""``aistudio up``: run the whole studio in the foreground on this machine.

The hub runs as a child in a session of its own, so that only this command receives
Ctrl-C and SIGTERM and decides what they mean: JupyterHub installs its signal handlers
only once its services are up, and a signal before that would kill it without stopping
what it had started. This command also prints one line when the studio is ready, stops
what an earlier run left behind (``hub_config.processes``), and sweeps once more after
the hub has exited.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import HTTPRedirectHandler, build_opener

from .. import config as studio_config
from .. import processes
from . import config_path, load_config

STOP_GRACE = 15  # seconds the hub has to stop its servers, services and proxy
SIGTERM_CAUGHT = 1 << (signal.SIGTERM - 1)


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = build_opener(_NoRedirect)


def _status(url: str) -> tuple[int, str]:
    """HTTP status and Location of ``url`` (0 when nothing answers)."""
    try:
        with _opener.open(url, timeout=2) as r:
            return r.status, ""
    except HTTPError as e:
        return e.code, e.headers.get("Location", "")
    except (URLError, OSError):
        return 0, ""


def services_with_pages(cfg: dict) -> list[str]:
    return ["usage"] + [name for name in ("datasets", "announcements") if cfg[name]["enabled"]]


def studio_answers(url: str, services: list[str]) -> bool:
    """The hub and every hub-managed service with pages answer through the proxy."""
    if _status(f"{url}hub/health")[0] != 200:
        return False
    for name in services:
        status, location = _status(f"{url}services/{name}/")
        # before a service's route exists the proxy sends its path to the hub, which redirects
        if status in (0, 404) or status >= 500 or location.startswith(f"/hub/services/{name}"):
            return False
    return True


def handles_signals(pid: int) -> bool:
    """Whether the hub has installed its SIGTERM handler (it does so last in its start-up)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & SIGTERM_CAUGHT)
    except OSError:
        pass
    return False


def stop_leftovers(mark: str, exclude=(), when: str = "") -> None:
    left = processes.marked(mark, exclude=set(exclude))
    if left:
        names = ", ".join(f"{pid} ({cmd.split(' -m ')[-1].split()[0] if ' -m ' in cmd else cmd.split()[0]})"
                          for pid, cmd in left)
        print(f"aistudio: stopping {len(left)} processes {when}: {names}", flush=True)
        processes.stop([pid for pid, _ in left])


def cmd_up(args) -> int:
    path = config_path(args.config)
    cfg = load_config(args, data_dir=args.data_dir, port=args.port)
    mark = processes.mark_of(cfg["data_dir"])
    env = dict(os.environ)
    env[studio_config.ENV_CONFIG] = str(Path(path).resolve()) if path else ""
    env[studio_config.ENV_DATA_DIR] = cfg["data_dir"]
    env[studio_config.ENV_PORT] = str(cfg["hub"]["port"])
    env[processes.MARK_ENV] = mark
    hub_file = Path(__file__).parent.parent / "jupyterhub_config.py"
    jupyterhub = Path(sys.prefix) / "bin" / "jupyterhub"
    cmd = [str(jupyterhub) if jupyterhub.exists() else "jupyterhub", "-f", str(hub_file)]
    if args.debug:
        cmd.append("--debug")
    Path(cfg["data_dir"]).mkdir(parents=True, exist_ok=True)
    host = cfg["hub"]["ip"] if cfg["hub"]["ip"] not in ("", "0.0.0.0") else "127.0.0.1"
    url = f"http://{host}:{cfg['hub']['port']}{cfg['hub']['base_url']}"
    stop_leftovers(mark, when="an earlier run left behind")

    received: list[int] = []

    def on_signal(signum, frame):
        received.append(signum)
        if len(received) == 2:
            print("aistudio: stopping at once", file=sys.stderr, flush=True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    print(f"aistudio: starting the studio at {url} (data in {cfg['data_dir']}); Ctrl-C stops it", flush=True)
    hub = subprocess.Popen(cmd, env=env, cwd=cfg["data_dir"], start_new_session=True)
    services = services_with_pages(cfg)
    ready = False
    while hub.poll() is None and not received:
        if not ready and studio_answers(url, services):
            ready = True
            print(f"aistudio: ready at {url}", flush=True)
        time.sleep(0.3)
    if hub.poll() is None:
        stop_hub(hub, received)
    code = hub.wait()
    stop_leftovers(mark, when="the hub left running")
    return 0 if received and code in (0, 1, -signal.SIGINT, -signal.SIGTERM) else code


def stop_hub(hub: subprocess.Popen, received: list[int]) -> None:
    """Stop the hub: a running hub gets SIGINT, JupyterHub's clean shutdown (servers,
    services, proxy), forced after the grace; a hub still starting has no signal handlers
    yet and started no servers, so it is ended at once and what it started is swept."""
    if not handles_signals(hub.pid):
        print("aistudio: the hub was still starting; stopping it and what it started", flush=True)
        hub.terminate()
        return
    hub.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE
    while hub.poll() is None and len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    if hub.poll() is None:
        print("aistudio: the hub did not stop in time; killing it", file=sys.stderr, flush=True)
        hub.kill()


def add_parser(sub) -> None:
    up = sub.add_parser("up", help="run the studio in the foreground on this machine")
    up.add_argument("--port", type=int, help="public port (default: hub.port of the config, 8000)")
    up.add_argument("--data-dir", help="folder for all state (default: data_dir of the config, .aistudio)")
    up.add_argument("--debug", action="store_true", help="verbose hub logs")
    up.set_defaults(func=cmd_up)
