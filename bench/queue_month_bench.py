#!/usr/bin/env python
"""A month of a lab's GPU demand, simulated twice on the same seeded workload.

A discrete-event simulation (a heap of events, no time steps) of one GPU type
(``a100``) shared by the members of three groups, with the lab's quota policy:

* stock: a launch that does not fit is refused (``Try again when a server stops``);
  the member tries again every ``--retry-minutes`` until it starts or until they give
  up (after ``--patience-hours``, or at 20:00 when they asked during a weekday's
  working hours; always at least 30 minutes);
* queue: a launch that does not fit joins the line (``hub_config.queue``). Whenever
  GPUs may have come free, ``core.offers`` hands out reservations in fair-share order
  (GPU-hours used this month), with ``quotas.admit`` checking the members' and groups'
  limits inside the ``fits`` callback as the hub's ``GPUQueue._fits`` does; the member
  claims the reservation after a delay drawn for them, or misses it: it lapses after
  ``claim_timeout`` (10 min), passes on, and the member launches again later. Members
  who set auto-start are started at once. Members leave the line when they would have
  given up in the stock run.

A member works in one GPU session at a time (``max_servers: 1``, and the queue holds
one entry per member): a request comes when it was drawn for, or when the member's
previous request has ended (its session stopped, or they gave up), whichever is later.
The requests themselves (who, when drawn, how many GPUs, how long, how the member
claims) are the same in both runs.

    .venv/bin/python bench/queue_month_bench.py [--seed 1] [--gpus 8] [--members 60]
        [--days 30] [--retry-minutes 15] [--patience-hours 4] [--json] [--write]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections import defaultdict, namedtuple
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from hub_config import quotas  # noqa: E402
from hub_config.queue import core  # noqa: E402
from hub_config.queue.core import RESERVED, WAITING, Entry  # noqa: E402
from hub_config.quotas import ActiveServer, Limits, QueueSettings, QuotaPolicy  # noqa: E402

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
GPU_TYPE = "a100"
COMMAND = ".venv/bin/python bench/queue_month_bench.py --write"
STUDENT_POOL = 3
# group -> share of the members
GROUPS = (("residents", 1 / 3), ("students", 5 / 12), ("staff", 1 / 4))
WORK_START, WORK_END = 8 * HOUR, 20 * HOUR  # weekdays
DEFAULT_CLAIM = 2 * MIN  # a member's claim delay beyond the ones drawn for a request

# what a launch asks of the quota decision (``profiles.Resources`` and ``manager.Wanted`` have these)
Wanted = namedtuple("Wanted", "gpus gpu_type")


def lab_policy(*, student_pool: int = STUDENT_POOL, order: str = "fair_share", claim_timeout: int = 600) -> QuotaPolicy:
    """The lab's quotas: one server per member; students at most 2 GPUs each, 3 as a
    group, 8 h a server; residents and staff up to 4 GPUs, 24 h a server."""
    return QuotaPolicy(
        period="month",
        group_pools={"students": Limits(max_gpus=student_pool)},
        group_members={
            "residents": Limits(max_gpus=4, max_servers=1, max_runtime=int(24 * HOUR)),
            "students": Limits(max_gpus=2, max_servers=1, max_runtime=int(8 * HOUR)),
            "staff": Limits(max_gpus=4, max_servers=1, max_runtime=int(24 * HOUR)),
        },
        queue=QueueSettings(order=order, claim_timeout=claim_timeout),
    )


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Member:
    name: str
    group: str
    heavy: bool = False
    auto_start: bool = False


@dataclass(frozen=True)
class Request:
    """One GPU session a member wants. ``at``: seconds from the month's start (a Monday
    00:00); ``length``: how long they would use it (the run-time limit may cut it);
    ``claims``: per reservation offered, seconds until the member claims it (None: they
    miss it); ``comeback``: seconds after a missed reservation until they launch again."""

    id: int
    user: str
    group: str
    at: float
    gpus: int
    length: float
    claims: tuple = ()
    comeback: float = 30 * MIN

    def claim_delay(self, offer: int) -> float | None:
        return self.claims[offer] if offer < len(self.claims) else DEFAULT_CLAIM


@dataclass
class Workload:
    members: list
    requests: list  # sorted by ``at``
    days: int


def hour_weight(hour_of_month: int) -> float:
    """Relative rate of new requests in an hour of the month (day 0 is a Monday)."""
    day, hod = divmod(hour_of_month, 24)
    if day % 7 < 5:
        if 8 <= hod < 20:
            return 1.0
        if 6 <= hod < 8 or 20 <= hod < 23:
            return 0.15
        return 0.02
    return 0.2 if 9 <= hod < 21 else 0.02


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 500:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def make_workload(seed: int = 1, *, members: int = 60, days: int = 30, heavy_share: float = 0.15,
                  auto_start_share: float = 0.2, requests_per_month: float = 14.0, heavy_factor: float = 3.0,
                  miss_share: float = 0.12) -> Workload:
    """The seeded month: members in the three groups, some heavy (3× the requests,
    longer sessions), some who set auto-start; requests mostly on weekdays 08:00–20:00."""
    rng = random.Random(seed)
    roster, counts, given = [], [], 0
    for i, (group, share) in enumerate(GROUPS):
        n = members - given if i == len(GROUPS) - 1 else int(round(members * share))
        counts.append((group, n))
        given += n
    for group, n in counts:
        for i in range(n):
            roster.append(Member(f"{group[:3]}{i:02d}", group, heavy=rng.random() < heavy_share,
                                 auto_start=rng.random() < auto_start_share))
    hours = list(range(days * 24))
    weights = [hour_weight(h) for h in hours]
    drafts = []
    for m in roster:
        n = _poisson(rng, requests_per_month * (heavy_factor if m.heavy else 1.0) * days / 30)
        for h in rng.choices(hours, weights, k=n):
            at = h * HOUR + rng.uniform(0, HOUR)
            if m.group == "students":
                gpus = rng.choices([1, 2], [0.85, 0.15])[0]
            else:
                gpus = rng.choices([1, 2, 4], [0.8, 0.15, 0.05])[0]
            median = 3 * HOUR if m.heavy else 75 * MIN
            length = min(max(rng.lognormvariate(math.log(median), 1.0), 5 * MIN), 24 * HOUR)
            claims = []
            for _ in range(4):
                if m.auto_start:
                    claims.append(0.0)
                elif rng.random() < miss_share:
                    claims.append(None)
                else:  # most within a few minutes
                    claims.append(round(min(rng.expovariate(1 / (2.5 * MIN)), 9.5 * MIN), 1))
            drafts.append((at, m, gpus, length, tuple(claims), rng.uniform(15 * MIN, 60 * MIN)))
    drafts.sort(key=lambda d: (d[0], d[1].name))
    requests = [Request(i, m.name, m.group, at, gpus, length, claims, comeback)
                for i, (at, m, gpus, length, claims, comeback) in enumerate(drafts)]
    return Workload(roster, requests, days)


def give_up_at(t: float, patience: float) -> float:
    """When a member who first asked at ``t`` stops trying: after ``patience``, or at
    20:00 if they asked during a weekday's working hours; never before 30 minutes."""
    day, hod = divmod(t, DAY)
    end = t + patience
    if int(day) % 7 < 5 and WORK_START <= hod < WORK_END:
        end = min(end, day * DAY + WORK_END)
    return max(end, t + 30 * MIN)


