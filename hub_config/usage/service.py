"""The usage page: a hub-managed service for admins at /services/usage/.

Shows GPUs in use per group against the quota policy and a chart of GPU-hours
per day. It authenticates through the hub (HubOAuth): only tokens with the
scope ``access:services!service=usage`` get in, which by default only admins
hold. Started by the hub (:func:`spec`) with its settings in the environment.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jinja2
from tornado import web
from traitlets import Unicode

from .. import config as studio_config
from ..profiles import InvalidProfiles, ProfileStore
from ..quotas import EMPTY_POLICY, period_start
from ..services.base import ServiceHandler, StudioService
from ..services.spec import ServiceSpec
from .store import UsageStore

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


class UsageHandler(ServiceHandler):
    store: UsageStore
    profiles: ProfileStore | None

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

    def wants_json(self) -> bool:
        return self.request.path.endswith("/api/summary") or super().wants_json()

    @web.authenticated
    def get(self, what=""):
        data = self.summary()
        if what == "api/summary":
            self.send_json(data)
            return
        peak = max([d["gpu_hours"] for d in data["daily"]] + [1e-9])
        self.finish(_templates.get_template("usage_page.html").render(
            user=self.user_name, peak=peak, hub_prefix=self.service.hub_url, **data,
        ))


class UsageService(StudioService):
    """The admins' usage page."""

    name = "usage"
    description = "GPU use per group and GPU-hours over time (admins)"
    default_port = 8010

    db_url = Unicode(help="SQLAlchemy URL of the usage records.").tag(config=True, env=ENV_DB_URL)
    profiles_dir = Unicode(
        "", help="Folder of the quota profiles, for the groups' caps (empty: none shown)."
    ).tag(config=True, env=ENV_PROFILES)
    openapi_path = str(Path(__file__).parent / "openapi.yaml")

    def handlers(self):
        try:
            profiles = ProfileStore(self.profiles_dir) if self.profiles_dir else None
        except InvalidProfiles:
            profiles = None
        return [(r"(api/summary)?", UsageHandler, {"store": UsageStore(self.db_url), "profiles": profiles})]


def spec(config: dict) -> ServiceSpec:
    """How the hub runs the usage page (admins reach it: they hold every access scope)."""
    return ServiceSpec(
        name=UsageService.name,
        description=UsageService.description,
        module=__name__,
        url=studio_config.service_url(config, config["usage"]["service_port"]),
        environment={ENV_DB_URL: studio_config.db_url(config, "usage"), ENV_PROFILES: config["profiles_dir"]},
    )


main = UsageService.launch_instance

if __name__ == "__main__":
    main()
