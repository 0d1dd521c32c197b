"""Support requests, without HTTP: a member asks the support staff (the data processing
team, the algorithm engineering team) for help of a kind, on a dataset or project; staff
triage, assign, comment and move the request along its states. See docs/support.md.

States: new -> accepted -> in_progress -> delivered -> closed; new, accepted and
in_progress may also be declined, with a reason. Every state change is a compare-and-set
on the state the caller saw (``if_status``, else the state read in the same transaction):
a stale one is a ``Conflict`` (409) and changes nothing.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import select, update

from . import content
from .content import SHORT_MAX, TITLE_MAX, BadInput, _text, render_markdown, utcnow
from .models import SupportEvent, SupportRequest
from .store import Conflict, NotFound, Store, iso

SUPPORT_SCOPE = "custom:announcements:support"  # the staff's scope, given by a role to staff_groups/users
KINDS = {
    "data_cleaning": "Data cleaning", "alignment": "Data alignment", "structuring": "Data structuring",
    "labelling": "Data labelling", "knowledge_base": "Knowledge-base construction",
    "algorithm_engineering": "Algorithm engineering",
}
STATES = ("new", "accepted", "in_progress", "delivered", "closed", "declined")
STATE_LABELS = {"new": "New", "accepted": "Accepted", "in_progress": "In progress", "delivered": "Delivered",
                "closed": "Closed", "declined": "Declined"}
# where staff may move a request from each state
TRANSITIONS = {
    "new": {"accepted", "declined"},
    "accepted": {"in_progress", "declined"},
    "in_progress": {"delivered", "declined"},
    "delivered": {"closed", "in_progress"},  # back to work when the delivery falls short
    "closed": set(),
    "declined": set(),
}
REQUEST_FIELDS = ("kind", "subject", "description")
UPDATE_FIELDS = ("status", "if_status", "assignee", "comment", "reason")
COMMENT_MAX = 20_000


# --------------------------------------------------------------------------- validation (pure)


def _object(data) -> dict:
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    return data


def _only(data: dict, allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise BadInput(f"unknown field(s) for {what}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def validate_request(data, body_max: int = COMMENT_MAX) -> dict:
    """A new request's columns (``BadInput`` names the field)."""
    _only(_object(data), REQUEST_FIELDS, "a support request")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise BadInput(f"kind: must be one of {', '.join(KINDS)}")
    description = _text("description", data.get("description"), body_max, required=True, multiline=True)
    return {"kind": kind, "subject": _text("subject", data.get("subject"), TITLE_MAX, required=True),
            "description": description, "description_html": render_markdown(description)}


def _state(field: str, value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in STATES:
        raise BadInput(f"{field}: must be one of {', '.join(STATES)}")
    return value


def validate_update(data, *, staff: bool, body_max: int = COMMENT_MAX) -> dict:
    """A change to a request: staff send any of status (with if_status), assignee, comment,
    reason (required to decline); the member who asked sends only a comment."""
    _only(_object(data), UPDATE_FIELDS if staff else ("comment",), "a support request's update")
    out = {
        "status": _state("status", data.get("status")),
        "if_status": _state("if_status", data.get("if_status")),
        "comment": _text("comment", data.get("comment"), body_max, multiline=True).strip(),
        "reason": _text("reason", data.get("reason"), SHORT_MAX * 4, multiline=True).strip(),
        "assignee": None,
    }
    if "assignee" in data:  # "" unassigns
        out["assignee"] = _text("assignee", data.get("assignee"), 255) or ""
    if out["status"] == "declined" and not out["reason"]:
        raise BadInput("reason: say why the request is declined")
    if out["reason"] and out["status"] != "declined":
        raise BadInput("reason: is given only with status declined")
    if out["status"] is None and out["assignee"] is None and not out["comment"]:
        raise BadInput("give a new status, an assignee, a comment, or any of them")
    return out


def check_transition(current: str, new: str) -> None:
    """Raise ``BadInput`` naming ``status`` unless staff may move a request from ``current`` to ``new``."""
    content.check_transition(TRANSITIONS, current, new, "a request")


def csv_cell(value):
    """Cells starting with = + - @ are formulas to spreadsheets: neutralise them."""
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(c) for c in row])
    return out.getvalue()


def mail_for(request: dict, link: str) -> tuple[str, str]:
    """The subject and body of the notice a member gets when their request changes state."""
    subject = f"Your support request #{request['id']} is now: {request['status_label']}"
    lines = [f"Your request for {request['kind_label'].lower()} on {request['subject']} is now "
             f"{request['status_label'].lower()}."]
    if request["status"] == "declined" and request["reason"]:
        lines.append(f"Reason: {request['reason']}")
    lines += ["", f"The request and its thread: {link}", "", "-- AI Studio"]
    return subject, "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- storage


