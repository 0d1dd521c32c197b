"""Usage accounting: one row per server start, in a SQLAlchemy database (SQLite in the
data folder by default, PostgreSQL or any other by URL).

Rows are opened when a launch is admitted (before the server starts, so a
concurrent launch already sees it) and closed when the server stops. Times are
UTC epoch seconds, so GPU-hours are plain arithmetic in any database.

The hub is the only writer, so its store keeps the running servers in memory
and, per budget period, the GPU-hours of closed records per user and group
(read once from the database, then kept up to date as servers stop): a launch
decision reads no database at all once warm.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from .. import db
from ..quotas import ActiveServer
from .models import RuntimeExtension, ServerUsage, UsageGroup

MIGRATIONS = Path(__file__).parent / "migrations"



@dataclass(frozen=True)
class UsageRow:
    user: str
    server_name: str
    groups: tuple
    profile: str
    gpus: int
    gpu_type: str | None
    cpu: float
    memory: int
    started_at: float
    stopped_at: float | None
    gpu_util_mean: float | None = None  # 0-100, None: never sampled
    usage_id: int = 0


def _least(a, b):
    return case((a < b, a), else_=b)


def _greatest(a, b):
    return case((a > b, a), else_=b)


def _overlap_hours(weight, since: float, until: float):
    """SQL: ``weight`` × hours of a row inside [since, until) (a running row counts up to until)."""
    end = _least(func.coalesce(ServerUsage.stopped_at, until), until)
    return weight * (end - _greatest(ServerUsage.started_at, since)) / 3600.0


@dataclass
class _Running:
    server: ActiveServer
    started_at: float


class UsageStore:
    def __init__(self, url: str):
        self.engine = db.make_engine(url)
        db.upgrade(self.engine, MIGRATIONS, baseline_table="server_usage")
        self._running: dict[int, _Running] = self._read_running()
        self._period: float | None = None
        self._closed_hours: dict[tuple, float] = {}

    # ------------------------------------------------------------------ writes

    def open(self, user, server_name, groups, profile, gpus, gpu_type, cpu, memory, now=None) -> int:
        started = time.time() if now is None else now
        groups = tuple(sorted(set(groups)))
        with Session(self.engine) as s, s.begin():
            row = ServerUsage(
                user=user, server_name=server_name, profile=profile, gpus=gpus, gpu_type=gpu_type,
                cpu=cpu, memory=memory, started_at=started,
            )
            row.groups = [UsageGroup(name=g) for g in groups]
            s.add(row)
            s.flush()
            usage_id = row.id
        self._running[usage_id] = _Running(ActiveServer(user, groups, gpus, gpu_type), started)
        return usage_id

    def close(self, usage_id: int, now=None) -> None:
        stopped = time.time() if now is None else now
        with Session(self.engine) as s, s.begin():
            row = s.get(ServerUsage, usage_id)
            if row is None or row.stopped_at is not None:
                self._running.pop(usage_id, None)
                return
            row.stopped_at = stopped
        running = self._running.pop(usage_id, None)
        if running is not None and self._period is not None and running.server.gpus:
            hours = running.server.gpus * max(stopped - max(running.started_at, self._period), 0) / 3600
            for key in [("user", running.server.user)] + [("group", g) for g in running.server.groups]:
                self._closed_hours[key] = self._closed_hours.get(key, 0.0) + hours

    def add_gpu_sample(self, usage_id: int, utilisation: float) -> None:
        """One sample (0-100) of a running server's GPU utilisation, into its running mean."""
        with Session(self.engine) as s, s.begin():
            row = s.get(ServerUsage, usage_id)
            if row is None:
                return
            n = row.gpu_util_samples or 0
            row.gpu_util_mean = ((row.gpu_util_mean or 0.0) * n + utilisation) / (n + 1)
            row.gpu_util_samples = n + 1

    def record_extension(self, usage_id: int, user: str, seconds: int, new_limit: int, now: float | None = None) -> None:
        with Session(self.engine) as s, s.begin():
            s.add(RuntimeExtension(usage_id=usage_id, user=user, seconds=seconds, new_limit=new_limit,
                                   at=time.time() if now is None else now))

    def extensions(self, usage_id: int) -> list[RuntimeExtension]:
        with Session(self.engine) as s:
            rows = s.scalars(select(RuntimeExtension).where(RuntimeExtension.usage_id == usage_id)
                             .order_by(RuntimeExtension.id)).all()
            s.expunge_all()
            return list(rows)

    def discard(self, usage_id: int) -> None:
        """Forget a launch that never started a server."""
        with Session(self.engine) as s, s.begin():
            row = s.get(ServerUsage, usage_id)
            if row is not None:
                s.delete(row)
        self._running.pop(usage_id, None)

    # ------------------------------------------------------------------ reads

    def _read_running(self) -> dict[int, _Running]:
        query = (
            select(ServerUsage.id, ServerUsage.user, ServerUsage.gpus, ServerUsage.gpu_type, ServerUsage.started_at,
                   UsageGroup.name)
            .outerjoin(UsageGroup)
            .where(ServerUsage.stopped_at.is_(None))
        )
        found: dict[int, list] = {}
        with self.engine.connect() as conn:
            for usage_id, user, gpus, gpu_type, started, group in conn.execute(query):
                entry = found.setdefault(usage_id, [user, gpus, gpu_type, started, []])
                if group is not None:
                    entry[4].append(group)
        return {
            i: _Running(ActiveServer(user, tuple(sorted(groups)), gpus, gpu_type), started)
            for i, (user, gpus, gpu_type, started, groups) in found.items()
        }

    def active(self, fresh: bool = False) -> list[ActiveServer]:
        """Servers running now. ``fresh`` reads the database (for processes other than the hub)."""
        running = self._read_running() if fresh else self._running
        return [r.server for r in running.values()]

    def running_since(self) -> dict[int, tuple[ActiveServer, float]]:
        """Servers running now, by usage record, with when each started (queue estimates)."""
        return {i: (r.server, r.started_at) for i, r in self._running.items()}

    def period_gpu_hours(self, since: float, *, user: str | None = None, group: str | None = None,
                         now: float | None = None) -> float:
        """GPU-hours since ``since`` (a period start) of one user or group: what budgets are checked against."""
        now = time.time() if now is None else now
        if since != self._period:
            self._period, self._closed_hours = since, self._read_closed_hours(since)
        key = ("user", user) if user is not None else ("group", group)
        live = sum(
            r.server.gpus * max(now - max(r.started_at, since), 0) / 3600
            for r in self._running.values()
            if r.server.gpus and (r.server.user == user if user is not None else group in r.server.groups)
        )
        return self._closed_hours.get(key, 0.0) + live

    def _read_closed_hours(self, since: float) -> dict[tuple, float]:
        """GPU-hours since ``since`` of closed records, for every user and every group (two queries)."""
        hours = func.sum(ServerUsage.gpus * (ServerUsage.stopped_at - _greatest(ServerUsage.started_at, since)) / 3600.0)
        closed = (ServerUsage.gpus > 0, ServerUsage.stopped_at > since)
        out: dict[tuple, float] = {}
        with self.engine.connect() as conn:
            for user, total in conn.execute(select(ServerUsage.user, hours).where(*closed).group_by(ServerUsage.user)):
                out[("user", user)] = float(total)
            by_group = select(UsageGroup.name, hours).join(ServerUsage).where(*closed).group_by(UsageGroup.name)
            for group, total in conn.execute(by_group):
                out[("group", group)] = float(total)
        return out

    def gpu_hours(self, *, since: float, until: float | None = None, user: str | None = None,
                  group: str | None = None) -> float:
        """GPU-hours of GPU servers inside [since, until), of one user or one group (or all)."""
        until = time.time() if until is None else until
        hours = func.coalesce(func.sum(_overlap_hours(ServerUsage.gpus, since, until)), 0.0)
        query = select(hours).where(
            ServerUsage.gpus > 0,
            ServerUsage.started_at < until,
            (ServerUsage.stopped_at.is_(None)) | (ServerUsage.stopped_at > since),
        )
        if user is not None:
            query = query.where(ServerUsage.user == user)
        if group is not None:
            query = query.join(UsageGroup).where(UsageGroup.name == group)
        with self.engine.connect() as conn:
            return float(conn.execute(query).scalar_one())

    def rows(self, since: float | None = None, until: float | None = None) -> list[UsageRow]:
        """Every record overlapping [since, until)."""
        query = select(ServerUsage).order_by(ServerUsage.started_at)
        if since is not None:
            query = query.where((ServerUsage.stopped_at.is_(None)) | (ServerUsage.stopped_at > since))
        if until is not None:
            query = query.where(ServerUsage.started_at < until)
        with Session(self.engine) as s:
            return [
                UsageRow(r.user, r.server_name, r.group_names, r.profile, r.gpus, r.gpu_type, r.cpu, r.memory,
                         r.started_at, r.stopped_at, r.gpu_util_mean, r.id)
                for r in s.scalars(query).all()
            ]


    def rows_of(self, user: str, since: float, until: float) -> list[UsageRow]:
        """The records of ``user`` overlapping [since, until), oldest first (one query, by the
        table's (user, started_at) index)."""
        query = (select(ServerUsage)
                 .where(ServerUsage.user == user, ServerUsage.started_at < until,
                        (ServerUsage.stopped_at.is_(None)) | (ServerUsage.stopped_at > since))
                 .order_by(ServerUsage.started_at, ServerUsage.id))
        with Session(self.engine) as s:
            return [UsageRow(r.user, r.server_name, r.group_names, r.profile, r.gpus, r.gpu_type, r.cpu, r.memory,
                             r.started_at, r.stopped_at, r.gpu_util_mean, r.id) for r in s.scalars(query).all()]

    def latest_groups(self, user: str) -> tuple:
        """The groups ``user`` belonged to at their latest launch (none without records)."""
        query = (select(ServerUsage).where(ServerUsage.user == user)
                 .order_by(ServerUsage.started_at.desc(), ServerUsage.id.desc()).limit(1))
        with Session(self.engine) as s:
            row = s.scalars(query).first()
            return row.group_names if row is not None else ()


