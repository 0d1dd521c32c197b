"""The announcements store without a hub: migrations, validation, sanitising, and
registration atomic across threads with their own database connections, in SQLite and
in PostgreSQL."""

from __future__ import annotations

import threading
from html.parser import HTMLParser
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from hub_config.announcements.content import BadInput, render_markdown, validate_item
from hub_config.announcements.store import MIGRATIONS
from hub_config.db import alembic_config
from hub_config.announcements.models import Base
from hub_config.announcements.store import Conflict, Store
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory


def later(**kw) -> str:
    return (datetime.now(timezone.utc) + timedelta(**kw)).replace(microsecond=0).isoformat()


@pytest.fixture
def store(database):
    store = Store(database("announcements"), default_tz="Europe/Paris")
    yield store
    store.reader.dispose()
    store.writer.dispose()


def test_migrations_match_models_and_rerun(database):
    url = database("announcements")
    store = Store(url)
    Store(url)  # upgrade head again: nothing to do
    with store.writer.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        head = ScriptDirectory.from_config(alembic_config(url, MIGRATIONS)).get_current_head()
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head
    assert alembic_config(url, MIGRATIONS).get_main_option("script_location").endswith("migrations")


@pytest.mark.parametrize("source", [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))",
    "[x](  JAVASCRIPT:alert(1))", "<a href='javascript:alert(1)'>x</a>", "![x](data:text/html;base64,PHNjcmlwdD4=)",
    "<iframe src=//evil></iframe>", "<svg><script>alert(1)</script></svg>", "<div style='x' onclick='y'>z</div>",
])
def test_markdown_is_sanitised(source):
    tags = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, dict(attrs)))

    Collect().feed(render_markdown(f"text {source} more"))
    for tag, attrs in tags:
        assert tag in {"p", "a", "img", "div"} - {"div"}, tag
        assert not any(name.startswith("on") or name == "style" for name in attrs), attrs
        for name in ("href", "src"):
            assert not (attrs.get(name) or "").strip().lower().startswith(("javascript:", "data:")), attrs


def test_markdown_keeps_formatting():
    html = render_markdown("# T\n\n**b** *i* `c` [l](https://e.org)\n\n| a |\n|---|\n| 1 |")
    assert "<h1>T</h1>" in html and "<strong>b</strong>" in html and "<table>" in html
    assert '<a href="https://e.org" rel="noopener noreferrer nofollow">l</a>' in html


def test_naive_times_read_in_the_item_zone():
    out = validate_item({"kind": "call", "title": "c", "deadline": "2030-07-01T12:00", "timezone": "Europe/Paris"})
    assert out["deadline"] == datetime(2030, 7, 1, 10, 0)  # CEST is UTC+2
    with pytest.raises(BadInput, match="deadline: is in the past"):
        validate_item({"kind": "call", "title": "c", "deadline": "2020-07-01T12:00"})


def test_registration_atomic_across_threads(store):
    item = store.create({"kind": "seminar", "title": "s", "speaker": "x", "start": later(days=1),
                         "end": later(days=1, hours=1), "place": "here", "capacity": 7}, "olga")
    users = [f"u{i}" for i in range(40)]
    barrier = threading.Barrier(8)

    def register(user):
        if users.index(user) < 8:
            barrier.wait()
        return user, store.register(item["id"], user)

    with ThreadPoolExecutor(8) as pool:
        results = dict(pool.map(register, users))
    assert sum(r["status"] == "registered" for r in results.values()) == 7
    positions = sorted(r["position"] for r in results.values() if r["status"] == "waiting")
    assert positions == list(range(1, 34))
    seated = [u for u, r in results.items() if r["status"] == "registered"]
    with ThreadPoolExecutor(4) as pool:
        promoted = sum((r["promoted"] for r in pool.map(lambda u: store.cancel(item["id"], u), seated[:4])), [])
    assert len(promoted) == 4
    regs = store.registrations(item["id"])
    assert sum(r["status"] == "registered" for r in regs) == 7 and len(regs) == 36


