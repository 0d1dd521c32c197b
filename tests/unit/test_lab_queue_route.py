"""The lab extension's GET /aistudio-datasets/api/queue (extensions/lab/aistudio_lab/queue.py)
in a real jupyter_server with the extension loaded, asking a real HTTP server on loopback
that plays the hub's REST API (/hub/api/queue, hub_config/queue/handlers.py).

The route carries the member's queue entries into the browser: it must forward the
server's own hub token, keep plain fields only (never user options or other members'
rows), and say 503 / 502 when there is no hub to ask or the hub fails.
"""

from __future__ import annotations

import json
import socket

import pytest
from tornado import httpclient, netutil, web
from tornado.httpserver import HTTPServer

pytest.importorskip("aistudio_lab")  # installed into the servers' environment: pip install ./extensions/lab
from aistudio_lab.queue import HUB_API_URL, HUB_BASE_URL, USER  # noqa: E402
from jupyter_server.serverapp import ServerApp  # noqa: E402

from hub_config.queue import handlers as hub_queue  # noqa: E402

SERVER_TOKEN = "server-token-of-alice"  # what the hub gives alice's server as JUPYTERHUB_API_TOKEN
LAB_TOKEN = "lab-login-token"  # how the test logs in to the jupyter server itself
PLAIN = {"id", "profile", "gpus", "gpu_type", "state", "place", "estimate", "reserved_until", "auto_start"}

# rows as the hub's view() writes them (hub_config/queue/manager.py), every field included
ALICE_RESERVED = {
    "id": 7, "user": "alice", "server_name": "gpu", "profile": "gpu-multi", "gpus": 2, "gpu_type": "a100",
    "state": "reserved", "place": None, "estimated_wait": 0.0, "estimate": "now", "joined_at": 1_700_000_000.5,
    "reserved_until": 1_700_001_800.25, "auto_start": False,
    "user_options": {"profile": "gpu-multi", "gpus": 2, "image": "secret-registry/private:tag"},
}
ALICE_WAITING = {**ALICE_RESERVED, "id": 8, "server_name": "", "profile": "gpu-1", "gpus": 1, "gpu_type": None,
                 "state": "waiting", "place": 3, "estimated_wait": 1260.0, "estimate": "about 21 minutes",
                 "reserved_until": None, "auto_start": True}
BOB_WAITING = {**ALICE_WAITING, "id": 9, "user": "bob"}


class FakeHubQueue(web.RequestHandler):
    """The hub's GET api/queue: checks the token as the hub does, then answers as told."""

    def initialize(self, hub):
        self.hub = hub

    def get(self):
        self.hub["asked"].append(self.request.headers.get("Authorization"))
        if self.request.headers.get("Authorization") != f"token {SERVER_TOKEN}":
            raise web.HTTPError(403, "This token may not read your servers or the queue.")
        status, body = self.hub["answer"]
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


@pytest.fixture
async def hub():
    """The hub's API on a free loopback port, with the real path of hub_config's handler."""
    (path, _), = [h for h in hub_queue.handlers() if h[1] is hub_queue.QueueAPIHandler]
    state = {"asked": [], "answer": (200, {"entries": []})}
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application([("/hub" + path, FakeHubQueue, {"hub": state})]))
    server.add_sockets(sockets)
    state["api_url"] = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hub/api"
    yield state
    server.stop()


@pytest.fixture
async def lab(tmp_path, monkeypatch, hub):
    """A real jupyter_server with only the aistudio_lab server extension, as the hub's
    spawner environment configures it; returns a function that GETs the queue route."""
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("JUPYTER_NO_CONFIG", "1")  # no installed switches: this extension only
    monkeypatch.setenv(HUB_API_URL, hub["api_url"])
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVER_TOKEN)
    monkeypatch.setenv(HUB_BASE_URL, "/studio/")
    monkeypatch.setenv(USER, "alice")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = ServerApp(ip="127.0.0.1", port=port, port_retries=0, open_browser=False, root_dir=str(tmp_path),
                    base_url="/user/alice/", jpserver_extensions={"aistudio_lab": True})
    app.init_signal = lambda: None  # pytest owns the signals
    app.initialize(argv=[f"--IdentityProvider.token={LAB_TOKEN}"], find_extensions=False)
    assert "aistudio_lab" in app.extension_manager.extensions, "the server extension did not load"

    async def get(token: str | None = LAB_TOKEN) -> tuple[int, dict]:
        headers = {"Authorization": f"token {token}"} if token else {}
        response = await httpclient.AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{port}/user/alice/aistudio-datasets/api/queue", headers=headers,
            raise_error=False, follow_redirects=False)
        try:
            return response.code, json.loads(response.body or b"{}")
        except ValueError:
            return response.code, {"body": response.body.decode(errors="replace")}

    yield get
    await app._cleanup()
    ServerApp.clear_instance()


