"""The usage store in SQLite and in PostgreSQL: GPU-hours per user and group, what runs,
the hub's period totals against the database, the report command on the database's URL,
and records opened at once by stores with their own engines, with the quota decisions
taken from them. (tests/unit/test_quotas.py has the quota policy itself.)"""

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hub_config.profiles import Resources, load_profiles
from hub_config.quotas import QuotaExceeded, admit
from hub_config.usage.store import UsageStore

REPO = Path(__file__).resolve().parents[2]
GiB = 1024**3
T0 = datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp()
H = 3600.0


def url_of(store: UsageStore) -> str:
    return store.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def empty(database):
    store = UsageStore(database("usage"))
    yield store
    store.engine.dispose()


@pytest.fixture
def store(empty):
    empty.close(empty.open("alice", "", ["gpu-residents"], "gpu-multi", 2, "a100", 16, GiB, now=T0), now=T0 + 3 * H)
    empty.close(empty.open("bob", "", ["students"], "gpu-1", 1, "a100", 8, GiB, now=T0 + H), now=T0 + 2 * H)
    empty.open("dora", "", ["gpu-residents", "students"], "gpu-1", 1, "a100", 8, GiB, now=T0 + 2 * H)  # running
    empty.open("carol", "", [], "cpu-small", 0, None, 2, GiB // 2, now=T0)  # running, no GPU
    return empty


def test_gpu_hours_per_user_and_group(store):
    until = T0 + 4 * H
    assert store.gpu_hours(since=T0, until=until, user="alice") == pytest.approx(6.0)
    assert store.gpu_hours(since=T0, until=until, user="dora") == pytest.approx(2.0)  # still running
    assert store.gpu_hours(since=T0, until=until, group="students") == pytest.approx(3.0)
    assert store.gpu_hours(since=T0, until=until, group="gpu-residents") == pytest.approx(8.0)
    assert store.gpu_hours(since=T0 + 2 * H, until=until, user="alice") == pytest.approx(2.0)  # clipped
    assert store.gpu_hours(since=T0, until=until, user="carol") == 0.0
    assert sorted((r.user, r.groups, r.stopped_at) for r in store.rows(since=T0 + 2.5 * H)) == [
        ("alice", ("gpu-residents",), T0 + 3 * H), ("carol", (), None), ("dora", ("gpu-residents", "students"), None)]


def test_period_hours_of_the_hub_match_the_database(store):
    since, now = T0 + 0.5 * H, T0 + 5 * H
    keys = ({"user": "alice"}, {"user": "dora"}, {"group": "students"}, {"group": "gpu-residents"})
    for key in keys:
        assert store.period_gpu_hours(since, now=now, **key) == pytest.approx(store.gpu_hours(since=since, until=now, **key))
    dora = next(i for i, r in store._running.items() if r.server.user == "dora")
    store.close(dora, now=T0 + 4 * H)
    fresh = store.open("bob", "", ["students"], "gpu-multi", 2, "a100", 8, GiB, now=T0 + 4.5 * H)
    for key in keys + ({"user": "bob"},):
        assert store.period_gpu_hours(since, now=now, **key) == pytest.approx(store.gpu_hours(since=since, until=now, **key))
    other = UsageStore(url_of(store))  # a new process (the usage page) sees the same running servers
    assert sorted(s.user for s in other.active()) == ["bob", "carol"]
    store.discard(fresh)
    assert sorted(s.user for s in other.active(fresh=True)) == ["carol"]
    other.engine.dispose()


def test_memory_of_large_servers_is_kept(empty):
    """Memory is in bytes: the shipped profiles ask for 8 to 128 GiB."""
    empty.open("alice", "", [], "gpu-multi", 2, "a100", 16, 128 * GiB, now=T0)
    assert [r.memory for r in empty.rows()] == [128 * GiB]


@pytest.mark.parametrize("database", ["postgres"], indirect=True)  # SQLite: tests/unit/test_quotas.py
def test_the_report_command_reads_the_database_by_url(store):
    cmd = [sys.executable, "-m", "hub_config.cli", "usage", "report", "--db-url", url_of(store),
           "--since", "2026-11-02", "--by", "user", "--format", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    rows = {row["user"]: row for row in json.loads(r.stdout)["rows"]}
    assert sorted(rows) == ["alice", "bob", "carol", "dora"]
    assert (rows["alice"]["gpu_hours"], rows["alice"]["cpu_hours"]) == (pytest.approx(6.0), pytest.approx(48.0))
    assert rows["bob"]["memory_gib_hours"] == pytest.approx(1.0)
    assert rows["carol"]["gpu_hours"] == 0


def test_records_opened_at_once_by_several_stores_are_all_kept(empty):
    """Four stores, each its own engine, open and close records at once: none is lost,
    none is counted twice, each keeps its groups, and a new store reads them all."""
    stores = [empty] + [UsageStore(url_of(empty)) for _ in range(3)]
    barrier = threading.Barrier(16)

    def launch(i):
        s = stores[i % 4]
        barrier.wait()
        ids = []
        for k in range(5):
            ids.append(s.open(f"u{i}", f"s{k}", [f"g{i % 3}", "all"], "gpu-1", 1, "a100", 1, GiB, now=T0 + k * H))
        for usage_id in ids[:2]:
            s.close(usage_id, now=T0 + 10 * H)
        return ids

    with ThreadPoolExecutor(16) as pool:
        ids = sum(pool.map(launch, range(16)), [])
    assert len(ids) == len(set(ids)) == 80
    reader = UsageStore(url_of(empty))
    rows = reader.rows()
    assert len(rows) == 80 and all(set(r.groups) == {f"g{int(r.user[1:]) % 3}", "all"} for r in rows)
    assert len(reader.active()) == 16 * 3
    # per member: records started at T0 .. T0 + 4 h, the first two closed at T0 + 10 h, the others running
    assert reader.gpu_hours(since=T0, until=T0 + 10 * H, user="u7") == pytest.approx(10 + 9 + 8 + 7 + 6)
    assert reader.period_gpu_hours(T0, user="u7", now=T0 + 10 * H) == pytest.approx(10 + 9 + 8 + 7 + 6)
    assert reader.period_gpu_hours(T0, group="all", now=T0 + 10 * H) == pytest.approx(16 * 40)
    for s in stores[1:] + [reader]:
        s.engine.dispose()


QUOTAS = """\
profiles:
  - slug: one-gpu
    display_name: One GPU
    resources: {cpu: 1, memory: 1Gi, gpus: 1, gpu_type: a100}
    access: {everyone: true}
quotas:
  groups:
    crowd:
      group: {max_gpus: 4}
      member: {gpu_hours: 10}
"""


def test_quota_decisions_from_the_database_hold(empty, tmp_path):
    """Decisions taken from what another store recorded (as after a hub restart): the
    group's cap counts the servers running there, the budget the hours spent there."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "p.yaml").write_text(QUOTAS)
    policy = load_profiles(tmp_path / "profiles").quotas
    one = Resources(cpu=1, memory=GiB, gpus=1, gpu_type="a100")
    others = [UsageStore(url_of(empty)) for _ in range(3)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: others[i % 3].open(f"m{i}", "", ["crowd"], "one-gpu", 1, "a100", 1, GiB), range(4)))
    empty.close(empty.open("spent", "", ["crowd"], "one-gpu", 1, "a100", 1, GiB, now=T0), now=T0 + 11 * H)
    hub = UsageStore(url_of(empty))  # the restarted hub reads what runs
    since = T0 - H

    def hours(user=None, group=None):
        return hub.period_gpu_hours(since, user=user, group=group, now=T0 + 12 * H)

    with pytest.raises(QuotaExceeded, match="Group crowd uses 4 of 4 GPUs"):
        admit(policy, "m9", ["crowd"], one, hub.active(), hours)
    running = next(i for i, r in hub._running.items() if r.server.user == "m0")
    hub.close(running)
    assert admit(policy, "m9", ["crowd"], one, hub.active(), hours) is None
    with pytest.raises(QuotaExceeded, match="GPU-hours"):
        admit(policy, "spent", ["crowd"], one, hub.active(), hours)
    for s in others + [hub]:
        s.engine.dispose()
