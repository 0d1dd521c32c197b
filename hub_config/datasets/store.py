"""The datasets registry: what a data steward has registered, who may read it, and
everything that happened to it (audit), in a SQLAlchemy database (SQLite in the data
folder by default, PostgreSQL or any other by URL), as the usage records are.

Only the hub side writes here: the steward's ``aistudio datasets`` command, the
hub's spawners (mount events) and the hub-managed catalogue service (requests,
audit). Members' servers never reach this database; they ask the catalogue
service, which answers from here for the calling token's user only.

A dataset is *published* only after its de-identification scan passed, or a
steward recorded an override with a reason (``scan``). Members see a
published dataset when a grant names them or one of their hub groups and has not
expired. Times are UTC epoch seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import db
from .models import (
    NAME_RE, SOURCE_KINDS, AccessRequest, AuditEvent, Dataset, DatasetError, Grant, MountSpec, RequestView,
    request_view, source_dict,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def grant_filter(user: str, groups, now: float):
    who = (Grant.kind == "user") & (Grant.principal == user)
    groups = list(groups)
    if groups:
        who = who | ((Grant.kind == "group") & Grant.principal.in_(groups))
    return who & or_(Grant.expires_at.is_(None), Grant.expires_at > now)


class DatasetStore:
    def __init__(self, url: str):
        self.engine = db.make_engine(url)
        db.upgrade(self.engine, MIGRATIONS, baseline_table="dataset")

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
        try:
            with Session(self.engine, expire_on_commit=False) as s, s.begin():
                if s.scalars(select(Dataset.id).where(Dataset.name == name)).first() is not None:
                    raise DatasetError(f"A dataset {name!r} exists already", 409)
                ds = Dataset(name=name, source_kind=source_kind, path=path, created_at=now, updated_at=now)
                _apply_fields(ds, fields)
                s.add(ds)
                self.audit("add", actor, name, s=s, source=source_dict(ds))
        except IntegrityError:  # added by another steward between the check and the insert
            if self.exists(name):
                raise DatasetError(f"A dataset {name!r} exists already", 409) from None
            raise
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
            for attempt in range(3):
                try:
                    with Session(self.engine) as s2, s2.begin():
                        return self.grant(name, actor=actor, users=users, groups=groups, expires_at=expires_at,
                                          request_id=request_id, s=s2)
                except IntegrityError:  # the same grant made at once elsewhere: it is there now, update it
                    if attempt == 2:
                        raise
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
        ids = select(Grant.dataset_id).where(grant_filter(user, groups, now))
        query = select(Dataset).where(Dataset.status == "published", Dataset.id.in_(ids)).order_by(Dataset.name)
        with Session(self.engine, expire_on_commit=False) as s:
            rows = list(s.scalars(query))
            s.expunge_all()
            return rows

    def authorised_summaries(self, user: str, groups, now: float | None = None) -> list[dict]:
        """The member's list, read with plain columns (no ORM objects): what the catalogue lists."""
        now = time.time() if now is None else now
        ids = select(Grant.dataset_id).where(grant_filter(user, groups, now))
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
            grants = list(s.scalars(select(Grant).where(Grant.dataset_id == ds.id, grant_filter(user, groups, now))))
            s.expunge_all()
        if not grants:
            raise DatasetError(f"You have no access to {name}; you may request it", 403)
        expiry = None if any(g.expires_at is None for g in grants) else max(g.expires_at for g in grants)
        return ds, expiry

    def requestable(self, user: str, groups, now: float | None = None) -> list[dict]:
        """Published datasets the member does not have: metadata only, with their latest request."""
        now = time.time() if now is None else now
        ids = select(Grant.dataset_id).where(grant_filter(user, groups, now))
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
            if s.scalars(select(Grant.id).where(Grant.dataset_id == ds.id, grant_filter(user, groups, now))).first():
                raise DatasetError(f"You have access to {name} already", 409)
            pending = s.scalars(select(AccessRequest).where(
                AccessRequest.dataset_id == ds.id, AccessRequest.user == user, AccessRequest.status == "pending")).first()
            if pending is not None:
                raise DatasetError(f"Your request {pending.id} for {name} is pending already", 409)
            r = AccessRequest(dataset_id=ds.id, user=user, purpose=purpose, created_at=now)
            s.add(r)
            s.flush()
            self.audit("request", user, name, s=s, request=r.id, purpose=purpose)
            return request_view(r, name)

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
            return [request_view(r, n) for r, n in s.execute(query)]

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
            return request_view(r, ds.name)


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
