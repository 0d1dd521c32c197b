"""The usage pages: a hub-managed service at /services/usage/ for every member.

Every hub user may open it (the hub's ``user`` role holds ``access:services!service=usage``);
the service decides per request what the caller sees, from the ``admin`` flag of the
caller's hub model (HubOAuth's identify answer carries it for every token):

- members get "My usage": their servers of this quota period with their mean GPU
  utilisation, GPU-hours against their budget, a chart of their GPU-hours per day and a
  CSV of their records; the JSON behind it is ``api/users/NAME`` (their own name only);
- admins get the studio's page: GPUs in use per group against the quota policy, GPU-hours
  per day, GPU utilisation per group this period (``api/summary``), their own usage at
  ``mine``, and ``api/users/NAME`` for anyone.

Started by the hub (:func:`spec`) with its settings in the environment.
"""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jinja2
from tornado import web
from traitlets import Unicode

from .. import config as studio_config
from ..profiles import InvalidProfiles, ProfileStore
from ..quotas import EMPTY_POLICY, period_end, period_start
from ..services.base import NotFoundHandler, ServiceHandler, StudioService
from ..services.spec import ServiceSpec
from .store import UsageRow, UsageStore

ENV_DB_URL = "AISTUDIO_USAGE_DB_URL"
ENV_PROFILES = "AISTUDIO_PROFILES_DIR"
DAYS = 30
# a hub user name as JupyterHub accepts one (no "/", not only dots, no surrounding space) and
# no control characters; the same pattern is the name's in openapi.yaml
NAME_PATTERN = r"^(?!\.+$)[^/\s\x00-\x1f\x7f](?:[^/\x00-\x1f\x7f]{0,253}[^/\s\x00-\x1f\x7f])?$"
CSV_COLUMNS = ("id", "user", "server_name", "profile", "groups", "gpus", "gpu_type", "cpu", "memory_bytes",
               "started_at", "stopped_at", "hours", "gpu_hours_this_period", "gpu_util_mean")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'")

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=True
)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _shown_time(value: str | None) -> str:
    """An ISO time of the API as the pages show it (UTC)."""
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


_templates.filters["shown_time"] = _shown_time
_templates.filters["duration"] = _duration


def _hours_inside(row: UsageRow, since: float, until: float) -> float:
    """Hours of ``row`` inside [since, until) (a running row counts up to until)."""
    end = min(row.stopped_at if row.stopped_at is not None else until, until)
    return max(end - max(row.started_at, since), 0) / 3600


# ---------------------------------------------------------------------- the admins' summary


def current_use(store: UsageStore, policy) -> list[dict]:
    """GPUs and servers in use per group now, with the group's caps (None: no cap)."""
    def entry(name):
        return {"group": name, "servers": 0, "gpus": 0, "by_type": {}, "max_gpus": None, "max_servers": None}

    groups: dict[str, dict] = {}
    for server in store.active(fresh=True):
        for name in server.groups or ("(no group)",):
            g = groups.setdefault(name, entry(name))
            g["servers"] += 1
            g["gpus"] += server.gpus
            if server.gpus:
                g["by_type"][server.gpu_type or "gpu"] = g["by_type"].get(server.gpu_type or "gpu", 0) + server.gpus
    for name, pool in policy.group_pools.items():
        g = groups.setdefault(name, entry(name))
        g["max_gpus"] = pool.max_gpus
        g["max_servers"] = pool.max_servers
    return sorted(groups.values(), key=lambda g: (-g["gpus"], g["group"]))


def _days(days: int, now: float) -> list[datetime]:
    today = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return [today - timedelta(days=back) for back in range(days - 1, -1, -1)]


def daily_gpu_hours(store: UsageStore, days: int = DAYS, now: float | None = None) -> list[dict]:
    """GPU-hours of each of the last ``days`` days (UTC), oldest first."""
    now = time.time() if now is None else now
    out = []
    for start in _days(days, now):
        until = min((start + timedelta(days=1)).timestamp(), now)
        hours = store.gpu_hours(since=start.timestamp(), until=until)
        out.append({"day": start.strftime("%Y-%m-%d"), "gpu_hours": round(hours, 3)})
    return out


def group_utilisation(rows: list[UsageRow], since: float, now: float) -> list[dict]:
    """Per group, the GPU servers of the period since ``since``: their GPU-hours, and the mean
    of their ``gpu_util_mean`` weighted by each server's GPU-hours in the period (None: no
    server of the group was sampled). A server counts for every group of its member at launch."""
    groups: dict[str, dict] = {}
    for r in rows:
        if not r.gpus:
            continue
        hours = r.gpus * _hours_inside(r, since, now)
        for name in r.groups or ("(no group)",):
            g = groups.setdefault(name, {"group": name, "servers": 0, "gpu_hours": 0.0, "sampled_gpu_hours": 0.0,
                                         "_weighted": 0.0})
            g["servers"] += 1
            g["gpu_hours"] += hours
            if r.gpu_util_mean is not None:
                g["sampled_gpu_hours"] += hours
                g["_weighted"] += r.gpu_util_mean * hours
    out = []
    for g in sorted(groups.values(), key=lambda g: (-g["gpu_hours"], g["group"])):
        weighted = g.pop("_weighted")
        g["gpu_util_mean"] = round(weighted / g["sampled_gpu_hours"], 1) if g["sampled_gpu_hours"] > 0 else None
        g["gpu_hours"] = round(g["gpu_hours"], 3)
        g["sampled_gpu_hours"] = round(g["sampled_gpu_hours"], 3)
        out.append(g)
    return out


