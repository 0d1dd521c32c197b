"""The GPU queue's decisions, as pure functions: who goes first, who gets a reservation
now, and how long a member may expect to wait. The hub (``manager.py``) gathers the
inputs (entries, GPU-hours used, free GPUs, running servers) and applies the results.

Lines: members wait in one line per GPU type (a profile without a type waits for any
GPU). Within a line the order is, by default, *fair share*: the member whose groups have
the highest ``quotas.queue.priority`` first, then the one with fewer GPU-hours used this
budget period, ties by arrival. With ``order: arrival`` it is first come, first served
(priorities still apply).

Reservations: whenever GPUs may have freed up, the waiting entries are visited in order
and each one whose launch now fits (free GPUs of its type after the reservations already
held, and the member's and groups' quotas with those reservations counted as running)
is offered a reservation. A later entry that fits may thus go before an earlier one
that does not (a 1-GPU request is served from one free GPU while a 4-GPU request keeps
waiting): no GPU stays idle while someone in line could use it.
"""

from __future__ import annotations

import heapq
import statistics
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from ..quotas import ActiveServer, QueueSettings

WAITING, RESERVED = "waiting", "reserved"
# the length assumed for a server when there is no history yet
DEFAULT_SESSION = 2 * 3600.0
HISTORY = 50  # closed servers of a GPU type the typical length is taken from


@dataclass(frozen=True)
class Entry:
    """A member's launch waiting in line, or holding a reservation."""

    id: int
    user: str
    groups: tuple
    gpus: int
    gpu_type: str | None
    joined_at: float
    state: str = WAITING
    reserved_until: float | None = None
    server_name: str = ""
    profile: str = ""
    auto_start: bool = False
    user_options: dict | None = None

    @property
    def line(self) -> str:
        return self.gpu_type or ""

    def as_active(self) -> ActiveServer:
        """A reservation counts toward quotas and pools as a running server would."""
        return ActiveServer(user=self.user, groups=tuple(self.groups), gpus=self.gpus, gpu_type=self.gpu_type)


def priority(entry: Entry, settings: QueueSettings) -> int:
    return max((settings.priority.get(g, 0) for g in entry.groups), default=0)


def sort_key(entry: Entry, used_hours: dict, settings: QueueSettings) -> tuple:
    share = used_hours.get(entry.user, 0.0) if settings.order == "fair_share" else 0.0
    return (-priority(entry, settings), round(share, 6), entry.joined_at, entry.id)


def ordered(entries: Iterable[Entry], used_hours: dict, settings: QueueSettings) -> list[Entry]:
    """The waiting entries (all lines) in the order they are served."""
    waiting = [e for e in entries if e.state == WAITING]
    return sorted(waiting, key=lambda e: sort_key(e, used_hours, settings))


def places(entries: Iterable[Entry], used_hours: dict, settings: QueueSettings) -> dict[int, int]:
    """Entry id -> place in its line (1, 2, ... without gaps); reserved entries have none."""
    out, counters = {}, {}
    for e in ordered(entries, used_hours, settings):
        counters[e.line] = counters.get(e.line, 0) + 1
        out[e.id] = counters[e.line]
    return out


def overlaps(a: str | None, b: str | None) -> bool:
    """Whether launches of GPU types ``a`` and ``b`` compete for the same devices
    (no type: any GPU)."""
    return not a or not b or a == b or a.startswith(b + "-") or b.startswith(a + "-")


def reserved_gpus(entries: Iterable[Entry], gpu_type: str | None, *, besides: str | None = None) -> int:
    """GPUs held by reservations that a launch of ``gpu_type`` must leave alone
    (``besides``: a member whose own reservation it may use)."""
    return sum(e.gpus for e in entries
               if e.state == RESERVED and e.user != besides and overlaps(e.gpu_type, gpu_type))


def lapsed(entries: Iterable[Entry], now: float) -> list[Entry]:
    """Reservations whose claim time is over."""
    return [e for e in entries if e.state == RESERVED and e.reserved_until is not None and e.reserved_until <= now]


def offers(entries: list[Entry], used_hours: dict, settings: QueueSettings,
           fits: Callable[[Entry, list[Entry]], bool], now: float) -> list[Entry]:
    """The waiting entries to reserve now, as reserved entries (``reserved_until`` set).

    ``fits(entry, reservations)`` says whether the entry's launch would be admitted with
    ``reservations`` (those held plus those offered before it) holding their GPUs."""
    held = [e for e in entries if e.state == RESERVED]
    made: list[Entry] = []
    for entry in ordered(entries, used_hours, settings):
        if fits(entry, held + made):
            made.append(replace(entry, state=RESERVED, reserved_until=now + settings.claim_timeout))
    return made


# --------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Running:
    """A server holding GPUs of a line, as the estimate sees it."""

    gpus: int
    started_at: float
    max_runtime: float | None = None  # seconds, when the server has a run-time limit


def typical_length(lengths: Iterable[float]) -> float:
    """The median length of recent servers of a GPU type (:data:`DEFAULT_SESSION` without any)."""
    lengths = [x for x in lengths if x > 0][-HISTORY:]
    return statistics.median(lengths) if lengths else DEFAULT_SESSION


def expected_end(server: Running, typical: float, now: float) -> float:
    """When a running server is expected to give its GPUs back: after the typical length,
    never after its run-time limit; one already past the typical length is expected to
    end halfway to its limit (a quarter of the typical length without one)."""
    limit = server.started_at + server.max_runtime if server.max_runtime else None
    end = server.started_at + typical
    if limit is not None:
        end = min(end, limit)
    if end > now:
        return end
    if limit is not None and limit > now:
        return now + (limit - now) / 2
    return now + typical / 4


def estimate_waits(ahead: list[int], free: int, running: list[Running], typical: float,
                   now: float) -> list[float | None]:
    """Estimated seconds until each of a line's launches can start, in the line's order.

    ``ahead``: the GPUs each launch needs, the line's reservations first (they are taken
    at once), then the waiting entries in order; ``free``: GPUs of the type free now.
    Each launch takes the GPUs that come free earliest and holds them for the typical
    length. A launch needing more GPUs than there are at all gets None."""
    released = [now] * max(free, 0)
    for server in running:
        released += [expected_end(server, typical, now)] * server.gpus
    total = len(released)
    heapq.heapify(released)
    waits: list[float | None] = []
    for gpus in ahead:
        if gpus > total or gpus <= 0:
            waits.append(None if gpus > total else 0.0)
            continue
        taken = [heapq.heappop(released) for _ in range(gpus)]
        start = max(taken)
        waits.append(max(start - now, 0.0))
        for _ in range(gpus):
            heapq.heappush(released, start + typical)
    return waits


def describe_wait(seconds: float | None) -> str:
    """``about 40 min``, ``about 2 h 10 min``, ``any moment now``; None: ``unknown``."""
    if seconds is None:
        return "unknown"
    minutes = int(round(seconds / 60.0))
    if minutes < 1:
        return "any moment now"
    if minutes < 60:
        return f"about {minutes} min"
    hours, rest = divmod(minutes, 60)
    rest = int(round(rest / 10.0) * 10) % 60
    return f"about {hours} h {rest} min" if rest else f"about {hours} h"
