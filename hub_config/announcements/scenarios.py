"""Field-test scenarios, without HTTP: organisers publish the real-world settings partners
offer (a hospital ward, a clinic, a check-up centre, an insurer, a pharmaceutical team);
members apply with a proposal; organisers review the applications with the states and
transitions of incubation applications (``content.REVIEW_TRANSITIONS``); the partner
contact follows the accepted ones through the scenario's private link. See docs/scenarios.md.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from .content import (
    REVIEW_TRANSITIONS, SHORT_MAX, STATE_LABELS, TITLE_MAX, BadInput, _bool, _text, check_transition, parse_time,
    render_markdown, utcnow, validate_review, zone,
)
from .models import Scenario, ScenarioApplication, ScenarioEvent
from .store import Conflict, NotFound, Store, iso
from .support import to_csv

PARTNER_KINDS = {"hospital": "Hospital", "clinic": "Clinic", "checkup_centre": "Check-up centre",
                 "insurer": "Insurer", "pharma": "Pharmaceutical team"}
# Markdown fields of a scenario (rendered and sanitised when shown)
TEXT_FIELDS = ("setting", "trial", "requirements", "data_available")
SCENARIO_FIELDS = ("title", "partner_kind", "partner", *TEXT_FIELDS, "contact", "window_from", "window_to", "draft")
APPLICATION_FIELDS = ("project", "proposal")


# --------------------------------------------------------------------------- validation (pure)


def validate_scenario(data, *, current: dict | None = None, body_max: int, tz: str, now=None) -> dict:
    """A new scenario's columns (``current`` None), or a change to one (fields not sent are kept)."""
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    unknown = sorted(set(data) - set(SCENARIO_FIELDS))
    if unknown:
        raise BadInput(f"unknown field(s) for a scenario: {', '.join(unknown)}; "
                       f"allowed: {', '.join(SCENARIO_FIELDS)}")
    merged = {**(current or {}), **data}
    out = {
        "title": _text("title", merged.get("title"), TITLE_MAX, required=True),
        "partner": _text("partner", merged.get("partner"), TITLE_MAX, required=True),
        "contact": _text("contact", merged.get("contact"), SHORT_MAX, required=True),
        "draft": _bool("draft", merged.get("draft", False)),
    }
    if not isinstance(merged.get("partner_kind"), str) or merged["partner_kind"] not in PARTNER_KINDS:
        raise BadInput(f"partner_kind: must be one of {', '.join(PARTNER_KINDS)}")
    out["partner_kind"] = merged["partner_kind"]
    for field in TEXT_FIELDS:
        out[field] = _text(field, merged.get(field), body_max, required=field in ("setting", "trial"), multiline=True)
    zone_info = zone(tz)
    for field in ("window_from", "window_to"):
        if field in data or current is None:
            out[field] = parse_time(field, data.get(field), zone_info)
            if out[field] is None:
                raise BadInput(f"{field}: is required")
        else:
            out[field] = current[field]  # already naive UTC
    if out["window_to"] <= out["window_from"]:
        raise BadInput("window_to: must be after window_from")
    if ("window_to" in data or current is None) and out["window_to"] <= (now or utcnow()):
        raise BadInput("window_to: is in the past")
    return out


def validate_application(data, body_max: int) -> dict:
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    unknown = sorted(set(data) - set(APPLICATION_FIELDS))
    if unknown:
        raise BadInput(f"unknown field(s) for an application: {', '.join(unknown)}; "
                       f"allowed: {', '.join(APPLICATION_FIELDS)}")
    return {"project": _text("project", data.get("project"), TITLE_MAX, required=True),
            "proposal": _text("proposal", data.get("proposal"), body_max, required=True, multiline=True)}


def validate_scenario_review(data, body_max: int) -> dict:
    """A review as of an incubation application, plus ``if_status``: the state the reviewer saw."""
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    seen = data.get("if_status") or None
    if seen is not None and (not isinstance(seen, str) or seen not in REVIEW_TRANSITIONS):
        raise BadInput(f"if_status: must be one of {', '.join(REVIEW_TRANSITIONS)}")
    checked = validate_review({k: v for k, v in data.items() if k != "if_status"}, body_max)
    return {**checked, "if_status": seen}


# --------------------------------------------------------------------------- storage


