"""Quota policy: who may hold how many GPUs and servers, for how long, and how many
GPU-hours per period. Pure decisions: the caller supplies current usage.

Written in the profile files under a top-level ``quotas:`` key (any file of the
folder; each group or user defined once)::

    quotas:
      period: month                     # GPU-hour budgets reset monthly (or: week)
      groups:
        students:
          group:  {max_gpus: 4, gpu_hours: 1000}       # the whole group together
          member: {max_gpus: 1, max_servers: 1, max_runtime: 8h, gpu_hours: 50}  # each member
      users:
        alice: {max_gpus: 8}            # a member's own limits, over those of their groups
      members: {max_servers: 2}         # members of no group listed above
      queue:                            # members waiting for GPUs (hub_config.queue)
        order: fair_share               # or: arrival
        claim_timeout: 10m              # how long a reservation is held for its member
        priority: {gpu-residents: 1}    # higher goes first; default 0

How rights combine, for a member in several groups: each field of the member
limits is the most generous among their listed groups (a group that leaves a
field out leaves it unlimited); a ``users`` entry replaces the fields it sets.
A server counts toward the pool of every group its member belonged to at launch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone

from . import units

LIMIT_FIELDS = ("max_gpus", "max_gpus_by_type", "max_servers", "max_runtime", "gpu_hours", "extend_by",
                "max_extensions")


class QuotaExceeded(Exception):
    """A launch the policy does not allow now; the message says why and what to do."""


class PoolFull(QuotaExceeded):
    """Refused only because a group's pool is full: waiting in the queue can help."""


@dataclass(frozen=True)
class QueueSettings:
    """How members wait for GPUs (``quotas.queue``; see ``hub_config.queue.core``)."""

    enabled: bool = True
    order: str = "fair_share"  # fair_share: fewer GPU-hours this period first; arrival: first come
    claim_timeout: int = 600  # seconds a reservation is held
    priority: dict = field(default_factory=dict)  # group -> int, higher first


def parse_queue(raw: dict) -> QueueSettings:
    return QueueSettings(
        enabled=raw.get("enabled", True),
        order=raw.get("order", "fair_share"),
        claim_timeout=units.parse_duration(raw["claim_timeout"]) if "claim_timeout" in raw else 600,
        priority=dict(raw.get("priority", {})),
    )


@dataclass(frozen=True)
class Limits:
    max_gpus: int | None = None
    max_gpus_by_type: dict = field(default_factory=dict)
    max_servers: int | None = None
    max_runtime: int | None = None  # seconds
    gpu_hours: float | None = None
    extend_by: int | None = None  # seconds one extension of a running server adds (None: no extensions)
    max_extensions: int | None = None  # extensions per server (None with extend_by: 1)

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, {}) for f in fields(self))

    def as_dict(self) -> dict:
        out = {f: getattr(self, f) for f in LIMIT_FIELDS if getattr(self, f) not in (None, {})}
        for key in ("max_runtime", "extend_by"):
            if key in out:
                out[key] = units.format_duration(out[key])
        return out


UNLIMITED = Limits()


def parse_limits(raw: dict) -> Limits:
    """Limits from a validated policy entry (units already checked by the schema)."""
    return Limits(
        max_gpus=raw.get("max_gpus"),
        max_gpus_by_type=dict(raw.get("max_gpus_by_type", {})),
        max_servers=raw.get("max_servers"),
        max_runtime=units.parse_duration(raw["max_runtime"]) if "max_runtime" in raw else None,
        gpu_hours=raw.get("gpu_hours"),
        extend_by=units.parse_duration(raw["extend_by"]) if "extend_by" in raw else None,
        max_extensions=raw.get("max_extensions"),
    )


def most_generous(limits: list[Limits]) -> Limits:
    """Per field, the loosest of ``limits``: unlimited if any leaves the field unset."""
    if not limits:
        return UNLIMITED

    def loosest(values):
        return None if any(v is None for v in values) else max(values)

    types = set().union(*(lim.max_gpus_by_type for lim in limits))
    by_type = {}
    for t in types:
        if all(t in lim.max_gpus_by_type for lim in limits):
            by_type[t] = max(lim.max_gpus_by_type[t] for lim in limits)
    return Limits(
        max_gpus=loosest([lim.max_gpus for lim in limits]),
        max_gpus_by_type=by_type,
        max_servers=loosest([lim.max_servers for lim in limits]),
        max_runtime=loosest([lim.max_runtime for lim in limits]),
        gpu_hours=loosest([lim.gpu_hours for lim in limits]),
        # extensions: a group that allows none leaves the others' (unset means "none", not "unlimited")
        extend_by=max((lim.extend_by for lim in limits if lim.extend_by), default=None),
        max_extensions=max((lim.max_extensions for lim in limits if lim.max_extensions is not None), default=None),
    )