# --------------------------------------------------------------------------- simulation

# event kinds, in the order they are handled at the same instant
END, LAPSE, CLAIM, GIVE_UP, ISSUE, RETRY, COMEBACK = range(7)


@dataclass
class Outcome:
    """What became of one request in one run."""

    request: Request
    issued_at: float | None = None  # when the member first asked
    started_at: float | None = None
    ended_at: float | None = None
    gave_up_at: float | None = None
    refusals: int = 0  # launches refused (stock)
    offers: int = 0  # reservations offered (queue)
    lapses: int = 0
    joined: int = 0  # times it joined the line

    @property
    def wait(self) -> float | None:
        return None if self.started_at is None else self.started_at - self.issued_at


@dataclass
class Run:
    mode: str
    gpus: int
    days: int
    outcomes: list
    reservations: list = field(default_factory=list)  # (user, gpus, offered_at, until)
    max_held: int = 0  # most GPUs running + reserved after any event
    max_pool: dict = field(default_factory=dict)  # group -> most GPUs of the group running + reserved
    trace: list | None = None  # (time, GPUs held, {group: GPUs}) after every event, when asked for
    events: int = 0


class Lab:
    """One run of the month: ``mode`` is ``stock`` or ``queue``."""

    def __init__(self, workload: Workload, mode: str, *, gpus: int = 8, policy: QuotaPolicy | None = None,
                 retry: float = 15 * MIN, patience: float = 4 * HOUR, trace: bool = False, on_event=None):
        """``on_event(lab)``: called after every event (the tests' checks)."""
        assert mode in ("stock", "queue")
        self.on_event = on_event
        self.mode, self.total, self.retry, self.patience = mode, gpus, retry, patience
        self.policy = policy or lab_policy()
        self.settings = self.policy.queue
        self.workload = workload
        self.groups = {m.name: (m.group,) for m in workload.members}
        self.out = {r.id: Outcome(r) for r in workload.requests}
        self.running: dict[int, tuple[ActiveServer, float]] = {}  # request id -> (server, started)
        self.entries: dict[int, Entry] = {}  # request id -> its entry in line (queue)
        self.closed_hours: dict[str, float] = defaultdict(float)  # user -> GPU-hours of stopped sessions
        self.pending: dict[str, list[Request]] = defaultdict(list)  # user -> requests not issued yet
        for r in workload.requests:
            self.pending[r.user].append(r)
        self.deadline: dict[int, float] = {}
        self.heap: list = []
        self.seq = 0
        self.now = 0.0
        self.result = Run(mode, gpus, workload.days, list(self.out.values()), trace=[] if trace else None)

    # ------------------------------------------------------------ inputs of the decisions

    def push(self, t: float, kind: int, rid: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, kind, self.seq, rid))

    def active(self) -> list[ActiveServer]:
        return [server for server, _ in self.running.values()]

    def free(self, active: list[ActiveServer]) -> int:
        return self.total - sum(s.gpus for s in active)

    def used(self, user: str) -> float:
        """GPU-hours of ``user`` this month so far (stopped and running sessions), as the
        usage store's ``period_gpu_hours`` counts them."""
        live = sum(s.gpus * (self.now - started) / HOUR for s, started in self.running.values() if s.user == user)
        return self.closed_hours[user] + live

    def gpu_hours(self, user=None, group=None) -> float:
        if user is not None:
            return self.used(user)
        return sum(self.used(m.name) for m in self.workload.members if m.group == group)

    def fits_callback(self, active: list[ActiveServer]):
        """``core.offers``'s ``fits``, as ``GPUQueue._fits`` builds it: the quota policy with
        the other members' reservations counted as running servers, then the free GPUs
        less all the reservations."""

        def fits(entry: Entry, reservations: list[Entry]) -> bool:
            held = [r.as_active() for r in reservations if r.user != entry.user]
            try:
                quotas.admit(self.policy, entry.user, entry.groups, Wanted(entry.gpus, entry.gpu_type),
                             active + held, self.gpu_hours)
            except quotas.QuotaExceeded:
                return False
            free = self.free(active) - sum(r.gpus for r in reservations if core.overlaps(r.gpu_type, entry.gpu_type))
            return free >= entry.gpus

        return fits

    def admit(self, r: Request) -> int | None | bool:
        """The launch decision (``GPUQueue.admit``; stock: no reservations to count):
        False when refused, else the member's run-time limit."""
        active = self.active()
        entries = list(self.entries.values())
        others = [e.as_active() for e in entries if e.state == RESERVED and e.user != r.user]
        try:
            runtime = quotas.admit(self.policy, r.user, self.groups[r.user], Wanted(r.gpus, GPU_TYPE),
                                   active + others, self.gpu_hours)
        except quotas.PoolFull:
            return False
        except quotas.QuotaExceeded as e:  # the workload never asks past the members' own limits
            raise AssertionError(f"request {r.id} of {r.user} refused for good: {e}") from None
        if self.free(active) - core.reserved_gpus(entries, GPU_TYPE, besides=r.user) < r.gpus:
            return False
        return runtime

    # ------------------------------------------------------------ what happens

    def start(self, r: Request, runtime) -> None:
        o = self.out[r.id]
        o.started_at = self.now
        self.entries.pop(r.id, None)  # a launch ends its member's entry (``GPUQueue.admit``)
        length = min(r.length, runtime) if runtime else r.length
        self.running[r.id] = (ActiveServer(r.user, self.groups[r.user], r.gpus, GPU_TYPE), self.now)
        self.push(self.now + length, END, r.id)

    def member_free(self, user: str) -> None:
        """The member's request has ended: their next one comes when drawn, or now."""
        if self.pending[user]:
            nxt = self.pending[user].pop(0)
            self.push(max(nxt.at, self.now), ISSUE, nxt.id)

    def give_up(self, r: Request) -> None:
        self.out[r.id].gave_up_at = self.now
        self.entries.pop(r.id, None)
        self.member_free(r.user)

    def launch(self, r: Request) -> None:
        """The member presses start: it starts, or (stock) is refused, or (queue) joins the line."""
        if self.mode == "queue":
            self.rebalance()  # as the hub does before each decision
        runtime = self.admit(r)
        if runtime is not False:
            self.start(r, runtime)
            return
        o = self.out[r.id]
        if self.mode == "stock":
            o.refusals += 1
            if self.now + self.retry <= self.deadline[r.id]:
                self.push(self.now + self.retry, RETRY, r.id)
            else:
                self.give_up(r)
            return
        o.joined += 1
        self.entries[r.id] = Entry(id=r.id, user=r.user, groups=self.groups[r.user], gpus=r.gpus,
                                   gpu_type=GPU_TYPE, joined_at=self.now)
        self.rebalance()

    def rebalance(self) -> None:
        """``GPUQueue.rebalance``: reservations for whoever in line fits now (lapses are
        events of their own here, at the moment they fall due)."""
        entries = list(self.entries.values())
        if not any(e.state == WAITING for e in entries):
            return
        used = {e.user: self.used(e.user) for e in entries}
        for made in core.offers(entries, used, self.settings, self.fits_callback(self.active()), self.now):
            self.entries[made.id] = made
            o = self.out[made.id]
            delay = o.request.claim_delay(o.offers)
            o.offers += 1
            if delay is None or delay >= self.settings.claim_timeout:
                self.result.reservations.append((made.user, made.gpus, self.now, made.reserved_until))
                self.push(made.reserved_until, LAPSE, made.id)
            else:
                self.result.reservations.append((made.user, made.gpus, self.now, self.now + delay))
                self.push(self.now + delay, CLAIM, made.id)

    def handle(self, kind: int, rid: int) -> None:
        r = self.out[rid].request
        if kind == END:
            server, started = self.running.pop(rid)
            self.out[rid].ended_at = self.now
            self.closed_hours[server.user] += server.gpus * (self.now - started) / HOUR
            self.member_free(server.user)
            if self.mode == "queue":
                self.rebalance()
        elif kind == ISSUE:
            self.out[rid].issued_at = self.now
            self.deadline[rid] = give_up_at(self.now, self.patience)
            if self.mode == "queue":
                self.push(self.deadline[rid], GIVE_UP, rid)
            self.launch(r)
        elif kind == RETRY:
            self.launch(r)
        elif kind == CLAIM:
            runtime = self.admit(r)
            if runtime is False:
                raise AssertionError(f"reservation of request {rid} could not be used at {self.now}")
            self.start(r, runtime)
        elif kind == LAPSE:
            gone = core.lapsed(list(self.entries.values()), self.now)
            assert any(e.id == rid for e in gone), f"request {rid} lapsed without a due reservation"
            self.entries.pop(rid)
            o = self.out[rid]
            o.lapses += 1
            if self.now + r.comeback < self.deadline[rid]:
                self.push(self.now + r.comeback, COMEBACK, rid)
            else:
                self.give_up(r)
            self.rebalance()
        elif kind == COMEBACK:  # (before the member's give-up time, see LAPSE)
            self.launch(r)
        elif kind == GIVE_UP:
            entry = self.entries.get(rid)
            if entry is not None and entry.state == WAITING:
                self.give_up(r)
            # holding a reservation: it is claimed or lapses (and then they give up)

    def observe(self) -> None:
        held = sum(s.gpus for s, _ in self.running.values())
        pools: dict[str, int] = defaultdict(int)
        for s, _ in self.running.values():
            for g in s.groups:
                pools[g] += s.gpus
        for e in self.entries.values():
            if e.state == RESERVED:
                held += e.gpus
                for g in e.groups:
                    pools[g] += e.gpus
        res = self.result
        res.max_held = max(res.max_held, held)
        for g, n in pools.items():
            res.max_pool[g] = max(res.max_pool.get(g, 0), n)
        if res.trace is not None:
            res.trace.append((self.now, held, dict(pools)))

    def run(self) -> Run:
        for user, todo in self.pending.items():
            if todo:
                first = todo.pop(0)
                self.push(first.at, ISSUE, first.id)
        while self.heap:
            t, kind, _, rid = heapq.heappop(self.heap)
            self.now = t
            self.handle(kind, rid)
            self.observe()
            self.result.events += 1
            if self.on_event is not None:
                self.on_event(self)
        return self.result


