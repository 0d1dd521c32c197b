"""The announcements service: a hub-managed JupyterHub service at /services/announcements/.

Members (any hub user: the hub's ``user`` role holds ``access:services!service=announcements``)
read, register for seminars and apply to incubation calls. Organisers hold the custom
scope ``custom:announcements:write`` (a role given to the organiser groups); the
service's OAuth client may carry it, so the token of a browser login has it exactly
when the member does. Every handler checks it on the server for every request.

HTML pages post forms with JupyterHub's XSRF token; the JSON API takes the hub's API
tokens (``Authorization: token ...``) or the page's cookie with an ``X-XSRFToken`` header.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import jinja2
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets import Any, Bool, Dict, Int, Unicode, default

from .. import config as studio_config
from .. import notifications
from ..services.base import ServiceHandler, StudioService
from ..services.spec import Role, ServiceSpec, access_scope
from . import feeds
from .content import APPLICATION_FIELDS, APPLICATION_STATES, BY_KIND, KINDS, STATE_LABELS, BadInput
from .residency import REVIEW_SCOPE
from .support import SUPPORT_SCOPE
from .store import Conflict, NotFound, Store

WRITE_SCOPE = "custom:announcements:write"
ENV_DB_URL = "AISTUDIO_ANNOUNCEMENTS_DB_URL"
ENV_BODY_MAX = "AISTUDIO_ANNOUNCEMENTS_BODY_MAX"
ENV_TIMEZONE = "AISTUDIO_ANNOUNCEMENTS_TIMEZONE"
ENV_DEMO = "AISTUDIO_ANNOUNCEMENTS_DEMO"
ENV_RESIDENCY = "AISTUDIO_RESIDENCY"
ENV_SUPPORT = "AISTUDIO_SUPPORT"
# members' servers find the service here (JupyterLab's notices of new items read it)
SERVER_URL_ENV = "AISTUDIO_ANNOUNCEMENTS_URL"
MAX_REQUEST_BYTES = 1024 * 1024
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'")

STATIC = str(Path(__file__).parent / "static")
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=True,
)


def local_input(value: str | None, tz: str) -> str:
    """An ISO time from the API as the value of a datetime-local input, in the item's zone."""
    if not value:
        return ""
    from datetime import datetime

    return datetime.fromisoformat(value).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def shown(value: str | None) -> str:
    if not value:
        return ""
    from datetime import datetime

    parsed = datetime.fromisoformat(value)
    return parsed.strftime("%a %d %b %Y, %H:%M ") + (parsed.tzname() or "")


_templates.filters["local_input"] = local_input
_templates.filters["shown"] = shown


class Base(ServiceHandler):
    """Shared by every page and API handler: forms, XSRF, pages, the organiser check."""

    error_statuses = {BadInput: 400, NotFound: 404, Conflict: 409}
    store: Store

    def set_default_headers(self):
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("Referrer-Policy", "same-origin")

    @property
    def prefix(self) -> str:
        return self.service.service_prefix

    async def prepare(self):
        await super().prepare()
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            # cookie logins must send JupyterHub's XSRF token; API tokens need none
            if self.current_user is None:
                raise web.HTTPError(403, "log in to the hub first")
            self.check_xsrf_cookie()
        if len(self.request.body or b"") > MAX_REQUEST_BYTES:
            raise web.HTTPError(400, f"the request is larger than {MAX_REQUEST_BYTES} bytes")

    @property
    def user(self) -> str:
        return self.user_name

    @property
    def organiser(self) -> bool:
        return WRITE_SCOPE in self.user_scopes

    @property
    def reviewer(self) -> bool:
        """Reviews residency applications (public pages have no caller)."""
        return self.current_user is not None and REVIEW_SCOPE in self.user_scopes

    @property
    def staff(self) -> bool:
        """Support staff: triage members' support requests."""
        return self.current_user is not None and SUPPORT_SCOPE in self.user_scopes

    def require_organiser(self):
        if not self.organiser:
            raise web.HTTPError(403, f"only organisers (scope {WRITE_SCOPE}) may do this")

    def payload(self) -> dict:
        """The request's fields: a JSON object, or a form's fields (without _xsrf)."""
        ctype = self.request.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            try:
                data = json.loads(self.request.body or b"{}")
            except (ValueError, UnicodeDecodeError):
                raise BadInput("the request body is not valid JSON") from None
            if not isinstance(data, dict):
                raise BadInput("the request body must be a JSON object")
            return data
        return {k: self.get_body_argument(k) for k in self.request.body_arguments if k != "_xsrf"}

    def render(self, template: str, **kwargs):
        self.finish(_templates.get_template(template).render(
            prefix=self.prefix, hub_prefix=self.service.hub_url, user=self.user, organiser=self.organiser,
            reviewer=self.reviewer, staff=self.staff,  # the navigation links their queues
            xsrf_form_html=self.xsrf_form_html, labels=STATE_LABELS, **kwargs,
        ))

    def error_page(self, status: int, message: str) -> str:
        return _templates.get_template("error.html").render(
            status=status, message=message, prefix=self.prefix, hub_prefix=self.service.hub_url)

    def back_to(self, url: str):
        """After a form post: back to a page of this service (never elsewhere)."""
        self.redirect(url_path_join(self.prefix, url))