class ScenarioStore:
    """Scenarios and their applications in the announcements database (the store's engines)."""

    def __init__(self, store: Store):
        self.store = store

    # ------------------------------------------------------------- scenarios

    def as_dict(self, s: Scenario, *, organiser: bool = False, prefix: str = "") -> dict:
        out = {"id": s.id, "title": s.title, "partner_kind": s.partner_kind,
               "partner_kind_label": PARTNER_KINDS.get(s.partner_kind, s.partner_kind), "partner": s.partner,
               "contact": s.contact, "window_from": iso(s.window_from, self.store.default_tz),
               "window_to": iso(s.window_to, self.store.default_tz), "draft": s.draft,
               "open": s.window_to > utcnow() and not s.draft, "url": f"{prefix}scenarios/{s.id}",
               "created_by": s.created_by, "created_at": iso(s.created_at), "updated_at": iso(s.updated_at)}
        for field in TEXT_FIELDS:
            out[field] = getattr(s, field) or ""
            out[f"{field}_html"] = render_markdown(out[field])
        if organiser:  # the partner contact's read-only page of accepted applications
            out["partner_url"] = f"{prefix}scenarios/partner/{s.partner_token}"
        return out

    def _stored(self, s: Scenario) -> dict:
        return {f: getattr(s, f) for f in SCENARIO_FIELDS}

    def create(self, data: dict, user: str, prefix: str = "") -> dict:
        checked = validate_scenario(data, body_max=self.store.body_max, tz=self.store.default_tz)
        now = utcnow()
        with self.store._write() as session, session.begin():
            s = Scenario(**checked, partner_token=secrets.token_urlsafe(24), created_by=user, created_at=now,
                         updated_at=now)
            session.add(s)
            session.flush()
        return self.as_dict(s, organiser=True, prefix=prefix)

    def update(self, scenario_id: int, data: dict, prefix: str = "") -> dict:
        with self.store._write() as session, session.begin():
            s = session.get(Scenario, scenario_id)
            if s is None:
                raise NotFound(f"no scenario {scenario_id}")
            checked = validate_scenario(data, current=self._stored(s), body_max=self.store.body_max,
                                        tz=self.store.default_tz)
            for key, value in checked.items():
                setattr(s, key, value)
            s.updated_at = utcnow()
        return self.as_dict(s, organiser=True, prefix=prefix)

    def delete(self, scenario_id: int) -> None:
        with self.store._write() as session, session.begin():
            s = session.get(Scenario, scenario_id)
            if s is None:
                raise NotFound(f"no scenario {scenario_id}")
            app_ids = select(ScenarioApplication.id).where(ScenarioApplication.scenario_id == scenario_id)
            session.execute(delete(ScenarioEvent).where(ScenarioEvent.application_id.in_(app_ids)))
            session.execute(delete(ScenarioApplication).where(ScenarioApplication.scenario_id == scenario_id))
            session.delete(s)

    def get(self, scenario_id: int, *, organiser: bool, prefix: str = "") -> dict:
        with self.store._read() as session:
            s = session.get(Scenario, scenario_id)
        if s is None or (s.draft and not organiser):
            raise NotFound(f"no scenario {scenario_id}")
        return self.as_dict(s, organiser=organiser, prefix=prefix)

    def list(self, *, organiser: bool, prefix: str = "") -> list[dict]:
        """Members: published scenarios whose window has not ended; organisers: all of them."""
        query = select(Scenario).order_by(Scenario.window_from, Scenario.id)
        if not organiser:
            query = query.where(Scenario.draft.is_(False), Scenario.window_to > utcnow())
        with self.store._read() as session:
            return [self.as_dict(s, organiser=organiser, prefix=prefix) for s in session.scalars(query).all()]

    # ------------------------------------------------------------- applications

    @staticmethod
    def application_dict(app: ScenarioApplication, title: str, events: list | None = None) -> dict:
        out = {"id": app.id, "scenario_id": app.scenario_id, "scenario_title": title, "user": app.user,
               "project": app.project, "proposal": app.proposal, "status": app.status,
               "status_label": STATE_LABELS[app.status], "created_at": iso(app.created_at),
               "updated_at": iso(app.updated_at)}
        if events is not None:
            out["history"] = [{"author": e.author, "status": e.status, "comment": e.comment, "at": iso(e.created_at)}
                              for e in events]
        return out

    def apply(self, scenario_id: int, user: str, data: dict) -> dict:
        checked = validate_application(data, self.store.body_max)
        now = utcnow()
        try:
            with self.store._write() as session, session.begin():
                s = session.get(Scenario, scenario_id)
                if s is None or s.draft:
                    raise NotFound(f"no scenario {scenario_id}")
                if s.window_to <= now:
                    raise Conflict("this scenario's window has ended")
                if session.scalars(select(ScenarioApplication.id).where(
                        ScenarioApplication.scenario_id == scenario_id, ScenarioApplication.user == user)).first():
                    raise Conflict("you have already applied to this scenario; see your application")
                app = ScenarioApplication(scenario_id=scenario_id, user=user, status="submitted", created_at=now,
                                          updated_at=now, **checked)
                session.add(app)
                session.flush()
                session.add(ScenarioEvent(application_id=app.id, author=user, status="submitted", comment="",
                                          created_at=now))
        except IntegrityError:  # the same member twice at once (PostgreSQL): the other request won
            raise Conflict("you have already applied to this scenario; see your application") from None
        return self.application(app.id)

    def application(self, app_id: int, user: str | None = None) -> dict:
        """One application with its history; with ``user``, only if it is theirs."""
        with self.store._read() as session:
            app = session.get(ScenarioApplication, app_id)
            if app is None or (user is not None and app.user != user):
                raise NotFound(f"no scenario application {app_id}")
            events = session.scalars(select(ScenarioEvent).where(ScenarioEvent.application_id == app_id)
                                     .order_by(ScenarioEvent.id)).all()
            title = session.scalar(select(Scenario.title).where(Scenario.id == app.scenario_id)) or ""
        return self.application_dict(app, title, events)

    def applications(self, *, user: str | None = None, scenario_id: int | None = None,
                     status: str | None = None) -> list[dict]:
        query = select(ScenarioApplication, Scenario.title).join(Scenario, Scenario.id == ScenarioApplication.scenario_id)
        if user is not None:
            query = query.where(ScenarioApplication.user == user)
        if scenario_id is not None:
            query = query.where(ScenarioApplication.scenario_id == scenario_id)
        if status:
            query = query.where(ScenarioApplication.status == status)
        with self.store._read() as session:
            rows = session.execute(query.order_by(ScenarioApplication.id)).all()
        return [self.application_dict(a, title) for a, title in rows]

    def review(self, app_id: int, reviewer: str, data: dict) -> dict:
        """A status change (compare-and-set on the state the reviewer saw) and/or a comment."""
        checked = validate_scenario_review(data, self.store.body_max)
        now = utcnow()
        with self.store._write() as session, session.begin():
            app = session.get(ScenarioApplication, app_id)
            if app is None:
                raise NotFound(f"no scenario application {app_id}")
            if checked["if_status"] and checked["if_status"] != app.status:
                raise Conflict(f"status: the application is no longer {checked['if_status']} but {app.status}; "
                               "reload it and try again")
            new = checked["status"] if checked["status"] != app.status else None
            if new is not None:
                seen = checked["if_status"] or app.status
                check_transition(REVIEW_TRANSITIONS, seen, new)
                changed = session.execute(update(ScenarioApplication).where(
                    ScenarioApplication.id == app_id, ScenarioApplication.status == seen).values(status=new)).rowcount
                if changed != 1:
                    raise Conflict(f"status: the application is no longer {seen}; reload it and try again")
            session.execute(update(ScenarioApplication).where(ScenarioApplication.id == app_id).values(updated_at=now))
            session.add(ScenarioEvent(application_id=app_id, author=reviewer, status=new, comment=checked["comment"],
                                      created_at=now))
        return self.application(app_id)

    def resubmit(self, app_id: int, user: str, data: dict) -> dict:
        """The applicant answers a request for more information: new answers, back to submitted."""
        checked = validate_application(data, self.store.body_max)
        now = utcnow()
        with self.store._write() as session, session.begin():
            changed = session.execute(update(ScenarioApplication).where(
                ScenarioApplication.id == app_id, ScenarioApplication.user == user,
                ScenarioApplication.status == "needs_info").values(status="submitted", updated_at=now, **checked)).rowcount
            if changed != 1:
                if session.scalar(select(ScenarioApplication.user).where(ScenarioApplication.id == app_id)) != user:
                    raise NotFound(f"no scenario application {app_id}")
                raise Conflict("an application can be changed only when more information was asked for")
            session.add(ScenarioEvent(application_id=app_id, author=user, status="submitted",
                                      comment="answered the request for more information", created_at=now))
        return self.application(app_id)

    def for_partner(self, token: str, prefix: str = "") -> tuple[dict, list[dict]]:
        """The scenario of a partner link and its accepted applications (read-only; 404 for a wrong link)."""
        with self.store._read() as session:
            s = session.scalars(select(Scenario).where(Scenario.partner_token == token)).first()
        if s is None or not secrets.compare_digest(s.partner_token, token):
            raise NotFound("no scenario at this link")
        accepted = self.applications(scenario_id=s.id, status="accepted")
        return self.as_dict(s, prefix=prefix), accepted

    def csv(self, scenario_id: int | None = None) -> str:
        header = ["id", "scenario_id", "scenario", "user", "project", "proposal", "status", "submitted_at", "updated_at"]
        rows = [[a["id"], a["scenario_id"], a["scenario_title"], a["user"], a["project"], a["proposal"], a["status"],
                 a["created_at"], a["updated_at"]] for a in self.applications(scenario_id=scenario_id)]
        return to_csv(header, rows)

    def decisions(self, user: str) -> list[dict]:
        """The member's applications a reviewer has moved on from submitted (for their notices)."""
        return [a for a in self.applications(user=user) if a["status"] != "submitted"]
