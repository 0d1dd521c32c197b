"""Notices by e-mail (hub_config/notifications.py) against a real SMTP server (aiosmtpd on
127.0.0.1), and members' addresses in a real usage database (SQLite and PostgreSQL)."""

from __future__ import annotations

import email
import email.policy
import logging
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub_config import config as studio_config
from hub_config.auth import oidc
from hub_config.notifications import (AddressBook, Mailer, Notifier, SMTPSettings, notifier_from_config,
                                      notifier_from_environment, service_environment, smtp_settings)
from hub_config.usage.models import MemberContact

REPO = Path(__file__).resolve().parents[2]
BODY = "您好 Alice,\n一块 A100 已为您保留 30 分钟。\nÀ bientôt — AI Studio\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]


def text_of(msg: email.message.EmailMessage) -> str:
    """The body as written (lines travel with CRLF, as SMTP has them)."""
    return msg.get_content().replace("\r\n", "\n")


def start_server(**kwargs) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller, inbox


@pytest.fixture
def smtp_server():
    controller, inbox = start_server()
    yield controller, inbox
    controller.stop()


def settings_for(controller: Controller, **kwargs) -> SMTPSettings:
    return SMTPSettings(**{"host": "127.0.0.1", "port": controller.port, "sender": "AI Studio <studio@aistudio.example>",
                           "timeout": 5, **kwargs})


def studio_cfg(smtp: dict | None = None, path: Path | None = None, data_dir: Path | None = None) -> dict:
    cfg = studio_config.load(path, data_dir=data_dir)
    if smtp is not None:
        cfg["notifications"]["smtp"].update(smtp)
        studio_config.validate(cfg)
    return cfg


# --------------------------------------------------------------------------- settings


def test_mail_is_off_without_a_host():
    assert smtp_settings(studio_cfg()) is None
    assert smtp_settings(studio_cfg({"host": ""})) is None


def test_port_and_security_follow_each_other():
    def settings(**smtp):
        return smtp_settings(studio_cfg({"host": "mail.lab.example", "from": "studio@lab.example", **smtp}), environ={})

    plain = settings()
    assert (plain.port, plain.security, plain.timeout, plain.username, plain.password) == (25, "none", 10.0, None, None)
    assert (plain.host, plain.sender) == ("mail.lab.example", "studio@lab.example")
    assert settings(port=587).security == "starttls"
    assert settings(port=465).security == "ssl"
    assert settings(port=2525).security == "none"
    assert settings(security="ssl").port == 465
    assert settings(security="starttls").port == 587
    assert (settings(port=25, security="starttls").port, settings(timeout=2.5).timeout) == (25, 2.5)


def test_password_comes_from_the_environment_and_is_never_shown():
    cfg = studio_cfg({"host": "mail.lab.example", "from": "studio@lab.example", "username": "studio",
                      "password_env": "AISTUDIO_SMTP_PASSWORD"})
    s = smtp_settings(cfg, environ={"AISTUDIO_SMTP_PASSWORD": "pa55-wörd"})
    assert (s.username, s.password) == ("studio", "pa55-wörd")
    assert "pa55" not in repr(s)
    with pytest.raises(studio_config.StudioConfigError, match="AISTUDIO_SMTP_PASSWORD is not set"):
        smtp_settings(cfg, environ={})
    cfg["notifications"]["smtp"]["password_env"] = None
    with pytest.raises(studio_config.StudioConfigError, match="notifications.smtp.password_env: required"):
        smtp_settings(cfg, environ={})


@pytest.mark.parametrize("smtp, message", [
    ({"relay": "x"}, "notifications.smtp: Additional properties are not allowed ('relay' was unexpected)"),
    ({"host": "mail.lab.example"}, "notifications.smtp.from: None is not of type 'string'"),
    ({"port": 0}, "notifications.smtp.port: 0 is less than the minimum of 1"),
    ({"security": "tls"}, "notifications.smtp.security: 'tls' is not one of"),
    ({"from": "studio at lab"}, "notifications.smtp.from: 'studio at lab' does not match"),
    ({"password_env": "SMTP-PASSWORD"}, "notifications.smtp.password_env: 'SMTP-PASSWORD' does not match"),
    ({"timeout": 0}, "notifications.smtp.timeout: 0 is less than or equal to the minimum of 0"),
    ({"relay": "x", "smtp": {}}, "notifications: Additional properties are not allowed ('relay' was unexpected)"),
    ({"public_url": "studio.lab.example", "smtp": {}}, "notifications.public_url: 'studio.lab.example' does not match"),
])
def test_the_schema_refuses_bad_settings_naming_the_key(smtp, message):
    section = smtp if "smtp" in smtp else {"smtp": smtp}
    cfg = studio_config.deep_merge(studio_config.defaults(), {"notifications": section})
    with pytest.raises(studio_config.StudioConfigError) as info:
        studio_config.validate(cfg)
    assert message in str(info.value)


