"""Notices to members by e-mail: the one way any part of the studio mails a member
(a GPU reserved for them, run-time warnings, programme news). See docs/notifications.md.

- :func:`smtp_settings` reads ``notifications.smtp`` (None: mail off);
- :class:`Mailer` sends one plain-text UTF-8 message with ``smtplib``, off the event
  loop; a failure is logged and answered False, never raised, so that no caller breaks
  because a mail server is down;
- :class:`AddressBook`: the demo users' ``email`` in the config, else the address the
  identity provider gave at the last login (``member_contact``, usage database);
- :class:`Notifier` puts them together: ``await notifier.notify(user, subject, body)``;
- :func:`service_environment` / :func:`notifier_from_environment`: the same notifier in a
  hub-managed service, which gets the settings from the hub through its environment.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import smtplib
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import db
from .config import StudioConfigError
from .config import db_url as studio_db_url
from .usage.models import MemberContact
from .usage.store import MIGRATIONS as USAGE_MIGRATIONS

log = logging.getLogger("aistudio.notifications")

SECURITY = ("none", "starttls", "ssl")
# the port that goes with each kind of security, and the security a well-known port implies
DEFAULT_PORT = {"ssl": 465, "starttls": 587, "none": 25}
PORT_SECURITY = {465: "ssl", 587: "starttls"}
DEFAULT_TIMEOUT = 10.0  # seconds


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SMTPSettings:
    """Where and how the studio's mail is sent (``notifications.smtp``)."""

    host: str
    sender: str  # the config's ``from``: an address or "Name <address>"
    port: int = 25
    security: str = "none"  # none | starttls | ssl
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # from the environment, never logged
    timeout: float = DEFAULT_TIMEOUT


def smtp_settings(config: dict, environ: Mapping[str, str] = os.environ) -> SMTPSettings | None:
    """The SMTP settings of a validated studio config, or None when no host is set (mail off).

    Port and security go together: give either and the other follows (465: ssl,
    587: starttls, else none; and back); neither: port 25, plain. The password is read
    from the variable ``password_env`` names, so it never sits in the config file.
    Raises :class:`StudioConfigError` naming the key when the settings cannot work.
    """
    smtp = (config.get("notifications") or {}).get("smtp") or {}
    host = (smtp.get("host") or "").strip()
    if not host:
        return None
    sender = (smtp.get("from") or "").strip()
    if "@" not in parseaddr(sender)[1]:
        raise StudioConfigError("notifications.smtp.from: required when notifications.smtp.host is set (an e-mail address)")
    port, security = smtp.get("port"), smtp.get("security")
    if security is None:
        security = PORT_SECURITY.get(port, "none")
    if security not in SECURITY:
        raise StudioConfigError(f"notifications.smtp.security: {security!r} is not one of {', '.join(SECURITY)}")
    if port is None:
        port = DEFAULT_PORT[security]
    username = smtp.get("username") or None
    password_env = smtp.get("password_env") or None
    password = None
    if password_env and not username:
        raise StudioConfigError("notifications.smtp.password_env: given without notifications.smtp.username")
    if username:
        if not password_env:
            raise StudioConfigError("notifications.smtp.password_env: required with notifications.smtp.username "
                                    "(the variable that holds the SMTP password)")
        password = environ.get(password_env, "")
        if not password:
            raise StudioConfigError(f"notifications.smtp.password_env: environment variable {password_env} is not set")
    timeout = float(smtp.get("timeout") or DEFAULT_TIMEOUT)
    return SMTPSettings(host=host, sender=sender, port=int(port), security=security, username=username,
                        password=password, timeout=timeout)


# --------------------------------------------------------------------------- sending


def is_address(text: object) -> bool:
    """Whether ``text`` looks like one bare e-mail address (what a member's address must be)."""
    if not isinstance(text, str) or not text or len(text) > 320:
        return False
    name, address = parseaddr(text)
    local, _, domain = address.rpartition("@")
    return address == text.strip() and not name and bool(local) and bool(domain) and "@" not in domain