def _id(value: str) -> int:
    return int(value)


# ------------------------------------------------------------------ pages


class IndexPage(Base):
    @web.authenticated
    def get(self):
        current, _ = self.store.current(self.prefix)
        items = self.store.all_items(self.prefix) if self.organiser else current
        self.render("index.html", items=items, current_ids={i["id"] for i in current},
                    mine=self.store.my_registrations(self.user), kinds=KINDS)


class NewItemPage(Base):
    @web.authenticated
    def get(self):
        self.require_organiser()
        kind = self.get_query_argument("kind", "news")
        if kind not in KINDS:
            raise BadInput(f"kind: must be one of {', '.join(KINDS)}")
        self.render("edit.html", item={"kind": kind, "timezone": self.store.default_tz}, fields=BY_KIND[kind], new=True)

    @web.authenticated
    def post(self):
        self.require_organiser()
        item = self.store.create(self.payload(), self.user, self.prefix)
        self.back_to(f"items/{item['id']}")


class ItemPage(Base):
    @web.authenticated
    def get(self, item_id):
        item = self.store.get(_id(item_id), organiser=self.organiser, prefix=self.prefix)
        context = {"item": item, "registration": None, "application": None, "registrations": [], "applications": []}
        if item["kind"] == "seminar":
            context["registration"] = self.store.registration(item["id"], self.user)
            if self.organiser:
                context["registrations"] = self.store.registrations(item["id"])
        if item["kind"] == "call":
            mine = self.store.applications(user=self.user, call_id=item["id"])
            context["application"] = mine[0] if mine else None
            if self.organiser:
                context["applications"] = self.store.applications(call_id=item["id"])
        self.render("item.html", fields=APPLICATION_FIELDS, **context)

    @web.authenticated
    def post(self, item_id):
        self.require_organiser()
        data = self.payload()
        data.setdefault("draft", "off")
        data.setdefault("pinned", "off")
        self.store.update(_id(item_id), data, self.user, self.prefix)
        self.back_to(f"items/{item_id}")


class EditItemPage(Base):
    @web.authenticated
    def get(self, item_id):
        self.require_organiser()
        item = self.store.get(_id(item_id), organiser=True, prefix=self.prefix)
        self.render("edit.html", item=item, fields=BY_KIND[item["kind"]], new=False)


class ItemAction(Base):
    """Form posts on an item: delete (organisers), register, cancel, apply (members)."""

    @web.authenticated
    def post(self, item_id, action):
        item_id = _id(item_id)
        if action == "delete":
            self.require_organiser()
            self.store.delete(item_id)
            self.back_to("")
            return
        if action == "register":
            self.store.register(item_id, self.user)
        elif action == "cancel":
            self.store.cancel(item_id, self.user)
        elif action == "apply":
            self.store.apply(item_id, self.user, self.payload())
        self.back_to(f"items/{item_id}")


