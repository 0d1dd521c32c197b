"""Server handlers: a thin, authenticated pass-through to the hub's datasets catalogue.

    GET  /aistudio-datasets/api/datasets[/NAME[/schema|/preview|/snippet]]
    GET  /aistudio-datasets/api/requestable
    GET  /aistudio-datasets/api/requests
    POST /aistudio-datasets/api/requests
    GET  /aistudio-datasets/api/info        where the catalogue and the mounts are
    GET  /aistudio-datasets/api/announcements   the current announcements (id, kind, title, updated_at)

The catalogue answers for the server's user only (it checks the hub token, which is
the user's); this server never reads dataset files for the panel.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlencode

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

PATHS = r"(datasets|datasets/[a-z0-9-]{1,42}|datasets/[a-z0-9-]{1,42}/(?:schema|preview|snippet)|requestable|requests)"
TIMEOUT = 30


def catalogue_url() -> str | None:
    """The catalogue's address, from the environment the hub gave this server."""
    url = os.environ.get("AISTUDIO_DATASETS_URL")
    return url.rstrip("/") + "/" if url else None


class CatalogueProxy(APIHandler):
    async def _forward(self, method: str, path: str, body: bytes | None = None):
        base, token = catalogue_url(), os.environ.get("JUPYTERHUB_API_TOKEN")
        if not base or not token:
            raise web.HTTPError(503, "The datasets catalogue is not available from this server")
        query = urlencode([(k, v[-1].decode()) for k, v in self.request.query_arguments.items()
                           if k in ("q", "tag", "file", "rows", "max_bytes")])
        url = f"{base}api/{path}" + (f"?{query}" if query else "")
        request = HTTPRequest(url, method=method, body=body, request_timeout=TIMEOUT, follow_redirects=False,
                              headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
        try:
            response = await AsyncHTTPClient().fetch(request)
            status, payload = response.code, response.body
        except HTTPClientError as e:
            status = e.code
            payload = e.response.body if e.response is not None and e.response.body else json.dumps(
                {"status": e.code, "message": str(e)}).encode()
        except OSError as e:
            raise web.HTTPError(502, f"The datasets catalogue cannot be reached: {e}") from None
        if status in (301, 302, 303, 307):  # the catalogue wants a login: the token was refused
            status, payload = 403, json.dumps({"status": 403, "message": "The catalogue refused this server's token"}).encode()
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(payload)

    @web.authenticated
    async def get(self, path):
        await self._forward("GET", path)

    @web.authenticated
    async def post(self, path):
        if path != "requests":
            raise web.HTTPError(405)
        await self._forward("POST", path, self.request.body or b"{}")


class InfoHandler(APIHandler):
    @web.authenticated
    def get(self):
        self.finish(json.dumps({"catalogue": bool(catalogue_url()),
                                "datasets_dir": os.environ.get("AISTUDIO_DATASETS_DIR", "/datasets")}))


def announcements_url() -> str | None:
    """The announcements service as this server reaches it (AISTUDIO_ANNOUNCEMENTS_URL, from the hub)."""
    url = os.environ.get("AISTUDIO_ANNOUNCEMENTS_URL")
    return url.rstrip("/") + "/" if url else None


class AnnouncementsHandler(APIHandler):
    """The current announcements for the JupyterLab notifications, asked with this server's token
    (the hub grants it access:services!service=announcements); only plain fields go back."""

    @web.authenticated
    async def get(self):
        base, token = announcements_url(), os.environ.get("JUPYTERHUB_API_TOKEN")
        if not base or not token:
            raise web.HTTPError(503, "The announcements service is not available from this server")
        request = HTTPRequest(f"{base}api/items", request_timeout=TIMEOUT, follow_redirects=False,
                              headers={"Authorization": f"token {token}"})
        try:
            response = await AsyncHTTPClient().fetch(request)
            data = json.loads(response.body)
        except HTTPClientError as e:
            raise web.HTTPError(502, f"The announcements service answered {e.code}") from None
        except (OSError, ValueError) as e:
            raise web.HTTPError(502, f"The announcements service cannot be reached: {e}") from None
        if response.code != 200:  # a redirect to a login: the token was refused
            raise web.HTTPError(502, "The announcements service refused this server's token")
        items = [{k: str(item.get(k) or "") for k in ("id", "kind", "title", "updated_at")}
                 for item in data.get("items", []) if isinstance(item, dict)]
        page = url_path_join(os.environ.get("JUPYTERHUB_BASE_URL", "/"), "services", "announcements") + "/"
        self.finish(json.dumps({"version": data.get("version"), "items": items, "page": page}))


def setup_handlers(web_app) -> None:
    base = url_path_join(web_app.settings["base_url"], "aistudio-datasets", "api")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "info"), InfoHandler),
        (url_path_join(base, "announcements"), AnnouncementsHandler),
        (url_path_join(base, PATHS), CatalogueProxy),
    ])
