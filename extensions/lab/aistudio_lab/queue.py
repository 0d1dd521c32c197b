"""The GPU queue handler: the member's own queue entries, for the JupyterLab reservation notices.

Asked of the hub's REST API (``GET api/queue``) with this server's token, which the hub
grants ``read:servers!user``: the hub answers with the member's entries only. Only plain
fields go back, so nothing of the hub's rows (user options, other members) reaches the
browser by accident.
"""

from __future__ import annotations

import json
import os

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .forward import forward

HUB_API_URL = "JUPYTERHUB_API_URL"  # the hub's REST API as this server reaches it, from the hub
HUB_BASE_URL = "JUPYTERHUB_BASE_URL"  # the hub's base URL, for the link to the queue page
USER = "JUPYTERHUB_USER"  # the member this server belongs to

SERVICE = "The hub's GPU queue"


def hub_api_url() -> str | None:
    """The hub's API as this server reaches it, from the environment the hub gave it."""
    url = os.environ.get(HUB_API_URL)
    return url.rstrip("/") + "/" if url else None


def _number(value, kind):
    """`kind(value)`, or None for what is not a number (the hub's nulls stay null)."""
    try:
        return None if value is None or isinstance(value, bool) else kind(value)
    except (TypeError, ValueError):
        return None


def plain(entry: dict) -> dict:
    """The fields the notices need, each as a JSON scalar of a fixed type."""
    return {
        "id": _number(entry.get("id"), int),
        "profile": str(entry.get("profile") or ""),
        "gpus": _number(entry.get("gpus"), int) or 0,
        "gpu_type": str(entry["gpu_type"]) if entry.get("gpu_type") else None,
        "state": str(entry.get("state") or ""),
        "place": _number(entry.get("place"), int),
        "estimate": str(entry.get("estimate") or ""),
        "reserved_until": _number(entry.get("reserved_until"), float),
        "auto_start": entry.get("auto_start") is True,
    }


class QueueHandler(APIHandler):
    """503 when the hub's API (or the queue) is not available, 502 when the hub fails; else
    {entries, page}."""

    @web.authenticated
    async def get(self):
        answer = await forward(SERVICE, hub_api_url(), "queue")
        if answer.status == 503:  # the hub runs without a queue: not a failure of the hub
            raise web.HTTPError(503, f"{SERVICE} is not running on this hub")
        if answer.status != 200:
            raise web.HTTPError(502, f"{SERVICE} answered {answer.status}")
        try:
            data = json.loads(answer.body)
            rows = data.get("entries", [])
        except (ValueError, AttributeError) as e:
            raise web.HTTPError(502, f"{SERVICE} answered no list of entries: {e}") from None
        # the hub already answers for the token's owner only; keeping that owner's rows
        # again means a broader token could never show another member's entries here
        user = os.environ.get(USER)
        entries = [plain(r) for r in rows if isinstance(r, dict) and (not user or r.get("user") == user)]
        page = url_path_join(os.environ.get(HUB_BASE_URL, "/"), "hub", "queue")
        self.finish(json.dumps({"entries": entries, "page": page}))
