"""A running server's run time in the hub's API (``JupyterHub.extra_handlers``):

- ``GET  /hub/api/users/NAME/servers/SERVER/runtime`` (``/users/NAME/server/runtime`` for
  the default server): when it started, its limit, time left, the warning points and
  whether it may be extended (``read:servers`` on that server: the member, their
  server's own token, admins);
- ``POST /hub/api/users/NAME/servers/SERVER/extend``: extend it within the policy
  (``servers`` on that server: the member, their server's token, admins); 200 with the new
  run time, 409 saying why not.
"""

from __future__ import annotations

import json
import time

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from .. import units
from . import runtime
from .hub import ServerNotices, installed, save_state, started_ts


def runtime_model(spawner, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    started = started_ts(spawner)
    left = runtime.time_left(started, spawner.max_runtime, now)
    extension = spawner.extension()
    loop = installed()
    return {
        "server": spawner.name, "profile": spawner.profile_name(), "gpus": spawner.gpus_label(),
        "started": started, "max_runtime": spawner.max_runtime,
        "ends_at": None if left is None else now + left, "left": left,
        "warn_before": list(loop.warn_before) if loop is not None else list(runtime.DEFAULT_WARN_BEFORE),
        "extend": {"by": extension.seconds or None,
                   "by_text": units.format_duration(extension.seconds) if extension.seconds else "",
                   "refusal": extension.refusal,
                   "done": len(spawner.usage.extensions(spawner.usage_id)) if spawner.usage and spawner.usage_id else 0},
        "stop_reason": spawner.stop_reason,
    }


class _ServerHandler(APIHandler):
    def running_spawner(self, name: str, server: str, scope: str):
        if self.current_user is None:
            raise web.HTTPError(401, "Log in or send a token.")
        if not self.has_scope(f"{scope}!server={name}/{server}"):
            raise web.HTTPError(403, f"This token may not use {name}'s server {server or '(default)'}.")
        user = self.find_user(name)
        spawner = user.spawners.get(server) if user is not None else None
        if spawner is None or not spawner.active:
            raise web.HTTPError(404, f"{name} has no running server {server or '(default)'}.")
        if not spawner.ready:
            raise web.HTTPError(409, "The server is still starting.")
        return spawner


class RuntimeAPIHandler(_ServerHandler):
    def get(self, name, server=""):
        self.write(json.dumps(runtime_model(self.running_spawner(name, server, "read:servers"))))


class ExtendAPIHandler(_ServerHandler):
    def post(self, name, server=""):
        spawner = self.running_spawner(name, server, "servers")
        spawner.extend()
        save_state(self.db, spawner)  # the new limit survives a hub restart
        self.write(json.dumps(runtime_model(spawner)))


def handlers() -> list[tuple]:
    """For ``JupyterHub.extra_handlers`` (the hub prefixes them with ``/hub``)."""
    return [
        (r"/api/users/([^/]+)/servers/([^/]*)/runtime", RuntimeAPIHandler),
        (r"/api/users/([^/]+)/server/runtime", RuntimeAPIHandler),
        (r"/api/users/([^/]+)/servers/([^/]*)/extend", ExtendAPIHandler),
        (r"/api/users/([^/]+)/server/extend", ExtendAPIHandler),
    ]


__all__ = ["handlers", "runtime_model", "ServerNotices"]