class SupportStore:
    """Support requests in the announcements database (the store's engines)."""

    def __init__(self, store: Store):
        self.store = store

    @staticmethod
    def as_dict(req: SupportRequest, events: list[SupportEvent] | None = None) -> dict:
        reason = ""
        if events is not None and req.status == "declined":
            reason = next((e.comment for e in reversed(events) if e.status == "declined"), "")
        out = {"id": req.id, "user": req.user, "kind": req.kind, "kind_label": KINDS.get(req.kind, req.kind),
               "subject": req.subject, "description": req.description, "description_html": req.description_html,
               "status": req.status, "status_label": STATE_LABELS[req.status], "assignee": req.assignee,
               "reason": reason, "created_at": iso(req.created_at), "updated_at": iso(req.updated_at)}
        if events is not None:
            out["thread"] = [{"author": e.author, "status": e.status, "assignee": e.assignee, "comment": e.comment,
                              "at": iso(e.created_at)} for e in events]
        return out

    def create(self, user: str, data: dict) -> dict:
        checked = validate_request(data, self.store.body_max)
        now = utcnow()
        with self.store._write() as session, session.begin():
            req = SupportRequest(user=user, status="new", created_at=now, updated_at=now, **checked)
            session.add(req)
            session.flush()
            session.add(SupportEvent(request_id=req.id, author=user, status="new", comment="", created_at=now))
        return self.get(req.id)

    def get(self, request_id: int, user: str | None = None) -> dict:
        """One request with its thread; with ``user``, only if they asked it (else 404)."""
        with self.store._read() as session:
            req = session.get(SupportRequest, request_id)
            if req is None or (user is not None and req.user != user):
                raise NotFound(f"no support request {request_id}")
            events = session.scalars(select(SupportEvent).where(SupportEvent.request_id == request_id)
                                     .order_by(SupportEvent.id)).all()
        return self.as_dict(req, events)

    def list(self, *, user: str | None = None, status: str | None = None, assignee: str | None = None) -> list[dict]:
        """The staff's queue (oldest first), or one member's requests."""
        query = select(SupportRequest)
        if user is not None:
            query = query.where(SupportRequest.user == user)
        if status:
            query = query.where(SupportRequest.status == status)
        if assignee:
            query = query.where(SupportRequest.assignee == assignee)
        with self.store._read() as session:
            return [self.as_dict(r) for r in session.scalars(query.order_by(SupportRequest.id)).all()]

    def update(self, request_id: int, author: str, data: dict, *, staff: bool,
               staff_names: set[str] | None = None) -> tuple[dict, bool]:
        """Apply a staff member's change, or a member's comment on their own request, in one
        transaction. Returns the request and whether its state changed (a notice is due).
        ``staff_names``: who may be assigned (None: anyone; the hub did not say)."""
        checked = validate_update(data, staff=staff, body_max=self.store.body_max)
        assignee = checked["assignee"]
        if assignee and staff_names is not None and assignee not in staff_names:
            raise BadInput(f"assignee: {assignee} is not a member of the support staff")
        now = utcnow()
        with self.store._write() as session, session.begin():
            req = session.get(SupportRequest, request_id)
            if req is None or (not staff and req.user != author):
                raise NotFound(f"no support request {request_id}")
            if checked["if_status"] and checked["if_status"] != req.status:
                raise Conflict(f"status: the request is no longer {checked['if_status']} but {req.status}; "
                               "reload it and try again")
            new = checked["status"] if checked["status"] != req.status else None
            if assignee is not None and (assignee or None) == req.assignee:
                assignee = None  # a form sends the assignee it shows: not a change
            if new is None and assignee is None and not checked["comment"]:
                raise BadInput("status: nothing changes; give a new status, another assignee or a comment")
            if new is not None:
                seen = checked["if_status"] or req.status
                check_transition(seen, new)
                # compare-and-set: the row changes only if it is still in the state the caller saw
                changed = session.execute(update(SupportRequest).where(
                    SupportRequest.id == request_id, SupportRequest.status == seen).values(status=new)).rowcount
                if changed != 1:
                    raise Conflict(f"status: the request is no longer {seen}; reload it and try again")
            values = {"updated_at": now}
            if assignee is not None:
                values["assignee"] = assignee or None
            session.execute(update(SupportRequest).where(SupportRequest.id == request_id).values(**values))
            session.add(SupportEvent(request_id=request_id, author=author, status=new,
                                     assignee=assignee, comment=checked["reason"] or checked["comment"],
                                     created_at=now))
        return self.get(request_id), new is not None

    def csv(self) -> str:
        header = ["id", "user", "kind", "subject", "status", "assignee", "reason", "created_at", "updated_at",
                  "last_comment"]
        rows = []
        with self.store._read() as session:
            requests = session.scalars(select(SupportRequest).order_by(SupportRequest.id)).all()
            events: dict[int, list] = {r.id: [] for r in requests}
            for e in session.scalars(select(SupportEvent).order_by(SupportEvent.id)):
                events.setdefault(e.request_id, []).append(e)
        for r in requests:
            d = self.as_dict(r, events[r.id])
            comments = [t["comment"] for t in d["thread"] if t["comment"]]
            rows.append([d["id"], d["user"], d["kind"], d["subject"], d["status"], d["assignee"] or "", d["reason"],
                         d["created_at"], d["updated_at"], comments[-1] if comments else ""])
        return to_csv(header, rows)

    def decisions(self, user: str) -> list[dict]:
        """The member's requests that staff have moved on from new (for their notices)."""
        return [r for r in self.list(user=user) if r["status"] != "new"]
