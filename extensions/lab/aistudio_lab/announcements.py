"""The announcements handler: the current announcements for the JupyterLab notices.

Asked of the hub's announcements service with this server's token (the hub grants it
access:services!service=announcements); only plain fields go back.
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
        self.finish(json.dumps({"version": data.get("version"), "items": items, "page": page}))
