"""The month simulation of bench/queue_month_bench.py: its invariants on a short, crowded
run, its ``fits`` against the hub's, and small hand-made scenarios with known outcomes."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub_config.queue import core
from hub_config.queue.manager import GPUQueue

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "queue_month_bench.py"
_spec = importlib.util.spec_from_file_location("queue_month_bench", SCRIPT)
qb = importlib.util.module_from_spec(_spec)
sys.modules["queue_month_bench"] = qb
_spec.loader.exec_module(qb)

MIN, HOUR = qb.MIN, qb.HOUR
GPUS = 4  # fewer than the lab's 8, so that a 5-day run is crowded


@pytest.fixture(scope="module")
def workload():
    return qb.make_workload(3, members=40, days=5)


@pytest.fixture(scope="module")
def runs(workload):
    return {mode: qb.simulate(workload, mode, gpus=GPUS, trace=True) for mode in ("stock", "queue")}


@pytest.mark.parametrize("mode", ["stock", "queue"])
def test_never_more_gpus_held_than_there_are(runs, mode):
    run = runs[mode]
    assert run.trace and len(run.trace) == run.events
    for t, held, pools in run.trace:
        assert held <= GPUS, f"{held} GPUs held at {t}"
    # the run was crowded: all the GPUs were in use at some point (else this proves little)
    assert run.max_held == GPUS


@pytest.mark.parametrize("mode", ["stock", "queue"])
def test_student_pool_never_exceeded(runs, mode):
    for t, held, pools in runs[mode].trace:
        assert pools.get("students", 0) <= qb.STUDENT_POOL, f"students hold {pools['students']} GPUs at {t}"
    assert runs[mode].max_pool["students"] == qb.STUDENT_POOL


def test_same_workload_in_both_runs(workload, runs):
    assert len(workload.requests) > 50
    stock, queue = runs["stock"], runs["queue"]
    assert len(stock.outcomes) == len(queue.outcomes) == len(workload.requests)
    assert [o.request for o in stock.outcomes] == [o.request for o in queue.outcomes] == workload.requests
    m_stock, m_queue = qb.metrics(stock, workload), qb.metrics(queue, workload)
    assert m_stock["requests"] == m_queue["requests"] == len(workload.requests)
    # the workload is the seed's: drawn again it is the same, another seed draws another
    assert qb.make_workload(3, members=40, days=5).requests == workload.requests
    assert qb.make_workload(4, members=40, days=5).requests != workload.requests


@pytest.mark.parametrize("mode", ["stock", "queue"])
def test_every_request_ends_served_or_given_up(runs, mode):
    for o in runs[mode].outcomes:
        assert o.issued_at is not None and o.issued_at >= o.request.at
        assert (o.started_at is None) != (o.gave_up_at is None), o
        if o.started_at is not None:
            assert o.started_at >= o.issued_at
            assert o.ended_at - o.started_at <= o.request.length + 1e-6
    if mode == "stock":
        assert not runs[mode].reservations
        assert sum(o.refusals for o in runs[mode].outcomes) > 0
    else:
        assert sum(o.joined for o in runs[mode].outcomes) > 0 and runs[mode].reservations


def test_queue_leaves_no_gpu_idle_that_someone_in_line_could_use(workload):
    """After every event, ``core.offers`` has nothing more to give (the simulation
    rebalanced whenever GPUs may have come free)."""
    checked = []

    def check(lab):
        entries = list(lab.entries.values())
        if any(e.state == core.WAITING for e in entries):
            used = {e.user: lab.used(e.user) for e in entries}
            missed = core.offers(entries, used, lab.settings, lab.fits_callback(lab.active()), lab.now)
            assert missed == [], f"at {lab.now}: {missed} could have been offered"
            checked.append(lab.now)

    qb.simulate(workload, "queue", gpus=GPUS, on_event=check)
    assert checked  # there was a line to check


def test_fits_is_the_hubs(workload):
    """The simulation's ``fits`` decides as ``GPUQueue._fits`` does on every state it visits."""

    class Hub:  # what GPUQueue._fits reads of its queue: GPU-hours and free GPUs
        def __init__(self, lab):
            self.lab = lab

        def _gpu_hours(self, policy):
            return self.lab.gpu_hours

        def _free(self, gpu_type, active):
            return self.lab.total - sum(s.gpus for s in active), self.lab.total

    compared = []

    def check(lab):
        entries = list(lab.entries.values())
        waiting = [e for e in entries if e.state == core.WAITING]
        if not waiting:
            return
        active = lab.active()
        ours, hubs = lab.fits_callback(active), GPUQueue._fits(Hub(lab), lab.policy, active)
        held = [e for e in entries if e.state == core.RESERVED]
        for entry in waiting:
            for reservations in (held, []):
                assert ours(entry, reservations) == hubs(entry, reservations), (lab.now, entry, reservations)
                compared.append(ours(entry, reservations))

    qb.simulate(workload, "queue", gpus=GPUS, on_event=check)
    assert True in compared and False in compared


# --------------------------------------------------------------------------- hand-made scenarios


def tiny(requests, members):
    return qb.Workload([qb.Member(name, group) for name, group in members], requests, days=1)


def by_user(run):
    return {o.request.user: o for o in run.outcomes}


