"""The GPU queue in the hub process, beside the quota decision.

:meth:`GPUQueue.admit` is the launch decision every spawner makes (``decide_launch``): the
quota policy with the reservations of others counted as running servers, then the free
GPUs of the type less those reservations. It runs without yielding to the event loop, like
the usage record it precedes, so a reserved or queued GPU is never handed to someone else.
:meth:`GPUQueue.rebalance` offers reservations whenever GPUs may have freed up: before each
decision, when a server stops, and every few seconds (lapses, policy and inventory changes).
The decisions themselves are ``core``'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from .. import quotas
from ..quotas import ActiveServer, QuotaPolicy
from ..usage.store import UsageStore
from . import core
from .core import RESERVED, Entry
from .store import AlreadyQueued, QueueStore

log = logging.getLogger("aistudio.queue")

HISTORY_DAYS = 30  # how far back the typical server length is read
HISTORY_TTL = 60.0  # seconds the typical lengths are kept before they are read again


class Capacity(Protocol):
    def free(self, gpu_type: str | None, active: list[ActiveServer]) -> tuple[int, int] | None:
        """GPUs of ``gpu_type`` free now and in all (``active``: the hub's running servers);
        None while it is not known."""


class AllocatorCapacity:
    """Local mode: the devices the hub's GPU allocator has not handed out."""

    def __init__(self, allocator):
        self.allocator = allocator

    def free(self, gpu_type, active):
        from ..gpus import type_matches

        total = sum(1 for g in self.allocator.gpus if type_matches(g.type, gpu_type))
        return len(self.allocator.free(gpu_type)), total


class ClusterCapacity:
    """Kubernetes: the nodes' allocatable GPUs of each type less what pods not started by
    this hub hold (read every few seconds, ``spawners.capacity``), less the hub's own
    servers (from its usage records, so that its own launches count at once)."""

    def __init__(self, fetch: Callable[[], Awaitable[dict]]):
        self.fetch = fetch
        self.seen: dict[str, dict] | None = None  # None: not read yet, nothing is known

    async def refresh(self) -> None:
        self.seen = await self.fetch()

    def free(self, gpu_type, active):
        if self.seen is None:
            return None
        entry = self.seen.get(gpu_type or "")
        if entry is None:
            return 0, 0
        held = sum(s.gpus for s in active if core.overlaps(s.gpu_type, gpu_type))
        return max(entry["total"] - entry["foreign"] - held, 0), entry["total"]


class MustWait(quotas.QuotaExceeded):
    """A launch within the member's rights that cannot start now: GPUs of its type are
    taken, or a group's pool is full. It may wait in line; ``status``: 409 or 429."""

    def __init__(self, message: str, status: int, gpu_type: str | None):
        super().__init__(message)
        self.status = status
        self.gpu_type = gpu_type


class MoreThanThereAre(quotas.QuotaExceeded):
    """A launch asking for more GPUs of a type than there are at all (409, like a start
    that finds none free): no wait can help."""


def more_than_there_are(total: int, resources) -> MoreThanThereAre:
    unit = (resources.gpu_type or "GPU").upper()
    if not total:
        return MoreThanThereAre(f"There are no {unit}s here: choose another profile.")
    there = f"There is only 1 {unit}" if total == 1 else f"There are only {total} {unit}s"
    return MoreThanThereAre(f"{there} in all and you asked for {resources.gpus}: choose another profile.")


@dataclass(frozen=True)
class Wanted:
    """What a launch asks of the queue's view (``profiles.Resources`` has these two)."""

    gpus: int
    gpu_type: str | None


class GPUQueue:
    def __init__(self, usage: UsageStore, policy: Callable[[], QuotaPolicy], capacity: Capacity | None = None):
        self.usage = usage
        self.policy = policy
        self.capacity = capacity
        self.store = QueueStore(usage.engine)
        self.runtimes: dict[int, float] = {}  # usage record -> its server's run-time limit (estimates)
        # told of each new reservation: ``await listener(entry)`` (e-mail, the hub's own start)
        self.reservation_listeners: list[Callable[[Entry], Awaitable[None]]] = []
        self._history: tuple[float, dict] = (float("-inf"), {})

    # ------------------------------------------------------------ inputs

    def settings(self) -> quotas.QueueSettings:
        return self.policy().queue

    def _gpu_hours(self, policy: QuotaPolicy):
        since = quotas.period_start(policy.period).timestamp()
        return lambda user=None, group=None: self.usage.period_gpu_hours(since, user=user, group=group)

    def _used(self, entries: list[Entry], policy: QuotaPolicy) -> dict:
        hours = self._gpu_hours(policy)
        return {e.user: hours(user=e.user) for e in entries}

    def _free(self, gpu_type, active) -> tuple[int, int] | None:
        """Free and total GPUs of a type; None while nobody can tell (no launch is then refused
        for want of GPUs, and nobody is offered any)."""
        return None if self.capacity is None else self.capacity.free(gpu_type, active)

    # ------------------------------------------------------------ the launch decision

    def admit(self, user: str, groups, resources, *, server_name: str = "", fewer_gpus: bool = False) -> int | None:
        """The quota decision with the queue: raise ``QuotaExceeded`` (waiting cannot help),
        :class:`MustWait` (it can), or return the member's max_runtime. A reservation of the
        member's own is used by this launch."""
        self.rebalance()
        entries = self.store.entries()
        runtime = self._decide(user, groups, resources, entries, fewer_gpus=fewer_gpus)
        mine = next((e for e in entries if e.user == user and e.server_name == server_name), None)
        if mine is not None and (mine.state == RESERVED or core.overlaps(mine.gpu_type, resources.gpu_type)):
            self.store.remove(mine.id)  # served: its reservation (or its wait) ends with this launch
            log.info("Queue: %s's entry %s served by a launch", user, mine.id)
        return runtime

    def _decide(self, user: str, groups, resources, entries: list[Entry], *, fewer_gpus: bool = False) -> int | None:
        """:meth:`admit` without its effects: the refusal a launch would get now, if any
        (``fewer_gpus``: the profile has a ``gpus`` option, so a refusal may suggest fewer)."""
        policy = self.policy()
        others = [e for e in entries if e.state == RESERVED and e.user != user]
        active = self.usage.active()
        queueable = bool(resources.gpus) and policy.queue.enabled and self.capacity is not None
        try:
            runtime = quotas.admit(policy, user, groups, resources, active + [e.as_active() for e in others],
                                   self._gpu_hours(policy), fewer_gpus=fewer_gpus)
        except quotas.PoolFull as e:
            if queueable:
                raise MustWait(str(e), 429, resources.gpu_type) from None
            raise
        counts = self._free(resources.gpu_type, active) if resources.gpus else None
        if counts is None:
            return runtime
        free, total = counts
        if total < resources.gpus:
            raise more_than_there_are(total, resources)
        held = core.reserved_gpus(entries, resources.gpu_type, besides=user)
        if free - held < resources.gpus:
            taken = "all reserved for members in the queue" if free >= resources.gpus else "in use"
            message = (f"No {(resources.gpu_type or 'GPU').upper()} is free for you now: you asked for "
                       f"{resources.gpus}, {max(free - held, 0)} of {total} are free (the others are {taken}).")
            if queueable:
                raise MustWait(message, 409, resources.gpu_type)
            raise quotas.QuotaExceeded(message + " Try again when a server stops.")
        return runtime

    # ------------------------------------------------------------ joining and leaving

    def join(self, user: str, groups, resources, *, server_name: str, profile: str, user_options: dict,
             auto_start: bool = False) -> Entry:
        """Put a launch in line (or raise ``QuotaExceeded`` when waiting cannot help, or
        :class:`AlreadyQueued`). One that could start now gets its reservation at once."""
        policy = self.policy()
        if not resources.gpus:
            raise quotas.QuotaExceeded("Only GPU launches wait in line: a CPU profile starts at once or not at all.")
        if not policy.queue.enabled or self.capacity is None:
            raise quotas.QuotaExceeded("The GPU queue is turned off here (quotas.queue.enabled).")
        try:
            self._decide(user, groups, resources, self.store.entries())
        except MustWait:
            pass
        entry = self.store.add(user=user, groups=groups, server_name=server_name, profile=profile,
                               user_options=user_options, gpus=resources.gpus, gpu_type=resources.gpu_type,
                               auto_start=auto_start)
        log.info("Queue: %s joined for %s× %s (%s)", user, resources.gpus, resources.gpu_type or "GPU", profile)
        self.rebalance()
        return entry

    def leave(self, entry_id: int) -> bool:
        gone = self.store.remove(entry_id)
        if gone:
            self.rebalance()
        return gone

    def entry_of(self, user: str) -> Entry | None:
        return next((e for e in self.store.entries() if e.user == user), None)

    # ------------------------------------------------------------ reservations

    def _fits(self, policy: QuotaPolicy, active: list[ActiveServer]):
        hours = self._gpu_hours(policy)

        def fits(entry: Entry, reservations: list[Entry]) -> bool:
            held = [r.as_active() for r in reservations if r.user != entry.user]
            try:
                quotas.admit(policy, entry.user, entry.groups, Wanted(entry.gpus, entry.gpu_type), active + held, hours)
            except quotas.QuotaExceeded:
                return False
            counts = self._free(entry.gpu_type, active)
            if counts is None:
                return False
            free = counts[0] - sum(r.gpus for r in reservations if core.overlaps(r.gpu_type, entry.gpu_type))
            return free >= entry.gpus

        return fits

    def rebalance(self, now: float | None = None) -> list[Entry]:
        """Let lapsed reservations go and offer reservations to whoever fits now."""
        now = time.time() if now is None else now
        entries = self.store.entries()
        for gone in core.lapsed(entries, now):
            self.store.remove(gone.id)
            log.info("Queue: %s's reservation of %s× %s lapsed", gone.user, gone.gpus, gone.gpu_type or "GPU")
        entries = [e for e in entries if e not in core.lapsed(entries, now)]
        if not any(e.state == core.WAITING for e in entries) or self.capacity is None:
            return []
        policy = self.policy()
        made = core.offers(entries, self._used(entries, policy), policy.queue,
                           self._fits(policy, self.usage.active()), now)
        for entry in made:
            self.store.reserve(entry.id, entry.reserved_until, now)
            log.info("Queue: %s× %s reserved for %s until %s", entry.gpus, entry.gpu_type or "GPU", entry.user,
                     time.strftime("%H:%M:%S", time.localtime(entry.reserved_until)))
            self._tell(entry)
        return made

    def _tell(self, entry: Entry) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a command line): nobody to tell
            return
        for listener in self.reservation_listeners:
            loop.create_task(self._safely(listener, entry))

    @staticmethod
    async def _safely(listener, entry):
        try:
            await listener(entry)
        except Exception:
            log.exception("Queue: telling of %s's reservation failed", entry.user)

    # ------------------------------------------------------------ what people see

    def _typical(self, now: float) -> dict[str, float]:
        """The median length of recent servers per GPU type (read once a minute)."""
        at, lengths = self._history
        if now - at < HISTORY_TTL:
            return lengths
        by_type: dict[str, list[float]] = {}
        for row in self.usage.rows(since=now - HISTORY_DAYS * 86400):
            if row.gpus and row.stopped_at is not None:
                by_type.setdefault(row.gpu_type or "", []).append(row.stopped_at - row.started_at)
        lengths = {t: core.typical_length(v) for t, v in by_type.items()}
        self._history = (now, lengths)
        return lengths

    def _places_and_waits(self, entries: list[Entry], now: float) -> tuple[dict, dict]:
        """Each entry's place in its line and estimated wait in seconds (reservations: 0)."""
        policy = self.policy()
        used = self._used(entries, policy)
        waits: dict[int, float | None] = {}
        active = self.usage.active()
        running_by_usage = self.usage.running_since()
        typical_by_type = self._typical(now)
        for line in sorted({e.line for e in entries}):
            gpu_type = line or None
            waiting = [e for e in core.ordered(entries, used, policy.queue) if e.line == line]
            counts = self._free(gpu_type, active) or (0, 0)
            free = counts[0] - core.reserved_gpus(entries, gpu_type)
            running = [core.Running(s.gpus, started, self.runtimes.get(uid))
                       for uid, (s, started) in running_by_usage.items()
                       if s.gpus and core.overlaps(s.gpu_type, gpu_type)]
            typical = typical_by_type.get(line, core.DEFAULT_SESSION)
            estimates = core.estimate_waits([e.gpus for e in waiting], max(free, 0), running, typical, now)
            waits.update({e.id: w for e, w in zip(waiting, estimates)})
            waits.update({e.id: 0.0 for e in entries if e.state == RESERVED and e.line == line})
        return core.places(entries, used, policy.queue), waits

    def view(self, now: float | None = None) -> list[dict]:
        """Every entry with its place and estimated wait (seconds), in serving order per line."""
        entries = self.store.entries()
        places, waits = self._places_and_waits(entries, time.time() if now is None else now)
        rows = []
        for e in sorted(entries, key=lambda e: (e.line, e.state != RESERVED, places.get(e.id, 0))):
            rows.append({
                "id": e.id, "user": e.user, "server_name": e.server_name, "profile": e.profile,
                "gpus": e.gpus, "gpu_type": e.gpu_type, "state": e.state, "place": places.get(e.id),
                "estimated_wait": waits.get(e.id), "estimate": core.describe_wait(waits.get(e.id)),
                "joined_at": e.joined_at, "reserved_until": e.reserved_until, "auto_start": e.auto_start,
                "user_options": e.user_options or {},
            })
        return rows

    def preview(self, user: str, groups, resources) -> dict | None:
        """For the spawn form: None when the launch could start now; else why not, whether
        it may wait, and the place and estimated wait it would get if it joined now."""
        entries = self.store.entries()
        try:
            self._decide(user, groups, resources, entries)
        except MustWait as e:
            now = time.time()
            ghost = Entry(id=-1, user=user, groups=tuple(groups), gpus=resources.gpus,
                          gpu_type=resources.gpu_type, joined_at=now)
            places, waits = self._places_and_waits([x for x in entries if x.user != user] + [ghost], now)
            wait = waits.get(ghost.id)
            return {"queueable": True, "reason": str(e), "place": places.get(ghost.id), "estimated_wait": wait,
                    "estimate": core.describe_wait(wait)}
        except quotas.QuotaExceeded as e:
            return {"queueable": False, "reason": str(e)}
        return None


__all__ = ["GPUQueue", "MustWait", "MoreThanThereAre", "AlreadyQueued", "AllocatorCapacity", "ClusterCapacity"]