async def test_the_member_gets_plain_fields_of_their_own_entries_asked_with_the_server_token(lab, hub):
    hub["answer"] = (200, {"entries": [ALICE_RESERVED, ALICE_WAITING, BOB_WAITING]})
    status, data = await lab()
    assert status == 200, data
    assert hub["asked"] == [f"token {SERVER_TOKEN}"]  # the server's own token, not the browser's
    assert data == {
        "entries": [
            {"id": 7, "profile": "gpu-multi", "gpus": 2, "gpu_type": "a100", "state": "reserved", "place": None,
             "estimate": "now", "reserved_until": 1_700_001_800.25, "auto_start": False},
            {"id": 8, "profile": "gpu-1", "gpus": 1, "gpu_type": None, "state": "waiting", "place": 3,
             "estimate": "about 21 minutes", "reserved_until": None, "auto_start": True},
        ],
        "page": "/studio/hub/queue",
    }
    assert all(set(e) == PLAIN for e in data["entries"])
    assert "secret-registry" not in json.dumps(data)


async def test_odd_values_of_the_hub_become_plain_scalars(lab, hub):
    odd = {"id": "12", "user": "alice", "profile": ["x"], "gpus": "two", "gpu_type": 0, "state": None,
           "place": True, "estimate": None, "reserved_until": "soon", "auto_start": "yes", "extra": {"a": 1}}
    hub["answer"] = (200, {"entries": [odd, "not a row"]})
    status, data = await lab()
    assert status == 200, data
    assert data["entries"] == [{"id": 12, "profile": "['x']", "gpus": 0, "gpu_type": None, "state": "", "place": None,
                                "estimate": "", "reserved_until": None, "auto_start": False}]


async def test_no_hub_api_url_is_503_and_asks_nothing(lab, hub, monkeypatch):
    monkeypatch.delenv(HUB_API_URL)
    status, data = await lab()
    assert status == 503 and "not available from this server" in data["message"], data
    assert hub["asked"] == []


async def test_no_server_token_is_503(lab, hub, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN")
    status, data = await lab()
    assert status == 503, data
    assert hub["asked"] == []


@pytest.mark.parametrize("answer", [(500, {"message": "boom"}), (404, {"message": "no such page"}),
                                    (200, ["not", "an", "object"])])
async def test_a_failing_hub_is_502(lab, hub, answer):
    hub["answer"] = answer
    status, data = await lab()
    assert status == 502, data
    assert hub["asked"] == [f"token {SERVER_TOKEN}"]


async def test_a_hub_refusing_the_token_is_502(lab, hub, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "someone-elses-token")
    hub["answer"] = (200, {"entries": [ALICE_RESERVED]})
    status, data = await lab()
    assert status == 502 and "403" in data["message"], data
    assert hub["asked"] == ["token someone-elses-token"]


async def test_an_unreachable_hub_is_502(lab, hub, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv(HUB_API_URL, f"http://127.0.0.1:{closed}/hub/api")
    status, data = await lab()
    assert status == 502 and "cannot be reached" in data["message"], data


async def test_a_hub_without_the_queue_is_503(lab, hub):
    hub["answer"] = (503, {"status": 503, "message": "The GPU queue is not running on this hub."})
    status, data = await lab()
    assert status == 503 and "not running" in data["message"], data


async def test_the_route_needs_the_lab_login(lab, hub):
    hub["answer"] = (200, {"entries": [ALICE_RESERVED]})
    status, _ = await lab(token=None)
    assert status in (401, 403)
    status, _ = await lab(token="wrong")
    assert status in (401, 403)
    assert hub["asked"] == []
