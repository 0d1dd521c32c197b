"""Pages and JSON API of support requests (docs/support.md), and ``api/updates``: the
decisions on a member's support requests and scenario applications, for their notices.

Members ask (``support``) and follow their own requests (``support/ID``; another member's
is a 404). Staff hold the scope ``custom:announcements:support`` (a role given to
``announcements.support.staff_groups`` / ``staff_users``): the queue (``support/queue``),
triage, assignment, comments, state changes and ``support.csv``. The member is mailed at
each state change when mail is configured.
"""

from __future__ import annotations

import asyncio
import json
import time

from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ..services.spec import Role, access_scope
from . import support
from .scenarios import ScenarioStore
from .service import ENV_SUPPORT, ApiBase, Base, _id
from .support import KINDS, STATES, SUPPORT_SCOPE, SupportStore

SERVICE_NAME = "announcements"
STAFF_CACHE_SECONDS = 30


def settings(given: dict) -> dict:
    """The service's ``support`` setting (AISTUDIO_SUPPORT, see :func:`spec_parts`) with its defaults."""
    return {"staff_groups": list(given.get("staff_groups", [])), "staff_users": list(given.get("staff_users", [])),
            "public_url": (given.get("public_url") or "").rstrip("/")}


_pending: set = set()  # notices being mailed (kept so the tasks are not collected early)
_staff_cache: dict = {"at": 0.0, "names": None}


class SupportBase(Base):
    support: SupportStore

    @property
    def support_settings(self) -> dict:
        return settings(self.service.support)

    def require_staff(self):
        if not self.staff:
            raise web.HTTPError(403, f"only the support staff (scope {SUPPORT_SCOPE}) may do this")

    async def staff_names(self) -> set[str] | None:
        """Who may be assigned: staff_users and the members of the staff groups, as the hub
        tells them (cached briefly); None when the hub cannot say (any name is then taken)."""
        if _staff_cache["names"] is not None and time.monotonic() - _staff_cache["at"] < STAFF_CACHE_SECONDS:
            return _staff_cache["names"]
        names = set(self.support_settings["staff_users"])
        auth = self.hub_auth
        try:
            for group in self.support_settings["staff_groups"]:
                response = await AsyncHTTPClient().fetch(
                    url_path_join(auth.api_url, "groups", group),
                    headers={"Authorization": f"token {auth.api_token}"}, request_timeout=10)
                names |= set(json.loads(response.body).get("users") or [])
        except (HTTPClientError, OSError, ValueError) as e:
            self.service.log.warning("support staff of groups %s unknown: %s", self.support_settings["staff_groups"], e)
            return None
        _staff_cache.update(at=time.monotonic(), names=names)
        return names

    def link(self, path: str) -> str:
        base = self.support_settings["public_url"] or f"{self.request.protocol}://{self.request.host}"
        return base + self.prefix + path

    def notify_member(self, request: dict) -> None:
        """Mail the member the request's new state, in the background (never raises; nothing when mail is off)."""
        notifier = self.service.notifier
        if notifier is None:
            return
        subject, body = support.mail_for(request, self.link(f"support/{request['id']}"))
        task = asyncio.ensure_future(notifier.notify(request["user"], subject, body))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    async def change(self, request_id: int) -> dict:
        """A staff member's change or a member's comment, from the form or the JSON body."""
        data = self.payload()
        if not self.staff and set(data) - {"comment"}:
            self.require_staff()  # status, assignee...: a member may only add to the thread
        staff_names = await self.staff_names() if self.staff else None
        request, moved = self.support.update(request_id, self.user, data, staff=self.staff,
                                             staff_names=staff_names)
        if moved:
            self.notify_member(request)
        return request

    def status_filter(self) -> str | None:
        status = self.get_query_argument("status", "") or None
        if status and status not in STATES:
            raise support.BadInput(f"status: must be one of {', '.join(STATES)}")
        return status

    def render(self, template: str, **kwargs):
        super().render(template, kinds=KINDS, states=STATES,
                       slabels=support.STATE_LABELS, **kwargs)


# ------------------------------------------------------------------ pages


class SupportPage(SupportBase):
    """The member's requests and the form to ask for help."""

    @web.authenticated
    def get(self):
        self.render("support_list.html", requests=self.support.list(user=self.user), form={})

    @web.authenticated
    def post(self):
        request = self.support.create(self.user, self.payload())
        self.back_to(f"support/{request['id']}")


class SupportQueuePage(SupportBase):
    @web.authenticated
    async def get(self):
        self.require_staff()
        status = self.status_filter()
        assignee = self.get_query_argument("assignee", "") or None
        self.render("support_queue.html", requests=self.support.list(status=status, assignee=assignee),
                    status=status, assignee=assignee)


