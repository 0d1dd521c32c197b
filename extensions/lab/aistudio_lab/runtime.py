"""The run-time handlers: this server's time left and its extension, for JupyterLab's
status-bar item and warnings (src/runtime/).

Asked of the hub's REST API for THIS server only (``GET users/NAME/servers/SERVER/runtime``
and ``POST .../extend``, ``users/NAME/server/...`` for the default server; the hub's
``hub_config/lifecycle/handlers.py``), the member and the server's name taken from the
environment the hub gave the server, with the server's token (the hub grants it
``read:servers!user`` and ``servers!server``). Only plain fields go back; the hub's 409
(why it may not be extended, or that the server is still starting) is passed on as 409.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

from jupyter_server.base.handlers import APIHandler
from tornado import web

from .forward import forward
from .queue import USER, hub_api_url

SERVER_NAME = "JUPYTERHUB_SERVER_NAME"  # this server's name ("" for the default server), from the hub

SERVICE = "The hub's run-time API"


def server_path() -> str | None:
    """``users/NAME/servers/SERVER`` (``users/NAME/server`` for the default one) of this
    server in the hub's API; None when the hub did not say whose server this is."""
    user = os.environ.get(USER)
    if not user:
        return None
    server = os.environ.get(SERVER_NAME, "")
    if server:
        return f"users/{quote(user, safe='')}/servers/{quote(server, safe='')}"
    return f"users/{quote(user, safe='')}/server"


def _number(value, kind):
    """`kind(value)`, or None for what is not a number (the hub's nulls stay null)."""
    try:
        return None if value is None or isinstance(value, bool) else kind(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _text(value) -> str | None:
    return None if value is None else str(value)


def plain(model: dict) -> dict:
    """The fields the status bar and the warnings need, each as a JSON scalar of a fixed type."""
    extend = model.get("extend") if isinstance(model.get("extend"), dict) else {}
    warn_before = model.get("warn_before") if isinstance(model.get("warn_before"), list) else []
    return {
        "server": str(model.get("server") or ""),
        "profile": str(model.get("profile") or ""),
        "gpus": str(model.get("gpus") or ""),
        "started": _number(model.get("started"), float),
        "max_runtime": _number(model.get("max_runtime"), int),
        "ends_at": _number(model.get("ends_at"), float),
        "left": _number(model.get("left"), float),
        "warn_before": sorted({p for p in (_number(w, int) for w in warn_before) if p is not None and p > 0},
                              reverse=True),
        "extend": {
            "by": _number(extend.get("by"), int) or None,
            "by_text": str(extend.get("by_text") or ""),
            "refusal": _text(extend.get("refusal")),
            "done": _number(extend.get("done"), int) or 0,
        },
        "stop_reason": _text(model.get("stop_reason")),
    }


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
        return str(data.get("message") or "") if isinstance(data, dict) else ""
    except ValueError:
        return ""


class _RuntimeHandler(APIHandler):
    async def ask(self, action: str, method: str = "GET") -> None:
        path = server_path()
        answer = await forward(SERVICE, hub_api_url() if path else None, f"{path}/{action}", method=method,
                               body=b"" if method == "POST" else None)
        if answer.status == 409:  # the hub says why not (no extension left, still starting): the member reads it
            # written as is: an HTTPError would double a "%" of the hub's message
            self.set_status(409)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"status": 409, "message": _message(answer.body) or "The hub refused."}))
            return
        if answer.status != 200:
            raise web.HTTPError(502, f"{SERVICE} answered {answer.status}")
        try:
            data = json.loads(answer.body)
        except ValueError as e:
            raise web.HTTPError(502, f"{SERVICE} answered no JSON: {e}") from None
        if not isinstance(data, dict):
            raise web.HTTPError(502, f"{SERVICE} answered no run time")
        self.finish(json.dumps(plain(data)))


class RuntimeHandler(_RuntimeHandler):
    """GET: this server's run time; 503 when the hub's API is not available, 502 when it fails."""

    @web.authenticated
    async def get(self):
        await self.ask("runtime")


class ExtendHandler(_RuntimeHandler):
    """POST: extend this server within the policy; the new run time, or 409 saying why not."""

    @web.authenticated
    async def post(self):
        await self.ask("extend", method="POST")