def simulate(workload: Workload, mode: str, **kwargs) -> Run:
    return Lab(workload, mode, **kwargs).run()


# --------------------------------------------------------------------------- figures


def percentile(values, p):
    """Nearest rank on the sorted values (as the other benchmarks here)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else None


def overlap(a0, a1, b0, b1) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def jain(values) -> float | None:
    values = list(values)
    if not values or not any(values):
        return None
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def metrics(run: Run, workload: Workload, policy: QuotaPolicy | None = None) -> dict:
    policy = policy or lab_policy()
    month = run.days * DAY
    outs = run.outcomes
    served = [o for o in outs if o.started_at is not None]
    waits = [o.wait for o in served]
    delivered = sum(o.request.gpus * overlap(o.started_at, o.ended_at, 0, month) for o in served) / HOUR
    work = [(d * DAY + WORK_START, d * DAY + WORK_END) for d in range(run.days) if d % 7 < 5]
    work_delivered = sum(o.request.gpus * overlap(o.started_at, o.ended_at, a, b) for o in served for a, b in work) / HOUR
    # fairness: per member, GPU-hours served over GPU-hours asked (the session lengths the
    # member wanted, cut at their run-time limit); Jain's index over the members who asked
    asked, got = defaultdict(float), defaultdict(float)
    for o in outs:
        r = o.request
        limit = policy.member_limits(r.user, (r.group,)).max_runtime
        hours = r.gpus * (min(r.length, limit) if limit else r.length) / HOUR
        asked[r.user] += hours
        if o.started_at is not None:
            got[r.user] += r.gpus * (o.ended_at - o.started_at) / HOUR
    ratios = {u: got[u] / asked[u] for u in asked if asked[u] > 0}
    by_group = {}
    for group, _ in GROUPS:
        mine = [o for o in outs if o.request.group == group]
        w = [o.wait for o in mine if o.started_at is not None]
        by_group[group] = {
            "requests": len(mine), "served": len(w),
            "wait_p50_min": percentile(w, 50) / MIN if w else None,
            "within_30_min": sum(1 for x in w if x <= 30 * MIN) / len(mine) if mine else None,
            "jain": jain(ratios[u] for u in ratios if u in {o.request.user for o in mine}),
        }
    delayed = [o for o in outs if o.started_at is None or o.started_at > o.issued_at]
    delayed_waits = [o.wait for o in delayed if o.started_at is not None]
    idle_reserved = sum(g * overlap(t0, t1, 0, month) for _, g, t0, t1 in run.reservations) / HOUR
    return {
        "mode": run.mode,
        "requests": len(outs),
        "served": len(served),
        "never_served": len(outs) - len(served),
        "wait_p50_min": percentile(waits, 50) / MIN if waits else None,
        "wait_p95_min": percentile(waits, 95) / MIN if waits else None,
        "wait_mean_min": statistics.mean(waits) / MIN if waits else None,
        "within_30_min": sum(1 for w in waits if w <= 30 * MIN) / len(outs) if outs else None,
        "delayed": len(delayed),
        "delayed_served": len(delayed_waits),
        "delayed_wait_p50_min": percentile(delayed_waits, 50) / MIN if delayed_waits else None,
        "delayed_wait_p95_min": percentile(delayed_waits, 95) / MIN if delayed_waits else None,
        "gpu_hours_delivered": delivered,
        "gpu_hours_available": run.gpus * month / HOUR,
        "utilisation": delivered / (run.gpus * month / HOUR),
        "utilisation_working_hours": work_delivered / (run.gpus * len(work) * (WORK_END - WORK_START) / HOUR) if work else None,
        "jain_served_over_asked": jain(ratios.values()),
        "refused_launches": sum(o.refusals for o in outs),
        "reservations": len(run.reservations),
        "lapsed_reservations": sum(o.lapses for o in outs),
        "gpu_hours_reserved_unused": idle_reserved,
        "max_gpus_held": run.max_held,
        "max_pool_gpus": dict(run.max_pool),
        "events": run.events,
        "by_group": by_group,
    }


def describe(workload: Workload, gpus: int) -> dict:
    by_group = defaultdict(int)
    for m in workload.members:
        by_group[m.group] += 1
    sizes = defaultdict(int)
    for r in workload.requests:
        sizes[r.gpus] += 1
    policy = lab_policy()
    asked = sum(r.gpus * min(r.length, policy.member_limits(r.user, (r.group,)).max_runtime or r.length)
                for r in workload.requests) / HOUR
    return {
        "members": len(workload.members), "groups": dict(by_group),
        "heavy": sum(m.heavy for m in workload.members), "auto_start": sum(m.auto_start for m in workload.members),
        "requests": len(workload.requests), "gpus_per_request": dict(sorted(sizes.items())),
        "median_length_min": statistics.median(r.length for r in workload.requests) / MIN if workload.requests else None,
        "gpu_hours_asked": asked, "gpu_hours_available": gpus * workload.days * 24,
    }


def fmt_min(x) -> str:
    return "–" if x is None else f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def table(stock: dict, queue: dict, retry_minutes: float) -> list[str]:
    def pct(x):
        return "–" if x is None else f"{100 * x:.1f} %"

    def row(label, fn):
        return f"| {label} | {fn(stock)} | {fn(queue)} |"

    return [
        f"| metric | stock: refused, retry every {retry_minutes:g} min | queue: fair share + reservations |",
        "|---|---:|---:|",
        row("requests (same workload)", lambda m: f"{m['requests']}"),
        row("served", lambda m: f"{m['served']}"),
        row("never served (member gave up)", lambda m: f"{m['never_served']}"),
        row("wait p50, served (min)", lambda m: fmt_min(m["wait_p50_min"])),
        row("wait p95, served (min)", lambda m: fmt_min(m["wait_p95_min"])),
        row("wait mean, served (min)", lambda m: fmt_min(m["wait_mean_min"])),
        row("could not start at once / of those served", lambda m: f"{m['delayed']} / {m['delayed_served']}"),
        row("their wait p50 / p95, served (min)",
            lambda m: f"{fmt_min(m['delayed_wait_p50_min'])} / {fmt_min(m['delayed_wait_p95_min'])}"),
        row("started within 30 min (of all requests)", lambda m: pct(m["within_30_min"])),
        row("students started within 30 min", lambda m: pct(m["by_group"]["students"]["within_30_min"])),
        row("GPU-hours delivered / available", lambda m: f"{m['gpu_hours_delivered']:.0f} / {m['gpu_hours_available']:.0f} "
                                                          f"({pct(m['utilisation'])})"),
        row("GPUs busy, weekdays 08–20", lambda m: pct(m["utilisation_working_hours"])),
        row("Jain's index, served/asked GPU-h per member", lambda m: f"{m['jain_served_over_asked']:.3f}"),
        row("refused launches / reservations (lapsed)", lambda m: f"{m['refused_launches']}" if m["mode"] == "stock"
            else f"{m['reservations']} ({m['lapsed_reservations']})"),
        row("GPU-hours held by reservations before claim", lambda m: f"{m['gpu_hours_reserved_unused']:.1f}"),
    ]


def both(seed: int, gpus: int, members: int, days: int, retry_minutes: float, patience_hours: float):
    workload = make_workload(seed, members=members, days=days)
    runs = {}
    for mode in ("stock", "queue"):
        run = simulate(workload, mode, gpus=gpus, retry=retry_minutes * MIN, patience=patience_hours * HOUR)
        runs[mode] = metrics(run, workload)
    return workload, runs


SPREAD = {  # queue minus stock, over other seeds: key -> (label, scale, unit)
    "served": ("requests served", 1, ""),
    "within_30_min": ("started within 30 min", 100, " points"),
    "jain_served_over_asked": ("Jain's index", 1, ""),
    "utilisation_working_hours": ("GPUs busy weekdays 08–20", 100, " points"),
}


def run_bench(seed: int, gpus: int, members: int, days: int, retry_minutes: float, patience_hours: float,
              spread: int = 5) -> dict:
    t0 = time.perf_counter()
    workload, runs = both(seed, gpus, members, days, retry_minutes, patience_hours)
    seconds = time.perf_counter() - t0
    others = [s for s in range(1, spread + 2) if s != seed][:spread]
    # sensitivity: the same queue run with every reservation claimed the moment it is made
    instant = Workload(workload.members, [replace(r, claims=(0.0,) * 4) for r in workload.requests], workload.days)
    runs["queue_instant_claims"] = metrics(simulate(instant, "queue", gpus=gpus, patience=patience_hours * HOUR), instant)
    # sensitivity: the stock run with members who retry more and less often
    retries = {}
    for minutes in (5, 60):
        if minutes != retry_minutes:
            run = simulate(workload, "stock", gpus=gpus, retry=minutes * MIN, patience=patience_hours * HOUR)
            retries[minutes] = metrics(run, workload)
    diffs = {k: [] for k in SPREAD}
    for other in others:
        _, r = both(other, gpus, members, days, retry_minutes, patience_hours)
        for k in SPREAD:
            diffs[k].append(r["queue"][k] - r["stock"][k])
    return {
        "seed": seed, "gpus": gpus, "days": days, "retry_minutes": retry_minutes, "patience_hours": patience_hours,
        "workload": describe(workload, gpus), "stock": runs["stock"], "queue": runs["queue"],
        "queue_instant_claims": runs["queue_instant_claims"], "stock_other_retries": retries,
        "seconds": seconds, "total_seconds": time.perf_counter() - t0, "other_seeds": others, "other_seeds_queue_minus_stock": diffs,
    }


def report(res: dict, command: str) -> str:
    w = res["workload"]
    groups = ", ".join(f"{n} {g}" for g, n in w["groups"].items())
    sizes = ", ".join(f"{n}× {g} GPU" for g, n in w["gpus_per_request"].items())
    lines = [
        "## GPU queue: a simulated month of a lab",
        "",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"both runs {res['seconds']:.1f} s (with the other seeds and the auto-start run below, "
        f"{res['total_seconds']:.1f} s)",
        f"- reproduce: `{command}`",
        f"- lab: {res['gpus']} {GPU_TYPE.upper()}s; {w['members']} members ({groups}); students at most 2 GPUs each and "
        f"{STUDENT_POOL} as a group (`quotas.admit` pool), 8 h run-time limit; residents and staff up to 4 GPUs, 24 h; "
        "one GPU server per member",
        f"- workload (seed {res['seed']}, {res['days']} days from a Monday): {w['requests']} requests ({sizes}); "
        f"{w['heavy']} heavy members (3× the requests, median session 3 h against 75 min), "
        "session lengths log-normal (σ = 1, 5 min to 24 h); arrivals weighted 1 on weekdays 08–20, 0.2 on weekend "
        "days, 0.15 on weekday early mornings and evenings, 0.02 at night; "
        f"{w['gpu_hours_asked']:.0f} GPU-hours asked of {w['gpu_hours_available']:.0f} available",
        f"- members: try every {res['retry_minutes']:g} min (stock) or wait in line (queue) until they give up, "
        f"after {res['patience_hours']:g} h or at 20:00 for a request made in working hours (at least 30 min); "
        f"queue: {w['auto_start']} members set auto-start (started the moment a reservation is made), the others "
        "claim after a delay (exponential, mean 2.5 min) or, for 12 % of reservations, miss it: it lapses after "
        "`claim_timeout` (10 min) and they launch again 15–60 min later",
        "- fairness: Jain's index (Σx)² / (n·Σx²) over the members who asked, x = GPU-hours a member was served / "
        "GPU-hours they asked for (their sessions' lengths, cut at their run-time limit); 1 when every member got the "
        "same share of what they asked",
        "- waits: from a request's first launch to its server's start (the queue: the member's claim); requests never "
        "served are counted apart, not in the waits",
        "",
        *table(res["stock"], res["queue"], res["retry_minutes"]),
        "",
        *reading(res),
    ]
    return "\n".join(lines)


def _span(values, scale=1, digits=0):
    lo, hi = min(values) * scale, max(values) * scale
    return f"{lo:+.{digits}f} to {hi:+.{digits}f}"


def reading(res: dict) -> list[str]:
    """The paragraphs under the table; comparisons are worded from the figures."""
    st, qu, ic = res["stock"], res["queue"], res["queue_instant_claims"]
    d = res["other_seeds_queue_minus_stock"]
    seeds = res["other_seeds"]
    seeds_text = f"seeds {seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else \
        "seeds " + ", ".join(map(str, seeds))

    def pts(x):
        return f"{100 * x:.1f} %"

    def word(a, b, up, down, same="the same", tolerance=0.0):
        return same if abs(a - b) <= tolerance else up if a > b else down

    busy_q, busy_s = qu["utilisation_working_hours"], st["utilisation_working_hours"]
    busy = ("Both runs keep the GPUs about equally busy" if abs(busy_q - busy_s) <= 0.02 else
            f"The GPUs are {word(busy_q, busy_s, 'busier', 'less busy')} with the queue")
    return [
        f"Reading. {busy} ({pts(busy_s)} stock, {pts(busy_q)} queue, on weekdays 08–20; "
        f"{st['gpu_hours_delivered']:.0f} against {qu['gpu_hours_delivered']:.0f} GPU-hours over the month): in a lab "
        "this contended a freed GPU is soon taken by somebody either way, and the queue adds no capacity. What it "
        "changes is who gets a freed GPU. Without it, whoever presses start next: often a member who has just "
        "arrived (and waits 0 min), while those who asked earlier keep retrying and some give up. With it, the "
        "member in line with the fewest GPU-hours this month. With the queue, "
        f"{word(qu['served'], st['served'], 'more', 'fewer', 'as many')} requests are served ({qu['served']} against "
        f"{st['served']}; {qu['never_served']} against {st['never_served']} never served), Jain's index is "
        f"{word(qu['jain_served_over_asked'], st['jain_served_over_asked'], 'higher', 'lower', 'the same', 0.0005)} "
        f"({qu['jain_served_over_asked']:.3f} against {st['jain_served_over_asked']:.3f}), and no launch is refused "
        f"(against {st['refused_launches']} refusals in the stock run, each a member pressing start again). "
        f"The median wait is {fmt_min(qu['wait_p50_min'])} against {fmt_min(st['wait_p50_min'])} min"
        + (" because most requests find a GPU free" if not (qu["wait_p50_min"] or st["wait_p50_min"]) else "")
        + ". Requests that found none at once are "
        f"{word(qu['delayed'], st['delayed'], 'more', 'fewer', 'as many')} with the queue ({qu['delayed']} against "
        f"{st['delayed']}: free GPUs are held for the line, and newcomers cannot take them), and the share started "
        f"within 30 min is {word(qu['within_30_min'], st['within_30_min'], 'higher', 'lower', 'the same', 0.0005)} "
        f"({pts(qu['within_30_min'])} against {pts(st['within_30_min'])}); the served waits' p95 is "
        f"{fmt_min(qu['wait_p95_min'])} against {fmt_min(st['wait_p95_min'])} min. The served-wait figures favour "
        "stock by survivorship: the queue serves requests that had waited long, which in the stock run more often "
        "ended in giving up and drop out of the waits (the median wait of served requests that could not start at "
        f"once: {fmt_min(qu['delayed_wait_p50_min'])} against {fmt_min(st['delayed_wait_p50_min'])} min). "
        f"Claims cost too: reservations held {qu['gpu_hours_reserved_unused']:.0f} GPU-hours idle between offer and "
        f"claim, and {qu['lapsed_reservations']} of {qu['reservations']} lapsed after 10 min; had every member set "
        f"auto-start, the queue would have served {ic['served']} requests and started {pts(ic['within_30_min'])} "
        "within 30 min.",
        "",
        "The retry model is generous to stock: members press start again exactly every "
        f"{res['retry_minutes']:g} min for up to {res['patience_hours']:g} h, never miss a try, and need no notice "
        "that a GPU came free. The same month with members retrying more or less often: "
        + "; ".join(f"retrying every {k:g} min, {m['served']} served, {pts(m['within_30_min'])} within 30 min, "
                    f"{pts(m['utilisation_working_hours'])} busy, {m['refused_launches']} refusals"
                    for k, m in sorted(res["stock_other_retries"].items()))
        + ("; " if res["stock_other_retries"] else "")
        + "the queue's figures do not depend on it. Members in line leave when they would have stopped retrying (staying in line overnight with "
        "auto-start would turn some give-ups into late starts). A member works in one session at a time, so a "
        f"request held up delays that member's next one, in both runs. Over {seeds_text}, queue minus stock: "
        + "; ".join(f"{label} {_span(d[k], scale, 0 if k == 'served' else 3 if scale == 1 else 1)}{unit}"
                    for k, (label, scale, unit) in SPREAD.items()) + ".",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--members", type=int, default=60)
    parser.add_argument("--days", type=int, default=30, help="length of the simulated month (default 30)")
    parser.add_argument("--retry-minutes", type=float, default=15.0, help="stock: minutes between tries (default 15)")
    parser.add_argument("--patience-hours", type=float, default=4.0, help="when members give up (default 4 h)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    parser.add_argument("--write", action="store_true", help="replace this benchmark's section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    res = run_bench(args.seed, args.gpus, args.members, args.days, args.retry_minutes, args.patience_hours)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    text = report(res, COMMAND)
    print(text)
    if args.write:
        sys.path.insert(0, str(HERE))
        from benchdoc import write_section

        write_section("queue-month-bench", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
