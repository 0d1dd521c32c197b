"""The datasets registry's tables and the plain values the rest of the studio passes
around (:class:`MountSpec` for the spawners, :class:`RequestView` for the catalogue).
Times are UTC epoch seconds."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


# 64 bits (sizes in bytes pass 2**31 at 2 GiB); SQLite's INTEGER is 64 bits already
BigInt = BigInteger().with_variant(Integer(), "sqlite")


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
    row_count: Mapped[int | None] = mapped_column(BigInt, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInt, nullable=True)
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


def request_view(r: AccessRequest, name: str) -> RequestView:
    return RequestView(r.id, name, r.user, r.purpose, r.status, r.created_at, r.decided_at, r.decided_by, r.comment,
                       r.expires_at)