class ReviewPage(Base):
    @web.authenticated
    def get(self):
        self.require_organiser()
        status = self.get_query_argument("status", "") or None
        if status and status not in APPLICATION_STATES:
            raise BadInput(f"status: must be one of {', '.join(APPLICATION_STATES)}")
        self.render("review.html", applications=self.store.applications(status=status), status=status,
                    states=APPLICATION_STATES)


class ApplicationPage(Base):
    @web.authenticated
    def get(self, app_id):
        app = self.store.application(_id(app_id), None if self.organiser else self.user)
        self.render("application.html", app=app, states=APPLICATION_STATES, fields=APPLICATION_FIELDS)

    @web.authenticated
    def post(self, app_id):
        data = self.payload()
        if "status" in data or "comment" in data:
            self.require_organiser()
            self.store.review(_id(app_id), self.user, data)
        else:
            self.store.resubmit(_id(app_id), self.user, data)
        self.back_to(f"applications/{app_id}")


class MinePage(Base):
    @web.authenticated
    def get(self):
        regs = self.store.my_registrations(self.user)
        seminars = []
        for item_id, status in regs.items():
            try:
                seminars.append((self.store.get(item_id, organiser=False, prefix=self.prefix),
                                 self.store.registration(item_id, self.user)))
            except NotFound:
                pass
        self.render("mine.html", applications=self.store.applications(user=self.user), seminars=seminars)


# ------------------------------------------------------------------ feeds and files


