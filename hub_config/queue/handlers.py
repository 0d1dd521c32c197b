"""The queue's API and page, served by the hub (``JupyterHub.extra_handlers``):

- ``GET /hub/api/queue``: the caller's entries (``read:servers`` on themselves); with
  unfiltered ``read:servers`` (admins) everyone's.
- ``POST /hub/api/queue``: join with the ``user_options`` a spawn takes
  (``servers`` on themselves); 201 with place and estimate, or the 4xx a spawn would give.
- ``DELETE /hub/api/queue/{id}``: leave (the member, ``servers`` on themselves) or remove
  (an admin, unfiltered ``servers``).
- ``GET /hub/queue``: the page: your place, estimate and reservation; admins see every line.

Scopes are checked on every request; cookie requests need the XSRF token as every
JupyterHub API call does.
"""

from __future__ import annotations

import json

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from tornado import web

from ..profiles import LaunchRejected
from ..quotas import QuotaExceeded
from .hub import installed, until_text
from .manager import MoreThanThereAre
from .store import AlreadyQueued

JOIN_FIELDS = {"user_options": dict, "server_name": str, "auto_start": bool}


def queue_or_503():
    queue = installed()
    if queue is None or queue.capacity is None:
        raise web.HTTPError(503, "The GPU queue is not running on this hub.")
    return queue


class QueueAPIHandler(APIHandler):
    def _names(self) -> tuple[str, bool]:
        user = self.current_user
        if user is None:
            raise web.HTTPError(401, "Log in or send a token to use the queue.")
        return getattr(user, "name", ""), self.has_scope("read:servers")

    def get(self):
        name, everyone = self._names()
        if not everyone and not (self.current_user.kind == "user" and self.has_scope(f"read:servers!user={name}")):
            raise web.HTTPError(403, "This token may not read your servers or the queue.")
        rows = queue_or_503().view()
        if not everyone:
            rows = [r for r in rows if r["user"] == name]
        self.write(json.dumps({"entries": rows}))

    def _join_request(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "The body must be JSON: {\"user_options\": {...}}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "The body must be a JSON object.")
        for key, value in body.items():
            if key not in JOIN_FIELDS:
                raise web.HTTPError(400, f"Unknown field {key!r}: expected {', '.join(JOIN_FIELDS)}.")
            if not isinstance(value, JOIN_FIELDS[key]):
                raise web.HTTPError(400, f"Field {key!r} must be a {JOIN_FIELDS[key].__name__}.")
        if not body.get("user_options"):
            raise web.HTTPError(400, "Field 'user_options' is required: the options a start takes, e.g. {\"profile\": \"gpu-1\"}.")
        return body

    async def post(self):
        user = self.current_user
        if user is None:
            raise web.HTTPError(401, "Log in or send a token to join the queue.")
        if user.kind != "user" or not self.has_scope(f"servers!user={user.name}"):
            raise web.HTTPError(403, "This token may not start your servers, so it may not queue for them.")
        body = self._join_request()
        server_name = body.get("server_name", "")
        spawner = user.get_spawner(server_name, replace_failed=True)
        if spawner.active:
            raise web.HTTPError(409, f"Your server {server_name or '(default)'} is already running.")
        queue = queue_or_503()
        groups = sorted(g.name for g in user.groups)
        try:
            launch = spawner.profiles.resolve(user.name, groups, body["user_options"])
        except LaunchRejected as e:
            raise web.HTTPError(e.status, e.message) from None
        try:
            entry = queue.join(user.name, groups, launch.resources, server_name=server_name,
                               profile=launch.profile.slug, user_options={"profile": launch.profile.slug, **launch.options},
                               auto_start=bool(body.get("auto_start")))
        except AlreadyQueued:
            raise web.HTTPError(409, "You already wait for a launch: leave the queue first to wait for another.") from None
        except MoreThanThereAre as e:
            raise web.HTTPError(409, str(e)) from None
        except QuotaExceeded as e:
            raise web.HTTPError(429, str(e)) from None
        row = next((r for r in queue.view() if r["id"] == entry.id), None)
        self.set_status(201)
        self.write(json.dumps(row))


class QueueEntryAPIHandler(APIHandler):
    def delete(self, entry_id):
        user = self.current_user
        if user is None:
            raise web.HTTPError(401, "Log in or send a token to use the queue.")
        queue = queue_or_503()
        entry = next((e for e in queue.store.entries() if e.id == int(entry_id)), None)
        if entry is None or not self.has_scope(f"servers!user={entry.user}"):
            raise web.HTTPError(404, f"No queue entry {entry_id} of yours.")
        queue.leave(entry.id)
        self.set_status(204)


class QueuePageHandler(BaseHandler):
    @web.authenticated
    async def get(self):
        user = self.current_user
        queue = installed()
        rows = queue.view() if queue is not None else []
        everyone = self.has_scope("read:servers")
        mine = [r for r in rows if r["user"] == user.name]
        lines: dict[str, list] = {}
        for r in rows:
            r["until"] = until_text(r["reserved_until"]) if r["reserved_until"] else ""
            lines.setdefault((r["gpu_type"] or "GPU").upper(), []).append(r)
        html = await self.render_template(
            "queue.html", user=user, mine=mine, lines=lines if everyone else {}, admin_view=everyone,
            queue_on=queue is not None and queue.capacity is not None, on_queue_page=True,
        )
        self.finish(html)


def handlers() -> list[tuple]:
    """For ``JupyterHub.extra_handlers`` (the hub prefixes them with ``/hub``)."""
    return [
        (r"/api/queue", QueueAPIHandler),
        (r"/api/queue/(\d+)", QueueEntryAPIHandler),
        (r"/queue", QueuePageHandler),
    ]
