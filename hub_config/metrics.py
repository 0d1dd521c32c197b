"""The studio's Prometheus metrics, served with JupyterHub's own at ``/hub/metrics``
(prometheus_client's default registry in the hub process; a token with ``read:metrics``
reads them). docs/metrics.md lists every metric.

Most are computed when Prometheus scrapes, from what the hub holds anyway
(:class:`StudioCollector`): the usage store's in-memory view of running servers and of
the period's GPU-hours, the GPU allocator of local mode, two small queries on the datasets
registry (written by the catalogue service and the ``aistudio`` command, in other
processes), and the last answers of the hub's services (checked in the background, never
during a scrape). What only happens inside a launch (refusals, spawn durations, dataset
mounts) is counted as the spawners tell it (``spawners.mixin.listeners``).

:func:`install` registers them once per process; ``configurer.gather()`` calls it when the
hub starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import case, func, select

from . import config as studio_config
from . import quotas
from .datasets.models import AuditEvent, Dataset
from .datasets.store import dataset_store
from .spawners import mixin
from .usage.store import usage_store

log = logging.getLogger("aistudio.metrics")

NO_GROUP = "(no group)"  # a server whose member was in no group at launch
ANY_TYPE = "any"  # a GPU profile that names no GPU type
UNKNOWN_PROFILE = "(unknown)"  # a refusal before a profile of the set was named
SPAWN_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
# a passed scan, as DatasetStore.record_scan writes its audit detail (json.dumps, sorted keys)
PASSED_SCAN = '%"passed": true%'


# name -> (kind, help, labels) of what StudioCollector computes at scrape time
COMPUTED = {
    "aistudio_gpus_held": (
        "gauge", ("GPUs held by running and starting servers, by the profile's GPU type and the member's group "
                  "(a server counts for every group its member had at launch)."), ["gpu_type", "group"]),
    "aistudio_gpus_free": ("gauge", "Free GPUs of this machine by device type (local mode).", ["gpu_type"]),
    "aistudio_gpus_devices": ("gauge", "GPU devices of this machine by type (local mode).", ["gpu_type"]),
    "aistudio_group_gpu_hours": (
        "gauge", "GPU-hours used by each group in the current quota period (closed and running servers).",
        ["group", "period"]),
    "aistudio_datasets": ("gauge", "Datasets of the registry by status and by the result of their last scan.",
                          ["status", "scan_status"]),
    "aistudio_dataset_scans": ("counter", "De-identification scans recorded in the registry, by result.", ["result"]),
    "aistudio_queue_entries": (
        "gauge", "Launches in the GPU queue by GPU type and state (waiting, reserved).", ["gpu_type", "state"]),
    "aistudio_service_up": (
        "gauge", "1 when the hub service's URL answered its last check (every 30 s), 0 when it did not.", ["service"]),
}


def _family(name):
    kind, documentation, labels = COMPUTED[name]
    return (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, documentation, labels=labels)


# --------------------------------------------------------------------------- what the hub holds


@dataclass
class HubState:
    """Where the collector reads the hub's state: the same stores and allocator the spawners use."""

    usage_url: str
    profiles_dir: str
    datasets_url: str | None = None
    gpus: tuple | None = None  # (discovery, inventory) in local mode
    services: Callable[[], dict] = field(default=dict)

    @classmethod
    def from_config(cls, config: dict) -> HubState:
        local = config["mode"] == "local"
        return cls(
            usage_url=studio_config.db_url(config, "usage"),
            profiles_dir=config["profiles_dir"],
            datasets_url=studio_config.db_url(config, "datasets") if config["datasets"]["enabled"] else None,
            gpus=(config["gpus"]["discovery"], config["gpus"]["inventory"]) if local else None,
            services=hub_services,
        )

    def usage(self):
        return usage_store(self.usage_url)

    def quota_policy(self) -> quotas.QuotaPolicy:
        return mixin.profile_store(self.profiles_dir, log).current().quotas

    def allocator(self):
        if self.gpus is None:
            return None
        from .spawners.local import gpu_allocator  # local mode only: the spawner's own allocator

        return gpu_allocator(self.gpus[0], self.gpus[1], log)

    def datasets(self):
        return dataset_store(self.datasets_url) if self.datasets_url else None


