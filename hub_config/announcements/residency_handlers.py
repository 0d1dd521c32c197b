"""Pages and JSON API of residency applications (docs/residency.md).

Public, without an account: the form (``residency``), the applicant's private link
(``residency/status/TOKEN``) and the invitation that sets a password
(``residency/invitation/TOKEN``); their posts carry JupyterHub's XSRF token, which works
without a login (the anonymous token is tied to the browser's cookie). Reviewers (scope
``custom:announcements:residency``): the queue (``residency/review``), one application
(``residency/applications/ID``) and ``api/residency``.
"""

from __future__ import annotations

import asyncio
import json

from tornado import web

from ..services.base import ServiceHandler
from ..services.spec import Role, access_scope
from . import residency
from .residency import AREAS, REVIEW_SCOPE, STATE_LABELS, STATES, RateLimiter, ResidencyStore
from .service import ENV_RESIDENCY, Base, _templates

SERVICE_NAME = "announcements"
TOKEN = r"([A-Za-z0-9_-]{20,100})"


class TooManyRequests(web.HTTPError):
    def __init__(self, retry_after: int):
        super().__init__(429, f"too many applications from your address; try again in {retry_after} seconds")
        self.retry_after = retry_after


def settings(given: dict) -> dict:
    """The service's ``residency`` setting (AISTUDIO_RESIDENCY, see :func:`spec_parts`) with its defaults."""
    return {"group": given.get("group", "gpu-residents"), "invitations": given.get("invitations", True),
            "invitation_days": int(given.get("invitation_days", 14)),
            "per_hour": int(given.get("per_hour", 5)), "trusted_proxies": int(given.get("trusted_proxies", 0)),
            "reserved": set(given.get("reserved", [])),
            "public_url": (given.get("public_url") or "").rstrip("/"), "login_url": given.get("login_url", "")}


class ResidencyBase(Base):
    """The reviewer's pages and the parts shared with the public ones."""

    residency: ResidencyStore
    residency_settings: dict  # settings(); not "settings" or "options": tornado has those
    limiter: RateLimiter

    def require_reviewer(self):
        if not self.reviewer:
            raise web.HTTPError(403, f"only residency reviewers (scope {REVIEW_SCOPE}) may do this")

    def link(self, path: str) -> str:
        """An absolute link for mail: notifications.public_url, else the address this request came to."""
        base = self.residency_settings["public_url"] or f"{self.request.protocol}://{self.request.host}"
        return base + self.prefix + path

    def mail(self, to: str, subject: str, body: str) -> None:
        """Send in the background (never raises; nothing when mail is off): the applicant never waits on SMTP."""
        notifier = self.service.notifier
        if notifier is None or notifier.mailer is None:
            return
        task = asyncio.ensure_future(notifier.mailer.send(to, subject, body))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    def render(self, template: str, **kwargs):
        if self.current_user is None:  # a public page: no hub navigation
            self.finish(_templates.get_template(template).render(
                prefix=self.prefix, hub_prefix=self.service.hub_url, xsrf_form_html=self.xsrf_form_html,
                rlabels=STATE_LABELS, areas=AREAS, public=True, reviewer=False, **kwargs))
            return
        super().render(template, rlabels=STATE_LABELS, areas=AREAS, public=False, **kwargs)

    def decision_mail(self, decision: residency.Decision) -> None:
        app = decision.application
        status = app["history"][-1]["status"] if app["history"] else None
        if status not in ("more_info", "accepted", "rejected"):
            return
        message = app["history"][-1]["comment"]
        lines = [f"Dear {app['name']},", "",
                 f"your application for residency at the lab is now: {STATE_LABELS[status]}.", ""]
        if message:
            lines += [message, ""]
        if status == "more_info":
            lines += ["Answer through the private link you received with the confirmation of your application.", ""]
        if decision.invitation:
            lines += ["Welcome! Choose your user name and password here (the link works once, within "
                      f"{self.residency_settings['invitation_days']} days):",
                      self.link(f"residency/invitation/{decision.invitation}"), ""]
        elif status == "accepted":
            lines += [f"Log in with your organisation's account ({app['email']}) at {self.link('')}", ""]
        self.mail(app["email"], f"Your residency application: {STATE_LABELS[status]}", "\n".join(lines))


