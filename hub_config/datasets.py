"""The datasets registry: what a data steward has registered, who may read it, and
everything that happened to it (audit), in a SQLAlchemy database (SQLite in the data
folder by default, PostgreSQL or any other by URL), as the usage records are.

Only the hub side writes here: the steward's ``aistudio datasets`` command, the
hub's spawners (mount events) and the hub-managed catalogue service (requests,
audit). Members' servers never reach this database; they ask the catalogue
service, which answers from here for the calling token's user only.

A dataset is *published* only after its de-identification scan passed, or a
steward recorded an override with a reason (``datasets_scan``). Members see a
published dataset when a grant names them or one of their hub groups and has not
expired. Times are UTC epoch seconds.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, create_engine, event, or_, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
SOURCE_KINDS = ("local", "pvc", "nfs", "hostpath")
STATUSES = ("draft", "published", "retired")
AUDIT_EVENTS = (
    "list", "metadata", "preview", "mount", "unmount", "request", "decision", "grant", "revoke", "override",
    "add", "update", "scan", "publish", "retire", "denied",
)


class DatasetError(Exception):
    """A steward's or member's request that cannot be done; ``status`` is the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class Base(DeclarativeBase):
    pass


class Dataset(Base):
    __tablename__ = "dataset"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    steward: Mapped[str] = mapped_column(String(255), default="")
    # where the files are: local (path on this machine), or on Kubernetes an existing
    # PVC (claim, sub_path), an NFS export (server, path) or a host path (path)
    source_kind: Mapped[str] = mapped_column(String(16), default="local")
    path: Mapped[str | None] = mapped_column(Text, nullable=True)  # where the hub reads the files (scan, preview)
    source_claim: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source_server: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source_path: Mapped[str | None] = mapped_column(Text, nullable=True)  # NFS export path, host path, PVC sub-path
    format: Mapped[str] = mapped_column(String(32), default="")
    schema_json: Mapped[str] = mapped_column(Text, default="[]")
    row_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deid_method: Mapped[str] = mapped_column(Text, default="")
    deid_date: Mapped[str] = mapped_column(String(32), default="")
    deid_steward: Mapped[str] = mapped_column(String(255), default="")
    licence: Mapped[str] = mapped_column(String(255), default="")
    terms: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(64), default="1")
    tags_json: Mapped[str] = mapped_column(Text, default="[]")
    quasi_identifiers_json: Mapped[str] = mapped_column(Text, default="[]")
    min_k: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    scan_status: Mapped[str] = mapped_column(String(16), default="not-scanned")
    scan_json: Mapped[str] = mapped_column(Text, default="{}")
    scanned_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    override_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    override_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    @property
    def tags(self) -> list[str]:
        return json.loads(self.tags_json or "[]")

    @property
    def quasi_identifiers(self) -> list[str]:
        return json.loads(self.quasi_identifiers_json or "[]")

    @property
    def schema(self) -> list[dict]:
        return json.loads(self.schema_json or "[]")

    @property
    def scan(self) -> dict:
        return json.loads(self.scan_json or "{}")

    def summary(self) -> dict:
        """What a member's list shows (no paths)."""
        return {
            "name": self.name, "title": self.title, "description": self.description, "tags": self.tags,
            "format": self.format, "rows": self.row_count, "size_bytes": self.size_bytes, "version": self.version,
            "steward": self.steward,
        }

    def member_view(self) -> dict:
        """Everything a member may know of the dataset: never its files' location on the hub."""
        return {
            **self.summary(),
            "licence": self.licence,
            "terms": self.terms,
            "deidentification": {"method": self.deid_method, "date": self.deid_date, "steward": self.deid_steward},
            "quasi_identifiers": self.quasi_identifiers,
            "min_k": self.min_k,
            "scan": {"status": self.scan_status, "overridden": bool(self.override_reason),
                     "scanned_at": self.scanned_at},
            "files": [{"path": f["path"], "format": f["format"], "rows": f.get("rows"), "size_bytes": f.get("size_bytes")}
                      for f in self.schema],
            "status": self.status,
        }

    def steward_view(self) -> dict:
        """Everything, for the steward's command."""
        return {
            **self.member_view(),
            "source": source_dict(self),
            "scan": {"status": self.scan_status, "report": self.scan, "scanned_at": self.scanned_at,
                     "override": {"reason": self.override_reason, "by": self.override_by, "at": self.override_at}
                     if self.override_reason else None},
            "schema": self.schema,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }


