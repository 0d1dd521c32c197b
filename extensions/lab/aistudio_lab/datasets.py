"""The Datasets panel's handlers: a thin, authenticated pass-through to the hub's datasets
catalogue, and where the catalogue and the mounts are.

The catalogue answers for the server's user only (it checks the hub token, which is
the user's); this server never reads dataset files for the panel.
"""

from __future__ import annotations

import json
import os

from jupyter_server.base.handlers import APIHandler
from tornado import web

from .forward import forward

CATALOGUE_URL = "AISTUDIO_DATASETS_URL"  # the catalogue as this server reaches it, from the hub
DATASETS_DIR = "AISTUDIO_DATASETS_DIR"  # where the granted datasets are mounted, from the hub

# the catalogue's paths the panel may ask, under the routes' base
PATHS = r"(datasets|datasets/[a-z0-9-]{1,42}|datasets/[a-z0-9-]{1,42}/(?:schema|preview|snippet)|requestable|requests)"
QUERY = ("q", "tag", "file", "rows", "max_bytes")  # the query arguments passed on


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
