"""Residency applications, without HTTP: the public form's validation and abuse limits,
the review's state machine, and the acceptance that adds the applicant to the studio's
membership list (``hub_config.membership``) in the same transaction. See docs/residency.md.

Review states: submitted -> (more_info <-> submitted) -> accepted | rejected. Every
state change is a compare-and-set on the state the reviewer saw: a stale one is a
``Conflict`` (409) and changes nothing.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .. import membership
from ..notifications import is_address
from .content import BadInput, check_transition, utcnow
from .models import ResidencyApplication, ResidencyEvent
from .store import Conflict, NotFound, Store, iso

REVIEW_SCOPE = "custom:announcements:residency"  # the reviewers' scope, given by a role to reviewer_groups/users
AREAS = {"healthcare": "Healthcare", "health_management": "Health management", "drug_rnd": "Drug R&D"}
STATES = ("submitted", "more_info", "accepted", "rejected")
STATE_LABELS = {"submitted": "Submitted", "more_info": "More information requested", "accepted": "Accepted",
                "rejected": "Rejected"}
# what a reviewer may move an application to; the applicant's answer moves more_info back to submitted
TRANSITIONS = {"submitted": {"more_info", "accepted", "rejected"}, "more_info": {"rejected"},
               "accepted": set(), "rejected": set()}
# the longest answer of each field of the form, in characters
LIMITS = {"name": 200, "organisation": 200, "email": 320, "area": 32, "reserves": 5000, "team": 3000, "wants": 5000}
FIELDS = tuple(LIMITS)
ANSWER_MAX = 5000
COMMENT_MAX = 5000
MAX_REQUEST_BYTES = 32 * 1024  # the whole public request, form or JSON
HONEYPOT = "website"  # hidden from people by the form's style; a bot that fills it is answered as usual, nothing kept
APPLICANT = "applicant"
USER_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
PASSWORD_MIN = 10
_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!?]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --------------------------------------------------------------------------- validation (pure)


def plain(field_name: str, value, limit: int, *, required: bool = True, multiline: bool = False) -> str:
    """A plain-text answer: text, within ``limit``, no control characters, no HTML."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadInput(f"{field_name}: is required")
        return ""
    if not isinstance(value, str):
        raise BadInput(f"{field_name}: must be text")
    value = value.replace("\r\n", "\n").strip()
    if len(value) > limit:
        raise BadInput(f"{field_name}: is {len(value)} characters long; at most {limit} are allowed")
    if _CONTROL.search(value) or (not multiline and "\n" in value):
        raise BadInput(f"{field_name}: must be plain text on {'one line' if not multiline else 'lines'}, "
                       "without control characters")
    if _MARKUP.search(value):
        raise BadInput(f"{field_name}: must be plain text, without HTML tags")
    return value


