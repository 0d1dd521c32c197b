"""Support requests and field-test scenarios without a hub: the state graph, validation
that names the field, CSV that spreadsheets cannot run, compare-and-set state changes,
members limited to their own requests, and the partner's view of accepted applications,
in SQLite and in PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from hub_config.announcements import support
from hub_config.announcements.content import BadInput
from hub_config.announcements.scenarios import ScenarioStore, validate_scenario
from hub_config.announcements.store import Conflict, NotFound, Store
from hub_config.announcements.support import STATES, TRANSITIONS, SupportStore, check_transition


def later(**kw) -> str:
    return (datetime.now(timezone.utc) + timedelta(**kw)).replace(microsecond=0).isoformat()


@pytest.fixture
def store(database):
    store = Store(database("announcements"), default_tz="Europe/Paris")
    yield store
    store.reader.dispose()
    store.writer.dispose()


REQUEST = {"kind": "labelling", "subject": "chest-xray-2025", "description": "Label **2 000** films for effusion."}
SCENARIO = {"title": "Triage assistant in A&E", "partner_kind": "hospital", "partner": "St Mary's",
            "setting": "Emergency department, 60 beds", "trial": "Decision support for triage nurses",
            "contact": "Dr Lee <lee@stmarys.example>", "window_from": later(days=10), "window_to": later(days=70)}


# ------------------------------------------------------------------ pure


def test_state_graph_reaches_closed_only_in_order_and_declines_before_delivery():
    path = ["new", "accepted", "in_progress", "delivered", "closed"]
    for a, b in zip(path, path[1:]):
        check_transition(a, b)
    for state in ("new", "accepted", "in_progress"):
        check_transition(state, "declined")
    for final in ("closed", "declined"):
        assert TRANSITIONS[final] == set()
    with pytest.raises(BadInput, match=r"^status: a request that is new cannot become delivered; allowed: accepted, declined"):
        check_transition("new", "delivered")
    with pytest.raises(BadInput, match="it is final"):
        check_transition("closed", "in_progress")
    assert set(TRANSITIONS) == set(STATES)


@pytest.mark.parametrize("data,field", [
    ({**REQUEST, "kind": "magic"}, "kind"),
    ({**REQUEST, "kind": {}}, "kind"),
    ({**REQUEST, "subject": ""}, "subject"),
    ({**REQUEST, "subject": "x" * 201}, "subject"),
    ({**REQUEST, "description": "  "}, "description"),
    ({**REQUEST, "description": 5}, "description"),
    ({**REQUEST, "colour": "red"}, "unknown field"),
])
def test_request_validation_names_the_field(data, field):
    with pytest.raises(BadInput, match=f"^{field}"):
        support.validate_request(data)


def test_update_validation():
    with pytest.raises(BadInput, match="^reason: say why"):
        support.validate_update({"status": "declined"}, staff=True)
    with pytest.raises(BadInput, match="^reason: is given only with status declined"):
        support.validate_update({"status": "accepted", "reason": "x"}, staff=True)
    with pytest.raises(BadInput, match="^status: must be one of"):
        support.validate_update({"status": "done"}, staff=True)
    with pytest.raises(BadInput, match="unknown field.*status"):  # members only comment
        support.validate_update({"status": "closed"}, staff=False)
    assert support.validate_update({"comment": "thanks"}, staff=False)["comment"] == "thanks"


def test_description_markdown_is_sanitised():
    checked = support.validate_request({**REQUEST, "description": "<script>alert(1)</script> [x](javascript:alert(2))"})
    html = checked["description_html"]
    assert "&lt;script&gt;" in html and "<script" not in html and "href" not in html


def test_scenario_validation():
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with pytest.raises(BadInput, match="^partner_kind: must be one of"):
        validate_scenario({**SCENARIO, "partner_kind": "spa"}, body_max=1000, tz="UTC")
    with pytest.raises(BadInput, match="^window_to: must be after window_from"):
        validate_scenario({**SCENARIO, "window_to": later(days=5)}, body_max=1000, tz="UTC")
    with pytest.raises(BadInput, match="^window_from: is required"):
        validate_scenario({**SCENARIO, "window_from": ""}, body_max=1000, tz="UTC")
    with pytest.raises(BadInput, match="^trial: is required"):
        validate_scenario({**SCENARIO, "trial": ""}, body_max=1000, tz="UTC")
    assert validate_scenario(SCENARIO, body_max=1000, tz="UTC", now=now)["window_to"] > now


# ------------------------------------------------------------------ stores


def test_support_life_cycle_compare_and_set_and_csv(store):
    desk = SupportStore(store)
    mine = desk.create("alice", {**REQUEST, "subject": "=HYPERLINK(\"http://evil\")"})
    desk.create("bob", REQUEST)
    assert mine["status"] == "new" and "<strong>2 000</strong>" in mine["description_html"]
    assert [r["user"] for r in desk.list(user="alice")] == ["alice"]
    with pytest.raises(NotFound):
        desk.get(mine["id"], "bob")
    with pytest.raises(NotFound):  # another member may not write in the thread either
        desk.update(mine["id"], "bob", {"comment": "mine now"}, staff=False)

    req, moved = desk.update(mine["id"], "sam", {"status": "accepted", "if_status": "new", "assignee": "sam"},
                             staff=True, staff_names={"sam"})
    assert moved and req["status"] == "accepted" and req["assignee"] == "sam"
    with pytest.raises(Conflict, match="^status: the request is no longer new"):  # a second, stale click
        desk.update(mine["id"], "tom", {"status": "accepted", "if_status": "new"}, staff=True)
    with pytest.raises(Conflict):
        desk.update(mine["id"], "tom", {"status": "declined", "if_status": "new", "reason": "x"}, staff=True)
    with pytest.raises(BadInput, match="^assignee: eve is not a member of the support staff"):
        desk.update(mine["id"], "sam", {"assignee": "eve"}, staff=True, staff_names={"sam"})
    _, moved = desk.update(mine["id"], "alice", {"comment": "Any news?"}, staff=False)
    assert not moved
    for state in ("in_progress", "delivered", "closed"):
        req, moved = desk.update(mine["id"], "sam", {"status": state}, staff=True)
        assert moved and req["status"] == state
    assert [t["status"] for t in req["thread"] if t["status"]] == ["new", "accepted", "in_progress", "delivered", "closed"]

    other = desk.list(user="bob")[0]
    req, _ = desk.update(other["id"], "sam", {"status": "declined", "reason": "No consent for labelling"}, staff=True)
    assert req["reason"] == "No consent for labelling"
    assert [r["id"] for r in desk.decisions("bob")] == [other["id"]]

    rows = list(csv.DictReader(io.StringIO(desk.csv())))
    assert [r["status"] for r in rows] == ["closed", "declined"]
    assert rows[0]["subject"].startswith("'=")  # not a formula to a spreadsheet
    assert rows[1]["reason"] == "No consent for labelling"


def test_scenario_application_review_and_partner_view(store):
    scenarios = ScenarioStore(store)
    s = scenarios.create(SCENARIO, "olga")
    draft = scenarios.create({**SCENARIO, "title": "Hidden", "draft": True}, "olga")
    assert [x["id"] for x in scenarios.list(organiser=False)] == [s["id"]]
    with pytest.raises(NotFound):
        scenarios.apply(draft["id"], "alice", {"project": "p", "proposal": "q"})
    with pytest.raises(BadInput, match="^proposal: is required"):
        scenarios.apply(s["id"], "alice", {"project": "Triage"})
    a = scenarios.apply(s["id"], "alice", {"project": "Triage LLM", "proposal": "Shadow mode for 4 weeks"})
    b = scenarios.apply(s["id"], "bob", {"project": "Sepsis alert", "proposal": "Retrospective first"})
    with pytest.raises(Conflict, match="already applied"):
        scenarios.apply(s["id"], "alice", {"project": "again", "proposal": "again"})

    with pytest.raises(BadInput, match="^status: an application that is submitted cannot become accepted"):
        scenarios.review(a["id"], "olga", {"status": "accepted"})
    scenarios.review(a["id"], "olga", {"status": "under_review", "if_status": "submitted"})
    with pytest.raises(Conflict, match="^status: the application is no longer submitted"):
        scenarios.review(a["id"], "olga", {"status": "rejected", "if_status": "submitted"})
    done = scenarios.review(a["id"], "olga", {"status": "accepted", "comment": "Welcome aboard"})
    assert done["status"] == "accepted" and done["history"][-1]["comment"] == "Welcome aboard"
    scenarios.review(b["id"], "olga", {"status": "needs_info", "comment": "Which wards?"})
    with pytest.raises(NotFound):
        scenarios.resubmit(b["id"], "alice", {"project": "x", "proposal": "y"})
    assert scenarios.resubmit(b["id"], "bob", {"project": "Sepsis alert", "proposal": "Wards 3 and 4"})["status"] == "submitted"

    token = s["partner_url"].rsplit("/", 1)[1]
    shown, accepted = scenarios.for_partner(token)
    assert shown["id"] == s["id"] and [x["user"] for x in accepted] == ["alice"]
    with pytest.raises(NotFound):
        scenarios.for_partner("x" * len(token))
    assert [x["status"] for x in scenarios.decisions("alice")] == ["accepted"]
    assert scenarios.decisions("bob") == []  # back to submitted: nothing decided
    scenarios.delete(s["id"])
    assert scenarios.applications() == []
