"""A real studio for tests: `aistudio up` (JupyterHub + configurable-http-proxy)
on free ports, with its own data folder, profiles and demo users."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
AISTUDIO = [sys.executable, "-m", "hub_config.cli"]
PASSWORD = "test-password"
CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by scripts/setup.sh --test

# Demo users of the test studio and their groups.
USERS = {
    "admin": {"admin": True},
    "alice": {"groups": ["gpu-residents"]},
    "ahmed": {"groups": ["gpu-residents"]},
    "bob": {"groups": ["students"]},
    "bea": {"groups": ["students"]},
    "carol": {"groups": []},
    "dora": {"groups": ["students", "gpu-residents"]},
}

# System accounts get a prefix unique to this test run, removed at the end.
ACCOUNT_PREFIX = f"t{secrets.token_hex(2)}-"

# Members' environments: the ones `aistudio env build` makes for the checkout (as root the
# shared default; otherwise those of the checkout's data folder, .aistudio/user-envs).
ENVIRONMENTS_ROOT = None if os.geteuid() == 0 else str(REPO / ".aistudio" / "user-envs")
_environments_built: list = []


def build_environments() -> None:
    """Build the members' environments, or bring their extension up to date, once per test run
    (a few seconds when nothing changed)."""
    if _environments_built:
        return
    result = subprocess.run([*AISTUDIO, "env", "build"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"aistudio env build failed:\n{result.stdout}{result.stderr}"
    _environments_built.append(result.stdout)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free right now (all held open while picking)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def hub_ports() -> dict:
    return dict(zip(("port", "hub_port", "proxy_api_port"), free_ports(3)))


def write_config(directory: Path, profiles_dir: Path, **overrides) -> Path:
    service_ports = free_ports(2)  # the hub-managed services' loopback ports
    config = {
        "data_dir": str(directory / "data"),
        "profiles_dir": str(profiles_dir),
        "hub": hub_ports(),
        "auth": {"demo": {"password": PASSWORD, "users": USERS}},
        "local": {"system_user_prefix": ACCOUNT_PREFIX},
        "environments": {"root": ENVIRONMENTS_ROOT},
        "gpus": {"discovery": "inventory", "inventory": [{"index": 0, "type": "a100"}, {"index": 1, "type": "a100"}]},
        "spawn": {"start_timeout": 90, "http_timeout": 90},
        "usage": {"service_port": service_ports[0]},
        "announcements": {"service_port": service_ports[1]},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    path = directory / "aistudio.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class PortTaken(Exception):
    """A port picked for the studio was taken by another process before the studio bound it."""


class Studio:
    """A running studio and helpers to use it as its users would."""

    def __init__(self, directory: Path, config_path: Path, env: dict[str, str] | None = None):
        self.directory = directory
        self.env = dict(env or {})  # extra environment of the studio process
        self.config_path = config_path
        self.config = yaml.safe_load(config_path.read_text())
        self.profiles_dir = Path(self.config["profiles_dir"])
        self.url = f"http://127.0.0.1:{self.config['hub']['port']}"
        self.log_path = directory / "hub.log"
        self.proc: subprocess.Popen | None = None
        self._sessions: dict[str, requests.Session] = {}
        self._tokens: dict[str, str] = {}

    # --------------------------------------------------------------- process

    def start(self, timeout=60, tries=3):
        """Start the studio; ports taken meanwhile by another process are picked anew."""
        build_environments()
        for attempt in range(tries):
            try:
                return self._start_once(timeout)
            except PortTaken:
                if attempt == tries - 1:
                    raise
                self.config["hub"].update(hub_ports())
                self.config_path.write_text(yaml.safe_dump(self.config))
                self.url = f"http://127.0.0.1:{self.config['hub']['port']}"

    def _start_once(self, timeout):
        self.log_path.write_bytes(b"")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*AISTUDIO, "--config", str(self.config_path), "up"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.directory, env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._kill_orphan_proxy()
                if "Address already in use" in self.log():
                    raise PortTaken(self.log())
                raise RuntimeError(f"the studio exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the studio did not answer within {timeout}s:\n{self.log()}")

    def _kill_orphan_proxy(self):
        """A hub that dies while starting leaves its configurable-http-proxy behind."""
        pid_file = Path(self.config["data_dir"]) / "jupyterhub-proxy.pid"
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # as Ctrl-C: the hub stops servers and proxy
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._sessions.clear()
        self._tokens.clear()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --------------------------------------------------------------- users

    def session(self, user: str) -> requests.Session:
        """A browser-like session logged in as ``user``."""
        if user not in self._sessions:
            s = requests.Session()
            s.get(f"{self.url}/hub/login", timeout=10)
            r = s.post(
                f"{self.url}/hub/login",
                data={"username": user, "password": PASSWORD, "_xsrf": s.cookies.get("_xsrf", "")},
                allow_redirects=False, timeout=10,
            )
            assert r.status_code == 302, f"login of {user} failed: {r.status_code} {r.text[:300]}"
            s.headers["X-XSRFToken"] = s.cookies.get("_xsrf", "")
            self._sessions[user] = s
        return self._sessions[user]

    def use_session(self, user: str, session: requests.Session) -> requests.Session:
        """Use ``session``, logged in some other way (e.g. through an identity provider), as ``user``'s."""
        session.headers["X-XSRFToken"] = session.cookies.get("_xsrf", "")
        self._sessions[user] = session
        return session

    def token(self, user: str) -> str:
        """An API token of ``user``, made through the hub's own API as the user."""
        if user not in self._tokens:
            r = self.session(user).post(f"{self.url}/hub/api/users/{user}/tokens", json={"note": "tests"}, timeout=10)
            assert r.status_code == 201, r.text
            self._tokens[user] = r.json()["token"]
        return self._tokens[user]

    def api(self, method: str, path: str, user: str = "admin", **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {self.token(user)}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=120, **kwargs)

    def spawn(self, user: str, options=None, wait=True, **kwargs) -> requests.Response:
        body = {"user_options": options} if options is not None else None
        r = self.api("POST", f"/users/{user}/server", user=user, json=body, **kwargs)
        if wait and r.status_code in (201, 202):
            self.wait_ready(user)
        return r

    def wait_ready(self, user: str, timeout=120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{user}").json()
            server = model["servers"].get("")
            if server and server["ready"]:
                return server
            if not server or not server["pending"]:
                raise AssertionError(f"{user}'s server stopped while starting:\n{self.log()[-3000:]}")
            time.sleep(0.3)
        raise AssertionError(f"{user}'s server not ready in {timeout}s")

    def stop_server(self, user: str):
        r = self.api("DELETE", f"/users/{user}/server")
        assert r.status_code in (202, 204), r.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.api("GET", f"/users/{user}").json()["servers"]:
                return
            time.sleep(0.3)
        raise AssertionError(f"{user}'s server did not stop")

    def form(self, user: str) -> str:
        r = self.session(user).get(f"{self.url}/hub/spawn/{user}", timeout=10)
        assert r.status_code == 200, r.text[:300]
        return r.text

    def run_in_kernel(self, user: str, code: str, timeout=60) -> str:
        """Run ``code`` in a new kernel of ``user``'s JupyterLab, as the user would; return its output."""
        # in a thread of its own: Playwright's sync API may hold this thread's event loop
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self._run_in_kernel(user, code, timeout)).result()

    async def _run_in_kernel(self, user, code, timeout):
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        headers = {"Authorization": f"token {self.token(user)}"}
        base = f"{self.url}/user/{user}/api/kernels"
        r = requests.post(base, headers=headers, json={"name": "python3"}, timeout=60)
        assert r.status_code == 201, r.text
        kernel = r.json()["id"]
        try:
            ws = await websocket_connect(
                HTTPRequest(f"{base.replace('http', 'ws', 1)}/{kernel}/channels", headers=headers, connect_timeout=timeout)
            )
            msg_id = uuid.uuid4().hex
            ws.write_message(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                           "username": user, "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True},
            }))
            output = []
            while True:
                raw = await asyncio.wait_for(ws.read_message(), timeout)
                assert raw is not None, "kernel connection closed"
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    output.append(content["text"])
                elif kind == "error":
                    output.append(f"{content['ename']}: {content['evalue']}")
                elif kind == "status" and content["execution_state"] == "idle":
                    ws.close()
                    return "".join(output)
        finally:
            requests.delete(f"{base}/{kernel}", headers=headers, timeout=30)

    def server_env(self, user: str, server: str | None = None) -> dict[str, str]:
        """Environment of ``user``'s running JupyterLab process (``server``: that named
        server's only), read from /proc."""
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            env = dict(item.split("=", 1) for item in environ.decode(errors="replace").split("\0") if "=" in item)
            if server is not None and env.get("JUPYTERHUB_SERVER_NAME", "") != server:
                continue
            if env.get("JUPYTERHUB_USER") == user and env.get("JUPYTERHUB_API_URL", "").find(
                str(self.config["hub"]["hub_port"])
            ) >= 0:
                env["_pid"] = pid
                env["_uid"] = str(os.stat(f"/proc/{pid}").st_uid)
                return env
        raise AssertionError(f"no running server process of {user}")


