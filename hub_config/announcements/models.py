"""The announcements database (SQLAlchemy). Its schema is created and changed only by
the Alembic migrations in ``migrations/``, run with ``upgrade head`` at service start.
Times are naive UTC; each item keeps the IANA time zone it is shown in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .. import membership


class Base(DeclarativeBase):
    pass


class Item(Base):
    """A seminar, an incubation call or a piece of news."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    publish_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # seminars
    speaker: Mapped[str | None] = mapped_column(String(300), nullable=True)
    start_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    place: Mapped[str | None] = mapped_column(String(300), nullable=True)
    link: Mapped[str | None] = mapped_column(String(500), nullable=True)
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # incubation calls
    eligibility: Mapped[str | None] = mapped_column(Text, nullable=True)
    eligibility_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    offer: Mapped[str | None] = mapped_column(Text, nullable=True)
    offer_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    deadline: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_items_window", "draft", "publish_at", "expires_at"),)


class Registration(Base):
    """A member's seat at a seminar, or their place on its waiting list (ordered by id)."""

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    user: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # registered | waiting
    created_at: Mapped[datetime] = mapped_column(DateTime)
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("item_id", "user", name="uq_registrations_item_user"),
        Index("ix_registrations_item_status", "item_id", "status", "id"),
    )


class Application(Base):
    """A member's application to an incubation call."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    user: Mapped[str] = mapped_column(String(255))
    project: Mapped[str] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    needs: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("item_id", "user", name="uq_applications_item_user"),
        Index("ix_applications_status", "status", "id"),
    )


class ReviewEvent(Base):
    """A step in an application's history: a status change and/or a comment."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)


# ------------------------------------------------------------------ residency applications

# The membership list an acceptance writes (hub_config.membership.StudioMember) lives in this
# database too: its table joins this metadata, which the migrations are checked against.
membership.StudioMember.__table__.to_metadata(Base.metadata)


class ResidencyApplication(Base):
    """An application for residency, sent through the public form (no account needed)."""

    __tablename__ = "residency_applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    area: Mapped[str] = mapped_column(String(32))
    reserves: Mapped[str] = mapped_column(Text)
    team: Mapped[str] = mapped_column(Text)
    wants: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # the applicant's private link
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_residency_applications_status", "status", "id"),)


class ResidencyEvent(Base):
    """A step in a residency application's history: a state change and/or a comment."""

    __tablename__ = "residency_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("residency_applications.id", ondelete="CASCADE"),
                                                index=True)
    author: Mapped[str] = mapped_column(String(255))  # a reviewer's user name, or "applicant"
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)


# ------------------------------------------------------------------ support requests and field-test scenarios


class SupportRequest(Base):
    """A member's request for help from the support staff (data processing or algorithm engineering)."""

    __tablename__ = "support_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))  # the dataset or project it concerns
    description: Mapped[str] = mapped_column(Text)
    description_html: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (Index("ix_support_requests_status", "status", "id"),)


class SupportEvent(Base):
    """A step in a support request's thread: a comment, a state change and/or an assignment."""

    __tablename__ = "support_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("support_requests.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(255), nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Scenario(Base):
    """A field-test scenario a partner (hospital, clinic, insurer...) offers for early trials."""

    __tablename__ = "scenarios"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    partner_kind: Mapped[str] = mapped_column(String(32))
    partner: Mapped[str] = mapped_column(String(200))
    setting: Mapped[str] = mapped_column(Text)
    trial: Mapped[str] = mapped_column(Text)  # what can be trialled there
    requirements: Mapped[str] = mapped_column(Text)
    data_available: Mapped[str] = mapped_column(Text)
    contact: Mapped[str] = mapped_column(String(300))
    window_from: Mapped[datetime] = mapped_column(DateTime)
    window_to: Mapped[datetime] = mapped_column(DateTime)
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    partner_token: Mapped[str] = mapped_column(String(64), unique=True)  # the partner contact's private link
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ScenarioApplication(Base):
    """A member's proposal to trial their work in a scenario; reviewed as incubation applications are."""

    __tablename__ = "scenario_applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id", ondelete="CASCADE"))
    user: Mapped[str] = mapped_column(String(255))
    project: Mapped[str] = mapped_column(String(200))
    proposal: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("scenario_id", "user", name="uq_scenario_applications_scenario_user"),
        Index("ix_scenario_applications_status", "status", "id"),
    )


class ScenarioEvent(Base):
    """A step in a scenario application's history: a status change and/or a comment."""

    __tablename__ = "scenario_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("scenario_applications.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