def hub_services() -> dict[str, str]:
    """Every service of the running hub with a URL (``JupyterHub.services``), by name."""
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return {}
    return {s["name"]: s["url"] for s in JupyterHub.instance().services if s.get("name") and s.get("url")}


# --------------------------------------------------------------------------- service health


class ServiceHealth:
    """Whether each service answers, checked in the background at most every ``every`` seconds:
    a scrape reads the last answers and, when they are old, starts the next check."""

    def __init__(self, services: Callable[[], dict], every: float = 30.0, timeout: float = 3.0):
        self.services = services
        self.every = every
        self.timeout = timeout
        self.up: dict[str, int] = {}
        self._checked = float("-inf")
        self._task: asyncio.Task | None = None

    def current(self) -> dict[str, int]:
        if (self._task is None or self._task.done()) and time.monotonic() - self._checked >= self.every:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop in this thread: nothing to check with
                loop = None
            if loop is not None:
                self._task = loop.create_task(self.check())
        return dict(self.up)

    async def check(self) -> dict[str, int]:
        from tornado.httpclient import AsyncHTTPClient

        services = self.services()
        client = AsyncHTTPClient()

        async def answers(url: str) -> int:
            try:
                r = await client.fetch(url, raise_error=False, follow_redirects=False,
                                       connect_timeout=self.timeout, request_timeout=self.timeout)
            except Exception:  # refused, timed out, unresolvable
                return 0
            return int(r.code < 500)

        results = await asyncio.gather(*(answers(url) for url in services.values()))
        self.up = dict(zip(services, results))
        self._checked = time.monotonic()
        return self.up


# --------------------------------------------------------------------------- the collector


