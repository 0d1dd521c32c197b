"""The usage database's tables: one row per server start, and the groups its member
belonged to at launch. Times are UTC epoch seconds."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
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
