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

import json
import logging
import os
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import jinja2
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated, UserNotAllowed
from jupyterhub.utils import url_path_join
from tornado import ioloop, web
from tornado.log import enable_pretty_logging

from . import feeds
from .content import APPLICATION_FIELDS, APPLICATION_STATES, BY_KIND, KINDS, STATE_LABELS, BadInput
from .store import Conflict, NotFound, Store

WRITE_SCOPE = "custom:announcements:write"
ENV_DB_URL = "AISTUDIO_ANNOUNCEMENTS_DB_URL"
ENV_BODY_MAX = "AISTUDIO_ANNOUNCEMENTS_BODY_MAX"
ENV_TIMEZONE = "AISTUDIO_ANNOUNCEMENTS_TIMEZONE"
MAX_REQUEST_BYTES = 1024 * 1024
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'")

log = logging.getLogger("aistudio.announcements")
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


class Base(HubOAuthenticated, web.RequestHandler):
    """Shared by every page and API handler: who is asking, and errors as JSON or a page."""

    api = False

    def initialize(self, store: Store, prefix: str):
        self.store, self.prefix = store, prefix

    def set_default_headers(self):
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("Referrer-Policy", "same-origin")

    async def prepare(self):
        # identify the caller without blocking the event loop (HubAuth's sync path waits on a thread);
        # get_current_user (and @web.authenticated) then use the result
        if not hasattr(self, "_hub_auth_user_cache"):
            model = await self.hub_auth.get_user(self, sync=False)
            allowed = None
            if model:
                try:
                    allowed = self.check_hub_user(model)
                except UserNotAllowed:
                    def refuse(*args, **kwargs):
                        raise web.HTTPError(403, "{kind} {name} may not use the announcements service".format(**model))

                    self.redirect = refuse
            self._hub_auth_user_cache = allowed
            if allowed:
                self.hub_auth._persist_url_token_if_set(self)
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            # cookie logins must send JupyterHub's XSRF token; API tokens need none
            if self.current_user is None:
                raise web.HTTPError(403, "log in to the hub first")
            self.check_xsrf_cookie()
        if len(self.request.body or b"") > MAX_REQUEST_BYTES:
            raise web.HTTPError(400, f"the request is larger than {MAX_REQUEST_BYTES} bytes")

    @property
    def user(self) -> str:
        return self.current_user["name"]

    @property
    def organiser(self) -> bool:
        return WRITE_SCOPE in set(self.current_user.get("scopes") or ())

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
        base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
        self.finish(_templates.get_template(template).render(
            prefix=self.prefix, hub_prefix=url_path_join(base, "hub/"), user=self.user, organiser=self.organiser,
            xsrf_form_html=self.xsrf_form_html, labels=STATE_LABELS, **kwargs,
        ))

    def write_json(self, data, status: int = 200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(data if isinstance(data, bytes) else json.dumps(data))

    def log_exception(self, typ, value, tb):
        if isinstance(value, (BadInput, NotFound, Conflict)):
            return
        super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e):
        code = {BadInput: 400, NotFound: 404, Conflict: 409}.get(type(e))
        if code:
            self.send_error(code, reason_message=str(e))
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code, **kwargs):
        message = kwargs.get("reason_message")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if message is None:
            message = (exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason)
        self.clear_header("Content-Type")
        if self.api or "application/json" in self.request.headers.get("Accept", ""):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps({"status": status_code, "message": message}))
        else:
            self.finish(_templates.get_template("error.html").render(
                status=status_code, message=message, prefix=self.prefix,
                hub_prefix=url_path_join(os.environ.get("JUPYTERHUB_BASE_URL", "/"), "hub/"),
            ))

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
        self.write_json({"name": self.user, "organiser": self.organiser, "version": self.store.version})


class ItemsApi(ApiBase):
    @web.authenticated
    def get(self):
        if self.get_query_argument("all", "") and self.organiser:
            self.write_json({"items": self.store.all_items(self.prefix), "version": self.store.version})
            return
        _, body = self.store.current(self.prefix)
        self.write_json(body)

    @web.authenticated
    def post(self):
        self.require_organiser()
        self.write_json(self.store.create(self.payload(), self.user, self.prefix), 201)


