"""The one forwarder to the hub-side services (and the hub's own API), asked with this
server's own hub token.

The hub gives each server its token (JUPYTERHUB_API_TOKEN) and the addresses of the
services it may ask; the services check that token, so they answer for the server's
user only. Redirects are never followed: a hub service that refuses a token sends the
caller to the hub's login, which `Answer.refused` tells.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

TOKEN = "JUPYTERHUB_API_TOKEN"  # this server's own hub token, from the hub
TIMEOUT = 30  # seconds for one request to a service
REDIRECTS = (301, 302, 303, 307)  # to the hub's login: the token was refused


@dataclass(frozen=True)
class Answer:
    """What the service answered: its status and body. For an error status without a body,
    the body is a JSON {"status", "message"} with the client's message."""

    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        return self.status in REDIRECTS


async def forward(service: str, base: str | None, path: str, *, method: str = "GET", body: bytes | None = None,
                  arguments: Mapping[str, list[bytes]] | None = None, keep: Collection[str] = (),
                  content_type: str | None = None) -> Answer:
    """Ask `base` + `path` with this server's token, passing on the query `arguments` (those
    of the incoming request) named in `keep`, the last value of each.

    Raises 503 "<service> is not available from this server" when the address or the
    token is unset, 502 "<service> cannot be reached: <error>" when the connection fails;
    every answer of the service (error statuses and redirects included) comes back.
    """
    token = os.environ.get(TOKEN)
    if not base or not token:
        raise web.HTTPError(503, f"{service} is not available from this server")
    query = urlencode([(k, v[-1].decode()) for k, v in (arguments or {}).items() if k in keep])
    headers = {"Authorization": f"token {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    request = HTTPRequest(f"{base}{path}" + (f"?{query}" if query else ""), method=method, body=body,
                          request_timeout=TIMEOUT, follow_redirects=False, headers=headers)
    try:
        response = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as e:
        payload = e.response.body if e.response is not None and e.response.body else json.dumps(
            {"status": e.code, "message": str(e)}).encode()
        return Answer(e.code, payload)
    except OSError as e:
        raise web.HTTPError(502, f"{service} cannot be reached: {e}") from None
    return Answer(response.code, response.body)