# ---------------------------------------------------------------------- one member's usage


def member_usage(store: UsageStore, policy, user: str, groups, now: float | None = None) -> dict:
    """What ``api/users/NAME`` answers: the period, GPU-hours against the member's budget
    (``policy.member_limits(user, groups)``), the member's servers of the period (newest
    first) and GPU-hours per day (UTC) of the last ``DAYS`` days."""
    now = time.time() if now is None else now
    start = period_start(policy.period, now)
    since = start.timestamp()
    days = _days(DAYS, now)
    rows = store.rows_of(user, min(since, days[0].timestamp()), now)
    in_period = [r for r in rows if r.stopped_at is None or r.stopped_at > since]
    servers = []
    for r in sorted(in_period, key=lambda r: (-r.started_at, -r.usage_id)):
        end = r.stopped_at if r.stopped_at is not None else now
        servers.append({
            "id": r.usage_id, "server_name": r.server_name, "profile": r.profile, "groups": list(r.groups),
            "gpus": r.gpus, "gpu_type": r.gpu_type, "cpu": r.cpu, "memory": r.memory,
            "started": _iso(r.started_at), "stopped": _iso(r.stopped_at), "running": r.stopped_at is None,
            "seconds": int(max(end - r.started_at, 0)),
            "gpu_hours": round(r.gpus * _hours_inside(r, since, now), 3),
            "gpu_util_mean": None if r.gpu_util_mean is None else round(r.gpu_util_mean, 1),
        })
    used = sum(r.gpus * _hours_inside(r, since, now) for r in in_period)
    budget = policy.member_limits(user, groups).gpu_hours
    daily = []
    for day in days:
        begin, until = day.timestamp(), min((day + timedelta(days=1)).timestamp(), now)
        hours = sum(r.gpus * _hours_inside(r, begin, until) for r in rows)
        daily.append({"day": day.strftime("%Y-%m-%d"), "gpu_hours": round(hours, 3)})
    return {
        "user": user,
        "period": {"name": policy.period, "start": start.strftime("%Y-%m-%d"),
                   "resets": period_end(policy.period, start).strftime("%Y-%m-%d")},
        "gpu_hours": {"used": round(used, 3), "budget": budget,
                      "left": None if budget is None else round(max(budget - used, 0.0), 3)},
        "servers": servers,
        "daily": daily,
    }