def test_registration_atomic_across_stores_with_their_own_engines(store):
    """As the service's processes would: four stores, each its own engine, on one
    database; the same members ask twice at once, from two of them."""
    item = store.create({"kind": "seminar", "title": "s", "speaker": "x", "start": later(days=1),
                         "end": later(days=1, hours=1), "place": "here", "capacity": 5}, "olga")
    stores = [store] + [Store(store.url, migrate=False) for _ in range(3)]
    requests = [(f"m{i}", stores[(i + k) % 4]) for i in range(12) for k in (0, 1)]
    barrier = threading.Barrier(len(requests))

    def register(request):
        user, s = request
        barrier.wait()
        return user, s.register(item["id"], user)

    with ThreadPoolExecutor(len(requests)) as pool:
        results = list(pool.map(register, requests))
    new = [(u, r) for u, r in results if r["new"]]
    assert sorted(u for u, _ in new) == sorted(f"m{i}" for i in range(12))  # each member once
    assert sum(r["status"] == "registered" for _, r in new) == 5
    assert sorted(r["position"] for _, r in new if r["status"] == "waiting") == list(range(1, 8))
    for user, r in results:  # the second answer of a member tells the first one's outcome
        assert r["status"] == dict(new)[user]["status"]
    regs = store.registrations(item["id"])
    assert len(regs) == 12 and sum(r["status"] == "registered" for r in regs) == 5
    for s in stores[1:]:
        s.reader.dispose()
        s.writer.dispose()


def test_one_application_per_member_when_sent_twice_at_once(store):
    call = store.create({"kind": "call", "title": "c", "deadline": later(days=3), "eligibility": "all",
                         "offer": "GPUs"}, "olga")
    other = Store(store.url, migrate=False)
    answer = {"project": "p", "team": "t", "summary": "s", "needs": "n"}
    barrier = threading.Barrier(2)

    def apply(s):
        barrier.wait()
        try:
            return s.apply(call["id"], "amy", answer)["status"]
        except Conflict as e:
            return str(e)

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(apply, [store, other]))
    assert outcomes == ["submitted", "you have already applied to this call; see your application"]
    assert [a["user"] for a in store.applications(call_id=call["id"])] == ["amy"]
    other.reader.dispose()
    other.writer.dispose()


def test_capacity_cannot_drop_below_seats_taken(store):
    item = store.create({"kind": "seminar", "title": "s", "speaker": "x", "start": later(days=1),
                         "end": later(days=1, hours=1), "link": "https://meet.example/x", "capacity": 3}, "olga")
    for u in "abcd":
        store.register(item["id"], u)
    with pytest.raises(BadInput, match="capacity"):
        store.update(item["id"], {"capacity": 2}, "olga")
    # more seats: the waiting list moves up
    assert store.update(item["id"], {"capacity": 5}, "olga")["registered"] == 4


def test_publish_window_and_cache(store):
    now = datetime.now(timezone.utc)
    soon = store.create({"kind": "news", "title": "soon", "publish_at": (now + timedelta(seconds=1)).isoformat()}, "o")
    gone = store.create({"kind": "news", "title": "gone", "expires_at": (now + timedelta(seconds=1)).isoformat()}, "o")
    store.create({"kind": "news", "title": "draft", "draft": True}, "o")
    pinned = store.create({"kind": "news", "title": "pinned", "pinned": True}, "o")
    titles = [i["title"] for i in store.current()[0]]
    assert titles == ["pinned", "gone"]
    import time

    time.sleep(1.2)
    titles = [i["title"] for i in store.current()[0]]  # the cache ends at the next publish/expiry time
    assert titles == ["pinned", "soon"]
    assert {soon["id"], gone["id"], pinned["id"]} <= {i["id"] for i in store.all_items()}


def test_hub_config_declares_service_scope_and_roles(tmp_path):
    from hub_config import config, configurer

    studio = config.load(None, data_dir=tmp_path)
    hub = configurer.traitlets_config(studio)["JupyterHub"]
    service = next(s for s in hub["services"] if s["name"] == "announcements")
    assert service["oauth_client_allowed_scopes"][0] == "custom:announcements:write"
    assert service["environment"]["AISTUDIO_ANNOUNCEMENTS_DB_URL"] == f"sqlite:///{tmp_path / 'announcements.sqlite'}"
    assert "custom:announcements:write" in hub["custom_scopes"]
    roles = {r["name"]: r for r in hub["load_roles"]}
    assert "access:services!service=announcements" in roles["user"]["scopes"]
    assert roles["announcements-organisers"]["groups"] == ["organisers"]
    assert roles["announcements-organisers"]["scopes"][0] == "custom:announcements:write"
    assert hub["template_paths"][0].endswith("hub_config/announcements/templates/hub")

    off = config.deep_merge(studio, {"announcements": {"enabled": False}})
    hub = configurer.traitlets_config(off)["JupyterHub"]
    assert "announcements" not in [s["name"] for s in hub["services"]]
    assert "custom_scopes" not in hub and "announcements" not in hub["template_vars"]
    assert all("announcements" not in str(r) for r in hub["load_roles"])