def test_demo_users_may_have_an_address_and_nothing_else_new():
    cfg = studio_config.defaults()
    cfg["auth"]["demo"]["users"] = {"zoe": {"email": "zoe@lab.example"}}
    studio_config.validate(cfg)
    cfg["auth"]["demo"]["users"] = {"zoe": {"email": "zoe"}}
    with pytest.raises(studio_config.StudioConfigError, match="auth.demo.users.zoe.email: 'zoe' does not match"):
        studio_config.validate(cfg)


# --------------------------------------------------------------------------- sending


async def test_a_message_arrives_as_sent(smtp_server):
    controller, inbox = smtp_server
    assert await Mailer(settings_for(controller)).send("alice@aistudio.example", "GPU reserved: 1× A100", BODY) is True
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "studio@aistudio.example" and envelope.rcpt_tos == ["alice@aistudio.example"]
    [msg] = inbox.messages()
    assert msg["From"] == "AI Studio <studio@aistudio.example>"
    assert msg["To"] == "alice@aistudio.example"
    assert msg["Subject"] == "GPU reserved: 1× A100"
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith("@aistudio.example>")
    assert msg["Date"] and msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert text_of(msg) == BODY


async def test_each_message_has_its_own_id(smtp_server):
    controller, inbox = smtp_server
    mailer = Mailer(settings_for(controller))
    assert mailer.send_now("a@lab.example", "one", "1") and mailer.send_now("a@lab.example", "two", "2")
    ids = [m["Message-ID"] for m in inbox.messages()]
    assert len(ids) == 2 and ids[0] != ids[1]


async def test_an_unreachable_server_is_logged_not_raised(caplog):
    mailer = Mailer(SMTPSettings(host="127.0.0.1", port=free_port(), sender="studio@lab.example", timeout=2))
    with caplog.at_level(logging.WARNING, logger="aistudio.notifications"):
        assert await mailer.send("alice@lab.example", "GPU reserved", "hello") is False
    [record] = caplog.records
    assert "mail to alice@lab.example ('GPU reserved') not sent through 127.0.0.1" in record.getMessage()


@pytest.mark.parametrize("to, subject", [("not-an-address", "s"), ("Eve <eve@x.example>", "s"),
                                         ("a@lab.example", "two\nlines")])
async def test_a_bad_recipient_or_header_is_refused_before_sending(smtp_server, caplog, to, subject):
    controller, inbox = smtp_server
    with caplog.at_level(logging.WARNING, logger="aistudio.notifications"):
        assert await Mailer(settings_for(controller)).send(to, subject, "body") is False
    assert inbox.envelopes == [] and "not sent" in caplog.text


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_with_the_configured_account():
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"studio", b"s3cret")
        return AuthResult(success=ok)

    controller, inbox = start_server(authenticator=check, auth_require_tls=False, auth_required=True)
    try:
        good = Mailer(settings_for(controller, username="studio", password="s3cret"))
        assert good.send_now("a@lab.example", "with login", "hi") is True
        assert Mailer(settings_for(controller, username="studio", password="wrong")).send_now("a@lab.example", "x", "y") is False
        assert Mailer(settings_for(controller)).send_now("a@lab.example", "without login", "y") is False
        assert [m["Subject"] for m in inbox.messages()] == ["with login"]
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test server's certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls(certificate, security):
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    tls = {"tls_context": server_context, "require_starttls": True} if security == "starttls" else {"ssl_context": server_context}
    controller, inbox = start_server(**tls)
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        assert Mailer(settings_for(controller, security=security), ssl_context=trusted).send_now(
            "a@lab.example", f"over {security}", BODY) is True
        assert text_of(inbox.messages()[0]) == BODY
        # the system's CAs do not know the test certificate: refused, not sent unchecked
        assert Mailer(settings_for(controller, security=security)).send_now("a@lab.example", "x", "y") is False
        assert len(inbox.envelopes) == 1
    finally:
        controller.stop()


