"""The demo's content without a hub: the demo announcements (seeded once through the store's
own API, kept ahead in time, in SQLite and PostgreSQL), the organiser demo user of
aistudio.yaml, and what the login page lists about the demo users."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from hub_config import config as studio_config
from hub_config import configurer
from hub_config.announcements import demo
from hub_config.announcements.residency import ResidencyStore
from hub_config.announcements.scenarios import ScenarioStore
from hub_config.announcements.support import SupportStore
from hub_config.announcements.models import Item
from hub_config.announcements.service import ENV_DEMO, AnnouncementsService, spec
from hub_config.announcements.store import Store
from hub_config.auth import demo as demo_login

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(database):
    store = Store(database("announcements"), default_tz="Asia/Shanghai")
    yield store
    store.reader.dispose()
    store.writer.dispose()


def by_kind(store: Store) -> dict[str, dict]:
    items = [i for i in store.all_items() if i["created_by"] == demo.DEMO_AUTHOR]
    assert len({i["kind"] for i in items}) == len(items)
    return {i["kind"]: i for i in items}


def test_seeding_adds_a_seminar_with_seats_a_call_and_news_once(store):
    first = demo.seed(store)
    assert len(first["created"]) == 6 and first["moved"] == []
    # a residency application for the reviewers, a member's support request for the staff
    assert [a["organisation"] for a in ResidencyStore(store).queue()] == [demo.DEMO_APPLICATION["organisation"]]
    assert [(r["user"], r["status"]) for r in SupportStore(store).list()] == [("alice", "new")]
    scenarios = ScenarioStore(store).list(organiser=False)  # and a field-test scenario members can apply to
    assert [s["title"] for s in scenarios] == [demo.demo_scenario(datetime.now())["title"]] and scenarios[0]["open"]
    items = by_kind(store)
    assert set(items) == {"seminar", "call", "news"}
    now = datetime.now(timezone.utc)

    seminar = items["seminar"]
    assert seminar["capacity"] == demo.SEMINAR_SEATS == 3 and seminar["seats_left"] == 3
    start, end = datetime.fromisoformat(seminar["start"]), datetime.fromisoformat(seminar["end"])
    assert timedelta(days=6) < start - now < timedelta(days=8) and end - start == demo.SEMINAR_LENGTH
    assert start.utcoffset() == timedelta(hours=8) and (start.hour, start.minute) == (14, 0)  # in the service's zone
    assert seminar["speaker"] and seminar["place"] and seminar["pinned"]

    call = items["call"]
    deadline = datetime.fromisoformat(call["deadline"])
    assert call["open"] and timedelta(days=29) < deadline - now < timedelta(days=31)
    assert "<li>" in call["eligibility_html"] and "<li>" in call["offer_html"]
    assert items["news"]["body_html"].startswith("<p>")

    # members see all three at once, the pinned seminar first (the hub's banner reads this list)
    current, _ = store.current()
    assert [i["kind"] for i in current][0] == "seminar" and len(current) == 3

    # idempotent: a second start adds nothing and changes nothing
    again = demo.seed(store)
    assert again == {"created": [], "moved": []}
    assert by_kind(store) == items and len(store.all_items()) == 3


def test_seats_and_waiting_list_can_be_tried_with_the_demo_members(store):
    demo.seed(store)
    seminar = by_kind(store)["seminar"]
    answers = [store.register(seminar["id"], name)["status"] for name in ("alice", "ahmed", "bob", "bea")]
    assert answers == ["registered", "registered", "registered", "waiting"]


def test_organisers_edits_and_deletions_stay(store):
    demo.seed(store)
    items = by_kind(store)
    store.update(items["news"]["id"], {"title": "Welcome to the lab's AI Studio"}, "olivia")
    store.delete(items["call"]["id"])
    assert demo.seed(store) == {"created": [], "moved": []}
    assert {i["title"] for i in store.all_items()} == {items["seminar"]["title"], "Welcome to the lab's AI Studio"}
    # with every demo item gone, a start with the demo on brings them back
    for item in store.all_items():
        store.delete(item["id"])
    assert len(demo.seed(store)["created"]) == 3


def test_a_demo_seminar_that_is_over_and_a_closed_call_move_forward(store):
    demo.seed(store)
    items = by_kind(store)
    store.register(items["seminar"]["id"], "bob")
    past = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=40)
    with store.writer.begin() as conn:  # weeks later: as if the demo had been set up long ago
        conn.execute(update(Item).where(Item.id == items["seminar"]["id"])
                     .values(start_at=past, end_at=past + timedelta(hours=1)))
        conn.execute(update(Item).where(Item.id == items["call"]["id"]).values(deadline=past))
    store._changed()
    assert not by_kind(store)["call"]["open"]

    moved = demo.seed(store)
    assert moved["created"] == [] and sorted(moved["moved"]) == sorted([items["seminar"]["title"], items["call"]["title"]])
    now = datetime.now(timezone.utc)
    refreshed = by_kind(store)
    assert datetime.fromisoformat(refreshed["seminar"]["start"]) > now and refreshed["seminar"]["registered"] == 1
    assert refreshed["call"]["open"] and datetime.fromisoformat(refreshed["call"]["deadline"]) > now
    assert demo.seed(store) == {"created": [], "moved": []}


def test_the_service_seeds_only_when_the_config_says_so(tmp_path, monkeypatch):
    default = studio_config.load(None, data_dir=tmp_path)
    shipped = studio_config.load(REPO / "aistudio.yaml", data_dir=tmp_path)
    assert default["announcements"]["demo"] is False and shipped["announcements"]["demo"] is True
    assert spec(default, "t").environment[ENV_DEMO] == "false"
    assert spec(shipped, "t").environment[ENV_DEMO] == "true"
    for value, expected in (("true", True), ("false", False)):
        monkeypatch.setenv(ENV_DEMO, value)
        service = AnnouncementsService()
        service.load_environment()
        assert service.demo is expected


def test_the_demo_config_has_an_organiser_who_holds_the_write_scope(tmp_path):
    cfg = studio_config.load(REPO / "aistudio.yaml", data_dir=tmp_path)
    users = cfg["auth"]["demo"]["users"]
    organisers = [n for n, u in users.items() if set(u.get("groups", [])) & set(cfg["announcements"]["organiser_groups"])]
    assert organisers == ["olivia"]
    hub = configurer.traitlets_config(cfg)["JupyterHub"]
    role = next(r for r in hub["load_roles"] if r["name"] == "announcements-organisers")
    assert "organisers" in role["groups"] and "custom:announcements:write" in role["scopes"]
    # every demo user says what they are for on the login page
    assert all(u.get("description") for u in users.values())


def test_the_login_page_lists_the_demo_users_with_their_roles_and_no_password(tmp_path):
    cfg = studio_config.load(REPO / "aistudio.yaml", data_dir=tmp_path)
    page = demo_login.login_page(cfg)
    assert page["name"] == "AI Studio" and page["demo"] is True
    listed = {u["name"]: u for u in page["demo_users"]}
    assert list(listed) == list(cfg["auth"]["demo"]["users"])
    assert listed["admin"]["roles"] == ["hub admin"]
    assert listed["olivia"]["roles"] == ["organiser", "residency reviewer"] and listed["olivia"]["groups"] == ["organisers"]
    assert listed["alice"]["roles"] == [] and listed["alice"]["groups"] == ["gpu-residents"]
    assert listed["sam"]["roles"] == ["support staff"] and listed["sam"]["groups"] == ["support"]
    assert cfg["auth"]["demo"]["password"] not in repr(page)
    # without the announcements service nobody is an organiser
    off = studio_config.deep_merge(cfg, {"announcements": {"enabled": False}})
    assert all(set(u["roles"]) <= {"hub admin"} for u in demo_login.login_page(off)["demo_users"])
    # OpenID Connect: the name and description, no demo users
    oidc = studio_config.deep_merge(cfg, {"auth": {"type": "oidc"}})
    assert demo_login.login_page(oidc) == {"name": "AI Studio", "demo": False, "demo_users": []}


def test_the_hub_shows_the_studios_login_page_and_lands_members_on_home(tmp_path):
    cfg = studio_config.load(REPO / "aistudio.yaml", data_dir=tmp_path)
    hub = configurer.traitlets_config(cfg)["JupyterHub"]
    assert hub["redirect_to_server"] is False  # after login: /hub/home, not the spawn form
    assert Path(hub["logo_file"]).read_text().startswith("<svg")
    login = [p for p in hub["template_paths"] if (Path(p) / "login.html").is_file()]
    assert login == [str(demo_login.TEMPLATES)]
    assert hub["template_vars"]["aistudio"] == demo_login.login_page(cfg)
    # every template name is found in one folder only, so the order of the folders does not matter
    names = [f.name for p in hub["template_paths"] for f in Path(p).glob("*.html")]
    assert len(names) == len(set(names)), names


def test_jupyterlab_news_are_off_by_default_in_the_servers():
    """The extension ships a default for JupyterLab's notification settings: no prompt about
    Jupyter news, no news or update checks on the internet (the studio's announcements reach
    JupyterLab through the extension's own notices)."""
    import json

    shipped = REPO / "extensions" / "lab" / "jupyter-config" / "labconfig" / "default_setting_overrides.d"
    settings = json.loads((shipped / "aistudio_lab.json").read_text())
    assert settings == {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