def validate_application(data: dict) -> dict:
    """The columns of a new application from the form's fields (``BadInput`` names the field)."""
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS) - {HONEYPOT})
    if unknown:
        raise BadInput(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    out = {f: plain(f, data.get(f), LIMITS[f], multiline=f in ("reserves", "team", "wants")) for f in FIELDS}
    out["email"] = out["email"].lower()
    if not is_address(out["email"]):
        raise BadInput("email: must be one e-mail address, e.g. name@example.org")
    if out["area"] not in AREAS:
        raise BadInput(f"area: must be one of {', '.join(AREAS)}")
    return out


def is_bot(data: dict) -> bool:
    """Whether the honeypot field, which people never see, was filled."""
    return bool(str(data.get(HONEYPOT) or "").strip())


def validate_review(data: dict) -> dict:
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    unknown = sorted(set(data) - {"status", "comment", "if_status"})
    if unknown:
        raise BadInput(f"unknown field(s) for a review: {', '.join(unknown)}; allowed: comment, if_status, status")
    status = data.get("status") or None
    if status is not None and status not in STATES:
        raise BadInput(f"status: must be one of {', '.join(STATES)}")
    if_status = data.get("if_status") or None
    if if_status is not None and if_status not in STATES:
        raise BadInput(f"if_status: must be one of {', '.join(STATES)}")
    comment = plain("comment", data.get("comment"), COMMENT_MAX, required=False, multiline=True)
    if status is None and not comment:
        raise BadInput("give a new status, a comment, or both")
    if status == "more_info" and not comment:
        raise BadInput("comment: say what more information is needed")
    return {"status": status, "comment": comment, "if_status": if_status}


def validate_account(data: dict, *, reserved: set[str], user_given: str | None) -> dict:
    """An invitation's answers: a user name (unless the entry has one) and a password twice."""
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    user = user_given
    if not user:
        user = plain("user", data.get("user"), 32).lower()
        if not USER_NAME.match(user):
            raise BadInput("user: 2 to 32 characters: lower-case letters, digits, '.', '_' or '-', "
                           "starting with a letter")
        if user in reserved:
            raise BadInput(f"user: {user} is taken; choose another")
    password = data.get("password")
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise BadInput(f"password: at least {PASSWORD_MIN} characters")
    if len(password) > 1024:
        raise BadInput("password: at most 1024 characters")
    if data.get("password2") is not None and data.get("password2") != password:
        raise BadInput("password2: the two passwords differ")
    return {"user": user, "password": password}


# --------------------------------------------------------------------------- abuse limits


def client_address(forwarded_for: str | None, peer: str, trusted_proxies: int = 0) -> str:
    """The caller's address in X-Forwarded-For: configurable-http-proxy appends the address
    it saw last; each of the ``trusted_proxies`` reverse proxies in front of it (an ingress
    controller, a load balancer) appended one before that. Entries further left are
    whatever the client wrote, so they never count. Without the header: the connection's peer."""
    hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
    if not hops:
        return peer
    return hops[max(len(hops) - 1 - trusted_proxies, 0)]


@dataclass
class RateLimiter:
    """At most ``limit`` submissions per address in any ``window`` seconds (in memory:
    the service is one process)."""

    limit: int
    window: float = 3600.0
    _seen: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, address: str, now: float | None = None) -> int:
        """0 when ``address`` may submit now (and the submission is counted); else the seconds to wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._seen.setdefault(address, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return max(1, int(times[0] + self.window - now) + 1)
            times.append(now)
            if len(self._seen) > 100_000:  # forget idle addresses rather than grow without end
                for key in [k for k, v in self._seen.items() if not v]:
                    del self._seen[key]
            return 0


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class Decision:
    """A review's outcome: the application as the reviewer now sees it, and for an
    acceptance under demo login the invitation token (shown once, mailed)."""

    application: dict
    invitation: str | None = None


class ResidencyStore:
    """Residency applications in the announcements database (the store's engines)."""

    def __init__(self, store: Store, *, group: str = "gpu-residents", invitations: bool = True,
                 invitation_days: int = 14):
        self.store = store
        self.group = group
        self.invitations = invitations  # demo login: acceptance makes an invitation link
        self.invitation_days = invitation_days

    def as_dict(self, app: ResidencyApplication, events: list | None = None, *, reviewer: bool = True) -> dict:
        out = {"id": app.id, "status": app.status, "status_label": STATE_LABELS[app.status],
               "created_at": iso(app.created_at), "updated_at": iso(app.updated_at),
               **{f: getattr(app, f) for f in FIELDS}, "area_label": AREAS.get(app.area, app.area)}
        if events is not None:
            # the applicant sees state changes with their messages; comments alone are the reviewers' notes
            shown = events if reviewer else [e for e in events if e.status]
            out["history"] = [{"author": e.author if reviewer or e.author == APPLICANT else "reviewer",
                               "status": e.status, "comment": e.comment, "at": iso(e.created_at)} for e in shown]
        return out

    def _events(self, session, app_id: int) -> list:
        return session.scalars(select(ResidencyEvent).where(ResidencyEvent.application_id == app_id)
                               .order_by(ResidencyEvent.id)).all()

    def submit(self, data: dict) -> tuple[dict, str]:
        """Store a valid application; return it and the token of the applicant's private link."""
        checked = validate_application(data)
        token, now = membership.new_token(), utcnow()
        with self.store._write() as session, session.begin():
            app = ResidencyApplication(**checked, status="submitted", token_hash=membership.token_hash(token),
                                       created_at=now, updated_at=now)
            session.add(app)
            session.flush()
            session.add(ResidencyEvent(application_id=app.id, author=APPLICANT, status="submitted", comment="",
                                       created_at=now))
        return self.as_dict(app, []), token

    def get(self, app_id: int) -> dict:
        with self.store._read() as session:
            app = session.get(ResidencyApplication, app_id)
            if app is None:
                raise NotFound(f"no residency application {app_id}")
            return self.as_dict(app, self._events(session, app_id))

    def by_token(self, token: str) -> dict:
        """The application a private link opens, as its applicant sees it."""
        with self.store._read() as session:
            app = session.scalars(select(ResidencyApplication).where(
                ResidencyApplication.token_hash == membership.token_hash(token))).first()
            if app is None:
                raise NotFound("this link opens no application; check that it was copied whole")
            return self.as_dict(app, self._events(session, app.id), reviewer=False)

    def queue(self, status: str | None = None) -> list[dict]:
        """Applications, oldest first (the reviewers' queue)."""
        if status and status not in STATES:
            raise BadInput(f"status: must be one of {', '.join(STATES)}")
        query = select(ResidencyApplication).order_by(ResidencyApplication.id)
        if status:
            query = query.where(ResidencyApplication.status == status)
        with self.store._read() as session:
            return [self.as_dict(a) for a in session.scalars(query).all()]

    def _set_status(self, session, app: ResidencyApplication, seen: str, new: str, now) -> None:
        """Compare-and-set: the state changes only if it is still ``seen``."""
        done = session.execute(update(ResidencyApplication).where(
            ResidencyApplication.id == app.id, ResidencyApplication.status == seen).values(status=new, updated_at=now))
        if done.rowcount != 1:
            raise Conflict(f"the application changed meanwhile (it is no longer {seen}); reload and try again")

    def review(self, app_id: int, reviewer: str, data: dict) -> Decision:
        checked = validate_review(data)
        now, token = utcnow(), None
        try:
            with self.store._write() as session, session.begin():
                app = session.get(ResidencyApplication, app_id)
                if app is None:
                    raise NotFound(f"no residency application {app_id}")
                seen = checked["if_status"] or app.status
                if seen != app.status:
                    raise Conflict(f"the application is {app.status} now, not {seen}; reload and try again")
                status = checked["status"] if checked["status"] != app.status else None
                if status is not None:
                    check_transition(TRANSITIONS, app.status, status)
                    self._set_status(session, app, seen, status, now)
                    if status == "accepted":
                        token = membership.grant(session, email=app.email, groups=[self.group],
                                                 source=f"residency:{app.id}",
                                                 invitation_days=self.invitation_days if self.invitations else None,
                                                 now=now)
                session.add(ResidencyEvent(application_id=app_id, author=reviewer, status=status,
                                           comment=checked["comment"], created_at=now))
        except IntegrityError:  # two acceptances of the same e-mail at once: the other won
            raise Conflict("the application changed meanwhile; reload and try again") from None
        return Decision(self.get(app_id), token)

    def answer(self, token: str, data: dict) -> dict:
        """The applicant answers a request for more information: back to submitted."""
        if not isinstance(data, dict) or set(data) - {"answer"}:
            raise BadInput("send one field: answer")
        text = plain("answer", data.get("answer"), ANSWER_MAX, multiline=True)
        now = utcnow()
        with self.store._write() as session, session.begin():
            app = session.scalars(select(ResidencyApplication).where(
                ResidencyApplication.token_hash == membership.token_hash(token))).first()
            if app is None:
                raise NotFound("this link opens no application")
            if app.status != "more_info":
                raise Conflict("you can answer only when the reviewers asked for more information")
            self._set_status(session, app, "more_info", "submitted", now)
            session.add(ResidencyEvent(application_id=app.id, author=APPLICANT, status="submitted", comment=text,
                                       created_at=now))
        return self.by_token(token)

    # ------------------------------------------------------------- invitations

    def invitation(self, token: str) -> dict:
        """What an invitation link opens: the e-mail and the user name when already chosen."""
        with self.store._read() as session:
            member = membership.invitation(session, token)
            if member is None:
                raise NotFound("this invitation link is unknown, used or expired; ask the lab for a new one")
            return {"email": member.email, "user": member.user}

    def redeem(self, token: str, data: dict, reserved: set[str]) -> str:
        """Set the account of an invitation (once); return the user name to log in with."""
        try:
            with self.store._write() as session, session.begin():
                member = membership.invitation(session, token)
                if member is None:
                    raise NotFound("this invitation link is unknown, used or expired; ask the lab for a new one")
                checked = validate_account(data, reserved=reserved, user_given=member.user)
                if not member.user and membership.user_taken(session, checked["user"]):
                    raise BadInput(f"user: {checked['user']} is taken; choose another")
                if not membership.redeem(session, token, checked["user"], checked["password"]):
                    raise Conflict("this invitation was used meanwhile")
        except IntegrityError:  # another invitation took the same name at the same moment
            raise BadInput(f"user: {checked['user']} is taken; choose another") from None
        return checked["user"]
