"""Quota policy, usage records and reports, without a hub."""

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hub_config.profiles import Resources, load_profiles
from hub_config.quotas import ActiveServer, QuotaExceeded, admit, effective_runtime, period_start, summary
from hub_config.usage.store import UsageStore

REPO = Path(__file__).resolve().parents[2]
GiB = 1024**3
GPU1 = Resources(cpu=8, memory=64 * GiB, gpus=1, gpu_type="a100")
GPU2 = Resources(cpu=8, memory=64 * GiB, gpus=2, gpu_type="a100")
CPU = Resources(cpu=2, memory=8 * GiB)

POLICY = """\
profiles:
  - slug: cpu
    display_name: CPU
    resources: {cpu: 1, memory: 1Gi}
    access: {everyone: true}
quotas:
  period: month
  groups:
    students:
      group: {max_gpus: 4, max_gpus_by_type: {a100: 3}, gpu_hours: 100}
      member: {max_gpus: 1, max_servers: 1, max_runtime: 8h, gpu_hours: 10}
    gpu-residents:
      member: {max_gpus: 4, max_servers: 3, gpu_hours: 500}
    night-owls:
      member: {max_runtime: 24h}
  users:
    alice: {max_gpus: 2}
  members: {max_servers: 1, max_gpus: 0}
"""


@pytest.fixture
def policy(tmp_path):
    (tmp_path / "p.yaml").write_text(POLICY)
    return load_profiles(tmp_path).quotas


def no_hours(user=None, group=None):
    return 0.0


def servers(*specs):
    return [ActiveServer(user, tuple(groups), gpus, "a100" if gpus else None) for user, groups, gpus in specs]


def refusal(policy, user, groups, resources, active=(), hours=no_hours):
    with pytest.raises(QuotaExceeded) as info:
        admit(policy, user, groups, resources, list(active), hours)
    return str(info.value)


def test_per_member_caps(policy):
    assert admit(policy, "bob", ["students"], GPU1, [], no_hours) == 8 * 3600
    message = refusal(policy, "bob", ["students"], GPU2)
    assert message.startswith("You may use at most 1 GPU at a time and asked for 2:")
    message = refusal(policy, "bob", ["students"], CPU, servers(("bob", ["students"], 0)))
    assert message.startswith("You already run 1 of your 1 servers")


def test_group_cap_counts_all_members(policy):
    active = servers(("s1", ["students"], 1), ("s2", ["students"], 1), ("s3", ["students"], 1))
    assert refusal(policy, "bob", ["students"], GPU1, active).startswith("Group students uses 3 of 3 A100s")
    active = servers(("s1", ["students"], 1), ("s2", ["students"], 1))
    assert admit(policy, "bob", ["students"], GPU1, active, no_hours)
    # CPU servers are not held back by a full GPU pool
    full = servers(*[(f"s{i}", ["students"], 1) for i in range(4)])
    assert admit(policy, "bob", ["students"], CPU, full, no_hours) == 8 * 3600


def test_group_total_cap_message_matches_the_issue(tmp_path):
    (tmp_path / "p.yaml").write_text(POLICY.replace("max_gpus_by_type: {a100: 3}, ", ""))
    policy = load_profiles(tmp_path).quotas
    full = servers(*[(f"s{i}", ["students"], 1) for i in range(4)])
    assert refusal(policy, "bob", ["students"], GPU1, full) == (
        "Group students uses 4 of 4 GPUs: choose a CPU profile or try later."
    )


def test_several_groups_combine_to_most_generous_member_limits(policy):
    limits = policy.member_limits("dora", ["students", "gpu-residents"])
    assert (limits.max_gpus, limits.max_servers, limits.gpu_hours) == (4, 3, 500)
    assert limits.max_runtime is None  # residents set no run-time limit
    # night-owls only raise the run time; their missing caps leave those unlimited
    owl = policy.member_limits("olga", ["students", "night-owls"])
    assert owl.max_runtime == 24 * 3600 and owl.max_gpus is None
    # but dora's GPUs still count toward the students' pool
    active = servers(*[(f"s{i}", ["students"], 1) for i in range(3)])
    assert "Group students uses 3 of 3 A100s" in refusal(policy, "dora", ["students", "gpu-residents"], GPU1, active)


def test_user_entry_overrides_group_fields(policy):
    limits = policy.member_limits("alice", ["students"])
    assert (limits.max_gpus, limits.max_servers) == (2, 1)
    assert admit(policy, "alice", ["students"], GPU2, [], no_hours) == 8 * 3600


def test_members_of_no_listed_group(policy):
    assert refusal(policy, "carol", [], GPU1) == "You may not use GPUs: choose a CPU profile."
    assert admit(policy, "carol", ["book-club"], CPU, [], no_hours) is None


def test_budget_exhaustion(policy):
    def hours(user=None, group=None):
        return {"bob": 10.0}.get(user, 0.0) if user else 0.0

    message = refusal(policy, "bob", ["students"], GPU1, hours=hours)
    assert message.startswith("You have used 10.0 of your 10 GPU-hours this month (resets ")
    assert message.endswith("choose a CPU profile until then.")
    assert admit(policy, "bob", ["students"], CPU, [], hours)  # CPU launches need no budget

    def group_hours(user=None, group=None):
        return 100.0 if group == "students" else 0.0

    assert "Group students has used 100.0 of its 100 GPU-hours" in refusal(policy, "bea", ["students"], GPU1, hours=group_hours)


