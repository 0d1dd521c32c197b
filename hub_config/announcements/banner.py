"""The banner on the hub's home page, rendered by the hub (``templates/hub/announcements_banner.html``, which the home page of ``lifecycle/templates/home.html`` includes).

The hub asks the service's JSON API over loopback with the service's own API token
(a role lets the service reach itself), keeps the answer a few seconds, and passes
only plain fields to its template, which escapes them (JupyterHub's Jinja has
autoescape on). When the service does not answer, the banner is left out."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from jupyterhub.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient

log = logging.getLogger("aistudio.announcements.banner")
NEW_FOR = timedelta(days=7)


def _when(value) -> str:
    """A seminar's start or a call's deadline as members read it: Tue 01 Dec 14:00 (UTC+01:00)."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return ""
    return f"{parsed:%a %d %b %Y %H:%M} ({parsed.tzname()})"


def _entry(item: dict, prefix: str, now: datetime) -> dict:
    published = item.get("publish_at") or item.get("created_at")
    try:
        new = now - datetime.fromisoformat(published) < NEW_FOR
    except (TypeError, ValueError):
        new = False
    when = item.get("start") if item.get("kind") == "seminar" else item.get("deadline")
    return {
        "id": int(item["id"]),
        "kind": str(item.get("kind", "")),
        "title": str(item.get("title", "")),
        "summary": str(item.get("summary", "")),
        "pinned": bool(item.get("pinned")),
        "new": new,
        "when": _when(when),
        "url": url_path_join(prefix, f"items/{int(item['id'])}"),
    }


class Banner:
    """``await banner.current()`` in a template of the hub: the current announcements."""

    def __init__(self, service_url: str, prefix: str, token: str, ttl: float = 5.0, timeout: float = 1.0, limit: int = 5):
        self.url = url_path_join(service_url.rstrip("/") + prefix, "api/items")
        self.prefix, self.token, self.ttl, self.timeout, self.limit = prefix, token, ttl, timeout, limit
        self._cached: list[dict] | None = None
        self._at = 0.0

    async def current(self) -> list[dict]:
        if self._cached is not None and time.monotonic() - self._at < self.ttl:
            return self._cached
        try:
            response = await AsyncHTTPClient().fetch(
                self.url, headers={"Authorization": f"token {self.token}", "Accept": "application/json"},
                connect_timeout=self.timeout, request_timeout=self.timeout, follow_redirects=False,
            )
            now = datetime.now(timezone.utc)
            items = [_entry(i, self.prefix, now) for i in json.loads(response.body)["items"][: self.limit]]
        except Exception as e:  # the hub page renders without the banner
            log.warning("announcements banner: %s did not answer: %s", self.url, e)
            return self._cached or []
        self._cached, self._at = items, time.monotonic()
        return items

    @property
    def all_url(self) -> str:
        return self.prefix


HUB_TEMPLATES = Path(__file__).parent / "templates" / "hub"


def hub_pages(config: dict, spec) -> dict:
    """The hub's settings that put the banner on its home page: our banner template and the
    :class:`Banner` it renders, which asks the service with the service's own token."""
    prefix = config["hub"]["base_url"].rstrip("/") + f"/services/{spec.name}/"
    return {
        "template_paths": [str(HUB_TEMPLATES)],
        "template_vars": {"announcements": Banner(spec.url, prefix, spec.api_token)},
    }
