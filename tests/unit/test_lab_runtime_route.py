"""The lab extension's GET /aistudio-datasets/api/runtime and POST .../runtime/extend
(extensions/lab/aistudio_lab/runtime.py) in a real jupyter_server with the extension loaded,
asking a real HTTP server on loopback that plays the hub's run-time API
(/hub/api/users/NAME/server[s/SERVER]/runtime and /extend, hub_config/lifecycle/handlers.py).

The routes carry this server's run time into the browser and extend it: they must ask for
THIS server (the member and server name the hub gave it), forward the server's own hub
token, keep plain fields only, pass the hub's 409 (why not) on as 409, and say 503 / 502
when there is no hub to ask or the hub fails.
"""

from __future__ import annotations

import json
import socket

import pytest
from tornado import httpclient, netutil, web
from tornado.httpserver import HTTPServer

pytest.importorskip("aistudio_lab")  # installed into the servers' environment: pip install ./extensions/lab
from aistudio_lab.queue import HUB_API_URL, USER  # noqa: E402
from aistudio_lab.runtime import SERVER_NAME  # noqa: E402
from jupyter_server.serverapp import ServerApp  # noqa: E402

from hub_config.lifecycle import handlers as hub_lifecycle  # noqa: E402

SERVER_TOKEN = "server-token-of-alice"  # what the hub gives alice's server as JUPYTERHUB_API_TOKEN
LAB_TOKEN = "lab-login-token"  # how the test logs in to the jupyter server itself
PLAIN = {"server", "profile", "gpus", "started", "max_runtime", "ends_at", "left", "warn_before", "extend",
         "stop_reason"}

# as the hub's runtime_model() writes it, with something more the browser must not get
MODEL = {
    "server": "train", "profile": "Short CPU", "gpus": "1× A100", "started": 1_700_000_000.5, "max_runtime": 7200,
    "ends_at": 1_700_007_200.5, "left": 3125.25, "warn_before": [1800, 300],
    "extend": {"by": 3600, "by_text": "1h", "refusal": None, "done": 0, "internal": "x"},
    "stop_reason": None, "user_options": {"image": "secret-registry/private:tag"},
}


class FakeHubServer(web.RequestHandler):
    """The hub's runtime and extend handlers: check the token as the hub does, then answer as told."""

    def initialize(self, hub, action):
        self.hub = hub
        self.action = action

    def _answer(self, *_):
        self.hub["asked"].append((self.request.method, self.request.path, self.request.headers.get("Authorization")))
        if self.request.headers.get("Authorization") != f"token {SERVER_TOKEN}":
            raise web.HTTPError(403, "This token may not use alice's server.")
        status, body = self.hub["answers"][self.action]
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    get = _answer
    post = _answer

    def check_xsrf_cookie(self):  # the hub's API takes tokens, not cookies
        pass


@pytest.fixture
async def hub():
    """The hub's API on a free loopback port, with the real paths of hub_config's handlers."""
    state = {"asked": [], "answers": {"runtime": (200, MODEL), "extend": (200, MODEL)}}
    routes = [("/hub" + path, FakeHubServer,
               {"hub": state, "action": "runtime" if handler is hub_lifecycle.RuntimeAPIHandler else "extend"})
              for path, handler in hub_lifecycle.handlers()]
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application(routes))
    server.add_sockets(sockets)
    state["api_url"] = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hub/api"
    yield state
    server.stop()


@pytest.fixture
async def lab(tmp_path, monkeypatch, hub):
    """A real jupyter_server with only the aistudio_lab server extension, as the hub's
    spawner environment configures it (alice's named server "train"); returns a function
    that asks a route."""
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("JUPYTER_NO_CONFIG", "1")  # no installed switches: this extension only
    monkeypatch.setenv(HUB_API_URL, hub["api_url"])
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVER_TOKEN)
    monkeypatch.setenv(USER, "alice")
    monkeypatch.setenv(SERVER_NAME, "train")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = ServerApp(ip="127.0.0.1", port=port, port_retries=0, open_browser=False, root_dir=str(tmp_path),
                    base_url="/user/alice/train/", jpserver_extensions={"aistudio_lab": True})
    app.init_signal = lambda: None  # pytest owns the signals
    app.initialize(argv=[f"--IdentityProvider.token={LAB_TOKEN}"], find_extensions=False)
    assert "aistudio_lab" in app.extension_manager.extensions, "the server extension did not load"

    async def ask(path: str = "runtime", method: str = "GET", token: str | None = LAB_TOKEN) -> tuple[int, dict]:
        headers = {"Authorization": f"token {token}"} if token else {}
        response = await httpclient.AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{port}/user/alice/train/aistudio-datasets/api/{path}", method=method,
            body=b"" if method == "POST" else None, headers=headers, raise_error=False, follow_redirects=False)
        try:
            return response.code, json.loads(response.body or b"{}")
        except ValueError:
            return response.code, {"body": response.body.decode(errors="replace")}

    yield ask
    await app._cleanup()
    ServerApp.clear_instance()


EXPECTED = {
    "server": "train", "profile": "Short CPU", "gpus": "1× A100", "started": 1_700_000_000.5, "max_runtime": 7200,
    "ends_at": 1_700_007_200.5, "left": 3125.25, "warn_before": [1800, 300],
    "extend": {"by": 3600, "by_text": "1h", "refusal": None, "done": 0}, "stop_reason": None,
}


async def test_the_run_time_of_this_server_in_plain_fields_asked_with_the_server_token(lab, hub):
    status, data = await lab()
    assert status == 200, data
    # this server (alice's "train"), with the server's own token, not the browser's
    assert hub["asked"] == [("GET", "/hub/api/users/alice/servers/train/runtime", f"token {SERVER_TOKEN}")]
    assert data == EXPECTED
    assert set(data) == PLAIN
    assert "secret-registry" not in json.dumps(data) and "internal" not in json.dumps(data)