class EventIcs(Base):
    @web.authenticated
    def get(self, item_id):
        item = self.store.raw_item(_id(item_id), organiser=self.organiser)
        if item.kind != "seminar":
            raise NotFound(f"no seminar {item_id}")
        self.set_header("Content-Type", "text/calendar; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="seminar-{item.id}.ics"')
        self.finish(feeds.calendar([item], self.public_base(), self.domain(), name=item.title))

    def public_base(self) -> str:
        return f"{self.request.protocol}://{self.request.host}{self.prefix}"

    def domain(self) -> str:
        return urlparse(self.public_base()).hostname or "aistudio"


class CalendarIcs(EventIcs):
    @web.authenticated
    def get(self):
        self.set_header("Content-Type", "text/calendar; charset=utf-8")
        self.finish(feeds.calendar(self.store.upcoming_seminars(), self.public_base(), self.domain()))


class AtomFeed(EventIcs):
    @web.authenticated
    def get(self):
        items, _ = self.store.current(self.prefix)
        base = self.public_base()
        self.set_header("Content-Type", "application/atom+xml; charset=utf-8")
        self.finish(feeds.atom(items, base, base + "feed.atom"))


class ApplicationsCsv(Base):
    @web.authenticated
    def get(self):
        self.require_organiser()
        call = self.get_query_argument("call", "") or None
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="applications.csv"')
        self.finish(self.store.applications_csv(_id(call) if call and call.isdigit() else None))


# ------------------------------------------------------------------ JSON API


class ApiBase(Base):
    api = True


class MeApi(ApiBase):
    @web.authenticated
    def get(self):
        self.send_json({"name": self.user, "organiser": self.organiser, "version": self.store.version})


class ItemsApi(ApiBase):
    @web.authenticated
    def get(self):
        if self.get_query_argument("all", "") and self.organiser:
            self.send_json({"items": self.store.all_items(self.prefix), "version": self.store.version})
            return
        _, body = self.store.current(self.prefix)
        self.send_json(body)

    @web.authenticated
    def post(self):
        self.require_organiser()
        self.send_json(self.store.create(self.payload(), self.user, self.prefix), 201)


class ItemApi(ApiBase):
    @web.authenticated
    def get(self, item_id):
        self.send_json(self.store.get(_id(item_id), organiser=self.organiser, prefix=self.prefix))

    @web.authenticated
    def patch(self, item_id):
        self.require_organiser()
        self.send_json(self.store.update(_id(item_id), self.payload(), self.user, self.prefix))

    @web.authenticated
    def delete(self, item_id):
        self.require_organiser()
        self.store.delete(_id(item_id))
        self.set_status(204)
        self.finish()


class RegistrationApi(ApiBase):
    @web.authenticated
    def get(self, item_id):
        self.store.get(_id(item_id), organiser=self.organiser)
        self.send_json(self.store.registration(_id(item_id), self.user))

    @web.authenticated
    def post(self, item_id):
        result = self.store.register(_id(item_id), self.user)
        self.send_json(result, 201 if result.pop("new") else 200)

    @web.authenticated
    def delete(self, item_id):
        self.send_json(self.store.cancel(_id(item_id), self.user))


class RegistrationsApi(ApiBase):
    @web.authenticated
    def get(self, item_id):
        self.require_organiser()
        self.store.get(_id(item_id), organiser=True)
        self.send_json({"registrations": self.store.registrations(_id(item_id))})


class CallApplicationsApi(ApiBase):
    @web.authenticated
    def get(self, item_id):
        self.require_organiser()
        self.send_json({"applications": self.store.applications(call_id=_id(item_id))})

    @web.authenticated
    def post(self, item_id):
        self.send_json(self.store.apply(_id(item_id), self.user, self.payload()), 201)


class ApplicationsApi(ApiBase):
    @web.authenticated
    def get(self):
        status = self.get_query_argument("status", "") or None
        if status and status not in APPLICATION_STATES:
            raise BadInput(f"status: must be one of {', '.join(APPLICATION_STATES)}")
        if self.get_query_argument("mine", ""):
            self.send_json({"applications": self.store.applications(user=self.user, status=status)})
            return
        self.require_organiser()
        self.send_json({"applications": self.store.applications(status=status)})


class ApplicationApi(ApiBase):
    @web.authenticated
    def get(self, app_id):
        self.send_json(self.store.application(_id(app_id), None if self.organiser else self.user))

    @web.authenticated
    def patch(self, app_id):
        """Organisers: ``{"status": ..., "comment": ...}``; the applicant: new answers after needs_info."""
        data = self.payload()
        if "status" in data or "comment" in data:
            self.require_organiser()
            self.send_json(self.store.review(_id(app_id), self.user, data))
        else:
            self.send_json(self.store.resubmit(_id(app_id), self.user, data))


# ------------------------------------------------------------------ the service


class AnnouncementsService(StudioService):
    """Seminars, the incubation programme and news."""

    name = "announcements"
    description = "Seminars, the incubation programme and news"
    default_port = 8020

    db_url = Unicode(help="SQLAlchemy URL of the announcements database.").tag(config=True, env=ENV_DB_URL)
    body_max = Int(20_000, help="Longest item body, in characters.").tag(config=True, env=ENV_BODY_MAX)
    timezone = Unicode("UTC", help="Time zone of new items and of times without one.").tag(config=True, env=ENV_TIMEZONE)
    demo = Bool(False, help="Seed the demo announcements at start (demo.py): once, and kept ahead in time.").tag(
        config=True, env=ENV_DEMO)

    residency = Dict(help=(
        "Residency applications' settings (JSON): group, invitations, invitation_days, per_hour, public_url, "
        "reserved, login_url; see residency_handlers.spec_parts.")).tag(config=True, env=ENV_RESIDENCY)
    support = Dict(help=(
        "Support requests' settings (JSON): staff_groups, staff_users, public_url; see "
        "support_handlers.spec_parts.")).tag(config=True, env=ENV_SUPPORT)

    store = Any(help="The store (made from db_url when not given).")
    notifier = Any(None, allow_none=True, help=(
        "The studio's notifier (hub_config.notifications), from the settings the hub gives in "
        "AISTUDIO_NOTIFICATIONS; None: mail is off."))
    openapi_path = str(Path(__file__).parent / "openapi.yaml")

    @default("store")
    def _default_store(self):
        return Store(self.db_url, body_max=self.body_max, default_tz=self.timezone)

    @default("notifier")
    def _default_notifier(self):
        return notifications.notifier_from_environment()

    def handlers(self):
        args = {"store": self.store}
        n = r"(\d{1,12})"
        return [
            ("", IndexPage, args),
            ("items/new", NewItemPage, args),
            (f"items/{n}", ItemPage, args),
            (f"items/{n}/edit", EditItemPage, args),
            (f"items/{n}/(delete|register|cancel|apply)", ItemAction, args),
            (f"items/{n}/event.ics", EventIcs, args),
            ("calendar.ics", CalendarIcs, args),
            ("feed.atom", AtomFeed, args),
            ("review", ReviewPage, args),
            ("mine", MinePage, args),
            (f"applications/{n}", ApplicationPage, args),
            ("applications.csv", ApplicationsCsv, args),
            ("api/me", MeApi, args),
            ("api/items", ItemsApi, args),
            (f"api/items/{n}", ItemApi, args),
            (f"api/items/{n}/registration", RegistrationApi, args),
            (f"api/items/{n}/registrations", RegistrationsApi, args),
            (f"api/items/{n}/applications", CallApplicationsApi, args),
            ("api/applications", ApplicationsApi, args),
            (f"api/applications/{n}", ApplicationApi, args),
            *programme("residency_handlers").routes(args, self.residency),
            *programme("support_handlers").routes(args),
            *programme("scenario_handlers").routes(args),
        ]

    def start(self):
        if self.demo:
            from . import demo

            try:
                seeded = demo.seed(self.store)
            except Exception:  # the service runs without its demo content rather than not at all
                self.log.exception("demo announcements could not be added")
            else:
                if seeded["created"] or seeded["moved"]:
                    self.log.info("demo announcements: added %s; moved forward %s",
                                  seeded["created"] or "none", seeded["moved"] or "none")
        super().start()

    def make_app(self):
        app = super().make_app()
        app.add_handlers(".*$", [(url_path_join(self.service_prefix, "static/(.*)"), web.StaticFileHandler,
                                  {"path": STATIC})])
        return app

    def tornado_settings(self):
        return {"max_body_size": 4 * MAX_REQUEST_BYTES, "static_path": STATIC,
                "static_url_prefix": url_path_join(self.service_prefix, "static/")}


def programme(module: str):
    """A module of the programme's pages and API: residency_handlers, support_handlers,
    scenario_handlers (imported late: they build on this module's ``Base``)."""
    return importlib.import_module(f".{module}", __package__)


def spec(config: dict, token: str) -> ServiceSpec | None:
    """The service for the hub: every user may read it; the organiser groups hold the write
    scope through a role, and the service's OAuth client may carry it, so a member's login
    token has it exactly when the member does. ``token``: the service's API token, which
    the hub's banner uses too."""
    ann = config["announcements"]
    if not ann["enabled"]:
        return None
    residency = programme("residency_handlers").spec_parts(config)
    support = programme("support_handlers").spec_parts(config)
    name = AnnouncementsService.name
    return ServiceSpec(
        name=name,
        description=AnnouncementsService.description,
        module=__name__,
        url=ann["url"] or studio_config.service_url(config, ann["service_port"]),
        api_token=token,
        environment={
            ENV_DB_URL: studio_config.db_url(config, "announcements"),
            ENV_TIMEZONE: ann["timezone"],
            ENV_BODY_MAX: str(ann["max_body_chars"]),
            ENV_DEMO: "true" if ann["demo"] else "false",
            **notifications.service_environment(config),
            **residency["environment"],
            **support["environment"],
        },
        every_user=True,
        oauth_client_scopes=(WRITE_SCOPE, *residency["client_scopes"], *support["client_scopes"]),
        custom_scopes={WRITE_SCOPE: {
            "description": "Create, edit and delete announcements; review incubation applications."},
            **residency["custom_scopes"], **support["custom_scopes"]},
        roles=(
            Role("announcements-organisers", (WRITE_SCOPE, access_scope(name)),
                 groups=tuple(ann["organiser_groups"]), users=tuple(ann["organiser_users"])),
            Role("announcements-service", (access_scope(name),), services=(name,)),
            *residency["roles"],
            *support["roles"],
        ),
        server_url_env=SERVER_URL_ENV,
    )


main = AnnouncementsService.launch_instance

if __name__ == "__main__":
    main()