def source_dict(ds: Dataset) -> dict:
    out = {"kind": ds.source_kind}
    for key, value in (("path", ds.path), ("claim", ds.source_claim), ("server", ds.source_server),
                       ("source_path", ds.source_path)):
        if value:
            out[key] = value
    return out


class Grant(Base):
    """A group's or a user's right to read a dataset, until ``expires_at`` (None: no end)."""

    __tablename__ = "dataset_grant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # user | group
    principal: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    granted_by: Mapped[str] = mapped_column(String(255), default="")
    granted_at: Mapped[float] = mapped_column(Float)
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        UniqueConstraint("dataset_id", "kind", "principal"),
        Index("ix_dataset_grant_principal", "kind", "principal"),
    )


class AccessRequest(Base):
    __tablename__ = "dataset_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    purpose: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending | approved | denied
    created_at: Mapped[float] = mapped_column(Float)
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AuditEvent(Base):
    __tablename__ = "dataset_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    event: Mapped[str] = mapped_column(String(32), index=True)
    user: Mapped[str] = mapped_column(String(255), index=True)  # who did it (member or steward)
    dataset: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")

    def as_dict(self) -> dict:
        return {"id": self.id, "at": self.at, "event": self.event, "user": self.user, "dataset": self.dataset,
                "detail": json.loads(self.detail or "{}")}


@dataclass(frozen=True)
class MountSpec:
    """A dataset a member's server gets, as the spawners need it."""

    name: str
    source_kind: str
    path: str | None
    claim: str | None = None
    server: str | None = None
    source_path: str | None = None
    expires_at: float | None = None


@dataclass
class RequestView:
    id: int
    dataset: str
    user: str
    purpose: str
    status: str
    created_at: float
    decided_at: float | None
    decided_by: str | None
    comment: str | None
    expires_at: float | None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "extra"}


def _request_view(r: AccessRequest, name: str) -> RequestView:
    return RequestView(r.id, name, r.user, r.purpose, r.status, r.created_at, r.decided_at, r.decided_by, r.comment,
                       r.expires_at)


def _grant_filter(user: str, groups, now: float):
    who = (Grant.kind == "user") & (Grant.principal == user)
    groups = list(groups)
    if groups:
        who = who | ((Grant.kind == "group") & Grant.principal.in_(groups))
    return who & or_(Grant.expires_at.is_(None), Grant.expires_at > now)