class Mailer:
    """Sends the studio's mail through one SMTP server. Each message opens its own
    connection: notices are rare, and a long-lived connection would only time out."""

    def __init__(self, settings: SMTPSettings, *, ssl_context: ssl.SSLContext | None = None):
        """``ssl_context``: how the server's certificate is checked; default: the system's CAs."""
        self.settings = settings
        self._ssl_context = ssl_context

    def message(self, to: str, subject: str, body: str) -> EmailMessage:
        """The message as it is sent (raises ValueError on a bad address or a header with a line break)."""
        if not is_address(to):
            raise ValueError(f"not an e-mail address: {to!r}")
        sender_domain = parseaddr(self.settings.sender)[1].rpartition("@")[2]
        msg = EmailMessage()
        msg["From"] = self.settings.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain=sender_domain)  # no FQDN look-up, which can hang
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the studio
        msg.set_content(body, charset="utf-8")
        return msg

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = self._ssl_context or ssl.create_default_context()
        if s.security == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        if s.security == "starttls":
            try:
                smtp.starttls(context=context)  # refused (SMTPNotSupportedError) if the server cannot
            except BaseException:
                smtp.close()
                raise
        return smtp

    def send_now(self, to: str, subject: str, body: str) -> bool:
        """Send one message, blocking; True once the server accepted it. Never raises:
        a failure is logged with its reason and answered False."""
        try:
            msg = self.message(to, subject, body)
            with self._connect() as smtp:
                if self.settings.username:
                    smtp.login(self.settings.username, self.settings.password or "")
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError, ValueError) as e:  # OSError: refused, timeout, TLS
            log.warning("mail to %s (%r) not sent through %s:%s: %s", to, subject, self.settings.host,
                        self.settings.port, str(e) or type(e).__name__)
            return False
        except Exception:
            log.exception("mail to %s (%r) not sent: unexpected error", to, subject)
            return False
        return True

    async def send(self, to: str, subject: str, body: str) -> bool:
        """:meth:`send_now` in a worker thread, so the hub's event loop never waits on SMTP."""
        return await asyncio.to_thread(self.send_now, to, subject, body)


# --------------------------------------------------------------------------- addresses


class AddressBook:
    """Members' e-mail addresses: the config's first (demo users), then the identity
    provider's as remembered at the last login (``member_contact``, usage database)."""

    def __init__(self, configured: Mapping[str, str] | None = None, db_url: str | None = None):
        """``configured``: addresses by user name; ``db_url``: the usage database (None: none remembered)."""
        self.configured = dict(configured or {})
        self.db_url = db_url
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: dict) -> AddressBook:
        """The demo users' ``email`` (demo login only) and the config's usage database."""
        auth = config["auth"]
        users = auth["demo"]["users"] if auth["type"] == "demo" else {}
        configured = {name: u["email"] for name, u in users.items() if (u or {}).get("email")}
        return cls(configured, studio_db_url(config, "usage"))

    def _db(self) -> Engine | None:
        """The usage database brought to its newest revision, once (the hub may log a member
        in before the usage store has opened it)."""
        if self.db_url is None:
            return None
        with self._lock:
            if self._engine is None:
                engine = db.make_engine(self.db_url)
                db.upgrade(engine, USAGE_MIGRATIONS, baseline_table="server_usage")
                self._engine = engine
            return self._engine

    def address_of(self, user: str) -> str | None:
        """Where ``user``'s mail goes, or None when the studio knows no address (blocking: database)."""
        if self.configured.get(user):
            return self.configured[user]
        engine = self._db()
        if engine is None:
            return None
        with Session(engine) as s:
            return s.scalar(select(MemberContact.email).where(MemberContact.user == user))

    def remember(self, user: str, email: str, now: float | None = None) -> None:
        """Record ``user``'s address as the identity provider gave it (blocking: database).

        Works on SQLite and PostgreSQL alike: read, then insert or update, in one
        transaction; when another process inserted the same member meanwhile (the primary
        key refuses ours), the second try updates its row."""
        if not is_address(email):
            raise ValueError(f"not an e-mail address: {email!r}")
        engine = self._db()
        if engine is None:
            raise RuntimeError("AddressBook.remember needs a database (db_url)")
        stamp = time.time() if now is None else now
        for attempt in (1, 2):
            try:
                with Session(engine) as s, s.begin():
                    row = s.get(MemberContact, user)
                    if row is None:
                        s.add(MemberContact(user=user, email=email, updated_at=stamp))
                    else:
                        row.email, row.updated_at = email, stamp
                return
            except IntegrityError:
                if attempt == 2:
                    raise

    def close(self) -> None:
        """Close the database connections (tests, shutdown)."""
        if self._engine is not None:
            self._engine.dispose()


