"""Spawn-decision latency: profile rights + quota policy + usage lookups, at lab scale.

10,000 users in 500 groups, 100 profiles, 100,000 usage records (60 days, some
servers still running). Measures, side by side in one run:

- ours: ``ProfileSet.resolve`` + ``quotas.admit`` with usage read from the
  indexed SQL store (``UsageStore``), exactly what the hub runs per launch;
- baseline: the same decision with usage computed by scanning every record in
  Python (what accounting without a database index amounts to);
- rights only: ``ProfileSet.resolve`` alone, the floor any quota system adds to.

    .venv/bin/python bench/quota_decision_bench.py [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml
from benchdoc import write_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hub_config.profiles import LaunchRejected, load_profiles  # noqa: E402
from hub_config.quotas import ActiveServer, QuotaExceeded, admit, period_start  # noqa: E402
from hub_config.usage.store import UsageStore  # noqa: E402

USERS, GROUPS, PROFILES, RECORDS, RUNNING = 10_000, 500, 100, 100_000, 300
DECISIONS = 2_000
GiB = 1024**3


def build(directory: Path, rng: random.Random):
    groups = [f"g{i:03d}" for i in range(GROUPS)]
    users = {f"u{i:05d}": rng.sample(groups, 2) for i in range(USERS)}
    profiles = []
    for i in range(PROFILES):
        gpus = rng.choice([0, 0, 1, 2, 4])
        profile = {
            "slug": f"p{i:03d}", "display_name": f"Profile {i}",
            "resources": {"cpu": 4, "memory": "32Gi", "gpus": gpus, **({"gpu_type": "a100"} if gpus else {})},
            "access": {"groups": rng.sample(groups, 10)},
            "max_runtime": "12h",
            "options": {"memory": {"min": "16Gi", "max": "128Gi", "step": "16Gi",
                                   "group_max": {g: "64Gi" for g in rng.sample(groups, 3)}}},
        }
        if gpus:
            profile["options"]["gpus"] = {"min": 1, "max": 4}
        profiles.append(profile)
    quotas = {"period": "month", "groups": {
        g: {"group": {"max_gpus": 64, "max_servers": 200, "gpu_hours": 50_000},
            "member": {"max_gpus": 4, "max_servers": 3, "gpu_hours": 10_000}} for g in groups}}
    (directory / "profiles.yaml").write_text(yaml.safe_dump({"profiles": profiles}))
    (directory / "quotas.yaml").write_text(yaml.safe_dump({"quotas": quotas}))
    store = UsageStore(f"sqlite:///{directory}/usage.sqlite")
    now = time.time()
    rows = []
    with store.engine.begin() as conn:
        from hub_config.usage.models import ServerUsage, UsageGroup

        names = list(users)
        usage_rows, group_rows = [], []
        for i in range(RECORDS):
            user = rng.choice(names)
            start = now - rng.uniform(0, 60 * 86400)
            stop = None if i < RUNNING else min(start + rng.uniform(600, 12 * 3600), now)
            gpus = rng.choice([0, 0, 1, 2, 4])
            usage_rows.append({"id": i + 1, "user": user, "server_name": "", "profile": f"p{rng.randrange(PROFILES):03d}",
                               "gpus": gpus, "gpu_type": "a100" if gpus else None, "cpu": 4.0, "memory": 32 * GiB,
                               "started_at": start, "stopped_at": stop})
            group_rows += [{"usage_id": i + 1, "name": g} for g in users[user]]
            rows.append((user, tuple(users[user]), gpus, start, stop))
        conn.execute(ServerUsage.__table__.insert(), usage_rows)
        conn.execute(UsageGroup.__table__.insert(), group_rows)
    # the hub's store: a new one reads the running servers as a hub start does
    return users, load_profiles(directory), UsageStore(f"sqlite:///{directory}/usage.sqlite"), rows


def naive_hours(rows, since, now):
    def hours(user=None, group=None):
        total = 0.0
        for u, groups, gpus, start, stop in rows:
            if not gpus or (user is not None and u != user) or (group is not None and group not in groups):
                continue
            end = min(stop if stop is not None else now, now)
            total += gpus * max(end - max(start, since), 0) / 3600
        return total

    return hours


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run(write: bool):
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        users, profileset, store, rows = build(Path(tmp), rng)
        setup_s = time.perf_counter() - t0
        policy = profileset.quotas
        since = period_start(policy.period).timestamp()
        requests = []
        for name in rng.sample(list(users), DECISIONS):
            allowed = profileset.allowed_for(name, users[name])
            choice = rng.choice(allowed).profile.slug if allowed else None
            requests.append((name, users[name], {"profile": choice} if choice else {}))

        def ours(name, groups, options):
            launch = profileset.resolve(name, groups, options)
            return admit(policy, name, groups, launch.resources, store.active(),
                         lambda user=None, group=None: store.period_gpu_hours(since, user=user, group=group))

        naive_active = [ActiveServer(u, g, n, "a100" if n else None) for u, g, n, _, stop in rows if stop is None]

        def baseline(name, groups, options):
            launch = profileset.resolve(name, groups, options)
            return admit(policy, name, groups, launch.resources, naive_active, naive_hours(rows, since, time.time()))

        def rights_only(name, groups, options):
            return profileset.resolve(name, groups, options)

        results = {}
        for label, fn, n in (("ours (usage store)", ours, DECISIONS), ("rights only (no quotas)", rights_only, DECISIONS),
                             ("baseline (scan all records)", baseline, 100)):
            times = []
            for name, groups, options in requests[:n]:
                start = time.perf_counter()
                try:
                    fn(name, groups, options)
                except (QuotaExceeded, LaunchRejected):  # a refusal is a decision too
                    pass
                times.append((time.perf_counter() - start) * 1000)
            results[label] = times
    lines = [
        "## Spawn-decision latency (profiles + quotas + usage)",
        "",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"- data: {USERS:,} users in {GROUPS} groups (2 each), {PROFILES} profiles, {RECORDS:,} usage records over 60 days "
        f"({RUNNING} running); setup {setup_s:.0f} s",
        "- reproduce: `.venv/bin/python bench/quota_decision_bench.py --write`",
        "",
        "| decision | n | p50 (ms) | p99 (ms) | mean (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, times in results.items():
        lines.append(f"| {label} | {len(times)} | {percentile(times, 50):.2f} | {percentile(times, 99):.2f} | "
                     f"{statistics.mean(times):.2f} |")
    ours_p99 = percentile(results["ours (usage store)"], 99)
    lines += ["", f"Goal: p99 under 5 ms for ours — {'met' if ours_p99 < 5 else 'NOT met'} ({ours_p99:.2f} ms). "
              "Each decision is what the hub runs per launch: profile rights, then the quota policy against the running "
              "servers and the member's and groups' GPU-hours of the period, read from the hub's usage store, which "
              "keeps them in memory once the first decision of a period has read the period's totals from the database "
              "(two GROUP BY queries; that one read is in the mean). The baseline scans every record per decision "
              "(100 decisions only)."]
    text = "\n".join(lines)
    print(text)
    if write:
        write_section("quota-bench", text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the figures into docs/benchmarks.md")
    run(parser.parse_args().write)
