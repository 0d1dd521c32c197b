"""The Datasets panel's handlers: a thin, authenticated pass-through to the hub's datasets
catalogue, and where the catalogue and the mounts are.

The catalogue answers for the server's user only (it checks the hub token, which is
the user's); this server never reads dataset files for the panel.

Whether a granted dataset can be read here is this server's own question (`AccessHandler`):
a grant made after the server started reaches it only with a restart (the account's
groups, the links and the pod's volumes are set when a server starts), which
`RestartHandler` begins by asking the hub to stop this server.
"""

from __future__ import annotations

import json
import os

from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.ioloop import IOLoop

from .forward import forward
from .queue import HUB_BASE_URL, hub_api_url
from .runtime import server_path

CATALOGUE_URL = "AISTUDIO_DATASETS_URL"  # the catalogue as this server reaches it, from the hub
DATASETS_DIR = "AISTUDIO_DATASETS_DIR"  # where the granted datasets are mounted, from the hub

# the catalogue's paths the panel may ask, under the routes' base
PATHS = r"(datasets|datasets/[a-z0-9-]{1,42}|datasets/[a-z0-9-]{1,42}/(?:schema|preview|snippet)|requestable|requests)"
QUERY = ("q", "tag", "limit", "cursor", "file", "rows", "max_bytes")  # the query arguments passed on
RESTART_DELAY = 0.5  # seconds between answering the browser and asking the hub to stop this server


def catalogue_url() -> str | None:
    """The catalogue's address, from the environment the hub gave this server."""
    url = os.environ.get(CATALOGUE_URL)
    return url.rstrip("/") + "/" if url else None


class CatalogueProxy(APIHandler):
    """Relays the catalogue's status and body; 403 when it refused the token."""

    async def _forward(self, method: str, path: str, body: bytes | None = None):
        answer = await forward("The datasets catalogue", catalogue_url(), f"api/{path}", method=method, body=body,
                               arguments=self.request.query_arguments, keep=QUERY, content_type="application/json")
        status, payload = answer.status, answer.body
        if answer.refused:
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
                                "datasets_dir": os.environ.get(DATASETS_DIR, "/datasets")}))


def datasets_dir() -> str:
    return os.environ.get(DATASETS_DIR, "/datasets")


def readable(path: str) -> bool:
    """Whether this server's processes can list and read the folder (or file) at ``path``."""
    return os.path.exists(path) and os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0))


class AccessHandler(APIHandler):
    """GET access/NAME: where the dataset is mounted and whether this server can read it now."""

    @web.authenticated
    def get(self, name):
        path = os.path.join(datasets_dir(), name)
        self.finish(json.dumps({"name": name, "path": path, "readable": readable(path)}))


class RestartHandler(APIHandler):
    """POST restart: stop this server through the hub (the member starts it again from the hub's
    home page, which the answer names); 503 when the hub did not say whose server this is."""

    @web.authenticated
    async def post(self):
        path, api = server_path(), hub_api_url()
        if not path or not api:
            raise web.HTTPError(503, "The hub's API is not available from this server")
        home = os.environ.get(HUB_BASE_URL, "/").rstrip("/") + "/hub/home"
        # answered first: the hub ends this process while it stops the server
        self.set_status(202)
        self.finish(json.dumps({"stopping": True, "next": home}))
        IOLoop.current().call_later(RESTART_DELAY, lambda: IOLoop.current().spawn_callback(self._stop, path, api))

    async def _stop(self, path: str, api: str) -> None:
        answer = await forward("The hub's API", api, path, method="DELETE")
        if not answer.ok:
            self.log.warning("aistudio: stopping this server for a restart failed: %s %s", answer.status,
                             answer.body[:200])