class SupportRequestPage(SupportBase):
    @web.authenticated
    async def get(self, request_id):
        request = self.support.get(_id(request_id), None if self.staff else self.user)
        staff_names = sorted(await self.staff_names() or []) if self.staff else []
        self.render("support_request.html", request=request, transitions=sorted(support.TRANSITIONS[request["status"]]),
                    staff_names=staff_names)

    @web.authenticated
    async def post(self, request_id):
        await self.change(_id(request_id))
        self.back_to(f"support/{request_id}")


class SupportCsv(SupportBase):
    @web.authenticated
    def get(self):
        self.require_staff()
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="support-requests.csv"')
        self.finish(self.support.csv())


# ------------------------------------------------------------------ JSON API


class SupportApi(SupportBase, ApiBase):
    @web.authenticated
    def get(self):
        """Staff: the queue (``?mine=1``: their own requests); members: their own requests."""
        status = self.status_filter()
        if self.staff and not self.get_query_argument("mine", ""):
            assignee = self.get_query_argument("assignee", "") or None
            self.send_json({"requests": self.support.list(status=status, assignee=assignee)})
            return
        self.send_json({"requests": self.support.list(user=self.user, status=status)})

    @web.authenticated
    def post(self):
        self.send_json(self.support.create(self.user, self.payload()), 201)


class SupportRequestApi(SupportBase, ApiBase):
    @web.authenticated
    def get(self, request_id):
        self.send_json(self.support.get(_id(request_id), None if self.staff else self.user))

    @web.authenticated
    async def patch(self, request_id):
        """Staff: ``{"status", "if_status", "assignee", "comment", "reason"}``; the member: ``{"comment"}``."""
        self.send_json(await self.change(_id(request_id)))


class UpdatesApi(SupportBase, ApiBase):
    """The decisions on the caller's support requests and scenario applications: what their
    JupyterLab notices show (each with the time it last changed)."""

    scenarios: ScenarioStore

    @web.authenticated
    def get(self):
        updates = [{"kind": "support", "id": r["id"], "title": f"{r['kind_label']}: {r['subject']}",
                    "status": r["status"], "status_label": r["status_label"], "updated_at": r["updated_at"],
                    "url": f"{self.prefix}support/{r['id']}"} for r in self.support.decisions(self.user)]
        updates += [{"kind": "scenario", "id": a["id"], "title": f"{a['scenario_title']}: {a['project']}",
                     "status": a["status"], "status_label": a["status_label"], "updated_at": a["updated_at"],
                     "url": f"{self.prefix}scenarios/applications/{a['id']}"} for a in self.scenarios.decisions(self.user)]
        self.send_json({"updates": updates})


def routes(args: dict) -> list[tuple]:
    """The support routes, for the service's ``handlers()``."""
    extra = {**args, "support": SupportStore(args["store"])}
    n = r"(\d{1,12})"
    return [
        ("support", SupportPage, extra),
        ("support/queue", SupportQueuePage, extra),
        (f"support/{n}", SupportRequestPage, extra),
        ("support.csv", SupportCsv, extra),
        ("api/support", SupportApi, extra),
        (f"api/support/{n}", SupportRequestApi, extra),
        ("api/updates", UpdatesApi, {**extra, "scenarios": ScenarioStore(args["store"])}),
    ]


def spec_parts(config: dict) -> dict:
    """What support adds to the service's spec: its settings, the staff's scope and role,
    the scope a login token may carry, and the service's right to read the staff groups
    (to offer their members for assignment)."""
    sup = config["announcements"]["support"]
    settings = {"staff_groups": list(sup["staff_groups"]), "staff_users": list(sup["staff_users"]),
                "public_url": (config.get("notifications") or {}).get("public_url") or ""}
    roles = [Role("support-staff", (SUPPORT_SCOPE, access_scope(SERVICE_NAME)),
                  groups=tuple(sup["staff_groups"]), users=tuple(sup["staff_users"]))]
    if sup["staff_groups"]:
        roles.append(Role("support-staff-lookup", tuple(f"read:groups!group={g}" for g in sup["staff_groups"]),
                          services=(SERVICE_NAME,)))
    return {
        "environment": {ENV_SUPPORT: json.dumps(settings)},
        "custom_scopes": {SUPPORT_SCOPE: {"description": "Support staff: see every support request, triage, "
                                                         "assign, comment and change its state; export CSV."}},
        "roles": tuple(roles),
        "client_scopes": (SUPPORT_SCOPE,),
    }