# --------------------------------------------------------------------------- facade


class Notifier:
    """Mails a member a notice, if mail is on and the studio knows the member's address."""

    def __init__(self, mailer: Mailer | None, addresses: AddressBook):
        """``mailer``: None when mail is off (every notice is then skipped)."""
        self.mailer = mailer
        self.addresses = addresses

    @classmethod
    def from_config(cls, config: dict) -> Notifier:
        """The studio's notifier (raises :class:`StudioConfigError` for unusable SMTP settings)."""
        settings = smtp_settings(config)
        return cls(Mailer(settings) if settings else None, AddressBook.from_config(config))

    @property
    def enabled(self) -> bool:
        return self.mailer is not None

    async def notify(self, user: str, subject: str, body: str) -> bool:
        """Mail ``user``; True once the SMTP server accepted it. False, logged, and never
        raised, when mail is off, the member has no address, or sending failed."""
        if self.mailer is None:
            log.debug("mail is off: notice %r for %s not sent", subject, user)
            return False
        try:
            address = await asyncio.to_thread(self.addresses.address_of, user)
        except Exception:
            log.exception("notice %r for %s not sent: the address book failed", subject, user)
            return False
        if not address:
            log.info("notice %r for %s not sent: no e-mail address known", subject, user)
            return False
        sent = await self.mailer.send(address, subject, body)
        if sent:
            log.info("notice %r mailed to %s <%s>", subject, user, address)
        return sent


def notifier_from_config(config: dict) -> Notifier | None:
    """The studio's notifier, or None when mail is off (no ``notifications.smtp.host``).
    Raises :class:`StudioConfigError` naming the key when the SMTP settings cannot work."""
    notifier = Notifier.from_config(config)
    return notifier if notifier.enabled else None


# --------------------------------------------------------------------------- services

ENV_NOTIFICATIONS = "AISTUDIO_NOTIFICATIONS"


def service_environment(config: dict) -> dict[str, str]:
    """What a hub-managed service needs to build the studio's notifier, as environment
    variables for its spec: the SMTP settings, the configured addresses and the usage
    database (JSON in ``AISTUDIO_NOTIFICATIONS``), and the SMTP password's own variable
    (a managed service inherits none of the hub's). Empty when mail is off."""
    settings = smtp_settings(config)
    if settings is None:
        return {}
    book = AddressBook.from_config(config)
    smtp = dict(config["notifications"]["smtp"])
    env = {ENV_NOTIFICATIONS: json.dumps({"smtp": smtp, "addresses": book.configured, "usage_db_url": book.db_url,
                                          "public_url": config["notifications"].get("public_url")})}
    if smtp.get("password_env"):
        env[smtp["password_env"]] = settings.password or ""
    return env


def notifier_from_environment(environ: Mapping[str, str] = os.environ) -> Notifier | None:
    """The notifier of a hub-managed service (see :func:`service_environment`); None when mail is off."""
    raw = environ.get(ENV_NOTIFICATIONS)
    if not raw:
        return None
    given = json.loads(raw)
    settings = smtp_settings({"notifications": {"smtp": given["smtp"]}}, environ)
    if settings is None:
        return None
    return Notifier(Mailer(settings), AddressBook(given.get("addresses"), given.get("usage_db_url")))