_stores: dict[str, UsageStore] = {}


def usage_store(url: str) -> UsageStore:
    """One store per database URL for the whole hub process."""
    if url not in _stores:
        _stores[url] = UsageStore(url)
    return _stores[url]


# ---------------------------------------------------------------------- reports

REPORT_KEYS = {"user": lambda r: [r.user], "group": lambda r: list(r.groups) or ["(no group)"], "profile": lambda r: [r.profile]}


def report(rows: list[UsageRow], by: str, since: float, until: float) -> list[dict]:
    """Servers, GPU-, CPU- and memory-hours per user, group or profile inside [since, until).

    A server counts for each group its member belonged to at launch, so group
    totals can add up to more than the whole.
    """
    totals: dict[str, dict] = {}
    for r in rows:
        end = min(r.stopped_at if r.stopped_at is not None else until, until)
        hours = max(end - max(r.started_at, since), 0) / 3600
        for key in REPORT_KEYS[by](r):
            t = totals.setdefault(key, {by: key, "servers": 0, "gpu_hours": 0.0, "cpu_hours": 0.0, "memory_gib_hours": 0.0})
            t["servers"] += 1
            t["gpu_hours"] += r.gpus * hours
            t["cpu_hours"] += r.cpu * hours
            t["memory_gib_hours"] += r.memory / 1024**3 * hours
    out = sorted(totals.values(), key=lambda t: (-t["gpu_hours"], t[by]))
    for t in out:
        for k in ("gpu_hours", "cpu_hours", "memory_gib_hours"):
            t[k] = round(t[k], 3)
    return out