async def test_the_default_server_is_asked_by_its_own_path(lab, hub, monkeypatch):
    monkeypatch.setenv(SERVER_NAME, "")
    hub["answers"]["runtime"] = (200, {**MODEL, "server": ""})
    status, data = await lab()
    assert status == 200 and data["server"] == "", data
    status, _ = await lab("runtime/extend", "POST")
    assert status == 200
    assert [a[:2] for a in hub["asked"]] == [("GET", "/hub/api/users/alice/server/runtime"),
                                              ("POST", "/hub/api/users/alice/server/extend")]


async def test_a_server_without_a_limit_keeps_its_nulls(lab, hub):
    hub["answers"]["runtime"] = (200, {**MODEL, "max_runtime": None, "ends_at": None, "left": None,
                                       "extend": {"by": None, "by_text": "", "done": 0,
                                                  "refusal": "This server has no run-time limit: there is nothing to extend."}})
    status, data = await lab()
    assert status == 200, data
    assert (data["max_runtime"], data["ends_at"], data["left"]) == (None, None, None)
    assert data["extend"] == {"by": None, "by_text": "", "done": 0,
                              "refusal": "This server has no run-time limit: there is nothing to extend."}


async def test_odd_values_of_the_hub_become_plain_scalars(lab, hub):
    odd = {"server": None, "profile": ["x"], "gpus": 2, "started": "soon", "max_runtime": "25", "ends_at": True,
           "left": "12.5", "warn_before": [20, "300", None, "x", -5, 20], "extend": "yes", "stop_reason": 7}
    hub["answers"]["runtime"] = (200, odd)
    status, data = await lab()
    assert status == 200, data
    assert data == {"server": "", "profile": "['x']", "gpus": "2", "started": None, "max_runtime": 25,
                    "ends_at": None, "left": 12.5, "warn_before": [300, 20],
                    "extend": {"by": None, "by_text": "", "refusal": None, "done": 0}, "stop_reason": "7"}


async def test_extend_posts_for_this_server_and_answers_the_new_run_time(lab, hub):
    extended = {**MODEL, "max_runtime": 10800, "left": 6725.0,
                "extend": {"by": None, "by_text": "", "done": 1, "refusal": "This server was already extended 1 of 1 times."}}
    hub["answers"]["extend"] = (200, extended)
    status, data = await lab("runtime/extend", "POST")
    assert status == 200, data
    assert hub["asked"] == [("POST", "/hub/api/users/alice/servers/train/extend", f"token {SERVER_TOKEN}")]
    assert data["max_runtime"] == 10800 and data["left"] == 6725.0 and set(data) == PLAIN
    assert data["extend"] == {"by": None, "by_text": "", "done": 1,
                              "refusal": "This server was already extended 1 of 1 times."}


async def test_the_hubs_409_message_is_passed_on_as_409(lab, hub):
    why = "Extending by 1h would take you past your GPU-hour budget: 9.5 of 10 used (95%), and this server would need 2.0 more."
    hub["answers"]["extend"] = (409, {"status": 409, "message": why})
    status, data = await lab("runtime/extend", "POST")
    assert status == 409 and data["message"] == why, data  # word for word, "%" included
    hub["answers"]["runtime"] = (409, {"status": 409, "message": "The server is still starting."})
    status, data = await lab()
    assert status == 409 and data["message"] == "The server is still starting.", data


async def test_extend_is_a_post_only(lab, hub):
    status, _ = await lab("runtime/extend", "GET")
    assert status == 405
    assert hub["asked"] == []


@pytest.mark.parametrize("unset", [HUB_API_URL, "JUPYTERHUB_API_TOKEN", USER])
@pytest.mark.parametrize("path,method", [("runtime", "GET"), ("runtime/extend", "POST")])
async def test_no_hub_url_token_or_member_is_503_and_asks_nothing(lab, hub, monkeypatch, unset, path, method):
    monkeypatch.delenv(unset)
    status, data = await lab(path, method)
    assert status == 503 and "not available from this server" in data["message"], data
    assert hub["asked"] == []


@pytest.mark.parametrize("answer", [(500, {"message": "boom"}), (404, {"message": "alice has no running server train."}),
                                    (200, ["not", "a", "model"])])
@pytest.mark.parametrize("path,method,action", [("runtime", "GET", "runtime"), ("runtime/extend", "POST", "extend")])
async def test_a_failing_hub_is_502(lab, hub, answer, path, method, action):
    hub["answers"][action] = answer
    status, data = await lab(path, method)
    assert status == 502, data
    assert [a[2] for a in hub["asked"]] == [f"token {SERVER_TOKEN}"]


async def test_a_hub_refusing_the_token_is_502(lab, hub, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "someone-elses-token")
    status, data = await lab()
    assert status == 502 and "403" in data["message"], data
    assert [a[2] for a in hub["asked"]] == ["token someone-elses-token"]


async def test_an_unreachable_hub_is_502(lab, hub, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv(HUB_API_URL, f"http://127.0.0.1:{closed}/hub/api")
    for path, method in (("runtime", "GET"), ("runtime/extend", "POST")):
        status, data = await lab(path, method)
        assert status == 502 and "cannot be reached" in data["message"], data


async def test_the_routes_need_the_lab_login(lab, hub):
    for path, method in (("runtime", "GET"), ("runtime/extend", "POST")):
        for token in (None, "wrong"):
            status, _ = await lab(path, method, token=token)
            assert status in (401, 403), (path, token, status)
    assert hub["asked"] == []
