"""Read path of the announcements service against jupyterhub-announcement (PyPI).

Both run from their real entry points on loopback, side by side, with the same
number of announcements:

- ours: ``python -m hub_config.announcements.service`` (SQLite database in a temporary folder),
  ``GET /services/announcements/api/items`` with an API token. A tiny stand-in for the
  hub's API answers the service's token check (``GET /hub/api/user``), which HubAuth
  then caches, as it does in front of a real hub.
- baseline: ``python -m jupyterhub_announcement`` (announcements persisted as JSON),
  ``GET /services/announcement/list?limit=N``, which it serves without authentication.

A load generator with keep-alive connections (asyncio, one process) sends requests for
a fixed time per run; runs alternate ABAB. Reported: requests per second and latency
percentiles per concurrency level.

    .venv/bin/python bench/announcements_bench.py [--items 50] [--seconds 5] [--rounds 2] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchdoc import write_section

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-member-token"

FAKE_HUB = r'''
import json, sys
from tornado import ioloop, web
class User(web.RequestHandler):
    def get(self):
        if self.request.headers.get("Authorization") != "token " + sys.argv[2]:
            raise web.HTTPError(403)
        self.finish(json.dumps({"kind": "user", "name": "bench", "admin": False, "groups": [], "session_id": "",
                                "scopes": ["access:services!service=announcements", "custom:announcements:write"]}))
web.Application([(r"/hub/api/user", User)]).listen(int(sys.argv[1]), "127.0.0.1")
ioloop.IOLoop.current().start()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, headers: dict | None = None, timeout=30):
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answers on port {port} {path}")


def texts(n: int) -> tuple[str, str]:
    title = f"Seminar {n}: federated learning on hospital data"
    body = (f"**Speaker {n}** presents work on *privacy-preserving* training across sites.\n\n"
            "- what works\n- what does not\n\nSee [the paper](https://example.org/paper).")
    return title, body


def start_ours(tmp: Path, items: int) -> tuple[subprocess.Popen, subprocess.Popen, int]:
    hub_port, port = free_port(), free_port()
    hub = subprocess.Popen([sys.executable, "-c", FAKE_HUB, str(hub_port), TOKEN])
    env = {
        **os.environ,
        "JUPYTERHUB_SERVICE_NAME": "announcements",
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/announcements/",
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub_port}/hub/api",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_API_TOKEN": "bench-service-token",
        "JUPYTERHUB_CLIENT_ID": "service-announcements",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/announcements/oauth_callback",
        "AISTUDIO_ANNOUNCEMENTS_DB_URL": f"sqlite:///{tmp / 'announcements.sqlite'}",
    }
    svc = subprocess.Popen([sys.executable, "-m", "hub_config.announcements.service"], env=env,
                           stdout=subprocess.DEVNULL, stderr=open(tmp / "ours.log", "wb"))
    auth = {"Authorization": f"token {TOKEN}"}
    wait_http(port, "/services/announcements/api/me", auth)
    import urllib.request

    for n in range(items):
        title, body = texts(n)
        data = {"kind": "news", "title": title, "body": body, "pinned": n < 2}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/services/announcements/api/items", method="POST",
                                     data=json.dumps(data).encode(), headers={**auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 201
    return hub, svc, port


def start_baseline(tmp: Path, items: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    now = datetime.now()
    queue = []
    for n in range(items):
        title, body = texts(n)
        queue.append({"user": "organiser", "announcement": f"<b>{title}</b> {body}",
                      "timestamp": (now - timedelta(minutes=items - n)).isoformat()})
    (tmp / "queue.json").write_text(json.dumps(queue))
    (tmp / "announcement_config.py").write_text(
        f"c.AnnouncementService.port = {port}\n"
        f"c.AnnouncementService.default_limit = {items}\n"
        f"c.AnnouncementService.cookie_secret_file = {str(tmp / 'cookie_secret')!r}\n"
        f"c.AnnouncementQueue.persist_path = {str(tmp / 'queue.json')!r}\n"
        "c.AnnouncementQueue.lifetime_days = 3650\n"
    )
    env = {**os.environ, "JUPYTERHUB_SERVICE_PREFIX": "/services/announcement/", "JUPYTERHUB_API_TOKEN": "unused",
           "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api", "JUPYTERHUB_CLIENT_ID": "service-announcement"}
    proc = subprocess.Popen([sys.executable, "-m", "jupyterhub_announcement"], cwd=tmp, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "baseline.log", "wb"))
    wait_http(port, f"/services/announcement/list?limit={items}")
    return proc, port


async def _client(port: int, request: bytes, until: float, latencies: list, errors: list):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if status != 200 or not body:
                errors.append(status)
    finally:
        writer.close()


def load(port: int, path: str, headers: dict, concurrency: int, seconds: float) -> dict:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()
    latencies: list[float] = []
    errors: list = []

    async def run():
        until = time.perf_counter() + seconds
        await asyncio.gather(*[_client(port, request, until, latencies, errors) for _ in range(concurrency)])

    begun = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - begun
    return {"n": len(latencies), "rps": len(latencies) / elapsed, "latencies": latencies, "errors": len(errors)}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--write", action="store_true", help="replace this benchmark's section of docs/benchmarks.md")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    load_before = os.getloadavg()
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "ours").mkdir()
        (tmp / "base").mkdir()
        procs = []
        try:
            hub, svc, ours_port = start_ours(tmp / "ours", args.items)
            procs += [hub, svc]
            base, base_port = start_baseline(tmp / "base", args.items)
            procs.append(base)
            targets = {
                "ours": (ours_port, "/services/announcements/api/items", {"Authorization": f"token {TOKEN}"}),
                "baseline": (base_port, f"/services/announcement/list?limit={args.items}", {}),
            }
            # both answer with all the items
            import urllib.request

            for name, (port, path, headers) in targets.items():
                with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)) as r:
                    data = json.loads(r.read())
                    count = len(data["items"] if name == "ours" else data)
                    assert count == args.items, (name, count)
            for name, (port, path, headers) in targets.items():  # warm-up
                load(port, path, headers, 2, 1.0)
            results = {(name, c): [] for name in targets for c in levels}
            for rnd in range(args.rounds):
                order = ["ours", "baseline"] if rnd % 2 == 0 else ["baseline", "ours"]
                for c in levels:
                    for name in order:
                        port, path, headers = targets[name]
                        results[(name, c)].append(load(port, path, headers, c, args.seconds))
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(10)
    rows = []
    for (name, c), runs in results.items():
        lat = [x for r in runs for x in r["latencies"]]
        rows.append({"name": name, "c": c, "n": len(lat), "rps": statistics.mean(r["rps"] for r in runs),
                     "p50": pct(lat, 50), "p99": pct(lat, 99), "errors": sum(r["errors"] for r in runs)})
    from importlib.metadata import version

    lines = [
        "## Announcements read path (list of current announcements)",
        "",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"- {args.items} announcements in each; {args.rounds} rounds of {args.seconds:g} s per service and concurrency "
        f"(ABBA order), keep-alive connections from one asyncio load process; total {time.monotonic() - began:.0f} s; "
        f"load average before {' '.join(f'{x:.2f}' for x in load_before)}",
        f"- ours: aistudio {version('aistudio')} (hub_config.announcements) (`GET /services/announcements/api/items`, "
        f"token-authenticated); baseline: jupyterhub-announcement {version('jupyterhub-announcement')} "
        f"(`GET /services/announcement/list?limit={args.items}`, no authentication)",
        "- reproduce: `.venv/bin/python bench/announcements_bench.py --write`",
        "",
        "| service | connections | requests | req/s | p50 (ms) | p99 (ms) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['c']} | {r['n']} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} |")
    lines.append("")
    lines.append("| connections | req/s ours/baseline | p99 ours/baseline |")
    lines.append("|---:|---:|---:|")
    for c in levels:
        o = next(r for r in rows if r["name"] == "ours" and r["c"] == c)
        b = next(r for r in rows if r["name"] == "baseline" and r["c"] == c)
        lines.append(f"| {c} | {o['rps'] / b['rps']:.2f} | {o['p99'] / b['p99']:.2f} |")
    lines += [
        "",
        "Both are single-process tornado services. Ours answers from the list it keeps in memory between writes "
        "(and until the next publish or expiry time) as prepared JSON, after checking the caller's token (HubAuth's "
        "cache, so the hub is asked once per token every 5 minutes); each item carries its Markdown and sanitised HTML, "
        "times, and for seminars the seat counts. The baseline keeps its announcements in a Python list and serialises "
        "the last N on every request, without checking who asks. The load generator shares the 2 CPUs with the "
        "service under test, so absolute figures are a floor; compare ratios across runs.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("announcements-bench", text)


if __name__ == "__main__":
    main()
