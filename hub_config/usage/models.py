"""The usage database's tables: one row per server start, and the groups its member
belonged to at launch. Times are UTC epoch seconds."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


# 64 bits (memory in bytes passes 2**31 at 2 GiB); SQLite's INTEGER is 64 bits already
BigInt = BigInteger().with_variant(Integer(), "sqlite")


class ServerUsage(Base):
    __tablename__ = "server_usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    server_name: Mapped[str] = mapped_column(String(255), default="")
    profile: Mapped[str] = mapped_column(String(255))
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    gpu_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cpu: Mapped[float] = mapped_column(Float)
    memory: Mapped[int] = mapped_column(BigInt)  # bytes
    started_at: Mapped[float] = mapped_column(Float)
    stopped_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    # mean utilisation (0-100) of the server's GPUs over the samples taken while it ran
    gpu_util_mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    gpu_util_samples: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    groups: Mapped[list[UsageGroup]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    __table_args__ = (Index("ix_server_usage_user_started", "user", "started_at"),)

    @property
    def group_names(self) -> tuple:
        return tuple(sorted(g.name for g in self.groups))


class UsageGroup(Base):
    """The groups a server's member belonged to at launch (its usage counts toward each)."""

    __tablename__ = "server_usage_group"

    usage_id: Mapped[int] = mapped_column(ForeignKey("server_usage.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class QueueEntry(Base):
    """A member waiting for GPUs (``waiting``) or holding a reservation (``reserved``).

    Rows leave the table when the launch they stand for starts, is withdrawn, lapses or
    is removed by an admin; ``hub_config.queue`` owns their meaning."""

    __tablename__ = "queue_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(255), unique=True)  # one launch in line per member
    server_name: Mapped[str] = mapped_column(String(255), default="")
    groups: Mapped[str] = mapped_column(String(2000), default="")  # JSON list, at joining
    profile: Mapped[str] = mapped_column(String(255))
    user_options: Mapped[str] = mapped_column(String(4000), default="{}")  # JSON, as a spawn takes them
    gpus: Mapped[int] = mapped_column(Integer)
    gpu_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    auto_start: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | reserved
    reserved_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    reserved_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class MemberContact(Base):
    """A member's e-mail address as the identity provider last gave it (notices by mail)."""

    __tablename__ = "member_contact"

    user: Mapped[str] = mapped_column(String(255), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[float] = mapped_column(Float)


class RuntimeExtension(Base):
    """A member's extension of a running server's run-time limit (quota ``extend_by``)."""

    __tablename__ = "runtime_extension"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    usage_id: Mapped[int] = mapped_column(ForeignKey("server_usage.id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(255))
    at: Mapped[float] = mapped_column(Float)
    seconds: Mapped[int] = mapped_column(Integer)
    new_limit: Mapped[int] = mapped_column(Integer)  # the server's run-time limit after it, seconds
