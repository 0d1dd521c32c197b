"""The queue's pure decisions: order, places, reservations, estimates."""

import pytest

from hub_config.queue import core
from hub_config.queue.core import RESERVED, Entry, Running
from hub_config.quotas import QueueSettings


def entry(i, user, gpus=1, gpu_type="a100", joined=None, groups=(), state="waiting", until=None):
    return Entry(id=i, user=user, groups=tuple(groups), gpus=gpus, gpu_type=gpu_type,
                 joined_at=float(joined if joined is not None else i), state=state, reserved_until=until)


def test_fair_share_serves_the_member_with_fewer_gpu_hours_first_ties_by_arrival():
    entries = [entry(1, "heavy"), entry(2, "light"), entry(3, "also-light"), entry(4, "new")]
    used = {"heavy": 40.0, "light": 2.0, "also-light": 2.0}
    order = [e.user for e in core.ordered(entries, used, QueueSettings())]
    assert order == ["new", "light", "also-light", "heavy"]
    assert [e.user for e in core.ordered(entries, used, QueueSettings(order="arrival"))] == [
        "heavy", "light", "also-light", "new"]


def test_group_priority_goes_before_fair_share():
    entries = [entry(1, "student", groups=["students"]), entry(2, "resident", groups=["gpu-residents"])]
    settings = QueueSettings(priority={"gpu-residents": 1})
    assert [e.user for e in core.ordered(entries, {"resident": 100.0}, settings)] == ["resident", "student"]


def test_places_are_per_line_distinct_and_without_gaps():
    entries = [entry(i, f"u{i}", gpu_type="a100" if i % 2 else "h100") for i in range(1, 9)]
    entries.append(entry(9, "holder", state=RESERVED, until=1e12))
    places = core.places(entries, {}, QueueSettings())
    a100 = sorted(places[e.id] for e in entries if e.gpu_type == "a100" and e.state == "waiting")
    h100 = sorted(places[e.id] for e in entries if e.gpu_type == "h100")
    assert a100 == [1, 2, 3, 4] and h100 == [1, 2, 3, 4]
    assert 9 not in places  # a reservation has no place in line


def test_offers_go_in_order_to_whoever_fits_and_count_reservations_already_made():
    free = {"a100": 3}
    entries = [entry(1, "a", gpus=2), entry(2, "b", gpus=2), entry(3, "c", gpus=1),
               entry(9, "holder", gpus=1, state=RESERVED, until=1e12)]

    def fits(e, reservations):
        taken = sum(r.gpus for r in reservations if core.overlaps(r.gpu_type, e.gpu_type))
        return free["a100"] - taken >= e.gpus

    made = core.offers(entries, {}, QueueSettings(claim_timeout=600), fits, now=1000.0)
    # 3 free, 1 reserved already: a (2) fits, b (2) does not, c (1) does not either (0 left)
    assert [(e.user, e.state, e.reserved_until) for e in made] == [("a", RESERVED, 1600.0)]
    free["a100"] = 4
    made = core.offers(entries, {}, QueueSettings(), fits, now=1000.0)
    assert [e.user for e in made] == ["a", "c"]  # c goes before b, who does not fit: no idle GPU


def test_lapsed_reservations_and_type_overlap():
    entries = [entry(1, "a", state=RESERVED, until=50.0), entry(2, "b", state=RESERVED, until=500.0)]
    assert [e.user for e in core.lapsed(entries, now=100.0)] == ["a"]
    assert core.overlaps("a100", "a100-sxm4-80gb") and core.overlaps(None, "h100")
    assert not core.overlaps("a100", "h100")
    assert core.reserved_gpus(entries, "a100", besides="a") == 1
    assert core.reserved_gpus(entries, "h100") == 0


def test_estimates_follow_releases_and_typical_lengths():
    now = 10_000.0
    hour = 3600.0
    running = [Running(1, started_at=now - 0.5 * hour, max_runtime=8 * hour),   # ends at +1.5 h (typical 2 h)
               Running(1, started_at=now - 1.9 * hour, max_runtime=2 * hour)]   # its limit: +0.1 h
    waits = core.estimate_waits([1, 1, 1], free=0, running=running, typical=2 * hour, now=now)
    assert waits[0] == pytest.approx(0.1 * hour)
    assert waits[1] == pytest.approx(1.5 * hour)
    assert waits[2] == pytest.approx(2.1 * hour)  # the first one's turn ends after a typical length
    assert core.estimate_waits([1], free=1, running=running, typical=hour, now=now) == [0.0]
    assert core.estimate_waits([3], free=0, running=running, typical=hour, now=now) == [None]  # more than exist


def test_a_server_past_its_typical_length_ends_halfway_to_its_limit():
    now = 100_000.0
    late = Running(1, started_at=now - 5 * 3600, max_runtime=8 * 3600)
    assert core.expected_end(late, typical=3600, now=now) == pytest.approx(now + 1.5 * 3600)
    unlimited = Running(1, started_at=now - 5 * 3600)
    assert core.expected_end(unlimited, typical=3600, now=now) == pytest.approx(now + 900)


def test_typical_length_and_wording():
    assert core.typical_length([]) == core.DEFAULT_SESSION
    assert core.typical_length([60, 600, 6000]) == 600
    assert core.describe_wait(None) == "unknown"
    assert core.describe_wait(20) == "any moment now"
    assert core.describe_wait(40 * 60) == "about 40 min"
    assert core.describe_wait(2 * 3600 + 11 * 60) == "about 2 h 10 min"
    assert core.describe_wait(3 * 3600) == "about 3 h"