class DatasetStore:
    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine = create_engine(url, future=True, connect_args=args)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(conn, _):
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        Base.metadata.create_all(self.engine)

    # ------------------------------------------------------------------ audit

    def audit(self, event_name: str, user: str, dataset: str | None = None, s: Session | None = None,
              now: float | None = None, **detail) -> None:
        row = AuditEvent(at=time.time() if now is None else now, event=event_name, user=user or "", dataset=dataset,
                         detail=json.dumps(detail, sort_keys=True, default=str))
        if s is not None:
            s.add(row)
            return
        with Session(self.engine) as s2, s2.begin():
            s2.add(row)

    def audit_events(self, *, event_names=None, user=None, dataset=None, since=None, until=None,
                     limit=None) -> list[dict]:
        query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
        if event_names:
            query = query.where(AuditEvent.event.in_(list(event_names)))
        if user:
            query = query.where(AuditEvent.user == user)
        if dataset:
            query = query.where(AuditEvent.dataset == dataset)
        if since is not None:
            query = query.where(AuditEvent.at >= since)
        if until is not None:
            query = query.where(AuditEvent.at < until)
        if limit:
            query = query.limit(limit)
        with Session(self.engine) as s:
            return [e.as_dict() for e in s.scalars(query)]

    # ------------------------------------------------------------------ datasets

    def _get(self, s: Session, name: str) -> Dataset:
        ds = s.scalars(select(Dataset).where(Dataset.name == name)).first()
        if ds is None:
            raise DatasetError(f"There is no dataset {name!r}", 404)
        return ds

    def get(self, name: str) -> Dataset:
        with Session(self.engine, expire_on_commit=False) as s:
            ds = self._get(s, name)
            s.expunge(ds)
            return ds

    def exists(self, name: str) -> bool:
        with Session(self.engine) as s:
            return s.scalars(select(Dataset.id).where(Dataset.name == name)).first() is not None

    def add(self, name: str, *, actor: str, source_kind: str = "local", path: str | None = None, **fields) -> Dataset:
        if not NAME_RE.match(name or ""):
            raise DatasetError(f"{name!r} is not a dataset name: lowercase letters, digits and dashes, at most 42")
        check_source(source_kind, path, fields.get("source_claim"), fields.get("source_server"), fields.get("source_path"))
        now = time.time()
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            if s.scalars(select(Dataset.id).where(Dataset.name == name)).first() is not None:
                raise DatasetError(f"A dataset {name!r} exists already", 409)
            ds = Dataset(name=name, source_kind=source_kind, path=path, created_at=now, updated_at=now)
            _apply_fields(ds, fields)
            s.add(ds)
            self.audit("add", actor, name, s=s, source=source_dict(ds))
        return ds

    def update(self, name: str, *, actor: str, **fields) -> Dataset:
        """Change metadata; a change of source or quasi-identifiers sends it back to draft (scan again)."""
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            ds = self._get(s, name)
            before = source_dict(ds), ds.quasi_identifiers_json, ds.min_k
            if "source_kind" in fields or "path" in fields:
                fields.setdefault("source_kind", ds.source_kind)
            _apply_fields(ds, fields)
            check_source(ds.source_kind, ds.path, ds.source_claim, ds.source_server, ds.source_path)
            changed = sorted(k for k in fields)
            if (source_dict(ds), ds.quasi_identifiers_json, ds.min_k) != before:
                ds.scan_status, ds.scan_json, ds.scanned_at = "not-scanned", "{}", None
                ds.override_reason = ds.override_by = ds.override_at = None
                if ds.status == "published":
                    ds.status = "draft"
                    changed.append("status=draft (source or quasi-identifiers changed: scan and publish again)")
            ds.updated_at = time.time()
            self.audit("update", actor, name, s=s, changed=changed)
        return ds

    def record_scan(self, name: str, *, actor: str, report: dict, facts: dict) -> Dataset:
        """Store a scan's report and the facts read from the files (schema, rows, size, format)."""
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            ds = self._get(s, name)
            ds.scan_status = "pass" if report["passed"] else "fail"
            ds.scan_json = json.dumps(report, sort_keys=True, default=str)
            ds.scanned_at = time.time()
            ds.schema_json = json.dumps(facts["files"], default=str)
            ds.row_count = facts["rows"]
            ds.size_bytes = facts["size_bytes"]
            ds.format = facts["format"]
            notes = {}
            if not report["passed"] and ds.status == "published" and not ds.override_reason:
                ds.status = "draft"
                notes["unpublished"] = True
            self.audit("scan", actor, name, s=s, passed=report["passed"], findings=report.get("summary", []), **notes)
        return ds

    def publish(self, name: str, *, actor: str, override_reason: str | None = None) -> Dataset:
        """Publish a scanned dataset; a failed scan needs an override with a reason (audited)."""
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            ds = self._get(s, name)
            if ds.status == "retired":
                raise DatasetError(f"{name} is retired; add it again under a new name or version", 409)
            if ds.scan_status == "not-scanned":
                raise DatasetError(f"{name} has not been scanned: run aistudio datasets scan {name}", 409)
            if ds.scan_status == "fail":
                if not (override_reason or "").strip():
                    raise DatasetError(
                        f"{name} failed the de-identification scan ({'; '.join(ds.scan.get('summary', []))}); "
                        "fix the data, or publish with --override-reason", 409)
                ds.override_reason, ds.override_by, ds.override_at = override_reason.strip(), actor, time.time()
                self.audit("override", actor, name, s=s, reason=override_reason.strip(),
                           findings=ds.scan.get("summary", []))
            ds.status = "published"
            ds.updated_at = time.time()
            self.audit("publish", actor, name, s=s, scan=ds.scan_status)
        return ds

    def retire(self, name: str, *, actor: str, reason: str = "") -> Dataset:
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            ds = self._get(s, name)
            ds.status = "retired"
            ds.updated_at = time.time()
            self.audit("retire", actor, name, s=s, reason=reason)
        return ds

    def datasets(self, status: str | None = None) -> list[Dataset]:
        query = select(Dataset).order_by(Dataset.name)
        if status:
            query = query.where(Dataset.status == status)
        with Session(self.engine, expire_on_commit=False) as s:
            rows = list(s.scalars(query))
            s.expunge_all()
            return rows

    # ------------------------------------------------------------------ grants

    def grant(self, name: str, *, actor: str, users=(), groups=(), expires_at: float | None = None,
              request_id: int | None = None, s: Session | None = None) -> None:
        if s is None:
            with Session(self.engine) as s2, s2.begin():
                return self.grant(name, actor=actor, users=users, groups=groups, expires_at=expires_at,
                                  request_id=request_id, s=s2)
        ds = self._get(s, name)
        now = time.time()
        for kind, principal in [("user", u) for u in users] + [("group", g) for g in groups]:
            if not principal:
                raise DatasetError("empty user or group name")
            row = s.scalars(select(Grant).where(Grant.dataset_id == ds.id, Grant.kind == kind,
                                                Grant.principal == principal)).first()
            if row is None:
                row = Grant(dataset_id=ds.id, kind=kind, principal=principal, granted_at=now)
                s.add(row)
            row.expires_at, row.granted_by, row.granted_at, row.request_id = expires_at, actor, now, request_id
            self.audit("grant", actor, name, s=s, **{"member" if kind == "user" else "group": principal},
                       expires_at=expires_at, request=request_id)

    def revoke(self, name: str, *, actor: str, users=(), groups=()) -> int:
        removed = 0
        with Session(self.engine) as s, s.begin():
            ds = self._get(s, name)
            for kind, principal in [("user", u) for u in users] + [("group", g) for g in groups]:
                row = s.scalars(select(Grant).where(Grant.dataset_id == ds.id, Grant.kind == kind,
                                                    Grant.principal == principal)).first()
                if row is not None:
                    s.delete(row)
                    removed += 1
                    self.audit("revoke", actor, name, s=s, **{"member" if kind == "user" else "group": principal})
        return removed

    def grants(self, name: str | None = None) -> list[dict]:
        query = select(Grant, Dataset.name).join(Dataset).order_by(Dataset.name, Grant.kind, Grant.principal)
        if name:
            query = query.where(Dataset.name == name)
        with Session(self.engine) as s:
            return [{"dataset": n, "kind": g.kind, "principal": g.principal, "expires_at": g.expires_at,
                     "granted_by": g.granted_by, "granted_at": g.granted_at, "request": g.request_id}
                    for g, n in s.execute(query)]

    # ------------------------------------------------------------------ what a member may see

    def authorised(self, user: str, groups, now: float | None = None) -> list[Dataset]:
        """Published datasets granted to ``user`` or one of ``groups``, unexpired (one query)."""
        now = time.time() if now is None else now
        ids = select(Grant.dataset_id).where(_grant_filter(user, groups, now))
        query = select(Dataset).where(Dataset.status == "published", Dataset.id.in_(ids)).order_by(Dataset.name)
        with Session(self.engine, expire_on_commit=False) as s:
            rows = list(s.scalars(query))
            s.expunge_all()
            return rows

    def authorised_summaries(self, user: str, groups, now: float | None = None) -> list[dict]:
        """The member's list, read with plain columns (no ORM objects): what the catalogue lists."""
        now = time.time() if now is None else now
        ids = select(Grant.dataset_id).where(_grant_filter(user, groups, now))
        cols = (Dataset.name, Dataset.title, Dataset.description, Dataset.tags_json, Dataset.format,
                Dataset.row_count, Dataset.size_bytes, Dataset.version, Dataset.steward)
        query = select(*cols).where(Dataset.status == "published", Dataset.id.in_(ids)).order_by(Dataset.name)
        with self.engine.connect() as conn:
            return [
                {"name": n, "title": t, "description": d, "tags": json.loads(tags), "format": f, "rows": r,
                 "size_bytes": sz, "version": v, "steward": st}
                for n, t, d, tags, f, r, sz, v, st in conn.execute(query)
            ]

    def access(self, name: str, user: str, groups, now: float | None = None) -> tuple[Dataset, float | None]:
        """The dataset if ``user`` may read it now, with the latest expiry of its grants (None: none);
        else DatasetError 403 (published, not granted) or 404 (no such published dataset)."""
        now = time.time() if now is None else now
        with Session(self.engine, expire_on_commit=False) as s:
            ds = s.scalars(select(Dataset).where(Dataset.name == name)).first()
            if ds is None or ds.status != "published":
                raise DatasetError(f"There is no dataset {name!r}", 404)
            grants = list(s.scalars(select(Grant).where(Grant.dataset_id == ds.id, _grant_filter(user, groups, now))))
            s.expunge_all()
        if not grants:
            raise DatasetError(f"You have no access to {name}; you may request it", 403)
        expiry = None if any(g.expires_at is None for g in grants) else max(g.expires_at for g in grants)
        return ds, expiry

    def requestable(self, user: str, groups, now: float | None = None) -> list[dict]:
        """Published datasets the member does not have: metadata only, with their latest request."""
        now = time.time() if now is None else now
        ids = select(Grant.dataset_id).where(_grant_filter(user, groups, now))
        query = select(Dataset).where(Dataset.status == "published", Dataset.id.not_in(ids)).order_by(Dataset.name)
        with Session(self.engine) as s:
            out = []
            latest = {}
            for r in s.scalars(select(AccessRequest).where(AccessRequest.user == user).order_by(AccessRequest.id)):
                latest[r.dataset_id] = r
            for ds in s.scalars(query):
                entry = {**ds.summary(), "licence": ds.licence, "terms": ds.terms,
                         "deidentification": {"method": ds.deid_method, "date": ds.deid_date}}
                r = latest.get(ds.id)
                entry["request"] = {"id": r.id, "status": r.status, "comment": r.comment} if r else None
                out.append(entry)
            return out

    def mounts_for(self, user: str, groups, now: float | None = None) -> list[MountSpec]:
        out = []
        for ds in self.authorised(user, groups, now):
            _, expiry = self.access(ds.name, user, groups, now)
            out.append(MountSpec(ds.name, ds.source_kind, ds.path, ds.source_claim, ds.source_server, ds.source_path,
                                 expiry))
        return out

    # ------------------------------------------------------------------ access requests

    def request_access(self, name: str, user: str, groups, purpose: str) -> RequestView:
        purpose = (purpose or "").strip()
        if len(purpose) < 10:
            raise DatasetError("State the purpose of your request (at least 10 characters)", 400)
        if len(purpose) > 4000:
            raise DatasetError("The purpose is too long (at most 4000 characters)", 400)
        now = time.time()
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            ds = s.scalars(select(Dataset).where(Dataset.name == name)).first()
            if ds is None or ds.status != "published":
                raise DatasetError(f"There is no dataset {name!r}", 404)
            if s.scalars(select(Grant.id).where(Grant.dataset_id == ds.id, _grant_filter(user, groups, now))).first():
                raise DatasetError(f"You have access to {name} already", 409)
            pending = s.scalars(select(AccessRequest).where(
                AccessRequest.dataset_id == ds.id, AccessRequest.user == user, AccessRequest.status == "pending")).first()
            if pending is not None:
                raise DatasetError(f"Your request {pending.id} for {name} is pending already", 409)
            r = AccessRequest(dataset_id=ds.id, user=user, purpose=purpose, created_at=now)
            s.add(r)
            s.flush()
            self.audit("request", user, name, s=s, request=r.id, purpose=purpose)
            return _request_view(r, name)

    def requests(self, *, user: str | None = None, status: str | None = None, dataset: str | None = None
                 ) -> list[RequestView]:
        query = select(AccessRequest, Dataset.name).join(Dataset).order_by(AccessRequest.id)
        if user:
            query = query.where(AccessRequest.user == user)
        if status:
            query = query.where(AccessRequest.status == status)
        if dataset:
            query = query.where(Dataset.name == dataset)
        with Session(self.engine) as s:
            return [_request_view(r, n) for r, n in s.execute(query)]

    def decide(self, request_id: int, *, actor: str, approve: bool, comment: str = "",
               expires_at: float | None = None) -> RequestView:
        """A steward's decision; an approval grants the member the dataset (until ``expires_at``)."""
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            r = s.get(AccessRequest, request_id)
            if r is None:
                raise DatasetError(f"There is no request {request_id}", 404)
            if r.status != "pending":
                raise DatasetError(f"Request {request_id} was {r.status} already", 409)
            if not approve and not (comment or "").strip():
                raise DatasetError("A denial needs a comment for the member", 400)
            if approve and expires_at is not None and expires_at <= time.time():
                raise DatasetError("The expiry is in the past", 400)
            ds = s.get(Dataset, r.dataset_id)
            r.status = "approved" if approve else "denied"
            r.decided_at, r.decided_by, r.comment, r.expires_at = time.time(), actor, comment or "", expires_at
            self.audit("decision", actor, ds.name, s=s, request=r.id, member=r.user, decision=r.status,
                       comment=comment or "", expires_at=expires_at)
            if approve:
                self.grant(ds.name, actor=actor, users=[r.user], expires_at=expires_at, request_id=r.id, s=s)
            return _request_view(r, ds.name)