def test_retrying_loses_to_the_queue_when_a_newcomer_takes_the_freed_gpu():
    """One GPU. A holds it 09:00–10:00; B asks at 09:02; C at 10:01. Stock: B tries at
    10:02, finds C's server there, and only starts after C's hour. Queue: B is reserved the
    GPU at 10:00, claims it at 10:01, and C waits for B instead."""
    t0 = 9 * HOUR
    workload = tiny([
        qb.Request(0, "a", "residents", t0, 1, 60 * MIN, claims=(60.0,)),
        qb.Request(1, "b", "residents", t0 + 2 * MIN, 1, 30 * MIN, claims=(60.0,)),
        qb.Request(2, "c", "residents", t0 + 61 * MIN, 1, 60 * MIN, claims=(60.0,)),
    ], [("a", "residents"), ("b", "residents"), ("c", "residents")])
    stock = by_user(qb.simulate(workload, "stock", gpus=1, retry=15 * MIN))
    queue = by_user(qb.simulate(workload, "queue", gpus=1))
    assert stock["c"].wait == 0 and stock["b"].wait == 120 * MIN and stock["b"].refusals == 8
    assert queue["b"].wait == 59 * MIN and queue["b"].offers == 1
    assert queue["c"].started_at > queue["b"].started_at and queue["c"].wait == 31 * MIN
    stock_waits = [o.wait for o in stock.values()]
    queue_waits = [o.wait for o in queue.values()]
    assert sum(queue_waits) < sum(stock_waits) and max(queue_waits) < max(stock_waits)
    m_stock = qb.metrics(qb.simulate(workload, "stock", gpus=1), workload)
    m_queue = qb.metrics(qb.simulate(workload, "queue", gpus=1), workload)
    assert m_queue["wait_mean_min"] < m_stock["wait_mean_min"]
    assert m_queue["wait_p95_min"] < m_stock["wait_p95_min"]


def test_a_missed_reservation_lapses_and_passes_on():
    t0 = 9 * HOUR
    workload = tiny([
        qb.Request(0, "a", "residents", t0, 1, 60 * MIN),
        qb.Request(1, "b", "residents", t0 + 5 * MIN, 1, 30 * MIN, claims=(None, 60.0), comeback=30 * MIN),
        qb.Request(2, "c", "residents", t0 + 10 * MIN, 1, 60 * MIN, claims=(60.0,)),
    ], [("a", "residents"), ("b", "residents"), ("c", "residents")])
    run = qb.simulate(workload, "queue", gpus=1)
    out = by_user(run)
    # 10:00 B (first in line) is reserved the GPU, misses it; 10:10 it lapses and goes to C
    assert out["b"].lapses == 1 and out["c"].started_at == t0 + 71 * MIN
    # B launches again at 10:40, waits in line for C's hour, is reserved at 11:11, claims at 11:12
    assert out["b"].offers == 2 and out["b"].joined == 2 and out["b"].started_at == t0 + 132 * MIN
    assert out["b"].wait == 127 * MIN
    assert qb.metrics(run, workload)["gpu_hours_reserved_unused"] == pytest.approx((10 + 1 + 1) / 60)


@pytest.mark.parametrize("order, first", [("fair_share", "n"), ("arrival", "h")])
def test_fair_share_serves_the_member_with_fewer_gpu_hours_first(order, first):
    """Two GPUs. H has used one GPU-hour when they join the line at 10:05; N, who has used
    none, joins at 10:10; a GPU comes free at 10:41."""
    t0 = 9 * HOUR
    workload = tiny([
        qb.Request(0, "x", "staff", t0, 1, 180 * MIN, claims=(0.0,)),
        qb.Request(1, "h", "residents", t0, 1, 60 * MIN, claims=(0.0,)),
        qb.Request(2, "y", "staff", t0 + 61 * MIN, 1, 40 * MIN, claims=(0.0,)),
        qb.Request(3, "h", "residents", t0 + 65 * MIN, 1, 30 * MIN, claims=(0.0,)),
        qb.Request(4, "n", "residents", t0 + 70 * MIN, 1, 30 * MIN, claims=(0.0,)),
    ], [("x", "staff"), ("h", "residents"), ("y", "staff"), ("n", "residents")])
    run = qb.simulate(workload, "queue", gpus=2, policy=qb.lab_policy(order=order))
    starts = {o.request.id: o.started_at for o in run.outcomes}
    assert starts[2] == t0 + 61 * MIN  # Y took the GPU H freed: nobody was in line
    winner, loser = (4, 3) if first == "n" else (3, 4)
    assert starts[winner] == t0 + 101 * MIN and starts[loser] > starts[winner]


def test_stock_member_gives_up_at_the_end_of_the_working_day():
    """Asked at 19:00 on a weekday: tries until 20:00 (19:00, 19:15, ... 20:00), then gives up."""
    t0 = 19 * HOUR
    workload = tiny([
        qb.Request(0, "a", "residents", t0 - 10 * MIN, 1, 3 * HOUR),
        qb.Request(1, "b", "residents", t0, 1, 30 * MIN),
    ], [("a", "residents"), ("b", "residents")])
    out = by_user(qb.simulate(workload, "stock", gpus=1))
    assert out["b"].started_at is None and out["b"].refusals == 5 and out["b"].gave_up_at == 20 * HOUR
    queue = by_user(qb.simulate(workload, "queue", gpus=1))
    assert queue["b"].started_at is None and queue["b"].gave_up_at == 20 * HOUR


def test_command_line_json():
    done = subprocess.run([sys.executable, str(SCRIPT), "--days", "5", "--members", "20", "--gpus", "4", "--json"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    res = json.loads(done.stdout)
    assert res["stock"]["requests"] == res["queue"]["requests"] == res["workload"]["requests"] > 0
    for mode in ("stock", "queue"):
        m = res[mode]
        assert m["served"] + m["never_served"] == m["requests"]
        assert m["max_gpus_held"] <= 4 and m["max_pool_gpus"].get("students", 0) <= qb.STUDENT_POOL
        assert 0 <= m["gpu_hours_delivered"] <= m["gpu_hours_available"] == 4 * 5 * 24
        assert 0 < m["jain_served_over_asked"] <= 1