def period_start(period: str, now: float | None = None) -> datetime:
    """Start of the budget period holding ``now`` (UTC): the 1st of the month, or Monday."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(period: str, start: datetime) -> datetime:
    if period == "week":
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class ActiveServer:
    """A running (or starting) server as the usage records know it."""

    user: str
    groups: tuple
    gpus: int
    gpu_type: str | None


@dataclass(frozen=True)
class QuotaPolicy:
    period: str = "month"
    group_pools: dict = field(default_factory=dict)  # group -> Limits of the whole group
    group_members: dict = field(default_factory=dict)  # group -> Limits of each member
    users: dict = field(default_factory=dict)  # user -> Limits
    members: Limits = UNLIMITED  # members of no listed group
    queue: QueueSettings = QueueSettings()

    def member_limits(self, user: str, groups) -> Limits:
        listed = [self.group_members[g] for g in sorted(groups) if g in self.group_members]
        base = most_generous(listed) if listed else self.members
        own = self.users.get(user)
        if own is None:
            return base
        changes = {f: getattr(own, f) for f in LIMIT_FIELDS if getattr(own, f) not in (None, {})}
        return replace(base, **changes)

    def pools_of(self, groups) -> dict:
        return {g: self.group_pools[g] for g in sorted(groups) if g in self.group_pools}

    @property
    def is_empty(self) -> bool:
        return not (self.group_pools or self.group_members or self.users) and self.members.is_empty()


EMPTY_POLICY = QuotaPolicy()


def _gpus(servers, gpu_type=None):
    return sum(s.gpus for s in servers if gpu_type is None or s.gpu_type == gpu_type)


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"


def gpu_advice(in_use: int, asked: int, fewer_gpus: bool = False) -> str:
    """What a member refused for their GPU limit can do, as fits their launch: stop a GPU
    server only when they run one; "choose fewer GPUs" only when the profile lets them choose
    (``fewer_gpus``: it has a ``gpus`` option); a profile with fewer GPUs only when they asked
    for more than one; a CPU profile always."""
    choose = ("choose fewer GPUs or a CPU profile" if fewer_gpus
              else "choose a profile with fewer GPUs or a CPU profile" if asked > 1
              else "choose a CPU profile")
    return f"stop a GPU server{', or' if ' or ' in choose else ' or'} {choose}" if in_use else choose


def _over_gpu_limit(in_use: int, cap: int, asked: int, unit: str, fewer_gpus: bool) -> str:
    """The refusal of a launch over the member's own GPU limit (of all GPUs, or of a type)."""
    if cap == 0:
        return f"You may not use {unit}s: choose {'a CPU' if unit == 'GPU' else 'another'} profile."
    advice = gpu_advice(in_use, asked, fewer_gpus)
    if not in_use:
        return f"You may use at most {_count(cap, unit)} at a time and asked for {asked}: {advice}."
    return f"You may use at most {_count(cap, unit)} at a time, already use {in_use} and asked for {asked} more: {advice}."