_pending: set = set()


class PublicBase(ResidencyBase):
    """Pages anyone may open: no login needed; posts still carry the XSRF token."""

    login_required = False

    async def prepare(self):
        await ServiceHandler.prepare(self)  # who is asking, if anyone; not Base's login requirement
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            self.check_xsrf_cookie()
        if len(self.request.body or b"") > residency.MAX_REQUEST_BYTES:
            raise web.HTTPError(400, f"request: larger than {residency.MAX_REQUEST_BYTES} bytes")

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, TooManyRequests):
            self.set_header("Retry-After", str(exc.retry_after))
        super().write_error(status_code, **kwargs)

    def address(self) -> str:
        peer = getattr(self.request.connection.context, "_orig_remote_ip", None) or self.request.remote_ip
        return residency.client_address(self.request.headers.get("X-Forwarded-For"), peer,
                                        self.residency_settings["trusted_proxies"])

    def submit(self) -> tuple[dict | None, str]:
        """A submission from the form or the API: (the application, its token), or
        (None, a token that opens nothing) for a bot that filled the honeypot."""
        data = self.payload()
        bot = residency.is_bot(data)
        if not bot:
            residency.validate_application({k: v for k, v in data.items() if k != residency.HONEYPOT})
        wait = self.limiter.retry_after(self.address())
        if wait:
            raise TooManyRequests(wait)
        if bot:
            self.service.log.info("residency form: honeypot filled from %s; nothing kept", self.address())
            return None, residency.membership.new_token()
        data.pop(residency.HONEYPOT, None)
        app, token = self.residency.submit(data)
        self.mail(app["email"], "We received your residency application", "\n".join([
            f"Dear {app['name']},", "", "the lab received your application for residency "
            f"({app['organisation']}, {app['area_label']}). Reviewers will read it; you can follow it, and answer "
            "their questions, at this private link (keep it to yourself):", self.link(f"residency/status/{token}"),
        ]))
        return app, token


class FormPage(PublicBase):
    def get(self):
        self.render("residency_form.html", values={}, honeypot=residency.HONEYPOT, limits=residency.LIMITS)

    def post(self):
        _, token = self.submit()
        self.render("residency_received.html", status_url=f"{self.prefix}residency/status/{token}")


class StatusPage(PublicBase):
    def get(self, token):
        self.render("residency_status.html", app=self.residency.by_token(token), token=token)

    def post(self, token):
        self.residency.answer(token, self.payload())
        self.redirect(f"{self.prefix}residency/status/{token}")


class InvitationPage(PublicBase):
    def get(self, token):
        self.render("residency_invitation.html", invite=self.residency.invitation(token), done=None)

    def post(self, token):
        user = self.residency.redeem(token, self.payload(), self.residency_settings["reserved"])
        self.render("residency_invitation.html", invite=None, done=user,
                    login_url=self.residency_settings["login_url"] or f"{self.service.hub_url}login")


class ReviewQueuePage(ResidencyBase):
    @web.authenticated
    def get(self):
        self.require_reviewer()
        status = self.get_query_argument("status", "") or None
        self.render("residency_review.html", applications=self.residency.queue(status), status=status, states=STATES)


class ReviewPage(ResidencyBase):
    @web.authenticated
    def get(self, app_id):
        self.require_reviewer()
        self.render("residency_application.html", app=self.residency.get(int(app_id)), invitation=None)

    @web.authenticated
    def post(self, app_id):
        self.require_reviewer()
        decision = self.residency.review(int(app_id), self.user, self.payload())
        self.decision_mail(decision)
        invitation = self.link(f"residency/invitation/{decision.invitation}") if decision.invitation else None
        self.render("residency_application.html", app=decision.application, invitation=invitation)