def test_starttls_is_never_dropped_silently(smtp_server):
    controller, inbox = smtp_server  # offers no STARTTLS
    assert Mailer(settings_for(controller, security="starttls")).send_now("a@lab.example", "x", "y") is False
    assert inbox.envelopes == []


# --------------------------------------------------------------------------- addresses


def contacts(url: str) -> list[tuple[str, str, float]]:
    book = AddressBook(db_url=url)
    try:
        with Session(book._db()) as s:
            return [tuple(r) for r in s.execute(select(MemberContact.user, MemberContact.email, MemberContact.updated_at)
                                                .order_by(MemberContact.user))]
    finally:
        book.close()


def test_demo_users_addresses_come_from_the_config(tmp_path):
    book = AddressBook.from_config(studio_cfg(path=REPO / "aistudio.yaml", data_dir=tmp_path))
    assert book.address_of("alice") == "alice@aistudio.example"
    assert book.address_of("bob") == "bob@aistudio.example"
    assert book.address_of("nobody") is None
    assert book.db_url == f"sqlite:///{tmp_path / 'usage.sqlite'}"


def test_remembered_addresses(database):
    url = database("usage")
    book = AddressBook(db_url=url)
    assert book.address_of("carol") is None
    book.remember("carol", "carol@lab.example", now=100.0)
    book.remember("dan", "dan@lab.example", now=100.0)
    book.close()
    again = AddressBook(db_url=url)  # another process, later
    assert again.address_of("carol") == "carol@lab.example"
    again.remember("carol", "carol.new@lab.example", now=200.0)
    assert again.address_of("carol") == "carol.new@lab.example"
    assert again.address_of("eve") is None
    again.close()
    assert contacts(url) == [("carol", "carol.new@lab.example", 200.0), ("dan", "dan@lab.example", 100.0)]


def test_the_config_address_wins_over_a_remembered_one(tmp_path):
    book = AddressBook({"alice": "alice@aistudio.example"}, db_url=f"sqlite:///{tmp_path / 'usage.sqlite'}")
    book.remember("alice", "alice@idp.example")
    assert book.address_of("alice") == "alice@aistudio.example"
    with pytest.raises(ValueError, match="not an e-mail address"):
        book.remember("alice", "Alice <alice@idp.example>")


