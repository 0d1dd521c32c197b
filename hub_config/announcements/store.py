"""Everything the service reads and writes, without HTTP: items, registrations with a
waiting list, applications and their review. Every write is one transaction that is
committed before the request is answered."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import db
from .content import (
    DEFAULT_BODY_MAX, REVIEW_TRANSITIONS, STATE_LABELS, BadInput, check_transition, plain_text, render_markdown, utcnow,
    validate_application, validate_item, validate_review,
)
from .models import Application, Item, Registration, ReviewEvent

MIGRATIONS = Path(__file__).parent / "migrations"


class NotFound(LookupError):
    """No such item or application (or the caller may not see it): answered with 404."""


class Conflict(Exception):
    """The request is valid but does not fit the current state: answered with 409."""


def iso(value: datetime | None, tz: str = "UTC") -> str | None:
    """Naive UTC from the database to ISO 8601 in the item's time zone."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz)).isoformat()


ITEM_COLUMNS = (
    "kind", "title", "body", "draft", "pinned", "publish_at", "expires_at", "timezone", "speaker", "start_at", "end_at",
    "place", "link", "capacity", "eligibility", "offer", "deadline",
)


class Store:
    def __init__(self, url: str, *, body_max: int = DEFAULT_BODY_MAX, default_tz: str = "UTC", migrate: bool = True):
        self.url = url
        self.reader = db.make_engine(url, begin="DEFERRED")
        self.writer = db.make_engine(url, begin="IMMEDIATE")
        self.postgres = self.writer.dialect.name == "postgresql"
        if migrate:
            db.upgrade(self.writer, MIGRATIONS)
        self.body_max = body_max
        self.default_tz = default_tz
        self._lock = threading.Lock()
        self._current: tuple[list[dict], bytes] | None = None
        self._current_until: datetime | None = None
        self.version = 0  # bumped by every write; lets pages and the banner tell what is new

    # ------------------------------------------------------------- helpers

    def _changed(self):
        with self._lock:
            self._current = None
            self.version += 1

    def _read(self) -> Session:
        return Session(self.reader, expire_on_commit=False)

    def _write(self) -> Session:
        return Session(self.writer, expire_on_commit=False)

    @staticmethod
    def _visible(now):
        return (Item.draft.is_(False), or_(Item.publish_at.is_(None), Item.publish_at <= now))

    def _counts(self, session: Session, item_ids: list[int]) -> dict[int, dict]:
        counts = {i: {"registered": 0, "waiting": 0} for i in item_ids}
        if item_ids:
            rows = session.execute(
                select(Registration.item_id, Registration.status, func.count())
                .where(Registration.item_id.in_(item_ids)).group_by(Registration.item_id, Registration.status)
            )
            for item_id, status, n in rows:
                counts[item_id][status] = n
        return counts

    def item_dict(self, item: Item, counts: dict | None = None, prefix: str = "") -> dict:
        tz = item.timezone
        out = {
            "id": item.id, "kind": item.kind, "title": item.title, "body": item.body, "body_html": item.body_html,
            "summary": plain_text(item.body, 200), "draft": item.draft, "pinned": item.pinned,
            "publish_at": iso(item.publish_at, tz), "expires_at": iso(item.expires_at, tz), "timezone": tz,
            "created_by": item.created_by, "created_at": iso(item.created_at), "updated_at": iso(item.updated_at),
            "url": f"{prefix}items/{item.id}",
        }
        if item.kind == "seminar":
            counts = counts or {"registered": 0, "waiting": 0}
            out.update({
                "speaker": item.speaker, "start": iso(item.start_at, tz), "end": iso(item.end_at, tz),
                "place": item.place, "link": item.link, "capacity": item.capacity,
                "registered": counts["registered"], "waiting": counts["waiting"],
                "seats_left": None if item.capacity is None else max(item.capacity - counts["registered"], 0),
                "ics_url": f"{prefix}items/{item.id}/event.ics",
            })
        elif item.kind == "call":
            out.update({
                "eligibility": item.eligibility, "eligibility_html": item.eligibility_html,
                "offer": item.offer, "offer_html": item.offer_html, "deadline": iso(item.deadline, tz),
                "open": item.deadline is not None and item.deadline > utcnow(),
            })
        return out

    @staticmethod
    def _order(items):
        return sorted(items, key=lambda i: (not i.pinned, -(i.publish_at or i.created_at).timestamp(), -i.id))

    # ------------------------------------------------------------- reads

    def current(self, prefix: str = "", now: datetime | None = None) -> tuple[list[dict], bytes]:
        """Published items inside their window, pinned first, newest first: the list
        every member's page, the hub banner and the feeds read. Kept in memory until the
        next write or the next publish/expiry time, and returned with its JSON."""
        now = now or utcnow()
        with self._lock:
            if self._current is not None and (self._current_until is None or now < self._current_until):
                return self._current
            version = self.version
        with self._read() as session:
            items = session.scalars(
                select(Item).where(*self._visible(now), or_(Item.expires_at.is_(None), Item.expires_at > now))
            ).all()
            upcoming = session.scalar(select(func.min(Item.publish_at)).where(Item.draft.is_(False), Item.publish_at > now))
            counts = self._counts(session, [i.id for i in items if i.kind == "seminar"])
        ends = [i.expires_at for i in items if i.expires_at] + ([upcoming] if upcoming else [])
        listed = [self.item_dict(i, counts.get(i.id), prefix) for i in self._order(items)]
        for entry in listed:  # the list carries the rendered HTML; the Markdown sources are in api/items/ID
            for source in ("body", "eligibility", "offer"):
                entry.pop(source, None)
        result = (listed, json.dumps({"items": listed, "version": version}).encode())
        with self._lock:
            if self.version == version:
                self._current, self._current_until = result, min(ends) if ends else None
        return result

    def all_items(self, prefix: str = "") -> list[dict]:
        """Every item, drafts and expired ones included (organisers)."""
        with self._read() as session:
            items = session.scalars(select(Item)).all()
            counts = self._counts(session, [i.id for i in items if i.kind == "seminar"])
        return [self.item_dict(i, counts.get(i.id), prefix) for i in self._order(items)]

    def get(self, item_id: int, *, organiser: bool, prefix: str = "") -> dict:
        """One item; members see only published items whose publish time has come."""
        now = utcnow()
        with self._read() as session:
            item = session.get(Item, item_id)
            if item is None or (not organiser and (item.draft or (item.publish_at and item.publish_at > now))):
                raise NotFound(f"no announcement {item_id}")
            counts = self._counts(session, [item.id]) if item.kind == "seminar" else {}
        return self.item_dict(item, counts.get(item.id), prefix)

    def upcoming_seminars(self, now: datetime | None = None) -> list[Item]:
        now = now or utcnow()
        with self._read() as session:
            return session.scalars(
                select(Item).where(Item.kind == "seminar", *self._visible(now), Item.end_at > now).order_by(Item.start_at)
            ).all()

    def raw_item(self, item_id: int, *, organiser: bool) -> Item:
        now = utcnow()
        with self._read() as session:
            item = session.get(Item, item_id)
        if item is None or (not organiser and (item.draft or (item.publish_at and item.publish_at > now))):
            raise NotFound(f"no announcement {item_id}")
        return item

    # ------------------------------------------------------------- item writes

    def _columns(self, checked: dict) -> dict:
        cols = {k: checked.get(k) for k in ITEM_COLUMNS}
        cols["body_html"] = render_markdown(cols["body"] or "")
        cols["eligibility_html"] = render_markdown(cols["eligibility"]) if cols["eligibility"] else None
        cols["offer_html"] = render_markdown(cols["offer"]) if cols["offer"] else None
        return cols

    @staticmethod
    def _current_values(item: Item) -> dict:
        values = {k: getattr(item, k) for k in ITEM_COLUMNS}
        values["start"], values["end"] = values.pop("start_at"), values.pop("end_at")
        return values

    def create(self, data: dict, user: str, prefix: str = "") -> dict:
        checked = validate_item(data, body_max=self.body_max, default_tz=self.default_tz)
        now = utcnow()
        with self._write() as session, session.begin():
            item = Item(**self._columns(checked), created_by=user, created_at=now, updated_by=user, updated_at=now)
            session.add(item)
            session.flush()
        self._changed()
        return self.item_dict(item, None, prefix)

    def update(self, item_id: int, data: dict, user: str, prefix: str = "") -> dict:
        with self._write() as session, session.begin():
            item = session.get(Item, item_id)
            if item is None:
                raise NotFound(f"no announcement {item_id}")
            checked = validate_item(data, current=self._current_values(item), body_max=self.body_max,
                                    default_tz=self.default_tz)
            if item.kind == "seminar" and checked.get("capacity") is not None:
                registered = session.scalar(select(func.count()).where(
                    Registration.item_id == item_id, Registration.status == "registered"))
                if checked["capacity"] < registered:
                    raise BadInput(f"capacity: {registered} members are already registered; "
                                   "a smaller capacity would take their seats away")
            for key, value in self._columns(checked).items():
                setattr(item, key, value)
            item.updated_by, item.updated_at = user, utcnow()
            if item.kind == "seminar":
                self._promote(session, item)
            session.flush()
            counts = self._counts(session, [item.id]) if item.kind == "seminar" else {}
        self._changed()
        return self.item_dict(item, counts.get(item.id), prefix)

    def delete(self, item_id: int) -> None:
        with self._write() as session, session.begin():
            item = session.get(Item, item_id)
            if item is None:
                raise NotFound(f"no announcement {item_id}")
            app_ids = select(Application.id).where(Application.item_id == item_id)
            session.execute(delete(ReviewEvent).where(ReviewEvent.application_id.in_(app_ids)))
            session.execute(delete(Application).where(Application.item_id == item_id))
            session.execute(delete(Registration).where(Registration.item_id == item_id))
            session.delete(item)
        self._changed()

    # ------------------------------------------------------------- registrations

    def _lock_item(self, session: Session, item_id: int) -> Item:
        """The item, locked for the rest of the transaction (SQLite: BEGIN IMMEDIATE
        already holds the database's write lock; PostgreSQL: SELECT ... FOR UPDATE)."""
        query = select(Item).where(Item.id == item_id)
        if self.postgres:
            query = query.with_for_update()
        item = session.scalars(query).first()
        if item is None:
            raise NotFound(f"no announcement {item_id}")
        return item

    def _promote(self, session: Session, item: Item) -> list[str]:
        """Move waiting members up, oldest first, while seats are free."""
        if item.capacity is None:
            waiting = session.scalars(select(Registration).where(
                Registration.item_id == item.id, Registration.status == "waiting")).all()
        else:
            registered = session.scalar(select(func.count()).where(
                Registration.item_id == item.id, Registration.status == "registered"))
            free = item.capacity - registered
            if free <= 0:
                return []
            waiting = session.scalars(select(Registration).where(
                Registration.item_id == item.id, Registration.status == "waiting").order_by(Registration.id).limit(free)).all()
        now = utcnow()
        for reg in waiting:
            reg.status, reg.promoted_at = "registered", now
        return [r.user for r in waiting]

    def _position(self, session: Session, reg: Registration) -> int | None:
        if reg.status != "waiting":
            return None
        return session.scalar(select(func.count()).where(
            Registration.item_id == reg.item_id, Registration.status == "waiting", Registration.id <= reg.id))

    def register(self, item_id: int, user: str) -> dict:
        """A seat if one is free, else a place on the waiting list; atomic: the count
        of seats taken and the insert happen under the same lock."""
        now = utcnow()
        try:
            with self._write() as session, session.begin():
                item = self._lock_item(session, item_id)
                if item.kind != "seminar" or item.draft or (item.publish_at and item.publish_at > now):
                    raise NotFound(f"no seminar {item_id}")
                if item.end_at <= now:
                    raise Conflict("this seminar is over")
                existing = session.scalars(select(Registration).where(
                    Registration.item_id == item_id, Registration.user == user)).first()
                if existing:
                    return {"status": existing.status, "position": self._position(session, existing), "new": False}
                registered = session.scalar(select(func.count()).where(
                    Registration.item_id == item_id, Registration.status == "registered"))
                status = "registered" if item.capacity is None or registered < item.capacity else "waiting"
                reg = Registration(item_id=item_id, user=user, status=status, created_at=now)
                session.add(reg)
                session.flush()
                result = {"status": status, "position": self._position(session, reg), "new": True}
        except IntegrityError:  # the same member twice at once (PostgreSQL): the other request won
            return self.registration(item_id, user) | {"new": False}
        self._changed()
        return result

    def cancel(self, item_id: int, user: str) -> dict:
        with self._write() as session, session.begin():
            item = self._lock_item(session, item_id)
            reg = session.scalars(select(Registration).where(
                Registration.item_id == item_id, Registration.user == user)).first()
            if reg is None:
                raise NotFound("you are not registered for this seminar")
            session.delete(reg)
            session.flush()
            promoted = self._promote(session, item)
        self._changed()
        return {"status": "cancelled", "promoted": promoted}

    def registration(self, item_id: int, user: str) -> dict:
        with self._read() as session:
            reg = session.scalars(select(Registration).where(
                Registration.item_id == item_id, Registration.user == user)).first()
            if reg is None:
                return {"status": None, "position": None}
            return {"status": reg.status, "position": self._position(session, reg)}

    def registrations(self, item_id: int) -> list[dict]:
        with self._read() as session:
            rows = session.scalars(select(Registration).where(Registration.item_id == item_id).order_by(
                Registration.status != "registered", Registration.id)).all()
        return [{"user": r.user, "status": r.status, "registered_at": iso(r.created_at),
                 "promoted_at": iso(r.promoted_at)} for r in rows]

    def my_registrations(self, user: str) -> dict[int, str]:
        with self._read() as session:
            return dict(session.execute(select(Registration.item_id, Registration.status).where(Registration.user == user)).all())

    # ------------------------------------------------------------- applications

    def application_dict(self, app: Application, events: list[ReviewEvent] | None = None, call_title: str = "") -> dict:
        out = {
            "id": app.id, "call_id": app.item_id, "call_title": call_title, "user": app.user, "project": app.project,
            "team": app.team, "summary": app.summary, "needs": app.needs, "status": app.status,
            "status_label": STATE_LABELS[app.status], "created_at": iso(app.created_at), "updated_at": iso(app.updated_at),
        }
        if events is not None:
            out["history"] = [{"author": e.author, "status": e.status, "comment": e.comment, "at": iso(e.created_at)}
                              for e in events]
        return out

    def apply(self, item_id: int, user: str, data: dict) -> dict:
        checked = validate_application(data, self.body_max)
        now = utcnow()
        try:
            with self._write() as session, session.begin():
                item = self._lock_item(session, item_id)
                if item.kind != "call" or item.draft or (item.publish_at and item.publish_at > now):
                    raise NotFound(f"no incubation call {item_id}")
                if item.deadline <= now:
                    raise Conflict("the deadline of this call has passed")
                if session.scalars(select(Application.id).where(
                        Application.item_id == item_id, Application.user == user)).first():
                    raise Conflict("you have already applied to this call; see your application")
                app = Application(item_id=item_id, user=user, status="submitted", created_at=now, updated_at=now, **checked)
                session.add(app)
                session.flush()
                session.add(ReviewEvent(application_id=app.id, author=user, status="submitted", comment="", created_at=now))
                title = item.title
        except IntegrityError:
            raise Conflict("you have already applied to this call; see your application") from None
        return self.application_dict(app, None, title)

    def resubmit(self, app_id: int, user: str, data: dict) -> dict:
        """The applicant answers a request for more information: new answers, back to submitted."""
        checked = validate_application(data, self.body_max)
        now = utcnow()
        with self._write() as session, session.begin():
            app = session.get(Application, app_id)
            if app is None or app.user != user:
                raise NotFound(f"no application {app_id}")
            if app.status != "needs_info":
                raise Conflict("an application can be changed only when more information was asked for")
            for key, value in checked.items():
                setattr(app, key, value)
            app.status, app.updated_at = "submitted", now
            session.add(ReviewEvent(application_id=app.id, author=user, status="submitted",
                                    comment="answered the request for more information", created_at=now))
        return self.application(app_id)

    def review(self, app_id: int, reviewer: str, data: dict) -> dict:
        checked = validate_review(data, self.body_max)
        now = utcnow()
        with self._write() as session, session.begin():
            app = session.get(Application, app_id)
            if app is None:
                raise NotFound(f"no application {app_id}")
            status = checked["status"]
            if status is not None and status != app.status:
                check_transition(REVIEW_TRANSITIONS, app.status, status)
                app.status = status
            else:
                status = None
            app.updated_at = now
            session.add(ReviewEvent(application_id=app.id, author=reviewer, status=status, comment=checked["comment"],
                                    created_at=now))
        return self.application(app_id)

    def application(self, app_id: int, user: str | None = None) -> dict:
        """One application with its history; with ``user``, only if it is theirs."""
        with self._read() as session:
            app = session.get(Application, app_id)
            if app is None or (user is not None and app.user != user):
                raise NotFound(f"no application {app_id}")
            events = session.scalars(select(ReviewEvent).where(ReviewEvent.application_id == app_id)
                                     .order_by(ReviewEvent.id)).all()
            title = session.scalar(select(Item.title).where(Item.id == app.item_id)) or ""
        return self.application_dict(app, events, title)

    def applications(self, *, user: str | None = None, call_id: int | None = None, status: str | None = None) -> list[dict]:
        """The review queue (oldest first), or one member's applications."""
        query = select(Application, Item.title).join(Item, Item.id == Application.item_id)
        if user is not None:
            query = query.where(Application.user == user)
        if call_id is not None:
            query = query.where(Application.item_id == call_id)
        if status:
            query = query.where(Application.status == status)
        with self._read() as session:
            rows = session.execute(query.order_by(Application.id)).all()
            ids = [a.id for a, _ in rows]
            events: dict[int, list] = {i: [] for i in ids}
            if ids:
                for e in session.scalars(select(ReviewEvent).where(ReviewEvent.application_id.in_(ids))
                                         .order_by(ReviewEvent.id)):
                    events[e.application_id].append(e)
        return [self.application_dict(a, events[a.id], title) for a, title in rows]

    def applications_csv(self, call_id: int | None = None) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "call_id", "call", "user", "project", "team", "summary", "needs", "status",
                         "submitted_at", "updated_at", "last_comment"])
        for a in self.applications(call_id=call_id):
            comments = [h["comment"] for h in a["history"] if h["comment"] and h["author"] != a["user"]]
            row = [a["id"], a["call_id"], a["call_title"], a["user"], a["project"], a["team"], a["summary"], a["needs"],
                   a["status"], a["created_at"], a["updated_at"], comments[-1] if comments else ""]
            # cells starting with = + - @ are formulas to spreadsheets: neutralise them
            writer.writerow([f"'{c}" if isinstance(c, str) and c[:1] in ("=", "+", "-", "@", "\t", "\r") else c for c in row])
        return out.getvalue()

    def counts_for_tests(self) -> dict:
        with self._read() as session:
            return {"items": session.scalar(select(func.count()).select_from(Item)),
                    "registrations": session.scalar(select(func.count()).select_from(Registration))}

