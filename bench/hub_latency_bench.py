#!/usr/bin/env python
"""Hub responsiveness under load: request latency while 30 servers start at once,
ours against stock JupyterHub with SimpleLocalProcessSpawner, in the same run.

The two hubs are the ones of bench/spawn_bench.py (same studio config, proxy, login and
singleuser command; the baseline swaps in ``SimpleLocalProcessSpawner`` only), run one
after the other (ABBA over ``--rounds``), never at once. For each: 30 demo users POST
their server at the same moment; while those starts are in flight, a prober user asks
the hub again and again, timing each answer:

* ``GET /hub/api/user`` with a token (both hubs);
* ``GET /hub/home`` with the login cookie (both hubs);
* ``GET /hub/spawn/prober``, the spawn form (ours only: the stock spawner has no form,
  and that URL would start the prober's server).

Goal: p99 of ours within 1.2× of stock for the endpoints both have.

    .venv/bin/python bench/hub_latency_bench.py [--servers 30] [--rounds 1] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchdoc import DOC, write_section  # noqa: E402
from spawn_bench import PASSWORD, Hub, percentile, release_ports  # noqa: E402

import jupyterhub  # noqa: E402

COMMAND = ".venv/bin/python bench/hub_latency_bench.py --write"
GOAL = 1.2


def prober_session(hub: Hub) -> requests.Session:
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=10)
    r = s.post(f"{hub.url}/hub/login", data={"username": "prober", "password": PASSWORD,
                                             "_xsrf": s.cookies.get("_xsrf", "")}, allow_redirects=False, timeout=10)
    if r.status_code != 302:
        raise RuntimeError(f"{hub.label}: prober login failed: {r.status_code}")
    return s


def endpoints(hub: Hub, session: requests.Session) -> dict:
    token = {"Authorization": f"token {hub.tokens['prober']}"}
    probes = {
        "GET /hub/api/user": lambda: requests.get(f"{hub.url}/hub/api/user", headers=token, timeout=60),
        "GET /hub/home": lambda: session.get(f"{hub.url}/hub/home", timeout=60),
    }
    if not hub.baseline:
        probes["GET /hub/spawn (form)"] = lambda: session.get(f"{hub.url}/hub/spawn/prober", timeout=60)
    return probes


def measure(hub: Hub, servers: list[str]) -> dict[str, list[float]]:
    session = prober_session(hub)
    probes = endpoints(hub, session)
    for probe in probes.values():  # warm: templates, caches, connections
        for _ in range(5):
            assert probe().status_code == 200
    samples: dict[str, list[float]] = {name: [] for name in probes}
    done = threading.Event()

    def probe_loop():
        while not done.is_set():
            for name, probe in probes.items():
                t0 = time.perf_counter()
                r = probe()
                samples[name].append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{hub.label}: {name} answered {r.status_code}")
            time.sleep(0.02)

    prober = threading.Thread(target=probe_loop)
    barrier = threading.Barrier(len(servers))

    def start(user):
        barrier.wait()
        return hub.spawn(user, timeout=600)

    prober.start()
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(start, servers))
    finally:
        done.set()
        prober.join()
    for user in servers:
        hub.stop_server(user, wait=False)
    for user in servers:
        hub.wait_stopped(user, timeout=180)
    return samples


def run(args) -> tuple[list[dict], dict]:
    servers = [f"bench{i:02d}" for i in range(args.servers)]
    order = []
    for i in range(args.rounds):
        order += [("ours", False), ("baseline", True)] if i % 2 == 0 else [("baseline", True), ("ours", False)]
    results: dict[str, dict[str, list[float]]] = {"ours": {}, "baseline": {}}
    load_before = os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hub-latency-") as tmp:
        for i, (label, baseline) in enumerate(order):
            hub = Hub(label, Path(tmp) / f"{label}-{i}", servers + ["prober"], baseline)
            release_ports()
            hub.launch()
            try:
                hub.wait_up(timeout=120)
                hub.login_all()
                for name, values in measure(hub, servers).items():
                    results[label].setdefault(name, []).extend(values)
                print(f"{label}: round done", flush=True)
            finally:
                hub.stop()
    meta = {"took": time.monotonic() - started, "load_before": load_before, "load_after": os.getloadavg()}
    rows = []
    for label in ("ours", "baseline"):
        for name, values in results[label].items():
            rows.append({"hub": label, "endpoint": name, "n": len(values), "p50": percentile(values, 0.5) * 1000,
                         "p99": percentile(values, 0.99) * 1000})
    return rows, meta


def report(rows: list[dict], meta: dict, args) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        "## Hub responsiveness while 30 servers start",
        "",
        f"- date: {now}",
        f"- machine: {os.cpu_count()} CPUs, {cpu}, Linux {platform.release()}",
        f"- JupyterHub {jupyterhub.__version__}, Python {platform.python_version()}",
        f"- runs: {args.servers} servers started at once per hub, {args.rounds} round(s) per hub (ABBA), hubs one "
        f"after the other; total {meta['took']:.0f} s; load average before "
        f"{' '.join(f'{x:.2f}' for x in meta['load_before'])}, after {' '.join(f'{x:.2f}' for x in meta['load_after'])}",
        f"- reproduce: `{COMMAND}`",
        "",
        "Milliseconds per request of a prober user while the starts are in flight "
        "(ours: `StudioLocalSpawner` with the quota profiles; baseline: stock `SimpleLocalProcessSpawner`).",
        "",
        "| hub | endpoint | n | p50 (ms) | p99 (ms) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['hub']} | `{r['endpoint']}` | {r['n']} | {r['p50']:.1f} | {r['p99']:.1f} |")
    lines += ["", "| endpoint | p50 ours/baseline | p99 ours/baseline | goal (p99) |", "|---|---:|---:|---|"]
    by = {(r["hub"], r["endpoint"]): r for r in rows}
    for (hub, name), r in by.items():
        if hub == "ours" and ("baseline", name) in by:
            b = by[("baseline", name)]
            ratio = r["p99"] / b["p99"]
            lines.append(f"| `{name}` | {r['p50'] / b['p50']:.2f} | {ratio:.2f} | "
                         f"{'met' if ratio <= GOAL else 'missed'} (≤ {GOAL}) |")
    lines += ["", "The spawn form has no baseline (the stock spawner offers none). On a 2-CPU machine 30 "
              "JupyterLab processes starting at once keep both CPUs busy, so the figures are mostly the hub waiting "
              "for a CPU; what they compare is the work each hub adds per request while that happens."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--write", action="store_true", help=f"write the figures into {DOC}")
    args = parser.parse_args()
    rows, meta = run(args)
    text = report(rows, meta, args)
    print(text)
    if args.write:
        write_section("hub-latency-bench", text)


if __name__ == "__main__":
    main()
