"""The announcements handler: the current announcements for the JupyterLab notices, and
the decisions on the member's support requests and field-test scenario applications
(the service's ``api/updates``).

Asked of the hub's announcements service with this server's token (the hub grants it
access:services!service=announcements; the token is the member's, so the updates are
theirs); only plain fields go back.
"""

from __future__ import annotations

import json
import os

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .forward import forward

ANNOUNCEMENTS_URL = "AISTUDIO_ANNOUNCEMENTS_URL"  # the service as this server reaches it, from the hub
HUB_BASE_URL = "JUPYTERHUB_BASE_URL"  # the hub's base URL, for the link to the announcements page

SERVICE = "The announcements service"
FIELDS = ("id", "kind", "title", "updated_at")  # the plain fields an item keeps
UPDATE_FIELDS = ("id", "kind", "title", "status_label", "updated_at", "url")  # those of a decision


def announcements_url() -> str | None:
    """The announcements service as this server reaches it, from the environment the hub gave it."""
    url = os.environ.get(ANNOUNCEMENTS_URL)
    return url.rstrip("/") + "/" if url else None


class AnnouncementsHandler(APIHandler):
    """503 when the service is unset, 502 when it fails; else {version, items, page}."""

    @web.authenticated
    async def get(self):
        answer = await forward(SERVICE, announcements_url(), "api/items")
        if not answer.ok:
            raise web.HTTPError(502, f"{SERVICE} answered {answer.status}")
        try:
            data = json.loads(answer.body)
        except ValueError as e:
            raise web.HTTPError(502, f"{SERVICE} cannot be reached: {e}") from None
        if answer.status != 200:
            raise web.HTTPError(502, f"{SERVICE} refused this server's token")
        items = [{k: str(item.get(k) or "") for k in FIELDS} for item in data.get("items", []) if isinstance(item, dict)]
        page = url_path_join(os.environ.get(HUB_BASE_URL, "/"), "services", "announcements") + "/"
        self.finish(json.dumps({"version": data.get("version"), "items": items, "page": page,
                                "updates": await self.updates()}))

    async def updates(self) -> list[dict]:
        """The member's decisions; none when the service has no such list (an older one) or fails
        to give it: the announcements still show."""
        try:
            answer = await forward(SERVICE, announcements_url(), "api/updates")
            data = json.loads(answer.body) if answer.status == 200 else {}
        except (web.HTTPError, ValueError):
            return []
        return [{k: str(u.get(k) or "") for k in UPDATE_FIELDS}
                for u in data.get("updates", []) if isinstance(u, dict)]
