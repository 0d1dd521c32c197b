"""Demo announcements, so that registering, applying, reviewing and reading news can be
tried right after ``make up`` (``announcements.demo: true``; the demo config turns it on),
a field-test scenario to apply to, a residency application to review and a member's
support request to triage.

:func:`seed` runs when the service starts. It goes through the store's own API, so the
items are validated and rendered as an organiser's would be, and it is idempotent:

- the items are added once, by the author :data:`DEMO_AUTHOR`, when the database holds
  none of that author's items (an organiser may edit or delete them; deleting all of
  them brings them back at the next start while the demo is on);
- a demo seminar that is over, or a demo call whose deadline has passed, is moved
  forward, so that a demo started weeks after the first still has a seat to take and a
  call to apply to.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .content import utcnow
from .store import Store

DEMO_AUTHOR = "aistudio-demo"
SEMINAR_SEATS = 3  # fewer seats than demo members: the waiting list can be tried too
SEMINAR_IN_DAYS = 7
SEMINAR_LENGTH = timedelta(minutes=90)
CALL_OPEN_DAYS = 30
SCENARIO_STARTS_IN_DAYS = 14
SCENARIO_WINDOW_DAYS = 120


def _local(now_utc: datetime, tz: str, days: int, at: time) -> datetime:
    """``days`` after ``now_utc`` (naive UTC), at the local time ``at`` in ``tz``, naive local."""
    local_today = now_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).date()
    return datetime.combine(local_today + timedelta(days=days), at)


def _seminar_times(now: datetime, tz: str) -> dict:
    start = _local(now, tz, SEMINAR_IN_DAYS, time(14, 0))
    return {"start": start.isoformat(), "end": (start + SEMINAR_LENGTH).isoformat()}


def _deadline(now: datetime, tz: str) -> str:
    return _local(now, tz, CALL_OPEN_DAYS, time(23, 59)).isoformat()


def demo_items(now: datetime, tz: str) -> list[dict]:
    """The demo items as an organiser would post them (times in ``tz``)."""
    return [
        {
            "kind": "seminar", "timezone": tz, "pinned": True,
            "title": "Learning from de-identified hospital records",
            "speaker": "Dr. Mei Lin, clinical data science",
            "place": "AI Lab meeting room 2",
            "capacity": SEMINAR_SEATS,
            "body": (
                "How the lab's algorithm and data-processing teams clean, align and label hospital "
                "records before they become a dataset you can mount, and what k-anonymity means "
                "for your model.\n\n"
                f"Only **{SEMINAR_SEATS} seats**: register below; when they are taken you join the "
                "waiting list and move up when someone cancels."
            ),
            **_seminar_times(now, tz),
        },
        {
            "kind": "call", "timezone": tz,
            "title": "AI for chronic disease management",
            "body": (
                "The laboratory incubates projects that bring AI into chronic disease care, from "
                "screening to follow-up in tiered hospitals and health check-up centres."
            ),
            "eligibility": (
                "- A team of researchers or entrepreneurs with a working prototype or a substantial "
                "technical reserve\n- A health-care use case with a field partner, or the wish to find one"
            ),
            "offer": (
                "- Funding and help building the founding team\n- GPU quota on AI Studio and access to "
                "de-identified data\n- Field scenarios with the lab's hospital and insurance partners"
            ),
            "deadline": _deadline(now, tz),
        },
        {
            "kind": "news", "timezone": tz,
            "title": "Welcome to AI Studio",
            "body": (
                "Pick a GPU profile on the home page, browse the datasets granted to your group in "
                "JupyterLab's **Datasets** panel, and follow seminars and incubation calls here. "
                "Your GPU-hours are on the **Usage** page."
            ),
        },
    ]


def demo_scenario(now: datetime) -> dict:
    """A field-test scenario with a partner hospital, its window starting in two weeks."""
    return {
        "title": "Early warning of deterioration on general wards", "partner_kind": "hospital",
        "partner": "City General Hospital (demo partner)",
        "setting": "Two general medicine wards, 60 beds, vital signs charted every four hours.",
        "trial": "Models that flag patients at risk of deterioration, run in *shadow mode* beside the nurses' score.",
        "requirements": "- A validated model or a protocol to build one\n- An ethics approval plan",
        "data_available": "De-identified vital signs and lab results from 2019 on (the `ward-vitals` dataset).",
        "contact": "Innovation office, City General Hospital",
        **_scenario_window(now),
    }


def _scenario_window(now: datetime) -> dict:
    start = now + timedelta(days=SCENARIO_STARTS_IN_DAYS)
    return {"window_from": _aware(start).isoformat(),
            "window_to": _aware(start + timedelta(days=SCENARIO_WINDOW_DAYS)).isoformat()}


def seed_scenario(store: Store, now: datetime) -> tuple[list[str], list[str]]:
    """The demo scenario, added once (none by the demo author yet) and moved forward when its window is over."""
    from .scenarios import ScenarioStore

    scenarios = ScenarioStore(store)
    ours = [s for s in scenarios.list(organiser=True) if s["created_by"] == DEMO_AUTHOR]
    if not ours:
        return [scenarios.create(demo_scenario(now), DEMO_AUTHOR)["title"]], []
    over = [s for s in ours if datetime.fromisoformat(s["window_to"]) <= _aware(now)]
    return [], [scenarios.update(s["id"], _scenario_window(now))["title"] for s in over]


DEMO_APPLICATION = {
    "name": "Dr. Lin Zhou", "organisation": "Riverside Diagnostics (demo applicant)", "email": "lin.zhou@riverside.example",
    "area": "healthcare",
    "reserves": "A retinal-image screening model for diabetic retinopathy, validated on 12,000 images from two "
                "clinics; a web tool that grades images in seconds.",
    "team": "Three: an ophthalmologist, a machine-learning engineer and a product manager.",
    "wants": "GPU time to retrain on more varied images, de-identified follow-up data, and a check-up centre "
             "where the tool can be tried with real patients.",
}
DEMO_SUPPORT_REQUEST = {
    "kind": "labelling", "subject": "diabetes-outcomes",
    "description": "Could the data-processing team label the **free-text discharge notes** of "
                   "`diabetes-outcomes` with the complication they mention? About 3,000 rows.",
}
DEMO_MEMBER = "alice"  # a demo user of aistudio.yaml: her request is in the support queue


def seed_programme(store: Store) -> list[str]:
    """A residency application for the reviewers and a member's support request for the
    support staff, each added once, into an empty queue."""
    from .residency import ResidencyStore
    from .support import SupportStore

    created = []
    if not ResidencyStore(store).queue():
        app, _token = ResidencyStore(store).submit(DEMO_APPLICATION)
        created.append(f"residency application of {app['name']}")
    support = SupportStore(store)
    if not support.list():
        support.create(DEMO_MEMBER, DEMO_SUPPORT_REQUEST)
        created.append(f"support request of {DEMO_MEMBER}")
    return created


def seed(store: Store, now: datetime | None = None) -> dict:
    """Add the demo items and the demo field-test scenario once and keep their dates ahead;
    returns ``{"created": [titles], "moved": [titles]}`` (both empty when there was nothing to do)."""
    now = now or utcnow()
    tz = store.default_tz
    scenario_created, scenario_moved = seed_scenario(store, now)
    scenario_created += seed_programme(store)
    ours = [i for i in store.all_items() if i["created_by"] == DEMO_AUTHOR]
    if not ours:
        created = [store.create(item, DEMO_AUTHOR)["title"] for item in demo_items(now, tz)]
        return {"created": created + scenario_created, "moved": scenario_moved}
    moved = []
    for item in ours:
        change = None
        if item["kind"] == "seminar" and datetime.fromisoformat(item["end"]) <= _aware(now):
            change = _seminar_times(now, item["timezone"])
        elif item["kind"] == "call" and datetime.fromisoformat(item["deadline"]) <= _aware(now):
            change = {"deadline": _deadline(now, item["timezone"])}
        if change:
            moved.append(store.update(item["id"], change, DEMO_AUTHOR)["title"])
    return {"created": scenario_created, "moved": moved + scenario_moved}


def _aware(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=ZoneInfo("UTC"))