def usage_csv(data: dict) -> str:
    """The servers of :func:`member_usage` as CSV (a header, then one line per server)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for s in data["servers"]:
        row = [s["id"], data["user"], s["server_name"], s["profile"], ";".join(s["groups"]), s["gpus"],
               s["gpu_type"] or "", s["cpu"], s["memory"], s["started"], s["stopped"] or "",
               round(s["seconds"] / 3600, 3), s["gpu_hours"], "" if s["gpu_util_mean"] is None else s["gpu_util_mean"]]
        # cells starting with = + - @ are formulas to spreadsheets: neutralise them
        writer.writerow([f"'{c}" if isinstance(c, str) and c[:1] in ("=", "+", "-", "@", "\t", "\r") else c
                         for c in row])
    return out.getvalue()


# ---------------------------------------------------------------------- handlers


class Base(ServiceHandler):
    """Every page and API handler of the usage service: who is an admin, the policy, pages."""

    store: UsageStore
    profiles: ProfileStore | None

    def set_default_headers(self):
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("Referrer-Policy", "same-origin")

    @property
    def is_admin(self) -> bool:
        """A hub admin (the ``admin`` flag of the caller's hub model; a service never is)."""
        user = getattr(self, "_current_user", None)
        return bool(user and user.get("kind", "user") == "user" and user.get("admin"))

    def policy(self):
        return self.profiles.current().quotas if self.profiles else EMPTY_POLICY

    def require_admin(self, what: str):
        if not self.is_admin:
            raise web.HTTPError(403, f"only admins may see {what}; your own usage is at "
                                     f"{self.service.service_prefix}api/users/{self.user_name}")

    def usage_of(self, name: str) -> dict:
        """``name``'s usage, if the caller may see it: their own, or anyone's for admins."""
        if name != self.user_name and not self.is_admin:
            raise web.HTTPError(403, f"you may see only your own usage, not {name}'s")
        if name == self.user_name and self.current_user.get("kind", "user") == "user":
            groups = self.user_groups  # the member's hub groups now
        else:  # someone else's: the groups they had at their latest launch
            groups = self.store.latest_groups(name)
        return member_usage(self.store, self.policy(), name, groups)

    def summary(self) -> dict:
        policy = self.policy()
        now = time.time()
        start = period_start(policy.period, now)
        since = start.timestamp()
        return {
            "groups": current_use(self.store, policy),
            "daily": daily_gpu_hours(self.store, now=now),
            "period": policy.period,
            "period_start": start.strftime("%Y-%m-%d"),
            "period_gpu_hours": round(self.store.gpu_hours(since=since, until=now), 3),
            "utilisation": group_utilisation(self.store.rows(since=since, until=now), since, now),
        }

    def render(self, template: str, **kwargs):
        self.finish(_templates.get_template(template).render(
            prefix=self.service.service_prefix, hub_prefix=self.service.hub_url,
            user=(getattr(self, "_current_user", None) or {}).get("name"), admin=self.is_admin, **kwargs))

    def error_page(self, status: int, message: str) -> str:
        return _templates.get_template("error.html").render(
            status=status, message=message, prefix=self.service.service_prefix, hub_prefix=self.service.hub_url,
            user=(getattr(self, "_current_user", None) or {}).get("name"), admin=self.is_admin)


def _peak(daily: list[dict]) -> float:
    return max([d["gpu_hours"] for d in daily] + [0.0])


class HomePage(Base):
    """``/services/usage/``: the admins' page for admins, "My usage" for everyone else."""

    @web.authenticated
    def get(self):
        if self.is_admin:
            data = self.summary()
            self.render("usage_page.html", page="summary", peak=_peak(data["daily"]), **data)
        else:
            self.render_mine()

    def render_mine(self):
        data = self.usage_of(self.user_name)
        self.render("my_usage.html", page="mine", peak=_peak(data["daily"]), member=data.pop("user"), **data)


class MinePage(HomePage):
    """``/services/usage/mine``: the caller's own usage, admins included."""

    @web.authenticated
    def get(self):
        self.render_mine()


class SummaryApi(Base):
    api = True

    def get(self):
        self.require_admin("the studio's summary")
        self.send_json(self.summary())


class UserUsageApi(Base):
    """``api/users/NAME[?format=csv]``: a member's own usage; admins anyone's."""

    api = True

    def get(self, name: str):
        if not re.search(NAME_PATTERN, name):
            raise web.HTTPError(400, "name: not a user name of the hub")
        fmt = self.get_query_argument("format", "json")
        if fmt not in ("json", "csv"):
            raise web.HTTPError(400, f"format: {fmt!r} is not json or csv")
        data = self.usage_of(name)
        if fmt == "json":
            self.send_json(data)
            return
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Disposition",
                        f'attachment; filename="usage-{safe}-{data["period"]["start"]}.csv"')
        self.finish(usage_csv(data))


class NotFoundPage(NotFoundHandler, Base):
    """A path the service lacks: 404 (JSON under api/), a page in the hub's look otherwise."""

    async def prepare(self):
        try:  # the caller's name for the navigation bar, when there is one with access
            model = await self.hub_auth.get_user(self, sync=False)
            if model:
                self.current_user = self.check_hub_user(model)
        except Exception:  # no caller with access: the page names nobody
            pass
        await super().prepare()


class UsageService(StudioService):
    """The usage pages and API: every member's own, the studio's for admins."""

    name = "usage"
    description = "Your GPU-hours, budget and servers; GPU use per group and over time (admins)"
    default_port = 8010

    db_url = Unicode(help="SQLAlchemy URL of the usage records.").tag(config=True, env=ENV_DB_URL)
    profiles_dir = Unicode(
        "", help="Folder of the quota profiles, for the groups' caps and the members' budgets (empty: none)."
    ).tag(config=True, env=ENV_PROFILES)
    openapi_path = str(Path(__file__).parent / "openapi.yaml")

    def handlers(self):
        try:
            profiles = ProfileStore(self.profiles_dir) if self.profiles_dir else None
        except InvalidProfiles:
            profiles = None
        args = {"store": UsageStore(self.db_url), "profiles": profiles}
        return [
            ("", HomePage, args),
            ("mine", MinePage, args),
            ("api/summary", SummaryApi, args),
            ("api/users/([^/]+)", UserUsageApi, args),
        ]

    def make_app(self):
        app = super().make_app()
        app.settings["default_handler_class"] = NotFoundPage  # tornado reads it per request
        return app


def spec(config: dict) -> ServiceSpec:
    """How the hub runs the usage service: every member may open it (the service decides
    per request what they see)."""
    return ServiceSpec(
        name=UsageService.name,
        description=UsageService.description,
        module=__name__,
        url=studio_config.service_url(config, config["usage"]["service_port"]),
        environment={ENV_DB_URL: studio_config.db_url(config, "usage"), ENV_PROFILES: config["profiles_dir"]},
        every_user=True,
    )


main = UsageService.launch_instance

if __name__ == "__main__":
    main()