def check_source(kind, path, claim, server, source_path) -> None:
    if kind not in SOURCE_KINDS:
        raise DatasetError(f"source kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
    if kind == "local" and not path:
        raise DatasetError("a local dataset needs --path (its folder on this machine)")
    if path and not str(path).startswith("/"):
        raise DatasetError(f"path {path!r} must be absolute")
    if kind == "pvc" and not claim:
        raise DatasetError("a pvc dataset needs --claim (an existing PersistentVolumeClaim)")
    if kind == "nfs" and not (server and source_path):
        raise DatasetError("an nfs dataset needs --server and --source-path")
    if kind == "hostpath" and not (source_path or "").startswith("/"):
        raise DatasetError("a hostpath dataset needs --source-path, an absolute path on the nodes")
    if source_path and ".." in Path(source_path).parts:
        raise DatasetError("source path may not contain '..'")


FIELDS = {
    "title", "description", "steward", "source_kind", "path", "source_claim", "source_server", "source_path",
    "deid_method", "deid_date", "deid_steward", "licence", "terms", "version", "tags", "quasi_identifiers", "min_k",
}


def _apply_fields(ds: Dataset, fields: dict) -> None:
    for key, value in fields.items():
        if key not in FIELDS:
            raise DatasetError(f"unknown dataset field {key!r}")
        if key == "tags":
            ds.tags_json = json.dumps(sorted({t.strip() for t in value if t.strip()}))
        elif key == "quasi_identifiers":
            ds.quasi_identifiers_json = json.dumps([c.strip() for c in value if c.strip()])
        elif key == "min_k":
            if value is not None and int(value) < 2:
                raise DatasetError("min_k must be at least 2")
            ds.min_k = None if value is None else int(value)
        else:
            setattr(ds, key, value)


_stores: dict[str, DatasetStore] = {}


def dataset_store(url: str) -> DatasetStore:
    """One store per database URL for the whole hub process."""
    if url not in _stores:
        _stores[url] = DatasetStore(url)
    return _stores[url]