def browser_login(page, url: str, user: str, password: str = PASSWORD) -> None:
    """Log ``user`` in through the hub's login form in a Playwright page."""
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")


def write_profiles(directory: Path, text: str) -> Path:
    """A profiles folder holding one file with ``text``, in a folder the servers' accounts may enter."""
    os.chmod(directory, 0o755)
    target = directory / "profiles"
    target.mkdir()
    (target / "profiles.yaml").write_text(text)
    return target


def copy_profiles(directory: Path) -> Path:
    target = directory / "profiles"
    shutil.copytree(REPO / "spawner_profiles", target)
    return target


def wait_for(check, timeout=30, what="it", every=0.3):
    """Poll ``check()`` until it gives something true and return that, or fail saying ``what``
    did not happen in ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"{what} did not happen in {timeout}s")


class SMTPInbox:
    """A real SMTP server on loopback (aiosmtpd) keeping what it receives as
    ``messages``: (recipient, subject, plain-text body). ``start()`` then ``stop()``."""

    def __init__(self):
        self.messages: list[tuple[str, str, str]] = []
        self.port = free_ports(1)[0]
        self._controller = None

    async def handle_DATA(self, server, session, envelope):
        import email
        import email.policy

        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        for to in envelope.rcpt_tos:
            self.messages.append((to, message["Subject"], message.get_content()))
        return "250 OK"

    def start(self) -> SMTPInbox:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