def test_concurrent_first_logins_of_one_member_leave_one_row(database):
    url = database("usage")
    AddressBook(db_url=url).close()  # the schema, made once
    books = [AddressBook(db_url=url) for _ in range(8)]
    errors = []
    start = threading.Barrier(len(books))

    def login(i: int):
        start.wait()
        try:
            books[i].remember("fay", f"fay{i}@lab.example")
        except Exception as e:  # noqa: BLE001 - the test reports it
            errors.append(e)

    threads = [threading.Thread(target=login, args=(i,)) for i in range(len(books))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for b in books:
        b.close()
    assert errors == []
    [(user, address, _)] = contacts(url)
    assert user == "fay" and address in {f"fay{i}@lab.example" for i in range(len(books))}


# --------------------------------------------------------------------------- notifier


async def test_notifier_mails_members_it_has_an_address_for(smtp_server, tmp_path, caplog):
    controller, inbox = smtp_server
    cfg = studio_cfg({"host": "127.0.0.1", "port": controller.port, "from": "studio@aistudio.example"},
                     path=REPO / "aistudio.yaml", data_dir=tmp_path)
    notifier = Notifier.from_config(cfg)
    assert notifier.enabled
    with caplog.at_level(logging.INFO, logger="aistudio.notifications"):
        assert await notifier.notify("alice", "GPU reserved", BODY) is True
        assert await notifier.notify("zed", "GPU reserved", BODY) is False  # no address known
    assert [(m["To"], text_of(m)) for m in inbox.messages()] == [("alice@aistudio.example", BODY)]
    assert "notice 'GPU reserved' mailed to alice <alice@aistudio.example>" in caplog.text
    assert "notice 'GPU reserved' for zed not sent: no e-mail address known" in caplog.text


async def test_a_service_gets_the_same_notifier_through_its_environment(smtp_server, tmp_path, monkeypatch):
    controller, inbox = smtp_server
    monkeypatch.setenv("STUDIO_SMTP_PASSWORD", "s3cret")
    cfg = studio_cfg({"host": "127.0.0.1", "port": controller.port, "from": "studio@aistudio.example",
                      "username": "studio", "password_env": "STUDIO_SMTP_PASSWORD"},
                     path=REPO / "aistudio.yaml", data_dir=tmp_path)
    env = service_environment(cfg)
    # the password travels in its own variable, never inside the JSON settings
    assert env["STUDIO_SMTP_PASSWORD"] == "s3cret" and "s3cret" not in env["AISTUDIO_NOTIFICATIONS"]
    notifier = notifier_from_environment(env)
    assert notifier.mailer.settings == smtp_settings(cfg)
    assert notifier.addresses.address_of("alice") == "alice@aistudio.example"
    assert service_environment(studio_cfg(path=REPO / "aistudio.yaml", data_dir=tmp_path)) == {}
    assert notifier_from_environment({}) is None


async def test_notifier_with_mail_off_sends_nothing(tmp_path):
    cfg = studio_cfg(path=REPO / "aistudio.yaml", data_dir=tmp_path)
    notifier = Notifier.from_config(cfg)
    assert not notifier.enabled and notifier_from_config(cfg) is None
    assert await notifier.notify("alice", "GPU reserved", "x") is False
    on = studio_cfg({"host": "mail.lab.example", "from": "studio@lab.example"}, path=REPO / "aistudio.yaml", data_dir=tmp_path)
    assert notifier_from_config(on).mailer.settings.host == "mail.lab.example"


async def test_notifier_survives_a_broken_address_book(smtp_server, caplog):
    controller, inbox = smtp_server
    broken = AddressBook(db_url="sqlite:////proc/no-such-dir/usage.sqlite")
    assert await Notifier(Mailer(settings_for(controller)), broken).notify("alice", "s", "b") is False
    assert inbox.envelopes == [] and "the address book failed" in caplog.text


# --------------------------------------------------------------------------- OIDC logins


def login(name: str, **userinfo) -> dict:
    return {"name": name, "admin": False, "auth_state": {"oauth_user": {"sub": name, **userinfo}}}


async def test_oidc_logins_remember_the_email_claim(tmp_path):
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    authenticator = oidc.StudioOIDCAuthenticator(contacts_db_url=url)
    assert await authenticator.run_post_auth_hook(None, login("gil", email="gil@lab.example")) == login(
        "gil", email="gil@lab.example")
    await authenticator.run_post_auth_hook(None, login("gil", email="gil@new.example", email_verified=True))
    await authenticator.run_post_auth_hook(None, login("hal", email="hal@lab.example", email_verified=False))
    await authenticator.run_post_auth_hook(None, login("ida"))
    await authenticator.run_post_auth_hook(None, login("jo", email="not an address"))
    assert [(u, e) for u, e, _ in contacts(url)] == [("gil", "gil@new.example")]


async def test_an_oidc_login_never_fails_for_the_address(caplog):
    authenticator = oidc.StudioOIDCAuthenticator(contacts_db_url="sqlite:////proc/no-such-dir/usage.sqlite")
    assert await authenticator.run_post_auth_hook(None, login("kim", email="kim@lab.example")) == login(
        "kim", email="kim@lab.example")
    assert "The e-mail address of kim was not recorded" in caplog.text


def test_the_oidc_settings_name_the_usage_database(tmp_path):
    cfg = studio_config.load(None, data_dir=tmp_path)
    cfg["auth"].update(type="oidc")
    cfg["auth"]["oidc"].update(issuer="https://id.lab.example", client_id="aistudio")
    traits = oidc.build_traitlets(cfg, discovered={"issuer": "https://id.lab.example", "authorization_endpoint": "a",
                                                   "token_endpoint": "t", "userinfo_endpoint": "u"},
                                  client_id="aistudio", client_secret="s")
    assert traits["StudioOIDCAuthenticator"]["contacts_db_url"] == f"sqlite:///{tmp_path / 'usage.sqlite'}"