class StudioCollector:
    """The metrics computed from the hub's state when Prometheus scrapes. Each part is read
    on its own: one that fails (a database away) is left out of that scrape and logged."""

    def __init__(self, state: HubState, health: ServiceHealth | None = None):
        self.state = state
        self.health = health or ServiceHealth(state.services)
        self._held_seen: set[tuple] = set()

    def describe(self):
        return [_family(name) for name in COMPUTED]

    def collect(self):
        for part in (self._gpus, self._gpu_hours, self._datasets, self._queue, self._services):
            try:
                families = list(part())
            except Exception as e:
                log.warning("metrics: %s left out of this scrape: %s", part.__name__.strip("_"), e)
                continue
            yield from families

    def _gpus(self):
        held: dict[tuple, int] = {}
        for server in self.state.usage().active():
            if server.gpus:
                for group in server.groups or (NO_GROUP,):
                    key = (server.gpu_type or ANY_TYPE, group)
                    held[key] = held.get(key, 0) + server.gpus
        self._held_seen |= set(held)
        family = _family("aistudio_gpus_held")
        for key in sorted(self._held_seen):  # 0 once a group's servers stopped, not a gap
            family.add_metric(list(key), held.get(key, 0))
        yield family
        allocator = self.state.allocator()
        if allocator is not None:
            free, devices = _family("aistudio_gpus_free"), _family("aistudio_gpus_devices")
            for gpu_type, (n_free, n_total) in sorted(allocator.summary().items()):
                free.add_metric([gpu_type], n_free)
                devices.add_metric([gpu_type], n_total)
            yield free
            yield devices

    def _queue(self):
        from .queue.hub import installed

        queue = installed()
        if queue is None:
            return
        counts: dict[tuple, int] = {}
        for entry in queue.store.entries():
            key = (entry.gpu_type or ANY_TYPE, entry.state)
            counts[key] = counts.get(key, 0) + 1
        self._queue_seen = getattr(self, "_queue_seen", set()) | set(counts)
        family = _family("aistudio_queue_entries")
        for key in sorted(self._queue_seen):  # 0 once a line emptied, not a gap
            family.add_metric(list(key), counts.get(key, 0))
        yield family

    def _gpu_hours(self):
        store, policy = self.state.usage(), self.state.quota_policy()
        since = quotas.period_start(policy.period).timestamp()
        store.period_gpu_hours(since, group=NO_GROUP)  # first: brings the store's closed hours to this period
        groups = set(policy.group_pools) | set(policy.group_members)
        groups |= {g for s in store.active() if s.gpus for g in s.groups}
        # groups with closed servers this period, from the store's in-memory view (no database read)
        groups |= {name for kind, name in getattr(store, "_closed_hours", {}) if kind == "group"}
        family = _family("aistudio_group_gpu_hours")
        for group in sorted(groups):
            family.add_metric([group, policy.period], store.period_gpu_hours(since, group=group))
        yield family

    def _datasets(self):
        store = self.state.datasets()
        if store is None:
            return
        with store.engine.connect() as conn:
            by_status = conn.execute(
                select(Dataset.status, Dataset.scan_status, func.count()).group_by(Dataset.status, Dataset.scan_status)
            ).all()
            scans, passed = conn.execute(
                select(func.count(), func.coalesce(func.sum(case((AuditEvent.detail.like(PASSED_SCAN), 1), else_=0)), 0))
                .where(AuditEvent.event == "scan")
            ).one()
        family = _family("aistudio_datasets")
        for status, scan_status, n in sorted(by_status):
            family.add_metric([status, scan_status], n)
        yield family
        counter = _family("aistudio_dataset_scans")
        counter.add_metric(["passed"], passed)
        counter.add_metric(["failed"], scans - passed)
        yield counter

    def _services(self):
        family = _family("aistudio_service_up")
        for name, up in sorted(self.health.current().items()):
            family.add_metric([name], up)
        yield family


# --------------------------------------------------------------------------- what the spawners tell


class StudioMetrics:
    """The studio's metrics in ``registry``: the collector, and the counters the spawners feed."""

    def __init__(self, state: HubState, registry=REGISTRY, health: ServiceHealth | None = None):
        self.collector = StudioCollector(state, health)
        registry.register(self.collector)
        self.refused = Counter(
            "aistudio_launches_refused", "Launches the hub refused, by reason (rights 403, malformed 400, "
            "quota 429, no_free_gpu 409) and profile.", ["reason", "profile"], registry=registry)
        self.spawn_duration = Histogram(
            "aistudio_spawn_duration_seconds", "Seconds from a start request until the server answers through "
            "the proxy, by profile (successful starts).", ["profile"], buckets=SPAWN_BUCKETS, registry=registry)
        self.mounts = Counter(
            "aistudio_dataset_mounts", "Datasets given to starting servers, by dataset.", ["dataset"],
            registry=registry)

    def hear(self, event: str, **fields) -> None:
        """A listener of ``spawners.mixin``: count what a launch told."""
        if event == "refused":
            self.refused.labels(fields["reason"], fields.get("profile") or UNKNOWN_PROFILE).inc()
        elif event == "ready":
            self.spawn_duration.labels(fields.get("profile") or UNKNOWN_PROFILE).observe(fields["seconds"])
        elif event == "mounted":
            self.mounts.labels(fields["dataset"]).inc()


_installed: StudioMetrics | None = None


def install(config: dict, registry=REGISTRY) -> StudioMetrics:
    """Register the studio's metrics in ``registry`` (this process's default, which
    ``/hub/metrics`` serves) once, fed by the spawners and read from the hub's state;
    ``config`` is the validated studio config."""
    global _installed
    if _installed is None:
        _installed = StudioMetrics(HubState.from_config(config), registry)
        mixin.listeners.append(_installed.hear)
    return _installed
