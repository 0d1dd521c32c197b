"""The usage page: a hub-managed service for admins at /services/usage/.

Shows GPUs in use per group against the quota policy and a chart of GPU-hours
per day. It authenticates through the hub (HubOAuth): only tokens with the
scope ``access:services!service=usage`` get in, which by default only admins
hold. Started by the hub with the settings in its environment.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jinja2
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import ioloop, web

from .config import listen_address
from .profiles import InvalidProfiles, ProfileStore
from .quotas import EMPTY_POLICY, period_start
from .usage import UsageStore

ENV_DB_URL = "AISTUDIO_USAGE_DB_URL"
ENV_PROFILES = "AISTUDIO_PROFILES_DIR"
DAYS = 30

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=True
)


def current_use(store: UsageStore, policy) -> list[dict]:
    """GPUs and servers in use per group now, with the group's caps."""
    groups: dict[str, dict] = {}
    for server in store.active(fresh=True):
        for name in server.groups or ("(no group)",):
            g = groups.setdefault(name, {"group": name, "servers": 0, "gpus": 0, "by_type": {}})
            g["servers"] += 1
            g["gpus"] += server.gpus
            if server.gpus:
                g["by_type"][server.gpu_type or "gpu"] = g["by_type"].get(server.gpu_type or "gpu", 0) + server.gpus
    for name, pool in policy.group_pools.items():
        g = groups.setdefault(name, {"group": name, "servers": 0, "gpus": 0, "by_type": {}})
        g["max_gpus"] = pool.max_gpus
        g["max_servers"] = pool.max_servers
    return sorted(groups.values(), key=lambda g: (-g["gpus"], g["group"]))


def daily_gpu_hours(store: UsageStore, days: int = DAYS, now: float | None = None) -> list[dict]:
    """GPU-hours of each of the last ``days`` days (UTC), oldest first."""
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    for back in range(days - 1, -1, -1):
        start = today - timedelta(days=back)
        until = min((start + timedelta(days=1)).timestamp(), now)
        hours = store.gpu_hours(since=start.timestamp(), until=until)
        out.append({"day": start.strftime("%Y-%m-%d"), "gpu_hours": round(hours, 3)})
    return out


class UsageHandler(HubOAuthenticated, web.RequestHandler):
    def initialize(self, store: UsageStore, profiles: ProfileStore | None):
        self.store, self.profiles = store, profiles

    def summary(self) -> dict:
        policy = self.profiles.current().quotas if self.profiles else EMPTY_POLICY
        since = period_start(policy.period)
        return {
            "groups": current_use(self.store, policy),
            "daily": daily_gpu_hours(self.store),
            "period": policy.period,
            "period_start": since.strftime("%Y-%m-%d"),
            "period_gpu_hours": round(self.store.gpu_hours(since=since.timestamp()), 3),
        }

    @web.authenticated
    def get(self, what=""):
        data = self.summary()
        if what == "api/summary":
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(data))
            return
        peak = max([d["gpu_hours"] for d in data["daily"]] + [1e-9])
        self.finish(_templates.get_template("usage_page.html").render(
            user=self.current_user["name"], peak=peak, hub_prefix=os.environ.get("JUPYTERHUB_BASE_URL", "/") + "hub/",
            **data,
        ))


def make_app() -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/usage/")
    store = UsageStore(os.environ[ENV_DB_URL])
    try:
        profiles = ProfileStore(os.environ[ENV_PROFILES]) if os.environ.get(ENV_PROFILES) else None
    except InvalidProfiles:
        profiles = None
    args = {"store": store, "profiles": profiles}
    return web.Application(
        [
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            (url_path_join(prefix, r"(api/summary)?"), UsageHandler, args),
        ],
        cookie_secret=os.urandom(32),
    )


def main():
    url = os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8010")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    make_app().listen(port, listen_address(url))
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
