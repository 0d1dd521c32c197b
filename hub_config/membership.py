"""The studio-side membership list: people the studio itself admitted (an accepted
residency application), with the groups that admission grants. See docs/residency.md.

The list lives in the announcements database (table ``studio_members``, made by the
announcements migration 0002), because the announcements service writes it: the
acceptance and the invitation that sets a password. The hub only reads it, at login:

- demo login (:class:`hub_config.auth.demo.DemoAuthenticator`): a member who set a
  password through their invitation logs in with it and gets the granted groups;
- OpenID Connect (:class:`hub_config.auth.oidc.StudioOIDCAuthenticator`): at each login
  the granted groups are added to the provider's (:func:`merge_groups`): the provider
  stays authoritative for its own groups, the studio list only adds the groups it may grant.

Passwords are kept as scrypt hashes (``hashlib.scrypt``); invitation tokens as SHA-256
hashes, single-use and with an expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import DateTime, Integer, String, Text, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from . import db
from .config import db_url as studio_db_url

log = logging.getLogger("aistudio.membership")

SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~16 MiB, tens of milliseconds per check
TOKEN_BYTES = 32


class Base(DeclarativeBase):
    pass


class StudioMember(Base):
    """Someone the studio admitted: their e-mail, the user name they log in with (chosen
    at the invitation when the reviewer gave none), the groups granted (space-separated)."""

    __tablename__ = "studio_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    user: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    groups: Mapped[str] = mapped_column(Text, default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    invite_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    invite_expires: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    source: Mapped[str] = mapped_column(String(64), default="")  # e.g. residency:12
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


# --------------------------------------------------------------------------- pure


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_token() -> str:
    """An unguessable URL-safe token (256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256 (a leaked database gives no working link)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) of ``password``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    enc = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${enc(salt)}${enc(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches the stored hash (constant-time comparison)."""
    if not stored or not isinstance(password, str):
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def split_groups(text: str | None) -> list[str]:
    return [g for g in (text or "").split() if g]


def merge_groups(provider: set[str] | list[str], studio: list[str], grantable: set[str] | list[str]) -> set[str]:
    """A login's groups: the provider's, plus those of the studio list that the studio may
    grant. A provider group dropped at the provider goes at the next login; the studio
    list can add only ``grantable`` groups, never one the provider manages by itself."""
    return set(provider) | (set(studio) & set(grantable))


def db_url(config: dict) -> str:
    """The database of the membership list: the announcements database, when residency is on; else ''."""
    ann = config["announcements"]
    if not ann["enabled"] or not ann["residency"]["enabled"]:
        return ""
    return studio_db_url(config, "announcements")


# --------------------------------------------------------------------------- reads (the hub)


_lists: dict[str, "MembershipList"] = {}


def members(url: str) -> MembershipList:
    """The hub process's one :class:`MembershipList` of the database at ``url`` (both
    authenticators ask it at login)."""
    if url not in _lists:
        _lists[url] = MembershipList(url)
    return _lists[url]


class MembershipList:
    """The hub's view of the list: read-only, one engine, opened on first use. The
    announcements service makes the table; until it has, the list is empty."""

    def __init__(self, url: str):
        self.url = url
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def _db(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = db.make_engine(self.url)
            return self._engine

    def _member(self, where) -> StudioMember | None:
        try:
            with Session(self._db()) as s:
                return s.scalars(select(StudioMember).where(where)).first()
        except SQLAlchemyError as e:  # no table yet, database down: no studio membership, logged
            log.warning("the studio membership list could not be read: %s", str(e).splitlines()[0])
            return None

    def login(self, user: str, password: str) -> list[str] | None:
        """The groups of ``user`` when ``password`` is theirs; else None (blocking: scrypt, database)."""
        member = self._member(StudioMember.user == user)
        if member is None or not verify_password(password, member.password_hash):
            return None
        return split_groups(member.groups)

    def groups_of(self, user: str, email: str | None = None) -> list[str]:
        """The groups the list grants to ``user`` (by user name, else by verified e-mail)."""
        member = self._member(StudioMember.user == user)
        if member is None and email:
            member = self._member(StudioMember.email == email.strip().lower())
        return split_groups(member.groups) if member else []

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


# --------------------------------------------------------------------------- writes (the service)


def grant(session: Session, *, email: str, groups: list[str], source: str, user: str | None = None,
          invitation_days: int | None = None, now: datetime | None = None) -> str | None:
    """Admit ``email`` (in the caller's transaction): add the groups to their entry, made if
    new. With ``invitation_days``, a fresh invitation token is made and returned (only its
    hash is stored); the link it makes lets them choose a user name and set a password."""
    now = now or utcnow()
    email = email.strip().lower()
    member = session.scalars(select(StudioMember).where(StudioMember.email == email)).first()
    if member is None:
        member = StudioMember(email=email, user=user, groups="", source=source, created_at=now, updated_at=now)
        session.add(member)
    member.groups = " ".join(sorted(set(split_groups(member.groups)) | set(groups)))
    member.updated_at = now
    if user and not member.user:
        member.user = user
    token = None
    if invitation_days:
        token = new_token()
        member.invite_hash, member.invite_expires = token_hash(token), now + timedelta(days=invitation_days)
    session.flush()
    return token


def invitation(session: Session, token: str, now: datetime | None = None) -> StudioMember | None:
    """The entry an unexpired, unused invitation token opens; else None."""
    now = now or utcnow()
    member = session.scalars(select(StudioMember).where(StudioMember.invite_hash == token_hash(token))).first()
    if member is None or member.invite_expires is None or member.invite_expires <= now:
        return None
    return member


def redeem(session: Session, token: str, user: str, password: str, now: datetime | None = None) -> bool:
    """Use an invitation once (in the caller's transaction): set the user name (when the
    entry has none) and the password. False when the token is unknown, expired or was
    used meanwhile (compare-and-set on the token's hash)."""
    now = now or utcnow()
    member = invitation(session, token, now)
    if member is None:
        return False
    values = {"password_hash": hash_password(password), "invite_hash": None, "invite_expires": None, "updated_at": now}
    if not member.user:
        values["user"] = user
    done = session.execute(update(StudioMember).where(
        StudioMember.id == member.id, StudioMember.invite_hash == token_hash(token)).values(**values))
    return done.rowcount == 1


def user_taken(session: Session, user: str) -> bool:
    return session.scalar(select(StudioMember.id).where(StudioMember.user == user)) is not None