def admit(policy: QuotaPolicy, user: str, groups, resources, active: list[ActiveServer], gpu_hours,
          *, fewer_gpus: bool = False) -> int | None:
    """Raise :class:`QuotaExceeded` unless a server with ``resources`` may start now.

    ``active`` are the servers running or starting (and GPUs reserved for others in the
    queue); ``gpu_hours(user=..., group=...)`` gives GPU-hours used in the current period.
    Returns the member's max_runtime. The member's own limits and the budgets are checked
    before the groups' pools, so that :class:`PoolFull` means waiting can help.
    ``fewer_gpus``: the launch's profile has a ``gpus`` option, so a refusal may say
    "choose fewer GPUs" (otherwise it says what fits a fixed profile).
    """
    groups = sorted(groups)
    limits = policy.member_limits(user, groups)
    mine = [s for s in active if s.user == user]
    gpus, kind = resources.gpus, resources.gpu_type
    unit = (kind or "GPU").upper()
    if limits.max_servers is not None and len(mine) + 1 > limits.max_servers:
        raise QuotaExceeded(
            f"You already run {len(mine)} of your {limits.max_servers} servers: stop one before starting another."
        )
    if gpus:
        if limits.max_gpus is not None and _gpus(mine) + gpus > limits.max_gpus:
            raise QuotaExceeded(_over_gpu_limit(_gpus(mine), limits.max_gpus, gpus, "GPU", fewer_gpus))
        cap = limits.max_gpus_by_type.get(kind) if kind else None
        if cap is not None and _gpus(mine, kind) + gpus > cap:
            raise QuotaExceeded(_over_gpu_limit(_gpus(mine, kind), cap, gpus, unit, fewer_gpus))
    if gpus:
        resets = period_end(policy.period, period_start(policy.period)).strftime("%Y-%m-%d")
        if limits.gpu_hours is not None:
            used = gpu_hours(user=user)
            if used >= limits.gpu_hours:
                raise QuotaExceeded(
                    f"You have used {used:.1f} of your {limits.gpu_hours:g} GPU-hours this {policy.period} "
                    f"(resets {resets}): choose a CPU profile until then."
                )
        for group, pool in policy.pools_of(groups).items():
            if pool.gpu_hours is not None:
                used = gpu_hours(group=group)
                if used >= pool.gpu_hours:
                    raise QuotaExceeded(
                        f"Group {group} has used {used:.1f} of its {pool.gpu_hours:g} GPU-hours this {policy.period} "
                        f"(resets {resets}): choose a CPU profile until then."
                    )
    for group, pool in policy.pools_of(groups).items():
        members = [s for s in active if group in s.groups]
        if pool.max_servers is not None and len(members) + 1 > pool.max_servers:
            raise PoolFull(
                f"Group {group} runs {len(members)} of {pool.max_servers} servers: try later."
            )
        if not gpus:
            continue
        if pool.max_gpus is not None and _gpus(members) + gpus > pool.max_gpus:
            raise PoolFull(
                f"Group {group} uses {_gpus(members)} of {pool.max_gpus} GPUs: choose a CPU profile or try later."
            )
        cap = pool.max_gpus_by_type.get(kind) if kind else None
        if cap is not None and _gpus(members, kind) + gpus > cap:
            raise PoolFull(
                f"Group {group} uses {_gpus(members, kind)} of {cap} {unit}s: choose a CPU profile or try later."
            )
    return limits.max_runtime


def effective_runtime(profile_limit: int | None, quota_limit: int | None) -> int | None:
    """The shorter of the profile's and the quota's run-time limits."""
    limits = [v for v in (profile_limit, quota_limit) if v]
    return min(limits) if limits else None


def summary(policy: QuotaPolicy, user: str, groups, active: list[ActiveServer], gpu_hours) -> list[str]:
    """What a member has left, one line each, for the spawn page."""
    limits = policy.member_limits(user, groups)
    mine = [s for s in active if s.user == user]
    lines = []
    if limits.max_gpus is not None:
        lines.append(f"Your GPUs: {_gpus(mine)} of {limits.max_gpus} in use")
    if limits.max_servers is not None:
        lines.append(f"Your servers: {len(mine)} of {limits.max_servers} running")
    if limits.gpu_hours is not None:
        left = max(limits.gpu_hours - gpu_hours(user=user), 0)
        lines.append(f"Your GPU-hours left this {policy.period}: {left:.1f} of {limits.gpu_hours:g}")
    if limits.max_runtime:
        lines.append(f"Servers stop after {units.format_duration(limits.max_runtime)}")
    for group, pool in policy.pools_of(groups).items():
        members = [s for s in active if group in s.groups]
        if pool.max_gpus is not None:
            lines.append(f"Group {group}: {_gpus(members)} of {pool.max_gpus} GPUs in use")
        if pool.gpu_hours is not None:
            left = max(pool.gpu_hours - gpu_hours(group=group), 0)
            lines.append(f"Group {group} GPU-hours left this {policy.period}: {left:.1f} of {pool.gpu_hours:g}")
    return lines