def test_summary_for_the_spawn_page(policy):
    lines = summary(policy, "bob", ["students"], servers(("s1", ["students"], 1)), lambda user=None, group=None: 2.5)
    assert "Your GPUs: 0 of 1 in use" in lines
    assert "Your GPU-hours left this month: 7.5 of 10" in lines
    assert "Group students: 1 of 4 GPUs in use" in lines
    assert "Servers stop after 8h" in lines


def test_effective_runtime():
    assert effective_runtime(12 * 3600, 8 * 3600) == 8 * 3600
    assert effective_runtime(None, 3600) == 3600 and effective_runtime(None, None) is None


def test_period_boundaries():
    wed = datetime(2026, 11, 25, 15, tzinfo=timezone.utc).timestamp()
    assert period_start("month", wed) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert period_start("week", wed) == datetime(2026, 11, 23, tzinfo=timezone.utc)


# ------------------------------------------------------------------ usage records

T0 = datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp()
H = 3600.0


@pytest.fixture
def store(tmp_path):
    store = UsageStore(f"sqlite:///{tmp_path}/usage.sqlite")
    a = store.open("alice", "", ["gpu-residents"], "gpu-multi", 2, "a100", 16, 128 * GiB, now=T0)
    store.close(a, now=T0 + 3 * H)
    b = store.open("bob", "", ["students"], "gpu-1", 1, "a100", 8, 64 * GiB, now=T0 + H)
    store.close(b, now=T0 + 2 * H)
    store.open("dora", "", ["gpu-residents", "students"], "gpu-1", 1, "a100", 8, 64 * GiB, now=T0 + 2 * H)  # running
    store.open("carol", "", [], "cpu-small", 0, None, 2, 8 * GiB, now=T0)  # running, no GPU
    return store


def test_gpu_hours_per_user_and_group(store):
    until = T0 + 4 * H
    assert store.gpu_hours(since=T0, until=until, user="alice") == pytest.approx(6.0)
    assert store.gpu_hours(since=T0, until=until, user="dora") == pytest.approx(2.0)  # still running
    assert store.gpu_hours(since=T0, until=until, group="students") == pytest.approx(3.0)
    assert store.gpu_hours(since=T0, until=until, group="gpu-residents") == pytest.approx(8.0)
    assert store.gpu_hours(since=T0 + 2 * H, until=until, user="alice") == pytest.approx(2.0)  # clipped
    assert store.gpu_hours(since=T0, until=until, user="carol") == 0.0


def test_active_servers_and_discard(store):
    assert sorted((s.user, s.gpus) for s in store.active()) == [("carol", 0), ("dora", 1)]
    extra = store.open("eve", "", [], "gpu-1", 1, "a100", 8, GiB)
    store.discard(extra)
    assert "eve" not in {s.user for s in store.active()}


def report_cli(tmp_path, *args):
    cmd = [sys.executable, "-m", "hub_config.cli", "usage", "report", "--db-url", f"sqlite:///{tmp_path}/usage.sqlite",
           "--since", "2026-11-02", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_report_in_three_formats(store, tmp_path):
    data = json.loads(report_cli(tmp_path, "--by", "user", "--format", "json"))
    by_user = {row["user"]: row for row in data["rows"]}
    assert by_user["alice"]["gpu_hours"] == pytest.approx(6.0)
    assert by_user["alice"]["cpu_hours"] == pytest.approx(48.0)
    assert by_user["bob"]["memory_gib_hours"] == pytest.approx(64.0)
    assert data["since"] == "2026-11-02T00:00:00+00:00"

    rows = list(csv.DictReader(io.StringIO(report_cli(tmp_path, "--by", "group", "--format", "csv"))))
    groups = {r["group"]: r for r in rows}
    assert set(groups) == {"gpu-residents", "students", "(no group)"}
    dora_hours = (datetime.now(timezone.utc).timestamp() - (T0 + 2 * H)) / H  # still running
    assert float(groups["students"]["gpu_hours"]) == pytest.approx(1.0 + dora_hours, rel=1e-3)
    assert groups["(no group)"]["servers"] == "1"

    table = report_cli(tmp_path, "--by", "profile")
    assert table.splitlines()[0] == "Usage since 2026-11-02 00:00 UTC, by profile:"
    assert table.splitlines()[1].split() == ["PROFILE", "SERVERS", "GPU", "HOURS", "CPU", "HOURS", "MEMORY", "GIB", "HOURS"]
    first = table.splitlines()[2].split()
    assert first[0] == "gpu-1" and first[1] == "2"  # bob's and dora's; dora's still runs, so most GPU-hours


def test_period_hours_of_the_hub_match_the_database(store, tmp_path):
    since = T0 + 0.5 * H
    now = T0 + 5 * H
    for key in ({"user": "alice"}, {"user": "dora"}, {"group": "students"}, {"group": "gpu-residents"}):
        assert store.period_gpu_hours(since, now=now, **key) == pytest.approx(store.gpu_hours(since=since, until=now, **key))
    # kept up to date as servers stop and start, without reading the database again
    dora = next(i for i, r in store._running.items() if r.server.user == "dora")
    store.close(dora, now=T0 + 4 * H)
    fresh = store.open("bob", "", ["students"], "gpu-multi", 2, "a100", 8, GiB, now=T0 + 4.5 * H)
    for key in ({"user": "dora"}, {"user": "bob"}, {"group": "students"}, {"group": "gpu-residents"}):
        assert store.period_gpu_hours(since, now=now, **key) == pytest.approx(store.gpu_hours(since=since, until=now, **key))
    # a new process (the usage page) sees the same running servers
    assert sorted(s.user for s in UsageStore(f"sqlite:///{tmp_path}/usage.sqlite").active()) == ["bob", "carol"]
    store.discard(fresh)