# ------------------------------------------------------------------ JSON API


class ResidencyApi(PublicBase):
    api = True

    def get(self):
        if self.current_user is None:
            raise web.HTTPError(401, "log in to the hub, or send a token: Authorization: token TOKEN")
        self.require_reviewer()
        status = self.get_query_argument("status", "") or None
        self.send_json({"applications": self.residency.queue(status)})

    def post(self):
        app, token = self.submit()
        self.send_json({"status": "submitted", "status_url": f"{self.prefix}residency/status/{token}",
                        "api_url": f"{self.prefix}api/residency/status/{token}",
                        "id": app["id"] if app and self.reviewer else None}, 201)


class ResidencyStatusApi(PublicBase):
    api = True

    def get(self, token):
        self.send_json(self.residency.by_token(token))

    def post(self, token):
        self.send_json(self.residency.answer(token, self.payload()))


class ResidencyApplicationApi(ResidencyBase):
    api = True

    @web.authenticated
    def get(self, app_id):
        self.require_reviewer()
        self.send_json(self.residency.get(int(app_id)))

    @web.authenticated
    def patch(self, app_id):
        """``{"status", "comment", "if_status"}``; an acceptance under demo login answers its invitation link."""
        self.require_reviewer()
        decision = self.residency.review(int(app_id), self.user, self.payload())
        self.decision_mail(decision)
        body = dict(decision.application)
        if decision.invitation:
            body["invitation_url"] = self.link(f"residency/invitation/{decision.invitation}")
        self.send_json(body)


# ------------------------------------------------------------------ wiring


def routes(args: dict, given: dict) -> list[tuple]:
    """The service's residency routes (``args``: the service's handler arguments, with its
    store; ``given``: its ``residency`` setting)."""
    options = settings(given)
    extra = {**args, "residency_settings": options, "limiter": RateLimiter(options["per_hour"]),
             "residency": ResidencyStore(args["store"], group=options["group"], invitations=options["invitations"],
                                         invitation_days=options["invitation_days"])}
    n = r"(\d{1,12})"
    return [
        ("residency", FormPage, extra),
        (f"residency/status/{TOKEN}", StatusPage, extra),
        (f"residency/invitation/{TOKEN}", InvitationPage, extra),
        ("residency/review", ReviewQueuePage, extra),
        (f"residency/applications/{n}", ReviewPage, extra),
        ("api/residency", ResidencyApi, extra),
        (f"api/residency/status/{TOKEN}", ResidencyStatusApi, extra),
        (f"api/residency/{n}", ResidencyApplicationApi, extra),
    ]


def spec_parts(config: dict) -> dict:
    """What residency adds to the service's spec: its settings (environment), the
    reviewers' scope, their role, and the scope a login token for the service may carry."""
    ann, auth = config["announcements"], config["auth"]
    res = ann["residency"]
    if not res["enabled"]:
        return {"environment": {}, "custom_scopes": {}, "roles": (), "client_scopes": ()}
    demo = auth["type"] == "demo"
    settings = {
        "group": res["group"], "invitations": demo, "invitation_days": res["invitation_days"],
        "per_hour": res["per_address_per_hour"], "trusted_proxies": res["trusted_proxies"],
        "public_url": (config.get("notifications") or {}).get("public_url") or "",
        "reserved": sorted(set(auth["demo"]["users"]) | set(auth["admin_users"])) if demo else [],
        "login_url": config["hub"]["base_url"].rstrip("/") + "/hub/login",
    }
    return {
        "environment": {ENV_RESIDENCY: json.dumps(settings)},
        "custom_scopes": {REVIEW_SCOPE: {"description": "Review residency applications: read, comment, ask for "
                                                        "more, accept (which grants membership) or reject."}},
        "roles": (Role("residency-reviewers", (REVIEW_SCOPE, access_scope(SERVICE_NAME)),
                       groups=tuple(res["reviewer_groups"]), users=tuple(res["reviewer_users"])),),
        "client_scopes": (REVIEW_SCOPE,),
    }