class ItemApi(ApiBase):
    @web.authenticated
    def get(self, item_id):
        self.write_json(self.store.get(_id(item_id), organiser=self.organiser, prefix=self.prefix))

    @web.authenticated
    def patch(self, item_id):
        self.require_organiser()
        self.write_json(self.store.update(_id(item_id), self.payload(), self.user, self.prefix))

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
        self.write_json(self.store.registration(_id(item_id), self.user))

    @web.authenticated
    def post(self, item_id):
        result = self.store.register(_id(item_id), self.user)
        self.write_json(result, 201 if result.pop("new") else 200)

    @web.authenticated
    def delete(self, item_id):
        self.write_json(self.store.cancel(_id(item_id), self.user))


class RegistrationsApi(ApiBase):
    @web.authenticated
    def get(self, item_id):
        self.require_organiser()
        self.store.get(_id(item_id), organiser=True)
        self.write_json({"registrations": self.store.registrations(_id(item_id))})


class CallApplicationsApi(ApiBase):
    @web.authenticated
    def get(self, item_id):
        self.require_organiser()
        self.write_json({"applications": self.store.applications(call_id=_id(item_id))})

    @web.authenticated
    def post(self, item_id):
        self.write_json(self.store.apply(_id(item_id), self.user, self.payload()), 201)


class ApplicationsApi(ApiBase):
    @web.authenticated
    def get(self):
        status = self.get_query_argument("status", "") or None
        if status and status not in APPLICATION_STATES:
            raise BadInput(f"status: must be one of {', '.join(APPLICATION_STATES)}")
        if self.get_query_argument("mine", ""):
            self.write_json({"applications": self.store.applications(user=self.user, status=status)})
            return
        self.require_organiser()
        self.write_json({"applications": self.store.applications(status=status)})


class ApplicationApi(ApiBase):
    @web.authenticated
    def get(self, app_id):
        self.write_json(self.store.application(_id(app_id), None if self.organiser else self.user))

    @web.authenticated
    def patch(self, app_id):
        """Organisers: ``{"status": ..., "comment": ...}``; the applicant: new answers after needs_info."""
        data = self.payload()
        if "status" in data or "comment" in data:
            self.require_organiser()
            self.write_json(self.store.review(_id(app_id), self.user, data))
        else:
            self.write_json(self.store.resubmit(_id(app_id), self.user, data))


# ------------------------------------------------------------------ app


def make_app(store: Store | None = None, prefix: str | None = None) -> web.Application:
    prefix = prefix or os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/announcements/")
    if store is None:
        store = Store(
            os.environ[ENV_DB_URL],
            body_max=int(os.environ.get(ENV_BODY_MAX) or 20_000),
            default_tz=os.environ.get(ENV_TIMEZONE) or "UTC",
        )
    args = {"store": store, "prefix": prefix}
    n = r"(\d{1,12})"

    def route(path, handler):
        return (url_path_join(prefix, path), handler, args)

    return web.Application(
        [
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            route("", IndexPage),
            route("items/new", NewItemPage),
            route(f"items/{n}", ItemPage),
            route(f"items/{n}/edit", EditItemPage),
            route(f"items/{n}/(delete|register|cancel|apply)", ItemAction),
            route(f"items/{n}/event.ics", EventIcs),
            route("calendar.ics", CalendarIcs),
            route("feed.atom", AtomFeed),
            route("review", ReviewPage),
            route("mine", MinePage),
            route(f"applications/{n}", ApplicationPage),
            route("applications.csv", ApplicationsCsv),
            route("api/me", MeApi),
            route("api/items", ItemsApi),
            route(f"api/items/{n}", ItemApi),
            route(f"api/items/{n}/registration", RegistrationApi),
            route(f"api/items/{n}/registrations", RegistrationsApi),
            route(f"api/items/{n}/applications", CallApplicationsApi),
            route("api/applications", ApplicationsApi),
            route(f"api/applications/{n}", ApplicationApi),
            (url_path_join(prefix, "static/(.*)"), web.StaticFileHandler, {"path": str(Path(__file__).parent / "static")}),
        ],
        cookie_secret=os.urandom(32),
        max_body_size=4 * MAX_REQUEST_BYTES,
        static_path=str(Path(__file__).parent / "static"),
        static_url_prefix=url_path_join(prefix, "static/"),
    )


def main():
    enable_pretty_logging()
    url = os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8020")
    parsed = urlparse(url)
    app = make_app()
    host = parsed.hostname or "127.0.0.1"
    # loopback unless the proxy reaches the service from elsewhere (announcements.url)
    address = host if host in ("127.0.0.1", "localhost", "::1") else ""
    app.listen(parsed.port or 8020, address, xheaders=True)
    log.info("announcements service at %s (database %s)", url, os.environ.get(ENV_DB_URL, "").split("@")[-1])
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()

